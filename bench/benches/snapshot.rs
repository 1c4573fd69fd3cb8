//! Full-sync snapshots of one shard holding 1,000,000 string keys (16-byte
//! keys, 32-byte values) in database 0, as a single-shard server holds them.
//!
//! `serialize` hands the whole snapshot out in 64 KiB pieces into one
//! reused buffer, as the replication sender asks for it (the socket write is
//! left out); it is measured twice, once per unit (bytes, keys). `apply`
//! runs that stream on a fresh keyspace the way a replica does: RESP parsed
//! with the server's request parser, each command looked up in the command
//! table and run by its handler (SELECT once, then one RESTORE per key).
//!
//! `snapshot_cow` is the copy-on-write at the start of a migration of
//! 1,000,000 keys in 300 slots (3,333 keys per slot, as
//! `bench/migration.sh` loads them): a snapshot of the range is created,
//! then 1,250 writes spread over its keys (the first 250 ms of that
//! benchmark's 5,000 writes/s on the moving keys) each call the snapshot's
//! hook first, and the hooks are timed. `per_key` is `before_write` (each
//! slot here is past `WHOLE_SLOT_KEYS`, so only the written key is
//! serialized); `whole_slot` is `before_write_slot`, what every first write
//! to a slot did before big slots were copied per key.
//!
//! `snapshot_slices` hands out that range's snapshot (every slot past
//! `WHOLE_SLOT_KEYS`, so each is walked from a list of its key names) in
//! pieces of 8 KiB, as a flow's loop turn asks for them between reads of
//! the clock, and of 256 KiB; the longest single `fill` of each is printed.

use coreshard_engine::db::NO_EXPIRE;
use coreshard_engine::slot::key_slot;
use coreshard_engine::snapshot::Snapshot;
use coreshard_engine::{Args, CommandTable, Ctx, Keyspace, Kind, Proto, Reply, UnixMs};
use coreshard_net::resp::{Limits, RequestParser, Step};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Keys in the shard.
const KEYS: usize = 1_000_000;
/// Key size: `key:` and 12 digits.
const KEY_BYTES: usize = 16;
/// Value size.
const VALUE_BYTES: usize = 32;
/// Databases, as the server's default.
const DATABASES: usize = 16;
/// The most bytes one `fill` is asked for.
const PIECE_BYTES: usize = 64 * 1024;
/// The clock for every call.
const NOW: UnixMs = 1_700_000_000_000;
/// As an authenticated connection with the default proto-max-bulk-len.
const LIMITS: Limits = Limits { bulk_bytes_max: 512 * 1024 * 1024, authenticated: true };

fn filled() -> Keyspace {
    let mut ks = Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all());
    for i in 0..KEYS {
        let key = format!("key:{i:0width$}", width = KEY_BYTES - 4);
        let value = format!("val:{i:0width$}", width = VALUE_BYTES - 4);
        assert_eq!((key.len(), value.len()), (KEY_BYTES, VALUE_BYTES));
        ks.db(0).set_str(key.as_bytes(), value.as_bytes(), NO_EXPIRE, NOW);
    }
    ks
}

/// Hands out the whole snapshot of `ks` through `piece`, and returns the
/// stream's length.
fn serialize(ks: &Keyspace, piece: &mut Vec<u8>) -> usize {
    let mut snapshot = Snapshot::new(ks);
    let mut bytes = 0;
    loop {
        piece.clear();
        let finished = snapshot.fill(ks, NOW, PIECE_BYTES, piece);
        bytes += black_box(&piece).len();
        if finished {
            return bytes;
        }
    }
}

/// Runs every command of `stream` against `ks` as a replica does, and
/// returns how many RESTOREs it ran.
fn apply(ks: &mut Keyspace, stream: &mut [u8], reply: &mut Vec<u8>) -> usize {
    let table = CommandTable::get();
    let mut parser = RequestParser::new();
    let (mut at, mut db, mut restores) = (0, 0, 0);
    while at < stream.len() {
        let len = match parser.parse(&mut stream[at..], &LIMITS) {
            Ok(Step::Command { len }) => len,
            other => panic!("a snapshot stream holds whole commands, got {other:?} at {at}"),
        };
        let args = Args::new(&stream[at..at + len], parser.spans());
        let spec = table.lookup(args.get(0)).expect("a known command");
        match spec.kind {
            Kind::Keyed(handler) => {
                reply.clear();
                handler(&mut Ctx { ks, db, now: NOW, args }, &mut Reply::new(reply, Proto::Resp2));
                debug_assert_eq!(reply, b"+OK\r\n");
                restores += 1;
            }
            _ => db = std::str::from_utf8(args.get(1)).ok().and_then(|d| d.parse().ok()).expect("SELECT db"),
        }
        at += len;
    }
    restores
}

