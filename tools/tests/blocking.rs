//! Blocking commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX
//! BZMPOP, and CLIENT UNBLOCK. Blocked clients talk raw RESP over their own
//! socket (a blocked call must not hold the connection the test polls on);
//! the test knows a client is blocked by polling INFO's blocked_clients, and
//! never sleeps to wait for the server. With 4 shards the keys of one
//! command share a {hash tag}, and wake-ups are pushed from several
//! connections, which the kernel spreads over the shards, so pushes cross
//! shards to reach the blocked client.

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a client may take to show up as blocked, or a reply to arrive.
const DEADLINE: Duration = Duration::from_secs(10);
/// Connections pushing in the cross-shard tests: with 4 shards, the chance
/// that all of them land on the blocked client's shard is 4^-8.
const PUSHERS: usize = 8;

const NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
const NEGATIVE: &str = "ERR timeout is negative";
const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// INFO clients' blocked_clients.
fn blocked_clients(c: &mut redis::Connection) -> i64 {
    let info = cmd(c, &["INFO", "clients"]).text();
    info_field(&info, "blocked_clients").and_then(|v| v.parse().ok()).expect("blocked_clients in INFO")
}

/// Polls INFO until exactly `n` clients are blocked.
fn wait_blocked(c: &mut redis::Connection, n: i64) {
    assert!(
        wait_until(DEADLINE, || blocked_clients(c) == n),
        "blocked_clients never became {n}: {}",
        blocked_clients(c)
    );
}

/// Sends a command on a raw connection without reading its reply.
fn send(s: &mut TcpStream, args: &[&str]) {
    s.write_all(&resp_cmd(args)).expect("write");
}

/// Reads one reply from a raw connection as its bytes.
fn recv_bytes(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    read_replies(s, &mut buf, 1).unwrap_or_else(|e| panic!("no reply: {e}"));
    buf
}

/// Reads one reply from a raw connection.
fn recv(s: &mut TcpStream) -> Reply {
    parse_reply(&recv_bytes(s))
}

/// Reads `n` replies from a raw connection.
fn recv_n(s: &mut TcpStream, n: usize) -> Vec<Reply> {
    let mut buf = Vec::new();
    read_replies(s, &mut buf, n).unwrap_or_else(|e| panic!("no reply: {e}"));
    let mut replies = Vec::new();
    let mut at = 0;
    while let Ok(Some(len)) = resp_reply_len(&buf[at..]) {
        replies.push(parse_reply(&buf[at..at + len]));
        at += len;
    }
    replies
}

/// Sends `args` from a new raw connection and waits until the server counts
/// `blocked` blocked clients; returns the connection.
fn block(srv: &Server, poll: &mut redis::Connection, args: &[&str], blocked: i64) -> TcpStream {
    let mut s = srv.raw();
    send(&mut s, args);
    wait_blocked(poll, blocked);
    s
}

