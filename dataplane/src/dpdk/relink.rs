//! Bringing back a port whose peer process died and came back.
//!
//! DPDK 22.11's `net_memif` connects a **client**-role port to its server only inside
//! `rte_eth_dev_start` (`memif_connect_client`: one `connect()` on the socket file). When
//! the server process dies, the PMD's interrupt thread sees the control socket close and
//! tears the connection down (`memif_disconnect`: link down, shared regions unmapped), and
//! nothing in the PMD ever connects again, not even when a new server listens on the same
//! socket path (no timer, no retry; the same in later releases). A **server**-role port
//! needs nothing: its listening socket stays open and accepts the next client that
//! connects, such as a restarted peer.
//!
//! So the single thread that polls such a port ([`SharedQueue`](super::SharedQueue)) runs a
//! [`Relink`] between polls: once the port's link has been down for [`DOWN_GRACE`], it
//! stops and starts the port (`rte_eth_dev_stop` + `rte_eth_dev_start`, which calls
//! `connect()` again). If the server is not there yet the start fails (the connect error),
//! the port stays stopped and is neither polled nor transmitted on (a stopped port's burst
//! functions are DPDK's "not ready" stubs), and the start is retried with a back-off from
//! [`RETRY_MIN`] to [`RETRY_MAX`]. A start that succeeds but whose link stays down for
//! [`UP_WAIT`] (a handshake the server refused, e.g. "Already connected" while it had not
//! yet noticed that the old client died) is retried the same way.
//!
//! The grace period also keeps us clear of the PMD's own `memif_disconnect`, which the
//! interrupt thread runs right after it marks the link down: by the time we stop the port,
//! that has long finished. The check costs a countdown per poll; every [`CHECK_POLLS`]
//! polls it reads the clock, and at most every [`CHECK_EVERY`] the link status.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::error::DpdkError;
use super::port::PortId;

/// How long the link must be down before the port is restarted.
pub const DOWN_GRACE: Duration = Duration::from_millis(100);
/// How long a restarted port may take to come up before it is restarted again.
pub const UP_WAIT: Duration = Duration::from_secs(1);
/// First delay before retrying a start that failed (server not listening).
pub const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest delay between retries.
pub const RETRY_MAX: Duration = Duration::from_millis(500);
/// Polls between two looks at the clock.
pub const CHECK_POLLS: u32 = 64;
/// Time between two looks at the link.
pub const CHECK_EVERY: Duration = Duration::from_millis(10);

/// What [`Relink`] needs from a port (a trait so the state machine is testable without
/// DPDK).
pub trait PortControl {
    fn link_up(&self) -> bool;
    /// `rte_eth_dev_stop`.
    fn stop(&self) -> Result<(), DpdkError>;
    /// `rte_eth_dev_start`.
    fn start(&self) -> Result<(), DpdkError>;
}

/// The real port (see the module docs for when these calls are sound).
pub struct EthPort(pub PortId);

impl PortControl for EthPort {
    fn link_up(&self) -> bool {
        super::port::link_up(self.0).unwrap_or(false)
    }
    fn stop(&self) -> Result<(), DpdkError> {
        // SAFETY: called by the only thread that polls this port, between its polls (no
        // burst call is running on it); the port is configured. net_memif's stop is its
        // disconnect, which the interrupt thread finished long ago (DOWN_GRACE).
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.0 .0) };
        super::error::check("rte_eth_dev_stop", ret).map(drop)
    }
    fn start(&self) -> Result<(), DpdkError> {
        // SAFETY: as for stop: the polling thread, between polls, on a configured port whose
        // queues are set up. The queues are released only when the port closes, after every
        // poller has stopped.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.0 .0) };
        super::error::check("rte_eth_dev_start", ret).map(drop)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Link up (or never seen down).
    Up,
    /// Down since then.
    Down(Instant),
    /// Restarted at that time, waiting for the link.
    Restarted(Instant),
    /// The last start failed: the port is stopped; try again at that time.
    Stopped(Instant),
}

/// Restarts a port whose link went down (see the module docs). One per port, owned by the
/// thread that polls it.
pub struct Relink<P: PortControl = EthPort> {
    port: P,
    name: String,
    state: Cell<State>,
    countdown: Cell<u32>,
    next_check: Cell<Instant>,
    /// Since when the link has been down (for the log line when it is back).
    down_since: Cell<Option<Instant>>,
    attempts: Cell<u32>,
    backoff: Cell<Duration>,
    reconnects: Cell<u64>,
}

impl<P: PortControl> Relink<P> {
    /// Watches `port` (called `name` in log lines); `started`: whether it is started now
    /// (a port whose first start failed is retried).
    pub fn new(port: P, name: String, started: bool) -> Relink<P> {
        let now = Instant::now();
        Relink {
            port,
            name,
            state: Cell::new(if started { State::Up } else { State::Stopped(now) }),
            countdown: Cell::new(CHECK_POLLS),
            next_check: Cell::new(now),
            down_since: Cell::new((!started).then_some(now)),
            attempts: Cell::new(0),
            backoff: Cell::new(RETRY_MIN),
            reconnects: Cell::new(0),
        }
    }

    /// Is the port started (may its queues be polled)?
    #[inline]
    pub fn started(&self) -> bool {
        !matches!(self.state.get(), State::Stopped(_))
    }

    /// Times the link came back after a restart of ours.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }

    /// Call before each poll of the port; returns whether it may be polled.
    #[inline]
    pub fn tick(&self) -> bool {
        let c = self.countdown.get();
        if c > 1 {
            self.countdown.set(c - 1);
            return self.started();
        }
        self.countdown.set(CHECK_POLLS);
        self.check(Instant::now())
    }

