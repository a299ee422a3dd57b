//! Lanes: one worker lcore, one RX/TX queue pair (queue `i` for lane `i` on every port), and
//! the endpoints (Paxos groups) that lcore serves.
//!
//! # Getting a frame to its lane
//!
//! * **Flow rules** ([`steer_lanes`] -> [`Steering::FlowRules`]): where the device accepts
//!   `rte_flow` rules, each endpoint's UDP destination port is steered to its lane's queue.
//!   Frames no rule matches (ARP, strays) land on the device's default queue and take the
//!   software path below.
//! * **Software hand-off** ([`Steering::Software`]; every vdev here: net_ring, net_memif,
//!   af_packet have no `rte_flow`): frames land wherever the device puts them (the queue the
//!   peer transmitted on for memory links, an RSS hash, or queue 0) and the lane that
//!   receives a frame for another lane passes it on through that lane's [`Handoff`] ring
//!   (a bounded multi-producer/single-consumer `rte_ring`, [`HANDOFF_RING_SIZE`] entries; no
//!   locks). A full ring drops the frame (counted in [`LaneStats::handoff_full`]).
//!
//! Either way every lane reads its queue through a [`SharedQueue`](super::SharedQueue), which
//! files frames into its endpoints' inboxes; see [`super::dispatch`] for that cost. A frame
//! one endpoint sends to another endpoint *of the same lane* is delivered in memory (its
//! inbox); to an endpoint of another lane it goes out on the wire like any other (Paxos
//! groups do not talk to each other, and members of one group share a lane).
//!
//! Transmit needs no steering: lane `i` owns TX queue `i` of every port.
//!
//! # Cost of the software path
//!
//! Every received frame: reading three header fields (EtherType, destination IPv4, UDP
//! destination port) and a linear search of the lane table (a few entries) - the same peek
//! the single-queue dispatch does, tens of cycles. A frame on the wrong queue additionally
//! costs one `rte_ring` enqueue (a compare-and-swap on the producer head) and one dequeue on
//! the other lcore, plus the cache misses of moving the mbuf's header and data to that core
//! (a few hundred cycles), and it waits until the other lane's next poll. With a peer that
//! transmits each group's traffic on that group's queue (memory links between nodes that use
//! the same lanes), nothing is handed off. `dataplane/tests/dpdk_lanes.rs` prints the
//! measured figure (70-900 ns per hand-off on the shared 2-vCPU test machine).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use super::dispatch::{frame_key, Steering};
use super::error::DpdkError;
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::port::{Port, QueueId};
use super::ring::{MbufRing, RingConsumer};
use crate::counters::Counter;

/// Frames each lane's hand-off ring holds (ring size; it holds one less).
pub const HANDOFF_RING_SIZE: u32 = 1024;

/// Most lanes per port (one queue each).
pub const MAX_LANES: usize = 64;

/// A lane's hand-off counters. Each counter has one writer: `handed_out` and `handoff_full`
/// the lane that passes frames on, `handed_in` the lane that receives them.
#[derive(Debug, Default)]
pub struct LaneStats {
    /// Frames this lane received on its queue and passed to another lane.
    pub handed_out: Counter,
    /// Frames other lanes passed to this lane.
    pub handed_in: Counter,
    /// Frames this lane could not pass on because the target's ring was full (freed).
    pub handoff_full: Counter,
}

/// The hand-off between the lanes of one port: which lane serves which (IPv4, UDP port), and
/// one bounded ring per lane. Shared (`Arc`) by the lanes' lcores.
pub struct Handoff {
    table: Vec<(Ipv4Addr, u16, usize)>,
    rings: Vec<Arc<MbufRing>>,
    consumers: Vec<Mutex<Option<RingConsumer>>>,
    stats: Vec<LaneStats>,
}

