//! What a run looks like: [`Options`] say what the user asked for (cluster size, fault
//! level, ...); [`SimConfig::draw`] turns a seed and the options into one concrete
//! configuration (swarm testing: each seed draws its own cluster, quorums, core knobs and
//! fault mix from what the options leave open).

use crate::rng::Rng;
use crate::trace::STEPS_PER_TICK;
use core::fmt;
use paxos_core::{Bugs, Config, Member, ReplicaId, Roles};

/// How hard the environment hits the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultLevel {
    /// A perfect network (short random delays only), no crashes.
    None,
    Light,
    Heavy,
    /// Each seed draws which faults are on and how often (the default).
    Swarm,
    /// Crashes and restarts only; the network is reliable.
    CrashOnly,
    /// Frequent leader changes: crashes, isolations and pair cuts while values are in flight.
    /// Used to show that the checkers catch the deliberately broken cores.
    Churn,
}

impl FaultLevel {
    pub fn parse(s: &str) -> Option<FaultLevel> {
        Some(match s {
            "none" => FaultLevel::None,
            "light" => FaultLevel::Light,
            "heavy" => FaultLevel::Heavy,
            "swarm" => FaultLevel::Swarm,
            "crash" | "crash-only" => FaultLevel::CrashOnly,
            "churn" => FaultLevel::Churn,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            FaultLevel::None => "none",
            FaultLevel::Light => "light",
            FaultLevel::Heavy => "heavy",
            FaultLevel::Swarm => "swarm",
            FaultLevel::CrashOnly => "crash-only",
            FaultLevel::Churn => "churn",
        }
    }
}

/// One seed's fault rates. Probabilities are parts per million (see [`crate::rng::PPM`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultMix {
    /// Per message.
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    /// Every message is delayed uniformly in [min, max] steps (reordering comes from this).
    pub delay_min_steps: u32,
    pub delay_max_steps: u32,
    /// A message takes the long tail with this probability: delay uniform up to this many steps.
    pub tail_ppm: u32,
    pub tail_max_steps: u32,
    /// Per live node per tick.
    pub crash_ppm: u32,
    pub down_ticks_min: u32,
    pub down_ticks_max: u32,
    /// At most this many nodes down at once.
    pub max_down: usize,
    /// Per live node per tick: the process freezes (no ticks, no message handling; messages
    /// to it wait) for a while, keeping all its state — a stale leader waking up.
    pub pause_ppm: u32,
    pub pause_ticks_max: u32,
    /// Per tick: start a partition episode (isolate, pair cut, one-way cut or split).
    pub partition_ppm: u32,
    pub partition_ticks_min: u32,
    pub partition_ticks_max: u32,
    /// Per crash: the disk is wiped too (the node restarts with no acceptor state and no
    /// application checkpoint, and must rejoin before it votes). Only where it is
    /// survivable: one member at a time, q2 >= 2, q1 below the acceptor count, and another
    /// learner's checkpoint covering the trimmed log.
    pub wipe_ppm: u32,
    /// Per sync: it fails (the node stops; what is durable is the synced state plus a
    /// prefix of the rest, as after a crash).
    pub sync_fail_ppm: u32,
}

impl FaultMix {
    /// Short random delays within about one tick, nothing else.
    pub fn none() -> FaultMix {
        FaultMix {
            loss_ppm: 0,
            dup_ppm: 0,
            delay_min_steps: 1,
            delay_max_steps: STEPS_PER_TICK as u32,
            tail_ppm: 0,
            tail_max_steps: 0,
            crash_ppm: 0,
            down_ticks_min: 0,
            down_ticks_max: 0,
            max_down: 0,
            pause_ppm: 0,
            pause_ticks_max: 0,
            partition_ppm: 0,
            partition_ticks_min: 0,
            partition_ticks_max: 0,
            wipe_ppm: 0,
            sync_fail_ppm: 0,
        }
    }

    pub fn light(n: usize) -> FaultMix {
        FaultMix {
            loss_ppm: 5_000,
            dup_ppm: 2_000,
            delay_min_steps: 1,
            delay_max_steps: 2 * STEPS_PER_TICK as u32,
            tail_ppm: 2_000,
            tail_max_steps: 10 * STEPS_PER_TICK as u32,
            crash_ppm: 1_000,
            down_ticks_min: 5,
            down_ticks_max: 40,
            max_down: (n - 1) / 2,
            pause_ppm: 1_000,
            pause_ticks_max: 20,
            partition_ppm: 5_000,
            partition_ticks_min: 10,
            partition_ticks_max: 60,
            wipe_ppm: 50_000,
            sync_fail_ppm: 200,
        }
    }

