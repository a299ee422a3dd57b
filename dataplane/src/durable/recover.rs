//! Opening a log: scan every segment, replay committed batches, tell a torn tail from
//! corruption, and repair the tail.
//!
//! # The rule
//! The *stream* is the run of valid records with consecutive LSNs from the start of the
//! oldest segment. A batch is applied only when its Commit record is read; the *cut* is the
//! end of the last Commit record. The stream *breaks* at the first place that is not the next
//! valid record (bad checksum, zeros, a gap, end of file).
//!
//! Every record carries `durable_lsn`, the LSN of the last Commit covered by a completed
//! fdatasync when it was appended. Everything after the break is scanned (8-byte steps, to
//! the end of the break's segment and through every later segment) for records that still
//! check out. If one says `durable_lsn > last Commit in the stream`, a sync had completed
//! over bytes the stream lost: **corruption**, reported as `WalError::Corrupt`, never
//! repaired. Otherwise everything after the cut belongs to the batch whose sync never
//! completed (its sectors may have landed in any order): a **torn tail**, safe to drop. It is
//! dropped by zeroing the cut segment from the cut to its last non-zero byte, fdatasync, and
//! deleting later segments (then fsync of the directory), so stale records can never follow
//! new appends. Limit: a fault in the last synced batch with nothing written after it looks
//! like a torn tail (no later record vouches for it); see docs/storage-format.md.

use super::error::{io_err, WalError};
use super::index::{Entry, Index};
use super::log::{
    fsync_dir, segment_path, write_zeros, LogOptions, Recovered, Segment, CREATE_TMP_NAME,
    MAX_VALUE_BYTES_LIMIT, SPARE_NAME,
};
use super::record::{
    self, Header, Record, SegmentHeader, ACCEPT_PREFIX_LEN, RECORD_ALIGN, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use paxos_core::{Ballot, Slot};
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Largest payload any log of this format may hold (independent of the current options, so
/// that lowering `max_value_bytes` never makes old records look corrupt).
const MAX_PAYLOAD: u32 = MAX_VALUE_BYTES_LIMIT + ACCEPT_PREFIX_LEN as u32;
const READ_CHUNK: usize = 1 << 20;

/// What `open` found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: usize,
    /// Records replayed from committed batches (commits and segment snapshots included).
    pub records: u64,
    /// Number of the last committed batch.
    pub batch: u64,
    /// LSN of the last committed record.
    pub last_lsn: u64,
    /// Set when the tail was torn and has been cut.
    pub torn: Option<TornTail>,
    /// Leftovers of an interrupted `create` or spare preparation, deleted.
    pub removed_leftovers: Vec<PathBuf>,
}

/// A cut torn tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Segment and offset of the cut (end of the last committed batch).
    pub file: PathBuf,
    pub offset: u64,
    /// Why the stream stopped where it did.
    pub why: String,
    /// Valid records after the cut that belonged to the uncommitted batch.
    pub dropped_records: u64,
    /// Bytes zeroed in the cut segment.
    pub zeroed_bytes: u64,
    /// Later segment files deleted.
    pub removed_segments: Vec<PathBuf>,
}

/// Whether `dir` holds at least one segment file.
pub(crate) fn has_segments(dir: &Path) -> Result<bool, WalError> {
    Ok(!list(dir)?.0.is_empty())
}

/// Segment numbers (sorted) and leftover temporary files in `dir`.
fn list(dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>), WalError> {
    let mut nos = Vec::new();
    let mut tmp = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((nos, tmp)),
        Err(e) => {
            return Err(WalError::Io { path: dir.to_path_buf(), op: "list directory", err: e })
        }
    };
    for ent in rd {
        let ent = ent.map_err(io_err(dir, "list directory"))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == SPARE_NAME || name == CREATE_TMP_NAME {
            tmp.push(ent.path());
        } else if let Some(hex) = name.strip_prefix("wal-").and_then(|n| n.strip_suffix(".seg")) {
            if let (16, Ok(no)) = (hex.len(), u64::from_str_radix(hex, 16)) {
                nos.push(no);
            }
        }
    }
    nos.sort_unstable();
    Ok((nos, tmp))
}

