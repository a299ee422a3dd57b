//! [`Node`]: one member of one Paxos group, holding any subset of the three roles, driven by
//! its caller. See the crate docs for the driving loop.

use crate::acceptor::{Acceptor, AcceptorBugs};
use crate::config::{Config, ConfigError, Roles};
use crate::ids::{Ballot, ReplicaId, Slot};
use crate::learner::Learner;
use crate::message::Message;
use crate::output::{Decided, Event, Outgoing, ProposeError, Stats};
use crate::payload::{BytesBuilder, Payload, ValueBuilder};
use crate::proposer::Proposer;
use crate::rejoin::Rejoin;
use crate::snapshot::Served;
use crate::storage::{MemStorage, Storage, StorageError};

/// Deliberate protocol bugs, for proving that the simulator's checkers catch them. Never
/// set outside tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// The acceptor neither records nor checks promises.
    pub acceptor_forgets_promise: bool,
    /// A new leader ignores the values reported in promises and fills every slot anew.
    pub leader_ignores_accepted: bool,
    /// A new leader adopts, per slot, the value with the *lowest* accepted ballot.
    pub leader_adopts_lowest: bool,
    /// The acceptor's write of an accepted value is not flagged for sync: its `Accepted`
    /// leaves before the value is stable.
    pub accept_not_synced: bool,
    /// The leader trims the log at the highest applied point reported, not where a
    /// majority of learners can rebuild it.
    pub trim_at_max_applied: bool,
    /// A member that lost its state votes at once instead of rejoining first.
    pub rejoin_votes_at_once: bool,
}

/// Where role handlers put what they produce.
pub(crate) struct Sink<'a, P> {
    /// Messages free to leave.
    pub out: &'a mut Vec<Outgoing<P>>,
    /// Messages that wait for the next successful sync (see `storage`).
    pub held: &'a mut Vec<Outgoing<P>>,
    pub stats: &'a mut Stats,
    pub unsynced: &'a mut bool,
    /// The storage makes writes stable only at `sync`: hold what reveals them until then.
    pub hold: bool,
    pub learners: &'a [ReplicaId],
}

/// A `Sink` over a node's fields (a macro so that the borrows stay disjoint).
macro_rules! sink {
    ($n:expr) => {
        Sink {
            out: &mut $n.out,
            held: &mut $n.held,
            stats: &mut $n.stats,
            unsynced: &mut $n.unsynced,
            hold: $n.hold,
            learners: if $n.cfg.accepted_to_learners { &$n.topo.learners } else { &[] },
        }
    };
}

/// Whether a message may reveal acceptor state (a promise, an accepted value, a trim point,
/// a proposer's ballot record): such a message queued while writes are unsynced waits for
/// the next successful sync. The leader's Accept and Heartbeat, a learner's Repeat and
/// Applied, snapshot traffic and recovery queries reveal none, and leave at once (the
/// leader's ballot was made stable before its first Prepare left; an `Applied` point is
/// the application's own durable state; a `RecoveryInfo` only bounds from above).
#[inline]
fn reveals_stable_state<P>(msg: &Message<P>) -> bool {
    !matches!(
        msg,
        Message::Accept { .. }
            | Message::Heartbeat { .. }
            | Message::Repeat { .. }
            | Message::Applied { .. }
            | Message::SnapshotRequest { .. }
            | Message::SnapshotChunk { .. }
            | Message::RecoveryQuery { .. }
            | Message::RecoveryInfo { .. }
    )
}

