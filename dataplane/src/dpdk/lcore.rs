//! Running Rust closures on worker lcores (`rte_eal_remote_launch`), safely.
//!
//! * [`Eal::worker_lcores`] enumerates the workers (`RTE_LCORE_FOREACH_WORKER`).
//! * [`Eal::launch`] runs a `'static` closure on one worker; [`Eal::scope`] runs closures that
//!   borrow from the caller (ports, the cluster configuration, counters) and waits for every
//!   one of them before it returns, like `std::thread::scope`.
//! * [`LcoreJob::join`] returns the closure's result; a panic is caught on the lcore (it may
//!   not unwind into C) and returned as [`LcorePanic`] with its message.
//!
//! The closure is boxed and its pointer passed as the `void *` argument; a trampoline on the
//! lcore takes the box back exactly once. Anything `!Send` (a `DpdkIo`, a `GroupDriver`) is
//! built *inside* the closure, on the lcore that polls it, so nothing `!Send` crosses threads.
//!
//! Waiting: `rte_eal_wait_lcore` spins (`rte_pause`) on the lcore's state, which would steal a
//! shared vCPU from the lcore it waits for. [`LcoreJob::join`] therefore first sleeps until the
//! trampoline has published the result (an atomic flag), then calls `rte_eal_wait_lcore`,
//! which returns almost at once.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dpdk_sys as sys;

use super::eal::{Eal, LcoreId};
use super::error::{check, DpdkError};

/// How long a waiting main lcore sleeps between looks at a job's completion flag.
const JOIN_POLL: Duration = Duration::from_micros(200);

/// A closure on a worker lcore panicked; the payload's message, if it was a string.
#[derive(Debug)]
pub struct LcorePanic {
    pub lcore: LcoreId,
    pub message: String,
    payload: Box<dyn Any + Send>,
}

impl LcorePanic {
    /// The panic payload (for `std::panic::resume_unwind`).
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }
}

impl fmt::Display for LcorePanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the closure on lcore {} panicked: {}", self.lcore.0, self.message)
    }
}

impl std::error::Error for LcorePanic {}

impl From<LcorePanic> for DpdkError {
    fn from(p: LcorePanic) -> DpdkError {
        DpdkError { op: "rte_eal_remote_launch", code: libc::ECANCELED, msg: p.to_string() }
    }
}

/// Where the trampoline leaves the closure's outcome for the joiner.
struct Packet<R> {
    result: Mutex<Option<std::thread::Result<R>>>,
    done: AtomicBool,
}

/// What the trampoline receives (boxed, behind the `void *` argument).
struct Start<F, R> {
    f: F,
    packet: Arc<Packet<R>>,
}

/// A closure launched on a worker lcore. [`join`](Self::join) for its result; dropping the
/// handle also waits (and discards the result).
#[must_use = "dropping the handle waits for the lcore"]
pub struct LcoreJob<'a, R> {
    lcore: LcoreId,
    packet: Arc<Packet<R>>,
    joined: bool,
    _borrow: PhantomData<&'a ()>,
}

impl<R> fmt::Debug for LcoreJob<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LcoreJob")
            .field("lcore", &self.lcore)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<R> LcoreJob<'_, R> {
    /// The lcore it runs on.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Has the closure returned (or panicked)? Never blocks.
    pub fn is_finished(&self) -> bool {
        self.packet.done.load(Ordering::Acquire)
    }

    /// Waits for the closure; its return value, or the panic it raised.
    pub fn join(mut self) -> Result<R, LcorePanic> {
        self.wait_done();
        let outcome = self.packet.result.lock().unwrap_or_else(PoisonError::into_inner).take();
        match outcome {
            Some(Ok(r)) => Ok(r),
            Some(Err(payload)) => Err(LcorePanic {
                lcore: self.lcore,
                message: panic_message(payload.as_ref()),
                payload,
            }),
            // The trampoline always stores an outcome before setting `done`.
            None => unreachable!("lcore job finished without an outcome"),
        }
    }

    /// As [`join`](Self::join), re-raising a panic on this thread.
    pub fn join_or_resume(self) -> R {
        self.join().unwrap_or_else(|p| resume_unwind(p.into_payload()))
    }

    /// As [`join`](Self::join), with a panic as a [`DpdkError`] (`ECANCELED`).
    pub fn wait(self) -> Result<R, DpdkError> {
        self.join().map_err(DpdkError::from)
    }

    fn wait_done(&mut self) {
        if self.joined {
            return;
        }
        while !self.is_finished() {
            std::thread::sleep(JOIN_POLL);
        }
        // SAFETY: the EAL is initialised (the handle borrows the Eal or a scope of it) and
        // `lcore` is a worker we launched on; the function has returned, so this only waits
        // for the lcore to go back to WAIT.
        unsafe { sys::rte_eal_wait_lcore(self.lcore.0) };
        self.joined = true;
    }
}

impl<R> Drop for LcoreJob<'_, R> {
    fn drop(&mut self) {
        self.wait_done();
    }
}

