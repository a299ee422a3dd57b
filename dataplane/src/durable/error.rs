//! Errors of the durable log. Every variant names the path involved and, where an operator
//! has something to do, says what.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum WalError {
    /// A system call failed. `op` says which step ("fdatasync segment", "rename spare", ..).
    Io { path: PathBuf, op: &'static str, err: io::Error },
    /// `open` found no log in `dir` (no segment file). An empty directory is never a log.
    NoLog { dir: PathBuf },
    /// `create` found a log already in `dir`.
    Exists { dir: PathBuf },
    /// A record that a completed sync covered is unreadable (or the files contradict each
    /// other): a disk fault or tampering. Never repaired silently.
    Corrupt { file: PathBuf, offset: u64, why: String },
    /// An Accept value longer than `LogOptions::max_value_bytes`; nothing was appended.
    ValueTooLarge { len: usize, max: u32 },
    /// An Accept for a slot too far above `low` for the in-memory index; nothing appended.
    SlotOutOfWindow { slot: u64, low: u64, max_index_slots: u64 },
    /// Invalid `LogOptions`.
    Options(String),
    /// An earlier write or fdatasync failed; the log refuses every later sync (after a failed
    /// fsync the page cache no longer says what is on disk). Stop the node and restart it.
    Poisoned { cause: String },
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io { path, op, err } => write!(f, "{op} {}: {err}", path.display()),
            WalError::NoLog { dir } => write!(
                f,
                "{} holds no acceptor log (no wal-*.seg file); a missing log is never \
                 recreated implicitly: create one explicitly for a new replica, or rejoin",
                dir.display()
            ),
            WalError::Exists { dir } => {
                write!(
                    f,
                    "{} already holds an acceptor log; refusing to create another",
                    dir.display()
                )
            }
            WalError::Corrupt { file, offset, why } => write!(
                f,
                "{} is corrupt at byte {offset}: {why}; this acceptor must not vote on this \
                 state: move the data directory aside and rejoin the replica",
                file.display()
            ),
            WalError::ValueTooLarge { len, max } => {
                write!(f, "accepted value of {len} bytes exceeds the log's maximum of {max}")
            }
            WalError::SlotOutOfWindow { slot, low, max_index_slots } => write!(
                f,
                "slot {slot} is {} slots above the trim point {low}; the index holds at most \
                 {max_index_slots}",
                slot - low
            ),
            WalError::Options(why) => write!(f, "invalid log options: {why}"),
            WalError::Poisoned { cause } => write!(
                f,
                "log refuses to sync after an earlier I/O failure ({cause}); stop the node and \
                 restart it to recover from what is on disk"
            ),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// `map_err` helper: `file.sync_data().map_err(io_err(&path, "fdatasync"))`.
pub(crate) fn io_err<'a>(
    path: &'a std::path::Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |err| WalError::Io { path: path.to_path_buf(), op, err }
}
