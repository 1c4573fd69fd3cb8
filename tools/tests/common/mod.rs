//! Shared harness for the coreshard integration tests.
//!
//! Every test starts its own server on a free loopback port. By default the
//! server is coreshard (`CARGO_BIN_EXE_coreshard`, or the `CORESHARD_BIN`
//! environment variable when the tests are built outside the coreshard
//! package). When `CORESHARD_TEST_REFERENCE` names a redis-server binary the
//! very same tests run against Redis instead, which is how every expectation
//! in this suite was proven:
//!
//! ```text
//! CORESHARD_TEST_REFERENCE=redis-server cargo test -p coreshard
//! ```
//!
//! Test bodies are written once and run against a 1-shard and a 4-shard
//! server (see `shard_tests!`). Nothing in the suite sleeps to synchronize:
//! every wait is a poll with a deadline (`wait_until`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use redis::Value;

/// How long a server gets to come up.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// Read timeout of every client connection: a hung reply fails the test
/// instead of hanging the suite.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server, killed and reaped on drop.
pub struct Server {
    pub port: u16,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    reference: bool,
}

impl Server {
    /// Starts a server with `shards` worker threads.
    pub fn start(shards: usize) -> Server {
        Server::start_with(shards, &[])
    }

    /// Starts a server with `shards` worker threads and extra arguments in
    /// Redis's `--name value` style (e.g. `["--requirepass", "secret"]`).
    pub fn start_with(shards: usize, extra: &[&str]) -> Server {
        let password = extra.iter().position(|a| *a == "--requirepass").and_then(|i| extra.get(i + 1)).is_some();
        let mut last_output = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let (mut child, output, reference) = spawn(port, shards, extra);
            match wait_ready(port, &mut child, password) {
                Ok(()) => {
                    return Server { port, child, output, reference };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    release_port(port);
                    let out = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
                    last_output = format!("{why}\n--- server output ---\n{out}");
                    // The port may have been taken between probing and the
                    // server's bind: retry with another one.
                }
            }
        }
        panic!("server failed to start:\n{last_output}");
    }

    /// Starts a server on `port` (one try: the port is the caller's, e.g. a
    /// restarted server's own), or returns why it did not come up.
    pub fn start_on(port: u16, shards: usize, extra: &[&str]) -> Result<Server, String> {
        ports_in_use().lock().unwrap().insert(port);
        let (mut child, output, reference) = spawn(port, shards, extra);
        match wait_ready(port, &mut child, false) {
            Ok(()) => Ok(Server { port, child, output, reference }),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                release_port(port);
                Err(format!("{why}\n--- server output ---\n{}", String::from_utf8_lossy(&output.lock().unwrap())))
            }
        }
    }

    /// True when the tests run against the reference redis-server.
    pub fn is_reference(&self) -> bool {
        self.reference
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://` URL of this server (RESP2, no auth).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A RESP2 client connection.
    pub fn client(&self) -> redis::Connection {
        connect(&self.url())
    }

    /// A RESP3 client connection (the client sends `HELLO 3` on connect).
    pub fn client_resp3(&self) -> redis::Connection {
        connect(&format!("{}?protocol=resp3", self.url()))
    }

    /// A RESP2 client that authenticates with `password` on connect.
    pub fn client_auth(&self, password: &str) -> redis::Connection {
        connect(&format!("redis://:{password}@127.0.0.1:{}/", self.port))
    }

    /// A raw TCP connection with a read timeout.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Output (stdout + stderr) the server has written so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Panics (with the server's output) if the server process has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("server exited with {status}:\n{}", self.output());
        }
    }

    /// Proves the server still serves a fresh client: SET then GET on a new
    /// connection.
    pub fn assert_serving(&self) {
        let mut c = self.client();
        let key = format!("alive:{}", next_id());
        assert_eq!(cmd(&mut c, &["SET", &key, "yes"]), ok());
        assert_eq!(cmd(&mut c, &["GET", &key]), bulk("yes"));
        assert_eq!(cmd(&mut c, &["DEL", &key]), int(1));
    }
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the server process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits up to `timeout` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

/// The coreshard binary path, for tests that run it with their own arguments.
pub fn coreshard_path() -> String {
    coreshard_bin()
}

