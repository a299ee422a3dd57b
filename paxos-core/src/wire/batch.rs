//! Client batches: several client requests (kind 18) or replies (kind 19) in one datagram.
//!
//! ```text
//! offset size field
//!      0   12 header     kind 18 (from = 0xFFFF, to = the replica) or 19 (to = 0xFFFF)
//!     12    2 count      entries that follow, >= 1
//!     14    2 reserved   0
//!     16    - entries    `count` entries back to back; each is exactly the body of the
//!                        single kind (ClientRequest: client, seq, len, command;
//!                        ClientReply: client, seq, status, reserved, hint, len, body)
//! ```
//! Every entry is a complete request or reply of its own (its own client id and sequence
//! number, its own status and leader hint), so sessions, retries and redirects work per
//! entry exactly as with the single kinds. The datagram is validated as a whole (every
//! entry, no trailing bytes) before any entry is handed out, so a receiver never acts on
//! half of a malformed batch.
//!
//! A sender that has a single entry sends the single kind instead; [`BatchBuilder`] does
//! that by itself.

use super::cursor::Reader;
use super::encode::header;
use super::{ClientReply, ClientRequest, Kind, Route, WireError, CLIENT, HEADER_LEN};
use crate::ids::{ClientId, ReplicaId, RequestSeq};
use core::ops::Range;

/// Offset of the first entry in a batch datagram.
pub const BATCH_ENTRIES_OFFSET: usize = HEADER_LEN + 4;

/// A validated batch: `count` entries, `entries` the bytes after the count (offset
/// [`BATCH_ENTRIES_OFFSET`] of the datagram). Read them with [`Batch::requests`] or
/// [`Batch::replies`]; their byte ranges are relative to `entries`, so a receiver makes
/// zero-copy payloads with `entries.slice(r)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<P> {
    pub count: u16,
    pub entries: P,
}

impl<P: AsRef<[u8]>> Batch<P> {
    /// The requests of a kind-18 batch, in order. (On a batch that did not come from
    /// `decode`, iteration stops at the first malformed entry.)
    pub fn requests(&self) -> Requests<'_> {
        Requests { r: Reader::new(self.entries.as_ref(), 0), left: self.count }
    }

    /// The replies of a kind-19 batch, in order.
    pub fn replies(&self) -> Replies<'_> {
        Replies { r: Reader::new(self.entries.as_ref(), 0), left: self.count }
    }
}

/// Iterator over a batch's requests; command ranges are relative to `Batch::entries`.
pub struct Requests<'a> {
    r: Reader<'a>,
    left: u16,
}

impl Iterator for Requests<'_> {
    type Item = ClientRequest<Range<usize>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let e = request_entry(&mut self.r).ok();
        if e.is_none() {
            self.left = 0;
        }
        e
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// Iterator over a batch's replies; body ranges are relative to `Batch::entries`.
pub struct Replies<'a> {
    r: Reader<'a>,
    left: u16,
}

impl Iterator for Replies<'_> {
    type Item = ClientReply<Range<usize>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let e = reply_entry(&mut self.r).ok();
        if e.is_none() {
            self.left = 0;
        }
        e
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// A ClientRequest body (also a kind-18 entry): client, seq, command.
#[inline]
pub(super) fn request_entry(r: &mut Reader<'_>) -> Result<ClientRequest<Range<usize>>, WireError> {
    Ok(ClientRequest { client: ClientId(r.u64()?), seq: RequestSeq(r.u64()?), command: r.value()? })
}

/// A ClientReply body (also a kind-19 entry): client, seq, status, reserved, hint, body.
#[inline]
pub(super) fn reply_entry(r: &mut Reader<'_>) -> Result<ClientReply<Range<usize>>, WireError> {
    let client = ClientId(r.u64()?);
    let seq = RequestSeq(r.u64()?);
    let status = r.u8()?;
    r.reserved::<1>()?;
    let hint = ReplicaId(r.u16()?);
    let leader_hint = if hint == CLIENT { None } else { Some(hint) };
    Ok(ClientReply { client, seq, status, leader_hint, body: r.value()? })
}

