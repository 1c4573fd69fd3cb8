//! Sorted set commands: ZADD ZINCRBY ZSCORE ZMSCORE ZREM ZCARD ZCOUNT ZRANK
//! ZREVRANK ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
//! ZREVRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZLEXCOUNT
//! ZPOPMIN ZPOPMAX ZMPOP ZRANDMEMBER ZUNIONSTORE ZINTERSTORE ZSCAN, and the
//! blocking BZPOPMIN BZPOPMAX BZMPOP.
//!
//! Replies and errors follow Redis 7.2's `t_zset.c`, checked in the same
//! order Redis checks them (argument parsing first, then the key's type).

use super::CROSS_SHARD;
use super::flags::*;
use super::{Attempt, BlockOn, Blocking, CommandSpec, Ctx, Kind, parse_timeout, spec};
use crate::entry::{Entry, ValueMut};
use crate::glob::glob_match;
use crate::num;
use crate::reply::{NOT_FLOAT, NOT_INTEGER, Proto, Reply, SYNTAX, WRONGTYPE};
use crate::slot;
use crate::value::{Value, ValueRef};
use crate::zset::ZSet;
use hashbrown::HashMap;

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";
const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

/// The sorted set at `key`: `Ok(None)` when missing, `Err(())` when another type.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut ZSet>, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(Entry::value_mut) {
        None => Ok(None),
        Some(ValueMut::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(()),
    }
}

/// The sorted set at `key`, created empty when missing; `Err(())` when another type.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut ZSet, ()> {
    let now = ctx.now;
    match ctx.db().get_or_insert_with(key, now, || Value::ZSet(Box::default())).value_mut() {
        ValueMut::ZSet(z) => Ok(z),
        _ => Err(()),
    }
}

/// Removes `key` when its sorted set became empty (Redis never keeps empty collections).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if matches!(read(ctx, key), Ok(Some(z)) if z.is_empty()) {
        ctx.db().remove(key, now);
    }
}

/// True when every key is owned by this shard. A command whose keys span
/// shards is refused before it touches anything (one shard owns all slots).
fn all_owned<'k>(ctx: &mut Ctx, mut keys: impl Iterator<Item = &'k [u8]>) -> bool {
    let owned = ctx.db().owned();
    keys.all(|k| owned.contains(slot::key_slot(k) as usize))
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

/// Parses one end of a score range as Redis's `zslParseRange` does: `(` makes
/// it exclusive, the rest is read by C's `strtod` (leading whitespace skipped,
/// the empty text reads as 0, overflow reads as infinity), NaN is refused.
fn parse_score_bound(text: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, text) = match text.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, text),
    };
    if text.is_empty() {
        return Some((0.0, exclusive));
    }
    let trimmed = match text.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')) {
        Some(i) => &text[i..],
        None => return None,
    };
    let v = num::parse_score(trimmed).or_else(|| {
        // parse_score refuses what overflows or underflows; strtod here does not.
        std::str::from_utf8(trimmed).ok()?.parse::<f64>().ok().filter(|v| !v.is_nan())
    })?;
    Some((v, exclusive))
}

/// A score interval.
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    min_exclusive: bool,
    max_exclusive: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, min_exclusive) = parse_score_bound(min)?;
        let (max, max_exclusive) = parse_score_bound(max)?;
        Some(ScoreRange { min, max, min_exclusive, max_exclusive })
    }

    /// True for scores ordered before the interval.
    fn below(&self, s: f64) -> bool {
        if self.min_exclusive { s <= self.min } else { s < self.min }
    }

    /// True for scores not after the interval.
    fn not_above(&self, s: f64) -> bool {
        if self.max_exclusive { s < self.max } else { s <= self.max }
    }

    /// The ascending ranks `lo..hi` of the elements inside.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = z.count_before_score(|s| self.below(s));
        let hi = z.count_before_score(|s| self.not_above(s));
        (lo, hi.max(lo))
    }
}

/// One end of a lexicographic range.
#[derive(Clone, Copy)]
enum LexBound<'a> {
    NegInf,
    PosInf,
    Inclusive(&'a [u8]),
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// `-`, `+`, `[member` or `(member`, as `zslParseLexRangeItem` accepts.
    fn parse(text: &'a [u8]) -> Option<LexBound<'a>> {
        match text.split_first()? {
            (b'+', []) => Some(LexBound::PosInf),
            (b'-', []) => Some(LexBound::NegInf),
            (b'[', rest) => Some(LexBound::Inclusive(rest)),
            (b'(', rest) => Some(LexBound::Exclusive(rest)),
            _ => None,
        }
    }
}

/// A lexicographic interval (meaningful when all scores are equal).
#[derive(Clone, Copy)]
struct LexRange<'a> {
    min: LexBound<'a>,
    max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }

    fn below(&self, m: &[u8]) -> bool {
        match self.min {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(x) => m < x,
            LexBound::Exclusive(x) => m <= x,
        }
    }

    fn not_above(&self, m: &[u8]) -> bool {
        match self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(x) => m <= x,
            LexBound::Exclusive(x) => m < x,
        }
    }

    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = z.count_before(|_, m| self.below(m));
        let hi = z.count_before(|_, m| self.not_above(m));
        (lo, hi.max(lo))
    }
}

/// Ascending ranks `lo..hi` for rank arguments `start` and `end` (negative
/// counts from the end), as `genericZrangebyrankCommand` clamps them.
fn rank_range(start: i64, end: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return (0, 0);
    }
    (start as usize, (end.min(len - 1) + 1) as usize)
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// Writes `n` elements, with their scores when asked: flat member, score in
/// RESP2, [member, score] pairs in RESP3.
fn emit_elements<'z>(r: &mut Reply, n: usize, with_scores: bool, items: impl Iterator<Item = (f64, &'z [u8])>) {
    let resp3 = r.proto() == Proto::Resp3;
    r.array(if with_scores && !resp3 { n * 2 } else { n });
    for (s, m) in items.take(n) {
        if with_scores && resp3 {
            r.array(2);
        }
        r.bulk(m);
        if with_scores {
            r.double(s);
        }
    }
}

