//! `coreshard-bench`: a load generator for Redis-protocol servers, and the
//! criterion micro-benchmarks of coreshard.
//!
//! # The load generator
//!
//! `coreshard-bench --port 6379 --threads 2 --connections 50 --ratio 1:10`
//! sends SET and GET requests over many connections and reports throughput
//! and latency percentiles per command (BENCHMARKS.md, "Load generator").
//! It is built so that the client is not the bottleneck: each thread drives
//! all its connections through one io_uring, completion-based, with no async
//! runtime, and builds requests straight into each connection's send buffer.
//!
//! ```text
//!  main thread: options -> connect all sockets -> spawn -> progress line -> report
//!                                                   |
//!        +------------------------------------------+--------------------------+
//!        v                                                                     v
//!  client thread 0 (pinned with --cpus)                      client thread N-1
//!  +------------------------------------------+
//!  | ring (sys.rs): send/recv per connection  |   requests: keys.rs picks key and
//!  |   conn 0 .. conn C-1, each with up to    |   value, resp.rs encodes;
//!  |   --pipeline requests outstanding        |   replies: resp.rs parses in place,
//!  | one submit+wait per loop turn            |   report.rs records latency in
//!  +------------------------------------------+   per-command HdrHistograms
//!        |  Stats (histograms, counts) at the end                              |
//!        +----------------------------> merged into the Report <---------------+
//! ```
//!
//! Modules: [`options`] (command line), [`keys`] (key patterns, Zipf, values),
//! [`resp`] (request encoding, incremental reply parsing), [`report`]
//! (histograms, table, JSON), `client` (one thread's loop) and `sys` (the
//! only `unsafe`: the io_uring submissions and CPU pinning). [`migration`]
//! holds the pure parts of the second binary, `coreshard-migration-load`,
//! the cluster client of the slot-migration benchmark (`bench/migration.sh`).
//!
//! # Micro-benchmarks
//!
//! The criterion benches live in `benches/`:
//!
//! - `resp` (`benches/resp.rs`): the RESP request parser
//!   (`coreshard_net::resp::RequestParser::parse`) on a pipeline of 16
//!   `SET key <32 bytes>` frames, a single GET frame, a SET with a 1 MiB bulk
//!   (which the parser records without copying) and 16 inline GETs; and the
//!   reply encoder (`coreshard_engine::Reply`) writing 16 bulk replies of 32
//!   bytes. Throughput is reported in commands and bytes.
//! - `keyspace` (`benches/keyspace.rs`): commands executed directly through the
//!   command table, as a shard runs them, over a keyspace of 100k keys of 16
//!   bytes with 32-byte values: SET of a new key, SET over an existing key,
//!   GET hit, GET miss, HSET into a small hash, and a raw `Db::get` lookup.
//!   Arguments are built before the timed loop, so only execution is measured.
//! - `zset` (`benches/zset.rs`): sorted set commands on one set of 100k
//!   members, shaped as redis-benchmark's `zadd` test with `-r 100000`
//!   (members `element:` and 12 digits, random integer scores): ZADD of new
//!   members, ZADD moving a member to a new score, ZSCORE, ZRANK, ZRANGE of
//!   10 elements WITHSCORES, ZRANGEBYSCORE ... LIMIT 0 10, and ZREM with ZADD.
//!
//! Run them all with `cargo bench -p coreshard-bench`, or one file with
//! `cargo bench -p coreshard-bench --bench resp`. Criterion's own options go
//! after `--` (this library is not a bench target), for example a short run
//! filtered by name: `cargo bench -p coreshard-bench -- --measurement-time 2 get_hit`.
//!
//! To compare a change against a reference, save a baseline on the reference
//! with `cargo bench -p coreshard-bench -- --save-baseline main`,
//! then run `cargo bench -p coreshard-bench -- --baseline main` on
//! the change: criterion reports each bench's difference from the saved run
//! (kept under `target/criterion/`). Compare only runs taken on the same,
//! otherwise idle machine.

mod client;
pub mod keys;
pub mod migration;
pub mod options;
pub mod report;
pub mod resp;
mod sys;

use options::{KeyPattern, Stop, Workload};

/// Cycles through `items`, one per call (prepared arguments in the
/// criterion benches).
pub struct Cycle<'a, T> {
    items: &'a [T],
    next: usize,
}

impl<'a, T> Cycle<'a, T> {
    /// Starts at the first of `items` (which must not be empty).
    pub fn new(items: &'a [T]) -> Self {
        Cycle { items, next: 0 }
    }

