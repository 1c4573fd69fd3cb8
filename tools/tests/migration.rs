//! Online slot migration between cluster nodes (docs/decisions/0005-migration.md):
//! real coreshard processes on loopback, a cluster made by `coreshard-admin
//! create`, `coreshard-admin migrate` moving slots under a verifying load
//! from the `redis` crate's cluster client, and a target killed mid-stream.

mod common;

use common::*;
use coreshard_engine::slot::key_slot;
use coreshard_repl::cluster::ClusterConfig;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

const SHARDS: usize = 2;
/// Concurrent clients of the verifying load.
const LOAD_CLIENTS: usize = 4;
/// Keys each client of the load writes.
const KEYS_PER_CLIENT: usize = 50;
const ADMIN: &str = env!("CARGO_BIN_EXE_coreshard-admin");

fn scratch(tag: &str) -> PathBuf {
    scratch_dir(&format!("migration-{tag}"))
}

fn start_nodes(dir: &std::path::Path, n: usize) -> Vec<Server> {
    (0..n)
        .map(|i| {
            let file = dir.join(format!("node{i}.conf")).display().to_string();
            Server::start_with(SHARDS, &["--cluster-enabled", "yes", "--cluster-config-file", &file])
        })
        .collect()
}

fn admin(args: &[&str]) -> std::process::Output {
    Command::new(ADMIN).args(args).output().expect("run coreshard-admin")
}

