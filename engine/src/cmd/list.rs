//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET
//! LINSERT LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, and the blocking BLPOP
//! BRPOP BLMOVE BRPOPLPUSH BLMPOP.
//!
//! Argument checks come before or after the key lookup exactly where Redis
//! (`t_list.c`) puts them, since that decides which error a client sees
//! (LINDEX on a missing key with a bad index answers nil, LRANGE an error).

use super::flags::*;
use super::{Attempt, BlockOn, Blocking, CommandSpec, Ctx, Kind, parse_timeout, spec};
use crate::entry::{Entry, ValueMut};
use crate::list::{End, List, clamp_range, position_of};
use crate::num;
use crate::reply::{NOT_INTEGER, Reply, SYNTAX, WRONGTYPE};
use crate::value::Value;

const NO_SUCH_KEY: &str = "ERR no such key";
const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
const COUNT_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";

/// The list at `key`: `Ok(None)` when missing, `Err(())` when another type.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut List>, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(Entry::value_mut) {
        None => Ok(None),
        Some(ValueMut::List(l)) => Ok(Some(l)),
        Some(_) => Err(()),
    }
}

/// The list at `key`, created empty when missing; `Err(())` when another type.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut List, ()> {
    let now = ctx.now;
    match ctx.db().get_or_insert_with(key, now, || Value::List(Box::default())).value_mut() {
        ValueMut::List(l) => Ok(l),
        _ => Err(()),
    }
}

/// Removes `key` when its list became empty (Redis never keeps empty collections).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if matches!(read(ctx, key), Ok(Some(l)) if l.is_empty()) {
        ctx.db().remove(key, now);
    }
}

/// Pushes arguments 2.. at `end`; with `only_existing` a missing key stays missing.
fn push_generic(ctx: &mut Ctx, r: &mut Reply, end: End, only_existing: bool) {
    let key = ctx.arg(1);
    let args = ctx.args;
    let list = if only_existing {
        match read(ctx, key) {
            Err(()) => return r.error(WRONGTYPE),
            Ok(None) => return r.int(0),
            Ok(Some(l)) => l,
        }
    } else {
        match write(ctx, key) {
            Err(()) => return r.error(WRONGTYPE),
            Ok(l) => l,
        }
    };
    for item in args.iter_from(2) {
        list.push(end, item);
    }
    let len = list.len();
    ctx.dirty(args.len() as u64 - 2);
    r.int(len as i64);
}

/// LPUSH key element [element ...]
fn lpush(ctx: &mut Ctx, r: &mut Reply) {
    push_generic(ctx, r, End::Left, false);
}
/// RPUSH key element [element ...]
fn rpush(ctx: &mut Ctx, r: &mut Reply) {
    push_generic(ctx, r, End::Right, false);
}
/// LPUSHX key element [element ...]
fn lpushx(ctx: &mut Ctx, r: &mut Reply) {
    push_generic(ctx, r, End::Left, true);
}
/// RPUSHX key element [element ...]
fn rpushx(ctx: &mut Ctx, r: &mut Reply) {
    push_generic(ctx, r, End::Right, true);
}

/// Pops up to `count` elements of the list at `key` from `end` (the key must
/// hold a non-empty list), deleting the key when it empties.
fn pop_many(ctx: &mut Ctx, key: &[u8], end: End, count: usize) -> Vec<Box<[u8]>> {
    let mut popped = Vec::new();
    if let Ok(Some(l)) = read(ctx, key) {
        let n = count.min(l.len());
        popped.reserve(n);
        popped.extend((0..n).map_while(|_| l.pop(end)));
    }
    drop_if_empty(ctx, key);
    ctx.dirty(popped.len() as u64);
    popped
}

