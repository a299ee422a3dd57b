//! UDP datagrams (RFC 768) carried in IPv4.
//!
//! ```text
//! offset  len  field
//!      0    2  source port
//!      2    2  destination port
//!      4    2  length (header + payload, bytes, >= 8)
//!      6    2  checksum (0 = none; RFC 1071 over pseudo-header + header + payload)
//!      8    -  payload up to `length`
//! ```
//!
//! The IPv4 pseudo-header summed before the datagram is: source address (4), destination
//! address (4), zero (1), protocol 17 (1), UDP length (2).

use std::net::Ipv4Addr;

use super::ipv4::IpProtocol;
use super::{checksum, read_u16, write_u16, Checksum, WireError};

/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = field::PAYLOAD;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PAYLOAD: usize = 8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without any check.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, WireError> {
        let packet = UdpPacket::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Buffer < 8 bytes: `Truncated`; length field < 8: `BadLength`; buffer < length field:
    /// `Truncated`. Bytes after the length field are ignored.
    pub fn check(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < UDP_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let field_len = usize::from(self.length());
        if field_len < UDP_HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if len < field_len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header + payload, bytes).
    #[inline]
    pub fn length(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Checksum field as stored (0 = the sender computed none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// True if the checksum field is 0 (allowed over IPv4) or the pseudo-header, header and
    /// payload sum to `0xffff`.
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.length();
        let pseudo = checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::UDP, len);
        let acc =
            checksum::accumulate(u64::from(pseudo), &self.buffer.as_ref()[..usize::from(len)]);
        checksum::fold(acc) == 0xffff
    }

    /// The payload: from byte 8 to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[UDP_HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the length field (header + payload).
    #[inline]
    pub fn set_length(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the checksum field to a raw value.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes the full checksum (pseudo-header, header, payload up to the length field) and
    /// stores it. A computed 0 is sent as `0xffff`, since 0 means "no checksum". Call after the
    /// length field and payload are in place. Panics if the buffer is shorter than the length
    /// field.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.length();
        let pseudo = checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::UDP, len);
        let acc =
            checksum::accumulate(u64::from(pseudo), &self.buffer.as_ref()[..usize::from(len)]);
        let value = !checksum::fold(acc);
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }

    /// Stores the folded, *non-complemented* pseudo-header sum in the checksum field, as NIC
    /// UDP checksum offload (DPDK `RTE_MBUF_F_TX_UDP_CKSUM`) expects; the NIC then adds the
    /// header and payload and complements. This is what DPDK's `rte_ipv4_phdr_cksum` computes
    /// (non-TSO case: the length is the UDP length field). Call after the length field is set.
    pub fn fill_pseudo_header_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        let len = self.length();
        let pseudo = checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::UDP, len);
        self.set_checksum(pseudo);
    }

    /// The payload (byte 8 to the length field), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        &mut self.buffer.as_mut()[UDP_HEADER_LEN..end]
    }
}

/// The fields of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes (length field minus 8). At most [`UdpRepr::MAX_PAYLOAD_LEN`].
    pub payload_len: usize,
}

impl UdpRepr {
    /// Largest payload the length field can describe: 65535 - 8. Inside IPv4 the limit is
    /// lower (65507); see [`MAX_UDP_FRAME_PAYLOAD_LEN`](super::MAX_UDP_FRAME_PAYLOAD_LEN).
    pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - UDP_HEADER_LEN;

