//! MULTI/EXEC/DISCARD/WATCH/UNWATCH with Redis's replies, and atomicity of
//! commands over several shards: a concurrent reader never sees half of a
//! cross-shard MSET or EXEC. The atomicity tests widen the window between
//! shards on purpose (`debug-shard-hop-delay-us`) and prove that they catch
//! a server that runs such commands without their transaction
//! (`debug-multi-shard-atomic no`).

#[macro_use]
mod common;

use common::*;
use std::time::{Duration, Instant};

/// Keys that land on different shards of a 4-shard server (and anywhere on
/// Redis): no hash tags, spread over the slot space.
fn spread_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("spread:{i}")).collect()
}

shard_tests! {
    fn multi_exec_queues_and_runs_in_order(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["MULTI"], ok()),
            (&["SET", "a", "1"], status("QUEUED")),
            (&["INCR", "a"], status("QUEUED")),
            (&["LPUSH", "a", "x"], status("QUEUED")),
            (&["MSET", "b", "2", "c", "3"], status("QUEUED")),
            (&["MGET", "a", "b", "c", "nosuch"], status("QUEUED")),
            (&["PING"], status("QUEUED")),
        ]);
        let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
        assert_eq!(
            cmd(&mut c, &["EXEC"]),
            arr(vec![ok(), int(2), err(wrongtype), ok(), arr(vec![bulk("2"), bulk("2"), bulk("3"), nil()]), status("PONG")])
        );
        // An empty transaction.
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["EXEC"], arr(vec![]))]);
        // Blocking commands do not block inside a transaction.
        expect_all(&mut c, &[
            (&["RPUSH", "blist", "x"], int(1)),
            (&["MULTI"], ok()),
            (&["BLPOP", "nosuchlist", "0"], status("QUEUED")),
            (&["BLPOP", "blist", "0"], status("QUEUED")),
            (&["BZPOPMIN", "nosuchzset", "0"], status("QUEUED")),
            (&["EXEC"], arr(vec![nil(), bulks(&["blist", "x"]), nil()])),
        ]);
    }

    fn multi_errors(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["EXEC"], err("ERR EXEC without MULTI")),
            (&["DISCARD"], err("ERR DISCARD without MULTI")),
            (&["MULTI"], ok()),
            (&["MULTI"], err("ERR MULTI calls can not be nested")),
            (&["WATCH", "a"], err("ERR WATCH inside MULTI is not allowed")),
            (&["SET", "a", "1"], status("QUEUED")),
            // Neither error above discards the transaction.
            (&["EXEC"], arr(vec![ok()])),
            // Errors while queueing do.
            (&["MULTI"], ok()),
            (&["SET", "a", "2"], status("QUEUED")),
            (&["NOSUCHCOMMAND", "x"], err("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' ")),
            (&["GET"], arity("get")),
            (&["EXEC"], err("EXECABORT Transaction discarded because of previous errors.")),
            (&["GET", "a"], bulk("1")),
            (&["MULTI"], ok()),
            (&["SET", "a", "3"], status("QUEUED")),
            (&["DISCARD"], ok()),
            (&["GET", "a"], bulk("1")),
            (&["WATCH"], arity("watch")),
            (&["UNWATCH", "x"], arity("unwatch")),
        ]);
    }

    fn select_inside_multi_and_reset(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["MULTI"], ok()),
            (&["SELECT", "1"], status("QUEUED")),
            (&["SET", "k", "in-db-1"], status("QUEUED")),
            (&["SELECT", "0"], status("QUEUED")),
            (&["SET", "k", "in-db-0"], status("QUEUED")),
            (&["EXEC"], arr(vec![ok(), ok(), ok(), ok()])),
            (&["GET", "k"], bulk("in-db-0")),
            (&["SELECT", "1"], ok()),
            (&["GET", "k"], bulk("in-db-1")),
            (&["SELECT", "0"], ok()),
        ]);
        let mut r = srv.raw();
        assert_eq!(raw_cmd(&mut r, &["MULTI"]), ok());
        assert_eq!(raw_cmd(&mut r, &["SET", "k", "x"]), status("QUEUED"));
        assert_eq!(raw_cmd(&mut r, &["RESET"]), status("RESET"));
        assert_eq!(raw_cmd(&mut r, &["EXEC"]), err("ERR EXEC without MULTI"));
        assert_eq!(raw_cmd(&mut r, &["GET", "k"]), bulk("in-db-0"));
    }

    fn multi_over_every_shard(srv) {
        let mut c = srv.client();
        let keys = spread_keys(32);
        assert_eq!(cmd(&mut c, &["MULTI"]), ok());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(cmd(&mut c, &["SET", k, &i.to_string()]), status("QUEUED"));
        }
        assert_eq!(cmd(&mut c, &["DBSIZE"]), status("QUEUED"));
        assert_eq!(cmd(&mut c, &["DEL", &keys[0], &keys[1]]), status("QUEUED"));
        let exec = cmd(&mut c, &["EXEC"]).items();
        assert_eq!(exec.len(), 34);
        assert!(exec[..32].iter().all(|r| *r == ok()));
        assert_eq!(exec[32], int(32));
        assert_eq!(exec[33], int(2));
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(30));
        // FLUSHALL inside a transaction, with a write after it.
        expect_all(&mut c, &[
            (&["MULTI"], ok()),
            (&["FLUSHALL"], status("QUEUED")),
            (&["SET", &keys[5], "after"], status("QUEUED")),
            (&["EXEC"], arr(vec![ok(), ok()])),
            (&["DBSIZE"], int(1)),
            (&["GET", &keys[5]], bulk("after")),
        ]);
    }

    fn watch_aborts_exec_when_a_key_changed(srv) {
        let mut c = srv.client();
        let mut other = srv.client();
        let keys = spread_keys(8);
        for k in &keys {
            assert_eq!(cmd(&mut c, &["SET", k, "0"]), ok());
        }
        // Untouched: EXEC runs.
        let mut watch = vec!["WATCH"];
        watch.extend(keys.iter().map(|k| k.as_str()));
        assert_eq!(cmd(&mut c, &watch), ok());
        expect_all(&mut c, &[
            (&["MULTI"], ok()),
            (&["INCR", &keys[0]], status("QUEUED")),
            (&["EXEC"], arr(vec![int(1)])),
        ]);
        // EXEC forgot the watches: another client's write no longer matters.
        assert_eq!(cmd(&mut other, &["SET", &keys[3], "x"]), ok());
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["INCR", &keys[0]], status("QUEUED")), (&["EXEC"], arr(vec![int(2)]))]);
        // A write by another client to any watched key aborts EXEC.
        for i in [0, 3, 7] {
            assert_eq!(cmd(&mut c, &watch), ok());
            assert_eq!(cmd(&mut other, &["APPEND", &keys[i], "y"]), int(2));
            expect_all(&mut c, &[
                (&["MULTI"], ok()),
                (&["INCR", &keys[1]], status("QUEUED")),
                (&["EXEC"], Reply::Nil),
            ]);
        }
        assert_eq!(cmd(&mut c, &["GET", &keys[1]]), bulk("0"));
        // A write that changes nothing (SET NX on an existing key) does not.
        assert_eq!(cmd(&mut c, &["WATCH", &keys[2]]), ok());
        assert_eq!(cmd(&mut other, &["SET", &keys[2], "z", "NX"]), nil());
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["INCR", &keys[2]], status("QUEUED")), (&["EXEC"], arr(vec![int(1)]))]);
        // The client's own write aborts too; UNWATCH and DISCARD forget.
        assert_eq!(cmd(&mut c, &["WATCH", &keys[2]]), ok());
        assert_eq!(cmd(&mut c, &["INCR", &keys[2]]), int(2));
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["INCR", &keys[2]], status("QUEUED")), (&["EXEC"], Reply::Nil)]);
        assert_eq!(cmd(&mut c, &["WATCH", &keys[2]]), ok());
        assert_eq!(cmd(&mut c, &["UNWATCH"]), ok());
        assert_eq!(cmd(&mut other, &["INCR", &keys[2]]), int(3));
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["INCR", &keys[2]], status("QUEUED")), (&["EXEC"], arr(vec![int(4)]))]);
        // FLUSHALL breaks every watch, on every shard.
        assert_eq!(cmd(&mut c, &["WATCH", &keys[4]]), ok());
        assert_eq!(cmd(&mut other, &["FLUSHALL"]), ok());
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["PING"], status("QUEUED")), (&["EXEC"], Reply::Nil)]);
    }

    fn watch_of_a_key_that_expires(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "w", "1", "PX", "30"]), ok());
        assert_eq!(cmd(&mut c, &["WATCH", "w"]), ok());
        assert!(wait_until(Duration::from_secs(5), || cmd(&mut srv.client(), &["EXISTS", "w"]) == int(0)));
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["SET", "other", "1"], status("QUEUED")), (&["EXEC"], Reply::Nil)]);
        // Watching a missing key that stays missing: EXEC runs.
        assert_eq!(cmd(&mut c, &["WATCH", "w"]), ok());
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["EXISTS", "w"], status("QUEUED")), (&["EXEC"], arr(vec![int(0)]))]);
    }

    fn cross_shard_multi_key_commands(srv) {
        let mut c = srv.client();
        let keys = spread_keys(16);
        let mut mset = vec!["MSET".to_string()];
        for k in &keys {
            mset.push(k.clone());
            mset.push(format!("v-{k}"));
        }
        assert_eq!(cmd_vec(&mut c, &mset), ok());
        let mut mget = vec!["MGET".to_string()];
        mget.extend(keys.iter().cloned());
        assert_eq!(cmd_vec(&mut c, &mget), arr(keys.iter().map(|k| bulk(format!("v-{k}"))).collect()));
        // Pipelined: replies in order, later commands see earlier writes.
        let mut p = redis::pipe();
        p.cmd("MSET").arg(&keys[0]).arg("p1").arg(&keys[9]).arg("p2");
        p.cmd("GET").arg(&keys[0]);
        p.cmd("MGET").arg(&keys[9]).arg(&keys[0]);
        p.cmd("DEL").arg(&keys[0]).arg(&keys[9]).arg("missing");
        p.cmd("EXISTS").arg(&keys[0]).arg(&keys[9]);
        assert_eq!(
            pipeline(&mut c, &p),
            vec![ok(), bulk("p1"), arr(vec![bulk("p2"), bulk("p1")]), int(2), int(0)]
        );
    }
}

