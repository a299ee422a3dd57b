//! Why a datagram was rejected (decode) or could not be written (encode).

use core::fmt;

/// One cause per variant and no payload, so a receiver keeps one drop counter per cause
/// (indexed by [`WireError::index`], named by [`WireError::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The datagram ends inside a fixed-size field (including the header).
    Truncated,
    /// The first two bytes are not "PX".
    BadMagic,
    /// A version this code does not speak.
    BadVersion,
    /// The kind byte is not a [`super::Kind`].
    UnknownKind,
    /// A reserved field (header flags, a ballot's or reply's reserved bytes) is not zero.
    ReservedNonZero,
    /// A length field points past the end of the datagram.
    LengthOverflow,
    /// Bytes follow a complete message (a framing error).
    TrailingBytes,
    /// A Promise or client batch announces more entries than the rest of the datagram
    /// could hold, or (when encoding) more than its count field counts.
    TooManyEntries,
    /// A Promise with `chunks == 0` or `chunk >= chunks`.
    BadChunk,
    /// A client batch with no entries.
    EmptyBatch,
    /// Encode: the caller's buffer is shorter than `encoded_len`.
    BufferTooSmall,
    /// Encode: a value longer than a u32 length field can describe.
    ValueTooLarge,
}

impl WireError {
    pub const ALL: [WireError; 12] = [
        WireError::Truncated,
        WireError::BadMagic,
        WireError::BadVersion,
        WireError::UnknownKind,
        WireError::ReservedNonZero,
        WireError::LengthOverflow,
        WireError::TrailingBytes,
        WireError::TooManyEntries,
        WireError::BadChunk,
        WireError::EmptyBatch,
        WireError::BufferTooSmall,
        WireError::ValueTooLarge,
    ];
    pub const COUNT: usize = WireError::ALL.len();

    /// Position in [`WireError::ALL`], for an array of counters.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A counter name.
    pub const fn as_str(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadMagic => "bad_magic",
            WireError::BadVersion => "bad_version",
            WireError::UnknownKind => "unknown_kind",
            WireError::ReservedNonZero => "reserved_nonzero",
            WireError::LengthOverflow => "length_overflow",
            WireError::TrailingBytes => "trailing_bytes",
            WireError::TooManyEntries => "too_many_entries",
            WireError::BadChunk => "bad_chunk",
            WireError::EmptyBatch => "empty_batch",
            WireError::BufferTooSmall => "buffer_too_small",
            WireError::ValueTooLarge => "value_too_large",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for WireError {}
