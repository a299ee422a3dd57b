//! `paxos-cluster` over DPDK net_memif (needs the `dpdk` feature, DPDK installed and root for
//! /var/run/dpdk): one process per replica in a full memif mesh, and all replicas in one
//! process; and over net_af_packet / net_af_xdp on veth pairs in a namespace it creates.
//! Bounded; paxos-cluster kills its children and removes sockets, runtime dirs, namespace.
#![cfg(feature = "dpdk")]

mod common;

use std::process::Command;
use std::time::Duration;

const CLUSTER: &str = env!("CARGO_BIN_EXE_paxos-cluster");

/// Runs the cluster, checks the summary line, returns (stdout, stderr).
fn check(args: &[&str]) -> (String, String) {
    let out = common::run_bounded(Command::new(CLUSTER).args(args), Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout.lines().find(|l| l.contains("ops/s")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("(0 errors"), "{line}");
    assert!(!line.contains(": 0 ops"), "{line}");
    (stdout, stderr)
}

#[test]
fn memif_mesh_and_single_process() {
    let common =
        ["--transport", "memif", "--duration", "1", "--warmup", "0.3", "--outstanding", "4"];
    check(&common);
    let mut sp = common.to_vec();
    sp.push("--single-process");
    check(&sp);
}

/// `--placement leader`: the replica that leads moves its lcore to the last CPU (and says so
/// in its log); the cluster still commits.
#[test]
fn memif_leader_placement() {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    if ncpu < 2 {
        eprintln!("skipped: --placement leader needs 2 CPUs, this machine has {ncpu}");
        return;
    }
    let args = [
        "--transport",
        "memif",
        "--duration",
        "1",
        "--warmup",
        "0.3",
        "--outstanding",
        "4",
        "--placement",
        "leader",
        "--keep",
    ];
    let (stdout, stderr) = check(&args);
    let kept = format!("{stdout}{stderr}")
        .lines()
        .find_map(|l| l.split("kept ").nth(1).map(|d| d.trim().to_string()))
        .unwrap_or_else(|| panic!("no kept directory named: {stdout}{stderr}"));
    let want = format!("leading: this lcore now runs on CPU(s) {}", ncpu - 1);
    let logs: String = (0..3)
        .map(|i| std::fs::read_to_string(format!("{kept}/node-{i}.log")).unwrap_or_default())
        .collect();
    let _ = std::fs::remove_dir_all(&kept);
    assert!(logs.contains(&want), "no replica logged {want:?}:\n{logs}");
}

/// `--transport af_packet` and `af_xdp`: one process per replica on veth pairs joined by a
/// bridge, in a network namespace that paxos-cluster creates and deletes; both commit and
/// exit cleanly (af_xdp's PMD keeps its fill-ring mbufs at close, which must not fail the
/// shutdown).
#[test]
fn veth_af_packet_and_af_xdp() {
    for t in ["af_packet", "af_xdp"] {
        let args = ["--transport", t, "--duration", "1", "--warmup", "0.3", "--outstanding", "4"];
        let (stdout, _) = check(&args);
        assert!(stdout.contains(&format!("(net_{t})")), "{t}: ports not on net_{t}:\n{stdout}");
    }
}
