//! Latency and throughput reporting for the load generator: HDR histograms (microsecond
//! resolution... recorded in nanoseconds, 3 significant digits), printed as a human summary,
//! JSON and CSV, plus HdrHistogram interval logs for time series.

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::Histogram;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Highest latency a histogram records (longer ones are clamped and counted).
pub const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// Percentiles every report prints.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

pub struct LatencyRecorder {
    pub total: Histogram<u64>,
    /// The current interval (for interval logs); reset at each `rotate`.
    pub interval: Histogram<u64>,
    pub clamped: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> Self {
        let h = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("valid bounds");
        LatencyRecorder { total: h.clone(), interval: h, clamped: 0 }
    }

    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        let v = ns.clamp(1, LATENCY_MAX_NS);
        if v != ns {
            self.clamped += 1;
        }
        // Within bounds by construction.
        let _ = self.total.record(v);
        let _ = self.interval.record(v);
    }

    pub fn merge(&mut self, other: &LatencyRecorder) {
        let _ = self.total.add(&other.total);
        let _ = self.interval.add(&other.interval);
        self.clamped += other.clamped;
    }
}

/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub label: String,
    pub ops: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub duration_s: f64,
    pub throughput_ops_s: f64,
    pub mean_us: f64,
    pub min_us: f64,
    pub percentiles_us: Vec<(f64, f64)>,
    pub max_us: f64,
}

impl Summary {
    pub fn from(
        label: &str,
        h: &Histogram<u64>,
        errors: u64,
        timeouts: u64,
        duration: Duration,
    ) -> Summary {
        let us = |ns: u64| ns as f64 / 1000.0;
        let ops = h.len();
        let secs = duration.as_secs_f64().max(1e-9);
        Summary {
            label: label.to_string(),
            ops,
            errors,
            timeouts,
            duration_s: secs,
            throughput_ops_s: ops as f64 / secs,
            mean_us: h.mean() / 1000.0,
            min_us: if ops == 0 { 0.0 } else { us(h.min()) },
            percentiles_us: PERCENTILES
                .iter()
                .map(|p| (*p, us(h.value_at_percentile(*p))))
                .collect(),
            max_us: us(h.max()),
        }
    }

    pub fn human(&self) -> String {
        let mut s = format!(
            "{}: {} ops in {:.2} s = {:.0} ops/s ({} errors, {} timeouts)\n  latency us: min {:.1} mean {:.1}",
            self.label, self.ops, self.duration_s, self.throughput_ops_s, self.errors, self.timeouts, self.min_us, self.mean_us
        );
        for (p, v) in &self.percentiles_us {
            s.push_str(&format!(" p{} {:.1}", p, v));
        }
        s.push_str(&format!(" max {:.1}", self.max_us));
        s
    }

    pub fn json(&self) -> String {
        let mut s = format!(
            "{{\"label\":\"{}\",\"ops\":{},\"errors\":{},\"timeouts\":{},\"duration_s\":{:.3},\"throughput_ops_s\":{:.1},\"latency_us\":{{\"min\":{:.2},\"mean\":{:.2}",
            self.label.replace('"', "'"), self.ops, self.errors, self.timeouts, self.duration_s, self.throughput_ops_s, self.min_us, self.mean_us
        );
        for (p, v) in &self.percentiles_us {
            s.push_str(&format!(",\"p{}\":{:.2}", p, v));
        }
        s.push_str(&format!(",\"max\":{:.2}}}}}", self.max_us));
        s
    }

    pub const CSV_HEADER: &'static str =
        "label,ops,errors,timeouts,duration_s,throughput_ops_s,min_us,mean_us,p50_us,p90_us,p99_us,p99.9_us,p99.99_us,max_us";

    pub fn csv(&self) -> String {
        let mut s = format!(
            "{},{},{},{},{:.3},{:.1},{:.2},{:.2}",
            self.label.replace(',', ";"),
            self.ops,
            self.errors,
            self.timeouts,
            self.duration_s,
            self.throughput_ops_s,
            self.min_us,
            self.mean_us
        );
        for (_, v) in &self.percentiles_us {
            s.push_str(&format!(",{:.2}", v));
        }
        s.push_str(&format!(",{:.2}", self.max_us));
        s
    }

