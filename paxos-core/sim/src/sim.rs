//! [`Simulation`]: the real `paxos_core::Node`s, a simulated network, clients, crashes and the
//! checkers, all driven by one seeded PRNG in virtual time.
//!
//! ## Time
//! Time advances in steps ([`STEPS_PER_TICK`] per tick). At each tick boundary the fault
//! schedule acts (crash, restart, pause, partition episodes), then every live node ticks (in
//! a random order). Between ticks, messages arrive at the step their delay says and clients
//! act at random steps. A paused node neither ticks nor handles messages (they wait for it)
//! but keeps all its state: a leader frozen by a long GC pause wakes up still leading.
//!
//! ## Driving a node (the durability contract) and what disks do
//! After every input (`step`, `tick`, `propose`, `flush`, `snapshot_installed`) the driver
//! takes the node's messages; the core hands out only those that depend on nothing
//! unsynced. Then it syncs, either at once (`SyncMode::EveryInput`) or lazily
//! (`SyncMode::Lazy`: with some probability per input and always after the node's tick, as
//! a group-committing driver does), or asynchronously (`SyncMode::Async`: `begin_sync` after
//! every input, the syncs completing at random later inputs and at the node's tick, the
//! replies released by `poll_sync`), and sends what the sync released. Messages a node sends
//! to itself are delivered back at once, never lost. Storage is a [`SimStorage`]: a crash
//! keeps the synced state plus a random prefix of the writes since (a torn tail); a sync may
//! fail (the node stops as if it crashed); a crash may wipe the disk (the node restarts
//! empty and must rejoin before it votes). A restart builds a fresh `Node` from what
//! survived, whose learner starts again at slot 0 or at its application checkpoint.
//!
//! ## Clients
//! Each client has at most one request outstanding. It proposes to the node it believes leads
//! (first a random one; it follows `NotLeader { hint }`), and retries with a new proposal id,
//! possibly at another node, when the request is not delivered within its timeout. A request
//! is *done* when any learner delivers a command carrying its (client, seq).
//!
//! ## Application state and snapshots
//! A learner's application state is its applied prefix of the log (kept as a slot count and
//! a hash chain, checked against the global chosen log). Every `checkpoint_every_ticks` the
//! application makes it durable (a checkpoint, lost only with a wiped disk) and reports the
//! checkpoint's slot with `Node::set_applied`: the leader trims the log only where a
//! majority of learners have checkpoints (checked: no heartbeat may carry a trim point
//! beyond what a majority of learners ever checkpointed). A restarted node either starts
//! its application empty (the learner begins again at slot 0) or restores its checkpoint and
//! calls `snapshot_installed`, each with probability 1/2.
//!
//! Snapshots travel through the simulated network as the core sends them (chunks subject to
//! loss, delay and partitions): on `Event::SnapshotWanted` a learner offers its current
//! state (with padding, so that a transfer takes several chunks); on `Event::SnapshotReady`
//! the receiving application checks it against the chosen log, installs it and calls
//! `snapshot_installed`.
//!
//! ## Phases
//! A fault phase of `fault_ticks`, then a liveness phase: faults stop, episodes heal, every
//! crashed node restarts, clients stop issuing new requests, and every request issued must be
//! delivered at every live learner within `liveness_ticks_max` ticks plus a quarter tick per
//! slot the furthest-behind learner has to catch up.

use crate::checker::{AppState, Checker, FirstChosen, Violation};
use crate::command::CommandId;
use crate::network::{InFlight, LinkParams, Network};
use crate::options::{FaultMix, FlushMode, Options, SimConfig, SyncMode};
use crate::rng::Rng;
use crate::storage::SimStorage;
use crate::trace::{
    fnv, MsgSummary, NetChange, NodeIx, ProposeOutcome, Trace, TraceEvent, STEPS_PER_TICK,
};
use bytes::Bytes;
use core::fmt;
use paxos_core::{
    Ballot, BytesBuilder, Decided, Event, Message, Node, Outgoing, ProposeError, ReplicaId, Slot,
    Storage,
};
use std::collections::VecDeque;

/// The simulator's node: the real core over `Bytes`, with a disk that fails.
pub type SimNode = Node<Bytes, SimStorage, BytesBuilder>;

enum NodeSlot {
    Up(Box<SimNode>),
    Down(SimStorage),
    /// Transient, while moving between the two.
    Moving,
}

#[derive(Clone, Copy, Debug, Default)]
struct Client {
    /// Current request (1-based; 0 before the first).
    seq: u32,
    outstanding: bool,
    /// The attempt a node accepted and we wait for.
    pid: Option<u64>,
    target: usize,
    /// Step at which the client next acts (u64::MAX: nothing scheduled).
    action_at: u64,
    /// Step at which the accepted attempt times out.
    deadline: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Faults,
    Liveness,
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub ticks: u64,
    pub messages_sent: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub pauses: u64,
    pub partitions: u64,
    pub leaders_elected: u64,
    /// Snapshots installed, in all: from a peer's state, or from the node's own checkpoint
    /// (after `SnapshotNeeded`, or right after a restart).
    pub snapshots_installed: u64,
    pub snapshots_from_peers: u64,
    pub checkpoint_restores: u64,
    pub snapshots_needed: u64,
    /// Snapshots a learner offered to a peer that asked.
    pub snapshots_offered: u64,
    /// Disks wiped at a crash, members that rejoined after one, syncs that failed, and
    /// pending writes a crash lost.
    pub wipes: u64,
    pub rejoins: u64,
    pub sync_failures: u64,
    pub writes_lost: u64,
    pub slots_chosen: u64,
    pub requests_issued: u64,
    pub requests_done: u64,
    pub proposals: u64,
    pub deliveries: u64,
    /// Ticks the liveness phase took to converge.
    pub liveness_ticks: u64,
    /// Leaders elected in the stable phase (0 unless the leadership churns), and 1 if the
    /// seed's configuration made it a failure (stickiness on, sane timeouts), else 0.
    pub stable_leader_changes: u64,
    pub stable_checked: u64,
}

