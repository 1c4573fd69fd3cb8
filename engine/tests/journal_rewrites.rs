//! What each command logs in the journal: commands whose effect depends on
//! the clock or on chance are logged as their deterministic effect, exactly
//! in the form Redis 7 propagates them; a command that changes nothing logs
//! nothing.

mod common;

use common::{encoded, journal_since, run_str};
use coreshard_engine::{Keyspace, UnixMs};

const NOW: UnixMs = 1_700_000_000_000;

/// A keyspace logging everything, its journal past the first SELECT 0.
fn logged() -> Keyspace {
    let mut ks = Keyspace::new(2, coreshard_engine::slot::ShardSlots::all());
    ks.set_journal_enabled(true);
    ks.journal.append(0, [&b"PING"[..]]);
    ks
}

/// Runs the `setup` commands, then `cmd`, and returns what `cmd` logged.
fn logs(setup: &[&[&str]], cmd: &[&str]) -> Vec<u8> {
    let mut ks = logged();
    for s in setup {
        assert!(!run_str(&mut ks, 0, NOW, s).starts_with(b"-"), "{s:?}");
    }
    let from = ks.journal.end_lsn();
    run_str(&mut ks, 0, NOW, cmd);
    journal_since(&ks, from)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_logs(setup: &[&[&str]], cmd: &[&str], want: &[&[&str]]) {
    assert_eq!(text(&logs(setup, cmd)), text(&encoded(want)), "{cmd:?}");
}

const STRING: &[&str] = &["SET", "k", "v"];
const STRING_TTL: &[&str] = &["SET", "k", "v", "PXAT", "1700000100000"];

#[test]
fn expire_family_is_logged_as_pexpireat_with_the_absolute_time() {
    assert_logs(&[STRING], &["EXPIRE", "k", "10"], &[&["PEXPIREAT", "k", "1700000010000"]]);
    assert_logs(&[STRING], &["PEXPIRE", "k", "500", "NX"], &[&["PEXPIREAT", "k", "1700000000500", "NX"]]);
    assert_logs(&[STRING], &["EXPIREAT", "k", "1800000000"], &[&["PEXPIREAT", "k", "1800000000000"]]);
    assert_logs(&[STRING_TTL], &["expire", "k", "1000", "gt"], &[&["PEXPIREAT", "k", "1700001000000", "gt"]]);
    // Already absolute: as given.
    assert_logs(&[STRING], &["PEXPIREAT", "k", "1800000000000"], &[&["PEXPIREAT", "k", "1800000000000"]]);
    // A time already past deletes the key, and is logged as the deletion.
    assert_logs(&[STRING], &["EXPIRE", "k", "-1"], &[&["DEL", "k"]]);
    assert_logs(&[STRING], &["EXPIREAT", "k", "1600000000"], &[&["DEL", "k"]]);
    assert_logs(&[STRING], &["PEXPIREAT", "k", "1700000000000"], &[&["DEL", "k"]]);
    // Refused or missing: nothing.
    assert_logs(&[], &["EXPIRE", "k", "10"], &[]);
    assert_logs(&[STRING], &["EXPIRE", "k", "10", "XX"], &[]);
}

#[test]
fn set_with_an_expiry_is_logged_with_pxat() {
    assert_logs(&[], &["SET", "k", "v", "EX", "10"], &[&["SET", "k", "v", "PXAT", "1700000010000"]]);
    assert_logs(&[], &["SET", "k", "v", "PX", "100", "NX"], &[&["SET", "k", "v", "PXAT", "1700000000100"]]);
    assert_logs(
        &[STRING],
        &["SET", "k", "w", "XX", "EXAT", "1800000000", "GET"],
        &[&["SET", "k", "w", "PXAT", "1800000000000"]],
    );
    assert_logs(&[], &["set", "k", "v", "pxat", "1800000000001"], &[&["SET", "k", "v", "PXAT", "1800000000001"]]);
    assert_logs(&[], &["SETEX", "k", "10", "v"], &[&["SET", "k", "v", "PXAT", "1700000010000"]]);
    assert_logs(&[], &["PSETEX", "k", "10", "v"], &[&["SET", "k", "v", "PXAT", "1700000000010"]]);
    // A time already past: the key is gone at once, logged as its deletion.
    assert_logs(&[STRING], &["SET", "k", "v", "PXAT", "1600000000000"], &[&["DEL", "k"]]);
    assert_logs(&[STRING], &["SET", "k", "v", "EXAT", "1600000000", "GET"], &[&["DEL", "k"]]);
    // Without an expiry: as given, less GET (Redis drops it too).
    assert_logs(&[STRING_TTL], &["SET", "k", "w", "KEEPTTL"], &[&["SET", "k", "w", "KEEPTTL"]]);
    assert_logs(&[STRING], &["SET", "k", "w", "GET", "XX", "get"], &[&["SET", "k", "w", "XX"]]);
    assert_logs(&[], &["SET", "k", "v"], &[&["SET", "k", "v"]]);
    // Nothing done: nothing logged.
    assert_logs(&[STRING], &["SET", "k", "w", "NX", "EX", "10"], &[]);
}

#[test]
fn getex_is_logged_as_pexpireat_del_or_persist() {
    assert_logs(&[STRING], &["GETEX", "k", "EX", "10"], &[&["PEXPIREAT", "k", "1700000010000"]]);
    assert_logs(&[STRING], &["GETEX", "k", "PX", "10"], &[&["PEXPIREAT", "k", "1700000000010"]]);
    assert_logs(&[STRING], &["GETEX", "k", "EXAT", "1800000000"], &[&["PEXPIREAT", "k", "1800000000000"]]);
    assert_logs(&[STRING], &["GETEX", "k", "PXAT", "1800000000005"], &[&["PEXPIREAT", "k", "1800000000005"]]);
    assert_logs(&[STRING], &["GETEX", "k", "PXAT", "1600000000000"], &[&["DEL", "k"]]);
    assert_logs(&[STRING_TTL], &["GETEX", "k", "PERSIST"], &[&["PERSIST", "k"]]);
    assert_logs(&[STRING], &["GETEX", "k", "PERSIST"], &[]);
    assert_logs(&[STRING], &["GETEX", "k"], &[]);
}

#[test]
fn restore_with_a_relative_ttl_is_logged_with_the_absolute_time() {
    let mut ks = logged();
    run_str(&mut ks, 0, NOW, &["RPUSH", "src", "a", "b"]);
    let dump = run_str(&mut ks, 0, NOW, &["DUMP", "src"]);
    // The reply is a bulk string: `$n\r\n<payload>\r\n`.
    let start = dump.iter().position(|&b| b == b'\n').expect("a bulk") + 1;
    let payload = &dump[start..dump.len() - 2];
    // (command, what it logs)
    type Case<'a> = (&'a [&'a [u8]], &'a [&'a [u8]]);
    let cases: &[Case] = &[
        (&[b"RESTORE", b"k", b"5000", payload], &[b"RESTORE", b"k", b"1700000005000", payload, b"ABSTTL"]),
        (
            &[b"RESTORE", b"k", b"5000", payload, b"REPLACE", b"IDLETIME", b"10"],
            &[b"RESTORE", b"k", b"1700000005000", payload, b"REPLACE", b"IDLETIME", b"10", b"ABSTTL"],
        ),
        (&[b"RESTORE", b"k", b"0", payload, b"REPLACE"], &[b"RESTORE", b"k", b"0", payload, b"REPLACE"]),
        (
            &[b"RESTORE", b"k", b"1800000000000", payload, b"REPLACE", b"ABSTTL"],
            &[b"RESTORE", b"k", b"1800000000000", payload, b"REPLACE", b"ABSTTL"],
        ),
        // Already past with REPLACE: the old key is deleted, logged as DEL.
        (&[b"RESTORE", b"k", b"1600000000000", payload, b"REPLACE", b"ABSTTL"], &[b"DEL", b"k"]),
    ];
    for (cmd, want) in cases {
        let from = ks.journal.end_lsn();
        assert_eq!(common::run(&mut ks, 0, NOW, cmd), b"+OK\r\n");
        let mut expected = Vec::new();
        coreshard_engine::journal::encode_command(&mut expected, want.iter().copied());
        assert_eq!(text(&journal_since(&ks, from)), text(&expected));
    }
    // Past, with nothing to replace: nothing changed, nothing logged.
    let from = ks.journal.end_lsn();
    common::run(&mut ks, 0, NOW, &[b"RESTORE", b"k", b"1600000000000", payload, b"ABSTTL"]);
    assert_eq!(ks.journal.end_lsn(), from);
}

#[test]
fn float_increments_are_logged_as_the_value_they_gave() {
    assert_logs(&[], &["INCRBYFLOAT", "k", "0.1"], &[&["SET", "k", "0.1", "KEEPTTL"]]);
    assert_logs(
        &[&["SET", "k", "10.5", "EX", "100"]],
        &["INCRBYFLOAT", "k", "1e1"],
        &[&["SET", "k", "20.5", "KEEPTTL"]],
    );
    assert_logs(&[&["HSET", "h", "f", "1"]], &["HINCRBYFLOAT", "h", "f", "0.25"], &[&["HSET", "h", "f", "1.25"]]);
    assert_logs(&[], &["HINCRBYFLOAT", "h", "f", "-3"], &[&["HSET", "h", "f", "-3"]]);
    // Refused: nothing.
    assert_logs(&[STRING], &["INCRBYFLOAT", "k", "1"], &[]);
}

/// The members of a RESP set or array reply of bulks.
fn members(reply: &[u8]) -> Vec<String> {
    text(reply).split("\r\n").filter(|l| !l.is_empty() && !l.starts_with(['*', '$', '~'])).map(String::from).collect()
}

#[test]
fn spop_is_logged_as_srem_of_the_members_popped_or_del() {
    let mut ks = logged();
    run_str(&mut ks, 0, NOW, &["SADD", "s", "a", "b", "c", "d", "e"]);
    let from = ks.journal.end_lsn();
    let one = members(&run_str(&mut ks, 0, NOW, &["SPOP", "s"]));
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["SREM", "s", &one[0]]])));
    let from = ks.journal.end_lsn();
    let two = members(&run_str(&mut ks, 0, NOW, &["SPOP", "s", "2"]));
    assert_eq!(two.len(), 2);
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["SREM", "s", &two[0], &two[1]]])));
    let from = ks.journal.end_lsn();
    run_str(&mut ks, 0, NOW, &["SPOP", "s", "0"]);
    assert_eq!(ks.journal.end_lsn(), from, "SPOP 0 changes nothing");
    assert_eq!(members(&run_str(&mut ks, 0, NOW, &["SPOP", "s", "10"])).len(), 2);
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["DEL", "s"]])), "the whole set went");
    let from = ks.journal.end_lsn();
    run_str(&mut ks, 0, NOW, &["SPOP", "s"]);
    assert_eq!(ks.journal.end_lsn(), from, "a missing set changes nothing");

    // Many members go in SREMs of at most 1024 each, as Redis batches them.
    let mut add = vec!["SADD".to_string(), "big".into()];
    add.extend((0..5000).map(|i| format!("m{i}")));
    run_str(&mut ks, 0, NOW, &add.iter().map(String::as_str).collect::<Vec<_>>());
    let from = ks.journal.end_lsn();
    let popped = members(&run_str(&mut ks, 0, NOW, &["SPOP", "big", "3000"]));
    let logged = common::parse_stream(&journal_since(&ks, from));
    assert_eq!(logged.iter().map(|c| c.len() - 2).collect::<Vec<_>>(), vec![1024, 1024, 952]);
    let removed: Vec<String> = logged
        .iter()
        .inspect(|c| assert_eq!(&c[..2], &[b"SREM".to_vec(), b"big".to_vec()]))
        .flat_map(|c| c[2..].iter().map(|m| text(m)))
        .collect();
    assert_eq!(removed, popped);
}

