//! DEBUG DIGEST and DEBUG DIGEST-VALUE: a digest of the whole dataset and of
//! single values that does not depend on insertion order, internal encoding
//! or how keys are spread over shards, and that changes with any key, value,
//! type, database or TTL. coreshard's digests are its own (Redis's is SHA-1
//! over its internals), so no test compares a value with Redis's; every test
//! here still holds for redis-server, which is started with the DEBUG
//! command enabled.

#[macro_use]
mod common;

use common::*;
use std::time::Duration;

/// Redis refuses DEBUG unless this is set; coreshard accepts and ignores it.
const DEBUG_ON: [&str; 2] = ["--enable-debug-command", "yes"];
/// An absolute expire time far ahead (2100-01-01), the same on every server.
const FAR_MS: &str = "4102444800000";
const ZEROS: &str = "0000000000000000000000000000000000000000";

fn digest(c: &mut redis::Connection) -> String {
    match cmd(c, &["DEBUG", "DIGEST"]) {
        Reply::Status(s) => {
            assert!(s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()), "not a digest: {s}");
            s
        }
        other => panic!("DEBUG DIGEST: {other:?}"),
    }
}

fn digest_values(c: &mut redis::Connection, keys: &[&str]) -> Vec<String> {
    let mut args = vec!["DEBUG", "DIGEST-VALUE"];
    args.extend_from_slice(keys);
    cmd(c, &args)
        .items()
        .into_iter()
        .map(|r| match r {
            Reply::Status(s) if s.len() == 40 => s,
            other => panic!("DIGEST-VALUE item: {other:?}"),
        })
        .collect()
}

fn select(c: &mut redis::Connection, db: u32) {
    assert_eq!(cmd(c, &["SELECT", &db.to_string()]), ok());
}

/// One write of the test dataset: the database and the command. Writes to
/// different keys may run in any order; writes to one list stay in order
/// (each list is written by one command).
type Write = (u32, Vec<String>);

fn w(db: u32, args: &[&str]) -> Write {
    (db, args.iter().map(|a| a.to_string()).collect())
}

/// `cmd key` followed by `items`, split into commands of `chunk` items, so
/// that the chunks of one hash, set or sorted set can be shuffled.
fn chunked(db: u32, cmd: &str, key: &str, items: &[String], chunk: usize) -> Vec<Write> {
    items
        .chunks(chunk)
        .map(|c| {
            let mut args = vec![cmd.to_string(), key.to_string()];
            args.extend_from_slice(c);
            (db, args)
        })
        .collect()
}

/// Strings, lists, small and large hashes, sets (integers, small, large) and
/// sorted sets, some with TTLs, in databases 0, 3 and 15.
fn dataset() -> Vec<Write> {
    let mut ws = Vec::new();
    for i in 0..40 {
        ws.push(w(0, &["SET", &format!("s:{i}"), &format!("value-{i}")]));
    }
    ws.push(w(0, &["SET", "s:int", "12345"]));
    ws.push(w(0, &["SET", "s:ttl", "expiring", "PXAT", FAR_MS]));
    ws.push(w(0, &["RPUSH", "l:small", "a", "b", "c"]));
    let big_list: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
    ws.extend(chunked(0, "RPUSH", "l:big", &big_list, 1000));
    let pairs = |n: usize, prefix: &str| -> Vec<String> {
        (0..n).flat_map(|i| [format!("{prefix}{i}"), format!("v{i}")]).collect()
    };
    ws.extend(chunked(0, "HSET", "h:small", &pairs(5, "f"), 2));
    ws.extend(chunked(0, "HSET", "h:big", &pairs(300, "f"), 20));
    ws.push(w(0, &["HSET", "h:long", "f", &"x".repeat(100)]));
    let ints: Vec<String> = (0..100).map(|i| (i * 7).to_string()).collect();
    ws.extend(chunked(0, "SADD", "st:ints", &ints, 10));
    ws.push(w(0, &["SADD", "st:small", "apple", "pear", "42"]));
    let members: Vec<String> = (0..600).map(|i| format!("m{i}")).collect();
    ws.extend(chunked(0, "SADD", "st:big", &members, 50));
    let scored = |n: usize| -> Vec<String> { (0..n).flat_map(|i| [(i % 17).to_string(), format!("z{i}")]).collect() };
    ws.extend(chunked(0, "ZADD", "z:small", &scored(5), 2));
    ws.extend(chunked(0, "ZADD", "z:big", &scored(300), 20));
    // The same names in another database, with other values.
    ws.push(w(3, &["SET", "s:1", "other"]));
    ws.push(w(3, &["RPUSH", "l:small", "c", "b", "a"]));
    ws.extend(chunked(15, "HSET", "h:small", &pairs(5, "f"), 4));
    ws
}

