//! `paxos-client --transport dpdk`: the load generator on the main lcore over every DPDK port.

use crate::cli::{self, AppError};
use crate::config::Cluster;
use crate::dpdk_env::DpdkEnv;
use crate::loadgen::{
    print_report, print_seconds, replica_tables, ClientArgs, Engine, Outputs, Workload,
};
use dataplane::counters::Counters;
use dataplane::dpdk::DpdkIoConfig;
use dataplane::io::Endpoint;
use dataplane::wire::MacAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// UDP port used when `--bind` gives port 0.
pub const DEFAULT_DPDK_CLIENT_PORT: u16 = 9000;
/// How long to wait for the links (memif peers) before starting.
pub const LINK_WAIT: Duration = Duration::from_secs(10);

pub fn run(
    a: &ClientArgs,
    eal_args: &[String],
    cluster: &Cluster,
    w: Workload,
    mut outputs: Outputs,
    stop: &Arc<AtomicBool>,
) -> Result<(), AppError> {
    let mac = MacAddr(crate::config::parse_mac(&a.mac).expect("validated"));
    let mut env = DpdkEnv::init(eal_args, "paxos_client", cluster.raw.window, 0)?;
    let routes = env.resolve_routes(cluster, &a.routes)?;
    let port = if a.bind.port() == 0 { DEFAULT_DPDK_CLIENT_PORT } else { a.bind.port() };
    let static_arp = cluster.members.iter().map(|m| (m.ip, MacAddr(m.mac))).collect();
    let counters = Arc::new(Counters::default());
    let cfg = DpdkIoConfig { mac: Some(mac), static_arp, ..DpdkIoConfig::new(*a.bind.ip(), port) };
    let io = env.open(&[(cfg, Arc::clone(&counters))], &routes)?.pop().expect("one endpoint");
    let down = env.wait_links(LINK_WAIT, stop);
    if !down.is_empty() {
        return Err(cli::runtime(format!(
            "DPDK port(s) {down:?} still down after {LINK_WAIT:?} (are the replicas running?)"
        )));
    }
    log::info!(
        "client at {}:{port} ({mac}) on {} DPDK port(s), {} logical clients",
        a.bind.ip(),
        env.ports.len(),
        w.sessions
    );
    let replicas =
        replica_tables(cluster, |m, g| Endpoint::new(MacAddr(m.mac), m.ip, cluster.port(g)))?;
    let hist = outputs.history.take();
    let engine = Engine::new(io, replicas, w, hist);
    let tsc = env.tsc;
    let result = engine.run(move || tsc.now_ns(), stop, |_| 0);
    let (r, hist) = result?;
    print_report(&r);
    if a.per_second {
        print_seconds(&r);
    }
    let c = &counters;
    println!(
        "  dpdk client: rx {} tx {} drops {} tx_full_frees {} tx_no_buffer {}",
        c.rx_packets.get(),
        c.tx_packets.get(),
        c.total_drops(),
        c.tx_full_frees.get(),
        c.tx_no_buffer.get()
    );
    outputs.finish(&r, hist)?;
    env.shutdown()
}
