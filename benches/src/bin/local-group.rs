//! Runs one in-memory Paxos group under load (every replica in this thread, lossless FIFO
//! delivery, no I/O) and prints what it decided and how fast: the protocol's own cost.
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
        let t = Instant::now();
        for _ in 0..rounds {
            g.commit_batch(&value, batch);
        }
        let secs = t.elapsed().as_secs_f64();
        let n = g.decided_commands;
        // Every replica's learner delivered the leader's log (with leader-only acks a
        // follower learns a slot from the leader's next Accept or heartbeat: one behind).
        let next: Vec<u64> = g.nodes.iter().map(|n| n.next_to_deliver().0).collect();
        let lag_max = u64::from(fanout);
        assert!(next.iter().all(|&x| x + lag_max >= next[0]), "replicas fell behind: {next:?}");
        println!(
            "{replicas} replicas, {batch:>2} command(s)/slot, {value_bytes} B values, {}: {n} commands in {} slots, {:.3} s -> {:.0} commands/s, {:.0} ns of protocol work per command",
            if fanout { "Accepted to leader only" } else { "Accepted to all learners" },
            g.decided_slots,
            secs,
            n as f64 / secs,
            secs * 1e9 / n as f64
        );
    }
}
