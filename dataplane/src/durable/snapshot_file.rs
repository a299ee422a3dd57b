//! Application snapshots on disk, written atomically and off the poll loop.
//!
//! A snapshot file `<dir>/snapshot-<slot:020>.snap` holds the application's state covering
//! every slot below `slot`:
//!
//! ```text
//! offset size field
//!      0    8 magic   "PXSNAP01"
//!      8    8 slot    u64 LE
//!     16    8 len     u64 LE, bytes of state that follow the header
//!     24    4 crc32c  of the state bytes
//!     28    4 reserved, 0
//!     32  len state   the application's bytes
//! ```
//! It is written as `<name>.tmp`, fdatasynced, renamed into place and the directory
//! fsynced, so a crash leaves either the old set of files or the new one, never a torn
//! snapshot under a final name. [`load_latest`] takes the newest file that checks out (a bad
//! one is reported and skipped, never installed).
//!
//! [`SnapshotWriter`] does the writing on a thread of its own, one snapshot at a time (a
//! bounded channel of one): the poll loop serialises the state and hands the bytes over;
//! `durable()` then says which slot is on disk, and only that is reported to the leader as
//! applied (trim follows it). The two newest snapshots are kept.

use paxos_core::Slot;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const MAGIC: &[u8; 8] = b"PXSNAP01";
const HEADER_LEN: usize = 32;
/// Snapshot files kept (the newest ones); older ones are deleted after a new one is durable.
pub const SNAPSHOTS_KEPT: usize = 2;

fn name(slot: Slot) -> String {
    format!("snapshot-{:020}.snap", slot.0)
}

/// The snapshot files in `dir`, newest first.
fn list(dir: &Path) -> std::io::Result<Vec<(Slot, PathBuf)>> {
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        let Some(num) = n.strip_prefix("snapshot-").and_then(|r| r.strip_suffix(".snap")) else {
            continue;
        };
        if let Ok(slot) = num.parse::<u64>() {
            v.push((Slot(slot), e.path()));
        }
    }
    v.sort_by_key(|e| core::cmp::Reverse(e.0));
    Ok(v)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes one snapshot atomically (see the module docs).
pub fn write(dir: &Path, slot: Slot, state: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name(slot));
    let tmp = dir.join(format!("{}.tmp", name(slot)));
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&slot.0.to_le_bytes());
    h[16..24].copy_from_slice(&(state.len() as u64).to_le_bytes());
    h[24..28].copy_from_slice(&crc32c::crc32c(state).to_le_bytes());
    f.write_all(&h)?;
    f.write_all(state)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    fsync_dir(dir)?;
    Ok(path)
}

/// Reads and checks one snapshot file.
pub fn read(path: &Path) -> Result<(Slot, Vec<u8>), String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = [0u8; HEADER_LEN];
    f.read_exact(&mut h).map_err(|e| format!("{}: header: {e}", path.display()))?;
    let word = |r: core::ops::Range<usize>| {
        let mut b = [0u8; 8];
        b[..r.len()].copy_from_slice(&h[r]);
        u64::from_le_bytes(b)
    };
    if &h[..8] != MAGIC || word(28..32) != 0 {
        return Err(format!("{}: not a snapshot file (bad magic)", path.display()));
    }
    let (slot, len, crc) = (Slot(word(8..16)), word(16..24), word(24..28) as u32);
    let mut state = Vec::new();
    f.read_to_end(&mut state).map_err(|e| format!("{}: {e}", path.display()))?;
    if state.len() as u64 != len {
        return Err(format!("{}: {} state bytes, header says {len}", path.display(), state.len()));
    }
    if crc32c::crc32c(&state) != crc {
        return Err(format!("{}: checksum mismatch", path.display()));
    }
    Ok((slot, state))
}

/// The newest snapshot in `dir` that checks out, if any; bad ones are logged and skipped.
pub fn load_latest(dir: &Path) -> std::io::Result<Option<(Slot, Vec<u8>)>> {
    for (_, path) in list(dir)? {
        match read(&path) {
            Ok(s) => return Ok(Some(s)),
            Err(e) => log::error!("skipping a snapshot that does not check out: {e}"),
        }
    }
    Ok(None)
}

/// Shared between the poll loop and the writer thread.
#[derive(Debug, Default)]
struct Shared {
    /// Slot of the newest snapshot on disk (0: none).
    durable: AtomicU64,
    busy: AtomicBool,
    /// The first write error, if any (the node must stop: it cannot make progress durable).
    error: Mutex<Option<String>>,
    written: AtomicU64,
    bytes: AtomicU64,
    /// Time the last write took, from start to directory fsync.
    last_write_us: AtomicU64,
}

