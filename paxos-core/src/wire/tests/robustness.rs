//! Malformed input: every prefix, every specific error, and a deterministic fuzz loop.

use super::golden::{ACCEPT, CLIENT_REPLY, GOLDENS, PREPARE, PROMISE};
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
    assert_eq!(err(&with(PREPARE, 2, &[2])), WireError::BadVersion);
    for kind in [0u8, 11, 15, 18, 0xFF] {
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
    // Promise: chunk (offset 28) and chunks (30).
    assert_eq!(err(&with(PROMISE, 30, &[0, 0])), WireError::BadChunk);
    assert_eq!(err(&with(PROMISE, 28, &[1, 0])), WireError::BadChunk);
    assert_eq!(err(&with(PROMISE, 28, &[5, 0, 3, 0])), WireError::BadChunk);
    // Promise entry count (offset 32): more than the rest can hold, before any allocation.
    assert_eq!(err(&with(PROMISE, 32, &u32::MAX.to_le_bytes())), WireError::TooManyEntries);
    assert_eq!(err(&with(PROMISE, 32, &3u32.to_le_bytes())), WireError::TooManyEntries);
    // Fewer entries than present: trailing bytes.
    assert_eq!(err(&with(PROMISE, 32, &1u32.to_le_bytes())), WireError::TrailingBytes);
    // Entry 0's value length (offset 52) past the end.
    assert_eq!(err(&with(PROMISE, 52, &100u32.to_le_bytes())), WireError::LengthOverflow);
    // Entry 1's ballot reserved bytes (offset 72).
    assert_eq!(err(&with(PROMISE, 72, &[0, 9])), WireError::ReservedNonZero);
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
    let bad = with(PROMISE, 72, &[0, 9]); // entry 0 is fine, entry 1 is not
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
            low: Slot(0),
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
        let buf = match rng.below(4) {
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
    for e in [WireError::TrailingBytes, WireError::LengthOverflow, WireError::ReservedNonZero] {
        assert!(errors[e.index()] > 0, "never saw {e}");
    }
}
