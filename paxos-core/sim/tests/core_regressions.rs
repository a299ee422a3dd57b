//! Directed regressions for core bugs, driving a `paxos_core::Node` by hand with crafted
//! messages (for bugs too narrow for random seeds to hit often), plus the swarm seeds that
//! found the other core bugs (see the comments at each fix in paxos-core).

mod common;

use bytes::Bytes;
use paxos_core::{
    Ballot, BytesBuilder, Config, MemNode, MemStorage, Message, ReplicaId, Slot, SlotValue,
};
use paxos_sim::{Options, Simulation};

/// Delivers `node`'s messages to itself until it is quiet; returns those for others.
fn settle(node: &mut MemNode, others: &mut Vec<(ReplicaId, Message<Bytes>)>) {
    let mut out = Vec::new();
    loop {
        node.sync().unwrap();
        node.take_messages(&mut out);
        if out.is_empty() {
            return;
        }
        for o in out.drain(..) {
            if o.to == node.id() {
                node.step(node.id(), o.msg);
            } else {
                others.push((o.to, o.msg));
            }
        }
    }
}

/// Paxos Made Simple §2.2 (P2c via phase 1): the new leader must learn every value a
/// phase-1 quorum accepted. A Promise may arrive in chunks; an acceptor that restarts while
/// the candidate is still collecting (its volatile commit point, hence `low`, reset) answers
/// a retransmitted Prepare with a differently split Promise. Merging chunk 0 of one answer
/// with chunk 1 of the other silently dropped the slots between the two split points, and
/// the leader filled such a slot with a no-op over a possibly chosen value. Fixed in
/// `proposer_on_promise`: chunks of a different answer (other `low` or chunk count) start
/// the assembly over.
#[test]
fn promise_chunks_of_two_answers_are_not_merged() {
    let mut node = MemNode::new(
        Config::replicas(3),
        ReplicaId(0),
        MemStorage::default(),
        BytesBuilder::default(),
        1,
    )
    .unwrap();
    let old = Ballot::new(3, ReplicaId(1));
    let mut others = Vec::new();
    // Learn of ballot b3.1 so that our election uses a higher one, and the entries below are
    // from a lower ballot.
    node.step(ReplicaId(1), Message::Heartbeat { ballot: old, commit: Slot(0), trim: Slot(0) });
    settle(&mut node, &mut others);
    let mut ticks = 0;
    let ballot = loop {
        node.tick();
        settle(&mut node, &mut others);
        if let Some(b) = others.iter().find_map(|(_, m)| match m {
            Message::Prepare { ballot, .. } => Some(*ballot),
            _ => None,
        }) {
            break b;
        }
        ticks += 1;
        assert!(ticks < 100, "no election");
    };
    assert!(ballot > old);
    others.clear();
    let sv = |s: u64, v: &'static [u8]| SlotValue {
        slot: Slot(s),
        ballot: old,
        value: Bytes::from_static(v),
    };
    // Answer B (before the restart, low 0): [s0] [s1 s2]. Answer A (after, low 1): [s1] [s2].
    let b_chunk0 =
        Message::Promise { ballot, low: Slot(0), chunk: 0, chunks: 2, entries: vec![sv(0, b"x")] };
    let a_chunk1 =
        Message::Promise { ballot, low: Slot(1), chunk: 1, chunks: 2, entries: vec![sv(2, b"z")] };
    let a_chunk0 =
        Message::Promise { ballot, low: Slot(1), chunk: 0, chunks: 2, entries: vec![sv(1, b"y")] };
    for m in [b_chunk0, a_chunk1, a_chunk0] {
        node.step(ReplicaId(1), m);
        settle(&mut node, &mut others);
    }
    assert!(node.is_leader());
    let s1: Vec<&Bytes> = others
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Accept { slot: Slot(1), value, .. } => Some(value),
            _ => None,
        })
        .collect();
    assert!(!s1.is_empty(), "the leader did not propose s1");
    assert!(s1.iter().all(|v| &v[..] == b"y"), "s1 proposed as {s1:?}, but the quorum reported y");
}

/// Seeds that fail when one core fix is reverted (each found by reverting that fix alone in
/// a copy of the tree and running the binary). They pin down the fixes as long as the
/// simulator's draw order is unchanged; if it changes, find new ones the same way.
#[test]
fn seeds_that_fail_without_the_core_fixes() {
    use paxos_sim::FaultLevel;
    let swarm = Options::default();
    let churn = Options { faults: FaultLevel::Churn, ..Options::default() };
    for (seed, opts, fix) in [
        (2223u64, &swarm, "acceptor acks an Accept below its trim point"),
        (8, &swarm, "learner decides from a phase-1 quorum of Learn answers"),
        (3767, &swarm, "learner streams Repeats while catching up"),
        (21, &churn, "proposer records its ballot before sending Prepare"),
    ] {
        let o = Simulation::run_seed(seed, opts);
        assert!(o.ok(), "seed {seed} guards the fix \"{fix}\"\n{}", o.report(opts));
    }
}

/// Paxos Made Simple §2.5: "each proposer remembers (in stable storage) the highest-numbered
/// proposal it has tried to issue, and begins phase 1 with a higher proposal number than any
/// it has already used". A proposer-only member (no acceptor on the node to remember its
/// promise) used to restart with `max_seen = NONE` and lead again with the ballot of its
/// previous incarnation, proposing different values under one ballot.
#[test]
fn restarted_proposer_never_reuses_a_ballot() {
    use paxos_core::{Member, Roles};
    let members = vec![
        Member {
            id: ReplicaId(0),
            roles: Roles { acceptor: false, proposer: true, learner: true },
        },
        Member { id: ReplicaId(1), roles: Roles::REPLICA },
        Member { id: ReplicaId(2), roles: Roles::ACCEPTOR },
    ];
    let cfg = Config::with_members(members);
    let first_prepare = |node: &mut MemNode| {
        let mut others = Vec::new();
        for _ in 0..100 {
            node.tick();
            settle(node, &mut others);
            if let Some(b) = others.iter().find_map(|(_, m)| match m {
                Message::Prepare { ballot, .. } => Some(*ballot),
                _ => None,
            }) {
                return b;
            }
        }
        panic!("no election");
    };
    let mut node =
        MemNode::new(cfg.clone(), ReplicaId(0), MemStorage::default(), BytesBuilder::default(), 5)
            .unwrap();
    let b1 = first_prepare(&mut node);
    let mut node =
        MemNode::new(cfg, ReplicaId(0), node.into_storage(), BytesBuilder::default(), 6).unwrap();
    let b2 = first_prepare(&mut node);
    assert!(b2 > b1, "restarted proposer reused {b1} (got {b2})");
}
