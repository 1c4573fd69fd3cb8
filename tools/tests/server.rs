//! The server process itself: graceful shutdown, configuration sources,
//! listeners and connection limits, and the stock Redis tools against it.
//! These tests are coreshard-specific (flags and files redis-server does not
//! share), so they do not run against the reference server.

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn coreshard_only(srv: &Server) -> bool {
    if srv.is_reference() {
        eprintln!("skipped: coreshard-specific test");
        return false;
    }
    true
}

/// Runs `body` against a 1-shard and a 4-shard coreshard (not the reference:
/// these tests stop the server, which the shared harness treats as a failure).
fn for_each_shard_count(body: impl Fn(Server)) {
    for shards in [1, 4] {
        let srv = Server::start(shards);
        if srv.is_reference() {
            eprintln!("skipped: coreshard-specific test");
            return;
        }
        body(srv);
    }
}

#[test]
fn sigterm_finishes_commands_already_read() {
    for_each_shard_count(|mut srv| {
        let mut idle = srv.raw();
        let mut busy = srv.raw();
        // 200 commands in one write (under one read buffer), so the server
        // reads them all in the read that returns the first.
        let mut pipeline = Vec::new();
        for i in 0..200 {
            pipeline.extend_from_slice(&resp_cmd(&["SET", &format!("key:{i}"), "value"]));
        }
        busy.write_all(&pipeline).unwrap();
        let mut got = Vec::new();
        read_replies(&mut busy, &mut got, 1).unwrap();
        srv.signal(libc::SIGTERM);
        // Every command already read is answered before the connection closes.
        let rest = read_to_close(&mut busy);
        got.extend_from_slice(&rest);
        assert_eq!(got, b"+OK\r\n".repeat(200));
        // An idle connection is closed, and the process exits cleanly.
        assert!(read_to_close(&mut idle).is_empty());
        let status = srv.wait_exit(Duration::from_secs(15)).expect("server did not exit after SIGTERM");
        assert!(status.success(), "exit status {status}");
        assert!(std::net::TcpStream::connect(srv.addr()).is_err(), "still accepting after shutdown");
    });
}

/// The `THP_enabled` field of a process's status (Linux 5.0 and later show it).
fn thp_enabled(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    line.split_whitespace().nth(1).map(str::to_string)
}

#[test]
fn transparent_huge_pages_are_off_unless_asked_for() {
    let srv = Server::start(1);
    if !coreshard_only(&srv) {
        return;
    }
    let mut c = srv.client();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("disable-thp").query(&mut c).unwrap();
    assert_eq!(got, ["disable-thp", "yes"]);
    let refused: redis::RedisResult<()> = redis::cmd("CONFIG").arg("SET").arg("disable-thp").arg("no").query(&mut c);
    assert!(refused.is_err(), "disable-thp is immutable");
    match thp_enabled(srv.pid()) {
        Some(v) => assert_eq!(v, "0", "THP disabled for the server process"),
        None => eprintln!("this kernel does not show THP_enabled; only the setting was checked"),
    }
    let kept = Server::start_with(1, &["--disable-thp", "no"]);
    if let (Some(v), Some(mine)) = (thp_enabled(kept.pid()), thp_enabled(std::process::id())) {
        assert_eq!(v, mine, "with disable-thp no the server keeps the system's setting");
    }
}

#[test]
fn shutdown_command_stops_the_server() {
    for_each_shard_count(|mut srv| {
        let mut c = srv.raw();
        c.write_all(&resp_cmd(&["SHUTDOWN", "NOSAVE"])).unwrap();
        assert!(read_to_close(&mut c).is_empty(), "SHUTDOWN replies nothing on success");
        let status = srv.wait_exit(Duration::from_secs(15)).expect("server did not exit after SHUTDOWN");
        assert!(status.success(), "exit status {status}");
    });
}

