//! The only module with `unsafe`: one client thread's io_uring and the
//! sockets it drives, plus CPU pinning.
//!
//! The kernel writes into a socket's receive buffer and reads its send buffer
//! while an operation is in flight, so [`Ring`] owns both buffers and hands
//! them out only while no operation uses them (`recv_armed`/`send_armed`);
//! that is what makes the submissions sound. The buffers are never resized or
//! freed while armed, and [`Ring`]'s `Drop` waits for in-flight operations
//! (or leaks their buffers) before freeing anything.

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A socket's initial receive buffer; it grows (up to [`RECV_BUFFER_BYTES_MAX`])
/// only when one reply is larger.
pub const RECV_BUFFER_BYTES: usize = 16 * 1024;
/// Largest receive buffer: the largest bulk the parser accepts and its header.
pub const RECV_BUFFER_BYTES_MAX: usize = crate::resp::BULK_BYTES_MAX + 64;
/// How long dropping a ring waits for its in-flight operations to end.
const DRAIN_ON_DROP: Duration = Duration::from_secs(2);

/// `IORING_RECVSEND_POLL_FIRST` (kernel ABI, Linux 5.19+): arm the poll
/// before trying the receive. A receive is armed right after its request is
/// sent, when the reply cannot be there yet, so trying first is wasted work.
const RECV_POLL_FIRST: u16 = 1;

const OP_RECV: u64 = 0;
const OP_SEND: u64 = 1;

/// What a completion meant for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// New bytes are in the socket's receive buffer (see [`Ring::received`]).
    Received(usize),
    /// The whole send buffer went out; it may be filled again.
    Sent(usize),
    /// The server closed the connection.
    Closed(usize),
    /// An operation failed with this errno.
    Failed(usize, i32),
}

struct Socket {
    fd: OwnedFd,
    /// `recv[start..end]` holds received bytes not yet consumed.
    recv: Vec<u8>,
    start: usize,
    end: usize,
    recv_armed: bool,
    send: Vec<u8>,
    sent: usize,
    send_armed: bool,
}

/// A thread's ring and its sockets, addressed by index.
pub struct Ring {
    ring: IoUring,
    sockets: Vec<Socket>,
}

