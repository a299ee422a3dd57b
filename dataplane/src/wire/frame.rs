//! Frame-level helpers for the node's hot paths: classify-and-parse on receive, write headers
//! in front of an already-encoded payload on transmit, and the few ARP exchanges a node needs.
//!
//! A UDP frame as this module reads and writes it (no IPv4 options on transmit):
//!
//! ```text
//! offset  len  what
//!      0   14  Ethernet II header
//!     14   20  IPv4 header (receive: IHL * 4 bytes, options skipped)
//!     34    8  UDP header
//!     42    -  payload  (UDP_FRAME_HEADER_LEN = 42)
//! ```
//!
//! Frames shorter than the Ethernet minimum (60 bytes without FCS) are returned unpadded; NICs
//! pad on transmit. On receive, Ethernet padding after the IPv4 total length is ignored.

use std::fmt;
use std::net::Ipv4Addr;

use super::arp::{ArpOperation, ArpPacket, ArpRepr, ARP_LEN};
use super::ethernet::{EtherType, EthernetPacket, EthernetRepr, MacAddr, ETHERNET_HEADER_LEN};
use super::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN};
use super::udp::{UdpPacket, UdpRepr, UDP_HEADER_LEN};
use super::{checksum, Checksum, WireError};

/// Bytes in front of the UDP payload in a frame we emit: 14 + 20 + 8.
pub const UDP_FRAME_HEADER_LEN: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;

/// Largest UDP payload in one IPv4 datagram: 65535 - 20 - 8 = 65507. (The MTU is lower; this
/// only bounds what the length fields can say.)
pub const MAX_UDP_FRAME_PAYLOAD_LEN: usize = u16::MAX as usize - IPV4_HEADER_LEN - UDP_HEADER_LEN;

/// Length of an Ethernet/IPv4 ARP frame before padding: 14 + 28.
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + ARP_LEN;

/// Which checksums [`parse_udp_frame`] verifies in software. Skip one when the NIC has already
/// validated it (DPDK `RTE_MBUF_F_RX_IP_CKSUM_GOOD` / `RTE_MBUF_F_RX_L4_CKSUM_GOOD`); the
/// caller then drops frames the NIC flagged bad itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChecksumPolicy {
    /// Verify the IPv4 header checksum.
    pub verify_ip: bool,
    /// Verify the UDP checksum (a zero checksum field always passes).
    pub verify_udp: bool,
}

impl ChecksumPolicy {
    /// Verify both in software.
    pub const VERIFY_ALL: ChecksumPolicy = ChecksumPolicy { verify_ip: true, verify_udp: true };
    /// Verify neither: the NIC did.
    pub const TRUST_NIC: ChecksumPolicy = ChecksumPolicy { verify_ip: false, verify_udp: false };
}

fn checksum_mode(verify: bool) -> Checksum {
    if verify {
        Checksum::Compute
    } else {
        Checksum::Offload
    }
}

/// Why [`parse_udp_frame`] did not hand a frame to the UDP path. `Copy`, with a dense
/// [`index`](FrameDrop::index) so receive loops can count drops in `[u64; FrameDrop::COUNT]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameDrop {
    /// Shorter than a header or than a length field says.
    Truncated,
    /// Destination MAC is neither ours nor (for ARP only) broadcast.
    WrongMac,
    /// EtherType is neither IPv4 nor ARP.
    NotIpv4,
    /// An ARP frame for us or broadcast: not for the UDP path; the caller handles it (see
    /// [`parse_arp_frame`]).
    Arp,
    /// IPv4 header malformed: version not 4, IHL < 5, or total length < header length.
    BadIpHeader,
    /// IPv4 header or UDP checksum did not verify.
    BadChecksum,
    /// An IPv4 fragment: we do not reassemble.
    Fragmented,
    /// Destination IPv4 address is not ours.
    WrongIp,
    /// IPv4 protocol is not UDP.
    NotUdp,
    /// UDP length field smaller than the UDP header.
    BadUdpHeader,
}

impl FrameDrop {
    /// Number of causes.
    pub const COUNT: usize = 10;

    /// Every cause, in [`index`](FrameDrop::index) order.
    pub const ALL: [FrameDrop; FrameDrop::COUNT] = [
        FrameDrop::Truncated,
        FrameDrop::WrongMac,
        FrameDrop::NotIpv4,
        FrameDrop::Arp,
        FrameDrop::BadIpHeader,
        FrameDrop::BadChecksum,
        FrameDrop::Fragmented,
        FrameDrop::WrongIp,
        FrameDrop::NotUdp,
        FrameDrop::BadUdpHeader,
    ];

    /// Position of `self` in [`FrameDrop::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short `snake_case` name, suitable as a counter label.
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameDrop::Truncated => "truncated",
            FrameDrop::WrongMac => "wrong_mac",
            FrameDrop::NotIpv4 => "not_ipv4",
            FrameDrop::Arp => "arp",
            FrameDrop::BadIpHeader => "bad_ip_header",
            FrameDrop::BadChecksum => "bad_checksum",
            FrameDrop::Fragmented => "fragmented",
            FrameDrop::WrongIp => "wrong_ip",
            FrameDrop::NotUdp => "not_udp",
            FrameDrop::BadUdpHeader => "bad_udp_header",
        }
    }
}