// ---------------------------------------------------------------------------
// ZADD, ZINCRBY
// ---------------------------------------------------------------------------

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What adding one element did.
enum Added {
    New(f64),
    Updated(f64),
    Unchanged(f64),
    Skipped,
}

/// `zsetAdd`: applies one (score, member) under `f` to `z`, with one lookup
/// of the member.
fn add_one(z: &mut ZSet, f: &AddFlags, score: f64, member: &[u8]) -> Result<Added, &'static str> {
    z.upsert(member, |current| match current {
        Some(cur) => {
            if f.nx {
                return (None, Ok(Added::Skipped));
            }
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return (None, Err(NAN_SCORE));
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return (None, Ok(Added::Skipped));
            }
            if new != cur { (Some(new), Ok(Added::Updated(new))) } else { (None, Ok(Added::Unchanged(new))) }
        }
        None if f.xx => (None, Ok(Added::Skipped)),
        None => (Some(score), Ok(Added::New(score))),
    })
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
///
/// Errors: `ERR syntax error` for a missing pair, the NX/XX and GT/LT/NX
/// incompatibilities, `ERR INCR option supports a single increment-element
/// pair`, `ERR value is not a valid float`, the NaN result of INCR, WRONGTYPE.
fn zadd(ctx: &mut Ctx, r: &mut Reply) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < ctx.args.len() {
        let a = ctx.arg(i);
        let flag = if a.eq_ignore_ascii_case(b"nx") {
            &mut f.nx
        } else if a.eq_ignore_ascii_case(b"xx") {
            &mut f.xx
        } else if a.eq_ignore_ascii_case(b"gt") {
            &mut f.gt
        } else if a.eq_ignore_ascii_case(b"lt") {
            &mut f.lt
        } else if a.eq_ignore_ascii_case(b"ch") {
            &mut f.ch
        } else if a.eq_ignore_ascii_case(b"incr") {
            &mut f.incr
        } else {
            break;
        };
        *flag = true;
        i += 1;
    }
    let elements = ctx.args.len() - i;
    if elements == 0 || elements % 2 == 1 {
        return r.error(SYNTAX);
    }
    if f.nx && f.xx {
        return r.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return r.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 2 {
        return r.error("ERR INCR option supports a single increment-element pair");
    }
    // All scores are parsed before anything changes; one pair (the common
    // case) needs no allocation for them.
    let (mut one, mut many) = ([0.0], Vec::new());
    let scores: &mut [f64] = if elements == 2 {
        &mut one
    } else {
        many.resize(elements / 2, 0.0);
        &mut many
    };
    for (score, j) in scores.iter_mut().zip((i..ctx.args.len()).step_by(2)) {
        match num::parse_score(ctx.arg(j)) {
            Some(s) => *score = s,
            None => return r.error(NOT_FLOAT),
        }
    }
    add_generic(ctx, r, &f, i, scores);
}

/// ZINCRBY key increment member
fn zincrby(ctx: &mut Ctx, r: &mut Reply) {
    let Some(by) = num::parse_score(ctx.arg(2)) else {
        return r.error(NOT_FLOAT);
    };
    let f = AddFlags { incr: true, ..AddFlags::default() };
    add_generic(ctx, r, &f, 2, &[by]);
}

/// Adds the pairs from argument `first` on (scores already parsed) and replies.
fn add_generic(ctx: &mut Ctx, r: &mut Reply, f: &AddFlags, first: usize, scores: &[f64]) {
    let key = ctx.arg(1);
    let args = ctx.args;
    let z = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) if f.xx => {
            // Nothing to update, and XX never creates the key.
            return if f.incr { r.null() } else { r.int(0) };
        }
        Ok(None) => match write(ctx, key) {
            Ok(z) => z,
            Err(()) => return r.error(WRONGTYPE),
        },
        Ok(Some(z)) => z,
    };
    let (mut added, mut updated, mut last) = (0i64, 0i64, None);
    let mut failed = None;
    for (n, score) in scores.iter().enumerate() {
        let member = args.get(first + 2 * n + 1);
        match add_one(z, f, *score, member) {
            Ok(Added::New(s)) => {
                added += 1;
                last = Some(s);
            }
            Ok(Added::Updated(s)) => {
                updated += 1;
                last = Some(s);
            }
            Ok(Added::Unchanged(s)) => last = Some(s),
            Ok(Added::Skipped) => last = None,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // A key created for pairs that were all skipped (or a NaN) is not kept.
    if z.is_empty() {
        let now = ctx.now;
        ctx.db().remove(key, now);
    }
    if added + updated > 0 {
        ctx.dirty((added + updated) as u64);
    }
    if let Some(e) = failed {
        return r.error(e);
    }
    if f.incr {
        match last {
            Some(s) => r.double(s),
            None => r.null(),
        }
    } else {
        r.int(if f.ch { added + updated } else { added });
    }
}

// ---------------------------------------------------------------------------
// Reads of single members
// ---------------------------------------------------------------------------

/// ZSCORE key member
fn zscore(ctx: &mut Ctx, r: &mut Reply) {
    let (key, member) = (ctx.arg(1), ctx.arg(2));
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(z) => {
            let s = z.and_then(|z| z.score(member));
            match s {
                Some(s) => r.double(s),
                None => r.null(),
            }
            ctx.hit(s.is_some());
        }
    }
}

/// ZMSCORE key member [member ...]
fn zmscore(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(z) => {
            r.array(args.len() - 2);
            for m in args.iter_from(2) {
                match z.as_ref().and_then(|z| z.score(m)) {
                    Some(s) => r.double(s),
                    None => r.null(),
                }
            }
        }
    }
}

/// ZCARD key
fn zcard(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(z) => r.int(z.map_or(0, |z| z.len()) as i64),
    }
}

