//! String commands: GET SET SETNX SETEX PSETEX MGET MSET GETSET GETDEL GETEX
//! APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE SETRANGE.

use super::flags::*;
use super::{CommandSpec, Ctx, Items, Kind, Merge, spec};
use crate::db::{NO_EXPIRE, UnixMs};
use crate::entry::{Entry, StrMut, ValueMut};
use crate::num;
use crate::reply::{NOT_FLOAT, NOT_INTEGER, Reply, SYNTAX, WRONGTYPE};
use crate::value::ValueRef;

/// The longest string SETRANGE and APPEND may build (Redis's proto-max-bulk-len default).
pub const STRING_BYTES_MAX: usize = 512 * 1024 * 1024;

/// The string at `key`: `Ok(None)` when missing, `Err(())` when another type.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<StrMut<'c>>, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(Entry::value_mut) {
        None => Ok(None),
        Some(ValueMut::Str(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// GET key
fn get(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Ok(Some(s)) => {
            r.bulk(s.as_bytes());
            ctx.hit(true);
        }
        Ok(None) => {
            r.null();
            ctx.hit(false);
        }
        Err(()) => r.error(WRONGTYPE),
    }
}

/// An expiry option as given on the command line, its number not yet parsed:
/// as in Redis, a syntax error among the options wins over a bad number
/// (`SET k v EX abc FOO` is a syntax error).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpireArg<'a> {
    None,
    Ex(&'a [u8]),
    Px(&'a [u8]),
    ExAt(&'a [u8]),
    PxAt(&'a [u8]),
    KeepTtl,
    Persist,
}

/// Turns an expiry option into an absolute time, or the error for a number
/// that is not an integer, and the "invalid expire time" error when it is
/// not positive or overflows (Redis's getExpireMillisecondsOrReply).
fn expire_at(arg: ExpireArg, now: UnixMs, cmd: &str) -> Result<Option<UnixMs>, String> {
    let invalid = || format!("ERR invalid expire time in '{cmd}' command");
    let number = |n: &[u8]| num::parse_i64(n).ok_or_else(|| NOT_INTEGER.to_string());
    let ms = match arg {
        ExpireArg::None | ExpireArg::KeepTtl | ExpireArg::Persist => return Ok(None),
        ExpireArg::Ex(s) | ExpireArg::ExAt(s) => {
            let s = number(s)?;
            if s <= 0 {
                return Err(invalid());
            }
            s.checked_mul(1000).ok_or_else(invalid)?
        }
        ExpireArg::Px(ms) | ExpireArg::PxAt(ms) => {
            let ms = number(ms)?;
            if ms <= 0 {
                return Err(invalid());
            }
            ms
        }
    };
    let at = match arg {
        ExpireArg::Ex(_) | ExpireArg::Px(_) => ms.checked_add(now as i64).ok_or_else(invalid)?,
        _ => ms,
    };
    Ok(Some(at as UnixMs))
}

/// Parses `[NX|XX] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL|PERSIST]` from argument
/// `from` on, allowing the options in `allowed`.
fn parse_options<'a>(
    ctx: &Ctx<'a>,
    from: usize,
    allowed: &[&str],
) -> Result<(bool, bool, bool, ExpireArg<'a>), &'static str> {
    let (mut nx, mut xx, mut get_old) = (false, false, false);
    let mut exp = ExpireArg::None;
    let mut i = from;
    while i < ctx.args.len() {
        let opt = ctx.arg(i);
        let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes()) && allowed.contains(&w);
        let next = ctx.args.try_get(i + 1);
        // As Redis, an option may repeat (the last value wins) but may not
        // be combined with a conflicting one.
        let same_kind = |e: ExpireArg, word: &[u8]| {
            matches!(
                (e, word),
                (ExpireArg::None, _)
                    | (ExpireArg::Ex(_), b"EX")
                    | (ExpireArg::Px(_), b"PX")
                    | (ExpireArg::ExAt(_), b"EXAT")
                    | (ExpireArg::PxAt(_), b"PXAT")
                    | (ExpireArg::KeepTtl, b"KEEPTTL")
                    | (ExpireArg::Persist, b"PERSIST")
            )
        };
        let upper = opt.to_ascii_uppercase();
        if is("NX") && !xx {
            nx = true;
        } else if is("XX") && !nx {
            xx = true;
        } else if is("GET") {
            get_old = true;
        } else if is("KEEPTTL") && same_kind(exp, &upper) {
            exp = ExpireArg::KeepTtl;
        } else if is("PERSIST") && same_kind(exp, &upper) {
            exp = ExpireArg::Persist;
        } else if (is("EX") || is("PX") || is("EXAT") || is("PXAT")) && same_kind(exp, &upper) && next.is_some() {
            // The number is parsed by `expire_at`, once every option is known good.
            let n = next.unwrap_or_default();
            exp = match upper.as_slice() {
                b"EX" => ExpireArg::Ex(n),
                b"PX" => ExpireArg::Px(n),
                b"EXAT" => ExpireArg::ExAt(n),
                _ => ExpireArg::PxAt(n),
            };
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    Ok((nx, xx, get_old, exp))
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]
fn set(ctx: &mut Ctx, r: &mut Reply) {
    let (nx, xx, get_old, exp) =
        match parse_options(ctx, 3, &["NX", "XX", "GET", "EX", "PX", "EXAT", "PXAT", "KEEPTTL"]) {
            Ok(o) => o,
            Err(e) => return r.error(e),
        };
    let now = ctx.now;
    let at = match expire_at(exp, now, "set") {
        Ok(at) => at,
        Err(e) => return r.error(&e),
    };
    let key = ctx.arg(1);
    if !nx && !xx && !get_old && exp != ExpireArg::KeepTtl {
        // Plain SET: one lookup, in `set`.
        let value = ctx.arg(2);
        match at {
            None => {
                ctx.db().set_str(key, value, NO_EXPIRE, now);
            }
            Some(at) => set_expiring(ctx, key, value, at),
        }
        ctx.dirty(1);
        return r.ok();
    }
    let (found, old_ttl) = match ctx.db().get(key, now) {
        Some(e) => {
            if get_old {
                match e.value() {
                    ValueRef::Str(s) => r.bulk(s),
                    _ => return r.error(WRONGTYPE),
                }
            }
            (true, e.expire_at())
        }
        None => {
            if get_old {
                r.null();
            }
            (false, NO_EXPIRE)
        }
    };
    if (nx && found) || (xx && !found) {
        if !get_old {
            r.null();
        }
        return;
    }
    let value = ctx.arg(2);
    match at {
        Some(at) => set_expiring(ctx, key, value, at),
        None => {
            // KEEPTTL keeps the TTL of a key that was live, so still ahead.
            let ttl = if exp == ExpireArg::KeepTtl { old_ttl } else { NO_EXPIRE };
            ctx.db().set_str(key, value, ttl, now);
            if get_old && ctx.logging() {
                // Logged without GET, as Redis propagates it (a replica has no one to answer).
                let args = ctx.args;
                let kept: Vec<&[u8]> =
                    (0..args.len()).filter(|&i| i < 3 || !args.is(i, "GET")).map(|i| args.get(i)).collect();
                ctx.propagate(&kept);
            }
        }
    }
    ctx.dirty(1);
    if !get_old {
        r.ok();
    }
}

/// Stores the string `value` at `key` expiring at `at`, logged as `SET key
/// value PXAT at` (Redis's form for every expiry option, whatever else was
/// given: NX, XX and GET did their part here). A time already past deletes
/// the key instead: the write happens and the key is gone at once, logged as
/// `DEL key`.
fn set_expiring(ctx: &mut Ctx, key: &[u8], value: &[u8], at: UnixMs) {
    let now = ctx.now;
    if ctx.already_expired(at) {
        ctx.db().remove(key, now);
        // The value stored and expired at once counts as an expired key.
        ctx.db().expired += 1;
        return ctx.propagate(&[b"DEL", key]);
    }
    ctx.db().set_str(key, value, at, now);
    if ctx.logging() {
        let mut n = itoa::Buffer::new();
        ctx.propagate(&[b"SET", key, value, b"PXAT", n.format(at).as_bytes()]);
    }
}

/// SETNX key value
fn setnx(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    if ctx.db().contains(key, now) {
        return r.int(0);
    }
    let value = ctx.arg(2);
    ctx.db().set_str(key, value, NO_EXPIRE, now);
    ctx.dirty(1);
    r.int(1);
}

fn setex_generic(ctx: &mut Ctx, r: &mut Reply, millis: bool, name: &str) {
    let n = ctx.arg(2);
    let arg = if millis { ExpireArg::Px(n) } else { ExpireArg::Ex(n) };
    let now = ctx.now;
    let at = match expire_at(arg, now, name) {
        Ok(Some(at)) => at,
        Ok(None) => unreachable!("EX and PX always give a time"),
        Err(e) => return r.error(&e),
    };
    let (key, value) = (ctx.arg(1), ctx.arg(3));
    set_expiring(ctx, key, value, at);
    ctx.dirty(1);
    r.ok();
}

/// SETEX key seconds value
fn setex(ctx: &mut Ctx, r: &mut Reply) {
    setex_generic(ctx, r, false, "setex");
}

/// PSETEX key milliseconds value
fn psetex(ctx: &mut Ctx, r: &mut Reply) {
    setex_generic(ctx, r, true, "psetex");
}

/// MGET key [key ...]
fn mget(ctx: &mut Ctx, r: &mut Reply) {
    r.array(ctx.args.len() - 1);
    mget_items(ctx, |f| f(r));
}

fn mget_items(ctx: &mut Ctx, mut emit: impl FnMut(&mut dyn FnMut(&mut Reply))) {
    let now = ctx.now;
    for i in 1..ctx.args.len() {
        let key = ctx.args.get(i);
        let found = match ctx.ks.db(ctx.db).get(key, now).map(|e| e.value()) {
            Some(ValueRef::Str(s)) => {
                emit(&mut |r: &mut Reply| r.bulk(s));
                true
            }
            _ => {
                emit(&mut |r: &mut Reply| r.null());
                false
            }
        };
        ctx.hit(found);
    }
}

fn mget_part(ctx: &mut Ctx, items: &mut Items) {
    mget_items(ctx, |f| items.item(|r| f(r)));
}

/// MSET key value [key value ...]
fn mset(ctx: &mut Ctx, r: &mut Reply) {
    if ctx.args.len() % 2 == 0 {
        return r.arity_error("mset");
    }
    mset_pairs(ctx);
    r.ok();
}

fn mset_pairs(ctx: &mut Ctx) {
    let now = ctx.now;
    for i in (1..ctx.args.len()).step_by(2) {
        let (key, value) = (ctx.args.get(i), ctx.args.get(i + 1));
        ctx.ks.db(ctx.db).set_str(key, value, NO_EXPIRE, now);
    }
    ctx.dirty((ctx.args.len() / 2) as u64);
}

fn mset_part(ctx: &mut Ctx, items: &mut Items) {
    mset_pairs(ctx);
    items.item(|r| r.ok());
}

/// MSETNX key value [key value ...] (keys on this shard): sets all or none.
fn msetnx(ctx: &mut Ctx, r: &mut Reply) {
    if ctx.args.len() % 2 == 0 {
        return r.arity_error("msetnx");
    }
    let now = ctx.now;
    let any = (1..ctx.args.len()).step_by(2).any(|i| ctx.ks.db(ctx.db).contains(ctx.args.get(i), now));
    if any {
        return r.int(0);
    }
    mset_pairs(ctx);
    r.int(1);
}

/// GETSET key value
fn getset(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(old) => r.bulk_or_null(old.as_ref().map(StrMut::as_bytes)),
    }
    let value = ctx.arg(2);
    ctx.db().set_str(key, value, NO_EXPIRE, now);
    ctx.dirty(1);
}

/// GETDEL key
fn getdel(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.null(),
        Ok(Some(s)) => {
            r.bulk(s.as_bytes());
            ctx.db().remove(key, now);
            ctx.dirty(1);
        }
    }
}

/// GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]
fn getex(ctx: &mut Ctx, r: &mut Reply) {
    let exp = match parse_options(ctx, 2, &["EX", "PX", "EXAT", "PXAT", "PERSIST"]) {
        Ok((_, _, _, exp)) => exp,
        Err(e) => return r.error(e),
    };
    let (key, now) = (ctx.arg(1), ctx.now);
    // As in Redis, a missing key (nil) and a wrong type come before a bad
    // expire time: GETEX missing EX 0 is nil.
    let at = expire_at(exp, now, "getex");
    let at = match (read(ctx, key), at) {
        (Err(()), _) => return r.error(WRONGTYPE),
        (Ok(None), _) => return r.null(),
        (Ok(Some(_)), Err(e)) => return r.error(&e),
        (Ok(Some(s)), Ok(at)) => {
            r.bulk(s.as_bytes());
            at
        }
    };
    // Never logged as GETEX: as PEXPIREAT, DEL or PERSIST (Redis's forms).
    match (exp, at) {
        (_, Some(at)) if ctx.already_expired(at) => {
            ctx.db().remove(key, now);
            ctx.dirty(1);
            ctx.propagate(&[b"DEL", key]);
        }
        (_, Some(at)) => {
            ctx.db().set_expire(key, at, now);
            ctx.dirty(1);
            if ctx.logging() {
                let mut n = itoa::Buffer::new();
                ctx.propagate(&[b"PEXPIREAT", key, n.format(at).as_bytes()]);
            }
        }
        (ExpireArg::Persist, _) if ctx.db().get(key, now).is_some_and(|e| e.expire_at() != NO_EXPIRE) => {
            ctx.db().set_expire(key, NO_EXPIRE, now);
            ctx.dirty(1);
            ctx.propagate(&[b"PERSIST", key]);
        }
        _ => {}
    }
}

/// APPEND key value
fn append(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    let add = ctx.arg(2);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(Some(mut s)) => {
            if s.len() + add.len() > STRING_BYTES_MAX {
                return r.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            s.append(add);
            r.int(s.len() as i64);
            ctx.dirty(1);
        }
        Ok(None) => {
            ctx.db().set_str(key, add, NO_EXPIRE, now);
            r.int(add.len() as i64);
            ctx.dirty(1);
        }
    }
}

/// STRLEN key
fn strlen(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(s) => r.int(s.map_or(0, |s| s.len()) as i64),
    }
}

/// Adds `by` to the integer at the key named by argument 1, keeping its TTL.
fn incr_generic(ctx: &mut Ctx, r: &mut Reply, by: i64) {
    let (key, now) = (ctx.arg(1), ctx.now);
    let mut buf = Vec::with_capacity(20);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(cur) => {
            let old = match cur.as_ref() {
                None => 0,
                Some(s) => match num::parse_i64(s.as_bytes()) {
                    Some(n) => n,
                    None => return r.error(NOT_INTEGER),
                },
            };
            let Some(new) = old.checked_add(by) else {
                return r.error("ERR increment or decrement would overflow");
            };
            num::write_i64(new, &mut buf);
            match cur {
                Some(mut s) => s.set(&buf),
                None => {
                    ctx.db().set_str(key, &buf, NO_EXPIRE, now);
                }
            }
            ctx.dirty(1);
            r.int(new);
        }
    }
}

/// INCR key
fn incr(ctx: &mut Ctx, r: &mut Reply) {
    incr_generic(ctx, r, 1);
}

/// DECR key
fn decr(ctx: &mut Ctx, r: &mut Reply) {
    incr_generic(ctx, r, -1);
}

/// INCRBY key increment
fn incrby(ctx: &mut Ctx, r: &mut Reply) {
    match num::parse_i64(ctx.arg(2)) {
        Some(by) => incr_generic(ctx, r, by),
        None => r.error(NOT_INTEGER),
    }
}

/// DECRBY key decrement
fn decrby(ctx: &mut Ctx, r: &mut Reply) {
    match num::parse_i64(ctx.arg(2)) {
        Some(i64::MIN) => r.error("ERR decrement would overflow"),
        Some(by) => incr_generic(ctx, r, -by),
        None => r.error(NOT_INTEGER),
    }
}

/// INCRBYFLOAT key increment
fn incrbyfloat(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    let by = num::parse_f64(ctx.arg(2));
    // Redis checks the type, then the stored value, then the increment.
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(cur) => {
            let old = match cur.as_ref() {
                None => 0.0,
                Some(s) => match num::parse_f64(s.as_bytes()) {
                    Some(v) => v,
                    None => return r.error(NOT_FLOAT),
                },
            };
            let Some(by) = by else {
                return r.error(NOT_FLOAT);
            };
            let new = old + by;
            if !new.is_finite() {
                return r.error("ERR increment would produce NaN or Infinity");
            }
            let mut text = Vec::with_capacity(24);
            num::format_f64_human(new, &mut text);
            r.bulk(&text);
            match cur {
                Some(mut s) => s.set(&text),
                None => {
                    ctx.db().set_str(key, &text, NO_EXPIRE, now);
                }
            }
            ctx.dirty(1);
            // Logged as the value it gave, so no replica adds in its own precision.
            ctx.propagate(&[b"SET", key, &text, b"KEEPTTL"]);
        }
    }
}

