//! The acceptor: Paxos's memory. Its promise and accepted values live in [`Storage`] and
//! are written before the reply that reveals them is queued; the node holds such replies
//! until a sync made the writes stable (the durability contract, see `storage`).

use crate::config::Config;
use crate::ids::{Ballot, ReplicaId, Slot};
use crate::message::{Message, SlotValue};
use crate::node::Sink;
use crate::payload::Payload;
use crate::proposer::MAX_PROMISE_CHUNKS;
use crate::storage::{Storage, StorageError};

/// Bytes a Promise spends before its entries, and per entry besides the value (exactly the
/// wire encoding's; see docs/wire-format.md).
pub(crate) const PROMISE_HEADER_BYTES: usize = 60;
pub(crate) const PROMISE_ENTRY_BYTES: usize = 20;
/// Most slots one Repeat may ask for; larger requests are clipped.
pub const MAX_REPEAT_SLOTS: u64 = 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Acceptor {
    /// Every slot below this is known chosen (from the leader's commit point). Volatile.
    pub commit: Slot,
}

impl Acceptor {
    /// Phase 1b. A ballot at least as high as the promise is promised (equal: a retransmitted
    /// prepare, or the next page, is answered again), and one page of the accepted values at
    /// or above `from` is reported: at most `Config::recovery_window` slots and
    /// `MAX_PROMISE_CHUNKS` messages,
    /// with `end` saying where the page stops and `high` where the log does.
    #[allow(clippy::too_many_arguments)]
    pub fn on_prepare<P: Payload, S: Storage<P>>(
        &mut self,
        cfg: &Config,
        storage: &mut S,
        sink: &mut Sink<'_, P>,
        from_node: ReplicaId,
        ballot: Ballot,
        from: Slot,
        forget_promise: bool,
    ) -> Result<(), StorageError> {
        let promised = storage.promised();
        if ballot < promised && !forget_promise {
            sink.stats.nacks_sent += 1;
            sink.send(from_node, Message::Nack { ballot, promised });
            return Ok(());
        }
        if ballot > promised && !forget_promise {
            storage.set_promised(ballot);
            *sink.unsynced = true;
        }
        // Slots below `low` are chosen (trimmed, or below a commit point the leader announced):
        // the new leader must not touch them and does not need their values.
        let low = storage.low().max(self.commit);
        let start = from.max(low);
        let high = storage.high();
        let limit = start.plus(cfg.recovery_window()).min(high);
        // One page, split into chunks that each fit a message.
        let budget = (cfg.max_message_bytes as usize).saturating_sub(PROMISE_HEADER_BYTES).max(1);
        let mut chunks: Vec<Vec<SlotValue<P>>> = Vec::new();
        let mut cur: Vec<SlotValue<P>> = Vec::new();
        let mut used = 0usize;
        let mut s = start;
        while s < limit {
            if let Some((b, value)) = storage.accepted(s)? {
                let size = PROMISE_ENTRY_BYTES + value.as_ref().len();
                if !cur.is_empty() && used + size > budget {
                    if chunks.len() + 1 >= usize::from(MAX_PROMISE_CHUNKS) {
                        break; // the page ends before `s`
                    }
                    chunks.push(core::mem::take(&mut cur));
                    used = 0;
                }
                used += size;
                cur.push(SlotValue { slot: s, ballot: b, value });
            }
            s = s.next();
        }
        let end = s.max(start);
        chunks.push(cur);
        let n = chunks.len() as u16; // at most MAX_PROMISE_CHUNKS
        for (i, entries) in chunks.into_iter().enumerate() {
            let chunk = i as u16;
            sink.send(
                from_node,
                Message::Promise { ballot, from, low, end, high, chunk, chunks: n, entries },
            );
        }
        Ok(())
    }

