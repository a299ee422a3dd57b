//! The KV store as the application of a real 3-replica group in one process (dataplane's
//! in-memory network, virtual clock): compare-and-swap counters behave linearizably, and
//! the load generator's engine runs over the same group and records a sane history.

use apps::kv::{Op, Reply};
use apps::kvapp::{decode_reply, KvApp};
use apps::loadgen::{Engine, Workload};
use dataplane::app::status;
use dataplane::client::{Client, ClientConfig};
use dataplane::counters::Counters;
use dataplane::driver::GroupDriver;
use dataplane::idle::IdlePolicy;
use dataplane::local::LocalGroup;
use dataplane::memio::{MemIo, MemNetwork};
use paxos_core::{ClientId, GroupId};
use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const KEY: &[u8] = b"counter";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Read,
    Cas(Option<u64>),
}

fn encode(op: Op<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    op.encode(&mut v);
    v
}

fn poll_all(drivers: &mut [GroupDriver<MemIo, KvApp>], now: u64) {
    for d in drivers.iter_mut() {
        d.poll(now);
    }
}

#[test]
fn cas_increments_from_four_clients_add_up() {
    const CLIENTS: usize = 4;
    const INCREMENTS_EACH: u64 = 40;
    let net = MemNetwork::new();
    let mut drivers = LocalGroup::replicas(3).on_mem(&net, |_| KvApp::default()).unwrap();
    let peers = drivers[0].peers().clone();
    let mut clients: Vec<Client<MemIo>> = (0..CLIENTS)
        .map(|i| {
            let mut cfg = ClientConfig::new(GroupId(0), ClientId(1000 + i as u64), peers.clone());
            cfg.timeout_ns = 5_000_000;
            Client::new(net.attach_next(Arc::new(Counters::default())), cfg)
        })
        .collect();
    let mut step = [Step::Read; CLIENTS];
    let mut swapped = [0u64; CLIENTS];
    let mut failed_cas = 0u64;
    let mut now = 0u64;
    let mut done = Vec::new();
    // Start every client.
    for c in clients.iter_mut() {
        c.submit(&encode(Op::Get { key: KEY }), now).unwrap();
    }
    let mut rounds = 0u64;
    while swapped.iter().any(|&s| s < INCREMENTS_EACH) {
        rounds += 1;
        assert!(rounds < 2_000_000, "no progress: {swapped:?}");
        now += 20_000;
        poll_all(&mut drivers, now);
        for (i, c) in clients.iter_mut().enumerate() {
            done.clear();
            c.poll(now, &mut done);
            let Some(comp) = done.pop() else { continue };
            assert_eq!(comp.status, status::OK, "client {i}: {comp:?}");
            let reply = decode_reply(comp.status, &comp.body).unwrap();
            let next = match (step[i], reply) {
                (Step::Read, Reply::Value(v)) => {
                    let cur = v.map(|b| String::from_utf8(b).unwrap().parse::<u64>().unwrap());
                    Step::Cas(cur)
                }
                (Step::Cas(_), Reply::Flag(ok)) => {
                    if ok {
                        swapped[i] += 1;
                    } else {
                        failed_cas += 1;
                    }
                    Step::Read
                }
                (s, r) => panic!("client {i}: {r:?} in step {s:?}"),
            };
            if swapped[i] >= INCREMENTS_EACH && next == Step::Read {
                continue; // this client is done
            }
            step[i] = next;
            let cmd = match next {
                Step::Read => encode(Op::Get { key: KEY }),
                Step::Cas(cur) => {
                    let exp = cur.map(|v| v.to_string());
                    let new = (cur.unwrap_or(0) + 1).to_string();
                    encode(Op::Cas {
                        key: KEY,
                        expected: exp.as_deref().map(str::as_bytes),
                        value: new.as_bytes(),
                    })
                }
            };
            c.submit(&cmd, now).unwrap();
        }
    }
    // Let every replica apply the tail, then compare.
    for _ in 0..20_000 {
        now += 20_000;
        poll_all(&mut drivers, now);
        for c in clients.iter_mut() {
            done.clear();
            c.poll(now, &mut done);
        }
    }
    let total: u64 = swapped.iter().sum();
    let expected = total.to_string();
    for d in &drivers {
        assert_eq!(
            d.app().store().get(KEY),
            Some(expected.as_bytes()),
            "replica {} disagrees (successful cas: {total}, failed: {failed_cas})",
            d.id().0
        );
    }
    assert_eq!(total, CLIENTS as u64 * INCREMENTS_EACH);
    assert!(failed_cas > 0, "four clients on one key should have collided at least once");
}

#[test]
fn load_engine_over_an_in_process_group_records_a_sane_history() {
    // Requests coalesced per replica (kind 18), and one datagram per request.
    for batch_bytes in [1472, 0] {
        engine_run(batch_bytes);
    }
}

