//! SORT and SORT_RO: the elements of a list, set or sorted set, ordered
//! numerically or (ALPHA) as strings, optionally by weights from other keys
//! (BY) and projected through other keys (GET), sliced (LIMIT) and stored
//! (STORE). Keys named by BY, GET and STORE must live on the sorted key's
//! shard (as in Redis Cluster, where they must share its slot).

use super::CROSS_SHARD;
use super::flags::*;
use super::{CommandSpec, Ctx, Kind, spec};
use crate::list::{End, List};
use crate::num;
use crate::reply::{NOT_INTEGER, Reply, SYNTAX, WRONGTYPE};
use crate::slot;
use crate::value::{Value, ValueRef};
use std::cmp::Ordering;

/// What a BY or GET pattern names for one element.
enum Lookup {
    /// Nothing (a missing key or field).
    Missing,
    /// A key on another shard.
    Elsewhere,
    /// The bytes found.
    Found(Vec<u8>),
}

/// Resolves `pattern` for `element`: the first `*` is replaced by the
/// element; `key->field` reads a hash field, otherwise a string key; `#`
/// alone is the element itself.
fn lookup(ctx: &mut Ctx, pattern: &[u8], element: &[u8]) -> Lookup {
    if pattern == b"#" {
        return Lookup::Found(element.to_vec());
    }
    let Some(star) = pattern.iter().position(|&b| b == b'*') else { return Lookup::Missing };
    let arrow = pattern.windows(2).rposition(|w| w == b"->").filter(|&a| a > star && a + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    if !ctx.ks.owned().contains(slot::key_slot(&key) as usize) {
        return Lookup::Elsewhere;
    }
    let now = ctx.now;
    match (ctx.db().get(&key, now).map(|e| e.value()), arrow) {
        (Some(ValueRef::Str(s)), None) => Lookup::Found(s.to_vec()),
        (Some(ValueRef::Hash(h)), Some(a)) => {
            h.get(&pattern[a + 2..]).map_or(Lookup::Missing, |v| Lookup::Found(v.to_vec()))
        }
        _ => Lookup::Missing,
    }
}

/// An element and its BY weight.
type Item = (Vec<u8>, Option<Vec<u8>>);

struct Options<'a> {
    by: Option<&'a [u8]>,
    gets: Vec<&'a [u8]>,
    limit: Option<(i64, i64)>,
    desc: bool,
    alpha: bool,
    store: Option<&'a [u8]>,
}