fn create(nodes: &[Server]) -> ClusterConfig {
    let addrs: Vec<String> = nodes.iter().map(Server::addr).collect();
    let mut args = vec!["create", "--json"];
    args.extend(addrs.iter().map(String::as_str));
    let out = admin(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn migrate(from: &Server, to: &Server, lo: u16, hi: u16) {
    let slots = format!("{lo}-{hi}");
    let (from, to) = (from.addr(), to.addr());
    let out = admin(&["migrate", "--from", &from, "--to", &to, "--slots", &slots, "--max-pause-ms", "2000", "--json"]);
    assert!(
        out.status.success(),
        "migrate {slots} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The wall-clock timestamps a load client lines its latencies up with
    // come in the order of the steps they mark.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let at = |name: &str| json[name].as_u64().unwrap_or_else(|| panic!("no {name} in {json}"));
    let steps = ["started_unix_us", "cutover_unix_us", "done_unix_us", "finished_unix_us"].map(at);
    assert!(steps[0] > 0 && steps.is_sorted(), "timestamps out of order: {json}");
}

/// The node serving `slot`, as `ip:port`, in `srv`'s CLUSTER NODES.
fn owner(srv: &Server, slot: u16) -> String {
    let text = cmd(&mut srv.client(), &["CLUSTER", "NODES"]).text();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for r in parts.iter().skip(8) {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
            if (a..=b).contains(&slot) {
                return parts[1].split('@').next().unwrap().to_string();
            }
        }
    }
    String::new()
}

fn status(srv: &Server) -> String {
    cmd(&mut srv.client(), &["CLUSTER", "CORESHARD-MIGRATE", "STATUS"]).text()
}

#[test]
fn slots_move_back_and_forth_under_a_verifying_load() {
    if reference_run() {
        return;
    }
    let dir = scratch("load");
    let nodes = start_nodes(&dir, 3);
    let config = create(&nodes);
    // Half of node 1's slots: both of its shards own slots of any range of
    // two or more (slot % shards), so that two flows switch together.
    let r1 = config.nodes[1].slots[0];
    let (lo, hi) = (r1.start + (r1.end - r1.start) / 4, r1.start + (r1.end - r1.start) * 3 / 4);
    assert!(hi > lo, "{lo}-{hi}");
    for n in &nodes {
        // Commands for another shard travel 5 ms late: a write that passed
        // the routing check just before the switch reaches its shard after
        // it unless the cutover waits for it (and holds later ones).
        assert_eq!(cmd(&mut n.client(), &["CONFIG", "SET", "debug-shard-hop-delay-us", "5000"]), ok());
    }

    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    // Several clients (their connections land on different shards), each
    // the only writer of its keys, all in the moving slots. Each write is
    // read back at once (a write acknowledged by the source after the
    // switch would be missing on the target), and a random key of the
    // client after it.
    let range = coreshard_repl::cluster::SlotRange::new(lo, hi);
    let load = VerifyingLoad::start(urls.clone(), range_keys(range, LOAD_CLIENTS, KEYS_PER_CLIENT), false);
    // Let the load fill the keys first.
    assert!(wait_until(Duration::from_secs(30), || load.keys_written() > LOAD_CLIENTS * KEYS_PER_CLIENT / 2));
    for round in 0..2 {
        migrate(&nodes[1], &nodes[2], lo, hi);
        for n in &nodes {
            assert_eq!(owner(n, lo), nodes[2].addr(), "round {round}: after the move");
            assert_eq!(owner(n, hi), nodes[2].addr(), "round {round}: after the move");
        }
        assert!(status(&nodes[1]).contains("migration_state:done"));
        migrate(&nodes[2], &nodes[1], lo, hi);
        for n in &nodes {
            assert_eq!(owner(n, lo), nodes[1].addr(), "round {round}: after the move back");
        }
    }
    // Every acknowledged write reads back with its latest value.
    load.finish(urls);
}

/// Reads the source routed just before the switch, still on their way
/// between its shards (every hop takes 20 ms here), find their keys: the
/// source deletes the moved keys only once each of its shards routes with
/// the new configuration and has handed over what it routed with the old.
/// Three moves, back and forth, each with reads on the way.
#[test]
fn reads_routed_just_before_the_switch_find_their_keys() {
    if reference_run() {
        return;
    }
    let dir = scratch("reads");
    let nodes = start_nodes(&dir, 3);
    let config = create(&nodes);
    // 32 slots of node 1, spread over both of its shards (slot % shards),
    // each deleting its first of them first after the switch; on node 2
    // too.
    let r1 = config.nodes[1].slots[0];
    assert!(r1.start < 8192 && r1.end > 8192 + 32, "{r1:?}");
    let range = coreshard_repl::cluster::SlotRange::new(8192, 8192 + 31);
    let keys: Vec<String> = range_keys(range, 1, 32).remove(0);
    let mut c1 = nodes[1].client();
    for k in &keys {
        assert_eq!(cmd(&mut c1, &["SET", k, "kept"]), ok());
    }
    for n in &nodes[1..] {
        assert_eq!(cmd(&mut n.client(), &["CONFIG", "SET", "debug-shard-hop-delay-us", "20000"]), ok());
    }
    for (from, to) in [(1, 2), (2, 1), (1, 2)] {
        let (reads, wrong) = read_while_moving(&nodes[from], &nodes[to], range, &keys);
        assert!(
            wrong.is_empty(),
            "{from} -> {to}: {} wrong reads of {reads}, first: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        // Every key is on the target, and gone from the source in the end.
        let mut target = nodes[to].client();
        for k in &keys {
            assert_eq!(cmd(&mut target, &["GET", k]), bulk("kept"), "{k}");
        }
        let mut source = nodes[from].client();
        assert!(wait_until(Duration::from_secs(10), || {
            keys.iter().all(|k| {
                cmd(&mut source, &["CLUSTER", "COUNTKEYSINSLOT", &key_slot(k.as_bytes()).to_string()]) == int(0)
            })
        }));
    }
}

/// Moves `range` from `from` to `to` while readers on `from`, each on a
/// connection of a shard other than the first key's (a GET of it takes the
/// hop to its shard) and not following MOVED, read `keys`; returns the
/// reads that found their value, and the others.
fn read_while_moving(
    from: &Server,
    to: &Server,
    range: coreshard_repl::cluster::SlotRange,
    keys: &[String],
) -> (u64, Vec<String>) {
    const READERS: usize = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|t| {
            let (stop, ready, keys, url) = (stop.clone(), ready.clone(), keys.to_vec(), from.url());
            std::thread::spawn(move || {
                let hops = |c: &mut redis::Connection| {
                    let start = std::time::Instant::now();
                    let _: Option<String> = redis::cmd("GET").arg(&keys[0]).query(c).unwrap();
                    start.elapsed() >= Duration::from_millis(15)
                };
                let mut c = connect(&url);
                while !hops(&mut c) {
                    c = connect(&url);
                }
                ready.fetch_add(1, Relaxed);
                let mut rng = fastrand::Rng::with_seed(t as u64);
                let (mut reads, mut wrong) = (0u64, Vec::new());
                while !stop.load(Relaxed) {
                    let key = &keys[rng.usize(0..keys.len())];
                    match redis::cmd("GET").arg(key).query::<Option<String>>(&mut c) {
                        Ok(Some(v)) if v == "kept" => reads += 1,
                        Ok(v) => wrong.push(format!("GET {key}: {v:?}")),
                        Err(e) if e.code() == Some("MOVED") => break,
                        Err(e) => wrong.push(format!("GET {key}: {e}")),
                    }
                }
                (reads, wrong)
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(20), || ready.load(Relaxed) == READERS));
    migrate(from, to, range.start, range.end);
    stop.store(true, Relaxed);
    let (mut reads, mut wrong) = (0, Vec::new());
    for r in readers {
        let (n, w) = r.join().unwrap();
        reads += n;
        wrong.extend(w);
    }
    assert!(reads > 0);
    (reads, wrong)
}

#[test]
fn a_target_killed_mid_migration_changes_nothing_and_a_retry_succeeds() {
    if reference_run() {
        return;
    }
    let dir = scratch("kill");
    let mut nodes = start_nodes(&dir, 3);
    let config = create(&nodes);
    let r0 = config.nodes[0].slots[0];
    // About 2.4 MB in node 0's slots; throttled to 200 kB/s the snapshot
    // takes seconds, so the kill lands in the middle of it.
    let keys = fill(&nodes[0], r0, 20_000);
    let value = "v".repeat(100);
    let mut c0 = nodes[0].client();
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "200000"]), ok());
    let slots = format!("{}-{}", r0.start, r0.end);
    let child = Command::new(ADMIN)
        .args(["migrate", "--from", &nodes[0].addr(), "--to", &nodes[1].addr(), "--slots", &slots, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || streamed_past(&nodes[0], 100_000)), "{}", status(&nodes[0]));
    nodes[1].signal(libc::SIGKILL);
    let _ = nodes[1].wait_exit(Duration::from_secs(10));
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the migration must fail");
    // Nothing changed: node 0 serves the slots with every key, and writes.
    assert!(wait_until(Duration::from_secs(10), || status(&nodes[0]).contains("migration_state:aborted")));
    assert_eq!(owner(&nodes[0], r0.start), nodes[0].addr());
    assert_eq!(owner(&nodes[2], r0.start), nodes[0].addr());
    assert_eq!(cmd(&mut c0, &["DBSIZE"]), int(keys.len() as i64));
    assert_eq!(cmd(&mut c0, &["SET", &keys[0], "after"]), ok());
    // A retry (to the third node, unthrottled) succeeds and moves every key.
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "0"]), ok());
    migrate(&nodes[0], &nodes[2], r0.start, r0.end);
    assert_eq!(owner(&nodes[0], r0.start), nodes[2].addr());
    let mut c2 = nodes[2].client();
    assert_eq!(cmd(&mut c2, &["GET", &keys[0]]), bulk("after"));
    assert_eq!(cmd(&mut c2, &["GET", &keys[keys.len() - 1]]), bulk(&value));
    let moved = cmd(&mut c2, &["DBSIZE"]).int();
    assert_eq!(moved, keys.len() as i64);
    // The source deletes the moved keys in the background.
    assert!(wait_until(Duration::from_secs(20), || cmd(&mut c0, &["DBSIZE"]).int() == 0));
}

