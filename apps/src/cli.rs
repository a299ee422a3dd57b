//! Pieces shared by the three binaries: DPDK-style argument splitting, errors with exit
//! codes, the transport choice, `--route` parsing, signals, and logging.

use crate::config::{Cluster, MemberInfo};
use clap::ValueEnum;
use dataplane::idle::IdlePolicy;
use paxos_core::ReplicaId;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit code for bad arguments or a bad cluster file (clap uses the same).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a failure at run time (a socket that cannot be bound, EAL init failure, ...).
pub const EXIT_FAILURE: i32 = 1;

/// Why a binary stops early.
#[derive(Debug)]
pub enum AppError {
    /// Bad arguments or configuration: exit code 2.
    Usage(String),
    /// Anything else: exit code 1.
    Runtime(String),
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_) => EXIT_USAGE,
            AppError::Runtime(_) => EXIT_FAILURE,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            AppError::Usage(m) | AppError::Runtime(m) => m,
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

pub fn usage(msg: impl Into<String>) -> AppError {
    AppError::Usage(msg.into())
}
pub fn runtime(msg: impl Into<String>) -> AppError {
    AppError::Runtime(msg.into())
}

/// Prints `prog: error: ...` and exits with the error's code.
pub fn exit_with(prog: &str, e: AppError) -> ! {
    eprintln!("{prog}: error: {e}");
    std::process::exit(e.exit_code())
}

/// DPDK style: everything before the first `--` is EAL's, everything after is ours. Without
/// a `--`, all arguments are ours and the EAL part is just the program name. Returns
/// (EAL argv including the program name, application argv including the program name).
pub fn split_eal_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let prog = args.first().cloned().unwrap_or_else(|| "paxos".into());
    match args.iter().position(|a| a == "--") {
        Some(i) => {
            let eal = args[..i].to_vec();
            let mut app = vec![prog];
            app.extend_from_slice(&args[i + 1..]);
            (eal, app)
        }
        None => (vec![prog], args.to_vec()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Kernel UDP sockets.
    Udp,
    /// DPDK (the ports the EAL arguments create: NICs or vdevs such as net_memif).
    Dpdk,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Dpdk => "dpdk",
        })
    }
}

/// Where each acceptor keeps its stable state (promise, accepted values, trim point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StorageMode {
    /// In memory only: a restarted replica has lost its acceptor state and must come back
    /// with `--rejoin` (non-voting until it is safe to vote again).
    Memory,
    /// An append-only, checksummed log per group under `--data-dir`, synced before any
    /// message that depends on it leaves.
    Durable,
}

impl std::fmt::Display for StorageMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageMode::Memory => "memory",
            StorageMode::Durable => "durable",
        })
    }
}

/// `--sync-on`: where a group's fdatasync runs (durable storage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SyncOn {
    /// On the polling thread (lcore), which blocks in fdatasync once per poll that wrote.
    #[default]
    Lcore,
    /// On a thread of each group log's own; the poll loop never blocks and sends what a
    /// sync held back in the first poll after it completed.
    Thread,
    /// `thread`, but a poll loop with nothing to do waits for a sync in flight (leaving
    /// the CPU, as `lcore` does while it syncs) instead of polling for its completion.
    ThreadBlock,
}

impl SyncOn {
    pub fn driver(self) -> dataplane::driver::SyncOn {
        match self {
            SyncOn::Lcore => dataplane::driver::SyncOn::Lcore,
            SyncOn::Thread | SyncOn::ThreadBlock => dataplane::driver::SyncOn::Thread,
        }
    }
}

impl std::fmt::Display for SyncOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncOn::Lcore => "lcore",
            SyncOn::Thread => "thread",
            SyncOn::ThreadBlock => "thread-block",
        })
    }
}

/// The transport a binary uses when none is given: DPDK if compiled in.
pub const DEFAULT_TRANSPORT: &str = if cfg!(feature = "dpdk") { "dpdk" } else { "udp" };

/// Fails clearly when DPDK was asked for in a build without it.
pub fn check_transport_compiled(t: Transport) -> Result<(), AppError> {
    if t == Transport::Dpdk && !cfg!(feature = "dpdk") {
        return Err(usage(
            "--transport dpdk: this build has no DPDK support (built without the `dpdk` \
             feature of the apps crate); rebuild with it or use --transport udp",
        ));
    }
    Ok(())
}

/// `--idle`: one of dataplane's policies (`spin`, `yield`, `sleep[:<n>{ns,us,ms}]`), or
/// `block` (kernel UDP only): after [`SPINS_BEFORE_BLOCK`] empty polls, sleep in the kernel
/// until the socket is readable or the next timer is due. Blocking leaves the vCPU to the
/// processes that have work, which matters when pollers outnumber vCPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    Poll(IdlePolicy),
    Block,
}

