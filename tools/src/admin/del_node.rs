//! `coreshard-admin del-node`: a node leaves a running cluster, as
//! `redis-cli --cluster del-node` does.
//!
//! The change is one `ConfigChange::RemoveNode`, refused for a node that
//! still serves slots (drain it first with `rebalance --weight <id>=0`), a
//! primary that still has replicas, and a voter of the control log (remove
//! it from the voters first: `coreshard-admin voters ... remove`). On a cluster whose configuration is pushed,
//! the next epoch goes to every remaining node; on a `--control-log`
//! cluster, the change is proposed through the log. Then, as `redis-cli
//! --cluster del-node` does, the removed node gets `CLUSTER RESET SOFT`: it
//! forgets the other nodes and serves no slots, and a replica stops
//! replicating and is emptied. Before it, `CLUSTER CORESHARD-LEFT <epoch>`
//! makes the node refuse any configuration up to the removal's epoch (a
//! late push of one that still lists it). A removed node that does not answer is
//! reported (it is likely down: reset it, or give it a fresh
//! cluster-config-file, before it serves again); one that refuses the
//! reset, or a remaining node the configuration did not reach, fails the
//! command, naming them.

use super::{NodeConn, not_pushed, parse_addr, propose, push_config};
use crate::add_node::find_node;
use crate::migrate::read_config;
use coreshard_repl::cluster::{ClusterConfig, ConfigChange, Node};
use std::time::{Duration, Instant};

/// How long the control log may take to commit the change.
const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// How long a drained primary may take to delete the keys of the slots it
/// gave away (a migration's source does it in the background, a slot per
/// loop turn), which CLUSTER RESET requires.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);
/// How often the removed node's key count is read meanwhile.
const CLEANUP_POLL: Duration = Duration::from_millis(20);

/// What `del-node` did, as `--json` prints it.
#[derive(serde::Serialize)]
struct Report {
    id: String,
    addr: String,
    role: &'static str,
    epoch: u64,
    control_log: bool,
    push_errors: Vec<String>,
    /// The removed node took `CLUSTER RESET SOFT`.
    reset: bool,
    /// Why it did not, when it did not.
    reset_error: Option<String>,
}

/// Why `node` cannot leave `config` (pushed or proposed alike), if it cannot.
fn refusal(config: &ClusterConfig, node: &Node) -> Option<String> {
    if !node.slots.is_empty() {
        let count: usize = node.slots.iter().map(|r| (r.end - r.start) as usize + 1).sum();
        return Some(format!(
            "node {} still serves {count} slots: drain it first with `coreshard-admin rebalance {}:{} --weight {}=0`",
            node.id, node.ip, node.port, node.id
        ));
    }
    let replicas = config.replicas_of(&node.id).count();
    if replicas > 0 {
        return Some(format!(
            "node {} is a primary with {replicas} replica(s): delete them or re-point them at another primary first",
            node.id
        ));
    }
    None
}

