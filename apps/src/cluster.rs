//! `paxos-cluster`: a whole cluster on this machine (no NIC needed): N `paxos-node`
//! processes and one `paxos-client` running the latency benchmark, then everything cleaned
//! up (processes by PID, memif sockets, DPDK runtime directories, veth/bridge interfaces),
//! also on Ctrl-C or failure.
//!
//! Transports:
//! - `memif` (default with DPDK): DPDK over `net_memif` between processes, `--no-huge`. A
//!   memif connects exactly two ports, so the processes form a full mesh: replica i has one
//!   port per other replica (`net_memif_r<j>`, the lower id is the memif server) plus one to
//!   the client (`net_memif_c`, replica = server); the client has one port per replica.
//!   Transmits are routed by destination (`--route net_memif_r<j>=<j>`), replies to the
//!   client leave on the port its requests came in on.
//! - `af_packet`: DPDK `net_af_packet` on veth pairs joined by a Linux bridge, all in a
//!   network namespace that this binary creates and deletes (root needed) and starts every
//!   process in; one port per process, the bridge switches.
//! - `af_xdp`: the same with DPDK `net_af_xdp` (copy mode on veth, one queue).
//! - `udp`: kernel UDP on loopback, member i at 127.0.0.<2+i>.
//! - `--single-process`: all replicas in ONE `paxos-node` process (`--id 0,1,..`); with
//!   memif they share one port to the client and reach each other through the DPDK layer's
//!   software dispatch (local delivery), with udp they are threads.
//!
//! Faults (`--fault AT:ACTION:TARGET`, [`crate::faults`]): replicas killed, restarted,
//! stopped, continued or wiped during the measured run, each printed as it happens and
//! summed up at the end. A replica that exits without the schedule killing it is reported
//! at once and fails the run, which goes on. Restarts reuse the replica's arguments and
//! data directory (memif: its stale server sockets are removed first; the peers' memif
//! client ports reconnect by themselves, see `dataplane::dpdk::relink`).
//!
//! Every poller uses the `--idle` policy (default adaptive: yield, except that a leader with
//! slots in flight spins a few polls for the answer; this machine has fewer vCPUs than
//! pollers, see shared ENVIRONMENT.md and dataplane::idle).

use crate::cli::{self, AppError, Idle, StorageMode, SyncOn};
use crate::config::local_cluster_toml;
use crate::faults::{self, leader_line, Action, Fault, LeaderLine, LogTail, Target};
use clap::{Parser, ValueEnum};
use dataplane::idle::IdlePolicy;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterTransport {
    /// DPDK net_memif between processes (--no-huge).
    Memif,
    /// Kernel UDP sockets on loopback.
    Udp,
    /// DPDK net_af_packet on veth pairs joined by a Linux bridge, in a network namespace
    /// (created and removed here).
    #[value(name = "af_packet")]
    AfPacket,
    /// DPDK net_af_xdp (copy mode) on the same veth pairs and bridge as `af_packet`.
    #[value(name = "af_xdp")]
    AfXdp,
}

impl ClusterTransport {
    /// The transports that run on veth pairs joined by a bridge.
    pub fn is_veth(self) -> bool {
        matches!(self, ClusterTransport::AfPacket | ClusterTransport::AfXdp)
    }

    /// The EAL `--vdev` of a process on veth `iface` (af_packet / af_xdp only).
    pub fn veth_vdev(self, iface: &str) -> String {
        match self {
            ClusterTransport::AfXdp => {
                format!("net_af_xdp0,iface={iface},start_queue=0,queue_count=1")
            }
            _ => format!("net_af_packet0,iface={iface}"),
        }
    }
}

impl std::fmt::Display for ClusterTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClusterTransport::Memif => "memif",
            ClusterTransport::Udp => "udp",
            ClusterTransport::AfPacket => "af_packet",
            ClusterTransport::AfXdp => "af_xdp",
        })
    }
}

const DEFAULT_CLUSTER_TRANSPORT: &str = if cfg!(feature = "dpdk") { "memif" } else { "udp" };

#[derive(Parser, Debug, Clone)]
#[command(
    name = "paxos-cluster",
    about = "Runs an N-replica paxos-node cluster and a paxos-client benchmark on this machine, \
             prints the summary and cleans up."
)]
pub struct ClusterArgs {
    /// Replicas (acceptor + proposer + learner each).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub replicas: u16,
    /// memif: DPDK over net_memif between processes; udp: kernel sockets on loopback.
    #[arg(long, value_enum, default_value = DEFAULT_CLUSTER_TRANSPORT)]
    pub transport: ClusterTransport,
    /// All replicas in one paxos-node process (the client in another).
    #[arg(long)]
    pub single_process: bool,
    /// Paxos groups (key partitions).
    #[arg(long, default_value_t = 1, value_name = "G")]
    pub groups: u16,
    /// Bytes per written value.
    #[arg(long, default_value_t = 64, value_name = "B")]
    pub value_bytes: usize,
    /// Client groups (closed loop).
    #[arg(long, default_value_t = 1, value_name = "C")]
    pub clients: usize,
    /// Operations in flight per client (closed loop).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub outstanding: usize,
    /// Open loop at this many operations per second instead.
    #[arg(long, value_name = "OPS_PER_S")]
    pub rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub warmup: f64,
    /// Fraction of gets.
    #[arg(long, default_value_t = 0.5, value_name = "F")]
    pub read_ratio: f64,
    /// Fraction of compare-and-swaps.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub cas_ratio: f64,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000, value_name = "K")]
    pub keys: u64,
    /// Client: give an operation up after this long.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub timeout_ms: u64,
    /// Idle policy of every poller (nodes and client): spin, yield, adaptive (yield, but a
    /// leader with slots in flight spins a few polls first), sleep[:<n>{ns,us,ms}], or block
    /// (udp only).
    #[arg(long, default_value = "adaptive", value_name = "POLICY")]
    pub idle: Idle,
    /// Write summary.json, results.csv (appended), latency.hlog, the node logs (and
    /// history.jsonl with --history) to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Record the client's operation history (needs --out).
    #[arg(long)]
    pub history: bool,
    /// After the run the client reads every key back and checks that no acknowledged write
    /// was lost (needs --out and --history; the run fails on a loss).
    #[arg(long)]
    pub verify: bool,
    /// Durable storage: every node's --snapshot-every (slots between KV snapshots; the
    /// log is trimmed behind them). Default: the node's.
    #[arg(long, value_name = "SLOTS")]
    pub snapshot_every: Option<u64>,
    /// Label of the run in the reports.
    #[arg(long)]
    pub label: Option<String>,
    /// Where paxos-node and paxos-client are (default: next to this binary).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// First UDP port (group g uses base+g); default derived from the process id.
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u16>,
    /// Node stats lines every SECS into the node logs (0: none).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub stats_interval: f64,
    /// Keep the work directory (config, sockets, logs) for inspection.
    #[arg(long)]
    pub keep: bool,
    /// A `[cluster]` key of the generated cluster file, e.g. `--set batch_max_bytes=1024`
    /// or `--set accepted_to_learners=true` (repeatable; overrides the defaults and the
    /// local timing keys; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// memif: log2 of the descriptors per ring (DPDK's `rsize`, 1..=14). Deep rings absorb
    /// the bursts a descheduled peer leaves behind on a shared machine.
    #[arg(long, default_value_t = MEMIF_LOG2_RING, value_name = "LOG2")]
    pub memif_rsize: u8,
    /// Where the processes may run (DPDK transports): `float` = every process on every CPU,
    /// `split` = the client alone on the last CPU, the replicas on the others, `leader` =
    /// whichever replica leads moves to the last CPU, the rest share the others.
    #[arg(long, value_enum, default_value = "float")]
    pub placement: Placement,
    /// The replicas' idle policy while they lead (paxos-node --leader-idle; default: --idle,
    /// or spin with `--placement leader`).
    #[arg(long, value_name = "POLICY")]
    pub leader_idle: Option<IdlePolicy>,
    /// Client: one datagram per request (default: the requests of one loop iteration to
    /// the same replica share datagrams, kind 18).
    #[arg(long)]
    pub no_batch: bool,
    /// A fault to inject, AT:ACTION:TARGET (repeatable): AT seconds into the measured run
    /// (after --warmup), ACTION kill|restart|stop|cont|wipe, TARGET leader|follower|<id>|all.
    /// restart/cont/wipe of leader/follower act on the replica that the last kill/stop of
    /// that target hit. See docs/operations.md, "Fault schedule".
    #[arg(long = "fault", value_name = "AT:ACTION:TARGET")]
    pub faults: Vec<String>,
    /// Acceptor state of every replica: memory (lost when the process dies: a restarted
    /// replica rejoins with --rejoin) or durable (a data directory per replica).
    #[arg(long, value_enum, default_value = "memory", value_name = "MODE")]
    pub storage: StorageMode,
    /// Durable storage: replica i keeps its state in DIR/replica-<i> (default: the work
    /// directory's data-<i>); removed at the end unless --keep.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Durable storage: where each replica's fdatasync runs (paxos-node --sync-on): on the
    /// polling lcore, or on a thread of each group log's own.
    #[arg(long, value_enum, default_value = "lcore", value_name = "WHERE")]
    pub sync_on: SyncOn,
}

