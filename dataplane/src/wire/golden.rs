//! Hand-built golden frames shared by the tests. Checksums were computed independently
//! (a separate RFC 1071 script) and are re-derived by hand-rolled sums in the layer tests.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;

pub const LOCAL_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
pub const PEER_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LOCAL_PORT: u16 = 7000;
pub const PEER_PORT: u16 = 40000;
pub const IP_IDENT: u16 = 0x1234;
pub const PAYLOAD: &[u8] = b"paxos!";

pub const IP_OFFSET: usize = 14;
pub const UDP_OFFSET: usize = 34;
pub const PAYLOAD_OFFSET: usize = 42;
/// UDP header + payload.
pub const UDP_LEN: usize = 8 + PAYLOAD.len();
pub const IP_CHECKSUM: u16 = 0x1495;
pub const UDP_CHECKSUM: u16 = 0xd844;
/// Folded pseudo-header sum (10.0.0.2 -> 10.0.0.1, proto 17, length 14), for TX offload.
pub const UDP_PSEUDO_HEADER_SUM: u16 = 0x1422;

/// 10.0.0.2:40000 (02:..:02) -> 10.0.0.1:7000 (02:..:01), ident 0x1234, DF, TTL 64, "paxos!".
#[rustfmt::skip]
pub const UDP_FRAME: [u8; 48] = [
    // Ethernet: dst, src, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00,
    // IPv4: ver/ihl, tos, total length 34, ident, flags DF, TTL 64, UDP, checksum
    0x45, 0x00, 0x00, 0x22,
    0x12, 0x34, 0x40, 0x00,
    0x40, 0x11, 0x14, 0x95,
    0x0a, 0x00, 0x00, 0x02,
    0x0a, 0x00, 0x00, 0x01,
    // UDP: src port 40000, dst port 7000, length 14, checksum
    0x9c, 0x40, 0x1b, 0x58,
    0x00, 0x0e, 0xd8, 0x44,
    // payload "paxos!"
    0x70, 0x61, 0x78, 0x6f, 0x73, 0x21,
];

/// ARP request, broadcast: who has 10.0.0.1? tell 10.0.0.2 (02:..:02).
#[rustfmt::skip]
pub const ARP_REQUEST_FRAME: [u8; 42] = [
    // Ethernet: dst broadcast, src, type ARP
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x06,
    // htype 1, ptype 0x0800, hlen 6, plen 4, op request
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
    // sender MAC, sender IP
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02,
    // target MAC (unknown), target IP
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01,
];
