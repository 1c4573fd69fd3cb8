//! The cluster configuration in the control log, end to end: four real
//! coreshard processes on loopback, the first three made voters by
//! `coreshard-admin create --control-log 3`; a change made through one
//! node reaches every node (the fourth by the leader's push);
//! the leader killed with SIGKILL, the other two elect a new one and
//! commit a further change; the killed node restarted on its files
//! catches up and serves the current map. Voters that compact their log
//! every few entries (`debug-control-log-compact-entries`): one killed
//! with SIGKILL while the others make enough changes to compact past its
//! log, restarted, catches up by snapshot. Slot migrations whose switch is
//! committed through the log: under a verifying write load, in both
//! directions between a voter and the node outside the log; and with two
//! voters killed at the switch, which then does not happen, loses no
//! acknowledged write, and succeeds when retried once they are back; and
//! with the leader as the source and the other voters stopped, a switch
//! proposal that times out and may commit later (every node then agrees
//! on the outcome, no acknowledged write lost). A proposal waiting for the
//! log leaves its shard serving other clients. Voter membership changes
//! (`coreshard-admin voters`): a dead voter replaced by a primary, which
//! then makes the majority with the last original voter after a second
//! one dies (proposals and a slot migration commit), stays a voter across
//! a restart, while the removed voter
//! restarted from its old files leaves the log without disturbing it; and
//! the leader removed, which hands over and takes pushes. A removed
//! voter that does not answer (SIGSTOPped) delays no push to the node
//! outside the log. A removed node added back without a restart votes,
//! and a repeated removal or addition succeeds. A stopped voter first in
//! the map of the node outside the log holds up neither a proposal nor a
//! membership change made there, and the proposal commits once.
//! Every wait polls with a deadline.

mod common;

use common::*;
use coreshard_engine::slot::key_slot;
use coreshard_repl::cluster::{ClusterConfig, ConfigChange, SlotRange};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SHARDS: usize = 2;
const ADMIN: &str = env!("CARGO_BIN_EXE_coreshard-admin");
/// How long an election and a commit may take on a loaded test machine.
const CONVERGE: Duration = Duration::from_secs(30);

fn scratch(tag: &str) -> PathBuf {
    scratch_dir(&format!("control-log-{tag}"))
}

/// A node's arguments: its config file in `dir` and its control port.
fn node_args(dir: &Path, i: usize, cluster_port: u16) -> Vec<String> {
    let file = dir.join(format!("node{i}.conf"));
    vec![
        "--cluster-enabled".into(),
        "yes".into(),
        "--cluster-config-file".into(),
        file.display().to_string(),
        "--cluster-port".into(),
        cluster_port.to_string(),
    ]
}

fn start(args: &[String], port: Option<u16>) -> Server {
    start_shards(args, port, SHARDS)
}

fn start_shards(args: &[String], port: Option<u16>, shards: usize) -> Server {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match port {
        None => Server::start_with(shards, &refs),
        Some(p) => Server::start_on(p, shards, &refs).expect("restart on the same port"),
    }
}

fn admin(args: &[&str]) -> String {
    let out = Command::new(ADMIN).args(args).output().expect("run coreshard-admin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "coreshard-admin {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The node's config epoch, or None when it does not answer.
fn epoch(srv: &Server) -> Option<u64> {
    let mut c = redis::Client::open(srv.url()).ok()?.get_connection().ok()?;
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).ok()?;
    info_field(&info, "cluster_current_epoch")?.parse().ok()
}

/// `CLUSTER CORESHARD-LOG`'s field `name` on `srv`.
fn log_field(srv: &Server, name: &str) -> Option<String> {
    let mut c = redis::Client::open(srv.url()).ok()?.get_connection().ok()?;
    let text: String = redis::cmd("CLUSTER").arg("CORESHARD-LOG").query(&mut c).ok()?;
    info_field(&text, name)
}

/// Proposes `change` through `srv` until it commits (an election may be
/// going on); the epoch it made.
fn propose(srv: &Server, change: &ConfigChange) -> u64 {
    let text = serde_json::to_string(change).unwrap();
    let mut made = None;
    let mut last = String::new();
    let ok = wait_until(CONVERGE, || {
        let mut c = srv.client();
        match cmd(&mut c, &["CLUSTER", "CORESHARD-PROPOSE", &text]) {
            r if r.is_error() => {
                last = format!("{r:?}");
                false
            }
            r => {
                made = Some(r.int() as u64);
                true
            }
        }
    });
    assert!(ok, "no commit through {}: {last}", srv.addr());
    made.unwrap()
}

fn key_in(range: SlotRange, tag: &str) -> String {
    (0..).map(|i| format!("{tag}:{i}")).find(|k| (range.start..=range.end).contains(&key_slot(k.as_bytes()))).unwrap()
}

/// What `srv` answers to SET of `key`: "+OK" or the error line.
fn set_reply(srv: &Server, key: &str) -> String {
    let reply = String::from_utf8(raw_roundtrip(&mut srv.raw(), &resp_cmd(&["SET", key, "v"]))).unwrap();
    reply.trim_end().to_string()
}

#[test]
fn the_control_log_survives_its_leader_and_catches_a_restarted_node_up() {
    if reference_run() {
        return;
    }
    let dir = scratch("failover");
    // Three voters and a fourth primary outside the log, which learns
    // each committed configuration by the leader's push.
    let args: Vec<Vec<String>> = (0..4).map(|i| node_args(&dir, i, probe_port())).collect();
    let mut nodes: Vec<Option<Server>> = args.iter().map(|a| Some(start(a, None))).collect();
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let mut create_args = vec!["create", "--json", "--control-log", "3"];
    create_args.extend(addrs.iter().map(String::as_str));
    let config: ClusterConfig = serde_json::from_str(&admin(&create_args)).unwrap();
    assert!(
        wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(1))),
        "the first configuration reaches every node"
    );
    assert_eq!(log_field(nodes[3].as_ref().unwrap(), "voter").as_deref(), Some("none"));
    // A voter's map moves only with the log: a push is refused.
    let push = serde_json::to_string(&ClusterConfig { epoch: 99, ..config.clone() }).unwrap();
    let refused = cmd(&mut nodes[0].as_ref().unwrap().client(), &["CLUSTER", "CORESHARD-SETCONFIG", "99", &push]);
    assert!(refused.is_error(), "{refused:?}");

    // A change made through the second node reaches all four: the first
    // 100 slots of the second node move to the first.
    let moved = SlotRange::new(config.nodes[1].slots[0].start, config.nodes[1].slots[0].start + 99);
    let to = config.nodes[0].id.clone();
    let epoch2 = propose(nodes[1].as_ref().unwrap(), &ConfigChange::AssignSlots { node: to, ranges: vec![moved] });
    // A proposal lost on its way to the leader is proposed again, so the
    // change may have committed twice (the same map, one epoch further).
    assert!(epoch2 >= 2);
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(epoch2))));
    let key = key_in(moved, "moved");
    let slot = key_slot(key.as_bytes());
    let first = nodes[0].as_ref().unwrap().addr();
    // Shards pick the new routing up on their next loop turn.
    let moved_reply = format!("-MOVED {slot} {first}");
    assert!(wait_until(CONVERGE, || set_reply(nodes[1].as_ref().unwrap(), &key) == moved_reply));
    assert_eq!(set_reply(nodes[0].as_ref().unwrap(), &key), "+OK");
    let show = admin(&["show", &addrs[2]]);
    assert!(show.contains("control log: 3 voters, term "), "{show}");

    // Kill the leader with SIGKILL; the other two elect a new one and commit.
    let mut leader_node = String::new();
    assert!(wait_until(CONVERGE, || {
        leader_node = log_field(nodes[0].as_ref().unwrap(), "leader-node").unwrap_or_default();
        !leader_node.is_empty()
    }));
    let old_term: u64 = log_field(nodes[0].as_ref().unwrap(), "term").unwrap().parse().unwrap();
    let killed = config.nodes.iter().position(|n| n.id.as_str() == leader_node).unwrap();
    let killed_port = nodes[killed].as_ref().unwrap().port;
    {
        let mut victim = nodes[killed].take().unwrap();
        victim.signal(libc::SIGKILL);
        assert!(victim.wait_exit(CONVERGE).is_some());
    }
    let survivor = (killed + 1) % 3;
    let back = SlotRange::new(moved.start, moved.start + 49);
    let owner = config.nodes[1].id.clone();
    let epoch3 =
        propose(nodes[survivor].as_ref().unwrap(), &ConfigChange::AssignSlots { node: owner, ranges: vec![back] });
    assert!(epoch3 > epoch2);
    // A change proposed at the node outside the log is passed to a voter.
    let back2 = SlotRange::new(moved.start + 50, moved.start + 59);
    let owner = config.nodes[1].id.clone();
    let epoch3b = propose(nodes[3].as_ref().unwrap(), &ConfigChange::AssignSlots { node: owner, ranges: vec![back2] });
    assert!(epoch3b > epoch3);
    let epoch3 = epoch3b;
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(epoch3))));
    for n in nodes[..3].iter().flatten() {
        let leader = log_field(n, "leader-node").unwrap_or_default();
        assert!(!leader.is_empty() && leader != leader_node, "a new leader, not {leader_node}: {leader}");
        assert!(log_field(n, "term").unwrap().parse::<u64>().unwrap() > old_term);
    }

    // The killed node restarts on its files and catches up.
    nodes[killed] = Some(start(&args[killed], Some(killed_port)));
    let restarted = nodes[killed].as_ref().unwrap();
    assert!(wait_until(CONVERGE, || epoch(restarted) == Some(epoch3)), "the restarted node catches up");
    let back_key = key_in(back, "back");
    let second = nodes[1].as_ref().map(Server::addr).unwrap_or_else(|| format!("127.0.0.1:{killed_port}"));
    let want =
        if killed == 1 { "+OK".to_string() } else { format!("-MOVED {} {second}", key_slot(back_key.as_bytes())) };
    assert!(wait_until(CONVERGE, || set_reply(restarted, &back_key) == want), "{}", set_reply(restarted, &back_key));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A voter's `<cluster-config-file>.log` as JSON (membership and the
