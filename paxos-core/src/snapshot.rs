//! Snapshot transfer between learners, over the same messages as everything else.
//!
//! A learner that fell below the acceptors' trim point (an acceptor answered `Trimmed`)
//! fetches a snapshot from another learner: `SnapshotRequest { min, slot, id, offset }`
//! asks for bytes of snapshot (`slot`, `id`) from `offset`; the server answers with up to
//! [`SNAPSHOT_CHUNKS_PER_REQUEST`] `SnapshotChunk`s, each small enough for one message (a
//! fixed chunk size derived from `max_message_bytes`, so that chunks may arrive in any
//! order), and the learner asks for the next run when those arrived. A lost chunk or a
//! silent server is retried after `retransmit_ticks` from the first chunk missing
//! (resumable); after
//! [`STALLS_BEFORE_SWITCH`] silent retries the learner asks the next learner instead. A
//! server whose snapshot changed starts the learner over on its newest one from byte 0.
//! The learner's buffer is bounded by `Config::max_snapshot_bytes`, and the whole snapshot
//! must match its digest (`id`) before the application sees it (`Event::SnapshotReady`,
//! `Node::take_snapshot`).
//!
//! What a snapshot holds is the application's business: it offers one with
//! `Node::offer_snapshot(slot, bytes)` (covering every slot below `slot`), typically when
//! `Event::SnapshotWanted` says a peer asked for one.

use crate::ids::{ReplicaId, Slot};
use crate::message::Message;
use crate::node::Node;
use crate::output::Event;
use crate::payload::{Payload, ValueBuilder};
use crate::storage::Storage;
use bytes::Bytes;

/// Chunks a server sends per request.
pub const SNAPSHOT_CHUNKS_PER_REQUEST: u64 = 16;
/// Bytes of a SnapshotChunk besides its data (header and fixed fields).
pub const SNAPSHOT_CHUNK_OVERHEAD_BYTES: usize = 48;
/// Silent retries before a learner asks another learner.
pub const STALLS_BEFORE_SWITCH: u32 = 2;
/// An offered snapshot nobody asked for in this many ticks is dropped.
pub const SERVED_IDLE_TICKS: u64 = 10_000;

/// A snapshot offered for serving.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Served {
    pub slot: Slot,
    pub id: u64,
    pub data: Bytes,
    pub last_used: u64,
}

/// A snapshot being received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Fetch {
    /// It must cover every slot below this.
    pub min: Slot,
    pub source: ReplicaId,
    /// The snapshot being received (`Slot::ZERO`: none started yet), its digest and size.
    pub slot: Slot,
    pub id: u64,
    pub total: u64,
    /// The bytes received so far, at their offsets (grown as chunks arrive, at most
    /// `total`).
    pub buf: Vec<u8>,
    /// Chunks received (bit per chunk), how many, and the first one missing.
    pub have: Vec<u64>,
    pub received: u64,
    pub first_missing: u64,
    /// The last request asked for chunks below this one.
    pub requested_to: u64,
    pub last_request: u64,
    pub stalls: u32,
}

impl Fetch {
    fn restart(&mut self) {
        self.slot = Slot::ZERO;
        self.buf.clear();
        self.have.clear();
        self.received = 0;
        self.first_missing = 0;
        self.requested_to = 0;
    }
    fn has(&self, chunk: u64) -> bool {
        self.have.get((chunk / 64) as usize).is_some_and(|w| w & (1 << (chunk % 64)) != 0)
    }
}

