//! Round trip of one 64-byte UDP datagram between two processes over `net_memif`, through
//! the same `DpdkIo` path the nodes use (parse, ARP-free static peers, emit, tx burst): the
//! transport floor under every cluster latency figure.
//!
//! `cargo bench -p dataplane --features dpdk --bench memif_rtt [-- --idle spin|yield] [--count N]`
//!
//! The bench re-executes itself as the echo process (env `MEMIF_RTT_ROLE=echo`). With
//! `--idle spin` (the default) each process is pinned to its own vCPU (`--lcores=0@0` and
//! `0@1`); never run it with `spin` on a machine with one vCPU.

use std::net::Ipv4Addr;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::counters::Counters;
use dataplane::dpdk::{DpdkIo, DpdkIoConfig, Eal, Mempool, Port, PortConfig, QueueId, Socket, Tsc};
use dataplane::idle::IdlePolicy;
use dataplane::io::{Datagram, Endpoint, PacketIo};
use dataplane::wire::MacAddr;

const ROLE_ENV: &str = "MEMIF_RTT_ROLE";
const SOCKET_ENV: &str = "MEMIF_RTT_SOCKET";
const IDLE_ENV: &str = "MEMIF_RTT_IDLE";
const ECHO: Endpoint =
    Endpoint::new(MacAddr([2, 0, 0, 0, 0, 0x31]), Ipv4Addr::new(10, 9, 0, 1), 7000);
const PING: Endpoint =
    Endpoint::new(MacAddr([2, 0, 0, 0, 0, 0x32]), Ipv4Addr::new(10, 9, 0, 2), 7001);
const PAYLOAD: usize = 64;
const LINK_DEADLINE: Duration = Duration::from_secs(20);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let idle: IdlePolicy = match args.iter().position(|a| a == "--idle") {
        Some(i) => args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            eprintln!("error: --idle needs spin, yield or sleep:<n>us");
            std::process::exit(2)
        }),
        None => std::env::var(IDLE_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_default(),
    };
    let count: usize = match args.iter().position(|a| a == "--count") {
        Some(i) => args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(200_000),
        None => 200_000,
    };
    if std::env::var(ROLE_ENV).as_deref() == Ok("echo") {
        return echo(idle);
    }
    let dir = std::env::temp_dir().join(format!("memif-rtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("memif.sock");
    let mut child: Child = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE_ENV, "echo")
        .env(SOCKET_ENV, &socket)
        .env(IDLE_ENV, idle.to_string())
        .spawn()
        .expect("spawn echo process");
    let started = Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < LINK_DEADLINE, "echo process made no memif socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::env::set_var(SOCKET_ENV, &socket);
    let result = std::panic::catch_unwind(|| ping(idle, count));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/memif-rtt-echo-{}", child.id()));
    let _ = std::fs::remove_dir_all(&dir);
    if result.is_err() {
        std::process::exit(1);
    }
}

fn open(role: &str, cpu: u32, memif_role: &str) -> (Eal, DpdkIo, Port, Arc<Mempool>) {
    let socket = std::env::var(SOCKET_ENV).expect("socket path");
    if memif_role == "server" {
        let _ = std::fs::remove_file(&socket);
    }
    let args: Vec<String> = [
        "memif_rtt".to_string(),
        format!("--lcores=0@{cpu}"),
        "--no-huge".into(),
        "-m".into(),
        "256".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--log-level=*:error".into(),
        format!("--file-prefix=memif-rtt-{role}-{}", std::process::id()),
        format!("--vdev=net_memif0,role={memif_role},socket={socket},socket-abstract=no"),
    ]
    .to_vec();
    let (eal, _) = Eal::init(&args).expect("EAL init");
    let pool = Arc::new(Mempool::new(role, 4095, 256, 2048 + 128, Socket::Any).expect("mempool"));
    let mut port = Port::configure(
        Port::by_name("net_memif0").expect("memif port"),
        &PortConfig::default(),
        &pool,
    )
    .expect("port");
    port.start().expect("port start");
    let (me, peer) = if role == "echo" { (ECHO, PING) } else { (PING, ECHO) };
    let cfg = DpdkIoConfig {
        mac: Some(me.mac),
        static_arp: vec![(peer.ip, peer.mac)],
        ..DpdkIoConfig::new(me.ip, me.port)
    };
    let io = DpdkIo::new(&port, QueueId(0), Arc::clone(&pool), &cfg, Arc::new(Counters::default()))
        .expect("DpdkIo");
    let t = Instant::now();
    while !port.link_up().unwrap_or(false) {
        assert!(t.elapsed() < LINK_DEADLINE, "memif link did not come up");
        std::thread::sleep(Duration::from_millis(5));
    }
    (eal, io, port, pool)
}

fn echo(idle: IdlePolicy) {
    let cpu = if idle == IdlePolicy::Spin { 1 } else { 0 };
    let (_eal, mut io, _port, _pool) = open("echo", cpu, "server");
    let mut rx: Vec<Datagram<_>> = Vec::with_capacity(32);
    loop {
        if io.recv_burst(&mut rx, 32) == 0 {
            idle.idle();
            continue;
        }
        for dg in rx.drain(..) {
            let data: &[u8] = dg.data.as_ref();
            let _ = io.send_with(&dg.src, data.len(), |b| b.copy_from_slice(data));
        }
        io.flush();
    }
}

fn ping(idle: IdlePolicy, count: usize) {
    let (eal, mut io, port, pool) = open("ping", 0, "client");
    let tsc = Tsc::new(&eal);
    let mut rx: Vec<Datagram<_>> = Vec::with_capacity(32);
    let mut rtts = Vec::with_capacity(count);
    let mut polls = 0u64;
    let warmup = count / 10;
    for i in 0..count + warmup {
        let t0 = tsc.now_ns();
        io.send_with(&ECHO, PAYLOAD, |b| b.fill(i as u8)).expect("send");
        io.flush();
        let deadline = t0 + 1_000_000_000;
        loop {
            polls += 1;
            if io.recv_burst(&mut rx, 32) > 0 {
                rx.clear();
                break;
            }
            assert!(tsc.now_ns() < deadline, "no echo within 1 s (lost?)");
            idle.idle();
        }
        if i >= warmup {
            rtts.push(tsc.now_ns() - t0);
        }
    }
    rtts.sort_unstable();
    let q = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)] as f64 / 1000.0;
    println!(
        "memif round trip, {PAYLOAD} B UDP through DpdkIo, idle {idle}, {count} round trips: \
         min {:.2} p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} us ({:.1} polls per round trip)",
        q(0.0),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(1.0),
        polls as f64 / (count + warmup) as f64
    );
    drop(io);
    // The port is stopped and closed before its mempool goes and before the EAL is cleaned up.
    let _ = port.close();
    drop(pool);
    let _ = eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/memif-rtt-ping-{}", std::process::id()));
}