    /// Validates a view and extracts its fields: the [`UdpPacket::check`] errors, then
    /// `BadChecksum` when `checksum` is [`Checksum::Compute`] and a non-zero checksum fails.
    /// The addresses are those of the enclosing IPv4 header (for the pseudo-header).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: Checksum,
    ) -> Result<UdpRepr, WireError> {
        packet.check()?;
        if checksum == Checksum::Compute && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(WireError::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.length()) - UDP_HEADER_LEN,
        })
    }

    /// Length of the header `emit` writes (8).
    pub const fn header_len(&self) -> usize {
        UDP_HEADER_LEN
    }

    /// Header plus payload: the bytes the view given to `emit` must cover.
    pub const fn buffer_len(&self) -> usize {
        UDP_HEADER_LEN + self.payload_len
    }

    /// Writes the header in front of a payload **already in place** at byte 8 (the checksum
    /// covers it). With [`Checksum::Compute`] the full checksum is filled; with
    /// [`Checksum::Offload`] the field holds the pseudo-header sum for the NIC to complete.
    ///
    /// # Panics
    ///
    /// If `payload_len > MAX_PAYLOAD_LEN`, or the buffer is shorter than `buffer_len()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: Checksum,
    ) {
        assert!(
            self.payload_len <= UdpRepr::MAX_PAYLOAD_LEN,
            "UDP payload of {} bytes does not fit the length field",
            self.payload_len
        );
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_length(self.buffer_len() as u16);
        match checksum {
            Checksum::Compute => packet.fill_checksum(src_addr, dst_addr),
            Checksum::Offload => packet.fill_pseudo_header_checksum(src_addr, dst_addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    fn udp_bytes() -> &'static [u8] {
        &golden::UDP_FRAME[golden::UDP_OFFSET..]
    }

    fn golden_repr() -> UdpRepr {
        UdpRepr {
            src_port: golden::PEER_PORT,
            dst_port: golden::LOCAL_PORT,
            payload_len: golden::PAYLOAD.len(),
        }
    }

    #[test]
    fn test_parse() {
        let packet = UdpPacket::new_checked(udp_bytes()).unwrap();
        assert_eq!(usize::from(packet.length()), golden::UDP_LEN);
        assert_eq!(packet.checksum(), golden::UDP_CHECKSUM);
        assert!(packet.verify_checksum(golden::PEER_IP, golden::LOCAL_IP));
        assert_eq!(packet.payload(), golden::PAYLOAD);
        let repr = UdpRepr::parse(&packet, golden::PEER_IP, golden::LOCAL_IP, Checksum::Compute);
        assert_eq!(repr, Ok(golden_repr()));
    }

    #[test]
    fn test_emit() {
        let repr = golden_repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(golden::PAYLOAD);
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, golden::PEER_IP, golden::LOCAL_IP, Checksum::Compute);
        assert_eq!(&buf[..], udp_bytes());
    }

    #[test]
    fn golden_checksum_is_independently_correct() {
        // Hand-rolled: pseudo-header bytes then the datagram with a zero checksum field.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&golden::PEER_IP.octets());
        bytes.extend_from_slice(&golden::LOCAL_IP.octets());
        bytes.extend_from_slice(&[0, 17, 0, golden::UDP_LEN as u8]);
        bytes.extend_from_slice(&udp_bytes()[..6]);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(golden::PAYLOAD);
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            sum += u32::from(pair[0]) << 8 | u32::from(pair[1]);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(!(sum as u16), golden::UDP_CHECKSUM);
    }

    #[test]
    fn bad_checksum_detected_unless_offloaded() {
        let mut bytes = udp_bytes().to_vec();
        bytes[9] ^= 0x40; // flip a payload bit
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(!packet.verify_checksum(golden::PEER_IP, golden::LOCAL_IP));
        let (src, dst) = (golden::PEER_IP, golden::LOCAL_IP);
        assert_eq!(
            UdpRepr::parse(&packet, src, dst, Checksum::Compute),
            Err(WireError::BadChecksum)
        );
        assert_eq!(UdpRepr::parse(&packet, src, dst, Checksum::Offload), Ok(golden_repr()));
        // The pseudo-header is covered: the right bytes from the wrong source fail too.
        let packet = UdpPacket::new_checked(udp_bytes()).unwrap();
        assert!(!packet.verify_checksum(Ipv4Addr::new(10, 0, 0, 3), dst));
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut bytes = udp_bytes().to_vec();
        bytes[6] = 0;
        bytes[7] = 0;
        bytes[9] ^= 0x40;
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(golden::PEER_IP, golden::LOCAL_IP));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the last payload word so the data sums to 0xffff: the complement would be 0.
        let (src, dst) = (golden::PEER_IP, golden::LOCAL_IP);
        let mut buf = [0u8; 12];
        let repr = UdpRepr { src_port: 1, dst_port: 2, payload_len: 4 };
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst, Checksum::Compute);
        let c = UdpPacket::new_unchecked(&buf[..]).checksum();
        buf[10..12].copy_from_slice(&c.to_be_bytes());
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.fill_checksum(src, dst);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(src, dst));
    }

    #[test]
    fn offload_writes_pseudo_header_sum() {
        let repr = golden_repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(golden::PAYLOAD);
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, golden::PEER_IP, golden::LOCAL_IP, Checksum::Offload);
        assert_eq!(packet.checksum(), golden::UDP_PSEUDO_HEADER_SUM);
        // What the NIC does: sum header + payload (with the seeded field) and complement.
        let nic = !checksum::data(&buf[..]);
        assert_eq!(nic, golden::UDP_CHECKSUM);
    }

    #[test]
    fn length_checks() {
        for len in 0..UDP_HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&udp_bytes()[..len]).err(),
                Some(WireError::Truncated)
            );
        }
        for len in UDP_HEADER_LEN..udp_bytes().len() {
            assert_eq!(
                UdpPacket::new_checked(&udp_bytes()[..len]).err(),
                Some(WireError::Truncated)
            );
        }
        let mut bytes = udp_bytes().to_vec();
        bytes[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&bytes[..]).err(), Some(WireError::BadLength));
        // Trailing bytes beyond the length field are ignored.
        let mut padded = udp_bytes().to_vec();
        padded.extend_from_slice(&[0xaa; 5]);
        let packet = UdpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), golden::PAYLOAD);
        assert!(packet.verify_checksum(golden::PEER_IP, golden::LOCAL_IP));
    }

    #[test]
    fn payload_mut_writes_in_place() {
        let mut bytes = udp_bytes().to_vec();
        let mut packet = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.payload_mut()[0] = b'P';
        packet.set_src_port(1);
        packet.set_dst_port(2);
        assert_eq!((packet.src_port(), packet.dst_port()), (1, 2));
        assert_eq!(packet.into_inner()[8], b'P');
    }
}
