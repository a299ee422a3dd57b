//! The fault schedule of `paxos-cluster` (`--fault AT:ACTION:TARGET`, repeatable): parsing,
//! the parse-time sanity check of the whole schedule, and reading the leader out of the
//! node logs. Injection itself (signals, restarts) is in [`crate::cluster`].
//!
//! - `AT`: seconds into the measured run (after `--warmup`), decimals allowed.
//! - `ACTION`: `kill` (SIGKILL), `restart` (same id, arguments and data directory), `stop` /
//!   `cont` (SIGSTOP / SIGCONT), `wipe` (move the dead replica's data directory aside and
//!   start it again with `--rejoin`).
//! - `TARGET`: `leader` (of group 0), `follower` (the lowest-id running replica that does not
//!   lead group 0), a member id, or `all`. `restart`/`cont`/`wipe` of `leader`/`follower` act
//!   on the replica that the most recent `kill`/`stop` of that target hit.
//!
//! The schedule is checked before anything starts, in time order, with what can be known
//! then: which replicas may be running, stopped or dead after each fault (a `kill leader`
//! may hit any running replica). A fault that can never make sense (restarting a replica
//! that is certainly running, `cont` without a `stop`) is a usage error; one that depends on
//! which replica led is checked again when it is due.

use crate::cli::{self, AppError};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Kill,
    Restart,
    Stop,
    Cont,
    Wipe,
}

impl Action {
    pub const NAMES: &'static str = "kill, restart, stop, cont, wipe";

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "kill" => Action::Kill,
            "restart" => Action::Restart,
            "stop" => Action::Stop,
            "cont" => Action::Cont,
            "wipe" => Action::Wipe,
            _ => return None,
        })
    }

    /// The action that must have hit a `leader`/`follower` target before this one.
    pub fn needs(self) -> Option<Action> {
        match self {
            Action::Restart | Action::Wipe => Some(Action::Kill),
            Action::Cont => Some(Action::Stop),
            Action::Kill | Action::Stop => None,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Kill => "kill",
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Cont => "cont",
            Action::Wipe => "wipe",
        })
    }
}

/// Whom a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The current leader of group 0 (for restart/cont/wipe: whom the last kill/stop of
    /// `leader` hit).
    Leader,
    /// The lowest-id running replica that does not lead group 0 (for restart/cont/wipe: whom
    /// the last kill/stop of `follower` hit).
    Follower,
    Member(u16),
    All,
}

impl Target {
    /// Index into per-symbol tables (`leader` 0, `follower` 1).
    pub fn symbol(self) -> Option<usize> {
        match self {
            Target::Leader => Some(0),
            Target::Follower => Some(1),
            _ => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Leader => f.write_str("leader"),
            Target::Follower => f.write_str("follower"),
            Target::Member(i) => write!(f, "{i}"),
            Target::All => f.write_str("all"),
        }
    }
}

/// One `--fault`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Seconds after the start of the measured run.
    pub at: f64,
    pub action: Action,
    pub target: Target,
    /// As given on the command line (for messages).
    pub spec: String,
}

impl Fault {
    /// Parses `AT:ACTION:TARGET` for a cluster of `replicas`; the error is what follows
    /// `--fault SPEC: `.
    pub fn parse(spec: &str, replicas: u16) -> Result<Fault, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let [at, action, target] = parts[..] else {
            return Err(format!(
                "expected AT:ACTION:TARGET (e.g. 3:kill:leader), got {} part(s)",
                parts.len()
            ));
        };
        let at_s = at.trim();
        let at: f64 = at_s.parse().map_err(|_| {
            format!("bad time {at_s:?} (seconds into the measured run, e.g. 3 or 1.5)")
        })?;
        if !(at >= 0.0 && at.is_finite()) {
            return Err(format!("bad time {at_s:?}: must be >= 0 seconds"));
        }
        let action = Action::parse(action.trim())
            .ok_or_else(|| format!("unknown action {:?} ({})", action.trim(), Action::NAMES))?;
        let t = target.trim();
        let last = replicas.saturating_sub(1);
        let target = match t {
            "leader" => Target::Leader,
            "follower" => Target::Follower,
            "all" => Target::All,
            _ => match t.parse::<u16>() {
                Ok(i) if i < replicas => Target::Member(i),
                Ok(i) => {
                    return Err(format!(
                        "no member {i} (the cluster has {replicas} replica(s): 0..={last})"
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "unknown target {t:?} (leader, follower, all, or a member id 0..={last})"
                    ))
                }
            },
        };
        if target == Target::All && action == Action::Wipe {
            return Err("wipe all: every replica would lose its acceptor state at once, and no \
                        quorum would be left to vouch for the log"
                .into());
        }
        if target == Target::Follower && replicas < 2 {
            return Err("a 1-replica cluster has no follower".into());
        }
        Ok(Fault { at, action, target, spec: spec.to_string() })
    }
}

