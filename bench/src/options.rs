//! Command-line options of `coreshard-bench`, in memtier_benchmark's spirit,
//! and the typed [`Workload`] they are checked into.

use clap::Parser;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Largest value size `--data-size` accepts (Redis's own bulk limit is 512 MiB;
/// a load generator has no use for more than this).
pub const DATA_SIZE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Most connections one client thread drives.
pub const CONNECTIONS_PER_THREAD_MAX: usize = 10_000;
/// Most requests one connection keeps outstanding.
pub const PIPELINE_MAX: usize = 10_000;
/// Most client threads.
pub const THREADS_MAX: usize = 1024;

/// An io_uring load generator for Redis-protocol servers: SET and GET traffic
/// at a given ratio, latency percentiles per command from HdrHistogram.
#[derive(Parser, Debug, Clone)]
#[command(name = "coreshard-bench", version)]
pub struct Cli {
    /// Server host name or address.
    #[arg(long, short = 's', default_value = "127.0.0.1")]
    pub host: String,
    /// Server TCP port.
    #[arg(long, short = 'p', default_value_t = 6379)]
    pub port: u16,
    /// Client threads, each with its own io_uring.
    #[arg(long, short = 't', default_value_t = 1)]
    pub threads: usize,
    /// Connections per thread.
    #[arg(long, short = 'c', default_value_t = 50)]
    pub connections: usize,
    /// Requests each connection keeps outstanding.
    #[arg(long, short = 'P', default_value_t = 1)]
    pub pipeline: usize,
    /// SET:GET ratio, e.g. 1:10 (one SET per ten GETs), 1:0 (SETs only).
    #[arg(long, default_value = "1:10")]
    pub ratio: Ratio,
    /// Prefix of every key; the key is the prefix followed by its index.
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,
    /// Number of distinct keys (indexes 0 .. N-1).
    #[arg(long, default_value_t = 100_000)]
    pub key_space: u64,
    /// Which keys requests use: `uniform` (alias `random`, `R`), `sequential`
    /// (alias `S`), or `zipf:S` with exponent S > 0 (e.g. `zipf:0.99`).
    #[arg(long, default_value = "uniform")]
    pub key_pattern: KeyPattern,
    /// Value size in bytes, or a range `MIN-MAX` (each SET picks a size in it).
    #[arg(long, short = 'd', default_value = "32")]
    pub data_size: DataSize,
    /// Total requests over all threads and connections (default 100000 when
    /// --test-time is not given).
    #[arg(long, short = 'n', conflicts_with = "test_time")]
    pub requests: Option<u64>,
    /// Run for this many seconds instead of a request count.
    #[arg(long)]
    pub test_time: Option<f64>,
    /// Open loop: total arrival rate in requests per second, spread evenly
    /// over all connections. Latency counts from each request's intended send
    /// time, so a stalled server shows in the percentiles.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Check that every GET returns what this run last SET for that key
    /// (keys are partitioned between connections so that order is defined);
    /// any mismatch makes the exit status non-zero.
    #[arg(long)]
    pub verify: bool,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Pin client thread i to the i-th CPU of this list (e.g. `1` or `2-5,8`).
    #[arg(long)]
    pub cpus: Option<CpuList>,
    /// Seed of the key and size choices (runs with one seed send the same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// An option value that does not parse or a combination that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

fn error<T>(msg: impl Into<String>) -> Result<T, OptionError> {
    Err(OptionError(msg.into()))
}

/// `--ratio SET:GET`: how many SETs and GETs in each cycle of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub set: u32,
    pub get: u32,
}

impl FromStr for Ratio {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let Some((set, get)) = s.split_once(':') else {
            return error(format!("ratio {s:?}: expected SET:GET, e.g. 1:10"));
        };
        let (Ok(set), Ok(get)) = (set.trim().parse::<u32>(), get.trim().parse::<u32>()) else {
            return error(format!("ratio {s:?}: both sides must be whole numbers"));
        };
        if set == 0 && get == 0 {
            return error(format!("ratio {s:?}: at least one side must be non-zero"));
        }
        if set.checked_add(get).is_none() {
            return error(format!("ratio {s:?}: too large"));
        }
        Ok(Ratio { set, get })
    }
}

/// `--key-pattern`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPattern {
    Uniform,
    Sequential,
    /// Zipf's law over the key indexes with this exponent: index 0 is the most
    /// requested, index i about (i+1)^-s as often.
    Zipf(f64),
}