/// Length of the stable phase ([`Simulation::stable_phase`]), in ticks: several election
/// timeouts of any drawn configuration.
pub const STABLE_TICKS: u64 = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Safety(Violation),
    Liveness(String),
}

/// A failed run: what, when, and the tail of the trace.
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub step: u64,
    pub trace_tail: Vec<String>,
}

impl Failure {
    pub fn is_safety(&self) -> bool {
        matches!(self.kind, FailureKind::Safety(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.step / STEPS_PER_TICK;
        match &self.kind {
            FailureKind::Safety(v) => write!(f, "safety failure at tick {t}: {v}"),
            FailureKind::Liveness(why) => write!(f, "liveness failure at tick {t}: {why}"),
        }
    }
}

/// The result of one seed.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub config: SimConfig,
    pub failure: Option<Failure>,
    pub stats: SimStats,
    pub trace_hash: u64,
    pub trace_lines: u64,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
    /// The full failure report: seed, config, what failed, the trace tail.
    pub fn report(&self, opts: &Options) -> String {
        let mut s = String::new();
        let Some(f) = &self.failure else { return format!("seed {} ok", self.seed) };
        s += &format!("=== seed {} FAILED: {f}\n", self.seed);
        s += &format!("{}\n", self.config);
        s += &format!("last {} trace lines:\n", f.trace_tail.len());
        for l in &f.trace_tail {
            s += l;
            s.push('\n');
        }
        s += &format!("=== seed {} FAILED: {f}\n", self.seed);
        s += &format!(
            "reproduce: cargo run -p paxos-sim --release -- {}\n",
            opts.repro_args(self.seed)
        );
        s
    }
}

pub struct Simulation {
    cfg: SimConfig,
    rng: Rng,
    step: u64,
    phase: Phase,
    nodes: Vec<NodeSlot>,
    /// Tick at which a crashed node restarts (None: up, or down until the liveness phase).
    restart_at: Vec<Option<u64>>,
    /// A paused node resumes at this tick (0: not paused).
    paused_until: Vec<u64>,
    incarnation: Vec<u32>,
    apps: Vec<AppState>,
    /// Each node's durable application checkpoint (survives crashes, not wipes).
    checkpoints: Vec<AppState>,
    /// The highest checkpoint each node ever had (before any wipe): what trim may rely on.
    max_checkpoint: Vec<u64>,
    /// Down with a wiped disk.
    wiped: Vec<bool>,
    /// The highest promise each node's storage has shown (it must never go down).
    promised: Vec<Ballot>,
    snapshot_wanted: Vec<Option<u64>>,
    /// Not required to converge in the liveness phase (e.g. behind a permanent partition).
    liveness_exempt: Vec<bool>,
    net: Network,
    clients: Vec<Client>,
    issuing: bool,
    next_pid: u64,
    /// The liveness phase's bound, once it started.
    liveness_bound: u64,
    checker: Checker,
    trace: Trace,
    stats: SimStats,
    failure: Option<Failure>,
    // Buffers reused across calls (no allocation per event).
    out: Vec<Outgoing<Bytes>>,
    decided: Vec<Decided<Bytes>>,
    events: Vec<Event>,
    self_q: VecDeque<Message<Bytes>>,
    done: Vec<FirstChosen>,
    cmd: Vec<u8>,
    order: Vec<usize>,
}

fn link_params(m: &FaultMix) -> LinkParams {
    LinkParams {
        loss_ppm: m.loss_ppm,
        dup_ppm: m.dup_ppm,
        delay_min_steps: m.delay_min_steps,
        delay_max_steps: m.delay_max_steps,
        tail_ppm: m.tail_ppm,
        tail_max_steps: m.tail_max_steps,
    }
}

impl Simulation {
    pub fn new(cfg: SimConfig) -> Simulation {
        let n = cfg.nodes();
        let mut rng = Rng::new(cfg.seed ^ 0xA5A5_5A5A_0F0F_F0F0);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut node = SimNode::new(
                cfg.core.clone(),
                ReplicaId(i as u16),
                SimStorage::default(),
                BytesBuilder::default(),
                rng.next_u64(),
            )
            .expect("simulator configs are valid");
            node.inject_bugs(cfg.bugs);
            nodes.push(NodeSlot::Up(Box::new(node)));
        }
        let clients = (0..cfg.clients)
            .map(|_| Client {
                target: rng.below(n as u64) as usize,
                action_at: rng.below(cfg.think_ticks_max * STEPS_PER_TICK + STEPS_PER_TICK),
                ..Client::default()
            })
            .collect();
        Simulation {
            net: Network::new(n, link_params(&cfg.faults)),
            checker: Checker::new(cfg.clients),
            trace: Trace::new(cfg.trace_ring_len, cfg.print_trace),
            rng,
            step: 0,
            phase: Phase::Faults,
            nodes,
            restart_at: vec![None; n],
            paused_until: vec![0; n],
            incarnation: vec![0; n],
            apps: vec![AppState::default(); n],
            checkpoints: vec![AppState::default(); n],
            max_checkpoint: vec![0; n],
            wiped: vec![false; n],
            promised: vec![Ballot::NONE; n],
            snapshot_wanted: vec![None; n],
            liveness_exempt: vec![false; n],
            clients,
            issuing: true,
            next_pid: 0,
            liveness_bound: 0,
            stats: SimStats::default(),
            failure: None,
            out: Vec::with_capacity(256),
            decided: Vec::with_capacity(64),
            events: Vec::with_capacity(8),
            self_q: VecDeque::with_capacity(64),
            done: Vec::new(),
            cmd: Vec::with_capacity(256),
            order: (0..n).collect(),
            cfg,
        }
    }

    /// Draws the seed's configuration from `opts`, runs both phases, reports.
    pub fn run_seed(seed: u64, opts: &Options) -> Outcome {
        Simulation::new(SimConfig::draw(seed, opts)).run()
    }