fn zrank_generic(ctx: &mut Ctx, r: &mut Reply, rev: bool) {
    let (key, member) = (ctx.arg(1), ctx.arg(2));
    if ctx.args.len() > 4 {
        return r.arity_error(if rev { "zrevrank" } else { "zrank" });
    }
    let with_score = ctx.args.len() == 4;
    if with_score && !ctx.args.is(3, "WITHSCORE") {
        return r.error(SYNTAX);
    }
    let z = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(z) => z,
    };
    let found = z.and_then(|z| Some((z.rank(member)?, z.score(member)?, z.len())));
    match found {
        Some((rank, score, len)) => {
            let rank = if rev { len - 1 - rank } else { rank };
            if with_score {
                r.array(2);
            }
            r.int(rank as i64);
            if with_score {
                r.double(score);
            }
        }
        None if with_score => r.null_array(),
        None => r.null(),
    }
}

/// ZRANK key member [WITHSCORE]
fn zrank(ctx: &mut Ctx, r: &mut Reply) {
    zrank_generic(ctx, r, false);
}

/// ZREVRANK key member [WITHSCORE]
fn zrevrank(ctx: &mut Ctx, r: &mut Reply) {
    zrank_generic(ctx, r, true);
}

// ---------------------------------------------------------------------------
// Counting and ranges
// ---------------------------------------------------------------------------

/// ZCOUNT key min max
fn zcount(ctx: &mut Ctx, r: &mut Reply) {
    let Some(range) = ScoreRange::parse(ctx.arg(2), ctx.arg(3)) else {
        return r.error(NOT_FLOAT_RANGE);
    };
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(z) => r.int(z.map_or(0, |z| {
            let (lo, hi) = range.ranks(z);
            hi - lo
        }) as i64),
    }
}

