//! `coreshard-admin fix`: repairs a cluster whose configuration is pushed
//! after a push that did not reach every node (add-node, del-node or a
//! migration that reported the nodes it missed). It asks every member for
//! the configuration it has, following the members of any newer one it
//! finds, and pushes the newest to each member of it that has an older one.
//! A cluster whose configuration is in a control log needs no such repair:
//! its leader pushes each commit to the nodes outside the voters until they
//! have it, so `fix` refuses it.

use super::{NodeConn, not_pushed, parse_addr, push_config};
use crate::migrate::read_config;
use coreshard_repl::cluster::{ClusterConfig, Node};

/// What `fix` did, as `--json` prints it.
#[derive(serde::Serialize)]
struct Report {
    /// The newest configuration's epoch.
    epoch: u64,
    /// Members that had it already.
    up_to_date: Vec<String>,
    /// Members it was pushed to.
    pushed: Vec<Pushed>,
    /// Members it could not be pushed to, naming them.
    push_errors: Vec<String>,
}

/// A member the newest configuration was pushed to.
#[derive(serde::Serialize)]
struct Pushed {
    addr: String,
    /// The epoch it had (None: it did not answer).
    had_epoch: Option<u64>,
}

/// `coreshard-admin fix HOST:PORT [--json]`.
pub(crate) fn run(any: &str, json: bool) -> Result<(), String> {
    let (host, port) = parse_addr(any)?;
    let mut entry = NodeConn::open(&host, port)?;
    let first = read_config(&mut entry)?;
    if first.epoch == 0 {
        return Err(format!("{any} is not part of a cluster (config epoch 0)"));
    }
    if crate::migrate::uses_control_log(&first)? {
        return Err("this cluster keeps its configuration in a control log: its leader pushes every commit to the \
             nodes outside the voters until they have it, so there is nothing to push by hand"
            .into());
    }
    // Each member's epoch (None: it did not answer), and the newest configuration seen.
    let mut seen: Vec<(Node, Option<u64>)> = Vec::new();
    let mut newest = first;
    let mut queue: Vec<Node> = newest.nodes.clone();
    while let Some(n) = queue.pop() {
        if seen.iter().any(|(s, _)| s.id == n.id) {
            continue;
        }
        let config = NodeConn::open(&n.ip, n.port).and_then(|mut c| read_config(&mut c)).ok();
        let epoch = config.as_ref().map(|c| c.epoch);
        if let Some(c) = config.filter(|c| c.epoch > newest.epoch && c.node(&n.id).is_some()) {
            queue.extend(c.nodes.iter().cloned());
            newest = c;
        }
        seen.push((n, epoch));
    }
    let behind: Vec<&Node> = newest
        .nodes
        .iter()
        .filter(|n| seen.iter().find(|(s, _)| s.id == n.id).is_none_or(|(_, e)| e.is_none_or(|e| e < newest.epoch)))
        .collect();
    let push_errors = push_config(&newest, behind.iter().copied())?;
    let report = report(&newest, &seen, &behind, push_errors);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else if report.pushed.is_empty() && report.push_errors.is_empty() {
        println!("Every node has config epoch {}: nothing to fix", report.epoch);
    } else {
        for p in &report.pushed {
            let had = p.had_epoch.map_or("no answer".to_string(), |e| format!("epoch {e}"));
            println!("Pushed config epoch {} to {} (it had {had})", report.epoch, p.addr);
        }
    }
    if !report.push_errors.is_empty() {
        return Err(not_pushed(report.epoch, &report.push_errors, any));
    }
    Ok(())
}

fn report(newest: &ClusterConfig, seen: &[(Node, Option<u64>)], behind: &[&Node], push_errors: Vec<String>) -> Report {
    let addr = |n: &Node| format!("{}:{}", n.ip, n.port);
    let had = |n: &Node| seen.iter().find(|(s, _)| s.id == n.id).and_then(|(_, e)| *e);
    let failed = |n: &Node| push_errors.iter().any(|e| e.starts_with(&format!("node {} ", n.id)));
    Report {
        epoch: newest.epoch,
        up_to_date: newest.nodes.iter().filter(|n| !behind.iter().any(|b| b.id == n.id)).map(addr).collect(),
        pushed: behind.iter().filter(|n| !failed(n)).map(|n| Pushed { addr: addr(n), had_epoch: had(n) }).collect(),
        push_errors,
    }
}
