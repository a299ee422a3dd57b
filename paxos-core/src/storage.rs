//! The acceptor's stable state and the durability contract.
//!
//! # Durability contract
//! An acceptor's promise and its accepted values are the only state Paxos needs to survive a
//! crash. The core writes them through [`Storage`] *before* it queues the reply that reveals
//! them (a `Promise`, `Accepted`, `Nack` or `Learn`). A driver with real durable storage must
//! make those writes stable before sending any message it drained after them:
//!
//! ```text
//! node.step(from, msg);               // may write to storage and queue replies
//! if node.needs_sync() { node.sync()?; }   // fsync / flush / barrier
//! node.take_messages(&mut out);       // only now may these leave the machine
//! ```
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
pub trait Storage<P> {
    /// The highest ballot promised (`Ballot::NONE` initially). A proposer also records here
    /// each ballot it starts an election with (on any node, acceptor or not), so that after a
    /// restart it never uses a ballot again.
    fn promised(&self) -> Ballot;
    fn set_promised(&mut self, ballot: Ballot);
    /// The accepted (ballot, value) for `slot`, if any and not trimmed.
    fn accepted(&self, slot: Slot) -> Option<(Ballot, &P)>;
    fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: P);
    /// Slots below `low()` have been forgotten.
    fn low(&self) -> Slot;
    /// One past the highest slot ever accepted (or `low()` if none).
    fn high(&self) -> Slot;
    /// Forget every slot below `below` (no-op if `below <= low()`).
    fn trim(&mut self, below: Slot);
    /// Make every write so far stable. The in-memory store has nothing to do.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// Accepted entries in [from, to), in slot order, appended to `out`.
    fn accepted_range(&self, from: Slot, to: Slot, out: &mut Vec<SlotValue<P>>)
    where
        P: Clone,
    {
        let mut s = from.max(self.low());
        while s < to.min(self.high()) {
            if let Some((b, v)) = self.accepted(s) {
                out.push(SlotValue { slot: s, ballot: b, value: v.clone() });
            }
            s = s.next();
        }
    }
}

/// Acceptor state in memory: a ring of slots from `low`. Survives a simulated crash (the
/// simulator keeps the value), not a real one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemStorage<P> {
    promised: Ballot,
    low: Slot,
    slots: VecDeque<Option<(Ballot, P)>>,
}

impl<P> Default for MemStorage<P> {
    fn default() -> Self {
        // Grown on demand: the ring a `VecDeque` cycles through is then about as long as the
        // untrimmed log, not more, and stays warm in cache.
        MemStorage { promised: Ballot::NONE, low: Slot::ZERO, slots: VecDeque::new() }
    }
}

impl<P> Storage<P> for MemStorage<P> {
    fn promised(&self) -> Ballot {
        self.promised
    }
    fn set_promised(&mut self, ballot: Ballot) {
        self.promised = ballot;
    }
    #[inline]
    fn accepted(&self, slot: Slot) -> Option<(Ballot, &P)> {
        if slot < self.low {
            return None;
        }
        let i = (slot.0 - self.low.0) as usize;
        self.slots.get(i)?.as_ref().map(|(b, v)| (*b, v))
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
            // The usual case: the next slot. (A gap is filled with holes first.)
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
        assert_eq!(s.accepted(Slot(2)), Some((b, &&b"x"[..])));
        assert_eq!(s.accepted(Slot(1)), None);
        s.trim(Slot(3));
        assert_eq!(s.low(), Slot(3));
        assert_eq!(s.accepted(Slot(2)), None);
        s.set_accepted(Slot(1), b, b"y"); // below low: ignored
        assert_eq!(s.accepted(Slot(1)), None);
    }
}
