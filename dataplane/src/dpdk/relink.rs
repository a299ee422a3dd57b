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
//! `connect()` again). If the server is not there yet the start fails (the connect error,
//! which the PMD logs as `memif_connect_client(): Failed to connect socket`), the port stays
//! stopped and is neither polled nor transmitted on (a stopped port's burst functions are
//! DPDK's "not ready" stubs), and the start is tried again:
//!
//! - with the server's socket file known ([`EthPort::socket`]; file sockets, not abstract
//!   ones): as soon as a *new* file is there (a restarted server binds a new one; a killed
//!   server leaves its old one behind, which refuses connections), found within
//!   [`CHECK_EVERY`]; while there is no file, not at all; on the file a start already
//!   failed on, after a back-off from [`RETRY_MIN`] doubling to [`RETRY_MAX_SAME_FILE`];
//! - without it: after a back-off from [`RETRY_MIN`] doubling to [`RETRY_MAX`].
//!
//! A start that succeeds but whose link stays down for [`UP_WAIT`] is retried, waiting
//! twice as long each time up to [`UP_WAIT_MAX`] (a slow handshake on a loaded machine gets
//! its time). The server refuses a handshake with "ID not found" while its own port is not
//! started yet (its socket exists from the EAL's device probe on, its port starts a little
//! later), and with "Already connected" while it has not yet noticed that the old client
//! died; the PMD does not tell us, the link just stays down.
//!
//! The grace period also keeps us clear of the PMD's own `memif_disconnect`, which the
//! interrupt thread runs right after it marks the link down: by the time we stop the port,
//! that has long finished. The check costs a countdown per poll; every [`CHECK_POLLS`]
//! polls it reads the clock, and at most every [`CHECK_EVERY`] the link status.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::DpdkError;
use super::port::PortId;

/// How long the link must be down before the port is restarted.
pub const DOWN_GRACE: Duration = Duration::from_millis(100);
/// How long a restarted port may take to come up before it is restarted again (doubling
/// for each further try, up to [`UP_WAIT_MAX`]).
pub const UP_WAIT: Duration = Duration::from_millis(200);
/// See [`UP_WAIT`].
pub const UP_WAIT_MAX: Duration = Duration::from_secs(2);
/// First delay before retrying a start that failed (server not listening).
pub const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest delay between retries (server socket file unknown).
pub const RETRY_MAX: Duration = Duration::from_millis(500);
/// Longest delay between retries on a socket file a start already failed on.
pub const RETRY_MAX_SAME_FILE: Duration = Duration::from_secs(2);
/// Polls between two looks at the clock.
pub const CHECK_POLLS: u32 = 64;
/// Time between two looks at the link.
pub const CHECK_EVERY: Duration = Duration::from_millis(10);

/// What the server's socket file looks like now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// No socket file to look at (abstract socket, or not told).
    Unknown,
    /// The file is not there: no server listens.
    Absent,
    /// The file, identified (device, inode, change time): a new server makes a new one.
    Present(u64, u64, i64, i64),
}

/// What [`Relink`] needs from a port (a trait so the state machine is testable without
/// DPDK).
pub trait PortControl {
    fn link_up(&self) -> bool;
    /// The server's socket file.
    fn peer(&self) -> Peer;
    /// `rte_eth_dev_stop`.
    fn stop(&self) -> Result<(), DpdkError>;
    /// `rte_eth_dev_start`.
    fn start(&self) -> Result<(), DpdkError>;
}

/// The real port (see the module docs for when these calls are sound).
pub struct EthPort {
    pub port: PortId,
    /// The memif server's socket file, if it is a file.
    pub socket: Option<PathBuf>,
}

