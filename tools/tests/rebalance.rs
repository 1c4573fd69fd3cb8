//! Growing a cluster: `coreshard-admin add-node` and `rebalance` on real
//! coreshard processes on loopback. A node joins a two-node cluster that
//! holds keys and `rebalance --use-empty-primaries` gives it a third of the
//! slots while the `redis` crate's cluster client writes and reads back
//! under it; a node joins as a replica and replicates; a node with keys or
//! of another cluster is refused; `--dry-run` changes nothing; a move whose
//! target is killed stops the rebalance with nothing changed; add-node on
//! a cluster whose configuration is in the control log, and a rebalance
//! there, whose switches are committed log entries. Shrinking it: a node
//! drained with `rebalance --weight <id>=0` leaves with `del-node`, which
//! refuses a node that still serves slots or has replicas; a replica leaves;
//! on a control-log cluster del-node refuses a voter and removes others.
//! Every removed node is reset (CLUSTER RESET SOFT): alone, no slots, no
//! replication; a killed one is removed all the same, reported not reset. A push that misses a node (killed, or stopped with SIGSTOP)
//! fails add-node and del-node, naming it, and `fix` repairs it.

mod common;

use common::*;
use coreshard_engine::slot::key_slot;
use coreshard_repl::cluster::ClusterConfig;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const SHARDS: usize = 2;
const ADMIN: &str = env!("CARGO_BIN_EXE_coreshard-admin");
/// Concurrent clients of the verifying load.
const LOAD_CLIENTS: usize = 4;
/// Keys each client of the load writes, spread over every slot.
const KEYS_PER_CLIENT: usize = 200;
/// How long an election, a commit or a first sync may take on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(30);

fn scratch(tag: &str) -> PathBuf {
    scratch_dir(&format!("rebalance-{tag}"))
}

/// A fresh cluster-mode node with its config file (and control port) in `dir`.
fn start_node(dir: &Path, i: usize) -> Server {
    let file = dir.join(format!("node{i}.conf")).display().to_string();
    let port = probe_port().to_string();
    Server::start_with(SHARDS, &["--cluster-enabled", "yes", "--cluster-config-file", &file, "--cluster-port", &port])
}

fn admin(args: &[&str]) -> Output {
    Command::new(ADMIN).args(args).output().expect("run coreshard-admin")
}

/// Runs coreshard-admin, which must succeed; its stdout.
fn admin_ok(args: &[&str]) -> String {
    let out = admin(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "coreshard-admin {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Runs coreshard-admin, which must fail; its stderr.
fn admin_fails(args: &[&str]) -> String {
    let out = admin(args);
    assert!(!out.status.success(), "coreshard-admin {args:?} must fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn create(nodes: &[&Server], extra: &[&str]) -> ClusterConfig {
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr()).collect();
    let mut args = vec!["create", "--json"];
    args.extend(extra);
    args.extend(addrs.iter().map(String::as_str));
    serde_json::from_str(&admin_ok(&args)).expect("create --json prints the configuration")
}

/// The node's config epoch, or None when it does not answer.
fn epoch(srv: &Server) -> Option<u64> {
    let mut c = redis::Client::open(srv.url()).ok()?.get_connection().ok()?;
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).ok()?;
    info_field(&info, "cluster_current_epoch")?.parse().ok()
}

/// CLUSTER NODES of `srv`: per node, (address, flags, primary id, slot count).
fn nodes_of(srv: &Server) -> Vec<(String, String, String, usize)> {
    let text = cmd(&mut srv.client(), &["CLUSTER", "NODES"]).text();
    text.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let slots = parts[8..]
                .iter()
                .map(|r| {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    b.parse::<usize>().unwrap() + 1 - a.parse::<usize>().unwrap()
                })
                .sum();
            let addr = parts[1].split('@').next().unwrap().to_string();
            (addr, parts[2].to_string(), parts[3].to_string(), slots)
        })
        .collect()
}

/// Slots `srv` serves, by its own CLUSTER NODES.
fn slot_count(srv: &Server) -> usize {
    nodes_of(srv).into_iter().find(|n| n.1.contains("myself")).map_or(0, |n| n.3)
}

fn myid(srv: &Server) -> String {
    cmd(&mut srv.client(), &["CLUSTER", "MYID"]).text()
}

/// Checks that `srv` was reset out of its cluster: it knows only itself,
/// serves no slot, and replicates nothing.
fn assert_reset(srv: &Server, id: &str) {
    let mut c = srv.client();
    assert_eq!(myid(srv), id);
    let info = cmd(&mut c, &["CLUSTER", "INFO"]).text();
    assert_eq!(info_field(&info, "cluster_known_nodes").as_deref(), Some("1"), "{info}");
    assert_eq!(info_field(&info, "cluster_slots_assigned").as_deref(), Some("0"), "{info}");
    assert_eq!(cmd(&mut c, &["CLUSTER", "SLOTS"]), arr(vec![]));
    let listed = nodes_of(srv);
    assert!(listed.len() == 1 && listed[0].1 == "myself,master", "{listed:?}");
    assert_eq!(info_field(&cmd(&mut c, &["INFO", "replication"]).text(), "role").as_deref(), Some("master"));
}

