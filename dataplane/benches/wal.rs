//! fdatasync costs on this machine's disk, and the durable acceptor log's group commit.
//!
//! `cargo bench -p dataplane --no-default-features --bench wal` (set `WAL_BENCH_DIR` to
//! measure another file system; default: a fresh directory under /tmp, removed at the end).
//!
//! Part 1 compares a 4 KiB append + fdatasync on a growing file, on a file preallocated with
//! fallocate(2) (unwritten extents), and on a file whose blocks were zero-filled and synced
//! first (what `AcceptorLog` does for its spare segment). Part 2 times `AcceptorLog::sync`
//! for batches of Accept records.

use dataplane::durable::{AcceptorLog, LogOptions, Prealloc};
use paxos_core::{Ballot, ReplicaId, Slot};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

const APPENDS: usize = 3000;
const BLOCK: usize = 4096;

fn bench_dir() -> PathBuf {
    let base = std::env::var_os("WAL_BENCH_DIR").map(PathBuf::from).unwrap_or("/tmp".into());
    let d = base.join(format!("wal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

/// p50 / p99 / max in microseconds.
fn summary(ns: &mut [u64]) -> (f64, f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    (at(0.50), at(0.99), at(1.0))
}

fn appends(f: &File, start: u64) -> Vec<u64> {
    let block = vec![0xA5u8; BLOCK];
    let mut ns = Vec::with_capacity(APPENDS);
    for i in 0..APPENDS {
        let t = Instant::now();
        f.write_all_at(&block, start + (i * BLOCK) as u64).expect("write");
        f.sync_data().expect("fdatasync");
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns
}

fn fresh(path: &Path) -> File {
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path);
    let f = f.expect("create");
    File::open(path.parent().unwrap()).unwrap().sync_all().unwrap();
    f
}

fn raw_probes(dir: &Path) {
    let total = (APPENDS * BLOCK) as u64;
    println!("## 4 KiB append + fdatasync, {APPENDS} appends per case (us)");

    let f = fresh(&dir.join("plain"));
    let (p50, p99, max) = summary(&mut appends(&f, 0));
    println!("growing file (plain append)      p50 {p50:7.1}  p99 {p99:7.1}  max {max:8.1}");

    let f = fresh(&dir.join("falloc"));
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, total).expect("fallocate");
    f.sync_all().unwrap();
    let (p50, p99, max) = summary(&mut appends(&f, 0));
    println!("fallocate(2) preallocated        p50 {p50:7.1}  p99 {p99:7.1}  max {max:8.1}");

    let f = fresh(&dir.join("zeroed"));
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < total {
        f.write_all_at(&zeros, off).unwrap();
        off += zeros.len() as u64;
    }
    f.sync_all().unwrap();
    let (p50, p99, max) = summary(&mut appends(&f, 0));
    println!("zero-filled + synced (overwrite) p50 {p50:7.1}  p99 {p99:7.1}  max {max:8.1}");
}

/// `AcceptorLog::sync` latency for batches of `batch` Accept records of `value_len` bytes.
fn log_case(dir: &Path, prealloc: Prealloc, value_len: usize, batch: usize) {
    let ldir = dir.join(format!("log-{value_len}-{batch}-{prealloc:?}"));
    let opts = LogOptions { prealloc, ..LogOptions::default() };
    let mut log = AcceptorLog::create(&ldir, opts.clone(), true).expect("create");
    // Stay inside segment 0 (64 MiB): no rotation in the timed runs.
    let per_sync = (batch * (value_len + 48)) as u64;
    let syncs = (48u64 << 20).div_euclid(per_sync).min(2000) as usize;
    let value = vec![0x5au8; value_len];
    let b = Ballot::new(1, ReplicaId(0));
    let mut ns = Vec::with_capacity(syncs);
    let mut slot = 0u64;
    let t_all = Instant::now();
    for _ in 0..syncs {
        for _ in 0..batch {
            log.set_accepted(Slot(slot), b, &value).expect("append");
            slot += 1;
        }
        let t = Instant::now();
        log.sync().expect("sync");
        ns.push(t.elapsed().as_nanos() as u64);
        // Keep the index small, as the adapter's trims would.
        log.trim(Slot(slot.saturating_sub(1024)));
    }
    let secs = t_all.elapsed().as_secs_f64();
    let (p50, p99, max) = summary(&mut ns);
    let rate = slot as f64 / secs;
    let case = format!("{value_len:5} B x {batch:3} {:9}", format!("{prealloc:?}"));
    println!(
        "{case}  p50 {p50:7.1}  p99 {p99:7.1}  max {max:8.1}  {rate:9.0} records/s  ({syncs} syncs)"
    );
    drop(log);
    std::fs::remove_dir_all(&ldir).expect("remove log dir");
}

/// Time to open (scan, replay, check the tail of) a 64 MiB segment holding ~48 MiB of
/// 1 KiB Accept records.
fn open_time(dir: &Path) {
    let ldir = dir.join("log-open");
    let mut log = AcceptorLog::create(&ldir, LogOptions::default(), true).expect("create");
    let value = vec![0x5au8; 1024];
    let b = Ballot::new(1, ReplicaId(0));
    let n = 45_000u64;
    for s in 0..n {
        log.set_accepted(Slot(s), b, &value).expect("append");
        if s % 128 == 127 {
            log.sync().expect("sync");
        }
    }
    log.sync().expect("sync");
    drop(log);
    let t = Instant::now();
    let (log, rep) = AcceptorLog::open(&ldir, LogOptions::default()).expect("open");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(log.high(), Slot(n));
    println!(
        "\n## open: {} records in {} segment(s) replayed in {ms:.1} ms",
        rep.records, rep.segments
    );
    drop(log);
    std::fs::remove_dir_all(&ldir).expect("remove log dir");
}

fn main() {
    let dir = bench_dir();
    raw_probes(&dir);
    println!("\n## AcceptorLog::sync (one Commit + one pwrite + one fdatasync), latency in us");
    for value_len in [64, 1024] {
        for batch in [1, 8, 32, 128] {
            log_case(&dir, Prealloc::ZeroFill, value_len, batch);
        }
    }
    log_case(&dir, Prealloc::None, 64, 1);
    log_case(&dir, Prealloc::None, 1024, 32);
    open_time(&dir);
    std::fs::remove_dir_all(&dir).expect("remove bench dir");
}
