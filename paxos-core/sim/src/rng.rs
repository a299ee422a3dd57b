//! The simulator's only source of randomness: SplitMix64, seeded once per run. Every
//! decision (fault mix, delays, losses, crash times, client behaviour, node seeds) is drawn
//! from it in a fixed order, so a seed replays exactly.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit word of state, full period, good enough
/// mixing for simulation, and trivially reproducible.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

/// Probabilities are integers in parts per million, so no floating point enters a decision.
pub const PPM: u32 = 1_000_000;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n) (0 when n is 0), by multiply-shift (no modulo bias worth noting).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi] (inclusive). `hi < lo` yields `lo`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `ppm` parts per million.
    pub fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(u64::from(PPM)) < u64::from(ppm)
    }

    /// A uniformly chosen element (panics on an empty slice: callers never pass one).
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let r = a.range(3, 7);
            assert!((3..=7).contains(&r));
            assert!(a.below(5) < 5);
            b.range(3, 7);
            b.below(5);
        }
        assert_eq!(Rng::new(1).below(0), 0);
        assert!(!Rng::new(1).chance(0));
        assert!(Rng::new(1).chance(PPM));
    }
}
