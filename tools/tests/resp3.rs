//! RESP3: replies after HELLO 3, byte-exact on a raw socket and through the
//! redis crate's RESP3 connection.

#[macro_use]
mod common;

use common::*;
use std::net::TcpStream;

fn resp3_raw(srv: &Server) -> TcpStream {
    let mut s = srv.raw();
    let hello = raw_roundtrip(&mut s, &resp_cmd(&["HELLO", "3"]));
    assert!(hello.starts_with(b"%7\r\n"), "{:?}", String::from_utf8_lossy(&hello));
    s
}

fn rt(s: &mut TcpStream, args: &[&str]) -> String {
    String::from_utf8_lossy(&raw_roundtrip(s, &resp_cmd(args))).into_owned()
}

shard_tests! {
    fn resp3_byte_exact(srv) {
        let mut s = resp3_raw(srv);
        let cases: &[(&[&str], &str)] = &[
            (&["GET", "nokey"], "_\r\n"),
            (&["SET", "k", "v"], "+OK\r\n"),
            (&["GET", "k"], "$1\r\nv\r\n"),
            (&["SET", "k", "x", "NX"], "_\r\n"),
            (&["SET", "new", "x", "GET"], "_\r\n"),
            (&["GETDEL", "nokey"], "_\r\n"),
            (&["GETEX", "nokey"], "_\r\n"),
            (&["GETSET", "gs", "v"], "_\r\n"),
            (&["DEL", "nokey"], ":0\r\n"),
            (&["MGET", "k", "nokey"], "*2\r\n$1\r\nv\r\n_\r\n"),
            (&["EXISTS", "k"], ":1\r\n"),
            (&["TTL", "nokey"], ":-2\r\n"),
            (&["HSET", "h", "a", "1"], ":1\r\n"),
            (&["HGETALL", "h"], "%1\r\n$1\r\na\r\n$1\r\n1\r\n"),
            (&["HGETALL", "nokey"], "%0\r\n"),
            (&["HGET", "h", "zz"], "_\r\n"),
            (&["HMGET", "h", "a", "zz"], "*2\r\n$1\r\n1\r\n_\r\n"),
            (&["HKEYS", "h"], "*1\r\n$1\r\na\r\n"),
            (&["HVALS", "nokey"], "*0\r\n"),
            (&["HRANDFIELD", "nokey"], "_\r\n"),
            (&["HRANDFIELD", "h", "2"], "*1\r\n$1\r\na\r\n"),
            // WITHVALUES: an array of [field, value] pairs.
            (&["HRANDFIELD", "h", "2", "WITHVALUES"], "*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
            (&["HRANDFIELD", "h", "-2", "WITHVALUES"], "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
            (&["HSCAN", "h", "0"], "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
            (&["CONFIG", "GET", "maxmemory"], "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"),
            (&["CONFIG", "GET", "nosuch"], "%0\r\n"),
            // INCRBYFLOAT / HINCRBYFLOAT still answer bulk strings.
            (&["INCRBYFLOAT", "f", "1.5"], "$3\r\n1.5\r\n"),
            (&["HINCRBYFLOAT", "h", "f", "2.5"], "$3\r\n2.5\r\n"),
            (&["PING"], "+PONG\r\n"),
            (&["ECHO", "x"], "$1\r\nx\r\n"),
            (&["TYPE", "h"], "+hash\r\n"),
            (&["CLIENT", "GETNAME"], "_\r\n"),
            (&["COMMAND", "DOCS", "nosuch"], "%0\r\n"),
            (&["COMMAND", "INFO", "nosuch"], "*1\r\n_\r\n"),
            (&["GET", "h"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (&["GET"], "-ERR wrong number of arguments for 'get' command\r\n"),
            (&["INFO", "nosuchsection"], "=4\r\ntxt:\r\n"),
            (&["FLUSHALL"], "+OK\r\n"),
            (&["RANDOMKEY"], "_\r\n"),
            (&["INFO", "keyspace"], "=16\r\ntxt:# Keyspace\r\n\r\n"),
        ];
        for (args, want) in cases {
            assert_eq!(rt(&mut s, args), *want, "{args:?}");
        }
    }

    fn resp3_structured(srv) {
        let mut s = resp3_raw(srv);
        assert_eq!(rt(&mut s, &["HSET", "h", "a", "1", "b", "2", "c", "3"]), ":3\r\n");
        let r = parse_reply(&raw_roundtrip(&mut s, &resp_cmd(&["HGETALL", "h"])));
        assert!(matches!(r, Reply::Map(_)), "{r:?}");
        assert_eq!(
            r.sorted_pairs(),
            vec![
                ("a".to_string(), bulk("1")),
                ("b".to_string(), bulk("2")),
                ("c".to_string(), bulk("3")),
            ]
        );
        let r = parse_reply(&raw_roundtrip(&mut s, &resp_cmd(&["CONFIG", "GET", "maxmemory", "timeout"])));
        assert!(matches!(r, Reply::Map(_)), "{r:?}");
        assert_eq!(
            r.sorted_pairs(),
            vec![("maxmemory".to_string(), bulk("0")), ("timeout".to_string(), bulk("0"))]
        );
        // INFO and CLIENT INFO / LIST are verbatim strings ("txt").
        let r = parse_reply(&raw_roundtrip(&mut s, &resp_cmd(&["INFO", "server"])));
        match &r {
            Reply::Verbatim(fmt, text) => {
                assert_eq!(fmt, "txt");
                assert!(text.starts_with("# Server\r\n"), "{text:?}");
                assert!(info_field(text, "redis_version").is_some());
            }
            other => panic!("INFO in RESP3 must be a verbatim string, got {other:?}"),
        }
        for sub in ["INFO", "LIST"] {
            let r = parse_reply(&raw_roundtrip(&mut s, &resp_cmd(&["CLIENT", sub])));
            match &r {
                Reply::Verbatim(fmt, text) => {
                    assert_eq!(fmt, "txt");
                    assert!(text.contains("resp=3"), "{text:?}");
                    assert!(text.ends_with('\n'));
                }
                other => panic!("CLIENT {sub} in RESP3 must be verbatim, got {other:?}"),
            }
        }
        // COMMAND DOCS: map of maps.
        let r = parse_reply(&raw_roundtrip(&mut s, &resp_cmd(&["COMMAND", "DOCS", "get"])));
        match &r {
            Reply::Map(m) => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].0, bulk("get"));
                assert!(matches!(m[0].1, Reply::Map(_)), "{r:?}");
            }
            other => panic!("COMMAND DOCS in RESP3 must be a map, got {other:?}"),
        }
    }

    fn resp3_client(srv) {
        let mut c = srv.client_resp3();
        expect_all(&mut c, &[
            (&["GET", "nokey"], nil()),
            (&["SET", "k", "v"], ok()),
            (&["GET", "k"], bulk("v")),
            (&["INCRBYFLOAT", "f", "2.5"], bulk("2.5")),
            (&["HSET", "h", "x", "1", "y", "2"], int(2)),
            (&["HGETALL", "nokey"], Reply::Map(vec![])),
            (&["CONFIG", "GET", "nosuch"], Reply::Map(vec![])),
            (&["MGET", "k", "nokey"], arr(vec![bulk("v"), nil()])),
            (&["GET", "h"], err(WRONGTYPE)),
        ]);
        let r = cmd(&mut c, &["HGETALL", "h"]);
        assert!(matches!(r, Reply::Map(_)), "{r:?}");
        assert_eq!(
            r.sorted_pairs(),
            vec![("x".to_string(), bulk("1")), ("y".to_string(), bulk("2"))]
        );
        let r = cmd(&mut c, &["CONFIG", "GET", "hz"]);
        assert_eq!(r, Reply::Map(vec![(bulk("hz"), bulk("10"))]));
        let r = cmd(&mut c, &["HRANDFIELD", "h", "-3", "WITHVALUES"]).items();
        assert_eq!(r.len(), 3);
        for pair in r {
            let p = pair.items();
            assert_eq!(p.len(), 2);
            let want = if p[0] == bulk("x") { bulk("1") } else { bulk("2") };
            assert_eq!(p[1], want);
        }
        // A RESP3 pipeline.
        let mut p = redis::pipe();
        p.cmd("SET").arg("p").arg("1");
        p.cmd("INCR").arg("p");
        p.cmd("GET").arg("nokey");
        p.cmd("HGETALL").arg("h");
        let replies = pipeline(&mut c, &p);
        assert_eq!(replies[..3], [ok(), int(2), nil()]);
        assert!(matches!(replies[3], Reply::Map(_)));
    }
}