/// LPOP/RPOP key [count]. Without count: the element or nil. With count: an
/// array, empty for count 0, nil (a null array) when the key is missing.
/// Errors: count not a non-negative integer ("value is out of range, must be
/// positive"), more than one count (arity), WRONGTYPE.
fn pop_generic(ctx: &mut Ctx, r: &mut Reply, end: End, name: &str) {
    if ctx.args.len() > 3 {
        return r.arity_error(name);
    }
    let count = match ctx.args.try_get(2) {
        None => None,
        Some(text) => match num::parse_i64(text).filter(|n| *n >= 0) {
            Some(n) => Some(n as usize),
            None => return r.error(COUNT_NOT_POSITIVE),
        },
    };
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) if count.is_some() => r.null_array(),
        Ok(None) => r.null(),
        Ok(Some(_)) => match count {
            None => {
                let popped = pop_many(ctx, key, end, 1);
                r.bulk_or_null(popped.first().map(|v| &**v));
            }
            Some(n) => {
                let popped = if n == 0 { Vec::new() } else { pop_many(ctx, key, end, n) };
                r.array(popped.len());
                for v in &popped {
                    r.bulk(v);
                }
            }
        },
    }
}

/// LPOP key [count]
fn lpop(ctx: &mut Ctx, r: &mut Reply) {
    pop_generic(ctx, r, End::Left, "lpop");
}
/// RPOP key [count]
fn rpop(ctx: &mut Ctx, r: &mut Reply) {
    pop_generic(ctx, r, End::Right, "rpop");
}

/// LLEN key
fn llen(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(l) => r.int(l.map_or(0, |l| l.len()) as i64),
    }
}

/// LRANGE key start stop: indexes may be negative (from the tail) and are
/// clamped to the list. Errors: an index that is not an integer (checked
/// before the key), WRONGTYPE.
fn lrange(ctx: &mut Ctx, r: &mut Reply) {
    let (Some(start), Some(stop)) = (num::parse_i64(ctx.arg(2)), num::parse_i64(ctx.arg(3))) else {
        return r.error(NOT_INTEGER);
    };
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.array(0),
        Ok(Some(l)) => match clamp_range(start, stop, l.len()) {
            None => r.array(0),
            Some((from, to)) => {
                r.array(to - from + 1);
                for v in l.range(from, to) {
                    r.bulk(v);
                }
            }
        },
    }
}

/// LINDEX key index: the element, or nil when the key is missing (whatever
/// the index) or the index is out of range.
fn lindex(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let index = num::parse_i64(ctx.arg(2));
    let found = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => None,
        Ok(Some(l)) => {
            let Some(index) = index else {
                return r.error(NOT_INTEGER);
            };
            position_of(index, l.len()).and_then(|i| l.get(i))
        }
    };
    r.bulk_or_null(found);
    let hit = found.is_some();
    ctx.hit(hit);
}

/// LSET key index element. Errors: "no such key", "index out of range", an
/// index that is not an integer, WRONGTYPE.
fn lset(ctx: &mut Ctx, r: &mut Reply) {
    let (key, item) = (ctx.arg(1), ctx.arg(3));
    let index = num::parse_i64(ctx.arg(2));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.error(NO_SUCH_KEY),
        Ok(Some(l)) => {
            let Some(index) = index else {
                return r.error(NOT_INTEGER);
            };
            match position_of(index, l.len()) {
                Some(i) if l.set(i, item) => {
                    ctx.dirty(1);
                    r.ok();
                }
                _ => r.error(INDEX_OUT_OF_RANGE),
            }
        }
    }
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 when the pivot
/// is missing, 0 when the key is.
fn linsert(ctx: &mut Ctx, r: &mut Reply) {
    let after = if ctx.args.is(2, "AFTER") {
        true
    } else if ctx.args.is(2, "BEFORE") {
        false
    } else {
        return r.error(SYNTAX);
    };
    let (key, pivot, item) = (ctx.arg(1), ctx.arg(3), ctx.arg(4));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.int(0),
        Ok(Some(l)) => match l.position(pivot) {
            None => r.int(-1),
            Some(i) => {
                l.insert(i + after as usize, item);
                let len = l.len();
                ctx.dirty(1);
                r.int(len as i64);
            }
        },
    }
}

