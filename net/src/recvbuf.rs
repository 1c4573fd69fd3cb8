//! The shard's provided-buffer ring: receive buffers the kernel picks from
//! when a multishot recv completes, so a connection holds no read buffer of
//! its own while idle and a read needs no new submission.
//!
//! Lifecycle of a buffer: it sits in the ring until the kernel fills it and
//! names it in a recv completion; the shard then owns it, parses the commands
//! in it in place, copies any incomplete tail to the connection, and gives it
//! back with [`RecvBuffers::recycle`] in the same loop turn.

use io_uring::IoUring;
use io_uring::types::BufRingEntry;
use std::alloc::Layout;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// Buffers in a shard's ring. A loop turn that gets data on more connections
/// than this hands the rest their data in the next turn (the recv ends with
/// ENOBUFS and is re-armed).
pub const RECV_BUFFERS: u16 = 512;
/// Size of each buffer (Redis reads 16 KiB at a time too).
pub const RECV_BUFFER_BYTES: usize = 16 * 1024;
/// The buffer group id of the shard's ring.
pub const BUFFER_GROUP: u16 = 0;

/// A registered ring of receive buffers.
pub struct RecvBuffers {
    ring: NonNull<BufRingEntry>,
    bufs: NonNull<u8>,
    entries: u16,
    buf_bytes: usize,
    tail: u16,
}

impl RecvBuffers {
    /// Allocates `entries` buffers of `buf_bytes` (entries a power of two),
    /// puts them all in a ring and registers it with `uring` as `group`.
    pub fn register(uring: &IoUring, group: u16, entries: u16, buf_bytes: usize) -> io::Result<Self> {
        assert!(entries.is_power_of_two() && buf_bytes > 0);
        let ring_layout = Layout::from_size_align(entries as usize * size_of::<BufRingEntry>(), 4096)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let buf_layout =
            Layout::from_size_align(entries as usize * buf_bytes, 64).map_err(|e| io::Error::other(e.to_string()))?;
        // SAFETY: both layouts have non-zero size; null results are checked.
        let (ring, bufs) = unsafe { (std::alloc::alloc_zeroed(ring_layout), std::alloc::alloc(buf_layout)) };
        let (Some(ring), Some(bufs)) = (NonNull::new(ring.cast::<BufRingEntry>()), NonNull::new(bufs)) else {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "could not allocate receive buffers"));
        };
        // Fixed for the shard's lifetime: not counted as used memory.
        coreshard_engine::memory::exclude(ring_layout.size() + buf_layout.size());
        // The kernel takes buffers in ring order and each is recycled to the
        // tail, so every buffer is written within the shard's first few MiB
        // of input whatever the load. Touching them now makes that fixed cost
        // resident, and visible in RSS, from the start, rather than growing
        // RSS during the first load as if the data had used it, and keeps
        // those page faults off the first requests.
        // SAFETY: `bufs` is a fresh allocation of `buf_layout.size()` bytes.
        unsafe { bufs.as_ptr().write_bytes(0, buf_layout.size()) };
        let mut this = RecvBuffers { ring, bufs, entries, buf_bytes, tail: 0 };
        for bid in 0..entries {
            this.push(bid);
        }
        this.publish();
        // SAFETY: the ring memory is page aligned, `entries` long, initialised,
        // and never freed (see Drop), so it outlives the registration.
        unsafe { uring.submitter().register_buf_ring_with_flags(ring.as_ptr() as u64, entries, group, 0)? };
        Ok(this)
    }

    /// Writes buffer `bid` into the ring slot at the local tail.
    fn push(&mut self, bid: u16) {
        debug_assert!(bid < self.entries);
        let slot = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: slot < entries, inside the ring allocation; the kernel reads
        // slots only up to the published tail, which does not include this one yet.
        let entry = unsafe { &mut *self.ring.as_ptr().add(slot) };
        // SAFETY: bid < entries, so the buffer lies inside the buffer allocation.
        let addr = unsafe { self.bufs.as_ptr().add(bid as usize * self.buf_bytes) };
        entry.set_addr(addr as u64);
        entry.set_len(self.buf_bytes as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the pushed buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field lives in the first ring entry's reserved bytes,
        // which is how the kernel's io_uring_buf_ring is laid out; the kernel
        // reads it with acquire ordering, so entries written before are visible.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.as_ptr()) as *mut u16;
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid`, which a completion just filled.
    /// The caller owns the buffer until it recycles it.
    pub fn filled(&mut self, bid: u16, len: usize) -> &mut [u8] {
        assert!(bid < self.entries && len <= self.buf_bytes, "completion names a buffer out of range");
        // SAFETY: in range (checked); the kernel wrote `len` bytes and does not
        // touch the buffer again until it is recycled, and `&mut self` keeps
        // this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.bufs.as_ptr().add(bid as usize * self.buf_bytes), len) }
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }
}

impl Drop for RecvBuffers {
    fn drop(&mut self) {
        // The memory is deliberately not freed: the kernel may still complete
        // a multishot recv into it while the ring is torn down asynchronously
        // after close. A shard's buffers are dropped only as its thread ends.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::{cqueue, opcode, types};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn multishot_recv_fills_and_reuses_provided_buffers() {
        let Ok(mut uring) = IoUring::new(64) else {
            eprintln!("skipped: io_uring unavailable");
            return;
        };
        let mut bufs = RecvBuffers::register(&uring, 7, 2, 8).unwrap();
        let (mut a, b) = UnixStream::pair().unwrap();
        let recv = opcode::RecvMulti::new(types::Fd(b.as_raw_fd()), 7).build().user_data(1);
        // SAFETY: the buffers are registered and outlive the operation.
        unsafe { uring.submission().push(&recv).unwrap() };
        let mut seen = Vec::new();
        // Six writes through a ring of two buffers: works only if recycling works.
        for i in 0..6u8 {
            a.write_all(&[b'a' + i; 5]).unwrap();
            uring.submit_and_wait(1).unwrap();
            let cqe = uring.completion().next().unwrap();
            assert!(cqueue::more(cqe.flags()), "multishot recv ended early: {}", cqe.result());
            let bid = cqueue::buffer_select(cqe.flags()).unwrap();
            seen.extend_from_slice(bufs.filled(bid, cqe.result() as usize));
            bufs.recycle(bid);
        }
        assert_eq!(seen, b"aaaaabbbbbcccccdddddeeeeefffff");
        drop(a);
        uring.submit_and_wait(1).unwrap();
        let eof = uring.completion().next().unwrap();
        assert_eq!(eof.result(), 0);
        assert!(!cqueue::more(eof.flags()));
    }
}
