//! Owned mbufs and zero-copy, reference-counted slices of them.
//!
//! * [`Mbuf`] owns one reference to one single-segment `rte_mbuf`: dropping it frees the
//!   mbuf, [`Mbuf::into_raw`] hands the reference to C (e.g. a TX array) without freeing.
//!   It is the unique owner, so it may write the data.
//! * [`MbufSlice`] is an immutable `(offset, len)` window into an mbuf's data holding one
//!   reference: `Clone` increments the mbuf's reference count, `Drop` decrements it and the
//!   last one returns the mbuf to its pool. Used for received payloads, so values decoded
//!   from a datagram point into the receive buffer without a copy.
//!
//! Only the first segment is exposed: the ports are configured without scattered RX and the
//! transmit path builds single-segment frames.
//!
//! # Threads
//!
//! Both types are `Send` and `MbufSlice` is `Sync`: DPDK 22.11 is built with
//! `RTE_MBUF_REFCNT_ATOMIC` (reference counts are updated atomically), returning an mbuf to
//! its pool is thread-safe (non-EAL threads bypass the per-lcore cache), an `Mbuf` is the
//! only reference to its data, and the bytes behind an `MbufSlice` are never written while
//! slices exist (an `Mbuf` is consumed to make the first slice). Memory safety across
//! [`Eal::cleanup`](super::Eal::cleanup) is kept by refusing cleanup while any pool lives.
//! In practice mbufs stay on the lcore that received them, which is also the fast path.

use std::fmt;
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use dpdk_sys as sys;