/// LREM key count element: removes `count` matches from the head (count > 0),
/// from the tail (count < 0) or all (0); the number removed.
fn lrem(ctx: &mut Ctx, r: &mut Reply) {
    let Some(count) = num::parse_i64(ctx.arg(2)) else {
        return r.error(NOT_INTEGER);
    };
    let (key, item) = (ctx.arg(1), ctx.arg(3));
    let from = if count < 0 { End::Right } else { End::Left };
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.int(0),
        Ok(Some(l)) => {
            let removed = l.remove_matching(item, limit, from);
            drop_if_empty(ctx, key);
            ctx.dirty(removed as u64);
            r.int(removed as i64);
        }
    }
}

/// LTRIM key start stop: keeps the range as LRANGE selects it; deletes the
/// key when nothing remains.
fn ltrim(ctx: &mut Ctx, r: &mut Reply) {
    let (Some(start), Some(stop)) = (num::parse_i64(ctx.arg(2)), num::parse_i64(ctx.arg(3))) else {
        return r.error(NOT_INTEGER);
    };
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.ok(),
        Ok(Some(l)) => {
            let before = l.len();
            match clamp_range(start, stop, l.len()) {
                Some((from, to)) => l.keep_range(from, to),
                None => l.keep_range(1, 0),
            }
            let removed = before - l.len();
            drop_if_empty(ctx, key);
            ctx.dirty(removed as u64);
            r.ok();
        }
    }
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]: the index
/// of the match (nil when none), or with COUNT an array of up to that many
/// indexes (COUNT 0: all). A negative RANK searches from the tail.
fn lpos(ctx: &mut Ctx, r: &mut Reply) {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0u64);
    let mut i = 3;
    while i < ctx.args.len() {
        let Some(value) = ctx.args.try_get(i + 1) else {
            return r.error(SYNTAX);
        };
        if ctx.args.is(i, "RANK") {
            match num::parse_i64(value) {
                None => return r.error(NOT_INTEGER),
                Some(0) => return r.error(RANK_ZERO),
                Some(n) => rank = n,
            }
        } else if ctx.args.is(i, "COUNT") {
            match num::parse_i64(value).filter(|n| *n >= 0) {
                None => return r.error("ERR COUNT can't be negative"),
                Some(n) => count = Some(n as u64),
            }
        } else if ctx.args.is(i, "MAXLEN") {
            match num::parse_i64(value).filter(|n| *n >= 0) {
                None => return r.error("ERR MAXLEN can't be negative"),
                Some(n) => maxlen = n as u64,
            }
        } else {
            return r.error(SYNTAX);
        }
        i += 2;
    }
    let (key, item) = (ctx.arg(1), ctx.arg(2));
    let l = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) if count.is_some() => return r.array(0),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    let from = if rank < 0 { End::Right } else { End::Left };
    // Redis 7.0 negates RANK in a C long, so RANK LONG_MIN wraps to a negative
    // rank that every match reaches: it acts as RANK -1. Match that.
    let skip = if rank == i64::MIN { 0 } else { rank.unsigned_abs() - 1 };
    let scan = usize::try_from(maxlen).ok().filter(|n| *n > 0).unwrap_or(usize::MAX);
    let want = match count {
        None | Some(0) => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let found: Vec<usize> = l
        .iter_from(from)
        .take(scan)
        .filter(|(_, v)| *v == item)
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(if count.is_some() { want } else { 1 })
        .map(|(i, _)| i)
        .collect();
    match count {
        None => match found.first() {
            Some(&i) => r.int(i as i64),
            None => r.null(),
        },
        Some(_) => {
            r.array(found.len());
            for i in found {
                r.int(i as i64);
            }
        }
    }
}

/// Pops from `source` at `from` and pushes onto `destination` at `to`
/// (the same key rotates the list): the element, or nil when `source` is
/// missing. WRONGTYPE when either key holds another type.
fn move_generic(ctx: &mut Ctx, r: &mut Reply, from: End, to: End) {
    let (source, destination) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, source) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => return r.null(),
        Ok(Some(_)) => {}
    }
    if read(ctx, destination).is_err() {
        return r.error(WRONGTYPE);
    }
    let Some(item) = read(ctx, source).ok().flatten().and_then(|l| l.pop(from)) else {
        return r.null();
    };
    if let Ok(l) = write(ctx, destination) {
        l.push(to, &item);
    }
    drop_if_empty(ctx, source);
    ctx.dirty(1);
    r.bulk(&item);
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
fn lmove(ctx: &mut Ctx, r: &mut Reply) {
    let (Some(from), Some(to)) = (End::parse(ctx.arg(3)), End::parse(ctx.arg(4))) else {
        return r.error(SYNTAX);
    };
    move_generic(ctx, r, from, to);
}