    /// [`json`](Self::json) with `extra` fields at the end: a value that reads as a number is
    /// written as one, an empty one as `null`, anything else as a string.
    pub fn json_with(&self, extra: &[(String, String)]) -> String {
        let mut s = self.json();
        s.pop(); // the closing brace
        for (k, v) in extra {
            let k = k.replace(['"', '\\'], "'");
            match v.parse::<f64>() {
                _ if v.is_empty() => s.push_str(&format!(",\"{k}\":null")),
                Ok(x) if x.is_finite() => s.push_str(&format!(",\"{k}\":{v}")),
                _ => s.push_str(&format!(",\"{k}\":\"{}\"", v.replace(['"', '\\'], "'"))),
            }
        }
        s.push('}');
        s
    }

    /// [`CSV_HEADER`](Self::CSV_HEADER) with the `extra` keys as further columns.
    pub fn csv_header_with(extra: &[(String, String)]) -> String {
        let mut s = Self::CSV_HEADER.to_string();
        for (k, _) in extra {
            s.push(',');
            s.push_str(&k.replace(',', ";"));
        }
        s
    }

    /// [`csv`](Self::csv) with the `extra` values as further columns.
    pub fn csv_with(&self, extra: &[(String, String)]) -> String {
        let mut s = self.csv();
        for (_, v) in extra {
            s.push(',');
            s.push_str(&v.replace(',', ";"));
        }
        s
    }
}

/// Most intervals one log keeps (an hour of one-second intervals); later ones are dropped
/// and counted.
pub const MAX_INTERVALS: usize = 3600;

/// An HdrHistogram interval log (readable by HdrHistogram's log tools and plotters),
/// collected in memory and written once at the end of the run.
pub struct IntervalLog {
    start: SystemTime,
    intervals: Vec<(Duration, Duration, Histogram<u64>)>,
    pub dropped: u64,
}

impl Default for IntervalLog {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalLog {
    pub fn new() -> Self {
        IntervalLog { start: SystemTime::now(), intervals: Vec::new(), dropped: 0 }
    }

    /// Adds one interval (`offset` since the run started, `length` of the interval).
    pub fn push(&mut self, h: &Histogram<u64>, offset: Duration, length: Duration) {
        if self.intervals.len() >= MAX_INTERVALS {
            self.dropped += 1;
            return;
        }
        self.intervals.push((offset, length, h.clone()));
    }

    pub fn len(&self) -> usize {
        self.intervals.len()
    }
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    pub fn write_to<W: Write>(&self, mut out: W) -> std::io::Result<()> {
        let mut serializer = V2Serializer::new();
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment("paxos-client latency in ns (max column in us)")
            .with_start_time(self.start)
            .with_base_time(self.start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)?;
        for (offset, length, h) in &self.intervals {
            w.write_histogram(h, *offset, *length, Tag::new("latency"))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_formats() {
        let mut r = LatencyRecorder::new();
        for i in 1..=1000u64 {
            r.record_ns(i * 1000);
        }
        r.record_ns(LATENCY_MAX_NS * 2);
        assert_eq!(r.clamped, 1);
        let s = Summary::from("t", &r.total, 0, 0, Duration::from_secs(1));
        assert_eq!(s.ops, 1001);
        let p50 = s.percentiles_us[0].1;
        assert!((499.0..=502.0).contains(&p50), "p50 {p50}");
        assert!(s.human().contains("p99.9"));
        assert!(s.json().starts_with("{\"label\":\"t\",\"ops\":1001"));
        assert_eq!(s.csv().split(',').count(), Summary::CSV_HEADER.split(',').count());
        let extra =
            vec![("storage".to_string(), "memory".to_string()), ("x_us".into(), "1.5".into())];
        let j = s.json_with(&extra);
        assert!(j.ends_with(",\"storage\":\"memory\",\"x_us\":1.5}"), "{j}");
        assert_eq!(
            Summary::csv_header_with(&extra).split(',').count(),
            s.csv_with(&extra).split(',').count()
        );
        assert!(s.csv_with(&extra).ends_with(",memory,1.5"));
        let mut buf = Vec::new();
        let mut log = IntervalLog::new();
        log.push(&r.interval, Duration::from_secs(0), Duration::from_secs(1));
        log.push(&r.interval, Duration::from_secs(1), Duration::from_secs(1));
        log.write_to(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.matches("StartTime").count(), 1, "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("Tag=latency")).count(), 2, "{text}");
    }
}
