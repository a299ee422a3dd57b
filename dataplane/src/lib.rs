//! # dataplane: packets in, Paxos out
//!
//! - [`wire`]: zero-copy Ethernet / IPv4 / UDP / ARP views (smoltcp-style view + repr),
//!   frame-level receive parsing that classifies every drop by cause, and transmit helpers
//!   that write headers in front of a payload already in place.
//! - [`io`]: the `PacketIo` transport seam; [`memio`] (in-memory network), [`udp`] (kernel
//!   sockets) implement it.
//! - [`driver`]: `GroupDriver`, the node loop (rx burst -> decode -> `Node` -> encode -> tx,
//!   decided commands -> [`app`] -> replies); [`idle`] policies, [`fault`] injection hook,
//!   [`peers`] table, [`local`] whole groups in one process, a small [`client`].

pub mod app;
pub mod client;
pub mod counters;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod driver;
pub mod durable;
pub mod fault;
pub mod idle;
pub mod io;
pub mod local;
pub mod memio;
pub mod peers;
pub mod udp;
pub mod wire;