/// A free loopback port (released when the returned guard's value is used by a server).
pub fn probe_port() -> u16 {
    free_port()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        release_port(self.port);
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Ports handed to servers of this test process that are still alive: a
/// port freshly returned by the kernel for `127.0.0.1:0` is never one that is
/// listening, but it could be one picked by a parallel test whose server has
/// not bound it yet.
fn ports_in_use() -> &'static Mutex<std::collections::HashSet<u16>> {
    static PORTS: std::sync::OnceLock<Mutex<std::collections::HashSet<u16>>> = std::sync::OnceLock::new();
    PORTS.get_or_init(Default::default)
}

fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if ports_in_use().lock().unwrap().insert(port) {
            return port;
        }
    }
}

fn release_port(port: u16) {
    ports_in_use().lock().unwrap().remove(&port);
}

fn coreshard_bin() -> String {
    if let Some(p) = option_env!("CARGO_BIN_EXE_coreshard") {
        return p.to_string();
    }
    std::env::var("CORESHARD_BIN")
        .expect("no coreshard binary: set CORESHARD_BIN (or CORESHARD_TEST_REFERENCE=redis-server)")
}

fn spawn(port: u16, shards: usize, extra: &[&str]) -> (Child, Arc<Mutex<Vec<u8>>>, bool) {
    let port_s = port.to_string();
    let (mut command, reference) = match std::env::var("CORESHARD_TEST_REFERENCE") {
        Ok(bin) if !bin.is_empty() => {
            let mut c = Command::new(bin);
            c.args(["--port", &port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
            (c, true)
        }
        _ => {
            let mut c = Command::new(coreshard_bin());
            c.args(["--port", &port_s, "--bind", "127.0.0.1", "--threads", &shards.to_string()]);
            (c, false)
        }
    };
    // coreshard's test-only settings (`--debug-...`) mean nothing to Redis.
    let mut args = extra.iter();
    while let Some(a) = args.next() {
        if reference && a.starts_with("--debug-") {
            args.next();
            continue;
        }
        command.arg(a);
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn server");
    let output = Arc::new(Mutex::new(Vec::new()));
    // Drain both pipes so a chatty server never blocks on a full pipe.
    if let Some(out) = child.stdout.take() {
        drain(out, output.clone());
    }
    if let Some(err) = child.stderr.take() {
        drain(err, output.clone());
    }
    (child, output, reference)
}

fn drain<R: Read + Send + 'static>(mut r: R, sink: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut s = sink.lock().unwrap();
                    // Keep memory bounded for very chatty servers.
                    if s.len() < 1 << 20 {
                        s.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
    });
}

fn wait_ready(port: u16, child: &mut Child, password: bool) -> Result<(), String> {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("server exited during startup with {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("server not ready on port {port} after {START_DEADLINE:?}"));
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() {
                let mut buf = Vec::new();
                if read_replies(&mut s, &mut buf, 1).is_ok() {
                    let ready = buf == b"+PONG\r\n" || (password && buf.starts_with(b"-NOAUTH"));
                    if ready {
                        // A server that lost the bind race exits at once; make
                        // sure the one answering is ours.
                        if let Ok(Some(status)) = child.try_wait() {
                            return Err(format!("server exited during startup with {status}"));
                        }
                        return Ok(());
                    }
                    return Err(format!("unexpected readiness reply {:?}", String::from_utf8_lossy(&buf)));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Opens a redis-rs connection with a read timeout.
pub fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("client");
    let con = client.get_connection_with_timeout(IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    con
}

/// Polls `cond` until it returns true or `timeout` passes; returns whether it
/// became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// A server reply in a form convenient for exact assertions. Errors keep their
/// full text ("ERR syntax error").
#[derive(Clone, PartialEq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Status(String),
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Bool(bool),
    Verbatim(String, String),
    BigNumber(String),
    Error(String),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Nil => write!(f, "nil"),
            Reply::Int(i) => write!(f, "(int){i}"),
            Reply::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Status(s) => write!(f, "+{s}"),
            Reply::Array(a) => f.debug_list().entries(a).finish(),
            Reply::Map(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            Reply::Set(s) => write!(f, "set{s:?}"),
            Reply::Double(d) => write!(f, "(double){d}"),
            Reply::Bool(b) => write!(f, "(bool){b}"),
            Reply::Verbatim(fmt, t) => write!(f, "(verbatim {fmt}){t:?}"),
            Reply::BigNumber(n) => write!(f, "(big){n}"),
            Reply::Error(e) => write!(f, "-{e}"),
        }
    }
}

impl From<Value> for Reply {
    fn from(v: Value) -> Reply {
        match v {
            Value::Nil => Reply::Nil,
            Value::Int(i) => Reply::Int(i),
            Value::BulkString(b) => Reply::Bulk(b),
            Value::Array(a) => Reply::Array(a.into_iter().map(Reply::from).collect()),
            Value::SimpleString(s) => Reply::Status(s),
            Value::Okay => Reply::Status("OK".into()),
            Value::Map(m) => Reply::Map(m.into_iter().map(|(k, v)| (Reply::from(k), Reply::from(v))).collect()),
            Value::Attribute { data, .. } => Reply::from(*data),
            Value::Set(s) => Reply::Set(s.into_iter().map(Reply::from).collect()),
            Value::Double(d) => Reply::Double(d),
            Value::Boolean(b) => Reply::Bool(b),
            Value::VerbatimString { format, text } => Reply::Verbatim(format.to_string(), text),
            Value::BigNumber(n) => Reply::BigNumber(format!("{n:?}")),
            Value::Push { kind, data } => Reply::Error(format!("unexpected push {kind:?} {data:?}")),
            Value::ServerError(e) => Reply::Error(match e.details() {
                Some(d) => format!("{} {}", e.code(), d),
                None => e.code().to_string(),
            }),
            other => Reply::Error(format!("unexpected value {other:?}")),
        }
    }
}

impl Reply {
    /// The reply as UTF-8 text (bulk, status or verbatim); panics otherwise.
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8(b.clone()).expect("utf8 bulk"),
            Reply::Status(s) => s.clone(),
            Reply::Verbatim(_, t) => t.clone(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }

    /// The reply as an integer; panics otherwise.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }

    /// The elements of an array (or set) reply; panics otherwise.
    pub fn items(&self) -> Vec<Reply> {
        match self {
            Reply::Array(a) | Reply::Set(a) => a.clone(),
            other => panic!("expected an array reply, got {other:?}"),
        }
    }

    /// Key/value pairs of a RESP3 map, or of a flat RESP2 array of pairs.
    pub fn pairs(&self) -> Vec<(Reply, Reply)> {
        match self {
            Reply::Map(m) => m.clone(),
            Reply::Array(a) => {
                assert!(a.len() % 2 == 0, "odd-length pair array {a:?}");
                a.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()
            }
            other => panic!("expected a map or pair array, got {other:?}"),
        }
    }

    /// Pairs of a map reply as (string, reply), sorted by key.
    pub fn sorted_pairs(&self) -> Vec<(String, Reply)> {
        let mut v: Vec<(String, Reply)> = self.pairs().into_iter().map(|(k, v)| (k.text(), v)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Looks up a key in a map (or pair-array) reply.
    pub fn get(&self, key: &str) -> Option<Reply> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| matches!(k, Reply::Bulk(_) | Reply::Status(_)) && k.text() == key)
            .map(|(_, v)| v)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

pub fn ok() -> Reply {
    Reply::Status("OK".into())
}
pub fn nil() -> Reply {
    Reply::Nil
}
pub fn int(i: i64) -> Reply {
    Reply::Int(i)
}
pub fn bulk(s: impl AsRef<[u8]>) -> Reply {
    Reply::Bulk(s.as_ref().to_vec())
}
pub fn status(s: &str) -> Reply {
    Reply::Status(s.into())
}
pub fn err(s: &str) -> Reply {
    Reply::Error(s.into())
}
pub fn arr(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}
/// An array of bulk strings.
pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(bulk).collect())
}
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";

/// `ERR wrong number of arguments for '<name>' command`.
pub fn arity(name: &str) -> Reply {
    err(&format!("ERR wrong number of arguments for '{name}' command"))
}

/// Sends one command and returns its reply (server errors included).
pub fn cmd(con: &mut redis::Connection, args: &[&str]) -> Reply {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(*a);
    }
    run(con, &c)
}

/// Runs each command in order on `con`, asserting each reply.
pub fn expect_all(con: &mut redis::Connection, cases: &[(&[&str], Reply)]) {
    for (args, want) in cases {
        let got = cmd(con, args);
        assert_eq!(&got, want, "reply to {args:?}");
    }
}

/// Like [`cmd`] with binary arguments.
pub fn cmd_bin(con: &mut redis::Connection, args: &[&[u8]]) -> Reply {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(*a);
    }
    run(con, &c)
}

/// Like [`cmd`] with owned arguments.
pub fn cmd_vec(con: &mut redis::Connection, args: &[String]) -> Reply {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(a.as_str());
    }
    run(con, &c)
}

