//! The DPDK side of the binaries: EAL, one mbuf pool, every port the EAL arguments made
//! (configured, started, with one queue pair per lane), and endpoints on them. Setup and
//! shutdown run on the main lcore; [`lane_ios`] runs on a lane's worker lcore.
//!
//! Shutdown order (see `dataplane::dpdk`): drop every transport and driver first, then
//! [`DpdkEnv::shutdown`] closes the ports, drops the pool and cleans up the EAL.

use crate::cli::{self, AppError, Route};
use crate::config::Cluster;
use crate::routed::RoutedIo;
use dataplane::counters::Counters;
use dataplane::dpdk::{
    open_endpoints, pinned_mbufs, steer_lanes, DpdkIo, DpdkIoConfig, Eal, Handoff, Mempool,
    PoolSizing, Port, PortConfig, PortId, SharedQueue, Socket, Steering, Tsc, BURST,
};
use paxos_core::ReplicaId;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Descriptors per RX / TX queue.
pub const DESCRIPTORS: u16 = 512;
/// Data room per mbuf: a standard 2 KiB buffer plus `RTE_PKTMBUF_HEADROOM`.
pub const DATA_ROOM: u16 = 2048 + 128;
/// Per-lcore mempool cache.
pub const POOL_CACHE: u32 = 256;
/// Drivers whose links are memory copies (no UDP checksum needed).
pub const TRUSTED_DRIVERS: [&str; 2] = ["net_memif", "net_ring"];
/// Drivers whose queue `i` is paired with the peer's queue `i` and whose queue count is
/// negotiated with the peer: a lane on a queue the peer did not open would transmit into
/// nothing. They get one queue (and the node one lane).
pub const PEER_PAIRED_DRIVERS: [&str; 1] = ["net_memif"];
/// Decided slots a node may keep beyond the window before the log is trimmed (for sizing).
pub const TRIM_LAG_SLOTS: u32 = 8192;

pub struct DpdkEnv {
    // Field order is drop order on an error path: ports, then pool, then the EAL.
    pub ports: Vec<Port>,
    pub pool: Arc<Mempool>,
    pub tsc: Tsc,
    /// RX/TX queue pairs per port (one per lane; 1 without lanes).
    pub queues: u16,
    eal: Option<Eal>,
    prefix: Option<String>,
}

fn dpdk_err(what: &str) -> impl Fn(dataplane::dpdk::DpdkError) -> AppError + '_ {
    move |e| cli::runtime(format!("{what}: {e}"))
}

impl DpdkEnv {
    /// EAL init with `eal_args` (argv[0] first), one pool sized for `holders` value holders
    /// with a Paxos `window`, every port configured and started.
    pub fn init(
        eal_args: &[String],
        pool_name: &str,
        window: u32,
        holders: u32,
    ) -> Result<DpdkEnv, AppError> {
        DpdkEnv::init_with_queues(eal_args, pool_name, window, holders, |_| Ok(1))
    }

