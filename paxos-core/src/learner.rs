//! The learner: counts phase-2 acknowledgements per slot, delivers chosen slots strictly in
//! order, repairs gaps by asking acceptors to repeat, and reports its progress for trimming.

use crate::ids::{Ballot, Slot};
use crate::message::Message;
use crate::node::Node;
use crate::output::{Decided, Event};
use crate::payload::{Payload, ValueBuilder};
use crate::storage::Storage;
use std::collections::VecDeque;

/// Distinct ballots a learner tracks per undecided slot. After leader changes acceptors may
/// hold one slot's value under several ballots; a proof of choice is a phase-2 quorum at
/// one ballot, so a few candidates are kept and the lowest is evicted first.
pub const CANDIDATES_PER_SLOT: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Candidate<P> {
    ballot: Ballot,
    value: Option<P>,
    acks: u64,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Learner<P> {
    /// Next slot to deliver; everything below has been delivered.
    pub next: Slot,
    /// Slots [next, next + len), at most `cap`.
    slots: VecDeque<LearnerSlot<P>>,
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
}

impl<P> Learner<P> {
    pub fn new(window: usize) -> Self {
        let cap = (4 * window).max(64);
        Learner {
            next: Slot::ZERO,
            slots: VecDeque::with_capacity(cap),
            cap,
            commit_hint: Slot::ZERO,
            last_progress: 0,
            repeat_sent: 0,
            repeat_to: Slot::ZERO,
            catching_up: false,
            last_report: 0,
            snapshot_wanted: None,
        }
    }
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    /// An acceptor's vote for (ballot, slot) and/or the value proposed at that ballot. `ack`
    /// is the voter's member index (None: a value without a vote, from an Accept).
    fn learner_record(
        &mut self,
        ballot: Ballot,
        slot: Slot,
        value: Option<&P>,
        ack: Option<usize>,
    ) {
        let l = &mut self.learner;
        if slot < l.next {
            return;
        }
        let i = (slot.0 - l.next.0) as usize;
        if i >= l.cap {
            return;
        }
        while l.slots.len() <= i {
            l.slots.push_back(LearnerSlot::empty());
        }
        let e = &mut l.slots[i];
        if e.chosen.is_some() {
            return;
        }
        // Find this ballot's candidate, else a free one, else evict the lowest ballot if ours
        // is higher.
        let pos = match e.cands.iter().position(|c| matches!(c, Some(c) if c.ballot == ballot)) {
            Some(p) => p,
            None => {
                let free = e.cands.iter().position(|c| c.is_none());
                let p = match free {
                    Some(p) => p,
                    None => {
                        let (p, lowest) = e
                            .cands
                            .iter()
                            .enumerate()
                            .map(|(p, c)| (p, c.as_ref().map_or(Ballot::NONE, |c| c.ballot)))
                            .min_by_key(|(_, b)| *b)
                            .unwrap_or((0, Ballot::NONE));
                        if lowest >= ballot {
                            return;
                        }
                        p
                    }
                };
                e.cands[p] = Some(Candidate { ballot, value: None, acks: 0 });
                p
            }
        };
        let Some(c) = e.cands[pos].as_mut() else { return };
        if c.value.is_none() {
            if let Some(v) = value {
                c.value = Some(v.clone());
            }
        }
        if let Some(a) = ack {
            c.acks |= 1 << a;
        }
        if c.value.is_some() && c.acks.count_ones() as usize >= self.cfg.phase2_quorum {
            e.chosen = c.value.take();
            e.cands = [None, None, None];
            e.learned_best = None;
        }
    }

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
        if slot < l.next || slot >= l.commit_hint {
            return;
        }
        let i = (slot.0 - l.next.0) as usize;
        if i >= l.cap {
            return;
        }
        while l.slots.len() <= i {
            l.slots.push_back(LearnerSlot::empty());
        }
        let e = &mut l.slots[i];
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
                e.cands = [None, None, None];
            }
        }
    }

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
        let upto = ((commit.0 - l.next.0) as usize).min(l.slots.len());
        for e in l.slots.iter_mut().take(upto) {
            if e.chosen.is_some() {
                continue;
            }
            let found =
                e.cands.iter_mut().flatten().find(|c| c.ballot == ballot && c.value.is_some());
            if let Some(c) = found {
                e.chosen = c.value.take();
                e.cands = [None, None, None];
                e.learned_best = None;
            }
        }
    }

    /// Delivers every chosen slot at the head of the log, in order.
    pub(crate) fn learner_deliver(&mut self) {
        if !self.roles.learner {
            return;
        }
        while matches!(self.learner.slots.front(), Some(s) if s.chosen.is_some()) {
            let Some(mut s) = self.learner.slots.pop_front() else { break };
            let Some(value) = s.chosen.take() else { break };
            self.decided.push(Decided { slot: self.learner.next, value });
            self.learner.next = self.learner.next.next();
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
        if !behind {
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
            let applied = self.learner.next;
            for i in 0..self.topo.proposers.len() {
                let p = self.topo.proposers[i];
                self.sink().send(p, Message::Applied { applied });
            }
        }
    }

    pub(crate) fn learner_on_trimmed(&mut self, low: Slot) {
        if low > self.learner.next && !matches!(self.learner.snapshot_wanted, Some(w) if w >= low) {
            self.learner.snapshot_wanted = Some(low);
            self.stats.snapshots_needed += 1;
            self.events.push(Event::SnapshotNeeded { low });
        }
    }

    pub(crate) fn learner_skip_to(&mut self, upto: Slot) {
        let l = &mut self.learner;
        if upto <= l.next {
            return;
        }
        let n = ((upto.0 - l.next.0) as usize).min(l.slots.len());
        l.slots.drain(..n);
        l.next = upto;
        l.commit_hint = l.commit_hint.max(upto);
        l.snapshot_wanted = None;
        l.last_progress = self.now;
    }
}