/// One owned single-segment packet mbuf.
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is the only reference to its mbuf (see the module docs); freeing it from any
// thread is thread-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of `raw` (NULL gives `None`).
    ///
    /// # Safety
    /// `raw` must be NULL or a valid single-segment mbuf whose one reference the caller gives
    /// up, and no other reference to it may exist (reference count 1), since an `Mbuf` may
    /// write the data. The mbuf's pool must stay alive until it is freed.
    #[inline]
    pub unsafe fn from_raw(raw: *mut sys::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Gives up ownership without freeing (e.g. to `rte_eth_tx_burst`).
    #[inline]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The raw pointer, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.raw.as_ptr()
    }

    /// Bytes of data.
    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: self.raw is a live mbuf we own; a plain field read (rte_pktmbuf_data_len is
        // the same read in C, but a call the compiler cannot inline).
        usize::from(unsafe { (*self.raw.as_ptr()).data_len })
    }

    /// No data?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total length of the packet (equals `len()` unless the mbuf is chained).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        // SAFETY: self.raw is a live mbuf we own; a plain field read.
        unsafe { (*self.raw.as_ptr()).pkt_len as usize }
    }

    /// Free bytes in front of the data.
    pub fn headroom(&self) -> usize {
        // SAFETY: self.raw is a live mbuf.
        usize::from(unsafe { sys::rte_pktmbuf_headroom(self.raw.as_ptr()) })
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        // SAFETY: self.raw is a live mbuf.
        usize::from(unsafe { sys::rte_pktmbuf_tailroom(self.raw.as_ptr()) })
    }

    /// The data of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: buf_addr + data_off (what rte_pktmbuf_mtod computes) points at data_len
        // initialised bytes inside the mbuf's buffer, which lives as long as our reference;
        // the borrow of self keeps it alive.
        unsafe {
            let m = self.raw.as_ptr();
            std::slice::from_raw_parts(mtod(m), usize::from((*m).data_len))
        }
    }

    /// The data of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; an Mbuf is the only reference to its mbuf (from_raw's
        // contract), and &mut self makes this the only borrow.
        unsafe {
            let m = self.raw.as_ptr();
            std::slice::from_raw_parts_mut(mtod(m), usize::from((*m).data_len))
        }
    }

    /// Extends the data by `n` bytes at the end; returns them (uninitialised contents: old
    /// buffer bytes), or `None` if the tailroom is too small (nothing changes).
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        let m = self.raw.as_ptr();
        // SAFETY: m is a live mbuf we own (the only reference). rte_pktmbuf_append, inlined
        // here for the single segment an Mbuf holds (checked: `next` is NULL; otherwise the
        // C function handles the chain): if the tailroom buf_len - data_off - data_len holds
        // n bytes, the n bytes after the data become part of it and are returned; otherwise
        // nothing changes.
        unsafe {
            if !(*m).next.is_null() {
                let p = sys::rte_pktmbuf_append(m, n16).cast::<u8>();
                return (!p.is_null()).then(|| std::slice::from_raw_parts_mut(p, n));
            }
            let used = usize::from((*m).data_off) + usize::from((*m).data_len);
            if n > usize::from((*m).buf_len).saturating_sub(used) {
                return None;
            }
            let tail = (*m).buf_addr.cast::<u8>().add(used);
            (*m).data_len += n16;
            (*m).pkt_len += u32::from(n16);
            Some(std::slice::from_raw_parts_mut(tail, n))
        }
    }

    /// Extends the data by `n` bytes at the front; returns them, or `None` if the headroom
    /// is too small.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: as in `append`, for the headroom.
        unsafe {
            let p = sys::rte_pktmbuf_prepend(self.raw.as_ptr(), n16).cast::<u8>();
            (!p.is_null()).then(|| std::slice::from_raw_parts_mut(p, n))
        }
    }

    /// Removes `n` bytes from the end. False (nothing changes) if there are fewer.
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: rte_pktmbuf_trim checks the length and fails without changes.
        unsafe { sys::rte_pktmbuf_trim(self.raw.as_ptr(), n16) == 0 }
    }

    /// Removes `n` bytes from the front. False (nothing changes) if there are fewer.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: rte_pktmbuf_adj checks the length and fails (NULL) without changes.
        unsafe { !sys::rte_pktmbuf_adj(self.raw.as_ptr(), n16).is_null() }
    }

    /// The mbuf's reference count (1 for an `Mbuf` not yet turned into slices).
    pub fn refcnt(&self) -> u16 {
        // SAFETY: self.raw is a live mbuf.
        unsafe { refcnt_read(self.raw.as_ptr()) }
    }

    /// The offload flags (`RTE_MBUF_F_*`): RX results, TX requests.
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        // SAFETY: self.raw is a live mbuf; a plain field read.
        unsafe { (*self.raw.as_ptr()).ol_flags }
    }

    /// Requests TX checksum offload: header lengths and the `RTE_MBUF_F_TX_*` flags.
    #[inline]
    pub fn set_tx_offload(&mut self, l2_len: u16, l3_len: u16, l4_len: u16, tx_flags: u64) {
        // SAFETY: self.raw is a live mbuf we own; the helper writes its metadata fields.
        unsafe {
            sys::rust_mbuf_set_tx_offload(self.raw.as_ptr(), l2_len, l3_len, l4_len, tx_flags)
        }
    }

    /// Can this mbuf be reset and reused for transmit instead of going back to its pool?
    /// Only a plain (direct, not external), single-segment mbuf of `pool` that nobody else
    /// references.
    #[inline]
    pub fn recyclable_in(&self, pool: *const sys::rte_mempool) -> bool {
        let m = self.raw.as_ptr();
        // SAFETY: m is a live mbuf we own; plain field reads and the refcount read.
        unsafe {
            ptr::eq((*m).pool, pool)
                && (*m).next.is_null()
                && (*m).ol_flags & (sys::RTE_MBUF_F_INDIRECT | sys::RTE_MBUF_F_EXTERNAL) == 0
                && refcnt_read(m) == 1
        }
    }

    /// Resets to an empty single-segment packet with the default headroom, as a fresh
    /// allocation from the pool would be (`rte_pktmbuf_reset`).
    #[inline]
    pub fn reset(&mut self) {
        // SAFETY: we own the mbuf; rte_pktmbuf_reset only writes its metadata.
        unsafe { sys::rte_pktmbuf_reset(self.raw.as_ptr()) }
    }

    /// A zero-copy slice of `range` of the data, consuming this reference. Panics if `range`
    /// is out of bounds.
    #[inline]
    pub fn into_slice(self, range: Range<usize>) -> MbufSlice {
        let data = self.data();
        let bytes = &data[range];
        let (ptr, len) = (NonNull::from(bytes).cast::<u8>(), bytes.len());
        let raw = self.raw;
        std::mem::forget(self);
        MbufSlice { mbuf: raw, ptr, len }
    }
}

/// `rte_pktmbuf_mtod(m, uint8_t *)`: start of the data of `m`'s first segment.
///
/// # Safety
/// `m` must point to a live mbuf.
#[inline(always)]
unsafe fn mtod(m: *const sys::rte_mbuf) -> *mut u8 {
    (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off))
}