    pub fn heavy(n: usize) -> FaultMix {
        FaultMix {
            loss_ppm: 80_000,
            dup_ppm: 30_000,
            delay_min_steps: 1,
            delay_max_steps: 5 * STEPS_PER_TICK as u32,
            tail_ppm: 20_000,
            tail_max_steps: 30 * STEPS_PER_TICK as u32,
            crash_ppm: 6_000,
            down_ticks_min: 3,
            down_ticks_max: 60,
            max_down: n,
            pause_ppm: 5_000,
            pause_ticks_max: 60,
            partition_ppm: 20_000,
            partition_ticks_min: 5,
            partition_ticks_max: 80,
            wipe_ppm: 200_000,
            sync_fail_ppm: 2_000,
        }
    }

    pub fn crash_only(n: usize) -> FaultMix {
        FaultMix {
            crash_ppm: 8_000,
            down_ticks_min: 2,
            down_ticks_max: 50,
            max_down: n,
            wipe_ppm: 150_000,
            sync_fail_ppm: 1_000,
            ..FaultMix::none()
        }
    }

    pub fn churn(n: usize) -> FaultMix {
        FaultMix {
            loss_ppm: 20_000,
            dup_ppm: 20_000,
            delay_min_steps: 1,
            delay_max_steps: 4 * STEPS_PER_TICK as u32,
            tail_ppm: 30_000,
            tail_max_steps: 20 * STEPS_PER_TICK as u32,
            crash_ppm: 10_000,
            down_ticks_min: 2,
            down_ticks_max: 30,
            max_down: n,
            pause_ppm: 10_000,
            pause_ticks_max: 40,
            partition_ppm: 60_000,
            partition_ticks_min: 5,
            partition_ticks_max: 40,
            wipe_ppm: 0,
            sync_fail_ppm: 0,
        }
    }

    /// Swarm: each fault class is on with probability 1/2; its rate is drawn between a
    /// quarter of `light` and one and a half times `heavy`.
    pub fn swarm(n: usize, rng: &mut Rng) -> FaultMix {
        let (l, h) = (FaultMix::light(n), FaultMix::heavy(n));
        let mut m = FaultMix::none();
        let rate = |rng: &mut Rng, lo: u32, hi: u32| {
            rng.range(u64::from(lo / 4), u64::from(hi + hi / 2)) as u32
        };
        if rng.chance(500_000) {
            m.loss_ppm = rate(rng, l.loss_ppm, h.loss_ppm);
        }
        if rng.chance(500_000) {
            m.dup_ppm = rate(rng, l.dup_ppm, h.dup_ppm);
        }
        if rng.chance(500_000) {
            m.delay_max_steps = rng.range(1, u64::from(h.delay_max_steps) * 2) as u32;
        }
        if rng.chance(500_000) {
            m.tail_ppm = rate(rng, l.tail_ppm, h.tail_ppm);
            m.tail_max_steps =
                rng.range(u64::from(l.tail_max_steps), u64::from(h.tail_max_steps)) as u32;
        }
        if rng.chance(500_000) {
            m.crash_ppm = rate(rng, l.crash_ppm, h.crash_ppm);
            m.down_ticks_min = rng.range(1, 10) as u32;
            m.down_ticks_max = m.down_ticks_min + rng.range(0, 80) as u32;
            m.max_down = rng.range(1, n as u64) as usize;
        }
        if rng.chance(500_000) {
            m.pause_ppm = rate(rng, l.pause_ppm, h.pause_ppm);
            m.pause_ticks_max = rng.range(2, 80) as u32;
        }
        if rng.chance(500_000) {
            m.partition_ppm = rate(rng, l.partition_ppm, h.partition_ppm);
            m.partition_ticks_min = rng.range(1, 20) as u32;
            m.partition_ticks_max = m.partition_ticks_min + rng.range(0, 100) as u32;
        }
        m
    }

    /// The disk faults of a swarm seed, from a stream of their own (so that adding them left
    /// every earlier draw, hence every recorded regression seed's configuration, as it was).
    fn swarm_disk(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ 0xD15C_FA17_0000_0003);
        let (l, h) = (FaultMix::light(3), FaultMix::heavy(3));
        if self.crash_ppm > 0 && rng.chance(500_000) {
            self.wipe_ppm = rng.range(u64::from(l.wipe_ppm), u64::from(h.wipe_ppm)) as u32;
        }
        if rng.chance(250_000) {
            self.sync_fail_ppm =
                rng.range(u64::from(l.sync_fail_ppm), u64::from(h.sync_fail_ppm)) as u32;
        }
    }

    pub fn for_level(level: FaultLevel, n: usize, rng: &mut Rng) -> FaultMix {
        match level {
            FaultLevel::None => FaultMix::none(),
            FaultLevel::Light => FaultMix::light(n),
            FaultLevel::Heavy => FaultMix::heavy(n),
            FaultLevel::Swarm => FaultMix::swarm(n, rng),
            FaultLevel::CrashOnly => FaultMix::crash_only(n),
            FaultLevel::Churn => FaultMix::churn(n),
        }
    }
}

