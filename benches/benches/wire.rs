//! Encode and decode of each protocol message kind (64-byte values):
//! `cargo bench -p paxos-benches --bench wire`. Target: an Accept in <= 20 ns each way.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use paxos_core::wire::{decode_borrowed, encode, encoded_len, Route};
use paxos_core::{Ballot, GroupId, Message, ReplicaId, Slot, SlotValue};

fn messages(value: &[u8]) -> Vec<Message<&[u8]>> {
    let b = Ballot::new(7, ReplicaId(1));
    vec![
        Message::Prepare { ballot: b, from: Slot(10) },
        Message::Promise {
            ballot: b,
            from: Slot(10),
            low: Slot(3),
            end: Slot(12),
            high: Slot(12),
            chunk: 0,
            chunks: 1,
            entries: vec![
                SlotValue { slot: Slot(10), ballot: b, value },
                SlotValue { slot: Slot(11), ballot: b, value },
            ],
        },
        Message::Accept { ballot: b, slot: Slot(42), commit: Slot(40), value },
        Message::Accepted { ballot: b, slot: Slot(42) },
        Message::Nack { ballot: b, promised: Ballot::new(8, ReplicaId(2)) },
        Message::Heartbeat { ballot: b, commit: Slot(40), trim: Slot(30) },
        Message::Repeat { from: Slot(5), to: Slot(9) },
        Message::Learn { ballot: b, slot: Slot(42), value },
        Message::Trimmed { low: Slot(30) },
        Message::Applied { applied: Slot(41) },
    ]
}

fn codec(c: &mut Criterion) {
    let value = [0x42u8; 64];
    let route = Route { group: GroupId(0), from: ReplicaId(1), to: ReplicaId(2) };
    let mut buf = vec![0u8; 2048];
    let mut g = c.benchmark_group("wire");
    for msg in messages(&value) {
        let name = msg.kind_name();
        let len = encoded_len(&msg);
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| encode(route, black_box(&msg), &mut buf).unwrap())
        });
        let n = encode(route, &msg, &mut buf).unwrap();
        assert_eq!(n, len);
        let bytes = buf[..n].to_vec();
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| decode_borrowed(black_box(&bytes)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
