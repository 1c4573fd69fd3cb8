//! Replication with real processes and sockets: full sync, the journal
//! stream, partial resync after a stall, fallback to a full sync, WAIT,
//! READONLY, promotion. Replicas converge when their DEBUG DIGEST equals the
//! primary's.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long replicas may take to converge once writes stop.
const CONVERGE: Duration = Duration::from_secs(30);

fn digest(s: &Server) -> String {
    cmd(&mut s.client(), &["DEBUG", "DIGEST"]).text()
}

fn info(s: &Server, section: &str) -> String {
    cmd(&mut s.client(), &["INFO", section]).text()
}

fn field(s: &Server, section: &str, name: &str) -> String {
    info_field(&info(s, section), name).unwrap_or_default()
}

fn num(s: &Server, section: &str, name: &str) -> i64 {
    field(s, section, name).parse().unwrap_or(-1)
}

fn replicate(replica: &Server, primary: &Server) {
    assert_eq!(cmd(&mut replica.client(), &["REPLICAOF", "127.0.0.1", &primary.port.to_string()]), ok());
}

fn link_up(replica: &Server) -> bool {
    field(replica, "replication", "master_link_status") == "up"
}

/// Waits until every replica's digest equals the primary's (and the link is up).
fn assert_converges(primary: &Server, replicas: &[&Server]) {
    let mut last = String::new();
    let ok = wait_until(CONVERGE, || {
        let want = digest(primary);
        replicas.iter().all(|r| {
            let got = digest(r);
            last = format!(
                "primary {want}, replica on {} {got}, link {}",
                r.port,
                field(r, "replication", "master_link_status")
            );
            got == want && link_up(r)
        })
    });
    if !ok {
        // Name the keys that differ, so a failure says where to look.
        for r in replicas {
            let pk = sorted_texts(&cmd(&mut primary.client(), &["KEYS", "*"]));
            let rk = sorted_texts(&cmd(&mut r.client(), &["KEYS", "*"]));
            let only_p: Vec<_> = pk.iter().filter(|k| !rk.contains(k)).take(10).collect();
            let only_r: Vec<_> = rk.iter().filter(|k| !pk.contains(k)).take(10).collect();
            let differ: Vec<_> = pk
                .iter()
                .filter(|k| rk.contains(k))
                .filter(|k| {
                    cmd(&mut primary.client(), &["DEBUG", "DIGEST-VALUE", k])
                        != cmd(&mut r.client(), &["DEBUG", "DIGEST-VALUE", k])
                })
                .take(10)
                .collect();
            eprintln!(
                "replica on {}: only on the primary {only_p:?}, only on the replica {only_r:?}, values differ {differ:?}",
                r.port
            );
        }
    }
    assert!(ok, "replicas did not converge: {last}");
}

/// Writes every data type, including commands whose effect depends on time
/// or chance, until `stop`; returns the number of commands sent.
fn write_load(port: u16, seed: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    load(port, seed, stop, true)
}

/// `write_load`, with TTLs or without (keys that expire keep the primary's
/// journal moving after the load stops: its expiries are shipped as DELs).
fn load(port: u16, seed: u64, stop: Arc<AtomicBool>, ttls: bool) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = connect(&format!("redis://127.0.0.1:{port}/"));
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut p = redis::pipe();
            for _ in 0..20 {
                let k = rng.u32(0..500);
                let key = format!("k{seed}:{k}");
                let pick = rng.u32(0..18);
                let pick = if !ttls && (pick == 1 || pick == 11) { 0 } else { pick };
                match pick {
                    0 => p.cmd("SET").arg(&key).arg(rng.u64(..)),
                    1 => p.cmd("SET").arg(format!("ttl{seed}:{k}")).arg("v").arg("PX").arg(rng.u32(1..400)),
                    2 => p.cmd("INCRBYFLOAT").arg(format!("f{seed}:{k}")).arg("1.5"),
                    3 => p.cmd("LPUSH").arg(format!("l{seed}:{k}")).arg(rng.u32(..)),
                    4 => p.cmd("RPOP").arg(format!("l{seed}:{k}")),
                    5 => p.cmd("HSET").arg(format!("h{seed}:{k}")).arg(rng.u32(0..20)).arg(rng.u32(..)),
                    6 => p.cmd("HINCRBYFLOAT").arg(format!("h{seed}:{k}")).arg("f").arg("0.25"),
                    7 => p.cmd("SADD").arg(format!("s{seed}:{k}")).arg(rng.u32(0..50)),
                    8 => p.cmd("SPOP").arg(format!("s{seed}:{k}")),
                    9 => p.cmd("ZADD").arg(format!("z{seed}:{k}")).arg(rng.u32(0..1000)).arg(rng.u32(0..100)),
                    10 => p.cmd("ZINCRBY").arg(format!("z{seed}:{k}")).arg(2).arg(rng.u32(0..100)),
                    11 => p.cmd("EXPIRE").arg(&key).arg(rng.u32(1..3)),
                    12 => p.cmd("DEL").arg(&key),
                    13 => p.cmd("MSET").arg(&key).arg("m").arg(format!("k{seed}:{}", rng.u32(0..500))).arg("n"),
                    14 => p.cmd("APPEND").arg(format!("a{seed}:{k}")).arg("xy"),
                    // A transaction on one shard (a hash tag), and one over several.
                    15 => p
                        .cmd("MULTI")
                        .cmd("INCR")
                        .arg(format!("{{m{seed}}}:a"))
                        .cmd("RPUSH")
                        .arg(format!("{{m{seed}}}:l"))
                        .arg(k)
                        .cmd("EXEC"),
                    16 => p
                        .cmd("MULTI")
                        .cmd("INCR")
                        .arg(format!("x{seed}:{k}"))
                        .cmd("DECR")
                        .arg(format!("x{seed}:{}", k + 1))
                        .cmd("EXEC"),
                    _ => p.cmd("INCR").arg(format!("n{seed}:{k}")),
                };
            }
            let _: Vec<redis::Value> = p.query(&mut c).expect("write load");
            n += 20;
        }
        n
    })
}

