//! Sorted set commands: ZADD ZINCRBY ZSCORE ZMSCORE ZREM ZCARD ZCOUNT ZRANK
//! ZREVRANK ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
//! ZREVRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZLEXCOUNT
//! ZPOPMIN ZPOPMAX ZMPOP ZRANDMEMBER ZUNIONSTORE ZINTERSTORE ZSCAN, RESP3
//! replies, and WRONGTYPE against strings and hashes.
//!
//! Scores are chosen to print the same in Redis 7.0 and 7.2 (which differ on
//! doubles such as 0.1). Multi-key commands use a `{tag}` so that their keys
//! share a shard.

#[macro_use]
mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};

const NOT_FLOAT: &str = "ERR value is not a valid float";
const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// An array of member, score bulks (RESP2 WITHSCORES).
fn flat(items: &[(&str, &str)]) -> Reply {
    arr(items.iter().flat_map(|(m, s)| [bulk(m), bulk(s)]).collect())
}

/// An array of [member, score] pairs (RESP3 WITHSCORES).
fn pairs3(items: &[(&str, f64)]) -> Reply {
    arr(items.iter().map(|(m, s)| arr(vec![bulk(m), Reply::Double(*s)])).collect())
}

/// ZADD key with `n` members m0..m{n-1} of score i (a skiplist past 128).
fn fill(c: &mut redis::Connection, key: &str, n: usize) {
    let mut args = vec!["ZADD".to_string(), key.to_string()];
    for i in 0..n {
        args.push(i.to_string());
        args.push(format!("m{i:04}"));
    }
    assert_eq!(cmd_vec(c, &args), int(n as i64));
}

