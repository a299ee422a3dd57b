//! Tests of the wire format: golden datagrams written out by hand (`golden`), round trips,
//! truncation and fuzzing (`robustness`), the size bounds the core relies on (`bounds`).

mod bounds;
mod golden;
mod robustness;

use super::*;
use crate::ids::{Ballot, ClientId, GroupId, ReplicaId, RequestSeq, Slot};
use crate::message::{Message, SlotValue};

/// The route of most goldens: group 3, replica 1 to replica 2.
const R12: Route = Route { group: GroupId(3), from: ReplicaId(1), to: ReplicaId(2) };

fn b(round: u32, leader: u16) -> Ballot {
    Ballot::new(round, ReplicaId(leader))
}

/// Encodes `env` into a fresh Vec of exactly its encoded length.
fn to_vec(route: Route, env: &Envelope<&[u8]>) -> Vec<u8> {
    let mut buf = vec![0u8; envelope_encoded_len(env)];
    let n = encode_envelope(route, env, &mut buf).expect("encode");
    assert_eq!(n, buf.len(), "encode wrote other than encoded_len bytes");
    buf
}

/// One message of every kind, including edge values, for round trips.
fn samples() -> Vec<(Route, Envelope<&'static [u8]>)> {
    let p = |m: Message<&'static [u8]>| (R12, Envelope::Protocol(m));
    let max = Slot(u64::MAX);
    let top = b(u32::MAX, 0xFFFE);
    let mut out = vec![
        p(Message::Prepare { ballot: b(1, 0), from: Slot(0) }),
        p(Message::Prepare { ballot: top, from: max }),
        p(Message::Promise {
            ballot: b(2, 1),
            from: Slot(0),
            low: Slot(0),
            end: Slot(0),
            high: Slot(0),
            chunk: 0,
            chunks: 1,
            entries: vec![],
        }),
        p(Message::Promise {
            ballot: b(2, 1),
            from: Slot(3),
            low: Slot(5),
            end: Slot(7),
            high: max,
            chunk: 2,
            chunks: 3,
            entries: vec![
                SlotValue { slot: Slot(5), ballot: b(1, 0), value: b"" },
                SlotValue { slot: Slot(6), ballot: b(2, 1), value: b"\x03\0\0\0abc" },
                SlotValue { slot: max, ballot: top, value: &[0xFF; 300] },
            ],
        }),
        p(Message::Promise {
            ballot: top,
            from: max,
            low: max,
            end: max,
            high: max,
            chunk: u16::MAX - 1,
            chunks: u16::MAX,
            entries: vec![],
        }),
        p(Message::Accept { ballot: b(3, 2), slot: Slot(9), commit: Slot(8), value: b"" }),
        p(Message::Accept { ballot: top, slot: max, commit: max, value: &[7; 1000] }),
        p(Message::Accepted { ballot: b(3, 2), slot: Slot(9) }),
        p(Message::Nack { ballot: b(3, 2), promised: b(4, 0) }),
        p(Message::Nack { ballot: Ballot::NONE, promised: top }),
        p(Message::Heartbeat { ballot: b(3, 2), commit: Slot(100), trim: Slot(50) }),
        p(Message::Repeat { from: Slot(10), to: Slot(20) }),
        p(Message::Repeat { from: max, to: Slot(0) }),
        p(Message::Learn { ballot: b(3, 2), slot: Slot(9), value: b"\x01\0\0\0z" }),
        p(Message::Learn { ballot: b(3, 2), slot: Slot(9), value: b"" }),
        p(Message::Trimmed { low: Slot(77) }),
        p(Message::Applied { applied: max }),
        p(Message::SnapshotRequest { min: Slot(1), slot: Slot(0), id: 0, offset: 0 }),
        p(Message::SnapshotRequest { min: max, slot: max, id: u64::MAX, offset: u64::MAX }),
        p(Message::SnapshotChunk { slot: Slot(5), id: 9, total: 0, offset: 0, data: b"" }),
        p(Message::SnapshotChunk { slot: max, id: 1, total: 2000, offset: 1000, data: &[3; 1000] }),
        p(Message::RecoveryQuery { nonce: 0 }),
        p(Message::RecoveryInfo {
            nonce: 1,
            ballot: Ballot::NONE,
            high: Slot(0),
            recovering: false,
        }),
        p(Message::RecoveryInfo { nonce: u64::MAX, ballot: top, high: max, recovering: true }),
        p(Message::HeartbeatAck { ballot: b(3, 2) }),
        p(Message::HeartbeatAck { ballot: top }),
        p(Message::Committed { commit: Slot(12) }),
        p(Message::Committed { commit: max }),
    ];
    let to_replica = Route { group: GroupId(0xFFFF), from: CLIENT, to: ReplicaId(0) };
    let to_client = Route { group: GroupId(0), from: ReplicaId(4), to: CLIENT };
    out.push((
        to_replica,
        Envelope::Request(ClientRequest {
            client: ClientId(u64::MAX),
            seq: RequestSeq(1),
            command: &b"put k v"[..],
        }),
    ));
    out.push((
        to_replica,
        Envelope::Request(ClientRequest {
            client: ClientId(0),
            seq: RequestSeq(0),
            command: &b""[..],
        }),
    ));
    out.push((
        to_client,
        Envelope::Reply(ClientReply {
            client: ClientId(7),
            seq: RequestSeq(u64::MAX),
            status: 0xFF,
            leader_hint: None,
            body: &b""[..],
        }),
    ));
    out.push((
        to_client,
        Envelope::Reply(ClientReply {
            client: ClientId(7),
            seq: RequestSeq(2),
            status: 0,
            leader_hint: Some(ReplicaId(0xFFFE)),
            body: &b"value"[..],
        }),
    ));
    out.push((
        to_replica,
        Envelope::RequestBatch(Batch { count: 2, entries: golden::REQUEST_ENTRIES }),
    ));
    out.push((to_client, Envelope::ReplyBatch(Batch { count: 2, entries: golden::REPLY_ENTRIES })));
    out
}

