//! The cluster file (TOML): members and their addresses, groups and the lcores that serve
//! them, quorum sizes, window, batching and timing. Loading validates everything; an error
//! names the field and the reason. docs/operations.md documents every field.

use paxos_core::{Config as CoreConfig, Member as CoreMember, ReplicaId, Roles};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;

/// Most Paxos groups per node (one lcore and one queue each).
pub const MAX_GROUPS: u16 = 64;

/// Default `max_message_bytes`: the largest UDP payload of a 1500-byte MTU frame (1500 - 20
/// IPv4 - 8 UDP), which every transport carries (DPDK at the default MTU, kernel UDP, the
/// in-memory network). The default `batch_max_bytes` is this minus the Accept overhead, so
/// a full batch fills one frame.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1472;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(rename = "member", default)]
    pub members: Vec<MemberSection>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Independent Paxos groups (log partitions); keys are spread over them by hash.
    pub groups: u16,
    /// Group g of every member listens on UDP port `base_port + g`.
    pub base_port: u16,
    /// Length of one protocol tick, in microseconds.
    pub tick_us: u64,
    /// Phase-1 / phase-2 quorum sizes; 0 = majority of the acceptors.
    pub phase1_quorum: usize,
    pub phase2_quorum: usize,
    pub window: u32,
    pub batch_max_commands: u32,
    pub batch_max_bytes: u32,
    pub batch_delay_ticks: u32,
    pub heartbeat_ticks: u32,
    pub election_timeout_min_ticks: u32,
    pub election_timeout_max_ticks: u32,
    pub retransmit_ticks: u32,
    pub max_pending_batches: u32,
    pub max_message_bytes: u32,
    pub applied_report_ticks: u32,
    /// Acceptors answer every learner (true) or only the leader (false, the default:
    /// followers learn from the leader's commit point, one message later; 2n instead of
    /// n + n² messages per slot). See docs/protocol.md.
    pub accepted_to_learners: bool,
    /// A leader that hears no phase-2 quorum for an election timeout steps down (default
    /// true). See docs/protocol.md, "Stable leadership".
    pub check_quorum: bool,
    /// Replicas that hear a live leader ignore other proposers' Prepares (default true;
    /// needs `check_quorum`).
    pub leader_stickiness: bool,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            groups: 1,
            base_port: 7000,
            tick_us: 100,
            phase1_quorum: 0,
            phase2_quorum: 0,
            window: 64,
            batch_max_commands: 32,
            batch_max_bytes: DEFAULT_MAX_MESSAGE_BYTES - paxos_core::config::ACCEPT_OVERHEAD_BYTES,
            batch_delay_ticks: 1,
            heartbeat_ticks: 10,
            election_timeout_min_ticks: 50,
            election_timeout_max_ticks: 100,
            retransmit_ticks: 20,
            max_pending_batches: 1024,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            applied_report_ticks: 100,
            accepted_to_learners: false,
            check_quorum: true,
            leader_stickiness: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemberSection {
    pub id: u16,
    /// Any of "acceptor", "proposer", "learner"; default all three.
    #[serde(default = "all_roles")]
    pub roles: Vec<String>,
    /// MAC address (DPDK transport). Default: derived from the id (02:00:00:00:00:id).
    #[serde(default)]
    pub mac: Option<String>,
    pub ip: Ipv4Addr,
    /// lcore serving each group, in group order (DPDK transport); default: none given.
    #[serde(default)]
    pub lcores: Vec<u32>,
}

fn all_roles() -> Vec<String> {
    vec!["acceptor".into(), "proposer".into(), "learner".into()]
}

/// A configuration error: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}
impl std::error::Error for ConfigError {}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), reason: reason.into() }
}

/// A validated member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: ReplicaId,
    pub roles: Roles,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub lcores: Vec<u32>,
}

/// The validated cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub raw: ClusterSection,
    pub members: Vec<MemberInfo>,
    pub core: CoreConfig,
}

