//! Where a node keeps each group's acceptor state and application snapshots
//! (`--storage memory|durable`, `--data-dir`, `--init`, `--rejoin`).
//!
//! - **memory**: `MemStorage`; a restart loses everything, so a restarted replica must come
//!   back with `--rejoin` (it votes again only once that is safe: docs/protocol.md,
//!   "Rejoining after lost state").
//! - **durable**: a [`DataDir`] per member (`--data-dir DIR`; with several `--id`s in one
//!   process, `DIR/replica-<id>`), an [`AcceptorLog`] per group (docs/storage-format.md),
//!   and KV snapshots in the group's directory, written every `--snapshot-every` slots by a
//!   thread of their own; the snapshot's slot is what the node reports as applied, so the
//!   log is trimmed only where a majority of replicas hold durable state.
//!
//! Starting: `--init` makes a brand-new data directory (it must hold nothing); without a
//! flag the directory must hold this replica's state (missing, empty or unreadable is an
//! error that says what to do, never an empty acceptor); `--rejoin` sets what is there aside
//! and starts over without a vote.

use crate::cli::{self, AppError, StorageMode};
use crate::config::{Cluster, MemberInfo};
use crate::kvapp::KvApp;
use dataplane::durable::snapshot_file::{self, SnapshotWriter};
use dataplane::durable::{AcceptorLog, DataDir, DurableStorage, LogOptions, NodeStorage};
use paxos_core::{GroupId, MemStorage, Slot};
use std::path::PathBuf;

/// Default `--snapshot-every`: slots applied between two KV snapshots (durable storage).
pub const DEFAULT_SNAPSHOT_EVERY_SLOTS: u64 = 20_000;

/// How a node stores state: from its command line.
#[derive(Clone, Debug)]
pub struct StorageOpts {
    pub mode: StorageMode,
    pub data_dir: Option<PathBuf>,
    pub init: bool,
    pub rejoin: bool,
    pub snapshot_every_slots: u64,
}

/// What identifies a cluster to its data directories: membership, roles, quorums, groups
/// (not addresses: a node may move between transports).
pub fn fingerprint(cluster: &Cluster) -> String {
    let members: Vec<String> = cluster
        .members
        .iter()
        .map(|m| {
            let r = m.roles;
            let roles: String = [(r.acceptor, 'A'), (r.proposer, 'P'), (r.learner, 'L')]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, c)| *c)
                .collect();
            format!("{}:{roles}", m.id.0)
        })
        .collect();
    format!(
        "members {}; q1 {} q2 {}; groups {}",
        members.join(" "),
        cluster.core.phase1_quorum,
        cluster.core.phase2_quorum,
        cluster.raw.groups
    )
}

/// One group's state as opened at start (on the main thread; `Send`). It becomes the
/// driver's storage on the thread that polls it ([`OpenedGroup::storage`]).
pub struct OpenedGroup {
    pub group: u16,
    log: Option<AcceptorLog>,
    rejoin: bool,
    /// The newest KV snapshot on disk, and where snapshots go.
    pub snapshot: Option<(Slot, Vec<u8>)>,
    dir: Option<PathBuf>,
    /// A line for the log: what was recovered.
    pub summary: String,
}

impl OpenedGroup {
    /// The acceptor storage for this group's driver.
    pub fn storage<P>(&mut self) -> NodeStorage<P> {
        match self.log.take() {
            Some(log) => NodeStorage::Durable(Box::new(DurableStorage::new(log))),
            None if self.rejoin => NodeStorage::Memory(MemStorage::rejoining()),
            None => NodeStorage::Memory(MemStorage::default()),
        }
    }

