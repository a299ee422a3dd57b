//! `paxos-client`: the KV load generator.
//!
//! One thread drives every session with a non-blocking poll loop over one shared transport
//! ([`Demux`]). A *logical client* (a history `client` id) is a session with at most ONE
//! operation outstanding: one `dataplane::client::Client` per group, all sharing one
//! exactly-once `ClientId`. Closed loop: `--clients C --outstanding N` runs `C x N` logical
//! clients, each issuing its next operation as soon as the previous one completes. Open loop
//! (`--rate R`): Poisson arrivals at R ops/s, each taken by an idle logical client (queued
//! while none is idle; latency counts from the arrival, so queueing is not hidden).
//!
//! Operations: a key drawn uniformly from `--keys` keys, routed to its group with
//! `config::group_of`; get with probability `--read-ratio`, cas with `--cas-ratio`
//! (expecting the value last seen for that key), put otherwise. Every written value is
//! unique (`v<client>.<n>` padded to `--value-bytes`), so a history can be checked.
//!
//! Outcomes (kv-history format): `ok` with the result; `fail` when the request was certainly
//! not applied (`TOO_LARGE`, `MALFORMED`, refused before proposing); `info` when unknown:
//! no answer within `--timeout-ms` (the session is then retired and a fresh logical client
//! with a new id takes its place, as a history requires), or an answer that cannot be read.
//! `NOT_LEADER` and `BUSY` are retried inside `Client` (leader discovery, backoff), resending
//! an unanswered request to the next replica every `--retry-ms`; exactly-once sessions in the
//! store make the resends safe.
//!
//! Latency (HDR histogram, ns) counts operations that started after `--warmup` and finished
//! within the `--duration` that follows; the run then drains what is outstanding (bounded by
//! the timeout) so the history ends clean.

use crate::cli::{self, AppError, Idle, Route, Transport};
use crate::config::{group_of, Cluster, MemberInfo};
use crate::demux::{Delivered, Demux, DemuxIo, DemuxStats};
use crate::history::{HistOp, HistoryWriter, Outcome};
use crate::kv::{self, Op};
use crate::kvapp::{decode_reply_ref, ReplyRef};
use crate::report::{IntervalLog, LatencyRecorder, Summary};
use clap::Parser;
use dataplane::app::status;
use dataplane::client::{Client, ClientConfig, ClientStats, Completion, SubmitError};
use dataplane::counters::Counters;
use dataplane::idle::IdlePolicy;
use dataplane::io::{Endpoint, PacketIo};
use dataplane::peers::PeerTable;
use dataplane::udp::UdpIo;
use paxos_core::{ClientId, GroupId};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most logical clients (`--clients x --outstanding`).
pub const MAX_SESSIONS: usize = 65_536;
/// Open loop: arrivals queued while no logical client is idle, before further ones are
/// dropped (and counted).
pub const MAX_BACKLOG: usize = 1_000_000;
/// `--idle block`: longest wait in the kernel, and shortest worth a system call.
pub const BLOCK_NS: u64 = 100_000;
pub const MIN_BLOCK_NS: u64 = 20_000;
/// How often every in-flight operation is checked for retries and timeouts.
pub const SWEEP_NS: u64 = 200_000;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "paxos-client",
    about = "KV load generator for a paxos-node cluster: closed or open loop, HDR latency.",
    after_help = "DPDK style: `paxos-client [EAL options] -- [options]`; with --transport udp \
                  the EAL part may be left out. Exit code 2: bad arguments or cluster file."
)]
pub struct ClientArgs {
    /// The cluster file (TOML, see docs/operations.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Packet I/O: kernel UDP sockets or DPDK ports (from the EAL options).
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: Transport,
    /// Local address. udp: port 0 = any free port. dpdk: our IPv4 address and UDP port on
    /// the DPDK ports (port 0 = 9000).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub bind: SocketAddrV4,
    /// dpdk: our MAC address.
    #[arg(long, default_value = "02:00:00:00:ff:01", value_name = "MAC")]
    pub mac: String,
    /// dpdk: datagrams to MEMBER leave on port DEV (repeatable).
    #[arg(long = "route", value_name = "DEV=MEMBER")]
    pub routes: Vec<Route>,
    /// Closed loop: client groups; `clients x outstanding` logical clients run.
    #[arg(long, default_value_t = 1, value_name = "C")]
    pub clients: usize,
    /// Closed loop: operations in flight per client (each in its own logical client).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub outstanding: usize,
    /// Open loop: Poisson arrivals at this many operations per second (the logical
    /// clients, `clients x outstanding`, bound the concurrency).
    #[arg(long, allow_negative_numbers = true, value_name = "OPS_PER_S")]
    pub rate: Option<f64>,
    /// Seconds measured (after the warm-up).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0, value_name = "SECS")]
    pub duration: f64,
    /// Seconds run before measuring.
    #[arg(long, allow_negative_numbers = true, default_value_t = 2.0, value_name = "SECS")]
    pub warmup: f64,
    /// Bytes per written value.
    #[arg(long, default_value_t = 64, value_name = "B")]
    pub value_bytes: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000, value_name = "K")]
    pub keys: u64,
    /// Fraction of gets.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5, value_name = "F")]
    pub read_ratio: f64,
    /// Fraction of compare-and-swaps (the rest are puts).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0, value_name = "F")]
    pub cas_ratio: f64,
    /// An operation unanswered this long is given up (`info` in the history).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub timeout_ms: u64,
    /// An unanswered request is resent to the next replica after this long.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub retry_ms: u64,
    /// What the loop does when a poll found nothing: spin, yield, sleep[:<n>{ns,us,ms}], or
    /// block (udp only: wait in the kernel for a reply or the next timer).
    #[arg(long, default_value = "yield", value_name = "POLICY")]
    pub idle: Idle,
    /// Write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Append the summary as a CSV row to FILE (header written if the file is new).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write an HdrHistogram interval log (1-second intervals) to FILE.
    #[arg(long, value_name = "FILE")]
    pub interval_log: Option<PathBuf>,
    /// Record every operation in the kv-history JSON-lines format to FILE.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Label of the run in the reports (default: derived from the options).
    #[arg(long)]
    pub label: Option<String>,
    /// Send every request in a datagram of its own (by default the requests of one loop
    /// iteration to the same replica share datagrams, kind 18, up to the cluster's
    /// max_message_bytes; replicas older than the batch kinds need this).
    #[arg(long)]
    pub no_batch: bool,
    /// Seed of the workload generator (default: fresh each run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print a line per second of the measured window after the report (operations,
    /// errors, timeouts, p50, p99): shows what a fault did and when the cluster recovered.
    #[arg(long)]
    pub per_second: bool,
    /// A further field of the --json summary and column of the --csv row (repeatable;
    /// paxos-cluster passes the storage mode and its fdatasync figures this way).
    #[arg(long = "extra", value_name = "KEY=VALUE")]
    pub extra: Vec<String>,
    /// After the run, read every key back (recorded in the history) and check that no
    /// acknowledged write was lost: each key must hold the value of its last acknowledged
    /// write or of one that may have come after it. Needs --history; exit code 1 on a loss.
    #[arg(long)]
    pub verify: bool,
}

