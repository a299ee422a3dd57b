//! Golden datagrams, written out by hand from docs/wire-format.md (not produced by the
//! encoder). Each has a `test_parse` (bytes -> message) and a `test_emit` (message -> bytes).

use super::*;

/// Prepare { ballot 7.1, from slot 0x1122334455667788 }, group 3, replica 1 -> 2.
pub(super) const PREPARE: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x01, // kind 1: Prepare
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // from: slot 0x1122334455667788
];

fn prepare() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::Prepare { ballot: b(7, 1), from: Slot(0x1122334455667788) }))
}

/// Promise { ballot 7.1, from 38, low 40, end 43, high 50, chunk 0 of 1,
/// entries [(41, 5.2, "ab"), (42, 6.0, "")] }.
pub(super) const PROMISE: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x02, // kind 2: Promise
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // from: slot 38
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // low: slot 40
    0x2B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // end: slot 43
    0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // high: slot 50
    0x00, 0x00, // chunk 0
    0x01, 0x00, // chunks 1
    0x02, 0x00, 0x00, 0x00, // entry count 2
    // entry 0
    0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 41
    0x05, 0x00, 0x00, 0x00, // ballot.round 5
    0x02, 0x00, // ballot.leader 2
    0x00, 0x00, // ballot reserved
    0x02, 0x00, 0x00, 0x00, // value length 2
    b'a', b'b', // value
    // entry 1
    0x2A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 42
    0x06, 0x00, 0x00, 0x00, // ballot.round 6
    0x00, 0x00, // ballot.leader 0
    0x00, 0x00, // ballot reserved
    0x00, 0x00, 0x00, 0x00, // value length 0 (the no-op)
];

fn promise() -> (Route, Envelope<&'static [u8]>) {
    let entries = vec![
        SlotValue { slot: Slot(41), ballot: b(5, 2), value: &b"ab"[..] },
        SlotValue { slot: Slot(42), ballot: b(6, 0), value: &b""[..] },
    ];
    let m = Message::Promise {
        ballot: b(7, 1),
        from: Slot(38),
        low: Slot(40),
        end: Slot(43),
        high: Slot(50),
        chunk: 0,
        chunks: 1,
        entries,
    };
    (R12, Envelope::Protocol(m))
}

/// Accept { ballot 7.1, slot 42, commit 40, value "xyz" }.
pub(super) const ACCEPT: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x03, // kind 3: Accept
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x2A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 42
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // commit: slot 40
    0x03, 0x00, 0x00, 0x00, // value length 3
    b'x', b'y', b'z', // value
];

fn accept() -> (Route, Envelope<&'static [u8]>) {
    let m =
        Message::Accept { ballot: b(7, 1), slot: Slot(42), commit: Slot(40), value: &b"xyz"[..] };
    (R12, Envelope::Protocol(m))
}

/// Accepted { ballot 7.1, slot 42 }, replica 2 -> 1, group 0x0102.
pub(super) const ACCEPTED: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x04, // kind 4: Accepted
    0x02, 0x01, // group 0x0102
    0x02, 0x00, // from replica 2
    0x01, 0x00, // to replica 1
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x2A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 42
];

fn accepted() -> (Route, Envelope<&'static [u8]>) {
    let route = Route { group: GroupId(0x0102), from: ReplicaId(2), to: ReplicaId(1) };
    (route, Envelope::Protocol(Message::Accepted { ballot: b(7, 1), slot: Slot(42) }))
}

/// Nack { ballot 7.1, promised 0x01020304.2 }.
pub(super) const NACK: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x05, // kind 5: Nack
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x04, 0x03, 0x02, 0x01, // promised.round 0x01020304
    0x02, 0x00, // promised.leader 2
    0x00, 0x00, // promised reserved
];

fn nack() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::Nack { ballot: b(7, 1), promised: b(0x01020304, 2) }))
}

/// Heartbeat { ballot 7.1, commit 300, trim 256 }.
pub(super) const HEARTBEAT: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x06, // kind 6: Heartbeat
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x2C, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // commit: slot 300
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // trim: slot 256
];

fn heartbeat() -> (Route, Envelope<&'static [u8]>) {
    let m = Message::Heartbeat { ballot: b(7, 1), commit: Slot(300), trim: Slot(256) };
    (R12, Envelope::Protocol(m))
}

/// Repeat { from 10, to 20 }.
pub(super) const REPEAT: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x07, // kind 7: Repeat
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // from: slot 10
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // to: slot 20
];

fn repeat() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::Repeat { from: Slot(10), to: Slot(20) }))
}