impl fmt::Display for FrameDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for FrameDrop {}

/// A UDP datagram addressed to us, borrowed from the received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame<'a> {
    /// Ethernet source (where an ARP-less reply could go).
    pub src_mac: MacAddr,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The UDP payload (exactly the UDP length field's worth).
    pub payload: &'a [u8],
    /// Byte offset of `payload` inside the frame, so the caller can take a zero-copy slice of
    /// the mbuf: `frame[payload_offset..payload_offset + payload.len()]`.
    pub payload_offset: usize,
}

/// Classifies a received Ethernet frame and, if it is a UDP datagram for `local_mac` /
/// `local_ip`, returns its addressing and payload without copying.
///
/// Checks, in order (the first failure is the drop cause):
/// 1. Ethernet header present (`Truncated`).
/// 2. Destination MAC is `local_mac`, or broadcast for ARP only (`WrongMac`).
/// 3. EtherType: ARP returns `Arp`; anything but IPv4 is `NotIpv4`.
/// 4. IPv4 header: lengths (`Truncated`), version / IHL / total length (`BadIpHeader`), checksum
///    if `verify.verify_ip` (`BadChecksum`), fragment (`Fragmented`); options are skipped.
/// 5. Destination IP is `local_ip` (`WrongIp`); protocol is UDP (`NotUdp`).
/// 6. UDP header: lengths (`Truncated`), length field >= 8 (`BadUdpHeader`), checksum if
///    `verify.verify_udp` and non-zero (`BadChecksum`).
///
/// Source addresses are not vetted; the protocol layer decides which peers it accepts. Never
/// panics, whatever `frame` holds.
///
/// Speed: the common frame (no IPv4 options, every check passing) is accepted by a straight
/// pass over fixed offsets; anything else, including every frame that is dropped, goes through
/// the layered parsers, which find the drop cause. The fast pass accepts only frames the
/// layered parsers accept, with the same result (tests compare the two).
#[inline]
pub fn parse_udp_frame(
    frame: &[u8],
    local_mac: MacAddr,
    local_ip: Ipv4Addr,
    verify: ChecksumPolicy,
) -> Result<UdpFrame<'_>, FrameDrop> {
    match parse_common(frame, local_mac, local_ip, verify) {
        Some(f) => Ok(f),
        None => parse_layered(frame, local_mac, local_ip, verify),
    }
}

/// Offsets in a frame without IPv4 options.
mod at {
    pub const ETHERTYPE: usize = 12;
    pub const IP: usize = 14;
    pub const IP_TOTAL_LEN: usize = 16;
    pub const IP_FLAGS_FRAG: usize = 20;
    pub const IP_PROTOCOL: usize = 23;
    pub const IP_SRC: usize = 26;
    pub const IP_DST: usize = 30;
    pub const UDP: usize = 34;
    pub const UDP_SRC_PORT: usize = 34;
    pub const UDP_DST_PORT: usize = 36;
    pub const UDP_LEN: usize = 38;
    pub const UDP_CHECKSUM: usize = 40;
}

#[inline(always)]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// The fast pass of [`parse_udp_frame`]: `Some` only for a frame the layered parsers accept
/// (IHL 5, every check passing), `None` to let them decide.
#[inline(always)]
pub(super) fn parse_common(
    frame: &[u8],
    local_mac: MacAddr,
    local_ip: Ipv4Addr,
    verify: ChecksumPolicy,
) -> Option<UdpFrame<'_>> {
    let h: &[u8; UDP_FRAME_HEADER_LEN] = frame.get(..UDP_FRAME_HEADER_LEN)?.try_into().ok()?;
    if h[..6] != local_mac.0 || h[at::ETHERTYPE..at::ETHERTYPE + 2] != [0x08, 0x00] {
        return None;
    }
    // Version 4, IHL 5 (20 bytes, no options).
    if h[at::IP] != 0x45 {
        return None;
    }
    let total_len = usize::from(be16(h, at::IP_TOTAL_LEN));
    if total_len < IPV4_HEADER_LEN + UDP_HEADER_LEN
        || frame.len() < ETHERNET_HEADER_LEN + total_len
        || be16(h, at::IP_FLAGS_FRAG) & 0x3fff != 0
        || h[at::IP_DST..at::IP_DST + 4] != local_ip.octets()
        || h[at::IP_PROTOCOL] != IpProtocol::UDP
    {
        return None;
    }
    if verify.verify_ip {
        let ip: &[u8; IPV4_HEADER_LEN] = h[at::IP..at::UDP].try_into().ok()?;
        if checksum::ipv4_header(ip) != 0xffff {
            return None;
        }
    }
    let udp_len = be16(h, at::UDP_LEN);
    if usize::from(udp_len) < UDP_HEADER_LEN || usize::from(udp_len) > total_len - IPV4_HEADER_LEN {
        return None;
    }
    let udp = frame.get(at::UDP..at::UDP + usize::from(udp_len))?;
    if verify.verify_udp && be16(h, at::UDP_CHECKSUM) != 0 {
        let src = [h[at::IP_SRC], h[at::IP_SRC + 1], h[at::IP_SRC + 2], h[at::IP_SRC + 3]];
        let pseudo = checksum::pseudo_header_v4(src.into(), local_ip, IpProtocol::UDP, udp_len);
        if checksum::fold(checksum::accumulate(u64::from(pseudo), udp)) != 0xffff {
            return None;
        }
    }
    Some(UdpFrame {
        src_mac: MacAddr([h[6], h[7], h[8], h[9], h[10], h[11]]),
        src_ip: Ipv4Addr::new(
            h[at::IP_SRC],
            h[at::IP_SRC + 1],
            h[at::IP_SRC + 2],
            h[at::IP_SRC + 3],
        ),
        src_port: be16(h, at::UDP_SRC_PORT),
        dst_port: be16(h, at::UDP_DST_PORT),
        payload: udp.get(UDP_HEADER_LEN..)?,
        payload_offset: UDP_FRAME_HEADER_LEN,
    })
}