impl ClientArgs {
    /// Checks the options that clap cannot; errors name the flag.
    pub fn validate(&self) -> Result<(), AppError> {
        let bad = |flag: &str, why: String| Err(cli::usage(format!("{flag}: {why}")));
        if self.verify && self.history.is_none() {
            return bad("--verify", "needs --history FILE (the check reads the history)".into());
        }
        let sessions = self.clients.saturating_mul(self.outstanding);
        if self.clients == 0 {
            return bad("--clients", "must be at least 1".into());
        }
        if self.outstanding == 0 {
            return bad("--outstanding", "must be at least 1".into());
        }
        if sessions > MAX_SESSIONS {
            return bad(
                "--outstanding",
                format!("clients x outstanding = {sessions} > {MAX_SESSIONS}"),
            );
        }
        if let Some(r) = self.rate {
            if !(r > 0.0 && r.is_finite()) {
                return bad("--rate", format!("{r}: must be > 0 operations per second"));
            }
        }
        if !(self.duration > 0.0 && self.duration.is_finite()) {
            return bad("--duration", format!("{}: must be > 0 seconds", self.duration));
        }
        if !(self.warmup >= 0.0 && self.warmup.is_finite()) {
            return bad("--warmup", format!("{}: must be >= 0 seconds", self.warmup));
        }
        if self.value_bytes > kv::MAX_VALUE_BYTES {
            return bad(
                "--value-bytes",
                format!(
                    "{} > the store's limit of {} bytes",
                    self.value_bytes,
                    kv::MAX_VALUE_BYTES
                ),
            );
        }
        if self.keys == 0 {
            return bad("--keys", "must be at least 1".into());
        }
        for (flag, v) in [("--read-ratio", self.read_ratio), ("--cas-ratio", self.cas_ratio)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(flag, format!("{v}: must be between 0 and 1"));
            }
        }
        if self.read_ratio + self.cas_ratio > 1.0 + 1e-9 {
            return bad(
                "--cas-ratio",
                format!("--read-ratio {} + --cas-ratio {} > 1", self.read_ratio, self.cas_ratio),
            );
        }
        if self.timeout_ms == 0 {
            return bad("--timeout-ms", "must be at least 1".into());
        }
        if self.retry_ms == 0 {
            return bad("--retry-ms", "must be at least 1".into());
        }
        if self.transport == Transport::Dpdk && self.idle == Idle::Block {
            return bad("--idle", "block is only for --transport udp".into());
        }
        if self.transport == Transport::Udp && !self.routes.is_empty() {
            return bad("--route", "only for --transport dpdk".into());
        }
        for kv in &self.extra {
            if !matches!(kv.split_once('='), Some((k, _)) if !k.trim().is_empty()) {
                return bad("--extra", format!("{kv:?}: expected KEY=VALUE"));
            }
        }
        if crate::config::parse_mac(&self.mac).is_none() {
            return bad(
                "--mac",
                format!("{:?} is not a MAC address like 02:00:00:00:ff:01", self.mac),
            );
        }
        Ok(())
    }

    pub fn sessions(&self) -> usize {
        self.clients * self.outstanding
    }

    fn default_label(&self, members: usize) -> String {
        let lp = match self.rate {
            Some(r) => format!("open {r} ops/s"),
            None => format!("{}x{} outstanding", self.clients, self.outstanding),
        };
        format!("{} {} members {}B {}", self.transport, members, self.value_bytes, lp)
    }
}

/// xorshift64*: small, fast, good enough for workload choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Everything a run counts besides latency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Over the whole run (warm-up and drain included): history outcomes.
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Operations started in the measured window that did not end `ok`.
    pub window_errors: u64,
    pub window_timeouts: u64,
    /// Logical clients started (initial ones plus replacements after timeouts).
    pub logical_clients: u64,
    /// Open loop: arrivals dropped because the backlog was full.
    pub dropped_arrivals: u64,
    pub client: ClientStats,
    /// Requests per datagram, reply batches.
    pub demux: DemuxStats,
}

fn add_stats(a: &mut ClientStats, b: &ClientStats) {
    a.sent += b.sent;
    a.retries += b.retries;
    a.timeouts += b.timeouts;
    a.redirects += b.redirects;
    a.busy += b.busy;
    a.completed += b.completed;
    a.stale_replies += b.stale_replies;
    a.ignored += b.ignored;
    a.send_errors += b.send_errors;
}

