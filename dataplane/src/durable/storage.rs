//! The acceptor's stable state behind `paxos_core::Storage`: [`DurableStorage`] over an
//! [`AcceptorLog`], and [`NodeStorage`], the one storage type a node's drivers use whether
//! it keeps its state in memory or on disk.
//!
//! `DurableStorage` keeps in memory only what the log's index holds (24 bytes a slot) plus the
//! values of the most recent [`DurableStorage::CACHE_SLOTS`] slots as payload handles, so
//! that phase 1 and learners catching up near the head are answered without a read. Older
//! values are read back from the log (one pread, checksum checked) when a Promise page or a
//! Learn needs them. Holding no older handles matters on DPDK: an accepted value may be a
//! slice of a receive mbuf, and keeping every untrimmed one would empty the pool while trim
//! waits for the next durable snapshot.

use super::{AcceptorLog, LogStats, WalError};
use bytes::Bytes;
use paxos_core::{Ballot, MemStorage, Slot, Storage, StorageError};
use std::collections::VecDeque;

fn storage_error(e: WalError) -> StorageError {
    StorageError(e.to_string())
}

/// An acceptor's state in an [`AcceptorLog`]; `P` is the driver's payload handle, built from
/// bytes read back with `P::from`.
pub struct DurableStorage<P> {
    log: AcceptorLog,
    /// Values of slots [cache_low, cache_low + cache.len()), the most recent ones.
    cache: VecDeque<Option<(Ballot, P)>>,
    cache_low: Slot,
    /// A refused append (a value too large for the log, a slot beyond its index): the next
    /// sync fails with it, so the reply that depended on it never leaves.
    failed: Option<StorageError>,
}

impl<P> DurableStorage<P> {
    /// Slots whose values stay in memory (as payload handles) after they were accepted.
    pub const CACHE_SLOTS: u64 = 4096;

    pub fn new(log: AcceptorLog) -> DurableStorage<P> {
        let cache_low = log.high();
        DurableStorage { log, cache: VecDeque::new(), cache_low, failed: None }
    }

    pub fn log(&self) -> &AcceptorLog {
        &self.log
    }
    pub fn log_mut(&mut self) -> &mut AcceptorLog {
        &mut self.log
    }
    pub fn stats(&self) -> &LogStats {
        self.log.stats()
    }

    fn cached(&self, slot: Slot) -> Option<&(Ballot, P)> {
        let i = slot.0.checked_sub(self.cache_low.0)?;
        self.cache.get(usize::try_from(i).ok()?)?.as_ref()
    }

    fn cache_put(&mut self, slot: Slot, ballot: Ballot, value: P) {
        if slot < self.cache_low {
            return; // older than what the cache spans: read back from the log when needed
        }
        let i = (slot.0 - self.cache_low.0) as usize;
        if i >= self.cache.len() {
            if (i - self.cache.len()) as u64 > Self::CACHE_SLOTS {
                // A jump far ahead: start the cache over at this slot.
                self.cache.clear();
                self.cache_low = slot;
                self.cache.push_back(Some((ballot, value)));
                return;
            }
            self.cache.resize_with(i, || None);
            self.cache.push_back(Some((ballot, value)));
        } else {
            self.cache[i] = Some((ballot, value));
        }
        while self.cache.len() as u64 > Self::CACHE_SLOTS {
            self.cache.pop_front();
            self.cache_low = self.cache_low.next();
        }
    }
}

impl<P: Clone + AsRef<[u8]> + From<Bytes>> Storage<P> for DurableStorage<P> {
    fn promised(&self) -> Ballot {
        self.log.promised()
    }
    fn set_promised(&mut self, ballot: Ballot) {
        self.log.set_promised(ballot);
    }
    fn voting(&self) -> bool {
        self.log.voting()
    }
    fn set_voting(&mut self, voting: bool) {
        self.log.set_voting(voting);
    }
    fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, P)>, StorageError> {
        if slot < self.log.low() {
            return Ok(None);
        }
        let Some(ballot) = self.log.accepted_ballot(slot) else { return Ok(None) };
        if let Some((b, v)) = self.cached(slot) {
            if *b == ballot {
                return Ok(Some((ballot, v.clone())));
            }
        }
        let mut buf = Vec::new();
        match self.log.read_value(slot, &mut buf).map_err(storage_error)? {
            Some(b) => Ok(Some((b, P::from(Bytes::from(buf))))),
            None => Ok(None),
        }
    }
    fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: P) {
        if slot < self.log.low() {
            return;
        }
        match self.log.set_accepted(slot, ballot, value.as_ref()) {
            Ok(()) => self.cache_put(slot, ballot, value),
            Err(e) => {
                if self.failed.is_none() {
                    self.failed = Some(storage_error(e));
                }
            }
        }
    }
    fn low(&self) -> Slot {
        self.log.low()
    }
    fn high(&self) -> Slot {
        self.log.high()
    }
    fn trim(&mut self, below: Slot) {
        self.log.trim(below);
        while self.cache_low < below && !self.cache.is_empty() {
            self.cache.pop_front();
            self.cache_low = self.cache_low.next();
        }
        if self.cache.is_empty() && self.cache_low < below {
            self.cache_low = below;
        }
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.log.sync().map(|_| ()).map_err(storage_error)
    }
    fn sync_start(&mut self) -> Result<u64, StorageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.log.sync_start().map_err(storage_error)
    }
    fn sync_poll(&mut self) -> Result<Option<u64>, StorageError> {
        self.log.sync_poll().map_err(storage_error)
    }
    fn sync_wait(&mut self) -> Result<Option<u64>, StorageError> {
        self.log.sync_wait().map_err(storage_error)
    }
    fn maintain(&mut self) -> Result<(), StorageError> {
        self.log.maintain().map(|_| ()).map_err(storage_error)
    }
}

