//! The Environment Abstraction Layer: initialised once per process, cleaned up once, and the
//! lcores (EAL threads pinned to CPUs) it manages.
//!
//! ```text
//! prog [EAL options] -- [application options]
//! ```
//! [`Eal::init`] hands everything before `--` to `rte_eal_init` and returns the rest.
//!
//! `rte_eal_init` succeeds only once per process, even after `rte_eal_cleanup`; a second
//! [`Eal::init`] returns an `EALREADY` error without calling into DPDK. Tests therefore use one
//! EAL per test process.
//!
//! Cleanup unmaps all DPDK memory, so it is refused while any [`Mempool`](super::Mempool) is
//! still alive (or was leaked because mbufs were still out): an mbuf dropped after cleanup
//! would write to unmapped memory.

use std::ffi::CString;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicU8, Ordering};

use dpdk_sys as sys;

use super::error::{check, DpdkError};
use super::mempool;

const EAL_NEVER: u8 = 0;
const EAL_STARTED: u8 = 1;
const EAL_CLEANED: u8 = 2;

/// Whether this process has called `rte_eal_init` (it may only once).
static EAL_STATE: AtomicU8 = AtomicU8::new(EAL_NEVER);

/// An lcore id (`rte_lcore_id()`): an EAL thread, pinned to the CPUs `--lcores` gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LcoreId(pub u32);

/// The initialised EAL. Dropping it runs `rte_eal_cleanup` (see [`Eal::cleanup`]).
///
/// `!Send`: initialisation and cleanup belong to the main lcore's thread.
#[derive(Debug)]
pub struct Eal {
    /// The argv strings handed to `rte_eal_init`, kept alive until cleanup.
    _argv: Vec<CString>,
    cleaned: bool,
    _main_thread_only: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises the EAL with `args[..i]` where `args[i] == "--"` (all of `args` if there is
    /// no `--`), `args[0]` being the program name as in `std::env::args()`. Returns the EAL
    /// and the application's arguments (after `--`, without it).
    pub fn init(args: &[String]) -> Result<(Eal, Vec<String>), DpdkError> {
        let split = args.iter().position(|a| a == "--");
        let (eal_args, app_args) = match split {
            Some(i) => (&args[..i], args[i + 1..].to_vec()),
            None => (args, Vec::new()),
        };
        let mut argv_owned = Vec::with_capacity(eal_args.len() + 1);
        if eal_args.is_empty() {
            argv_owned.push(CString::new("dataplane").expect("no NUL"));
        }
        for a in eal_args {
            let c = CString::new(a.as_str())
                .map_err(|_| DpdkError::invalid("rte_eal_init", format!("NUL in {a:?}")))?;
            argv_owned.push(c);
        }
        if EAL_STATE
            .compare_exchange(EAL_NEVER, EAL_STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError {
                op: "rte_eal_init",
                code: libc::EALREADY,
                msg: "the EAL was already initialised in this process; DPDK allows it only \
                      once, even after rte_eal_cleanup"
                    .into(),
            });
        }
        // rte_eal_init may permute argv, so it gets its own pointer array.
        let mut argv: Vec<*mut c_char> =
            argv_owned.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        let argc = c_int::try_from(argv.len())
            .map_err(|_| DpdkError::invalid("rte_eal_init", "too many arguments"))?;
        // SAFETY: argv holds argc pointers to NUL-terminated strings that live in `argv_owned`,
        // which the returned Eal keeps until cleanup; EAL_STATE guarantees this is the only
        // call in this process.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init"));
        }
        let eal = Eal { _argv: argv_owned, cleaned: false, _main_thread_only: PhantomData };
        Ok((eal, app_args))
    }

    /// Has `rte_eal_init` been called in this process (successfully or not)?
    pub fn was_initialised() -> bool {
        EAL_STATE.load(Ordering::Acquire) != EAL_NEVER
    }

    /// Number of lcores the EAL runs (main + workers).
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: the EAL is initialised (we hold an Eal); reads EAL configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// The main lcore (the thread that called `init`).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: the EAL is initialised; reads EAL configuration.
        LcoreId(unsafe { sys::rte_get_main_lcore() })
    }

    /// The worker lcores, in id order.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        let mut i = u32::MAX; // rte_get_next_lcore(-1, ..) starts from the first lcore
        loop {
            // SAFETY: the EAL is initialised; rte_get_next_lcore only reads its configuration
            // and returns RTE_MAX_LCORE after the last enabled lcore.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(LcoreId(i));
        }
    }

    /// The lcore the calling thread runs as, if it is an EAL thread.
    pub fn current_lcore() -> Option<LcoreId> {
        // SAFETY: reads a thread-local; valid on any thread (LCORE_ID_ANY for non-EAL ones).
        let id = unsafe { sys::rust_lcore_id() };
        (id != sys::LCORE_ID_ANY).then_some(LcoreId(id))
    }

    /// NUMA socket of `lcore`.
    pub fn lcore_socket(&self, lcore: LcoreId) -> u32 {
        // SAFETY: the EAL is initialised; reads its configuration.
        unsafe { sys::rte_lcore_to_socket_id(lcore.0) }
    }

    /// Waits for every worker lcore, then runs `rte_eal_cleanup`. Refused (with the EAL left
    /// running) while a mempool is alive or leaked, since cleanup unmaps mbuf memory.
    pub fn cleanup(mut self) -> Result<(), DpdkError> {
        self.cleanup_inner()
    }

    fn cleanup_inner(&mut self) -> Result<(), DpdkError> {
        if self.cleaned {
            return Ok(());
        }
        let live = mempool::live_pools();
        if live > 0 {
            return Err(DpdkError {
                op: "rte_eal_cleanup",
                code: libc::EBUSY,
                msg: format!(
                    "{live} mempool(s) still alive or leaked with mbufs in use; drop every \
                     Mbuf, DpdkBuf, DpdkIo, Port and Mempool first"
                ),
            });
        }
        // SAFETY: the EAL is initialised; waits for workers still running a launched function.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        // SAFETY: no mempool is alive, so no Rust object points into DPDK memory any more;
        // called once (self.cleaned) on the thread that initialised the EAL (Eal is !Send).
        check("rte_eal_cleanup", unsafe { sys::rte_eal_cleanup() })?;
        self.cleaned = true;
        EAL_STATE.store(EAL_CLEANED, Ordering::Release);
        Ok(())
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup_inner() {
            log::warn!("EAL not cleaned up: {e}");
        }
    }
}
