//! Generic key commands: DEL UNLINK EXISTS TOUCH TYPE EXPIRE PEXPIRE EXPIREAT
//! PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST KEYS SCAN RANDOMKEY
//! DBSIZE FLUSHDB FLUSHALL MOVE SWAPDB.

use super::flags::*;
use super::{CommandSpec, Ctx, Items, Kind, Merge, spec};
use crate::args::Args;
use crate::db::{NO_EXPIRE, UnixMs};
use crate::dump::Restored;
use crate::glob::glob_match;
use crate::num;
use crate::reply::{NOT_INTEGER, Reply, SYNTAX};
use crate::slot::SLOTS;
use crate::value::ValueRef;

/// DEL / UNLINK on this shard's keys: the number removed.
fn del_count(ctx: &mut Ctx) -> i64 {
    let now = ctx.now;
    let mut n = 0;
    for i in 1..ctx.args.len() {
        let key = ctx.args.get(i);
        if ctx.ks.db(ctx.db).remove(key, now).is_some() {
            n += 1;
        }
    }
    ctx.dirty(n as u64);
    n
}

/// DEL key [key ...] and UNLINK key [key ...]. Values are freed inline: a
/// shard owns its memory, and freeing is as cheap as the allocation was.
fn del(ctx: &mut Ctx, r: &mut Reply) {
    r.int(del_count(ctx));
}

fn del_part(ctx: &mut Ctx, items: &mut Items) {
    let n = del_count(ctx);
    items.item(|r| r.int(n));
}

/// EXISTS / TOUCH on this shard's keys: the number present (repeats count).
fn exists_count(ctx: &mut Ctx) -> i64 {
    let now = ctx.now;
    (1..ctx.args.len()).filter(|&i| ctx.ks.db(ctx.db).contains(ctx.args.get(i), now)).count() as i64
}

/// EXISTS key [key ...]
fn exists(ctx: &mut Ctx, r: &mut Reply) {
    r.int(exists_count(ctx));
}

fn exists_part(ctx: &mut Ctx, items: &mut Items) {
    let n = exists_count(ctx);
    items.item(|r| r.int(n));
}

/// TYPE key
fn type_(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    match ctx.db().get(key, now) {
        Some(e) => r.simple(e.type_name()),
        None => r.simple("none"),
    }
}

/// EXPIRE-family options.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key n [NX|XX|GT|LT]
fn expire_generic(ctx: &mut Ctx, r: &mut Reply, name: &str, millis: bool, absolute: bool) {
    let Some(n) = num::parse_i64(ctx.arg(2)) else {
        return r.error(NOT_INTEGER);
    };
    let mut f = ExpireFlags::default();
    for opt in ctx.args.iter_from(3) {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => f.nx = true,
            b"XX" => f.xx = true,
            b"GT" => f.gt = true,
            b"LT" => f.lt = true,
            _ => {
                return r.error(&format!("ERR Unsupported option {}", super::printable(opt, 128)));
            }
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return r.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if f.gt && f.lt {
        return r.error("ERR GT and LT options at the same time are not compatible");
    }
    let invalid = || format!("ERR invalid expire time in '{name}' command");
    let mut when = n;
    if !millis {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return r.error(&invalid()),
        }
    }
    let now = ctx.now;
    if !absolute {
        match when.checked_add(now as i64) {
            Some(at) => when = at,
            None => return r.error(&invalid()),
        }
    }
    let key = ctx.arg(1);
    let Some(e) = ctx.db().get(key, now) else {
        return r.int(0);
    };
    let current = e.expire_at();
    let has_ttl = current != NO_EXPIRE;
    let refused = (f.nx && has_ttl)
        || (f.xx && !has_ttl)
        || (f.gt && (!has_ttl || when <= current as i64))
        || (f.lt && has_ttl && when >= current as i64);
    if refused {
        return r.int(0);
    }
    ctx.dirty(1);
    r.int(1);
    // As Redis propagates it: a time already past as the deletion it is, any
    // other as PEXPIREAT with the absolute time, the options kept.
    if when <= 0 || ctx.already_expired(when as UnixMs) {
        ctx.db().remove(key, now);
        return ctx.propagate(&[b"DEL", key]);
    }
    ctx.db().set_expire(key, when as UnixMs, now);
    if !(millis && absolute) && ctx.logging() {
        let mut n = itoa::Buffer::new();
        let mut args: Vec<&[u8]> = vec![b"PEXPIREAT", key, n.format(when).as_bytes()];
        args.extend(ctx.args.iter_from(3));
        ctx.propagate(&args);
    }
}

