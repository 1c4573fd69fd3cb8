//! Deletions in the journal: keys that expire (lazily, before the command
//! that found them, or by active expiry) and keys evicted are logged as DEL
//! in their database; a journal that is off records and keeps nothing.

mod common;

use common::{encoded, journal_since, run_str};
use coreshard_engine::keyspace::Eviction;
use coreshard_engine::{Keyspace, UnixMs};

const NOW: UnixMs = 1_700_000_000_000;

/// A keyspace logging everything, its journal past the first SELECT 0.
fn logged() -> Keyspace {
    let mut ks = Keyspace::new(2, coreshard_engine::slot::ShardSlots::all());
    ks.set_journal_enabled(true);
    ks.journal.append(0, [&b"PING"[..]]);
    ks
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_that_expire_are_logged_as_del_before_the_command_that_found_them() {
    let mut ks = logged();
    run_str(&mut ks, 0, NOW, &["SET", "k", "v", "PX", "100"]);
    run_str(&mut ks, 0, NOW, &["SET", "r", "v", "PX", "100"]);
    run_str(&mut ks, 1, NOW, &["SET", "k1", "v", "PX", "100"]);
    let later = NOW + 100;
    let from = ks.journal.end_lsn();
    // A read that reclaims a key logs the deletion alone.
    assert_eq!(run_str(&mut ks, 0, later, &["GET", "r"]), b"$-1\r\n");
    // A write logs it first, then itself.
    run_str(&mut ks, 0, later, &["LPUSH", "k", "x"]);
    // A key of another database is deleted there.
    run_str(&mut ks, 0, later, &["COPY", "k", "k1", "DB", "1"]);
    assert_eq!(
        text(&journal_since(&ks, from)),
        text(&encoded(&[
            &["SELECT", "0"],
            &["DEL", "r"],
            &["DEL", "k"],
            &["LPUSH", "k", "x"],
            &["SELECT", "1"],
            &["DEL", "k1"],
            &["SELECT", "0"],
            &["COPY", "k", "k1", "DB", "1"],
        ]))
    );
    // DEL of an expired key: only the expiry's DEL (the command removed nothing).
    run_str(&mut ks, 0, later, &["SET", "e", "v", "PX", "1"]);
    let from = ks.journal.end_lsn();
    assert_eq!(run_str(&mut ks, 0, later + 1, &["DEL", "e"]), b":0\r\n");
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["DEL", "e"]])));
}

#[test]
fn active_expiry_and_eviction_are_logged_as_del() {
    let mut ks = logged();
    run_str(&mut ks, 0, NOW, &["SET", "a", "1", "PX", "10"]);
    run_str(&mut ks, 1, NOW, &["SET", "b", "1", "PX", "10"]);
    run_str(&mut ks, 1, NOW, &["SET", "c", "1"]);
    let from = ks.journal.end_lsn();
    assert_eq!(ks.active_expire(NOW + 10, 1000), 2);
    assert_eq!(
        text(&journal_since(&ks, from)),
        text(&encoded(&[&["SELECT", "0"], &["DEL", "a"], &["SELECT", "1"], &["DEL", "b"]]))
    );
    let from = ks.journal.end_lsn();
    assert!(ks.evict_one(Eviction::AllKeysRandom, 5, NOW + 10));
    assert!(!ks.evict_one(Eviction::AllKeysRandom, 5, NOW + 10), "nothing left");
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["DEL", "c"]])));
    // Keys reclaimed outside any command are logged when asked.
    run_str(&mut ks, 0, NOW, &["SET", "d", "1", "PX", "10"]);
    let from = ks.journal.end_lsn();
    assert!(!ks.db(0).contains(b"d", NOW + 10));
    assert_eq!(ks.journal.end_lsn(), from);
    ks.log_pending_deletions();
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["DEL", "d"]])));
    // Still pending when databases swap, a deletion is logged in the
    // database it happened in, before the swap.
    run_str(&mut ks, 0, NOW, &["SET", "e", "1", "PX", "10"]);
    assert!(!ks.db(0).contains(b"e", NOW + 10));
    let from = ks.journal.end_lsn();
    run_str(&mut ks, 0, NOW + 10, &["SWAPDB", "0", "1"]);
    assert_eq!(text(&journal_since(&ks, from)), text(&encoded(&[&["DEL", "e"], &["SWAPDB", "0", "1"]])));
}

#[test]
fn a_disabled_journal_records_nothing_and_keeps_nothing_for_later() {
    let mut ks = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
    run_str(&mut ks, 0, NOW, &["SET", "k", "v", "PX", "10"]);
    run_str(&mut ks, 0, NOW, &["SADD", "s", "a", "b"]);
    run_str(&mut ks, 0, NOW, &["SPOP", "s"]);
    assert_eq!(run_str(&mut ks, 0, NOW + 10, &["GET", "k"]), b"$-1\r\n");
    assert_eq!(ks.journal.end_lsn(), 0);
    // Nothing gathered while off comes out once on: no stale DEL, no SREM.
    ks.set_journal_enabled(true);
    run_str(&mut ks, 0, NOW, &["SET", "j", "v"]);
    assert_eq!(text(&journal_since(&ks, 0)), text(&encoded(&[&["SELECT", "0"], &["SET", "j", "v"]])));
    // A journal switched on directly is followed from the next command on.
    let mut ks = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
    ks.journal.set_enabled(true);
    run_str(&mut ks, 0, NOW, &["SET", "k", "v", "PXAT", "1700000000010"]);
    run_str(&mut ks, 0, NOW + 10, &["GET", "k"]);
    assert_eq!(
        text(&journal_since(&ks, 0)),
        text(&encoded(&[&["SELECT", "0"], &["SET", "k", "v", "PXAT", "1700000000010"], &["DEL", "k"]]))
    );
}