    /// Runs the fault phase, the liveness phase, then the stable phase.
    pub fn run(mut self) -> Outcome {
        let r = self
            .run_ticks(self.cfg.fault_ticks)
            .and_then(|_| self.liveness())
            .and_then(|_| self.stable_phase());
        self.finish(r.err())
    }

    /// After convergence, [`STABLE_TICKS`] calm ticks with clients issuing again (cuts the
    /// test set up stay): leader changes are counted, and with check-quorum and leader
    /// stickiness on and timeouts that leave room for a heartbeat's delay, any leader
    /// elected here fails the seed (the leadership churns while the network is calm).
    pub fn stable_phase(&mut self) -> Result<(), Failure> {
        // Convergence does not need a leader (everything issued may be decided while the
        // last leader is down): count from the first tick some node leads.
        for _ in 0..self.cfg.liveness_ticks_max {
            if (0..self.nodes.len()).any(|i| self.node(i).is_some_and(|n| n.is_leader())) {
                break;
            }
            self.run_tick();
            self.take_failure()?;
        }
        let before = self.stats.leaders_elected;
        self.issuing = true;
        for _ in 0..STABLE_TICKS {
            self.run_tick();
            self.take_failure()?;
        }
        self.issuing = false;
        let n = self.stats.leaders_elected - before;
        self.stats.stable_leader_changes = n;
        // Only where a live leader is always heard in time: a heartbeat interval plus the
        // calm phase's longest delay, and a tick of slack, under the shortest election
        // timeout. (The draws include tighter timings, where a follower may time out with
        // a live leader, and rightly runs for leader.)
        let c = &self.cfg.core;
        let delay = u64::from(self.cfg.faults.delay_max_steps.min(2 * STEPS_PER_TICK as u32));
        let sane = u64::from(c.election_timeout_min_ticks) * STEPS_PER_TICK
            > (u64::from(c.heartbeat_ticks) + 1) * STEPS_PER_TICK + delay;
        self.stats.stable_checked = u64::from(c.leader_stickiness && sane);
        if n > 0 && c.leader_stickiness && sane {
            self.fail(FailureKind::Liveness(format!(
                "the leadership churned: {n} leader(s) elected in the {STABLE_TICKS} calm ticks after convergence"
            )));
            return self.take_failure();
        }
        Ok(())
    }

    fn finish(mut self, failure: Option<Failure>) -> Outcome {
        self.stats.slots_chosen = self.checker.chosen_len();
        self.stats.requests_issued = self.checker.issued();
        self.stats.proposals = self.checker.proposals();
        Outcome {
            seed: self.cfg.seed,
            failure,
            stats: self.stats,
            trace_hash: self.trace.hash(),
            trace_lines: self.trace.lines(),
            config: self.cfg,
        }
    }

