//! The node loop: one [`GroupDriver`] owns one Paxos group's [`Node`] on one thread (one
//! lcore) and moves it between a [`PacketIo`] transport and an [`Application`]. The same
//! code runs over DPDK, kernel UDP and the in-memory test network.
//!
//! # One loop iteration ([`GroupDriver::poll`])
//! ```text
//! rx burst (RX_BURST)         for each datagram: filter -> peek_header -> group/to check
//!                               -> decode (values are zero-copy RxBuf slices)
//!                               Protocol -> node.step; Request (or each entry of a
//!                               request batch) -> wrap + node.propose (or an immediate
//!                               NOT_LEADER / BUSY / TOO_LARGE reply);
//!                               Reply -> dropped and counted
//! node.flush()                one burst's requests share one slot
//! ticks                       one node.tick() per tick_ns elapsed (<= MAX_TICKS_PER_POLL)
//! output rounds               take_messages (what depends on nothing unsynced: the leader's
//!                               Accepts leave before its own write is synced), then one
//!                               sync for every write of the round (group commit), then the
//!                               replies it released: to self -> node.step, others ->
//!                               encoded straight into the transmit buffer; repeated while
//!                               stepping ourselves made more (bounded)
//! decided                     each command of each slot -> app.apply -> the proposer replies;
//!                               then the poll's replies go out, coalesced per client
//!                               endpoint (one datagram per endpoint, batch kind 19); the
//!                               app's durable applied point -> node.set_applied (trim)
//! events                      snapshot wanted -> offer the app's; snapshot fetched ->
//!                               install it; rejoined, leader changes -> log and count
//! io.flush()
//! ```
//! `poll` returns the work done (datagrams received and sent, commands applied); the caller
//! applies its [`IdlePolicy`] when it is 0 ([`GroupDriver::run`] does exactly that).
//!
//! # No allocation, no locks per packet
//! Every buffer the loop fills (received datagrams, outgoing messages, decided slots,
//! events, the log-command and reply scratch) is owned by the driver and reused; values
//! are refcounted slices of receive buffers; counters are single-writer atomics. Every
//! loop is bounded by a named constant.
//!
//! # Durability
//! The core holds every message that depends on an unsynced write until `Node::sync`
//! succeeds (see `paxos_core::storage`), so the loop cannot send a vote early; it only
//! chooses when to sync: once per output round, after the free messages left. A failed sync
//! stops the driver for good ([`GroupDriver::failed`]); the caller must stop the node.
//!
//! Where the sync runs ([`SyncOn`], `DriverConfig::sync_on`): `Lcore` (the default) blocks
//! the loop in `Node::sync`, i.e. in fdatasync. `Thread` calls `Node::begin_sync` instead,
//! which never blocks (the storage runs the fdatasync elsewhere, e.g.
//! `AcceptorLog::start_sync_thread`), and every poll starts with `Node::poll_sync`, which
//! releases what completed syncs made safe; [`GroupDriver::awaiting`] stays true while a
//! sync is in flight so that an adaptive idle policy keeps polling for the completion. A
//! storage without an asynchronous sync completes `begin_sync` at once (blocking), so
//! `Thread` is correct with any storage.

