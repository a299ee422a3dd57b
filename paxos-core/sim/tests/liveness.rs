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
        let opts = Options {
            nodes: Some(n),
            faults: FaultLevel::Light,
            mixed_roles: false,
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

/// Log trim and snapshot install. Trim needs every learner to have *reported* applied, so a
/// learner that is cut off stalls trim for everyone (checked below: the acceptors' low
/// stays at or below what it last reported). The snapshot path is exercised the other way:
/// a learner crashes after its report let trim advance, restarts with an empty application
/// (its learner starts at slot 0), asks the acceptors to repeat, gets `Trimmed`, emits
/// `SnapshotNeeded`, and installs a peer's state (checked against the chosen log).
#[test]
fn trim_and_snapshot_install() {
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
        cfg.clients = 4;
        cfg.think_ticks_max = 0;
        let mut sim = Simulation::new(cfg);
        let trimmed_low = |sim: &Simulation| {
            (0..3).filter_map(|i| sim.node(i)).map(|n| n.storage().low().0).max().unwrap_or(0)
        };

        sim.run_ticks(100).unwrap();
        assert!(trimmed_low(&sim) > 0, "seed {seed}: no trim with every learner reporting");

        // A cut-off learner stalls trim.
        sim.network().isolate(2);
        let reported = sim.app(2).next;
        sim.run_ticks(100).unwrap();
        assert!(sim.chosen_len() > reported + 10, "seed {seed}: no progress while n2 was cut off");
        assert!(
            trimmed_low(&sim) <= reported,
            "seed {seed}: trim passed a learner that never reported it"
        );
        sim.network().recover();
        sim.run_ticks(60).unwrap();

        // Crash a learner whose report let trim advance; restart it empty.
        let low_before = trimmed_low(&sim);
        assert!(low_before > 0);
        sim.crash(2);
        sim.run_ticks(30).unwrap();
        sim.restart_with(2, false);
        let peers_before = sim.stats().snapshots_from_peers;
        sim.run_ticks(60).unwrap();
        assert!(
            sim.stats().snapshots_needed > 0,
            "seed {seed}: the restarted learner never needed a snapshot"
        );
        assert!(
            sim.stats().snapshots_from_peers > peers_before,
            "seed {seed}: no snapshot installed from a peer"
        );
        sim.liveness().unwrap_or_else(|f| panic!("seed {seed}: {f}\n{}", f.trace_tail.join("\n")));
        assert!(sim.app(2).next >= low_before);
    }
}