shard_tests! {
    fn served_at_once_when_a_key_has_data(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["RPUSH", "{i}b", "1", "2", "3"], int(3)),
            // Keys are tried in argument order; missing ones are skipped.
            (&["BLPOP", "{i}a", "{i}b", "0"], bulks(&["{i}b", "1"])),
            (&["BRPOP", "{i}a", "{i}b", "1.5"], bulks(&["{i}b", "3"])),
            (&["BLMOVE", "{i}b", "{i}d", "LEFT", "RIGHT", "0"], bulk("2")),
            (&["EXISTS", "{i}b"], int(0)),
            (&["BRPOPLPUSH", "{i}d", "{i}b", "0"], bulk("2")),
            (&["LRANGE", "{i}b", "0", "-1"], bulks(&["2"])),
            (&["RPUSH", "{i}b", "3", "4"], int(3)),
            (&["BLMPOP", "0", "2", "{i}a", "{i}b", "RIGHT", "COUNT", "2"], arr(vec![bulk("{i}b"), bulks(&["4", "3"])])),
            (&["BLMPOP", "0", "1", "{i}b", "LEFT"], arr(vec![bulk("{i}b"), bulks(&["2"])])),
            (&["EXISTS", "{i}b"], int(0)),
            (&["ZADD", "{i}z", "1", "a", "2", "b", "3", "c"], int(3)),
            (&["BZPOPMIN", "{i}y", "{i}z", "0"], bulks(&["{i}z", "a", "1"])),
            (&["BZPOPMAX", "{i}z", "0"], bulks(&["{i}z", "c", "3"])),
            (&["BZMPOP", "0", "2", "{i}y", "{i}z", "MIN", "COUNT", "5"], arr(vec![bulk("{i}z"), arr(vec![bulks(&["b", "2"])])])),
            (&["EXISTS", "{i}z"], int(0)),
        ]);
    }

    fn a_push_from_another_connection_wakes_the_client(srv) {
        let mut poll = srv.client();
        let mut pushers: Vec<redis::Connection> = (0..PUSHERS).map(|_| srv.client()).collect();
        // One round per pusher, each on its own key, so keys, blocked clients
        // and pushers spread over the shards.
        for (i, p) in pushers.iter_mut().enumerate() {
            let key = format!("wake:{i}");
            let value = format!("v{i}");
            let mut b = block(srv, &mut poll, &["BLPOP", &key, "0"], 1);
            assert_eq!(cmd(p, &["RPUSH", &key, &value]), int(1));
            assert_eq!(recv(&mut b), bulks(&[&key, &value]));
            assert_eq!(cmd(p, &["EXISTS", &key]), int(0), "the element was popped");
            wait_blocked(&mut poll, 0);
            // The client runs commands again once served.
            assert_eq!(raw_cmd(&mut b, &["PING"]), status("PONG"));
        }
    }

    fn a_client_waits_on_several_keys_and_is_served_by_the_first_ready(srv) {
        let mut poll = srv.client();
        let mut b = block(srv, &mut poll, &["BRPOP", "{m}a", "{m}b", "{m}c", "0"], 1);
        let mut p = srv.client();
        assert_eq!(cmd(&mut p, &["RPUSH", "{m}c", "x", "y"]), int(2));
        assert_eq!(recv(&mut b), bulks(&["{m}c", "y"]));
        // A key named twice is served once.
        send(&mut b, &["BLPOP", "{m}d", "{m}d", "0"]);
        wait_blocked(&mut poll, 1);
        assert_eq!(cmd(&mut p, &["RPUSH", "{m}d", "1", "2"]), int(2));
        assert_eq!(recv(&mut b), bulks(&["{m}d", "1"]));
        assert_eq!(cmd(&mut p, &["LRANGE", "{m}d", "0", "-1"]), bulks(&["2"]));
        // BLMPOP takes up to COUNT elements from the list that became ready.
        send(&mut b, &["BLMPOP", "0", "2", "{m}e", "{m}f", "LEFT", "COUNT", "2"]);
        wait_blocked(&mut poll, 1);
        assert_eq!(cmd(&mut p, &["RPUSH", "{m}f", "1", "2", "3"]), int(3));
        assert_eq!(recv(&mut b), arr(vec![bulk("{m}f"), bulks(&["1", "2"])]));
    }

    fn clients_blocked_on_one_key_are_served_in_arrival_order(srv) {
        let mut poll = srv.client();
        let mut first = block(srv, &mut poll, &["BLPOP", "fifo", "0"], 1);
        let mut second = block(srv, &mut poll, &["BLPOP", "fifo", "0"], 2);
        let mut third = block(srv, &mut poll, &["BRPOP", "fifo", "0"], 3);
        let mut p = srv.client();
        assert_eq!(cmd(&mut p, &["RPUSH", "fifo", "a"]), int(1));
        assert_eq!(recv(&mut first), bulks(&["fifo", "a"]));
        wait_blocked(&mut poll, 2);
        // One push of two elements serves the next two, in order.
        assert_eq!(cmd(&mut p, &["RPUSH", "fifo", "b", "c"]), int(2));
        assert_eq!(recv(&mut second), bulks(&["fifo", "b"]));
        assert_eq!(recv(&mut third), bulks(&["fifo", "c"]));
        wait_blocked(&mut poll, 0);
        assert_eq!(cmd(&mut p, &["EXISTS", "fifo"]), int(0));
    }

    fn a_blmove_push_wakes_the_client_blocked_on_its_destination(srv) {
        let mut poll = srv.client();
        let mut mover = block(srv, &mut poll, &["BLMOVE", "{c}src", "{c}dst", "RIGHT", "LEFT", "0"], 1);
        let mut popper = block(srv, &mut poll, &["BLPOP", "{c}dst", "0"], 2);
        let mut p = srv.client();
        assert_eq!(cmd(&mut p, &["RPUSH", "{c}src", "x"]), int(1));
        assert_eq!(recv(&mut mover), bulk("x"));
        assert_eq!(recv(&mut popper), bulks(&["{c}dst", "x"]));
        wait_blocked(&mut poll, 0);
        expect_all(&mut p, &[(&["EXISTS", "{c}src"], int(0)), (&["EXISTS", "{c}dst"], int(0))]);
        // BRPOPLPUSH into a list another BRPOPLPUSH waits on: a chain of two moves.
        let mut a = block(srv, &mut poll, &["BRPOPLPUSH", "{c}one", "{c}two", "0"], 1);
        let mut b = block(srv, &mut poll, &["BRPOPLPUSH", "{c}two", "{c}three", "0"], 2);
        assert_eq!(cmd(&mut p, &["LPUSH", "{c}one", "y"]), int(1));
        assert_eq!(recv(&mut a), bulk("y"));
        assert_eq!(recv(&mut b), bulk("y"));
        assert_eq!(cmd(&mut p, &["LRANGE", "{c}three", "0", "-1"]), bulks(&["y"]));
    }

    fn sorted_set_pops_block_until_a_member_arrives(srv) {
        let mut poll = srv.client();
        let mut p = srv.client();
        let mut min = block(srv, &mut poll, &["BZPOPMIN", "{z}a", "{z}b", "0"], 1);
        assert_eq!(cmd(&mut p, &["ZADD", "{z}b", "2.5", "m", "1", "n"]), int(2));
        assert_eq!(recv(&mut min), bulks(&["{z}b", "n", "1"]));
        let mut max = block(srv, &mut poll, &["BZPOPMAX", "{z}c", "0"], 1);
        assert_eq!(cmd(&mut p, &["ZADD", "{z}c", "1", "x", "3", "y"]), int(2));
        assert_eq!(recv(&mut max), bulks(&["{z}c", "y", "3"]));
        let mut mpop = block(srv, &mut poll, &["BZMPOP", "0", "2", "{z}d", "{z}e", "MAX", "COUNT", "2"], 1);
        assert_eq!(cmd(&mut p, &["ZADD", "{z}e", "1", "a", "2", "b", "3", "c"]), int(3));
        assert_eq!(recv(&mut mpop), arr(vec![bulk("{z}e"), arr(vec![bulks(&["c", "3"]), bulks(&["b", "2"])])]));
        assert_eq!(cmd(&mut p, &["ZRANGE", "{z}e", "0", "-1"]), bulks(&["a"]));
        // A client blocked for a sorted set ignores a list at its key, and
        // the reverse; each is served once its type arrives.
        let mut zwait = block(srv, &mut poll, &["BZPOPMIN", "{z}k", "0"], 1);
        let mut lwait = block(srv, &mut poll, &["BLPOP", "{z}l", "0"], 2);
        assert_eq!(cmd(&mut p, &["RPUSH", "{z}k", "list"]), int(1));
        assert_eq!(cmd(&mut p, &["ZADD", "{z}l", "1", "zset"]), int(1));
        expect_all(&mut p, &[
            (&["LRANGE", "{z}k", "0", "-1"], bulks(&["list"])),
            (&["ZRANGE", "{z}l", "0", "-1"], bulks(&["zset"])),
        ]);
        assert_eq!(blocked_clients(&mut poll), 2);
        expect_all(&mut p, &[
            (&["DEL", "{z}k", "{z}l"], int(2)),
            (&["ZADD", "{z}k", "7", "member"], int(1)),
            (&["RPUSH", "{z}l", "element"], int(1)),
        ]);
        assert_eq!(recv(&mut zwait), bulks(&["{z}k", "member", "7"]));
        assert_eq!(recv(&mut lwait), bulks(&["{z}l", "element"]));
    }

    fn resp3_replies(srv) {
        let mut poll = srv.client();
        let mut b = srv.raw();
        let hello = raw_roundtrip(&mut b, &resp_cmd(&["HELLO", "3"]));
        assert!(hello.starts_with(b"%"), "{:?}", String::from_utf8_lossy(&hello));
        send(&mut b, &["BZPOPMIN", "r3", "0"]);
        wait_blocked(&mut poll, 1);
        assert_eq!(cmd(&mut poll, &["ZADD", "r3", "1.5", "m"]), int(1));
        assert_eq!(recv_bytes(&mut b), b"*3\r\n$2\r\nr3\r\n$1\r\nm\r\n,1.5\r\n");
        assert_eq!(raw_roundtrip(&mut b, &resp_cmd(&["BLPOP", "r3", "0.01"])), b"_\r\n");
        assert_eq!(raw_roundtrip(&mut b, &resp_cmd(&["BLMOVE", "r3", "r3", "LEFT", "LEFT", "0.01"])), b"_\r\n");
    }

    fn a_timeout_answers_null(srv) {
        let mut s = srv.raw();
        // Every form answers a null array (BLMOVE and BRPOPLPUSH included, as Redis 7 does).
        let cases: &[&[&str]] = &[
            &["BLPOP", "{t}a", "{t}b", "0.1"],
            &["BRPOP", "{t}a", "0.1"],
            &["BLMOVE", "{t}a", "{t}b", "LEFT", "RIGHT", "0.1"],
            &["BRPOPLPUSH", "{t}a", "{t}b", "0.1"],
            &["BLMPOP", "0.1", "1", "{t}a", "LEFT"],
            &["BZPOPMIN", "{t}a", "0.1"],
            &["BZPOPMAX", "{t}a", "{t}b", "0.1"],
            &["BZMPOP", "0.1", "2", "{t}a", "{t}b", "MIN"],
        ];
        for args in cases {
            let started = Instant::now();
            assert_eq!(raw_roundtrip(&mut s, &resp_cmd(args)), b"*-1\r\n", "{args:?}");
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(100), "{args:?} timed out early, after {took:?}");
            assert!(took < Duration::from_secs(2), "{args:?} timed out late, after {took:?}");
        }
        // The connection is usable afterwards, and nothing is left waiting.
        assert_eq!(raw_cmd(&mut s, &["PING"]), status("PONG"));
        let mut poll = srv.client();
        assert_eq!(blocked_clients(&mut poll), 0);
    }

    fn errors(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SET", "{e}s", "x"], ok()),
            (&["BLPOP", "{e}a", "-1"], err(NEGATIVE)),
            (&["BLPOP", "{e}a", "-inf"], err(NEGATIVE)),
            (&["BLPOP", "{e}a", "1e20"], err(NEGATIVE)),
            (&["BLPOP", "{e}a", "abc"], err(NOT_FLOAT)),
            (&["BRPOP", "{e}a", ""], err(NOT_FLOAT)),
            (&["BRPOP", "{e}a", " 1"], err(NOT_FLOAT)),
            (&["BZPOPMIN", "{e}a", "nan"], err(NOT_FLOAT)),
            (&["BZPOPMAX", "{e}a", "-2"], err(NEGATIVE)),
            (&["BRPOPLPUSH", "{e}a", "{e}b", "-1"], err(NEGATIVE)),
            // The timeout is checked before the keys' types.
            (&["BLPOP", "{e}s", "x"], err(NOT_FLOAT)),
            // WRONGTYPE from the first key of another type, even before a key with data.
            (&["RPUSH", "{e}l", "1"], int(1)),
            (&["BLPOP", "{e}s", "{e}l", "0"], err(WRONGTYPE)),
            (&["BLPOP", "{e}a", "{e}s", "{e}l", "0"], err(WRONGTYPE)),
            (&["BLPOP", "{e}l", "{e}s", "0"], bulks(&["{e}l", "1"])),
            (&["BZPOPMIN", "{e}s", "0"], err(WRONGTYPE)),
            (&["BLMOVE", "{e}s", "{e}b", "LEFT", "LEFT", "0"], err(WRONGTYPE)),
            (&["BLMPOP", "0", "2", "{e}a", "{e}s", "LEFT"], err(WRONGTYPE)),
            (&["BZMPOP", "0", "1", "{e}s", "MIN"], err(WRONGTYPE)),
            // BLMOVE checks its directions, then the timeout.
            (&["BLMOVE", "{e}a", "{e}b", "UP", "LEFT", "x"], err(SYNTAX)),
            (&["BLMOVE", "{e}a", "{e}b", "LEFT", "LEFT", "x"], err(NOT_FLOAT)),
            // BLMPOP and BZMPOP check their arguments before the timeout.
            (&["BLMPOP", "x", "0", "{e}a", "LEFT"], err("ERR numkeys should be greater than 0")),
            (&["BLMPOP", "x", "1", "{e}a", "UP"], err(SYNTAX)),
            (&["BLMPOP", "x", "1", "{e}a", "LEFT"], err(NOT_FLOAT)),
            (&["BLMPOP", "-1", "1", "{e}a", "LEFT"], err(NEGATIVE)),
            (&["BLMPOP", "0", "1", "{e}a", "LEFT", "COUNT", "0"], err("ERR count should be greater than 0")),
            (&["BZMPOP", "x", "0", "{e}a", "MIN"], err("ERR numkeys should be greater than 0")),
            (&["BZMPOP", "x", "1", "{e}a", "UP"], err(SYNTAX)),
            (&["BZMPOP", "0", "1", "{e}a", "MIN", "COUNT", "-1"], err("ERR count should be greater than 0")),
            (&["BLPOP", "{e}a"], arity("blpop")),
            (&["BZPOPMIN", "{e}a"], arity("bzpopmin")),
            (&["BLMOVE", "{e}a", "{e}b", "LEFT", "LEFT"], arity("blmove")),
            (&["BRPOPLPUSH", "{e}a", "{e}b"], arity("brpoplpush")),
            (&["BLMPOP", "0", "1", "{e}a"], arity("blmpop")),
            (&["BZMPOP", "0", "1", "{e}a"], arity("bzmpop")),
        ]);
        // A destination of another type is only checked when the move happens.
        let mut poll = srv.client();
        let mut b = block(srv, &mut poll, &["BLMOVE", "{e}src", "{e}s", "LEFT", "LEFT", "0"], 1);
        assert_eq!(cmd(&mut c, &["RPUSH", "{e}src", "1"]), int(1));
        assert_eq!(recv(&mut b), err(WRONGTYPE));
        wait_blocked(&mut poll, 0);
        assert_eq!(cmd(&mut c, &["LRANGE", "{e}src", "0", "-1"]), bulks(&["1"]), "nothing was moved");
    }

    fn a_disconnected_client_does_not_take_a_later_push(srv) {
        let mut poll = srv.client();
        let mut pushers: Vec<redis::Connection> = (0..PUSHERS).map(|_| srv.client()).collect();
        for (i, p) in pushers.iter_mut().enumerate() {
            let key = format!("gone:{i}");
            let b = block(srv, &mut poll, &["BLPOP", &key, "0"], 1);
            drop(b);
            wait_blocked(&mut poll, 0);
            assert_eq!(cmd(p, &["RPUSH", &key, "kept"]), int(1));
            assert_eq!(cmd(p, &["LRANGE", &key, "0", "-1"]), bulks(&["kept"]));
        }
        // CLIENT KILL ends the wait the same way.
        let mut killed = srv.raw();
        let id = raw_cmd(&mut killed, &["CLIENT", "ID"]).int().to_string();
        send(&mut killed, &["BZPOPMIN", "killed", "0"]);
        wait_blocked(&mut poll, 1);
        assert_eq!(cmd(&mut pushers[1], &["CLIENT", "KILL", "ID", &id]), int(1));
        assert!(read_to_close(&mut killed).is_empty(), "a killed client gets no reply");
        wait_blocked(&mut poll, 0);
        assert_eq!(cmd(&mut pushers[1], &["ZADD", "killed", "1", "kept"]), int(1));
        assert_eq!(cmd(&mut pushers[1], &["ZCARD", "killed"]), int(1));
        // Also when another client still waits on the key: it gets the element.
        let gone = block(srv, &mut poll, &["BLPOP", "shared", "0"], 1);
        let mut stays = block(srv, &mut poll, &["BLPOP", "shared", "0"], 2);
        drop(gone);
        wait_blocked(&mut poll, 1);
        assert_eq!(cmd(&mut pushers[0], &["RPUSH", "shared", "x"]), int(1));
        assert_eq!(recv(&mut stays), bulks(&["shared", "x"]));
    }

    fn client_unblock(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["CLIENT", "UNBLOCK"], err("ERR wrong number of arguments for 'client|unblock' command")),
            (&["CLIENT", "UNBLOCK", "1", "2", "3"], err("ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.")),
            (&["CLIENT", "UNBLOCK", "abc"], err(NOT_INT)),
            (&["CLIENT", "UNBLOCK", "abc", "foo"], err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
            (&["CLIENT", "UNBLOCK", "999999", "ERROR"], int(0)),
            (&["CLIENT", "UNBLOCK", "-5"], int(0)),
        ]);
        let own = cmd(&mut c, &["CLIENT", "ID"]).int().to_string();
        assert_eq!(cmd(&mut c, &["CLIENT", "UNBLOCK", &own]), int(0), "a client that is not blocked");
        let mut pushers: Vec<redis::Connection> = (0..PUSHERS).map(|_| srv.client()).collect();
        for (i, p) in pushers.iter_mut().enumerate() {
            let key = format!("unblock:{i}");
            let mut b = srv.raw();
            let id = raw_cmd(&mut b, &["CLIENT", "ID"]).int().to_string();
            send(&mut b, &["BLPOP", &key, "0"]);
            wait_blocked(&mut c, 1);
            assert_eq!(cmd(p, &["CLIENT", "UNBLOCK", &id]), int(1));
            assert_eq!(recv_bytes(&mut b), b"*-1\r\n");
            wait_blocked(&mut c, 0);
            assert_eq!(cmd(p, &["CLIENT", "UNBLOCK", &id, "TIMEOUT"]), int(0), "no longer blocked");
            send(&mut b, &["BZPOPMAX", &key, "100"]);
            wait_blocked(&mut c, 1);
            assert_eq!(cmd(p, &["CLIENT", "UNBLOCK", &id, "error"]), int(1));
            assert_eq!(recv(&mut b), err(UNBLOCKED));
            wait_blocked(&mut c, 0);
            // Unblocked, it runs commands again, and a push finds no waiter.
            assert_eq!(raw_cmd(&mut b, &["PING"]), status("PONG"));
            assert_eq!(cmd(p, &["RPUSH", &key, "x"]), int(1));
            assert_eq!(cmd(p, &["LLEN", &key]), int(1));
        }
    }

    fn a_blocked_client_runs_nothing_more_of_its_pipeline(srv) {
        let mut poll = srv.client();
        let mut b = srv.raw();
        let mut pipeline = resp_cmd(&["SET", "{p}x", "1"]);
        pipeline.extend_from_slice(&resp_cmd(&["BLPOP", "{p}k", "0"]));
        pipeline.extend_from_slice(&resp_cmd(&["SET", "{p}x", "2"]));
        pipeline.extend_from_slice(&resp_cmd(&["LPUSH", "{p}k", "self"]));
        b.write_all(&pipeline).unwrap();
        // The reply before the blocking command is sent while it waits.
        assert_eq!(recv(&mut b), ok());
        wait_blocked(&mut poll, 1);
        // Nothing after BLPOP ran: x is still 1 and the client's own push did not happen.
        expect_all(&mut poll, &[(&["GET", "{p}x"], bulk("1")), (&["EXISTS", "{p}k"], int(0))]);
        assert_eq!(cmd(&mut poll, &["RPUSH", "{p}k", "other"]), int(1));
        assert_eq!(recv_n(&mut b, 3), vec![bulks(&["{p}k", "other"]), ok(), int(1)]);
        expect_all(&mut poll, &[(&["GET", "{p}x"], bulk("2")), (&["LRANGE", "{p}k", "0", "-1"], bulks(&["self"]))]);
    }

    fn info_and_client_list_show_blocked_clients(srv) {
        let mut poll = srv.client();
        let mut a = srv.raw();
        let a_id = raw_cmd(&mut a, &["CLIENT", "ID"]).int();
        send(&mut a, &["BLPOP", "{n}a", "0"]);
        wait_blocked(&mut poll, 1);
        let _b = block(srv, &mut poll, &["BZPOPMIN", "{n}b", "100"], 2);
        let info = cmd(&mut poll, &["INFO", "clients"]).text();
        assert_eq!(info_field(&info, "blocked_clients").as_deref(), Some("2"));
        assert_eq!(info_field(&info, "clients_in_timeout_table").as_deref(), Some("1"));
        let list = cmd(&mut poll, &["CLIENT", "LIST", "ID", &a_id.to_string()]).text();
        assert!(list.contains(" flags=b "), "{list}");
        assert!(list.contains(" cmd=blpop "), "{list}");
        let me = cmd(&mut poll, &["CLIENT", "INFO"]).text();
        assert!(me.contains(" flags=N "), "{me}");
    }

    fn writes_of_every_kind_wake_blocked_clients(srv) {
        let mut poll = srv.client();
        let mut c = srv.client();
        // RENAME onto the key.
        let mut b = block(srv, &mut poll, &["BLPOP", "{w}k", "0"], 1);
        expect_all(&mut c, &[(&["RPUSH", "{w}src", "renamed"], int(1)), (&["RENAME", "{w}src", "{w}k"], ok())]);
        assert_eq!(recv(&mut b), bulks(&["{w}k", "renamed"]));
        // LMOVE into it.
        send(&mut b, &["BLPOP", "{w}k", "0"]);
        wait_blocked(&mut poll, 1);
        expect_all(&mut c, &[(&["RPUSH", "{w}src", "moved"], int(1)), (&["LMOVE", "{w}src", "{w}k", "LEFT", "LEFT"], bulk("moved"))]);
        assert_eq!(recv(&mut b), bulks(&["{w}k", "moved"]));
        // SORT ... STORE.
        send(&mut b, &["BRPOP", "{w}k", "0"]);
        wait_blocked(&mut poll, 1);
        expect_all(&mut c, &[(&["RPUSH", "{w}src", "2", "1"], int(2)), (&["SORT", "{w}src", "STORE", "{w}k"], int(2))]);
        assert_eq!(recv(&mut b), bulks(&["{w}k", "2"]));
        expect_all(&mut c, &[(&["DEL", "{w}k", "{w}src"], int(2))]);
        // RESTORE of a dumped list.
        assert_eq!(cmd(&mut c, &["RPUSH", "{w}src", "restored"]), int(1));
        let Reply::Bulk(dump) = cmd(&mut c, &["DUMP", "{w}src"]) else { panic!("DUMP") };
        send(&mut b, &["BLPOP", "{w}k", "0"]);
        wait_blocked(&mut poll, 1);
        assert_eq!(cmd_bin(&mut c, &[b"RESTORE", b"{w}k", b"0", &dump]), ok());
        assert_eq!(recv(&mut b), bulks(&["{w}k", "restored"]));
        // ZUNIONSTORE into a key a sorted-set pop waits on.
        send(&mut b, &["BZPOPMIN", "{w}z", "0"]);
        wait_blocked(&mut poll, 1);
        expect_all(&mut c, &[(&["ZADD", "{w}zs", "4", "m"], int(1)), (&["ZUNIONSTORE", "{w}z", "1", "{w}zs"], int(1))]);
        assert_eq!(recv(&mut b), bulks(&["{w}z", "m", "4"]));
        // MOVE from another database.
        send(&mut b, &["BLPOP", "mv", "0"]);
        wait_blocked(&mut poll, 1);
        expect_all(&mut c, &[
            (&["SELECT", "1"], ok()),
            (&["RPUSH", "mv", "from-db1"], int(1)),
            (&["MOVE", "mv", "0"], int(1)),
        ]);
        assert_eq!(recv(&mut b), bulks(&["mv", "from-db1"]));
        // SWAPDB: the client stays in its database, which now holds the list.
        send(&mut b, &["BLPOP", "sw", "0"]);
        wait_blocked(&mut poll, 1);
        expect_all(&mut c, &[(&["RPUSH", "sw", "swapped"], int(1)), (&["SWAPDB", "0", "1"], ok())]);
        assert_eq!(recv(&mut b), bulks(&["sw", "swapped"]));
        // A client in another database is not woken by the same key here.
        assert_eq!(raw_cmd(&mut b, &["SELECT", "2"]), ok());
        send(&mut b, &["BLPOP", "db", "0"]);
        wait_blocked(&mut poll, 1);
        expect_all(&mut c, &[(&["SELECT", "0"], ok()), (&["RPUSH", "db", "db0"], int(1)), (&["SELECT", "2"], ok())]);
        assert_eq!(blocked_clients(&mut poll), 1);
        assert_eq!(cmd(&mut c, &["RPUSH", "db", "db2"]), int(1));
        assert_eq!(recv(&mut b), bulks(&["db", "db2"]));
    }

    fn many_clients_on_many_keys_get_each_element_once(srv) {
        const KEYS: usize = 4;
        const PER_KEY: usize = 4;
        let mut poll = srv.client();
        let mut waiting = Vec::new();
        for k in 0..KEYS {
            for _ in 0..PER_KEY {
                let key = format!("many:{k}");
                let n = waiting.len() as i64 + 1;
                waiting.push((key.clone(), block(srv, &mut poll, &["BLPOP", &key, "0"], n)));
            }
        }
        let mut pushers: Vec<redis::Connection> = (0..PUSHERS).map(|_| srv.client()).collect();
        for i in 0..KEYS * PER_KEY {
            let key = format!("many:{}", i % KEYS);
            assert!(cmd(&mut pushers[i % PUSHERS], &["RPUSH", &key, &i.to_string()]).int() >= 1);
        }
        let mut got: Vec<usize> = Vec::new();
        for (key, s) in &mut waiting {
            let r = recv(s).items();
            assert_eq!(r[0], bulk(key.as_str()));
            got.push(r[1].text().parse().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (0..KEYS * PER_KEY).collect::<Vec<_>>());
        wait_blocked(&mut poll, 0);
    }
}