fn expire(ctx: &mut Ctx, r: &mut Reply) {
    expire_generic(ctx, r, "expire", false, false);
}
fn pexpire(ctx: &mut Ctx, r: &mut Reply) {
    expire_generic(ctx, r, "pexpire", true, false);
}
fn expireat(ctx: &mut Ctx, r: &mut Reply) {
    expire_generic(ctx, r, "expireat", false, true);
}
fn pexpireat(ctx: &mut Ctx, r: &mut Reply) {
    expire_generic(ctx, r, "pexpireat", true, true);
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME key: -2 when missing, -1 without TTL.
fn ttl_generic(ctx: &mut Ctx, r: &mut Reply, millis: bool, absolute: bool) {
    let (key, now) = (ctx.arg(1), ctx.now);
    let Some(e) = ctx.db().get(key, now) else {
        return r.int(-2);
    };
    let at = e.expire_at();
    if at == NO_EXPIRE {
        return r.int(-1);
    }
    let v = match (absolute, millis) {
        (true, true) => at as i64,
        (true, false) => ((at + 500) / 1000) as i64,
        (false, true) => at.saturating_sub(now) as i64,
        (false, false) => (at.saturating_sub(now) as i64 + 500) / 1000,
    };
    r.int(v);
}

fn ttl(ctx: &mut Ctx, r: &mut Reply) {
    ttl_generic(ctx, r, false, false);
}
fn pttl(ctx: &mut Ctx, r: &mut Reply) {
    ttl_generic(ctx, r, true, false);
}
fn expiretime(ctx: &mut Ctx, r: &mut Reply) {
    ttl_generic(ctx, r, false, true);
}
fn pexpiretime(ctx: &mut Ctx, r: &mut Reply) {
    ttl_generic(ctx, r, true, true);
}

/// PERSIST key
fn persist(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    match ctx.db().get(key, now) {
        Some(e) if e.expire_at() != NO_EXPIRE => {
            ctx.db().set_expire(key, NO_EXPIRE, now);
            ctx.dirty(1);
            r.int(1);
        }
        _ => r.int(0),
    }
}

fn no_check(_: &Args) -> Result<(), String> {
    Ok(())
}

/// KEYS pattern, on one shard: each live matching key is one item.
fn keys_part(ctx: &mut Ctx, items: &mut Items) {
    let pattern = ctx.arg(1);
    let all = pattern == b"*";
    let (now, db) = (ctx.now, ctx.ks.db_ref(ctx.db));
    for slot in db.owned().iter() {
        db.for_each_in_slot(slot, |e| {
            if !e.is_expired(now) && (all || glob_match(pattern, e.key(), false)) {
                items.item(|r| r.bulk(e.key()));
            }
        });
    }
}

/// SCAN's options.
struct ScanArgs<'a> {
    cursor: u64,
    count: usize,
    pattern: Option<&'a [u8]>,
    type_filter: Option<&'a [u8]>,
}

fn parse_scan<'a>(args: &Args<'a>) -> Result<ScanArgs<'a>, String> {
    let cursor = num::parse_cursor(args.get(1)).ok_or("ERR invalid cursor")?;
    let mut s = ScanArgs { cursor, count: 10, pattern: None, type_filter: None };
    let mut i = 2;
    while i < args.len() {
        let value = args.try_get(i + 1).ok_or(SYNTAX)?;
        if args.is(i, "COUNT") {
            match num::parse_i64(value) {
                Some(n) if n >= 1 => s.count = n as usize,
                Some(_) => return Err(SYNTAX.into()),
                None => return Err(NOT_INTEGER.into()),
            }
        } else if args.is(i, "MATCH") {
            s.pattern = Some(value).filter(|p| *p != b"*");
        } else if args.is(i, "TYPE") {
            s.type_filter = Some(value);
        } else {
            return Err(SYNTAX.into());
        }
        i += 2;
    }
    Ok(s)
}

fn scan_check(args: &Args) -> Result<(), String> {
    parse_scan(args).map(|_| ())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], on one shard.
