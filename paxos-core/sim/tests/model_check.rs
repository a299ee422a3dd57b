//! Exhaustive model checking of the real `paxos-core` with [stateright].
//!
//! The simulator (`paxos-sim`) samples huge random schedules; this file does the opposite:
//! it enumerates *every* schedule of a tiny cluster up to fixed bounds and checks the
//! protocol invariants of docs/protocol.md in every reachable state. The state is the real
//! core, not a re-implementation: each model state holds the [`MemNode`]s themselves
//! (their `Hash`/`Eq` cover the protocol state, so the same state reached along two
//! schedules is explored once), the messages in flight, and what each learner delivered.
//!
//! ## The model
//! - **Cluster**: nodes 0 and 1 are acceptor + proposer + learner, node 2 acceptor +
//!   learner (3 acceptors, 2 proposers, 3 learners). Heartbeat every tick, election
//!   timeout exactly 2 ticks (the jitter range [2, 3) holds one value, so the seeds do not
//!   matter and both proposers can time out together), one command per slot, window 2,
//!   no `Applied` reports (so no trim). Acceptors send `Accepted` to every learner
//!   (set explicitly; the core default is leader-only) or, in two tests, to the leader
//!   only (`accepted_to_learners = false`:
//!   followers then decide from the leader's commit point).
//! - **State**: the nodes; one FIFO channel per ordered pair of nodes; each node's decided
//!   log (slot i at index i, from `take_decided`); how many commands each proposer has
//!   proposed; how much of the reorder and loss budgets was used. A node's tick count is
//!   its own `now_ticks()`, part of its state.
//! - **Actions**: `Deliver` steps the receiver with the oldest message of any channel, in
//!   any interleaving across channels (a channel may also stall forever: unbounded delay);
//!   with a reorder budget, `Deliver` may take a younger message past older ones; with a
//!   loss budget, `Drop` loses any message; `Tick(n)` advances node `n`'s clock, at most
//!   `max_ticks[n]` times; `Propose(n, c)` gives leader `n` its next command, then
//!   `flush()` (a proposer may also never propose: proposing is a choice, not a must).
//! - **Driving** follows the core's contract after each action: `sync()`, then
//!   `take_messages` into the channels, `take_decided` into the log, `take_events`
//!   discarded, until the node is quiet. Messages a node sends **to itself** are handed
//!   straight back to `step` (the driver's option in docs/protocol.md, and what the
//!   simulator does): only messages between nodes are delayed, reordered or lost.
//!
//! Why FIFO channels plus budgets rather than a bag of messages: with every message free to
//! overtake every other, the main configuration below had not finished after 4.4 million
//! states (4.5 minutes on two threads); with FIFO channels it has 1.5 million in all.
//! Reordering within a channel is still explored, a bounded number of times per run, and
//! so is loss (under FIFO, loss is not subsumed by delay: a stalled message blocks its
//! channel).
//!
//! ## Why it is exhaustive within the bounds
//! Ticks, proposals, reorders and losses are budgeted, and every message handler emits
//! finitely many messages in chains that end (Prepare -> Promise -> Accept -> Accepted;
//! Repeat -> Learn; Heartbeat -> Nack), so the reachable state space is finite.
//! The searches set no state or depth cut-off: depth-first search visits every reachable
//! state, and `assert_properties` fails if it did not finish. (States are told apart by
//! 64-bit fingerprints, as stateright always does; a collision could merge two states,
//! with odds near 2^-64 per pair.)
//!
//! Properties, checked in every state:
//! - `agreement`: no two learners decided different values for one slot;
//! - `validity`: every decided value is a well-formed batch of proposed commands (or the
//!   empty no-op);
//! - `integrity`: no command is decided in two slots of one log;
//! - `order`: every log is delivered slot 0, 1, 2, ... without gaps;
//! - `promise monotonic`: no acceptor's promise ever decreased;
//! - `sometimes decided` (some learner decides a command) and `sometimes decided
//!   everywhere` (every learner decides one): the model is not vacuous.
//!
//! The checker bites: the same model over cores with a deliberate bug
//! (`Bugs::leader_ignores_accepted`, `Bugs::acceptor_forgets_promise`) yields an agreement
//! counterexample within the bounds the correct core passes; breadth-first search reports a
//! shortest one (printed with `--nocapture`).
//!
//! One model (`two_ballots_model`: node 0 may run for leader twice) reaches states where one
//! slot is accepted at two different ballots with two different values (a `sometimes`
//! property says so), which is what "adopt the value of the highest accepted ballot" is
//! about: a core that adopts the lowest (`Bugs::leader_adopts_lowest`) is caught there in
//! 23 steps (1.6 million states), and the correct core passes it exhaustively (2.9 million).
//!
//! ## What is not covered
//! Three members, at most one command per proposer (two or three slots, counting no-ops),
//! at most four ticks per node (two elections of one proposer at most), at most one
//! reordering or two losses per run. Long runs (repeated elections and step-downs, heartbeat and
//! retransmission cycles, learners catching up over many slots, log trim and snapshots),
//! larger clusters and windows, multi-command batches, promise chunking and
//! crashes/restarts are left to the simulator's random search (`paxos-sim`,
//! tests/swarm.rs), which drives the same core. So are liveness properties.

