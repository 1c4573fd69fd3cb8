//! One client thread: its connections, the requests each has outstanding,
//! and the loop that keeps them busy through the thread's ring.
//!
//! Closed loop (no --rate): a connection is topped up to `pipeline`
//! outstanding requests whenever its send buffer is free and replies came
//! back; latency counts from the send. Open loop (--rate): every connection
//! has a schedule of intended send times at its share of the rate; a request
//! whose time has come waits only if the connection already has `pipeline`
//! outstanding, and its latency still counts from the intended time.

use crate::keys::{self, KeyChooser};
use crate::options::{Stop, Workload};
use crate::report::{Command, Stats};
use crate::resp::{self, Parsed, Reply};
use crate::sys::{Event, Ring};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest a thread sleeps in the kernel before it publishes progress and
/// checks its deadline.
const WAIT_MAX: Duration = Duration::from_millis(100);
/// Open loop: when the next request is due sooner than this, the thread
/// polls its ring instead of sleeping until then. A sleep and wake-up costs
/// more client CPU (about 13 µs on the dev VM) than the gap between requests
/// at high rates, so sleeping for each due time made the client fall behind
/// its schedule at about 100k requests/s on one thread.
const SPIN_NS: u64 = 20_000;
/// How long replies to requests already sent may take once the run is over
/// before the thread gives up on them and reports a failure.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a thread is asked to do.
pub struct ThreadPlan {
    /// Index of the thread (for CPU pinning).
    pub index: usize,
    /// Global index of its first connection.
    pub first_connection: usize,
    /// Requests it sends in all, if the run is bounded by count.
    pub requests: Option<u64>,
    /// Connected sockets.
    pub sockets: Vec<OwnedFd>,
}

/// What a thread did.
pub struct ThreadResult {
    pub stats: Stats,
    pub failures: Vec<String>,
    /// The first error reply, for the report.
    pub first_error: Option<String>,
    /// When its last reply arrived.
    pub finished: Instant,
}

/// One request sent and not answered yet.
struct Pending {
    command: Command,
    key: u64,
    /// For a SET, the version it wrote; for a GET, the version it must read
    /// (0: not set by this run, so not checked).
    version: u32,
    /// Nanoseconds since the thread's start at which it was (meant to be) sent.
    intended_ns: u64,
}

struct Connection {
    keys: KeyChooser,
    pending: VecDeque<Pending>,
    /// Requests generated so far (picks SET or GET along the ratio).
    generated: u64,
    /// Open loop: when the next request is due.
    next_due_ns: u64,
    /// With --verify: the last version this run SET, per key of this connection.
    versions: Vec<u32>,
}

struct Thread<'w> {
    w: &'w Workload,
    ring: Ring,
    connections: Vec<Connection>,
    stats: Stats,
    rng: fastrand::Rng,
    /// Requests this thread may still send (u64::MAX when bounded by time).
    budget: u64,
    outstanding: usize,
    /// Open loop: nanoseconds between two requests of one connection.
    interval_ns: Option<u64>,
    first_error: Option<String>,
    scratch: Vec<u8>,
    started: Instant,
}