use crate::app::{status, Application, LogCommand};
use crate::counters::Counters;
use crate::fault::{NoFaults, PacketFilter, Verdict};
use crate::idle::{IdlePolicy, Idler};
use crate::io::{Datagram, Endpoint, PacketIo, RxBuf};
use crate::peers::{PeerError, PeerTable};
use core::fmt;
use paxos_core::wire::{
    decode, encode, encode_reply, encoded_len, peek_header, reply_encoded_len, BatchBuilder,
    ClientReply, ClientRequest, Envelope, Kind, Route, WireError, CLIENT,
};
use paxos_core::{
    payload, ClientId, Config, ConfigError, Decided, Event, GroupId, MemStorage, Message, Node,
    Outgoing, ProposeError, ReplicaId, RequestSeq, Slot, Storage, StorageError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Datagrams taken from the transport per poll (DPDK's customary burst).
pub const RX_BURST: usize = 32;
/// Most `Node::tick` calls per poll; a loop that fell further behind skips the rest
/// (counted in `ticks_skipped`) instead of stalling on catch-up.
pub const MAX_TICKS_PER_POLL: u32 = 16;
/// Most sync/take_messages rounds per poll. A round runs again only when delivering
/// messages to ourselves produced more; what is left waits for the next poll.
pub const MAX_OUTPUT_ROUNDS: usize = 16;
/// Client endpoints whose replies one poll coalesces at a time; a reply to yet another
/// endpoint first sends the open batches.
pub const REPLY_BATCH_ENDPOINTS: usize = 8;
/// Default tick: 1 ms (the election timeout is 10-20 ticks with the default `Config`).
pub const DEFAULT_TICK_NS: u64 = 1_000_000;
/// Storage upkeep (`Storage::maintain`: dead log segments, the next segment's
/// preallocation) runs after a poll without work, at most this often.
pub const MAINTAIN_EVERY_NS: u64 = 10_000_000;

/// Where the fdatasync of a poll's writes runs (see the module docs, "Durability").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncOn {
    /// On the polling thread: the loop blocks in `Node::sync`.
    #[default]
    Lcore,
    /// Started with `Node::begin_sync` and completed by the storage (its own thread); the
    /// loop never blocks and releases replies as `Node::poll_sync` reports completions.
    Thread,
}

/// Everything a driver needs besides its transport and application.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub group: GroupId,
    /// This node's member id in `paxos`.
    pub id: ReplicaId,
    pub paxos: Config,
    /// Every member's endpoint (this node's too).
    pub peers: PeerTable,
    /// Length of one `Node::tick`, in nanoseconds of the clock passed to `poll`.
    pub tick_ns: u64,
    /// Seeds the election-timeout jitter; the node mixes in its id.
    pub seed: u64,
    /// Used by [`GroupDriver::run`] after a poll without work.
    pub idle: IdlePolicy,
    /// Blocking sync on the loop's thread (default) or asynchronous sync.
    pub sync_on: SyncOn,
}

impl DriverConfig {
    /// Defaults: `DEFAULT_TICK_NS`, seed 0, `IdlePolicy::Spin`, `SyncOn::Lcore`.
    pub fn new(group: GroupId, id: ReplicaId, paxos: Config, peers: PeerTable) -> DriverConfig {
        DriverConfig {
            group,
            id,
            paxos,
            peers,
            tick_ns: DEFAULT_TICK_NS,
            seed: 0,
            idle: IdlePolicy::Spin,
            sync_on: SyncOn::Lcore,
        }
    }
}