/// Keys holding the same contents as `encoded()` writes, in the smallest
/// encodings.
fn plain_encodings() -> Vec<Write> {
    vec![
        w(0, &["HSET", "e:hash", "f1", "v1", "f2", "v2"]),
        w(0, &["SADD", "e:set", "1", "2", "3"]),
        w(0, &["ZADD", "e:zset", "1", "a", "2", "b"]),
    ]
}

/// The contents of `plain_encodings()`, reached through large encodings
/// (a table keeps its encoding when it shrinks, here as in Redis).
fn encoded() -> Vec<Write> {
    // More entries than any small encoding holds, in Redis (512) as here (128).
    let junk: Vec<String> = (0..700).map(|i| format!("junk{i}")).collect();
    let junk_pairs: Vec<String> = junk.iter().flat_map(|j| [j.clone(), "x".into()]).collect();
    let junk_scored: Vec<String> = junk.iter().flat_map(|j| ["9".to_string(), j.clone()]).collect();
    let mut ws = Vec::new();
    ws.extend(chunked(0, "HSET", "e:hash", &junk_pairs, 1400));
    ws.push(w(0, &["HSET", "e:hash", "f2", "v2", "f1", "v1"]));
    ws.extend(chunked(0, "HDEL", "e:hash", &junk, 700));
    ws.extend(chunked(0, "SADD", "e:set", &junk, 700));
    ws.push(w(0, &["SADD", "e:set", "3", "1", "2"]));
    ws.extend(chunked(0, "SREM", "e:set", &junk, 700));
    ws.extend(chunked(0, "ZADD", "e:zset", &junk_scored, 1400));
    ws.push(w(0, &["ZADD", "e:zset", "2", "b", "1", "a"]));
    ws.extend(chunked(0, "ZREM", "e:zset", &junk, 700));
    ws
}

fn load(c: &mut redis::Connection, writes: &[Write]) {
    for (db, args) in writes {
        select(c, *db);
        let r = cmd_vec(c, args);
        assert!(!r.is_error(), "{args:?}: {r:?}");
    }
    select(c, 0);
}

/// `writes` in a seeded random order.
fn shuffled(mut writes: Vec<Write>, seed: u64) -> Vec<Write> {
    fastrand::Rng::with_seed(seed).shuffle(&mut writes);
    writes
}

const DB0_KEYS: &[&str] = &[
    "s:0", "s:1", "s:39", "s:int", "s:ttl", "l:small", "l:big", "h:small", "h:big", "h:long", "st:ints", "st:small",
    "st:big", "z:small", "z:big", "e:hash", "e:set", "e:zset", "missing",
];

