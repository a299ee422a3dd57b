//! The proposer: runs Phase 1 once per leadership over the whole log tail, then Phase 2 per
//! slot with up to `window` slots in flight, batching commands into slots.

use crate::ids::{Ballot, Slot};
use crate::message::{Message, SlotValue};
use crate::node::{Node, Sink};
use crate::output::{Event, ProposeError};
use crate::payload::{record_len, Payload, ValueBuilder};
use crate::storage::Storage;
use std::collections::{BTreeMap, VecDeque};

/// A recovered log tail longer than this (from a Promise) is refused as corrupt: the
/// acceptor is treated as not having promised. Bounds the work of becoming leader.
pub const MAX_RECOVERY_SLOTS: u64 = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Phase {
    Follower,
    Preparing,
    Leading,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct InFlight<P> {
    pub value: P,
    /// Bit i set: member i (an acceptor) accepted this slot at our ballot; `count` bits.
    pub acks: u64,
    pub count: u32,
    pub chosen: bool,
    pub sent_at: u64,
}

/// Chunks of one acceptor's Promise received so far.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PromiseChunks {
    got: Vec<bool>,
    missing: u16,
    low: Slot,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Proposer<P> {
    pub phase: Phase,
    /// Our ballot while preparing or leading.
    pub ballot: Ballot,
    /// The highest ballot seen anywhere; a new election picks the next round above it.
    pub max_seen: Ballot,
    // Phase 1.
    p1_from: Slot,
    promises: Vec<Option<PromiseChunks>>,
    adopted: BTreeMap<Slot, (Ballot, P)>,
    p1_started: u64,
    p1_sent: u64,
    // Phase 2.
    /// Every slot below is known chosen.
    pub commit: Slot,
    next_slot: Slot,
    /// Slots [commit, next_slot).
    pub inflight: VecDeque<InFlight<P>>,
    /// Sealed batches waiting for room in the window (bounded by `max_pending_batches`).
    pending: VecDeque<P>,
    max_pending: usize,
    open_commands: u32,
    open_since: u64,
    last_heartbeat: u64,
    /// Applied slot reported by each member's learner (by member index).
    applied: Vec<Slot>,
    pub trim: Slot,
}

impl<P> Proposer<P> {
    pub fn new(window: usize, max_pending: usize, members: usize) -> Self {
        Proposer {
            phase: Phase::Follower,
            ballot: Ballot::NONE,
            max_seen: Ballot::NONE,
            p1_from: Slot::ZERO,
            promises: (0..members).map(|_| None).collect(),
            adopted: BTreeMap::new(),
            p1_started: 0,
            p1_sent: 0,
            commit: Slot::ZERO,
            next_slot: Slot::ZERO,
            inflight: VecDeque::with_capacity(window * 2),
            pending: VecDeque::with_capacity(max_pending),
            max_pending,
            open_commands: 0,
            open_since: 0,
            last_heartbeat: 0,
            applied: vec![Slot::ZERO; members],
            trim: Slot::ZERO,
        }
    }
    pub fn is_leading(&self) -> bool {
        self.phase == Phase::Leading
    }
    pub fn is_follower(&self) -> bool {
        self.phase == Phase::Follower
    }
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    pub(crate) fn proposer_tick(&mut self) {
        let now = self.now;
        match self.prop.phase {
            Phase::Follower => {
                if now.saturating_sub(self.leader_contact) >= self.election_timeout {
                    self.start_election();
                }
            }
            Phase::Preparing => {
                if now.saturating_sub(self.prop.p1_started) >= self.election_timeout {
                    // No quorum of promises in time: try again, higher.
                    self.start_election();
                } else if now.saturating_sub(self.prop.p1_sent)
                    >= u64::from(self.cfg.retransmit_ticks)
                {
                    self.send_prepares(true);
                }
            }
            Phase::Leading => {
                if self.cfg.batch_delay_ticks == 0
                    || now.saturating_sub(self.prop.open_since)
                        >= u64::from(self.cfg.batch_delay_ticks)
                {
                    self.proposer_flush();
                }
                self.retransmit_accepts();
                if now.saturating_sub(self.prop.last_heartbeat)
                    >= u64::from(self.cfg.heartbeat_ticks)
                {
                    self.send_heartbeat();
                }
            }
        }
    }

    /// Phase 1a with a ballot above everything seen, covering every slot from the first one
    /// this node does not know to be chosen.
    fn start_election(&mut self) {
        self.stats.elections_started += 1;
        let ballot = self.prop.max_seen.max(self.prop.ballot).next_for(self.id);
        self.prop.ballot = ballot;
        self.prop.max_seen = ballot;
        // Never use a ballot twice, even across a restart: a restarted proposer recovers
        // `max_seen` from `storage.promised()`, so record the ballot there before any Prepare
        // leaves (the sync-before-send contract makes it stable first). Relying on this
        // node's own acceptor promising it covered neither a proposer without the acceptor
        // role (found by paxos-sim: a proposer-only node restarted and led with b1.1 again,
        // proposing a no-op where its first incarnation had chosen a command at b1.1) nor a
        // crash before the acceptor saw its own Prepare. (A co-located acceptor thereby
        // promises its own ballot, which it would do on the Prepare anyway.)
        if ballot > self.storage.promised() {
            self.storage.set_promised(ballot);
            self.unsynced = true;
        }
        self.prop.phase = Phase::Preparing;
        let known = if self.roles.learner { self.learner.next } else { Slot::ZERO };
        self.prop.p1_from = known.max(self.prop.commit);
        for p in self.prop.promises.iter_mut() {
            *p = None;
        }
        self.prop.adopted.clear();
        self.prop.p1_started = self.now;
        self.reset_election_timer();
        self.prop.p1_started = self.now;
        self.send_prepares(false);
    }

    fn send_prepares(&mut self, only_missing: bool) {
        self.prop.p1_sent = self.now;
        let (ballot, from) = (self.prop.ballot, self.prop.p1_from);
        for i in 0..self.topo.acceptors.len() {
            let a = self.topo.acceptors[i];
            if only_missing {
                let idx = self.topo.index(a).unwrap_or(0);
                if matches!(&self.prop.promises[idx], Some(p) if p.missing == 0) {
                    continue;
                }
            }
            self.sink().send(a, Message::Prepare { ballot, from });
        }
    }

    /// A Promise from acceptor `idx` (member index; `step` checked the sender's role).
    pub(crate) fn proposer_on_promise(
        &mut self,
        idx: usize,
        ballot: Ballot,
        low: Slot,
        chunk: u16,
        chunks: u16,
        entries: Vec<SlotValue<P>>,
    ) {
        if self.prop.phase != Phase::Preparing
            || ballot != self.prop.ballot
            || chunks == 0
            || chunk >= chunks
        {
            return;
        }
        let limit = self.prop.p1_from.max(low).plus(MAX_RECOVERY_SLOTS);
        if entries.iter().any(|e| e.slot >= limit || e.ballot > ballot) {
            // Corrupt or absurd: do not count this acceptor. (Liveness only: safety needs
            // nothing from an acceptor we do not count.)
            self.stats.promises_rejected += 1;
            return;
        }
        let fresh = || PromiseChunks { got: vec![false; chunks as usize], missing: chunks, low };
        let state = self.prop.promises[idx].get_or_insert_with(fresh);
        if state.missing > 0 && (state.got.len() != chunks as usize || state.low != low) {
            // A chunk of a different answer: the acceptor restarted (its volatile commit point,
            // hence `low`, changed) and answered a retransmitted Prepare with another split.
            // Merging chunk 0 of one answer with chunk 1 of the other loses the slots between
            // their split points, and the leader would fill a possibly chosen slot with a
            // no-op (paxos-sim test promise_chunks_of_two_answers_are_not_merged). Within one
            // incarnation the answer to our ballot cannot change (only we could change its
            // state at this ballot), so start over with this answer. The entries already
            // adopted from the other one are real accepted values of an acceptor that
            // promised us: keeping them is safe.
            *state = fresh();
        }
        if state.got.len() != chunks as usize || state.got[chunk as usize] {
            return; // a duplicate, or a straggler of an answer already complete: ignore
        }
        state.got[chunk as usize] = true;
        state.missing -= 1;
        for e in entries {
            if self.bugs.leader_ignores_accepted {
                continue;
            }
            // SAFETY OF PAXOS: per slot, adopt the value accepted with the highest ballot
            // among the promises. Any value that may have been chosen at a lower ballot was
            // accepted by a phase-2 quorum, which intersects our phase-1 quorum, and every
            // ballot between that one and ours proposed the same value: so the highest
            // accepted ballot carries it.
            match self.prop.adopted.get(&e.slot) {
                Some((b, _)) if *b >= e.ballot => {}
                _ => {
                    self.prop.adopted.insert(e.slot, (e.ballot, e.value));
                }
            }
        }
        let complete =
            self.prop.promises.iter().filter(|p| matches!(p, Some(p) if p.missing == 0)).count();
        if complete >= self.cfg.phase1_quorum {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        let ballot = self.prop.ballot;
        self.prop.phase = Phase::Leading;
        self.stats.times_leader += 1;
        // Slots below any promiser's `low` are chosen; start after them.
        let low = self
            .prop
            .promises
            .iter()
            .flatten()
            .filter(|p| p.missing == 0)
            .map(|p| p.low)
            .max()
            .unwrap_or(Slot::ZERO);
        let start = self.prop.p1_from.max(low);
        let end = self.prop.adopted.keys().next_back().map_or(start, |s| s.next().max(start));
        self.prop.commit = start;
        self.prop.next_slot = start;
        self.prop.inflight.clear();
        self.prop.open_commands = 0;
        self.prop.open_since = self.now;
        self.leader = ballot;
        self.events.push(Event::BecameLeader { ballot });
        // Re-propose every adopted value; fill holes with no-ops.
        let adopted = core::mem::take(&mut self.prop.adopted);
        let mut s = start;
        while s < end {
            let value = match adopted.get(&s) {
                Some((_, v)) => v.clone(),
                None => self.builder.noop(),
            };
            self.propose_slot(value);
            s = s.next();
        }
        self.send_heartbeat();
        self.pump();
    }

    pub(crate) fn proposer_step_down(&mut self) {
        let was = self.prop.phase;
        self.prop.phase = Phase::Follower;
        self.reset_election_timer();
        if was == Phase::Leading {
            self.stats.step_downs += 1;
            let dropped =
                self.prop.pending.len() + self.prop.inflight.iter().filter(|f| !f.chosen).count();
            self.prop.pending.clear();
            self.prop.inflight.clear();
            if self.builder.open_len() > 0 {
                let _ = self.builder.seal(); // abandon the open batch
            }
            self.prop.open_commands = 0;
            self.events
                .push(Event::SteppedDown { ballot: self.prop.ballot, dropped_batches: dropped });
        }
    }

    pub(crate) fn proposer_on_nack(&mut self, ballot: Ballot, promised: Ballot) {
        if promised > self.prop.max_seen {
            self.prop.max_seen = promised;
        }
        if ballot == self.prop.ballot && promised > ballot && !self.prop.is_follower() {
            self.proposer_step_down();
        }
    }

    pub(crate) fn proposer_propose(&mut self, command: &[u8]) -> Result<(), ProposeError> {
        if !self.roles.proposer || self.prop.phase != Phase::Leading {
            return Err(ProposeError::NotLeader {
                hint: self.leader_hint().filter(|h| *h != self.id),
            });
        }
        let rec = record_len(command.len());
        if rec > self.cfg.batch_max_bytes as usize {
            return Err(ProposeError::TooLarge);
        }
        if self.prop.open_commands > 0
            && self.builder.open_len() + rec > self.cfg.batch_max_bytes as usize
        {
            self.seal_open();
        }
        if self.prop.pending.len() >= self.prop.max_pending {
            // Room may be made by proposing what the window allows.
            self.pump();
            if self.prop.pending.len() >= self.prop.max_pending {
                return Err(ProposeError::Busy);
            }
        }
        if self.prop.open_commands == 0 {
            self.prop.open_since = self.now;
        }
        self.builder.push_command(command);
        self.prop.open_commands += 1;
        self.stats.commands_proposed += 1;
        if self.prop.open_commands >= self.cfg.batch_max_commands {
            self.seal_open();
            self.pump();
        }
        Ok(())
    }

    pub(crate) fn proposer_flush(&mut self) {
        if self.prop.phase != Phase::Leading {
            return;
        }
        if self.prop.open_commands > 0 {
            self.seal_open();
        }
        self.pump();
    }

    /// Seals the open batch into the pending queue (the caller checked there is room).
    fn seal_open(&mut self) {
        let v = self.builder.seal();
        self.prop.open_commands = 0;
        self.prop.open_since = self.now;
        self.stats.batches_proposed += 1;
        self.prop.pending.push_back(v);
    }

    /// Proposes pending batches while the window has room.
    fn pump(&mut self) {
        while self.prop.next_slot < self.prop.commit.plus(u64::from(self.cfg.window)) {
            let Some(v) = self.prop.pending.pop_front() else { break };
            self.propose_slot(v);
        }
    }

    /// Phase 2a for the next slot.
    fn propose_slot(&mut self, value: P) {
        let slot = self.prop.next_slot;
        self.prop.next_slot = slot.next();
        self.send_accept(slot, &value, None);
        self.prop.inflight.push_back(InFlight {
            value,
            acks: 0,
            count: 0,
            chosen: false,
            sent_at: self.now,
        });
    }

    /// Sends the Accept for `slot` to every acceptor and learner, or, when retransmitting, to
    /// those that have not acknowledged (`skip` = ack mask).
    fn send_accept(&mut self, slot: Slot, value: &P, skip: Option<u64>) {
        let (ballot, commit) = (self.prop.ballot, self.prop.commit);
        if skip.is_none() {
            let mut sink = Sink {
                out: &mut self.out,
                stats: &mut self.stats,
                unsynced: &mut self.unsynced,
                learners: &[],
            };
            let targets = self.topo.accept_targets.iter().copied();
            sink.send_each(targets, |_| Message::Accept {
                ballot,
                slot,
                commit,
                value: value.clone(),
            });
            return;
        }
        for i in 0..self.topo.accept_targets.len() {
            let to = self.topo.accept_targets[i];
            if let Some(mask) = skip {
                if let Some(idx) = self.topo.index(to) {
                    if mask & (1 << idx) != 0 {
                        continue;
                    }
                }
            }
            self.sink().send(to, Message::Accept { ballot, slot, commit, value: value.clone() });
        }
    }

    /// An Accepted from acceptor `idx` (member index; `step` checked the sender's role).
    #[inline]
    pub(crate) fn proposer_on_accepted(&mut self, idx: usize, ballot: Ballot, slot: Slot) {
        if self.prop.phase != Phase::Leading
            || ballot != self.prop.ballot
            || slot < self.prop.commit
        {
            return;
        }
        let i = (slot.0 - self.prop.commit.0) as usize;
        let q2 = self.cfg.phase2_quorum;
        let Some(f) = self.prop.inflight.get_mut(i) else { return };
        let bit = 1u64 << idx;
        if f.acks & bit != 0 {
            return; // a duplicate: nothing changes
        }
        f.acks |= bit;
        f.count += 1;
        if !f.chosen && f.count as usize >= q2 {
            f.chosen = true;
            self.stats.slots_chosen += 1;
        }
        let mut advanced = false;
        while matches!(self.prop.inflight.front(), Some(f) if f.chosen) {
            self.prop.inflight.pop_front();
            self.prop.commit = self.prop.commit.next();
            advanced = true;
        }
        if advanced {
            self.pump();
        }
    }

    fn retransmit_accepts(&mut self) {
        let rt = u64::from(self.cfg.retransmit_ticks);
        let now = self.now;
        let mut slot = self.prop.commit;
        for i in 0..self.prop.inflight.len() {
            let f = &self.prop.inflight[i];
            if !f.chosen && now.saturating_sub(f.sent_at) >= rt {
                let (value, acks) = (f.value.clone(), f.acks);
                self.prop.inflight[i].sent_at = now;
                self.stats.accepts_retransmitted += 1;
                self.send_accept(slot, &value, Some(acks));
            }
            slot = slot.next();
        }
    }

    fn send_heartbeat(&mut self) {
        self.prop.last_heartbeat = self.now;
        // Trim at the lowest slot every learner has applied.
        let trim = self
            .topo
            .learners
            .iter()
            .filter_map(|l| self.topo.index(*l))
            .map(|i| self.prop.applied[i])
            .min()
            .unwrap_or(Slot::ZERO)
            .min(self.prop.commit);
        self.prop.trim = self.prop.trim.max(trim);
        let msg = Message::Heartbeat {
            ballot: self.prop.ballot,
            commit: self.prop.commit,
            trim: self.prop.trim,
        };
        for i in 0..self.topo.members.len() {
            let to = self.topo.members[i];
            if to != self.id {
                self.sink().send(to, msg.clone());
            }
        }
        // Our own acceptor and learner hear it directly.
        if self.roles.acceptor || self.roles.learner {
            let (b, c, t) = (self.prop.ballot, self.prop.commit, self.prop.trim);
            if self.roles.learner {
                self.learner_on_commit(b, c);
            }
            if self.roles.acceptor {
                self.acceptor.commit = self.acceptor.commit.max(c);
                if b >= self.storage.promised() {
                    self.storage.trim(t.min(self.acceptor.commit));
                }
            }
        }
    }

    /// An Applied report from learner `i` (member index).
    pub(crate) fn proposer_on_applied(&mut self, i: usize, applied: Slot) {
        if let Some(a) = self.prop.applied.get_mut(i) {
            *a = (*a).max(applied);
        }
    }
}
