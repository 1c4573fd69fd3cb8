//! DUMP and RESTORE: every type round-trips through its payload, with TTLs
//! and options as Redis handles them. Payloads always come from the server
//! under test, so the same tests hold for redis-server (whose payload format
//! differs from coreshard's).

#[macro_use]
mod common;

use common::*;

fn dump(c: &mut redis::Connection, key: &str) -> Vec<u8> {
    match cmd(c, &["DUMP", key]) {
        Reply::Bulk(b) => b,
        other => panic!("DUMP {key}: {other:?}"),
    }
}

shard_tests! {
    fn every_type_round_trips(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "s", "hello"], ok()),
            (&["HSET", "h", "f1", "v1", "f2", "v2"], int(2)),
            (&["RPUSH", "l", "a", "b", "c"], int(3)),
            (&["SADD", "st", "x", "7", "y"], int(3)),
            (&["ZADD", "z", "1.5", "m1", "-3", "m2"], int(2)),
        ]);
        for key in ["s", "h", "l", "st", "z"] {
            let payload = dump(&mut c, key);
            let copy = format!("{key}:copy");
            assert_eq!(cmd_bin(&mut c, &[b"RESTORE", copy.as_bytes(), b"0", &payload]), ok(), "{key}");
        }
        expect_all(&mut c, &[
            (&["GET", "s:copy"], bulk("hello")),
            (&["HGET", "h:copy", "f2"], bulk("v2")),
            (&["LRANGE", "l:copy", "0", "-1"], bulks(&["a", "b", "c"])),
            (&["SCARD", "st:copy"], int(3)),
            (&["SISMEMBER", "st:copy", "7"], int(1)),
            (&["ZRANGE", "z:copy", "0", "-1", "WITHSCORES"], bulks(&["m2", "-3", "m1", "1.5"])),
            (&["TTL", "s:copy"], int(-1)),
            (&["DUMP", "missing"], nil()),
        ]);
    }

    fn restore_options_and_errors(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "k", "v"]), ok());
        let payload = dump(&mut c, "k");
        let restore = |c: &mut redis::Connection, args: &[&[u8]]| {
            let mut all: Vec<&[u8]> = vec![b"RESTORE"];
            all.extend_from_slice(args);
            cmd_bin(c, &all)
        };
        assert_eq!(restore(&mut c, &[b"k", b"0", &payload]), err("BUSYKEY Target key name already exists."));
        assert_eq!(restore(&mut c, &[b"k", b"0", &payload, b"REPLACE"]), ok());
        assert_eq!(restore(&mut c, &[b"t", b"100000", &payload]), ok());
        let pttl = cmd(&mut c, &["PTTL", "t"]).int();
        assert!((90_000..=100_000).contains(&pttl), "{pttl}");
        // ABSTTL in the past: OK, and the key is not there.
        assert_eq!(restore(&mut c, &[b"gone", b"1", &payload, b"ABSTTL"]), ok());
        assert_eq!(cmd(&mut c, &["EXISTS", "gone"]), int(0));
        let future = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 100_000).to_string();
        assert_eq!(restore(&mut c, &[b"abs", future.as_bytes(), &payload, b"ABSTTL"]), ok());
        assert!(cmd(&mut c, &["PTTL", "abs"]).int() > 90_000);
        assert_eq!(restore(&mut c, &[b"idle", b"0", &payload, b"IDLETIME", b"1000"]), ok());
        assert!(cmd(&mut c, &["OBJECT", "IDLETIME", "idle"]).int() >= 1000);
        // Errors, in Redis's order and words.
        assert_eq!(restore(&mut c, &[b"n", b"-1", &payload]), err("ERR Invalid TTL value, must be >= 0"));
        assert_eq!(restore(&mut c, &[b"n", b"x", &payload]), err(NOT_INT));
        assert_eq!(restore(&mut c, &[b"n", b"0", b"not a payload"]), err("ERR DUMP payload version or checksum are wrong"));
        let mut corrupt = payload.clone();
        corrupt[0] ^= 0x20;
        assert_eq!(restore(&mut c, &[b"n", b"0", &corrupt]), err("ERR DUMP payload version or checksum are wrong"));
        assert_eq!(restore(&mut c, &[b"n", b"0", &payload, b"FOO"]), err(SYNTAX));
        assert_eq!(restore(&mut c, &[b"n", b"0", &payload, b"IDLETIME", b"-1"]), err("ERR Invalid IDLETIME value, must be >= 0"));
        assert_eq!(restore(&mut c, &[b"n", b"0", &payload, b"FREQ", b"256"]), err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
        assert_eq!(restore(&mut c, &[b"n", b"0", &payload, b"IDLETIME", b"1", b"FREQ", b"1"]), err(SYNTAX));
        assert_eq!(cmd(&mut c, &["EXISTS", "n"]), int(0));
        assert_eq!(cmd(&mut c, &["RESTORE", "n", "0"]), arity("restore"));
    }
}