fn preload(s: &Server, keys: usize) {
    let mut c = s.client();
    let mut p = redis::pipe();
    for i in 0..keys {
        p.cmd("SET").arg(format!("pre:{i}")).arg(format!("value-{i:032}")).ignore();
        if i % 10 == 0 {
            p.cmd("RPUSH").arg(format!("prelist:{}", i % 97)).arg(i).ignore();
            p.cmd("HSET").arg(format!("prehash:{}", i % 89)).arg(i).arg("x").ignore();
            p.cmd("ZADD").arg(format!("prezset:{}", i % 83)).arg(i).arg(i).ignore();
            p.cmd("SADD").arg(format!("preset:{}", i % 79)).arg(i).ignore();
            p.cmd("SET").arg(format!("prettl:{i}")).arg("t").arg("EX").arg(1000).ignore();
        }
        if i % 1000 == 999 || i + 1 == keys {
            let _: () = p.query(&mut c).expect("preload");
            p = redis::pipe();
        }
    }
}

#[test]
fn replicas_with_other_shard_counts_converge_under_a_write_load() {
    let primary = Server::start(4);
    let one = Server::start(1);
    let three = Server::start(3);
    preload(&primary, 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2).map(|i| write_load(primary.port, i, stop.clone())).collect();
    // The replicas attach while the load runs: their snapshots and the
    // journal from each snapshot's position must add up to the primary.
    replicate(&one, &primary);
    replicate(&three, &primary);
    assert!(wait_until(CONVERGE, || link_up(&one) && link_up(&three)), "links did not come up");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert!(sent > 0);
    assert_converges(&primary, &[&one, &three]);
    assert_eq!(num(&primary, "replication", "connected_slaves"), 2);
    let offset = num(&primary, "replication", "master_repl_offset");
    assert!(offset > 0, "the journal moved");
    assert!(
        wait_until(CONVERGE, || num(&one, "replication", "slave_repl_offset") == offset),
        "replica offset {} != primary {offset}",
        num(&one, "replication", "slave_repl_offset")
    );
}

/// A full sync replaces what the replica held, whatever the two shard
/// counts: each primary shard's flow first drops the replica's keys in that
/// shard's slots (`REPLCONF flush-slots 0 16384 <shard> <shards>`), which
/// interleave with the replica's own shards' slots.
#[test]
fn a_full_sync_replaces_what_the_replica_held_whatever_the_shard_counts() {
    for (primary_shards, replica_shards) in [(2, 3), (3, 2)] {
        let primary = Server::start(primary_shards);
        let replica = Server::start(replica_shards);
        preload(&primary, 2_000);
        let mut c = replica.client();
        let mut p = redis::pipe();
        for i in 0..3_000 {
            p.cmd("SET").arg(format!("stale:{i}")).arg(i).ignore();
        }
        let _: () = p.query(&mut c).expect("stale keys");
        replicate(&replica, &primary);
        assert_converges(&primary, &[&replica]);
        assert_eq!(
            cmd(&mut c, &["EXISTS", "stale:0", "stale:1", "stale:2999"]),
            int(0),
            "{primary_shards} -> {replica_shards}"
        );
        assert_eq!(cmd(&mut c, &["DBSIZE"]), cmd(&mut primary.client(), &["DBSIZE"]));
    }
}

/// Keys in each of the two big hash-tag slots of
/// `a_full_sync_of_big_slots_under_non_idempotent_writes_converges`.
const BIG_SLOT_KEYS: usize = 30_000;

/// Hash tags whose slots (16375, 16243) come last in their shard's
/// snapshot, so that writes reach them before the snapshot does.
const BIG_TAGS: [&str; 2] = ["{big33}", "{big37}"];

/// Writes into the slots of `BIG_TAGS` until `stop`: INCR,
/// LPUSH and APPEND on names mostly created after the snapshot began (not
/// idempotent: applied twice, they differ), INCR of preloaded keys, MOVE to
/// database 1 and writes there, DEL then re-creation. Returns the commands
/// sent.
fn big_slot_load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = connect(&format!("redis://127.0.0.1:{port}/"));
        let mut rng = fastrand::Rng::with_seed(11);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut p = redis::pipe();
            for _ in 0..20 {
                let tag = BIG_TAGS[rng.usize(0..2)];
                let k = rng.u32(0..3_000);
                match rng.u32(0..8) {
                    0 => p.cmd("INCR").arg(format!("{tag}:n{k}")),
                    1 => p.cmd("LPUSH").arg(format!("{tag}:l{k}")).arg(k),
                    2 => p.cmd("APPEND").arg(format!("{tag}:s{k}")).arg("xy"),
                    3 => p.cmd("INCR").arg(format!("{tag}:{}", rng.usize(0..BIG_SLOT_KEYS))),
                    4 => p.cmd("MOVE").arg(format!("{tag}:{}", rng.usize(0..BIG_SLOT_KEYS))).arg(1),
                    5 => p
                        .cmd("SELECT")
                        .arg(1)
                        .cmd("INCR")
                        .arg(format!("{tag}:{}", rng.usize(0..BIG_SLOT_KEYS)))
                        .cmd("SELECT")
                        .arg(0),
                    6 => p.cmd("DEL").arg(format!("{tag}:n{k}")).cmd("INCR").arg(format!("{tag}:n{k}")),
                    _ => p.cmd("SET").arg(format!("{tag}:{}", rng.usize(0..BIG_SLOT_KEYS))).arg(k),
                };
            }
            let _: Vec<redis::Value> = p.query(&mut c).expect("big slot load");
            n += 20;
        }
        n
    })
}