/// Validates a batch datagram of `kind` (18 or 19; the header is already checked):
/// count, reserved bytes, every entry, no trailing bytes. Returns the count. Errors in the
/// order the fields come: `Truncated`, `ReservedNonZero`, `EmptyBatch`, `TooManyEntries`
/// (the count cannot fit the bytes left), then the first bad entry's error, then
/// `TrailingBytes`.
pub(super) fn check(kind: Kind, buf: &[u8]) -> Result<u16, WireError> {
    let mut r = Reader::new(buf, HEADER_LEN);
    let count = r.u16()?;
    r.reserved::<2>()?;
    let entries = buf.get(BATCH_ENTRIES_OFFSET..).ok_or(WireError::Truncated)?;
    check_entries(kind, count, entries)?;
    Ok(count)
}

/// Validates `count` entries of batch `kind` filling `entries` exactly.
pub(super) fn check_entries(kind: Kind, count: u16, entries: &[u8]) -> Result<(), WireError> {
    let entry = kind.batch_entry().ok_or(WireError::UnknownKind)?;
    if count == 0 {
        return Err(WireError::EmptyBatch);
    }
    if usize::from(count) * entry.fixed_body_len() > entries.len() {
        return Err(WireError::TooManyEntries);
    }
    let mut r = Reader::new(entries, 0);
    for _ in 0..count {
        match entry {
            Kind::ClientRequest => request_entry(&mut r).map(drop)?,
            _ => reply_entry(&mut r).map(drop)?,
        }
    }
    r.finish()
}

/// Collects client requests (or replies) for one destination into one datagram of at most
/// `max_bytes` bytes, without allocating after construction. With one entry it produces
/// the single kind (16 or 17), with more a batch (18 or 19): the entries are written once,
/// at [`BATCH_ENTRIES_OFFSET`], and [`finish`](Self::finish) puts the right header in front.
///
/// ```
/// # use paxos_core::wire::{BatchBuilder, ClientRequest, Route, CLIENT, decode_borrowed, Envelope};
/// # use paxos_core::{ClientId, GroupId, ReplicaId, RequestSeq};
/// let mut b = BatchBuilder::requests(1472);
/// for seq in 1..=3 {
///     let req = ClientRequest { client: ClientId(7), seq: RequestSeq(seq), command: &b"get k"[..] };
///     assert!(b.push_request(&req)); // false: full, send what is there first
/// }
/// let route = Route { group: GroupId(0), from: CLIENT, to: ReplicaId(1) };
/// let bytes = b.finish(route).to_vec();
/// b.clear();
/// let Ok((_, Envelope::RequestBatch(batch))) = decode_borrowed(&bytes) else { panic!() };
/// assert_eq!(batch.requests().count(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    /// The single kind of the entries: ClientRequest or ClientReply.
    entry: Kind,
    /// `[0, BATCH_ENTRIES_OFFSET)`: room for the header (and count), then the entries.
    buf: Vec<u8>,
    count: u16,
    max_bytes: usize,
}

impl BatchBuilder {
    /// A builder of request datagrams of at most `max_bytes` bytes.
    pub fn requests(max_bytes: usize) -> BatchBuilder {
        BatchBuilder::new(Kind::ClientRequest, max_bytes)
    }

    /// A builder of reply datagrams of at most `max_bytes` bytes.
    pub fn replies(max_bytes: usize) -> BatchBuilder {
        BatchBuilder::new(Kind::ClientReply, max_bytes)
    }

    fn new(entry: Kind, max_bytes: usize) -> BatchBuilder {
        // The entries of a full datagram plus the batch header: at most max_bytes + 4.
        let mut buf = Vec::with_capacity(max_bytes.saturating_add(4).max(BATCH_ENTRIES_OFFSET));
        buf.resize(BATCH_ENTRIES_OFFSET, 0);
        BatchBuilder { entry, buf, count: 0, max_bytes }
    }

