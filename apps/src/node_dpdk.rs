//! `paxos-node --transport dpdk`.
//!
//! * **Lanes** (the EAL has worker lcores, e.g. `-l 0-2` or `--lcores=0@0,1@1,2@1`): each
//!   group runs on a worker lcore (`member.lcores[g]` from the cluster file, else the workers
//!   in turn: group index `i` on worker `i mod W`), and each lcore used is a *lane* with its
//!   own RX/TX queue pair on every port (lane `i` = queue `i`). Frames reach their lane by
//!   `rte_flow` rules on the UDP destination port where the device has them, else by the
//!   software hand-off (`dataplane::dpdk::lanes`). A device with fewer queues than lanes
//!   collapses everything onto one lane (logged). The main lcore prints the stats, serves
//!   telemetry (lock-free counters), watches the stop flag and the lanes, then waits for them
//!   and closes the ports.
//! * **Main lcore only** (no workers): every group on the main lcore, polled round robin,
//!   one queue per port with software dispatch.

use crate::cli::{self, AppError, Idle, SyncOn};
use crate::config::{Cluster, MemberInfo};
use crate::dpdk_env::{lane_ios, DpdkEnv};
use crate::node::{
    build_driver, driver_config, final_line, publish_storage, GroupHandle, GroupState, NodeArgs,
    NodeDriver, StatsPrinter,
};
use crate::storage::OpenedGroup;
use bytes::Bytes;
use dataplane::counters::Counters;
use dataplane::dpdk::{telemetry, CpuSet, DpdkIoConfig, Eal, Handoff, LcoreId, Port};
use dataplane::idle::{IdlePolicy, Idler};
use dataplane::io::{Endpoint, PacketIo};
use dataplane::wire::MacAddr;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Polls between two looks at the clock for stats and the stop flag (a power of two).
const CHECK_EVERY: u32 = 64;

/// How often the main lcore looks at the stop flag and the lanes while lanes run.
const MAIN_TICK: Duration = Duration::from_millis(10);

/// One worker lcore, its queue (its index in the plan) and the endpoints it serves.
#[derive(Debug)]
struct Lane {
    lcore: LcoreId,
    /// Indexes into the (member, group) endpoint list.
    endpoints: Vec<usize>,
}

/// Everything a lane needs, borrowed from the main lcore's stack for the lanes' lifetime.
struct Shared<'a> {
    opts: &'a NodeArgs,
    cluster: &'a Cluster,
    handles: &'a [(GroupHandle, &'a MemberInfo)],
    endpoints: &'a [(DpdkIoConfig, Arc<Counters>)],
    /// Each endpoint's opened storage and snapshot, taken by the lane that serves it.
    opened: &'a [Mutex<Option<OpenedGroup>>],
    routes: &'a [(Ipv4Addr, usize)],
    idle: IdlePolicy,
    stop: &'a AtomicBool,
    /// Lanes that have built their drivers (the ready line waits for all of them).
    ready: AtomicUsize,
}