use bytes::Bytes;
use paxos_core::payload::{commands, is_well_formed};
use paxos_core::{
    Bugs, BytesBuilder, Config, MemNode, MemStorage, Member, Message, ReplicaId, Roles, Storage,
};
use stateright::{Checker, HasDiscoveries, Model, Property};
use std::collections::{BTreeSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

/// A value shared between states until changed (an action touches one node and a few
/// channels), hashed once when it is built: the state fingerprint then hashes a few words
/// per node instead of the whole node. (Equal digests are taken for equal values, like the
/// checker's own 64-bit state fingerprints.)
#[derive(Clone, Debug)]
struct Shared<T> {
    digest: u64,
    value: Arc<T>,
}

impl<T: Hash> Shared<T> {
    fn new(value: T) -> Self {
        let mut h = Mix64(0x9E37_79B9_7F4A_7C15);
        value.hash(&mut h);
        Shared { digest: h.finish(), value: Arc::new(value) }
    }
}

impl<T: Hash + Clone> Shared<T> {
    /// Changes a copy and re-hashes it.
    fn update<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut v = T::clone(&self.value);
        let r = f(&mut v);
        *self = Shared::new(v);
        r
    }
}

/// A fast 64-bit hasher for the digests: each word is mixed into the state with murmur3's
/// bijective finaliser (SipHash, the std default, took a fifth of the checker's time).
struct Mix64(u64);

impl Hasher for Mix64 {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w) ^ ((chunk.len() as u64) << 59));
        }
    }
    fn write_u64(&mut self, w: u64) {
        let mut h = self.0 ^ w;
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        self.0 = h ^ (h >> 33);
    }
    fn write_u8(&mut self, w: u8) {
        self.write_u64(u64::from(w));
    }
    fn write_u16(&mut self, w: u16) {
        self.write_u64(u64::from(w));
    }
    fn write_u32(&mut self, w: u32) {
        self.write_u64(u64::from(w));
    }
    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.digest);
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, o: &Self) -> bool {
        self.digest == o.digest && self.value == o.value
    }
}

impl<T: Eq> Eq for Shared<T> {}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    nodes: Vec<Shared<MemNode>>,
    /// `channels[from * n + to]`: the messages in flight from `from` to `to`, oldest first.
    channels: Vec<Shared<VecDeque<Message<Bytes>>>>,
    /// Per node: the value it decided for slot i, at index i.
    decided: Vec<Shared<Vec<Bytes>>>,
    /// Per node: how many of its commands it proposed (a prefix of `PaxosModel::commands[n]`).
    proposed: Vec<usize>,
    /// Messages delivered ahead of an older one on their channel, and messages lost.
    reorders: u32,
    drops: u32,
    /// Set when a node delivered a slot out of order (checked by `order`).
    order_broken: bool,
    /// Set when an acceptor's promise decreased (checked by `promise monotonic`).
    promise_regressed: bool,
}

#[derive(Clone, Debug)]
enum Action {
    /// Steps `to` with the message at `index` of the channel `from -> to` (0: the oldest);
    /// `msg` is that message, for counterexample traces.
    Deliver {
        from: usize,
        to: usize,
        index: usize,
        msg: Message<Bytes>,
    },
    /// Loses the message at `index` of the channel.
    Drop {
        from: usize,
        to: usize,
        index: usize,
        msg: Message<Bytes>,
    },
    Tick(usize),
    /// Leader `n` proposes its next command, then flushes.
    Propose(usize, Bytes),
}

