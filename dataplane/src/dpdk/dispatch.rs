//! Several endpoints on one port: software dispatch on one shared queue, or one queue
//! each with `rte_flow` steering.
//!
//! # Several endpoints on one queue (software dispatch)
//!
//! A [`SharedQueue`] lets several `DpdkIo` (several groups, or several replicas in
//! single-process mode) share one RX/TX queue on one lcore: whichever endpoint polls first
//! receives a burst and files each frame in the inbox of the endpoint whose (IPv4, UDP port)
//! it is addressed to, by peeking at three header fields; ARP goes by target IP; anything
//! else goes to the first endpoint, which classifies and counts it. Cost: the peek plus an
//! inbox push and pop per packet (a few tens of cycles), all endpoints on one core, and one
//! endpoint's backlog can fill the shared RX ring. Inboxes are bounded ([`INBOX_CAPACITY`]);
//! a frame for a full inbox is freed and counted in [`SharedQueue::inbox_overflows`].
//!
//! Transmits to another endpoint of the same queue (matching MAC, IPv4 and UDP port) are
//! delivered to its inbox directly: ports do not hand our own frames back (net_ring
//! excepted), so single-process mode needs this loopback. It costs the same peek per
//! transmitted frame.
//!
//! # Several queues of one port
//!
//! [`steer_by_udp_port`] gives endpoint `i` RX queue `i` with an `rte_flow` rule on its UDP
//! destination port when the device supports flow rules; each lcore then builds its own
//! [`DpdkIo::new`] on its queue (no sharing, no dispatch cost). The vdevs in our tests
//! (net_ring, net_memif) have no `rte_flow` support, so it falls back to
//! [`Steering::Software`]: one [`SharedQueue`] on queue 0 polled by one lcore, which must then
//! be the port's only RX queue (with RSS over several queues, frames would land on queues
//! nobody polls). [`open_endpoints`] does both steps for endpoints polled by one lcore.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use dpdk_sys as sys;

use super::error::DpdkError;
use super::io::{DpdkIo, DpdkIoConfig, BURST};
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::port::{Port, PortId, QueueId};
use crate::counters::Counters;
use crate::wire::MacAddr;

/// Frames one endpoint's inbox holds in software-dispatch mode.
pub const INBOX_CAPACITY: usize = 1024;

/// One RX/TX queue shared by several endpoints on one lcore (software dispatch; see the
/// module docs).
pub struct SharedQueue {
    pub(super) port: PortId,
    pub(super) queue: QueueId,
    endpoints: RefCell<Vec<SharedEndpoint>>,
    rx: RefCell<[*mut sys::rte_mbuf; BURST]>,
    overflows: Cell<u64>,
}

struct SharedEndpoint {
    mac: MacAddr,
    ip: Ipv4Addr,
    udp_port: u16,
    inbox: VecDeque<Mbuf>,
}

impl SharedQueue {
    /// A shared handle on RX/TX queue `queue` of `port` (started).
    pub fn new(port: &Port, queue: QueueId) -> Rc<SharedQueue> {
        Rc::new(SharedQueue {
            port: port.id(),
            queue,
            endpoints: RefCell::new(Vec::new()),
            rx: RefCell::new([ptr::null_mut(); BURST]),
            overflows: Cell::new(0),
        })
    }

    /// Frames dropped because the target endpoint's inbox was full (not read for a while).
    pub fn inbox_overflows(&self) -> u64 {
        self.overflows.get()
    }

    pub(super) fn register(&self, mac: MacAddr, ip: Ipv4Addr, udp_port: u16) -> usize {
        let mut eps = self.endpoints.borrow_mut();
        let inbox = VecDeque::with_capacity(INBOX_CAPACITY);
        eps.push(SharedEndpoint { mac, ip, udp_port, inbox });
        eps.len() - 1
    }

    /// Local delivery: a frame for another endpoint of this queue goes straight to its inbox
    /// (a port does not hand our own transmissions back to us, except net_ring). Returns the
    /// mbuf if it is for the wire.
    #[inline]
    pub(super) fn deliver_local(&self, m: Mbuf) -> Option<Mbuf> {
        let mut eps = self.endpoints.borrow_mut();
        let frame = m.data();
        let i = route(frame, &eps);
        let ep = &eps[i];
        let exact = frame.get(0..6) == Some(&ep.mac.0[..])
            && frame.get(12..14) == Some(&[0x08, 0x00][..])
            && frame.get(30..34) == Some(&ep.ip.octets()[..])
            && udp_dst_port(frame) == Some(ep.udp_port);
        if !exact {
            return Some(m);
        }
        let ep = &mut eps[i];
        if ep.inbox.len() >= INBOX_CAPACITY {
            self.overflows.set(self.overflows.get() + 1);
            return None; // m freed
        }
        ep.inbox.push_back(m);
        None
    }

    pub(super) fn inbox_len(&self, index: usize) -> usize {
        self.endpoints.borrow()[index].inbox.len()
    }

    pub(super) fn pop(&self, index: usize) -> Option<Mbuf> {
        self.endpoints.borrow_mut()[index].inbox.pop_front()
    }