/// The writes during a migration's snapshot may pass the source's backlog
/// many times over: its journal keeps what the target has still to get
/// (bounded by the replica output limit), so the migration completes with
/// every write.
#[test]
fn a_migration_outlasts_a_backlog_that_the_writes_during_its_snapshot_overrun() {
    if reference_run() {
        return;
    }
    let dir = scratch("backlog");
    let nodes: Vec<Server> = (0..2)
        .map(|i| {
            let file = dir.join(format!("node{i}.conf")).display().to_string();
            let args = ["--cluster-enabled", "yes", "--cluster-config-file", &file, "--repl-backlog-size", "16kb"];
            Server::start_with(SHARDS, &args)
        })
        .collect();
    let config = create(&nodes);
    let r0 = config.nodes[0].slots[0];
    // About 2.4 MB, throttled to 500 kB/s: the snapshot takes about 5 s.
    let keys = fill(&nodes[0], r0, 20_000);
    let mut c0 = nodes[0].client();
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "500000"]), ok());
    let slots = format!("{}-{}", r0.start, r0.end);
    let child = Command::new(ADMIN)
        .args(["migrate", "--from", &nodes[0].addr(), "--to", &nodes[1].addr(), "--slots", &slots, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || streamed_past(&nodes[0], 100_000)), "{}", status(&nodes[0]));
    // 2 MB of writes to the moving slots during the snapshot: 64 backlogs
    // of each of the two shards.
    let written = "w".repeat(1_000);
    for k in keys.iter().take(2_000) {
        assert_eq!(cmd(&mut c0, &["SET", k, &written]), ok());
    }
    let kept: i64 = info_field(&cmd(&mut c0, &["INFO", "memory"]).text(), "mem_not_counted_for_evict")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(kept > 500_000, "the journal did not keep the writes past the backlog: {kept}; {}", status(&nodes[0]));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the migration failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(owner(&nodes[0], r0.start), nodes[1].addr());
    let mut c1 = nodes[1].client();
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(keys.len() as i64));
    assert_eq!(cmd(&mut c1, &["GET", &keys[0]]), bulk(&written));
    assert_eq!(cmd(&mut c1, &["GET", &keys[1_999]]), bulk(&written));
    assert_eq!(cmd(&mut c1, &["GET", &keys[2_000]]), bulk("v".repeat(100)));
}

/// `n` keys of 100 bytes in `range` on `srv` (about 2.4 MB for 20,000).
fn fill(srv: &Server, range: coreshard_repl::cluster::SlotRange, n: usize) -> Vec<String> {
    let mut c = srv.client();
    let keys: Vec<String> = (0..)
        .map(|i| format!("big:{i}"))
        .filter(|k| (range.start..=range.end).contains(&key_slot(k.as_bytes())))
        .take(n)
        .collect();
    let value = "v".repeat(100);
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("SET").arg(k).arg(&value).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    keys
}

/// True once `srv`'s migration has sent more than `bytes`, still streaming.
fn streamed_past(srv: &Server, bytes: u64) -> bool {
    let s = status(srv);
    let sent = s.lines().find_map(|l| l.strip_prefix("migration_bytes:")).and_then(|b| b.trim().parse::<u64>().ok());
    s.contains("migration_state:streaming") && sent.unwrap_or(0) > bytes
}

