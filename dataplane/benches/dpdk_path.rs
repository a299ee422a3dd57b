//! Cycles per packet on an acceptor's hot path: rx -> parse -> decode -> step -> encode ->
//! emit -> tx, over DPDK (`net_ring`, TX looping back to RX) and over kernel UDP sockets
//! on 127.0.0.1, with the same `GroupDriver` code.
//!
//! Setup: replica 1 of a 3-replica group runs a real `GroupDriver`. A generator playing
//! leader 0 sends it bursts of 15 `Accept`s (one batch of one 16-byte command each,
//! consecutive slots, `commit` = the slot), each followed by the leader's own `Accepted`,
//! plus one `Heartbeat` that trims the log: 31 datagrams. Per `Accept` the driver stores the
//! value, answers `Accepted` to the leader (leader-only acks, the default: one datagram out)
//! and steps its own learner; the commit point makes it apply one command per slot. Only
//! `driver.poll()` is timed (TSC); injecting the burst and draining the driver's output are
//! not. No clock ticks (fixed `now`), so no elections.
//!
//! Two applications: `EchoApp` (hashes every applied byte and builds a reply body: about
//! 50 cycles per received datagram here) and `CountApp` (only counts), so the packet path can
//! be read apart from the application.
//!
//! Figures per case: the mean over bursts, the median and the 10th percentile of per-burst
//! cycles. On a shared machine the mean follows preemption and the median follows a busy
//! sibling vCPU; compare runs by their best median, over several runs.
//!
//! Also measures the copy threshold: the same run with values of several sizes, with every
//! received payload kept in its mbuf (threshold 0) or copied to the heap (threshold max).
//!
//! Run: `cargo bench -p dataplane --bench dpdk_path` (prints figures; asserts nothing about
//! speed). `DPDK_PATH_BURSTS=<n>` changes the length of each run; `DPDK_PATH_ONLY=transport`
//! or `=acceptor` (trust_link, CountApp) runs one part, for profiling;
//! `DPDK_PATH_DEBUG=1` prints the driver's counters after each acceptor case.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use bytes::Bytes;
use dataplane::app::{status, Application, EchoApp, LogCommand};
use dataplane::counters::Counters;
use dataplane::dpdk::{DpdkIo, DpdkIoConfig, Eal, Mempool, Port, PortConfig, QueueId, Socket, Tsc};
use dataplane::driver::{DriverConfig, GroupDriver};
use dataplane::io::{Datagram, Endpoint, PacketIo};
use dataplane::peers::PeerTable;
use dataplane::udp::UdpIo;
use dataplane::wire::MacAddr;
use paxos_core::payload::{BytesBuilder, ValueBuilder};
use paxos_core::wire::{encode, encoded_len, Route};
use paxos_core::{Ballot, ClientId, Config, GroupId, Message, ReplicaId, RequestSeq, Slot};

/// The cheapest application that still applies every command: counts them. `EchoApp`
/// hashes every byte it applies (FNV-1a, one multiply per byte: ~200 cycles per 16-byte
/// command), which is application work, not the packet path; both are reported.
#[derive(Default)]
struct CountApp {
    applied: u64,
}

impl Application for CountApp {
    fn apply(&mut self, _slot: Slot, _cmd: &LogCommand<'_>, _reply: &mut Vec<u8>) -> Option<u8> {
        self.applied += 1;
        Some(status::OK)
    }
}

/// What `run` needs from the application: how many commands it applied.
trait Applied: Application {
    fn applied(&self) -> u64;
}

impl Applied for EchoApp {
    fn applied(&self) -> u64 {
        EchoApp::applied(self)
    }
}

impl Applied for CountApp {
    fn applied(&self) -> u64 {
        self.applied
    }
}

const BURST: usize = 32;
/// Slots per burst: each gets an Accept and the leader's own Accepted, plus one Heartbeat:
/// 31 datagrams, one RX burst.
const SLOTS_PER_BURST: usize = 15;
const DATAGRAMS_PER_BURST: usize = 2 * SLOTS_PER_BURST + 1;
const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x30]);

struct Figures {
    cycles_per_rx: f64,
    cycles_per_accept: f64,
    tx_per_accept: f64,
    /// Median over bursts of cycles per received datagram: robust against preemption, which
    /// inflates the mean on this shared 2-vCPU machine.
    median_per_rx: f64,
    /// 10th percentile over bursts: the undisturbed speed when the sibling vCPU is busy.
    p10_per_rx: f64,
}

