//! Whole groups in one process, for tests, benches and single-machine runs: build one
//! [`GroupDriver`] per member of a configuration over transports the caller made (or that
//! these helpers make), with the peer table taken from the transports' own addresses.

use crate::app::Application;
use crate::counters::Counters;
use crate::driver::{DriverConfig, DriverError, GroupDriver};
use crate::fault::{NoFaults, PacketFilter};
use crate::io::PacketIo;
use crate::memio::{MemIo, MemNetwork};
use crate::peers::PeerTable;
use crate::udp::UdpIo;
use paxos_core::{Config, GroupId, MemStorage, ReplicaId};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// Settings shared by every driver of a local group.
#[derive(Clone, Debug)]
pub struct LocalGroup {
    pub group: GroupId,
    pub paxos: Config,
    pub tick_ns: u64,
    /// Each node's seed is `seed` (the core mixes in the node id).
    pub seed: u64,
}

impl LocalGroup {
    /// `n` co-located replicas with the default configuration and a 1 ms tick.
    pub fn replicas(n: u16) -> LocalGroup {
        LocalGroup { group: GroupId(0), paxos: Config::replicas(n), tick_ns: 1_000_000, seed: 1 }
    }

    /// One driver per member (in `paxos.members` order) over `transports` (one per member,
    /// same order, each with the counters it reports into).
    pub fn build<Io: PacketIo, A: Application>(
        &self,
        transports: Vec<(Io, Arc<Counters>)>,
        make_app: impl FnMut(ReplicaId) -> A,
    ) -> Result<Vec<GroupDriver<Io, A>>, DriverError> {
        self.build_with(transports, make_app, |_| NoFaults)
    }

    /// [`build`](Self::build) with a fault filter per node.
    pub fn build_with<Io: PacketIo, A: Application, F: PacketFilter>(
        &self,
        transports: Vec<(Io, Arc<Counters>)>,
        mut make_app: impl FnMut(ReplicaId) -> A,
        mut make_filter: impl FnMut(ReplicaId) -> F,
    ) -> Result<Vec<GroupDriver<Io, A, F>>, DriverError> {
        let ids: Vec<ReplicaId> = self.paxos.members.iter().map(|m| m.id).collect();
        assert_eq!(ids.len(), transports.len(), "local group: one transport per member");
        let peers =
            PeerTable::new(ids.iter().zip(&transports).map(|(id, (io, _))| (*id, io.local())))?;
        ids.into_iter()
            .zip(transports)
            .map(|(id, (io, counters))| {
                let mut cfg = DriverConfig::new(self.group, id, self.paxos.clone(), peers.clone());
                cfg.tick_ns = self.tick_ns;
                cfg.seed = self.seed;
                let (app, filter) = (make_app(id), make_filter(id));
                GroupDriver::with_parts(cfg, io, app, counters, filter, MemStorage::default())
            })
            .collect()
    }

    /// The group over an in-memory network (endpoints on 127.0.0.1, consecutive ports).
    pub fn on_mem<A: Application>(
        &self,
        net: &MemNetwork,
        make_app: impl FnMut(ReplicaId) -> A,
    ) -> Result<Vec<GroupDriver<MemIo, A>>, DriverError> {
        let transports = self
            .paxos
            .members
            .iter()
            .map(|_| {
                let c = Arc::new(Counters::default());
                (net.attach_next(c.clone()), c)
            })
            .collect();
        self.build(transports, make_app)
    }

    /// The group over kernel UDP sockets on 127.0.0.1, ephemeral ports.
    pub fn on_udp<A: Application>(
        &self,
        make_app: impl FnMut(ReplicaId) -> A,
    ) -> Result<Vec<GroupDriver<UdpIo, A>>, DriverError> {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let mut transports = Vec::with_capacity(self.paxos.members.len());
        for _ in &self.paxos.members {
            let c = Arc::new(Counters::default());
            transports.push((UdpIo::bind(any, c.clone())?, c));
        }
        self.build(transports, make_app)
    }
}
