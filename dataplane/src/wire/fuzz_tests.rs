//! Deterministic fuzz-ish tests: 100k random or mutated buffers through every parser and view.
//! The panic contract (see the module docs) is what is checked; a fixed xorshift seed makes any
//! failure reproducible. The golden frames are the seed corpus.

use std::hint::black_box;

use super::golden;
use super::*;

/// xorshift64 (Marsaglia): tiny, seeded, good enough to pick bytes and positions.
struct XorShift64(u64);

impl XorShift64 {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

const ITERATIONS: usize = 100_000;
const MAX_LEN: usize = 200;

/// Copies `seed` into `buf` and applies 1..=4 byte mutations (biased to the headers), then
/// sometimes truncates or extends it.
fn mutate(rng: &mut XorShift64, seed: &[u8], buf: &mut Vec<u8>) {
    buf.extend_from_slice(seed);
    for _ in 0..1 + rng.below(4) {
        let pos = if rng.below(4) == 0 { rng.below(buf.len()) } else { rng.below(42) };
        match rng.below(3) {
            0 => buf[pos] = rng.byte(),
            1 => buf[pos] ^= 1 << rng.below(8),
            _ => buf[pos] = [0x00, 0xff, 0x01, 0x7f, 0x80][rng.below(5)],
        }
    }
    match rng.below(6) {
        0 => buf.truncate(rng.below(buf.len() + 1)),
        1 => {
            let extra = rng.below(MAX_LEN - buf.len());
            buf.extend((0..extra).map(|_| rng.byte()));
        }
        _ => {}
    }
}

/// Calls every accessor of every view that `new_checked` accepts over `bytes`, and checks that
/// reprs which parse re-emit to something that parses back equal.
fn exercise_views(bytes: &[u8]) {
    if let Ok(p) = EthernetPacket::new_checked(bytes) {
        black_box((p.dst_addr(), p.src_addr(), p.ethertype(), p.payload().len()));
        assert!(EthernetRepr::parse(&p).is_ok());
    }
    if let Ok(p) = Ipv4Packet::new_checked(bytes) {
        black_box((p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident()));
        black_box((p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl()));
        black_box((p.protocol(), p.checksum(), p.src_addr(), p.dst_addr()));
        black_box((p.verify_checksum(), p.options().len(), p.payload().len()));
        for mode in [Checksum::Compute, Checksum::Offload] {
            if let Ok(repr) = Ipv4Repr::parse(&p, mode) {
                let mut out = vec![0u8; repr.buffer_len()];
                out[IPV4_HEADER_LEN..].copy_from_slice(p.payload());
                repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), Checksum::Compute);
                let again = Ipv4Packet::new_checked(&out[..]).unwrap();
                assert_eq!(Ipv4Repr::parse(&again, Checksum::Compute), Ok(repr));
            }
        }
    }
    if let Ok(p) = UdpPacket::new_checked(bytes) {
        black_box((p.src_port(), p.dst_port(), p.length(), p.checksum(), p.payload().len()));
        let (a, b) = (golden::PEER_IP, golden::LOCAL_IP);
        black_box(p.verify_checksum(a, b));
        if let Ok(repr) = UdpRepr::parse(&p, a, b, Checksum::Compute) {
            let mut out = vec![0u8; repr.buffer_len()];
            out[UDP_HEADER_LEN..].copy_from_slice(p.payload());
            repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), a, b, Checksum::Compute);
            let again = UdpPacket::new_checked(&out[..]).unwrap();
            assert_eq!(UdpRepr::parse(&again, a, b, Checksum::Compute), Ok(repr));
        }
    }
    if let Ok(p) = ArpPacket::new_checked(bytes) {
        black_box((p.hardware_type(), p.protocol_type(), p.hardware_len(), p.protocol_len()));
        black_box((p.operation(), p.sender_mac(), p.sender_ip(), p.target_mac(), p.target_ip()));
        if let Ok(repr) = ArpRepr::parse(&p) {
            let mut out = [0u8; ARP_LEN];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            assert_eq!(ArpRepr::parse(&ArpPacket::new_unchecked(&out[..])), Ok(repr));
        }
    }
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let mut rng = XorShift64(0x2545_f491_4f6c_dd1d);
    let mut buf = Vec::with_capacity(MAX_LEN);
    let mut drops = [0usize; FrameDrop::COUNT];
    let (mut accepted, mut arp_parsed) = (0usize, 0usize);
    let mut cache = ArpCache::<4>::new();

    for _ in 0..ITERATIONS {
        buf.clear();
        match rng.below(3) {
            0 => {
                let len = rng.below(MAX_LEN);
                buf.extend((0..len).map(|_| rng.byte()));
            }
            1 => mutate(&mut rng, &golden::UDP_FRAME, &mut buf),
            _ => mutate(&mut rng, &golden::ARP_REQUEST_FRAME, &mut buf),
        }
        let policy = ChecksumPolicy { verify_ip: rng.below(2) == 0, verify_udp: rng.below(2) == 0 };

        match parse_udp_frame(&buf, golden::LOCAL_MAC, golden::LOCAL_IP, policy) {
            Ok(frame) => {
                accepted += 1;
                let end = frame.payload_offset + frame.payload.len();
                assert!(frame.payload_offset >= UDP_FRAME_HEADER_LEN && end <= buf.len());
                assert!(std::ptr::eq(frame.payload, &buf[frame.payload_offset..end]));
            }
            Err(cause) => drops[cause.index()] += 1,
        }
        if let Ok(arp) = parse_arp_frame(&buf) {
            arp_parsed += 1;
            black_box(arp_reply_for(&arp, golden::LOCAL_MAC, golden::LOCAL_IP));
            cache.insert(arp.sender_ip, arp.sender_mac);
            assert!(cache.iter().all(|(ip, mac, _)| mac.is_unicast() && !ip.is_unspecified()));
        }
        exercise_views(&buf);
        if let Some(rest) = buf.get(ETHERNET_HEADER_LEN..) {
            exercise_views(rest);
        }
    }

    // The generator must actually reach every branch, or the test proves little.
    assert!(accepted > 100, "accepted {accepted}");
    assert!(arp_parsed > 100, "arp parsed {arp_parsed}");
    for cause in FrameDrop::ALL {
        assert!(drops[cause.index()] > 0, "never produced {cause}: {drops:?}");
    }
}

