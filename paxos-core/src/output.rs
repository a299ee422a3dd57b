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
    /// This node's proposer became leader with `ballot`; its first slot is `from` (it
    /// re-proposes what phase 1 recovered from there, then new commands).
    BecameLeader { ballot: Ballot, from: Slot },
    /// This node's proposer stopped leading; `dropped_batches` sealed batches (and the
    /// commands in them) that had not been chosen were abandoned: their clients must retry.
    SteppedDown { ballot: Ballot, dropped_batches: usize },
    /// Another node leads with `ballot` (learned from a heartbeat or an accept).
    LeaderIs { ballot: Ballot },
    /// The learner fell below the acceptors' trim point: it needs a snapshot covering every
    /// slot below `low`. The node fetches one from a peer by itself (`SnapshotReady`
    /// follows); an application that gets one another way installs it and calls
    /// `Node::snapshot_installed`.
    SnapshotNeeded { low: Slot },
    /// A snapshot fetched from a peer is complete: take it with `Node::take_snapshot`,
    /// install it, then call `Node::snapshot_installed(slot)`.
    SnapshotReady { slot: Slot },
    /// A peer asked for a snapshot covering every slot below `min`, and none offered
    /// covers it: the application should offer one (`Node::offer_snapshot`). The peer
    /// asks again until it gets it.
    SnapshotWanted { min: Slot },
    /// This member had lost its acceptor state and votes again, from slot `low` on, having
    /// promised `promised` (docs/protocol.md, "Rejoining after lost state").
    Rejoined { promised: Ballot, low: Slot },
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
    /// Step-downs because no phase-2 quorum of acceptors was heard for an election
    /// timeout (check-quorum; also counted in `step_downs`).
    pub check_quorum_step_downs: u64,
    /// Prepares of another proposer ignored while the current leader was heard from
    /// (leader stickiness).
    pub prepares_ignored_live_leader: u64,
    pub nacks_sent: u64,
    pub accepts_retransmitted: u64,
    pub repeats_sent: u64,
    pub promises_rejected: u64,
    pub snapshots_needed: u64,
    /// Phase-1 pages asked for (one per election, plus one per further page of a long tail).
    pub promise_pages: u64,
    /// Accepts dropped: a slot a window or more beyond the commit point, or a commit point
    /// beyond the slot.
    pub accepts_beyond_window: u64,
    /// Accepts dropped: a slot `max_log_slots` or more beyond this acceptor's trim point.
    pub accepts_beyond_log: u64,
    /// Elections not started because every ballot round is used up.
    pub ballots_exhausted: u64,
    /// Prepares, Accepts and Repeats not answered while rejoining without a vote.
    pub votes_withheld: u64,
    pub rejoins_completed: u64,
    /// Failed syncs or unreadable values (the node stopped).
    pub storage_failures: u64,
    pub snapshot_chunks_sent: u64,
    pub snapshot_chunks_received: u64,
    /// Snapshots fetched from a peer completely.
    pub snapshots_fetched: u64,
    /// Snapshot transfers refused or restarted: too large, a bad digest, an inconsistent
    /// chunk.
    pub snapshot_chunks_rejected: u64,
}