fn run(con: &mut redis::Connection, c: &redis::Cmd) -> Reply {
    use redis::ConnectionLike;
    match con.req_command(c) {
        Ok(v) => Reply::from(v),
        Err(e) => panic!("connection error: {e}"),
    }
}

/// Runs a pipeline, returning every reply in order (errors included).
pub fn pipeline(con: &mut redis::Connection, p: &redis::Pipeline) -> Vec<Reply> {
    let mut p = p.clone();
    let vals: Vec<Value> = p.ignore_errors().query(con).unwrap_or_else(|e| panic!("pipeline failed: {e}"));
    vals.into_iter().map(Reply::from).collect()
}

/// Sorted list of the texts of an array reply.
pub fn sorted_texts(r: &Reply) -> Vec<String> {
    let mut v: Vec<String> = r.items().iter().map(Reply::text).collect();
    v.sort();
    v
}

/// Parses a RESP2 INFO reply into (field, value) pairs, checking the line
/// format (`# Section` headers, `field:value` lines, CRLF endings).
pub fn info_fields(info: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    assert!(info.is_empty() || info.ends_with("\r\n"), "INFO must end with CRLF: {info:?}");
    for line in info.split("\r\n") {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(':').unwrap_or_else(|| panic!("bad INFO line {line:?}"));
        out.push((k.to_string(), v.to_string()));
    }
    out
}

