//! Many client sessions over one transport: [`Demux`] owns one [`PacketIo`] (one UDP
//! socket, one DPDK queue) and hands out [`DemuxIo`] handles, one per session, each a
//! `PacketIo` that a `dataplane::client::Client` can own.
//!
//! - Receive: [`Demux::pump`] takes one burst from the transport, decodes every reply —
//!   a single `ClientReply` or each entry of a `ClientReplyBatch` (docs/wire-format.md) —
//!   and hands it out tagged with the session it names (group, client id), for the caller
//!   to give to that session's `Client::on_reply`. A loop over many sessions so costs one
//!   receive call per iteration, not one per session. Replies for no registered session
//!   (late replies to an abandoned session) and datagrams that are not replies are
//!   counted and dropped. A handle's own `recv_burst` returns nothing.
//! - Transmit: a session's single requests are not sent at once. Requests to the same
//!   replica endpoint and group are collected (up to [`MAX_OPEN_BATCHES`] destinations at a
//!   time, each datagram at most `batch_bytes`) and [`Demux::flush`] — once per loop
//!   iteration — sends each destination's requests as one datagram: a `ClientRequestBatch`
//!   when there are several, the single request otherwise. With `batch_bytes` 0 every
//!   request goes out on its own, as the session wrote it.
//!
//! Single-threaded (`Rc<RefCell<..>>`), like the loop that drives it.

use dataplane::io::RxBuf;
use dataplane::io::{Datagram, Endpoint, PacketIo, TxError};
use paxos_core::wire::{decode, decode_borrowed, BatchBuilder, ClientReply, Envelope, Route};
use paxos_core::ReplicaId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Datagrams taken from the transport per pump.
pub const PUMP_BURST: usize = 32;
/// Destinations (replica endpoint, group) with requests collected at one time; a request
/// to yet another destination first sends the open batches.
pub const MAX_OPEN_BATCHES: usize = 16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Replies handed out to a session.
    pub delivered: u64,
    /// Replies for no registered session, and datagrams that are not well-formed replies.
    pub unmatched: u64,
    /// Reply datagrams received that carried a batch (kind 19).
    pub reply_batches: u64,
    /// Requests the sessions sent, and the datagrams they left in.
    pub requests: u64,
    pub request_datagrams: u64,
}

/// One reply, decoded, for the session registered as `inbox`.
#[derive(Clone, Debug)]
pub struct Delivered<B> {
    /// The session's handle index ([`DemuxIo::index`]).
    pub inbox: usize,
    /// The group the reply is from (header) and the replica that sent it.
    pub group: u16,
    pub from: ReplicaId,
    pub reply: ClientReply<B>,
}

/// The requests collected for one destination.
struct OpenBatch {
    to: Endpoint,
    route: Route,
    builder: BatchBuilder,
}

struct Inner<Io: PacketIo> {
    io: Io,
    /// Keyed by values from the network: a keyed hasher (see `kv::KvHasher`).
    sessions: HashMap<(u16, u64), usize, crate::kv::KvHasher>,
    /// Which handle indexes are in use (a dropped handle's index is reused).
    live: Vec<bool>,
    free: Vec<usize>,
    rx: Vec<Datagram<Io::Buf>>,
    /// 0: no batching.
    batch_bytes: usize,
    /// `MAX_OPEN_BATCHES` builders (when batching); the first `open` are in use.
    batches: Vec<OpenBatch>,
    open: usize,
    /// A session's request as it wrote it, before it joins a batch.
    scratch: Vec<u8>,
    stats: DemuxStats,
}

