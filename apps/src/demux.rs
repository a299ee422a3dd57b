//! Many client sessions over one transport: [`Demux`] owns one [`PacketIo`] (one UDP
//! socket, one DPDK queue) and hands out [`DemuxIo`] handles, one per session, each a
//! `PacketIo` that a `dataplane::client::Client` can own.
//!
//! - Receive: [`Demux::pump`] takes one burst from the transport and files every
//!   `ClientReply` in the inbox of the session it names (group at header offset 4, client
//!   id at offset 12: `docs/wire-format.md`). A handle's `recv_burst` only pops its inbox,
//!   so a loop over many sessions costs one receive call per iteration, not one per session.
//!   Datagrams for no registered session (late replies to an abandoned session, anything
//!   that is not a reply) are counted and dropped; so are datagrams for a full inbox. An
//!   inbox that still holds datagrams after a handle's `recv_burst` is reported ready again.
//! - Transmit: a handle sends straight through the shared transport; its `flush` does
//!   nothing: call [`Demux::flush`] once per loop iteration.
//!
//! Single-threaded (`Rc<RefCell<..>>`), like the loop that drives it.

use dataplane::io::{Datagram, Endpoint, PacketIo, TxError};
use paxos_core::wire::{peek_header, Kind};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Datagrams one session's inbox holds (a session has one request outstanding; more are
/// duplicates).
pub const INBOX_DATAGRAMS: usize = 64;
/// Datagrams taken from the transport per pump.
pub const PUMP_BURST: usize = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Replies filed in an inbox.
    pub delivered: u64,
    /// Not a client reply, or for no registered session.
    pub unmatched: u64,
    /// The session's inbox was full.
    pub overflow: u64,
}

struct Inner<Io: PacketIo> {
    io: Io,
    /// Keyed by values from the network: a keyed hasher (see `kv::KvHasher`).
    sessions: HashMap<(u16, u64), usize, crate::kv::KvHasher>,
    inboxes: Vec<Option<VecDeque<Datagram<Io::Buf>>>>,
    free: Vec<usize>,
    /// Inboxes that received something since the last `take_ready`.
    ready: Vec<usize>,
    rx: Vec<Datagram<Io::Buf>>,
    stats: DemuxStats,
}

/// The shared transport. Cloning shares it.
pub struct Demux<Io: PacketIo> {
    inner: Rc<RefCell<Inner<Io>>>,
}

impl<Io: PacketIo> Clone for Demux<Io> {
    fn clone(&self) -> Self {
        Demux { inner: Rc::clone(&self.inner) }
    }
}

impl<Io: PacketIo> Demux<Io> {
    pub fn new(io: Io) -> Demux<Io> {
        Demux {
            inner: Rc::new(RefCell::new(Inner {
                io,
                sessions: HashMap::default(),
                inboxes: Vec::new(),
                free: Vec::new(),
                ready: Vec::new(),
                rx: Vec::with_capacity(PUMP_BURST),
                stats: DemuxStats::default(),
            })),
        }
    }

    /// A handle receiving the replies of `(group, client)`. Panics if that session is
    /// already registered (a session id must be unique).
    pub fn register(&self, group: u16, client: u64) -> DemuxIo<Io> {
        let mut s = self.inner.borrow_mut();
        let inbox = VecDeque::with_capacity(4);
        let index = match s.free.pop() {
            Some(i) => {
                s.inboxes[i] = Some(inbox);
                i
            }
            None => {
                s.inboxes.push(Some(inbox));
                s.inboxes.len() - 1
            }
        };
        let prev = s.sessions.insert((group, client), index);
        assert!(prev.is_none(), "demux: session ({group}, {client}) registered twice");
        DemuxIo { demux: self.clone(), index, key: (group, client) }
    }

    /// One receive burst from the transport, filed by session. Returns datagrams received.
    pub fn pump(&self) -> usize {
        let mut guard = self.inner.borrow_mut();
        let s = &mut *guard;
        let mut rx = std::mem::take(&mut s.rx);
        rx.clear();
        let n = s.io.recv_burst(&mut rx, PUMP_BURST);
        for dg in rx.drain(..) {
            let bytes = dg.data.as_ref();
            let key = match peek_header(bytes) {
                Ok(h) if h.kind == Kind::ClientReply && bytes.len() >= 20 => {
                    let mut id = [0u8; 8];
                    id.copy_from_slice(&bytes[12..20]);
                    (h.group.0, u64::from_le_bytes(id))
                }
                _ => {
                    s.stats.unmatched += 1;
                    continue;
                }
            };
            let Some(&i) = s.sessions.get(&key) else {
                s.stats.unmatched += 1;
                continue;
            };
            let Some(inbox) = s.inboxes[i].as_mut() else {
                s.stats.unmatched += 1;
                continue;
            };
            if inbox.len() >= INBOX_DATAGRAMS {
                s.stats.overflow += 1;
                continue;
            }
            if inbox.is_empty() {
                s.ready.push(i);
            }
            inbox.push_back(dg);
            s.stats.delivered += 1;
        }
        s.rx = rx;
        n
    }

