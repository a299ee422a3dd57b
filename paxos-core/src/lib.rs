//! # paxos-core: Multi-Paxos as a driven state machine
//!
//! No sockets, clocks, threads or randomness live here: a [`Node`] is a value its driver
//! feeds with messages ([`Node::step`]), time ([`Node::tick`]) and client commands
//! ([`Node::propose`]), and then drains of what it wants done: messages to send, slots
//! decided, events. The same code runs inside the deterministic simulator (`paxos-sim`), over
//! kernel UDP sockets and on DPDK lcores.
//!
//! ## The algorithm (Multi-Paxos, with flexible quorums)
//! - Roles: *acceptors* remember promises and accepted values; a *proposer* that wins
//!   Phase 1 becomes the *leader* and runs Phase 2 per slot; *learners* deliver chosen
//!   slots in order. A member holds any non-empty subset of the roles.
//! - Phase 1 runs once per leadership and covers every slot from the first one the
//!   candidate does not know to be chosen. A `q1`-quorum of promises reports every value
//!   those acceptors accepted; per slot the new leader adopts the one with the highest
//!   ballot and fills holes with no-ops.
//! - Phase 2: each slot's value (a batch of commands) goes to every acceptor and learner;
//!   acceptors answer `Accepted` to the leader and every learner; a `q2`-quorum of accepts
//!   at one ballot means chosen. Up to `window` slots are in flight.
//! - `q1 + q2 > n` (checked by [`Config::validate`]) makes every phase-1 quorum meet every
//!   phase-2 quorum (Flexible Paxos, Howard et al. 2016).
//! - Liveness: the leader heartbeats; a follower that hears no leader for a randomised
//!   timeout (from the seed its driver supplies) starts Phase 1 with a higher ballot; any
//!   higher ballot makes a leader step down. Lost messages are retransmitted on ticks;
//!   learners that see a gap below the leader's commit point ask acceptors to repeat.
//! - Log trim: learners report what they applied; the leader announces the minimum as the
//!   trim point and acceptors forget everything below it. A learner that needs a forgotten
//!   slot gets [`Event::SnapshotNeeded`] and resumes with [`Node::snapshot_installed`].
//!
//! ## Driving a node
//! ```
//! use paxos_core::{Config, MemNode, ReplicaId, Outgoing, Decided, MemStorage, BytesBuilder};
//! let cfg = Config::replicas(1);
//! let mut node = MemNode::new(cfg, ReplicaId(0), MemStorage::default(), BytesBuilder::default(), 7).unwrap();
//! let (mut out, mut decided) = (Vec::<Outgoing<_>>::new(), Vec::<Decided<_>>::new());
//! for _ in 0..100 {
//!     node.tick();                          // one unit of virtual time
//!     if node.is_leader() { let _ = node.propose(b"hello"); node.flush(); }
//!     loop {
//!         node.sync().unwrap();             // durability contract: persist, then send
//!         node.take_messages(&mut out);
//!         if out.is_empty() { break; }
//!         for m in out.drain(..) { node.step(m.to, m.msg); } // one node: everything is for us
//!     }
//!     node.take_decided(&mut decided);
//! }
//! assert!(decided.iter().any(|d| paxos_core::payload::commands(&d.value).any(|c| c == b"hello")));
//! ```
//! (In a real driver `step` takes the *sender's* id; the loop above delivers a single
//! node's messages to itself, so sender and receiver coincide.)
//!
//! The I/O ordering contract is in [`storage`]: stable writes happen inside `step`, and
//! `sync` must complete before the messages drained after them are sent.

#![forbid(unsafe_code)]

mod acceptor;
pub mod config;
pub mod ids;
mod learner;
pub mod message;
mod node;
pub mod output;
pub mod payload;
mod proposer;
mod rejoin;
pub mod snapshot;
pub mod storage;

pub use acceptor::MAX_REPEAT_SLOTS;
pub use config::{Config, ConfigError, Member, Roles, MAX_WINDOW};
pub use ids::{Ballot, ClientId, GroupId, ReplicaId, RequestSeq, Slot};
pub use learner::CANDIDATES_PER_SLOT;
pub use message::{Message, SlotValue};
pub use node::{Bugs, MemNode, Node};
pub use output::{Decided, Event, Outgoing, ProposeError, Stats};
pub use payload::{BytesBuilder, Payload, ValueBuilder};
pub use proposer::MAX_PROMISE_CHUNKS;
pub use storage::{MemStorage, Storage, StorageError};
pub mod wire;
