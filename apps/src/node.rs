//! `paxos-node`: one member of the cluster, serving the KV store in every group (or one).
//!
//! ```text
//! paxos-node [EAL options] -- --config cluster.toml --id N [--transport dpdk|udp]
//!            [--idle spin|yield|adaptive|sleep] [--stats-interval SECS] [--group G] [--route DEV=MEMBER]
//!            [--leader-idle POLICY] [--leader-cpus CPUS]
//! paxos-node --config cluster.toml --id N --transport udp        (no EAL part)
//! ```
//! - udp: group g binds `member.ip:base_port+g` and runs its `GroupDriver` on its own thread.
//! - dpdk: every DPDK port the EAL arguments made is started; each group is an endpoint
//!   (`member.ip`, `base_port+g`, `member.mac`) on every port (software dispatch where the
//!   device has no flow rules), transmits routed by destination (`--route`). With only the
//!   main lcore all groups are polled there; with worker lcores each group runs on its own
//!   lane (see `node_dpdk`). `/paxos/stats` and `/paxos/lcores` are registered with DPDK
//!   telemetry. `--leader-idle`/`--leader-cpus` change an lcore's idle policy and CPUs while
//!   it leads (`RoleTuning` in `node_dpdk`).
//!
//! A stats line per group every `--stats-interval` seconds; SIGINT/SIGTERM stop the loops,
//! and the final counters are printed (a second signal kills at once).

use crate::cli::{self, AppError, Idle, Route, StorageMode, SyncOn, Transport};
use crate::config::{Cluster, MemberInfo};
use crate::kv;
use crate::kvapp::KvApp;
use crate::storage::{OpenedGroup, StorageOpts};
use bytes::Bytes;
use clap::Parser;
use dataplane::counters::Counters;
use dataplane::driver::{DriverConfig, GroupDriver};
use dataplane::durable::NodeStorage;
use dataplane::fault::NoFaults;
use dataplane::idle::IdlePolicy;
use dataplane::io::{Endpoint, PacketIo};
use dataplane::peers::PeerTable;
use dataplane::udp::UdpIo;
use paxos_core::GroupId;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "paxos-node",
    about = "A Multi-Paxos replica serving the replicated KV store.",
    after_help = "DPDK style: `paxos-node [EAL options] -- [options]`. With --transport udp the \
                  EAL part may be left out. Logging: RUST_LOG (default info). Exit code 2: bad \
                  arguments or cluster file."
)]
pub struct NodeArgs {
    /// The cluster file (TOML, see docs/operations.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// This node's member id in the cluster file. Several (`--id 0,1,2` or repeated): those
    /// members all run in this process (single-process mode; with DPDK they share the ports
    /// and reach each other through the software dispatch without leaving the process).
    #[arg(long, value_name = "N", value_delimiter = ',', required = true)]
    pub id: Vec<u16>,
    /// Packet I/O: DPDK ports (from the EAL options) or kernel UDP sockets.
    #[arg(long, value_enum, default_value = cli::DEFAULT_TRANSPORT)]
    pub transport: Transport,
    /// What a poll loop does when a poll found nothing: spin (dedicated cores), yield
    /// (sched_yield: cores shared with other pollers), sleep or sleep:<n>{ns,us,ms}, or
    /// block (udp only: wait in the kernel for a datagram or the next tick).
    #[arg(long, default_value = "yield", value_name = "POLICY")]
    pub idle: Idle,
    /// DPDK: the idle policy of an lcore while it leads a group (default: --idle). With
    /// --leader-cpus, `spin`: the leader keeps a CPU of its own busy while followers yield.
    #[arg(long, value_name = "POLICY")]
    pub leader_idle: Option<IdlePolicy>,
    /// DPDK: while an lcore leads a group it runs on these CPUs (e.g. `1` or `2,3`) and goes
    /// back to its EAL CPU set (from --lcores) when it stops leading. For machines with more
    /// pollers than CPUs: the leader, which does most of the work, gets a CPU to itself.
    #[arg(long, value_name = "CPUS", value_delimiter = ',')]
    pub leader_cpus: Vec<usize>,
    /// Seconds between stats lines (0: none).
    #[arg(long, allow_negative_numbers = true, default_value_t = 5.0, value_name = "SECS")]
    pub stats_interval: f64,
    /// Serve only this group (default: all groups of the cluster file).
    #[arg(long, value_name = "G")]
    pub group: Option<u16>,
    /// DPDK: datagrams to MEMBER leave on port DEV (repeatable). Unrouted destinations
    /// (clients) use the port they were heard on, else the first port without a route.
    #[arg(long = "route", value_name = "DEV=MEMBER")]
    pub routes: Vec<Route>,
    /// Acceptor state: `durable` (the default: a log per group under --data-dir, synced
    /// before any vote leaves) or `memory` (lost on exit: a restarted replica must use
    /// --rejoin).
    #[arg(long, value_enum, default_value = "durable", value_name = "MODE")]
    pub storage: StorageMode,
    /// Durable storage: where each group's fdatasync runs: `lcore` (the polling thread
    /// blocks in it, once per poll that wrote) or `thread` (a thread per group log; the
    /// polling thread never blocks and sends what a sync held back once it completed).
    #[arg(long, value_enum, default_value = "lcore", value_name = "WHERE")]
    pub sync_on: SyncOn,
    /// Durable storage: this node's data directory (one per node; a subdirectory per group).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// First start of a brand-new cluster: create the data directory (it must hold no state).
    #[arg(long, conflicts_with = "rejoin")]
    pub init: bool,
    /// This replica lost its acceptor state (wiped disk, or memory storage restarted): set
    /// what is left aside and rejoin as a non-voting member that votes again only once it is
    /// safe (docs/protocol.md, "Rejoining after lost state").
    #[arg(long)]
    pub rejoin: bool,
    /// Durable storage: slots applied between two snapshots of the KV store (the snapshot's
    /// slot is what this node reports as durably applied: the log is trimmed behind it).
    #[arg(long, default_value_t = crate::storage::DEFAULT_SNAPSHOT_EVERY_SLOTS, value_name = "SLOTS")]
    pub snapshot_every: u64,
    /// Most client sessions the KV store remembers per group (LRU beyond).
    #[arg(long, default_value_t = kv::DEFAULT_MAX_SESSIONS, value_name = "N")]
    pub max_sessions: usize,
}

