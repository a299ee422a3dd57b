//! What a poll loop does when a poll found no work.
//!
//! On a dedicated core the loop spins. With more pollers than cores (tests, local clusters,
//! CI on two vCPUs) spinning is ruinous: a busy poller holds its vCPU for the scheduler's
//! whole slice (~4 ms) while the process that would answer it waits, so one round trip
//! costs milliseconds. `sched_yield` when idle hands the core over at once (a few µs);
//! sleeping even 1 µs costs ~50–130 µs of timer slack. Choose on the command line:
//! `spin`, `yield`, `adaptive`, `sleep` (= `sleep:50us`) or `sleep:<n>{ns,us,ms}`.
//!
//! `adaptive` is `yield`, except that a poller awaiting an answer that is about to arrive
//! (a leader with slots in flight: the Accepted it needs is one hop away) spins up to
//! [`AWAIT_SPIN_POLLS`] empty polls first. A `sched_yield` costs ~1.3 us on this VM even when
//! nothing else is runnable, and the process it hands the core to keeps it for a whole
//! poll; spinning only while an answer is due keeps that cost off the critical path without
//! letting an idle poller hold a shared core. Loops track the spin budget with an [`Idler`].

use core::fmt;
use core::str::FromStr;
use std::time::Duration;

/// Default pause of `IdlePolicy::Sleep` when none is given.
pub const DEFAULT_SLEEP: Duration = Duration::from_micros(50);
/// Most consecutive empty polls an `adaptive` poller spins while awaiting an answer before it
/// yields like `yield` (a poll is ~0.2-0.5 us: a budget of roughly 5-15 us).
pub const AWAIT_SPIN_POLLS: u32 = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Busy-poll: a CPU spin-loop hint, nothing else. For dedicated cores.
    #[default]
    Spin,
    /// `std::thread::yield_now()` (sched_yield): for sharing cores with other pollers.
    Yield,
    /// `Yield`, but spin up to [`AWAIT_SPIN_POLLS`] empty polls while an answer is due
    /// (needs an [`Idler`]; plain [`IdlePolicy::idle`] yields).
    Adaptive,
    /// Sleep this long: lowest CPU use, highest latency.
    Sleep(Duration),
}

impl IdlePolicy {
    /// Called by the loop after a poll that did no work.
    #[inline]
    pub fn idle(&self) {
        match self {
            IdlePolicy::Spin => std::hint::spin_loop(),
            IdlePolicy::Yield | IdlePolicy::Adaptive => std::thread::yield_now(),
            IdlePolicy::Sleep(d) => std::thread::sleep(*d),
        }
    }
}

/// A poll loop's idle state: the policy plus the `adaptive` spin budget.
#[derive(Clone, Copy, Debug)]
pub struct Idler {
    policy: IdlePolicy,
    /// Empty polls spun since the last poll that did work.
    spun: u32,
}

impl Idler {
    pub fn new(policy: IdlePolicy) -> Idler {
        Idler { policy, spun: 0 }
    }

    pub fn policy(&self) -> IdlePolicy {
        self.policy
    }

    /// Switches policy (e.g. when the loop's role changes); the spin budget starts afresh.
    pub fn set_policy(&mut self, policy: IdlePolicy) {
        self.policy = policy;
        self.spun = 0;
    }

    /// Call after every poll with the work it did and whether an answer is due (e.g. the
    /// leader has slots in flight). Idles (per the policy) only when `work` is 0. Returns
    /// true if it spun instead of applying the policy.
    #[inline]
    pub fn after_poll(&mut self, work: usize, awaiting: bool) -> bool {
        if work > 0 {
            self.spun = 0;
            return false;
        }
        if awaiting && self.policy == IdlePolicy::Adaptive && self.spun < AWAIT_SPIN_POLLS {
            self.spun += 1;
            std::hint::spin_loop();
            return true;
        }
        self.policy.idle();
        false
    }
}

/// The string was not `spin`, `yield`, `sleep` or `sleep:<n><unit>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIdlePolicyError(pub String);

impl fmt::Display for ParseIdlePolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "idle policy {:?}: expected spin, yield, adaptive, sleep or sleep:<n>ns|us|ms (e.g. sleep:50us)",
            self.0
        )
    }
}

impl std::error::Error for ParseIdlePolicyError {}

impl FromStr for IdlePolicy {
    type Err = ParseIdlePolicyError;
    fn from_str(s: &str) -> Result<IdlePolicy, ParseIdlePolicyError> {
        let err = || ParseIdlePolicyError(s.to_string());
        match s {
            "spin" => return Ok(IdlePolicy::Spin),
            "yield" => return Ok(IdlePolicy::Yield),
            "adaptive" => return Ok(IdlePolicy::Adaptive),
            "sleep" => return Ok(IdlePolicy::Sleep(DEFAULT_SLEEP)),
            _ => {}
        }
        let arg = s.strip_prefix("sleep:").ok_or_else(err)?;
        let split = arg.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = arg.split_at(split);
        let n: u64 = digits.parse().map_err(|_| err())?;
        let d = match unit {
            "ns" => Duration::from_nanos(n),
            "us" | "µs" => Duration::from_micros(n),
            "ms" => Duration::from_millis(n),
            _ => return Err(err()),
        };
        Ok(IdlePolicy::Sleep(d))
    }
}

impl fmt::Display for IdlePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdlePolicy::Spin => f.write_str("spin"),
            IdlePolicy::Yield => f.write_str("yield"),
            IdlePolicy::Adaptive => f.write_str("adaptive"),
            IdlePolicy::Sleep(d) => write!(f, "sleep:{}ns", d.as_nanos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("spin".parse(), Ok(IdlePolicy::Spin));
        assert_eq!("yield".parse(), Ok(IdlePolicy::Yield));
        assert_eq!("adaptive".parse(), Ok(IdlePolicy::Adaptive));
        assert_eq!("sleep".parse(), Ok(IdlePolicy::Sleep(DEFAULT_SLEEP)));
        assert_eq!("sleep:50us".parse(), Ok(IdlePolicy::Sleep(Duration::from_micros(50))));
        assert_eq!("sleep:7ns".parse(), Ok(IdlePolicy::Sleep(Duration::from_nanos(7))));
        assert_eq!("sleep:2ms".parse(), Ok(IdlePolicy::Sleep(Duration::from_millis(2))));
        for bad in ["", "Spin", "sleep:", "sleep:us", "sleep:5", "sleep:5s", "sleep:-1us", "nap"] {
            assert!(bad.parse::<IdlePolicy>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn display_round_trips() {
        for p in [
            IdlePolicy::Spin,
            IdlePolicy::Yield,
            IdlePolicy::Adaptive,
            IdlePolicy::Sleep(Duration::from_micros(3)),
        ] {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
    }

    #[test]
    fn adaptive_spins_only_while_awaiting_and_within_budget() {
        let mut i = Idler::new(IdlePolicy::Adaptive);
        assert!(!i.after_poll(0, false), "nothing due: yields");
        for _ in 0..AWAIT_SPIN_POLLS {
            assert!(i.after_poll(0, true));
        }
        assert!(!i.after_poll(0, true), "budget spent: yields");
        assert!(!i.after_poll(3, true), "work resets the budget, no idling");
        assert!(i.after_poll(0, true));
        let mut y = Idler::new(IdlePolicy::Yield);
        assert!(!y.after_poll(0, true), "plain yield never spins");
    }
}
