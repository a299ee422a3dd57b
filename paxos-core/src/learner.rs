//! The learner: counts phase-2 acknowledgements per slot, delivers chosen slots strictly in
//! order, repairs gaps by asking acceptors to repeat, and reports its progress for trimming.

use crate::ids::{Ballot, ReplicaId, Slot};
use crate::message::Message;
use crate::node::Node;
use crate::output::{Decided, Event};
use crate::payload::{Payload, ValueBuilder};
use crate::storage::Storage;

/// Distinct ballots a learner tracks per undecided slot. After leader changes acceptors may
/// hold one slot's value under several ballots; a proof of choice is a phase-2 quorum at
/// one ballot, so a few candidates are kept and the lowest is evicted first.
pub const CANDIDATES_PER_SLOT: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Candidate<P> {
    ballot: Ballot,
    value: Option<P>,
    /// Acceptors (member-index bits) that accepted `ballot`, and how many bits are set.
    acks: u64,
    count: u32,
}

impl<P: Clone> Candidate<P> {
    /// Records the value and/or a vote; true when this ballot's value is now chosen (a
    /// phase-2 quorum of votes and the value known).
    #[inline]
    fn record(&mut self, value: Option<&P>, ack: Option<usize>, q2: usize) -> bool {
        if self.value.is_none() {
            if let Some(v) = value {
                self.value = Some(v.clone());
            }
        }
        if let Some(a) = ack {
            let bit = 1u64 << a;
            if self.acks & bit == 0 {
                self.acks |= bit;
                self.count += 1;
            }
        }
        self.value.is_some() && self.count as usize >= q2
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LearnerSlot<P> {
    cands: [Option<Candidate<P>>; CANDIDATES_PER_SLOT],
    chosen: Option<P>,
    /// Acceptors (member-index bits) that answered a Repeat for this slot, and the highest
    /// ballot among their answers with its value (see `learner_on_learn`).
    learned: u64,
    learned_best: Option<(Ballot, P)>,
}

impl<P> LearnerSlot<P> {
    fn empty() -> Self {
        LearnerSlot { cands: [None, None, None], chosen: None, learned: 0, learned_best: None }
    }

    /// Back to `empty()` in place, touching only what is set (a delivered slot has only its
    /// `learned` bits left: choosing clears the candidates and the best answer).
    #[inline]
    fn clear(&mut self) {
        self.chosen = None;
        self.learned = 0;
        self.clear_candidates();
    }

    /// Forgets every candidate and the best Repeat answer (the slot is decided).
    #[inline]
    fn clear_candidates(&mut self) {
        if self.learned_best.is_some() {
            self.learned_best = None;
        }
        for c in self.cands.iter_mut() {
            if c.is_some() {
                *c = None;
            }
        }
    }

    /// The position of `ballot`'s candidate: its own, else a free one, else the lowest
    /// ballot's if ours is higher (evicted); None if ours is the lowest.
    #[inline(never)]
    fn candidate_position(&mut self, ballot: Ballot) -> Option<usize> {
        if let Some(p) = self.cands.iter().position(|c| matches!(c, Some(c) if c.ballot == ballot))
        {
            return Some(p);
        }
        let p = match self.cands.iter().position(|c| c.is_none()) {
            Some(p) => p,
            None => {
                let (p, lowest) = self
                    .cands
                    .iter()
                    .enumerate()
                    .map(|(p, c)| (p, c.as_ref().map_or(Ballot::NONE, |c| c.ballot)))
                    .min_by_key(|(_, b)| *b)
                    .unwrap_or((0, Ballot::NONE));
                if lowest >= ballot {
                    return None;
                }
                p
            }
        };
        *self.cands.get_mut(p)? = Some(Candidate { ballot, value: None, acks: 0, count: 0 });
        Some(p)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Learner<P> {
    /// Next slot to deliver; everything below has been delivered.
    pub next: Slot,
    /// Slots [next, next + len) are buffered, at most `cap`. Slot `s` lives at
    /// `ring[s & (ring.len() - 1)]`, a power-of-two ring that grows (up to `cap` rounded up)
    /// only when a slot lies further ahead than it spans: buffering, recording and
    /// delivering a slot never move an entry, and the entries in use stay few and warm in
    /// cache. Every entry outside the buffered range is empty.
    ring: Vec<LearnerSlot<P>>,
    len: usize,
    /// Slots further ahead than this are not buffered (they are fetched again later).
    cap: usize,
    /// The highest commit point heard from a leader: slots below are chosen.
    commit_hint: Slot,
    last_progress: u64,
    repeat_sent: u64,
    /// One past the highest slot asked for by a Repeat, and whether the learner is catching
    /// up (a stalled Repeat started it; it ends when the learner reaches the commit point).
    repeat_to: Slot,
    catching_up: bool,
    last_report: u64,
    snapshot_wanted: Option<Slot>,
    /// The application's durable applied point (`Node::set_applied`), reported to the
    /// proposers.
    pub applied: Slot,
    /// A snapshot being fetched from a peer.
    pub fetch: Option<crate::snapshot::Fetch>,
}

impl<P> Learner<P> {
    pub fn new(window: usize) -> Self {
        let cap = (4 * window).max(64);
        Learner {
            next: Slot::ZERO,
            ring: Vec::new(),
            len: 0,
            cap,
            commit_hint: Slot::ZERO,
            last_progress: 0,
            repeat_sent: 0,
            repeat_to: Slot::ZERO,
            catching_up: false,
            last_report: 0,
            snapshot_wanted: None,
            applied: Slot::ZERO,
            fetch: None,
        }
    }

    pub(crate) fn forget_snapshot_wanted(&mut self) {
        self.snapshot_wanted = None;
        self.fetch = None;
    }

    #[inline]
    fn pos(&self, slot: Slot) -> usize {
        (slot.0 & (self.ring.len() as u64).wrapping_sub(1)) as usize
    }

    /// The entry of a buffered slot.
    #[inline]
    fn get_mut(&mut self, slot: Slot) -> Option<&mut LearnerSlot<P>> {
        let i = self.pos(slot);
        self.ring.get_mut(i)
    }

    #[inline]
    fn get(&self, slot: Slot) -> Option<&LearnerSlot<P>> {
        self.ring.get(self.pos(slot))
    }

    /// Makes the ring span at least `span` slots from `next` (a power of two, at least 8),
    /// moving the buffered entries to their places in the larger ring.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, span: usize) {
        let size = span.next_power_of_two().max(8);
        let mut ring: Vec<LearnerSlot<P>> = Vec::with_capacity(size);
        ring.resize_with(size, LearnerSlot::empty);
        let mut old = core::mem::take(&mut self.ring);
        let (old_mask, mask) = ((old.len() as u64).wrapping_sub(1), size as u64 - 1);
        for k in 0..self.len as u64 {
            let slot = self.next.plus(k);
            let from = old.get_mut((slot.0 & old_mask) as usize);
            if let (Some(from), Some(to)) = (from, ring.get_mut((slot.0 & mask) as usize)) {
                core::mem::swap(from, to);
            }
        }
        self.ring = ring;
    }

    /// The entry for `slot` if it may be buffered (`next <= slot < next + cap`), extending
    /// the buffered range to cover it.
    #[inline]
    fn buffer(&mut self, slot: Slot) -> Option<&mut LearnerSlot<P>> {
        if slot < self.next {
            return None;
        }
        let i = (slot.0 - self.next.0) as usize;
        if i >= self.cap {
            return None;
        }
        if i >= self.ring.len() {
            self.grow(i + 1);
        }
        self.len = self.len.max(i + 1);
        self.get_mut(slot)
    }

    /// The buffered slots in order (what a `VecDeque` from `next` would hold).
    fn buffered(&self) -> impl Iterator<Item = Option<&LearnerSlot<P>>> + '_ {
        (0..self.len as u64).map(move |k| self.get(self.next.plus(k)))
    }
}

/// Equality and hashing see the buffered slots in slot order, not the ring's layout.
impl<P: PartialEq> PartialEq for Learner<P> {
    fn eq(&self, o: &Self) -> bool {
        let empty = LearnerSlot::empty();
        self.next == o.next
            && self.len == o.len
            && self.cap == o.cap
            && self.commit_hint == o.commit_hint
            && self.last_progress == o.last_progress
            && self.repeat_sent == o.repeat_sent
            && self.repeat_to == o.repeat_to
            && self.catching_up == o.catching_up
            && self.last_report == o.last_report
            && self.snapshot_wanted == o.snapshot_wanted
            && self.applied == o.applied
            && self.fetch == o.fetch
            && self
                .buffered()
                .zip(o.buffered())
                .all(|(a, b)| a.unwrap_or(&empty) == b.unwrap_or(&empty))
    }
}

impl<P: Eq> Eq for Learner<P> {}

impl<P: core::hash::Hash> core::hash::Hash for Learner<P> {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        let empty = LearnerSlot::empty();
        self.next.hash(h);
        self.len.hash(h);
        for e in self.buffered() {
            e.unwrap_or(&empty).hash(h);
        }
        self.cap.hash(h);
        self.commit_hint.hash(h);
        self.last_progress.hash(h);
        self.repeat_sent.hash(h);
        self.repeat_to.hash(h);
        self.catching_up.hash(h);
        self.last_report.hash(h);
        self.snapshot_wanted.hash(h);
        self.applied.hash(h);
        self.fetch.hash(h);
    }
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    /// An acceptor's vote for (ballot, slot) and/or the value proposed at that ballot. `ack`
    /// is the voter's member index (None: a value without a vote, from an Accept).
    #[inline(always)]
    fn learner_record(
        &mut self,
        ballot: Ballot,
        slot: Slot,
        value: Option<&P>,
        ack: Option<usize>,
    ) {
        let q2 = self.cfg.phase2_quorum;
        let Some(e) = self.learner.buffer(slot) else { return };
        if e.chosen.is_some() {
            return;
        }
        // The usual cases: the first candidate is this ballot's, or there is none yet
        // (candidates are taken first-free and cleared all at once, so an empty first
        // position means all are empty).
        let pos = match &mut e.cands[0] {
            Some(c) if c.ballot == ballot => 0,
            first @ None => {
                *first = Some(Candidate { ballot, value: None, acks: 0, count: 0 });
                0
            }
            Some(_) => match e.candidate_position(ballot) {
                Some(p) => p,
                None => return,
            },
        };
        let Some(Some(c)) = e.cands.get_mut(pos) else { return };
        if c.record(value, ack, q2) {
            e.chosen = c.value.take();
            e.clear_candidates();
        }
    }

    #[inline]
    pub(crate) fn learner_on_value(
        &mut self,
        ballot: Ballot,
        slot: Slot,
        value: &P,
        ack: Option<usize>,
    ) {
        self.learner_record(ballot, slot, Some(value), ack);
    }

    /// A Learn: acceptor `acceptor_index`'s state for `slot` (`Ballot::NONE`: it holds
    /// nothing there), sent in answer to a Repeat.
    ///
    /// It counts as an ack at its ballot, as before. But a chosen slot can end up with no
    /// ballot held by a phase-2 quorum: v is chosen at b0, a leader that did not know it
    /// re-proposes v at b1 > b0 and gets through to only some of the b0 acceptors, and
    /// later leaders start above the slot because they know it is chosen. A learner that
    /// missed the original acks then never sees q2 acks at one ballot (found by paxos-sim,
    /// n=7 q1=1 q2=7; see sim/tests/core_regressions.rs). So, as in phase 1: answers from a
    /// phase-1 quorum about a slot that was already chosen when they were sent include one
    /// from the choosing phase-2 quorum (q1 + q2 > n), which holds b0 or a later ballot, and
    /// every ballot from b0 on carries v; so the highest-ballot value among them is v.
    /// Every Learn is such an answer: a learner asks only about slots below a commit point
    /// a leader announced, i.e. slots already chosen (checked again here).
    pub(crate) fn learner_on_learn(
        &mut self,
        acceptor_index: usize,
        ballot: Ballot,
        slot: Slot,
        value: &P,
    ) {
        if !ballot.is_none() {
            self.learner_record(ballot, slot, Some(value), Some(acceptor_index));
        }
        let q1 = self.cfg.phase1_quorum;
        let l = &mut self.learner;
        if slot >= l.commit_hint {
            return;
        }
        let Some(e) = l.buffer(slot) else { return };
        if e.chosen.is_some() {
            return;
        }
        e.learned |= 1 << acceptor_index;
        if !ballot.is_none() && !matches!(&e.learned_best, Some((b, _)) if *b >= ballot) {
            e.learned_best = Some((ballot, value.clone()));
        }
        if e.learned.count_ones() as usize >= q1 {
            if let Some((_, v)) = e.learned_best.take() {
                e.chosen = Some(v);
                e.clear_candidates();
            }
        }
    }

    #[inline]
    pub(crate) fn learner_on_ack(&mut self, acceptor_index: usize, ballot: Ballot, slot: Slot) {
        self.learner_record(ballot, slot, None, Some(acceptor_index));
    }

    /// The leader of `ballot` announced that every slot below `commit` is chosen.
    ///
    /// Besides marking the gap to repair, this decides every buffered slot for which we hold
    /// the value proposed *at `ballot`*: a leader proposes one value per slot at its ballot,
    /// and if that slot is chosen the chosen value is the leader's (chosen at `ballot` or
    /// later: the leader's value; chosen at a lower ballot before the leader's Phase 1: its
    /// phase-1 quorum reported it and the leader adopted it). A stale announcement is still
    /// true: a slot once chosen stays chosen. This is how learners learn when acceptors send
    /// `Accepted` only to the leader (`Config::accepted_to_learners` = false), and it
    /// shortens the wait after lost acks otherwise.
    pub(crate) fn learner_on_commit(&mut self, ballot: Ballot, commit: Slot) {
        let l = &mut self.learner;
        l.commit_hint = l.commit_hint.max(commit);
        if ballot.is_none() || commit <= l.next {
            return;
        }
        let upto = ((commit.0 - l.next.0) as usize).min(l.len);
        for k in 0..upto as u64 {
            let slot = l.next.plus(k);
            let Some(e) = l.get_mut(slot) else { continue };
            if e.chosen.is_some() {
                continue;
            }
            let found =
                e.cands.iter_mut().flatten().find(|c| c.ballot == ballot && c.value.is_some());
            if let Some(c) = found {
                e.chosen = c.value.take();
                e.clear_candidates();
            }
        }
    }

    /// Delivers every chosen slot at the head of the log, in order.
    #[inline]
    pub(crate) fn learner_deliver(&mut self) {
        let l = &self.learner;
        if self.roles.learner && l.len > 0 && matches!(l.get(l.next), Some(e) if e.chosen.is_some())
        {
            self.learner_deliver_chosen();
        }
    }

    #[inline(never)]
    fn learner_deliver_chosen(&mut self) {
        while self.learner.len > 0 {
            let slot = self.learner.next;
            let Some(e) = self.learner.get_mut(slot) else { break };
            let Some(value) = e.chosen.take() else { break };
            e.clear();
            self.decided.push(Decided { slot, value });
            self.learner.len -= 1;
            self.learner.next = slot.next();
            self.learner.last_progress = self.now;
            self.stats.slots_decided += 1;
        }
    }

    pub(crate) fn learner_tick(&mut self) {
        let now = self.now;
        let rt = u64::from(self.cfg.retransmit_ticks);
        let l = &self.learner;
        let behind = l.next < l.commit_hint;
        let end = l.commit_hint.min(l.next.plus(l.cap as u64));
        let stalled =
            now.saturating_sub(l.last_progress) >= rt && now.saturating_sub(l.repeat_sent) >= rt;
        // While catching up, ask for the next part of the buffer as soon as half of it is
        // free, instead of waiting for a stall each time: otherwise a learner that fell more
        // than a buffer behind gains at most `cap` slots per `retransmit_ticks` plus a round
        // trip, slower than a busy leader chooses them, and never catches up (found by
        // paxos-sim: a learner 3000 slots behind after the faults stopped).
        let ask_from = l.repeat_to.max(l.next);
        let stream = l.catching_up && end.0.saturating_sub(ask_from.0) >= (l.cap as u64 / 2).max(1);
        // Not hearing any leader (a partial cut can hide a live one from us): ask the
        // acceptors for the next slot now and then; their answers carry the commit point
        // they know, and catching up proceeds from there.
        let window = u64::from(self.cfg.election_timeout_min_ticks);
        let leaderless = !self.prop.is_leading()
            && self.leader_heard.is_none_or(|t| now.saturating_sub(t) >= window)
            && now.saturating_sub(l.repeat_sent) >= window;
        if !behind && leaderless && self.cfg.leader_stickiness {
            let from = l.next;
            self.learner.catching_up = false;
            self.learner.repeat_sent = now;
            self.stats.repeats_sent += 1;
            for i in 0..self.topo.acceptors.len() {
                let a = self.topo.acceptors[i];
                self.sink().send(a, Message::Repeat { from, to: from });
            }
        } else if !behind {
            self.learner.catching_up = false;
        } else if stalled || stream {
            let from = if stalled { l.next } else { ask_from };
            let to = end;
            self.learner.repeat_sent = now;
            self.learner.repeat_to = to;
            self.learner.catching_up = true;
            self.stats.repeats_sent += 1;
            for i in 0..self.topo.acceptors.len() {
                let a = self.topo.acceptors[i];
                self.sink().send(a, Message::Repeat { from, to });
            }
        }
        if now.saturating_sub(self.learner.last_report) >= u64::from(self.cfg.applied_report_ticks)
        {
            self.learner.last_report = now;
            let applied = self.learner.applied;
            for i in 0..self.topo.proposers.len() {
                let p = self.topo.proposers[i];
                self.sink().send(p, Message::Applied { applied });
            }
        }
    }

    /// Acceptor `from` has trimmed the log below `low`: slots we still need are gone. Ask
    /// for a snapshot (from a learner: `from` if it is one, see `snapshot`), and tell the
    /// application.
    pub(crate) fn learner_on_trimmed(&mut self, from: ReplicaId, low: Slot) {
        if low > self.learner.next && !matches!(self.learner.snapshot_wanted, Some(w) if w >= low) {
            self.learner.snapshot_wanted = Some(low);
            self.stats.snapshots_needed += 1;
            self.events.push(Event::SnapshotNeeded { low });
            self.start_fetch(from, low);
        }
    }

    pub(crate) fn learner_skip_to(&mut self, upto: Slot) {
        let l = &mut self.learner;
        if upto <= l.next {
            return;
        }
        let n = ((upto.0 - l.next.0) as usize).min(l.len);
        for k in 0..n as u64 {
            let slot = l.next.plus(k);
            if let Some(e) = l.get_mut(slot) {
                e.clear();
            }
        }
        l.len -= n;
        l.next = upto;
        l.commit_hint = l.commit_hint.max(upto);
        l.snapshot_wanted = None;
        l.last_progress = self.now;
        if matches!(&l.fetch, Some(f) if f.min <= upto) {
            l.fetch = None;
        }
    }
}