/// A group's driver in this node: the KV store, no fault filter, memory or durable storage.
pub type NodeDriver<Io> = GroupDriver<Io, KvApp, NoFaults, NodeStorage<<Io as PacketIo>::Buf>>;

/// Builds group `g`'s driver from its opened state: the storage (memory or durable), the KV
/// store restored from the snapshot on disk (the learner resumes after it).
pub fn build_driver<Io: PacketIo>(
    mut cfg: DriverConfig,
    io: Io,
    opened: &mut OpenedGroup,
    opts: &NodeArgs,
    counters: Arc<Counters>,
) -> Result<NodeDriver<Io>, String>
where
    Io::Buf: From<Bytes>,
{
    let (g, member) = (cfg.group.0, cfg.id.0);
    let (app, upto) = opened.app(opts.max_sessions, opts.snapshot_every, member)?;
    let mut storage = opened.storage();
    if opts.sync_on != SyncOn::Lcore {
        // Spawned here, on the thread that polls the group: it inherits its CPU set.
        storage
            .start_sync_thread(&format!("pxsync-m{member}-g{g}"))
            .map_err(|e| format!("group {g}: {e}"))?;
    }
    cfg.sync_on = opts.sync_on.driver();
    let mut d = GroupDriver::with_parts(cfg, io, app, counters, NoFaults, storage)
        .map_err(|e| format!("group {g}: {e}"))?;
    if let Some(upto) = upto {
        d.resume_from_snapshot(upto);
    }
    Ok(d)
}