/// Learn { ballot 7.1, slot 42, value "q" }.
pub(super) const LEARN: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x08, // kind 8: Learn
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x07, 0x00, 0x00, 0x00, // ballot.round 7
    0x01, 0x00, // ballot.leader 1
    0x00, 0x00, // ballot reserved
    0x2A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 42
    0x01, 0x00, 0x00, 0x00, // value length 1
    b'q', // value
];

fn learn() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::Learn { ballot: b(7, 1), slot: Slot(42), value: b"q" }))
}

/// Trimmed { low 1000 }.
pub(super) const TRIMMED: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x09, // kind 9: Trimmed
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0xE8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // low: slot 1000
];

fn trimmed() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::Trimmed { low: Slot(1000) }))
}

/// Applied { applied 2^64 - 1 }.
pub(super) const APPLIED: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x0A, // kind 10: Applied
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // applied: slot 2^64 - 1
];

fn applied() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::Applied { applied: Slot(u64::MAX) }))
}

/// ClientRequest { client 0x0102030405060708, seq 9, command "hi" }, client -> replica 2.
pub(super) const CLIENT_REQUEST: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x10, // kind 16: ClientRequest
    0x03, 0x00, // group 3
    0xFF, 0xFF, // from: a client
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // client id 0x0102030405060708
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 9
    0x02, 0x00, 0x00, 0x00, // command length 2
    b'h', b'i', // command
];

fn client_request() -> (Route, Envelope<&'static [u8]>) {
    let route = Route { group: GroupId(3), from: CLIENT, to: ReplicaId(2) };
    let req = ClientRequest {
        client: ClientId(0x0102030405060708),
        seq: RequestSeq(9),
        command: &b"hi"[..],
    };
    (route, Envelope::Request(req))
}

/// ClientReply { client 0x0102030405060708, seq 9, status 1, leader hint 0, body "ok" },
/// replica 2 -> client.
pub(super) const CLIENT_REPLY: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x11, // kind 17: ClientReply
    0x03, 0x00, // group 3
    0x02, 0x00, // from replica 2
    0xFF, 0xFF, // to: a client
    0x00, 0x00, // flags
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // client id 0x0102030405060708
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 9
    0x01, // status 1
    0x00, // reserved
    0x00, 0x00, // leader hint: replica 0 (0xFFFF = unknown)
    0x02, 0x00, 0x00, 0x00, // body length 2
    b'o', b'k', // body
];

fn client_reply() -> (Route, Envelope<&'static [u8]>) {
    let route = Route { group: GroupId(3), from: ReplicaId(2), to: CLIENT };
    let reply = ClientReply {
        client: ClientId(0x0102030405060708),
        seq: RequestSeq(9),
        status: 1,
        leader_hint: Some(ReplicaId(0)),
        body: &b"ok"[..],
    };
    (route, Envelope::Reply(reply))
}

/// ClientRequestBatch of 2: (client 0x0102030405060708, seq 9, "hi"), (client 5, seq 1, ""),
/// client -> replica 2.
pub(super) const CLIENT_REQUEST_BATCH: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x12, // kind 18: ClientRequestBatch
    0x03, 0x00, // group 3
    0xFF, 0xFF, // from: a client
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x02, 0x00, // entry count 2
    0x00, 0x00, // reserved
    // entry 0 (offset 16): a ClientRequest body
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // client id 0x0102030405060708
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 9
    0x02, 0x00, 0x00, 0x00, // command length 2
    b'h', b'i', // command
    // entry 1 (offset 38)
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // client id 5
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1
    0x00, 0x00, 0x00, 0x00, // command length 0
];

/// The entries of [`CLIENT_REQUEST_BATCH`] (from offset 16).
pub(super) const REQUEST_ENTRIES: &[u8] = CLIENT_REQUEST_BATCH.split_at(16).1;

fn client_request_batch() -> (Route, Envelope<&'static [u8]>) {
    let route = Route { group: GroupId(3), from: CLIENT, to: ReplicaId(2) };
    (route, Envelope::RequestBatch(Batch { count: 2, entries: REQUEST_ENTRIES }))
}

