//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP
//! SRANDMEMBER SMOVE SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE
//! SINTERCARD SSCAN, WRONGTYPE between sets, strings and hashes, and keys of
//! one command on different shards.
//!
//! Sets are unordered: members are compared sorted. Commands over several
//! keys use `{t}` hash tags so their keys share a shard.

#[macro_use]
mod common;

use common::*;
use std::collections::BTreeSet;

/// The sorted member texts of an array or set reply.
fn members(r: &Reply) -> Vec<String> {
    sorted_texts(r)
}

fn strings(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A command's name, arity, flags, first key, last key and step.
/// Adds `members` to `key`, asserting how many were new.
fn sadd_all(c: &mut redis::Connection, key: &str, members: &[String], added: i64) {
    let mut args = vec!["SADD".to_string(), key.to_string()];
    args.extend(members.iter().cloned());
    assert_eq!(cmd_vec(c, &args), int(added), "SADD {key} ({} members)", members.len());
}

shard_tests! {
    fn sadd_srem_scard_sismember(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SADD", "s", "a", "b", "a", "c"], int(3)),
            (&["SADD", "s", "c", "d"], int(1)),
            (&["SCARD", "s"], int(4)),
            (&["SCARD", "nokey"], int(0)),
            (&["SISMEMBER", "s", "a"], int(1)),
            (&["SISMEMBER", "s", "zz"], int(0)),
            (&["SISMEMBER", "nokey", "a"], int(0)),
            (&["SMISMEMBER", "s", "a", "zz", "d", "a"], arr(vec![int(1), int(0), int(1), int(1)])),
            (&["SMISMEMBER", "nokey", "a", "b"], arr(vec![int(0), int(0)])),
            (&["SREM", "s", "a", "zz", "a"], int(1)),
            (&["SREM", "nokey", "a"], int(0)),
            (&["SCARD", "s"], int(3)),
            (&["TYPE", "s"], status("set")),
            (&["EXPIRE", "s", "100"], int(1)),
            (&["SREM", "s", "b", "c", "d"], int(3)),
            // Removing the last member deletes the key (and its TTL).
            (&["EXISTS", "s"], int(0)),
            (&["TTL", "s"], int(-2)),
            (&["SADD", "s", "x"], int(1)),
            (&["TTL", "s"], int(-1)),
            // The empty string is a member like any other.
            (&["SADD", "s", ""], int(1)),
            (&["SISMEMBER", "s", ""], int(1)),
            (&["SCARD", "s"], int(2)),
            // Arity.
            (&["SADD", "s"], arity("sadd")),
            (&["SREM", "s"], arity("srem")),
            (&["SCARD"], arity("scard")),
            (&["SCARD", "s", "t"], arity("scard")),
            (&["SISMEMBER", "s"], arity("sismember")),
            (&["SISMEMBER", "s", "a", "b"], arity("sismember")),
            (&["SMISMEMBER", "s"], arity("smismember")),
            (&["SMEMBERS"], arity("smembers")),
        ]);
        // Binary-safe members.
        assert_eq!(cmd_bin(&mut c, &[b"SADD", b"bin", b"m\x00\r\n", b"\xff"]), int(2));
        assert_eq!(cmd_bin(&mut c, &[b"SISMEMBER", b"bin", b"m\x00\r\n"]), int(1));
        assert_eq!(cmd_bin(&mut c, &[b"SISMEMBER", b"bin", b"m\x00"]), int(0));
        let mut got: Vec<Vec<u8>> = cmd(&mut c, &["SMEMBERS", "bin"])
            .items()
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => b,
                other => panic!("expected bulk, got {other:?}"),
            })
            .collect();
        got.sort();
        assert_eq!(got, vec![b"m\x00\r\n".to_vec(), b"\xff".to_vec()]);
    }

    fn integer_members_keep_their_text(srv) {
        let mut c = srv.client();
        // Integer-looking texts that are not canonical integers are other members.
        expect_all(&mut c, &[
            (&["SADD", "n", "1", "2", "-3", "0"], int(4)),
            (&["SISMEMBER", "n", "01"], int(0)),
            (&["SISMEMBER", "n", "+1"], int(0)),
            (&["SISMEMBER", "n", " 1"], int(0)),
            (&["SISMEMBER", "n", "-0"], int(0)),
            (&["SREM", "n", "02"], int(0)),
            (&["SADD", "n", "01", "+1", "-0", "1"], int(3)),
            (&["SCARD", "n"], int(7)),
            (&["SISMEMBER", "n", "1"], int(1)),
            (&["SISMEMBER", "n", "01"], int(1)),
            (&["SADD", "big", "9223372036854775807", "-9223372036854775808", "9223372036854775808"], int(3)),
            (&["SISMEMBER", "big", "9223372036854775808"], int(1)),
        ]);
        assert_eq!(members(&cmd(&mut c, &["SMEMBERS", "n"])), strings(&["-0", "-3", "0", "01", "1", "+1", "2"]));
        assert_eq!(
            members(&cmd(&mut c, &["SMEMBERS", "big"])),
            strings(&["9223372036854775807", "-9223372036854775808", "9223372036854775808"])
        );
    }

    fn sets_past_the_compact_thresholds(srv) {
        let mut c = srv.client();
        // Integers past the intset limit (512).
        let ints: Vec<String> = (0..600).map(|i| (i * 7 - 1000).to_string()).collect();
        sadd_all(&mut c, "ints", &ints[..512], 512);
        sadd_all(&mut c, "ints", &ints, 88);
        assert_eq!(cmd(&mut c, &["SCARD", "ints"]), int(600));
        let want: BTreeSet<String> = ints.iter().cloned().collect();
        let got: BTreeSet<String> = members(&cmd(&mut c, &["SMEMBERS", "ints"])).into_iter().collect();
        assert_eq!(got, want);
        // A text member into a small integer set, and past 128 members.
        let mut mixed: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        sadd_all(&mut c, "mixed", &mixed, 100);
        expect_all(&mut c, &[
            (&["SADD", "mixed", "word"], int(1)),
            (&["SISMEMBER", "mixed", "42"], int(1)),
            (&["SISMEMBER", "mixed", "word"], int(1)),
        ]);
        mixed.push("word".into());
        let more: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        sadd_all(&mut c, "mixed", &more, 100);
        mixed.extend(more);
        assert_eq!(cmd(&mut c, &["SCARD", "mixed"]), int(201));
        let want: BTreeSet<String> = mixed.iter().cloned().collect();
        let got: BTreeSet<String> = members(&cmd(&mut c, &["SMEMBERS", "mixed"])).into_iter().collect();
        assert_eq!(got, want);
        // A long member (past 64 bytes).
        let long = "x".repeat(100);
        expect_all(&mut c, &[
            (&["SADD", "long", "a", "1"], int(2)),
            (&["SADD", "long", &long], int(1)),
            (&["SISMEMBER", "long", &long], int(1)),
            (&["SISMEMBER", "long", "1"], int(1)),
            (&["SREM", "long", "a", "1", &long], int(3)),
            (&["EXISTS", "long"], int(0)),
        ]);
        // Removing most members of a large set keeps the rest.
        let half: Vec<String> = ints.iter().step_by(2).cloned().collect();
        let mut args = vec!["SREM".to_string(), "ints".to_string()];
        args.extend(half.iter().cloned());
        assert_eq!(cmd_vec(&mut c, &args), int(300));
        let rest: BTreeSet<String> = ints.iter().skip(1).step_by(2).cloned().collect();
        let got: BTreeSet<String> = members(&cmd(&mut c, &["SMEMBERS", "ints"])).into_iter().collect();
        assert_eq!(got, rest);
    }

    fn resp3_reply_types(srv) {
        let mut c = srv.client_resp3();
        expect_all(&mut c, &[
            (&["SADD", "{t}a", "x", "y"], int(2)),
            (&["SADD", "{t}b", "y", "z"], int(2)),
            (&["SMEMBERS", "nokey"], Reply::Set(vec![])),
            (&["SINTER", "{t}a", "{t}b"], Reply::Set(vec![bulk("y")])),
            (&["SDIFF", "{t}a", "{t}b"], Reply::Set(vec![bulk("x")])),
            (&["SINTER", "{t}a", "{t}none"], Reply::Set(vec![])),
            (&["SPOP", "nokey"], nil()),
            (&["SPOP", "nokey", "2"], Reply::Set(vec![])),
            (&["SPOP", "{t}a", "0"], Reply::Set(vec![])),
            (&["SRANDMEMBER", "nokey"], nil()),
            (&["SRANDMEMBER", "nokey", "2"], arr(vec![])),
            (&["SRANDMEMBER", "{t}b", "0"], arr(vec![])),
            (&["SISMEMBER", "{t}a", "x"], int(1)),
            (&["SMISMEMBER", "{t}a", "x", "q"], arr(vec![int(1), int(0)])),
        ]);
        assert_eq!(members(&cmd(&mut c, &["SUNION", "{t}a", "{t}b", "{t}none"])), strings(&["x", "y", "z"]));
        for args in [&["SMEMBERS", "{t}a"][..], &["SUNION", "{t}a", "{t}b"][..], &["SPOP", "{t}b", "1"][..]] {
            assert!(matches!(cmd(&mut c, args), Reply::Set(_)), "{args:?} replies a set");
        }
        assert!(matches!(cmd(&mut c, &["SRANDMEMBER", "{t}a", "5"]), Reply::Array(_)));
        assert!(matches!(cmd(&mut c, &["SRANDMEMBER", "{t}a", "-5"]), Reply::Array(_)));
    }

    fn spop(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SPOP", "nokey"], nil()),
            (&["SPOP", "nokey", "3"], arr(vec![])),
            (&["SADD", "one", "x"], int(1)),
            (&["SPOP", "one"], bulk("x")),
            (&["EXISTS", "one"], int(0)),
            (&["SADD", "s", "a"], int(1)),
            (&["SPOP", "s", "0"], arr(vec![])),
            (&["SCARD", "s"], int(1)),
            (&["SPOP", "s", "-1"], err("ERR value is out of range, must be positive")),
            (&["SPOP", "s", "abc"], err("ERR value is out of range, must be positive")),
            (&["SPOP", "nokey", "-1"], err("ERR value is out of range, must be positive")),
            (&["SPOP", "s", "1", "2"], err(SYNTAX)),
            (&["SPOP"], arity("spop")),
            (&["SCARD", "s"], int(1)),
        ]);
        for (key, all) in [
            ("ints", (0..50).map(|i| i.to_string()).collect::<Vec<_>>()),
            ("words", (0..50).map(|i| format!("w{i}")).collect()),
            ("table", (0..300).map(|i| format!("member:{i}")).collect()),
        ] {
            sadd_all(&mut c, key, &all, all.len() as i64);
            let mut left: BTreeSet<String> = all.iter().cloned().collect();
            // One at a time.
            let m = cmd(&mut c, &["SPOP", key]).text();
            assert!(left.remove(&m), "{key}: popped {m:?} twice or from nowhere");
            // Fewer than the set holds: distinct members, removed.
            let popped = members(&cmd(&mut c, &["SPOP", key, "10"]));
            assert_eq!(popped.len(), 10, "{key}");
            for m in &popped {
                assert!(left.remove(m), "{key}: popped {m:?} twice or from nowhere");
                assert_eq!(cmd(&mut c, &["SISMEMBER", key, m]), int(0));
            }
            assert_eq!(cmd(&mut c, &["SCARD", key]), int(left.len() as i64));
            // More than it holds: everything, and the key is gone.
            let rest: BTreeSet<String> = members(&cmd(&mut c, &["SPOP", key, "100000"])).into_iter().collect();
            assert_eq!(rest, left, "{key}");
            assert_eq!(cmd(&mut c, &["EXISTS", key]), int(0));
        }
        // A count equal to the size empties the set too.
        expect_all(&mut c, &[(&["SADD", "eq", "1", "2"], int(2))]);
        assert_eq!(members(&cmd(&mut c, &["SPOP", "eq", "2"])), strings(&["1", "2"]));
        assert_eq!(cmd(&mut c, &["EXISTS", "eq"]), int(0));
    }

    fn srandmember(srv) {
        let mut c = srv.client();
        let range = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
        expect_all(&mut c, &[
            (&["SRANDMEMBER", "nokey"], nil()),
            (&["SRANDMEMBER", "nokey", "5"], arr(vec![])),
            (&["SRANDMEMBER", "nokey", "-5"], arr(vec![])),
            (&["SADD", "one", "x"], int(1)),
            (&["SRANDMEMBER", "one"], bulk("x")),
            (&["SRANDMEMBER", "one", "0"], arr(vec![])),
            (&["SRANDMEMBER", "one", "3"], bulks(&["x"])),
            (&["SRANDMEMBER", "one", "-3"], bulks(&["x", "x", "x"])),
            (&["SRANDMEMBER", "one", "abc"], err(NOT_INT)),
            (&["SRANDMEMBER", "nokey", "abc"], err(NOT_INT)),
            (&["SRANDMEMBER", "one", "-9223372036854775808"], err(range)),
            (&["SRANDMEMBER", "one", "1", "2"], err(SYNTAX)),
            (&["SRANDMEMBER"], arity("srandmember")),
            // Nothing was removed.
            (&["SCARD", "one"], int(1)),
        ]);
        for (key, all) in [
            ("ints", (0..20).map(|i| i.to_string()).collect::<Vec<_>>()),
            ("words", (0..20).map(|i| format!("w{i}")).collect()),
            ("table", (0..200).map(|i| format!("member:{i}")).collect()),
        ] {
            sadd_all(&mut c, key, &all, all.len() as i64);
            let all: BTreeSet<String> = all.into_iter().collect();
            // Positive count: distinct members, at most the set's size.
            let r = cmd(&mut c, &["SRANDMEMBER", key, "5"]).items();
            assert_eq!(r.len(), 5);
            let distinct: BTreeSet<String> = r.iter().map(Reply::text).collect();
            assert_eq!(distinct.len(), 5, "{key}: positive count must give distinct members");
            assert!(distinct.is_subset(&all));
            let r = cmd(&mut c, &["SRANDMEMBER", key, "1000"]).items();
            assert_eq!(r.len(), all.len());
            assert_eq!(r.iter().map(Reply::text).collect::<BTreeSet<_>>(), all);
            // Negative count: exactly |count| members, repeats allowed.
            let r = cmd(&mut c, &["SRANDMEMBER", key, "-2000"]).items();
            assert_eq!(r.len(), 2000);
            let seen: BTreeSet<String> = r.iter().map(Reply::text).collect();
            assert!(seen.is_subset(&all));
            assert!(seen.len() > 1, "{key}: 2000 picks should not all be one member");
            // Without count: one member.
            assert!(all.contains(&cmd(&mut c, &["SRANDMEMBER", key]).text()));
            assert_eq!(cmd(&mut c, &["SCARD", key]), int(all.len() as i64));
        }
    }

    fn smove(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SADD", "{t}src", "a", "b", "1"], int(3)),
            (&["SADD", "{t}dst", "c"], int(1)),
            (&["SMOVE", "{t}src", "{t}dst", "a"], int(1)),
            (&["SMOVE", "{t}src", "{t}dst", "zz"], int(0)),
            (&["SMOVE", "{t}nokey", "{t}dst", "a"], int(0)),
            (&["SISMEMBER", "{t}src", "a"], int(0)),
            (&["SISMEMBER", "{t}dst", "a"], int(1)),
            // A member already in the destination still leaves the source.
            (&["SADD", "{t}src", "c"], int(1)),
            (&["SMOVE", "{t}src", "{t}dst", "c"], int(1)),
            (&["SISMEMBER", "{t}src", "c"], int(0)),
            (&["SCARD", "{t}dst"], int(2)),
            // Integer members move into a set of words and back.
            (&["SMOVE", "{t}src", "{t}dst", "1"], int(1)),
            (&["SMOVE", "{t}dst", "{t}ints", "1"], int(1)),
            (&["SMEMBERS", "{t}ints"], bulks(&["1"])),
            // The destination is created, an emptied source deleted.
            (&["SMOVE", "{t}src", "{t}new", "b"], int(1)),
            (&["EXISTS", "{t}src"], int(0)),
            (&["SMEMBERS", "{t}new"], bulks(&["b"])),
            // Source and destination the same key: membership, no change.
            (&["SMOVE", "{t}new", "{t}new", "b"], int(1)),
            (&["SMOVE", "{t}new", "{t}new", "zz"], int(0)),
            (&["SMEMBERS", "{t}new"], bulks(&["b"])),
            (&["SMOVE", "{t}new", "{t}dst"], arity("smove")),
            (&["SMOVE", "{t}new", "{t}dst", "b", "c"], arity("smove")),
        ]);
        assert_eq!(members(&cmd(&mut c, &["SMEMBERS", "{t}dst"])), strings(&["a", "c"]));
    }

    fn sinter_sunion_sdiff(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SADD", "{t}a", "1", "2", "3", "x"], int(4)),
            (&["SADD", "{t}b", "2", "3", "4", "x", "y"], int(5)),
            (&["SADD", "{t}c", "3", "x", "z"], int(3)),
        ]);
        let cases: &[(&[&str], &[&str])] = &[
            (&["SINTER", "{t}a", "{t}b"], &["2", "3", "x"]),
            (&["SINTER", "{t}a", "{t}b", "{t}c"], &["3", "x"]),
            (&["SINTER", "{t}a"], &["1", "2", "3", "x"]),
            (&["SINTER", "{t}a", "{t}a"], &["1", "2", "3", "x"]),
            (&["SINTER", "{t}a", "{t}none"], &[]),
            (&["SINTER", "{t}none", "{t}a"], &[]),
            (&["SUNION", "{t}a", "{t}b"], &["1", "2", "3", "4", "x", "y"]),
            (&["SUNION", "{t}a", "{t}none", "{t}c"], &["1", "2", "3", "x", "z"]),
            (&["SUNION", "{t}none"], &[]),
            (&["SDIFF", "{t}a", "{t}b"], &["1"]),
            (&["SDIFF", "{t}b", "{t}a"], &["4", "y"]),
            (&["SDIFF", "{t}b", "{t}a", "{t}c"], &["4", "y"]),
            (&["SDIFF", "{t}a", "{t}none"], &["1", "2", "3", "x"]),
            (&["SDIFF", "{t}none", "{t}a"], &[]),
            (&["SDIFF", "{t}a", "{t}a"], &[]),
            (&["SMEMBERS", "{t}a"], &["1", "2", "3", "x"]),
        ];
        for (args, want) in cases {
            assert_eq!(members(&cmd(&mut c, args)), strings(want), "{args:?}");
        }
        // Large operands on both sides of the thresholds.
        let evens: Vec<String> = (0..1000).step_by(2).map(|i| i.to_string()).collect();
        let threes: Vec<String> = (0..1000).step_by(3).map(|i| format!("{i}")).collect();
        sadd_all(&mut c, "{t}evens", &evens, 500);
        sadd_all(&mut c, "{t}threes", &threes, 334);
        let sixes: Vec<String> = (0..1000).step_by(6).map(|i| i.to_string()).collect();
        let mut sixes_sorted = sixes.clone();
        sixes_sorted.sort();
        assert_eq!(members(&cmd(&mut c, &["SINTER", "{t}evens", "{t}threes"])), sixes_sorted);
        assert_eq!(cmd(&mut c, &["SINTERCARD", "2", "{t}evens", "{t}threes"]), int(167));
        assert_eq!(cmd(&mut c, &["SUNIONSTORE", "{t}u", "{t}evens", "{t}threes"]), int(667));
        assert_eq!(cmd(&mut c, &["SDIFFSTORE", "{t}d", "{t}evens", "{t}threes"]), int(333));
        expect_all(&mut c, &[
            (&["SINTER"], arity("sinter")),
            (&["SUNION"], arity("sunion")),
            (&["SDIFF"], arity("sdiff")),
        ]);
    }

    fn store_variants(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SADD", "{t}a", "1", "2", "3"], int(3)),
            (&["SADD", "{t}b", "2", "3", "4"], int(2 + 1)),
            (&["SINTERSTORE", "{t}dst", "{t}a", "{t}b"], int(2)),
            (&["SUNIONSTORE", "{t}u", "{t}a", "{t}b"], int(4)),
            (&["SDIFFSTORE", "{t}d", "{t}a", "{t}b"], int(1)),
            (&["SMEMBERS", "{t}d"], bulks(&["1"])),
            // The destination's old value and type do not matter; its TTL goes.
            (&["SET", "{t}str", "v"], ok()),
            (&["EXPIRE", "{t}str", "100"], int(1)),
            (&["SUNIONSTORE", "{t}str", "{t}a"], int(3)),
            (&["TYPE", "{t}str"], status("set")),
            (&["TTL", "{t}str"], int(-1)),
            (&["HSET", "{t}h", "f", "v"], int(1)),
            (&["SINTERSTORE", "{t}h", "{t}a", "{t}a"], int(3)),
            (&["TYPE", "{t}h"], status("set")),
            // An empty result deletes the destination.
            (&["SET", "{t}gone", "v"], ok()),
            (&["SINTERSTORE", "{t}gone", "{t}a", "{t}none"], int(0)),
            (&["EXISTS", "{t}gone"], int(0)),
            (&["SDIFFSTORE", "{t}u", "{t}a", "{t}u"], int(0)),
            (&["EXISTS", "{t}u"], int(0)),
            (&["SUNIONSTORE", "{t}dst", "{t}none"], int(0)),
            (&["EXISTS", "{t}dst"], int(0)),
            (&["SINTERSTORE", "{t}never", "{t}none"], int(0)),
            (&["EXISTS", "{t}never"], int(0)),
            // The destination may be one of the sources.
            (&["SUNIONSTORE", "{t}a", "{t}a", "{t}b"], int(4)),
            (&["SDIFFSTORE", "{t}b", "{t}b"], int(3)),
            (&["SINTERSTORE", "{t}a", "{t}a", "{t}b"], int(3)),
            (&["SINTERSTORE", "{t}dst"], arity("sinterstore")),
            (&["SUNIONSTORE", "{t}dst"], arity("sunionstore")),
            (&["SDIFFSTORE", "{t}dst"], arity("sdiffstore")),
        ]);
        assert_eq!(members(&cmd(&mut c, &["SMEMBERS", "{t}a"])), strings(&["2", "3", "4"]));
        assert_eq!(members(&cmd(&mut c, &["SMEMBERS", "{t}dst"])), Vec::<String>::new());
        assert_eq!(members(&cmd(&mut c, &["SMEMBERS", "{t}str"])), strings(&["1", "2", "3"]));
    }

    fn sintercard(srv) {
        let mut c = srv.client();
        let numkeys = err("ERR numkeys should be greater than 0");
        let too_many = err("ERR Number of keys can't be greater than number of args");
        let negative = err("ERR LIMIT can't be negative");
        expect_all(&mut c, &[
            (&["SADD", "{t}a", "1", "2", "3", "4"], int(4)),
            (&["SADD", "{t}b", "2", "3", "4", "5"], int(4)),
            (&["SET", "{t}str", "v"], ok()),
            (&["SINTERCARD", "2", "{t}a", "{t}b"], int(3)),
            (&["SINTERCARD", "1", "{t}a"], int(4)),
            (&["SINTERCARD", "2", "{t}a", "{t}none"], int(0)),
            (&["SINTERCARD", "1", "{t}none"], int(0)),
            (&["SINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "2"], int(2)),
            (&["SINTERCARD", "2", "{t}a", "{t}b", "limit", "0"], int(3)),
            (&["SINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "10"], int(3)),
            (&["SINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1", "LIMIT", "2"], int(2)),
            (&["SINTERCARD", "0", "{t}a"], numkeys.clone()),
            (&["SINTERCARD", "-1", "{t}a"], numkeys.clone()),
            (&["SINTERCARD", "abc", "{t}a"], numkeys.clone()),
            (&["SINTERCARD", "2", "{t}a"], too_many.clone()),
            (&["SINTERCARD", "3", "{t}a", "{t}b"], too_many.clone()),
            (&["SINTERCARD", "1", "{t}a", "LIMIT"], err(SYNTAX)),
            (&["SINTERCARD", "1", "{t}a", "{t}b"], err(SYNTAX)),
            (&["SINTERCARD", "1", "{t}a", "FOO", "1"], err(SYNTAX)),
            (&["SINTERCARD", "1", "{t}a", "LIMIT", "-1"], negative.clone()),
            (&["SINTERCARD", "1", "{t}a", "LIMIT", "abc"], negative.clone()),
            // Options are checked before the keys' types.
            (&["SINTERCARD", "1", "{t}str", "LIMIT", "-1"], negative.clone()),
            (&["SINTERCARD", "1", "{t}str"], err(WRONGTYPE)),
            (&["SINTERCARD", "2", "{t}none", "{t}str"], err(WRONGTYPE)),
            (&["SINTERCARD", "1"], arity("sintercard")),
        ]);
        assert_eq!(
            cmd(&mut c, &["COMMAND", "GETKEYS", "SINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1"]),
            bulks(&["{t}a", "{t}b"])
        );
    }

    fn sscan(srv) {
        let mut c = srv.client();
        for (key, all) in [
            ("table", (0..300).map(|i| format!("member:{i}")).collect::<Vec<_>>()),
            ("ints", (0..1000).map(|i| i.to_string()).collect()),
        ] {
            sadd_all(&mut c, key, &all, all.len() as i64);
            let all: BTreeSet<String> = all.into_iter().collect();
            for extra in [&[][..], &["COUNT", "5"][..], &["MATCH", "*1*", "COUNT", "30"][..]] {
                let mut cursor = "0".to_string();
                let mut seen = BTreeSet::new();
                let mut calls = 0;
                loop {
                    let mut a = vec!["SSCAN".to_string(), key.to_string(), cursor.clone()];
                    a.extend(extra.iter().map(|s| s.to_string()));
                    let r = cmd_vec(&mut c, &a).items();
                    assert_eq!(r.len(), 2);
                    cursor = r[0].text();
                    assert!(cursor.parse::<u64>().is_ok(), "cursor {cursor:?}");
                    seen.extend(r[1].items().iter().map(Reply::text));
                    calls += 1;
                    assert!(calls < 10_000);
                    if cursor == "0" {
                        break;
                    }
                }
                let expected: BTreeSet<String> = if extra.contains(&"MATCH") {
                    all.iter().filter(|m| m.contains('1')).cloned().collect()
                } else {
                    all.clone()
                };
                assert_eq!(seen, expected, "SSCAN {key} {extra:?}");
            }
        }
        // Small sets come back whole, with cursor 0.
        expect_all(&mut c, &[
            (&["SADD", "small", "1", "2", "3"], int(3)),
            (&["SET", "str", "v"], ok()),
            (&["SSCAN", "small", "0", "MATCH", "2"], arr(vec![bulk("0"), bulks(&["2"])])),
            (&["SSCAN", "nokey", "0"], arr(vec![bulk("0"), arr(vec![])])),
            (&["SSCAN", "small", "abc"], err("ERR invalid cursor")),
            (&["SSCAN", "small", "18446744073709551616"], err("ERR invalid cursor")),
            // Cursors are read as strtoul reads them: a sign and leading
            // zeros pass, a lone sign does not.
            (&["SSCAN", "small", "-1", "MATCH", "3"], arr(vec![bulk("0"), bulks(&["3"])])),
            (&["SSCAN", "small", "+01", "MATCH", "3"], arr(vec![bulk("0"), bulks(&["3"])])),
            (&["SSCAN", "small", "+"], err("ERR invalid cursor")),
            (&["SSCAN", "nokey", "abc"], err("ERR invalid cursor")),
            (&["SSCAN", "str", "abc"], err("ERR invalid cursor")),
            (&["SSCAN", "small", "0", "COUNT", "0"], err(SYNTAX)),
            (&["SSCAN", "small", "0", "COUNT", "abc"], err(NOT_INT)),
            (&["SSCAN", "small", "0", "MATCH"], err(SYNTAX)),
            (&["SSCAN", "small", "0", "FOO", "x"], err(SYNTAX)),
            // A missing key answers an empty scan before the options are read,
            // and the type is checked before them.
            (&["SSCAN", "nokey", "0", "COUNT", "0"], arr(vec![bulk("0"), arr(vec![])])),
            (&["SSCAN", "str", "0", "COUNT", "0"], err(WRONGTYPE)),
            (&["SSCAN", "small"], arity("sscan")),
        ]);
        let r = cmd(&mut c, &["SSCAN", "small", "0"]).items();
        assert_eq!(r[0], bulk("0"));
        assert_eq!(members(&r[1]), strings(&["1", "2", "3"]));
    }

    fn wrongtype(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "{t}s", "v"], ok()),
            (&["HSET", "{t}h", "f", "1"], int(1)),
            (&["SADD", "{t}set", "m"], int(1)),
        ]);
        let wrong = err(WRONGTYPE);
        for other in ["{t}s", "{t}h"] {
            let on_other: Vec<Vec<&str>> = vec![
                vec!["SADD", other, "m"],
                vec!["SREM", other, "m"],
                vec!["SMEMBERS", other],
                vec!["SISMEMBER", other, "m"],
                vec!["SMISMEMBER", other, "m"],
                vec!["SCARD", other],
                vec!["SPOP", other],
                vec!["SPOP", other, "2"],
                vec!["SPOP", other, "0"],
                vec!["SRANDMEMBER", other],
                vec!["SRANDMEMBER", other, "-2"],
                vec!["SRANDMEMBER", other, "0"],
                vec!["SMOVE", other, "{t}set", "m"],
                vec!["SMOVE", "{t}set", other, "m"],
                vec!["SMOVE", "{t}set", other, "zz"],
                vec!["SMOVE", other, other, "m"],
                vec!["SINTER", other],
                vec!["SINTER", "{t}set", other],
                vec!["SINTER", "{t}none", other],
                vec!["SUNION", "{t}set", other],
                vec!["SUNION", "{t}none", other],
                vec!["SDIFF", "{t}set", other],
                vec!["SDIFF", "{t}none", other],
                vec!["SDIFF", other, "{t}set"],
                vec!["SINTERSTORE", "{t}dst", "{t}set", other],
                vec!["SUNIONSTORE", "{t}dst", "{t}set", other],
                vec!["SDIFFSTORE", "{t}dst", "{t}set", other],
                vec!["SINTERCARD", "2", "{t}set", other],
                vec!["SSCAN", other, "0"],
            ];
            for args in &on_other {
                assert_eq!(cmd(&mut c, args), wrong, "{args:?}");
            }
        }
        let on_set: &[&[&str]] = &[
            &["GET", "{t}set"],
            &["APPEND", "{t}set", "v"],
            &["INCR", "{t}set"],
            &["STRLEN", "{t}set"],
            &["HSET", "{t}set", "f", "v"],
            &["HGET", "{t}set", "f"],
            &["HGETALL", "{t}set"],
        ];
        for args in on_set {
            assert_eq!(cmd(&mut c, args), wrong, "{args:?}");
        }
        expect_all(&mut c, &[
            // A missing source answers 0 before the destination's type is checked.
            (&["SMOVE", "{t}none", "{t}s", "m"], int(0)),
            // Nothing was changed by the failed commands.
            (&["GET", "{t}s"], bulk("v")),
            (&["HGETALL", "{t}h"], bulks(&["f", "1"])),
            (&["SMEMBERS", "{t}set"], bulks(&["m"])),
            (&["EXISTS", "{t}dst"], int(0)),
            (&["TYPE", "{t}set"], status("set")),
            // SET replaces a set like any value.
            (&["SET", "{t}set", "now a string"], ok()),
            (&["GET", "{t}set"], bulk("now a string")),
        ]);
    }

    fn command_info_matches_redis(srv) {
        let mut c = srv.client();
        // name, arity, flags, first key, last key, step: as Redis 7 reports them.
        let want: &[InfoRow] = &[
            ("sadd", -3, &["write", "denyoom", "fast"], 1, 1, 1),
            ("srem", -3, &["write", "fast"], 1, 1, 1),
            ("smembers", 2, &["readonly"], 1, 1, 1),
            ("sismember", 3, &["readonly", "fast"], 1, 1, 1),
            ("smismember", -3, &["readonly", "fast"], 1, 1, 1),
            ("scard", 2, &["readonly", "fast"], 1, 1, 1),
            ("spop", -2, &["write", "fast"], 1, 1, 1),
            ("srandmember", -2, &["readonly"], 1, 1, 1),
            ("smove", 4, &["write", "fast"], 1, 2, 1),
            ("sinter", -2, &["readonly"], 1, -1, 1),
            ("sunion", -2, &["readonly"], 1, -1, 1),
            ("sdiff", -2, &["readonly"], 1, -1, 1),
            ("sinterstore", -3, &["write", "denyoom"], 1, -1, 1),
            ("sunionstore", -3, &["write", "denyoom"], 1, -1, 1),
            ("sdiffstore", -3, &["write", "denyoom"], 1, -1, 1),
            ("sintercard", -3, &["readonly", "movablekeys"], 0, 0, 0),
            ("sscan", -3, &["readonly"], 1, 1, 1),
        ];
        assert_command_info(&mut c, want);
    }
}

