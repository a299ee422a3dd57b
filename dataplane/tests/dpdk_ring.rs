//! The DPDK layer on a `net_ring` vdev (TX loops back to RX): EAL, lcores, mbuf ownership,
//! `DpdkIo` round trips, ARP, drop classification, pool exhaustion, telemetry, signals.
//!
//! `rte_eal_init` works once per process, so this file has a single `#[test]` that runs
//! the parts in order on one EAL.
#![cfg(feature = "dpdk")]

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::counters::Counters;
use dataplane::dpdk::telemetry::{self, TelemetryEntry};
use dataplane::dpdk::{
    signal, DpdkBuf, DpdkIo, DpdkIoConfig, Eal, Mempool, OffloadWishes, Port, PortConfig, QueueId,
    Socket, Tsc,
};
use dataplane::io::{Datagram, Endpoint, PacketIo, TxError};
use dataplane::wire::{
    arp_request, emit_arp_frame, emit_udp_frame, ArpOperation, ArpRepr, Checksum, FrameDrop,
    Ipv4Packet, MacAddr, UdpFrameHeader, ARP_FRAME_LEN, UDP_FRAME_HEADER_LEN,
};

const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LOCAL_PORT: u16 = 9000;
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const PEER_PORT: u16 = 7000;
const LOCAL_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const DATA_ROOM: u16 = 2048 + 128;

struct Runtime {
    prefix: String,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Only our own, uniquely named runtime directory.
        for base in ["/var/run/dpdk", "/tmp/dpdk"] {
            let _ = std::fs::remove_dir_all(format!("{base}/{}", self.prefix));
        }
    }
}