/// The cluster and the bounds of one model-checking run.
struct PaxosModel {
    cfg: Config,
    bugs: Bugs,
    /// Per node: the commands it proposes, in order, while it leads.
    commands: Vec<Vec<Bytes>>,
    /// Per node: the most ticks it may take.
    max_ticks: Vec<u64>,
    /// Per run: the most messages delivered out of channel order, and the most lost.
    max_reorders: u32,
    max_drops: u32,
    /// Also require that some state has one slot accepted at two different ballots with
    /// different values (the model reaches what "adopt the highest ballot" is about).
    expect_two_ballots: bool,
}

impl PaxosModel {
    /// Nodes 0 and 1 are replicas (acceptor + proposer + learner), node 2 is acceptor +
    /// learner: 3 acceptors, 2 proposers, 3 learners. Tight timing: heartbeat every tick,
    /// election timeout 2 ticks (no jitter); one command per slot, window 2.
    fn three_nodes(q1: usize, q2: usize, retransmit_ticks: u32) -> Config {
        let members = vec![
            Member { id: ReplicaId(0), roles: Roles::REPLICA },
            Member { id: ReplicaId(1), roles: Roles::REPLICA },
            Member { id: ReplicaId(2), roles: Roles { proposer: false, ..Roles::REPLICA } },
        ];
        Config {
            phase1_quorum: q1,
            phase2_quorum: q2,
            window: 2,
            batch_max_commands: 1,
            batch_delay_ticks: 1,
            heartbeat_ticks: 1,
            election_timeout_min_ticks: 2,
            election_timeout_max_ticks: 3,
            retransmit_ticks,
            // Fan-out mode here; the leader-only tests below set it to false.
            accepted_to_learners: true,
            max_pending_batches: 4,
            // No Applied reports (hence no trim) within the tick bounds.
            applied_report_ticks: 100,
            // Off (their heartbeat acks and probes multiply the states) except in the model
            // that checks them (`with_stable_leader`).
            check_quorum: false,
            leader_stickiness: false,
            ..Config::with_members(members)
        }
    }

    /// `per_node[n]` commands for node `n`, named `c<n>.<k>`; no reordering or loss.
    fn new(cfg: Config, per_node: &[usize], max_ticks: &[u64]) -> PaxosModel {
        let commands = per_node
            .iter()
            .enumerate()
            .map(|(n, k)| (0..*k).map(|k| Bytes::from(format!("c{n}.{k}"))).collect())
            .collect();
        PaxosModel {
            cfg,
            bugs: Bugs::default(),
            commands,
            max_ticks: max_ticks.to_vec(),
            max_reorders: 0,
            max_drops: 0,
            expect_two_ballots: false,
        }
    }

    fn with_faults(self, max_reorders: u32, max_drops: u32) -> PaxosModel {
        PaxosModel { max_reorders, max_drops, ..self }
    }

    fn with_bugs(self, bugs: Bugs) -> PaxosModel {
        PaxosModel { bugs, ..self }
    }

    fn n(&self) -> usize {
        self.cfg.members.len()
    }

    fn is_proposed(&self, s: &State, command: &[u8]) -> bool {
        self.commands
            .iter()
            .zip(&s.proposed)
            .any(|(cs, k)| cs[..*k].iter().any(|c| c[..] == *command))
    }

