//! Crash, corruption and recovery tests of the durable log, against a model of the state.
//! Crashes are simulated on the files: dropping a log without `sync` loses its buffer (like a
//! killed process), truncating or zeroing bytes of the last batch is a torn write, garbling
//! bytes of a synced batch is a disk fault. Randomized tests use a seeded PRNG.

use super::*;
use paxos_core::{Ballot, GroupId, ReplicaId, Slot};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("wal-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// splitmix64: small, seeded, good enough to pick crash points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn tiny(prealloc: Prealloc) -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        max_value_bytes: 256,
        write_buffer_bytes: 1024,
        max_index_slots: 1 << 10,
        prealloc,
        prealloc_step_bytes: 1024,
    }
}

fn b(round: u32) -> Ballot {
    Ballot::new(round, ReplicaId(1))
}

/// What the log must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Model {
    promised: Ballot,
    low: Slot,
    voting: bool,
    acc: BTreeMap<u64, (Ballot, Vec<u8>)>,
}

impl Model {
    fn new(voting: bool) -> Model {
        Model { promised: Ballot::NONE, low: Slot::ZERO, voting, acc: BTreeMap::new() }
    }

    fn promise(&mut self, log: &mut AcceptorLog, bal: Ballot) {
        self.promised = bal;
        log.set_promised(bal);
    }

    fn accept(&mut self, log: &mut AcceptorLog, s: u64, bal: Ballot, v: &[u8]) {
        if Slot(s) >= self.low {
            self.acc.insert(s, (bal, v.to_vec()));
        }
        log.set_accepted(Slot(s), bal, v).unwrap();
    }

    fn trim(&mut self, log: &mut AcceptorLog, below: u64) {
        if Slot(below) > self.low {
            self.low = Slot(below);
            self.acc.retain(|&k, _| k >= below);
        }
        log.trim(Slot(below));
    }

    fn voting(&mut self, log: &mut AcceptorLog, v: bool) {
        self.voting = v;
        log.set_voting(v);
    }

    /// Whether `log` holds exactly this state (`check` without panicking).
    fn same(&self, log: &AcceptorLog) -> bool {
        let high = self.acc.keys().next_back().map_or(self.low, |&s| Slot(s + 1));
        if (log.promised(), log.voting(), log.low(), log.high())
            != (self.promised, self.voting, self.low, high)
        {
            return false;
        }
        let mut out = Vec::new();
        (self.low.0..high.0).all(|s| {
            let want = self.acc.get(&s);
            let got = log.read_value(Slot(s), &mut out).unwrap();
            got == want.map(|w| w.0) && want.is_none_or(|w| out == w.1)
        })
    }