pub fn run(
    opts: &NodeArgs,
    eal_args: &[String],
    cluster: &Cluster,
    members: &[MemberInfo],
    groups: &[u16],
    opened: Vec<Vec<OpenedGroup>>,
    stop: &Arc<AtomicBool>,
) -> Result<(), AppError> {
    // Member-major, like the endpoints.
    let opened: Vec<Mutex<Option<OpenedGroup>>> =
        opened.into_iter().flatten().map(|o| Mutex::new(Some(o))).collect();
    if opts.idle == Idle::Block {
        return Err(cli::usage(
            "--idle block: only with --transport udp (DPDK ports have no receive interrupts \
             here); use yield when cores are shared, spin when dedicated",
        ));
    }
    let holders = (members.len() * groups.len()) as u32;
    let mut env =
        DpdkEnv::init_with_queues(eal_args, "paxos_node", cluster.raw.window, holders, |eal| {
            Ok(plan_lanes(eal, members, groups)?.map_or(1, |l| l.len() as u16))
        })?;
    let routes = env.resolve_routes(cluster, &opts.routes)?;
    let static_arp: Vec<_> = cluster.members.iter().map(|m| (m.ip, MacAddr(m.mac))).collect();
    let mut handles: Vec<(GroupHandle, &MemberInfo)> = Vec::new();
    for me in members {
        for &g in groups {
            let h = GroupHandle {
                member: me.id.0,
                group: g,
                counters: Arc::new(Counters::default()),
                state: Arc::new(GroupState::default()),
            };
            handles.push((h, me));
        }
    }
    let endpoints: Vec<(DpdkIoConfig, Arc<Counters>)> = handles
        .iter()
        .map(|(h, me)| {
            let cfg = DpdkIoConfig {
                mac: Some(MacAddr(me.mac)),
                static_arp: static_arp.clone(),
                ..DpdkIoConfig::new(me.ip, cluster.port(h.group))
            };
            (cfg, Arc::clone(&h.counters))
        })
        .collect();
    match plan_lanes(env.eal(), members, groups)? {
        None => {
            if members.iter().any(|m| !m.lcores.is_empty()) {
                log::warn!(
                    "the cluster file names lcores, but the EAL has no worker lcores (give \
                     e.g. -l 0-{} before `--`): every group runs on the main lcore",
                    groups.len()
                );
            }
            let opened: Vec<OpenedGroup> =
                opened.into_iter().filter_map(|o| o.into_inner().ok().flatten()).collect();
            let eps = (&handles[..], &endpoints[..], opened);
            run_on_main(opts, env, members, groups, cluster, eps, &routes, stop)
        }
        Some(mut lanes) => {
            if usize::from(env.queues) < lanes.len() {
                // The device cannot give every lane a queue (logged by DpdkEnv): one lane.
                let endpoints = lanes.iter().flat_map(|l| l.endpoints.clone()).collect();
                lanes = vec![Lane { lcore: lanes[0].lcore, endpoints }];
            }
            let shared = Shared {
                opts,
                cluster,
                handles: &handles,
                endpoints: &endpoints,
                opened: &opened,
                routes: &routes,
                idle: opts.idle.policy(),
                stop,
                ready: AtomicUsize::new(0),
            };
            run_lanes(&shared, &mut env, members, groups, &lanes)?;
            env.shutdown()?;
            log::info!("stopped");
            Ok(())
        }
    }
}

/// Which worker lcore serves each (member, group) endpoint (member-major order, as the
/// endpoint list); `None` if the EAL has no worker lcores.
fn plan_lanes(
    eal: &Eal,
    members: &[MemberInfo],
    groups: &[u16],
) -> Result<Option<Vec<Lane>>, AppError> {
    let workers = eal.worker_lcores();
    if workers.is_empty() {
        return Ok(None);
    }
    let mut lanes: Vec<Lane> = Vec::new();
    let mut group_lcore: Vec<(u16, LcoreId)> = Vec::new();
    let mut e = 0;
    for me in members {
        for (i, &g) in groups.iter().enumerate() {
            let lcore = if me.lcores.is_empty() {
                workers[i % workers.len()]
            } else {
                let l = LcoreId(me.lcores[usize::from(g)]);
                if !workers.contains(&l) {
                    return Err(cli::usage(format!(
                        "member {} lcores: group {g} on lcore {}, which is not a worker lcore of \
                         the EAL (workers {:?}, main {}); give it in -l/--lcores",
                        me.id.0,
                        l.0,
                        workers.iter().map(|w| w.0).collect::<Vec<_>>(),
                        eal.main_lcore().0
                    )));
                }
                l
            };
            // Members in one process share each group's lane (their frames to each other
            // never leave it).
            match group_lcore.iter().find(|(gg, _)| *gg == g) {
                Some((_, l)) if *l != lcore => {
                    return Err(cli::usage(format!(
                        "member {} lcores: group {g} on lcore {}, but another member of this \
                         process has it on lcore {}; members in one process must agree",
                        me.id.0, lcore.0, l.0
                    )));
                }
                Some(_) => {}
                None => group_lcore.push((g, lcore)),
            }
            match lanes.iter_mut().find(|l| l.lcore == lcore) {
                Some(l) => l.endpoints.push(e),
                None => lanes.push(Lane { lcore, endpoints: vec![e] }),
            }
            e += 1;
        }
    }
    Ok(Some(lanes))
}

/// Registers `/paxos/stats` and `/paxos/lcores` (entries in endpoint order, each with the
/// lcore that writes its counters).
fn register_telemetry(eal: &Eal, handles: &[GroupHandle], lcore_of: &[LcoreId]) {
    let entries = handles
        .iter()
        .zip(lcore_of)
        .map(|(h, &lcore)| telemetry::TelemetryEntry { lcore, counters: Arc::clone(&h.counters) })
        .collect();
    if telemetry::set_registry(entries).is_ok() {
        if let Err(e) = telemetry::register_commands(eal) {
            log::warn!("telemetry: /paxos/stats not registered: {e}");
        }
    }
}

