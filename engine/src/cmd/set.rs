//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP
//! SRANDMEMBER SMOVE SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE
//! SINTERCARD SSCAN.
//!
//! Commands over several keys run on the shard owning them all; the network
//! layer refuses them with a CROSSSLOT error when the keys live on different
//! shards. A missing key reads as the empty set, and a set never stays empty:
//! the command that empties it deletes the key.

use super::flags::*;
use super::{CommandSpec, Ctx, Kind, spec};
use crate::db::NO_EXPIRE;
use crate::entry::{Entry, ValueMut};
use crate::glob::glob_match;
use crate::num;
use crate::reply::{NOT_INTEGER, Reply, SYNTAX, WRONGTYPE};
use crate::set::{Member, Set};
use crate::value::{Value, ValueRef};
use std::hash::BuildHasher;

/// The set at `key`: `Ok(None)` when missing, `Err(())` when another type.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Set>, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(Entry::value_mut) {
        None => Ok(None),
        Some(ValueMut::Set(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// The set at `key`, created empty (encoded for `first`, its first member)
/// when missing; `Err(())` when another type.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8], first: &[u8]) -> Result<&'c mut Set, ()> {
    let now = ctx.now;
    match ctx.db().get_or_insert_with(key, now, || Value::Set(Box::new(Set::for_member(first)))).value_mut() {
        ValueMut::Set(s) => Ok(s),
        _ => Err(()),
    }
}

/// Removes `key` when its set became empty (Redis never keeps empty collections).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if matches!(read(ctx, key), Ok(Some(s)) if s.is_empty()) {
        ctx.db().remove(key, now);
    }
}

/// The sets at `keys`, `None` for a missing key, all borrowed at once;
/// `Err(())` when any key holds another type.
fn read_all<'c>(ctx: &'c mut Ctx, keys: &[&[u8]]) -> Result<Vec<Option<&'c Set>>, ()> {
    // A first, mutable pass reclaims expired keys and checks every type.
    for key in keys {
        read(ctx, key)?;
    }
    let (db, now) = (ctx.ks.db_ref(ctx.db), ctx.now);
    Ok(keys
        .iter()
        .map(|key| match db.peek(key, now).map(Entry::value) {
            Some(ValueRef::Set(s)) => Some(s),
            _ => None,
        })
        .collect())
}

/// Writes `m` as a bulk string.
fn bulk_member(r: &mut Reply, m: Member) {
    m.with_bytes(|b| r.bulk(b));
}

/// True when `set` holds `m`, without formatting integers against an intset.
fn holds(set: &Set, m: Member) -> bool {
    match (set, m) {
        (Set::Ints(v), Member::Int(n)) => v.binary_search(&n).is_ok(),
        _ => m.with_bytes(|b| set.contains(b)),
    }
}

/// A set holding `members`.
fn collect_set<'a>(members: impl IntoIterator<Item = Member<'a>>) -> Set {
    let mut out = Set::default();
    for m in members {
        m.with_bytes(|b| out.insert(b));
    }
    out
}

/// SADD key member [member ...]
fn sadd(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    let Ok(s) = write(ctx, key, args.get(2)) else {
        return r.error(WRONGTYPE);
    };
    let added = args.iter_from(2).filter(|m| s.insert(m)).count();
    if added > 0 {
        ctx.dirty(added as u64);
    }
    r.int(added as i64);
}

/// SREM key member [member ...]
fn srem(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.int(0),
        Ok(Some(s)) => {
            let removed = args.iter_from(2).filter(|m| s.remove(m)).count();
            drop_if_empty(ctx, key);
            if removed > 0 {
                ctx.dirty(removed as u64);
            }
            r.int(removed as i64);
        }
    }
}

/// SMEMBERS key
fn smembers(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.set(0),
        Ok(Some(s)) => {
            r.set(s.len());
            for m in s.iter() {
                bulk_member(r, m);
            }
        }
    }
}

