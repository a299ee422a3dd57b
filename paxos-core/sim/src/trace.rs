//! The event trace: one line per thing that happened (send, deliver, drop, crash, propose,
//! decide, ...). Every line is folded into a running FNV-1a hash (so two runs can be compared
//! without keeping their traces) and the last `cap` lines are kept in a ring for the failure
//! report. Lines are small `Copy` records; they are formatted only when printed.

use bytes::Bytes;
use core::fmt;
use core::hash::{Hash, Hasher};
use paxos_core::{Ballot, Message};
use std::collections::VecDeque;

/// Virtual time is counted in steps; a tick is this many steps. Message delays are drawn in
/// steps, so deliveries interleave between ticks.
pub const STEPS_PER_TICK: u64 = 8;

/// A node's index (its `ReplicaId` number).
pub type NodeIx = u16;

/// What a trace line says about a protocol message.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct MsgSummary {
    pub kind: &'static str,
    pub ballot: Ballot,
    pub slot: u64,
    pub aux: u64,
}

impl MsgSummary {
    pub fn of(msg: &Message<Bytes>) -> MsgSummary {
        let kind = msg.kind_name();
        let (ballot, slot, aux) = match msg {
            Message::Prepare { ballot, from } => (*ballot, from.0, 0),
            Message::Promise { ballot, from, low, end, chunk, chunks, entries, .. } => (
                *ballot,
                from.0.max(low.0),
                (u64::from(*chunk) << 56)
                    | (u64::from(*chunks) << 48)
                    | ((end.0.saturating_sub(from.0.max(low.0)) & 0xFFFF) << 32)
                    | entries.len() as u64,
            ),
            Message::Accept { ballot, slot, commit, value } => {
                (*ballot, slot.0, (commit.0 << 20) | value.len() as u64)
            }
            Message::Accepted { ballot, slot } => (*ballot, slot.0, 0),
            Message::Nack { ballot, promised } => {
                (*ballot, 0, (u64::from(promised.round) << 16) | u64::from(promised.leader.0))
            }
            Message::Heartbeat { ballot, commit, trim } => (*ballot, commit.0, trim.0),
            Message::Repeat { from, to } => (Ballot::NONE, from.0, to.0),
            Message::Learn { ballot, slot, value } => (*ballot, slot.0, value.len() as u64),
            Message::Trimmed { low } => (Ballot::NONE, low.0, 0),
            Message::Applied { applied } => (Ballot::NONE, applied.0, 0),
            Message::SnapshotRequest { min, slot, offset, .. } => {
                (Ballot::NONE, min.0, (slot.0 << 32) | (offset & 0xFFFF_FFFF))
            }
            Message::SnapshotChunk { slot, offset, data, .. } => {
                (Ballot::NONE, slot.0, (offset << 16) | (data.len() as u64 & 0xFFFF))
            }
            Message::RecoveryQuery { nonce } => (Ballot::NONE, 0, *nonce),
            Message::RecoveryInfo { ballot, high, recovering, .. } => {
                (*ballot, high.0, u64::from(*recovering))
            }
            Message::HeartbeatAck { ballot } => (*ballot, 0, 0),
            Message::Committed { commit } => (Ballot::NONE, commit.0, 0),
        };
        MsgSummary { kind, ballot, slot, aux }
    }
}