impl PortControl for EthPort {
    fn link_up(&self) -> bool {
        super::port::link_up(self.port).unwrap_or(false)
    }
    fn peer(&self) -> Peer {
        use std::os::unix::fs::MetadataExt;
        let Some(p) = &self.socket else { return Peer::Unknown };
        match std::fs::metadata(p) {
            Ok(m) => Peer::Present(m.dev(), m.ino(), m.ctime(), m.ctime_nsec()),
            Err(_) => Peer::Absent,
        }
    }
    fn stop(&self) -> Result<(), DpdkError> {
        // SAFETY: called by the only thread that polls this port, between its polls (no
        // burst call is running on it); the port is configured. net_memif's stop is its
        // disconnect, which the interrupt thread finished long ago (DOWN_GRACE).
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.port.0) };
        super::error::check("rte_eth_dev_stop", ret).map(drop)
    }
    fn start(&self) -> Result<(), DpdkError> {
        // SAFETY: as for stop: the polling thread, between polls, on a configured port whose
        // queues are set up. The queues are released only when the port closes, after every
        // poller has stopped.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.port.0) };
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
    up_wait: Cell<Duration>,
    reconnects: Cell<u64>,
    /// The socket file the last failed start found.
    failed_on: Cell<Peer>,
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
            up_wait: Cell::new(UP_WAIT),
            reconnects: Cell::new(0),
            failed_on: Cell::new(Peer::Unknown),
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
                } else if now.duration_since(at) >= self.up_wait.get() {
                    self.up_wait.set((self.up_wait.get() * 2).min(UP_WAIT_MAX));
                    self.restart(now, true);
                }
            }
            State::Stopped(retry_at) => {
                let due = match self.port.peer() {
                    Peer::Unknown => now >= retry_at,
                    Peer::Absent => false,
                    p => p != self.failed_on.get() || now >= retry_at,
                };
                if due {
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
        self.up_wait.set(UP_WAIT);
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
        let peer = self.port.peer();
        if self.failed_on.get() != peer {
            self.backoff.set(RETRY_MIN); // another server (or none): start over
        }
        match self.port.start() {
            Ok(()) => self.state.set(State::Restarted(now)),
            Err(e) => {
                self.failed_on.set(peer);
                let wait = self.backoff.get();
                if self.attempts.get().is_power_of_two() {
                    log::info!(
                        "{}: start failed ({e}; is the peer up?): retrying every {:?} or so",
                        self.name,
                        wait
                    );
                }
                self.state.set(State::Stopped(now + wait));
                let max = if peer == Peer::Unknown { RETRY_MAX } else { RETRY_MAX_SAME_FILE };
                self.backoff.set((wait * 2).min(max));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A port whose link and start results the test sets; records the calls.
    struct Fake {
        up: Cell<bool>,
        listening: Cell<bool>,
        started: Cell<bool>,
        peer: Cell<Peer>,
        calls: RefCell<Vec<&'static str>>,
    }

    impl Default for Fake {
        fn default() -> Fake {
            Fake {
                up: Cell::new(false),
                listening: Cell::new(false),
                started: Cell::new(false),
                peer: Cell::new(Peer::Unknown),
                calls: RefCell::new(Vec::new()),
            }
        }
    }

    impl PortControl for &Fake {
        fn link_up(&self) -> bool {
            self.up.get()
        }
        fn peer(&self) -> Peer {
            self.peer.get()
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
        // Started, but the link never comes up (the server refused the handshake):
        // restarted after UP_WAIT, then after twice that.
        assert!(r.check(at(150)));
        assert_eq!(f.calls.borrow().len(), 1);
        assert!(r.check(at(210)));
        assert_eq!(*f.calls.borrow(), ["start", "stop", "start"]);
        assert!(r.check(at(600)));
        assert_eq!(f.calls.borrow().len(), 3);
        assert!(r.check(at(620)));
        assert_eq!(f.calls.borrow().len(), 5);
        f.up.set(true);
        assert!(r.check(at(700)));
        assert_eq!(r.reconnects(), 1);
    }

    #[test]
    fn with_a_socket_file_it_waits_for_a_new_one() {
        let f = Fake::default();
        f.up.set(true);
        // The killed server left its file behind.
        f.peer.set(Peer::Present(1, 100, 5, 0));
        let r = Relink::new(&f, "port 3".into(), true);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(r.check(at(0)));
        f.up.set(false);
        assert!(r.check(at(20)));
        assert!(!r.check(at(130)), "stale file: connection refused");
        assert_eq!(*f.calls.borrow(), ["stop", "start"]);
        // The launcher removes the stale file: nothing to try.
        f.peer.set(Peer::Absent);
        for ms in (140..3000).step_by(10) {
            assert!(!r.check(at(ms)));
        }
        assert_eq!(f.calls.borrow().len(), 2, "no start while there is no socket file");
        // The new server binds a new file: started at the next check, no back-off.
        f.peer.set(Peer::Present(1, 101, 9, 0));
        f.listening.set(true);
        assert!(r.check(at(3005)));
        assert_eq!(f.calls.borrow().len(), 3);
        f.up.set(true);
        assert!(r.check(at(3020)));
        assert_eq!(r.reconnects(), 1);
    }

    #[test]
    fn on_the_same_stale_file_it_backs_off_to_seconds() {
        let f = Fake::default();
        f.peer.set(Peer::Present(1, 100, 5, 0));
        let r = Relink::new(&f, "port 4".into(), false);
        let t0 = Instant::now();
        let starts = (0..1000u64)
            .filter(|ms| {
                let before = f.calls.borrow().len();
                r.check(t0 + Duration::from_millis(ms * 10));
                f.calls.borrow().len() > before
            })
            .count();
        // 10 s: at 0, then after 50, 100, 200, ... 1600 ms, then every 2 s.
        assert!((8..=12).contains(&starts), "{starts} starts in 10 s");
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
