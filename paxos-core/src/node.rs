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
use std::collections::VecDeque;

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
    /// A completed asynchronous sync releases every message waiting for a sync, also those
    /// whose writes a later ticket covers.
    pub async_sync_releases_early: bool,
}

/// Where role handlers put what they produce.
pub(crate) struct Sink<'a, P> {
    /// Messages free to leave.
    pub out: &'a mut Vec<Outgoing<P>>,
    /// Messages that wait for the next successful sync (see `storage`).
    pub held: &'a mut Vec<Outgoing<P>>,
    pub stats: &'a mut Stats,
    pub unsynced: &'a mut bool,
    /// A sync started by `begin_sync` is in flight: what may reveal the writes it covers
    /// is held as well, even with nothing written since.
    pub syncing: bool,
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
            syncing: $n.sync_started > $n.sync_completed,
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
            | Message::HeartbeatAck { .. }
            | Message::Committed { .. }
    )
}

impl<P: Clone> Sink<'_, P> {
    /// Queues `msg` for `to` (which may be this node: the driver hands those back). It is
    /// held until the next sync if it may reveal unsynced writes.
    #[inline]
    pub fn send(&mut self, to: ReplicaId, msg: Message<P>) {
        self.stats.messages_out += 1;
        if self.hold && (*self.unsynced || self.syncing) && reveals_stable_state(&msg) {
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
        let queue = if self.hold && reveals && (*self.unsynced || self.syncing) {
            &mut *self.held
        } else {
            &mut *self.out
        };
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
    /// When an Accept or Heartbeat of the `leader` ballot last arrived (leader stickiness).
    pub(crate) leader_heard: Option<u64>,
    /// The candidate whose Prepare last reset our election timer, until a leader is heard.
    pub(crate) waited_for: Option<ReplicaId>,
    pub(crate) election_timeout: u64,
    pub(crate) out: Vec<Outgoing<P>>,
    /// Messages waiting for the next successful sync (see `storage`), not yet tagged with a
    /// ticket: `begin_sync` moves them to `waiting`, `sync` releases them.
    pub(crate) held: Vec<Outgoing<P>>,
    /// Messages waiting for an asynchronous sync, each with the ticket that must complete
    /// first (non-decreasing from front to back: released as a prefix, in order).
    pub(crate) waiting: VecDeque<(u64, Outgoing<P>)>,
    /// Highest ticket `begin_sync` started, and highest known complete (a sync is in flight
    /// while the first is above the second). Both 0 while only `sync` is used.
    pub(crate) sync_started: u64,
    pub(crate) sync_completed: u64,
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
        self.leader_heard.hash(h);
        self.waited_for.hash(h);
        self.election_timeout.hash(h);
        self.held.hash(h);
        self.waiting.hash(h);
        self.sync_started.hash(h);
        self.sync_completed.hash(h);
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
            && self.leader_heard == o.leader_heard
            && self.waited_for == o.waited_for
            && self.election_timeout == o.election_timeout
            && self.held == o.held
            && self.waiting == o.waiting
            && self.sync_started == o.sync_started
            && self.sync_completed == o.sync_completed
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
            leader_heard: None,
            waited_for: None,
            election_timeout,
            out: Vec::with_capacity(4 * window.max(16)),
            held: Vec::with_capacity(4 * window.max(16)),
            waiting: VecDeque::new(),
            sync_started: 0,
            sync_completed: 0,
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

    /// True when stable state was written since the last `sync` (or `begin_sync`). Messages
    /// that depend on it are held until a sync covering it succeeds (the durability
    /// contract, see `storage`).
    #[inline]
    pub fn needs_sync(&self) -> bool {
        self.unsynced
    }

    /// Makes every write so far stable, then releases the messages held for it. A failure
    /// is sticky: the node drops what it held and refuses all further work (the driver must
    /// stop it; nothing that depended on the failed writes ever leaves). Also waits for a
    /// sync that `begin_sync` started: afterwards nothing is held.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.unsynced || self.sync_in_flight() {
            if let Err(e) = self.storage.sync() {
                self.fail(e.clone());
                return Err(e);
            }
            self.unsynced = false;
            self.sync_completed = self.sync_started;
        }
        self.release_waiting();
        if !self.held.is_empty() {
            self.out.append(&mut self.held);
        }
        Ok(())
    }

    /// The asynchronous `sync`: if anything was written since the last sync started, asks
    /// the storage to start making it stable (`Storage::sync_start`, which does not block)
    /// and tags every held message with the ticket that covers it; `poll_sync` or
    /// `sync_done` release them once that ticket completes. Writes after this call belong
    /// to the next ticket. Returns the ticket started (0: the storage made the writes stable
    /// at once, and what they held back is free), or `None` when nothing was written since
    /// the last one (messages held meanwhile wait for the sync in flight). A failure is
    /// sticky, as with `sync`.
    pub fn begin_sync(&mut self) -> Result<Option<u64>, StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.unsynced {
            if self.sync_in_flight() {
                // Queued since the sync in flight started, with nothing written since: they
                // reveal nothing that sync does not cover.
                let t = self.sync_started;
                self.waiting.extend(self.held.drain(..).map(|m| (t, m)));
            } else {
                self.out.append(&mut self.held);
            }
            return Ok(None);
        }
        let ticket = match self.storage.sync_start() {
            Ok(t) => t,
            Err(e) => {
                self.fail(e.clone());
                return Err(e);
            }
        };
        self.unsynced = false;
        if ticket == 0 || ticket <= self.sync_completed {
            // Stable already: every write so far, hence every ticket in flight.
            self.sync_completed = self.sync_completed.max(self.sync_started).max(ticket);
            self.sync_started = self.sync_completed;
            self.release_waiting();
            self.out.append(&mut self.held);
        } else {
            self.sync_started = self.sync_started.max(ticket);
            self.waiting.extend(self.held.drain(..).map(|m| (ticket, m)));
        }
        Ok(Some(ticket))
    }

    /// Asks the storage which syncs completed (`Storage::sync_poll`, never blocks) and
    /// releases what they held back (`sync_done`). Returns whether a sync completed. A
    /// failed sync is sticky, as with `sync`.
    pub fn poll_sync(&mut self) -> Result<bool, StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.sync_in_flight() {
            return Ok(false);
        }
        match self.storage.sync_poll() {
            Ok(Some(t)) => {
                self.sync_done(t);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// `poll_sync`, but blocks until the oldest sync in flight completes
    /// (`Storage::sync_wait`): for a driver with nothing else to do.
    pub fn wait_sync(&mut self) -> Result<bool, StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.sync_in_flight() {
            return Ok(false);
        }
        match self.storage.sync_wait() {
            Ok(Some(t)) => {
                self.sync_done(t);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// Ticket `ticket` (and every one below it) completed: releases, in order, every message
    /// waiting for one of them; and, when no sync is in flight any more and nothing was
    /// written since, the messages held meanwhile. For drivers that learn of completions
    /// themselves; `poll_sync` calls it.
    pub fn sync_done(&mut self, ticket: u64) {
        if self.failed.is_some() {
            return;
        }
        self.sync_completed = self.sync_completed.max(ticket.min(self.sync_started));
        self.release_waiting();
        if !self.sync_in_flight() && !self.unsynced && !self.held.is_empty() {
            self.out.append(&mut self.held);
        }
    }

    /// Moves the waiting messages whose ticket completed to `out`, in order.
    fn release_waiting(&mut self) {
        while let Some((t, _)) = self.waiting.front() {
            if *t > self.sync_completed && !self.bugs.async_sync_releases_early {
                break;
            }
            if let Some((_, m)) = self.waiting.pop_front() {
                self.out.push(m);
            }
        }
    }

    /// A sync started by `begin_sync` has not completed yet.
    #[inline]
    pub fn sync_in_flight(&self) -> bool {
        self.sync_started > self.sync_completed
    }

    /// Whether messages wait for a sync (one not started yet, or one in flight).
    #[inline]
    pub fn has_held_messages(&self) -> bool {
        !self.held.is_empty() || !self.waiting.is_empty()
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
        self.waiting.clear();
        self.decided.clear();
    }

    /// True unless this member is rejoining after it lost its acceptor state.
    pub fn is_voting(&self) -> bool {
        self.rejoin.is_none()
    }

    /// Moves the messages free to leave into `out` (appended; both buffers keep their
    /// capacity). Messages that depend on unsynced writes stay until `sync` succeeds, or
    /// until the ticket `begin_sync` tagged them with completed (`poll_sync`, `sync_done`).
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
            && self.held.is_empty()
            && self.waiting.is_empty())
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
                if self.sticks_to_leader(from) {
                    self.stats.prepares_ignored_live_leader += 1;
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
                    if self.cfg.check_quorum && ballot >= self.storage.promised() {
                        self.sink().send(from, Message::HeartbeatAck { ballot });
                    }
                }
            }
            Message::Committed { commit } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.learner {
                    self.learner_on_commit(Ballot::NONE, commit);
                }
            }
            Message::HeartbeatAck { ballot } => {
                if !from_roles.acceptor {
                    self.stats.messages_ignored += 1;
                    return false;
                }
                if self.roles.proposer {
                    self.proposer_heard(from_index, ballot);
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
                    self.proposer_on_nack(from_index, ballot, promised);
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
        } else if leading
            && self.cfg.leader_stickiness
            && self.prop.is_preparing()
            && ballot.leader != self.id
            && ballot >= self.leader
        {
            // A live leader with a lower ballot: while it lives the others ignore our
            // Prepares (stickiness), so give up the bid instead of repeating it (found by
            // the simulator's stable phase: two candidates at once, one won, the other kept
            // preparing, higher and higher, for ever).
            self.proposer_step_down();
        }
        if ballot >= self.leader {
            if leading && ballot != self.leader && ballot.leader != self.id {
                self.events.push(Event::LeaderIs { ballot });
            }
            if leading {
                self.leader = ballot;
                self.leader_heard = Some(self.now);
            }
            // Someone with a ballot at least as high is leading or trying to: wait for it.
            // With leader stickiness, a candidate gets that courtesy once until some
            // leader is heard: one that cannot win (it cannot hear the answers to its
            // Prepares) would otherwise hold every other proposer back for as long as it
            // keeps trying (found by liveness::partial_cuts_elect_few_leaders: a leader
            // whose inbound links were cut stepped down, then its Prepares, one per
            // timeout, kept both followers from ever starting an election).
            if leading {
                self.leader_contact = self.now;
                self.waited_for = None;
            } else if !self.cfg.leader_stickiness || self.waited_for != Some(ballot.leader) {
                self.leader_contact = self.now;
                self.waited_for = Some(ballot.leader);
            }
        }
    }

    /// Leader stickiness: whether a Prepare from proposer `from` is to be ignored because a
    /// live leader other than `from` holds the group: this node leads it (check-quorum makes
    /// it step down once it cannot reach a quorum), or heard the leader's Accept or
    /// Heartbeat less than `election_timeout_min_ticks` ago. Our own Prepares, and the
    /// leader's own (a new ballot after a restart), always pass.
    fn sticks_to_leader(&self, from: ReplicaId) -> bool {
        if !self.cfg.leader_stickiness || from == self.id {
            return false;
        }
        if self.prop.is_leading() {
            return true;
        }
        let recent =
            |t: u64| self.now.saturating_sub(t) < u64::from(self.cfg.election_timeout_min_ticks);
        !self.leader.is_none()
            && self.leader.leader != from
            && self.leader.leader != self.id
            && self.leader_heard.is_some_and(recent)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use bytes::Bytes;

    /// Memory storage whose syncs complete when the test says so (tickets from 1).
    #[derive(Default)]
    struct Deferred {
        mem: MemStorage<Bytes>,
        started: u64,
        /// What the next `sync_poll` reports.
        report: Option<Result<u64, StorageError>>,
        blocking_syncs: u32,
    }

    impl Storage<Bytes> for Deferred {
        fn promised(&self) -> Ballot {
            self.mem.promised()
        }
        fn set_promised(&mut self, ballot: Ballot) {
            self.mem.set_promised(ballot)
        }
        fn voting(&self) -> bool {
            self.mem.voting()
        }
        fn set_voting(&mut self, voting: bool) {
            self.mem.set_voting(voting)
        }
        fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, Bytes)>, StorageError> {
            self.mem.accepted(slot)
        }
        fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: Bytes) {
            self.mem.set_accepted(slot, ballot, value)
        }
        fn low(&self) -> Slot {
            self.mem.low()
        }
        fn high(&self) -> Slot {
            self.mem.high()
        }
        fn trim(&mut self, below: Slot) {
            self.mem.trim(below)
        }
        fn sync(&mut self) -> Result<(), StorageError> {
            self.blocking_syncs += 1;
            Ok(())
        }
        fn sync_start(&mut self) -> Result<u64, StorageError> {
            self.started += 1;
            Ok(self.started)
        }
        fn sync_poll(&mut self) -> Result<Option<u64>, StorageError> {
            self.report.take().transpose()
        }
    }

    /// Memory storage that wants syncs but only has the blocking one (the trait's defaults).
    #[derive(Default)]
    struct Blocking(MemStorage<Bytes>, u32);

    impl Storage<Bytes> for Blocking {
        fn promised(&self) -> Ballot {
            self.0.promised()
        }
        fn set_promised(&mut self, ballot: Ballot) {
            self.0.set_promised(ballot)
        }
        fn voting(&self) -> bool {
            self.0.voting()
        }
        fn set_voting(&mut self, voting: bool) {
            self.0.set_voting(voting)
        }
        fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, Bytes)>, StorageError> {
            self.0.accepted(slot)
        }
        fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: Bytes) {
            self.0.set_accepted(slot, ballot, value)
        }
        fn low(&self) -> Slot {
            self.0.low()
        }
        fn high(&self) -> Slot {
            self.0.high()
        }
        fn trim(&mut self, below: Slot) {
            self.0.trim(below)
        }
        fn sync(&mut self) -> Result<(), StorageError> {
            self.1 += 1;
            Ok(())
        }
    }

    const LEADER: ReplicaId = ReplicaId(0);

    fn follower<S: Storage<Bytes>>(storage: S) -> Node<Bytes, S, BytesBuilder> {
        Node::new(Config::replicas(3), ReplicaId(1), storage, BytesBuilder::default(), 1).unwrap()
    }

    fn accept<S: Storage<Bytes>>(n: &mut Node<Bytes, S, BytesBuilder>, round: u32, slot: u64) {
        let ballot = Ballot::new(round, LEADER);
        let value = Bytes::from(format!("v{slot}"));
        n.step(LEADER, Message::Accept { ballot, slot: Slot(slot), commit: Slot(0), value });
    }

    fn taken<S: Storage<Bytes>>(n: &mut Node<Bytes, S, BytesBuilder>) -> Vec<Message<Bytes>> {
        let mut out = Vec::new();
        n.take_messages(&mut out);
        out.into_iter().map(|m| m.msg).collect()
    }

    fn accepted(round: u32, slot: u64) -> Message<Bytes> {
        Message::Accepted { ballot: Ballot::new(round, LEADER), slot: Slot(slot) }
    }

    #[test]
    fn a_reply_leaves_only_once_its_ticket_completed() {
        let mut n = follower(Deferred::default());
        accept(&mut n, 1, 0);
        assert!(taken(&mut n).is_empty(), "held until synced");
        assert_eq!(n.begin_sync(), Ok(Some(1)));
        assert!(n.sync_in_flight());
        assert!(n.has_held_messages());
        assert!(taken(&mut n).is_empty(), "held while the sync is in flight");
        assert_eq!(n.poll_sync(), Ok(false), "nothing completed yet");
        assert!(taken(&mut n).is_empty());
        n.storage_mut().report = Some(Ok(1));
        assert_eq!(n.poll_sync(), Ok(true));
        assert_eq!(taken(&mut n), vec![accepted(1, 0)]);
        assert!(!n.sync_in_flight() && !n.has_held_messages());
        assert_eq!(n.storage().blocking_syncs, 0);
        assert_eq!(n.begin_sync(), Ok(None), "nothing written since");
    }

    #[test]
    fn writes_after_begin_sync_wait_for_the_next_ticket() {
        let mut n = follower(Deferred::default());
        accept(&mut n, 1, 0);
        assert_eq!(n.begin_sync(), Ok(Some(1)));
        accept(&mut n, 1, 1); // written while ticket 1 is in flight
        assert!(n.needs_sync());
        assert_eq!(n.begin_sync(), Ok(Some(2)));
        accept(&mut n, 1, 2);
        n.sync_done(1);
        assert_eq!(taken(&mut n), vec![accepted(1, 0)], "slot 1 needs ticket 2");
        n.sync_done(2);
        assert_eq!(taken(&mut n), vec![accepted(1, 1)], "slot 2 is not even started");
        assert!(n.has_held_messages() && n.needs_sync());
        assert_eq!(n.begin_sync(), Ok(Some(3)));
        n.sync_done(3);
        assert_eq!(taken(&mut n), vec![accepted(1, 2)]);
        assert!(!n.has_held_messages());
    }

    #[test]
    fn a_reply_without_a_write_waits_for_the_sync_in_flight() {
        let mut n = follower(Deferred::default());
        accept(&mut n, 2, 0); // promises round 2 and accepts
        assert_eq!(n.begin_sync(), Ok(Some(1)));
        // A lower ballot: a Nack revealing the promise of round 2, which ticket 1 covers.
        accept(&mut n, 1, 1);
        assert!(!n.needs_sync(), "the Nack wrote nothing");
        assert!(taken(&mut n).is_empty(), "but it reveals what ticket 1 is making stable");
        assert_eq!(n.begin_sync(), Ok(None));
        n.sync_done(1);
        let nack =
            Message::Nack { ballot: Ballot::new(1, LEADER), promised: Ballot::new(2, LEADER) };
        assert_eq!(taken(&mut n), vec![accepted(2, 0), nack], "in the order queued");
    }

    #[test]
    fn blocking_sync_covers_a_sync_in_flight() {
        let mut n = follower(Deferred::default());
        accept(&mut n, 1, 0);
        assert_eq!(n.begin_sync(), Ok(Some(1)));
        accept(&mut n, 1, 1);
        n.sync().unwrap();
        assert_eq!(taken(&mut n), vec![accepted(1, 0), accepted(1, 1)]);
        assert_eq!(n.storage().blocking_syncs, 1);
        assert!(!n.sync_in_flight() && !n.has_held_messages());
        // A late report of ticket 1 changes nothing.
        n.sync_done(1);
        assert!(taken(&mut n).is_empty());
    }

    #[test]
    fn a_failed_async_sync_is_sticky_and_drops_what_it_held() {
        let mut n = follower(Deferred::default());
        accept(&mut n, 1, 0);
        assert_eq!(n.begin_sync(), Ok(Some(1)));
        accept(&mut n, 1, 1);
        n.storage_mut().report = Some(Err(StorageError("disk gone".into())));
        assert!(n.poll_sync().is_err());
        assert!(taken(&mut n).is_empty() && !n.has_held_messages());
        assert!(n.failed().is_some());
        assert!(n.begin_sync().is_err() && n.sync().is_err() && n.poll_sync().is_err());
        accept(&mut n, 1, 2);
        assert!(taken(&mut n).is_empty(), "a failed node does nothing");
    }

    #[test]
    fn a_blocking_storage_completes_begin_sync_at_once() {
        let mut n = follower(Blocking::default());
        accept(&mut n, 1, 0);
        assert!(taken(&mut n).is_empty());
        assert_eq!(n.begin_sync(), Ok(Some(0)));
        assert!(!n.sync_in_flight());
        assert_eq!(taken(&mut n), vec![accepted(1, 0)]);
        assert_eq!(n.storage().1, 1);
        assert_eq!(n.poll_sync(), Ok(false));
    }
}
