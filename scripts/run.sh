#!/usr/bin/env bash
# The main job (README): a 3-replica KV cluster on this machine, DPDK over net_memif between
# processes (--no-huge, yielding idle policy: no NIC, 2 vCPUs), and a latency benchmark with
# 1, 32 and 512 operations outstanding (the last for throughput: client batches fill
# datagrams, the leader fills slots). Extra arguments go to paxos-cluster (see --help),
# e.g. `scripts/run.sh --transport udp` or `--single-process`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -q -p apps --bins
for outstanding in 1 32 512; do
  echo "== 3 replicas, DPDK memif, 64 B values, ${outstanding} outstanding"
  target/release/paxos-cluster --replicas 3 --duration 5 --warmup 1 \
    --outstanding "$outstanding" "$@"
done