fn print_port_stats(env: &DpdkEnv) {
    for p in &env.ports {
        if let Ok(s) = p.stats() {
            println!(
                "final port={} ({}) ipackets={} opackets={} imissed={} ierrors={} oerrors={} rx_nombuf={}",
                p.id().0,
                p.driver(),
                s.ipackets,
                s.opackets,
                s.imissed,
                s.ierrors,
                s.oerrors,
                s.rx_nombuf
            );
        }
        if env.queues > 1 {
            if let Ok(qs) = p.queue_stats() {
                for (q, (rx, tx)) in qs.iter().enumerate() {
                    println!("final port={} queue={q} ipackets={rx} opackets={tx}", p.id().0);
                }
            }
        }
    }
}

/// The lanes' hand-off counters (summed over ports), one line per lane.
fn lane_lines(prefix: &str, lanes: &[Lane], handoffs: &[Arc<Handoff>]) -> Vec<String> {
    lanes
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let sum = |f: &dyn Fn(&Handoff) -> u64| handoffs.iter().map(|h| f(h)).sum::<u64>();
            format!(
                "{prefix} lane={i} lcore={} queue={i} groups={} handed_out={} handed_in={} handoff_full={}",
                l.lcore.0,
                l.endpoints.len(),
                sum(&|h| h.stats(i).handed_out.get()),
                sum(&|h| h.stats(i).handed_in.get()),
                sum(&|h| h.stats(i).handoff_full.get()),
            )
        })
        .collect()
}

/// Sets the stop flag when dropped (however the main lcore's part ends, the lanes stop and
/// the scope's wait for them returns).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn run_lanes(
    sh: &Shared<'_>,
    env: &mut DpdkEnv,
    members: &[MemberInfo],
    groups: &[u16],
    lanes: &[Lane],
) -> Result<(), AppError> {
    let lane_eps: Vec<Vec<(Ipv4Addr, u16)>> = lanes
        .iter()
        .map(|l| {
            l.endpoints
                .iter()
                .map(|&e| (sh.endpoints[e].0.ip, sh.endpoints[e].0.udp_port))
                .collect()
        })
        .collect();
    let handoffs = env.open_lanes(&lane_eps)?;
    let mut lcore_of = vec![LcoreId(0); sh.handles.len()];
    for l in lanes {
        for &e in &l.endpoints {
            lcore_of[e] = l.lcore;
        }
    }
    let plain: Vec<GroupHandle> = sh.handles.iter().map(|(h, _)| h.clone()).collect();
    register_telemetry(env.eal(), &plain, &lcore_of);
    for (i, l) in lanes.iter().enumerate() {
        let served: Vec<String> = l
            .endpoints
            .iter()
            .map(|&e| format!("m{}/g{}", sh.handles[e].0.member, sh.handles[e].0.group))
            .collect();
        log::info!(
            "lane {i}: lcore {} queue {i} serves {} (idle {})",
            l.lcore.0,
            served.join(" "),
            sh.idle
        );
    }
    for me in members {
        log::info!(
            "member {} serving group(s) {groups:?} at {} ({}) on {} DPDK port(s), {} lane(s); main lcore {} prints stats",
            me.id.0,
            me.ip,
            MacAddr(me.mac),
            env.ports.len(),
            lanes.len(),
            env.eal().main_lcore().0
        );
    }
    let down = env.wait_links(Duration::ZERO, sh.stop);
    if !down.is_empty() {
        log::info!(
            "port(s) {down:?} not up yet (a memif peer that has not connected); polling anyway"
        );
    }
    let env_ref: &DpdkEnv = env;
    let (ports, pool, tsc) = (&env_ref.ports[..], &env_ref.pool, env_ref.tsc);
    let handoffs_ref = &handoffs[..];
    let result = env_ref.eal().scope(|s| -> Result<Vec<String>, AppError> {
        let _stop = StopOnDrop(sh.stop);
        let mut jobs = Vec::new();
        for (i, l) in lanes.iter().enumerate() {
            let job = s
                .spawn(l.lcore, move || lane_main(sh, ports, pool, handoffs_ref, tsc, i, l))
                .map_err(|e| {
                    cli::runtime(format!("lane {i}: cannot launch on lcore {}: {e}", l.lcore.0))
                })?;
            jobs.push(job);
        }
        // The ready line once every lane has its drivers (or one gave up).
        while sh.ready.load(Ordering::Acquire) < lanes.len()
            && !jobs.iter().any(|j| j.is_finished())
            && !sh.stop.load(Ordering::Relaxed)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        crate::node::print_ready(members, groups, "dpdk");
        let handles: Vec<GroupHandle> = sh.handles.iter().map(|(h, _)| h.clone()).collect();
        let mut printer = StatsPrinter::new(handles.len());
        let every =
            (sh.opts.stats_interval > 0.0).then(|| Duration::from_secs_f64(sh.opts.stats_interval));
        let mut next_stats = every.map(|e| Instant::now() + e);
        let mut links_up = down.is_empty();
        let mut next_links = Instant::now();
        let mut early = None;
        loop {
            std::thread::sleep(MAIN_TICK);
            if sh.stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(j) = jobs.iter().find(|j| j.is_finished()) {
                early = Some(j.lcore());
                break;
            }
            if !links_up && Instant::now() >= next_links {
                next_links = Instant::now() + Duration::from_secs(1);
                if env_ref.wait_links(Duration::ZERO, sh.stop).is_empty() {
                    log::info!("all DPDK links up");
                    links_up = true;
                }
            }
            if let (Some(at), Some(e)) = (next_stats, every) {
                if Instant::now() >= at {
                    printer.print_all(&handles);
                    for line in lane_lines("stats", lanes, handoffs_ref) {
                        println!("{line}");
                    }
                    next_stats = Some(at + e);
                }
            }
        }
        if let Some(l) = early {
            log::error!("the lane on lcore {} stopped on its own; stopping", l.0);
        }
        sh.stop.store(true, Ordering::Relaxed);
        let mut lines = Vec::new();
        let mut failed = Vec::new();
        for job in jobs {
            let lcore = job.lcore().0;
            match job.join() {
                Ok(Ok(mut l)) => lines.append(&mut l),
                Ok(Err(e)) => failed.push(format!("lane on lcore {lcore}: {e}")),
                Err(p) => failed.push(p.to_string()),
            }
        }
        if failed.is_empty() {
            Ok(lines)
        } else {
            Err(cli::runtime(failed.join("; ")))
        }
    });
    let lines = result?;
    for l in lines {
        println!("{l}");
    }
    for l in lane_lines("final", lanes, &handoffs) {
        println!("{l}");
    }
    print_port_stats(env);
    // The hand-off rings hold pool mbufs: free them before the pool goes.
    drop(handoffs);
    Ok(())
}

