//! Memory accounting: a global-allocator wrapper that counts the bytes each
//! thread allocates and frees, so a shard knows how much memory it holds
//! without a shared counter that every allocation would contend on.
//!
//! A buffer allocated on one shard and freed on another (a cross-shard batch)
//! moves bytes between the two counters; the sum over all shards is exact.
//! The binary installs it (`#[global_allocator]`); without it the counters
//! read zero.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

thread_local! {
    /// Bytes this thread allocated minus bytes it freed.
    static ALLOCATED: Cell<isize> = const { Cell::new(0) };
}

#[inline]
fn count(delta: isize) {
    // `const` thread-locals without destructors stay accessible while the
    // thread exits, so this never fails; `try_with` keeps it panic-free anyway.
    let _ = ALLOCATED.try_with(|c| c.set(c.get() + delta));
}

/// Leaves `bytes` the calling thread allocated out of its count: fixed
/// buffers that are not data (a shard's receive-buffer ring), so maxmemory
/// measures what the keyspace and its clients use.
pub fn exclude(bytes: usize) {
    count(-(bytes as isize));
}

/// Bytes allocated minus bytes freed by the calling thread since it started.
pub fn thread_allocated() -> isize {
    ALLOCATED.try_with(Cell::get).unwrap_or(0)
}

/// Largest request [`size_class`] rounds to one of mimalloc's bins; past it
/// mimalloc works in OS pages, and the rounding only keeps growth geometric.
const BINNED_BYTES_MAX: usize = 512 * 1024;

/// The block size the allocator hands out for a request of `bytes`: the
/// size classes of mimalloc (the allocator the binary installs), so a caller
/// that sizes an allocation to its class gets the slack for free instead of
/// wasting it. mimalloc keeps blocks 16-byte aligned (`MI_ALIGN2W` on
/// 64-bit targets), so the classes up to 64 bytes are 8, 16, 32, 48 and 64;
/// above that there are four per power of two (80, 96, 112, 128, 160, ...),
/// as in mimalloc's `mi_bin` (page-queue.c), up to 512 KiB. Past that, sixteen
/// steps per power of two: mimalloc then maps pages, and the untouched tail
/// of a block costs address space rather than resident memory.
///
/// The classes only need to match mimalloc for memory efficiency; callers
/// allocate and free with the rounded size, so any allocator is correct.
pub fn size_class(bytes: usize) -> usize {
    if bytes <= 8 {
        return 8;
    }
    if bytes <= 64 {
        return bytes.next_multiple_of(16);
    }
    // Steps per power of two: 4 while binned (in words), 16 beyond.
    let (unit, steps_log2) = if bytes <= BINNED_BYTES_MAX { (8, 2) } else { (1, 4) };
    let units = bytes.div_ceil(unit) - 1;
    let shift = units.ilog2() - steps_log2;
    (((units >> shift) + 1) << shift) * unit
}

/// A global allocator that counts per thread and delegates to `A`.
pub struct CountingAlloc<A>(pub A);

// SAFETY: every method delegates to the inner allocator with the caller's
// arguments unchanged and only adds bookkeeping that does not allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn size_classes_are_mimallocs_bins() {
        let classes: Vec<usize> = [1, 8, 9, 17, 33, 49, 64, 65, 80, 81, 100, 128, 129, 400, 438, 449, 1025]
            .into_iter()
            .map(size_class)
            .collect();
        assert_eq!(classes, [8, 8, 16, 32, 48, 64, 64, 80, 80, 96, 112, 128, 160, 448, 448, 512, 1280]);
        assert_eq!(size_class(BINNED_BYTES_MAX), BINNED_BYTES_MAX);
        assert_eq!(size_class(BINNED_BYTES_MAX + 1), BINNED_BYTES_MAX + BINNED_BYTES_MAX / 16);
        let mut last = 0;
        for n in (1..3_000_000).step_by(97) {
            let c = size_class(n);
            // A class holds the request, wastes at most a quarter of it
            // (an eighth past the bins), and grows with it.
            assert!(c >= n && c >= last, "{n} -> {c}");
            assert!(n <= 64 || c - n <= n / 4, "{n} -> {c}");
            assert!(n > 64 || c - n < 16, "{n} -> {c}");
            assert_eq!(size_class(c), c, "a class is its own class: {n} -> {c}");
            last = c;
        }
    }

    #[test]
    fn counts_allocations_frees_and_reallocations() {
        let a = CountingAlloc(System);
        let before = thread_allocated();
        let layout = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: a non-zero layout; the pointer is freed with the layout it
        // was last given, exactly once.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(thread_allocated() - before, 1000);
            let q = a.realloc(p, layout, 3000);
            assert!(!q.is_null());
            assert_eq!(thread_allocated() - before, 3000);
            a.dealloc(q, Layout::from_size_align(3000, 8).unwrap());
            let z = a.alloc_zeroed(layout);
            assert_eq!(*z, 0);
            a.dealloc(z, layout);
        }
        assert_eq!(thread_allocated(), before);
    }
}
