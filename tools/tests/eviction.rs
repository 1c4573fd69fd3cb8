//! maxmemory: writing several times the limit keeps used memory under it
//! (within a tolerance), policies evict what they should, noeviction refuses
//! writes with Redis's OOM error, and MEMORY USAGE / OBJECT FREQ report.
//! Limits are set relative to the server's own used_memory at the start, so
//! the same tests hold for redis-server.

#[macro_use]
mod common;

use common::*;

const VALUE_BYTES: usize = 1024;
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn used_memory(c: &mut redis::Connection) -> u64 {
    let info = cmd(c, &["INFO", "memory"]).text();
    info_field(&info, "used_memory").and_then(|v| v.parse().ok()).expect("used_memory")
}

fn stat(c: &mut redis::Connection, name: &str) -> u64 {
    let info = cmd(c, &["INFO", "stats"]).text();
    info_field(&info, name).and_then(|v| v.parse().ok()).expect(name)
}

/// Writes `count` keys `prefix:i` of VALUE_BYTES in pipelines of 100; returns the replies that were errors.
fn write_keys(
    c: &mut redis::Connection,
    prefix: &str,
    range: std::ops::Range<usize>,
    then_read: &[String],
) -> Vec<String> {
    let value = "v".repeat(VALUE_BYTES);
    let mut errors = Vec::new();
    let keys: Vec<usize> = range.collect();
    for chunk in keys.chunks(100) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET").arg(format!("{prefix}:{i}")).arg(&value);
        }
        for k in then_read {
            p.cmd("GET").arg(k);
        }
        for r in pipeline(c, &p) {
            if let Reply::Error(e) = r {
                errors.push(e);
            }
        }
    }
    errors
}