    #[track_caller]
    fn check(&self, log: &AcceptorLog) {
        assert_eq!(log.promised(), self.promised, "promised");
        assert_eq!(log.voting(), self.voting, "voting");
        assert_eq!(log.low(), self.low, "low");
        let high = self.acc.keys().next_back().map_or(self.low, |&s| Slot(s + 1));
        assert_eq!(log.high(), high, "high");
        let mut out = Vec::new();
        for s in self.low.0.saturating_sub(2)..high.0 + 2 {
            let want = self.acc.get(&s);
            assert_eq!(log.accepted_ballot(Slot(s)), want.map(|w| w.0), "ballot of slot {s}");
            let got = log.read_value(Slot(s), &mut out).unwrap();
            assert_eq!(got, want.map(|w| w.0), "read_value ballot of slot {s}");
            if let Some(w) = want {
                assert_eq!(out, w.1, "value of slot {s}");
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn corrupt_err(r: Result<(AcceptorLog, RecoveryReport), WalError>) -> (PathBuf, u64, String) {
    match r {
        Err(WalError::Corrupt { file, offset, why }) => (file, offset, why),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok((_, rep)) => panic!("expected Corrupt, opened fine: {rep:?}"),
    }
}

#[test]
fn state_survives_close_and_open() {
    let d = TempDir::new("roundtrip");
    let mut m = Model::new(true);
    let mut log = AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    m.check(&log);
    m.promise(&mut log, b(3));
    m.accept(&mut log, 0, b(3), b"zero");
    m.accept(&mut log, 2, b(3), b"two");
    m.accept(&mut log, 5, b(3), b"");
    m.accept(&mut log, 2, b(4), b"two again"); // the last Accept per slot wins
    m.trim(&mut log, 1);
    m.voting(&mut log, false);
    m.check(&log); // reads before the sync come from the write buffer
    let info = log.sync().unwrap();
    assert_eq!(info.records, 7);
    assert!(!log.pending());
    m.check(&log);
    drop(log);

    let (mut log, rep) = AcceptorLog::open(d.path(), tiny(Prealloc::None)).unwrap();
    assert_eq!(rep.torn, None);
    m.check(&log);
    m.voting(&mut log, true);
    m.accept(&mut log, 1, b(4), b"below low: ignored");
    log.sync().unwrap();
    drop(log);
    let (log, _) = AcceptorLog::open(d.path(), tiny(Prealloc::None)).unwrap();
    m.check(&log);
}

#[test]
fn nothing_is_durable_before_sync() {
    let d = TempDir::new("nosync");
    let mut m = Model::new(true);
    let mut log = AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    m.accept(&mut log, 0, b(1), b"kept");
    log.sync().unwrap();
    let synced = m.clone();
    m.promise(&mut log, b(9));
    m.accept(&mut log, 1, b(9), b"lost");
    assert!(log.pending());
    drop(log); // a crash: the buffer is gone
    let (log, _) = AcceptorLog::open(d.path(), tiny(Prealloc::None)).unwrap();
    synced.check(&log);
}

#[test]
fn sync_is_one_group_commit() {
    let d = TempDir::new("group");
    let mut log = AcceptorLog::create(d.path(), LogOptions::default(), true).unwrap();
    assert_eq!(log.sync().unwrap().records, 0);
    assert_eq!(log.stats().syncs, 0);
    for s in 0..10 {
        log.set_accepted(Slot(s), b(1), &[s as u8; 64]).unwrap();
    }
    let info = log.sync().unwrap();
    assert_eq!((info.records, info.batch), (10, 2));
    let st = log.stats();
    assert_eq!((st.syncs, st.records_synced, st.overflow_flushes), (1, 10, 0));
    assert_eq!(st.sync_us_hist.iter().sum::<u64>(), 1);
    assert!(st.sync_ns_max > 0);
}

#[test]
fn open_without_a_log_is_nolog_and_create_never_overwrites() {
    let d = TempDir::new("nolog");
    let r = AcceptorLog::open(d.path(), LogOptions::default());
    assert!(matches!(r, Err(WalError::NoLog { .. })), "{r:?}");
    let missing = d.path().join("missing");
    let r = AcceptorLog::open(&missing, LogOptions::default());
    assert!(matches!(r, Err(WalError::NoLog { .. })), "{r:?}");
    std::fs::write(d.path().join("snapshot.kv"), b"other files are no log").unwrap();
    let r = AcceptorLog::open(d.path(), LogOptions::default());
    assert!(matches!(r, Err(WalError::NoLog { .. })), "{r:?}");
    AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    let r = AcceptorLog::create(d.path(), tiny(Prealloc::None), true);
    assert!(matches!(r, Err(WalError::Exists { .. })), "{r:?}");
}

#[test]
fn huge_values_and_far_slots_are_refused() {
    let d = TempDir::new("huge");
    let opts = tiny(Prealloc::None);
    let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
    let r = log.set_accepted(Slot(0), b(1), &vec![7; 257]);
    assert!(matches!(r, Err(WalError::ValueTooLarge { len: 257, max: 256 })), "{r:?}");
    let r = log.set_accepted(Slot(1 << 10), b(1), b"far");
    assert!(matches!(r, Err(WalError::SlotOutOfWindow { .. })), "{r:?}");
    assert!(!log.pending());
    log.set_accepted(Slot(0), b(1), &[7; 256]).unwrap();
    let too_big =
        LogOptions { max_value_bytes: MAX_VALUE_BYTES_LIMIT + 1, ..LogOptions::default() };
    assert!(matches!(too_big.validate(), Err(WalError::Options(_))));
    let no_room = LogOptions { segment_bytes: 512, ..opts };
    assert!(matches!(no_room.validate(), Err(WalError::Options(_))));
}

/// Builds a log whose last batch (written by the final sync) is to be torn. Returns the
/// model before that batch, the model after, and the byte range of the batch in segment 0.
fn log_with_last_batch(dir: &Path, opts: &LogOptions, rng: &mut Rng) -> (Model, Model, u64, u64) {
    let mut m = Model::new(true);
    let mut log = AcceptorLog::create(dir, opts.clone(), true).unwrap();
    m.promise(&mut log, b(2));
    for s in 0..4 {
        m.accept(&mut log, s, b(2), &rng.bytes(20 + s as usize));
    }
    log.sync().unwrap();
    m.trim(&mut log, 1);
    log.sync().unwrap();
    let before = m.clone();
    let (seg, start) = log.tail_pos();
    m.promise(&mut log, b(3));
    m.accept(&mut log, 2, b(3), &rng.bytes(40));
    m.accept(&mut log, 7, b(3), &rng.bytes(90));
    m.voting(&mut log, false);
    m.trim(&mut log, 2);
    log.sync().unwrap();
    let (seg2, end) = log.tail_pos();
    assert_eq!((seg, seg2), (0, 0), "the test batch must stay in segment 0");
    (before, m, start, end)
}

fn torn_tail_at_every_offset(prealloc: Prealloc) {
    let d = TempDir::new("torn");
    let work = TempDir::new("torn-work");
    let opts = tiny(prealloc);
    let (before, after, start, end) = log_with_last_batch(d.path(), &opts, &mut Rng(1));
    let seg0 = segment_path(work.path(), 0);
    for cut in start..end {
        copy_dir(d.path(), work.path());
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&seg0).unwrap();
        let mut old = vec![0; (end - cut) as usize];
        f.read_exact_at(&mut old, cut).unwrap();
        // Zeroing bytes that were zero already (the commit's padding) changes nothing.
        let unchanged = prealloc == Prealloc::ZeroFill && old.iter().all(|&b| b == 0);
        match prealloc {
            Prealloc::None => f.set_len(cut).unwrap(),
            Prealloc::ZeroFill => f.write_all_at(&vec![0; (end - cut) as usize], cut).unwrap(),
        }
        drop(f);
        let (log, rep) = AcceptorLog::open(work.path(), opts.clone())
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        if unchanged {
            after.check(&log);
            continue;
        }
        before.check(&log);
        if cut > start {
            let torn = rep.torn.as_ref().expect("a torn tail was cut");
            assert_eq!(torn.offset, start);
        }
    }
    // The whole batch on disk: it is committed.
    copy_dir(d.path(), work.path());
    let (log, rep) = AcceptorLog::open(work.path(), opts).unwrap();
    assert_eq!(rep.torn, None);
    after.check(&log);
}

#[test]
fn torn_tail_at_every_byte_of_the_last_batch_growing_file() {
    torn_tail_at_every_offset(Prealloc::None);
}

#[test]
fn torn_tail_at_every_byte_of_the_last_batch_preallocated() {
    torn_tail_at_every_offset(Prealloc::ZeroFill);
}

/// Sectors of the last batch land in any order: any subset of them may hold old bytes
/// (zeros) or be garbled; recovery gives the state before the batch, never Corrupt.
#[test]
fn torn_sectors_of_the_last_batch_in_any_order() {
    let d = TempDir::new("sectors");
    let work = TempDir::new("sectors-work");
    let opts = tiny(Prealloc::ZeroFill);
    let mut rng = Rng(7);
    let (before, after, start, end) = log_with_last_batch(d.path(), &opts, &mut rng);
    let seg0 = segment_path(work.path(), 0);
    let sectors: Vec<u64> = (start / 512..end.div_ceil(512)).collect();
    // Garble exactly one sector, for each sector of the batch.
    for &sec in &sectors {
        copy_dir(d.path(), work.path());
        let f = std::fs::OpenOptions::new().write(true).open(&seg0).unwrap();
        let (a, z) = ((sec * 512).max(start), ((sec + 1) * 512).min(end));
        f.write_all_at(&rng.bytes((z - a) as usize), a).unwrap();
        drop(f);
        let (log, _) = AcceptorLog::open(work.path(), opts.clone())
            .unwrap_or_else(|e| panic!("sector {sec} garbled: {e}"));
        before.check(&log);
    }
    // Random subsets of sectors missing (zeros), sometimes one more garbled.
    for round in 0..40 {
        copy_dir(d.path(), work.path());
        let f = std::fs::OpenOptions::new().write(true).open(&seg0).unwrap();
        let mut missing = 0;
        for &sec in &sectors {
            let (a, z) = ((sec * 512).max(start), ((sec + 1) * 512).min(end));
            match rng.below(4) {
                0 => f.write_all_at(&vec![0; (z - a) as usize], a).unwrap(),
                1 if round % 2 == 0 => f.write_all_at(&rng.bytes((z - a) as usize), a).unwrap(),
                _ => continue,
            }
            missing += 1;
        }
        drop(f);
        let (log, _) = AcceptorLog::open(work.path(), opts.clone())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        if missing == 0 {
            after.check(&log);
        } else {
            before.check(&log);
        }
    }
}

/// After a torn tail is cut, new (shorter) appends and another crash never bring back the
/// dropped records, whether the new batch completes or is torn itself.
#[test]
fn stale_records_never_come_back_after_a_cut() {
    for prealloc in [Prealloc::None, Prealloc::ZeroFill] {
        let d = TempDir::new("stale");
        let opts = tiny(prealloc);
        let mut rng = Rng(3);
        let (before, _, start, end) = log_with_last_batch(d.path(), &opts, &mut rng);
        // Tear the last batch after its first record: the rest of it stays on disk.
        let f = std::fs::OpenOptions::new().write(true).open(segment_path(d.path(), 0)).unwrap();
        f.write_all_at(&[0xff; 8], start + 8).unwrap();
        drop(f);
        let (mut log, rep) = AcceptorLog::open(d.path(), opts.clone()).unwrap();
        let torn = rep.torn.expect("torn");
        assert!(torn.zeroed_bytes >= end - start - 8, "{torn:?}");
        before.check(&log);
        let mut m = before.clone();
        m.accept(&mut log, 9, b(2), b"new");
        log.sync().unwrap();
        drop(log);
        let (mut log, rep) = AcceptorLog::open(d.path(), opts.clone()).unwrap();
        assert_eq!(rep.torn, None);
        m.check(&log);
        // And a second crash, in the middle of the next batch.
        let (_, s2) = log.tail_pos();
        let synced = m.clone();
        m.accept(&mut log, 3, b(5), b"torn again");
        log.sync().unwrap();
        drop(log);
        let f = std::fs::OpenOptions::new().write(true).open(segment_path(d.path(), 0)).unwrap();
        f.write_all_at(&[0; 16], s2 + 40).unwrap();
        drop(f);
        let (log, _) = AcceptorLog::open(d.path(), opts).unwrap();
        synced.check(&log);
    }
}

/// The last batch crosses into a new segment file. Either file's part may be missing or
/// cut anywhere (the two files reach the disk in any order): the state before the batch.
#[test]
fn torn_batch_across_a_rotation() {
    let d = TempDir::new("rot-torn");
    let work = TempDir::new("rot-torn-work");
    let opts = tiny(Prealloc::None);
    let mut m = Model::new(true);
    let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
    m.promise(&mut log, b(2));
    let mut s = 0;
    while log.tail_pos().1 < 4096 - 600 {
        m.accept(&mut log, s, b(2), &[s as u8; 100]);
        s += 1;
    }
    log.sync().unwrap();
    let before = m.clone();
    let (_, start0) = log.tail_pos();
    for k in 0..6 {
        m.accept(&mut log, s + k, b(2), &[k as u8; 150]);
    }
    log.sync().unwrap();
    assert_eq!(log.tail_pos().0, 1, "the batch must cross into segment 1");
    drop(log);
    let (seg0, seg1) = (segment_path(work.path(), 0), segment_path(work.path(), 1));
    let len0 = std::fs::metadata(segment_path(d.path(), 0)).unwrap().len();
    let len1 = std::fs::metadata(segment_path(d.path(), 1)).unwrap().len();
    let mut cases: Vec<(u64, u64)> = (0..len1).map(|c| (len0, c)).collect();
    cases.extend((start0..len0).map(|c| (c, len1)));
    for (c0, c1) in cases {
        copy_dir(d.path(), work.path());
        std::fs::OpenOptions::new().write(true).open(&seg0).unwrap().set_len(c0).unwrap();
        std::fs::OpenOptions::new().write(true).open(&seg1).unwrap().set_len(c1).unwrap();
        let (log, rep) = AcceptorLog::open(work.path(), opts.clone())
            .unwrap_or_else(|e| panic!("segment 0 cut at {c0}, segment 1 at {c1}: {e}"));
        before.check(&log);
        assert!(rep.torn.is_some());
        assert!(!seg1.exists(), "the torn segment is deleted");
    }
    copy_dir(d.path(), work.path());
    std::fs::remove_file(&seg1).unwrap();
    let (log, _) = AcceptorLog::open(work.path(), opts.clone()).unwrap();
    before.check(&log);
    copy_dir(d.path(), work.path());
    let (log, _) = AcceptorLog::open(work.path(), opts).unwrap();
    m.check(&log);
}

/// A record covered by a completed sync, followed by any later batch, is corruption.
#[test]
fn corruption_in_a_synced_batch_is_reported() {
    let d = TempDir::new("corrupt");
    let work = TempDir::new("corrupt-work");
    let opts = tiny(Prealloc::ZeroFill);
    let mut rng = Rng(11);
    let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
    let mut batch_ends = vec![log.tail_pos().1];
    for batch in 0..6u64 {
        for k in 0..3 {
            log.set_accepted(Slot(batch * 3 + k), b(1), &rng.bytes(30)).unwrap();
        }
        log.sync().unwrap();
        batch_ends.push(log.tail_pos().1);
    }
    drop(log);
    let last_start = batch_ends[batch_ends.len() - 2];
    let seg0 = segment_path(work.path(), 0);
    // One flipped byte anywhere before the last batch (segment header included).
    for _ in 0..60 {
        let at = rng.below(last_start);
        copy_dir(d.path(), work.path());
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&seg0).unwrap();
        let mut byte = [0u8];
        f.read_exact_at(&mut byte, at).unwrap();
        f.write_all_at(&[byte[0] ^ (1 << rng.below(8))], at).unwrap();
        drop(f);
        let (file, offset, why) = corrupt_err(AcceptorLog::open(work.path(), opts.clone()));
        assert_eq!(file, seg0, "{why}");
        assert!(offset <= at, "reported at {offset}, flipped {at}: {why}");
    }
    // A whole record zeroed in the middle (a lost sector) is corruption too.
    copy_dir(d.path(), work.path());
    let f = std::fs::OpenOptions::new().write(true).open(&seg0).unwrap();
    f.write_all_at(&[0; 40], batch_ends[2]).unwrap();
    drop(f);
    corrupt_err(AcceptorLog::open(work.path(), opts.clone()));
    // The documented limit: a fault in the last synced batch, with nothing after it, cannot be
    // told from a torn write; that batch is dropped.
    copy_dir(d.path(), work.path());
    let f = std::fs::OpenOptions::new().write(true).open(&seg0).unwrap();
    f.write_all_at(&[0xee], last_start + 3).unwrap();
    drop(f);
    let (log, rep) = AcceptorLog::open(work.path(), opts).unwrap();
    assert!(rep.torn.is_some());
    assert_eq!(log.high(), Slot(15));
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let d = TempDir::new("gap");
    let opts = tiny(Prealloc::None);
    let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
    for s in 0..60 {
        log.set_accepted(Slot(s), b(1), &[1; 200]).unwrap();
        log.sync().unwrap();
    }
    assert!(log.segments().count() >= 4);
    drop(log);
    std::fs::remove_file(segment_path(d.path(), 1)).unwrap();
    corrupt_err(AcceptorLog::open(d.path(), opts.clone()));
    // And a later segment garbled from its header on, with batches after it.
    let d = TempDir::new("gap2");
    let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
    for s in 0..60 {
        log.set_accepted(Slot(s), b(1), &[1; 200]).unwrap();
        log.sync().unwrap();
    }
    drop(log);
    let f = std::fs::OpenOptions::new().write(true).open(segment_path(d.path(), 1)).unwrap();
    f.write_all_at(&[0x55; 100], 0).unwrap();
    drop(f);
    corrupt_err(AcceptorLog::open(d.path(), opts));
}

#[test]
fn rotation_and_deletion_keep_the_latest_state() {
    for prealloc in [Prealloc::None, Prealloc::ZeroFill] {
        let d = TempDir::new("rotate");
        let opts = tiny(prealloc);
        let mut m = Model::new(true);
        let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
        m.promise(&mut log, b(5));
        m.voting(&mut log, false);
        log.sync().unwrap();
        for s in 0..80 {
            m.accept(&mut log, s, b(5), &[s as u8; 150]);
            if s % 4 == 3 {
                log.sync().unwrap();
                log.maintain().unwrap();
            }
        }
        log.sync().unwrap();
        let segs: Vec<u64> = log.segments().collect();
        assert!(segs.len() >= 4, "{segs:?}");
        if prealloc == Prealloc::ZeroFill {
            assert!(log.stats().spare_misses < log.stats().rotations, "{:?}", log.stats());
        }
        // Trim not yet durable: nothing may go.
        m.trim(&mut log, 70);
        assert_eq!(log.maintain().unwrap().segments_deleted, 0);
        log.sync().unwrap();
        let info = log.maintain().unwrap();
        assert!(info.segments_deleted >= 2, "{info:?}");
        let first = log.segments().next().unwrap();
        assert!(!segment_path(d.path(), first - 1).exists());
        m.check(&log);
        drop(log);
        let (log, rep) = AcceptorLog::open(d.path(), opts.clone()).unwrap();
        assert_eq!(rep.torn, None);
        assert_eq!(log.segments().next(), Some(first));
        // Promise b5 and voting=false came from the segment snapshots.
        m.check(&log);
        // Everything trimmed: all but the current segment go.
        let mut log = log;
        m.trim(&mut log, 80);
        log.sync().unwrap();
        log.maintain().unwrap();
        assert_eq!(log.segments().count(), 1);
        let spare = d.path().join("wal.spare");
        assert_eq!(spare.exists(), prealloc == Prealloc::ZeroFill);
        drop(log);
        let (log, rep) = AcceptorLog::open(d.path(), opts).unwrap();
        m.check(&log);
        // A spare may be half made: open deletes it (maintain makes a new one).
        assert_eq!(rep.removed_leftovers.len(), usize::from(prealloc == Prealloc::ZeroFill));
        assert!(!spare.exists());
    }
}

#[test]
fn a_failed_write_poisons_the_log() {
    let d = TempDir::new("poison");
    let mut log = AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    log.set_accepted(Slot(0), b(1), b"x").unwrap();
    log.fail_next_write = true;
    assert!(matches!(log.sync(), Err(WalError::Io { .. })));
    assert!(matches!(log.sync(), Err(WalError::Poisoned { .. })));
    assert!(matches!(log.set_accepted(Slot(1), b(1), b"y"), Err(WalError::Poisoned { .. })));
    assert!(matches!(log.maintain(), Err(WalError::Poisoned { .. })));
}

#[test]
fn read_value_checks_the_disk() {
    let d = TempDir::new("readck");
    let mut log = AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    log.set_accepted(Slot(0), b(1), b"precious value").unwrap();
    log.sync().unwrap();
    let mut out = Vec::new();
    assert_eq!(log.read_value(Slot(0), &mut out).unwrap(), Some(b(1)));
    assert_eq!(out, b"precious value");
    let f = std::fs::OpenOptions::new().write(true).open(segment_path(d.path(), 0)).unwrap();
    let (_, end) = log.tail_pos();
    f.write_all_at(b"X", end - COMMIT - 10).unwrap();
    assert!(matches!(log.read_value(Slot(0), &mut out), Err(WalError::Corrupt { .. })));
}
const COMMIT: u64 = record::COMMIT_RECORD_LEN;

/// Random operations, syncs and crashes (drop without sync, after overflow flushes and
/// rotations left uncommitted bytes in the files): every reopen gives the last synced state.
#[test]
fn random_crashes_recover_the_last_synced_state() {
    for seed in 0..24u64 {
        let mut rng = Rng(seed);
        let d = TempDir::new("random");
        let prealloc = if seed % 2 == 0 { Prealloc::None } else { Prealloc::ZeroFill };
        let opts =
            LogOptions { write_buffer_bytes: 200 + 300 * (seed % 3) as usize, ..tiny(prealloc) };
        let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
        let mut m = Model::new(true);
        let mut synced = m.clone();
        let mut round = 1;
        for _crash in 0..6 {
            for _ in 0..rng.below(120) {
                match rng.below(20) {
                    0 => {
                        round += 1;
                        m.promise(&mut log, b(round));
                    }
                    1 => m.trim(&mut log, m.low.0 + rng.below(6)),
                    2 => m.voting(&mut log, rng.below(2) == 0),
                    3..=5 => {
                        log.sync().unwrap();
                        synced = m.clone();
                    }
                    7 => m.check(&log),
                    6 => {
                        log.maintain().unwrap();
                    }
                    _ => {
                        let s = m.low.0 + rng.below(30);
                        let n = rng.below(257) as usize;
                        let v = rng.bytes(n);
                        m.accept(&mut log, s, b(round), &v);
                    }
                }
            }
            drop(log); // crash
            let (l, _) = AcceptorLog::open(d.path(), opts.clone())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            log = l;
            synced.check(&log);
            m = synced.clone();
        }
    }
}

/// Thread mode: polls until the sync in flight completes; returns the tickets reported.
fn settle(log: &mut AcceptorLog) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        if let Some(t) = log.sync_poll().unwrap() {
            seen.push(t);
        }
        if !log.sync_in_flight() {
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
    panic!("the sync thread never answered");
}

#[test]
fn thread_mode_pipelines_syncs_and_reopens_cleanly() {
    for prealloc in [Prealloc::None, Prealloc::ZeroFill] {
        let d = TempDir::new("thread");
        let opts = LogOptions { write_buffer_bytes: 1 << 20, ..tiny(prealloc) };
        let mut m = Model::new(true);
        let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
        log.start_sync_thread("test-sync").unwrap();
        assert_eq!(log.sync_start().unwrap(), 0, "nothing pending, nothing started");
        m.promise(&mut log, b(2));
        m.accept(&mut log, 0, b(2), b"zero");
        assert_eq!(log.sync_start().unwrap(), 1);
        assert!(log.sync_in_flight());
        // Appended while ticket 1 is in flight: nothing reaches the file yet; they ride on
        // ticket 2, which starts when 1 completes.
        for s in 1..40 {
            m.accept(&mut log, s, b(2), &[s as u8; 100]); // crosses segments
        }
        assert_eq!(log.sync_start().unwrap(), 2);
        assert_eq!(log.sync_start().unwrap(), 2, "the same next sync");
        let mut seen = settle(&mut log);
        if seen.last() != Some(&2) {
            seen.extend(settle(&mut log));
        }
        assert_eq!(seen.last(), Some(&2), "{seen:?}");
        assert!(!log.pending());
        let st = log.stats().clone();
        assert_eq!((st.syncs, st.syncs_chained, st.sync_waits), (2, 1, 0), "{st:?}");
        assert!(st.records_restamped >= 39, "{st:?}");
        assert_eq!(log.sync_start().unwrap(), 2, "nothing new: the last ticket");
        m.check(&log);
        // More, then a blocking sync waits for the one in flight and covers the rest.
        m.accept(&mut log, 40, b(2), b"forty");
        assert_eq!(log.sync_start().unwrap(), 3);
        m.trim(&mut log, 5);
        assert_eq!(log.sync().unwrap().records, 1);
        assert!(!log.sync_in_flight() && !log.pending());
        assert_eq!(log.sync_poll().unwrap(), Some(3));
        assert_eq!(log.stats().sync_waits, 1);
        m.check(&log);
        drop(log);
        let (log, rep) = AcceptorLog::open(d.path(), opts).unwrap();
        assert_eq!(rep.torn, None, "every record of a completed sync checks out");
        m.check(&log);
    }
}

#[test]
fn thread_mode_sync_wait_blocks_until_the_sync_completes() {
    let d = TempDir::new("thread-wait");
    let mut log = AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    log.start_sync_thread("test-sync").unwrap();
    assert_eq!(log.sync_wait().unwrap(), None, "nothing in flight: returns at once");
    log.set_accepted(Slot(0), b(1), b"x").unwrap();
    assert_eq!(log.sync_start().unwrap(), 1);
    log.set_accepted(Slot(1), b(1), b"y").unwrap();
    assert_eq!(log.sync_start().unwrap(), 2);
    assert_eq!(log.sync_wait().unwrap(), Some(1), "ticket 1 done, 2 started after it");
    assert!(log.sync_in_flight());
    assert_eq!(log.sync_wait().unwrap(), Some(2));
    assert!(!log.sync_in_flight() && !log.pending());
}

#[test]
fn thread_mode_overflow_waits_for_the_sync_in_flight() {
    let d = TempDir::new("thread-overflow");
    let opts = tiny(Prealloc::None); // 1 KiB write buffer
    let mut m = Model::new(true);
    let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
    log.start_sync_thread("test-sync").unwrap();
    m.accept(&mut log, 0, b(1), b"first");
    assert_eq!(log.sync_start().unwrap(), 1);
    for s in 1..20 {
        m.accept(&mut log, s, b(1), &[7; 200]);
    }
    assert!(log.stats().sync_waits >= 1, "{:?}", log.stats());
    settle(&mut log);
    log.sync().unwrap();
    m.check(&log);
    drop(log);
    let (log, _) = AcceptorLog::open(d.path(), opts).unwrap();
    m.check(&log);
}

#[test]
fn thread_mode_a_failed_write_poisons_the_log() {
    let d = TempDir::new("thread-poison");
    let mut log = AcceptorLog::create(d.path(), tiny(Prealloc::None), true).unwrap();
    log.start_sync_thread("test-sync").unwrap();
    log.set_accepted(Slot(0), b(1), b"x").unwrap();
    log.fail_next_write = true;
    assert!(matches!(log.sync_start(), Err(WalError::Io { .. })));
    assert!(matches!(log.sync_start(), Err(WalError::Poisoned { .. })));
    assert!(matches!(log.sync_poll(), Err(WalError::Poisoned { .. })));
    assert!(matches!(log.sync(), Err(WalError::Poisoned { .. })));
}

/// Thread mode, random operations, asynchronous syncs and crashes (the log dropped with a
/// sync in flight, one requested, records buffered, overflow flushes): every reopen is
/// clean and gives a state at or after the last completed sync, one the operations went
/// through.
#[test]
fn thread_mode_random_crashes_recover_a_synced_state() {
    for seed in 0..16u64 {
        let mut rng = Rng(1000 + seed);
        let d = TempDir::new("thread-random");
        let prealloc = if seed % 2 == 0 { Prealloc::None } else { Prealloc::ZeroFill };
        let opts =
            LogOptions { write_buffer_bytes: 300 + 700 * (seed % 3) as usize, ..tiny(prealloc) };
        let mut log = AcceptorLog::create(d.path(), opts.clone(), true).unwrap();
        log.start_sync_thread("test-sync").unwrap();
        let mut m = Model::new(true);
        // States the log went through since (and including) the newest one known durable:
        // ticket -> index in `states` of the state it covers at least.
        let mut states = vec![m.clone()];
        let mut tickets: Vec<(u64, usize)> = Vec::new();
        let mut round = 1;
        for _crash in 0..5 {
            for _ in 0..rng.below(150) {
                match rng.below(24) {
                    0 => {
                        round += 1;
                        m.promise(&mut log, b(round));
                    }
                    1 => m.trim(&mut log, m.low.0 + rng.below(6)),
                    2 => m.voting(&mut log, rng.below(2) == 0),
                    3..=6 => {
                        let t = log.sync_start().unwrap();
                        tickets.push((t, states.len() - 1));
                    }
                    7..=9 => {
                        if let Some(done) = log.sync_poll().unwrap() {
                            // Everything up to the state `done` covers is durable: forget
                            // the states before it.
                            let upto = tickets
                                .iter()
                                .filter(|(t, _)| *t <= done)
                                .map(|&(_, i)| i)
                                .max()
                                .unwrap_or(0);
                            states.drain(..upto);
                            tickets.retain(|(t, _)| *t > done);
                            for (_, i) in tickets.iter_mut() {
                                *i -= upto;
                            }
                        }
                    }
                    10 => {
                        log.sync().unwrap();
                        states = vec![m.clone()];
                        tickets.clear();
                    }
                    11 => m.check(&log),
                    12 => {
                        log.maintain().unwrap();
                    }
                    _ => {
                        let s = m.low.0 + rng.below(30);
                        let n = rng.below(257) as usize;
                        let v = rng.bytes(n);
                        m.accept(&mut log, s, b(round), &v);
                    }
                }
                if states.last() != Some(&m) {
                    states.push(m.clone());
                }
            }
            drop(log); // crash (the thread finishes its fdatasync; the buffer is lost)
            let (l, _) = AcceptorLog::open(d.path(), opts.clone())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            log = l;
            log.start_sync_thread("test-sync").unwrap();
            let at = states.iter().position(|st| st.same(&log));
            let at = at.unwrap_or_else(|| panic!("seed {seed}: reopened in a state never synced"));
            m = states[at].clone();
            m.check(&log);
            states = vec![m.clone()];
            tickets.clear();
        }
    }
}

#[test]
fn datadir_init_open_rejoin() {
    let t = TempDir::new("datadir");
    let root = t.path().join("node");
    let opts = tiny(Prealloc::None);
    let fp = "cluster \"blue\" \\ 3 replicas";
    // Missing or empty: a clear message, never a fresh member.
    let e = DataDir::open(&root, ReplicaId(2), fp, 2).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataDirError::NoState { .. }), "{msg}");
    assert!(msg.contains(root.to_str().unwrap()) && msg.contains("replica 2"), "{msg}");
    assert!(msg.contains("--init") && msg.contains("--rejoin"), "{msg}");
    std::fs::create_dir_all(&root).unwrap();
    assert!(matches!(DataDir::open(&root, ReplicaId(2), fp, 2), Err(DataDirError::NoState { .. })));

