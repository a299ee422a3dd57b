//! `DataDir`: a node's data directory.
//!
//! ```text
//! <data-dir>/node.meta          format, replica id, cluster fingerprint, group count
//! <data-dir>/group-<g>/         one AcceptorLog per group (and the KV snapshots)
//! <data-dir>/lost-<unix-time>/  what a --rejoin moved aside (never deleted by us)
//! ```
//! A missing or empty data directory is never taken for a fresh member: a brand-new cluster
//! is made with [`DataDir::init`] (`--init`), a replica that lost its data comes back with
//! [`DataDir::rejoin`] (`--rejoin`: fresh logs with `voting = false`).

use super::error::WalError;
use super::log::{AcceptorLog, LogOptions};
use super::recover::RecoveryReport;
use paxos_core::{GroupId, ReplicaId};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const META_NAME: &str = "node.meta";
const META_TMP_NAME: &str = "node.meta.tmp";
pub const META_FORMAT: u32 = 1;

#[derive(Debug)]
pub enum DataDirError {
    /// The directory is missing or empty (or holds only `lost-*` directories).
    NoState {
        path: PathBuf,
        replica: ReplicaId,
    },
    /// `init` found state in the directory.
    NotEmpty {
        path: PathBuf,
        found: Vec<String>,
    },
    /// Files but no `node.meta`: an interrupted init or rejoin, or not a data directory.
    NoMeta {
        path: PathBuf,
        found: Vec<String>,
    },
    /// `node.meta` belongs to another replica, cluster or group count.
    Mismatch {
        path: PathBuf,
        field: &'static str,
        found: String,
        expected: String,
    },
    BadMeta {
        path: PathBuf,
        why: String,
    },
    /// The caller's fingerprint cannot be stored (control characters, empty).
    BadFingerprint(String),
    Io {
        path: PathBuf,
        op: &'static str,
        err: std::io::Error,
    },
    /// A group's log failed to open or be created.
    Log {
        group: GroupId,
        path: PathBuf,
        err: WalError,
    },
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDirError::NoState { path, replica } => write!(
                f,
                "data directory {} holds no state for replica {}: for a brand-new cluster start \
                 every replica once with --init; to bring back a replica whose data was lost \
                 use --rejoin",
                path.display(),
                replica.0
            ),
            DataDirError::NotEmpty { path, found } => write!(
                f,
                "data directory {} already holds state ({}): --init is only for a brand-new \
                 cluster and never writes over state; restart without --init to use it, or move \
                 it away first",
                path.display(),
                found.join(", ")
            ),
            DataDirError::NoMeta { path, found } => write!(
                f,
                "data directory {} has files ({}) but no {META_NAME}: an --init or --rejoin was \
                 interrupted, or this is not a data directory; inspect it, then use --rejoin \
                 (moves it aside, never deletes) or move it away and --init a brand-new cluster",
                path.display(),
                found.join(", ")
            ),
            DataDirError::Mismatch { path, field, found, expected } => write!(
                f,
                "{} says {field} {found}, but this node was started as {field} {expected}: \
                 wrong --data-dir or wrong configuration? (to reuse the directory for this \
                 replica anyway, --rejoin moves its contents aside)",
                path.join(META_NAME).display()
            ),
            DataDirError::BadMeta { path, why } => {
                write!(f, "{} is unreadable: {why}", path.join(META_NAME).display())
            }
            DataDirError::BadFingerprint(why) => write!(f, "invalid cluster fingerprint: {why}"),
            DataDirError::Io { path, op, err } => write!(f, "{op} {}: {err}", path.display()),
            DataDirError::Log { group, path, err } => match err {
                WalError::NoLog { .. } => write!(
                    f,
                    "group {} of the data directory ({}) holds no acceptor log although \
                     {META_NAME} exists: its state is lost; bring the replica back with --rejoin",
                    group.0,
                    path.display()
                ),
                err => write!(f, "group {} ({}): {err}", group.0, path.display()),
            },
        }
    }
}

impl std::error::Error for DataDirError {}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> DataDirError + 'a {
    move |err| DataDirError::Io { path: path.to_path_buf(), op, err }
}

/// A node's opened data directory (the meta matched; every group has a log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    path: PathBuf,
    replica: ReplicaId,
    fingerprint: String,
    groups: u16,
}