/// Where the processes of a local cluster may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// Every process may run on every CPU (the scheduler places them).
    Float,
    /// The client alone on the last CPU, the replicas on the others. On 2 vCPUs the
    /// scheduler balances processes by count, not by work: when it puts the client and the
    /// leader on one CPU and the two mostly idle followers on the other, throughput at high
    /// `--outstanding` drops by a third (runs were bimodal). Splitting makes high-load runs
    /// repeatable; low-load latency is better with `float` (the replicas use both CPUs).
    Split,
    /// The leader gets the last CPU to itself, for as long as it leads (paxos-node
    /// --leader-cpus, idle `spin` unless --leader-idle says otherwise); the followers and
    /// the client share the other CPUs. For latency at low load: the leader handles four of
    /// the six messages of a command, and nothing else waits for its CPU.
    Leader,
}

/// The CPU a leader moves to with `--placement leader`, if the machine has two or more.
pub fn leader_cpu(ncpu: usize, placement: Placement) -> Option<usize> {
    (placement == Placement::Leader && ncpu >= 2).then(|| ncpu - 1)
}

/// EAL `--lcores` values for (replicas, client) on a machine with `ncpu` CPUs.
pub fn cpu_sets(ncpu: usize, placement: Placement) -> (String, String) {
    let range = |hi: usize| if hi == 0 { "0@0".to_string() } else { format!("0@(0-{hi})") };
    match placement {
        Placement::Split if ncpu >= 2 => (range(ncpu - 2), format!("0@{}", ncpu - 1)),
        Placement::Leader if ncpu >= 2 => (range(ncpu - 2), range(ncpu - 2)),
        _ => (range(ncpu.saturating_sub(1)), range(ncpu.saturating_sub(1))),
    }
}

/// Default `--memif-rsize`: 4096 descriptors per ring (DPDK's default is 1024). A process
/// that is descheduled for a time slice (~4 ms on this 2-vCPU machine) leaves its peers'
/// frames in the ring; at a few hundred thousand frames per second 1024 slots overflow
/// (`tx_full_frees`) and the lost requests wait for the client's retry.
pub const MEMIF_LOG2_RING: u8 = 12;

/// A child process, terminated (SIGCONT if stopped, SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
    /// SIGSTOPped by us (a stopped process ignores SIGTERM until continued).
    pub stopped: bool,
    /// SIGTERM sent already (a second one makes our binaries exit at once, without their
    /// final lines).
    pub term_sent: bool,
}

impl Proc {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Exited already? (reaps it)
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(st)) => {
                self.child = None;
                Some(st)
            }
            _ => None,
        }
    }

    /// Waits until `deadline` (polling `stop`); `None` if still running.
    pub fn wait_until(&mut self, deadline: Instant, stop: &AtomicBool) -> Option<ExitStatus> {
        loop {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            self.child.as_ref()?;
            if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `kill -<sig>` (e.g. "STOP", "CONT"); false if it is not running or `kill` failed.
    pub fn signal(&mut self, sig: &str) -> bool {
        let Some(pid) = self.pid() else { return false };
        let ok = Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        match sig {
            "STOP" if ok => self.stopped = true,
            "CONT" if ok => self.stopped = false,
            "TERM" if ok => self.term_sent = true,
            _ => {}
        }
        ok
    }

    /// SIGKILL and reap; the exit status, if it was still ours to reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = c.kill();
        self.stopped = false;
        c.wait().ok()
    }

    /// SIGTERM (after SIGCONT if we stopped it; not again if sent already), wait up to
    /// `grace`, then SIGKILL. Returns the exit status if it exited.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let pid = self.pid()?;
        if let Some(st) = self.exited() {
            return Some(st);
        }
        if self.stopped {
            self.signal("CONT");
        }
        if !self.term_sent {
            self.signal("TERM");
        }
        let deadline = Instant::now() + grace;
        let never = AtomicBool::new(false);
        if let Some(st) = self.wait_until(deadline, &never) {
            return Some(st);
        }
        log::warn!("{} (pid {pid}) ignored SIGTERM for {grace:?}: killing it", self.name);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
    }
}

/// Starts `bin args` with stdout and stderr into `log` (created anew).
pub fn spawn(name: &str, bin: &Path, args: &[String], log: &Path) -> Result<Proc, AppError> {
    spawn_logging(name, bin, args, log, false)
}

