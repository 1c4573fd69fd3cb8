//! Key expiry: lazy (on access) and active (background reclaim). Every wait is
//! a poll with a deadline.

#[macro_use]
mod common;

use common::*;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until `key` is gone as seen by GET (lazy expiry on access).
fn wait_gone(c: &mut redis::Connection, key: &str) {
    assert!(wait_until(DEADLINE, || cmd(c, &["GET", key]) == nil()), "{key} never expired");
}

shard_tests! {
    fn lazy_expiry(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "k", "v"], ok()),
            (&["PEXPIRE", "k", "20"], int(1)),
        ]);
        let pttl = cmd(&mut c, &["PTTL", "k"]).int();
        assert!(pttl == -2 || (0..=20).contains(&pttl), "PTTL {pttl}");
        wait_gone(&mut c, "k");
        expect_all(&mut c, &[
            (&["GET", "k"], nil()),
            (&["EXISTS", "k"], int(0)),
            (&["TTL", "k"], int(-2)),
            (&["PTTL", "k"], int(-2)),
            (&["TYPE", "k"], status("none")),
            (&["STRLEN", "k"], int(0)),
            (&["MGET", "k"], arr(vec![nil()])),
            (&["KEYS", "*"], arr(vec![])),
            (&["DBSIZE"], int(0)),
            // An expired key behaves as missing for writes too.
            (&["SETNX", "k", "new"], int(1)),
            (&["GET", "k"], bulk("new")),
            (&["TTL", "k"], int(-1)),
        ]);
        // INCR on an expired counter starts again from 0.
        expect_all(&mut c, &[
            (&["SET", "n", "41", "PX", "20"], ok()),
        ]);
        assert!(
            wait_until(DEADLINE, || cmd(&mut c, &["EXISTS", "n"]) == int(0)),
            "n never expired"
        );
        assert_eq!(cmd(&mut c, &["INCR", "n"]), int(1));
        // Hashes expire too; HSET on an expired hash starts a new one.
        expect_all(&mut c, &[
            (&["HSET", "h", "a", "1", "b", "2"], int(2)),
            (&["PEXPIRE", "h", "20"], int(1)),
        ]);
        assert!(
            wait_until(DEADLINE, || cmd(&mut c, &["HLEN", "h"]) == int(0)),
            "h never expired"
        );
        expect_all(&mut c, &[
            (&["HGETALL", "h"], arr(vec![])),
            (&["HGET", "h", "a"], nil()),
            (&["HSET", "h", "c", "3"], int(1)),
            (&["HGETALL", "h"], bulks(&["c", "3"])),
            (&["TTL", "h"], int(-1)),
        ]);
        // SET ... PX via SET options, and SETEX / PSETEX.
        expect_all(&mut c, &[
            (&["SET", "a", "1", "PX", "30"], ok()),
            (&["PSETEX", "b", "30", "1"], ok()),
            (&["SET", "c", "1", "PXAT", &(now_ms() + 30).to_string()], ok()),
        ]);
        for k in ["a", "b", "c"] {
            wait_gone(&mut c, k);
        }
    }

    fn ttl_removed_or_kept(srv) {
        let mut c = srv.client();
        // Keys that lost their TTL must survive past the original deadline;
        // "marker" (same TTL, untouched) shows when that deadline passed.
        expect_all(&mut c, &[
            (&["SET", "marker", "m", "PX", "50"], ok()),
            (&["SET", "overwritten", "v", "PX", "50"], ok()),
            (&["SET", "overwritten", "v2"], ok()),
            (&["SET", "persisted", "v", "PX", "50"], ok()),
            (&["PERSIST", "persisted"], int(1)),
            (&["SET", "getex", "v", "PX", "50"], ok()),
            (&["GETEX", "getex", "PERSIST"], bulk("v")),
            (&["SET", "getset", "v", "PX", "50"], ok()),
            (&["GETSET", "getset", "w"], bulk("v")),
            (&["SET", "extended", "v", "PX", "50"], ok()),
            (&["PEXPIRE", "extended", "100000"], int(1)),
            (&["SET", "kept", "v", "PX", "50"], ok()),
            (&["SET", "kept", "v2", "KEEPTTL"], ok()),
        ]);
        wait_gone(&mut c, "marker");
        wait_gone(&mut c, "kept");
        expect_all(&mut c, &[
            (&["GET", "overwritten"], bulk("v2")),
            (&["GET", "persisted"], bulk("v")),
            (&["GET", "getex"], bulk("v")),
            (&["GET", "getset"], bulk("w")),
            (&["GET", "extended"], bulk("v")),
            (&["DBSIZE"], int(5)),
        ]);
    }

    fn active_expiry(srv) {
        let mut c = srv.client();
        // 200 keys with a 50 ms TTL in db 0, 50 more in db 1, plus one
        // persistent key each; none is touched again.
        let mut p = redis::pipe();
        for i in 0..200 {
            p.cmd("SET").arg(format!("vol:{i}")).arg(i).arg("PX").arg(50);
        }
        p.cmd("SET").arg("stay").arg("1");
        p.cmd("SELECT").arg(1);
        for i in 0..50 {
            p.cmd("HSET").arg(format!("hvol:{i}")).arg("f").arg(i);
            p.cmd("PEXPIRE").arg(format!("hvol:{i}")).arg(50);
        }
        p.cmd("SET").arg("stay1").arg("1");
        p.cmd("SELECT").arg(0);
        for r in pipeline(&mut c, &p) {
            assert!(r == ok() || r == int(1), "{r:?}");
        }
        // DBSIZE counts keys not yet reclaimed: reaching 1 without any access
        // to the volatile keys proves background expiry.
        assert!(
            wait_until(DEADLINE, || cmd(&mut c, &["DBSIZE"]) == int(1)),
            "db0 never shrank to 1 key: DBSIZE={:?}",
            cmd(&mut c, &["DBSIZE"])
        );
        let mut c1 = srv.client();
        assert_eq!(cmd(&mut c1, &["SELECT", "1"]), ok());
        assert!(
            wait_until(DEADLINE, || cmd(&mut c1, &["DBSIZE"]) == int(1)),
            "db1 never shrank to 1 key"
        );
        let ks = cmd(&mut c, &["INFO", "keyspace"]).text();
        let db0 = info_field(&ks, "db0").expect("db0 line");
        assert!(db0.starts_with("keys=1,expires=0,avg_ttl="), "{db0}");
        let db1 = info_field(&ks, "db1").expect("db1 line");
        assert!(db1.starts_with("keys=1,expires=0,avg_ttl="), "{db1}");
        let stats = cmd(&mut c, &["INFO", "stats"]).text();
        let expired: u64 = info_field(&stats, "expired_keys").unwrap().parse().unwrap();
        assert_eq!(expired, 250, "expired_keys");
        expect_all(&mut c, &[
            (&["GET", "stay"], bulk("1")),
            (&["KEYS", "*"], bulks(&["stay"])),
        ]);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}