/// `rte_mbuf_refcnt_read`: DPDK 22.11 keeps the count in a `uint16_t` updated with
/// `__atomic` builtins (`RTE_MBUF_REFCNT_ATOMIC`), read relaxed.
///
/// # Safety
/// `m` must point to a live mbuf.
#[inline(always)]
unsafe fn refcnt_read(m: *mut sys::rte_mbuf) -> u16 {
    AtomicU16::from_ptr(ptr::addr_of_mut!((*m).refcnt)).load(Ordering::Relaxed)
}

/// `rte_mbuf_refcnt_update(m, 1)`, inlined: a sole owner (count 1) stores 2 without a locked
/// instruction, as the C function does; otherwise an atomic add.
///
/// # Safety
/// `m` must point to a live mbuf the caller holds a reference to.
#[inline(always)]
unsafe fn refcnt_inc(m: *mut sys::rte_mbuf) {
    let rc = AtomicU16::from_ptr(ptr::addr_of_mut!((*m).refcnt));
    if rc.load(Ordering::Relaxed) == 1 {
        rc.store(2, Ordering::Relaxed);
    } else {
        rc.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference; rte_pktmbuf_free drops it (freeing the mbuf if last).
        unsafe { sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf").field("ptr", &self.raw).field("len", &self.len()).finish()
    }
}

/// An immutable, reference-counted window into a received mbuf's data.
pub struct MbufSlice {
    mbuf: NonNull<sys::rte_mbuf>,
    /// Start of the window (inside the mbuf's data).
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: see the module docs: atomic reference counts, thread-safe free, immutable bytes.
unsafe impl Send for MbufSlice {}
// SAFETY: all access through &MbufSlice is reading immutable bytes.
unsafe impl Sync for MbufSlice {}

/// The sub-window `range` (relative) of the `len` bytes at `ptr`: its start and length.
/// Panics if `range` is out of bounds. Shared by the mbuf and arena slices.
#[inline]
pub(crate) fn narrow_window(
    ptr: NonNull<u8>,
    len: usize,
    range: Range<usize>,
) -> (NonNull<u8>, usize) {
    assert!(range.start <= range.end && range.end <= len, "slice {range:?} out of bounds of {len}");
    // SAFETY: range.start <= len, so the pointer stays inside (or one past) the window the
    // caller holds, which lies inside one live buffer.
    let start = unsafe { NonNull::new_unchecked(ptr.as_ptr().add(range.start)) };
    (start, range.end - range.start)
}

impl MbufSlice {
    /// Bytes in the window.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Empty window?
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A narrower window `range` (relative to this one) sharing the mbuf. Panics if `range`
    /// is out of bounds.
    #[inline]
    pub fn slice(&self, range: Range<usize>) -> MbufSlice {
        let mut s = self.clone();
        (s.ptr, s.len) = narrow_window(self.ptr, self.len, range);
        s
    }

    /// The mbuf's current reference count (for tests and diagnostics).
    pub fn refcnt(&self) -> u16 {
        // SAFETY: we hold a reference, so the mbuf is live.
        unsafe { refcnt_read(self.mbuf.as_ptr()) }
    }

    /// The mbuf this slice points into.
    pub fn mbuf_ptr(&self) -> *const sys::rte_mbuf {
        self.mbuf.as_ptr()
    }
}

impl Clone for MbufSlice {
    #[inline]
    fn clone(&self) -> MbufSlice {
        // SAFETY: we hold a reference, so the mbuf is live; the new reference is owned by the
        // returned slice and dropped by its Drop.
        unsafe { refcnt_inc(self.mbuf.as_ptr()) };
        MbufSlice { mbuf: self.mbuf, ptr: self.ptr, len: self.len }
    }
}

impl Drop for MbufSlice {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference; rte_pktmbuf_free decrements the count and returns the
        // mbuf to its pool when it reaches zero.
        unsafe { sys::rte_pktmbuf_free(self.mbuf.as_ptr()) }
    }
}

impl AsRef<[u8]> for MbufSlice {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len lies inside the data of an mbuf we hold a reference to; the
        // bytes are not written while slices exist (module docs).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::Deref for MbufSlice {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

impl fmt::Debug for MbufSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.as_ref();
        let head = &bytes[..bytes.len().min(16)];
        f.debug_struct("MbufSlice")
            .field("len", &self.len)
            .field("head", &format_args!("{head:02x?}"))
            .finish()
    }
}

impl PartialEq for MbufSlice {
    fn eq(&self, other: &MbufSlice) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for MbufSlice {}
