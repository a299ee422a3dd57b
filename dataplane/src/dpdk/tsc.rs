//! A TSC clock: `rdtsc` scaled to nanoseconds with the frequency the EAL measured.

use dpdk_sys as sys;

/// Reads the time stamp counter and converts cycles to nanoseconds since creation.
#[derive(Clone, Copy, Debug)]
pub struct Tsc {
    hz: u64,
    start: u64,
    /// ns per cycle as a 32.32 fixed-point number.
    ns_per_cycle_q32: u128,
}

impl Tsc {
    /// Uses the EAL's TSC frequency (the EAL must be initialised).
    pub fn new(_eal: &super::Eal) -> Tsc {
        // SAFETY: the EAL is initialised (we borrow it); reads a measured constant.
        Tsc::from_hz(unsafe { sys::rust_get_tsc_hz() })
    }

    /// A clock for a known frequency (no EAL needed).
    pub fn from_hz(hz: u64) -> Tsc {
        let hz = hz.max(1);
        Tsc {
            hz,
            start: Tsc::cycles(),
            ns_per_cycle_q32: (1_000_000_000u128 << 32) / u128::from(hz),
        }
    }

    /// The TSC frequency in Hz.
    pub fn hz(&self) -> u64 {
        self.hz
    }

    /// The raw counter.
    #[inline]
    pub fn cycles() -> u64 {
        // SAFETY: rdtsc has no preconditions and no side effects.
        unsafe { sys::rust_rdtsc() }
    }

    /// Nanoseconds since this clock was created.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.cycles_to_ns(Tsc::cycles().wrapping_sub(self.start))
    }

    /// A cycle count in nanoseconds.
    #[inline]
    pub fn cycles_to_ns(&self, cycles: u64) -> u64 {
        ((u128::from(cycles) * self.ns_per_cycle_q32) >> 32) as u64
    }

    /// Nanoseconds in cycles.
    #[inline]
    pub fn ns_to_cycles(&self, ns: u64) -> u64 {
        (u128::from(ns) * u128::from(self.hz) / 1_000_000_000) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let t = Tsc::from_hz(2_600_000_000);
        assert_eq!(t.cycles_to_ns(2_600_000_000), 999_999_999); // fixed-point rounding
        assert_eq!(t.ns_to_cycles(1_000), 2_600);
        // No overflow after a day.
        let day = 86_400 * 2_600_000_000u64;
        assert!((t.cycles_to_ns(day) as i128 - 86_400_000_000_000i128).abs() < 1_000_000);
        let a = t.now_ns();
        assert!(t.now_ns() >= a);
    }
}
