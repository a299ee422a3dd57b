//! Two Paxos groups on two queues, each on its own worker lcore (a *lane*), over an
//! in-process two-queue Ethernet link made of rings (`RingLink`, the net_ring PMD): TX queue
//! `i` of one side arrives on RX queue `i` of the other.
//!
//! ```text
//!  main lcore (clients)              port "clients"        port "nodes"       worker lcores
//!  client g0 :9000  --- queue 0 ---> B tx0 ----------------> A rx0 ---> lane 0: group 0 (3 replicas)
//!  client g1 :9001  --- queue 1 ---> B tx1 ----------------> A rx1 ---> lane 1: group 1 (3 replicas)
//!  client g1':9002  --- queue 0 ---> (lands on lane 0, which hands it to lane 1 by UDP port)
//! ```
//! Each group's own client transmits on that group's queue, so its commands arrive on the
//! group's queue; a third client sends group 1's commands on queue 0 and exercises the
//! software hand-off (net_ring has no `rte_flow`), in both directions. Commands must commit
//! end to end in both groups, with the per-group counters, the per-queue port counters and
//! the hand-off counters all agreeing, and every mbuf back in the pool.
//!
//! Also here (one EAL per process): the lcore layer (results, panics, busy and invalid
//! lcores, scoped borrows) and a measurement of the hand-off cost.
//!
//! The EAL runs three lcores: main on CPU 0, lcore 1 on CPU 1, lcore 2 on either; every loop
//! yields when idle (two busy pollers on one vCPU would take 4 ms scheduler slices).
#![cfg(feature = "dpdk")]

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::app::{status, EchoApp};
use dataplane::client::{Client, ClientConfig};
use dataplane::counters::Counters;
use dataplane::dpdk::{
    steer_lanes, DpdkIo, DpdkIoConfig, Eal, Handoff, LcoreId, MbufRing, Mempool, Port, PortConfig,
    RingLink, SharedQueue, Socket, Steering, Tsc,
};
use dataplane::idle::IdlePolicy;
use dataplane::io::Endpoint;
use dataplane::local::LocalGroup;
use dataplane::peers::PeerTable;
use dataplane::wire::MacAddr;
use paxos_core::{ClientId, GroupId, ReplicaId};

const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const BASE_PORT: u16 = 7000;
const COMMANDS: u64 = 400;
const DEADLINE: Duration = Duration::from_secs(90);
const IDLE: IdlePolicy = IdlePolicy::Yield;

fn replica_ip(r: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, 1 + r)
}

fn static_arp() -> Vec<(Ipv4Addr, MacAddr)> {
    (0..3).map(|r| (replica_ip(r), MAC)).chain([(CLIENT_IP, MAC)]).collect()
}

fn io_cfg(ip: Ipv4Addr, port: u16) -> DpdkIoConfig {
    DpdkIoConfig { mac: Some(MAC), static_arp: static_arp(), ..DpdkIoConfig::new(ip, port) }
}

/// What a lane reports when it stops.
#[derive(Debug)]
struct LaneReport {
    lcore: Option<LcoreId>,
    applied: Vec<u64>,
    digests: Vec<u64>,
    leaders: usize,
}

#[test]
fn two_groups_on_two_queues_and_lcores() {
    let prefix = format!("dp-lanes-{}", std::process::id());
    let _runtime = common::Runtime(prefix.clone());
    let args = common::eal_args("dpdk_lanes", "0@0,1@1,2@(0-1)", "net_ring0", &prefix);
    let (eal, _) = Eal::init(&args).unwrap();
    let tsc = Tsc::new(&eal);
    let workers = eal.worker_lcores();
    assert_eq!(workers, [LcoreId(1), LcoreId(2)]);

    // A --vdev net_ring port offers 16 queue pairs (TX queue i loops back to RX queue i).
    let ring0 = Port::by_name("net_ring0").unwrap();
    let (max_rx, max_tx) = Port::max_queues(ring0).unwrap();
    eprintln!(
        "net_ring0 ({}): max {max_rx} RX / {max_tx} TX queues",
        Port::driver_of(ring0).unwrap()
    );
    assert!(max_rx >= 2 && max_tx >= 2);

    lcore_layer(&eal, &workers);

    let pool = Arc::new(Mempool::new("lanes_pool", 8191, 256, 2048 + 128, Socket::Any).unwrap());
    handoff_cost(&eal, &pool, workers[0]);
    let start = pool.avail_count();
    lanes(&eal, &tsc, &pool, &workers);
    assert_eq!(pool.avail_count(), start, "mbufs leaked");
    drop(pool);
    eal.cleanup().unwrap();
}