/// ClientReplyBatch of 2: (client 0x0102030405060708, seq 9, status 0, hint 2, "ok"),
/// (client 5, seq 1, status 1, hint unknown, ""), replica 2 -> client.
pub(super) const CLIENT_REPLY_BATCH: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x13, // kind 19: ClientReplyBatch
    0x03, 0x00, // group 3
    0x02, 0x00, // from replica 2
    0xFF, 0xFF, // to: a client
    0x00, 0x00, // flags
    0x02, 0x00, // entry count 2
    0x00, 0x00, // reserved
    // entry 0 (offset 16): a ClientReply body
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // client id 0x0102030405060708
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 9
    0x00, // status 0
    0x00, // reserved
    0x02, 0x00, // leader hint: replica 2
    0x02, 0x00, 0x00, 0x00, // body length 2
    b'o', b'k', // body
    // entry 1 (offset 42)
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // client id 5
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1
    0x01, // status 1
    0x00, // reserved
    0xFF, 0xFF, // leader hint: unknown
    0x00, 0x00, 0x00, 0x00, // body length 0
];

/// The entries of [`CLIENT_REPLY_BATCH`] (from offset 16).
pub(super) const REPLY_ENTRIES: &[u8] = CLIENT_REPLY_BATCH.split_at(16).1;

fn client_reply_batch() -> (Route, Envelope<&'static [u8]>) {
    let route = Route { group: GroupId(3), from: ReplicaId(2), to: CLIENT };
    (route, Envelope::ReplyBatch(Batch { count: 2, entries: REPLY_ENTRIES }))
}

type Golden = (&'static str, &'static [u8], fn() -> (Route, Envelope<&'static [u8]>));

/// SnapshotRequest { min 100, snapshot slot 120, id 0x0102030405060708, offset 4096 },
/// replica 1 -> 2, group 3.
pub(super) const SNAPSHOT_REQUEST: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x0B, // kind 11: SnapshotRequest
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // min: slot 100
    0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 120
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // id
    0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // offset 4096
];

fn snapshot_request() -> (Route, Envelope<&'static [u8]>) {
    let m = Message::SnapshotRequest {
        min: Slot(100),
        slot: Slot(120),
        id: 0x0102_0304_0506_0708,
        offset: 4096,
    };
    (R12, Envelope::Protocol(m))
}

/// SnapshotChunk { slot 120, id 0x0102030405060708, total 10, offset 8, data "ab" }.
pub(super) const SNAPSHOT_CHUNK: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x0C, // kind 12: SnapshotChunk
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 120
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // id
    0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // total 10
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // offset 8
    0x02, 0x00, 0x00, 0x00, // data length 2
    b'a', b'b', // data
];

fn snapshot_chunk() -> (Route, Envelope<&'static [u8]>) {
    let m = Message::SnapshotChunk {
        slot: Slot(120),
        id: 0x0102_0304_0506_0708,
        total: 10,
        offset: 8,
        data: &b"ab"[..],
    };
    (R12, Envelope::Protocol(m))
}

/// RecoveryQuery { nonce 0xAABBCCDD11223344 }.
pub(super) const RECOVERY_QUERY: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x0D, // kind 13: RecoveryQuery
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x44, 0x33, 0x22, 0x11, 0xDD, 0xCC, 0xBB, 0xAA, // nonce
];

fn recovery_query() -> (Route, Envelope<&'static [u8]>) {
    (R12, Envelope::Protocol(Message::RecoveryQuery { nonce: 0xAABB_CCDD_1122_3344 }))
}

/// RecoveryInfo { nonce 0xAABBCCDD11223344, ballot 9.2, high 77, recovering }.
pub(super) const RECOVERY_INFO: &[u8] = &[
    0x50, 0x58, // magic "PX"
    0x02, // version 2
    0x0E, // kind 14: RecoveryInfo
    0x03, 0x00, // group 3
    0x01, 0x00, // from replica 1
    0x02, 0x00, // to replica 2
    0x00, 0x00, // flags
    0x44, 0x33, 0x22, 0x11, 0xDD, 0xCC, 0xBB, 0xAA, // nonce
    0x09, 0x00, 0x00, 0x00, // ballot.round 9
    0x02, 0x00, // ballot.leader 2
    0x00, 0x00, // ballot reserved
    0x4D, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // high: slot 77
    0x01, 0x00, 0x00, 0x00, // flags: bit 0 recovering
];

fn recovery_info() -> (Route, Envelope<&'static [u8]>) {
    let m = Message::RecoveryInfo {
        nonce: 0xAABB_CCDD_1122_3344,
        ballot: b(9, 2),
        high: Slot(77),
        recovering: true,
    };
    (R12, Envelope::Protocol(m))
}

