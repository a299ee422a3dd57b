//! Protocol cost with no I/O: `cargo bench -p paxos-benches --bench core`.
//!
//! - `group3/unbatched/*`: all protocol work of a 3-replica group (leader, 3 acceptors, 3
//!   learners) per chosen command, one command per slot, including the harness's delivery
//!   and, every 64 slots, a tick of every node (heartbeat with the trim point, Applied
//!   reports, the acceptors forgetting what all applied). `leader-acks`: the default
//!   (`accepted_to_learners = false`: 3 Accept, 3 Accepted to the leader); `fanout`: 3
//!   Accept, 3x3 Accepted to every learner.
//! - `group3/batch32/*`: the same with 32 commands per slot, reported per command.
//! - `acceptor/accept`: one replica handling one Accept (store + queue 3 Accepted; its
//!   learner records the value and decides the slot the Accept's commit point covers).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paxos_benches::{bench_config, LocalGroup};
use paxos_core::{
    Ballot, BytesBuilder, Decided, MemNode, MemStorage, Message, Outgoing, ReplicaId, Slot,
};

fn group(c: &mut Criterion) {
    let value = [0xabu8; 64];
    let mut g = c.benchmark_group("group3");
    for (mode, fanout) in [("leader-acks", false), ("fanout", true)] {
        for batch in [1usize, 32] {
            g.throughput(Throughput::Elements(batch as u64));
            let name = if batch == 1 { "unbatched" } else { "batch32" };
            g.bench_function(BenchmarkId::new(name, mode), |b| {
                let mut cfg = bench_config(3, batch as u32);
                cfg.accepted_to_learners = fanout;
                let mut grp = LocalGroup::new(cfg);
                b.iter(|| grp.commit_batch(&value, batch));
                assert!(grp.decided_commands > 0);
            });
        }
    }
    g.finish();
}

fn acceptor(c: &mut Criterion) {
    let mut cfg = bench_config(3, 1);
    // Three Accepted per Accept, as in the earlier figures.
    cfg.accepted_to_learners = true;
    let mut node =
        MemNode::new(cfg, ReplicaId(1), MemStorage::default(), BytesBuilder::default(), 1).unwrap();
    let ballot = Ballot::new(1, ReplicaId(0));
    let value = Bytes::from_static(&[7u8; 64]);
    let mut out: Vec<Outgoing<Bytes>> = Vec::with_capacity(64);
    // The learner decides slots below each Accept's commit point: drain them as a driver
    // would (left in the node they piled up for the whole run).
    let mut decided: Vec<Decided<Bytes>> = Vec::with_capacity(64);
    let mut slot = 0u64;
    let mut g = c.benchmark_group("acceptor");
    g.throughput(Throughput::Elements(1));
    g.bench_function("accept", |b| {
        b.iter(|| {
            let msg = Message::Accept {
                ballot,
                slot: Slot(slot),
                commit: Slot(slot.saturating_sub(8)),
                value: value.clone(),
            };
            node.step(ReplicaId(0), msg);
            // The Accepted is held until the write is synced (a no-op for memory storage).
            node.sync().expect("memory storage");
            node.take_messages(&mut out);
            out.clear();
            node.take_decided(&mut decided);
            decided.clear();
            slot += 1;
            if slot.is_multiple_of(4096) {
                // Keep the acceptor's log short, as heartbeats with a trim point would.
                node.step(
                    ReplicaId(0),
                    Message::Heartbeat { ballot, commit: Slot(slot), trim: Slot(slot) },
                );
                node.sync().expect("memory storage");
                node.take_messages(&mut out);
                out.clear();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, group, acceptor);
criterion_main!(benches);
