//! `paxos-sim`: run the simulator from the command line.
//!
//! ```text
//! paxos-sim [--seeds N] [--start S] [--seed S] [--nodes N] [--q1 Q] [--q2 Q]
//!           [--faults none|light|heavy|swarm|crash|churn] [--ticks T] [--liveness-ticks T]
//!           [--clients K] [--threads J] [--bug NAME] [--keep-going] [--replicas-only]
//!           [--sync every|lazy:PPM|async:PPM] [--wipe-ppm PPM]
//! ```
//! Bugs (`--bug`, repeatable): forget-promise, ignore-accepted, adopt-lowest,
//! accept-not-synced, trim-at-max, rejoin-votes-at-once, async-releases-early.
//! ```text
//! ```
//! `--seeds N` runs seeds start..start+N (a progress line a second to stderr) and stops at the
//! first failure unless `--keep-going`; `--seed S` runs one seed and prints its full trace.
//! Exit code 1 on any failure, with the command that reproduces it.

use paxos_core::Bugs;
use paxos_sim::swarm::default_threads;
use paxos_sim::{run_seeds, FaultLevel, Options, Progress, SimConfig, Simulation, SyncMode};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `println!` that ignores a closed stdout (e.g. `paxos-sim --seed 3 | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

const USAGE: &str =
    "usage: paxos-sim [--seeds N] [--start S] [--seed S] [--nodes N] [--q1 Q] [--q2 Q]
                 [--faults none|light|heavy|swarm|crash|churn] [--ticks T] [--liveness-ticks T]
                 [--clients K] [--threads J] [--bug NAME] [--keep-going] [--replicas-only]
                 [--sync every|lazy:PPM|async:PPM] [--wipe-ppm PPM]
bugs: forget-promise ignore-accepted adopt-lowest accept-not-synced trim-at-max
      rejoin-votes-at-once async-releases-early";

struct Args {
    opts: Options,
    seeds: u64,
    start: u64,
    one: Option<u64>,
    threads: usize,
    keep_going: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        opts: Options::default(),
        seeds: 1000,
        start: 0,
        one: None,
        threads: default_threads(64),
        keep_going: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--keep-going" {
            a.keep_going = true;
            continue;
        }
        if flag == "--replicas-only" {
            a.opts.mixed_roles = false;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || val.parse::<u64>().map_err(|_| format!("{flag}: not a number: {val}"));
        match flag.as_str() {
            "--seeds" => a.seeds = num()?,
            "--start" => a.start = num()?,
            "--seed" => a.one = Some(num()?),
            "--nodes" => a.opts.nodes = Some(num()? as u16),
            "--q1" => a.opts.q1 = Some(num()? as usize),
            "--q2" => a.opts.q2 = Some(num()? as usize),
            "--ticks" => a.opts.fault_ticks = num()?,
            "--liveness-ticks" => a.opts.liveness_ticks_max = num()?,
            "--clients" => a.opts.clients = Some(num()? as usize),
            "--threads" => a.threads = num()?.max(1) as usize,
            "--faults" => {
                a.opts.faults = FaultLevel::parse(&val)
                    .ok_or_else(|| format!("--faults: unknown level {val}"))?
            }
            "--bug" => match val.as_str() {
                "forget-promise" => {
                    a.opts.bugs = Bugs { acceptor_forgets_promise: true, ..a.opts.bugs }
                }
                "ignore-accepted" => {
                    a.opts.bugs = Bugs { leader_ignores_accepted: true, ..a.opts.bugs }
                }
                "adopt-lowest" => a.opts.bugs = Bugs { leader_adopts_lowest: true, ..a.opts.bugs },
                "accept-not-synced" => {
                    a.opts.bugs = Bugs { accept_not_synced: true, ..a.opts.bugs }
                }
                "trim-at-max" => a.opts.bugs = Bugs { trim_at_max_applied: true, ..a.opts.bugs },
                "rejoin-votes-at-once" => {
                    a.opts.bugs = Bugs { rejoin_votes_at_once: true, ..a.opts.bugs }
                }
                "async-releases-early" => {
                    a.opts.bugs = Bugs { async_sync_releases_early: true, ..a.opts.bugs }
                }
                _ => return Err(format!("--bug: unknown bug {val}")),
            },
            "--sync" => {
                a.opts.sync = Some(match val.as_str() {
                    "every" => SyncMode::EveryInput,
                    v => {
                        match (v.split_once(':'), v.split_once(':').map(|(_, p)| p.parse::<u32>()))
                        {
                            (Some(("lazy", _)), Some(Ok(ppm))) if ppm <= 1_000_000 => {
                                SyncMode::Lazy(ppm)
                            }
                            (Some(("async", _)), Some(Ok(ppm))) if ppm <= 1_000_000 => {
                                SyncMode::Async(ppm)
                            }
                            _ => {
                                return Err(format!(
                                    "--sync: every, lazy:PPM or async:PPM, not {val}"
                                ))
                            }
                        }
                    }
                })
            }
            "--wipe-ppm" => a.opts.wipe_ppm = Some(num()?.min(1_000_000) as u32),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if let (Some(q1), Some(q2)) = (a.opts.q1, a.opts.q2) {
        let n = usize::from(a.opts.nodes.ok_or("--q1/--q2 need --nodes")?);
        if q1 + q2 <= n || q1 > n || q2 > n || q1 == 0 || q2 == 0 {
            return Err(format!("quorums q1={q1} q2={q2} do not intersect over {n} acceptors"));
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("paxos-sim: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut opts = args.opts.clone();
    if let Some(seed) = args.one {
        opts.print_trace = true;
        let cfg = SimConfig::draw(seed, &opts);
        say!("{cfg}");
        let o = Simulation::new(cfg).run();
        say!("{}", o.config);
        say!("trace: {} lines, hash {:016x}; stats: {:?}", o.trace_lines, o.trace_hash, o.stats);
        if o.ok() {
            say!("seed {seed} ok");
            return ExitCode::SUCCESS;
        }
        // The full trace was printed above; repeat only the verdict.
        let f = o.failure.as_ref().map(|f| f.to_string()).unwrap_or_default();
        say!("=== seed {seed} FAILED: {f}");
        say!("reproduce: cargo run -p paxos-sim --release -- {}", opts.repro_args(seed));
        return ExitCode::FAILURE;
    }

    let progress = Progress::default();
    let began = Instant::now();
    let stop_after = if args.keep_going { 0 } else { 1 };
    let summary = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            run_seeds(args.start, args.seeds, &opts, args.threads, stop_after, &progress)
        });
        let mut last = Instant::now();
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                report_progress(&progress, began);
            }
        }
        worker.join().expect("seed runner panicked")
    });
    report_progress(&progress, began);
    eprintln!();
    for f in &summary.failures {
        say!("{}", f.report(&opts));
    }
    say!(
        "{} seeds in {:.1}s ({:.1} seeds/s, {} threads): {} failed; {} slots chosen, {} requests done, {} crashes, {} partitions, {} leaders ({} in stable phases; {} seeds checked for churn), {} snapshots; slowest liveness convergence {} ticks",
        summary.seeds,
        summary.elapsed.as_secs_f64(),
        summary.seeds_per_second(),
        args.threads,
        summary.failures.len(),
        summary.slots_chosen,
        summary.requests_done,
        summary.crashes,
        summary.partitions,
        summary.leaders_elected,
        summary.stable_leader_changes,
        summary.stable_checked,
        summary.snapshots_installed,
        summary.liveness_ticks_max_seen
    );
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        let seeds: Vec<String> = summary.failures.iter().map(|o| o.seed.to_string()).collect();
        say!("FAILED seeds: {}", seeds.join(" "));
        ExitCode::FAILURE
    }
}

fn report_progress(p: &Progress, began: Instant) {
    let done = p.done.load(Ordering::Relaxed);
    let secs = began.elapsed().as_secs_f64();
    eprint!(
        "\r{done} seeds, {:.1} seeds/s, {} failures, {} slots decided   ",
        done as f64 / secs.max(1e-9),
        p.failures.load(Ordering::Relaxed),
        p.slots.load(Ordering::Relaxed)
    );
}