#[test]
fn blocking_and_multi_key_pops_are_logged_as_plain_pops() {
    let list: &[&str] = &["RPUSH", "l", "a", "b", "c"];
    assert_logs(&[list], &["BLPOP", "x", "l", "0"], &[&["LPOP", "l"]]);
    assert_logs(&[list], &["BRPOP", "l", "1.5"], &[&["RPOP", "l"]]);
    assert_logs(&[list], &["BLMOVE", "l", "d", "LEFT", "RIGHT", "0"], &[&["LMOVE", "l", "d", "LEFT", "RIGHT"]]);
    assert_logs(&[list], &["BRPOPLPUSH", "l", "d", "0"], &[&["RPOPLPUSH", "l", "d"]]);
    assert_logs(&[list], &["BLMPOP", "0", "2", "x", "l", "LEFT", "COUNT", "5"], &[&["LPOP", "l", "3"]]);
    assert_logs(&[list], &["LMPOP", "1", "l", "RIGHT"], &[&["RPOP", "l", "1"]]);
    let zset: &[&str] = &["ZADD", "z", "1", "a", "2", "b", "3", "c"];
    assert_logs(&[zset], &["BZPOPMIN", "z", "0"], &[&["ZPOPMIN", "z"]]);
    assert_logs(&[zset], &["BZPOPMAX", "x", "z", "0"], &[&["ZPOPMAX", "z"]]);
    assert_logs(&[zset], &["BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"], &[&["ZPOPMAX", "z", "2"]]);
    assert_logs(&[zset], &["ZMPOP", "2", "x", "z", "MIN", "COUNT", "9"], &[&["ZPOPMIN", "z", "3"]]);
    // Plain pops are logged as themselves; a blocking pop that waits logs nothing.
    assert_logs(&[list], &["LPOP", "l", "2"], &[&["LPOP", "l", "2"]]);
    assert_logs(&[], &["BLPOP", "l", "0"], &[]);
    assert_logs(&[], &["BZMPOP", "0", "1", "z", "MIN"], &[]);
    // Refused by the destination's type: nothing.
    assert_logs(&[list, STRING], &["BLMOVE", "l", "k", "LEFT", "RIGHT", "0"], &[]);
}