/// log's durable state: term, vote, commit, snapshot, entries).
fn log_file(dir: &Path, i: usize) -> serde_json::Value {
    let path = dir.join(format!("node{i}.conf.log"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// CLUSTER NODES on `srv` without the `myself` flag, so that two nodes'
/// views compare equal when they hold the same map.
fn nodes_view(srv: &Server) -> Option<String> {
    let mut c = redis::Client::open(srv.url()).ok()?.get_connection().ok()?;
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).ok()?;
    Some(text.replace("myself,", ""))
}

#[test]
fn a_voter_killed_while_the_log_compacts_catches_up_by_snapshot() {
    if reference_run() {
        return;
    }
    let dir = scratch("compact");
    // Three voters that snapshot every 8 applied entries.
    let args: Vec<Vec<String>> = (0..3)
        .map(|i| {
            let mut a = node_args(&dir, i, probe_port());
            a.extend(["--debug-control-log-compact-entries".to_string(), "8".to_string()]);
            a
        })
        .collect();
    let mut nodes: Vec<Option<Server>> = args.iter().map(|a| Some(start(a, None))).collect();
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let mut create_args = vec!["create", "--json", "--control-log", "3"];
    create_args.extend(addrs.iter().map(String::as_str));
    let config: ClusterConfig = serde_json::from_str(&admin(&create_args)).unwrap();
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(1))));

    // SIGKILL a follower; its log ends where it was.
    let mut leader = String::new();
    assert!(wait_until(CONVERGE, || {
        leader = log_field(nodes[0].as_ref().unwrap(), "leader-node").unwrap_or_default();
        !leader.is_empty()
    }));
    let killed = (config.nodes.iter().position(|n| n.id.as_str() == leader).unwrap() + 1) % 3;
    let killed_port = nodes[killed].as_ref().unwrap().port;
    {
        let mut victim = nodes[killed].take().unwrap();
        victim.signal(libc::SIGKILL);
        assert!(victim.wait_exit(CONVERGE).is_some());
    }
    let kept = log_file(&dir, killed);
    let last_kept = kept["durable"]["entries"].as_array().unwrap().iter().filter_map(|e| e["index"].as_u64()).max();
    let last_kept = last_kept.unwrap_or(0);

    // 40 changes through a survivor: slots of the second node go to the
    // first one at a time, then half of them back.
    let survivor = (killed + 1) % 3;
    let start_slot = config.nodes[1].slots[0].start;
    let mut last = 0;
    for n in 0..40u16 {
        let (to, slot) = if n < 30 { (0, start_slot + n) } else { (1, start_slot + (n - 30) * 3) };
        let change =
            ConfigChange::AssignSlots { node: config.nodes[to].id.clone(), ranges: vec![SlotRange::new(slot, slot)] };
        last = propose(nodes[survivor].as_ref().unwrap(), &change);
    }
    // The survivors compacted: each keeps a snapshot and only the entries
    // after it, and the log no longer holds what the killed voter lacks.
    for i in (0..3).filter(|&i| i != killed) {
        let file = log_file(&dir, i);
        let snapshot = &file["durable"]["snapshot"];
        let index = snapshot["index"].as_u64().unwrap_or(0);
        assert!(index > last_kept + 8, "node {i}: snapshot at {index}, the killed voter's log ends at {last_kept}");
        let entries = file["durable"]["entries"].as_array().unwrap();
        assert!(entries.len() < 16, "node {i} keeps {} entries", entries.len());
        assert!(entries.iter().all(|e| e["index"].as_u64().unwrap() > index));
    }

    // Restarted on its files, the killed voter gets the snapshot and the
    // current map.
    nodes[killed] = Some(start(&args[killed], Some(killed_port)));
    let restarted = nodes[killed].as_ref().unwrap();
    assert!(wait_until(CONVERGE, || epoch(restarted) == Some(last)), "the restarted voter catches up");
    let want = nodes_view(nodes[survivor].as_ref().unwrap()).unwrap();
    assert!(wait_until(CONVERGE, || nodes_view(restarted).as_deref() == Some(want.as_str())), "{want}");
    let file = log_file(&dir, killed);
    assert!(file["durable"]["snapshot"]["index"].as_u64().unwrap_or(0) > last_kept + 8, "{file}");
    // A slot moved while it was down is served by its new owner.
    let moved = SlotRange::new(start_slot + 1, start_slot + 1);
    let key = key_in(moved, "compact");
    let first = nodes[0].as_ref().map(Server::addr).unwrap_or_else(|| format!("127.0.0.1:{killed_port}"));
    let want = if killed == 0 { "+OK".to_string() } else { format!("-MOVED {} {first}", key_slot(key.as_bytes())) };
    assert!(wait_until(CONVERGE, || set_reply(restarted, &key) == want), "{}", set_reply(restarted, &key));
    // And it follows by appends from there.
    let change = ConfigChange::AssignSlots { node: config.nodes[1].id.clone(), ranges: vec![moved] };
    let next = propose(nodes[killed].as_ref().unwrap(), &change);
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(next))));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Four nodes, the first three voters of a control log; their arguments
/// and the configuration `create` committed (epoch 1 on every node).
fn control_log_cluster(dir: &Path) -> (Vec<Vec<String>>, Vec<Option<Server>>, ClusterConfig) {
    control_log_cluster_of(dir, SHARDS)
}