    /// One RX burst, filed into the endpoints' inboxes.
    pub(super) fn poll(&self) {
        let mut rx = self.rx.borrow_mut();
        // SAFETY: rx has room for BURST pointers; this queue has one poller (this object, on
        // one thread).
        let n = usize::from(unsafe {
            sys::rte_eth_rx_burst(self.port.0, self.queue.0, rx.as_mut_ptr(), BURST as u16)
        });
        let mut eps = self.endpoints.borrow_mut();
        if eps.is_empty() {
            // SAFETY: nobody to deliver to: free the n mbufs we own.
            unsafe { sys::rte_pktmbuf_free_bulk(rx.as_mut_ptr(), n as u32) };
            return;
        }
        for &p in &rx[..n] {
            // SAFETY: rx_burst returned n fresh mbufs whose references we now own.
            let Some(m) = (unsafe { Mbuf::from_raw(p) }) else { continue };
            let target = route(m.data(), &eps);
            let ep = &mut eps[target];
            if ep.inbox.len() >= INBOX_CAPACITY {
                self.overflows.set(self.overflows.get() + 1);
                continue; // m dropped: freed
            }
            ep.inbox.push_back(m);
        }
    }
}

/// The UDP destination port of an IPv4 frame (IHL respected), if long enough.
#[inline]
fn udp_dst_port(frame: &[u8]) -> Option<u16> {
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    frame.get(14 + ihl + 2..14 + ihl + 4).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Which endpoint a frame goes to: exact (IPv4, UDP port) match, else the first endpoint with
/// that IP (ARP by target IP), else endpoint 0 (which classifies and counts it).
#[inline]
fn route(frame: &[u8], eps: &[SharedEndpoint]) -> usize {
    let ip_at = |off: usize| frame.get(off..off + 4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
    let (ip, port) = match frame.get(12..14) {
        Some([0x08, 0x00]) => (ip_at(30), udp_dst_port(frame)),
        Some([0x08, 0x06]) => (ip_at(14 + 24), None),
        _ => (None, None),
    };
    let Some(ip) = ip else { return 0 };
    if let Some(port) = port {
        if let Some(i) = eps.iter().position(|e| e.ip == ip && e.udp_port == port) {
            return i;
        }
    }
    eps.iter().position(|e| e.ip == ip).unwrap_or(0)
}

/// How [`steer_by_udp_port`] separated the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// Endpoint `i` owns RX/TX queue `i`; `rte_flow` rules steer by UDP destination port.
    FlowRules,
    /// All endpoints share queue 0 with software dispatch ([`SharedQueue`]), on one lcore.
    Software,
}

/// Steers each of `udp_ports` (distinct) to its own RX queue (`udp_ports[i]` -> queue `i`)
/// if the port has enough queues and the device accepts the `rte_flow` rules; otherwise
/// reports [`Steering::Software`], which needs a port with a single RX queue (an error
/// otherwise). Call after [`Port::start`].
pub fn steer_by_udp_port(port: &mut Port, udp_ports: &[u16]) -> Result<Steering, DpdkError> {
    let (n_rx, n_tx) = port.queues();
    let mut distinct = udp_ports.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let n = udp_ports.len();
    if n > 1 && usize::from(n_rx) >= n && usize::from(n_tx) >= n && distinct.len() == n {
        let steered = udp_ports
            .iter()
            .enumerate()
            .try_for_each(|(i, &p)| port.steer_udp_dst_port(p, QueueId(i as u16)));
        match steered {
            Ok(()) => return Ok(Steering::FlowRules),
            Err(e) => log::info!("port {}: no flow steering ({e}); software dispatch", port.id().0),
        }
    }
    if n_rx > 1 {
        return Err(DpdkError::invalid(
            "steer_by_udp_port",
            format!("software dispatch polls queue 0 only, but the port has {n_rx} RX queues"),
        ));
    }
    Ok(Steering::Software)
}

/// One transport per endpoint, all polled by the calling lcore: own queues with flow rules
/// where the device has them, else one [`SharedQueue`] on queue 0.
pub fn open_endpoints(
    port: &mut Port,
    pool: &Arc<Mempool>,
    endpoints: &[(DpdkIoConfig, Arc<Counters>)],
) -> Result<(Steering, Vec<DpdkIo>), DpdkError> {
    let udp_ports: Vec<u16> = endpoints.iter().map(|(c, _)| c.udp_port).collect();
    let steering = steer_by_udp_port(port, &udp_ports)?;
    let ios = match steering {
        Steering::FlowRules => endpoints
            .iter()
            .enumerate()
            .map(|(i, (cfg, c))| {
                DpdkIo::new(port, QueueId(i as u16), Arc::clone(pool), cfg, Arc::clone(c))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Steering::Software => {
            let shared = SharedQueue::new(port, QueueId(0));
            endpoints
                .iter()
                .map(|(cfg, c)| {
                    DpdkIo::on_shared(port, &shared, Arc::clone(pool), cfg, Arc::clone(c))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok((steering, ios))
}
