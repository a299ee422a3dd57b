//! `paxos-check HISTORY.jsonl`: is a KV history linearizable?
//!
//! The history is the shared JSON-lines format (docs/history-format.md): one object per
//! operation with its invocation and completion times. The check is the Wing-Gong-Lowe
//! search with memoization (Lowe, "Testing for linearizability", 2017; the same idea as
//! Porcupine's checker): operations are split per key (a map of independent registers is
//! linearizable iff every key's sub-history is), and for each key the search tries to put
//! every operation, in an order consistent with real time, at a point where the register's
//! sequential specification accepts its result. States already seen — the set of operations
//! linearized so far and the register's value — are not explored twice.
//!
//! - `ok` operations must take effect between their invocation and their completion, with
//!   the result recorded; `fail` operations never took effect and are dropped; `info`
//!   operations (outcome unknown) may take effect at any time after their invocation, or
//!   never: they get no completion time and no result to match (one that never took effect
//!   is linearized at the very end, where it changes nothing that is checked).
//! - A key's search has a budget (states explored; `--budget`); a key that exceeds it is
//!   *unknown*, never reported linearizable.
//! - On an anomaly the key and a minimal set of its operations that is not linearizable
//!   are printed: the shortest prefix (in completion order) that fails, then shrunk by
//!   dropping operations one at a time while it still fails.
//!
//! Exit codes: 0 linearizable, 1 an anomaly, 2 budget exceeded (unknown) or bad input.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// One operation of a history, for the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Its line in the file (1-based), for the report.
    pub line: usize,
    pub client: u64,
    pub kind: Kind,
    pub start: u64,
    /// `None`: `info`, outcome unknown.
    pub end: Option<u64>,
}

/// What an operation did and, when it completed, what it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `result`: the value read (`None`: absent); `None` outer when the outcome is unknown.
    Get {
        result: Option<Option<String>>,
    },
    Put {
        value: String,
    },
    /// `result`: whether the key existed.
    Delete {
        result: Option<bool>,
    },
    /// `result`: whether it swapped.
    Cas {
        expected: Option<String>,
        value: String,
        result: Option<bool>,
    },
}

/// The register's state: the key's value, or absent.
type State = Option<String>;

impl Kind {
    /// Applies the operation to `s` if its recorded result is what the specification gives
    /// from `s`; returns the new state, or `None` if the result is impossible from `s`.
    fn step(&self, s: &State) -> Option<State> {
        match self {
            Kind::Get { result: Some(r) } => (r == s).then(|| s.clone()),
            Kind::Get { result: None } => Some(s.clone()),
            Kind::Put { value } => Some(Some(value.clone())),
            Kind::Delete { result } => match result {
                Some(existed) if *existed != s.is_some() => None,
                _ => Some(None),
            },
            Kind::Cas { expected, value, result } => {
                let swaps = expected == s;
                match result {
                    Some(r) if *r != swaps => None,
                    _ if swaps => Some(Some(value.clone())),
                    _ => Some(s.clone()),
                }
            }
        }
    }

