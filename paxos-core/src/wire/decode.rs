//! Decoding without copying values.
//!
//! Two paths give the same answers. The fast one reads the header and a kind's fixed-size
//! body as fixed arrays, checks everything a valid datagram must satisfy (exact length,
//! reserved bytes zero) and builds the message in place, calling the payload closure last.
//! Whatever it does not accept (every malformed datagram, and Promises with their entry
//! list) goes to the reference path: the body is parsed front to back into byte ranges and
//! fully validated, then the ranges are turned into payload handles. So error causes and
//! their precedence are the reference path's, and the tests check that the fast path
//! agrees with it on every datagram of the fuzz corpus.

use super::batch::{self, reply_entry, request_entry, BATCH_ENTRIES_OFFSET};
use super::cursor::Reader;
use super::{
    Batch, ClientReply, ClientRequest, Envelope, Header, Kind, WireError, CLIENT, ENTRY_FIXED_LEN,
    HEADER_LEN, MAGIC, VERSION,
};
use crate::ids::{ClientId, GroupId, ReplicaId, RequestSeq};
use crate::message::{Message, SlotValue};
use core::ops::Range;

/// Magic, version and a zero kind byte as one little-endian word (the kind is masked off).
const MAGIC_VERSION: u32 = u32::from_le_bytes([MAGIC[0], MAGIC[1], VERSION, 0]);

/// Validates and returns the header only (magic, version, kind, flags), without looking at
/// the body: enough for a dispatcher to route by group. Checks run in that order, after the
/// length check (`Truncated` below 12 bytes).
#[inline]
pub fn peek_header(buf: &[u8]) -> Result<Header, WireError> {
    let Some(h) = buf.get(..HEADER_LEN).and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok()) else {
        return Err(WireError::Truncated);
    };
    let [m0, m1, version, kind, g0, g1, f0, f1, t0, t1, flags0, flags1] = *h;
    // The usual case in two comparisons: magic and version, and the flags.
    let kind = match Kind::from_u8(kind) {
        Some(kind)
            if u32::from_le_bytes([m0, m1, version, 0]) == MAGIC_VERSION
                && flags0 | flags1 == 0 =>
        {
            kind
        }
        _ => return Err(header_error(h)),
    };
    Ok(Header {
        kind,
        group: GroupId(u16::from_le_bytes([g0, g1])),
        from: ReplicaId(u16::from_le_bytes([f0, f1])),
        to: ReplicaId(u16::from_le_bytes([t0, t1])),
    })
}

/// Why a header is invalid, checked in the documented order.
#[cold]
#[inline(never)]
fn header_error(h: &[u8; HEADER_LEN]) -> WireError {
    let [m0, m1, version, kind, .., flags0, flags1] = *h;
    if [m0, m1] != MAGIC {
        WireError::BadMagic
    } else if version != VERSION {
        WireError::BadVersion
    } else if Kind::from_u8(kind).is_none() {
        WireError::UnknownKind
    } else if flags0 | flags1 != 0 {
        WireError::ReservedNonZero
    } else {
        // Unreachable: the caller found one of the above.
        WireError::ReservedNonZero
    }
}

/// Decodes one datagram. `payload` turns a byte range of `buf` into the payload handle:
/// `|r| &buf[r]` for a borrowed slice, `|r| bytes.slice(r)` for `bytes::Bytes`, a refcounted
/// slice for an mbuf. It is called once per value, and only if the whole datagram is valid,
/// with ranges that lie inside `buf`. Never panics.
#[inline]
pub fn decode<P>(
    buf: &[u8],
    mut payload: impl FnMut(Range<usize>) -> P,
) -> Result<(Header, Envelope<P>), WireError> {
    let header = peek_header(buf)?;
    match fast(header.kind, buf, &mut payload) {
        Some(env) => Ok((header, env)),
        None => decode_reference(buf, payload),
    }
}