/// ZLEXCOUNT key min max
fn zlexcount(ctx: &mut Ctx, r: &mut Reply) {
    let Some(range) = LexRange::parse(ctx.arg(2), ctx.arg(3)) else {
        return r.error(NOT_LEX_RANGE);
    };
    let key = ctx.arg(1);
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(z) => r.int(z.map_or(0, |z| {
            let (lo, hi) = range.ranks(z);
            hi - lo
        }) as i64),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum RangeBy {
    Rank,
    Score,
    Lex,
}

/// The shared body of ZRANGE and its older forms (`zrangeGenericCommand`).
/// `by` and `rev` are `None` where the command's options choose them.
fn zrange_generic(ctx: &mut Ctx, r: &mut Reply, by: Option<RangeBy>, rev: Option<bool>) {
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = 4;
    while j < ctx.args.len() {
        let left = ctx.args.len() - j - 1;
        if ctx.args.is(j, "WITHSCORES") {
            with_scores = true;
        } else if ctx.args.is(j, "LIMIT") && left >= 2 {
            match (num::parse_i64(ctx.arg(j + 1)), num::parse_i64(ctx.arg(j + 2))) {
                (Some(o), Some(l)) => (offset, limit) = (o, l),
                _ => return r.error(NOT_INTEGER),
            }
            j += 2;
        } else if rev.is_none() && rev_opt.is_none() && ctx.args.is(j, "REV") {
            rev_opt = Some(true);
        } else if by.is_none() && by_opt.is_none() && ctx.args.is(j, "BYLEX") {
            by_opt = Some(RangeBy::Lex);
        } else if by.is_none() && by_opt.is_none() && ctx.args.is(j, "BYSCORE") {
            by_opt = Some(RangeBy::Score);
        } else {
            return r.error(SYNTAX);
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(RangeBy::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit != -1 && by == RangeBy::Rank {
        return r.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if with_scores && by == RangeBy::Lex {
        return r.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    // Score and lex ranges are given as max, min when reversed.
    let (mut min, mut max) = (ctx.arg(2), ctx.arg(3));
    if rev && by != RangeBy::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    enum Bounds<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange<'a>),
    }
    let bounds = match by {
        RangeBy::Rank => match (num::parse_i64(min), num::parse_i64(max)) {
            (Some(s), Some(e)) => Bounds::Rank(s, e),
            _ => return r.error(NOT_INTEGER),
        },
        RangeBy::Score => match ScoreRange::parse(min, max) {
            Some(range) => Bounds::Score(range),
            None => return r.error(NOT_FLOAT_RANGE),
        },
        RangeBy::Lex => match LexRange::parse(min, max) {
            Some(range) => Bounds::Lex(range),
            None => return r.error(NOT_LEX_RANGE),
        },
    };
    let key = ctx.arg(1);
    let z = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => return r.array(0),
        Ok(Some(z)) => z,
    };
    let (lo, hi) = match bounds {
        Bounds::Rank(s, e) => {
            let (lo, hi) = rank_range(s, e, z.len());
            if rev { (z.len() - hi, z.len() - lo) } else { (lo, hi) }
        }
        Bounds::Score(range) => range.ranks(z),
        Bounds::Lex(range) => range.ranks(z),
    };
    let (lo, hi) = if by == RangeBy::Rank {
        (lo, hi)
    } else {
        // LIMIT: a negative offset selects nothing, a negative count everything.
        if offset < 0 {
            return r.array(0);
        }
        let available = hi - lo;
        let skip = (offset as u64).min(available as u64) as usize;
        let take = if limit < 0 { available - skip } else { (limit as u64).min((available - skip) as u64) as usize };
        if rev { (hi - skip - take, hi - skip) } else { (lo + skip, lo + skip + take) }
    };
    let n = hi - lo;
    if n == 0 {
        return r.array(0);
    }
    if rev {
        emit_elements(r, n, with_scores, z.iter_from(hi - 1, true));
    } else {
        emit_elements(r, n, with_scores, z.iter_from(lo, false));
    }
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
fn zrange(ctx: &mut Ctx, r: &mut Reply) {
    zrange_generic(ctx, r, None, None);
}
/// ZREVRANGE key start stop [WITHSCORES]
fn zrevrange(ctx: &mut Ctx, r: &mut Reply) {
    zrange_generic(ctx, r, Some(RangeBy::Rank), Some(true));
}
/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
fn zrangebyscore(ctx: &mut Ctx, r: &mut Reply) {
    zrange_generic(ctx, r, Some(RangeBy::Score), Some(false));
}
/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
fn zrevrangebyscore(ctx: &mut Ctx, r: &mut Reply) {
    zrange_generic(ctx, r, Some(RangeBy::Score), Some(true));
}
/// ZRANGEBYLEX key min max [LIMIT offset count]
fn zrangebylex(ctx: &mut Ctx, r: &mut Reply) {
    zrange_generic(ctx, r, Some(RangeBy::Lex), Some(false));
}
/// ZREVRANGEBYLEX key max min [LIMIT offset count]
fn zrevrangebylex(ctx: &mut Ctx, r: &mut Reply) {
    zrange_generic(ctx, r, Some(RangeBy::Lex), Some(true));
}

/// Removes the elements of ascending ranks `lo..hi` from the set at `key`
/// and replies with how many went.
fn remove_ranks(ctx: &mut Ctx, r: &mut Reply, key: &[u8], range: impl FnOnce(&ZSet) -> (usize, usize)) {
    let z = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(z)) => z,
    };
    let (lo, hi) = range(z);
    let doomed: Vec<Box<[u8]>> = z.iter_from(lo, false).take(hi - lo).map(|(_, m)| m.into()).collect();
    for m in &doomed {
        z.remove(m);
    }
    drop_if_empty(ctx, key);
    if !doomed.is_empty() {
        ctx.dirty(doomed.len() as u64);
    }
    r.int(doomed.len() as i64);
}

/// ZREMRANGEBYRANK key start stop
fn zremrangebyrank(ctx: &mut Ctx, r: &mut Reply) {
    let (Some(start), Some(end)) = (num::parse_i64(ctx.arg(2)), num::parse_i64(ctx.arg(3))) else {
        return r.error(NOT_INTEGER);
    };
    let key = ctx.arg(1);
    remove_ranks(ctx, r, key, |z| rank_range(start, end, z.len()));
}

/// ZREMRANGEBYSCORE key min max
fn zremrangebyscore(ctx: &mut Ctx, r: &mut Reply) {
    let Some(range) = ScoreRange::parse(ctx.arg(2), ctx.arg(3)) else {
        return r.error(NOT_FLOAT_RANGE);
    };
    let key = ctx.arg(1);
    remove_ranks(ctx, r, key, |z| range.ranks(z));
}

/// ZREMRANGEBYLEX key min max
fn zremrangebylex(ctx: &mut Ctx, r: &mut Reply) {
    let Some(range) = LexRange::parse(ctx.arg(2), ctx.arg(3)) else {
        return r.error(NOT_LEX_RANGE);
    };
    let key = ctx.arg(1);
    remove_ranks(ctx, r, key, |z| range.ranks(z));
}

/// ZREM key member [member ...]
fn zrem(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let args = ctx.args;
    match read(ctx, key) {
        Err(()) => r.error(WRONGTYPE),
        Ok(None) => r.int(0),
        Ok(Some(z)) => {
            let n = args.iter_from(2).filter(|m| z.remove(m).is_some()).count();
            drop_if_empty(ctx, key);
            if n > 0 {
                ctx.dirty(n as u64);
            }
            r.int(n as i64);
        }
    }
}

// ---------------------------------------------------------------------------
// Popping
// ---------------------------------------------------------------------------

/// How a pop replies.
#[derive(Clone, Copy, PartialEq)]
enum PopShape {
    /// member, score, ... in one array (ZPOPMIN without COUNT, or RESP2).
    Flat,
    /// [member, score] pairs (ZPOPMIN with COUNT in RESP3).
    Pairs,
    /// [key, [[member, score], ...]] (ZMPOP).
    KeyedPairs,
    /// [key, member, score] (BZPOPMIN, BZPOPMAX).
    KeyMemberScore,
}

/// The first of `keys` holding a sorted set: `Err` at the first key of
/// another type, `Ok(None)` when every key is missing.
fn first_zset<'k>(ctx: &mut Ctx, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, ()> {
    for key in keys {
        if read(ctx, key)?.is_some() {
            return Ok(Some(*key));
        }
    }
    Ok(None)
}

/// `genericZpopCommand`: pops up to `count` elements from the first
/// non-empty sorted set among `keys` (WRONGTYPE at the first key of another
/// type). ZMPOP (the keyed shape) is logged as the plain pop of the key served.
fn pop_generic(ctx: &mut Ctx, r: &mut Reply, keys: &[&[u8]], max: bool, count: usize, shape: PopShape) {
    match first_zset(ctx, keys) {
        Err(()) => r.error(WRONGTYPE),
        Ok(Some(key)) if shape == PopShape::KeyedPairs => pop_from_logged(ctx, r, key, max, count, shape),
        Ok(Some(key)) => {
            pop_from(ctx, r, key, max, count, shape);
        }
        Ok(None) if shape == PopShape::KeyedPairs => r.null_array(),
        Ok(None) => r.array(0),
    }
}

/// Pops up to `count` elements of the sorted set at `key`, replying in
/// `shape`; returns how many it popped.
fn pop_from(ctx: &mut Ctx, r: &mut Reply, key: &[u8], max: bool, count: usize, shape: PopShape) -> usize {
    if count == 0 {
        r.array(0);
        return 0;
    }
    let Ok(Some(z)) = read(ctx, key) else {
        r.array(0);
        return 0;
    };
    let n = count.min(z.len());
    match shape {
        PopShape::Flat => r.array(n * 2),
        PopShape::Pairs => r.array(n),
        PopShape::KeyedPairs => {
            r.array(2);
            r.bulk(key);
            r.array(n);
        }
        PopShape::KeyMemberScore => {
            r.array(1 + n * 2);
            r.bulk(key);
        }
    }
    for _ in 0..n {
        let at = if max { z.len() - 1 } else { 0 };
        let Some((score, member)) = z.nth(at).map(|(s, m)| (s, Box::<[u8]>::from(m))) else {
            break;
        };
        z.remove(&member);
        if matches!(shape, PopShape::Pairs | PopShape::KeyedPairs) {
            r.array(2);
        }
        r.bulk(&member);
        r.double(score);
    }
    drop_if_empty(ctx, key);
    ctx.dirty(n as u64);
    n
}

/// The plain pop a blocking or multi-key pop is logged as.
fn zpop_name(max: bool) -> &'static [u8] {
    if max { b"ZPOPMAX" } else { b"ZPOPMIN" }
}

/// Pops as [`pop_from`] does, logged as `ZPOPMIN|ZPOPMAX key count` with
/// the number popped (Redis's form for ZMPOP and BZMPOP).
fn pop_from_logged(ctx: &mut Ctx, r: &mut Reply, key: &[u8], max: bool, count: usize, shape: PopShape) {
    let n = pop_from(ctx, r, key, max, count, shape);
    if ctx.logging() {
        let mut text = itoa::Buffer::new();
        ctx.propagate(&[zpop_name(max), key, text.format(n).as_bytes()]);
    }
}

fn zpop_minmax(ctx: &mut Ctx, r: &mut Reply, max: bool) {
    if ctx.args.len() > 3 {
        return r.error(SYNTAX);
    }
    let mut count = 1;
    let with_count = ctx.args.len() == 3;
    if with_count {
        // Redis gives the same error for a non-integer and a negative count.
        match num::parse_i64(ctx.arg(2)) {
            Some(n) if n >= 0 => count = n as usize,
            _ => return r.error("ERR value is out of range, must be positive"),
        }
    }
    let shape = if with_count && r.proto() == Proto::Resp3 { PopShape::Pairs } else { PopShape::Flat };
    let key = ctx.arg(1);
    pop_generic(ctx, r, &[key], max, count, shape);
}

/// ZPOPMIN key [count]
fn zpopmin(ctx: &mut Ctx, r: &mut Reply) {
    zpop_minmax(ctx, r, false);
}

/// ZPOPMAX key [count]
fn zpopmax(ctx: &mut Ctx, r: &mut Reply) {
    zpop_minmax(ctx, r, true);
}

/// The arguments of ZMPOP and BZMPOP from `numkeys_at` on:
/// `numkeys key [key ...] MIN|MAX [COUNT count]`.
struct Zmpop<'a> {
    keys: Vec<&'a [u8]>,
    max: bool,
    count: usize,
}