/// Two keys that live on different shards of a 4-shard server (slots 12182 and 5061).
const FOO: &str = "foo";
const BAR: &str = "bar";

#[test]
fn commands_over_keys_of_different_shards() {
    let mut srv = Server::start(4);
    let mut c = srv.client();
    expect_all(&mut c, &[(&["SADD", FOO, "a", "b"], int(2)), (&["SADD", BAR, "b", "c"], int(2))]);
    let sorted = |c: &mut redis::Connection, args: &[&str]| sorted_texts(&cmd(c, args));
    assert_eq!(sorted(&mut c, &["SINTER", FOO, BAR]), ["b"]);
    assert_eq!(sorted(&mut c, &["SUNION", FOO, BAR]), ["a", "b", "c"]);
    assert_eq!(sorted(&mut c, &["SDIFF", FOO, BAR]), ["a"]);
    expect_all(
        &mut c,
        &[
            (&["SINTERSTORE", "{bar}dst", FOO, BAR], int(1)),
            (&["SUNIONSTORE", "{bar}dst2", FOO, BAR], int(3)),
            (&["SDIFFSTORE", "{foo}dst", FOO, BAR], int(1)),
            (&["SINTERCARD", "2", FOO, BAR], int(1)),
            (&["SMOVE", FOO, BAR, "a"], int(1)),
            (&["SMOVE", FOO, BAR, "a"], int(0)),
            (&["SCARD", FOO], int(1)),
            (&["SCARD", BAR], int(3)),
            (&["SDIFFSTORE", "{foo}dst", FOO, FOO], int(0)),
            (&["EXISTS", "{foo}dst"], int(0)),
        ],
    );
    assert_eq!(sorted(&mut c, &["SMEMBERS", "{bar}dst2"]), ["a", "b", "c"]);
    srv.assert_alive();
}
