//! Two DPDK processes over `net_memif`: a 3-replica group (single-process mode: all three
//! replicas on one lcore, one memif port, software dispatch by destination IP/port) and a
//! client process. The test binary re-executes itself with `DPDK_MEMIF_ROLE` set to
//! `replicas` (memif server) or `client` (memif client).
//!
//! Why not one process per replica: a memif connects exactly two ports, so replica-to-replica
//! traffic would need a full mesh of memif ports per process plus routing of transmits by
//! destination across ports (or a software switch process): more pollers than the two vCPUs
//! this runs on. Both processes use the yield idle policy (a poll without work calls
//! `sched_yield`), which keeps round trips in microseconds when sharing cores.
//!
//! The parent starts the replica process, waits for its memif socket, starts the client,
//! waits for the client to finish (bounded), then sends SIGTERM to the replicas, which
//! check that every replica applied the same log and exit. Children are killed by PID on
//! any failure; the socket directory and DPDK runtime directories are removed.
#![cfg(feature = "dpdk")]

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::app::{status, EchoApp};
use dataplane::client::{Client, ClientConfig};
use dataplane::counters::Counters;
use dataplane::dpdk::{
    open_endpoints, signal, DpdkIo, DpdkIoConfig, Eal, Mempool, Port, PortConfig, QueueId, Socket,
    Tsc,
};
use dataplane::idle::IdlePolicy;
use dataplane::io::Endpoint;
use dataplane::local::LocalGroup;
use dataplane::peers::PeerTable;
use dataplane::wire::MacAddr;
use paxos_core::{ClientId, ReplicaId};

const ROLE_ENV: &str = "DPDK_MEMIF_ROLE";
const SOCKET_ENV: &str = "DPDK_MEMIF_SOCKET";
const REPLICAS_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x21]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x22]);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
const COMMANDS: u64 = 300;
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);
const LINK_DEADLINE: Duration = Duration::from_secs(20);

fn replica_endpoint(i: u16) -> Endpoint {
    Endpoint::new(REPLICAS_MAC, Ipv4Addr::new(10, 0, 2, 1 + i as u8), 7100 + i)
}

/// Kills (SIGKILL) a child still running when dropped.
struct Guard(Option<Child>);

