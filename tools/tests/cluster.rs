//! Cluster mode: clusters made by `coreshard-admin create` out of real
//! coreshard processes on loopback ports, driven by cluster-aware clients
//! (the `redis` crate's cluster client, `redis-cli -c`,
//! `redis-benchmark --cluster`) and by raw sockets where the exact error
//! bytes are the point.

mod common;

use common::*;
use coreshard_engine::slot::key_slot;
use coreshard_repl::cluster::{ClusterConfig, Node, NodeId, SlotRange};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SHARDS: usize = 2;
const ADMIN: &str = env!("CARGO_BIN_EXE_coreshard-admin");

fn scratch(tag: &str) -> PathBuf {
    scratch_dir(&format!("cluster-{tag}"))
}

fn node_args(dir: &std::path::Path, i: usize) -> Vec<String> {
    let file = dir.join(format!("node{i}.conf"));
    vec!["--cluster-enabled".into(), "yes".into(), "--cluster-config-file".into(), file.display().to_string()]
}

/// Starts `n` fresh cluster-mode nodes.
fn start_nodes(dir: &std::path::Path, n: usize) -> Vec<Server> {
    (0..n)
        .map(|i| {
            let args = node_args(dir, i);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            Server::start_with(SHARDS, &refs)
        })
        .collect()
}

