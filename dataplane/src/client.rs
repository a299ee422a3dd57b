//! A small client over any [`PacketIo`], for tests and benches: sends each request to the
//! replica it believes leads, follows `NOT_LEADER` hints, retries on timeout and backs off
//! on `BUSY`, and matches replies by `(client, seq)`. It sends single requests and accepts
//! replies singly or in batches (kind 19: a replica coalesces the replies of one poll). Up to `max_outstanding` requests may
//! be in flight (a closed loop with a window). Driven like a node: call [`Client::poll`]
//! with a monotonic clock.
//!
//! A retried request may be applied twice (the first copy may have been chosen after all);
//! exactly-once needs the application's session table. Replies to requests no longer
//! pending (duplicates, late answers) are counted in [`ClientStats::stale_replies`].

use crate::app::status;
use crate::io::{Datagram, PacketIo, RxBuf};
use crate::peers::PeerTable;
use paxos_core::wire::{
    decode, encode_request, peek_header, request_encoded_len, ClientReply, ClientRequest, Envelope,
    Kind, Route, CLIENT,
};
use paxos_core::{ClientId, GroupId, ReplicaId, RequestSeq};

/// Upper bound on `ClientConfig::max_outstanding`.
pub const CLIENT_MAX_OUTSTANDING: usize = 1024;
/// Datagrams taken from the transport per poll.
pub const CLIENT_RX_BURST: usize = 32;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub group: GroupId,
    pub id: ClientId,
    /// The group's replicas.
    pub replicas: PeerTable,
    /// Resend a request unanswered this long, to the next replica.
    pub timeout_ns: u64,
    /// Wait this long before retrying after `BUSY` or a `NOT_LEADER` without a usable hint.
    pub backoff_ns: u64,
    /// Most requests in flight (at most [`CLIENT_MAX_OUTSTANDING`]).
    pub max_outstanding: usize,
}

impl ClientConfig {
    /// One request at a time, 50 ms timeout, 1 ms backoff.
    pub fn new(group: GroupId, id: ClientId, replicas: PeerTable) -> ClientConfig {
        ClientConfig {
            group,
            id,
            replicas,
            timeout_ns: 50_000_000,
            backoff_ns: 1_000_000,
            max_outstanding: 1,
        }
    }
}

/// A finished request: `status::OK` with the application's answer, or a status that
/// retrying cannot fix (`TOO_LARGE`, `MALFORMED`, application errors).
#[derive(Clone, Debug)]
pub struct Completion<B> {
    pub seq: RequestSeq,
    pub status: u8,
    pub body: B,
    /// The replica that answered.
    pub replica: ReplicaId,
    /// From the first send to the answer.
    pub latency_ns: u64,
    /// Sends (1 = answered at the first try).
    pub attempts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// `max_outstanding` requests are in flight.
    Full,
    /// The request does not fit one datagram.
    TooLarge,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub sent: u64,
    pub retries: u64,
    pub timeouts: u64,
    pub redirects: u64,
    pub busy: u64,
    pub completed: u64,
    pub stale_replies: u64,
    /// Datagrams that were not a well-formed reply for this client and group.
    pub ignored: u64,
    /// Sends the transport refused.
    pub send_errors: u64,
}

/// One request slot; its command buffer is reused.
#[derive(Debug, Default)]
struct Pending {
    active: bool,
    seq: u64,
    command: Vec<u8>,
    target: ReplicaId,
    first_sent_ns: u64,
    last_sent_ns: u64,
    /// Resend at this time instead of on timeout (after BUSY / an unusable redirect).
    retry_at_ns: Option<u64>,
    attempts: u32,
}

pub struct Client<Io: PacketIo> {
    io: Io,
    cfg: ClientConfig,
    leader: ReplicaId,
    /// A replica that recently timed out: its name in a hint is not trusted until then.
    suspect: Option<(ReplicaId, u64)>,
    next_seq: u64,
    pending: Vec<Pending>,
    active: usize,
    rx: Vec<Datagram<Io::Buf>>,
    stats: ClientStats,
}