    /// As [`init`](Self::init), with `want(&eal)` queue pairs per port (one per lane) where
    /// every port offers that many; otherwise one (logged), and [`queues`](Self::queues)
    /// says which.
    pub fn init_with_queues(
        eal_args: &[String],
        pool_name: &str,
        window: u32,
        holders: u32,
        want: impl FnOnce(&Eal) -> Result<u16, AppError>,
    ) -> Result<DpdkEnv, AppError> {
        let (eal, rest) = Eal::init(eal_args).map_err(|e| {
            cli::usage(format!(
                "EAL initialisation failed ({e}); EAL options go before `--` (see docs/operations.md)"
            ))
        })?;
        debug_assert!(rest.is_empty());
        let prefix =
            eal_args.iter().find_map(|a| a.strip_prefix("--file-prefix=").map(str::to_string));
        let n = Port::count_avail();
        if n == 0 {
            return Err(cli::usage(
                "no DPDK ports: give a NIC (not on this machine) or a vdev in the EAL options, \
                 e.g. --vdev=net_memif0,role=server,socket=/tmp/x.sock,socket-abstract=no",
            ));
        }
        let want = want(&eal)?.max(1);
        let mut queues = want;
        for id in 0..n {
            let (rx, tx) = Port::max_queues(PortId(id))
                .map_err(|e| cli::runtime(format!("port {id}: {e}")))?;
            let driver = Port::driver_of(PortId(id)).unwrap_or_default();
            if want > 1 && PEER_PAIRED_DRIVERS.contains(&driver.as_str()) {
                log::warn!(
                    "port {id} ({driver}): queue i pairs with the peer's queue i and the peer \
                     decides how many exist (paxos-client opens one): every port gets one \
                     queue and all groups share one lane (software dispatch on one lcore)"
                );
                queues = 1;
            } else if rx.min(tx) < want {
                log::warn!(
                    "port {id} ({driver}) offers {rx} RX / {tx} TX queues, fewer than the {want} \
                     lanes: every port gets one queue and all groups share one lane (software \
                     dispatch on one lcore)"
                );
                queues = 1;
            }
        }
        let sizing = PoolSizing {
            // Descriptors are per queue: count each queue pair as a port.
            ports: u32::from(n) * u32::from(queues),
            rx_desc: u32::from(DESCRIPTORS),
            tx_desc: u32::from(DESCRIPTORS),
            lcores: eal.lcore_count(),
            burst: BURST as u32,
            cache: POOL_CACHE,
            pinned: pinned_mbufs(window, TRIM_LAG_SLOTS, holders.max(1)),
            // One transport per (member, group) endpoint.
            transports: holders.max(1),
        };
        let pool = Mempool::new(pool_name, sizing.mbufs(), POOL_CACHE, DATA_ROOM, Socket::Any)
            .map_err(dpdk_err("mempool"))?;
        let pool = Arc::new(pool);
        let cfg = PortConfig {
            n_rx: queues,
            n_tx: queues,
            rx_desc: DESCRIPTORS,
            tx_desc: DESCRIPTORS,
            ..PortConfig::default()
        };
        let clients = memif_clients(eal_args);
        let mut ports = Vec::new();
        for id in 0..n {
            let mut p = Port::configure(PortId(id), &cfg, &pool)
                .map_err(|e| cli::runtime(format!("port {id}: {e}")))?;
            // A memif client connects to its server only when its port starts: its poller
            // restarts it when the link goes down (the peer died and may come back), and a
            // server that is not listening yet is not an error (retried the same way).
            let name = p.name();
            let client = clients.iter().find(|c| c.0 == name);
            let relink = p.driver() == "net_memif" && client.is_some();
            p.set_relink(relink);
            p.set_relink_socket(client.and_then(|c| c.1.clone()));
            match p.start() {
                Ok(()) => log::info!("port {id}: {} started", p.driver()),
                Err(e) if relink => log::warn!(
                    "port {id} ({}): memif client start failed ({e}): the server is not \
                     listening yet; retrying while polling",
                    p.name()
                ),
                Err(e) => {
                    return Err(cli::runtime(format!("port {id} ({}): start: {e}", p.driver())))
                }
            }
            ports.push(p);
        }
        let tsc = Tsc::new(&eal);
        Ok(DpdkEnv { ports, pool, tsc, queues, eal: Some(eal), prefix })
    }

    pub fn eal(&self) -> &Eal {
        self.eal.as_ref().expect("EAL alive until shutdown")
    }

    /// The index in `ports` of the device called `name`.
    pub fn port_index(&self, name: &str) -> Result<usize, AppError> {
        let id = Port::by_name(name).map_err(|e| {
            cli::usage(format!("--route {name}=..: no DPDK port called {name:?} ({e})"))
        })?;
        self.ports
            .iter()
            .position(|p| p.id() == id)
            .ok_or_else(|| cli::usage(format!("--route {name}: port {} was not started", id.0)))
    }

    /// `--route DEVICE=MEMBER` options as (the member's IPv4, the device's port index);
    /// `cli::check_routes` has checked that every member exists.
    pub fn resolve_routes(
        &self,
        cluster: &Cluster,
        routes: &[Route],
    ) -> Result<Vec<(Ipv4Addr, usize)>, AppError> {
        routes
            .iter()
            .map(|r| {
                let m = cluster.member(ReplicaId(r.member)).expect("checked");
                Ok((m.ip, self.port_index(&r.device)?))
            })
            .collect()
    }

