//! Connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET
//! CLIENT COMMAND CONFIG INFO TIME DBSIZE LASTSAVE, and SHUTDOWN refusing bad
//! options (tools/tests/server.rs stops the server with it).

#[macro_use]
mod common;

use common::*;
use std::collections::BTreeMap;

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks a HELLO reply (map in RESP3, flat array in RESP2).
fn check_hello(r: &Reply, proto: i64, id: Option<i64>) {
    let fields: BTreeMap<String, Reply> = r.sorted_pairs().into_iter().collect();
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(names, ["id", "mode", "modules", "proto", "role", "server", "version"], "HELLO fields in {r:?}");
    assert_eq!(fields["proto"], int(proto));
    let got_id = fields["id"].int();
    assert!(got_id > 0);
    if let Some(id) = id {
        assert_eq!(got_id, id);
    }
    assert!(!fields["server"].text().is_empty());
    assert!(!fields["version"].text().is_empty());
    assert_eq!(fields["mode"].text(), "standalone");
    assert_eq!(fields["role"].text(), "master");
    assert_eq!(fields["modules"].items(), vec![]);
}

/// Parses one CLIENT LIST / CLIENT INFO line into its fields.
fn client_fields(line: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for part in line.split(' ') {
        let (k, v) = part.split_once('=').unwrap_or_else(|| panic!("bad CLIENT field {part:?} in {line:?}"));
        m.insert(k.to_string(), v.to_string());
    }
    for f in ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "cmd", "user", "resp"] {
        assert!(m.contains_key(f), "CLIENT line lacks {f}=: {line:?}");
    }
    for f in ["id", "fd", "age", "idle", "db", "resp"] {
        assert!(m[f].parse::<i64>().is_ok(), "{f}={} is not a number", m[f]);
    }
    m
}

/// Parses CLIENT LIST output: one line per client, each ending in "\n".
fn client_list(text: &str) -> Vec<BTreeMap<String, String>> {
    assert!(text.ends_with('\n'), "CLIENT LIST must end with a newline: {text:?}");
    text.trim_end_matches('\n').split('\n').map(client_fields).collect()
}