pub fn info_field(info: &str, name: &str) -> Option<String> {
    info_fields(info).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

// ---------------------------------------------------------------------------
// Raw RESP
// ---------------------------------------------------------------------------

/// Length of the first complete RESP2/RESP3 reply in `buf`, if there is one.
/// Returns `Err` on bytes that are not a valid reply.
pub fn resp_reply_len(buf: &[u8]) -> Result<Option<usize>, String> {
    fn line(buf: &[u8], from: usize) -> Option<usize> {
        // index just past the CRLF ending the line starting at `from`
        buf[from..].windows(2).position(|w| w == b"\r\n").map(|p| from + p + 2)
    }
    fn num(bytes: &[u8]) -> Result<i64, String> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length {:?}", String::from_utf8_lossy(bytes)))
    }
    fn value(buf: &[u8], at: usize) -> Result<Option<usize>, String> {
        if at >= buf.len() {
            return Ok(None);
        }
        let Some(end) = line(buf, at) else {
            return Ok(None);
        };
        let header = &buf[at + 1..end - 2];
        match buf[at] {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(end)),
            b'$' | b'=' | b'!' => {
                let n = num(header)?;
                if n < 0 {
                    return Ok(Some(end));
                }
                let total = end + n as usize + 2;
                if buf.len() < total {
                    return Ok(None);
                }
                if &buf[total - 2..total] != b"\r\n" {
                    return Err("bulk not followed by CRLF".into());
                }
                Ok(Some(total))
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = num(header)?;
                if n < 0 {
                    return Ok(Some(end));
                }
                let mut count = n as usize;
                if matches!(buf[at], b'%' | b'|') {
                    count *= 2;
                }
                let mut pos = end;
                for _ in 0..count {
                    match value(buf, pos)? {
                        Some(p) => pos = p,
                        None => return Ok(None),
                    }
                }
                if buf[at] == b'|' {
                    // attributes precede the actual reply
                    return value(buf, pos);
                }
                Ok(Some(pos))
            }
            other => Err(format!("bad RESP type byte {:?}", other as char)),
        }
    }
    value(buf, 0)
}

/// Reads from `s` into `buf` until it holds `n` complete replies. Returns
/// `Err` if the peer closed first or the read timed out.
pub fn read_replies(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Result<(), String> {
    loop {
        let mut pos = 0;
        let mut complete = 0;
        while complete < n {
            match resp_reply_len(&buf[pos..])? {
                Some(len) => {
                    pos += len;
                    complete += 1;
                }
                None => break,
            }
        }
        if complete == n {
            return Ok(());
        }
        let mut chunk = [0u8; 65536];
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(format!("connection closed after {:?}", String::from_utf8_lossy(buf)));
            }
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) => {
                return Err(format!("read error {e} after {:?}", String::from_utf8_lossy(buf)));
            }
        }
    }
}

