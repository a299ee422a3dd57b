//! Directed regressions for core bugs, driving a `paxos_core::Node` by hand with crafted
//! messages (for bugs too narrow for random seeds to hit often), plus the swarm seeds that
//! found the other core bugs (see the comments at each fix in paxos-core).

mod common;

use bytes::Bytes;
use paxos_core::{
    Ballot, BytesBuilder, Config, MemNode, MemStorage, Message, ReplicaId, Slot, SlotValue, Storage,
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
    let page = |low: u64, chunk: u16, entries| Message::Promise {
        ballot,
        from: Slot(0),
        low: Slot(low),
        end: Slot(3),
        high: Slot(3),
        chunk,
        chunks: 2,
        entries,
    };
    let b_chunk0 = page(0, 0, vec![sv(0, b"x")]);
    let a_chunk1 = page(1, 1, vec![sv(2, b"z")]);
    let a_chunk0 = page(1, 0, vec![sv(1, b"y")]);
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

/// Paxos Made Simple §2.2 again, for a long log tail: a Promise must never be cut short. The
/// acceptor used to cap its answer at u16::MAX chunks and drop the rest, and the proposer
/// took the cut answer as complete: with every acceptor holding s0..s69999 accepted at b1.1,
/// `max_message_bytes` 128 and 40-byte values, a fresh node elected from slot 0 proposed a
/// new command at s65535, over a chosen slot (and with two entries per chunk the same tail
/// tripped a recovery limit, so that no leader was ever elected). Phase 1 now runs in pages
/// of bounded size; the new leader re-proposes the whole tail, page by page, before any new
/// command.
#[test]
fn a_long_tail_is_recovered_in_pages_never_cut_short() {
    const TAIL: u64 = 70_000;
    let mut cfg = Config::replicas(3);
    cfg.max_message_bytes = 128;
    cfg.batch_max_bytes = 40;
    cfg.batch_max_commands = 1;
    let old = Ballot::new(1, ReplicaId(1));
    let value = |s: u64| {
        // A batch of one 36-byte command (40 bytes with its length), unique per slot.
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&36u32.to_le_bytes());
        v.extend_from_slice(&s.to_le_bytes());
        v.resize(40, 0xAB);
        Bytes::from(v)
    };
    let mut nodes: Vec<MemNode> = (0..3)
        .map(|i| {
            let mut st = MemStorage::default();
            st.set_promised(old);
            for s in 0..TAIL {
                st.set_accepted(Slot(s), old, value(s));
            }
            MemNode::new(cfg.clone(), ReplicaId(i), st, BytesBuilder::default(), 7 + u64::from(i))
                .unwrap()
        })
        .collect();
    // Node 0 is fresh (its learner starts at 0) and the only one to time out: the others
    // keep hearing from it once it leads.
    let mut queue: std::collections::VecDeque<(ReplicaId, ReplicaId, Message<Bytes>)> =
        Default::default();
    let mut out = Vec::new();
    let mut proposed = false;
    let mut accepts_at = std::collections::HashMap::<u64, Bytes>::new();
    let mut new_at: Option<u64> = None;
    let mut drain = |i: usize, node: &mut MemNode, queue: &mut std::collections::VecDeque<_>| {
        node.sync().unwrap();
        node.take_messages(&mut out);
        for o in out.drain(..) {
            queue.push_back((ReplicaId(i as u16), o.to, o.msg));
        }
    };
    for round in 0..5_000_000u64 {
        if queue.is_empty() {
            for (i, n) in nodes.iter_mut().enumerate() {
                if i == 0 || round % 4 == 0 {
                    n.tick();
                    drain(i, n, &mut queue);
                }
            }
        }
        if let Some((from, to, msg)) = queue.pop_front() {
            if let Message::Accept { slot, value, .. } = &msg {
                if from == ReplicaId(0) && to == ReplicaId(1) {
                    let prev = accepts_at.insert(slot.0, value.clone());
                    assert!(prev.is_none_or(|p| p == *value), "s{} proposed twice", slot.0);
                    new_at = new_at.or((value.len() == 4 + 11).then_some(slot.0));
                }
            }
            let t = to.0 as usize;
            nodes[t].step(from, msg);
            drain(t, &mut nodes[t], &mut queue);
        }
        if nodes[0].is_leader() && !proposed && round % 64 == 0 {
            // Queued behind the recovery: it may only go after the whole tail.
            if nodes[0].propose(b"new command").is_ok() {
                proposed = true;
                nodes[0].flush();
                drain(0, &mut nodes[0], &mut queue);
            }
        }
        if new_at.is_some() {
            break;
        }
    }
    assert!(proposed, "node 0 never led: {:?}", nodes[0].stats());
    let at = new_at.expect("the new command was never proposed");
    assert_eq!(at, TAIL, "the new command went to s{at}, not after the tail");
    // Every slot of the tail keeps its value: node 0 either re-proposed it as accepted, or
    // learned it chosen before it led (its learner asks the acceptors while it hears no
    // leader, and two of them answering b1.1 for a slot prove it chosen).
    let mut decided = Vec::new();
    nodes[0].take_decided(&mut decided);
    let learned: std::collections::HashMap<u64, Bytes> =
        decided.into_iter().map(|d| (d.slot.0, d.value)).collect();
    for s in 0..TAIL {
        match (accepts_at.get(&s), learned.get(&s)) {
            (None, None) => panic!("s{s} was neither re-proposed nor learned"),
            (a, l) => {
                assert!(a.is_none_or(|v| *v == value(s)), "s{s} re-proposed with another value");
                assert!(l.is_none_or(|v| *v == value(s)), "s{s} decided with another value");
            }
        }
    }
    let pages = nodes[0].stats().promise_pages;
    assert!(pages > 1000, "only {pages} phase-1 pages for a {TAIL}-slot tail");
}
