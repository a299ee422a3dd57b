//! The steady state of a 3-replica group does not allocate per message: counted with a
//! counting global allocator (a count, not a time: deterministic).

use paxos_benches::{bench_config, LocalGroup};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarding the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_per_command(batch: usize, commands: usize) -> f64 {
    let mut g = LocalGroup::new(bench_config(3, batch as u32));
    let value = [1u8; 64];
    // Warm up: buffers reach their working capacity.
    for _ in 0..2000 / batch {
        g.commit_batch(&value, batch);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..commands / batch {
        g.commit_batch(&value, batch);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    (after - before) as f64 / commands as f64
}

#[test]
fn unbatched_steady_state_allocates_only_for_value_arenas() {
    // 64-byte commands in 68-byte records: one 64 KiB arena serves ~960 values.
    let per_command = allocations_per_command(1, 20_000);
    println!("allocations per command, unbatched: {per_command:.4}");
    assert!(per_command < 0.01, "{per_command} allocations per command");
}

#[test]
fn batched_steady_state_allocates_only_for_value_arenas() {
    let per_command = allocations_per_command(32, 64_000);
    println!("allocations per command, 32 per slot: {per_command:.5}");
    assert!(per_command < 0.01, "{per_command} allocations per command");
}