    /// The slow path of [`tick`](Self::tick), at time `now`.
    pub fn check(&self, now: Instant) -> bool {
        if now < self.next_check.get() {
            return self.started();
        }
        self.next_check.set(now + CHECK_EVERY);
        match self.state.get() {
            State::Up => {
                if !self.port.link_up() {
                    self.state.set(State::Down(now));
                    self.down_since.set(Some(now));
                }
            }
            State::Down(since) => {
                if self.port.link_up() {
                    self.state.set(State::Up);
                    self.down_since.set(None);
                } else if now.duration_since(since) >= DOWN_GRACE {
                    log::warn!(
                        "{}: link down for {:?}: restarting the port to reconnect (a memif \
                         client connects only when its port starts)",
                        self.name,
                        now.duration_since(since)
                    );
                    self.backoff.set(RETRY_MIN);
                    self.restart(now, true);
                }
            }
            State::Restarted(at) => {
                if self.port.link_up() {
                    self.back_up(now);
                } else if now.duration_since(at) >= UP_WAIT {
                    self.restart(now, true);
                }
            }
            State::Stopped(retry_at) => {
                if now >= retry_at {
                    self.restart(now, false);
                }
            }
        }
        self.started()
    }

    fn back_up(&self, now: Instant) {
        let down = self.down_since.take().map_or(Duration::ZERO, |t| now.duration_since(t));
        log::info!(
            "{}: link up again after {:.2} s ({} start(s))",
            self.name,
            down.as_secs_f64(),
            self.attempts.get()
        );
        self.state.set(State::Up);
        self.attempts.set(0);
        self.reconnects.set(self.reconnects.get() + 1);
    }

    /// Stop (if started) and start again.
    fn restart(&self, now: Instant, started: bool) {
        if started {
            if let Err(e) = self.port.stop() {
                log::warn!("{}: stop: {e}", self.name);
            }
        }
        self.attempts.set(self.attempts.get() + 1);
        match self.port.start() {
            Ok(()) => self.state.set(State::Restarted(now)),
            Err(e) => {
                let wait = self.backoff.get();
                if self.attempts.get().is_power_of_two() {
                    log::info!(
                        "{}: start failed ({e}; is the peer up?): retrying every {:?} or so",
                        self.name,
                        wait
                    );
                }
                self.state.set(State::Stopped(now + wait));
                self.backoff.set((wait * 2).min(RETRY_MAX));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A port whose link and start results the test sets; records the calls.
    #[derive(Default)]
    struct Fake {
        up: Cell<bool>,
        listening: Cell<bool>,
        started: Cell<bool>,
        calls: RefCell<Vec<&'static str>>,
    }

    impl PortControl for &Fake {
        fn link_up(&self) -> bool {
            self.up.get()
        }
        fn stop(&self) -> Result<(), DpdkError> {
            self.calls.borrow_mut().push("stop");
            self.started.set(false);
            Ok(())
        }
        fn start(&self) -> Result<(), DpdkError> {
            self.calls.borrow_mut().push("start");
            if self.listening.get() {
                self.started.set(true);
                Ok(())
            } else {
                Err(DpdkError::new("rte_eth_dev_start", libc::ECONNREFUSED))
            }
        }
    }

    #[test]
    fn restarts_after_the_grace_and_retries_until_the_server_is_back() {
        let f = Fake::default();
        f.up.set(true);
        let r = Relink::new(&f, "port 0".into(), true);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(r.check(at(0)));
        // The server dies: down, but nothing happens within the grace period.
        f.up.set(false);
        assert!(r.check(at(20)));
        assert!(r.check(at(100)));
        assert!(f.calls.borrow().is_empty());
        // After it: stop + start; the server is not listening, so the port stays stopped.
        assert!(!r.check(at(130)));
        assert_eq!(*f.calls.borrow(), ["stop", "start"]);
        // Retried after the back-off, not before.
        assert!(!r.check(at(150)));
        assert_eq!(f.calls.borrow().len(), 2);
        assert!(!r.check(at(181)));
        assert_eq!(*f.calls.borrow(), ["stop", "start", "start"]);
        // The server is back: the next retry (back-off doubled to 100 ms) starts the port.
        f.listening.set(true);
        assert!(!r.check(at(250)));
        assert!(r.check(at(290)));
        assert_eq!(f.calls.borrow().len(), 4);
        assert_eq!(r.reconnects(), 0);
        // The handshake completes: up again, counted.
        f.up.set(true);
        assert!(r.check(at(300)));
        assert_eq!(r.reconnects(), 1);
        assert!(r.check(at(2000)));
        assert_eq!(f.calls.borrow().len(), 4);
    }

    #[test]
    fn a_start_without_link_is_retried_and_a_first_failed_start_too() {
        let f = Fake::default();
        f.listening.set(true);
        // The first start (at init) failed: retried at once.
        let r = Relink::new(&f, "port 1".into(), false);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!r.started());
        assert!(r.check(at(0)));
        assert_eq!(*f.calls.borrow(), ["start"]);
        // Started, but the link never comes up: restarted after UP_WAIT.
        assert!(r.check(at(500)));
        assert_eq!(f.calls.borrow().len(), 1);
        assert!(r.check(at(1010)));
        assert_eq!(*f.calls.borrow(), ["start", "stop", "start"]);
        f.up.set(true);
        assert!(r.check(at(1100)));
        assert_eq!(r.reconnects(), 1);
    }

    #[test]
    fn tick_looks_at_the_clock_every_few_polls_only() {
        let f = Fake::default();
        f.up.set(true);
        let r = Relink::new(&f, "port 2".into(), true);
        for _ in 0..10 * CHECK_POLLS {
            assert!(r.tick());
        }
        assert!(f.calls.borrow().is_empty());
    }
}
