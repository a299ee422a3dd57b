//! Client operation history in the shared JSON-lines format
//! (`shared/reference/kv-history.md`): one object per operation, timestamps in nanoseconds
//! from one monotonic clock. `ok` = completed and checked; `fail` = certainly not applied;
//! `info` = outcome unknown (timeouts), with `end_ns` null.

use std::io::Write;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistOp {
    Get { key: Vec<u8> },
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    Cas { key: Vec<u8>, expected: Option<Vec<u8>>, value: Vec<u8> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// get: value or None; delete: existed; cas: swapped; put: Done.
    OkValue(Option<Vec<u8>>),
    OkFlag(bool),
    OkDone,
    Fail,
    Info,
}

fn json_str(out: &mut String, b: &[u8]) {
    out.push('"');
    for ch in String::from_utf8_lossy(b).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One JSON line (without the newline).
pub fn line(
    client: u64,
    op: &HistOp,
    start_ns: u64,
    end_ns: Option<u64>,
    outcome: &Outcome,
) -> String {
    let mut s = format!("{{\"client\":{client},\"op\":");
    let (name, key) = match op {
        HistOp::Get { key } => ("get", key),
        HistOp::Put { key, .. } => ("put", key),
        HistOp::Delete { key } => ("delete", key),
        HistOp::Cas { key, .. } => ("cas", key),
    };
    s.push_str(&format!("\"{name}\",\"key\":"));
    json_str(&mut s, key);
    match op {
        HistOp::Put { value, .. } => {
            s.push_str(",\"value\":");
            json_str(&mut s, value);
        }
        HistOp::Cas { expected, value, .. } => {
            s.push_str(",\"expected\":");
            match expected {
                Some(e) => json_str(&mut s, e),
                None => s.push_str("null"),
            }
            s.push_str(",\"value\":");
            json_str(&mut s, value);
        }
        _ => {}
    }
    s.push_str(&format!(",\"start_ns\":{start_ns},\"end_ns\":"));
    match (end_ns, outcome) {
        (_, Outcome::Info) | (None, _) => s.push_str("null"),
        (Some(e), _) => s.push_str(&e.to_string()),
    }
    let status = match outcome {
        Outcome::Fail => "fail",
        Outcome::Info => "info",
        _ => "ok",
    };
    s.push_str(&format!(",\"status\":\"{status}\""));
    match outcome {
        Outcome::OkValue(Some(v)) => {
            s.push_str(",\"result\":");
            json_str(&mut s, v);
        }
        Outcome::OkValue(None) => s.push_str(",\"result\":null"),
        Outcome::OkFlag(f) => s.push_str(&format!(",\"result\":{f}")),
        _ => {}
    }
    s.push('}');
    s
}

/// What [`check_acknowledged_writes`] found.
#[derive(Debug, Default)]
pub struct WriteCheck {
    pub keys_written: u64,
    pub acknowledged_writes: u64,
    /// One line per lost write: the key, the write, and what the read-back saw.
    pub lost: Vec<String>,
}

/// One write in a history: its value, when it started, when it was acknowledged (None:
/// `info`, its outcome unknown: it may take effect at any time after it started).
struct HistWrite {
    value: String,
    start: u64,
    acked_at: Option<u64>,
}

/// Checks that no acknowledged write was lost, from a history whose last operations are
/// one read per key started at or after `read_back_ns` (when every write had ended:
/// `paxos-client --verify`). For each key, the value read back must be the value of some
/// write `w` (or absent, if no write was acknowledged), and no acknowledged write may have
/// started after `w` was acknowledged (it would have overwritten `w`). Puts and successful
/// or unknown cas count as writes; keys with deletes are not checked. Sound for this
/// workload (it never reports a loss a linearizable store could show); the full
/// linearizability check is `paxos-check`.
pub fn check_acknowledged_writes(
    path: &std::path::Path,
    read_back_ns: u64,
) -> Result<WriteCheck, String> {
    use std::collections::HashMap;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut writes: HashMap<String, Vec<HistWrite>> = HashMap::new();
    let mut finals: HashMap<String, Option<String>> = HashMap::new();
    let mut deleted: std::collections::HashSet<String> = Default::default();
    for (n, l) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l)
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let (Some(op), Some(key), Some(status)) = (field("op"), field("key"), field("status"))
        else {
            return Err(format!("{} line {}: no op, key or status", path.display(), n + 1));
        };
        let start = v.get("start_ns").and_then(|x| x.as_u64()).unwrap_or(0);
        let end = v.get("end_ns").and_then(|x| x.as_u64());
        let result = v.get("result");
        match (op.as_str(), status.as_str()) {
            ("get", "ok") if start >= read_back_ns => {
                let r = result.and_then(|r| r.as_str()).map(str::to_string);
                finals.insert(key, r);
            }
            ("put", "ok" | "info") | ("cas", "info") => {
                let acked_at = if status == "ok" { end } else { None };
                let value = field("value").unwrap_or_default();
                writes.entry(key).or_default().push(HistWrite { value, start, acked_at });
            }
            ("cas", "ok") if result.and_then(|r| r.as_bool()) == Some(true) => {
                let value = field("value").unwrap_or_default();
                writes.entry(key).or_default().push(HistWrite { value, start, acked_at: end });
            }
            ("delete", _) => {
                deleted.insert(key);
            }
            _ => {}
        }
    }
    let mut check = WriteCheck::default();
    let mut keys: Vec<&String> = writes.keys().collect();
    keys.sort();
    for key in keys {
        let ws = &writes[key];
        check.keys_written += 1;
        check.acknowledged_writes += ws.iter().filter(|w| w.acked_at.is_some()).count() as u64;
        if deleted.contains(key) {
            continue;
        }
        let Some(read) = finals.get(key) else {
            check.lost.push(format!("key {key}: written but never read back"));
            continue;
        };
        let describe = |w: &HistWrite| match w.acked_at {
            Some(t) => format!("{:?} (started {} ns, acknowledged {t} ns)", w.value, w.start),
            None => format!("{:?} (started {} ns, outcome unknown)", w.value, w.start),
        };
        match read {
            None => {
                if let Some(w) = ws.iter().find(|w| w.acked_at.is_some()) {
                    check.lost.push(format!("key {key}: {} lost: read back absent", describe(w)));
                }
            }
            Some(value) => match ws.iter().find(|w| &w.value == value) {
                None => check.lost.push(format!("key {key}: read back {value:?}, never written")),
                Some(w) => {
                    let after = w.acked_at.unwrap_or(u64::MAX);
                    if let Some(later) = ws.iter().find(|x| x.acked_at.is_some() && x.start > after)
                    {
                        check.lost.push(format!(
                            "key {key}: {} lost: read back the older {}",
                            describe(later),
                            describe(w)
                        ));
                    }
                }
            },
        }
    }
    Ok(check)
}

