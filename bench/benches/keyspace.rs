//! Command execution against one shard's keyspace, the way a shard runs a
//! parsed command: look the command up in the table, call its
//! `Kind::Keyed` handler with a [`Ctx`] and a [`Reply`] into a reused buffer,
//! then log it (`Ctx::log`, a branch while the journal is off).
//!
//! Every command's arguments are built before the timed loop, so the loop
//! measures execution alone (no formatting or allocation of arguments).

use coreshard_bench::Cycle;
use coreshard_engine::cmd::Handler;
use coreshard_engine::{CommandTable, Ctx, Keyspace, Kind, OwnedArgs, Proto, Reply, UnixMs};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Keys in the keyspace.
const KEYS: usize = 100_000;
/// Key size: `key:` and 12 digits.
const KEY_BYTES: usize = 16;
/// Value size.
const VALUE_BYTES: usize = 32;
/// Databases, as the server's default.
const DATABASES: usize = 16;
/// Fields of the small hash (well under hash-max-listpack-entries).
const HASH_FIELDS: usize = 16;

/// A keyspace owning every slot, as a single-shard server's.
fn keyspace() -> Keyspace {
    Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all())
}

/// The shard-local handler of `name`.
fn handler(name: &str) -> Handler {
    match CommandTable::get().lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} is registered")).kind {
        Kind::Keyed(h) => h,
        _ => panic!("{name} is not a keyed command"),
    }
}

fn key(prefix: &str, i: usize) -> Vec<u8> {
    let k = format!("{prefix}:{i:0width$}", width = KEY_BYTES - prefix.len() - 1).into_bytes();
    assert_eq!(k.len(), KEY_BYTES);
    k
}

fn value(i: usize) -> Vec<u8> {
    let v = format!("val:{i:0width$}", width = VALUE_BYTES - 4).into_bytes();
    assert_eq!(v.len(), VALUE_BYTES);
    v
}

/// Runs `args` through `h` against database 0, replacing `out` with the
/// reply, then logs it as a shard does after every command (with the
/// journal off, as on a server without replicas: one branch).
#[inline]
fn exec(h: Handler, ks: &mut Keyspace, now: UnixMs, args: &OwnedArgs, out: &mut Vec<u8>) {
    out.clear();
    let dirty = ks.stats.dirty;
    let mut ctx = Ctx { ks, db: 0, now, args: args.view() };
    h(&mut ctx, &mut Reply::new(out, Proto::Resp2));
    ctx.log(dirty);
}