/// RPOPLPUSH source destination
fn rpoplpush(ctx: &mut Ctx, r: &mut Reply) {
    move_generic(ctx, r, End::Right, End::Left);
}

/// The arguments of LMPOP and BLMPOP from `numkeys_at` on:
/// `numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
struct Mpop {
    /// Argument positions of the keys.
    keys: std::ops::Range<usize>,
    end: End,
    count: usize,
}

/// Parses [`Mpop`] with Redis's errors (`lmpopGenericCommand`):
/// "numkeys should be greater than 0", "count should be greater than 0",
/// syntax error (too few keys, a bad direction, unknown or repeated options).
fn parse_mpop(ctx: &Ctx, numkeys_at: usize) -> Result<Mpop, &'static str> {
    let args = ctx.args;
    let Some(numkeys) = num::parse_i64(args.get(numkeys_at)).filter(|n| *n >= 1) else {
        return Err("ERR numkeys should be greater than 0");
    };
    let first = numkeys_at + 1;
    let Some(where_at) = usize::try_from(numkeys).ok().and_then(|n| n.checked_add(first)).filter(|i| *i < args.len())
    else {
        return Err(SYNTAX);
    };
    let Some(end) = End::parse(args.get(where_at)) else {
        return Err(SYNTAX);
    };
    let mut count = None;
    let mut i = where_at + 1;
    while i < args.len() {
        match args.try_get(i + 1) {
            Some(value) if count.is_none() && args.is(i, "COUNT") => match num::parse_i64(value).filter(|n| *n >= 1) {
                Some(n) => count = Some(usize::try_from(n).unwrap_or(usize::MAX)),
                None => return Err("ERR count should be greater than 0"),
            },
            _ => return Err(SYNTAX),
        }
        i += 2;
    }
    Ok(Mpop { keys: first..where_at, end, count: count.unwrap_or(1) })
}

/// The plain pop from `end`, as a blocking or multi-key pop is logged.
fn pop_name(end: End) -> &'static [u8] {
    match end {
        End::Left => b"LPOP",
        End::Right => b"RPOP",
    }
}

