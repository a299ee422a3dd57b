//! Single-process mode over real mbufs: a 3-replica group and a client, all on one lcore,
//! sharing one `net_ring` port (its TX loops back to its RX). Each node has its own IPv4
//! address and UDP port; a `SharedQueue` files every received frame with the node it is
//! addressed to (software dispatch). Commands must commit end to end: the client gets every
//! reply, the replicas apply the same log, and every mbuf returns to the pool.
//!
//! One EAL per process, so one `#[test]`.
#![cfg(feature = "dpdk")]

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::app::{status, EchoApp};
use dataplane::client::{Client, ClientConfig};
use dataplane::counters::Counters;
use dataplane::dpdk::{
    open_endpoints, DpdkIoConfig, Eal, Mempool, Port, PortConfig, Socket, Steering, Tsc,
};
use dataplane::local::LocalGroup;
use dataplane::wire::MacAddr;
use paxos_core::ClientId;

const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const COMMANDS: u64 = 500;
const DEADLINE: Duration = Duration::from_secs(60);

fn node_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, 1 + i)
}

#[test]
fn three_replicas_and_a_client_on_one_lcore() {
    let prefix = format!("dp-group-{}", std::process::id());
    let _runtime = common::Runtime(prefix.clone());
    let args = common::eal_args("dpdk_group", "0@0", "net_ring0", &prefix);
    let (eal, _) = Eal::init(&args).unwrap();
    let tsc = Tsc::new(&eal);

    let pool = Arc::new(Mempool::new("group_pool", 8191, 256, 2048 + 128, Socket::Any).unwrap());
    let port_id = Port::by_name("net_ring0").unwrap();
    let mut port = Port::configure(port_id, &PortConfig::default(), &pool).unwrap();
    port.start().unwrap();
    let start = pool.avail_count();

    // Nodes 0..3 are replicas, node 3 the client; one shared MAC, distinct IPs and ports.
    let endpoints: Vec<(DpdkIoConfig, Arc<Counters>)> = (0..4u8)
        .map(|i| {
            let cfg = DpdkIoConfig {
                mac: Some(MAC),
                static_arp: (0..4).map(|j| (node_ip(j), MAC)).collect(),
                ..DpdkIoConfig::new(node_ip(i), 7000 + u16::from(i))
            };
            (cfg, Arc::new(Counters::default()))
        })
        .collect();
    let (steering, mut ios) = open_endpoints(&mut port, &pool, &endpoints).unwrap();
    assert_eq!(steering, Steering::Software, "net_ring has one queue and no rte_flow");
    let client_io = ios.pop().unwrap();

    let spec = LocalGroup::replicas(3);
    let transports = ios.into_iter().zip(endpoints.iter().map(|(_, c)| Arc::clone(c))).collect();
    let mut drivers = spec.build(transports, |_| EchoApp::default()).unwrap();
    let mut cfg = ClientConfig::new(spec.group, ClientId(5), drivers[0].peers().clone());
    cfg.max_outstanding = 16;
    cfg.timeout_ns = 20_000_000;
    let mut client = Client::new(client_io, cfg);

    let began = Instant::now();
    let (mut next, mut done, mut completions) = (0u64, 0u64, Vec::new());
    while done < COMMANDS {
        assert!(
            began.elapsed() < DEADLINE,
            "stuck: {done} of {COMMANDS} done, {:?}",
            client.stats()
        );
        let now = tsc.now_ns();
        for d in &mut drivers {
            d.poll(now);
        }
        while next < COMMANDS && client.submit(format!("cmd-{next}").as_bytes(), now).is_ok() {
            next += 1;
        }
        client.poll(now, &mut completions);
        for c in completions.drain(..) {
            assert_eq!(c.status, status::OK, "{c:?}");
            assert!(c.body.len() > 8, "slot number + command");
            done += 1;
        }
    }
    let elapsed = began.elapsed();

    // Let the followers learn the last slots, then compare.
    let settle = Instant::now();
    while drivers.iter().any(|d| d.app().applied() < COMMANDS) {
        assert!(settle.elapsed() < Duration::from_secs(10), "followers did not catch up");
        let now = tsc.now_ns();
        for d in &mut drivers {
            d.poll(now);
        }
        client.poll(now, &mut completions);
    }
    let digest = drivers[0].app().digest();
    for d in &drivers {
        assert_eq!(d.app().applied(), COMMANDS, "replica {}", d.id().0);
        assert_eq!(d.app().digest(), digest, "replica {} applied another log", d.id().0);
        assert_eq!(d.counters().total_drops(), 0, "replica {}: {:?}", d.id().0, d.counters());
    }
    assert_eq!(drivers.iter().filter(|d| d.is_leader()).count(), 1);
    // All four endpoints are on this queue: everything went by local delivery, not the ring.
    assert_eq!(port.stats().unwrap().opackets, 0);
    eprintln!(
        "{COMMANDS} commands in {elapsed:?} ({:.1} us each, window 16, 3 replicas + client on one lcore), client {:?}",
        elapsed.as_secs_f64() * 1e6 / COMMANDS as f64,
        client.stats()
    );

    // Values held by the replicas pin mbufs only above the copy threshold; dropping the
    // drivers and the client returns every mbuf.
    drop(drivers);
    drop(client);
    assert_eq!(pool.avail_count(), start, "mbufs leaked");
    port.close().unwrap();
    drop(pool);
    eal.cleanup().unwrap();
}