    /// Appends the inbox indexes ([`DemuxIo::index`]) that received replies since the last
    /// call (each at most once per call, possibly already drained).
    pub fn take_ready(&self, out: &mut Vec<usize>) {
        let mut s = self.inner.borrow_mut();
        out.append(&mut s.ready);
    }

    /// Pushes what the sessions queued to the wire.
    pub fn flush(&self) {
        self.inner.borrow_mut().io.flush();
    }

    pub fn stats(&self) -> DemuxStats {
        self.inner.borrow().stats
    }

    /// Runs `f` on the shared transport (e.g. to read its counters).
    pub fn with_io<R>(&self, f: impl FnOnce(&mut Io) -> R) -> R {
        f(&mut self.inner.borrow_mut().io)
    }
}

/// One session's view of the shared transport. Dropping it unregisters the session.
pub struct DemuxIo<Io: PacketIo> {
    demux: Demux<Io>,
    index: usize,
    key: (u16, u64),
}

impl<Io: PacketIo> DemuxIo<Io> {
    /// The inbox index [`Demux::take_ready`] reports for this session.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl<Io: PacketIo> Drop for DemuxIo<Io> {
    fn drop(&mut self) {
        let mut s = self.demux.inner.borrow_mut();
        s.sessions.remove(&self.key);
        s.inboxes[self.index] = None;
        s.free.push(self.index);
    }
}

impl<Io: PacketIo> PacketIo for DemuxIo<Io> {
    type Buf = Io::Buf;
    type Builder = Io::Builder;

    fn value_builder(&mut self) -> Io::Builder {
        self.demux.inner.borrow_mut().io.value_builder()
    }

    fn recv_burst(&mut self, out: &mut Vec<Datagram<Io::Buf>>, max: usize) -> usize {
        let mut s = self.demux.inner.borrow_mut();
        let Some(inbox) = s.inboxes[self.index].as_mut() else { return 0 };
        let n = inbox.len().min(max);
        out.extend(inbox.drain(..n));
        if !inbox.is_empty() {
            // Still something to read: report it again, or a reply filed behind the
            // leftovers would wait (`pump` reports an inbox only when it becomes non-empty).
            s.ready.push(self.index);
        }
        n
    }

    fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        to: &Endpoint,
        len: usize,
        fill: F,
    ) -> Result<(), TxError> {
        self.demux.inner.borrow_mut().io.send_with(to, len, fill)
    }

    fn flush(&mut self) {}

    fn local(&self) -> Endpoint {
        self.demux.inner.borrow().io.local()
    }

    fn max_payload(&self) -> usize {
        self.demux.inner.borrow().io.max_payload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::counters::Counters;
    use dataplane::memio::MemNetwork;
    use paxos_core::wire::{encode_reply, reply_encoded_len, ClientReply, Route, CLIENT};
    use paxos_core::{ClientId, GroupId, ReplicaId, RequestSeq};
    use std::sync::Arc;

    #[test]
    fn files_replies_by_session() {
        let net = MemNetwork::new();
        let mut server = net.attach_next(Arc::new(Counters::default()));
        let demux = Demux::new(net.attach_next(Arc::new(Counters::default())));
        let mut a = demux.register(0, 7);
        let mut b = demux.register(1, 7);
        let to = a.local();
        let mut reply = |group: u16, client: u64, seq: u64| {
            let r = ClientReply {
                client: ClientId(client),
                seq: RequestSeq(seq),
                status: 0,
                leader_hint: None,
                body: &b"x"[..],
            };
            let route = Route { group: GroupId(group), from: ReplicaId(0), to: CLIENT };
            server
                .send_with(&to, reply_encoded_len(&r), |buf| {
                    encode_reply(route, &r, buf).unwrap();
                })
                .unwrap();
            server.flush();
        };
        reply(0, 7, 1);
        reply(1, 7, 2);
        reply(1, 7, 3);
        reply(0, 8, 1); // nobody
        assert_eq!(demux.pump(), 4);
        let mut ready = Vec::new();
        demux.take_ready(&mut ready);
        assert_eq!(ready, vec![a.index(), b.index()]);
        let mut got = Vec::new();
        assert_eq!(a.recv_burst(&mut got, 32), 1);
        assert_eq!(b.recv_burst(&mut got, 32), 2);
        assert_eq!(demux.stats(), DemuxStats { delivered: 3, unmatched: 1, overflow: 0 });
        drop(a);
        reply(0, 7, 4);
        demux.pump();
        assert_eq!(demux.stats().unmatched, 2);
        let mut c = demux.register(0, 7);
        assert_eq!(c.index(), 0, "the freed inbox is reused");
        // An inbox not drained to the end is reported ready again.
        for seq in 10..13 {
            reply(0, 7, seq);
        }
        demux.pump();
        ready.clear();
        demux.take_ready(&mut ready);
        assert_eq!(ready, vec![c.index()]);
        got.clear();
        assert_eq!(c.recv_burst(&mut got, 2), 2);
        ready.clear();
        demux.take_ready(&mut ready);
        assert_eq!(ready, vec![c.index()], "one datagram left");
        assert_eq!(c.recv_burst(&mut got, 2), 1);
        ready.clear();
        demux.take_ready(&mut ready);
        assert!(ready.is_empty());
    }
}
