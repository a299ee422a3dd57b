//! Payload handles and the batch format.
//!
//! A slot's value is one payload holding a *batch*: zero or more command records laid end to
//! end, each `len: u32 LE` followed by `len` bytes. The empty value is the no-op that fills
//! holes. The core never looks inside a command.

use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

/// A cheaply clonable, immutable view of bytes. Cloning must not copy the bytes (a refcount
/// increment at most).
pub trait Payload: Clone + AsRef<[u8]> + fmt::Debug {}

impl Payload for Bytes {}
impl Payload for &[u8] {}

/// Builds batch values on the leader: commands are appended to one open value, which is
/// sealed into a payload. Implementations should not allocate per value in steady state
/// (e.g. carve values out of a larger arena, or take an mbuf from a pool).
pub trait ValueBuilder<P> {
    /// Appends one command record (length prefix + bytes) to the open value.
    fn push_command(&mut self, command: &[u8]);
    /// Bytes in the open value.
    fn open_len(&self) -> usize;
    /// Seals the open value into a payload and starts a new, empty one.
    fn seal(&mut self) -> P;
    /// A payload for the no-op value.
    fn noop(&mut self) -> P;
    /// A payload handle over bytes the caller already holds (snapshot chunks, values read
    /// back from disk): no copy where the handle type can share them.
    fn wrap(&mut self, bytes: Bytes) -> P;
}

/// Encoded size of a command record.
#[inline]
pub fn record_len(command_len: usize) -> usize {
    4 + command_len
}

/// Iterates the commands of a batch value. Stops (without panicking) at a truncated record,
/// which `is_well_formed` reports.
pub fn commands(value: &[u8]) -> Commands<'_> {
    Commands { rest: value }
}

pub struct Commands<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Commands<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < 4 {
            return None;
        }
        let len =
            u32::from_le_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]) as usize;
        let body = self.rest.get(4..4 + len)?;
        self.rest = &self.rest[4 + len..];
        Some(body)
    }
}

/// True if `value` is a sequence of complete command records.
pub fn is_well_formed(value: &[u8]) -> bool {
    let mut rest = value;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return false;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            return false;
        }
        rest = &rest[4 + len..];
    }
    true
}

/// A `ValueBuilder` for `Bytes` that carves values out of a shared arena: one heap
/// allocation per `ARENA_BYTES` of values, not per value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BytesBuilder {
    arena: BytesMut,
}

impl BytesBuilder {
    pub const ARENA_BYTES: usize = 64 * 1024;
}

impl Default for BytesBuilder {
    fn default() -> Self {
        BytesBuilder { arena: BytesMut::with_capacity(Self::ARENA_BYTES) }
    }
}

impl ValueBuilder<Bytes> for BytesBuilder {
    fn push_command(&mut self, command: &[u8]) {
        if self.arena.capacity() - self.arena.len() < record_len(command.len()) {
            // Start a new arena; the open value moves with it (values are small).
            let mut fresh = BytesMut::with_capacity(
                Self::ARENA_BYTES.max(2 * (self.arena.len() + record_len(command.len()))),
            );
            fresh.extend_from_slice(&self.arena);
            self.arena = fresh;
        }
        self.arena.put_u32_le(command.len() as u32);
        self.arena.extend_from_slice(command);
    }
    fn open_len(&self) -> usize {
        self.arena.len()
    }
    fn seal(&mut self) -> Bytes {
        self.arena.split().freeze()
    }
    fn noop(&mut self) -> Bytes {
        Bytes::new()
    }
    fn wrap(&mut self, bytes: Bytes) -> Bytes {
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip() {
        let mut b = BytesBuilder::default();
        b.push_command(b"abc");
        b.push_command(b"");
        b.push_command(b"hello");
        let v = b.seal();
        assert!(is_well_formed(&v));
        let got: Vec<&[u8]> = commands(&v).collect();
        assert_eq!(got, vec![&b"abc"[..], &b""[..], &b"hello"[..]]);
        assert_eq!(b.open_len(), 0);
        assert!(commands(&b.noop()).next().is_none());
    }

    #[test]
    fn truncated_batch_is_detected() {
        let v = [5u8, 0, 0, 0, 1, 2];
        assert!(!is_well_formed(&v));
        assert_eq!(commands(&v).count(), 0);
        assert!(!is_well_formed(&[1u8, 0]));
    }

    #[test]
    fn arena_rolls_over_without_losing_the_open_value() {
        let mut b = BytesBuilder::default();
        let big = vec![7u8; 40 * 1024];
        b.push_command(&big);
        b.push_command(&big); // does not fit the first arena
        let v = b.seal();
        assert_eq!(commands(&v).count(), 2);
        assert!(commands(&v).all(|c| c == &big[..]));
    }
}