/// Slots of more than `WHOLE_SLOT_KEYS` keys are copied on write per key
/// during a full sync: a replica that syncs while such slots are written
/// (keys created after the snapshot point, MOVE, DEL and re-creation) ends
/// with the primary's data, neither missing a write nor applying one twice.
#[test]
fn a_full_sync_of_big_slots_under_non_idempotent_writes_converges() {
    let primary = Server::start(2);
    let replica = Server::start(3);
    let mut c = primary.client();
    for tag in BIG_TAGS {
        for chunk in (0..BIG_SLOT_KEYS).collect::<Vec<_>>().chunks(1_000) {
            let mut p = redis::pipe();
            for i in chunk {
                p.cmd("SET").arg(format!("{tag}:{i}")).arg(i).ignore();
            }
            let _: () = p.query(&mut c).expect("preload");
        }
    }
    // Other slots ahead of the big ones, several of the flow's turns long.
    preload(&primary, 30_000);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = big_slot_load(primary.port, stop.clone());
    let written = || num(&primary, "stats", "total_commands_processed");
    replicate(&replica, &primary);
    assert!(wait_until(CONVERGE, || link_up(&replica)), "the replica never synced");
    // Writes go on for a while after the sync, on the journal alone.
    let synced = written();
    assert!(wait_until(CONVERGE, || written() > synced + 2_000), "the load stalled");
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_converges(&primary, &[&replica]);
    assert_eq!(cmd(&mut replica.client(), &["DBSIZE"]), cmd(&mut c, &["DBSIZE"]));
}

