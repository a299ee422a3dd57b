//! Static configuration of one Paxos group, validated once when it is built.

use crate::ids::ReplicaId;
use core::fmt;

/// Which roles a member plays. Any non-empty subset is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Roles {
    pub acceptor: bool,
    pub proposer: bool,
    pub learner: bool,
}

impl Roles {
    /// The usual co-located replica: acceptor + proposer + learner.
    pub const REPLICA: Roles = Roles { acceptor: true, proposer: true, learner: true };
    pub const ACCEPTOR: Roles = Roles { acceptor: true, proposer: false, learner: false };
    pub const PROPOSER: Roles = Roles { acceptor: false, proposer: true, learner: false };
    pub const LEARNER: Roles = Roles { acceptor: false, proposer: false, learner: true };

    pub fn is_empty(&self) -> bool {
        !(self.acceptor || self.proposer || self.learner)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: ReplicaId,
    pub roles: Roles,
}

/// Everything a node of the group must agree on, plus timing knobs (in ticks; the driver
/// decides how long a tick is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub members: Vec<Member>,
    /// Phase-1 (prepare/promise) quorum size q1, over the acceptors.
    pub phase1_quorum: usize,
    /// Phase-2 (accept/accepted) quorum size q2, over the acceptors. `q1 + q2 > n` is required.
    pub phase2_quorum: usize,
    /// Slots the leader may have in flight (proposed, not yet known chosen).
    pub window: u32,
    /// Most commands in one slot's batch.
    pub batch_max_commands: u32,
    /// Most bytes of one slot's encoded batch (commands plus their 4-byte length prefixes).
    pub batch_max_bytes: u32,
    /// An open batch is sealed after this many ticks even if not full (0 = at every tick).
    pub batch_delay_ticks: u32,
    /// Leader sends a heartbeat at least this often.
    pub heartbeat_ticks: u32,
    /// A follower that hears no leader for a timeout drawn from [min, max) starts an election.
    pub election_timeout_min_ticks: u32,
    pub election_timeout_max_ticks: u32,
    /// Unanswered prepares/accepts/repeats are re-sent after this many ticks.
    pub retransmit_ticks: u32,
    /// Sealed batches the leader queues while its window is full, before refusing proposals.
    pub max_pending_batches: u32,
    /// Largest encoded protocol message (bounds promise chunks and batch sizes).
    pub max_message_bytes: u32,
    /// Learners report their applied slot to the leader this often (drives log trim).
    pub applied_report_ticks: u32,
    /// Acceptors send `Accepted` to every learner as well as to the leader, so learners count
    /// phase-2 quorums themselves (a follower learns a slot one message delay after the
    /// acceptors; n_acceptors x n_learners messages per slot). When false, `Accepted` goes to
    /// the leader only and learners decide slots from the commit point the leader announces
    /// in its next Accept or heartbeat: 2n messages per slot instead of n + n^2, followers
    /// learn later, the leader's own learner is unaffected. Default false (the appliance's
    /// configuration and the one the protocol-cost target is measured in); both modes are
    /// simulated (drawn per seed) and model-checked.
    pub accepted_to_learners: bool,
    /// Largest snapshot a learner accepts from a peer (its receive buffer's bound).
    pub max_snapshot_bytes: u64,
    /// Most slots an acceptor holds above its trim point: an Accept further ahead is dropped
    /// (and accepted when retransmitted after the trim point moved on). Bounds an
    /// acceptor's log, whatever a peer sends; the trim point follows what a majority of
    /// learners made durable, so a healthy log stays far below it.
    pub max_log_slots: u64,
    /// A leader that has not heard from a phase-2 quorum of acceptors (Accepted, or the
    /// HeartbeatAck that answers every heartbeat) within `election_timeout_max_ticks` steps
    /// down: a leader cut off from the acceptors stops taking proposals it cannot commit,
    /// and stops suppressing elections through leader stickiness. Default true.
    pub check_quorum: bool,
    /// An acceptor that heard the current leader (an Accept or a Heartbeat) within
    /// `election_timeout_min_ticks` ignores a Prepare from any other proposer, and a
    /// leader ignores every other proposer's Prepare: a proposer that merely cannot reach
    /// the leader (a partial cut) cannot depose it. Only liveness is concerned (ignoring a
    /// Prepare is always safe). Default true.
    pub leader_stickiness: bool,
}