/// Writes `bytes` and reads until one complete reply arrived; returns the
/// bytes read.
pub fn raw_roundtrip(s: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    raw_roundtrip_n(s, bytes, 1)
}

/// Writes `bytes` and reads until `n` complete replies arrived.
pub fn raw_roundtrip_n(s: &mut TcpStream, bytes: &[u8], n: usize) -> Vec<u8> {
    s.write_all(bytes).expect("write");
    let mut buf = Vec::new();
    if let Err(e) = read_replies(s, &mut buf, n) {
        panic!("after sending {:?}: {e}", String::from_utf8_lossy(bytes));
    }
    buf
}

/// Reads until the peer closes the connection (or errors, e.g. reset);
/// returns everything read. Panics if the read times out (the server did
/// not close).
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return buf,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("server did not close the connection; read so far {:?}", String::from_utf8_lossy(&buf))
            }
            Err(_) => return buf,
        }
    }
}

/// Parses one complete RESP2/RESP3 reply.
pub fn parse_reply(bytes: &[u8]) -> Reply {
    match resp_reply_len(bytes) {
        Ok(Some(n)) => assert_eq!(n, bytes.len(), "trailing bytes after reply: {:?}", String::from_utf8_lossy(bytes)),
        other => panic!("not one complete reply ({other:?}): {:?}", String::from_utf8_lossy(bytes)),
    }
    match redis::parse_redis_value(bytes) {
        Ok(v) => Reply::from(v),
        Err(e) => panic!("unparsable reply {:?}: {e}", String::from_utf8_lossy(bytes)),
    }
}

/// Sends a command on a raw connection and parses its reply.
pub fn raw_cmd(s: &mut TcpStream, args: &[&str]) -> Reply {
    parse_reply(&raw_roundtrip(s, &resp_cmd(args)))
}