    /// The value this operation may write.
    fn written(&self) -> Option<&str> {
        match self {
            Kind::Put { value } | Kind::Cas { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether this operation read or expected `v`.
    fn observes(&self, v: &str) -> bool {
        match self {
            Kind::Get { result: Some(Some(r)) } => r == v,
            Kind::Cas { expected: Some(e), .. } => e == v,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        let q = |v: &Option<String>| v.as_ref().map_or("absent".to_string(), |v| format!("{v:?}"));
        match self {
            Kind::Get { result: Some(r) } => format!("get -> {}", q(r)),
            Kind::Get { result: None } => "get -> ?".into(),
            Kind::Put { value } => format!("put {value:?}"),
            Kind::Delete { result } => format!("delete -> {result:?}"),
            Kind::Cas { expected, value, result } => {
                format!("cas {} -> {value:?}: {result:?}", q(expected))
            }
        }
    }
}

impl Op {
    /// One line of a report.
    pub fn describe(&self) -> String {
        let end = self.end.map_or("info (outcome unknown)".to_string(), |e| format!("{e} ns"));
        format!(
            "line {}: client {} {} [{} ns .. {end}]",
            self.line,
            self.client,
            self.kind.describe(),
            self.start
        )
    }
}

/// Reads a history file: operations by key (failed ones dropped).
pub fn read_history(path: &Path) -> Result<BTreeMap<String, Vec<Op>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_history(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses history text (see [`read_history`]).
pub fn parse_history(text: &str) -> Result<BTreeMap<String, Vec<Op>>, String> {
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for (n, l) in text.lines().enumerate() {
        let line = n + 1;
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| format!("line {line}: {e}"))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let need = |k: &str| s(k).ok_or_else(|| format!("line {line}: no string field {k:?}"));
        let (op, key, status) = (need("op")?, need("key")?, need("status")?);
        let start = v
            .get("start_ns")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format!("line {line}: no start_ns"))?;
        let client = v.get("client").and_then(|x| x.as_u64()).unwrap_or(0);
        let ok = match status.as_str() {
            "ok" => true,
            "info" => false,
            "fail" => continue,
            other => return Err(format!("line {line}: unknown status {other:?}")),
        };
        let end = if ok {
            let e = v.get("end_ns").and_then(|x| x.as_u64());
            let e = e.ok_or_else(|| format!("line {line}: an ok operation without end_ns"))?;
            if e < start {
                return Err(format!("line {line}: end_ns {e} before start_ns {start}"));
            }
            Some(e)
        } else {
            None
        };
        let result = v.get("result");
        let text_result = |r: Option<&serde_json::Value>| -> Result<Option<String>, String> {
            match r {
                Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(x)) => Ok(Some(x.clone())),
                _ => Err(format!("line {line}: result must be a string or null")),
            }
        };
        let flag = |r: Option<&serde_json::Value>| -> Result<bool, String> {
            r.and_then(|x| x.as_bool()).ok_or_else(|| format!("line {line}: result must be a bool"))
        };
        let kind = match op.as_str() {
            "get" => Kind::Get { result: if ok { Some(text_result(result)?) } else { None } },
            "put" => Kind::Put { value: need("value")? },
            "delete" => Kind::Delete { result: if ok { Some(flag(result)?) } else { None } },
            "cas" => Kind::Cas {
                expected: match v.get("expected") {
                    Some(serde_json::Value::Null) | None => None,
                    Some(serde_json::Value::String(x)) => Some(x.clone()),
                    _ => return Err(format!("line {line}: expected must be a string or null")),
                },
                value: need("value")?,
                result: if ok { Some(flag(result)?) } else { None },
            },
            other => return Err(format!("line {line}: unknown op {other:?}")),
        };
        by_key.entry(key).or_default().push(Op { line, client, kind, start, end });
    }
    Ok(by_key)
}

/// What the search found for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// Not linearizable.
    Anomaly,
    /// The budget ran out first.
    Unknown,
}

/// One event of the search's list: an operation's invocation or its completion.
#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    call: bool,
}

