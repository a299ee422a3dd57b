//! Identifier newtypes. Every id the protocol passes around has its own type so that a slot
//! can never be mistaken for a round or a replica for a client.

use core::fmt;

/// A member of the cluster (any subset of acceptor, proposer, learner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaId(pub u16);

/// One independent Paxos group (a partition of the log), served by one lcore per node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u16);

/// A position in the replicated log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub u64);

impl Slot {
    pub const ZERO: Slot = Slot(0);
    #[inline]
    pub fn next(self) -> Slot {
        Slot(self.0 + 1)
    }
    #[inline]
    pub fn plus(self, n: u64) -> Slot {
        Slot(self.0 + n)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A ballot (a.k.a. proposal number or round). Ordered first by `round`, then by `leader`,
/// so two proposers never share a ballot and every pair of ballots is comparable (a total
/// order). `Ballot::NONE` (round 0) is below every ballot a proposer ever uses: real rounds
/// start at 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ballot {
    pub round: u32,
    pub leader: ReplicaId,
}

impl Ballot {
    pub const NONE: Ballot = Ballot { round: 0, leader: ReplicaId(0) };

    pub fn new(round: u32, leader: ReplicaId) -> Ballot {
        Ballot { round, leader }
    }

    /// The smallest ballot owned by `me` that is above `self`, if a round is left (rounds
    /// never wrap: a wrapped round would reuse ballots).
    pub fn checked_next_for(self, me: ReplicaId) -> Option<Ballot> {
        Some(Ballot { round: self.round.checked_add(1)?, leader: me })
    }

    pub fn is_none(self) -> bool {
        self.round == 0
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round, self.leader.0)
    }
}

/// A client session id (exactly-once sessions live in the application, not the core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// A client's request sequence number within its session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestSeq(pub u64);