#[test]
fn replicas_refuse_writes_and_report_their_role() {
    let primary = Server::start(2);
    let replica = Server::start(2);
    cmd(&mut primary.client(), &["SET", "a", "1"]);
    replicate(&replica, &primary);
    assert!(wait_until(CONVERGE, || link_up(&replica)));
    let mut c = replica.client();
    assert_eq!(cmd(&mut c, &["SET", "b", "2"]), err("READONLY You can't write against a read only replica."));
    assert_eq!(cmd(&mut c, &["GET", "a"]), bulk("1"));
    // A write queued in MULTI fails the EXEC, as in Redis.
    assert_eq!(cmd(&mut c, &["MULTI"]), ok());
    assert_eq!(cmd(&mut c, &["SET", "b", "2"]), err("READONLY You can't write against a read only replica."));
    assert_eq!(cmd(&mut c, &["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
    let role = cmd(&mut c, &["ROLE"]).items();
    assert_eq!(role[0], bulk("slave"));
    assert_eq!(role[1], bulk("127.0.0.1"));
    assert_eq!(role[2], int(primary.port as i64));
    assert_eq!(role[3], bulk("connected"));
    let prole = cmd(&mut primary.client(), &["ROLE"]).items();
    assert_eq!(prole[0], bulk("master"));
    let replicas = prole[2].items();
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0].items()[1], bulk(replica.port.to_string()));
    let i = info(&replica, "replication");
    assert_eq!(info_field(&i, "role").as_deref(), Some("slave"));
    assert_eq!(info_field(&i, "master_port"), Some(primary.port.to_string()));
    assert_eq!(info_field(&i, "master_sync_in_progress").as_deref(), Some("0"));
    let p = info(&primary, "replication");
    let slave0 = info_field(&p, "slave0").expect("slave0 line");
    assert!(slave0.starts_with(&format!("ip=127.0.0.1,port={},state=online,offset=", replica.port)), "{slave0}");
    assert_eq!(
        cmd(&mut c, &["WAIT", "1", "0"]),
        err(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."
        )
    );
    // Promoted, it keeps the data and takes writes.
    assert_eq!(cmd(&mut c, &["REPLICAOF", "NO", "ONE"]), ok());
    assert_eq!(cmd(&mut c, &["SET", "b", "2"]), ok());
    assert_eq!(cmd(&mut c, &["GET", "a"]), bulk("1"));
    assert_eq!(cmd(&mut c, &["ROLE"]).items()[0], bulk("master"));
    assert!(wait_until(CONVERGE, || num(&primary, "replication", "connected_slaves") == 0));
}

#[test]
fn wait_counts_the_replicas_that_acked_and_times_out() {
    let primary = Server::start(2);
    let mut c = primary.client();
    // No replica: WAIT 0 returns at once, WAIT 1 waits out its timeout.
    assert_eq!(cmd(&mut c, &["WAIT", "0", "0"]), int(0));
    let t = Instant::now();
    assert_eq!(cmd(&mut c, &["WAIT", "1", "200"]), int(0));
    assert!(t.elapsed() >= Duration::from_millis(200), "WAIT returned after {:?}", t.elapsed());
    assert_eq!(cmd(&mut c, &["WAIT", "x", "0"]), err("ERR value is not an integer or out of range"));
    assert_eq!(cmd(&mut c, &["WAIT", "1", "-1"]), err("ERR timeout is negative"));
    let replica = Server::start(3);
    replicate(&replica, &primary);
    assert!(wait_until(CONVERGE, || link_up(&replica)));
    for i in 0..50 {
        cmd(&mut c, &["SET", &format!("w{i}"), "v"]);
        // Once WAIT says 1, the replica holds the write.
        assert_eq!(cmd(&mut c, &["WAIT", "1", "0"]), int(1));
        assert_eq!(cmd(&mut replica.client(), &["GET", &format!("w{i}")]), bulk("v"));
    }
    let t = Instant::now();
    assert_eq!(cmd(&mut c, &["WAIT", "2", "300"]), int(1));
    assert!(t.elapsed() >= Duration::from_millis(300));
}

/// Stops a replica with SIGSTOP for longer than the primary's repl-timeout
/// while writes go on, so the primary drops its flows; after SIGCONT it must
/// resume from its positions, not sync in full, and converge.
#[test]
fn a_stalled_replica_resyncs_partially_from_the_backlog() {
    let primary = Server::start_with(2, &["--repl-timeout", "2", "--repl-backlog-size", "64mb"]);
    let replica = Server::start_with(2, &["--repl-timeout", "2"]);
    preload(&primary, 2_000);
    replicate(&replica, &primary);
    assert_converges(&primary, &[&replica]);
    let full_before = num(&primary, "stats", "sync_full");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_load(primary.port, 7, stop.clone());
    replica.signal(libc::SIGSTOP);
    // The primary notices the silent replica after repl-timeout.
    let dropped = wait_until(CONVERGE, || num(&primary, "replication", "connected_slaves") == 0);
    replica.signal(libc::SIGCONT);
    assert!(dropped, "the primary kept a stopped replica");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_converges(&primary, &[&replica]);
    assert_eq!(num(&primary, "stats", "sync_full"), full_before, "no full sync after the stall");
    assert!(num(&primary, "stats", "sync_partial_ok") >= 1);
}

/// The same stall with a backlog too small for what was written meanwhile:
/// the replica falls back to a full sync and still converges.
#[test]
fn a_replica_behind_the_backlog_falls_back_to_a_full_sync() {
    let primary = Server::start_with(2, &["--repl-timeout", "2", "--repl-backlog-size", "16kb"]);
    let replica = Server::start_with(2, &["--repl-timeout", "2"]);
    replicate(&replica, &primary);
    assert_converges(&primary, &[&replica]);
    let full_before = num(&primary, "stats", "sync_full");
    replica.signal(libc::SIGSTOP);
    let dropped = wait_until(CONVERGE, || num(&primary, "replication", "connected_slaves") == 0);
    preload(&primary, 5_000);
    replica.signal(libc::SIGCONT);
    assert!(dropped, "the primary kept a stopped replica");
    assert_converges(&primary, &[&replica]);
    assert!(num(&primary, "stats", "sync_full") > full_before, "a full sync happened");
    assert!(num(&primary, "stats", "sync_partial_err") >= 1, "the partial resync was refused");
}

/// Writes 40 MB to `primary` (more than the kernel's socket buffers hold),
/// then starts a replica of `shards` shards that syncs through a proxy
/// holding the snapshot 256 KB in: the full sync has begun and stalls, as
/// with a replica that does not read, until the proxy is released.
fn full_sync_held(primary: &Server, shards: usize) -> (Server, Proxy) {
    let mut c = primary.client();
    let value = "s".repeat(10_000);
    for chunk in 0..40 {
        let mut p = redis::pipe();
        for i in 0..100 {
            p.cmd("SET").arg(format!("big:{}", chunk * 100 + i)).arg(&value).ignore();
        }
        let _: () = p.query(&mut c).expect("load");
    }
    let replica = Server::start(shards);
    let proxy = Proxy::start(primary.port);
    proxy.hold_downstream_after(256 * 1024);
    assert_eq!(cmd(&mut replica.client(), &["REPLICAOF", "127.0.0.1", &proxy.port.to_string()]), ok());
    assert!(wait_until(CONVERGE, || num(primary, "stats", "sync_full") == 1), "the full sync did not start");
    (replica, proxy)
}

/// Writes during a full sync may pass the backlog many times over: the
/// journal keeps what the flow has still to send (as Redis 7's replication
/// buffer), bounded by the replica output limit, not by repl-backlog-size,
/// so the sync completes once, and the memory is not counted for maxmemory.
#[test]
fn a_full_sync_outlasts_a_backlog_that_the_writes_during_it_overrun() {
    let primary = Server::start_with(1, &["--repl-backlog-size", "16kb"]);
    let mut c = primary.client();
    let (replica, proxy) = full_sync_held(&primary, 2);
    // 2 MB of writes while the snapshot waits: 128 backlogs.
    let small = "w".repeat(1_000);
    for i in 0..2_000 {
        cmd(&mut c, &["SET", &format!("during:{i}"), &small]);
    }
    let kept = num(&primary, "memory", "mem_not_counted_for_evict");
    proxy.release();
    assert!(kept > 1_000_000, "the journal did not keep the writes past the backlog: {kept}");
    assert_converges(&primary, &[&replica]);
    assert_eq!(num(&primary, "stats", "sync_full"), 1, "the sync had to start again");
    assert!(!primary.output().contains("fell out"), "{}", primary.output());
    assert!(
        wait_until(CONVERGE, || num(&primary, "memory", "mem_not_counted_for_evict") == 0),
        "the journal kept the bytes once they were sent"
    );
}

/// The same while the snapshot waits, with a replica output limit smaller
/// than what is written meanwhile: the flow is dropped at the limit (the
/// primary's memory stays bounded), and the replica syncs again.
#[test]
fn a_full_sync_that_falls_behind_by_the_output_limit_is_dropped_and_retried() {
    let primary =
        Server::start_with(1, &["--repl-backlog-size", "16kb", "--client-output-buffer-limit", "replica 1mb 0 0"]);
    let mut c = primary.client();
    let (replica, proxy) = full_sync_held(&primary, 1);
    let small = "w".repeat(1_000);
    let mut dropped = false;
    for i in 0..5_000 {
        cmd(&mut c, &["SET", &format!("during:{i}"), &small]);
        if i % 100 == 99 && primary.output().contains("over client-output-buffer-limit replica") {
            dropped = true;
            break;
        }
    }
    proxy.release();
    assert!(dropped, "the primary kept a full sync 5 MB behind: {}", primary.output());
    assert_converges(&primary, &[&replica]);
    assert!(num(&primary, "stats", "sync_full") >= 2, "the replica synced again");
}

#[test]
fn a_replica_killed_and_restarted_empty_syncs_in_full() {
    let primary = Server::start(2);
    preload(&primary, 5_000);
    let mut replica = Server::start(3);
    replicate(&replica, &primary);
    assert_converges(&primary, &[&replica]);
    replica.signal(libc::SIGKILL);
    let _ = replica.wait_exit(Duration::from_secs(10));
    assert!(wait_until(CONVERGE, || num(&primary, "replication", "connected_slaves") == 0));
    cmd(&mut primary.client(), &["SET", "after", "kill"]);
    let fresh = Server::start(3);
    assert_eq!(cmd(&mut fresh.client(), &["DBSIZE"]), int(0));
    replicate(&fresh, &primary);
    assert_converges(&primary, &[&fresh]);
    assert_eq!(cmd(&mut fresh.client(), &["GET", "after"]), bulk("kill"));
}

#[test]
fn cutting_the_link_during_full_sync_and_stable_sync_recovers() {
    let primary = Server::start(2);
    let replica = Server::start(3);
    // Enough data that the snapshot is still streaming when the link goes.
    preload(&primary, 60_000);
    let proxy = Proxy::start(primary.port);
    assert_eq!(cmd(&mut replica.client(), &["REPLICAOF", "127.0.0.1", &proxy.port.to_string()]), ok());
    assert!(wait_until(CONVERGE, || num(&primary, "stats", "sync_full") >= 1), "no sync started");
    proxy.cut();
    std::thread::sleep(Duration::from_millis(300));
    proxy.restore();
    assert_converges(&primary, &[&replica]);
    // Stable sync: writes go on while the link is cut, then it comes back.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_load(primary.port, 3, stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    proxy.cut();
    assert!(wait_until(CONVERGE, || !link_up(&replica)), "the replica did not notice the cut");
    std::thread::sleep(Duration::from_millis(300));
    proxy.restore();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_converges(&primary, &[&replica]);
    assert!(num(&primary, "stats", "sync_partial_ok") >= 1, "the stable-sync cut resumed partially");
}

/// REPLICAOF NO ONE on a replica: it keeps every write WAIT reported as
/// replicated, takes writes, and the other replica (same shard count),
/// re-pointed to it, continues from its positions instead of syncing anew.
#[test]
fn a_promoted_replica_keeps_acked_writes_and_its_sibling_resyncs_partially() {
    let primary = Server::start(2);
    let a = Server::start(2);
    let b = Server::start(2);
    preload(&primary, 3_000);
    replicate(&a, &primary);
    replicate(&b, &primary);
    assert_converges(&primary, &[&a, &b]);
    // Writes acknowledged by WAIT 2 are on both replicas.
    let mut c = primary.client();
    for i in 0..200 {
        cmd(&mut c, &["SET", &format!("acked:{i}"), &i.to_string()]);
        if i % 20 == 19 {
            assert_eq!(cmd(&mut c, &["WAIT", "2", "5000"]), int(2));
        }
    }
    // No TTLs here: the primary's journal must stand still once the load
    // stops, so both replicas end at the same positions. (A sibling ahead of
    // the promoted node on some flow would need a full sync of that flow.)
    let stop = Arc::new(AtomicBool::new(false));
    let writer = load(primary.port, 11, stop.clone(), false);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_converges(&primary, &[&a, &b]);
    let offset = num(&primary, "replication", "master_repl_offset");
    assert!(
        wait_until(CONVERGE, || [&a, &b].iter().all(|r| num(r, "replication", "slave_repl_offset") == offset)),
        "replicas did not reach the primary's offset {offset}"
    );
    let full_before = num(&a, "stats", "sync_full");
    assert_eq!(cmd(&mut a.client(), &["REPLICAOF", "NO", "ONE"]), ok());
    for i in 0..200 {
        assert_eq!(cmd(&mut a.client(), &["GET", &format!("acked:{i}")]), bulk(i.to_string()));
    }
    let i = info(&a, "replication");
    assert_eq!(info_field(&i, "role").as_deref(), Some("master"));
    assert_ne!(info_field(&i, "master_replid2").as_deref(), Some("0000000000000000000000000000000000000000"));
    // The promoted node takes writes under load while its sibling moves to it.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_load(a.port, 12, stop.clone());
    replicate(&b, &a);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_converges(&a, &[&b]);
    assert_eq!(num(&a, "stats", "sync_full"), full_before, "the sibling did not need a full sync");
    assert!(num(&a, "stats", "sync_partial_ok") >= 2, "both flows continued");
}

#[test]
fn a_replica_authenticates_with_masterauth_and_starts_from_its_replicaof_setting() {
    let primary = Server::start_with(2, &["--requirepass", "secret"]);
    let target = format!("127.0.0.1 {}", primary.port);
    // Wrong password: the link stays down and the log says why.
    let wrong = Server::start_with(1, &["--replicaof", &target, "--masterauth", "nope"]);
    let mut p = primary.client_auth("secret");
    cmd(&mut p, &["SET", "k", "v"]);
    let replica = Server::start_with(3, &["--replicaof", &target, "--masterauth", "secret"]);
    assert!(wait_until(CONVERGE, || link_up(&replica)), "the link did not come up");
    assert_eq!(cmd(&mut replica.client(), &["GET", "k"]), bulk("v"));
    assert!(
        wait_until(CONVERGE, || wrong.output().contains("unable to AUTH to MASTER")),
        "no log line for the refused AUTH:\n{}",
        wrong.output()
    );
    assert!(!link_up(&wrong));
    assert_eq!(cmd(&mut wrong.client(), &["DBSIZE"]), int(0));
    assert_eq!(cmd(&mut replica.client(), &["CONFIG", "GET", "replicaof"]), bulks(&["replicaof", &target]));
}

#[test]
fn writes_need_min_replicas_to_write_healthy_replicas() {
    let primary = Server::start_with(2, &["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]);
    let mut c = primary.client();
    assert_eq!(cmd(&mut c, &["SET", "a", "1"]), err("NOREPLICAS Not enough good replicas to write."));
    assert_eq!(cmd(&mut c, &["GET", "a"]), nil(), "reads are served");
    let replica = Server::start(1);
    replicate(&replica, &primary);
    assert!(wait_until(CONVERGE, || cmd(&mut c, &["SET", "a", "1"]) == ok()), "writes stayed refused");
    assert!(wait_until(CONVERGE, || cmd(&mut replica.client(), &["GET", "a"]) == bulk("1")));
    assert_eq!(num(&primary, "replication", "min_slaves_good_slaves"), 1);
}

/// A replica that stops reading is disconnected once what it has not been
/// sent passes the replica output limit, long before repl-timeout; the
/// primary keeps serving and the replica resyncs when it comes back.
#[test]
fn a_replica_that_cannot_keep_up_is_dropped_at_the_output_limit_and_resyncs() {
    // The backlog is larger than the limit, so the limit is what drops the
    // replica (with both at 1 MB either could fire first).
    let primary =
        Server::start_with(1, &["--client-output-buffer-limit", "replica 1mb 0 0", "--repl-backlog-size", "4mb"]);
    let replica = Server::start(1);
    replicate(&replica, &primary);
    assert_converges(&primary, &[&replica]);
    replica.signal(libc::SIGSTOP);
    let mut c = primary.client();
    let value = "x".repeat(10_000);
    let started = Instant::now();
    let mut dropped = false;
    // Up to 50 MB: the kernel's socket buffers take 10-20 MB of it before
    // the primary's own output starts to grow.
    for i in 0..5_000 {
        cmd(&mut c, &["SET", &format!("big:{}", i % 500), &value]);
        if num(&primary, "replication", "connected_slaves") == 0 {
            dropped = true;
            break;
        }
    }
    replica.signal(libc::SIGCONT);
    assert!(dropped, "the primary kept a replica 50 MB behind");
    assert!(started.elapsed() < Duration::from_secs(30), "dropped only after {:?}", started.elapsed());
    // The server's log reaches the test through a pipe a moment later.
    assert!(
        wait_until(CONVERGE, || primary.output().contains("client-output-buffer-limit replica")),
        "{}",
        primary.output()
    );
    assert_converges(&primary, &[&replica]);
}

/// Pointed at something that is not a coreshard primary (here a plain TCP
/// server answering garbage, then nothing at all), a replica says why in its
/// log, keeps retrying, and keeps serving its clients.
#[test]
fn a_replica_of_an_unusable_primary_says_why_and_keeps_serving() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::Write;
        for s in listener.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let replica = Server::start(2);
    assert_eq!(cmd(&mut replica.client(), &["REPLICAOF", "127.0.0.1", &port.to_string()]), ok());
    assert!(
        wait_until(CONVERGE, || replica.output().contains("replication flow 0 to 127.0.0.1")),
        "no log line:\n{}",
        replica.output()
    );
    let mut c = replica.client();
    assert_eq!(cmd(&mut c, &["PING"]), status("PONG"));
    assert_eq!(field(&replica, "replication", "master_link_status"), "down");
    assert_eq!(cmd(&mut c, &["ROLE"]).items()[3], bulk("connect"));
    assert_eq!(cmd(&mut c, &["REPLICAOF", "127.0.0.1", "notaport"]), err("ERR Invalid master port"));
    assert_eq!(
        cmd(&mut c, &["REPLICAOF", "127.0.0.1", &port.to_string()]),
        status("OK Already connected to specified master")
    );
    assert_eq!(cmd(&mut c, &["REPLICAOF", "NO", "ONE"]), ok());
    assert_eq!(cmd(&mut c, &["SET", "k", "v"]), ok());
    // A plain Redis replica asking this primary for a sync is told no.
    let mut raw = replica.raw();
    assert!(raw_cmd(&mut raw, &["PSYNC", "?", "-1"]).is_error());
    assert!(raw_cmd(&mut raw, &["SYNC"]).is_error());
    assert_eq!(raw_cmd(&mut raw, &["REPLCONF", "foo", "bar"]), err("ERR Unrecognized REPLCONF option: foo"));
    assert_eq!(raw_cmd(&mut raw, &["PING"]), status("PONG"));
}

/// A flow carries only acks from its replica: anything else closes it. What
/// a replica pipelined after its PSYNC travels with the socket to the shard
/// that serves the flow, so it is judged too, whichever shard took the
/// connection.
#[test]
fn a_flow_runs_what_was_pipelined_after_psync_and_refuses_other_commands() {
    use std::io::{Read, Write};
    let primary = Server::start(2);
    cmd(&mut primary.client(), &["SET", "k", "v"]);
    for shard in ["0", "1"] {
        let mut s = primary.raw();
        let mut bytes = resp_cmd(&["PSYNC", "?", "-1", shard, "test-replica"]);
        bytes.extend(resp_cmd(&["REPLCONF", "ACK", "0"]));
        bytes.extend(resp_cmd(&["GET", "k"]));
        s.write_all(&bytes).expect("write");
        // The close comes at once; repl-timeout (60 s) would close it too, later.
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => {
                    panic!("the flow stayed open after a GET on it: {e}; got {:?}", String::from_utf8_lossy(&got))
                }
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("+FULLRESYNC "), "{text}");
        assert!(wait_until(CONVERGE, || primary.output().matches("on its replication stream; closing it").count()
            == 1 + (shard == "1") as usize));
    }
    assert_eq!(cmd(&mut primary.client(), &["GET", "k"]), bulk("v"));
}

/// A transaction on one shard reaches the stream as MULTI ... EXEC (a
/// replica applies it as one step), a single write as itself; byte-exact,
/// as a replica reads them.
#[test]
fn the_stream_wraps_a_one_shard_transaction_in_multi_exec() {
    use std::io::{Read, Write};
    let primary = Server::start(1);
    let mut s = primary.raw();
    s.write_all(&resp_cmd(&["PSYNC", "?", "-1", "0", "wire-test"])).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_until = |got: &mut Vec<u8>, what: &[u8]| {
        while !got.windows(what.len()).any(|w| w == what) {
            let n = s.read(&mut buf).expect("stream");
            assert!(n > 0, "the stream ended");
            got.extend_from_slice(&buf[..n]);
        }
    };
    read_until(&mut got, b"snapshot-end\r\n");
    let end = got.windows(14).position(|w| w == b"snapshot-end\r\n").expect("read") + 14;
    got.drain(..end);
    let mut c = primary.client();
    cmd(&mut c, &["SET", "x", "1"]);
    assert_eq!(cmd(&mut c, &["MULTI"]), ok());
    cmd(&mut c, &["INCR", "a"]);
    cmd(&mut c, &["GET", "a"]);
    cmd(&mut c, &["INCR", "b"]);
    assert_eq!(cmd(&mut c, &["EXEC"]).items().len(), 3);
    read_until(&mut got, b"EXEC\r\n");
    // A full sync's journal starts with its fence (no transaction was open).
    let mut want = Vec::new();
    for part in [
        &["REPLCONF", "tx-fence", "1"][..],
        &["SELECT", "0"],
        &["SET", "x", "1"],
        &["MULTI"],
        &["INCR", "a"],
        &["INCR", "b"],
        &["EXEC"],
    ] {
        want.extend(resp_cmd(part));
    }
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
}

/// A replica with a smaller maxmemory than its data keeps all of it: only
/// the primary evicts, and its evictions arrive as DELs (Redis's default
/// replica-ignore-maxmemory yes).
#[test]
fn a_replica_leaves_eviction_to_its_primary() {
    let primary = Server::start_with(2, &["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]);
    let replica = Server::start_with(2, &["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru"]);
    replicate(&replica, &primary);
    assert!(wait_until(CONVERGE, || link_up(&replica)));
    preload(&primary, 20_000);
    assert_converges(&primary, &[&replica]);
    assert_eq!(num(&replica, "stats", "evicted_keys"), 0);
    assert_eq!(cmd(&mut replica.client(), &["DBSIZE"]), cmd(&mut primary.client(), &["DBSIZE"]));
}

/// Keys that the test writes together, spread over a 2-shard primary's
/// shards (eight names: all on one shard has odds of 1 in 128, and the
/// apart run below fails if they were).
const TORN_KEYS: [&str; 8] = ["tk:0", "tk:1", "tk:2", "tk:3", "tk:4", "tk:5", "tk:6", "tk:7"];

/// Whether one MGET of `TORN_KEYS` shows them unequal (half a write).
fn torn(c: &mut redis::Connection) -> Option<Vec<Reply>> {
    let mut args = vec!["MGET"];
    args.extend(TORN_KEYS);
    let items = cmd(c, &args).items();
    items.iter().any(|v| *v != items[0]).then_some(items)
}

/// Writes `TORN_KEYS` together, each round by MSET or by MULTI/EXEC over
/// every key, until `stop`, acknowledging some rounds with WAIT 1 and
/// checking the replica then holds that round whole; returns the rounds.
fn write_together(primary: u16, replica: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = connect(&format!("redis://127.0.0.1:{primary}/"));
        let mut r = connect(&format!("redis://127.0.0.1:{replica}/"));
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            let v = round.to_string();
            if round % 2 == 0 {
                let mut args = vec!["MSET"];
                for k in TORN_KEYS {
                    args.extend([k, v.as_str()]);
                }
                assert_eq!(cmd(&mut c, &args), ok());
            } else {
                let mut p = redis::pipe();
                p.atomic();
                for k in TORN_KEYS {
                    p.cmd("SET").arg(k).arg(&v);
                }
                let _: Vec<redis::Value> = p.query(&mut c).expect("EXEC");
            }
            if round % 5 == 0 {
                // WAIT counts the replica once it applied the write, not
                // once it received a part of it.
                assert_eq!(cmd(&mut c, &["WAIT", "1", "10000"]), int(1));
                let mut args = vec!["MGET"];
                args.extend(TORN_KEYS);
                let got = cmd(&mut r, &args).items();
                assert!(got.iter().all(|x| *x == bulk(&v)), "after WAIT the replica holds {got:?}, not round {v}");
            }
        }
        round
    })
}