/// Wing-Gong-Lowe with memoization over the operations of one key, starting from an
/// absent key. `budget`: most (linearized set, state) pairs explored.
pub fn check_key(ops: &[Op], budget: u64) -> Verdict {
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Events by time; a completion at the same instant as an invocation sorts first (the
    // two operations did not overlap). Info operations never complete.
    let mut events: Vec<(u64, u8, Event)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        events.push((o.start, 1, Event { op: i, call: true }));
        if let Some(e) = o.end {
            events.push((e, 0, Event { op: i, call: false }));
        }
    }
    events.sort_by_key(|e| (e.0, e.1, e.2.op));
    // A doubly linked list over the events (index n_events is the head sentinel).
    let m = events.len();
    let head = m;
    let mut next: Vec<usize> = (1..=m).chain([usize::MAX]).collect(); // next[m] = 0
    next[head] = 0;
    if m > 0 {
        next[m - 1] = usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=m).map(|i| if i == 0 { head } else { i - 1 }).collect();
    prev[head] = usize::MAX;
    // Where each operation's invocation and completion sit.
    let mut call_at = vec![0usize; n];
    let mut ret_at = vec![usize::MAX; n];
    for (k, (_, _, e)) in events.iter().enumerate() {
        if e.call {
            call_at[e.op] = k;
        } else {
            ret_at[e.op] = k;
        }
    }
    let unlink = |k: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, nx) = (prev[k], next[k]);
        next[p] = nx;
        if nx != usize::MAX {
            prev[nx] = p;
        }
    };
    let relink = |k: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, nx) = (prev[k], next[k]);
        next[p] = k;
        if nx != usize::MAX {
            prev[nx] = k;
        }
    };
    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state: State = None;
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut explored = 0u64;
    let mut cur = next[head];
    loop {
        if next[head] == usize::MAX {
            return Verdict::Linearizable;
        }
        let placed = if cur == usize::MAX {
            // Only invocations of info operations are left after `cur`, and none can be
            // placed from here: undo the last choice.
            false
        } else if events[cur].2.call {
            let op = events[cur].2.op;
            match ops[op].kind.step(&state) {
                Some(s2) => {
                    let mut lin = linearized.clone();
                    lin[op / 64] |= 1 << (op % 64);
                    if seen.insert((lin.clone(), s2.clone())) {
                        explored += 1;
                        if explored > budget {
                            return Verdict::Unknown;
                        }
                        stack.push((op, core::mem::replace(&mut state, s2)));
                        linearized = lin;
                        unlink(call_at[op], &mut next, &mut prev);
                        if ret_at[op] != usize::MAX {
                            unlink(ret_at[op], &mut next, &mut prev);
                        }
                        cur = next[head];
                        continue;
                    }
                    cur = next[cur];
                    continue;
                }
                None => {
                    cur = next[cur];
                    continue;
                }
            }
        } else {
            // The completion of an operation not placed yet: every order tried from the
            // last choice fails.
            false
        };
        debug_assert!(!placed);
        let Some((op, s)) = stack.pop() else { return Verdict::Anomaly };
        state = s;
        linearized[op / 64] &= !(1 << (op % 64));
        if ret_at[op] != usize::MAX {
            relink(ret_at[op], &mut next, &mut prev);
        }
        relink(call_at[op], &mut next, &mut prev);
        cur = next[call_at[op]];
    }
}

/// A small set of `ops` that is still not linearizable: the shortest prefix in completion
/// order that fails, then operations dropped one at a time while it keeps failing.
pub fn minimal_witness(ops: &[Op], budget: u64) -> Vec<Op> {
    let mut sorted = ops.to_vec();
    sorted.sort_by_key(|o| (o.end.unwrap_or(u64::MAX), o.start));
    let mut len = sorted.len();
    for k in 1..=sorted.len() {
        if check_key(&sorted[..k], budget) == Verdict::Anomaly {
            len = k;
            break;
        }
    }
    let mut w: Vec<Op> = sorted[..len].to_vec();
    // Passes until nothing more can go: dropping a read can free the write it observed,
    // which an earlier pass had to keep.
    loop {
        let before = w.len();
        shrink_pass(&mut w, budget);
        if w.len() == before {
            break;
        }
    }
    w.sort_by_key(|o| o.start);
    w
}

fn shrink_pass(w: &mut Vec<Op>, budget: u64) {
    let mut i = 0;
    while i < w.len() {
        // Keep the write of every value a kept operation reads or expects: a witness
        // "a read of a value nobody wrote" would hide what really went wrong.
        let needed = w[i]
            .kind
            .written()
            .is_some_and(|v| w.iter().enumerate().any(|(j, o)| j != i && o.kind.observes(v)));
        let mut t = w.clone();
        t.remove(i);
        if !needed && check_key(&t, budget) == Verdict::Anomaly {
            *w = t;
        } else {
            i += 1;
        }
    }
}