#[test]
fn dpdk_on_net_ring() {
    let prefix = format!("dp-ring-{}", std::process::id());
    let runtime = Runtime { prefix: prefix.clone() };
    let args: Vec<String> = [
        "dpdk_ring",
        "--lcores=0@0,1@0",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "--vdev=net_ring0",
        "--log-level=*:error",
        &format!("--file-prefix={prefix}"),
        "--",
        "--app-flag",
        "x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (eal, app_args) = Eal::init(&args).expect("EAL init");
    assert_eq!(app_args, ["--app-flag", "x"]);
    let again = Eal::init(&args).unwrap_err();
    assert_eq!(again.code, libc::EALREADY, "{again}");

    lcores(&eal);
    let tsc = Tsc::new(&eal);
    assert!(tsc.hz() > 0);

    let pool = Arc::new(Mempool::new("ring_pool", 4095, 32, DATA_ROOM, Socket::Any).unwrap());
    assert!(Mempool::new("ring_pool", 63, 0, DATA_ROOM, Socket::Any).is_err(), "duplicate name");
    let port_id = Port::by_name("net_ring0").unwrap();
    assert!(Port::by_name("net_nothing").is_err());
    let cfg = PortConfig {
        rx_desc: 1024,
        tx_desc: 1024,
        wishes: OffloadWishes { promiscuous: true, ..OffloadWishes::default() },
        ..PortConfig::default()
    };
    let mut port = Port::configure(port_id, &cfg, &pool).unwrap();
    // net_ring advertises no checksum offloads: everything is software.
    assert!(!port.offloads().tx_checksum() && !port.offloads().rx_checksum());
    port.start().unwrap();
    assert!(port.link_up().unwrap());
    let start = pool.avail_count();

    mbuf_ownership(&pool, start);

    let counters = Arc::new(Counters::default());
    let io_cfg = DpdkIoConfig {
        mac: Some(LOCAL_MAC),
        static_arp: vec![(LOCAL_IP, LOCAL_MAC)],
        ..DpdkIoConfig::new(LOCAL_IP, LOCAL_PORT)
    };
    let no_mac = DpdkIo::new(
        &port,
        QueueId(0),
        Arc::clone(&pool),
        &DpdkIoConfig::new(LOCAL_IP, 1),
        Arc::clone(&counters),
    );
    assert!(no_mac.is_err(), "net_ring's MAC is all zeroes: a MAC must be configured");
    let mut io =
        DpdkIo::new(&port, QueueId(0), Arc::clone(&pool), &io_cfg, Arc::clone(&counters)).unwrap();
    assert_eq!(io.local().mac, LOCAL_MAC);

    round_trip(&mut io, &pool, start);
    arp(&mut io, &counters);
    malformed_frames(&mut io, &counters);
    exhaustion(&port, &mut io, &pool, &counters, start);
    telemetry_command(&eal, &prefix, &counters);
    quit_signal();

    let stats = port.stats().unwrap();
    assert!(stats.opackets > 0 && stats.ipackets > 0);
    assert!(tsc.now_ns() > 0);

    // Shutdown order: transports, ports, pools, EAL.
    drop(io);
    assert_eq!(pool.avail_count(), start, "every mbuf is back");
    port.close().unwrap();
    drop(pool);
    eal.cleanup().expect("EAL cleanup with every pool freed");
    drop(runtime);
}

fn lcores(eal: &Eal) {
    assert_eq!(eal.lcore_count(), 2);
    assert_eq!(eal.main_lcore().0, 0);
    assert_eq!(Eal::current_lcore().map(|l| l.0), Some(0));
    let workers = eal.worker_lcores();
    assert_eq!(workers.iter().map(|l| l.0).collect::<Vec<_>>(), [1]);
    let job =
        eal.launch(workers[0], || Eal::current_lcore().map_or(-1, |l| l.0 as i32 + 40)).unwrap();
    assert_eq!(job.wait().unwrap(), 41);
    let job = eal.launch(workers[0], || panic!("deliberate panic on a worker lcore")).unwrap();
    assert!(job.wait().is_err(), "a panic is reported, not propagated through C");
    // The lcore is usable again.
    assert_eq!(eal.launch(workers[0], || 7).unwrap().wait().unwrap(), 7);
}

fn mbuf_ownership(pool: &Arc<Mempool>, start: u32) {
    let mut m = pool.alloc().unwrap();
    assert_eq!(pool.avail_count(), start - 1);
    assert!(m.is_empty());
    m.append(10).unwrap().copy_from_slice(b"0123456789");
    m.prepend(2).unwrap().copy_from_slice(b"ab");
    assert_eq!(m.data(), b"ab0123456789");
    assert!(m.trim(3));
    assert!(m.adj(1));
    assert_eq!(m.data(), b"b0123456");
    assert!(!m.trim(100), "trimming more than there is fails without change");
    assert_eq!(m.len(), 8);
    assert!(m.append(usize::from(u16::MAX)).is_none());
    m.data_mut()[0] = b'B';
    drop(m);
    assert_eq!(pool.avail_count(), start);

    // Slices share the mbuf; the last one frees it.
    let mut m = pool.alloc().unwrap();
    m.append(64).unwrap().iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let s = m.into_slice(8..40);
    assert_eq!(s.refcnt(), 1);
    let t = s.clone();
    let u = t.slice(4..8);
    assert_eq!(s.refcnt(), 3);
    assert_eq!(&u[..], &[12, 13, 14, 15]);
    assert_eq!(format!("{u:?}"), "MbufSlice { len: 4, head: [0c, 0d, 0e, 0f] }");
    let buf = DpdkBuf::Mbuf(u);
    let sub = buf.slice(1..3);
    assert!(sub.pins_mbuf());
    assert_eq!(&sub[..], &[13, 14]);
    drop((s, t));
    assert_eq!(pool.avail_count(), start - 1);
    drop((buf, sub));
    assert_eq!(pool.avail_count(), start);
}

fn recv_all(io: &mut DpdkIo, out: &mut Vec<Datagram<DpdkBuf>>) -> usize {
    let mut total = 0;
    for _ in 0..64 {
        let n = io.recv_burst(out, 32);
        total += n;
        if n == 0 && io.recv_burst(out, 32) == 0 {
            break;
        }
    }
    total
}

fn round_trip(io: &mut DpdkIo, pool: &Arc<Mempool>, start: u32) {
    // The transport keeps up to SPARE_MBUFS mbufs for transmit (recycled or bulk-allocated):
    // count them as available.
    let avail = |io: &DpdkIo| pool.avail_count() + io.spare_mbufs();
    let me = io.local();
    let small: Vec<u8> = (0..100u8).collect();
    let large: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
    io.send_with(&me, small.len(), |b| b.copy_from_slice(&small)).unwrap();
    io.send_with(&me, large.len(), |b| b.copy_from_slice(&large)).unwrap();
    assert_eq!(io.tx_pending(), 2);
    io.flush();
    assert_eq!(io.tx_pending(), 0);
    let mut out = Vec::new();
    assert_eq!(recv_all(io, &mut out), 2);
    assert_eq!(out[0].data.as_ref(), &small[..]);
    assert!(!out[0].data.pins_mbuf(), "small payloads are copied");
    assert_eq!(out[1].data.as_ref(), &large[..]);
    assert!(out[1].data.pins_mbuf(), "large payloads stay in the mbuf");
    assert_eq!(out[0].src, me);
    assert_eq!(out[0].dst_port, LOCAL_PORT);
    assert_eq!(avail(io), start - 1, "only the large datagram holds its mbuf");
    let value = out[1].data.slice(100..200);
    out.clear();
    assert_eq!(avail(io), start - 1, "a value slice keeps the mbuf");
    assert_eq!(value.as_ref(), &large[100..200]);
    drop(value);
    assert_eq!(avail(io), start);
    assert_eq!(io.send_with(&me, io.max_payload() + 1, |_| {}), Err(TxError::TooLarge));
    let c = Arc::clone(io.counters());
    assert_eq!((c.tx_packets.get(), c.rx_packets.get()), (2, 2));
    assert_eq!(c.total_drops(), 0);

    // An mbuf handed to TX (into_raw inside send_mbuf) comes back on RX and is freed once.
    let mut m = pool.alloc().unwrap();
    m.append(60).unwrap().fill(0xee);
    io.send_mbuf(m);
    io.flush();
    assert_eq!(recv_all(io, &mut out), 0);
    assert_eq!(c.frame_drops[FrameDrop::WrongMac.index()].get(), 1);
    c.frame_drops[FrameDrop::WrongMac.index()].set(0);
    assert_eq!(avail(io), start);
}

fn arp(io: &mut DpdkIo, c: &Counters) {
    let mut out = Vec::new();
    // A request for our IP from a peer: answered; the reply (to the peer's MAC) loops back
    // and is dropped as not ours.
    let req = arp_request(PEER_MAC, PEER_IP, LOCAL_IP);
    send_arp_frame(io, MacAddr::BROADCAST, &req);
    recv_all(io, &mut out);
    assert_eq!(c.arp_requests_answered.get(), 1);
    assert_eq!(io.arp_cache().lookup(PEER_IP), Some(PEER_MAC), "learned from the request");
    io.flush();
    recv_all(io, &mut out);
    assert_eq!(c.frame_drops[FrameDrop::WrongMac.index()].get(), 1);

    // Unknown destination: an ARP request goes out once per retry interval.
    let far = Endpoint::udp(Ipv4Addr::new(10, 0, 0, 3), 9001);
    assert_eq!(io.send_with(&far, 10, |_| {}), Err(TxError::Unresolved));
    assert_eq!(io.send_with(&far, 10, |_| {}), Err(TxError::Unresolved));
    assert_eq!(c.tx_unresolved.get(), 2);
    assert_eq!(c.arp_requests_sent.get(), 1, "rate-limited");
    // Our own broadcast request comes back: not for our IP.
    recv_all(io, &mut out);
    assert_eq!(c.frame_drops[FrameDrop::Arp.index()].get(), 1);

    let far_mac = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: far_mac,
        sender_ip: far.ip,
        target_mac: io.local().mac,
        target_ip: LOCAL_IP,
    };
    send_arp_frame(io, io.local().mac, &reply);
    recv_all(io, &mut out);
    assert_eq!(c.arp_replies_learned.get(), 1);
    assert_eq!(io.arp_cache().lookup(far.ip), Some(far_mac));
    io.send_with(&far, 10, |b| b.fill(1)).unwrap();
    io.flush();
    // Addressed to far_mac: loops back as WrongMac.
    recv_all(io, &mut out);
    assert_eq!(c.frame_drops[FrameDrop::WrongMac.index()].get(), 2);
    assert!(out.is_empty());
}