impl<Io: PacketIo> Inner<Io> {
    /// Sends the requests collected for open destination `i` and clears them.
    fn send_batch(&mut self, i: usize) {
        let Inner { io, batches, stats, .. } = self;
        let Some(b) = batches.get_mut(i) else { return };
        if b.builder.is_empty() {
            return;
        }
        let bytes = b.builder.finish(b.route);
        // A refused send is counted by the transport; the sessions' timeouts resend.
        let _ = io.send_with(&b.to, bytes.len(), |buf| {
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]); // `buf` is bytes.len() long
        });
        stats.request_datagrams += 1;
        b.builder.clear();
    }

    fn send_all(&mut self) {
        for i in 0..self.open {
            self.send_batch(i);
        }
        self.open = 0;
    }

    /// Adds the request in `scratch` (a single ClientRequest datagram) to the batch for
    /// `to` and its route. Returns false if it is not a request that can join one.
    fn collect(&mut self, to: &Endpoint) -> bool {
        // Taken out (no allocation) while the batches are worked on.
        let scratch = std::mem::take(&mut self.scratch);
        let joined = self.join(to, &scratch);
        self.scratch = scratch;
        joined
    }

    fn join(&mut self, to: &Endpoint, datagram: &[u8]) -> bool {
        let Ok((h, Envelope::Request(req))) = decode_borrowed(datagram) else {
            return false;
        };
        let route = h.route();
        let found = self.batches[..self.open].iter().position(|b| b.to == *to && b.route == route);
        let i = match found {
            Some(i) => i,
            None => {
                if self.open == self.batches.len() {
                    self.send_all();
                }
                let i = self.open;
                self.open += 1;
                self.batches[i].to = *to;
                self.batches[i].route = route;
                i
            }
        };
        if self.batches[i].builder.push_request(&req) {
            return true;
        }
        // Full: send this destination's datagram and start the next one.
        self.send_batch(i);
        self.batches[i].builder.push_request(&req)
    }
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
    /// `batch_bytes`: largest request datagram the demux builds by coalescing (at most the
    /// transport's `max_payload`; the replicas' `max_message_bytes` is the natural value);
    /// 0 sends every request on its own.
    pub fn new(io: Io, batch_bytes: usize) -> Demux<Io> {
        let batch_bytes = batch_bytes.min(io.max_payload());
        let placeholder = Endpoint::udp(std::net::Ipv4Addr::UNSPECIFIED, 0);
        let route = Route {
            group: paxos_core::GroupId(0),
            from: paxos_core::wire::CLIENT,
            to: paxos_core::wire::CLIENT,
        };
        let batches = if batch_bytes == 0 { 0 } else { MAX_OPEN_BATCHES };
        Demux {
            inner: Rc::new(RefCell::new(Inner {
                sessions: HashMap::default(),
                live: Vec::new(),
                free: Vec::new(),
                rx: Vec::with_capacity(PUMP_BURST),
                batch_bytes,
                batches: (0..batches)
                    .map(|_| OpenBatch {
                        to: placeholder,
                        route,
                        builder: BatchBuilder::requests(batch_bytes),
                    })
                    .collect(),
                open: 0,
                scratch: Vec::with_capacity(io.max_payload()),
                stats: DemuxStats::default(),
                io,
            })),
        }
    }

    /// A handle for the session `(group, client)`. Panics if that session is already
    /// registered (a session id must be unique).
    pub fn register(&self, group: u16, client: u64) -> DemuxIo<Io> {
        let mut s = self.inner.borrow_mut();
        let index = match s.free.pop() {
            Some(i) => {
                s.live[i] = true;
                i
            }
            None => {
                s.live.push(true);
                s.live.len() - 1
            }
        };
        let prev = s.sessions.insert((group, client), index);
        assert!(prev.is_none(), "demux: session ({group}, {client}) registered twice");
        DemuxIo { demux: self.clone(), index, key: (group, client) }
    }

    /// One receive burst from the transport; every reply in it for a registered session is
    /// appended to `out`. Returns the datagrams received.
    pub fn pump(&self, out: &mut Vec<Delivered<Io::Buf>>) -> usize {
        let mut guard = self.inner.borrow_mut();
        let s = &mut *guard;
        let mut rx = std::mem::take(&mut s.rx);
        rx.clear();
        let n = s.io.recv_burst(&mut rx, PUMP_BURST);
        for dg in rx.drain(..) {
            let data = &dg.data;
            match decode(data.as_ref(), |r| data.slice(r)) {
                Ok((h, Envelope::Reply(reply))) => {
                    s.file(h.group.0, h.from, reply, out);
                }
                Ok((h, Envelope::ReplyBatch(batch))) => {
                    s.stats.reply_batches += 1;
                    for reply in batch.replies() {
                        let reply = reply.map_body(|r| batch.entries.slice(r));
                        s.file(h.group.0, h.from, reply, out);
                    }
                }
                _ => s.stats.unmatched += 1,
            }
        }
        s.rx = rx;
        n
    }

    /// Sends the requests collected since the last flush, then pushes everything queued
    /// to the wire. Call once per loop iteration.
    pub fn flush(&self) {
        let mut s = self.inner.borrow_mut();
        s.send_all();
        s.io.flush();
    }

    pub fn stats(&self) -> DemuxStats {
        self.inner.borrow().stats
    }

    /// Runs `f` on the shared transport (e.g. to read its counters).
    pub fn with_io<R>(&self, f: impl FnOnce(&mut Io) -> R) -> R {
        f(&mut self.inner.borrow_mut().io)
    }
}