/// A lane, on its worker lcore: builds its transports and drivers (they are `!Send`), polls
/// them until the stop flag, and returns the final counter lines.
fn lane_main(
    sh: &Shared<'_>,
    ports: &[Port],
    pool: &Arc<dataplane::dpdk::Mempool>,
    handoffs: &[Arc<Handoff>],
    tsc: dataplane::dpdk::Tsc,
    index: usize,
    lane: &Lane,
) -> Result<Vec<String>, String> {
    let eps: Vec<(DpdkIoConfig, Arc<Counters>)> =
        lane.endpoints.iter().map(|&e| sh.endpoints[e].clone()).collect();
    let ios = lane_ios(ports, pool, handoffs, index, &eps, sh.routes)?;
    let mut drivers = Vec::new();
    let mut handles = Vec::new();
    for (io, &e) in ios.into_iter().zip(&lane.endpoints) {
        let (h, me) = &sh.handles[e];
        let g = h.group;
        let cfg = driver_config(sh.cluster, me, g, sh.idle, |m| {
            Endpoint::new(MacAddr(m.mac), m.ip, sh.cluster.port(g))
        })
        .map_err(|e| e.to_string())?;
        let mut og = sh.opened[e]
            .lock()
            .ok()
            .and_then(|mut o| o.take())
            .ok_or_else(|| format!("group {g}: its storage was taken twice"))?;
        let d = build_driver(cfg, io, &mut og, sh.opts, Arc::clone(&h.counters))?;
        drivers.push(d);
        handles.push(h);
    }
    let mut role = RoleTuning::new(sh.opts, sh.idle)?;
    sh.ready.fetch_add(1, Ordering::Release);
    let mut idler = Idler::new(sh.idle);
    let block_on_sync = sh.opts.sync_on == SyncOn::ThreadBlock;
    let mut i: u32 = 0;
    loop {
        poll_all(&mut drivers, tsc.now_ns(), &mut idler, block_on_sync);
        i = i.wrapping_add(1);
        if i & (CHECK_EVERY - 1) != 0 {
            continue;
        }
        publish_roles(&drivers, handles.iter().copied(), &mut role, &mut idler);
        if let Some(why) = drivers.iter().find_map(publish_storage) {
            // The node cannot make its state durable: stop it all.
            sh.stop.store(true, Ordering::Relaxed);
            return Err(why);
        }
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(drivers
        .iter()
        .zip(&handles)
        .map(|(d, h)| final_line(h.member, h.group, &h.counters, d))
        .collect())
}

/// Where a poll loop runs and how it idles, by role (`--leader-idle`, `--leader-cpus`):
/// while it leads any of its groups, the leader policy on the leader CPUs; otherwise `--idle`
/// on the lcore's EAL CPU set. Checked every [`CHECK_EVERY`] polls; changes only when
/// leadership does (an affinity change is one system call and a migration).
struct RoleTuning {
    follower_idle: IdlePolicy,
    leader_idle: IdlePolicy,
    /// (leader CPUs, the EAL's CPUs for this lcore), with `--leader-cpus`.
    cpus: Option<(CpuSet, CpuSet)>,
    leading: bool,
}

impl RoleTuning {
    /// Call on the lcore's own thread. Tries the leader CPUs once, so that a CPU the machine
    /// does not have is an error at start rather than a warning at the first election.
    fn new(opts: &NodeArgs, idle: IdlePolicy) -> Result<RoleTuning, String> {
        let cpus = if opts.leader_cpus.is_empty() {
            None
        } else {
            let leader = CpuSet::from_cpus(&opts.leader_cpus)
                .map_err(|e| format!("--leader-cpus: {}", e.msg))?;
            let home = CpuSet::of_current_thread().map_err(|e| e.to_string())?;
            leader.apply_to_current_thread().map_err(|e| {
                format!("--leader-cpus {leader}: not CPUs this process may use ({e})")
            })?;
            home.apply_to_current_thread().map_err(|e| e.to_string())?;
            Some((leader, home))
        };
        let leader_idle = opts.leader_idle.unwrap_or(idle);
        Ok(RoleTuning { follower_idle: idle, leader_idle, cpus, leading: false })
    }

    fn update(&mut self, leading: bool, idler: &mut Idler) {
        if leading == self.leading {
            return;
        }
        self.leading = leading;
        let (policy, role) =
            if leading { (self.leader_idle, "leading") } else { (self.follower_idle, "following") };
        idler.set_policy(policy);
        match &self.cpus {
            Some((leader, home)) => {
                let set = if leading { leader } else { home };
                match set.apply_to_current_thread() {
                    Ok(()) => {
                        log::info!("{role}: this lcore now runs on CPU(s) {set}, idle {policy}")
                    }
                    Err(e) => log::warn!("{role}: cannot move this lcore to CPU(s) {set}: {e}"),
                }
            }
            None if self.leader_idle != self.follower_idle => {
                log::info!("{role}: idle {policy}");
            }
            None => {}
        }
    }
}

/// Every [`CHECK_EVERY`] polls: publish each group's leader state (stats, telemetry) and
/// let the lcore's role decide its CPUs and idle policy.
fn publish_roles<'h, Io: PacketIo>(
    drivers: &[NodeDriver<Io>],
    handles: impl IntoIterator<Item = &'h GroupHandle>,
    role: &mut RoleTuning,
    idler: &mut Idler,
) where
    Io::Buf: From<Bytes>,
{
    for (d, h) in drivers.iter().zip(handles) {
        h.state.update(d);
    }
    role.update(drivers.iter().any(|d| d.is_leader()), idler);
}

