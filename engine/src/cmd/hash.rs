//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HLEN HEXISTS HGETALL HKEYS
//! HVALS HINCRBY HINCRBYFLOAT HSTRLEN HRANDFIELD HSCAN.

use super::flags::*;
use super::{CommandSpec, Ctx, Kind, spec};
use crate::db::NO_EXPIRE;
use crate::entry::{Entry, HashMut, ValueMut};
use crate::glob::glob_match;
use crate::hash::{Hash, HashRef};
use crate::num;
use crate::reply::{NOT_FLOAT, NOT_INTEGER, Proto, Reply, SYNTAX, WRONGTYPE};
use crate::value::Value;
use std::hash::BuildHasher;

/// The hash at `key`: `Ok(None)` when missing, `Err(())` when another type.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<HashMut<'c>>, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(Entry::value_mut) {
        None => Ok(None),
        Some(ValueMut::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(()),
    }
}

/// The hash at `key`, created empty when missing; `Err(())` when another type.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<HashMut<'c>, ()> {
    let now = ctx.now;
    match ctx.db().get_or_insert_with(key, now, || Value::Hash(Hash::default())).value_mut() {
        ValueMut::Hash(h) => Ok(h),
        _ => Err(()),
    }
}

/// Removes `key` when its hash became empty (Redis never keeps empty collections).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if matches!(read(ctx, key), Ok(Some(h)) if h.is_empty()) {
        ctx.db().remove(key, now);
    }
}

fn hset_pairs(ctx: &mut Ctx, r: &mut Reply, name: &str) -> Option<i64> {
    if ctx.args.len() % 2 == 1 {
        r.arity_error(name);
        return None;
    }
    let (key, now) = (ctx.arg(1), ctx.now);
    let args = ctx.args;
    let pairs = (2..args.len()).step_by(2).map(|i| (args.get(i), args.get(i + 1)));
    let added = match read(ctx, key) {
        Err(()) => {
            r.error(WRONGTYPE);
            return None;
        }
        Ok(Some(mut h)) => pairs.map(|(f, v)| h.insert(f, v) as usize).sum(),
        Ok(None) => {
            // A new hash is built whole and stored once, rather than grown
            // in its entry one field at a time.
            let mut h = Hash::default();
            let added = h.extend(pairs);
            ctx.db().set(key, Value::Hash(h), NO_EXPIRE, now);
            added
        }
    };
    ctx.dirty(1);
    Some(added as i64)
}

/// HSET key field value [field value ...]
fn hset(ctx: &mut Ctx, r: &mut Reply) {
    if let Some(n) = hset_pairs(ctx, r, "hset") {
        r.int(n);
    }
}

/// HMSET key field value [field value ...]
fn hmset(ctx: &mut Ctx, r: &mut Reply) {
    if hset_pairs(ctx, r, "hmset").is_some() {
        r.ok();
    }
}

/// HSETNX key field value
fn hsetnx(ctx: &mut Ctx, r: &mut Reply) {
    let (key, field, value) = (ctx.arg(1), ctx.arg(2), ctx.arg(3));
    let Ok(mut h) = write(ctx, key) else {
        return r.error(WRONGTYPE);
    };
    if h.get(field).is_some() {
        return r.int(0);
    }
    h.insert(field, value);
    ctx.dirty(1);
    r.int(1);
}

/// HGET key field
fn hget(ctx: &mut Ctx, r: &mut Reply) {
    let (key, field) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(h) => {
            let v = h.as_ref().and_then(|h| h.get(field));
            r.bulk_or_null(v);
            let found = v.is_some();
            ctx.hit(found);
        }
    }
}

/// HMGET key field [field ...]
fn hmget(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(h) => {
            r.array(args.len() - 2);
            for f in args.iter_from(2) {
                r.bulk_or_null(h.as_ref().and_then(|h| h.get(f)));
            }
        }
    }
}

/// HDEL key field [field ...]
fn hdel(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.int(0),
        Ok(Some(mut h)) => {
            let n = args.iter_from(2).filter(|f| h.remove(f)).count() as i64;
            drop_if_empty(ctx, key);
            if n > 0 {
                ctx.dirty(n as u64);
            }
            r.int(n);
        }
    }
}

/// HLEN key
fn hlen(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(h) => r.int(h.map_or(0, |h| h.len()) as i64),
    }
}

/// HEXISTS key field
fn hexists(ctx: &mut Ctx, r: &mut Reply) {
    let (key, field) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(h) => r.int(h.is_some_and(|h| h.get(field).is_some()) as i64),
    }
}

/// HSTRLEN key field
fn hstrlen(ctx: &mut Ctx, r: &mut Reply) {
    let (key, field) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(h) => r.int(h.as_ref().and_then(|h| h.get(field)).map_or(0, |v| v.len()) as i64),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Keys,
    Values,
    Both,
}

