//! Rejoining after lost state: a member whose acceptor state is gone (a wiped or unreadable
//! disk, or memory storage after a restart) must not vote with what it no longer knows.
//!
//! It starts with `Storage::voting() == false` and then:
//! 1. sends `RecoveryQuery { nonce }` to every other acceptor and proposer, until each has
//!    answered `RecoveryInfo` without itself rejoining; from the answers it takes `P`, the
//!    highest ballot any of them promised, used or saw, and `H`, one past the highest slot
//!    any acceptor accepted;
//! 2. meanwhile it does not vote (no Promise, Accepted, Nack or Learn), and until every
//!    answer is in it does not lead either (its proposer may then: its ballots are above
//!    `P`); its learner catches up as usual (Repeat, snapshots) and its acceptor notes the
//!    commit points leaders announce;
//! 3. once every slot below `H` is known chosen (its commit point or learner has passed
//!    `H`), it promises `P`, forgets every slot below that point `C`, marks itself voting,
//!    and votes again once those writes are synced.
//!
//! Why this is safe (the argument in full is in docs/protocol.md): every ballot started
//! before the state was lost is at most `P` (its proposer is one of those that answered,
//! and a proposer's ballots only grow, stably), so the forgotten promises are all at most
//! `P` and the rejoined acceptor never accepts below one of them; and any value that may
//! have been chosen with the lost vote lies below `H` (the choosing quorum's other members
//! hold it, and the answers cover every acceptor), so the rejoined acceptor reports those
//! slots as chosen (`low = C`) instead of reporting nothing.
//!
//! A member without the acceptor role only needs `P` (so that its proposer never reuses a
//! ballot), from every acceptor; a learner-only member has nothing to lose and never waits.
//!
//! Liveness: every other acceptor and proposer must answer once (two members rejoining at
//! the same time wait for each other), and the log must pass `H`.

use crate::config::Roles;
use crate::ids::{Ballot, ReplicaId, Slot};
use crate::message::Message;
use crate::node::{Node, Topology};
use crate::output::Event;
use crate::payload::{Payload, ValueBuilder};
use crate::storage::Storage;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rejoin {
    pub nonce: u64,
    /// Members (member-index bits) whose answer is needed, and those that gave it.
    required: u64,
    got: u64,
    /// The highest ballot and the highest `high` answered so far.
    ballot: Ballot,
    high: Slot,
    last_query: Option<u64>,
}

impl Rejoin {
    /// Every answer is in: the proposer knows a ballot above every one used before and may
    /// lead again (its acceptor may still be waiting to vote).
    pub fn answered(&self) -> bool {
        self.got == self.required
    }

    /// `me` rejoins with `mine` roles. An acceptor needs every other acceptor's and
    /// proposer's answer; a proposer without the acceptor role only every acceptor's (its
    /// ballots are all it must not reuse, and every acceptor that saw one answers at least
    /// that high).
    pub fn new(nonce: u64, topo: &Topology, me: ReplicaId, mine: Roles) -> Rejoin {
        let mut required = 0u64;
        for (i, m) in topo.members.iter().enumerate() {
            if let Some((_, roles)) = topo.member(*m) {
                if *m != me && (roles.acceptor || (mine.acceptor && roles.proposer)) {
                    required |= 1 << i;
                }
            }
        }
        Rejoin { nonce, required, got: 0, ballot: Ballot::NONE, high: Slot::ZERO, last_query: None }
    }
}

impl<P: Payload, S: Storage<P>, B: ValueBuilder<P>> Node<P, S, B> {
    pub(crate) fn rejoin_tick(&mut self) {
        let now = self.now;
        let rt = u64::from(self.cfg.retransmit_ticks);
        let Some(r) = self.rejoin.as_mut() else { return };
        if r.got != r.required {
            if r.last_query.is_some_and(|t| now.saturating_sub(t) < rt) {
                return;
            }
            r.last_query = Some(now);
            let (nonce, missing) = (r.nonce, r.required & !r.got);
            for i in 0..self.topo.members.len() {
                if missing & (1 << i) != 0 {
                    let to = self.topo.members[i];
                    self.sink().send(to, Message::RecoveryQuery { nonce });
                }
            }
            return;
        }
        self.try_resume();
    }

    /// Any member answers a rejoining member's query.
    pub(crate) fn answer_recovery_query(&mut self, to: ReplicaId, nonce: u64) {
        let ballot = self.storage.promised().max(self.prop.max_seen).max(self.prop.ballot);
        let high = if self.roles.acceptor && self.rejoin.is_none() {
            self.storage.high()
        } else {
            Slot::ZERO
        };
        let recovering = self.rejoin.is_some();
        self.sink().send(to, Message::RecoveryInfo { nonce, ballot, high, recovering });
    }

    pub(crate) fn on_recovery_info(
        &mut self,
        idx: usize,
        roles: Roles,
        nonce: u64,
        ballot: Ballot,
        high: Slot,
        recovering: bool,
    ) {
        let Some(r) = self.rejoin.as_mut() else { return };
        let bit = 1u64 << idx;
        if nonce != r.nonce || recovering || r.required & bit == 0 || r.got & bit != 0 {
            return;
        }
        r.got |= bit;
        r.ballot = r.ballot.max(ballot);
        if roles.acceptor {
            r.high = r.high.max(high);
        }
        if self.prop.max_seen < ballot {
            self.prop.max_seen = ballot;
        }
        self.try_resume();
    }

    /// Votes again if every answer is in and every slot below `H` is known chosen.
    fn try_resume(&mut self) {
        let Some(r) = self.rejoin.as_ref() else { return };
        if r.got != r.required {
            return;
        }
        let known = if self.roles.learner { self.learner.next } else { Slot::ZERO };
        let chosen_below = self.acceptor.commit.max(known);
        if self.roles.acceptor && chosen_below < r.high {
            return;
        }
        let promised = r.ballot.max(self.storage.promised()).max(self.prop.max_seen);
        self.storage.set_promised(promised);
        if self.roles.acceptor {
            self.trim_storage(chosen_below);
        }
        self.storage.set_voting(true);
        self.unsynced = true;
        self.prop.max_seen = promised;
        self.acceptor.commit = chosen_below;
        self.rejoin = None;
        self.stats.rejoins_completed += 1;
        self.events.push(Event::Rejoined { promised, low: chosen_below });
    }
}
