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
//! The arena ([`CopyArena`]) is a chunk of [`ARENA_BYTES`] with a reference count; each
//! copied datagram is written after the previous one and handed out as an [`ArenaSlice`]
//! holding one reference, so there is one heap allocation per `ARENA_BYTES` of small
//! datagrams, not per datagram. The count is a plain integer, not an atomic: slices are
//! neither `Send` nor `Sync` (like `Rc`), so a copied value stays on the lcore that received
//! it (the transport and the node that hold values are per-lcore already). A copy costs a
//! `memcpy` and two increments; cloning and dropping a slice cost no locked instruction
//! (each of those was an uncontended atomic of ~20 cycles, several per datagram, with the
//! `BytesMut`-split arena this replaced, which also cost ~140 instructions per copy).
//!
//! Consequence: [`DpdkBuf`] is not `Send`. Values that must cross lcores would need a copy
//! (or the mbuf variant, whose count is atomic).

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::ptr::NonNull;

use bytes::Bytes;
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
    /// A small received datagram copied out of its mbuf (see the module docs).
    Copied(ArenaSlice),
    /// Heap bytes: the leader's batch values.
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
    ///
    /// Always inlined: out of line, the decoder received the 40-byte handle through memory
    /// and copied it on with wider loads than the callee's stores, a failed store-to-load
    /// forward per decoded value.
    #[inline(always)]
    pub fn slice(&self, range: Range<usize>) -> DpdkBuf {
        match self {
            DpdkBuf::Mbuf(m) => DpdkBuf::Mbuf(m.slice(range)),
            DpdkBuf::Copied(c) => DpdkBuf::Copied(c.slice(range)),
            DpdkBuf::Heap(b) => DpdkBuf::Heap(b.slice(range)),
        }
    }
}

impl AsRef<[u8]> for DpdkBuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        match self {
            DpdkBuf::Mbuf(m) => m.as_ref(),
            DpdkBuf::Copied(c) => c.as_ref(),
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
            DpdkBuf::Copied(c) => f.debug_tuple("Copied").field(&c.len()).finish(),
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
    #[inline(always)]
    fn slice(&self, range: Range<usize>) -> DpdkBuf {
        DpdkBuf::slice(self, range)
    }
}

/// Heap arena for copied small datagrams (see the module docs).
///
/// Holds one reference to the chunk being filled; bytes before `used` belong to slices
/// already handed out and are never written again, bytes after it are written only here.
#[derive(Default)]
pub struct CopyArena {
    chunk: Option<NonNull<Chunk>>,
    used: usize,
}

/// The head of one arena chunk; `cap` data bytes follow it in the same allocation.
struct Chunk {
    /// Holders: the arena while it fills this chunk, and every slice. Single-threaded
    /// (neither the arena nor slices are `Send`).
    refs: Cell<usize>,
    cap: usize,
}

impl Chunk {
    fn layout(cap: usize) -> Layout {
        Layout::from_size_align(std::mem::size_of::<Chunk>() + cap, std::mem::align_of::<Chunk>())
            .expect("arena chunk layout")
    }

    /// A new chunk with one reference (the arena's).
    fn alloc(cap: usize) -> NonNull<Chunk> {
        let layout = Chunk::layout(cap);
        // SAFETY: the layout has a non-zero size (the header).
        let raw = unsafe { alloc::alloc(layout) }.cast::<Chunk>();
        let Some(chunk) = NonNull::new(raw) else { alloc::handle_alloc_error(layout) };
        // SAFETY: fresh allocation, properly aligned for Chunk.
        unsafe { chunk.as_ptr().write(Chunk { refs: Cell::new(1), cap }) };
        chunk
    }

    /// Start of the data bytes.
    ///
    /// # Safety
    /// `chunk` must be live.
    #[inline]
    unsafe fn data(chunk: NonNull<Chunk>) -> *mut u8 {
        chunk.as_ptr().cast::<u8>().add(std::mem::size_of::<Chunk>())
    }

