//! [`Node`]: one member of one Paxos group, holding any subset of the three roles, driven by
//! its caller. See the crate docs for the driving loop.

use crate::acceptor::Acceptor;
use crate::config::{Config, ConfigError, Roles};
use crate::ids::{Ballot, ReplicaId, Slot};
use crate::learner::Learner;
use crate::message::Message;
use crate::output::{Decided, Event, Outgoing, ProposeError, Stats};
use crate::payload::{BytesBuilder, Payload, ValueBuilder};
use crate::proposer::Proposer;
use crate::storage::{MemStorage, Storage, StorageError};

/// Deliberate protocol bugs, for proving that the simulator's checkers catch them. Never
/// set outside tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// The acceptor neither records nor checks promises.
    pub acceptor_forgets_promise: bool,
    /// A new leader ignores the values reported in promises and fills every slot anew.
    pub leader_ignores_accepted: bool,
}

/// Where role handlers put what they produce.
pub(crate) struct Sink<'a, P> {
    pub out: &'a mut Vec<Outgoing<P>>,
    pub stats: &'a mut Stats,
    pub unsynced: &'a mut bool,
    pub learners: &'a [ReplicaId],
}

/// A `Sink` over a node's fields (a macro so that the borrows stay disjoint).
macro_rules! sink {
    ($n:expr) => {
        Sink {
            out: &mut $n.out,
            stats: &mut $n.stats,
            unsynced: &mut $n.unsynced,
            learners: if $n.cfg.accepted_to_learners { &$n.topo.learners } else { &[] },
        }
    };
}

impl<P: Clone> Sink<'_, P> {
    /// Queues `msg` for `to` (which may be this node: the driver hands those back).
    #[inline]
    pub fn send(&mut self, to: ReplicaId, msg: Message<P>) {
        self.stats.messages_out += 1;
        self.out.push(Outgoing { to, msg });
    }

    /// Sends `Accepted { ballot, slot }` to every learner and to `leader` (once, if it is
    /// also a learner), in that order.
    #[inline]
    pub fn send_accepted(&mut self, leader: ReplicaId, ballot: Ballot, slot: Slot) {
        let extra = (!self.learners.contains(&leader)).then_some(leader);
        self.send_each(self.learners.iter().copied().chain(extra), |_| Message::Accepted {
            ballot,
            slot,
        });
    }

    /// Queues `msg(to)` for each `to`. One `extend` over an iterator of known length (a
    /// slice, chained with an `Option`): the messages are written straight into the queue,
    /// where a `push` per message builds each on the stack first and copies it over.
    #[inline]
    pub fn send_each(
        &mut self,
        to: impl Iterator<Item = ReplicaId>,
        mut msg: impl FnMut(ReplicaId) -> Message<P>,
    ) {
        let before = self.out.len();
        self.out.extend(to.map(|to| Outgoing { to, msg: msg(to) }));
        self.stats.messages_out += (self.out.len() - before) as u64;
    }
}

/// Member lists derived from the configuration once.
#[derive(Clone, Debug)]
pub(crate) struct Topology {
    pub acceptors: Vec<ReplicaId>,
    pub learners: Vec<ReplicaId>,
    pub proposers: Vec<ReplicaId>,
    /// Acceptors and learners, each once: where the leader sends an Accept.
    pub accept_targets: Vec<ReplicaId>,
    /// Members, in config order (the bit of each in quorum masks).
    pub members: Vec<ReplicaId>,
    /// Member index by replica id (`NOT_MEMBER` for non-members): one load per message.
    by_id: Vec<u8>,
    roles: Vec<Roles>,
}

const NOT_MEMBER: u8 = u8::MAX;

impl Topology {
    fn new(cfg: &Config) -> Topology {
        let acceptors: Vec<_> = cfg.acceptors().collect();
        let learners: Vec<_> = cfg.learners().collect();
        let mut accept_targets = acceptors.clone();
        for l in &learners {
            if !accept_targets.contains(l) {
                accept_targets.push(*l);
            }
        }
        let members: Vec<_> = cfg.members.iter().map(|m| m.id).collect();
        let max_id = members.iter().map(|m| m.0 as usize).max().unwrap_or(0);
        let mut by_id = vec![NOT_MEMBER; max_id + 1];
        for (i, m) in members.iter().enumerate() {
            by_id[m.0 as usize] = i as u8;
        }
        Topology {
            acceptors,
            learners,
            proposers: cfg.proposers().collect(),
            accept_targets,
            members,
            by_id,
            roles: cfg.members.iter().map(|m| m.roles).collect(),
        }
    }