/// The layered parse (Ethernet, IPv4, UDP views and reprs): any frame, exact drop causes.
#[cold]
pub(super) fn parse_layered(
    frame: &[u8],
    local_mac: MacAddr,
    local_ip: Ipv4Addr,
    verify: ChecksumPolicy,
) -> Result<UdpFrame<'_>, FrameDrop> {
    let eth = EthernetPacket::new_checked(frame).map_err(|_| FrameDrop::Truncated)?;
    let dst_mac = eth.dst_addr();
    let to_us = dst_mac == local_mac;
    if !to_us && !dst_mac.is_broadcast() {
        return Err(FrameDrop::WrongMac);
    }
    match eth.ethertype() {
        EtherType::Ipv4 if to_us => {}
        EtherType::Ipv4 => return Err(FrameDrop::WrongMac),
        EtherType::Arp => return Err(FrameDrop::Arp),
        EtherType::Unknown(_) => return Err(FrameDrop::NotIpv4),
    }

    let ip = Ipv4Packet::new_unchecked(eth.payload());
    let ip_repr = Ipv4Repr::parse(&ip, checksum_mode(verify.verify_ip)).map_err(|e| match e {
        WireError::Truncated => FrameDrop::Truncated,
        WireError::BadChecksum => FrameDrop::BadChecksum,
        WireError::Fragmented => FrameDrop::Fragmented,
        _ => FrameDrop::BadIpHeader,
    })?;
    if ip_repr.dst_addr != local_ip {
        return Err(FrameDrop::WrongIp);
    }
    if ip_repr.protocol != IpProtocol::Udp {
        return Err(FrameDrop::NotUdp);
    }

    let udp = UdpPacket::new_unchecked(ip.payload());
    let udp_mode = checksum_mode(verify.verify_udp);
    let udp_repr = UdpRepr::parse(&udp, ip_repr.src_addr, ip_repr.dst_addr, udp_mode).map_err(
        |e| match e {
            WireError::Truncated => FrameDrop::Truncated,
            WireError::BadChecksum => FrameDrop::BadChecksum,
            _ => FrameDrop::BadUdpHeader,
        },
    )?;

    let payload_offset = ETHERNET_HEADER_LEN + ip.header_len() + UDP_HEADER_LEN;
    // The checks above guarantee this range; `get` keeps the no-panic promise local.
    let payload = frame
        .get(payload_offset..payload_offset + udp_repr.payload_len)
        .ok_or(FrameDrop::Truncated)?;
    Ok(UdpFrame {
        src_mac: eth.src_addr(),
        src_ip: ip_repr.src_addr,
        src_port: udp_repr.src_port,
        dst_port: udp_repr.dst_port,
        payload,
        payload_offset,
    })
}

/// Addressing for [`emit_udp_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpFrameHeader {
    /// Our MAC.
    pub src_mac: MacAddr,
    /// Next hop's MAC (from the ARP cache).
    pub dst_mac: MacAddr,
    /// Our IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// IPv4 identification (DF is set, so any value is fine; 0 or a debug counter).
    pub ip_id: u16,
}

/// Writes Ethernet + IPv4 + UDP headers into `buf[..UDP_FRAME_HEADER_LEN]`, in front of a
/// payload the caller has **already written** at `buf[UDP_FRAME_HEADER_LEN..][..payload_len]`,
/// and returns the frame length `UDP_FRAME_HEADER_LEN + payload_len`.
///
/// IPv4: no options, DF set, TTL 64, ident `hdr.ip_id`. With [`Checksum::Compute`] both
/// checksums are filled (the UDP one over the payload). With [`Checksum::Offload`] the IPv4
/// checksum is 0 and the UDP field holds the pseudo-header sum, as DPDK TX offload expects (the
/// caller sets `l2_len = 14`, `l3_len = 20` and the `IPV4 | IP_CKSUM | UDP_CKSUM` flags).
///
/// # Panics
///
/// If `payload_len > MAX_UDP_FRAME_PAYLOAD_LEN` or `buf` is shorter than the frame. Both are
/// caller bugs (the encoder knows its buffer and length).
#[inline(always)]
pub fn emit_udp_frame(
    buf: &mut [u8],
    hdr: &UdpFrameHeader,
    payload_len: usize,
    csum: Checksum,
) -> usize {
    let frame_len = check_emit_len(buf, payload_len);
    let (ip_csum, udp_csum) = match csum {
        Checksum::Compute => (UdpFrameChecksum::Compute, UdpFrameChecksum::Compute),
        Checksum::Offload => (UdpFrameChecksum::Offload, UdpFrameChecksum::Offload),
    };
    write_headers(&mut buf[..frame_len], hdr, payload_len, ip_csum, udp_csum);
    frame_len
}

