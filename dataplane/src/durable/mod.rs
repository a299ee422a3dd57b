//! # durable: the acceptor's stable state on disk
//!
//! - [`AcceptorLog`]: one per Paxos group, in its own directory. An append-only log of
//!   checksummed records (Promise, Accept, Trim, Voting, and a Commit closing each sync
//!   batch) in fixed-size segments, with an in-memory index rebuilt at [`AcceptorLog::open`].
//! - [`DataDir`]: one per node process: `node.meta` (replica id, cluster fingerprint, group
//!   count) and a `group-<g>/` directory per group.
//! - [`DurableStorage`]: `paxos_core::Storage` over an `AcceptorLog` (recent values cached
//!   as payload handles, older ones read back); [`NodeStorage`]: memory or durable, one type.
//! - [`snapshot_file`]: application snapshots on disk, written atomically by a thread of
//!   their own ([`snapshot_file::SnapshotWriter`]).
//!
//! ## The contract
//! `set_promised`, `set_accepted`, `trim` and `set_voting` change the in-memory view at once
//! (reads see them) and append to a write buffer; **nothing is durable until
//! [`AcceptorLog::sync`] returns `Ok`**. One `sync` is one group commit: a Commit record, one
//! write and one fdatasync for everything appended since the previous one. The driver must
//! not send a message that reveals a promise or an accept before that sync (see
//! `paxos_core::storage`). A failed write or fdatasync poisons the log: every later sync
//! fails and the node must stop (after a failed fsync the page cache no longer tells what is
//! on disk).
//!
//! With [`AcceptorLog::start_sync_thread`] the fdatasync runs on a thread of the log's own:
//! [`AcceptorLog::sync_start`] writes the batch and hands its fdatasync over without
//! blocking, [`AcceptorLog::sync_poll`] reports completed tickets (the asynchronous side of
//! `paxos_core::Storage`); nothing is durable before its ticket is reported, and the bytes
//! on disk are exactly those of the blocking mode (see `log.rs`).
//!
//! `open` tells a torn tail (the unsynced end of the last batch: cut and zeroed) from
//! corruption of synced records ([`WalError::Corrupt`]: the acceptor must not vote); the rule
//! is in `recover.rs` and `docs/storage-format.md`. A directory without a log is
//! [`WalError::NoLog`], never an empty acceptor: forgetting promises breaks quorum
//! intersection. Creating a log is the separate [`AcceptorLog::create`].
//!
//! Call [`AcceptorLog::maintain`] when idle: it deletes dead segments and zero-fills the
//! spare segment that the next rotation will use (bounded work per call).

mod datadir;
mod error;
mod index;
mod log;
pub mod record;
mod recover;
pub mod snapshot_file;
mod stats;
mod storage;

pub use datadir::{DataDir, DataDirError};
pub use error::WalError;
pub use log::{
    segment_path, AcceptorLog, LogOptions, MaintainInfo, Prealloc, MAX_SEGMENT_BYTES,
    MAX_VALUE_BYTES_LIMIT,
};
pub use recover::{RecoveryReport, TornTail};
pub use stats::{bucket_upper_us, LogStats, SyncInfo, SYNC_HIST_BUCKETS};
pub use storage::{DurableStorage, NodeStorage};

#[cfg(test)]
mod tests;
