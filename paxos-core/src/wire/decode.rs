//! Decoding without copying values: the body is first parsed into byte ranges and fully
//! validated, and only then are the ranges turned into payload handles.

use super::cursor::Reader;
use super::{
    ClientReply, ClientRequest, Envelope, Header, Kind, WireError, CLIENT, ENTRY_FIXED_LEN,
    HEADER_LEN, MAGIC, VERSION,
};
use crate::ids::{ClientId, GroupId, ReplicaId, RequestSeq};
use crate::message::{Message, SlotValue};
use core::ops::Range;

/// Validates and returns the header only (magic, version, kind, flags), without looking at
/// the body: enough for a dispatcher to route by group. Checks run in that order, after the
/// length check (`Truncated` below 12 bytes).
pub fn peek_header(buf: &[u8]) -> Result<Header, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut r = Reader::new(buf, 0);
    if [r.u8()?, r.u8()?] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if r.u8()? != VERSION {
        return Err(WireError::BadVersion);
    }
    let kind = Kind::from_u8(r.u8()?).ok_or(WireError::UnknownKind)?;
    let group = GroupId(r.u16()?);
    let from = ReplicaId(r.u16()?);
    let to = ReplicaId(r.u16()?);
    r.reserved::<2>()?; // flags
    Ok(Header { kind, group, from, to })
}

/// Decodes one datagram. `payload` turns a byte range of `buf` into the payload handle:
/// `|r| &buf[r]` for a borrowed slice, `|r| bytes.slice(r)` for `bytes::Bytes`, a refcounted
/// slice for an mbuf. It is called once per value, and only if the whole datagram is valid,
/// with ranges that lie inside `buf`. Never panics.
pub fn decode<P>(
    buf: &[u8],
    payload: impl FnMut(Range<usize>) -> P,
) -> Result<(Header, Envelope<P>), WireError> {
    let (header, env) = parse(buf)?;
    Ok((header, env.map_payload(payload)))
}

/// [`decode`] with payloads borrowed from `buf`.
pub fn decode_borrowed(buf: &[u8]) -> Result<(Header, Envelope<&[u8]>), WireError> {
    // The ranges are inside `buf` (checked by the reader); `get` keeps this panic-free anyway.
    decode(buf, |r| buf.get(r).unwrap_or_default())
}

/// The whole datagram, with values as ranges of `buf`.
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
        Kind::ClientRequest => {
            let req = ClientRequest {
                client: ClientId(r.u64()?),
                seq: RequestSeq(r.u64()?),
                command: r.value()?,
            };
            r.finish()?;
            return Ok((header, Envelope::Request(req)));
        }
        Kind::ClientReply => {
            let client = ClientId(r.u64()?);
            let seq = RequestSeq(r.u64()?);
            let status = r.u8()?;
            r.reserved::<1>()?;
            let hint = ReplicaId(r.u16()?);
            let leader_hint = if hint == CLIENT { None } else { Some(hint) };
            let reply = ClientReply { client, seq, status, leader_hint, body: r.value()? };
            r.finish()?;
            return Ok((header, Envelope::Reply(reply)));
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
    let low = r.slot()?;
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
    Ok(Message::Promise { ballot, low, chunk, chunks, entries })
}