fn hgetall_generic(ctx: &mut Ctx, r: &mut Reply, part: Part) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(h) => {
            let len = h.as_ref().map_or(0, |h| h.len());
            if part == Part::Both {
                r.map(len)
            } else {
                r.array(len)
            }
            if let Some(h) = h {
                for (f, v) in h.iter() {
                    if part != Part::Values {
                        r.bulk(f);
                    }
                    if part != Part::Keys {
                        r.bulk(v);
                    }
                }
            }
        }
    }
}

/// HGETALL key
fn hgetall(ctx: &mut Ctx, r: &mut Reply) {
    hgetall_generic(ctx, r, Part::Both);
}
/// HKEYS key
fn hkeys(ctx: &mut Ctx, r: &mut Reply) {
    hgetall_generic(ctx, r, Part::Keys);
}
/// HVALS key
fn hvals(ctx: &mut Ctx, r: &mut Reply) {
    hgetall_generic(ctx, r, Part::Values);
}

/// The current value of `field` in the hash at argument 1 (None when the key
/// or field is missing), or the reply already written on WRONGTYPE.
fn field_value(ctx: &mut Ctx, r: &mut Reply) -> Result<Option<Vec<u8>>, ()> {
    let (key, field) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, key) {
        Err(()) => {
            r.error(WRONGTYPE);
            Err(())
        }
        Ok(h) => Ok(h.as_ref().and_then(|h| h.get(field)).map(|v| v.to_vec())),
    }
}

/// Stores `text` at `field` of the hash at argument 1, creating it.
fn store_field(ctx: &mut Ctx, text: &[u8]) {
    let (key, field) = (ctx.arg(1), ctx.arg(2));
    if let Ok(mut h) = write(ctx, key) {
        h.insert(field, text);
        ctx.dirty(1);
    }
}

/// HINCRBY key field increment
fn hincrby(ctx: &mut Ctx, r: &mut Reply) {
    let Some(by) = num::parse_i64(ctx.arg(3)) else {
        return r.error(NOT_INTEGER);
    };
    let Ok(old) = field_value(ctx, r) else { return };
    let old = match old.as_deref().map(num::parse_i64) {
        None => 0,
        Some(Some(n)) => n,
        Some(None) => return r.error("ERR hash value is not an integer"),
    };
    let Some(new) = old.checked_add(by) else {
        return r.error("ERR increment or decrement would overflow");
    };
    let mut text = Vec::with_capacity(20);
    num::write_i64(new, &mut text);
    store_field(ctx, &text);
    r.int(new);
}

/// HINCRBYFLOAT key field increment
fn hincrbyfloat(ctx: &mut Ctx, r: &mut Reply) {
    let Some(by) = num::parse_f64(ctx.arg(3)) else {
        return r.error(NOT_FLOAT);
    };
    if !by.is_finite() {
        return r.error("ERR value is NaN or Infinity");
    }
    let Ok(old) = field_value(ctx, r) else { return };
    let old = match old.as_deref().map(num::parse_f64) {
        None => 0.0,
        Some(Some(n)) => n,
        Some(None) => return r.error("ERR hash value is not a float"),
    };
    let new = old + by;
    if !new.is_finite() {
        return r.error("ERR increment would produce NaN or Infinity");
    }
    let mut text = Vec::with_capacity(24);
    num::format_f64_human(new, &mut text);
    store_field(ctx, &text);
    r.bulk(&text);
    // Logged as the value it gave, so no replica adds in its own precision.
    let (key, field) = (ctx.arg(1), ctx.arg(2));
    ctx.propagate(&[b"HSET", key, field, &text]);
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let mut count = None;
    let mut with_values = false;
    if ctx.args.len() >= 3 {
        // As Redis: the count is within -LONG_MAX..=LONG_MAX, and half that
        // with WITHVALUES, whose reply is twice as long.
        let Some(n) = num::parse_i64(ctx.arg(2)) else {
            return r.error(NOT_INTEGER);
        };
        if n == i64::MIN {
            return r
                .error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        }
        if ctx.args.len() > 4 || (ctx.args.len() == 4 && !ctx.args.is(3, "WITHVALUES")) {
            return r.error(SYNTAX);
        }
        if ctx.args.len() == 4 {
            with_values = true;
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&n) {
                return r.error("ERR value is out of range");
            }
        }
        count = Some(n);
    }
    let proto = r.proto();
    let mut rng = fastrand::Rng::with_seed(ctx.ks.rng.u64(..));
    let h = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(h) => h,
    };
    let Some(count) = count else {
        return match h {
            Some(h) if !h.is_empty() => {
                let (f, _) = h.nth(rng.usize(..h.len())).unwrap_or_default();
                r.bulk(f)
            }
            _ => r.null(),
        };
    };
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return r.array(0);
    };
    let emit = |r: &mut Reply, f: &[u8], v: &[u8]| {
        if with_values {
            if proto == Proto::Resp3 {
                r.array(2);
            }
            r.bulk(f);
            r.bulk(v);
        } else {
            r.bulk(f);
        }
    };
    let items_len = |n: usize| {
        if with_values && proto == Proto::Resp2 { n * 2 } else { n }
    };
    if count < 0 {
        // Repeats allowed: |count| independent picks.
        let n = count.unsigned_abs() as usize;
        r.array(items_len(n));
        for _ in 0..n {
            let (f, v) = h.nth(rng.usize(..h.len())).unwrap_or_default();
            emit(r, f, v);
        }
        return;
    }
    // Distinct fields: all of them when count covers the hash, else a random subset.
    let n = (count as usize).min(h.len());
    let mut picks: Vec<usize> = (0..h.len()).collect();
    rng.shuffle(&mut picks);
    picks.truncate(n);
    picks.sort_unstable();
    r.array(items_len(n));
    let mut wanted = picks.into_iter().peekable();
    for (i, (f, v)) in h.iter().enumerate() {
        if wanted.peek() == Some(&i) {
            wanted.next();
            emit(r, f, v);
        }
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]
///
/// A small hash is returned whole with cursor 0, as Redis does for listpacks.
/// A table is walked in the order of its fields' hashes: the cursor is the
/// (63-bit hash + 1) to resume from, so a field present for the whole scan is
/// returned whatever the table does meanwhile.
fn hscan(ctx: &mut Ctx, r: &mut Reply) {
    let Some(cursor) = num::parse_cursor(ctx.arg(2)) else {
        return r.error("ERR invalid cursor");
    };
    // As Redis: the cursor, then the key (a missing key answers an empty
    // scan whatever the options), then the options.
    let key = ctx.arg(1);
    let args = ctx.args;
    let h = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(h)) => h,
    };
    let (count, pattern, no_values) = match super::scan_options(&args, 3, true) {
        Ok(o) => (o.count, o.pattern, o.no_values),
        Err(e) => return r.error(e),
    };
    let matches = |f: &[u8]| pattern.is_none_or(|p| glob_match(p, f, false));
    type Found<'h> = Vec<(&'h [u8], &'h [u8])>;
    let (pairs, next): (Found, u64) = match h.view() {
        HashRef::Small(_) => (h.iter().filter(|(f, _)| matches(f)).collect(), 0),
        HashRef::Table(m) => {
            let items = m.iter().map(|(f, v)| (m.hasher().hash_one(f), (&**f, &**v)));
            let (page, next) = super::hash_order_page(items, cursor, count);
            (page.into_iter().filter(|(f, _)| matches(f)).collect(), next)
        }
    };
    r.array(2);
    r.bulk_int(next as i64);
    r.array(if no_values { pairs.len() } else { pairs.len() * 2 });
    for (f, v) in pairs {
        r.bulk(f);
        if !no_values {
            r.bulk(v);
        }
    }
}

