//! The steady state of a 3-replica group does not allocate per message: counted with a
//! counting global allocator (a count, not a time: deterministic). The count is per thread,
//! so the tests, which the harness runs in parallel, do not see each other's allocations.

use paxos_benches::{bench_config, LocalGroup};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;
thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left (and is not measured).
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
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
    let before = allocs();
    for _ in 0..commands / batch {
        g.commit_batch(&value, batch);
    }
    let after = allocs();
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