    /// Runs `f` on node `i`, then follows the core's driving contract until the node is
    /// quiet: sync, then hand out messages (its own straight back to `step`), deliveries
    /// and events. Returns `None` if `f` does.
    fn drive(
        &self,
        s: &mut State,
        i: usize,
        f: impl FnOnce(&mut MemNode) -> Option<()>,
    ) -> Option<()> {
        let (mut out, mut sent, mut decided, mut events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let before = s.nodes[i].storage().promised();
        s.nodes[i].update(|node| {
            f(node)?;
            loop {
                node.sync().expect("MemStorage::sync cannot fail");
                node.take_messages(&mut out);
                node.take_decided(&mut decided);
                node.take_events(&mut events);
                events.clear();
                if out.is_empty() {
                    return Some(());
                }
                let mut own = Vec::new();
                for o in out.drain(..) {
                    if usize::from(o.to.0) == i {
                        own.push(o.msg);
                    } else {
                        sent.push(o);
                    }
                }
                for m in own {
                    node.step(ReplicaId(i as u16), m);
                }
            }
        })?;
        if s.nodes[i].storage().promised() < before {
            s.promise_regressed = true;
        }
        if !decided.is_empty() {
            s.decided[i].update(|log| {
                for d in decided {
                    if d.slot.0 != log.len() as u64 {
                        s.order_broken = true;
                    }
                    log.push(d.value);
                }
            });
        }
        let n = self.n();
        for to in 0..n {
            if sent.iter().any(|o| usize::from(o.to.0) == to) {
                s.channels[i * n + to].update(|q| {
                    q.extend(
                        sent.iter().filter(|o| usize::from(o.to.0) == to).map(|o| o.msg.clone()),
                    )
                });
            }
        }
        Some(())
    }
}

impl Model for PaxosModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.n();
        let nodes = (0..n)
            .map(|i| {
                let id = ReplicaId(i as u16);
                let seed = 0x5EED + i as u64;
                let mut node = MemNode::new(
                    self.cfg.clone(),
                    id,
                    MemStorage::default(),
                    BytesBuilder::default(),
                    seed,
                )
                .expect("valid config");
                node.inject_bugs(self.bugs);
                Shared::new(node)
            })
            .collect();
        vec![State {
            nodes,
            channels: vec![Shared::new(VecDeque::new()); n * n],
            decided: vec![Shared::new(Vec::new()); n],
            proposed: vec![0; n],
            reorders: 0,
            drops: 0,
            order_broken: false,
            promise_regressed: false,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let n = self.n();
        for (c, q) in s.channels.iter().enumerate() {
            let (from, to) = (c / n, c % n);
            for (index, msg) in q.iter().enumerate() {
                if index == 0 || s.reorders < self.max_reorders {
                    actions.push(Action::Deliver { from, to, index, msg: msg.clone() });
                }
                if s.drops < self.max_drops {
                    actions.push(Action::Drop { from, to, index, msg: msg.clone() });
                }
            }
        }
        for (i, node) in s.nodes.iter().enumerate() {
            if node.now_ticks() < self.max_ticks[i] {
                actions.push(Action::Tick(i));
            }
            if node.is_leader() {
                if let Some(c) = self.commands[i].get(s.proposed[i]) {
                    actions.push(Action::Propose(i, c.clone()));
                }
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        let n = self.n();
        match action {
            Action::Drop { from, to, index, msg } => {
                let lost = s.channels[from * n + to].update(|q| q.remove(index))?;
                debug_assert_eq!(lost, msg);
                s.drops += 1;
            }
            Action::Deliver { from, to, index, msg } => {
                let got = s.channels[from * n + to].update(|q| q.remove(index))?;
                debug_assert_eq!(got, msg);
                if index > 0 {
                    s.reorders += 1;
                }
                self.drive(&mut s, to, |node| {
                    node.step(ReplicaId(from as u16), got);
                    Some(())
                })?;
            }
            Action::Tick(i) => {
                self.drive(&mut s, i, |node| {
                    node.tick();
                    Some(())
                })?;
            }
            Action::Propose(i, c) => {
                self.drive(&mut s, i, |node| {
                    node.propose(&c).ok()?;
                    node.flush();
                    Some(())
                })?;
                s.proposed[i] += 1;
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p = vec![
            Property::always("agreement", agreement),
            Property::always("validity", validity),
            Property::always("integrity", integrity),
            Property::always("order", |_, s: &State| !s.order_broken),
            Property::always("promise monotonic", |_, s: &State| !s.promise_regressed),
            Property::sometimes("decided", decided),
            Property::sometimes("decided everywhere", decided_everywhere),
        ];
        if self.expect_two_ballots {
            p.push(Property::sometimes("two accepted ballots for one slot", two_ballots));
        }
        p
    }
}

/// No two learners decided different values for one slot.
fn agreement(_: &PaxosModel, s: &State) -> bool {
    let longest = s.decided.iter().map(|log| log.len()).max().unwrap_or(0);
    (0..longest).all(|slot| {
        let mut vs = s.decided.iter().filter_map(|log| log.get(slot));
        let first = vs.next();
        vs.all(|v| Some(v) == first)
    })
}

/// Every decided value is a well-formed batch of proposed commands (empty: a no-op).
fn validity(m: &PaxosModel, s: &State) -> bool {
    s.decided
        .iter()
        .flat_map(|log| log.iter())
        .all(|v| is_well_formed(v) && commands(v).all(|c| m.is_proposed(s, c)))
}

/// No command is decided in two slots of one log.
fn integrity(_: &PaxosModel, s: &State) -> bool {
    s.decided.iter().all(|log| {
        let mut seen = BTreeSet::new();
        log.iter().flat_map(|v| commands(v)).all(|c| seen.insert(c))
    })
}

/// Some learner decided a command.
/// Some slot is accepted at two different ballots, with different values, by two acceptors.
fn two_ballots(_: &PaxosModel, s: &State) -> bool {
    (0..4u64).any(|slot| {
        let held: Vec<(paxos_core::Ballot, Bytes)> = s
            .nodes
            .iter()
            .filter_map(|n| n.storage().accepted(paxos_core::Slot(slot)).ok().flatten())
            .collect();
        held.iter().any(|(b, v)| held.iter().any(|(c, w)| b != c && v != w))
    })
}

fn decided(_: &PaxosModel, s: &State) -> bool {
    s.decided.iter().flat_map(|log| log.iter()).any(|v| commands(v).next().is_some())
}

/// Some command was decided by every learner.
fn decided_everywhere(m: &PaxosModel, s: &State) -> bool {
    let learners: Vec<usize> = (0..m.n()).filter(|&i| m.cfg.members[i].roles.learner).collect();
    m.commands.iter().flatten().any(|c| {
        learners.iter().all(|&i| s.decided[i].iter().any(|v| commands(v).any(|d| d == &c[..])))
    })
}

/// Explores the whole bounded state space (depth-first: memory stays small) and asserts
/// every property; `assert_properties` also fails if the search did not complete.
fn check_exhaustively(name: &str, model: PaxosModel) {
    let start = Instant::now();
    // Tests run in parallel too; extra threads help the longest one once it runs alone.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let checker = model.checker().threads(threads).spawn_dfs().join();
    println!(
        "{name}: {} unique states ({} generated), max depth {}, {:.1?}",
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
        start.elapsed()
    );
    checker.assert_properties();
}

/// Explores breadth-first until an agreement violation shows up (then a shortest one) and
/// prints it; panics if there is none within the bounds.
fn find_disagreement(name: &str, model: PaxosModel) {
    let start = Instant::now();
    let checker = model
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from(["agreement"])))
        .spawn_bfs()
        .join();
    let found = checker.discovery("agreement");
    println!(
        "{name}: {} unique states, {:.1?}, counterexample: {}",
        checker.unique_state_count(),
        start.elapsed(),
        found.as_ref().map_or("none".to_string(), |p| p.to_string())
    );
    let path = found.unwrap_or_else(|| panic!("{name}: the checker did not catch the bug"));
    let logs: Vec<Vec<Bytes>> = path.last_state().decided.iter().map(|l| (**l).clone()).collect();
    println!("{name}: {} steps; decided logs at the end: {logs:?}", path.into_actions().len());
}

/// Majority quorums, the two proposers each with one command and two ticks (each can time
/// out and run for leader once), FIFO channels without loss.
fn majority_model() -> PaxosModel {
    PaxosModel::new(PaxosModel::three_nodes(2, 2, 100), &[1, 1, 0], &[2, 2, 0])
}

/// Dueling proposers with a command each: every interleaving of two elections, the
/// adoption of whatever the first leader got accepted, and the Nacks and step-downs.
#[test]
fn majority_two_proposers_two_commands() {
    check_exhaustively("majority, 2 proposers x 1 command", majority_model());
}

/// The same with check-quorum and leader stickiness on (issue 11): acceptors answer
/// heartbeats, ignore a Prepare while they hear a live leader, a leader that hears no
/// quorum steps down, and a learner that hears no leader asks the acceptors. Ignoring a
/// Prepare is always safe; this checks that the new paths (HeartbeatAck, the learner's
/// probe and the commit point its answers carry) keep every invariant.
#[test]
fn majority_with_check_quorum_and_leader_stickiness() {
    let mut m = majority_model();
    m.cfg.check_quorum = true;
    m.cfg.leader_stickiness = true;
    check_exhaustively("majority, check-quorum and stickiness", m);
}

/// Flexible quorums q1 = 3, q2 = 1: a single accept chooses, so a new leader must hear from
/// every acceptor. Both proposers with a command, one reordering.
#[test]
fn flexible_quorums_q1_3_q2_1() {
    let cfg = PaxosModel::three_nodes(3, 1, 100);
    check_exhaustively(
        "q1=3 q2=1, 2 proposers x 1 command, 1 reorder",
        PaxosModel::new(cfg, &[1, 1, 0], &[2, 2, 0]).with_faults(1, 0),
    );
}

/// Loss and repair: up to two messages lost, retransmission every tick. The leader gets one
/// tick after its election (retransmits unacknowledged accepts, heartbeats) and node 2 one
/// tick (asks acceptors to Repeat what it missed below the commit point, they answer Learn).
#[test]
fn message_loss_and_retransmission() {
    let cfg = PaxosModel::three_nodes(2, 2, 1);
    check_exhaustively(
        "majority, 2 losses, retransmit",
        PaxosModel::new(cfg, &[1, 0, 0], &[3, 0, 1]).with_faults(0, 2),
    );
}

/// `accepted_to_learners = false`: acceptors ack the leader only, and followers decide
/// from the commit point the leader announces in its next Accept or heartbeat (the
/// learner's `learner_on_commit`). Majority quorums, both proposers with a command.
#[test]
fn leader_only_acks_majority() {
    let cfg = Config { accepted_to_learners: false, ..PaxosModel::three_nodes(2, 2, 100) };
    check_exhaustively(
        "leader-only acks, majority, 2 proposers x 1 command",
        PaxosModel::new(cfg, &[1, 1, 0], &[2, 2, 0]),
    );
}

/// Leader-only acks with q1 = 3, q2 = 1, one reordering, and a third tick for node 0 (a
/// heartbeat after its slot is chosen).
#[test]
fn leader_only_acks_flexible() {
    let cfg = Config { accepted_to_learners: false, ..PaxosModel::three_nodes(3, 1, 100) };
    check_exhaustively(
        "leader-only acks, q1=3 q2=1, 2 proposers x 1 command, 1 reorder",
        PaxosModel::new(cfg, &[1, 1, 0], &[3, 2, 0]).with_faults(1, 0),
    );
}

/// The checker bites: a new leader that ignores the values reported in promises (breaking
/// Paxos's "adopt the highest-ballot accepted value") is caught within the same bounds the
/// correct core passes.
#[test]
fn leader_ignoring_accepted_values_is_caught() {
    let bugs = Bugs { leader_ignores_accepted: true, ..Bugs::default() };
    find_disagreement("leader_ignores_accepted", majority_model().with_bugs(bugs));
}

/// An acceptor that neither records nor checks promises lets a deposed leader's accept land
/// after a newer leader was promised: caught within the same bounds.
///
/// (With q1 = 3, q2 = 1 this bug is *not* caught within these bounds, nor with three ticks
/// per proposer or one reordering: a new leader's phase-1 quorum then includes the old
/// leader's own acceptor, whose Prepare deposes the old leader at once, and that acceptor
/// already holds every value the old leader proposed, since messages to self are stepped
/// at once; so the new leader adopts them all and late accepts carry the same values.)
#[test]
fn acceptor_forgetting_promises_is_caught() {
    let bugs = Bugs { acceptor_forgets_promise: true, ..Bugs::default() };
    find_disagreement("acceptor_forgets_promise", majority_model().with_bugs(bugs));
}

/// The same leader bug with flexible quorums (q1 = 3, q2 = 1).
#[test]
fn leader_ignoring_accepted_values_is_caught_flexible() {
    let bugs = Bugs { leader_ignores_accepted: true, ..Bugs::default() };
    let cfg = PaxosModel::three_nodes(3, 1, 100);
    find_disagreement(
        "leader_ignores_accepted q1=3 q2=1",
        PaxosModel::new(cfg, &[1, 1, 0], &[2, 2, 0]).with_bugs(bugs),
    );
}

/// Majority quorums where node 0 may run for leader twice (four ticks): it proposes a
/// command that only its own acceptor accepts, node 1 wins the next election and gets its
/// own command chosen in the same slot, and node 0's second phase 1 then sees that slot
/// accepted at two ballots with two values. To keep the space small, node 2 is an acceptor
/// only and acceptors ack the leader only. Exhaustive, and the model must reach such a
/// state.
fn two_ballots_model() -> PaxosModel {
    let mut cfg = PaxosModel::three_nodes(2, 2, 100);
    cfg.members[2].roles = Roles::ACCEPTOR;
    cfg.accepted_to_learners = false;
    cfg.window = 1;
    PaxosModel { expect_two_ballots: true, ..PaxosModel::new(cfg, &[1, 1, 0], &[4, 2, 0]) }
}

#[test]
fn two_accepted_ballots_for_one_slot() {
    check_exhaustively("majority, node 0 elected twice", two_ballots_model());
}

/// A new leader that adopts the value of the *lowest* accepted ballot per slot is caught
/// there (it re-proposes node 0's first command over node 1's chosen one).
#[test]
fn leader_adopting_the_lowest_ballot_is_caught() {
    let bugs = Bugs { leader_adopts_lowest: true, ..Bugs::default() };
    find_disagreement("leader_adopts_lowest", two_ballots_model().with_bugs(bugs));
}
