//! `rte_ring`s of mbufs: the lock-free hand-off between lcores ([`MbufRing`],
//! [`RingConsumer`]) and in-process Ethernet links made of rings ([`RingLink`]).
//!
//! An [`MbufRing`] is multi-producer (any lcore may enqueue, a compare-and-swap on the
//! producer head) and single-consumer: the one [`RingConsumer`] made with it is the only way
//! to dequeue. Its capacity is fixed at creation (`size - 1` entries, `size` a power of two);
//! an enqueue into a full ring hands the mbuf back to the caller, who frees and counts it.
//! Mbufs still in a ring when it is dropped are freed.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::error::DpdkError;
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::port::PortId;

/// Makes ring names unique within the process (`rte_ring` names are global).
static RING_SEQ: AtomicU32 = AtomicU32::new(0);

/// Mbufs moved per dequeue in [`MbufRing`]'s drop.
const DRAIN_BURST: usize = 32;

/// A bounded ring of owned mbufs (multi-producer; single-consumer through [`RingConsumer`]).
pub struct MbufRing {
    raw: NonNull<sys::rte_ring>,
    capacity: u32,
    /// The pool the mbufs in the ring come from: kept alive until they are freed.
    _pool: Arc<Mempool>,
}

// SAFETY: enqueue is multi-producer safe (the ring is created without RING_F_SP_ENQ); dequeue
// is only reachable through the unique RingConsumer (or in Drop, when no other reference
// exists). The mbufs inside are owned references, which may be freed from any thread.
unsafe impl Send for MbufRing {}
// SAFETY: see Send: &MbufRing only allows multi-producer enqueues and reads of the count.
unsafe impl Sync for MbufRing {}

/// The single consumer of an [`MbufRing`]. Not `Clone`: one consumer per ring.
pub struct RingConsumer {
    ring: Arc<MbufRing>,
}

impl MbufRing {
    /// A ring for `size - 1` mbufs (`size` a power of two, at least 2) of `pool`.
    pub fn new_mpsc(
        tag: &str,
        size: u32,
        pool: &Arc<Mempool>,
    ) -> Result<(Arc<MbufRing>, RingConsumer), DpdkError> {
        let raw = create_raw(tag, size, sys::RING_F_SC_DEQ)?;
        let ring = Arc::new(MbufRing { raw, capacity: size - 1, _pool: Arc::clone(pool) });
        let consumer = RingConsumer { ring: Arc::clone(&ring) };
        Ok((ring, consumer))
    }

    /// Entries the ring holds at most.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Entries in the ring now (a snapshot).
    pub fn len(&self) -> u32 {
        // SAFETY: the ring is valid; reads its head and tail indexes.
        unsafe { sys::rte_ring_count(self.raw.as_ptr()) }
    }

    /// Is it empty (a snapshot)?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Enqueues `m`; a full ring hands it back.
    #[inline]
    pub fn enqueue(&self, m: Mbuf) -> Result<(), Mbuf> {
        let p = m.into_raw().cast::<std::ffi::c_void>();
        // SAFETY: the ring is valid and multi-producer; one pointer from a valid array of one.
        let n =
            unsafe { sys::rte_ring_enqueue_burst(self.raw.as_ptr(), &p, 1, std::ptr::null_mut()) };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take it: we still own the reference we gave up above.
            Err(unsafe { Mbuf::from_raw(p.cast()) }.expect("non-null"))
        }
    }

    /// Dequeues up to `out.len()` mbuf pointers. Caller must be the only consumer.
    #[inline]
    fn dequeue_raw(&self, out: &mut [*mut sys::rte_mbuf]) -> usize {
        let n = u32::try_from(out.len()).unwrap_or(u32::MAX);
        // SAFETY: out has room for n pointers; the caller is the single consumer.
        let got = unsafe {
            sys::rte_ring_dequeue_burst(
                self.raw.as_ptr(),
                out.as_mut_ptr().cast(),
                n,
                std::ptr::null_mut(),
            )
        };
        got as usize
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        // No other reference exists: drain (freeing every mbuf), then free the ring.
        let mut buf = [std::ptr::null_mut(); DRAIN_BURST];
        loop {
            let n = self.dequeue_raw(&mut buf);
            if n == 0 {
                break;
            }
            // SAFETY: the n mbufs were owned by the ring, now by us.
            unsafe { sys::rte_pktmbuf_free_bulk(buf.as_mut_ptr(), n as u32) };
        }
        // SAFETY: the ring is valid, empty and unused (we are its last reference).
        unsafe { sys::rte_ring_free(self.raw.as_ptr()) };
    }
}

impl RingConsumer {
    /// The ring this consumer reads.
    pub fn ring(&self) -> &Arc<MbufRing> {
        &self.ring
    }

    /// Dequeues up to `out.len()` mbufs into `out` as raw pointers whose references now belong
    /// to the caller (wrap them with [`Mbuf::from_raw`] or free them). Returns how many.
    #[inline]
    pub(crate) fn dequeue_raw(&mut self, out: &mut [*mut sys::rte_mbuf]) -> usize {
        self.ring.dequeue_raw(out)
    }

    /// Dequeues one mbuf.
    pub fn dequeue(&mut self) -> Option<Mbuf> {
        let mut p = [std::ptr::null_mut()];
        if self.ring.dequeue_raw(&mut p) == 1 {
            // SAFETY: the ring held the one reference to this mbuf; it is ours now.
            unsafe { Mbuf::from_raw(p[0]) }
        } else {
            None
        }
    }
}

