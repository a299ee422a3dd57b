//! `paxos-node --transport dpdk`: every group on the main lcore, over every DPDK port.

use crate::cli::{self, AppError, Idle};
use crate::config::{Cluster, MemberInfo};
use crate::dpdk_env::DpdkEnv;
use crate::kvapp::KvApp;
use crate::node::{driver_config, final_line, GroupHandle, GroupState, NodeArgs, StatsPrinter};
use dataplane::counters::Counters;
use dataplane::dpdk::{telemetry, DpdkIoConfig};
use dataplane::driver::GroupDriver;
use dataplane::io::Endpoint;
use dataplane::wire::MacAddr;
use paxos_core::ReplicaId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls between two looks at the clock for stats and the stop flag (a power of two).
const CHECK_EVERY: u32 = 64;

pub fn run(
    opts: &NodeArgs,
    eal_args: &[String],
    cluster: &Cluster,
    members: &[MemberInfo],
    groups: &[u16],
    stop: &Arc<AtomicBool>,
) -> Result<(), AppError> {
    if opts.idle == Idle::Block {
        return Err(cli::usage(
            "--idle block: only with --transport udp (DPDK ports have no receive interrupts \
             here); use yield when cores are shared, spin when dedicated",
        ));
    }
    let idle = opts.idle.policy();
    let holders = (members.len() * groups.len()) as u32;
    let mut env = DpdkEnv::init(eal_args, "paxos_node", cluster.raw.window, holders)?;
    let routes = opts
        .routes
        .iter()
        .map(|r| {
            let m = cluster.member(ReplicaId(r.member)).expect("checked");
            Ok((m.ip, env.port_index(&r.device)?))
        })
        .collect::<Result<Vec<_>, AppError>>()?;
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
    let ios = env.open(&endpoints, &routes)?;
    let mut drivers = Vec::new();
    for (io, (h, me)) in ios.into_iter().zip(&handles) {
        let g = h.group;
        let cfg = driver_config(cluster, me, g, idle, |m| {
            Endpoint::new(MacAddr(m.mac), m.ip, cluster.port(g))
        })?;
        let d = GroupDriver::new(cfg, io, KvApp::new(opts.max_sessions), Arc::clone(&h.counters))
            .map_err(|e| cli::usage(format!("group {g}: {e}")))?;
        drivers.push(d);
    }
    let handles: Vec<GroupHandle> = handles.into_iter().map(|(h, _)| h).collect();
    let main = env.eal().main_lcore();
    let entries = handles
        .iter()
        .map(|h| telemetry::TelemetryEntry { lcore: main, counters: Arc::clone(&h.counters) })
        .collect();
    if telemetry::set_registry(entries).is_ok() {
        if let Err(e) = telemetry::register_commands(env.eal()) {
            log::warn!("telemetry: /paxos/stats not registered: {e}");
        }
    }
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

    crate::node::print_ready(members, groups, "dpdk");
    let tsc = env.tsc;
    let mut printer = StatsPrinter::new(handles.len());
    let every = (opts.stats_interval > 0.0).then(|| Duration::from_secs_f64(opts.stats_interval));
    let mut next_stats = every.map(|e| Instant::now() + e);
    let mut links_up = down.is_empty();
    let mut i: u32 = 0;
    loop {
        let now = tsc.now_ns();
        let mut work = 0;
        for d in &mut drivers {
            work += d.poll(now);
        }
        if work == 0 {
            idle.idle();
        }
        i = i.wrapping_add(1);
        if i & (CHECK_EVERY - 1) != 0 {
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for (d, h) in drivers.iter().zip(&handles) {
            h.state.update(d);
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
        println!("{}", final_line(h.member, h.group, &h.counters, d.app()));
    }
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
    }
    drop(drivers);
    env.shutdown()?;
    log::info!("stopped");
    Ok(())
}