/// Why a driver could not be built.
#[derive(Debug)]
pub enum DriverError {
    Config(ConfigError),
    Peers(PeerError),
    /// `tick_ns` is 0.
    ZeroTick,
    /// The configuration's `max_message_bytes` exceeds what the transport can send.
    MessageTooLarge {
        max_message_bytes: u32,
        max_payload: usize,
    },
    /// Setting up a transport failed (the local-group helpers).
    Io(std::io::Error),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Config(e) => write!(f, "config: {e}"),
            DriverError::Peers(e) => e.fmt(f),
            DriverError::ZeroTick => write!(f, "tick_ns: must be at least 1"),
            DriverError::MessageTooLarge { max_message_bytes, max_payload } => write!(
                f,
                "max_message_bytes {max_message_bytes} exceeds the transport's largest datagram ({max_payload} bytes)"
            ),
            DriverError::Io(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for DriverError {}

impl From<ConfigError> for DriverError {
    fn from(e: ConfigError) -> Self {
        DriverError::Config(e)
    }
}
impl From<PeerError> for DriverError {
    fn from(e: PeerError) -> Self {
        DriverError::Peers(e)
    }
}
impl From<std::io::Error> for DriverError {
    fn from(e: std::io::Error) -> Self {
        DriverError::Io(e)
    }
}

/// The transmit side: transport, fault filter, counters. Kept apart from the node so the
/// loop can step the node and send at the same time.
struct Link<Io, F> {
    io: Io,
    filter: F,
    counters: Arc<Counters>,
    group: GroupId,
    me: ReplicaId,
    /// Encoded datagram, only when the filter is active (it must see the bytes first).
    scratch: Vec<u8>,
    /// Replies of this poll not sent yet, one builder per client endpoint; the first
    /// `reply_open` are in use. Sent by `flush_replies`.
    replies: Vec<(Endpoint, BatchBuilder)>,
    reply_open: usize,
}

impl<Io: PacketIo, F: PacketFilter> Link<Io, F> {
    /// Encodes one datagram of `len` bytes with `enc` straight into the transport's buffer.
    /// Returns 1 if it was queued.
    fn transmit(
        &mut self,
        to: &Endpoint,
        len: usize,
        enc: impl FnOnce(&mut [u8]) -> Result<usize, WireError>,
    ) -> usize {
        if len > self.io.max_payload() {
            self.counters.tx_too_large.inc();
            return 0;
        }
        // Only the error is kept: writing the whole Result<usize, _> out of the closure and
        // copying it back cost a failed store-to-load forward per datagram.
        let mut failed: Option<WireError> = None;
        let queued = if self.filter.is_active() {
            self.scratch.clear();
            self.scratch.resize(len, 0);
            if let Err(e) = enc(&mut self.scratch) {
                self.encode_error(e);
                return 0;
            }
            if self.filter.on_tx(to, &self.scratch) == Verdict::Drop {
                self.counters.filter_tx_drops.inc();
                return 0;
            }
            let scratch = &self.scratch;
            self.io.send_with(to, len, |buf| {
                let n = buf.len().min(scratch.len());
                buf[..n].copy_from_slice(&scratch[..n]);
            })
        } else {
            self.io.send_with(to, len, |buf| failed = enc(buf).err())
        };
        if let Some(e) = failed {
            // The transport already holds the (garbage) datagram; the receiver will drop it.
            self.encode_error(e);
        }
        // Transmit errors are counted by the transport.
        usize::from(queued.is_ok())
    }

    fn encode_error(&self, e: WireError) {
        self.counters.encode_errors.inc();
        log::error!("group {} replica {}: encode failed: {e}", self.group.0, self.me.0);
    }

    fn send_message<P: AsRef<[u8]>>(
        &mut self,
        to_ep: &Endpoint,
        to: ReplicaId,
        msg: &Message<P>,
    ) -> usize {
        let route = Route { group: self.group, from: self.me, to };
        self.transmit(to_ep, encoded_len(msg), |buf| encode(route, msg, buf))
    }

    /// Queues a reply to the client at `to`; replies to one endpoint in one poll leave as
    /// one datagram (a batch when there are several) when `flush_replies` runs.
    fn send_reply(
        &mut self,
        to: &Endpoint,
        client: ClientId,
        seq: RequestSeq,
        mut status: u8,
        leader_hint: Option<ReplicaId>,
        mut body: &[u8],
    ) {
        let mut reply = ClientReply { client, seq, status, leader_hint, body };
        if reply_encoded_len(&reply) > self.io.max_payload() {
            self.counters.reply_too_large.inc();
            status = status::REPLY_TOO_LARGE;
            body = &[];
            reply = ClientReply { client, seq, status, leader_hint, body };
        }
        let open = self.replies[..self.reply_open].iter().position(|(ep, _)| ep == to);
        let i = match open {
            Some(i) => i,
            None => {
                if self.reply_open == self.replies.len() {
                    self.flush_replies();
                }
                let i = self.reply_open;
                self.reply_open += 1;
                self.replies[i].0 = *to;
                i
            }
        };
        if self.replies[i].1.push_reply(&reply) {
            return;
        }
        // Full: send what this endpoint has, then start its next datagram.
        self.send_reply_batch(i);
        if !self.replies[i].1.push_reply(&reply) {
            // Larger than a batch may be (max_message_bytes) but within max_payload.
            let route = Route { group: self.group, from: self.me, to: CLIENT };
            let sent = self
                .transmit(to, reply_encoded_len(&reply), |buf| encode_reply(route, &reply, buf));
            self.counters.client_replies.add(sent as u64);
        }
    }

    /// Sends the replies collected for open endpoint `i` and clears them.
    fn send_reply_batch(&mut self, i: usize) {
        // Taken out (no allocation) so that `transmit` may borrow the rest of `self`.
        let mut replies = core::mem::take(&mut self.replies);
        if let Some((to, builder)) = replies.get_mut(i) {
            self.send_built(to, builder);
        }
        self.replies = replies;
    }

    /// Sends every reply collected in this poll.
    fn flush_replies(&mut self) {
        let mut replies = core::mem::take(&mut self.replies);
        for (to, builder) in replies.iter_mut().take(self.reply_open) {
            self.send_built(to, builder);
        }
        self.replies = replies;
        self.reply_open = 0;
    }

    fn send_built(&mut self, to: &Endpoint, builder: &mut BatchBuilder) {
        let count = builder.count() as u64;
        if count == 0 {
            return;
        }
        let route = Route { group: self.group, from: self.me, to: CLIENT };
        let bytes = builder.finish(route);
        let sent = self.transmit(to, bytes.len(), |buf| {
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]); // `buf` is bytes.len() long
            Ok(n)
        });
        self.counters.client_replies.add(sent as u64 * count);
        if count > 1 {
            self.counters.client_reply_batches.add(sent as u64);
        }
        builder.clear();
    }
}