/// Results, panics, invalid and busy lcores, scoped borrows.
fn lcore_layer(eal: &Eal, workers: &[LcoreId]) {
    let job = eal.launch(workers[0], Eal::current_lcore).unwrap();
    assert_eq!(job.join().unwrap(), Some(workers[0]), "runs on the lcore it was launched on");

    let job = eal.launch(workers[1], || -> u32 { panic!("deliberate panic on a worker lcore") });
    let err = job.unwrap().join().unwrap_err();
    assert_eq!(err.lcore, workers[1]);
    assert!(err.message.contains("deliberate panic"), "{err}");
    assert_eq!(eal.launch(workers[1], || 7).unwrap().join().unwrap(), 7, "usable after a panic");

    let main = eal.main_lcore();
    assert!(eal.launch(main, || ()).is_err(), "the main lcore cannot be launched on");
    assert!(eal.launch(LcoreId(40), || ()).is_err(), "not an lcore of this EAL");

    // Scoped: borrow local data; a busy lcore refuses a second launch.
    let release = AtomicBool::new(false);
    let seen = AtomicU64::new(0);
    let total = eal.scope(|s| {
        let job = s
            .spawn(workers[0], || {
                while !release.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                seen.fetch_add(1, Ordering::Relaxed);
                21u64
            })
            .unwrap();
        let busy = s.spawn(workers[0], || 0u64).unwrap_err();
        assert_eq!(busy.code, libc::EBUSY, "{busy}");
        assert!(!job.is_finished());
        release.store(true, Ordering::Release);
        job.join().unwrap() * 2
    });
    assert_eq!((total, seen.load(Ordering::Relaxed)), (42, 1));
}

