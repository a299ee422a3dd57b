//! The proposer: runs Phase 1 once per leadership over the whole log tail, in pages, then
//! Phase 2 per slot with up to `window` slots in flight, batching commands into slots.
//!
//! ## Phase 1 in pages
//! A `Prepare { ballot, from }` promises every slot from `from` on, but an acceptor answers
//! with one *page* of what it accepted there: at most `Config::recovery_window` slots and
//! [`MAX_PROMISE_CHUNKS`] messages (`Promise { end, high, .. }`: the page covers slots
//! below `end`; `high` is where its log ends). A candidate becomes leader as soon as a
//! `q1`-quorum answered the first page, re-proposes that page's values through the recovery
//! window,
//! and only then asks for the next page (`Prepare { from: end }`, same ballot) from any
//! `q1`-quorum. It proposes no new command before the last page is in. So a log tail of any
//! length is recovered with bounded messages and memory: one page of adopted values and one
//! window of proposals at a time.

use crate::ids::{Ballot, Slot};
use crate::message::{Message, SlotValue};
use crate::node::{Node, Sink};
use crate::output::{Event, ProposeError};
use crate::payload::{record_len, Payload, ValueBuilder};
use crate::storage::Storage;
use std::collections::{BTreeMap, VecDeque};

/// Most messages one page of a Promise may take (the acceptor ends the page early instead).
pub const MAX_PROMISE_CHUNKS: u16 = 64;

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

/// One acceptor's answer to the page being collected, assembled from its chunks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PageAnswer {
    /// Bit i: chunk i arrived.
    got: u64,
    chunks: u16,
    missing: u16,
    low: Slot,
    end: Slot,
    high: Slot,
}

impl PageAnswer {
    fn complete(&self) -> bool {
        self.missing == 0
    }
    /// This answer reached the end of the acceptor's log.
    fn exhausted(&self) -> bool {
        self.end >= self.high
    }
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
    /// The page being collected starts here; answers to it by member index.
    page_from: Slot,
    answers: Vec<Option<PageAnswer>>,
    /// The highest-ballot value per slot of the page being collected (at most `window`).
    adopted: BTreeMap<Slot, (Ballot, P)>,
    /// Asking for a page now (Prepares out, answers being assembled).
    collecting: bool,
    /// The next page to ask for once `recovered` is proposed; None: the last page is in.
    next_page: Option<Slot>,
    /// Values of the decided pages, waiting for window room (at most one page).
    recovered: VecDeque<P>,
    /// Slots below are chosen (an answer's `low`): once every slot in flight is chosen, the
    /// commit point and the next slot jump here.
    skip_to: Option<Slot>,
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
    /// Durable applied point last reported by each member's learner (by member index).
    applied: Vec<Slot>,
    pub trim: Slot,
    /// Check-quorum: when each acceptor (by member index) last showed it follows our
    /// ballot (an Accepted, Promise or HeartbeatAck for it), and when we began to lead.
    heard: Vec<Option<u64>>,
    leading_since: u64,
}