/// `peek_header`, kept out of line on purpose: inlined into `poll`, the compiler assembled
/// the 8-byte `Result<Header, _>` on the stack from 16-bit stores and read it back with a
/// wider load at another offset, a failed store-to-load forward (~15 cycles) per datagram.
/// Out of line it comes back in a register.
#[inline(never)]
fn peek_header_in_registers(bytes: &[u8]) -> Result<paxos_core::wire::Header, WireError> {
    peek_header(bytes)
}

/// The decoder's payload closure: zero-copy slices of `data`. Always inlined into the
/// decoder: out of line, each value came back through memory and was copied on with wider
/// loads than the stores that wrote it (a failed store-to-load forward per value).
#[inline(always)]
fn slicer<B: RxBuf>(data: &B) -> impl FnMut(core::ops::Range<usize>) -> B + '_ {
    #[inline(always)]
    move |r| data.slice(r)
}

/// One Paxos group's node loop. See the module docs.
pub struct GroupDriver<Io: PacketIo, A, F = NoFaults, S = MemStorage<<Io as PacketIo>::Buf>> {
    node: Node<Io::Buf, S, Io::Builder>,
    link: Link<Io, F>,
    app: A,
    peers: PeerTable,
    group: GroupId,
    me: ReplicaId,
    tick_ns: u64,
    /// When the next tick is due; `None` until the first poll.
    next_tick_ns: Option<u64>,
    idle: IdlePolicy,
    sync_on: SyncOn,
    rx: Vec<Datagram<Io::Buf>>,
    out: Vec<Outgoing<Io::Buf>>,
    decided: Vec<Decided<Io::Buf>>,
    events: Vec<Event>,
    /// A client command wrapped in its log header, before `propose` copies it.
    cmd: Vec<u8>,
    /// The application's answer to the command being applied.
    reply: Vec<u8>,
    /// The storage error that stopped this driver (a failed sync): nothing more is done.
    failed: Option<StorageError>,
    /// When storage upkeep last ran.
    last_maintain_ns: u64,
    /// The first slot this driver's node led from: commands with our id as proposer in
    /// earlier slots were proposed by an earlier incarnation (a restart replays them) and
    /// are not answered again. `None` until it first leads.
    replies_from: Option<Slot>,
}

impl<Io: PacketIo, A: Application> GroupDriver<Io, A> {
    /// A driver with in-memory acceptor storage and no fault injection.
    pub fn new(
        cfg: DriverConfig,
        io: Io,
        app: A,
        counters: Arc<Counters>,
    ) -> Result<Self, DriverError> {
        GroupDriver::with_parts(cfg, io, app, counters, NoFaults, MemStorage::default())
    }
}