/// A finished run.
pub struct RunResult {
    pub summary: Summary,
    pub counts: RunCounts,
    pub intervals: IntervalLog,
    /// One entry per full second of the measured window.
    pub seconds: Vec<Second>,
    /// With `verify`: when the read-back started (history time), keys read, keys whose
    /// read-back got no answer.
    pub verify: Option<(u64, u64, u64)>,
}

/// What one second of the measured window saw (operations that started in the window).
#[derive(Clone, Debug, PartialEq)]
pub struct Second {
    /// Completed `ok` in this second.
    pub ok: u64,
    /// Ended otherwise (errors) or were given up (timeouts) in this second.
    pub errors: u64,
    pub timeouts: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// The workload and timing of a run, independent of the transport.
#[derive(Clone, Debug)]
pub struct Workload {
    pub sessions: usize,
    pub rate: Option<f64>,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    pub value_bytes: usize,
    pub keys: u64,
    pub read_ratio: f64,
    pub cas_ratio: f64,
    pub timeout_ns: u64,
    pub retry_ns: u64,
    pub idle: IdlePolicy,
    pub seed: u64,
    pub label: String,
    /// Largest request datagram the demux builds by coalescing requests to one replica
    /// (the cluster's `max_message_bytes`); 0 = one datagram per request (`--no-batch`).
    pub batch_bytes: usize,
    /// After the run, read every key once (see [`ClientArgs::verify`]).
    pub verify: bool,
}

/// The operations the generator issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Get,
    Put,
    Cas,
}

/// An operation in flight; its key, value and cas expectation are in its [`Session`]'s
/// buffers.
struct InFlight {
    group: usize,
    kind: OpKind,
    key_id: u64,
    /// cas: `Session::expected` holds the expected value (else: "must be absent").
    has_expected: bool,
    start_ns: u64,
    intended_ns: u64,
}

/// How an operation ended, for the counts (the history gets the whole `Outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    Fail,
    Info,
}

struct Session<Io: PacketIo> {
    hist_id: u64,
    clients: Vec<Client<DemuxIo<Io>>>,
    op: Option<InFlight>,
    /// The in-flight operation's key, value and cas expectation: reused from one operation
    /// to the next, so issuing allocates nothing.
    key: Vec<u8>,
    value: Vec<u8>,
    expected: Vec<u8>,
}

impl<Io: PacketIo> Session<Io> {
    /// The operation as the history records it (allocates: only with `--history`).
    fn hist_op(&self, f: &InFlight) -> HistOp {
        let key = self.key.clone();
        match f.kind {
            OpKind::Get => HistOp::Get { key },
            OpKind::Put => HistOp::Put { key, value: self.value.clone() },
            OpKind::Cas => HistOp::Cas {
                key,
                expected: f.has_expected.then(|| self.expected.clone()),
                value: self.value.clone(),
            },
        }
    }
}