/// Writes during a throttled snapshot leave each flow more journal than
/// its budget lets it send at once; the admin switches as soon as the
/// snapshots are applied (no lag bound). The throttle does not apply under
/// the hold, so the flows catch up within it and the switch happens with
/// every write (throttled, they would wait seconds for their budget).
#[test]
fn a_throttled_migration_catches_up_within_the_hold() {
    if reference_run() {
        return;
    }
    let dir = scratch("throttled");
    let nodes = start_nodes(&dir, 2);
    let config = create(&nodes);
    let r0 = config.nodes[0].slots[0];
    // About 260 kB, throttled to 50 kB/s (25 kB/s a flow): about 5 s.
    let keys = fill(&nodes[0], r0, 2_000);
    let mut c0 = nodes[0].client();
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "50000"]), ok());
    let slots = format!("{}-{}", r0.start, r0.end);
    let (from, to) = (nodes[0].addr(), nodes[1].addr());
    let child = Command::new(ADMIN)
        .args(["migrate", "--from", &from, "--to", &to, "--slots", &slots, "--json"])
        .args(["--max-lag-bytes", "100000000", "--max-pause-ms", "2000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || streamed_past(&nodes[0], 1_000)), "{}", status(&nodes[0]));
    // About 600 kB written while the snapshot streams: 300 kB a flow, more
    // than one slice of the journal, 12 s of its budget.
    let written = "w".repeat(1_000);
    for k in keys.iter().take(600) {
        assert_eq!(cmd(&mut c0, &["SET", k, &written]), ok());
    }
    assert!(status(&nodes[0]).contains("migration_state:streaming"), "the writes outlasted the snapshot");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the migration failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(owner(&nodes[0], r0.start), nodes[1].addr());
    let mut c1 = nodes[1].client();
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(keys.len() as i64));
    for k in keys.iter().take(600).step_by(7) {
        assert_eq!(cmd(&mut c1, &["GET", k]), bulk(&written), "{k}");
    }
    assert_eq!(cmd(&mut c1, &["GET", &keys[keys.len() - 1]]), bulk("v".repeat(100)));
}

#[test]
fn cutting_the_link_mid_migration_changes_nothing_and_a_retry_succeeds() {
    if reference_run() {
        return;
    }
    let dir = scratch("cut");
    let nodes = start_nodes(&dir, 3);
    let config = create(&nodes);
    let r0 = config.nodes[0].slots[0];
    let keys = fill(&nodes[0], r0, 20_000);
    let mut c0 = nodes[0].client();
    let mut c1 = nodes[1].client();
    // Throttled, the snapshot takes seconds: the cut lands in its middle.
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "200000"]), ok());
    let proxy = Proxy::start(nodes[0].port);
    let slots = format!("{}-{}", r0.start, r0.end);
    let via = format!("127.0.0.1:{}", proxy.port);
    let (from, to) = (nodes[0].addr(), nodes[1].addr());
    let child = Command::new(ADMIN)
        .args(["migrate", "--from", &from, "--to", &to, "--source-addr", &via, "--slots", &slots, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || streamed_past(&nodes[0], 100_000)), "{}", status(&nodes[0]));
    // The target received part of the range (invisible to clients).
    assert!(cmd(&mut c1, &["DBSIZE"]).int() > 0);
    proxy.cut();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the migration must fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(wait_until(Duration::from_secs(10), || status(&nodes[0]).contains("migration_state:aborted")));
    for n in &nodes {
        assert_eq!(owner(n, r0.start), nodes[0].addr());
    }
    assert_eq!(cmd(&mut c0, &["DBSIZE"]), int(keys.len() as i64));
    assert_eq!(cmd(&mut c0, &["SET", &keys[0], "after"]), ok());
    // The target dropped what it had received for the range.
    assert!(
        wait_until(Duration::from_secs(10), || cmd(&mut c1, &["DBSIZE"]).int() == 0),
        "{} keys; {}; {}",
        cmd(&mut c1, &["DBSIZE"]).int(),
        status(&nodes[1]),
        String::from_utf8_lossy(&out.stderr)
    );
    // A retry, direct and unthrottled, succeeds.
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "0"]), ok());
    migrate(&nodes[0], &nodes[1], r0.start, r0.end);
    for n in &nodes {
        assert_eq!(owner(n, r0.start), nodes[1].addr());
    }
    assert_eq!(cmd(&mut c1, &["GET", &keys[0]]), bulk("after"));
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(keys.len() as i64));
    assert!(wait_until(Duration::from_secs(20), || cmd(&mut c0, &["DBSIZE"]).int() == 0));
}

