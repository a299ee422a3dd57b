//! A 3-replica group and one client over the in-memory network, all in one thread, driven
//! round-robin with a virtual clock (deterministic: no timing assertions, only bounds on
//! the number of rounds so a stuck cluster fails instead of hanging).

use dataplane::app::{status, Application, EchoApp, LogCommand};
use dataplane::client::{Client, ClientConfig, Completion};
use dataplane::counters::Counters;
use dataplane::driver::GroupDriver;
use dataplane::fault::{Lossy, NoFaults, PacketFilter};
use dataplane::local::LocalGroup;
use dataplane::memio::{MemIo, MemNetwork};
use paxos_core::{ClientId, ReplicaId, Slot};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Virtual time per round (every replica and the client poll once per round).
const ROUND_NS: u64 = 50_000;
/// A run that needs more rounds than this is stuck.
const MAX_ROUNDS: u64 = 2_000_000;

/// EchoApp plus a record of everything applied, to compare whole logs.
#[derive(Default)]
struct Recorder {
    echo: EchoApp,
    log: Vec<(Slot, u64, u64, Vec<u8>)>,
}

impl Application for Recorder {
    fn apply(&mut self, slot: Slot, cmd: &LogCommand<'_>, reply: &mut Vec<u8>) -> Option<u8> {
        self.log.push((slot, cmd.client.0, cmd.seq.0, cmd.command.to_vec()));
        self.echo.apply(slot, cmd, reply)
    }

    /// The echo state, then every logged command (a replica that fell below the trim point
    /// gets the whole log from a peer, so the logs still compare equal).
    fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        let mut v = self.echo.take_snapshot()?;
        for (slot, client, seq, cmd) in &self.log {
            for w in [slot.0, *client, *seq, cmd.len() as u64] {
                v.extend_from_slice(&w.to_le_bytes());
            }
            v.extend_from_slice(cmd);
        }
        Some(v)
    }

    fn install_snapshot(&mut self, upto: Slot, data: &[u8]) -> bool {
        let (echo, mut rest) = data.split_at(data.len().min(25));
        let mut log = Vec::new();
        let word = |rest: &mut &[u8]| -> Option<u64> {
            let (w, r) = rest.split_first_chunk::<8>()?;
            *rest = r;
            Some(u64::from_le_bytes(*w))
        };
        while !rest.is_empty() {
            let (Some(slot), Some(client), Some(seq), Some(len)) =
                (word(&mut rest), word(&mut rest), word(&mut rest), word(&mut rest))
            else {
                return false;
            };
            let Some((cmd, r)) = rest.split_at_checked(len as usize) else { return false };
            rest = r;
            log.push((Slot(slot), client, seq, cmd.to_vec()));
        }
        if !self.echo.install_snapshot(upto, echo) {
            return false;
        }
        self.log = log;
        true
    }
}

struct Cluster<F: PacketFilter> {
    net: MemNetwork,
    drivers: Vec<Option<GroupDriver<MemIo, Recorder, F>>>,
    client: Client<MemIo>,
    now_ns: u64,
    rounds: u64,
}

fn cluster<F: PacketFilter>(
    make_filter: impl FnMut(ReplicaId) -> F,
    timeout_ns: u64,
) -> Cluster<F> {
    cluster_with(LocalGroup::replicas(3), make_filter, timeout_ns)
}

fn cluster_with<F: PacketFilter>(
    spec: LocalGroup,
    make_filter: impl FnMut(ReplicaId) -> F,
    timeout_ns: u64,
) -> Cluster<F> {
    let net = MemNetwork::new();
    let transports = (0..3)
        .map(|_| {
            let c = Arc::new(Counters::default());
            (net.attach_next(c.clone()), c)
        })
        .collect();
    let drivers = spec.build_with(transports, |_| Recorder::default(), make_filter).unwrap();
    let mut cfg = ClientConfig::new(spec.group, ClientId(77), drivers[0].peers().clone());
    cfg.timeout_ns = timeout_ns;
    cfg.max_outstanding = 8;
    let client = Client::new(net.attach_next(Arc::new(Counters::default())), cfg);
    Cluster { net, drivers: drivers.into_iter().map(Some).collect(), client, now_ns: 0, rounds: 0 }
}