/// The digest that names a snapshot (FNV-1a over 8-byte words, and the length): it tells
/// two snapshots of one slot apart (serialisations may differ between replicas) and
/// catches a transfer assembled wrongly. Not a defence against a malicious peer.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let rest = words.remainder();
    let mut a = [0u8; 8];
    a[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(a)).wrapping_mul(0x0000_0100_0000_01b3);
    h ^ bytes.len() as u64
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    /// Offers a snapshot of the application's state covering every slot below `slot`, for
    /// peers that need one. The newest two offers are kept (so that a transfer in progress
    /// can finish); an offer older than the newest is ignored.
    pub fn offer_snapshot(&mut self, slot: Slot, data: Bytes) {
        let id = digest(&data);
        let now = self.now;
        match &mut self.served[0] {
            Some(s) if s.slot > slot || (s.slot == slot && s.id == id) => {
                s.last_used = now;
                return;
            }
            _ => {}
        }
        self.served[1] = self.served[0].take();
        self.served[0] = Some(Served { slot, id, data, last_used: now });
    }

    /// The snapshot a fetch completed (after `Event::SnapshotReady`): install it, then call
    /// `snapshot_installed` with its slot.
    pub fn take_snapshot(&mut self) -> Option<(Slot, Bytes)> {
        self.snapshot_ready.take()
    }

    /// The application could not install the snapshot `take_snapshot` gave: forget it, so
    /// that the learner fetches one again when an acceptor next answers `Trimmed`.
    pub fn snapshot_rejected(&mut self) {
        self.learner.forget_snapshot_wanted();
    }

    /// A learner asks for snapshot bytes.
    pub(crate) fn serve_snapshot(
        &mut self,
        to: ReplicaId,
        min: Slot,
        slot: Slot,
        id: u64,
        offset: u64,
    ) {
        let same = |s: &Option<Served>| matches!(s, Some(s) if s.slot == slot && s.id == id);
        let (k, start) = match self.served.iter().position(same) {
            Some(k) if slot >= min => (k, offset),
            _ => match &self.served[0] {
                Some(s) if s.slot >= min => (0, 0),
                _ => {
                    self.events.push(Event::SnapshotWanted { min });
                    return;
                }
            },
        };
        let Some(served) = self.served[k].as_mut() else { return };
        served.last_used = self.now;
        let (slot, id, data) = (served.slot, served.id, served.data.clone());
        let total = data.len() as u64;
        let chunk = self.snapshot_chunk_bytes();
        // Whole chunks only: the receiver places them by index.
        let mut off = (start.min(total) / chunk) * chunk;
        for i in 0..SNAPSHOT_CHUNKS_PER_REQUEST {
            if off >= total && !(total == 0 && i == 0) {
                break;
            }
            let end = (off + chunk).min(total);
            let part = self.builder.wrap(data.slice(off as usize..end as usize));
            self.stats.snapshot_chunks_sent += 1;
            self.sink()
                .send(to, Message::SnapshotChunk { slot, id, total, offset: off, data: part });
            off = end;
        }
    }

    /// Starts fetching a snapshot that covers every slot below `low`, from `hint` if it is
    /// another learner, else from the leader or another learner.
    pub(crate) fn start_fetch(&mut self, hint: ReplicaId, low: Slot) {
        if matches!(&self.learner.fetch, Some(f) if f.min >= low) {
            return;
        }
        let Some(source) = self.snapshot_source(Some(hint), None) else { return };
        if let Some(f) = self.learner.fetch.as_mut() {
            // A further trim point: keep asking the same learner, for a newer snapshot.
            f.min = low;
            if f.slot < low {
                f.restart();
            }
        } else {
            self.learner.fetch = Some(Fetch {
                min: low,
                source,
                slot: Slot::ZERO,
                id: 0,
                total: 0,
                buf: Vec::new(),
                have: Vec::new(),
                received: 0,
                first_missing: 0,
                requested_to: 0,
                last_request: self.now,
                stalls: 0,
            });
        }
        self.send_snapshot_request();
    }

    /// Bytes of snapshot data per chunk.
    fn snapshot_chunk_bytes(&self) -> u64 {
        (self.cfg.max_message_bytes as usize).saturating_sub(SNAPSHOT_CHUNK_OVERHEAD_BYTES).max(1)
            as u64
    }

    /// A learner other than us to fetch from: `hint`, else the leader, else the learner
    /// after `after` in configuration order.
    fn snapshot_source(
        &self,
        hint: Option<ReplicaId>,
        after: Option<ReplicaId>,
    ) -> Option<ReplicaId> {
        let is_other_learner = |r: ReplicaId| {
            r != self.id && matches!(self.topo.member(r), Some((_, roles)) if roles.learner)
        };
        if let Some(h) = hint.filter(|h| is_other_learner(*h)) {
            return Some(h);
        }
        if after.is_none() {
            if let Some(l) = self.leader_hint().filter(|l| is_other_learner(*l)) {
                return Some(l);
            }
        }
        let learners = &self.topo.learners;
        let pos = after.and_then(|a| learners.iter().position(|l| *l == a)).map_or(0, |p| p + 1);
        (0..learners.len())
            .map(|k| learners[(pos + k) % learners.len()])
            .find(|l| is_other_learner(*l))
    }

    /// Asks for the run of chunks from the first one missing.
    fn send_snapshot_request(&mut self) {
        let chunk = self.snapshot_chunk_bytes();
        let now = self.now;
        let Some(f) = self.learner.fetch.as_mut() else { return };
        let offset = f.first_missing * chunk;
        f.requested_to = f.first_missing + SNAPSHOT_CHUNKS_PER_REQUEST;
        f.last_request = now;
        let msg = Message::SnapshotRequest { min: f.min, slot: f.slot, id: f.id, offset };
        let to = f.source;
        self.sink().send(to, msg);
    }

    /// Bytes of a snapshot from `from`.
    pub(crate) fn learner_on_snapshot_chunk(
        &mut self,
        from: ReplicaId,
        slot: Slot,
        id: u64,
        total: u64,
        offset: u64,
        data: &[u8],
    ) {
        let max = self.cfg.max_snapshot_bytes;
        let chunk = self.snapshot_chunk_bytes();
        let Some(f) = self.learner.fetch.as_mut() else { return };
        if slot < f.min || slot == Slot::ZERO {
            return; // does not cover what we need
        }
        self.stats.snapshot_chunks_received += 1;
        let index = offset / chunk;
        let expected = chunk.min(total.saturating_sub(offset));
        if total > max
            || !offset.is_multiple_of(chunk)
            || data.len() as u64 != expected
            || offset > total
        {
            // Too large, or not cut the way we cut (another configuration): refuse.
            self.stats.snapshot_chunks_rejected += 1;
            return;
        }
        if f.slot == Slot::ZERO || (f.slot, f.id, f.total) != (slot, id, total) {
            // A snapshot other than the one being received: the server's newest. Start over
            // with it (the one we were getting is no longer served).
            f.restart();
            f.slot = slot;
            f.id = id;
            f.total = total;
            f.source = from;
            f.have = vec![0; total.div_ceil(chunk).div_ceil(64).max(1) as usize];
        }
        if f.has(index) {
            return; // a duplicate
        }
        let (start, end) = (offset as usize, (offset + expected) as usize);
        if f.buf.len() < end {
            f.buf.resize(end, 0);
        }
        f.buf[start..end].copy_from_slice(data);
        if let Some(w) = f.have.get_mut((index / 64) as usize) {
            *w |= 1 << (index % 64);
        }
        f.received += 1;
        while f.has(f.first_missing) {
            f.first_missing += 1;
        }
        f.stalls = 0;
        f.last_request = self.now;
        let chunks = total.div_ceil(chunk).max(1);
        if f.received == chunks {
            if digest(&f.buf) != f.id {
                self.stats.snapshot_chunks_rejected += 1;
                f.restart();
                self.send_snapshot_request();
                return;
            }
            let buf = core::mem::take(&mut f.buf);
            self.learner.fetch = None;
            self.stats.snapshots_fetched += 1;
            self.snapshot_ready = Some((slot, Bytes::from(buf)));
            self.events.push(Event::SnapshotReady { slot });
        } else if f.first_missing >= f.requested_to {
            self.send_snapshot_request();
        }
    }

    /// Retries a stalled fetch (switching servers after a few silent retries) and drops
    /// offered snapshots nobody asked for in a long while.
    pub(crate) fn snapshot_tick(&mut self) {
        let now = self.now;
        for s in self.served.iter_mut() {
            if matches!(s, Some(x) if now.saturating_sub(x.last_used) >= SERVED_IDLE_TICKS) {
                *s = None;
            }
        }
        let rt = u64::from(self.cfg.retransmit_ticks);
        let Some(f) = self.learner.fetch.as_mut() else { return };
        if now.saturating_sub(f.last_request) < rt {
            return;
        }
        f.stalls += 1;
        if f.stalls >= STALLS_BEFORE_SWITCH {
            f.stalls = 0;
            let current = f.source;
            if let Some(next) = self.snapshot_source(None, Some(current)) {
                if let Some(f) = self.learner.fetch.as_mut() {
                    if next != f.source {
                        // Another server: its snapshot may differ; start over.
                        f.source = next;
                        f.restart();
                    }
                }
            }
        }
        self.send_snapshot_request();
    }
}