impl Guard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
    fn wait_until(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        let child = self.0.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                self.0 = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The children's DPDK runtime directories, removed even if a child was killed.
struct RuntimeDirs(Vec<String>);

impl Drop for RuntimeDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn replicas_and_client_in_two_processes() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("replicas") => return run_replicas(),
        Ok("client") => return run_client(),
        _ => {}
    }
    let dir = TempDir(std::env::temp_dir().join(format!("dp-memif-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("memif.sock");
    let spawn = |role: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "replicas_and_client_in_two_processes",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, role)
            .env(SOCKET_ENV, &socket)
            .spawn()
            .unwrap()
    };
    let mut replicas = Guard(Some(spawn("replicas")));
    let appeared = Instant::now();
    while !socket.exists() {
        assert!(appeared.elapsed() < LINK_DEADLINE, "the replica process made no memif socket");
        assert!(
            replicas.0.as_mut().unwrap().try_wait().unwrap().is_none(),
            "replicas exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = Guard(Some(spawn("client")));
    let _dirs = RuntimeDirs(vec![
        format!("/var/run/dpdk/dp-memif-replicas-{}", replicas.pid()),
        format!("/var/run/dpdk/dp-memif-client-{}", client.pid()),
    ]);
    let status = client.wait_until(Instant::now() + CLIENT_DEADLINE).expect("client timed out");
    assert!(status.success(), "client failed: {status}");
    // The replicas check agreement when told to quit.
    let kill = Command::new("kill").args(["-TERM", &replicas.pid().to_string()]).status().unwrap();
    assert!(kill.success());
    let status =
        replicas.wait_until(Instant::now() + Duration::from_secs(20)).expect("replicas hung");
    assert!(status.success(), "replicas failed: {status}");
}

fn eal_args(role: &str, vdev: String) -> Vec<String> {
    let prefix = format!("dp-memif-{role}-{}", std::process::id());
    common::eal_args("dpdk_memif", "0@0", &vdev, &prefix)
}

fn remove_runtime_dir(role: &str) {
    let _ =
        std::fs::remove_dir_all(format!("/var/run/dpdk/dp-memif-{role}-{}", std::process::id()));
}

fn memif_vdev(role: &str) -> String {
    let socket = std::env::var(SOCKET_ENV).expect("socket path");
    format!("net_memif0,role={role},socket={socket},socket-abstract=no")
}

fn wait_link(port: &Port) {
    let start = Instant::now();
    while !port.link_up().unwrap() {
        assert!(start.elapsed() < LINK_DEADLINE, "memif link did not come up");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_replicas() {
    signal::install_quit_handlers().unwrap();
    let socket = std::env::var(SOCKET_ENV).unwrap();
    let _ = std::fs::remove_file(&socket); // a stale socket stops the server
    let (eal, _) = Eal::init(&eal_args("replicas", memif_vdev("server"))).unwrap();
    let tsc = Tsc::new(&eal);
    let pool = Arc::new(Mempool::new("replicas", 8191, 256, 2048 + 128, Socket::Any).unwrap());
    let mut port =
        Port::configure(Port::by_name("net_memif0").unwrap(), &PortConfig::default(), &pool)
            .unwrap();
    port.start().unwrap();
    let endpoints: Vec<(DpdkIoConfig, Arc<Counters>)> = (0..3)
        .map(|i| {
            let ep = replica_endpoint(i);
            let cfg = DpdkIoConfig {
                mac: Some(REPLICAS_MAC),
                static_arp: vec![(CLIENT_IP, CLIENT_MAC)],
                ..DpdkIoConfig::new(ep.ip, ep.port)
            };
            (cfg, Arc::new(Counters::default()))
        })
        .collect();
    let (_, ios) = open_endpoints(&mut port, &pool, &endpoints).unwrap();
    let transports = ios.into_iter().zip(endpoints.iter().map(|(_, c)| Arc::clone(c))).collect();
    let mut drivers = LocalGroup::replicas(3).build(transports, |_| EchoApp::default()).unwrap();
    wait_link(&port);

    while !signal::quit_requested() {
        let now = tsc.now_ns();
        let work: usize = drivers.iter_mut().map(|d| d.poll(now)).sum();
        if work == 0 {
            IdlePolicy::Yield.idle();
        }
    }
    // Let followers learn the last slots (bounded), then compare.
    let settle = Instant::now();
    let applied = |d: &dataplane::driver::GroupDriver<DpdkIo, EchoApp>| d.app().applied();
    while settle.elapsed() < Duration::from_secs(5)
        && drivers.iter().any(|d| applied(d) != applied(&drivers[0]) || applied(d) < COMMANDS)
    {
        let now = tsc.now_ns();
        for d in &mut drivers {
            d.poll(now);
        }
    }
    let first = &drivers[0];
    for d in &drivers {
        assert!(applied(d) >= COMMANDS, "replica {} applied {}", d.id().0, applied(d));
        assert_eq!(d.app().digest(), first.app().digest(), "replica {} differs", d.id().0);
    }
    eprintln!("replicas: {} commands applied by each, digests agree", applied(first));
    drop(drivers);
    port.close().unwrap();
    drop(pool);
    eal.cleanup().unwrap();
    remove_runtime_dir("replicas");
}

fn run_client() {
    let (eal, _) = Eal::init(&eal_args("client", memif_vdev("client"))).unwrap();
    let tsc = Tsc::new(&eal);
    let pool = Arc::new(Mempool::new("client", 4095, 256, 2048 + 128, Socket::Any).unwrap());
    let mut port =
        Port::configure(Port::by_name("net_memif0").unwrap(), &PortConfig::default(), &pool)
            .unwrap();
    port.start().unwrap();
    let counters = Arc::new(Counters::default());
    let cfg = DpdkIoConfig { mac: Some(CLIENT_MAC), ..DpdkIoConfig::new(CLIENT_IP, 9100) };
    let io = DpdkIo::new(&port, QueueId(0), Arc::clone(&pool), &cfg, counters).unwrap();
    let peers = PeerTable::new((0..3).map(|i| (ReplicaId(i), replica_endpoint(i)))).unwrap();
    let mut ccfg = ClientConfig::new(paxos_core::GroupId(0), ClientId(9), peers);
    ccfg.max_outstanding = 8;
    ccfg.timeout_ns = 20_000_000;
    let mut client = Client::new(io, ccfg);
    wait_link(&port);

    let began = Instant::now();
    let (mut next, mut done, mut completions) = (0u64, 0u64, Vec::new());
    let mut latencies = Vec::with_capacity(COMMANDS as usize);
    while done < COMMANDS {
        assert!(
            began.elapsed() < CLIENT_DEADLINE / 2,
            "client stuck at {done}: {:?}",
            client.stats()
        );
        let now = tsc.now_ns();
        while next < COMMANDS && client.submit(format!("memif-{next}").as_bytes(), now).is_ok() {
            next += 1;
        }
        if client.poll(now, &mut completions) == 0 {
            IdlePolicy::Yield.idle();
        }
        for c in completions.drain(..) {
            assert_eq!(c.status, status::OK, "{c:?}");
            latencies.push(c.latency_ns);
            done += 1;
        }
    }
    latencies.sort_unstable();
    eprintln!(
        "client: {COMMANDS} commands in {:?} over memif (window 8, yield idle, 2 processes), \
         latency p50 {} us p99 {} us, {:?}",
        began.elapsed(),
        latencies[latencies.len() / 2] / 1000,
        latencies[latencies.len() * 99 / 100] / 1000,
        client.stats()
    );
    drop(client);
    port.close().unwrap();
    drop(pool);
    eal.cleanup().unwrap();
    remove_runtime_dir("client");
}
