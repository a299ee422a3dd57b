//! Counters of one log and the sync-latency histogram.

/// Buckets of the sync latency histogram: bucket `i` counts syncs under `16 << i` us
/// (16 us .. 256 ms); the last bucket counts everything slower.
pub const SYNC_HIST_BUCKETS: usize = 16;

/// What one `sync` made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncInfo {
    /// Records in the batch (Promise, Accept, Trim, Voting; not the commit or snapshots).
    pub records: u32,
    /// Bytes written by this sync (0 if nothing was pending).
    pub bytes: u64,
    /// LSN now durable (the batch's Commit record).
    pub lsn: u64,
    /// Number of the last completed batch.
    pub batch: u64,
}

/// Counters since `open`. Plain integers: read them from the thread that owns the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Syncs that wrote something (a sync with nothing pending is not counted).
    pub syncs: u64,
    /// Records appended (Promise, Accept, Trim, Voting).
    pub records: u64,
    /// Records made durable by those syncs.
    pub records_synced: u64,
    pub max_records_per_sync: u64,
    /// Bytes written to segment files (records, headers, commits; not preallocation).
    pub bytes_written: u64,
    /// Writes of a full write buffer before a sync (no fdatasync).
    pub overflow_flushes: u64,
    pub rotations: u64,
    /// Rotations that found no zero-filled spare and created a plain file.
    pub spare_misses: u64,
    pub segments_deleted: u64,
    /// Thread mode: syncs started by `sync_poll` right after the one before completed (a
    /// `sync_start` had come while it was in flight).
    pub syncs_chained: u64,
    /// Thread mode: times the caller blocked for a sync in flight (a blocking `sync`, or an
    /// append that overflowed the write buffer).
    pub sync_waits: u64,
    /// Thread mode: records whose `durable_lsn` was rewritten before their first write.
    pub records_restamped: u64,
    /// Thread mode: bytes written by syncs that completed on the sync thread.
    pub bytes_synced_in_background: u64,
    /// Thread mode, summed over syncs: from `sync_start` (Commit record, write) until the
    /// thread took the request (the write and the thread's wake-up); the thread's
    /// fdatasyncs; from their end until the polling thread saw the completion.
    pub sync_handoff_ns_sum: u64,
    pub sync_io_ns_sum: u64,
    pub sync_notice_ns_sum: u64,
    pub sync_ns_sum: u64,
    pub sync_ns_max: u64,
    pub sync_us_hist: [u64; SYNC_HIST_BUCKETS],
}

impl LogStats {
    pub(crate) fn record_sync(&mut self, records: u64, ns: u64) {
        self.syncs += 1;
        self.records_synced += records;
        self.max_records_per_sync = self.max_records_per_sync.max(records);
        self.sync_ns_sum += ns;
        self.sync_ns_max = self.sync_ns_max.max(ns);
        self.sync_us_hist[bucket(ns / 1000)] += 1;
    }

    pub fn records_per_sync(&self) -> f64 {
        if self.syncs == 0 {
            return 0.0;
        }
        self.records_synced as f64 / self.syncs as f64
    }

    pub fn sync_ns_mean(&self) -> u64 {
        self.sync_ns_sum.checked_div(self.syncs).unwrap_or(0)
    }

    /// Upper bound (us) of the bucket holding quantile `q` (0..=1) of sync latencies;
    /// `u64::MAX` when it falls in the last, open bucket; 0 with no syncs.
    pub fn sync_us_quantile(&self, q: f64) -> u64 {
        let n: u64 = self.sync_us_hist.iter().sum();
        if n == 0 {
            return 0;
        }
        let want = ((n as f64 * q).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, c) in self.sync_us_hist.iter().enumerate() {
            seen += c;
            if seen >= want {
                return bucket_upper_us(i);
            }
        }
        u64::MAX
    }
}

/// Exclusive upper bound in us of histogram bucket `i` (`u64::MAX` for the last).
pub fn bucket_upper_us(i: usize) -> u64 {
    if i + 1 >= SYNC_HIST_BUCKETS {
        u64::MAX
    } else {
        16 << i
    }
}

fn bucket(us: u64) -> usize {
    (0..SYNC_HIST_BUCKETS - 1).find(|&i| us < 16 << i).unwrap_or(SYNC_HIST_BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let mut s = LogStats::default();
        assert_eq!(s.sync_us_quantile(0.5), 0);
        for us in [1, 15, 16, 100, 100, 100, 10_000_000] {
            s.record_sync(2, us * 1000);
        }
        assert_eq!(s.sync_us_hist[0], 2);
        assert_eq!(s.sync_us_hist[1], 1);
        assert_eq!(s.sync_us_hist[3], 3); // 64..128 us
        assert_eq!(s.sync_us_hist[SYNC_HIST_BUCKETS - 1], 1);
        assert_eq!(s.sync_us_quantile(0.5), 128);
        assert_eq!(s.sync_us_quantile(1.0), u64::MAX);
        assert_eq!((s.syncs, s.records_synced, s.max_records_per_sync), (7, 14, 2));
        assert_eq!(s.records_per_sync(), 2.0);
    }
}