/// The whole check: per key verdicts, summed up.
#[derive(Debug, Default)]
pub struct Report {
    pub keys: u64,
    pub operations: u64,
    pub anomalies: Vec<(String, Vec<Op>)>,
    pub unknown: Vec<String>,
}

/// Checks every key of a history.
pub fn check(by_key: &BTreeMap<String, Vec<Op>>, budget: u64) -> Report {
    let mut r = Report::default();
    for (key, ops) in by_key {
        r.keys += 1;
        r.operations += ops.len() as u64;
        match check_key(ops, budget) {
            Verdict::Linearizable => {}
            Verdict::Unknown => r.unknown.push(key.clone()),
            Verdict::Anomaly => r.anomalies.push((key.clone(), minimal_witness(ops, budget))),
        }
    }
    r
}

/// Default `--budget`: states explored per key before giving up.
pub const DEFAULT_BUDGET: u64 = 2_000_000;

/// `paxos-check [--budget N] HISTORY.jsonl...`: prints the verdict; returns the exit code.
pub fn main_with(args: Vec<String>) -> i32 {
    let mut budget = DEFAULT_BUDGET;
    let mut files = Vec::new();
    let mut it = args.into_iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!(
                    "usage: paxos-check [--budget STATES] HISTORY.jsonl...\n\
                     Checks that a KV history (docs/history-format.md) is linearizable, key by \
                     key (Wing-Gong-Lowe with memoization).\n\
                     exit 0: linearizable; 1: an anomaly (the key and a minimal set of \
                     operations are printed); 2: a key exceeded the budget (unknown), or bad input"
                );
                return 0;
            }
            "--budget" => match it.next().map(|v| v.parse::<u64>()) {
                Some(Ok(b)) if b > 0 => budget = b,
                _ => {
                    eprintln!("paxos-check: --budget: a number of states > 0");
                    return 2;
                }
            },
            f => files.push(f.to_string()),
        }
    }
    if files.is_empty() {
        eprintln!("paxos-check: give at least one history file (--help)");
        return 2;
    }
    let mut code = 0;
    for f in files {
        let by_key = match read_history(Path::new(&f)) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("paxos-check: {e}");
                return 2;
            }
        };
        let start = std::time::Instant::now();
        let r = check(&by_key, budget);
        println!(
            "{f}: {} operations on {} keys: {} anomalies, {} unknown ({:.2?})",
            r.operations,
            r.keys,
            r.anomalies.len(),
            r.unknown.len(),
            start.elapsed()
        );
        for (key, ops) in &r.anomalies {
            println!(
                "NOT LINEARIZABLE: key {key:?}; these {} operations cannot be ordered:",
                ops.len()
            );
            for o in ops {
                println!("  {}", o.describe());
            }
        }
        for key in &r.unknown {
            println!("UNKNOWN: key {key:?}: more than {budget} states explored");
        }
        if !r.anomalies.is_empty() {
            code = 1;
        } else if !r.unknown.is_empty() && code == 0 {
            code = 2;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(lines: &[&str]) -> Vec<Op> {
        let h = parse_history(&lines.join("\n")).unwrap();
        h.into_values().next().unwrap_or_default()
    }

    fn put(c: u64, v: &str, s: u64, e: Option<u64>) -> String {
        let (end, st) = match e {
            Some(e) => (e.to_string(), "ok"),
            None => ("null".into(), "info"),
        };
        format!(
            r#"{{"client":{c},"op":"put","key":"k","value":"{v}","start_ns":{s},"end_ns":{end},"status":"{st}"}}"#
        )
    }
    fn get(c: u64, r: Option<&str>, s: u64, e: u64) -> String {
        let r = r.map_or("null".to_string(), |v| format!("\"{v}\""));
        format!(
            r#"{{"client":{c},"op":"get","key":"k","start_ns":{s},"end_ns":{e},"status":"ok","result":{r}}}"#
        )
    }
    fn cas(c: u64, exp: Option<&str>, v: &str, s: u64, e: u64, r: bool) -> String {
        let x = exp.map_or("null".to_string(), |v| format!("\"{v}\""));
        format!(
            r#"{{"client":{c},"op":"cas","key":"k","expected":{x},"value":"{v}","start_ns":{s},"end_ns":{e},"status":"ok","result":{r}}}"#
        )
    }
    fn verdict(lines: &[String]) -> Verdict {
        let l: Vec<&str> = lines.iter().map(String::as_str).collect();
        check_key(&ops(&l), DEFAULT_BUDGET)
    }

    #[test]
    fn good_histories_pass() {
        // Sequential.
        assert_eq!(
            verdict(&[put(1, "a", 0, Some(10)), get(2, Some("a"), 20, 30)]),
            Verdict::Linearizable
        );
        // Concurrent write and read: either order.
        assert_eq!(
            verdict(&[put(1, "a", 0, Some(100)), get(2, None, 10, 20)]),
            Verdict::Linearizable
        );
        // An info write that took effect late: read after every write completed still
        // sees it.
        assert_eq!(
            verdict(&[
                put(1, "a", 0, Some(10)),
                put(2, "b", 20, None),
                get(3, Some("a"), 30, 40),
                get(3, Some("b"), 50, 60),
            ]),
            Verdict::Linearizable
        );
        // An info write that never took effect.
        assert_eq!(
            verdict(&[put(1, "a", 0, Some(10)), put(2, "b", 20, None), get(3, Some("a"), 30, 40)]),
            Verdict::Linearizable
        );
    }

    #[test]
    fn known_anomalies_are_caught() {
        // A stale read: b was acknowledged before the read began.
        let stale =
            [put(1, "a", 0, Some(10)), put(1, "b", 20, Some(30)), get(2, Some("a"), 40, 50)];
        assert_eq!(verdict(&stale), Verdict::Anomaly);
        // A lost acknowledged write: absent afterwards.
        assert_eq!(verdict(&[put(1, "a", 0, Some(10)), get(2, None, 20, 30)]), Verdict::Anomaly);
        // Two successful cas from the same expected value.
        let double = [
            put(1, "a", 0, Some(10)),
            cas(2, Some("a"), "b", 20, 40, true),
            cas(3, Some("a"), "c", 20, 40, true),
        ];
        assert_eq!(verdict(&double), Verdict::Anomaly);
        // A failed write that is read (failed = certainly not applied, dropped).
        let failed = [
            r#"{"client":1,"op":"put","key":"k","value":"x","start_ns":0,"end_ns":5,"status":"fail"}"#.to_string(),
            get(2, Some("x"), 10, 20),
        ];
        assert_eq!(verdict(&failed), Verdict::Anomaly);
        // A read that returns a value before its write began.
        assert_eq!(
            verdict(&[get(2, Some("a"), 0, 10), put(1, "a", 20, Some(30))]),
            Verdict::Anomaly
        );
    }

    #[test]
    fn the_witness_is_minimal() {
        let mut h = vec![put(1, "a", 0, Some(10))];
        for i in 0..20u64 {
            h.push(get(5, Some("a"), 100 + 20 * i, 110 + 20 * i));
        }
        h.push(put(1, "b", 600, Some(610)));
        h.push(get(2, Some("a"), 700, 710)); // stale
        let l: Vec<&str> = h.iter().map(String::as_str).collect();
        let w = minimal_witness(&ops(&l), DEFAULT_BUDGET);
        // put a (the value read), put b (acknowledged before the read began), the stale read.
        let lines: Vec<usize> = w.iter().map(|o| o.line).collect();
        assert_eq!(lines, vec![1, 22, 23], "{w:?}");
    }

    #[test]
    fn the_budget_says_unknown() {
        // Many overlapping writes and no reads: linearizable, but with a tiny budget unknown.
        let h: Vec<String> = (0..12).map(|i| put(i, &format!("v{i}"), 0, Some(100))).collect();
        let l: Vec<&str> = h.iter().map(String::as_str).collect();
        assert_eq!(check_key(&ops(&l), 5), Verdict::Unknown);
        assert_eq!(check_key(&ops(&l), DEFAULT_BUDGET), Verdict::Linearizable);
    }
}