shard_tests! {
    fn ping_echo(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["PING"], status("PONG")),
            (&["ping"], status("PONG")),
            (&["PING", "hello world"], bulk("hello world")),
            (&["PING", ""], bulk("")),
            (&["PING", "a", "b"], arity("ping")),
            (&["ECHO", "hi"], bulk("hi")),
            (&["ECHO", ""], bulk("")),
            (&["ECHO"], arity("echo")),
            (&["ECHO", "a", "b"], arity("echo")),
        ]);
        assert_eq!(cmd_bin(&mut c, &[b"ECHO", b"\x00\xff\r\n"]), bulk(b"\x00\xff\r\n"));
        let mut s = srv.raw();
        assert_eq!(raw_roundtrip(&mut s, b"*1\r\n$4\r\nPING\r\n"), b"+PONG\r\n");
        assert_eq!(raw_roundtrip(&mut s, b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n"), b"$2\r\nhi\r\n");
        assert_eq!(raw_roundtrip(&mut s, b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), b"$0\r\n\r\n");
    }

    fn hello(srv) {
        let mut s = srv.raw();
        let id = raw_cmd(&mut s, &["CLIENT", "ID"]).int();
        // RESP2 HELLO: a flat array.
        let r = raw_cmd(&mut s, &["HELLO"]);
        assert!(matches!(r, Reply::Array(_)), "{r:?}");
        check_hello(&r, 2, Some(id));
        let r = raw_cmd(&mut s, &["HELLO", "2"]);
        check_hello(&r, 2, Some(id));
        // HELLO 3 switches to RESP3: a map, and the wire format changes.
        let bytes = raw_roundtrip(&mut s, &resp_cmd(&["HELLO", "3"]));
        assert!(bytes.starts_with(b"%7\r\n"), "{:?}", String::from_utf8_lossy(&bytes));
        check_hello(&parse_reply(&bytes), 3, Some(id));
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["GET", "nokey"])), b"_\r\n");
        // HELLO with no version keeps the current protocol.
        let bytes = raw_roundtrip(&mut s, &resp_cmd(&["HELLO"]));
        assert!(bytes.starts_with(b"%7\r\n"));
        check_hello(&parse_reply(&bytes), 3, Some(id));
        // And back.
        check_hello(&raw_cmd(&mut s, &["HELLO", "2"]), 2, Some(id));
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["GET", "nokey"])), b"$-1\r\n");
        // Errors; the protocol stays RESP2.
        let noproto = err("NOPROTO unsupported protocol version");
        assert_eq!(raw_cmd(&mut s, &["HELLO", "4"]), noproto);
        assert_eq!(raw_cmd(&mut s, &["HELLO", "1"]), noproto);
        assert_eq!(raw_cmd(&mut s, &["HELLO", "0"]), noproto);
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "abc"]),
            err("ERR Protocol version is not an integer or out of range")
        );
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "3", "FOO"]),
            err("ERR Syntax error in HELLO option 'FOO'")
        );
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "3", "SETNAME"]),
            err("ERR Syntax error in HELLO option 'SETNAME'")
        );
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "3", "AUTH", "default"]),
            err("ERR Syntax error in HELLO option 'AUTH'")
        );
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "2", "SETNAME", "a b"]),
            err("ERR Client names cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["GET", "nokey"])), b"$-1\r\n");
        // SETNAME option.
        check_hello(&raw_cmd(&mut s, &["HELLO", "2", "SETNAME", "myname"]), 2, Some(id));
        assert_eq!(raw_cmd(&mut s, &["CLIENT", "GETNAME"]), bulk("myname"));
        // AUTH option with no password configured: the default user accepts
        // any password.
        let r = raw_cmd(&mut s, &["HELLO", "3", "AUTH", "default", "whatever", "SETNAME", "n2"]);
        check_hello(&r, 3, Some(id));
        assert_eq!(raw_cmd(&mut s, &["CLIENT", "GETNAME"]), bulk("n2"));
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "3", "AUTH", "nosuchuser", "pw"]),
            err(WRONGPASS)
        );
        // Lowercase options.
        check_hello(&raw_cmd(&mut s, &["hello", "2", "setname", "n3"]), 2, Some(id));
        assert_eq!(raw_cmd(&mut s, &["CLIENT", "GETNAME"]), bulk("n3"));
        // The redis crate's RESP3 connection negotiates with HELLO 3.
        let mut c3 = srv.client_resp3();
        assert_eq!(cmd(&mut c3, &["GET", "nokey"]), nil());
        check_hello(&cmd(&mut c3, &["HELLO"]), 3, None);
    }

    fn auth_without_password(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["AUTH", "x"], err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")),
            (&["AUTH", "default", "anything"], ok()),
            (&["AUTH", "nosuchuser", "pw"], err(WRONGPASS)),
            (&["AUTH", "a", "b", "c"], err(SYNTAX)),
            (&["AUTH"], arity("auth")),
            (&["PING"], status("PONG")),
        ]);
    }

    fn select_per_connection(srv) {
        let mut a = srv.client();
        let mut b = srv.client();
        expect_all(&mut a, &[
            (&["SELECT", "5"], ok()),
            (&["SET", "k", "in5"], ok()),
            (&["SELECT", "16"], err("ERR DB index is out of range")),
            (&["SELECT", "-1"], err("ERR DB index is out of range")),
            (&["SELECT", "x"], err(NOT_INT)),
            // A failed SELECT keeps the current db.
            (&["GET", "k"], bulk("in5")),
            (&["DBSIZE"], int(1)),
        ]);
        expect_all(&mut b, &[
            (&["GET", "k"], nil()),
            (&["DBSIZE"], int(0)),
            (&["SELECT", "5"], ok()),
            (&["GET", "k"], bulk("in5")),
        ]);
    }

    fn quit(srv) {
        let mut s = srv.raw();
        // Commands pipelined after QUIT are not executed.
        s.set_nodelay(true).unwrap();
        std::io::Write::write_all(
            &mut s,
            b"*1\r\n$4\r\nQUIT\r\n*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n",
        )
        .unwrap();
        assert_eq!(read_to_close(&mut s), b"+OK\r\n");
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["GET", "after"]), nil());
        // Inline QUIT.
        let mut s = srv.raw();
        std::io::Write::write_all(&mut s, b"QUIT\r\n").unwrap();
        assert_eq!(read_to_close(&mut s), b"+OK\r\n");
        srv.assert_serving();
    }

    fn reset(srv) {
        let mut s = srv.raw();
        let id = raw_cmd(&mut s, &["CLIENT", "ID"]).int();
        let bytes = raw_roundtrip(&mut s, &resp_cmd(&["HELLO", "3"]));
        assert!(bytes.starts_with(b"%"));
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["SELECT", "2"])), b"+OK\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["SET", "k", "in2"])), b"+OK\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["CLIENT", "SETNAME", "nm"])), b"+OK\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["RESET"])), b"+RESET\r\n");
        // Back to RESP2, db 0, no name; same connection id.
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["GET", "k"])), b"$-1\r\n");
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["CLIENT", "GETNAME"])), b"$-1\r\n");
        assert_eq!(raw_cmd(&mut s, &["CLIENT", "ID"]), int(id));
        assert_eq!(raw_cmd(&mut s, &["SELECT", "2"]), ok());
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), bulk("in2"));
        assert_eq!(raw_cmd(&mut s, &["RESET", "x"]), arity("reset"));
    }

    fn client_id_name(srv) {
        let mut a = srv.client();
        let mut b = srv.client();
        let ida = cmd(&mut a, &["CLIENT", "ID"]).int();
        let idb = cmd(&mut b, &["CLIENT", "ID"]).int();
        assert!(ida > 0 && idb > 0 && ida != idb, "ids {ida} {idb}");
        assert!(idb > ida, "ids increase with connection order: {ida} {idb}");
        assert_eq!(cmd(&mut a, &["CLIENT", "ID"]), int(ida));
        let bad_name = err("ERR Client names cannot contain spaces, newlines or special characters.");
        expect_all(&mut a, &[
            (&["CLIENT", "GETNAME"], nil()),
            (&["CLIENT", "SETNAME", "worker-1"], ok()),
            (&["CLIENT", "GETNAME"], bulk("worker-1")),
            (&["client", "setname", "w2"], ok()),
            (&["CLIENT", "GETNAME"], bulk("w2")),
            (&["CLIENT", "SETNAME", "a b"], bad_name.clone()),
            (&["CLIENT", "SETNAME", "a\nb"], bad_name.clone()),
            (&["CLIENT", "SETNAME", "caf\u{e9}"], bad_name),
            (&["CLIENT", "GETNAME"], bulk("w2")),
            (&["CLIENT", "SETNAME", ""], ok()),
            (&["CLIENT", "GETNAME"], nil()),
            (&["CLIENT", "SETNAME"], arity("client|setname")),
            (&["CLIENT", "GETNAME", "x"], arity("client|getname")),
            (&["CLIENT", "ID", "x"], arity("client|id")),
            (&["CLIENT"], arity("client")),
            (&["CLIENT", "FOO"], err("ERR unknown subcommand 'FOO'. Try CLIENT HELP.")),
        ]);
        assert_eq!(cmd(&mut b, &["CLIENT", "GETNAME"]), nil());
    }

    fn client_list_info(srv) {
        let mut a = srv.raw();
        let ida = raw_cmd(&mut a, &["CLIENT", "ID"]).int();
        assert_eq!(raw_cmd(&mut a, &["CLIENT", "SETNAME", "alpha"]), ok());
        assert_eq!(raw_cmd(&mut a, &["SELECT", "3"]), ok());
        let addr_a = a.local_addr().unwrap().to_string();

        let mut b = srv.client();
        let idb = cmd(&mut b, &["CLIENT", "ID"]).int();
        let list = cmd(&mut b, &["CLIENT", "LIST"]).text();
        let clients = client_list(&list);
        assert!(clients.len() >= 2, "{list:?}");
        let ea = clients
            .iter()
            .find(|m| m["id"] == ida.to_string())
            .unwrap_or_else(|| panic!("client {ida} missing from {list:?}"));
        assert_eq!(ea["name"], "alpha");
        assert_eq!(ea["db"], "3");
        assert_eq!(ea["addr"], addr_a);
        assert_eq!(ea["laddr"], srv.addr());
        assert_eq!(ea["resp"], "2");
        let eb = clients
            .iter()
            .find(|m| m["id"] == idb.to_string())
            .unwrap_or_else(|| panic!("client {idb} missing from {list:?}"));
        assert_eq!(eb["name"], "");
        assert_eq!(eb["db"], "0");
        assert_eq!(eb["cmd"], "client|list");

        // CLIENT INFO: exactly this connection, one line.
        let info = raw_cmd(&mut a, &["CLIENT", "INFO"]).text();
        assert!(info.ends_with('\n') && info.matches('\n').count() == 1, "{info:?}");
        let m = client_fields(info.trim_end());
        assert_eq!(m["id"], ida.to_string());
        assert_eq!(m["name"], "alpha");
        assert_eq!(m["db"], "3");
        assert_eq!(m["addr"], addr_a);
        assert_eq!(m["cmd"], "client|info");

        // A closed connection leaves the list.
        drop(a);
        assert!(
            wait_until(std::time::Duration::from_secs(5), || {
                let list = cmd(&mut b, &["CLIENT", "LIST"]).text();
                !client_list(&list).iter().any(|m| m["id"] == ida.to_string())
            }),
            "closed client still listed"
        );
        expect_all(&mut b, &[
            (&["CLIENT", "LIST", "x"], err(SYNTAX)),
            (&["CLIENT", "INFO", "x"], arity("client|info")),
        ]);
    }

    fn client_kill(srv) {
        let mut killer = srv.client();
        let own = cmd(&mut killer, &["CLIENT", "ID"]).int();
        // By ID.
        let mut v1 = srv.raw();
        let id1 = raw_cmd(&mut v1, &["CLIENT", "ID"]).int();
        assert_eq!(cmd(&mut killer, &["CLIENT", "KILL", "ID", &id1.to_string()]), int(1));
        assert_eq!(read_to_close(&mut v1), b"");
        assert_eq!(cmd(&mut killer, &["CLIENT", "KILL", "ID", &id1.to_string()]), int(0));
        // By ADDR.
        let mut v2 = srv.raw();
        assert_eq!(raw_cmd(&mut v2, &["PING"]), status("PONG"));
        let addr2 = v2.local_addr().unwrap().to_string();
        assert_eq!(cmd(&mut killer, &["CLIENT", "KILL", "ADDR", &addr2]), int(1));
        assert_eq!(read_to_close(&mut v2), b"");
        // Old form: CLIENT KILL ip:port.
        let mut v3 = srv.raw();
        assert_eq!(raw_cmd(&mut v3, &["PING"]), status("PONG"));
        let addr3 = v3.local_addr().unwrap().to_string();
        assert_eq!(cmd(&mut killer, &["CLIENT", "KILL", &addr3]), ok());
        assert_eq!(read_to_close(&mut v3), b"");
        expect_all(&mut killer, &[
            (&["CLIENT", "KILL", &addr3], err("ERR No such client")),
            (&["CLIENT", "KILL", "ADDR", "1.2.3.4:5"], int(0)),
            (&["CLIENT", "KILL", "ID", "999999"], int(0)),
            (&["CLIENT", "KILL", "ID", "abc"], err("ERR client-id should be greater than 0")),
            (&["CLIENT", "KILL", "ID", "0"], err("ERR client-id should be greater than 0")),
            (&["CLIENT", "KILL", "FOO", "bar"], err(SYNTAX)),
            (&["CLIENT", "KILL", "ID", "5", "FOO"], err(SYNTAX)),
            (&["CLIENT", "KILL"], arity("client|kill")),
            // The new form skips the calling client by default.
            (&["CLIENT", "KILL", "ID", &own.to_string()], int(0)),
            (&["PING"], status("PONG")),
        ]);
        srv.assert_serving();
    }

    fn command_introspection(srv) {
        let mut c = srv.client();
        let count = cmd(&mut c, &["COMMAND", "COUNT"]).int();
        assert!(count > 0);
        let all = cmd(&mut c, &["COMMAND"]).items();
        assert_eq!(all.len() as i64, count, "COMMAND length must equal COMMAND COUNT");
        let mut names = std::collections::BTreeSet::new();
        for entry in &all {
            let e = entry.items();
            assert!(e.len() >= 6, "COMMAND entry {entry:?}");
            names.insert(e[0].text());
            e[1].int();
        }
        for name in [
            "get", "set", "setnx", "setex", "psetex", "mget", "mset", "getset", "getdel",
            "getex", "append", "strlen", "incr", "decr", "incrby", "decrby", "incrbyfloat",
            "getrange", "setrange", "del", "unlink", "exists", "touch", "type", "expire",
            "pexpire", "expireat", "pexpireat", "ttl", "pttl", "expiretime", "pexpiretime",
            "persist", "keys", "scan", "randomkey", "dbsize", "flushdb", "flushall", "select",
            "move", "swapdb", "hset", "hsetnx", "hget", "hmget", "hmset", "hdel", "hlen",
            "hexists", "hgetall", "hkeys", "hvals", "hincrby", "hincrbyfloat", "hstrlen",
            "hrandfield", "hscan", "ping", "echo", "hello", "auth", "quit", "reset", "client",
            "command", "config", "info", "time",
        ] {
            assert!(names.contains(name), "COMMAND lacks {name}");
        }
        // COMMAND INFO: one entry per name, nil for unknown ones.
        let r = cmd(&mut c, &["COMMAND", "INFO", "get", "SET", "hset", "nosuch"]).items();
        assert_eq!(r.len(), 4);
        for (entry, (name, arity, first, last, step)) in r.iter().zip([
            ("get", 2, 1, 1, 1),
            ("set", -3, 1, 1, 1),
            ("hset", -4, 1, 1, 1),
        ]) {
            let e = entry.items();
            assert!(e.len() >= 6, "{entry:?}");
            assert_eq!(e[0], bulk(name));
            assert_eq!(e[1], int(arity), "arity of {name}");
            assert!(matches!(e[2], Reply::Array(_) | Reply::Set(_)), "flags of {name}");
            assert_eq!((e[3].int(), e[4].int(), e[5].int()), (first, last, step), "{name}");
        }
        assert_eq!(r[3], nil());
        let r = cmd(&mut c, &["COMMAND", "INFO", "mget", "del", "ping"]).items();
        let shape: Vec<(i64, i64, i64, i64)> = r
            .iter()
            .map(|e| {
                let e = e.items();
                (e[1].int(), e[3].int(), e[4].int(), e[5].int())
            })
            .collect();
        assert_eq!(shape, vec![(-2, 1, -1, 1), (-2, 1, -1, 1), (-1, 0, 0, 0)]);
        // COMMAND DOCS: a map from name to a doc map.
        let docs = cmd(&mut c, &["COMMAND", "DOCS", "get"]);
        let pairs = docs.pairs();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0, bulk("get"));
        assert!(pairs[0].1.get("summary").is_some(), "{docs:?}");
        assert_eq!(cmd(&mut c, &["COMMAND", "DOCS", "nosuch"]), arr(vec![]));
        expect_all(&mut c, &[
            (&["COMMAND", "FOO"], err("ERR unknown subcommand 'FOO'. Try COMMAND HELP.")),
            (&["COMMAND", "COUNT", "x"], arity("command|count")),
        ]);
        // COMMAND LIST names every command (Redis adds its subcommands, as
        // "client|list"), and filters by a name pattern, ignoring case, or by
        // ACL category; no command comes from a module.
        let listed = sorted_texts(&cmd(&mut c, &["COMMAND", "LIST"]));
        assert!(names.iter().all(|n| listed.contains(n)), "COMMAND LIST lacks some of {names:?}");
        let filtered = |c: &mut redis::Connection, by: &str, arg: &str| sorted_texts(&cmd(c, &["COMMAND", "LIST", "FILTERBY", by, arg]));
        assert_eq!(filtered(&mut c, "PATTERN", "HINCR*"), ["hincrby", "hincrbyfloat"]);
        assert_eq!(filtered(&mut c, "pattern", "zrev*"), ["zrevrange", "zrevrangebylex", "zrevrangebyscore", "zrevrank"]);
        assert_eq!(filtered(&mut c, "PATTERN", "nosuch*"), Vec::<String>::new());
        assert_eq!(
            filtered(&mut c, "ACLCAT", "Hash"),
            [
                "hdel", "hexists", "hget", "hgetall", "hincrby", "hincrbyfloat", "hkeys", "hlen", "hmget",
                "hmset", "hrandfield", "hscan", "hset", "hsetnx", "hstrlen", "hvals",
            ]
        );
        assert_eq!(filtered(&mut c, "ACLCAT", "nosuch"), Vec::<String>::new());
        assert_eq!(filtered(&mut c, "MODULE", "json"), Vec::<String>::new());
        expect_all(&mut c, &[
            (&["COMMAND", "LIST", "FILTERBY"], err(SYNTAX)),
            (&["COMMAND", "LIST", "FILTERBY", "NAME", "get"], err(SYNTAX)),
            (&["COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "b"], err(SYNTAX)),
            (&["COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "FILTERBY", "PATTERN", "b"], err(SYNTAX)),
            (&["COMMAND", "LIST", "FOO"], err(SYNTAX)),
        ]);
    }

    fn config_get_set(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["CONFIG", "GET", "maxmemory"], bulks(&["maxmemory", "0"])),
            (&["CONFIG", "GET", "timeout"], bulks(&["timeout", "0"])),
            (&["CONFIG", "GET", "requirepass"], bulks(&["requirepass", ""])),
            (&["CONFIG", "GET", "nosuch"], arr(vec![])),
            (&["CONFIG", "SET", "maxmemory", "100mb"], ok()),
            (&["CONFIG", "GET", "maxmemory"], bulks(&["maxmemory", "104857600"])),
            (&["CONFIG", "SET", "maxmemory", "12345"], ok()),
            // The name is echoed as given.
            (&["CONFIG", "GET", "MAXMEMORY"], bulks(&["MAXMEMORY", "12345"])),
            (&["CONFIG", "SET", "maxmemory", "0"], ok()),
            (&["CONFIG", "SET", "timeout", "300"], ok()),
            (&["CONFIG", "GET", "timeout"], bulks(&["timeout", "300"])),
            (&["CONFIG", "SET", "timeout", "0"], ok()),
            (&["CONFIG", "SET", "hz", "20"], ok()),
            (&["CONFIG", "GET", "hz"], bulks(&["hz", "20"])),
            // Several parameters at once.
            (&["CONFIG", "SET", "hz", "15", "timeout", "60"], ok()),
            (&["CONFIG", "GET", "hz"], bulks(&["hz", "15"])),
            (&["CONFIG", "GET", "timeout"], bulks(&["timeout", "60"])),
            (&["CONFIG", "SET", "hz", "10", "timeout", "0"], ok()),
            // Errors.
            (&["CONFIG", "SET", "nosuch", "1"], err("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")),
            (&["CONFIG", "SET", "maxmemory", "abc"], err("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value")),
            (&["CONFIG", "SET", "timeout", "-1"], err("ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive")),
            (&["CONFIG", "SET", "hz", "abc"], err("ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer")),
            (&["CONFIG", "SET", "hz", "10", "hz", "20"], err("ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter")),
            (&["CONFIG", "SET", "hz"], arity("config|set")),
            // An odd number of name/value arguments (more than one pair).
            (&["CONFIG", "SET", "hz", "10", "timeout"], err(SYNTAX)),
            (&["CONFIG", "GET"], arity("config|get")),
            (&["CONFIG", "FOO"], err("ERR unknown subcommand 'FOO'. Try CONFIG HELP.")),
            (&["CONFIG"], arity("config")),
            (&["CONFIG", "GET", "hz"], bulks(&["hz", "10"])),
        ]);
        // Several names: the pairs, in any order.
        let r = cmd(&mut c, &["CONFIG", "GET", "maxmemory", "timeout", "nosuch"]);
        assert_eq!(
            r.sorted_pairs(),
            vec![("maxmemory".to_string(), bulk("0")), ("timeout".to_string(), bulk("0"))]
        );
        // requirepass at runtime: new connections must authenticate, the
        // current one stays authenticated.
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "requirepass", "runtime-pw"]), ok());
        assert_eq!(cmd(&mut c, &["PING"]), status("PONG"));
        let mut s = srv.raw();
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), err(NOAUTH));
        assert_eq!(raw_cmd(&mut s, &["AUTH", "runtime-pw"]), ok());
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), nil());
        let mut authed = srv.client_auth("runtime-pw");
        assert_eq!(cmd(&mut authed, &["PING"]), status("PONG"));
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "requirepass", ""]), ok());
        let mut fresh = srv.client();
        assert_eq!(cmd(&mut fresh, &["PING"]), status("PONG"));
        expect_all(&mut c, &[
            (&["CONFIG", "RESETSTAT"], ok()),
            (&["CONFIG", "RESETSTAT", "x"], arity("config|resetstat")),
            // The test servers start without a config file.
            (&["CONFIG", "REWRITE"], err("ERR The server is running without a config file")),
            (&["CONFIG", "REWRITE", "x"], arity("config|rewrite")),
        ]);
    }

    fn info(srv) {
        let mut c = srv.client();
        let mut p = redis::pipe();
        for i in 0..10 {
            p.cmd("SET").arg(format!("k{i}")).arg(i);
        }
        for i in 0..3 {
            p.cmd("SET").arg(format!("t{i}")).arg(i).arg("EX").arg(1000);
        }
        pipeline(&mut c, &p);
        let all = cmd(&mut c, &["INFO"]).text();
        for header in ["# Server", "# Clients", "# Memory", "# Stats", "# CPU", "# Keyspace"] {
            assert!(
                all.split("\r\n").any(|l| l == header),
                "INFO lacks section {header}"
            );
        }
        for field in [
            "redis_version", "tcp_port", "uptime_in_seconds", "connected_clients",
            "used_memory", "total_connections_received", "total_commands_processed",
            "keyspace_hits", "keyspace_misses", "expired_keys", "used_cpu_sys", "used_cpu_user",
        ] {
            assert!(info_field(&all, field).is_some(), "INFO lacks {field}");
        }
        assert_eq!(info_field(&all, "tcp_port").unwrap(), srv.port.to_string());
        assert!(info_field(&all, "connected_clients").unwrap().parse::<u64>().unwrap() >= 1);
        assert!(info_field(&all, "used_memory").unwrap().parse::<u64>().unwrap() > 0);
        info_field(&all, "used_cpu_sys").unwrap().parse::<f64>().unwrap();
        // Keyspace line.
        let ks = cmd(&mut c, &["INFO", "keyspace"]).text();
        assert!(ks.starts_with("# Keyspace\r\n"), "{ks:?}");
        let db0 = info_field(&ks, "db0").expect("db0 line");
        let parts: Vec<&str> = db0.split(',').collect();
        assert_eq!(parts.len(), 3, "{db0}");
        assert_eq!(parts[0], "keys=13");
        assert_eq!(parts[1], "expires=3");
        assert!(parts[2].strip_prefix("avg_ttl=").unwrap().parse::<u64>().is_ok(), "{db0}");
        assert_eq!(info_fields(&ks).len(), 1, "only db0 is listed: {ks:?}");
        assert_eq!(cmd(&mut c, &["SELECT", "2"]), ok());
        assert_eq!(cmd(&mut c, &["SET", "x", "y"]), ok());
        let ks = cmd(&mut c, &["INFO", "keyspace"]).text();
        let db2 = info_field(&ks, "db2").expect("db2 line");
        assert!(db2.starts_with("keys=1,expires=0,avg_ttl="), "{db2}");
        assert_eq!(cmd(&mut c, &["SELECT", "0"]), ok());
        // Section selection, case-insensitive, several at once.
        let server = cmd(&mut c, &["INFO", "SERVER"]).text();
        assert!(server.starts_with("# Server\r\n"));
        assert!(info_field(&server, "redis_version").is_some());
        assert!(info_field(&server, "used_memory").is_none());
        let two = cmd(&mut c, &["INFO", "clients", "memory"]).text();
        assert!(info_field(&two, "connected_clients").is_some());
        assert!(info_field(&two, "used_memory").is_some());
        assert!(info_field(&two, "redis_version").is_none());
        let stats = cmd(&mut c, &["INFO", "stats"]).text();
        let before: u64 = info_field(&stats, "total_commands_processed").unwrap().parse().unwrap();
        for _ in 0..5 {
            cmd(&mut c, &["PING"]);
        }
        let stats = cmd(&mut c, &["INFO", "stats"]).text();
        let after: u64 = info_field(&stats, "total_commands_processed").unwrap().parse().unwrap();
        assert!(after >= before + 5, "total_commands_processed {before} -> {after}");
        let cpu = cmd(&mut c, &["INFO", "cpu"]).text();
        assert!(info_field(&cpu, "used_cpu_sys").is_some());
        assert!(info_field(&cpu, "used_cpu_user").is_some());
        // Unknown section: an empty string.
        assert_eq!(cmd(&mut c, &["INFO", "nosuchsection"]), bulk(""));
        // Empty keyspace: only the header.
        assert_eq!(cmd(&mut c, &["FLUSHALL"]), ok());
        assert_eq!(cmd(&mut c, &["INFO", "keyspace"]), bulk("# Keyspace\r\n"));
    }

    fn time_dbsize(srv) {
        let mut c = srv.client();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let t = cmd(&mut c, &["TIME"]).items();
        assert_eq!(t.len(), 2);
        let secs: i64 = t[0].text().parse().unwrap();
        let usecs: i64 = t[1].text().parse().unwrap();
        assert!((now - 5..=now + 5).contains(&secs), "TIME {secs} vs {now}");
        assert!((0..1_000_000).contains(&usecs));
        expect_all(&mut c, &[
            (&["TIME", "x"], arity("time")),
            (&["DBSIZE"], int(0)),
            (&["MSET", "a", "1", "b", "2"], ok()),
            (&["HSET", "h", "f", "v"], int(1)),
            (&["DBSIZE"], int(3)),
            (&["DEL", "a"], int(1)),
            (&["DBSIZE"], int(2)),
        ]);
    }

    fn command_info_flags_match_redis(srv) {
        let mut c = srv.client();
        // As Redis 7.0 lists them, in its order. Not listed: HELLO, AUTH,
        // QUIT, RESET and SHUTDOWN, which Redis also flags allow_busy (for
        // scripts, which coreshard has not), and the containers CLIENT,
        // CONFIG and PUBSUB, whose flags Redis puts on their subcommands.
        let want: &[(&str, i64, &[&str])] = &[
            ("ping", -1, &["fast"]),
            ("echo", 2, &["loading", "stale", "fast"]),
            ("select", 2, &["loading", "stale", "fast"]),
            ("command", -1, &["loading", "stale"]),
            ("info", -1, &["loading", "stale"]),
            ("time", 1, &["loading", "stale", "fast"]),
            ("lastsave", 1, &["loading", "stale", "fast"]),
            ("subscribe", -2, &["pubsub", "noscript", "loading", "stale"]),
            ("unsubscribe", -1, &["pubsub", "noscript", "loading", "stale"]),
            ("psubscribe", -2, &["pubsub", "noscript", "loading", "stale"]),
            ("punsubscribe", -1, &["pubsub", "noscript", "loading", "stale"]),
            ("publish", 3, &["pubsub", "loading", "stale", "fast"]),
        ];
        for (name, arity, flags) in want {
            let info = cmd(&mut c, &["COMMAND", "INFO", name]).items()[0].items();
            assert_eq!(info[1], int(*arity), "{name} arity");
            let got: Vec<String> = info[2].items().iter().map(Reply::text).collect();
            assert_eq!(got, *flags, "{name} flags");
        }
        // Flags in Redis's order where several apply: noscript before
        // loading, stale before fast, fast before no_auth.
        let hello: Vec<String> = cmd(&mut c, &["COMMAND", "INFO", "hello"]).items()[0].items()[2].items().iter().map(Reply::text).collect();
        let at = |f: &str| hello.iter().position(|h| h == f).unwrap_or_else(|| panic!("hello lacks {f}: {hello:?}"));
        assert!(at("noscript") < at("loading") && at("stale") < at("fast") && at("fast") < at("no_auth"), "{hello:?}");
    }

    fn help_subcommands(srv) {
        let mut c = srv.client();
        for container in ["CLIENT", "COMMAND", "CONFIG", "MEMORY", "OBJECT", "PUBSUB"] {
            let help: Vec<String> = cmd(&mut c, &[container, "HELP"]).items().iter().map(Reply::text).collect();
            let head = format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
            assert_eq!(help.first(), Some(&head), "{container} HELP");
            assert!(help.ends_with(&["HELP".to_string(), "    Prints this help.".to_string()]), "{container} HELP: {help:?}");
            let lower = container.to_ascii_lowercase();
            assert_eq!(cmd(&mut c, &[&lower, "help"]).items().len(), help.len());
            assert_eq!(
                cmd(&mut c, &[container, "HELP", "x"]),
                err(&format!("ERR wrong number of arguments for '{lower}|help' command"))
            );
        }
    }

    fn lastsave(srv) {
        let mut c = srv.client();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        // Nothing was saved: the time the server started.
        let last = cmd(&mut c, &["LASTSAVE"]).int();
        assert!((now - 60..=now + 1).contains(&last), "LASTSAVE {last} vs now {now}");
        assert_eq!(cmd(&mut c, &["lastsave"]), int(last));
        assert_eq!(cmd(&mut c, &["LASTSAVE", "x"]), arity("lastsave"));
    }

    fn shutdown_refusals_leave_the_server_running(srv) {
        let mut c = srv.client();
        expect_all(&mut c, &[
            (&["SHUTDOWN", "FOO"], err(SYNTAX)),
            (&["SHUTDOWN", "NOSAVE", "FOO"], err(SYNTAX)),
            // NOSAVE contradicts SAVE; ABORT takes no other option.
            (&["SHUTDOWN", "NOSAVE", "SAVE"], err(SYNTAX)),
            (&["SHUTDOWN", "save", "NOW", "nosave"], err(SYNTAX)),
            (&["SHUTDOWN", "ABORT", "NOSAVE"], err(SYNTAX)),
            (&["SHUTDOWN", "NOW", "ABORT"], err(SYNTAX)),
            (&["SHUTDOWN", "ABORT"], err("ERR No shutdown in progress.")),
            (&["SHUTDOWN", "abort", "ABORT"], err("ERR No shutdown in progress.")),
            (&["PING"], status("PONG")),
        ]);
        srv.assert_serving();
    }
}