impl DataDir {
    /// Makes the data directory of a replica of a brand-new cluster: a log per group
    /// (voting), then `node.meta` last (its presence means init completed). Fails if the
    /// directory holds anything.
    pub fn init(
        path: &Path,
        replica: ReplicaId,
        fingerprint: &str,
        groups: u16,
        opts: &LogOptions,
    ) -> Result<DataDir, DataDirError> {
        check_fingerprint(fingerprint)?;
        let found = entries(path)?;
        if !found.is_empty() {
            return Err(DataDirError::NotEmpty { path: path.to_path_buf(), found });
        }
        let dd =
            DataDir { path: path.to_path_buf(), replica, fingerprint: fingerprint.into(), groups };
        dd.create(opts, true)?;
        Ok(dd)
    }

    /// Opens the data directory of a restarting replica. Fails, naming the path, when it is
    /// missing or empty, has no `node.meta`, or its meta names another replica, cluster
    /// fingerprint or group count, or a group has no log.
    pub fn open(
        path: &Path,
        replica: ReplicaId,
        fingerprint: &str,
        groups: u16,
    ) -> Result<DataDir, DataDirError> {
        let found = entries(path)?;
        if found.iter().all(|n| n.starts_with("lost-")) {
            return Err(DataDirError::NoState { path: path.to_path_buf(), replica });
        }
        let meta = path.join(META_NAME);
        let text = match std::fs::read_to_string(&meta) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DataDirError::NoMeta { path: path.to_path_buf(), found });
            }
            Err(e) => return Err(DataDirError::Io { path: meta, op: "read", err: e }),
        };
        let dd = parse_meta(path, &text)?;
        let mismatch = |field, found: String, expected: String| {
            Err(DataDirError::Mismatch { path: path.to_path_buf(), field, found, expected })
        };
        if dd.replica != replica {
            return mismatch("replica", dd.replica.0.to_string(), replica.0.to_string());
        }
        if dd.fingerprint != fingerprint {
            return mismatch("cluster fingerprint", quote(&dd.fingerprint), quote(fingerprint));
        }
        if dd.groups != groups {
            return mismatch("group count", dd.groups.to_string(), groups.to_string());
        }
        for g in 0..groups {
            let gd = dd.group_dir(GroupId(g));
            if !AcceptorLog::exists(&gd).map_err(|err| log_err(g, &gd, err))? {
                return Err(log_err(g, &gd, WalError::NoLog { dir: gd.clone() }));
            }
        }
        Ok(dd)
    }

    /// Brings back a replica whose data was lost: moves whatever is in the directory (except
    /// earlier `lost-*` directories) into `lost-<unix-time>/` (never deletes it), then makes
    /// fresh logs with `voting = false` and a new `node.meta`. Returns the directory and where
    /// the old contents went (`None` if there were none).
    pub fn rejoin(
        path: &Path,
        replica: ReplicaId,
        fingerprint: &str,
        groups: u16,
        opts: &LogOptions,
    ) -> Result<(DataDir, Option<PathBuf>), DataDirError> {
        check_fingerprint(fingerprint)?;
        let found: Vec<String> =
            entries(path)?.into_iter().filter(|n| !n.starts_with("lost-")).collect();
        let mut lost = None;
        if !found.is_empty() {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut dst = path.join(format!("lost-{secs}"));
            let mut k = 1;
            while dst.exists() {
                k += 1;
                dst = path.join(format!("lost-{secs}-{k}"));
            }
            std::fs::create_dir(&dst).map_err(io(&dst, "create"))?;
            for name in &found {
                let to = dst.join(name);
                std::fs::rename(path.join(name), &to).map_err(io(&to, "move aside"))?;
            }
            fsync_dir(&dst)?;
            fsync_dir(path)?;
            lost = Some(dst);
        }
        let dd =
            DataDir { path: path.to_path_buf(), replica, fingerprint: fingerprint.into(), groups };
        dd.create(opts, false)?;
        Ok((dd, lost))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    pub fn groups(&self) -> u16 {
        self.groups
    }
    /// `<data-dir>/group-<g>`.
    pub fn group_dir(&self, g: GroupId) -> PathBuf {
        self.path.join(format!("group-{}", g.0))
    }

    /// Opens group `g`'s log (see [`AcceptorLog::open`]).
    pub fn open_group(
        &self,
        g: GroupId,
        opts: LogOptions,
    ) -> Result<(AcceptorLog, RecoveryReport), DataDirError> {
        let gd = self.group_dir(g);
        AcceptorLog::open(&gd, opts).map_err(|err| log_err(g.0, &gd, err))
    }

    fn create(&self, opts: &LogOptions, voting: bool) -> Result<(), DataDirError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path, "create"))?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
        for g in 0..self.groups {
            let gd = self.group_dir(GroupId(g));
            AcceptorLog::create(&gd, opts.clone(), voting).map_err(|err| log_err(g, &gd, err))?;
        }
        fsync_dir(&self.path)?;
        self.write_meta()
    }

    /// Writes `node.meta` atomically: temp file, fsync, rename, fsync of the directory.
    fn write_meta(&self) -> Result<(), DataDirError> {
        let text = format!(
            "# Paxos node data directory. Written by --init / --rejoin; do not edit.\n\
             format = {META_FORMAT}\nreplica = {}\nfingerprint = {}\ngroups = {}\n",
            self.replica.0,
            quote(&self.fingerprint),
            self.groups
        );
        let tmp = self.path.join(META_TMP_NAME);
        let f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp);
        let mut f = f.map_err(io(&tmp, "create"))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp, "write"))?;
        f.sync_all().map_err(io(&tmp, "fsync"))?;
        let meta = self.path.join(META_NAME);
        std::fs::rename(&tmp, &meta).map_err(io(&meta, "rename"))?;
        fsync_dir(&self.path)
    }
}

