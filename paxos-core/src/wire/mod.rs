//! Wire encoding of protocol messages: one UDP datagram carries one message.
//!
//! Every datagram starts with a fixed 12-byte header; the body that follows depends on the
//! kind. All integers are fixed-width little-endian; there is no padding and no alignment
//! requirement. The full byte tables are in `docs/wire-format.md`.
//!
//! ```text
//! offset size field
//!      0    2 magic    "PX" (0x50 0x58)
//!      2    1 version  2
//!      3    1 kind     see [`Kind`]
//!      4    2 group    GroupId
//!      6    2 from     sender ReplicaId (0xFFFF = a client)
//!      8    2 to       destination ReplicaId (0xFFFF = a client)
//!     10    2 flags    reserved, 0
//! ```
//! A ballot is `round u32, leader u16, reserved u16 = 0` (8 bytes), a slot a `u64`, a value
//! (batch, command, reply body) a `u32` length followed by that many bytes.
//!
//! Besides every [`Message`] kind the same header carries the client kinds
//! ([`ClientRequest`], [`ClientReply`], and [`Batch`]es of several of either in one
//! datagram), so one port serves replicas and clients alike; [`peek_header`] lets a
//! dispatcher route by group without decoding the body.
//!
//! ## Panic contract
//! `decode` never panics, on any input: every malformed datagram is a typed [`WireError`]
//! (one cause per variant, so drops can be counted by cause). `encode` never panics and writes
//! exactly `encoded_len` bytes when `buf` is large enough; otherwise it returns
//! [`WireError::BufferTooSmall`] (the contents of `buf` are then unspecified).
//!
//! ## Zero copy and canonical form
//! Decoding copies no value bytes: the caller's closure turns each value's byte range of the
//! input into its payload handle (`&buf[r]`, `Bytes::slice(r)`, an mbuf slice), and it is
//! called only once the whole datagram has been validated. Reserved bytes must be zero and
//! trailing bytes are rejected, so the encoding is canonical: a datagram `decode` accepts
//! re-encodes to exactly the same bytes.

mod batch;
mod cursor;
mod decode;
mod encode;
mod error;
mod kind;
#[cfg(test)]
mod tests;

pub use batch::{Batch, BatchBuilder, Replies, Requests, BATCH_ENTRIES_OFFSET};
pub use decode::{decode, decode_borrowed, peek_header};
pub use encode::{
    batch_encoded_len, encode, encode_batch, encode_envelope, encode_reply, encode_request,
    encoded_len, envelope_encoded_len, reply_encoded_len, request_encoded_len,
};
pub use error::WireError;
pub use kind::Kind;

use crate::ids::{ClientId, GroupId, ReplicaId, RequestSeq};
use crate::message::Message;

/// The first two bytes of every datagram: "PX".
pub const MAGIC: [u8; 2] = *b"PX";
/// The only version this code speaks. Any change to a layout means a new version.
pub const VERSION: u8 = 2;
/// Bytes of the fixed datagram header.
pub const HEADER_LEN: usize = 12;
/// Bytes of a ballot on the wire: round u32, leader u16, reserved u16.
pub const BALLOT_LEN: usize = 8;
/// Bytes of a Promise entry besides its value: slot u64, ballot, value length u32.
pub const ENTRY_FIXED_LEN: usize = 8 + BALLOT_LEN + 4;
/// The id a client has on the wire (`from` of a request, `to` of a reply), and "unknown" in
/// a reply's leader hint. No replica may use it.
pub const CLIENT: ReplicaId = ReplicaId(0xFFFF);

// The core budgets messages with upper bounds of this encoding (the acceptor when it splits
// promises into chunks, `Config::validate` for batch sizes); keep them true at compile time.
const _: () =
    assert!(HEADER_LEN + Kind::Promise.fixed_body_len() <= crate::acceptor::PROMISE_HEADER_BYTES);
