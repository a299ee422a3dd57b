//! The acceptor: Paxos's memory. Its promise and accepted values live in [`Storage`] and
//! are written before the reply that reveals them is queued (the durability contract).

use crate::config::Config;
use crate::ids::{Ballot, ReplicaId, Slot};
use crate::message::{Message, SlotValue};
use crate::node::Sink;
use crate::payload::Payload;
use crate::storage::Storage;

/// Fixed bytes a Promise spends before its entries, and per entry besides the value
/// (upper bounds of the wire encoding; see docs/wire-format.md).
pub(crate) const PROMISE_HEADER_BYTES: usize = 48;
pub(crate) const PROMISE_ENTRY_BYTES: usize = 24;
/// Most slots one Repeat may ask for; larger requests are clipped.
pub const MAX_REPEAT_SLOTS: u64 = 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Acceptor {
    /// Every slot below this is known chosen (from the leader's commit point). Volatile.
    pub commit: Slot,
}

impl Acceptor {
    /// Phase 1b. A ballot at least as high as the promise is promised (equal: a retransmitted
    /// prepare is answered again), and every accepted value at or above `from` is reported.
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
    ) {
        let promised = storage.promised();
        if ballot < promised && !forget_promise {
            sink.stats.nacks_sent += 1;
            sink.send(from_node, Message::Nack { ballot, promised });
            return;
        }
        if ballot > promised && !forget_promise {
            storage.set_promised(ballot);
            *sink.unsynced = true;
        }
        // Slots below `low` are chosen (trimmed, or below a commit point the leader announced):
        // the new leader must not touch them and does not need their values.
        let low = storage.low().max(self.commit);
        let start = from.max(low);
        let mut entries = Vec::new();
        storage.accepted_range(start, storage.high(), &mut entries);
        // Split into chunks that each fit a message.
        let budget = (cfg.max_message_bytes as usize).saturating_sub(PROMISE_HEADER_BYTES).max(1);
        let mut chunks: Vec<Vec<SlotValue<P>>> = Vec::new();
        let mut cur: Vec<SlotValue<P>> = Vec::new();
        let mut used = 0usize;
        for e in entries {
            let sz = PROMISE_ENTRY_BYTES + e.value.as_ref().len();
            if !cur.is_empty() && used + sz > budget {
                chunks.push(core::mem::take(&mut cur));
                used = 0;
            }
            used += sz;
            cur.push(e);
        }
        if !cur.is_empty() || chunks.is_empty() {
            chunks.push(cur);
        }
        let n = chunks.len().min(u16::MAX as usize) as u16;
        for (i, entries) in chunks.into_iter().enumerate().take(n as usize) {
            sink.send(
                from_node,
                Message::Promise { ballot, low, chunk: i as u16, chunks: n, entries },
            );
        }
    }

    /// Phase 2b. Accept unless a higher ballot was promised; tell the leader and every learner.
    /// Takes the value by move: it goes into storage without a refcount round trip.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn on_accept<P: Payload, S: Storage<P>>(
        &mut self,
        storage: &mut S,
        sink: &mut Sink<'_, P>,
        from_node: ReplicaId,
        ballot: Ballot,
        slot: Slot,
        commit: Slot,
        value: P,
        forget_promise: bool,
    ) {
        let promised = storage.promised();
        if ballot < promised && !forget_promise {
            sink.stats.nacks_sent += 1;
            sink.send(from_node, Message::Nack { ballot, promised });
            return;
        }
        if ballot > promised && !forget_promise {
            storage.set_promised(ballot);
            *sink.unsynced = true;
        }
        self.commit = self.commit.max(commit);
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
        *sink.unsynced = true;
        sink.send_accepted(ballot.leader, ballot, slot);
    }

    /// The leader's heartbeat: learn the commit point, forget what every learner applied,
    /// and tell a deposed leader about the higher promise.
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
        // The trim point is below every learner's applied slot, hence below the commit point.
        storage.trim(trim.min(self.commit));
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
    ) {
        let to = to.min(from.plus(MAX_REPEAT_SLOTS));
        let mut s = from;
        if s < storage.low() {
            sink.send(from_node, Message::Trimmed { low: storage.low() });
            s = storage.low();
        }
        while s < to {
            let msg = match storage.accepted(s) {
                Some((ballot, value)) => Message::Learn { ballot, slot: s, value: value.clone() },
                None => Message::Learn { ballot: Ballot::NONE, slot: s, value: empty.clone() },
            };
            sink.send(from_node, msg);
            s = s.next();
        }
    }
}
