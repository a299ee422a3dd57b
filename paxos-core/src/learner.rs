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

#[derive(Debug)]
struct Candidate<P> {
    ballot: Ballot,
    value: Option<P>,
    acks: u64,
}

#[derive(Debug)]
struct LearnerSlot<P> {
    cands: [Option<Candidate<P>>; CANDIDATES_PER_SLOT],
    chosen: Option<P>,
}

impl<P> LearnerSlot<P> {
    fn empty() -> Self {
        LearnerSlot { cands: [None, None, None], chosen: None }
    }
}

#[derive(Debug)]
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

    pub(crate) fn learner_on_ack(&mut self, acceptor_index: usize, ballot: Ballot, slot: Slot) {
        self.learner_record(ballot, slot, None, Some(acceptor_index));
    }

    pub(crate) fn learner_on_commit(&mut self, commit: Slot) {
        self.learner.commit_hint = self.learner.commit_hint.max(commit);
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
        if behind
            && now.saturating_sub(l.last_progress) >= rt
            && now.saturating_sub(l.repeat_sent) >= rt
        {
            let from = l.next;
            let to = l.commit_hint.min(l.next.plus(l.cap as u64));
            self.learner.repeat_sent = now;
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
        if low > self.learner.next && self.learner.snapshot_wanted.is_none_or(|w| w < low) {
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
