//! Hostile and broken datagrams fed to replicas through the in-memory network: each is
//! dropped and counted under the right cause, nothing panics, and the group still commits.

use bytes::Bytes;
use dataplane::app::{status, EchoApp};
use dataplane::client::{Client, ClientConfig, Completion};
use dataplane::counters::Counters;
use dataplane::driver::GroupDriver;
use dataplane::io::{Endpoint, PacketIo};
use dataplane::local::LocalGroup;
use dataplane::memio::{MemIo, MemNetwork};
use paxos_core::wire::{
    encode, encode_reply, encode_request, BatchBuilder, ClientReply, ClientRequest, Route,
};
use paxos_core::{Ballot, ClientId, GroupId, Message, ReplicaId, RequestSeq, Slot, SlotValue};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

const ROUND_NS: u64 = 50_000;

struct Group {
    net: MemNetwork,
    drivers: Vec<GroupDriver<MemIo, EchoApp>>,
    client: Client<MemIo>,
    now_ns: u64,
}

impl Group {
    fn new() -> Group {
        let net = MemNetwork::new();
        let drivers = LocalGroup::replicas(3).on_mem(&net, |_| EchoApp::default()).unwrap();
        let mut cfg = ClientConfig::new(GroupId(0), ClientId(5), drivers[0].peers().clone());
        cfg.max_outstanding = 4;
        let client = Client::new(net.attach_next(Arc::new(Counters::default())), cfg);
        Group { net, drivers, client, now_ns: 0 }
    }

    fn round(&mut self, done: &mut Vec<Completion<Bytes>>) {
        self.now_ns += ROUND_NS;
        for d in &mut self.drivers {
            d.poll(self.now_ns);
        }
        self.client.poll(self.now_ns, done);
    }

    /// Runs `n` requests to completion (bounded), all OK.
    fn commit(&mut self, n: usize) {
        let mut done = Vec::new();
        let (mut submitted, mut completed) = (0, 0);
        for _ in 0..200_000 {
            while submitted < n && self.client.outstanding() < 4 {
                self.client.submit(format!("op{submitted}").as_bytes(), self.now_ns).unwrap();
                submitted += 1;
            }
            self.round(&mut done);
            for c in done.drain(..) {
                assert_eq!(c.status, status::OK);
                completed += 1;
            }
            if completed == n {
                return;
            }
        }
        panic!("only {completed} of {n} requests completed");
    }
}

/// The drop counters of one replica, by name ("wire_drop/bad_magic", "misdirected", ...).
fn drops(c: &Counters) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    c.visit(|group, name, v| {
        let keep = matches!(group, "frame_drop" | "wire_drop")
            || matches!(
                name,
                "misdirected"
                    | "unknown_port"
                    | "unexpected_replies"
                    | "filter_rx_drops"
                    | "rx_oversize"
            );
        if keep {
            m.insert(
                if group.is_empty() { name.to_string() } else { format!("{group}/{name}") },
                v,
            );
        }
    });
    m
}

fn route(group: u16, from: u16, to: u16) -> Route {
    Route { group: GroupId(group), from: ReplicaId(from), to: ReplicaId(to) }
}

