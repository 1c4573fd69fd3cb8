//! `coreshard-admin add-node`: a fresh node joins a running cluster, as a
//! primary with no slots (for `rebalance --use-empty-primaries` to fill)
//! or as a replica of a primary, as `redis-cli --cluster add-node` does.
//!
//! The change is one `ConfigChange::AddNode`. On a cluster whose
//! configuration is pushed, the next epoch goes to every node, the new one
//! first (so that it knows the cluster before any node advertises it). On a
//! cluster made with `--control-log`, the change is proposed through the
//! log, and the leader pushes the committed configuration to the new node
//! as to every other node outside the voters; this tool waits until the new
//! node has it.

use super::{CONTROL_LOG_RETRY, NodeConn, field, fresh, not_pushed, parse_addr, propose, push_config};
use crate::migrate::read_config;
use coreshard_repl::cluster::{ClusterConfig, ConfigChange, Node, Role};
use std::time::{Duration, Instant};

/// How long the control log may take to commit the change and its leader
/// to push it to the new node, and a new replica to finish its first sync.
const JOIN_WAIT: Duration = Duration::from_secs(30);

/// What `add-node` did, as `--json` prints it.
#[derive(serde::Serialize)]
struct Report {
    id: String,
    addr: String,
    role: &'static str,
    primary: Option<String>,
    epoch: u64,
    control_log: bool,
    /// For a replica: whether its link to the primary was up when this tool finished.
    replica_link_up: Option<bool>,
    push_errors: Vec<String>,
}

/// Finds the node `text` names in `config`: a node id, a unique prefix of
/// one (as redis-cli accepts), or the HOST:PORT the configuration lists.
pub(crate) fn find_node<'a>(config: &'a ClusterConfig, text: &str) -> Result<&'a Node, String> {
    if let Ok((host, port)) = parse_addr(text)
        && let Some(n) = config.nodes.iter().find(|n| n.port == port && n.ip.eq_ignore_ascii_case(&host))
    {
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase();
    let matches: Vec<&Node> = config.nodes.iter().filter(|n| n.id.as_str().starts_with(&lower)).collect();
    match matches.as_slice() {
        [n] if !lower.is_empty() => Ok(n),
        [] | [_] => Err(format!("no node of the cluster is '{text}' (a node id, a prefix of one, or HOST:PORT)")),
        _ => Err(format!("'{text}' is the prefix of {} node ids: give more of it", matches.len())),
    }
}

/// The config epoch `conn`'s node is at (0 when it cannot say).
fn epoch_of(conn: &mut NodeConn) -> u64 {
    let info: String = conn.query(&["CLUSTER", "INFO"]).unwrap_or_default();
    field(&info, "cluster_current_epoch").and_then(|e| e.parse().ok()).unwrap_or(0)
}

