//! End-to-end check that the bindings and the compiled C wrappers work.
//!
//! `rte_eal_init` succeeds once per process, so everything that needs the EAL
//! lives in the single test `eal_ring_loopback`. The other tests need no EAL.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::size_of;
use std::ptr;

use dpdk_sys::*;

/// A `*const c_char` to a static NUL-terminated string (C-string literals
/// need a newer Rust than the workspace's rust-version).
macro_rules! cstr {
    ($s:literal) => {
        concat!($s, "\0").as_ptr().cast::<c_char>()
    };
}

#[test]
fn version_string_names_dpdk_and_release() {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string
    // and needs no EAL.
    let version = unsafe { CStr::from_ptr(rte_version()) }.to_str().unwrap();
    assert!(version.starts_with("DPDK"), "{version}");
    let release = format!("{}.{:02}", RTE_VER_YEAR, RTE_VER_MONTH);
    assert!(version.contains(&release), "{version} vs {release}");
}

#[test]
fn flag_constants_have_dpdk_values() {
    assert_eq!(RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, 1 << 1);
    assert_eq!(RTE_ETH_TX_OFFLOAD_UDP_CKSUM, 1 << 2);
    assert_eq!(RTE_ETH_RX_OFFLOAD_IPV4_CKSUM, 1 << 1);
    assert_eq!(RTE_ETH_RX_OFFLOAD_UDP_CKSUM, 1 << 2);
    assert_eq!(RTE_MBUF_F_TX_UDP_CKSUM, 3 << 52);
    assert_eq!(RTE_MBUF_F_TX_IP_CKSUM, 1 << 54);
    assert_eq!(RTE_MBUF_F_TX_IPV4, 1 << 55);
    assert_eq!(RTE_MBUF_F_TX_OFFLOAD_MASK & RTE_MBUF_F_TX_IPV4, RTE_MBUF_F_TX_IPV4);
    assert_ne!(RTE_ETH_RSS_IP, 0);
    // SAFETY: pure function returning a constant; needs no EAL.
    assert_eq!(unsafe { rust_eth_rss_ip() }, RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
    assert_eq!(RTE_MBUF_DEFAULT_BUF_SIZE, RTE_MBUF_DEFAULT_DATAROOM + RTE_PKTMBUF_HEADROOM);
}

#[test]
fn wire_header_structs_have_wire_sizes() {
    assert_eq!(size_of::<rte_ether_addr>(), 6);
    assert_eq!(size_of::<rte_ether_hdr>(), 14);
    assert_eq!(size_of::<rte_ipv4_hdr>(), 20);
    assert_eq!(size_of::<rte_udp_hdr>(), 8);
    assert_eq!(size_of::<rte_mbuf>(), 2 * RTE_CACHE_LINE_SIZE as usize);
}

/// Returns `rte_errno` as an `io::Error` for messages.
fn errno() -> std::io::Error {
    // SAFETY: reads this thread's rte_errno.
    std::io::Error::from_raw_os_error(unsafe { rust_rte_errno() })
}

unsafe extern "C" fn return_lcore_plus_40(_arg: *mut c_void) -> c_int {
    rust_lcore_id() as c_int + 40
}

unsafe extern "C" fn telemetry_smoke(
    _cmd: *const c_char,
    _params: *const c_char,
    info: *mut rte_tel_data,
) -> c_int {
    rte_tel_data_start_dict(info);
    rte_tel_data_add_dict_u64(info, cstr!("answer"), 42)
}

#[test]
fn eal_ring_loopback() {
    // --- EAL: two lcores on CPU 0, no hugepages, no PCI, one ring vdev ---
    let prefix = format!("--file-prefix=dpdk-sys-smoke-{}", std::process::id());
    let args = [
        "dpdk-sys-smoke",
        "--lcores=0@0,1@0",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        // No telemetry socket: registration still works, and the runtime
        // directory is empty at the end so it can be removed.
        "--no-telemetry",
        "--vdev=net_ring0",
        "--log-level=*:error",
        &prefix,
    ];
    let args: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    // rte_eal_init may permute argv, so hand it its own pointer array.
    let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();

    // SAFETY: argv points at NUL-terminated strings that outlive the call;
    // this is the only rte_eal_init in this test process.
    unsafe {
        let consumed = rte_eal_init(argv.len() as c_int, argv.as_mut_ptr());
        assert!(consumed >= 0, "rte_eal_init: {}", errno());

        // --- lcores, time, errno ---
        assert_eq!(rte_lcore_count(), 2);
        assert_eq!(rte_get_main_lcore(), 0);
        assert_eq!(rust_lcore_id(), 0);
        assert_eq!(rte_lcore_id(), 0);
        assert_eq!(rte_get_next_lcore(0, 1, 0), 1);
        assert_eq!(rte_eal_remote_launch(Some(return_lcore_plus_40), ptr::null_mut(), 1), 0);
        assert_eq!(rte_eal_wait_lcore(1), 41);

        let hz = rust_get_tsc_hz();
        assert!(hz > 0);
        assert_eq!(hz, rte_get_tsc_hz());
        let t0 = rust_rdtsc();
        rust_pause();
        rte_delay_us_block(10);
        assert!(rte_rdtsc() > t0);

        assert!(rte_mempool_lookup(cstr!("no-such-pool")).is_null());
        assert_eq!(errno().kind(), std::io::ErrorKind::NotFound);
        assert!(!rte_strerror(rust_rte_errno()).is_null());

        assert_eq!(
            rte_telemetry_register_cmd(
                cstr!("/dpdk_sys/smoke"),
                Some(telemetry_smoke),
                cstr!("dpdk-sys smoke test")
            ),
            0
        );

        // --- mempool ---
        let socket = rte_socket_id() as c_int;
        let pool = rte_pktmbuf_pool_create(
            cstr!("smoke_pool"),
            1023,
            32,
            0,
            RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            socket,
        );
        assert!(!pool.is_null(), "rte_pktmbuf_pool_create: {}", errno());
        assert_eq!(rte_mempool_avail_count(pool), 1023);

        // --- port 0 = net_ring0 ---
        assert_eq!(rte_eth_dev_count_avail(), 1);
        let port: u16 = 0;
        assert_eq!(rte_eth_dev_is_valid_port(port), 1);
        let mut name = [0 as c_char; RTE_ETH_NAME_MAX_LEN as usize];
        assert_eq!(rte_eth_dev_get_name_by_port(port, name.as_mut_ptr()), 0);
        assert_eq!(CStr::from_ptr(name.as_ptr()).to_str().unwrap(), "net_ring0");
        let mut found = u16::MAX;
        assert_eq!(rte_eth_dev_get_port_by_name(name.as_ptr(), &mut found), 0);
        assert_eq!(found, port);

        let mut info = rte_eth_dev_info::default();
        assert_eq!(rte_eth_dev_info_get(port, &mut info), 0);
        assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);

        let conf = rte_eth_conf::default();
        assert_eq!(rte_eth_dev_configure(port, 1, 1, &conf), 0);
        let (mut nb_rxd, mut nb_txd) = (128u16, 128u16);
        assert_eq!(rte_eth_dev_adjust_nb_rx_tx_desc(port, &mut nb_rxd, &mut nb_txd), 0);
        let port_socket = rte_eth_dev_socket_id(port) as u32;
        assert_eq!(rte_eth_rx_queue_setup(port, 0, nb_rxd, port_socket, ptr::null(), pool), 0);
        assert_eq!(rte_eth_tx_queue_setup(port, 0, nb_txd, port_socket, ptr::null()), 0);
        assert_eq!(rte_eth_dev_start(port), 0);
        assert_eq!(rte_eth_promiscuous_enable(port), 0);

        let mut mac = rte_ether_addr::default();
        assert_eq!(rte_eth_macaddr_get(port, &mut mac), 0);
        let mut link = rte_eth_link::default();
        assert_eq!(rte_eth_link_get_nowait(port, &mut link), 0);
        assert_eq!(u32::from(link.link_status()), RTE_ETH_LINK_UP);

        // rte_flow: the ring PMD has no flow support, so validation must fail
        // cleanly with a message (this checks the flow types cross FFI).
        let mut attr = rte_flow_attr::default();
        attr.set_ingress(1);
        let pattern = [rte_flow_item { type_: RTE_FLOW_ITEM_TYPE_END, ..Default::default() }];
        let actions = [rte_flow_action { type_: RTE_FLOW_ACTION_TYPE_END, ..Default::default() }];
        let mut flow_err = rte_flow_error::default();
        let rc = rte_flow_validate(port, &attr, pattern.as_ptr(), actions.as_ptr(), &mut flow_err);
        assert!(rc < 0, "net_ring unexpectedly accepted an rte_flow rule");

        // --- one mbuf through TX and back through RX ---
        let m = rte_pktmbuf_alloc(pool);
        assert!(!m.is_null());
        let payload: Vec<u8> = (0..64u8).map(|i| i ^ 0x5a).collect();
        let tail = rte_pktmbuf_append(m, payload.len() as u16).cast::<u8>();
        assert!(!tail.is_null());
        let data = rust_pktmbuf_mtod(m).cast::<u8>();
        assert_eq!(data, tail, "append on an empty mbuf starts at mtod");
        ptr::copy_nonoverlapping(payload.as_ptr(), data, payload.len());
        assert_eq!(rust_pktmbuf_mtod_offset(m, 14).cast::<u8>(), data.add(14));
        assert_eq!(rust_mbuf_data_len(m), 64);
        assert_eq!(rust_mbuf_pkt_len(m), 64);

        assert_eq!(rust_mbuf_refcnt_read(m), 1);
        assert_eq!(rust_mbuf_refcnt_update(m, 1), 2);
        assert_eq!(rte_mbuf_refcnt_read(m), 2);
        assert_eq!(rust_mbuf_refcnt_update(m, -1), 1);

        let tx_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
        rust_mbuf_set_tx_offload(m, 14, 20, 8, tx_flags);
        assert_eq!((rust_mbuf_l2_len(m), rust_mbuf_l3_len(m), rust_mbuf_l4_len(m)), (14, 20, 8));
        assert_eq!(rust_mbuf_ol_flags(m), tx_flags);

        let mut tx = [m];
        assert_eq!(rte_eth_tx_burst(port, 0, tx.as_mut_ptr(), 1), 1);
        let mut rx = [ptr::null_mut::<rte_mbuf>(); 4];
        let n = rte_eth_rx_burst(port, 0, rx.as_mut_ptr(), rx.len() as u16);
        assert_eq!(n, 1);
        let r = rx[0];
        assert_eq!(rust_mbuf_pkt_len(r), 64);
        let got = std::slice::from_raw_parts(rust_pktmbuf_mtod(r).cast::<u8>(), 64);
        assert_eq!(got, &payload[..]);
        assert_eq!(rust_mbuf_ol_flags(r) & RTE_MBUF_F_TX_OFFLOAD_MASK, tx_flags);
        rust_mbuf_set_ol_flags(r, 0);
        assert_eq!(rust_mbuf_ol_flags(r), 0);

        let mut stats = rte_eth_stats::default();
        assert_eq!(rte_eth_stats_get(port, &mut stats), 0);
        assert_eq!((stats.opackets, stats.ipackets), (1, 1));

        rte_pktmbuf_free(r);
        assert_eq!(rte_mempool_in_use_count(pool), 0);

        // --- teardown ---
        assert_eq!(rte_eth_dev_stop(port), 0);
        assert_eq!(rte_eth_dev_close(port), 0);
        rte_mempool_free(pool);
        assert_eq!(rte_eal_cleanup(), 0);
    }
    remove_empty_runtime_dir(&prefix["--file-prefix=".len()..]);
}

/// The EAL leaves its (here empty) runtime directory behind even with
/// `--no-shconf`.
/// `remove_dir` only removes empty directories, so this cannot delete
/// anything another process still uses.
fn remove_empty_runtime_dir(file_prefix: &str) {
    let mut bases = vec![std::path::PathBuf::from("/var/run")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(xdg.into());
    }
    bases.push("/tmp".into());
    for base in bases {
        let _ = std::fs::remove_dir(base.join("dpdk").join(file_prefix));
    }
}