impl<Io: PacketIo> Client<Io> {
    /// # Panics
    /// If `cfg.replicas` is empty or `max_outstanding` is 0 or above the bound.
    pub fn new(io: Io, cfg: ClientConfig) -> Client<Io> {
        assert!(!cfg.replicas.is_empty(), "client: no replicas");
        assert!(
            (1..=CLIENT_MAX_OUTSTANDING).contains(&cfg.max_outstanding),
            "client: max_outstanding must be 1..={CLIENT_MAX_OUTSTANDING}"
        );
        let leader = cfg.replicas.ids().next().unwrap_or_default();
        let pending = (0..cfg.max_outstanding).map(|_| Pending::default()).collect();
        Client {
            io,
            leader,
            suspect: None,
            next_seq: 1,
            pending,
            active: 0,
            rx: Vec::with_capacity(CLIENT_RX_BURST),
            stats: ClientStats::default(),
            cfg,
        }
    }

    /// Sends a new request now. Its completion comes out of a later `poll`.
    pub fn submit(&mut self, command: &[u8], now_ns: u64) -> Result<RequestSeq, SubmitError> {
        let probe = ClientRequest { client: self.cfg.id, seq: RequestSeq(0), command };
        if request_encoded_len(&probe) > self.io.max_payload() {
            return Err(SubmitError::TooLarge);
        }
        let i = self.pending.iter().position(|p| !p.active).ok_or(SubmitError::Full)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let p = &mut self.pending[i];
        p.active = true;
        p.seq = seq;
        p.command.clear();
        p.command.extend_from_slice(command);
        p.first_sent_ns = now_ns;
        p.attempts = 0;
        p.retry_at_ns = None;
        self.active += 1;
        self.send(i, now_ns);
        Ok(RequestSeq(seq))
    }

    /// Receives replies, resends what timed out or waited out a backoff, and appends
    /// finished requests to `done`. Returns the datagrams received.
    pub fn poll(&mut self, now_ns: u64, done: &mut Vec<Completion<Io::Buf>>) -> usize {
        let mut rx = core::mem::take(&mut self.rx);
        rx.clear();
        let n = self.io.recv_burst(&mut rx, CLIENT_RX_BURST);
        for dg in rx.drain(..) {
            self.on_datagram(&dg, now_ns, done);
        }
        self.rx = rx;
        for i in 0..self.pending.len() {
            let p = &self.pending[i];
            if !p.active {
                continue;
            }
            if let Some(at) = p.retry_at_ns {
                if now_ns >= at {
                    self.stats.retries += 1;
                    self.send(i, now_ns);
                }
            } else if now_ns.saturating_sub(p.last_sent_ns) >= self.cfg.timeout_ns {
                self.stats.timeouts += 1;
                let dead = p.target;
                self.suspect = Some((dead, now_ns.saturating_add(self.cfg.timeout_ns)));
                if self.leader == dead {
                    self.leader = self.next_replica(dead, now_ns);
                }
                self.stats.retries += 1;
                self.send(i, now_ns);
            }
        }
        self.io.flush();
        n
    }

