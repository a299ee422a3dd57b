//! Build script for `dpdk-sys`.
//!
//! 1. Probe `libdpdk` with pkg-config (shared linking; `PKG_CONFIG_PATH` picks
//!    another DPDK install).
//! 2. Run bindgen on `src/wrapper.h` with the full `pkg-config --cflags libdpdk`
//!    (they contain `-include rte_config.h -march=corei7`), restricted to an
//!    allowlist of what the appliance uses.
//! 3. `wrap_static_fns` makes bindgen write C wrappers for DPDK's `static
//!    inline` functions (rte_eth_rx_burst, rte_pktmbuf_alloc, ...) and for our
//!    `rust_*` helpers; compile them with the same flags into a static library.
//!
//! Any missing prerequisite ends the build with one message naming the
//! packages to install.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use bindgen::callbacks::{IntKind, ParseCallbacks};

/// Oldest DPDK whose API names match the allowlist (the `RTE_ETH_` prefixes).
const DPDK_MIN_VERSION: &str = "21.11";

const INSTALL_HINT: &str = "\
dpdk-sys needs DPDK (>= 21.11, tested with 22.11 LTS), pkg-config and libclang.
On Debian/Ubuntu install them with:

    apt-get install dpdk-dev libdpdk-dev pkg-config libclang-dev clang

For a DPDK built from source elsewhere, point pkg-config at its libdpdk.pc:

    PKG_CONFIG_PATH=/path/to/dpdk/lib/x86_64-linux-gnu/pkgconfig cargo build

If libclang is installed in an unusual place, set LIBCLANG_PATH to its directory.";

/// Ends the build with one readable message. Cargo shows a failed build
/// script's stderr; exiting instead of panicking keeps backtraces (with
/// `RUST_BACKTRACE` set) out of the way.
fn fail(what: &str, detail: &dyn std::fmt::Display) -> ! {
    eprintln!("\ndpdk-sys: {what}\n  {detail}\n\n{INSTALL_HINT}\n");
    std::process::exit(1);
}

/// Functions the bindings expose. Plain names, each matched exactly.
const FUNCTIONS: &[&str] = &[
    // EAL and lcores
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_eal_mp_remote_launch",
    "rte_eal_remote_launch",
    "rte_eal_wait_lcore",
    "rte_eal_mp_wait_lcore",
    "rte_exit",
    "rte_lcore_count",
    "rte_lcore_id",
    "rte_lcore_is_enabled",
    "rte_get_next_lcore",
    "rte_get_main_lcore",
    "rte_lcore_to_socket_id",
    "rte_socket_id",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_strerror",
    "rte_version",
    // time
    "rte_get_tsc_hz",
    "rte_rdtsc",
    "rte_delay_us_block",
    "rte_pause",
    // memory
    "rte_malloc",
    "rte_zmalloc",
    "rte_zmalloc_socket",
    "rte_free",
    // mempool and mbuf
    "rte_pktmbuf_pool_create",
    "rte_mempool_free",
    "rte_mempool_lookup",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_mempool_put_bulk",
    "rte_pktmbuf_alloc",
    "rte_pktmbuf_alloc_bulk",
    "rte_pktmbuf_free",
    "rte_pktmbuf_free_bulk",
    "rte_pktmbuf_append",
    "rte_pktmbuf_prepend",
    "rte_pktmbuf_adj",
    "rte_pktmbuf_trim",
    "rte_pktmbuf_reset",
    "rte_pktmbuf_clone",
    "rte_pktmbuf_headroom",
    "rte_pktmbuf_tailroom",
    "rte_mbuf_refcnt_update",
    "rte_mbuf_refcnt_read",
    // ethdev
    "rte_eth_dev_count_avail",
    "rte_eth_dev_is_valid_port",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_info_get",
    "rte_eth_dev_configure",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_rx_burst",
    "rte_eth_tx_burst",
    "rte_eth_macaddr_get",
    "rte_eth_promiscuous_enable",
    "rte_eth_promiscuous_disable",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_eth_link_get_nowait",
    // rings: lock-free hand-off between lcores, and ports made of rings (in-process links)
    "rte_ring_create",
    "rte_ring_free",
    "rte_ring_count",
    "rte_ring_enqueue_burst",
    "rte_ring_dequeue_burst",
    "rte_eth_from_rings",
    // rte_flow
    "rte_flow_validate",
    "rte_flow_create",
    "rte_flow_destroy",
    "rte_flow_flush",
    // telemetry
    "rte_telemetry_register_cmd",
    "rte_tel_data_start_dict",
    "rte_tel_data_start_array",
    "rte_tel_data_add_dict_string",
    "rte_tel_data_add_dict_int",
    "rte_tel_data_add_array_string",
    "rte_tel_data_add_array_int",
];

/// Regexes for function families whose names differ between DPDK releases or
/// that we take whole.
const FUNCTION_PATTERNS: &[&str] = &[
    // 22.11 has only `_u64`; 23.03 added `_uint` and deprecated `_u64`.
    "rte_tel_data_add_(dict|array)_(u64|uint)",
    // Our helpers in wrapper.h.
    "rust_.*",
];

/// Types used directly by the appliance (anything they reference is pulled
/// in automatically).
const TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_mempool",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_eth_stats",
    "rte_eth_link",
    "rte_ether_addr",
    "rte_ether_hdr",
    "rte_ipv4_hdr",
    "rte_udp_hdr",
    "rte_flow_.*",
    "rte_tel_data",
    "rte_tel_value_type",
    "rte_eth_rx_mq_mode",
    "rte_eth_tx_mq_mode",
    "rte_ring",
    "rte_rmt_call_main_t",
    "lcore_function_t",
    "telemetry_cb",
];

