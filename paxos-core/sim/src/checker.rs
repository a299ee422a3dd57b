//! Safety checkers, outside the code under test. They see only what the simulated
//! application sees: the commands clients proposed and the slots each learner delivered.
//!
//! - **Agreement** (Paxos Made Simple §2.1, "only a single value is chosen"; PMMC invariant
//!   R1, "no two replicas decide different commands for one slot"): a global slot -> value
//!   map; every delivery, by every learner incarnation, must match it.
//! - **Validity** (§2.1, "only a value that has been proposed may be chosen"): every command
//!   in a delivered batch is byte for byte one that a client handed to `Node::propose` and
//!   that `propose` accepted (a refused command must never appear). Empty batches are no-ops.
//! - **No duplication of a proposal** (PMMC: a command is decided in at most one slot per
//!   attempt): a proposal id appears at most once in the whole chosen log.
//! - **In-order delivery** per learner incarnation: slots are consecutive from where the
//!   incarnation started (0, or the end of the snapshot it installed).
//! - **Snapshots**: an installed state equals the global log's prefix (compared by hash).
//! - **Trim** (checked by the simulation): no heartbeat carries a trim point beyond what a
//!   majority of learners ever checkpointed.
//! - **Promises** (checked by the simulation): a node's durable promise never goes down
//!   (except when its disk is wiped).

use crate::command::{self, CommandId};
use crate::trace::{fnv, Fnv};
use bytes::Bytes;
use core::fmt;
use core::hash::Hasher;
use paxos_core::payload;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    Agreement {
        slot: u64,
        node: u16,
        existing: String,
        delivered: String,
    },
    Validity {
        slot: u64,
        node: u16,
        why: String,
    },
    DuplicateProposal {
        pid: u64,
        first_slot: u64,
        again_slot: u64,
    },
    OutOfOrder {
        node: u16,
        expected: u64,
        got: u64,
    },
    Snapshot {
        node: u16,
        upto: u64,
        why: String,
    },
    /// An acceptor's promise went down (PMMC acceptor invariant: its ballot only
    /// increases; Paxos Made Simple §2.5: it records its promise in stable storage before
    /// answering, and remembers it across failures).
    PromiseRegressed {
        node: u16,
        was: String,
        now: String,
    },
    /// A leader announced a trim point beyond what a majority of learners ever made
    /// durable: losing the rest could lose chosen slots for good.
    TrimBeyondDurable {
        node: u16,
        trim: u64,
        durable: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement { slot, node, existing, delivered } => write!(
                f,
                "AGREEMENT violated at s{slot}: n{node} delivered {delivered} but s{slot} was already decided as {existing}"
            ),
            Violation::Validity { slot, node, why } => {
                write!(f, "VALIDITY violated at s{slot} (delivered by n{node}): {why}")
            }
            Violation::DuplicateProposal { pid, first_slot, again_slot } => write!(
                f,
                "DUPLICATE proposal p{pid}: chosen at s{first_slot} and again at s{again_slot}"
            ),
            Violation::OutOfOrder { node, expected, got } => {
                write!(f, "ORDER violated: n{node} delivered s{got}, expected s{expected}")
            }
            Violation::Snapshot { node, upto, why } => {
                write!(f, "SNAPSHOT at n{node} upto s{upto} is wrong: {why}")
            }
            Violation::PromiseRegressed { node, was, now } => {
                write!(f, "PROMISE of n{node} went down from {was} to {now}")
            }
            Violation::TrimBeyondDurable { node, trim, durable } => write!(
                f,
                "TRIM by n{node} at s{trim}, beyond s{durable}, where a majority of learners have durable state"
            ),
        }
    }
}

/// What one proposal id was.
#[derive(Clone, Copy, Debug)]
struct Proposal {
    id: CommandId,
    pad: u16,
    /// `Node::propose` returned Ok.
    accepted: bool,
    chosen_at: Option<u64>,
}

/// The simulated application state of one learner incarnation: how far it has applied and a
/// hash chain over what it applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppState {
    pub next: u64,
    pub hash: u64,
}

/// A request whose first chosen slot was just found.
#[derive(Clone, Copy, Debug)]
pub struct FirstChosen {
    pub client: u32,
    pub seq: u32,
    pub slot: u64,
}

#[derive(Default)]
pub struct Checker {
    /// The global chosen log, dense from slot 0 (learners deliver in order, and snapshots
    /// only copy what some learner delivered, so the first delivery of slot s always finds
    /// slots below s known).
    log: Vec<Bytes>,
    /// prefix_hash[k]: hash chain over log[..k].
    prefix_hash: Vec<u64>,
    proposals: Vec<Proposal>,
    /// Per client, per seq (1-based): the first slot holding the request.
    requests: Vec<Vec<Option<u64>>>,
    scratch: Vec<u8>,
    seen: Vec<u64>,
}

pub fn chain(prev: u64, value: &[u8]) -> u64 {
    let mut h = Fnv(prev ^ 0x9E37_79B9_7F4A_7C15);
    h.write_u64(fnv(value));
    h.finish()
}

fn describe(value: &[u8]) -> String {
    if value.is_empty() {
        return "no-op".into();
    }
    let cmds: Vec<String> = payload::commands(value)
        .map(|c| match command::decode(c) {
            Some((id, _)) => format!("c{}#{}/p{}", id.client, id.seq, id.pid),
            None => format!("<{} bytes>", c.len()),
        })
        .collect();
    format!("[{}] (h={:08x})", cmds.join(" "), fnv(value) as u32)
}

