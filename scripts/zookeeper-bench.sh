#!/usr/bin/env bash
# zookeeper-bench.sh: a reproducible Apache ZooKeeper baseline for durable,
# replicated writes, to compare with our Multi-Paxos appliance on the same machine.
#
# What it does, per run (--runs R, default 1; each run uses a fresh ensemble):
#   1. installs Debian's `zookeeper` package if it is missing (and a JDK if javac is);
#   2. compiles scripts/ZkSetDataBench.java against Debian's ZooKeeper jars;
#   3. measures fdatasync of 4 KiB appends in the run's temp dir (the disk the
#      ensemble's snapshots and transaction logs live on);
#   4. writes a 3-member ensemble on 127.0.0.1 (distinct client/peer/election
#      ports, forceSync=yes, dataDir and dataLogDir under the temp dir), starts the
#      members, waits until every member serves and one of them leads;
#   5. runs the load generator: N sessions, one znode each, setData of a B-byte
#      value, K requests in flight per session, 2 s warm-up then S seconds measured;
#   6. prints one summary line, the CPU use of client and members, stops the
#      members (by PID) and removes the temp dir.
# Logs of the members and the client are kept in --log-dir (printed at the end).
#
# Loopback only. Needs root (or sudo) only to install packages.
#
# Usage: scripts/zookeeper-bench.sh [--clients N] [--outstanding K] [--seconds S]
#          [--value-bytes B] [--warmup W] [--runs R] [--members M] [--base-port P]
#          [--tmp-parent DIR] [--log-dir DIR] [--fsync-probe COUNT] [--heap SIZE]
#          [--connect round-robin|leader] [--session-timeout-ms MS]
# --connect round-robin (default): session i talks to member i mod M, so about
#   (M-1)/M of the writes reach the leader through a follower, as with real
#   clients spread over an ensemble; leader: every session talks to the leader.
# Warm-up: the four JVMs (3 members + client) are still JIT-compiling after the
#   default 2 s on a 2-vCPU machine; --warmup 30 gives steady-state figures,
#   measured here at up to 2x the 2 s ones. Use it when comparing with native code.
# After each run the members' `mntr` output (server-side latency, fsync time,
# queue and batch metrics) is saved beside their logs.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)

clients=16
outstanding=1
seconds=10
warmup=2
value_bytes=64
runs=1
members=3
base_port=22181          # client ports P..P+M-1, peer P+100.., election P+200..
tmp_parent=${TMPDIR:-/tmp}
log_dir=""
fsync_probe=2000
heap=1000m               # ZooKeeper's own default server heap (ZK_SERVER_HEAP=1000)
connect_mode=round-robin
session_timeout_ms=30000

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --value-bytes) value_bytes=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --members) members=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --tmp-parent) tmp_parent=$2; shift 2 ;;
    --log-dir) log_dir=$2; shift 2 ;;
    --fsync-probe) fsync_probe=$2; shift 2 ;;
    --heap) heap=$2; shift 2 ;;
    --connect) connect_mode=$2; shift 2 ;;
    --session-timeout-ms) session_timeout_ms=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done
for v in clients outstanding seconds value_bytes runs members base_port fsync_probe session_timeout_ms; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "--${v//_/-} wants a whole number, got '${!v}'" >&2; exit 2; }
done
[[ $connect_mode == round-robin || $connect_mode == leader ]] || {
  echo "--connect wants round-robin or leader" >&2; exit 2; }
[[ $warmup =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "--warmup wants a number" >&2; exit 2; }
(( clients >= 1 && outstanding >= 1 && seconds >= 1 && runs >= 1 && members >= 1 )) || {
  echo "--clients, --outstanding, --seconds, --runs and --members must be >= 1" >&2; exit 2; }

# ---------------------------------------------------------------- install
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get install -y -o DPkg::Lock::Timeout=300 "$@" || {
    as_root apt-get update -o DPkg::Lock::Timeout=300 &&
      as_root apt-get install -y -o DPkg::Lock::Timeout=300 "$@"; }
}
if ! dpkg-query -W -f='${Status}' zookeeper 2>/dev/null | grep -q 'install ok installed'; then
  echo "# installing Debian's zookeeper package"
  apt_install zookeeper
