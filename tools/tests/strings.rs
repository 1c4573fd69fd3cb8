//! String commands: GET SET (and options) SETNX SETEX PSETEX MGET MSET GETSET
//! GETDEL GETEX APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE
//! SETRANGE.

#[macro_use]
mod common;

use common::*;

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn ttl_about(c: &mut redis::Connection, key: &str, secs: i64) {
    let ttl = cmd(c, &["TTL", key]).int();
    assert!((secs - 1..=secs).contains(&ttl), "TTL {key} = {ttl}, want about {secs}");
}

fn pttl_about(c: &mut redis::Connection, key: &str, ms: i64) {
    let pttl = cmd(c, &["PTTL", key]).int();
    assert!((ms - 2000..=ms).contains(&pttl), "PTTL {key} = {pttl}, want about {ms}");
}

shard_tests! {
    fn set_get_basic(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["GET", "k"], nil()),
            (&["SET", "k", "v"], ok()),
            (&["GET", "k"], bulk("v")),
            (&["SET", "k", "v2"], ok()),
            (&["GET", "k"], bulk("v2")),
            (&["SET", "empty", ""], ok()),
            (&["GET", "empty"], bulk("")),
            (&["EXISTS", "empty"], int(1)),
            (&["STRLEN", "empty"], int(0)),
            (&["set", "lower", "case"], ok()),
            (&["gEt", "lower"], bulk("case")),
            (&["GET"], arity("get")),
            (&["GET", "a", "b"], arity("get")),
            (&["SET", "k"], arity("set")),
        ]);
        // Binary-safe keys and values.
        let key: &[u8] = b"bin\x00key\r\n";
        let val: &[u8] = b"\x00\x01\xff\r\n$3\r\nabc\r\n";
        assert_eq!(cmd_bin(&mut c, &[b"SET", key, val]), ok());
        assert_eq!(cmd_bin(&mut c, &[b"GET", key]), bulk(val));
        assert_eq!(cmd_bin(&mut c, &[b"GET", b"bin"]), nil());
        // A large value (1 MiB) survives a round trip.
        let big: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(cmd_bin(&mut c, &[b"SET", b"big", &big]), ok());
        assert_eq!(cmd_bin(&mut c, &[b"GET", b"big"]), Reply::Bulk(big));
        assert_eq!(cmd(&mut c, &["STRLEN", "big"]), int(1_048_576));
    }

    fn set_nx_xx_get(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "k", "1", "NX"], ok()),
            (&["SET", "k", "2", "NX"], nil()),
            (&["GET", "k"], bulk("1")),
            (&["SET", "k", "3", "XX"], ok()),
            (&["GET", "k"], bulk("3")),
            (&["SET", "missing", "x", "XX"], nil()),
            (&["EXISTS", "missing"], int(0)),
            (&["SET", "k", "4", "GET"], bulk("3")),
            (&["GET", "k"], bulk("4")),
            (&["SET", "fresh", "a", "GET"], nil()),
            (&["GET", "fresh"], bulk("a")),
            // NX + GET: returns the old value and does not set.
            (&["SET", "k", "5", "NX", "GET"], bulk("4")),
            (&["GET", "k"], bulk("4")),
            (&["SET", "ng", "x", "NX", "GET"], nil()),
            (&["GET", "ng"], bulk("x")),
            // XX + GET.
            (&["SET", "k", "6", "XX", "GET"], bulk("4")),
            (&["GET", "k"], bulk("6")),
            (&["SET", "nope", "x", "XX", "GET"], nil()),
            (&["EXISTS", "nope"], int(0)),
            // Options are case-insensitive.
            (&["SET", "k", "7", "xx", "get"], bulk("6")),
            // GET on a hash fails and leaves the hash alone.
            (&["HSET", "h", "f", "v"], int(1)),
            (&["SET", "h", "v", "GET"], err(WRONGTYPE)),
            (&["TYPE", "h"], status("hash")),
            // A plain SET overwrites any type.
            (&["SET", "h", "str"], ok()),
            (&["TYPE", "h"], status("string")),
        ]);
    }

    fn set_expire_options(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "ex", "v", "EX", "100"], ok()),
            (&["SET", "px", "v", "PX", "100000"], ok()),
            (&["SET", "plain", "v"], ok()),
            (&["TTL", "plain"], int(-1)),
        ]);
        ttl_about(&mut c, "ex", 100);
        pttl_about(&mut c, "px", 100_000);
        let at = now_secs() + 1000;
        assert_eq!(cmd(&mut c, &["SET", "exat", "v", "EXAT", &at.to_string()]), ok());
        ttl_about(&mut c, "exat", 1000);
        assert_eq!(cmd(&mut c, &["EXPIRETIME", "exat"]), int(at as i64));
        let pat = (now_secs() + 2000) * 1000 + 123;
        assert_eq!(cmd(&mut c, &["SET", "pxat", "v", "PXAT", &pat.to_string()]), ok());
        assert_eq!(cmd(&mut c, &["PEXPIRETIME", "pxat"]), int(pat as i64));
        expect_all(&mut c, &[
            // KEEPTTL keeps the TTL, a plain SET clears it.
            (&["SET", "ex", "v2", "KEEPTTL"], ok()),
            (&["GET", "ex"], bulk("v2")),
        ]);
        ttl_about(&mut c, "ex", 100);
        expect_all(&mut c, &[
            (&["SET", "ex", "v3"], ok()),
            (&["TTL", "ex"], int(-1)),
            // An absolute time in the past: OK, and the key is gone.
            (&["SET", "past", "v", "EXAT", "1"], ok()),
            (&["EXISTS", "past"], int(0)),
            (&["SET", "past", "v", "PXAT", "1"], ok()),
            (&["GET", "past"], nil()),
            // SET over a key with a TTL (no KEEPTTL) drops it.
            (&["SET", "px", "new", "GET"], bulk("v")),
            (&["TTL", "px"], int(-1)),
            // SET ... EX ... GET returns the old value and sets the TTL.
            (&["SET", "plain", "w", "EX", "50", "GET"], bulk("v")),
        ]);
        ttl_about(&mut c, "plain", 50);
        // Lowercase options.
        assert_eq!(cmd(&mut c, &["set", "lc", "v", "px", "5000", "nx"]), ok());
        pttl_about(&mut c, "lc", 5000);
    }

    fn set_syntax_errors(srv) {
        let mut c = srv.client();
        let invalid = "ERR invalid expire time in 'set' command";
        assert_eq!(cmd(&mut c, &["SET", "k", "old"]), ok());
        expect_all(&mut c, &[
            (&["SET", "k", "v", "EX", "0"], err(invalid)),
            (&["SET", "k", "v", "EX", "-1"], err(invalid)),
            (&["SET", "k", "v", "PX", "0"], err(invalid)),
            (&["SET", "k", "v", "PX", "-100"], err(invalid)),
            (&["SET", "k", "v", "EXAT", "0"], err(invalid)),
            (&["SET", "k", "v", "PXAT", "0"], err(invalid)),
            (&["SET", "k", "v", "EX", "9999999999999999"], err(invalid)),
            (&["SET", "k", "v", "PX", "9223372036854775807"], err(invalid)),
            (&["SET", "k", "v", "EX", "abc"], err(NOT_INT)),
            (&["SET", "k", "v", "PX", "1.5"], err(NOT_INT)),
            (&["SET", "k", "v", "EX", "99999999999999999999"], err(NOT_INT)),
            (&["SET", "k", "v", "EX"], err(SYNTAX)),
            (&["SET", "k", "v", "EX", "10", "PX", "10"], err(SYNTAX)),
            (&["SET", "k", "v", "EX", "10", "KEEPTTL"], err(SYNTAX)),
            (&["SET", "k", "v", "KEEPTTL", "PX", "10"], err(SYNTAX)),
            (&["SET", "k", "v", "EXAT", "10", "PXAT", "10"], err(SYNTAX)),
            (&["SET", "k", "v", "NX", "XX"], err(SYNTAX)),
            (&["SET", "k", "v", "XX", "NX"], err(SYNTAX)),
            (&["SET", "k", "v", "FOO"], err(SYNTAX)),
            (&["SET", "k", "v", "10"], err(SYNTAX)),
            // The options are checked before their numbers are read.
            (&["SET", "k", "v", "EX", "abc", "FOO"], err(SYNTAX)),
            (&["SET", "k", "v", "PX", "abc", "EX", "10"], err(SYNTAX)),
            (&["SET", "k", "v", "EX", "abc", "NX", "XX"], err(SYNTAX)),
            (&["SET", "k", "v", "EX", "0", "FOO"], err(SYNTAX)),
            (&["SETEX", "k", "abc", "v"], err(NOT_INT)),
            // None of the failed commands touched the key.
            (&["GET", "k"], bulk("old")),
            (&["TTL", "k"], int(-1)),
            // Repeating the same option is accepted; the last value wins.
            (&["SET", "k", "v", "XX", "XX", "GET", "GET"], bulk("old")),
            (&["SET", "k", "w", "EX", "10", "EX", "100"], ok()),
        ]);
        ttl_about(&mut c, "k", 100);
        expect_all(&mut c, &[
            (&["GETEX", "k", "EX", "10", "EX", "200"], bulk("w")),
        ]);
        ttl_about(&mut c, "k", 200);
    }

    fn setnx_setex_psetex(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SETNX", "k", "a"], int(1)),
            (&["SETNX", "k", "b"], int(0)),
            (&["GET", "k"], bulk("a")),
            (&["SETNX", "k"], arity("setnx")),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["SETNX", "h", "v"], int(0)),
            (&["SETEX", "se", "100", "v"], ok()),
            (&["GET", "se"], bulk("v")),
        ]);
        ttl_about(&mut c, "se", 100);
        assert_eq!(cmd(&mut c, &["PSETEX", "pse", "100000", "v"]), ok());
        pttl_about(&mut c, "pse", 100_000);
        expect_all(&mut c, &[
            (&["SETEX", "se", "0", "v"], err("ERR invalid expire time in 'setex' command")),
            (&["SETEX", "se", "-5", "v"], err("ERR invalid expire time in 'setex' command")),
            (&["PSETEX", "se", "0", "v"], err("ERR invalid expire time in 'psetex' command")),
            (&["SETEX", "se", "abc", "v"], err(NOT_INT)),
            (&["SETEX", "se", "10"], arity("setex")),
            (&["PSETEX", "se", "10"], arity("psetex")),
            // SETEX overwrites a hash.
            (&["SETEX", "h", "100", "s"], ok()),
            (&["TYPE", "h"], status("string")),
        ]);
    }

    fn mget_mset(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["MSET", "a", "1", "b", "2", "c", "3"], ok()),
            (&["MGET", "a", "b", "c", "d"], arr(vec![bulk("1"), bulk("2"), bulk("3"), nil()])),
            (&["MGET", "c", "c", "a"], bulks(&["3", "3", "1"])),
            // Later pairs win.
            (&["MSET", "a", "x", "a", "y"], ok()),
            (&["GET", "a"], bulk("y")),
            (&["MSET", "a"], arity("mset")),
            (&["MSET", "a", "1", "b"], arity("mset")),
            (&["MGET"], arity("mget")),
            // MGET answers nil for keys of another type, never WRONGTYPE.
            (&["HSET", "h", "f", "v"], int(1)),
            (&["MGET", "a", "h", "b"], arr(vec![bulk("y"), nil(), bulk("2")])),
            // MSET overwrites other types and clears TTLs.
            (&["SET", "t", "v", "EX", "100"], ok()),
            (&["MSET", "h", "s", "t", "w"], ok()),
            (&["TYPE", "h"], status("string")),
            (&["TTL", "t"], int(-1)),
        ]);
    }

    fn getset_getdel(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["GETSET", "k", "1"], nil()),
            (&["GETSET", "k", "2"], bulk("1")),
            (&["GET", "k"], bulk("2")),
            (&["SET", "t", "v", "EX", "100"], ok()),
            (&["GETSET", "t", "w"], bulk("v")),
            (&["TTL", "t"], int(-1)),
            (&["GETDEL", "k"], bulk("2")),
            (&["GETDEL", "k"], nil()),
            (&["EXISTS", "k"], int(0)),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["GETSET", "h", "x"], err(WRONGTYPE)),
            (&["GETDEL", "h"], err(WRONGTYPE)),
            (&["EXISTS", "h"], int(1)),
            (&["GETSET", "k"], arity("getset")),
            (&["GETDEL"], arity("getdel")),
        ]);
    }

    fn getex(srv) {
        let mut c = srv.client();
        let invalid = "ERR invalid expire time in 'getex' command";
        expect_all(&mut c, &[
            (&["GETEX", "nokey"], nil()),
            (&["GETEX", "nokey", "EX", "10"], nil()),
            // A missing key is nil before the expire time is checked.
            (&["GETEX", "nokey", "EX", "0"], nil()),
            (&["GETEX", "nokey", "PX", "-5"], nil()),
            (&["GETEX", "nokey", "EX", "abc"], nil()),
            (&["GETEX", "nokey", "EX", "abc", "FOO"], err(SYNTAX)),
            (&["EXISTS", "nokey"], int(0)),
            (&["SET", "k", "v"], ok()),
            (&["GETEX", "k"], bulk("v")),
            (&["TTL", "k"], int(-1)),
            (&["GETEX", "k", "EX", "100"], bulk("v")),
        ]);
        ttl_about(&mut c, "k", 100);
        assert_eq!(cmd(&mut c, &["GETEX", "k", "PX", "50000"]), bulk("v"));
        pttl_about(&mut c, "k", 50_000);
        let at = now_secs() + 500;
        assert_eq!(cmd(&mut c, &["GETEX", "k", "EXAT", &at.to_string()]), bulk("v"));
        assert_eq!(cmd(&mut c, &["EXPIRETIME", "k"]), int(at as i64));
        let pat = at * 1000 + 777;
        assert_eq!(cmd(&mut c, &["GETEX", "k", "PXAT", &pat.to_string()]), bulk("v"));
        assert_eq!(cmd(&mut c, &["PEXPIRETIME", "k"]), int(pat as i64));
        expect_all(&mut c, &[
            (&["GETEX", "k", "PERSIST"], bulk("v")),
            (&["TTL", "k"], int(-1)),
            (&["GETEX", "k", "EX", "0"], err(invalid)),
            (&["GETEX", "k", "EX", "-1"], err(invalid)),
            (&["GETEX", "k", "PX", "0"], err(invalid)),
            (&["GETEX", "k", "EX", "9999999999999999"], err(invalid)),
            (&["GETEX", "k", "EX", "abc"], err(NOT_INT)),
            (&["GETEX", "k", "EX", "10", "PX", "10"], err(SYNTAX)),
            (&["GETEX", "k", "PERSIST", "EX", "10"], err(SYNTAX)),
            (&["GETEX", "k", "EX"], err(SYNTAX)),
            (&["GETEX", "k", "FOO"], err(SYNTAX)),
            (&["GETEX", "k", "EX", "abc", "FOO"], err(SYNTAX)),
            (&["GETEX", "k", "PERSIST", "EX", "abc"], err(SYNTAX)),
            (&["TTL", "k"], int(-1)),
            // An absolute time in the past deletes the key but returns it.
            (&["GETEX", "k", "EXAT", "1"], bulk("v")),
            (&["EXISTS", "k"], int(0)),
            (&["SET", "k", "v"], ok()),
            (&["GETEX", "k", "PXAT", "1"], bulk("v")),
            (&["GET", "k"], nil()),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["GETEX", "h"], err(WRONGTYPE)),
            (&["GETEX", "h", "PERSIST"], err(WRONGTYPE)),
            (&["GETEX", "h", "EX", "0"], err(WRONGTYPE)),
            (&["GETEX", "h", "EX", "abc"], err(WRONGTYPE)),
            (&["GETEX", "h", "FOO"], err(SYNTAX)),
            (&["GETEX"], arity("getex")),
        ]);
    }

    fn append_strlen(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["APPEND", "k", "hello"], int(5)),
            (&["APPEND", "k", " world"], int(11)),
            (&["GET", "k"], bulk("hello world")),
            (&["STRLEN", "k"], int(11)),
            (&["STRLEN", "nokey"], int(0)),
            (&["APPEND", "k", ""], int(11)),
            (&["APPEND", "e", ""], int(0)),
            (&["EXISTS", "e"], int(1)),
            // APPEND keeps the TTL.
            (&["SET", "t", "a", "EX", "100"], ok()),
            (&["APPEND", "t", "b"], int(2)),
        ]);
        ttl_about(&mut c, "t", 100);
        // APPEND to an integer-looking value works on its string form.
        expect_all(&mut c, &[
            (&["SET", "n", "12"], ok()),
            (&["INCR", "n"], int(13)),
            (&["APPEND", "n", "4"], int(3)),
            (&["GET", "n"], bulk("134")),
            (&["INCR", "n"], int(135)),
            (&["STRLEN", "n"], int(3)),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["APPEND", "h", "x"], err(WRONGTYPE)),
            (&["STRLEN", "h"], err(WRONGTYPE)),
            (&["APPEND", "k"], arity("append")),
            (&["STRLEN"], arity("strlen")),
        ]);
    }

    fn incr_decr(srv) {
        let mut c = srv.client();
        let overflow = "ERR increment or decrement would overflow";
        expect_all(&mut c, &[
            (&["INCR", "n"], int(1)),
            (&["INCR", "n"], int(2)),
            (&["DECR", "n"], int(1)),
            (&["DECR", "fresh"], int(-1)),
            (&["INCRBY", "n", "10"], int(11)),
            (&["INCRBY", "n", "-20"], int(-9)),
            (&["DECRBY", "n", "-9"], int(0)),
            (&["DECRBY", "n", "5"], int(-5)),
            (&["GET", "n"], bulk("-5")),
            (&["SET", "s", "41"], ok()),
            (&["INCR", "s"], int(42)),
            (&["GET", "s"], bulk("42")),
            (&["INCRBY", "n", "abc"], err(NOT_INT)),
            (&["INCRBY", "n", "1.5"], err(NOT_INT)),
            (&["INCRBY", "n", "9223372036854775808"], err(NOT_INT)),
            (&["DECRBY", "n", "9223372036854775808"], err(NOT_INT)),
            (&["SET", "s", "abc"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", "1.5"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", " 1"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", "1 "], ok()),
            (&["DECR", "s"], err(NOT_INT)),
            (&["SET", "s", "010"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", "+5"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", ""], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", "-0"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["SET", "s", "99999999999999999999"], ok()),
            (&["INCR", "s"], err(NOT_INT)),
            (&["GET", "s"], bulk("99999999999999999999")),
            (&["SET", "max", "9223372036854775807"], ok()),
            (&["INCR", "max"], err(overflow)),
            (&["INCRBY", "max", "1"], err(overflow)),
            (&["DECRBY", "max", "-1"], err(overflow)),
            (&["INCRBY", "max", "0"], int(i64::MAX)),
            (&["SET", "min", "-9223372036854775808"], ok()),
            (&["DECR", "min"], err(overflow)),
            (&["DECRBY", "min", "1"], err(overflow)),
            (&["INCRBY", "min", "-1"], err(overflow)),
            (&["INCR", "min"], int(i64::MIN + 1)),
            (&["DECRBY", "x", "-9223372036854775808"], err("ERR decrement would overflow")),
            (&["INCRBY", "x", "-9223372036854775808"], int(i64::MIN)),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["INCR", "h"], err(WRONGTYPE)),
            (&["DECRBY", "h", "1"], err(WRONGTYPE)),
            (&["INCR"], arity("incr")),
            (&["INCRBY", "n"], arity("incrby")),
        ]);
        // INCR keeps the TTL.
        assert_eq!(cmd(&mut c, &["SET", "t", "1", "EX", "100"]), ok());
        assert_eq!(cmd(&mut c, &["INCR", "t"]), int(2));
        ttl_about(&mut c, "t", 100);
    }

    fn incrbyfloat(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "f", "10.50"], ok()),
            (&["INCRBYFLOAT", "f", "0.1"], bulk("10.6")),
            (&["INCRBYFLOAT", "f", "-5"], bulk("5.6")),
            (&["GET", "f"], bulk("5.6")),
            (&["SET", "f", "5.0e3"], ok()),
            (&["INCRBYFLOAT", "f", "2.0e2"], bulk("5200")),
            (&["GET", "f"], bulk("5200")),
            (&["INCRBYFLOAT", "new", "3"], bulk("3")),
            (&["INCRBYFLOAT", "new2", "3.0"], bulk("3")),
            (&["INCRBYFLOAT", "new3", "1.5e2"], bulk("150")),
            (&["INCRBYFLOAT", "new4", "-2.25"], bulk("-2.25")),
            (&["SET", "i", "7"], ok()),
            (&["INCRBYFLOAT", "i", "0.5"], bulk("7.5")),
            // The result is stored as a string: INCR then fails.
            (&["INCR", "i"], err(NOT_INT)),
            (&["INCRBYFLOAT", "i", "0.5"], bulk("8")),
            (&["INCR", "i"], int(9)),
            (&["INCRBYFLOAT", "i", "abc"], err("ERR value is not a valid float")),
            (&["INCRBYFLOAT", "i", "nan"], err("ERR value is not a valid float")),
            (&["INCRBYFLOAT", "i", ""], err("ERR value is not a valid float")),
            (&["INCRBYFLOAT", "i", "inf"], err("ERR increment would produce NaN or Infinity")),
            (&["SET", "s", "abc"], ok()),
            (&["INCRBYFLOAT", "s", "1"], err("ERR value is not a valid float")),
            (&["GET", "i"], bulk("9")),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["INCRBYFLOAT", "h", "1"], err(WRONGTYPE)),
            // The type is checked before the increment is read.
            (&["INCRBYFLOAT", "h", "abc"], err(WRONGTYPE)),
            (&["INCRBYFLOAT", "i"], arity("incrbyfloat")),
        ]);
    }

    fn getrange_setrange(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "k", "hello world"], ok()),
            (&["GETRANGE", "k", "0", "4"], bulk("hello")),
            (&["GETRANGE", "k", "-5", "-1"], bulk("world")),
            (&["GETRANGE", "k", "0", "-1"], bulk("hello world")),
            (&["GETRANGE", "k", "5", "1"], bulk("")),
            (&["GETRANGE", "k", "100", "200"], bulk("")),
            (&["GETRANGE", "k", "6", "100"], bulk("world")),
            (&["GETRANGE", "k", "0", "-100"], bulk("h")),
            (&["GETRANGE", "k", "-100", "2"], bulk("hel")),
            (&["GETRANGE", "nokey", "0", "-1"], bulk("")),
            (&["GETRANGE", "k", "a", "1"], err(NOT_INT)),
            (&["GETRANGE", "k", "0"], arity("getrange")),
            (&["SETRANGE", "k", "6", "W"], int(11)),
            (&["GET", "k"], bulk("hello World")),
            (&["SETRANGE", "k", "11", "!!"], int(13)),
            (&["GET", "k"], bulk("hello World!!")),
            // Zero padding past the end / on a new key.
            (&["SETRANGE", "pad", "3", "x"], int(4)),
            (&["GET", "pad"], bulk("\0\0\0x")),
            (&["SETRANGE", "k", "15", "?"], int(16)),
            (&["GET", "k"], bulk("hello World!!\0\0?")),
            // An empty value neither creates the key nor checks the offset.
            (&["SETRANGE", "empty", "0", ""], int(0)),
            (&["EXISTS", "empty"], int(0)),
            (&["SETRANGE", "empty", "10", ""], int(0)),
            (&["EXISTS", "empty"], int(0)),
            (&["SETRANGE", "k", "1000", ""], int(16)),
            (&["SETRANGE", "k", "536870912", ""], int(16)),
            (&["SETRANGE", "k", "-1", "x"], err("ERR offset is out of range")),
            (&["SETRANGE", "k", "abc", "x"], err(NOT_INT)),
            (
                &["SETRANGE", "k", "536870912", "x"],
                err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            ),
            (
                &["SETRANGE", "k", "536870911", "xx"],
                err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            ),
            (&["STRLEN", "k"], int(16)),
            (&["SETRANGE", "k", "0"], arity("setrange")),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["GETRANGE", "h", "0", "1"], err(WRONGTYPE)),
            (&["SETRANGE", "h", "0", "x"], err(WRONGTYPE)),
            // SETRANGE on an integer-encoded value.
            (&["SET", "n", "1234"], ok()),
            (&["SETRANGE", "n", "1", "9"], int(4)),
            (&["GET", "n"], bulk("1934")),
            (&["INCR", "n"], int(1935)),
            (&["GETRANGE", "n", "1", "2"], bulk("93")),
        ]);
    }
}
