//! Encoding into a caller-provided buffer (an mbuf's data room, a stack array): no
//! allocation, and the exact size is known beforehand from `*_encoded_len`.

use super::batch::{check_entries, BATCH_ENTRIES_OFFSET};
use super::cursor::Writer;
use super::{
    Batch, ClientReply, ClientRequest, Envelope, Kind, Route, WireError, CLIENT, ENTRY_FIXED_LEN,
    HEADER_LEN, MAGIC, VERSION,
};
use crate::message::Message;

/// Exact encoded size of `msg`, header included.
pub fn encoded_len<P: AsRef<[u8]>>(msg: &Message<P>) -> usize {
    let variable = match msg {
        Message::Promise { entries, .. } => entries.iter().fold(0usize, |sum, e| {
            sum.saturating_add(ENTRY_FIXED_LEN).saturating_add(e.value.as_ref().len())
        }),
        Message::Accept { value, .. } | Message::Learn { value, .. } => value.as_ref().len(),
        Message::SnapshotChunk { data, .. } => data.as_ref().len(),
        _ => 0,
    };
    fixed_len(Kind::of(msg)).saturating_add(variable)
}

/// Exact encoded size of a client request, header included.
pub fn request_encoded_len<P: AsRef<[u8]>>(req: &ClientRequest<P>) -> usize {
    fixed_len(Kind::ClientRequest).saturating_add(req.command.as_ref().len())
}

/// Exact encoded size of a client reply, header included.
pub fn reply_encoded_len<P: AsRef<[u8]>>(reply: &ClientReply<P>) -> usize {
    fixed_len(Kind::ClientReply).saturating_add(reply.body.as_ref().len())
}

/// Exact encoded size of any envelope, header included.
pub fn envelope_encoded_len<P: AsRef<[u8]>>(env: &Envelope<P>) -> usize {
    match env {
        Envelope::Protocol(m) => encoded_len(m),
        Envelope::Request(r) => request_encoded_len(r),
        Envelope::Reply(r) => reply_encoded_len(r),
        Envelope::RequestBatch(b) | Envelope::ReplyBatch(b) => batch_encoded_len(b),
    }
}

/// Exact encoded size of a client batch, header included.
pub fn batch_encoded_len<P: AsRef<[u8]>>(batch: &Batch<P>) -> usize {
    BATCH_ENTRIES_OFFSET.saturating_add(batch.entries.as_ref().len())
}

fn fixed_len(kind: Kind) -> usize {
    HEADER_LEN + kind.fixed_body_len()
}

