//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET
//! LINSERT LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, their edge cases and error
//! texts, and WRONGTYPE between lists, strings and hashes. Multi-key commands
//! use {hash tags} so their keys share a shard.

#[macro_use]
mod common;

use common::*;

const NO_SUCH_KEY: &str = "ERR no such key";
const OUT_OF_RANGE: &str = "ERR index out of range";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";

fn ints(items: &[i64]) -> Reply {
    arr(items.iter().map(|i| int(*i)).collect())
}

shard_tests! {
    fn push_pop_len(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "l", "a", "b", "c"], int(3)),
            (&["LPUSH", "l", "x", "y"], int(5)),
            (&["LRANGE", "l", "0", "-1"], bulks(&["y", "x", "a", "b", "c"])),
            (&["LLEN", "l"], int(5)),
            (&["LLEN", "nokey"], int(0)),
            (&["TYPE", "l"], status("list")),
            (&["LPUSHX", "nokey", "a"], int(0)),
            (&["RPUSHX", "nokey", "a", "b"], int(0)),
            (&["EXISTS", "nokey"], int(0)),
            (&["LPUSHX", "l", "p"], int(6)),
            (&["RPUSHX", "l", "q", "r"], int(8)),
            (&["LPOP", "l"], bulk("p")),
            (&["RPOP", "l"], bulk("r")),
            (&["LPOP", "l", "2"], bulks(&["y", "x"])),
            (&["RPOP", "l", "2"], bulks(&["q", "c"])),
            (&["LPOP", "l", "0"], arr(vec![])),
            (&["RPOP", "l", "0"], arr(vec![])),
            (&["LRANGE", "l", "0", "-1"], bulks(&["a", "b"])),
            (&["RPOP", "l", "10"], bulks(&["b", "a"])),
            (&["EXISTS", "l"], int(0)),
            (&["LPOP", "l"], nil()),
            (&["RPOP", "l"], nil()),
            (&["LPOP", "nokey", "0"], nil()),
            (&["LPOP", "nokey", "3"], nil()),
            // A single pop that empties the list deletes the key.
            (&["RPUSH", "one", "v"], int(1)),
            (&["LPOP", "one"], bulk("v")),
            (&["EXISTS", "one"], int(0)),
            // Count errors come before the key lookup.
            (&["LPOP", "nokey", "-1"], err(NOT_POSITIVE)),
            (&["LPOP", "nokey", "x"], err(NOT_POSITIVE)),
            (&["RPOP", "nokey", "1.5"], err(NOT_POSITIVE)),
            (&["LPOP", "nokey", "1", "2"], arity("lpop")),
            (&["RPOP", "nokey", "1", "2"], arity("rpop")),
            // Arity.
            (&["LPUSH", "l"], arity("lpush")),
            (&["RPUSH", "l"], arity("rpush")),
            (&["LPUSHX", "l"], arity("lpushx")),
            (&["RPUSHX", "l"], arity("rpushx")),
            (&["LPOP"], arity("lpop")),
            (&["RPOP"], arity("rpop")),
            (&["LLEN"], arity("llen")),
            (&["LLEN", "a", "b"], arity("llen")),
        ]);
        // Binary-safe elements.
        assert_eq!(cmd_bin(&mut c, &[b"RPUSH", b"bin", b"\x00\r\n\xff", b""]), int(2));
        assert_eq!(cmd_bin(&mut c, &[b"LRANGE", b"bin", b"0", b"-1"]), arr(vec![bulk(b"\x00\r\n\xff"), bulk(b"")]));
    }

    fn pop_with_count_nulls_are_exact(srv) {
        let mut s = srv.raw();
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOP", "nokey"])), b"$-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOP", "nokey", "1"])), b"*-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["RPOP", "nokey", "0"])), b"*-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["RPUSH", "l", "a"])), b":1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOP", "l", "0"])), b"*0\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOS", "l", "zz"])), b"$-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOS", "nokey", "a", "COUNT", "0"])), b"*0\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LMPOP", "1", "nokey", "LEFT"])), b"*-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LMOVE", "nokey", "l", "LEFT", "LEFT"])), b"$-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LINDEX", "l", "5"])), b"$-1\r\n");
        // RESP3 has one null for both.
        let hello = raw_roundtrip(&mut s, &resp_cmd(&["HELLO", "3"]));
        assert!(hello.starts_with(b"%"), "{:?}", String::from_utf8_lossy(&hello));
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOP", "nokey", "1"])), b"_\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LPOP", "nokey"])), b"_\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["LMPOP", "1", "nokey", "LEFT"])), b"_\r\n");
        assert_eq!(
            raw_roundtrip(&mut s, &resp_cmd(&["LMPOP", "1", "l", "RIGHT", "COUNT", "5"])),
            b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\na\r\n"
        );
    }

    fn lrange_and_lindex(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "l", "a", "b", "c", "d", "e"], int(5)),
            (&["LRANGE", "l", "0", "0"], bulks(&["a"])),
            (&["LRANGE", "l", "1", "3"], bulks(&["b", "c", "d"])),
            (&["LRANGE", "l", "-2", "-1"], bulks(&["d", "e"])),
            (&["LRANGE", "l", "-100", "100"], bulks(&["a", "b", "c", "d", "e"])),
            (&["LRANGE", "l", "3", "1"], arr(vec![])),
            (&["LRANGE", "l", "5", "10"], arr(vec![])),
            (&["LRANGE", "l", "0", "-6"], arr(vec![])),
            (&["LRANGE", "l", "-1", "-2"], arr(vec![])),
            (&["LRANGE", "l", "4", "4"], bulks(&["e"])),
            (&["LRANGE", "l", "-9223372036854775808", "9223372036854775807"], bulks(&["a", "b", "c", "d", "e"])),
            (&["LRANGE", "nokey", "0", "-1"], arr(vec![])),
            (&["LRANGE", "l", "a", "1"], err(NOT_INT)),
            (&["LRANGE", "l", "0", "1.0"], err(NOT_INT)),
            (&["LRANGE", "nokey", "x", "1"], err(NOT_INT)),
            (&["LRANGE", "l", "0"], arity("lrange")),
            (&["LINDEX", "l", "0"], bulk("a")),
            (&["LINDEX", "l", "4"], bulk("e")),
            (&["LINDEX", "l", "-1"], bulk("e")),
            (&["LINDEX", "l", "-5"], bulk("a")),
            (&["LINDEX", "l", "5"], nil()),
            (&["LINDEX", "l", "-6"], nil()),
            (&["LINDEX", "l", "-9223372036854775808"], nil()),
            (&["LINDEX", "nokey", "0"], nil()),
            // Redis looks the key up before parsing the index.
            (&["LINDEX", "nokey", "x"], nil()),
            (&["LINDEX", "l", "x"], err(NOT_INT)),
            (&["LINDEX", "l"], arity("lindex")),
        ]);
    }

    fn lset_linsert(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "l", "a", "b", "c"], int(3)),
            (&["LSET", "l", "0", "A"], ok()),
            (&["LSET", "l", "-1", "C"], ok()),
            (&["LSET", "l", "3", "x"], err(OUT_OF_RANGE)),
            (&["LSET", "l", "-4", "x"], err(OUT_OF_RANGE)),
            (&["LSET", "l", "x", "x"], err(NOT_INT)),
            (&["LSET", "nokey", "0", "x"], err(NO_SUCH_KEY)),
            (&["LSET", "nokey", "x", "x"], err(NO_SUCH_KEY)),
            (&["EXISTS", "nokey"], int(0)),
            (&["LRANGE", "l", "0", "-1"], bulks(&["A", "b", "C"])),
            (&["LINSERT", "l", "BEFORE", "b", "x"], int(4)),
            (&["LINSERT", "l", "after", "b", "y"], int(5)),
            (&["LINSERT", "l", "AFTER", "C", "z"], int(6)),
            (&["LINSERT", "l", "before", "A", "w"], int(7)),
            (&["LRANGE", "l", "0", "-1"], bulks(&["w", "A", "x", "b", "y", "C", "z"])),
            (&["LINSERT", "l", "BEFORE", "zz", "x"], int(-1)),
            (&["LINSERT", "nokey", "BEFORE", "a", "x"], int(0)),
            (&["EXISTS", "nokey"], int(0)),
            (&["LINSERT", "l", "MIDDLE", "b", "x"], err(SYNTAX)),
            (&["LINSERT", "nokey", "MIDDLE", "b", "x"], err(SYNTAX)),
            // The first match is the pivot.
            (&["RPUSH", "d", "p", "p"], int(2)),
            (&["LINSERT", "d", "AFTER", "p", "q"], int(3)),
            (&["LRANGE", "d", "0", "-1"], bulks(&["p", "q", "p"])),
            (&["LSET", "l", "0"], arity("lset")),
            (&["LINSERT", "l", "BEFORE", "a"], arity("linsert")),
        ]);
    }

    fn lrem_ltrim(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "l", "a", "b", "a", "c", "a", "b"], int(6)),
            (&["LREM", "l", "1", "a"], int(1)),
            (&["LRANGE", "l", "0", "-1"], bulks(&["b", "a", "c", "a", "b"])),
            (&["LREM", "l", "-1", "b"], int(1)),
            (&["LRANGE", "l", "0", "-1"], bulks(&["b", "a", "c", "a"])),
            (&["LREM", "l", "0", "a"], int(2)),
            (&["LRANGE", "l", "0", "-1"], bulks(&["b", "c"])),
            (&["LREM", "l", "5", "zz"], int(0)),
            (&["LREM", "nokey", "0", "a"], int(0)),
            (&["LREM", "l", "x", "a"], err(NOT_INT)),
            (&["LREM", "nokey", "x", "a"], err(NOT_INT)),
            (&["LREM", "l", "-9223372036854775808", "b"], int(1)),
            (&["LREM", "l", "100", "c"], int(1)),
            (&["EXISTS", "l"], int(0)),
            (&["RPUSH", "t", "a", "b", "c", "d", "e"], int(5)),
            (&["LTRIM", "t", "1", "-2"], ok()),
            (&["LRANGE", "t", "0", "-1"], bulks(&["b", "c", "d"])),
            (&["LTRIM", "t", "-100", "100"], ok()),
            (&["LRANGE", "t", "0", "-1"], bulks(&["b", "c", "d"])),
            (&["LTRIM", "t", "1", "1"], ok()),
            (&["LRANGE", "t", "0", "-1"], bulks(&["c"])),
            (&["LTRIM", "t", "1", "0"], ok()),
            (&["EXISTS", "t"], int(0)),
            (&["RPUSH", "t", "a", "b"], int(2)),
            (&["LTRIM", "t", "5", "10"], ok()),
            (&["EXISTS", "t"], int(0)),
            (&["RPUSH", "t", "a", "b"], int(2)),
            (&["LTRIM", "t", "0", "-3"], ok()),
            (&["EXISTS", "t"], int(0)),
            (&["LTRIM", "nokey", "0", "1"], ok()),
            (&["EXISTS", "nokey"], int(0)),
            (&["LTRIM", "nokey", "x", "1"], err(NOT_INT)),
            (&["LTRIM", "t", "0", "y"], err(NOT_INT)),
            (&["LREM", "l", "1"], arity("lrem")),
            (&["LTRIM", "l", "1"], arity("ltrim")),
        ]);
    }

    fn lpos_options(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"], int(8)),
            (&["LPOS", "l", "a"], int(0)),
            (&["LPOS", "l", "c"], int(2)),
            (&["LPOS", "l", "zz"], nil()),
            (&["LPOS", "nokey", "a"], nil()),
            (&["LPOS", "nokey", "a", "COUNT", "1"], arr(vec![])),
            (&["LPOS", "l", "c", "RANK", "1"], int(2)),
            (&["LPOS", "l", "c", "RANK", "2"], int(6)),
            (&["LPOS", "l", "c", "RANK", "4"], nil()),
            (&["LPOS", "l", "c", "RANK", "-1"], int(7)),
            (&["LPOS", "l", "c", "RANK", "-3"], int(2)),
            (&["LPOS", "l", "c", "COUNT", "0"], ints(&[2, 6, 7])),
            (&["LPOS", "l", "c", "COUNT", "2"], ints(&[2, 6])),
            (&["LPOS", "l", "c", "COUNT", "10"], ints(&[2, 6, 7])),
            (&["LPOS", "l", "zz", "COUNT", "10"], arr(vec![])),
            (&["LPOS", "l", "c", "RANK", "2", "COUNT", "0"], ints(&[6, 7])),
            (&["LPOS", "l", "c", "RANK", "-1", "COUNT", "2"], ints(&[7, 6])),
            (&["LPOS", "l", "c", "RANK", "-2", "COUNT", "0"], ints(&[6, 2])),
            (&["LPOS", "l", "c", "MAXLEN", "2"], nil()),
            (&["LPOS", "l", "c", "MAXLEN", "3"], int(2)),
            (&["LPOS", "l", "c", "MAXLEN", "0"], int(2)),
            (&["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"], ints(&[2, 6])),
            (&["LPOS", "l", "c", "RANK", "-1", "COUNT", "0", "MAXLEN", "2"], ints(&[7, 6])),
            (&["LPOS", "l", "a", "RANK", "-1", "MAXLEN", "7"], nil()),
            // Later options win.
            (&["LPOS", "l", "c", "RANK", "1", "RANK", "2"], int(6)),
            (&["lpos", "l", "c", "rank", "2", "count", "1", "maxlen", "0"], ints(&[6])),
            // Errors, checked before the key.
            (&["LPOS", "l", "c", "RANK", "0"], err(RANK_ZERO)),
            (&["LPOS", "nokey", "c", "RANK", "0"], err(RANK_ZERO)),
            (&["LPOS", "l", "c", "RANK", "x"], err(NOT_INT)),
            (&["LPOS", "l", "c", "COUNT", "-1"], err("ERR COUNT can't be negative")),
            (&["LPOS", "l", "c", "COUNT", "x"], err("ERR COUNT can't be negative")),
            (&["LPOS", "l", "c", "MAXLEN", "-1"], err("ERR MAXLEN can't be negative")),
            (&["LPOS", "l", "c", "MAXLEN", "x"], err("ERR MAXLEN can't be negative")),
            (&["LPOS", "l", "c", "RANK"], err(SYNTAX)),
            (&["LPOS", "l", "c", "FOO", "1"], err(SYNTAX)),
            (&["LPOS", "nokey", "c", "COUNT"], err(SYNTAX)),
            (&["LPOS", "l"], arity("lpos")),
        ]);
    }

    fn lmove_rpoplpush(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "{l}src", "a", "b", "c"], int(3)),
            (&["LMOVE", "{l}src", "{l}dst", "LEFT", "RIGHT"], bulk("a")),
            (&["LMOVE", "{l}src", "{l}dst", "right", "left"], bulk("c")),
            (&["LRANGE", "{l}dst", "0", "-1"], bulks(&["c", "a"])),
            (&["LMOVE", "{l}src", "{l}dst", "LEFT", "LEFT"], bulk("b")),
            (&["EXISTS", "{l}src"], int(0)),
            (&["LRANGE", "{l}dst", "0", "-1"], bulks(&["b", "c", "a"])),
            (&["LMOVE", "{l}src", "{l}dst", "LEFT", "LEFT"], nil()),
            (&["RPOPLPUSH", "{l}dst", "{l}src"], bulk("a")),
            (&["RPOPLPUSH", "{l}nokey", "{l}src"], nil()),
            (&["EXISTS", "{l}nokey"], int(0)),
            (&["LRANGE", "{l}src", "0", "-1"], bulks(&["a"])),
            // The same key rotates the list.
            (&["RPOPLPUSH", "{l}dst", "{l}dst"], bulk("c")),
            (&["LRANGE", "{l}dst", "0", "-1"], bulks(&["c", "b"])),
            (&["LMOVE", "{l}dst", "{l}dst", "LEFT", "RIGHT"], bulk("c")),
            (&["LRANGE", "{l}dst", "0", "-1"], bulks(&["b", "c"])),
            (&["LMOVE", "{l}src", "{l}src", "LEFT", "LEFT"], bulk("a")),
            (&["LRANGE", "{l}src", "0", "-1"], bulks(&["a"])),
            // Errors.
            (&["LMOVE", "{l}src", "{l}dst", "UP", "LEFT"], err(SYNTAX)),
            (&["LMOVE", "{l}nokey", "{l}dst", "LEFT", "DOWN"], err(SYNTAX)),
            (&["LMOVE", "{l}src", "{l}dst", "LEFT"], arity("lmove")),
            (&["RPOPLPUSH", "{l}src"], arity("rpoplpush")),
        ]);
    }

    fn lmpop_forms(srv) {
        let mut c = srv.client();
        let popped = |key: &str, items: &[&str]| arr(vec![bulk(key), bulks(items)]);
        expect_all(&mut c, &[
            (&["RPUSH", "{m}b", "1", "2", "3"], int(3)),
            (&["RPUSH", "{m}c", "x"], int(1)),
            (&["LMPOP", "1", "{m}a", "LEFT"], nil()),
            (&["LMPOP", "2", "{m}a", "{m}b", "LEFT"], popped("{m}b", &["1"])),
            (&["LMPOP", "3", "{m}a", "{m}b", "{m}c", "RIGHT", "COUNT", "10"], popped("{m}b", &["3", "2"])),
            (&["EXISTS", "{m}b"], int(0)),
            (&["LMPOP", "3", "{m}a", "{m}b", "{m}c", "left", "count", "1"], popped("{m}c", &["x"])),
            (&["LMPOP", "3", "{m}a", "{m}b", "{m}c", "LEFT"], nil()),
            // Errors.
            (&["LMPOP", "0", "{m}a", "LEFT"], err("ERR numkeys should be greater than 0")),
            (&["LMPOP", "-1", "{m}a", "LEFT"], err("ERR numkeys should be greater than 0")),
            (&["LMPOP", "x", "{m}a", "LEFT"], err("ERR numkeys should be greater than 0")),
            // Too few keys for numkeys leaves no room for the direction.
            // (Keys are counted as Redis Cluster counts them, so the tag
            // keeps the "keys" on one shard.)
            (&["LMPOP", "2", "{m}a", "{m}b"], err(SYNTAX)),
            (&["LMPOP", "9223372036854775807", "{m}a", "LEFT"], err(SYNTAX)),
            (&["LMPOP", "1", "{m}a", "MIDDLE"], err(SYNTAX)),
            (&["LMPOP", "1", "{m}a", "LEFT", "COUNT", "0"], err("ERR count should be greater than 0")),
            (&["LMPOP", "1", "{m}a", "LEFT", "COUNT", "x"], err("ERR count should be greater than 0")),
            (&["LMPOP", "1", "{m}a", "LEFT", "COUNT", "1", "COUNT", "1"], err(SYNTAX)),
            (&["LMPOP", "1", "{m}a", "LEFT", "COUNT"], err(SYNTAX)),
            (&["LMPOP", "1", "{m}a", "LEFT", "FOO"], err(SYNTAX)),
            (&["LMPOP", "1", "{m}a"], arity("lmpop")),
        ]);
    }

    fn wrongtype(srv) {
        let mut c = srv.client();
        let wt = || err(WRONGTYPE);
        expect_all(&mut c, &[
            (&["SET", "{w}s", "v"], ok()),
            (&["HSET", "{w}h", "f", "v"], int(1)),
            (&["RPUSH", "{w}l", "a"], int(1)),
            (&["LPUSH", "{w}s", "a"], wt()),
            (&["RPUSH", "{w}h", "a"], wt()),
            (&["LPUSHX", "{w}s", "a"], wt()),
            (&["RPUSHX", "{w}h", "a"], wt()),
            (&["LPOP", "{w}s"], wt()),
            (&["RPOP", "{w}h", "1"], wt()),
            (&["LPOP", "{w}s", "0"], wt()),
            (&["LLEN", "{w}h"], wt()),
            (&["LRANGE", "{w}s", "0", "-1"], wt()),
            (&["LINDEX", "{w}h", "0"], wt()),
            (&["LINDEX", "{w}h", "x"], wt()),
            (&["LSET", "{w}s", "0", "x"], wt()),
            (&["LINSERT", "{w}h", "BEFORE", "a", "b"], wt()),
            (&["LREM", "{w}s", "0", "a"], wt()),
            (&["LTRIM", "{w}h", "0", "1"], wt()),
            (&["LPOS", "{w}s", "a"], wt()),
            (&["LMOVE", "{w}s", "{w}l", "LEFT", "LEFT"], wt()),
            (&["LMOVE", "{w}l", "{w}h", "LEFT", "LEFT"], wt()),
            (&["RPOPLPUSH", "{w}l", "{w}s"], wt()),
            (&["RPOPLPUSH", "{w}nokey", "{w}s"], nil()),
            (&["LMPOP", "2", "{w}nokey", "{w}s", "LEFT"], wt()),
            (&["LMPOP", "2", "{w}l", "{w}s", "LEFT"], arr(vec![bulk("{w}l"), bulks(&["a"])])),
            // Nothing above changed a value.
            (&["GET", "{w}s"], bulk("v")),
            (&["HGET", "{w}h", "f"], bulk("v")),
            (&["EXISTS", "{w}l"], int(0)),
            // And string and hash commands refuse a list.
            (&["RPUSH", "{w}l", "a"], int(1)),
            (&["GET", "{w}l"], wt()),
            (&["HGET", "{w}l", "f"], wt()),
            (&["APPEND", "{w}l", "x"], wt()),
            (&["SET", "{w}l", "v"], ok()),
            (&["TYPE", "{w}l"], status("string")),
        ]);
    }

    fn big_lists_and_expiry(srv) {
        let mut c = srv.client();
        let mut push = vec!["RPUSH".to_string(), "big".to_string()];
        push.extend((0..1000).map(|i| i.to_string()));
        assert_eq!(cmd_vec(&mut c, &push), int(1000));
        expect_all(&mut c, &[
            (&["LINDEX", "big", "500"], bulk("500")),
            (&["LPOS", "big", "999"], int(999)),
            (&["LRANGE", "big", "998", "-1"], bulks(&["998", "999"])),
            (&["LTRIM", "big", "100", "199"], ok()),
            (&["LLEN", "big"], int(100)),
            (&["LINDEX", "big", "0"], bulk("100")),
            (&["PEXPIRE", "big", "100000"], int(1)),
            (&["LPUSH", "big", "x"], int(101)),
            // A push keeps the TTL.
            (&["PERSIST", "big"], int(1)),
            (&["DEL", "big"], int(1)),
            (&["LLEN", "big"], int(0)),
        ]);
    }

    fn command_info_for_lists(srv) {
        let mut c = srv.client();
        let info = |name: &str, c: &mut redis::Connection| {
            let r = cmd(c, &["COMMAND", "INFO", name]).items()[0].items();
            (r[1].int(), r[3].int(), r[4].int(), r[5].int())
        };
        assert_eq!(info("lpush", &mut c), (-3, 1, 1, 1));
        assert_eq!(info("lpop", &mut c), (-2, 1, 1, 1));
        assert_eq!(info("lrange", &mut c), (4, 1, 1, 1));
        assert_eq!(info("lpos", &mut c), (-3, 1, 1, 1));
        assert_eq!(info("lmove", &mut c), (5, 1, 2, 1));
        assert_eq!(info("rpoplpush", &mut c), (3, 1, 2, 1));
        assert_eq!(info("lmpop", &mut c), (-4, 0, 0, 0));
        let flags = cmd(&mut c, &["COMMAND", "INFO", "lmpop"]).items()[0].items()[2].items();
        let mut names: Vec<String> = flags.iter().map(Reply::text).collect();
        names.sort();
        assert_eq!(names, ["movablekeys", "write"]);
        expect_all(&mut c, &[
            (&["COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT"], bulks(&["a", "b"])),
            (&["COMMAND", "GETKEYS", "LMOVE", "a", "b", "LEFT", "RIGHT"], bulks(&["a", "b"])),
            (&["COMMAND", "GETKEYS", "LMPOP", "5", "a", "b", "LEFT"], err("ERR Invalid arguments specified for command")),
        ]);
    }
}

/// List commands over keys of different shards run as in one Redis.
#[test]
fn multi_key_list_commands_across_shards() {
    let srv = Server::start(4);
    let mut c = srv.client();
    assert_eq!(cmd(&mut c, &["RPUSH", "k0", "a", "b"]), int(2));
    for n in 1..20 {
        let other = format!("k{n}");
        expect_all(
            &mut c,
            &[
                (&["LMOVE", "k0", &other, "LEFT", "LEFT"], bulk("a")),
                (&["RPOPLPUSH", &other, "k0"], bulk("a")),
                (&["LMPOP", "2", &other, "k0", "LEFT"], arr(vec![bulk("k0"), bulks(&["a"])])),
                (&["LPUSH", "k0", "a"], int(2)),
                (&["EXISTS", &other], int(0)),
            ],
        );
    }
    expect_all(&mut c, &[(&["LRANGE", "k0", "0", "-1"], bulks(&["a", "b"]))]);
}