/// Like [`emit_udp_frame`] with [`Checksum::Compute`] for the IPv4 header but a UDP checksum
/// of 0 ("none", legal over IPv4: the receiver skips the check). For links that cannot
/// corrupt frames (`trust_link`): saves summing the payload on both ends.
///
/// # Panics
///
/// As [`emit_udp_frame`].
#[inline(always)]
pub fn emit_udp_frame_without_udp_checksum(
    buf: &mut [u8],
    hdr: &UdpFrameHeader,
    payload_len: usize,
) -> usize {
    let frame_len = check_emit_len(buf, payload_len);
    write_headers(
        &mut buf[..frame_len],
        hdr,
        payload_len,
        UdpFrameChecksum::Compute,
        UdpFrameChecksum::Zero,
    );
    frame_len
}

/// What [`write_headers`] puts in a checksum field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UdpFrameChecksum {
    /// The full checksum.
    Compute,
    /// IPv4: 0; UDP: the pseudo-header sum (what DPDK TX offload expects).
    Offload,
    /// 0 (UDP only: "no checksum").
    Zero,
}

#[inline(always)]
fn check_emit_len(buf: &[u8], payload_len: usize) -> usize {
    assert!(
        payload_len <= MAX_UDP_FRAME_PAYLOAD_LEN,
        "UDP payload of {payload_len} bytes exceeds {MAX_UDP_FRAME_PAYLOAD_LEN}"
    );
    let frame_len = UDP_FRAME_HEADER_LEN + payload_len;
    assert!(
        buf.len() >= frame_len,
        "buffer of {} bytes cannot hold a {frame_len}-byte frame",
        buf.len()
    );
    frame_len
}