/// GETRANGE key start end
fn getrange(ctx: &mut Ctx, r: &mut Reply) {
    let (Some(mut start), Some(mut end)) = (num::parse_i64(ctx.arg(2)), num::parse_i64(ctx.arg(3))) else {
        return r.error(NOT_INTEGER);
    };
    let key = ctx.arg(1);
    let s = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => return r.bulk(b""),
        Ok(Some(s)) => s,
    };
    let s = s.as_bytes();
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return r.bulk(b"");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return r.bulk(b"");
    }
    r.bulk(&s[start as usize..=end as usize]);
}

/// SETRANGE key offset value
fn setrange(ctx: &mut Ctx, r: &mut Reply) {
    let Some(offset) = num::parse_i64(ctx.arg(2)) else {
        return r.error(NOT_INTEGER);
    };
    if offset < 0 {
        return r.error("ERR offset is out of range");
    }
    let (key, now, patch) = (ctx.arg(1), ctx.now, ctx.arg(3));
    let offset = offset as usize;
    let too_big = |len: usize| offset.saturating_add(len) > STRING_BYTES_MAX;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => {
            if patch.is_empty() {
                return r.int(0);
            }
            if too_big(patch.len()) {
                return r.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            let mut s = vec![0u8; offset];
            s.extend_from_slice(patch);
            r.int(s.len() as i64);
            ctx.db().set_str(key, &s, NO_EXPIRE, now);
            ctx.dirty(1);
        }
        Ok(Some(mut s)) => {
            if patch.is_empty() {
                return r.int(s.len() as i64);
            }
            if too_big(patch.len()) {
                return r.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            s.write_at(offset, patch);
            r.int(s.len() as i64);
            ctx.dirty(1);
        }
    }
}

const KEY1: (i32, i32, i32) = (1, 1, 1);

/// The string family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec("get", 2, READONLY | FAST, KEY1, Kind::Keyed(get), "string", "1.0.0", "Returns the string value of a key."),
    spec(
        "set",
        -3,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(set),
        "string",
        "1.0.0",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
    ),
    spec(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(setnx),
        "string",
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist.",
    ),
    spec(
        "setex",
        4,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(setex),
        "string",
        "2.0.0",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
    ),
    spec(
        "psetex",
        4,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(psetex),
        "string",
        "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
    ),
    spec(
        "mget",
        -2,
        READONLY | FAST,
        (1, -1, 1),
        Kind::MultiKey { whole: mget, part: mget_part, merge: Merge::Interleave },
        "string",
        "1.0.0",
        "Atomically returns the string values of one or more keys.",
    ),
    spec(
        "mset",
        -3,
        WRITE | DENYOOM,
        (1, -1, 2),
        Kind::MultiKey { whole: mset, part: mset_part, merge: Merge::Ok },
        "string",
        "1.0.1",
        "Atomically creates or modifies the string values of one or more keys.",
    ),
    spec(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        (1, -1, 2),
        Kind::Keyed(msetnx),
        "string",
        "1.0.1",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    ),
    spec(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(getset),
        "string",
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value.",
    ),
    spec(
        "getdel",
        2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(getdel),
        "string",
        "6.2.0",
        "Returns the string value of a key after deleting the key.",
    ),
    spec(
        "getex",
        -2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(getex),
        "string",
        "6.2.0",
        "Returns the string value of a key after setting its expiration time.",
    ),
    spec(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(append),
        "string",
        "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    ),
    spec(
        "strlen",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(strlen),
        "string",
        "2.2.0",
        "Returns the length of a string value.",
    ),
    spec(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(incr),
        "string",
        "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(decr),
        "string",
        "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(incrby),
        "string",
        "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(decrby),
        "string",
        "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(incrbyfloat),
        "string",
        "2.6.0",
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "getrange",
        4,
        READONLY,
        KEY1,
        Kind::Keyed(getrange),
        "string",
        "2.4.0",
        "Returns a substring of the string stored at a key.",
    ),
    spec(
        "setrange",
        4,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(setrange),
        "string",
        "2.2.0",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    ),
];