/// When the simulated driver syncs a node's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// After every input, before anything else happens (nothing is ever pending at a crash).
    EveryInput,
    /// After an input with this probability (ppm), and always after the node's tick: writes
    /// and the replies held for them wait meanwhile, and a crash loses what is pending (a
    /// group-committing driver).
    Lazy(u32),
    /// Asynchronously (`Node::begin_sync` after every input, never blocking): a started sync
    /// completes, oldest first, at a later input with this probability (ppm) and always at
    /// the node's tick; replies are released by `Node::poll_sync` (a driver whose storage
    /// syncs on a thread of its own). A crash keeps the synced writes plus a random prefix
    /// of the rest, in-flight syncs' writes included.
    Async(u32),
}

/// When the simulated application calls `Node::flush`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMode {
    /// After every propose and every delivered message (one command per batch, mostly).
    EveryEvent,
    /// Never: batches are sealed only by the core's own tick (`batch_delay_ticks`) or when full.
    TickOnly,
    /// After an event with this probability (ppm).
    Sometimes(u32),
}

/// What the user asks for; anything left `None` is drawn per seed.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster size; `None`: 3, 5 or 7.
    pub nodes: Option<u16>,
    /// Quorum sizes; `None`: majority half the time, else a random intersecting pair.
    pub q1: Option<usize>,
    pub q2: Option<usize>,
    pub faults: FaultLevel,
    /// Ticks of the fault phase; the liveness phase follows.
    pub fault_ticks: u64,
    /// Bound of the liveness phase: every request issued must be delivered at every live
    /// learner within this many ticks after the faults stop.
    pub liveness_ticks_max: u64,
    /// Number of clients; `None`: drawn in 1..=16.
    pub clients: Option<usize>,
    /// When neither quorum is given: a quarter of the seeds give each member a random
    /// non-empty subset of the roles (acceptor-only, learner-only, ... members) instead of
    /// all three; quorums are then drawn over the acceptors.
    pub mixed_roles: bool,
    /// `None`: drawn per seed (half the seeds sync lazily).
    pub sync: Option<SyncMode>,
    /// Force disk wipes on crashes at this rate (ppm of crashes), whatever the level says.
    pub wipe_ppm: Option<u32>,
    pub bugs: Bugs,
    /// Trace lines kept for a failure report.
    pub trace_ring_len: usize,
    /// Print every trace line as it happens.
    pub print_trace: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: None,
            q1: None,
            q2: None,
            faults: FaultLevel::Swarm,
            fault_ticks: 300,
            // A learner cut off for most of the fault phase can be ~9000 slots behind; it
            // catches up at about one learner buffer (4 x window, at least 64 slots) per round
            // trip, ~16 slots a tick at worst.
            liveness_ticks_max: 800,
            clients: None,
            mixed_roles: true,
            sync: None,
            wipe_ppm: None,
            bugs: Bugs::default(),
            trace_ring_len: 2000,
            print_trace: false,
        }
    }
}

impl Options {
    /// The binary's arguments that reproduce a run of `seed` with these options.
    pub fn repro_args(&self, seed: u64) -> String {
        let mut s =
            format!("--seed {seed} --faults {} --ticks {}", self.faults.name(), self.fault_ticks);
        if let Some(n) = self.nodes {
            s += &format!(" --nodes {n}");
        }
        if let Some(q) = self.q1 {
            s += &format!(" --q1 {q}");
        }
        if let Some(q) = self.q2 {
            s += &format!(" --q2 {q}");
        }
        if let Some(c) = self.clients {
            s += &format!(" --clients {c}");
        }
        if !self.mixed_roles {
            s += " --replicas-only";
        }
        if self.liveness_ticks_max != Options::default().liveness_ticks_max {
            s += &format!(" --liveness-ticks {}", self.liveness_ticks_max);
        }
        if self.bugs.acceptor_forgets_promise {
            s += " --bug forget-promise";
        }
        if self.bugs.leader_ignores_accepted {
            s += " --bug ignore-accepted";
        }
        if self.bugs.leader_adopts_lowest {
            s += " --bug adopt-lowest";
        }
        if self.bugs.accept_not_synced {
            s += " --bug accept-not-synced";
        }
        if self.bugs.trim_at_max_applied {
            s += " --bug trim-at-max";
        }
        if self.bugs.rejoin_votes_at_once {
            s += " --bug rejoin-votes-at-once";
        }
        if self.bugs.async_sync_releases_early {
            s += " --bug async-releases-early";
        }
        match self.sync {
            Some(SyncMode::EveryInput) => s += " --sync every",
            Some(SyncMode::Lazy(ppm)) => s += &format!(" --sync lazy:{ppm}"),
            Some(SyncMode::Async(ppm)) => s += &format!(" --sync async:{ppm}"),
            None => {}
        }
        if let Some(w) = self.wipe_ppm {
            s += &format!(" --wipe-ppm {w}");
        }
        s
    }
}