fn control_log_cluster_of(dir: &Path, shards: usize) -> (Vec<Vec<String>>, Vec<Option<Server>>, ClusterConfig) {
    let args: Vec<Vec<String>> = (0..4).map(|i| node_args(dir, i, probe_port())).collect();
    let nodes: Vec<Option<Server>> = args.iter().map(|a| Some(start_shards(a, None, shards))).collect();
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let mut create_args = vec!["create", "--json", "--control-log", "3"];
    create_args.extend(addrs.iter().map(String::as_str));
    let config: ClusterConfig = serde_json::from_str(&admin(&create_args)).unwrap();
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(1))));
    (args, nodes, config)
}

/// The node serving `slot`, as `ip:port`, in `srv`'s CLUSTER NODES.
fn owner(srv: &Server, slot: u16) -> Option<String> {
    let mut c = redis::Client::open(srv.url()).ok()?.get_connection().ok()?;
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).ok()?;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for r in parts.iter().skip(8) {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            if (a.parse().ok()?..=b.parse().ok()?).contains(&slot) {
                return parts[1].split('@').next().map(str::to_string);
            }
        }
    }
    None
}

fn migration_status(srv: &Server) -> String {
    cmd(&mut srv.client(), &["CLUSTER", "CORESHARD-MIGRATE", "STATUS"]).text()
}

fn migrate(from: &Server, to: &Server, range: SlotRange, extra: &[&str]) -> std::process::Output {
    let (from, to, slots) = (from.addr(), to.addr(), format!("{}-{}", range.start, range.end));
    let mut args = vec!["migrate", "--from", &from, "--to", &to, "--slots", &slots, "--json"];
    args.extend_from_slice(extra);
    Command::new(ADMIN).args(&args).output().expect("run coreshard-admin")
}