/// A write the primary made atomically over several shards (MSET, EXEC)
/// reaches a replica whole: its shares arrive in different flows (one
/// delayed on purpose), and no read of the replica sees one without the
/// other. The same run with a replica that applies the shares apart
/// (`debug-replica-tx-atomic no`) must see torn reads, or this test could
/// not fail.
#[test]
fn a_replica_applies_a_multi_shard_write_whole_or_not_at_all() {
    for atomic in [true, false] {
        let primary = Server::start_with(2, &["--debug-repl-flow-delay-ms", "20"]);
        let replica = Server::start_with(3, &["--debug-replica-tx-atomic", if atomic { "yes" } else { "no" }]);
        preload(&primary, 1_000);
        replicate(&replica, &primary);
        assert_converges(&primary, &[&replica]);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = write_together(primary.port, replica.port, stop.clone());
        let noise = write_load(primary.port, 21, stop.clone());
        let mut r = replica.client();
        let (mut reads, mut seen) = (0u32, None);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) && (atomic || seen.is_none()) {
            reads += 1;
            if let Some(items) = torn(&mut r) {
                seen = Some(items);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = writer.join().expect("writer");
        noise.join().expect("noise");
        if atomic {
            assert!(rounds > 10, "only {rounds} rounds written");
            assert!(seen.is_none(), "a replica read saw half a write ({reads} reads): {seen:?}");
            assert_converges(&primary, &[&replica]);
            assert!(torn(&mut r).is_none());
        } else {
            assert!(seen.is_some(), "{reads} reads of a replica that applies shares apart saw nothing torn");
        }
    }
}

/// A key of primary shard `shard` (of `shards`), with `prefix`.
fn key_on_shard(prefix: &str, shard: usize, shards: usize) -> String {
    let slots = coreshard_engine::slot::SlotMap::new(shards).slots(shard);
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| slots.contains(coreshard_engine::slot::key_slot(k.as_bytes()) as usize))
        .expect("a key in every shard's slots")
}

