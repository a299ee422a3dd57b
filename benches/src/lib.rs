//! A lossless, in-memory driver for one Paxos group (every node in one thread, messages
//! delivered in FIFO order). Used by the benchmarks to measure the protocol's own cost with
//! no I/O, and by tests that count allocations in steady state.

use bytes::Bytes;
use paxos_core::{
    BytesBuilder, Config, Decided, MemNode, MemStorage, Message, Outgoing, ReplicaId,
};
use std::collections::VecDeque;

pub struct LocalGroup {
    pub nodes: Vec<MemNode>,
    queue: VecDeque<(ReplicaId, ReplicaId, Message<Bytes>)>,
    out: Vec<Outgoing<Bytes>>,
    decided: Vec<Decided<Bytes>>,
    /// Slots delivered by node 0's learner so far.
    pub decided_slots: u64,
    pub decided_commands: u64,
}

impl LocalGroup {
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
            queue: VecDeque::with_capacity(4096),
            out: Vec::with_capacity(1024),
            decided: Vec::with_capacity(1024),
            decided_slots: 0,
            decided_commands: 0,
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
        g
    }

    /// Delivers messages until the group is quiet.
    pub fn run(&mut self) {
        loop {
            for i in 0..self.nodes.len() {
                let node = &mut self.nodes[i];
                node.sync().expect("memory storage");
                node.take_messages(&mut self.out);
                let from = node.id();
                for m in self.out.drain(..) {
                    self.queue.push_back((from, m.to, m.msg));
                }
                node.take_decided(&mut self.decided);
                if i == 0 {
                    for d in self.decided.iter() {
                        self.decided_slots += 1;
                        self.decided_commands +=
                            paxos_core::payload::commands(&d.value).count() as u64;
                    }
                }
                self.decided.clear();
            }
            if self.queue.is_empty() {
                break;
            }
            while let Some((from, to, msg)) = self.queue.pop_front() {
                self.nodes[to.0 as usize].step(from, msg);
            }
        }
    }

    /// Proposes `batch` commands of `value` at the leader, seals them into one slot and runs
    /// the group until quiet.
    pub fn commit_batch(&mut self, value: &[u8], batch: usize) {
        for _ in 0..batch {
            self.nodes[0].propose(value).expect("leader accepts");
        }
        self.nodes[0].flush();
        self.run();
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
    // No timers fire during a measurement.
    cfg.heartbeat_ticks = 1_000_000;
    cfg.election_timeout_min_ticks = 2_000_000;
    cfg.election_timeout_max_ticks = 3_000_000;
    cfg
}
