//! The DPDK transport's payload handle: a received mbuf slice (zero copy) or heap bytes.
//!
//! # Copy threshold
//!
//! A received datagram of at most [`COPY_THRESHOLD_BYTES`] is copied into a heap arena and
//! its mbuf freed at once; a longer one is handed up as a slice of the receive mbuf. Reason:
//! acceptors keep accepted values until the log is trimmed, learners keep candidates, and a
//! value that is a slice keeps its whole 2 KiB mbuf out of the pool. Small messages are the
//! majority (Accepted, Heartbeat, small batches); copying them costs a `memcpy` of a cache
//! line or two, and keeps the pool from running dry while trimming lags. Large batches are
//! where zero copy pays, and there are few of them per window. The leader's own values
//! ([`DpdkValueBuilder`]) are heap values.
//!
//! The arena is one `BytesMut` of [`ARENA_BYTES`]; each copied datagram is split off it, so
//! there is one heap allocation per `ARENA_BYTES` of small datagrams, not per datagram.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use paxos_core::{BytesBuilder, Payload, ValueBuilder};

use super::mbuf::MbufSlice;

/// Received datagrams up to this many bytes are copied to the heap (see the module docs).
/// Measured with `cargo bench -p dataplane --bench dpdk_path` (acceptor path, net_ring):
/// copying instead of slicing made no difference beyond run-to-run noise (about +-10% of
/// ~1700-5000 cycles per slot) for values of 52 to 1036 bytes, so the copy is cheap up to
/// here and buys a pool that never runs dry while trimming lags. (Raise it if the pool is
/// sized tightly; lower it for very large batches.)
pub const COPY_THRESHOLD_BYTES: usize = 256;

/// Size of one heap arena for copied datagrams.
pub const ARENA_BYTES: usize = 64 * 1024;

/// Received or locally built bytes.
#[derive(Clone)]
pub enum DpdkBuf {
    /// A window into a receive mbuf (holds a reference to it).
    Mbuf(MbufSlice),
    /// Heap bytes: small copied datagrams and the leader's batch values.
    Heap(Bytes),
}

impl DpdkBuf {
    /// Bytes held.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_ref().len()
    }

    /// No bytes?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Does this handle keep an mbuf out of its pool?
    pub fn pins_mbuf(&self) -> bool {
        matches!(self, DpdkBuf::Mbuf(_))
    }

    /// A sub-range sharing the same storage (no copy). Panics if out of bounds.
    #[inline]
    pub fn slice(&self, range: Range<usize>) -> DpdkBuf {
        match self {
            DpdkBuf::Mbuf(m) => DpdkBuf::Mbuf(m.slice(range)),
            DpdkBuf::Heap(b) => DpdkBuf::Heap(b.slice(range)),
        }
    }
}

impl AsRef<[u8]> for DpdkBuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        match self {
            DpdkBuf::Mbuf(m) => m.as_ref(),
            DpdkBuf::Heap(b) => b.as_ref(),
        }
    }
}

impl std::ops::Deref for DpdkBuf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

impl fmt::Debug for DpdkBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkBuf::Mbuf(m) => m.fmt(f),
            DpdkBuf::Heap(b) => f.debug_tuple("Heap").field(&b.len()).finish(),
        }
    }
}

impl PartialEq for DpdkBuf {
    fn eq(&self, other: &DpdkBuf) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for DpdkBuf {}

impl From<Bytes> for DpdkBuf {
    fn from(b: Bytes) -> DpdkBuf {
        DpdkBuf::Heap(b)
    }
}

impl From<MbufSlice> for DpdkBuf {
    fn from(m: MbufSlice) -> DpdkBuf {
        DpdkBuf::Mbuf(m)
    }
}

impl Payload for DpdkBuf {}

impl crate::io::RxBuf for DpdkBuf {
    #[inline]
    fn slice(&self, range: Range<usize>) -> DpdkBuf {
        DpdkBuf::slice(self, range)
    }
}

/// Heap arena for copied small datagrams (see the module docs).
#[derive(Debug)]
pub struct CopyArena {
    arena: BytesMut,
}

impl Default for CopyArena {
    fn default() -> Self {
        CopyArena { arena: BytesMut::with_capacity(ARENA_BYTES) }
    }
}

impl CopyArena {
    /// Copies `bytes` into the arena and returns them as heap bytes.
    #[inline]
    pub fn copy(&mut self, bytes: &[u8]) -> Bytes {
        if self.arena.capacity() - self.arena.len() < bytes.len() {
            // Older values keep the previous arena alive through their own references.
            self.arena = BytesMut::with_capacity(ARENA_BYTES.max(bytes.len()));
        }
        self.arena.extend_from_slice(bytes);
        self.arena.split().freeze()
    }
}

/// The leader's batch builder for the DPDK transport: [`BytesBuilder`]'s arena, sealed values
/// wrapped as [`DpdkBuf::Heap`] (so they never pin mbufs).
#[derive(Debug, Default)]
pub struct DpdkValueBuilder(pub BytesBuilder);

impl ValueBuilder<DpdkBuf> for DpdkValueBuilder {
    #[inline]
    fn push_command(&mut self, command: &[u8]) {
        self.0.push_command(command)
    }
    #[inline]
    fn open_len(&self) -> usize {
        self.0.open_len()
    }
    #[inline]
    fn seal(&mut self) -> DpdkBuf {
        DpdkBuf::Heap(self.0.seal())
    }
    #[inline]
    fn noop(&mut self) -> DpdkBuf {
        DpdkBuf::Heap(self.0.noop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_slices_share_storage() {
        let b = DpdkBuf::from(Bytes::from_static(b"hello world"));
        let s = b.slice(6..11);
        assert_eq!(s.as_ref(), b"world");
        assert!(!s.pins_mbuf());
        assert_eq!(s, DpdkBuf::Heap(Bytes::from_static(b"world")));
    }

    #[test]
    fn arena_copies_without_allocating_per_datagram() {
        let mut a = CopyArena::default();
        let x = a.copy(b"abc");
        let y = a.copy(b"defg");
        assert_eq!((&x[..], &y[..]), (&b"abc"[..], &b"defg"[..]));
        // Both live in one allocation: y starts right after x.
        assert_eq!(x.as_ptr().wrapping_add(3), y.as_ptr());
        let big = vec![1u8; ARENA_BYTES + 1];
        assert_eq!(a.copy(&big).len(), ARENA_BYTES + 1);
    }

    #[test]
    fn value_builder_makes_heap_batches() {
        let mut b = DpdkValueBuilder::default();
        b.push_command(b"x");
        assert_eq!(b.open_len(), 5);
        let v = b.seal();
        assert!(!v.pins_mbuf());
        assert_eq!(paxos_core::payload::commands(&v).collect::<Vec<_>>(), vec![&b"x"[..]]);
        assert!(b.noop().is_empty());
    }
}
