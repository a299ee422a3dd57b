//! Bounds-checked little-endian readers and writers over byte slices. Every access goes
//! through `get`/`get_mut`, so a wrong length is an error, never a panic.

use super::{WireError, BALLOT_LEN};
use crate::ids::{Ballot, ReplicaId, Slot};
use core::ops::Range;

/// Reads fields front to back from a received datagram.
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let end = self.pos.checked_add(N).ok_or(WireError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        let out = <[u8; N]>::try_from(bytes).map_err(|_| WireError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    #[inline]
    pub fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_le_bytes)
    }
    #[inline]
    pub fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_le_bytes)
    }
    #[inline]
    pub fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A reserved field: must be zero.
    #[inline]
    pub fn reserved<const N: usize>(&mut self) -> Result<(), WireError> {
        if self.array::<N>()? == [0; N] {
            Ok(())
        } else {
            Err(WireError::ReservedNonZero)
        }
    }

    #[inline]
    pub fn slot(&mut self) -> Result<Slot, WireError> {
        self.u64().map(Slot)
    }

    #[inline]
    pub fn ballot(&mut self) -> Result<Ballot, WireError> {
        let round = self.u32()?;
        let leader = ReplicaId(self.u16()?);
        self.reserved::<2>()?;
        Ok(Ballot { round, leader })
    }

    /// A `u32` length and that many bytes; returns their range in the datagram.
    #[inline]
    pub fn value(&mut self) -> Result<Range<usize>, WireError> {
        let len = usize::try_from(self.u32()?).map_err(|_| WireError::LengthOverflow)?;
        let end = self.pos.checked_add(len).ok_or(WireError::LengthOverflow)?;
        if end > self.buf.len() {
            return Err(WireError::LengthOverflow);
        }
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    /// The message must end exactly here.
    #[inline]
    pub fn finish(&self) -> Result<(), WireError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes)
        }
    }
}

/// Writes fields front to back into a caller-provided buffer.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    #[inline]
    pub fn written(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let end = self.pos.checked_add(bytes.len()).ok_or(WireError::BufferTooSmall)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(WireError::BufferTooSmall)?;
        dst.copy_from_slice(bytes); // same length: `dst` is `bytes.len()` long
        self.pos = end;
        Ok(())
    }

    #[inline]
    pub fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.bytes(&[v])
    }
    #[inline]
    pub fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    pub fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }
    #[inline]
    pub fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }

    #[inline]
    pub fn slot(&mut self, s: Slot) -> Result<(), WireError> {
        self.u64(s.0)
    }

    #[inline]
    pub fn ballot(&mut self, b: Ballot) -> Result<(), WireError> {
        let mut raw = [0u8; BALLOT_LEN];
        raw[..4].copy_from_slice(&b.round.to_le_bytes());
        raw[4..6].copy_from_slice(&b.leader.0.to_le_bytes());
        self.bytes(&raw) // raw[6..8]: reserved, zero
    }

    /// A `u32` length and the bytes.
    #[inline]
    pub fn value(&mut self, v: &[u8]) -> Result<(), WireError> {
        let len = u32::try_from(v.len()).map_err(|_| WireError::ValueTooLarge)?;
        self.u32(len)?;
        self.bytes(v)
    }
}
