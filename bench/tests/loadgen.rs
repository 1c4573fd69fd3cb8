//! coreshard-bench against real servers: a coreshard and a redis-server, each
//! on its own loopback port, and a deliberately wrong server.
//!
//! The request count coreshard-bench reports must equal the growth of the
//! server's `total_commands_processed` (INFO stats) over the run, less the
//! one INFO call inside the window, and `--verify` must find no mismatch.
//!
//! Where the binaries come from: cargo builds this package's own binary for
//! its integration tests (`CARGO_BIN_EXE_coreshard-bench`), but not another
//! package's. The coreshard server is therefore taken from `CORESHARD_BIN`
//! when set, else from the same target directory as coreshard-bench
//! (`target/<profile>/coreshard`), which `cargo test --workspace` (the
//! README's and CI's test command) builds before any test runs. Running only
//! this package's tests needs `cargo build -p coreshard` first; the test says
//! so when the binary is missing. redis-server must be installed (`.ci/run`
//! installs it).

use coreshard_bench::resp::{Parsed, Reply, parse_reply};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_coreshard-bench");
const START_DEADLINE: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn coreshard_bin() -> PathBuf {
    if let Ok(path) = std::env::var("CORESHARD_BIN") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(BENCH).with_file_name("coreshard");
    assert!(
        path.exists(),
        "no coreshard binary at {}: run `cargo build -p coreshard` first (cargo test --workspace does), or set CORESHARD_BIN",
        path.display()
    );
    path
}