/// Writes the 42 header bytes of `frame` (exactly one frame long, payload in place) with
/// plain stores at fixed offsets; the same bytes the Ethernet/IPv4/UDP reprs' `emit` write
/// (tests compare them): IPv4 version 4, IHL 5, DSCP/ECN 0, DF, TTL 64, protocol UDP.
#[inline(always)]
fn write_headers(
    frame: &mut [u8],
    hdr: &UdpFrameHeader,
    payload_len: usize,
    ip_csum: UdpFrameChecksum,
    udp_csum: UdpFrameChecksum,
) {
    let udp_len = (UDP_HEADER_LEN + payload_len) as u16;
    let total_len = udp_len + IPV4_HEADER_LEN as u16;
    let (src, dst) = (hdr.src_ip.octets(), hdr.dst_ip.octets());
    let [tl0, tl1] = total_len.to_be_bytes();
    let [id0, id1] = hdr.ip_id.to_be_bytes();
    let mut ip: [u8; IPV4_HEADER_LEN] = [
        0x45,
        0,
        tl0,
        tl1,
        id0,
        id1,
        0x40, // DF, fragment offset 0
        0,
        Ipv4Repr::DEFAULT_TTL,
        IpProtocol::UDP,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    if ip_csum == UdpFrameChecksum::Compute {
        let sum = !checksum::ipv4_header(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    let (h, payload) = frame.split_at_mut(UDP_FRAME_HEADER_LEN);
    h[..6].copy_from_slice(&hdr.dst_mac.0);
    h[6..12].copy_from_slice(&hdr.src_mac.0);
    h[at::ETHERTYPE..at::IP].copy_from_slice(&[0x08, 0x00]);
    h[at::IP..at::UDP].copy_from_slice(&ip);
    h[at::UDP_SRC_PORT..at::UDP_SRC_PORT + 2].copy_from_slice(&hdr.src_port.to_be_bytes());
    h[at::UDP_DST_PORT..at::UDP_DST_PORT + 2].copy_from_slice(&hdr.dst_port.to_be_bytes());
    h[at::UDP_LEN..at::UDP_LEN + 2].copy_from_slice(&udp_len.to_be_bytes());
    let udp_sum = match udp_csum {
        UdpFrameChecksum::Zero => 0,
        UdpFrameChecksum::Offload => {
            checksum::pseudo_header_v4(hdr.src_ip, hdr.dst_ip, IpProtocol::UDP, udp_len)
        }
        UdpFrameChecksum::Compute => {
            let pseudo =
                checksum::pseudo_header_v4(hdr.src_ip, hdr.dst_ip, IpProtocol::UDP, udp_len);
            // The header words (ports, length; checksum field 0), then the payload.
            let acc = u64::from(pseudo)
                + u64::from(hdr.src_port)
                + u64::from(hdr.dst_port)
                + u64::from(udp_len);
            let value = !checksum::fold(checksum::accumulate(acc, payload));
            if value == 0 {
                0xffff
            } else {
                value
            }
        }
    };
    h[at::UDP_CHECKSUM..at::UDP_CHECKSUM + 2].copy_from_slice(&udp_sum.to_be_bytes());
}

/// Parses an ARP frame (one [`parse_udp_frame`] classified as [`FrameDrop::Arp`]). The
/// destination MAC is not re-checked. Errors: `Truncated`, `NotArp` (EtherType), and the
/// [`ArpRepr::parse`] errors. Never panics.
pub fn parse_arp_frame(frame: &[u8]) -> Result<ArpRepr, WireError> {
    let eth = EthernetPacket::new_checked(frame)?;
    if eth.ethertype() != EtherType::Arp {
        return Err(WireError::NotArp);
    }
    ArpRepr::parse(&ArpPacket::new_unchecked(eth.payload()))
}

/// The reply to send for `request`, if it is a request for `our_ip`. Send it with
/// [`emit_arp_frame`] to `reply.target_mac` (the requester).
pub fn arp_reply_for(request: &ArpRepr, our_mac: MacAddr, our_ip: Ipv4Addr) -> Option<ArpRepr> {
    if request.operation != ArpOperation::Request || request.target_ip != our_ip {
        return None;
    }
    Some(ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: our_mac,
        sender_ip: our_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    })
}

/// A request asking who has `target_ip`. Send it with [`emit_arp_frame`] to
/// [`MacAddr::BROADCAST`].
pub fn arp_request(our_mac: MacAddr, our_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpRepr {
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: our_mac,
        sender_ip: our_ip,
        target_mac: MacAddr::ZERO,
        target_ip,
    }
}

/// Writes an Ethernet + ARP frame into `buf[..ARP_FRAME_LEN]` and returns `ARP_FRAME_LEN` (42).
///
/// # Panics
///
/// If `buf` is shorter than `ARP_FRAME_LEN`.
pub fn emit_arp_frame(buf: &mut [u8], src_mac: MacAddr, dst_mac: MacAddr, arp: &ArpRepr) -> usize {
    assert!(
        buf.len() >= ARP_FRAME_LEN,
        "buffer of {} bytes cannot hold a {ARP_FRAME_LEN}-byte ARP frame",
        buf.len()
    );
    let frame = &mut buf[..ARP_FRAME_LEN];
    let eth = EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Arp };
    eth.emit(&mut EthernetPacket::new_unchecked(&mut frame[..]));
    arp.emit(&mut ArpPacket::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]));
    ARP_FRAME_LEN
}

#[cfg(test)]
mod tests {
    use super::super::golden;
    use super::*;

