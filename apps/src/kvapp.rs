//! [`KvApp`]: the replicated KV store ([`KvStore`]) as a dataplane [`Application`].
//!
//! Every replica applies every decided command in log order with the command's
//! `(client, seq)` from its log header, so the store's exactly-once sessions absorb a
//! retried request that was chosen twice (the retry gets the cached answer).
//!
//! # Status codes on the wire
//! The KV store writes its own status byte first in every reply. The datagram's status
//! byte (`ClientReply::status`) carries it, mapped onto the dataplane's code space, and
//! the body carries the rest of the KV reply:
//!
//! | KV status (`kv::status`) | wire status | meaning |
//! |---|---|---|
//! | `OK` 0 | `OK` 0 | applied; body = KV reply without its status byte |
//! | `TOO_LARGE` 3 | `TOO_LARGE` 3 | same meaning as the driver's (key or value over the limit); not applied |
//! | `MALFORMED` 4 | `MALFORMED` 4 | same meaning as the driver's; applied as a no-op |
//! | `STALE` 5 | [`KV_STALE`] = `APP_BASE` (16) | collides with the driver's `REPLY_TOO_LARGE` (5), so moved above `APP_BASE` |
//! | any other | `APP_BASE + 1 + code` | (none today) |
//!
//! The driver's own refusals (`NOT_LEADER` 1, `BUSY` 2, `TOO_LARGE` 3) never reach the
//! application: they are sent before a command is proposed.
//!
//! Body layouts after `OK` (see `kv.rs`): put: empty; delete/cas: one flag byte; get:
//! `flag u8 | len u32 | value` (flag 0 = absent). [`decode_reply`] turns (status, body)
//! back into a [`Reply`].

use crate::kv::{self, KvStore, OpError, Reply};
use dataplane::app::{status, Application, LogCommand};
use dataplane::durable::snapshot_file::SnapshotWriter;
use paxos_core::Slot;

/// Wire status of the KV store's `STALE` (a request older than the session's last one).
pub const KV_STALE: u8 = status::APP_BASE;

/// Maps a KV status byte to the wire status.
pub fn wire_status(kv_status: u8) -> u8 {
    match kv_status {
        kv::status::OK => status::OK,
        kv::status::TOO_LARGE => status::TOO_LARGE,
        kv::status::MALFORMED => status::MALFORMED,
        kv::status::STALE => KV_STALE,
        other => status::APP_BASE.saturating_add(1).saturating_add(other),
    }
}

/// A short name of a wire status as seen by a KV client.
pub fn status_name(st: u8) -> &'static str {
    match st {
        KV_STALE => "kv_stale",
        s => status::name(s),
    }
}

/// A KV reply borrowing its value from the datagram (no copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyRef<'a> {
    /// put
    Done,
    /// get: the value, or None if absent
    Value(Option<&'a [u8]>),
    /// delete: existed; cas: swapped
    Flag(bool),
    /// Anything but OK (the wire status).
    Error(u8),
}

impl ReplyRef<'_> {
    /// The owned [`Reply`].
    pub fn to_owned(self) -> Reply {
        match self {
            ReplyRef::Done => Reply::Done,
            ReplyRef::Value(v) => Reply::Value(v.map(<[u8]>::to_vec)),
            ReplyRef::Flag(f) => Reply::Flag(f),
            ReplyRef::Error(st) => Reply::Error(st),
        }
    }
}

/// Decodes a KV reply from its wire status and body without copying it.
/// `ReplyRef::Error(wire status)` for anything but `OK`; `Err` if an `OK` body is malformed.
pub fn decode_reply_ref(st: u8, body: &[u8]) -> Result<ReplyRef<'_>, OpError> {
    if st != status::OK {
        return Ok(ReplyRef::Error(st));
    }
    match body {
        [] => Ok(ReplyRef::Done),
        [flag] => Ok(ReplyRef::Flag(*flag == 1)),
        [flag, rest @ ..] => {
            if rest.len() < 4 {
                return Err(OpError::Malformed);
            }
            let (len, v) = rest.split_at(4);
            let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if v.len() != n {
                return Err(OpError::Malformed);
            }
            Ok(ReplyRef::Value((*flag == 1).then_some(v)))
        }
    }
}