///
/// The cursor is a position in the node's slots laid out shard after shard
/// ([`crate::slot::ShardSlots::scan_span`]): shard 0's slots in slot order,
/// then shard 1's, and so on, so each shard owns one contiguous span of
/// cursors however its slots interleave with the others'. Each shard scans
/// whole slots of its span from the cursor on, until it collected COUNT
/// keys or examined ten times that many entries (Redis's bound on one
/// call's work), and gives as items: the next position to visit (its span's
/// end when done), its span's end, the COUNT, then the keys. A shard whose
/// span lies before the cursor gives only `-1`. [`Merge::Scan`] then takes
/// shards in order. A key present for the whole iteration is returned, and
/// once, whatever tables grow meanwhile, since slots are visited whole and
/// each once. The cursor means the same slot as long as the shard count
/// stays (Redis's cursors too are valid on one server only).
fn scan_part(ctx: &mut Ctx, items: &mut Items) {
    let Ok(s) = parse_scan(&ctx.args) else {
        return items.item(|r| r.int(-1));
    };
    let now = ctx.now;
    let db = ctx.ks.db_ref(ctx.db);
    let owned = db.owned();
    let span = owned.scan_span();
    if s.cursor as usize >= span.end {
        return items.item(|r| r.int(-1));
    }
    // The local index of the next slot to visit.
    let mut local = (s.cursor as usize).max(span.start) - span.start;
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut examined = 0usize;
    while local < owned.len() && keys.len() < s.count && examined < s.count.saturating_mul(10) {
        let slot = owned.slot(local);
        examined += db.slot_len(slot);
        db.for_each_in_slot(slot, |e| {
            let type_ok = s.type_filter.is_none_or(|t| t.eq_ignore_ascii_case(e.type_name().as_bytes()));
            if !e.is_expired(now) && type_ok && s.pattern.is_none_or(|p| glob_match(p, e.key(), false)) {
                keys.push(e.key());
            }
        });
        local += 1;
    }
    items.item(|r| r.int((span.start + local) as i64));
    items.item(|r| r.int(span.end as i64));
    items.item(|r| r.int(s.count as i64));
    for k in keys {
        items.item(|r| r.bulk(k));
    }
}

/// The cursor a client sees for the next position: 0 once every slot was visited.
pub fn scan_merge_cursor(next: usize) -> usize {
    if next >= SLOTS { 0 } else { next }
}

/// RANDOMKEY on one shard: two items, the live key count and a random live key (or null).
fn randomkey_part(ctx: &mut Ctx, items: &mut Items) {
    const TRIES_MAX: usize = 100;
    let now = ctx.now;
    let mut picked = None;
    for _ in 0..TRIES_MAX {
        match ctx.ks.random_key(ctx.db, now) {
            None => break,
            Some((key, true)) => {
                // Reclaim the expired key and try again, as Redis does.
                ctx.ks.db(ctx.db).remove(&key, now);
            }
            Some((key, false)) => {
                picked = Some(key);
                break;
            }
        }
    }
    let n = ctx.ks.db_ref(ctx.db).len() as i64;
    items.item(|r| r.int(n));
    items.item(|r| r.bulk_or_null(picked.as_deref()));
}

/// DBSIZE on one shard.
fn dbsize_part(ctx: &mut Ctx, items: &mut Items) {
    let n = ctx.ks.db_ref(ctx.db).len() as i64;
    items.item(|r| r.int(n));
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]
fn flush_check(args: &Args) -> Result<(), String> {
    match args.len() {
        1 => Ok(()),
        2 if args.is(1, "ASYNC") || args.is(1, "SYNC") => Ok(()),
        _ => Err(SYNTAX.into()),
    }
}

fn flushdb_part(ctx: &mut Ctx, items: &mut Items) {
    let n = ctx.ks.db_ref(ctx.db).len() as u64;
    ctx.ks.db(ctx.db).clear();
    ctx.dirty(n.max(1));
    items.item(|r| r.ok());
}

fn flushall_part(ctx: &mut Ctx, items: &mut Items) {
    for i in 0..ctx.ks.databases() {
        let n = ctx.ks.db_ref(i).len() as u64;
        ctx.ks.db(i).clear();
        ctx.dirty(n);
    }
    ctx.dirty(1);
    items.item(|r| r.ok());
}