    /// Drops one reference; frees the chunk with the last.
    ///
    /// # Safety
    /// The caller owns one reference to the live `chunk` and gives it up.
    #[inline]
    unsafe fn release(chunk: NonNull<Chunk>) {
        let refs = &(*chunk.as_ptr()).refs;
        let n = refs.get() - 1;
        refs.set(n);
        if n == 0 {
            let cap = (*chunk.as_ptr()).cap;
            alloc::dealloc(chunk.as_ptr().cast::<u8>(), Chunk::layout(cap));
        }
    }

    /// Adds one reference.
    ///
    /// # Safety
    /// `chunk` must be live (the caller holds a reference).
    #[inline]
    unsafe fn acquire(chunk: NonNull<Chunk>) {
        let refs = &(*chunk.as_ptr()).refs;
        refs.set(refs.get() + 1);
    }
}

impl fmt::Debug for CopyArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyArena").field("used", &self.used).finish()
    }
}

impl CopyArena {
    /// Copies `bytes` into the arena and returns them as a slice of it.
    #[inline]
    pub fn copy(&mut self, bytes: &[u8]) -> ArenaSlice {
        let chunk = match self.chunk {
            // SAFETY: the arena holds a reference, so the chunk is live.
            Some(c) if unsafe { (*c.as_ptr()).cap } - self.used >= bytes.len() => c,
            _ => self.refill(bytes.len()),
        };
        // SAFETY: `used + len <= cap`: the destination lies inside the chunk's data, past every
        // byte a slice refers to, so nothing else reads or writes it. The new slice takes its
        // own reference.
        unsafe {
            let dst = Chunk::data(chunk).add(self.used);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            Chunk::acquire(chunk);
            self.used += bytes.len();
            ArenaSlice { chunk, ptr: NonNull::new_unchecked(dst), len: bytes.len() }
        }
    }

    /// Starts a new chunk with room for `len`; older slices keep the old one alive.
    #[cold]
    fn refill(&mut self, len: usize) -> NonNull<Chunk> {
        let fresh = Chunk::alloc(ARENA_BYTES.max(len));
        if let Some(old) = self.chunk.replace(fresh) {
            // SAFETY: the arena's reference to the old chunk, given up.
            unsafe { Chunk::release(old) };
        }
        self.used = 0;
        fresh
    }
}

impl Drop for CopyArena {
    fn drop(&mut self) {
        if let Some(c) = self.chunk.take() {
            // SAFETY: the arena's own reference.
            unsafe { Chunk::release(c) };
        }
    }
}

/// Immutable bytes in a [`CopyArena`] chunk, holding one reference to it. Neither `Send` nor
/// `Sync`: the count is not atomic.
pub struct ArenaSlice {
    chunk: NonNull<Chunk>,
    ptr: NonNull<u8>,
    len: usize,
}

impl ArenaSlice {
    /// Bytes held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// No bytes?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A narrower window `range` (relative to this one) of the same chunk. Panics if out of
    /// bounds.
    #[inline]
    pub fn slice(&self, range: Range<usize>) -> ArenaSlice {
        let mut s = self.clone();
        (s.ptr, s.len) = super::mbuf::narrow_window(self.ptr, self.len, range);
        s
    }
}

impl Clone for ArenaSlice {
    #[inline]
    fn clone(&self) -> ArenaSlice {
        // SAFETY: we hold a reference, so the chunk is live; the new one belongs to the copy.
        unsafe { Chunk::acquire(self.chunk) };
        ArenaSlice { chunk: self.chunk, ptr: self.ptr, len: self.len }
    }
}

impl Drop for ArenaSlice {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: our reference, given up.
        unsafe { Chunk::release(self.chunk) }
    }
}

impl AsRef<[u8]> for ArenaSlice {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len lies in the chunk's data, written before this slice was made
        // and never written again; our reference keeps the chunk alive.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::Deref for ArenaSlice {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_ref()
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
    #[inline]
    fn wrap(&mut self, bytes: Bytes) -> DpdkBuf {
        DpdkBuf::Heap(bytes)
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
        let z = a.copy(&big);
        assert_eq!(z.len(), ARENA_BYTES + 1);
        // Slices outlive the arena and each other.
        let w = y.slice(1..3);
        drop((a, y, z));
        assert_eq!((&x[..], &w[..]), (&b"abc"[..], &b"ef"[..]));
        let e = w.slice(2..2);
        assert!(e.is_empty());
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
