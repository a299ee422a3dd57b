//! Which CPUs the calling thread may run on: read, set and restore its affinity.
//!
//! The EAL pins each lcore thread to the CPU set of `--lcores` at start. A poll loop that
//! wants to move later (a leader taking a CPU of its own while it leads, see
//! `paxos-node --leader-cpus`) saves its EAL set with [`CpuSet::of_current_thread`], applies
//! another with [`CpuSet::apply_to_current_thread`] and puts the saved one back when done.
//! Thin wrapper over `sched_getaffinity`/`sched_setaffinity` for the calling thread (pid 0).

use core::fmt;
use std::mem;

use super::DpdkError;

/// A set of CPU numbers below `libc::CPU_SETSIZE` (1024).
#[derive(Clone, Copy)]
pub struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// Largest CPU number + 1 a set can hold.
    pub const CAPACITY: usize = libc::CPU_SETSIZE as usize;

    /// The set holding exactly `cpus`; an error names the first CPU out of range, or says the
    /// list is empty.
    pub fn from_cpus(cpus: &[usize]) -> Result<CpuSet, DpdkError> {
        if cpus.is_empty() {
            return Err(DpdkError::invalid("CpuSet::from_cpus", "empty CPU list"));
        }
        // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        for &cpu in cpus {
            if cpu >= Self::CAPACITY {
                return Err(DpdkError::invalid(
                    "CpuSet::from_cpus",
                    format!("CPU {cpu} is out of range (< {})", Self::CAPACITY),
                ));
            }
            // SAFETY: cpu < CPU_SETSIZE (checked above), so CPU_SET stays inside the array.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        Ok(CpuSet(set))
    }

    /// The calling thread's current affinity.
    pub fn of_current_thread() -> Result<CpuSet, DpdkError> {
        // SAFETY: see from_cpus.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: pid 0 = the calling thread; the kernel writes at most
        // size_of::<cpu_set_t>() bytes into `set`, which we own.
        let ret =
            unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if ret != 0 {
            return Err(os_error("sched_getaffinity"));
        }
        Ok(CpuSet(set))
    }

    /// Restricts the calling thread to this set (it migrates at once if it runs elsewhere).
    pub fn apply_to_current_thread(&self) -> Result<(), DpdkError> {
        // SAFETY: pid 0 = the calling thread; the kernel reads size_of::<cpu_set_t>() bytes
        // from a set we own and do not mutate.
        let ret = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if ret != 0 {
            return Err(os_error("sched_setaffinity"));
        }
        Ok(())
    }

    pub fn contains(&self, cpu: usize) -> bool {
        // SAFETY: cpu < CPU_SETSIZE is checked first, so CPU_ISSET reads inside the array.
        cpu < Self::CAPACITY && unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }

    /// The CPU numbers in the set, ascending.
    pub fn cpus(&self) -> Vec<usize> {
        (0..Self::CAPACITY).filter(|&c| self.contains(c)).collect()
    }
}

fn os_error(op: &'static str) -> DpdkError {
    let code = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
    let text = std::io::Error::from_raw_os_error(code).to_string();
    // "Invalid argument (os error 22)": DpdkError prints the code itself.
    let msg = text.split(" (os error").next().unwrap_or(&text).to_string();
    DpdkError { op, code, msg }
}

impl PartialEq for CpuSet {
    fn eq(&self, other: &CpuSet) -> bool {
        self.cpus() == other.cpus()
    }
}

impl Eq for CpuSet {}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet{:?}", self.cpus())
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus: Vec<String> = self.cpus().iter().map(usize::to_string).collect();
        f.write_str(&cpus.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_lists_sets() {
        let s = CpuSet::from_cpus(&[3, 0, 3]).unwrap();
        assert_eq!(s.cpus(), vec![0, 3]);
        assert!(s.contains(0) && s.contains(3) && !s.contains(1));
        assert!(!s.contains(CpuSet::CAPACITY + 5));
        assert_eq!(s.to_string(), "0,3");
        assert!(CpuSet::from_cpus(&[]).is_err());
        let e = CpuSet::from_cpus(&[1, CpuSet::CAPACITY]).unwrap_err();
        assert!(e.msg.contains("out of range"), "{e}");
    }

    #[test]
    fn moves_the_calling_thread_and_back() {
        // On a thread of its own, so the test harness's thread keeps its affinity.
        std::thread::spawn(|| {
            let home = CpuSet::of_current_thread().unwrap();
            let first = home.cpus()[0];
            let one = CpuSet::from_cpus(&[first]).unwrap();
            one.apply_to_current_thread().unwrap();
            assert_eq!(CpuSet::of_current_thread().unwrap(), one);
            home.apply_to_current_thread().unwrap();
            assert_eq!(CpuSet::of_current_thread().unwrap(), home);
        })
        .join()
        .unwrap();
    }
}
