//! Multi-process clusters over kernel UDP, from the built binaries: 3 `paxos-node`
//! processes and a `paxos-client` running a KV workload with a history; then the replicas
//! are stopped with SIGTERM and must exit cleanly with their final counters. Also
//! `paxos-cluster` end to end. Every child is killed if the test fails (bounded waits).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
mod common;

use common::run_bounded;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

const NODE: &str = env!("CARGO_BIN_EXE_paxos-node");
const CLIENT: &str = env!("CARGO_BIN_EXE_paxos-client");
const CLUSTER: &str = env!("CARGO_BIN_EXE_paxos-cluster");

/// Kills the child (SIGKILL) if it is still running when dropped.
struct Guard(Option<Child>);

impl Guard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let c = self.0.as_mut()?;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.0 = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("apps-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cluster_file(dir: &TempDir, ip_base: u8, base_port: u16) -> PathBuf {
    let mut s = format!(
        "[cluster]\ngroups = 2\nbase_port = {base_port}\n\
         election_timeout_min_ticks = 300\nelection_timeout_max_ticks = 600\n\n"
    );
    for i in 0..3u8 {
        s.push_str(&format!("[[member]]\nid = {i}\nip = \"127.0.0.{}\"\n\n", ip_base + i));
    }
    let p = dir.path("cluster.toml");
    std::fs::write(&p, s).unwrap();
    p
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn three_nodes_and_a_client_over_udp() {
    let dir = TempDir::new("udp");
    let base_port = 30_000 + (std::process::id() % 10_000) as u16 * 2;
    let cfg = cluster_file(&dir, 21, base_port);
    let mut nodes: Vec<Guard> = (0..3)
        .map(|i| {
            let log = std::fs::File::create(dir.path(&format!("node-{i}.log"))).unwrap();
            let child = Command::new(NODE)
                .args(["--config", cfg.to_str().unwrap(), "--id", &i.to_string()])
                .args(["--transport", "udp", "--idle", "yield", "--stats-interval", "0.5"])
                .args(["--storage", "memory"])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            Guard(Some(child))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (summary, history) = (dir.path("summary.json"), dir.path("history.jsonl"));
    let out = run_bounded(
        Command::new(CLIENT).args(["--config", cfg.to_str().unwrap(), "--transport", "udp"]).args(
            [
                "--clients",
                "2",
                "--outstanding",
                "4",
                "--duration",
                "1.5",
                "--warmup",
                "0.5",
                "--keys",
                "50",
                "--value-bytes",
                "24",
                "--read-ratio",
                "0.4",
                "--cas-ratio",
                "0.2",
                "--json",
                summary.to_str().unwrap(),
                "--history",
                history.to_str().unwrap(),
                "--csv",
                dir.path("r.csv").to_str().unwrap(),
                "--interval-log",
                dir.path("l.hlog").to_str().unwrap(),
            ],
        ),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ops/s"), "{stdout}");

    let s = &json_lines(&summary)[0];
    assert!(s["ops"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["errors"].as_u64(), Some(0), "{s}");
    assert!(s["latency_us"]["p50"].as_f64().unwrap() > 0.0, "{s}");
    let csv = std::fs::read_to_string(dir.path("r.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(std::fs::read_to_string(dir.path("l.hlog")).unwrap().contains("Tag=latency"));

    // History sanity: every ok get returns null or a value some put/cas wrote; at most one
    // operation outstanding per logical client.
    let ops = json_lines(&history);
    assert!(ops.len() as u64 >= s["ops"].as_u64().unwrap());
    let written: HashSet<String> = ops
        .iter()
        .filter(|o| o["op"] == "put" || o["op"] == "cas")
        .map(|o| o["value"].as_str().unwrap().to_string())
        .collect();
    let mut ok_gets = 0;
    let mut last_end: std::collections::HashMap<u64, u64> = Default::default();
    for o in &ops {
        let client = o["client"].as_u64().unwrap();
        let start = o["start_ns"].as_u64().unwrap();
        if let Some(prev) = last_end.get(&client) {
            assert!(start >= *prev, "client {client} overlapped: {o}");
        }
        if let Some(end) = o["end_ns"].as_u64() {
            last_end.insert(client, end);
        }
        if o["op"] == "get" && o["status"] == "ok" {
            ok_gets += 1;
            let r = &o["result"];
            assert!(r.is_null() || written.contains(r.as_str().unwrap()), "get read {r}: {o}");
        }
    }
    assert!(ok_gets > 0);

    // Clean shutdown on SIGTERM, with final counters.
    for n in &nodes {
        Command::new("kill").args(["-TERM", &n.pid().to_string()]).status().unwrap();
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        let st = n.wait_until(Instant::now() + Duration::from_secs(10)).expect("node hung");
        let log = std::fs::read_to_string(dir.path(&format!("node-{i}.log"))).unwrap();
        assert!(st.success(), "node {i}: {st}\n{log}");
        assert_eq!(log.lines().filter(|l| l.starts_with("final node=")).count(), 2, "{log}");
        assert!(log.contains("stats node="), "{log}");
    }
}

#[test]
fn paxos_cluster_runs_a_udp_benchmark_and_cleans_up() {
    let dir = TempDir::new("cluster");
    let out = dir.path("out");
    let base_port = 40_000 + (std::process::id() % 10_000) as u16 * 2;
    let res = run_bounded(
        Command::new(CLUSTER).args([
            "--transport",
            "udp",
            "--replicas",
            "3",
            "--duration",
            "1",
            "--warmup",
            "0.3",
            "--outstanding",
            "4",
            "--history",
            "--base-port",
            &base_port.to_string(),
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&res.stderr));
    assert!(stdout.contains("ops/s") && stdout.contains("final node=2"), "{stdout}");
    let s = &json_lines(&out.join("summary.json"))[0];
    assert!(s["ops"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["errors"].as_u64(), Some(0), "{s}");
    for f in ["results.csv", "latency.hlog", "history.jsonl", "node-0.log", "client.log"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
}