fn snapshot(c: &mut Criterion) {
    let ks = filled();
    let mut piece = Vec::with_capacity(2 * PIECE_BYTES);
    let mut stream = Vec::new();
    let mut snapshot = Snapshot::new(&ks);
    while !snapshot.fill(&ks, NOW, PIECE_BYTES, &mut stream) {}
    assert_eq!(snapshot.keys_sent(), KEYS as u64);
    eprintln!(
        "snapshot of {KEYS} keys: {} bytes, {:.1} bytes per key",
        stream.len(),
        stream.len() as f64 / KEYS as f64
    );

    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("serialize_1m_strings_bytes", |b| b.iter(|| serialize(&ks, &mut piece)));
    g.throughput(Throughput::Elements(KEYS as u64));
    g.bench_function("serialize_1m_strings_keys", |b| b.iter(|| serialize(&ks, &mut piece)));

    let mut reply = Vec::new();
    let mut check = Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all());
    assert_eq!(apply(&mut check, &mut stream.clone(), &mut reply), KEYS);
    assert_eq!(check.db_ref(0).len(), KEYS);
    drop(check);
    g.bench_function("apply_1m_restores_keys", |b| {
        b.iter_batched(
            || (Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all()), stream.clone()),
            // The keyspace is returned so that freeing it is not timed.
            |(mut fresh, mut stream)| {
                apply(&mut fresh, &mut stream, &mut reply);
                fresh
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Keys in the migrated range of `snapshot_cow`.
const RANGE_KEYS: usize = 1_000_000;
/// The migrated slots: 0 to this.
const RANGE_SLOTS: usize = 300;
/// Writes timed in `snapshot_cow`.
const EARLY_WRITES: usize = 1_250;

/// `RANGE_KEYS` keys `m:<i>` whose slots are below `RANGE_SLOTS`, 32-byte
/// values, in database 0; and the keys, in the order they were found.
fn range_filled() -> (Keyspace, Vec<Vec<u8>>) {
    let mut ks = Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all());
    let keys: Vec<Vec<u8>> = (0..)
        .map(|i| format!("m:{i}").into_bytes())
        .filter(|k| (key_slot(k) as usize) < RANGE_SLOTS)
        .take(RANGE_KEYS)
        .collect();
    let value = [b'v'; VALUE_BYTES];
    for k in &keys {
        ks.db(0).set_str(k, &value, NO_EXPIRE, NOW);
    }
    (ks, keys)
}

fn snapshot_cow(c: &mut Criterion) {
    let (ks, keys) = range_filled();
    let mut rng = fastrand::Rng::with_seed(7);
    let written: Vec<&[u8]> = (0..EARLY_WRITES).map(|_| &keys[rng.usize(..keys.len())][..]).collect();
    let slots: std::collections::HashSet<u16> = written.iter().map(|k| key_slot(k)).collect();
    let hooks = |per_key: bool| {
        let mut s = Snapshot::of_slots(&ks, 0..RANGE_SLOTS);
        for k in &written {
            let slot = key_slot(k) as usize;
            if per_key {
                s.before_write(&ks, slot, k, NOW);
            } else {
                s.before_write_slot(&ks, slot, NOW);
            }
        }
        s
    };
    for per_key in [true, false] {
        let s = hooks(per_key);
        eprintln!(
            "{EARLY_WRITES} writes over {} of {RANGE_SLOTS} slots, per_key {per_key}: {} bytes pending, {} bytes of early sets",
            slots.len(),
            s.pending_bytes(),
            s.early_bytes()
        );
    }
    let mut g = c.benchmark_group("snapshot_cow");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EARLY_WRITES as u64));
    // The snapshot is returned so that freeing it is not timed.
    g.bench_function("per_key_first_1250_writes", |b| b.iter_with_large_drop(|| hooks(true)));
    g.bench_function("whole_slot_first_1250_writes", |b| b.iter_with_large_drop(|| hooks(false)));
    g.finish();
}

/// Hands out the whole snapshot of slots 0 to `RANGE_SLOTS` of `ks` in
/// pieces of `piece_bytes`, and returns the longest `fill` and the number
/// of pieces.
fn range_in_pieces(ks: &Keyspace, piece_bytes: usize, piece: &mut Vec<u8>) -> (std::time::Duration, usize) {
    let mut snapshot = Snapshot::of_slots(ks, 0..RANGE_SLOTS);
    let (mut longest, mut pieces) = (std::time::Duration::ZERO, 0);
    loop {
        piece.clear();
        let start = std::time::Instant::now();
        let finished = snapshot.fill(ks, NOW, piece_bytes, piece);
        longest = longest.max(start.elapsed());
        pieces += 1;
        black_box(&piece);
        if finished {
            return (longest, pieces);
        }
    }
}

fn snapshot_slices(c: &mut Criterion) {
    let (ks, _) = range_filled();
    let mut piece = Vec::with_capacity(512 * 1024);
    let mut g = c.benchmark_group("snapshot_slices");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RANGE_KEYS as u64));
    for (name, piece_bytes) in [("range_1m_keys_in_8k_pieces", 8 * 1024), ("range_1m_keys_in_256k_pieces", 256 * 1024)]
    {
        let runs: Vec<_> = (0..5).map(|_| range_in_pieces(&ks, piece_bytes, &mut piece)).collect();
        let longest = runs.iter().map(|r| r.0.as_micros()).collect::<Vec<_>>();
        eprintln!("{name}: {} pieces, longest fill per run (us): {longest:?}", runs[0].1);
        g.bench_function(name, |b| b.iter(|| range_in_pieces(&ks, piece_bytes, &mut piece)));
    }
    g.finish();
}

criterion_group!(benches, snapshot, snapshot_cow, snapshot_slices);
criterion_main!(benches);
