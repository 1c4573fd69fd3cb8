//! `coreshard-migration-load`: the cluster client of the slot-migration
//! benchmark (`bench/migration.sh`). It writes `--keys` keys into the moving
//! slots and `--outside-keys` keys elsewhere, then runs a steady SET/GET load
//! over both until the migration's JSON (`coreshard-admin migrate --json`)
//! appears in `--until-file`, and reports latency per phase of the
//! migration (before, snapshot and catch-up, cutover, after), inside and
//! outside the moving slots (library module `migration`).
//!
//! The load is open-loop by schedule: each thread sends its requests at
//! fixed intervals and measures each from when it was due, so a stalled
//! reply shows in the latency of every request queued behind it (no
//! coordinated omission). Each thread has one request in flight; inside and
//! outside keys, and the keys of each node (as the map is at the start), are
//! driven by separate threads, so a held write to a moving slot, or a busy
//! node, never delays a request to other keys. The slot map comes from
//! `CLUSTER SLOTS`; a MOVED reply updates the slot and re-reads the map from
//! the new owner, a TRYAGAIN is retried after 1 ms, and a request's latency
//! includes all of that. With one request in flight per thread, a server
//! that takes longer per request than a thread's interval makes the later
//! requests wait in the client, and their latency grows for as long as
//! that lasts: the report also gives each window's service time (from
//! sending to the reply), the part the server is directly responsible for.
//!
//! Exit status: 0 when the run finished and the report was printed, 1 when
//! the migration's JSON never came (or did not parse), 2 on a setup failure.

use clap::Parser;
use coreshard_bench::migration::{
    LatencyStats, Sample, SlotTable, Timeline, Window, keys, parse_moved, phases, service_samples, slice_p99s, slices,
};
use coreshard_engine::slot::key_slot;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Load client for the slot-migration benchmark (see the source's doc).
#[derive(Parser, Debug)]
#[command(name = "coreshard-migration-load")]
struct Cli {
    /// A node of the cluster (host:port) to read the slot map from.
    #[arg(long, default_value = "127.0.0.1:7100")]
    node: String,
    /// The moving slots, LO-HI.
    #[arg(long, default_value = "0-299")]
    slots: String,
    /// Keys in the moving slots (`m:<i>`).
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Keys outside them (`o:<i>`), on every node.
    #[arg(long, default_value_t = 100_000)]
    outside_keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    data_size: usize,
    /// Do not write the keys first (they are there from an earlier run).
    #[arg(long)]
    skip_load: bool,
    /// Total requests per second, inside and outside together.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Share of the requests on keys inside the moving slots.
    #[arg(long, default_value_t = 0.5)]
    inside_share: f64,
    /// Share of the requests that are SETs (the rest are GETs).
    #[arg(long, default_value_t = 0.5)]
    set_share: f64,
    /// Threads (one request in flight each) for each side (inside, outside)
    /// and node.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Created once the keys are written and the steady load starts.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// The load stops when this file appears; it holds the migration's
    /// `coreshard-admin migrate --json` line (write it elsewhere and rename).
    #[arg(long)]
    until_file: PathBuf,
    /// Stop anyway after this many seconds of steady load.
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
    /// The first milliseconds of the steady load are left out of `before`.
    #[arg(long, default_value_t = 1_000)]
    warmup_ms: u64,
    /// The cutover window lasts this long past the end of the hold.
    #[arg(long, default_value_t = 100)]
    margin_ms: u64,
    /// Write the full report (every window, both sides) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write every request here, one CSV line each (header first).
    #[arg(long)]
    samples: Option<PathBuf>,
}

/// A RESP2 reply.
#[derive(Debug)]
enum Value {
    Simple,
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Value>),
}

/// Requests longer than this are refused by the server anyway; a reply that
/// claims more is a protocol error here.
const BULK_MAX: usize = 512 << 20;