impl fmt::Display for MsgSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, s, a) = (self.ballot, self.slot, self.aux);
        match self.kind {
            "prepare" => write!(f, "prepare {b} from=s{s}"),
            "promise" => write!(
                f,
                "promise {b} page=[s{s}, +{}) chunk={}/{} entries={}",
                (a >> 32) & 0xFFFF,
                a >> 56,
                (a >> 48) & 0xFF,
                a & 0xFFFF_FFFF
            ),
            "accept" => write!(f, "accept {b} s{s} commit=s{} len={}", a >> 20, a & 0xF_FFFF),
            "accepted" => write!(f, "accepted {b} s{s}"),
            "nack" => write!(f, "nack {b} promised=b{}.{}", a >> 16, a & 0xFFFF),
            "heartbeat" => write!(f, "heartbeat {b} commit=s{s} trim=s{a}"),
            "repeat" => write!(f, "repeat [s{s}, s{a})"),
            "learn" => write!(f, "learn {b} s{s} len={a}"),
            "trimmed" => write!(f, "trimmed low=s{s}"),
            "applied" => write!(f, "applied s{s}"),
            "snapshot_request" => {
                write!(f, "snapshot-request min=s{s} snap=s{} offset={}", a >> 32, a & 0xFFFF_FFFF)
            }
            "snapshot_chunk" => {
                write!(f, "snapshot-chunk s{s} offset={} len={}", a >> 16, a & 0xFFFF)
            }
            "recovery_query" => write!(f, "recovery-query nonce={a:x}"),
            "recovery_info" => write!(f, "recovery-info {b} high=s{s} recovering={a}"),
            k => write!(f, "{k} {b} s{s} {a}"),
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DropCause {
    Loss,
    Partition,
    Down,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum NetChange {
    /// The node can neither send nor receive (both directions cut to everyone).
    Isolate(NodeIx),
    /// Both directions between two nodes cut.
    Cut(NodeIx, NodeIx),
    /// Messages from the first to the second are dropped; the reverse direction works.
    OneWay(NodeIx, NodeIx),
    /// The nodes in the mask are cut from the others (both directions).
    Split(u64),
    /// One episode healed (the matrix is recomputed from the remaining ones).
    Healed,
    /// Every cut and drop removed.
    RecoverAll,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ProposeOutcome {
    Ok,
    NotLeader(Option<NodeIx>),
    Busy,
    TooLarge,
    /// The node is down or paused.
    NoAnswer,
}

/// One thing that happened. `Decide.value_hash` is the low 32 bits of the value's FNV hash.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TraceEvent {
    Send {
        from: NodeIx,
        to: NodeIx,
        msg: MsgSummary,
        delay_steps: u32,
    },
    Duplicate {
        from: NodeIx,
        to: NodeIx,
        msg: MsgSummary,
        delay_steps: u32,
    },
    Deliver {
        from: NodeIx,
        to: NodeIx,
        msg: MsgSummary,
    },
    Drop {
        from: NodeIx,
        to: NodeIx,
        msg: MsgSummary,
        cause: DropCause,
    },
    /// A message reached a paused node: it waits until the node resumes.
    Held {
        from: NodeIx,
        to: NodeIx,
        msg: MsgSummary,
    },
    Crash {
        node: NodeIx,
        /// Pending (unsynced) writes the crash lost.
        lost: u32,
        /// The disk was wiped too.
        wipe: bool,
    },
    SyncFailed {
        node: NodeIx,
    },
    SnapshotOffered {
        node: NodeIx,
        upto: u64,
        bytes: u32,
    },
    Rejoined {
        node: NodeIx,
        promised: Ballot,
        low: u64,
    },
    Pause {
        node: NodeIx,
        until_tick: u64,
    },
    Resume {
        node: NodeIx,
    },
    Restart {
        node: NodeIx,
        incarnation: u32,
    },
    Net(NetChange),
    Propose {
        client: u32,
        seq: u32,
        pid: u64,
        node: NodeIx,
        outcome: ProposeOutcome,
    },
    Flush {
        node: NodeIx,
    },
    ClientTimeout {
        client: u32,
        seq: u32,
        pid: u64,
    },
    ClientDone {
        client: u32,
        seq: u32,
        slot: u64,
    },
    Decide {
        node: NodeIx,
        slot: u64,
        commands: u32,
        value_hash: u32,
    },
    BecameLeader {
        node: NodeIx,
        ballot: Ballot,
    },
    SteppedDown {
        node: NodeIx,
        ballot: Ballot,
        dropped_batches: u32,
    },
    LeaderIs {
        node: NodeIx,
        ballot: Ballot,
    },
    SnapshotNeeded {
        node: NodeIx,
        low: u64,
    },
    SnapshotInstalled {
        node: NodeIx,
        source: NodeIx,
        upto: u64,
    },
    LivenessPhase,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TraceEvent::*;
        match *self {
            Send { from, to, msg, delay_steps } => {
                write!(f, "send n{from}->n{to} {msg} (+{delay_steps} steps)")
            }
            Duplicate { from, to, msg, delay_steps } => {
                write!(f, "dup  n{from}->n{to} {msg} (+{delay_steps} steps)")
            }
            Deliver { from, to, msg } => write!(f, "recv n{from}->n{to} {msg}"),
            Drop { from, to, msg, cause } => write!(f, "drop n{from}->n{to} {msg} ({cause:?})"),
            Held { from, to, msg } => write!(f, "held n{from}->n{to} {msg} (paused)"),
            Crash { node, lost, wipe } => {
                write!(f, "CRASH n{node} lost={lost} unsynced writes")?;
                if wipe {
                    write!(f, " and its disk (WIPED)")?;
                }
                Ok(())
            }
            SyncFailed { node } => write!(f, "SYNC FAILED n{node}: stopping it"),
            SnapshotOffered { node, upto, bytes } => {
                write!(f, "snapshot-offer n{node} upto=s{upto} bytes={bytes}")
            }
            Rejoined { node, promised, low } => {
                write!(f, "REJOINED n{node} promised={promised} low=s{low}")
            }
            Pause { node, until_tick } => write!(f, "PAUSE n{node} until tick {until_tick}"),
            Resume { node } => write!(f, "RESUME n{node}"),
            Restart { node, incarnation } => write!(f, "RESTART n{node} incarnation={incarnation}"),
            Net(c) => match c {
                NetChange::Isolate(n) => write!(f, "NET isolate n{n}"),
                NetChange::Cut(a, b) => write!(f, "NET cut n{a}<->n{b}"),
                NetChange::OneWay(a, b) => write!(f, "NET cut n{a}->n{b}"),
                NetChange::Split(m) => write!(f, "NET split {m:#b} | rest"),
                NetChange::Healed => write!(f, "NET heal one episode"),
                NetChange::RecoverAll => write!(f, "NET recover all"),
            },
            Propose { client, seq, pid, node, outcome } => {
                write!(f, "propose c{client}#{seq} p{pid} at n{node}: {outcome:?}")
            }
            Flush { node } => write!(f, "flush n{node}"),
            ClientTimeout { client, seq, pid } => write!(f, "timeout c{client}#{seq} p{pid}"),
            ClientDone { client, seq, slot } => write!(f, "done c{client}#{seq} at s{slot}"),
            Decide { node, slot, commands, value_hash } => {
                write!(f, "decide n{node} s{slot} cmds={commands} h={value_hash:08x}")
            }
            BecameLeader { node, ballot } => write!(f, "LEADER n{node} {ballot}"),
            SteppedDown { node, ballot, dropped_batches } => {
                write!(f, "stepdown n{node} {ballot} dropped={dropped_batches}")
            }
            LeaderIs { node, ballot } => write!(f, "leader-is n{node} {ballot}"),
            SnapshotNeeded { node, low } => write!(f, "snapshot-needed n{node} low=s{low}"),
            SnapshotInstalled { node, source, upto } if source == NodeIx::MAX => {
                write!(f, "snapshot n{node} fetched upto=s{upto}")
            }
            SnapshotInstalled { node, source, upto } => {
                write!(f, "snapshot n{node} from n{source} upto=s{upto}")
            }
            LivenessPhase => {
                write!(f, "=== liveness phase: faults off, network healed, nodes up ===")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct TraceLine {
    pub step: u64,
    pub event: TraceEvent,
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>6}.{} {}", self.step / STEPS_PER_TICK, self.step % STEPS_PER_TICK, self.event)
    }
}

/// FNV-1a, 64-bit: tiny, deterministic, and independent of the process (unlike std's
/// randomly keyed hasher).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xCBF2_9CE4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
}

/// FNV-1a of a byte string.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    h.finish()
}

pub struct Trace {
    ring: VecDeque<TraceLine>,
    cap: usize,
    hash: Fnv,
    lines: u64,
    /// Where every line goes as it happens, if anywhere (dropped at the first write error,
    /// e.g. a closed pipe).
    print: Option<std::io::BufWriter<std::io::Stdout>>,
}

impl Trace {
    /// `cap`: lines kept for the failure report. `print`: also print every line to stdout as
    /// it happens (the binary's `--seed` mode).
    pub fn new(cap: usize, print: bool) -> Trace {
        Trace {
            ring: VecDeque::with_capacity(cap.min(1 << 16)),
            cap,
            hash: Fnv::default(),
            lines: 0,
            print: print.then(|| std::io::BufWriter::new(std::io::stdout())),
        }
    }

    #[inline]
    pub fn record(&mut self, step: u64, event: TraceEvent) {
        let line = TraceLine { step, event };
        line.hash(&mut self.hash);
        self.lines += 1;
        if let Some(out) = &mut self.print {
            use std::io::Write;
            if writeln!(out, "{line}").is_err() {
                self.print = None;
            }
        }
        if self.cap == 0 {
            return;
        }
        if self.ring.len() == self.cap {
            self.ring.pop_front();
        }
        self.ring.push_back(line);
    }

    /// The running hash over every line recorded so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }
    pub fn lines(&self) -> u64 {
        self.lines
    }
    /// The last lines kept, oldest first, formatted.
    pub fn tail(&self) -> Vec<String> {
        self.ring.iter().map(|l| l.to_string()).collect()
    }
}
