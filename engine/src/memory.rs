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