/// Appends history lines to a writer (buffered by the caller).
pub struct HistoryWriter<W: Write> {
    out: W,
    pub lines: u64,
}

impl<W: Write> HistoryWriter<W> {
    pub fn new(out: W) -> Self {
        HistoryWriter { out, lines: 0 }
    }
    pub fn record(
        &mut self,
        client: u64,
        op: &HistOp,
        start_ns: u64,
        end_ns: Option<u64>,
        outcome: &Outcome,
    ) -> std::io::Result<()> {
        self.lines += 1;
        writeln!(self.out, "{}", line(client, op, start_ns, end_ns, outcome))
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lines: &[&str], read_back: u64) -> WriteCheck {
        let p = std::env::temp_dir().join(format!("hist-{}-{read_back}.jsonl", std::process::id()));
        std::fs::write(&p, lines.join("\n")).unwrap();
        let c = check_acknowledged_writes(&p, read_back).unwrap();
        let _ = std::fs::remove_file(&p);
        c
    }

    #[test]
    fn lost_acknowledged_writes_are_found() {
        let put = |v: &str, s: u64, e: &str, st: &str| {
            format!(
                r#"{{"client":1,"op":"put","key":"k","value":"{v}","start_ns":{s},"end_ns":{e},"status":"{st}"}}"#
            )
        };
        let get = |r: &str| {
            format!(
                r#"{{"client":9,"op":"get","key":"k","start_ns":1000,"end_ns":1010,"status":"ok","result":{r}}}"#
            )
        };
        let (a, b) = (put("a", 0, "10", "ok"), put("b", 20, "30", "ok"));
        // The last acknowledged write is read back: fine.
        assert!(check(&[&a, &b, &get("\"b\"")], 1000).lost.is_empty());
        // The older one is read back though b started after a was acknowledged: b is lost.
        let c = check(&[&a, &b, &get("\"a\"")], 1000);
        assert_eq!(c.lost.len(), 1, "{:?}", c.lost);
        assert_eq!(c.acknowledged_writes, 2);
        // Absent after an acknowledged write: lost.
        assert_eq!(check(&[&a, &get("null")], 1000).lost.len(), 1);
        // Concurrent writes: either may win.
        let b2 = put("b", 5, "30", "ok");
        assert!(check(&[&a, &b2, &get("\"a\"")], 1000).lost.is_empty());
        // A write whose outcome is unknown may have taken effect last.
        let i = put("i", 40, "null", "info");
        assert!(check(&[&a, &b, &i, &get("\"i\"")], 1000).lost.is_empty());
        // A value nobody wrote.
        assert_eq!(check(&[&a, &get("\"z\"")], 1000).lost.len(), 1);
        // A read before the read-back does not count as the final read.
        let early = r#"{"client":9,"op":"get","key":"k","start_ns":15,"end_ns":16,"status":"ok","result":"a"}"#;
        assert_eq!(check(&[&a, early], 1000).lost.len(), 1);
    }