    /// One transport per endpoint over every port: `result[e]` = endpoint `e` as a
    /// [`RoutedIo`] over its links (one per port) with `routes` (destination IP, port index).
    pub fn open(
        &mut self,
        endpoints: &[(DpdkIoConfig, Arc<Counters>)],
        routes: &[(Ipv4Addr, usize)],
    ) -> Result<Vec<RoutedIo<DpdkIo>>, AppError> {
        let mut per_endpoint: Vec<Vec<DpdkIo>> = endpoints.iter().map(|_| Vec::new()).collect();
        for port in &mut self.ports {
            let id = port.id().0;
            // Memory links cannot corrupt frames: skip the UDP checksum (see DpdkIoConfig).
            let trusted = TRUSTED_DRIVERS.contains(&port.driver());
            let eps: Vec<_> = endpoints
                .iter()
                .map(|(c, k)| (DpdkIoConfig { trust_link: trusted, ..c.clone() }, Arc::clone(k)))
                .collect();
            let (steering, ios) = open_endpoints(port, &self.pool, &eps)
                .map_err(|e| cli::runtime(format!("port {id}: endpoints: {e}")))?;
            log::debug!("port {id}: {} endpoint(s), {steering:?} steering", ios.len());
            for (e, io) in ios.into_iter().enumerate() {
                per_endpoint[e].push(io);
            }
        }
        Ok(per_endpoint.into_iter().map(|links| RoutedIo::new(links, routes.to_vec())).collect())
    }

    /// Lanes: `lanes[i]` = the (IPv4, UDP port) endpoints lane `i` serves on queue `i` of
    /// every port. Steers by UDP port with `rte_flow` where a port accepts it, else sets up
    /// the software hand-off; returns each port's [`Handoff`] (for [`lane_ios`]).
    pub fn open_lanes(
        &mut self,
        lanes: &[Vec<(Ipv4Addr, u16)>],
    ) -> Result<Vec<Arc<Handoff>>, AppError> {
        let udp_ports: Vec<Vec<u16>> =
            lanes.iter().map(|l| l.iter().map(|e| e.1).collect()).collect();
        let mut handoffs = Vec::new();
        for port in &mut self.ports {
            let id = port.id().0;
            let steering = steer_lanes(port, &udp_ports)
                .map_err(|e| cli::runtime(format!("port {id}: lanes: {e}")))?;
            let how = match steering {
                Steering::FlowRules => "rte_flow rules steer each group's UDP port to its queue",
                Steering::Software if lanes.len() > 1 => {
                    "no rte_flow: frames for another lane are handed to it in software"
                }
                Steering::Software => "one lane",
            };
            log::info!("port {id} ({}): {} lane(s): {how}", port.driver(), lanes.len());
            let h = Handoff::new(&format!("p{id}"), lanes, &self.pool)
                .map_err(|e| cli::runtime(format!("port {id}: hand-off rings: {e}")))?;
            handoffs.push(h);
        }
        Ok(handoffs)
    }

