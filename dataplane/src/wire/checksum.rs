//! The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement sum of
//! the data taken as big-endian 16-bit words (an odd trailing byte is padded with a zero byte).
//!
//! Functions here return the *folded sum* (not complemented) so partial sums can be combined;
//! the value written into a header is `!sum`. A buffer that includes a correct checksum field
//! sums to `0xffff`.
//!
//! Speed: the data is read eight bytes at a time and added as two 32-bit halves into a `u64`
//! accumulator, which cannot overflow for any buffer shorter than 16 GiB; the carries
//! are folded once at the end. One's-complement addition is associative and commutative and
//! `2^16 ≡ 1 (mod 0xffff)`, so summing 32-bit words and folding gives the same result as
//! summing 16-bit words.

use std::net::Ipv4Addr;

/// Folds a wide one's-complement accumulator down to 16 bits (end-around carry).
#[inline]
pub const fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// One's-complement sum of `data`, folded to 16 bits (not complemented).
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// Adds `data` into a wide accumulator; fold the result with [`fold`].
///
/// Chunks must be fed at even offsets of the logical buffer (only the last may be odd-length),
/// as an odd-length chunk is padded with a zero byte.
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += word >> 32;
        acc += word & 0xffff_ffff;
    }
    let mut rest = chunks.remainder();
    while rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folded one's-complement sum of a 20-byte IPv4 header (no options): five 32-bit words, one
/// fold. A header with a correct checksum field sums to `0xffff`.
#[inline(always)]
pub fn ipv4_header(h: &[u8; 20]) -> u16 {
    let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    fold(w(0) + w(4) + w(8) + w(12) + w(16))
}

/// One's-complement sum of several folded sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Folded sum of the IPv4 pseudo-header used by UDP and TCP: source, destination, zero,
/// protocol, and `length` (the UDP/TCP header plus payload, in bytes).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let s = u32::from(src);
    let d = u32::from(dst);
    let acc = u64::from(s >> 16)
        + u64::from(s & 0xffff)
        + u64::from(d >> 16)
        + u64::from(d & 0xffff)
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook RFC 1071 loop, independent of the fast path above.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            sum += (u32::from(bytes[i]) << 8) | u32::from(bytes[i + 1]);
            i += 2;
        }
        if i < bytes.len() {
            sum += u32::from(bytes[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn classic_ipv4_header_example() {
        // The well-known example header (192.168.0.1 -> 192.168.0.199, UDP, total length 115).
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(data(&hdr), 0xffff, "a header with its checksum sums to 0xffff");
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(!data(&hdr), 0xb861);
        assert_eq!(!reference(&hdr), 0xb861);
    }

    #[test]
    fn ipv4_header_matches_data() {
        let mut state: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..1000 {
            let mut h = [0u8; 20];
            for b in h.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            assert_eq!(ipv4_header(&h), data(&h));
        }
        assert_eq!(ipv4_header(&[0xff; 20]), data(&[0xff; 20]));
    }

    #[test]
    fn rfc1071_section_3_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(reference(&bytes), 0xddf2);
    }

    #[test]
    fn matches_reference_on_pseudo_random_buffers() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = [0u8; 300];
        for len in 0..buf.len() {
            for b in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            assert_eq!(data(&buf[..len]), reference(&buf[..len]), "len {len}");
        }
        // Worst case for carries: all ones.
        let ones = [0xffu8; 257];
        for len in 0..ones.len() {
            assert_eq!(data(&ones[..len]), reference(&ones[..len]), "ones len {len}");
        }
    }

    #[test]
    fn accumulate_in_even_chunks_equals_whole() {
        let bytes: Vec<u8> = (0..101u32).map(|i| (i * 37 + 11) as u8).collect();
        let whole = data(&bytes);
        for split in (0..bytes.len()).step_by(2) {
            let acc = accumulate(accumulate(0, &bytes[..split]), &bytes[split..]);
            assert_eq!(fold(acc), whole, "split {split}");
        }
        assert_eq!(combine(&[data(&bytes[..40]), data(&bytes[40..])]), whole);
    }

    #[test]
    fn pseudo_header_matches_byte_layout() {
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let dst = Ipv4Addr::new(10, 0, 0, 1);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&[0, 17, 0, 14]);
        assert_eq!(pseudo_header_v4(src, dst, 17, 14), reference(&bytes));
        assert_eq!(pseudo_header_v4(src, dst, 17, 14), 0x1422);
    }

    #[test]
    fn fold_edge_cases() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(data(&[]), 0);
    }
}
