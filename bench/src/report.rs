//! Latency histograms per command and the report made from them: the final
//! table and the JSON document for scripts.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in nanoseconds from 1 ns up to this bound (larger
/// ones are clamped to it, and the max then reads as this bound).
const LATENCY_NS_MAX: u64 = 3_600 * 1_000_000_000;
/// Significant decimal digits the histograms keep (0.1% resolution).
const SIGNIFICANT_DIGITS: u8 = 3;
/// The percentiles reported.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

/// The commands the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Set = 0,
    Get = 1,
}

impl Command {
    pub const ALL: [Command; 2] = [Command::Set, Command::Get];

    pub fn name(self) -> &'static str {
        match self {
            Command::Set => "SET",
            Command::Get => "GET",
        }
    }
}

/// What one command type saw.
#[derive(Clone)]
pub struct CommandStats {
    pub latency_ns: Histogram<u64>,
    /// Error replies (`-ERR ...`).
    pub errors: u64,
    /// GETs answered with nil.
    pub misses: u64,
}

impl CommandStats {
    fn new() -> CommandStats {
        CommandStats {
            latency_ns: Histogram::new_with_bounds(1, LATENCY_NS_MAX, SIGNIFICANT_DIGITS)
                .expect("the bounds are valid constants"),
            errors: 0,
            misses: 0,
        }
    }
}

/// What a client thread (or, merged, the whole run) saw.
#[derive(Clone)]
pub struct Stats {
    pub commands: [CommandStats; 2],
    /// GETs whose reply was checked against the value this run set.
    pub verified: u64,
    /// GETs whose reply was not the value this run set last.
    pub mismatches: u64,
    /// A few mismatches, described, for the report.
    pub mismatch_examples: Vec<String>,
}

/// Mismatches described in the report at most.
const MISMATCH_EXAMPLES_MAX: usize = 5;

impl Default for Stats {
    fn default() -> Self {
        Stats {
            commands: [CommandStats::new(), CommandStats::new()],
            verified: 0,
            mismatches: 0,
            mismatch_examples: Vec::new(),
        }
    }
}

impl Stats {
    /// Records one reply to `command` that took `latency_ns`.
    #[inline]
    pub fn record(&mut self, command: Command, latency_ns: u64) {
        self.commands[command as usize].latency_ns.saturating_record(latency_ns.max(1));
    }

    pub fn mismatch(&mut self, description: impl FnOnce() -> String) {
        self.mismatches += 1;
        if self.mismatch_examples.len() < MISMATCH_EXAMPLES_MAX {
            self.mismatch_examples.push(description());
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.commands.iter_mut().zip(&other.commands) {
            // Both histograms have the same bounds, so adding cannot fail.
            let _ = mine.latency_ns.add(&theirs.latency_ns);
            mine.errors += theirs.errors;
            mine.misses += theirs.misses;
        }
        self.verified += other.verified;
        self.mismatches += other.mismatches;
        for e in &other.mismatch_examples {
            if self.mismatch_examples.len() < MISMATCH_EXAMPLES_MAX {
                self.mismatch_examples.push(e.clone());
            }
        }
    }

    /// Completed requests of all commands.
    pub fn requests(&self) -> u64 {
        self.commands.iter().map(|c| c.latency_ns.len()).sum()
    }
}

/// Latency summary of one row of the report, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub command: String,
    pub requests: u64,
    pub ops_per_sec: f64,
    pub errors: u64,
    pub misses: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub p99_99_ms: f64,
    pub max_ms: f64,
}

impl Row {
    fn new(command: &str, h: &Histogram<u64>, errors: u64, misses: u64, seconds: f64) -> Row {
        let ms = |ns: u64| ns as f64 / 1e6;
        let q = |p: f64| if h.is_empty() { 0.0 } else { ms(h.value_at_percentile(p)) };
        Row {
            command: command.to_string(),
            requests: h.len(),
            ops_per_sec: ops_per_sec(h.len(), seconds),
            errors,
            misses,
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1e6 },
            p50_ms: q(PERCENTILES[0]),
            p90_ms: q(PERCENTILES[1]),
            p99_ms: q(PERCENTILES[2]),
            p99_9_ms: q(PERCENTILES[3]),
            p99_99_ms: q(PERCENTILES[4]),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
        }
    }
}

/// Requests per second over `seconds` (0 for an empty or instant run).
pub fn ops_per_sec(requests: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { requests as f64 / seconds } else { 0.0 }
}

/// The report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub server: String,
    pub threads: usize,
    pub connections_per_thread: usize,
    pub pipeline: usize,
    pub ratio: String,
    pub key_space: u64,
    pub key_pattern: String,
    pub data_size: String,
    /// Target arrival rate (open loop), if any.
    pub rate: Option<f64>,
    pub seconds: f64,
    pub requests: u64,
    pub ops_per_sec: f64,
    /// Per command, then the `ALL` row.
    pub rows: Vec<Row>,
    pub verify: bool,
    pub verified: u64,
    pub mismatches: u64,
    pub mismatch_examples: Vec<String>,
    /// Connection and protocol failures; a run with any is not a valid measurement.
    pub failures: Vec<String>,
}