impl FromStr for KeyPattern {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        match s {
            "uniform" | "random" | "R" => return Ok(KeyPattern::Uniform),
            "sequential" | "S" => return Ok(KeyPattern::Sequential),
            _ => {}
        }
        let Some(exponent) = s.strip_prefix("zipf:").or_else(|| s.strip_prefix("Z:")) else {
            return error(format!("key pattern {s:?}: expected uniform, sequential or zipf:EXPONENT"));
        };
        match exponent.parse::<f64>() {
            Ok(e) if e > 0.0 && e.is_finite() && e <= 10.0 => Ok(KeyPattern::Zipf(e)),
            _ => error(format!("key pattern {s:?}: the zipf exponent must be a number in (0, 10]")),
        }
    }
}

/// `--data-size N` or `MIN-MAX`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSize {
    pub min: usize,
    pub max: usize,
}

impl FromStr for DataSize {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let parse = |part: &str| {
            part.trim()
                .parse::<usize>()
                .map_err(|_| OptionError(format!("data size {s:?}: expected N or MIN-MAX bytes")))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let n = parse(s)?;
                (n, n)
            }
        };
        if min > max {
            return error(format!("data size {s:?}: MIN is larger than MAX"));
        }
        if max > DATA_SIZE_MAX_BYTES {
            return error(format!("data size {s:?}: at most {DATA_SIZE_MAX_BYTES} bytes"));
        }
        Ok(DataSize { min, max })
    }
}

/// `--cpus 1,3-5`: a list of CPU numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl FromStr for CpuList {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let mut cpus = Vec::new();
        for part in s.split(',') {
            let bad = || OptionError(format!("cpu list {s:?}: expected numbers and ranges such as 1,3-5"));
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => {
                    (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
                }
                None => {
                    let n = part.trim().parse::<usize>().map_err(|_| bad())?;
                    (n, n)
                }
            };
            if lo > hi || hi >= libc::CPU_SETSIZE as usize {
                return Err(bad());
            }
            cpus.extend(lo..=hi);
        }
        Ok(CpuList(cpus))
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many requests in total.
    Requests(u64),
    /// After this many nanoseconds.
    Duration(u64),
}

/// The checked settings of one run.
#[derive(Debug, Clone)]
pub struct Workload {
    pub host: String,
    pub port: u16,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    pub ratio: Ratio,
    pub key_prefix: String,
    pub key_space: u64,
    pub key_pattern: KeyPattern,
    pub data_size: DataSize,
    pub stop: Stop,
    /// Total requests per second, if open loop.
    pub rate: Option<f64>,
    pub verify: bool,
    pub cpus: Vec<usize>,
    pub seed: u64,
}

impl Workload {
    /// Total connections over all threads.
    pub fn total_connections(&self) -> usize {
        self.threads * self.connections
    }
}

impl Cli {
    /// Checks the combination of options.
    pub fn workload(&self) -> Result<Workload, OptionError> {
        if self.threads == 0 || self.threads > THREADS_MAX {
            return error(format!("--threads must be 1..={THREADS_MAX}"));
        }
        if self.connections == 0 || self.connections > CONNECTIONS_PER_THREAD_MAX {
            return error(format!("--connections must be 1..={CONNECTIONS_PER_THREAD_MAX}"));
        }
        if self.pipeline == 0 || self.pipeline > PIPELINE_MAX {
            return error(format!("--pipeline must be 1..={PIPELINE_MAX}"));
        }
        if self.key_space == 0 {
            return error("--key-space must be at least 1");
        }
        let total_connections = (self.threads * self.connections) as u64;
        if self.verify && self.key_space < total_connections {
            return error(format!(
                "--verify gives each connection its own keys: --key-space must be at least the number of connections ({total_connections})"
            ));
        }
        let stop = match (self.requests, self.test_time) {
            (Some(_), Some(_)) => return error("give --requests or --test-time, not both"),
            (Some(0), None) => return error("--requests must be at least 1"),
            (Some(n), None) => Stop::Requests(n),
            (None, Some(t)) if t > 0.0 && t.is_finite() && t <= 1e6 => Stop::Duration((t * 1e9) as u64),
            (None, Some(_)) => return error("--test-time must be a positive number of seconds"),
            (None, None) => Stop::Requests(100_000),
        };
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate.is_finite())
        {
            return error("--rate must be a positive number of requests per second");
        }
        Ok(Workload {
            host: self.host.clone(),
            port: self.port,
            threads: self.threads,
            connections: self.connections,
            pipeline: self.pipeline,
            ratio: self.ratio,
            key_prefix: self.key_prefix.clone(),
            key_space: self.key_space,
            key_pattern: self.key_pattern,
            data_size: self.data_size,
            stop,
            rate: self.rate,
            verify: self.verify,
            cpus: self.cpus.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
            seed: self.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("coreshard-bench").chain(args.iter().copied()))
    }