/// One pass over every driver of this lcore, then the idle policy: after a pass without
/// work, `adaptive` spins while a leader awaits its acks, otherwise the policy idles. With
/// `block_on_sync` (`--sync-on thread-block`) a pass without work waits for a group's sync
/// in flight instead, if there is one.
#[inline]
fn poll_all<Io: PacketIo>(
    drivers: &mut [NodeDriver<Io>],
    now: u64,
    idler: &mut Idler,
    block_on_sync: bool,
) where
    Io::Buf: From<Bytes>,
{
    let mut work = 0;
    for d in drivers.iter_mut() {
        work += d.poll(now);
    }
    if work == 0 && block_on_sync {
        if let Some(d) = drivers.iter_mut().find(|d| d.sync_in_flight()) {
            d.wait_sync();
            return;
        }
    }
    let awaiting = work == 0 && drivers.iter().any(|d| d.awaiting());
    idler.after_poll(work, awaiting);
}

/// The endpoints of the main lcore: handles, transport configurations and opened storage,
/// in the same (member-major) order.
type MainEndpoints<'a> =
    (&'a [(GroupHandle, &'a MemberInfo)], &'a [(DpdkIoConfig, Arc<Counters>)], Vec<OpenedGroup>);

/// Every group on the main lcore (the EAL has no worker lcores).
#[allow(clippy::too_many_arguments)]
fn run_on_main(
    opts: &NodeArgs,
    mut env: DpdkEnv,
    members: &[MemberInfo],
    groups: &[u16],
    cluster: &Cluster,
    (handles, endpoints, mut opened): MainEndpoints<'_>,
    routes: &[(Ipv4Addr, usize)],
    stop: &Arc<AtomicBool>,
) -> Result<(), AppError> {
    let idle = opts.idle.policy();
    let ios = env.open(endpoints, routes)?;
    let mut drivers = Vec::new();
    for ((io, (h, me)), og) in ios.into_iter().zip(handles).zip(opened.iter_mut()) {
        let g = h.group;
        let cfg = driver_config(cluster, me, g, idle, |m| {
            Endpoint::new(MacAddr(m.mac), m.ip, cluster.port(g))
        })?;
        let d = build_driver(cfg, io, og, opts, Arc::clone(&h.counters)).map_err(cli::usage)?;
        drivers.push(d);
    }
    let handles: Vec<GroupHandle> = handles.iter().map(|(h, _)| h.clone()).collect();
    let main = env.eal().main_lcore();
    register_telemetry(env.eal(), &handles, &vec![main; handles.len()]);
    for me in members {
        log::info!(
            "member {} serving group(s) {groups:?} at {} ({}) on {} DPDK port(s), main lcore {}, idle {}",
            me.id.0,
            me.ip,
            MacAddr(me.mac),
            env.ports.len(),
            main.0,
            idle
        );
    }
    let down = env.wait_links(Duration::from_secs(0), stop);
    if !down.is_empty() {
        log::info!(
            "port(s) {down:?} not up yet (a memif peer that has not connected); polling anyway"
        );
    }

    let mut role = RoleTuning::new(opts, idle).map_err(cli::usage)?;
    crate::node::print_ready(members, groups, "dpdk");
    let tsc = env.tsc;
    let mut printer = StatsPrinter::new(handles.len());
    let every = (opts.stats_interval > 0.0).then(|| Duration::from_secs_f64(opts.stats_interval));
    let mut next_stats = every.map(|e| Instant::now() + e);
    let mut links_up = down.is_empty();
    let mut idler = Idler::new(idle);
    let mut failed: Option<String> = None;
    let block_on_sync = opts.sync_on == SyncOn::ThreadBlock;
    let mut i: u32 = 0;
    loop {
        poll_all(&mut drivers, tsc.now_ns(), &mut idler, block_on_sync);
        i = i.wrapping_add(1);
        if i & (CHECK_EVERY - 1) != 0 {
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        publish_roles(&drivers, &handles, &mut role, &mut idler);
        if let Some(why) = drivers.iter().find_map(publish_storage) {
            log::error!("{why}: stopping the node");
            failed = Some(why);
            break;
        }
        if !links_up && i & (CHECK_EVERY * 1024 - 1) == 0 {
            let down = env.wait_links(Duration::ZERO, stop);
            if down.is_empty() {
                log::info!("all DPDK links up");
                links_up = true;
            }
        }
        if let (Some(at), Some(e)) = (next_stats, every) {
            if Instant::now() >= at {
                printer.print_all(&handles);
                next_stats = Some(at + e);
            }
        }
    }
    for (d, h) in drivers.iter().zip(&handles) {
        println!("{}", final_line(h.member, h.group, &h.counters, d));
    }
    print_port_stats(&env);
    drop(drivers);
    env.shutdown()?;
    log::info!("stopped");
    match failed {
        Some(why) => Err(cli::runtime(why)),
        None => Ok(()),
    }
}
