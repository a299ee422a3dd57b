//! `AcceptorLog`: the live side (append, group commit, reads, segment upkeep).
//! Opening an existing log is in `recover.rs`.
//!
//! # Syncing on a thread of its own ([`AcceptorLog::start_sync_thread`])
//! By default [`AcceptorLog::sync`] blocks its caller in fdatasync. With a sync thread the
//! caller uses [`AcceptorLog::sync_start`] and [`AcceptorLog::sync_poll`] instead and never
//! blocks: `sync_start` appends the Commit record and writes the buffer (pwrite, page
//! cache) as `sync` does, then hands the fdatasync of the dirty segments (and the directory
//! fsync after a rotation) to the log's thread through a channel of one request;
//! `sync_poll` takes the completion from a channel without waiting. One fdatasync is in
//! flight at a time: a `sync_start` while one is in flight only asks for the next, which
//! `sync_poll` starts as soon as it sees the first complete, with every record appended
//! meanwhile (group commit).
//!
//! **The on-disk format is unchanged.** Recovery relies on every record naming the last
//! Commit that a completed fdatasync covered *when the record reached the file*, and on
//! that being the Commit just before it (`recover.rs`). Records appended while a sync is
//! in flight were encoded with the previous watermark, so nothing is written to a segment
//! while a sync is in flight: they wait in the buffer, and the next write re-stamps their
//! `durable_lsn` (and checksum) with the watermark of the sync that completed. An append
//! that overflows the write buffer while a sync is in flight waits for it first (counted
//! in `LogStats::sync_waits`), as does a blocking `sync`.

use super::error::{io_err, WalError};
use super::index::{Entry, Index};
use super::record::{
    self, Record, SegmentHeader, ACCEPT_PREFIX_LEN, COMMIT_RECORD_LEN, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN, SNAPSHOT_LEN,
};
use super::recover::{self, RecoveryReport};
use super::stats::{LogStats, SyncInfo};
use paxos_core::{Ballot, Slot};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// The largest `max_value_bytes` a log accepts (64 MiB): value lengths are u32 on disk and a
/// record must fit in a segment several times over.
pub const MAX_VALUE_BYTES_LIMIT: u32 = 64 << 20;
/// Segments are below 4 GiB (offsets in the index are u32).
pub const MAX_SEGMENT_BYTES: u64 = u32::MAX as u64;
/// Name of the preallocated spare segment while it waits to become the next segment.
pub(crate) const SPARE_NAME: &str = "wal.spare";
/// Name of segment 0 while `create` writes it.
pub(crate) const CREATE_TMP_NAME: &str = "wal-create.tmp";

/// How new segments get their blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prealloc {
    /// Segments grow with each write (every fdatasync then also commits the new file size).
    None,
    /// The next segment is written full of zeros and synced ahead of time (by
    /// [`AcceptorLog::maintain`]), so a later fdatasync only flushes data blocks.
    ZeroFill,
}

/// Tunables of one log. `Default` is for production; tests shrink the sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Segment size limit in bytes (default 64 MiB; at most [`MAX_SEGMENT_BYTES`]).
    pub segment_bytes: u64,
    /// Largest Accept value; larger ones are refused by `set_accepted` (default 1 MiB).
    pub max_value_bytes: u32,
    /// Bound of the in-memory write buffer (default 1 MiB). An append that takes the buffer
    /// past it writes the buffer out (write(2), no fdatasync) and goes on.
    pub write_buffer_bytes: usize,
    /// Largest `slot - low` the index takes (default 2^22 slots, ~96 MiB of index at most).
    pub max_index_slots: u64,
    /// Segment preallocation (default: [`Prealloc::ZeroFill`], chosen by measurement).
    pub prealloc: Prealloc,
    /// Bytes of spare segment zero-filled and synced per `maintain` call (default 1 MiB).
    pub prealloc_step_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
            max_value_bytes: 1 << 20,
            write_buffer_bytes: 1 << 20,
            max_index_slots: 1 << 22,
            prealloc: Prealloc::ZeroFill,
            prealloc_step_bytes: 1 << 20,
        }
    }
}

impl LogOptions {
    /// Bytes of the largest Accept record.
    pub fn max_record_bytes(&self) -> u64 {
        (RECORD_HEADER_LEN + record::pad8(ACCEPT_PREFIX_LEN + self.max_value_bytes as usize)) as u64
    }

