//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HLEN HEXISTS HGETALL HKEYS
//! HVALS HINCRBY HINCRBYFLOAT HSTRLEN HRANDFIELD HSCAN, and WRONGTYPE between
//! strings and hashes.

#[macro_use]
mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};

fn sorted_pairs_text(r: &Reply) -> Vec<(String, String)> {
    r.sorted_pairs().into_iter().map(|(k, v)| (k, v.text())).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

shard_tests! {
    fn hset_hget_basics(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["HSET", "h", "a", "1", "b", "2", "a", "3"], int(2)),
            (&["HGET", "h", "a"], bulk("3")),
            (&["HGET", "h", "b"], bulk("2")),
            (&["HGET", "h", "zz"], nil()),
            (&["HGET", "nokey", "a"], nil()),
            (&["HSET", "h", "a", "4", "c", "5"], int(1)),
            (&["HLEN", "h"], int(3)),
            (&["HLEN", "nokey"], int(0)),
            (&["HSETNX", "h", "a", "x"], int(0)),
            (&["HSETNX", "h", "d", "x"], int(1)),
            (&["HGET", "h", "a"], bulk("4")),
            (&["HGET", "h", "d"], bulk("x")),
            (&["HSETNX", "new", "f", "v"], int(1)),
            (&["HMSET", "h", "e", "6", "f", "7"], ok()),
            (&["HMGET", "h", "a", "zz", "e", "a"], arr(vec![bulk("4"), nil(), bulk("6"), bulk("4")])),
            (&["HMGET", "nokey", "a", "b"], arr(vec![nil(), nil()])),
            (&["HEXISTS", "h", "a"], int(1)),
            (&["HEXISTS", "h", "zz"], int(0)),
            (&["HEXISTS", "nokey", "a"], int(0)),
            (&["HSTRLEN", "h", "d"], int(1)),
            (&["HSTRLEN", "h", "zz"], int(0)),
            (&["HSTRLEN", "nokey", "a"], int(0)),
            (&["HSET", "h", "long", "hello world"], int(1)),
            (&["HSTRLEN", "h", "long"], int(11)),
            (&["HSET", "h", "empty", ""], int(1)),
            (&["HGET", "h", "empty"], bulk("")),
            (&["HEXISTS", "h", "empty"], int(1)),
            (&["HSET", "h", "", "emptyfield"], int(1)),
            (&["HGET", "h", ""], bulk("emptyfield")),
            (&["HLEN", "h"], int(9)),
            // Arity.
            (&["HSET", "h"], arity("hset")),
            (&["HSET", "h", "a"], arity("hset")),
            (&["HSET", "h", "a", "1", "b"], arity("hset")),
            (&["HMSET", "h", "a"], arity("hmset")),
            (&["HSETNX", "h", "a"], arity("hsetnx")),
            (&["HGET", "h"], arity("hget")),
            (&["HMGET", "h"], arity("hmget")),
            (&["HLEN"], arity("hlen")),
            (&["HEXISTS", "h"], arity("hexists")),
            (&["HSTRLEN", "h"], arity("hstrlen")),
            (&["HLEN", "h"], int(9)),
        ]);
        // Binary-safe fields and values.
        assert_eq!(cmd_bin(&mut c, &[b"HSET", b"bh", b"f\x00\r\n", b"v\xff\x00"]), int(1));
        assert_eq!(cmd_bin(&mut c, &[b"HGET", b"bh", b"f\x00\r\n"]), bulk(b"v\xff\x00"));
    }

    fn hdel_and_empty_hash(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["HSET", "h", "a", "1", "b", "2", "c", "3"], int(3)),
            (&["HDEL", "h", "a", "zz", "a"], int(1)),
            (&["HDEL", "nokey", "a"], int(0)),
            (&["HLEN", "h"], int(2)),
            (&["EXPIRE", "h", "100"], int(1)),
            (&["HDEL", "h", "b", "c"], int(2)),
            // Deleting the last field deletes the key (and its TTL).
            (&["EXISTS", "h"], int(0)),
            (&["TTL", "h"], int(-2)),
            (&["HGETALL", "h"], arr(vec![])),
            (&["HSET", "h", "x", "y"], int(1)),
            (&["TTL", "h"], int(-1)),
            (&["HDEL", "h"], arity("hdel")),
        ]);
    }

    fn hgetall_hkeys_hvals(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["HGETALL", "nokey"], arr(vec![])),
            (&["HKEYS", "nokey"], arr(vec![])),
            (&["HVALS", "nokey"], arr(vec![])),
            (&["HSET", "h", "a", "1", "b", "2", "c", "3"], int(3)),
        ]);
        let all = cmd(&mut c, &["HGETALL", "h"]);
        assert_eq!(all.items().len(), 6);
        assert_eq!(sorted_pairs_text(&all), pairs(&[("a", "1"), ("b", "2"), ("c", "3")]));
        // HKEYS and HVALS use the same order as HGETALL.
        let keys = cmd(&mut c, &["HKEYS", "h"]).items();
        let vals = cmd(&mut c, &["HVALS", "h"]).items();
        let flat = all.items();
        let from_all_keys: Vec<Reply> = flat.iter().step_by(2).cloned().collect();
        let from_all_vals: Vec<Reply> = flat.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(keys, from_all_keys);
        assert_eq!(vals, from_all_vals);
        // A big hash.
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        let mut want = BTreeMap::new();
        for i in 0..500 {
            args.push(format!("field:{i}"));
            args.push(format!("value:{i}"));
            want.insert(format!("field:{i}"), format!("value:{i}"));
        }
        assert_eq!(cmd_vec(&mut c, &args), int(500));
        assert_eq!(cmd(&mut c, &["HLEN", "big"]), int(500));
        let got: BTreeMap<String, String> =
            sorted_pairs_text(&cmd(&mut c, &["HGETALL", "big"])).into_iter().collect();
        assert_eq!(got, want);
        let keys: BTreeSet<String> = sorted_texts(&cmd(&mut c, &["HKEYS", "big"])).into_iter().collect();
        assert_eq!(keys, want.keys().cloned().collect());
        let vals: BTreeSet<String> = sorted_texts(&cmd(&mut c, &["HVALS", "big"])).into_iter().collect();
        assert_eq!(vals, want.values().cloned().collect());
        expect_all(&mut c, &[
            (&["HGETALL"], arity("hgetall")),
            (&["HKEYS", "a", "b"], arity("hkeys")),
            (&["HVALS"], arity("hvals")),
        ]);
    }

    fn hincrby_hincrbyfloat(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["HINCRBY", "h", "n", "5"], int(5)),
            (&["HINCRBY", "h", "n", "-10"], int(-5)),
            (&["HGET", "h", "n"], bulk("-5")),
            (&["HINCRBY", "h", "n", "abc"], err(NOT_INT)),
            (&["HINCRBY", "h", "n", "1.5"], err(NOT_INT)),
            (&["HSET", "h", "s", "abc"], int(1)),
            (&["HINCRBY", "h", "s", "1"], err("ERR hash value is not an integer")),
            (&["HSET", "h", "max", "9223372036854775807"], int(1)),
            (&["HINCRBY", "h", "max", "1"], err("ERR increment or decrement would overflow")),
            (&["HSET", "h", "min", "-9223372036854775808"], int(1)),
            (&["HINCRBY", "h", "min", "-1"], err("ERR increment or decrement would overflow")),
            (&["HINCRBY", "h", "max", "0"], int(i64::MAX)),
            (&["HINCRBYFLOAT", "h", "f", "1.5"], bulk("1.5")),
            (&["HINCRBYFLOAT", "h", "f", "0.25"], bulk("1.75")),
            (&["HINCRBYFLOAT", "h", "n", "0.5"], bulk("-4.5")),
            (&["HINCRBYFLOAT", "h", "i", "3.0"], bulk("3")),
            (&["HINCRBYFLOAT", "h", "e", "5.0e3"], bulk("5000")),
            (&["HINCRBYFLOAT", "h", "f", "abc"], err("ERR value is not a valid float")),
            (&["HINCRBYFLOAT", "h", "s", "1"], err("ERR hash value is not a float")),
            (&["HINCRBYFLOAT", "h", "f", "inf"], err("ERR value is NaN or Infinity")),
            (&["HGET", "h", "f"], bulk("1.75")),
            // A float result can no longer be HINCRBY'd.
            (&["HINCRBY", "h", "f", "1"], err("ERR hash value is not an integer")),
            (&["HINCRBY", "h", "n"], arity("hincrby")),
            (&["HINCRBYFLOAT", "h", "n"], arity("hincrbyfloat")),
        ]);
    }

    fn hrandfield(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["HRANDFIELD", "nokey"], nil()),
            (&["HRANDFIELD", "nokey", "5"], arr(vec![])),
            (&["HRANDFIELD", "nokey", "-5", "WITHVALUES"], arr(vec![])),
            (&["HSET", "one", "x", "y"], int(1)),
            (&["HRANDFIELD", "one"], bulk("x")),
            (&["HRANDFIELD", "one", "0"], arr(vec![])),
            (&["HRANDFIELD", "one", "3"], bulks(&["x"])),
            (&["HRANDFIELD", "one", "-3"], bulks(&["x", "x", "x"])),
            (&["HRANDFIELD", "one", "-2", "WITHVALUES"], bulks(&["x", "y", "x", "y"])),
            (&["HRANDFIELD", "one", "2", "withvalues"], bulks(&["x", "y"])),
            (&["HRANDFIELD", "one", "1", "FOO"], err(SYNTAX)),
            (&["HRANDFIELD", "one", "abc"], err(NOT_INT)),
            (&["HRANDFIELD", "one", "WITHVALUES"], err(NOT_INT)),
            (&["HRANDFIELD", "one", "2", "WITHVALUES", "x"], err(SYNTAX)),
            // The count's range: -LONG_MAX..=LONG_MAX, half of it with
            // WITHVALUES (the reply holds twice as many items).
            (
                &["HRANDFIELD", "one", "-9223372036854775808"],
                err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            ),
            (
                &["HRANDFIELD", "nokey", "-9223372036854775808"],
                err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            ),
            (&["HRANDFIELD", "one", "9223372036854775807"], bulks(&["x"])),
            (&["HRANDFIELD", "one", "4611686018427387903", "WITHVALUES"], bulks(&["x", "y"])),
            (&["HRANDFIELD", "one", "4611686018427387904", "WITHVALUES"], err("ERR value is out of range")),
            (&["HRANDFIELD", "one", "-4611686018427387904", "WITHVALUES"], err("ERR value is out of range")),
            (&["HRANDFIELD", "nokey", "4611686018427387904", "WITHVALUES"], err("ERR value is out of range")),
            (&["HRANDFIELD"], arity("hrandfield")),
        ]);
        let mut args = vec!["HSET".to_string(), "h".to_string()];
        let mut fields = BTreeMap::new();
        for i in 0..20 {
            args.push(format!("f{i}"));
            args.push(format!("v{i}"));
            fields.insert(format!("f{i}"), format!("v{i}"));
        }
        assert_eq!(cmd_vec(&mut c, &args), int(20));
        // Positive count: distinct fields, at most the hash size.
        let r = cmd(&mut c, &["HRANDFIELD", "h", "5"]).items();
        assert_eq!(r.len(), 5);
        let distinct: BTreeSet<String> = r.iter().map(Reply::text).collect();
        assert_eq!(distinct.len(), 5, "positive count must give distinct fields");
        assert!(distinct.iter().all(|f| fields.contains_key(f)));
        let r = cmd(&mut c, &["HRANDFIELD", "h", "100"]).items();
        let distinct: BTreeSet<String> = r.iter().map(Reply::text).collect();
        assert_eq!(r.len(), 20);
        assert_eq!(distinct, fields.keys().cloned().collect());
        // Negative count: exactly |count| fields, repeats allowed.
        let r = cmd(&mut c, &["HRANDFIELD", "h", "-50"]).items();
        assert_eq!(r.len(), 50);
        assert!(r.iter().all(|f| fields.contains_key(&f.text())));
        // WITHVALUES: field/value pairs that belong together.
        for count in ["7", "-30", "25"] {
            let r = cmd(&mut c, &["HRANDFIELD", "h", count, "WITHVALUES"]).items();
            let n: i64 = count.parse().unwrap();
            let expect_len = if n < 0 { -n } else { n.min(20) } as usize;
            assert_eq!(r.len(), expect_len * 2, "HRANDFIELD h {count} WITHVALUES");
            for pair in r.chunks(2) {
                assert_eq!(fields.get(&pair[0].text()), Some(&pair[1].text()));
            }
        }
        // Without count: a single field of the hash.
        let f = cmd(&mut c, &["HRANDFIELD", "h"]).text();
        assert!(fields.contains_key(&f));
    }

    fn hscan(srv) {
        let mut c = srv.client();
        let mut args = vec!["HSET".to_string(), "h".to_string()];
        let mut want = BTreeMap::new();
        for i in 0..300 {
            args.push(format!("field:{i}"));
            args.push(format!("v{i}"));
            want.insert(format!("field:{i}"), format!("v{i}"));
        }
        assert_eq!(cmd_vec(&mut c, &args), int(300));
        for extra in [&[][..], &["COUNT", "5"][..], &["MATCH", "field:1*", "COUNT", "30"][..]] {
            let mut cursor = "0".to_string();
            let mut seen = BTreeMap::new();
            let mut calls = 0;
            loop {
                let mut a = vec!["HSCAN".to_string(), "h".to_string(), cursor.clone()];
                a.extend(extra.iter().map(|s| s.to_string()));
                let r = cmd_vec(&mut c, &a).items();
                assert_eq!(r.len(), 2);
                cursor = r[0].text();
                assert!(cursor.parse::<u64>().is_ok(), "cursor {cursor:?}");
                let items = r[1].items();
                assert_eq!(items.len() % 2, 0, "HSCAN returns field/value pairs");
                for pair in items.chunks(2) {
                    seen.insert(pair[0].text(), pair[1].text());
                }
                calls += 1;
                assert!(calls < 10_000);
                if cursor == "0" {
                    break;
                }
            }
            let expected: BTreeMap<String, String> = if extra.contains(&"MATCH") {
                want.iter()
                    .filter(|(k, _)| k.starts_with("field:1"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            } else {
                want.clone()
            };
            assert_eq!(seen, expected, "HSCAN {extra:?}");
        }
        // A small hash and a missing key.
        expect_all(&mut c, &[
            (&["HSET", "small", "x", "y"], int(1)),
            (&["HSCAN", "small", "0"], arr(vec![bulk("0"), bulks(&["x", "y"])])),
            (&["HSCAN", "nokey", "0"], arr(vec![bulk("0"), arr(vec![])])),
            (&["HSCAN", "small", "abc"], err("ERR invalid cursor")),
            // Cursors are read as strtoul reads them: a sign and leading
            // zeros pass, a lone sign does not.
            (&["HSCAN", "small", "-1"], arr(vec![bulk("0"), bulks(&["x", "y"])])),
            (&["HSCAN", "small", "+00"], arr(vec![bulk("0"), bulks(&["x", "y"])])),
            (&["HSCAN", "small", "-"], err("ERR invalid cursor")),
            (&["HSCAN", "small", "0", "COUNT", "0"], err(SYNTAX)),
            (&["HSCAN", "small", "0", "MATCH"], err(SYNTAX)),
            (&["HSCAN", "small", "0", "FOO", "x"], err(SYNTAX)),
            (&["HSCAN", "small"], arity("hscan")),
        ]);
    }

    fn wrongtype(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "s", "v"]), ok());
        assert_eq!(cmd(&mut c, &["HSET", "h", "f", "1"]), int(1));
        let wrong = err(WRONGTYPE);
        let on_string: &[&[&str]] = &[
            &["HSET", "s", "f", "v"],
            &["HSETNX", "s", "f", "v"],
            &["HMSET", "s", "f", "v"],
            &["HGET", "s", "f"],
            &["HMGET", "s", "f"],
            &["HDEL", "s", "f"],
            &["HLEN", "s"],
            &["HEXISTS", "s", "f"],
            &["HGETALL", "s"],
            &["HKEYS", "s"],
            &["HVALS", "s"],
            &["HINCRBY", "s", "f", "1"],
            &["HINCRBYFLOAT", "s", "f", "1"],
            &["HSTRLEN", "s", "f"],
            &["HRANDFIELD", "s"],
            &["HRANDFIELD", "s", "2", "WITHVALUES"],
            &["HSCAN", "s", "0"],
        ];
        for args in on_string {
            assert_eq!(cmd(&mut c, args), wrong, "{args:?}");
        }
        let on_hash: &[&[&str]] = &[
            &["GET", "h"],
            &["GETSET", "h", "v"],
            &["GETDEL", "h"],
            &["GETEX", "h", "PERSIST"],
            &["APPEND", "h", "v"],
            &["STRLEN", "h"],
            &["INCR", "h"],
            &["DECR", "h"],
            &["INCRBY", "h", "1"],
            &["DECRBY", "h", "1"],
            &["INCRBYFLOAT", "h", "1"],
            &["GETRANGE", "h", "0", "1"],
            &["SETRANGE", "h", "0", "v"],
            &["SET", "h", "v", "GET"],
        ];
        for args in on_hash {
            assert_eq!(cmd(&mut c, args), wrong, "{args:?}");
        }
        // Nothing was changed by the failed commands.
        expect_all(&mut c, &[
            (&["GET", "s"], bulk("v")),
            (&["HGETALL", "h"], bulks(&["f", "1"])),
            // Type-agnostic commands work on both.
            (&["EXISTS", "s", "h"], int(2)),
            (&["MGET", "s", "h"], arr(vec![bulk("v"), nil()])),
            (&["DEL", "s", "h"], int(2)),
        ]);
    }
}

shard_tests! {
    fn hscan_checks_the_key_before_its_options(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["HSCAN", "missing", "0", "COUNT", "0"], arr(vec![bulk("0"), arr(vec![])])),
            (&["SET", "s", "v"], ok()),
            (&["HSCAN", "s", "0", "COUNT", "0"], err(WRONGTYPE)),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["HSCAN", "h", "0", "COUNT", "0"], err(SYNTAX)),
            (&["HSCAN", "h", "x"], err("ERR invalid cursor")),
        ]);
    }
}