/// The `pct`th percentile of per-burst cycle counts (sorts `per_burst`).
fn percentile(per_burst: &mut [u64], pct: usize) -> u64 {
    per_burst.sort_unstable();
    per_burst.get(per_burst.len() * pct / 100).copied().unwrap_or(0)
}

/// The batch value of one slot: one command record of `command_len` bytes (plus headers).
fn value(slot: u64, command_len: usize) -> Bytes {
    let command = vec![(slot & 0xff) as u8; command_len];
    let cmd = LogCommand {
        client: ClientId(1),
        seq: RequestSeq(slot + 1),
        proposer: ReplicaId(0),
        reply_to: Endpoint::udp(Ipv4Addr::LOCALHOST, 1),
        command: &command,
    };
    let mut record = Vec::new();
    cmd.write(&mut record);
    let mut b = BytesBuilder::default();
    b.push_command(&record);
    b.seal()
}

fn send<Io: PacketIo>(gen: &mut Io, to: &Endpoint, msg: &Message<Bytes>) {
    let route = Route { group: GroupId(0), from: ReplicaId(0), to: ReplicaId(1) };
    let len = encoded_len(msg);
    gen.send_with(to, len, |buf| {
        encode(route, msg, buf).expect("fits");
    })
    .expect("generator send");
}

/// Runs `bursts` bursts through `driver`; `gen` injects as leader 0 and drains.
fn run<Io: PacketIo, A: Applied>(
    driver: &mut GroupDriver<Io, A>,
    counters: &Counters,
    gen: &mut Io,
    sinks: &mut [&mut Io],
    bursts: usize,
    command_len: usize,
) -> Figures {
    let target = driver.peers().get(ReplicaId(1)).copied().unwrap();
    let ballot = Ballot::new(1, ReplicaId(0));
    let values: Vec<Bytes> = (0..SLOTS_PER_BURST as u64).map(|s| value(s, command_len)).collect();
    let mut slot = 0u64;
    let mut drained: Vec<Datagram<Io::Buf>> = Vec::with_capacity(BURST);
    let (mut cycles, mut rx, mut accepts) = (0u64, 0u64, 0u64);
    let mut per_burst: Vec<u64> = Vec::with_capacity(bursts);
    let tx0 = counters.tx_packets.get();
    let warmup = bursts / 10;
    let mut tx_at_warmup = tx0;
    for b in 0..bursts + warmup {
        // Inject (untimed).
        for v in &values {
            let msg =
                Message::Accept { ballot, slot: Slot(slot), commit: Slot(slot), value: v.clone() };
            send(gen, &target, &msg);
            // The leader's own acceptor votes too: with ours, a quorum of 2.
            send(gen, &target, &Message::Accepted { ballot, slot: Slot(slot) });
            slot += 1;
        }
        let hb =
            Message::Heartbeat { ballot, commit: Slot(slot), trim: Slot(slot.saturating_sub(64)) };
        send(gen, &target, &hb);
        gen.flush();

        // Timed: the driver takes the burst and answers.
        let want = counters.rx_packets.get() + DATAGRAMS_PER_BURST as u64;
        let t0 = Tsc::cycles();
        while counters.rx_packets.get() < want {
            driver.poll(0);
        }
        let t1 = Tsc::cycles();
        if b == warmup {
            tx_at_warmup = counters.tx_packets.get();
        }
        if b >= warmup {
            cycles += t1 - t0;
            per_burst.push(t1 - t0);
            rx += DATAGRAMS_PER_BURST as u64;
            accepts += SLOTS_PER_BURST as u64;
        }

        // Drain the Accepteds (untimed).
        for io in std::iter::once(&mut *gen).chain(sinks.iter_mut().map(|s| &mut **s)) {
            while io.recv_burst(&mut drained, BURST) > 0 || !drained.is_empty() {
                drained.clear();
            }
        }
    }
    let expected = ((bursts + warmup) * SLOTS_PER_BURST) as u64;
    assert_eq!(
        driver.app().applied(),
        expected,
        "every slot applied: {counters:?} {:?}",
        driver.node().stats()
    );
    let tx = counters.tx_packets.get() - tx_at_warmup;
    Figures {
        cycles_per_rx: cycles as f64 / rx as f64,
        cycles_per_accept: cycles as f64 / accepts as f64,
        tx_per_accept: tx as f64 / accepts as f64,
        median_per_rx: percentile(&mut per_burst, 50) as f64 / DATAGRAMS_PER_BURST as f64,
        p10_per_rx: percentile(&mut per_burst, 10) as f64 / DATAGRAMS_PER_BURST as f64,
    }
}