impl<Io, A, F, S> GroupDriver<Io, A, F, S>
where
    Io: PacketIo,
    A: Application,
    F: PacketFilter,
    S: Storage<Io::Buf>,
{
    /// A driver with a fault filter and acceptor storage of the caller's choice (`storage`
    /// may hold state recovered from before a restart: the node resumes from it).
    pub fn with_parts(
        cfg: DriverConfig,
        mut io: Io,
        app: A,
        counters: Arc<Counters>,
        filter: F,
        storage: S,
    ) -> Result<Self, DriverError> {
        if cfg.tick_ns == 0 {
            return Err(DriverError::ZeroTick);
        }
        cfg.paxos.validate()?;
        for m in &cfg.paxos.members {
            if cfg.peers.get(m.id).is_none() {
                return Err(PeerError::Missing(m.id).into());
            }
        }
        if cfg.paxos.max_message_bytes as usize > io.max_payload() {
            return Err(DriverError::MessageTooLarge {
                max_message_bytes: cfg.paxos.max_message_bytes,
                max_payload: io.max_payload(),
            });
        }
        let window = cfg.paxos.window as usize;
        let batch_bytes = cfg.paxos.max_message_bytes as usize;
        let builder = io.value_builder();
        let node = Node::new(cfg.paxos, cfg.id, storage, builder, cfg.seed)?;
        let max_payload = io.max_payload();
        let scratch_len = if filter.is_active() { max_payload } else { 0 };
        Ok(GroupDriver {
            node,
            link: Link {
                io,
                filter,
                counters,
                group: cfg.group,
                me: cfg.id,
                scratch: Vec::with_capacity(scratch_len),
                replies: (0..REPLY_BATCH_ENDPOINTS)
                    .map(|_| {
                        (
                            Endpoint::udp(std::net::Ipv4Addr::UNSPECIFIED, 0),
                            BatchBuilder::replies(batch_bytes),
                        )
                    })
                    .collect(),
                reply_open: 0,
            },
            app,
            peers: cfg.peers,
            group: cfg.group,
            me: cfg.id,
            tick_ns: cfg.tick_ns,
            next_tick_ns: None,
            idle: cfg.idle,
            sync_on: cfg.sync_on,
            rx: Vec::with_capacity(RX_BURST),
            out: Vec::with_capacity(4 * window.max(16)),
            decided: Vec::with_capacity(window.max(16)),
            events: Vec::with_capacity(8),
            cmd: Vec::with_capacity(max_payload),
            reply: Vec::with_capacity(max_payload),
            failed: None,
            last_maintain_ns: 0,
            replies_from: None,
        })
    }

    /// The application was restored from a snapshot covering every slot below `upto` (held
    /// durably): the learner continues from there, and that much counts as applied.
    pub fn resume_from_snapshot(&mut self, upto: Slot) {
        self.node.snapshot_installed(upto);
        self.node.set_applied(upto);
    }

    /// The storage error that stopped this driver, if any. Once set, `poll` does nothing:
    /// the caller must stop the node (a replica that cannot make its votes durable must not
    /// go on).
    pub fn failed(&self) -> Option<&StorageError> {
        self.failed.as_ref()
    }

    /// One loop iteration at time `now_ns` (any monotonic clock in nanoseconds; tests pass a
    /// virtual one). Returns the work done: datagrams received and sent plus commands
    /// applied; 0 means the poll found nothing to do.
    pub fn poll(&mut self, now_ns: u64) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        if self.node.sync_in_flight() {
            // Release what the syncs that completed since the last poll made safe.
            if let Err(e) = self.node.poll_sync() {
                self.storage_failed(e);
                return 0;
            }
        }
        let mut work = self.receive();
        self.advance_clock(now_ns);
        work += self.drain_output();
        work += self.apply_decided();
        self.handle_events();
        self.link.io.flush();

        let c = &self.link.counters;
        let stats = self.node.stats();
        c.batches_proposed.set(stats.batches_proposed);
        c.commands_proposed.set(stats.commands_proposed);
        c.elections_started.set(stats.elections_started);
        c.step_downs.set(stats.step_downs);
        c.check_quorum_step_downs.set(stats.check_quorum_step_downs);
        c.prepares_ignored_live_leader.set(stats.prepares_ignored_live_leader);
        c.loop_iterations.inc();
        if work == 0 {
            c.idle_polls.inc();
            if now_ns.saturating_sub(self.last_maintain_ns) >= MAINTAIN_EVERY_NS {
                self.last_maintain_ns = now_ns;
                if let Err(e) = self.node.maintain_storage() {
                    self.storage_failed(e);
                }
            }
        }
        work
    }

    /// True while an answer is due shortly: this node leads and has slots in flight (their
    /// `Accepted` are one hop away), or a sync is in flight (`SyncOn::Thread`: its
    /// completion releases replies). Loops with the `adaptive` idle policy spin meanwhile.
    pub fn awaiting(&self) -> bool {
        self.node.in_flight() > 0 || self.node.sync_in_flight()
    }

    /// A sync started by `Node::begin_sync` has not completed (`SyncOn::Thread`).
    pub fn sync_in_flight(&self) -> bool {
        self.node.sync_in_flight()
    }

    pub fn sync_on(&self) -> SyncOn {
        self.sync_on
    }

    /// Blocks until the sync in flight completes (`Node::wait_sync`), if one is: for a loop
    /// whose last poll found no work, instead of polling for the completion. Its replies
    /// leave in the next poll.
    pub fn wait_sync(&mut self) {
        if self.failed.is_none() && self.node.sync_in_flight() {
            if let Err(e) = self.node.wait_sync() {
                self.storage_failed(e);
            }
        }
    }

    /// A failed sync (or storage upkeep): the driver stops for good.
    fn storage_failed(&mut self, e: StorageError) {
        // The core dropped everything that depended on the failed writes.
        self.link.counters.storage_errors.inc();
        log::error!(
            "group {} replica {}: {e}: stopping (nothing that depends on the failed write was sent)",
            self.group.0,
            self.me.0
        );
        self.failed = Some(e);
    }

    /// Polls on the wall clock until `stop` is set, applying the idle policy after every
    /// poll that found no work.
    pub fn run(&mut self, stop: &AtomicBool) {
        let start = Instant::now();
        let mut idler = Idler::new(self.idle);
        while !stop.load(Ordering::Relaxed) {
            let now_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let work = self.poll(now_ns);
            idler.after_poll(work, work == 0 && self.awaiting());
        }
    }

    /// One receive burst, dispatched; then the open batch is sealed so that the burst's
    /// requests share a slot. Returns the datagrams received.
    fn receive(&mut self) -> usize {
        let mut rx = core::mem::take(&mut self.rx);
        rx.clear();
        let n = self.link.io.recv_burst(&mut rx, RX_BURST);
        let mut proposed = false;
        for dg in rx.drain(..) {
            proposed |= self.on_datagram(dg);
        }
        self.rx = rx;
        if proposed {
            self.node.flush();
        }
        n
    }

    /// Returns true if a command was proposed.
    fn on_datagram(&mut self, dg: Datagram<Io::Buf>) -> bool {
        let c = &self.link.counters;
        let bytes = dg.data.as_ref();
        if self.link.filter.is_active() && self.link.filter.on_rx(&dg.src, bytes) == Verdict::Drop {
            c.filter_rx_drops.inc();
            return false;
        }
        let header = match peek_header_in_registers(bytes) {
            Ok(h) => h,
            Err(e) => {
                c.wire_drop(e);
                return false;
            }
        };
        if header.group != self.group {
            c.misdirected.inc();
            return false;
        }
        if matches!(header.kind, Kind::ClientReply | Kind::ClientReplyBatch) {
            c.unexpected_replies.inc();
            return false;
        }
        if header.to != self.me {
            c.misdirected.inc();
            return false;
        }
        let data = &dg.data;
        match decode(bytes, slicer(data)) {
            Err(e) => {
                c.wire_drop(e);
                false
            }
            // `header` is what decode validated too (same bytes).
            Ok((_, Envelope::Protocol(msg))) => {
                self.node.step(header.from, msg);
                false
            }
            Ok((_, Envelope::Request(req))) => self.on_request(&dg.src, &req),
            Ok((_, Envelope::RequestBatch(batch))) => {
                // Validated as a whole by `decode`: every entry is a request of its own.
                c.client_request_batches.inc();
                let mut proposed = false;
                for req in batch.requests() {
                    let req = req.map_command(|r| batch.entries.slice(r));
                    proposed |= self.on_request(&dg.src, &req);
                }
                proposed
            }
            Ok((_, Envelope::Reply(_) | Envelope::ReplyBatch(_))) => {
                c.unexpected_replies.inc();
                false
            }
        }
    }

    /// A client request: proposed if we lead, else answered at once. Returns true if proposed.
    fn on_request(&mut self, src: &Endpoint, req: &ClientRequest<Io::Buf>) -> bool {
        self.link.counters.client_requests.inc();
        let refused = if self.node.is_leader() {
            self.cmd.clear();
            LogCommand {
                client: req.client,
                seq: req.seq,
                proposer: self.me,
                reply_to: *src,
                command: req.command.as_ref(),
            }
            .write(&mut self.cmd);
            match self.node.propose(&self.cmd) {
                Ok(()) => return true,
                Err(ProposeError::NotLeader { .. }) => status::NOT_LEADER,
                Err(ProposeError::Busy) => status::BUSY,
                Err(ProposeError::TooLarge) => status::TOO_LARGE,
            }
        } else {
            status::NOT_LEADER
        };
        self.link.counters.client_rejected.inc();
        // NOT_LEADER never names ourselves (we may still believe our own old ballot leads).
        let hint = match refused {
            status::NOT_LEADER => self.node.leader_hint().filter(|h| *h != self.me),
            _ => Some(self.me),
        };
        self.link.send_reply(src, req.client, req.seq, refused, hint, &[]);
        false
    }

    /// Delivers every tick that is due, at most `MAX_TICKS_PER_POLL`.
    fn advance_clock(&mut self, now_ns: u64) {
        let Some(mut next) = self.next_tick_ns else {
            self.next_tick_ns = Some(now_ns.saturating_add(self.tick_ns));
            return;
        };
        let mut ticks = 0;
        while now_ns >= next && ticks < MAX_TICKS_PER_POLL {
            self.node.tick();
            next = next.saturating_add(self.tick_ns);
            ticks += 1;
        }
        if now_ns >= next {
            let behind = (now_ns - next) / self.tick_ns + 1;
            self.link.counters.ticks_skipped.add(behind);
            next = next.saturating_add(behind.saturating_mul(self.tick_ns));
        }
        self.next_tick_ns = Some(next);
    }

    /// Sends what the node queued; when only messages held for unsynced writes are left,
    /// syncs once (for every write so far: group commit) and sends what that released.
    /// With `SyncOn::Thread` the sync is only started (`begin_sync`): what it holds back
    /// leaves in a later poll, once `poll_sync` sees it complete. Messages to ourselves are
    /// stepped directly. Returns the datagrams sent.
    fn drain_output(&mut self) -> usize {
        let mut sent = 0;
        let mut unflushed = false;
        let mut out = core::mem::take(&mut self.out);
        for _ in 0..MAX_OUTPUT_ROUNDS {
            // What depends on nothing unsynced leaves first (the leader's Accepts travel
            // while its own acceptor's write is being synced).
            self.node.take_messages(&mut out);
            if out.is_empty() {
                if !self.node.needs_sync() && !self.node.has_held_messages() {
                    break;
                }
                if unflushed {
                    self.link.io.flush();
                    unflushed = false;
                }
                let synced = match self.sync_on {
                    SyncOn::Lcore => self.node.sync(),
                    SyncOn::Thread => self.node.begin_sync().map(|_| ()),
                };
                if let Err(e) = synced {
                    self.storage_failed(e);
                    break;
                }
                self.node.take_messages(&mut out);
                if out.is_empty() {
                    break;
                }
            }
            let n = self.send_all(&mut out);
            unflushed |= n > 0;
            sent += n;
        }
        self.out = out;
        sent
    }

    /// Sends (or steps, for ourselves) every message in `out`, leaving it empty.
    fn send_all(&mut self, out: &mut Vec<Outgoing<Io::Buf>>) -> usize {
        let mut sent = 0;
        for m in out.drain(..) {
            if m.to == self.me {
                self.node.step(self.me, m.msg);
            } else if let Some(ep) = self.peers.get(m.to) {
                sent += self.link.send_message(ep, m.to, &m.msg);
            } else {
                // Every member has an endpoint (checked at build): unreachable.
                self.link.counters.tx_unresolved.inc();
            }
        }
        sent
    }

    /// Applies the decided slots in order; the proposer of each command answers it. Then
    /// sends the replies of this poll (these, and the refusals `receive` queued), one
    /// datagram per client endpoint. Returns the commands applied.
    fn apply_decided(&mut self) -> usize {
        let mut decided = core::mem::take(&mut self.decided);
        self.node.take_decided(&mut decided);
        let mut applied = 0;
        for d in decided.drain(..) {
            self.link.counters.slots_decided.inc();
            for record in payload::commands(d.value.as_ref()) {
                let cmd = match LogCommand::parse(record) {
                    Ok(cmd) => cmd,
                    Err(_) => {
                        self.link.counters.log_malformed.inc();
                        continue;
                    }
                };
                self.reply.clear();
                let answer = self.app.apply(d.slot, &cmd, &mut self.reply);
                applied += 1;
                self.link.counters.commands_applied.inc();
                let ours =
                    cmd.proposer == self.me && self.replies_from.is_some_and(|s| d.slot >= s);
                if let (Some(st), true) = (answer, ours) {
                    let hint = self.node.leader_hint();
                    self.link.send_reply(&cmd.reply_to, cmd.client, cmd.seq, st, hint, &self.reply);
                }
            }
        }
        self.decided = decided;
        self.link.flush_replies();
        let next = self.node.next_to_deliver();
        let durable = self.app.checkpoint(next).unwrap_or(next);
        self.node.set_applied(durable);
        applied
    }

    fn handle_events(&mut self) {
        self.node.take_events(&mut self.events);
        let (g, me) = (self.group.0, self.me.0);
        for e in self.events.drain(..) {
            let c = &self.link.counters;
            match e {
                Event::BecameLeader { ballot, from } => {
                    c.leader_changes.inc();
                    // Commands this incarnation proposes are in slots from here on.
                    self.replies_from.get_or_insert(from);
                    log::info!("group {g} replica {me}: leading with {ballot}");
                }
                Event::SteppedDown { ballot, dropped_batches } => {
                    log::info!("group {g} replica {me}: stepped down from {ballot}, {dropped_batches} batches dropped");
                }
                Event::LeaderIs { ballot } => {
                    c.leader_changes.inc();
                    log::debug!("group {g} replica {me}: leader is {ballot}");
                }
                Event::SnapshotNeeded { low } => {
                    c.snapshots_needed.inc();
                    log::warn!(
                        "group {g} replica {me}: fell below the trim point {low}: fetching a snapshot"
                    );
                }
                Event::SnapshotWanted { min } => {
                    // Everything delivered is applied by now (apply_decided ran first).
                    let upto = self.node.next_to_deliver();
                    if upto >= min {
                        if let Some(data) = self.app.take_snapshot() {
                            c.snapshots_offered.inc();
                            log::info!(
                                "group {g} replica {me}: serving a snapshot below {upto} ({} bytes)",
                                data.len()
                            );
                            self.node.offer_snapshot(upto, data.into());
                        }
                    }
                }
                Event::SnapshotReady { slot } => {
                    if let Some((slot, data)) = self.node.take_snapshot() {
                        if self.app.install_snapshot(slot, &data) {
                            c.snapshots_installed.inc();
                            log::info!(
                                "group {g} replica {me}: installed a snapshot below {slot} ({} bytes)",
                                data.len()
                            );
                            self.node.snapshot_installed(slot);
                        } else {
                            c.snapshots_refused.inc();
                            log::error!("group {g} replica {me}: the snapshot below {slot} did not install; fetching again");
                            self.node.snapshot_rejected();
                        }
                    } else {
                        log::debug!("group {g} replica {me}: snapshot below {slot} already taken");
                    }
                }
                Event::Rejoined { promised, low } => {
                    c.rejoins.inc();
                    log::info!(
                        "group {g} replica {me}: rejoined: votes again from {low}, promised {promised}"
                    );
                }
            }
        }
    }

    pub fn id(&self) -> ReplicaId {
        self.me
    }
    pub fn group(&self) -> GroupId {
        self.group
    }
    pub fn is_leader(&self) -> bool {
        self.node.is_leader()
    }
    pub fn leader_hint(&self) -> Option<ReplicaId> {
        self.node.leader_hint()
    }
    pub fn node(&self) -> &Node<Io::Buf, S, Io::Builder> {
        &self.node
    }
    pub fn app(&self) -> &A {
        &self.app
    }
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }
    pub fn io(&self) -> &Io {
        &self.link.io
    }
    pub fn io_mut(&mut self) -> &mut Io {
        &mut self.link.io
    }
    pub fn filter_mut(&mut self) -> &mut F {
        &mut self.link.filter
    }
    pub fn counters(&self) -> &Arc<Counters> {
        &self.link.counters
    }
    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }
    pub fn idle_policy(&self) -> IdlePolicy {
        self.idle
    }
    pub fn set_idle_policy(&mut self, idle: IdlePolicy) {
        self.idle = idle;
    }
}
