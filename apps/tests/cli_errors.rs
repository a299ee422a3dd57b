//! Bad arguments and bad cluster files: exit code 2 and a message naming the flag or field.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const NODE: &str = env!("CARGO_BIN_EXE_paxos-node");
const CLIENT: &str = env!("CARGO_BIN_EXE_paxos-client");
const CLUSTER: &str = env!("CARGO_BIN_EXE_paxos-cluster");

/// A per-test directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("apps-cli-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const GOOD: &str = "[cluster]\nbase_port = 31999\n\n[[member]]\nid = 0\nip = \"127.0.0.51\"\n\n\
                    [[member]]\nid = 1\nip = \"127.0.0.52\"\n";

/// Runs `bin args` (bounded: these must fail fast) and returns (exit code, stderr).
fn fails(bin: &str, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (st.code().unwrap_or(-1), err);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_usage(bin: &str, args: &[&str], needle: &str) {
    let (code, err) = fails(bin, args);
    assert_eq!(code, 2, "{bin} {args:?}: exit {code}, stderr: {err}");
    assert!(err.contains(needle), "{bin} {args:?}: stderr does not name {needle:?}: {err}");
}

#[test]
fn node_argument_errors() {
    let dir = Dir::new("node");
    let good = dir.file("good.toml", GOOD);
    let g = good.to_str().unwrap();
    assert_usage(NODE, &["--id", "0", "--transport", "udp"], "--config");
    assert_usage(NODE, &["--config", g, "--transport", "udp"], "--id");
    assert_usage(
        NODE,
        &["--config", "/nonexistent.toml", "--id", "0", "--transport", "udp"],
        "--config",
    );
    assert_usage(NODE, &["--config", g, "--id", "7", "--transport", "udp"], "--id 7");
    assert_usage(NODE, &["--config", g, "--id", "0", "--transport", "tcp"], "--transport");
    assert_usage(
        NODE,
        &["--config", g, "--id", "0", "--transport", "udp", "--idle", "nap"],
        "--idle",
    );
    assert_usage(
        NODE,
        &["--config", g, "--id", "0", "--transport", "udp", "--group", "3"],
        "--group 3",
    );
    assert_usage(
        NODE,
        &["--config", g, "--id", "0", "--transport", "udp", "--stats-interval", "-1"],
        "--stats-interval",
    );
    assert_usage(NODE, &["--config", g, "--id", "0,0", "--transport", "udp"], "--id 0");
    assert_usage(
        NODE,
        &["--config", g, "--id", "0", "--transport", "udp", "--leader-cpus", "1"],
        "--leader-cpus",
    );
    assert_usage(
        NODE,
        &["--config", g, "--id", "0", "--transport", "udp", "--leader-idle", "nap"],
        "--leader-idle",
    );
    let bad = dir.file("bad.toml", &GOOD.replace("base_port", "bsae_port"));
    assert_usage(
        NODE,
        &["--config", bad.to_str().unwrap(), "--id", "0", "--transport", "udp"],
        "bsae_port",
    );
    // Durable storage (the default) needs a data directory that holds this replica's
    // state: never an empty acceptor without an explicit flag.
    assert_usage(NODE, &["--config", g, "--id", "0", "--transport", "udp"], "--data-dir");
    let data = dir.0.join("data-0");
    let d = data.to_str().unwrap();
    let base = ["--config", g, "--id", "0", "--transport", "udp", "--data-dir", d];
    let (code, err) = fails(NODE, &base);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--init") && err.contains("--rejoin") && err.contains(d), "{err}");
    assert_usage(NODE, &[&base[..], &["--init", "--rejoin"]].concat(), "--rejoin");
    assert_usage(NODE, &[&base[..], &["--snapshot-every", "0"]].concat(), "--snapshot-every");
    // A data directory of another replica is refused.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("stray"), b"x").unwrap();
    assert_usage(NODE, &[&base[..], &["--init"]].concat(), "stray");
    let bad = dir.file(
        "quorum.toml",
        &format!("{GOOD}\n")
            .replace("[cluster]\n", "[cluster]\nphase1_quorum = 1\nphase2_quorum = 1\n"),
    );
    assert_usage(
        NODE,
        &["--config", bad.to_str().unwrap(), "--id", "0", "--transport", "udp"],
        "cluster.phase1_quorum",
    );
    if !cfg!(feature = "dpdk") {
        assert_usage(NODE, &["--config", g, "--id", "0", "--transport", "dpdk"], "dpdk");
    }
}

#[test]
fn client_argument_errors() {
    let dir = Dir::new("client");
    let good = dir.file("good.toml", GOOD);
    let g = good.to_str().unwrap();
    assert_usage(CLIENT, &["--transport", "udp"], "--config");
    assert_usage(CLIENT, &["--config", g, "--read-ratio", "2"], "--read-ratio");
    assert_usage(
        CLIENT,
        &["--config", g, "--read-ratio", "0.7", "--cas-ratio", "0.5"],
        "--cas-ratio",
    );
    assert_usage(CLIENT, &["--config", g, "--outstanding", "0"], "--outstanding");
    assert_usage(CLIENT, &["--config", g, "--value-bytes", "5000"], "--value-bytes");
    assert_usage(CLIENT, &["--config", g, "--duration", "0"], "--duration");
    assert_usage(CLIENT, &["--config", g, "--rate", "-5"], "--rate");
    assert_usage(CLIENT, &["--config", g, "--bind", "nowhere"], "--bind");
    assert_usage(CLIENT, &["--config", g, "--json", "/nonexistent-dir/x.json"], "--json");
    assert_usage(CLIENT, &["--config", g, "--route", "net_memif0=0"], "--route");
}

#[test]
fn cluster_argument_errors() {
    assert_usage(CLUSTER, &["--replicas", "0", "--transport", "udp"], "--replicas");
    assert_usage(CLUSTER, &["--transport", "tcp"], "--transport");
    assert_usage(CLUSTER, &["--transport", "udp", "--history"], "--history");
    assert_usage(CLUSTER, &["--transport", "udp", "--idle", "sometimes"], "--idle");
    assert_usage(CLUSTER, &["--transport", "udp", "--placement", "leader"], "--placement");
    assert_usage(CLUSTER, &["--leader-idle", "sometimes"], "--leader-idle");
}