/// [`decode`] with payloads borrowed from `buf`.
#[inline]
pub fn decode_borrowed(buf: &[u8]) -> Result<(Header, Envelope<&[u8]>), WireError> {
    // The ranges are inside `buf` (checked by the reader); `get` keeps this panic-free anyway.
    decode(buf, |r| buf.get(r).unwrap_or_default())
}

/// The reference decoder: every datagram the fast path passes on (all invalid ones, and
/// Promises).
#[cold]
#[inline(never)]
pub(super) fn decode_reference<P>(
    buf: &[u8],
    payload: impl FnMut(Range<usize>) -> P,
) -> Result<(Header, Envelope<P>), WireError> {
    let (header, env) = parse(buf)?;
    Ok((header, env.map_payload(payload)))
}

/// A reader over the `N` fixed body bytes after the header, if the datagram has them.
#[inline]
fn body<const N: usize>(buf: &[u8]) -> Option<Reader<'_>> {
    let fixed = buf.get(HEADER_LEN..HEADER_LEN.checked_add(N)?)?;
    let fixed: &[u8; N] = fixed.try_into().ok()?;
    Some(Reader::new(fixed, 0))
}

/// As [`body`], for a body of exactly `N` bytes.
#[inline]
fn exact<const N: usize>(buf: &[u8]) -> Option<Reader<'_>> {
    if buf.len() != HEADER_LEN + N {
        return None;
    }
    body::<N>(buf)
}

/// The value that ends the datagram after `N` fixed body bytes, if its length field
/// (`len`) says it fills the rest exactly.
#[inline]
fn tail<const N: usize>(buf: &[u8], len: u32) -> Option<Range<usize>> {
    let start = HEADER_LEN + N;
    let len = usize::try_from(len).ok()?;
    (buf.len().checked_sub(start)? == len).then_some(start..buf.len())
}

