//! Kind numbers: the fourth header byte.

use super::BALLOT_LEN;
use crate::message::Message;

/// What the body of a datagram is. Protocol kinds are 1..=15 and 20, client kinds 16..=19
/// (single request and reply, and their batches); 0 and every other value are invalid (a zeroed
/// buffer never decodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    Prepare = 1,
    Promise = 2,
    Accept = 3,
    Accepted = 4,
    Nack = 5,
    Heartbeat = 6,
    Repeat = 7,
    Learn = 8,
    Trimmed = 9,
    Applied = 10,
    SnapshotRequest = 11,
    SnapshotChunk = 12,
    RecoveryQuery = 13,
    RecoveryInfo = 14,
    /// An acceptor's answer to a heartbeat it accepts: the leader's check-quorum evidence.
    HeartbeatAck = 15,
    ClientRequest = 16,
    ClientReply = 17,
    /// Several client requests to one replica in one datagram (see [`super::Batch`]).
    ClientRequestBatch = 18,
    /// Several client replies to one client endpoint in one datagram.
    ClientReplyBatch = 19,
    /// An acceptor's answer to an empty Repeat: the commit point it knows.
    Committed = 20,
}

const SLOT: usize = 8;
const LEN: usize = 4;

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::Prepare,
        Kind::Promise,
        Kind::Accept,
        Kind::Accepted,
        Kind::Nack,
        Kind::Heartbeat,
        Kind::Repeat,
        Kind::Learn,
        Kind::Trimmed,
        Kind::Applied,
        Kind::SnapshotRequest,
        Kind::SnapshotChunk,
        Kind::RecoveryQuery,
        Kind::RecoveryInfo,
        Kind::HeartbeatAck,
        Kind::ClientRequest,
        Kind::ClientReply,
        Kind::ClientRequestBatch,
        Kind::ClientReplyBatch,
        Kind::Committed,
    ];

    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    pub const fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Prepare,
            2 => Kind::Promise,
            3 => Kind::Accept,
            4 => Kind::Accepted,
            5 => Kind::Nack,
            6 => Kind::Heartbeat,
            7 => Kind::Repeat,
            8 => Kind::Learn,
            9 => Kind::Trimmed,
            10 => Kind::Applied,
            11 => Kind::SnapshotRequest,
            12 => Kind::SnapshotChunk,
            13 => Kind::RecoveryQuery,
            14 => Kind::RecoveryInfo,
            15 => Kind::HeartbeatAck,
            16 => Kind::ClientRequest,
            17 => Kind::ClientReply,
            18 => Kind::ClientRequestBatch,
            19 => Kind::ClientReplyBatch,
            20 => Kind::Committed,
            _ => return None,
        })
    }

    /// A short name for traces and counters (the same as [`Message::kind_name`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Prepare => "prepare",
            Kind::Promise => "promise",
            Kind::Accept => "accept",
            Kind::Accepted => "accepted",
            Kind::Nack => "nack",
            Kind::Heartbeat => "heartbeat",
            Kind::Repeat => "repeat",
            Kind::Learn => "learn",
            Kind::Trimmed => "trimmed",
            Kind::Applied => "applied",
            Kind::SnapshotRequest => "snapshot_request",
            Kind::SnapshotChunk => "snapshot_chunk",
            Kind::RecoveryQuery => "recovery_query",
            Kind::RecoveryInfo => "recovery_info",
            Kind::HeartbeatAck => "heartbeat_ack",
            Kind::ClientRequest => "client_request",
            Kind::ClientReply => "client_reply",
            Kind::ClientRequestBatch => "client_request_batch",
            Kind::ClientReplyBatch => "client_reply_batch",
            Kind::Committed => "committed",
        }
    }

    pub fn of<P>(msg: &Message<P>) -> Kind {
        match msg {
            Message::Prepare { .. } => Kind::Prepare,
            Message::Promise { .. } => Kind::Promise,
            Message::Accept { .. } => Kind::Accept,
            Message::Accepted { .. } => Kind::Accepted,
            Message::Nack { .. } => Kind::Nack,
            Message::Heartbeat { .. } => Kind::Heartbeat,
            Message::Repeat { .. } => Kind::Repeat,
            Message::Learn { .. } => Kind::Learn,
            Message::Trimmed { .. } => Kind::Trimmed,
            Message::Applied { .. } => Kind::Applied,
            Message::SnapshotRequest { .. } => Kind::SnapshotRequest,
            Message::SnapshotChunk { .. } => Kind::SnapshotChunk,
            Message::RecoveryQuery { .. } => Kind::RecoveryQuery,
            Message::RecoveryInfo { .. } => Kind::RecoveryInfo,
            Message::HeartbeatAck { .. } => Kind::HeartbeatAck,
            Message::Committed { .. } => Kind::Committed,
        }
    }

    /// True for the kinds the core does not handle (client traffic).
    pub const fn is_client(self) -> bool {
        matches!(
            self,
            Kind::ClientRequest
                | Kind::ClientReply
                | Kind::ClientRequestBatch
                | Kind::ClientReplyBatch
        )
    }

    /// For a batch kind, the single kind whose body each entry has.
    pub const fn batch_entry(self) -> Option<Kind> {
        match self {
            Kind::ClientRequestBatch => Some(Kind::ClientRequest),
            Kind::ClientReplyBatch => Some(Kind::ClientReply),
            _ => None,
        }
    }

    /// Bytes of the body besides its variable part (values and Promise entries), i.e. the
    /// smallest body of this kind.
    pub const fn fixed_body_len(self) -> usize {
        match self {
            Kind::Prepare => BALLOT_LEN + SLOT,
            // ballot, from, low, end, high, chunk u16, chunks u16, entry count u32
            Kind::Promise => BALLOT_LEN + 4 * SLOT + 2 + 2 + 4,
            Kind::Accept => BALLOT_LEN + SLOT + SLOT + LEN,
            Kind::Accepted => BALLOT_LEN + SLOT,
            Kind::Nack => BALLOT_LEN + BALLOT_LEN,
            Kind::Heartbeat => BALLOT_LEN + SLOT + SLOT,
            Kind::Repeat => SLOT + SLOT,
            Kind::Learn => BALLOT_LEN + SLOT + LEN,
            Kind::Trimmed => SLOT,
            Kind::Applied => SLOT,
            // min, slot, id u64, offset u64
            Kind::SnapshotRequest => 4 * SLOT,
            // slot, id u64, total u64, offset u64, data length
            Kind::SnapshotChunk => 4 * SLOT + LEN,
            // nonce u64
            Kind::RecoveryQuery => SLOT,
            // nonce u64, ballot, high, flags u32 (bit 0: recovering; the rest zero)
            Kind::RecoveryInfo => SLOT + BALLOT_LEN + SLOT + 4,
            Kind::HeartbeatAck => BALLOT_LEN,
            Kind::Committed => SLOT,
            // client u64, seq u64, command length
            Kind::ClientRequest => 8 + 8 + LEN,
            // client u64, seq u64, status u8, reserved u8, leader hint u16, body length
            Kind::ClientReply => 8 + 8 + 1 + 1 + 2 + LEN,
            // entry count u16, reserved u16; then the entries
            Kind::ClientRequestBatch | Kind::ClientReplyBatch => 2 + 2,
        }
    }
}