/// SISMEMBER key member
fn sismember(ctx: &mut Ctx, r: &mut Reply) {
    let (key, member) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(s) => r.int(s.is_some_and(|s| s.contains(member)) as i64),
    }
}

/// SMISMEMBER key member [member ...]
fn smismember(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(s) => {
            r.array(args.len() - 2);
            for m in args.iter_from(2) {
                r.int(s.as_ref().is_some_and(|s| s.contains(m)) as i64);
            }
        }
    }
}

/// SCARD key
fn scard(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(s) => r.int(s.map_or(0, |s| s.len()) as i64),
    }
}

/// `count` distinct positions out of `0..len`, ascending (a partial shuffle).
fn distinct_positions(rng: &mut fastrand::Rng, len: usize, count: usize) -> Vec<usize> {
    debug_assert!(count <= len);
    let mut all: Vec<usize> = (0..len).collect();
    for i in 0..count {
        let j = rng.usize(i..len);
        all.swap(i, j);
    }
    all.truncate(count);
    all.sort_unstable();
    all
}

/// The members at the ascending `positions` of the storage order.
fn members_at(s: &Set, positions: &[usize]) -> Vec<Vec<u8>> {
    let mut wanted = positions.iter().peekable();
    let mut out = Vec::with_capacity(positions.len());
    for (i, m) in s.iter().enumerate() {
        if wanted.peek() == Some(&&i) {
            wanted.next();
            out.push(m.to_vec());
        }
    }
    out
}

/// Random picks with repeats are drawn this many at a time (SRANDMEMBER
/// with a negative count), bounding the memory one batch takes.
const RANDOM_PICKS_BATCH_MAX: usize = 1024;

/// `n` members picked independently at random (repeats allowed), in random
/// order. A table is walked once for the whole batch, since reaching its
/// i-th member is linear.
fn random_members(rng: &mut fastrand::Rng, s: &Set, n: usize) -> Vec<Vec<u8>> {
    if !matches!(s, Set::Table(_)) {
        return (0..n).filter_map(|_| s.nth(rng.usize(..s.len()))).map(Member::to_vec).collect();
    }
    let mut picks: Vec<(usize, usize)> = (0..n).map(|slot| (rng.usize(..s.len()), slot)).collect();
    picks.sort_unstable();
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut next = picks.iter().peekable();
    for (pos, m) in s.iter().enumerate() {
        if next.peek().is_none() {
            break;
        }
        while let Some((_, slot)) = next.next_if(|(p, _)| *p == pos) {
            out[*slot] = m.to_vec();
        }
    }
    out
}

/// Members of one logged SREM when SPOP pops many (Redis's batch), so one
/// journal entry stays small.
pub const SPOP_LOGGED_MEMBERS_MAX: usize = 1024;

/// SPOP key [count]
///
/// Errors: a count that is not a non-negative integer gives
/// `ERR value is out of range, must be positive` (checked before the key).
fn spop(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let count = match ctx.args.len() {
        2 => None,
        3 => match num::parse_i64(ctx.arg(2)) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return r.error("ERR value is out of range, must be positive"),
        },
        _ => return r.error(SYNTAX),
    };
    let mut rng = fastrand::Rng::with_seed(ctx.ks.rng.u64(..));
    let s = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => return if count.is_some() { r.set(0) } else { r.null() },
        Ok(Some(s)) => s,
    };
    // Logged as what was taken, not as the draw (Redis's forms): SREM of
    // the members, or DEL when the whole set went.
    let popped: Vec<Vec<u8>> = match count {
        None => {
            let m = s.nth(rng.usize(..s.len())).map(Member::to_vec).unwrap_or_default();
            s.remove(&m);
            drop_if_empty(ctx, key);
            ctx.dirty(1);
            ctx.propagate(&[b"SREM", key, &m]);
            return r.bulk(&m);
        }
        Some(0) => return r.set(0),
        Some(n) if n >= s.len() as u64 => {
            // Everything goes: the key itself is deleted.
            let all = s.iter().map(Member::to_vec).collect();
            let now = ctx.now;
            ctx.db().remove(key, now);
            ctx.propagate(&[b"DEL", key]);
            all
        }
        Some(n) => {
            let picked = members_at(s, &distinct_positions(&mut rng, s.len(), n as usize));
            for m in &picked {
                s.remove(m);
            }
            if ctx.logging() {
                for batch in picked.chunks(SPOP_LOGGED_MEMBERS_MAX) {
                    let mut args: Vec<&[u8]> = Vec::with_capacity(batch.len() + 2);
                    args.extend([&b"SREM"[..], key]);
                    args.extend(batch.iter().map(Vec::as_slice));
                    ctx.propagate(&args);
                }
            }
            picked
        }
    };
    ctx.dirty(popped.len() as u64);
    r.set(popped.len());
    for m in popped {
        r.bulk(&m);
    }
}