shard_tests! {
    extra = ["--requirepass", "secret"];

    fn auth_required(srv) {
        let mut s = srv.raw();
        assert_eq!(raw_cmd(&mut s, &["PING"]), err(NOAUTH));
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), err(NOAUTH));
        assert_eq!(raw_cmd(&mut s, &["SET", "k", "v"]), err(NOAUTH));
        assert_eq!(raw_cmd(&mut s, &["SELECT", "1"]), err(NOAUTH));
        assert_eq!(raw_cmd(&mut s, &["CLIENT", "ID"]), err(NOAUTH));
        // Unknown commands are reported as such even before AUTH.
        assert_eq!(
            raw_cmd(&mut s, &["FOO"]),
            err("ERR unknown command 'FOO', with args beginning with: ")
        );
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "3"]),
            err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
        );
        assert_eq!(raw_cmd(&mut s, &["AUTH", "wrong"]), err(WRONGPASS));
        assert_eq!(raw_cmd(&mut s, &["AUTH", "default", "wrong"]), err(WRONGPASS));
        assert_eq!(raw_cmd(&mut s, &["AUTH", "nosuchuser", "secret"]), err(WRONGPASS));
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), err(NOAUTH));
        assert_eq!(raw_cmd(&mut s, &["AUTH", "secret"]), ok());
        assert_eq!(raw_cmd(&mut s, &["SET", "k", "v"]), ok());
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), bulk("v"));
        assert_eq!(raw_cmd(&mut s, &["AUTH", "default", "secret"]), ok());
        // A failed AUTH does not log an authenticated client out.
        assert_eq!(raw_cmd(&mut s, &["AUTH", "wrong"]), err(WRONGPASS));
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), bulk("v"));
        // RESET logs the client out.
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["RESET"])), b"+RESET\r\n");
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), err(NOAUTH));
        // QUIT works unauthenticated.
        std::io::Write::write_all(&mut s, &resp_cmd(&["QUIT"])).unwrap();
        assert_eq!(read_to_close(&mut s), b"+OK\r\n");

        // HELLO with AUTH authenticates and switches protocol at once.
        let mut s = srv.raw();
        assert_eq!(
            raw_cmd(&mut s, &["HELLO", "3", "AUTH", "default", "wrong"]),
            err(WRONGPASS)
        );
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), err(NOAUTH));
        let bytes = raw_roundtrip(
            &mut s,
            &resp_cmd(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "authed"]),
        );
        assert!(bytes.starts_with(b"%7\r\n"), "{:?}", String::from_utf8_lossy(&bytes));
        let r = parse_reply(&bytes);
        assert_eq!(r.get("proto"), Some(int(3)));
        assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["GET", "nokey"])), b"_\r\n");
        assert_eq!(raw_cmd(&mut s, &["CLIENT", "GETNAME"]), bulk("authed"));
        assert_eq!(raw_cmd(&mut s, &["GET", "k"]), bulk("v"));

        // Clients that authenticate on connect (RESP2 AUTH, RESP3 HELLO AUTH).
        let mut c = srv.client_auth("secret");
        assert_eq!(cmd(&mut c, &["GET", "k"]), bulk("v"));
        let mut c3 = connect(&format!("redis://:secret@127.0.0.1:{}/?protocol=resp3", srv.port));
        assert_eq!(cmd(&mut c3, &["GET", "k"]), bulk("v"));
        let bad = redis::Client::open(format!("redis://:nope@127.0.0.1:{}/", srv.port))
            .unwrap()
            .get_connection_with_timeout(IO_TIMEOUT);
        assert!(bad.is_err(), "connecting with a wrong password must fail");
    }
}