fi
if ! command -v javac >/dev/null; then
  echo "# installing a JDK (javac)"
  apt_install default-jdk-headless
fi

zk_jar=/usr/share/java/zookeeper.jar           # its manifest Class-Path names its dependencies
for j in "$zk_jar" /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar /usr/share/java/slf4j-simple.jar; do
  [[ -f $j ]] || { echo "missing $j (from Debian's zookeeper / libslf4j-java / liblog4j1.2-java)" >&2; exit 1; }
done
zk_pkg_version=$(dpkg-query -W -f='${Version}' zookeeper)

# ---------------------------------------------------------------- state and cleanup
work=$(mktemp -d "$tmp_parent/zookeeper-bench.XXXXXX")
[[ -n $log_dir ]] || log_dir="$repo_dir/target/zookeeper-bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$log_dir"
log_dir=$(cd "$log_dir" && pwd)
server_pids=()

stop_servers() {
  local pid i
  for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pids=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_servers
  rm -rf -- "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
four_letter() { # four_letter PORT CMD: print the member's answer, or nothing
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 && printf %s "$1" >&3 && cat <&3' "$1" "$2" 2>/dev/null || true
}
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# ---------------------------------------------------------------- compile the load generator
mkdir -p "$work/classes"
# -XX:-UsePerfData everywhere: no JVM writes /tmp/hsperfdata_<user>
javac -J-XX:-UsePerfData -nowarn -cp "$zk_jar" -d "$work/classes" "$script_dir/ZkSetDataBench.java"
client_cp="$work/classes:$zk_jar:/usr/share/java/slf4j-simple.jar"
server_cp="$zk_jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

disk_info=$(findmnt -n -o SOURCE,FSTYPE -T "$work" | tr -s ' ' || echo unknown)
clk_tck=$(getconf CLK_TCK)

echo "# zookeeper-bench: $members members on 127.0.0.1, $clients clients x $outstanding outstanding," \
     "$value_bytes B values, ${warmup} s warm-up + ${seconds} s measured, $runs run(s), connect $connect_mode"
echo "# ZooKeeper Debian package $zk_pkg_version; $(java -XX:-UsePerfData -version 2>&1 | head -1); $(nproc) CPUs"
echo "# temp dir $work on $disk_info; logs in $log_dir"

for ((run = 1; run <= runs; run++)); do
  rundir="$work/run$run"
  mkdir -p "$rundir"
  echo "## run $run/$runs at $(date -u +%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"

  # -- fdatasync of 4 KiB appends on the same file system, right before the run
  if (( fsync_probe > 0 )); then
    java -XX:-UsePerfData -cp "$client_cp" ZkSetDataBench fsync-probe "$rundir" "$fsync_probe" 4096 | tee -a "$log_dir/results.txt"
  fi

  # -- ensemble configuration
  server_lines=""
  for ((i = 1; i <= members; i++)); do
    server_lines+="server.$i=127.0.0.1:$((base_port + 100 + i - 1)):$((base_port + 200 + i - 1))"$'\n'
  done
  connect=""
  for ((i = 1; i <= members; i++)); do
    for p in $((base_port + i - 1)) $((base_port + 100 + i - 1)) $((base_port + 200 + i - 1)); do
      if port_in_use "$p"; then echo "port $p on loopback is in use; pick another --base-port" >&2; exit 1; fi
    done
    d="$rundir/zk$i"
    mkdir -p "$d/data" "$d/txnlog"
    echo "$i" > "$d/data/myid"
    {
      echo "tickTime=2000"
      echo "initLimit=10"
      echo "syncLimit=5"
      echo "dataDir=$d/data"
      echo "dataLogDir=$d/txnlog"
      echo "clientPort=$((base_port + i - 1))"
      echo "clientPortAddress=127.0.0.1"
      echo "maxClientCnxns=0"
      echo "forceSync=yes"                  # the default: fsync the txn log before acking
      echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=srvr,mntr,conf,ruok"
      if (( members > 1 )); then printf '%s' "$server_lines"; fi
    } > "$d/zoo.cfg"
    cat > "$d/log4j.properties" <<EOF
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$log_dir/run$run-zk$i.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
EOF
    connect+="${connect:+,}127.0.0.1:$((base_port + i - 1))"
  done

  # -- start the members
  for ((i = 1; i <= members; i++)); do
    d="$rundir/zk$i"
    java -XX:-UsePerfData "-Xms$heap" "-Xmx$heap" \
      -Dlog4j.configuration="file:$d/log4j.properties" \
      -Dzookeeper.forceSync=yes \
      -cp "$server_cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
      > "$log_dir/run$run-zk$i.out" 2>&1 < /dev/null &
    server_pids+=("$!")
  done

  # -- wait until every member serves and one leads
  leader=""
  deadline=$((SECONDS + 90))
  while :; do
    serving=0; leader=""; modes=""
    for ((i = 1; i <= members; i++)); do
      kill -0 "${server_pids[i-1]}" 2>/dev/null || {
        echo "member $i exited; see $log_dir/run$run-zk$i.log and .out" >&2; exit 1; }
      mode=$(four_letter $((base_port + i - 1)) srvr | sed -n 's/^Mode: //p')
      modes+=" zk$i=${mode:-none}"
      case "$mode" in
        leader|standalone) serving=$((serving + 1)); leader=$i ;;
        follower) serving=$((serving + 1)) ;;
      esac
    done
    [[ $serving -eq $members && -n $leader ]] && break
    if (( SECONDS > deadline )); then echo "ensemble not ready after 90 s:$modes" >&2; exit 1; fi
    sleep 0.5
  done
  zk_version=$(four_letter "$base_port" srvr | sed -n 's/^Zookeeper version: //p')
  echo "# ZooKeeper $zk_version; members ready:$modes"

  cpu_pids=""
  for ((i = 1; i <= members; i++)); do
    name="zk$i"; [[ $i == "$leader" ]] && name="zk$i(leader)"
    cpu_pids+="${cpu_pids:+,}$name=${server_pids[i-1]}"
  done

  # -- load
  label="zookeeper $members members on loopback"
  (( members == 1 )) && label="zookeeper 1 member (standalone) on loopback"
  if [[ $connect_mode == leader ]]; then
    connect="127.0.0.1:$((base_port + leader - 1))"
    (( members > 1 )) && label+=" (all sessions on the leader)"
  fi
  set +e
  java -XX:-UsePerfData -Xms256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$client_cp" ZkSetDataBench \
    --connect "$connect" --clients "$clients" --outstanding "$outstanding" \
    --seconds "$seconds" --warmup "$warmup" --value-bytes "$value_bytes" \
    --label "$label" --cpu-pids "$cpu_pids" --clk-tck "$clk_tck" \
    --session-timeout-ms "$session_timeout_ms" \
    2> "$log_dir/run$run-client.log" | tee -a "$log_dir/results.txt"
  client_rc=${PIPESTATUS[0]}
  set -e
  if (( client_rc != 0 )); then
    echo "load generator failed (exit $client_rc); last lines of $log_dir/run$run-client.log:" >&2
    tail -n 20 "$log_dir/run$run-client.log" >&2
    exit 1
  fi
  echo "# load average after run $run: $(cut -d' ' -f1-3 /proc/loadavg)"
  for ((i = 1; i <= members; i++)); do
    four_letter $((base_port + i - 1)) mntr > "$log_dir/run$run-zk$i.mntr"
  done

  # -- stop and remove this run's ensemble
  du -sh "$rundir" | sed 's/^/# data written by the ensemble: /'
  stop_servers
  rm -rf -- "$rundir"
done

echo "# ZooKeeper $zk_version (Debian package $zk_pkg_version)"
echo "# logs: $log_dir (run<N>-zk<i>.log and .mntr members, run<N>-client.log client, results.txt summaries)"