    /// Waits (bounded) until every port's link is up; returns the ports still down.
    pub fn wait_links(&self, timeout: Duration, stop: &std::sync::atomic::AtomicBool) -> Vec<u16> {
        let start = Instant::now();
        loop {
            let down: Vec<u16> = self
                .ports
                .iter()
                .filter(|p| !p.link_up().unwrap_or(false))
                .map(|p| p.id().0)
                .collect();
            if down.is_empty()
                || start.elapsed() >= timeout
                || stop.load(std::sync::atomic::Ordering::Relaxed)
            {
                return down;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes the ports, frees the pool, cleans up the EAL and removes the runtime
    /// directory. Call after every transport is dropped.
    pub fn shutdown(mut self) -> Result<(), AppError> {
        // DPDK 22.11's net_af_xdp does not give back the mbufs it put in its fill ring (2048
        // per queue) when the port closes, so the pool cannot be freed nor the EAL cleaned
        // up. That is the PMD's, not a leak of ours: warn and go on.
        let af_xdp = self.ports.iter().any(|p| p.driver() == "net_af_xdp");
        for p in self.ports.drain(..) {
            let id = p.id().0;
            p.close().map_err(|e| cli::runtime(format!("port {id}: close: {e}")))?;
        }
        let DpdkEnv { pool, eal, prefix, .. } = self;
        drop(pool);
        if let Some(eal) = eal {
            match eal.cleanup() {
                Err(e) if af_xdp => log::warn!(
                    "EAL not cleaned up ({e}): net_af_xdp keeps its fill-ring mbufs after close"
                ),
                r => r.map_err(dpdk_err("EAL cleanup"))?,
            }
        }
        if let Some(p) = prefix {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{p}"));
        }
        Ok(())
    }
}

/// The device names of the `--vdev`s in `eal_args` that are net_memif clients in copy mode
/// (`role=client`, no `zero-copy=yes`): the ports to restart when their server comes back;
/// with the server's socket file where it is one (`socket=PATH,socket-abstract=no`).
pub fn memif_clients(eal_args: &[String]) -> Vec<(String, Option<std::path::PathBuf>)> {
    let mut out = Vec::new();
    let mut it = eal_args.iter();
    while let Some(a) = it.next() {
        let spec = match a.strip_prefix("--vdev=") {
            Some(s) => s,
            None if a == "--vdev" => match it.next() {
                Some(s) => s.as_str(),
                None => break,
            },
            None => continue,
        };
        let mut parts = spec.split(',');
        let name = parts.next().unwrap_or_default();
        let kv: Vec<&str> = parts.collect();
        if name.starts_with("net_memif")
            && kv.contains(&"role=client")
            && !kv.contains(&"zero-copy=yes")
        {
            let file = kv.contains(&"socket-abstract=no");
            let socket = kv.iter().find_map(|p| p.strip_prefix("socket="));
            out.push((name.to_string(), socket.filter(|_| file).map(Into::into)));
        }
    }
    out
}

/// On lane `lane`'s lcore: one transport per endpoint over queue `lane` of every port (a
/// [`SharedQueue::on_lane`] per port, shared by the lane's endpoints), as a [`RoutedIo`] with
/// `routes`. Build it on the lane's lcore (the transports are `!Send`).
pub fn lane_ios(
    ports: &[Port],
    pool: &Arc<Mempool>,
    handoffs: &[Arc<Handoff>],
    lane: usize,
    endpoints: &[(DpdkIoConfig, Arc<Counters>)],
    routes: &[(Ipv4Addr, usize)],
) -> Result<Vec<RoutedIo<DpdkIo>>, String> {
    let queues = ports
        .iter()
        .zip(handoffs)
        .map(|(p, h)| {
            SharedQueue::on_lane(p, h, lane).map_err(|e| format!("port {}: {e}", p.id().0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    endpoints
        .iter()
        .map(|(cfg, counters)| {
            let links = ports
                .iter()
                .zip(&queues)
                .map(|(p, q)| {
                    let trust_link = TRUSTED_DRIVERS.contains(&p.driver());
                    let cfg = DpdkIoConfig { trust_link, ..cfg.clone() };
                    DpdkIo::on_shared(p, q, Arc::clone(pool), &cfg, Arc::clone(counters))
                        .map_err(|e| format!("port {}: {e}", p.id().0))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RoutedIo::new(links, routes.to_vec()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memif_clients_are_found_in_the_eal_arguments() {
        let args: Vec<String> = [
            "paxos-node",
            "--vdev=net_memif_r0,role=client,socket=/tmp/a.sock,socket-abstract=no",
            "--vdev=net_memif_r2,role=server,socket=/tmp/b.sock",
            "--vdev",
            "net_memif_c,role=client,socket=/tmp/c.sock",
            "--vdev=net_memif_z,role=client,zero-copy=yes",
            "--vdev=net_af_packet0,iface=veth0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let want = [
            ("net_memif_r0".to_string(), Some("/tmp/a.sock".into())),
            ("net_memif_c".to_string(), None), // abstract (the PMD's default): no file
        ];
        assert_eq!(memif_clients(&args), want);
    }
}
