//! The DPDK transport: a safe layer over `dpdk-sys`, and the only place in the crate with
//! `unsafe` (each block says why it is sound).
//!
//! | module | what |
//! |---|---|
//! | [`affinity`] | [`CpuSet`]: the calling thread's CPU affinity, read, set and restored |
//! | [`error`] | [`DpdkError`], made in one place from FFI return codes |
//! | [`eal`] | [`Eal::init`] / cleanup, lcores |
//! | [`lcore`] | launching closures on worker lcores ([`Eal::launch`], [`Eal::scope`]), results and panics back |
//! | [`mempool`] | [`Mempool`] and the pool-sizing formula |
//! | [`mbuf`] | owned [`Mbuf`], zero-copy refcounted [`MbufSlice`] |
//! | [`buf`] | [`DpdkBuf`] (mbuf slice or heap copy below the copy threshold), the leader's [`DpdkValueBuilder`] |
//! | [`port`] | [`Port`] configuration from device capabilities, start/stop/close, stats, flow rules |
//! | [`relink`] | [`Relink`]: a memif client port restarted by its poller when its peer comes back |
//! | [`io`] | [`DpdkIo`], the `PacketIo` over one queue pair |
//! | [`dispatch`] | several endpoints per port: [`SharedQueue`] software dispatch, `rte_flow` steering |
//! | [`lanes`] | one queue and one worker lcore per lane (group): flow steering or the software [`Handoff`] |
//! | [`ring`] | `rte_ring`s of mbufs ([`MbufRing`]) and in-process multi-queue links ([`RingLink`]) |
//! | [`telemetry`] | `/paxos/stats` and `/paxos/lcores` telemetry commands |
//! | [`signal`] | SIGINT/SIGTERM -> [`QUIT`](signal::QUIT) |
//! | [`tsc`] | [`Tsc`] clock |
//!
//! # Shutdown order
//!
//! Signal -> every loop sees [`signal::quit_requested`] and returns -> the main lcore waits
//! for the workers, drops the transports (freeing unsent mbufs), stops and closes the ports
//! (releasing RX rings), drops the mempools (freed once every mbuf is back) and finally the
//! [`Eal`] (`rte_eal_cleanup`, refused while a pool is alive).

pub mod affinity;
pub mod buf;
pub mod dispatch;
pub mod eal;
pub mod error;
pub mod io;
pub mod lanes;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod relink;
pub mod ring;
pub mod signal;
pub mod telemetry;
pub mod tsc;

pub use affinity::CpuSet;
pub use buf::{ArenaSlice, CopyArena, DpdkBuf, DpdkValueBuilder, COPY_THRESHOLD_BYTES};
pub use dispatch::{open_endpoints, steer_by_udp_port, SharedQueue, Steering};
pub use eal::{Eal, LcoreId};
pub use error::DpdkError;
pub use io::{DpdkIo, DpdkIoConfig, BURST};
pub use lanes::{steer_lanes, Handoff, LaneStats, HANDOFF_RING_SIZE};
pub use lcore::{LaunchedLcore, LcoreJob, LcorePanic, LcoreScope};
pub use mbuf::{Mbuf, MbufSlice};
pub use mempool::{pinned_mbufs, Mempool, PoolSizing, Socket};
pub use port::{EnabledOffloads, OffloadWishes, Port, PortConfig, PortId, PortStats, QueueId};
pub use relink::Relink;
pub use ring::{MbufRing, RingConsumer, RingLink};
pub use tsc::Tsc;