    #[inline]
    pub fn index(&self, id: ReplicaId) -> Option<usize> {
        match self.by_id.get(id.0 as usize) {
            Some(&i) if i != NOT_MEMBER => Some(i as usize),
            _ => None,
        }
    }

    /// Member index and roles of `id`, if it is a member.
    #[inline]
    pub fn member(&self, id: ReplicaId) -> Option<(usize, Roles)> {
        let i = self.index(id)?;
        self.roles.get(i).map(|r| (i, *r))
    }
}

/// A small deterministic PRNG (xorshift64*), seeded by the driver. Used only to spread
/// election timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from((hi - lo).max(1))) as u32
    }
}

/// One member of a Paxos group. `P` is the payload handle, `S` the acceptor's storage, `B`
/// the leader's batch builder.
#[derive(Clone)]
pub struct Node<P, S = MemStorage<P>, B = BytesBuilder> {
    pub(crate) cfg: Config,
    pub(crate) id: ReplicaId,
    pub(crate) roles: Roles,
    pub(crate) topo: Topology,
    pub(crate) now: u64,
    pub(crate) rng: Rng,
    pub(crate) storage: S,
    pub(crate) builder: B,
    pub(crate) unsynced: bool,
    pub(crate) acceptor: Acceptor,
    pub(crate) prop: Proposer<P>,
    pub(crate) learner: Learner<P>,
    /// Highest ballot known to lead, and when we last heard from it.
    pub(crate) leader: Ballot,
    pub(crate) leader_contact: u64,
    pub(crate) election_timeout: u64,
    pub(crate) out: Vec<Outgoing<P>>,
    pub(crate) decided: Vec<Decided<P>>,
    pub(crate) events: Vec<Event>,
    pub(crate) stats: Stats,
    pub(crate) bugs: Bugs,
}

/// Equality and hashing cover the protocol state only (not the configuration, counters or
/// undrained outputs): two nodes that would behave the same are equal. Model checkers use
/// this to recognise states they have already explored.
impl<P: core::hash::Hash, S: core::hash::Hash, B> core::hash::Hash for Node<P, S, B> {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.id.hash(h);
        self.now.hash(h);
        self.rng.hash(h);
        self.storage.hash(h);
        self.unsynced.hash(h);
        self.acceptor.hash(h);
        self.prop.hash(h);
        self.learner.hash(h);
        self.leader.hash(h);
        self.leader_contact.hash(h);
        self.election_timeout.hash(h);
    }
}

impl<P: PartialEq, S: PartialEq, B> PartialEq for Node<P, S, B> {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
            && self.now == o.now
            && self.rng == o.rng
            && self.storage == o.storage
            && self.unsynced == o.unsynced
            && self.acceptor == o.acceptor
            && self.prop == o.prop
            && self.learner == o.learner
            && self.leader == o.leader
            && self.leader_contact == o.leader_contact
            && self.election_timeout == o.election_timeout
    }
}

impl<P: Eq, S: Eq, B> Eq for Node<P, S, B> {}