/// SRANDMEMBER key [count]
///
/// A positive count gives distinct members (all of them when it covers the
/// set), a negative one |count| independent picks. Errors: a count that is
/// not an integer, or -2^63 (`ERR value is out of range, value must
/// between ...`), checked before the key.
fn srandmember(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let count = match ctx.args.len() {
        2 => None,
        3 => match num::parse_i64(ctx.arg(2)) {
            None => return r.error(NOT_INTEGER),
            Some(i64::MIN) => {
                return r.error(&format!(
                    "ERR value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                ));
            }
            Some(n) => Some(n),
        },
        _ => return r.error(SYNTAX),
    };
    let mut rng = fastrand::Rng::with_seed(ctx.ks.rng.u64(..));
    let s = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(s) => s.filter(|s| !s.is_empty()),
    };
    let Some(count) = count else {
        return match s {
            Some(s) => match s.nth(rng.usize(..s.len())) {
                Some(m) => bulk_member(r, m),
                None => r.null(),
            },
            None => r.null(),
        };
    };
    let Some(s) = s else {
        return r.array(0);
    };
    if count < 0 {
        // Repeats allowed: |count| independent picks, streamed so that a huge
        // count costs reply bytes only.
        let n = count.unsigned_abs();
        r.array(n as usize);
        let mut left = n;
        while left > 0 {
            let batch = left.min(RANDOM_PICKS_BATCH_MAX as u64) as usize;
            for m in random_members(&mut rng, s, batch) {
                r.bulk(&m);
            }
            left -= batch as u64;
        }
        return;
    }
    let n = (count as u64).min(s.len() as u64) as usize;
    let picked = members_at(s, &distinct_positions(&mut rng, s.len(), n));
    // Storage order would always list an intset ascending; shuffle like Redis's picks.
    let mut picked = picked;
    rng.shuffle(&mut picked);
    r.array(picked.len());
    for m in picked {
        r.bulk(&m);
    }
}

/// SMOVE source destination member
fn smove(ctx: &mut Ctx, r: &mut Reply) {
    let (src, dst, member) = (ctx.arg(1), ctx.arg(2), ctx.arg(3));
    // A missing source answers 0 before the destination's type is looked at.
    match read(ctx, src) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(_)) => {}
    }
    if read(ctx, dst).is_err() {
        return r.error(WRONGTYPE);
    }
    if src == dst {
        let found = matches!(read(ctx, src), Ok(Some(s)) if s.contains(member));
        return r.int(found as i64);
    }
    let removed = match read(ctx, src) {
        Ok(Some(s)) => s.remove(member),
        _ => false,
    };
    if !removed {
        return r.int(0);
    }
    drop_if_empty(ctx, src);
    if let Ok(s) = write(ctx, dst, member) {
        s.insert(member);
    }
    ctx.dirty(1);
    r.int(1);
}

