//! # paxos-sim: a deterministic, fault-injecting simulator for `paxos-core`
//!
//! The real [`paxos_core::Node`] runs inside (over `Bytes` and `MemStorage`), in the manner of
//! TigerBeetle's VOPR and FoundationDB's simulation testing: every source of nondeterminism —
//! virtual time, message delay, loss, duplication, reordering, partitions, crashes and
//! restarts, process pauses, client behaviour — is drawn from one seeded PRNG ([`rng::Rng`]), so a seed
//! replays exactly. Nothing iterates a hash map; there are no threads inside a run.
//!
//! - [`options`]: what a run looks like; each seed draws its own cluster size, quorums, core
//!   knobs and fault mix (swarm testing) from what [`Options`] leave open.
//! - [`network`]: the simulated network (etcd-style `drop`, `cut`, `isolate`, `recover`).
//! - [`sim`]: [`Simulation`], the main loop, clients, crashes, snapshots; read its module docs
//!   first.
//! - [`checker`]: agreement, validity, no duplicated proposal, in-order delivery, snapshot
//!   equality — all outside the code under test.
//! - [`trace`]: one line per event, a ring of the last lines and a running hash of all.
//! - [`swarm`]: many seeds on a few threads.
//!
//! ```
//! use paxos_sim::{Options, Simulation, FaultLevel};
//! let opts = Options { nodes: Some(3), faults: FaultLevel::Light, fault_ticks: 100, ..Options::default() };
//! let outcome = Simulation::run_seed(7, &opts);
//! assert!(outcome.ok(), "{}", outcome.report(&opts));
//! ```

#![forbid(unsafe_code)]

pub mod checker;
pub mod command;
pub mod network;
pub mod options;
pub mod rng;
pub mod sim;
pub mod storage;
pub mod swarm;
pub mod trace;

pub use checker::{AppState, Violation};
pub use options::{FaultLevel, FaultMix, FlushMode, Options, SimConfig, SyncMode};
pub use sim::{Failure, FailureKind, Outcome, SimNode, SimStats, Simulation};
pub use storage::SimStorage;
pub use swarm::{run_seeds, Progress, Summary};
pub use trace::STEPS_PER_TICK;