/// Pops from the first non-empty list of `m`, answering `[key, [elements]]`,
/// or WRONGTYPE from the first key that is not a list. False (nothing
/// written) when every list is empty.
fn serve_mpop(ctx: &mut Ctx, r: &mut Reply, m: &Mpop) -> bool {
    let args = ctx.args;
    for key in m.keys.clone().map(|i| args.get(i)) {
        match read(ctx, key) {
            Err(()) => {
                r.error(WRONGTYPE);
                return true;
            }
            Ok(Some(l)) if !l.is_empty() => {
                let popped = pop_many(ctx, key, m.end, m.count);
                if ctx.logging() {
                    // Logged as the plain pop of the key served (Redis's form).
                    let mut n = itoa::Buffer::new();
                    ctx.propagate(&[pop_name(m.end), key, n.format(popped.len()).as_bytes()]);
                }
                r.array(2);
                r.bulk(key);
                r.array(popped.len());
                for v in &popped {
                    r.bulk(v);
                }
                return true;
            }
            Ok(_) => {}
        }
    }
    false
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: pops up to `count`
/// (default 1) elements from the first non-empty list, answering
/// `[key, [elements]]`, or a null array when every list is empty. Errors: see
/// [`parse_mpop`]; WRONGTYPE from the first key that is not a list.
fn lmpop(ctx: &mut Ctx, r: &mut Reply) {
    match parse_mpop(ctx, 1) {
        Err(e) => r.error(e),
        Ok(m) => {
            if !serve_mpop(ctx, r, &m) {
                r.null_array();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Blocking forms. Each serves like its non-blocking form when it can, else
// writes nothing and asks to wait (see `Blocking`); the timeout reply (a null
// array, as Redis 7 gives for all of them) is written by the network layer.
// ---------------------------------------------------------------------------

/// Replies with `e` and reports the command answered.
fn refuse(r: &mut Reply, e: &str) -> Attempt {
    r.error(e);
    Attempt::Replied
}

/// BLPOP/BRPOP key [key ...] timeout: `[key, element]` from the first
/// non-empty list. Errors: the timeout's (checked first), WRONGTYPE from the
/// first key that is not a list (before any later non-empty one).
fn bpop_generic(ctx: &mut Ctx, r: &mut Reply, end: End) -> Attempt {
    let last = ctx.args.len() - 1;
    let timeout_ms = match parse_timeout(ctx.arg(last)) {
        Ok(t) => t,
        Err(e) => return refuse(r, e),
    };
    let args = ctx.args;
    for key in (1..last).map(|i| args.get(i)) {
        match read(ctx, key) {
            Err(()) => return refuse(r, WRONGTYPE),
            Ok(Some(l)) if !l.is_empty() => {
                let popped = pop_many(ctx, key, end, 1);
                ctx.propagate(&[pop_name(end), key]);
                r.array(2);
                r.bulk(key);
                r.bulk_or_null(popped.first().map(|v| &**v));
                return Attempt::Replied;
            }
            Ok(_) => {}
        }
    }
    Attempt::Block { timeout_ms }
}

/// BLPOP key [key ...] timeout
fn blpop(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    bpop_generic(ctx, r, End::Left)
}

/// BRPOP key [key ...] timeout
fn brpop(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    bpop_generic(ctx, r, End::Right)
}

/// Moves as LMOVE does once `source` holds a list; waits while it is
/// missing. Only the source's type is checked before blocking, as in Redis
/// (`blmoveGenericCommand`): a destination of another type answers
/// WRONGTYPE when the move happens. A move is logged as its plain form,
/// `plain` (LMOVE with the same directions, or RPOPLPUSH).
fn bmove_generic(ctx: &mut Ctx, r: &mut Reply, from: End, to: End, timeout_ms: u64, plain: &[&[u8]]) -> Attempt {
    let source = ctx.arg(1);
    match read(ctx, source) {
        Err(()) => refuse(r, WRONGTYPE),
        Ok(None) => Attempt::Block { timeout_ms },
        Ok(Some(_)) => {
            move_generic(ctx, r, from, to);
            ctx.propagate(plain);
            Attempt::Replied
        }
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout. Errors: syntax
/// error for a bad direction, then the timeout's, then WRONGTYPE.
fn blmove(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    let (Some(from), Some(to)) = (End::parse(ctx.arg(3)), End::parse(ctx.arg(4))) else {
        return refuse(r, SYNTAX);
    };
    match parse_timeout(ctx.arg(5)) {
        Ok(t) => {
            let plain = [&b"LMOVE"[..], ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4)];
            bmove_generic(ctx, r, from, to, t, &plain)
        }
        Err(e) => refuse(r, e),
    }
}

/// BRPOPLPUSH source destination timeout
fn brpoplpush(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    match parse_timeout(ctx.arg(3)) {
        Ok(t) => {
            let plain = [&b"RPOPLPUSH"[..], ctx.arg(1), ctx.arg(2)];
            bmove_generic(ctx, r, End::Right, End::Left, t, &plain)
        }
        Err(e) => refuse(r, e),
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]. Errors:
/// LMPOP's, then the timeout's (Redis parses it last), then WRONGTYPE.
fn blmpop(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    let m = match parse_mpop(ctx, 2) {
        Ok(m) => m,
        Err(e) => return refuse(r, e),
    };
    let timeout_ms = match parse_timeout(ctx.arg(1)) {
        Ok(t) => t,
        Err(e) => return refuse(r, e),
    };
    if serve_mpop(ctx, r, &m) { Attempt::Replied } else { Attempt::Block { timeout_ms } }
}

const fn blocking(attempt: super::BlockingFn, first_key_only: bool) -> Kind {
    Kind::Blocking(Blocking { attempt, on: BlockOn::List, first_key_only })
}

const KEY1: (i32, i32, i32) = (1, 1, 1);
const KEY1_2: (i32, i32, i32) = (1, 2, 1);
/// LMPOP's keys follow numkeys (argument 1). COMMAND INFO shows them as
/// movable; routing and the shard check read numkeys (see `CommandSpec::keys`).
const NUMKEYS_AT_1: (i32, i32, i32) = (2, -1, 1);
/// Every argument but the last (the timeout) is a key.
const KEYS_BUT_LAST: (i32, i32, i32) = (1, -2, 1);
/// BLMPOP's keys follow numkeys (argument 2).
const NUMKEYS_AT_2: (i32, i32, i32) = (3, -1, 1);

/// The list family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "lpush",
        -3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(lpush),
        "list",
        "1.0.0",
        "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
    ),
    spec(
        "rpush",
        -3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(rpush),
        "list",
        "1.0.0",
        "Appends one or more elements to a list. Creates the key if it doesn't exist.",
    ),
    spec(
        "lpushx",
        -3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(lpushx),
        "list",
        "2.2.0",
        "Prepends one or more elements to a list only when the list exists.",
    ),
    spec(
        "rpushx",
        -3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(rpushx),
        "list",
        "2.2.0",
        "Appends an element to a list only when the list exists.",
    ),
    spec(
        "lpop",
        -2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(lpop),
        "list",
        "1.0.0",
        "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
    ),
    spec(
        "rpop",
        -2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(rpop),
        "list",
        "1.0.0",
        "Returns and removes the last elements of the list. Deletes the list if the last element was popped.",
    ),
    spec("llen", 2, READONLY | FAST, KEY1, Kind::Keyed(llen), "list", "1.0.0", "Returns the length of a list."),
    spec("lrange", 4, READONLY, KEY1, Kind::Keyed(lrange), "list", "1.0.0", "Returns a range of elements from a list."),
    spec(
        "lindex",
        3,
        READONLY,
        KEY1,
        Kind::Keyed(lindex),
        "list",
        "1.0.0",
        "Returns an element from a list by its index.",
    ),
    spec(
        "lset",
        4,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(lset),
        "list",
        "1.0.0",
        "Sets the value of an element in a list by its index.",
    ),
    spec(
        "linsert",
        5,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(linsert),
        "list",
        "2.2.0",
        "Inserts an element before or after another element in a list.",
    ),
    spec(
        "lrem",
        4,
        WRITE,
        KEY1,
        Kind::Keyed(lrem),
        "list",
        "1.0.0",
        "Removes elements from a list. Deletes the list if the last element was removed.",
    ),
    spec(
        "ltrim",
        4,
        WRITE,
        KEY1,
        Kind::Keyed(ltrim),
        "list",
        "1.0.0",
        "Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
    ),
    spec(
        "lpos",
        -3,
        READONLY,
        KEY1,
        Kind::Keyed(lpos),
        "list",
        "6.0.6",
        "Returns the index of matching elements in a list.",
    ),
    spec(
        "lmove",
        5,
        WRITE | DENYOOM,
        KEY1_2,
        Kind::Keyed(lmove),
        "list",
        "6.2.0",
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
    ),
    spec(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        KEY1_2,
        Kind::Keyed(rpoplpush),
        "list",
        "1.2.0",
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
    ),
    spec(
        "lmpop",
        -4,
        WRITE | MOVABLEKEYS,
        NUMKEYS_AT_1,
        Kind::Keyed(lmpop),
        "list",
        "7.0.0",
        "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
    ),
    spec(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        KEYS_BUT_LAST,
        blocking(blpop, false),
        "list",
        "2.0.0",
        "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
    spec(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        KEYS_BUT_LAST,
        blocking(brpop, false),
        "list",
        "2.0.0",
        "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
    spec(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        KEY1_2,
        blocking(blmove, true),
        "list",
        "6.2.0",
        "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
    ),
    spec(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        KEY1_2,
        blocking(brpoplpush, true),
        "list",
        "2.2.0",
        "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
    spec(
        "blmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        NUMKEYS_AT_2,
        blocking(blmpop, false),
        "list",
        "7.0.0",
        "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
];