#[test]
fn a_refused_command_logs_nothing_and_leaves_no_rewrite_behind() {
    let mut ks = logged();
    run_str(&mut ks, 0, NOW, &["SET", "k", "v"]);
    let from = ks.journal.end_lsn();
    for refused in [
        &["SET", "k", "v", "EX", "0"][..],
        &["LPUSH", "k", "x"],
        &["EXPIRE", "k", "abc"],
        &["INCR", "k"],
        &["GETEX", "k", "EX", "-1"],
        &["HINCRBYFLOAT", "k", "f", "1"],
    ] {
        assert!(run_str(&mut ks, 0, NOW, refused).starts_with(b"-"), "{refused:?}");
    }
    assert_eq!(ks.journal.end_lsn(), from);
    // A command that asked for a rewrite but changed nothing leaves nothing
    // for the next command: BLMOVE onto a string asked for LMOVE.
    run_str(&mut ks, 0, NOW, &["RPUSH", "l", "a"]);
    let from = ks.journal.end_lsn();
    assert!(run_str(&mut ks, 0, NOW, &["BLMOVE", "l", "k", "LEFT", "LEFT", "0"]).starts_with(b"-WRONGTYPE"));
    run_str(&mut ks, 0, NOW, &["APPEND", "k", "w"]);
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["APPEND", "k", "w"]])));
}
