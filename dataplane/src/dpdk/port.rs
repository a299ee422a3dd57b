//! Ethernet ports: configuration checked against what the device advertises, start / stop /
//! close, MAC address, statistics, and `rte_flow` steering by UDP destination port.
//!
//! Offloads are *wishes*: [`Port::configure`] enables each only if `rte_eth_dev_info_get`
//! lists it, and [`Port::offloads`] reports what was enabled, so the transport picks software
//! or hardware checksums accordingly. The vdevs used in tests (net_ring, net_memif) advertise
//! none of the checksum offloads, so there everything is done in software.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;
use std::sync::Arc;

use dpdk_sys as sys;

use super::error::{check, DpdkError};
use super::mempool::Mempool;
use crate::wire::MacAddr;

/// An ethdev port id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

/// A queue index on a port (RX and TX queues are numbered separately).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub u16);

/// Offloads to enable if the device has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadWishes {
    /// RX: the NIC validates IPv4 and UDP checksums (software skips them when flagged good).
    pub rx_checksum: bool,
    /// TX: the NIC fills IPv4 and UDP checksums.
    pub tx_checksum: bool,
    /// TX: multi-segment mbufs (we build single-segment frames; off by default).
    pub tx_multi_seg: bool,
    /// TX: mbufs on a queue come from one pool with refcount 1, freed without checks.
    pub tx_fast_free: bool,
    /// Accept every destination MAC.
    pub promiscuous: bool,
}

impl Default for OffloadWishes {
    fn default() -> Self {
        OffloadWishes {
            rx_checksum: true,
            tx_checksum: true,
            tx_multi_seg: false,
            tx_fast_free: true,
            promiscuous: false,
        }
    }
}

/// Queue and descriptor counts plus offload wishes for [`Port::configure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    pub n_rx: u16,
    pub n_tx: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub wishes: OffloadWishes,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            n_rx: 1,
            n_tx: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            wishes: OffloadWishes::default(),
        }
    }
}

/// What [`Port::configure`] enabled (`RTE_ETH_*_OFFLOAD_*` bits and the RSS hash types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnabledOffloads {
    pub rx: u64,
    pub tx: u64,
    pub rss_hf: u64,
    pub promiscuous: bool,
}

impl EnabledOffloads {
    /// The NIC validates IPv4 and UDP checksums on receive.
    pub fn rx_checksum(&self) -> bool {
        let both = sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
        self.rx & both == both
    }

    /// The NIC fills IPv4 and UDP checksums on transmit.
    pub fn tx_checksum(&self) -> bool {
        let both = sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
        self.tx & both == both
    }
}

/// Port counters (`rte_eth_stats_get`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Dropped by the NIC: RX queue full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// RX refill failed: the pool was empty.
    pub rx_nombuf: u64,
}

/// A configured port. Dropping it stops and closes the device.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    n_rx: u16,
    n_tx: u16,
    rx_desc: u16,
    tx_desc: u16,
    enabled: EnabledOffloads,
    driver: String,
    started: bool,
    closed: bool,
    flows: usize,
    /// Its poller restarts it when its link goes down ([`super::relink`]).
    relink: bool,
    /// The memif server's socket file, watched while the link is down.
    relink_socket: Option<std::path::PathBuf>,
    /// RX queues refill from this pool: keep it alive as long as the queues exist.
    _pool: Arc<Mempool>,
}

impl Port {
    /// The port of the device called `name` (e.g. "net_ring0").
    pub fn by_name(name: &str) -> Result<PortId, DpdkError> {
        let c = CString::new(name)
            .map_err(|_| DpdkError::invalid("rte_eth_dev_get_port_by_name", "NUL in name"))?;
        let mut id = 0u16;
        // SAFETY: c is NUL-terminated; id is a valid out-pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        check("rte_eth_dev_get_port_by_name", ret)?;
        Ok(PortId(id))
    }

    /// The most RX / TX queues the device allows (`rte_eth_dev_info_get`). net_ring vdevs
    /// made with `--vdev=net_ringN` offer 16 (TX queue i loops back to RX queue i).
    pub fn max_queues(port: PortId) -> Result<(u16, u16), DpdkError> {
        let info = dev_info(port)?;
        Ok((info.max_rx_queues, info.max_tx_queues))
    }

