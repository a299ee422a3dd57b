//! Runs one in-memory Paxos group under load (every replica in this thread, lossless FIFO
//! delivery per link, every node ticked once per 64 slots so the log is trimmed, no I/O)
//! and prints what it decided and how fast: the protocol's own cost. Besides the whole
//! run's time (wall clock, and time on a CPU) it reports the best and the median of the
//! run's 2048-command chunks: on a shared machine the best chunk is the uncontended cost.
//!
//! `local-group [--replicas N] [--commands M] [--batch B] [--value-bytes V]`

use paxos_benches::{bench_config, LocalGroup};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => match args.get(i + 1).map(|v| v.parse::<usize>()) {
            Some(Ok(v)) if v > 0 => v,
            _ => {
                eprintln!("error: {name} needs a positive whole number");
                std::process::exit(2);
            }
        },
    }
}

/// Commands per timed chunk (about a millisecond unbatched).
const CHUNK_COMMANDS: usize = 2048;

/// Nanoseconds this thread has spent on a CPU (Linux `/proc/thread-self/schedstat`), so that
/// a run on a shared machine can be told apart from time spent waiting for a CPU.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: local-group [--replicas N] [--commands M] [--batch B] [--value-bytes V] [--leader-only-acks]");
        return;
    }
    let replicas = arg(&args, "--replicas", 3);
    let commands = arg(&args, "--commands", 1_000_000);
    let value_bytes = arg(&args, "--value-bytes", 64);
    if replicas > 63 || value_bytes > 1200 {
        eprintln!("error: --replicas must be 1..=63 and --value-bytes 1..=1200");
        std::process::exit(2);
    }
    let value = vec![0x5a; value_bytes];
    let fanout = args.iter().any(|a| a == "--leader-only-acks");
    for batch in [1usize, arg(&args, "--batch", 32)] {
        let mut cfg = bench_config(replicas as u16, batch as u32);
        cfg.accepted_to_learners = !fanout;
        let mut g = LocalGroup::new(cfg);
        let rounds = (commands / batch).max(1);
        // Also timed in chunks of CHUNK_COMMANDS: on a shared machine the fastest chunks are
        // the ones nobody interrupted, so the best chunk estimates the uncontended cost.
        let chunk_rounds = (CHUNK_COMMANDS / batch).max(1);
        let mut chunks: Vec<f64> = Vec::with_capacity(rounds / chunk_rounds + 1);
        let cpu = on_cpu_ns();
        let t = Instant::now();
        let mut done = 0;
        while done < rounds {
            let n = chunk_rounds.min(rounds - done);
            let c = Instant::now();
            for _ in 0..n {
                g.commit_batch(&value, batch);
            }
            if n == chunk_rounds {
                chunks.push(c.elapsed().as_secs_f64() * 1e9 / (n * batch) as f64);
            }
            done += n;
        }
        let secs = t.elapsed().as_secs_f64();
        chunks.sort_by(f64::total_cmp);
        let cpu = cpu.zip(on_cpu_ns()).map(|(a, b)| b.saturating_sub(a));
        let n = g.decided_commands;
        // Every replica's learner delivered the leader's log (with leader-only acks a
        // follower learns a slot from the leader's next Accept or heartbeat: one behind).
        let next: Vec<u64> = g.nodes.iter().map(|n| n.next_to_deliver().0).collect();
        let lag_max = u64::from(fanout);
        assert!(next.iter().all(|&x| x + lag_max >= next[0]), "replicas fell behind: {next:?}");
        println!(
            "{replicas} replicas, {batch:>2} command(s)/slot, {value_bytes} B values, {}: {n} commands in {} slots, {:.3} s -> {:.0} commands/s, {:.0} ns of protocol work per command{}{}",
            if fanout { "Accepted to leader only" } else { "Accepted to all learners" },
            g.decided_slots,
            secs,
            n as f64 / secs,
            secs * 1e9 / n as f64,
            match cpu {
                Some(c) => format!(" ({:.0} ns on a CPU)", c as f64 / n as f64),
                None => String::new(),
            },
            match (chunks.first(), chunks.get(chunks.len() / 2)) {
                (Some(best), Some(median)) => format!(
                    "; {CHUNK_COMMANDS}-command chunks: best {best:.0} ns, median {median:.0} ns"
                ),
                _ => String::new(),
            }
        );
    }
}
