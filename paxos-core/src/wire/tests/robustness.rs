//! Malformed input: every prefix, every specific error, and a deterministic fuzz loop.

use super::golden::{
    ACCEPT, CLIENT_REPLY, CLIENT_REPLY_BATCH, CLIENT_REQUEST_BATCH, GOLDENS, PREPARE, PROMISE,
    RECOVERY_INFO, SNAPSHOT_CHUNK,
};
use super::*;

fn with(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at..at + value.len()].copy_from_slice(value);
    v
}

fn err(bytes: &[u8]) -> WireError {
    decode_borrowed(bytes).expect_err("malformed input decoded")
}

#[test]
fn every_prefix_of_every_golden_is_an_error() {
    for (name, bytes, _) in GOLDENS {
        for n in 0..bytes.len() {
            let e = decode_borrowed(&bytes[..n]).expect_err(name);
            assert!(
                matches!(
                    e,
                    WireError::Truncated | WireError::LengthOverflow | WireError::TooManyEntries
                ),
                "{name}[..{n}]: {e:?}"
            );
            assert_eq!(peek_header(&bytes[..n]).is_err(), n < HEADER_LEN, "{name}[..{n}]");
        }
        assert!(decode_borrowed(bytes).is_ok(), "{name}");
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    for (name, bytes, _) in GOLDENS {
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(err(&long), WireError::TrailingBytes, "{name}");
        assert!(peek_header(&long).is_ok());
    }
}

#[test]
fn header_errors() {
    assert_eq!(err(&[]), WireError::Truncated);
    assert_eq!(err(&with(PREPARE, 0, b"XP")), WireError::BadMagic);
    assert_eq!(err(&with(PREPARE, 2, &[0])), WireError::BadVersion);
    assert_eq!(err(&with(PREPARE, 2, &[1])), WireError::BadVersion);
    assert_eq!(err(&with(PREPARE, 2, &[3])), WireError::BadVersion);
    for kind in [0u8, 21, 22, 0xFF] {
        assert_eq!(err(&with(PREPARE, 3, &[kind])), WireError::UnknownKind, "kind {kind}");
    }
    assert_eq!(err(&with(PREPARE, 10, &[1, 0])), WireError::ReservedNonZero);
    assert_eq!(err(&with(PREPARE, 11, &[0x80])), WireError::ReservedNonZero);
    // Peek reports the same header errors.
    assert_eq!(peek_header(&with(PREPARE, 0, b"PY")), Err(WireError::BadMagic));
    assert_eq!(peek_header(&with(PREPARE, 3, &[0])), Err(WireError::UnknownKind));
}

#[test]
fn body_errors() {
    // A ballot's reserved bytes (offset 18 in every ballot-first body).
    assert_eq!(err(&with(PREPARE, 18, &[0, 1])), WireError::ReservedNonZero);
    // The reply's reserved byte (offset 29).
    assert_eq!(err(&with(CLIENT_REPLY, 29, &[1])), WireError::ReservedNonZero);
    // Accept's value length (offset 36) one past the end, and u32::MAX.
    assert_eq!(err(&with(ACCEPT, 36, &4u32.to_le_bytes())), WireError::LengthOverflow);
    assert_eq!(err(&with(ACCEPT, 36, &u32::MAX.to_le_bytes())), WireError::LengthOverflow);
    // A shorter length leaves trailing bytes.
    assert_eq!(err(&with(ACCEPT, 36, &2u32.to_le_bytes())), WireError::TrailingBytes);
    // Promise: chunk (offset 52) and chunks (54).
    assert_eq!(err(&with(PROMISE, 54, &[0, 0])), WireError::BadChunk);
    assert_eq!(err(&with(PROMISE, 52, &[1, 0])), WireError::BadChunk);
    assert_eq!(err(&with(PROMISE, 52, &[5, 0, 3, 0])), WireError::BadChunk);
    // Promise entry count (offset 56): more than the rest can hold, before any allocation.
    assert_eq!(err(&with(PROMISE, 56, &u32::MAX.to_le_bytes())), WireError::TooManyEntries);
    assert_eq!(err(&with(PROMISE, 56, &3u32.to_le_bytes())), WireError::TooManyEntries);
    // Fewer entries than present: trailing bytes.
    assert_eq!(err(&with(PROMISE, 56, &1u32.to_le_bytes())), WireError::TrailingBytes);
    // Entry 0's value length (offset 76) past the end.
    assert_eq!(err(&with(PROMISE, 76, &100u32.to_le_bytes())), WireError::LengthOverflow);
    // Entry 1's ballot reserved bytes (offset 96).
    assert_eq!(err(&with(PROMISE, 96, &[0, 9])), WireError::ReservedNonZero);
    // RecoveryInfo's flags (offset 36): only bit 0 may be set.
    assert_eq!(err(&with(RECOVERY_INFO, 36, &[2, 0, 0, 0])), WireError::ReservedNonZero);
    assert_eq!(err(&with(RECOVERY_INFO, 39, &[0x80])), WireError::ReservedNonZero);
    // SnapshotChunk's data length (offset 44) past the end.
    assert_eq!(err(&with(SNAPSHOT_CHUNK, 44, &3u32.to_le_bytes())), WireError::LengthOverflow);
}

#[test]
fn batch_errors() {
    for g in [CLIENT_REQUEST_BATCH, CLIENT_REPLY_BATCH] {
        // Count (offset 12): zero, more than present, more than the rest could ever hold.
        assert_eq!(err(&with(g, 12, &[0, 0])), WireError::EmptyBatch);
        assert_eq!(err(&with(g, 12, &[3, 0])), WireError::TooManyEntries);
        assert_eq!(err(&with(g, 12, &[0xFF, 0xFF])), WireError::TooManyEntries);
        // Fewer than present: trailing bytes.
        assert_eq!(err(&with(g, 12, &[1, 0])), WireError::TrailingBytes);
        // The reserved bytes after the count.
        assert_eq!(err(&with(g, 14, &[0, 1])), WireError::ReservedNonZero);
        // Just the batch header, no entries.
        assert_eq!(err(&with(&g[..16], 12, &[0, 0])), WireError::EmptyBatch);
        assert_eq!(err(&g[..16]), WireError::TooManyEntries);
    }
    // Entry 0's command length (offset 32) past the end / shorter (entry 1 misparsed).
    let e = err(&with(CLIENT_REQUEST_BATCH, 32, &100u32.to_le_bytes()));
    assert_eq!(e, WireError::LengthOverflow);
    let e = err(&with(CLIENT_REQUEST_BATCH, 32, &0u32.to_le_bytes()));
    assert_eq!(e, WireError::TrailingBytes);
    // A reply entry's reserved byte: entry 0 (offset 33) and entry 1 (offset 59).
    assert_eq!(err(&with(CLIENT_REPLY_BATCH, 33, &[1])), WireError::ReservedNonZero);
    assert_eq!(err(&with(CLIENT_REPLY_BATCH, 59, &[1])), WireError::ReservedNonZero);
    // The payload closure never runs for a batch with a bad last entry.
    let mut calls = 0;
    assert!(decode(&with(CLIENT_REPLY_BATCH, 59, &[1]), |_| calls += 1).is_err());
    assert_eq!(calls, 0);
}

#[test]
fn encode_refuses_batches_decode_would_refuse() {
    let route = Route { group: GroupId(0), from: CLIENT, to: ReplicaId(0) };
    let mut buf = [0u8; 128];
    let entries = &CLIENT_REQUEST_BATCH[16..];
    let bad = |count, entries| Batch { count, entries };
    let k = Kind::ClientRequestBatch;
    assert_eq!(encode_batch(route, k, &bad(0, &b""[..]), &mut buf), Err(WireError::EmptyBatch));
    assert_eq!(encode_batch(route, k, &bad(3, entries), &mut buf), Err(WireError::TooManyEntries));
    assert_eq!(encode_batch(route, k, &bad(1, entries), &mut buf), Err(WireError::TrailingBytes));
    // Request entries are not reply entries.
    let as_replies = encode_batch(route, Kind::ClientReplyBatch, &bad(2, entries), &mut buf);
    assert!(as_replies.is_err());
    assert_eq!(
        encode_batch(route, Kind::Accept, &bad(2, entries), &mut buf),
        Err(WireError::UnknownKind)
    );
    assert_eq!(encode_batch(route, k, &bad(2, entries), &mut buf), Ok(CLIENT_REQUEST_BATCH.len()));
}

/// The builder: one entry gives the single kind, more a batch; never more than max_bytes;
/// a full builder refuses without changing anything; everything decodes back.
#[test]
fn batch_builder_round_trips() {
    let to_replica = Route { group: GroupId(3), from: CLIENT, to: ReplicaId(2) };
    let mut b = BatchBuilder::requests(200);
    assert!(b.is_empty());
    assert_eq!(b.finish(to_replica), &[] as &[u8]);
    let req = |seq, command| ClientRequest {
        client: ClientId(0x0102030405060708),
        seq: RequestSeq(seq),
        command,
    };
    assert!(b.push_request(&req(9, &b"hi"[..])));
    assert_eq!(b.datagram_len(), super::golden::CLIENT_REQUEST.len());
    assert_eq!(b.finish(to_replica), super::golden::CLIENT_REQUEST, "one entry: the single kind");
    let mut n = 1;
    while b.push_request(&req(9 + n, &[b'x'; 30][..])) {
        n += 1;
        assert!(b.datagram_len() <= 200);
    }
    let len = b.datagram_len();
    assert!(len + 50 > 200, "stopped early at {len}");
    assert_eq!(b.count(), n as usize);
    let bytes = b.finish(to_replica).to_vec();
    assert_eq!(bytes.len(), len);
    let (h, env) = decode_borrowed(&bytes).unwrap();
    assert_eq!(h.route(), to_replica);
    let Envelope::RequestBatch(batch) = env else { panic!("{env:?}") };
    let seqs: Vec<u64> = batch.requests().map(|r| r.seq.0).collect();
    assert_eq!(seqs, (9..9 + n).collect::<Vec<_>>());
    b.clear();
    assert!(b.is_empty());
    // An entry that can never fit is refused by an empty builder.
    assert!(!b.push_request(&req(1, &[0u8; 200][..])));
    assert!(b.is_empty());
    // Exactly max_bytes as a single datagram.
    assert!(b.push_request(&req(1, &[0u8; 200 - 32][..])));
    assert_eq!(b.datagram_len(), 200);

    let to_client = Route { group: GroupId(3), from: ReplicaId(2), to: CLIENT };
    let mut r = BatchBuilder::replies(1472);
    for (seq, status, hint, body) in
        [(9u64, 0u8, Some(ReplicaId(2)), &b"ok"[..]), (1, 1, None, &b""[..])]
    {
        let client = ClientId(if seq == 9 { 0x0102030405060708 } else { 5 });
        assert!(r.push_reply(&ClientReply {
            client,
            seq: RequestSeq(seq),
            status,
            leader_hint: hint,
            body
        }));
    }
    assert_eq!(r.finish(to_client), super::golden::CLIENT_REPLY_BATCH);
}

#[test]
fn batch_iterators_stop_at_a_bad_entry() {
    // A Batch that did not come from decode: iteration stops, never panics.
    let b = Batch { count: 5, entries: &CLIENT_REQUEST_BATCH[16..30] };
    assert_eq!(b.requests().count(), 0);
    let b = Batch { count: 5, entries: &CLIENT_REQUEST_BATCH[16..] };
    assert_eq!(b.requests().count(), 2);
    assert_eq!(b.replies().count(), 0, "request entries misread as replies");
}

/// Every golden, its every prefix and every single-byte change of it: the fast path and
/// the reference decoder give the same answer (the same error for invalid ones).
#[test]
fn fast_path_agrees_with_the_reference_decoder() {
    use super::super::decode::decode_reference;
    for (name, bytes, _) in GOLDENS {
        let mut cases: Vec<Vec<u8>> = (0..=bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for at in 0..bytes.len() {
            for v in [0u8, 1, 0x80, 0xFF] {
                cases.push(with(bytes, at, &[v]));
            }
        }
        cases.push([bytes, &[0u8][..]].concat());
        for c in cases {
            assert_eq!(decode(&c, |r| r), decode_reference(&c, |r| r), "{name}: {c:02x?}");
        }
    }
}

#[test]
fn payload_closure_runs_only_for_valid_datagrams() {
    let bad = with(ACCEPT, 36, &2u32.to_le_bytes()); // trailing byte after the value
    let mut calls = 0;
    assert!(decode(&bad, |_| calls += 1).is_err());
    assert_eq!(calls, 0);
    let bad = with(PROMISE, 96, &[0, 9]); // entry 0 is fine, entry 1 is not
    assert!(decode(&bad, |_| calls += 1).is_err());
    assert_eq!(calls, 0);
    assert!(decode(PROMISE, |_| calls += 1).is_ok());
    assert_eq!(calls, 2);
}

#[test]
fn encode_into_a_short_buffer_is_buffer_too_small() {
    for (route, env) in samples() {
        let len = envelope_encoded_len(&env);
        for n in 0..len {
            let mut buf = vec![0u8; n];
            assert_eq!(encode_envelope(route, &env, &mut buf), Err(WireError::BufferTooSmall));
        }
        let mut buf = vec![0u8; len + 3];
        assert_eq!(encode_envelope(route, &env, &mut buf), Ok(len));
    }
}

#[test]
fn encode_refuses_what_decode_would_refuse() {
    let mut buf = [0u8; 64];
    for (chunk, chunks) in [(0, 0), (1, 1), (7, 3)] {
        let m = Message::<&[u8]>::Promise {
            ballot: b(1, 0),
            from: Slot(0),
            low: Slot(0),
            end: Slot(0),
            high: Slot(0),
            chunk,
            chunks,
            entries: vec![],
        };
        assert_eq!(encode(R12, &m, &mut buf), Err(WireError::BadChunk));
    }
}

/// 200k random and mutated datagrams: decode never panics, every value range it hands out
/// lies inside the input, and whatever it accepts re-encodes to exactly the same bytes.
#[test]
fn fuzz_decode_never_panics() {
    let seeds: Vec<Vec<u8>> = GOLDENS
        .iter()
        .map(|g| g.1.to_vec())
        .chain(samples().iter().map(|(r, e)| to_vec(*r, e)))
        .collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut errors) = (0usize, [0usize; WireError::COUNT]);
    for _ in 0..200_000 {
        let buf = match rng.below(5) {
            // A batch of random entries of either kind, possibly with a wrong count.
            4 => {
                let reply = rng.below(2) == 0;
                let mut v =
                    vec![0x50, 0x58, 1, if reply { 19 } else { 18 }, 0, 0, 0, 0, 0, 0, 0, 0];
                let n = rng.below(4) as u16;
                let count = if rng.below(4) == 0 { rng.byte() as u16 % 6 } else { n };
                v.extend_from_slice(&count.to_le_bytes());
                v.extend_from_slice(&[0, 0]);
                for _ in 0..n {
                    v.extend((0..16).map(|_| rng.byte()));
                    if reply {
                        v.extend_from_slice(&[
                            rng.byte() % 3,
                            rng.byte() % 2,
                            rng.byte(),
                            rng.byte(),
                        ]);
                    }
                    let len = rng.below(6);
                    let claimed = if rng.below(8) == 0 { len + rng.below(3) } else { len };
                    v.extend_from_slice(&(claimed as u32).to_le_bytes());
                    v.extend((0..len).map(|_| rng.byte()));
                }
                v
            }
            // Pure noise.
            0 => (0..rng.below(96)).map(|_| rng.byte()).collect(),
            // A valid header, a random body.
            1 => {
                let kind = Kind::ALL[rng.below(Kind::ALL.len())];
                let mut v = vec![0x50, 0x58, 1, kind.as_u8()];
                v.extend((0..8 + rng.below(80)).map(|_| rng.byte()));
                v[10] = 0;
                v[11] = 0;
                v
            }
            // A real datagram with a few bytes changed, small values favoured.
            2 => {
                let mut v = seeds[rng.below(seeds.len())].clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(v.len());
                    v[at] = if rng.below(2) == 0 { rng.byte() } else { rng.byte() % 4 };
                }
                v
            }
            // A real datagram cut short or extended.
            _ => {
                let mut v = seeds[rng.below(seeds.len())].clone();
                if rng.below(2) == 0 {
                    v.truncate(rng.below(v.len() + 1));
                } else {
                    v.extend((0..1 + rng.below(8)).map(|_| rng.byte()));
                }
                v
            }
        };
        // The fast path and the reference decoder agree on everything, errors included.
        assert_eq!(
            decode(&buf, |r| r),
            super::super::decode::decode_reference(&buf, |r| r),
            "{buf:02x?}"
        );
        match decode(&buf, |r| {
            assert!(r.start <= r.end && r.end <= buf.len(), "range {r:?} outside the input");
            r
        }) {
            Ok((header, env)) => {
                ok += 1;
                let env = env.map_payload(|r| &buf[r]);
                assert_eq!(to_vec(header.route(), &env), buf, "not canonical");
            }
            Err(e) => errors[e.index()] += 1,
        }
    }
    // The loop reaches both outcomes and the common causes.
    assert!(ok > 1000, "only {ok} decoded");
    for e in [WireError::Truncated, WireError::BadMagic, WireError::UnknownKind] {
        assert!(errors[e.index()] > 0, "never saw {e}");
    }
    for e in [
        WireError::TrailingBytes,
        WireError::LengthOverflow,
        WireError::ReservedNonZero,
        WireError::EmptyBatch,
        WireError::TooManyEntries,
    ] {
        assert!(errors[e.index()] > 0, "never saw {e}");
    }
}