/// A server process, killed on drop.
struct Server {
    port: u16,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// Starts `program` with `args` plus `--port N`, retrying on another port if
/// the first was taken between probing and binding.
fn start(program: &str, args: &[&str]) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(program)
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program}: {e} (redis-server comes from Debian's redis-server package: apt-get install redis-server)")
            });
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port))
                && let Some(reply) = request(&mut s, &[b"PING"])
                && reply == b"PONG"
            {
                return Server { port, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{program} did not start");
}

/// Sends one command and returns the text of a status or bulk reply.
fn request(s: &mut TcpStream, args: &[&[u8]]) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut out = Vec::new();
    coreshard_bench::resp::push_command(&mut out, args);
    s.write_all(&out).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match parse_reply(&buf).ok()? {
            Parsed::Complete(Reply::Simple(text) | Reply::Bulk(text), _) => return Some(text.to_vec()),
            Parsed::Complete(_, _) => return None,
            Parsed::Incomplete => {}
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn commands_processed(port: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect for INFO");
    let info = request(&mut s, &[b"INFO", b"stats"]).expect("INFO reply");
    let info = String::from_utf8(info).expect("INFO is text");
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no total_commands_processed in INFO:\n{info}"))
}

/// Runs coreshard-bench with `args` against `port`; returns its exit code and
/// its JSON report.
fn bench(port: u16, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let dir = std::env::temp_dir().join(format!("coreshard-bench-test-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let out = Command::new(BENCH)
        .args(["--port", &port.to_string(), "--json", json.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run coreshard-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let report =
        std::fs::read(&json).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), report, stdout)
}

/// Three runs, each followed by a check that the reported count matches the
/// server's own: closed-loop pipelined with --verify and value sizes in a
/// range; open-loop timed with --verify over zipf keys; and closed-loop
/// without --verify over keys never set (misses, which are not failures).
fn counts_match_and_verify_is_clean(server: &Server) {
    let runs = [
        "-n 20000 -t 2 -c 8 -P 4 --ratio 1:1 --key-space 1000 -d 1-300 --verify",
        "--test-time 1 --rate 3000 -c 4 --ratio 1:3 --key-pattern zipf:0.99 --verify",
        "-n 5000 -c 4 --ratio 1:1 --key-space 1000000 --key-prefix fresh:",
    ];
    for run in runs {
        let args: Vec<&str> = run.split(' ').collect();
        let before = commands_processed(server.port);
        let (code, report, output) = bench(server.port, &args);
        let after = commands_processed(server.port);
        assert_eq!(code, Some(0), "coreshard-bench {run} failed:\n{output}");
        let requests = report["requests"].as_u64().expect("requests in the JSON report");
        // The server counted the first INFO (the second counts itself after reporting).
        assert_eq!(after - before - 1, requests, "server count vs coreshard-bench {run}:\n{output}");
        assert_eq!(report["mismatches"], 0, "{output}");
        let rows = report["rows"].as_array().unwrap();
        let all = rows.iter().find(|r| r["command"] == "ALL").unwrap();
        if args.contains(&"--verify") {
            assert!(report["verified"].as_u64().unwrap() > 100, "GETs were checked:\n{output}");
        } else {
            assert!(all["misses"].as_u64().unwrap() > 100, "GETs of fresh keys miss:\n{output}");
        }
        if let Some(i) = args.iter().position(|a| *a == "-n") {
            assert_eq!(requests.to_string(), args[i + 1]);
        } else {
            // 3000 requests a second for one second, in the schedule's own time.
            assert!((2900..=3100).contains(&requests), "open loop sent {requests}:\n{output}");
        }
        assert_eq!(all["requests"].as_u64(), Some(requests));
        assert!(all["p50_ms"].as_f64().unwrap() <= all["p99_ms"].as_f64().unwrap());
        assert!(all["p99_ms"].as_f64().unwrap() <= all["max_ms"].as_f64().unwrap());
    }
}

#[test]
fn against_coreshard() {
    let server = start(coreshard_bin().to_str().unwrap(), &["--threads", "2"]);
    counts_match_and_verify_is_clean(&server);
}

#[test]
fn against_redis_server() {
    let server = start("redis-server", &["--save", "", "--appendonly", "no"]);
    counts_match_and_verify_is_clean(&server);
}

/// A one-connection fake server on a free port: for the n-th request (from
/// 0) it waits `stall(n)`, then answers SETs with +OK and GETs with the same
/// wrong value.
fn fake_server(stall: fn(u64) -> Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut served = 0;
        while let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut out = Vec::new();
            // Requests are arrays of bulks, which the reply parser reads too.
            while let Ok(Parsed::Complete(_, used)) = parse_reply(&buf) {
                std::thread::sleep(stall(served));
                served += 1;
                out.extend_from_slice(if buf.starts_with(b"*3\r\n$3\r\nSET") {
                    b"+OK\r\n"
                } else {
                    b"$5\r\nwrong\r\n"
                });
                buf.drain(..used);
            }
            if s.write_all(&out).is_err() {
                return;
            }
        }
    });
    port
}

/// --verify must catch a server that answers GETs wrongly and fail the run.
#[test]
fn verify_catches_a_wrong_server() {
    let port = fake_server(|_| Duration::ZERO);
    let (code, report, output) =
        bench(port, &["-n", "10", "-c", "1", "--key-space", "1", "--ratio", "1:1", "-d", "5", "--verify"]);
    assert_eq!(code, Some(1), "a wrong server must fail the run:\n{output}");
    assert_eq!(report["mismatches"], 5, "{output}");
    assert!(output.contains("mismatch: GET key:0: \"wrong\""), "{output}");
}

/// A server that stalls 300 ms once, at the 20th request. Closed loop, the
/// stall delays one request, so the p90 stays low; open loop at 1000/s, the
/// ~300 requests due during the stall count their wait from their intended
/// send time, so the p90 shows it (coordinated omission is not hidden).
#[test]
fn open_loop_latency_counts_from_the_intended_send_time() {
    fn stall(n: u64) -> Duration {
        if n == 20 { Duration::from_millis(300) } else { Duration::ZERO }
    }
    let p90 = |report: &serde_json::Value| report["rows"][0]["p90_ms"].as_f64().unwrap();
    let closed = fake_server(stall);
    let (code, report, output) = bench(closed, &["-n", "1000", "-c", "1", "--ratio", "1:0"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(report["rows"][0]["max_ms"].as_f64().unwrap() >= 300.0, "{output}");
    assert!(p90(&report) < 50.0, "closed loop: one slow request:\n{output}");
    let open = fake_server(stall);
    let (code, report, output) = bench(open, &["-n", "1000", "-c", "1", "--ratio", "1:0", "--rate", "1000"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(p90(&report) > 100.0, "open loop: the requests due during the stall waited too:\n{output}");
}