    /// The next item, wrapping around.
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> &'a T {
        let item = &self.items[self.next];
        self.next += 1;
        if self.next == self.items.len() {
            self.next = 0;
        }
        item
    }
}
use report::{Report, Stats};
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How often the live progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Connects every connection of the run, in thread order.
fn connect(w: &Workload) -> Result<Vec<Vec<OwnedFd>>, String> {
    (0..w.threads)
        .map(|_| {
            (0..w.connections)
                .map(|_| {
                    let stream = TcpStream::connect((w.host.as_str(), w.port))
                        .map_err(|e| format!("cannot connect to {}:{}: {e}", w.host, w.port))?;
                    stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
                    Ok(OwnedFd::from(stream))
                })
                .collect()
        })
        .collect()
}

/// Runs the workload and returns its report. `progress` draws a one-line
/// live display on stderr once a second (callers pass true only when stdout
/// is a terminal). Errors are setup failures (connecting); failures during
/// the run are in the report.
pub fn run(w: &Workload, progress: bool) -> Result<Report, String> {
    let sockets = connect(w)?;
    let barrier = Arc::new(Barrier::new(w.threads + 1));
    let counters: Arc<Vec<AtomicU64>> = Arc::new((0..w.threads).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, sockets)| {
            let requests = match w.stop {
                Stop::Requests(n) => Some(n / w.threads as u64 + u64::from((index as u64) < n % w.threads as u64)),
                Stop::Duration(_) => None,
            };
            let plan = client::ThreadPlan { index, first_connection: index * w.connections, requests, sockets };
            let (w, barrier, counters) = (w.clone(), barrier.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("client-{index}"))
                .spawn(move || client::run(&w, plan, &barrier, &counters[index]))
                .map_err(|e| format!("cannot start a client thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    barrier.wait();
    let started = Instant::now();
    if progress {
        show_progress(w, &handles, &counters, started);
    }
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    let mut first_error = None;
    let mut finished = started;
    for h in handles {
        match h.join() {
            Ok(r) => {
                stats.merge(&r.stats);
                failures.extend(r.failures);
                first_error = first_error.or(r.first_error);
                finished = finished.max(r.finished);
            }
            Err(_) => failures.push("a client thread panicked".into()),
        }
    }
    let errors: u64 = stats.commands.iter().map(|c| c.errors).sum();
    if let Some(e) = first_error {
        failures.push(format!("{errors} error replies, the first to {e}"));
    }
    let seconds = finished.duration_since(started).as_secs_f64();
    let requests = stats.requests();
    Ok(Report {
        server: format!("{}:{}", w.host, w.port),
        threads: w.threads,
        connections_per_thread: w.connections,
        pipeline: w.pipeline,
        ratio: format!("{}:{}", w.ratio.set, w.ratio.get),
        key_space: w.key_space,
        key_pattern: match w.key_pattern {
            KeyPattern::Uniform => "uniform".into(),
            KeyPattern::Sequential => "sequential".into(),
            KeyPattern::Zipf(s) => format!("zipf:{s}"),
        },
        data_size: if w.data_size.min == w.data_size.max {
            w.data_size.min.to_string()
        } else {
            format!("{}-{}", w.data_size.min, w.data_size.max)
        },
        rate: w.rate,
        seconds,
        requests,
        ops_per_sec: report::ops_per_sec(requests, seconds),
        rows: Report::rows(&stats, seconds),
        verify: w.verify,
        verified: stats.verified,
        mismatches: stats.mismatches,
        mismatch_examples: stats.mismatch_examples,
        failures,
    })
}

/// Redraws `[  3s] 152,301 ops/s, 457,000 requests (45%)` until the threads end.
fn show_progress(
    w: &Workload,
    handles: &[std::thread::JoinHandle<client::ThreadResult>],
    counters: &[AtomicU64],
    started: Instant,
) {
    let total = |c: &[AtomicU64]| c.iter().map(|a| a.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>();
    let mut last = (started, 0u64);
    let mut stderr = std::io::stderr();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now.duration_since(last.0) < PROGRESS_INTERVAL {
            continue;
        }
        let done = total(counters);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        let share = match w.stop {
            Stop::Requests(n) => done as f64 / n as f64,
            Stop::Duration(ns) => now.duration_since(started).as_nanos() as f64 / ns as f64,
        };
        let _ = write!(
            stderr,
            "\r[{:>4.0}s] {rate:>12.0} ops/s, {done} requests ({:.0}%)   ",
            now.duration_since(started).as_secs_f64(),
            (share * 100.0).min(100.0)
        );
        let _ = stderr.flush();
        last = (now, done);
    }
    let _ = writeln!(stderr);
}