    pub fn validate(&self) -> Result<(), WalError> {
        let bad = |s: String| Err(WalError::Options(s));
        if self.max_value_bytes > MAX_VALUE_BYTES_LIMIT {
            return bad(format!(
                "max_value_bytes {} > {MAX_VALUE_BYTES_LIMIT}",
                self.max_value_bytes
            ));
        }
        let need = SEGMENT_HEADER_LEN + SNAPSHOT_LEN + self.max_record_bytes() + COMMIT_RECORD_LEN;
        if self.segment_bytes < need || self.segment_bytes > MAX_SEGMENT_BYTES {
            return bad(format!(
                "segment_bytes {} outside [{need}, {MAX_SEGMENT_BYTES}] (a segment must hold its \
                 header, the state snapshot, one largest record and a commit)",
                self.segment_bytes
            ));
        }
        if self.write_buffer_bytes == 0 || self.max_index_slots == 0 {
            return bad("write_buffer_bytes and max_index_slots must be positive".into());
        }
        if self.prealloc_step_bytes == 0 {
            return bad("prealloc_step_bytes must be positive".into());
        }
        Ok(())
    }
}

/// One segment file of the log (the back of `AcceptorLog::segs` is the current one).
#[derive(Debug)]
pub(crate) struct Segment {
    pub no: u64,
    pub path: PathBuf,
    /// `None` until the first write reaches the file (a rotation only buffers the header).
    /// Shared with the sync thread while it fdatasyncs it.
    pub file: Option<Arc<File>>,
    pub capacity: u64,
    /// Highest slot of any Accept record in the segment.
    pub max_accept: Option<Slot>,
    /// Written since its last fdatasync.
    pub dirty: bool,
    /// Its header and state snapshot are covered by a completed sync.
    pub durable: bool,
}

/// Buffered bytes `buf[start..next chunk's start]` go to segment `seg` at `file_off`.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    seg: u64,
    file_off: u64,
    start: usize,
}

#[derive(Debug)]
struct Spare {
    file: File,
    written: u64,
    capacity: u64,
}

/// What one `maintain` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintainInfo {
    pub segments_deleted: u32,
    pub spare_bytes_zeroed: u64,
    /// A fully zeroed, synced spare segment is waiting for the next rotation.
    pub spare_ready: bool,
}

/// The durable stable state of one acceptor (one Paxos group), in its own directory.
/// See the module docs of [`crate::durable`] for the contract.
#[derive(Debug)]
pub struct AcceptorLog {
    dir: PathBuf,
    dir_file: Arc<File>,
    opts: LogOptions,
    log_id: u64,
    promised: Ballot,
    voting: bool,
    index: Index,
    segs: VecDeque<Segment>,
    /// Offset of the next record in the current segment (counting buffered bytes).
    tail: u64,
    buf: Vec<u8>,
    chunks: Vec<Chunk>,
    next_lsn: u64,
    /// LSN of the last Commit record covered by a completed fdatasync.
    durable_lsn: u64,
    /// `low` as of the last completed sync: only segments dead below it may be deleted.
    durable_low: Slot,
    /// Number of the last completed sync batch.
    batch: u64,
    /// Records in the batch so far, segment snapshots included (the Commit's count).
    batch_records: u32,
    /// Records the caller appended since the last sync.
    batch_user_records: u32,
    pending: bool,
    /// A file was created or renamed since the last directory fsync.
    dir_dirty: bool,
    spare: Option<Spare>,
    zeros: Vec<u8>,
    poisoned: Option<String>,
    stats: LogStats,
    /// Present in thread mode: the thread that runs the fdatasyncs.
    sync_thread: Option<SyncThread>,
    /// The sync the thread is running.
    in_flight: Option<InFlight>,
    /// `sync_start` was called while a sync was in flight: start the next one when it ends.
    sync_requested: bool,
    /// Ticket of the last sync started in thread mode (tickets count from 1).
    ticket_started: u64,
    /// Highest completed ticket not yet reported by `sync_poll`.
    ticket_report: Option<u64>,
    /// Buffered records carry an older `durable_lsn` than the current one (a sync completed
    /// after they were appended): re-stamp them before they are written.
    restamp: bool,
    /// Tests: make the next `write_out` fail as a full disk would.
    #[cfg(test)]
    pub(crate) fail_next_write: bool,
}

/// Path of segment `no` in `dir`.
pub fn segment_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("wal-{no:016x}.seg"))
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "fsync directory"))
}

/// Writes `len` zero bytes at `off` in pieces of at most 1 MiB.
pub(crate) fn write_zeros(f: &File, path: &Path, off: u64, len: u64) -> Result<(), WalError> {
    let zeros = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], off + done).map_err(io_err(path, "write zeros"))?;
        done += n as u64;
    }
    Ok(())
}

/// State that `recover` rebuilt from disk, handed to `AcceptorLog::from_recovered`.
pub(crate) struct Recovered {
    pub log_id: u64,
    pub promised: Ballot,
    pub low: Slot,
    pub voting: bool,
    pub index: Index,
    pub segs: VecDeque<Segment>,
    pub tail: u64,
    pub last_commit_lsn: u64,
    pub batch: u64,
}

