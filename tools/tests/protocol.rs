//! Wire protocol: byte-exact RESP2 replies, inline commands, fragmented
//! input, and bad input (each followed by proof that the server still serves
//! other clients).

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;

/// Sends `bytes`, expects exactly `reply` and then the server closing the
/// connection.
fn expect_error_and_close(srv: &Server, bytes: &[u8], reply: &[u8]) {
    let mut s = srv.raw();
    s.write_all(bytes).unwrap();
    let got = read_to_close(&mut s);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply),
        "after sending {:?}",
        String::from_utf8_lossy(bytes)
    );
}

fn rt(s: &mut TcpStream, bytes: &[u8]) -> String {
    String::from_utf8_lossy(&raw_roundtrip(s, bytes)).into_owned()
}

fn rt_n(s: &mut TcpStream, bytes: &[u8], n: usize) -> String {
    String::from_utf8_lossy(&raw_roundtrip_n(s, bytes, n)).into_owned()
}

shard_tests! {
    fn resp2_byte_exact(srv) {
        let mut s = srv.raw();
        let cases: &[(&[&str], &str)] = &[
            (&["SET", "foo", "bar"], "+OK\r\n"),
            (&["GET", "foo"], "$3\r\nbar\r\n"),
            (&["GET", "nokey"], "$-1\r\n"),
            (&["EXISTS", "foo"], ":1\r\n"),
            (&["DEL", "nokey"], ":0\r\n"),
            (&["INCRBY", "n", "-7"], ":-7\r\n"),
            (&["MGET", "foo", "nokey"], "*2\r\n$3\r\nbar\r\n$-1\r\n"),
            (&["KEYS", "nomatch*"], "*0\r\n"),
            (&["SET", "empty", ""], "+OK\r\n"),
            (&["GET", "empty"], "$0\r\n\r\n"),
            (&["SET", "foo", "x", "NX"], "$-1\r\n"),
            (&["TYPE", "foo"], "+string\r\n"),
            (&["TYPE", "nokey"], "+none\r\n"),
            (&["PING"], "+PONG\r\n"),
            (&["TTL", "nokey"], ":-2\r\n"),
            (&["INCRBYFLOAT", "f", "1.5"], "$3\r\n1.5\r\n"),
            (&["HSET", "h", "a", "1"], ":1\r\n"),
            (&["HGETALL", "h"], "*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
            (&["HGET", "h", "zz"], "$-1\r\n"),
            (&["HMGET", "h", "a", "zz"], "*2\r\n$1\r\n1\r\n$-1\r\n"),
            (&["HRANDFIELD", "nokey"], "$-1\r\n"),
            (&["HSCAN", "h", "0"], "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
            (&["SCAN", "0", "MATCH", "nomatch"], "*2\r\n$1\r\n0\r\n*0\r\n"),
            (&["CLIENT", "GETNAME"], "$-1\r\n"),
            (&["CONFIG", "GET", "maxmemory"], "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"),
            (&["RANDOMKEY", "x"], "-ERR wrong number of arguments for 'randomkey' command\r\n"),
            (&["GET", "h"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            (&["INCR", "foo"], "-ERR value is not an integer or out of range\r\n"),
        ];
        for (args, want) in cases {
            assert_eq!(rt(&mut s, &resp_cmd(args)), *want, "{args:?}");
        }
    }

    fn inline_commands(srv) {
        let mut s = srv.raw();
        assert_eq!(rt(&mut s, b"PING\r\n"), "+PONG\r\n");
        assert_eq!(rt(&mut s, b"ping\n"), "+PONG\r\n");
        assert_eq!(rt(&mut s, b"SET a b\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET a\r\n"), "$1\r\nb\r\n");
        assert_eq!(rt(&mut s, b"  SET   sp   x  \r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"set tab\tv\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET tab\r\n"), "$1\r\nv\r\n");
        // Quoting.
        assert_eq!(rt(&mut s, b"SET q \"hello world\"\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET q\r\n"), "$11\r\nhello world\r\n");
        assert_eq!(rt(&mut s, b"SET q 'single quoted'\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET q\r\n"), "$13\r\nsingle quoted\r\n");
        assert_eq!(rt(&mut s, b"SET q \"a\\\"b\"\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET q\r\n"), "$3\r\na\"b\r\n");
        assert_eq!(rt(&mut s, b"SET q 'it\\'s'\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET q\r\n"), "$4\r\nit's\r\n");
        assert_eq!(rt(&mut s, b"ECHO \"a\\x41\\n\\t\"\r\n"), "$4\r\naA\n\t\r\n");
        assert_eq!(rt(&mut s, b"SET q \"\"\r\n"), "+OK\r\n");
        assert_eq!(rt(&mut s, b"GET q\r\n"), "$0\r\n\r\n");
        // Empty lines are skipped.
        assert_eq!(rt(&mut s, b"\r\n\r\nPING\r\n"), "+PONG\r\n");
        assert_eq!(rt(&mut s, b"   \r\nPING\r\n"), "+PONG\r\n");
        // Errors keep the connection open.
        assert_eq!(rt(&mut s, b"get\r\n"), "-ERR wrong number of arguments for 'get' command\r\n");
        assert_eq!(rt(&mut s, b"GET a b\r\n"), "-ERR wrong number of arguments for 'get' command\r\n");
        assert_eq!(
            rt(&mut s, b"FOO a b\r\n"),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        );
        // Inline and multibulk mixed in one write.
        assert_eq!(
            rt_n(&mut s, b"PING\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n", 3),
            "+PONG\r\n+PONG\r\n$1\r\nx\r\n"
        );
        // Unbalanced quotes: protocol error, connection closed.
        expect_error_and_close(
            srv,
            b"SET a \"unbalanced\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        );
        expect_error_and_close(
            srv,
            b"SET a \"x\"y\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        );
        srv.assert_serving();
    }

    fn multibulk_edge_cases(srv) {
        let mut s = srv.raw();
        // Empty and null multibulks are ignored.
        assert_eq!(rt(&mut s, b"*0\r\n*1\r\n$4\r\nPING\r\n"), "+PONG\r\n");
        assert_eq!(rt(&mut s, b"*-1\r\n*1\r\n$4\r\nPING\r\n"), "+PONG\r\n");
        // Lowercase / mixed-case command names.
        assert_eq!(rt(&mut s, b"*1\r\n$4\r\npInG\r\n"), "+PONG\r\n");
        // Binary-safe arguments, including CRLF inside a bulk.
        assert_eq!(
            rt(&mut s, b"*3\r\n$3\r\nSET\r\n$4\r\nb\r\nk\r\n$5\r\n\x00\r\n\xff\x01\r\n"),
            "+OK\r\n"
        );
        assert_eq!(
            raw_roundtrip(&mut s, b"*2\r\n$3\r\nGET\r\n$4\r\nb\r\nk\r\n"),
            b"$5\r\n\x00\r\n\xff\x01\r\n"
        );
        // An empty command name.
        assert_eq!(
            rt(&mut s, b"*1\r\n$0\r\n\r\n"),
            "-ERR unknown command '', with args beginning with: \r\n"
        );
        // Unknown command: arguments quoted, each followed by a space.
        assert_eq!(
            rt(&mut s, &resp_cmd(&["foo", "a", "b"])),
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
        );
        assert_eq!(
            rt(&mut s, &resp_cmd(&["foo"])),
            "-ERR unknown command 'foo', with args beginning with: \r\n"
        );
        // Newlines in an error message become spaces.
        assert_eq!(
            rt(&mut s, &resp_cmd(&["foo", "a\r\nb"])),
            "-ERR unknown command 'foo', with args beginning with: 'a  b' \r\n"
        );
        // The argument list is cut at 128 characters.
        let a = "a".repeat(100);
        let b = "b".repeat(100);
        assert_eq!(
            rt(&mut s, &resp_cmd(&["foo", &a, &b, "c"])),
            format!("-ERR unknown command 'foo', with args beginning with: '{a}' '{}' \r\n", "b".repeat(25))
        );
        assert_eq!(
            rt(&mut s, &resp_cmd(&["GET"])),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        // The arity error names the command in lowercase.
        assert_eq!(
            rt(&mut s, &resp_cmd(&["HGETALL"])),
            "-ERR wrong number of arguments for 'hgetall' command\r\n"
        );
        assert_eq!(rt(&mut s, &resp_cmd(&["PING"])), "+PONG\r\n");
    }

    fn fragmented_and_pipelined_input(srv) {
        // Every command split into single-byte writes.
        let mut s = srv.raw();
        let mut bytes = Vec::new();
        let mut want = String::new();
        for i in 0..20 {
            bytes.extend(resp_cmd(&["SET", &format!("k{i}"), &format!("value-{i}")]));
            want.push_str("+OK\r\n");
            bytes.extend(resp_cmd(&["GET", &format!("k{i}")]));
            let v = format!("value-{i}");
            want.push_str(&format!("${}\r\n{v}\r\n", v.len()));
        }
        bytes.extend(b"PING\r\n");
        want.push_str("+PONG\r\n");
        for b in &bytes {
            s.write_all(std::slice::from_ref(b)).unwrap();
        }
        let mut buf = Vec::new();
        read_replies(&mut s, &mut buf, 41).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf), want);
        // Odd-sized chunks that split headers and payloads anywhere.
        let mut s = srv.raw();
        for chunk in bytes.chunks(7) {
            s.write_all(chunk).unwrap();
        }
        let mut buf = Vec::new();
        read_replies(&mut s, &mut buf, 41).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf), want);
        // A 3 MB value sent in one write, then read back.
        let big = "x".repeat(3 << 20);
        let mut s = srv.raw();
        assert_eq!(rt(&mut s, &resp_cmd(&["SET", "big", &big])), "+OK\r\n");
        let got = raw_roundtrip(&mut s, &resp_cmd(&["GET", "big"]));
        assert_eq!(got.len(), big.len() + format!("${}\r\n\r\n", big.len()).len());
        assert_eq!(parse_reply(&got), bulk(&big));
    }

    fn bad_input_garbage(srv) {
        // Non-UTF-8 garbage is an inline unknown command.
        let mut s = srv.raw();
        assert_eq!(
            raw_roundtrip(&mut s, b"\xff\xfe garbage\r\n"),
            b"-ERR unknown command '\xff\xfe', with args beginning with: 'garbage' \r\n"
        );
        assert_eq!(rt(&mut s, b"PING\r\n"), "+PONG\r\n");
        // Stray reply-type lines are inline commands too.
        assert_eq!(
            rt(&mut s, b":5\r\n"),
            "-ERR unknown command ':5', with args beginning with: \r\n"
        );
        // Garbage with a NUL byte: no reply is defined; the server must stay up.
        let mut s = srv.raw();
        s.write_all(b"\x00\xff garbage\r\n\x00\x00\x01\x02").unwrap();
        drop(s);
        srv.assert_serving();
        // Random binary noise on several connections.
        let mut seed: u32 = 12345;
        for _ in 0..8 {
            let mut s = srv.raw();
            let noise: Vec<u8> = (0..4096)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = s.write_all(&noise);
            drop(s);
        }
        srv.assert_serving();
    }

    fn bad_input_huge_bulk(srv) {
        expect_error_and_close(
            srv,
            b"*1\r\n$600000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        );
        srv.assert_serving();
        expect_error_and_close(
            srv,
            b"*2\r\n$3\r\nGET\r\n$536870913\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        );
        srv.assert_serving();
    }

    fn bad_input_invalid_lengths(srv) {
        let cases: &[(&[u8], &[u8])] = &[
            (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*01\r\n$4\r\nPING\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*1 \r\n$4\r\nPING\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*+1\r\n$4\r\nPING\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\n$04\r\nPING\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\n+foo\r\n", b"-ERR Protocol error: expected '$', got '+'\r\n"),
            (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
        ];
        for (bytes, reply) in cases {
            expect_error_and_close(srv, bytes, reply);
            srv.assert_serving();
        }
        // Commands before the bad frame in the same write are executed.
        let mut s = srv.raw();
        s.write_all(b"*3\r\n$3\r\nSET\r\n$6\r\nbefore\r\n$1\r\n1\r\n*1\r\n$x\r\n").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&read_to_close(&mut s)),
            "+OK\r\n-ERR Protocol error: invalid bulk length\r\n"
        );
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["GET", "before"]), bulk("1"));
        // Oversized inline request / header lines without a newline.
        expect_error_and_close(
            srv,
            &vec![b'a'; 70_000],
            b"-ERR Protocol error: too big inline request\r\n",
        );
        let mut mbulk = b"*1".to_vec();
        mbulk.extend(vec![b'1'; 70_000]);
        expect_error_and_close(srv, &mbulk, b"-ERR Protocol error: too big mbulk count string\r\n");
        let mut bulkhdr = b"*1\r\n$1".to_vec();
        bulkhdr.extend(vec![b'1'; 70_000]);
        expect_error_and_close(srv, &bulkhdr, b"-ERR Protocol error: too big bulk count string\r\n");
        srv.assert_serving();
    }

    fn bad_input_truncated_frame(srv) {
        // A frame cut short, then the client disconnects: nothing executes.
        let mut s = srv.raw();
        s.write_all(b"*3\r\n$3\r\nSET\r\n$9\r\ntruncated\r\n$5\r\nval").unwrap();
        drop(s);
        // Cut inside a header.
        let mut s = srv.raw();
        s.write_all(b"*3\r\n$3\r\nSET\r\n$9").unwrap();
        drop(s);
        // A complete command followed by a partial one.
        let mut s = srv.raw();
        s.write_all(b"*3\r\n$3\r\nSET\r\n$8\r\ncomplete\r\n$1\r\n1\r\n*2\r\n$3\r\nDEL\r\n$8\r\ncompl").unwrap();
        let mut buf = Vec::new();
        read_replies(&mut s, &mut buf, 1).unwrap();
        assert_eq!(buf, b"+OK\r\n");
        drop(s);
        srv.assert_serving();
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["EXISTS", "truncated"]), int(0));
        assert_eq!(cmd(&mut c, &["GET", "complete"]), bulk("1"));
        // A partial frame completed by a later write is executed.
        let mut s = srv.raw();
        s.write_all(b"*2\r\n$3\r\nGET\r\n$8\r\ncomp").unwrap();
        s.flush().unwrap();
        assert_eq!(rt(&mut s, b"lete\r\n"), "$1\r\n1\r\n");
    }

    fn bad_input_unknown_and_arity(srv) {
        let mut s = srv.raw();
        assert_eq!(
            rt(&mut s, &resp_cmd(&["foo", "a", "b"])),
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
        );
        assert_eq!(
            rt(&mut s, &resp_cmd(&["GET"])),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(
            rt(&mut s, &resp_cmd(&["SET", "k"])),
            "-ERR wrong number of arguments for 'set' command\r\n"
        );
        // Errors do not close the connection; later commands work.
        assert_eq!(rt(&mut s, &resp_cmd(&["SET", "k", "v"])), "+OK\r\n");
        assert_eq!(rt(&mut s, &resp_cmd(&["GET", "k"])), "$1\r\nv\r\n");
        // Pipelined errors interleave with successes in order.
        assert_eq!(
            rt_n(&mut s, &[resp_cmd(&["nope"]), resp_cmd(&["GET", "k"]), resp_cmd(&["GET"])].concat(), 3),
            "-ERR unknown command 'nope', with args beginning with: \r\n$1\r\nv\r\n-ERR wrong number of arguments for 'get' command\r\n"
        );
        srv.assert_serving();
    }

    fn many_connections(srv) {
        // Many concurrent connections, each doing its own work.
        let mut conns: Vec<TcpStream> = (0..50).map(|_| srv.raw()).collect();
        for (i, s) in conns.iter_mut().enumerate() {
            s.write_all(&resp_cmd(&["SET", &format!("conn{i}"), &i.to_string()])).unwrap();
        }
        for s in conns.iter_mut() {
            let mut buf = Vec::new();
            read_replies(s, &mut buf, 1).unwrap();
            assert_eq!(buf, b"+OK\r\n");
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let j = (i + 1) % 50;
            let got = raw_roundtrip(s, &resp_cmd(&["GET", &format!("conn{j}")]));
            assert_eq!(parse_reply(&got), bulk(j.to_string()));
        }
        drop(conns);
        // Threads hammering at once.
        let port = srv.port;
        let handles: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut c = connect(&format!("redis://127.0.0.1:{port}/"));
                    for i in 0..100 {
                        let n = cmd(&mut c, &["INCR", "shared"]).int();
                        assert!((1..=800).contains(&n), "INCR gave {n}");
                        let k = format!("t{t}:{i}");
                        assert_eq!(cmd(&mut c, &["SET", &k, "v"]), ok());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["GET", "shared"]), bulk("800"));
        assert_eq!(cmd(&mut c, &["DBSIZE"]), int(50 + 1 + 800));
    }
}