/// The fast path: a valid datagram of a kind with a fixed layout (all but Promise), built
/// directly; `None` for anything else. Reads with `Reader` over fixed-size arrays, so the
/// bounds checks fold away; a reserved byte that is not zero makes it give up.
#[inline]
fn fast<P>(
    kind: Kind,
    buf: &[u8],
    payload: &mut impl FnMut(Range<usize>) -> P,
) -> Option<Envelope<P>> {
    const ACCEPT: usize = Kind::Accept.fixed_body_len();
    const LEARN: usize = Kind::Learn.fixed_body_len();
    const REQUEST: usize = Kind::ClientRequest.fixed_body_len();
    const REPLY: usize = Kind::ClientReply.fixed_body_len();
    let msg = match kind {
        Kind::Accept => {
            let mut r = body::<ACCEPT>(buf)?;
            let (ballot, slot, commit) = (r.ballot().ok()?, r.slot().ok()?, r.slot().ok()?);
            let value = tail::<ACCEPT>(buf, r.u32().ok()?)?;
            Message::Accept { ballot, slot, commit, value: payload(value) }
        }
        Kind::Accepted => {
            let mut r = exact::<{ Kind::Accepted.fixed_body_len() }>(buf)?;
            Message::Accepted { ballot: r.ballot().ok()?, slot: r.slot().ok()? }
        }
        Kind::Heartbeat => {
            let mut r = exact::<{ Kind::Heartbeat.fixed_body_len() }>(buf)?;
            let (ballot, commit, trim) = (r.ballot().ok()?, r.slot().ok()?, r.slot().ok()?);
            Message::Heartbeat { ballot, commit, trim }
        }
        Kind::Prepare => {
            let mut r = exact::<{ Kind::Prepare.fixed_body_len() }>(buf)?;
            Message::Prepare { ballot: r.ballot().ok()?, from: r.slot().ok()? }
        }
        Kind::Nack => {
            let mut r = exact::<{ Kind::Nack.fixed_body_len() }>(buf)?;
            Message::Nack { ballot: r.ballot().ok()?, promised: r.ballot().ok()? }
        }
        Kind::Repeat => {
            let mut r = exact::<{ Kind::Repeat.fixed_body_len() }>(buf)?;
            Message::Repeat { from: r.slot().ok()?, to: r.slot().ok()? }
        }
        Kind::Learn => {
            let mut r = body::<LEARN>(buf)?;
            let (ballot, slot) = (r.ballot().ok()?, r.slot().ok()?);
            let value = tail::<LEARN>(buf, r.u32().ok()?)?;
            Message::Learn { ballot, slot, value: payload(value) }
        }
        Kind::Trimmed => {
            Message::Trimmed { low: exact::<{ Kind::Trimmed.fixed_body_len() }>(buf)?.slot().ok()? }
        }
        Kind::Applied => Message::Applied {
            applied: exact::<{ Kind::Applied.fixed_body_len() }>(buf)?.slot().ok()?,
        },
        Kind::Promise => return None,
        Kind::SnapshotRequest => {
            let mut r = exact::<{ Kind::SnapshotRequest.fixed_body_len() }>(buf)?;
            let (min, slot) = (r.slot().ok()?, r.slot().ok()?);
            Message::SnapshotRequest { min, slot, id: r.u64().ok()?, offset: r.u64().ok()? }
        }
        Kind::SnapshotChunk => {
            const CHUNK: usize = Kind::SnapshotChunk.fixed_body_len();
            let mut r = body::<CHUNK>(buf)?;
            let (slot, id, total, offset) =
                (r.slot().ok()?, r.u64().ok()?, r.u64().ok()?, r.u64().ok()?);
            let data = tail::<CHUNK>(buf, r.u32().ok()?)?;
            Message::SnapshotChunk { slot, id, total, offset, data: payload(data) }
        }
        Kind::RecoveryQuery => Message::RecoveryQuery {
            nonce: exact::<{ Kind::RecoveryQuery.fixed_body_len() }>(buf)?.u64().ok()?,
        },
        // Its flags need checking: the reference path.
        Kind::RecoveryInfo => return None,
        Kind::HeartbeatAck => Message::HeartbeatAck {
            ballot: exact::<{ Kind::HeartbeatAck.fixed_body_len() }>(buf)?.ballot().ok()?,
        },
        Kind::Committed => Message::Committed {
            commit: exact::<{ Kind::Committed.fixed_body_len() }>(buf)?.slot().ok()?,
        },
        Kind::ClientRequest => {
            let mut r = body::<REQUEST>(buf)?;
            let (client, seq) = (ClientId(r.u64().ok()?), RequestSeq(r.u64().ok()?));
            let command = tail::<REQUEST>(buf, r.u32().ok()?)?;
            return Some(Envelope::Request(ClientRequest {
                client,
                seq,
                command: payload(command),
            }));
        }
        Kind::ClientReply => {
            let mut r = body::<REPLY>(buf)?;
            let (client, seq, status) =
                (ClientId(r.u64().ok()?), RequestSeq(r.u64().ok()?), r.u8().ok()?);
            r.reserved::<1>().ok()?;
            let hint = ReplicaId(r.u16().ok()?);
            let leader_hint = if hint == CLIENT { None } else { Some(hint) };
            let body = tail::<REPLY>(buf, r.u32().ok()?)?;
            return Some(Envelope::Reply(ClientReply {
                client,
                seq,
                status,
                leader_hint,
                body: payload(body),
            }));
        }
        Kind::ClientRequestBatch | Kind::ClientReplyBatch => {
            // One validation pass over the entries; the receiver iterates them afterwards.
            let count = batch::check(kind, buf).ok()?;
            let batch = Batch { count, entries: payload(BATCH_ENTRIES_OFFSET..buf.len()) };
            return Some(if kind == Kind::ClientRequestBatch {
                Envelope::RequestBatch(batch)
            } else {
                Envelope::ReplyBatch(batch)
            });
        }
    };
    Some(Envelope::Protocol(msg))
}