    /// The KV application: restored from the snapshot on disk, if any, and writing
    /// snapshots there (durable storage). Returns it and the slot it covers.
    pub fn app(
        &mut self,
        max_sessions: usize,
        every_slots: u64,
        member: u16,
    ) -> Result<(KvApp, Option<Slot>), String> {
        let mut app = KvApp::new(max_sessions);
        let mut upto = None;
        if let Some((slot, data)) = self.snapshot.take() {
            use dataplane::app::Application;
            if !app.install_snapshot(slot, &data) {
                return Err(format!(
                    "group {}: the KV snapshot below {slot} does not install (corrupt?)",
                    self.group
                ));
            }
            upto = Some(slot);
        }
        if let Some(dir) = &self.dir {
            let name = format!("snap-m{member}-g{}", self.group);
            let w = SnapshotWriter::spawn(dir.clone(), upto.unwrap_or(Slot::ZERO), &name)
                .map_err(|e| format!("group {}: snapshot writer: {e}", self.group))?;
            app = app.with_snapshots(w, every_slots, upto.unwrap_or(Slot::ZERO));
        }
        Ok((app, upto))
    }
}

/// The data directory of `member` (one per member when a process runs several).
fn member_dir(base: &std::path::Path, member: u16, several: bool) -> PathBuf {
    if several {
        base.join(format!("replica-{member}"))
    } else {
        base.to_path_buf()
    }
}

/// Opens (or, with `--init`/`--rejoin`, creates) the state of `member` for `groups`.
pub fn open(
    opts: &StorageOpts,
    cluster: &Cluster,
    member: &MemberInfo,
    groups: &[u16],
    several_members: bool,
) -> Result<Vec<OpenedGroup>, AppError> {
    let id = member.id;
    if opts.mode == StorageMode::Memory {
        return Ok(groups
            .iter()
            .map(|&g| OpenedGroup {
                group: g,
                log: None,
                rejoin: opts.rejoin,
                snapshot: None,
                dir: None,
                summary: format!(
                    "group {g}: memory storage{}",
                    if opts.rejoin { ", rejoining without a vote" } else { "" }
                ),
            })
            .collect());
    }
    let base = opts
        .data_dir
        .as_ref()
        .ok_or_else(|| cli::usage("--storage durable: needs --data-dir DIR"))?;
    let path = member_dir(base, id.0, several_members);
    let fp = fingerprint(cluster);
    let n = cluster.raw.groups;
    let log_opts =
        LogOptions { max_index_slots: cluster.core.max_log_slots, ..LogOptions::default() };
    let dd = if opts.init {
        DataDir::init(&path, id, &fp, n, &log_opts)
    } else if opts.rejoin {
        DataDir::rejoin(&path, id, &fp, n, &log_opts).map(|(dd, lost)| {
            if let Some(lost) = lost {
                log::warn!(
                    "member {}: --rejoin: the previous contents of {} are kept in {}",
                    id.0,
                    path.display(),
                    lost.display()
                );
            }
            dd
        })
    } else {
        DataDir::open(&path, id, &fp, n)
    }
    .map_err(|e| cli::usage(format!("--data-dir {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for &g in groups {
        let (log, report) = dd
            .open_group(GroupId(g), log_opts.clone())
            .map_err(|e| cli::runtime(format!("--data-dir {}: {e}", path.display())))?;
        let gdir = dd.group_dir(GroupId(g));
        let snapshot = snapshot_file::load_latest(&gdir)
            .map_err(|e| cli::runtime(format!("{}: {e}", gdir.display())))?;
        let summary = format!(
            "group {g}: durable log {}: promised {}, slots [{}, {}), {}{}; KV snapshot {}",
            gdir.display(),
            log.promised(),
            log.low().0,
            log.high().0,
            if log.voting() { "voting" } else { "rejoining without a vote" },
            match &report.torn {
                Some(t) => format!(
                    ", torn tail cut at {}:{} ({} unsynced records dropped: {})",
                    t.file.display(),
                    t.offset,
                    t.dropped_records,
                    t.why
                ),
                None => String::new(),
            },
            snapshot
                .as_ref()
                .map_or("none".to_string(), |(s, d)| { format!("below {s} ({} bytes)", d.len()) }),
        );
        out.push(OpenedGroup {
            group: g,
            rejoin: !log.voting(),
            log: Some(log),
            snapshot,
            dir: Some(gdir),
            summary,
        });
    }
    Ok(out)
}