impl<F: PacketFilter> Cluster<F> {
    fn round(&mut self, done: &mut Vec<Completion<bytes::Bytes>>) {
        self.now_ns += ROUND_NS;
        self.rounds += 1;
        assert!(self.rounds < MAX_ROUNDS, "cluster stuck after {} rounds", self.rounds);
        for d in self.drivers.iter_mut().flatten() {
            d.poll(self.now_ns);
        }
        self.client.poll(self.now_ns, done);
    }

    /// Submits requests `cmd-<i>` for i in `range`, keeping the window full, and checks
    /// each answer. Calls `between(self, completed)` after every round.
    fn run(
        &mut self,
        range: std::ops::Range<u64>,
        answers: &mut BTreeSet<u64>,
        mut between: impl FnMut(&mut Self, usize),
    ) {
        let mut next = range.start;
        let mut done = Vec::new();
        let mut commands = std::collections::HashMap::new();
        let target = answers.len() + (range.end - range.start) as usize;
        while answers.len() < target {
            while next < range.end && self.client.outstanding() < 8 {
                let cmd = format!("cmd-{next}").into_bytes();
                let seq = self.client.submit(&cmd, self.now_ns).unwrap();
                commands.insert(seq.0, cmd);
                next += 1;
            }
            self.round(&mut done);
            for c in done.drain(..) {
                assert_eq!(c.status, status::OK, "request {} failed", c.seq.0);
                let cmd = &commands[&c.seq.0];
                assert_eq!(&c.body[8..], &cmd[..], "answer echoes the command");
                assert!(answers.insert(c.seq.0), "seq {} completed twice", c.seq.0);
            }
            between(self, answers.len());
        }
    }

    /// Rounds until every live replica applied the same number of commands.
    fn settle(&mut self) {
        let mut done = Vec::new();
        for _ in 0..20_000 {
            self.round(&mut done);
            let counts: BTreeSet<usize> =
                self.drivers.iter().flatten().map(|d| d.app().log.len()).collect();
            if counts.len() == 1 {
                return;
            }
        }
        panic!("replicas did not converge");
    }

    fn live(&self) -> impl Iterator<Item = &GroupDriver<MemIo, Recorder, F>> {
        self.drivers.iter().flatten()
    }

    /// Every live replica applied the same log; returns it.
    fn agreed_log(&self) -> Vec<(Slot, u64, u64, Vec<u8>)> {
        let first = self.live().next().unwrap();
        eprintln!(
            "{} rounds, client {:?}, log {} commands in {} slots",
            self.rounds,
            self.client.stats(),
            first.app().log.len(),
            first.app().log.last().map_or(0, |e| e.0 .0 + 1)
        );
        for d in self.live() {
            assert_eq!(
                d.app().log,
                first.app().log,
                "replica {} differs from {}",
                d.id().0,
                first.id().0
            );
            assert_eq!(d.app().echo.digest(), first.app().echo.digest());
        }
        first.app().log.clone()
    }
}

fn check_log_covers(log: &[(Slot, u64, u64, Vec<u8>)], seqs: std::ops::RangeInclusive<u64>) {
    let applied: BTreeSet<u64> = log.iter().map(|e| e.2).collect();
    for s in seqs {
        assert!(applied.contains(&s), "seq {s} answered but not in the log");
    }
    assert!(log.windows(2).all(|w| w[0].0 <= w[1].0), "slots out of order");
    assert!(log.iter().all(|e| e.1 == 77), "only our client proposed");
}

