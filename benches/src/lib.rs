//! A lossless, in-memory driver for one Paxos group (every node in one thread, messages
//! delivered in FIFO order per link). Used by the benchmarks to measure the protocol's own cost with
//! no I/O, and by tests that count allocations in steady state.

use bytes::Bytes;
use paxos_core::{BytesBuilder, Config, Decided, Event, MemNode, MemStorage, Outgoing, ReplicaId};

pub struct LocalGroup {
    pub nodes: Vec<MemNode>,
    out: Vec<Outgoing<Bytes>>,
    decided: Vec<Decided<Bytes>>,
    events: Vec<Event>,
    /// Slots delivered by node 0's learner so far.
    pub decided_slots: u64,
    pub decided_commands: u64,
    /// Slots committed since the nodes last ticked (see [`LocalGroup::TICK_EVERY_SLOTS`]).
    since_tick: u32,
}

impl LocalGroup {
    /// Every node ticks once per this many slots: the leader heartbeats and learners report
    /// what they applied (`bench_config` makes both happen every tick), so the leader
    /// announces a trim point and the acceptors forget what everyone applied, as in a real
    /// deployment. Without it the acceptors' logs (and every value in them) grow for the
    /// whole run and the measurement includes page faults a real group does not have.
    pub const TICK_EVERY_SLOTS: u32 = 64;

    /// `n` co-located replicas with `cfg` applied; runs ticks until node 0 leads.
    pub fn new(cfg: Config) -> LocalGroup {
        let n = cfg.members.len();
        let nodes = (0..n)
            .map(|i| {
                MemNode::new(
                    cfg.clone(),
                    ReplicaId(i as u16),
                    MemStorage::default(),
                    BytesBuilder::default(),
                    1000 + i as u64,
                )
                .expect("valid config")
            })
            .collect();
        let mut g = LocalGroup {
            nodes,
            out: Vec::with_capacity(1024),
            decided: Vec::with_capacity(1024),
            events: Vec::with_capacity(16),
            decided_slots: 0,
            decided_commands: 0,
            since_tick: 0,
        };
        // Only node 0 ticks until it leads: deterministic leadership.
        for _ in 0..=cfg.election_timeout_max_ticks {
            g.nodes[0].tick();
            if g.nodes[0].has_output() {
                g.run();
            }
            if g.nodes[0].is_leader() {
                break;
            }
        }
        assert!(g.nodes[0].is_leader(), "node 0 did not become leader");
        g.drop_events();
        g
    }

    /// Delivers messages until the group is quiet. Each sweep visits every node in turn:
    /// sync (the durability contract), drain its decided slots, then hand each message it
    /// queued straight to the destination's `step` (its own ones included). Messages a step
    /// produces wait in that node's queue for its next visit, so every link stays FIFO and
    /// every message is delivered exactly once; the group is quiet after a sweep that found
    /// no messages anywhere.
    pub fn run(&mut self) {
        loop {
            let mut delivered = false;
            for i in 0..self.nodes.len() {
                let node = &mut self.nodes[i];
                if !node.has_output() {
                    continue;
                }
                if node.needs_sync() {
                    node.sync().expect("memory storage");
                }
                node.take_messages(&mut self.out);
                node.take_decided(&mut self.decided);
                // Everything delivered counts as applied (memory storage): trim follows.
                let next = node.next_to_deliver();
                node.set_applied(next);
                let from = node.id();
                if !self.decided.is_empty() {
                    if i == 0 {
                        for d in self.decided.iter() {
                            self.decided_slots += 1;
                            self.decided_commands +=
                                paxos_core::payload::commands(&d.value).count() as u64;
                        }
                    }
                    self.decided.clear();
                }
                if !self.out.is_empty() {
                    delivered = true;
                    for m in self.out.drain(..) {
                        self.nodes[m.to.0 as usize].step(from, m.msg);
                    }
                }
            }
            if !delivered {
                break;
            }
        }
    }

    /// Proposes `batch` commands of `value` at the leader, seals them into one slot and runs
    /// the group until quiet; every `TICK_EVERY_SLOTS` slots, ticks every node and runs the
    /// group until quiet again.
    pub fn commit_batch(&mut self, value: &[u8], batch: usize) {
        for _ in 0..batch {
            self.nodes[0].propose(value).expect("leader accepts");
        }
        self.nodes[0].flush();
        self.run();
        self.since_tick += 1;
        if self.since_tick >= Self::TICK_EVERY_SLOTS {
            self.since_tick = 0;
            self.tick();
        }
    }

    /// Ticks every node once and runs the group until quiet.
    pub fn tick(&mut self) {
        for node in self.nodes.iter_mut() {
            node.tick();
        }
        self.run();
        self.drop_events();
    }

    /// Drains and drops every node's events (leadership news only: none in steady state,
    /// so `run` leaves them to the ticks).
    fn drop_events(&mut self) {
        for node in self.nodes.iter_mut() {
            node.take_events(&mut self.events);
        }
        self.events.clear();
    }
}

/// The benchmark configuration: `n` replicas, majority quorums, batches of up to `batch`.
pub fn bench_config(n: u16, batch: u32) -> Config {
    let mut cfg = Config::replicas(n);
    cfg.batch_max_commands = batch;
    // 32 records of 64-byte commands are 2176 bytes: jumbo-sized values, so that the batch
    // bound is the command count, not the byte budget.
    cfg.batch_max_bytes = 8192;
    cfg.max_message_bytes = 9000;
    cfg.window = 64;
    // Time passes only in `LocalGroup::tick` (every `TICK_EVERY_SLOTS` slots): each tick the
    // leader heartbeats (with the trim point) and every learner reports what it applied.
    // Accepts and heartbeats keep the followers from ever starting an election; node 0's
    // timeout makes it the leader within a few ticks of `LocalGroup::new`. No batch is
    // open and no accept is unacknowledged when a tick comes (the group is quiet), so no
    // other timer has work to do.
    cfg.heartbeat_ticks = 1;
    cfg.applied_report_ticks = 1;
    cfg.election_timeout_min_ticks = 8;
    cfg.election_timeout_max_ticks = 16;
    cfg
}