shard_tests! {
    fn zadd_basics_and_flags(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c"], int(3)),
            (&["ZADD", "z", "1", "a", "5", "b"], int(0)),
            (&["ZSCORE", "z", "b"], bulk("5")),
            (&["ZADD", "z", "CH", "2", "b", "4", "d"], int(2)),
            (&["ZCARD", "z"], int(4)),
            // NX: only new members; XX: only existing ones, never creating the key.
            (&["ZADD", "z", "NX", "9", "a", "9", "e"], int(1)),
            (&["ZSCORE", "z", "a"], bulk("1")),
            (&["ZADD", "z", "XX", "9", "a", "9", "f"], int(0)),
            (&["ZSCORE", "z", "a"], bulk("9")),
            (&["ZSCORE", "z", "f"], nil()),
            (&["ZADD", "nokey", "XX", "1", "a"], int(0)),
            (&["ZADD", "nokey", "XX", "INCR", "1", "a"], nil()),
            (&["EXISTS", "nokey"], int(0)),
            // GT/LT: update only when the new score is greater/lower; new members are added.
            (&["ZADD", "g", "5", "a", "5", "b"], int(2)),
            (&["ZADD", "g", "GT", "CH", "6", "a", "4", "b", "1", "new"], int(2)),
            (&["ZADD", "g", "LT", "CH", "7", "a", "3", "b"], int(1)),
            (&["ZRANGE", "g", "0", "-1", "WITHSCORES"], flat(&[("new", "1"), ("b", "3"), ("a", "6")])),
            (&["ZADD", "g", "XX", "GT", "CH", "10", "a", "10", "zz"], int(1)),
            (&["ZSCORE", "g", "zz"], nil()),
            // INCR: reply with the new score, nil when skipped.
            (&["ZADD", "g", "INCR", "2.5", "b"], bulk("5.5")),
            (&["ZADD", "g", "INCR", "0", "b"], bulk("5.5")),
            (&["ZADD", "g", "GT", "INCR", "-1", "b"], nil()),
            (&["ZADD", "g", "LT", "INCR", "-1", "b"], bulk("4.5")),
            (&["ZADD", "g", "NX", "INCR", "1", "b"], nil()),
            (&["ZADD", "g", "NX", "INCR", "1", "fresh"], bulk("1")),
            (&["ZADD", "g", "XX", "INCR", "1", "nobody"], nil()),
            (&["ZADD", "g", "incr", "ch", "1", "fresh"], bulk("2")),
            // Special scores.
            (&["ZADD", "s", "-inf", "lo", "+inf", "hi", "inf", "hi2", "0x10", "hex", "1e3", "exp", "-0.25", "neg"], int(6)),
            (&["ZRANGE", "s", "0", "-1", "WITHSCORES"], flat(&[
                ("lo", "-inf"), ("neg", "-0.25"), ("hex", "16"), ("exp", "1000"), ("hi", "inf"), ("hi2", "inf"),
            ])),
            (&["ZINCRBY", "s", "-inf", "hi"], err("ERR resulting score is not a number (NaN)")),
            (&["ZADD", "s", "INCR", "+inf", "lo"], err("ERR resulting score is not a number (NaN)")),
            (&["ZSCORE", "s", "hi"], bulk("inf")),
            (&["TYPE", "s"], status("zset")),
        ]);
    }

    fn zadd_errors(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a"], int(1)),
            (&["ZADD", "z", "x", "a"], err(NOT_FLOAT)),
            (&["ZADD", "z", "nan", "a"], err(NOT_FLOAT)),
            (&["ZADD", "z", "1", "a", "x", "b"], err(NOT_FLOAT)),
            (&["ZADD", "z", " 1", "a"], err(NOT_FLOAT)),
            (&["ZADD", "z", "", "a"], err(NOT_FLOAT)),
            (&["ZADD", "z", "1", "a", "2"], err(SYNTAX)),
            (&["ZADD", "z", "NX", "1"], err(SYNTAX)),
            (&["ZADD", "z", "XX", "CH", "GT"], err(SYNTAX)),
            (&["ZADD", "z", "NX", "XX", "1", "a"], err("ERR XX and NX options at the same time are not compatible")),
            (&["ZADD", "z", "GT", "LT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
            (&["ZADD", "z", "GT", "NX", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
            (&["ZADD", "z", "NX", "LT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
            (&["ZADD", "z", "INCR", "1", "a", "2", "b"], err("ERR INCR option supports a single increment-element pair")),
            // The flags must come before the pairs.
            (&["ZADD", "z", "1", "a", "NX", "b"], err(NOT_FLOAT)),
            (&["ZADD", "z"], arity("zadd")),
            (&["ZADD", "z", "1"], arity("zadd")),
            (&["ZINCRBY", "z", "x", "a"], err(NOT_FLOAT)),
            (&["ZINCRBY", "z", "1"], arity("zincrby")),
            (&["ZINCRBY", "z", "1", "a", "b"], arity("zincrby")),
            (&["ZRANGE", "z", "0", "-1", "WITHSCORES"], flat(&[("a", "1")])),
            (&["ZADD", "new", "GT", "5", "x"], int(1)),
            (&["ZINCRBY", "new2", "2.5", "x"], bulk("2.5")),
            (&["ZINCRBY", "new2", "-0.5", "x"], bulk("2")),
        ]);
        // Binary-safe members.
        assert_eq!(cmd_bin(&mut c, &[b"ZADD", b"bin", b"1", b"m\x00\r\n\xff"]), int(1));
        assert_eq!(cmd_bin(&mut c, &[b"ZSCORE", b"bin", b"m\x00\r\n\xff"]), bulk("1"));
        assert_eq!(cmd_bin(&mut c, &[b"ZRANGE", b"bin", b"0", b"-1"]), arr(vec![bulk(b"m\x00\r\n\xff")]));
    }

    fn scores_ranks_and_removal(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d"], int(4)),
            (&["ZSCORE", "z", "zz"], nil()),
            (&["ZSCORE", "nokey", "a"], nil()),
            (&["ZMSCORE", "z", "a", "zz", "d"], arr(vec![bulk("1"), nil(), bulk("3")])),
            (&["ZMSCORE", "nokey", "a", "b"], arr(vec![nil(), nil()])),
            (&["ZMSCORE", "z"], arity("zmscore")),
            (&["ZRANK", "z", "a"], int(0)),
            (&["ZRANK", "z", "c"], int(2)),
            (&["ZREVRANK", "z", "a"], int(3)),
            (&["ZREVRANK", "z", "d"], int(0)),
            (&["ZRANK", "z", "zz"], nil()),
            (&["ZRANK", "nokey", "a"], nil()),
            (&["ZREVRANK", "nokey", "a"], nil()),
            (&["ZRANK", "z"], arity("zrank")),
            (&["ZCARD", "z"], int(4)),
            (&["ZCARD", "nokey"], int(0)),
            (&["ZCARD"], arity("zcard")),
            (&["ZREM", "z", "a", "zz", "a"], int(1)),
            (&["ZREM", "nokey", "a"], int(0)),
            (&["ZREM", "z"], arity("zrem")),
            (&["EXPIRE", "z", "100"], int(1)),
            (&["ZREM", "z", "b", "c", "d"], int(3)),
            // An emptied sorted set is deleted, TTL and all.
            (&["EXISTS", "z"], int(0)),
            (&["TTL", "z"], int(-2)),
            (&["ZADD", "z", "1", "a"], int(1)),
            (&["TTL", "z"], int(-1)),
        ]);
        // WITHSCORE is Redis 7.2's; the reference server here may be older.
        if !srv.is_reference() {
            expect_all(&mut c, &[
                (&["ZADD", "w", "1.5", "a", "2", "b"], int(2)),
                (&["ZRANK", "w", "b", "WITHSCORE"], arr(vec![int(1), bulk("2")])),
                (&["ZREVRANK", "w", "b", "withscore"], arr(vec![int(0), bulk("2")])),
                (&["ZRANK", "w", "zz", "WITHSCORE"], Reply::Nil),
                (&["ZRANK", "w", "a", "WITHSCORES"], err(SYNTAX)),
                (&["ZRANK", "w", "a", "WITHSCORE", "x"], arity("zrank")),
            ]);
            let mut c3 = srv.client_resp3();
            assert_eq!(cmd(&mut c3, &["ZRANK", "w", "a", "WITHSCORE"]), arr(vec![int(0), Reply::Double(1.5)]));
        }
    }

    fn zcount_and_score_ranges(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "-inf", "lo", "+inf", "hi"], int(6)),
            (&["ZCOUNT", "z", "-inf", "+inf"], int(6)),
            (&["ZCOUNT", "z", "1", "3"], int(3)),
            (&["ZCOUNT", "z", "(1", "3"], int(2)),
            (&["ZCOUNT", "z", "(1", "(3"], int(1)),
            (&["ZCOUNT", "z", "3", "1"], int(0)),
            (&["ZCOUNT", "z", "(2", "(2"], int(0)),
            (&["ZCOUNT", "z", "2", "2"], int(1)),
            (&["ZCOUNT", "z", "(-inf", "(inf"], int(4)),
            (&["ZCOUNT", "z", "inf", "inf"], int(1)),
            (&["ZCOUNT", "nokey", "0", "1"], int(0)),
            // strtod's reading: leading spaces, the empty text as 0, overflow as inf.
            (&["ZCOUNT", "z", " 2", "3"], int(2)),
            (&["ZCOUNT", "z", "", "2"], int(2)),
            (&["ZCOUNT", "z", "(", "2"], int(2)),
            (&["ZCOUNT", "z", "1e400", "inf"], int(1)),
            (&["ZCOUNT", "z", "  ", "2"], err(NOT_FLOAT_RANGE)),
            (&["ZCOUNT", "z", "1 ", "2"], err(NOT_FLOAT_RANGE)),
            (&["ZCOUNT", "z", "a", "2"], err(NOT_FLOAT_RANGE)),
            (&["ZCOUNT", "z", "1", "nan"], err(NOT_FLOAT_RANGE)),
            (&["ZCOUNT", "z", "[1", "2"], err(NOT_FLOAT_RANGE)),
            (&["ZCOUNT", "nokey", "x", "2"], err(NOT_FLOAT_RANGE)),
            (&["ZCOUNT", "z", "1"], arity("zcount")),
            (&["ZRANGEBYSCORE", "z", "(1", "4"], bulks(&["b", "c", "d"])),
            (&["ZRANGEBYSCORE", "z", "-inf", "2", "WITHSCORES"], flat(&[("lo", "-inf"), ("a", "1"), ("b", "2")])),
            (&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "2"], bulks(&["a", "b"])),
            (&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "4", "-1"], bulks(&["d", "hi"])),
            (&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "-1", "2"], arr(vec![])),
            (&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "10", "2"], arr(vec![])),
            (&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0", "0"], arr(vec![])),
            (&["ZRANGEBYSCORE", "z", "1", "4", "WITHSCORES", "LIMIT", "1", "1"], flat(&[("b", "2")])),
            (&["ZRANGEBYSCORE", "z", "1", "4", "LIMIT", "1", "1", "WITHSCORES", "WITHSCORES"], flat(&[("b", "2")])),
            (&["ZRANGEBYSCORE", "z", "5", "4"], arr(vec![])),
            (&["ZRANGEBYSCORE", "nokey", "1", "4"], arr(vec![])),
            (&["ZRANGEBYSCORE", "z", "1", "4", "LIMIT", "1"], err(SYNTAX)),
            (&["ZRANGEBYSCORE", "z", "1", "4", "LIMIT", "x", "1"], err(NOT_INT)),
            (&["ZRANGEBYSCORE", "z", "1", "4", "BYSCORE"], err(SYNTAX)),
            (&["ZRANGEBYSCORE", "z", "1", "4", "REV"], err(SYNTAX)),
            (&["ZRANGEBYSCORE", "z", "x", "4"], err(NOT_FLOAT_RANGE)),
            (&["ZRANGEBYSCORE", "z", "1"], arity("zrangebyscore")),
            // Reversed: max first.
            (&["ZREVRANGEBYSCORE", "z", "4", "(1"], bulks(&["d", "c", "b"])),
            (&["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", "1", "2"], flat(&[("d", "4"), ("c", "3")])),
            (&["ZREVRANGEBYSCORE", "z", "1", "4"], arr(vec![])),
            (&["ZREVRANGEBYSCORE", "z", "(3", "-inf", "LIMIT", "0", "-1"], bulks(&["b", "a", "lo"])),
        ]);
    }

    fn zrange_forms(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"], int(4)),
            (&["ZRANGE", "z", "0", "-1"], bulks(&["a", "b", "c", "d"])),
            (&["ZRANGE", "z", "1", "2", "WITHSCORES"], flat(&[("b", "2"), ("c", "3")])),
            (&["ZRANGE", "z", "-2", "-1"], bulks(&["c", "d"])),
            (&["ZRANGE", "z", "-100", "100"], bulks(&["a", "b", "c", "d"])),
            (&["ZRANGE", "z", "2", "1"], arr(vec![])),
            (&["ZRANGE", "z", "4", "10"], arr(vec![])),
            (&["ZRANGE", "z", "0", "-5"], arr(vec![])),
            (&["ZRANGE", "z", "0", "0", "REV"], bulks(&["d"])),
            (&["ZRANGE", "z", "0", "-1", "REV", "WITHSCORES"], flat(&[("d", "4"), ("c", "3"), ("b", "2"), ("a", "1")])),
            (&["ZRANGE", "z", "(1", "3", "BYSCORE"], bulks(&["b", "c"])),
            (&["ZRANGE", "z", "3", "(1", "BYSCORE", "REV"], bulks(&["c", "b"])),
            (&["ZRANGE", "z", "(1", "3", "BYSCORE", "REV"], arr(vec![])),
            (&["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES"], flat(&[("c", "3"), ("b", "2")])),
            (&["ZRANGE", "z", "-inf", "+inf", "byscore", "limit", "0", "1"], bulks(&["a"])),
            (&["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"], err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")),
            // LIMIT 0 -1 is the default, so it passes even without BYSCORE.
            (&["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"], bulks(&["a", "b", "c", "d"])),
            (&["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
            (&["ZRANGE", "z", "0", "-1", "REV", "REV"], err(SYNTAX)),
            (&["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"], err(SYNTAX)),
            (&["ZRANGE", "z", "0", "-1", "BYSCORE", "LIMIT", "0"], err(SYNTAX)),
            (&["ZRANGE", "z", "0", "-1", "FOO"], err(SYNTAX)),
            (&["ZRANGE", "z", "a", "-1"], err(NOT_INT)),
            (&["ZRANGE", "z", "x", "1", "BYSCORE"], err(NOT_FLOAT_RANGE)),
            (&["ZRANGE", "z", "a", "b", "BYLEX"], err(NOT_LEX_RANGE)),
            (&["ZRANGE", "nokey", "0", "-1"], arr(vec![])),
            (&["ZRANGE", "nokey", "x", "-1"], err(NOT_INT)),
            (&["ZRANGE", "z", "0"], arity("zrange")),
            (&["ZREVRANGE", "z", "0", "1"], bulks(&["d", "c"])),
            (&["ZREVRANGE", "z", "1", "1", "WITHSCORES"], flat(&[("c", "3")])),
            (&["ZREVRANGE", "z", "-1", "-1"], bulks(&["a"])),
            (&["ZREVRANGE", "z", "0", "-1", "LIMIT", "0", "1"], err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")),
            (&["ZREVRANGE", "z", "0", "-1", "REV"], err(SYNTAX)),
        ]);
    }

    fn lex_ranges(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", ""], int(6)),
            (&["ZRANGEBYLEX", "l", "-", "+"], bulks(&["", "a", "b", "c", "d", "e"])),
            (&["ZRANGEBYLEX", "l", "(a", "[c"], bulks(&["b", "c"])),
            (&["ZRANGEBYLEX", "l", "[b", "(d"], bulks(&["b", "c"])),
            (&["ZRANGEBYLEX", "l", "(", "[a"], bulks(&["a"])),
            (&["ZRANGEBYLEX", "l", "[", "[a"], bulks(&["", "a"])),
            (&["ZRANGEBYLEX", "l", "+", "-"], arr(vec![])),
            (&["ZRANGEBYLEX", "l", "[c", "[b"], arr(vec![])),
            (&["ZRANGEBYLEX", "l", "[bb", "+"], bulks(&["c", "d", "e"])),
            (&["ZRANGEBYLEX", "l", "-", "+", "LIMIT", "1", "2"], bulks(&["a", "b"])),
            (&["ZRANGEBYLEX", "l", "-", "+", "LIMIT", "-1", "2"], arr(vec![])),
            (&["ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
            (&["ZRANGEBYLEX", "l", "a", "+"], err(NOT_LEX_RANGE)),
            (&["ZRANGEBYLEX", "l", "[a", "+x"], err(NOT_LEX_RANGE)),
            (&["ZRANGEBYLEX", "l", "", "+"], err(NOT_LEX_RANGE)),
            (&["ZRANGEBYLEX", "l", "--", "+"], err(NOT_LEX_RANGE)),
            (&["ZRANGEBYLEX", "nokey", "-", "+"], arr(vec![])),
            (&["ZREVRANGEBYLEX", "l", "+", "-", "LIMIT", "1", "2"], bulks(&["d", "c"])),
            (&["ZREVRANGEBYLEX", "l", "[c", "(a"], bulks(&["c", "b"])),
            (&["ZREVRANGEBYLEX", "l", "-", "+"], arr(vec![])),
            (&["ZRANGE", "l", "[b", "[d", "BYLEX"], bulks(&["b", "c", "d"])),
            (&["ZRANGE", "l", "[d", "[b", "BYLEX", "REV", "LIMIT", "0", "2"], bulks(&["d", "c"])),
            (&["ZLEXCOUNT", "l", "-", "+"], int(6)),
            (&["ZLEXCOUNT", "l", "[b", "(b"], int(0)),
            (&["ZLEXCOUNT", "l", "[b", "[b"], int(1)),
            (&["ZLEXCOUNT", "l", "(a", "+"], int(4)),
            (&["ZLEXCOUNT", "nokey", "-", "+"], int(0)),
            (&["ZLEXCOUNT", "l", "a", "+"], err(NOT_LEX_RANGE)),
            (&["ZLEXCOUNT", "nokey", "a", "+"], err(NOT_LEX_RANGE)),
            (&["ZLEXCOUNT", "l", "-"], arity("zlexcount")),
        ]);
    }

    fn zremrange(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"], int(5)),
            (&["ZREMRANGEBYRANK", "z", "0", "0"], int(1)),
            (&["ZREMRANGEBYRANK", "z", "-1", "-1"], int(1)),
            (&["ZREMRANGEBYRANK", "z", "5", "10"], int(0)),
            (&["ZREMRANGEBYRANK", "z", "2", "1"], int(0)),
            (&["ZRANGE", "z", "0", "-1"], bulks(&["b", "c", "d"])),
            (&["ZREMRANGEBYRANK", "z", "x", "1"], err(NOT_INT)),
            (&["ZREMRANGEBYRANK", "nokey", "0", "-1"], int(0)),
            (&["ZREMRANGEBYSCORE", "z", "(2", "3"], int(1)),
            (&["ZREMRANGEBYSCORE", "z", "10", "20"], int(0)),
            (&["ZREMRANGEBYSCORE", "z", "x", "20"], err(NOT_FLOAT_RANGE)),
            (&["ZREMRANGEBYSCORE", "nokey", "x", "20"], err(NOT_FLOAT_RANGE)),
            (&["ZREMRANGEBYSCORE", "z", "-inf", "+inf"], int(2)),
            (&["EXISTS", "z"], int(0)),
            (&["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"], int(4)),
            (&["ZREMRANGEBYLEX", "l", "(a", "[c"], int(2)),
            (&["ZREMRANGEBYLEX", "l", "[x", "+"], int(0)),
            (&["ZREMRANGEBYLEX", "l", "x", "+"], err(NOT_LEX_RANGE)),
            (&["ZRANGE", "l", "0", "-1"], bulks(&["a", "d"])),
            (&["ZREMRANGEBYLEX", "l", "-", "+"], int(2)),
            (&["EXISTS", "l"], int(0)),
            (&["ZREMRANGEBYLEX", "nokey", "-", "+"], int(0)),
            (&["ZREMRANGEBYRANK", "z", "0"], arity("zremrangebyrank")),
            (&["ZREMRANGEBYSCORE", "z", "0"], arity("zremrangebyscore")),
            (&["ZREMRANGEBYLEX", "z", "-"], arity("zremrangebylex")),
        ]);
    }

    fn pops(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"], int(4)),
            (&["ZPOPMIN", "z"], flat(&[("a", "1")])),
            (&["ZPOPMAX", "z"], flat(&[("d", "4")])),
            (&["ZPOPMIN", "z", "0"], arr(vec![])),
            (&["ZPOPMIN", "z", "1"], flat(&[("b", "2")])),
            (&["ZPOPMAX", "z", "10"], flat(&[("c", "3")])),
            (&["EXISTS", "z"], int(0)),
            (&["ZPOPMIN", "z"], arr(vec![])),
            (&["ZPOPMAX", "nokey", "0"], arr(vec![])),
            (&["ZPOPMIN", "z", "-1"], err("ERR value is out of range, must be positive")),
            (&["ZPOPMIN", "z", "x"], err("ERR value is out of range, must be positive")),
            (&["ZPOPMIN", "z", "1", "2"], err(SYNTAX)),
            (&["ZPOPMIN"], arity("zpopmin")),
            (&["ZADD", "{t}a", "1", "x", "2", "y", "3", "z"], int(3)),
            (&["ZADD", "{t}b", "5", "p"], int(1)),
            (&["ZMPOP", "2", "{t}none", "{t}a", "MIN"], arr(vec![bulk("{t}a"), arr(vec![bulks(&["x", "1"])])])),
            (&["ZMPOP", "2", "{t}a", "{t}b", "max", "COUNT", "5"], arr(vec![
                bulk("{t}a"), arr(vec![bulks(&["z", "3"]), bulks(&["y", "2"])]),
            ])),
            (&["EXISTS", "{t}a"], int(0)),
            (&["ZMPOP", "2", "{t}a", "{t}b", "MAX", "COUNT", "1"], arr(vec![bulk("{t}b"), arr(vec![bulks(&["p", "5"])])])),
            (&["ZMPOP", "2", "{t}a", "{t}b", "MIN"], nil()),
            (&["ZMPOP", "0", "{t}a", "MIN"], err("ERR numkeys should be greater than 0")),
            (&["ZMPOP", "x", "{t}a", "MIN"], err("ERR numkeys should be greater than 0")),
            (&["ZMPOP", "5", "{t}a", "MIN"], err(SYNTAX)),
            (&["ZMPOP", "1", "{t}a", "MIDDLE"], err(SYNTAX)),
            (&["ZMPOP", "1", "{t}a", "MIN", "COUNT", "0"], err("ERR count should be greater than 0")),
            (&["ZMPOP", "1", "{t}a", "MIN", "COUNT", "x"], err("ERR count should be greater than 0")),
            (&["ZMPOP", "1", "{t}a", "MIN", "COUNT", "1", "COUNT", "1"], err(SYNTAX)),
            (&["ZMPOP", "1", "{t}a", "MIN", "COUNT"], err(SYNTAX)),
            (&["ZMPOP", "1", "{t}a"], arity("zmpop")),
            (&["SET", "{t}s", "v"], ok()),
            (&["ZADD", "{t}c", "1", "x"], int(1)),
            // The first existing key decides: WRONGTYPE before, a pop after.
            (&["ZMPOP", "2", "{t}s", "{t}c", "MIN"], err(WRONGTYPE)),
            (&["ZMPOP", "2", "{t}c", "{t}s", "MIN"], arr(vec![bulk("{t}c"), arr(vec![bulks(&["x", "1"])])])),
        ]);
    }

    fn zrandmember(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZRANDMEMBER", "nokey"], nil()),
            (&["ZRANDMEMBER", "nokey", "5"], arr(vec![])),
            (&["ZRANDMEMBER", "nokey", "-5", "WITHSCORES"], arr(vec![])),
            (&["ZADD", "one", "1", "a"], int(1)),
            (&["ZRANDMEMBER", "one"], bulk("a")),
            (&["ZRANDMEMBER", "one", "0"], arr(vec![])),
            (&["ZRANDMEMBER", "one", "-3"], bulks(&["a", "a", "a"])),
            (&["ZRANDMEMBER", "one", "2", "WITHSCORES"], flat(&[("a", "1")])),
            (&["ZRANDMEMBER", "one", "x"], err(NOT_INT)),
            (&["ZRANDMEMBER", "one", "1", "WITHSCORE"], err(SYNTAX)),
            (&["ZRANDMEMBER", "one", "1", "WITHSCORES", "x"], err(SYNTAX)),
            (&["ZRANDMEMBER", "one", "-9223372036854775807", "WITHSCORES"], err("ERR value is out of range")),
            (&["ZRANDMEMBER", "one", "4611686018427387904", "WITHSCORES"], err("ERR value is out of range")),
            (&["ZRANDMEMBER", "one", "-9223372036854775808"], err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")),
            (&["ZRANDMEMBER"], arity("zrandmember")),
        ]);
        if !srv.is_reference() {
            // Redis would try to build this reply; coreshard bounds it.
            assert_eq!(cmd(&mut c, &["ZRANDMEMBER", "one", "-9223372036854775807"]), err("ERR value is out of range"));
        }
        for n in [20, 200] {
            let key = format!("z{n}");
            fill(&mut c, &key, n);
            let members: BTreeSet<String> = (0..n).map(|i| format!("m{i:04}")).collect();
            let r = cmd(&mut c, &["ZRANDMEMBER", &key, "5"]).items();
            let distinct: BTreeSet<String> = r.iter().map(Reply::text).collect();
            assert_eq!((r.len(), distinct.len()), (5, 5), "positive count gives distinct members");
            assert!(distinct.is_subset(&members));
            let r = cmd(&mut c, &["ZRANDMEMBER", &key, "1000"]).items();
            assert_eq!(r.iter().map(Reply::text).collect::<BTreeSet<_>>(), members);
            assert_eq!(r.len(), n);
            let r = cmd(&mut c, &["ZRANDMEMBER", &key, "-50"]).items();
            assert_eq!(r.len(), 50);
            assert!(r.iter().all(|m| members.contains(&m.text())));
            for count in ["7", "-30", "300"] {
                let r = cmd(&mut c, &["ZRANDMEMBER", &key, count, "WITHSCORES"]).items();
                let want: i64 = count.parse().unwrap();
                let len = if want < 0 { -want as usize } else { (want as usize).min(n) };
                assert_eq!(r.len(), len * 2, "ZRANDMEMBER {key} {count} WITHSCORES");
                for pair in r.chunks(2) {
                    let i: usize = pair[0].text()[1..].parse().unwrap();
                    assert_eq!(pair[1].text(), i.to_string());
                }
            }
            assert!(members.contains(&cmd(&mut c, &["ZRANDMEMBER", &key]).text()));
        }
    }

    fn union_and_inter_store(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["ZADD", "{t}u", "1", "a", "2", "b", "3", "c"], int(3)),
            (&["ZADD", "{t}v", "10", "b", "20", "c", "30", "d"], int(3)),
            (&["ZUNIONSTORE", "{t}d", "2", "{t}u", "{t}v"], int(4)),
            (&["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], flat(&[("a", "1"), ("b", "12"), ("c", "23"), ("d", "30")])),
            (&["ZUNIONSTORE", "{t}d", "2", "{t}u", "{t}v", "WEIGHTS", "2", "-1"], int(4)),
            (&["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], flat(&[("d", "-30"), ("c", "-14"), ("b", "-6"), ("a", "2")])),
            (&["ZUNIONSTORE", "{t}d", "2", "{t}u", "{t}v", "AGGREGATE", "MIN"], int(4)),
            (&["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], flat(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "30")])),
            (&["ZUNIONSTORE", "{t}d", "3", "{t}u", "{t}none", "{t}v", "aggregate", "max", "weights", "1", "5", "0.5"], int(4)),
            (&["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], flat(&[("a", "1"), ("b", "5"), ("c", "10"), ("d", "15")])),
            (&["ZINTERSTORE", "{t}d", "2", "{t}u", "{t}v"], int(2)),
            (&["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], flat(&[("b", "12"), ("c", "23")])),
            (&["ZINTERSTORE", "{t}d", "2", "{t}u", "{t}v", "AGGREGATE", "MAX", "WEIGHTS", "3", "0.25"], int(2)),
            (&["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"], flat(&[("b", "6"), ("c", "9")])),
            (&["ZINTERSTORE", "{t}d", "1", "{t}u"], int(3)),
            // An empty result removes the destination.
            (&["EXPIRE", "{t}d", "100"], int(1)),
            (&["ZINTERSTORE", "{t}d", "2", "{t}u", "{t}none"], int(0)),
            (&["EXISTS", "{t}d"], int(0)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}none"], int(0)),
            (&["EXISTS", "{t}d"], int(0)),
            // The destination is replaced whatever it held, and loses its TTL.
            (&["SET", "{t}d", "string"], ok()),
            (&["EXPIRE", "{t}d", "100"], int(1)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u"], int(3)),
            (&["TYPE", "{t}d"], status("zset")),
            (&["TTL", "{t}d"], int(-1)),
            // The destination may be a source.
            (&["ZUNIONSTORE", "{t}u", "2", "{t}u", "{t}u"], int(3)),
            (&["ZRANGE", "{t}u", "0", "-1", "WITHSCORES"], flat(&[("a", "2"), ("b", "4"), ("c", "6")])),
            // Infinities: inf + -inf sums to 0, and 0 * inf weighs 0.
            (&["ZADD", "{t}i", "inf", "a"], int(1)),
            (&["ZADD", "{t}j", "-inf", "a"], int(1)),
            (&["ZUNIONSTORE", "{t}k", "2", "{t}i", "{t}j"], int(1)),
            (&["ZSCORE", "{t}k", "a"], bulk("0")),
            (&["ZINTERSTORE", "{t}k", "2", "{t}i", "{t}j", "WEIGHTS", "0", "1"], int(1)),
            (&["ZSCORE", "{t}k", "a"], bulk("-inf")),
            (&["ZUNIONSTORE", "{t}k", "2", "{t}i", "{t}j", "WEIGHTS", "0", "0"], int(1)),
            (&["ZSCORE", "{t}k", "a"], bulk("0")),
            // Errors.
            (&["ZUNIONSTORE", "{t}d", "0", "{t}u"], err("ERR at least 1 input key is needed for 'zunionstore' command")),
            (&["ZINTERSTORE", "{t}d", "-1", "{t}u"], err("ERR at least 1 input key is needed for 'zinterstore' command")),
            (&["ZUNIONSTORE", "{t}d", "x", "{t}u"], err(NOT_INT)),
            (&["ZUNIONSTORE", "{t}d", "2", "{t}u"], err(SYNTAX)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u", "WEIGHTS"], err(SYNTAX)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u", "WEIGHTS", "x"], err("ERR weight value is not a float")),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u", "WEIGHTS", "1", "2"], err(SYNTAX)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u", "AGGREGATE", "AVG"], err(SYNTAX)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u", "AGGREGATE"], err(SYNTAX)),
            (&["ZUNIONSTORE", "{t}d", "1", "{t}u", "WITHSCORES"], err(SYNTAX)),
            (&["ZUNIONSTORE", "{t}d", "1"], arity("zunionstore")),
            (&["ZINTERSTORE", "{t}d", "1"], arity("zinterstore")),
            (&["SET", "{t}s", "v"], ok()),
            (&["ZUNIONSTORE", "{t}d", "2", "{t}u", "{t}s"], err(WRONGTYPE)),
            (&["ZINTERSTORE", "{t}d", "2", "{t}none", "{t}s"], err(WRONGTYPE)),
            // WRONGTYPE is found before the options are read.
            (&["ZINTERSTORE", "{t}d", "1", "{t}s", "AGGREGATE", "AVG"], err(WRONGTYPE)),
        ]);
    }

    fn zscan(srv) {
        let mut c = srv.client();
        fill(&mut c, "big", 300);
        for extra in [&[][..], &["COUNT", "7"][..], &["MATCH", "m01*", "COUNT", "40"][..]] {
            let mut cursor = "0".to_string();
            let mut seen = BTreeMap::new();
            let mut calls = 0;
            loop {
                let mut a = vec!["ZSCAN".to_string(), "big".to_string(), cursor.clone()];
                a.extend(extra.iter().map(|s| s.to_string()));
                let r = cmd_vec(&mut c, &a).items();
                assert_eq!(r.len(), 2);
                cursor = r[0].text();
                let items = r[1].items();
                assert_eq!(items.len() % 2, 0, "ZSCAN returns member/score pairs");
                for pair in items.chunks(2) {
                    seen.insert(pair[0].text(), pair[1].text());
                }
                calls += 1;
                assert!(calls < 10_000);
                if cursor == "0" {
                    break;
                }
            }
            let want: BTreeMap<String, String> = (0..300)
                .map(|i| (format!("m{i:04}"), i.to_string()))
                .filter(|(m, _)| !extra.contains(&"MATCH") || m.starts_with("m01"))
                .collect();
            assert_eq!(seen, want, "ZSCAN {extra:?}");
        }
        expect_all(&mut c, &[
            (&["ZADD", "small", "2", "b", "1.5", "a"], int(2)),
            (&["ZSCAN", "small", "0"], arr(vec![bulk("0"), bulks(&["a", "1.5", "b", "2"])])),
            (&["ZSCAN", "small", "0", "MATCH", "b"], arr(vec![bulk("0"), bulks(&["b", "2"])])),
            (&["ZSCAN", "nokey", "0"], arr(vec![bulk("0"), arr(vec![])])),
            // The key is looked up before the options are read.
            (&["ZSCAN", "nokey", "0", "COUNT", "0"], arr(vec![bulk("0"), arr(vec![])])),
            (&["ZSCAN", "small", "abc"], err("ERR invalid cursor")),
            // Cursors are read as strtoul reads them: a sign and leading
            // zeros pass, a lone sign does not.
            (&["ZSCAN", "small", "-1", "MATCH", "b"], arr(vec![bulk("0"), bulks(&["b", "2"])])),
            (&["ZSCAN", "small", "00", "MATCH", "b"], arr(vec![bulk("0"), bulks(&["b", "2"])])),
            (&["ZSCAN", "small", "-"], err("ERR invalid cursor")),
            (&["ZSCAN", "small", "0", "COUNT", "0"], err(SYNTAX)),
            (&["ZSCAN", "small", "0", "COUNT", "x"], err(NOT_INT)),
            (&["ZSCAN", "small", "0", "MATCH"], err(SYNTAX)),
            (&["ZSCAN", "small", "0", "NOVALUES"], err(SYNTAX)),
            (&["ZSCAN", "small"], arity("zscan")),
        ]);
    }

    fn large_sets_match_a_model(srv) {
        // Past 128 members the large encoding serves; every answer is checked
        // against a sorted model computed here.
        let mut c = srv.client();
        let n = 400usize;
        let mut model: Vec<(i64, String)> = Vec::new();
        let mut args = vec!["ZADD".to_string(), "big".to_string()];
        for i in 0..n {
            let score = ((i * 37) % 50) as i64 - 25;
            let member = format!("k{i:03}");
            args.push(score.to_string());
            args.push(member.clone());
            model.push((score, member));
        }
        assert_eq!(cmd_vec(&mut c, &args), int(n as i64));
        model.sort();
        let names = |v: &[(i64, String)]| arr(v.iter().map(|(_, m)| bulk(m)).collect());
        assert_eq!(cmd(&mut c, &["ZCARD", "big"]), int(n as i64));
        assert_eq!(cmd(&mut c, &["ZRANGE", "big", "0", "-1"]), names(&model));
        assert_eq!(cmd(&mut c, &["ZRANGE", "big", "100", "149"]), names(&model[100..150]));
        let mut rev = model.clone();
        rev.reverse();
        assert_eq!(cmd(&mut c, &["ZRANGE", "big", "10", "19", "REV"]), names(&rev[10..20]));
        for (rank, (score, member)) in model.iter().enumerate().step_by(13) {
            assert_eq!(cmd(&mut c, &["ZRANK", "big", member]), int(rank as i64));
            assert_eq!(cmd(&mut c, &["ZREVRANK", "big", member]), int((n - 1 - rank) as i64));
            assert_eq!(cmd(&mut c, &["ZSCORE", "big", member]), bulk(score.to_string()));
        }
        let inside: Vec<(i64, String)> = model.iter().filter(|(s, _)| *s > -3 && *s <= 4).cloned().collect();
        assert_eq!(cmd(&mut c, &["ZCOUNT", "big", "(-3", "4"]), int(inside.len() as i64));
        assert_eq!(cmd(&mut c, &["ZRANGEBYSCORE", "big", "(-3", "4"]), names(&inside));
        assert_eq!(cmd(&mut c, &["ZRANGEBYSCORE", "big", "(-3", "4", "LIMIT", "5", "10"]), names(&inside[5..15]));
        let inside_rev: Vec<(i64, String)> = inside.iter().rev().cloned().collect();
        assert_eq!(cmd(&mut c, &["ZREVRANGEBYSCORE", "big", "4", "(-3", "LIMIT", "3", "4"]), names(&inside_rev[3..7]));
        // Updates move members; removals close the gaps.
        assert_eq!(cmd(&mut c, &["ZADD", "big", "100", "k000"]), int(0));
        model.retain(|(_, m)| m != "k000");
        model.push((100, "k000".into()));
        assert_eq!(cmd(&mut c, &["ZRANK", "big", "k000"]), int(n as i64 - 1));
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYRANK", "big", "0", "49"]), int(50));
        model.drain(..50);
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYSCORE", "big", "10", "20"]), int(model.iter().filter(|(s, _)| (10..=20).contains(s)).count() as i64));
        model.retain(|(s, _)| !(10..=20).contains(s));
        assert_eq!(cmd(&mut c, &["ZPOPMIN", "big", "3"]).items().len(), 6);
        model.drain(..3);
        assert_eq!(cmd(&mut c, &["ZRANGE", "big", "0", "-1"]), names(&model));
        assert_eq!(cmd(&mut c, &["ZCARD", "big"]), int(model.len() as i64));
    }

    fn command_info_matches_redis(srv) {
        let mut c = srv.client();
        // name, arity, flags, first key, last key, step: as Redis 7.0 reports
        // them. Not listed: ZRANK and ZREVRANK, whose arity is -3 here as in
        // Redis 7.2 (WITHSCORE), and ZUNIONSTORE and ZINTERSTORE, which Redis
        // flags movablekeys.
        let want: &[InfoRow] = &[
            ("zadd", -4, &["write", "denyoom", "fast"], 1, 1, 1),
            ("zincrby", 4, &["write", "denyoom", "fast"], 1, 1, 1),
            ("zscore", 3, &["readonly", "fast"], 1, 1, 1),
            ("zmscore", -3, &["readonly", "fast"], 1, 1, 1),
            ("zrem", -3, &["write", "fast"], 1, 1, 1),
            ("zcard", 2, &["readonly", "fast"], 1, 1, 1),
            ("zcount", 4, &["readonly", "fast"], 1, 1, 1),
            ("zlexcount", 4, &["readonly", "fast"], 1, 1, 1),
            ("zrange", -4, &["readonly"], 1, 1, 1),
            ("zrevrange", -4, &["readonly"], 1, 1, 1),
            ("zrangebyscore", -4, &["readonly"], 1, 1, 1),
            ("zrevrangebyscore", -4, &["readonly"], 1, 1, 1),
            ("zrangebylex", -4, &["readonly"], 1, 1, 1),
            ("zrevrangebylex", -4, &["readonly"], 1, 1, 1),
            ("zremrangebyrank", 4, &["write"], 1, 1, 1),
            ("zremrangebyscore", 4, &["write"], 1, 1, 1),
            ("zremrangebylex", 4, &["write"], 1, 1, 1),
            ("zpopmin", -2, &["write", "fast"], 1, 1, 1),
            ("zpopmax", -2, &["write", "fast"], 1, 1, 1),
            ("zmpop", -4, &["write", "movablekeys"], 0, 0, 0),
            ("zrandmember", -2, &["readonly"], 1, 1, 1),
            ("zscan", -3, &["readonly"], 1, 1, 1),
        ];
        assert_command_info(&mut c, want);
        // ZMPOP's keys follow its numkeys.
        expect_all(&mut c, &[
            (&["COMMAND", "GETKEYS", "ZMPOP", "2", "a", "b", "MIN"], bulks(&["a", "b"])),
            (&["COMMAND", "GETKEYS", "ZMPOP", "1", "a", "MAX", "COUNT", "2"], bulks(&["a"])),
        ]);
    }

    fn resp3_replies(srv) {
        let mut c = srv.client_resp3();
        expect_all(&mut c, &[
            (&["ZADD", "z", "1", "a", "2.5", "b", "3", "c"], int(3)),
            (&["ZSCORE", "z", "b"], Reply::Double(2.5)),
            (&["ZSCORE", "z", "zz"], nil()),
            (&["ZMSCORE", "z", "a", "zz"], arr(vec![Reply::Double(1.0), nil()])),
            (&["ZINCRBY", "z", "1", "a"], Reply::Double(2.0)),
            (&["ZADD", "z", "INCR", "-1", "a"], Reply::Double(1.0)),
            (&["ZADD", "z", "XX", "INCR", "1", "nobody"], nil()),
            (&["ZRANK", "z", "nobody"], nil()),
            (&["ZRANGE", "z", "0", "-1", "WITHSCORES"], pairs3(&[("a", 1.0), ("b", 2.5), ("c", 3.0)])),
            (&["ZRANGE", "z", "0", "-1"], bulks(&["a", "b", "c"])),
            (&["ZREVRANGEBYSCORE", "z", "+inf", "2", "WITHSCORES"], pairs3(&[("c", 3.0), ("b", 2.5)])),
            // ZPOPMIN without COUNT stays flat; with COUNT it gives pairs.
            (&["ZPOPMIN", "z"], arr(vec![bulk("a"), Reply::Double(1.0)])),
            (&["ZPOPMAX", "z", "1"], pairs3(&[("c", 3.0)])),
            (&["ZADD", "z", "1", "a", "3", "c"], int(2)),
            (&["ZMPOP", "1", "z", "MIN", "COUNT", "2"], arr(vec![bulk("z"), pairs3(&[("a", 1.0), ("b", 2.5)])])),
            (&["ZMPOP", "1", "nokey", "MIN"], nil()),
            (&["ZRANDMEMBER", "z", "-2", "WITHSCORES"], pairs3(&[("c", 3.0), ("c", 3.0)])),
            (&["ZRANDMEMBER", "nokey"], nil()),
            (&["ZADD", "inf", "-inf", "x"], int(1)),
            (&["ZSCORE", "inf", "x"], Reply::Double(f64::NEG_INFINITY)),
        ]);
    }

    fn wrongtype(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "s", "v"]), ok());
        assert_eq!(cmd(&mut c, &["HSET", "h", "f", "1"]), int(1));
        assert_eq!(cmd(&mut c, &["ZADD", "z", "1", "m"]), int(1));
        let wrong = err(WRONGTYPE);
        for key in ["s", "h"] {
            let commands: &[&[&str]] = &[
                &["ZADD", key, "1", "m"],
                &["ZADD", key, "XX", "1", "m"],
                &["ZINCRBY", key, "1", "m"],
                &["ZSCORE", key, "m"],
                &["ZMSCORE", key, "m"],
                &["ZREM", key, "m"],
                &["ZCARD", key],
                &["ZCOUNT", key, "0", "1"],
                &["ZLEXCOUNT", key, "-", "+"],
                &["ZRANK", key, "m"],
                &["ZREVRANK", key, "m"],
                &["ZRANGE", key, "0", "-1"],
                &["ZREVRANGE", key, "0", "-1"],
                &["ZRANGEBYSCORE", key, "0", "1"],
                &["ZREVRANGEBYSCORE", key, "1", "0"],
                &["ZRANGEBYLEX", key, "-", "+"],
                &["ZREVRANGEBYLEX", key, "+", "-"],
                &["ZREMRANGEBYRANK", key, "0", "-1"],
                &["ZREMRANGEBYSCORE", key, "0", "1"],
                &["ZREMRANGEBYLEX", key, "-", "+"],
                &["ZPOPMIN", key],
                &["ZPOPMAX", key, "0"],
                &["ZMPOP", "1", key, "MIN"],
                &["ZRANDMEMBER", key],
                &["ZRANDMEMBER", key, "2", "WITHSCORES"],
                &["ZSCAN", key, "0"],
            ];
            for args in commands {
                assert_eq!(cmd(&mut c, args), wrong, "{args:?}");
            }
        }
        let on_zset: &[&[&str]] = &[
            &["GET", "z"],
            &["APPEND", "z", "v"],
            &["INCR", "z"],
            &["HGET", "z", "f"],
            &["HSET", "z", "f", "v"],
            &["HGETALL", "z"],
        ];
        for args in on_zset {
            assert_eq!(cmd(&mut c, args), wrong, "{args:?}");
        }
        // Nothing was changed by the failed commands.
        expect_all(&mut c, &[
            (&["GET", "s"], bulk("v")),
            (&["HGETALL", "h"], bulks(&["f", "1"])),
            (&["ZRANGE", "z", "0", "-1", "WITHSCORES"], flat(&[("m", "1")])),
            (&["TYPE", "z"], status("zset")),
            (&["DEL", "s", "h", "z"], int(3)),
        ]);
    }
}

/// Sorted-set commands over keys of different shards run as in one Redis.
#[test]
fn multi_key_commands_across_shards() {
    let srv = common::Server::start(4);
    let mut c = srv.client();
    // "foo" is in slot 12182 (shard 2 of 4), "bar" in slot 5061 (shard 1).
    assert_eq!(cmd(&mut c, &["ZADD", "foo", "1", "a"]), int(1));
    assert_eq!(cmd(&mut c, &["ZADD", "bar", "2", "a"]), int(1));
    expect_all(
        &mut c,
        &[
            (&["ZUNIONSTORE", "foo", "2", "foo", "bar"], int(1)),
            (&["ZSCORE", "foo", "a"], bulk("3")),
            (&["ZINTERSTORE", "bar", "1", "foo"], int(1)),
            (&["ZSCORE", "bar", "a"], bulk("3")),
            (&["ZMPOP", "2", "foo", "bar", "MIN"], arr(vec![bulk("foo"), arr(vec![bulks(&["a", "3"])])])),
            (&["EXISTS", "foo"], int(0)),
            (&["ZUNIONSTORE", "baz", "2", "nosuch", "bar", "WEIGHTS", "1", "2"], int(1)),
            (&["ZSCORE", "baz", "a"], bulk("6")),
        ],
    );
}

shard_tests! {
    fn zstore_commands_take_plain_sets_as_sources(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SADD", "{z}s", "a", "b"], int(2)),
            (&["ZADD", "{z}z", "5", "b", "7", "c"], int(2)),
            (&["ZUNIONSTORE", "{z}u", "2", "{z}s", "{z}z"], int(3)),
            (&["ZRANGE", "{z}u", "0", "-1", "WITHSCORES"], bulks(&["a", "1", "b", "6", "c", "7"])),
            (&["ZINTERSTORE", "{z}i", "2", "{z}s", "{z}z", "WEIGHTS", "10", "1"], int(1)),
            (&["ZRANGE", "{z}i", "0", "-1", "WITHSCORES"], bulks(&["b", "15"])),
            (&["SET", "{z}str", "x"], ok()),
            (&["ZUNIONSTORE", "{z}u", "2", "{z}s", "{z}str"], err(WRONGTYPE)),
        ]);
    }
}