/// What a replica may be at some point of the schedule (bits: it may be any of these).
const RUNNING: u8 = 1;
const DEAD: u8 = 2;
const STOPPED: u8 = 4;

fn may_be(set: u8) -> String {
    let mut v = Vec::new();
    for (bit, name) in [(RUNNING, "running"), (STOPPED, "stopped"), (DEAD, "dead")] {
        if set & bit != 0 {
            v.push(name);
        }
    }
    v.join(" or ")
}

/// Parses every `--fault`, sorts them by time (ties keep the command-line order) and checks
/// the schedule; errors name the flag and the bad fault.
pub fn plan(specs: &[String], replicas: u16, duration: f64) -> Result<Vec<Fault>, AppError> {
    let mut faults = Vec::new();
    for s in specs {
        let f = Fault::parse(s, replicas).map_err(|e| cli::usage(format!("--fault {s}: {e}")))?;
        if f.at >= duration {
            return Err(cli::usage(format!(
                "--fault {s}: at {} s is not within the measured run (--duration {duration})",
                f.at
            )));
        }
        faults.push(f);
    }
    faults.sort_by(|a, b| a.at.total_cmp(&b.at));
    check(&faults, replicas)?;
    Ok(faults)
}

/// Walks the schedule with the set of states each replica may be in (see the module docs).
fn check(faults: &[Fault], replicas: u16) -> Result<(), AppError> {
    let n = usize::from(replicas);
    let mut state = vec![RUNNING; n];
    // Per symbol (leader, follower): the last kill/stop of it and whom it may have hit.
    let mut last: [Option<(Action, Vec<usize>)>; 2] = [None, None];
    for f in faults {
        let bad = |why: String| cli::usage(format!("--fault {}: {why}", f.spec));
        let (from, to) = match f.action {
            Action::Kill => (RUNNING | STOPPED, DEAD),
            Action::Stop => (RUNNING, STOPPED),
            Action::Cont => (STOPPED, RUNNING),
            Action::Restart | Action::Wipe => (DEAD, RUNNING),
        };
        match f.target {
            Target::Member(i) => {
                let i = usize::from(i);
                if state[i] & from == 0 {
                    return Err(bad(format!(
                        "replica {i} is {} at +{:.2}s, and {} needs a {} replica",
                        may_be(state[i]),
                        f.at,
                        f.action,
                        may_be(from)
                    )));
                }
                state[i] = to;
            }
            Target::All => {
                if !state.iter().any(|s| s & from != 0) {
                    return Err(bad(format!(
                        "no replica can be {} at +{:.2}s",
                        may_be(from),
                        f.at
                    )));
                }
                for s in state.iter_mut() {
                    if *s & from != 0 {
                        *s = (*s & !from) | to;
                    }
                }
            }
            Target::Leader | Target::Follower => {
                let sym = f.target.symbol().expect("symbolic target");
                match f.action.needs() {
                    None => {
                        // kill/stop hit a running replica, which one is known only then.
                        let hit: Vec<usize> = (0..n).filter(|&i| state[i] & RUNNING != 0).collect();
                        if hit.is_empty() {
                            return Err(bad(format!("no replica can be running at +{:.2}s", f.at)));
                        }
                        for &i in &hit {
                            state[i] = if hit.len() == 1 { to } else { state[i] | to };
                        }
                        last[sym] = Some((f.action, hit));
                    }
                    Some(need) => {
                        let Some((prev, hit)) = last[sym].take() else {
                            return Err(bad(format!(
                                "no earlier {need} of {0} ({1} {0} acts on the replica that the \
                                 last kill/stop of {0} hit)",
                                f.target, f.action
                            )));
                        };
                        if prev != need {
                            return Err(bad(format!(
                                "the last fault on {} was a {prev}, and {} needs a {need}",
                                f.target, f.action
                            )));
                        }
                        if !hit.iter().any(|&i| state[i] & from != 0) {
                            return Err(bad(format!(
                                "the replica that {prev} {} hit cannot be {} any more at +{:.2}s",
                                f.target,
                                may_be(from),
                                f.at
                            )));
                        }
                        for &i in &hit {
                            if state[i] & from != 0 {
                                state[i] = if hit.len() == 1 { to } else { state[i] | to };
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A `leading with` / `stepped down from` line of a node log (see `handle_events` in
/// `dataplane::driver`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderLine {
    pub group: u16,
    pub replica: u16,
    /// (round, leader id): ballots order by round, then id.
    pub ballot: (u64, u16),
    /// `leading with` (true) or `stepped down from` (false).
    pub leading: bool,
    /// The log line's timestamp, if it has one.
    pub time: Option<SystemTime>,
}

/// Parses `bROUND.ID`.
fn ballot(s: &str) -> Option<(u64, u16)> {
    let (r, id) = s.strip_prefix('b')?.split_once('.')?;
    Some((r.parse().ok()?, id.parse().ok()?))
}

/// The leader event in a log line, if any:
/// `[... INFO  dataplane::driver] group 0 replica 1: leading with b3.1`.
pub fn leader_line(line: &str) -> Option<LeaderLine> {
    let at = line.find("] group ")?;
    let rest = &line[at + 8..];
    let (group, rest) = rest.split_once(" replica ")?;
    let (replica, rest) = rest.split_once(": ")?;
    let (leading, b) = if let Some(b) = rest.strip_prefix("leading with ") {
        (true, b)
    } else if let Some(b) = rest.strip_prefix("stepped down from ") {
        (false, b.split(',').next()?)
    } else {
        return None;
    };
    Some(LeaderLine {
        group: group.parse().ok()?,
        replica: replica.parse().ok()?,
        ballot: ballot(b.trim())?,
        leading,
        time: log_time(line),
    })
}

/// The timestamp env_logger puts first (`[2025-06-01T12:00:00.123456Z INFO ...`), as
/// written by `cli::init_logging` (UTC, microseconds).
pub fn log_time(line: &str) -> Option<SystemTime> {
    let s = line.strip_prefix('[')?;
    let ts = s.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min, sec) = (t.next()?, t.next()?, t.next()?);
    let (h, min): (u64, u64) = (h.parse().ok()?, min.parse().ok()?);
    let (secs, frac) = sec.split_once('.').unwrap_or((sec, "0"));
    let secs: u64 = secs.parse().ok()?;
    let digits = frac.len().min(9);
    let nanos: u64 = frac[..digits].parse::<u64>().ok()? * 10u64.pow(9 - digits as u32);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || secs > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let total = Duration::from_secs(days * 86_400 + h * 3600 + min * 60 + secs)
        + Duration::from_nanos(nanos);
    Some(SystemTime::UNIX_EPOCH + total)
}

/// Reads the lines a file gained since the last call (a child's log, from a start offset).
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    /// Follows `path` from byte `offset`.
    pub fn new(path: &Path, offset: u64) -> LogTail {
        LogTail { path: path.to_path_buf(), offset, partial: Vec::new() }
    }

    /// Where the next read starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The complete lines written since the last call.
    pub fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else { return Vec::new() };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&done).lines().map(str::to_string).collect()
    }
}

/// The leader of a group as the logs of the live replicas show it: of the replicas whose
/// last event says they lead, the one with the highest ballot (a deposed leader that has
/// not heard of its successor yet still claims to lead with a lower ballot).
pub fn current_leader(claims: impl IntoIterator<Item = (u16, Option<(u64, u16)>)>) -> Option<u16> {
    claims.into_iter().filter_map(|(id, b)| b.map(|b| (b, id))).max().map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(specs: &[&str]) -> Result<Vec<Fault>, String> {
        let v: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        plan(&v, 3, 10.0).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_and_names_the_bad_part() {
        let f = Fault::parse("1.5:kill:leader", 3).unwrap();
        assert_eq!((f.at, f.action, f.target), (1.5, Action::Kill, Target::Leader));
        assert_eq!(Fault::parse("2:restart:2", 3).unwrap().target, Target::Member(2));
        assert_eq!(Fault::parse("0:stop:all", 3).unwrap().target, Target::All);
        let e = plan_of(&["3:explode:leader"]).unwrap_err();
        assert_eq!(
            e,
            "--fault 3:explode:leader: unknown action \"explode\" (kill, restart, stop, cont, wipe)"
        );
        for (spec, want) in [
            ("3:kill", "expected AT:ACTION:TARGET"),
            ("x:kill:leader", "bad time \"x\""),
            ("-1:kill:leader", "bad time"),
            (
                "3:kill:boss",
                "unknown target \"boss\" (leader, follower, all, or a member id 0..=2)",
            ),
            ("3:kill:3", "no member 3"),
            ("3:wipe:all", "wipe all"),
            ("12:kill:leader", "not within the measured run (--duration 10)"),
        ] {
            let e = plan_of(&[spec]).unwrap_err();
            assert!(e.starts_with(&format!("--fault {spec}: ")), "{spec}: {e}");
            assert!(e.contains(want), "{spec}: {e}");
        }
        assert!(Fault::parse("1:kill:follower", 1).is_err());
    }

    #[test]
    fn schedules_that_make_no_sense_are_refused() {
        // Fine: in time order, whatever the command-line order.
        let p = plan_of(&["2:restart:follower", "1:kill:follower"]).unwrap();
        assert_eq!(p[0].action, Action::Kill);
        plan_of(&["1:stop:leader", "2:cont:leader", "3:kill:1", "4:wipe:1"]).unwrap();
        plan_of(&["1:kill:all", "2:restart:all"]).unwrap();
        plan_of(&["1:kill:leader", "2:restart:1"]).unwrap(); // the leader may have been 1
        plan_of(&["1:kill:0", "1.5:kill:all", "2:restart:all"]).unwrap();
        for (specs, bad, want) in [
            (&["1:restart:1"][..], "1:restart:1", "replica 1 is running at +1.00s"),
            (&["1:cont:2"][..], "1:cont:2", "needs a stopped replica"),
            (&["1:kill:2", "2:kill:2"][..], "2:kill:2", "replica 2 is dead"),
            (&["1:restart:leader"][..], "1:restart:leader", "no earlier kill of leader"),
            (&["1:cont:follower"][..], "1:cont:follower", "no earlier stop of follower"),
            (&["1:stop:leader", "2:restart:leader"][..], "2:restart:leader", "was a stop"),
            (&["1:kill:follower", "2:restart:leader"][..], "2:restart:leader", "no earlier kill"),
            (&["1:restart:all"][..], "1:restart:all", "no replica can be dead"),
            (&["1:kill:all", "2:kill:leader"][..], "2:kill:leader", "no replica can be running"),
            (&["1:kill:1", "2:wipe:1", "3:wipe:1"][..], "3:wipe:1", "replica 1 is running"),
        ] {
            let e = plan_of(specs).unwrap_err();
            assert!(e.starts_with(&format!("--fault {bad}: ")), "{specs:?}: {e}");
            assert!(e.contains(want), "{specs:?}: {e}");
        }
    }

    #[test]
    fn reads_leader_lines_and_timestamps() {
        let l = "[2025-06-01T12:00:01.500000Z INFO  dataplane::driver] group 0 replica 2: leading with b7.2";
        let e = leader_line(l).unwrap();
        assert_eq!((e.group, e.replica, e.ballot, e.leading), (0, 2, (7, 2), true));
        let t = e.time.unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(t, Duration::from_millis(1_748_779_201_500));
        let s = "[2025-06-01T12:00:02.000000Z INFO  dataplane::driver] group 1 replica 0: \
                 stepped down from b3.0, 4 batches dropped";
        let e = leader_line(s).unwrap();
        assert_eq!((e.group, e.replica, e.ballot, e.leading), (1, 0, (3, 0), false));
        assert!(leader_line("[x INFO  apps] group 0 replica 1: leader is b3.0").is_none());
        assert!(leader_line("final node=0 group=0").is_none());
        assert_eq!(log_time("[1970-01-01T00:00:00Z INFO x]"), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(
            current_leader([(0, Some((3, 0))), (1, Some((4, 1))), (2, None)]),
            Some(1),
            "the highest ballot leads"
        );
        assert_eq!(current_leader([(0, None)]), None);
    }

    #[test]
    fn log_tail_returns_whole_new_lines() {
        let p = std::env::temp_dir().join(format!("faults-tail-{}", std::process::id()));
        std::fs::write(&p, "a\nb").unwrap();
        let mut t = LogTail::new(&p, 0);
        assert_eq!(t.new_lines(), vec!["a".to_string()]);
        std::fs::write(&p, "a\nbc\nd\n").unwrap();
        assert_eq!(t.new_lines(), vec!["bc".to_string(), "d".to_string()]);
        let _ = std::fs::remove_file(&p);
    }
}
