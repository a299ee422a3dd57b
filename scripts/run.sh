#!/usr/bin/env bash
# The main job (README): today, a 3-replica Paxos group under load in one process (no I/O:
# the protocol's own cost), then a swarm of simulated clusters with injected faults.
# It moves to a real local DPDK cluster (memif, --no-huge) with a latency benchmark when
# paxos-cluster lands.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -q -p paxos-benches --bin local-group
echo "== one 3-replica group in memory, 1 and 32 commands per slot"
target/release/local-group --replicas 3 --commands 500000 --batch 32
if cargo build --release -q -p paxos-sim --bin paxos-sim 2>/dev/null; then
  echo "== 200 simulated clusters (3 nodes) with a random mix of faults per seed"
  target/release/paxos-sim --seeds 200 --nodes 3
fi