/// What a multi-set command computes.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The members common to all `sets`: the smallest is walked, the others
/// probed. Empty when a set is missing.
fn intersection<'s>(sets: &[Option<&'s Set>]) -> Box<dyn Iterator<Item = Member<'s>> + 's> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
        return Box::new(std::iter::empty());
    };
    sets.sort_by_key(|s| s.len());
    if sets.is_empty() {
        return Box::new(std::iter::empty());
    }
    let smallest = sets.remove(0);
    Box::new(smallest.iter().filter(move |m| sets.iter().all(|s| holds(s, *m))))
}

/// The members of `op` over `sets` (in SDIFF, the first set less the others).
fn combine(op: Op, sets: &[Option<&Set>]) -> Set {
    match op {
        Op::Inter => collect_set(intersection(sets)),
        Op::Union => collect_set(sets.iter().flatten().flat_map(|s| s.iter())),
        Op::Diff => match sets.split_first() {
            Some((Some(first), rest)) => {
                collect_set(first.iter().filter(|m| rest.iter().flatten().all(|s| !holds(s, *m))))
            }
            _ => Set::default(),
        },
    }
}

/// SINTER, SUNION, SDIFF over the keys from argument 1: the result as a set.
fn combine_reply(ctx: &mut Ctx, r: &mut Reply, op: Op) {
    let keys: Vec<&[u8]> = ctx.args.iter_from(1).collect();
    let Ok(sets) = read_all(ctx, &keys) else {
        return r.error(WRONGTYPE);
    };
    let result = combine(op, &sets);
    r.set(result.len());
    for m in result.iter() {
        bulk_member(r, m);
    }
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE destination key [key ...]: the
/// result replaces the destination whatever it held (and its TTL); an empty
/// result deletes it.
fn combine_store(ctx: &mut Ctx, r: &mut Reply, op: Op) {
    let dst = ctx.arg(1);
    let keys: Vec<&[u8]> = ctx.args.iter_from(2).collect();
    let result = match read_all(ctx, &keys) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(sets) => combine(op, &sets),
    };
    let (now, len) = (ctx.now, result.len());
    if result.is_empty() {
        if ctx.db().remove(dst, now).is_some() {
            ctx.dirty(1);
        }
    } else {
        ctx.db().set(dst, Value::Set(Box::new(result)), NO_EXPIRE, now);
        ctx.dirty(1);
    }
    r.int(len as i64);
}