impl<P: core::fmt::Debug, S, B> core::fmt::Debug for Node<P, S, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("now", &self.now)
            .field("phase", &self.prop.phase)
            .field("ballot", &self.prop.ballot)
            .field("commit", &self.prop.commit)
            .field("next_to_deliver", &self.learner.next)
            .finish_non_exhaustive()
    }
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    /// A node for member `id` of `cfg`. `seed` drives the election-timeout jitter; give every
    /// node its own. `storage` is the acceptor's stable state (empty, or recovered after a
    /// restart: the node resumes from it).
    pub fn new(
        cfg: Config,
        id: ReplicaId,
        storage: S,
        builder: B,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let roles = cfg.roles_of(id).ok_or(ConfigError::UnknownMember(id))?;
        let topo = Topology::new(&cfg);
        let mut rng = Rng::new(seed ^ (u64::from(id.0) << 32));
        let election_timeout =
            u64::from(rng.range(cfg.election_timeout_min_ticks, cfg.election_timeout_max_ticks));
        let window = cfg.window as usize;
        let n = cfg.members.len();
        let mut node = Node {
            prop: Proposer::new(window, cfg.max_pending_batches as usize, n),
            learner: Learner::new(window),
            cfg,
            id,
            roles,
            topo,
            now: 0,
            rng,
            storage,
            builder,
            unsynced: false,
            acceptor: Acceptor::default(),
            leader: Ballot::NONE,
            leader_contact: 0,
            election_timeout,
            out: Vec::with_capacity(4 * window.max(16)),
            decided: Vec::with_capacity(window.max(16)),
            events: Vec::with_capacity(8),
            stats: Stats::default(),
            bugs: Bugs::default(),
        };
        // A restarted acceptor knows the highest ballot it promised: never reuse a lower one.
        node.prop.max_seen = node.storage.promised();
        Ok(node)
    }

    pub fn id(&self) -> ReplicaId {
        self.id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn roles(&self) -> Roles {
        self.roles
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn storage(&self) -> &S {
        &self.storage
    }
    /// Gives the stable state back (a simulated crash keeps only this).
    pub fn into_storage(self) -> S {
        self.storage
    }
    /// Ticks since the node was created.
    pub fn now_ticks(&self) -> u64 {
        self.now
    }
    pub fn is_leader(&self) -> bool {
        self.prop.is_leading()
    }
    /// The ballot this node leads with, if it leads.
    pub fn leader_ballot(&self) -> Option<Ballot> {
        self.prop.is_leading().then_some(self.prop.ballot)
    }
    /// The leader this node believes in (itself if it leads).
    pub fn leader_hint(&self) -> Option<ReplicaId> {
        if self.prop.is_leading() {
            Some(self.id)
        } else if self.leader.is_none() {
            None
        } else {
            Some(self.leader.leader)
        }
    }
    /// The learner's next slot to deliver: everything below has been delivered.
    pub fn next_to_deliver(&self) -> Slot {
        self.learner.next
    }
    /// Leader only: every slot below is known chosen.
    pub fn commit_point(&self) -> Slot {
        self.prop.commit
    }
    /// Slots proposed and not yet known chosen (leader only).
    pub fn in_flight(&self) -> usize {
        self.prop.inflight.len()
    }
    #[doc(hidden)]
    pub fn inject_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
    }

    /// True when stable state was written since the last `sync`: sync before sending any
    /// message drained after those writes (the durability contract, see `storage`).
    #[inline]
    pub fn needs_sync(&self) -> bool {
        self.unsynced
    }
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.unsynced {
            self.storage.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Moves the queued messages into `out` (appended; both buffers keep their capacity).
    #[inline]
    pub fn take_messages(&mut self, out: &mut Vec<Outgoing<P>>) {
        if !self.out.is_empty() {
            out.append(&mut self.out);
        }
    }
    /// Moves the delivered slots (in slot order) into `out`.
    #[inline]
    pub fn take_decided(&mut self, out: &mut Vec<Decided<P>>) {
        if !self.decided.is_empty() {
            out.append(&mut self.decided);
        }
    }
    #[inline]
    pub fn take_events(&mut self, out: &mut Vec<Event>) {
        if !self.events.is_empty() {
            out.append(&mut self.events);
        }
    }
    #[inline]
    pub fn has_output(&self) -> bool {
        !(self.out.is_empty() && self.decided.is_empty() && self.events.is_empty())
    }

    pub(crate) fn sink(&mut self) -> Sink<'_, P> {
        sink!(self)
    }

    /// Handles one message from member `from`. Messages from non-members, or that a member
    /// could not legitimately send (a ballot it does not own, a role it does not have), are
    /// ignored and counted.
    pub fn step(&mut self, from: ReplicaId, msg: Message<P>) {
        self.stats.messages_in += 1;
        let Some((from_index, from_roles)) = self.topo.member(from) else {
            self.stats.messages_ignored += 1;
            return;
        };
        // Each arm checks that the sender could have sent the message, then hands it to the
        // roles this node holds. The two phase-2 kinds (nearly every message in steady state)
        // are handled here; the rest out of line, which keeps this function small.
        match msg {
            Message::Accept { ballot, slot, commit, value } => {
                if !(from_roles.proposer && ballot.leader == from && !ballot.is_none()) {
                    self.stats.messages_ignored += 1;
                    return;
                }
                self.observe_ballot(ballot, true);
                if self.roles.learner {
                    self.learner_on_value(ballot, slot, &value, None);
                    self.learner_on_commit(ballot, commit);
                }
                if self.roles.acceptor {
                    let forget = self.bugs.acceptor_forgets_promise;
                    let acc = &mut self.acceptor;
                    let mut sink = sink!(self);
                    acc.on_accept(
                        &mut self.storage,
                        &mut sink,
                        from,
                        ballot,
                        slot,
                        commit,
                        value,
                        forget,
                    );
                }
            }
            Message::Accepted { ballot, slot } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return;
                }
                if self.roles.proposer {
                    self.proposer_on_accepted(from_index, ballot, slot);
                }
                if self.roles.learner {
                    self.learner_on_ack(from_index, ballot, slot);
                }
            }
            msg => {
                if !self.step_other(from, from_index, from_roles, msg) {
                    return;
                }
            }
        }
        self.learner_deliver();
    }

    /// `step` for every kind but Accept and Accepted; false if the message was ignored.
    #[inline(never)]
    fn step_other(
        &mut self,
        from: ReplicaId,
        from_index: usize,
        from_roles: Roles,
        msg: Message<P>,
    ) -> bool {
        let forget = self.bugs.acceptor_forgets_promise;
        match msg {
            Message::Accept { .. } | Message::Accepted { .. } => {}
            Message::Prepare { ballot, from: slot } => {
                if !(from_roles.proposer && ballot.leader == from && !ballot.is_none()) {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                self.observe_ballot(ballot, false);
                if self.roles.acceptor {
                    let (acc, cfg) = (&mut self.acceptor, &self.cfg);
                    let mut sink = sink!(self);
                    acc.on_prepare(cfg, &mut self.storage, &mut sink, from, ballot, slot, forget);
                }
            }
            Message::Heartbeat { ballot, commit, trim } => {
                if !(from_roles.proposer && ballot.leader == from && !ballot.is_none()) {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                self.observe_ballot(ballot, true);
                if self.roles.learner {
                    self.learner_on_commit(ballot, commit);
                }
                if self.roles.acceptor {
                    let acc = &mut self.acceptor;
                    let mut sink = sink!(self);
                    acc.on_heartbeat(&mut self.storage, &mut sink, from, ballot, commit, trim);
                }
            }
            Message::Repeat { from: lo, to } => {
                if !from_roles.learner {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.acceptor {
                    let empty = self.builder.noop();
                    let acc = &mut self.acceptor;
                    let mut sink = sink!(self);
                    acc.on_repeat(&self.storage, &mut sink, from, lo, to, &empty);
                }
            }
            Message::Promise { ballot, low, chunk, chunks, entries } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.proposer {
                    self.proposer_on_promise(from_index, ballot, low, chunk, chunks, entries);
                }
            }
            Message::Nack { ballot, promised } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.proposer {
                    self.proposer_on_nack(ballot, promised);
                }
            }
            Message::Learn { ballot, slot, value } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.learner {
                    self.learner_on_learn(from_index, ballot, slot, &value);
                }
            }
            Message::Trimmed { low } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.learner {
                    self.learner_on_trimmed(low);
                }
            }
            Message::Applied { applied } => {
                if !from_roles.learner {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.proposer {
                    self.proposer_on_applied(from_index, applied);
                }
            }
        }
        true
    }

    /// Advances virtual time by one tick: heartbeats, retransmissions, batch sealing,
    /// election timeouts, gap repair, applied reports.
    pub fn tick(&mut self) {
        self.now += 1;
        if self.roles.proposer {
            self.proposer_tick();
        }
        if self.roles.learner {
            self.learner_tick();
        }
    }

    /// Queues a command (opaque bytes) for the log. Only the leader accepts proposals. The
    /// command is copied into the open batch; the batch is sealed when full, on `flush`, or
    /// after `batch_delay_ticks`.
    pub fn propose(&mut self, command: &[u8]) -> Result<(), ProposeError> {
        self.proposer_propose(command)
    }

    /// Seals the open batch now and proposes what the window allows. Drivers call this after
    /// each receive burst, so one burst's commands share a slot.
    pub fn flush(&mut self) {
        if self.roles.proposer {
            self.proposer_flush();
        }
    }

    /// The application installed a snapshot covering every slot below `upto`: the learner
    /// continues from there.
    pub fn snapshot_installed(&mut self, upto: Slot) {
        self.learner_skip_to(upto);
    }

    /// Notes a ballot seen in a leader's message. `leading` messages (accept, heartbeat) prove
    /// a live leader: they reset the election timer.
    #[inline]
    fn observe_ballot(&mut self, ballot: Ballot, leading: bool) {
        if ballot > self.prop.max_seen {
            self.prop.max_seen = ballot;
        }
        if self.roles.proposer && ballot > self.prop.ballot && !self.prop.is_follower() {
            self.proposer_step_down();
        }
        if ballot >= self.leader {
            if leading && ballot != self.leader && ballot.leader != self.id {
                self.events.push(Event::LeaderIs { ballot });
            }
            if leading {
                self.leader = ballot;
            }
            // Someone with a ballot at least as high is leading or trying to: wait for it.
            self.leader_contact = self.now;
        }
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.leader_contact = self.now;
        self.election_timeout = u64::from(
            self.rng
                .range(self.cfg.election_timeout_min_ticks, self.cfg.election_timeout_max_ticks),
        );
    }
}

/// A node over `bytes::Bytes` with in-memory storage: the simulator's and tests' node.
pub type MemNode = Node<bytes::Bytes, MemStorage<bytes::Bytes>, BytesBuilder>;
