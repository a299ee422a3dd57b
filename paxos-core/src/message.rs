//! The protocol messages exchanged between roles. `P` is the payload handle: a cheaply
//! clonable view of bytes (a `bytes::Bytes`, a refcounted mbuf slice, or `&[u8]` straight out
//! of a receive buffer). Values are never copied by the core once received.
//!
//! Every message is addressed to a node; the node hands it to whichever of its roles
//! handles that kind (acceptor: Prepare, Accept, Repeat, Heartbeat; proposer: Promise,
//! Accepted, Nack, Heartbeat, HeartbeatAck, Applied; learner: Accept, Accepted, Learn, Heartbeat, Trimmed, Committed,
//! SnapshotRequest, SnapshotChunk; the node itself: RecoveryQuery, RecoveryInfo).

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
    /// Phase 1a. Promises every slot >= `from` (Multi-Paxos: one prepare for the whole log
    /// tail) and asks for the first page of what the acceptor accepted there. With the
    /// same ballot and a later `from` it asks for the next page (phase 1 continues).
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b: one page of an answer, split into `chunks` messages so that each fits a
    /// frame (chunk `i` of `chunks`, 0-based; every chunk of a page carries the same header
    /// fields). `from` echoes the Prepare. `low`: slots below it are chosen (the acceptor's
    /// trim point or a commit point a leader announced); its accepted values at or above
    /// `max(from, low)` and below `end` are all in `entries`. `high`: one past its highest
    /// accepted slot; `end < high` means more pages follow (ask with `Prepare { from: end }`).
    Promise {
        ballot: Ballot,
        from: Slot,
        low: Slot,
        end: Slot,
        high: Slot,
        chunk: u16,
        chunks: u16,
        entries: Vec<SlotValue<P>>,
    },
    /// Phase 2a. `commit`: every slot below it is known chosen by the leader (never above
    /// `slot`: the slot itself is not chosen yet).
    Accept { ballot: Ballot, slot: Slot, commit: Slot, value: P },
    /// Phase 2b, sent to the ballot's leader (and to every learner with
    /// `accepted_to_learners`). Carries no value: learners got it from the Accept.
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
    /// A learner's durable applied point (everything below `applied` is in application
    /// state that survives a restart), sent to the proposers; the leader trims the log
    /// where a majority of learners can rebuild it.
    Applied { applied: Slot },
    /// A learner asks another for a snapshot covering every slot below `min` (at least):
    /// the bytes of snapshot (`slot`, `id`) from `offset` on, or, if that snapshot is not
    /// the one served (`slot` 0: none yet), its current one from the start.
    SnapshotRequest { min: Slot, slot: Slot, id: u64, offset: u64 },
    /// Bytes [offset, offset + data.len()) of snapshot (`slot`, `id`), `total` bytes in
    /// all. The snapshot covers every slot below `slot`; `id` is its digest.
    SnapshotChunk { slot: Slot, id: u64, total: u64, offset: u64, data: P },
    /// A member that lost its acceptor state asks every acceptor and proposer what it knows
    /// (docs/protocol.md, "Rejoining after lost state"). `nonce` tells this recovery's
    /// answers from older ones.
    RecoveryQuery { nonce: u64 },
    /// The answer: the highest ballot the sender has promised, used or seen; one past its
    /// highest accepted slot (acceptors; `Slot::ZERO` otherwise); and whether the sender is
    /// itself recovering (then its answer does not count).
    RecoveryInfo { nonce: u64, ballot: Ballot, high: Slot, recovering: bool },
    /// Acceptor -> leader: the Heartbeat of `ballot` was accepted (no higher promise). The
    /// leader's evidence that it still reaches this acceptor (check-quorum) when no slot is
    /// in flight; an Accepted for `ballot` is the same evidence.
    HeartbeatAck { ballot: Ballot },
    /// Acceptor -> learner, the answer to an empty Repeat (`from == to`): every slot below
    /// `commit` is chosen, as far as this acceptor heard from a leader. A learner that hears
    /// no leader (a partial cut can hide a live one) asks for it now and then, then catches
    /// up with ordinary Repeats. (It must not ask for a slot's value before it knows the
    /// slot is chosen: an answer given before the choice, counted after it, could name a
    /// value that lost.)
    Committed { commit: Slot },
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
            Message::SnapshotRequest { .. } => "snapshot_request",
            Message::SnapshotChunk { .. } => "snapshot_chunk",
            Message::RecoveryQuery { .. } => "recovery_query",
            Message::RecoveryInfo { .. } => "recovery_info",
            Message::HeartbeatAck { .. } => "heartbeat_ack",
            Message::Committed { .. } => "committed",
        }
    }

    /// Re-wraps the payloads (e.g. from borrowed `&[u8]` to an owned handle).
    pub fn map_payload<Q>(self, mut f: impl FnMut(P) -> Q) -> Message<Q> {
        match self {
            Message::Prepare { ballot, from } => Message::Prepare { ballot, from },
            Message::Promise { ballot, from, low, end, high, chunk, chunks, entries } => {
                Message::Promise {
                    ballot,
                    from,
                    low,
                    end,
                    high,
                    chunk,
                    chunks,
                    entries: entries
                        .into_iter()
                        .map(|e| SlotValue { slot: e.slot, ballot: e.ballot, value: f(e.value) })
                        .collect(),
                }
            }
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
            Message::SnapshotRequest { min, slot, id, offset } => {
                Message::SnapshotRequest { min, slot, id, offset }
            }
            Message::SnapshotChunk { slot, id, total, offset, data } => {
                Message::SnapshotChunk { slot, id, total, offset, data: f(data) }
            }
            Message::RecoveryQuery { nonce } => Message::RecoveryQuery { nonce },
            Message::RecoveryInfo { nonce, ballot, high, recovering } => {
                Message::RecoveryInfo { nonce, ballot, high, recovering }
            }
            Message::HeartbeatAck { ballot } => Message::HeartbeatAck { ballot },
            Message::Committed { commit } => Message::Committed { commit },
        }
    }
}