impl<P> Proposer<P> {
    pub fn new(window: usize, max_pending: usize, members: usize) -> Self {
        Proposer {
            phase: Phase::Follower,
            ballot: Ballot::NONE,
            max_seen: Ballot::NONE,
            p1_from: Slot::ZERO,
            page_from: Slot::ZERO,
            answers: (0..members).map(|_| None).collect(),
            adopted: BTreeMap::new(),
            collecting: false,
            next_page: None,
            recovered: VecDeque::with_capacity(window),
            skip_to: None,
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
            heard: vec![None; members],
            leading_since: 0,
        }
    }
    pub fn is_leading(&self) -> bool {
        self.phase == Phase::Leading
    }
    pub fn is_follower(&self) -> bool {
        self.phase == Phase::Follower
    }
    pub fn is_preparing(&self) -> bool {
        self.phase == Phase::Preparing
    }
    fn clear_phase1(&mut self) {
        for a in self.answers.iter_mut() {
            *a = None;
        }
        self.adopted.clear();
        self.collecting = false;
        self.next_page = None;
        self.recovered.clear();
        self.skip_to = None;
    }
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    pub(crate) fn proposer_tick(&mut self) {
        let now = self.now;
        let rt = u64::from(self.cfg.retransmit_ticks);
        match self.prop.phase {
            Phase::Follower => {
                if now.saturating_sub(self.leader_contact) >= self.election_timeout
                    && self.rejoin.as_ref().is_none_or(|r| r.answered())
                {
                    self.start_election();
                }
            }
            Phase::Preparing => {
                if now.saturating_sub(self.prop.p1_started) >= self.election_timeout {
                    // No quorum of promises in time: try again, higher.
                    self.start_election();
                } else if now.saturating_sub(self.prop.p1_sent) >= rt {
                    self.send_prepares(true);
                }
            }
            Phase::Leading => {
                if self.cfg.check_quorum && !self.quorum_heard() {
                    self.stats.check_quorum_step_downs += 1;
                    self.proposer_step_down();
                    return;
                }
                if self.prop.collecting && now.saturating_sub(self.prop.p1_sent) >= rt {
                    self.send_prepares(true);
                }
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
        let Some(ballot) = self.prop.max_seen.max(self.prop.ballot).checked_next_for(self.id)
        else {
            // Every round is used up (someone sent round u32::MAX): never wrap to a ballot
            // that was used before. This proposer can no longer lead.
            self.stats.ballots_exhausted += 1;
            self.reset_election_timer();
            return;
        };
        self.stats.elections_started += 1;
        self.prop.ballot = ballot;
        self.prop.max_seen = ballot;
        // Never use a ballot twice, even across a restart: a restarted proposer recovers
        // `max_seen` from `storage.promised()`, so record the ballot there before any Prepare
        // leaves (a Prepare is held until the sync makes it stable). Relying on this
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
        self.prop.clear_phase1();
        self.reset_election_timer();
        self.prop.p1_started = self.now;
        self.begin_page(self.prop.p1_from);
    }

    /// Asks every acceptor for the page of phase 1 that starts at `from`.
    fn begin_page(&mut self, from: Slot) {
        for a in self.prop.answers.iter_mut() {
            *a = None;
        }
        self.prop.adopted.clear();
        self.prop.page_from = from;
        self.prop.collecting = true;
        self.stats.promise_pages += 1;
        self.send_prepares(false);
    }

    fn send_prepares(&mut self, only_missing: bool) {
        self.prop.p1_sent = self.now;
        let (ballot, from) = (self.prop.ballot, self.prop.page_from);
        for i in 0..self.topo.acceptors.len() {
            let a = self.topo.acceptors[i];
            if only_missing {
                let idx = self.topo.index(a).unwrap_or(0);
                if matches!(&self.prop.answers[idx], Some(p) if p.complete()) {
                    continue;
                }
            }
            self.sink().send(a, Message::Prepare { ballot, from });
        }
    }

    /// A chunk of a Promise page from acceptor `idx` (member index; `step` checked the
    /// sender's role).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn proposer_on_promise(
        &mut self,
        idx: usize,
        ballot: Ballot,
        from: Slot,
        low: Slot,
        end: Slot,
        high: Slot,
        chunk: u16,
        chunks: u16,
        entries: Vec<SlotValue<P>>,
    ) {
        self.proposer_heard(idx, ballot);
        if !self.prop.collecting
            || self.prop.phase == Phase::Follower
            || ballot != self.prop.ballot
            || from != self.prop.page_from
            || chunks == 0
            || chunks > MAX_PROMISE_CHUNKS
            || chunk >= chunks
        {
            return;
        }
        let start = from.max(low);
        let window = self.cfg.recovery_window();
        let absurd = end < start
            || end > start.plus(window)
            || entries.iter().any(|e| e.slot < start || e.slot >= end || e.ballot > ballot);
        if absurd {
            // Corrupt, or from an acceptor that broke its promise: do not count it.
            // (Liveness only: safety needs nothing from an acceptor we do not count.)
            self.stats.promises_rejected += 1;
            return;
        }
        let fresh = || PageAnswer { got: 0, chunks, missing: chunks, low, end, high };
        let state = self.prop.answers[idx].get_or_insert_with(fresh);
        if (state.chunks, state.low, state.end, state.high) != (chunks, low, end, high) {
            // A chunk of a different answer: the acceptor restarted (its volatile commit
            // point, hence `low`, changed) or its log grew, and it answered a retransmitted
            // Prepare with another split. Merging chunk 0 of one answer with chunk 1 of the
            // other loses the slots between their split points, and the leader would fill a
            // possibly chosen slot with a no-op (paxos-sim test
            // promise_chunks_of_two_answers_are_not_merged). Within one incarnation the
            // answer to our ballot cannot lose values (only we could change its state at this
            // ballot), so start over with this answer. The entries already adopted from the
            // other one are real accepted values of an acceptor that promised us: keeping
            // them is safe.
            if state.complete() {
                return; // counted already: a straggler of a retransmission
            }
            *state = fresh();
        }
        let bit = 1u64 << chunk;
        if state.got & bit != 0 {
            return; // a duplicate
        }
        state.got |= bit;
        state.missing -= 1;
        for e in entries {
            if self.bugs.leader_ignores_accepted {
                continue;
            }
            // SAFETY OF PAXOS: per slot, adopt the value accepted with the highest ballot
            // among the promises. Any value that may have been chosen at a lower ballot was
            // accepted by a phase-2 quorum, which intersects our phase-1 quorum, and every
            // ballot between that one and ours proposed the same value: so the highest
            // accepted ballot carries it. (`Bugs::leader_adopts_lowest` inverts the order,
            // for proving that the checkers catch it.)
            let keep = match self.prop.adopted.get(&e.slot) {
                Some((b, _)) if self.bugs.leader_adopts_lowest => *b <= e.ballot,
                Some((b, _)) => *b >= e.ballot,
                None => false,
            };
            if !keep {
                self.prop.adopted.insert(e.slot, (e.ballot, e.value));
            }
        }
        let complete =
            self.prop.answers.iter().filter(|p| matches!(p, Some(p) if p.complete())).count();
        if complete >= self.cfg.phase1_quorum {
            self.page_decided();
        }
    }

    /// A `q1`-quorum answered the page being collected: decide its slots (highest-ballot
    /// value, or a no-op), queue them for phase 2, and become leader if this was the first
    /// page.
    fn page_decided(&mut self) {
        let mut skip = Slot::ZERO;
        let mut page_end: Option<Slot> = None;
        for a in self.prop.answers.iter().flatten().filter(|a| a.complete()) {
            // Slots below an answer's `low` are chosen: never propose there.
            skip = skip.max(a.low);
            // Slots at or above a non-exhausted answer's `end` are not covered by it yet.
            if !a.exhausted() {
                page_end = Some(page_end.map_or(a.end, |e| e.min(a.end)));
            }
        }
        let lo = self.prop.page_from.max(skip);
        let hi = match page_end {
            Some(e) => e.max(lo),
            // Every answer reached its log's end: the tail ends after the last value.
            None => self.prop.adopted.keys().next_back().map_or(lo, |s| s.next().max(lo)),
        };
        let adopted = core::mem::take(&mut self.prop.adopted);
        self.prop.collecting = false;
        self.prop.next_page = page_end.map(|_| hi);
        let first = self.prop.phase == Phase::Preparing;
        if first {
            self.become_leader(lo);
        } else if lo > self.prop.next_slot {
            self.prop.skip_to = Some(lo);
        }
        let mut s = lo;
        while s < hi {
            let value = match adopted.get(&s) {
                Some((_, v)) => v.clone(),
                None => self.builder.noop(),
            };
            self.prop.recovered.push_back(value);
            s = s.next();
        }
        self.pump();
    }

    /// Check-quorum: false once this leader has led for an election timeout (the
    /// maximum) without hearing, within the last such timeout, from a phase-2 quorum of
    /// acceptors (itself included while it votes).
    fn quorum_heard(&self) -> bool {
        // The longest election timeout: a leader that merely heard late (a round trip plus
        // a heartbeat interval can approach the shortest one) is not deposed by itself.
        let window = u64::from(self.cfg.election_timeout_max_ticks);
        let now = self.now;
        if now.saturating_sub(self.prop.leading_since) < window {
            return true;
        }
        let mut live = 0;
        for a in &self.topo.acceptors {
            let fresh = if *a == self.id {
                // Our own vote, unless we lost it (rejoining, or a higher promise).
                self.rejoin.is_none() && self.storage.promised() <= self.prop.ballot
            } else {
                let heard = self.topo.index(*a).and_then(|i| self.prop.heard[i]);
                heard.is_some_and(|t| now.saturating_sub(t) < window)
            };
            live += usize::from(fresh);
        }
        live >= self.cfg.phase2_quorum
    }

    /// Acceptor `idx` (member index) answered for `ballot`: check-quorum evidence.
    #[inline]
    pub(crate) fn proposer_heard(&mut self, idx: usize, ballot: Ballot) {
        if ballot == self.prop.ballot {
            if let Some(h) = self.prop.heard.get_mut(idx) {
                *h = Some(self.now);
            }
        }
    }

    fn become_leader(&mut self, start: Slot) {
        let ballot = self.prop.ballot;
        self.prop.phase = Phase::Leading;
        self.prop.leading_since = self.now;
        self.stats.times_leader += 1;
        self.prop.commit = start;
        self.prop.next_slot = start;
        self.prop.inflight.clear();
        self.prop.open_commands = 0;
        self.prop.open_since = self.now;
        self.leader = ballot;
        self.events.push(Event::BecameLeader { ballot, from: start });
        self.send_heartbeat();
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
            self.prop.clear_phase1();
            if self.builder.open_len() > 0 {
                let _ = self.builder.seal(); // abandon the open batch
            }
            self.prop.open_commands = 0;
            self.events
                .push(Event::SteppedDown { ballot: self.prop.ballot, dropped_batches: dropped });
        }
    }