/// Copies a driver's storage figures into its counters (for stats lines and telemetry), and
/// returns why it must stop, if it must: a failed sync, or a snapshot that could not be
/// written. Call it every so often from the loop that polls the driver.
pub fn publish_storage<Io: PacketIo>(d: &NodeDriver<Io>) -> Option<String>
where
    Io::Buf: From<Bytes>,
{
    let c = d.counters();
    if let Some(log) = d.node().storage().durable() {
        let st = log.stats();
        c.storage_syncs.set(st.syncs);
        c.storage_records_synced.set(st.records_synced);
        c.storage_bytes_written.set(st.bytes_written);
        c.storage_sync_us_total.set(st.sync_ns_sum / 1000);
        c.storage_sync_us_max.set(st.sync_ns_max / 1000);
    }
    if let Some((n, bytes, _, _)) = d.app().snapshot_stats() {
        c.snapshots_written.set(n);
        c.snapshot_bytes_written.set(bytes);
    }
    let (g, me) = (d.group().0, d.id().0);
    if let Some(e) = d.failed() {
        return Some(format!("member {me} group {g}: {e}"));
    }
    d.app().snapshot_error().map(|e| format!("member {me} group {g}: {e}"))
}

/// What the stats printer can see of a group besides its counters.
#[derive(Debug, Default)]
pub struct GroupState {
    /// 1 if this node leads the group.
    pub leading: AtomicBool,
    /// The leader hint (`u32::MAX`: none).
    pub hint: AtomicU32,
}

impl GroupState {
    pub fn update<Io: PacketIo>(&self, d: &NodeDriver<Io>)
    where
        Io::Buf: From<Bytes>,
    {
        self.leading.store(d.is_leader(), Ordering::Relaxed);
        self.hint.store(d.leader_hint().map_or(u32::MAX, |h| u32::from(h.0)), Ordering::Relaxed);
    }
}

/// One group's counters and state, for printing.
#[derive(Clone)]
pub struct GroupHandle {
    pub member: u16,
    pub group: u16,
    pub counters: Arc<Counters>,
    pub state: Arc<GroupState>,
}

/// Prints one stats line per group with rates since the last call.
pub struct StatsPrinter {
    prev: Vec<(u64, u64, u64)>,
    last: Instant,
}

impl StatsPrinter {
    pub fn new(groups: usize) -> StatsPrinter {
        StatsPrinter { prev: vec![(0, 0, 0); groups], last: Instant::now() }
    }

    pub fn line(&mut self, i: usize, h: &GroupHandle) -> String {
        let c = &h.counters;
        let dt = self.last.elapsed().as_secs_f64().max(1e-9);
        let (rx, tx, applied) = (c.rx_packets.get(), c.tx_packets.get(), c.commands_applied.get());
        let (prx, ptx, papplied) = self.prev[i];
        self.prev[i] = (rx, tx, applied);
        let leader = if h.state.leading.load(Ordering::Relaxed) {
            "yes".to_string()
        } else {
            match h.state.hint.load(Ordering::Relaxed) {
                u32::MAX => "no(unknown)".to_string(),
                l => format!("no({l})"),
            }
        };
        let tx_err = c.tx_full_frees.get()
            + c.tx_no_buffer.get()
            + c.tx_unresolved.get()
            + c.tx_too_large.get()
            + c.io_errors.get();
        format!(
            "stats node={} group={} leader={leader} rx={rx} tx={tx} decided={} applied={applied} \
             requests={} rejected={} drops={} tx_errors={tx_err} rx/s={:.0} tx/s={:.0} applied/s={:.0}",
            h.member,
            h.group,
            c.slots_decided.get(),
            c.client_requests.get(),
            c.client_rejected.get(),
            c.total_drops(),
            (rx - prx.min(rx)) as f64 / dt,
            (tx - ptx.min(tx)) as f64 / dt,
            (applied - papplied.min(applied)) as f64 / dt,
        )
    }

    pub fn print_all(&mut self, handles: &[GroupHandle]) {
        for (i, h) in handles.iter().enumerate() {
            println!("{}", self.line(i, h));
        }
        self.last = Instant::now();
    }
}

/// The line launchers wait for: every transport is set up and the loops start now.
pub const READY_PREFIX: &str = "ready ";