    /// The driver name of `port` (before it is configured).
    pub fn driver_of(port: PortId) -> Result<String, DpdkError> {
        let info = dev_info(port)?;
        Ok(if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name is a static NUL-terminated string owned by the driver.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        })
    }

    /// Number of ports DPDK found.
    pub fn count_avail() -> u16 {
        // SAFETY: reads ethdev state; valid once the EAL is initialised (0 before).
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// Configures `port` with `cfg` and sets up its queues with RX buffers from `pool`; does
    /// not start it. Descriptor counts are adjusted to the device's limits; offloads are
    /// enabled only where advertised; RSS over IP/UDP is enabled when `n_rx > 1` (hash types
    /// masked by what the device supports).
    pub fn configure(
        port: PortId,
        cfg: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<Port, DpdkError> {
        let info = dev_info(port)?;
        if cfg.n_rx == 0
            || cfg.n_tx == 0
            || cfg.n_rx > info.max_rx_queues
            || cfg.n_tx > info.max_tx_queues
        {
            return Err(DpdkError::invalid(
                "rte_eth_dev_configure",
                format!(
                    "{} RX / {} TX queues requested, device allows 1..={} / 1..={}",
                    cfg.n_rx, cfg.n_tx, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let w = &cfg.wishes;
        let mut rx = 0u64;
        if w.rx_checksum {
            rx |= sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
        }
        let mut tx = 0u64;
        if w.tx_checksum {
            tx |= sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
        }
        if w.tx_multi_seg {
            tx |= sys::RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
        }
        if w.tx_fast_free {
            tx |= sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
        }
        let mut enabled = EnabledOffloads {
            rx: rx & info.rx_offload_capa,
            tx: tx & info.tx_offload_capa,
            rss_hf: 0,
            promiscuous: false,
        };
        // Checksum offload is all or nothing per direction: half of it would still need the
        // software path.
        if !enabled.rx_checksum() {
            enabled.rx &= !(sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
        }
        if !enabled.tx_checksum() {
            enabled.tx &= !(sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
        }

        let mut conf = sys::rte_eth_conf::default();
        conf.rxmode.offloads = enabled.rx;
        conf.txmode.offloads = enabled.tx;
        if cfg.n_rx > 1 {
            // SAFETY: pure helper returning a constant.
            let want = unsafe { sys::rust_eth_rss_ip() };
            enabled.rss_hf = want & info.flow_type_rss_offloads;
            if enabled.rss_hf != 0 {
                conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_key = ptr::null_mut(); // the driver's default key
                conf.rx_adv_conf.rss_conf.rss_hf = enabled.rss_hf;
            }
        }
        // SAFETY: conf is a fully initialised rte_eth_conf that outlives the call.
        check("rte_eth_dev_configure", unsafe {
            sys::rte_eth_dev_configure(port.0, cfg.n_rx, cfg.n_tx, &conf)
        })?;

        let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid out-pointers to u16s.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(port.0, &mut rx_desc, &mut tx_desc)
        })?;

        // SAFETY: plain query of a valid port.
        let socket = unsafe { sys::rte_eth_dev_socket_id(port.0) };
        let socket = if socket < 0 { sys::SOCKET_ID_ANY as u32 } else { socket as u32 };
        let mut rxconf = info.default_rxconf;
        rxconf.offloads = enabled.rx;
        for q in 0..cfg.n_rx {
            // SAFETY: rxconf outlives the call; the pool is alive and kept alive by the Port
            // (which closes the device, releasing the queue, before dropping its handle).
            check("rte_eth_rx_queue_setup", unsafe {
                sys::rte_eth_rx_queue_setup(port.0, q, rx_desc, socket, &rxconf, pool.as_ptr())
            })?;
        }
        let mut txconf = info.default_txconf;
        txconf.offloads = enabled.tx;
        for q in 0..cfg.n_tx {
            // SAFETY: txconf outlives the call.
            check("rte_eth_tx_queue_setup", unsafe {
                sys::rte_eth_tx_queue_setup(port.0, q, tx_desc, socket, &txconf)
            })?;
        }
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name is a static NUL-terminated string owned by the driver.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        let mut p = Port {
            id: port,
            n_rx: cfg.n_rx,
            n_tx: cfg.n_tx,
            rx_desc,
            tx_desc,
            enabled,
            driver,
            started: false,
            closed: false,
            flows: 0,
            relink: false,
            relink_socket: None,
            _pool: Arc::clone(pool),
        };
        if w.promiscuous {
            // SAFETY: plain call on a configured port.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(port.0) };
            p.enabled.promiscuous = ret == 0;
        }
        log::info!(
            "port {} ({}): {} rx x {} desc, {} tx x {} desc, offloads rx {:#x} tx {:#x} rss {:#x}",
            port.0,
            p.driver,
            p.n_rx,
            rx_desc,
            p.n_tx,
            tx_desc,
            p.enabled.rx,
            p.enabled.tx,
            p.enabled.rss_hf
        );
        Ok(p)
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The driver's name (e.g. "net_ring").
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// What was enabled.
    pub fn offloads(&self) -> EnabledOffloads {
        self.enabled
    }

    /// RX / TX queue counts.
    pub fn queues(&self) -> (u16, u16) {
        (self.n_rx, self.n_tx)
    }

    /// RX / TX descriptors per queue after adjustment to the device's limits.
    pub fn descriptors(&self) -> (u16, u16) {
        (self.rx_desc, self.tx_desc)
    }

    /// Has [`start`](Self::start) succeeded (and no stop followed)? With
    /// [`set_relink`](Self::set_relink), the poller may have stopped and started it since.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Let the thread that polls this port restart it when its link goes down (a `net_memif`
    /// client port: the PMD connects to its server only when the port starts; see
    /// [`super::relink`]). The [`SharedQueue`](super::SharedQueue)s made on the port after
    /// this call do it. Also makes [`stop`](Self::stop) stop the device even if its first
    /// start failed (the poller may have started it since).
    pub fn set_relink(&mut self, on: bool) {
        self.relink = on;
    }

    /// See [`set_relink`](Self::set_relink).
    pub fn relinks(&self) -> bool {
        self.relink
    }

    /// The server's socket file of a relinking memif client port: while the link is down,
    /// a start is tried as soon as a new file appears there (a restarted server), and
    /// rarely while the old one stays (see [`super::relink`]).
    pub fn set_relink_socket(&mut self, socket: Option<std::path::PathBuf>) {
        self.relink_socket = socket;
    }

    /// See [`set_relink_socket`](Self::set_relink_socket).
    pub fn relink_socket(&self) -> Option<&std::path::Path> {
        self.relink_socket.as_deref()
    }

    /// The device's name (e.g. "net_memif_r1").
    pub fn name(&self) -> String {
        name_of(self.id)
    }

    /// Starts the device.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port is configured with its queues set up.
        check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(self.id.0) })?;
        self.started = true;
        Ok(())
    }

    /// Stops the device (queues keep their setup; flows are flushed).
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if !self.started && !self.relink {
            return Ok(());
        }
        self.flush_flows();
        // SAFETY: the port is started; no lcore may use its queues now (the caller stopped
        // the loops first).
        check("rte_eth_dev_stop", unsafe { sys::rte_eth_dev_stop(self.id.0) })?;
        self.started = false;
        Ok(())
    }

    /// Stops (if needed) and closes the device, releasing its queues and their mbufs.
    pub fn close(mut self) -> Result<(), DpdkError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), DpdkError> {
        if self.closed {
            return Ok(());
        }
        self.stop()?;
        // SAFETY: the port is stopped; closing releases its queues.
        check("rte_eth_dev_close", unsafe { sys::rte_eth_dev_close(self.id.0) })?;
        self.closed = true;
        Ok(())
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<MacAddr, DpdkError> {
        mac_of(self.id)
    }

    /// Is the link up?
    pub fn link_up(&self) -> Result<bool, DpdkError> {
        link_up(self.id)
    }

    /// Device counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        check("rte_eth_stats_get", unsafe { sys::rte_eth_stats_get(self.id.0, &mut s) })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Packets received / sent per queue (`q_ipackets`, `q_opackets`), for the first
    /// `RTE_ETHDEV_QUEUE_STAT_CNTRS` queues, where the driver fills them (net_ring does).
    pub fn queue_stats(&self) -> Result<Vec<(u64, u64)>, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        check("rte_eth_stats_get", unsafe { sys::rte_eth_stats_get(self.id.0, &mut s) })?;
        let n = usize::from(self.n_rx.max(self.n_tx)).min(s.q_ipackets.len());
        Ok((0..n).map(|q| (s.q_ipackets[q], s.q_opackets[q])).collect())
    }

    /// Steers IPv4/UDP datagrams with destination port `udp_port` to RX queue `queue` with
    /// an `rte_flow` rule (validated first). Devices without flow support (net_ring,
    /// net_memif, af_packet) return an error: use software dispatch instead
    /// ([`SharedQueue`](super::SharedQueue)). Rules are flushed when the port stops.
    pub fn steer_udp_dst_port(&mut self, udp_port: u16, queue: QueueId) -> Result<(), DpdkError> {
        if queue.0 >= self.n_rx {
            return Err(DpdkError::invalid("rte_flow_create", format!("no RX queue {}", queue.0)));
        }
        let mut attr = sys::rte_flow_attr::default();
        attr.set_ingress(1);
        let mut udp_spec = sys::rte_flow_item_udp::default();
        udp_spec.hdr.dst_port = udp_port.to_be();
        let mut udp_mask = sys::rte_flow_item_udp::default();
        udp_mask.hdr.dst_port = u16::MAX;
        let item = |type_,
                    spec: *const sys::rte_flow_item_udp,
                    mask: *const sys::rte_flow_item_udp| {
            sys::rte_flow_item { type_, spec: spec.cast(), last: ptr::null(), mask: mask.cast() }
        };
        let pattern = [
            item(sys::RTE_FLOW_ITEM_TYPE_ETH, ptr::null(), ptr::null()),
            item(sys::RTE_FLOW_ITEM_TYPE_IPV4, ptr::null(), ptr::null()),
            item(sys::RTE_FLOW_ITEM_TYPE_UDP, &udp_spec, &udp_mask),
            item(sys::RTE_FLOW_ITEM_TYPE_END, ptr::null(), ptr::null()),
        ];
        let queue_conf = sys::rte_flow_action_queue { index: queue.0 };
        let actions = [
            sys::rte_flow_action {
                type_: sys::RTE_FLOW_ACTION_TYPE_QUEUE,
                conf: (&queue_conf as *const sys::rte_flow_action_queue).cast(),
            },
            sys::rte_flow_action { type_: sys::RTE_FLOW_ACTION_TYPE_END, conf: ptr::null() },
        ];
        let mut err = sys::rte_flow_error::default();
        // SAFETY: attr, pattern (END-terminated), actions (END-terminated) and the spec/mask/
        // conf structs they point to all outlive both calls; err is a valid out-pointer.
        unsafe {
            let ret = sys::rte_flow_validate(
                self.id.0,
                &attr,
                pattern.as_ptr(),
                actions.as_ptr(),
                &mut err,
            );
            if ret < 0 {
                return Err(flow_error("rte_flow_validate", -ret, &err));
            }
            let flow = sys::rte_flow_create(
                self.id.0,
                &attr,
                pattern.as_ptr(),
                actions.as_ptr(),
                &mut err,
            );
            if flow.is_null() {
                let code = sys::rust_rte_errno();
                return Err(flow_error("rte_flow_create", code, &err));
            }
        }
        self.flows += 1;
        Ok(())
    }

    pub(super) fn flush_flows(&mut self) {
        if self.flows == 0 {
            return;
        }
        let mut err = sys::rte_flow_error::default();
        // SAFETY: valid out-pointer; destroys the rules this port created.
        let ret = unsafe { sys::rte_flow_flush(self.id.0, &mut err) };
        if ret < 0 {
            log::warn!("{}", flow_error("rte_flow_flush", -ret, &err));
        }
        self.flows = 0;
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Err(e) = self.close_inner() {
            log::warn!("port {}: {e}", self.id.0);
        }
    }
}

/// `rte_eth_dev_info_get` for `port`.
pub fn dev_info(port: PortId) -> Result<sys::rte_eth_dev_info, DpdkError> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: valid out-pointer; fails cleanly for an invalid port id.
    check("rte_eth_dev_info_get", unsafe { sys::rte_eth_dev_info_get(port.0, &mut info) })?;
    Ok(info)
}