impl<Io: PacketIo> Inner<Io> {
    fn file(
        &mut self,
        group: u16,
        from: ReplicaId,
        reply: ClientReply<Io::Buf>,
        out: &mut Vec<Delivered<Io::Buf>>,
    ) {
        match self.sessions.get(&(group, reply.client.0)) {
            Some(&inbox) => {
                self.stats.delivered += 1;
                out.push(Delivered { inbox, group, from, reply });
            }
            None => self.stats.unmatched += 1,
        }
    }
}

/// One session's view of the shared transport. Dropping it unregisters the session.
pub struct DemuxIo<Io: PacketIo> {
    demux: Demux<Io>,
    index: usize,
    key: (u16, u64),
}

impl<Io: PacketIo> DemuxIo<Io> {
    /// The index [`Demux::pump`] tags this session's replies with.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl<Io: PacketIo> Drop for DemuxIo<Io> {
    fn drop(&mut self) {
        let mut s = self.demux.inner.borrow_mut();
        s.sessions.remove(&self.key);
        s.live[self.index] = false;
        s.free.push(self.index);
    }
}

impl<Io: PacketIo> PacketIo for DemuxIo<Io> {
    type Buf = Io::Buf;
    type Builder = Io::Builder;

    fn value_builder(&mut self) -> Io::Builder {
        self.demux.inner.borrow_mut().io.value_builder()
    }

    /// Nothing: [`Demux::pump`] hands replies out.
    fn recv_burst(&mut self, _out: &mut Vec<Datagram<Io::Buf>>, _max: usize) -> usize {
        0
    }

