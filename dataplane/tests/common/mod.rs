//! Set-up shared by the DPDK integration tests: the EAL arguments of a test process and
//! the guard that removes its runtime directory. (`dpdk_ring` keeps its own arguments: it
//! tests the EAL's argument handling itself.)
#![allow(dead_code)] // each test binary uses its own subset

/// Removes `/var/run/dpdk/<prefix>` when dropped.
pub struct Runtime(pub String);

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

/// EAL arguments of a test process named `name`: `--lcores=<lcores>`, no hugepages (512 MB),
/// no PCI, no shared config, no telemetry, `vdev` (e.g. `net_ring0`), errors-only logging
/// and `--file-prefix=<prefix>`.
pub fn eal_args(name: &str, lcores: &str, vdev: &str, prefix: &str) -> Vec<String> {
    [
        name,
        &format!("--lcores={lcores}"),
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        &format!("--vdev={vdev}"),
        "--log-level=*:error",
        &format!("--file-prefix={prefix}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
