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