/// MOVE key db
fn move_(ctx: &mut Ctx, r: &mut Reply) {
    let Some(target) = num::parse_i64(ctx.arg(2)) else {
        return r.error(NOT_INTEGER);
    };
    if target < 0 || target as usize >= ctx.ks.databases() || target > i32::MAX as i64 {
        return r.error("ERR DB index is out of range");
    }
    let target = target as usize;
    if target == ctx.db {
        return r.error("ERR source and destination objects are the same");
    }
    let (key, now) = (ctx.arg(1), ctx.now);
    if ctx.ks.db(target).contains(key, now) || !ctx.db().contains(key, now) {
        return r.int(0);
    }
    let Some(e) = ctx.db().remove(key, now) else {
        return r.int(0);
    };
    let at = e.expire_at();
    ctx.ks.db(target).set(key, e.into_value(), at, now);
    ctx.dirty(1);
    r.int(1);
}

/// SWAPDB index1 index2
fn swapdb_check(args: &Args) -> Result<(), String> {
    let a = num::parse_i64(args.get(1)).ok_or("ERR invalid first DB index")?;
    let b = num::parse_i64(args.get(2)).ok_or("ERR invalid second DB index")?;
    if a < 0 || b < 0 || a > i32::MAX as i64 || b > i32::MAX as i64 {
        return Err("ERR DB index is out of range".into());
    }
    Ok(())
}

fn swapdb_part(ctx: &mut Ctx, items: &mut Items) {
    let (a, b) = (num::parse_i64(ctx.arg(1)).unwrap_or(-1), num::parse_i64(ctx.arg(2)).unwrap_or(-1));
    let n = ctx.ks.databases() as i64;
    if !(0..n).contains(&a) || !(0..n).contains(&b) {
        return items.item(|r| r.error("ERR DB index is out of range"));
    }
    if a != b {
        ctx.ks.swap_dbs(a as usize, b as usize);
        ctx.dirty(1);
    }
    items.item(|r| r.ok());
}

/// RENAME key newkey / RENAMENX key newkey (both keys on this shard).
fn rename_generic(ctx: &mut Ctx, r: &mut Reply, nx: bool) {
    let (src, dst, now) = (ctx.arg(1), ctx.arg(2), ctx.now);
    if !ctx.db().contains(src, now) {
        return r.error("ERR no such key");
    }
    if src == dst {
        return if nx { r.int(0) } else { r.ok() };
    }
    if nx && ctx.db().contains(dst, now) {
        return r.int(0);
    }
    let Some(e) = ctx.db().remove(src, now) else { return r.error("ERR no such key") };
    let at = e.expire_at();
    ctx.db().set(dst, e.into_value(), at, now);
    ctx.dirty(1);
    if nx { r.int(1) } else { r.ok() }
}

fn rename(ctx: &mut Ctx, r: &mut Reply) {
    rename_generic(ctx, r, false);
}
fn renamenx(ctx: &mut Ctx, r: &mut Reply) {
    rename_generic(ctx, r, true);
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &mut Ctx, r: &mut Reply) {
    let (mut target, mut replace) = (ctx.db, false);
    let mut i = 3;
    while i < ctx.args.len() {
        if ctx.args.is(i, "REPLACE") {
            replace = true;
            i += 1;
        } else if ctx.args.is(i, "DB") && i + 1 < ctx.args.len() {
            match num::parse_i64(ctx.arg(i + 1)) {
                Some(db) if db >= 0 && (db as usize) < ctx.ks.databases() => target = db as usize,
                Some(_) => return r.error("ERR DB index is out of range"),
                None => return r.error(NOT_INTEGER),
            }
            i += 2;
        } else {
            return r.error(SYNTAX);
        }
    }
    let (src, dst, now) = (ctx.arg(1), ctx.arg(2), ctx.now);
    if src == dst && target == ctx.db {
        return r.error("ERR source and destination objects are the same");
    }
    let Some((value, at)) = ctx.db().get(src, now).map(|e| (e.to_value(), e.expire_at())) else { return r.int(0) };
    if !replace && ctx.ks.db(target).contains(dst, now) {
        return r.int(0);
    }
    ctx.ks.db(target).set(dst, value, at, now);
    ctx.dirty(1);
    r.int(1);
}

