//! `paxos-cluster --fault`: replicas killed and restarted during the measured run, over
//! memif (the restarted process's memif peers must reconnect to it, and it to them) and over
//! kernel UDP; every replica killed at once; a wiped replica; and a bad `--fault` refused
//! before anything starts. Bounded; paxos-cluster kills its children and removes sockets,
//! runtime dirs and its work directory.
//!
//! With durable storage (issue 10's acceptance tests) every run records the client's history
//! and reads every key back afterwards (`--verify`): no acknowledged write may be lost, the
//! run must go on after the faults, and every replica, restarted or not, must end with the
//! same KV state (the `kv_digest` of the final counters). With memory storage a restarted
//! replica has lost its acceptor state and rejoins without a vote; when every replica was
//! killed nothing may be decided afterwards (there is nobody left who knows the log).

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

const CLUSTER: &str = env!("CARGO_BIN_EXE_paxos-cluster");

/// One cluster at a time: they share 2 vCPUs, and the schedule is timed.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs paxos-cluster with `args`; returns (success, stdout, stderr).
fn cluster(args: &[&str]) -> (bool, String, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = common::run_bounded(Command::new(CLUSTER).args(args), Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stdout, stderr)
}

/// The `second N: K ok, ...` lines as (N, K, timeouts).
fn seconds(stdout: &str) -> Vec<(u32, u64, u64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("second ")?;
            let (n, rest) = rest.split_once(": ")?;
            let ok = rest.split(" ok").next()?.parse().ok()?;
            let timeouts = rest.split(", ").find_map(|p| p.strip_suffix(" timeouts"))?;
            Some((n.parse().ok()?, ok, timeouts.parse().ok()?))
        })
        .collect()
}

/// The replica id in the fault line `fault +T kill follower -> replica N (pid ...`.
fn hit(stdout: &str, what: &str) -> u16 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("fault +") && l.contains(what))
        .unwrap_or_else(|| panic!("no fault line with {what:?}:\n{stdout}"));
    let id = line.split("-> replica ").nth(1).and_then(|r| r.split(' ').next());
    id.and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Kill a follower at +1 s, restart it at +1.5 s; the run must end well, commit in every