fn create_raw(tag: &str, size: u32, flags: u32) -> Result<NonNull<sys::rte_ring>, DpdkError> {
    if size < 2 || !size.is_power_of_two() {
        return Err(DpdkError::invalid(
            "rte_ring_create",
            format!("size {size}: a power of two >= 2"),
        ));
    }
    let seq = RING_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut name = format!("px{seq}_{tag}");
    name.truncate(sys::RTE_RING_NAMESIZE as usize - 1);
    let c = CString::new(name).map_err(|_| DpdkError::invalid("rte_ring_create", "NUL in tag"))?;
    // SAFETY: c is NUL-terminated and copied by DPDK; size is a power of two; the EAL is
    // initialised (a Mempool exists or the caller holds the Eal).
    let raw = unsafe { sys::rte_ring_create(c.as_ptr(), size, sys::SOCKET_ID_ANY, flags) };
    NonNull::new(raw).ok_or_else(|| DpdkError::from_rte_errno("rte_ring_create"))
}

/// A ring owned by a [`RingLink`] (the ring PMD reads and writes it).
struct LinkRing(NonNull<sys::rte_ring>);

// SAFETY: only the PMD (through the ports' queues) and our Drop touch the ring.
unsafe impl Send for LinkRing {}

/// Two ports joined back to back by rings: TX queue `i` of one arrives on RX queue `i` of the
/// other (`rte_eth_from_rings`, the net_ring PMD). An in-process Ethernet link with several
/// queue pairs, for tests: each side's queues are configured and started with
/// [`Port::configure`](super::Port::configure) as usual.
///
/// The ring PMD does not own these rings: they are freed when the link is dropped, which must
/// come after both ports are closed. If a port is still open then, the rings are leaked
/// (with a warning) rather than freed under it.
pub struct RingLink {
    ports: [PortId; 2],
    rings: Vec<LinkRing>,
    _pool: Arc<Mempool>,
}

impl RingLink {
    /// Ring size (frames in flight per queue and direction, minus one).
    pub const RING_SIZE: u32 = 1024;

    /// Ports named `net_ring_<a>` and `net_ring_<b>`, `queues` queue pairs each, carrying
    /// mbufs of `pool`.
    pub fn new(a: &str, b: &str, queues: u16, pool: &Arc<Mempool>) -> Result<RingLink, DpdkError> {
        if queues == 0 {
            return Err(DpdkError::invalid("rte_eth_from_rings", "at least one queue"));
        }
        let mut link =
            RingLink { ports: [PortId(u16::MAX); 2], rings: Vec::new(), _pool: Arc::clone(pool) };
        // a_to_b[i]: TX queue i of a -> RX queue i of b; b_to_a the other way.
        let flags = sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ;
        let mut a_to_b = Vec::new();
        let mut b_to_a = Vec::new();
        for i in 0..queues {
            let r = create_raw(&format!("{a}>{i}"), Self::RING_SIZE, flags)?;
            link.rings.push(LinkRing(r));
            a_to_b.push(r.as_ptr());
            let r = create_raw(&format!("{b}>{i}"), Self::RING_SIZE, flags)?;
            link.rings.push(LinkRing(r));
            b_to_a.push(r.as_ptr());
        }
        for (k, (name, rx, tx)) in
            [(a, &b_to_a, &a_to_b), (b, &a_to_b, &b_to_a)].into_iter().enumerate()
        {
            let c = CString::new(name)
                .map_err(|_| DpdkError::invalid("rte_eth_from_rings", "NUL in name"))?;
            // SAFETY: c is NUL-terminated; rx and tx hold `queues` valid rings that outlive the
            // port (see the type's docs); the PMD copies the arrays.
            let ret = unsafe {
                sys::rte_eth_from_rings(
                    c.as_ptr(),
                    rx.as_ptr(),
                    u32::from(queues),
                    tx.as_ptr(),
                    u32::from(queues),
                    sys::SOCKET_ID_ANY as u32,
                )
            };
            if ret < 0 {
                return Err(DpdkError::from_rte_errno("rte_eth_from_rings"));
            }
            link.ports[k] = PortId(ret as u16);
        }
        Ok(link)
    }

    /// The two ports (`a`, `b`).
    pub fn ports(&self) -> (PortId, PortId) {
        (self.ports[0], self.ports[1])
    }
}

impl Drop for RingLink {
    fn drop(&mut self) {
        // SAFETY: plain queries of port ids.
        let open = self
            .ports
            .iter()
            .filter(|p| p.0 != u16::MAX && unsafe { sys::rte_eth_dev_is_valid_port(p.0) } != 0)
            .count();
        if open > 0 {
            log::warn!("RingLink dropped while {open} of its ports are open: rings leaked");
            return;
        }
        let mut buf: [*mut sys::rte_mbuf; DRAIN_BURST] = [std::ptr::null_mut(); DRAIN_BURST];
        for r in &self.rings {
            loop {
                // SAFETY: the ports are closed: nobody else uses the ring; buf has room.
                let n = unsafe {
                    sys::rte_ring_dequeue_burst(
                        r.0.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        DRAIN_BURST as u32,
                        std::ptr::null_mut(),
                    )
                };
                if n == 0 {
                    break;
                }
                // SAFETY: the n mbufs were owned by the ring, now by us.
                unsafe { sys::rte_pktmbuf_free_bulk(buf.as_mut_ptr(), n) };
            }
            // SAFETY: unused and empty.
            unsafe { sys::rte_ring_free(r.0.as_ptr()) };
        }
    }
}