/// Buffered positional reads of one segment file.
struct Reader<'a> {
    file: &'a File,
    path: &'a Path,
    len: u64,
    base: u64,
    buf: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a File, path: &'a Path, len: u64) -> Self {
        Reader { file, path, len, base: 0, buf: Vec::new() }
    }

    /// `n` bytes at `off`, or `None` if the file ends before.
    fn get(&mut self, off: u64, n: usize) -> Result<Option<&[u8]>, WalError> {
        if off + n as u64 > self.len {
            return Ok(None);
        }
        if off < self.base || off + n as u64 > self.base + self.buf.len() as u64 {
            let want = (self.len - off).min(READ_CHUNK.max(n) as u64) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, off).map_err(io_err(self.path, "read"))?;
            self.base = off;
        }
        let s = (off - self.base) as usize;
        Ok(Some(&self.buf[s..s + n]))
    }
}

/// A decoded record without borrowed bytes.
#[derive(Clone, Copy, Debug)]
enum Op {
    Promise(Ballot),
    Accept { slot: Slot, ballot: Ballot, seg: usize, off: u64, len: u32 },
    Trim(Slot),
    Voting(bool),
    Commit { batch: u64, records: u32 },
}

/// What lies at one offset of a segment.
enum At {
    /// Not even a record header fits before the end of the file or segment.
    End,
    /// A zero header: no record was ever written here.
    Zero,
    Bad(&'static str),
    Rec(Header, Op),
}

fn record_at(r: &mut Reader, off: u64, cap: u64, seg: usize, seg_no: u64) -> Result<At, WalError> {
    if off + RECORD_HEADER_LEN as u64 > cap {
        return Ok(At::End);
    }
    let Some(hb) = r.get(off, RECORD_HEADER_LEN)? else { return Ok(At::End) };
    if hb.iter().all(|&b| b == 0) {
        return Ok(At::Zero);
    }
    let Some(h) = record::parse_header(hb.try_into().expect("32 bytes"), MAX_PAYLOAD) else {
        return Ok(At::Bad("not a record header"));
    };
    if h.segment != seg_no as u32 {
        return Ok(At::Bad("record of another segment"));
    }
    if off + h.record_len() > cap {
        return Ok(At::Bad("record runs past the segment's capacity"));
    }
    let Some(rb) = r.get(off, h.record_len() as usize)? else {
        return Ok(At::Bad("record cut short by the end of the file"));
    };
    if !record::check_crc(&h, rb) {
        return Ok(At::Bad("checksum mismatch"));
    }
    let op = match record::decode_body(&h, rb) {
        None => return Ok(At::Bad("invalid field in a checksummed record")),
        Some(Record::Promise { ballot }) => Op::Promise(ballot),
        Some(Record::Accept { slot, ballot, value }) => {
            Op::Accept { slot, ballot, seg, off, len: value.len() as u32 }
        }
        Some(Record::Trim { low }) => Op::Trim(low),
        Some(Record::Voting { voting }) => Op::Voting(voting),
        Some(Record::Commit { batch, records }) => Op::Commit { batch, records },
    };
    Ok(At::Rec(h, op))
}

/// Replayed state: committed ops applied, the current batch's ops staged.
struct Replay {
    promised: Ballot,
    voting: bool,
    index: Index,
    max_accept: Vec<Option<Slot>>,
    staged: Vec<Op>,
    max_index_slots: u64,
    /// Number of the oldest segment (ops name segments by position).
    first_no: u64,
}

impl Replay {
    fn apply(&mut self, op: Op) -> Result<(), WalError> {
        match op {
            Op::Promise(b) => self.promised = b,
            Op::Trim(low) => self.index.trim(low),
            Op::Voting(v) => self.voting = v,
            Op::Accept { slot, ballot, seg, off: at, len } => {
                self.max_accept[seg] = self.max_accept[seg].max(Some(slot));
                let low = self.index.low();
                if slot >= low {
                    if slot.0 - low.0 >= self.max_index_slots {
                        let max_index_slots = self.max_index_slots;
                        return Err(WalError::SlotOutOfWindow {
                            slot: slot.0,
                            low: low.0,
                            max_index_slots,
                        });
                    }
                    let seg = (self.first_no + seg as u64) as u32;
                    let e = Entry { ballot, seg, off: at as u32, len };
                    self.index.set(slot, e);
                }
            }
            Op::Commit { .. } => {}
        }
        Ok(())
    }
}

struct SegFile {
    no: u64,
    path: PathBuf,
    file: File,
    len: u64,
    /// From the header, or the file length if the header is bad.
    cap: u64,
}

pub(crate) fn recover(
    dir: &Path,
    opts: &LogOptions,
) -> Result<(Recovered, RecoveryReport), WalError> {
    let mut report = RecoveryReport::default();
    let (nos, leftovers) = list(dir)?;
    if nos.is_empty() {
        return Err(WalError::NoLog { dir: dir.to_path_buf() });
    }
    for p in leftovers {
        std::fs::remove_file(&p).map_err(io_err(&p, "delete leftover"))?;
        report.removed_leftovers.push(p);
    }
    for w in nos.windows(2) {
        if w[1] != w[0] + 1 {
            let why =
                format!("segments {:#x} and {:#x} exist but the ones between do not", w[0], w[1]);
            return Err(WalError::Corrupt { file: segment_path(dir, w[0] + 1), offset: 0, why });
        }
    }
    let mut segs = Vec::with_capacity(nos.len());
    for &no in &nos {
        let path = segment_path(dir, no);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path);
        let file = file.map_err(io_err(&path, "open segment"))?;
        let len = file.metadata().map_err(io_err(&path, "stat segment"))?.len();
        segs.push(SegFile { no, path, file, len, cap: len });
    }
    report.segments = segs.len();

