//! Packet-buffer pools (`rte_pktmbuf_pool_create`) and how big to make them.
//!
//! # Sizing
//!
//! Every mbuf that can be out of the pool at the same moment must be counted, or RX stops
//! (the NIC has nothing to refill descriptors with) and TX fails with `NoBuffer`:
//!
//! ```text
//! n = ports * (rx_desc + tx_desc)      descriptors hold mbufs (RX: refill; TX: until sent)
//!   + lcores * (burst + cache)         one burst in flight per lcore + its mempool cache
//!   + pinned                           mbufs the protocol keeps after the burst
//! rounded up to 2^k - 1                (the ring under the pool holds 2^k - 1 entries)
//! ```
//!
//! `pinned` is what the Paxos window can hold on to. Received payloads longer than
//! [`COPY_THRESHOLD_BYTES`](super::COPY_THRESHOLD_BYTES) stay in their receive mbuf (zero
//! copy); an acceptor keeps an accepted value (and a learner a candidate value) until the slot
//! is trimmed, so with `window` slots in flight and every node of the pool holding one value
//! per slot, `pinned = window * holders`, plus whatever trim lag allows beyond the window.
//! Shorter payloads are copied to the heap and pin nothing; values the leader builds are heap
//! values too. See [`pinned_mbufs`].

use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use dpdk_sys as sys;

use super::error::DpdkError;
use super::mbuf::Mbuf;

/// Mempools alive (or leaked): [`Eal::cleanup`](super::Eal::cleanup) is refused while > 0.
static LIVE_POOLS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn live_pools() -> usize {
    LIVE_POOLS.load(Ordering::Acquire)
}

/// The inputs of the pool-sizing formula (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSizing {
    /// Ports whose queues take mbufs from this pool.
    pub ports: u32,
    /// RX descriptors per port (summed over its queues).
    pub rx_desc: u32,
    /// TX descriptors per port (summed over its queues).
    pub tx_desc: u32,
    /// Lcores allocating from this pool.
    pub lcores: u32,
    /// RX/TX burst size.
    pub burst: u32,
    /// Per-lcore mempool cache.
    pub cache: u32,
    /// Mbufs the protocol may keep beyond a burst ([`pinned_mbufs`]).
    pub pinned: u32,
    /// Transports ([`DpdkIo`](super::DpdkIo)s) on this pool: each keeps up to
    /// [`SPARE_MBUFS`](super::io::SPARE_MBUFS) received mbufs for its next transmits.
    pub transports: u32,
}

impl PoolSizing {
    /// `ports*(rx_desc+tx_desc) + lcores*(burst+cache) + pinned + transports*SPARE_MBUFS`,
    /// rounded up to `2^k - 1`.
    pub fn mbufs(&self) -> u32 {
        let n = u64::from(self.ports) * (u64::from(self.rx_desc) + u64::from(self.tx_desc))
            + u64::from(self.lcores) * (u64::from(self.burst) + u64::from(self.cache))
            + u64::from(self.pinned)
            + u64::from(self.transports) * super::io::SPARE_MBUFS as u64;
        round_to_pow2_minus_1(n)
    }
}

/// Smallest `2^k - 1 >= n` (at least 1), saturating at `u32::MAX`.
pub fn round_to_pow2_minus_1(n: u64) -> u32 {
    let p = (n.max(1) + 1).next_power_of_two() - 1;
    u32::try_from(p).unwrap_or(u32::MAX)
}

/// Mbufs the Paxos window can pin: `window_slots` slots in flight, each holding one value per
/// holder (every acceptor and learner sharing this pool: in single-process mode, every
/// replica on the lcore), plus `trim_lag_slots` decided slots not yet trimmed. Only values
/// longer than the copy threshold pin an mbuf; pass 0 when every value is shorter.
pub fn pinned_mbufs(window_slots: u32, trim_lag_slots: u32, holders: u32) -> u32 {
    (window_slots.saturating_add(trim_lag_slots)).saturating_mul(holders)
}

/// A NUMA socket for allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socket {
    /// No preference (`SOCKET_ID_ANY`).
    Any,
    /// This socket.
    Id(u32),
}

impl Socket {
    fn raw(self) -> c_int {
        match self {
            Socket::Any => sys::SOCKET_ID_ANY,
            Socket::Id(id) => id as c_int,
        }
    }
}