fn send_arp_frame(io: &mut DpdkIo, dst: MacAddr, arp: &ArpRepr) {
    let mut frame = [0u8; ARP_FRAME_LEN];
    let src = if arp.operation == ArpOperation::Request { arp.sender_mac } else { PEER_MAC };
    emit_arp_frame(&mut frame, src, dst, arp);
    io.send_raw_frame(&frame).unwrap();
    io.flush();
}

/// A valid frame from the peer to us carrying `payload`.
fn udp_frame(io: &DpdkIo, dst_ip: Ipv4Addr, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_FRAME_HEADER_LEN + payload.len()];
    f[UDP_FRAME_HEADER_LEN..].copy_from_slice(payload);
    let hdr = UdpFrameHeader {
        src_mac: PEER_MAC,
        dst_mac: io.local().mac,
        src_ip: PEER_IP,
        dst_ip,
        src_port: PEER_PORT,
        dst_port,
        ip_id: 1,
    };
    emit_udp_frame(&mut f, &hdr, payload.len(), Checksum::Compute);
    f
}

fn malformed_frames(io: &mut DpdkIo, c: &Counters) {
    let good = udp_frame(io, LOCAL_IP, LOCAL_PORT, b"paxos");
    let fix_ip = |f: &mut Vec<u8>| Ipv4Packet::new_unchecked(&mut f[14..34]).fill_checksum();
    let mut cases: Vec<(FrameDrop, Vec<u8>)> = Vec::new();
    cases.push((FrameDrop::Truncated, good[..30].to_vec()));
    let mut f = good.clone();
    f[22] ^= 1; // TTL changed, IPv4 checksum stale
    cases.push((FrameDrop::BadChecksum, f));
    let mut f = good.clone();
    f[..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    cases.push((FrameDrop::WrongMac, f));
    cases.push((FrameDrop::WrongIp, udp_frame(io, Ipv4Addr::new(10, 9, 9, 9), LOCAL_PORT, b"x")));
    let mut f = good.clone();
    f[23] = 6; // TCP
    fix_ip(&mut f);
    cases.push((FrameDrop::NotUdp, f));
    let mut f = good.clone();
    f[20] |= 0x20; // more fragments
    fix_ip(&mut f);
    cases.push((FrameDrop::Fragmented, f));
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    cases.push((FrameDrop::NotIpv4, f));

    let mut out = Vec::new();
    for (cause, frame) in &cases {
        let before = c.frame_drops[cause.index()].get();
        io.send_raw_frame(frame).unwrap();
        io.flush();
        assert_eq!(recv_all(io, &mut out), 0, "{cause}");
        assert_eq!(c.frame_drops[cause.index()].get(), before + 1, "{cause}");
    }
    let before = c.unknown_port.get();
    io.send_raw_frame(&udp_frame(io, LOCAL_IP, LOCAL_PORT + 1, b"x")).unwrap();
    io.flush();
    assert_eq!(recv_all(io, &mut out), 0);
    assert_eq!(c.unknown_port.get(), before + 1);
    // And the good frame still gets through.
    io.send_raw_frame(&good).unwrap();
    io.flush();
    assert_eq!(recv_all(io, &mut out), 1);
    assert_eq!(out[0].data.as_ref(), b"paxos");
    assert_eq!(out[0].src, Endpoint::new(PEER_MAC, PEER_IP, PEER_PORT));
}

fn exhaustion(port: &Port, io: &mut DpdkIo, pool: &Arc<Mempool>, c: &Counters, start: u32) {
    let mut out = Vec::new();
    // A tiny pool: sending 100 datagrams without receiving runs it dry.
    let tiny = Arc::new(Mempool::new("tiny_pool", 63, 0, DATA_ROOM, Socket::Any).unwrap());
    let tc = Arc::new(Counters::default());
    let cfg = DpdkIoConfig {
        mac: Some(LOCAL_MAC),
        static_arp: vec![(LOCAL_IP, LOCAL_MAC)],
        ..DpdkIoConfig::new(LOCAL_IP, LOCAL_PORT)
    };
    let mut small =
        DpdkIo::new(port, QueueId(0), Arc::clone(&tiny), &cfg, Arc::clone(&tc)).unwrap();
    let me = small.local();
    let results: Vec<_> =
        (0..100).map(|i| small.send_with(&me, 300, |b| b.fill(i as u8))).collect();
    small.flush();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 63);
    assert!(results[63..].iter().all(|r| *r == Err(TxError::NoBuffer)));
    assert_eq!(tc.tx_no_buffer.get(), 37);
    assert_eq!(tc.tx_packets.get(), 63);
    assert_eq!(recv_all(io, &mut out), 63);
    out.clear();
    assert_eq!(tiny.avail_count(), 63, "no leak in the tiny pool");
    drop(small);
    drop(tiny);

    // The ring behind net_ring0 is finite: what tx_burst does not take is freed and counted.
    let before = c.tx_full_frees.get();
    let me = io.local();
    let mut sent_ok = 0;
    for i in 0..2000 {
        if io.send_with(&me, 20, |b| b.fill(i as u8)).is_ok() {
            sent_ok += 1;
        }
    }
    io.flush();
    let freed = c.tx_full_frees.get() - before;
    assert_eq!(sent_ok, 2000);
    assert!(freed > 0, "net_ring's ring filled up");
    let got = recv_all(io, &mut out);
    assert_eq!(got as u64 + freed, 2000);
    out.clear();
    assert_eq!(pool.avail_count() + io.spare_mbufs(), start, "no leak after a full ring");
}