#[test]
fn a_hold_that_runs_out_aborts_and_the_held_writes_run_on_the_source() {
    if reference_run() {
        return;
    }
    let dir = scratch("pause");
    let nodes = start_nodes(&dir, 3);
    let config = create(&nodes);
    // The upper half of node 1's slots, written in its odd slots only: they
    // are its second shard's (slot % shards), whose flow sends the journal
    // once a second (test-only), so it cannot catch up within a 20 ms hold
    // while the slots take writes.
    let r1 = config.nodes[1].slots[0];
    let (lo, hi) = ((r1.start + r1.end) / 2, r1.end);
    assert!(r1.start < lo);
    let mut c1 = nodes[1].client();
    assert_eq!(cmd(&mut c1, &["CONFIG", "SET", "debug-repl-flow-delay-ms", "1000"]), ok());
    let keys: Vec<String> = (0..)
        .map(|i| format!("p:{i}"))
        .filter(|k| (lo..=hi).contains(&key_slot(k.as_bytes())) && key_slot(k.as_bytes()) % SHARDS as u16 == 1)
        .take(50)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, keys, mut c) = (stop.clone(), keys.clone(), nodes[1].client());
        std::thread::spawn(move || {
            let mut acked: HashMap<String, u64> = HashMap::new();
            let mut errors = Vec::new();
            let mut i = 0u64;
            while !stop.load(Relaxed) {
                i += 1;
                let key = &keys[i as usize % keys.len()];
                match redis::cmd("SET").arg(key).arg(i).query::<()>(&mut c) {
                    Ok(()) => {
                        acked.insert(key.clone(), i);
                    }
                    Err(e) => errors.push(format!("SET {key}: {e}")),
                }
            }
            (acked, errors)
        })
    };
    let slots = format!("{lo}-{hi}");
    let (from, to) = (nodes[1].addr(), nodes[2].addr());
    let out = admin(&["migrate", "--from", &from, "--to", &to, "--slots", &slots, "--max-pause-ms", "20", "--json"]);
    stop.store(true, Relaxed);
    let (acked, errors) = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the switch must not happen: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("within the write pause"), "{stderr}");
    // The hold lasted its whole bound.
    let s1 = status(&nodes[1]);
    let held: u64 =
        s1.lines().find_map(|l| l.strip_prefix("migration_pause_us:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    assert!(held >= 20_000, "{s1}");
    // Writes were held, not refused, and ran on the source after the abort.
    assert!(errors.is_empty(), "{errors:?}");
    for n in &nodes {
        assert_eq!(owner(n, lo), nodes[1].addr());
    }
    for (key, want) in &acked {
        assert_eq!(cmd(&mut c1, &["GET", key]), bulk(want.to_string()), "{key}");
    }
    // The target dropped what it received.
    let mut c2 = nodes[2].client();
    assert!(wait_until(Duration::from_secs(10), || cmd(&mut c2, &["DBSIZE"]).int() == 0));
}

/// Cluster-mode nodes with these shard counts, their config files in `dir`
/// (node0.conf, node1.conf, ...), not yet in a cluster.
fn cluster_nodes(dir: &std::path::Path, shards: &[usize]) -> Vec<Server> {
    (shards.iter().enumerate())
        .map(|(i, &shards)| {
            let file = dir.join(format!("node{i}.conf")).display().to_string();
            Server::start_with(shards, &["--cluster-enabled", "yes", "--cluster-config-file", &file])
        })
        .collect()
}

/// Slots move between nodes of different shard counts (2 -> 3 -> 1): each
/// source shard's flow carries the slots it owns (slot % shards), the target
/// spreads them over its own shards, and nothing is lost or left behind.
#[test]
fn slots_move_between_nodes_of_different_shard_counts() {
    if reference_run() {
        return;
    }
    let dir = scratch("counts");
    let nodes = cluster_nodes(&dir, &[2, 3, 1]);
    let config = create(&nodes);
    let r0 = config.nodes[0].slots[0];
    let keys = fill(&nodes[0], r0, 5_000);
    let (mut c0, mut c1, mut c2) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    migrate(&nodes[0], &nodes[1], r0.start, r0.end);
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(keys.len() as i64));
    let per_shard = info_field(&cmd(&mut c1, &["INFO", "cluster"]).text(), "coreshard_shard_keys").unwrap_or_default();
    let counts: Vec<i64> = per_shard.split(',').filter_map(|n| n.parse().ok()).collect();
    assert!(counts.len() == 3 && counts.iter().all(|&n| n > 0), "node 1's shards: {per_shard}");
    assert!(wait_until(Duration::from_secs(20), || cmd(&mut c0, &["DBSIZE"]).int() == 0));
    // Half of them on to the one-shard node.
    let mid = r0.start + (r0.end - r0.start) / 2;
    migrate(&nodes[1], &nodes[2], r0.start, mid);
    let moved = keys.iter().filter(|k| key_slot(k.as_bytes()) <= mid).count() as i64;
    assert_eq!(cmd(&mut c2, &["DBSIZE"]), int(moved));
    assert!(wait_until(Duration::from_secs(20), || cmd(&mut c1, &["DBSIZE"]).int() == keys.len() as i64 - moved));
    let value = "v".repeat(100);
    for k in keys.iter().step_by(97) {
        let c = if key_slot(k.as_bytes()) <= mid { &mut c2 } else { &mut c1 };
        assert_eq!(cmd(c, &["GET", k]), bulk(&value), "{k}");
    }
}