/// Every golden datagram with the message it encodes.
pub(super) const GOLDENS: [Golden; 18] = [
    ("prepare", PREPARE, prepare),
    ("promise", PROMISE, promise),
    ("accept", ACCEPT, accept),
    ("accepted", ACCEPTED, accepted),
    ("nack", NACK, nack),
    ("heartbeat", HEARTBEAT, heartbeat),
    ("repeat", REPEAT, repeat),
    ("learn", LEARN, learn),
    ("trimmed", TRIMMED, trimmed),
    ("applied", APPLIED, applied),
    ("snapshot_request", SNAPSHOT_REQUEST, snapshot_request),
    ("snapshot_chunk", SNAPSHOT_CHUNK, snapshot_chunk),
    ("recovery_query", RECOVERY_QUERY, recovery_query),
    ("recovery_info", RECOVERY_INFO, recovery_info),
    ("client_request", CLIENT_REQUEST, client_request),
    ("client_reply", CLIENT_REPLY, client_reply),
    ("client_request_batch", CLIENT_REQUEST_BATCH, client_request_batch),
    ("client_reply_batch", CLIENT_REPLY_BATCH, client_reply_batch),
];

fn check_parse(bytes: &[u8], (route, env): (Route, Envelope<&'static [u8]>)) {
    let header = peek_header(bytes).expect("peek_header");
    assert_eq!(header.kind, env.kind());
    assert_eq!(header.route(), route);
    let (header2, got) = decode_borrowed(bytes).expect("decode");
    assert_eq!(header2, header);
    assert_eq!(got, env);
}

fn check_emit(bytes: &[u8], (route, env): (Route, Envelope<&'static [u8]>)) {
    assert_eq!(envelope_encoded_len(&env), bytes.len());
    let mut buf = vec![0xAAu8; bytes.len() + 8];
    let n = encode_envelope(route, &env, &mut buf).expect("encode");
    assert_eq!(n, bytes.len());
    assert_eq!(&buf[..n], bytes);
    assert!(buf[n..].iter().all(|&x| x == 0xAA), "wrote past the message");
}

macro_rules! golden {
    ($name:ident, $bytes:expr) => {
        mod $name {
            #[test]
            fn test_parse() {
                super::check_parse($bytes, super::$name());
            }
            #[test]
            fn test_emit() {
                super::check_emit($bytes, super::$name());
            }
        }
    };
}

golden!(prepare, super::PREPARE);
golden!(promise, super::PROMISE);
golden!(accept, super::ACCEPT);
golden!(accepted, super::ACCEPTED);
golden!(nack, super::NACK);
golden!(heartbeat, super::HEARTBEAT);
golden!(repeat, super::REPEAT);
golden!(learn, super::LEARN);
golden!(trimmed, super::TRIMMED);
golden!(applied, super::APPLIED);
golden!(client_request, super::CLIENT_REQUEST);
golden!(client_reply, super::CLIENT_REPLY);
golden!(client_request_batch, super::CLIENT_REQUEST_BATCH);
golden!(client_reply_batch, super::CLIENT_REPLY_BATCH);

#[test]
fn golden_sizes() {
    let sizes: Vec<usize> = GOLDENS.iter().map(|g| g.1.len()).collect();
    assert_eq!(sizes, [28, 102, 43, 28, 28, 36, 28, 33, 20, 20, 44, 50, 20, 40, 34, 38, 58, 66]);
}

#[test]
fn goldens_have_their_kind_number() {
    for (name, bytes, _) in GOLDENS {
        assert_eq!(Kind::from_u8(bytes[3]).map(Kind::as_str), Some(name));
    }
}

/// The entries of each batch golden are exactly the bodies of the single kind: the
/// iterators read them back as the messages the single goldens hold.
#[test]
fn batch_entries_are_single_bodies() {
    let Envelope::RequestBatch(batch) = client_request_batch().1 else { unreachable!() };
    let reqs: Vec<_> = batch.requests().map(|r| r.map_command(|c| &REQUEST_ENTRIES[c])).collect();
    let Envelope::Request(first) = client_request().1 else { unreachable!() };
    assert_eq!(reqs[0], first);
    assert_eq!(
        reqs[1],
        ClientRequest { client: ClientId(5), seq: RequestSeq(1), command: &b""[..] }
    );
    assert_eq!(reqs.len(), 2);
    assert_eq!(&CLIENT_REQUEST[12..], &REQUEST_ENTRIES[..22]);

    let Envelope::ReplyBatch(batch) = client_reply_batch().1 else { unreachable!() };
    let replies: Vec<_> = batch.replies().map(|r| r.map_body(|c| &REPLY_ENTRIES[c])).collect();
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[0],
        ClientReply {
            client: ClientId(0x0102030405060708),
            seq: RequestSeq(9),
            status: 0,
            leader_hint: Some(ReplicaId(2)),
            body: &b"ok"[..]
        }
    );
    assert_eq!(replies[1].leader_hint, None);
    assert_eq!(replies[1].status, 1);
}