#[test]
fn one_and_four_shards_agree_whatever_the_order_and_encoding() {
    let (one, four) = (Server::start_with(1, &DEBUG_ON), Server::start_with(4, &DEBUG_ON));
    let (mut a, mut b) = (one.client(), four.client());
    load(&mut a, &dataset());
    load(&mut a, &encoded());
    load(&mut b, &shuffled(dataset(), 7));
    load(&mut b, &plain_encodings());
    for key in ["e:hash", "e:set", "e:zset"] {
        let (ea, eb) = (cmd(&mut a, &["OBJECT", "ENCODING", key]), cmd(&mut b, &["OBJECT", "ENCODING", key]));
        assert_ne!(ea, eb, "{key} should be held in different encodings");
    }
    for db in [0, 3, 15] {
        select(&mut a, db);
        select(&mut b, db);
        assert_eq!(cmd(&mut a, &["DBSIZE"]), cmd(&mut b, &["DBSIZE"]), "db {db}");
    }
    select(&mut a, 0);
    select(&mut b, 0);

    let whole = digest(&mut a);
    assert_ne!(whole, ZEROS);
    assert_eq!(digest(&mut b), whole, "same data, different shard counts");
    let values = digest_values(&mut a, DB0_KEYS);
    assert_eq!(digest_values(&mut b, DB0_KEYS), values);
    assert_eq!(values.last().map(String::as_str), Some(ZEROS), "a missing key");
    assert!(values[..values.len() - 1].iter().all(|v| v != ZEROS));
    select(&mut a, 3);
    select(&mut b, 3);
    let in_db3 = digest_values(&mut a, &["s:1", "l:small"]);
    assert_eq!(digest_values(&mut b, &["s:1", "l:small"]), in_db3);
    assert_ne!(in_db3, vec![values[1].clone(), values[5].clone()], "other values in db 3");
    select(&mut a, 0);
    select(&mut b, 0);

    // Any single change shows, and undoing it brings the digest back.
    let changes: &[(&[&str], &[&str])] = &[
        (&["LSET", "l:big", "500", "changed"], &["LSET", "l:big", "500", "item-500"]),
        (&["HSET", "h:big", "f17", "changed"], &["HSET", "h:big", "f17", "v17"]),
        (&["HSET", "h:small", "f1", "changed"], &["HSET", "h:small", "f1", "v1"]),
        (&["SREM", "st:ints", "14"], &["SADD", "st:ints", "14"]),
        (&["ZINCRBY", "z:big", "1", "z3"], &["ZINCRBY", "z:big", "-1", "z3"]),
        (&["PEXPIREAT", "h:small", FAR_MS], &["PERSIST", "h:small"]),
        (&["PERSIST", "s:ttl"], &["PEXPIREAT", "s:ttl", FAR_MS]),
        (&["APPEND", "s:0", "!"], &["SET", "s:0", "value-0"]),
    ];
    for (change, undo) in changes {
        assert!(!cmd(&mut b, change).is_error(), "{change:?}");
        assert_ne!(digest(&mut b), whole, "{change:?} must change the digest");
        cmd(&mut b, undo);
        assert_eq!(digest(&mut b), whole, "{undo:?} must restore the digest");
    }
    // A key moved to another database, and back.
    assert_eq!(cmd(&mut b, &["MOVE", "s:2", "5"]), int(1));
    assert_ne!(digest(&mut b), whole, "MOVE must change the digest");
    select(&mut b, 5);
    assert_eq!(cmd(&mut b, &["MOVE", "s:2", "0"]), int(1));
    assert_eq!(digest(&mut b), whole);
    select(&mut b, 0);
    // A value of another type with the same text.
    assert_eq!(cmd(&mut b, &["DEL", "s:int"]), int(1));
    assert_eq!(cmd(&mut b, &["RPUSH", "s:int", "12345"]), int(1));
    assert_ne!(digest(&mut b), whole, "a type change must change the digest");
    assert_ne!(digest_values(&mut b, &["s:int"])[0], values[3]);
    assert_eq!(cmd(&mut b, &["DEL", "s:int"]), int(1));
    assert_eq!(cmd(&mut b, &["SET", "s:int", "12345"]), ok());
    assert_eq!(digest(&mut b), whole);

    if !one.is_reference() {
        // coreshard mixes in the exact expire time (Redis only whether there is one).
        assert_eq!(cmd(&mut b, &["PEXPIREAT", "s:ttl", "4102444800001"]), int(1));
        assert_ne!(digest(&mut b), whole, "another expire time must change the digest");
    }

    for c in [&mut a, &mut b] {
        assert_eq!(cmd(c, &["FLUSHALL"]), ok());
        assert_eq!(digest(c), ZEROS);
    }
}

