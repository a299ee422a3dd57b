//! The protocol messages exchanged between roles. `P` is the payload handle: a cheaply
//! clonable view of bytes (a `bytes::Bytes`, a refcounted mbuf slice, or `&[u8]` straight out
//! of a receive buffer). Values are never copied by the core once received.
//!
//! Every message is addressed to a node; the node hands it to whichever of its roles
//! handles that kind (acceptor: Prepare, Accept, Repeat, Heartbeat; proposer: Promise,
//! Accepted, Nack, Heartbeat, Applied; learner: Accept, Accepted, Learn, Heartbeat, Trimmed).

use crate::ids::{Ballot, Slot};

/// One accepted (slot, ballot, value) triple as an acceptor reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlotValue<P> {
    pub slot: Slot,
    pub ballot: Ballot,
    pub value: P,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message<P> {
    /// Phase 1a. Covers every slot >= `from` (Multi-Paxos: one prepare for the whole log tail).
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b, possibly split into `chunks` messages so that each fits a frame. `low` is the
    /// acceptor's trim point (slots below it are chosen and forgotten); `entries` are its
    /// accepted values for slots >= max(from, low). Chunk `i` of `chunks` (0-based).
    Promise { ballot: Ballot, low: Slot, chunk: u16, chunks: u16, entries: Vec<SlotValue<P>> },
    /// Phase 2a. `commit`: every slot below it is known chosen by the leader.
    Accept { ballot: Ballot, slot: Slot, commit: Slot, value: P },
    /// Phase 2b, sent to the ballot's leader and to every learner. Carries no value: learners
    /// got the value from the Accept (which the leader also sends to learners).
    Accepted { ballot: Ballot, slot: Slot },
    /// An acceptor refused `ballot` because it promised `promised` (> ballot).
    Nack { ballot: Ballot, promised: Ballot },
    /// Leader liveness and progress: slots below `commit` are chosen; acceptors may forget
    /// slots below `trim`.
    Heartbeat { ballot: Ballot, commit: Slot, trim: Slot },
    /// A learner asks an acceptor to repeat what it accepted in [from, to).
    Repeat { from: Slot, to: Slot },
    /// An acceptor's answer to Repeat: its accepted value for one slot (counts as an ack of
    /// `ballot` for `slot` at the learner). `ballot` is `Ballot::NONE` (and `value` empty)
    /// when the acceptor holds nothing for `slot`.
    Learn { ballot: Ballot, slot: Slot, value: P },
    /// An acceptor's answer to a Repeat below its trim point: fetch a snapshot covering
    /// everything below `low`.
    Trimmed { low: Slot },
    /// A learner's applied prefix (everything below `applied` is delivered), sent to the
    /// proposers; the leader trims the log at the minimum over all learners.
    Applied { applied: Slot },
}

impl<P> Message<P> {
    /// A short name for traces and counters.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Nack { .. } => "nack",
            Message::Heartbeat { .. } => "heartbeat",
            Message::Repeat { .. } => "repeat",
            Message::Learn { .. } => "learn",
            Message::Trimmed { .. } => "trimmed",
            Message::Applied { .. } => "applied",
        }
    }

    /// Re-wraps the payloads (e.g. from borrowed `&[u8]` to an owned handle).
    pub fn map_payload<Q>(self, mut f: impl FnMut(P) -> Q) -> Message<Q> {
        match self {
            Message::Prepare { ballot, from } => Message::Prepare { ballot, from },
            Message::Promise { ballot, low, chunk, chunks, entries } => Message::Promise {
                ballot,
                low,
                chunk,
                chunks,
                entries: entries
                    .into_iter()
                    .map(|e| SlotValue { slot: e.slot, ballot: e.ballot, value: f(e.value) })
                    .collect(),
            },
            Message::Accept { ballot, slot, commit, value } => {
                Message::Accept { ballot, slot, commit, value: f(value) }
            }
            Message::Accepted { ballot, slot } => Message::Accepted { ballot, slot },
            Message::Nack { ballot, promised } => Message::Nack { ballot, promised },
            Message::Heartbeat { ballot, commit, trim } => {
                Message::Heartbeat { ballot, commit, trim }
            }
            Message::Repeat { from, to } => Message::Repeat { from, to },
            Message::Learn { ballot, slot, value } => {
                Message::Learn { ballot, slot, value: f(value) }
            }
            Message::Trimmed { low } => Message::Trimmed { low },
            Message::Applied { applied } => Message::Applied { applied },
        }
    }
}