shard_tests! {
    fn maxclients_refuses_with_redis_error(srv) {
        if !coreshard_only(srv) {
            return;
        }
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxclients", "3"]), ok());
        // Open connections until one is refused. Closed connections may be
        // counted until their shard sees the close, so the refusal can come
        // early, never late: at most 3 are admitted in all (with `c`).
        let mut admitted = Vec::new();
        let mut refusal = Vec::new();
        let refused = wait_until(Duration::from_secs(10), || {
            let mut s = srv.raw();
            s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let _ = s.write_all(&resp_cmd(&["PING"]));
            let mut buf = vec![0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            buf.truncate(n);
            if buf == b"+PONG\r\n" {
                admitted.push(s);
                false
            } else {
                refusal = buf;
                !refusal.is_empty()
            }
        });
        assert!(refused, "no client was refused");
        assert_eq!(refusal, b"-ERR max number of clients reached\r\n");
        assert!(admitted.len() <= 2, "{} clients admitted besides the first", admitted.len());
        let info = cmd(&mut c, &["INFO", "stats"]).text();
        assert!(info_field(&info, "rejected_connections").is_some_and(|n| n != "0"), "{info}");
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxclients", "10000"]), ok());
        drop(admitted);
        srv.assert_serving();
    }

    fn query_buffer_limit_closes_only_that_client(srv) {
        if !coreshard_only(srv) {
            return;
        }
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "client-query-buffer-limit", "1mb"]), ok());
        let closed = wait_until(Duration::from_secs(10), || {
            let mut big = srv.raw();
            // A valid header for a 4 MB bulk: within proto-max-bulk-len, over the query buffer limit.
            big.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n").unwrap();
            let _ = big.write_all(&[b'x'; 64 * 1024]);
            read_to_close(&mut big).is_empty()
        });
        assert!(closed, "the oversized client was not closed");
        srv.assert_serving();
        assert_eq!(cmd(&mut c, &["PING"]), status("PONG"));
    }

    fn large_values_round_trip(srv) {
        let mut c = srv.client();
        let value: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let r = cmd_bin(&mut c, &[b"SET", b"big", &value]);
        assert_eq!(r, ok());
        assert_eq!(cmd(&mut c, &["STRLEN", "big"]), int(3_000_000));
        assert_eq!(cmd_bin(&mut c, &[b"GET", b"big"]), bulk(&value));
    }
}

