//! IPv4 headers (RFC 791). Options are accepted and skipped; fragments are rejected.
//!
//! ```text
//! offset  len  field
//!      0    1  version (high nibble, = 4) | IHL (low nibble, header length in 4-byte words, >= 5)
//!      1    1  DSCP (high 6 bits) | ECN (low 2 bits)
//!      2    2  total length (header + payload, bytes)
//!      4    2  identification
//!      6    2  flags (bit 15 reserved, 14 DF, 13 MF) | fragment offset (13 bits, x 8 bytes)
//!      8    1  TTL
//!      9    1  protocol (17 = UDP)
//!     10    2  header checksum (RFC 1071 over the header only)
//!     12    4  source address
//!     16    4  destination address
//!     20    -  options (IHL * 4 - 20 bytes), then payload up to total length
//! ```
//!
//! Bytes after `total length` (Ethernet padding) are ignored.

use std::net::Ipv4Addr;

use super::{checksum, read_u16, write_u16, Checksum, WireError};

/// Length of an IPv4 header without options (IHL = 5). [`Ipv4Repr::emit`] always writes this.
pub const IPV4_HEADER_LEN: usize = field::DST_ADDR.end;

mod field {
    use std::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;

    pub const FLAG_DF: u16 = 0x4000;
    pub const FLAG_MF: u16 = 0x2000;
    pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
}

/// The IPv4 protocol field: what the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// Anything else.
    Unknown(u8),
}

impl IpProtocol {
    /// Raw value for ICMP.
    pub const ICMP: u8 = 1;
    /// Raw value for TCP.
    pub const TCP: u8 = 6;
    /// Raw value for UDP.
    pub const UDP: u8 = 17;
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> IpProtocol {
        match value {
            IpProtocol::ICMP => IpProtocol::Icmp,
            IpProtocol::TCP => IpProtocol::Tcp,
            IpProtocol::UDP => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> u8 {
        match value {
            IpProtocol::Icmp => IpProtocol::ICMP,
            IpProtocol::Tcp => IpProtocol::TCP,
            IpProtocol::Udp => IpProtocol::UDP,
            IpProtocol::Unknown(other) => other,
        }
    }
}

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without any check.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, WireError> {
        let packet = Ipv4Packet::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Checks everything the accessors rely on, in this order:
    /// buffer < 20 bytes: `Truncated`; version != 4: `BadVersion`; IHL < 5: `BadHeaderLen`;
    /// buffer < header length: `Truncated`; total length < header length: `BadLength`;
    /// buffer < total length: `Truncated`. Checksum and fragmentation are checked by
    /// [`Ipv4Repr::parse`].
    pub fn check(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < IPV4_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < IPV4_HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if len < header_len {
            return Err(WireError::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(WireError::BadLength);
        }
        if len < total_len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length field (header + payload, bytes).
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// Identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    fn flags_frag(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & field::FLAG_DF != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & field::FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & field::FRAG_OFFSET_MASK) << 3
    }

    /// Part of a fragmented datagram (MF set or offset non-zero)?
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (field::FLAG_MF | field::FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Does the header (options included) sum to `0xffff`?
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// Option bytes (empty when IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[IPV4_HEADER_LEN..self.header_len()]
    }

    /// The payload: from the end of the header to `total length` (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets IHL from a header length in bytes (a multiple of 4, at most 60).
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    #[inline]
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Sets the total length field.
    #[inline]
    pub fn set_total_len(&mut self, total_len: u16) {
        write_u16(self.buffer.as_mut(), field::TOTAL_LEN, total_len);
    }

    /// Sets the identification field.
    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    fn set_flags_frag_bits(&mut self, mask: u16, bits: u16) {
        let value = (self.flags_frag() & !mask) | (bits & mask);
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, value);
    }

    /// Clears all flags and the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, 0);
    }

    /// Sets or clears Don't Fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flags_frag_bits(field::FLAG_DF, if value { field::FLAG_DF } else { 0 });
    }

    /// Sets or clears More Fragments.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flags_frag_bits(field::FLAG_MF, if value { field::FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset, in bytes (a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, offset_bytes: u16) {
        self.set_flags_frag_bits(field::FRAG_OFFSET_MASK, offset_bytes >> 3);
    }

    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.into();
    }

    /// Sets the checksum field to a raw value.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum (over IHL * 4 bytes) and stores it. Call after every other
    /// header field is set.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::data(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(!sum);
    }

    /// The payload (from the end of the header to `total length`), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// The fields of an IPv4 header that the appliance uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length in bytes (total length minus header length). At most
    /// [`Ipv4Repr::MAX_PAYLOAD_LEN`].
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification field. With DF set and no fragments it carries no meaning (RFC 6864);
    /// callers may use it as a debugging sequence number or leave it 0.
    pub ident: u16,
}