    /// A Nack from acceptor `idx`: it promised `promised`, above our `ballot`.
    pub(crate) fn proposer_on_nack(&mut self, idx: usize, ballot: Ballot, promised: Ballot) {
        if promised > self.prop.max_seen {
            self.prop.max_seen = promised;
        }
        if ballot != self.prop.ballot || promised <= ballot || self.prop.is_follower() {
            return;
        }
        if self.cfg.leader_stickiness && self.prop.is_leading() && !self.prop.collecting {
            // One acceptor that promised a higher ballot (say, a replica that came back and
            // ran for leader on its own while the others stuck with us) does not depose a
            // leader that still reaches a phase-2 quorum: it no longer counts as heard, and
            // check-quorum decides at the next tick. A candidate that won a quorum reaches
            // us through its Accepts and heartbeats, which depose us at once. (Still in
            // phase 1, we step down: that acceptor's promise may be one we need, as with
            // q1 = n, and it will never come; found by the simulator, swarm seed 393.)
            if let Some(h) = self.prop.heard.get_mut(idx) {
                *h = None;
            }
            return;
        }
        self.proposer_step_down();
    }

    pub(crate) fn proposer_propose(&mut self, command: &[u8]) -> Result<(), ProposeError> {
        if self.failed.is_some() || !self.roles.proposer || self.prop.phase != Phase::Leading {
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

    /// Proposes while the window has room: first the values recovered by phase 1 (asking
    /// for the next page when they are all out), then pending batches once recovery ends.
    pub(crate) fn pump(&mut self) {
        if self.prop.phase != Phase::Leading {
            return;
        }
        loop {
            if let Some(to) = self.prop.skip_to {
                if !self.prop.inflight.is_empty() {
                    break;
                }
                // Everything we proposed is chosen and so is every slot below `to`.
                self.prop.commit = self.prop.commit.max(to);
                self.prop.next_slot = self.prop.next_slot.max(to);
                self.prop.skip_to = None;
            }
            let room = |w: u64| self.prop.next_slot < self.prop.commit.plus(w);
            if !self.prop.recovered.is_empty() {
                // Recovered values may use the larger recovery window.
                if !room(self.cfg.recovery_window()) {
                    break;
                }
                if let Some(v) = self.prop.recovered.pop_front() {
                    self.propose_slot(v);
                }
                continue;
            }
            if !room(u64::from(self.cfg.window)) {
                break;
            }
            if self.prop.collecting {
                break;
            }
            if let Some(from) = self.prop.next_page.take() {
                self.begin_page(from);
                break;
            }
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
                held: &mut self.held,
                stats: &mut self.stats,
                unsynced: &mut self.unsynced,
                syncing: self.sync_started > self.sync_completed,
                hold: self.hold,
                learners: &[],
            };
            let targets = self.topo.accept_targets.iter().copied();
            // An Accept reveals no acceptor state: never held (see `reveals_stable_state`).
            sink.send_each(false, targets, |_| Message::Accept {
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
        self.proposer_heard(idx, ballot);
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

    /// Where the log may be trimmed: the highest slot below which a majority of learners
    /// hold durable application state (their `Applied` reports), never above the commit
    /// point. A majority, not all: a dead learner does not hold trim back forever (it
    /// installs a snapshot when it returns), and losing a minority of learners' state still
    /// leaves a copy of every trimmed slot.
    fn trim_point(&self) -> Slot {
        let mut reports = [Slot::ZERO; crate::config::MAX_MEMBERS];
        let mut n = 0;
        for l in &self.topo.learners {
            if let Some(i) = self.topo.index(*l) {
                reports[n] = self.prop.applied[i];
                n += 1;
            }
        }
        let reports = &mut reports[..n];
        reports.sort_unstable();
        let point = if self.bugs.trim_at_max_applied {
            reports.last().copied()
        } else {
            // The (n/2 + 1)-th highest report.
            n.checked_sub(n / 2 + 1).and_then(|k| reports.get(k).copied())
        };
        point.unwrap_or(Slot::ZERO).min(self.prop.commit)
    }

    fn send_heartbeat(&mut self) {
        self.prop.last_heartbeat = self.now;
        let trim = self.trim_point();
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
            if self.roles.acceptor && self.rejoin.is_none() {
                self.acceptor.commit = self.acceptor.commit.max(c);
                if b >= self.storage.promised() {
                    self.trim_storage(t.min(self.acceptor.commit));
                }
            }
        }
    }

    /// An Applied report from learner `i` (member index). The latest report counts, not the
    /// highest: a learner that restarted from older durable state reports less (a stale
    /// report arriving late only holds trim back for a while).
    pub(crate) fn proposer_on_applied(&mut self, i: usize, applied: Slot) {
        if let Some(a) = self.prop.applied.get_mut(i) {
            *a = applied;
        }
    }
}