/// SINTER key [key ...]
fn sinter(ctx: &mut Ctx, r: &mut Reply) {
    combine_reply(ctx, r, Op::Inter);
}
/// SUNION key [key ...]
fn sunion(ctx: &mut Ctx, r: &mut Reply) {
    combine_reply(ctx, r, Op::Union);
}
/// SDIFF key [key ...]
fn sdiff(ctx: &mut Ctx, r: &mut Reply) {
    combine_reply(ctx, r, Op::Diff);
}
/// SINTERSTORE destination key [key ...]
fn sinterstore(ctx: &mut Ctx, r: &mut Reply) {
    combine_store(ctx, r, Op::Inter);
}
/// SUNIONSTORE destination key [key ...]
fn sunionstore(ctx: &mut Ctx, r: &mut Reply) {
    combine_store(ctx, r, Op::Union);
}
/// SDIFFSTORE destination key [key ...]
fn sdiffstore(ctx: &mut Ctx, r: &mut Reply) {
    combine_store(ctx, r, Op::Diff);
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
///
/// Errors, checked in this order before any key: `ERR numkeys should be
/// greater than 0`, `ERR Number of keys can't be greater than number of
/// args`, `ERR syntax error` (unknown option, LIMIT without a value),
/// `ERR LIMIT can't be negative`.
fn sintercard(ctx: &mut Ctx, r: &mut Reply) {
    let numkeys = match num::parse_i64(ctx.arg(1)) {
        Some(n) if n > 0 => n as u64,
        _ => return r.error("ERR numkeys should be greater than 0"),
    };
    let first = 2usize;
    if numkeys > (ctx.args.len() - first) as u64 {
        return r.error("ERR Number of keys can't be greater than number of args");
    }
    let end = first + numkeys as usize;
    let mut limit = 0usize;
    let mut i = end;
    while i < ctx.args.len() {
        match ctx.args.try_get(i + 1) {
            Some(value) if ctx.args.is(i, "LIMIT") => match num::parse_i64(value) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return r.error("ERR LIMIT can't be negative"),
            },
            _ => return r.error(SYNTAX),
        }
        i += 2;
    }
    let keys: Vec<&[u8]> = (first..end).map(|i| ctx.arg(i)).collect();
    let Ok(sets) = read_all(ctx, &keys) else {
        return r.error(WRONGTYPE);
    };
    let common = intersection(&sets);
    // LIMIT 0 means no limit; counting stops at the limit otherwise.
    let n = if limit > 0 { common.take(limit).count() } else { common.count() };
    r.int(n as i64);
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
///
/// As Redis does, the cursor is checked first, then the key (a missing key
/// answers an empty scan whatever the options), then the options. The
/// vector encodings are returned whole with cursor 0; a table is walked in
/// the order of its members' hashes, the cursor being the (63-bit hash + 1)
/// to resume from, so a member present for the whole scan is returned
/// whatever the table does meanwhile.
fn sscan(ctx: &mut Ctx, r: &mut Reply) {
    let Some(cursor) = num::parse_cursor(ctx.arg(2)) else {
        return r.error("ERR invalid cursor");
    };
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(_)) => {}
    }
    let (count, pattern) = match super::scan_options(&ctx.args, 3, false) {
        Ok(o) => (o.count, o.pattern),
        Err(e) => return r.error(e),
    };
    let Ok(Some(s)) = read(ctx, key) else {
        return r.error(WRONGTYPE);
    };
    let matches = |m: &[u8]| pattern.is_none_or(|p| glob_match(p, m, false));
    let (found, next): (Vec<Vec<u8>>, u64) = match s {
        Set::Ints(_) | Set::Small(_) => (s.iter().map(Member::to_vec).filter(|m| matches(m)).collect(), 0),
        Set::Table(t) => {
            let items = t.iter().map(|m| (t.hasher().hash_one(m), &**m));
            let (page, next) = super::hash_order_page(items, cursor, count);
            (page.into_iter().filter(|m| matches(m)).map(<[u8]>::to_vec).collect(), next)
        }
    };
    r.array(2);
    r.bulk_int(next as i64);
    r.array(found.len());
    for m in found {
        r.bulk(&m);
    }
}

const KEY1: (i32, i32, i32) = (1, 1, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);