/// Two multi-shard writes to one key, on primary shards 0+1 and then 0+2,
/// keep their order on a replica although the second's shares are all in
/// long before the first's (shard 1's flow is held back): the second
/// waits for the first instead of being applied first and overwritten.
#[test]
fn a_later_multi_shard_write_to_a_key_waits_for_an_earlier_one_on_a_replica() {
    let primary = Server::start_with(4, &["--debug-repl-flow-delay-ms", "400"]);
    let replica = Server::start(3);
    replicate(&replica, &primary);
    assert_converges(&primary, &[&replica]);
    let [a, b, c] = [0, 1, 2].map(|s| key_on_shard("order:", s, 4));
    let mut p = primary.client();
    assert_eq!(cmd(&mut p, &["MSET", &a, "first", &b, "first"]), ok());
    assert_eq!(cmd(&mut p, &["MSET", &a, "second", &c, "second"]), ok());
    // A plain write after both, on the key they share.
    assert_eq!(cmd(&mut p, &["APPEND", &a, "+"]), int(7));
    assert_converges(&primary, &[&replica]);
    let mut r = replica.client();
    assert_eq!(cmd(&mut r, &["MGET", &a, &b, &c]), bulks(&["second+", "first", "second"]));
}

/// A replica promoted while it holds one share of a transaction and not the
/// other drops it: the new primary shows the write whole or not at all.
#[test]
fn a_promoted_replica_never_shows_half_a_write() {
    for atomic in [true, false] {
        let primary = Server::start_with(2, &["--debug-repl-flow-delay-ms", "3000"]);
        let replica = Server::start_with(2, &["--debug-replica-tx-atomic", if atomic { "yes" } else { "no" }]);
        let mut c = primary.client();
        let mut args = vec!["MSET"];
        for k in TORN_KEYS {
            args.extend([k, "old"]);
        }
        assert_eq!(cmd(&mut c, &args), ok());
        replicate(&replica, &primary);
        assert_converges(&primary, &[&replica]);
        let before = num(&replica, "replication", "slave_repl_offset");
        let mut args = vec!["MSET"];
        for k in TORN_KEYS {
            args.extend([k, "new"]);
        }
        assert_eq!(cmd(&mut c, &args), ok());
        // The even shard's share arrives at once; the odd one's 3 s later.
        assert!(
            wait_until(CONVERGE, || num(&replica, "replication", "slave_repl_offset") > before),
            "the first share did not arrive"
        );
        assert_eq!(cmd(&mut replica.client(), &["REPLICAOF", "NO", "ONE"]), ok());
        let got = torn(&mut replica.client());
        if atomic {
            assert!(got.is_none(), "the promoted replica shows half a write: {got:?}");
        } else {
            assert!(got.is_some(), "a replica that applies shares apart showed nothing torn");
        }
    }
}