shard_tests! {
    extra = ["--enable-debug-command", "yes"];

    fn empty_is_zeros_and_writes_change_it(srv) {
        let mut c = srv.client();
        assert_eq!(digest(&mut c), ZEROS);
        assert_eq!(digest_values(&mut c, &["nothing", "here"]), vec![ZEROS, ZEROS]);
        assert_eq!(cmd(&mut c, &["DEBUG", "DIGEST-VALUE"]), arr(vec![]));
        assert_eq!(cmd(&mut c, &["SET", "k", "v"]), ok());
        let one = digest(&mut c);
        assert_ne!(one, ZEROS);
        assert_eq!(cmd(&mut c, &["SET", "k", "w"]), ok());
        let other = digest(&mut c);
        assert_ne!(other, one);
        assert_eq!(cmd(&mut c, &["SET", "k", "v"]), ok());
        assert_eq!(digest(&mut c), one, "the digest depends on the contents only");
        // An empty database other than 0 changes nothing; a key there does.
        select(&mut c, 9);
        assert_eq!(digest(&mut c), one);
        assert_eq!(cmd(&mut c, &["SET", "k", "v"]), ok());
        assert_ne!(digest(&mut c), one);
        assert_eq!(cmd(&mut c, &["FLUSHDB"]), ok());
        assert_eq!(digest(&mut c), one);
        select(&mut c, 0);
        assert_eq!(cmd(&mut c, &["FLUSHALL"]), ok());
        assert_eq!(digest(&mut c), ZEROS);
    }

    fn digest_value_ignores_the_key_name(srv) {
        let mut c = srv.client();
        // Keys on different shards of a 4-shard server.
        expect_all(&mut c, &[
            (&["RPUSH", "list:a", "x", "y", "z"], int(3)),
            (&["RPUSH", "list:b", "x", "y", "z"], int(3)),
            (&["RPUSH", "list:c", "z", "y", "x"], int(3)),
            (&["HSET", "hash:a", "f", "v", "g", "w"], int(2)),
            (&["HSET", "hash:b", "g", "w", "f", "v"], int(2)),
        ]);
        let d = digest_values(&mut c, &["list:a", "list:b", "list:c", "hash:a", "hash:b", "nope"]);
        assert_eq!(d[0], d[1], "the same list under two names");
        assert_ne!(d[0], d[2], "lists are ordered");
        assert_eq!(d[3], d[4], "hash fields have no order");
        assert_eq!(d[5], ZEROS);
        assert!(d[..5].iter().all(|v| v != ZEROS));
        // The dataset digest does see the names.
        let whole = digest(&mut c);
        assert_eq!(cmd(&mut c, &["RENAME", "list:a", "list:d"]), ok());
        assert_ne!(digest(&mut c), whole);
        assert_eq!(digest_values(&mut c, &["list:d"]), vec![d[0].clone()]);
    }

    fn expired_keys_leave_the_digest(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "short", "v", "PX", "50"]), ok());
        assert_ne!(digest(&mut c), ZEROS);
        assert!(wait_until(Duration::from_secs(5), || digest(&mut c) == ZEROS), "an expired key still counts");
        assert!(wait_until(Duration::from_secs(5), || digest_values(&mut c, &["short"]) == vec![ZEROS]));
    }

    fn help_and_errors_are_redis_s(srv) {
        let mut c = srv.client();
        let help = cmd(&mut c, &["DEBUG", "HELP"]).items();
        let lines: Vec<String> = help.iter().map(Reply::text).collect();
        assert_eq!(lines[0], "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        for want in ["DIGEST", "DIGEST-VALUE <key> [<key> ...]", "HELP"] {
            assert!(lines.iter().any(|l| l == want), "DEBUG HELP lacks {want}: {lines:?}");
        }
        expect_all(&mut c, &[
            (&["DEBUG"], arity("debug")),
            (&["DEBUG", "NOSUCH"], err("ERR unknown subcommand or wrong number of arguments for 'NOSUCH'. Try DEBUG HELP.")),
            (&["DEBUG", "digest", "extra"], err("ERR unknown subcommand or wrong number of arguments for 'digest'. Try DEBUG HELP.")),
            (&["DEBUG", "HELP", "x"], err("ERR unknown subcommand or wrong number of arguments for 'HELP'. Try DEBUG HELP.")),
        ]);
        let mut raw = srv.raw();
        let reply = raw_roundtrip(&mut raw, b"*2\r\n$5\r\nDEBUG\r\n$4\r\n\xff\x00\r\n\r\n");
        assert!(reply.starts_with(b"-ERR unknown subcommand"), "garbage is refused: {reply:?}");
        let info = cmd(&mut c, &["COMMAND", "INFO", "debug"]).items();
        let info = info[0].items();
        assert_eq!(info[0], bulk("debug"));
        assert_eq!(info[1], int(-2));
        assert_eq!(sorted_texts(&info[2]), vec!["admin", "loading", "noscript", "stale"]);
        assert_eq!(&info[3..6], &[int(0), int(0), int(0)]);
        // Inside a transaction, too.
        assert_eq!(cmd(&mut c, &["SET", "k", "v"]), ok());
        let before = digest(&mut c);
        assert_eq!(cmd(&mut c, &["MULTI"]), ok());
        assert_eq!(cmd(&mut c, &["DEBUG", "DIGEST"]), status("QUEUED"));
        assert_eq!(cmd(&mut c, &["EXEC"]), arr(vec![status(&before)]));
    }
}