fn log_err(g: u16, path: &Path, err: WalError) -> DataDirError {
    DataDirError::Log { group: GroupId(g), path: path.to_path_buf(), err }
}

fn fsync_dir(dir: &Path) -> Result<(), DataDirError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir, "fsync directory"))
}

/// Names in `path` (sorted); none if it does not exist.
fn entries(path: &Path) -> Result<Vec<String>, DataDirError> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DataDirError::Io { path: path.to_path_buf(), op: "list", err: e }),
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(io(path, "list"))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn check_fingerprint(fp: &str) -> Result<(), DataDirError> {
    if fp.is_empty() || fp.len() > 1024 || fp.chars().any(char::is_control) {
        return Err(DataDirError::BadFingerprint(format!(
            "{fp:?}: must be 1..=1024 bytes without control characters"
        )));
    }
    Ok(())
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn unquote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().filter(|&c| c == '"' || c == '\\')?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Parses the `key = value` lines written by `write_meta` (a TOML subset).
fn parse_meta(path: &Path, text: &str) -> Result<DataDir, DataDirError> {
    let bad = |why: String| DataDirError::BadMeta { path: path.to_path_buf(), why };
    let (mut format, mut replica, mut fingerprint, mut groups) = (None, None, None, None);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad(format!("line {}: expected key = value", n + 1)));
        };
        let (k, v) = (k.trim(), v.trim());
        let num = |v: &str| {
            v.parse::<u64>().map_err(|_| bad(format!("line {}: {k} is not a number", n + 1)))
        };
        match k {
            "format" => format = Some(num(v)?),
            "replica" => replica = Some(num(v)?),
            "groups" => groups = Some(num(v)?),
            "fingerprint" => {
                fingerprint =
                    Some(unquote(v).ok_or_else(|| bad(format!("line {}: bad string", n + 1)))?)
            }
            _ => return Err(bad(format!("line {}: unknown key {k}", n + 1))),
        }
    }
    match format {
        Some(f) if f == META_FORMAT as u64 => {}
        Some(f) => return Err(bad(format!("format {f} is not {META_FORMAT} (newer software?)"))),
        None => return Err(bad("no format line".into())),
    }
    let (Some(replica), Some(fingerprint), Some(groups)) = (replica, fingerprint, groups) else {
        return Err(bad("replica, fingerprint and groups are all required".into()));
    };
    let (Ok(replica), Ok(groups)) = (u16::try_from(replica), u16::try_from(groups)) else {
        return Err(bad("replica or groups out of range".into()));
    };
    Ok(DataDir { path: path.to_path_buf(), replica: ReplicaId(replica), fingerprint, groups })
}