const KEY1: (i32, i32, i32) = (1, 1, 1);

/// The hash family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "hset",
        -4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(hset),
        "hash",
        "2.0.0",
        "Creates or modifies the value of a field in a hash.",
    ),
    spec(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(hmset),
        "hash",
        "2.0.0",
        "Sets the values of multiple fields.",
    ),
    spec(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(hsetnx),
        "hash",
        "2.0.0",
        "Sets the value of a field in a hash only when the field doesn't exist.",
    ),
    spec(
        "hget",
        3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(hget),
        "hash",
        "2.0.0",
        "Returns the value of a field in a hash.",
    ),
    spec(
        "hmget",
        -3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(hmget),
        "hash",
        "2.0.0",
        "Returns the values of all fields in a hash.",
    ),
    spec(
        "hdel",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(hdel),
        "hash",
        "2.0.0",
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
    ),
    spec(
        "hlen",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(hlen),
        "hash",
        "2.0.0",
        "Returns the number of fields in a hash.",
    ),
    spec(
        "hexists",
        3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(hexists),
        "hash",
        "2.0.0",
        "Determines whether a field exists in a hash.",
    ),
    spec(
        "hstrlen",
        3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(hstrlen),
        "hash",
        "3.2.0",
        "Returns the length of the value of a field.",
    ),
    spec(
        "hgetall",
        2,
        READONLY,
        KEY1,
        Kind::Keyed(hgetall),
        "hash",
        "2.0.0",
        "Returns all fields and values in a hash.",
    ),
    spec("hkeys", 2, READONLY, KEY1, Kind::Keyed(hkeys), "hash", "2.0.0", "Returns all fields in a hash."),
    spec("hvals", 2, READONLY, KEY1, Kind::Keyed(hvals), "hash", "2.0.0", "Returns all values in a hash."),
    spec(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(hincrby),
        "hash",
        "2.0.0",
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
    ),
    spec(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(hincrbyfloat),
        "hash",
        "2.6.0",
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
    ),
    spec(
        "hrandfield",
        -2,
        READONLY,
        KEY1,
        Kind::Keyed(hrandfield),
        "hash",
        "6.2.0",
        "Returns one or more random fields from a hash.",
    ),
    spec(
        "hscan",
        -3,
        READONLY,
        KEY1,
        Kind::Keyed(hscan),
        "hash",
        "2.8.0",
        "Iterates over fields and values of a hash.",
    ),
];
