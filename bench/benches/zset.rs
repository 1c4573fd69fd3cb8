//! Sorted set commands against one large sorted set, executed through the
//! command table as a shard runs them (as `keyspace.rs` does for strings).
//!
//! The set and the arguments follow redis-benchmark's `zadd` test with
//! `-r 100000`: one key, members `element:` and 12 random digits, scores of 12
//! random digits, both drawn from 0..100,000, so the set holds about 100,000
//! members and most ZADDs move an existing member to a new score. Arguments
//! are built before the timed loop, from a fixed seed.

use coreshard_bench::Cycle;
use coreshard_engine::cmd::Handler;
use coreshard_engine::{CommandTable, Ctx, Keyspace, Kind, OwnedArgs, Proto, Reply, UnixMs};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Members (and score values) drawn from 0..RANDOM_RANGE.
const RANDOM_RANGE: usize = 100_000;
/// Distinct argument lists cycled through by each bench.
const ARGS: usize = 100_000;
/// Elements each range bench returns.
const RANGE_ELEMENTS: usize = 10;
/// The key of the set.
const KEY: &[u8] = b"myzset";

fn handler(name: &str) -> Handler {
    match CommandTable::get().lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} is registered")).kind {
        Kind::Keyed(h) => h,
        _ => panic!("{name} is not a keyed command"),
    }
}

fn member(i: usize) -> Vec<u8> {
    format!("element:{i:012}").into_bytes()
}

fn digits(i: usize) -> Vec<u8> {
    format!("{i:012}").into_bytes()
}

#[inline]
fn exec(h: Handler, ks: &mut Keyspace, now: UnixMs, args: &OwnedArgs, out: &mut Vec<u8>) {
    out.clear();
    let mut ctx = Ctx { ks, db: 0, now, args: args.view() };
    h(&mut ctx, &mut Reply::new(out, Proto::Resp2));
}

fn zadd_args(rng: &mut fastrand::Rng) -> Vec<OwnedArgs> {
    (0..ARGS)
        .map(|_| {
            let (s, m) = (rng.usize(..RANDOM_RANGE), rng.usize(..RANDOM_RANGE));
            OwnedArgs::from_parts([b"ZADD".as_slice(), KEY, &digits(s), &member(m)])
        })
        .collect()
}

fn commands(c: &mut Criterion) {
    let handlers = ["zadd", "zscore", "zrank", "zrange", "zrangebyscore", "zrem"].map(handler);
    let [zadd, zscore, zrank, zrange, zrangebyscore, zrem] = handlers;
    let now = coreshard_engine::unix_ms();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut out = Vec::with_capacity(1024);
    let keyspace = || Keyspace::new(16, coreshard_engine::slot::ShardSlots::all());

    // Every member once, with a random score: the set the other benches use.
    let fill: Vec<OwnedArgs> = (0..RANDOM_RANGE)
        .map(|m| OwnedArgs::from_parts([b"ZADD".as_slice(), KEY, &digits(rng.usize(..RANDOM_RANGE)), &member(m)]))
        .collect();
    let mut full = keyspace();
    for a in &fill {
        exec(zadd, &mut full, now, a, &mut out);
        assert_eq!(out, b":1\r\n");
    }

    let mut g = c.benchmark_group("zset");
    g.throughput(Throughput::Elements(1));

    // ZADD of members that are not there yet, into a set growing from empty
    // to 100k members (a fresh keyspace per round, outside the timed region).
    g.bench_function("zadd_new", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(fill.len() as u64) as usize;
                let mut ks = keyspace();
                let start = Instant::now();
                for a in &fill[..n] {
                    exec(zadd, &mut ks, now, black_box(a), &mut out);
                    black_box(&out);
                }
                total += start.elapsed();
                drop(ks);
                left -= n as u64;
            }
            total
        })
    });

    // redis-benchmark's ZADD: a random member (nearly always present) to a random score.
    {
        let updates = zadd_args(&mut rng);
        let mut args = Cycle::new(&updates);
        let mut ks = keyspace();
        for a in &fill {
            exec(zadd, &mut ks, now, a, &mut out);
        }
        g.bench_function("zadd_update", |b| {
            b.iter(|| {
                exec(zadd, &mut ks, now, args.next(), &mut out);
                black_box(&out);
            })
        });
    }

    let lookups = |name: &[u8], rng: &mut fastrand::Rng| -> Vec<OwnedArgs> {
        (0..ARGS).map(|_| OwnedArgs::from_parts([name, KEY, &member(rng.usize(..RANDOM_RANGE))])).collect()
    };
    for (name, h) in [("zscore", zscore), ("zrank", zrank)] {
        let all = lookups(name.as_bytes(), &mut rng);
        let mut args = Cycle::new(&all);
        g.bench_function(name, |b| {
            b.iter(|| {
                exec(h, &mut full, now, args.next(), &mut out);
                black_box(&out);
            })
        });
    }

    // ZRANGE key i i+9 WITHSCORES at random ranks.
    {
        let all: Vec<OwnedArgs> = (0..ARGS)
            .map(|_| {
                let i = rng.usize(..RANDOM_RANGE - RANGE_ELEMENTS);
                let (start, stop) = (i.to_string(), (i + RANGE_ELEMENTS - 1).to_string());
                OwnedArgs::from_parts([b"ZRANGE".as_slice(), KEY, start.as_bytes(), stop.as_bytes(), b"WITHSCORES"])
            })
            .collect();
        let mut args = Cycle::new(&all);
        g.bench_function("zrange_10", |b| {
            b.iter(|| {
                exec(zrange, &mut full, now, args.next(), &mut out);
                black_box(&out);
            })
        });
    }

    // ZRANGEBYSCORE key s +inf LIMIT 0 10 at random scores.
    {
        let all: Vec<OwnedArgs> = (0..ARGS)
            .map(|_| {
                let s = rng.usize(..RANDOM_RANGE).to_string();
                OwnedArgs::from_parts([b"ZRANGEBYSCORE".as_slice(), KEY, s.as_bytes(), b"+inf", b"LIMIT", b"0", b"10"])
            })
            .collect();
        let mut args = Cycle::new(&all);
        g.bench_function("zrangebyscore_10", |b| {
            b.iter(|| {
                exec(zrangebyscore, &mut full, now, args.next(), &mut out);
                black_box(&out);
            })
        });
    }

    // ZREM of a random member, then ZADD of it back (one iteration is both),
    // so the set keeps its size.
    {
        let members: Vec<(OwnedArgs, OwnedArgs)> = (0..ARGS)
            .map(|_| {
                let (m, s) = (member(rng.usize(..RANDOM_RANGE)), digits(rng.usize(..RANDOM_RANGE)));
                (
                    OwnedArgs::from_parts([b"ZREM".as_slice(), KEY, &m]),
                    OwnedArgs::from_parts([b"ZADD".as_slice(), KEY, &s, &m]),
                )
            })
            .collect();
        let mut args = Cycle::new(&members);
        g.bench_function("zrem_zadd", |b| {
            b.iter(|| {
                let (rem, add) = args.next();
                exec(zrem, &mut full, now, rem, &mut out);
                exec(zadd, &mut full, now, add, &mut out);
                black_box(&out);
            })
        });
    }

    g.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
