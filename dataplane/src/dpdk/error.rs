//! The one error type of the DPDK layer, built in one place from FFI return codes.

use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;

use dpdk_sys as sys;

/// A failed DPDK call: which operation, the errno-style code, and DPDK's text for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkError {
    /// The operation that failed (usually the C function's name).
    pub op: &'static str,
    /// A positive errno value (`rte_errno`, or the negated return value).
    pub code: i32,
    /// `rte_strerror(code)`, or our own explanation for errors raised in Rust.
    pub msg: String,
}

impl DpdkError {
    /// The constructor every other one goes through: `code` is a positive errno value.
    pub fn new(op: &'static str, code: i32) -> DpdkError {
        // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated
        // string (static or in a per-thread buffer) that stays valid until the next call on
        // this thread; it is copied before returning.
        let msg = unsafe {
            let p = sys::rte_strerror(code);
            if p.is_null() {
                format!("error {code}")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        DpdkError { op, code, msg }
    }

    /// An error detected in Rust (bad argument, wrong state), with our own message.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> DpdkError {
        DpdkError { op, code: libc::EINVAL, msg: msg.into() }
    }

    /// For calls that return -1 (or NULL) and set `rte_errno`.
    pub fn from_rte_errno(op: &'static str) -> DpdkError {
        // SAFETY: reads this thread's rte_errno; no other effect.
        let code = unsafe { sys::rust_rte_errno() };
        DpdkError::new(op, if code == 0 { libc::EIO } else { code })
    }
}

/// For calls that return `>= 0` on success and `-errno` on failure (most of ethdev).
pub(crate) fn check(op: &'static str, ret: c_int) -> Result<c_int, DpdkError> {
    if ret < 0 {
        Err(DpdkError::new(op, -ret))
    } else {
        Ok(ret)
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (errno {})", self.op, self.msg, self.code)
    }
}

impl std::error::Error for DpdkError {}