fn print(label: &str, f: &Figures, hz: u64) {
    println!(
        "{label:<52} {:>5.0} cycles/rx datagram (median {:>4.0}, p10 {:>4.0})  {:>5.0} cycles/Accept ({:.2} tx each)  {:>5.0} ns/Accept",
        f.cycles_per_rx,
        f.median_per_rx,
        f.p10_per_rx,
        f.cycles_per_accept,
        f.tx_per_accept,
        f.cycles_per_accept * 1e9 / hz as f64
    );
}

fn peers(eps: [Endpoint; 3]) -> PeerTable {
    PeerTable::new((0..3).map(|i| (ReplicaId(i as u16), eps[i]))).unwrap()
}

fn dpdk_case<A: Applied + Default>(
    port: &Port,
    pool: &Arc<Mempool>,
    copy_threshold: usize,
    trust_link: bool,
    command_len: usize,
    bursts: usize,
) -> Figures {
    let ep = |i: u8| Endpoint::new(MAC, Ipv4Addr::new(10, 0, 3, 1 + i), 7300 + u16::from(i));
    let cfg = |i: u8| DpdkIoConfig {
        mac: Some(MAC),
        copy_threshold,
        trust_link,
        ..DpdkIoConfig::new(ep(i).ip, ep(i).port)
    };
    let counters = Arc::new(Counters::default());
    let io =
        DpdkIo::new(port, QueueId(0), Arc::clone(pool), &cfg(1), Arc::clone(&counters)).unwrap();
    let mut gen = DpdkIo::new(port, QueueId(0), Arc::clone(pool), &cfg(0), Arc::default()).unwrap();
    let dc = DriverConfig::new(
        GroupId(0),
        ReplicaId(1),
        Config::replicas(3),
        peers([ep(0), ep(1), ep(2)]),
    );
    let mut driver = GroupDriver::new(dc, io, A::default(), Arc::clone(&counters)).unwrap();
    // Frames for replica 2 land on the same ring; the generator drains them too.
    let f = run(&mut driver, &counters, &mut gen, &mut [], bursts, command_len);
    assert_eq!(counters.total_drops(), 0, "{counters:?}");
    if std::env::var_os("DPDK_PATH_DEBUG").is_some() {
        eprintln!("{counters:?}");
    }
    f
}

/// The transport alone: rx burst -> parse (software checksums) -> one 64-byte reply per
/// datagram (emit, software checksums) -> tx. The floor under the protocol path; compare
/// with testpmd's macswap (~154 cycles/packet here), which touches no IP/UDP header.
/// Returns (mean, median, 10th percentile over bursts) cycles per packet.
fn transport_only(
    port: &Port,
    pool: &Arc<Mempool>,
    bursts: usize,
    trust_link: bool,
) -> (f64, f64, f64) {
    let ep = |i: u8| Endpoint::new(MAC, Ipv4Addr::new(10, 0, 4, 1 + i), 7400 + u16::from(i));
    let cfg = |i: u8| DpdkIoConfig {
        mac: Some(MAC),
        trust_link,
        ..DpdkIoConfig::new(ep(i).ip, ep(i).port)
    };
    let counters = Arc::new(Counters::default());
    let mut io =
        DpdkIo::new(port, QueueId(0), Arc::clone(pool), &cfg(1), Arc::clone(&counters)).unwrap();
    let mut gen = DpdkIo::new(port, QueueId(0), Arc::clone(pool), &cfg(0), Arc::default()).unwrap();
    let mut rx = Vec::with_capacity(BURST);
    let (mut cycles, mut packets) = (0u64, 0u64);
    let mut per_burst: Vec<u64> = Vec::with_capacity(bursts);
    for b in 0..bursts {
        for i in 0..BURST {
            gen.send_with(&ep(1), 64, |buf| buf.fill(i as u8)).unwrap();
        }
        gen.flush();
        let t0 = Tsc::cycles();
        let n = io.recv_burst(&mut rx, BURST);
        for d in rx.drain(..) {
            let src = d.src;
            io.send_with(&src, 64, |buf| buf.copy_from_slice(&d.data[..64])).unwrap();
        }
        io.flush();
        let t1 = Tsc::cycles();
        assert_eq!(n, BURST);
        if b >= bursts / 10 {
            cycles += t1 - t0;
            per_burst.push(t1 - t0);
            packets += n as u64;
        }
        while gen.recv_burst(&mut rx, BURST) > 0 {
            rx.clear();
        }
    }
    let mut per_packet = |pct| percentile(&mut per_burst, pct) as f64 / BURST as f64;
    (cycles as f64 / packets as f64, per_packet(50), per_packet(10))
}