/// Everything one run uses, fully determined by the seed and the options.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub core: Config,
    pub faults: FaultMix,
    pub clients: usize,
    /// Extra bytes after a command's 16-byte header: uniform in [0, pad_max].
    pub command_pad_max: usize,
    /// A client retries (new proposal id) when its command is not delivered in this long.
    pub client_timeout_ticks: u64,
    /// Pause between a client's requests: uniform in [0, think_ticks_max].
    pub think_ticks_max: u64,
    pub flush: FlushMode,
    pub sync: SyncMode,
    /// The application makes its state durable (a checkpoint, reported to the node with
    /// `set_applied`) every this many ticks.
    pub checkpoint_every_ticks: u64,
    /// Snapshots served to peers carry up to this many bytes of padding (so that transfers
    /// take several chunks).
    pub snapshot_pad_max: usize,
    pub fault_ticks: u64,
    pub liveness_ticks_max: u64,
    pub bugs: Bugs,
    pub trace_ring_len: usize,
    pub print_trace: bool,
}

/// Members with random non-empty role sets, at least one of each role.
fn draw_roles(n: u16, rng: &mut Rng) -> Vec<Member> {
    loop {
        let members: Vec<Member> = (0..n)
            .map(|i| {
                let bits = rng.range(1, 7);
                let roles = Roles {
                    acceptor: bits & 1 != 0,
                    proposer: bits & 2 != 0,
                    learner: bits & 4 != 0,
                };
                Member { id: ReplicaId(i), roles }
            })
            .collect();
        let has = |f: fn(&Roles) -> bool| members.iter().any(|m| f(&m.roles));
        if has(|r| r.acceptor) && has(|r| r.proposer) && has(|r| r.learner) {
            return members;
        }
    }
}

/// Quorum pairs (q1, q2) with q1 + q2 > n, the smallest q2 for each q1 (Flexible Paxos).
fn draw_quorums(n: usize, opts: &Options, rng: &mut Rng) -> (usize, usize) {
    let majority = n / 2 + 1;
    match (opts.q1, opts.q2) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, (n + 1).saturating_sub(a).max(1)),
        (None, Some(b)) => ((n + 1).saturating_sub(b).max(1), b),
        (None, None) => {
            if rng.chance(500_000) {
                (majority, majority)
            } else {
                let q1 = rng.range(1, n as u64) as usize;
                (q1, n + 1 - q1)
            }
        }
    }
}