/// Appends `v` in decimal (what `format!("{v}")` writes, without the formatter).
fn push_dec(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` in lower-case hex (what `format!("{v:x}")` writes).
fn push_hex(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Key `k<id>` into `out` (cleared first).
fn write_key(out: &mut Vec<u8>, id: u64) {
    out.clear();
    out.push(b'k');
    push_dec(out, id);
}

/// The unique value `v<client hex>.<n hex>.` padded with `x` (or cut) to `len` bytes.
fn write_value(out: &mut Vec<u8>, hist_id: u64, n: u64, len: usize) {
    out.clear();
    out.push(b'v');
    push_hex(out, hist_id);
    out.push(b'.');
    push_hex(out, n);
    out.push(b'.');
    out.resize(len, b'x');
}

/// `map[k] = v`, reusing the stored buffer.
fn set_seen(map: &mut HashMap<u64, Option<Vec<u8>>>, k: u64, v: Option<&[u8]>) {
    match (map.get_mut(&k), v) {
        (Some(Some(buf)), Some(v)) => {
            buf.clear();
            buf.extend_from_slice(v);
        }
        (Some(e), v) => *e = v.map(<[u8]>::to_vec),
        (None, v) => {
            map.insert(k, v.map(<[u8]>::to_vec));
        }
    }
}

/// The load generator over one shared transport.
pub struct Engine<Io: PacketIo, W: Write> {
    demux: Demux<Io>,
    replicas: Vec<PeerTable>,
    w: Workload,
    nonce: u64,
    next_hist_id: u64,
    sessions: Vec<Session<Io>>,
    /// Demux inbox index -> session slot.
    by_inbox: Vec<Option<usize>>,
    idle_slots: Vec<usize>,
    backlog: VecDeque<u64>,
    rng: Rng,
    /// The value each key was last seen to hold (for cas; kept only when cas is drawn).
    last_seen: HashMap<u64, Option<Vec<u8>>>,
    history: Option<HistoryWriter<W>>,
    history_error: Option<std::io::Error>,
    rec: LatencyRecorder,
    counts: RunCounts,
    scratch: Vec<u8>,
    done: Vec<Completion<Io::Buf>>,
    /// Replies handed out by the demux in one pump.
    delivered: Vec<Delivered<Io::Buf>>,
    values_written: u64,
    /// `--idle block`: waits on the transport for up to the given time.
    blocker: Option<fn(&Io, Duration)>,
}

impl<Io: PacketIo, W: Write> Engine<Io, W> {
    /// `replicas[g]`: the members' endpoints for group g.
    pub fn new(io: Io, replicas: Vec<PeerTable>, w: Workload, history: Option<W>) -> Self {
        let nonce = cli::fresh_seed() & !0xFF_FFFF;
        let mut e = Engine {
            demux: Demux::new(io, w.batch_bytes),
            replicas,
            rng: Rng::new(w.seed),
            w,
            nonce,
            next_hist_id: 1,
            sessions: Vec::new(),
            by_inbox: Vec::new(),
            idle_slots: Vec::new(),
            backlog: VecDeque::new(),
            last_seen: HashMap::new(),
            history: history.map(HistoryWriter::new),
            history_error: None,
            rec: LatencyRecorder::new(),
            counts: RunCounts::default(),
            scratch: Vec::new(),
            done: Vec::new(),
            delivered: Vec::new(),
            values_written: 0,
            blocker: None,
        };
        for slot in 0..e.w.sessions {
            let s = e.new_session(slot);
            e.sessions.push(s);
            e.idle_slots.push(slot);
        }
        e.idle_slots.reverse();
        e
    }

    /// Blocks in `f` (after a few empty polls) instead of applying the idle policy.
    pub fn with_blocker(mut self, f: fn(&Io, Duration)) -> Self {
        self.blocker = Some(f);
        self
    }

    fn new_session(&mut self, slot: usize) -> Session<Io> {
        let hist_id = self.next_hist_id;
        self.next_hist_id += 1;
        self.counts.logical_clients += 1;
        let id = self.nonce | (hist_id & 0xFF_FFFF);
        let mut clients = Vec::with_capacity(self.replicas.len());
        for (g, peers) in self.replicas.iter().enumerate() {
            let io = self.demux.register(g as u16, id);
            let i = io.index();
            if self.by_inbox.len() <= i {
                self.by_inbox.resize(i + 1, None);
            }
            self.by_inbox[i] = Some(slot);
            let mut cfg = ClientConfig::new(GroupId(g as u16), ClientId(id), peers.clone());
            cfg.timeout_ns = self.w.retry_ns;
            cfg.max_outstanding = 1;
            clients.push(Client::new(io, cfg));
        }
        Session {
            hist_id,
            clients,
            op: None,
            key: Vec::new(),
            value: Vec::new(),
            expected: Vec::new(),
        }
    }

    /// Retires the session in `slot` (its operation timed out) for a fresh logical client.
    fn replace_session(&mut self, slot: usize) {
        let old = std::mem::take(&mut self.sessions[slot].clients);
        for c in &old {
            add_stats(&mut self.counts.client, c.stats());
        }
        drop(old);
        self.sessions[slot] = self.new_session(slot);
    }

    /// Counts how `f` (the operation of `slot`) ended and writes its history line.
    fn record(
        &mut self,
        slot: usize,
        f: &InFlight,
        end_ns: Option<u64>,
        end: End,
        reply: Option<ReplyRef<'_>>,
    ) {
        match end {
            End::Ok => self.counts.ok += 1,
            End::Fail => self.counts.fail += 1,
            End::Info => self.counts.info += 1,
        }
        let Some(h) = self.history.as_mut() else { return };
        let s = &self.sessions[slot];
        let outcome = match (end, reply) {
            (End::Fail, _) => Outcome::Fail,
            (End::Ok, Some(ReplyRef::Value(v))) => Outcome::OkValue(v.map(<[u8]>::to_vec)),
            (End::Ok, Some(ReplyRef::Flag(b))) => Outcome::OkFlag(b),
            (End::Ok, Some(ReplyRef::Done)) => Outcome::OkDone,
            _ => Outcome::Info,
        };
        if let Err(e) = h.record(s.hist_id, &s.hist_op(f), f.start_ns, end_ns, &outcome) {
            self.history_error.get_or_insert(e);
        }
    }

    /// Starts an operation on the idle session in `slot` (recorded as failed if it could
    /// not be sent). Allocates nothing: key, value and request are written into buffers
    /// that are reused.
    fn issue(&mut self, slot: usize, intended_ns: u64, now: u64) {
        let key_id = self.rng.below(self.w.keys);
        let r = self.rng.unit();
        let kind = if r < self.w.read_ratio {
            OpKind::Get
        } else if r < self.w.read_ratio + self.w.cas_ratio {
            OpKind::Cas
        } else {
            OpKind::Put
        };
        self.issue_op(slot, kind, key_id, intended_ns, now);
    }

    /// Starts operation `kind` on key `key_id` on the idle session in `slot`.
    fn issue_op(&mut self, slot: usize, kind: OpKind, key_id: u64, intended_ns: u64, now: u64) {
        let s = &mut self.sessions[slot];
        write_key(&mut s.key, key_id);
        let group = usize::from(group_of(&s.key, self.replicas.len() as u16));
        let mut has_expected = false;
        if kind == OpKind::Cas {
            s.expected.clear();
            if let Some(Some(v)) = self.last_seen.get(&key_id) {
                s.expected.extend_from_slice(v);
                has_expected = true;
            }
        }
        if kind != OpKind::Get {
            self.values_written += 1;
            write_value(&mut s.value, s.hist_id, self.values_written, self.w.value_bytes);
        }
        self.scratch.clear();
        let (key, value) = (&s.key[..], &s.value[..]);
        match kind {
            OpKind::Get => Op::Get { key },
            OpKind::Put => Op::Put { key, value },
            OpKind::Cas => {
                Op::Cas { key, expected: has_expected.then_some(&s.expected[..]), value }
            }
        }
        .encode(&mut self.scratch);
        let f = InFlight { group, kind, key_id, has_expected, start_ns: now, intended_ns };
        match s.clients[group].submit(&self.scratch, now) {
            Ok(_) => s.op = Some(f),
            Err(SubmitError::TooLarge) | Err(SubmitError::Full) => {
                // Never sent: certainly not applied.
                self.record(slot, &f, Some(now), End::Fail, None);
                if intended_ns >= self.w.warmup_ns {
                    self.counts.window_errors += 1;
                }
                self.idle_slots.push(slot);
            }
        }
    }

    /// A reply for the session in `slot`: its client of the reply's group takes it (a
    /// stale one is counted there); a completion ends the operation in flight.
    fn on_reply(&mut self, slot: usize, d: Delivered<Io::Buf>, now: u64) {
        let mut done = std::mem::take(&mut self.done);
        done.clear();
        if let Some(c) = self.sessions[slot].clients.get_mut(usize::from(d.group)) {
            c.on_reply(d.from, d.reply, now, &mut done);
        }
        let in_flight = self.sessions[slot].op.as_ref().map(|o| o.group);
        if let (Some(c), Some(g)) = (done.pop(), in_flight) {
            if g == usize::from(d.group) {
                let f = self.sessions[slot].op.take().expect("in flight");
                self.complete(slot, f, c.status, c.body.as_ref(), now);
            }
        }
        done.clear();
        self.done = done;
    }

    /// Polls the in-flight client of `slot` (resends) and handles its completion.
    fn poll_slot(&mut self, slot: usize, now: u64) {
        let Some(g) = self.sessions[slot].op.as_ref().map(|o| o.group) else {
            return;
        };
        let mut done = std::mem::take(&mut self.done);
        done.clear();
        self.sessions[slot].clients[g].poll(now, &mut done);
        if let Some(c) = done.pop() {
            let f = self.sessions[slot].op.take().expect("in flight");
            self.complete(slot, f, c.status, c.body.as_ref(), now);
        }
        done.clear();
        self.done = done;
    }

    fn complete(&mut self, slot: usize, f: InFlight, st: u8, body: &[u8], now: u64) {
        let reply = decode_reply_ref(st, body);
        let end = match (f.kind, reply) {
            (OpKind::Get, Ok(ReplyRef::Value(_)))
            | (OpKind::Put, Ok(ReplyRef::Done))
            | (OpKind::Cas, Ok(ReplyRef::Flag(_))) => End::Ok,
            // Refused before (or without) taking effect.
            (_, Ok(ReplyRef::Error(status::TOO_LARGE | status::MALFORMED))) => End::Fail,
            (_, other) => {
                let hist_id = self.sessions[slot].hist_id;
                log::debug!("logical client {hist_id}: unexpected answer {other:?} (status {st})");
                End::Info
            }
        };
        let reply = reply.ok();
        if self.w.cas_ratio > 0.0 && end == End::Ok {
            self.note_seen(slot, &f, reply);
        }
        let window_end = self.w.warmup_ns + self.w.duration_ns;
        let in_window = f.intended_ns >= self.w.warmup_ns && f.intended_ns < window_end;
        if end == End::Ok {
            if in_window && now <= window_end {
                self.rec.record_ns(now - f.intended_ns);
            }
        } else if in_window {
            self.counts.window_errors += 1;
        }
        let end_ns = (end != End::Info).then_some(now);
        self.record(slot, &f, end_ns, end, reply);
        if end == End::Info {
            // Outcome unknown: this logical client may not issue again.
            self.replace_session(slot);
        }
        self.idle_slots.push(slot);
    }

    /// Remembers what the key of a completed operation holds (the next cas expects it).
    fn note_seen(&mut self, slot: usize, f: &InFlight, reply: Option<ReplyRef<'_>>) {
        let s = &self.sessions[slot];
        let k = f.key_id;
        match (f.kind, reply) {
            (OpKind::Get, Some(ReplyRef::Value(v))) => set_seen(&mut self.last_seen, k, v),
            (OpKind::Put, _) => set_seen(&mut self.last_seen, k, Some(&s.value)),
            (OpKind::Cas, Some(ReplyRef::Flag(true))) => {
                set_seen(&mut self.last_seen, k, Some(&s.value))
            }
            (OpKind::Cas, _) => {
                let expected = f.has_expected.then_some(&s.expected[..]);
                if self.last_seen.get(&k).map(Option::as_deref) == Some(expected) {
                    // Our guess was wrong: read it again before the next cas.
                    self.last_seen.remove(&k);
                }
            }
            _ => {}
        }
    }

    /// Retries, timeouts: every in-flight session.
    fn sweep(&mut self, now: u64) {
        for slot in 0..self.sessions.len() {
            let Some(f) = self.sessions[slot].op.as_ref() else { continue };
            if now.saturating_sub(f.start_ns) >= self.w.timeout_ns {
                let f = self.sessions[slot].op.take().expect("in flight");
                self.record(slot, &f, None, End::Info, None);
                let window_end = self.w.warmup_ns + self.w.duration_ns;
                if f.intended_ns >= self.w.warmup_ns && f.intended_ns < window_end {
                    self.counts.window_timeouts += 1;
                }
                self.replace_session(slot);
                self.idle_slots.push(slot);
            } else if self.sessions[slot].clients[f.group].next_timer_ns().is_some_and(|t| t <= now)
            {
                // A resend is due (replies are handled as they arrive, via `pump`).
                self.poll_slot(slot, now);
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.w.sessions - self.idle_slots.len()
    }

    /// Closes the one-second interval that ends at `end` (ns since the start): its
    /// latencies go to the interval log, its counts to the per-second lines.
    fn close_second(
        &mut self,
        intervals: &mut IntervalLog,
        seconds: &mut Vec<Second>,
        counted: &mut (u64, u64),
        end: u64,
        measure_start: u64,
    ) {
        let offset = Duration::from_nanos(end - 1_000_000_000 - measure_start);
        intervals.push(&self.rec.interval, offset, Duration::from_secs(1));
        let h = &self.rec.interval;
        let (e, t) = (self.counts.window_errors, self.counts.window_timeouts);
        seconds.push(Second {
            ok: h.len(),
            errors: e - counted.0,
            timeouts: t - counted.1,
            p50_us: h.value_at_quantile(0.5) as f64 / 1000.0,
            p99_us: h.value_at_quantile(0.99) as f64 / 1000.0,
        });
        *counted = (e, t);
        self.rec.interval.reset();
    }

    /// Runs the workload. `clock` gives monotonic nanoseconds; `extra` is polled every
    /// iteration with the time (e.g. in-process replicas) and returns the work it did.
    pub fn run(
        mut self,
        clock: impl Fn() -> u64,
        stop: &AtomicBool,
        mut extra: impl FnMut(u64) -> usize,
    ) -> Result<(RunResult, Option<W>), AppError> {
        let t0 = clock();
        let now_of = |c: &dyn Fn() -> u64| c().saturating_sub(t0);
        let measure_start = self.w.warmup_ns;
        let mut measure_end = self.w.warmup_ns + self.w.duration_ns;
        let mut intervals = IntervalLog::new();
        let mut seconds = Vec::new();
        let mut counted = (0u64, 0u64);
        let mut next_interval = measure_start + 1_000_000_000;
        let mut next_arrival = 0u64;
        let mut next_sweep = 0u64;
        let mut issuing = true;
        let mut drain_deadline = u64::MAX;
        let mut empty = 0u32;
        loop {
            let now = now_of(&clock);
            let mut work = extra(now);
            if issuing && (now >= measure_end || stop.load(Ordering::Relaxed)) {
                issuing = false;
                measure_end = measure_end.min(now.max(measure_start));
                self.backlog.clear();
                drain_deadline =
                    if stop.load(Ordering::Relaxed) { now } else { now + self.w.timeout_ns };
            }
            if !issuing && (self.in_flight() == 0 || now >= drain_deadline) {
                // The last second of the run may not have been closed yet (nothing was in
                // flight at the moment the run ended): close it, so a run of N seconds
                // always reports N.
                if now >= next_interval && next_interval <= measure_end {
                    self.close_second(
                        &mut intervals,
                        &mut seconds,
                        &mut counted,
                        next_interval,
                        measure_start,
                    );
                }
                break;
            }
            // Arrivals.
            if issuing {
                match self.w.rate {
                    None => {
                        while let Some(slot) = self.idle_slots.pop() {
                            self.issue(slot, now, now);
                            work += 1;
                        }
                    }
                    Some(rate) => {
                        while next_arrival <= now {
                            if self.backlog.len() < MAX_BACKLOG {
                                self.backlog.push_back(next_arrival);
                            } else {
                                self.counts.dropped_arrivals += 1;
                            }
                            let u = 1.0 - self.rng.unit(); // (0, 1]
                            next_arrival += ((-u.ln() / rate) * 1e9).max(1.0) as u64;
                        }
                        while !self.backlog.is_empty() {
                            let Some(slot) = self.idle_slots.pop() else { break };
                            let at = self.backlog.pop_front().expect("non-empty");
                            self.issue(slot, at, now);
                            work += 1;
                        }
                    }
                }
            }
            // Replies (stamped with a fresh clock: issuing may have taken a while, or the
            // thread was preempted).
            let mut delivered = std::mem::take(&mut self.delivered);
            delivered.clear();
            work += self.demux.pump(&mut delivered);
            let now = now_of(&clock);
            for d in delivered.drain(..) {
                if let Some(slot) = self.by_inbox.get(d.inbox).copied().flatten() {
                    self.on_reply(slot, d, now);
                }
            }
            self.delivered = delivered;
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_NS;
            }
            self.demux.flush();
            if now >= next_interval && next_interval <= measure_end {
                self.close_second(
                    &mut intervals,
                    &mut seconds,
                    &mut counted,
                    next_interval,
                    measure_start,
                );
                next_interval += 1_000_000_000;
            }
            if work > 0 {
                empty = 0;
                continue;
            }
            empty += 1;
            let wait = match (self.blocker, self.w.rate) {
                (Some(_), Some(_)) if issuing => next_arrival.saturating_sub(now).min(BLOCK_NS),
                (Some(_), _) => BLOCK_NS,
                (None, _) => 0,
            };
            match self.blocker {
                Some(f) if empty >= cli::SPINS_BEFORE_BLOCK && wait >= MIN_BLOCK_NS => {
                    self.demux.with_io(|io| f(io, Duration::from_nanos(wait)));
                    empty = 0;
                }
                _ => self.w.idle.idle(),
            }
        }
        // Whatever is still out (stopped early, or the drain deadline passed): unknown.
        for slot in 0..self.sessions.len() {
            if let Some(f) = self.sessions[slot].op.take() {
                self.record(slot, &f, None, End::Info, None);
                if f.intended_ns >= measure_start {
                    self.counts.window_timeouts += 1;
                }
                self.replace_session(slot);
                self.idle_slots.push(slot);
            }
        }
        let verify = if self.w.verify && !stop.load(Ordering::Relaxed) {
            Some(self.read_back(&clock, t0, stop))
        } else {
            None
        };
        for s in &self.sessions {
            for c in &s.clients {
                add_stats(&mut self.counts.client, c.stats());
            }
        }
        self.counts.demux = self.demux.stats();
        let window = Duration::from_nanos(measure_end.saturating_sub(measure_start));
        let summary = Summary::from(
            &self.w.label,
            &self.rec.total,
            self.counts.window_errors,
            self.counts.window_timeouts,
            window,
        );
        if let Some(e) = self.history_error.take() {
            return Err(cli::runtime(format!("--history: write failed: {e}")));
        }
        let history = self.history.take().map(HistoryWriter::into_inner);
        Ok((RunResult { summary, counts: self.counts, intervals, seconds, verify }, history))
    }

    /// Reads every key once, after every write of the run ended (completed or given up), so
    /// that the history ends with each key's final value. Returns (start, keys read, keys
    /// whose read got no answer).
    fn read_back(
        &mut self,
        clock: &impl Fn() -> u64,
        t0: u64,
        stop: &AtomicBool,
    ) -> (u64, u64, u64) {
        let now_of = || clock().saturating_sub(t0);
        let start = now_of();
        let (mut next_key, mut read, mut lost) = (0u64, 0u64, 0u64);
        let infos = self.counts.info;
        // Generous: every key may need a leader change and a few resends.
        let deadline = start + self.w.timeout_ns.saturating_mul(4).max(10_000_000_000);
        while !stop.load(Ordering::Relaxed) {
            let now = now_of();
            while next_key < self.w.keys {
                let Some(slot) = self.idle_slots.pop() else { break };
                self.issue_op(slot, OpKind::Get, next_key, now, now);
                next_key += 1;
            }
            let mut delivered = std::mem::take(&mut self.delivered);
            delivered.clear();
            let work = self.demux.pump(&mut delivered);
            let now = now_of();
            for d in delivered.drain(..) {
                if let Some(slot) = self.by_inbox.get(d.inbox).copied().flatten() {
                    self.on_reply(slot, d, now);
                }
            }
            self.delivered = delivered;
            self.sweep(now);
            self.demux.flush();
            if next_key >= self.w.keys && self.in_flight() == 0 {
                break;
            }
            if now >= deadline {
                break;
            }
            if work == 0 {
                self.w.idle.idle();
            }
        }
        for slot in 0..self.sessions.len() {
            if let Some(f) = self.sessions[slot].op.take() {
                self.record(slot, &f, None, End::Info, None);
            }
        }
        read += next_key;
        lost += self.counts.info - infos;
        (start, read, lost)
    }

    pub fn demux(&self) -> &Demux<Io> {
        &self.demux
    }
}

/// The replicas of every group, addressed with `endpoint(member, group)`.
pub fn replica_tables(
    cluster: &Cluster,
    endpoint: impl Fn(&MemberInfo, u16) -> Endpoint,
) -> Result<Vec<PeerTable>, AppError> {
    (0..cluster.raw.groups)
        .map(|g| {
            PeerTable::new(cluster.members.iter().map(|m| (m.id, endpoint(m, g))))
                .map_err(|e| cli::usage(format!("cluster file: {e}")))
        })
        .collect()
}

fn create(path: &Path, flag: &str) -> Result<File, AppError> {
    File::create(path).map_err(|e| cli::usage(format!("{flag} {}: {e}", path.display())))
}

/// Output files, opened before the run so that a bad path fails early.
pub struct Outputs {
    pub json: Option<File>,
    pub csv: Option<(File, bool)>,
    pub interval_log: Option<File>,
    pub history: Option<BufWriter<File>>,
    /// With --verify: the history to check after the run.
    pub history_path: Option<PathBuf>,
    /// `--extra` fields.
    pub extra: Vec<(String, String)>,
}

impl Outputs {
    pub fn open(a: &ClientArgs) -> Result<Outputs, AppError> {
        let json = a.json.as_deref().map(|p| create(p, "--json")).transpose()?;
        let interval_log =
            a.interval_log.as_deref().map(|p| create(p, "--interval-log")).transpose()?;
        let history = a
            .history
            .as_deref()
            .map(|p| create(p, "--history").map(|f| BufWriter::with_capacity(1 << 20, f)))
            .transpose()?;
        let csv = match a.csv.as_deref() {
            None => None,
            Some(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| cli::usage(format!("--csv {}: {e}", p.display())))?;
                let new = f.metadata().map(|m| m.len() == 0).unwrap_or(true);
                Some((f, new))
            }
        };
        let extra = a
            .extra
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let history_path = a.verify.then(|| a.history.clone()).flatten();
        Ok(Outputs { json, csv, interval_log, history, history_path, extra })
    }

    /// Prints the summary and writes the files.
    pub fn finish(self, r: &RunResult, history: Option<BufWriter<File>>) -> Result<(), AppError> {
        let io = |flag: &'static str| move |e: std::io::Error| cli::runtime(format!("{flag}: {e}"));
        if let Some(mut f) = self.json {
            writeln!(f, "{}", r.summary.json_with(&self.extra)).map_err(io("--json"))?;
        }
        if let Some((mut f, new)) = self.csv {
            if new {
                writeln!(f, "{}", Summary::csv_header_with(&self.extra)).map_err(io("--csv"))?;
            }
            writeln!(f, "{}", r.summary.csv_with(&self.extra)).map_err(io("--csv"))?;
        }
        if let Some(f) = self.interval_log {
            r.intervals.write_to(BufWriter::new(f)).map_err(io("--interval-log"))?;
        }
        if let Some(mut h) = history {
            h.flush().map_err(io("--history"))?;
        }
        if let (Some(path), Some((start, read, unanswered))) = (&self.history_path, r.verify) {
            let check = crate::history::check_acknowledged_writes(path, start)
                .map_err(|e| cli::runtime(format!("--verify: {e}")))?;
            println!(
                "  verify: {read} keys read back ({unanswered} unanswered), {} keys written, {} acknowledged writes, {} lost",
                check.keys_written,
                check.acknowledged_writes,
                check.lost.len()
            );
            for l in check.lost.iter().take(10) {
                println!("  verify: LOST: {l}");
            }
            if !check.lost.is_empty() {
                return Err(cli::runtime(format!(
                    "--verify: {} acknowledged write(s) lost (see above)",
                    check.lost.len()
                )));
            }
            if unanswered > 0 {
                return Err(cli::runtime(format!(
                    "--verify: {unanswered} key(s) could not be read back"
                )));
            }
        }
        Ok(())
    }
}

/// The human report: the summary and the run's counts.
pub fn print_report(r: &RunResult) {
    println!("{}", r.summary.human());
    let c = &r.counts;
    let s = &c.client;
    println!(
        "  operations: {} ok, {} fail, {} info (whole run); logical clients {}; requests sent {}, \
         resent {}, redirects {}, busy {}, stale replies {}{}",
        c.ok,
        c.fail,
        c.info,
        c.logical_clients,
        s.sent,
        s.retries,
        s.redirects,
        s.busy,
        s.stale_replies,
        if c.dropped_arrivals > 0 {
            format!(", arrivals dropped {}", c.dropped_arrivals)
        } else {
            String::new()
        }
    );
    let d = &c.demux;
    println!(
        "  datagrams: {} requests in {} ({:.1} per datagram); replies received {} ({} reply \
         batches), unmatched {}",
        d.requests,
        d.request_datagrams,
        d.requests as f64 / d.request_datagrams.max(1) as f64,
        d.delivered,
        d.reply_batches,
        d.unmatched
    );
}

/// The per-second lines (`--per-second`).
pub fn print_seconds(r: &RunResult) {
    for (i, s) in r.seconds.iter().enumerate() {
        println!(
            "  second {}: {} ok, {} errors, {} timeouts, p50 {:.1} us, p99 {:.1} us",
            i + 1,
            s.ok,
            s.errors,
            s.timeouts,
            s.p50_us,
            s.p99_us
        );
    }
}

/// Parses, validates and runs; `args` as from `std::env::args()`.
pub fn main_with(args: Vec<String>) -> Result<(), AppError> {
    let (eal_args, app_args) = cli::split_eal_args(&args);
    let a = ClientArgs::try_parse_from(&app_args).unwrap_or_else(|e| e.exit());
    cli::check_transport_compiled(a.transport)?;
    a.validate()?;
    let cluster = cli::load_cluster(&a.config)?;
    cli::check_routes(&cluster, &a.routes)?;
    let outputs = Outputs::open(&a)?;
    let stop = cli::stop_on_signals()?;
    let w = Workload {
        sessions: a.sessions(),
        rate: a.rate,
        warmup_ns: (a.warmup * 1e9) as u64,
        duration_ns: (a.duration * 1e9) as u64,
        value_bytes: a.value_bytes,
        keys: a.keys,
        read_ratio: a.read_ratio,
        cas_ratio: a.cas_ratio,
        timeout_ns: a.timeout_ms * 1_000_000,
        retry_ns: a.retry_ms * 1_000_000,
        idle: a.idle.policy(),
        seed: a.seed.unwrap_or_else(cli::fresh_seed),
        label: a.label.clone().unwrap_or_else(|| a.default_label(cluster.members.len())),
        batch_bytes: if a.no_batch { 0 } else { cluster.raw.max_message_bytes as usize },
        verify: a.verify,
    };
    match a.transport {
        Transport::Udp => {
            if eal_args.len() > 1 {
                log::warn!("--transport udp: ignoring the EAL options {:?}", &eal_args[1..]);
            }
            let counters = Arc::new(Counters::default());
            let io = UdpIo::bind(a.bind, counters)
                .map_err(|e| cli::runtime(format!("--bind {}: {e}", a.bind)))?;
            log::info!("client at {} (udp), {} logical clients", io.local(), w.sessions);
            let replicas = replica_tables(&cluster, |m, g| Endpoint::udp(m.ip, cluster.port(g)))?;
            let mut outputs = outputs;
            let hist = outputs.history.take();
            let mut engine = Engine::new(io, replicas, w, hist);
            if a.idle == Idle::Block {
                engine = engine.with_blocker(|io: &UdpIo, d| cli::wait_readable(io.socket(), d));
            }
            let start = Instant::now();
            let clock = move || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let (r, hist) = engine.run(clock, &stop, |_| 0)?;
            print_report(&r);
            if a.per_second {
                print_seconds(&r);
            }
            outputs.finish(&r, hist)
        }
        #[cfg(feature = "dpdk")]
        Transport::Dpdk => crate::client_dpdk::run(&a, &eal_args, &cluster, w, outputs, &stop),
        #[cfg(not(feature = "dpdk"))]
        Transport::Dpdk => unreachable!("checked by check_transport_compiled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_written_like_format() {
        let mut buf = Vec::new();
        for n in [0u64, 1, 9, 10, 255, 4096, 123_456_789, u64::MAX] {
            write_key(&mut buf, n);
            assert_eq!(buf, format!("k{n}").into_bytes());
            buf.clear();
            push_hex(&mut buf, n);
            assert_eq!(buf, format!("{n:x}").into_bytes());
        }
        write_value(&mut buf, 0x2a, 7, 16);
        assert_eq!(buf, b"v2a.7.xxxxxxxxxx");
        write_value(&mut buf, 0xabcdef, 0x1234, 4);
        assert_eq!(buf, b"vabc", "cut to the value size like the formatted one");
        let mut seen = HashMap::new();
        set_seen(&mut seen, 1, Some(b"abc"));
        set_seen(&mut seen, 1, Some(b"de"));
        assert_eq!(seen[&1].as_deref(), Some(&b"de"[..]));
        set_seen(&mut seen, 1, None);
        assert_eq!(seen[&1], None);
        set_seen(&mut seen, 1, Some(b"f"));
        assert_eq!(seen[&1].as_deref(), Some(&b"f"[..]));
    }
}
