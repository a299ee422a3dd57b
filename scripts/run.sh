#!/usr/bin/env bash
# The main job (README): a 3-replica KV cluster on this machine, DPDK over net_memif between
# processes (--no-huge, yielding idle policy: no NIC, 2 vCPUs), and a latency benchmark with
# 1, 32 and 512 operations outstanding (the last for throughput: client batches fill
# datagrams, the leader fills slots); then 1 outstanding with the three replicas in one
# process (memif to the client), the layout that meets the 10 us p50 target on 2 vCPUs
# (docs/PERFORMANCE.md explains why four processes cannot); then durable storage (each
# replica's log fdatasync'd before it votes) at 1 outstanding, 16 clients and 512
# outstanding, and a durable run in which the leader is killed with kill -9 and restarted
# while the client's history is recorded and every key read back (--verify: no acknowledged
# write lost). Extra arguments go to every paxos-cluster run (see --help), e.g.
# `scripts/run.sh --transport udp` or `--value-bytes 256`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -q -p apps --bins
for outstanding in 1 32 512; do
  echo "== 3 replicas, DPDK memif, 64 B values, ${outstanding} outstanding"
  target/release/paxos-cluster --replicas 3 --duration 5 --warmup 1 \
    --outstanding "$outstanding" "$@"
done
echo "== 3 replicas in one process (memif to the client process), 64 B values, 1 outstanding"
target/release/paxos-cluster --replicas 3 --duration 5 --warmup 1 --outstanding 1 \
  --single-process "$@"
for load in "--outstanding 1" "--clients 16 --outstanding 1" "--outstanding 512"; do
  echo "== 3 replicas, DPDK memif, 64 B values, durable storage, ${load#--}"
  # shellcheck disable=SC2086 # $load is two or four words on purpose
  target/release/paxos-cluster --replicas 3 --duration 5 --warmup 1 --storage durable \
    $load "$@"
done
echo "== durable storage: the leader killed with kill -9 at +2 s and restarted at +3 s;"
echo "   the client's history is recorded and every key read back (no acknowledged write lost)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
target/release/paxos-cluster --replicas 3 --duration 5 --warmup 1 --storage durable \
  --outstanding 4 --keys 1000 --out "$out" --history --verify \
  --fault 2:kill:leader --fault 3:restart:leader "$@"
