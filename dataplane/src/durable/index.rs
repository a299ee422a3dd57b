//! The in-memory index of accepted slots: a ring from `low`, like `paxos_core::MemStorage`,
//! but holding only where each value lies on disk, never the value.

use paxos_core::{Ballot, Slot};
use std::collections::VecDeque;

/// Where the latest Accept record for one slot lies. 20 bytes (24 in the ring's `Option`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ballot: Ballot,
    /// Segment number (low 32 bits; a log never reaches 2^32 segments, `rotate` checks).
    pub seg: u32,
    /// Byte offset of the record header in the segment (segments are below 4 GiB).
    pub off: u32,
    /// Value length in bytes.
    pub len: u32,
}

#[derive(Debug)]
pub(crate) struct Index {
    low: Slot,
    slots: VecDeque<Option<Entry>>,
}

impl Index {
    pub fn new(low: Slot) -> Index {
        Index { low, slots: VecDeque::new() }
    }

    pub fn low(&self) -> Slot {
        self.low
    }

    /// One past the highest slot with an entry, or `low`.
    pub fn high(&self) -> Slot {
        self.low.plus(self.slots.len() as u64)
    }

    pub fn get(&self, slot: Slot) -> Option<&Entry> {
        let i = slot.0.checked_sub(self.low.0)?;
        self.slots.get(usize::try_from(i).ok()?)?.as_ref()
    }

    /// Records `e` for `slot`. The caller has checked `low <= slot < low + window`.
    pub fn set(&mut self, slot: Slot, e: Entry) {
        let i = (slot.0 - self.low.0) as usize;
        if i < self.slots.len() {
            self.slots[i] = Some(e);
        } else {
            self.slots.resize(i, None);
            self.slots.push_back(Some(e));
        }
    }

    /// Forgets every slot below `below` (no-op unless `below > low`).
    pub fn trim(&mut self, below: Slot) {
        if below <= self.low {
            return;
        }
        let n = ((below.0 - self.low.0).min(self.slots.len() as u64)) as usize;
        self.slots.drain(..n);
        self.low = below;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::ReplicaId;

    #[test]
    fn ring_from_low() {
        let e = Entry { ballot: Ballot::new(1, ReplicaId(0)), seg: 0, off: 64, len: 3 };
        let mut ix = Index::new(Slot(10));
        assert_eq!(ix.high(), Slot(10));
        ix.set(Slot(12), e);
        assert_eq!(ix.high(), Slot(13));
        assert_eq!(ix.get(Slot(11)), None);
        assert_eq!(ix.get(Slot(12)), Some(&e));
        assert_eq!(ix.get(Slot(9)), None);
        ix.trim(Slot(12));
        assert_eq!((ix.low(), ix.high()), (Slot(12), Slot(13)));
        ix.trim(Slot(20));
        assert_eq!((ix.low(), ix.high()), (Slot(20), Slot(20)));
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 24);
    }
}
