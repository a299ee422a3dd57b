//! Zero-copy views and plain representations of the frames the appliance speaks:
//! Ethernet II, IPv4, UDP and ARP (Ethernet/IPv4 only). Pure Rust, `std` only, no `unsafe`.
//!
//! # Two layers per header
//!
//! * A **view**, `XxxPacket<T: AsRef<[u8]>>`, wraps a byte buffer (an mbuf's data, a `&[u8]`,
//!   a `Vec<u8>`) and reads every field in place. Setters exist when `T: AsMut<[u8]>`. Making a
//!   view costs nothing: no copy, no allocation. Field byte ranges live in a private `field`
//!   module beside each view.
//! * A **representation**, `XxxRepr`, is a plain value holding the fields we care about.
//!   `XxxRepr::parse(&view)` validates the view and extracts them; `repr.emit(&mut view)` writes
//!   them back; `repr.buffer_len()` says how many bytes `emit` needs.
//!
//! The frame-level helpers in [`frame`] combine the layers for the node's two hot paths:
//! [`parse_udp_frame`] on receive (classifying every dropped frame by cause, see [`FrameDrop`])
//! and [`emit_udp_frame`] on transmit (headers written in front of a payload the encoder has
//! already placed in the buffer).
//!
//! # Panic contract
//!
//! * `XxxPacket::new_unchecked` never panics, but accessors on an unchecked view may panic if the
//!   buffer is too short or its length fields lie.
//! * **After `XxxPacket::new_checked` succeeds, no accessor panics** (getters, `payload()`,
//!   checksum verification), whatever the bytes are.
//! * Setters index the buffer; they do not panic on a view whose buffer is at least as long as
//!   the header being written.
//! * **`XxxRepr::emit` never panics into a buffer of at least `buffer_len()` bytes**, provided the
//!   repr's lengths fit their wire fields (`payload_len <= MAX_PAYLOAD_LEN` of that layer). Every
//!   repr returned by `parse` satisfies this.
//! * The frame-level parsers ([`parse_udp_frame`], [`parse_arp_frame`]) never panic on any input.
//!   The frame-level emitters document their (caller-bug) panics under `# Panics`.
//!
//! # Errors
//!
//! Every failure is a small `Copy` enum ([`WireError`] per layer, [`FrameDrop`] per received
//! frame) with `as_str()` names and an `index()` into `ALL`, so drops can be counted by cause in
//! a fixed array without allocation.
//!
//! # Checksums
//!
//! [`checksum`] implements the RFC 1071 Internet checksum. [`Checksum`] says who handles
//! checksums for a given operation: this code (`Compute`) or the NIC (`Offload`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod arp;
mod arp_cache;
pub mod checksum;
mod ethernet;
pub mod frame;
mod ipv4;
mod udp;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod golden;

pub use arp::{ArpOperation, ArpPacket, ArpRepr, ARP_LEN};
pub use arp_cache::ArpCache;
pub use ethernet::{
    EtherType, EthernetPacket, EthernetRepr, MacAddr, ParseMacAddrError, ETHERNET_HEADER_LEN,
};
pub use frame::{
    arp_reply_for, arp_request, emit_arp_frame, emit_udp_frame,
    emit_udp_frame_without_udp_checksum, parse_arp_frame, parse_udp_frame, ChecksumPolicy,
    FrameDrop, UdpFrame, UdpFrameHeader, ARP_FRAME_LEN, MAX_UDP_FRAME_PAYLOAD_LEN,
    UDP_FRAME_HEADER_LEN,
};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN};
pub use udp::{UdpPacket, UdpRepr, UDP_HEADER_LEN};

use std::fmt;

/// Who handles a checksum: this code or the NIC.
///
/// On **emit**, `Compute` fills the checksum in software; `Offload` leaves what the NIC's TX
/// checksum offload expects (IPv4: zero; UDP: the pseudo-header checksum, see
/// [`UdpPacket::fill_pseudo_header_checksum`]).
///
/// On **parse**, `Compute` verifies the checksum in software; `Offload` skips the check because
/// the NIC has already validated it (the caller checked the mbuf's RX offload flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// Compute (emit) or verify (parse) in software.
    Compute,
    /// The NIC fills (TX) or has validated (RX) the checksum.
    Offload,
}

/// Why a header could not be viewed or parsed.
///
/// A small `Copy` enum so callers can count failures by cause: `counters[err.index()] += 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the header, or than a length field says it is.
    Truncated,
    /// IPv4 version field is not 4.
    BadVersion,
    /// IPv4 IHL is below 5 (a header shorter than 20 bytes).
    BadHeaderLen,
    /// A length field is smaller than its own header (IPv4 total length, UDP length).
    BadLength,
    /// A checksum did not verify.
    BadChecksum,
    /// An IPv4 fragment (MF set or non-zero offset): we do not reassemble.
    Fragmented,
    /// The frame's EtherType is not ARP.
    NotArp,
    /// ARP that is not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4), or an operation
    /// other than request or reply.
    UnsupportedArp,
}

impl WireError {
    /// Every variant, in `index()` order.
    pub const ALL: [WireError; 8] = [
        WireError::Truncated,
        WireError::BadVersion,
        WireError::BadHeaderLen,
        WireError::BadLength,
        WireError::BadChecksum,
        WireError::Fragmented,
        WireError::NotArp,
        WireError::UnsupportedArp,
    ];

    /// Position of `self` in [`WireError::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short `snake_case` name, suitable as a counter label.
    pub const fn as_str(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadHeaderLen => "bad_header_len",
            WireError::BadLength => "bad_length",
            WireError::BadChecksum => "bad_checksum",
            WireError::Fragmented => "fragmented",
            WireError::NotArp => "not_arp",
            WireError::UnsupportedArp => "unsupported_arp",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for WireError {}

/// Reads a big-endian `u16` at `offset`. Panics if out of bounds (callers check lengths first).
#[inline]
fn read_u16(data: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([data[offset], data[offset + 1]])
}

/// Writes a big-endian `u16` at `offset`. Panics if out of bounds.
#[inline]
fn write_u16(data: &mut [u8], offset: usize, value: u16) {
    data[offset..offset + 2].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_error_index_matches_all() {
        for (i, e) in WireError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.as_str().is_empty());
            assert_eq!(e.to_string(), e.as_str());
        }
    }
}