/// OBJECT ENCODING|REFCOUNT|IDLETIME key, OBJECT HELP
fn object(ctx: &mut Ctx, r: &mut Reply) {
    let sub = ctx.arg(1).to_ascii_uppercase();
    let known = [(&b"ENCODING"[..], 3usize), (b"REFCOUNT", 3), (b"IDLETIME", 3), (b"FREQ", 3), (b"HELP", 2)];
    let Some(&(_, arity)) = known.iter().find(|(name, _)| *name == sub.as_slice()) else {
        return r.error(&super::unknown_subcommand_error("object", ctx.arg(1)));
    };
    if ctx.args.len() != arity {
        return r.error(&super::subcommand_arity_error("object", ctx.arg(1)));
    }
    if sub == b"HELP" {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ];
        r.array(lines.len());
        for l in lines {
            r.simple(l);
        }
        return;
    }
    let (key, now) = (ctx.arg(2), ctx.now);
    // Read without touching the access time, as Redis's OBJECT does.
    let found = ctx.ks.db_ref(ctx.db).peek(key, now).map(|e| {
        // Redis shares the integers 0..10000 and reports them with its "shared" count.
        let shared =
            matches!(e.value(), ValueRef::Str(s) if num::parse_i64(s).is_some_and(|n| (0..10_000).contains(&n)));
        (e.encoding(), e.idle_seconds(now), shared, e.frequency(now))
    });
    let Some((encoding, idle, shared, freq)) = found else { return r.null() };
    match sub.as_slice() {
        b"ENCODING" => r.bulk(encoding.as_bytes()),
        b"REFCOUNT" => r.int(if shared { i32::MAX as i64 } else { 1 }),
        b"FREQ" if !ctx.ks.lfu_policy() => r.error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        b"FREQ" => r.int(freq as i64),
        _ => r.int(idle as i64),
    }
}

/// DUMP key
fn dump(ctx: &mut Ctx, r: &mut Reply) {
    let (key, now) = (ctx.arg(1), ctx.now);
    match ctx.db().get(key, now) {
        Some(e) => r.bulk(&crate::dump::dump(e.value())),
        None => r.null(),
    }
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(ctx: &mut Ctx, r: &mut Reply) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < ctx.args.len() {
        let more = j + 1 < ctx.args.len();
        if ctx.args.is(j, "REPLACE") {
            replace = true;
        } else if ctx.args.is(j, "ABSTTL") {
            absttl = true;
        } else if ctx.args.is(j, "IDLETIME") && more && freq.is_none() {
            match num::parse_i64(ctx.arg(j + 1)) {
                None => return r.error(NOT_INTEGER),
                Some(n) if n < 0 => return r.error("ERR Invalid IDLETIME value, must be >= 0"),
                Some(n) => idle = Some(n),
            }
            j += 1;
        } else if ctx.args.is(j, "FREQ") && more && idle.is_none() {
            match num::parse_i64(ctx.arg(j + 1)) {
                None => return r.error(NOT_INTEGER),
                Some(n) if !(0..=255).contains(&n) => {
                    return r.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
                }
                Some(n) => freq = Some(n),
            }
            j += 1;
        } else {
            return r.error(SYNTAX);
        }
        j += 1;
    }
    let Some(ttl) = num::parse_i64(ctx.arg(2)) else { return r.error(NOT_INTEGER) };
    if ttl < 0 {
        return r.error("ERR Invalid TTL value, must be >= 0");
    }
    let (key, now) = (ctx.arg(1), ctx.now);
    if !replace && ctx.db().contains(key, now) {
        return r.error("BUSYKEY Target key name already exists.");
    }
    let Some(value) = crate::dump::restore_ref(ctx.arg(3)) else {
        return r.error("ERR DUMP payload version or checksum are wrong");
    };
    let expire_at = match (ttl, absttl) {
        (0, _) => NO_EXPIRE,
        (t, true) => t as UnixMs,
        (t, false) => now.saturating_add(t as UnixMs),
    };
    if ctx.already_expired(expire_at) {
        // Already expired: the key is not created (and a replaced one is
        // gone, logged as its deletion).
        if ctx.db().remove(key, now).is_some() {
            ctx.dirty(1);
            ctx.propagate(&[b"DEL", key]);
        }
        return r.ok();
    }
    match value {
        Restored::Str(bytes) => ctx.db().set_str(key, bytes, expire_at, now),
        Restored::Value(value) => ctx.db().set(key, value, expire_at, now),
    };
    // Looked up again only for the options that need the entry: a replica's
    // full sync restores a million keys without them.
    if (idle.is_some() || freq.is_some())
        && let Some(e) = ctx.db().get(key, now)
    {
        if let Some(idle) = idle {
            e.set_idle_ms(now, (idle as u64).saturating_mul(1000));
        }
        if let Some(f) = freq {
            e.set_frequency(f as u8);
        }
    }
    ctx.dirty(1);
    r.ok();
    if expire_at != NO_EXPIRE && !absttl && ctx.logging() {
        // Logged with the absolute time, as Redis propagates it: the TTL
        // replaced and ABSTTL added, the other options kept.
        let mut n = itoa::Buffer::new();
        let mut args: Vec<&[u8]> = vec![ctx.arg(0), key, n.format(expire_at).as_bytes()];
        args.extend(ctx.args.iter_from(3));
        args.push(b"ABSTTL");
        ctx.propagate(&args);
    }
}