shard_tests! {
    fn allkeys_lru_stays_under_the_limit_and_keeps_hot_keys(srv) {
        let mut c = srv.client();
        let base = used_memory(&mut c);
        let limit = base + 8 * 1024 * 1024;
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), ok());
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]), ok());
        let hot: Vec<String> = (0..200).map(|i| format!("hot:{i}")).collect();
        assert!(write_keys(&mut c, "hot", 0..200, &[]).is_empty());
        // Three times the limit in new keys, re-reading the hot keys after every 100 writes.
        let errors = write_keys(&mut c, "cold", 0..24_000, &hot);
        assert!(errors.is_empty(), "writes failed under allkeys-lru: {:?}", &errors[..errors.len().min(3)]);
        let used = used_memory(&mut c);
        assert!(used <= limit + limit / 10, "used_memory {used} over maxmemory {limit} by more than 10%");
        assert!(stat(&mut c, "evicted_keys") > 0);
        let dbsize = cmd(&mut c, &["DBSIZE"]).int() as usize;
        assert!(dbsize < 24_200, "nothing was evicted: {dbsize} keys");
        // Redis's LRU clock ticks in seconds, so in a test this short it cannot
        // tell the hot keys apart; coreshard's ticks in milliseconds.
        if !srv.is_reference() {
            let alive = hot.iter().filter(|k| cmd(&mut c, &["EXISTS", k]) == int(1)).count();
            assert!(alive >= 180, "only {alive} of 200 recently read keys survived LRU eviction");
        }
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory", "0"]), ok());
    }

    fn noeviction_refuses_writes_but_serves_reads_and_deletes(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "kept", "v"]), ok());
        let base = used_memory(&mut c);
        let limit = base + 2 * 1024 * 1024;
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]), ok());
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]), ok());
        let errors = write_keys(&mut c, "fill", 0..6_000, &[]);
        assert!(!errors.is_empty(), "no write was refused past maxmemory");
        assert!(errors.iter().all(|e| e == OOM), "{:?}", errors[0]);
        assert_eq!(cmd(&mut c, &["GET", "kept"]), bulk("v"));
        // The pipeline's own buffers were freed after it ran, so there may be
        // a little room again; more data is refused once that is used.
        let more = write_keys(&mut c, "more", 0..2_000, &[]);
        assert!(!more.is_empty() && more.iter().all(|e| e == OOM), "{more:?}");
        assert_eq!(cmd(&mut c, &["DEL", "kept"]), int(1));
        assert_eq!(stat(&mut c, "evicted_keys"), 0);
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory", "0"]), ok());
        assert_eq!(cmd(&mut c, &["SET", "again", "v"]), ok());
    }

    fn volatile_lru_evicts_only_keys_with_a_ttl(srv) {
        let mut c = srv.client();
        let value = "v".repeat(VALUE_BYTES);
        for i in 0..100 {
            assert_eq!(cmd(&mut c, &["SET", &format!("keep:{i}"), &value]), ok());
        }
        let base = used_memory(&mut c);
        let limit = base + 8 * 1024 * 1024;
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]), ok());
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]), ok());
        // Keys with a TTL make room for each other (three times the limit of them)...
        for chunk in 0..24 {
            let mut p = redis::pipe();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                p.cmd("SET").arg(format!("ttl:{i}")).arg(&value).arg("EX").arg(1000);
            }
            let replies = pipeline(&mut c, &p);
            assert!(replies.iter().all(|r| *r == ok()), "volatile keys were refused while volatile keys could go");
        }
        assert!(stat(&mut c, "evicted_keys") > 0);
        // ...but keys without one are never evicted.
        for i in 0..100 {
            assert_eq!(cmd(&mut c, &["EXISTS", &format!("keep:{i}")]), int(1), "keep:{i} was evicted");
        }
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory", "0"]), ok());
    }

    fn memory_usage_and_object_freq(srv) {
        let mut c = srv.client();
        assert_eq!(cmd(&mut c, &["SET", "k", "v".repeat(1000).as_str()]), ok());
        let usage = cmd(&mut c, &["MEMORY", "USAGE", "k"]).int();
        assert!((1000..2000).contains(&usage), "MEMORY USAGE {usage}");
        assert_eq!(cmd(&mut c, &["MEMORY", "USAGE", "missing"]), nil());
        assert_eq!(cmd(&mut c, &["MEMORY", "USAGE", "k", "SAMPLES", "0"]).int(), usage);
        assert_eq!(cmd(&mut c, &["MEMORY", "USAGE"]), err("ERR wrong number of arguments for 'memory|usage' command"));
        expect_all(&mut c, &[
            (&["MEMORY", "USAGE", "missing", "SAMPLES", "5"], nil()),
            (&["MEMORY", "USAGE", "k", "SAMPLES", "5", "SAMPLES", "0"], int(usage)),
            (&["MEMORY", "USAGE", "k", "SAMPLES", "-1"], err(SYNTAX)),
            (&["MEMORY", "USAGE", "k", "SAMPLES", "x"], err(NOT_INT)),
            (&["MEMORY", "USAGE", "k", "SAMPLES"], err(SYNTAX)),
            (&["MEMORY", "USAGE", "k", "FOO", "1"], err(SYNTAX)),
            (&["MEMORY", "FOO"], err("ERR unknown subcommand 'FOO'. Try MEMORY HELP.")),
            (&["MEMORY"], arity("memory")),
        ]);
        // HELP lists the subcommands served (Redis has more), in Redis's words.
        let help: Vec<String> = cmd(&mut c, &["MEMORY", "HELP"]).items().iter().map(Reply::text).collect();
        let usage = help.iter().position(|l| l == "USAGE <key> [SAMPLES <count>]").expect("MEMORY HELP lists USAGE");
        assert_eq!(
            help[usage + 1..usage + 3],
            [
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ]
        );
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), ok());
        let freq = cmd(&mut c, &["OBJECT", "FREQ", "k"]);
        assert!(matches!(&freq, Reply::Error(e) if e.starts_with("ERR An LFU maxmemory policy is not selected")), "{freq:?}");
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]), ok());
        // The policy reaches every shard on its next tick.
        let tracked = wait_until(std::time::Duration::from_secs(5), || matches!(cmd(&mut c, &["OBJECT", "FREQ", "k"]), Reply::Int(_)));
        assert!(tracked, "OBJECT FREQ still refused under allkeys-lfu");
        for _ in 0..100 {
            cmd(&mut c, &["GET", "k"]);
        }
        assert!(cmd(&mut c, &["OBJECT", "FREQ", "k"]).int() > 1);
        assert_eq!(cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]), ok());
    }
}