    let mut st = Replay {
        promised: Ballot::NONE,
        voting: true,
        index: Index::new(Slot::ZERO),
        max_accept: vec![None; segs.len()],
        staged: Vec::new(),
        max_index_slots: opts.max_index_slots,
        first_no: nos[0],
    };
    let mut log_id = None;
    let mut expected: Option<u64> = None;
    let mut last_commit = 0u64;
    let mut batch = 0u64;
    let mut have_commit = false;
    let mut cut = (0usize, SEGMENT_HEADER_LEN);
    // Where the stream left each segment (only meaningful up to the break's segment).
    let mut data_end = vec![0u64; segs.len()];
    let mut brk: Option<(usize, u64, &'static str)> = None;

    'segments: for (i, sf) in segs.iter_mut().enumerate() {
        let mut r = Reader::new(&sf.file, &sf.path, sf.len);
        let sh = r.get(0, SEGMENT_HEADER_LEN as usize)?.and_then(SegmentHeader::parse);
        let Some(sh) = sh else {
            brk = Some((i, 0, "bad or missing segment header"));
            break;
        };
        if sh.segment != sf.no || log_id.is_some_and(|id| id != sh.log_id) {
            let why = "segment header names another segment or another log".to_string();
            return Err(WalError::Corrupt { file: sf.path.clone(), offset: 0, why });
        }
        log_id = Some(sh.log_id);
        sf.cap = sh.capacity;
        let mut pos = SEGMENT_HEADER_LEN;
        loop {
            let at = record_at(&mut r, pos, sf.cap, i, sf.no)?;
            let (h, op) = match at {
                At::Rec(h, op) => (h, op),
                At::Bad(why) => {
                    brk = Some((i, pos, why));
                    break 'segments;
                }
                At::End | At::Zero => {
                    data_end[i] = pos;
                    // The tail of a full segment must be clean; a non-zero byte after a zero
                    // header means a record was lost here.
                    let end = sf.len.min(sf.cap);
                    let rest = r.get(pos, (end.max(pos) - pos) as usize)?.unwrap_or(&[]);
                    if i + 1 == nos.len() || rest.iter().any(|&b| b != 0) {
                        brk = Some((i, pos, "end of the records"));
                        break 'segments;
                    }
                    continue 'segments;
                }
            };
            if expected.is_some_and(|e| e != h.lsn) {
                brk = Some((i, pos, "next record is missing (LSN gap)"));
                break 'segments;
            }
            if expected.is_none() {
                // The oldest live segment: the batch before its first record was committed in
                // a segment since deleted (or this is a new log: durable_lsn 0).
                last_commit = h.durable_lsn;
            }
            if h.durable_lsn != last_commit {
                brk = Some((i, pos, "sync watermark disagrees with the stream"));
                break 'segments;
            }
            let rec_len = h.record_len();
            match op {
                Op::Commit { batch: b, records } => {
                    // The first batch of the oldest segment may have begun in a deleted one.
                    let whole = have_commit || last_commit == 0;
                    if whole && records as usize != st.staged.len() {
                        let why = format!(
                            "commit of batch {b} counts {records} records, the stream holds {}",
                            st.staged.len()
                        );
                        return Err(WalError::Corrupt { file: sf.path.clone(), offset: pos, why });
                    }
                    for op in std::mem::take(&mut st.staged) {
                        st.apply(op)?;
                    }
                    report.records += records as u64 + 1;
                    last_commit = h.lsn;
                    batch = b;
                    have_commit = true;
                    cut = (i, pos + rec_len);
                }
                op => st.staged.push(op),
            }
            expected = Some(h.lsn + 1);
            pos += rec_len;
        }
    }
    let (bi, boff, why) = brk.expect("the scan always stops somewhere");
    if !have_commit {
        let why = format!("no committed batch before the stream stops ({why})");
        return Err(WalError::Corrupt { file: segs[bi].path.clone(), offset: boff, why });
    }
    let dropped_records = st.staged.len() as u64;