// Keys without hash tags, which land on different shards of a 4-shard
// server: each try runs as a transaction over the shards, and any of them
// wakes the client.
shard_tests! {
    fn blocking_over_keys_of_different_shards(srv) {
        let mut c = srv.client();
        // Served at once from the first key with data, in argument order.
        expect_all(&mut c, &[
            (&["RPUSH", "spread:2", "x"], int(1)),
            (&["BLPOP", "spread:1", "spread:2", "0"], bulks(&["spread:2", "x"])),
        ]);
        // Woken by a push to the second key.
        let mut blocked = block(srv, &mut c, &["BLPOP", "spread:1", "spread:2", "spread:3", "0"], 1);
        assert_eq!(cmd(&mut c, &["RPUSH", "spread:3", "y"]), int(1));
        assert_eq!(recv(&mut blocked), bulks(&["spread:3", "y"]));
        wait_blocked(&mut c, 0);
        // BLMOVE from one shard to another, woken by a push from other connections.
        let mut blocked = block(srv, &mut c, &["BLMOVE", "spread:4", "spread:8", "LEFT", "RIGHT", "0"], 1);
        for n in 0..PUSHERS {
            let mut pusher = srv.client();
            if n == PUSHERS - 1 {
                assert_eq!(cmd(&mut pusher, &["LPUSH", "spread:4", "q"]), int(1));
            } else {
                assert_eq!(cmd(&mut pusher, &["PING"]), status("PONG"));
            }
        }
        assert_eq!(recv(&mut blocked), bulk("q"));
        expect_all(&mut c, &[(&["LRANGE", "spread:8", "0", "-1"], bulks(&["q"])), (&["EXISTS", "spread:4"], int(0))]);
        // Sorted sets too, with a timeout that passes.
        let start = Instant::now();
        assert_eq!(cmd(&mut c, &["BZPOPMIN", "spread:5", "spread:6", "0.2"]), nil());
        assert!(start.elapsed() >= Duration::from_millis(190), "{:?}", start.elapsed());
        let mut blocked = block(srv, &mut c, &["BZPOPMAX", "spread:5", "spread:6", "5"], 1);
        assert_eq!(cmd(&mut c, &["ZADD", "spread:6", "1", "a", "2", "b"]), int(2));
        assert_eq!(recv(&mut blocked), bulks(&["spread:6", "b", "2"]));
    }

    fn two_clients_across_shards_get_one_element_each(srv) {
        let mut c = srv.client();
        let mut first = block(srv, &mut c, &["BRPOP", "spread:1", "spread:2", "0"], 1);
        let mut second = block(srv, &mut c, &["BRPOP", "spread:2", "spread:1", "0"], 2);
        assert_eq!(cmd(&mut c, &["RPUSH", "spread:1", "e1"]), int(1));
        wait_blocked(&mut c, 1);
        assert_eq!(cmd(&mut c, &["RPUSH", "spread:2", "e2"]), int(1));
        wait_blocked(&mut c, 0);
        let mut got = vec![recv(&mut first), recv(&mut second)];
        got.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(got, vec![bulks(&["spread:1", "e1"]), bulks(&["spread:2", "e2"])]);
    }

    fn leaving_a_wait_across_shards(srv) {
        let mut c = srv.client();
        // A client that disconnects takes nothing pushed later.
        let gone = block(srv, &mut c, &["BLPOP", "spread:1", "spread:2", "0"], 1);
        drop(gone);
        wait_blocked(&mut c, 0);
        assert_eq!(cmd(&mut c, &["RPUSH", "spread:2", "kept"]), int(1));
        assert_eq!(cmd(&mut c, &["LRANGE", "spread:2", "0", "-1"]), bulks(&["kept"]));
        assert_eq!(cmd(&mut c, &["DEL", "spread:2"]), int(1));
        // CLIENT UNBLOCK, both ways.
        let mut blocked = srv.raw();
        send(&mut blocked, &["CLIENT", "ID"]);
        let id = recv(&mut blocked).int().to_string();
        send(&mut blocked, &["BLPOP", "spread:1", "spread:2", "0"]);
        wait_blocked(&mut c, 1);
        assert_eq!(cmd(&mut c, &["CLIENT", "UNBLOCK", &id]), int(1));
        assert_eq!(recv(&mut blocked), Reply::Nil);
        send(&mut blocked, &["BLPOP", "spread:1", "spread:2", "0"]);
        wait_blocked(&mut c, 1);
        assert_eq!(cmd(&mut c, &["CLIENT", "UNBLOCK", &id, "ERROR"]), int(1));
        assert_eq!(recv(&mut blocked), err(UNBLOCKED));
        wait_blocked(&mut c, 0);
        assert_eq!(cmd(&mut c, &["CLIENT", "UNBLOCK", &id]), int(0));
    }
}