    #[test]
    fn lines_match_the_reference_format() {
        // The examples of shared/reference/kv-history.md, field for field.
        let put = HistOp::Put { key: b"x".to_vec(), value: b"1".to_vec() };
        assert_eq!(
            line(1, &put, 0, Some(100), &Outcome::OkDone),
            r#"{"client":1,"op":"put","key":"x","value":"1","start_ns":0,"end_ns":100,"status":"ok"}"#
        );
        let get = HistOp::Get { key: b"x".to_vec() };
        assert_eq!(
            line(2, &get, 90, Some(150), &Outcome::OkValue(Some(b"1".to_vec()))),
            r#"{"client":2,"op":"get","key":"x","start_ns":90,"end_ns":150,"status":"ok","result":"1"}"#
        );
        let del = HistOp::Delete { key: b"x".to_vec() };
        assert_eq!(
            line(3, &del, 200, Some(210), &Outcome::OkFlag(true)),
            r#"{"client":3,"op":"delete","key":"x","start_ns":200,"end_ns":210,"status":"ok","result":true}"#
        );
        let cas =
            HistOp::Cas { key: b"x".to_vec(), expected: Some(b"1".to_vec()), value: b"2".to_vec() };
        assert_eq!(
            line(4, &cas, 300, Some(400), &Outcome::OkFlag(true)),
            r#"{"client":4,"op":"cas","key":"x","expected":"1","value":"2","start_ns":300,"end_ns":400,"status":"ok","result":true}"#
        );
        let put9 = HistOp::Put { key: b"x".to_vec(), value: b"9".to_vec() };
        assert_eq!(
            line(5, &put9, 500, None, &Outcome::Info),
            r#"{"client":5,"op":"put","key":"x","value":"9","start_ns":500,"end_ns":null,"status":"info"}"#
        );
        let cas_absent = HistOp::Cas { key: b"q\"".to_vec(), expected: None, value: b"v".to_vec() };
        assert!(line(6, &cas_absent, 1, Some(2), &Outcome::OkFlag(false))
            .contains(r#""key":"q\"","expected":null"#));
        assert!(line(7, &get, 1, Some(2), &Outcome::OkValue(None)).ends_with(r#""result":null}"#));
    }
}