/// A cluster of a 3-shard node (0) and a 2-shard node (1), node 1 with a
/// 3-shard replica (2): every flow of a pull into node 1 meets both of its
/// shards, and its replica spreads each of node 1's flows over its own
/// three. Node 1's deletion of slots it gives away is held
/// (`debug-migration-cleanup-keys-per-turn 0`).
fn with_a_replica(dir: &std::path::Path) -> (Vec<Server>, ClusterConfig) {
    let nodes = cluster_nodes(dir, &[3, 2, 3]);
    let config = create(&nodes[..2]);
    let out = admin(&["add-node", &nodes[2].addr(), &nodes[0].addr(), "--replica-of", &nodes[1].addr()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cmd(&mut nodes[1].client(), &["CONFIG", "SET", "debug-migration-cleanup-keys-per-turn", "0"]), ok());
    (nodes, config)
}

/// True once `replica` holds what `primary` holds (DEBUG DIGEST, which
/// does not depend on the shard count) and as many keys.
fn replica_matches(primary: &Server, replica: &Server) -> bool {
    let (mut p, mut r) = (primary.client(), replica.client());
    cmd(&mut p, &["DBSIZE"]) == cmd(&mut r, &["DBSIZE"])
        && cmd(&mut p, &["DEBUG", "DIGEST"]) == cmd(&mut r, &["DEBUG", "DIGEST"])
}

/// Slots move from node 1 to node 0 and straight back while node 1 still
/// holds their keys (its deletion held). On node 0 some keys are deleted,
/// some overwritten and some added in between. The pull back flushes node
/// 1's stale keys of the range first; node 1's replica must drop them too
/// (the flush is journaled), and nothing that the pull delivered. Node 1's
/// odd shard sends its journal to the replica 300 ms late, so that the
/// replica applies shard 0's share of the pull (its flush and its keys)
/// well before shard 1's flush, which must not touch them.
#[test]
fn a_pull_back_before_the_deletion_ended_leaves_the_targets_replica_equal() {
    if reference_run() {
        return;
    }
    let dir = scratch("pull-back");
    let (nodes, config) = with_a_replica(&dir);
    let (mut c0, mut c1, mut c2) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let r1 = config.nodes[1].slots[0];
    let (lo, hi) = (r1.start, r1.start + 199);
    let keys = fill(&nodes[1], coreshard_repl::cluster::SlotRange::new(lo, hi), 5_000);
    assert!(wait_until(Duration::from_secs(30), || replica_matches(&nodes[1], &nodes[2])), "the replica's first sync");
    assert_eq!(cmd(&mut c2, &["DBSIZE"]), int(keys.len() as i64));

    migrate(&nodes[1], &nodes[0], lo, hi);
    assert_eq!(owner(&nodes[1], lo), nodes[0].addr());
    // The deletion is held: node 1 and its replica still hold every key.
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(keys.len() as i64));
    assert_eq!(cmd(&mut c2, &["DBSIZE"]), int(keys.len() as i64));
    // Node 0 changes the slots: a fifth deleted, a seventh overwritten, some added.
    let mut p = redis::pipe();
    for (i, k) in keys.iter().enumerate() {
        if i % 5 == 0 {
            p.cmd("DEL").arg(k).ignore();
        } else if i % 7 == 1 {
            p.cmd("SET").arg(k).arg("new").ignore();
        }
    }
    let added: Vec<String> =
        (0..).map(|i| format!("added:{i}")).filter(|k| (lo..=hi).contains(&key_slot(k.as_bytes()))).take(300).collect();
    for k in &added {
        p.cmd("SET").arg(k).arg("added").ignore();
    }
    let _: () = p.query(&mut c0).unwrap();
    let deleted = keys.len().div_ceil(5);
    let expected = (keys.len() - deleted + added.len()) as i64;
    assert_eq!(cmd(&mut c0, &["DBSIZE"]), int(expected));
    let digest = cmd(&mut c0, &["DEBUG", "DIGEST"]);

    assert_eq!(cmd(&mut c1, &["CONFIG", "SET", "debug-repl-flow-delay-ms", "300"]), ok());
    migrate(&nodes[0], &nodes[1], lo, hi);
    assert_eq!(owner(&nodes[1], lo), nodes[1].addr());
    // Node 1 holds exactly node 0's keys of the range.
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(expected));
    assert_eq!(cmd(&mut c1, &["DEBUG", "DIGEST"]), digest);
    // Its replica too, once it caught up.
    assert!(
        wait_until(Duration::from_secs(20), || replica_matches(&nodes[1], &nodes[2])),
        "node 1 holds {} keys, its replica {}",
        cmd(&mut c1, &["DBSIZE"]).int(),
        cmd(&mut c2, &["DBSIZE"]).int()
    );
    assert_eq!(cmd(&mut c2, &["READONLY"]), ok());
    assert_eq!(cmd(&mut c2, &["GET", &keys[0]]), nil());
    assert_eq!(cmd(&mut c2, &["GET", &keys[1]]), bulk("new"));
    assert_eq!(cmd(&mut c2, &["GET", &keys[2]]), bulk("v".repeat(100)));
    assert_eq!(cmd(&mut c2, &["GET", &added[0]]), bulk("added"));
}

