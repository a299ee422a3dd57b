//! Liveness and fault-specific scenarios. Paxos guarantees progress only when a phase-1 and
//! a phase-2 quorum can talk to a single proposer for long enough (Paxos Made Simple §2.4;
//! FLP rules out more), so each test heals or bounds the faults and then demands that every
//! request issued is delivered at every live learner within `liveness_ticks_max`.

mod common;

use paxos_core::Storage;
use paxos_sim::{FaultLevel, Options, SimConfig, Simulation};

/// No faults at all: the cluster elects a leader and delivers everything quickly, and the
/// liveness phase (which here only waits for in-flight requests) converges within 50 ticks.
#[test]
fn no_faults_commits_everything_quickly() {
    let opts = Options {
        faults: FaultLevel::None,
        fault_ticks: 200,
        liveness_ticks_max: 50,
        ..Options::default()
    };
    let sum = common::all_pass(0, 150, &opts);
    assert!(sum.liveness_ticks_max_seen <= 50);
    // Every seed has at least one client with think time <= 10 ticks over 200 ticks.
    assert!(sum.requests_done >= 150 * 10, "only {} requests done", sum.requests_done);
    assert_eq!(sum.crashes + sum.partitions, 0);
}

/// Crashes and restarts only (a reliable network): acceptors recover their promises and
/// accepted values from storage (Paxos Made Simple §2.2 and §2.5: an acceptor remembers,
/// in stable storage, what it promised and accepted across failures; a proposer the highest
/// ballot it used), learners and leaders rebuild volatile state.
#[test]
fn crashes_only() {
    let opts = Options { faults: FaultLevel::CrashOnly, ..Options::default() };
    let sum = common::all_pass(0, 200, &opts);
    assert!(sum.crashes > 200, "only {} crashes", sum.crashes);
}

/// A permanent minority partition: the majority side (a phase-1 and a phase-2 quorum) keeps
/// deciding, the cut-off minority never disagrees with it, and only the majority is required
/// to converge.
#[test]
fn permanent_minority_partition() {
    for seed in 0..40u64 {
        let n: u16 = [3, 5, 7][seed as usize % 3];
        // No wiped disks: a member that lost its state waits for an answer from every other
        // acceptor and proposer before it votes again, and the minority never answers.
        let opts = Options {
            nodes: Some(n),
            faults: FaultLevel::Light,
            mixed_roles: false,
            wipe_ppm: Some(0),
            ..Options::default()
        };
        let mut cfg = SimConfig::draw(seed, &opts);
        let majority = usize::from(n) / 2 + 1;
        cfg.core.phase1_quorum = majority;
        cfg.core.phase2_quorum = majority;
        let mut sim = Simulation::new(cfg);
        let minority: Vec<usize> = (majority..usize::from(n)).collect();
        for &m in &minority {
            for other in 0..majority {
                sim.network().cut(m, other);
            }
            sim.exempt_from_liveness(m);
        }
        let o = sim.run();
        common::passes(&o, &opts);
        assert!(o.stats.requests_done > 0, "seed {seed}: the majority decided nothing");
    }
}

/// Log trim and snapshot transfer. Trim follows what a *majority* of learners made durable,
/// so a learner that is cut off does not hold it back (trim passes it); when it returns it
/// gets `Trimmed`, fetches a snapshot from a peer over the network (in chunks), installs it
/// (checked against the chosen log) and catches up. A learner that crashes and restarts with
/// an empty application goes the same way.
#[test]
fn trim_and_snapshot_transfer() {
    for seed in 0..20u64 {
        let opts = Options {
            nodes: Some(3),
            q1: Some(2),
            q2: Some(2),
            faults: FaultLevel::None,
            ..Options::default()
        };
        let mut cfg = SimConfig::draw(seed, &opts);
        cfg.core.applied_report_ticks = 2;
        cfg.checkpoint_every_ticks = 1;
        cfg.snapshot_pad_max = 5000;
        cfg.clients = 4;
        cfg.think_ticks_max = 0;
        let mut sim = Simulation::new(cfg);
        let trimmed_low = |sim: &Simulation| {
            (0..3).filter_map(|i| sim.node(i)).map(|n| n.storage().low().0).max().unwrap_or(0)
        };

        sim.run_ticks(100).unwrap();
        assert!(trimmed_low(&sim) > 0, "seed {seed}: no trim with every learner reporting");

        // A cut-off learner does not stall trim.
        sim.network().isolate(2);
        let reported = sim.app(2).next;
        sim.run_ticks(150).unwrap();
        assert!(sim.chosen_len() > reported + 10, "seed {seed}: no progress while n2 was cut off");
        assert!(trimmed_low(&sim) > reported, "seed {seed}: trim waited for a cut-off learner");
        let peers_before = sim.stats().snapshots_from_peers;
        sim.network().recover();
        sim.run_ticks(80).unwrap();
        assert!(
            sim.stats().snapshots_from_peers > peers_before,
            "seed {seed}: the returning learner did not fetch a snapshot"
        );
        assert!(sim.app(2).next > reported);

        // Crash a learner; restart it with an empty application.
        let low_before = trimmed_low(&sim);
        sim.crash(2);
        sim.run_ticks(30).unwrap();
        sim.restart_with(2, false);
        let needed_before = sim.stats().snapshots_needed;
        sim.run_ticks(80).unwrap();
        assert!(
            sim.stats().snapshots_needed > needed_before,
            "seed {seed}: the restarted learner never needed a snapshot"
        );
        sim.liveness().unwrap_or_else(|f| panic!("seed {seed}: {f}\n{}", f.trace_tail.join("\n")));
        assert!(sim.app(2).next >= low_before);
    }
}

/// The liveness bound grows with how far behind a learner is: a long fault phase leaves a
/// learner thousands of slots behind, more than the base bound of 800 ticks allows for
/// (this seed failed with a fixed bound).
#[test]
fn liveness_bound_scales_with_the_lag() {
    let opts = Options { fault_ticks: 3000, ..Options::default() };
    common::passes(&Simulation::run_seed(400_447, &opts), &opts);
}
