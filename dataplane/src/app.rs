//! The application seam: what a replica does with the commands the group decides.
//!
//! # The log command
//! A client's command is not put into the log bare. The leader's driver wraps it in a fixed
//! 32-byte header saying who asked and where the answer goes, so that *any* replica that
//! proposed a command can answer it after applying, without a table of pending requests
//! (which a new leader would not have anyway):
//!
//! ```text
//! offset size field
//!      0    8 client     ClientId (u64 LE)
//!      8    8 seq        RequestSeq (u64 LE)
//!     16    2 proposer   ReplicaId of the replica that proposed it (u16 LE): it replies
//!     18    4 reply ip   IPv4 address, network order (the request's source)
//!     22    2 reply port u16 LE
//!     24    6 reply mac  the request's source MAC (zero on kernel sockets)
//!     30    2 flags      reserved, 0 (a future kind of internal command)
//!     32    - command    the client's bytes, opaque
//! ```
//! Integers are little-endian like the rest of the wire format. [`LogCommand::parse`]
//! borrows the command from the batch (no copy); [`LogCommand::write`] appends the header
//! and command to a buffer the caller reuses.
//!
//! # Replies
//! Every replica applies every command in log order; only the one whose id equals
//! `proposer` answers, with the status and body [`Application::apply`] returns, to the
//! reply endpoint. Exactly-once semantics are the application's business: it sees
//! `(client, seq)` and can keep a session table and answer a retried request from it.

use crate::io::Endpoint;
use crate::wire::MacAddr;
use paxos_core::{ClientId, ReplicaId, RequestSeq, Slot};
use std::net::Ipv4Addr;

/// Client-visible status codes (the `status` byte of a `ClientReply`). Values below
/// [`status::APP_BASE`] are reserved for the driver and the generic codes here;
/// applications define their own from `APP_BASE` up.
pub mod status {
    /// The command was applied; the body is the application's answer.
    pub const OK: u8 = 0;
    /// This replica does not lead; retry at the reply's leader hint (or another replica
    /// if the hint is unknown). The command was not queued.
    pub const NOT_LEADER: u8 = 1;
    /// The leader's queue of batches is full: back off and retry. Not queued.
    pub const BUSY: u8 = 2;
    /// The command (plus the 32-byte log header) does not fit one batch. Do not retry.
    pub const TOO_LARGE: u8 = 3;
    /// The application could not parse the command (it was applied as a no-op). Do not retry.
    pub const MALFORMED: u8 = 4;
    /// The command was applied but the answer did not fit one datagram; the body is empty.
    pub const REPLY_TOO_LARGE: u8 = 5;
    /// First application-defined status.
    pub const APP_BASE: u8 = 16;

    /// A short name for logs.
    pub fn name(status: u8) -> &'static str {
        match status {
            OK => "ok",
            NOT_LEADER => "not_leader",
            BUSY => "busy",
            TOO_LARGE => "too_large",
            MALFORMED => "malformed",
            REPLY_TOO_LARGE => "reply_too_large",
            s if s >= APP_BASE => "app",
            _ => "reserved",
        }
    }
}

/// A decided command with its log header, borrowed from the decided batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogCommand<'a> {
    pub client: ClientId,
    pub seq: RequestSeq,
    /// The replica that proposed it, and so answers it.
    pub proposer: ReplicaId,
    /// Where the answer goes (the request's source).
    pub reply_to: Endpoint,
    /// The client's command bytes.
    pub command: &'a [u8],
}

/// Why a decided record is not a [`LogCommand`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogCommandError {
    /// Shorter than [`LogCommand::HEADER_LEN`].
    Truncated,
    /// The flags field is not zero (written by a newer version).
    ReservedNonZero,
}

impl<'a> LogCommand<'a> {
    /// Bytes of the header in front of the client's command.
    pub const HEADER_LEN: usize = 32;

    /// Reads the header of one decided command record. Never panics.
    pub fn parse(record: &'a [u8]) -> Result<LogCommand<'a>, LogCommandError> {
        if record.len() < Self::HEADER_LEN {
            return Err(LogCommandError::Truncated);
        }
        let (h, command) = record.split_at(Self::HEADER_LEN);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        if u16_at(30) != 0 {
            return Err(LogCommandError::ReservedNonZero);
        }
        Ok(LogCommand {
            client: ClientId(u64_at(0)),
            seq: RequestSeq(u64_at(8)),
            proposer: ReplicaId(u16_at(16)),
            reply_to: Endpoint::new(
                MacAddr::from_bytes(&h[24..30]),
                Ipv4Addr::new(h[18], h[19], h[20], h[21]),
                u16_at(22),
            ),
            command,
        })
    }

    /// Bytes [`write`](Self::write) appends.
    pub fn encoded_len(&self) -> usize {
        Self::HEADER_LEN + self.command.len()
    }

    /// Appends the header and the command to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.client.0.to_le_bytes());
        out.extend_from_slice(&self.seq.0.to_le_bytes());
        out.extend_from_slice(&self.proposer.0.to_le_bytes());
        out.extend_from_slice(&self.reply_to.ip.octets());
        out.extend_from_slice(&self.reply_to.port.to_le_bytes());
        out.extend_from_slice(&self.reply_to.mac.0);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(self.command);
    }
}