#[test]
fn thousand_requests_three_replicas() {
    let mut c = cluster(|_| NoFaults, 50_000_000);
    let mut answers = BTreeSet::new();
    c.run(1..1001, &mut answers, |_, _| {});
    assert_eq!(answers.len(), 1000);
    c.settle();
    let log = c.agreed_log();
    check_log_covers(&log, 1..=1000);
    let leaders: Vec<_> = c.live().filter(|d| d.is_leader()).map(|d| d.id()).collect();
    assert_eq!(leaders.len(), 1, "one leader: {leaders:?}");
    // Every reply is a refusal or the proposer's answer to one applied command.
    let replies: u64 = c.live().map(|d| d.counters().client_replies.get()).sum();
    let refused: u64 = c.live().map(|d| d.counters().client_rejected.get()).sum();
    assert_eq!(replies, log.len() as u64 + refused);
    assert_eq!(dup_count(&log), 0, "no retries without faults");
    for d in c.live() {
        let k = d.counters();
        assert_eq!(k.total_drops(), 0, "replica {}: drops", d.id().0);
        assert_eq!(k.commands_applied.get(), log.len() as u64);
        assert_eq!(k.log_malformed.get(), 0);
    }
}

/// Commands applied more than once (retried after a timeout): each got its own reply.
fn dup_count(log: &[(Slot, u64, u64, Vec<u8>)]) -> u64 {
    let distinct: BTreeSet<u64> = log.iter().map(|e| e.2).collect();
    log.len() as u64 - distinct.len() as u64
}

#[test]
fn leader_crash_mid_run() {
    let mut c = cluster(|_| NoFaults, 20_000_000);
    let mut answers = BTreeSet::new();
    let mut crashed = None;
    c.run(1..1001, &mut answers, |c, completed| {
        if completed >= 300 && crashed.is_none() {
            let i =
                c.drivers.iter().position(|d| d.as_ref().is_some_and(|d| d.is_leader())).unwrap();
            crashed = Some(ReplicaId(i as u16));
            c.drivers[i] = None; // the node and its socket are gone
        }
    });
    let crashed = crashed.expect("the leader was crashed");
    assert_eq!(answers.len(), 1000);
    c.settle();
    let log = c.agreed_log();
    check_log_covers(&log, 1..=1000);
    assert_eq!(c.live().count(), 2);
    let leader = c.live().find(|d| d.is_leader()).expect("a new leader").id();
    assert_ne!(leader, crashed);
    assert!(
        c.client.stats().timeouts > 0 || c.client.stats().redirects > 0,
        "the client noticed the crash"
    );
}

#[test]
fn ten_percent_loss_still_completes() {
    // Every replica drops 10% of what it receives and 10% of what it sends, from its own seed.
    let mut c = cluster(|id| Lossy::new(1000 + u64::from(id.0), 100_000, 100_000), 10_000_000);
    let mut answers = BTreeSet::new();
    c.run(1..1001, &mut answers, |_, _| {});
    assert_eq!(answers.len(), 1000);
    c.settle();
    let log = c.agreed_log();
    check_log_covers(&log, 1..=1000);
    let (rx, tx): (u64, u64) = c
        .live()
        .map(|d| (d.counters().filter_rx_drops.get(), d.counters().filter_tx_drops.get()))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let received: u64 = c.live().map(|d| d.counters().rx_packets.get()).sum();
    assert!(
        rx > received / 20 && rx < received / 5,
        "about 10% dropped on receive: {rx} of {received}"
    );
    assert!(tx > 0);
    assert!(c.client.stats().timeouts > 0, "losses forced retries");
}

/// Sends raw requests from a bare endpoint and returns the replies, decoded.
fn raw_requests(
    c: &mut Cluster<NoFaults>,
    me: &mut dataplane::memio::MemIo,
    to: ReplicaId,
    commands: &[Vec<u8>],
) -> Vec<(ReplicaId, paxos_core::wire::ClientReply<Vec<u8>>)> {
    let reqs: Vec<(u64, u64, Vec<u8>)> =
        commands.iter().enumerate().map(|(i, cmd)| (5, i as u64 + 1, cmd.clone())).collect();
    raw_exchange(c, me, to, &reqs, false)
}

