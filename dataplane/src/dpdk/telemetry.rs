//! DPDK telemetry commands for the Paxos counters:
//!
//! * `/paxos/stats` - every counter summed over all registered lcores, or with a parameter
//!   (`/paxos/stats,1`) those of registry entry 1. Keys are the counter names, grouped ones
//!   as `frame_drop/<cause>` and `wire_drop/<cause>` (see [`Counters::visit`]).
//! * `/paxos/lcores` - the lcore id of each registry entry, in entry order.
//!
//! Read them with `echo /paxos/stats | dpdk-telemetry.py -f <file-prefix>`.
//!
//! The registry is a process-global `OnceLock<Vec<..>>` set once, before the poll loops
//! start; the callbacks (on DPDK's telemetry thread) only read it and the counters' atomics,
//! so the packet path takes no lock.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::{Arc, OnceLock};

use dpdk_sys as sys;

use super::eal::{Eal, LcoreId};
use super::error::{check, DpdkError};
use crate::counters::Counters;

/// One registry entry: an lcore (or group) and its counters.
#[derive(Clone, Debug)]
pub struct TelemetryEntry {
    pub lcore: LcoreId,
    pub counters: Arc<Counters>,
}

static REGISTRY: OnceLock<Vec<TelemetryEntry>> = OnceLock::new();

/// Sets the registry (once per process). Returns the entries back if it was already set.
pub fn set_registry(entries: Vec<TelemetryEntry>) -> Result<(), Vec<TelemetryEntry>> {
    REGISTRY.set(entries)
}

/// The registry, if set.
pub fn registry() -> Option<&'static [TelemetryEntry]> {
    REGISTRY.get().map(Vec::as_slice)
}

/// Registers `/paxos/stats` and `/paxos/lcores` with DPDK telemetry.
pub fn register_commands(_eal: &Eal) -> Result<(), DpdkError> {
    let cmds: [(&'static [u8], sys::telemetry_cb, &'static [u8]); 2] = [
        (
            b"/paxos/stats\0",
            Some(stats_cb),
            b"Paxos counters, summed over lcores or of entry <n>. Parameters: [int n]\0",
        ),
        (b"/paxos/lcores\0", Some(lcores_cb), b"Lcore id of each Paxos counters entry\0"),
    ];
    for (cmd, cb, help) in cmds {
        // SAFETY: cmd and help are static NUL-terminated strings (DPDK keeps the pointers);
        // the callbacks are extern "C" fns valid for the process lifetime.
        let ret = unsafe {
            sys::rte_telemetry_register_cmd(cmd.as_ptr().cast(), cb, help.as_ptr().cast())
        };
        check("rte_telemetry_register_cmd", ret)?;
    }
    Ok(())
}

/// Sums (or picks) the counters as (key, value) pairs in `Counters::visit` order.
fn collect(params: Option<&str>) -> Result<Vec<(String, u64)>, ()> {
    let entries = registry().unwrap_or(&[]);
    let selected: Vec<&TelemetryEntry> = match params.map(str::trim).filter(|p| !p.is_empty()) {
        None => entries.iter().collect(),
        Some(p) => {
            let i: usize = p.parse().map_err(|_| ())?;
            vec![entries.get(i).ok_or(())?]
        }
    };
    let mut out: Vec<(String, u64)> = Vec::new();
    for (n, e) in selected.iter().enumerate() {
        let mut k = 0;
        e.counters.visit(|group, name, value| {
            if n == 0 {
                let key =
                    if group.is_empty() { name.to_owned() } else { format!("{group}/{name}") };
                out.push((key, value));
            } else {
                out[k].1 += value;
            }
            k += 1;
        });
    }
    Ok(out)
}

unsafe extern "C" fn stats_cb(
    _cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    let params = if params.is_null() {
        None
    } else {
        // SAFETY: DPDK passes a NUL-terminated parameter string (or NULL).
        Some(unsafe { CStr::from_ptr(params) }.to_string_lossy().into_owned())
    };
    let Ok(pairs) = std::panic::catch_unwind(|| collect(params.as_deref())).unwrap_or(Err(()))
    else {
        return -libc::EINVAL;
    };
    // SAFETY: d is the output object DPDK handed us for this call.
    unsafe { sys::rte_tel_data_start_dict(d) };
    for (key, value) in pairs.iter().take(sys::RTE_TEL_MAX_DICT_ENTRIES as usize) {
        let Ok(key) = CString::new(key.as_str()) else { continue };
        // SAFETY: d was started as a dict; key is NUL-terminated and copied by DPDK.
        unsafe { sys::rte_tel_data_add_dict_u64(d, key.as_ptr(), *value) };
    }
    0
}

unsafe extern "C" fn lcores_cb(
    _cmd: *const c_char,
    _params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: d is the output object DPDK handed us for this call.
    unsafe { sys::rte_tel_data_start_array(d, sys::RTE_TEL_INT_VAL) };
    for e in registry().unwrap_or(&[]).iter().take(sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize) {
        // SAFETY: d was started as an int array.
        unsafe { sys::rte_tel_data_add_array_int(d, e.lcore.0 as c_int) };
    }
    0
}
