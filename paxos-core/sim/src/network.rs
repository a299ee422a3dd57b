//! The simulated network: a time-ordered queue of messages in flight, with loss,
//! duplication, random delay (hence reordering), a long tail, and partitions in the style of
//! etcd raft's test network (`drop`, `cut`, `isolate`, `recover`).
//!
//! Partitions come in two layers. *Episodes* are drawn by the fault schedule and heal on their
//! own (and all at once when the liveness phase starts); *fixed* cuts are set by a test and
//! stay until [`Network::recover`]. A message is dropped if its link is cut when it is sent or
//! when it would arrive.

use crate::rng::Rng;
use crate::trace::{DropCause, MsgSummary, NetChange, NodeIx, Trace, TraceEvent};
use bytes::Bytes;
use core::cmp::Ordering;
use paxos_core::Message;
use std::collections::BinaryHeap;

/// Delay, loss and duplication of every link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkParams {
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    pub delay_min_steps: u32,
    pub delay_max_steps: u32,
    pub tail_ppm: u32,
    pub tail_max_steps: u32,
}

/// A message in flight, ordered by arrival step, then by send order (a min-heap via a
/// reversed `Ord`).
pub struct InFlight {
    pub at_step: u64,
    pub seq: u64,
    pub from: NodeIx,
    pub to: NodeIx,
    pub msg: Message<Bytes>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at_step, self.seq) == (other.at_step, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_step, other.seq).cmp(&(self.at_step, self.seq))
    }
}

/// A partition episode from the fault schedule.
#[derive(Clone, Copy, Debug)]
struct Episode {
    change: NetChange,
    until_tick: u64,
}

pub struct Network {
    n: usize,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    pub params: LinkParams,
    episodes: Vec<Episode>,
    /// Links cut by episodes, `from * n + to`.
    episode_cut: Vec<bool>,
    /// Links cut by a test (`cut`, `isolate`, ...).
    fixed_cut: Vec<bool>,
    /// Extra loss per link set by a test (`drop`).
    fixed_drop_ppm: Vec<u32>,
}

impl Network {
    pub fn new(n: usize, params: LinkParams) -> Network {
        Network {
            n,
            queue: BinaryHeap::with_capacity(1024),
            seq: 0,
            params,
            episodes: Vec::new(),
            episode_cut: vec![false; n * n],
            fixed_cut: vec![false; n * n],
            fixed_drop_ppm: vec![0; n * n],
        }
    }

    #[inline]
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        let i = from * self.n + to;
        self.episode_cut[i] || self.fixed_cut[i]
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Puts a message on the wire (or drops it), recording what happened.
    pub fn send(
        &mut self,
        from: NodeIx,
        to: NodeIx,
        msg: Message<Bytes>,
        now_step: u64,
        rng: &mut Rng,
        trace: &mut Trace,
    ) {
        let summary = MsgSummary::of(&msg);
        let (f, t) = (usize::from(from), usize::from(to));
        if self.is_cut(f, t) {
            trace.record(
                now_step,
                TraceEvent::Drop { from, to, msg: summary, cause: DropCause::Partition },
            );
            return;
        }
        if rng.chance(self.params.loss_ppm) || rng.chance(self.fixed_drop_ppm[f * self.n + t]) {
            trace.record(
                now_step,
                TraceEvent::Drop { from, to, msg: summary, cause: DropCause::Loss },
            );
            return;
        }
        if rng.chance(self.params.dup_ppm) {
            let delay = self.draw_delay(rng);
            trace.record(
                now_step,
                TraceEvent::Duplicate { from, to, msg: summary, delay_steps: delay },
            );
            self.push(now_step + u64::from(delay), from, to, msg.clone());
        }
        let delay = self.draw_delay(rng);
        trace.record(now_step, TraceEvent::Send { from, to, msg: summary, delay_steps: delay });
        self.push(now_step + u64::from(delay), from, to, msg);
    }

    fn draw_delay(&self, rng: &mut Rng) -> u32 {
        let p = &self.params;
        if p.tail_max_steps > 0 && rng.chance(p.tail_ppm) {
            return rng.range(
                u64::from(p.delay_max_steps),
                u64::from(p.tail_max_steps.max(p.delay_max_steps)),
            ) as u32;
        }
        rng.range(u64::from(p.delay_min_steps), u64::from(p.delay_max_steps.max(p.delay_min_steps)))
            as u32
    }