const _: () = assert!(ENTRY_FIXED_LEN <= crate::acceptor::PROMISE_ENTRY_BYTES);
const _: () = assert!(
    HEADER_LEN + Kind::Accept.fixed_body_len() <= crate::config::ACCEPT_OVERHEAD_BYTES as usize
);

/// Who a datagram is from and to: the header fields the sender chooses (the kind follows
/// from the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub group: GroupId,
    pub from: ReplicaId,
    pub to: ReplicaId,
}

/// A decoded datagram header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub kind: Kind,
    pub group: GroupId,
    pub from: ReplicaId,
    pub to: ReplicaId,
}

impl Header {
    pub fn route(&self) -> Route {
        Route { group: self.group, from: self.from, to: self.to }
    }
}

/// A client's command for the group's replicated state machine. The core never sees it: the
/// driver batches `command` into a value with [`crate::Node::propose`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest<P> {
    pub client: ClientId,
    pub seq: RequestSeq,
    pub command: P,
}

impl<P> ClientRequest<P> {
    /// Re-wraps the command (e.g. a byte range of a batch into a payload handle).
    pub fn map_command<Q>(self, f: impl FnOnce(P) -> Q) -> ClientRequest<Q> {
        ClientRequest { client: self.client, seq: self.seq, command: f(self.command) }
    }
}

/// The answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReply<P> {
    pub client: ClientId,
    pub seq: RequestSeq,
    /// Application-defined outcome (e.g. ok, not the leader, overloaded).
    pub status: u8,
    /// Where the client should retry; `None` is 0xFFFF ([`CLIENT`]) on the wire.
    pub leader_hint: Option<ReplicaId>,
    pub body: P,
}

impl<P> ClientReply<P> {
    /// Re-wraps the body (e.g. a byte range of a batch into a payload handle).
    pub fn map_body<Q>(self, f: impl FnOnce(P) -> Q) -> ClientReply<Q> {
        let ClientReply { client, seq, status, leader_hint, body } = self;
        ClientReply { client, seq, status, leader_hint, body: f(body) }
    }
}

/// Everything one datagram can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope<P> {
    Protocol(Message<P>),
    Request(ClientRequest<P>),
    Reply(ClientReply<P>),
    /// Several requests to one replica (kind 18); iterate with [`Batch::requests`].
    RequestBatch(Batch<P>),
    /// Several replies to one client endpoint (kind 19); iterate with [`Batch::replies`].
    ReplyBatch(Batch<P>),
}

impl<P> Envelope<P> {
    pub fn kind(&self) -> Kind {
        match self {
            Envelope::Protocol(m) => Kind::of(m),
            Envelope::Request(_) => Kind::ClientRequest,
            Envelope::Reply(_) => Kind::ClientReply,
            Envelope::RequestBatch(_) => Kind::ClientRequestBatch,
            Envelope::ReplyBatch(_) => Kind::ClientReplyBatch,
        }
    }

    /// Re-wraps the payloads (e.g. from byte ranges or `&[u8]` to an owned handle).
    pub fn map_payload<Q>(self, mut f: impl FnMut(P) -> Q) -> Envelope<Q> {
        match self {
            Envelope::Protocol(m) => Envelope::Protocol(m.map_payload(f)),
            Envelope::Request(ClientRequest { client, seq, command }) => {
                Envelope::Request(ClientRequest { client, seq, command: f(command) })
            }
            Envelope::Reply(ClientReply { client, seq, status, leader_hint, body }) => {
                Envelope::Reply(ClientReply { client, seq, status, leader_hint, body: f(body) })
            }
            Envelope::RequestBatch(Batch { count, entries }) => {
                Envelope::RequestBatch(Batch { count, entries: f(entries) })
            }
            Envelope::ReplyBatch(Batch { count, entries }) => {
                Envelope::ReplyBatch(Batch { count, entries: f(entries) })
            }
        }
    }
}
