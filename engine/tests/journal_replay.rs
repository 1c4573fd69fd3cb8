//! The journal's promise: a replica that executes it in order ends with the
//! primary's data, whatever its clock and its random draws.
//!
//! A seeded random workload of every write command family runs on keyspace
//! A with the journal on, while A's clock advances so that keys expire
//! during the run (lazily, by active expiry) and some are evicted. The
//! journal is then parsed and executed through the same handlers on a fresh
//! keyspace B in [`ExpiryMode::Ignore`], with a clock far ahead of (or
//! behind) A's and another random seed. Both DEBUG DIGESTs are taken at A's
//! final time and must agree.
//!
//! The test can fail, as was tried by hand once for each of these:
//! - with SPOP logged as itself instead of as SREM of the members it popped
//!   (the rewrite in `set.rs` taken out), B pops other members with its own
//!   seed, and soon refuses a command A ran (`the replica refused ["HMSET",
//!   "z1", "2", "99"]: -WRONGTYPE ...`: its keys no longer hold what A's did);
//! - with EXPIRE logged as itself (the PEXPIREAT rewrite in `keys.rs` taken
//!   out), B's clock gives other expiry times: `digest of the replica with
//!   its clock ahead, seed 1` fails, left != right;
//! - with B in the primary's expiry mode instead of Ignore, B's clock ahead
//!   expires keys A still had: `the replica refused ["RENAME", "k0", "s5"]:
//!   -ERR no such key`.

mod common;

use common::{apply_stream, digest, journal_since, run};
use coreshard_engine::keyspace::Eviction;
use coreshard_engine::{ExpiryMode, Keyspace, UnixMs};

/// Databases of both keyspaces; the workload uses two of them.
const DATABASES: usize = 2;
/// Commands of one run.
const STEPS: usize = 20_000;
/// A's clock at the start.
const START_MS: UnixMs = 1_700_000_000_000;

/// Draws a workload, one command at a time.
struct Workload {
    rng: fastrand::Rng,
}