fn encode_msg(r: Route, m: &Message<&[u8]>) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let n = encode(r, m, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn heartbeat(r: Route) -> Vec<u8> {
    encode_msg(
        r,
        &Message::Heartbeat {
            ballot: Ballot::new(1, ReplicaId(0)),
            commit: Slot(0),
            trim: Slot(0),
        },
    )
}

fn promise(r: Route) -> Vec<u8> {
    let entries =
        vec![SlotValue { slot: Slot(3), ballot: Ballot::new(1, ReplicaId(2)), value: &b"v"[..] }];
    encode_msg(
        r,
        &Message::Promise {
            ballot: Ballot::new(1, ReplicaId(1)),
            from: Slot(0),
            low: Slot(0),
            end: Slot(4),
            high: Slot(4),
            chunk: 0,
            chunks: 1,
            entries,
        },
    )
}

fn request(r: Route) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let req = ClientRequest { client: ClientId(9), seq: RequestSeq(1), command: &b"abc"[..] };
    let n = encode_request(r, &req, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// A batch of two requests (clients 9 and 10, commands "abc" and "de").
fn request_batch(r: Route) -> Vec<u8> {
    let mut b = BatchBuilder::requests(1472);
    assert!(b.push_request(&ClientRequest {
        client: ClientId(9),
        seq: RequestSeq(1),
        command: &b"abc"[..]
    }));
    assert!(b.push_request(&ClientRequest {
        client: ClientId(10),
        seq: RequestSeq(1),
        command: &b"de"[..]
    }));
    b.finish(r).to_vec()
}

fn with(mut v: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut v);
    v
}

/// Each case: a name, the datagram for replica 1, and the one counter it must bump.
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let to1 = route(0, 0, 1);
    let mut reply = vec![0u8; 256];
    let r = ClientReply {
        client: ClientId(1),
        seq: RequestSeq(1),
        status: 0,
        leader_hint: None,
        body: &b"x"[..],
    };
    let n = encode_reply(route(0, 0, 0xFFFF), &r, &mut reply).unwrap();
    reply.truncate(n);
    let reply_to_replica = {
        let mut v = vec![0u8; 256];
        let n = encode_reply(route(0, 0, 1), &r, &mut v).unwrap();
        v.truncate(n);
        v
    };
    vec![
        ("empty", vec![], "wire_drop/truncated"),
        ("five bytes", heartbeat(to1)[..5].to_vec(), "wire_drop/truncated"),
        (
            "truncated body",
            with(heartbeat(to1), |v| {
                v.pop();
            }),
            "wire_drop/truncated",
        ),
        ("bad magic", with(heartbeat(to1), |v| v[0] = b'X'), "wire_drop/bad_magic"),
        ("bad version", with(heartbeat(to1), |v| v[2] = 1), "wire_drop/bad_version"),
        ("unknown kind", with(heartbeat(to1), |v| v[3] = 99), "wire_drop/unknown_kind"),
        ("kind zero", with(heartbeat(to1), |v| v[3] = 0), "wire_drop/unknown_kind"),
        ("flags set", with(heartbeat(to1), |v| v[10] = 1), "wire_drop/reserved_nonzero"),
        ("ballot reserved set", with(heartbeat(to1), |v| v[18] = 1), "wire_drop/reserved_nonzero"),
        ("trailing bytes", with(heartbeat(to1), |v| v.push(0)), "wire_drop/trailing_bytes"),
        ("wrong group", heartbeat(route(9, 0, 1)), "misdirected"),
        ("to another replica", heartbeat(route(0, 0, 2)), "misdirected"),
        ("request to another replica", request(route(0, 0xFFFF, 2)), "misdirected"),
        (
            "request length overflow",
            with(request(route(0, 0xFFFF, 1)), |v| v[28] = 200),
            "wire_drop/length_overflow",
        ),
        (
            "promise chunks zero",
            with(promise(to1), |v| {
                v[54] = 0;
                v[55] = 0;
            }),
            "wire_drop/bad_chunk",
        ),
        ("promise chunk past end", with(promise(to1), |v| v[52] = 1), "wire_drop/bad_chunk"),
        (
            "promise entry count huge",
            with(promise(to1), |v| v[56..60].fill(0xFF)),
            "wire_drop/too_many_entries",
        ),
        // Request batches (count at 12, entry 0's command length at 32): dropped whole.
        (
            "request batch count zero",
            with(request_batch(route(0, 0xFFFF, 1)), |v| v[12] = 0),
            "wire_drop/empty_batch",
        ),
        (
            "request batch count too big",
            with(request_batch(route(0, 0xFFFF, 1)), |v| v[12] = 3),
            "wire_drop/too_many_entries",
        ),
        (
            "request batch count too small",
            with(request_batch(route(0, 0xFFFF, 1)), |v| v[12] = 1),
            "wire_drop/trailing_bytes",
        ),
        (
            "request batch reserved set",
            with(request_batch(route(0, 0xFFFF, 1)), |v| v[15] = 1),
            "wire_drop/reserved_nonzero",
        ),
        (
            "request batch entry overflow",
            with(request_batch(route(0, 0xFFFF, 1)), |v| v[32] = 200),
            "wire_drop/length_overflow",
        ),
        (
            "request batch last entry cut",
            with(request_batch(route(0, 0xFFFF, 1)), |v| {
                v.pop();
            }),
            "wire_drop/length_overflow",
        ),
        ("request batch to another replica", request_batch(route(0, 0xFFFF, 2)), "misdirected"),
        (
            "reply batch to a replica",
            {
                let mut b = BatchBuilder::replies(1472);
                assert!(b.push_reply(&r));
                assert!(b.push_reply(&r));
                b.finish(route(0, 0, 1)).to_vec()
            },
            "unexpected_replies",
        ),
        ("reply to client id", reply, "unexpected_replies"),
        ("reply to a replica id", reply_to_replica, "unexpected_replies"),
    ]
}

#[test]
fn each_malformed_datagram_is_counted_by_cause() {
    let mut g = Group::new();
    g.commit(20);
    let target = &g.drivers[1];
    let dst = target.io().local();
    let counters = target.counters().clone();
    let attacker = Endpoint::udp(Ipv4Addr::new(127, 0, 0, 99), 4242);
    let mut done = Vec::new();
    for (name, bytes, counter) in cases() {
        let before = drops(&counters);
        assert!(before.contains_key(counter), "no counter {counter}");
        assert!(g.net.inject(attacker, &dst, &bytes), "{name}: not queued");
        g.round(&mut done);
        let after = drops(&counters);
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before[*k] != **v)
            .map(|(k, v)| (k.clone(), v - before[k]))
            .collect();
        assert_eq!(changed, vec![(counter.to_string(), 1)], "{name}");
    }
    assert!(done.is_empty(), "no stray completions");
    assert_eq!(counters.client_request_batches.get(), 0, "no malformed batch was acted on");
    // The group still commits.
    g.commit(50);
    let digests: Vec<u64> = {
        let mut rounds = 0;
        loop {
            g.round(&mut done);
            let applied: Vec<u64> = g.drivers.iter().map(|d| d.app().applied()).collect();
            if applied.iter().all(|a| *a == applied[0]) || rounds > 10_000 {
                break g.drivers.iter().map(|d| d.app().digest()).collect();
            }
            rounds += 1;
        }
    };
    assert!(digests.iter().all(|d| *d == digests[0]), "replicas agree after the garbage");
    assert_eq!(g.drivers[1].app().applied(), 70);
}