/// Writes `msg` with the header `route` at the start of `buf`; returns the bytes written
/// (always `encoded_len(msg)`).
///
/// Errors: `BufferTooSmall`; `BadChunk` and `TooManyEntries` for a Promise that decode would
/// refuse; `ValueTooLarge` for a value of 4 GiB or more.
#[inline]
pub fn encode<P: AsRef<[u8]>>(
    route: Route,
    msg: &Message<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    const ACCEPT: usize = HEADER_LEN + Kind::Accept.fixed_body_len();
    const LEARN: usize = HEADER_LEN + Kind::Learn.fixed_body_len();
    const ACCEPTED: usize = HEADER_LEN + Kind::Accepted.fixed_body_len();
    const HEARTBEAT: usize = HEADER_LEN + Kind::Heartbeat.fixed_body_len();
    const PREPARE: usize = HEADER_LEN + Kind::Prepare.fixed_body_len();
    const NACK: usize = HEADER_LEN + Kind::Nack.fixed_body_len();
    const REPEAT: usize = HEADER_LEN + Kind::Repeat.fixed_body_len();
    const TRIMMED: usize = HEADER_LEN + Kind::Trimmed.fixed_body_len();
    const APPLIED: usize = HEADER_LEN + Kind::Applied.fixed_body_len();
    const SNAP_REQ: usize = HEADER_LEN + Kind::SnapshotRequest.fixed_body_len();
    const SNAP_CHUNK: usize = HEADER_LEN + Kind::SnapshotChunk.fixed_body_len();
    const REC_QUERY: usize = HEADER_LEN + Kind::RecoveryQuery.fixed_body_len();
    const REC_INFO: usize = HEADER_LEN + Kind::RecoveryInfo.fixed_body_len();
    const HB_ACK: usize = HEADER_LEN + Kind::HeartbeatAck.fixed_body_len();
    const COMMITTED: usize = HEADER_LEN + Kind::Committed.fixed_body_len();
    let kind = Kind::of(msg);
    match msg {
        Message::Accept { ballot, slot, commit, value } => {
            fixed::<ACCEPT>(route, kind, buf, value.as_ref(), |w, len| {
                w.ballot(*ballot)?;
                w.slot(*slot)?;
                w.slot(*commit)?;
                w.u32(len)
            })
        }
        Message::Accepted { ballot, slot } => fixed::<ACCEPTED>(route, kind, buf, &[], |w, _| {
            w.ballot(*ballot)?;
            w.slot(*slot)
        }),
        Message::Heartbeat { ballot, commit, trim } => {
            fixed::<HEARTBEAT>(route, kind, buf, &[], |w, _| {
                w.ballot(*ballot)?;
                w.slot(*commit)?;
                w.slot(*trim)
            })
        }
        Message::Prepare { ballot, from } => fixed::<PREPARE>(route, kind, buf, &[], |w, _| {
            w.ballot(*ballot)?;
            w.slot(*from)
        }),
        Message::Nack { ballot, promised } => fixed::<NACK>(route, kind, buf, &[], |w, _| {
            w.ballot(*ballot)?;
            w.ballot(*promised)
        }),
        Message::Repeat { from, to } => fixed::<REPEAT>(route, kind, buf, &[], |w, _| {
            w.slot(*from)?;
            w.slot(*to)
        }),
        Message::Learn { ballot, slot, value } => {
            fixed::<LEARN>(route, kind, buf, value.as_ref(), |w, len| {
                w.ballot(*ballot)?;
                w.slot(*slot)?;
                w.u32(len)
            })
        }
        Message::Trimmed { low } => fixed::<TRIMMED>(route, kind, buf, &[], |w, _| w.slot(*low)),
        Message::Applied { applied } => {
            fixed::<APPLIED>(route, kind, buf, &[], |w, _| w.slot(*applied))
        }
        Message::Promise { .. } => encode_promise(route, msg, buf),
        Message::SnapshotRequest { min, slot, id, offset } => {
            fixed::<SNAP_REQ>(route, kind, buf, &[], |w, _| {
                w.slot(*min)?;
                w.slot(*slot)?;
                w.u64(*id)?;
                w.u64(*offset)
            })
        }
        Message::SnapshotChunk { slot, id, total, offset, data } => {
            fixed::<SNAP_CHUNK>(route, kind, buf, data.as_ref(), |w, len| {
                w.slot(*slot)?;
                w.u64(*id)?;
                w.u64(*total)?;
                w.u64(*offset)?;
                w.u32(len)
            })
        }
        Message::RecoveryQuery { nonce } => {
            fixed::<REC_QUERY>(route, kind, buf, &[], |w, _| w.u64(*nonce))
        }
        Message::RecoveryInfo { nonce, ballot, high, recovering } => {
            fixed::<REC_INFO>(route, kind, buf, &[], |w, _| {
                w.u64(*nonce)?;
                w.ballot(*ballot)?;
                w.slot(*high)?;
                w.u32(u32::from(*recovering))
            })
        }
        Message::HeartbeatAck { ballot } => {
            fixed::<HB_ACK>(route, kind, buf, &[], |w, _| w.ballot(*ballot))
        }
        Message::Committed { commit } => {
            fixed::<COMMITTED>(route, kind, buf, &[], |w, _| w.slot(*commit))
        }
    }
}

/// A Promise: a variable number of entries, written field by field.
fn encode_promise<P: AsRef<[u8]>>(
    route: Route,
    msg: &Message<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let len = encoded_len(msg);
    let mut w = start(route, Kind::of(msg), len, buf)?;
    if let Message::Promise { ballot, from, low, end, high, chunk, chunks, entries } = msg {
        if *chunks == 0 || chunk >= chunks {
            return Err(WireError::BadChunk);
        }
        let count = u32::try_from(entries.len()).map_err(|_| WireError::TooManyEntries)?;
        w.ballot(*ballot)?;
        w.slot(*from)?;
        w.slot(*low)?;
        w.slot(*end)?;
        w.slot(*high)?;
        w.u16(*chunk)?;
        w.u16(*chunks)?;
        w.u32(count)?;
        for e in entries {
            w.slot(e.slot)?;
            w.ballot(e.ballot)?;
            w.value(e.value.as_ref())?;
        }
    }
    Ok(w.written())
}

