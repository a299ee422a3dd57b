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
//! # Several queues of one port, one lcore each
//!
//! See [`super::lanes`]: each lane (worker lcore) reads its own queue through a
//! [`SharedQueue::on_lane`], which passes frames for other lanes on through a lock-free ring.
//!
//! # Several queues of one port, one lcore
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
use super::lanes::Handoff;
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::port::{Port, PortId, QueueId};
use super::relink::{EthPort, Relink};
use super::ring::RingConsumer;
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
    lane: Option<LaneLink>,
    /// Restarts the port when its link stays down (memif clients; see [`super::relink`]).
    relink: Option<Relink>,
}

/// A lane's place in its port's [`Handoff`].
struct LaneLink {
    handoff: Arc<Handoff>,
    lane: usize,
    consumer: RefCell<RingConsumer>,
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
            lane: None,
            relink: relink_of(port, queue),
        })
    }

    /// Lane `lane`'s handle on RX/TX queue `lane` of `port` (started): frames it receives
    /// for other lanes go to their `handoff` rings, and it takes in what other lanes pass to
    /// it. Build it on the lane's lcore; one per (port, lane).
    pub fn on_lane(
        port: &Port,
        handoff: &Arc<Handoff>,
        lane: usize,
    ) -> Result<Rc<SharedQueue>, DpdkError> {
        let queue = QueueId(u16::try_from(lane).unwrap_or(u16::MAX));
        let (n_rx, n_tx) = port.queues();
        if lane >= handoff.lanes() || queue.0 >= n_rx || queue.0 >= n_tx {
            return Err(DpdkError::invalid(
                "SharedQueue::on_lane",
                format!(
                    "lane {lane}: {} lanes, port {} has {n_rx} RX / {n_tx} TX queues",
                    handoff.lanes(),
                    port.id().0
                ),
            ));
        }
        let consumer = handoff.take_consumer(lane).ok_or_else(|| {
            DpdkError::invalid("SharedQueue::on_lane", format!("lane {lane} already has a queue"))
        })?;
        // One lane has nobody to hand frames to: skip the per-frame lookup.
        let link = (handoff.lanes() > 1).then(|| LaneLink {
            handoff: Arc::clone(handoff),
            lane,
            consumer: RefCell::new(consumer),
        });
        Ok(Rc::new(SharedQueue {
            port: port.id(),
            queue,
            endpoints: RefCell::new(Vec::new()),
            rx: RefCell::new([ptr::null_mut(); BURST]),
            overflows: Cell::new(0),
            lane: link,
            relink: relink_of(port, queue),
        }))
    }

    /// May the port be polled and transmitted on? False while [`super::relink`] holds it
    /// stopped (its peer is not back yet).
    #[inline]
    pub fn port_started(&self) -> bool {
        match &self.relink {
            Some(r) => r.started(),
            None => true,
        }
    }

    /// Times this queue's port came back after its link went down ([`super::relink`]).
    pub fn reconnects(&self) -> u64 {
        self.relink.as_ref().map_or(0, Relink::reconnects)
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

    /// One RX burst, filed into the endpoints' inboxes (on a lane: frames for other lanes
    /// passed on, then what other lanes passed to this one filed too).
    pub(super) fn poll(&self) {
        if let Some(r) = &self.relink {
            if !r.tick() {
                return;
            }
        }
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
            if let Some(link) = &self.lane {
                let to = link.handoff.lane_of(m.data(), link.lane);
                if to != link.lane {
                    link.handoff.pass(link.lane, to, m);
                    continue;
                }
            }
            self.file(&mut eps, m);
        }
        if let Some(link) = &self.lane {
            let got = link.consumer.borrow_mut().dequeue_raw(&mut rx[..]);
            link.handoff.stats(link.lane).handed_in.add(got as u64);
            for &p in &rx[..got] {
                // SAFETY: the ring held these references; the single consumer now owns them.
                let Some(m) = (unsafe { Mbuf::from_raw(p) }) else { continue };
                self.file(&mut eps, m);
            }
        }
    }

    /// Files `m` in the inbox of the endpoint it is for (freed and counted if full).
    #[inline]
    fn file(&self, eps: &mut [SharedEndpoint], m: Mbuf) {
        let target = route(m.data(), eps);
        let ep = &mut eps[target];
        if ep.inbox.len() >= INBOX_CAPACITY {
            self.overflows.set(self.overflows.get() + 1);
            return; // m dropped: freed
        }
        ep.inbox.push_back(m);
    }
}

/// The port's [`Relink`] if it asked for one (only the queue-0 poller restarts it: with
/// several lanes, one of them).
fn relink_of(port: &Port, queue: QueueId) -> Option<Relink> {
    (port.relinks() && queue.0 == 0).then(|| {
        let name = format!("port {} ({})", port.id().0, port.name());
        let eth = EthPort { port: port.id(), socket: port.relink_socket().map(Into::into) };
        Relink::new(eth, name, port.is_started())
    })
}

/// The UDP destination port of an IPv4 frame (IHL respected), if long enough.
#[inline]
fn udp_dst_port(frame: &[u8]) -> Option<u16> {
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    frame.get(14 + ihl + 2..14 + ihl + 4).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The destination IPv4 address of an IPv4 frame (with its UDP destination port) or the
/// target address of an ARP frame; `(None, None)` for anything else.
#[inline]
pub(super) fn frame_key(frame: &[u8]) -> (Option<Ipv4Addr>, Option<u16>) {
    let ip_at = |off: usize| frame.get(off..off + 4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
    match frame.get(12..14) {
        Some([0x08, 0x00]) => (ip_at(30), udp_dst_port(frame)),
        Some([0x08, 0x06]) => (ip_at(14 + 24), None),
        _ => (None, None),
    }
}

/// Which endpoint a frame goes to: exact (IPv4, UDP port) match, else the first endpoint with
/// that IP (ARP by target IP), else endpoint 0 (which classifies and counts it).
#[inline]
fn route(frame: &[u8], eps: &[SharedEndpoint]) -> usize {
    let (Some(ip), port) = frame_key(frame) else { return 0 };
    if let Some(port) = port {
        if let Some(i) = eps.iter().position(|e| e.ip == ip && e.udp_port == port) {
            return i;
        }
    }
    eps.iter().position(|e| e.ip == ip).unwrap_or(0)
}

/// How [`steer_by_udp_port`] (one lcore) or [`steer_lanes`](super::lanes::steer_lanes)
/// (one lcore per lane) separated the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// `rte_flow` rules steer by UDP destination port: endpoint (or lane) `i` owns RX queue
    /// `i`.
    FlowRules,
    /// Software: one lcore - all endpoints share queue 0 ([`SharedQueue`] dispatch); lanes -
    /// frames land where the device puts them and lanes hand them to each other.
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
