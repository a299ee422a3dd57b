//! Encoding into a caller-provided buffer (an mbuf's data room, a stack array): no
//! allocation, and the exact size is known beforehand from `*_encoded_len`.

use super::cursor::Writer;
use super::{
    ClientReply, ClientRequest, Envelope, Kind, Route, WireError, CLIENT, ENTRY_FIXED_LEN,
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
    }
}

fn fixed_len(kind: Kind) -> usize {
    HEADER_LEN + kind.fixed_body_len()
}

/// Writes `msg` with the header `route` at the start of `buf`; returns the bytes written
/// (always `encoded_len(msg)`).
///
/// Errors: `BufferTooSmall`; `BadChunk` and `TooManyEntries` for a Promise that decode would
/// refuse; `ValueTooLarge` for a value of 4 GiB or more.
pub fn encode<P: AsRef<[u8]>>(
    route: Route,
    msg: &Message<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let len = encoded_len(msg);
    let mut w = start(route, Kind::of(msg), len, buf)?;
    match msg {
        Message::Prepare { ballot, from } => {
            w.ballot(*ballot)?;
            w.slot(*from)?;
        }
        Message::Promise { ballot, low, chunk, chunks, entries } => {
            if *chunks == 0 || chunk >= chunks {
                return Err(WireError::BadChunk);
            }
            let count = u32::try_from(entries.len()).map_err(|_| WireError::TooManyEntries)?;
            w.ballot(*ballot)?;
            w.slot(*low)?;
            w.u16(*chunk)?;
            w.u16(*chunks)?;
            w.u32(count)?;
            for e in entries {
                w.slot(e.slot)?;
                w.ballot(e.ballot)?;
                w.value(e.value.as_ref())?;
            }
        }
        Message::Accept { ballot, slot, commit, value } => {
            w.ballot(*ballot)?;
            w.slot(*slot)?;
            w.slot(*commit)?;
            w.value(value.as_ref())?;
        }
        Message::Accepted { ballot, slot } => {
            w.ballot(*ballot)?;
            w.slot(*slot)?;
        }
        Message::Nack { ballot, promised } => {
            w.ballot(*ballot)?;
            w.ballot(*promised)?;
        }
        Message::Heartbeat { ballot, commit, trim } => {
            w.ballot(*ballot)?;
            w.slot(*commit)?;
            w.slot(*trim)?;
        }
        Message::Repeat { from, to } => {
            w.slot(*from)?;
            w.slot(*to)?;
        }
        Message::Learn { ballot, slot, value } => {
            w.ballot(*ballot)?;
            w.slot(*slot)?;
            w.value(value.as_ref())?;
        }
        Message::Trimmed { low } => w.slot(*low)?,
        Message::Applied { applied } => w.slot(*applied)?,
    }
    Ok(w.written())
}

/// Writes a client request; returns the bytes written (`request_encoded_len(req)`).
pub fn encode_request<P: AsRef<[u8]>>(
    route: Route,
    req: &ClientRequest<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let len = request_encoded_len(req);
    let mut w = start(route, Kind::ClientRequest, len, buf)?;
    w.u64(req.client.0)?;
    w.u64(req.seq.0)?;
    w.value(req.command.as_ref())?;
    Ok(w.written())
}

/// Writes a client reply; returns the bytes written (`reply_encoded_len(reply)`).
pub fn encode_reply<P: AsRef<[u8]>>(
    route: Route,
    reply: &ClientReply<P>,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let len = reply_encoded_len(reply);
    let mut w = start(route, Kind::ClientReply, len, buf)?;
    w.u64(reply.client.0)?;
    w.u64(reply.seq.0)?;
    w.u8(reply.status)?;
    w.u8(0)?; // reserved
    w.u16(reply.leader_hint.unwrap_or(CLIENT).0)?;
    w.value(reply.body.as_ref())?;
    Ok(w.written())
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
    }
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