/// `coreshard-admin del-node EXISTING NODE [--json]`.
pub(crate) fn run(existing: &str, which: &str, json: bool) -> Result<(), String> {
    let (host, port) = parse_addr(existing)?;
    let mut entry = NodeConn::open(&host, port)?;
    let config = read_config(&mut entry)?;
    if config.epoch == 0 {
        return Err(format!("{existing} is not part of a cluster (config epoch 0)"));
    }
    let node = find_node(&config, which)?.clone();
    let control_log = crate::migrate::uses_control_log(&config)?;
    // Before the slots: draining a voter would not let it leave.
    if control_log {
        // Only the node itself says whether it is a voter.
        let log = NodeConn::open(&node.ip, node.port)
            .and_then(|mut c| c.query::<String>(&["CLUSTER", "CORESHARD-LOG"]))
            .map_err(|e| format!("cannot ask node {} whether it is a control log voter: {e}", node.id))?;
        if !log.starts_with("voter:none") {
            return Err(format!(
                "node {} is a member of the control log: remove it from the voters first \
                 (`coreshard-admin voters {existing} remove {}`)",
                node.id, node.id
            ));
        }
    }
    if let Some(why) = refusal(&config, &node) {
        return Err(why);
    }
    let change = ConfigChange::RemoveNode(node.id.clone());
    // Checked here first, so that nothing is changed for a change the nodes would refuse.
    let next = config.apply(config.epoch + 1, &change).map_err(|e| format!("{which} cannot leave the cluster: {e}"))?;
    let mut push_errors = Vec::new();
    let epoch = if control_log {
        match propose(&mut entry, &change, COMMIT_WAIT) {
            Ok(epoch) => epoch,
            // A retry after a lost answer finds the node removed by the first try.
            Err(e) if e.contains("unknown node") || e.contains("no node") => {
                let now = read_config(&mut entry)?;
                if now.node(&node.id).is_some() {
                    return Err(e);
                }
                now.epoch
            }
            Err(e) => return Err(e),
        }
    } else {
        push_errors = push_config(&next, &next.nodes)?;
        next.epoch
    };
    // The others dropped it (those that did not are reported): it may forget them.
    let (reset, reset_error, refused) = match reset_node(&node, epoch) {
        Ok(()) => (true, None, false),
        Err((e, refused)) => (false, Some(e), refused),
    };
    let report = Report {
        id: node.id.to_string(),
        addr: format!("{}:{}", node.ip, node.port),
        role: if node.is_primary() { "primary" } else { "replica" },
        epoch,
        control_log,
        push_errors,
        reset,
        reset_error,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print_report(&report);
    }
    if !report.push_errors.is_empty() {
        return Err(not_pushed(epoch, &report.push_errors, existing));
    }
    if refused {
        return Err(format!(
            "node {} was removed from the cluster but refused CLUSTER RESET SOFT: {}",
            report.id,
            report.reset_error.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// Sends `CLUSTER RESET SOFT` to the removed node; the error, and whether
/// the node answered it (a refusal) rather than not answering. A primary
/// must hold no keys: a drained one may still be deleting those of the
/// slots it gave away, which it is given [`CLEANUP_WAIT`] for.
///
/// First, `CLUSTER CORESHARD-LEFT <epoch>` (the removal's epoch): the node
/// takes no configuration up to it any more, so a push of an older one
/// still on its way (the control log's leader pushes until a node has the
/// newest epoch it knows) cannot bring the reset node back.
fn reset_node(node: &Node, removed_at: u64) -> Result<(), (String, bool)> {
    let mut conn = NodeConn::open(&node.ip, node.port).map_err(|e| (e, false))?;
    let answered = |e: &redis::RedisError| !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped());
    if let Err(e) = redis::cmd("CLUSTER").arg("CORESHARD-LEFT").arg(removed_at).query::<String>(&mut conn.con) {
        return Err((format!("{} (CLUSTER CORESHARD-LEFT {removed_at}): {e}", conn.addr), answered(&e)));
    }
    let deadline = Instant::now() + CLEANUP_WAIT;
    while node.is_primary() {
        let keys: i64 = conn.query(&["DBSIZE"]).map_err(|e| (e, false))?;
        if keys == 0 {
            break;
        }
        if Instant::now() > deadline {
            let e = format!("{} still holds {keys} keys after {}s", conn.addr, CLEANUP_WAIT.as_secs());
            return Err((e, true));
        }
        std::thread::sleep(CLEANUP_POLL);
    }
    match redis::cmd("CLUSTER").arg("RESET").arg("SOFT").query::<String>(&mut conn.con) {
        Ok(_) => Ok(()),
        Err(e) => Err((format!("{} (CLUSTER RESET SOFT): {e}", conn.addr), answered(&e))),
    }
}

/// del-node's text output.
fn print_report(report: &Report) {
    let epoch = report.epoch;
    let via = match (report.control_log, report.push_errors.is_empty()) {
        (true, _) => "committed through the control log",
        (false, true) => "pushed to every remaining node",
        (false, false) => "pushed to the remaining nodes that answered",
    };
    println!("Removed {} {} ({}); config epoch {epoch} {via}", report.id, report.addr, report.role);
    match &report.reset_error {
        None => println!(
            "Reset {} (CLUSTER RESET SOFT): it serves no slots and knows no other node{}",
            report.addr,
            if report.role == "replica" { ", and no longer replicates (its data was flushed)" } else { "" }
        ),
        Some(e) => println!(
            "warning: {} was not reset ({e}): before it serves again, run CLUSTER RESET on it or restart it \
             with a fresh cluster-config-file",
            report.addr
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreshard_repl::cluster::{NodeId, Role, SlotRange};

    fn id(n: u8) -> NodeId {
        NodeId::parse(&format!("{n:02x}{}", "0".repeat(38))).unwrap()
    }

    #[test]
    fn nodes_with_slots_or_replicas_are_refused() {
        let mut serving = Node::primary(id(1), "127.0.0.1", 7000);
        serving.slots = vec![SlotRange { start: 0, end: 16383 }];
        let replica = Node { role: Role::Replica { of: id(2) }, ..Node::primary(id(3), "127.0.0.1", 7002) };
        let config = ClusterConfig {
            epoch: 3,
            nodes: vec![
                serving,
                Node::primary(id(2), "127.0.0.1", 7001),
                replica,
                Node::primary(id(4), "127.0.0.1", 7003),
            ],
            migrations: Vec::new(),
        };
        let why = refusal(&config, &config.nodes[0]).unwrap();
        assert!(why.contains("16384 slots") && why.contains("--weight"), "{why}");
        let why = refusal(&config, &config.nodes[1]).unwrap();
        assert!(why.contains("1 replica"), "{why}");
        assert_eq!(refusal(&config, &config.nodes[2]), None);
        assert_eq!(refusal(&config, &config.nodes[3]), None);
        // What is not refused, the configuration accepts.
        for n in &config.nodes[2..] {
            let next = config.apply(4, &ConfigChange::RemoveNode(n.id.clone())).unwrap();
            assert!(next.node(&n.id).is_none());
            assert_eq!(next.nodes.len(), 3);
        }
    }
}