/// A sibling that applied a transaction the promoted replica never got
/// whole holds a write its new primary dropped: told so by the promoted
/// node's `tx-abort`, it resyncs every flow in full and converges. (Its
/// flow that is ahead would full-sync anyway; without this the other flow
/// would continue and keep its share of the dropped write.)
#[test]
fn a_sibling_that_applied_a_dropped_transaction_resyncs_in_full() {
    // No PINGs in the test's time: the sibling's even flow must end exactly
    // where the promoted node's does, so that it could continue partially.
    let primary = Server::start_with(2, &["--debug-repl-flow-delay-ms", "2000", "--repl-ping-replica-period", "3600"]);
    let promoted = Server::start(2);
    let sibling = Server::start(2);
    let proxy = Proxy::start(primary.port);
    let mut c = primary.client();
    let mut args = vec!["MSET"];
    for k in TORN_KEYS {
        args.extend([k, "old"]);
    }
    assert_eq!(cmd(&mut c, &args), ok());
    assert_eq!(cmd(&mut promoted.client(), &["REPLICAOF", "127.0.0.1", &proxy.port.to_string()]), ok());
    replicate(&sibling, &primary);
    assert_converges(&primary, &[&promoted, &sibling]);
    let before = num(&promoted, "replication", "slave_repl_offset");
    let mut args = vec!["MSET"];
    for k in TORN_KEYS {
        args.extend([k, "new"]);
    }
    assert_eq!(cmd(&mut c, &args), ok());
    // The promoted node gets the even shard's share, then loses its link
    // before the odd shard's (held back 2 s) arrives; the sibling gets both.
    assert!(
        wait_until(CONVERGE, || num(&promoted, "replication", "slave_repl_offset") > before),
        "the first share did not arrive"
    );
    proxy.cut();
    let mut s = sibling.client();
    let mut args = vec!["MGET"];
    args.extend(TORN_KEYS);
    assert!(
        wait_until(CONVERGE, || cmd(&mut s, &args).items().iter().all(|v| *v == bulk("new"))),
        "the sibling did not apply the write"
    );
    assert_eq!(cmd(&mut promoted.client(), &["REPLICAOF", "NO", "ONE"]), ok());
    assert!(torn(&mut promoted.client()).is_none(), "the promoted node shows half a write");
    replicate(&sibling, &promoted);
    assert_converges(&promoted, &[&sibling]);
    assert!(
        wait_until(CONVERGE, || sibling.output().contains("every replication flow resyncs in full")),
        "the sibling did not say why it resynced: {}",
        sibling.output()
    );
}