fn engine_run(batch_bytes: usize) {
    let net = MemNetwork::new();
    let mut drivers = LocalGroup::replicas(3).on_mem(&net, |_| KvApp::default()).unwrap();
    let peers = drivers[0].peers().clone();
    let io = net.attach_next(Arc::new(Counters::default()));
    let w = Workload {
        sessions: 8,
        rate: None,
        warmup_ns: 20_000_000,
        duration_ns: 200_000_000,
        value_bytes: 16,
        keys: 20,
        read_ratio: 0.4,
        cas_ratio: 0.3,
        timeout_ns: 500_000_000,
        retry_ns: 20_000_000,
        idle: IdlePolicy::Spin,
        seed: 7,
        label: "memio".into(),
        batch_bytes,
        verify: false,
    };
    let engine = Engine::new(io, vec![peers], w, Some(Vec::new()));
    // A virtual clock: 10 us per loop iteration (the engine reads it a few times per
    // iteration; each read advances it a little).
    let t = Cell::new(0u64);
    let clock = || {
        t.set(t.get() + 2_000);
        t.get()
    };
    let stop = AtomicBool::new(false);
    let (r, hist) = engine
        .run(clock, &stop, |now| {
            poll_all(&mut drivers, now);
            1
        })
        .unwrap();
    assert!(r.summary.ops > 100, "{}", r.summary.human());
    assert_eq!(r.summary.errors, 0, "{}", r.summary.human());
    assert_eq!(r.counts.info, 0);
    let text = String::from_utf8(hist.unwrap()).unwrap();
    let mut written = std::collections::HashSet::new();
    let mut gets = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["op"].as_str().unwrap() {
            "put" | "cas" => {
                written.insert(v["value"].as_str().unwrap().to_string());
            }
            "get" if v["status"] == "ok" => gets.push(v["result"].clone()),
            _ => {}
        }
    }
    assert!(!gets.is_empty());
    for g in gets {
        assert!(g.is_null() || written.contains(g.as_str().unwrap()), "get returned {g}");
    }
    assert!(text.contains("\"op\":\"cas\""));
    let d = &r.counts.demux;
    if batch_bytes == 0 {
        assert_eq!(d.requests, d.request_datagrams);
    } else {
        assert!(d.request_datagrams < d.requests, "nothing coalesced: {d:?}");
        assert!(d.reply_batches > 0, "no reply batch: {d:?}");
    }
}

/// Sends `reqs` as ONE request batch to `to` and collects the replies (single or batched)
/// by (client, seq), in arrival order.
fn exchange(
    net_io: &mut MemIo,
    drivers: &mut [GroupDriver<MemIo, KvApp>],
    now: &mut u64,
    to: usize,
    reqs: &[(u64, u64, Vec<u8>)],
) -> Vec<(u64, u64, u8, Vec<u8>)> {
    use dataplane::io::PacketIo;
    use paxos_core::wire::{decode_borrowed, BatchBuilder, ClientRequest, Envelope, Route, CLIENT};
    use paxos_core::{ReplicaId, RequestSeq};
    let mut b = BatchBuilder::requests(1472);
    for (client, seq, cmd) in reqs {
        let req =
            ClientRequest { client: ClientId(*client), seq: RequestSeq(*seq), command: &cmd[..] };
        assert!(b.push_request(&req));
    }
    let route = Route { group: GroupId(0), from: CLIENT, to: ReplicaId(to as u16) };
    let dst = drivers[to].io().local();
    let bytes = b.finish(route);
    net_io.send_with(&dst, bytes.len(), |buf| buf.copy_from_slice(bytes)).unwrap();
    net_io.flush();
    let mut out = Vec::new();
    let mut got = Vec::new();
    for _ in 0..10_000 {
        *now += 10_000;
        poll_all(drivers, *now);
        got.clear();
        net_io.recv_burst(&mut got, 32);
        for dg in &got {
            match decode_borrowed(&dg.data).unwrap().1 {
                Envelope::Reply(r) => out.push((r.client.0, r.seq.0, r.status, r.body.to_vec())),
                Envelope::ReplyBatch(batch) => {
                    for r in batch.replies() {
                        let body = batch.entries[r.body.clone()].to_vec();
                        out.push((r.client.0, r.seq.0, r.status, body));
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        if out.len() == reqs.len() {
            return out;
        }
    }
    panic!("only {} of {} replies", out.len(), reqs.len());
}

/// Exactly-once sessions hold per entry of a request batch: a retry (in the same batch or
/// a later one) is answered from the session's cached reply and not applied again.
#[test]
fn request_batches_keep_sessions_exactly_once() {
    let net = MemNetwork::new();
    let mut drivers = LocalGroup::replicas(3).on_mem(&net, |_| KvApp::default()).unwrap();
    let mut me = net.attach_next(Arc::new(Counters::default()));
    let mut now = 0u64;
    while !drivers.iter().any(|d| d.is_leader()) {
        now += 100_000;
        poll_all(&mut drivers, now);
        assert!(now < 10_000_000_000, "no leader");
    }
    let leader = drivers.iter().position(|d| d.is_leader()).unwrap();
    let put = |v: &[u8]| encode(Op::Put { key: b"k", value: v });
    let get = encode(Op::Get { key: b"k" });
    // Client 1 puts "a", client 2 puts "b", then client 1's put is retried in the same
    // batch: applied again, it would put "a" back.
    let first = exchange(
        &mut me,
        &mut drivers,
        &mut now,
        leader,
        &[(1, 1, put(b"a")), (2, 1, put(b"b")), (1, 1, put(b"a"))],
    );
    assert!(first.iter().all(|r| r.2 == status::OK), "{first:?}");
    // A later retry of the same request, and a read by client 1.
    let second =
        exchange(&mut me, &mut drivers, &mut now, leader, &[(1, 1, put(b"a")), (1, 2, get)]);
    let read = second.iter().find(|r| (r.0, r.1) == (1, 2)).unwrap();
    assert_eq!(decode_reply(read.2, &read.3), Ok(Reply::Value(Some(b"b".to_vec()))));
    let retried = second.iter().find(|r| (r.0, r.1) == (1, 1)).unwrap();
    let original = first.iter().find(|r| (r.0, r.1) == (1, 1)).unwrap();
    assert_eq!(retried, original, "the retry got the cached reply");
    for d in &drivers {
        assert_eq!(d.app().store().get(b"k"), Some(&b"b"[..]));
    }
}
