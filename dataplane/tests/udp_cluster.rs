//! A 3-replica group on kernel UDP sockets (127.0.0.1, ephemeral ports), each replica on
//! its own thread with the `yield` idle policy (more pollers than the two vCPUs), and a
//! client in the test thread. Bounded by a deadline: a stuck cluster fails with a message.

use bytes::Bytes;
use dataplane::app::{status, EchoApp};
use dataplane::client::{Client, ClientConfig, Completion};
use dataplane::counters::Counters;
use dataplane::driver::GroupDriver;
use dataplane::idle::IdlePolicy;
use dataplane::local::LocalGroup;
use dataplane::udp::UdpIo;
use paxos_core::ClientId;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const REQUESTS: u64 = 2000;
const WINDOW: usize = 8;
const DEADLINE: Duration = Duration::from_secs(120);

/// Sets the stop flag when dropped, so a failing assertion does not leave replica threads
/// spinning behind it.
struct StopOnDrop(Arc<AtomicBool>);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn applied(counters: &[Arc<Counters>]) -> Vec<u64> {
    counters.iter().map(|c| c.commands_applied.get()).collect()
}

#[test]
fn two_thousand_requests_over_udp() {
    let drivers = LocalGroup::replicas(3).on_udp(|_| EchoApp::default()).expect("bind 127.0.0.1");
    let peers = drivers[0].peers().clone();
    let counters: Vec<Arc<Counters>> = drivers.iter().map(|d| d.counters().clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(stop.clone());
    let threads: Vec<JoinHandle<GroupDriver<UdpIo, EchoApp>>> = drivers
        .into_iter()
        .map(|mut d| {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("replica-{}", d.id().0))
                .spawn(move || {
                    d.set_idle_policy(IdlePolicy::Yield);
                    d.run(&stop);
                    d
                })
                .unwrap()
        })
        .collect();

    let io = UdpIo::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), Arc::new(Counters::default()))
        .unwrap();
    let mut cfg = ClientConfig::new(paxos_core::GroupId(0), ClientId(1), peers);
    cfg.timeout_ns = 200_000_000;
    cfg.max_outstanding = WINDOW;
    let mut client = Client::new(io, cfg);
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as u64;
    let mut done: Vec<Completion<Bytes>> = Vec::new();
    let mut answered = BTreeSet::new();
    let mut next = 0;
    while (answered.len() as u64) < REQUESTS {
        assert!(
            start.elapsed() < DEADLINE,
            "deadline: {} of {REQUESTS} answered; client {:?}; replicas applied {:?}",
            answered.len(),
            client.stats(),
            applied(&counters)
        );
        while next < REQUESTS && client.outstanding() < WINDOW {
            client.submit(&next.to_le_bytes(), now_ns()).unwrap();
            next += 1;
        }
        if client.poll(now_ns(), &mut done) == 0 {
            std::thread::yield_now();
        }
        for c in done.drain(..) {
            assert_eq!(c.status, status::OK, "seq {}", c.seq.0);
            assert_eq!(c.body.len(), 16, "slot + the 8-byte command");
            assert!(answered.insert(c.seq.0), "seq {} answered twice", c.seq.0);
        }
    }

    // Let the followers learn the last commit point (heartbeats), then stop.
    while !applied(&counters).iter().all(|a| *a == applied(&counters)[0]) {
        assert!(start.elapsed() < DEADLINE, "replicas did not converge: {:?}", applied(&counters));
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(guard);
    let drivers: Vec<_> =
        threads.into_iter().map(|t| t.join().expect("replica thread panicked")).collect();
    let digests: Vec<u64> = drivers.iter().map(|d| d.app().digest()).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "replicas applied different logs");
    assert!(drivers.iter().all(|d| d.app().applied() >= REQUESTS));
    for d in &drivers {
        let c = d.counters();
        assert_eq!(c.total_drops(), 0, "replica {} dropped datagrams", d.id().0);
        assert_eq!(c.io_errors.get() + c.log_malformed.get(), 0);
    }
    assert!(drivers.iter().any(|d| d.is_leader()), "someone leads");
}
