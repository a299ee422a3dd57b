//! ARP for Ethernet/IPv4 (RFC 826). Other hardware or protocol types are rejected.
//!
//! ```text
//! offset  len  field
//!      0    2  hardware type (1 = Ethernet)
//!      2    2  protocol type (0x0800 = IPv4)
//!      4    1  hardware address length (6)
//!      5    1  protocol address length (4)
//!      6    2  operation (1 = request, 2 = reply)
//!      8    6  sender hardware address
//!     14    4  sender protocol address
//!     18    6  target hardware address (zero in a request)
//!     24    4  target protocol address
//!     28    -  (Ethernet padding, ignored)
//! ```

use std::net::Ipv4Addr;

use super::ethernet::{EtherType, MacAddr};
use super::{read_u16, write_u16, WireError};

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = field::TPA.end;

mod field {
    use std::ops::Range;

    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    /// End of the fixed part; the addresses follow.
    pub const FIXED_END: usize = 8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;

    pub const HTYPE_ETHERNET: u16 = 1;
    pub const HLEN_ETHERNET: u8 = 6;
    pub const PLEN_IPV4: u8 = 4;
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who has `target_ip`? tell `sender_ip`.
    Request,
    /// 2: `sender_ip` is at `sender_mac`.
    Reply,
    /// Anything else (RARP, InARP, ...). [`ArpRepr::parse`] rejects these.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> ArpOperation {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> u16 {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

fn ipv4_at(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without any check.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>, WireError> {
        let packet = ArpPacket::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Buffer < 8 bytes: `Truncated`; not htype 1 / ptype 0x0800 / hlen 6 / plen 4:
    /// `UnsupportedArp`; buffer < 28 bytes: `Truncated`. The operation is checked by
    /// [`ArpRepr::parse`].
    pub fn check(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < field::FIXED_END {
            return Err(WireError::Truncated);
        }
        if self.hardware_type() != field::HTYPE_ETHERNET
            || self.protocol_type() != EtherType::IPV4
            || self.hardware_len() != field::HLEN_ETHERNET
            || self.protocol_len() != field::PLEN_IPV4
        {
            return Err(WireError::UnsupportedArp);
        }
        if len < ARP_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (0x0800 = IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    #[inline]
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        ipv4_at(&self.buffer.as_ref()[field::SPA])
    }

    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        ipv4_at(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes htype 1, ptype 0x0800, hlen 6, plen 4.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, field::HTYPE_ETHERNET);
        write_u16(b, field::PTYPE, EtherType::IPV4);
        b[field::HLEN] = field::HLEN_ETHERNET;
        b[field::PLEN] = field::PLEN_IPV4;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, operation: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, operation.into());
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// An Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply (never `Unknown` when produced by `parse`).
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address ([`MacAddr::ZERO`] in a request).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Validates a view and extracts its fields: the [`ArpPacket::check`] errors, then
    /// `UnsupportedArp` for an operation other than request or reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, WireError> {
        packet.check()?;
        let operation = packet.operation();
        if let ArpOperation::Unknown(_) = operation {
            return Err(WireError::UnsupportedArp);
        }
        Ok(ArpRepr {
            operation,
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Bytes `emit` writes (28).
    pub const fn buffer_len(&self) -> usize {
        ARP_LEN
    }

    /// Writes the whole packet (fixed part included).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation);
        packet.set_sender_mac(self.sender_mac);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_mac(self.target_mac);
        packet.set_target_ip(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    fn arp_bytes() -> &'static [u8] {
        &golden::ARP_REQUEST_FRAME[14..]
    }

    fn golden_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: golden::PEER_MAC,
            sender_ip: golden::PEER_IP,
            target_mac: MacAddr::ZERO,
            target_ip: golden::LOCAL_IP,
        }
    }

    #[test]
    fn test_parse() {
        let packet = ArpPacket::new_checked(arp_bytes()).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), 0x0800);
        assert_eq!((packet.hardware_len(), packet.protocol_len()), (6, 4));
        assert_eq!(ArpRepr::parse(&packet), Ok(golden_repr()));
    }

    #[test]
    fn test_emit() {
        let repr = golden_repr();
        let mut buf = vec![0xeeu8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], arp_bytes());
    }

    #[test]
    fn validation() {
        let check = |i: usize, v: u8| {
            let mut bytes = arp_bytes().to_vec();
            bytes[i] = v;
            ArpPacket::new_checked(&bytes[..]).and_then(|p| ArpRepr::parse(&p)).err()
        };
        assert_eq!(check(1, 6), Some(WireError::UnsupportedArp)); // htype 6 (IEEE 802)
        assert_eq!(check(2, 0x86), Some(WireError::UnsupportedArp)); // ptype 0x86dd
        assert_eq!(check(4, 8), Some(WireError::UnsupportedArp)); // hlen
        assert_eq!(check(5, 16), Some(WireError::UnsupportedArp)); // plen
        assert_eq!(check(7, 3), Some(WireError::UnsupportedArp)); // RARP request
        assert_eq!(check(7, 2), None); // reply
        for len in 0..ARP_LEN {
            let r = ArpPacket::new_checked(&arp_bytes()[..len]);
            assert_eq!(r.err(), Some(WireError::Truncated), "len {len}");
        }
    }

    #[test]
    fn operation_round_trip() {
        for raw in [0u16, 1, 2, 3, 4, 0xffff] {
            assert_eq!(u16::from(ArpOperation::from(raw)), raw);
        }
    }
}
