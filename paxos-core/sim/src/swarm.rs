//! Running many seeds: a fixed pool of threads pulls seeds from a shared counter. Each seed's
//! result depends only on the seed and the options, never on which thread ran it or when.

use crate::options::Options;
use crate::sim::{Outcome, Simulation};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Totals over a range of seeds.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    /// Failed outcomes, by seed (sorted).
    pub failures: Vec<Outcome>,
    pub slots_chosen: u64,
    pub requests_done: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_installed: u64,
    pub leaders_elected: u64,
    /// Leaders elected in stable phases, and the seeds whose stable phase had to stay
    /// without one.
    pub stable_leader_changes: u64,
    pub stable_checked: u64,
    /// Disk faults: wiped disks, members that rejoined, failed syncs, unsynced writes lost.
    pub wipes: u64,
    pub rejoins: u64,
    pub sync_failures: u64,
    pub writes_lost: u64,
    /// The longest liveness phase that converged.
    pub liveness_ticks_max_seen: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Live counters for a progress line.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub failures: AtomicU64,
    pub slots: AtomicU64,
}

/// Runs seeds `start..start + count` on `threads` threads. `stop_after_failures`: stop
/// handing out seeds once this many failed (0 = never stop). `progress` is updated as seeds
/// finish (read it from another thread for a progress line).
pub fn run_seeds(
    start: u64,
    count: u64,
    opts: &Options,
    threads: usize,
    stop_after_failures: u64,
    progress: &Progress,
) -> Summary {
    let began = Instant::now();
    let next = AtomicU64::new(start);
    let end = start + count;
    let summary = Mutex::new(Summary::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                if stop_after_failures > 0
                    && progress.failures.load(Ordering::Relaxed) >= stop_after_failures
                {
                    return;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    return;
                }
                let o = Simulation::run_seed(seed, opts);
                progress.slots.fetch_add(o.stats.slots_chosen, Ordering::Relaxed);
                if !o.ok() {
                    progress.failures.fetch_add(1, Ordering::Relaxed);
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
                let mut sum = summary.lock().unwrap_or_else(|e| e.into_inner());
                sum.seeds += 1;
                sum.slots_chosen += o.stats.slots_chosen;
                sum.requests_done += o.stats.requests_done;
                sum.crashes += o.stats.crashes;
                sum.partitions += o.stats.partitions;
                sum.snapshots_installed += o.stats.snapshots_installed;
                sum.leaders_elected += o.stats.leaders_elected;
                sum.stable_leader_changes += o.stats.stable_leader_changes;
                sum.stable_checked += o.stats.stable_checked;
                sum.wipes += o.stats.wipes;
                sum.rejoins += o.stats.rejoins;
                sum.sync_failures += o.stats.sync_failures;
                sum.writes_lost += o.stats.writes_lost;
                if o.ok() {
                    sum.liveness_ticks_max_seen =
                        sum.liveness_ticks_max_seen.max(o.stats.liveness_ticks);
                } else {
                    sum.failures.push(o);
                }
            });
        }
    });
    let mut sum = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    sum.failures.sort_by_key(|o| o.seed);
    sum.elapsed = began.elapsed();
    sum
}

/// Threads to use: what the machine offers, at most `cap`.
pub fn default_threads(cap: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(cap).max(1)
}
