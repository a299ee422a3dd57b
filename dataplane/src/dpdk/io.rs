//! [`DpdkIo`]: the [`PacketIo`] transport over one DPDK queue pair.
//!
//! # Receive path (per `recv_burst`)
//!
//! `rte_eth_rx_burst` of up to [`BURST`] mbufs into an array the transport owns, then per
//! mbuf: [`parse_udp_frame`] (software checksum checks skipped where the NIC flagged them
//! good, frames it flagged bad dropped) ->
//! * ARP: requests for our IP answered, replies for us learned into the ARP cache;
//! * other drops counted by [`FrameDrop`] cause in [`Counters::frame_drops`];
//! * UDP to a port we do not serve: `unknown_port`;
//! * UDP for us: a [`Datagram`] whose `data` is the payload: a slice of the receive mbuf
//!   (zero copy, the slice holds the mbuf) or, up to the copy threshold, a heap copy (see
//!   [`super::buf`]).
//!
//! # Transmit path
//!
//! `send_with` takes an mbuf from the pool, appends `42 + len` bytes, lets the caller's
//! `fill` encode the payload in place at offset 42, writes the headers in front
//! ([`emit_udp_frame`]; checksums by the NIC when TX offload is on, else in software) and
//! queues the mbuf in a [`BURST`]-sized array, pushed with `rte_eth_tx_burst` when full or on
//! [`flush`](PacketIo::flush). Mbufs the device did not take are freed and counted in
//! `tx_full_frees`. A destination whose MAC is unknown triggers an ARP request (at most one
//! per destination per [`ARP_RETRY_NS`]) and `TxError::Unresolved`.
//!
//! Nothing is allocated per packet: the mbuf arrays are fixed, the ARP cache is fixed-size,
//! copied payloads are carved from a shared arena.
//!
//! # Mbuf recycling
//!
//! A received mbuf whose payload was copied out (or that was dropped) and that is a plain
//! single-segment mbuf of this transport's pool with no other reference is kept, up to
//! [`SPARE_MBUFS`], and reset for the next transmit instead of going back to the pool and
//! out again; the rest go back with one `rte_mempool_put_bulk` per burst (or
//! `rte_pktmbuf_free_bulk` if any of them is chained, indirect or shared). When no spare
//! is left, transmit takes [`BURST`] mbufs at once with `rte_pktmbuf_alloc_bulk` (one at a
//! time when the pool has fewer). So each transport may hold up to [`SPARE_MBUFS`] mbufs
//! ([`DpdkIo::spare_mbufs`]); dropping it returns them. This replaces a C call to
//! `rte_pktmbuf_free` per received frame and to `rte_pktmbuf_alloc` per transmitted one.
//!
//! Several endpoints on one queue or one port: see [`super::dispatch`].

use std::net::Ipv4Addr;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use dpdk_sys as sys;

use super::buf::{CopyArena, DpdkBuf, DpdkValueBuilder, COPY_THRESHOLD_BYTES};
use super::dispatch::SharedQueue;
use super::error::DpdkError;
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::port::{mac_of, Port, PortId, QueueId};
use crate::counters::Counters;
use crate::io::{Datagram, Endpoint, PacketIo, TxError};
use crate::wire::{
    arp_reply_for, arp_request, emit_arp_frame, emit_udp_frame,
    emit_udp_frame_without_udp_checksum, parse_arp_frame, parse_udp_frame, ArpCache, ArpOperation,
    Checksum, ChecksumPolicy, FrameDrop, MacAddr, UdpFrameHeader, ARP_FRAME_LEN,
    UDP_FRAME_HEADER_LEN,
};

/// Mbufs per RX burst and per TX buffer.
pub const BURST: usize = 32;

/// Most mbufs a transport keeps for transmit (see "Mbuf recycling" in the module docs).
pub const SPARE_MBUFS: usize = BURST;

/// ARP cache entries per transport (a cluster is a handful of peers plus clients).
pub const ARP_CACHE_ENTRIES: usize = 64;