impl Workload {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.usize(..items.len())]
    }

    /// A key of kind `prefix` (`k` strings, `l` lists, `h` hashes, `s` sets,
    /// `z` sorted sets); now and then one of another kind, so that commands
    /// also meet the wrong type.
    fn key(&mut self, prefix: &str) -> String {
        let prefix = if self.rng.u8(..10) == 0 { self.pick(&["k", "l", "h", "s", "z"]) } else { prefix };
        format!("{prefix}{}", self.rng.u8(..6))
    }

    fn any_key(&mut self) -> String {
        let prefix = self.pick(&["k", "l", "h", "s", "z"]);
        format!("{prefix}{}", self.rng.u8(..6))
    }

    fn member(&mut self) -> String {
        // Integers now and then, so sets use their intset encoding too.
        if self.rng.bool() { self.rng.u8(..40).to_string() } else { format!("m{}", self.rng.u8(..40)) }
    }

    fn value(&mut self) -> String {
        match self.rng.u8(..4) {
            0 => self.rng.i32(-100..100).to_string(),
            1 => format!("{}.{}", self.rng.i32(-100..100), self.rng.u8(..100)),
            _ => format!("v{}", self.rng.u16(..1000)),
        }
    }

    /// A TTL in milliseconds short enough that keys expire during the run.
    fn ttl_ms(&mut self) -> u64 {
        self.rng.u64(1..3_000)
    }

    /// An absolute time near `now`: in the past a quarter of the time.
    fn at_ms(&mut self, now: UnixMs) -> u64 {
        if self.rng.u8(..4) == 0 { now - self.rng.u64(1..5_000) } else { now + self.ttl_ms() }
    }

    fn float(&mut self) -> String {
        self.pick(&["0.1", "1.5", "-2.25", "1e-3", "3.3333333", "100", "-0.7"]).to_string()
    }

    fn end(&mut self) -> &'static str {
        self.pick(&["LEFT", "RIGHT"])
    }

    /// One command at `now`, as its arguments.
    fn command(&mut self, now: UnixMs) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<String>>();
        match self.rng.u8(..62) {
            // Strings.
            0..=3 => {
                let mut c = vec!["SET".into(), self.key("k"), self.value()];
                match self.rng.u8(..7) {
                    0 => c.extend(["EX".into(), self.rng.u64(1..3).to_string()]),
                    1 => c.extend(["PX".into(), self.ttl_ms().to_string()]),
                    2 => c.extend(["EXAT".into(), (self.at_ms(now) / 1000 + 1).to_string()]),
                    3 => c.extend(["PXAT".into(), self.at_ms(now).to_string()]),
                    4 => c.push("KEEPTTL".into()),
                    _ => {}
                }
                match self.rng.u8(..5) {
                    0 => c.push("NX".into()),
                    1 => c.push("XX".into()),
                    _ => {}
                }
                if self.rng.u8(..4) == 0 {
                    c.push("GET".into());
                }
                c
            }
            4 => vec!["SETNX".into(), self.key("k"), self.value()],
            5 => vec!["SETEX".into(), self.key("k"), self.rng.u64(1..3).to_string(), self.value()],
            6 => vec!["PSETEX".into(), self.key("k"), self.ttl_ms().to_string(), self.value()],
            7 => vec!["GETSET".into(), self.key("k"), self.value()],
            8 => vec!["GETDEL".into(), self.key("k")],
            9 => {
                let mut c = vec!["GETEX".into(), self.key("k")];
                match self.rng.u8(..6) {
                    0 => c.extend(["EX".into(), "2".into()]),
                    1 => c.extend(["PX".into(), self.ttl_ms().to_string()]),
                    2 => c.extend(["EXAT".into(), (self.at_ms(now) / 1000 + 1).to_string()]),
                    3 => c.extend(["PXAT".into(), self.at_ms(now).to_string()]),
                    4 => c.push("PERSIST".into()),
                    _ => {}
                }
                c
            }
            10 => vec!["APPEND".into(), self.key("k"), self.value()],
            11 => vec![self.pick(&["INCR", "DECR"]).into(), self.key("k")],
            12 => vec!["INCRBY".into(), self.key("k"), self.rng.i32(-50..50).to_string()],
            13 | 14 => vec!["INCRBYFLOAT".into(), self.key("k"), self.float()],
            15 => vec!["SETRANGE".into(), self.key("k"), self.rng.u8(..8).to_string(), self.value()],
            16 => vec![self.pick(&["MSET", "MSETNX"]).into(), self.key("k"), self.value(), self.key("k"), self.value()],
            // Keys.
            17 | 18 => {
                let key = self.any_key();
                let (name, n) = match self.rng.u8(..4) {
                    0 => ("EXPIRE", self.rng.i64(-2..4).to_string()),
                    1 => ("PEXPIRE", self.rng.i64(-100..3_000).to_string()),
                    2 => ("EXPIREAT", (self.at_ms(now) / 1000 + 1).to_string()),
                    _ => ("PEXPIREAT", self.at_ms(now).to_string()),
                };
                let mut c = vec![name.into(), key, n];
                if self.rng.u8(..3) == 0 {
                    c.push(self.pick(&["NX", "XX", "GT", "LT"]).into());
                }
                c
            }
            19 => vec!["PERSIST".into(), self.any_key()],
            20 => vec![self.pick(&["DEL", "UNLINK"]).into(), self.any_key(), self.any_key()],
            21 => vec![self.pick(&["RENAME", "RENAMENX"]).into(), self.any_key(), self.any_key()],
            22 => {
                let mut c = vec!["COPY".into(), self.any_key(), self.any_key()];
                if self.rng.bool() {
                    c.extend(["DB".into(), self.rng.usize(..DATABASES).to_string()]);
                }
                if self.rng.bool() {
                    c.push("REPLACE".into());
                }
                c
            }
            23 => vec!["MOVE".into(), self.any_key(), self.rng.usize(..DATABASES).to_string()],
            // Lists.
            24..=26 => {
                let mut c = vec![self.pick(&["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]).into(), self.key("l")];
                for _ in 0..self.rng.usize(1..4) {
                    c.push(self.value());
                }
                c
            }
            27 => {
                let mut c = vec![self.pick(&["LPOP", "RPOP"]).into(), self.key("l")];
                if self.rng.bool() {
                    c.push(self.rng.u8(..4).to_string());
                }
                c
            }
            28 => vec!["LSET".into(), self.key("l"), self.rng.i32(-3..3).to_string(), self.value()],
            29 => {
                vec![
                    "LINSERT".into(),
                    self.key("l"),
                    self.pick(&["BEFORE", "AFTER"]).into(),
                    self.value(),
                    self.value(),
                ]
            }
            30 => vec!["LREM".into(), self.key("l"), self.rng.i32(-2..3).to_string(), self.value()],
            31 => vec!["LTRIM".into(), self.key("l"), self.rng.i32(-5..3).to_string(), self.rng.i32(-3..6).to_string()],
            32 => vec!["LMOVE".into(), self.key("l"), self.key("l"), self.end().into(), self.end().into()],
            33 => vec!["RPOPLPUSH".into(), self.key("l"), self.key("l")],
            34 => {
                s(&["LMPOP", "2", &self.key("l"), &self.key("l"), self.end(), "COUNT", &self.rng.u8(1..4).to_string()])
            }
            35 => s(&[self.pick(&["BLPOP", "BRPOP"]), &self.key("l"), &self.key("l"), "0"]),
            36 => match self.rng.u8(..3) {
                0 => s(&["BLMOVE", &self.key("l"), &self.key("l"), self.end(), self.end(), "0"]),
                1 => s(&["BRPOPLPUSH", &self.key("l"), &self.key("l"), "0"]),
                _ => s(&["BLMPOP", "0", "1", &self.key("l"), self.end(), "COUNT", "2"]),
            },
            // Hashes.
            37..=39 => {
                let mut c = vec![self.pick(&["HSET", "HMSET"]).into(), self.key("h")];
                for _ in 0..self.rng.usize(1..3) {
                    c.push(self.member());
                    c.push(self.value());
                }
                c
            }
            40 => vec!["HSETNX".into(), self.key("h"), self.member(), self.value()],
            41 => vec!["HDEL".into(), self.key("h"), self.member(), self.member()],
            42 => vec!["HINCRBY".into(), self.key("h"), self.member(), self.rng.i32(-9..9).to_string()],
            43 | 44 => vec!["HINCRBYFLOAT".into(), self.key("h"), self.member(), self.float()],
            // Sets.
            45..=47 => {
                let mut c = vec!["SADD".into(), self.key("s")];
                for _ in 0..self.rng.usize(1..6) {
                    c.push(self.member());
                }
                c
            }
            48 => vec!["SREM".into(), self.key("s"), self.member(), self.member()],
            49 | 50 => {
                let mut c = vec!["SPOP".into(), self.key("s")];
                if self.rng.bool() {
                    c.push(self.rng.u8(..6).to_string());
                }
                c
            }
            51 => vec!["SMOVE".into(), self.key("s"), self.key("s"), self.member()],
            52 => {
                let name = self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
                vec![name.into(), self.key("s"), self.key("s"), self.key("s")]
            }
            // Sorted sets.
            53..=55 => {
                let mut c = vec!["ZADD".into(), self.key("z")];
                if self.rng.u8(..4) == 0 {
                    c.push(self.pick(&["NX", "XX", "GT", "LT", "CH"]).into());
                }
                for _ in 0..self.rng.usize(1..4) {
                    c.push(self.float());
                    c.push(self.member());
                }
                c
            }
            56 => vec!["ZINCRBY".into(), self.key("z"), self.float(), self.member()],
            57 => vec!["ZREM".into(), self.key("z"), self.member()],
            58 => match self.rng.u8(..4) {
                0 => vec![self.pick(&["ZPOPMIN", "ZPOPMAX"]).into(), self.key("z"), self.rng.u8(..3).to_string()],
                1 => s(&["ZMPOP", "2", &self.key("z"), &self.key("z"), self.pick(&["MIN", "MAX"]), "COUNT", "2"]),
                2 => s(&[self.pick(&["BZPOPMIN", "BZPOPMAX"]), &self.key("z"), "0"]),
                _ => s(&["BZMPOP", "0", "1", &self.key("z"), self.pick(&["MIN", "MAX"])]),
            },
            59 => {
                let name = self.pick(&["ZUNIONSTORE", "ZINTERSTORE"]);
                vec![name.into(), self.key("z"), "2".into(), self.key("z"), self.key("s")]
            }
            60 => vec!["ZREMRANGEBYRANK".into(), self.key("z"), "0".into(), self.rng.u8(..2).to_string()],
            // SORT of a set, a list or a sorted set, stored.
            _ => {
                let kind = self.pick(&["s", "l", "z"]);
                let mut c = vec!["SORT".into(), self.key(kind), "ALPHA".into()];
                if self.rng.bool() {
                    c.extend(["BY".into(), "nosort".into()]);
                }
                c.extend(["STORE".into(), self.key("l")]);
                c
            }
        }
    }
}

/// Reads that reclaim expired keys (logged as DEL), with a random key.
fn read(w: &mut Workload) -> Vec<String> {
    let name = w.pick(&["GET", "EXISTS", "TYPE", "TTL", "LRANGE", "SMEMBERS", "HGETALL", "ZCARD", "RANDOMKEY"]);
    let key = w.any_key();
    match name {
        "LRANGE" => vec![name.into(), key, "0".into(), "-1".into()],
        "RANDOMKEY" => vec![name.into()],
        _ => vec![name.into(), key],
    }
}

/// RESTORE of a value DUMPed from A, with a relative TTL (logged with the absolute one).
fn restore(a: &mut Keyspace, db: usize, now: UnixMs, w: &mut Workload) -> Option<Vec<Vec<u8>>> {
    let dump = run(a, db, now, &[b"DUMP", w.any_key().as_bytes()]);
    if dump.starts_with(b"$-1") {
        return None;
    }
    let start = dump.iter().position(|&b| b == b'\n')? + 1;
    let payload = dump.get(start..dump.len().checked_sub(2)?)?.to_vec();
    Some(vec![
        b"RESTORE".to_vec(),
        w.any_key().into_bytes(),
        w.ttl_ms().to_string().into_bytes(),
        payload,
        b"REPLACE".to_vec(),
    ])
}

/// Runs the workload `seed` on a primary; returns it and its final time.
fn primary(seed: u64) -> (Keyspace, UnixMs) {
    let mut a = Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all());
    a.rng = fastrand::Rng::with_seed(seed);
    a.journal.set_backlog_bytes(256 << 20);
    a.set_journal_enabled(true);
    let mut w = Workload { rng: fastrand::Rng::with_seed(seed ^ 0x5eed) };
    let mut now = START_MS;
    for step in 0..STEPS {
        now += w.rng.u64(..40);
        let db = if w.rng.u8(..8) == 0 { 1 } else { 0 };
        let cmd: Vec<Vec<u8>> = match w.rng.u8(..40) {
            0..=5 => read(&mut w).into_iter().map(String::into_bytes).collect(),
            6 => match restore(&mut a, db, now, &mut w) {
                Some(c) => c,
                None => continue,
            },
            7 if step % 97 == 0 => {
                a.active_expire(now, 50);
                continue;
            }
            8 if step % 89 == 0 => {
                a.evict_one(Eviction::AllKeysRandom, 3, now);
                continue;
            }
            9 if step % 331 == 0 => vec![b"SWAPDB".to_vec(), b"0".to_vec(), b"1".to_vec()],
            _ => w.command(now).into_iter().map(String::into_bytes).collect(),
        };
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        run(&mut a, db, now, &args);
    }
    assert_eq!(a.journal.start_lsn(), 0, "the whole run is in the backlog");
    assert!(a.expired_keys() > 500, "keys expired during the run: {}", a.expired_keys());
    (a, now)
}

/// A replica of `a`'s journal with its clock at `clock` and its own seed.
fn replica(a: &Keyspace, clock: UnixMs, seed: u64) -> Keyspace {
    let mut b = Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all());
    b.rng = fastrand::Rng::with_seed(seed);
    b.set_expiry_mode(ExpiryMode::Ignore);
    apply_stream(&mut b, 0, clock, &journal_since(a, 0));
    b.set_expiry_mode(ExpiryMode::Hide);
    b
}

#[test]
fn a_replica_applying_the_journal_ends_with_the_primarys_data() {
    for seed in [1, 2, 3] {
        let (mut a, end) = primary(seed);
        let want = digest(&mut a, end);
        assert_ne!(
            want,
            digest(&mut Keyspace::new(DATABASES, coreshard_engine::slot::ShardSlots::all()), end),
            "the run leaves data"
        );
        let mut ahead = replica(&a, end + 36_000_000, seed + 100);
        assert_eq!(digest(&mut ahead, end), want, "digest of the replica with its clock ahead, seed {seed}");
        let mut behind = replica(&a, START_MS - 86_400_000, seed + 200);
        assert_eq!(digest(&mut behind, end), want, "digest of the replica with its clock behind, seed {seed}");
    }
}