    fn workload(args: &[&str]) -> Result<Workload, String> {
        cli(args).map_err(|e| e.to_string())?.workload().map_err(|e| e.0)
    }

    #[test]
    fn ratios() {
        assert_eq!("1:10".parse(), Ok(Ratio { set: 1, get: 10 }));
        assert_eq!("1:0".parse(), Ok(Ratio { set: 1, get: 0 }));
        assert_eq!("0:3".parse(), Ok(Ratio { set: 0, get: 3 }));
        for bad in ["0:0", "1", "1:x", "-1:2", "1:2:3", "", ":", "4294967295:1"] {
            assert!(bad.parse::<Ratio>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn data_sizes() {
        assert_eq!("32".parse(), Ok(DataSize { min: 32, max: 32 }));
        assert_eq!("16-128".parse(), Ok(DataSize { min: 16, max: 128 }));
        assert_eq!("0".parse(), Ok(DataSize { min: 0, max: 0 }));
        for bad in ["128-16", "x", "1-", "-5", "1-2-3", "999999999999"] {
            assert!(bad.parse::<DataSize>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn key_patterns() {
        assert_eq!("uniform".parse(), Ok(KeyPattern::Uniform));
        assert_eq!("R".parse(), Ok(KeyPattern::Uniform));
        assert_eq!("sequential".parse(), Ok(KeyPattern::Sequential));
        assert_eq!("zipf:0.99".parse(), Ok(KeyPattern::Zipf(0.99)));
        assert_eq!("zipf:1".parse(), Ok(KeyPattern::Zipf(1.0)));
        for bad in ["zipf", "zipf:", "zipf:0", "zipf:-1", "zipf:nan", "zipf:inf", "gauss"] {
            assert!(bad.parse::<KeyPattern>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!("1".parse(), Ok(CpuList(vec![1])));
        assert_eq!("0,2-4".parse(), Ok(CpuList(vec![0, 2, 3, 4])));
        for bad in ["", "a", "3-1", "1,,2", "99999"] {
            assert!(bad.parse::<CpuList>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn defaults_and_combinations() {
        let w = workload(&[]).unwrap();
        assert_eq!((w.port, w.threads, w.connections, w.pipeline), (6379, 1, 50, 1));
        assert_eq!(w.ratio, Ratio { set: 1, get: 10 });
        assert_eq!(w.stop, Stop::Requests(100_000));
        let w = workload(&["--test-time", "2.5", "--rate", "1000", "--cpus", "1", "-c", "4", "-P", "8"]).unwrap();
        assert_eq!(w.stop, Stop::Duration(2_500_000_000));
        assert_eq!((w.rate, w.cpus, w.connections, w.pipeline), (Some(1000.0), vec![1], 4, 8));
        let w = workload(&["-n", "200000", "--ratio", "1:1", "--key-pattern", "zipf:0.99", "-d", "8-64"]).unwrap();
        assert_eq!(w.stop, Stop::Requests(200_000));
        assert_eq!(w.key_pattern, KeyPattern::Zipf(0.99));
        assert_eq!(w.data_size, DataSize { min: 8, max: 64 });
    }

    #[test]
    fn invalid_combinations_are_errors() {
        for bad in [
            &["--requests", "10", "--test-time", "1"][..],
            &["--requests", "0"],
            &["--test-time", "0"],
            &["--test-time", "-1"],
            &["--rate", "0"],
            &["--threads", "0"],
            &["--connections", "0"],
            &["--pipeline", "0"],
            &["--key-space", "0"],
            &["--verify", "--key-space", "10", "-c", "50"],
            &["--ratio", "0:0"],
            &["--data-size", "9-1"],
            &["--port", "70000"],
            &["--bogus"],
        ] {
            assert!(workload(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