/// Minimum time between two ARP requests for the same address.
pub const ARP_RETRY_NS: u64 = 100_000_000;

/// Destinations with an ARP request outstanding (for rate limiting).
const ARP_PENDING: usize = 8;

/// How a [`DpdkIo`] is addressed.
#[derive(Clone, Debug)]
pub struct DpdkIoConfig {
    /// Our IPv4 address.
    pub ip: Ipv4Addr,
    /// The UDP port we serve.
    pub udp_port: u16,
    /// Our MAC; `None` takes the port's.
    pub mac: Option<MacAddr>,
    /// Static ARP entries (peers known in advance).
    pub static_arp: Vec<(Ipv4Addr, MacAddr)>,
    /// Received datagrams up to this length are copied to the heap (see [`super::buf`]).
    pub copy_threshold: usize,
    /// IP MTU: bounds `max_payload` (MTU - 28).
    pub mtu: u16,
    /// Send UDP checksum 0 ("none", legal for IPv4; receivers skip the check) when the
    /// device has no TX checksum offload. Only for links that cannot corrupt frames
    /// (net_ring, net_memif: memory copies). The IPv4 header checksum is always filled.
    /// Saves computing a checksum over every payload on both ends.
    pub trust_link: bool,
}

impl DpdkIoConfig {
    /// Defaults for `ip:udp_port`: the port's MAC, no static ARP, standard threshold and MTU.
    pub fn new(ip: Ipv4Addr, udp_port: u16) -> DpdkIoConfig {
        DpdkIoConfig {
            ip,
            udp_port,
            mac: None,
            static_arp: Vec::new(),
            copy_threshold: COPY_THRESHOLD_BYTES,
            mtu: 1500,
            trust_link: false,
        }
    }
}

/// Where a [`DpdkIo`] receives from.
enum RxSource {
    /// It owns the RX queue.
    Direct,
    /// It shares the queue with other endpoints ([`SharedQueue`]).
    Shared { queue: Rc<SharedQueue>, index: usize },
}

/// The DPDK transport for one endpoint (one IPv4 address + UDP port) on one queue pair.
///
/// Not `Send`: build it on the lcore that polls it (the queue pair belongs to that lcore).
pub struct DpdkIo {
    port: PortId,
    queue: QueueId,
    pool: Arc<Mempool>,
    local: Endpoint,
    counters: Arc<Counters>,
    arp: ArpCache<ARP_CACHE_ENTRIES>,
    arp_pending: [(Ipv4Addr, u64); ARP_PENDING],
    arp_retry_cycles: u64,
    source: RxSource,
    rx: [*mut sys::rte_mbuf; BURST],
    tx: [*mut sys::rte_mbuf; BURST],
    tx_bytes: [u32; BURST],
    tx_len: usize,
    /// Reset-on-take mbufs for transmit: recycled receive mbufs and bulk allocations.
    spare: [*mut sys::rte_mbuf; SPARE_MBUFS],
    n_spare: usize,
    /// Received mbufs to free at the end of the burst (when `spare` is full).
    dead: [*mut sys::rte_mbuf; BURST],
    n_dead: usize,
    /// Every mbuf in `dead` passed `recyclable_in`.
    dead_plain: bool,
    rx_checksum_offload: bool,
    tx_checksum_offload: bool,
    trust_link: bool,
    arena: CopyArena,
    copy_threshold: usize,
    max_payload: usize,
    ip_id: u16,
}

impl DpdkIo {
    /// A transport owning RX/TX queue `queue` of `port` (which must be started).
    pub fn new(
        port: &Port,
        queue: QueueId,
        pool: Arc<Mempool>,
        cfg: &DpdkIoConfig,
        counters: Arc<Counters>,
    ) -> Result<DpdkIo, DpdkError> {
        let source = RxSource::Direct;
        DpdkIo::build(port, queue, pool, cfg, counters, source)
    }

