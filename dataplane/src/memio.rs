//! An in-memory network for tests and single-process clusters: endpoints attached to one
//! [`MemNetwork`] exchange `Bytes` datagrams through bounded per-endpoint queues. Single
//! threaded (`Rc<RefCell<..>>`): drive every endpoint from one thread, e.g. round-robin
//! `poll` with a virtual clock — which also makes runs deterministic.
//!
//! Semantics: `send_with` queues the datagram in the sender's transmit queue; `flush` moves
//! it into the destination's receive queue (so it is visible to the destination's next
//! `recv_burst`). A full receive queue drops the datagram (`tx_full_frees`, like a NIC ring
//! that did not take an mbuf); a datagram to an endpoint nobody is attached to (a crashed
//! node: dropping a [`MemIo`] detaches it) is lost (`tx_undeliverable`).

use crate::counters::Counters;
use crate::io::{Datagram, Endpoint, PacketIo, TxError};
use bytes::{Bytes, BytesMut};
use paxos_core::BytesBuilder;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::sync::Arc;

/// Datagrams waiting in one endpoint's receive queue before further ones are dropped.
pub const MEM_RX_QUEUE_DATAGRAMS: usize = 4096;
/// Datagrams an endpoint queues for transmission before `send_with` flushes by itself.
pub const MEM_TX_QUEUE_DATAGRAMS: usize = 256;
/// Transmit buffers are carved out of arenas of this size (one allocation per arena).
pub const MEM_ARENA_BYTES: usize = 64 * 1024;
/// Default largest datagram: an Ethernet MTU's UDP payload (1500 - 20 - 8).
pub const MEM_DEFAULT_MAX_PAYLOAD: usize = 1472;
/// First port [`MemNetwork::attach_next`] hands out (on 127.0.0.1).
pub const MEM_FIRST_PORT: u16 = 10_000;

struct Port {
    ep: Endpoint,
    attached: bool,
    queue: VecDeque<(Endpoint, Bytes)>,
}

struct Net {
    ports: Vec<Port>,
    max_payload: usize,
    next_port: u16,
}

impl Net {
    fn find(&self, ep: &Endpoint) -> Option<usize> {
        self.ports.iter().position(|p| p.ep.ip == ep.ip && p.ep.port == ep.port)
    }

    /// Delivers one datagram. Ok(true) delivered, Ok(false) nobody attached, Err: queue full.
    fn deliver(&mut self, src: Endpoint, dst: &Endpoint, data: Bytes) -> Result<bool, ()> {
        let Some(i) = self.find(dst) else { return Ok(false) };
        let port = &mut self.ports[i];
        if !port.attached {
            return Ok(false);
        }
        if port.queue.len() >= MEM_RX_QUEUE_DATAGRAMS {
            return Err(());
        }
        port.queue.push_back((src, data));
        Ok(true)
    }
}

/// The network: a handle, cheap to clone.
#[derive(Clone)]
pub struct MemNetwork {
    inner: Rc<RefCell<Net>>,
}

impl Default for MemNetwork {
    fn default() -> Self {
        MemNetwork::new()
    }
}

impl MemNetwork {
    pub fn new() -> MemNetwork {
        MemNetwork::with_max_payload(MEM_DEFAULT_MAX_PAYLOAD)
    }

    /// A network whose endpoints carry datagrams of up to `max_payload` bytes.
    pub fn with_max_payload(max_payload: usize) -> MemNetwork {
        MemNetwork {
            inner: Rc::new(RefCell::new(Net {
                ports: Vec::new(),
                max_payload,
                next_port: MEM_FIRST_PORT,
            })),
        }
    }

    /// Attaches an endpoint at `ep` (its MAC is ignored for delivery). Re-attaching a
    /// detached endpoint (a node restarting) gives it an empty queue.
    ///
    /// # Panics
    /// If another live `MemIo` is attached at `ep`.
    pub fn attach(&self, ep: Endpoint, counters: Arc<Counters>) -> MemIo {
        let mut net = self.inner.borrow_mut();
        let index = match net.find(&ep) {
            Some(i) => {
                let port = &mut net.ports[i];
                assert!(!port.attached, "MemNetwork: {ep} is already attached");
                port.attached = true;
                port.queue.clear();
                i
            }
            None => {
                net.ports.push(Port { ep, attached: true, queue: VecDeque::with_capacity(64) });
                net.ports.len() - 1
            }
        };
        let max_payload = net.max_payload;
        MemIo {
            net: Rc::clone(&self.inner),
            local: ep,
            index,
            counters,
            tx: Vec::with_capacity(MEM_TX_QUEUE_DATAGRAMS),
            arena: BytesMut::with_capacity(MEM_ARENA_BYTES),
            max_payload,
        }
    }

    /// Attaches an endpoint at 127.0.0.1 on the next free port.
    pub fn attach_next(&self, counters: Arc<Counters>) -> MemIo {
        let port = {
            let mut net = self.inner.borrow_mut();
            let p = net.next_port;
            net.next_port += 1;
            p
        };
        self.attach(Endpoint::udp(Ipv4Addr::LOCALHOST, port), counters)
    }

