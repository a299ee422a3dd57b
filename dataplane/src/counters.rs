//! Per-lcore counters: written by the one thread that owns them, read by anyone (the stats
//! printer, DPDK telemetry) without locks. A single writer makes `load + store` exact; readers
//! see each counter as of some recent moment.

use crate::wire::FrameDrop;
use paxos_core::wire::WireError;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One counter, single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: a plain load and store, no locked instruction on the hot path.
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
}

/// Counters of one lcore (one Paxos group, one queue pair). Cache-line aligned so that two
/// lcores' counters never share a line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Counters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    /// Frames dropped before the UDP payload, by cause (index: `FrameDrop::index`).
    pub frame_drops: [Counter; FrameDrop::COUNT],
    /// Datagrams whose Paxos header or body did not decode, by cause (`WireError::index`).
    pub wire_drops: [Counter; WireError::COUNT],
    /// Datagrams to a port this lcore does not serve.
    pub unknown_port: Counter,
    /// Datagrams for another group or another node id.
    pub misdirected: Counter,
    /// Transmit: mbufs `tx_burst` did not take, freed.
    pub tx_full_frees: Counter,
    /// Transmit: no buffer (pool empty) or destination unresolved.
    pub tx_no_buffer: Counter,
    pub tx_unresolved: Counter,
    pub arp_requests_answered: Counter,
    pub arp_requests_sent: Counter,
    pub arp_replies_learned: Counter,
    /// Protocol progress.
    pub slots_decided: Counter,
    pub commands_applied: Counter,
    pub batches_proposed: Counter,
    pub commands_proposed: Counter,
    pub client_requests: Counter,
    pub client_replies: Counter,
    pub client_rejected: Counter,
    /// Received datagrams that carried a batch of client requests (kind 18).
    pub client_request_batches: Counter,
    /// Sent datagrams that carried a batch of client replies (kind 19); `client_replies`
    /// counts the replies in them one by one.
    pub client_reply_batches: Counter,
    pub leader_changes: Counter,
    pub loop_iterations: Counter,
    pub idle_polls: Counter,
    /// Fault injection ([`crate::fault::PacketFilter`]): datagrams dropped on receive / transmit.
    pub filter_rx_drops: Counter,
    pub filter_tx_drops: Counter,
    /// A `ClientReply` addressed to a replica (replicas only send replies).
    pub unexpected_replies: Counter,
    /// Transmit: datagram larger than the transport's `max_payload`.
    pub tx_too_large: Counter,
    /// Transmit: the encoder refused a message (a bug in the sender; the datagram is garbage).
    pub encode_errors: Counter,
    /// Receive: datagram larger than the receive buffer (the kernel truncated it), dropped.
    pub rx_oversize: Counter,
    /// Socket errors other than "would block" (and non-IPv4 peers), on either direction.
    pub io_errors: Counter,
    /// A decided command without a valid log-command header (see [`crate::app::LogCommand`]).
    pub log_malformed: Counter,
    /// The application's reply did not fit one datagram: sent as status `REPLY_TOO_LARGE`.
    pub reply_too_large: Counter,
    /// `Storage::sync` failed: the messages of that round were not sent.
    pub storage_errors: Counter,
    /// The learner fell below the acceptors' trim point (`Event::SnapshotNeeded`).
    pub snapshots_needed: Counter,
    /// Snapshots offered to a peer that asked (`Event::SnapshotWanted`).
    pub snapshots_offered: Counter,
    /// Snapshots fetched from a peer and installed, or refused by the application.
    pub snapshots_installed: Counter,
    pub snapshots_refused: Counter,
    /// Times this member voted again after rejoining with lost state.
    pub rejoins: Counter,
    /// Leadership (from the core's counters): elections started, times this member
    /// stepped down as leader, of which for want of a quorum (check-quorum), and Prepares
    /// of other proposers ignored while a live leader held the group (leader stickiness).
    pub elections_started: Counter,
    pub step_downs: Counter,
    pub check_quorum_step_downs: Counter,
    pub prepares_ignored_live_leader: Counter,
    /// Durable storage (published from the group's log by the loop that owns it): syncs
    /// (one fdatasync each), records they made durable, bytes written, sync time in
    /// microseconds (total and slowest), and KV snapshots written with their bytes.
    pub storage_syncs: Counter,
    pub storage_records_synced: Counter,
    pub storage_bytes_written: Counter,
    pub storage_sync_us_total: Counter,
    pub storage_sync_us_max: Counter,
    pub snapshots_written: Counter,
    pub snapshot_bytes_written: Counter,
    /// Ticks not delivered because the loop fell too far behind its clock.
    pub ticks_skipped: Counter,
    /// In-memory network: datagram to an endpoint nobody is attached to (a crashed node).
    pub tx_undeliverable: Counter,
}

