//! `paxos-node` with worker lcores: three members in one process, two groups, each group on
//! the worker lcore the cluster file names (`lcores = [2, 1]`: group 0 on lcore 2, group 1 on
//! lcore 1), each lcore with its own queue of a `net_ring` vdev. Both groups must elect a
//! leader, the main lcore must print stats, and SIGTERM must stop the lanes and shut down
//! cleanly with the per-lane and per-queue final lines. (Commands end to end over two lanes:
//! `dataplane/tests/dpdk_lanes.rs`.)
#![cfg(feature = "dpdk")]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NODE: &str = env!("CARGO_BIN_EXE_paxos-node");

const CLUSTER: &str = r#"
[cluster]
groups = 2
base_port = 7300
election_timeout_min_ticks = 500
election_timeout_max_ticks = 1000

[[member]]
id = 0
ip = "10.78.0.1"
lcores = [2, 1]

[[member]]
id = 1
ip = "10.78.0.2"
lcores = [2, 1]

[[member]]
id = 2
ip = "10.78.0.3"
lcores = [2, 1]
"#;

#[test]
fn two_groups_on_two_worker_lcores() {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("node-lanes-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, CLUSTER).unwrap();
    let prefix = format!("node-lanes-{pid}");
    let mut child = Command::new(NODE)
        .args([
            &format!("--file-prefix={prefix}"),
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--lcores=0@(0-1),1@(0-1),2@(0-1)",
            "--log-level=*:warning",
            "--no-telemetry",
            "--vdev=net_ring0",
            "--",
            "--storage",
            "memory",
            "--config",
            cfg.to_str().unwrap(),
            "--id",
            "0,1,2",
            "--transport",
            "dpdk",
            "--idle",
            "yield",
            "--stats-interval",
            "0.3",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child_pid = child.id().to_string();
    let kill = |sig: &str| {
        let _ = Command::new("kill").args([sig, &child_pid]).status();
    };
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // Wait for a leader in each group (stats lines from the main lcore).
    let began = Instant::now();
    let mut out = Vec::new();
    let mut leaders = [false; 2];
    while !(leaders[0] && leaders[1]) {
        if began.elapsed() > Duration::from_secs(30) {
            kill("-KILL");
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
            panic!("no leaders: {}\n{}", out.join("\n"), err_reader.join().unwrap());
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                for (g, seen) in leaders.iter_mut().enumerate() {
                    if line.starts_with("stats node=")
                        && line.contains(&format!(" group={g} leader=yes"))
                    {
                        *seen = true;
                    }
                }
                out.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                panic!(
                    "paxos-node exited ({status}): {}\n{}",
                    out.join("\n"),
                    err_reader.join().unwrap()
                );
            }
        }
    }
    kill("-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            kill("-KILL");
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    out.extend(rx.try_iter());
    let err = err_reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let all = out.join("\n");
    assert!(status.success(), "{status}\n{all}\n{err}");
    assert!(!std::path::Path::new(&format!("/var/run/dpdk/{prefix}")).exists());

    // The plan from the cluster file, and each lane's own queue.
    assert!(err.contains("lane 0: lcore 2 queue 0 serves m0/g0 m1/g0 m2/g0"), "{err}");
    assert!(err.contains("lane 1: lcore 1 queue 1 serves m0/g1 m1/g1 m2/g1"), "{err}");
    assert!(err.contains("2 lane(s): no rte_flow"), "{err}");
    assert!(!err.contains("stopped on its own"), "{err}");
    for needle in [
        "stats lane=0 lcore=2 queue=0",
        "final lane=0 lcore=2 queue=0",
        "final lane=1 lcore=1 queue=1",
        "final port=0 queue=1",
        "final node=2 group=1",
    ] {
        assert!(all.contains(needle), "{needle:?} missing:\n{all}");
    }
    // Members of a group reach each other inside their lane: nothing is handed over.
    for line in out.iter().filter(|l| l.starts_with("final lane=")) {
        assert!(line.contains("handed_out=0 handed_in=0 handoff_full=0"), "{line}");
    }
}