#[test]
fn config_file_environment_and_flags_combine() {
    let dir = std::env::temp_dir().join(format!("coreshard-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("test.conf");
    std::fs::write(
        &conf,
        "# a redis.conf carries over\nsave 900 1\nappendonly no\ndatabases 4\nrequirepass fromfile\nhz 20\n",
    )
    .unwrap();
    let port = probe_port();
    let child = Command::new(coreshard_path())
        .arg(&conf)
        .args(["--port", &port.to_string(), "--threads", "2", "--requirepass", "fromflag"])
        .env("CORESHARD_DATABASES", "8")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("redis://:fromflag@127.0.0.1:{port}/");
    let up = wait_until(Duration::from_secs(10), || {
        redis::Client::open(url.as_str()).and_then(|c| c.get_connection()).is_ok()
    });
    assert!(up, "server did not come up");
    let mut c = connect(&url);
    // The flag beats the file; the environment beats the file.
    assert_eq!(cmd(&mut c, &["CONFIG", "GET", "requirepass"]), arr(vec![bulk("requirepass"), bulk("fromflag")]));
    assert_eq!(cmd(&mut c, &["CONFIG", "GET", "databases"]), arr(vec![bulk("databases"), bulk("8")]));
    assert_eq!(cmd(&mut c, &["CONFIG", "GET", "hz"]), arr(vec![bulk("hz"), bulk("20")]));
    assert_eq!(cmd(&mut c, &["SELECT", "7"]), ok());
    assert_eq!(cmd(&mut c, &["SELECT", "8"]), err("ERR DB index is out of range"));
    let info = cmd(&mut c, &["INFO", "server"]).text();
    assert_eq!(info_field(&info, "shards").as_deref(), Some("2"));
    assert_eq!(info_field(&info, "config_file").as_deref(), Some(conf.to_str().unwrap()));
    assert_eq!(
        cmd(&mut c, &["CONFIG", "REWRITE"]),
        err("ERR CONFIG REWRITE is not supported: edit the config file and restart")
    );
    // SIGTERM: a clean exit, with the ignored directives logged as warnings.
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("save") && log.contains("appendonly"), "ignored directives not reported:\n{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_file_errors_name_the_line() {
    let dir = std::env::temp_dir().join(format!("coreshard-test-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("bad.conf");
    std::fs::write(&conf, "port 7777\n\nno-such-directive yes\n").unwrap();
    let out = Command::new(coreshard_path()).arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("no-such-directive"), "{err}");
    let out = Command::new(coreshard_path()).args(["--maxmemory", "lots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maxmemory"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shipped_example_config_loads() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/coreshard.conf");
    let port = probe_port();
    let mut child = Command::new(coreshard_path())
        .args([conf, "--port", &port.to_string(), "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}/");
    let up = wait_until(Duration::from_secs(10), || {
        redis::Client::open(url.as_str()).and_then(|c| c.get_connection()).is_ok()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the example config did not start a server");
}

#[test]
fn version_and_help() {
    let out = Command::new(coreshard_path()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("coreshard "));
    let out = Command::new(coreshard_path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--port", "--bind", "--unixsocket", "--threads", "--requirepass"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn unix_socket_serves_alongside_tcp() {
    let path = std::env::temp_dir().join(format!("coreshard-{}.sock", std::process::id()));
    let path_str = path.to_str().unwrap().to_string();
    let srv = Server::start_with(2, &["--unixsocket", &path_str, "--unixsocketperm", "700"]);
    let mut tcp = srv.client();
    assert_eq!(cmd(&mut tcp, &["SET", "via", "tcp"]), ok());
    let mut unix = std::os::unix::net::UnixStream::connect(&path).unwrap();
    unix.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    unix.write_all(&resp_cmd(&["GET", "via"])).unwrap();
    let mut buf = vec![0u8; 64];
    let mut got = Vec::new();
    while !got.ends_with(b"tcp\r\n") {
        let n = unix.read(&mut buf).unwrap();
        assert!(n > 0, "unix socket closed early: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"$3\r\ntcp\r\n");
    drop(srv);
}

/// redis-cli and redis-benchmark, unchanged, against coreshard. They come
/// from Debian's redis-tools, which CI installs (.ci/run).
#[test]
fn redis_cli_and_redis_benchmark_work() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("skipped: redis-cli not installed (apt-get install redis-tools)");
        return;
    }
    for shards in [1, 4] {
        let srv = Server::start(shards);
        let port = srv.port.to_string();
        let cli = |args: &[&str]| {
            let out = Command::new("redis-cli").args(["-p", &port]).args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim_end().to_string()
        };
        assert_eq!(cli(&["PING"]), "PONG");
        assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK");
        assert_eq!(cli(&["GET", "greeting"]), "hello world");
        assert_eq!(cli(&["HSET", "h", "a", "1", "b", "2"]), "2");
        assert_eq!(cli(&["--no-raw", "HGETALL", "h"]), "1) \"a\"\n2) \"1\"\n3) \"b\"\n4) \"2\"");
        assert!(cli(&["INFO", "server"]).contains("redis_version:"));
        // redis-cli --scan walks SCAN to the end.
        for i in 0..50 {
            cli(&["SET", &format!("scan:{i}"), "v"]);
        }
        let scanned = cli(&["--scan", "--pattern", "scan:*"]);
        assert_eq!(scanned.lines().count(), 50, "{scanned}");

        let out = Command::new("redis-benchmark")
            .args(["-p", &port, "-n", "2000", "-c", "10", "-P", "8", "-t", "set,get,incr,hset,mset", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report = String::from_utf8_lossy(&out.stdout);
        for test in ["SET", "GET", "INCR", "HSET", "MSET"] {
            // Progress lines end in \r; the final figure of each test follows the last one.
            let reported = report
                .split(['\r', '\n'])
                .any(|l| l.trim_start().starts_with(test) && l.contains("requests per second"));
            assert!(reported, "{test}:\n{report}");
        }
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["GET", "counter:__rand_int__"]), bulk("2000"));
    }
}

shard_tests! {
    fn instantaneous_ops_per_sec_follows_load(srv) {
        if !coreshard_only(srv) {
            return;
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loader = {
            let (stop, url) = (stop.clone(), srv.url());
            std::thread::spawn(move || {
                let mut c = connect(&url);
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                    let mut p = redis::pipe();
                    for _ in 0..100 {
                        p.cmd("PING");
                    }
                    let _: Vec<String> = p.query(&mut c).unwrap();
                }
            })
        };
        let mut c = srv.client();
        let busy = wait_until(Duration::from_secs(10), || {
            let info = cmd(&mut c, &["INFO", "stats"]).text();
            info_field(&info, "instantaneous_ops_per_sec").and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v > 0)
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        loader.join().unwrap();
        assert!(busy, "instantaneous_ops_per_sec stayed 0 under load");
    }
}

shard_tests! {
    fn info_reports_recent_largest_client_buffers(srv) {
        let mut c = srv.client();
        let big = "x".repeat(1 << 20);
        assert_eq!(cmd(&mut c, &["SET", "big", &big]), ok());
        // A partial command of 200 KB waits in the server for the rest.
        let mut partial = srv.raw();
        partial.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$300000\r\n").unwrap();
        partial.write_all(&[b'y'; 200_000]).unwrap();
        let field = |info: &str, name: &str| info_field(info, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let seen = wait_until(Duration::from_secs(10), || {
            // Keep a large reply flowing so every sampling window sees it.
            assert_eq!(cmd(&mut c, &["STRLEN", "big"]), int(1 << 20));
            let _ = cmd(&mut c, &["GET", "big"]);
            let info = cmd(&mut c, &["INFO", "clients"]).text();
            field(&info, "client_recent_max_output_buffer") >= 1 << 20
                && field(&info, "client_recent_max_input_buffer") >= 200_000
        });
        assert!(seen, "INFO clients never showed the large buffers");
    }
}