impl Ring {
    /// Builds a ring for `fds` (connected sockets). Call on the thread that
    /// will use it: the ring is set up for a single issuer where the kernel
    /// allows.
    pub fn new(fds: Vec<OwnedFd>) -> io::Result<Ring> {
        let entries = (2 * fds.len() + 16).next_power_of_two().clamp(64, 32_768) as u32;
        let ring =
            match IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_coop_taskrun().build(entries) {
                Ok(ring) => ring,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::new(entries)?,
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("io_uring setup failed (is io_uring enabled?): {e}")));
                }
            };
        let sockets = fds
            .into_iter()
            .map(|fd| Socket {
                fd,
                recv: vec![0; RECV_BUFFER_BYTES],
                start: 0,
                end: 0,
                recv_armed: false,
                send: Vec::new(),
                sent: 0,
                send_armed: false,
            })
            .collect();
        Ok(Ring { ring, sockets })
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed points into a buffer of `self.sockets`
            // that is marked armed before the push and stays untouched (not
            // handed out, resized or freed) until its completion clears the flag.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Received bytes of socket `i` not consumed yet.
    pub fn received(&self, i: usize) -> &[u8] {
        let s = &self.sockets[i];
        &s.recv[s.start..s.end]
    }

    /// Marks the first `n` received bytes of socket `i` as used.
    pub fn consume(&mut self, i: usize, n: usize) {
        let s = &mut self.sockets[i];
        assert!(n <= s.end - s.start);
        s.start += n;
        if s.start == s.end {
            s.start = 0;
            s.end = 0;
        }
    }

    /// Starts a receive on socket `i` into the free end of its buffer,
    /// first moving unconsumed bytes to the front and, when they fill the
    /// buffer (one reply larger than it), doubling it. Returns an error if a
    /// reply would need more than [`RECV_BUFFER_BYTES_MAX`].
    pub fn arm_recv(&mut self, i: usize) -> io::Result<()> {
        let s = &mut self.sockets[i];
        if s.recv_armed {
            return Ok(());
        }
        if s.start > 0 {
            s.recv.copy_within(s.start..s.end, 0);
            s.end -= s.start;
            s.start = 0;
        }
        if s.end == s.recv.len() {
            if s.recv.len() >= RECV_BUFFER_BYTES_MAX {
                return Err(io::Error::other("a reply is larger than the receive buffer limit"));
            }
            let grown = (s.recv.len() * 2).min(RECV_BUFFER_BYTES_MAX);
            s.recv.resize(grown, 0);
        }
        let free = &mut s.recv[s.end..];
        let sqe =
            opcode::Recv::new(types::Fd(s.fd.as_raw_fd()), free.as_mut_ptr(), free.len().min(u32::MAX as usize) as u32)
                .ioprio(RECV_POLL_FIRST)
                .build()
                .user_data((i as u64) << 1 | OP_RECV);
        s.recv_armed = true;
        self.push(&sqe)
    }

    /// The send buffer of socket `i` to append requests to, or None while a
    /// send from it is in flight.
    pub fn send_buffer(&mut self, i: usize) -> Option<&mut Vec<u8>> {
        let s = &mut self.sockets[i];
        if s.send_armed { None } else { Some(&mut s.send) }
    }

    /// True while a send of socket `i` is in flight.
    #[cfg(test)]
    pub fn sending(&self, i: usize) -> bool {
        self.sockets[i].send_armed
    }

    /// Starts sending what socket `i`'s send buffer holds, if anything.
    pub fn flush(&mut self, i: usize) -> io::Result<()> {
        let s = &mut self.sockets[i];
        if s.send_armed || s.sent >= s.send.len() {
            return Ok(());
        }
        let rest = &s.send[s.sent..];
        let sqe =
            opcode::Send::new(types::Fd(s.fd.as_raw_fd()), rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data((i as u64) << 1 | OP_SEND);
        s.send_armed = true;
        self.push(&sqe)
    }

    /// Submits what is queued and waits for at least one completion or until
    /// `timeout` passes, then appends the events of all completions.
    pub fn wait(&mut self, timeout: Option<Duration>, events: &mut Vec<Event>) -> io::Result<()> {
        let waited = match timeout {
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match waited {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)) => {}
            Err(e) => return Err(e),
        }
        let completions: Vec<(u64, i32)> =
            self.ring.completion().map(|c: cqueue::Entry| (c.user_data(), c.result())).collect();
        for (user_data, res) in completions {
            if let Some(event) = self.complete(user_data, res)? {
                events.push(event);
            }
        }
        Ok(())
    }

    fn complete(&mut self, user_data: u64, res: i32) -> io::Result<Option<Event>> {
        let i = (user_data >> 1) as usize;
        let Some(s) = self.sockets.get_mut(i) else {
            return Err(io::Error::other(format!("completion for unknown socket {i}")));
        };
        if user_data & 1 == OP_RECV {
            s.recv_armed = false;
            return Ok(Some(match res {
                0 => Event::Closed(i),
                n if n > 0 => {
                    s.end += n as usize;
                    debug_assert!(s.end <= s.recv.len());
                    Event::Received(i)
                }
                e => Event::Failed(i, -e),
            }));
        }
        s.send_armed = false;
        if res < 0 {
            return Ok(Some(Event::Failed(i, -res)));
        }
        s.sent += res as usize;
        if s.sent < s.send.len() {
            self.flush(i)?;
            return Ok(None);
        }
        s.send.clear();
        s.sent = 0;
        Ok(Some(Event::Sent(i)))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let armed = |r: &Ring| r.sockets.iter().any(|s| s.recv_armed || s.send_armed);
        if !armed(self) {
            return;
        }
        for s in &self.sockets {
            // SAFETY: shutdown on a socket this ring owns; it only ends the
            // pending operations early (they complete with 0 or an error).
            unsafe { libc::shutdown(s.fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
        let deadline = Instant::now() + DRAIN_ON_DROP;
        let mut events = Vec::new();
        while armed(self) && Instant::now() < deadline {
            if self.wait(Some(Duration::from_millis(50)), &mut events).is_err() {
                break;
            }
            events.clear();
        }
        if armed(self) {
            // The kernel may still write into these buffers: never free them.
            for s in &mut self.sockets {
                std::mem::forget(std::mem::take(&mut s.recv));
                std::mem::forget(std::mem::take(&mut s.send));
            }
        }
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::other(format!("cpu {cpu} out of range")));
    }
    // SAFETY: cpu_set_t is plain data, so zeroed is a valid empty set;
    // CPU_SET writes inside it because cpu < CPU_SETSIZE (checked above), and
    // sched_setaffinity reads exactly size_of::<cpu_set_t>() bytes.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn wait_for(ring: &mut Ring, want: impl Fn(&Event) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut events = Vec::new();
        while !events.iter().any(&want) {
            assert!(Instant::now() < deadline, "no such event; got {events:?}");
            ring.wait(Some(Duration::from_millis(100)), &mut events).unwrap();
        }
        events
    }

    #[test]
    fn sends_receives_grows_and_drops_with_operations_in_flight() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut ring = match Ring::new(vec![ours.into()]) {
            Ok(r) => r,
            Err(e) => {
                // Without io_uring the load generator cannot run at all; say so.
                eprintln!("skipped: {e}");
                return;
            }
        };
        ring.send_buffer(0).unwrap().extend_from_slice(b"ping");
        ring.flush(0).unwrap();
        assert!(ring.sending(0) && ring.send_buffer(0).is_none(), "buffer is the kernel's while sending");
        wait_for(&mut ring, |e| *e == Event::Sent(0));
        let mut got = [0u8; 4];
        theirs.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");

        // A message larger than the initial buffer arrives in pieces; the
        // buffer grows because nothing is consumed.
        let big: Vec<u8> = (0..RECV_BUFFER_BYTES * 3).map(|i| i as u8).collect();
        let writer = {
            let mut theirs = theirs.try_clone().unwrap();
            let big = big.clone();
            std::thread::spawn(move || theirs.write_all(&big).unwrap())
        };
        while ring.received(0).len() < big.len() {
            ring.arm_recv(0).unwrap();
            wait_for(&mut ring, |e| *e == Event::Received(0));
        }
        writer.join().unwrap();
        assert_eq!(ring.received(0), &big[..]);
        ring.consume(0, 10);
        assert_eq!(ring.received(0), &big[10..]);
        ring.consume(0, big.len() - 10);
        assert!(ring.received(0).is_empty());

        // Dropped with a receive in flight: Drop shuts the socket down and
        // waits for the completion before freeing the buffer.
        ring.arm_recv(0).unwrap();
        let mut events = Vec::new();
        ring.wait(Some(Duration::from_millis(10)), &mut events).unwrap();
        assert!(events.is_empty());
        drop(ring);
        drop(theirs);
    }

    #[test]
    fn peer_close_is_an_event() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let Ok(mut ring) = Ring::new(vec![ours.into()]) else { return };
        ring.arm_recv(0).unwrap();
        drop(theirs);
        wait_for(&mut ring, |e| *e == Event::Closed(0));
    }

    #[test]
    fn pins_threads() {
        std::thread::spawn(|| {
            pin_current_thread(0).unwrap();
            assert!(pin_current_thread(libc::CPU_SETSIZE as usize).is_err());
        })
        .join()
        .unwrap();
    }
}
