//! Determinism (TigerBeetle VOPR / FoundationDB simulation): a seed is a complete description
//! of a run. Running it twice gives the same trace, line for line (compared by the running
//! hash over every line), and different seeds give different runs.

mod common;

use paxos_sim::swarm::default_threads;
use paxos_sim::{run_seeds, FaultLevel, Options, Progress, Simulation};

#[test]
fn same_seed_same_trace() {
    for faults in [FaultLevel::Heavy, FaultLevel::Swarm, FaultLevel::Churn] {
        let opts = Options { faults, ..Options::default() };
        for seed in [0u64, 1, 42, 977] {
            let a = Simulation::run_seed(seed, &opts);
            let b = Simulation::run_seed(seed, &opts);
            assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} {faults:?}: traces differ");
            assert_eq!(a.trace_lines, b.trace_lines);
            assert_eq!(a.stats, b.stats);
            assert_eq!(a.failure.map(|f| f.to_string()), b.failure.map(|f| f.to_string()));
        }
    }
}

#[test]
fn different_seeds_different_traces() {
    let opts = Options {
        nodes: Some(3),
        q1: Some(2),
        q2: Some(2),
        faults: FaultLevel::Light,
        ..Options::default()
    };
    let mut hashes: Vec<u64> = (0..50).map(|s| Simulation::run_seed(s, &opts).trace_hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 50, "two seeds produced the same trace");
}

/// Threads only decide which seed runs where: the failures found are the same either way.
#[test]
fn threads_do_not_change_results() {
    let opts = Options { faults: FaultLevel::Churn, ..Options::default() };
    let bugs = paxos_core::Bugs { leader_ignores_accepted: true, ..Default::default() };
    let opts = Options { bugs, fault_ticks: 150, ..opts };
    let one = run_seeds(0, 24, &opts, 1, 0, &Progress::default());
    let many = run_seeds(0, 24, &opts, default_threads(4), 0, &Progress::default());
    let key = |s: &paxos_sim::Summary| {
        s.failures.iter().map(|o| (o.seed, o.trace_hash)).collect::<Vec<_>>()
    };
    assert_eq!(key(&one), key(&many));
    assert_eq!(one.slots_chosen, many.slots_chosen);
}