/// Sends `(client, seq, command)` requests from a bare endpoint, one datagram each or all
/// in one request batch, and returns the replies (single or batched), decoded.
fn raw_exchange(
    c: &mut Cluster<NoFaults>,
    me: &mut dataplane::memio::MemIo,
    to: ReplicaId,
    reqs: &[(u64, u64, Vec<u8>)],
    batched: bool,
) -> Vec<(ReplicaId, paxos_core::wire::ClientReply<Vec<u8>>)> {
    use dataplane::io::PacketIo;
    use paxos_core::wire::{decode_borrowed, encode_request, request_encoded_len, ClientRequest};
    use paxos_core::wire::{BatchBuilder, Envelope, Route, CLIENT};
    let dst = c.drivers[to.0 as usize].as_ref().unwrap().io().local();
    let route = Route { group: paxos_core::GroupId(0), from: CLIENT, to };
    let mut batch = BatchBuilder::requests(1472);
    for (client, seq, cmd) in reqs {
        let req = ClientRequest {
            client: ClientId(*client),
            seq: paxos_core::RequestSeq(*seq),
            command: &cmd[..],
        };
        if batched {
            assert!(batch.push_request(&req));
            continue;
        }
        me.send_with(&dst, request_encoded_len(&req), |b| {
            encode_request(route, &req, b).unwrap();
        })
        .unwrap();
    }
    if batched {
        let bytes = batch.finish(route);
        me.send_with(&dst, bytes.len(), |b| b.copy_from_slice(bytes)).unwrap();
    }
    me.flush();
    let mut replies = Vec::new();
    let mut got = Vec::new();
    let mut done = Vec::new();
    for _ in 0..100 {
        c.round(&mut done);
        got.clear();
        me.recv_burst(&mut got, 64);
        for dg in &got {
            match decode_borrowed(&dg.data) {
                Ok((h, Envelope::Reply(r))) => {
                    replies.push((h.from, r.map_body(<[u8]>::to_vec)));
                }
                // The replies of one poll to one endpoint share a datagram.
                Ok((h, Envelope::ReplyBatch(b))) => {
                    for r in b.replies() {
                        replies.push((h.from, r.map_body(|r| b.entries[r].to_vec())));
                    }
                }
                other => panic!("not a reply: {other:?}"),
            }
        }
        if replies.len() == reqs.len() {
            break;
        }
    }
    replies
}

#[test]
fn refusals_carry_status_and_hint() {
    let mut c = cluster(|_| NoFaults, 50_000_000);
    let mut answers = BTreeSet::new();
    c.run(1..11, &mut answers, |_, _| {}); // a leader exists
    let leader = c.live().find(|d| d.is_leader()).unwrap().id();
    let follower = c.live().find(|d| !d.is_leader()).unwrap().id();
    let mut me = c.net.attach_next(Arc::new(Counters::default()));

    // A follower refuses and names the leader.
    let r = raw_requests(&mut c, &mut me, follower, &[b"x".to_vec()]);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].0, r[0].1.status, r[0].1.leader_hint),
        (follower, status::NOT_LEADER, Some(leader))
    );

    // The leader refuses a command larger than a batch (1024 bytes with the 32-byte header).
    let r = raw_requests(&mut c, &mut me, leader, &[vec![7u8; 1000]]);
    assert_eq!((r[0].1.status, r[0].1.leader_hint), (status::TOO_LARGE, Some(leader)));

    // And answers a normal one with the slot and the echo.
    let r = raw_requests(&mut c, &mut me, leader, &[b"hello".to_vec()]);
    assert_eq!(r[0].1.status, status::OK);
    assert_eq!(&r[0].1.body[8..], b"hello");

    // Time jumps: ticks are bounded per poll, the rest skipped and counted.
    let d = c.drivers[leader.0 as usize].as_mut().unwrap();
    let before = d.counters().ticks_skipped.get();
    d.poll(c.now_ns + 1_000 * 1_000_000);
    assert!(d.counters().ticks_skipped.get() - before >= 1_000 - 16);
}