/// Decodes a KV reply from its wire status and body. `Reply::Error(wire status)` for
/// anything but `OK`; `Err` if an `OK` body is malformed.
pub fn decode_reply(st: u8, body: &[u8]) -> Result<Reply, OpError> {
    decode_reply_ref(st, body).map(ReplyRef::to_owned)
}

/// The KV store behind a group driver.
#[derive(Default)]
pub struct KvApp {
    store: KvStore,
    /// Scratch for the store's reply (status byte first), reused.
    scratch: Vec<u8>,
    applied: u64,
    last_slot: Option<Slot>,
    /// Durable storage: snapshots written to disk, and what is on disk.
    snapshots: Option<Checkpoints>,
}

/// Snapshots of the store written to disk every `every_slots` applied slots (by a thread
/// of their own): what [`Application::checkpoint`] reports as durable.
struct Checkpoints {
    writer: SnapshotWriter,
    every_slots: u64,
    /// The slot the last snapshot handed to the writer covers.
    submitted: Slot,
}

impl std::fmt::Debug for KvApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvApp")
            .field("applied", &self.applied)
            .field("last_slot", &self.last_slot)
            .field("snapshots", &self.snapshots.is_some())
            .finish_non_exhaustive()
    }
}

impl KvApp {
    pub fn new(max_sessions: usize) -> KvApp {
        KvApp { store: KvStore::new(max_sessions), ..KvApp::default() }
    }
    pub fn store(&self) -> &KvStore {
        &self.store
    }
    /// Commands applied (including duplicates answered from the session cache).
    pub fn applied(&self) -> u64 {
        self.applied
    }
    pub fn last_slot(&self) -> Option<Slot> {
        self.last_slot
    }

    /// Writes a snapshot of the store every `every_slots` applied slots with `writer`
    /// (durable storage); `durable` is the slot of the snapshot already on disk.
    pub fn with_snapshots(self, writer: SnapshotWriter, every_slots: u64, durable: Slot) -> KvApp {
        let snapshots = Checkpoints { writer, every_slots: every_slots.max(1), submitted: durable };
        KvApp { snapshots: Some(snapshots), ..self }
    }

    /// A snapshot write failed: the node cannot make progress durable and must stop.
    pub fn snapshot_error(&self) -> Option<String> {
        self.snapshots.as_ref().and_then(|c| c.writer.error())
    }

    /// Snapshots written, their bytes, the last one's write time (us), and the slot on disk.
    pub fn snapshot_stats(&self) -> Option<(u64, u64, u64, Slot)> {
        self.snapshots.as_ref().map(|c| {
            let (n, bytes, us) = c.writer.stats();
            (n, bytes, us, c.writer.durable())
        })
    }
}

impl Application for KvApp {
    fn apply(&mut self, slot: Slot, cmd: &LogCommand<'_>, reply: &mut Vec<u8>) -> Option<u8> {
        self.applied += 1;
        self.last_slot = Some(slot);
        self.store.apply(cmd.client.0, cmd.seq.0, cmd.command, &mut self.scratch);
        let (&st, body) = self.scratch.split_first()?;
        reply.extend_from_slice(body);
        Some(wire_status(st))
    }

    fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        Some(self.store.snapshot())
    }

    fn install_snapshot(&mut self, upto: Slot, data: &[u8]) -> bool {
        let ok = self.store.install(data).is_ok();
        if ok {
            self.last_slot = upto.0.checked_sub(1).map(Slot);
        }
        ok
    }

    /// Durable storage: every `every_slots` slots, serialise the store (here, on the poll
    /// loop) and hand it to the writer thread; report the slot of the newest snapshot on
    /// disk. Memory storage: `None` (what is applied counts).
    fn checkpoint(&mut self, next: Slot) -> Option<Slot> {
        let cp = self.snapshots.as_mut()?;
        if next.0 >= cp.submitted.0.saturating_add(cp.every_slots) && !cp.writer.busy() {
            let state = self.store.snapshot();
            if cp.writer.submit(next, state) {
                cp.submitted = next;
            }
        }
        Some(cp.writer.durable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use dataplane::io::Endpoint;
    use paxos_core::{ClientId, ReplicaId, RequestSeq};
    use std::net::Ipv4Addr;

    fn apply(app: &mut KvApp, client: u64, seq: u64, op: Op<'_>) -> (u8, Reply) {
        let mut req = Vec::new();
        op.encode(&mut req);
        let cmd = LogCommand {
            client: ClientId(client),
            seq: RequestSeq(seq),
            proposer: ReplicaId(0),
            reply_to: Endpoint::udp(Ipv4Addr::LOCALHOST, 1),
            command: &req,
        };
        let mut body = Vec::new();
        let st = app.apply(Slot(seq), &cmd, &mut body).unwrap();
        (st, decode_reply(st, &body).unwrap())
    }

    #[test]
    fn replies_round_trip_and_statuses_do_not_collide() {
        let mut app = KvApp::default();
        assert_eq!(apply(&mut app, 1, 1, Op::Get { key: b"k" }), (0, Reply::Value(None)));
        assert_eq!(apply(&mut app, 1, 2, Op::Put { key: b"k", value: b"v" }), (0, Reply::Done));
        let got = apply(&mut app, 1, 3, Op::Get { key: b"k" });
        assert_eq!(got, (0, Reply::Value(Some(b"v".to_vec()))));
        let cas = Op::Cas { key: b"k", expected: Some(b"v"), value: b"w" };
        assert_eq!(apply(&mut app, 1, 4, cas.clone()), (0, Reply::Flag(true)));
        // The retry of seq 4 is answered from the session, not applied again.
        assert_eq!(apply(&mut app, 1, 4, cas), (0, Reply::Flag(true)));
        assert_eq!(app.store().get(b"k"), Some(&b"w"[..]));
        let (st, r) = apply(&mut app, 1, 3, Op::Get { key: b"k" });
        assert_eq!((st, r), (KV_STALE, Reply::Error(KV_STALE)));
        assert_ne!(KV_STALE, status::REPLY_TOO_LARGE);
        assert_eq!(status_name(KV_STALE), "kv_stale");
        let big = vec![0u8; kv::MAX_KEY_BYTES + 1];
        assert_eq!(apply(&mut app, 2, 1, Op::Get { key: &big }).0, status::TOO_LARGE);
        // Snapshots carry sessions too.
        let snap = app.take_snapshot().unwrap();
        let mut other = KvApp::default();
        assert!(other.install_snapshot(Slot(10), &snap));
        assert_eq!(other.store().get(b"k"), Some(&b"w"[..]));
        assert!(!other.install_snapshot(Slot(10), b"junk"));
        assert!(decode_reply(0, &[1, 5, 0, 0, 0]).is_err());
        let body = [1u8, 2, 0, 0, 0, b'h', b'i'];
        assert_eq!(decode_reply_ref(0, &body), Ok(ReplyRef::Value(Some(&b"hi"[..]))));
        assert_eq!(decode_reply_ref(0, &[0, 0, 0, 0, 0]), Ok(ReplyRef::Value(None)));
        assert_eq!(decode_reply_ref(0, &[1]), Ok(ReplyRef::Flag(true)));
        assert_eq!(decode_reply_ref(0, &[]), Ok(ReplyRef::Done));
        assert_eq!(decode_reply_ref(KV_STALE, &[]), Ok(ReplyRef::Error(KV_STALE)));
    }
}