/// MEMORY USAGE key [SAMPLES count], MEMORY HELP
fn memory(ctx: &mut Ctx, r: &mut Reply) {
    let known = [(&b"USAGE"[..], -3i32), (b"HELP", 2)];
    let sub = ctx.arg(1).to_ascii_uppercase();
    let Some(&(_, arity)) = known.iter().find(|(name, _)| *name == sub.as_slice()) else {
        return r.error(&super::unknown_subcommand_error("memory", ctx.arg(1)));
    };
    let n = ctx.args.len();
    if (arity > 0 && n != arity as usize) || (arity < 0 && n < (-arity) as usize) {
        return r.error(&super::subcommand_arity_error("memory", ctx.arg(1)));
    }
    if sub == b"HELP" {
        let lines = [
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ];
        r.array(lines.len());
        for l in lines {
            r.simple(l);
        }
        return;
    }
    // As Redis: SAMPLES may repeat; a count that is not an integer is
    // NOT_INTEGER, a negative one a syntax error. Every value is measured
    // whole, so the count changes nothing else.
    let mut i = 3;
    while i < n {
        if !ctx.args.is(i, "SAMPLES") || i + 1 >= n {
            return r.error(SYNTAX);
        }
        match num::parse_i64(ctx.arg(i + 1)) {
            None => return r.error(NOT_INTEGER),
            Some(s) if s < 0 => return r.error(SYNTAX),
            Some(_) => {}
        }
        i += 2;
    }
    let (key, now) = (ctx.arg(2), ctx.now);
    match ctx.db().get(key, now) {
        Some(e) => r.int(crate::db::Db::entry_bytes(e) as i64),
        None => r.null(),
    }
}

const KEY1: (i32, i32, i32) = (1, 1, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);