/// Parses [`Zmpop`] with Redis's errors (`zmpopGenericCommand`):
/// `ERR numkeys should be greater than 0`, `ERR count should be greater than
/// 0`, `ERR syntax error`, and CROSSSLOT when the keys live on different shards.
fn parse_zmpop<'a>(ctx: &mut Ctx<'a>, numkeys_at: usize) -> Result<Zmpop<'a>, &'static str> {
    let numkeys = match num::parse_i64(ctx.arg(numkeys_at)) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err("ERR numkeys should be greater than 0"),
    };
    let where_at = numkeys.saturating_add(numkeys_at as u64 + 1);
    if where_at >= ctx.args.len() as u64 {
        return Err(SYNTAX);
    }
    let where_at = where_at as usize;
    let max = if ctx.args.is(where_at, "MIN") {
        false
    } else if ctx.args.is(where_at, "MAX") {
        true
    } else {
        return Err(SYNTAX);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < ctx.args.len() {
        if count.is_none() && ctx.args.is(j, "COUNT") && j + 1 < ctx.args.len() {
            match num::parse_i64(ctx.arg(j + 1)) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => return Err("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    let keys: Vec<&[u8]> = ctx.args.iter_from(numkeys_at + 1).take(numkeys as usize).collect();
    if !all_owned(ctx, keys.iter().copied()) {
        return Err(CROSS_SHARD);
    }
    Ok(Zmpop { keys, max, count: count.unwrap_or(1) })
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
///
/// Errors: see [`parse_zmpop`]; WRONGTYPE.
fn zmpop(ctx: &mut Ctx, r: &mut Reply) {
    match parse_zmpop(ctx, 1) {
        Ok(m) => pop_generic(ctx, r, &m.keys, m.max, m.count, PopShape::KeyedPairs),
        Err(e) => r.error(e),
    }
}

// ---------------------------------------------------------------------------
// Blocking pops: served like their non-blocking forms when a key holds a
// sorted set, else nothing is written and the client waits (see `Blocking`).
// ---------------------------------------------------------------------------

/// Replies with `e` and reports the command answered.
fn refuse(r: &mut Reply, e: &str) -> Attempt {
    r.error(e);
    Attempt::Replied
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout: `[key, member, score]` from the
/// first non-empty sorted set. Errors: the timeout's (checked first),
/// WRONGTYPE from the first key of another type.
fn bzpop_generic(ctx: &mut Ctx, r: &mut Reply, max: bool) -> Attempt {
    let last = ctx.args.len() - 1;
    let timeout_ms = match parse_timeout(ctx.arg(last)) {
        Ok(t) => t,
        Err(e) => return refuse(r, e),
    };
    let keys: Vec<&[u8]> = (1..last).map(|i| ctx.arg(i)).collect();
    match first_zset(ctx, &keys) {
        Err(()) => refuse(r, WRONGTYPE),
        Ok(None) => Attempt::Block { timeout_ms },
        Ok(Some(key)) => {
            pop_from(ctx, r, key, max, 1, PopShape::KeyMemberScore);
            ctx.propagate(&[zpop_name(max), key]);
            Attempt::Replied
        }
    }
}

/// BZPOPMIN key [key ...] timeout
fn bzpopmin(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    bzpop_generic(ctx, r, false)
}

/// BZPOPMAX key [key ...] timeout
fn bzpopmax(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    bzpop_generic(ctx, r, true)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]. Errors:
/// ZMPOP's, then the timeout's (Redis parses it last), then WRONGTYPE.
fn bzmpop(ctx: &mut Ctx, r: &mut Reply) -> Attempt {
    let m = match parse_zmpop(ctx, 2) {
        Ok(m) => m,
        Err(e) => return refuse(r, e),
    };
    let timeout_ms = match parse_timeout(ctx.arg(1)) {
        Ok(t) => t,
        Err(e) => return refuse(r, e),
    };
    match first_zset(ctx, &m.keys) {
        Err(()) => refuse(r, WRONGTYPE),
        Ok(None) => Attempt::Block { timeout_ms },
        Ok(Some(key)) => {
            pop_from_logged(ctx, r, key, m.max, m.count, PopShape::KeyedPairs);
            Attempt::Replied
        }
    }
}

const fn blocking(attempt: super::BlockingFn) -> Kind {
    Kind::Blocking(Blocking { attempt, on: BlockOn::ZSet, first_key_only: false })
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN
// ---------------------------------------------------------------------------

/// The most members ZRANDMEMBER returns with repeats (a negative count).
/// Redis has no bound and would build a reply of any size; past this one the
/// count is refused as out of range instead of exhausting memory.
const RANDOM_PICKS_MAX: u64 = 1 << 24;

/// ZRANDMEMBER key [count [WITHSCORES]]
fn zrandmember(ctx: &mut Ctx, r: &mut Reply) {
    let key = ctx.arg(1);
    let mut count = None;
    let mut with_scores = false;
    if ctx.args.len() >= 3 {
        let Some(n) = num::parse_i64(ctx.arg(2)) else {
            return r.error(NOT_INTEGER);
        };
        if n == i64::MIN {
            return r
                .error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        }
        if ctx.args.len() > 4 || (ctx.args.len() == 4 && !ctx.args.is(3, "WITHSCORES")) {
            return r.error(SYNTAX);
        }
        if ctx.args.len() == 4 {
            with_scores = true;
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&n) {
                return r.error("ERR value is out of range");
            }
        }
        count = Some(n);
    }
    let mut rng = fastrand::Rng::with_seed(ctx.ks.rng.u64(..));
    let z = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(z) => z,
    };
    let Some(count) = count else {
        return match z {
            Some(z) if !z.is_empty() => {
                let (_, m) = z.nth(rng.usize(..z.len())).unwrap_or_default();
                r.bulk(m)
            }
            _ => r.null(),
        };
    };
    let Some(z) = z.filter(|z| !z.is_empty() && count != 0) else {
        return r.array(0);
    };
    let len = z.len();
    if count.unsigned_abs() > RANDOM_PICKS_MAX && count < 0 {
        return r.error("ERR value is out of range");
    }
    let picks: Vec<usize> = if count < 0 {
        // Repeats allowed: |count| independent picks.
        (0..count.unsigned_abs()).map(|_| rng.usize(..len)).collect()
    } else if count as u64 >= len as u64 {
        (0..len).collect()
    } else if (count as usize) * 3 > len {
        let mut all: Vec<usize> = (0..len).collect();
        rng.shuffle(&mut all);
        all.truncate(count as usize);
        all
    } else {
        // Few distinct picks from many: draw ranks until enough are distinct.
        let mut seen = hashbrown::HashSet::with_capacity(count as usize);
        let mut picks = Vec::with_capacity(count as usize);
        while picks.len() < count as usize {
            let i = rng.usize(..len);
            if seen.insert(i) {
                picks.push(i);
            }
        }
        picks
    };
    emit_elements(r, picks.len(), with_scores, picks.iter().filter_map(|&i| z.nth(i)));
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
///
/// A small set is returned whole with cursor 0, as Redis does for listpacks.
/// A large one is walked in the order of its members' hashes, as HSCAN walks
/// a hash table: the cursor is the (63-bit hash + 1) to resume from.
fn zscan(ctx: &mut Ctx, r: &mut Reply) {
    let Some(cursor) = num::parse_cursor(ctx.arg(2)) else {
        return r.error("ERR invalid cursor");
    };
    // Redis looks the key up before it reads the options: a missing key or
    // another type answers first.
    let key = ctx.arg(1);
    let args = ctx.args;
    let z = match read(ctx, key) {
        Err(()) => return r.error(WRONGTYPE),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(z)) => z,
    };
    let (count, pattern) = match super::scan_options(&args, 3, false) {
        Ok(o) => (o.count, o.pattern),
        Err(e) => return r.error(e),
    };
    let matches = |m: &[u8]| pattern.is_none_or(|p| glob_match(p, m, false));
    let (found, next): (Vec<(&[u8], f64)>, u64) = match z.hashed_members() {
        None => (z.iter_from(0, false).filter(|(_, m)| matches(m)).map(|(s, m)| (m, s)).collect(), 0),
        Some(items) => {
            let (page, next) = super::hash_order_page(items, cursor, count);
            (page.into_iter().filter(|(m, _)| matches(m)).collect(), next)
        }
    };
    r.array(2);
    r.bulk(itoa::Buffer::new().format(next).as_bytes());
    r.array(found.len() * 2);
    let mut text = Vec::with_capacity(24);
    for (m, s) in found {
        r.bulk(m);
        text.clear();
        num::format_f64_resp(s, &mut text);
        r.bulk(&text);
    }
}

// ---------------------------------------------------------------------------
// ZUNIONSTORE, ZINTERSTORE
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// `zunionInterAggregate`: a sum of opposite infinities is 0, not NaN.
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = acc + v;
                if s.is_nan() { 0.0 } else { s }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

/// A source's (member, score) elements.
type Elements = Vec<(Box<[u8]>, f64)>;

/// The (member, score) elements of a ZUNIONSTORE/ZINTERSTORE source: a
/// sorted set, a plain set (every member scored 1), or nothing when missing;
/// `Err` for any other type.
fn source_elements(ctx: &mut Ctx, key: &[u8]) -> Result<Elements, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(|e| e.value()) {
        None => Ok(Vec::new()),
        Some(ValueRef::ZSet(z)) => Ok(z.iter_from(0, false).map(|(s, m)| (Box::<[u8]>::from(m), s)).collect()),
        Some(ValueRef::Set(set)) => Ok(set.iter().map(|m| (m.to_vec().into_boxed_slice(), 1.0)).collect()),
        Some(_) => Err(()),
    }
}

/// A source's score times its weight, where 0 * inf counts as 0 (as Redis does).
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() { 0.0 } else { v }
}

fn store_generic(ctx: &mut Ctx, r: &mut Reply, union: bool) {
    let name = if union { "zunionstore" } else { "zinterstore" };
    let Some(numkeys) = num::parse_i64(ctx.arg(2)) else {
        return r.error(NOT_INTEGER);
    };
    if numkeys < 1 {
        return r.error(&format!("ERR at least 1 input key is needed for '{name}' command"));
    }
    if numkeys > (ctx.args.len() - 3) as i64 {
        return r.error(SYNTAX);
    }
    let numkeys = numkeys as usize;
    let dest = ctx.arg(1);
    let keys: Vec<&[u8]> = ctx.args.iter_from(3).take(numkeys).collect();
    if !all_owned(ctx, keys.iter().copied().chain([dest])) {
        return r.error(CROSS_SHARD);
    }
    // Sources may be sorted sets or plain sets (each member scored 1), as in Redis.
    for key in &keys {
        if source_elements(ctx, key).is_err() {
            return r.error(WRONGTYPE);
        }
    }
    let mut weights = vec![1.0; numkeys];
    let mut aggregate = Aggregate::Sum;
    let mut j = 3 + numkeys;
    while j < ctx.args.len() {
        let remaining = ctx.args.len() - j;
        if remaining > numkeys && ctx.args.is(j, "WEIGHTS") {
            for (n, w) in weights.iter_mut().enumerate() {
                match num::parse_score(ctx.arg(j + 1 + n)) {
                    Some(v) => *w = v,
                    None => return r.error("ERR weight value is not a float"),
                }
            }
            j += 1 + numkeys;
        } else if remaining >= 2 && ctx.args.is(j, "AGGREGATE") {
            aggregate = if ctx.args.is(j + 1, "SUM") {
                Aggregate::Sum
            } else if ctx.args.is(j + 1, "MIN") {
                Aggregate::Min
            } else if ctx.args.is(j + 1, "MAX") {
                Aggregate::Max
            } else {
                return r.error(SYNTAX);
            };
            j += 2;
        } else {
            return r.error(SYNTAX);
        }
    }
    // Gather every source's elements, in key order; a missing key is empty.
    let mut sources: Vec<Elements> = Vec::with_capacity(numkeys);
    for key in &keys {
        sources.push(source_elements(ctx, key).unwrap_or_default());
    }
    let mut result: HashMap<Box<[u8]>, f64> = HashMap::new();
    if union {
        for (src, w) in sources.iter().zip(&weights) {
            for (m, s) in src {
                let v = weighted(*s, *w);
                match result.get_mut(m) {
                    Some(acc) => *acc = aggregate.apply(*acc, v),
                    None => {
                        result.insert(m.clone(), v);
                    }
                }
            }
        }
    } else if sources.iter().all(|s| !s.is_empty()) {
        let lookups: Vec<HashMap<&[u8], f64>> =
            sources.iter().map(|src| src.iter().map(|(m, s)| (&**m, *s)).collect()).collect();
        'members: for (m, s) in &sources[0] {
            let mut acc = weighted(*s, weights[0]);
            for (other, w) in lookups.iter().zip(&weights).skip(1) {
                match other.get(&**m) {
                    Some(v) => acc = aggregate.apply(acc, weighted(*v, *w)),
                    None => continue 'members,
                }
            }
            result.insert(m.clone(), acc);
        }
    }
    let now = ctx.now;
    let n = result.len();
    let removed = ctx.db().remove(dest, now).is_some();
    if n > 0 {
        let mut z = ZSet::default();
        for (m, s) in result {
            z.insert(&m, s);
        }
        ctx.db().set(dest, Value::ZSet(Box::new(z)), crate::db::NO_EXPIRE, now);
    }
    if n > 0 || removed {
        ctx.dirty(1);
    }
    r.int(n as i64);
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
fn zunionstore(ctx: &mut Ctx, r: &mut Reply) {
    store_generic(ctx, r, true);
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
fn zinterstore(ctx: &mut Ctx, r: &mut Reply) {
    store_generic(ctx, r, false);
}

const KEY1: (i32, i32, i32) = (1, 1, 1);

/// The sorted set family's registrations.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(zadd),
        "sorted_set",
        "1.2.0",
        "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
    ),
    spec(
        "zincrby",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        Kind::Keyed(zincrby),
        "sorted_set",
        "1.2.0",
        "Increments the score of a member in a sorted set.",
    ),
    spec(
        "zscore",
        3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zscore),
        "sorted_set",
        "1.2.0",
        "Returns the score of a member in a sorted set.",
    ),
    spec(
        "zmscore",
        -3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zmscore),
        "sorted_set",
        "6.2.0",
        "Returns the score of one or more members in a sorted set.",
    ),
    spec(
        "zrem",
        -3,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(zrem),
        "sorted_set",
        "1.2.0",
        "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
    ),
    spec(
        "zcard",
        2,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zcard),
        "sorted_set",
        "1.2.0",
        "Returns the number of members in a sorted set.",
    ),
    spec(
        "zcount",
        4,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zcount),
        "sorted_set",
        "2.0.0",
        "Returns the count of members in a sorted set that have scores within a range.",
    ),
    spec(
        "zlexcount",
        4,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zlexcount),
        "sorted_set",
        "2.8.9",
        "Returns the number of members in a sorted set within a lexicographical range.",
    ),
    spec(
        "zrank",
        -3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zrank),
        "sorted_set",
        "2.0.0",
        "Returns the index of a member in a sorted set ordered by ascending scores.",
    ),
    spec(
        "zrevrank",
        -3,
        READONLY | FAST,
        KEY1,
        Kind::Keyed(zrevrank),
        "sorted_set",
        "2.0.0",
        "Returns the index of a member in a sorted set ordered by descending scores.",
    ),
    spec(
        "zrange",
        -4,
        READONLY,
        KEY1,
        Kind::Keyed(zrange),
        "sorted_set",
        "1.2.0",
        "Returns members in a sorted set within a range of indexes.",
    ),
    spec(
        "zrevrange",
        -4,
        READONLY,
        KEY1,
        Kind::Keyed(zrevrange),
        "sorted_set",
        "1.2.0",
        "Returns members in a sorted set within a range of indexes in reverse order.",
    ),
    spec(
        "zrangebyscore",
        -4,
        READONLY,
        KEY1,
        Kind::Keyed(zrangebyscore),
        "sorted_set",
        "1.0.5",
        "Returns members in a sorted set within a range of scores.",
    ),
    spec(
        "zrevrangebyscore",
        -4,
        READONLY,
        KEY1,
        Kind::Keyed(zrevrangebyscore),
        "sorted_set",
        "2.2.0",
        "Returns members in a sorted set within a range of scores in reverse order.",
    ),
    spec(
        "zrangebylex",
        -4,
        READONLY,
        KEY1,
        Kind::Keyed(zrangebylex),
        "sorted_set",
        "2.8.9",
        "Returns members in a sorted set within a lexicographical range.",
    ),
    spec(
        "zrevrangebylex",
        -4,
        READONLY,
        KEY1,
        Kind::Keyed(zrevrangebylex),
        "sorted_set",
        "2.8.9",
        "Returns members in a sorted set within a lexicographical range in reverse order.",
    ),
    spec(
        "zremrangebyrank",
        4,
        WRITE,
        KEY1,
        Kind::Keyed(zremrangebyrank),
        "sorted_set",
        "2.0.0",
        "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
    ),
    spec(
        "zremrangebyscore",
        4,
        WRITE,
        KEY1,
        Kind::Keyed(zremrangebyscore),
        "sorted_set",
        "1.2.0",
        "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
    ),
    spec(
        "zremrangebylex",
        4,
        WRITE,
        KEY1,
        Kind::Keyed(zremrangebylex),
        "sorted_set",
        "2.8.9",
        "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
    ),
    spec(
        "zpopmin",
        -2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(zpopmin),
        "sorted_set",
        "5.0.0",
        "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
    ),
    spec(
        "zpopmax",
        -2,
        WRITE | FAST,
        KEY1,
        Kind::Keyed(zpopmax),
        "sorted_set",
        "5.0.0",
        "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
    ),
    // The keys follow numkeys; routing goes by the first one.
    spec(
        "zmpop",
        -4,
        WRITE | MOVABLEKEYS,
        // The keys: a count at argument 1, then that many from argument 2.
        (2, -1, 1),
        Kind::Keyed(zmpop),
        "sorted_set",
        "7.0.0",
        "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
    ),
    spec(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        (1, -2, 1),
        blocking(bzpopmin),
        "sorted_set",
        "5.0.0",
        "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
    ),
    spec(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        (1, -2, 1),
        blocking(bzpopmax),
        "sorted_set",
        "5.0.0",
        "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped.",
    ),
    // The keys follow numkeys (argument 2): movable, as Redis shows them.
    spec(
        "bzmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        (3, -1, 1),
        blocking(bzmpop),
        "sorted_set",
        "7.0.0",
        "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
    ),
    spec(
        "zrandmember",
        -2,
        READONLY,
        KEY1,
        Kind::Keyed(zrandmember),
        "sorted_set",
        "6.2.0",
        "Returns one or more random members from a sorted set.",
    ),
    spec(
        "zscan",
        -3,
        READONLY,
        KEY1,
        Kind::Keyed(zscan),
        "sorted_set",
        "2.8.0",
        "Iterates over members and scores of a sorted set.",
    ),
    // The destination routes; the source keys must live on its shard.
    spec(
        "zunionstore",
        -4,
        WRITE | DENYOOM | EXTRA_KEYS,
        KEY1,
        Kind::Keyed(zunionstore),
        "sorted_set",
        "2.0.0",
        "Stores the union of multiple sorted sets in a key.",
    ),
    spec(
        "zinterstore",
        -4,
        WRITE | DENYOOM | EXTRA_KEYS,
        KEY1,
        Kind::Keyed(zinterstore),
        "sorted_set",
        "2.0.0",
        "Stores the intersect of multiple sorted sets in a key.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_bounds_parse_as_strtod_reads_them() {
        assert_eq!(parse_score_bound(b"1.5"), Some((1.5, false)));
        assert_eq!(parse_score_bound(b"(2"), Some((2.0, true)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"(+inf"), Some((f64::INFINITY, true)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"  "), None);
        assert_eq!(parse_score_bound(b"1 "), None);
        assert_eq!(parse_score_bound(b"nan"), None);
        assert_eq!(parse_score_bound(b"x"), None);
    }

    #[test]
    fn rank_ranges_clamp_as_redis() {
        assert_eq!(rank_range(0, -1, 3), (0, 3));
        assert_eq!(rank_range(-100, 100, 3), (0, 3));
        assert_eq!(rank_range(2, 1, 3), (0, 0));
        assert_eq!(rank_range(3, 5, 3), (0, 0));
        assert_eq!(rank_range(-1, -1, 3), (2, 3));
        assert_eq!(rank_range(0, -4, 3), (0, 0));
        assert_eq!(rank_range(i64::MIN, i64::MAX, 3), (0, 3));
    }
}