/// Runs coreshard-admin; its stdout, or a panic with its output.
fn admin(args: &[&str]) -> String {
    let out = Command::new(ADMIN).args(args).output().expect("run coreshard-admin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "coreshard-admin {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `coreshard-admin create --json` over `nodes`; the configuration it pushed.
fn create(nodes: &[Server], replicas: usize) -> ClusterConfig {
    let addrs: Vec<String> = nodes.iter().map(Server::addr).collect();
    let mut args = vec!["create", "--json", "--replicas"];
    let r = replicas.to_string();
    args.push(&r);
    args.extend(addrs.iter().map(String::as_str));
    serde_json::from_str(&admin(&args)).expect("create --json prints the configuration")
}

/// A key whose slot lies in `range`.
fn key_in(range: SlotRange, tag: &str) -> String {
    (0..).map(|i| format!("{tag}:{i}")).find(|k| (range.start..=range.end).contains(&key_slot(k.as_bytes()))).unwrap()
}

/// The raw reply bytes of one command.
fn raw(srv: &Server, args: &[&str]) -> String {
    String::from_utf8(raw_roundtrip(&mut srv.raw(), &resp_cmd(args))).unwrap()
}

#[test]
fn a_three_node_cluster_serves_cluster_clients() {
    if reference_run() {
        return;
    }
    let dir = scratch("three");
    let nodes = start_nodes(&dir, 3);
    let config = create(&nodes, 0);
    assert_eq!(config.epoch, 1);
    assert_eq!(config.slots_assigned(), 16384);
    let ranges: Vec<SlotRange> = config.nodes.iter().map(|n| n.slots[0]).collect();

    // Every node has the same map, epoch 1.
    for (i, srv) in nodes.iter().enumerate() {
        let mut c = srv.client();
        let info = cmd(&mut c, &["CLUSTER", "INFO"]).text();
        for (field, want) in [
            ("cluster_state", "ok"),
            ("cluster_slots_assigned", "16384"),
            ("cluster_slots_ok", "16384"),
            ("cluster_slots_pfail", "0"),
            ("cluster_slots_fail", "0"),
            ("cluster_known_nodes", "3"),
            ("cluster_size", "3"),
            ("cluster_current_epoch", "1"),
            ("cluster_my_epoch", "1"),
        ] {
            assert_eq!(info_field(&info, field).as_deref(), Some(want), "node {i} {field}");
        }
        assert_eq!(cmd(&mut c, &["CLUSTER", "MYID"]), bulk(config.nodes[i].id.as_str()));
        let lines = cmd(&mut c, &["CLUSTER", "NODES"]).text();
        let mine = lines.lines().find(|l| l.contains("myself")).unwrap();
        assert_eq!(
            mine,
            format!("{} {}@0 myself,master - 0 0 1 connected {}", config.nodes[i].id, srv.addr(), ranges[i])
        );
        assert_eq!(lines.lines().count(), 3);
        assert_eq!(info_field(&cmd(&mut c, &["INFO", "cluster"]).text(), "cluster_enabled").as_deref(), Some("1"));
    }
    let slots = raw(&nodes[0], &["CLUSTER", "SLOTS"]);
    let want = format!(
        "*3\r\n*3\r\n:0\r\n:{}\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n$40\r\n{}\r\n*0\r\n",
        ranges[0].end, nodes[0].port, config.nodes[0].id
    );
    assert!(slots.starts_with(&want), "{slots:?}");
    let shards = cmd(&mut nodes[1].client(), &["CLUSTER", "SHARDS"]).items();
    assert_eq!(shards.len(), 3);
    assert_eq!(shards[1].items()[1], arr(vec![int(ranges[1].start as i64), int(ranges[1].end as i64)]));

    // The redis crate's cluster client reads and writes keys of every node.
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut cc = client.get_connection().unwrap();
    for i in 0..300 {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(&mut cc).unwrap();
    }
    for i in 0..300 {
        let v: i64 = redis::cmd("GET").arg(format!("key:{i}")).query(&mut cc).unwrap();
        assert_eq!(v, i);
    }
    let counts: Vec<i64> = nodes.iter().map(|n| cmd(&mut n.client(), &["DBSIZE"]).int()).collect();
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    assert_eq!(counts.iter().sum::<i64>(), 300);

    // Slot introspection on the node serving the slot.
    let key = key_in(ranges[1], "intro");
    let slot = key_slot(key.as_bytes()).to_string();
    let mut c1 = nodes[1].client();
    assert_eq!(cmd(&mut c1, &["SET", &key, "v"]), ok());
    assert_eq!(cmd(&mut c1, &["CLUSTER", "KEYSLOT", &key]), int(slot.parse().unwrap()));
    assert_eq!(cmd(&mut c1, &["CLUSTER", "COUNTKEYSINSLOT", &slot]), int(1));
    assert_eq!(cmd(&mut c1, &["CLUSTER", "GETKEYSINSLOT", &slot, "10"]), bulks(&[&key]));
    assert_eq!(cmd(&mut c1, &["CLUSTER", "GETKEYSINSLOT", &slot, "0"]), arr(vec![]));
    expect_all(
        &mut c1,
        &[
            (&["CLUSTER", "COUNTKEYSINSLOT", "16384"], err("ERR Invalid slot")),
            (&["CLUSTER", "COUNTKEYSINSLOT", "x"], err("ERR value is not an integer or out of range")),
            (&["CLUSTER", "GETKEYSINSLOT", "1", "-1"], err("ERR Invalid slot or number of keys")),
            (&["CLUSTER", "KEYSLOT"], err("ERR wrong number of arguments for 'cluster|keyslot' command")),
            (&["CLUSTER", "NOSUCH"], err("ERR unknown subcommand 'NOSUCH'. Try CLUSTER HELP.")),
            (&["SELECT", "1"], err("ERR SELECT is not allowed in cluster mode")),
            (&["MOVE", &key, "1"], err("ERR MOVE is not allowed in cluster mode")),
            (&["SWAPDB", "0", "1"], err("ERR SWAPDB is not allowed in cluster mode")),
            (&["SELECT", "0"], ok()),
        ],
    );

    // Redirections, byte for byte.
    let elsewhere = key_in(ranges[2], "moved");
    let slot2 = key_slot(elsewhere.as_bytes());
    assert_eq!(raw(&nodes[0], &["GET", &elsewhere]), format!("-MOVED {slot2} {}\r\n", nodes[2].addr()));
    let (a, b) = (key_in(ranges[0], "x"), key_in(ranges[0], "y"));
    assert_ne!(key_slot(a.as_bytes()), key_slot(b.as_bytes()));
    let crossslot = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    assert_eq!(raw(&nodes[0], &["MSET", &a, "1", &b, "2"]), crossslot);
    assert_eq!(raw(&nodes[0], &["MGET", &a, &elsewhere]), crossslot);
    let same_slot = [format!("{{{a}}}.1"), format!("{{{a}}}.2")];
    assert_eq!(raw(&nodes[0], &["MSET", &same_slot[0], "1", &same_slot[1], "2"]), "+OK\r\n");
    // A transaction whose commands span slots is refused at EXEC.
    let mut s = nodes[0].raw();
    let mut pipeline = Vec::new();
    for c in [vec!["MULTI"], vec!["SET", &a, "1"], vec!["SET", &b, "1"], vec!["EXEC"]] {
        pipeline.extend(resp_cmd(&c));
    }
    let replies = raw_roundtrip_n(&mut s, &pipeline, 4);
    assert_eq!(String::from_utf8(replies).unwrap(), format!("+OK\r\n+QUEUED\r\n+QUEUED\r\n{crossslot}"));
    assert_eq!(raw(&nodes[0], &["GET", &a]), "$-1\r\n");

    // redis-cli -c follows MOVED to every node.
    for i in 0..30 {
        let k = format!("cli:{i}");
        let set = Command::new("redis-cli").args(["-c", "-p", &nodes[0].port.to_string(), "SET", &k, "v"]).output();
        let set = set.expect("redis-cli is installed (apt-get install redis-tools)");
        assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "OK");
        let get = Command::new("redis-cli").args(["-c", "-p", &nodes[1].port.to_string(), "GET", &k]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v");
    }

    // redis-benchmark --cluster finds the nodes and runs without errors.
    let bench = Command::new("redis-benchmark")
        .args(["--cluster", "-p", &nodes[2].port.to_string(), "-t", "set,get", "-n", "2000", "-q"])
        .output()
        .expect("redis-benchmark is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&bench.stdout), String::from_utf8_lossy(&bench.stderr));
    assert!(bench.status.success(), "{text}");
    assert!(text.contains("Cluster has 3 master nodes"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("error"), "{text}");

    // A config push with an epoch not above the node's is refused.
    let mut stale = config.clone();
    stale.nodes[0].slots.clear();
    let text = serde_json::to_string(&stale).unwrap();
    assert_eq!(
        raw(&nodes[0], &["CLUSTER", "CORESHARD-SETCONFIG", "1", &text]),
        "-ERR config epoch 1 is not newer than the current epoch 1\r\n"
    );
    assert_eq!(
        info_field(&cmd(&mut nodes[0].client(), &["CLUSTER", "INFO"]).text(), "cluster_slots_assigned").as_deref(),
        Some("16384")
    );

    // coreshard-admin show sees every node with its keys.
    let shown: serde_json::Value = serde_json::from_str(&admin(&["show", "--json", &nodes[0].addr()])).unwrap();
    assert_eq!(shown["state"], "ok");
    assert_eq!(shown["epoch"], 1);
    let listed = shown["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (n, srv) in listed.iter().zip(&nodes) {
        assert_eq!(n["addr"], srv.addr());
        assert_eq!(n["keys"].as_i64(), Some(cmd(&mut srv.client(), &["DBSIZE"]).int()));
        assert!(n["used_memory"].as_u64().unwrap() > 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node's keys spread over all of its shards, whichever slots it serves
/// (shard `i` of `n` owns the slots `s` with `s % n == i`): with 3 shards
/// per node and a third of the slots per node, every shard of every node
/// holds about a third of the node's keys. (With contiguous slot ranges
/// per shard, each node's keys all lived on one of its shards.)
#[test]
fn every_shard_of_a_node_holds_keys_of_its_slots() {
    const NODE_SHARDS: usize = 3;
    const KEYS: usize = 900;
    let dir = scratch("spread");
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            let args = node_args(&dir, i);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            Server::start_with(NODE_SHARDS, &refs)
        })
        .collect();
    let config = create(&nodes, 0);
    assert!(config.nodes.iter().all(|n| n.slots.len() == 1), "one range of slots per node");
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let client = redis::cluster::ClusterClient::new(urls).unwrap();
    let mut cc = client.get_connection().unwrap();
    for i in 0..KEYS {
        let _: () = redis::cmd("SET").arg(format!("spread:{i}")).arg(i).query(&mut cc).unwrap();
    }
    let per_shard = |srv: &Server| -> Vec<i64> {
        let info = cmd(&mut srv.client(), &["INFO", "cluster"]).text();
        let line = info_field(&info, "coreshard_shard_keys").unwrap_or_default();
        line.split(',').filter_map(|n| n.parse().ok()).collect()
    };
    let mut total = 0;
    for (i, srv) in nodes.iter().enumerate() {
        let keys = cmd(&mut srv.client(), &["DBSIZE"]).int();
        // The shards publish their counts every loop turn or timer tick.
        let mut counts = Vec::new();
        let published = wait_until(Duration::from_secs(10), || {
            counts = per_shard(srv);
            counts.len() == NODE_SHARDS && counts.iter().sum::<i64>() == keys
        });
        assert!(published, "node {i}: {counts:?}, DBSIZE {keys}");
        // About keys / 3 each (binomial, sd ~ 8 for 300 keys): far above half.
        let least = counts.iter().min().copied().unwrap_or(0);
        assert!(least * 2 * NODE_SHARDS as i64 >= keys, "node {i} ({:?}): {counts:?}", config.nodes[i].slots);
        total += keys;
    }
    assert_eq!(total, KEYS as i64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unassigned_slots_are_not_served() {
    if reference_run() {
        return;
    }
    let dir = scratch("down");
    let srv = start_nodes(&dir, 1).remove(0);
    let mut c = srv.client();
    // A fresh node serves no slot.
    assert_eq!(raw(&srv, &["GET", "foo"]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(info_field(&cmd(&mut c, &["CLUSTER", "INFO"]).text(), "cluster_state").as_deref(), Some("fail"));
    // Keyless commands still run.
    assert_eq!(cmd(&mut c, &["PING"]), status("PONG"));
    // This node serves slots 0-999 only: the rest is not served, and with
    // full coverage required (the default) the cluster is down.
    let id = NodeId::parse(&cmd(&mut c, &["CLUSTER", "MYID"]).text()).unwrap();
    let mut me = Node::primary(id, "127.0.0.1", srv.port);
    me.slots = vec![SlotRange::new(0, 999)];
    let config = ClusterConfig { epoch: 5, nodes: vec![me], migrations: Vec::new() };
    let text = serde_json::to_string(&config).unwrap();
    assert_eq!(raw(&srv, &["CLUSTER", "CORESHARD-SETCONFIG", "5", &text]), "+OK\r\n");
    // The file is written off the shard, and the OK comes only once it
    // holds the new epoch.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("node0.conf")).unwrap()).unwrap();
    assert_eq!(file["config"]["epoch"], 5, "{file}");
    let inside = key_in(SlotRange::new(0, 999), "in");
    let outside = key_in(SlotRange::new(1000, 16383), "out");
    assert_eq!(raw(&srv, &["GET", &outside]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(raw(&srv, &["GET", &inside]), "-CLUSTERDOWN The cluster is down\r\n");
    let info = cmd(&mut c, &["CLUSTER", "INFO"]).text();
    assert_eq!(info_field(&info, "cluster_slots_assigned").as_deref(), Some("1000"));
    assert_eq!(info_field(&info, "cluster_current_epoch").as_deref(), Some("5"));
    // The epoch in the command and in the configuration must agree; both grow.
    assert_eq!(
        raw(&srv, &["CLUSTER", "CORESHARD-SETCONFIG", "6", &text]),
        "-ERR config epoch 5 is not newer than the current epoch 6\r\n"
    );
    assert_eq!(
        raw(&srv, &["CLUSTER", "CORESHARD-SETCONFIG", "4", &text]),
        "-ERR config epoch 4 is not newer than the current epoch 5\r\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restarted_node_serves_the_same_map() {
    if reference_run() {
        return;
    }
    let dir = scratch("restart");
    let mut nodes = start_nodes(&dir, 3);
    let config = create(&nodes, 0);
    let before = cmd(&mut nodes[1].client(), &["CLUSTER", "NODES"]).text();
    let port = nodes[1].port;
    drop(nodes.remove(1));
    let args = node_args(&dir, 1);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // The port was this node's a moment ago; another process may take it
    // meanwhile, which is the only way this start can fail.
    let restarted = Server::start_on(port, SHARDS, &refs).expect("restart on the node's own port");
    let mut c = restarted.client();
    assert_eq!(cmd(&mut c, &["CLUSTER", "NODES"]).text(), before);
    assert_eq!(cmd(&mut c, &["CLUSTER", "MYID"]), bulk(config.nodes[1].id.as_str()));
    assert_eq!(info_field(&cmd(&mut c, &["CLUSTER", "INFO"]).text(), "cluster_state").as_deref(), Some("ok"));
    let own = key_in(config.nodes[1].slots[0], "own");
    assert_eq!(cmd(&mut c, &["SET", &own, "1"]), ok());
    let other = key_in(config.nodes[0].slots[0], "other");
    let slot = key_slot(other.as_bytes());
    assert_eq!(raw(&restarted, &["GET", &other]), format!("-MOVED {slot} {}\r\n", nodes[0].addr()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replica_serves_reads_to_readonly_connections() {
    if reference_run() {
        return;
    }
    let dir = scratch("replica");
    let nodes = start_nodes(&dir, 2);
    let config = create(&nodes, 1);
    let (primary, replica) = (&nodes[0], &nodes[1]);
    assert_eq!(config.nodes[1].primary_id(), Some(&config.nodes[0].id));
    let key = key_in(SlotRange::new(0, 16383), "r");
    let slot = key_slot(key.as_bytes());
    assert_eq!(cmd(&mut primary.client(), &["SET", &key, "v1"]), ok());
    let moved = format!("-MOVED {slot} {}\r\n", primary.addr());
    assert_eq!(raw(replica, &["GET", &key]), moved);
    let mut s = replica.raw();
    assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["READONLY"])), b"+OK\r\n");
    assert!(
        wait_until(Duration::from_secs(10), || raw_roundtrip(&mut s, &resp_cmd(&["GET", &key])) == b"$2\r\nv1\r\n"),
        "the replica never served the primary's write"
    );
    // Writes still go to the primary, and READWRITE ends the reads.
    assert_eq!(String::from_utf8(raw_roundtrip(&mut s, &resp_cmd(&["SET", &key, "v2"]))).unwrap(), moved);
    assert_eq!(raw_roundtrip(&mut s, &resp_cmd(&["READWRITE"])), b"+OK\r\n");
    assert_eq!(String::from_utf8(raw_roundtrip(&mut s, &resp_cmd(&["GET", &key]))).unwrap(), moved);
    let roles = cmd(&mut replica.client(), &["CLUSTER", "NODES"]).text();
    assert!(roles.contains(&format!("myself,slave {}", config.nodes[0].id)), "{roles}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_commands_are_refused_outside_cluster_mode() {
    let srv = Server::start(SHARDS);
    let disabled = "-ERR This instance has cluster support disabled\r\n";
    for c in [&["CLUSTER", "INFO"][..], &["CLUSTER", "KEYSLOT", "foo"], &["READONLY"], &["READWRITE"]] {
        assert_eq!(raw(&srv, c), disabled, "{c:?}");
    }
    assert_eq!(cmd(&mut srv.client(), &["INFO", "cluster"]).text(), "# Cluster\r\ncluster_enabled:0\r\n");
    assert_eq!(cmd(&mut srv.client(), &["SELECT", "1"]), ok());
}

/// CLUSTER INFO field `name` of `srv`.
fn cluster_info(srv: &Server, name: &str) -> String {
    info_field(&cmd(&mut srv.client(), &["CLUSTER", "INFO"]).text(), name).unwrap_or_default()
}

/// Checks that `srv` is out of any cluster: it knows only itself, a
/// primary serving no slots, and keys get CLUSTERDOWN.
fn assert_alone(srv: &Server, id: &str, epoch: &str) {
    let mut c = srv.client();
    assert_eq!(cmd(&mut c, &["CLUSTER", "MYID"]), bulk(id));
    assert_eq!(cmd(&mut c, &["CLUSTER", "SLOTS"]), arr(vec![]));
    let nodes = cmd(&mut c, &["CLUSTER", "NODES"]).text();
    assert_eq!(nodes, format!("{id} {}@0 myself,master - 0 0 {epoch} connected\n", srv.addr()));
    assert_eq!(cluster_info(srv, "cluster_known_nodes"), "1");
    assert_eq!(cluster_info(srv, "cluster_slots_assigned"), "0");
    assert_eq!(cluster_info(srv, "cluster_state"), "fail");
    assert_eq!(cluster_info(srv, "cluster_current_epoch"), epoch);
    assert_eq!(raw(srv, &["GET", "k"]), "-CLUSTERDOWN Hash slot not served\r\n");
}

#[test]
fn cluster_reset_refuses_a_primary_with_keys_and_makes_an_empty_one_forget_the_cluster() {
    if reference_run() {
        return;
    }
    let dir = scratch("reset");
    let mut nodes = start_nodes(&dir, 3);
    let config = create(&nodes, 0);

    // A primary holding a key is refused, SOFT or HARD, and keeps its map.
    let key = key_in(config.nodes[0].slots[0], "k");
    assert_eq!(cmd(&mut nodes[0].client(), &["SET", &key, "v"]), ok());
    let refused = "-ERR CLUSTER RESET can't be called with master nodes containing keys\r\n";
    for args in [&["CLUSTER", "RESET"][..], &["CLUSTER", "RESET", "HARD"], &["CLUSTER", "RESET", "soft"]] {
        assert_eq!(raw(&nodes[0], args), refused, "{args:?}");
    }
    assert_eq!(raw(&nodes[0], &["CLUSTER", "RESET", "MEDIUM"]), "-ERR syntax error\r\n");
    assert_eq!(
        raw(&nodes[0], &["CLUSTER", "RESET", "SOFT", "x"]),
        "-ERR unknown subcommand or wrong number of arguments for 'RESET'. Try CLUSTER HELP.\r\n"
    );
    assert_eq!(cluster_info(&nodes[0], "cluster_known_nodes"), "3");
    assert_eq!(cmd(&mut nodes[0].client(), &["GET", &key]), bulk("v"));

    // An empty primary (serving slots, holding no key) resets: SOFT keeps
    // its id and epoch, forgets the others and its slots.
    let soft_id = config.nodes[2].id.to_string();
    assert_eq!(raw(&nodes[2], &["CLUSTER", "RESET"]), "+OK\r\n");
    assert_alone(&nodes[2], &soft_id, "1");
    // HARD takes a new id and goes back to epoch 0.
    let old_id = config.nodes[1].id.to_string();
    assert_eq!(raw(&nodes[1], &["CLUSTER", "RESET", "HARD"]), "+OK\r\n");
    let hard_id = cmd(&mut nodes[1].client(), &["CLUSTER", "MYID"]).text();
    assert_ne!(hard_id, old_id);
    assert!(NodeId::parse(&hard_id).is_ok(), "{hard_id}");
    assert_alone(&nodes[1], &hard_id, "0");
    // A reset node is a primary of its own; the others still list it (no
    // gossip tells them), as Redis's do until CLUSTER FORGET.
    assert!(cmd(&mut nodes[2].client(), &["ROLE"]).items()[0] == bulk("master"));
    assert_eq!(cluster_info(&nodes[0], "cluster_known_nodes"), "3");

    // Both are in the config files: a restart keeps them.
    for (i, id, epoch) in [(1, &hard_id, "0"), (2, &soft_id, "1")] {
        let mut old = nodes.remove(i);
        let port = old.port;
        old.signal(libc::SIGKILL);
        assert!(old.wait_exit(Duration::from_secs(10)).is_some());
        drop(old);
        let args = node_args(&dir, i);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.insert(i, Server::start_on(port, SHARDS, &refs).expect("restart on the node's own port"));
        assert_alone(&nodes[i], id, epoch);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_reset_of_a_replica_stops_replicating_flushes_it_and_makes_it_a_primary() {
    if reference_run() {
        return;
    }
    let dir = scratch("reset-replica");
    let nodes = start_nodes(&dir, 2);
    let config = create(&nodes, 1);
    let (primary, replica) = (&nodes[0], &nodes[1]);
    let mut p = primary.client();
    for i in 0..50 {
        assert_eq!(cmd(&mut p, &["SET", &format!("k{i}"), "v"]), ok());
    }
    assert!(wait_until(Duration::from_secs(10), || cmd(&mut replica.client(), &["DBSIZE"]) == int(50)));
    assert_eq!(info_field(&cmd(&mut p, &["INFO", "replication"]).text(), "connected_slaves").as_deref(), Some("1"));

    // A replica with keys may reset: it answers once flushed.
    let mut r = replica.client();
    assert_eq!(cmd(&mut r, &["CLUSTER", "RESET"]), ok());
    assert_eq!(cmd(&mut r, &["DBSIZE"]), int(0));
    assert_eq!(cmd(&mut r, &["ROLE"]).items()[0], bulk("master"));
    assert_eq!(info_field(&cmd(&mut r, &["INFO", "replication"]).text(), "role").as_deref(), Some("master"));
    assert_alone(replica, config.nodes[1].id.as_str(), "1");

    // Its old primary loses it, and a write there no longer reaches it.
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&cmd(&mut p, &["INFO", "replication"]).text(), "connected_slaves").as_deref() == Some("0")
    }));
    assert_eq!(cmd(&mut p, &["SET", "after", "v"]), ok());
    assert_eq!(cmd(&mut p, &["WAIT", "1", "300"]), int(0));
    assert_eq!(cmd(&mut r, &["DBSIZE"]), int(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replica_reset_whose_client_leaves_before_the_reply_still_flushes_it() {
    if reference_run() {
        return;
    }
    let dir = scratch("reset-replica-gone");
    let nodes = start_nodes(&dir, 2);
    create(&nodes, 1);
    let (primary, replica) = (&nodes[0], &nodes[1]);
    let mut p = primary.client();
    for i in 0..50 {
        assert_eq!(cmd(&mut p, &["SET", &format!("k{i}"), "v"]), ok());
    }
    assert!(wait_until(Duration::from_secs(10), || cmd(&mut replica.client(), &["DBSIZE"]) == int(50)));

    // The reset waits for the config file, which cannot be written while a
    // directory sits where its temporary file goes (the writer retries
    // every 100 ms): the client leaves while it waits.
    let blocker = dir.join(format!("node1.conf.tmp-{}", replica.pid()));
    std::fs::create_dir(&blocker).unwrap();
    let mut s = replica.raw();
    std::io::Write::write_all(&mut s, &resp_cmd(&["CLUSTER", "RESET"])).unwrap();
    // Accepted: CLUSTER INFO shows the reset configuration before it is written.
    assert!(wait_until(Duration::from_secs(10), || cluster_info(replica, "cluster_known_nodes") == "1"));
    drop(s);
    // The write has failed a few times since, long after the close reached the node.
    let failed = || replica.output().matches("can't write the cluster config file").count();
    assert!(wait_until(Duration::from_secs(10), || failed() >= 3), "{}", replica.output());
    assert_eq!(cmd(&mut replica.client(), &["DBSIZE"]), int(50), "not flushed before the reset is in force");
    std::fs::remove_dir(&blocker).unwrap();

    // Once the reset is in force the node is an empty primary of its own.
    assert!(
        wait_until(Duration::from_secs(10), || cmd(&mut replica.client(), &["DBSIZE"]) == int(0)),
        "DBSIZE {:?}",
        cmd(&mut replica.client(), &["DBSIZE"])
    );
    assert_eq!(raw(replica, &["GET", "k1"]), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(cmd(&mut replica.client(), &["ROLE"]).items()[0], bulk("master"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_reset_inside_a_transaction_is_refused_and_changes_nothing() {
    if reference_run() {
        return;
    }
    let dir = scratch("reset-multi");
    let nodes = start_nodes(&dir, 2);
    create(&nodes, 0);
    let mut s = nodes[1].raw();
    let sent =
        [resp_cmd(&["MULTI"]), resp_cmd(&["CLUSTER", "RESET"]), resp_cmd(&["CLUSTER", "MYID"]), resp_cmd(&["EXEC"])]
            .concat();
    let reply = String::from_utf8(raw_roundtrip_n(&mut s, &sent, 4)).unwrap();
    let myid = cmd(&mut nodes[1].client(), &["CLUSTER", "MYID"]).text();
    assert_eq!(
        reply,
        format!(
            "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR CLUSTER RESET is not allowed in a transaction\r\n${}\r\n{myid}\r\n",
            myid.len()
        )
    );
    assert_eq!(cluster_info(&nodes[1], "cluster_known_nodes"), "2");
    assert_eq!(cluster_info(&nodes[1], "cluster_slots_assigned"), "16384");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_key_waits_for_the_first_configuration_being_written_instead_of_clusterdown() {
    if reference_run() {
        return;
    }
    let dir = scratch("pending-first");
    let nodes = start_nodes(&dir, 1);
    let node = &nodes[0];
    let json = alone_at(node, 1);

    // The first configuration is accepted but cannot be written yet (a
    // directory sits where the config file's temporary file goes).
    let blocker = dir.join(format!("node0.conf.tmp-{}", node.pid()));
    std::fs::create_dir(&blocker).unwrap();
    let mut push = node.raw();
    std::io::Write::write_all(&mut push, &resp_cmd(&["CLUSTER", "CORESHARD-SETCONFIG", "1", &json])).unwrap();
    assert!(wait_until(Duration::from_secs(10), || cluster_info(node, "cluster_current_epoch") == "1"));
    // A key meanwhile waits for it, rather than getting CLUSTERDOWN from
    // the empty configuration still in force.
    let mut get = node.raw();
    std::io::Write::write_all(&mut get, &resp_cmd(&["GET", "k"])).unwrap();
    let failed = || node.output().matches("can't write the cluster config file").count();
    assert!(wait_until(Duration::from_secs(10), || failed() >= 3), "{}", node.output());
    get.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 64];
    let early = get.peek(&mut byte);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "answered before the configuration is in force: {:?}",
        early.map(|n| String::from_utf8_lossy(&byte[..n]).into_owned())
    );
    get.set_nonblocking(false).unwrap();
    std::fs::remove_dir(&blocker).unwrap();
    let mut buf = Vec::new();
    read_replies(&mut get, &mut buf, 1).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf), "$-1\r\n");
    buf.clear();
    read_replies(&mut push, &mut buf, 1).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf), "+OK\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A configuration of `srv` alone, serving every slot, at `epoch`.
fn alone_at(srv: &Server, epoch: u64) -> String {
    let id = NodeId::parse(&cmd(&mut srv.client(), &["CLUSTER", "MYID"]).text()).unwrap();
    let mut me = Node::primary(id, "127.0.0.1", srv.port);
    me.slots = vec![SlotRange::new(0, 16383)];
    let mut config = ClusterConfig::solo(me);
    config.epoch = epoch;
    serde_json::to_string(&config).unwrap()
}

#[test]
fn a_node_that_left_at_an_epoch_takes_no_configuration_up_to_it_until_a_hard_reset() {
    if reference_run() {
        return;
    }
    let dir = scratch("left");
    let mut nodes = start_nodes(&dir, 1);
    let node = &nodes[0];
    assert_eq!(raw(node, &["CLUSTER", "CORESHARD-LEFT", "x"]), "-ERR Invalid config epoch specified\r\n");
    assert_eq!(raw(node, &["CLUSTER", "CORESHARD-LEFT", "3"]), "+OK\r\n");
    // A lower mark does not lower it.
    assert_eq!(raw(node, &["CLUSTER", "CORESHARD-LEFT", "1"]), "+OK\r\n");
    let refused = |node: &Server, epoch: &str| {
        let reply = raw(node, &["CLUSTER", "CORESHARD-SETCONFIG", epoch, &alone_at(node, epoch.parse().unwrap())]);
        assert_eq!(
            reply,
            format!(
                "-ERR this node was removed from the cluster at config epoch 3 and takes no configuration up to it \
                 (config epoch {epoch}); CLUSTER RESET HARD gives it a fresh start\r\n"
            )
        );
    };
    refused(node, "2");
    refused(node, "3");
    // The SOFT reset (answered once in the config file) keeps the mark,
    // and so does a restart.
    assert_eq!(raw(node, &["CLUSTER", "RESET", "SOFT"]), "+OK\r\n");
    let port = node.port;
    nodes[0].signal(libc::SIGKILL);
    assert!(nodes[0].wait_exit(Duration::from_secs(10)).is_some());
    nodes.clear();
    let args = node_args(&dir, 0);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    nodes.push(Server::start_on(port, SHARDS, &refs).expect("restart on the node's own port"));
    let node = &nodes[0];
    refused(node, "3");
    assert_eq!(cluster_info(node, "cluster_current_epoch"), "0");
    assert_eq!(raw(node, &["CLUSTER", "CORESHARD-SETCONFIG", "4", &alone_at(node, 4)]), "+OK\r\n");
    assert_eq!(raw(node, &["GET", "k"]), "$-1\r\n");
    // A HARD reset starts the node afresh: new id, epoch 0, no mark.
    assert_eq!(raw(node, &["CLUSTER", "CORESHARD-LEFT", "9"]), "+OK\r\n");
    assert_eq!(raw(node, &["CLUSTER", "RESET", "HARD"]), "+OK\r\n");
    assert_eq!(raw(node, &["CLUSTER", "CORESHARD-SETCONFIG", "1", &alone_at(node, 1)]), "+OK\r\n");
    assert_eq!(cluster_info(node, "cluster_current_epoch"), "1");
    let _ = std::fs::remove_dir_all(&dir);
}