impl Report {
    /// Builds the rows from `stats` of a run that took `seconds`; the rest
    /// of the fields are the caller's.
    pub fn rows(stats: &Stats, seconds: f64) -> Vec<Row> {
        let mut all = Histogram::<u64>::new_from(&stats.commands[0].latency_ns);
        let mut rows = Vec::new();
        for command in Command::ALL {
            let c = &stats.commands[command as usize];
            let _ = all.add(&c.latency_ns);
            if !c.latency_ns.is_empty() {
                rows.push(Row::new(command.name(), &c.latency_ns, c.errors, c.misses, seconds));
            }
        }
        let errors = stats.commands.iter().map(|c| c.errors).sum();
        let misses = stats.commands.iter().map(|c| c.misses).sum();
        rows.push(Row::new("ALL", &all, errors, misses, seconds));
        rows
    }

    /// True when the run is free of failures, error replies and mismatches.
    pub fn clean(&self) -> bool {
        self.failures.is_empty()
            && self.mismatches == 0
            && self.rows.iter().all(|r| r.command != "ALL" || r.errors == 0)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} threads x {} connections, pipeline {}, SET:GET {}, {} keys ({}), values {} bytes{}",
            self.threads,
            self.connections_per_thread,
            self.pipeline,
            self.ratio,
            self.key_space,
            self.key_pattern,
            self.data_size,
            self.rate.map(|r| format!(", open loop at {r:.0} req/s")).unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "{:<6}{:>12}{:>14}{:>9}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "",
            "requests",
            "ops/s",
            "errors",
            "misses",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9",
            "p99.99",
            "max ms",
            "mean ms"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<6}{:>12}{:>14.0}{:>9}{:>9}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
                r.command,
                r.requests,
                r.ops_per_sec,
                r.errors,
                r.misses,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.p99_9_ms,
                r.p99_99_ms,
                r.max_ms,
                r.mean_ms
            );
        }
        let _ = writeln!(out, "{} requests in {:.3} s: {:.0} ops/s", self.requests, self.seconds, self.ops_per_sec);
        if self.verify || self.mismatches > 0 {
            let _ = writeln!(out, "verify: {} GETs checked, {} mismatches", self.verified, self.mismatches);
            for e in &self.mismatch_examples {
                let _ = writeln!(out, "  mismatch: {e}");
            }
        }
        for f in &self.failures {
            let _ = writeln!(out, "failure: {f}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut stats = Stats::default();
        // 1..=10000 microseconds, once each.
        for us in 1..=10_000u64 {
            stats.record(Command::Get, us * 1000);
        }
        stats.record(Command::Set, 2_000_000);
        stats.commands[Command::Get as usize].misses = 3;
        let rows = Report::rows(&stats, 2.0);
        assert_eq!(rows.len(), 3);
        let (set, get, all) = (&rows[0], &rows[1], &rows[2]);
        assert_eq!((set.command.as_str(), get.command.as_str(), all.command.as_str()), ("SET", "GET", "ALL"));
        assert_eq!((set.requests, get.requests, all.requests), (1, 10_000, 10_001));
        assert_eq!((get.ops_per_sec, all.ops_per_sec), (5_000.0, 5_000.5));
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(close(get.p50_ms, 5.0), "p50 {}", get.p50_ms);
        assert!(close(get.p90_ms, 9.0), "p90 {}", get.p90_ms);
        assert!(close(get.p99_ms, 9.9), "p99 {}", get.p99_ms);
        assert!(close(get.p99_9_ms, 9.99), "p99.9 {}", get.p99_9_ms);
        assert!(close(get.p99_99_ms, 10.0), "p99.99 {}", get.p99_99_ms);
        assert!(close(get.max_ms, 10.0) && close(set.max_ms, 2.0));
        assert!(close(get.mean_ms, 5.0005));
        assert_eq!((all.misses, get.misses, set.misses), (3, 3, 0));
        assert!(close(all.p50_ms, 5.0) && close(all.max_ms, 10.0));
    }

    #[test]
    fn merge_adds_threads_and_rates_divide_by_time() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for _ in 0..300 {
            a.record(Command::Set, 100);
            b.record(Command::Set, 300);
        }
        b.mismatch(|| "key:1".into());
        b.commands[0].errors = 2;
        a.merge(&b);
        assert_eq!((a.requests(), a.mismatches, a.mismatch_examples.len()), (600, 1, 1));
        let rows = Report::rows(&a, 0.5);
        assert_eq!(rows.len(), 2, "no GET row without GETs");
        assert_eq!((rows[0].ops_per_sec, rows[0].errors), (1200.0, 2));
        assert_eq!(ops_per_sec(10, 0.0), 0.0);
        // Zero requests: the row is there and all zero, not NaN.
        let empty = Report::rows(&Stats::default(), 1.0);
        assert_eq!(empty.len(), 1);
        assert_eq!((empty[0].p99_ms, empty[0].mean_ms, empty[0].max_ms), (0.0, 0.0, 0.0));
    }

    #[test]
    fn huge_latencies_clamp_instead_of_failing() {
        let mut s = Stats::default();
        s.record(Command::Get, u64::MAX);
        s.record(Command::Get, 0);
        let rows = Report::rows(&s, 1.0);
        assert_eq!(rows[0].requests, 2);
        assert!(rows[0].max_ms >= 3_600_000.0 * 0.999);
    }
}