/// The replicated state machine one group drives.
pub trait Application {
    /// Applies one decided command, in log order (`slot`, then position in the batch).
    /// Write the answer's body into `reply` (empty on entry) and return its status
    /// (see [`status`]), or `None` to send no reply at all. Only the proposing replica's
    /// answer is sent, but every replica must apply deterministically.
    fn apply(&mut self, slot: Slot, cmd: &LogCommand<'_>, reply: &mut Vec<u8>) -> Option<u8>;

    /// A snapshot of the state covering every slot applied so far, for a replica that fell
    /// below the log's trim point (the driver serves it in chunks, see
    /// `paxos_core::snapshot`). `None`: snapshots are not supported.
    fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Replaces the state with a snapshot covering every slot below `upto`. Returns false
    /// if it could not be installed (or snapshots are not supported).
    fn install_snapshot(&mut self, upto: Slot, data: &[u8]) -> bool {
        let _ = (upto, data);
        false
    }

    /// Called once per poll after the decided slots were applied, with `next`: every slot
    /// below it is applied. Returns the *durable* applied point: every slot below it is in
    /// application state that survives a restart (a snapshot on disk, tagged with its slot).
    /// The log is trimmed only where a majority of learners report theirs. `None` (the
    /// default, for state kept in memory only): what was applied counts.
    fn checkpoint(&mut self, next: Slot) -> Option<Slot> {
        let _ = next;
        None
    }
}

/// A test and benchmark application: answers `OK` with the slot number (u64 LE) followed by
/// the command, and keeps a running digest of everything it applied (slot, client, seq,
/// command), so tests can check that replicas applied the same log in the same order.
#[derive(Clone, Debug)]
pub struct EchoApp {
    applied: u64,
    digest: u64,
    last_slot: Option<Slot>,
}

impl Default for EchoApp {
    fn default() -> Self {
        EchoApp { applied: 0, digest: FNV_OFFSET, last_slot: None }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl EchoApp {
    /// Commands applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }
    /// FNV-1a over every applied (slot, client, seq, command) in order.
    pub fn digest(&self) -> u64 {
        self.digest
    }
    /// Slot of the last applied command.
    pub fn last_slot(&self) -> Option<Slot> {
        self.last_slot
    }
}

impl Application for EchoApp {
    fn apply(&mut self, slot: Slot, cmd: &LogCommand<'_>, reply: &mut Vec<u8>) -> Option<u8> {
        self.applied += 1;
        self.last_slot = Some(slot);
        let mut h = fnv(self.digest, &slot.0.to_le_bytes());
        h = fnv(h, &cmd.client.0.to_le_bytes());
        h = fnv(h, &cmd.seq.0.to_le_bytes());
        h = fnv(h, &(cmd.command.len() as u64).to_le_bytes());
        self.digest = fnv(h, cmd.command);
        reply.extend_from_slice(&slot.0.to_le_bytes());
        reply.extend_from_slice(cmd.command);
        Some(status::OK)
    }

    /// Commands applied, digest and last slot (25 bytes).
    fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        let mut v = Vec::with_capacity(25);
        v.extend_from_slice(&self.applied.to_le_bytes());
        v.extend_from_slice(&self.digest.to_le_bytes());
        match self.last_slot {
            Some(s) => {
                v.push(1);
                v.extend_from_slice(&s.0.to_le_bytes());
            }
            None => v.extend_from_slice(&[0; 9]),
        }
        Some(v)
    }

    fn install_snapshot(&mut self, _upto: Slot, data: &[u8]) -> bool {
        let word =
            |i: usize| data.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        match (data.len(), word(0), word(8), data.get(16), word(17)) {
            (25, Some(applied), Some(digest), Some(&flag), Some(last)) if flag <= 1 => {
                self.applied = applied;
                self.digest = digest;
                self.last_slot = (flag == 1).then_some(Slot(last));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_command_round_trip() {
        let c = LogCommand {
            client: ClientId(0x0102_0304_0506_0708),
            seq: RequestSeq(42),
            proposer: ReplicaId(3),
            reply_to: Endpoint::new(MacAddr([1, 2, 3, 4, 5, 6]), Ipv4Addr::new(10, 0, 0, 9), 7001),
            command: b"set x 1",
        };
        let mut buf = vec![0xAA]; // appends, keeps what is there
        c.write(&mut buf);
        assert_eq!(buf.len(), 1 + c.encoded_len());
        assert_eq!(&buf[1..9], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&buf[19..23], &[10, 0, 0, 9]);
        assert_eq!(LogCommand::parse(&buf[1..]), Ok(c));
    }

    #[test]
    fn log_command_rejects_short_and_flagged() {
        assert_eq!(LogCommand::parse(&[0u8; 31]), Err(LogCommandError::Truncated));
        let mut buf = vec![0u8; 32];
        assert_eq!(LogCommand::parse(&buf).map(|c| c.command.len()), Ok(0));
        buf[31] = 1;
        assert_eq!(LogCommand::parse(&buf), Err(LogCommandError::ReservedNonZero));
    }

    #[test]
    fn echo_digest_depends_on_order() {
        let cmd = |seq, body: &'static [u8]| LogCommand {
            client: ClientId(1),
            seq: RequestSeq(seq),
            proposer: ReplicaId(0),
            reply_to: Endpoint::udp(Ipv4Addr::LOCALHOST, 1),
            command: body,
        };
        let (mut a, mut b) = (EchoApp::default(), EchoApp::default());
        let mut r = Vec::new();
        a.apply(Slot(0), &cmd(1, b"x"), &mut r);
        a.apply(Slot(0), &cmd(2, b"y"), &mut r);
        b.apply(Slot(0), &cmd(2, b"y"), &mut r);
        b.apply(Slot(0), &cmd(1, b"x"), &mut r);
        assert_eq!(a.applied(), b.applied());
        assert_ne!(a.digest(), b.digest());
        r.clear();
        assert_eq!(a.apply(Slot(7), &cmd(3, b"hi"), &mut r), Some(status::OK));
        assert_eq!(&r[..8], &7u64.to_le_bytes());
        assert_eq!(&r[8..], b"hi");
    }
}
