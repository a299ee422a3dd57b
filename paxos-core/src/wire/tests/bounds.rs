//! The sizes the core budgets with (promise chunking, batch limits) against the encoder.

use super::*;
use crate::acceptor::{PROMISE_ENTRY_BYTES, PROMISE_HEADER_BYTES};
use crate::config::ACCEPT_OVERHEAD_BYTES;

#[test]
fn promise_fits_the_acceptors_budget() {
    let values: [&[u8]; 4] = [b"", b"abc", &[1; 100], &[2; 1300]];
    for n in 0..=values.len() {
        let entries: Vec<SlotValue<&[u8]>> = values[..n]
            .iter()
            .enumerate()
            .map(|(i, v)| SlotValue { slot: Slot(i as u64), ballot: b(9, 1), value: *v })
            .collect();
        let budget: usize = PROMISE_HEADER_BYTES
            + entries.iter().map(|e| PROMISE_ENTRY_BYTES + e.value.len()).sum::<usize>();
        let m = Message::Promise {
            ballot: b(u32::MAX, u16::MAX),
            from: Slot(u64::MAX),
            low: Slot(u64::MAX),
            end: Slot(u64::MAX),
            high: Slot(u64::MAX),
            chunk: 0,
            chunks: 1,
            entries,
        };
        let len = encoded_len(&m);
        assert!(len <= budget, "{n} entries: {len} > {budget}");
        let mut buf = vec![0u8; len];
        assert_eq!(encode(R12, &m, &mut buf), Ok(len));
    }
}

#[test]
fn accept_overhead_bounds_the_encoding() {
    for v in [&b""[..], b"xyz", &[0; 1024]] {
        let m = Message::Accept { ballot: b(1, 2), slot: Slot(3), commit: Slot(2), value: v };
        let len = encoded_len(&m);
        assert!(len - v.len() <= ACCEPT_OVERHEAD_BYTES as usize);
        let mut buf = vec![0u8; len];
        assert_eq!(encode(R12, &m, &mut buf), Ok(len));
    }
}

/// A rough cost of the data path's most common message. Run with
/// `cargo test -p paxos-core --release -- --ignored --nocapture accept_codec_cost`.
#[test]
#[ignore]
fn accept_codec_cost() {
    use std::hint::black_box;
    use std::time::Instant;
    const N: u32 = 5_000_000;
    let value = [0x5Au8; 64];
    let m = Message::Accept {
        ballot: b(7, 1),
        slot: Slot(1 << 40),
        commit: Slot(1 << 39),
        value: &value[..],
    };
    let mut buf = [0u8; 128];
    let t = Instant::now();
    for i in 0..N {
        let m = black_box(&m);
        let n = encode(Route { to: ReplicaId(i as u16), ..R12 }, m, black_box(&mut buf)).unwrap();
        black_box(n);
    }
    let enc = t.elapsed() / N;
    let len = encoded_len(&m);
    let t = Instant::now();
    for _ in 0..N {
        let bytes = black_box(&buf[..len]);
        black_box(decode_borrowed(bytes).unwrap());
    }
    let dec = t.elapsed() / N;
    let t = Instant::now();
    for _ in 0..N {
        black_box(peek_header(black_box(&buf[..len])).unwrap());
    }
    let peek = t.elapsed() / N;
    println!("accept with a 64-byte value ({len} bytes): encode {enc:?}, decode {dec:?}, peek_header {peek:?}");
}
