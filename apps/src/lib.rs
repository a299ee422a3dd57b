//! The appliance: the replicated key-value store, cluster configuration, and the node,
//! client and cluster binaries (their logic lives here so tests can reach it).

pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demux;
pub mod faults;
pub mod history;
pub mod kv;
pub mod kvapp;
pub mod loadgen;
pub mod node;
pub mod report;
pub mod routed;
pub mod storage;

#[cfg(feature = "dpdk")]
pub mod client_dpdk;
#[cfg(feature = "dpdk")]
pub mod dpdk_env;
#[cfg(feature = "dpdk")]
pub mod node_dpdk;