/// Runs `writes` writes of the value i to every key in `keys` (MSET when
/// `exec` is false, else MULTI/SET.../EXEC) while a reader MGETs them all,
/// and returns how many reads saw the keys at different values.
fn torn_reads(srv: &Server, keys: &[String], writes: usize, exec: bool) -> usize {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        // Connections spread over the shards: a reader on the writer's own
        // shard could not see a torn write that this checker must catch.
        let mut readers: Vec<_> = (0..READER_CONNECTIONS).map(|_| srv.client()).collect();
        let keys = keys.to_vec();
        std::thread::spawn(move || {
            let mut torn = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut turn = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let mut mget = vec!["MGET".to_string()];
                mget.extend(keys.iter().cloned());
                turn += 1;
                let c = &mut readers[turn % READER_CONNECTIONS];
                let values = cmd_vec(c, &mget).items();
                if values.windows(2).any(|w| w[0] != w[1]) {
                    torn += 1;
                }
            }
            torn
        })
    };
    let mut w = srv.client();
    for i in 0..writes {
        let v = i.to_string();
        if exec {
            assert_eq!(cmd(&mut w, &["MULTI"]), ok());
            for k in keys {
                assert_eq!(cmd(&mut w, &["SET", k, &v]), status("QUEUED"));
            }
            assert_eq!(cmd(&mut w, &["EXEC"]).items().len(), keys.len());
        } else {
            let mut mset = vec!["MSET".to_string()];
            for k in keys {
                mset.push(k.clone());
                mset.push(v.clone());
            }
            assert_eq!(cmd_vec(&mut w, &mset), ok());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().expect("reader thread")
}

/// Reader connections of the atomicity checker.
const READER_CONNECTIONS: usize = 8;

const HOP_DELAY: &[&str] = &["--debug-shard-hop-delay-us", "2000"];

#[test]
fn cross_shard_mset_and_exec_are_never_seen_half_done() {
    let srv = Server::start_with(4, HOP_DELAY);
    let keys = spread_keys(12);
    assert_eq!(torn_reads(&srv, &keys, 150, false), 0, "a reader saw half of an MSET");
    assert_eq!(torn_reads(&srv, &keys, 100, true), 0, "a reader saw half of an EXEC");
}

/// The same checker against a server that runs multi-shard commands without
/// their transaction: it must catch torn reads, or the test above proves nothing.
#[test]
fn the_atomicity_checker_catches_a_non_atomic_server() {
    let mut extra = HOP_DELAY.to_vec();
    extra.extend(["--debug-multi-shard-atomic", "no"]);
    let srv = Server::start_with(4, &extra);
    if srv.is_reference() {
        return;
    }
    let keys = spread_keys(12);
    assert!(torn_reads(&srv, &keys, 150, false) > 0, "the checker missed torn MSETs");
    assert!(torn_reads(&srv, &keys, 100, true) > 0, "the checker missed torn EXECs");
}

/// Sequential reads of single keys see a cross-shard write in one piece too:
/// once one key shows a write, every key written with it does.
#[test]
fn single_key_reads_after_a_cross_shard_write_see_all_of_it() {
    let srv = Server::start_with(4, HOP_DELAY);
    let keys = spread_keys(8);
    let mut setup = vec!["MSET".to_string()];
    for k in &keys {
        setup.push(k.clone());
        setup.push("-1".into());
    }
    assert_eq!(cmd_vec(&mut srv.client(), &setup), ok());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut c = srv.client();
        let keys = keys.clone();
        std::thread::spawn(move || {
            let mut stale = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let first: i64 = cmd(&mut c, &["GET", &keys[0]]).text().parse().unwrap_or(-1);
                for k in &keys[1..] {
                    let v: i64 = cmd(&mut c, &["GET", k]).text().parse().unwrap_or(-1);
                    if v < first {
                        stale += 1;
                    }
                }
            }
            stale
        })
    };
    let mut w = srv.client();
    for i in 0..100 {
        let mut mset = vec!["MSET".to_string()];
        for k in &keys {
            mset.push(k.clone());
            mset.push(i.to_string());
        }
        assert_eq!(cmd_vec(&mut w, &mset), ok());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(reader.join().expect("reader"), 0, "a key read after another showed an older write");
}

