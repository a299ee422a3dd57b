//! The fault-injection point of the packet path.
//!
//! A [`GroupDriver`](crate::driver::GroupDriver) hands every received datagram (before it
//! is parsed) and every datagram it transmits (after it is encoded, before the transport
//! takes it) to its [`PacketFilter`]. The default, [`NoFaults`], passes everything and
//! compiles away: the driver is generic over the filter and asks [`PacketFilter::is_active`]
//! before doing any work for it (on transmit an active filter costs one copy, because the
//! encoded bytes must be seen before the transport owns them).
//!
//! Drops are counted by the driver (`filter_rx_drops`, `filter_tx_drops`). Fault suites
//! plug in their own filters (partitions by endpoint, loss by kind, bursts, ...).

use crate::io::Endpoint;

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
}

/// Sees every datagram a driver receives or sends.
pub trait PacketFilter {
    /// False if the filter never drops anything: the driver then skips it entirely.
    #[inline]
    fn is_active(&self) -> bool {
        true
    }
    /// A received datagram from `src` (its UDP payload).
    fn on_rx(&mut self, src: &Endpoint, bytes: &[u8]) -> Verdict;
    /// A datagram about to be sent to `dst` (its UDP payload, fully encoded).
    fn on_tx(&mut self, dst: &Endpoint, bytes: &[u8]) -> Verdict;
}

/// Passes everything; the driver does no work for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFaults;

impl PacketFilter for NoFaults {
    #[inline(always)]
    fn is_active(&self) -> bool {
        false
    }
    #[inline(always)]
    fn on_rx(&mut self, _: &Endpoint, _: &[u8]) -> Verdict {
        Verdict::Pass
    }
    #[inline(always)]
    fn on_tx(&mut self, _: &Endpoint, _: &[u8]) -> Verdict {
        Verdict::Pass
    }
}

impl<F: PacketFilter + ?Sized> PacketFilter for Box<F> {
    fn is_active(&self) -> bool {
        (**self).is_active()
    }
    fn on_rx(&mut self, src: &Endpoint, bytes: &[u8]) -> Verdict {
        (**self).on_rx(src, bytes)
    }
    fn on_tx(&mut self, dst: &Endpoint, bytes: &[u8]) -> Verdict {
        (**self).on_tx(dst, bytes)
    }
}

/// Parts per million: the unit of [`Lossy`]'s rates.
pub const PPM: u32 = 1_000_000;

/// Drops datagrams at random with fixed rates, from a seeded generator (xorshift64*), so
/// a run is reproducible for a given seed and packet sequence.
#[derive(Clone, Debug)]
pub struct Lossy {
    state: u64,
    rx_drop_ppm: u32,
    tx_drop_ppm: u32,
}

impl Lossy {
    /// Drops each received datagram with probability `rx_drop_ppm / 1e6` and each sent one
    /// with `tx_drop_ppm / 1e6`.
    pub fn new(seed: u64, rx_drop_ppm: u32, tx_drop_ppm: u32) -> Lossy {
        Lossy { state: seed ^ 0x9E37_79B9_7F4A_7C15 | 1, rx_drop_ppm, tx_drop_ppm }
    }

    fn roll(&mut self, ppm: u32) -> Verdict {
        if ppm == 0 {
            return Verdict::Pass;
        }
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        let r = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % u64::from(PPM);
        if r < u64::from(ppm) {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

impl PacketFilter for Lossy {
    fn on_rx(&mut self, _: &Endpoint, _: &[u8]) -> Verdict {
        self.roll(self.rx_drop_ppm)
    }
    fn on_tx(&mut self, _: &Endpoint, _: &[u8]) -> Verdict {
        self.roll(self.tx_drop_ppm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn lossy_rate_is_close_and_reproducible() {
        let ep = Endpoint::udp(Ipv4Addr::LOCALHOST, 1);
        let count = |seed| {
            let mut f = Lossy::new(seed, 100_000, 0);
            let drops = (0..100_000).filter(|_| f.on_rx(&ep, b"") == Verdict::Drop).count();
            assert!((0..1000).all(|_| f.on_tx(&ep, b"") == Verdict::Pass));
            drops
        };
        let d = count(7);
        assert!((9_000..11_000).contains(&d), "{d} drops of 100000 at 10%");
        assert_eq!(d, count(7));
        assert!(!NoFaults.is_active());
    }
}