/// A node's acceptor storage: in memory or in a durable log, chosen at start
/// (`--storage memory|durable`). One concrete type, so that the drivers of both modes are
/// the same type.
pub enum NodeStorage<P> {
    Memory(MemStorage<P>),
    Durable(Box<DurableStorage<P>>),
}

impl<P> NodeStorage<P> {
    /// The durable log, if this storage has one.
    pub fn durable(&self) -> Option<&DurableStorage<P>> {
        match self {
            NodeStorage::Durable(d) => Some(d),
            NodeStorage::Memory(_) => None,
        }
    }

    /// Durable storage: its fdatasyncs run on a thread of their own from now on (see
    /// [`AcceptorLog::start_sync_thread`]); memory storage has nothing to sync.
    pub fn start_sync_thread(&mut self, name: &str) -> Result<(), WalError> {
        match self {
            NodeStorage::Durable(d) => d.log.start_sync_thread(name),
            NodeStorage::Memory(_) => Ok(()),
        }
    }
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            NodeStorage::Memory($s) => $e,
            NodeStorage::Durable($s) => $e,
        }
    };
}

impl<P: Clone + AsRef<[u8]> + From<Bytes>> Storage<P> for NodeStorage<P> {
    #[inline]
    fn promised(&self) -> Ballot {
        both!(self, s => s.promised())
    }
    fn set_promised(&mut self, ballot: Ballot) {
        both!(self, s => s.set_promised(ballot))
    }
    fn voting(&self) -> bool {
        both!(self, s => s.voting())
    }
    fn set_voting(&mut self, voting: bool) {
        both!(self, s => s.set_voting(voting))
    }
    fn accepted(&self, slot: Slot) -> Result<Option<(Ballot, P)>, StorageError> {
        both!(self, s => s.accepted(slot))
    }
    #[inline]
    fn set_accepted(&mut self, slot: Slot, ballot: Ballot, value: P) {
        both!(self, s => s.set_accepted(slot, ballot, value))
    }
    #[inline]
    fn low(&self) -> Slot {
        both!(self, s => s.low())
    }
    #[inline]
    fn high(&self) -> Slot {
        both!(self, s => s.high())
    }
    fn trim(&mut self, below: Slot) {
        both!(self, s => s.trim(below))
    }
    #[inline]
    fn sync(&mut self) -> Result<(), StorageError> {
        both!(self, s => s.sync())
    }
    fn sync_start(&mut self) -> Result<u64, StorageError> {
        both!(self, s => s.sync_start())
    }
    fn sync_poll(&mut self) -> Result<Option<u64>, StorageError> {
        both!(self, s => s.sync_poll())
    }
    fn sync_wait(&mut self) -> Result<Option<u64>, StorageError> {
        both!(self, s => s.sync_wait())
    }
    fn maintain(&mut self) -> Result<(), StorageError> {
        both!(self, s => s.maintain())
    }
    fn sync_required(&self) -> bool {
        matches!(self, NodeStorage::Durable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::LogOptions;
    use paxos_core::ReplicaId;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pxs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn opts() -> LogOptions {
        LogOptions { segment_bytes: 4 << 20, ..LogOptions::default() }
    }

    #[test]
    fn values_beyond_the_cache_are_read_back_and_survive_a_reopen() {
        let d = dir("cache");
        let log = AcceptorLog::create(&d, opts(), true).unwrap();
        let mut s: DurableStorage<Bytes> = DurableStorage::new(log);
        let b = Ballot::new(2, ReplicaId(1));
        let n = DurableStorage::<Bytes>::CACHE_SLOTS + 100;
        let v = |i: u64| Bytes::from(format!("value {i}"));
        s.set_promised(b);
        for i in 0..n {
            s.set_accepted(Slot(i), b, v(i));
        }
        s.sync().unwrap();
        assert!(s.cached(Slot(0)).is_none(), "slot 0 left the cache");
        assert!(s.cached(Slot(n - 1)).is_some());
        assert_eq!(s.accepted(Slot(0)).unwrap(), Some((b, v(0))));
        assert_eq!(s.accepted(Slot(n - 1)).unwrap(), Some((b, v(n - 1))));
        s.trim(Slot(10));
        s.set_accepted(Slot(n), b, v(n));
        // Not synced: a reopen sees what the last sync covered.
        drop(s);
        let (log, _) = AcceptorLog::open(&d, opts()).unwrap();
        let s: DurableStorage<Bytes> = DurableStorage::new(log);
        assert_eq!(s.promised(), b);
        assert_eq!(s.low(), Slot(0));
        assert_eq!(s.high(), Slot(n));
        assert_eq!(s.accepted(Slot(5)).unwrap(), Some((b, v(5))));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_refused_append_fails_the_next_sync() {
        let d = dir("refused");
        let small = LogOptions { max_value_bytes: 8, ..opts() };
        let log = AcceptorLog::create(&d, small, true).unwrap();
        let mut s: NodeStorage<Bytes> = NodeStorage::Durable(Box::new(DurableStorage::new(log)));
        s.set_accepted(Slot(0), Ballot::new(1, ReplicaId(0)), Bytes::from_static(b"far too long"));
        assert!(s.sync().is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
