//! The acceptor's stable state and the durability contract.
//!
//! # Durability contract
//! An acceptor's promise, its accepted values, its trim point and whether it may vote are
//! the only state Paxos needs to survive a crash. The core writes them through [`Storage`]
//! *before* it queues a message that reveals them, and **holds every such message back
//! until a [`crate::Node::sync`] has made those writes stable**: `take_messages` hands out
//! only messages that depend on nothing unsynced. So no driver can send a vote before it is
//! durable; a driver only decides *when* to sync (after every input, once per poll for
//! group commit, ...):
//!
//! ```text
//! node.step(from, msg);            // may write to storage and queue replies
//! node.take_messages(&mut out);    // what depends on nothing unsynced: send it now
//! node.sync()?;                    // fsync / flush / barrier (a no-op when nothing is pending)
//! node.take_messages(&mut out);    // the replies the sync released
//! ```
//! ## Asynchronous sync (tickets)
//! A driver that must not block in fsync uses [`crate::Node::begin_sync`] instead: it asks
//! the storage to start a sync ([`Storage::sync_start`]) and tags every held message with
//! that sync's *ticket*; [`crate::Node::poll_sync`] (or [`crate::Node::sync_done`]) then
//! releases, in order, the messages whose ticket completed. Messages queued while a sync is
//! in flight are held too, even with nothing new written (they may reveal what that sync
//! covers), and wait for the ticket that covers the writes before them:
//!
//! ```text
//! node.poll_sync()?;               // release what completed syncs made safe
//! node.step(from, msg);            // ...
//! node.take_messages(&mut out);    // send
//! node.begin_sync()?;              // never blocks; no-op when nothing was written
//! ```
//! The held messages stay bounded by what the polls during one or two syncs produce (the
//! leader's window bounds the `Accepted`s among them; the storage coalesces every sync
//! requested while one is in flight into the next one).
//!
//! Which messages are held: everything queued while writes are unsynced, except the
//! leader's `Accept`s and `Heartbeat`s, which reveal no acceptor state (the leader's ballot
//! was made stable before its first `Prepare` left). Storage that keeps nothing across a
//! crash anyway (`sync_required() == false`: [`MemStorage`]) holds nothing back. A failed
//! sync is sticky: the node refuses every further input and output, and the driver must
//! stop it.
//!
//! Everything else (learner progress, leader state, batches) is volatile and rebuilt after a
//! restart from the acceptors.

use crate::ids::{Ballot, Slot};
use crate::message::SlotValue;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError(pub String);

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "storage: {}", self.0)
    }
}
impl std::error::Error for StorageError {}

/// Stable state of one acceptor.
///
/// Writes (`set_*`, `trim`) take effect at once for reads and become durable at the next
/// successful `sync`. An implementation must keep them in order: after a crash it recovers a
/// prefix of the writes that includes everything up to the last successful `sync`.
pub trait Storage<P> {
    /// The highest ballot promised (`Ballot::NONE` initially). A proposer also records here
    /// each ballot it starts an election with (on any node, acceptor or not), so that after a
    /// restart it never uses a ballot again.
    fn promised(&self) -> Ballot;
    fn set_promised(&mut self, ballot: Ballot);
    /// False while this acceptor is rejoining after it lost its state: it must not vote
    /// (docs/protocol.md, "Rejoining after lost state"). Stable, so that a rejoining node
    /// that restarts is still rejoining.
    fn voting(&self) -> bool;
    fn set_voting(&mut self, voting: bool);
    /// The accepted (ballot, value) for `slot`, if any and not trimmed. An error (the value
    /// could not be read back) stops the node: answering without it would be unsafe.
    fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, P)>, StorageError>;
    fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: P);
    /// Slots below `low()` have been forgotten.
    fn low(&self) -> Slot;
    /// One past the highest slot ever accepted (or `low()` if none).
    fn high(&self) -> Slot;
    /// Forget every slot below `below` (no-op if `below <= low()`).
    fn trim(&mut self, below: Slot);
    /// Make every write so far stable. The in-memory store has nothing to do. With a sync
    /// started by `sync_start` still in flight, this waits for it too: when it returns, every
    /// write and every ticket handed out is stable.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// Starts making every write so far stable without waiting, and returns the *ticket*
    /// that will cover them: tickets count up from 1, and a ticket is complete once
    /// `sync_poll` has reported it or a higher one. Writes made after this call belong to a
    /// later ticket. Called again while a sync is in flight, it may return the ticket of
    /// the sync that will start next (the same one each time: everything written until
    /// then rides on it).
    ///
    /// **0** means "stable already": nothing to wait for. The default runs the blocking
    /// `sync` and returns 0, so every storage works with a driver that syncs asynchronously.
    fn sync_start(&mut self) -> Result<u64, StorageError> {
        self.sync()?;
        Ok(0)
    }
    /// Never blocks: the highest ticket whose sync completed since the last call (every
    /// lower ticket is complete too), or `None` if none did. An error is a failed sync: the
    /// writes it covered may not be stable, and the caller must stop (as with `sync`). The
    /// default (every sync completes in `sync_start`) reports nothing.
    fn sync_poll(&mut self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
    /// `sync_poll`, but blocks until the oldest sync in flight completes, if one is (for a
    /// driver with nothing else to do: it leaves the CPU, as a blocking `sync` does). The
    /// default (nothing is ever in flight) reports nothing.
    fn sync_wait(&mut self) -> Result<Option<u64>, StorageError> {
        self.sync_poll()
    }
    /// Whether writes become stable only at `sync` (a disk). When false (memory: nothing
    /// survives a crash anyway), replies are not held for a sync; the driver's order is
    /// the same either way.
    fn sync_required(&self) -> bool {
        true
    }
    /// Upkeep a driver runs when idle (deleting dead log segments, preparing the next one).
    /// Changes nothing a read sees. The default does nothing.
    fn maintain(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    /// Accepted entries in [from, to), in slot order, appended to `out`.
    fn accepted_range(
        &self,
        from: Slot,
        to: Slot,
        out: &mut Vec<SlotValue<P>>,
    ) -> Result<(), StorageError> {
        let mut s = from.max(self.low());
        while s < to.min(self.high()) {
            if let Some((ballot, value)) = self.accepted(s)? {
                out.push(SlotValue { slot: s, ballot, value });
            }
            s = s.next();
        }
        Ok(())
    }
}

/// Acceptor state in memory: a ring of slots from `low`. Survives a simulated crash (the
/// simulator keeps the value), not a real one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemStorage<P> {
    promised: Ballot,
    voting: bool,
    low: Slot,
    slots: VecDeque<Option<(Ballot, P)>>,
}

