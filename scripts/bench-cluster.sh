#!/usr/bin/env bash
# Latency benchmark of a real local cluster: 3 replicas + 1 client on this machine (no NIC),
# 64 B values, 1 and 32 operations outstanding, over each transport that works here.
# Results: human summaries on stdout; summary JSON, CSV rows (one file for all runs),
# HdrHistogram interval logs and node logs under $OUT (default target/bench-cluster).
#
#   scripts/bench-cluster.sh                     # memif, memif single-process, udp
#   TRANSPORTS="udp" DURATION=10 scripts/bench-cluster.sh
#
# Every run says its transport, placement and idle policy (yield: this machine has fewer
# vCPUs than pollers). paxos-cluster cleans up its processes, sockets and DPDK runtime dirs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/bench-cluster}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPLICAS=${REPLICAS:-3}
VALUE=${VALUE:-64}
OUTSTANDING=${OUTSTANDING:-"1 32"}
default_transports="udp"
if pkg-config --exists libdpdk 2>/dev/null; then
  default_transports="memif memif-single udp"
  cargo build --release -q -p apps
else
  cargo build --release -q -p apps --no-default-features
fi
TRANSPORTS=${TRANSPORTS:-$default_transports}
mkdir -p "$OUT"
rm -f "$OUT/all.csv.tmp"
for t in $TRANSPORTS; do
  extra=()
  transport=$t
  if [[ $t == *-single ]]; then
    transport=${t%-single}
    extra=(--single-process)
  fi
  for o in $OUTSTANDING; do
    echo "== $t, $REPLICAS replicas, ${VALUE} B values, $o outstanding, ${DURATION} s after ${WARMUP} s warm-up"
    target/release/paxos-cluster --transport "$transport" "${extra[@]}" \
      --replicas "$REPLICAS" --value-bytes "$VALUE" --outstanding "$o" \
      --duration "$DURATION" --warmup "$WARMUP" --out "$OUT/$t-o$o"
    header=$(head -n 1 "$OUT/$t-o$o/results.csv")
    tail -n 1 "$OUT/$t-o$o/results.csv" >> "$OUT/all.csv.tmp"
  done
done
{ echo "$header"; cat "$OUT/all.csv.tmp"; } > "$OUT/all.csv"
rm -f "$OUT/all.csv.tmp"
echo "== all runs: $OUT/all.csv"
column -s, -t < "$OUT/all.csv" 2>/dev/null || cat "$OUT/all.csv"