/// Prints the ready line (stdout, line-buffered).
pub fn print_ready(members: &[MemberInfo], groups: &[u16], transport: &str) {
    let ids: Vec<String> = members.iter().map(|m| m.id.0.to_string()).collect();
    println!("{READY_PREFIX}members={} groups={groups:?} transport={transport}", ids.join(","));
}

/// Every non-zero counter of a group on one line, then the KV store's and (durable) the
/// log's figures.
pub fn final_line<Io: PacketIo>(node: u16, group: u16, c: &Counters, d: &NodeDriver<Io>) -> String
where
    Io::Buf: From<Bytes>,
{
    let app = d.app();
    let mut s = format!("final node={node} group={group}");
    c.visit(|grp, name, v| {
        if v != 0 {
            if grp.is_empty() {
                s.push_str(&format!(" {name}={v}"));
            } else {
                s.push_str(&format!(" {grp}/{name}={v}"));
            }
        }
    });
    s.push_str(&format!(
        " kv_keys={} kv_digest={:016x} kv_applied={} kv_duplicates_suppressed={}",
        app.store().len(),
        app.store().digest(),
        app.applied(),
        app.store().duplicates_suppressed
    ));
    match d.node().storage().durable() {
        Some(log) => {
            let st = log.stats();
            s.push_str(&format!(
                " storage=durable syncs={} records_per_sync={:.1} sync_us_mean={} sync_us_p50<={} sync_us_p99<={} sync_us_max={}",
                st.syncs,
                st.records_per_sync(),
                st.sync_ns_mean() / 1000,
                st.sync_us_quantile(0.5),
                st.sync_us_quantile(0.99),
                st.sync_ns_max / 1000
            ));
            if log.log().has_sync_thread() {
                s.push_str(&format!(
                    " sync_on=thread syncs_chained={} sync_waits={} records_restamped={} sync_handoff_us_mean={} sync_io_us_mean={} sync_notice_us_mean={}",
                    st.syncs_chained,
                    st.sync_waits,
                    st.records_restamped,
                    st.sync_handoff_ns_sum.checked_div(st.syncs).unwrap_or(0) / 1000,
                    st.sync_io_ns_sum.checked_div(st.syncs).unwrap_or(0) / 1000,
                    st.sync_notice_ns_sum.checked_div(st.syncs).unwrap_or(0) / 1000,
                ));
            }
        }
        None => s.push_str(" storage=memory"),
    }
    s
}

