//! Where each member of a group is: `ReplicaId -> Endpoint`, fixed at start from the
//! configuration and bounded by the largest group the core supports.

use crate::io::Endpoint;
use core::fmt;
use paxos_core::config::MAX_MEMBERS;
use paxos_core::wire::CLIENT;
use paxos_core::ReplicaId;

/// Most entries in a [`PeerTable`]: the core's member limit.
pub const MAX_PEERS: usize = MAX_MEMBERS;

/// Why a peer table could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerError {
    TooMany(usize),
    Duplicate(ReplicaId),
    /// 0xFFFF is the wire's "client" id.
    ReservedId,
    /// A member of the configuration has no endpoint.
    Missing(ReplicaId),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::TooMany(n) => write!(f, "peers: {n} entries, at most {MAX_PEERS}"),
            PeerError::Duplicate(id) => write!(f, "peers: replica {} listed twice", id.0),
            PeerError::ReservedId => write!(f, "peers: replica id 0xFFFF is reserved for clients"),
            PeerError::Missing(id) => write!(f, "peers: no endpoint for member {}", id.0),
        }
    }
}

impl std::error::Error for PeerError {}

/// A small, immutable-after-build map from replica to endpoint. Lookups scan (a group has
/// a handful of members: faster than hashing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerTable {
    entries: Vec<(ReplicaId, Endpoint)>,
}

impl PeerTable {
    pub fn new(
        entries: impl IntoIterator<Item = (ReplicaId, Endpoint)>,
    ) -> Result<PeerTable, PeerError> {
        let mut t = PeerTable { entries: Vec::new() };
        for (id, ep) in entries {
            if id == CLIENT {
                return Err(PeerError::ReservedId);
            }
            if t.get(id).is_some() {
                return Err(PeerError::Duplicate(id));
            }
            if t.entries.len() == MAX_PEERS {
                return Err(PeerError::TooMany(MAX_PEERS + 1));
            }
            t.entries.push((id, ep));
        }
        Ok(t)
    }

    #[inline]
    pub fn get(&self, id: ReplicaId) -> Option<&Endpoint> {
        self.entries.iter().find(|(i, _)| *i == id).map(|(_, ep)| ep)
    }

    /// The replica at `ep` (compared by IP and port: kernel sockets have no MAC).
    pub fn id_of(&self, ep: &Endpoint) -> Option<ReplicaId> {
        self.entries.iter().find(|(_, e)| e.ip == ep.ip && e.port == ep.port).map(|(id, _)| *id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, Endpoint)> + '_ {
        self.entries.iter().copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.entries.iter().map(|(id, _)| *id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry after `id` in table order (wrapping), for clients that rotate through
    /// replicas; the first entry if `id` is not listed.
    pub fn next_after(&self, id: ReplicaId) -> Option<ReplicaId> {
        let i = self.entries.iter().position(|(i, _)| *i == id).map_or(0, |i| i + 1);
        self.entries.get(i % self.entries.len().max(1)).map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ep(port: u16) -> Endpoint {
        Endpoint::udp(Ipv4Addr::LOCALHOST, port)
    }

    #[test]
    fn builds_and_finds() {
        let t = PeerTable::new([(ReplicaId(0), ep(10)), (ReplicaId(5), ep(15))]).unwrap();
        assert_eq!(t.get(ReplicaId(5)), Some(&ep(15)));
        assert_eq!(t.get(ReplicaId(1)), None);
        assert_eq!(t.id_of(&ep(10)), Some(ReplicaId(0)));
        assert_eq!(t.next_after(ReplicaId(0)), Some(ReplicaId(5)));
        assert_eq!(t.next_after(ReplicaId(5)), Some(ReplicaId(0)));
        assert_eq!(t.next_after(ReplicaId(9)), Some(ReplicaId(0)));
        assert_eq!(PeerTable::default().next_after(ReplicaId(0)), None);
    }

    #[test]
    fn rejects_bad_tables() {
        assert_eq!(
            PeerTable::new([(ReplicaId(1), ep(1)), (ReplicaId(1), ep(2))]),
            Err(PeerError::Duplicate(ReplicaId(1)))
        );
        assert_eq!(PeerTable::new([(CLIENT, ep(1))]), Err(PeerError::ReservedId));
        let many = (0..=MAX_PEERS as u16).map(|i| (ReplicaId(i), ep(i)));
        assert_eq!(PeerTable::new(many), Err(PeerError::TooMany(MAX_PEERS + 1)));
    }
}
