//! The runtime seam: everything the shards need from the operating system
//! (their io_uring, CPU placement, the clock) goes through this module, so the
//! rest of the code does not spread those types and a part can be replaced
//! when measurement says so. docs/decisions/0001-runtime.md records why the
//! shards run a plain pinned thread around their own ring rather than a
//! glommio executor.

use io_uring::IoUring;
use std::io;

/// Submission queue entries per shard ring. Completions get twice as many.
pub const RING_ENTRIES: u32 = 4096;

/// Builds a shard's ring. It asks for the flags that cut per-turn cost
/// (single issuer, deferred task work, cooperative task running) and falls
/// back to a plain ring on kernels that lack them. When io_uring itself is
/// unavailable the error names the cause and the fix.
pub fn build_ring() -> io::Result<IoUring> {
    let tuned = IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_coop_taskrun().build(RING_ENTRIES);
    match tuned {
        Ok(ring) => Ok(ring),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::new(RING_ENTRIES).map_err(explain_ring_error),
        Err(e) => Err(explain_ring_error(e)),
    }
}

/// Submits what is queued and collects what has completed, without waiting:
/// the turn of a shard that has work left (a stream past its share of the
/// turn). With deferred task work (`build_ring`), the kernel posts a
/// socket's completions only during an enter that asks for events, and
/// `submit_and_wait(0)` does not ask: a shard that never waited saw no new
/// client input at all while a migration's or a full sync's stream kept it
/// busy (its clients stalled for the whole snapshot, about 170 ms in the
/// migration benchmark). An enter asking for one event with a zero timeout
/// runs that work and returns at once (`ETIME` when nothing completed).
pub fn submit_and_poll(ring: &IoUring) -> io::Result<()> {
    let zero = io_uring::types::Timespec::new();
    let args = io_uring::types::SubmitArgs::new().timespec(&zero);
    match ring.submitter().submit_with_args(1, &args) {
        Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
        other => other.map(|_| ()),
    }
}

fn explain_ring_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "this kernel has no io_uring (or a seccomp profile hides it): coreshard needs Linux 5.19 or later with io_uring; \
             under Docker or systemd, allow the io_uring_setup/io_uring_enter/io_uring_register syscalls"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "io_uring is disabled for this process: set `sysctl kernel.io_uring_disabled=0` \
             (or 1 and add the user to kernel.io_uring_group), or allow the io_uring syscalls in the seccomp profile"
        }
        Some(libc::ENOMEM) => {
            "the kernel refused io_uring memory: raise the locked-memory limit (ulimit -l, systemd LimitMEMLOCK=) \
             or the memory cgroup limit"
        }
        _ => "io_uring could not be set up",
    };
    io::Error::new(e.kind(), format!("{why} ({e})"))
}

/// The CPUs this process may run on (its affinity mask: taskset, systemd
/// CPUAffinity=), in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, and
    // sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: as in allowed_cpus; CPU_SET writes inside the set for cpu < CPU_SETSIZE,
    // which the caller's cpu comes from.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Asks the kernel to back none of this process's memory with transparent
/// huge pages (`prctl(PR_SET_THP_DISABLE)`), for `disable-thp yes`. Redis
/// does this only where the system gives huge pages to all memory, because
/// its allocator asks for none; mimalloc marks its arenas `MADV_HUGEPAGE`,
/// so with THP in the common `madvise` mode a growing heap is faulted in
/// 2 MiB at a time, and each such fault (2 MiB zeroed at once) stalls the
/// shard: with one list growing by LPUSH, p99 latency was 4.6 ms with huge
/// pages and 0.5 ms without. The setting covers memory already mapped too.
pub fn disable_transparent_huge_pages() -> io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and reads or
    // writes none of this process's memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0 as libc::c_ulong, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A monotonic clock reading in nanoseconds.
pub fn monotonic_ns() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// CPU time used by this process: (user, system) seconds.
pub fn process_cpu_seconds() -> (f64, f64) {
    // SAFETY: rusage is plain data and getrusage fills it.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    pages * page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_round_trips_and_ring_builds() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let handle = std::thread::spawn(move || {
            pin_current_thread(cpus[0]).unwrap();
            allowed_cpus()
        });
        assert_eq!(handle.join().unwrap().len(), 1);
        // The ring needs io_uring; where the kernel lacks it the error explains why.
        match build_ring() {
            Ok(ring) => assert!(ring.params().sq_entries() >= RING_ENTRIES),
            Err(e) => assert!(e.to_string().contains("io_uring"), "{e}"),
        }
        assert!(rss_bytes() > 0);
    }

    /// A socket read that completes while the shard is busy: with deferred
    /// task work, a plain submit never shows it; `submit_and_poll` does.
    #[test]
    fn a_poll_without_waiting_collects_completions_of_deferred_work() {
        use io_uring::{opcode, types};
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let Ok(mut ring) = build_ring() else { return };
        let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut buf = [0u8; 16];
        let read =
            opcode::Recv::new(types::Fd(rx.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build().user_data(7);
        // SAFETY: the buffer and the socket outlive the ring's use of them:
        // the read completes (asserted below) before either is dropped.
        unsafe { ring.submission().push(&read).unwrap() };
        ring.submit().unwrap();
        assert!(ring.completion().next().is_none(), "nothing to read yet");
        tx.write_all(b"ping").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // The tuned ring sets single issuer and deferred task work together.
        let deferred = ring.params().is_setup_single_issuer();
        if deferred {
            // The write queued the read's completion as task work; without
            // an enter asking for events it stays deferred.
            ring.submit_and_wait(0).unwrap();
            assert!(ring.completion().next().is_none(), "deferred work ran without GETEVENTS");
        }
        let cqe = loop {
            submit_and_poll(&ring).unwrap();
            if let Some(cqe) = ring.completion().next() {
                break cqe;
            }
            assert!(std::time::Instant::now() < deadline, "the read never completed");
            std::thread::yield_now();
        };
        assert_eq!((cqe.user_data(), cqe.result()), (7, 4));
        assert_eq!(&buf[..4], b"ping");
    }

    #[test]
    fn huge_pages_can_be_turned_off() {
        disable_transparent_huge_pages().unwrap();
        // SAFETY: PR_GET_THP_DISABLE takes no pointer arguments.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0 as libc::c_ulong, 0 as libc::c_ulong, 0, 0) };
        assert_eq!(disabled, 1);
    }
}