/// A pull aborted in the middle of its snapshot: node 1 drops what it
/// received at once (its background deletion held here), and its replica
/// drops it too.
#[test]
fn an_aborted_pull_is_dropped_by_the_targets_replica_too() {
    if reference_run() {
        return;
    }
    let dir = scratch("abort-replica");
    let (nodes, config) = with_a_replica(&dir);
    let (mut c0, mut c1, mut c2) = (nodes[0].client(), nodes[1].client(), nodes[2].client());
    let r0 = config.nodes[0].slots[0];
    let keys = fill(&nodes[0], r0, 20_000);
    // Throttled, the snapshot takes seconds: the abort lands in its middle.
    assert_eq!(cmd(&mut c0, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "200000"]), ok());
    let slots = format!("{}-{}", r0.start, r0.end);
    let (from, to) = (nodes[0].addr(), nodes[1].addr());
    let child = Command::new(ADMIN)
        .args(["migrate", "--from", &from, "--to", &to, "--slots", &slots, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || streamed_past(&nodes[0], 100_000)), "{}", status(&nodes[0]));
    // Part of the range reached node 1 and its replica.
    assert!(wait_until(Duration::from_secs(20), || cmd(&mut c2, &["DBSIZE"]).int() > 0));
    assert_eq!(cmd(&mut c0, &["CLUSTER", "CORESHARD-MIGRATE", "ABORT"]), ok());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the migration must fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(wait_until(Duration::from_secs(10), || status(&nodes[1]).contains("migration_state:aborted")));
    assert_eq!(cmd(&mut c1, &["CLUSTER", "CORESHARD-MIGRATE", "ABORT"]), ok());
    assert_eq!(cmd(&mut c1, &["DBSIZE"]), int(0));
    assert!(
        wait_until(Duration::from_secs(20), || cmd(&mut c2, &["DBSIZE"]).int() == 0),
        "the replica keeps {} keys",
        cmd(&mut c2, &["DBSIZE"]).int()
    );
    assert_eq!(cmd(&mut c0, &["DBSIZE"]), int(keys.len() as i64));
    assert_eq!(owner(&nodes[1], r0.start), nodes[0].addr());
}

