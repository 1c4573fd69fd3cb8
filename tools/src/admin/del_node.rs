//! `coreshard-admin del-node`: a node leaves a running cluster, as
//! `redis-cli --cluster del-node` does.
//!
//! The change is one `ConfigChange::RemoveNode`, refused for a node that
//! still serves slots (drain it first with `rebalance --weight <id>=0`), a
//! primary that still has replicas, and a voter of the control log (voter
//! changes are not supported). On a cluster whose configuration is pushed,
//! the next epoch goes to every remaining node; on a `--control-log`
//! cluster, the change is proposed through the log. Nothing more is sent to
//! the removed node: coreshard has no command that makes a node forget its
//! cluster (no `CLUSTER RESET`), so it keeps its old map and should be
//! stopped, or restarted with a fresh cluster-config-file.

use super::{NodeConn, parse_addr, propose, push_config};
use crate::add_node::find_node;
use crate::migrate::read_config;
use coreshard_repl::cluster::{ClusterConfig, ConfigChange, Node};
use std::time::Duration;

/// How long the control log may take to commit the change.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// What `del-node` did, as `--json` prints it.
#[derive(serde::Serialize)]
struct Report {
    id: String,
    addr: String,
    role: &'static str,
    epoch: u64,
    control_log: bool,
    push_errors: Vec<String>,
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
                "node {} is a voter of the control log: changing the voters is not supported, so it cannot leave",
                node.id
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
    let report = Report {
        id: node.id.to_string(),
        addr: format!("{}:{}", node.ip, node.port),
        role: if node.is_primary() { "primary" } else { "replica" },
        epoch,
        control_log,
        push_errors,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let via = if control_log { "committed through the control log" } else { "pushed to every remaining node" };
    println!(
        "Removed {} {} ({}); config epoch {epoch} {via}\n\
         The removed node keeps its old map (coreshard has no CLUSTER RESET): stop it, or restart it \
         with a fresh cluster-config-file",
        report.id, report.addr, report.role
    );
    for e in &report.push_errors {
        println!("warning: configuration not pushed: {e}");
    }
    Ok(())
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