    /// A transport sharing `shared`'s queue with other endpoints (software dispatch).
    pub fn on_shared(
        port: &Port,
        shared: &Rc<SharedQueue>,
        pool: Arc<Mempool>,
        cfg: &DpdkIoConfig,
        counters: Arc<Counters>,
    ) -> Result<DpdkIo, DpdkError> {
        if shared.port != port.id() {
            return Err(DpdkError::invalid("DpdkIo::on_shared", "shared queue is on another port"));
        }
        let mut io = DpdkIo::build(port, shared.queue, pool, cfg, counters, RxSource::Direct)?;
        let index = shared.register(io.local.mac, cfg.ip, cfg.udp_port);
        io.source = RxSource::Shared { queue: Rc::clone(shared), index };
        Ok(io)
    }

    fn build(
        port: &Port,
        queue: QueueId,
        pool: Arc<Mempool>,
        cfg: &DpdkIoConfig,
        counters: Arc<Counters>,
        source: RxSource,
    ) -> Result<DpdkIo, DpdkError> {
        let (n_rx, n_tx) = port.queues();
        if queue.0 >= n_rx || queue.0 >= n_tx {
            return Err(DpdkError::invalid("DpdkIo::new", format!("no queue {} on port", queue.0)));
        }
        let mac = match cfg.mac {
            Some(m) => m,
            None => mac_of(port.id())?,
        };
        if !mac.is_unicast() {
            return Err(DpdkError::invalid(
                "DpdkIo::new",
                format!("MAC {mac} is not unicast (net_ring ports have 00:00:00:00:00:00): set DpdkIoConfig::mac"),
            ));
        }
        let mut arp = ArpCache::new();
        for &(ip, m) in &cfg.static_arp {
            if !arp.insert_static(ip, m) {
                return Err(DpdkError::invalid("DpdkIo::new", format!("static ARP {ip} -> {m}")));
            }
        }
        // SAFETY: reads the TSC frequency the EAL measured at init.
        let hz = unsafe { sys::rust_get_tsc_hz() };
        let offloads = port.offloads();
        let max_payload =
            usize::from(cfg.mtu).saturating_sub(28).min(crate::wire::MAX_UDP_FRAME_PAYLOAD_LEN);
        Ok(DpdkIo {
            port: port.id(),
            queue,
            pool,
            local: Endpoint::new(mac, cfg.ip, cfg.udp_port),
            counters,
            arp,
            arp_pending: [(Ipv4Addr::UNSPECIFIED, 0); ARP_PENDING],
            arp_retry_cycles: (u128::from(hz) * u128::from(ARP_RETRY_NS) / 1_000_000_000) as u64,
            source,
            rx: [ptr::null_mut(); BURST],
            tx: [ptr::null_mut(); BURST],
            tx_bytes: [0; BURST],
            tx_len: 0,
            spare: [ptr::null_mut(); SPARE_MBUFS],
            n_spare: 0,
            dead: [ptr::null_mut(); BURST],
            n_dead: 0,
            dead_plain: true,
            rx_checksum_offload: offloads.rx_checksum(),
            tx_checksum_offload: offloads.tx_checksum(),
            trust_link: cfg.trust_link,
            arena: CopyArena::default(),
            copy_threshold: cfg.copy_threshold,
            max_payload,
            ip_id: 0,
        })
    }

    /// This transport's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The pool transmit mbufs come from.
    pub fn pool(&self) -> &Arc<Mempool> {
        &self.pool
    }

    /// The port and queue it uses.
    pub fn queue(&self) -> (PortId, QueueId) {
        (self.port, self.queue)
    }

    /// The ARP cache (static entries plus what was learned).
    pub fn arp_cache(&self) -> &ArpCache<ARP_CACHE_ENTRIES> {
        &self.arp
    }

    /// Mbufs queued for transmission and not yet flushed.
    pub fn tx_pending(&self) -> usize {
        self.tx_len
    }