fn read_value(r: &mut BufReader<TcpStream>) -> std::io::Result<Value> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("empty reply line"))?;
    let num = || rest.parse::<i64>().map_err(|_| bad("bad length"));
    Ok(match kind {
        "+" => Value::Simple,
        "-" => Value::Error(rest.to_string()),
        ":" => Value::Int(num()?),
        "$" => match usize::try_from(num()?) {
            Err(_) => Value::Bulk(None),
            Ok(n) if n > BULK_MAX => return Err(bad("bulk too long")),
            Ok(n) => {
                let mut data = vec![0; n + 2];
                r.read_exact(&mut data)?;
                data.truncate(n);
                Value::Bulk(Some(data))
            }
        },
        "*" => match usize::try_from(num()?) {
            Err(_) => Value::Array(Vec::new()),
            Ok(n) => {
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(read_value(r)?);
                }
                Value::Array(items)
            }
        },
        _ => return Err(bad("unknown reply type")),
    })
}

fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One blocking connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
        Ok(Conn { reader: BufReader::with_capacity(64 << 10, stream), writer, host })
    }

    fn call(&mut self, request: &[u8]) -> std::io::Result<Value> {
        self.writer.write_all(request)?;
        read_value(&mut self.reader)
    }

    /// `CLUSTER SLOTS` as (first, last, primary's host:port).
    fn cluster_slots(&mut self) -> Result<Vec<(u16, u16, String)>, String> {
        let mut req = Vec::new();
        encode(&mut req, &[b"CLUSTER", b"SLOTS"]);
        let Value::Array(ranges) = self.call(&req).map_err(|e| e.to_string())? else {
            return Err("CLUSTER SLOTS: not an array".into());
        };
        let mut out = Vec::new();
        for range in ranges {
            let Value::Array(items) = range else { return Err("CLUSTER SLOTS: bad range".into()) };
            let (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(Value::Array(primary))) =
                (items.first(), items.get(1), items.get(2))
            else {
                return Err("CLUSTER SLOTS: bad range".into());
            };
            let (Some(Value::Bulk(Some(host))), Some(Value::Int(port))) = (primary.first(), primary.get(1)) else {
                return Err("CLUSTER SLOTS: bad node".into());
            };
            let host = if host.is_empty() { self.host.clone() } else { String::from_utf8_lossy(host).into_owned() };
            let (Ok(lo), Ok(hi)) = (u16::try_from(*lo), u16::try_from(*hi)) else {
                return Err("CLUSTER SLOTS: bad slot".into());
            };
            out.push((lo, hi, format!("{host}:{port}")));
        }
        Ok(out)
    }
}

fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Writes every key once, pipelined in batches, to the node that owns it.
fn load(table: &SlotTable, keys: &[Vec<u8>], value: &[u8]) -> Result<(), String> {
    const BATCH: usize = 1_000;
    let mut by_owner: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for k in keys {
        let addr = table.addr(key_slot(k)).ok_or("a key's slot has no owner")?;
        by_owner.entry(addr).or_default().push(k);
    }
    for (addr, keys) in by_owner {
        let mut conn = Conn::open(addr)?;
        let mut req = Vec::with_capacity(BATCH * (value.len() + 48));
        for chunk in keys.chunks(BATCH) {
            req.clear();
            for k in chunk {
                encode(&mut req, &[b"SET", k, value]);
            }
            conn.writer.write_all(&req).map_err(|e| format!("{addr}: {e}"))?;
            for _ in chunk {
                match read_value(&mut conn.reader).map_err(|e| format!("{addr}: {e}"))? {
                    Value::Error(e) => return Err(format!("{addr}: SET: {e}")),
                    _ => continue,
                }
            }
        }
    }
    Ok(())
}

/// What one load thread saw.
#[derive(Default)]
struct ThreadResult {
    samples: Vec<Sample>,
    first_error: Option<String>,
}

/// Most redirects (MOVED or TRYAGAIN) one request follows.
const REDIRECTS_MAX: usize = 50;