/// Parses, validates and runs; `args` as from `std::env::args()`.
pub fn main_with(args: Vec<String>) -> Result<(), AppError> {
    let (eal_args, app_args) = cli::split_eal_args(&args);
    let opts = NodeArgs::try_parse_from(&app_args).unwrap_or_else(|e| e.exit());
    cli::check_transport_compiled(opts.transport)?;
    if !(opts.stats_interval >= 0.0 && opts.stats_interval.is_finite()) {
        return Err(cli::usage(format!(
            "--stats-interval {}: must be a number of seconds >= 0",
            opts.stats_interval
        )));
    }
    if opts.max_sessions == 0 {
        return Err(cli::usage("--max-sessions 0: must be at least 1"));
    }
    if opts.snapshot_every == 0 {
        return Err(cli::usage("--snapshot-every 0: must be at least 1 slot"));
    }
    let cluster = cli::load_cluster(&opts.config)?;
    let mut members: Vec<MemberInfo> = Vec::new();
    for &id in &opts.id {
        if members.iter().any(|m| m.id.0 == id) {
            return Err(cli::usage(format!("--id {id}: given twice")));
        }
        members.push(cli::member(&cluster, id, &opts.config)?.clone());
    }
    let groups: Vec<u16> = match opts.group {
        Some(g) if g >= cluster.raw.groups => {
            return Err(cli::usage(format!(
                "--group {g}: the cluster has {} group(s) (0..{})",
                cluster.raw.groups, cluster.raw.groups
            )))
        }
        Some(g) => vec![g],
        None => (0..cluster.raw.groups).collect(),
    };
    cli::check_routes(&cluster, &opts.routes)?;
    if opts.transport == Transport::Udp
        && (opts.leader_idle.is_some() || !opts.leader_cpus.is_empty())
    {
        return Err(cli::usage("--leader-idle/--leader-cpus: only with --transport dpdk"));
    }
    match (opts.storage, &opts.data_dir) {
        (StorageMode::Durable, None) => {
            return Err(cli::usage(
                "--storage durable (the default): needs --data-dir DIR (first start of a new \
                 cluster: add --init), or --storage memory for state that does not survive",
            ));
        }
        (StorageMode::Memory, Some(d)) => {
            log::warn!("--storage memory: --data-dir {} is not used", d.display());
        }
        _ => {}
    }
    let sopts = StorageOpts {
        mode: opts.storage,
        data_dir: opts.data_dir.clone(),
        init: opts.init,
        rejoin: opts.rejoin,
        snapshot_every_slots: opts.snapshot_every,
    };
    let mut opened = Vec::new();
    for me in &members {
        let groups_of = crate::storage::open(&sopts, &cluster, me, &groups, members.len() > 1)?;
        for g in &groups_of {
            log::info!("member {}: {}", me.id.0, g.summary);
        }
        opened.push(groups_of);
    }
    let stop = cli::stop_on_signals()?;
    match opts.transport {
        Transport::Udp => {
            if eal_args.len() > 1 {
                log::warn!("--transport udp: ignoring the EAL options {:?}", &eal_args[1..]);
            }
            if !opts.routes.is_empty() {
                log::warn!("--transport udp: --route is ignored (the kernel routes)");
            }
            run_udp(&opts, &cluster, &members, &groups, opened, &stop)
        }
        #[cfg(feature = "dpdk")]
        Transport::Dpdk => {
            crate::node_dpdk::run(&opts, &eal_args, &cluster, &members, &groups, opened, &stop)
        }
        #[cfg(not(feature = "dpdk"))]
        Transport::Dpdk => unreachable!("checked by check_transport_compiled"),
    }
}

/// The driver configuration of `group` for member `me`, with `endpoint(member)` addresses.
pub fn driver_config(
    cluster: &Cluster,
    me: &MemberInfo,
    group: u16,
    idle: IdlePolicy,
    endpoint: impl Fn(&MemberInfo) -> Endpoint,
) -> Result<DriverConfig, AppError> {
    let peers = PeerTable::new(cluster.members.iter().map(|m| (m.id, endpoint(m))))
        .map_err(|e| cli::usage(format!("cluster file: {e}")))?;
    let mut cfg = DriverConfig::new(GroupId(group), me.id, cluster.core.clone(), peers);
    cfg.tick_ns = cluster.raw.tick_us.saturating_mul(1000);
    cfg.seed = cli::fresh_seed() ^ u64::from(group);
    cfg.idle = idle;
    Ok(cfg)
}

/// Polls `d` until `stop`, applying the idle policy after empty polls (`block`: waiting up
/// to `block_for` for a datagram) and publishing the leader state and storage figures every
/// so often. Returns why the group had to stop on its own (a storage failure), if it did:
/// then it also sets `stop`, for the whole node.
pub fn drive(
    d: &mut NodeDriver<UdpIo>,
    state: &GroupState,
    stop: &AtomicBool,
    idle: Idle,
    sync_on: SyncOn,
    block_for: Duration,
) -> Option<String> {
    let start = Instant::now();
    let mut i: u32 = 0;
    let mut empty = 0u32;
    let policy = idle.policy();
    let block_on_sync = sync_on == SyncOn::ThreadBlock;
    while !stop.load(Ordering::Relaxed) {
        let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if d.poll(now) == 0 {
            empty += 1;
            if block_on_sync && d.sync_in_flight() {
                d.wait_sync();
                continue;
            }
            // Not while a sync is in flight: its completion wakes no socket.
            if idle == Idle::Block && empty >= cli::SPINS_BEFORE_BLOCK && !d.sync_in_flight() {
                cli::wait_readable(d.io().socket(), block_for);
                empty = 0;
            } else {
                policy.idle();
            }
        } else {
            empty = 0;
        }
        i = i.wrapping_add(1);
        if i & 255 == 0 {
            state.update(d);
            if let Some(why) = publish_storage(d) {
                log::error!("{why}: stopping the node");
                stop.store(true, Ordering::Relaxed);
                return Some(why);
            }
        }
    }
    state.update(d);
    publish_storage(d)
}

