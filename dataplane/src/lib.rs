//! # dataplane: packets in, Paxos out
//!
//! - [`wire`]: zero-copy Ethernet / IPv4 / UDP / ARP views (smoltcp-style view + repr),
//!   frame-level receive parsing that classifies every drop by cause, and transmit helpers
//!   that write headers in front of a payload already in place.

pub mod wire;
pub mod counters;
pub mod io;