/// Runs one request to its final reply: (moved, tryagain, error).
fn execute(
    conns: &mut HashMap<String, Conn>,
    table: &mut SlotTable,
    slot: u16,
    request: &[u8],
    first_error: &mut Option<String>,
) -> (bool, bool, bool) {
    let (mut moved, mut tryagain) = (false, false);
    let mut fail = |why: String, moved, tryagain| {
        first_error.get_or_insert(why);
        (moved, tryagain, true)
    };
    for _ in 0..REDIRECTS_MAX {
        let Some(addr) = table.addr(slot).map(str::to_string) else {
            return fail(format!("slot {slot} has no owner"), moved, tryagain);
        };
        if !conns.contains_key(&addr) {
            match Conn::open(&addr) {
                Ok(c) => conns.insert(addr.clone(), c),
                Err(e) => return fail(e, moved, tryagain),
            };
        }
        let Some(conn) = conns.get_mut(&addr) else { continue };
        match conn.call(request) {
            Ok(Value::Error(e)) if e.starts_with("MOVED ") => {
                moved = true;
                let Some((s, to)) = parse_moved(&e) else { return fail(e, moved, tryagain) };
                table.moved(s, &to);
                // Re-read the whole map from the new owner, so that the other
                // moved slots need no redirect of their own.
                let fresh = Conn::open(&to).and_then(|mut c| c.cluster_slots());
                if let Ok(ranges) = fresh {
                    *table = SlotTable::from_ranges(&ranges);
                    table.moved(s, &to);
                }
            }
            Ok(Value::Error(e)) if e.starts_with("TRYAGAIN") => {
                tryagain = true;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(Value::Error(e)) => return fail(e, moved, tryagain),
            Ok(_) => return (moved, tryagain, false),
            Err(e) => {
                conns.remove(&addr);
                return fail(format!("{addr}: {e}"), moved, tryagain);
            }
        }
    }
    fail(format!("more than {REDIRECTS_MAX} redirects"), moved, tryagain)
}

/// What a load thread works on.
struct Lane {
    seed: u64,
    keys: Arc<Vec<Vec<u8>>>,
    inside: bool,
    interval: Duration,
    set_share: f64,
    value: Arc<Vec<u8>>,
    table: SlotTable,
}

/// Sends a request every `lane.interval` (measured from `start`) until `stop`.
fn drive(lane: Lane, start: Instant, start_unix_us: u64, stop: &AtomicBool) -> ThreadResult {
    let mut rng = fastrand::Rng::with_seed(lane.seed);
    let mut table = lane.table;
    let mut conns = HashMap::new();
    let mut result = ThreadResult::default();
    let mut request = Vec::with_capacity(lane.value.len() + 64);
    // Threads start at different phases of their interval.
    let mut due = start + lane.interval.mul_f64(rng.f64());
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let key = &lane.keys[rng.usize(..lane.keys.len())];
        let slot = key_slot(key);
        request.clear();
        if rng.f64() < lane.set_share {
            encode(&mut request, &[b"SET", key, &lane.value]);
        } else {
            encode(&mut request, &[b"GET", key]);
        }
        // Late when the previous request (or the machine) held this thread up.
        let late_us = due.elapsed().as_micros() as u64;
        let (moved, tryagain, error) = execute(&mut conns, &mut table, slot, &request, &mut result.first_error);
        let latency_us = due.elapsed().as_micros() as u64;
        let due_us = start_unix_us + due.duration_since(start).as_micros() as u64;
        result.samples.push(Sample { due_us, late_us, latency_us, slot, inside: lane.inside, moved, tryagain, error });
        due += lane.interval;
    }
    result
}