    /// Mbufs held for transmit (at most [`SPARE_MBUFS`]; see "Mbuf recycling").
    pub fn spare_mbufs(&self) -> u32 {
        self.n_spare as u32
    }

    /// Done with a received mbuf: kept for transmit if it can be, else returned with the burst.
    #[inline]
    fn retire(&mut self, m: Mbuf) {
        let plain = m.recyclable_in(self.pool.as_ptr());
        if plain && self.n_spare < SPARE_MBUFS {
            self.spare[self.n_spare] = m.into_raw();
            self.n_spare += 1;
            return;
        }
        if self.n_dead == BURST {
            self.free_dead();
        }
        self.dead[self.n_dead] = m.into_raw();
        self.dead_plain &= plain;
        self.n_dead += 1;
    }

    /// Returns the mbufs in `dead`. When every one is a plain mbuf of our pool with no other
    /// reference (`recyclable_in`), `rte_pktmbuf_free` would do nothing but put it back in
    /// the pool, so they go back with one `rte_mempool_put_bulk`; otherwise through
    /// `rte_pktmbuf_free_bulk`, which handles chains, indirect mbufs and shared references.
    fn free_dead(&mut self) {
        if self.n_dead == 0 {
            return;
        }
        if self.dead_plain {
            // SAFETY: dead[..n_dead] are mbufs we own, each direct, single-segment, with
            // reference count 1 and from self.pool (recyclable_in): the state
            // rte_pktmbuf_free leaves them in before it puts them back in their pool.
            unsafe {
                sys::rte_mempool_put_bulk(
                    self.pool.as_ptr(),
                    self.dead.as_mut_ptr().cast(),
                    self.n_dead as u32,
                )
            };
        } else {
            // SAFETY: dead[..n_dead] are mbufs we own and no longer use.
            unsafe { sys::rte_pktmbuf_free_bulk(self.dead.as_mut_ptr(), self.n_dead as u32) };
        }
        self.n_dead = 0;
        self.dead_plain = true;
    }

    /// An empty mbuf for transmit: a spare, else a bulk allocation, else one from the pool.
    #[inline]
    fn take_mbuf(&mut self) -> Option<Mbuf> {
        if self.n_spare == 0 {
            // SAFETY: spare has room for BURST pointers; on success (0) each is a fresh, reset
            // mbuf we now own; on failure nothing was taken.
            let rc = unsafe {
                sys::rte_pktmbuf_alloc_bulk(
                    self.pool.as_ptr(),
                    self.spare.as_mut_ptr(),
                    SPARE_MBUFS as u32,
                )
            };
            if rc != 0 {
                return self.pool.alloc();
            }
            self.n_spare = SPARE_MBUFS;
        }
        self.n_spare -= 1;
        // SAFETY: spare[..n_spare + 1] are mbufs we own (recycled: recyclable_in checked them;
        // or freshly allocated); this one leaves the array.
        let mut m = unsafe { Mbuf::from_raw(self.spare[self.n_spare]) }?;
        m.reset();
        Some(m)
    }

    /// Queues a raw Ethernet frame (for tests and tools); the frame is copied into an mbuf.
    pub fn send_raw_frame(&mut self, frame: &[u8]) -> Result<(), TxError> {
        let Some(mut m) = self.pool.alloc() else {
            self.counters.tx_no_buffer.inc();
            return Err(TxError::NoBuffer);
        };
        let Some(buf) = m.append(frame.len()) else { return Err(TxError::TooLarge) };
        buf.copy_from_slice(frame);
        self.queue_tx(m);
        Ok(())
    }

    /// Queues a complete frame already built in `m` (ownership passes to the TX path).
    pub fn send_mbuf(&mut self, m: Mbuf) {
        self.queue_tx(m);
    }