impl<P> Default for MemStorage<P> {
    fn default() -> Self {
        // Grown on demand: the ring a `VecDeque` cycles through is then about as long as the
        // untrimmed log, not more, and stays warm in cache.
        MemStorage { promised: Ballot::NONE, voting: true, low: Slot::ZERO, slots: VecDeque::new() }
    }
}

impl<P> MemStorage<P> {
    /// The empty state of a member that lost what it had (a wiped disk, or memory storage
    /// after a restart): it rejoins without voting until that is safe again.
    pub fn rejoining() -> Self {
        MemStorage { voting: false, ..MemStorage::default() }
    }
}

impl<P: Clone> Storage<P> for MemStorage<P> {
    fn promised(&self) -> Ballot {
        self.promised
    }
    fn set_promised(&mut self, ballot: Ballot) {
        self.promised = ballot;
    }
    fn voting(&self) -> bool {
        self.voting
    }
    fn set_voting(&mut self, voting: bool) {
        self.voting = voting;
    }
    #[inline]
    fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, P)>, StorageError> {
        if slot < self.low {
            return Ok(None);
        }
        let i = (slot.0 - self.low.0) as usize;
        Ok(self.slots.get(i).and_then(|e| e.as_ref().map(|(b, v)| (*b, v.clone()))))
    }
    #[inline]
    fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: P) {
        if slot < self.low {
            return;
        }
        let i = (slot.0 - self.low.0) as usize;
        if i < self.slots.len() {
            if let Some(e) = self.slots.get_mut(i) {
                *e = Some((ballot, value));
            }
        } else {
            // The usual case: the next slot. (A gap is filled with holes first; the acceptor
            // bounds gaps by its window, see `acceptor::on_accept`.)
            if i > self.slots.len() {
                self.slots.resize_with(i, || None);
            }
            self.slots.push_back(Some((ballot, value)));
        }
    }
    fn low(&self) -> Slot {
        self.low
    }
    fn high(&self) -> Slot {
        self.low.plus(self.slots.len() as u64)
    }
    fn trim(&mut self, below: Slot) {
        if below <= self.low {
            return;
        }
        let n = ((below.0 - self.low.0) as usize).min(self.slots.len());
        self.slots.drain(..n);
        self.low = below;
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn sync_required(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReplicaId;

    #[test]
    fn mem_storage_keeps_and_trims() {
        let mut s: MemStorage<&'static [u8]> = MemStorage::default();
        let b = Ballot::new(1, ReplicaId(0));
        s.set_accepted(Slot(2), b, b"x");
        assert_eq!(s.high(), Slot(3));
        assert_eq!(s.accepted(Slot(2)), Ok(Some((b, &b"x"[..]))));
        assert_eq!(s.accepted(Slot(1)), Ok(None));
        s.trim(Slot(3));
        assert_eq!(s.low(), Slot(3));
        assert_eq!(s.accepted(Slot(2)), Ok(None));
        s.set_accepted(Slot(1), b, b"y"); // below low: ignored
        assert_eq!(s.accepted(Slot(1)), Ok(None));
        assert!(s.voting());
        assert!(!MemStorage::<&'static [u8]>::rejoining().voting());
    }
}