/// Sleeps in short steps until `stop`, printing stats every `interval` (if not zero).
pub fn wait_printing(
    stop: &AtomicBool,
    interval: f64,
    printer: &mut StatsPrinter,
    handles: &[GroupHandle],
    mut also_stop: impl FnMut() -> bool,
) {
    let every = (interval > 0.0).then(|| Duration::from_secs_f64(interval));
    let mut next = every.map(|e| Instant::now() + e);
    while !stop.load(Ordering::Relaxed) && !also_stop() {
        std::thread::sleep(Duration::from_millis(20));
        if let (Some(at), Some(e)) = (next, every) {
            if Instant::now() >= at {
                printer.print_all(handles);
                next = Some(at + e);
            }
        }
    }
}

fn run_udp(
    opts: &NodeArgs,
    cluster: &Cluster,
    members: &[MemberInfo],
    groups: &[u16],
    opened: Vec<Vec<OpenedGroup>>,
    stop: &Arc<AtomicBool>,
) -> Result<(), AppError> {
    let mut drivers = Vec::new();
    let mut handles = Vec::new();
    for (me, mut opened) in members.iter().zip(opened) {
        for (&g, og) in groups.iter().zip(opened.iter_mut()) {
            let counters = Arc::new(Counters::default());
            let addr = SocketAddrV4::new(me.ip, cluster.port(g));
            let io = UdpIo::bind(addr, Arc::clone(&counters)).map_err(|e| {
                cli::runtime(format!("group {g}: cannot bind UDP {addr} (member {}): {e}", me.id.0))
            })?;
            let cfg = driver_config(cluster, me, g, opts.idle.policy(), |m| {
                Endpoint::udp(m.ip, cluster.port(g))
            })?;
            let d = build_driver(cfg, io, og, opts, Arc::clone(&counters)).map_err(cli::usage)?;
            let state = Arc::new(GroupState::default());
            handles.push(GroupHandle { member: me.id.0, group: g, counters, state });
            drivers.push(d);
        }
        log::info!(
            "member {} serving group(s) {:?} at {} over kernel UDP (ports {}..), idle {}",
            me.id.0,
            groups,
            me.ip,
            cluster.port(groups[0]),
            opts.idle
        );
    }
    // Blocked loops wake at least once per tick (timers), at most every 50 us.
    let block_for = Duration::from_micros(cluster.raw.tick_us.max(50));
    let mut threads = Vec::new();
    for (mut d, h) in drivers.into_iter().zip(&handles) {
        let (state, stop, idle, sync_on) =
            (Arc::clone(&h.state), Arc::clone(stop), opts.idle, opts.sync_on);
        let t = std::thread::Builder::new()
            .name(format!("m{}-g{}", h.member, h.group))
            .spawn(move || {
                let why = drive(&mut d, &state, &stop, idle, sync_on, block_for);
                (d, why)
            })
            .map_err(|e| cli::runtime(format!("cannot start a thread: {e}")))?;
        threads.push(t);
    }
    print_ready(members, groups, "udp");
    let mut printer = StatsPrinter::new(handles.len());
    let any_finished = || threads.iter().any(|t| t.is_finished());
    wait_printing(stop, opts.stats_interval, &mut printer, &handles, any_finished);
    stop.store(true, Ordering::Relaxed);
    let mut failed = Vec::new();
    for (t, h) in threads.into_iter().zip(&handles) {
        match t.join() {
            Ok((d, why)) => {
                println!("{}", final_line(h.member, h.group, &h.counters, &d));
                failed.extend(why);
            }
            Err(_) => {
                failed.push(format!("member {} group {}: thread panicked", h.member, h.group));
            }
        }
    }
    log::info!("stopped");
    if !failed.is_empty() {
        return Err(cli::runtime(failed.join("; ")));
    }
    Ok(())
}