fn commands(c: &mut Criterion) {
    let (set, get, hset) = (handler("set"), handler("get"), handler("hset"));
    let now = coreshard_engine::unix_ms();
    let set_args: Vec<OwnedArgs> =
        (0..KEYS).map(|i| OwnedArgs::from_parts([b"SET".as_slice(), &key("key", i), &value(i)])).collect();
    let get_hit_args: Vec<OwnedArgs> =
        (0..KEYS).map(|i| OwnedArgs::from_parts([b"GET".as_slice(), &key("key", i)])).collect();
    let get_miss_args: Vec<OwnedArgs> =
        (0..KEYS).map(|i| OwnedArgs::from_parts([b"GET".as_slice(), &key("miss", i)])).collect();
    let mut out = Vec::with_capacity(256);

    // The full keyspace the read benches run against.
    let mut full = keyspace();
    for a in &set_args {
        exec(set, &mut full, now, a, &mut out);
        assert_eq!(out, b"+OK\r\n");
    }
    assert_eq!(full.db(0).len(), KEYS);

    let mut g = c.benchmark_group("keyspace");
    g.throughput(Throughput::Elements(1));

    // SET of a key that does not exist yet. Cycling the 100k keys over one
    // keyspace would make every SET after the first round an overwrite, so
    // each round of 100k SETs runs against a fresh, empty keyspace, which
    // grows to 100k keys: the figure is the average insert cost over that
    // growth (entry and key allocation, per-slot table growth). Creating and
    // dropping the keyspaces is outside the timed region.
    g.bench_function("set_new", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(KEYS as u64) as usize;
                let mut ks = keyspace();
                // Creates the database's per-slot tables, so the first timed SET does not.
                exec(set, &mut ks, now, &OwnedArgs::from_parts(["SET", "warm", "up"]), &mut out);
                let start = Instant::now();
                for a in &set_args[..n] {
                    exec(set, &mut ks, now, black_box(a), &mut out);
                    black_box(&out);
                }
                total += start.elapsed();
                drop(ks);
                left -= n as u64;
            }
            total
        })
    });

    // SET of an existing key (the 100k keys cycled over the full keyspace):
    // the value is replaced, the entry stays.
    {
        let mut ks = keyspace();
        for a in &set_args {
            exec(set, &mut ks, now, a, &mut out);
        }
        let mut args = Cycle::new(&set_args);
        g.bench_function("set_overwrite", |b| {
            b.iter(|| {
                exec(set, &mut ks, now, args.next(), &mut out);
                black_box(&out);
            })
        });
        assert_eq!(ks.db(0).len(), KEYS);
    }

    // GET of existing keys, cycled.
    exec(get, &mut full, now, &get_hit_args[7], &mut out);
    assert_eq!(out, [b"$32\r\n".as_slice(), &value(7), b"\r\n"].concat());
    let mut args = Cycle::new(&get_hit_args);
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            exec(get, &mut full, now, args.next(), &mut out);
            black_box(&out);
        })
    });

    // GET of 100k keys that are not there, cycled, over the same keyspace.
    exec(get, &mut full, now, &get_miss_args[7], &mut out);
    assert_eq!(out, b"$-1\r\n");
    let mut args = Cycle::new(&get_miss_args);
    g.bench_function("get_miss", |b| {
        b.iter(|| {
            exec(get, &mut full, now, args.next(), &mut out);
            black_box(&out);
        })
    });

    // HSET of one field into a small (listpack-encoded) hash of 16 fields
    // with 32-byte values, cycling through the fields: each call replaces an
    // existing field's value, so the hash stays the same size.
    {
        let hset_args: Vec<OwnedArgs> = (0..HASH_FIELDS)
            .map(|i| OwnedArgs::from_parts([b"HSET".as_slice(), b"hash:small", &key("field", i), &value(i)]))
            .collect();
        for a in &hset_args {
            exec(hset, &mut full, now, a, &mut out);
            assert_eq!(out, b":1\r\n");
        }
        let mut args = Cycle::new(&hset_args);
        g.bench_function("hset_small", |b| {
            b.iter(|| {
                exec(hset, &mut full, now, args.next(), &mut out);
                black_box(&out);
            })
        });
        assert_eq!(out, b":0\r\n");
    }

    // `Db::get` alone, without a command around it: existing keys, cycled.
    {
        let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| key("key", i)).collect();
        let db = full.db(0);
        assert!(db.get(&keys[7], now).is_some());
        let mut keys = Cycle::new(&keys);
        g.bench_function("db_get", |b| b.iter(|| black_box(db.get(black_box(keys.next()), now)).is_some()));
    }

    g.finish();
}

/// Key routing, as every keyed command pays it on its connection's shard:
/// the owning shard of a slot, and of a 16-byte key (CRC16 included), for
/// a shard count known only at run time. Three ways: the contiguous ranges
/// coreshard used before (`slot * n / 16384`, a multiplication), the
/// interleaved map as built (`SlotMap`, `slot % n` by a precomputed
/// reciprocal), and `slot % n` with the division instruction.
fn routing(c: &mut Criterion) {
    use coreshard_engine::slot::{SLOTS, SlotMap, key_slot};
    /// Slots or keys per timed iteration.
    const BATCH: usize = 4096;
    let mut rng = fastrand::Rng::with_seed(42);
    let slots: Vec<u16> = (0..BATCH).map(|_| rng.u16(..SLOTS as u16)).collect();
    let keys: Vec<Vec<u8>> = (0..BATCH).map(|_| key("key", rng.usize(..1_000_000_000))).collect();
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(BATCH as u64));
    for shards in [3usize, 4] {
        let n = black_box(shards);
        let map = SlotMap::new(n);
        let contiguous = |slot: u16| slot as usize * n / SLOTS;
        let modulo = |slot: u16| slot as usize % n;
        g.bench_function(format!("slot_contiguous/{shards}"), |b| {
            b.iter(|| black_box(&slots).iter().map(|&s| contiguous(s)).sum::<usize>())
        });
        g.bench_function(format!("slot_interleaved/{shards}"), |b| {
            b.iter(|| black_box(&slots).iter().map(|&s| map.owner(s)).sum::<usize>())
        });
        g.bench_function(format!("slot_modulo/{shards}"), |b| {
            b.iter(|| black_box(&slots).iter().map(|&s| modulo(s)).sum::<usize>())
        });
        g.bench_function(format!("key_contiguous/{shards}"), |b| {
            b.iter(|| black_box(&keys).iter().map(|k| contiguous(key_slot(k))).sum::<usize>())
        });
        g.bench_function(format!("key_interleaved/{shards}"), |b| {
            b.iter(|| black_box(&keys).iter().map(|k| map.key_owner(k)).sum::<usize>())
        });
        g.bench_function(format!("key_modulo/{shards}"), |b| {
            b.iter(|| black_box(&keys).iter().map(|k| modulo(key_slot(k))).sum::<usize>())
        });
    }
    g.finish();
}

criterion_group!(benches, commands, routing);
criterion_main!(benches);