    /// Puts a message back to arrive at `at_step` (a paused receiver).
    pub fn hold(&mut self, m: InFlight, at_step: u64) {
        self.push(at_step, m.from, m.to, m.msg);
    }

    fn push(&mut self, at_step: u64, from: NodeIx, to: NodeIx, msg: Message<Bytes>) {
        self.seq += 1;
        self.queue.push(InFlight { at_step, seq: self.seq, from, to, msg });
    }

    /// The next message due at or before `now_step`, if any.
    pub fn pop_due(&mut self, now_step: u64) -> Option<InFlight> {
        if self.queue.peek()?.at_step <= now_step {
            self.queue.pop()
        } else {
            None
        }
    }

    // --- etcd-style controls (fixed layer) ---

    /// Cut both directions between `a` and `b`.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.fixed_cut[a * self.n + b] = true;
        self.fixed_cut[b * self.n + a] = true;
    }
    /// Cut messages from `from` to `to` only.
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        self.fixed_cut[from * self.n + to] = true;
    }
    /// Cut `node` from everyone, both directions.
    pub fn isolate(&mut self, node: usize) {
        for other in 0..self.n {
            if other != node {
                self.cut(node, other);
            }
        }
    }
    /// Lose messages from `from` to `to` with probability `ppm` (on top of the link's loss).
    pub fn drop(&mut self, from: usize, to: usize, ppm: u32) {
        self.fixed_drop_ppm[from * self.n + to] = ppm;
    }
    /// Removes every fixed cut and drop and every episode.
    pub fn recover(&mut self) {
        self.fixed_cut.fill(false);
        self.fixed_drop_ppm.fill(0);
        self.heal_episodes();
    }

    // --- the fault schedule's episodes ---

    /// Starts a random partition episode lasting until `until_tick`.
    pub fn start_episode(&mut self, rng: &mut Rng, until_tick: u64) -> NetChange {
        let n = self.n as u64;
        let a = rng.below(n) as NodeIx;
        let b = ((u64::from(a) + rng.range(1, n - 1)) % n) as NodeIx;
        let change = match rng.below(4) {
            0 => NetChange::Isolate(a),
            1 => NetChange::Cut(a, b),
            2 => NetChange::OneWay(a, b),
            _ => {
                // A non-empty proper subset, usually a minority but not always.
                let mut mask = 0u64;
                while mask == 0 || mask == (1u64 << n) - 1 {
                    mask = rng.below(1u64 << n);
                }
                NetChange::Split(mask)
            }
        };
        self.episodes.push(Episode { change, until_tick });
        self.apply(change);
        change
    }

    fn apply(&mut self, change: NetChange) {
        let n = self.n;
        let mut set = |f: usize, t: usize| self.episode_cut[f * n + t] = true;
        match change {
            NetChange::Isolate(a) => {
                for o in 0..n {
                    if o != usize::from(a) {
                        set(usize::from(a), o);
                        set(o, usize::from(a));
                    }
                }
            }
            NetChange::Cut(a, b) => {
                set(usize::from(a), usize::from(b));
                set(usize::from(b), usize::from(a));
            }
            NetChange::OneWay(a, b) => set(usize::from(a), usize::from(b)),
            NetChange::Split(mask) => {
                for f in 0..n {
                    for t in 0..n {
                        if (mask >> f) & 1 != (mask >> t) & 1 {
                            set(f, t);
                        }
                    }
                }
            }
            NetChange::Healed | NetChange::RecoverAll => {}
        }
    }

    /// Ends the episodes due by `tick`; returns how many ended.
    pub fn expire_episodes(&mut self, tick: u64) -> usize {
        let before = self.episodes.len();
        self.episodes.retain(|e| e.until_tick > tick);
        let ended = before - self.episodes.len();
        if ended > 0 {
            self.episode_cut.fill(false);
            for i in 0..self.episodes.len() {
                let c = self.episodes[i].change;
                self.apply(c);
            }
        }
        ended
    }

    pub fn heal_episodes(&mut self) {
        self.episodes.clear();
        self.episode_cut.fill(false);
    }

    pub fn episodes_active(&self) -> usize {
        self.episodes.len()
    }
}