fn udp_case(command_len: usize, bursts: usize) -> Figures {
    let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    let counters = Arc::new(Counters::default());
    let io = UdpIo::bind(any, Arc::clone(&counters)).unwrap();
    let mut gen = UdpIo::bind(any, Arc::default()).unwrap();
    let mut sink = UdpIo::bind(any, Arc::default()).unwrap();
    let eps = [gen.local(), io.local(), sink.local()];
    let dc = DriverConfig::new(GroupId(0), ReplicaId(1), Config::replicas(3), peers(eps));
    let mut driver = GroupDriver::new(dc, io, EchoApp::default(), Arc::clone(&counters)).unwrap();
    run(&mut driver, &counters, &mut gen, &mut [&mut sink], bursts, command_len)
}

fn main() {
    let bursts: usize =
        std::env::var("DPDK_PATH_BURSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let prefix = format!("dp-bench-{}", std::process::id());
    let args: Vec<String> = [
        "dpdk_path",
        "--lcores=0@0",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--vdev=net_ring0",
        "--log-level=*:error",
        &format!("--file-prefix={prefix}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (eal, _) = Eal::init(&args).expect("EAL");
    let hz = Tsc::new(&eal).hz();
    let pool = Arc::new(Mempool::new("bench_pool", 16383, 256, 2048 + 128, Socket::Any).unwrap());
    let mut port =
        Port::configure(Port::by_name("net_ring0").unwrap(), &PortConfig::default(), &pool)
            .unwrap();
    port.start().unwrap();

    println!(
        "TSC {:.2} GHz, {bursts} bursts of {SLOTS_PER_BURST} x (Accept + Accepted) + 1 Heartbeat, one lcore",
        hz as f64 / 1e9
    );
    // DPDK_PATH_ONLY=transport | acceptor: run one part only (for profiling).
    let only = std::env::var("DPDK_PATH_ONLY").unwrap_or_default();
    let default = dataplane::dpdk::COPY_THRESHOLD_BYTES;
    if only != "acceptor" {
        println!("-- transport only (DpdkIo rx -> parse -> 64 B reply -> tx) --");
        let (mean, med, p10) = transport_only(&port, &pool, bursts, false);
        println!(
            "{:<52} {mean:>5.0} cycles/packet (median {med:>4.0}, p10 {p10:>4.0})",
            "dpdk net_ring, software checksums"
        );
        let (mean, med, p10) = transport_only(&port, &pool, bursts, true);
        println!(
            "{:<52} {mean:>5.0} cycles/packet (median {med:>4.0}, p10 {p10:>4.0})",
            "dpdk net_ring, trust_link (UDP csum 0)"
        );
    }
    if only == "acceptor" {
        print(
            &format!("dpdk net_ring, trust_link (threshold {default}), CountApp"),
            &dpdk_case::<CountApp>(&port, &pool, default, true, 16, bursts),
            hz,
        );
    } else if only != "transport" {
        println!("-- acceptor path, 16-byte commands (values of {} bytes) --", value(0, 16).len());
        print(
            &format!("dpdk net_ring (copy threshold {default})"),
            &dpdk_case::<EchoApp>(&port, &pool, default, false, 16, bursts),
            hz,
        );
        print(
            &format!("dpdk net_ring, trust_link (threshold {default})"),
            &dpdk_case::<EchoApp>(&port, &pool, default, true, 16, bursts),
            hz,
        );
        print(
            &format!("dpdk net_ring (threshold {default}), CountApp"),
            &dpdk_case::<CountApp>(&port, &pool, default, false, 16, bursts),
            hz,
        );
        print(
            &format!("dpdk net_ring, trust_link (threshold {default}), CountApp"),
            &dpdk_case::<CountApp>(&port, &pool, default, true, 16, bursts),
            hz,
        );
        print("kernel UDP 127.0.0.1", &udp_case(16, bursts / 4), hz);

        println!("-- copy threshold (trust_link): zero copy (0) vs heap copy (max), by size --");
        for command_len in [16usize, 200, 450, 1000] {
            let len = value(0, command_len).len();
            let zc = dpdk_case::<EchoApp>(&port, &pool, 0, true, command_len, bursts / 2);
            let cp = dpdk_case::<EchoApp>(&port, &pool, usize::MAX, true, command_len, bursts / 2);
            print(&format!("dpdk value {len:>4} B, zero copy"), &zc, hz);
            print(&format!("dpdk value {len:>4} B, copied"), &cp, hz);
        }
    }

    port.close().unwrap();
    drop(pool);
    eal.cleanup().unwrap();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
