//! SIGINT / SIGTERM request a clean shutdown: the handler only sets [`QUIT`]; every poll loop
//! checks [`quit_requested`] once per iteration, returns, and the main lcore then stops and
//! closes the ports, drops the mempools and cleans up the EAL.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the signal handler (or [`request_quit`]); loops poll it.
pub static QUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    QUIT.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install_quit_handlers() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid starting point; we set the handler (a plain
        // extern "C" fn doing one atomic store, which is async-signal-safe), an empty mask and
        // SA_RESTART, and pass valid pointers to sigaction.
        let ret = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Has a shutdown been requested?
#[inline]
pub fn quit_requested() -> bool {
    QUIT.load(Ordering::Relaxed)
}

/// Requests a shutdown (as the signal handler does).
pub fn request_quit() {
    QUIT.store(true, Ordering::Relaxed);
}