    /// Puts a raw datagram from `src` into `dst`'s receive queue (tests: hostile input).
    /// Returns false if nobody is attached at `dst` or its queue is full.
    pub fn inject(&self, src: Endpoint, dst: &Endpoint, bytes: &[u8]) -> bool {
        self.inner.borrow_mut().deliver(src, dst, Bytes::copy_from_slice(bytes)) == Ok(true)
    }

    /// Datagrams waiting at `ep`.
    pub fn queued(&self, ep: &Endpoint) -> usize {
        let net = self.inner.borrow();
        net.find(ep).map_or(0, |i| net.ports[i].queue.len())
    }
}

/// One endpoint of a [`MemNetwork`]. Dropping it detaches the endpoint.
pub struct MemIo {
    net: Rc<RefCell<Net>>,
    local: Endpoint,
    index: usize,
    counters: Arc<Counters>,
    tx: Vec<(Endpoint, Bytes)>,
    arena: BytesMut,
    max_payload: usize,
}

impl MemIo {
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}

impl Drop for MemIo {
    fn drop(&mut self) {
        if let Ok(mut net) = self.net.try_borrow_mut() {
            let port = &mut net.ports[self.index];
            port.attached = false;
            port.queue.clear();
        }
    }
}

impl PacketIo for MemIo {
    type Buf = Bytes;
    type Builder = BytesBuilder;

    fn value_builder(&mut self) -> BytesBuilder {
        BytesBuilder::default()
    }

    fn recv_burst(&mut self, out: &mut Vec<Datagram<Bytes>>, max: usize) -> usize {
        let mut net = self.net.borrow_mut();
        let queue = &mut net.ports[self.index].queue;
        let mut n = 0;
        while n < max {
            let Some((src, data)) = queue.pop_front() else { break };
            self.counters.rx_packets.inc();
            self.counters.rx_bytes.add(data.len() as u64);
            out.push(Datagram { src, dst_port: self.local.port, data });
            n += 1;
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
        if self.tx.len() >= MEM_TX_QUEUE_DATAGRAMS {
            self.flush();
        }
        if self.arena.capacity() - self.arena.len() < len {
            self.arena = BytesMut::with_capacity(MEM_ARENA_BYTES.max(len));
        }
        self.arena.resize(len, 0);
        fill(&mut self.arena[..]);
        self.tx.push((*to, self.arena.split().freeze()));
        Ok(())
    }

    fn flush(&mut self) {
        if self.tx.is_empty() {
            return;
        }
        let mut net = self.net.borrow_mut();
        for (to, data) in self.tx.drain(..) {
            let len = data.len() as u64;
            match net.deliver(self.local, &to, data) {
                Ok(delivered) => {
                    self.counters.tx_packets.inc();
                    self.counters.tx_bytes.add(len);
                    if !delivered {
                        self.counters.tx_undeliverable.inc();
                    }
                }
                Err(()) => self.counters.tx_full_frees.inc(),
            }
        }
    }

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

    #[test]
    fn delivers_on_flush_and_detaches_on_drop() {
        let net = MemNetwork::new();
        let (ca, cb) = (Arc::new(Counters::default()), Arc::new(Counters::default()));
        let mut a = net.attach_next(ca.clone());
        let mut b = net.attach_next(cb.clone());
        let bep = b.local();
        a.send_with(&bep, 3, |buf| buf.copy_from_slice(b"abc")).unwrap();
        let mut got = Vec::new();
        assert_eq!(b.recv_burst(&mut got, 8), 0, "not before flush");
        a.flush();
        assert_eq!(b.recv_burst(&mut got, 8), 1);
        assert_eq!(&got[0].data[..], b"abc");
        assert_eq!(got[0].src, a.local());
        assert_eq!(a.send_with(&bep, 5000, |_| {}), Err(TxError::TooLarge));
        assert_eq!(ca.tx_too_large.get(), 1);
        drop(b);
        a.send_with(&bep, 1, |buf| buf[0] = 1).unwrap();
        a.flush();
        assert_eq!(ca.tx_undeliverable.get(), 1);
        assert_eq!(net.queued(&bep), 0);
        assert_eq!((ca.tx_packets.get(), cb.rx_packets.get()), (2, 1));
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let net = MemNetwork::new();
        let ca = Arc::new(Counters::default());
        let mut a = net.attach_next(ca.clone());
        let b = net.attach_next(Arc::new(Counters::default()));
        for _ in 0..MEM_RX_QUEUE_DATAGRAMS + 10 {
            a.send_with(&b.local(), 1, |buf| buf[0] = 0).unwrap();
        }
        a.flush();
        assert_eq!(net.queued(&b.local()), MEM_RX_QUEUE_DATAGRAMS);
        assert_eq!(ca.tx_full_frees.get(), 10);
    }
}