impl Cluster {
    pub fn load(path: &Path) -> Result<Cluster, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path.display().to_string(), format!("cannot read: {e}")))?;
        Cluster::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Cluster, ConfigError> {
        let file: ClusterFile = toml::from_str(text).map_err(|e| {
            let span = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}")
            });
            err(span.unwrap_or_else(|| "cluster file".into()), e.message().to_string())
        })?;
        Cluster::from_file(file)
    }

    pub fn from_file(file: ClusterFile) -> Result<Cluster, ConfigError> {
        let c = &file.cluster;
        if c.groups == 0 || c.groups > MAX_GROUPS {
            return Err(err(
                "cluster.groups",
                format!("must be 1..={MAX_GROUPS}, got {}", c.groups),
            ));
        }
        if u32::from(c.base_port) + u32::from(c.groups) > 65536 || c.base_port == 0 {
            return Err(err("cluster.base_port", "base_port + groups must stay within 1..65535"));
        }
        if c.tick_us == 0 {
            return Err(err("cluster.tick_us", "must be at least 1"));
        }
        if file.members.is_empty() {
            return Err(err("member", "the cluster has no [[member]] entries"));
        }
        let mut members = Vec::new();
        for (i, m) in file.members.iter().enumerate() {
            let field = |f: &str| format!("member[{i}].{f}");
            if m.id == u16::MAX {
                return Err(err(field("id"), "65535 is reserved (it means 'a client')"));
            }
            if members.iter().any(|x: &MemberInfo| x.id.0 == m.id) {
                return Err(err(field("id"), format!("id {} appears twice", m.id)));
            }
            if let Some(other) = members.iter().find(|x: &&MemberInfo| x.ip == m.ip) {
                return Err(err(
                    field("ip"),
                    format!("{} is also member {}'s address", m.ip, other.id.0),
                ));
            }
            let mut roles = Roles { acceptor: false, proposer: false, learner: false };
            for r in &m.roles {
                match r.as_str() {
                    "acceptor" => roles.acceptor = true,
                    "proposer" => roles.proposer = true,
                    "learner" => roles.learner = true,
                    "replica" => roles = Roles::REPLICA,
                    other => {
                        return Err(err(
                            field("roles"),
                            format!(
                                "unknown role {other:?} (acceptor, proposer, learner, replica)"
                            ),
                        ))
                    }
                }
            }
            if roles.is_empty() {
                return Err(err(field("roles"), "at least one role is needed"));
            }
            let mac = match &m.mac {
                None => [0x02, 0, 0, 0, (m.id >> 8) as u8, m.id as u8],
                Some(s) => parse_mac(s).ok_or_else(|| {
                    err(field("mac"), format!("{s:?} is not a MAC address like 02:00:00:00:00:01"))
                })?,
            };
            if mac[0] & 1 == 1 {
                return Err(err(field("mac"), "a multicast MAC cannot be a member's address"));
            }
            if !m.lcores.is_empty() && m.lcores.len() != c.groups as usize {
                return Err(err(
                    field("lcores"),
                    format!(
                        "{} lcores for {} groups: give one per group",
                        m.lcores.len(),
                        c.groups
                    ),
                ));
            }
            members.push(MemberInfo {
                id: ReplicaId(m.id),
                roles,
                mac,
                ip: m.ip,
                lcores: m.lcores.clone(),
            });
        }
        let core_members: Vec<CoreMember> =
            members.iter().map(|m| CoreMember { id: m.id, roles: m.roles }).collect();
        let mut core = CoreConfig::with_members(core_members);
        if c.phase1_quorum != 0 {
            core.phase1_quorum = c.phase1_quorum;
        }
        if c.phase2_quorum != 0 {
            core.phase2_quorum = c.phase2_quorum;
        }
        core.window = c.window;
        core.batch_max_commands = c.batch_max_commands;
        core.batch_max_bytes = c.batch_max_bytes;
        core.batch_delay_ticks = c.batch_delay_ticks;
        core.heartbeat_ticks = c.heartbeat_ticks;
        core.election_timeout_min_ticks = c.election_timeout_min_ticks;
        core.election_timeout_max_ticks = c.election_timeout_max_ticks;
        core.retransmit_ticks = c.retransmit_ticks;
        core.max_pending_batches = c.max_pending_batches;
        core.max_message_bytes = c.max_message_bytes;
        core.applied_report_ticks = c.applied_report_ticks;
        core.accepted_to_learners = c.accepted_to_learners;
        core.check_quorum = c.check_quorum;
        core.leader_stickiness = c.leader_stickiness;
        core.validate().map_err(|e| {
            use paxos_core::ConfigError as E;
            let field = match &e {
                E::BadQuorum { field, .. } | E::Zero(field) => format!("cluster.{field}"),
                E::QuorumsDoNotIntersect { .. } => "cluster.phase1_quorum".into(),
                E::BadTimeouts(_) => "cluster.election_timeout_min_ticks".into(),
                E::BatchTooLarge { .. } => "cluster.batch_max_bytes".into(),
                E::StickinessWithoutCheckQuorum => "cluster.leader_stickiness".into(),
                E::NoRole(_) | E::MemberWithoutRoles(_) | E::DuplicateMember(_) => "member".into(),
                _ => "cluster".into(),
            };
            err(field, e.to_string())
        })?;
        Ok(Cluster { raw: file.cluster.clone(), members, core })
    }

    pub fn member(&self, id: ReplicaId) -> Option<&MemberInfo> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The UDP port of group `g`.
    pub fn port(&self, group: u16) -> u16 {
        self.raw.base_port + group
    }
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Which group serves `key`: FNV-1a over the key bytes, modulo the group count. Clients
/// and nodes use the same function (documented in docs/operations.md).
pub fn group_of(key: &[u8], groups: u16) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(groups.max(1))) as u16
}