impl Handoff {
    /// `lanes[i]` = the (IPv4, UDP port) endpoints lane `i` serves, each in one lane only.
    pub fn new(
        tag: &str,
        lanes: &[Vec<(Ipv4Addr, u16)>],
        pool: &Arc<Mempool>,
    ) -> Result<Arc<Handoff>, DpdkError> {
        if lanes.is_empty() || lanes.len() > MAX_LANES {
            return Err(DpdkError::invalid(
                "Handoff::new",
                format!("{} lanes: 1..={MAX_LANES}", lanes.len()),
            ));
        }
        let mut table = Vec::new();
        for (lane, eps) in lanes.iter().enumerate() {
            for &(ip, port) in eps {
                if table.iter().any(|&(i, p, _)| i == ip && p == port) {
                    return Err(DpdkError::invalid(
                        "Handoff::new",
                        format!("{ip}:{port} is in two lanes"),
                    ));
                }
                table.push((ip, port, lane));
            }
        }
        let mut rings = Vec::new();
        let mut consumers = Vec::new();
        for lane in 0..lanes.len() {
            let (ring, consumer) =
                MbufRing::new_mpsc(&format!("{tag}h{lane}"), HANDOFF_RING_SIZE, pool)?;
            rings.push(ring);
            consumers.push(Mutex::new(Some(consumer)));
        }
        let stats = lanes.iter().map(|_| LaneStats::default()).collect();
        Ok(Arc::new(Handoff { table, rings, consumers, stats }))
    }

    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.rings.len()
    }

    /// Lane `lane`'s counters.
    pub fn stats(&self, lane: usize) -> &LaneStats {
        &self.stats[lane]
    }

    /// Frames waiting in lane `lane`'s ring (a snapshot).
    pub fn pending(&self, lane: usize) -> u32 {
        self.rings[lane].len()
    }

    /// The consumer of lane `lane`'s ring; only the first call gets it (setup, not per packet).
    pub(super) fn take_consumer(&self, lane: usize) -> Option<RingConsumer> {
        self.consumers.get(lane)?.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The lane a frame received by lane `mine` belongs to: the lane serving its (IPv4, UDP
    /// port); else (ARP, unknown port) `mine` if it serves that IPv4 address, else the first
    /// lane that does; else `mine` (whose endpoint classifies and counts the frame).
    #[inline]
    pub(super) fn lane_of(&self, frame: &[u8], mine: usize) -> usize {
        let (Some(ip), port) = frame_key(frame) else { return mine };
        if let Some(port) = port {
            if let Some(&(_, _, lane)) = self.table.iter().find(|e| e.0 == ip && e.1 == port) {
                return lane;
            }
        }
        if self.table.iter().any(|e| e.0 == ip && e.2 == mine) {
            return mine;
        }
        self.table.iter().find(|e| e.0 == ip).map_or(mine, |e| e.2)
    }

    /// Passes `m` from lane `from` to lane `to` (freed and counted if `to`'s ring is full).
    #[inline]
    pub(super) fn pass(&self, from: usize, to: usize, m: Mbuf) {
        match self.rings[to].enqueue(m) {
            Ok(()) => self.stats[from].handed_out.inc(),
            Err(m) => {
                drop(m);
                self.stats[from].handoff_full.inc();
            }
        }
    }
}

/// Steers each lane's UDP ports to its queue (`lanes[i]` -> RX queue `i`) with `rte_flow`
/// where the device accepts the rules; otherwise [`Steering::Software`] (the lanes hand
/// frames to each other). The port needs at least `lanes.len()` RX and TX queues. A UDP port
/// listed in two lanes cannot be steered (software). Call after [`Port::start`].
pub fn steer_lanes(port: &mut Port, lanes: &[Vec<u16>]) -> Result<Steering, DpdkError> {
    let (n_rx, n_tx) = port.queues();
    if usize::from(n_rx) < lanes.len() || usize::from(n_tx) < lanes.len() {
        return Err(DpdkError::invalid(
            "steer_lanes",
            format!(
                "{} lanes need as many queues; the port has {n_rx} RX / {n_tx} TX",
                lanes.len()
            ),
        ));
    }
    if lanes.len() < 2 {
        return Ok(Steering::Software);
    }
    // Each lane's distinct UDP ports (several members of one group share a port and a lane).
    let per_lane: Vec<Vec<u16>> = lanes
        .iter()
        .map(|l| {
            let mut v = l.clone();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let mut all: Vec<u16> = per_lane.iter().flatten().copied().collect();
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    if all.len() != n {
        log::info!("port {}: a UDP port serves two lanes; software hand-off", port.id().0);
        return Ok(Steering::Software);
    }
    let steered = per_lane.iter().enumerate().try_for_each(|(lane, ports)| {
        ports.iter().try_for_each(|&p| port.steer_udp_dst_port(p, QueueId(lane as u16)))
    });
    match steered {
        Ok(()) => Ok(Steering::FlowRules),
        Err(e) => {
            port.flush_flows();
            log::info!(
                "port {} ({}): no rte_flow steering ({e}); lanes hand frames to each other in \
                 software",
                port.id().0,
                port.driver()
            );
            Ok(Steering::Software)
        }
    }
}