#[test]
fn full_leader_queue_answers_busy() {
    // One slot in flight, one sealed batch queued, one command per batch: of a burst of five
    // requests the first is proposed, the second queued, and the other three refused.
    let mut spec = LocalGroup::replicas(3);
    spec.paxos.window = 1;
    spec.paxos.max_pending_batches = 1;
    spec.paxos.batch_max_commands = 1;
    let mut c = cluster_with(spec, |_| NoFaults, 50_000_000);
    let mut answers = BTreeSet::new();
    c.run(1..3, &mut answers, |_, _| {});
    let leader = c.live().find(|d| d.is_leader()).unwrap().id();
    let mut me = c.net.attach_next(Arc::new(Counters::default()));
    let burst: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i]).collect();
    let mut r = raw_requests(&mut c, &mut me, leader, &burst);
    r.sort_by_key(|(_, reply)| reply.seq);
    let statuses: Vec<u8> = r.iter().map(|(_, reply)| reply.status).collect();
    assert_eq!(statuses, [status::OK, status::OK, status::BUSY, status::BUSY, status::BUSY]);
    assert!(r.iter().all(|(from, reply)| *from == leader && reply.leader_hint == Some(leader)));
}

#[test]
fn request_batches_are_answered_entry_by_entry() {
    let mut c = cluster_with(LocalGroup::replicas(3), |_| NoFaults, 50_000_000);
    let mut answers = BTreeSet::new();
    c.run(1..3, &mut answers, |_, _| {});
    let leader = c.live().find(|d| d.is_leader()).unwrap().id();
    let follower = c.live().find(|d| !d.is_leader()).unwrap().id();
    let mut me = c.net.attach_next(Arc::new(Counters::default()));
    // Three sessions in one datagram; each entry keeps its own client id and seq.
    let reqs: Vec<(u64, u64, Vec<u8>)> =
        vec![(7, 1, b"a".to_vec()), (8, 1, b"b".to_vec()), (7, 2, b"c".to_vec())];

    // A follower refuses every entry, each with the leader's name.
    let r = raw_exchange(&mut c, &mut me, follower, &reqs, true);
    assert_eq!(r.len(), 3);
    for (from, reply) in &r {
        assert_eq!(
            (*from, reply.status, reply.leader_hint),
            (follower, status::NOT_LEADER, Some(leader))
        );
    }
    let mut ids: Vec<(u64, u64)> = r.iter().map(|(_, x)| (x.client.0, x.seq.0)).collect();
    ids.sort();
    assert_eq!(ids, [(7, 1), (7, 2), (8, 1)]);

    // The leader proposes the entries in order and answers each one.
    let before =
        c.drivers[leader.0 as usize].as_ref().unwrap().counters().client_request_batches.get();
    let r = raw_exchange(&mut c, &mut me, leader, &reqs, true);
    let d = c.drivers[leader.0 as usize].as_ref().unwrap();
    assert_eq!(d.counters().client_request_batches.get(), before + 1);
    assert!(d.counters().client_reply_batches.get() >= 1, "the replies came coalesced");
    assert_eq!(r.len(), 3);
    for (from, reply) in &r {
        assert_eq!((*from, reply.status), (leader, status::OK));
        let (_, _, cmd) =
            reqs.iter().find(|(cl, seq, _)| (*cl, *seq) == (reply.client.0, reply.seq.0)).unwrap();
        assert_eq!(&reply.body[8..], &cmd[..]);
    }
    // In log order, in the batch's order.
    let slots_and_cmds: Vec<(u64, u8)> = {
        let mut v: Vec<(u64, u8)> = r
            .iter()
            .map(|(_, x)| (u64::from_le_bytes(x.body[..8].try_into().unwrap()), x.body[8]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(slots_and_cmds.iter().map(|x| x.1).collect::<Vec<_>>(), b"abc");
}
