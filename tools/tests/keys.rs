//! Keyspace commands: DEL UNLINK EXISTS TOUCH TYPE EXPIRE PEXPIRE EXPIREAT
//! PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST KEYS SCAN RANDOMKEY
//! DBSIZE FLUSHDB FLUSHALL SELECT MOVE SWAPDB.

#[macro_use]
mod common;

use common::*;
use std::collections::{BTreeSet, HashSet};

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn ttl_about(c: &mut redis::Connection, key: &str, secs: i64) {
    let ttl = cmd(c, &["TTL", key]).int();
    assert!((secs - 1..=secs).contains(&ttl), "TTL {key} = {ttl}, want about {secs}");
}

/// Full SCAN iteration with the given extra options; returns every key seen
/// (checking each reply's shape) and the number of calls made.
fn scan_all(c: &mut redis::Connection, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN".to_string(), cursor.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let r = cmd_vec(c, &args).items();
        assert_eq!(r.len(), 2, "SCAN reply shape");
        cursor = r[0].text();
        assert!(cursor.parse::<u64>().is_ok(), "cursor {cursor:?}");
        keys.extend(r[1].items().iter().map(Reply::text));
        calls += 1;
        assert!(calls < 10_000, "SCAN did not terminate");
        if cursor == "0" {
            return (keys, calls);
        }
    }
}