    /// Phase 2b. Accept unless a higher ballot was promised; tell the leader (and, with
    /// `accepted_to_learners`, every learner). Takes the value by move: it goes into storage
    /// without a refcount round trip.
    ///
    /// An Accept is dropped and counted when its slot lies a whole recovery window or more
    /// beyond the commit point (an honest leader never has more in flight), or
    /// `max_log_slots` or more beyond this acceptor's trim point: the log this acceptor
    /// holds (its index grows with the slot, holes included) stays bounded whatever a peer
    /// sends, and a leader whose log outruns the trim point waits (its retransmission is
    /// accepted once heartbeats moved the trim point on).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn on_accept<P: Payload, S: Storage<P>>(
        &mut self,
        cfg: &Config,
        storage: &mut S,
        sink: &mut Sink<'_, P>,
        from_node: ReplicaId,
        ballot: Ballot,
        slot: Slot,
        commit: Slot,
        value: P,
        bugs: AcceptorBugs,
    ) {
        let promised = storage.promised();
        if ballot < promised && !bugs.forget_promise {
            sink.stats.nacks_sent += 1;
            sink.send(from_node, Message::Nack { ballot, promised });
            return;
        }
        let window = cfg.recovery_window();
        let known = self.commit.max(commit);
        if commit > slot || slot >= known.plus(window) {
            // A leader's commit point never passes a slot it still proposes, and it never
            // proposes a (recovery) window or more ahead of it.
            sink.stats.accepts_beyond_window += 1;
            return;
        }
        if slot >= storage.low().plus(cfg.max_log_slots) {
            sink.stats.accepts_beyond_log += 1;
            return;
        }
        if ballot > promised && !bugs.forget_promise {
            storage.set_promised(ballot);
            *sink.unsynced = true;
        }
        self.commit = known;
        if slot < storage.low() {
            // Trimmed: chosen long ago and applied everywhere. Nothing to record, but still
            // acknowledge. A leader proposes `slot` only if every acceptor in its phase-1
            // quorum still holds it (it starts at the highest `low` they report), so its value
            // is the chosen one (every ballot above the choosing ballot proposes it). Staying
            // silent instead left a leader that restarted below the trim point waiting forever
            // for a phase-2 quorum that had trimmed the slot (found by paxos-sim, n=5 q1=1
            // q2=5; regression seeds in sim/tests/core_regressions.rs).
            sink.send_accepted(ballot.leader, ballot, slot);
            return;
        }
        storage.set_accepted(slot, ballot, value);
        if !bugs.accept_not_synced {
            *sink.unsynced = true;
        }
        sink.send_accepted(ballot.leader, ballot, slot);
    }

    /// The leader's heartbeat: learn the commit point, forget what a majority of learners
    /// applied durably, and tell a deposed leader about the higher promise.
    pub fn on_heartbeat<P: Payload, S: Storage<P>>(
        &mut self,
        storage: &mut S,
        sink: &mut Sink<'_, P>,
        from_node: ReplicaId,
        ballot: Ballot,
        commit: Slot,
        trim: Slot,
    ) {
        let promised = storage.promised();
        if ballot < promised {
            sink.stats.nacks_sent += 1;
            sink.send(from_node, Message::Nack { ballot, promised });
            return;
        }
        self.commit = self.commit.max(commit);
        // The trim point is below a majority of learners' durable state, hence below the
        // commit point.
        let below = trim.min(self.commit);
        if below > storage.low() {
            storage.trim(below);
            *sink.unsynced = true;
        }
    }

    /// A learner asks for [from, to): answer every slot with a Learn carrying what this
    /// acceptor holds there (`Ballot::NONE` and the `empty` value if nothing), and with
    /// Trimmed if the learner is below what this acceptor still holds.
    ///
    /// The "nothing here" answers matter: they let the learner count a phase-1-style quorum
    /// of answers for a slot whose acceptors hold the chosen value under different ballots
    /// (see `learner_on_learn`).
    pub fn on_repeat<P: Payload, S: Storage<P>>(
        &mut self,
        storage: &S,
        sink: &mut Sink<'_, P>,
        from_node: ReplicaId,
        from: Slot,
        to: Slot,
        empty: &P,
    ) -> Result<(), StorageError> {
        if from == to {
            // A learner that hears no leader asks what is known chosen.
            sink.send(from_node, Message::Committed { commit: self.commit });
            return Ok(());
        }
        let to = to.min(from.plus(MAX_REPEAT_SLOTS));
        let mut s = from;
        if s < storage.low() {
            sink.send(from_node, Message::Trimmed { low: storage.low() });
            s = storage.low();
        }
        while s < to {
            let msg = match storage.accepted(s)? {
                Some((ballot, value)) => Message::Learn { ballot, slot: s, value },
                None => Message::Learn { ballot: Ballot::NONE, slot: s, value: empty.clone() },
            };
            sink.send(from_node, msg);
            s = s.next();
        }
        Ok(())
    }
}

/// The planted acceptor bugs (`crate::Bugs`) `on_accept` obeys.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AcceptorBugs {
    pub forget_promise: bool,
    pub accept_not_synced: bool,
}
