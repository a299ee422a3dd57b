//! [`UdpIo`]: the transport over a kernel UDP socket (non-blocking, IPv4).
//!
//! Receive: datagrams are read into a reusable arena (a zeroed `BytesMut`); each one is
//! split off and frozen into a `Bytes` handle, so the decoded values share the arena
//! (zero-copy) and allocation is one arena per `UDP_RX_ARENA_BYTES` of traffic. An arena
//! stays allocated while any value sliced from it is alive (e.g. in the acceptor's log
//! until the log is trimmed).
//!
//! Transmit: encoded into one reusable buffer and sent at once; `flush` has nothing to do.
//!
//! Known cost: one system call per datagram in each direction (`recvfrom` / `sendto`).
//! Batching them (`recvmmsg` / `sendmmsg`) needs `unsafe` FFI or an extra dependency,
//! and this path is the fallback to DPDK, not the fast path.

use crate::counters::Counters;
use crate::io::{Datagram, Endpoint, PacketIo, TxError};
use bytes::{Bytes, BytesMut};
use paxos_core::BytesBuilder;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;

/// Receive arena size: one allocation per this many bytes received (at least one datagram).
pub const UDP_RX_ARENA_BYTES: usize = 256 * 1024;
/// Default largest datagram: an Ethernet MTU's UDP payload (1500 - 20 - 8).
pub const UDP_DEFAULT_MAX_PAYLOAD: usize = 1472;
/// A receive burst reads at most this many times `max` datagrams (counting dropped ones).
pub const UDP_RX_READS_PER_BURST_FACTOR: usize = 2;
/// Largest UDP payload IPv4 can carry.
pub const UDP_MAX_PAYLOAD: usize = 65_507;

pub struct UdpIo {
    sock: UdpSocket,
    local: Endpoint,
    counters: Arc<Counters>,
    /// Unused part of the current receive arena (zeroed, `len == capacity`).
    arena: BytesMut,
    tx: Vec<u8>,
    max_payload: usize,
}

impl UdpIo {
    /// Binds a non-blocking socket at `addr` (port 0: an ephemeral port; see `local()`).
    pub fn bind(addr: SocketAddrV4, counters: Arc<Counters>) -> io::Result<UdpIo> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_nonblocking(true)?;
        let local = match sock.local_addr()? {
            SocketAddr::V4(a) => Endpoint::udp(*a.ip(), a.port()),
            SocketAddr::V6(_) => return Err(io::Error::new(ErrorKind::Unsupported, "IPv6")),
        };
        Ok(UdpIo {
            sock,
            local,
            counters,
            arena: BytesMut::new(),
            tx: Vec::with_capacity(UDP_DEFAULT_MAX_PAYLOAD),
            max_payload: UDP_DEFAULT_MAX_PAYLOAD,
        })
    }

    /// Sets the largest datagram sent or accepted (at most [`UDP_MAX_PAYLOAD`]); larger
    /// received datagrams are dropped and counted (`rx_oversize`).
    pub fn with_max_payload(mut self, max_payload: usize) -> UdpIo {
        self.max_payload = max_payload.min(UDP_MAX_PAYLOAD);
        self
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.sock
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}

impl PacketIo for UdpIo {
    type Buf = Bytes;
    type Builder = BytesBuilder;

    fn value_builder(&mut self) -> BytesBuilder {
        BytesBuilder::default()
    }

    fn recv_burst(&mut self, out: &mut Vec<Datagram<Bytes>>, max: usize) -> usize {
        let mut n = 0;
        // Datagrams dropped here (oversize, IPv6) do not count towards `max`, but the reads
        // per burst are still bounded.
        let mut reads = 0;
        while n < max && reads < UDP_RX_READS_PER_BURST_FACTOR * max {
            reads += 1;
            // Room for one datagram more than the limit, so an oversize one is detected
            // (the kernel silently truncates to the buffer).
            if self.arena.len() <= self.max_payload {
                self.arena = BytesMut::zeroed(UDP_RX_ARENA_BYTES.max(self.max_payload + 1));
            }
            match self.sock.recv_from(&mut self.arena[..]) {
                Ok((len, SocketAddr::V4(src))) => {
                    if len > self.max_payload {
                        self.counters.rx_oversize.inc();
                        continue;
                    }
                    self.counters.rx_packets.inc();
                    self.counters.rx_bytes.add(len as u64);
                    let data = self.arena.split_to(len).freeze();
                    out.push(Datagram {
                        src: Endpoint::udp(*src.ip(), src.port()),
                        dst_port: self.local.port,
                        data,
                    });
                    n += 1;
                }
                Ok((_, SocketAddr::V6(_))) => self.counters.io_errors.inc(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.counters.io_errors.inc();
                    log::debug!("udp {}: recv: {e}", self.local);
                    break;
                }
            }
        }
        n
    }

    fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        to: &Endpoint,
        len: usize,
        fill: F,
    ) -> Result<(), TxError> {
        if len > self.max_payload {
            self.counters.tx_too_large.inc();
            return Err(TxError::TooLarge);
        }
        self.tx.clear();
        self.tx.resize(len, 0);
        fill(&mut self.tx);
        match self.sock.send_to(&self.tx, SocketAddrV4::new(to.ip, to.port)) {
            Ok(_) => {
                self.counters.tx_packets.inc();
                self.counters.tx_bytes.add(len as u64);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.counters.tx_no_buffer.inc();
                Err(TxError::NoBuffer)
            }
            Err(e) => {
                self.counters.io_errors.inc();
                log::debug!("udp {}: send to {to}: {e}", self.local);
                Err(TxError::NoBuffer)
            }
        }
    }

    fn flush(&mut self) {}

    fn local(&self) -> Endpoint {
        self.local
    }

    fn max_payload(&self) -> usize {
        self.max_payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    fn recv_one(io: &mut UdpIo, out: &mut Vec<Datagram<Bytes>>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while io.recv_burst(out, 32) == 0 {
            assert!(Instant::now() < deadline, "no datagram on loopback within 5 s");
            std::thread::yield_now();
        }
    }

    #[test]
    fn loopback_round_trip_and_oversize() {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let (ca, cb) = (Arc::new(Counters::default()), Arc::new(Counters::default()));
        let mut a = UdpIo::bind(any, ca.clone()).unwrap();
        let mut b = UdpIo::bind(any, cb.clone()).unwrap().with_max_payload(100);
        let mut got = Vec::new();
        a.send_with(&b.local(), 5, |buf| buf.copy_from_slice(b"hello")).unwrap();
        recv_one(&mut b, &mut got);
        assert_eq!(&got[0].data[..], b"hello");
        assert_eq!(got[0].src, a.local());

        // 101 bytes: one more than b accepts. Then a good one, so we know the first arrived.
        a.send_with(&b.local(), 101, |buf| buf.fill(7)).unwrap();
        a.send_with(&b.local(), 2, |buf| buf.copy_from_slice(b"ok")).unwrap();
        got.clear();
        recv_one(&mut b, &mut got);
        assert_eq!(&got[0].data[..], b"ok");
        assert_eq!(cb.rx_oversize.get(), 1);
        assert_eq!(b.send_with(&a.local(), 101, |_| {}), Err(TxError::TooLarge));
        assert_eq!((ca.tx_packets.get(), cb.rx_packets.get()), (3, 2));
    }
}