shard_tests! {
    fn del_unlink_exists_touch(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["MSET", "a", "1", "b", "2", "c", "3"], ok()),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["EXISTS", "a"], int(1)),
            (&["EXISTS", "nokey"], int(0)),
            (&["EXISTS", "a", "a", "b", "nokey", "a", "h"], int(5)),
            (&["TOUCH", "a", "b", "b", "nokey"], int(3)),
            (&["DEL", "a", "a", "nokey"], int(1)),
            (&["EXISTS", "a", "b"], int(1)),
            (&["UNLINK", "b", "b", "nokey"], int(1)),
            (&["DEL", "h", "c"], int(2)),
            (&["EXISTS", "a", "b", "c", "h"], int(0)),
            (&["DEL", "nokey"], int(0)),
            (&["UNLINK", "nokey"], int(0)),
            (&["TOUCH", "nokey"], int(0)),
            (&["DEL"], arity("del")),
            (&["UNLINK"], arity("unlink")),
            (&["EXISTS"], arity("exists")),
            (&["TOUCH"], arity("touch")),
            (&["DBSIZE"], int(0)),
        ]);
    }

    fn type_command(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["TYPE", "nokey"], status("none")),
            (&["SET", "s", "v"], ok()),
            (&["TYPE", "s"], status("string")),
            (&["SET", "n", "12"], ok()),
            (&["TYPE", "n"], status("string")),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["TYPE", "h"], status("hash")),
            // A hash whose last field is deleted disappears.
            (&["HDEL", "h", "f"], int(1)),
            (&["TYPE", "h"], status("none")),
            (&["EXISTS", "h"], int(0)),
            (&["TYPE"], arity("type")),
            (&["TYPE", "a", "b"], arity("type")),
        ]);
    }

    fn expire_ttl_persist(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["TTL", "nokey"], int(-2)),
            (&["PTTL", "nokey"], int(-2)),
            (&["EXPIRETIME", "nokey"], int(-2)),
            (&["PEXPIRETIME", "nokey"], int(-2)),
            (&["EXPIRE", "nokey", "10"], int(0)),
            (&["PEXPIRE", "nokey", "10"], int(0)),
            (&["EXPIREAT", "nokey", "99999999999"], int(0)),
            (&["PEXPIREAT", "nokey", "99999999999000"], int(0)),
            (&["PERSIST", "nokey"], int(0)),
            (&["SET", "k", "v"], ok()),
            (&["TTL", "k"], int(-1)),
            (&["PTTL", "k"], int(-1)),
            (&["EXPIRETIME", "k"], int(-1)),
            (&["PEXPIRETIME", "k"], int(-1)),
            (&["PERSIST", "k"], int(0)),
            (&["EXPIRE", "k", "100"], int(1)),
        ]);
        ttl_about(&mut c, "k", 100);
        let pttl = cmd(&mut c, &["PTTL", "k"]).int();
        assert!((98_000..=100_000).contains(&pttl), "PTTL {pttl}");
        let et = cmd(&mut c, &["EXPIRETIME", "k"]).int();
        assert!((now_secs() + 98..=now_secs() + 101).contains(&et), "EXPIRETIME {et}");
        let pet = cmd(&mut c, &["PEXPIRETIME", "k"]).int();
        assert!((et * 1000 - 1000..=et * 1000 + 1000).contains(&pet), "PEXPIRETIME {pet}");
        expect_all(&mut c, &[
            (&["PERSIST", "k"], int(1)),
            (&["TTL", "k"], int(-1)),
            (&["PERSIST", "k"], int(0)),
            (&["PEXPIRE", "k", "200000"], int(1)),
        ]);
        ttl_about(&mut c, "k", 200);
        expect_all(&mut c, &[
            (&["EXPIREAT", "k", "99999999999"], int(1)),
            (&["EXPIRETIME", "k"], int(99_999_999_999)),
            (&["PEXPIRETIME", "k"], int(99_999_999_999_000)),
            (&["PEXPIREAT", "k", "99999999999123"], int(1)),
            (&["PEXPIRETIME", "k"], int(99_999_999_999_123)),
            (&["EXPIRETIME", "k"], int(99_999_999_999)),
            // EXPIRETIME rounds to the nearest second.
            (&["PEXPIREAT", "k", "99999999999623"], int(1)),
            (&["EXPIRETIME", "k"], int(100_000_000_000)),
            // The TTL survives a value-only update by APPEND / SETRANGE / INCR.
            (&["APPEND", "k", "x"], int(2)),
            (&["PEXPIRETIME", "k"], int(99_999_999_999_623)),
            // A TTL in the past (or zero / negative) deletes the key.
            (&["EXPIRE", "k", "-1"], int(1)),
            (&["EXISTS", "k"], int(0)),
            (&["SET", "k", "v"], ok()),
            (&["PEXPIRE", "k", "0"], int(1)),
            (&["EXISTS", "k"], int(0)),
            (&["SET", "k", "v"], ok()),
            (&["EXPIREAT", "k", "1"], int(1)),
            (&["GET", "k"], nil()),
            (&["SET", "k", "v"], ok()),
            (&["PEXPIREAT", "k", "1000"], int(1)),
            (&["TTL", "k"], int(-2)),
            // Errors.
            (&["SET", "k", "v"], ok()),
            (&["EXPIRE", "k", "abc"], err(NOT_INT)),
            (&["EXPIRE", "k", "1.5"], err(NOT_INT)),
            (&["EXPIRE", "k", "9223372036854775807"], err("ERR invalid expire time in 'expire' command")),
            (&["PEXPIRE", "k", "9223372036854775807"], err("ERR invalid expire time in 'pexpire' command")),
            (&["EXPIREAT", "k", "9223372036854775807"], err("ERR invalid expire time in 'expireat' command")),
            (&["EXPIRE", "k"], arity("expire")),
            (&["PEXPIREAT", "k"], arity("pexpireat")),
            (&["TTL"], arity("ttl")),
            (&["PERSIST"], arity("persist")),
            (&["TTL", "k"], int(-1)),
            // Hashes have TTLs too.
            (&["HSET", "h", "f", "v"], int(1)),
            (&["EXPIRE", "h", "100"], int(1)),
        ]);
        ttl_about(&mut c, "h", 100);
        assert_eq!(cmd(&mut c, &["PERSIST", "h"]), int(1));
        assert_eq!(cmd(&mut c, &["TTL", "h"]), int(-1));
    }

    fn expire_nx_xx_gt_lt(srv) {
        let mut c = srv.client();
        let incompatible = "ERR NX and XX, GT or LT options at the same time are not compatible";
        expect_all(&mut c, &[
            (&["SET", "k", "v"], ok()),
            // No TTL yet: XX fails, NX succeeds.
            (&["EXPIRE", "k", "100", "XX"], int(0)),
            (&["TTL", "k"], int(-1)),
            // GT treats "no TTL" as infinite: it fails; LT succeeds.
            (&["EXPIRE", "k", "100", "GT"], int(0)),
            (&["TTL", "k"], int(-1)),
            (&["EXPIRE", "k", "100", "NX"], int(1)),
            (&["EXPIRE", "k", "200", "NX"], int(0)),
        ]);
        ttl_about(&mut c, "k", 100);
        expect_all(&mut c, &[
            (&["EXPIRE", "k", "50", "XX"], int(1)),
        ]);
        ttl_about(&mut c, "k", 50);
        expect_all(&mut c, &[
            (&["EXPIRE", "k", "40", "GT"], int(0)),
            (&["EXPIRE", "k", "300", "GT"], int(1)),
        ]);
        ttl_about(&mut c, "k", 300);
        expect_all(&mut c, &[
            (&["EXPIRE", "k", "400", "LT"], int(0)),
            (&["EXPIRE", "k", "30", "lt"], int(1)),
        ]);
        ttl_about(&mut c, "k", 30);
        expect_all(&mut c, &[
            (&["EXPIRE", "k", "60", "XX", "GT"], int(1)),
        ]);
        ttl_about(&mut c, "k", 60);
        expect_all(&mut c, &[
            (&["EXPIRE", "k", "10", "NX", "XX"], err(incompatible)),
            (&["EXPIRE", "k", "10", "NX", "GT"], err(incompatible)),
            (&["EXPIRE", "k", "10", "NX", "LT"], err(incompatible)),
            (&["PEXPIRE", "k", "10", "XX", "NX"], err(incompatible)),
            (&["EXPIREAT", "k", "10", "GT", "NX"], err(incompatible)),
            (&["EXPIRE", "k", "10", "GT", "LT"], err("ERR GT and LT options at the same time are not compatible")),
            (&["EXPIRE", "k", "10", "FOO"], err("ERR Unsupported option FOO")),
            (&["PEXPIRE", "k", "10", "bar"], err("ERR Unsupported option bar")),
            (&["EXPIRE", "nokey", "10", "NX"], int(0)),
            (&["PERSIST", "k"], int(1)),
            (&["EXPIRE", "k", "100", "LT"], int(1)),
        ]);
        ttl_about(&mut c, "k", 100);
        // PEXPIRE / EXPIREAT / PEXPIREAT accept the same options.
        let far = now_secs() + 5000;
        expect_all(&mut c, &[
            (&["PEXPIRE", "k", "50000", "GT"], int(0)),
            (&["PEXPIRE", "k", "500000", "GT"], int(1)),
            (&["EXPIREAT", "k", &far.to_string(), "LT"], int(0)),
            (&["EXPIREAT", "k", &far.to_string(), "GT"], int(1)),
            (&["EXPIRETIME", "k"], int(far)),
            (&["PEXPIREAT", "k", &(far * 1000 + 1).to_string(), "NX"], int(0)),
            (&["PEXPIREAT", "k", &(far * 1000 + 1).to_string(), "XX"], int(1)),
            (&["PEXPIRETIME", "k"], int(far * 1000 + 1)),
        ]);
    }

    fn keys_patterns(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["KEYS", "*"], arr(vec![])),
            (&["MSET", "hello", "1", "hallo", "2", "hxllo", "3", "hllo", "4",
                "heeeello", "5", "h*llo", "6", "ab", "7", "a?c", "8"], ok()),
            (&["HSET", "hh", "f", "v"], int(1)),
        ]);
        let cases: &[(&str, &[&str])] = &[
            ("*", &["a?c", "ab", "h*llo", "hallo", "heeeello", "hello", "hh", "hllo", "hxllo"]),
            ("h?llo", &["h*llo", "hallo", "hello", "hxllo"]),
            ("h*llo", &["h*llo", "hallo", "heeeello", "hello", "hllo", "hxllo"]),
            ("h[ae]llo", &["hallo", "hello"]),
            ("h[^e]llo", &["h*llo", "hallo", "hxllo"]),
            ("h[a-b]llo", &["hallo"]),
            ("h[b-a]llo", &["hallo"]),
            ("h\\*llo", &["h*llo"]),
            ("a\\?c", &["a?c"]),
            ("a?c", &["a?c"]),
            ("h[!e]llo", &["hello"]),
            ("hh", &["hh"]),
            ("h", &[]),
            ("*o", &["h*llo", "hallo", "heeeello", "hello", "hllo", "hxllo"]),
            ("??", &["ab", "hh"]),
            ("nomatch*", &[]),
        ];
        for (pattern, want) in cases {
            let got = sorted_texts(&cmd(&mut c, &["KEYS", pattern]));
            assert_eq!(got, *want, "KEYS {pattern}");
        }
        expect_all(&mut c, &[
            (&["KEYS"], arity("keys")),
            (&["KEYS", "a", "b"], arity("keys")),
        ]);
    }

    fn scan(srv) {
        let mut c = srv.client();
        let mut p = redis::pipe();
        let mut strings = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for i in 0..300 {
            if i % 3 == 0 {
                let k = format!("hash:{i}");
                p.cmd("HSET").arg(&k).arg("f").arg("v");
                hashes.insert(k);
            } else {
                let k = format!("str:{i}");
                p.cmd("SET").arg(&k).arg(i);
                strings.insert(k);
            }
        }
        for r in pipeline(&mut c, &p) {
            assert!(r == ok() || r == int(1), "{r:?}");
        }
        let all: BTreeSet<String> = strings.union(&hashes).cloned().collect();

        for extra in [&[][..], &["COUNT", "7"][..], &["COUNT", "1000"][..]] {
            let (keys, _) = scan_all(&mut c, extra);
            let seen: BTreeSet<String> = keys.iter().cloned().collect();
            assert_eq!(seen, all, "SCAN {extra:?} must return every key");
            assert_eq!(keys.len(), all.len(), "SCAN {extra:?} returns each key once on a stable keyspace");
        }
        // MATCH filters (possibly leaving some batches empty).
        let (keys, _) = scan_all(&mut c, &["MATCH", "hash:*", "COUNT", "20"]);
        let seen: BTreeSet<String> = keys.into_iter().collect();
        assert_eq!(seen, hashes);
        let (keys, _) = scan_all(&mut c, &["MATCH", "str:1?"]);
        let seen: BTreeSet<String> = keys.into_iter().collect();
        let want: BTreeSet<String> =
            (10..20).filter(|i| i % 3 != 0).map(|i| format!("str:{i}")).collect();
        assert_eq!(seen, want);
        // TYPE filters.
        let (keys, _) = scan_all(&mut c, &["TYPE", "hash"]);
        let seen: BTreeSet<String> = keys.into_iter().collect();
        assert_eq!(seen, hashes);
        let (keys, _) = scan_all(&mut c, &["TYPE", "string", "COUNT", "50", "MATCH", "str:2*"]);
        let seen: BTreeSet<String> = keys.into_iter().collect();
        let want: BTreeSet<String> =
            strings.iter().filter(|k| k.starts_with("str:2")).cloned().collect();
        assert_eq!(seen, want);
        // Errors.
        expect_all(&mut c, &[
            (&["SCAN", "abc"], err("ERR invalid cursor")),
            (&["SCAN", "18446744073709551616"], err("ERR invalid cursor")),
            (&["SCAN", "0", "COUNT", "0"], err(SYNTAX)),
            (&["SCAN", "0", "COUNT", "abc"], err(NOT_INT)),
            (&["SCAN", "0", "MATCH"], err(SYNTAX)),
            (&["SCAN", "0", "TYPE"], err(SYNTAX)),
            (&["SCAN", "0", "FOO", "bar"], err(SYNTAX)),
            (&["SCAN"], arity("scan")),
        ]);
        // An empty database: a single call answering cursor 0 and no keys.
        assert_eq!(cmd(&mut c, &["FLUSHDB"]), ok());
        assert_eq!(cmd(&mut c, &["SCAN", "0"]), arr(vec![bulk("0"), arr(vec![])]));
        // Cursors are read as strtoul reads them: a sign, leading zeros and
        // the empty text pass; a lone sign and a space do not.
        for cursor in ["00", "+0", "-0", "-1", ""] {
            assert_eq!(cmd(&mut c, &["SCAN", cursor]), arr(vec![bulk("0"), arr(vec![])]), "SCAN {cursor:?}");
        }
        for cursor in ["-", "+", " 0", "0 "] {
            assert_eq!(cmd(&mut c, &["SCAN", cursor]), err("ERR invalid cursor"), "SCAN {cursor:?}");
        }
    }

    fn randomkey_dbsize(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RANDOMKEY"], nil()),
            (&["DBSIZE"], int(0)),
            (&["SET", "only", "v"], ok()),
            (&["RANDOMKEY"], bulk("only")),
            (&["DBSIZE"], int(1)),
            (&["RANDOMKEY", "x"], arity("randomkey")),
            (&["DBSIZE", "x"], arity("dbsize")),
        ]);
        let mut p = redis::pipe();
        let mut keys = HashSet::new();
        for i in 0..100 {
            p.cmd("SET").arg(format!("k{i}")).arg(i);
            keys.insert(format!("k{i}"));
        }
        p.cmd("HSET").arg("h").arg("f").arg("v");
        keys.insert("h".into());
        keys.insert("only".into());
        pipeline(&mut c, &p);
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(102));
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let k = cmd(&mut c, &["RANDOMKEY"]).text();
            assert!(keys.contains(&k), "RANDOMKEY returned unknown key {k}");
            seen.insert(k);
        }
        assert!(seen.len() > 5, "RANDOMKEY is not random: {seen:?}");
    }

    fn flushdb_flushall(srv) {
        let mut c = srv.client();
        let fill = |c: &mut redis::Connection| {
            let mut p = redis::pipe();
            for i in 0..50 {
                p.cmd("SET").arg(format!("k{i}")).arg(i);
            }
            p.cmd("HSET").arg("h").arg("f").arg("v");
            pipeline(c, &p);
            assert_eq!(cmd(c, &["DBSIZE"]), int(51));
        };
        fill(&mut c);
        assert_eq!(cmd(&mut c, &["FLUSHDB"]), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(0));
        fill(&mut c);
        assert_eq!(cmd(&mut c, &["FLUSHDB", "ASYNC"]), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(0));
        assert_eq!(cmd(&mut c, &["GET", "k1"]), nil());
        fill(&mut c);
        assert_eq!(cmd(&mut c, &["FLUSHDB", "sync"]), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(0));
        expect_all(&mut c, &[
            (&["FLUSHDB", "FOO"], err(SYNTAX)),
            (&["FLUSHDB", "ASYNC", "SYNC"], err(SYNTAX)),
            (&["FLUSHALL", "FOO"], err(SYNTAX)),
        ]);
        // FLUSHDB empties only the selected db; FLUSHALL empties all.
        fill(&mut c);
        expect_all(&mut c, &[
            (&["SELECT", "3"], ok()),
            (&["SET", "in3", "v"], ok()),
            (&["FLUSHDB"], ok()),
            (&["DBSIZE"], int(0)),
            (&["SET", "in3", "v"], ok()),
            (&["SELECT", "0"], ok()),
            (&["DBSIZE"], int(51)),
            (&["FLUSHALL"], ok()),
            (&["DBSIZE"], int(0)),
            (&["SELECT", "3"], ok()),
            (&["DBSIZE"], int(0)),
            (&["SELECT", "0"], ok()),
        ]);
        fill(&mut c);
        assert_eq!(cmd(&mut c, &["FLUSHALL", "ASYNC"]), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(0));
        fill(&mut c);
        assert_eq!(cmd(&mut c, &["FLUSHALL", "SYNC"]), ok());
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(0));
        // Other connections see the flush.
        let mut other = srv.client();
        assert_eq!(cmd(&mut other, &["GET", "k1"]), nil());
    }

    fn select_move_swapdb(srv) {
        let mut c = srv.client();
        let range = "ERR DB index is out of range";
        expect_all(&mut c, &[
            (&["SET", "k", "db0"], ok()),
            (&["SELECT", "1"], ok()),
            (&["GET", "k"], nil()),
            (&["SET", "k", "db1"], ok()),
            (&["SELECT", "15"], ok()),
            (&["DBSIZE"], int(0)),
            (&["SELECT", "16"], err(range)),
            (&["SELECT", "-1"], err(range)),
            (&["SELECT", "abc"], err(NOT_INT)),
            (&["SELECT"], arity("select")),
            (&["SELECT", "0"], ok()),
            (&["GET", "k"], bulk("db0")),
            // MOVE
            (&["SET", "m", "v"], ok()),
            (&["EXPIRE", "m", "100"], int(1)),
            (&["MOVE", "m", "2"], int(1)),
            (&["EXISTS", "m"], int(0)),
            (&["MOVE", "m", "2"], int(0)),
            (&["MOVE", "nokey", "2"], int(0)),
            (&["MOVE", "k", "1"], int(0)),
            (&["GET", "k"], bulk("db0")),
            (&["MOVE", "k", "0"], err("ERR source and destination objects are the same")),
            (&["MOVE", "k", "16"], err(range)),
            (&["MOVE", "k", "abc"], err(NOT_INT)),
            (&["MOVE", "k"], arity("move")),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["MOVE", "h", "2"], int(1)),
            (&["SELECT", "2"], ok()),
            (&["GET", "m"], bulk("v")),
            (&["HGET", "h", "f"], bulk("v")),
        ]);
        // MOVE keeps the TTL.
        ttl_about(&mut c, "m", 100);
        // SWAPDB swaps the contents for every client.
        let mut other = srv.client();
        expect_all(&mut c, &[
            (&["SELECT", "0"], ok()),
            (&["SWAPDB", "0", "1"], ok()),
            (&["GET", "k"], bulk("db1")),
        ]);
        expect_all(&mut other, &[
            (&["GET", "k"], bulk("db1")),
            (&["SELECT", "1"], ok()),
            (&["GET", "k"], bulk("db0")),
        ]);
        expect_all(&mut c, &[
            (&["SWAPDB", "0", "0"], ok()),
            (&["GET", "k"], bulk("db1")),
            (&["SWAPDB", "0", "16"], err(range)),
            (&["SWAPDB", "-1", "0"], err(range)),
            (&["SWAPDB", "a", "1"], err("ERR invalid first DB index")),
            (&["SWAPDB", "0", "b"], err("ERR invalid second DB index")),
            (&["SWAPDB", "0"], arity("swapdb")),
        ]);
    }
}
