//! The cluster configuration in the control log, end to end: four real
//! coreshard processes on loopback, the first three made voters by
//! `coreshard-admin create --control-log 3`; a change made through one
//! node reaches every node (the fourth by the leader's push);
//! the leader killed with SIGKILL, the other two elect a new one and
//! commit a further change; the killed node restarted on its files
//! catches up and serves the current map. Every wait polls with a deadline.

mod common;

use common::*;
use coreshard_engine::slot::key_slot;
use coreshard_repl::cluster::{ClusterConfig, ConfigChange, SlotRange};
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
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match port {
        None => Server::start_with(SHARDS, &refs),
        Some(p) => Server::start_on(p, SHARDS, &refs).expect("restart on the same port"),
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
    // A migration would install its switch outside the log: refused for now.
    let out = Command::new(ADMIN)
        .args(["migrate", "--from", &addrs[0], "--to", &addrs[1], "--slots", &format!("{slot}-{slot}")])
        .output()
        .expect("run coreshard-admin");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("control log"), "migrate on a control-log cluster: {text}");

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