/// The whole datagram, with values as ranges of `buf` (the reference path).
fn parse(buf: &[u8]) -> Result<(Header, Envelope<Range<usize>>), WireError> {
    let header = peek_header(buf)?;
    let mut r = Reader::new(buf, HEADER_LEN);
    let msg = match header.kind {
        Kind::Prepare => Message::Prepare { ballot: r.ballot()?, from: r.slot()? },
        Kind::Promise => promise(&mut r)?,
        Kind::Accept => Message::Accept {
            ballot: r.ballot()?,
            slot: r.slot()?,
            commit: r.slot()?,
            value: r.value()?,
        },
        Kind::Accepted => Message::Accepted { ballot: r.ballot()?, slot: r.slot()? },
        Kind::Nack => Message::Nack { ballot: r.ballot()?, promised: r.ballot()? },
        Kind::Heartbeat => {
            Message::Heartbeat { ballot: r.ballot()?, commit: r.slot()?, trim: r.slot()? }
        }
        Kind::Repeat => Message::Repeat { from: r.slot()?, to: r.slot()? },
        Kind::Learn => Message::Learn { ballot: r.ballot()?, slot: r.slot()?, value: r.value()? },
        Kind::Trimmed => Message::Trimmed { low: r.slot()? },
        Kind::Applied => Message::Applied { applied: r.slot()? },
        Kind::SnapshotRequest => Message::SnapshotRequest {
            min: r.slot()?,
            slot: r.slot()?,
            id: r.u64()?,
            offset: r.u64()?,
        },
        Kind::SnapshotChunk => Message::SnapshotChunk {
            slot: r.slot()?,
            id: r.u64()?,
            total: r.u64()?,
            offset: r.u64()?,
            data: r.value()?,
        },
        Kind::RecoveryQuery => Message::RecoveryQuery { nonce: r.u64()? },
        Kind::RecoveryInfo => {
            let (nonce, ballot, high) = (r.u64()?, r.ballot()?, r.slot()?);
            let recovering = match r.u32()? {
                0 => false,
                1 => true,
                _ => return Err(WireError::ReservedNonZero),
            };
            Message::RecoveryInfo { nonce, ballot, high, recovering }
        }
        Kind::HeartbeatAck => Message::HeartbeatAck { ballot: r.ballot()? },
        Kind::Committed => Message::Committed { commit: r.slot()? },
        Kind::ClientRequest => {
            let req = request_entry(&mut r)?;
            r.finish()?;
            return Ok((header, Envelope::Request(req)));
        }
        Kind::ClientReply => {
            let reply = reply_entry(&mut r)?;
            r.finish()?;
            return Ok((header, Envelope::Reply(reply)));
        }
        Kind::ClientRequestBatch | Kind::ClientReplyBatch => {
            let count = batch::check(header.kind, buf)?;
            let batch = Batch { count, entries: BATCH_ENTRIES_OFFSET..buf.len() };
            return Ok((
                header,
                if header.kind == Kind::ClientRequestBatch {
                    Envelope::RequestBatch(batch)
                } else {
                    Envelope::ReplyBatch(batch)
                },
            ));
        }
    };
    r.finish()?;
    Ok((header, Envelope::Protocol(msg)))
}

/// A Promise body. The entry count is checked against the bytes left before the entries'
/// Vec is allocated, so a hostile count cannot make us allocate more than the datagram's
/// size warrants.
fn promise(r: &mut Reader<'_>) -> Result<Message<Range<usize>>, WireError> {
    let ballot = r.ballot()?;
    let from = r.slot()?;
    let low = r.slot()?;
    let end = r.slot()?;
    let high = r.slot()?;
    let chunk = r.u16()?;
    let chunks = r.u16()?;
    let count = usize::try_from(r.u32()?).map_err(|_| WireError::TooManyEntries)?;
    if chunks == 0 || chunk >= chunks {
        return Err(WireError::BadChunk);
    }
    match count.checked_mul(ENTRY_FIXED_LEN) {
        Some(min) if min <= r.remaining() => {}
        _ => return Err(WireError::TooManyEntries),
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(SlotValue { slot: r.slot()?, ballot: r.ballot()?, value: r.value()? });
    }
    Ok(Message::Promise { ballot, from, low, end, high, chunk, chunks, entries })
}