/// The handle [`Eal::launch`] returns (the name before [`LcoreJob`]).
pub type LaunchedLcore<'a, R = i32> = LcoreJob<'a, R>;

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// Runs the boxed [`Start`] behind `arg` on the lcore.
unsafe extern "C" fn trampoline<F, R>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> R,
{
    // Nothing may unwind into C: the closure's panic is caught and stored; a panic in the
    // bookkeeping itself (it has none we know of) aborts.
    let outer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the Box<Start<F, R>> leaked by `launch_raw`, handed to exactly one
        // trampoline call (rte_eal_remote_launch succeeded once for it).
        let start = unsafe { Box::from_raw(arg.cast::<Start<F, R>>()) };
        let Start { f, packet } = *start;
        let outcome = catch_unwind(AssertUnwindSafe(f));
        let code = if outcome.is_ok() { 0 } else { -1 };
        *packet.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        // Release: the joiner that sees `done` also sees the result (and that the closure,
        // with everything it borrowed, has been consumed and dropped).
        packet.done.store(true, Ordering::Release);
        code
    }));
    match outer {
        Ok(code) => code,
        Err(_) => std::process::abort(),
    }
}

/// Launches `f` on worker `lcore`. The caller guarantees that whatever `f` borrows outlives
/// the launch (it is `'static`, or a scope waits for the lcore before the borrow ends).
fn launch_raw<'a, F, R>(eal: &Eal, lcore: LcoreId, f: F) -> Result<LcoreJob<'a, R>, DpdkError>
where
    F: FnOnce() -> R + Send + 'a,
    R: Send + 'static,
{
    if !eal.worker_lcores().contains(&lcore) {
        return Err(DpdkError::invalid(
            "rte_eal_remote_launch",
            format!(
                "lcore {} is not a worker lcore of this EAL (workers: {:?}; the main lcore is {})",
                lcore.0,
                eal.worker_lcores().iter().map(|l| l.0).collect::<Vec<_>>(),
                eal.main_lcore().0
            ),
        ));
    }
    let packet = Arc::new(Packet { result: Mutex::new(None), done: AtomicBool::new(false) });
    let start = Box::new(Start { f, packet: Arc::clone(&packet) });
    let arg = Box::into_raw(start).cast::<c_void>();
    // SAFETY: `trampoline::<F, R>` takes back exactly the Box we leaked into `arg`, once. F and
    // R are Send, so running F and handing R back across threads is sound; F's borrows are
    // kept alive by the caller (see above). If the launch fails the trampoline never runs and
    // the Box is reclaimed below.
    let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline::<F, R>), arg, lcore.0) };
    if let Err(e) = check("rte_eal_remote_launch", ret) {
        // SAFETY: the launch failed, so the trampoline did not and will not take `arg`.
        drop(unsafe { Box::from_raw(arg.cast::<Start<F, R>>()) });
        let busy = e.code == libc::EBUSY;
        return Err(if busy {
            DpdkError { msg: format!("lcore {} is still running a function", lcore.0), ..e }
        } else {
            e
        });
    }
    Ok(LcoreJob { lcore, packet, joined: false, _borrow: PhantomData })
}

impl Eal {
    /// Runs `f` on worker `lcore` (`rte_eal_remote_launch`); [`LcoreJob::join`] for its
    /// result. Fails for the main lcore, an lcore the EAL does not run, or a busy one.
    pub fn launch<F, R>(&self, lcore: LcoreId, f: F) -> Result<LcoreJob<'_, R>, DpdkError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        launch_raw(self, lcore, f)
    }

    /// Runs `body` with a [`LcoreScope`] whose [`spawn`](LcoreScope::spawn) launches closures
    /// that may borrow anything that outlives this call. Before returning (also when `body`
    /// panics), waits for every lcore launched in the scope, so `body` must make them stop
    /// (set their stop flag) before it ends.
    pub fn scope<'env, T>(
        &'env self,
        body: impl for<'scope> FnOnce(&'scope LcoreScope<'scope, 'env>) -> T,
    ) -> T {
        let scope = LcoreScope {
            eal: self,
            launched: RefCell::new(Vec::new()),
            _scope: PhantomData,
            _env: PhantomData,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.wait_all();
        match outcome {
            Ok(t) => t,
            Err(payload) => resume_unwind(payload),
        }
    }
}

/// Launches lcore closures that borrow from the enclosing [`Eal::scope`] call.
pub struct LcoreScope<'scope, 'env: 'scope> {
    eal: &'env Eal,
    /// Completion flags of every job launched in this scope (waited for at the end even if a
    /// handle was leaked).
    launched: RefCell<Vec<(LcoreId, Arc<dyn Finished + 'static>)>>,
    // Invariance in both lifetimes, as std::thread::Scope.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

trait Finished: Send + Sync {
    fn finished(&self) -> bool;
}

impl<R: Send> Finished for Packet<R> {
    fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl<'scope, 'env> LcoreScope<'scope, 'env> {
    /// The EAL.
    pub fn eal(&self) -> &'env Eal {
        self.eal
    }

    /// Runs `f` on worker `lcore`; it may borrow anything that outlives the scope.
    pub fn spawn<F, R>(&'scope self, lcore: LcoreId, f: F) -> Result<LcoreJob<'scope, R>, DpdkError>
    where
        F: FnOnce() -> R + Send + 'scope,
        R: Send + 'static,
    {
        let job = launch_raw(self.eal, lcore, f)?;
        let flag: Arc<dyn Finished> = job.packet.clone();
        self.launched.borrow_mut().push((lcore, flag));
        Ok(job)
    }

    fn wait_all(&self) {
        for (lcore, flag) in self.launched.borrow().iter() {
            while !flag.finished() {
                std::thread::sleep(JOIN_POLL);
            }
            // SAFETY: as in LcoreJob::wait: a worker we launched on, whose function returned.
            unsafe { sys::rte_eal_wait_lcore(lcore.0) };
        }
    }
}
