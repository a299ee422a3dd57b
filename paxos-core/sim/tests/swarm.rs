//! The swarm: 1,600 seeds over cluster sizes 3, 5 and 7 with majority and flexible quorums,
//! each seed drawing its own fault mix (loss, duplication, delay and long tail, partitions,
//! crashes, pauses), core knobs, clients and flush mode — and a quarter of the drawn clusters
//! also mixed roles (acceptor-only, learner-only, ... members) — then healing and requiring
//! every request to be delivered at every learner within `liveness_ticks_max`.
//!
//! Properties checked on every delivery (see `paxos_sim::checker`):
//! - Paxos Made Simple §2.1 safety: only a proposed value is chosen (validity), only a single
//!   value is chosen per slot (agreement), a learner learns only chosen values.
//! - Paxos Made Moderately Complex: replicas decide the same command per slot (R1), a
//!   proposal is decided at most once, decisions are applied in slot order.
//! - Flexible Paxos (Howard, Malkhi, Spiegelman 2016): safety needs only that every phase-1
//!   quorum meets every phase-2 quorum (q1 + q2 > n), exercised with q1 != q2 below.

mod common;

use paxos_sim::{FaultLevel, Options, SyncMode};

fn opts(nodes: Option<u16>, q1: Option<usize>, q2: Option<usize>) -> Options {
    Options { nodes, q1, q2, faults: FaultLevel::Swarm, ..Options::default() }
}

/// 1,000 seeds: each draws n in {3, 5, 7}, and majority or a random intersecting (q1, q2).
#[test]
fn swarm_drawn_clusters() {
    let sum = common::all_pass(0, 1000, &opts(None, None, None));
    eprintln!(
        "swarm: {} seeds, {} slots, {} crashes, {} partitions, {} snapshots, slowest liveness {} ticks, {:.0} seeds/s",
        sum.seeds,
        sum.slots_chosen,
        sum.crashes,
        sum.partitions,
        sum.snapshots_installed,
        sum.liveness_ticks_max_seen,
        sum.seeds_per_second()
    );
    assert!(sum.crashes > 0 && sum.partitions > 0 && sum.snapshots_installed > 0);
}

/// Flexible Paxos with a large phase-1 and a small phase-2 quorum: n=5, q1=4, q2=2.
#[test]
fn swarm_flexible_5_4_2() {
    common::all_pass(10_000, 200, &opts(Some(5), Some(4), Some(2)));
}

/// Flexible Paxos: n=7, q1=5, q2=3.
#[test]
fn swarm_flexible_7_5_3() {
    common::all_pass(20_000, 200, &opts(Some(7), Some(5), Some(3)));
}

/// The extreme: n=3, q1=3 (every acceptor must promise), q2=1 (one accept chooses).
#[test]
fn swarm_flexible_3_3_1() {
    common::all_pass(30_000, 200, &opts(Some(3), Some(3), Some(1)));
}

/// What disks do: every crash also wipes the disk where that is survivable (the member comes
/// back empty and must rejoin before it votes), syncs fail now and then, and drivers sync
/// lazily, so crashes lose writes that were not synced (with a torn tail).
#[test]
fn swarm_disk_faults() {
    let opts = Options {
        faults: FaultLevel::Swarm,
        wipe_ppm: Some(1_000_000),
        sync: Some(SyncMode::Lazy(200_000)),
        ..Options::default()
    };
    let sum = common::all_pass(40_000, 300, &opts);
    eprintln!(
        "disk faults: {} seeds, {} crashes, {} wipes, {} rejoins, {} failed syncs, {} writes lost",
        sum.seeds, sum.crashes, sum.wipes, sum.rejoins, sum.sync_failures, sum.writes_lost
    );
    assert!(sum.wipes > 0 && sum.rejoins > 0 && sum.writes_lost > 0);
}

/// Asynchronous syncs (a driver whose storage syncs on a thread: `begin_sync`, completions
/// later, replies released by `poll_sync`), with every fault: crashes lose what no completed
/// sync covered, syncs fail at completion, disks are wiped.
#[test]
fn swarm_async_syncs() {
    let opts = Options {
        faults: FaultLevel::Swarm,
        wipe_ppm: Some(300_000),
        sync: Some(SyncMode::Async(200_000)),
        ..Options::default()
    };
    let sum = common::all_pass(60_000, 300, &opts);
    eprintln!(
        "async syncs: {} seeds, {} crashes, {} wipes, {} failed syncs, {} writes lost",
        sum.seeds, sum.crashes, sum.wipes, sum.sync_failures, sum.writes_lost
    );
    assert!(sum.crashes > 0 && sum.sync_failures > 0 && sum.writes_lost > 0);
}

/// Crashes only, with wiped disks and lazy syncs.
#[test]
fn crashes_with_wipes_and_lazy_syncs() {
    let opts = Options {
        faults: FaultLevel::CrashOnly,
        wipe_ppm: Some(1_000_000),
        sync: Some(SyncMode::Lazy(0)),
        ..Options::default()
    };
    let sum = common::all_pass(50_000, 300, &opts);
    assert!(sum.wipes > 0 && sum.rejoins > 0 && sum.sync_failures > 0);
}