/// One valid datagram of every protocol kind, from the client id to replica `to`.
fn corpus(to: u16) -> Vec<Vec<u8>> {
    let r = route(0, 0xFFFF, to);
    let b = Ballot::new(3, ReplicaId(1));
    let entries = vec![
        SlotValue { slot: Slot(4), ballot: b, value: &b"four"[..] },
        SlotValue { slot: Slot(5), ballot: b, value: &b""[..] },
    ];
    [
        Message::Prepare { ballot: b, from: Slot(1) },
        Message::Promise {
            ballot: b,
            from: Slot(0),
            low: Slot(0),
            end: Slot(6),
            high: Slot(6),
            chunk: 0,
            chunks: 2,
            entries,
        },
        Message::Accept { ballot: b, slot: Slot(9), commit: Slot(8), value: &b"\x03\0\0\0abc"[..] },
        Message::Accepted { ballot: b, slot: Slot(9) },
        Message::Nack { ballot: b, promised: b },
        Message::Heartbeat { ballot: b, commit: Slot(1), trim: Slot(0) },
        Message::Repeat { from: Slot(0), to: Slot(3) },
        Message::Learn { ballot: b, slot: Slot(2), value: &b"zz"[..] },
        Message::Trimmed { low: Slot(7) },
        Message::Applied { applied: Slot(7) },
        Message::SnapshotRequest { min: Slot(3), slot: Slot(0), id: 0, offset: 0 },
        Message::SnapshotChunk { slot: Slot(5), id: 1, total: 4, offset: 0, data: &b"snap"[..] },
        Message::RecoveryQuery { nonce: 9 },
        Message::RecoveryInfo { nonce: 9, ballot: b, high: Slot(3), recovering: false },
    ]
    .iter()
    .map(|m| encode_msg(r, m))
    .chain([request_batch(r)])
    .collect()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_garbage_never_panics_and_is_always_accounted_for() {
    let mut g = Group::new();
    g.commit(10);
    let attacker = Endpoint::udp(Ipv4Addr::new(127, 0, 0, 99), 4242);
    let mut rng = Rng(0x5EED);
    let mut done = Vec::new();
    const DATAGRAMS: u64 = 3000;
    // A request batch that still decodes after the mutation is a valid batch: handled
    // (refused or proposed) entry by entry, and counted in client_request_batches.
    let handled = |d: &GroupDriver<MemIo, EchoApp>| {
        d.node().stats().messages_ignored + d.counters().client_request_batches.get()
    };
    let before: Vec<(u64, u64)> =
        g.drivers.iter().map(|d| (drops(d.counters()).values().sum(), handled(d))).collect();
    for i in 0..DATAGRAMS {
        let to = (i % 3) as u16;
        let v = match rng.next() % 4 {
            0 => {
                let len = (rng.next() % 160) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            }
            _ => {
                // A valid message from the client id (so one that still decodes after the
                // mutation is ignored by the node, and counted), then mutated past the
                // routing fields: truncated, extended, or bytes overwritten.
                let corpus = corpus(to);
                let mut v = corpus[(rng.next() % corpus.len() as u64) as usize].clone();
                match rng.next() % 3 {
                    0 => v.truncate(10 + (rng.next() as usize) % (v.len() - 9)),
                    1 => v.extend((0..1 + rng.next() % 8).map(|_| rng.next() as u8)),
                    _ => {
                        for _ in 0..1 + rng.next() % 3 {
                            let at = 10 + (rng.next() as usize) % (v.len() - 10);
                            v[at] = if rng.next() & 1 == 0 { 0 } else { rng.next() as u8 };
                        }
                    }
                }
                v
            }
        };
        let dst = g.drivers[to as usize].io().local();
        assert!(g.net.inject(attacker, &dst, &v));
        if i % 16 == 0 {
            g.round(&mut done);
        }
    }
    g.round(&mut done);
    let mut accounted = 0;
    for (d, (drops_before, ignored_before)) in g.drivers.iter().zip(before) {
        let dropped: u64 = drops(d.counters()).values().sum::<u64>() - drops_before;
        let ignored = handled(d) - ignored_before;
        accounted += dropped + ignored;
    }
    assert_eq!(accounted, DATAGRAMS, "every garbage datagram was dropped, ignored or handled");
    g.commit(30);
}