/// The generic keys family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "del",
        -2,
        WRITE,
        ALL_KEYS,
        Kind::MultiKey { whole: del, part: del_part, merge: Merge::Sum },
        "generic",
        "1.0.0",
        "Deletes one or more keys.",
    ),
    spec(
        "unlink",
        -2,
        WRITE | FAST,
        ALL_KEYS,
        Kind::MultiKey { whole: del, part: del_part, merge: Merge::Sum },
        "generic",
        "4.0.0",
        "Asynchronously deletes one or more keys.",
    ),
    spec(
        "exists",
        -2,
        READONLY | FAST,
        ALL_KEYS,
        Kind::MultiKey { whole: exists, part: exists_part, merge: Merge::Sum },
        "generic",
        "1.0.0",
        "Determines whether one or more keys exist.",
    ),
    spec(
        "touch",
        -2,
        READONLY | FAST,
        ALL_KEYS,
        Kind::MultiKey { whole: exists, part: exists_part, merge: Merge::Sum },
        "generic",
        "3.2.1",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
    ),
    spec(
        "type",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(type_),
        "generic",
        "1.0.0",
        "Determines the type of value stored at a key.",
    ),
    spec(
        "expire",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(expire),
        "generic",
        "1.0.0",
        "Sets the expiration time of a key in seconds.",
    ),
    spec(
        "pexpire",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(pexpire),
        "generic",
        "2.6.0",
        "Sets the expiration time of a key in milliseconds.",
    ),
    spec(
        "expireat",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(expireat),
        "generic",
        "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp.",
    ),
    spec(
        "pexpireat",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(pexpireat),
        "generic",
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    ),
    spec(
        "ttl",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(ttl),
        "generic",
        "1.0.0",
        "Returns the expiration time in seconds of a key.",
    ),
    spec(
        "pttl",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(pttl),
        "generic",
        "2.6.0",
        "Returns the expiration time in milliseconds of a key.",
    ),
    spec(
        "expiretime",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(expiretime),
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp.",
    ),
    spec(
        "pexpiretime",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(pexpiretime),
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
    ),
    spec(
        "persist",
        2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(persist),
        "generic",
        "2.2.0",
        "Removes the expiration time of a key.",
    ),
    spec(
        "keys",
        2,
        READONLY,
        NONE,
        Kind::AllShards { check: no_check, part: keys_part, merge: Merge::Concat },
        "generic",
        "1.0.0",
        "Returns all key names that match a pattern.",
    ),
    spec(
        "scan",
        -2,
        READONLY,
        NONE,
        Kind::AllShards { check: scan_check, part: scan_part, merge: Merge::Scan },
        "generic",
        "2.8.0",
        "Iterates over the key names in the database.",
    ),
    spec(
        "randomkey",
        1,
        READONLY,
        NONE,
        Kind::AllShards { check: no_check, part: randomkey_part, merge: Merge::RandomKey },
        "generic",
        "1.0.0",
        "Returns a random key name from the database.",
    ),
    spec(
        "dbsize",
        1,
        READONLY | FAST,
        NONE,
        Kind::AllShards { check: no_check, part: dbsize_part, merge: Merge::Sum },
        "server",
        "1.0.0",
        "Returns the number of keys in the database.",
    ),
    spec(
        "flushdb",
        -1,
        WRITE,
        NONE,
        Kind::AllShards { check: flush_check, part: flushdb_part, merge: Merge::Ok },
        "server",
        "1.0.0",
        "Remove all keys from the current database.",
    ),
    spec(
        "flushall",
        -1,
        WRITE,
        NONE,
        Kind::AllShards { check: flush_check, part: flushall_part, merge: Merge::Ok },
        "server",
        "1.0.0",
        "Removes all keys from all databases.",
    ),
    spec("move", 3, WRITE | FAST, KEY1, Kind::Keyed(move_), "generic", "1.0.0", "Moves a key to another database."),
    spec(
        "rename",
        3,
        WRITE,
        (1, 2, 1),
        Kind::Keyed(rename),
        "generic",
        "1.0.0",
        "Renames a key and overwrites the destination.",
    ),
    spec(
        "renamenx",
        3,
        WRITE | FAST,
        (1, 2, 1),
        Kind::Keyed(renamenx),
        "generic",
        "1.0.0",
        "Renames a key only when the target key name doesn't exist.",
    ),
    spec(
        "copy",
        -3,
        WRITE | DENYOOM,
        (1, 2, 1),
        Kind::Keyed(copy),
        "generic",
        "6.2.0",
        "Copies the value of a key to a new key.",
    ),
    spec(
        "dump",
        2,
        READONLY,
        KEY1,
        Kind::Keyed(dump),
        "generic",
        "2.6.0",
        "Returns a serialized representation of the value stored at a key.",
    ),
    spec(
        "restore",
        -4,
        WRITE | DENYOOM,
        KEY1,
        Kind::Keyed(restore),
        "generic",
        "2.6.0",
        "Creates a key from the serialized representation of a value.",
    ),
    spec(
        "memory",
        -2,
        READONLY,
        (2, 2, 1),
        Kind::Keyed(memory),
        "server",
        "4.0.0",
        "A container for memory diagnostics commands.",
    ),
    spec(
        "object",
        -2,
        READONLY,
        (2, 2, 1),
        Kind::Keyed(object),
        "generic",
        "2.2.3",
        "A container for object introspection commands.",
    ),
    spec(
        "swapdb",
        3,
        WRITE | FAST,
        NONE,
        Kind::AllShards { check: swapdb_check, part: swapdb_part, merge: Merge::Ok },
        "server",
        "4.0.0",
        "Swaps two Redis databases.",
    ),
];