    // Everything after the break: any record that says a sync covered more than the stream
    // holds proves corruption; the rest is the torn batch.
    let mut nonzero_end = vec![0u64; segs.len()];
    for (j, sf) in segs.iter().enumerate().skip(bi) {
        let mut r = Reader::new(&sf.file, &sf.path, sf.len);
        let start = if j == bi { boff.max(SEGMENT_HEADER_LEN) } else { SEGMENT_HEADER_LEN };
        let mut pos = start;
        while pos < sf.len {
            let n = (sf.len - pos).min(RECORD_ALIGN as u64);
            let w = r.get(pos, n as usize)?.expect("within the file");
            if w.iter().all(|&b| b == 0) {
                pos += RECORD_ALIGN as u64;
                continue;
            }
            nonzero_end[j] = pos + n;
            if let At::Rec(h, _) = record_at(&mut r, pos, sf.len, j, sf.no)? {
                if h.durable_lsn > last_commit {
                    let why = format!(
                        "the stream stops here ({why}) after the commit at LSN {last_commit}, but \
                         {} holds a record (LSN {}, offset {pos}) written after a sync that \
                         covered LSN {}: synced data was lost",
                        sf.path.display(),
                        h.lsn,
                        h.durable_lsn
                    );
                    return Err(WalError::Corrupt {
                        file: segs[bi].path.clone(),
                        offset: boff,
                        why,
                    });
                }
                nonzero_end[j] = pos + h.record_len();
                pos += h.record_len();
                continue;
            }
            pos += RECORD_ALIGN as u64;
        }
    }

    // Repair: zero the cut segment after the cut, delete later segments.
    let (ci, coff) = cut;
    let mut dirty_end = nonzero_end[ci].max(data_end[ci]);
    if bi == ci {
        dirty_end = dirty_end.max(boff);
    }
    let later: Vec<SegFile> = segs.drain(ci + 1..).collect();
    let cf = &segs[ci];
    let mut zeroed = 0;
    if dirty_end > coff {
        let end = dirty_end.next_multiple_of(4096).min(cf.len);
        write_zeros(&cf.file, &cf.path, coff, end - coff)?;
        cf.file.sync_data().map_err(io_err(&cf.path, "fdatasync after zeroing the tail"))?;
        zeroed = end - coff;
    }
    let mut removed = Vec::new();
    for sf in later {
        std::fs::remove_file(&sf.path).map_err(io_err(&sf.path, "delete torn segment"))?;
        removed.push(sf.path);
    }
    if !removed.is_empty() || !report.removed_leftovers.is_empty() {
        fsync_dir(dir)?;
    }
    if zeroed > 0 || !removed.is_empty() {
        report.torn = Some(TornTail {
            file: cf.path.clone(),
            offset: coff,
            why: why.to_string(),
            dropped_records,
            zeroed_bytes: zeroed,
            removed_segments: removed,
        });
    }
    // What we read may have come from the page cache of a process that died before its
    // fdatasync: make it durable before anyone acts on it.
    for sf in &segs {
        sf.file.sync_data().map_err(io_err(&sf.path, "fdatasync at open"))?;
    }
    report.batch = batch;
    report.last_lsn = last_commit;

    let max_accept = st.max_accept;
    let segs: VecDeque<Segment> = segs
        .into_iter()
        .enumerate()
        .map(|(i, sf)| Segment {
            no: sf.no,
            path: sf.path,
            file: Some(std::sync::Arc::new(sf.file)),
            capacity: sf.cap,
            max_accept: max_accept[i],
            dirty: false,
            durable: true,
        })
        .collect();
    let index = st.index;
    let low = index.low();
    Ok((
        Recovered {
            log_id: log_id.expect("a commit was read from a valid segment"),
            promised: st.promised,
            low,
            voting: st.voting,
            index,
            segs,
            tail: coff,
            last_commit_lsn: last_commit,
            batch,
        },
        report,
    ))
}