impl<P: Clone> Sink<'_, P> {
    /// Queues `msg` for `to` (which may be this node: the driver hands those back). It is
    /// held until the next sync if it may reveal unsynced writes.
    #[inline]
    pub fn send(&mut self, to: ReplicaId, msg: Message<P>) {
        self.stats.messages_out += 1;
        if self.hold && *self.unsynced && reveals_stable_state(&msg) {
            self.held.push(Outgoing { to, msg });
        } else {
            self.out.push(Outgoing { to, msg });
        }
    }

    /// Sends `Accepted { ballot, slot }` to every learner and to `leader` (once, if it is
    /// also a learner), in that order.
    #[inline]
    pub fn send_accepted(&mut self, leader: ReplicaId, ballot: Ballot, slot: Slot) {
        let extra = (!self.learners.contains(&leader)).then_some(leader);
        self.send_each(true, self.learners.iter().copied().chain(extra), |_| Message::Accepted {
            ballot,
            slot,
        });
    }

    /// Queues `msg(to)` for each `to`; `reveals` must be `reveals_stable_state` of those
    /// messages (all of one kind, known to the caller). One `extend` over an iterator of known
    /// length (a slice, chained with an `Option`): the messages are written straight into
    /// the queue, where a `push` per message builds each on the stack first and copies it
    /// over.
    #[inline]
    pub fn send_each(
        &mut self,
        reveals: bool,
        to: impl Iterator<Item = ReplicaId>,
        mut msg: impl FnMut(ReplicaId) -> Message<P>,
    ) {
        let queue =
            if self.hold && reveals && *self.unsynced { &mut *self.held } else { &mut *self.out };
        let before = queue.len();
        queue.extend(to.map(|to| Outgoing { to, msg: msg(to) }));
        self.stats.messages_out += (queue.len() - before) as u64;
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
    /// `storage.sync_required()`, read once: whether replies are held for a sync.
    pub(crate) hold: bool,
    pub(crate) acceptor: Acceptor,
    pub(crate) prop: Proposer<P>,
    pub(crate) learner: Learner<P>,
    /// Highest ballot known to lead, and when we last heard from it.
    pub(crate) leader: Ballot,
    pub(crate) leader_contact: u64,
    pub(crate) election_timeout: u64,
    pub(crate) out: Vec<Outgoing<P>>,
    /// Messages waiting for the next successful sync (see `storage`).
    pub(crate) held: Vec<Outgoing<P>>,
    /// Set by a failed sync or an unreadable value: the node does nothing more.
    pub(crate) failed: Option<StorageError>,
    /// Present while this member rejoins after losing its acceptor state (not voting).
    pub(crate) rejoin: Option<Rejoin>,
    /// Snapshots offered by the application for serving to peers (the newest, and the one
    /// before it so that a transfer in progress can finish).
    pub(crate) served: [Option<Served>; 2],
    /// A snapshot received from a peer, for the application to take.
    pub(crate) snapshot_ready: Option<(Slot, bytes::Bytes)>,
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
        self.held.hash(h);
        self.rejoin.hash(h);
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
            && self.held == o.held
            && self.rejoin == o.rejoin
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
            hold: true,
            acceptor: Acceptor::default(),
            leader: Ballot::NONE,
            leader_contact: 0,
            election_timeout,
            out: Vec::with_capacity(4 * window.max(16)),
            held: Vec::with_capacity(4 * window.max(16)),
            failed: None,
            rejoin: None,
            served: [None, None],
            snapshot_ready: None,
            decided: Vec::with_capacity(window.max(16)),
            events: Vec::with_capacity(8),
            stats: Stats::default(),
            bugs: Bugs::default(),
        };
        node.hold = node.storage.sync_required();
        // A restarted acceptor knows the highest ballot it promised: never reuse a lower one.
        node.prop.max_seen = node.storage.promised();
        if !node.storage.voting() {
            if roles.acceptor || roles.proposer {
                node.rejoin = Some(Rejoin::new(node.rng.next_u64(), &node.topo, node.id, roles));
            } else {
                // A learner only: no vote and no ballot to lose.
                node.storage.set_voting(true);
                node.unsynced = true;
            }
        }
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
    /// For simulators and tests that inject storage faults. Writing through it bypasses the
    /// durability contract.
    #[doc(hidden)]
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
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
        if bugs.rejoin_votes_at_once && self.rejoin.take().is_some() {
            self.storage.set_voting(true);
            self.unsynced = true;
        }
    }

    /// True when stable state was written since the last `sync`. Messages that depend on it
    /// are held until `sync` succeeds (the durability contract, see `storage`).
    #[inline]
    pub fn needs_sync(&self) -> bool {
        self.unsynced
    }

    /// Makes every write so far stable, then releases the messages held for it. A failure
    /// is sticky: the node drops what it held and refuses all further work (the driver must
    /// stop it; nothing that depended on the failed writes ever leaves).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.unsynced {
            if let Err(e) = self.storage.sync() {
                self.fail(e.clone());
                return Err(e);
            }
            self.unsynced = false;
        }
        if !self.held.is_empty() {
            self.out.append(&mut self.held);
        }
        Ok(())
    }

    /// Whether stable state was written that no `sync` has covered yet, or messages wait.
    #[inline]
    pub fn has_held_messages(&self) -> bool {
        !self.held.is_empty()
    }

    /// Storage upkeep for an idle moment (`Storage::maintain`). A failure stops the node like
    /// a failed sync.
    pub fn maintain_storage(&mut self) -> Result<(), StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Err(e) = self.storage.maintain() {
            self.fail(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// The storage error that stopped this node, if any.
    pub fn failed(&self) -> Option<&StorageError> {
        self.failed.as_ref()
    }

    pub(crate) fn fail(&mut self, e: StorageError) {
        if self.failed.is_none() {
            self.failed = Some(e);
        }
        self.stats.storage_failures += 1;
        self.out.clear();
        self.held.clear();
        self.decided.clear();
    }

    /// True unless this member is rejoining after it lost its acceptor state.
    pub fn is_voting(&self) -> bool {
        self.rejoin.is_none()
    }

    /// Moves the messages free to leave into `out` (appended; both buffers keep their
    /// capacity). Messages that depend on unsynced writes stay until `sync` succeeds.
    #[inline]
    pub fn take_messages(&mut self, out: &mut Vec<Outgoing<P>>) {
        if !self.out.is_empty() {
            out.append(&mut self.out);
        }
    }

    /// Forgets every slot below `below` in stable storage (flagged for sync).
    pub(crate) fn trim_storage(&mut self, below: Slot) {
        if below > self.storage.low() {
            self.storage.trim(below);
            self.unsynced = true;
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
    /// Whether there is anything to take: messages, delivered slots, events, or messages
    /// held for unsynced writes (those need a `sync` first).
    #[inline]
    pub fn has_output(&self) -> bool {
        !(self.out.is_empty()
            && self.decided.is_empty()
            && self.events.is_empty()
            && self.held.is_empty())
    }

    pub(crate) fn sink(&mut self) -> Sink<'_, P> {
        sink!(self)
    }

    /// Handles one message from member `from`. Messages from non-members, or that a member
    /// could not legitimately send (a ballot it does not own, a role it does not have), are
    /// ignored and counted.
    pub fn step(&mut self, from: ReplicaId, msg: Message<P>) {
        if self.failed.is_some() {
            return;
        }
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
                    if self.rejoin.is_some() {
                        // Not voting: only learn the commit point (see `rejoin`).
                        self.acceptor.commit = self.acceptor.commit.max(commit.min(slot));
                        self.stats.votes_withheld += 1;
                    } else {
                        let bugs = AcceptorBugs {
                            forget_promise: self.bugs.acceptor_forgets_promise,
                            accept_not_synced: self.bugs.accept_not_synced,
                        };
                        let (acc, cfg) = (&mut self.acceptor, &self.cfg);
                        let mut sink = sink!(self);
                        acc.on_accept(
                            cfg,
                            &mut self.storage,
                            &mut sink,
                            from,
                            ballot,
                            slot,
                            commit,
                            value,
                            bugs,
                        );
                    }
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
                if self.roles.acceptor && self.rejoin.is_some() {
                    self.stats.votes_withheld += 1;
                } else if self.roles.acceptor {
                    let (acc, cfg) = (&mut self.acceptor, &self.cfg);
                    let mut sink = sink!(self);
                    let r = acc.on_prepare(
                        cfg,
                        &mut self.storage,
                        &mut sink,
                        from,
                        ballot,
                        slot,
                        forget,
                    );
                    if let Err(e) = r {
                        self.fail(e);
                        return false;
                    }
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
                if self.roles.acceptor && self.rejoin.is_some() {
                    self.acceptor.commit = self.acceptor.commit.max(commit);
                } else if self.roles.acceptor {
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
                if self.roles.acceptor && self.rejoin.is_some() {
                    self.stats.votes_withheld += 1;
                } else if self.roles.acceptor {
                    let empty = self.builder.noop();
                    let acc = &mut self.acceptor;
                    let mut sink = sink!(self);
                    if let Err(e) = acc.on_repeat(&self.storage, &mut sink, from, lo, to, &empty) {
                        self.fail(e);
                        return false;
                    }
                }
            }
            Message::Promise { ballot, from: page, low, end, high, chunk, chunks, entries } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.proposer {
                    self.proposer_on_promise(
                        from_index, ballot, page, low, end, high, chunk, chunks, entries,
                    );
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
                    self.learner_on_trimmed(from, low);
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
            Message::SnapshotRequest { min, slot, id, offset } => {
                if !from_roles.learner {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                self.serve_snapshot(from, min, slot, id, offset);
            }
            Message::SnapshotChunk { slot, id, total, offset, data } => {
                if self.roles.learner {
                    self.learner_on_snapshot_chunk(from, slot, id, total, offset, data.as_ref());
                }
            }
            Message::RecoveryQuery { nonce } => self.answer_recovery_query(from, nonce),
            Message::RecoveryInfo { nonce, ballot, high, recovering } => {
                self.on_recovery_info(from_index, from_roles, nonce, ballot, high, recovering);
            }
        }
        true
    }

    /// Advances virtual time by one tick: heartbeats, retransmissions, batch sealing,
    /// election timeouts, gap repair, applied reports.
    pub fn tick(&mut self) {
        if self.failed.is_some() {
            return;
        }
        self.now += 1;
        if self.roles.proposer {
            self.proposer_tick();
        }
        if self.roles.learner {
            self.learner_tick();
            self.snapshot_tick();
        }
        if self.rejoin.is_some() {
            self.rejoin_tick();
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
        if self.roles.proposer && self.failed.is_none() {
            self.proposer_flush();
        }
    }

    /// The application installed a snapshot covering every slot below `upto`: the learner
    /// continues from there.
    pub fn snapshot_installed(&mut self, upto: Slot) {
        self.learner_skip_to(upto);
    }

    /// The application's durable applied point: every slot below `upto` is applied to state
    /// that survives a restart (a snapshot made durable, tagged with its slot; with memory
    /// storage, simply what was applied). The learner reports it to the proposers, and the
    /// log is trimmed only where a majority of learners reported it. Nothing is trimmed
    /// until the application calls this.
    pub fn set_applied(&mut self, upto: Slot) {
        self.learner.applied = upto;
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