/// `n` keys written through a cluster client to `urls`; their names.
fn fill(urls: &[String], tag: &str, n: usize) -> Vec<String> {
    let client = redis::cluster::ClusterClient::new(urls.to_vec()).unwrap();
    let mut cc = client.get_connection().unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("{tag}:{i}")).collect();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg(k).query(&mut cc).unwrap();
    }
    keys
}

#[test]
fn a_third_node_joins_and_rebalance_moves_a_third_of_the_slots_under_load() {
    if reference_run() {
        return;
    }
    let dir = scratch("grow");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    create(&[&a, &b], &[]);
    let urls = vec![a.url(), b.url()];
    let before = fill(&urls, "pre", 2000);

    // The third node joins as an empty primary; every node lists it, and
    // cluster clients see it.
    let c = start_node(&dir, 2);
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["add-node", &c.addr(), &a.addr(), "--json"])).unwrap();
    assert_eq!(report["role"], "primary");
    assert_eq!(report["id"], myid(&c).as_str());
    assert_eq!(report["control_log"], false);
    assert_eq!(report["epoch"], 2);
    for n in [&a, &b, &c] {
        assert_eq!(epoch(n), Some(2));
        let listed = nodes_of(n);
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().any(|l| l.0 == c.addr() && l.1.contains("master") && l.3 == 0), "{listed:?}");
    }
    let shards = cmd(&mut a.client(), &["CLUSTER", "SHARDS"]).items();
    assert_eq!(shards.len(), 3, "{shards:?}");
    let show = admin_ok(&["show", &b.addr()]);
    assert!(show.contains(&c.addr()), "{show}");
    // Adding it twice is refused.
    let err = admin_fails(&["add-node", &c.addr(), &a.addr()]);
    assert!(err.contains("already a member"), "{err}");

    // Without --use-empty-primaries the two halves are balanced already.
    let plan: serde_json::Value =
        serde_json::from_str(&admin_ok(&["rebalance", &a.addr(), "--dry-run", "--json"])).unwrap();
    assert_eq!(plan["over_threshold"], false);
    assert_eq!(plan["moves"].as_array().unwrap().len(), 0);
    // A dry run prints the plan and changes nothing.
    let plan: serde_json::Value =
        serde_json::from_str(&admin_ok(&["rebalance", &a.addr(), "--use-empty-primaries", "--dry-run", "--json"]))
            .unwrap();
    assert_eq!(plan["over_threshold"], true);
    assert!(!plan["moves"].as_array().unwrap().is_empty(), "{plan}");
    assert!(plan["results"].as_array().unwrap().is_empty());
    let text = admin_ok(&["rebalance", &a.addr(), "--use-empty-primaries", "--dry-run"]);
    assert!(text.contains("Plan: "), "{text}");
    for n in [&a, &b, &c] {
        assert_eq!(epoch(n), Some(2));
    }
    assert_eq!(slot_count(&c), 0);
    assert_eq!(cmd(&mut c.client(), &["DBSIZE"]), int(0));

    // The verifying load: each client the only writer of its keys, spread
    // over all slots; every write is read back at once, and a random key
    // of the client after it, so a lost or stale write is seen.
    let urls: Vec<String> = [&a, &b, &c].iter().map(|n| n.url()).collect();
    for n in [&a, &b, &c] {
        // Commands for another shard travel 5 ms late, which widens the
        // window of a write racing each switch (as in migration.rs).
        assert_eq!(cmd(&mut n.client(), &["CONFIG", "SET", "debug-shard-hop-delay-us", "5000"]), ok());
    }
    let keys = (0..LOAD_CLIENTS).map(|t| (0..KEYS_PER_CLIENT).map(|i| format!("load:{t}:{i}")).collect()).collect();
    let load = VerifyingLoad::start(urls.clone(), keys, false);
    assert!(wait_until(CONVERGE, || load.keys_written() > LOAD_CLIENTS * KEYS_PER_CLIENT / 2));
    let writes_before = load.acked();
    let out: serde_json::Value = serde_json::from_str(&admin_ok(&[
        "rebalance",
        &a.addr(),
        "--use-empty-primaries",
        "--max-pause-ms",
        "2000",
        "--json",
    ]))
    .unwrap();
    let writes_during = load.acked() - writes_before;
    assert!(writes_during > 0, "the load ran while the slots moved");
    // No read saw a lost or stale write, and every acknowledged write reads back.
    let written = load.finish(urls.clone());
    assert!(out["error"].is_null(), "{out}");
    assert_eq!(out["results"].as_array().unwrap().len(), out["moves"].as_array().unwrap().len());

    // About a third each (16384 / 3 = 5461.3), the same map everywhere.
    let want_epoch = epoch(&a);
    for n in [&a, &b, &c] {
        assert_eq!(epoch(n), want_epoch);
        let counts: Vec<usize> = nodes_of(n).iter().map(|l| l.3).collect();
        assert_eq!(counts.iter().sum::<usize>(), 16384);
        assert!(counts.iter().all(|&k| k.abs_diff(5461) <= 1), "{counts:?}");
    }
    assert!(cmd(&mut c.client(), &["DBSIZE"]).int() > 0);
    // Every key written before reads back.
    let client = redis::cluster::ClusterClient::new(urls.clone()).unwrap();
    let mut cc = client.get_connection().unwrap();
    for k in &before {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut cc).unwrap();
        assert_eq!(got.as_deref(), Some(k.as_str()), "{k}");
    }
    // Each node holds exactly the keys of its slots (the sources deleted
    // what they gave away in the background).
    let total = (before.len() + written) as i64;
    assert!(wait_until(CONVERGE, || [&a, &b, &c].iter().map(|n| cmd(&mut n.client(), &["DBSIZE"]).int()).sum::<i64>()
        == total));
    // Balanced now: a second run has nothing to do.
    let again: serde_json::Value =
        serde_json::from_str(&admin_ok(&["rebalance", &b.addr(), "--use-empty-primaries", "--json"])).unwrap();
    assert_eq!(again["over_threshold"], false);
    assert_eq!(epoch(&a), want_epoch);

    // A weight of 0 drains the first node, to the other two.
    let drained: serde_json::Value =
        serde_json::from_str(&admin_ok(&["rebalance", &a.addr(), "--weight", &format!("{}=0", a.addr()), "--json"]))
            .unwrap();
    assert!(drained["error"].is_null(), "{drained}");
    assert_eq!(slot_count(&a), 0);
    assert_eq!(slot_count(&b) + slot_count(&c), 16384);
    assert!(slot_count(&b).abs_diff(8192) <= 1);
    for k in before.iter().take(200) {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut cc).unwrap();
        assert_eq!(got.as_deref(), Some(k.as_str()), "{k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_added_as_a_replica_replicates_its_primary() {
    if reference_run() {
        return;
    }
    let dir = scratch("replica");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    let config = create(&[&a, &b], &[]);
    let keys = fill(&[a.url(), b.url()], "r", 500);
    let on_b = keys.iter().filter(|k| config.nodes[1].slots[0].start <= key_slot(k.as_bytes())).count() as i64;
    assert!(on_b > 0);

    // --replica-of by a prefix of the primary's id.
    let r = start_node(&dir, 2);
    let b_id = myid(&b);
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["add-node", &r.addr(), &a.addr(), "--replica-of", &b_id[..12], "--json"]))
            .unwrap();
    assert_eq!(report["role"], "replica");
    assert_eq!(report["primary"], b_id.as_str());
    assert_eq!(report["replica_link_up"], true);
    for n in [&a, &b, &r] {
        let listed = nodes_of(n);
        assert!(listed.iter().any(|l| l.0 == r.addr() && l.1.contains("slave") && l.2 == b_id), "{listed:?}");
    }
    // CLUSTER SLOTS lists it under its primary's range.
    let slots = cmd(&mut a.client(), &["CLUSTER", "SLOTS"]).items();
    let b_range = slots.iter().find(|s| s.items()[2].items()[2] == bulk(&b_id)).expect("b's range").items();
    assert_eq!(b_range.len(), 4, "{b_range:?}");
    assert_eq!(b_range[3].items()[1], int(r.port as i64));

    // It has the primary's keys, and acknowledges new writes (WAIT).
    assert!(wait_until(CONVERGE, || cmd(&mut r.client(), &["DBSIZE"]).int() == on_b));
    let key = keys.iter().find(|k| config.nodes[1].slots[0].start <= key_slot(k.as_bytes())).unwrap();
    let mut cb = b.client();
    assert_eq!(cmd(&mut cb, &["SET", key, "after"]), ok());
    assert_eq!(cmd(&mut cb, &["WAIT", "1", "5000"]), int(1));
    let mut cr = r.client();
    assert_eq!(cmd(&mut cr, &["READONLY"]), ok());
    assert_eq!(cmd(&mut cr, &["GET", key]), bulk("after"));

    // b gives a slot of 1,000 keys (one hash tag) to a: b deletes them a
    // bounded batch per turn, then journals the slot's flush, and its
    // replica drops them too.
    let b_range = config.nodes[1].slots[0];
    let tag = (0..)
        .map(|i| format!("t{i}"))
        .find(|t| (b_range.start..=b_range.end).contains(&key_slot(t.as_bytes())))
        .unwrap();
    let slot = key_slot(tag.as_bytes()).to_string();
    let mut p = redis::pipe();
    for i in 0..1_000 {
        p.cmd("SET").arg(format!("{{{tag}}}:{i}")).arg(i).ignore();
    }
    let _: () = p.query(&mut cb).unwrap();
    let count = |c: &mut redis::Connection| cmd(c, &["CLUSTER", "COUNTKEYSINSLOT", &slot]).int();
    assert!(wait_until(CONVERGE, || count(&mut cr) == 1_000));
    let slots = format!("{slot}-{slot}");
    admin_ok(&["migrate", "--from", &b.addr(), "--to", &a.addr(), "--slots", &slots, "--max-pause-ms", "2000"]);
    assert_eq!(count(&mut a.client()), 1_000);
    assert!(wait_until(CONVERGE, || count(&mut cb) == 0 && count(&mut cr) == 0));
    assert!(wait_until(CONVERGE, || cmd(&mut cr, &["DBSIZE"]) == cmd(&mut cb, &["DBSIZE"])));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn add_node_refuses_a_node_that_is_not_fresh() {
    if reference_run() {
        return;
    }
    let dir = scratch("refuse");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    create(&[&a, &b], &[]);

    // A node with keys: a cluster node serves no key before it has
    // slots, so it gets one by replicating a plain server and leaving it.
    let plain = Server::start(SHARDS);
    assert_eq!(cmd(&mut plain.client(), &["SET", "k", "v"]), ok());
    let full = start_node(&dir, 2);
    let mut cf = full.client();
    assert_eq!(cmd(&mut cf, &["REPLICAOF", "127.0.0.1", &plain.port.to_string()]), ok());
    assert!(wait_until(CONVERGE, || cmd(&mut cf, &["DBSIZE"]).int() == 1));
    assert_eq!(cmd(&mut cf, &["REPLICAOF", "NO", "ONE"]), ok());
    let err = admin_fails(&["add-node", &full.addr(), &a.addr()]);
    assert!(err.contains("not empty (1 keys)"), "{err}");
    // A node of another cluster.
    let other = start_node(&dir, 3);
    create(&[&other], &[]);
    let err = admin_fails(&["add-node", &other.addr(), &a.addr()]);
    assert!(err.contains("already part of a cluster"), "{err}");
    // A node without cluster mode.
    let err = admin_fails(&["add-node", &plain.addr(), &a.addr()]);
    assert!(err.contains("--cluster-enabled yes"), "{err}");
    // A replica of a node that is not a primary of the cluster.
    let fresh = start_node(&dir, 4);
    let err = admin_fails(&["add-node", &fresh.addr(), &a.addr(), "--replica-of", "127.0.0.1:1"]);
    assert!(err.contains("no node of the cluster"), "{err}");
    // Nothing changed anywhere.
    for n in [&a, &b] {
        assert_eq!(epoch(n), Some(1));
        assert_eq!(nodes_of(n).len(), 2);
    }
    assert_eq!(epoch(&fresh), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cluster whose configuration is in a control log of three voters.
fn control_log_cluster(dir: &Path) -> Vec<Server> {
    let nodes: Vec<Server> = (0..3).map(|i| start_node(dir, i)).collect();
    create(&nodes.iter().collect::<Vec<_>>(), &["--control-log", "3"]);
    assert!(wait_until(CONVERGE, || nodes.iter().all(|n| epoch(n) == Some(1))));
    nodes
}

#[test]
fn add_node_works_on_a_control_log_cluster() {
    if reference_run() {
        return;
    }
    let dir = scratch("log");
    let nodes = control_log_cluster(&dir);
    let keys = fill(&nodes.iter().map(Server::url).collect::<Vec<_>>(), "l", 300);
    let d = start_node(&dir, 3);
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["add-node", &d.addr(), &nodes[1].addr(), "--json"])).unwrap();
    assert_eq!(report["control_log"], true);
    let committed = report["epoch"].as_u64().unwrap();
    assert!(committed >= 2, "{report}");
    // The new node has the committed configuration (the leader pushed it)
    // and is outside the log; every node lists it.
    assert!(epoch(&d).is_some_and(|e| e >= committed));
    let log = cmd(&mut d.client(), &["CLUSTER", "CORESHARD-LOG"]).text();
    assert!(log.starts_with("voter:none"), "{log}");
    assert!(wait_until(CONVERGE, || nodes.iter().chain([&d]).all(|n| nodes_of(n).len() == 4)));
    // And a replica of it, through a voter.
    let e = start_node(&dir, 4);
    let report: serde_json::Value = serde_json::from_str(&admin_ok(&[
        "add-node",
        &e.addr(),
        &nodes[0].addr(),
        "--replica-of",
        &d.addr(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["replica_link_up"], true, "{report}");
    assert!(wait_until(CONVERGE, || nodes.iter().chain([&d, &e]).all(|n| nodes_of(n).len() == 5)));
    let listed = nodes_of(&e);
    assert!(listed.iter().any(|l| l.0 == e.addr() && l.1.contains("myself,slave")), "{listed:?}");
    // Cluster clients keep working with the bigger map.
    let urls: Vec<String> = nodes.iter().chain([&d]).map(Server::url).collect();
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut cc = client.get_connection().unwrap();
    for k in &keys {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut cc).unwrap();
        assert_eq!(got.as_deref(), Some(k.as_str()));
    }
    // Rebalancing plans (rebalance_moves_slots_on_a_control_log_cluster moves them).
    let plan: serde_json::Value = serde_json::from_str(&admin_ok(&[
        "rebalance",
        &nodes[0].addr(),
        "--use-empty-primaries",
        "--dry-run",
        "--json",
    ]))
    .unwrap();
    assert_eq!(plan["over_threshold"], true);
    assert_eq!(slot_count(&d), 0, "a dry run moves nothing");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rebalance_moves_slots_on_a_control_log_cluster() {
    if reference_run() {
        return;
    }
    let dir = scratch("log-rebalance");
    let nodes = control_log_cluster(&dir);
    let d = start_node(&dir, 3);
    admin_ok(&["add-node", &d.addr(), &nodes[0].addr()]);
    admin_ok(&["rebalance", &nodes[0].addr(), "--use-empty-primaries", "--max-pause-ms", "2000"]);
    assert!(wait_until(CONVERGE, || slot_count(&d).abs_diff(4096) <= 1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// True once `srv`'s migration has sent more than `bytes`, still streaming.
fn streamed_past(srv: &Server, bytes: u64) -> bool {
    let s = cmd(&mut srv.client(), &["CLUSTER", "CORESHARD-MIGRATE", "STATUS"]).text();
    let sent = info_field(&s, "migration_bytes").and_then(|b| b.parse::<u64>().ok()).unwrap_or(0);
    info_field(&s, "migration_state").as_deref() == Some("streaming") && sent > bytes
}

#[test]
fn a_failed_move_stops_the_rebalance_and_changes_nothing() {
    if reference_run() {
        return;
    }
    let dir = scratch("fail");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    create(&[&a, &b], &[]);
    let mut c = start_node(&dir, 2);
    admin_ok(&["add-node", &c.addr(), &a.addr()]);
    // About 2 MB in the slots the first move takes from the second node
    // (8192-10922: the largest surplus goes first, from its low end);
    // throttled to 200 kB/s, the kill lands in the middle of the snapshot.
    let plan: serde_json::Value =
        serde_json::from_str(&admin_ok(&["rebalance", &a.addr(), "--use-empty-primaries", "--dry-run", "--json"]))
            .unwrap();
    assert_eq!(plan["moves"][0]["slots"], "8192-10922", "{plan}");
    let keys: Vec<String> = (0..)
        .map(|i| format!("big:{i}"))
        .filter(|k| (8192..=10922).contains(&key_slot(k.as_bytes())))
        .take(20_000)
        .collect();
    let mut cb = b.client();
    let value = "v".repeat(100);
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("SET").arg(k).arg(&value).ignore();
        }
        let _: () = p.query(&mut cb).unwrap();
    }
    let on_b = cmd(&mut cb, &["DBSIZE"]).int();
    assert_eq!(cmd(&mut cb, &["CONFIG", "SET", "cluster-migration-bytes-per-sec", "200000"]), ok());
    let child = Command::new(ADMIN)
        .args(["rebalance", &a.addr(), "--use-empty-primaries", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(CONVERGE, || streamed_past(&b, 100_000)));
    c.signal(libc::SIGKILL);
    let _ = c.wait_exit(CONVERGE);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the rebalance must fail");
    assert!(stderr.contains("rebalance stopped at move 1/2 (slots 8192-10922"), "{stderr}");
    assert!(stderr.contains("ownership unchanged"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["error"].as_str().is_some_and(|e| e.contains("move 1/2")), "{report}");
    assert_eq!(report["results"].as_array().unwrap().len(), 0);
    // The second move did not start; the first node and the second serve
    // what they did, with every key, at the same epoch.
    for n in [&a, &b] {
        assert_eq!(epoch(n), Some(2));
        let counts: Vec<usize> = nodes_of(n).iter().map(|l| l.3).collect();
        assert_eq!(counts, vec![8192, 8192, 0]);
    }
    assert_eq!(cmd(&mut cb, &["DBSIZE"]).int(), on_b);
    assert_eq!(cmd(&mut cb, &["GET", &keys[0]]), bulk(&value));
    assert_eq!(cmd(&mut cb, &["SET", &keys[0], "after"]), ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every bulk or status string in `reply`, nested ones included.
fn strings(reply: &Reply, out: &mut Vec<String>) {
    match reply {
        Reply::Bulk(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Reply::Status(s) => out.push(s.clone()),
        Reply::Array(items) | Reply::Set(items) => items.iter().for_each(|r| strings(r, out)),
        Reply::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

/// Whether `srv`'s CLUSTER NODES or CLUSTER SHARDS mentions node `id`.
fn lists(srv: &Server, id: &str) -> bool {
    let mut shards = Vec::new();
    strings(&cmd(&mut srv.client(), &["CLUSTER", "SHARDS"]), &mut shards);
    cmd(&mut srv.client(), &["CLUSTER", "NODES"]).text().contains(id) || shards.iter().any(|s| s == id)
}

#[test]
fn a_drained_node_leaves_with_del_node_and_every_key_stays_readable() {
    if reference_run() {
        return;
    }
    let dir = scratch("shrink");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    let c = start_node(&dir, 2);
    create(&[&a, &b, &c], &[]);
    let urls = vec![a.url(), b.url(), c.url()];
    let keys = fill(&urls, "shrink", 1500);
    let c_id = myid(&c);
    assert!(slot_count(&c) > 0);

    // A node that still serves slots is refused, and nothing changes.
    let err = admin_fails(&["del-node", &a.addr(), &c_id]);
    assert!(err.contains("still serves") && err.contains("--weight"), "{err}");
    // So is an unknown node.
    let err = admin_fails(&["del-node", &a.addr(), "127.0.0.1:1"]);
    assert!(err.contains("no node of the cluster"), "{err}");
    for n in [&a, &b, &c] {
        assert_eq!(epoch(n), Some(1));
        assert!(lists(n, &c_id));
    }

    // Drained, it leaves: by HOST:PORT here.
    admin_ok(&["rebalance", &a.addr(), "--weight", &format!("{c_id}=0")]);
    assert_eq!(slot_count(&c), 0);
    let drained = epoch(&a).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["del-node", &b.addr(), &c.addr(), "--json"])).unwrap();
    assert_eq!(report["id"], c_id.as_str());
    assert_eq!(report["role"], "primary");
    assert_eq!(report["control_log"], false);
    assert_eq!(report["epoch"], drained + 1);
    assert_eq!(report["push_errors"].as_array().unwrap().len(), 0);
    assert_eq!(report["reset"], true);
    for n in [&a, &b] {
        assert_eq!(epoch(n), Some(drained + 1));
        assert!(!lists(n, &c_id), "{:?}", nodes_of(n));
        assert_eq!(nodes_of(n).len(), 2);
        assert_eq!(cmd(&mut n.client(), &["CLUSTER", "SHARDS"]).items().len(), 2);
    }
    // It was reset (SOFT: its id and epoch stay), and forgot the others.
    assert_reset(&c, &c_id);
    assert_eq!(epoch(&c), Some(drained));
    assert_eq!(cmd(&mut c.client(), &["DBSIZE"]), int(0));
    // A second del-node of it finds no such node.
    let err = admin_fails(&["del-node", &a.addr(), &c_id]);
    assert!(err.contains("no node of the cluster"), "{err}");

    // The cluster client, given only the remaining nodes, reads every key.
    let client = redis::cluster::ClusterClient::new(vec![a.url(), b.url()]).unwrap();
    let mut cc = client.get_connection().unwrap();
    for k in &keys {
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut cc).unwrap();
        assert_eq!(v.as_deref(), Some(k.as_str()));
    }
    // Being alone and empty, it can join again.
    admin_ok(&["add-node", &c.addr(), &a.addr()]);
    for n in [&a, &b, &c] {
        assert_eq!(epoch(n), Some(drained + 2));
        assert_eq!(nodes_of(n).len(), 3);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn del_node_removes_a_replica_and_refuses_its_primary_before() {
    if reference_run() {
        return;
    }
    let dir = scratch("del-replica");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    create(&[&a, &b], &[]);
    // An empty primary e with a replica r.
    let e = start_node(&dir, 2);
    admin_ok(&["add-node", &e.addr(), &a.addr()]);
    let e_id = myid(&e);
    let r = start_node(&dir, 3);
    admin_ok(&["add-node", &r.addr(), &a.addr(), "--replica-of", &e_id]);
    let r_id = myid(&r);
    let at = epoch(&a).unwrap();

    // e serves no slots but has a replica: refused, nothing changes.
    let err = admin_fails(&["del-node", &a.addr(), &e_id]);
    assert!(err.contains("replica"), "{err}");
    for n in [&a, &b, &e, &r] {
        assert_eq!(epoch(n), Some(at));
        assert!(lists(n, &e_id) && lists(n, &r_id));
    }

    // The replica leaves, named by a prefix of its id, and is reset: it
    // stops replicating, and its primary loses it.
    let mut ce = e.client();
    assert_eq!(info_field(&cmd(&mut ce, &["INFO", "replication"]).text(), "connected_slaves").as_deref(), Some("1"));
    let out = admin_ok(&["del-node", &a.addr(), &r_id[..10]]);
    assert!(out.contains("Removed") && out.contains("Reset") && out.contains("no longer replicates"), "{out}");
    for n in [&a, &b, &e] {
        assert_eq!(epoch(n), Some(at + 1));
        assert!(!lists(n, &r_id), "{:?}", nodes_of(n));
        assert_eq!(nodes_of(n).len(), 3);
    }
    assert_reset(&r, &r_id);
    assert!(wait_until(CONVERGE, || {
        info_field(&cmd(&mut ce, &["INFO", "replication"]).text(), "connected_slaves").as_deref() == Some("0")
    }));
    // Then its primary, which has no replica any more.
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["del-node", &a.addr(), &e.addr(), "--json"])).unwrap();
    assert_eq!(report["epoch"], at + 2);
    assert_eq!(report["reset"], true);
    for n in [&a, &b] {
        assert_eq!(epoch(n), Some(at + 2));
        assert!(!lists(n, &e_id), "{:?}", nodes_of(n));
        assert_eq!(nodes_of(n).len(), 2);
    }
    assert_reset(&e, &e_id);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn del_node_works_on_a_control_log_cluster_and_refuses_a_voter() {
    if reference_run() {
        return;
    }
    let dir = scratch("log-del");
    let nodes = control_log_cluster(&dir);
    let d = start_node(&dir, 3);
    admin_ok(&["add-node", &d.addr(), &nodes[0].addr()]);
    let e = start_node(&dir, 4);
    admin_ok(&["add-node", &e.addr(), &nodes[0].addr(), "--replica-of", &d.addr()]);
    assert!(wait_until(CONVERGE, || nodes.iter().chain([&d, &e]).all(|n| nodes_of(n).len() == 5)));
    let at = epoch(&nodes[0]).unwrap();

    // A voter refuses CLUSTER RESET: it would leave the log's majority short.
    let reset = cmd(&mut nodes[2].client(), &["CLUSTER", "RESET"]);
    assert!(reset.is_error() && format!("{reset:?}").contains("control log voter"), "{reset:?}");
    // A voter is refused as such (before its slots), and nothing changes.
    let err = admin_fails(&["del-node", &nodes[1].addr(), &nodes[2].addr()]);
    assert!(err.contains("member of the control log") && err.contains("voters") && err.contains("remove"), "{err}");
    // d still has its replica.
    let err = admin_fails(&["del-node", &nodes[1].addr(), &d.addr()]);
    assert!(err.contains("replica"), "{err}");
    for n in nodes.iter().chain([&d, &e]) {
        assert_eq!(epoch(n), Some(at));
    }

    // The replica, then its primary, leave through the log; the leader
    // pushes each committed map to the remaining nodes outside the voters.
    let e_id = myid(&e);
    let d_id = myid(&d);
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["del-node", &nodes[1].addr(), &e_id, "--json"])).unwrap();
    assert_eq!(report["control_log"], true);
    assert!(report["epoch"].as_u64().unwrap() > at, "{report}");
    assert_eq!(report["reset"], true);
    assert!(wait_until(CONVERGE, || nodes.iter().chain([&d]).all(|n| !lists(n, &e_id))));
    assert_reset(&e, &e_id);
    admin_ok(&["del-node", &nodes[2].addr(), &d_id]);
    assert!(wait_until(CONVERGE, || nodes.iter().all(|n| nodes_of(n).len() == 3 && !lists(n, &d_id))));
    assert_reset(&d, &d_id);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Restarts `srv` (killed) on its port with its config file (node `i` of `dir`).
fn restart(dir: &Path, i: usize, port: u16) -> Server {
    let file = dir.join(format!("node{i}.conf")).display().to_string();
    let cport = probe_port().to_string();
    let args = ["--cluster-enabled", "yes", "--cluster-config-file", &file, "--cluster-port", &cport];
    Server::start_on(port, SHARDS, &args).expect("restart on the node's own port")
}

#[test]
fn a_push_that_misses_a_node_fails_add_node_and_del_node_and_fix_repairs_it() {
    if reference_run() {
        return;
    }
    let dir = scratch("fix");
    let a = start_node(&dir, 0);
    let mut b = start_node(&dir, 1);
    let c = start_node(&dir, 2);
    create(&[&a, &b, &c], &[]);
    let b_id = myid(&b);
    // Nothing to fix yet.
    assert!(admin_ok(&["fix", &a.addr()]).contains("nothing to fix"));

    // b is killed: add-node reaches the others and fails, naming it.
    let port = b.port;
    b.signal(libc::SIGKILL);
    assert!(b.wait_exit(Duration::from_secs(10)).is_some());
    drop(b);
    let d = start_node(&dir, 3);
    let d_id = myid(&d);
    let out = admin(&["add-node", &d.addr(), &a.addr(), "--json"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = report["push_errors"].as_array().unwrap();
    assert!(errors.len() == 1 && errors[0].as_str().unwrap().contains(&b_id), "{report}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&b_id) && err.contains(&format!("coreshard-admin fix {}", a.addr())), "{err}");
    for n in [&a, &c, &d] {
        assert_eq!(epoch(n), Some(2));
    }
    // Back with its old map, it gets the new one from fix.
    let b = restart(&dir, 1, port);
    assert_eq!(epoch(&b), Some(1));
    // Meanwhile it cannot give slots to d, which it does not know: migrate
    // waits for it to learn of d (up to --timeout-s, here 1 s), then says so.
    let out = admin(&["migrate", "--from", &b.addr(), "--to", &d.addr(), "--slots", "6000-6001", "--timeout-s", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("does not know the target"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&admin_ok(&["fix", &c.addr(), "--json"])).unwrap();
    assert_eq!(report["epoch"], 2);
    assert_eq!(report["pushed"], serde_json::json!([{ "addr": b.addr(), "had_epoch": 1 }]), "{report}");
    assert_eq!(report["up_to_date"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(epoch(&b), Some(2));
    assert!(lists(&b, &d_id));
    assert!(admin_ok(&["fix", &b.addr()]).contains("nothing to fix"));

    // b is stopped: del-node removes d from the others, resets it, and fails naming b.
    b.signal(libc::SIGSTOP);
    let err = admin_fails(&["del-node", &a.addr(), &d_id]);
    b.signal(libc::SIGCONT);
    assert!(err.contains(&b_id) && err.contains("did not reach 1 node"), "{err}");
    for n in [&a, &c] {
        assert_eq!(epoch(n), Some(3));
        assert!(!lists(n, &d_id));
    }
    assert_reset(&d, &d_id);
    // Its late push may land once it runs again; fix makes sure it does.
    admin_ok(&["fix", &a.addr()]);
    assert_eq!(epoch(&b), Some(3));
    assert!(!lists(&b, &d_id));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn del_node_of_a_killed_replica_removes_it_and_reports_it_was_not_reset() {
    if reference_run() {
        return;
    }
    let dir = scratch("del-dead");
    let a = start_node(&dir, 0);
    let b = start_node(&dir, 1);
    create(&[&a, &b], &[]);
    let mut r = start_node(&dir, 2);
    admin_ok(&["add-node", &r.addr(), &a.addr(), "--replica-of", &b.addr()]);
    let (r_id, r_addr) = (myid(&r), r.addr());
    let at = epoch(&a).unwrap();
    r.signal(libc::SIGKILL);
    assert!(r.wait_exit(Duration::from_secs(10)).is_some());

    // Removing a dead node is what del-node is for: it succeeds, and says
    // the node could not be reset.
    let report: serde_json::Value = serde_json::from_str(&admin_ok(&["del-node", &a.addr(), &r_id, "--json"])).unwrap();
    assert_eq!(report["reset"], false);
    assert!(report["reset_error"].as_str().unwrap().contains(&r_addr), "{report}");
    for n in [&a, &b] {
        assert_eq!(epoch(n), Some(at + 1));
        assert!(!lists(n, &r_id));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_del_node_reset_refuses_a_late_push_of_the_cluster_it_left() {
    if reference_run() {
        return;
    }
    let dir = scratch("log-late-push");
    let nodes = control_log_cluster(&dir);
    // d announces a proxy's port: the leader's pushes reach it through the
    // proxy, which can hold one back as a slow link would.
    let port = probe_port();
    let proxy = Proxy::start(port);
    let file = dir.join("node3.conf").display().to_string();
    let announce = proxy.port.to_string();
    let args = ["--cluster-enabled", "yes", "--cluster-config-file", &file, "--cluster-announce-port", &announce];
    let d = Server::start_on(port, SHARDS, &args).expect("start d");
    admin_ok(&["add-node", &d.addr(), &nodes[0].addr()]);
    let d_id = myid(&d);
    let joined = epoch(&d).unwrap();

    // A change that still lists d commits; its pushes to d are held on the
    // way (the leader retries each second) until after del-node.
    proxy.hold_upstreams_with("CORESHARD-SETCONFIG");
    let cancel = serde_json::to_string(&coreshard_repl::cluster::ConfigChange::CancelMigration(4242)).unwrap();
    let late = cmd(&mut nodes[0].client(), &["CLUSTER", "CORESHARD-PROPOSE", &cancel]).int() as u64;
    assert!(late > joined);
    assert!(wait_until(CONVERGE, || proxy.held_requests() > 0));
    assert_eq!(epoch(&d), Some(joined));

    // d leaves (removed through the log, then reset SOFT): it keeps its id
    // and its epoch, below the held one.
    let report: serde_json::Value =
        serde_json::from_str(&admin_ok(&["del-node", &nodes[1].addr(), &d_id, "--json"])).unwrap();
    assert_eq!(report["reset"], true, "{report}");
    assert!(report["epoch"].as_u64().unwrap() > late, "{report}");
    assert_reset(&d, &d_id);

    // The held push of the configuration it left arrives now: refused.
    proxy.release_upstreams();
    let refused = format!("config epoch {late} refused");
    assert!(
        wait_until(CONVERGE, || d.output().contains(&refused)
            || info_field(&cmd(&mut d.client(), &["CLUSTER", "INFO"]).text(), "cluster_known_nodes").as_deref()
                != Some("1")),
        "{}",
        d.output()
    );
    assert_reset(&d, &d_id);
    assert_eq!(epoch(&d), Some(joined));

    // add-node takes it back, at an epoch above the removal.
    admin_ok(&["add-node", &d.addr(), &nodes[2].addr()]);
    assert!(wait_until(CONVERGE, || nodes.iter().chain([&d]).all(|n| nodes_of(n).len() == 4)));
    let _ = std::fs::remove_dir_all(&dir);
}