/// Writes a datagram of `N` fixed bytes (header included) followed by `value` (empty for
/// kinds without one): checks that it fits, lays the fixed part out in a local array with
/// `body` (which also gets the value's length field), and copies both into `buf`. The
/// writes into the array have constant offsets, so their bounds checks fold away.
#[inline]
fn fixed<const N: usize>(
    route: Route,
    kind: Kind,
    buf: &mut [u8],
    value: &[u8],
    body: impl FnOnce(&mut Writer<'_>, u32) -> Result<(), WireError>,
) -> Result<usize, WireError> {
    let len = N.saturating_add(value.len());
    let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
    let value_len = u32::try_from(value.len()).map_err(|_| WireError::ValueTooLarge)?;
    let mut fixed = [0u8; N];
    let mut w = Writer::new(&mut fixed);
    w.bytes(&header(route, kind))?;
    body(&mut w, value_len)?;
    if w.written() != N {
        return Err(WireError::BufferTooSmall); // a layout bug: the tests check it never happens
    }
    let (head, tail) = out.split_at_mut(N.min(len));
    head.copy_from_slice(&fixed); // `head` is N long: len >= N
    tail.copy_from_slice(value); // `tail` is value.len() long: len = N + value.len()
    Ok(len)
}

/// The 12 header bytes.
#[inline]
pub(super) fn header(route: Route, kind: Kind) -> [u8; HEADER_LEN] {
    let [m0, m1] = MAGIC;
    let [g0, g1] = route.group.0.to_le_bytes();
    let [f0, f1] = route.from.0.to_le_bytes();
    let [t0, t1] = route.to.0.to_le_bytes();
    [m0, m1, VERSION, kind.as_u8(), g0, g1, f0, f1, t0, t1, 0, 0] // flags: 0
}

/// Writes a client request; returns the bytes written (`request_encoded_len(req)`).
pub fn encode_request<P: AsRef<[u8]>>(
    route: Route,
    req: &ClientRequest<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    const N: usize = HEADER_LEN + Kind::ClientRequest.fixed_body_len();
    fixed::<N>(route, Kind::ClientRequest, buf, req.command.as_ref(), |w, len| {
        w.u64(req.client.0)?;
        w.u64(req.seq.0)?;
        w.u32(len)
    })
}

/// Writes a client reply; returns the bytes written (`reply_encoded_len(reply)`).
pub fn encode_reply<P: AsRef<[u8]>>(
    route: Route,
    reply: &ClientReply<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    const N: usize = HEADER_LEN + Kind::ClientReply.fixed_body_len();
    fixed::<N>(route, Kind::ClientReply, buf, reply.body.as_ref(), |w, len| {
        w.u64(reply.client.0)?;
        w.u64(reply.seq.0)?;
        w.u8(reply.status)?;
        w.u8(0)?; // reserved
        w.u16(reply.leader_hint.unwrap_or(CLIENT).0)?;
        w.u32(len)
    })
}

/// Writes any envelope; returns the bytes written (`envelope_encoded_len(env)`).
pub fn encode_envelope<P: AsRef<[u8]>>(
    route: Route,
    env: &Envelope<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    match env {
        Envelope::Protocol(m) => encode(route, m, buf),
        Envelope::Request(r) => encode_request(route, r, buf),
        Envelope::Reply(r) => encode_reply(route, r, buf),
        Envelope::RequestBatch(b) => encode_batch(route, Kind::ClientRequestBatch, b, buf),
        Envelope::ReplyBatch(b) => encode_batch(route, Kind::ClientReplyBatch, b, buf),
    }
}

/// Writes a client batch of `kind` (`ClientRequestBatch` or `ClientReplyBatch`) whose
/// entries are already laid out; returns the bytes written (`batch_encoded_len(batch)`).
/// Refuses what decode would refuse (`EmptyBatch`, entries that do not match `count`), and
/// `UnknownKind` for a kind that is not a batch. Senders that build batches entry by entry
/// use [`super::BatchBuilder`] instead.
pub fn encode_batch<P: AsRef<[u8]>>(
    route: Route,
    kind: Kind,
    batch: &Batch<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let entries = batch.entries.as_ref();
    check_entries(kind, batch.count, entries)?;
    let len = batch_encoded_len(batch);
    let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
    let (head, tail) = out.split_at_mut(BATCH_ENTRIES_OFFSET);
    head[..HEADER_LEN].copy_from_slice(&header(route, kind));
    head[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&batch.count.to_le_bytes());
    head[HEADER_LEN + 2..].fill(0); // reserved
    tail.copy_from_slice(entries); // `tail` is entries.len() long
    Ok(len)
}

/// Checks that `len` bytes fit and writes the header. (The body writes are bounds-checked
/// again, so a wrong `len` would be an error, never a panic; the tests check it is exact.)
fn start(route: Route, kind: Kind, len: usize, buf: &mut [u8]) -> Result<Writer<'_>, WireError> {
    if buf.len() < len {
        return Err(WireError::BufferTooSmall);
    }
    let mut w = Writer::new(buf);
    w.bytes(&MAGIC)?;
    w.u8(VERSION)?;
    w.u8(kind.as_u8())?;
    w.u16(route.group.0)?;
    w.u16(route.from.0)?;
    w.u16(route.to.0)?;
    w.u16(0)?; // flags
    Ok(w)
}