    // ---------------------------------------------------------------- accessors

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }
    pub fn now_ticks(&self) -> u64 {
        self.step / STEPS_PER_TICK
    }
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }
    pub fn network(&mut self) -> &mut Network {
        &mut self.net
    }
    /// The node, if it is up.
    pub fn node(&self, i: usize) -> Option<&SimNode> {
        match &self.nodes[i] {
            NodeSlot::Up(n) => Some(n),
            _ => None,
        }
    }
    pub fn is_up(&self, i: usize) -> bool {
        matches!(self.nodes[i], NodeSlot::Up(_))
    }
    /// The application state of node `i`'s learner (next slot to apply, hash chain).
    pub fn app(&self, i: usize) -> AppState {
        self.apps[i]
    }
    pub fn chosen_len(&self) -> u64 {
        self.checker.chosen_len()
    }
    /// The value chosen for `slot`, if some learner delivered it.
    pub fn chosen(&self, slot: u64) -> Option<&Bytes> {
        self.checker.value(slot)
    }
    /// Replaces the fault mix from now on (network link parameters included).
    pub fn set_faults(&mut self, faults: FaultMix) {
        self.net.params = link_params(&faults);
        self.cfg.faults = faults;
    }
    /// Node `i` need not converge in the liveness phase (it sits behind a permanent cut).
    pub fn exempt_from_liveness(&mut self, i: usize) {
        self.liveness_exempt[i] = true;
    }
    /// Whether clients start new requests (they always retry outstanding ones).
    pub fn set_issuing(&mut self, on: bool) {
        self.issuing = on;
    }
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    fn record(&mut self, ev: TraceEvent) {
        self.trace.record(self.step, ev);
    }

    fn fail(&mut self, kind: FailureKind) {
        if self.failure.is_none() {
            self.failure = Some(Failure { kind, step: self.step, trace_tail: Vec::new() });
        }
    }

    fn take_failure(&mut self) -> Result<(), Failure> {
        match self.failure.take() {
            None => Ok(()),
            Some(mut f) => {
                f.trace_tail = self.trace.tail();
                // Keep it set so that a caller that ignores the error cannot go on.
                self.failure = Some(f.clone());
                Err(f)
            }
        }
    }

    // ---------------------------------------------------------------- crash / restart

    /// Crashes node `i`: only its stable storage survives (the synced state plus a random
    /// prefix of the writes since).
    pub fn crash(&mut self, i: usize) {
        self.crash_with(i, false);
    }

    /// Crashes node `i`; `wipe`: its disk is lost too (acceptor state and checkpoint).
    pub fn crash_with(&mut self, i: usize, wipe: bool) {
        let NodeSlot::Up(node) = core::mem::replace(&mut self.nodes[i], NodeSlot::Moving) else {
            return;
        };
        let storage = node.into_storage();
        let pending = storage.pending_len();
        let keep = self.rng.below(pending as u64 + 1) as usize;
        self.stats.writes_lost += (pending - keep) as u64;
        let storage = if wipe {
            self.stats.wipes += 1;
            self.wiped[i] = true;
            self.checkpoints[i] = AppState::default();
            SimStorage::wiped()
        } else {
            storage.after_crash(keep)
        };
        self.nodes[i] = NodeSlot::Down(storage);
        self.snapshot_wanted[i] = None;
        self.paused_until[i] = 0;
        self.stats.crashes += 1;
        self.record(TraceEvent::Crash { node: i as NodeIx, lost: (pending - keep) as u32, wipe });
    }

    /// Whether wiping node `i`'s disk now is survivable: the configuration lets a member
    /// rejoin (q2 >= 2, so another acceptor holds every value it helped choose; q1 and q2
    /// below the acceptor count, so the others elect leaders and choose values without it,
    /// and the log can pass the point it waits for), nobody else is wiped or
    /// rejoining (two rejoining members wait for each other), and another learner's
    /// checkpoint covers every slot any acceptor trimmed.
    fn wipe_allowed(&self, i: usize) -> bool {
        let c = &self.cfg.core;
        let n = c.acceptor_count();
        if c.phase2_quorum < 2 || c.phase1_quorum >= n || c.phase2_quorum >= n {
            return false;
        }
        // Rejoining, or rejoined without having made it durable yet.
        let rejoining = |slot: &NodeSlot| match slot {
            NodeSlot::Up(n) => !n.is_voting() || !n.storage().durable_voting(),
            NodeSlot::Down(s) => !s.voting(),
            NodeSlot::Moving => true,
        };
        if self.wiped.iter().any(|w| *w) || self.nodes.iter().any(rejoining) {
            return false;
        }
        let trimmed = (0..self.nodes.len())
            .filter_map(|j| match &self.nodes[j] {
                NodeSlot::Up(n) => Some(n.storage().low().0),
                NodeSlot::Down(s) => Some(s.low().0),
                NodeSlot::Moving => None,
            })
            .max()
            .unwrap_or(0);
        (0..self.nodes.len())
            .any(|j| j != i && c.members[j].roles.learner && self.checkpoints[j].next >= trimmed)
    }

    /// The highest trim point a leader may announce: a majority of learners ever had a
    /// checkpoint there.
    fn trim_bound(&self) -> u64 {
        let mut cps: Vec<u64> = (0..self.nodes.len())
            .filter(|&j| self.cfg.core.members[j].roles.learner)
            .map(|j| self.max_checkpoint[j])
            .collect();
        cps.sort_unstable();
        let n = cps.len();
        n.checked_sub(n / 2 + 1).and_then(|k| cps.get(k).copied()).unwrap_or(0)
    }

    /// Restarts node `i` from its storage: a new incarnation with empty volatile state. Its
    /// application restores its checkpoint or starts empty, with probability 1/2 each.
    pub fn restart(&mut self, i: usize) {
        let restore = self.rng.chance(500_000);
        self.restart_with(i, restore);
    }

    /// Restarts node `i`; its application restores its checkpoint if `restore`, else it
    /// starts empty and its learner begins again at slot 0.
    pub fn restart_with(&mut self, i: usize, restore: bool) {
        let NodeSlot::Down(storage) = core::mem::replace(&mut self.nodes[i], NodeSlot::Moving)
        else {
            return;
        };
        if self.wiped[i] {
            // Its promise starts over: the rejoin protocol, not the disk, keeps it safe.
            self.promised[i] = Ballot::NONE;
            self.wiped[i] = false;
        }
        let mut node = SimNode::new(
            self.cfg.core.clone(),
            ReplicaId(i as u16),
            storage,
            BytesBuilder::default(),
            self.rng.next_u64(),
        )
        .expect("simulator configs are valid");
        node.inject_bugs(self.cfg.bugs);
        self.nodes[i] = NodeSlot::Up(Box::new(node));
        self.restart_at[i] = None;
        self.incarnation[i] += 1;
        self.apps[i] = AppState::default();
        self.stats.restarts += 1;
        self.record(TraceEvent::Restart { node: i as NodeIx, incarnation: self.incarnation[i] });
        let cp = self.checkpoints[i];
        if restore && cp.next > 0 {
            self.install(i, i, cp);
        }
        if let NodeSlot::Up(node) = &mut self.nodes[i] {
            node.set_applied(Slot(cp.next));
        }
        self.drain(i, false);
    }

    // ---------------------------------------------------------------- the main loop

    /// Runs `ticks` ticks with the current fault mix.
    pub fn run_ticks(&mut self, ticks: u64) -> Result<(), Failure> {
        for _ in 0..ticks {
            self.run_tick();
            self.take_failure()?;
        }
        Ok(())
    }

    /// Heals everything and requires convergence within `liveness_ticks_max`. Returns the
    /// ticks it took.
    pub fn liveness(&mut self) -> Result<u64, Failure> {
        self.phase = Phase::Liveness;
        self.issuing = false;
        self.record(TraceEvent::LivenessPhase);
        self.net.heal_episodes();
        self.record(TraceEvent::Net(NetChange::Healed));
        let calm = FaultMix {
            delay_max_steps: self.cfg.faults.delay_max_steps.min(2 * STEPS_PER_TICK as u32),
            ..FaultMix::none()
        };
        self.net.params = link_params(&calm);
        for i in 0..self.nodes.len() {
            if !self.is_up(i) && !self.liveness_exempt[i] {
                self.restart(i);
            }
        }
        self.take_failure()?;
        // The bound grows with how far the furthest-behind learner has to catch up (it
        // gains at least about four slots a tick: a learner buffer per round trip, or a
        // snapshot).
        let behind = (0..self.nodes.len())
            .filter(|&i| self.cfg.core.members[i].roles.learner && !self.liveness_exempt[i])
            .map(|i| self.checker.chosen_len().saturating_sub(self.apps[i].next))
            .max()
            .unwrap_or(0);
        self.liveness_bound = self.cfg.liveness_ticks_max + behind / 4;
        for t in 0..self.liveness_bound {
            if self.converged() {
                self.stats.liveness_ticks = t;
                return Ok(t);
            }
            self.run_tick();
            self.take_failure()?;
        }
        if self.converged() {
            self.stats.liveness_ticks = self.liveness_bound;
            return Ok(self.liveness_bound);
        }
        let why = self.liveness_gap();
        self.fail(FailureKind::Liveness(why));
        self.take_failure().map(|_| 0)
    }

    fn converged(&self) -> bool {
        if self.clients.iter().any(|c| c.outstanding) {
            return false;
        }
        let Some(need) = self.checker.required_next() else { return false };
        (0..self.nodes.len()).all(|i| {
            self.liveness_exempt[i] || !self.cfg.core.members[i].roles.learner || {
                self.is_up(i) && self.apps[i].next >= need
            }
        })
    }

    /// Why the liveness phase has not converged, for the report.
    fn liveness_gap(&self) -> String {
        let pending: Vec<String> = self
            .clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.outstanding)
            .map(|(i, c)| format!("c{i}#{}", c.seq))
            .collect();
        let need = self.checker.required_next();
        let learners: Vec<String> = (0..self.nodes.len())
            .map(|i| match self.node(i) {
                Some(n) => format!(
                    "n{i}: applied={} leader={:?} hint={:?} commit={} voting={} low={} high={}",
                    self.apps[i].next,
                    n.leader_ballot().map(|b| b.to_string()),
                    n.leader_hint().map(|h| h.0),
                    n.commit_point(),
                    n.is_voting(),
                    n.storage().low(),
                    n.storage().high()
                ),
                None => format!("n{i}: down"),
            })
            .collect();
        format!(
            "not converged within {} ticks: outstanding requests [{}]; every learner must reach {:?}; chosen log has {} slots; {}",
            self.liveness_bound,
            pending.join(" "),
            need,
            self.checker.chosen_len(),
            learners.join("; ")
        )
    }

    fn run_tick(&mut self) {
        let tick = self.step / STEPS_PER_TICK;
        self.stats.ticks += 1;
        if self.phase == Phase::Faults {
            self.inject_faults(tick);
        }
        if self.net.expire_episodes(tick) > 0 {
            self.record(TraceEvent::Net(NetChange::Healed));
        }
        for i in 0..self.nodes.len() {
            if self.paused_until[i] != 0
                && (self.paused_until[i] <= tick || self.phase == Phase::Liveness)
            {
                self.paused_until[i] = 0;
                self.record(TraceEvent::Resume { node: i as NodeIx });
            }
        }
        // Tick every live node, in a random order.
        let mut order = core::mem::take(&mut self.order);
        self.rng.shuffle(&mut order);
        for &i in &order {
            if self.paused_until[i] != 0 {
                continue;
            }
            if let NodeSlot::Up(node) = &mut self.nodes[i] {
                // The application's checkpoint, made durable now and then, is what the
                // learner reports (the leader trims only where a majority have one).
                if tick.is_multiple_of(self.cfg.checkpoint_every_ticks)
                    && self.apps[i].next > self.checkpoints[i].next
                {
                    self.checkpoints[i] = self.apps[i];
                    self.max_checkpoint[i] = self.max_checkpoint[i].max(self.apps[i].next);
                }
                node.set_applied(Slot(self.checkpoints[i].next));
                node.tick();
                self.drain(i, true);
            }
        }
        self.order = order;
        self.client_timeouts();
        for _ in 0..STEPS_PER_TICK {
            while let Some(m) = self.net.pop_due(self.step) {
                self.deliver(m);
                if self.failure.is_some() {
                    return;
                }
            }
            self.client_actions();
            if self.failure.is_some() {
                return;
            }
            self.step += 1;
        }
    }

    fn inject_faults(&mut self, tick: u64) {
        let n = self.nodes.len();
        for i in 0..n {
            if let Some(t) = self.restart_at[i] {
                if t <= tick {
                    self.restart(i);
                }
            }
        }
        let f = self.cfg.faults.clone();
        if f.crash_ppm > 0 {
            for i in 0..n {
                let down = self.nodes.iter().filter(|s| !matches!(s, NodeSlot::Up(_))).count();
                if self.is_up(i) && down < f.max_down && self.rng.chance(f.crash_ppm) {
                    let wipe =
                        f.wipe_ppm > 0 && self.rng.chance(f.wipe_ppm) && self.wipe_allowed(i);
                    self.crash_with(i, wipe);
                    let ticks =
                        self.rng.range(u64::from(f.down_ticks_min), u64::from(f.down_ticks_max));
                    self.restart_at[i] = Some(tick + ticks.max(1));
                }
            }
        }
        if f.pause_ppm > 0 {
            for i in 0..n {
                if self.is_up(i) && self.paused_until[i] == 0 && self.rng.chance(f.pause_ppm) {
                    let until = tick + self.rng.range(1, u64::from(f.pause_ticks_max.max(1)));
                    self.paused_until[i] = until;
                    self.stats.pauses += 1;
                    self.record(TraceEvent::Pause { node: i as NodeIx, until_tick: until });
                }
            }
        }
        if f.partition_ppm > 0 && self.rng.chance(f.partition_ppm) {
            let ticks =
                self.rng.range(u64::from(f.partition_ticks_min), u64::from(f.partition_ticks_max));
            let change = self.net.start_episode(&mut self.rng, tick + ticks.max(1));
            self.stats.partitions += 1;
            self.record(TraceEvent::Net(change));
        }
    }

    fn deliver(&mut self, m: InFlight) {
        let until = self.paused_until[usize::from(m.to)];
        if until != 0 {
            let summary = MsgSummary::of(&m.msg);
            self.record(TraceEvent::Held { from: m.from, to: m.to, msg: summary });
            self.net.hold(m, until * STEPS_PER_TICK + self.rng.below(STEPS_PER_TICK));
            return;
        }
        let InFlight { from, to, msg, .. } = m;
        let (f, t) = (usize::from(from), usize::from(to));
        let summary = MsgSummary::of(&msg);
        if self.net.is_cut(f, t) {
            let cause = crate::trace::DropCause::Partition;
            self.record(TraceEvent::Drop { from, to, msg: summary, cause });
            return;
        }
        let NodeSlot::Up(node) = &mut self.nodes[t] else {
            let cause = crate::trace::DropCause::Down;
            self.record(TraceEvent::Drop { from, to, msg: summary, cause });
            return;
        };
        node.step(ReplicaId(from), msg);
        self.trace.record(self.step, TraceEvent::Deliver { from, to, msg: summary });
        self.maybe_flush(t);
        self.drain(t, false);
    }

    /// Applies the seed's flush mode after an event at node `i`.
    fn maybe_flush(&mut self, i: usize) {
        let flush = match self.cfg.flush {
            FlushMode::EveryEvent => true,
            FlushMode::TickOnly => false,
            FlushMode::Sometimes(ppm) => self.rng.chance(ppm),
        };
        if let NodeSlot::Up(node) = &mut self.nodes[i] {
            if flush && node.is_leader() {
                node.flush();
                self.trace.record(self.step, TraceEvent::Flush { node: i as NodeIx });
            }
        }
    }

    /// Hands out everything node `i` produced: messages to the network (its own back to
    /// itself), deliveries to the checker, events to the application; syncs when only
    /// messages held for unsynced writes are left (always if `force`, else as the seed's
    /// `SyncMode` says) and hands out what that released. Repeats until the node is quiet.
    fn drain(&mut self, i: usize, force_sync: bool) {
        let id = i as NodeIx;
        loop {
            let NodeSlot::Up(node) = &mut self.nodes[i] else { return };
            node.take_messages(&mut self.out);
            node.take_decided(&mut self.decided);
            node.take_events(&mut self.events);
            if !self.decided.is_empty() {
                let mut decided = core::mem::take(&mut self.decided);
                for d in decided.drain(..) {
                    self.on_decided(i, d);
                }
                self.decided = decided;
            }
            if !self.events.is_empty() {
                let mut events = core::mem::take(&mut self.events);
                for e in events.drain(..) {
                    self.on_event(i, e);
                }
                self.events = events;
            }
            if self.failure.is_some() {
                return;
            }
            if self.out.is_empty() {
                if let SyncMode::Async(ppm) = self.cfg.sync {
                    // Complete syncs in flight (all of them at the tick), release what they
                    // held, and start one for what was written since.
                    let n = if force_sync { usize::MAX } else { usize::from(self.rng.chance(ppm)) };
                    if !self.complete_syncs(i, n) {
                        return;
                    }
                    let NodeSlot::Up(node) = &mut self.nodes[i] else { return };
                    if node.needs_sync() || node.has_held_messages() {
                        // SimStorage's sync_start never fails; a failure surfaces at poll.
                        let _ = node.begin_sync();
                    }
                    node.take_messages(&mut self.out);
                    if self.out.is_empty() {
                        return;
                    }
                    continue;
                }
                let NodeSlot::Up(node) = &mut self.nodes[i] else { return };
                if !node.needs_sync() && !node.has_held_messages() {
                    return;
                }
                let now = force_sync
                    || match self.cfg.sync {
                        SyncMode::EveryInput => true,
                        SyncMode::Lazy(ppm) => self.rng.chance(ppm),
                        SyncMode::Async(_) => unreachable!("handled above"),
                    };
                if !now {
                    return;
                }
                if !self.sync(i) {
                    return;
                }
                continue;
            }
            let bound = self.trim_bound();
            let mut out = core::mem::take(&mut self.out);
            for o in out.drain(..) {
                self.stats.messages_sent += 1;
                if let Message::Heartbeat { trim, .. } = &o.msg {
                    if trim.0 > bound {
                        self.fail(FailureKind::Safety(Violation::TrimBeyondDurable {
                            node: id,
                            trim: trim.0,
                            durable: bound,
                        }));
                    }
                }
                if o.to.0 == id {
                    self.self_q.push_back(o.msg);
                } else {
                    self.net.send(id, o.to.0, o.msg, self.step, &mut self.rng, &mut self.trace);
                }
            }
            self.out = out;
            let NodeSlot::Up(node) = &mut self.nodes[i] else { return };
            while let Some(msg) = self.self_q.pop_front() {
                let summary = MsgSummary::of(&msg);
                self.trace
                    .record(self.step, TraceEvent::Deliver { from: id, to: id, msg: summary });
                node.step(ReplicaId(id), msg);
            }
        }
    }

    /// `SyncMode::Async`: completes up to `n` of node `i`'s syncs in flight, oldest first
    /// (each may fail, as the fault mix says: the node then stops and is crashed), and lets
    /// the node release what they held. Checks that its durable promise never went down.
    /// Returns whether it is still up.
    fn complete_syncs(&mut self, i: usize, n: usize) -> bool {
        let id = i as NodeIx;
        let fail_ppm = if self.phase == Phase::Faults { self.cfg.faults.sync_fail_ppm } else { 0 };
        let NodeSlot::Up(node) = &mut self.nodes[i] else { return false };
        let mut done = 0;
        while done < n && node.storage().syncs_in_flight() > 0 {
            if self.rng.chance(fail_ppm) {
                node.storage_mut().fail_next_sync();
            }
            node.storage_mut().complete_sync();
            done += 1;
        }
        if node.poll_sync().is_err() {
            self.stats.sync_failures += 1;
            self.record(TraceEvent::SyncFailed { node: id });
            self.crash(i);
            let ticks = self.rng.range(1, 20);
            self.restart_at[i] = Some(self.now_ticks() + ticks);
            return false;
        }
        let promised = node.storage().durable_promised();
        if promised < self.promised[i] {
            let (was, now) = (self.promised[i].to_string(), promised.to_string());
            self.fail(FailureKind::Safety(Violation::PromiseRegressed { node: id, was, now }));
            return false;
        }
        self.promised[i] = promised;
        true
    }

    /// Syncs node `i` (which may fail, as the fault mix says: the node then stops and is
    /// crashed). Checks that its durable promise never went down. Returns whether it is
    /// still up.
    fn sync(&mut self, i: usize) -> bool {
        let id = i as NodeIx;
        let fail_ppm = if self.phase == Phase::Faults { self.cfg.faults.sync_fail_ppm } else { 0 };
        let fail = self.rng.chance(fail_ppm);
        let NodeSlot::Up(node) = &mut self.nodes[i] else { return false };
        if fail {
            node.storage_mut().fail_next_sync();
        }
        if node.sync().is_err() {
            self.stats.sync_failures += 1;
            self.record(TraceEvent::SyncFailed { node: id });
            self.crash(i);
            let ticks = self.rng.range(1, 20);
            self.restart_at[i] = Some(self.now_ticks() + ticks);
            return false;
        }
        let promised = node.storage().durable_promised();
        if promised < self.promised[i] {
            let (was, now) = (self.promised[i].to_string(), promised.to_string());
            self.fail(FailureKind::Safety(Violation::PromiseRegressed { node: id, was, now }));
            return false;
        }
        self.promised[i] = promised;
        true
    }

    fn on_decided(&mut self, i: usize, d: Decided<Bytes>) {
        self.stats.deliveries += 1;
        let commands = paxos_core::payload::commands(&d.value).count() as u32;
        self.record(TraceEvent::Decide {
            node: i as NodeIx,
            slot: d.slot.0,
            commands,
            value_hash: fnv(&d.value) as u32,
        });
        let mut done = core::mem::take(&mut self.done);
        let r = self.checker.on_deliver(i as u16, &mut self.apps[i], d.slot.0, &d.value, &mut done);
        if let Err(v) = r {
            self.fail(FailureKind::Safety(v));
        }
        for fc in done.drain(..) {
            let c = &mut self.clients[fc.client as usize];
            if c.outstanding && c.seq == fc.seq {
                c.outstanding = false;
                c.pid = None;
                c.action_at =
                    self.step + self.rng.below((self.cfg.think_ticks_max + 1) * STEPS_PER_TICK);
                self.stats.requests_done += 1;
                self.trace.record(
                    self.step,
                    TraceEvent::ClientDone { client: fc.client, seq: fc.seq, slot: fc.slot },
                );
            }
        }
        self.done = done;
    }

    fn on_event(&mut self, i: usize, e: Event) {
        let node = i as NodeIx;
        let ev = match e {
            Event::BecameLeader { ballot, .. } => {
                self.stats.leaders_elected += 1;
                TraceEvent::BecameLeader { node, ballot }
            }
            Event::SteppedDown { ballot, dropped_batches } => {
                TraceEvent::SteppedDown { node, ballot, dropped_batches: dropped_batches as u32 }
            }
            Event::LeaderIs { ballot } => TraceEvent::LeaderIs { node, ballot },
            Event::SnapshotNeeded { low } => {
                self.stats.snapshots_needed += 1;
                self.snapshot_wanted[i] = Some(self.snapshot_wanted[i].unwrap_or(0).max(low.0));
                self.record(TraceEvent::SnapshotNeeded { node, low: low.0 });
                // Its own checkpoint, if it is further (a real application would reload it
                // from disk): it may cover `low`; if not, the learner gets on from there and
                // the node fetches the rest from a peer.
                let cp = self.checkpoints[i];
                if cp.next > self.apps[i].next {
                    self.install(i, i, cp);
                }
                return;
            }
            Event::SnapshotWanted { min } => {
                // The current state, or the checkpoint on disk if that is further.
                let state = if self.apps[i].next >= self.checkpoints[i].next {
                    self.apps[i]
                } else {
                    self.checkpoints[i]
                };
                if state.next < min.0 {
                    return;
                }
                let pad = self.rng.below(self.cfg.snapshot_pad_max as u64 + 1) as usize;
                let data = encode_app_state(state, pad);
                self.stats.snapshots_offered += 1;
                if let NodeSlot::Up(n) = &mut self.nodes[i] {
                    n.offer_snapshot(Slot(state.next), data);
                }
                TraceEvent::SnapshotOffered { node, upto: state.next, bytes: (16 + pad) as u32 }
            }
            Event::SnapshotReady { slot } => {
                let NodeSlot::Up(n) = &mut self.nodes[i] else { return };
                let Some((_, data)) = n.take_snapshot() else { return };
                let Some(state) = decode_app_state(&data) else {
                    self.fail(FailureKind::Safety(Violation::Snapshot {
                        node,
                        upto: slot.0,
                        why: "undecodable bytes".into(),
                    }));
                    return;
                };
                if state.next != slot.0 {
                    self.fail(FailureKind::Safety(Violation::Snapshot {
                        node,
                        upto: slot.0,
                        why: format!("carries state up to s{}", state.next),
                    }));
                    return;
                }
                if state.next <= self.apps[i].next {
                    return; // caught up meanwhile
                }
                self.install(i, usize::MAX, state);
                return;
            }
            Event::Rejoined { promised, low } => {
                self.stats.rejoins += 1;
                TraceEvent::Rejoined { node, promised, low: low.0 }
            }
        };
        self.record(ev);
    }

    /// Node `i`'s application takes `source` (a snapshot fetched from a peer when `j` is
    /// `usize::MAX`, or its own checkpoint when `j == i`) and tells the learner to continue
    /// after it.
    fn install(&mut self, i: usize, j: usize, source: AppState) {
        if let Err(v) = self.checker.check_snapshot(i as u16, source) {
            self.fail(FailureKind::Safety(v));
            return;
        }
        self.apps[i] = source;
        self.snapshot_wanted[i] = None;
        self.stats.snapshots_installed += 1;
        if i == j {
            self.stats.checkpoint_restores += 1;
        } else {
            self.stats.snapshots_from_peers += 1;
        }
        self.record(TraceEvent::SnapshotInstalled {
            node: i as NodeIx,
            source: if j == usize::MAX { NodeIx::MAX } else { j as NodeIx },
            upto: source.next,
        });
        if let NodeSlot::Up(node) = &mut self.nodes[i] {
            node.snapshot_installed(Slot(source.next));
        }
    }

    // ---------------------------------------------------------------- clients

    fn client_timeouts(&mut self) {
        let n = self.nodes.len() as u64;
        for c in 0..self.clients.len() {
            let cl = self.clients[c];
            if let (true, Some(pid)) = (cl.outstanding, cl.pid) {
                if self.step >= cl.deadline {
                    self.record(TraceEvent::ClientTimeout { client: c as u32, seq: cl.seq, pid });
                    let target = if self.rng.chance(500_000) {
                        cl.target
                    } else {
                        self.rng.below(n) as usize
                    };
                    let cl = &mut self.clients[c];
                    cl.pid = None;
                    cl.target = target;
                    cl.action_at = self.step;
                }
            }
        }
    }

    fn client_actions(&mut self) {
        for c in 0..self.clients.len() {
            if self.clients[c].action_at <= self.step {
                self.client_act(c);
                if self.failure.is_some() {
                    return;
                }
            }
        }
    }

    fn client_act(&mut self, c: usize) {
        let n = self.nodes.len() as u64;
        let cl = self.clients[c];
        if !cl.outstanding {
            if !self.issuing {
                self.clients[c].action_at = u64::MAX;
                return;
            }
            let seq = cl.seq + 1;
            self.clients[c].seq = seq;
            self.clients[c].outstanding = true;
            self.checker.issue(c as u32, seq);
        }
        let cl = self.clients[c];
        let target = cl.target;
        let pid = self.next_pid;
        self.next_pid += 1;
        let id = CommandId { client: c as u32, seq: cl.seq, pid };
        let pad = self.rng.range(0, self.cfg.command_pad_max as u64) as usize;
        if !self.is_up(target) || self.paused_until[target] != 0 {
            // Nobody answers (down or paused): try another node a little later.
            let mut cmd = core::mem::take(&mut self.cmd);
            self.checker.register(id, pad, false, &mut cmd);
            self.cmd = cmd;
            self.record(TraceEvent::Propose {
                client: c as u32,
                seq: cl.seq,
                pid,
                node: target as NodeIx,
                outcome: ProposeOutcome::NoAnswer,
            });
            let cl = &mut self.clients[c];
            cl.target = self.rng.below(n) as usize;
            cl.action_at = self.step + self.rng.range(1, 2 * STEPS_PER_TICK);
            return;
        }
        let NodeSlot::Up(node) = &mut self.nodes[target] else { unreachable!("checked above") };
        let mut cmd = core::mem::take(&mut self.cmd);
        command_bytes(id, pad, &mut cmd);
        let r = node.propose(&cmd);
        self.checker.register(id, pad, r.is_ok(), &mut cmd);
        self.cmd = cmd;
        let outcome = match r {
            Ok(()) => ProposeOutcome::Ok,
            Err(ProposeError::NotLeader { hint }) => ProposeOutcome::NotLeader(hint.map(|h| h.0)),
            Err(ProposeError::Busy) => ProposeOutcome::Busy,
            Err(ProposeError::TooLarge) => ProposeOutcome::TooLarge,
        };
        self.record(TraceEvent::Propose {
            client: c as u32,
            seq: cl.seq,
            pid,
            node: target as NodeIx,
            outcome,
        });
        let now = self.step;
        match outcome {
            ProposeOutcome::Ok => {
                let cl = &mut self.clients[c];
                cl.pid = Some(pid);
                cl.deadline = now + self.cfg.client_timeout_ticks * STEPS_PER_TICK;
                cl.action_at = u64::MAX;
                self.maybe_flush(target);
                self.drain(target, false);
            }
            ProposeOutcome::NotLeader(hint) => {
                let next = match hint {
                    Some(h) => usize::from(h),
                    None => self.rng.below(n) as usize,
                };
                let delay = if hint.is_some() {
                    self.rng.range(1, STEPS_PER_TICK)
                } else {
                    self.rng.range(STEPS_PER_TICK, 4 * STEPS_PER_TICK)
                };
                let cl = &mut self.clients[c];
                cl.target = next;
                cl.action_at = now + delay;
            }
            ProposeOutcome::Busy => {
                // Back off; half the time try another node. A leader cut off from its
                // acceptors stays Busy forever (its window never drains), so a client that
                // only ever retried it would never finish.
                let delay = self.rng.range(STEPS_PER_TICK, 3 * STEPS_PER_TICK);
                let other = self.rng.below(n) as usize;
                let retarget = self.rng.chance(500_000);
                let cl = &mut self.clients[c];
                if retarget {
                    cl.target = other;
                }
                cl.action_at = now + delay;
            }
            ProposeOutcome::TooLarge | ProposeOutcome::NoAnswer => {
                unreachable!("commands are sized to fit every drawn batch_max_bytes")
            }
        }
    }
}

/// A simulated application snapshot: its state (next slot, hash chain) and `pad` bytes.
fn encode_app_state(state: AppState, pad: usize) -> Bytes {
    let mut v = Vec::with_capacity(16 + pad);
    v.extend_from_slice(&state.next.to_le_bytes());
    v.extend_from_slice(&state.hash.to_le_bytes());
    v.extend((0..pad).map(|k| k as u8));
    Bytes::from(v)
}

fn decode_app_state(data: &[u8]) -> Option<AppState> {
    let next = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let hash = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
    let pad_ok = data[16..].iter().enumerate().all(|(k, b)| *b == k as u8);
    pad_ok.then_some(AppState { next, hash })
}

fn command_bytes(id: CommandId, pad: usize, out: &mut Vec<u8>) {
    out.clear();
    crate::command::encode(id, pad, out);
}