fn telemetry_command(eal: &Eal, prefix: &str, counters: &Arc<Counters>) {
    telemetry::register_commands(eal).unwrap();
    let entry = TelemetryEntry { lcore: eal.main_lcore(), counters: Arc::clone(counters) };
    telemetry::set_registry(vec![entry]).unwrap();
    assert!(telemetry::set_registry(Vec::new()).is_err(), "set once");
    let script = "/usr/bin/dpdk-telemetry.py";
    if !std::path::Path::new(script).exists() {
        eprintln!("{script} missing: telemetry socket not checked");
        return;
    }
    let mut child = Command::new("python3")
        .args([script, "-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"/paxos/stats\n/paxos/stats,0\n/paxos/lcores\n").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dpdk-telemetry.py did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rx = counters.rx_packets.get();
    assert!(
        text.contains(&format!("\"rx_packets\": {rx}")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"frame_drop/wrong_mac\": "), "{text}");
    assert!(
        text.contains("\"/paxos/lcores\": [\n    0\n  ]")
            || text.contains("\"/paxos/lcores\": [0]"),
        "{text}"
    );
}

fn quit_signal() {
    signal::install_quit_handlers().unwrap();
    assert!(!signal::quit_requested());
    let status =
        Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !signal::quit_requested() {
        assert!(Instant::now() < deadline, "SIGTERM did not set QUIT");
        std::thread::sleep(Duration::from_millis(1));
    }
}