    /// Handles one received frame: ARP, a drop, or a datagram appended to `out`.
    #[inline]
    fn handle_frame(&mut self, m: Mbuf, out: &mut Vec<Datagram<DpdkBuf>>) -> bool {
        let c = &self.counters;
        c.rx_packets.inc();
        c.rx_bytes.add(m.len() as u64);
        if m.pkt_len() != m.len() {
            // Scattered RX is never enabled; a chained frame is not ours to handle.
            c.frame_drop(FrameDrop::Truncated);
            return false;
        }
        let policy = match self.rx_policy(&m) {
            Ok(p) => p,
            Err(cause) => {
                c.frame_drop(cause);
                self.retire(m);
                return false;
            }
        };
        let (src, dst_port, range) =
            match parse_udp_frame(m.data(), self.local.mac, self.local.ip, policy) {
                Ok(f) => (
                    Endpoint::new(f.src_mac, f.src_ip, f.src_port),
                    f.dst_port,
                    f.payload_offset..f.payload_offset + f.payload.len(),
                ),
                Err(FrameDrop::Arp) => {
                    self.handle_arp(&m);
                    self.retire(m);
                    return false;
                }
                Err(cause) => {
                    c.frame_drop(cause);
                    self.retire(m);
                    return false;
                }
            };
        if dst_port != self.local.port {
            c.unknown_port.inc();
            self.retire(m);
            return false;
        }
        // The datagram is written straight into the vector's spare slot, with the payload
        // handle made inside the write: `out.push(..)` (and moving a finished handle) built
        // it on the stack from narrow stores and copied it at once with wide loads, a failed
        // store-to-load forward (~15 cycles) per frame.
        if out.len() == out.capacity() {
            // Callers pass vectors with room for a burst; grow only if one did not.
            out.reserve(BURST);
        }
        let len = out.len();
        let Some(slot) = out.spare_capacity_mut().first_mut() else { return false };
        if range.len() <= self.copy_threshold {
            let copied = self.arena.copy(&m.data()[range]);
            slot.write(Datagram { src, dst_port, data: DpdkBuf::Copied(copied) });
            self.retire(m);
        } else {
            slot.write(Datagram { src, dst_port, data: DpdkBuf::Mbuf(m.into_slice(range)) });
        }
        // SAFETY: the element at `len` (< capacity) was just initialised.
        unsafe { out.set_len(len + 1) };
        true
    }

    /// What the NIC already checked (only when RX checksum offload is on).
    #[inline]
    fn rx_policy(&self, m: &Mbuf) -> Result<ChecksumPolicy, FrameDrop> {
        if !self.rx_checksum_offload {
            return Ok(ChecksumPolicy::VERIFY_ALL);
        }
        let flags = m.ol_flags();
        let ip = flags & sys::RTE_MBUF_F_RX_IP_CKSUM_MASK;
        let l4 = flags & sys::RTE_MBUF_F_RX_L4_CKSUM_MASK;
        if ip == sys::RTE_MBUF_F_RX_IP_CKSUM_BAD || l4 == sys::RTE_MBUF_F_RX_L4_CKSUM_BAD {
            return Err(FrameDrop::BadChecksum);
        }
        Ok(ChecksumPolicy {
            verify_ip: ip != sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD,
            verify_udp: l4 != sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD,
        })
    }

    fn handle_arp(&mut self, m: &Mbuf) {
        let arp = match parse_arp_frame(m.data()) {
            Ok(a) if a.target_ip == self.local.ip => a,
            _ => {
                self.counters.frame_drop(FrameDrop::Arp);
                return;
            }
        };
        // Either way the sender told us its address (static entries are not overridden).
        self.arp.insert(arp.sender_ip, arp.sender_mac);
        match arp.operation {
            ArpOperation::Request => {
                if let Some(reply) = arp_reply_for(&arp, self.local.mac, self.local.ip) {
                    if self.send_arp(reply.target_mac, &reply) {
                        self.counters.arp_requests_answered.inc();
                    }
                }
            }
            ArpOperation::Reply => {
                self.counters.arp_replies_learned.inc();
                self.forget_pending(arp.sender_ip);
            }
            _ => self.counters.frame_drop(FrameDrop::Arp),
        }
    }

