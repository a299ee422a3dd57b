//! Raw FFI bindings to DPDK (tested with 22.11 LTS), generated at build time.
//!
//! This crate holds bindings only. Safe types (owned mbufs, port and queue
//! builders, `Result`s instead of return codes) live in the `dataplane` crate.
//!
//! # How the bindings are built
//!
//! `build.rs` does three things:
//!
//! 1. Finds DPDK with `pkg-config` (`libdpdk.pc`) and links its shared
//!    libraries. The shared EAL `dlopen()`s every poll-mode driver from its
//!    `pmds-<ABI>` directory at init, so vdevs such as `net_ring`, `net_memif`
//!    or `net_af_packet` need no extra link flags.
//! 2. Runs bindgen on `src/wrapper.h` with the full output of
//!    `pkg-config --cflags libdpdk` (which includes
//!    `-include rte_config.h -march=corei7`). An allowlist keeps the output to
//!    what the appliance uses: EAL and lcores, mempools and mbufs, ethdev,
//!    `rte_flow`, telemetry, and the constants they need.
//! 3. Most of DPDK's fast path is `static inline` (`rte_eth_rx_burst`,
//!    `rte_pktmbuf_alloc`, `rte_lcore_id`, ...). bindgen's `wrap_static_fns`
//!    writes an exported C wrapper `<name>__extern` for each one; build.rs
//!    compiles those with the same DPDK flags (without `-march` gcc refuses
//!    to inline DPDK's `always_inline` functions). The Rust declarations keep
//!    the DPDK names, so `rte_eth_rx_burst(..)` calls the wrapper. Each call
//!    costs one extra direct call compared with C.
//!
//! Macros and thread-locals that bindgen cannot bind are covered by small
//! `rust_*` helpers defined in `src/wrapper.h`:
//!
//! | helper | stands for |
//! |---|---|
//! | [`rust_rte_errno`] | the thread-local `rte_errno` |
//! | [`rust_lcore_id`] | `rte_lcore_id()` |
//! | [`rust_get_tsc_hz`], [`rust_rdtsc`], [`rust_pause`] | `rte_get_tsc_hz`, `rte_rdtsc`, `rte_pause` |
//! | [`rust_pktmbuf_mtod`], [`rust_pktmbuf_mtod_offset`] | the `rte_pktmbuf_mtod*` macros |
//! | [`rust_mbuf_data_len`], [`rust_mbuf_pkt_len`] | `rte_pktmbuf_data_len` / `pkt_len` |
//! | [`rust_mbuf_refcnt_update`], [`rust_mbuf_refcnt_read`] | the refcount inlines |
//! | [`rust_mbuf_ol_flags`], [`rust_mbuf_set_ol_flags`] | `m->ol_flags` |
//! | [`rust_mbuf_l2_len`], [`rust_mbuf_l3_len`], [`rust_mbuf_l4_len`], [`rust_mbuf_set_tx_offload`] | the TX offload bitfields |
//! | [`rust_eth_rss_ip`] | `RTE_ETH_RSS_IP \| RTE_ETH_RSS_UDP` |
//!
//! Offload and RSS flags (`RTE_ETH_TX_OFFLOAD_*`, `RTE_ETH_RX_OFFLOAD_*`,
//! `RTE_ETH_RSS_*`, `RTE_MBUF_F_*`) are `RTE_BIT64(n)` macros; bindgen's
//! `clang_macro_fallback` evaluates them, and they are all `u64` constants
//! under their C names. C enumerators keep their C names too
//! (`RTE_ETH_MQ_RX_RSS`, `CALL_MAIN`, `RTE_TEL_U64_VAL`).
//!
//! For build scripts of dependent crates that compile C against DPDK, the
//! `links = "dpdk"` metadata provides `DEP_DPDK_CFLAGS`, `DEP_DPDK_INCLUDE`
//! and `DEP_DPDK_VERSION`.
//!
//! # Building against another DPDK
//!
//! Point pkg-config at the other install's `libdpdk.pc`:
//!
//! ```text
//! PKG_CONFIG_PATH=/path/to/dpdk/lib/x86_64-linux-gnu/pkgconfig cargo build
//! ```
//!
//! and make its libraries findable at run time (`LD_LIBRARY_PATH` or
//! `ldconfig`). Anything missing (pkg-config, `libdpdk.pc`, libclang) stops
//! the build with one message naming the Debian packages:
//! `apt-get install dpdk-dev libdpdk-dev pkg-config libclang-dev clang`.
//! The bindings are generated for the DPDK found at build time and are never
//! checked in: struct layouts depend on that DPDK's build configuration.
//!
//! # What changes between DPDK LTS releases
//!
//! - **Names.** 21.11 introduced the `RTE_ETH_` / `RTE_MBUF_F_` prefixed names
//!   (`RTE_ETH_RSS_IP`, `RTE_ETH_TX_OFFLOAD_*`, `RTE_ETH_MQ_RX_RSS`,
//!   `RTE_MBUF_F_TX_*`); the old `ETH_*`, `DEV_TX_OFFLOAD_*` and `PKT_TX_*`
//!   spellings are gone in 22.11. build.rs therefore requires DPDK >= 21.11.
//! - **Telemetry.** 22.11 has `rte_tel_data_add_dict_u64` and
//!   `rte_tel_data_add_array_u64`; 23.03 added `..._uint` variants and
//!   deprecated the `_u64` ones. The allowlist accepts both spellings, so code
//!   above this crate must pick the one the installed DPDK has (check
//!   `rte_telemetry.h`; the array value-type enumerator follows the same
//!   rename).
//! - **`rte_mbuf` layout.** Fields move and bitfields are regrouped between
//!   releases and with build options (for example whether `buf_iova` is in
//!   the mbuf). Use the `rust_*` helpers or the generated accessors rather
//!   than raw offsets; the generated compile-time layout assertions catch a
//!   mismatch between these bindings and the headers they came from.
//! - **ABI version.** Each LTS has its own ABI major: the shared libraries are
//!   `librte_*.so.23` and the PMD plugins live in
//!   `/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0` for 22.11 (`24.0` for 23.11,
//!   `25.0` for 24.11). A binary runs only against the ABI it was built for;
//!   rebuild after upgrading DPDK.
//! - **Experimental APIs.** `rte_flow` and telemetry functions are partly
//!   `__rte_experimental`; their signatures may change in any release.
//!
//! # Safety
//!
//! Everything here is `unsafe` C. Nearly every call needs an initialised EAL
//! (`rte_eal_init`, once per process); `rte_version` is one of the few that
//! does not.

#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    rustdoc::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
