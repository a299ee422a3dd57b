/*
 * The one header bindgen reads for dpdk-sys.
 *
 * It pulls in the DPDK headers the appliance uses and adds a few
 * `static inline` helpers (all named `rust_*`) for things bindgen cannot
 * bind by itself:
 *   - macros that behave like functions (rte_pktmbuf_mtod),
 *   - thread-local variables (rte_errno),
 *   - bitfields inside anonymous unions (the mbuf TX offload lengths).
 *
 * bindgen's `wrap_static_fns` turns every allowlisted `static inline`
 * function (DPDK's own and the helpers below) into an exported C wrapper
 * named `<name>__extern`; build.rs compiles those wrappers with the full
 * `pkg-config --cflags libdpdk` flags.
 *
 * Must be compiled with those flags too: they contain
 * `-include rte_config.h -march=corei7`.
 */
#ifndef DPDK_SYS_WRAPPER_H
#define DPDK_SYS_WRAPPER_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_flow.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_telemetry.h>
#include <rte_udp.h>
#include <rte_version.h>

/* ---- errors and lcores ------------------------------------------------ */

/* `rte_errno` is a per-thread variable behind a macro. */
static inline int rust_rte_errno(void)
{
	return rte_errno;
}

/* `rte_lcore_id()` reads a per-thread variable; same value, stable name. */
static inline unsigned int rust_lcore_id(void)
{
	return rte_lcore_id();
}

/* ---- time -------------------------------------------------------------- */

static inline uint64_t rust_get_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

static inline uint64_t rust_rdtsc(void)
{
	return rte_rdtsc();
}

static inline void rust_pause(void)
{
	rte_pause();
}

/* ---- mbuf data access -------------------------------------------------- */

/* rte_pktmbuf_mtod(m, void *): start of the packet data in the first segment. */
static inline void *rust_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

/* rte_pktmbuf_mtod_offset(m, void *, off). */
static inline void *rust_pktmbuf_mtod_offset(struct rte_mbuf *m, uint16_t off)
{
	return rte_pktmbuf_mtod_offset(m, void *, off);
}

/* Bytes in this segment. */
static inline uint16_t rust_mbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

/* Bytes in the whole chain (first segment only holds it). */
static inline uint32_t rust_mbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

/* ---- mbuf reference counts --------------------------------------------- */

/* Adds `v` (may be negative) and returns the new count. */
static inline uint16_t rust_mbuf_refcnt_update(struct rte_mbuf *m, int16_t v)
{
	return rte_mbuf_refcnt_update(m, v);
}

static inline uint16_t rust_mbuf_refcnt_read(const struct rte_mbuf *m)
{
	return rte_mbuf_refcnt_read(m);
}

/* ---- mbuf offload metadata --------------------------------------------- */

static inline uint64_t rust_mbuf_ol_flags(const struct rte_mbuf *m)
{
	return m->ol_flags;
}

static inline void rust_mbuf_set_ol_flags(struct rte_mbuf *m, uint64_t ol_flags)
{
	m->ol_flags = ol_flags;
}

static inline uint16_t rust_mbuf_l2_len(const struct rte_mbuf *m)
{
	return (uint16_t)m->l2_len;
}

static inline uint16_t rust_mbuf_l3_len(const struct rte_mbuf *m)
{
	return (uint16_t)m->l3_len;
}

static inline uint16_t rust_mbuf_l4_len(const struct rte_mbuf *m)
{
	return (uint16_t)m->l4_len;
}

/*
 * Prepares an mbuf for TX checksum offload: sets the header lengths
 * (bitfields: l2 < 128, l3 < 512, l4 < 256) and replaces the TX flag bits
 * of ol_flags (RTE_MBUF_F_TX_OFFLOAD_MASK) with `tx_flags`; RX flag bits
 * are kept.
 */
static inline void rust_mbuf_set_tx_offload(struct rte_mbuf *m, uint16_t l2_len,
					    uint16_t l3_len, uint16_t l4_len,
					    uint64_t tx_flags)
{
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->l4_len = l4_len;
	m->ol_flags = (m->ol_flags & ~RTE_MBUF_F_TX_OFFLOAD_MASK) | tx_flags;
}

/* ---- constants --------------------------------------------------------- */

/* RSS hash types for spreading UDP/IP traffic over RX queues. */
static inline uint64_t rust_eth_rss_ip(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP;
}

#endif /* DPDK_SYS_WRAPPER_H */