/// A cluster file for `n` co-located replicas on 10.77.0.1.. (used by the launcher).
pub fn local_cluster_toml(n: u16, groups: u16, base_port: u16, ip_base: Ipv4Addr) -> String {
    let mut s = format!("[cluster]\ngroups = {groups}\nbase_port = {base_port}\n\n");
    let o = ip_base.octets();
    for i in 0..n {
        let ip = Ipv4Addr::new(o[0], o[1], o[2], o[3] + i as u8);
        s.push_str(&format!("[[member]]\nid = {i}\nip = \"{ip}\"\n\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[cluster]
groups = 2
base_port = 7000
phase1_quorum = 3
phase2_quorum = 1

[[member]]
id = 0
ip = "10.0.0.1"
mac = "02:00:00:00:00:10"
lcores = [1, 2]

[[member]]
id = 1
ip = "10.0.0.2"

[[member]]
id = 2
roles = ["acceptor", "learner"]
ip = "10.0.0.3"
"#;

    #[test]
    fn loads_a_good_file() {
        let c = Cluster::parse(GOOD).unwrap();
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.core.phase1_quorum, 3);
        assert_eq!(c.core.phase2_quorum, 1);
        assert_eq!(c.members[0].mac, [2, 0, 0, 0, 0, 0x10]);
        assert_eq!(c.members[1].mac, [2, 0, 0, 0, 0, 1]);
        assert!(!c.members[2].roles.proposer);
        assert_eq!(c.port(1), 7001);
    }

    fn error_of(text: &str) -> ConfigError {
        Cluster::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            error_of(&GOOD.replace("phase2_quorum = 1", "phase2_quorum = 0\nphase1_quorum_x = 1"));
        assert!(e.reason.contains("phase1_quorum_x"), "{e}");
        let e = error_of(
            &GOOD
                .replace("phase2_quorum = 1", "phase2_quorum = 0")
                .replace("phase1_quorum = 3", "phase1_quorum = 1"),
        );
        assert_eq!(e.field, "cluster.phase1_quorum", "{e}");
        assert!(e.reason.contains("1 + 2 <= 3"), "{e}");
        let e = error_of(&GOOD.replace("\"02:00:00:00:00:10\"", "\"zz\""));
        assert_eq!(e.field, "member[0].mac");
        let e = error_of(&GOOD.replace("lcores = [1, 2]", "lcores = [1]"));
        assert_eq!(e.field, "member[0].lcores");
        let e = error_of(&GOOD.replace("id = 1", "id = 0"));
        assert_eq!(e.field, "member[1].id");
        let e = error_of(&GOOD.replace("10.0.0.2", "10.0.0.1"));
        assert_eq!(e.field, "member[1].ip");
        let e = error_of(&GOOD.replace("[\"acceptor\", \"learner\"]", "[\"leader\"]"));
        assert_eq!(e.field, "member[2].roles");
        let e = error_of(&GOOD.replace("groups = 2", "groups = 0"));
        assert_eq!(e.field, "cluster.groups");
        let e = error_of("[cluster]\n");
        assert_eq!(e.field, "member");
        let e = error_of(&GOOD.replace("ip = \"10.0.0.3\"", "ip = \"10.0.0.300\""));
        assert!(e.field.starts_with("line "), "{e}");
    }

    #[test]
    fn groups_spread_keys() {
        let mut seen = [0u32; 4];
        for i in 0..4000 {
            seen[group_of(format!("key{i}").as_bytes(), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(group_of(b"anything", 1), 0);
    }

    #[test]
    fn local_cluster_file_is_valid() {
        let c =
            Cluster::parse(&local_cluster_toml(5, 2, 9000, Ipv4Addr::new(10, 77, 0, 1))).unwrap();
        assert_eq!(c.members.len(), 5);
        assert_eq!(c.core.phase1_quorum, 3);
    }
}