impl AcceptorLog {
    /// Creates a new, empty log in `dir` (created if missing) with the given voting state.
    /// Fails with [`WalError::Exists`] if `dir` already holds a log. Segment 0 is written
    /// under a temporary name, synced and renamed, so a crash leaves either no log or a
    /// complete one.
    pub fn create(dir: &Path, opts: LogOptions, voting: bool) -> Result<AcceptorLog, WalError> {
        opts.validate()?;
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
        if recover::has_segments(dir)? {
            return Err(WalError::Exists { dir: dir.to_path_buf() });
        }
        let log_id = new_log_id();
        let mut buf = Vec::new();
        SegmentHeader { log_id, segment: 0, capacity: opts.segment_bytes }.encode(&mut buf);
        let recs = [
            Record::Promise { ballot: Ballot::NONE },
            Record::Trim { low: Slot::ZERO },
            Record::Voting { voting },
            Record::Commit { batch: 1, records: 3 },
        ];
        for (i, r) in recs.iter().enumerate() {
            record::encode(&mut buf, 1 + i as u64, 0, 0, r);
        }
        let tmp = dir.join(CREATE_TMP_NAME);
        let f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp);
        let f = f.map_err(io_err(&tmp, "create"))?;
        if opts.prealloc == Prealloc::ZeroFill {
            write_zeros(&f, &tmp, 0, opts.segment_bytes)?;
        }
        f.write_all_at(&buf, 0).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        let seg0 = segment_path(dir, 0);
        std::fs::rename(&tmp, &seg0).map_err(io_err(&seg0, "rename new segment"))?;
        fsync_dir(dir)?;
        Ok(AcceptorLog::open(dir, opts)?.0)
    }

    /// Opens the log in `dir` and rebuilds its state. A torn tail (the unsynced end of the
    /// last batch) is cut and zeroed; corruption of synced records is [`WalError::Corrupt`];
    /// a directory without a log is [`WalError::NoLog`]. See `docs/storage-format.md`.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<(AcceptorLog, RecoveryReport), WalError> {
        opts.validate()?;
        let (r, report) = recover::recover(dir, &opts)?;
        let dir_file = File::open(dir).map_err(io_err(dir, "open directory"))?;
        let buf_cap = opts.write_buffer_bytes + opts.max_record_bytes() as usize;
        let log = AcceptorLog {
            dir: dir.to_path_buf(),
            dir_file: Arc::new(dir_file),
            log_id: r.log_id,
            promised: r.promised,
            voting: r.voting,
            index: r.index,
            segs: r.segs,
            tail: r.tail,
            buf: Vec::with_capacity(buf_cap),
            chunks: Vec::new(),
            next_lsn: r.last_commit_lsn + 1,
            durable_lsn: r.last_commit_lsn,
            durable_low: r.low,
            batch: r.batch,
            batch_records: 0,
            batch_user_records: 0,
            pending: false,
            dir_dirty: false,
            spare: None,
            zeros: Vec::new(),
            poisoned: None,
            stats: LogStats::default(),
            sync_thread: None,
            in_flight: None,
            sync_requested: false,
            ticket_started: 0,
            ticket_report: None,
            restamp: false,
            #[cfg(test)]
            fail_next_write: false,
            opts,
        };
        Ok((log, report))
    }

    /// Whether `dir` holds a log (at least one segment file).
    pub fn exists(dir: &Path) -> Result<bool, WalError> {
        recover::has_segments(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn options(&self) -> &LogOptions {
        &self.opts
    }
    pub fn promised(&self) -> Ballot {
        self.promised
    }
    /// Whether this acceptor may vote. `false` after a rejoin: it lost its state and must
    /// not answer Prepare or Accept until a recovery protocol sets it back to `true`.
    pub fn voting(&self) -> bool {
        self.voting
    }
    pub fn low(&self) -> Slot {
        self.index.low()
    }
    /// One past the highest accepted slot, or `low()`.
    pub fn high(&self) -> Slot {
        self.index.high()
    }
    pub fn accepted_ballot(&self, s: Slot) -> Option<Ballot> {
        self.index.get(s).map(|e| e.ballot)
    }
    /// Records appended since the last completed sync.
    pub fn pending(&self) -> bool {
        self.pending
    }
    /// LSN of the last record made durable by `sync` (or found at `open`).
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }
    /// (current segment number, offset of the next record), buffered bytes included.
    #[cfg(test)]
    pub(crate) fn tail_pos(&self) -> (u64, u64) {
        (self.segs.back().map_or(0, |s| s.no), self.tail)
    }

    /// Numbers of the live segment files, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = u64> + '_ {
        self.segs.iter().map(|s| s.no)
    }

    pub fn set_promised(&mut self, b: Ballot) {
        self.promised = b;
        self.append(&Record::Promise { ballot: b });
        self.after_append();
    }

    pub fn set_voting(&mut self, v: bool) {
        self.voting = v;
        self.append(&Record::Voting { voting: v });
        self.after_append();
    }

    /// Records `value` as accepted at `b` for `s` (no system call unless the write buffer
    /// overflows). A slot below `low()` is ignored, as in `MemStorage`. Refuses, with nothing
    /// appended, a value above `max_value_bytes` and a slot `max_index_slots` or more above
    /// `low()`, and every append after an I/O failure.
    pub fn set_accepted(&mut self, s: Slot, b: Ballot, value: &[u8]) -> Result<(), WalError> {
        if let Some(cause) = &self.poisoned {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        if value.len() > self.opts.max_value_bytes as usize {
            return Err(WalError::ValueTooLarge {
                len: value.len(),
                max: self.opts.max_value_bytes,
            });
        }
        let low = self.index.low();
        if s < low {
            return Ok(());
        }
        if s.0 - low.0 >= self.opts.max_index_slots {
            let max_index_slots = self.opts.max_index_slots;
            return Err(WalError::SlotOutOfWindow { slot: s.0, low: low.0, max_index_slots });
        }
        let (seg, off) = self.append(&Record::Accept { slot: s, ballot: b, value });
        let e = Entry { ballot: b, seg: seg as u32, off: off as u32, len: value.len() as u32 };
        self.index.set(s, e);
        if let Some(cur) = self.segs.back_mut() {
            cur.max_accept = cur.max_accept.max(Some(s));
        }
        self.after_append();
        Ok(())
    }

    /// Forgets every slot below `below` (no-op unless above `low()`). Segments whose Accept
    /// records all fall below the trim point are deleted by `maintain` once it is durable.
    pub fn trim(&mut self, below: Slot) {
        if below <= self.index.low() {
            return;
        }
        self.index.trim(below);
        self.append(&Record::Trim { low: below });
        self.after_append();
    }

    /// Reads the accepted value of `s` into `out` (cleared first) and returns its ballot, or
    /// `Ok(None)` if `s` has none. Values still in the write buffer are copied from it; the
    /// others are read with one pread and their checksum checked.
    pub fn read_value(&self, s: Slot, out: &mut Vec<u8>) -> Result<Option<Ballot>, WalError> {
        out.clear();
        let Some(e) = self.index.get(s).copied() else { return Ok(None) };
        let rec_len = RECORD_HEADER_LEN + record::pad8(ACCEPT_PREFIX_LEN + e.len as usize);
        let vstart = RECORD_HEADER_LEN + ACCEPT_PREFIX_LEN;
        if let Some(at) = self.buffered_at(e.seg as u64, e.off as u64) {
            out.extend_from_slice(&self.buf[at + vstart..at + vstart + e.len as usize]);
            return Ok(Some(e.ballot));
        }
        let first = self.segs.front().map_or(0, |s| s.no);
        let seg = (e.seg as u64).checked_sub(first).and_then(|i| self.segs.get(i as usize));
        let Some((seg, Some(file))) = seg.map(|s| (s, s.file.as_ref())) else {
            let why = format!("index points at missing segment {} for slot {}", e.seg, s.0);
            return Err(WalError::Corrupt { file: self.dir.clone(), offset: 0, why });
        };
        out.resize(rec_len, 0);
        file.read_exact_at(out, e.off as u64).map_err(io_err(&seg.path, "read value"))?;
        let hb: &[u8; RECORD_HEADER_LEN] = out[..RECORD_HEADER_LEN].try_into().expect("32 bytes");
        let rec = record::parse_header(hb, MAX_VALUE_BYTES_LIMIT + ACCEPT_PREFIX_LEN as u32)
            .filter(|h| record::check_crc(h, out))
            .and_then(|h| record::decode_body(&h, out));
        let ok = matches!(rec, Some(Record::Accept { slot, ballot, .. })
            if slot == s && ballot == e.ballot);
        if !ok {
            let why = format!("Accept record of slot {} fails its checksum on read", s.0);
            return Err(WalError::Corrupt { file: seg.path.clone(), offset: e.off as u64, why });
        }
        out.truncate(vstart + e.len as usize);
        out.drain(..vstart);
        Ok(Some(e.ballot))
    }

    /// Makes everything appended so far durable: one Commit record closes the batch, then
    /// ONE write and ONE fdatasync (two of each, plus a directory fsync, when the batch
    /// crossed into a new segment). Nothing pending: returns at once, no system call.
    /// Any failure poisons the log: every later sync fails with [`WalError::Poisoned`].
    ///
    /// In thread mode it first waits for the sync in flight (and the one requested after
    /// it), then syncs the rest on the calling thread: when it returns, every ticket handed
    /// out is complete.
    pub fn sync(&mut self) -> Result<SyncInfo, WalError> {
        if let Some(cause) = &self.poisoned {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        if self.in_flight.is_some() {
            self.stats.sync_waits += 1;
            while self.in_flight.is_some() {
                self.wait_sync()?;
            }
        }
        if !self.pending {
            return Ok(SyncInfo { records: 0, bytes: 0, lsn: self.durable_lsn, batch: self.batch });
        }
        let t0 = Instant::now();
        let records = self.batch_user_records;
        let commit_lsn = self.next_lsn;
        self.append(&Record::Commit { batch: self.batch + 1, records: self.batch_records });
        let bytes = self.stats.bytes_written;
        let r = self.write_out().and_then(|()| self.fdatasync_dirty());
        if let Err(e) = r {
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        self.durable_lsn = commit_lsn;
        self.durable_low = self.index.low();
        self.batch += 1;
        self.batch_records = 0;
        self.batch_user_records = 0;
        self.pending = false;
        for s in self.segs.iter_mut() {
            s.durable |= s.file.is_some();
        }
        let bytes = self.stats.bytes_written - bytes;
        self.stats.record_sync(records as u64, t0.elapsed().as_nanos() as u64);
        Ok(SyncInfo { records, bytes, lsn: commit_lsn, batch: self.batch })
    }

    /// Thread mode: runs every later fdatasync of this log on a thread of its own (named
    /// `name`), for [`AcceptorLog::sync_start`] / [`AcceptorLog::sync_poll`]. The thread
    /// inherits the caller's CPU affinity. It ends when the log is dropped (after the
    /// fdatasync it is running, if any). Calling it again does nothing.
    pub fn start_sync_thread(&mut self, name: &str) -> Result<(), WalError> {
        if self.sync_thread.is_none() {
            self.sync_thread =
                Some(SyncThread::spawn(name).map_err(io_err(&self.dir, "spawn sync thread"))?);
        }
        Ok(())
    }

    /// Whether fdatasyncs run on the log's own thread.
    pub fn has_sync_thread(&self) -> bool {
        self.sync_thread.is_some()
    }

    /// Whether a sync started by `sync_start` has not completed yet.
    pub fn sync_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Starts making everything appended so far durable and returns the ticket that covers
    /// it (see [`paxos_core::Storage::sync_start`]); never blocks in thread mode. Without a
    /// sync thread it is `sync` and returns 0 (durable already). Nothing appended since the
    /// last ticket: that ticket again (0 if there was none). A sync in flight: the next
    /// ticket, started by `sync_poll` once the one in flight completes.
    pub fn sync_start(&mut self) -> Result<u64, WalError> {
        if let Some(cause) = &self.poisoned {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        if self.sync_thread.is_none() {
            self.sync()?;
            return Ok(0);
        }
        if !self.pending {
            return Ok(self.ticket_started + u64::from(self.sync_requested));
        }
        if let Some(f) = &self.in_flight {
            self.sync_requested = true;
            return Ok(f.ticket + 1);
        }
        self.start_background()
    }

    /// Never blocks: the highest ticket completed since the last call, if any (see
    /// [`paxos_core::Storage::sync_poll`]). A completion with a sync requested meanwhile
    /// starts that one. A failed fdatasync poisons the log and is returned.
    pub fn sync_poll(&mut self) -> Result<Option<u64>, WalError> {
        if let Some(cause) = &self.poisoned {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        if self.in_flight.is_some() {
            let done = match self.sync_thread.as_ref().map(|t| t.done.try_recv()) {
                Some(Ok(done)) => Some(done),
                Some(Err(TryRecvError::Empty)) => None,
                Some(Err(TryRecvError::Disconnected)) | None => {
                    return Err(self.poison_thread_gone());
                }
            };
            if let Some(done) = done {
                self.complete(done)?;
            }
        }
        Ok(self.ticket_report.take())
    }

    /// `sync_poll`, but blocks until the sync in flight (if any) completes.
    pub fn sync_wait(&mut self) -> Result<Option<u64>, WalError> {
        if let Some(cause) = &self.poisoned {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        if self.in_flight.is_some() {
            self.wait_sync()?;
        }
        Ok(self.ticket_report.take())
    }

    /// Thread mode: the Commit record, the write, and the fdatasync handed to the thread.
    fn start_background(&mut self) -> Result<u64, WalError> {
        let t0 = Instant::now();
        let records = self.batch_user_records;
        let commit_lsn = self.next_lsn;
        self.append(&Record::Commit { batch: self.batch + 1, records: self.batch_records });
        let bytes = self.stats.bytes_written;
        if let Err(e) = self.write_out() {
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        let mut job = SyncJob { files: Vec::new(), dir: None };
        for s in self.segs.iter_mut().filter(|s| s.dirty) {
            if let Some(f) = &s.file {
                job.files.push((s.no, Arc::clone(f)));
            }
            s.dirty = false;
        }
        if std::mem::take(&mut self.dir_dirty) {
            job.dir = Some(Arc::clone(&self.dir_file));
        }
        let sent = self.sync_thread.as_ref().is_some_and(|t| t.jobs.try_send(job).is_ok());
        if !sent {
            return Err(self.poison_thread_gone());
        }
        let ticket = self.ticket_started + 1;
        self.ticket_started = ticket;
        self.in_flight = Some(InFlight {
            ticket,
            commit_lsn,
            low: self.index.low(),
            records,
            bytes: self.stats.bytes_written - bytes,
            t0,
        });
        self.batch_records = 0;
        self.batch_user_records = 0;
        self.pending = false;
        Ok(ticket)
    }

    /// The sync in flight ended (`done`): the watermark moves, and a requested sync starts.
    fn complete(&mut self, done: SyncDone) -> Result<(), WalError> {
        let Some(f) = self.in_flight.take() else { return Ok(()) };
        if let Err((seg, err)) = done.result {
            let e = match seg {
                Some(no) => {
                    WalError::Io { path: segment_path(&self.dir, no), op: "fdatasync", err }
                }
                None => WalError::Io { path: self.dir.clone(), op: "fsync directory", err },
            };
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        self.durable_lsn = f.commit_lsn;
        self.durable_low = f.low;
        self.batch += 1;
        // Nothing was written while it was in flight: every segment with a file was synced.
        for s in self.segs.iter_mut() {
            s.durable |= s.file.is_some();
        }
        let ns = done.at.saturating_duration_since(f.t0).as_nanos() as u64;
        self.stats.record_sync(f.records as u64, ns);
        let ns = |a: Instant, b: Instant| b.saturating_duration_since(a).as_nanos() as u64;
        self.stats.sync_handoff_ns_sum += ns(f.t0, done.began);
        self.stats.sync_io_ns_sum += ns(done.began, done.at);
        self.stats.sync_notice_ns_sum += ns(done.at, Instant::now());
        self.stats.bytes_synced_in_background += f.bytes;
        if !self.buf.is_empty() {
            self.restamp = true;
        }
        self.ticket_report = Some(f.ticket);
        if std::mem::take(&mut self.sync_requested) && self.pending {
            self.stats.syncs_chained += 1;
            self.start_background()?;
        }
        Ok(())
    }

    /// Blocks until the sync in flight completes, and handles it.
    fn wait_sync(&mut self) -> Result<(), WalError> {
        match self.sync_thread.as_ref().map(|t| t.done.recv()) {
            Some(Ok(done)) => self.complete(done),
            _ => Err(self.poison_thread_gone()),
        }
    }

    fn poison_thread_gone(&mut self) -> WalError {
        let e = WalError::Io {
            path: self.dir.clone(),
            op: "sync thread",
            err: std::io::Error::other("the sync thread is gone"),
        };
        self.poisoned = Some(e.to_string());
        e
    }

    /// Gives every buffered record the current `durable_lsn` (and a new checksum).
    fn restamp_buffer(&mut self) {
        for i in 0..self.chunks.len() {
            let c = self.chunks[i];
            let end = self.chunks.get(i + 1).map_or(self.buf.len(), |n| n.start);
            // A chunk at offset 0 starts with its segment's header.
            let mut pos = c.start + if c.file_off == 0 { SEGMENT_HEADER_LEN as usize } else { 0 };
            while pos < end {
                pos += record::restamp(&mut self.buf[pos..end], self.durable_lsn);
                self.stats.records_restamped += 1;
            }
        }
    }

    /// Upkeep to call when the loop is idle: deletes segments that are not current and hold
    /// no Accept record at or above the durable trim point, and zero-fills (and syncs) up to
    /// `prealloc_step_bytes` of the spare segment. Bounded work per call.
    pub fn maintain(&mut self) -> Result<MaintainInfo, WalError> {
        if let Some(cause) = &self.poisoned {
            return Err(WalError::Poisoned { cause: cause.clone() });
        }
        let mut info = MaintainInfo::default();
        let mut deleted = false;
        while self.segs.len() >= 2
            && self.segs[1].durable
            && !matches!(self.segs[0].max_accept, Some(m) if m >= self.durable_low)
        {
            let s = self.segs.pop_front().expect("two segments");
            std::fs::remove_file(&s.path).map_err(io_err(&s.path, "delete dead segment"))?;
            info.segments_deleted += 1;
            deleted = true;
        }
        if deleted {
            if let Err(e) = self.dir_file.sync_all().map_err(io_err(&self.dir, "fsync directory")) {
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
            self.stats.segments_deleted += info.segments_deleted as u64;
        }
        if self.opts.prealloc == Prealloc::ZeroFill {
            info.spare_bytes_zeroed = self.zero_spare_step()?;
            info.spare_ready = self.spare.as_ref().is_some_and(|s| s.written == s.capacity);
        }
        Ok(info)
    }

    fn zero_spare_step(&mut self) -> Result<u64, WalError> {
        let path = self.dir.join(SPARE_NAME);
        if self.spare.is_none() {
            let f =
                OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path);
            let file = f.map_err(io_err(&path, "create spare segment"))?;
            self.spare = Some(Spare { file, written: 0, capacity: self.opts.segment_bytes });
        }
        let Some(sp) = self.spare.as_mut() else { return Ok(0) };
        let n = (sp.capacity - sp.written).min(self.opts.prealloc_step_bytes);
        if n == 0 {
            return Ok(0);
        }
        if self.zeros.is_empty() {
            self.zeros = vec![0; 1 << 20];
        }
        let mut done = 0;
        while done < n {
            let k = (n - done).min(self.zeros.len() as u64) as usize;
            let at = sp.written + done;
            sp.file.write_all_at(&self.zeros[..k], at).map_err(io_err(&path, "zero spare"))?;
            done += k as u64;
        }
        sp.file.sync_data().map_err(io_err(&path, "fdatasync spare"))?;
        sp.written += n;
        Ok(n)
    }

    /// Appends `rec` to the write buffer (rotating to a new segment if it does not fit with
    /// a commit after it). Returns (segment number, offset) of the record. After a failure
    /// nothing is buffered any more: the next sync reports it.
    fn append(&mut self, rec: &Record) -> (u64, u64) {
        if self.poisoned.is_some() {
            return (0, 0);
        }
        let len = rec.encoded_len();
        let cap = self.segs.back().map_or(0, |s| s.capacity);
        let reserve = if matches!(rec, Record::Commit { .. }) { 0 } else { COMMIT_RECORD_LEN };
        if self.tail + len + reserve > cap {
            self.rotate();
            if self.poisoned.is_some() {
                return (0, 0);
            }
        }
        let seg = self.segs.back().map_or(0, |s| s.no);
        let at = self.put(seg, rec);
        if !matches!(rec, Record::Commit { .. }) {
            self.batch_user_records += 1;
            self.stats.records += 1;
        }
        (seg, at)
    }

    /// Encodes `rec` at the tail of segment `seg` into the buffer; returns its offset.
    fn put(&mut self, seg: u64, rec: &Record) -> u64 {
        if !matches!(self.chunks.last(), Some(c) if c.seg == seg) {
            self.chunks.push(Chunk { seg, file_off: self.tail, start: self.buf.len() });
        }
        let at = self.tail;
        self.tail += record::encode(&mut self.buf, self.next_lsn, self.durable_lsn, seg, rec);
        self.next_lsn += 1;
        if !matches!(rec, Record::Commit { .. }) {
            self.batch_records += 1;
        }
        self.pending = true;
        at
    }

    /// Starts the next segment in the buffer: its header, then the current promise, low and
    /// voting state, so that older segments can go without losing them.
    fn rotate(&mut self) {
        let no = self.segs.back().map_or(0, |s| s.no + 1);
        if no > u32::MAX as u64 {
            self.poisoned = Some("segment numbers exhausted".into());
            return;
        }
        let capacity = self.opts.segment_bytes;
        self.segs.push_back(Segment {
            no,
            path: segment_path(&self.dir, no),
            file: None,
            capacity,
            max_accept: None,
            dirty: false,
            durable: false,
        });
        self.chunks.push(Chunk { seg: no, file_off: 0, start: self.buf.len() });
        SegmentHeader { log_id: self.log_id, segment: no, capacity }.encode(&mut self.buf);
        self.tail = SEGMENT_HEADER_LEN;
        self.put(no, &Record::Promise { ballot: self.promised });
        self.put(no, &Record::Trim { low: self.index.low() });
        self.put(no, &Record::Voting { voting: self.voting });
        self.stats.rotations += 1;
    }

    /// Bounds the write buffer: past `write_buffer_bytes` it goes to the files now.
    fn after_append(&mut self) {
        if self.buf.len() > self.opts.write_buffer_bytes && self.poisoned.is_none() {
            if self.in_flight.is_some() {
                // Nothing may be written while a sync is in flight (see the module docs):
                // wait for it (it may start the requested one, which writes the buffer).
                self.stats.sync_waits += 1;
                while self.in_flight.is_some() {
                    if self.wait_sync().is_err() {
                        return; // poisoned: the next sync reports it
                    }
                }
                if self.buf.len() <= self.opts.write_buffer_bytes {
                    return;
                }
            }
            self.stats.overflow_flushes += 1;
            if let Err(e) = self.write_out() {
                self.poisoned = Some(e.to_string());
            }
        }
    }

    /// Index into `buf` of the record at (seg, off) if it is still buffered.
    fn buffered_at(&self, seg: u64, off: u64) -> Option<usize> {
        self.chunks.iter().enumerate().find_map(|(i, c)| {
            let end = self.chunks.get(i + 1).map_or(self.buf.len(), |n| n.start);
            let len = (end - c.start) as u64;
            (c.seg == seg && off >= c.file_off && off < c.file_off + len)
                .then(|| c.start + (off - c.file_off) as usize)
        })
    }

    /// Writes the buffer to its segment files (one pwrite per segment touched).
    fn write_out(&mut self) -> Result<(), WalError> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_write) {
            let err = std::io::Error::from_raw_os_error(28); // ENOSPC
            return Err(WalError::Io { path: self.dir.clone(), op: "write", err });
        }
        debug_assert!(self.in_flight.is_none(), "nothing is written while a sync is in flight");
        if std::mem::take(&mut self.restamp) {
            self.restamp_buffer();
        }
        let first = self.segs.front().map_or(0, |s| s.no);
        for i in 0..self.chunks.len() {
            let c = self.chunks[i];
            let end = self.chunks.get(i + 1).map_or(self.buf.len(), |n| n.start);
            let si = (c.seg - first) as usize;
            if self.segs[si].file.is_none() {
                self.open_new_segment(si)?;
            }
            let seg = &mut self.segs[si];
            let f = seg.file.as_ref().expect("opened above");
            f.write_all_at(&self.buf[c.start..end], c.file_off)
                .map_err(io_err(&seg.path, "write"))?;
            seg.dirty = true;
            self.stats.bytes_written += (end - c.start) as u64;
        }
        self.buf.clear();
        self.chunks.clear();
        Ok(())
    }

    /// Gives segment `si` its file: the spare if one is fully zeroed, else a new file.
    fn open_new_segment(&mut self, si: usize) -> Result<(), WalError> {
        let path = self.segs[si].path.clone();
        let ready = self.spare.as_ref().is_some_and(|s| s.written == s.capacity);
        let file = match self.spare.take() {
            Some(sp) if ready && sp.capacity == self.segs[si].capacity => {
                let from = self.dir.join(SPARE_NAME);
                std::fs::rename(&from, &path).map_err(io_err(&path, "rename spare segment"))?;
                sp.file
            }
            other => {
                self.spare = other;
                self.stats.spare_misses += 1;
                let f = OpenOptions::new().read(true).write(true).create_new(true).open(&path);
                f.map_err(io_err(&path, "create segment"))?
            }
        };
        self.segs[si].file = Some(Arc::new(file));
        self.dir_dirty = true;
        Ok(())
    }

    /// fdatasync every segment written since its last one (oldest first), then the directory
    /// if a segment file was created or renamed.
    fn fdatasync_dirty(&mut self) -> Result<(), WalError> {
        for s in self.segs.iter_mut().filter(|s| s.dirty) {
            if let Some(f) = &s.file {
                f.sync_data().map_err(io_err(&s.path, "fdatasync"))?;
            }
            s.dirty = false;
        }
        if self.dir_dirty {
            self.dir_file.sync_all().map_err(io_err(&self.dir, "fsync directory"))?;
            self.dir_dirty = false;
        }
        Ok(())
    }
}

/// What the sync thread is asked to do: fdatasync these segments (oldest first), then fsync
/// the directory if given.
struct SyncJob {
    files: Vec<(u64, Arc<File>)>,
    dir: Option<Arc<File>>,
}

/// The thread's answer: done, or which file failed (`None`: the directory); when the thread
/// took the request and when it finished.
struct SyncDone {
    result: Result<(), (Option<u64>, std::io::Error)>,
    began: Instant,
    at: Instant,
}

/// A sync handed to the thread.
#[derive(Debug)]
struct InFlight {
    ticket: u64,
    commit_lsn: u64,
    /// `low` when it started: durable once it completes.
    low: Slot,
    records: u32,
    bytes: u64,
    t0: Instant,
}

/// A log's sync thread: one request at a time in, one completion at a time out.
struct SyncThread {
    jobs: SyncSender<SyncJob>,
    done: Receiver<SyncDone>,
    handle: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for SyncThread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SyncThread")
    }
}

impl SyncThread {
    fn spawn(name: &str) -> std::io::Result<SyncThread> {
        let (jobs, job_rx) = mpsc::sync_channel::<SyncJob>(1);
        let (done_tx, done) = mpsc::sync_channel::<SyncDone>(1);
        let handle = std::thread::Builder::new().name(name.to_string()).spawn(move || {
            // Ends when the log drops its sender.
            while let Ok(job) = job_rx.recv() {
                let began = Instant::now();
                let mut result = Ok(());
                for (no, f) in &job.files {
                    if let Err(e) = f.sync_data() {
                        result = Err((Some(*no), e));
                        break;
                    }
                }
                if let (Ok(()), Some(d)) = (&result, &job.dir) {
                    if let Err(e) = d.sync_all() {
                        result = Err((None, e));
                    }
                }
                drop(job);
                if done_tx.send(SyncDone { result, began, at: Instant::now() }).is_err() {
                    break;
                }
            }
        })?;
        Ok(SyncThread { jobs, done, handle: Some(handle) })
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        // Closing the request channel ends the thread's loop; the completion channel has
        // room for the one answer it may still send.
        let (closed, _) = mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A log id distinct between logs created on one machine (time and process id); it only has
/// to tell one log's segments from another's.
fn new_log_id() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let nanos = t.map_or(0, |d| d.as_nanos() as u64);
    nanos ^ ((std::process::id() as u64) << 40) ^ 0x9e37_79b9_7f4a_7c15
}