impl Counters {
    pub fn frame_drop(&self, cause: FrameDrop) {
        self.frame_drops[cause.index()].inc();
    }
    pub fn wire_drop(&self, cause: WireError) {
        self.wire_drops[cause.index()].inc();
    }
    pub fn total_drops(&self) -> u64 {
        self.frame_drops.iter().chain(self.wire_drops.iter()).map(Counter::get).sum::<u64>()
            + self.unknown_port.get()
            + self.misdirected.get()
            + self.unexpected_replies.get()
            + self.filter_rx_drops.get()
            + self.rx_oversize.get()
    }

    /// Visits every counter as (group, name, value) in a fixed order: for printing and
    /// telemetry. Groups: "" for plain counters, "frame_drop", "wire_drop".
    pub fn visit(&self, mut f: impl FnMut(&'static str, &'static str, u64)) {
        let plain: [(&'static str, &Counter); 52] = [
            ("rx_packets", &self.rx_packets),
            ("rx_bytes", &self.rx_bytes),
            ("tx_packets", &self.tx_packets),
            ("tx_bytes", &self.tx_bytes),
            ("unknown_port", &self.unknown_port),
            ("misdirected", &self.misdirected),
            ("tx_full_frees", &self.tx_full_frees),
            ("tx_no_buffer", &self.tx_no_buffer),
            ("tx_unresolved", &self.tx_unresolved),
            ("arp_requests_answered", &self.arp_requests_answered),
            ("arp_requests_sent", &self.arp_requests_sent),
            ("arp_replies_learned", &self.arp_replies_learned),
            ("slots_decided", &self.slots_decided),
            ("commands_applied", &self.commands_applied),
            ("batches_proposed", &self.batches_proposed),
            ("commands_proposed", &self.commands_proposed),
            ("client_requests", &self.client_requests),
            ("client_replies", &self.client_replies),
            ("client_rejected", &self.client_rejected),
            ("client_request_batches", &self.client_request_batches),
            ("client_reply_batches", &self.client_reply_batches),
            ("leader_changes", &self.leader_changes),
            ("loop_iterations", &self.loop_iterations),
            ("idle_polls", &self.idle_polls),
            ("filter_rx_drops", &self.filter_rx_drops),
            ("filter_tx_drops", &self.filter_tx_drops),
            ("unexpected_replies", &self.unexpected_replies),
            ("tx_too_large", &self.tx_too_large),
            ("encode_errors", &self.encode_errors),
            ("rx_oversize", &self.rx_oversize),
            ("io_errors", &self.io_errors),
            ("log_malformed", &self.log_malformed),
            ("reply_too_large", &self.reply_too_large),
            ("storage_errors", &self.storage_errors),
            ("snapshots_needed", &self.snapshots_needed),
            ("snapshots_offered", &self.snapshots_offered),
            ("snapshots_installed", &self.snapshots_installed),
            ("snapshots_refused", &self.snapshots_refused),
            ("rejoins", &self.rejoins),
            ("elections_started", &self.elections_started),
            ("step_downs", &self.step_downs),
            ("check_quorum_step_downs", &self.check_quorum_step_downs),
            ("prepares_ignored_live_leader", &self.prepares_ignored_live_leader),
            ("storage_syncs", &self.storage_syncs),
            ("storage_records_synced", &self.storage_records_synced),
            ("storage_bytes_written", &self.storage_bytes_written),
            ("storage_sync_us_total", &self.storage_sync_us_total),
            ("storage_sync_us_max", &self.storage_sync_us_max),
            ("snapshots_written", &self.snapshots_written),
            ("snapshot_bytes_written", &self.snapshot_bytes_written),
            ("ticks_skipped", &self.ticks_skipped),
            ("tx_undeliverable", &self.tx_undeliverable),
        ];
        for (name, c) in plain {
            f("", name, c.get());
        }
        for cause in FrameDrop::ALL {
            f("frame_drop", cause.as_str(), self.frame_drops[cause.index()].get());
        }
        for cause in WireError::ALL {
            f("wire_drop", cause.as_str(), self.wire_drops[cause.index()].get());
        }
    }
}
