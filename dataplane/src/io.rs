//! The packet-I/O seam: one trait, three implementations (a DPDK queue, kernel UDP sockets,
//! an in-memory network for tests). The protocol handling above it ([`crate::driver`]) is
//! the same code on every path.

use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// A UDP endpoint. `mac` is only meaningful on raw-frame paths (DPDK); kernel sockets
/// leave it `MacAddr::ZERO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl Endpoint {
    pub const fn new(mac: MacAddr, ip: Ipv4Addr, port: u16) -> Endpoint {
        Endpoint { mac, ip, port }
    }
    /// For kernel sockets: no MAC.
    pub const fn udp(ip: Ipv4Addr, port: u16) -> Endpoint {
        Endpoint { mac: MacAddr::ZERO, ip, port }
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.mac == MacAddr::ZERO {
            write!(f, "{}:{}", self.ip, self.port)
        } else {
            write!(f, "{}:{}@{}", self.ip, self.port, self.mac)
        }
    }
}

/// One received UDP payload. `data` is a zero-copy handle to the bytes (for DPDK, a
/// refcounted slice of the receive mbuf): cloning it shares the buffer.
#[derive(Clone, Debug)]
pub struct Datagram<B> {
    pub src: Endpoint,
    pub dst_port: u16,
    pub data: B,
}

/// Why a datagram could not be queued for transmission. Each is counted by the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// No transmit buffer (mempool empty, socket buffer full).
    NoBuffer,
    /// The datagram does not fit one frame / buffer.
    TooLarge,
    /// The destination's MAC address is not known yet (an ARP request was sent).
    Unresolved,
}

/// A transport that moves UDP payloads. Implementations must not allocate per packet in
/// steady state and must bound every queue they keep.
pub trait PacketIo {
    /// Zero-copy handle to received bytes.
    type Buf: RxBuf;

    /// Builds the leader's batch values in the same handle type as received values (a slot's
    /// value travels through the same `Node` whether this node proposed it or received it).
    /// The transport supplies it because it owns the memory: heap arenas for `Bytes`, a
    /// mempool or heap arena for DPDK.
    type Builder: paxos_core::ValueBuilder<Self::Buf>;

    /// A fresh value builder for one `Node` (called once when a driver is built).
    fn value_builder(&mut self) -> Self::Builder;

    /// Receives up to `max` datagrams, appended to `out`. Returns how many. Frames that are
    /// not well-formed UDP for us are dropped and counted by cause inside the transport.
    fn recv_burst(&mut self, out: &mut Vec<Datagram<Self::Buf>>, max: usize) -> usize;

    /// Queues one datagram of `len` bytes to `to`; `fill` writes the payload in place into
    /// the transmit buffer (for DPDK: straight into the mbuf, after the headers).
    fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        to: &Endpoint,
        len: usize,
        fill: F,
    ) -> Result<(), TxError>;

    /// Pushes queued datagrams to the wire. Called once per loop iteration (after a burst)
    /// and by the drain timer; datagrams the device did not take are freed and counted.
    fn flush(&mut self);

    /// Our own address.
    fn local(&self) -> Endpoint;

    /// Largest payload `send_with` accepts.
    fn max_payload(&self) -> usize;
}

/// A received buffer that can hand out zero-copy sub-slices of itself: the wire decoder turns
/// each value's byte range into one with [`RxBuf::slice`] (`|r| data.slice(r)`), so a value
/// held by the acceptor or learner shares the receive buffer instead of copying it.
pub trait RxBuf: paxos_core::Payload {
    /// The bytes in `range` (relative to this handle's start) as a handle of the same type.
    /// Callers pass ranges inside `self` (the decoder guarantees it); outside, it may panic.
    fn slice(&self, range: core::ops::Range<usize>) -> Self;
}

impl RxBuf for bytes::Bytes {
    #[inline]
    fn slice(&self, range: core::ops::Range<usize>) -> Self {
        bytes::Bytes::slice(self, range)
    }
}

impl RxBuf for &[u8] {
    #[inline]
    fn slice(&self, range: core::ops::Range<usize>) -> Self {
        &self[range]
    }
}