impl Checker {
    pub fn new(clients: usize) -> Checker {
        Checker { prefix_hash: vec![0], requests: vec![Vec::new(); clients], ..Checker::default() }
    }

    /// Slots in the global chosen log.
    pub fn chosen_len(&self) -> u64 {
        self.log.len() as u64
    }
    pub fn value(&self, slot: u64) -> Option<&Bytes> {
        self.log.get(slot as usize)
    }
    pub fn proposals(&self) -> u64 {
        self.proposals.len() as u64
    }

    /// A client starts request `seq` (1-based, consecutive).
    pub fn issue(&mut self, client: u32, seq: u32) {
        let r = &mut self.requests[client as usize];
        debug_assert_eq!(r.len() + 1, seq as usize);
        r.push(None);
    }

    /// Requests issued so far.
    pub fn issued(&self) -> u64 {
        self.requests.iter().map(|r| r.len() as u64).sum()
    }

    /// Records an attempt handed to `propose` (`accepted`: it returned Ok). Returns its
    /// bytes in `out`.
    pub fn register(&mut self, id: CommandId, pad: usize, accepted: bool, out: &mut Vec<u8>) {
        debug_assert_eq!(id.pid, self.proposals.len() as u64);
        self.proposals.push(Proposal { id, pad: pad as u16, accepted, chosen_at: None });
        out.clear();
        command::encode(id, pad, out);
    }

    /// The slot every live learner must reach for every issued request to be delivered
    /// there: one past the highest first-chosen slot. `None` if some request is not chosen.
    pub fn required_next(&self) -> Option<u64> {
        let mut need = 0;
        for r in &self.requests {
            for s in r {
                need = need.max((*s)? + 1);
            }
        }
        Some(need)
    }

    /// A learner delivered `slot`. Checks order, agreement, and (for a slot seen for the first
    /// time) validity and uniqueness; appends the requests this slot completes to `done`.
    pub fn on_deliver(
        &mut self,
        node: u16,
        app: &mut AppState,
        slot: u64,
        value: &Bytes,
        done: &mut Vec<FirstChosen>,
    ) -> Result<(), Violation> {
        if slot != app.next {
            return Err(Violation::OutOfOrder { node, expected: app.next, got: slot });
        }
        let s = slot as usize;
        if s < self.log.len() {
            if self.log[s] != *value {
                return Err(Violation::Agreement {
                    slot,
                    node,
                    existing: describe(&self.log[s]),
                    delivered: describe(value),
                });
            }
        } else {
            // Dense by construction (see `log`); a gap means the simulator itself is wrong.
            assert_eq!(s, self.log.len(), "checker: first delivery of s{slot} with a gap below");
            self.validate_new(node, slot, value, done)?;
            let h = chain(self.prefix_hash[s], value);
            self.log.push(value.clone());
            self.prefix_hash.push(h);
        }
        app.next = slot + 1;
        app.hash = chain(app.hash, value);
        Ok(())
    }

    fn validate_new(
        &mut self,
        node: u16,
        slot: u64,
        value: &[u8],
        done: &mut Vec<FirstChosen>,
    ) -> Result<(), Violation> {
        if !payload::is_well_formed(value) {
            return Err(Violation::Validity {
                slot,
                node,
                why: format!("malformed batch of {} bytes", value.len()),
            });
        }
        self.seen.clear();
        let mut scratch = core::mem::take(&mut self.scratch);
        for c in payload::commands(value) {
            let Some((id, pad)) = command::decode(c) else {
                return Err(Violation::Validity {
                    slot,
                    node,
                    why: format!("a {}-byte command no client sent", c.len()),
                });
            };
            let Some(p) = self.proposals.get(id.pid as usize).copied() else {
                return Err(Violation::Validity {
                    slot,
                    node,
                    why: format!("unknown proposal p{}", id.pid),
                });
            };
            scratch.clear();
            command::encode(p.id, usize::from(p.pad), &mut scratch);
            if scratch.as_slice() != c || pad != usize::from(p.pad) {
                return Err(Violation::Validity {
                    slot,
                    node,
                    why: format!("p{} bytes differ from what was proposed", id.pid),
                });
            }
            if !p.accepted {
                return Err(Violation::Validity {
                    slot,
                    node,
                    why: format!("p{} was refused by propose() yet chosen", id.pid),
                });
            }
            if let Some(first) = p.chosen_at {
                return Err(Violation::DuplicateProposal {
                    pid: id.pid,
                    first_slot: first,
                    again_slot: slot,
                });
            }
            if self.seen.contains(&id.pid) {
                return Err(Violation::DuplicateProposal {
                    pid: id.pid,
                    first_slot: slot,
                    again_slot: slot,
                });
            }
            self.seen.push(id.pid);
            let req = &mut self.requests[id.client as usize][id.seq as usize - 1];
            if req.is_none() {
                *req = Some(slot);
                done.push(FirstChosen { client: id.client, seq: id.seq, slot });
            }
        }
        for &pid in &self.seen {
            self.proposals[pid as usize].chosen_at = Some(slot);
        }
        self.scratch = scratch;
        Ok(())
    }

    /// A learner installs `source`'s state as a snapshot. It must equal the global prefix.
    pub fn check_snapshot(&self, node: u16, source: AppState) -> Result<(), Violation> {
        match self.prefix_hash.get(source.next as usize) {
            Some(h) if *h == source.hash => Ok(()),
            Some(_) => Err(Violation::Snapshot {
                node,
                upto: source.next,
                why: "state differs from the chosen log".into(),
            }),
            None => Err(Violation::Snapshot {
                node,
                upto: source.next,
                why: "covers slots never chosen".into(),
            }),
        }
    }
}