/// Encodes a command as a RESP array of bulk strings.
pub fn resp_cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs the test body twice: against a 1-shard and a 4-shard server.
///
/// ```ignore
/// shard_tests! {
///     fn set_get(srv) { ... }
/// }
/// shard_tests! {
///     extra = ["--requirepass", "secret"];
///     fn auth(srv) { ... }
/// }
/// ```
/// generates `set_get::shards_1` and `set_get::shards_4` (and likewise for
/// `auth`, whose servers get the extra arguments).
#[allow(unused_macros)]
macro_rules! shard_tests {
    (extra = $extra:tt; $( $(#[$meta:meta])* fn $name:ident($srv:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[allow(unused_mut, unused_variables)]
            fn body($srv: &mut crate::common::Server) $body

            #[test]
            fn shards_1() {
                let mut srv = crate::common::Server::start_with(1, &$extra);
                body(&mut srv);
                srv.assert_alive();
            }

            #[test]
            fn shards_4() {
                let mut srv = crate::common::Server::start_with(4, &$extra);
                body(&mut srv);
                srv.assert_alive();
            }
        }
    )*};
    ($( $(#[$meta:meta])* fn $name:ident($srv:ident) $body:block )*) => {
        shard_tests! { extra = []; $( $(#[$meta])* fn $name($srv) $body )* }
    };
}

/// A COMMAND INFO row: name, arity, flags, first key, last key, step.
pub type InfoRow = (&'static str, i64, &'static [&'static str], i64, i64, i64);

/// Checks each command's COMMAND INFO name, arity, flags and key positions.
pub fn assert_command_info(c: &mut redis::Connection, want: &[InfoRow]) {
    for (name, arity, flags, first, last, step) in want {
        let info = cmd(c, &["COMMAND", "INFO", name]).items();
        let info = info[0].items();
        assert_eq!(info[0], bulk(name));
        assert_eq!(info[1], int(*arity), "{name} arity");
        let got: Vec<String> = info[2].items().iter().map(Reply::text).collect();
        assert_eq!(got, flags.iter().map(|f| f.to_string()).collect::<Vec<_>>(), "{name} flags");
        assert_eq!(info[3..6].to_vec(), vec![int(*first), int(*last), int(*step)], "{name} keys");
    }
}

/// A TCP proxy between a replica and its primary that a test can cut: every
/// connection through it is dropped, and new ones refused, until it is
/// restored. It can also hold back what the upstream sends once a number of
/// bytes went through (a replica that stops reading in the middle of a
/// snapshot, without a race with the process's own threads), or hold the
/// requests sent upstream that carry a given text (a request that arrives
/// late, after its sender gave up on it), letting the others through.
pub struct Proxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    hold_after: std::sync::Arc<std::sync::atomic::AtomicU64>,
    upstream: std::sync::Arc<UpstreamHold>,
}

/// The state of [`Proxy::hold_upstreams_with`].
#[derive(Default)]
struct UpstreamHold {
    /// What a request sent upstream must carry to be held.
    pattern: Mutex<Option<Vec<u8>>>,
    /// Bumped by each [`Proxy::release_upstreams`]: a connection is held
    /// while the count is the one it was at when its request was caught.
    releases: std::sync::atomic::AtomicU64,
    /// Requests caught so far.
    held: std::sync::atomic::AtomicU64,
}

impl UpstreamHold {
    /// Whether `chunk` is to be held: the release count to wait past.
    fn catch(&self, chunk: &[u8]) -> Option<u64> {
        let pattern = self.pattern.lock().unwrap();
        let p = pattern.as_deref()?;
        if !chunk.windows(p.len().max(1)).any(|w| w == p) {
            return None;
        }
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(self.releases.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hold_after = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let upstream = std::sync::Arc::new(UpstreamHold::default());
        let (c, g, h, u) = (cut.clone(), generation.clone(), hold_after.clone(), upstream.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", target)) else { continue };
                let born = g.load(std::sync::atomic::Ordering::SeqCst);
                for (from, to, downstream) in [
                    (client.try_clone(), upstream.try_clone(), false),
                    (upstream.try_clone(), client.try_clone(), true),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
                    let (c, g, h, u) = (c.clone(), g.clone(), h.clone(), u.clone());
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        from.set_read_timeout(Some(Duration::from_millis(50))).ok();
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut passed = 0u64;
                        loop {
                            if c.load(std::sync::atomic::Ordering::SeqCst)
                                || g.load(std::sync::atomic::Ordering::SeqCst) != born
                            {
                                break;
                            }
                            let limit = if downstream { h.load(std::sync::atomic::Ordering::SeqCst) } else { u64::MAX };
                            if passed >= limit {
                                // Held: the upstream's socket fills up as a
                                // stopped reader's would.
                                std::thread::sleep(Duration::from_millis(5));
                                continue;
                            }
                            let room = (limit - passed).min(buf.len() as u64) as usize;
                            match from.read(&mut buf[..room]) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if let Some(at) = (!downstream).then(|| u.catch(&buf[..n])).flatten() {
                                        // Held, the connection open, until released.
                                        while u.releases.load(std::sync::atomic::Ordering::SeqCst) == at {
                                            std::thread::sleep(Duration::from_millis(5));
                                        }
                                    }
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                    passed += n as u64;
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, generation, hold_after, upstream }
    }

    /// From now on, a request sent upstream that carries `pattern` is held
    /// back (its connection stays open) until [`Proxy::release_upstreams`];
    /// the rest passes.
    pub fn hold_upstreams_with(&self, pattern: &str) {
        *self.upstream.pattern.lock().unwrap() = Some(pattern.as_bytes().to_vec());
    }

    /// Stops holding, and lets the held requests through, even where their
    /// client has closed since (the proxy read them already).
    pub fn release_upstreams(&self) {
        *self.upstream.pattern.lock().unwrap() = None;
        self.upstream.releases.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests held so far.
    pub fn held_requests(&self) -> u64 {
        self.upstream.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Holds back what upstreams send once `bytes` of it went through on a
    /// connection (counted per connection), until [`Proxy::release`].
    pub fn hold_downstream_after(&self, bytes: u64) {
        self.hold_after.store(bytes, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets held bytes through again.
    pub fn release(&self) {
        self.hold_after.store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// True when the suite runs against a reference redis-server
/// (`CORESHARD_TEST_REFERENCE`), which has none of coreshard's cluster
/// protocol (config push, control log, migration).
pub fn reference_run() -> bool {
    std::env::var("CORESHARD_TEST_REFERENCE").is_ok_and(|r| !r.is_empty())
}

/// An empty scratch directory `coreshard-<name>-<pid>` for nodes' files.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("coreshard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// For each of `clients` writers, `per_client` keys `k:<client>:<i>` whose
/// slots lie in `range` (a [`VerifyingLoad`]'s key sets).
pub fn range_keys(range: coreshard_repl::cluster::SlotRange, clients: usize, per_client: usize) -> Vec<Vec<String>> {
    (0..clients)
        .map(|t| {
            (0..)
                .map(|i| format!("k:{t}:{i}"))
                .filter(|k| (range.start..=range.end).contains(&coreshard_engine::slot::key_slot(k.as_bytes())))
                .take(per_client)
                .collect()
        })
        .collect()
}

/// A verifying load through the `redis` crate's cluster client: one
/// writer per key set, each the only writer of its keys, each write read
/// back at once and a random key of its own after it, so a lost or stale
/// acknowledged write is seen; what was acknowledged, and what read wrong.
pub struct VerifyingLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    acked: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Writes acknowledged so far.
    writes: Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl VerifyingLoad {
    /// A writer per set of `keys`, through `urls`; with `tolerate` an error
    /// reply to a write (TRYAGAIN while the log cannot decide) is no
    /// error: the write is just not acknowledged.
    pub fn start(urls: Vec<String>, keys: Vec<Vec<String>>, tolerate: bool) -> VerifyingLoad {
        use std::sync::atomic::Ordering::Relaxed;
        let stop: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let acked: Arc<Mutex<std::collections::HashMap<String, u64>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let writes: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let threads = keys
            .into_iter()
            .enumerate()
            .map(|(t, keys)| {
                let (stop, acked, errors, urls) = (stop.clone(), acked.clone(), errors.clone(), urls.clone());
                let writes = writes.clone();
                std::thread::spawn(move || {
                    let retries = if tolerate { 2 } else { 32 };
                    let client = redis::cluster::ClusterClient::builder(urls).retries(retries).build().unwrap();
                    let mut cc = client.get_connection().unwrap();
                    let mut rng = fastrand::Rng::with_seed(t as u64);
                    let mut i: u64 = 0;
                    let check = |cc: &mut redis::cluster::ClusterConnection, key: &String| {
                        let want = acked.lock().unwrap().get(key).copied();
                        match redis::cmd("GET").arg(key).query::<Option<u64>>(cc) {
                            Ok(v) if v == want => {}
                            Ok(v) => errors.lock().unwrap().push(format!("GET {key}: {v:?}, acknowledged {want:?}")),
                            Err(e) => errors.lock().unwrap().push(format!("GET {key}: {e}")),
                        }
                    };
                    while !stop.load(Relaxed) {
                        i += 1;
                        let key = &keys[rng.usize(0..keys.len())];
                        match redis::cmd("SET").arg(key).arg(i).query::<()>(&mut cc) {
                            Ok(()) => {
                                acked.lock().unwrap().insert(key.clone(), i);
                                writes.fetch_add(1, Relaxed);
                            }
                            Err(_) if tolerate => continue,
                            Err(e) => errors.lock().unwrap().push(format!("SET {key}: {e}")),
                        }
                        check(&mut cc, key);
                        check(&mut cc, &keys[rng.usize(0..keys.len())]);
                    }
                    i
                })
            })
            .collect();
        VerifyingLoad { stop, acked, errors, writes, threads }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keys with an acknowledged write so far.
    pub fn keys_written(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the writers; checks that nothing read wrong and that every
    /// acknowledged write reads back with its latest value through `urls`;
    /// returns how many keys were written.
    pub fn finish(self, urls: Vec<String>) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let ops: u64 = self.threads.into_iter().map(|t| t.join().unwrap()).sum();
        let errors = self.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "{} errors in {ops} rounds, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        );
        let client = redis::cluster::ClusterClient::builder(urls).retries(32).build().unwrap();
        let mut cc = client.get_connection().unwrap();
        let acked = self.acked.lock().unwrap();
        assert!(!acked.is_empty());
        for (key, want) in acked.iter() {
            let got: Option<u64> = redis::cmd("GET").arg(key).query(&mut cc).unwrap();
            assert_eq!(got, Some(*want), "{key}");
        }
        acked.len()
    }
}