#[test]
fn a_migration_switches_through_the_control_log_under_a_verifying_load() {
    if reference_run() {
        return;
    }
    let dir = scratch("migrate");
    let (_args, nodes, config) = control_log_cluster(&dir);
    // Slots of node 1 (a voter), which both of its shards own some of
    // (slot % shards), so that two flows switch together: it takes the
    // first slots of node 2 first.
    let r1 = config.nodes[1].slots[0];
    assert_eq!(r1.end, 8191, "{r1:?}");
    let extra = SlotRange::new(8192, 8291);
    let node1 = config.nodes[1].id.clone();
    propose(nodes[1].as_ref().unwrap(), &ConfigChange::AssignSlots { node: node1, ranges: vec![extra] });
    let range = SlotRange::new(r1.start + (r1.end - r1.start) / 2, extra.end);
    let nodes: Vec<Server> = nodes.into_iter().flatten().collect();
    let one = nodes[1].addr();
    assert!(wait_until(CONVERGE, || nodes.iter().all(|n| owner(n, extra.end).as_deref() == Some(&one))));
    for n in &nodes {
        // A write that passed the routing check just before the switch
        // reaches its shard 5 ms later: the hold must wait for it.
        assert_eq!(cmd(&mut n.client(), &["CONFIG", "SET", "debug-shard-hop-delay-us", "5000"]), ok());
    }
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let load = VerifyingLoad::start(urls.clone(), range_keys(range, 4, 50), false);
    assert!(wait_until(CONVERGE, || load.acked() > 100));
    // To the node outside the log (it learns the switch by the leader's
    // push), then back from it (its proposal is passed to a voter).
    for (from, to) in [(1, 3), (3, 1)] {
        let out = migrate(&nodes[from], &nodes[to], range, &["--max-pause-ms", "2000"]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "migrate {from} -> {to}: {text}");
        let want = nodes[to].addr();
        assert!(
            wait_until(CONVERGE, || nodes
                .iter()
                .all(|n| owner(n, range.start).as_deref() == Some(&want)
                    && owner(n, range.end).as_deref() == Some(&want))),
            "every node shows {want} serving {range:?}"
        );
        let status = migration_status(&nodes[from]);
        assert!(status.contains("migration_state:done"), "{status}");
        // The target took the committed outcome: it keeps the slots.
        assert!(
            wait_until(CONVERGE, || migration_status(&nodes[to]).contains("migration_state:done")),
            "{}",
            migration_status(&nodes[to])
        );
        // The switch is a committed entry: every voter's log made the same epoch.
        let epochs: Vec<Option<u64>> = nodes.iter().map(epoch).collect();
        assert!(wait_until(CONVERGE, || nodes.iter().all(|n| epoch(n) == epochs[0])), "{epochs:?}");
    }
    load.finish(urls);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_switch_without_a_log_majority_does_not_happen_and_a_retry_succeeds() {
    if reference_run() {
        return;
    }
    let dir = scratch("no-majority");
    let (args, mut nodes, config) = control_log_cluster(&dir);
    // The source is the node outside the log; the target the voter left
    // alive once the leader and another voter are killed.
    let mut leader = String::new();
    assert!(wait_until(CONVERGE, || {
        leader = log_field(nodes[0].as_ref().unwrap(), "leader-node").unwrap_or_default();
        !leader.is_empty()
    }));
    let lead = config.nodes.iter().position(|n| n.id.as_str() == leader).unwrap();
    let victims = [lead, (lead + 1) % 3];
    let survivor = (lead + 2) % 3;
    let r3 = config.nodes[3].slots[0];
    let range = SlotRange::new(r3.start, r3.start + 999);
    let urls = vec![nodes[3].as_ref().unwrap().url(), nodes[survivor].as_ref().unwrap().url()];
    let load = VerifyingLoad::start(urls.clone(), range_keys(range, 2, 50), true);
    assert!(wait_until(CONVERGE, || load.acked() > 50));
    let ports: Vec<u16> = victims.iter().map(|&v| nodes[v].as_ref().unwrap().port).collect();
    for &v in &victims {
        let mut victim = nodes[v].take().unwrap();
        victim.signal(libc::SIGKILL);
        assert!(victim.wait_exit(CONVERGE).is_some());
    }
    let (source, target) = (nodes[3].as_ref().unwrap(), nodes[survivor].as_ref().unwrap());
    let out = migrate(source, target, range, &["--max-pause-ms", "200", "--timeout-s", "8"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "no majority, no switch: {text}");
    assert!(text.contains("control log decides"), "{text}");
    // The source neither switched nor serves the held writes itself:
    // past the hold they are refused until the log decides.
    assert!(migration_status(source).contains("migration_state:switching"), "{}", migration_status(source));
    let key = key_in(range, "held");
    assert!(set_reply(source, &key).starts_with("-TRYAGAIN"), "{}", set_reply(source, &key));
    assert_eq!(owner(source, range.start), Some(source.addr()));
    assert_eq!(owner(target, range.start), Some(source.addr()));
    // The target holds what it pulled, invisible until the log decides.
    assert!(cmd(&mut target.client(), &["DBSIZE"]).int() > 0);

    // The majority comes back: the switch's cancellation commits, and the
    // source serves the slots again.
    for (&v, &port) in victims.iter().zip(&ports) {
        nodes[v] = Some(start(&args[v], Some(port)));
    }
    let source = nodes[3].as_ref().unwrap();
    assert!(
        wait_until(CONVERGE, || migration_status(source).contains("migration_state:aborted")),
        "{}",
        migration_status(source)
    );
    let status = migration_status(source);
    assert!(status.contains("the control log cancelled the switch"), "{status}");
    // The target takes the same outcome by itself (the admin tool has
    // given up): it drops what it received, and serves none of it.
    let target = nodes[survivor].as_ref().unwrap();
    assert!(target.addr() != source.addr());
    assert!(wait_until(CONVERGE, || cmd(&mut target.client(), &["DBSIZE"]).int() == 0), "{}", migration_status(target));
    assert!(migration_status(target).contains("the control log cancelled the switch"), "{}", migration_status(target));
    assert_eq!(set_reply(source, &key), "+OK");
    let all: Vec<&Server> = nodes.iter().flatten().collect();
    assert!(wait_until(CONVERGE, || all.iter().all(|n| owner(n, range.start) == Some(source.addr()))));
    let before = load.acked();
    assert!(wait_until(CONVERGE, || load.acked() > before), "writes are served again");

    // A retry switches, and every node shows the new owner.
    let target = nodes[survivor].as_ref().unwrap();
    let out = migrate(source, target, range, &["--max-pause-ms", "2000"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "retry: {text}");
    assert!(wait_until(CONVERGE, || all.iter().all(|n| owner(n, range.end) == Some(target.addr()))));
    load.finish(urls);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change proposed through a voter that knows no leader (its peers are
/// stopped, so it stepped down) waits for an election instead of failing,
/// and commits once the peers are back.
#[test]
fn a_proposal_made_while_no_leader_is_known_commits_after_the_election() {
    if reference_run() {
        return;
    }
    let dir = scratch("leaderless");
    let (_args, nodes, config) = control_log_cluster_of(&dir, 1);
    let nodes: Vec<Server> = nodes.into_iter().flatten().collect();
    let voter = &nodes[0];
    for n in &nodes[1..3] {
        n.signal(libc::SIGSTOP);
    }
    // Alone, it gives up leading (or stops following) within an election timeout.
    assert!(wait_until(CONVERGE, || log_field(voter, "leader-node").is_some_and(|l| l.is_empty())));
    let change = ConfigChange::CancelMigration(777);
    let mut waiting = voter.raw();
    waiting.write_all(&resp_cmd(&["CLUSTER", "CORESHARD-PROPOSE", &serde_json::to_string(&change).unwrap()])).unwrap();
    for n in &nodes[1..3] {
        n.signal(libc::SIGCONT);
    }
    waiting.set_read_timeout(Some(CONVERGE)).unwrap();
    let reply = parse_reply(&read_reply(&mut waiting));
    assert!(matches!(reply, Reply::Int(e) if e as u64 > config.epoch), "{reply:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_proposal_waiting_for_the_log_leaves_its_shard_serving_others() {
    if reference_run() {
        return;
    }
    let dir = scratch("propose-wait");
    // One shard per node: every connection of a node is on the same shard.
    let (_args, nodes, config) = control_log_cluster_of(&dir, 1);
    let nodes: Vec<Server> = nodes.into_iter().flatten().collect();
    let mut leader = String::new();
    assert!(wait_until(CONVERGE, || {
        leader = log_field(&nodes[0], "leader-node").unwrap_or_default();
        !leader.is_empty()
    }));
    let lead = config.nodes.iter().position(|n| n.id.as_str() == leader).unwrap();
    // Through the leader with the two other voters stopped: its control
    // thread waits for a commit that cannot come (an error after 5 s).
    // Then through the node outside the log with the first voter of its
    // map stopped: the thread passing the change on waits for that
    // voter's answer (7 s), then tries the next one (which may commit it).
    let stop_for_leader: Vec<&Server> = (0..3).filter(|&i| i != lead).map(|i| &nodes[i]).collect();
    for (phase, (at, stopped)) in
        [(&nodes[lead], stop_for_leader), (&nodes[3], vec![&nodes[0]])].into_iter().enumerate()
    {
        let change = serde_json::to_string(&ConfigChange::CancelMigration(12345 + phase as u64)).unwrap();
        for n in &stopped {
            n.signal(libc::SIGSTOP);
        }
        let mut waiting = at.raw();
        waiting.write_all(&resp_cmd(&["CLUSTER", "CORESHARD-PROPOSE", &change])).unwrap();
        let mut other = at.client();
        assert!(
            wait_until(CONVERGE, || cmd(&mut other, &["CLIENT", "LIST"])
                .text()
                .contains("cmd=cluster|coreshard-propose")),
            "the proposal is running"
        );
        // The shard serves another client while the proposal waits.
        for i in 0..20 {
            let key = format!("{{x}}:{i}");
            let started = std::time::Instant::now();
            let reply = cmd(&mut other, &["GET", &key]);
            assert!(started.elapsed() < Duration::from_secs(1), "GET took {:?}: {reply:?}", started.elapsed());
            assert!(!reply.is_error() || format!("{reply:?}").contains("MOVED"), "{reply:?}");
        }
        waiting.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let pending = matches!(waiting.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(pending, "the proposal is still waiting for the log");
        waiting.set_nonblocking(false).unwrap();
        waiting.set_read_timeout(Some(CONVERGE)).unwrap();
        // Then it is answered, on the same connection.
        let reply = parse_reply(&read_reply(&mut waiting));
        // (An entry that timed out may still commit once the voters
        // continue; one given up on at a stopped voter and passed to the
        // next may have committed through both, and the second is refused.)
        let text = format!("{reply:?}");
        assert!(
            matches!(reply, Reply::Int(_)) || text.contains("did not commit") || text.contains("already decided"),
            "{text}"
        );
        for n in &stopped {
            n.signal(libc::SIGCONT);
        }
    }
    // With the majority back it commits, and the connection answers the epoch.
    assert!(propose(&nodes[3], &ConfigChange::CancelMigration(12347)) >= 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One whole reply read from `s`.
fn read_reply(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    read_replies(s, &mut buf, 1).unwrap();
    buf
}

#[test]
fn a_switch_that_timed_out_and_committed_later_loses_nothing() {
    if reference_run() {
        return;
    }
    let dir = scratch("late-commit");
    let (_args, nodes, config) = control_log_cluster(&dir);
    let nodes: Vec<Server> = nodes.into_iter().flatten().collect();
    // The source is the leader; the two other voters are stopped just
    // before the migration, so the leader takes the switch into its log
    // but cannot commit it: the proposal times out. Once they continue,
    // the entry may still commit (or, had the leader stepped down first,
    // the cancellation does); either way every node agrees and no
    // acknowledged write is lost.
    let mut leader = String::new();
    assert!(wait_until(CONVERGE, || {
        leader = log_field(&nodes[0], "leader-node").unwrap_or_default();
        !leader.is_empty()
    }));
    let lead = config.nodes.iter().position(|n| n.id.as_str() == leader).unwrap();
    let range = SlotRange::new(config.nodes[lead].slots[0].start, config.nodes[lead].slots[0].start + 199);
    let urls = vec![nodes[lead].url(), nodes[3].url()];
    let load = VerifyingLoad::start(urls.clone(), range_keys(range, 2, 50), true);
    assert!(wait_until(CONVERGE, || load.acked() > 50));
    let stopped: Vec<&Server> = (0..3).filter(|&i| i != lead).map(|i| &nodes[i]).collect();
    for n in &stopped {
        n.signal(libc::SIGSTOP);
    }
    let (source, target) = (&nodes[lead], &nodes[3]);
    let out = migrate(source, target, range, &["--max-pause-ms", "200", "--timeout-s", "8"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "no majority, no switch yet: {text}");
    assert!(migration_status(source).contains("migration_state:switching"), "{}", migration_status(source));
    let key = key_in(range, "late");
    assert!(set_reply(source, &key).starts_with("-TRYAGAIN"), "{}", set_reply(source, &key));
    for n in &stopped {
        n.signal(libc::SIGCONT);
    }
    let mut state = String::new();
    assert!(
        wait_until(CONVERGE, || {
            state = migration_status(source);
            state.contains("migration_state:done") || state.contains("migration_state:aborted")
        }),
        "{state}"
    );
    let owner_now = if state.contains("migration_state:done") { target.addr() } else { source.addr() };
    println!("outcome: {}", if owner_now == target.addr() { "switched" } else { "cancelled" });
    assert!(wait_until(CONVERGE, || nodes.iter().all(|n| owner(n, range.start) == Some(owner_now.clone()))));
    let before = load.acked();
    assert!(wait_until(CONVERGE, || load.acked() > before), "writes are served again");
    load.finish(urls);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_node_serves_its_keys_as_soon_as_create_returns() {
    if reference_run() {
        return;
    }
    let dir = scratch("create-serves");
    let args: Vec<Vec<String>> = (0..4).map(|i| node_args(&dir, i, probe_port())).collect();
    let nodes: Vec<Server> = args.iter().map(|a| start(a, None)).collect();
    let mut conns: Vec<std::net::TcpStream> = nodes.iter().map(Server::raw).collect();
    let addrs: Vec<String> = nodes.iter().map(Server::addr).collect();
    let mut create_args = vec!["create", "--control-log", "3"];
    create_args.extend(addrs.iter().map(String::as_str));
    admin(&create_args);
    // Right away, on connections opened before: a key is served or
    // redirected by every node, never CLUSTERDOWN.
    for (n, c) in conns.iter_mut().enumerate() {
        let reply = String::from_utf8(raw_roundtrip(c, &resp_cmd(&["GET", "k"]))).unwrap();
        assert!(reply == "$-1\r\n" || reply.starts_with("-MOVED"), "node {n}: {reply}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs coreshard-admin expecting it to fail; its stderr.
fn admin_fails(args: &[&str]) -> String {
    let out = Command::new(ADMIN).args(args).output().expect("run coreshard-admin");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "coreshard-admin {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    stderr
}

/// `coreshard-admin voters HOST:PORT --json`: (id, node, role, leader) per member.
fn voters(at: &str) -> Vec<(u64, String, String, bool)> {
    let json: serde_json::Value = serde_json::from_str(&admin(&["voters", at, "--json"])).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap().to_string();
            (m["id"].as_u64().unwrap(), text("node"), text("role"), m["leader"].as_bool().unwrap())
        })
        .collect()
}

#[test]
fn a_dead_voter_is_replaced_and_the_log_commits_with_the_new_one() {
    if reference_run() {
        return;
    }
    let dir = scratch("voters");
    // A, B, C voters; D a primary that becomes one; E a primary outside
    // the log throughout, which learns every change by push.
    let ports: Vec<u16> = (0..5).map(|_| probe_port()).collect();
    let args: Vec<Vec<String>> = (0..5).map(|i| node_args(&dir, i, ports[i])).collect();
    let mut nodes: Vec<Option<Server>> = args.iter().map(|a| Some(start(a, None))).collect();
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let mut create_args = vec!["create", "--json", "--control-log", "3"];
    create_args.extend(addrs.iter().map(String::as_str));
    let config: ClusterConfig = serde_json::from_str(&admin(&create_args)).unwrap();
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(1))));
    let id = |i: usize| config.nodes[i].id.to_string();
    assert!(wait_until(CONVERGE, || voters(&addrs[0]).iter().any(|v| v.3)), "a leader is elected");
    let listed = voters(&addrs[4]);
    assert_eq!(
        listed.iter().map(|v| (v.0, v.1.clone(), v.2.as_str())).collect::<Vec<_>>(),
        vec![(1, id(0), "voter"), (2, id(1), "voter"), (3, id(2), "voter")]
    );

    // C dies for good.
    {
        let mut c = nodes[2].take().unwrap();
        c.signal(libc::SIGKILL);
        assert!(c.wait_exit(CONVERGE).is_some());
    }

    // D is added while it does not answer (stopped): it stays a learner
    // meanwhile, and a second change is refused until it is a voter.
    let d_control = format!("127.0.0.1:{}", ports[3]);
    nodes[3].as_ref().unwrap().signal(libc::SIGSTOP);
    let adding = {
        let url = nodes[0].as_ref().unwrap().url();
        let (d, control) = (id(3), d_control.clone());
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            cmd(&mut c, &["CLUSTER", "CORESHARD-LOG-ADD", &d, &control])
        })
    };
    let learner = wait_until(CONVERGE, || voters(&addrs[0]).iter().any(|v| v.1 == id(3) && v.2 == "learner"));
    if !learner {
        nodes[3].as_ref().unwrap().signal(libc::SIGCONT);
        panic!("D is not a learner: {:?}", adding.join());
    }
    let refused = admin_fails(&["voters", &addrs[1], "remove", &id(2)]);
    assert!(refused.contains("is being added"), "{refused}");
    let refused = admin_fails(&["voters", &addrs[4], "add", &addrs[4]]);
    assert!(refused.contains("is being added"), "{refused}");
    nodes[3].as_ref().unwrap().signal(libc::SIGCONT);
    let added = adding.join().unwrap();
    assert!(!added.is_error() && added.text().contains("is voter 4"), "{added:?}");
    // Asked again through the admin tool, D is a voter already.
    let again = admin(&["voters", &addrs[4], "add", &addrs[3]]);
    assert!(again.contains("is voter 4 already"), "{again}");
    assert_eq!(log_field(nodes[3].as_ref().unwrap(), "voter").as_deref(), Some("4"));

    // C (dead) is removed; the members are A, B and D.
    let removed = admin(&["voters", &addrs[3], "remove", &id(2)]);
    assert!(removed.contains("removed"), "{removed}");
    let members = |at: &str| voters(at).iter().map(|v| (v.0, v.2.clone())).collect::<Vec<_>>();
    let want = vec![(1, "voter".to_string()), (2, "voter".to_string()), (4, "voter".to_string())];
    assert!(wait_until(CONVERGE, || [0, 1, 3].iter().all(|&i| members(&addrs[i]) == want)), "{:?}", members(&addrs[0]));

    // B dies too: A and D are 2 of the 3 voters and still commit, and E
    // gets the change by push.
    {
        let mut b = nodes[1].take().unwrap();
        b.signal(libc::SIGKILL);
        assert!(b.wait_exit(CONVERGE).is_some());
    }
    let moved = SlotRange::new(config.nodes[4].slots[0].start, config.nodes[4].slots[0].start + 9);
    let change = ConfigChange::AssignSlots { node: config.nodes[3].id.clone(), ranges: vec![moved] };
    let made = propose(nodes[4].as_ref().unwrap(), &change);
    assert!(wait_until(CONVERGE, || [0, 3, 4].iter().all(|&i| epoch(nodes[i].as_ref().unwrap()) == Some(made))));
    let key = key_in(moved, "voters");
    let moved_reply = format!("-MOVED {} {}", key_slot(key.as_bytes()), addrs[3]);
    assert!(wait_until(CONVERGE, || set_reply(nodes[4].as_ref().unwrap(), &key) == moved_reply));
    assert_eq!(set_reply(nodes[3].as_ref().unwrap(), &key), "+OK");
    // A slot migration from E to A switches through the log as well, with
    // its key.
    let range = SlotRange::new(config.nodes[4].slots[0].start + 100, config.nodes[4].slots[0].start + 119);
    let key = key_in(range, "migrated");
    assert_eq!(set_reply(nodes[4].as_ref().unwrap(), &key), "+OK");
    let out = migrate(nodes[4].as_ref().unwrap(), nodes[0].as_ref().unwrap(), range, &[]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut a = nodes[0].as_ref().unwrap().client();
    assert_eq!(cmd(&mut a, &["GET", &key]).text(), "v");
    let moved_reply = format!("-MOVED {} {}", key_slot(key.as_bytes()), addrs[0]);
    assert!(wait_until(CONVERGE, || set_reply(nodes[4].as_ref().unwrap(), &key) == moved_reply));
    let made = epoch(nodes[0].as_ref().unwrap()).unwrap();
    assert!(wait_until(CONVERGE, || [0, 3, 4].iter().all(|&i| epoch(nodes[i].as_ref().unwrap()) == Some(made))));

    // D restarts on its files (SIGKILL): still a voter, and with B dead
    // nothing commits without it.
    {
        let mut d = nodes[3].take().unwrap();
        d.signal(libc::SIGKILL);
        assert!(d.wait_exit(CONVERGE).is_some());
    }
    nodes[3] = Some(start(&args[3], Some(config.nodes[3].port)));
    assert!(wait_until(CONVERGE, || log_field(nodes[3].as_ref().unwrap(), "voter").as_deref() == Some("4")));
    let back = ConfigChange::AssignSlots { node: config.nodes[4].id.clone(), ranges: vec![moved] };
    let made = propose(nodes[0].as_ref().unwrap(), &back);
    assert!(wait_until(CONVERGE, || [0, 3, 4].iter().all(|&i| epoch(nodes[i].as_ref().unwrap()) == Some(made))));

    // C restarts on its old files: the leader tells it that it was
    // removed; it leaves (its log file marked), takes the map by push,
    // and the log's term does not move.
    assert!(wait_until(CONVERGE, || log_field(nodes[0].as_ref().unwrap(), "leader").is_some_and(|l| l != "0")));
    let term = log_field(nodes[0].as_ref().unwrap(), "term").unwrap();
    nodes[2] = Some(start(&args[2], Some(config.nodes[2].port)));
    let c = nodes[2].as_ref().unwrap();
    assert!(wait_until(CONVERGE, || log_field(c, "voter").as_deref() == Some("none")), "C left the log");
    assert_eq!(log_file(&dir, 2)["removed"], serde_json::Value::Bool(true));
    assert!(wait_until(CONVERGE, || epoch(c) == Some(made)), "C gets the map by push");
    // A removed member is not a voter to forwarders.
    let text = serde_json::to_string(&back).unwrap();
    let refused = cmd(&mut c.client(), &["CLUSTER", "CORESHARD-PROPOSE", &text, "FORWARDED"]);
    assert!(refused.is_error() && format!("{refused:?}").contains("not a control log voter"), "{refused:?}");
    let last = propose(c, &change);
    assert!(wait_until(CONVERGE, || [0, 2, 3, 4].iter().all(|&i| epoch(nodes[i].as_ref().unwrap()) == Some(last))));
    assert_eq!(log_field(nodes[0].as_ref().unwrap(), "term").unwrap(), term, "C disturbed no election");
    assert_eq!(members(&addrs[0]), want);
    // Restarted once more, C stays outside the log.
    {
        let mut c = nodes[2].take().unwrap();
        c.signal(libc::SIGKILL);
        assert!(c.wait_exit(CONVERGE).is_some());
    }
    nodes[2] = Some(start(&args[2], Some(config.nodes[2].port)));
    assert_eq!(log_field(nodes[2].as_ref().unwrap(), "voter").as_deref(), Some("none"));
    assert!(wait_until(CONVERGE, || epoch(nodes[2].as_ref().unwrap()) == Some(last)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_leader_removed_from_the_voters_hands_over_and_takes_pushes() {
    if reference_run() {
        return;
    }
    let dir = scratch("remove-leader");
    let (args, mut nodes, config) = control_log_cluster(&dir);
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let mut leader = String::new();
    assert!(wait_until(CONVERGE, || {
        leader = log_field(nodes[0].as_ref().unwrap(), "leader-node").unwrap_or_default();
        !leader.is_empty()
    }));
    let l = config.nodes.iter().position(|n| n.id.as_str() == leader).unwrap();
    let old_term: u64 = log_field(nodes[l].as_ref().unwrap(), "term").unwrap().parse().unwrap();
    // Asked through the node outside the log, passed on to the leader.
    let removed = admin(&["voters", &addrs[3], "remove", &leader, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&removed).unwrap();
    assert_eq!(report["action"], "remove");
    let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    // The other two elect a leader among themselves and list two voters.
    assert!(wait_until(CONVERGE, || {
        others.iter().all(|&i| {
            let n = nodes[i].as_ref().unwrap();
            let lead = log_field(n, "leader-node").unwrap_or_default();
            !lead.is_empty() && lead != leader && log_field(n, "voters").as_deref() == Some("2")
        })
    }));
    let new_term: u64 = log_field(nodes[others[0]].as_ref().unwrap(), "term").unwrap().parse().unwrap();
    assert!(new_term > old_term);
    // The old leader left: not a member, its file marked, and it takes
    // the next change by push.
    let old = nodes[l].as_ref().unwrap();
    assert!(wait_until(CONVERGE, || log_field(old, "voter").as_deref() == Some("none")));
    assert_eq!(log_file(&dir, l)["removed"], serde_json::Value::Bool(true));
    let moved = SlotRange::new(config.nodes[3].slots[0].start, config.nodes[3].slots[0].start + 4);
    let change = ConfigChange::AssignSlots { node: config.nodes[l].id.clone(), ranges: vec![moved] };
    let made = propose(old, &change);
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(made))));
    // Its map comes from pushes now: a push of a newer epoch is taken.
    // Its removal asked again (an answer lost) succeeds, saying so.
    let again = admin(&["voters", &addrs[l], "remove", &addrs[l]]);
    assert!(again.contains("was removed already"), "{again}");
    // Restarted, it stays outside the log.
    {
        let mut n = nodes[l].take().unwrap();
        n.signal(libc::SIGKILL);
        assert!(n.wait_exit(CONVERGE).is_some());
    }
    nodes[l] = Some(start(&args[l], Some(config.nodes[l].port)));
    assert_eq!(log_field(nodes[l].as_ref().unwrap(), "voter").as_deref(), Some("none"));
    assert!(wait_until(CONVERGE, || epoch(nodes[l].as_ref().unwrap()) == Some(made)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The index in `config` of the control log's leader, as `at` sees it.
fn leader_index(at: &Server, config: &ClusterConfig) -> usize {
    let mut leader = String::new();
    assert!(wait_until(CONVERGE, || {
        leader = log_field(at, "leader-node").unwrap_or_default();
        !leader.is_empty()
    }));
    config.nodes.iter().position(|n| n.id.as_str() == leader).unwrap()
}

/// How long a push to a node outside the log may take once its change
/// committed: its own write of nodes.conf and a round trip, with room for
/// a loaded machine. A request to a node that does not answer waits
/// `PEER_IO_TIMEOUT_MS` (500 ms) for its connection or its answer, and a
/// removed voter that does not answer is sent two such requests each time
/// (CORESHARD-LOG-REMOVED, and the map, being a node of the map outside
/// the log), so pushes made one after another would reach the node
/// after it a second or more after the commit.
const PUSH_PROMPTLY: Duration = Duration::from_millis(700);

#[test]
fn a_removed_voter_that_does_not_answer_delays_no_push_to_other_nodes() {
    if reference_run() {
        return;
    }
    let dir = scratch("black-hole");
    let (_args, nodes, config) = control_log_cluster(&dir);
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let l = leader_index(nodes[0].as_ref().unwrap(), &config);
    // C, a voter that does not lead, stops (SIGSTOP): its client port
    // still completes connections in the kernel but never answers, a
    // black hole. It is removed while stopped, asked of the leader (a
    // node outside the log would pass the request to the nodes of its
    // map in turn, C perhaps first, and wait for C's answer).
    let c = (0..3).find(|&i| i != l).unwrap();
    nodes[c].as_ref().unwrap().signal(libc::SIGSTOP);
    let removed = std::panic::catch_unwind(|| admin(&["voters", &addrs[l], "remove", config.nodes[c].id.as_str()]));
    let Ok(removed) = removed else {
        nodes[c].as_ref().unwrap().signal(libc::SIGCONT);
        panic!("the removal of the stopped voter failed");
    };
    assert!(removed.contains("removed"), "{removed}");
    // Changes committed now reach D, outside the log, promptly each time,
    // while the leader keeps trying C.
    let outside = nodes[3].as_ref().unwrap();
    let mut late = Vec::new();
    for round in 0..4u16 {
        let start = config.nodes[3].slots[0].start + round * 10;
        let owner = config.nodes[(l + 1 + usize::from(round % 2)) % 3].id.clone();
        let change = ConfigChange::AssignSlots { node: owner, ranges: vec![SlotRange::new(start, start + 4)] };
        let made = propose(nodes[l].as_ref().unwrap(), &change);
        let committed = std::time::Instant::now();
        let reached = wait_until(PUSH_PROMPTLY, || epoch(outside).is_some_and(|e| e >= made));
        if !reached {
            // How late, for the failure's message.
            wait_until(CONVERGE, || epoch(outside).is_some_and(|e| e >= made));
            late.push((made, committed.elapsed()));
        }
    }
    nodes[c].as_ref().unwrap().signal(libc::SIGCONT);
    assert!(late.is_empty(), "pushes later than {PUSH_PROMPTLY:?} (epoch, waited): {late:?}");
    // C, running again, learns that it was removed, leaves the log and
    // takes the map by push.
    let c_node = nodes[c].as_ref().unwrap();
    assert!(wait_until(CONVERGE, || log_field(c_node, "voter").as_deref() == Some("none")), "C left the log");
    let last = epoch(nodes[l].as_ref().unwrap()).unwrap();
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(last))));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_removed_node_is_added_again_without_a_restart_and_repeated_changes_succeed() {
    if reference_run() {
        return;
    }
    let dir = scratch("re-add");
    let (_args, mut nodes, config) = control_log_cluster(&dir);
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let l = leader_index(nodes[0].as_ref().unwrap(), &config);
    let x = (0..3).find(|&i| i != l).unwrap();
    let x_id = config.nodes[x].id.to_string();
    // X is removed (asked through D, outside the log) and leaves.
    let removed = admin(&["voters", &addrs[3], "remove", &x_id]);
    assert!(removed.contains(&format!("node {x_id} (member {}) removed", x + 1)), "{removed}");
    assert!(wait_until(CONVERGE, || log_field(nodes[x].as_ref().unwrap(), "voter").as_deref() == Some("none")));
    // The same removal asked again (as after a lost answer) succeeds and
    // says so; a node that never was a member is refused.
    let again = admin(&["voters", &addrs[3], "remove", &x_id]);
    assert!(again.contains(&format!("node {x_id} (member {}) was removed already", x + 1)), "{again}");
    let again = admin(&["voters", &addrs[x], "remove", &x_id]);
    assert!(again.contains("was removed already"), "{again}");
    let refused = admin_fails(&["voters", &addrs[0], "remove", &addrs[3]]);
    assert!(refused.contains("not a member"), "{refused}");
    // X, still running, is added again: a new member id, a voter.
    let added = admin(&["voters", &addrs[3], "add", &x_id]);
    assert!(added.contains("is voter 4"), "{added}");
    assert!(wait_until(CONVERGE, || log_field(nodes[x].as_ref().unwrap(), "voter").as_deref() == Some("4")));
    // Asked again, it is a voter already: success.
    let again = admin(&["voters", &addrs[3], "add", &x_id]);
    assert!(again.contains("is voter 4 already"), "{again}");
    // The leader dies: X and the third voter are two of three, so the
    // election and every commit need X's vote.
    let old_term: u64 = log_field(nodes[x].as_ref().unwrap(), "term").unwrap().parse().unwrap();
    {
        let mut leader = nodes[l].take().unwrap();
        leader.signal(libc::SIGKILL);
        assert!(leader.wait_exit(CONVERGE).is_some());
    }
    let moved = SlotRange::new(config.nodes[3].slots[0].start, config.nodes[3].slots[0].start + 4);
    let change = ConfigChange::AssignSlots { node: config.nodes[x].id.clone(), ranges: vec![moved] };
    let made = propose(nodes[3].as_ref().unwrap(), &change);
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(made))));
    let x_node = nodes[x].as_ref().unwrap();
    let term: u64 = log_field(x_node, "term").unwrap().parse().unwrap();
    assert!(term > old_term, "a new leader was elected ({old_term} -> {term})");
    let key = key_in(moved, "readded");
    assert_eq!(set_reply(x_node, &key), "+OK");
    let _ = std::fs::remove_dir_all(&dir);
}

/// How long a change made through a node outside the log may take while
/// the first voter of its map is stopped: the stopped voter's status
/// probe (`PROBE_WAIT_MS`, 500 ms, plus a connect that the kernel
/// completes at once), a probe of a voter that answers and of the leader
/// it names, and the commit, with room for a loaded machine. A forwarder
/// that gives the stopped voter a request's whole wait takes 7 s for a
/// proposal (`PROPOSE_WAIT_MS` and 2 s) and 35 s for a membership change
/// before it asks the next node.
const FORWARD_PROMPTLY: Duration = Duration::from_secs(4);

#[test]
fn a_stopped_voter_first_in_the_map_holds_up_no_change_made_outside_the_log() {
    if reference_run() {
        return;
    }
    let dir = scratch("forward-stopped");
    let (_args, nodes, config) = control_log_cluster(&dir);
    let addrs: Vec<String> = nodes.iter().flatten().map(Server::addr).collect();
    let node = |i: usize| nodes[i].as_ref().unwrap();
    // D (outside the log) holds the map `create` made, in which A comes
    // first. A must not lead (a stopped leader is another case: the
    // others elect a new one first): while it does, it is stopped until
    // B and C elect one of themselves, then resumed, and follows.
    let a_id = config.nodes[0].id.to_string();
    let leads_elsewhere = |i: usize| log_field(node(i), "leader-node").is_some_and(|l| !l.is_empty() && l != a_id);
    for _ in 0..3 {
        if leader_index(node(1), &config) != 0 && wait_until(CONVERGE, || leads_elsewhere(0)) {
            break;
        }
        node(0).signal(libc::SIGSTOP);
        let elected = wait_until(CONVERGE, || leads_elsewhere(1) && leads_elsewhere(2));
        node(0).signal(libc::SIGCONT);
        assert!(elected, "B and C elect a leader while A is stopped");
    }
    assert!(leads_elsewhere(0) && leads_elsewhere(1), "A does not lead");

    // A stops: its port still completes connections but never answers.
    // A proposal made on D commits promptly, once.
    let before = epoch(node(3)).unwrap();
    node(0).signal(libc::SIGSTOP);
    let moved = SlotRange::new(config.nodes[3].slots[0].start, config.nodes[3].slots[0].start + 4);
    let change = ConfigChange::AssignSlots { node: config.nodes[1].id.clone(), ranges: vec![moved] };
    let text = serde_json::to_string(&change).unwrap();
    let started = std::time::Instant::now();
    let reply = cmd(&mut node(3).client(), &["CLUSTER", "CORESHARD-PROPOSE", &text]);
    let proposed_in = started.elapsed();
    // A membership change made on D (A, stopped, removed) too.
    let started = std::time::Instant::now();
    let removal =
        Command::new(ADMIN).args(["voters", &addrs[3], "remove", &a_id]).output().expect("run coreshard-admin");
    let removed_in = started.elapsed();
    node(0).signal(libc::SIGCONT);
    assert!(!reply.is_error(), "{reply:?}");
    let made = reply.int() as u64;
    assert!(proposed_in < FORWARD_PROMPTLY, "the proposal took {proposed_in:?}");
    assert_eq!(made, before + 1, "the proposal made one epoch");
    let removed = String::from_utf8_lossy(&removal.stdout);
    assert!(
        removal.status.success() && removed.contains("removed"),
        "{removed}{}",
        String::from_utf8_lossy(&removal.stderr)
    );
    assert!(removed_in < FORWARD_PROMPTLY, "the removal took {removed_in:?}");
    assert!(wait_until(CONVERGE, || [1, 2].iter().all(|&i| log_field(node(i), "voters").as_deref() == Some("2"))));
    // A, running again, leaves the log; every node holds the one epoch
    // the proposal made (a membership change makes none).
    assert!(wait_until(CONVERGE, || log_field(node(0), "voter").as_deref() == Some("none")), "A left the log");
    assert!(wait_until(CONVERGE, || nodes.iter().flatten().all(|n| epoch(n) == Some(made))));
    let _ = std::fs::remove_dir_all(&dir);
}