/// Frames per second through a hand-off ring and back, between the main lcore and a worker
/// (both busy-polling; on two shared vCPUs this is a floor, not a figure for dedicated cores).
fn handoff_cost(eal: &Eal, pool: &Arc<Mempool>, worker: LcoreId) {
    const IN_FLIGHT: usize = 256;
    const HOPS: u64 = 400_000;
    let (to_worker, mut worker_rx) = MbufRing::new_mpsc("bench_a", 1024, pool).unwrap();
    let (to_main, mut main_rx) = MbufRing::new_mpsc("bench_b", 1024, pool).unwrap();
    for i in 0..IN_FLIGHT {
        let mut m = pool.alloc().unwrap();
        m.append(64).unwrap().fill(i as u8);
        to_worker.enqueue(m).map_err(drop).unwrap();
    }
    let back = Arc::clone(&to_main);
    let echo = eal
        .launch(worker, move || {
            let mut moved = 0u64;
            let mut sum = 0u64;
            while moved < HOPS {
                match worker_rx.dequeue() {
                    Some(m) => {
                        // Read the "headers" as a receiving lane would.
                        sum += m.data()[..42].iter().map(|&b| u64::from(b)).sum::<u64>();
                        back.enqueue(m).map_err(drop).expect("ring sized for every mbuf");
                        moved += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
            std::hint::black_box(sum);
            worker_rx
        })
        .unwrap();
    let began = Instant::now();
    let mut moved = 0u64;
    while moved < HOPS {
        match main_rx.dequeue() {
            Some(m) => {
                std::hint::black_box(m.data()[0]);
                to_worker.enqueue(m).map_err(drop).expect("ring sized for every mbuf");
                moved += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    let elapsed = began.elapsed();
    let worker_rx = echo.join().unwrap();
    drop(worker_rx);
    drop((to_worker, to_main, main_rx)); // the rings free the mbufs still in them
    eprintln!(
        "hand-off: {} frames between two lcores (both ways) in {elapsed:?}: {:.0} ns per \
         hand-off (one enqueue + one dequeue + reading 42 header bytes on the other core), \
         {IN_FLIGHT} in flight",
        2 * HOPS,
        elapsed.as_nanos() as f64 / (2 * HOPS) as f64
    );
}

fn lanes(eal: &Eal, tsc: &Tsc, pool: &Arc<Mempool>, workers: &[LcoreId]) {
    let link = RingLink::new("nodes", "clients", 2, pool).unwrap();
    let (a, b) = link.ports();
    let cfg = PortConfig { n_rx: 2, n_tx: 2, ..PortConfig::default() };
    let mut nodes = Port::configure(a, &cfg, pool).unwrap();
    let mut clients = Port::configure(b, &cfg, pool).unwrap();
    nodes.start().unwrap();
    clients.start().unwrap();

    let group_ports = [vec![BASE_PORT], vec![BASE_PORT + 1]];
    assert_eq!(steer_lanes(&mut nodes, &group_ports).unwrap(), Steering::Software, "no rte_flow");
    let node_lanes: Vec<Vec<(Ipv4Addr, u16)>> =
        (0..2u16).map(|g| (0..3).map(|r| (replica_ip(r), BASE_PORT + g)).collect()).collect();
    let node_handoff = Handoff::new("n", &node_lanes, pool).unwrap();
    // The client side: lane 0 = clients g0 and g1' (queue 0), lane 1 = client g1 (queue 1);
    // both lanes are polled by the main lcore.
    let client_lanes = vec![vec![(CLIENT_IP, 9000), (CLIENT_IP, 9002)], vec![(CLIENT_IP, 9001)]];
    let client_handoff = Handoff::new("c", &client_lanes, pool).unwrap();

    let counters: Vec<Vec<Arc<Counters>>> =
        (0..2).map(|_| (0..3).map(|_| Arc::new(Counters::default())).collect()).collect();
    let stop = AtomicBool::new(false);

    let reports = eal.scope(|s| {
        let jobs: Vec<_> = (0..2usize)
            .map(|lane| {
                let (nodes, handoff, counters, stop) =
                    (&nodes, &node_handoff, &counters[lane], &stop);
                let pool = Arc::clone(pool);
                let tsc = *tsc;
                s.spawn(workers[lane], move || {
                    // Everything !Send is built here, on the lane's lcore.
                    let q = SharedQueue::on_lane(nodes, handoff, lane).unwrap();
                    let transports = (0..3u8)
                        .map(|r| {
                            let c = &counters[usize::from(r)];
                            let cfg = io_cfg(replica_ip(r), BASE_PORT + lane as u16);
                            let io = DpdkIo::on_shared(
                                nodes,
                                &q,
                                Arc::clone(&pool),
                                &cfg,
                                Arc::clone(c),
                            );
                            (io.unwrap(), Arc::clone(c))
                        })
                        .collect();
                    let spec =
                        LocalGroup { group: GroupId(lane as u16), ..LocalGroup::replicas(3) };
                    let mut drivers = spec.build(transports, |_| EchoApp::default()).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let now = tsc.now_ns();
                        let mut work = 0;
                        for d in &mut drivers {
                            work += d.poll(now);
                        }
                        if work == 0 {
                            IDLE.idle();
                        }
                    }
                    LaneReport {
                        lcore: Eal::current_lcore(),
                        applied: drivers.iter().map(|d| d.app().applied()).collect(),
                        digests: drivers.iter().map(|d| d.app().digest()).collect(),
                        leaders: drivers.iter().filter(|d| d.is_leader()).count(),
                    }
                })
                .unwrap()
            })
            .collect();
        // Stop the lanes however this ends (the scope waits for them).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        run_clients(tsc, pool, &clients, &client_handoff, &counters);
        stop.store(true, Ordering::Relaxed);
        jobs.into_iter().map(|j| j.join().unwrap()).collect::<Vec<_>>()
    });

    // Each lane on its own worker lcore; every replica applied its group's log.
    assert_eq!(reports[0].lcore, Some(workers[0]));
    assert_eq!(reports[1].lcore, Some(workers[1]));
    let expected = [COMMANDS, 2 * COMMANDS];
    for (g, r) in reports.iter().enumerate() {
        assert_eq!(r.applied, [expected[g]; 3], "group {g}: {r:?}");
        assert!(r.digests.iter().all(|&d| d == r.digests[0]), "group {g}: logs differ: {r:?}");
        assert_eq!(r.leaders, 1, "group {g}");
        for (i, c) in counters[g].iter().enumerate() {
            assert_eq!(c.total_drops(), 0, "group {g} replica {i}: {c:?}");
            assert_eq!(c.commands_applied.get(), expected[g]);
        }
    }
    // Per group: the requests each group's replicas received (retries included).
    let requests: Vec<u64> =
        counters.iter().map(|g| g.iter().map(|c| c.client_requests.get()).sum()).collect();
    assert!(requests[0] >= COMMANDS && requests[1] >= 2 * COMMANDS, "{requests:?}");

    // Queues: group 0's and g1''s requests arrived on queue 0, g1's on queue 1.
    let qa = nodes.queue_stats().unwrap();
    let qb = clients.queue_stats().unwrap();
    let (ha, hb) = (&node_handoff, &client_handoff);
    eprintln!(
        "nodes port: rx per queue {:?}; clients port: rx per queue {:?}; hand-offs: nodes lane 0 -> 1 {}, lane 1 -> 0 {}; clients lane 1 -> 0 {}, lane 0 -> 1 {}",
        qa.iter().map(|q| q.0).collect::<Vec<_>>(),
        qb.iter().map(|q| q.0).collect::<Vec<_>>(),
        ha.stats(0).handed_out.get(),
        ha.stats(1).handed_out.get(),
        hb.stats(1).handed_out.get(),
        hb.stats(0).handed_out.get(),
    );
    assert!(qa[0].0 >= 2 * COMMANDS && qa[1].0 >= COMMANDS, "{qa:?}");
    // Only g1' traffic crosses lanes: its requests on the nodes' side, its replies on the
    // clients' side; nothing the other way, nothing dropped.
    assert!(ha.stats(0).handed_out.get() >= COMMANDS);
    assert_eq!(ha.stats(1).handed_in.get(), ha.stats(0).handed_out.get());
    assert_eq!(ha.stats(1).handed_out.get(), 0);
    // Replies of one poll to one client endpoint share a datagram (kind 19): at least one
    // datagram crossed, not necessarily one per command.
    assert!(hb.stats(1).handed_out.get() > 0);
    assert_eq!(hb.stats(0).handed_out.get(), 0);
    for h in [ha, hb] {
        assert_eq!(h.stats(0).handoff_full.get() + h.stats(1).handoff_full.get(), 0);
    }

    nodes.close().unwrap();
    clients.close().unwrap();
    drop(link);
}

/// The main lcore's part: three clients, COMMANDS each, until all are answered and every
/// replica applied them (watched through the counters, lock-free).
fn run_clients(
    tsc: &Tsc,
    pool: &Arc<Mempool>,
    port: &Port,
    handoff: &Arc<Handoff>,
    counters: &[Vec<Arc<Counters>>],
) {
    let q0 = SharedQueue::on_lane(port, handoff, 0).unwrap();
    let q1 = SharedQueue::on_lane(port, handoff, 1).unwrap();
    let peers =
        |g: u16| {
            PeerTable::new((0..3u8).map(|r| {
                (ReplicaId(u16::from(r)), Endpoint::new(MAC, replica_ip(r), BASE_PORT + g))
            }))
            .unwrap()
        };
    let make = |q: &std::rc::Rc<SharedQueue>, udp: u16, g: u16, id: u64| {
        let c = Arc::new(Counters::default());
        let io = DpdkIo::on_shared(port, q, Arc::clone(pool), &io_cfg(CLIENT_IP, udp), c).unwrap();
        let mut cfg = ClientConfig::new(GroupId(g), ClientId(id), peers(g));
        cfg.max_outstanding = 16;
        cfg.timeout_ns = 50_000_000;
        Client::new(io, cfg)
    };
    // Group 0's client on queue 0, group 1's on queue 1, and g1' (group 1) on queue 0.
    let mut clients = [make(&q0, 9000, 0, 10), make(&q1, 9001, 1, 11), make(&q0, 9002, 1, 12)];
    let began = Instant::now();
    let mut next = [0u64; 3];
    let mut done = [0u64; 3];
    let mut completions = Vec::new();
    while done.iter().any(|&d| d < COMMANDS) {
        assert!(
            began.elapsed() < DEADLINE,
            "stuck: {done:?} of {COMMANDS}; {:?}",
            clients.iter().map(|c| c.stats()).collect::<Vec<_>>()
        );
        let now = tsc.now_ns();
        let mut work = 0;
        for (i, c) in clients.iter_mut().enumerate() {
            while next[i] < COMMANDS
                && c.submit(format!("c{i}-{}", next[i]).as_bytes(), now).is_ok()
            {
                next[i] += 1;
            }
            work += c.poll(now, &mut completions);
            for comp in completions.drain(..) {
                assert_eq!(comp.status, status::OK, "client {i}: {comp:?}");
                done[i] += 1;
            }
        }
        if work == 0 {
            IDLE.idle();
        }
    }
    let elapsed = began.elapsed();
    eprintln!(
        "{} commands in {elapsed:?} over two groups on two lcores ({:.1} us each, window 16 per client, yield idle policy)",
        3 * COMMANDS,
        elapsed.as_secs_f64() * 1e6 / (3 * COMMANDS) as f64
    );
    // Followers learn the last slots; keep answering retransmissions meanwhile.
    let expected = [COMMANDS, 2 * COMMANDS];
    let settle = Instant::now();
    while counters
        .iter()
        .enumerate()
        .any(|(g, cs)| cs.iter().any(|c| c.commands_applied.get() < expected[g]))
    {
        assert!(settle.elapsed() < Duration::from_secs(20), "followers did not catch up");
        let now = tsc.now_ns();
        for c in &mut clients {
            c.poll(now, &mut completions);
        }
        completions.clear();
        IDLE.idle();
    }
}