    let dd = DataDir::init(&root, ReplicaId(2), fp, 2, &opts).unwrap();
    assert_eq!(dd.fingerprint(), fp);
    let e = DataDir::init(&root, ReplicaId(2), fp, 2, &opts).unwrap_err();
    assert!(matches!(e, DataDirError::NotEmpty { .. }), "{e}");
    assert!(e.to_string().contains("node.meta"), "{e}");

    let dd2 = DataDir::open(&root, ReplicaId(2), fp, 2).unwrap();
    assert_eq!(dd, dd2);
    let (mut log, _) = dd2.open_group(GroupId(1), opts.clone()).unwrap();
    assert!(log.voting());
    log.set_promised(b(4));
    log.sync().unwrap();
    drop(log);

    let e = DataDir::open(&root, ReplicaId(1), fp, 2).unwrap_err();
    assert!(matches!(e, DataDirError::Mismatch { field: "replica", .. }), "{e}");
    let e = DataDir::open(&root, ReplicaId(2), "another cluster", 2).unwrap_err();
    assert!(matches!(e, DataDirError::Mismatch { field: "cluster fingerprint", .. }), "{e}");
    assert!(e.to_string().contains("another cluster"), "{e}");
    let e = DataDir::open(&root, ReplicaId(2), fp, 3).unwrap_err();
    assert!(matches!(e, DataDirError::Mismatch { field: "group count", .. }), "{e}");

