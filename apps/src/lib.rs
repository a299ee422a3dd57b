//! The appliance: the replicated key-value store, cluster configuration, and the node,
//! client and cluster binaries.

pub mod config;
pub mod history;
pub mod kv;
pub mod report;