/// A number from the migration's JSON.
fn field(json: &serde_json::Value, name: &str) -> Result<u64, String> {
    json.get(name).and_then(serde_json::Value::as_u64).ok_or_else(|| format!("the migration's JSON has no {name}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("coreshard-migration-load: {e}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), (u8, String)> {
    let setup = |e: String| (2, e);
    let (lo, hi) = cli.slots.split_once('-').unwrap_or((&cli.slots, &cli.slots));
    let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
        return Err(setup(format!("--slots {}: expected LO-HI", cli.slots)));
    };
    if cli.threads == 0 || cli.rate.is_nan() || cli.rate <= 0.0 || !(0.0..=1.0).contains(&cli.inside_share) {
        return Err(setup("--threads and --rate must be positive, --inside-share within 0..1".into()));
    }
    let t0 = Instant::now();
    let inside = Arc::new(keys("m:", lo, hi, true, cli.keys));
    let outside = Arc::new(keys("o:", lo, hi, false, cli.outside_keys));
    eprintln!("keys chosen in {:.1}s", t0.elapsed().as_secs_f64());
    let table = SlotTable::from_ranges(&Conn::open(&cli.node).and_then(|mut c| c.cluster_slots()).map_err(setup)?);
    let value = Arc::new(vec![b'v'; cli.data_size]);
    if !cli.skip_load {
        let t0 = Instant::now();
        load(&table, &inside, &value).map_err(setup)?;
        load(&table, &outside, &value).map_err(setup)?;
        eprintln!("{} + {} keys written in {:.1}s", inside.len(), outside.len(), t0.elapsed().as_secs_f64());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let start_unix_us = unix_us();
    let mut handles = Vec::new();
    // Each side's keys by the node that holds them at the start, each group
    // driven by its own threads at its share of the side's rate: a request
    // that one busy node holds up delays no request to another node.
    let mut seed = 0;
    for (side_keys, is_inside, share) in [(&inside, true, cli.inside_share), (&outside, false, 1.0 - cli.inside_share)]
    {
        for (n, addr) in table.addrs.iter().enumerate() {
            let group: Vec<Vec<u8>> =
                side_keys.iter().filter(|k| table.owner[usize::from(key_slot(k))] == Some(n)).cloned().collect();
            let per_thread = cli.rate * share * group.len() as f64 / side_keys.len().max(1) as f64 / cli.threads as f64;
            if per_thread <= 0.0 || group.is_empty() {
                continue;
            }
            let group = Arc::new(group);
            for i in 0..cli.threads {
                seed += 1;
                let lane = Lane {
                    seed,
                    keys: group.clone(),
                    inside: is_inside,
                    interval: Duration::from_secs_f64(1.0 / per_thread),
                    set_share: cli.set_share,
                    value: value.clone(),
                    table: table.clone(),
                };
                let stop = stop.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("load-{}-{n}-{i}", if is_inside { "in" } else { "out" }))
                    .spawn(move || drive(lane, start, start_unix_us, &stop))
                    .map_err(|e| setup(format!("cannot start a thread for {addr}: {e}")))?;
                handles.push(handle);
            }
        }
    }
    if let Some(path) = &cli.ready_file {
        std::fs::write(path, format!("{start_unix_us}\n")).map_err(|e| setup(e.to_string()))?;
    }
    let migration = loop {
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(text) = std::fs::read_to_string(&cli.until_file) {
            break serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("{e} in {text:?}"));
        }
        if start.elapsed().as_secs_f64() > cli.max_seconds {
            break Err(format!("no migration JSON in {} after {}s", cli.until_file.display(), cli.max_seconds));
        }
    };
    stop.store(true, Ordering::Relaxed);
    let load_end_us = unix_us();
    let mut samples = Vec::new();
    let mut first_error = None;
    for h in handles {
        let r = h.join().map_err(|_| (2, "a load thread panicked".to_string()))?;
        samples.extend(r.samples);
        first_error = first_error.or(r.first_error);
    }
    let migration = migration.map_err(|e| (1, e))?;
    let num = |name| field(&migration, name).map_err(|e| (1, e));
    let timeline = Timeline {
        load_start_us: start_unix_us,
        migration_start_us: num("started_unix_us")?,
        cutover_us: num("cutover_unix_us")?,
        pause_us: num("pause_us")?,
        load_end_us,
    };
    let windows = phases(&timeline, cli.warmup_ms * 1000, cli.margin_ms * 1000);
    let stats: Vec<(LatencyStats, LatencyStats)> =
        windows.iter().map(|w| (LatencyStats::of(&samples, w, true), LatencyStats::of(&samples, w, false))).collect();
    let service = service_samples(&samples);
    let service_stats: Vec<(LatencyStats, LatencyStats)> =
        windows.iter().map(|w| (LatencyStats::of(&service, w, true), LatencyStats::of(&service, w, false))).collect();
    // Outside the moving slots, per node (as the map was at the start), and
    // a time series of both sides in 50 ms slices from 1 s before the
    // migration to the end.
    let by_node: Vec<_> = table
        .addrs
        .iter()
        .enumerate()
        .map(|(n, addr)| {
            let on_node = |s: &Sample| !s.inside && table.owner[usize::from(s.slot)] == Some(n);
            serde_json::json!({
                "node": addr,
                "windows": windows.iter().map(|w| serde_json::json!({
                    "name": w.name, "outside": LatencyStats::of_where(&samples, w, on_node),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let span = Window {
        name: "series",
        from_us: timeline.migration_start_us.saturating_sub(1_000_000),
        to_us: timeline.load_end_us,
    };
    let series: Vec<_> = slices(&span, 50_000)
        .iter()
        .map(|w| {
            serde_json::json!({
                "from_ms": (w.from_us as i64 - timeline.migration_start_us as i64) / 1000,
                "inside": LatencyStats::of(&samples, w, true),
                "outside": LatencyStats::of(&samples, w, false),
            })
        })
        .collect();
    // The noise: outside p99 of each slice of `before` as long as the
    // cutover window.
    let cutover_len = windows[2].to_us - windows[2].from_us;
    let noise = slice_p99s(&samples, &windows[0], cutover_len, false);
    let noise_median = noise.get(noise.len() / 2).copied().unwrap_or(0);
    let noise_max = noise.last().copied().unwrap_or(0);
    let report = serde_json::json!({
        "migration": migration,
        "rate": cli.rate,
        "threads_per_side": cli.threads,
        "inside_share": cli.inside_share,
        "set_share": cli.set_share,
        "requests": samples.len(),
        "moved": samples.iter().filter(|s| s.moved).count(),
        "tryagain": samples.iter().filter(|s| s.tryagain).count(),
        "errors": samples.iter().filter(|s| s.error).count(),
        "first_error": first_error,
        "windows": windows.iter().zip(stats.iter().zip(&service_stats)).map(|(w, ((i, o), (si, so)))| serde_json::json!({
            "name": w.name, "from_us": w.from_us, "to_us": w.to_us, "inside": i, "outside": o,
            "inside_service": si, "outside_service": so,
        })).collect::<Vec<_>>(),
        "outside_p99_before_slices_us": noise,
        "outside_by_node": by_node,
        "series_50ms_from_migration_start": series,
    });
    if let Some(path) = &cli.samples {
        let mut csv = String::from("due_unix_us,late_us,latency_us,slot,inside,moved,tryagain,error\n");
        for s in &samples {
            let b = |v: bool| u8::from(v);
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{}",
                s.due_us,
                s.late_us,
                s.latency_us,
                s.slot,
                b(s.inside),
                b(s.moved),
                b(s.tryagain),
                b(s.error)
            );
        }
        std::fs::write(path, csv).map_err(|e| (2, format!("{}: {e}", path.display())))?;
    }
    if let Some(path) = &cli.json {
        std::fs::write(path, format!("{report:#}\n")).map_err(|e| (2, format!("{}: {e}", path.display())))?;
    }
    let (keys_moved, bytes, seconds) = (num("keys")?, num("bytes")?, migration["seconds"].as_f64().unwrap_or(0.0));
    let per_s = |n: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
    let (before, snapshot, cutover) = (&stats[0], &stats[1], &stats[2]);
    let ratio = |during: u64| if before.1.p99_us > 0 { during as f64 / before.1.p99_us as f64 } else { 0.0 };
    println!(
        "keys={keys_moved} MB={:.1} wall_s={seconds:.2} keys_per_s={:.0} MB_per_s={:.1} pause_us={} \
         in_cutover_max_us={} in_cutover_n={} out_p99_before_us={} out_p99_snapshot_us={} out_p99_cutover_us={} \
         out_cutover_n={} p99_ratio_cutover={:.2} p99_ratio_snapshot={:.2} out_max_cutover_us={} \
         out_p99_before_slices_median_us={noise_median} out_p99_before_slices_max_us={noise_max} \
         svc_out_p99_before_us={} svc_out_p99_snapshot_us={} svc_out_p99_cutover_us={} svc_in_max_cutover_us={} \
         in_p99_before_us={} in_p99_snapshot_us={} requests={} moved={} tryagain={} errors={}",
        bytes as f64 / 1e6,
        per_s(keys_moved as f64),
        per_s(bytes as f64 / 1e6),
        timeline.pause_us,
        cutover.0.max_us,
        cutover.0.count,
        before.1.p99_us,
        snapshot.1.p99_us,
        cutover.1.p99_us,
        cutover.1.count,
        ratio(cutover.1.p99_us),
        ratio(snapshot.1.p99_us),
        cutover.1.max_us,
        service_stats[0].1.p99_us,
        service_stats[1].1.p99_us,
        service_stats[2].1.p99_us,
        service_stats[2].0.max_us,
        before.0.p99_us,
        snapshot.0.p99_us,
        report["requests"],
        report["moved"],
        report["tryagain"],
        report["errors"],
    );
    if let Some(e) = first_error {
        eprintln!("first error reply: {e}");
    }
    Ok(())
}