    /// A request joins its destination's batch (sent by [`Demux::flush`]); anything else
    /// (and everything when batching is off) goes straight to the transport.
    fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        to: &Endpoint,
        len: usize,
        fill: F,
    ) -> Result<(), TxError> {
        let mut guard = self.demux.inner.borrow_mut();
        let s = &mut *guard;
        s.stats.requests += 1;
        if s.batch_bytes == 0 || len > s.batch_bytes {
            s.stats.request_datagrams += 1;
            return s.io.send_with(to, len, fill);
        }
        s.scratch.clear();
        s.scratch.resize(len, 0);
        fill(&mut s.scratch);
        if s.collect(to) {
            return Ok(());
        }
        let Inner { io, scratch, stats, .. } = s;
        stats.request_datagrams += 1;
        io.send_with(to, len, |buf| {
            let n = buf.len().min(scratch.len());
            buf[..n].copy_from_slice(&scratch[..n]);
        })
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
    use paxos_core::wire::{encode_request, request_encoded_len, ClientRequest, CLIENT};
    use paxos_core::{ClientId, GroupId, RequestSeq};
    use std::sync::Arc;

    fn reply(client: u64, seq: u64) -> ClientReply<&'static [u8]> {
        ClientReply {
            client: ClientId(client),
            seq: RequestSeq(seq),
            status: 0,
            leader_hint: None,
            body: &b"x"[..],
        }
    }

    #[test]
    fn hands_replies_to_sessions_single_and_batched() {
        let net = MemNetwork::new();
        let mut server = net.attach_next(Arc::new(Counters::default()));
        let demux = Demux::new(net.attach_next(Arc::new(Counters::default())), 1472);
        let a = demux.register(0, 7);
        let b = demux.register(1, 7);
        let to = a.local();
        let mut send = |group: u16, replies: &[ClientReply<&'static [u8]>]| {
            let route = Route { group: GroupId(group), from: ReplicaId(2), to: CLIENT };
            let mut batch = BatchBuilder::replies(1472);
            for r in replies {
                assert!(batch.push_reply(r));
            }
            let bytes = batch.finish(route);
            server.send_with(&to, bytes.len(), |buf| buf.copy_from_slice(bytes)).unwrap();
            server.flush();
        };
        send(0, &[reply(7, 1)]);
        send(1, &[reply(7, 2), reply(7, 3), reply(8, 1)]); // a batch; client 8 unknown
        let mut out = Vec::new();
        assert_eq!(demux.pump(&mut out), 2);
        let got: Vec<(usize, u16, u64)> =
            out.iter().map(|d| (d.inbox, d.group, d.reply.seq.0)).collect();
        assert_eq!(got, [(a.index(), 0, 1), (b.index(), 1, 2), (b.index(), 1, 3)]);
        assert!(out.iter().all(|d| d.from == ReplicaId(2) && &d.reply.body[..] == b"x"));
        let st = demux.stats();
        assert_eq!((st.delivered, st.unmatched, st.reply_batches), (3, 1, 1));
        // A dropped session's index is reused; its replies are unmatched meanwhile.
        let a_index = a.index();
        drop(a);
        send(0, &[reply(7, 4)]);
        out.clear();
        demux.pump(&mut out);
        assert!(out.is_empty());
        assert_eq!(demux.stats().unmatched, 2);
        let c = demux.register(0, 9);
        assert_eq!(c.index(), a_index, "the freed index is reused");
    }

    /// Requests written one by one leave as one datagram per destination: a batch for
    /// several, the single kind for one, nothing before `flush`.
    #[test]
    fn coalesces_requests_per_destination() {
        let net = MemNetwork::new();
        let mut r1 = net.attach_next(Arc::new(Counters::default()));
        let mut r2 = net.attach_next(Arc::new(Counters::default()));
        let demux = Demux::new(net.attach_next(Arc::new(Counters::default())), 1472);
        let mut sessions: Vec<DemuxIo<_>> = (0..5).map(|c| demux.register(0, c)).collect();
        let (to1, to2) = (r1.local(), r2.local());
        for (c, s) in sessions.iter_mut().enumerate() {
            let (to, id) = if c < 4 { (to1, 1) } else { (to2, 2) };
            let req = ClientRequest {
                client: ClientId(c as u64),
                seq: RequestSeq(1),
                command: &b"put k v"[..],
            };
            let route = Route { group: GroupId(0), from: CLIENT, to: ReplicaId(id) };
            s.send_with(&to, request_encoded_len(&req), |buf| {
                encode_request(route, &req, buf).unwrap();
            })
            .unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(r1.recv_burst(&mut got, 32), 0, "held until flush");
        demux.flush();
        assert_eq!(r1.recv_burst(&mut got, 32), 1);
        let Ok((h, Envelope::RequestBatch(batch))) = decode_borrowed(&got[0].data) else {
            panic!("not a batch: {:?}", decode_borrowed(&got[0].data));
        };
        assert_eq!(h.to, ReplicaId(1));
        let clients: Vec<u64> = batch.requests().map(|r| r.client.0).collect();
        assert_eq!(clients, [0, 1, 2, 3]);
        got.clear();
        assert_eq!(r2.recv_burst(&mut got, 32), 1);
        assert!(matches!(decode_borrowed(&got[0].data), Ok((_, Envelope::Request(_)))));
        let st = demux.stats();
        assert_eq!((st.requests, st.request_datagrams), (5, 2));
    }

    /// A full datagram is sent and the next one started; batching off sends each at once.
    #[test]
    fn batches_stay_within_the_limit() {
        for batch_bytes in [0, 300] {
            let net = MemNetwork::new();
            let mut r1 = net.attach_next(Arc::new(Counters::default()));
            let demux = Demux::new(net.attach_next(Arc::new(Counters::default())), batch_bytes);
            let mut s = demux.register(0, 1);
            let to = r1.local();
            for seq in 0..20 {
                let req = ClientRequest {
                    client: ClientId(1),
                    seq: RequestSeq(seq),
                    command: &[7u8; 40][..],
                };
                let route = Route { group: GroupId(0), from: CLIENT, to: ReplicaId(0) };
                s.send_with(&to, request_encoded_len(&req), |buf| {
                    encode_request(route, &req, buf).unwrap();
                })
                .unwrap();
            }
            demux.flush();
            let mut got = Vec::new();
            r1.recv_burst(&mut got, 64);
            let mut seqs = Vec::new();
            for dg in &got {
                assert!(dg.data.len() <= if batch_bytes == 0 { 72 } else { 300 });
                match decode_borrowed(&dg.data).unwrap().1 {
                    Envelope::Request(r) => seqs.push(r.seq.0),
                    Envelope::RequestBatch(b) => seqs.extend(b.requests().map(|r| r.seq.0)),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(seqs, (0..20).collect::<Vec<_>>(), "every request once, in order");
            let expected = if batch_bytes == 0 { 20 } else { 5 }; // 16 + 4 x 60 = 256 bytes
            assert_eq!(got.len(), expected, "batch_bytes {batch_bytes}");
        }
    }
}