/// Starts `bin args` with stdout and stderr into `log`, appended to if `append`.
pub fn spawn_logging(
    name: &str,
    bin: &Path,
    args: &[String],
    log: &Path,
    append: bool,
) -> Result<Proc, AppError> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .map_err(|e| cli::runtime(format!("{}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| cli::runtime(format!("{}: {e}", log.display())))?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| cli::runtime(format!("cannot start {}: {e}", bin.display())))?;
    log::debug!("started {name} (pid {}): {} {}", child.id(), bin.display(), args.join(" "));
    Ok(Proc {
        name: name.to_string(),
        child: Some(child),
        log: log.to_path_buf(),
        stopped: false,
        term_sent: false,
    })
}

/// The work directory, DPDK runtime directories and data directories outside the work
/// directory (`--data-dir`), removed when dropped (all but the runtime directories are kept
/// with `--keep`).
pub struct Cleanup {
    pub dir: PathBuf,
    pub keep: bool,
    pub dpdk_prefixes: Vec<String>,
    /// Directories this run created outside `dir` (durable data under `--data-dir`, and
    /// where `wipe` moved them).
    pub data_dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.dpdk_prefixes {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{p}"));
        }
        if self.keep {
            eprintln!("paxos-cluster: kept {}", self.dir.display());
            for d in self.data_dirs.iter().filter(|d| d.exists()) {
                eprintln!("paxos-cluster: kept {}", d.display());
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
            for d in &self.data_dirs {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

/// A network namespace of our own holding a Linux bridge and one veth pair per DPDK
/// process: `<a>` ends in the bridge, `<b>` ends opened by DPDK's net_af_packet/net_af_xdp
/// in processes started inside the namespace (`ip netns exec`). Nothing is created in the
/// root namespace; deleting the namespace when dropped deletes every interface in it.
pub struct VethBridge {
    netns: String,
    bridge: String,
    pairs: Vec<(String, String)>,
}

fn ip(args: &[&str]) -> Result<(), AppError> {
    let st = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| cli::runtime(format!("cannot run `ip`: {e} (iproute2 needed)")))?;
    if !st.status.success() {
        return Err(cli::runtime(format!(
            "ip {}: {} (root needed for af_packet/af_xdp)",
            args.join(" "),
            String::from_utf8_lossy(&st.stderr).trim()
        )));
    }
    Ok(())
}

impl VethBridge {
    pub fn create(pid: u32, processes: usize) -> Result<VethBridge, AppError> {
        let tag = pid % 100_000;
        let netns = format!("pxn{tag}");
        ip(&["netns", "add", &netns])?;
        // From here on, dropping `me` deletes the namespace (also on an error below).
        let mut me = VethBridge { netns, bridge: format!("pxb{tag}"), pairs: Vec::new() };
        let ns = me.netns.clone();
        // Our frames only: no IPv6 autoconfiguration chatter on these links.
        ip(&[
            "netns",
            "exec",
            &ns,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; \
             echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
        ])?;
        ip(&["-n", &ns, "link", "add", &me.bridge, "type", "bridge"])?;
        for k in 0..processes {
            let (a, b) = (format!("pxv{tag}x{k}a"), format!("pxv{tag}x{k}b"));
            // net_af_packet joins the PACKET_FANOUT group (pid ^ ifindex) & 0xffff, and groups
            // are per namespace: with small, close ifindexes two processes' ids collide and
            // the second gets EINVAL. Indexes 4096 apart keep the ids of processes started
            // close together apart.
            let (ia, ib) = (((k + 1) << 12) + 1, (k + 1) << 12);
            let (ia, ib) = (ia.to_string(), ib.to_string());
            ip(&[
                "-n", &ns, "link", "add", &a, "index", &ia, "type", "veth", "peer", "name", &b,
                "index", &ib,
            ])?;
            me.pairs.push((a.clone(), b.clone()));
            ip(&["-n", &ns, "link", "set", &a, "master", &me.bridge])?;
            ip(&["-n", &ns, "link", "set", &a, "up"])?;
            ip(&["-n", &ns, "link", "set", &b, "up"])?;
        }
        ip(&["-n", &ns, "link", "set", &me.bridge, "up"])?;
        Ok(me)
    }

    /// The interface process `k` opens.
    pub fn dpdk_iface(&self, k: usize) -> &str {
        &self.pairs[k].1
    }

    /// The namespace's name (`/run/netns/<name>`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// `bin args` run inside the namespace: `ip netns exec <ns> bin args` (ip execs the
    /// program, so the PID is the program's).
    pub fn wrap(&self, bin: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
        let mut v = vec!["netns".to_string(), "exec".into(), self.netns.clone()];
        v.push(bin.display().to_string());
        v.extend(args.iter().cloned());
        (PathBuf::from("ip"), v)
    }
}

impl Drop for VethBridge {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

/// The lines of `path` that start with `prefix`.
pub fn lines_starting(path: &Path, prefix: &str) -> Vec<String> {
    let Ok(f) = File::open(path) else { return Vec::new() };
    BufReader::new(f).lines().map_while(Result::ok).filter(|l| l.starts_with(prefix)).collect()
}

/// The last `n` lines of a file (for failure reports).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until every file exists and every process printed its ready line.
fn wait_for_files(
    files: &[PathBuf],
    nodes: &mut [Replica],
    stop: &AtomicBool,
) -> Result<(), AppError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = |r: &Replica| !lines_starting(&r.proc.log, crate::node::READY_PREFIX).is_empty();
    while !files.iter().all(|f| f.exists()) || !nodes.iter().all(ready) {
        for p in nodes.iter_mut().map(|r| &mut r.proc) {
            if let Some(st) = p.exited() {
                return Err(cli::runtime(format!(
                    "{} exited early ({st}):\n{}",
                    p.name,
                    tail(&p.log, 15)
                )));
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Err(cli::runtime("interrupted"));
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = files.iter().filter(|f| !f.exists()).collect();
            let slow: Vec<_> = nodes.iter().filter(|r| !ready(r)).map(|r| &r.proc.name).collect();
            return Err(cli::runtime(format!(
                "not ready after 20 s: sockets missing {missing:?}, processes not ready {slow:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Timing keys added to the generated cluster file (see `run`).
pub const LOCAL_TIMING: &str =
    "election_timeout_min_ticks = 500\nelection_timeout_max_ticks = 1000\n";

/// IPv4 address of member i.
fn member_ip(t: ClusterTransport, i: u16) -> Ipv4Addr {
    match t {
        ClusterTransport::Udp => Ipv4Addr::new(127, 0, 0, 2 + i as u8),
        ClusterTransport::Memif | ClusterTransport::AfPacket | ClusterTransport::AfXdp => {
            Ipv4Addr::new(10, 77, 0, 1 + i as u8)
        }
    }
}

impl ClusterArgs {
    fn validate(&self) -> Result<(), AppError> {
        if self.replicas == 0 || self.replicas > 64 {
            return Err(cli::usage(format!("--replicas {}: must be 1..=64", self.replicas)));
        }
        if self.transport != ClusterTransport::Udp && !cfg!(feature = "dpdk") {
            return Err(cli::usage(
                "--transport memif/af_packet/af_xdp: this build has no DPDK support (the apps crate was built \
                 without its `dpdk` feature); use --transport udp",
            ));
        }
        if self.idle == Idle::Block && self.transport != ClusterTransport::Udp {
            return Err(cli::usage("--idle block: only with --transport udp"));
        }
        if self.verify && (self.out.is_none() || !self.history) {
            return Err(cli::usage("--verify: needs --out DIR and --history"));
        }
        if self.placement != Placement::Float && self.transport == ClusterTransport::Udp {
            return Err(cli::usage("--placement split|leader: only with the DPDK transports"));
        }
        if self.leader_idle.is_some() && self.transport == ClusterTransport::Udp {
            return Err(cli::usage("--leader-idle: only with the DPDK transports"));
        }
        if !(1..=14).contains(&self.memif_rsize) {
            return Err(cli::usage(format!("--memif-rsize {}: must be 1..=14", self.memif_rsize)));
        }
        for kv in &self.set {
            if !kv.contains('=') {
                return Err(cli::usage(format!("--set {kv:?}: expected KEY=VALUE")));
            }
        }
        if self.history && self.out.is_none() {
            return Err(cli::usage("--history: needs --out DIR to write history.jsonl into"));
        }
        let times_ok = self.duration > 0.0 && self.warmup >= 0.0;
        if !times_ok {
            return Err(cli::usage("--duration must be > 0 and --warmup >= 0 seconds"));
        }
        if self.data_dir.is_some() && self.storage != StorageMode::Durable {
            return Err(cli::usage("--data-dir: only with --storage durable"));
        }
        if self.single_process && !self.faults.is_empty() {
            return Err(cli::usage(
                "--fault: not with --single-process (every replica is in one process)",
            ));
        }
        faults::plan(&self.faults, self.replicas, self.duration)?;
        Ok(())
    }
}

/// The generated cluster file: `local_cluster_toml`, then `LOCAL_TIMING` and every `--set`
/// in `[cluster]` (a later key replaces an earlier one), validated like `paxos-node` will.
pub fn cluster_file(a: &ClusterArgs, base_port: u16) -> Result<String, AppError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: &str| {
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        match keys.iter_mut().find(|(x, _)| *x == k) {
            Some(e) => e.1 = v,
            None => keys.push((k, v)),
        }
    };
    for line in LOCAL_TIMING.lines() {
        if let Some((k, v)) = line.split_once('=') {
            put(k, v);
        }
    }
    for kv in &a.set {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        put(k, v);
    }
    let extra: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let base = local_cluster_toml(a.replicas, a.groups, base_port, member_ip(a.transport, 0));
    let toml = base.replacen("\n\n", &format!("\n{extra}\n"), 1);
    crate::config::Cluster::parse(&toml).map_err(|e| cli::usage(format!("--set: {e}")))?;
    Ok(toml)
}

/// Parses and runs; `args` as from `std::env::args()`.
pub fn main_with(args: Vec<String>) -> Result<(), AppError> {
    let a = ClusterArgs::try_parse_from(&args).unwrap_or_else(|e| e.exit());
    a.validate()?;
    let stop = cli::stop_on_signals()?;
    run(&a, &stop)
}

/// How a replica process is started (which storage flags it gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The first start of the cluster: `--init`.
    First,
    /// A restart of a killed replica: nothing more with durable storage (it finds its data
    /// directory), `--rejoin` with memory storage (it lost everything).
    Restart,
    /// After its data directory was moved aside: `--rejoin`.
    Wipe,
}

/// The storage flags of a start: `--storage`, `--data-dir` (durable), and `--init` /
/// `--rejoin` as [`Start`] says.
pub fn storage_args(mode: StorageMode, data_dir: Option<&Path>, how: Start) -> Vec<String> {
    let mut v = vec!["--storage".to_string(), mode.to_string()];
    if let Some(d) = data_dir {
        v.extend(["--data-dir".into(), d.display().to_string()]);
    }
    match (how, mode) {
        (Start::First, _) => v.push("--init".into()),
        (Start::Restart, StorageMode::Durable) => {}
        (Start::Restart, StorageMode::Memory) | (Start::Wipe, _) => v.push("--rejoin".into()),
    }
    v
}

/// Where a replica process is in the fault schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    Running,
    Stopped,
    Dead,
}

impl std::fmt::Display for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Life::Running => "running",
            Life::Stopped => "stopped",
            Life::Dead => "dead",
        })
    }
}

/// One `paxos-node` process (one replica, or all of them with `--single-process`) and what
/// the fault schedule did to it.
struct Replica {
    /// The member ids it runs.
    ids: Vec<u16>,
    proc: Proc,
    /// Arguments of every start, before the storage flags.
    args: Vec<String>,
    /// memif: the server sockets it creates. A SIGKILLed server leaves its socket file
    /// behind and DPDK's net_memif cannot bind over it: removed before a restart.
    sockets: Vec<PathBuf>,
    data_dir: Option<PathBuf>,
    life: Life,
    /// Its log from where the current instance started.
    tail: LogTail,
    instance_start: u64,
    /// Group 0 ballot each of its members leads with, per the current instance's log.
    claims: Vec<(u16, Option<(u64, u16)>)>,
    starts: u32,
    /// A restart whose ready line has not shown yet (when it was started).
    awaiting_ready: Option<Instant>,
    /// A restart on DPDK whose `all DPDK links up` line has not shown yet: its memif peers
    /// have not all reconnected (when it was started).
    awaiting_links: Option<Instant>,
    /// What happened to it, for the final lines (`dead since +3.00s (kill)`).
    last_fault: Option<String>,
}

impl Replica {
    fn new(name: &str, ids: Vec<u16>, args: Vec<String>, log: PathBuf) -> Replica {
        Replica {
            proc: Proc {
                name: name.to_string(),
                child: None,
                log: log.clone(),
                stopped: false,
                term_sent: false,
            },
            claims: ids.iter().map(|&i| (i, None)).collect(),
            ids,
            args,
            sockets: Vec::new(),
            data_dir: None,
            life: Life::Dead,
            tail: LogTail::new(&log, 0),
            instance_start: 0,
            starts: 0,
            awaiting_ready: None,
            awaiting_links: None,
            last_fault: None,
        }
    }

    /// Reads what its log gained: leader lines (into `events` too), the ready line and the
    /// links-up line (times since a restart into `after`).
    fn poll_log(&mut self, events: &mut Vec<LeaderLine>, after: &mut Restarts) {
        for l in self.tail.new_lines() {
            after.relink_line(&self.proc.name, &l);
            if l.contains("] all DPDK links up") {
                if let Some(t) = self.awaiting_links.take() {
                    after.links.push((self.ids[0], t.elapsed().as_secs_f64()));
                }
            }
            if let Some(e) = leader_line(&l) {
                if e.group == 0 {
                    if let Some(c) = self.claims.iter_mut().find(|c| c.0 == e.replica) {
                        c.1 = e.leading.then_some(e.ballot);
                    }
                }
                events.push(e);
            } else if l.starts_with(crate::node::READY_PREFIX) {
                if let Some(t) = self.awaiting_ready.take() {
                    after.ready.push((self.ids[0], t.elapsed().as_secs_f64()));
                }
            }
        }
    }
}

/// (member, seconds) from restarts to what their logs said.
#[derive(Default)]
struct Restarts {
    /// ... to the ready line.
    ready: Vec<(u16, f64)>,
    /// ... to `all DPDK links up` (every memif peer reconnected).
    links: Vec<(u16, f64)>,
    /// memif client ports that reconnected to a server that came back (`who: port ...`).
    relinks: Vec<String>,
}

impl Restarts {
    /// Notes a `link up again` line of `who`'s log (dataplane::dpdk::relink).
    fn relink_line(&mut self, who: &str, line: &str) {
        if let Some((_, what)) = line.split_once("dataplane::dpdk::relink] ") {
            if what.contains("link up again") {
                self.relinks.push(format!("{who}: {what}"));
            }
        }
    }
}

/// The replica processes and what the schedule and the logs showed.
struct Supervisor {
    nodes: Vec<Replica>,
    /// Every leader line seen, all groups, every instance.
    events: Vec<LeaderLine>,
    restarts: Restarts,
    /// When the measured run started (the client's `client at` line + `--warmup`).
    anchor: Option<SystemTime>,
    /// Per symbolic target (leader, follower): the last kill/stop of it and whom it hit.
    last_hit: [Option<(Action, usize)>; 2],
    /// (fault, when it was injected, whom it hit, note).
    injected: Vec<(Fault, f64, String)>,
    /// (fault, when, why it was not injected).
    refused: Vec<(Fault, f64, String)>,
    /// Replicas that exited on their own (member, pid, when, status).
    unscheduled: Vec<String>,
    /// Where `wipe` moved data directories.
    moved_aside: Vec<PathBuf>,
}

/// `+1.23s` / `-0.40s` relative to the measured run's start.
fn offset(anchor: Option<SystemTime>, t: SystemTime) -> f64 {
    match anchor {
        Some(a) => match t.duration_since(a) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        },
        None => 0.0,
    }
}

impl Supervisor {
    fn now(&self) -> f64 {
        offset(self.anchor, SystemTime::now())
    }

    fn poll_logs(&mut self) {
        for r in &mut self.nodes {
            r.poll_log(&mut self.events, &mut self.restarts);
        }
    }

    /// Replicas that exited without being killed by the schedule: reported at once (with the
    /// tail of the log), remembered for the summary and the exit status.
    fn check_exits(&mut self) {
        for i in 0..self.nodes.len() {
            let when = self.now();
            let r = &mut self.nodes[i];
            if r.life == Life::Dead {
                continue;
            }
            let pid = r.proc.pid().unwrap_or(0);
            let Some(st) = r.proc.exited() else { continue };
            r.life = Life::Dead;
            r.awaiting_ready = None;
            r.awaiting_links = None;
            r.last_fault = Some(format!("exited on its own at {when:+.2}s ({st})"));
            r.poll_log(&mut self.events, &mut self.restarts);
            let what = format!("{} (pid {pid}) exited at {when:+.2}s ({st})", r.proc.name);
            eprintln!(
                "paxos-cluster: {what}, not by the fault schedule; the run goes on. Its log \
                 ends:\n{}",
                tail_from(&r.proc.log, r.instance_start, 20)
            );
            self.unscheduled.push(what);
        }
    }

    /// The running replica that leads group 0 now, per the logs; waits up to `patience`
    /// for one to show up (an election takes 50-100 ms here).
    fn leader(&mut self, patience: Duration) -> Option<usize> {
        let until = Instant::now() + patience;
        loop {
            self.poll_logs();
            let claims = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.life == Life::Running)
                .flat_map(|(i, r)| r.claims.iter().map(move |c| (i, c.1)));
            let best = claims.filter_map(|(i, b)| b.map(|b| (b, i))).max().map(|(_, i)| i);
            if best.is_some() || Instant::now() >= until {
                return best;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The replicas `f` hits now, or why it cannot be injected.
    fn targets(&mut self, f: &Fault) -> Result<Vec<usize>, String> {
        let ok_from = |l: Life| match f.action {
            Action::Kill => l != Life::Dead,
            Action::Stop => l == Life::Running,
            Action::Cont => l == Life::Stopped,
            Action::Restart | Action::Wipe => l == Life::Dead,
        };
        let hit = match f.target {
            Target::Member(m) => {
                let i = usize::from(m);
                let l = self.nodes[i].life;
                if !ok_from(l) {
                    return Err(format!("replica {m} is {l}"));
                }
                vec![i]
            }
            Target::All => {
                let v: Vec<usize> =
                    (0..self.nodes.len()).filter(|&i| ok_from(self.nodes[i].life)).collect();
                if v.is_empty() {
                    return Err(format!("no replica is in a state to {}", f.action));
                }
                v
            }
            Target::Leader | Target::Follower => {
                let sym = f.target.symbol().expect("symbolic");
                match f.action.needs() {
                    Some(need) => match self.last_hit[sym].take() {
                        Some((prev, i)) if prev == need => {
                            let l = self.nodes[i].life;
                            if !ok_from(l) {
                                return Err(format!(
                                    "replica {} (hit by {prev} {}) is {l}",
                                    self.nodes[i].ids[0], f.target
                                ));
                            }
                            vec![i]
                        }
                        _ => return Err(format!("no earlier {need} of {}", f.target)),
                    },
                    None => {
                        let leader = self.leader(Duration::from_secs(2));
                        let i = match f.target {
                            Target::Leader => leader.ok_or_else(|| {
                                "no running replica claims to lead group 0 in its log (the \
                                 `leading with` lines are logged at info level by \
                                 dataplane::driver: does RUST_LOG hide them?)"
                                    .to_string()
                            })?,
                            _ => (0..self.nodes.len())
                                .find(|&i| self.nodes[i].life == Life::Running && Some(i) != leader)
                                .ok_or("no running replica besides the leader")?,
                        };
                        self.last_hit[sym] = Some((f.action, i));
                        vec![i]
                    }
                }
            }
        };
        Ok(hit)
    }
}

/// The lines of `path` from byte `from` on that start with `prefix`.
fn lines_starting_from(path: &Path, from: u64, prefix: &str) -> Vec<String> {
    let mut t = LogTail::new(path, from);
    t.new_lines().into_iter().filter(|l| l.starts_with(prefix)).collect()
}

/// The last `n` lines of a file from byte `from` on.
fn tail_from(path: &Path, from: u64, n: usize) -> String {
    let lines = LogTail::new(path, from).new_lines();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// fdatasync latency of the filesystem under `dir`: `n` times, append 4 KiB to a scratch file
/// and `fdatasync` it (`File::sync_data`); (p50, p99) in microseconds. The file is removed.
pub fn fdatasync_probe(dir: &Path, n: usize) -> std::io::Result<(f64, f64)> {
    use std::io::Write;
    let path = dir.join(format!(".pxc-fdatasync-probe-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    let block = [0x5au8; 4096];
    let mut us = Vec::with_capacity(n);
    let res = (|| {
        for _ in 0..n {
            let t = Instant::now();
            f.write_all(&block)?;
            f.sync_data()?;
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok::<(), std::io::Error>(())
    })();
    drop(f);
    let _ = std::fs::remove_file(&path);
    res?;
    us.sort_by(f64::total_cmp);
    let pct = |p: f64| us[((us.len() as f64 * p).ceil() as usize).clamp(1, us.len()) - 1];
    Ok((pct(0.50), pct(0.99)))
}

pub fn run(a: &ClusterArgs, stop: &AtomicBool) -> Result<(), AppError> {
    let schedule = faults::plan(&a.faults, a.replicas, a.duration)?;
    let bin_dir = match &a.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| cli::runtime("cannot find the directory of this binary"))?,
    };
    let node_bin = bin_dir.join("paxos-node");
    let client_bin = bin_dir.join("paxos-client");
    for b in [&node_bin, &client_bin] {
        if !b.exists() {
            return Err(cli::usage(format!(
                "--bin-dir: {} not found (cargo build -p apps --release)",
                b.display()
            )));
        }
    }
    let pid = std::process::id();
    // Short: memif socket paths must fit sun_path (108 bytes).
    let dir = std::env::temp_dir().join(format!("pxc-{pid}"));
    std::fs::create_dir_all(&dir).map_err(|e| cli::runtime(format!("{}: {e}", dir.display())))?;
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        keep: a.keep,
        dpdk_prefixes: Vec::new(),
        data_dirs: Vec::new(),
    };
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out)
            .map_err(|e| cli::usage(format!("--out {}: {e}", out.display())))?;
    }
    let base_port = a.base_port.unwrap_or(20_000 + (pid % 20_000) as u16);
    let n = a.replicas;
    let t = a.transport;

    // Storage: durable replicas get a data directory each (created by the node's --init),
    // and the filesystem under them is measured first.
    let durable = a.storage == StorageMode::Durable;
    // With --single-process the one node process gets the parent directory and makes
    // `replica-<i>` in it for each member it runs.
    let single_base = a.data_dir.clone().unwrap_or_else(|| dir.join("data"));
    let data_dirs: Vec<Option<PathBuf>> = (0..n)
        .map(|i| {
            durable.then(|| match &a.data_dir {
                _ if a.single_process => single_base.join(format!("replica-{i}")),
                Some(d) => d.join(format!("replica-{i}")),
                None => dir.join(format!("data-{i}")),
            })
        })
        .collect();
    let mut fsync: Option<(PathBuf, f64, f64)> = None;
    if durable {
        let parent = a.data_dir.clone().unwrap_or_else(|| dir.clone());
        std::fs::create_dir_all(&parent)
            .map_err(|e| cli::usage(format!("--data-dir {}: {e}", parent.display())))?;
        for d in data_dirs.iter().flatten() {
            if d.exists() {
                return Err(cli::usage(format!(
                    "--data-dir: {} exists already (from an earlier run?): remove it or give \
                     another --data-dir",
                    d.display()
                )));
            }
            if a.data_dir.is_some() {
                cleanup.data_dirs.push(d.clone());
            }
        }
        let (p50, p99) = fdatasync_probe(&parent, 1000)
            .map_err(|e| cli::runtime(format!("fdatasync probe in {}: {e}", parent.display())))?;
        fsync = Some((parent, p50, p99));
    }
    let fsync_line = fsync.as_ref().map(|(d, p50, p99)| {
        format!("fdatasync (4 KiB append) on {}: p50 {p50:.0} us, p99 {p99:.0} us", d.display())
    });
    if let Some(l) = &fsync_line {
        log::info!("{l}");
    }

    let cfg_path = dir.join("cluster.toml");
    // Elections after 50-100 ms without a leader (the default 5-10 ms is too eager when
    // more pollers than vCPUs share this machine: a descheduled leader looks dead).
    let toml = cluster_file(a, base_port)?;
    std::fs::write(&cfg_path, toml).map_err(|e| cli::runtime(format!("cluster file: {e}")))?;
    let cfg = cfg_path.display().to_string();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    if a.placement != Placement::Float && ncpu < 2 {
        return Err(cli::usage("--placement split|leader: needs at least 2 CPUs"));
    }
    let (node_cpus, client_cpus) = cpu_sets(ncpu, a.placement);
    let eal = |prefix: &str, vdevs: Vec<String>, cpus: &str| -> Vec<String> {
        let mut v = vec![
            format!("--file-prefix={prefix}"),
            "--no-huge".into(),
            "-m".into(),
            "256".into(),
            "--no-pci".into(),
            format!("--lcores={cpus}"),
            "--log-level=*:warning".into(),
        ];
        v.extend(vdevs.into_iter().map(|d| format!("--vdev={d}")));
        v.push("--".into());
        v
    };
    let rsize = a.memif_rsize;
    let memif = |name: &str, role: &str, sock: &Path| {
        format!("{name},role={role},socket={},socket-abstract=no,rsize={rsize}", sock.display())
    };
    let common_node = |ids: &str| -> Vec<String> {
        let mut v = vec![
            "--config".into(),
            cfg.clone(),
            "--id".into(),
            ids.into(),
            "--transport".into(),
            if t == ClusterTransport::Udp { "udp".into() } else { "dpdk".into() },
            "--idle".into(),
            a.idle.to_string(),
            "--stats-interval".into(),
            a.stats_interval.to_string(),
            "--sync-on".into(),
            a.sync_on.to_string(),
        ];
        if let Some(cpu) = leader_cpu(ncpu, a.placement) {
            v.extend(["--leader-cpus".into(), cpu.to_string()]);
        }
        let leader_idle = match (a.leader_idle, a.placement) {
            (Some(p), _) => Some(p),
            (None, Placement::Leader) => Some(IdlePolicy::Spin),
            (None, _) => None,
        };
        if let Some(p) = leader_idle {
            v.extend(["--leader-idle".into(), p.to_string()]);
        }
        if let Some(n) = a.snapshot_every {
            v.extend(["--snapshot-every".into(), n.to_string()]);
        }
        v
    };

    // af_packet/af_xdp: a namespace with a bridge and one veth pair per process, every
    // process started inside it (removed when `bridge` drops, after the processes: it is
    // declared before them).
    let bridge = if t.is_veth() {
        let processes = if a.single_process { 2 } else { usize::from(n) + 1 };
        let b = VethBridge::create(pid, processes)?;
        log::info!("network namespace {} with bridge and veth pairs created", b.netns());
        Some(b)
    } else {
        None
    };
    let launch = |name: &str, bin: &Path, args: &[String], log: &Path, append: bool| match &bridge {
        Some(b) => {
            let (ip, wrapped) = b.wrap(bin, args);
            spawn_logging(name, &ip, &wrapped, log, append)
        }
        None => spawn_logging(name, bin, args, log, append),
    };
    // (Re)starts replica process `r` with the storage flags of `how`.
    let start = |r: &mut Replica, how: Start, note: &str| -> Result<(), AppError> {
        let append = how != Start::First;
        if append {
            // A SIGKILLed memif server leaves its socket file; bind() would fail on it.
            for s in &r.sockets {
                let _ = std::fs::remove_file(s);
            }
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&r.proc.log)
                .map_err(|e| cli::runtime(format!("{}: {e}", r.proc.log.display())))?;
            use std::io::Write;
            let _ = writeln!(f, "--- paxos-cluster: {} started again: {note} ---", r.proc.name);
        }
        let offset = std::fs::metadata(&r.proc.log).map_or(0, |m| m.len());
        let mut args = r.args.clone();
        args.extend(storage_args(a.storage, r.data_dir.as_deref(), how));
        let name = r.proc.name.clone();
        r.proc = launch(&name, &node_bin, &args, &r.proc.log, append)?;
        r.life = Life::Running;
        r.tail = LogTail::new(&r.proc.log, offset);
        r.instance_start = offset;
        for c in &mut r.claims {
            c.1 = None;
        }
        r.starts += 1;
        r.awaiting_ready = append.then(Instant::now);
        r.awaiting_links = (append && t != ClusterTransport::Udp).then(Instant::now);
        Ok(())
    };

    // Nodes.
    let mut nodes: Vec<Replica> = Vec::new();
    let mut client_dpdk: Vec<String> = Vec::new();
    if a.single_process {
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let mut args = Vec::new();
        let mut sockets = Vec::new();
        if t == ClusterTransport::Memif {
            let prefix = format!("pxc{pid}-nodes");
            cleanup.dpdk_prefixes.push(prefix.clone());
            let sock = dir.join("c.sock");
            args = eal(&prefix, vec![memif("net_memif_c", "server", &sock)], &node_cpus);
            client_dpdk.push(memif("net_memif_r", "client", &sock));
            sockets.push(sock);
        } else if t.is_veth() {
            let prefix = format!("pxc{pid}-nodes");
            cleanup.dpdk_prefixes.push(prefix.clone());
            let net = bridge.as_ref().expect("veth bridge");
            args = eal(&prefix, vec![t.veth_vdev(net.dpdk_iface(0))], &node_cpus);
            client_dpdk.push(t.veth_vdev(net.dpdk_iface(1)));
        }
        args.extend(common_node(&ids.join(",")));
        let mut r = Replica::new("replicas", (0..n).collect(), args, dir.join("nodes.log"));
        r.sockets = sockets.clone();
        r.data_dir = durable.then(|| single_base.clone());
        start(&mut r, Start::First, "")?;
        nodes.push(r);
        wait_for_files(&sockets, &mut nodes, stop)?;
    } else {
        for i in 0..n {
            let mut args = Vec::new();
            let mut sockets = Vec::new();
            if t == ClusterTransport::Memif {
                let prefix = format!("pxc{pid}-r{i}");
                cleanup.dpdk_prefixes.push(prefix.clone());
                let mut vdevs = Vec::new();
                let mut routes = Vec::new();
                for j in 0..n {
                    if j == i {
                        continue;
                    }
                    let (lo, hi) = (i.min(j), i.max(j));
                    let sock = dir.join(format!("m{lo}-{hi}.sock"));
                    let role = if i < j { "server" } else { "client" };
                    if role == "server" {
                        sockets.push(sock.clone());
                    }
                    vdevs.push(memif(&format!("net_memif_r{j}"), role, &sock));
                    routes.extend(["--route".to_string(), format!("net_memif_r{j}={j}")]);
                }
                let csock = dir.join(format!("c-{i}.sock"));
                vdevs.push(memif("net_memif_c", "server", &csock));
                sockets.push(csock.clone());
                client_dpdk.push(memif(&format!("net_memif_r{i}"), "client", &csock));
                args = eal(&prefix, vdevs, &node_cpus);
                args.extend(common_node(&i.to_string()));
                args.extend(routes);
            } else if t.is_veth() {
                let prefix = format!("pxc{pid}-r{i}");
                cleanup.dpdk_prefixes.push(prefix.clone());
                let net = bridge.as_ref().expect("veth bridge");
                let vdev = t.veth_vdev(net.dpdk_iface(usize::from(i)));
                args = eal(&prefix, vec![vdev], &node_cpus);
                args.extend(common_node(&i.to_string()));
            } else {
                args.extend(common_node(&i.to_string()));
            }
            let log = dir.join(format!("node-{i}.log"));
            let mut r = Replica::new(&format!("replica {i}"), vec![i], args, log);
            r.sockets = sockets.clone();
            r.data_dir = data_dirs[usize::from(i)].clone();
            start(&mut r, Start::First, "")?;
            nodes.push(r);
            // Memif servers must listen before their clients start.
            wait_for_files(&sockets, &mut nodes, stop)?;
        }
    }
    if t.is_veth() && !a.single_process {
        let net = bridge.as_ref().expect("veth bridge");
        client_dpdk.push(t.veth_vdev(net.dpdk_iface(usize::from(n))));
    }
    wait_for_files(&[], &mut nodes, stop)?;

    // Client.
    let mut args: Vec<String> = Vec::new();
    if t != ClusterTransport::Udp {
        let prefix = format!("pxc{pid}-client");
        cleanup.dpdk_prefixes.push(prefix.clone());
        args = eal(&prefix, client_dpdk, &client_cpus);
        args.extend([
            "--transport".into(),
            "dpdk".into(),
            "--bind".into(),
            "10.77.0.200:9000".into(),
        ]);
        if !a.single_process && t == ClusterTransport::Memif {
            for i in 0..n {
                args.extend(["--route".into(), format!("net_memif_r{i}={i}")]);
            }
        }
    } else {
        args.extend(["--transport".into(), "udp".into(), "--bind".into(), "127.0.0.1:0".into()]);
    }
    let label = cluster_label(a);
    args.extend([
        "--config".into(),
        cfg.clone(),
        "--clients".into(),
        a.clients.to_string(),
        "--outstanding".into(),
        a.outstanding.to_string(),
        "--duration".into(),
        a.duration.to_string(),
        "--warmup".into(),
        a.warmup.to_string(),
        "--value-bytes".into(),
        a.value_bytes.to_string(),
        "--keys".into(),
        a.keys.to_string(),
        "--read-ratio".into(),
        a.read_ratio.to_string(),
        "--cas-ratio".into(),
        a.cas_ratio.to_string(),
        "--timeout-ms".into(),
        a.timeout_ms.to_string(),
        "--idle".into(),
        a.idle.to_string(),
        "--label".into(),
        label,
    ]);
    // The same columns for every run (empty where not measured), so CSV rows line up.
    let (p50, p99) = fsync.as_ref().map_or((String::new(), String::new()), |(_, p50, p99)| {
        (format!("{p50:.1}"), format!("{p99:.1}"))
    });
    for (k, v) in
        [("storage", a.storage.to_string()), ("fdatasync_p50_us", p50), ("fdatasync_p99_us", p99)]
    {
        args.extend(["--extra".into(), format!("{k}={v}")]);
    }
    if let Some(r) = a.rate {
        args.extend(["--rate".into(), r.to_string()]);
    }
    if a.no_batch {
        args.push("--no-batch".into());
    }
    if !schedule.is_empty() {
        args.push("--per-second".into());
    }
    if let Some(out) = &a.out {
        let p = |f: &str| out.join(f).display().to_string();
        args.extend(["--json".into(), p("summary.json"), "--csv".into(), p("results.csv")]);
        args.extend(["--interval-log".into(), p("latency.hlog")]);
        if a.history {
            args.extend(["--history".into(), p("history.jsonl")]);
        }
        if a.verify {
            args.push("--verify".into());
        }
    }
    let client_log = dir.join("client.log");
    let mut client = launch("client", &client_bin, &args, &client_log, false)?;
    let budget = Duration::from_secs_f64(a.warmup + a.duration)
        + Duration::from_millis(a.timeout_ms)
        + Duration::from_secs(60);
    let started = Instant::now();
    let mut sv = Supervisor {
        nodes,
        events: Vec::new(),
        restarts: Restarts::default(),
        anchor: None,
        last_hit: [None, None],
        injected: Vec::new(),
        refused: Vec::new(),
        unscheduled: Vec::new(),
        moved_aside: Vec::new(),
    };
    let mut client_tail = LogTail::new(&client_log, 0);
    let mut next_fault = 0;
    let status = loop {
        if let Some(st) = client.wait_until(Instant::now() + Duration::from_millis(10), stop) {
            break Some(st);
        }
        if stop.load(Ordering::Relaxed) {
            break None;
        }
        for l in client_tail.new_lines() {
            // The client logs `client at ...` just before its run starts.
            if sv.anchor.is_none() && l.contains("] client at ") {
                let t0 = faults::log_time(&l).unwrap_or_else(SystemTime::now);
                sv.anchor = Some(t0 + Duration::from_secs_f64(a.warmup));
            }
            sv.restarts.relink_line("client", &l);
        }
        sv.poll_logs();
        sv.check_exits();
        while let (Some(f), Some(anchor)) = (schedule.get(next_fault), sv.anchor) {
            if SystemTime::now() < anchor + Duration::from_secs_f64(f.at) {
                break;
            }
            next_fault += 1;
            inject(&mut sv, f, &start, a.storage);
        }
        if started.elapsed() > budget {
            log::error!("the client did not finish within {budget:?}");
            break None;
        }
    };
    for l in client_tail.new_lines() {
        sv.restarts.relink_line("client", &l);
    }
    let why = if sv.anchor.is_some() {
        "the run ended before it was due"
    } else {
        "the client never logged `client at ...` (its start; info level: does RUST_LOG hide it?)"
    };
    for f in &schedule[next_fault..] {
        sv.refused.push((f.clone(), f.at, why.into()));
    }
    if status.is_none() {
        client.terminate(Duration::from_secs(3));
    }
    let client_out = std::fs::read_to_string(&client_log).unwrap_or_default();
    // The report lines, without log lines (env_logger's `[..]`, DPDK's `EAL: ..` and
    // `memif_connect_client(): ..`).
    let is_log = |l: &str| {
        let dpdk_fn = l.split_once("(): ").is_some_and(|(f, _)| {
            !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        l.starts_with('[')
            || dpdk_fn
            || ["EAL:", "TELEMETRY:", "ETHDEV:", "MEMIF:"].iter().any(|p| l.starts_with(p))
    };
    for l in client_out.lines().filter(|l| !is_log(l)) {
        println!("{l}");
    }
    if let Some(l) = &fsync_line {
        println!("  {l}");
    }
    let ok = matches!(status, Some(st) if st.success());
    // Stop the replicas (continuing stopped ones first), all at once so that no election
    // runs among those still up, and show their final counters.
    sv.check_exits();
    for r in sv.nodes.iter_mut() {
        if r.proc.stopped {
            r.proc.signal("CONT");
        }
        r.proc.signal("TERM");
    }
    for r in sv.nodes.iter_mut() {
        r.proc.terminate(Duration::from_secs(5));
    }
    sv.poll_logs();
    for r in &sv.nodes {
        let name = match r.starts {
            0 | 1 => r.proc.name.clone(),
            k => format!("{} (started {k} times)", r.proc.name),
        };
        let finals = lines_starting_from(&r.proc.log, r.instance_start, "final");
        if finals.is_empty() && r.life == Life::Dead {
            let why = r.last_fault.as_deref().unwrap_or("dead");
            println!("  {name}: {why}; no final counters");
        }
        for l in finals {
            println!("  {name}: {l}");
        }
    }
    if !schedule.is_empty() || !sv.unscheduled.is_empty() {
        for l in fault_summary(&sv, a) {
            println!("{l}");
        }
    }
    if let Some(out) = &a.out {
        for p in sv.nodes.iter().map(|r| &r.proc.log).chain([&client_log]) {
            if let Some(name) = p.file_name() {
                let _ = std::fs::copy(p, out.join(name));
            }
        }
    }
    let Supervisor { nodes, unscheduled, refused, moved_aside, .. } = sv;
    if a.data_dir.is_some() {
        cleanup.data_dirs.extend(moved_aside);
    }
    drop(nodes);
    drop(bridge);
    drop(cleanup);
    if stop.load(Ordering::Relaxed) {
        return Err(cli::runtime("interrupted"));
    }
    if !ok {
        return Err(cli::runtime(format!(
            "the client failed ({}):\n{}",
            status.map_or("did not finish".to_string(), |s| s.to_string()),
            tail(&client_log, 20)
        )));
    }
    if !unscheduled.is_empty() {
        return Err(cli::runtime(format!(
            "{} replica exit(s) not caused by the fault schedule: {}",
            unscheduled.len(),
            unscheduled.join("; ")
        )));
    }
    if !refused.is_empty() {
        let v: Vec<String> =
            refused.iter().map(|(f, _, why)| format!("--fault {}: {why}", f.spec)).collect();
        return Err(cli::runtime(format!("fault(s) not injected: {}", v.join("; "))));
    }
    Ok(())
}

/// The client's `--label`: the user's, or one derived from the options; either way it says
/// the storage mode.
pub fn cluster_label(a: &ClusterArgs) -> String {
    let mut storage = format!("storage {}", a.storage);
    match a.sync_on {
        _ if a.storage != StorageMode::Durable => {}
        SyncOn::Lcore => {}
        SyncOn::Thread => storage.push_str(" (sync on a thread)"),
        SyncOn::ThreadBlock => storage.push_str(" (sync on a thread, idle loops wait for it)"),
    }
    match &a.label {
        Some(l) if l.contains("storage") => l.clone(),
        Some(l) => format!("{l} {storage}"),
        None => {
            let lp = match a.rate {
                Some(r) => format!("open {r} ops/s"),
                None => format!("{}x{} outstanding", a.clients, a.outstanding),
            };
            let placement = if a.single_process { ", single-process" } else { "" };
            let split = match a.placement {
                Placement::Float => "",
                Placement::Split => ", client on its own CPU",
                Placement::Leader => ", leader on its own CPU",
            };
            format!(
                "{}{placement}{split} {} replicas {}B {lp} idle {} {storage}",
                a.transport, a.replicas, a.value_bytes, a.idle
            )
        }
    }
}

/// Injects `f` now (the fault line is printed), or records why it cannot be.
fn inject(
    sv: &mut Supervisor,
    f: &Fault,
    start: &dyn Fn(&mut Replica, Start, &str) -> Result<(), AppError>,
    storage: StorageMode,
) {
    let at = sv.now();
    let hit = match sv.targets(f) {
        Ok(h) => h,
        Err(why) => {
            println!("fault {at:+.2}s {} {}: not injected: {why}", f.action, f.target);
            sv.refused.push((f.clone(), at, why));
            return;
        }
    };
    let mut done = Vec::new();
    for &i in &hit {
        let r = &mut sv.nodes[i];
        let id = r.ids[0];
        let old_pid = r.proc.pid().unwrap_or(0);
        let mut note = String::new();
        let res: Result<(), String> = match f.action {
            Action::Kill => {
                r.proc.kill();
                r.life = Life::Dead;
                r.awaiting_ready = None;
                r.awaiting_links = None;
                r.last_fault = Some(format!("killed at {at:+.2}s"));
                Ok(())
            }
            Action::Stop => {
                if r.proc.signal("STOP") {
                    r.life = Life::Stopped;
                    Ok(())
                } else {
                    Err("kill -STOP failed".into())
                }
            }
            Action::Cont => {
                if r.proc.signal("CONT") {
                    r.life = Life::Running;
                    Ok(())
                } else {
                    Err("kill -CONT failed".into())
                }
            }
            Action::Restart | Action::Wipe => {
                let how = if f.action == Action::Wipe { Start::Wipe } else { Start::Restart };
                if how == Start::Wipe {
                    note = match &r.data_dir {
                        None => format!("; no data directory to move ({storage} storage)"),
                        Some(d) if !d.exists() => format!("; {} did not exist", d.display()),
                        Some(d) => {
                            let mut k = 1;
                            let aside = loop {
                                let p = PathBuf::from(format!("{}.wiped-{k}", d.display()));
                                if !p.exists() {
                                    break p;
                                }
                                k += 1;
                            };
                            match std::fs::rename(d, &aside) {
                                Ok(()) => {
                                    let note =
                                        format!("; data directory moved to {}", aside.display());
                                    sv.moved_aside.push(aside);
                                    note
                                }
                                Err(e) => format!("; could not move {}: {e}", d.display()),
                            }
                        }
                    };
                }
                let why = format!("{} at {at:+.2}s", f.spec);
                start(r, how, &why).map_err(|e| e.to_string())
            }
        };
        match res {
            Ok(()) => {
                let pid = r.proc.pid().unwrap_or(old_pid);
                let rejoin = matches!(
                    (f.action, storage),
                    (Action::Wipe, _) | (Action::Restart, StorageMode::Memory)
                );
                let flag = if rejoin { ", --rejoin" } else { "" };
                done.push(format!("replica {id} (pid {pid}{flag}{note})"));
            }
            Err(why) => {
                println!("fault {at:+.2}s {} {}: replica {id}: {why}", f.action, f.target);
                sv.refused.push((f.clone(), at, format!("replica {id}: {why}")));
            }
        }
    }
    if !done.is_empty() {
        let hit = done.join(", ");
        println!("fault {at:+.2}s {} {} -> {hit}", f.action, f.target);
        sv.injected.push((f.clone(), at, hit));
    }
}

/// The end-of-run fault report: faults by kind with times, leader changes in the logs,
/// restarts' time to ready, unscheduled exits.
fn fault_summary(sv: &Supervisor, a: &ClusterArgs) -> Vec<String> {
    let mut out = vec![format!(
        "fault summary ({}, storage {}, times from the measured start):",
        a.transport, a.storage
    )];
    for kind in [Action::Kill, Action::Stop, Action::Cont, Action::Restart, Action::Wipe] {
        let v: Vec<String> = sv
            .injected
            .iter()
            .filter(|(f, _, _)| f.action == kind)
            .map(|(f, at, hit)| format!("{at:+.2}s {} -> {hit}", f.target))
            .collect();
        if !v.is_empty() {
            out.push(format!("  {kind} x{}: {}", v.len(), v.join("; ")));
        }
    }
    for (f, at, why) in &sv.refused {
        out.push(format!("  not injected: {} (due {at:+.2}s): {why}", f.spec));
    }
    let list = |v: &[(u16, f64)]| -> String {
        v.iter().map(|(id, s)| format!("replica {id} {s:.2} s")).collect::<Vec<_>>().join(", ")
    };
    if !sv.restarts.ready.is_empty() {
        out.push(format!("  restart to ready line: {}", list(&sv.restarts.ready)));
    }
    if !sv.restarts.links.is_empty() {
        out.push(format!("  restart to all DPDK links up: {}", list(&sv.restarts.links)));
    }
    if !sv.restarts.relinks.is_empty() {
        out.push(format!(
            "  memif links reconnected by their client end: {}",
            sv.restarts.relinks.join("; ")
        ));
    }
    let mut g0: Vec<&LeaderLine> = sv.events.iter().filter(|e| e.group == 0 && e.leading).collect();
    g0.sort_by_key(|e| e.time);
    let shown: Vec<String> = g0
        .iter()
        .map(|e| {
            let at = e.time.map(|t| offset(sv.anchor, t));
            let when = at.map_or("?".to_string(), |s| format!("{s:+.2}s"));
            let phase = match at {
                Some(s) if s < 0.0 => " (warm-up)",
                Some(s) if s > a.duration => " (after the run)",
                _ => "",
            };
            format!("{when} replica {} b{}.{}{phase}", e.replica, e.ballot.0, e.ballot.1)
        })
        .collect();
    let others = sv.events.iter().filter(|e| e.group != 0 && e.leading).count();
    let more = if others > 0 { format!(" (other groups: {others})") } else { String::new() };
    out.push(format!(
        "  leader changes seen in the logs (group 0): {}{more}{}{}",
        g0.len(),
        if shown.is_empty() { "" } else { ": " },
        shown.join(", ")
    ));
    if sv.unscheduled.is_empty() {
        out.push("  unscheduled exits: none".into());
    } else {
        out.push(format!("  unscheduled exits: {}", sv.unscheduled.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ClusterArgs {
        let mut v = vec!["paxos-cluster", "--transport", "udp"];
        v.extend_from_slice(extra);
        ClusterArgs::try_parse_from(v).unwrap()
    }

    #[test]
    fn generated_file_takes_set_keys() {
        let a = args(&[]);
        let c = crate::config::Cluster::parse(&cluster_file(&a, 9000).unwrap()).unwrap();
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.core.election_timeout_min_ticks, 500);
        assert!(!c.core.accepted_to_learners);
        let a = args(&[
            "--set",
            "accepted_to_learners=true",
            "--set",
            "batch_max_bytes = 1024",
            "--set",
            "election_timeout_min_ticks=200",
        ]);
        let c = crate::config::Cluster::parse(&cluster_file(&a, 9000).unwrap()).unwrap();
        assert!(c.core.accepted_to_learners);
        assert_eq!(c.core.batch_max_bytes, 1024);
        assert_eq!(c.core.election_timeout_min_ticks, 200);
        for bad in ["nonsense=1", "batch_max_bytes=100000", "window=\"x\""] {
            let e = cluster_file(&args(&["--set", bad]), 9000).unwrap_err();
            assert_eq!(e.exit_code(), cli::EXIT_USAGE, "{bad}: {e}");
        }
        assert!(args(&["--set", "noequals"]).validate().is_err());
        assert!(args(&["--memif-rsize", "15"]).validate().is_err());
        assert!(args(&["--placement", "split"]).validate().is_err(), "udp: no EAL placement");
        assert_eq!(cpu_sets(2, Placement::Float), ("0@(0-1)".into(), "0@(0-1)".into()));
        assert_eq!(cpu_sets(2, Placement::Split), ("0@0".into(), "0@1".into()));
        assert_eq!(cpu_sets(8, Placement::Split), ("0@(0-6)".into(), "0@7".into()));
        assert_eq!(cpu_sets(1, Placement::Split), ("0@0".into(), "0@0".into()));
        assert_eq!(cpu_sets(2, Placement::Leader), ("0@0".into(), "0@0".into()));
        assert_eq!(cpu_sets(4, Placement::Leader), ("0@(0-2)".into(), "0@(0-2)".into()));
        assert_eq!(leader_cpu(4, Placement::Leader), Some(3));
        assert_eq!(leader_cpu(1, Placement::Leader), None);
        assert_eq!(leader_cpu(4, Placement::Float), None);
        assert!(args(&["--placement", "leader"]).validate().is_err(), "udp: no EAL placement");
        assert!(args(&["--leader-idle", "spin"]).validate().is_err(), "udp: no --leader-idle");
    }
}