    fn on_datagram(
        &mut self,
        dg: &Datagram<Io::Buf>,
        now_ns: u64,
        done: &mut Vec<Completion<Io::Buf>>,
    ) {
        let bytes = dg.data.as_ref();
        let ok_header = matches!(peek_header(bytes), Ok(h) if h.group == self.cfg.group
            && matches!(h.kind, Kind::ClientReply | Kind::ClientReplyBatch));
        if !ok_header {
            self.stats.ignored += 1;
            return;
        }
        match decode(bytes, |r| dg.data.slice(r)) {
            Ok((h, Envelope::Reply(reply))) => self.on_reply(h.from, reply, now_ns, done),
            Ok((h, Envelope::ReplyBatch(batch))) => {
                for reply in batch.replies() {
                    let reply = reply.map_body(|r| batch.entries.slice(r));
                    self.on_reply(h.from, reply, now_ns, done);
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// Handles one reply from replica `from` (a single reply, or one entry of a reply
    /// batch): for callers that receive and decode datagrams themselves (a demultiplexer
    /// serving many clients). Replies for another client id are counted as ignored.
    pub fn on_reply(
        &mut self,
        from: ReplicaId,
        reply: ClientReply<Io::Buf>,
        now_ns: u64,
        done: &mut Vec<Completion<Io::Buf>>,
    ) {
        if reply.client != self.cfg.id {
            self.stats.ignored += 1;
            return;
        }
        let Some(i) = self.pending.iter().position(|p| p.active && p.seq == reply.seq.0) else {
            self.stats.stale_replies += 1;
            return;
        };
        match reply.status {
            status::NOT_LEADER => {
                self.stats.redirects += 1;
                let hint = reply.leader_hint.filter(|h| {
                    *h != from
                        && self.cfg.replicas.get(*h).is_some()
                        && !self.is_suspect(*h, now_ns)
                });
                match hint {
                    Some(h) => {
                        self.leader = h;
                        self.send(i, now_ns);
                    }
                    None => {
                        // Nobody known to lead (an election is on): try the next one soon.
                        if self.leader == from {
                            self.leader = self.next_replica(from, now_ns);
                        }
                        self.pending[i].retry_at_ns =
                            Some(now_ns.saturating_add(self.cfg.backoff_ns));
                    }
                }
            }
            status::BUSY => {
                self.stats.busy += 1;
                self.pending[i].retry_at_ns = Some(now_ns.saturating_add(self.cfg.backoff_ns));
            }
            st => {
                // OK, or final: the replica that answered OK leads.
                if st == status::OK {
                    self.leader = from;
                }
                let p = &mut self.pending[i];
                p.active = false;
                self.active -= 1;
                self.stats.completed += 1;
                done.push(Completion {
                    seq: reply.seq,
                    status: st,
                    body: reply.body,
                    replica: from,
                    latency_ns: now_ns.saturating_sub(p.first_sent_ns),
                    attempts: p.attempts,
                });
            }
        }
    }

    fn is_suspect(&self, id: ReplicaId, now_ns: u64) -> bool {
        matches!(self.suspect, Some((s, until)) if s == id && now_ns < until)
    }

    /// The replica after `id`, skipping a suspect one when there is another.
    fn next_replica(&self, id: ReplicaId, now_ns: u64) -> ReplicaId {
        let next = self.cfg.replicas.next_after(id).unwrap_or(id);
        if self.is_suspect(next, now_ns) && self.cfg.replicas.len() > 2 {
            self.cfg.replicas.next_after(next).unwrap_or(next)
        } else {
            next
        }
    }

    /// Sends pending request `i` to the believed leader.
    fn send(&mut self, i: usize, now_ns: u64) {
        let target = self.leader;
        let p = &mut self.pending[i];
        p.target = target;
        p.last_sent_ns = now_ns;
        p.retry_at_ns = None;
        p.attempts += 1;
        let Some(ep) = self.cfg.replicas.get(target) else { return };
        let req =
            ClientRequest { client: self.cfg.id, seq: RequestSeq(p.seq), command: &p.command[..] };
        let route = Route { group: self.cfg.group, from: CLIENT, to: target };
        let len = request_encoded_len(&req);
        let res = self.io.send_with(ep, len, |buf| {
            // Cannot fail: `buf` is `len` bytes and the command fit at submit.
            let _ = encode_request(route, &req, buf);
        });
        self.stats.sent += 1;
        if res.is_err() {
            self.stats.send_errors += 1;
        }
    }

    /// When the next resend is due (a timeout or the end of a backoff), if any request is
    /// in flight: a caller with many clients polls only those whose time has come (replies
    /// are found by polling anyway).
    pub fn next_timer_ns(&self) -> Option<u64> {
        self.pending
            .iter()
            .filter(|p| p.active)
            .map(|p| p.retry_at_ns.unwrap_or(p.last_sent_ns.saturating_add(self.cfg.timeout_ns)))
            .min()
    }

    /// Requests in flight.
    pub fn outstanding(&self) -> usize {
        self.active
    }
    /// The replica requests currently go to.
    pub fn leader(&self) -> ReplicaId {
        self.leader
    }
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }
    pub fn io(&self) -> &Io {
        &self.io
    }
    pub fn io_mut(&mut self) -> &mut Io {
        &mut self.io
    }
}