    fn send_arp(&mut self, dst_mac: MacAddr, arp: &crate::wire::ArpRepr) -> bool {
        let Some(mut m) = self.pool.alloc() else {
            self.counters.tx_no_buffer.inc();
            return false;
        };
        let Some(buf) = m.append(ARP_FRAME_LEN) else { return false };
        emit_arp_frame(buf, self.local.mac, dst_mac, arp);
        self.queue_tx(m);
        true
    }

    /// The MAC for `to`, or `Unresolved` after (rate-limited) asking for it.
    #[inline]
    fn resolve(&mut self, to: &Endpoint) -> Result<MacAddr, TxError> {
        if to.mac.is_unicast() {
            return Ok(to.mac);
        }
        if let Some(mac) = self.arp.lookup(to.ip) {
            return Ok(mac);
        }
        self.counters.tx_unresolved.inc();
        self.maybe_request_arp(to.ip);
        Err(TxError::Unresolved)
    }

    fn maybe_request_arp(&mut self, ip: Ipv4Addr) {
        // SAFETY: reads the TSC; no side effects.
        let now = unsafe { sys::rust_rdtsc() };
        let slot = match self.arp_pending.iter().position(|(p, _)| *p == ip) {
            Some(i) if now.wrapping_sub(self.arp_pending[i].1) < self.arp_retry_cycles => return,
            Some(i) => i,
            // Replace the oldest request.
            None => (0..ARP_PENDING).min_by_key(|&i| self.arp_pending[i].1).unwrap_or(0),
        };
        self.arp_pending[slot] = (ip, now);
        let req = arp_request(self.local.mac, self.local.ip, ip);
        if self.send_arp(MacAddr::BROADCAST, &req) {
            self.counters.arp_requests_sent.inc();
            self.flush();
        }
    }

    fn forget_pending(&mut self, ip: Ipv4Addr) {
        for p in self.arp_pending.iter_mut().filter(|p| p.0 == ip) {
            *p = (Ipv4Addr::UNSPECIFIED, 0);
        }
    }

    #[inline]
    fn queue_tx(&mut self, m: Mbuf) {
        let m = match &self.source {
            RxSource::Direct => m,
            RxSource::Shared { queue, .. } => {
                let len = m.len() as u64;
                match queue.deliver_local(m) {
                    None => {
                        self.counters.tx_packets.inc();
                        self.counters.tx_bytes.add(len);
                        return;
                    }
                    Some(m) => m,
                }
            }
        };
        if self.tx_len == BURST {
            self.flush();
        }
        self.tx_bytes[self.tx_len] = m.len() as u32;
        self.tx[self.tx_len] = m.into_raw();
        self.tx_len += 1;
        if self.tx_len == BURST {
            self.flush();
        }
    }
}

impl PacketIo for DpdkIo {
    type Buf = DpdkBuf;
    type Builder = DpdkValueBuilder;

    fn value_builder(&mut self) -> DpdkValueBuilder {
        DpdkValueBuilder::default()
    }

    fn recv_burst(&mut self, out: &mut Vec<Datagram<DpdkBuf>>, max: usize) -> usize {
        let max = max.min(BURST);
        let mut delivered = 0;
        match &mut self.source {
            RxSource::Direct => {
                // SAFETY: self.rx has room for `max <= BURST` pointers; the queue belongs to
                // this transport (one poller per queue).
                let n = usize::from(unsafe {
                    sys::rte_eth_rx_burst(
                        self.port.0,
                        self.queue.0,
                        self.rx.as_mut_ptr(),
                        max as u16,
                    )
                });
                for i in 0..n {
                    let p = self.rx[i];
                    // SAFETY: rx_burst returned n fresh mbufs whose references we now own.
                    if let Some(m) = unsafe { Mbuf::from_raw(p) } {
                        delivered += usize::from(self.handle_frame(m, out));
                    }
                }
            }
            RxSource::Shared { queue, index } => {
                let (queue, index) = (Rc::clone(queue), *index);
                if queue.inbox_len(index) == 0 {
                    queue.poll();
                }
                for _ in 0..max {
                    let Some(m) = queue.pop(index) else { break };
                    delivered += usize::from(self.handle_frame(m, out));
                }
            }
        }
        self.free_dead();
        delivered
    }

    fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        to: &Endpoint,
        len: usize,
        fill: F,
    ) -> Result<(), TxError> {
        if len > self.max_payload {
            return Err(TxError::TooLarge);
        }
        let dst_mac = self.resolve(to)?;
        let Some(mut m) = self.take_mbuf() else {
            self.counters.tx_no_buffer.inc();
            return Err(TxError::NoBuffer);
        };
        let Some(buf) = m.append(UDP_FRAME_HEADER_LEN + len) else { return Err(TxError::TooLarge) };
        fill(&mut buf[UDP_FRAME_HEADER_LEN..]);
        self.ip_id = self.ip_id.wrapping_add(1);
        let hdr = UdpFrameHeader {
            src_mac: self.local.mac,
            dst_mac,
            src_ip: self.local.ip,
            dst_ip: to.ip,
            src_port: self.local.port,
            dst_port: to.port,
            ip_id: self.ip_id,
        };
        if self.tx_checksum_offload {
            emit_udp_frame(buf, &hdr, len, Checksum::Offload);
            let flags = sys::RTE_MBUF_F_TX_IPV4
                | sys::RTE_MBUF_F_TX_IP_CKSUM
                | sys::RTE_MBUF_F_TX_UDP_CKSUM;
            m.set_tx_offload(14, 20, 8, flags);
        } else if self.trust_link {
            // Headers without the payload checksum: IPv4 checksum over 20 bytes, UDP 0.
            emit_udp_frame_without_udp_checksum(buf, &hdr, len);
        } else {
            emit_udp_frame(buf, &hdr, len, Checksum::Compute);
        }
        self.queue_tx(m);
        Ok(())
    }

    fn flush(&mut self) {
        if self.tx_len == 0 {
            return;
        }
        let n = self.tx_len;
        let started = match &self.source {
            RxSource::Shared { queue, .. } => queue.port_started(),
            RxSource::Direct => true,
        };
        let sent = if started {
            // SAFETY: tx[..n] are mbufs we own; tx_burst takes ownership of the first `sent`.
            // The port is started (a relinking port's poller, this thread, stops it only
            // between polls and says so through `port_started`).
            usize::from(unsafe {
                sys::rte_eth_tx_burst(self.port.0, self.queue.0, self.tx.as_mut_ptr(), n as u16)
            })
        } else {
            0 // the port is stopped (its memif peer is away): everything is freed below
        };
        let c = &self.counters;
        c.tx_packets.add(sent as u64);
        c.tx_bytes.add(self.tx_bytes[..sent].iter().map(|&b| u64::from(b)).sum());
        if sent < n {
            // SAFETY: the device did not take tx[sent..n]; we still own them and free them.
            unsafe {
                sys::rte_pktmbuf_free_bulk(self.tx.as_mut_ptr().add(sent), (n - sent) as u32)
            };
            c.tx_full_frees.add((n - sent) as u64);
        }
        self.tx_len = 0;
    }

    fn local(&self) -> Endpoint {
        self.local
    }

    fn max_payload(&self) -> usize {
        self.max_payload
    }
}

impl Drop for DpdkIo {
    fn drop(&mut self) {
        // Queued but unsent mbufs and spares are still ours.
        // SAFETY: tx[..tx_len] and spare[..n_spare] are owned mbufs.
        unsafe {
            sys::rte_pktmbuf_free_bulk(self.tx.as_mut_ptr(), self.tx_len as u32);
            sys::rte_pktmbuf_free_bulk(self.spare.as_mut_ptr(), self.n_spare as u32);
        }
        self.tx_len = 0;
        self.n_spare = 0;
        self.free_dead();
    }
}
