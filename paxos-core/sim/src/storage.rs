//! [`SimStorage`]: acceptor storage with a disk's failure modes. Every write takes effect at
//! once for reads, but survives a crash only once a `sync` covered it: a crash keeps what
//! was synced plus a random prefix of the writes since (a torn tail, as a real log recovers
//! it), and a sync can be made to fail (the node must then stop; what became durable is,
//! again, the synced state plus some prefix). A wiped disk comes back empty and rejoining.
//!
//! Asynchronous syncs (`sync_start`/`sync_poll`): each started sync covers the writes made
//! before it and completes, oldest first, when the simulator says so
//! ([`SimStorage::complete_sync`]); until then its writes are as pending as any.

use bytes::Bytes;
use paxos_core::{Ballot, MemStorage, Slot, Storage, StorageError};
use std::collections::VecDeque;

/// One write, in the order it was made.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Op {
    Promise(Ballot),
    Voting(bool),
    Accept(Slot, Ballot, Bytes),
    Trim(Slot),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimStorage {
    /// What reads see: `durable` with every pending write applied.
    live: MemStorage<Bytes>,
    /// What a crash keeps for certain.
    durable: MemStorage<Bytes>,
    /// Writes since the last successful sync, in order.
    pending: Vec<Op>,
    /// The next `sync` fails (set by the simulator's fault schedule).
    fail_next_sync: bool,
    /// Started asynchronous syncs, oldest first: (ticket, writes at the front of `pending`
    /// it covers).
    in_flight: VecDeque<(u64, usize)>,
    /// Last ticket started.
    started: u64,
    /// Highest ticket completed and not yet reported by `sync_poll`.
    report: Option<u64>,
    /// An asynchronous sync failed: `sync_poll` reports it.
    failed: bool,
}

impl Default for SimStorage {
    fn default() -> Self {
        SimStorage::from_state(MemStorage::default())
    }
}

impl SimStorage {
    fn from_state(state: MemStorage<Bytes>) -> SimStorage {
        SimStorage {
            live: state.clone(),
            durable: state,
            pending: Vec::new(),
            fail_next_sync: false,
            in_flight: VecDeque::new(),
            started: 0,
            report: None,
            failed: false,
        }
    }

    /// Asynchronous syncs started and not completed.
    pub fn syncs_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Completes the oldest asynchronous sync in flight (or fails it, after
    /// `fail_next_sync`): its writes become durable. Returns false if none was in flight.
    pub fn complete_sync(&mut self) -> bool {
        let Some((ticket, n)) = self.in_flight.pop_front() else { return false };
        if self.fail_next_sync {
            self.fail_next_sync = false;
            self.failed = true;
            return true;
        }
        for op in self.pending.drain(..n) {
            apply(&mut self.durable, op);
        }
        for (_, m) in self.in_flight.iter_mut() {
            *m -= n;
        }
        self.report = Some(ticket);
        true
    }

    /// A wiped disk: nothing left, and the member must rejoin before it votes.
    pub fn wiped() -> SimStorage {
        SimStorage::from_state(MemStorage::rejoining())
    }

    /// Writes not yet covered by a sync.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Makes the next `sync` fail.
    pub fn fail_next_sync(&mut self) {
        self.fail_next_sync = true;
    }

    /// What survives a crash: the synced state plus the first `keep` pending writes (a torn
    /// tail loses the rest; `keep` is clamped to what is pending).
    pub fn after_crash(self, keep: usize) -> SimStorage {
        let mut state = self.durable;
        for op in self.pending.into_iter().take(keep) {
            apply(&mut state, op);
        }
        SimStorage::from_state(state)
    }

    /// The synced state's promise (what a crash is sure to keep).
    pub fn durable_promised(&self) -> Ballot {
        self.durable.promised()
    }

    /// Whether the synced state says this member votes.
    pub fn durable_voting(&self) -> bool {
        self.durable.voting()
    }

    fn write(&mut self, op: Op) {
        apply(&mut self.live, op.clone());
        self.pending.push(op);
    }
}

fn apply(s: &mut MemStorage<Bytes>, op: Op) {
    match op {
        Op::Promise(b) => s.set_promised(b),
        Op::Voting(v) => s.set_voting(v),
        Op::Accept(slot, b, v) => s.set_accepted(slot, b, v),
        Op::Trim(below) => s.trim(below),
    }
}

impl Storage<Bytes> for SimStorage {
    fn promised(&self) -> Ballot {
        self.live.promised()
    }
    fn set_promised(&mut self, ballot: Ballot) {
        self.write(Op::Promise(ballot));
    }
    fn voting(&self) -> bool {
        self.live.voting()
    }
    fn set_voting(&mut self, voting: bool) {
        self.write(Op::Voting(voting));
    }
    fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, Bytes)>, StorageError> {
        self.live.accepted(slot)
    }
    fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: Bytes) {
        self.write(Op::Accept(slot, ballot, value));
    }
    fn low(&self) -> Slot {
        self.live.low()
    }
    fn high(&self) -> Slot {
        self.live.high()
    }
    fn trim(&mut self, below: Slot) {
        self.write(Op::Trim(below));
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        if self.fail_next_sync {
            self.fail_next_sync = false;
            return Err(StorageError("simulated fdatasync failure".into()));
        }
        for op in self.pending.drain(..) {
            apply(&mut self.durable, op);
        }
        self.in_flight.clear(); // covered
        Ok(())
    }
    fn sync_start(&mut self) -> Result<u64, StorageError> {
        self.started += 1;
        self.in_flight.push_back((self.started, self.pending.len()));
        Ok(self.started)
    }
    fn sync_poll(&mut self) -> Result<Option<u64>, StorageError> {
        if self.failed {
            return Err(StorageError("simulated fdatasync failure (asynchronous)".into()));
        }
        Ok(self.report.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::ReplicaId;

    #[test]
    fn a_crash_keeps_the_synced_state_and_a_prefix_of_the_rest() {
        let b = |r| Ballot::new(r, ReplicaId(0));
        let mut s = SimStorage::default();
        s.set_promised(b(1));
        s.set_accepted(Slot(0), b(1), Bytes::from_static(b"a"));
        s.sync().unwrap();
        s.set_promised(b(2));
        s.set_accepted(Slot(1), b(2), Bytes::from_static(b"b"));
        assert_eq!(s.promised(), b(2));
        assert_eq!(s.pending_len(), 2);
        let torn = s.clone().after_crash(1);
        assert_eq!(torn.promised(), b(2));
        assert_eq!(torn.accepted(Slot(1)), Ok(None));
        let lost = s.clone().after_crash(0);
        assert_eq!(lost.promised(), b(1));
        assert_eq!(lost.accepted(Slot(0)), Ok(Some((b(1), Bytes::from_static(b"a")))));
        s.fail_next_sync();
        assert!(s.sync().is_err());
        assert!(s.sync().is_ok());
        assert!(!SimStorage::wiped().voting());
    }
}