fn parse<'a>(ctx: &Ctx<'a>, read_only: bool) -> Result<Options<'a>, &'static str> {
    let mut o = Options { by: None, gets: Vec::new(), limit: None, desc: false, alpha: false, store: None };
    let mut i = 2;
    while i < ctx.args.len() {
        let left = ctx.args.len() - i - 1;
        if ctx.args.is(i, "ASC") {
            o.desc = false;
        } else if ctx.args.is(i, "DESC") {
            o.desc = true;
        } else if ctx.args.is(i, "ALPHA") {
            o.alpha = true;
        } else if ctx.args.is(i, "LIMIT") && left >= 2 {
            let (Some(off), Some(count)) = (num::parse_i64(ctx.arg(i + 1)), num::parse_i64(ctx.arg(i + 2))) else {
                return Err(NOT_INTEGER);
            };
            o.limit = Some((off, count));
            i += 2;
        } else if ctx.args.is(i, "STORE") && left >= 1 && !read_only {
            o.store = Some(ctx.arg(i + 1));
            i += 1;
        } else if ctx.args.is(i, "BY") && left >= 1 {
            o.by = Some(ctx.arg(i + 1));
            i += 1;
        } else if ctx.args.is(i, "GET") && left >= 1 {
            o.gets.push(ctx.arg(i + 1));
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    Ok(o)
}

fn sort_generic(ctx: &mut Ctx, r: &mut Reply, read_only: bool) {
    let o = match parse(ctx, read_only) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    if o.store.is_some_and(|d| !ctx.ks.owned().contains(slot::key_slot(d) as usize)) {
        return r.error(CROSS_SHARD);
    }
    let (key, now) = (ctx.arg(1), ctx.now);
    // The elements, in the source's own order (a sorted set's is by score).
    let (elements, is_zset, is_set): (Vec<Vec<u8>>, bool, bool) = match ctx.db().get(key, now).map(|e| e.value()) {
        None => (Vec::new(), false, false),
        Some(ValueRef::List(l)) => (l.iter().map(<[u8]>::to_vec).collect(), false, false),
        Some(ValueRef::Set(s)) => (s.iter().map(|m| m.to_vec()).collect(), false, true),
        Some(ValueRef::ZSet(z)) => (z.iter_from(0, false).map(|(_, m)| m.to_vec()).collect(), true, false),
        Some(_) => return r.error(WRONGTYPE),
    };
    // BY without a `*` means "do not sort" (keep the source's order).
    let (mut by, mut alpha) = (o.by, o.alpha);
    let mut nosort = by.is_some_and(|p| !p.contains(&b'*'));
    if nosort && is_set && o.store.is_some() {
        // A set has no order of its own: as Redis does, so that the stored
        // list is the same on every server, it is sorted ALPHA by itself.
        (nosort, alpha, by) = (false, true, None);
    }
    let mut items: Vec<Item> = Vec::with_capacity(elements.len());
    for e in elements {
        let weight = match by {
            Some(p) if !nosort => match lookup(ctx, p, &e) {
                Lookup::Found(w) => Some(w),
                Lookup::Missing => None,
                Lookup::Elsewhere => return r.error(CROSS_SHARD),
            },
            _ => None,
        };
        items.push((e, weight));
    }
    if !nosort {
        let sort_key = |(e, w): &Item| -> Vec<u8> {
            w.clone().unwrap_or_else(|| if by.is_some() { Vec::new() } else { e.clone() })
        };
        if alpha && is_set {
            // A set's own order is its hash table's, which differs between
            // servers: equal weights fall back to the elements' bytes, so a
            // STORE gives every replica the same list.
            items.sort_by_cached_key(|it| (sort_key(it), it.0.clone()));
        } else if alpha {
            items.sort_by_cached_key(sort_key);
        } else {
            let mut scored: Vec<(f64, Item)> = Vec::with_capacity(items.len());
            for it in items {
                let k = sort_key(&it);
                // A missing BY weight counts as 0, as in Redis.
                let score = if k.is_empty() && by.is_some() { Some(0.0) } else { num::parse_f64(&k) };
                let Some(score) = score else {
                    return r.error("ERR One or more scores can't be converted into double");
                };
                scored.push((score, it));
            }
            // Equal scores fall back to the elements' bytes, as Redis does.
            scored.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal).then_with(|| a.1.0.cmp(&b.1.0)));
            items = scored.into_iter().map(|(_, it)| it).collect();
        }
        if o.desc {
            items.reverse();
        }
    } else if o.desc && is_zset {
        // Without sorting, lists and sets keep their order; a sorted set is
        // read from its end under DESC, as Redis does.
        items.reverse();
    }
    let n = items.len() as i64;
    let (start, end) = match o.limit {
        None => (0, n - 1),
        Some((off, count)) => {
            let start = off.max(0);
            let end = if count < 0 { n - 1 } else { (start.saturating_add(count) - 1).min(n - 1) };
            (start, end)
        }
    };
    let slice: Vec<Vec<u8>> = if start > end || start >= n {
        Vec::new()
    } else {
        items.drain(start as usize..=end as usize).map(|(e, _)| e).collect()
    };
    // Project through GET patterns (none: the elements themselves).
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(slice.len() * o.gets.len().max(1));
    for e in &slice {
        if o.gets.is_empty() {
            out.push(Some(e.clone()));
        }
        for g in &o.gets {
            match lookup(ctx, g, e) {
                Lookup::Found(v) => out.push(Some(v)),
                Lookup::Missing => out.push(None),
                Lookup::Elsewhere => return r.error(CROSS_SHARD),
            }
        }
    }
    match o.store {
        Some(dest) => {
            if out.is_empty() {
                if ctx.db().remove(dest, now).is_some() {
                    ctx.dirty(1);
                }
                return r.int(0);
            }
            let mut list = List::default();
            for v in &out {
                list.push(End::Right, v.as_deref().unwrap_or(b""));
            }
            let len = list.len();
            ctx.db().set(dest, Value::List(Box::new(list)), crate::db::NO_EXPIRE, now);
            ctx.dirty(1);
            r.int(len as i64);
        }
        None => {
            r.array(out.len());
            for v in &out {
                r.bulk_or_null(v.as_deref());
            }
        }
    }
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]
fn sort(ctx: &mut Ctx, r: &mut Reply) {
    sort_generic(ctx, r, false);
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
fn sort_ro(ctx: &mut Ctx, r: &mut Reply) {
    sort_generic(ctx, r, true);
}

/// The SORT family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "sort",
        -2,
        WRITE | DENYOOM | EXTRA_KEYS,
        (1, 1, 1),
        Kind::Keyed(sort),
        "generic",
        "1.0.0",
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
    ),
    spec(
        "sort_ro",
        -2,
        READONLY | EXTRA_KEYS,
        (1, 1, 1),
        Kind::Keyed(sort_ro),
        "generic",
        "7.0.0",
        "Returns the sorted elements of a list, a set, or a sorted set.",
    ),
];