#[test]
fn samples_cover_every_kind() {
    for kind in Kind::ALL {
        assert!(samples().iter().any(|(_, e)| e.kind() == kind), "no sample of {kind:?}");
    }
}

#[test]
fn round_trip_every_kind() {
    for (route, env) in samples() {
        let bytes = to_vec(route, &env);
        let (header, back) = decode_borrowed(&bytes).expect("decode");
        assert_eq!(
            header,
            Header { kind: env.kind(), group: route.group, from: route.from, to: route.to }
        );
        assert_eq!(back, env);
        assert_eq!(peek_header(&bytes), Ok(header));
    }
}

#[test]
fn decode_into_bytes_is_zero_copy() {
    let (route, env) = samples().swap_remove(3); // the Promise with three entries
    let bytes = bytes::Bytes::from(to_vec(route, &env));
    let (_, got) = decode(&bytes, |r| bytes.slice(r)).unwrap();
    let Envelope::Protocol(Message::Promise { entries, .. }) = &got else { panic!("{got:?}") };
    let span = bytes.as_ptr_range();
    for e in entries.iter().filter(|e| !e.value.is_empty()) {
        assert!(span.contains(&e.value.as_ptr()), "value was copied");
    }
    assert_eq!(got.map_payload(|p| p.to_vec()), env.map_payload(|p| p.to_vec()));
}

#[test]
fn kind_numbers_and_names() {
    for (i, kind) in Kind::ALL.iter().enumerate() {
        assert_eq!(Kind::from_u8(kind.as_u8()), Some(*kind));
        assert!(Kind::ALL[..i].iter().all(|k| k.as_str() != kind.as_str()));
    }
    let unknown = (0..=255u8).filter(|&n| Kind::from_u8(n).is_none()).count();
    assert_eq!(unknown, 256 - Kind::ALL.len());
    for (_, env) in samples() {
        if let Envelope::Protocol(m) = &env {
            assert_eq!(Kind::of(m).as_str(), m.kind_name());
            assert!(!Kind::of(m).is_client());
        } else {
            assert!(env.kind().is_client());
        }
    }
}

#[test]
fn error_indices_and_names() {
    for (i, e) in WireError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
        assert_eq!(e.to_string(), e.as_str());
        assert!(WireError::ALL[..i].iter().all(|o| o.as_str() != e.as_str()));
    }
    assert_eq!(WireError::COUNT, WireError::ALL.len());
}

/// A deterministic xorshift64 generator (seeded; tests never use unseeded randomness).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}