/// Runs one client thread to the end of the workload. `barrier` lines the
/// threads up after their rings exist, so they start sending together;
/// `progress` receives the count of completed requests as it grows.
pub fn run(w: &Workload, plan: ThreadPlan, barrier: &std::sync::Barrier, progress: &AtomicU64) -> ThreadResult {
    let mut failures = Vec::new();
    if let Some(&cpu) = w.cpus.get(plan.index % w.cpus.len().max(1))
        && let Err(e) = crate::sys::pin_current_thread(cpu)
    {
        failures.push(format!("thread {}: cannot pin to cpu {cpu}: {e}", plan.index));
    }
    let connections = plan.sockets.len();
    let ring = Ring::new(plan.sockets);
    barrier.wait();
    let started = Instant::now();
    let ring = match ring {
        Ok(r) => r,
        Err(e) => {
            failures.push(format!("thread {}: {e}", plan.index));
            return ThreadResult { stats: Stats::default(), failures, first_error: None, finished: started };
        }
    };
    let total = w.total_connections() as u64;
    let interval_ns = w.rate.map(|rate| ((total as f64 / rate) * 1e9).max(1.0) as u64);
    let connections = (0..connections)
        .map(|i| {
            let global = (plan.first_connection + i) as u64;
            let keys = KeyChooser::new(w.key_pattern, w.key_space, global, total, w.verify);
            let versions = if w.verify { vec![0; keys.count() as usize] } else { Vec::new() };
            // Stagger the connections' schedules evenly over one interval.
            let next_due_ns = interval_ns.map_or(0, |iv| iv * global / total);
            Connection { keys, pending: VecDeque::new(), generated: 0, next_due_ns, versions }
        })
        .collect();
    let mut thread = Thread {
        w,
        ring,
        connections,
        stats: Stats::default(),
        rng: fastrand::Rng::with_seed(w.seed ^ (plan.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        budget: plan.requests.unwrap_or(u64::MAX),
        outstanding: 0,
        interval_ns,
        first_error: None,
        scratch: Vec::new(),
        started,
    };
    if let Err(e) = thread.drive(progress) {
        failures.push(format!("thread {}: {e}", plan.index));
    }
    let finished = Instant::now();
    ThreadResult { stats: thread.stats, failures, first_error: thread.first_error, finished }
}

impl Thread<'_> {
    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn drive(&mut self, progress: &AtomicU64) -> Result<(), String> {
        let deadline_ns = match self.w.stop {
            Stop::Duration(ns) => ns,
            Stop::Requests(_) => u64::MAX,
        };
        for c in 0..self.ring.len() {
            self.ring.arm_recv(c).map_err(|e| e.to_string())?;
        }
        let mut ready: Vec<usize> = (0..self.ring.len()).collect();
        let mut events = Vec::new();
        let mut drain_deadline_ns = None;
        loop {
            let now = self.now_ns();
            // Open loop: requests due before the deadline are all sent, even
            // those whose time passed while the thread waited.
            let issuing = self.budget > 0
                && match self.interval_ns {
                    Some(_) => self.connections.iter().any(|c| c.next_due_ns < deadline_ns),
                    None => now < deadline_ns,
                };
            let mut wake_ns = now + WAIT_MAX.as_nanos() as u64;
            if issuing {
                if self.interval_ns.is_some() {
                    // The open loop visits every connection each turn.
                    ready.clear();
                    for c in 0..self.connections.len() {
                        if let Some(due) = self.top_up(c, now, deadline_ns)? {
                            wake_ns = wake_ns.min(due);
                        }
                    }
                } else {
                    for c in ready.drain(..) {
                        self.top_up(c, now, deadline_ns)?;
                    }
                }
                wake_ns = wake_ns.min(deadline_ns);
            } else {
                ready.clear();
                if self.outstanding == 0 {
                    return Ok(());
                }
                let drain_by = *drain_deadline_ns.get_or_insert(now + DRAIN_TIMEOUT.as_nanos() as u64);
                if now > drain_by {
                    return Err(format!(
                        "{} requests still unanswered {DRAIN_TIMEOUT:?} after the run ended",
                        self.outstanding
                    ));
                }
            }
            let mut timeout_ns = wake_ns.saturating_sub(now);
            if issuing && self.interval_ns.is_some() && timeout_ns < SPIN_NS {
                timeout_ns = 0;
            }
            let timeout = Duration::from_nanos(timeout_ns);
            self.ring.wait(Some(timeout), &mut events).map_err(|e| format!("io_uring: {e}"))?;
            let now = self.now_ns();
            for event in events.drain(..) {
                match event {
                    Event::Received(c) => {
                        self.on_received(c, now)?;
                        ready.push(c);
                    }
                    Event::Sent(c) => ready.push(c),
                    Event::Closed(c) => return Err(format!("connection {c}: closed by the server")),
                    Event::Failed(c, errno) => {
                        return Err(format!("connection {c}: {}", std::io::Error::from_raw_os_error(errno)));
                    }
                }
            }
            progress.store(self.stats.requests(), Ordering::Relaxed);
        }
    }

    /// Queues the requests connection `c` may send now and starts sending
    /// them. In open loop, returns when its next request is due if it could
    /// send then without waiting for a reply.
    fn top_up(&mut self, c: usize, now: u64, deadline_ns: u64) -> Result<Option<u64>, String> {
        let pipeline = self.w.pipeline;
        let Some(buf) = self.ring.send_buffer(c) else { return Ok(None) };
        let conn = &mut self.connections[c];
        let mut due = None;
        while conn.pending.len() < pipeline && self.budget > 0 {
            let intended_ns = match self.interval_ns {
                None => now,
                Some(interval) => {
                    if conn.next_due_ns > now || conn.next_due_ns >= deadline_ns {
                        due = Some(conn.next_due_ns);
                        break;
                    }
                    let at = conn.next_due_ns;
                    conn.next_due_ns += interval;
                    at
                }
            };
            let cycle = (self.w.ratio.set + self.w.ratio.get) as u64;
            let command = if conn.generated % cycle < self.w.ratio.set as u64 { Command::Set } else { Command::Get };
            conn.generated += 1;
            let key = conn.keys.next(&mut self.rng);
            let version = match (command, self.w.verify) {
                (Command::Set, true) => {
                    let v = &mut conn.versions[conn.keys.position(key)];
                    *v = v.wrapping_add(1).max(1);
                    *v
                }
                (Command::Get, true) => conn.versions[conn.keys.position(key)],
                // Without --verify nothing is checked; SETs still vary values by key.
                (Command::Set, false) => 1,
                (Command::Get, false) => 0,
            };
            push_request(buf, self.w, command, key, version);
            conn.pending.push_back(Pending { command, key, version, intended_ns });
            self.budget -= 1;
            self.outstanding += 1;
        }
        self.ring.flush(c).map_err(|e| format!("io_uring: {e}"))?;
        Ok(due)
    }

    /// Takes every complete reply connection `c` received, then reads again.
    fn on_received(&mut self, c: usize, now: u64) -> Result<(), String> {
        loop {
            let data = self.ring.received(c);
            let (reply, used) = match resp::parse_reply(data) {
                Ok(Parsed::Complete(reply, used)) => (reply, used),
                Ok(Parsed::Incomplete) => break,
                Err(e) => return Err(format!("connection {c}: {e}")),
            };
            let conn = &mut self.connections[c];
            let Some(p) = conn.pending.pop_front() else {
                return Err(format!("connection {c}: a reply arrived with no request outstanding"));
            };
            self.outstanding -= 1;
            self.stats.record(p.command, now.saturating_sub(p.intended_ns));
            let w = self.w;
            let stats = &mut self.stats;
            let name = |key: u64| format!("{}{key}", w.key_prefix);
            match (p.command, reply) {
                (command, Reply::Error(text)) => {
                    stats.commands[command as usize].errors += 1;
                    if self.first_error.is_none() {
                        self.first_error =
                            Some(format!("{} {}: {}", command.name(), name(p.key), String::from_utf8_lossy(text)));
                    }
                }
                (Command::Set, Reply::Simple(b"OK")) => {}
                (Command::Get, Reply::Nil) => {
                    stats.commands[Command::Get as usize].misses += 1;
                    if p.version != 0 {
                        stats
                            .mismatch(|| format!("GET {}: nil, expected the value of SET #{}", name(p.key), p.version));
                    }
                }
                (Command::Get, Reply::Bulk(value)) => {
                    if p.version != 0 {
                        stats.verified += 1;
                        self.scratch.clear();
                        keys::push_value(
                            &mut self.scratch,
                            p.key,
                            p.version,
                            keys::value_len(p.key, p.version, w.data_size),
                        );
                        if value != &self.scratch[..] {
                            let shown = String::from_utf8_lossy(&value[..value.len().min(40)]).into_owned();
                            stats.mismatch(|| {
                                format!("GET {}: {shown:?}, expected the value of SET #{}", name(p.key), p.version)
                            });
                        }
                    }
                }
                (command, other) => {
                    stats.mismatch(|| format!("{} {}: unexpected reply {other:?}", command.name(), name(p.key)));
                }
            }
            self.ring.consume(c, used);
        }
        self.ring.arm_recv(c).map_err(|e| format!("connection {c}: {e}"))
    }
}

/// Appends `SET key value` or `GET key` to `out`.
fn push_request(out: &mut Vec<u8>, w: &Workload, command: Command, key: u64, version: u32) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(key).as_bytes();
    match command {
        Command::Set => out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n"),
        Command::Get => out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n"),
    }
    resp::push_bulk_header(out, w.key_prefix.len() + digits.len());
    out.extend_from_slice(w.key_prefix.as_bytes());
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
    if command == Command::Set {
        let len = keys::value_len(key, version, w.data_size);
        resp::push_bulk_header(out, len);
        keys::push_value(out, key, version, len);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Cli;
    use clap::Parser;

    #[test]
    fn requests_are_valid_resp() {
        let w = Cli::parse_from(["coreshard-bench", "--key-prefix", "k:", "-d", "5"]).workload().unwrap();
        let mut out = Vec::new();
        push_request(&mut out, &w, Command::Get, 42, 0);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$4\r\nk:42\r\n");
        out.clear();
        push_request(&mut out, &w, Command::Set, 7, 3);
        let mut value = Vec::new();
        keys::push_value(&mut value, 7, 3, 5);
        let mut want = Vec::new();
        resp::push_command(&mut want, &[b"SET", b"k:7", &value]);
        assert_eq!(out, want);
    }
}