    /// Entries collected.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes [`finish`](Self::finish) returns (0 when empty).
    pub fn datagram_len(&self) -> usize {
        let entries = self.buf.len() - BATCH_ENTRIES_OFFSET;
        match self.count {
            0 => 0,
            1 => HEADER_LEN + entries,
            _ => BATCH_ENTRIES_OFFSET + entries,
        }
    }

    /// Would one more entry of `entry_len` bytes fit?
    fn fits(&self, entry_len: usize) -> bool {
        let entries = (self.buf.len() - BATCH_ENTRIES_OFFSET).saturating_add(entry_len);
        let total = if self.count == 0 { HEADER_LEN } else { BATCH_ENTRIES_OFFSET };
        self.count < u16::MAX && total.saturating_add(entries) <= self.max_bytes
    }

    /// Appends a request. Returns false, changing nothing, if it does not fit (send what
    /// is collected, clear, push again; on an empty builder false means the request alone
    /// exceeds `max_bytes`). Panics if this is a reply builder.
    pub fn push_request<P: AsRef<[u8]>>(&mut self, req: &ClientRequest<P>) -> bool {
        assert_eq!(self.entry, Kind::ClientRequest, "push_request on a reply builder");
        let command = req.command.as_ref();
        let Ok(len) = u32::try_from(command.len()) else { return false };
        if !self.fits(Kind::ClientRequest.fixed_body_len().saturating_add(command.len())) {
            return false;
        }
        self.buf.extend_from_slice(&req.client.0.to_le_bytes());
        self.buf.extend_from_slice(&req.seq.0.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(command);
        self.count += 1;
        true
    }

    /// Appends a reply; as [`push_request`](Self::push_request). Panics if this is a
    /// request builder.
    pub fn push_reply<P: AsRef<[u8]>>(&mut self, reply: &ClientReply<P>) -> bool {
        assert_eq!(self.entry, Kind::ClientReply, "push_reply on a request builder");
        let body = reply.body.as_ref();
        let Ok(len) = u32::try_from(body.len()) else { return false };
        if !self.fits(Kind::ClientReply.fixed_body_len().saturating_add(body.len())) {
            return false;
        }
        let hint = reply.leader_hint.unwrap_or(CLIENT).0.to_le_bytes();
        let mut fixed = [0u8; 24];
        fixed[..8].copy_from_slice(&reply.client.0.to_le_bytes());
        fixed[8..16].copy_from_slice(&reply.seq.0.to_le_bytes());
        fixed[16] = reply.status;
        // fixed[17]: reserved, 0
        fixed[18..20].copy_from_slice(&hint);
        fixed[20..24].copy_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&fixed);
        self.buf.extend_from_slice(body);
        self.count += 1;
        true
    }

    /// The datagram: the single kind for one entry, a batch for more, nothing when empty.
    /// The entries stay until [`clear`](Self::clear).
    pub fn finish(&mut self, route: Route) -> &[u8] {
        match self.count {
            0 => &[],
            1 => {
                let start = BATCH_ENTRIES_OFFSET - HEADER_LEN;
                self.buf[start..BATCH_ENTRIES_OFFSET].copy_from_slice(&header(route, self.entry));
                &self.buf[start..]
            }
            n => {
                let kind = match self.entry {
                    Kind::ClientRequest => Kind::ClientRequestBatch,
                    _ => Kind::ClientReplyBatch,
                };
                self.buf[..HEADER_LEN].copy_from_slice(&header(route, kind));
                self.buf[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&n.to_le_bytes());
                self.buf[HEADER_LEN + 2..BATCH_ENTRIES_OFFSET].fill(0);
                &self.buf[..]
            }
        }
    }

    /// Forgets the entries (keeps the buffer).
    pub fn clear(&mut self) {
        self.buf.truncate(BATCH_ENTRIES_OFFSET);
        self.count = 0;
    }
}
