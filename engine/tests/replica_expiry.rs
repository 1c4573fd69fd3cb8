//! A replica's two expiry modes, seen through commands: `Hide` while it
//! serves its own clients (expired keys are invisible, never deleted by the
//! replica itself), `Ignore` while it applies its primary's stream (nothing
//! counts as expired, and a time already past is applied as given, as
//! Redis's `checkAlreadyExpired` is false on a replica).

mod common;

use common::run_str;
use coreshard_engine::{ExpiryMode, Keyspace, UnixMs};

const NOW: UnixMs = 1_700_000_000_000;

fn keyspace(mode: ExpiryMode) -> Keyspace {
    let mut ks = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
    run_str(&mut ks, 0, NOW, &["SET", "k", "v", "PXAT", "1700000000100"]);
    run_str(&mut ks, 0, NOW, &["RPUSH", "l", "a", "b"]);
    run_str(&mut ks, 0, NOW, &["PEXPIRE", "l", "100"]);
    ks.set_expiry_mode(mode);
    ks
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn hide_mode_answers_as_if_expired_keys_were_gone_but_keeps_them() {
    let mut ks = keyspace(ExpiryMode::Hide);
    let later = NOW + 100;
    assert_eq!(text(run_str(&mut ks, 0, later, &["GET", "k"])), "$-1\r\n");
    assert_eq!(text(run_str(&mut ks, 0, later, &["EXISTS", "k", "l"])), ":0\r\n");
    assert_eq!(text(run_str(&mut ks, 0, later, &["TTL", "l"])), ":-2\r\n");
    assert_eq!(text(run_str(&mut ks, 0, later, &["LRANGE", "l", "0", "-1"])), "*0\r\n");
    assert_eq!(text(run_str(&mut ks, 0, later, &["KEYS", "*"])), "");
    assert_eq!(text(run_str(&mut ks, 0, later, &["RANDOMKEY"])), ":2\r\n$-1\r\n", "two stored, none live");
    assert_eq!(ks.active_expire(later, 1000), 0);
    // Nothing was deleted: DBSIZE still counts both, and nothing expired.
    assert_eq!(text(run_str(&mut ks, 0, later, &["DBSIZE"])), ":2\r\n");
    assert_eq!(ks.expired_keys(), 0);
    // The primary's DEL, applied in Ignore mode, removes them.
    ks.set_expiry_mode(ExpiryMode::Ignore);
    assert_eq!(text(run_str(&mut ks, 0, later, &["DEL", "k", "l"])), ":2\r\n");
    assert_eq!(text(run_str(&mut ks, 0, later, &["DBSIZE"])), ":0\r\n");
}

#[test]
fn ignore_mode_runs_commands_on_keys_the_primary_still_saw_live() {
    let mut ks = keyspace(ExpiryMode::Ignore);
    // The replica's clock is far ahead of the primary's.
    let ahead = NOW + 3_600_000;
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["APPEND", "k", "w"])), ":2\r\n");
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["PEXPIRETIME", "k"])), ":1700000000100\r\n", "TTL kept");
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["LPOP", "l"])), "$1\r\na\r\n");
    // Absolute times already past on this clock are applied as sent.
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["SET", "s", "v", "PXAT", "1700000000200"])), "+OK\r\n");
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["PEXPIREAT", "l", "1700000000300"])), ":1\r\n");
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["GETEX", "k", "PXAT", "1700000000400"])), "$2\r\nvw\r\n");
    let dump = run_str(&mut ks, 0, ahead, &["DUMP", "s"]);
    let payload = &dump[dump.iter().position(|&b| b == b'\n').expect("a bulk") + 1..dump.len() - 2];
    let restore: &[&[u8]] = &[b"RESTORE", b"r", b"1700000000500", payload, b"ABSTTL"];
    assert_eq!(text(common::run(&mut ks, 0, ahead, restore)), "+OK\r\n");
    for (key, at) in [("s", "200"), ("l", "300"), ("k", "400"), ("r", "500")] {
        let got = text(run_str(&mut ks, 0, ahead, &["PEXPIRETIME", key]));
        assert_eq!(got, format!(":1700000000{at}\r\n"), "{key}");
    }
    assert_eq!(ks.active_expire(ahead, 1000), 0);
    assert_eq!(ks.expired_keys(), 0);
    // Serving clients again (Hide), those keys are expired on this clock.
    ks.set_expiry_mode(ExpiryMode::Hide);
    assert_eq!(text(run_str(&mut ks, 0, ahead, &["EXISTS", "s", "l", "k", "r"])), ":0\r\n");
    assert_eq!(text(run_str(&mut ks, 0, NOW, &["EXISTS", "s", "l", "k", "r"])), ":4\r\n");
}

#[test]
fn a_primary_deletes_for_a_time_already_past() {
    let mut ks = keyspace(ExpiryMode::Delete);
    assert_eq!(text(run_str(&mut ks, 0, NOW, &["SET", "s", "v", "PXAT", "1600000000000"])), "+OK\r\n");
    assert_eq!(text(run_str(&mut ks, 0, NOW, &["PEXPIREAT", "l", "1600000000000"])), ":1\r\n");
    assert_eq!(text(run_str(&mut ks, 0, NOW, &["EXISTS", "s", "l"])), ":0\r\n");
    assert_eq!(text(run_str(&mut ks, 0, NOW + 100, &["GET", "k"])), "$-1\r\n");
    assert_eq!(text(run_str(&mut ks, 0, NOW + 100, &["DBSIZE"])), ":0\r\n");
}