/// Two clients running conflicting cross-shard transactions on the same
/// keys in opposite key orders neither deadlock nor lose an increment.
#[test]
fn conflicting_transactions_do_not_deadlock() {
    let srv = Server::start_with(4, &[]);
    let keys = spread_keys(6);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut c = srv.client();
            let mut keys = keys.clone();
            if t % 2 == 1 {
                keys.reverse();
            }
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(cmd(&mut c, &["MULTI"]), ok());
                    for k in &keys {
                        assert_eq!(cmd(&mut c, &["INCR", k]), status("QUEUED"));
                    }
                    assert_eq!(cmd(&mut c, &["EXEC"]).items().len(), keys.len());
                }
            })
        })
        .collect();
    // Plain single-key writes on the same keys wait for the locks, in order.
    let plain: Vec<_> = (0..2)
        .map(|_| {
            let mut c = srv.client();
            let keys = keys.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let mut p = redis::pipe();
                    for k in &keys {
                        p.cmd("INCR").arg(k);
                    }
                    let replies = pipeline(&mut c, &p);
                    assert!(replies.iter().all(|r| matches!(r, Reply::Int(_))), "{replies:?}");
                }
            })
        })
        .collect();
    for t in threads.into_iter().chain(plain) {
        t.join().expect("client thread");
    }
    let mut c = srv.client();
    for k in &keys {
        assert_eq!(cmd(&mut c, &["GET", k]), bulk("1000"));
    }
}