/// Writes snapshots on a thread of its own (see the module docs).
pub struct SnapshotWriter {
    tx: Option<SyncSender<(Slot, Vec<u8>)>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotWriter {
    /// A writer for `dir`; `durable` starts at the slot of a snapshot already there.
    pub fn spawn(dir: PathBuf, durable: Slot, name: &str) -> std::io::Result<SnapshotWriter> {
        let shared = Arc::new(Shared::default());
        shared.durable.store(durable.0, Ordering::Relaxed);
        let (tx, rx) = sync_channel::<(Slot, Vec<u8>)>(1);
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || writer_loop(&dir, rx, &sh))?;
        Ok(SnapshotWriter { tx: Some(tx), shared, thread: Some(thread) })
    }

    /// True while a snapshot is being written.
    pub fn busy(&self) -> bool {
        self.shared.busy.load(Ordering::Acquire)
    }

    /// Hands a snapshot covering every slot below `slot` to the writer. Returns false (and
    /// drops it) if one is still being written.
    pub fn submit(&self, slot: Slot, state: Vec<u8>) -> bool {
        let Some(tx) = &self.tx else { return false };
        if self.busy() {
            return false;
        }
        self.shared.busy.store(true, Ordering::Release);
        match tx.try_send((slot, state)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.busy.store(false, Ordering::Release);
                false
            }
        }
    }

    /// Slot of the newest snapshot on disk.
    pub fn durable(&self) -> Slot {
        Slot(self.shared.durable.load(Ordering::Acquire))
    }

    /// The write error that stopped the writer, if any.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// Snapshots written, their bytes, and how long the last one took (us).
    pub fn stats(&self) -> (u64, u64, u64) {
        (
            self.shared.written.load(Ordering::Relaxed),
            self.shared.bytes.load(Ordering::Relaxed),
            self.shared.last_write_us.load(Ordering::Relaxed),
        )
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        self.tx = None; // the thread ends after the snapshot in hand, if any
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer_loop(dir: &Path, rx: Receiver<(Slot, Vec<u8>)>, sh: &Shared) {
    while let Ok((slot, state)) = rx.recv() {
        let t0 = std::time::Instant::now();
        match write(dir, slot, &state) {
            Ok(_) => {
                sh.durable.store(slot.0, Ordering::Release);
                sh.written.fetch_add(1, Ordering::Relaxed);
                sh.bytes.fetch_add(state.len() as u64, Ordering::Relaxed);
                sh.last_write_us.store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                if let Ok(files) = list(dir) {
                    for (_, old) in files.into_iter().skip(SNAPSHOTS_KEPT) {
                        let _ = std::fs::remove_file(old);
                    }
                }
            }
            Err(e) => {
                let msg = format!("snapshot below {slot} in {}: {e}", dir.display());
                log::error!("{msg}");
                if let Ok(mut err) = sh.error.lock() {
                    err.get_or_insert(msg);
                }
            }
        }
        sh.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_snapshots_load_newest_first_and_bad_ones_are_skipped() {
        let d = std::env::temp_dir().join(format!("pxsnap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(load_latest(&d).unwrap(), None);
        write(&d, Slot(10), b"ten").unwrap();
        let p20 = write(&d, Slot(20), b"twenty").unwrap();
        assert_eq!(load_latest(&d).unwrap(), Some((Slot(20), b"twenty".to_vec())));
        // A flipped byte in the newest: the older one is taken.
        let mut raw = std::fs::read(&p20).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&p20, raw).unwrap();
        assert_eq!(load_latest(&d).unwrap(), Some((Slot(10), b"ten".to_vec())));
        // The writer keeps the two newest.
        let w = SnapshotWriter::spawn(d.clone(), Slot(20), "snap-test").unwrap();
        for s in [30u64, 40, 50] {
            while w.busy() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert!(w.submit(Slot(s), s.to_le_bytes().to_vec()));
        }
        drop(w);
        let left: Vec<u64> = list(&d).unwrap().iter().map(|(s, _)| s.0).collect();
        assert_eq!(left, vec![50, 40]);
        assert_eq!(load_latest(&d).unwrap(), Some((Slot(50), 50u64.to_le_bytes().to_vec())));
        let _ = std::fs::remove_dir_all(&d);
    }
}