shard_tests! {
    fn command_info_matches_redis(srv) {
        let mut c = srv.client();
        // name, arity, flags, first key, last key, step: as Redis 7.0 reports them.
        let want: &[InfoRow] = &[
            ("blpop", -3, &["write", "noscript", "blocking"], 1, -2, 1),
            ("brpop", -3, &["write", "noscript", "blocking"], 1, -2, 1),
            ("blmove", 6, &["write", "denyoom", "noscript", "blocking"], 1, 2, 1),
            ("brpoplpush", 4, &["write", "denyoom", "noscript", "blocking"], 1, 2, 1),
            ("blmpop", -5, &["write", "blocking", "movablekeys"], 0, 0, 0),
            ("bzpopmin", -3, &["write", "noscript", "blocking", "fast"], 1, -2, 1),
            ("bzpopmax", -3, &["write", "noscript", "blocking", "fast"], 1, -2, 1),
            ("bzmpop", -5, &["write", "blocking", "movablekeys"], 0, 0, 0),
        ];
        assert_command_info(&mut c, want);
        expect_all(&mut c, &[
            (&["COMMAND", "GETKEYS", "BLPOP", "a", "b", "0"], bulks(&["a", "b"])),
            (&["COMMAND", "GETKEYS", "BLMOVE", "a", "b", "LEFT", "RIGHT", "0"], bulks(&["a", "b"])),
            (&["COMMAND", "GETKEYS", "BLMPOP", "0", "2", "a", "b", "LEFT"], bulks(&["a", "b"])),
            (&["COMMAND", "GETKEYS", "BZMPOP", "0", "1", "z", "MIN"], bulks(&["z"])),
        ]);
    }
}

/// Shutdown does not wait for blocked clients: they are disconnected.
#[test]
fn shutdown_disconnects_blocked_clients() {
    for shards in [1, 4] {
        let mut srv = Server::start(shards);
        let mut poll = srv.client();
        let mut blocked: Vec<TcpStream> =
            (0..4).map(|i| block(&srv, &mut poll, &["BLPOP", &format!("down:{i}"), "0"], i + 1)).collect();
        let started = Instant::now();
        srv.signal(libc::SIGTERM);
        for s in &mut blocked {
            assert!(read_to_close(s).is_empty(), "a blocked client gets no reply at shutdown");
        }
        let status = srv.wait_exit(DEADLINE).expect("server did not exit with blocked clients");
        assert!(status.success(), "exit status {status}");
        assert!(started.elapsed() < Duration::from_secs(5), "shutdown waited {:?}", started.elapsed());
    }
}