/// Constants (C macros). Offload and RSS flags are `RTE_BIT64(n)` macros that
/// cexpr cannot evaluate; `clang_macro_fallback` lets clang evaluate them.
const VARS: &[&str] = &[
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_MAX_QUEUES_PER_PORT",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MBUF_DEFAULT_DATAROOM",
    "RTE_MBUF_DEFAULT_BUF_SIZE",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_CACHE_LINE_SIZE",
    "SOCKET_ID_ANY",
    "LCORE_ID_ANY",
    "RTE_VER_.*",
    "RTE_ETHER_.*",
    "RTE_IPV4_.*",
    "RTE_ETH_TX_OFFLOAD_.*",
    "RTE_ETH_RX_OFFLOAD_.*",
    "RTE_ETH_RSS_.*",
    "RTE_ETH_LINK_.*",
    "RTE_ETH_SPEED_NUM_.*",
    "RTE_MBUF_F_.*",
    "RTE_TEL_MAX_.*",
    "RING_F_.*",
    "RTE_RING_NAMESIZE",
    "RTE_ETHDEV_QUEUE_STAT_CNTRS",
];

/// Makes every 64-bit flag macro a `u64`, even when its value fits in 32
/// bits, so flags of one family have one type.
#[derive(Debug)]
struct FlagTypes;

impl ParseCallbacks for FlagTypes {
    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        const U64_PREFIXES: &[&str] =
            &["RTE_ETH_TX_OFFLOAD_", "RTE_ETH_RX_OFFLOAD_", "RTE_ETH_RSS_", "RTE_MBUF_F_"];
        U64_PREFIXES.iter().any(|p| name.starts_with(p)).then_some(IntKind::U64)
    }
}

/// Generate code for the package's `rust-version` (from the workspace), not
/// for the newest Rust bindgen knows.
fn rust_target() -> bindgen::RustTarget {
    let msrv = env::var("CARGO_PKG_RUST_VERSION").unwrap_or_default();
    let mut parts = msrv.split('.').skip(1).map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten().unwrap_or(0)) {
        (Some(minor), patch) => bindgen::RustTarget::stable(minor, patch)
            .unwrap_or_else(|e| fail("unsupported rust-version for bindgen", &e)),
        (None, _) => bindgen::RustTarget::default(),
    }
}

/// `pkg-config --cflags libdpdk`, split into arguments. The pkg-config crate
/// drops `-include` and `-march`, so ask the tool directly.
fn dpdk_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let output = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run `{pkg_config}`"), &e));
    if !output.status.success() {
        fail(
            "`pkg-config --cflags libdpdk` failed",
            &String::from_utf8_lossy(&output.stderr).trim(),
        );
    }
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect()
}

fn generate_bindings(header: &Path, cflags: &[String], out_dir: &Path) -> PathBuf {
    // Load libclang ourselves first so "not installed" gets its own message;
    // bindgen then reuses the loaded library.
    if let Err(e) = clang_sys::load() {
        fail("libclang could not be loaded", &e);
    }

    let wrappers_stem = out_dir.join("static_wrappers");
    let mut builder = bindgen::Builder::default()
        .rust_target(rust_target())
        .header(header.to_string_lossy())
        .clang_args(cflags)
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(out_dir)
        .parse_callbacks(Box::new(FlagTypes))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers_stem)
        .derive_default(true)
        .prepend_enum_name(false)
        .merge_extern_blocks(true)
        .allowlist_recursively(true)
        // bindgen derives Debug here although the packed GTP PSC header it
        // holds (bitfields + flexible array) gets none.
        .no_debug("rte_flow_item_gtp_psc");

    for f in FUNCTIONS {
        builder = builder.allowlist_function(format!("^{f}$"));
    }
    for f in FUNCTION_PATTERNS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }

    let bindings =
        builder.generate().unwrap_or_else(|e| fail("bindgen could not process src/wrapper.h", &e));
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .unwrap_or_else(|e| fail("cannot write bindings.rs", &e));

    wrappers_stem.with_extension("c")
}

/// The generated file includes wrapper.h by absolute path; the DPDK headers
/// come from the `-I` flags in `cflags`.
fn compile_wrappers(wrappers_c: &Path, cflags: &[String]) {
    let mut build = cc::Build::new();
    // Optimise even in debug builds: these sit on the per-packet path.
    build.file(wrappers_c).opt_level(3).warnings(false);
    for flag in cflags {
        build.flag(flag);
    }
    build.compile("dpdk_sys_static_wrappers");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    // Linking: shared libraries; the shared EAL dlopen()s the PMD plugins
    // from its pmds-<ABI> directory at init, so nothing else is needed.
    let dpdk = pkg_config::Config::new()
        .atleast_version(DPDK_MIN_VERSION)
        .statik(false)
        .probe("libdpdk")
        .unwrap_or_else(|e| fail("pkg-config could not provide libdpdk", &e));

    // `rte_eth_from_rings` (ports made of rte_rings, for in-process links) lives in the
    // net_ring PMD, which libdpdk.pc does not list. With `--as-needed` (rustc's default) only
    // binaries that call it depend on it.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");

    let cflags = dpdk_cflags();

    // For build scripts of crates that depend on us and compile C against
    // DPDK: DEP_DPDK_VERSION, DEP_DPDK_CFLAGS, DEP_DPDK_INCLUDE.
    println!("cargo:version={}", dpdk.version);
    println!("cargo:cflags={}", cflags.join(" "));
    if let Ok(paths) = env::join_paths(&dpdk.include_paths) {
        println!("cargo:include={}", paths.to_string_lossy());
    }

    let header = manifest_dir.join("src").join("wrapper.h");
    let wrappers_c = generate_bindings(&header, &cflags, &out_dir);
    compile_wrappers(&wrappers_c, &cflags);
}