shard_tests! {
    fn cross_shard_keyed_commands_inside_exec(srv) {
        // RENAME moves a value between shards, and the next command of the
        // transaction already sees it there.
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "spread:0", "v", "EX", "100"], ok()),
            (&["MULTI"], ok()),
            (&["RENAME", "spread:0", "spread:5"], status("QUEUED")),
            (&["GET", "spread:5"], status("QUEUED")),
            (&["APPEND", "spread:5", "w"], status("QUEUED")),
            (&["SMOVE", "spread:1", "spread:2", "x"], status("QUEUED")),
            (&["RENAME", "spread:5", "spread:9"], status("QUEUED")),
            (&["EXEC"], arr(vec![ok(), bulk("v"), int(2), int(0), ok()])),
            (&["MGET", "spread:0", "spread:5", "spread:9"], arr(vec![nil(), nil(), bulk("vw")])),
        ]);
        let ttl = cmd(&mut c, &["TTL", "spread:9"]).int();
        assert!(ttl > 0 && ttl <= 100, "{ttl}");
    }
}

/// A value renamed back and forth between shards, and set members moved
/// between them, while readers check that exactly one key holds the value
/// and no member is lost or doubled: the gathered commands are atomic.
#[test]
fn gathered_commands_are_never_seen_half_done() {
    let srv = Server::start_with(4, HOP_DELAY);
    let (a, b) = ("spread:0", "spread:5");
    let (s1, s2) = ("spread:1", "spread:2");
    let mut w = srv.client();
    assert_eq!(cmd(&mut w, &["SET", a, "value"]), ok());
    assert_eq!(cmd(&mut w, &["SADD", s1, "m1", "m2", "m3"]), int(3));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut readers: Vec<_> = (0..READER_CONNECTIONS).map(|_| srv.client()).collect();
        std::thread::spawn(move || {
            let (mut bad, mut turn) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                turn += 1;
                let c = &mut readers[turn % READER_CONNECTIONS];
                let present = cmd(c, &["MGET", a, b]).items().iter().filter(|v| **v != Reply::Nil).count();
                if present != 1 {
                    bad += 1;
                }
                assert_eq!(cmd(c, &["MULTI"]), ok());
                assert_eq!(cmd(c, &["SCARD", s1]), status("QUEUED"));
                assert_eq!(cmd(c, &["SCARD", s2]), status("QUEUED"));
                let total: i64 = cmd(c, &["EXEC"]).items().iter().map(Reply::int).sum();
                if total != 3 {
                    bad += 1;
                }
            }
            bad
        })
    };
    for i in 0..60 {
        let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
        assert_eq!(cmd(&mut w, &["RENAME", from, to]), ok());
        let (from, to) = if i % 2 == 0 { (s1, s2) } else { (s2, s1) };
        for m in ["m1", "m2", "m3"] {
            assert_eq!(cmd(&mut w, &["SMOVE", from, to, m]), int(1));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(reader.join().expect("reader"), 0, "a reader saw a move half done");
}

shard_tests! {
    fn client_list_shows_a_client_in_multi(srv) {
        let mut c = srv.client();
        let id = cmd(&mut c, &["CLIENT", "ID"]).int().to_string();
        expect_all(&mut c, &[(&["MULTI"], ok()), (&["SET", "a", "1"], status("QUEUED")), (&["GET", "a"], status("QUEUED"))]);
        let mut other = srv.client();
        let line = cmd(&mut other, &["CLIENT", "LIST", "ID", &id]).text();
        assert!(line.contains(" flags=x ") && line.contains(" multi=2 "), "{line}");
        assert_eq!(cmd(&mut c, &["DISCARD"]), ok());
        let line = cmd(&mut other, &["CLIENT", "LIST", "ID", &id]).text();
        assert!(line.contains(" flags=N ") && line.contains(" multi=-1 "), "{line}");
    }
}