/// Is the link of `port` up (`rte_eth_link_get_nowait`)?
pub fn link_up(port: PortId) -> Result<bool, DpdkError> {
    let mut link = sys::rte_eth_link::default();
    // SAFETY: valid out-pointer; fails cleanly for an invalid port id.
    check("rte_eth_link_get_nowait", unsafe { sys::rte_eth_link_get_nowait(port.0, &mut link) })?;
    Ok(u32::from(link.link_status()) == sys::RTE_ETH_LINK_UP)
}

/// The device name of `port` ("port N" if DPDK does not know it).
pub fn name_of(port: PortId) -> String {
    let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has room for RTE_ETH_NAME_MAX_LEN bytes, the most the call writes
    // (NUL included).
    let ret = unsafe { sys::rte_eth_dev_get_name_by_port(port.0, buf.as_mut_ptr()) };
    if ret != 0 {
        return format!("port {}", port.0);
    }
    // SAFETY: on success buf holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// The MAC address of `port`.
pub fn mac_of(port: PortId) -> Result<MacAddr, DpdkError> {
    let mut mac = sys::rte_ether_addr::default();
    // SAFETY: valid out-pointer.
    check("rte_eth_macaddr_get", unsafe { sys::rte_eth_macaddr_get(port.0, &mut mac) })?;
    Ok(MacAddr(mac.addr_bytes))
}

fn flow_error(op: &'static str, code: i32, err: &sys::rte_flow_error) -> DpdkError {
    let mut e = DpdkError::new(op, if code == 0 { libc::ENOTSUP } else { code });
    if !err.message.is_null() {
        // SAFETY: the PMD set message to a NUL-terminated static string.
        let detail = unsafe { CStr::from_ptr(err.message as *const c_char) };
        e.msg = format!("{} ({})", e.msg, detail.to_string_lossy());
    }
    e
}