    /// The layered emit (Ethernet/IPv4/UDP reprs), the reference the fast writer must match.
    fn emit_udp_frame_reprs(
        buf: &mut [u8],
        hdr: &UdpFrameHeader,
        payload_len: usize,
        csum: Checksum,
    ) -> usize {
        let frame_len = check_emit_len(buf, payload_len);
        let frame = &mut buf[..frame_len];

        let eth = EthernetRepr {
            src_addr: hdr.src_mac,
            dst_addr: hdr.dst_mac,
            ethertype: EtherType::Ipv4,
        };
        eth.emit(&mut EthernetPacket::new_unchecked(&mut frame[..]));

        let udp = UdpRepr { src_port: hdr.src_port, dst_port: hdr.dst_port, payload_len };
        let ip = Ipv4Repr {
            src_addr: hdr.src_ip,
            dst_addr: hdr.dst_ip,
            protocol: IpProtocol::Udp,
            payload_len: udp.buffer_len(),
            ttl: Ipv4Repr::DEFAULT_TTL,
            ident: hdr.ip_id,
        };
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]), csum);

        let udp_start = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
        udp.emit(
            &mut UdpPacket::new_unchecked(&mut frame[udp_start..]),
            hdr.src_ip,
            hdr.dst_ip,
            csum,
        );
        frame_len
    }

    fn parse(frame: &[u8]) -> Result<UdpFrame<'_>, FrameDrop> {
        parse_udp_frame(frame, golden::LOCAL_MAC, golden::LOCAL_IP, ChecksumPolicy::VERIFY_ALL)
    }

    fn golden_header() -> UdpFrameHeader {
        UdpFrameHeader {
            src_mac: golden::PEER_MAC,
            dst_mac: golden::LOCAL_MAC,
            src_ip: golden::PEER_IP,
            dst_ip: golden::LOCAL_IP,
            src_port: golden::PEER_PORT,
            dst_port: golden::LOCAL_PORT,
            ip_id: golden::IP_IDENT,
        }
    }

    /// The golden frame after `edit`, with both checksums recomputed.
    fn golden_with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut frame = golden::UDP_FRAME.to_vec();
        edit(&mut frame);
        fix_checksums(&mut frame);
        frame
    }

    /// Recomputes the IPv4 checksum, and the UDP one where the UDP header is well-formed.
    fn fix_checksums(frame: &mut [u8]) {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[golden::IP_OFFSET..]);
        ip.fill_checksum();
        let (src, dst, ihl) = (ip.src_addr(), ip.dst_addr(), ip.header_len());
        if let Ok(mut udp) = UdpPacket::new_checked(&mut frame[golden::IP_OFFSET + ihl..]) {
            udp.fill_checksum(src, dst);
        }
    }

    #[test]
    fn emit_matches_layered_emit() {
        let mut state: u64 = 0x0123_4567_89ab_cdef;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let r = next();
            let hdr = UdpFrameHeader {
                src_mac: MacAddr([2, r as u8, (r >> 8) as u8, 3, 4, 5]),
                dst_mac: MacAddr([2, (r >> 16) as u8, 9, 8, 7, (r >> 24) as u8]),
                src_ip: Ipv4Addr::from(next() as u32),
                dst_ip: Ipv4Addr::from(next() as u32),
                src_port: next() as u16,
                dst_port: next() as u16,
                ip_id: next() as u16,
            };
            let len = (next() % 300) as usize;
            let mut a = vec![0u8; UDP_FRAME_HEADER_LEN + len];
            for b in &mut a[UDP_FRAME_HEADER_LEN..] {
                *b = next() as u8;
            }
            let mut b = a.clone();
            for csum in [Checksum::Compute, Checksum::Offload] {
                assert_eq!(emit_udp_frame(&mut a, &hdr, len, csum), a.len());
                assert_eq!(emit_udp_frame_reprs(&mut b, &hdr, len, csum), b.len());
                assert_eq!(a, b, "{hdr:?} {csum:?}");
            }
            emit_udp_frame_without_udp_checksum(&mut a, &hdr, len);
            emit_udp_frame_reprs(&mut b, &hdr, len, Checksum::Compute);
            b[40] = 0;
            b[41] = 0;
            assert_eq!(a, b, "{hdr:?} no UDP checksum");
            let parsed = parse_udp_frame(&a, hdr.dst_mac, hdr.dst_ip, ChecksumPolicy::VERIFY_ALL)
                .expect("own frame parses");
            assert_eq!(parsed.payload.len(), len);
        }
    }

    #[test]
    fn test_parse() {
        let frame = parse(&golden::UDP_FRAME).unwrap();
        assert_eq!(
            frame,
            UdpFrame {
                src_mac: golden::PEER_MAC,
                src_ip: golden::PEER_IP,
                src_port: golden::PEER_PORT,
                dst_port: golden::LOCAL_PORT,
                payload: golden::PAYLOAD,
                payload_offset: golden::PAYLOAD_OFFSET,
            }
        );
        // Zero-copy: the payload is the frame's own bytes.
        let range = frame.payload_offset..frame.payload_offset + frame.payload.len();
        assert!(std::ptr::eq(frame.payload, &golden::UDP_FRAME[range]));
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 128];
        buf[UDP_FRAME_HEADER_LEN..][..golden::PAYLOAD.len()].copy_from_slice(golden::PAYLOAD);
        let len =
            emit_udp_frame(&mut buf, &golden_header(), golden::PAYLOAD.len(), Checksum::Compute);
        assert_eq!(len, golden::UDP_FRAME.len());
        assert_eq!(buf[..len], golden::UDP_FRAME);
        assert!(buf[len..].iter().all(|&b| b == 0), "nothing written past the frame");
    }

    #[test]
    fn test_emit_offload() {
        let mut buf = [0u8; 64];
        buf[UDP_FRAME_HEADER_LEN..][..golden::PAYLOAD.len()].copy_from_slice(golden::PAYLOAD);
        let len =
            emit_udp_frame(&mut buf, &golden_header(), golden::PAYLOAD.len(), Checksum::Offload);
        let ip = Ipv4Packet::new_checked(&buf[golden::IP_OFFSET..len]).unwrap();
        assert_eq!(ip.checksum(), 0);
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(udp.checksum(), golden::UDP_PSEUDO_HEADER_SUM);
        // Apart from checksums, identical to the golden frame; parses when the NIC is trusted.
        let frame = &buf[..len];
        assert_eq!(frame[..24], golden::UDP_FRAME[..24]);
        assert_eq!(frame[26..40], golden::UDP_FRAME[26..40]);
        assert_eq!(frame[42..], golden::UDP_FRAME[42..]);
        let trusting =
            parse_udp_frame(frame, golden::LOCAL_MAC, golden::LOCAL_IP, ChecksumPolicy::TRUST_NIC);
        assert_eq!(trusting.unwrap().payload, golden::PAYLOAD);
        assert_eq!(parse(frame).err(), Some(FrameDrop::BadChecksum));
    }

    #[test]
    fn emit_then_parse_round_trips_many_lengths() {
        let mut buf = vec![0u8; UDP_FRAME_HEADER_LEN + 1600];
        for payload_len in (0..=1500).step_by(7).chain([1, 2, 3, 1472, 1500]) {
            for (i, b) in buf[UDP_FRAME_HEADER_LEN..][..payload_len].iter_mut().enumerate() {
                *b = (i * 31 + payload_len) as u8;
            }
            let hdr = UdpFrameHeader { ip_id: payload_len as u16, ..golden_header() };
            let len = emit_udp_frame(&mut buf, &hdr, payload_len, Checksum::Compute);
            let frame = parse(&buf[..len]).unwrap();
            assert_eq!(frame.payload_offset, UDP_FRAME_HEADER_LEN);
            assert_eq!(frame.payload, &buf[UDP_FRAME_HEADER_LEN..len]);
            assert_eq!((frame.src_port, frame.dst_port), (hdr.src_port, hdr.dst_port));
        }
    }

    #[test]
    fn every_drop_cause_is_reachable() {
        let other_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
        let cases: Vec<(FrameDrop, Vec<u8>)> = vec![
            (FrameDrop::Truncated, golden::UDP_FRAME[..13].to_vec()),
            (FrameDrop::Truncated, golden::UDP_FRAME[..47].to_vec()),
            (FrameDrop::WrongMac, golden_with(|f| f[..6].copy_from_slice(&other_mac.0))),
            (FrameDrop::WrongMac, golden_with(|f| f[..6].copy_from_slice(&[0xff; 6]))),
            (
                FrameDrop::WrongMac,
                golden_with(|f| f[..6].copy_from_slice(&[0x01, 0, 0x5e, 0, 0, 1])),
            ),
            (FrameDrop::NotIpv4, golden_with(|f| f[12..14].copy_from_slice(&[0x86, 0xdd]))),
            (FrameDrop::Arp, golden::ARP_REQUEST_FRAME.to_vec()),
            (FrameDrop::BadIpHeader, golden_with(|f| f[14] = 0x65)),
            (FrameDrop::BadIpHeader, golden_with(|f| f[14] = 0x44)),
            (FrameDrop::BadIpHeader, golden_with(|f| f[16..18].copy_from_slice(&[0, 8]))),
            (FrameDrop::BadChecksum, {
                let mut f = golden::UDP_FRAME.to_vec();
                f[22] = 1; // TTL, IPv4 checksum left stale
                f
            }),
            (FrameDrop::BadChecksum, {
                let mut f = golden::UDP_FRAME.to_vec();
                f[44] ^= 1; // payload, UDP checksum left stale
                f
            }),
            (FrameDrop::Fragmented, golden_with(|f| f[20] = 0x20)), // MF
            (FrameDrop::Fragmented, golden_with(|f| f[20..22].copy_from_slice(&[0x40, 0x01]))),
            (FrameDrop::WrongIp, golden_with(|f| f[33] = 9)),
            (FrameDrop::NotUdp, golden_with(|f| f[23] = 6)),
            (FrameDrop::BadUdpHeader, golden_with(|f| f[38..40].copy_from_slice(&[0, 7]))),
            (FrameDrop::Truncated, golden_with(|f| f[38..40].copy_from_slice(&[0, 15]))),
        ];
        let mut seen = [false; FrameDrop::COUNT];
        for (i, (expected, frame)) in cases.iter().enumerate() {
            assert_eq!(parse(frame).err(), Some(*expected), "case {i}");
            seen[expected.index()] = true;
        }
        for cause in FrameDrop::ALL {
            assert!(seen[cause.index()], "no test frame produces {cause}");
        }
    }

    #[test]
    fn arp_to_other_unicast_mac_is_wrong_mac() {
        let mut frame = golden::ARP_REQUEST_FRAME;
        frame[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        assert_eq!(parse(&frame).err(), Some(FrameDrop::WrongMac));
        frame[..6].copy_from_slice(&golden::LOCAL_MAC.0);
        assert_eq!(parse(&frame).err(), Some(FrameDrop::Arp));
    }

    #[test]
    fn checksum_policy_skips_each_check_independently() {
        let mut bad_ip = golden::UDP_FRAME;
        bad_ip[22] = 1;
        let mut bad_udp = golden::UDP_FRAME;
        bad_udp[44] ^= 1;
        let run = |f: &[u8], verify_ip, verify_udp| {
            let policy = ChecksumPolicy { verify_ip, verify_udp };
            parse_udp_frame(f, golden::LOCAL_MAC, golden::LOCAL_IP, policy).err()
        };
        assert_eq!(run(&bad_ip, true, false), Some(FrameDrop::BadChecksum));
        assert_eq!(run(&bad_ip, false, true), None);
        assert_eq!(run(&bad_udp, false, true), Some(FrameDrop::BadChecksum));
        assert_eq!(run(&bad_udp, true, false), None);
    }

    #[test]
    fn udp_checksum_zero_accepted() {
        let mut frame = golden::UDP_FRAME;
        frame[40] = 0;
        frame[41] = 0;
        assert_eq!(parse(&frame).unwrap().payload, golden::PAYLOAD);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        for len in 0..golden::UDP_FRAME.len() {
            assert_eq!(
                parse(&golden::UDP_FRAME[..len]).err(),
                Some(FrameDrop::Truncated),
                "len {len}"
            );
        }
        for len in 0..golden::ARP_REQUEST_FRAME.len() {
            let r = parse_arp_frame(&golden::ARP_REQUEST_FRAME[..len]);
            assert_eq!(r.err(), Some(WireError::Truncated), "len {len}");
        }
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut frame = golden::UDP_FRAME.to_vec();
        frame.resize(60, 0);
        let parsed = parse(&frame).unwrap();
        assert_eq!(parsed.payload, golden::PAYLOAD);
        let mut arp = golden::ARP_REQUEST_FRAME.to_vec();
        arp.resize(60, 0);
        assert!(parse_arp_frame(&arp).is_ok());
    }

    #[test]
    fn ipv4_options_shift_payload_offset() {
        // Insert 8 option bytes (NOP x 7, EOL) after the 20-byte IPv4 header.
        let mut frame = golden::UDP_FRAME[..34].to_vec();
        frame.extend_from_slice(&[1, 1, 1, 1, 1, 1, 1, 0]);
        frame.extend_from_slice(&golden::UDP_FRAME[34..]);
        frame[14] = 0x47;
        frame[17] += 8;
        fix_checksums(&mut frame);
        let parsed = parse(&frame).unwrap();
        assert_eq!(parsed.payload_offset, golden::PAYLOAD_OFFSET + 8);
        assert_eq!(parsed.payload, golden::PAYLOAD);
    }

    #[test]
    fn arp_request_round_trip() {
        let request = arp_request(golden::PEER_MAC, golden::PEER_IP, golden::LOCAL_IP);
        let mut buf = [0u8; 64];
        let len = emit_arp_frame(&mut buf, golden::PEER_MAC, MacAddr::BROADCAST, &request);
        assert_eq!(buf[..len], golden::ARP_REQUEST_FRAME);
        assert_eq!(parse_arp_frame(&golden::ARP_REQUEST_FRAME), Ok(request));
        assert_eq!(parse_arp_frame(&golden::UDP_FRAME), Err(WireError::NotArp));
    }

    #[test]
    fn arp_reply_only_for_requests_for_us() {
        let request = parse_arp_frame(&golden::ARP_REQUEST_FRAME).unwrap();
        let reply = arp_reply_for(&request, golden::LOCAL_MAC, golden::LOCAL_IP).unwrap();
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!((reply.sender_mac, reply.sender_ip), (golden::LOCAL_MAC, golden::LOCAL_IP));
        assert_eq!((reply.target_mac, reply.target_ip), (golden::PEER_MAC, golden::PEER_IP));
        assert_eq!(arp_reply_for(&request, golden::LOCAL_MAC, Ipv4Addr::new(10, 0, 0, 7)), None);
        assert_eq!(arp_reply_for(&reply, golden::PEER_MAC, golden::PEER_IP), None);

        let mut buf = [0u8; ARP_FRAME_LEN];
        let len = emit_arp_frame(&mut buf, golden::LOCAL_MAC, reply.target_mac, &reply);
        // The requester sees it addressed to it, classifies it as ARP, and parses the reply.
        let r = parse_udp_frame(
            &buf[..len],
            golden::PEER_MAC,
            golden::PEER_IP,
            ChecksumPolicy::VERIFY_ALL,
        );
        assert_eq!(r.err(), Some(FrameDrop::Arp));
        assert_eq!(parse_arp_frame(&buf[..len]), Ok(reply));
    }

    #[test]
    fn frame_drop_names_and_indices() {
        for (i, cause) in FrameDrop::ALL.iter().enumerate() {
            assert_eq!(cause.index(), i);
            assert_eq!(cause.to_string(), cause.as_str());
            for other in &FrameDrop::ALL[..i] {
                assert_ne!(other.as_str(), cause.as_str());
            }
        }
    }

    #[test]
    #[should_panic(expected = "cannot hold")]
    fn emit_udp_frame_panics_on_short_buffer() {
        let mut buf = [0u8; UDP_FRAME_HEADER_LEN + 3];
        emit_udp_frame(&mut buf, &golden_header(), 4, Checksum::Compute);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn emit_udp_frame_panics_on_oversized_payload() {
        let mut buf = vec![0u8; UDP_FRAME_HEADER_LEN + MAX_UDP_FRAME_PAYLOAD_LEN + 1];
        emit_udp_frame(
            &mut buf,
            &golden_header(),
            MAX_UDP_FRAME_PAYLOAD_LEN + 1,
            Checksum::Compute,
        );
    }

    #[test]
    fn emit_udp_frame_max_payload() {
        let mut buf = vec![0u8; UDP_FRAME_HEADER_LEN + MAX_UDP_FRAME_PAYLOAD_LEN];
        let len = emit_udp_frame(
            &mut buf,
            &golden_header(),
            MAX_UDP_FRAME_PAYLOAD_LEN,
            Checksum::Compute,
        );
        assert_eq!(len, buf.len());
        assert_eq!(parse(&buf).unwrap().payload.len(), MAX_UDP_FRAME_PAYLOAD_LEN);
    }
}
