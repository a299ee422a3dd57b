//! Helpers shared by the apps integration tests.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `cmd` to completion within `limit`, capturing its output. On overrun: SIGINT (so
/// `paxos-cluster` terminates its children and removes what it created), SIGKILL after
/// 15 s more, then the test fails.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            if rx.recv_timeout(Duration::from_secs(15)).is_err() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}