/// `coreshard-admin add-node NEW EXISTING [--replica-of NODE] [--json]`.
pub(crate) fn run(new: &str, existing: &str, replica_of: Option<&str>, json: bool) -> Result<(), String> {
    let (host, port) = parse_addr(existing)?;
    let mut entry = NodeConn::open(&host, port)?;
    let config = read_config(&mut entry)?;
    if config.epoch == 0 {
        return Err(format!("{existing} is not part of a cluster yet (config epoch 0): make one with `create`"));
    }
    // Before the freshness checks, which would call a member "part of a cluster".
    if let Ok((h, p)) = parse_addr(new)
        && let Ok(mut c) = NodeConn::open(&h, p)
        && let Ok(id) = c.query::<String>(&["CLUSTER", "MYID"])
        && config.nodes.iter().any(|n| n.id.as_str() == id)
    {
        return Err(format!("{new} (node {id}) is already a member of this cluster"));
    }
    let mut joining = fresh(new, config.epoch + 1)?;
    let role = match replica_of {
        None => Role::Primary,
        Some(text) => {
            let primary = find_node(&config, text)?;
            if !primary.is_primary() {
                return Err(format!("{text} is a replica: --replica-of names a primary"));
            }
            Role::Replica { of: primary.id.clone() }
        }
    };
    let node = Node { id: joining.id.clone(), ip: joining.ip.clone(), port: joining.port, role, slots: Vec::new() };
    let change = ConfigChange::AddNode(node.clone());
    // Checked here first, so that nothing is changed for a change the nodes would refuse.
    let next =
        config.apply(config.epoch + 1, &change).map_err(|e| format!("{new} cannot join {existing}'s cluster: {e}"))?;
    let primary: Option<&Node> = node.primary_id().and_then(|p| next.node(p));
    let control_log = crate::migrate::uses_control_log(&config)?;
    let mut push_errors = Vec::new();
    let epoch = if control_log {
        let epoch = match propose(&mut entry, &change, JOIN_WAIT) {
            Ok(epoch) => epoch,
            // A retry after a lost answer finds the node added by the first try.
            Err(e) if e.contains("appears twice") => {
                if read_config(&mut entry)?.node(&node.id).is_none() {
                    return Err(e);
                }
                0
            }
            Err(e) => return Err(e),
        };
        // The leader pushes the committed configuration to the new node.
        let deadline = Instant::now() + JOIN_WAIT;
        loop {
            let at = epoch_of(&mut joining.conn);
            if at > 0 && at >= epoch {
                break at;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {} was added (config epoch {epoch}) but {} did not receive the configuration from \
                     the control log's leader within {}s: check that the leader can reach it",
                    node.id,
                    joining.conn.addr,
                    JOIN_WAIT.as_secs()
                ));
            }
            std::thread::sleep(CONTROL_LOG_RETRY);
        }
    } else {
        let text = serde_json::to_string(&next).map_err(|e| e.to_string())?;
        let epoch = next.epoch.to_string();
        // The new node first: it must know the cluster before others list it.
        let _: String = joining.conn.query(&["CLUSTER", "CORESHARD-SETCONFIG", &epoch, &text])?;
        push_errors = push_config(&next, next.nodes.iter().filter(|n| n.id != node.id))?;
        next.epoch
    };
    if let Some(p) = primary {
        // Installing the configuration made it follow its primary already;
        // told only now, so that a failed join leaves the node as it was.
        // REPLICAOF of the primary it follows changes nothing.
        let reply: String = joining.conn.query(&["REPLICAOF", &p.ip, &p.port.to_string()])?;
        if !reply.starts_with("OK") {
            return Err(format!("{}: REPLICAOF answered {reply}", joining.conn.addr));
        }
    }
    let replica_link_up = primary.map(|_| {
        let deadline = Instant::now() + JOIN_WAIT;
        loop {
            let up = joining.conn.info_field("replication", "master_link_status").ok().flatten();
            if up.as_deref() == Some("up") {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(CONTROL_LOG_RETRY);
        }
    });
    let report = Report {
        id: node.id.to_string(),
        addr: format!("{}:{}", node.ip, node.port),
        role: if primary.is_some() { "replica" } else { "primary" },
        primary: primary.map(|p| p.id.to_string()),
        epoch,
        control_log,
        replica_link_up,
        push_errors,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print_report(&report, primary);
    }
    if !report.push_errors.is_empty() {
        return Err(not_pushed(epoch, &report.push_errors, existing));
    }
    Ok(())
}

/// add-node's text output.
fn print_report(report: &Report, primary: Option<&Node>) {
    let (epoch, control_log) = (report.epoch, report.control_log);
    let via = match (control_log, report.push_errors.is_empty()) {
        (true, _) => "committed through the control log",
        (false, true) => "pushed to every node",
        (false, false) => "pushed to the nodes that answered",
    };
    match primary {
        Some(p) => println!(
            "Added {} {} as a replica of {} {}:{}; config epoch {epoch} {via}",
            report.id, report.addr, p.id, p.ip, p.port
        ),
        None => println!(
            "Added {} {} as a primary with no slots; config epoch {epoch} {via}\n\
             Give it slots with `coreshard-admin rebalance {} --use-empty-primaries`",
            report.id, report.addr, report.addr
        ),
    }
    if report.replica_link_up == Some(false) {
        println!("warning: the replica's link to its primary is not up yet (INFO replication)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreshard_repl::cluster::NodeId;

    fn id(n: u8) -> NodeId {
        NodeId::parse(&format!("{n:02x}{}", "0".repeat(38))).unwrap()
    }

    #[test]
    fn nodes_are_found_by_id_prefix_and_address() {
        let config = ClusterConfig {
            epoch: 1,
            nodes: vec![
                Node::primary(id(0xa1), "127.0.0.1", 7000),
                Node::primary(id(0xa2), "127.0.0.1", 7001),
                Node::primary(id(0xb0), "10.0.0.1", 7000),
            ],
            migrations: Vec::new(),
        };
        assert_eq!(find_node(&config, "127.0.0.1:7001").unwrap().id, id(0xa2));
        assert_eq!(find_node(&config, "10.0.0.1:7000").unwrap().id, id(0xb0));
        assert_eq!(find_node(&config, id(0xa1).as_str()).unwrap().id, id(0xa1));
        assert_eq!(find_node(&config, "B").unwrap().id, id(0xb0));
        assert!(find_node(&config, "a").unwrap_err().contains("prefix of 2"));
        assert!(find_node(&config, "c").is_err());
        assert!(find_node(&config, "").is_err());
        assert!(find_node(&config, "127.0.0.1:7002").is_err());
    }
}