impl SimConfig {
    pub fn draw(seed: u64, opts: &Options) -> SimConfig {
        let mut rng = Rng::new(seed ^ 0x5EED_C0FF_EE00_0001);
        let n = opts.nodes.unwrap_or_else(|| rng.pick(&[3u16, 5, 7]));
        let mixed =
            opts.mixed_roles && opts.q1.is_none() && opts.q2.is_none() && rng.chance(250_000);
        let mut core =
            if mixed { Config::with_members(draw_roles(n, &mut rng)) } else { Config::replicas(n) };
        let (q1, q2) = draw_quorums(core.acceptor_count(), opts, &mut rng);
        core.phase1_quorum = q1;
        core.phase2_quorum = q2;
        core.window = rng.pick(&[1u32, 2, 3, 8, 16, 64]);
        core.batch_max_commands = rng.pick(&[1u32, 2, 8, 32]);
        core.max_message_bytes = rng.pick(&[400u32, 1400, 1400]);
        core.batch_max_bytes = rng
            .pick(&[300u32, 1024])
            .min(core.max_message_bytes - paxos_core::config::ACCEPT_OVERHEAD_BYTES);
        core.batch_delay_ticks = rng.range(0, 3) as u32;
        core.heartbeat_ticks = rng.range(1, 3) as u32;
        core.election_timeout_min_ticks = core.heartbeat_ticks * 3 + rng.range(0, 8) as u32;
        core.election_timeout_max_ticks = core.election_timeout_min_ticks + rng.range(3, 15) as u32;
        core.retransmit_ticks = rng.range(2, 6) as u32;
        core.max_pending_batches = rng.pick(&[1u32, 4, 256]);
        core.applied_report_ticks = rng.range(1, 12) as u32;
        // Drawn from its own stream so that adding it left every other draw (and so every
        // recorded regression seed) as it was.
        core.accepted_to_learners = Rng::new(seed ^ 0xACCE_97ED_0000_0002).chance(500_000);
        // Check-quorum and leader stickiness (the default) in three seeds of four, the
        // plain protocol in the rest; a stream of its own as well.
        let stable = Rng::new(seed ^ 0x57AB_1E1E_ADE4_0005).chance(750_000);
        core.check_quorum = stable;
        core.leader_stickiness = stable;
        let mut faults = FaultMix::for_level(opts.faults, usize::from(n), &mut rng);
        if opts.faults == FaultLevel::Swarm {
            faults.swarm_disk(seed);
        }
        if let Some(w) = opts.wipe_ppm {
            faults.wipe_ppm = w;
        }
        // Drawn from a stream of its own, like `accepted_to_learners`.
        let mut disk = Rng::new(seed ^ 0x5E1F_D15C_0000_0004);
        let sync = opts.sync.unwrap_or_else(|| {
            if disk.chance(500_000) {
                SyncMode::EveryInput
            } else {
                SyncMode::Lazy(disk.range(0, 700_000) as u32)
            }
        });
        let checkpoint_every_ticks = disk.pick(&[1u64, 1, 3, 10, 30]);
        let snapshot_pad_max = disk.pick(&[0usize, 100, 3000]);
        let flush = match rng.below(3) {
            0 => FlushMode::EveryEvent,
            1 => FlushMode::TickOnly,
            _ => FlushMode::Sometimes(rng.range(50_000, 500_000) as u32),
        };
        SimConfig {
            seed,
            clients: opts.clients.unwrap_or_else(|| rng.range(1, 16) as usize),
            command_pad_max: rng.pick(&[0usize, 16, 120]),
            client_timeout_ticks: u64::from(core.election_timeout_max_ticks) * 2 + rng.range(0, 20),
            think_ticks_max: rng.pick(&[0u64, 2, 10]),
            core,
            faults,
            flush,
            sync,
            checkpoint_every_ticks,
            snapshot_pad_max,
            fault_ticks: opts.fault_ticks,
            liveness_ticks_max: opts.liveness_ticks_max,
            bugs: opts.bugs,
            trace_ring_len: opts.trace_ring_len,
            print_trace: opts.print_trace,
        }
    }

    pub fn nodes(&self) -> usize {
        self.core.members.len()
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.core;
        writeln!(
            f,
            "seed={} n={} roles=[{}] q1={} q2={} clients={} pad_max={} flush={:?} sync={:?} checkpoint_every={} snapshot_pad_max={} fault_ticks={} liveness_ticks_max={} bugs={:?}",
            self.seed,
            self.nodes(),
            c.members
                .iter()
                .map(|m| {
                    let r = m.roles;
                    let mut s = String::new();
                    for (on, ch) in [(r.acceptor, 'A'), (r.proposer, 'P'), (r.learner, 'L')] {
                        if on {
                            s.push(ch);
                        }
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(","),
            c.phase1_quorum,
            c.phase2_quorum,
            self.clients,
            self.command_pad_max,
            self.flush,
            self.sync,
            self.checkpoint_every_ticks,
            self.snapshot_pad_max,
            self.fault_ticks,
            self.liveness_ticks_max,
            self.bugs
        )?;
        writeln!(
            f,
            "core: window={} batch_max_commands={} batch_max_bytes={} max_message_bytes={} batch_delay_ticks={} heartbeat_ticks={} election_timeout=[{}, {}) retransmit_ticks={} max_pending_batches={} applied_report_ticks={} accepted_to_learners={} check_quorum={} leader_stickiness={}",
            c.window,
            c.batch_max_commands,
            c.batch_max_bytes,
            c.max_message_bytes,
            c.batch_delay_ticks,
            c.heartbeat_ticks,
            c.election_timeout_min_ticks,
            c.election_timeout_max_ticks,
            c.retransmit_ticks,
            c.max_pending_batches,
            c.applied_report_ticks,
            c.accepted_to_learners,
            c.check_quorum,
            c.leader_stickiness
        )?;
        write!(f, "faults: {:?}", self.faults)
    }
}
