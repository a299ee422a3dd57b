//! Helpers shared by the simulator's tests.
#![allow(dead_code)]

use paxos_sim::swarm::default_threads;
use paxos_sim::{run_seeds, Options, Outcome, Progress, Simulation, Summary};

/// Runs seeds `start..start + count` on up to two threads and fails the test with the full
/// report of the first failing seed (seed, config, trace tail, command to reproduce).
pub fn all_pass(start: u64, count: u64, opts: &Options) -> Summary {
    let sum = run_seeds(start, count, opts, default_threads(2), 1, &Progress::default());
    if let Some(f) = sum.failures.first() {
        panic!("{}\n{} of the seeds run failed", f.report(opts), sum.failures.len());
    }
    assert_eq!(sum.seeds, count);
    sum
}

/// Runs seeds in order until one fails with a *safety* violation; returns it, or None if
/// none did within `count` seeds.
pub fn first_safety_violation(start: u64, count: u64, opts: &Options) -> Option<Outcome> {
    (start..start + count)
        .map(|seed| Simulation::run_seed(seed, opts))
        .find(|o| o.failure.as_ref().is_some_and(|f| f.is_safety()))
}

/// Asserts one seed passes, printing its report otherwise.
pub fn passes(o: &Outcome, opts: &Options) {
    assert!(o.ok(), "{}", o.report(opts));
}
