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
//! Every poller uses the `--idle` policy (default adaptive: yield, except that a leader with
//! slots in flight spins a few polls for the answer; this machine has fewer vCPUs than
//! pollers, see shared ENVIRONMENT.md and dataplane::idle).

use crate::cli::{self, AppError, Idle};
use crate::config::local_cluster_toml;
use clap::{Parser, ValueEnum};
use dataplane::idle::IdlePolicy;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// A child process, terminated (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
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

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status if it exited.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let pid = self.pid()?;
        if let Some(st) = self.exited() {
            return Some(st);
        }
        let _ =
            Command::new("kill").args(["-TERM", &pid.to_string()]).stderr(Stdio::null()).status();
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

/// Starts `bin args` with stdout and stderr into `log`.
pub fn spawn(name: &str, bin: &Path, args: &[String], log: &Path) -> Result<Proc, AppError> {
    let out = File::create(log).map_err(|e| cli::runtime(format!("{}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| cli::runtime(format!("{}: {e}", log.display())))?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| cli::runtime(format!("cannot start {}: {e}", bin.display())))?;
    log::debug!("started {name} (pid {}): {} {}", child.id(), bin.display(), args.join(" "));
    Ok(Proc { name: name.to_string(), child: Some(child), log: log.to_path_buf() })
}

/// The work directory and DPDK runtime directories, removed when dropped.
pub struct Cleanup {
    pub dir: PathBuf,
    pub keep: bool,
    pub dpdk_prefixes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.dpdk_prefixes {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{p}"));
        }
        if self.keep {
            eprintln!("paxos-cluster: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
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
    procs: &mut [Proc],
    stop: &AtomicBool,
) -> Result<(), AppError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = |p: &Proc| !lines_starting(&p.log, crate::node::READY_PREFIX).is_empty();
    while !files.iter().all(|f| f.exists()) || !procs.iter().all(ready) {
        for p in procs.iter_mut() {
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
            let slow: Vec<_> = procs.iter().filter(|p| !ready(p)).map(|p| &p.name).collect();
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

pub fn run(a: &ClusterArgs, stop: &AtomicBool) -> Result<(), AppError> {
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
    let mut cleanup = Cleanup { dir: dir.clone(), keep: a.keep, dpdk_prefixes: Vec::new() };
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out)
            .map_err(|e| cli::usage(format!("--out {}: {e}", out.display())))?;
    }
    let base_port = a.base_port.unwrap_or(20_000 + (pid % 20_000) as u16);
    let n = a.replicas;
    let t = a.transport;
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
    let launch = |name: &str, bin: &Path, args: &[String], log: &Path| match &bridge {
        Some(b) => {
            let (ip, wrapped) = b.wrap(bin, args);
            spawn(name, &ip, &wrapped, log)
        }
        None => spawn(name, bin, args, log),
    };

    // Nodes.
    let mut nodes: Vec<Proc> = Vec::new();
    let mut client_dpdk: Vec<String> = Vec::new();
    if a.single_process {
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let mut args = Vec::new();
        if t == ClusterTransport::Memif {
            let prefix = format!("pxc{pid}-nodes");
            cleanup.dpdk_prefixes.push(prefix.clone());
            let sock = dir.join("c.sock");
            args = eal(&prefix, vec![memif("net_memif_c", "server", &sock)], &node_cpus);
            client_dpdk.push(memif("net_memif_r", "client", &sock));
        } else if t.is_veth() {
            let prefix = format!("pxc{pid}-nodes");
            cleanup.dpdk_prefixes.push(prefix.clone());
            let net = bridge.as_ref().expect("veth bridge");
            args = eal(&prefix, vec![t.veth_vdev(net.dpdk_iface(0))], &node_cpus);
            client_dpdk.push(t.veth_vdev(net.dpdk_iface(1)));
        }
        args.extend(common_node(&ids.join(",")));
        nodes.push(launch("replicas", &node_bin, &args, &dir.join("nodes.log"))?);
        if t == ClusterTransport::Memif {
            wait_for_files(&[dir.join("c.sock")], &mut nodes, stop)?;
        }
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
            nodes.push(launch(
                &format!("replica {i}"),
                &node_bin,
                &args,
                &dir.join(format!("node-{i}.log")),
            )?);
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
    let label = a.label.clone().unwrap_or_else(|| {
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
        format!("{t}{placement}{split} {n} replicas {}B {lp} idle {}", a.value_bytes, a.idle)
    });
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
    if let Some(r) = a.rate {
        args.extend(["--rate".into(), r.to_string()]);
    }
    if a.no_batch {
        args.push("--no-batch".into());
    }
    if let Some(out) = &a.out {
        let p = |f: &str| out.join(f).display().to_string();
        args.extend(["--json".into(), p("summary.json"), "--csv".into(), p("results.csv")]);
        args.extend(["--interval-log".into(), p("latency.hlog")]);
        if a.history {
            args.extend(["--history".into(), p("history.jsonl")]);
        }
    }
    let client_log = dir.join("client.log");
    let mut client = launch("client", &client_bin, &args, &client_log)?;
    let budget = Duration::from_secs_f64(a.warmup + a.duration)
        + Duration::from_millis(a.timeout_ms)
        + Duration::from_secs(60);
    let started = Instant::now();
    let status = loop {
        if let Some(st) = client.wait_until(Instant::now() + Duration::from_millis(100), stop) {
            break Some(st);
        }
        if stop.load(Ordering::Relaxed) {
            break None;
        }
        if let Some((i, st)) =
            nodes.iter_mut().enumerate().find_map(|(i, p)| p.exited().map(|s| (i, s)))
        {
            let p = &nodes[i];
            return Err(cli::runtime(format!(
                "{} exited during the run ({st}):\n{}",
                p.name,
                tail(&p.log, 20)
            )));
        }
        if started.elapsed() > budget {
            log::error!("the client did not finish within {budget:?}");
            break None;
        }
    };
    if status.is_none() {
        client.terminate(Duration::from_secs(3));
    }
    let client_out = std::fs::read_to_string(&client_log).unwrap_or_default();
    // The report lines, without log lines (env_logger's `[..]`, DPDK's `EAL: ..`).
    let is_log = |l: &str| {
        l.starts_with('[')
            || ["EAL:", "TELEMETRY:", "ETHDEV:", "MEMIF:"].iter().any(|p| l.starts_with(p))
    };
    for l in client_out.lines().filter(|l| !is_log(l)) {
        println!("{l}");
    }
    let ok = matches!(status, Some(st) if st.success());
    // Stop the replicas and show their final counters.
    for p in nodes.iter_mut() {
        p.terminate(Duration::from_secs(5));
    }
    for p in &nodes {
        for l in lines_starting(&p.log, "final") {
            println!("  {}: {l}", p.name);
        }
    }
    if let Some(out) = &a.out {
        for p in nodes.iter().map(|p| &p.log).chain([&client_log]) {
            if let Some(name) = p.file_name() {
                let _ = std::fs::copy(p, out.join(name));
            }
        }
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
    Ok(())
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