#[test]
fn every_prefix_of_mutated_frames_never_panics() {
    let mut rng = XorShift64(0xdead_beef_cafe_f00d);
    let mut buf = Vec::new();
    for _ in 0..2_000 {
        buf.clear();
        mutate(&mut rng, &golden::UDP_FRAME, &mut buf);
        for len in 0..=buf.len() {
            let prefix = &buf[..len];
            black_box(parse_udp_frame(
                prefix,
                golden::LOCAL_MAC,
                golden::LOCAL_IP,
                ChecksumPolicy::TRUST_NIC,
            ))
            .ok();
            black_box(parse_arp_frame(prefix)).ok();
        }
    }
}

/// Recomputes the IPv4 header checksum and, where the UDP header is well-formed, the UDP one
/// (so that mutated frames often get past the checksum checks).
fn fix_checksums(frame: &mut [u8]) {
    let Some(ip_bytes) = frame.get_mut(ETHERNET_HEADER_LEN..) else { return };
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut ip_bytes[..]) else { return };
    ip.fill_checksum();
    let (src, dst, ihl) = (ip.src_addr(), ip.dst_addr(), ip.header_len());
    if let Ok(mut udp) = UdpPacket::new_checked(&mut ip_bytes[ihl..]) {
        udp.fill_checksum(src, dst);
    }
}

/// The fast pass of `parse_udp_frame` accepts only what the layered parsers accept, with the
/// same result; and it does accept the common frames.
#[test]
fn fast_parse_agrees_with_layered_parse() {
    let mut rng = XorShift64(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::with_capacity(MAX_LEN);
    let mut fast = 0usize;
    for i in 0..ITERATIONS {
        buf.clear();
        mutate(&mut rng, &golden::UDP_FRAME, &mut buf);
        match rng.below(4) {
            0 => {}
            1 => fix_checksums(&mut buf),
            // A zero UDP checksum ("none").
            2 => {
                fix_checksums(&mut buf);
                if buf.len() > 41 {
                    buf[40] = 0;
                    buf[41] = 0;
                }
            }
            // The golden frame itself, unmutated, sometimes with trailing padding.
            _ => {
                buf.clear();
                buf.extend_from_slice(&golden::UDP_FRAME);
                buf.extend((0..rng.below(20)).map(|_| rng.byte()));
            }
        }
        let policy = ChecksumPolicy { verify_ip: i % 2 == 0, verify_udp: i % 4 < 2 };
        let layered = frame::parse_layered(&buf, golden::LOCAL_MAC, golden::LOCAL_IP, policy);
        if let Some(f) = frame::parse_common(&buf, golden::LOCAL_MAC, golden::LOCAL_IP, policy) {
            fast += 1;
            assert_eq!(Ok(f), layered, "frame {buf:02x?} policy {policy:?}");
        }
        assert_eq!(
            parse_udp_frame(&buf, golden::LOCAL_MAC, golden::LOCAL_IP, policy),
            layered,
            "frame {buf:02x?} policy {policy:?}"
        );
    }
    assert!(fast > ITERATIONS / 4, "fast path taken {fast} times");
}