/// The set family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(sadd),
        "set",
        "1.0.0",
        "Adds one or more members to a set. Creates the key if it doesn't exist.",
    ),
    spec(
        "srem",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(srem),
        "set",
        "1.0.0",
        "Removes one or more members from a set. Deletes the set if the last member was removed.",
    ),
    spec("smembers", 2, READONLY, KEY1, Kind::Keyed(smembers), "set", "1.0.0", "Returns all members of a set."),
    spec(
        "sismember",
        3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(sismember),
        "set",
        "1.0.0",
        "Determines whether a member belongs to a set.",
    ),
    spec(
        "smismember",
        -3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(smismember),
        "set",
        "6.2.0",
        "Determines whether multiple members belong to a set.",
    ),
    spec(
        "scard",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(scard),
        "set",
        "1.0.0",
        "Returns the number of members in a set.",
    ),
    spec(
        "spop",
        -2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(spop),
        "set",
        "1.0.0",
        "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
    ),
    spec(
        "srandmember",
        -2,
        READONLY,
        KEY1,
        Kind::Keyed(srandmember),
        "set",
        "1.0.0",
        "Get one or multiple random members from a set",
    ),
    spec(
        "smove",
        4,
        WRITE | FAST,
        (1, 2, 1),
        Kind::Keyed(smove),
        "set",
        "1.0.0",
        "Moves a member from one set to another.",
    ),
    spec(
        "sinter",
        -2,
        READONLY,
        ALL_KEYS,
        Kind::Keyed(sinter),
        "set",
        "1.0.0",
        "Returns the intersect of multiple sets.",
    ),
    spec("sunion", -2, READONLY, ALL_KEYS, Kind::Keyed(sunion), "set", "1.0.0", "Returns the union of multiple sets."),
    spec(
        "sdiff",
        -2,
        READONLY,
        ALL_KEYS,
        Kind::Keyed(sdiff),
        "set",
        "1.0.0",
        "Returns the difference of multiple sets.",
    ),
    spec(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        Kind::Keyed(sinterstore),
        "set",
        "1.0.0",
        "Stores the intersect of multiple sets in a key.",
    ),
    spec(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        Kind::Keyed(sunionstore),
        "set",
        "1.0.0",
        "Stores the union of multiple sets in a key.",
    ),
    spec(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        Kind::Keyed(sdiffstore),
        "set",
        "1.0.0",
        "Stores the difference of multiple sets in a key.",
    ),
    // Keys follow a numkeys count (MOVABLEKEYS): routed by the first key.
    spec(
        "sintercard",
        -3,
        READONLY | MOVABLEKEYS,
        (2, 2, 1),
        Kind::Keyed(sintercard),
        "set",
        "7.0.0",
        "Returns the number of members of the intersect of multiple sets.",
    ),
    spec("sscan", -3, READONLY, KEY1, Kind::Keyed(sscan), "set", "2.0.0", "Iterates over members of a set."),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(members: &[&str]) -> Set {
        collect_set(members.iter().map(|m| Member::Bytes(m.as_bytes())))
    }

    fn sorted(s: &Set) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = s.iter().map(Member::to_vec).collect();
        v.sort();
        v
    }

    #[test]
    fn combine_mixes_encodings() {
        let ints = set_of(&["1", "2", "3"]);
        let words = set_of(&["2", "3", "x"]);
        let table = set_of(
            &(0..200)
                .map(|i| i.to_string())
                .chain(["y".into()])
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!((ints.encoding(), words.encoding(), table.encoding()), ("intset", "listpack", "hashtable"));
        let v = |m: &[&str]| m.iter().map(|m| m.as_bytes().to_vec()).collect::<Vec<_>>();
        let sets = [Some(&ints), Some(&words), Some(&table)];
        assert_eq!(sorted(&combine(Op::Inter, &sets)), v(&["2", "3"]));
        assert_eq!(sorted(&combine(Op::Diff, &[Some(&words), Some(&ints)])), v(&["x"]));
        assert_eq!(sorted(&combine(Op::Diff, &[Some(&ints), None, Some(&words)])), v(&["1"]));
        assert_eq!(combine(Op::Union, &sets).len(), 202);
        assert!(combine(Op::Inter, &[Some(&ints), None]).is_empty());
        assert!(combine(Op::Diff, &[None, Some(&ints)]).is_empty());
        assert_eq!(intersection(&[Some(&table), Some(&ints)]).take(2).count(), 2);
    }

    #[test]
    fn distinct_positions_are_distinct_sorted_and_in_range() {
        let mut rng = fastrand::Rng::with_seed(7);
        for (len, count) in [(10, 0), (10, 3), (10, 10), (1000, 999)] {
            let p = distinct_positions(&mut rng, len, count);
            assert_eq!(p.len(), count);
            assert!(p.windows(2).all(|w| w[0] < w[1]));
            assert!(p.iter().all(|i| *i < len));
        }
    }
}