    // A group whose log vanished.
    std::fs::rename(dd.group_dir(GroupId(0)), t.path().join("g0")).unwrap();
    let e = DataDir::open(&root, ReplicaId(2), fp, 2).unwrap_err();
    assert!(matches!(e, DataDirError::Log { err: WalError::NoLog { .. }, .. }), "{e}");
    assert!(e.to_string().contains("--rejoin"), "{e}");

    // Rejoin: everything moved aside (never deleted), fresh logs that must not vote.
    let (dd3, lost) = DataDir::rejoin(&root, ReplicaId(2), fp, 2, &opts).unwrap();
    let lost = lost.expect("moved aside");
    assert!(lost.file_name().unwrap().to_str().unwrap().starts_with("lost-"));
    assert!(
        lost.join("node.meta").exists()
            && lost.join("group-1").join("wal-0000000000000000.seg").exists()
    );
    let (log, _) = dd3.open_group(GroupId(1), opts.clone()).unwrap();
    assert!(!log.voting());
    assert_eq!(log.promised(), Ballot::NONE);
    drop(log);
    DataDir::open(&root, ReplicaId(2), fp, 2).unwrap();
    // A second rejoin keeps the first lost- directory where it is.
    let (_, lost2) = DataDir::rejoin(&root, ReplicaId(2), fp, 2, &opts).unwrap();
    assert!(lost.exists() && lost2.unwrap() != lost);

    // Files but no node.meta: an interrupted init.
    let t2 = TempDir::new("datadir-nometa");
    std::fs::create_dir_all(t2.path().join("group-0")).unwrap();
    let e = DataDir::open(t2.path(), ReplicaId(0), fp, 1).unwrap_err();
    assert!(matches!(e, DataDirError::NoMeta { .. }), "{e}");
    assert!(matches!(
        DataDir::init(&root, ReplicaId(2), "bad\nfp", 1, &opts),
        Err(DataDirError::BadFingerprint(_))
    ));
}