/// A node gives slots away while its deletion of them is held, then pulls
/// other slots in: from a third node, and then the middle of a range it
/// gave away. Each pull stops only the deletion of its own slots: once the
/// deletion runs again, the node (and its replica) hold none of the keys of
/// the slots it gave away for good, and every key of the slots it got.
/// Node 0 (3 shards) gives X to node 1 and Z to node 2, pulls Y from node 2
/// and the middle of X back from node 1; node 3 (2 shards) is node 0's
/// replica.
#[test]
fn a_pull_stops_only_the_deletion_of_the_slots_it_brings_back() {
    if reference_run() {
        return;
    }
    use coreshard_repl::cluster::SlotRange;
    let dir = scratch("pull-stop");
    let nodes = cluster_nodes(&dir, &[3, 2, 2, 2]);
    let config = create(&nodes[..3]);
    let out = admin(&["add-node", &nodes[3].addr(), &nodes[0].addr(), "--replica-of", &nodes[0].addr()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (mut a, mut b, mut r) = (nodes[0].client(), nodes[1].client(), nodes[3].client());
    assert_eq!(cmd(&mut a, &["CONFIG", "SET", "debug-migration-cleanup-keys-per-turn", "0"]), ok());

    let (a_lo, c_lo) = (config.nodes[0].slots[0].start, config.nodes[2].slots[0].start);
    let x = SlotRange::new(a_lo, a_lo + 199);
    let z = SlotRange::new(a_lo + 300, a_lo + 399);
    let y = SlotRange::new(c_lo, c_lo + 99);
    let middle = SlotRange::new(a_lo + 50, a_lo + 149);
    let x_keys = fill(&nodes[0], x, 3_000);
    let z_keys = fill(&nodes[0], z, 1_500);
    let y_keys = fill(&nodes[2], y, 1_500);
    let in_middle = |k: &String| (middle.start..=middle.end).contains(&key_slot(k.as_bytes()));
    let middle_keys: Vec<&String> = x_keys.iter().filter(|k| in_middle(k)).collect();
    assert!(wait_until(Duration::from_secs(30), || replica_matches(&nodes[0], &nodes[3])), "the replica's first sync");

    migrate(&nodes[0], &nodes[1], x.start, x.end);
    migrate(&nodes[0], &nodes[2], z.start, z.end);
    // The deletion is held: node 0 still holds every key it gave away.
    assert_eq!(cmd(&mut a, &["DBSIZE"]), int((x_keys.len() + z_keys.len()) as i64));
    // A pull into node 0 of slots it never gave away.
    migrate(&nodes[2], &nodes[0], y.start, y.end);
    // And one of the middle of X, changed on node 1 first: node 0's
    // pending deletion of X is split around it.
    assert_eq!(cmd(&mut b, &["SET", middle_keys[0], "from-1"]), ok());
    migrate(&nodes[1], &nodes[0], middle.start, middle.end);
    assert_eq!(owner(&nodes[0], middle.start), nodes[0].addr());
    assert_eq!(owner(&nodes[0], x.start), nodes[1].addr());

    assert_eq!(cmd(&mut a, &["CONFIG", "SET", "debug-migration-cleanup-keys-per-turn", "256"]), ok());
    let expected = (y_keys.len() + middle_keys.len()) as i64;
    assert!(
        wait_until(Duration::from_secs(20), || cmd(&mut a, &["DBSIZE"]).int() == expected),
        "node 0 holds {} keys, {expected} expected ({} of X, {} of Z, {} of Y, {} of the middle of X)",
        cmd(&mut a, &["DBSIZE"]).int(),
        x_keys.len(),
        z_keys.len(),
        y_keys.len(),
        middle_keys.len()
    );
    for slot in (x.start..=x.end).chain(z.start..=z.end) {
        let want = if (middle.start..=middle.end).contains(&slot) {
            x_keys.iter().filter(|k| key_slot(k.as_bytes()) == slot).count() as i64
        } else {
            0
        };
        let slot = slot.to_string();
        assert_eq!(cmd(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", &slot]), int(want), "slot {slot}");
    }
    let mut p = redis::pipe();
    for k in y_keys.iter().chain(middle_keys.iter().copied()) {
        p.cmd("EXISTS").arg(k);
    }
    let found: Vec<i64> = p.query(&mut a).unwrap();
    assert_eq!(found.iter().sum::<i64>(), expected);
    assert_eq!(cmd(&mut a, &["GET", middle_keys[0]]), bulk("from-1"));
    // The replica dropped the same slots.
    assert!(
        wait_until(Duration::from_secs(20), || replica_matches(&nodes[0], &nodes[3])),
        "node 0 holds {} keys, its replica {}",
        cmd(&mut a, &["DBSIZE"]).int(),
        cmd(&mut r, &["DBSIZE"]).int()
    );
}

/// `n` keys sharing a hash tag of `slot` (one slot holds them all).
fn slot_keys(slot: u16, n: usize) -> Vec<String> {
    let tag = (0..).map(|i| format!("t{i}")).find(|t| key_slot(t.as_bytes()) == slot).unwrap();
    (0..n).map(|i| format!("{{{tag}}}:{i}")).collect()
}

/// A slot given away and half deleted (a key per batch here) that the node
/// serves again, by a configuration pushed meanwhile, keeps what is left of
/// its keys: the deletion stops within its batches, and goes on with the
/// next slot given away (`s + 2`, the same shard's), which it empties.
#[test]
fn a_slot_served_again_while_half_deleted_keeps_its_keys() {
    if reference_run() {
        return;
    }
    use coreshard_repl::cluster::SlotRange;
    let dir = scratch("served-again");
    let nodes = start_nodes(&dir, 2);
    let config = create(&nodes);
    let mut a = nodes[0].client();
    let a_range = config.nodes[0].slots[0];
    let s = a_range.start;
    let mut p = redis::pipe();
    let (first, next) = (slot_keys(s, 20_000), slot_keys(s + 2, 100));
    for k in first.iter().chain(&next) {
        p.cmd("SET").arg(k).arg("v").ignore();
    }
    let _: () = p.query(&mut a).unwrap();
    assert_eq!(cmd(&mut a, &["CONFIG", "SET", "debug-migration-cleanup-keys-per-turn", "0"]), ok());
    migrate(&nodes[0], &nodes[1], s, s + 2);
    let count = |c: &mut redis::Connection, slot: u16| cmd(c, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).int();
    assert_eq!(count(&mut a, s), first.len() as i64);

    assert_eq!(cmd(&mut a, &["CONFIG", "SET", "debug-migration-cleanup-keys-per-turn", "1"]), ok());
    assert!(wait_until(Duration::from_secs(20), || count(&mut a, s) < first.len() as i64), "the deletion began");
    // Slot s alone back to node 0, at a newer epoch, on both nodes.
    let epoch = info_field(&cmd(&mut a, &["CLUSTER", "INFO"]).text(), "cluster_current_epoch").unwrap();
    let mut back = config.clone();
    back.epoch = epoch.parse::<u64>().unwrap() + 1;
    back.nodes[0].slots = vec![SlotRange::new(s, s), SlotRange::new(s + 3, a_range.end)];
    back.nodes[1].slots.insert(0, SlotRange::new(s + 1, s + 2));
    let text = serde_json::to_string(&back).unwrap();
    let epoch = back.epoch.to_string();
    for n in &nodes {
        assert_eq!(cmd(&mut n.client(), &["CLUSTER", "CORESHARD-SETCONFIG", &epoch, &text]), ok());
    }
    let left = count(&mut a, s);
    assert!(left > 0, "slot {s} was emptied before the configuration came");
    // The deletion moved on to the next slot and emptied it ...
    assert!(
        wait_until(Duration::from_secs(20), || count(&mut a, s + 2) == 0),
        "slot {} keeps {} keys, slot {s} {} (of {} left when it was served again)",
        s + 2,
        count(&mut a, s + 2),
        count(&mut a, s),
        left
    );
    // ... and left slot s as it was, served here.
    assert_eq!(count(&mut a, s), left, "slot {s} had {left} keys when it was served again");
    assert_eq!(cmd(&mut a, &["DBSIZE"]), int(left));
    let mut p = redis::pipe();
    for k in &first {
        p.cmd("EXISTS").arg(k);
    }
    let found: Vec<i64> = p.query(&mut a).unwrap();
    assert_eq!(found.iter().sum::<i64>(), left);
}
