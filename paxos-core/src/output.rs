//! What a node asks its driver to do, drained into buffers the driver owns.

use crate::ids::{Ballot, ReplicaId, Slot};
use crate::message::Message;

/// A message to send. `to` may be the node itself: the driver delivers those back through
/// `step` (after `sync`, like any other message) without putting them on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Outgoing<P> {
    pub to: ReplicaId,
    pub msg: Message<P>,
}

/// A chosen slot, delivered by the learner strictly in slot order. The value is a batch
/// (see [`crate::payload::commands`]); an empty value is a no-op.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decided<P> {
    pub slot: Slot,
    pub value: P,
}

/// Things the application may want to react to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node's proposer became leader with `ballot`.
    BecameLeader { ballot: Ballot },
    /// This node's proposer stopped leading; `dropped_batches` sealed batches (and the
    /// commands in them) that had not been chosen were abandoned: their clients must retry.
    SteppedDown { ballot: Ballot, dropped_batches: usize },
    /// Another node leads with `ballot` (learned from a heartbeat or an accept).
    LeaderIs { ballot: Ballot },
    /// The learner fell below the acceptors' trim point: the application must install a
    /// snapshot covering every slot below `low` and then call `Node::snapshot_installed`.
    SnapshotNeeded { low: Slot },
}

/// Why a proposal was refused. The command was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This node is not the leader; `hint` is the leader it last heard from.
    NotLeader { hint: Option<ReplicaId> },
    /// The leader's queue of sealed batches is full (`max_pending_batches`).
    Busy,
    /// The command does not fit in one batch (`batch_max_bytes`).
    TooLarge,
}

impl core::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProposeError::NotLeader { hint: Some(h) } => write!(f, "not leader (try {})", h.0),
            ProposeError::NotLeader { hint: None } => write!(f, "not leader (leader unknown)"),
            ProposeError::Busy => write!(f, "leader queue full"),
            ProposeError::TooLarge => write!(f, "command larger than batch_max_bytes"),
        }
    }
}

/// Counters, read by the driver (plain integers: one node is owned by one thread).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_in: u64,
    pub messages_out: u64,
    /// Messages ignored as invalid (unknown sender, wrong role, ballot not owned by sender).
    pub messages_ignored: u64,
    pub commands_proposed: u64,
    pub batches_proposed: u64,
    /// Slots this node's proposer saw chosen while leading.
    pub slots_chosen: u64,
    /// Slots this node's learner delivered.
    pub slots_decided: u64,
    pub elections_started: u64,
    pub times_leader: u64,
    pub step_downs: u64,
    pub nacks_sent: u64,
    pub accepts_retransmitted: u64,
    pub repeats_sent: u64,
    pub promises_rejected: u64,
    pub snapshots_needed: u64,
}
