//! Ethernet II frames (no 802.1Q tag, no FCS: NICs strip and add it).
//!
//! ```text
//! offset  len  field
//!      0    6  destination MAC
//!      6    6  source MAC
//!     12    2  EtherType (0x0800 IPv4, 0x0806 ARP)
//!     14    -  payload
//! ```

use std::fmt;
use std::str::FromStr;

use super::{read_u16, write_u16, WireError};

/// Length of an Ethernet II header.
pub const ETHERNET_HEADER_LEN: usize = field::PAYLOAD;

mod field {
    use std::ops::{Range, RangeFrom};

    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
    pub const PAYLOAD_RANGE: RangeFrom<usize> = PAYLOAD..;
}

/// A 48-bit Ethernet MAC address. Displays as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00` (e.g. the unknown target of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads an address from the first six bytes of `bytes`. Panics if shorter.
    pub fn from_bytes(bytes: &[u8]) -> MacAddr {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bytes[..6]);
        MacAddr(mac)
    }

    /// The address as bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// `ff:ff:ff:ff:ff:ff`?
    pub fn is_broadcast(&self) -> bool {
        *self == MacAddr::BROADCAST
    }

    /// Group bit (least significant bit of the first octet) set? Includes broadcast.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Not multicast/broadcast and not all zeros: usable as a destination for one host.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != MacAddr::ZERO
    }

    /// Locally administered bit (second least significant bit of the first octet) set?
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// The string given to [`MacAddr::from_str`] is not six `:`- or `-`-separated hex octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseMacAddrError;

impl fmt::Display for ParseMacAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MAC address (expected aa:bb:cc:dd:ee:ff)")
    }
}

impl std::error::Error for ParseMacAddrError {}

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    /// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated; either case).
    fn from_str(s: &str) -> Result<MacAddr, ParseMacAddrError> {
        let mut mac = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in mac.iter_mut() {
            let part = parts.next().ok_or(ParseMacAddrError)?;
            if part.len() != 2 {
                return Err(ParseMacAddrError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseMacAddrError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacAddrError);
        }
        Ok(MacAddr(mac))
    }
}

/// The EtherType field: what the Ethernet payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// Anything else (IPv6, VLAN tags, LLDP, ...).
    Unknown(u16),
}

impl EtherType {
    /// Raw value for IPv4.
    pub const IPV4: u16 = 0x0800;
    /// Raw value for ARP.
    pub const ARP: u16 = 0x0806;
}

impl From<u16> for EtherType {
    fn from(value: u16) -> EtherType {
        match value {
            EtherType::IPV4 => EtherType::Ipv4,
            EtherType::ARP => EtherType::Arp,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> u16 {
        match value {
            EtherType::Ipv4 => EtherType::IPV4,
            EtherType::Arp => EtherType::ARP,
            EtherType::Unknown(other) => other,
        }
    }
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetPacket<T> {
    /// Wraps `buffer` without any check.
    pub const fn new_unchecked(buffer: T) -> EthernetPacket<T> {
        EthernetPacket { buffer }
    }

    /// Wraps `buffer`, checking it holds at least a full header.
    pub fn new_checked(buffer: T) -> Result<EthernetPacket<T>, WireError> {
        let packet = EthernetPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer is shorter than the header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < ETHERNET_HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    /// Source MAC.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    /// EtherType.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The bytes after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD_RANGE]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetPacket<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.into());
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD_RANGE]
    }
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source MAC.
    pub src_addr: MacAddr,
    /// Destination MAC.
    pub dst_addr: MacAddr,
    /// What the payload is.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked view. Never fails once `new_checked` succeeded; the
    /// `Result` keeps the signature uniform with the other layers.
    pub fn parse<T: AsRef<[u8]>>(packet: &EthernetPacket<T>) -> Result<EthernetRepr, WireError> {
        packet.check_len()?;
        Ok(EthernetRepr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            ethertype: packet.ethertype(),
        })
    }

    /// Bytes `emit` writes: the header only (14).
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_HEADER_LEN
    }

    /// Writes the header; the payload is left untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut EthernetPacket<T>) {
        packet.set_dst_addr(self.dst_addr);
        packet.set_src_addr(self.src_addr);
        packet.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    #[test]
    fn test_parse() {
        let frame = EthernetPacket::new_checked(&golden::UDP_FRAME[..]).unwrap();
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(
            repr,
            EthernetRepr {
                src_addr: golden::PEER_MAC,
                dst_addr: golden::LOCAL_MAC,
                ethertype: EtherType::Ipv4,
            }
        );
        assert_eq!(frame.payload(), &golden::UDP_FRAME[14..]);
    }

    #[test]
    fn test_emit() {
        let repr = EthernetRepr {
            src_addr: golden::PEER_MAC,
            dst_addr: golden::LOCAL_MAC,
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0u8; ETHERNET_HEADER_LEN];
        repr.emit(&mut EthernetPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, golden::UDP_FRAME[..ETHERNET_HEADER_LEN]);
    }

    #[test]
    fn truncated() {
        for len in 0..ETHERNET_HEADER_LEN {
            let r = EthernetPacket::new_checked(&golden::UDP_FRAME[..len]);
            assert_eq!(r.err(), Some(WireError::Truncated));
        }
        let empty = EthernetPacket::new_checked(&golden::UDP_FRAME[..14]).unwrap();
        assert!(empty.payload().is_empty());
    }

    #[test]
    fn ethertype_round_trip() {
        for raw in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0] {
            assert_eq!(u16::from(EtherType::from(raw)), raw);
        }
        assert_eq!(EtherType::from(0x86dd), EtherType::Unknown(0x86dd));
    }

    #[test]
    fn mac_addr_properties_and_display() {
        let mac = MacAddr([0x02, 0xab, 0x00, 0x0c, 0xff, 0x01]);
        assert_eq!(mac.to_string(), "02:ab:00:0c:ff:01");
        assert_eq!("02:AB:00:0c:ff:01".parse::<MacAddr>(), Ok(mac));
        assert_eq!("02-ab-00-0c-ff-01".parse::<MacAddr>(), Ok(mac));
        for bad in ["", "02:ab:00:0c:ff", "02:ab:00:0c:ff:01:02", "2:ab:00:0c:ff:01", "zz:..."] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacAddrError), "{bad:?}");
        }
        assert!(mac.is_unicast() && mac.is_local() && !mac.is_multicast());
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr::ZERO.is_unicast());
        assert_eq!(MacAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
    }
}