/// second after the restart, and the restarted instance must have received traffic.
fn kill_and_restart_follower(transport: &str) -> String {
    let args = [
        "--transport",
        transport,
        "--storage",
        "memory",
        "--duration",
        "5",
        "--warmup",
        "0.3",
        "--outstanding",
        "1",
        "--fault",
        "1:kill:follower",
        "--fault",
        "1.5:restart:follower",
    ];
    let (ok, stdout, stderr) = cluster(&args);
    assert!(ok, "{stdout}\n{stderr}");
    let killed = hit(&stdout, "kill follower");
    assert_eq!(hit(&stdout, "restart follower"), killed, "{stdout}");
    assert!(stdout.contains(" storage memory"), "the label names the storage mode:\n{stdout}");
    assert!(stdout.contains("unscheduled exits: none"), "{stdout}");
    let secs = seconds(&stdout);
    assert_eq!(secs.len(), 5, "one line per full second:\n{stdout}");
    for &(n, ok, _) in &secs[2..] {
        assert!(ok > 0, "second {n} (after the restart) completed nothing:\n{stdout}");
    }
    // The restarted instance's final counters (it ran to the end and heard its peers).
    let name = format!("replica {killed} (started 2 times): final node={killed} ");
    let fin = stdout.lines().find(|l| l.contains(&name)).unwrap_or_else(|| panic!("{stdout}"));
    let rx: u64 = fin
        .split(' ')
        .find_map(|kv| kv.strip_prefix("rx_packets="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(rx > 0, "the restarted replica received nothing: {fin}");
    stdout
}

/// memif: the restarted replica is the memif server of the client's link to it and of
/// replica 2's (`follower` is 0 or 1 in a 3-replica cluster: the lowest id that does not
/// lead). DPDK's net_memif never reconnects a client end by itself; the client ends must
/// (dataplane::dpdk::relink) and say so in their logs, which paxos-cluster sums up. (The
/// restarted node's own `all DPDK links up` line is in the summary too, but it is checked
/// once a second by a thread that a loaded machine starves: not asserted.)
#[cfg(feature = "dpdk")]
#[test]
fn memif_follower_killed_and_restarted() {
    let stdout = kill_and_restart_follower("memif");
    let killed = hit(&stdout, "kill follower");
    assert!(killed < 2, "{stdout}");
    for end in ["client", "replica 2"] {
        let want = format!("{end}: port {killed} (net_memif_r{killed}): link up again");
        assert!(
            stdout.contains(&want),
            "the {end} did not reconnect to the restarted replica {killed}:\n{stdout}"
        );
    }
}

#[test]
fn udp_follower_killed_and_restarted() {
    kill_and_restart_follower("udp");
}

/// Memory storage, every replica killed: the restarted replicas have lost the log, all
/// rejoin without a vote, and none answers another's recovery query as a voter, so nothing
/// is decided after the restart (amnesiac acceptors must not invent a log); the client keeps
/// retrying and finishes its run.
#[cfg(feature = "dpdk")]
#[test]
fn memif_memory_all_killed_decides_nothing_afterwards() {
    let args = [
        "--transport",
        "memif",
        "--storage",
        "memory",
        "--duration",
        "3",
        "--warmup",
        "0.3",
        "--outstanding",
        "1",
        "--timeout-ms",
        "400",
        "--fault",
        "1:kill:all",
        "--fault",
        "1.5:restart:all",
    ];
    let (ok, stdout, stderr) = cluster(&args);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("restart all -> replica 0 (pid"), "{stdout}");
    assert!(stdout.contains("--rejoin"), "memory storage restarts rejoin:\n{stdout}");
    let secs = seconds(&stdout);
    assert_eq!(secs.len(), 3, "{stdout}");
    assert!(secs[0].1 > 0, "nothing completed before the faults:\n{stdout}");
    assert_eq!(secs[2].1, 0, "a cluster of amnesiacs decided something:\n{stdout}");
    assert!(stdout.contains("unscheduled exits: none"), "{stdout}");
}

/// A durable run with `faults`, its history checked (`--verify`); returns stdout. Asserts:
/// exit 0, no acknowledged write lost, every key read back, commits in the last second,
/// every replica's final KV digest equal.
fn durable_run(transport: &str, faults: &[&str]) -> String {
    durable_run_with(transport, &[], faults)
}

/// `durable_run` with more arguments for paxos-cluster.
fn durable_run_with(transport: &str, extra: &[&str], faults: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!(
        "apps-durable-{}-{transport}-{}{}",
        std::process::id(),
        faults.join("_").replace([':', '.'], ""),
        extra.join("").replace('-', "")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.display().to_string();
    let mut args = vec![
        "--transport",
        transport,
        "--storage",
        "durable",
        "--duration",
        "5",
        "--warmup",
        "0.3",
        "--outstanding",
        "4",
        "--keys",
        "300",
        "--timeout-ms",
        "500",
        "--out",
        &d,
        "--history",
        "--verify",
    ];
    for f in faults {
        args.extend(["--fault", f]);
    }
    args.extend(extra);
    let (ok, stdout, stderr) = cluster(&args);
    // Every operation of the run, not only the final reads: linearizable key by key.
    let history = apps::check::read_history(&dir.join("history.jsonl"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{stdout}\n{stderr}");
    let report = apps::check::check(&history.expect("history.jsonl"), apps::check::DEFAULT_BUDGET);
    assert!(report.operations > 1000, "{} operations", report.operations);
    assert!(
        report.anomalies.is_empty() && report.unknown.is_empty(),
        "not linearizable: {:?}\nunknown keys: {:?}\n{stdout}",
        report.anomalies,
        report.unknown
    );
    assert!(stdout.contains(" storage durable"), "the label names the storage mode:\n{stdout}");
    assert!(stdout.contains("unscheduled exits: none"), "{stdout}");
    let verify = stdout.lines().find(|l| l.contains("verify: ")).unwrap_or_else(|| {
        panic!("no verify line:\n{stdout}");
    });
    assert!(verify.contains("(0 unanswered)") && verify.ends_with(" 0 lost"), "{verify}");
    let acked: u64 = verify
        .split(", ")
        .find_map(|p| p.strip_suffix(" acknowledged writes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(acked > 1000, "too few acknowledged writes to mean anything: {verify}");
    let secs = seconds(&stdout);
    assert_eq!(secs.len(), 5, "{stdout}");
    assert!(secs[4].1 > 0, "the run did not go on after the faults:\n{stdout}");
    // Every replica (its last instance) ends with the same KV state.
    let digests: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(": final node="))
        .filter_map(|l| l.split(' ').find_map(|kv| kv.strip_prefix("kv_digest=")))
        .collect();
    assert_eq!(digests.len(), 3, "{stdout}");
    assert!(digests.iter().all(|d| *d == digests[0]), "replicas diverged: {digests:?}\n{stdout}");
    stdout
}

/// Durable storage, kill -9 of a follower, restarted on its data directory.
#[cfg(feature = "dpdk")]
#[test]
fn durable_memif_follower_killed_and_restarted() {
    durable_run("memif", &["1:kill:follower", "1.5:restart:follower"]);
}

/// Durable storage, kill -9 of the leader, restarted on its data directory.
#[cfg(feature = "dpdk")]
#[test]
fn durable_memif_leader_killed_and_restarted() {
    durable_run("memif", &["1:kill:leader", "1.5:restart:leader"]);
}

/// Durable storage, every replica killed at once and restarted: nothing acknowledged is
/// lost, and the cluster goes on.
#[cfg(feature = "dpdk")]
#[test]
fn durable_memif_all_killed_and_restarted() {
    let stdout = durable_run("memif", &["1:kill:all", "1.5:restart:all"]);
    assert!(stdout.contains("kill all -> replica 0 (pid"), "{stdout}");
}

/// Durable storage, a follower's data directory wiped: it comes back with --rejoin, votes
/// again only once that is safe, and ends with the others' state.
#[cfg(feature = "dpdk")]
#[test]
fn durable_memif_follower_wiped_rejoins() {
    let stdout = durable_run("memif", &["1:kill:follower", "1.5:wipe:follower"]);
    let wiped = hit(&stdout, "wipe follower");
    let fin = stdout
        .lines()
        .find(|l| l.contains(&format!(": final node={wiped} ")))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(fin.contains(" rejoins=1"), "the wiped replica never voted again: {fin}");
}

/// Durable storage with a KV snapshot every 300 slots: a follower dead for 2 s comes back
/// from its own snapshot below the others' trim point, fetches a snapshot from a peer over
/// memif, installs it and catches up.
#[cfg(feature = "dpdk")]
#[test]
fn durable_memif_follower_behind_the_trim_point_fetches_a_snapshot() {
    let stdout = durable_run_with(
        "memif",
        &["--snapshot-every", "300"],
        &["1:kill:follower", "3:restart:follower"],
    );
    let back = hit(&stdout, "restart follower");
    let fin = stdout
        .lines()
        .find(|l| l.contains(&format!(": final node={back} ")))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(fin.contains(" snapshots_installed=1"), "no snapshot fetched: {fin}");
}

/// Durable storage with the fdatasyncs on a thread of each log's own (`--sync-on thread`):
/// every replica killed at once and restarted, nothing acknowledged lost.
#[cfg(feature = "dpdk")]
#[test]
fn durable_memif_sync_thread_all_killed_and_restarted() {
    let stdout =
        durable_run_with("memif", &["--sync-on", "thread"], &["1:kill:all", "1.5:restart:all"]);
    assert!(stdout.contains("(sync on a thread)"), "{stdout}");
    let fin: Vec<&str> = stdout.lines().filter(|l| l.contains(": final node=")).collect();
    assert!(fin.iter().all(|l| l.contains(" sync_on=thread ")), "{fin:?}");
}

#[test]
fn durable_udp_sync_thread_leader_killed_and_restarted() {
    durable_run_with("udp", &["--sync-on", "thread"], &["1:kill:leader", "1.5:restart:leader"]);
}

/// The same over kernel UDP: follower, leader, everyone.
#[test]
fn durable_udp_follower_killed_and_restarted() {
    durable_run("udp", &["1:kill:follower", "1.5:restart:follower"]);
}

#[test]
fn durable_udp_leader_killed_and_restarted() {
    durable_run("udp", &["1:kill:leader", "1.5:restart:leader"]);
}

#[test]
fn durable_udp_all_killed_and_restarted() {
    durable_run("udp", &["1:kill:all", "1.5:restart:all"]);
}

/// A bad `--fault` is a usage error (exit code 2) naming the flag and the bad part, before
/// anything starts.
#[test]
fn bad_fault_is_refused_at_parse_time() {
    for (fault, want) in [
        ("3:explode:leader", "--fault 3:explode:leader: unknown action \"explode\" (kill, restart, stop, cont, wipe)"),
        ("1:restart:1", "--fault 1:restart:1: replica 1 is running at +1.00s"),
        ("1:cont:follower", "--fault 1:cont:follower: no earlier stop of follower"),
        ("3:kill:9", "--fault 3:kill:9: no member 9"),
    ] {
        let out = common::run_bounded(
            Command::new(CLUSTER).args(["--transport", "udp", "--fault", fault]),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{fault}: {stderr}");
        assert!(stderr.contains(want), "{fault}: {stderr}");
        assert!(out.stdout.is_empty(), "{fault}: something ran");
    }
}