/// A replica applying a full sync keeps serving its clients: a shard
/// applies a stream's input a share per loop turn (about a millisecond), so
/// a command sent while the snapshot is being applied is answered while it
/// still is, the replica showing more of the snapshot than it held before
/// and not all of it.
#[test]
fn a_replica_serves_its_clients_while_it_applies_a_full_sync() {
    const KEYS: i64 = 200_000;
    let primary = Server::start(1);
    let mut c = primary.client();
    for chunk in 0..KEYS / 2_000 {
        let mut p = redis::pipe();
        for i in chunk * 2_000..(chunk + 1) * 2_000 {
            p.cmd("SET").arg(format!("sync:{i}")).arg(i).ignore();
        }
        let _: () = p.query(&mut c).expect("load");
    }
    // One shard: the stream and the client share its loop. The proxy holds
    // the snapshot back after its first 64 KB, then lets the rest through
    // at once.
    let replica = Server::start(1);
    let mut client = replica.client();
    let proxy = Proxy::start(primary.port);
    proxy.hold_downstream_after(64 * 1024);
    assert_eq!(cmd(&mut client, &["REPLICAOF", "127.0.0.1", &proxy.port.to_string()]), ok());
    let syncing = |client: &mut redis::Connection| {
        let info = cmd(client, &["INFO", "replication"]).text();
        info_field(&info, "master_sync_in_progress").as_deref() == Some("1")
    };
    assert!(
        wait_until(CONVERGE, || syncing(&mut client) && cmd(&mut client, &["DBSIZE"]).int() > 0),
        "the full sync did not start"
    );
    let held = cmd(&mut client, &["DBSIZE"]).int();
    proxy.release();
    let mut seen = Vec::new();
    let deadline = Instant::now() + CONVERGE;
    while Instant::now() < deadline {
        assert_eq!(cmd(&mut client, &["PING"]), status("PONG"));
        let keys = cmd(&mut client, &["DBSIZE"]).int();
        // Checked after the replies: the sync had not ended when they came.
        if !syncing(&mut client) {
            break;
        }
        if keys > held && keys < KEYS {
            seen.push(keys);
            break;
        }
    }
    assert!(!seen.is_empty(), "no command was answered while the snapshot was applied (first {held} keys held)");
    assert_converges(&primary, &[&replica]);
    assert_eq!(cmd(&mut client, &["DBSIZE"]).int(), KEYS);
}