/// Bytes besides the value of the largest message that carries one value (a Promise page
/// of one entry: header, the page fields and the entry's slot, ballot and length). A batch
/// must fit in `max_message_bytes` minus this, so that every message carrying one value
/// (Accept, Learn, a Promise entry) fits a frame.
pub const ACCEPT_OVERHEAD_BYTES: u32 = 80;

/// Largest `window`: bounds what a leader keeps in flight, a learner buffers (4 windows)
/// and an acceptor accepts ahead of the commit point it knows.
pub const MAX_WINDOW: u32 = 16_384;

/// The smallest [`Config::recovery_window`].
pub const MIN_RECOVERY_WINDOW: u64 = 64;

/// Default `max_log_slots`.
pub const DEFAULT_MAX_LOG_SLOTS: u64 = 1 << 22;

/// Default `max_snapshot_bytes`.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NoMembers,
    DuplicateMember(ReplicaId),
    MemberWithoutRoles(ReplicaId),
    NoRole(&'static str),
    UnknownMember(ReplicaId),
    BadQuorum { field: &'static str, value: usize, acceptors: usize },
    QuorumsDoNotIntersect { q1: usize, q2: usize, acceptors: usize },
    Zero(&'static str),
    BadTimeouts(&'static str),
    BatchTooLarge { batch_max_bytes: u32, max_message_bytes: u32 },
    TooManyMembers(usize),
    WindowTooLarge(u32),
    LogTooShort { max_log_slots: u64, window: u32 },
    StickinessWithoutCheckQuorum,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigError::*;
        match self {
            NoMembers => write!(f, "members: the group has no members"),
            DuplicateMember(id) => write!(f, "members: replica id {} appears twice", id.0),
            MemberWithoutRoles(id) => write!(f, "members: replica {} has no roles", id.0),
            NoRole(r) => write!(f, "members: no member has the {r} role"),
            UnknownMember(id) => write!(f, "id: replica {} is not a member of the group", id.0),
            BadQuorum { field, value, acceptors } => {
                write!(f, "{field}: {value} is not between 1 and the {acceptors} acceptors")
            }
            QuorumsDoNotIntersect { q1, q2, acceptors } => write!(
                f,
                "phase1_quorum + phase2_quorum must exceed the acceptor count: {q1} + {q2} <= {acceptors}"
            ),
            Zero(field) => write!(f, "{field}: must be at least 1"),
            BadTimeouts(why) => write!(f, "timeouts: {why}"),
            BatchTooLarge { batch_max_bytes, max_message_bytes } => write!(
                f,
                "batch_max_bytes: {batch_max_bytes} does not fit a message of max_message_bytes {max_message_bytes} with {ACCEPT_OVERHEAD_BYTES} bytes of header"
            ),
            TooManyMembers(n) => write!(f, "members: {n} members, at most {MAX_MEMBERS} are supported"),
            WindowTooLarge(w) => write!(f, "window: {w} is above the largest supported window, {MAX_WINDOW}"),
            LogTooShort { max_log_slots, window } => write!(f, "max_log_slots: {max_log_slots} must be at least twice the window ({window}, at least {MIN_RECOVERY_WINDOW})"),
            StickinessWithoutCheckQuorum => write!(f, "leader_stickiness: true needs check_quorum: true (followers that hear a leader which cannot reach a quorum would otherwise never elect another)"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Quorum bookkeeping uses a 64-bit member mask.
pub const MAX_MEMBERS: usize = 64;

impl Config {
    /// A group of `n` co-located replicas (ids 0..n) with majority quorums and defaults.
    pub fn replicas(n: u16) -> Config {
        let members = (0..n).map(|i| Member { id: ReplicaId(i), roles: Roles::REPLICA }).collect();
        Config::with_members(members)
    }

    /// Defaults around the given members, majority quorums over its acceptors.
    pub fn with_members(members: Vec<Member>) -> Config {
        let acceptors = members.iter().filter(|m| m.roles.acceptor).count();
        let majority = acceptors / 2 + 1;
        Config {
            members,
            phase1_quorum: majority,
            phase2_quorum: majority,
            window: 64,
            batch_max_commands: 32,
            batch_max_bytes: 1024,
            batch_delay_ticks: 1,
            heartbeat_ticks: 2,
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            retransmit_ticks: 4,
            max_pending_batches: 256,
            max_message_bytes: 1400,
            applied_report_ticks: 10,
            accepted_to_learners: false,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            max_log_slots: DEFAULT_MAX_LOG_SLOTS,
            check_quorum: true,
            leader_stickiness: true,
        }
    }

    /// Slots a leader may have in flight while it re-proposes what phase 1 recovered, and
    /// the most slots one phase-1 page covers: the window, but at least
    /// [`MIN_RECOVERY_WINDOW`], so that a long log tail is not recovered one round trip per
    /// slot when the window is tiny. Acceptors accept this far beyond the commit point.
    pub fn recovery_window(&self) -> u64 {
        u64::from(self.window).max(MIN_RECOVERY_WINDOW)
    }

    pub fn acceptors(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.members.iter().filter(|m| m.roles.acceptor).map(|m| m.id)
    }
    pub fn proposers(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.members.iter().filter(|m| m.roles.proposer).map(|m| m.id)
    }
    pub fn learners(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.members.iter().filter(|m| m.roles.learner).map(|m| m.id)
    }
    pub fn acceptor_count(&self) -> usize {
        self.acceptors().count()
    }
    pub fn roles_of(&self, id: ReplicaId) -> Option<Roles> {
        self.members.iter().find(|m| m.id == id).map(|m| m.roles)
    }
    /// Position of `id` in `members` (its bit in quorum masks).
    pub fn index_of(&self, id: ReplicaId) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// Checks every rule; the error names the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(ConfigError::TooManyMembers(self.members.len()));
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].iter().any(|o| o.id == m.id) {
                return Err(ConfigError::DuplicateMember(m.id));
            }
            if m.roles.is_empty() {
                return Err(ConfigError::MemberWithoutRoles(m.id));
            }
        }
        let n = self.acceptor_count();
        if n == 0 {
            return Err(ConfigError::NoRole("acceptor"));
        }
        if self.proposers().next().is_none() {
            return Err(ConfigError::NoRole("proposer"));
        }
        if self.learners().next().is_none() {
            return Err(ConfigError::NoRole("learner"));
        }
        for (field, q) in
            [("phase1_quorum", self.phase1_quorum), ("phase2_quorum", self.phase2_quorum)]
        {
            if q == 0 || q > n {
                return Err(ConfigError::BadQuorum { field, value: q, acceptors: n });
            }
        }
        if self.phase1_quorum + self.phase2_quorum <= n {
            return Err(ConfigError::QuorumsDoNotIntersect {
                q1: self.phase1_quorum,
                q2: self.phase2_quorum,
                acceptors: n,
            });
        }
        for (field, v) in [
            ("window", self.window),
            ("batch_max_commands", self.batch_max_commands),
            ("batch_max_bytes", self.batch_max_bytes),
            ("heartbeat_ticks", self.heartbeat_ticks),
            ("retransmit_ticks", self.retransmit_ticks),
            ("max_pending_batches", self.max_pending_batches),
            ("applied_report_ticks", self.applied_report_ticks),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(field));
            }
        }
        if self.window > MAX_WINDOW {
            return Err(ConfigError::WindowTooLarge(self.window));
        }
        if self.max_snapshot_bytes == 0 {
            return Err(ConfigError::Zero("max_snapshot_bytes"));
        }
        if self.max_log_slots < 2 * self.recovery_window() {
            return Err(ConfigError::LogTooShort {
                max_log_slots: self.max_log_slots,
                window: self.window,
            });
        }
        if self.leader_stickiness && !self.check_quorum {
            return Err(ConfigError::StickinessWithoutCheckQuorum);
        }
        if self.election_timeout_min_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::BadTimeouts(
                "election_timeout_min_ticks must be greater than heartbeat_ticks",
            ));
        }
        if self.election_timeout_max_ticks <= self.election_timeout_min_ticks {
            return Err(ConfigError::BadTimeouts(
                "election_timeout_max_ticks must be greater than election_timeout_min_ticks",
            ));
        }
        if self.batch_max_bytes.saturating_add(ACCEPT_OVERHEAD_BYTES) > self.max_message_bytes {
            return Err(ConfigError::BatchTooLarge {
                batch_max_bytes: self.batch_max_bytes,
                max_message_bytes: self.max_message_bytes,
            });
        }
        Ok(())
    }
}