/// A pool of packet mbufs. Share it with `Arc<Mempool>`: ports and transports keep a handle.
///
/// Dropping the last handle frees the pool only if every mbuf is back; otherwise the pool is
/// leaked (with a warning) so that mbufs still out never point to freed memory, and
/// [`Eal::cleanup`](super::Eal::cleanup) is then refused.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    name: String,
    size: u32,
}

// SAFETY: rte_mempool get/put are thread-safe (multi-producer/consumer ring; per-lcore caches
// are indexed by the calling lcore, and non-EAL threads bypass the cache). The struct itself
// is immutable after creation.
unsafe impl Send for Mempool {}
// SAFETY: as above: every method takes &self and calls thread-safe mempool functions.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n_mbufs` mbufs (use [`PoolSizing::mbufs`]) with a per-lcore cache
    /// of `cache` and `data_room` bytes per mbuf (including `RTE_PKTMBUF_HEADROOM`; use
    /// `RTE_MBUF_DEFAULT_BUF_SIZE` for standard frames). `name` must be unique.
    pub fn new(
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: Socket,
    ) -> Result<Mempool, DpdkError> {
        let c_name = CString::new(name)
            .map_err(|_| DpdkError::invalid("rte_pktmbuf_pool_create", "NUL in pool name"))?;
        if cache > sys::RTE_MEMPOOL_CACHE_MAX_SIZE {
            return Err(DpdkError::invalid(
                "rte_pktmbuf_pool_create",
                format!("cache {cache} > RTE_MEMPOOL_CACHE_MAX_SIZE"),
            ));
        }
        // SAFETY: c_name is NUL-terminated and outlives the call (DPDK copies the name); the
        // other arguments are plain values. Needs an initialised EAL: on a process without one
        // DPDK fails cleanly with rte_errno set.
        let p = unsafe {
            sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                n_mbufs,
                cache,
                0,
                data_room,
                socket.raw(),
            )
        };
        let raw =
            NonNull::new(p).ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create"))?;
        LIVE_POOLS.fetch_add(1, Ordering::AcqRel);
        Ok(Mempool { raw, name: name.to_owned(), size: n_mbufs })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mbufs in the pool when all are free.
    pub fn capacity(&self) -> u32 {
        self.size
    }

    /// Free mbufs (including those in lcore caches).
    pub fn avail_count(&self) -> u32 {
        // SAFETY: self.raw is a live pool.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs taken out and not yet returned.
    pub fn in_use_count(&self) -> u32 {
        // SAFETY: self.raw is a live pool.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// One mbuf (reset, empty), or `None` if the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: self.raw is a live pool; a non-NULL result is a fresh mbuf we now own.
        unsafe { Mbuf::from_raw(sys::rte_pktmbuf_alloc(self.raw.as_ptr())) }
    }

    /// The raw pool, for FFI calls (queue setup).
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let in_use = self.in_use_count();
        if in_use > 0 {
            log::warn!(
                "mempool {}: {in_use} mbuf(s) still in use; leaking the pool (EAL cleanup will be refused)",
                self.name
            );
            return;
        }
        // SAFETY: every mbuf is back in the pool and no port queue can refer to it (ports
        // hold an Arc to the pool); the pool is freed exactly once.
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) };
        LIVE_POOLS.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_pow2_minus_1() {
        assert_eq!(round_to_pow2_minus_1(0), 1);
        assert_eq!(round_to_pow2_minus_1(1), 1);
        assert_eq!(round_to_pow2_minus_1(2), 3);
        assert_eq!(round_to_pow2_minus_1(1023), 1023);
        assert_eq!(round_to_pow2_minus_1(1024), 2047);
        assert_eq!(round_to_pow2_minus_1(u64::MAX / 2), u32::MAX);
    }

    #[test]
    fn sizing_formula() {
        let s = PoolSizing {
            ports: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            lcores: 2,
            burst: 32,
            cache: 256,
            pinned: pinned_mbufs(256, 256, 1),
            transports: 1,
        };
        // 2048 + 576 + 512 + 32 = 3168 -> 4095
        assert_eq!(s.mbufs(), 4095);
        let s = PoolSizing { transports: 40, ..s };
        // 3136 + 40 * 32 = 4416 -> 8191
        assert_eq!(s.mbufs(), 8191);
    }
}
