//! `coreshard-admin voters`: lists and changes the voters of a cluster's
//! control log (docs/decisions/0006-control-log.md).
//!
//! ```text
//! coreshard-admin voters ANY:PORT                 # id, node, address, role, leader
//! coreshard-admin voters ANY:PORT add NODE        # a learner first, then a voter
//! coreshard-admin voters ANY:PORT remove NODE     # a voter (dead or alive) or a learner
//! ```
//!
//! NODE is a node id, a unique prefix of one, or HOST:PORT of a member of
//! the cluster's map. `add` asks NODE for its `cluster-port` and sends
//! `CLUSTER CORESHARD-LOG-ADD <node-id> <ip:cluster-port>` to the node
//! given, which passes it to the log's leader; the leader adds NODE as a
//! learner, waits until it holds the log, and promotes it. `remove` sends
//! `CLUSTER CORESHARD-LOG-REMOVE <node-id>` the same way. One change at a
//! time: a change asked while another is pending is refused, with why.

use super::{NodeConn, parse_addr};
use crate::add_node::find_node;
use crate::migrate::read_config;
use std::time::Duration;

/// How long a change may take: the leader's catching up of a new member
/// (coreshard's `CATCH_UP_WAIT_MS`, 20 s), two commits, and passing on.
const CHANGE_WAIT: Duration = Duration::from_secs(60);

/// One member as `voters` reports it.
#[derive(serde::Serialize, Debug, PartialEq)]
struct Member {
    id: u64,
    node: String,
    addr: String,
    role: String,
    leader: bool,
}

/// What a change did, as `--json` prints it.
#[derive(serde::Serialize)]
struct ChangeReport {
    action: String,
    node: String,
    result: String,
    members: Vec<Member>,
}

/// Reads `CLUSTER CORESHARD-LOG-VOTERS` lines: `<id> <node> <addr> <role> [leader]`.
fn parse_members(text: &str) -> Vec<Member> {
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if parts.len() < 4 {
                return None;
            }
            Some(Member {
                id: parts[0].parse().ok()?,
                node: parts[1].to_string(),
                addr: parts[2].to_string(),
                role: parts[3].to_string(),
                leader: parts.get(4) == Some(&"leader"),
            })
        })
        .collect()
}

/// How long `members` waits for a node of the map to answer before it
/// asks the next: a node that does not answer (stopped, hung) is asked
/// again with the full `NODE_TIMEOUT` only if no other node answers.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The members as a member of the log sees them: `entry` if it is one,
/// else the first node of the map that answers as one (those that answer
/// promptly first).
fn members(entry: &mut NodeConn) -> Result<Vec<Member>, String> {
    match entry.query::<String>(&["CLUSTER", "CORESHARD-LOG-VOTERS"]) {
        Ok(text) => return Ok(parse_members(&text)),
        Err(e) if !e.contains("not a member") => return Err(e),
        Err(_) => {}
    }
    let config = read_config(entry)?;
    let mut last = format!("{}: not a member of the control log, and no node of its map is one", entry.addr);
    let ask = |n: &coreshard_repl::cluster::Node, timeout: Duration| {
        NodeConn::open_within(&n.ip, n.port, timeout)
            .and_then(|mut c| c.query::<String>(&["CLUSTER", "CORESHARD-LOG-VOTERS"]))
    };
    let mut slow = Vec::new();
    for n in &config.nodes {
        match ask(n, PROBE_TIMEOUT) {
            Ok(text) => return Ok(parse_members(&text)),
            Err(e) if e.contains("not a member") => {}
            Err(e) => {
                last = e;
                slow.push(n);
            }
        }
    }
    for n in slow {
        match ask(n, super::NODE_TIMEOUT) {
            Ok(text) => return Ok(parse_members(&text)),
            Err(e) if e.contains("not a member") => {}
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn print_members(members: &[Member]) {
    println!("{:<4} {:<40} {:<21} {:<8} LEADER", "ID", "NODE", "CONTROL ADDRESS", "ROLE");
    for m in members {
        println!("{:<4} {:<40} {:<21} {:<8} {}", m.id, m.node, m.addr, m.role, if m.leader { "yes" } else { "" });
    }
}

/// `coreshard-admin voters HOST:PORT [add NODE | remove NODE] [--json]`.
pub(crate) fn run(addr: &str, change: Option<(&str, &str)>, json: bool) -> Result<(), String> {
    let (host, port) = parse_addr(addr)?;
    let mut entry = NodeConn::open(&host, port)?;
    let Some((action, which)) = change else {
        let members = members(&mut entry)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&members).map_err(|e| e.to_string())?);
        } else {
            print_members(&members);
        }
        return Ok(());
    };
    let config = read_config(&mut entry)?;
    let node = find_node(&config, which)?.clone();
    let id = node.id.to_string();
    let result: String = match action {
        "add" => {
            // The control address: the node's cluster-port (default the
            // client port + 10000) on the address the map gives it.
            let mut target =
                NodeConn::open(&node.ip, node.port).map_err(|e| format!("node {id} must answer to be added: {e}"))?;
            let cluster_port = target.config_get("cluster-port")?.parse::<u16>().unwrap_or(0);
            let cluster_port = if cluster_port == 0 { node.port.wrapping_add(10000) } else { cluster_port };
            let control = if node.ip.contains(':') {
                format!("[{}]:{cluster_port}", node.ip)
            } else {
                format!("{}:{cluster_port}", node.ip)
            };
            entry.set_timeout(CHANGE_WAIT)?;
            entry.query(&["CLUSTER", "CORESHARD-LOG-ADD", &id, &control])?
        }
        "remove" => {
            entry.set_timeout(CHANGE_WAIT)?;
            entry.query(&["CLUSTER", "CORESHARD-LOG-REMOVE", &id])?
        }
        other => return Err(format!("unknown voters action '{other}' (add or remove)")),
    };
    let members = members(&mut entry).unwrap_or_default();
    if json {
        let report = ChangeReport { action: action.to_string(), node: id, result, members };
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        println!("{result}");
        print_members(&members);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lines_parse() {
        let text = "1 0000000000000000000000000000000000000001 127.0.0.1:17001 voter leader\r\n\
                    4 0000000000000000000000000000000000000004 127.0.0.1:17004 learner\r\nbad\r\n";
        let members = parse_members(text);
        assert_eq!(members.len(), 2);
        assert!(members[0].leader && members[0].role == "voter");
        assert!(!members[1].leader && members[1].role == "learner" && members[1].id == 4);
    }
}