/// Empty polls (yielding in between) before a `block` loop blocks.
pub const SPINS_BEFORE_BLOCK: u32 = 16;

impl Idle {
    /// The policy between polls (for `block`: yield until it blocks).
    pub fn policy(self) -> IdlePolicy {
        match self {
            Idle::Poll(p) => p,
            Idle::Block => IdlePolicy::Yield,
        }
    }
}

impl std::str::FromStr for Idle {
    type Err = String;
    fn from_str(s: &str) -> Result<Idle, String> {
        if s == "block" {
            return Ok(Idle::Block);
        }
        s.parse::<IdlePolicy>()
            .map(Idle::Poll)
            .map_err(|e| format!("{e}, or block (kernel UDP only)"))
    }
}

impl std::fmt::Display for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Idle::Poll(p) => p.fmt(f),
            Idle::Block => f.write_str("block"),
        }
    }
}

/// Blocks until `sock` (non-blocking, and left so) has a datagram or `timeout` passed,
/// without consuming anything.
pub fn wait_readable(sock: &std::net::UdpSocket, timeout: std::time::Duration) {
    let timeout = timeout.max(std::time::Duration::from_micros(1));
    if sock.set_read_timeout(Some(timeout)).is_err() || sock.set_nonblocking(false).is_err() {
        std::thread::yield_now();
        return;
    }
    let mut b = [0u8; 1];
    let _ = sock.peek_from(&mut b);
    let _ = sock.set_nonblocking(true);
}

/// A `--route DEV=MEMBER` option: datagrams to member MEMBER's address leave on the DPDK
/// port called DEV (e.g. `net_memif_r1=1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub device: String,
    pub member: u16,
}

impl std::str::FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Route, String> {
        let (dev, id) =
            s.split_once('=').ok_or_else(|| format!("{s:?}: expected DEV=MEMBER_ID"))?;
        let member = id.parse().map_err(|_| format!("{s:?}: {id:?} is not a member id"))?;
        if dev.is_empty() {
            return Err(format!("{s:?}: empty device name"));
        }
        Ok(Route { device: dev.to_string(), member })
    }
}

/// Loads the cluster file; errors become usage errors naming the file and the field.
pub fn load_cluster(path: &Path) -> Result<Cluster, AppError> {
    Cluster::load(path).map_err(|e| usage(format!("--config {}: {e}", path.display())))
}

/// The member `id`, or a usage error listing the members.
pub fn member<'a>(cluster: &'a Cluster, id: u16, path: &Path) -> Result<&'a MemberInfo, AppError> {
    cluster.member(ReplicaId(id)).ok_or_else(|| {
        let ids: Vec<String> = cluster.members.iter().map(|m| m.id.0.to_string()).collect();
        usage(format!(
            "--id {id}: {} has no member {id} (members: {})",
            path.display(),
            ids.join(", ")
        ))
    })
}

/// Checks routes against the cluster: each names a member.
pub fn check_routes(cluster: &Cluster, routes: &[Route]) -> Result<(), AppError> {
    for r in routes {
        if cluster.member(ReplicaId(r.member)).is_none() {
            return Err(usage(format!(
                "--route {}={}: no member {} in the cluster file",
                r.device, r.member, r.member
            )));
        }
    }
    Ok(())
}

/// SIGINT and SIGTERM set the returned flag (signal-hook: a safe, async-signal-safe store).
/// A second signal while the flag is set terminates the process at once.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>, AppError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the conditional shutdown runs only if the flag is already set.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| runtime(format!("cannot install a signal handler: {e}")))?;
    }
    Ok(stop)
}

/// env_logger with `RUST_LOG` (default `info`), to stderr.
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).format_timestamp_micros().try_init();
}

/// A seed that differs between runs and processes.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = t ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splits_like_dpdk() {
        let (eal, app) = split_eal_args(&v(&["p", "--no-huge", "--", "--id", "1"]));
        assert_eq!(eal, v(&["p", "--no-huge"]));
        assert_eq!(app, v(&["p", "--id", "1"]));
        let (eal, app) = split_eal_args(&v(&["p", "--id", "1"]));
        assert_eq!(eal, v(&["p"]));
        assert_eq!(app, v(&["p", "--id", "1"]));
        let (eal, app) = split_eal_args(&v(&["p", "--", "--id", "1"]));
        assert_eq!((eal, app), (v(&["p"]), v(&["p", "--id", "1"])));
    }

    #[test]
    fn routes_parse() {
        assert_eq!(
            "net_memif_r1=1".parse::<Route>(),
            Ok(Route { device: "net_memif_r1".into(), member: 1 })
        );
        assert!("net_memif_r1".parse::<Route>().is_err());
        assert!("x=y".parse::<Route>().is_err());
        assert!("=1".parse::<Route>().is_err());
    }
}