impl Ipv4Repr {
    /// TTL used when the caller has no opinion.
    pub const DEFAULT_TTL: u8 = 64;
    /// Largest payload `emit` can describe: 65535 - 20.
    pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - IPV4_HEADER_LEN;

    /// Validates a view and extracts its fields: the [`Ipv4Packet::check`] errors, then
    /// `BadChecksum` (only when `checksum` is [`Checksum::Compute`]), then `Fragmented`.
    /// Options are skipped.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        checksum: Checksum,
    ) -> Result<Ipv4Repr, WireError> {
        packet.check()?;
        if checksum == Checksum::Compute && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if packet.is_fragment() {
            return Err(WireError::Fragmented);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
        })
    }

    /// Length of the header `emit` writes (20: no options).
    pub const fn header_len(&self) -> usize {
        IPV4_HEADER_LEN
    }

    /// Header plus payload: the bytes the view given to `emit` must cover.
    pub const fn buffer_len(&self) -> usize {
        IPV4_HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header: version 4, IHL 5, DSCP/ECN 0, DF set, fragment offset 0, and
    /// the repr's lengths, TTL, ident, protocol and addresses. The payload is untouched.
    ///
    /// With [`Checksum::Compute`] the header checksum is filled; with [`Checksum::Offload`] it
    /// is left 0, as NIC IPv4 checksum offload expects.
    ///
    /// # Panics
    ///
    /// If `payload_len > MAX_PAYLOAD_LEN`, or the buffer is shorter than 20 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        checksum: Checksum,
    ) {
        assert!(
            self.payload_len <= Ipv4Repr::MAX_PAYLOAD_LEN,
            "IPv4 payload of {} bytes does not fit the total length field",
            self.payload_len
        );
        packet.set_version(4);
        packet.set_header_len(IPV4_HEADER_LEN);
        packet.set_dscp_ecn(0, 0);
        packet.set_total_len(self.buffer_len() as u16);
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(true);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        match checksum {
            Checksum::Compute => packet.fill_checksum(),
            Checksum::Offload => packet.set_checksum(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    fn ip_bytes() -> &'static [u8] {
        &golden::UDP_FRAME[golden::IP_OFFSET..]
    }

    fn golden_repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: golden::PEER_IP,
            dst_addr: golden::LOCAL_IP,
            protocol: IpProtocol::Udp,
            payload_len: golden::UDP_LEN,
            ttl: 64,
            ident: golden::IP_IDENT,
        }
    }

    #[test]
    fn test_parse() {
        let packet = Ipv4Packet::new_checked(ip_bytes()).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.checksum(), golden::IP_CHECKSUM);
        assert!(packet.verify_checksum());
        assert!(packet.dont_frag() && !packet.more_frags() && !packet.is_fragment());
        assert_eq!(packet.frag_offset(), 0);
        assert!(packet.options().is_empty());
        assert_eq!(packet.payload(), &golden::UDP_FRAME[golden::UDP_OFFSET..]);
        assert_eq!(Ipv4Repr::parse(&packet, Checksum::Compute), Ok(golden_repr()));
    }

    #[test]
    fn test_emit() {
        let repr = golden_repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[20..].copy_from_slice(&ip_bytes()[20..]);
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), Checksum::Compute);
        assert_eq!(&buf[..], ip_bytes());

        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), Checksum::Offload);
        assert_eq!(&buf[10..12], &[0, 0], "offload leaves the checksum zero");
        assert_eq!(&buf[..10], &ip_bytes()[..10]);
        assert_eq!(&buf[12..], &ip_bytes()[12..]);
    }

    #[test]
    fn golden_checksum_is_independently_correct() {
        // Recompute by hand-rolled 16-bit word sum, not via `checksum`.
        let mut hdr = [0u8; 20];
        hdr.copy_from_slice(&ip_bytes()[..20]);
        hdr[10] = 0;
        hdr[11] = 0;
        let mut sum: u32 = 0;
        for pair in hdr.chunks(2) {
            sum += u32::from(pair[0]) << 8 | u32::from(pair[1]);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(!(sum as u16), golden::IP_CHECKSUM);
    }

    #[test]
    fn classic_header_verifies() {
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        // Total length 115 but only the header is here: view checks fail, checksum does not.
        assert_eq!(Ipv4Packet::new_checked(&hdr[..]).err(), Some(WireError::Truncated));
        let view = Ipv4Packet::new_unchecked(&hdr[..]);
        assert!(view.verify_checksum());
        let mut copy = hdr;
        let mut view = Ipv4Packet::new_unchecked(&mut copy[..]);
        view.set_checksum(0xdead);
        view.fill_checksum();
        assert_eq!(view.checksum(), 0xb861);
    }

    #[test]
    fn bad_checksum_detected_unless_offloaded() {
        let mut bytes = ip_bytes().to_vec();
        bytes[8] = 63; // TTL changed without fixing the checksum.
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&packet, Checksum::Compute), Err(WireError::BadChecksum));
        assert_eq!(Ipv4Repr::parse(&packet, Checksum::Offload).unwrap().ttl, 63);
    }

    #[test]
    fn field_checks_in_order() {
        let check = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = ip_bytes().to_vec();
            f(&mut bytes);
            Ipv4Packet::new_checked(&bytes[..]).err()
        };
        assert_eq!(check(&|b| b[0] = 0x65), Some(WireError::BadVersion));
        assert_eq!(check(&|b| b[0] = 0x44), Some(WireError::BadHeaderLen));
        assert_eq!(check(&|b| b[0] = 0x4f), Some(WireError::Truncated)); // 60-byte header
        assert_eq!(check(&|b| b[2..4].copy_from_slice(&[0, 19])), Some(WireError::BadLength));
        assert_eq!(check(&|b| b[2..4].copy_from_slice(&[0xff, 0xff])), Some(WireError::Truncated));
        assert_eq!(check(&|b| b.truncate(19)), Some(WireError::Truncated));
        assert_eq!(check(&|_| ()), None);
    }

    #[test]
    fn fragments_rejected() {
        for (flags, what) in [(0x2000u16, "MF"), (0x0001, "offset 8"), (0x6000, "DF+MF")] {
            let mut bytes = ip_bytes().to_vec();
            let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
            packet.clear_flags();
            packet.set_more_frags(flags & 0x2000 != 0);
            packet.set_dont_frag(flags & 0x4000 != 0);
            packet.set_frag_offset((flags & 0x1fff) << 3);
            packet.fill_checksum();
            assert!(packet.is_fragment(), "{what}");
            let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Ipv4Repr::parse(&packet, Checksum::Compute), Err(WireError::Fragmented));
        }
    }

    #[test]
    fn options_skipped_and_padding_ignored() {
        // Rebuild the golden packet with 4 bytes of options (NOP x 4) and 6 bytes of padding.
        let inner = &ip_bytes()[20..];
        let mut bytes = vec![0u8; 24 + inner.len() + 6];
        bytes[24..24 + inner.len()].copy_from_slice(inner);
        bytes[20..24].copy_from_slice(&[1, 1, 1, 1]);
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        golden_repr().emit(&mut packet, Checksum::Compute);
        packet.set_header_len(24);
        packet.set_total_len((24 + inner.len()) as u16);
        packet.fill_checksum();

        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[1, 1, 1, 1]);
        assert_eq!(packet.payload(), inner);
        assert_eq!(Ipv4Repr::parse(&packet, Checksum::Compute), Ok(golden_repr()));
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0u8; 20];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp_ecn(46, 2);
        p.set_frag_offset(1480);
        p.set_more_frags(true);
        assert_eq!((p.version(), p.header_len(), p.dscp(), p.ecn()), (4, 20, 46, 2));
        assert_eq!((p.frag_offset(), p.more_frags(), p.dont_frag()), (1480, true, false));
        p.set_more_frags(false);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        assert_eq!(p.into_inner().len(), 20);
    }

    #[test]
    fn protocol_round_trip() {
        for raw in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(raw)), raw);
        }
        assert_eq!(IpProtocol::from(17), IpProtocol::Udp);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn emit_rejects_oversized_payload() {
        let repr = Ipv4Repr { payload_len: Ipv4Repr::MAX_PAYLOAD_LEN + 1, ..golden_repr() };
        let mut buf = [0u8; 20];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), Checksum::Compute);
    }
}
