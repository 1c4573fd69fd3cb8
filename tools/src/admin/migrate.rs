//! `coreshard-admin migrate`: drives one online slot migration
//! (docs/decisions/0005-migration.md). The nodes do the work; this tool
//! starts the target's pull, waits until the target is close behind, asks
//! the source to switch, and pushes the new configuration to every node,
//! or, on a cluster configured through the control log, has the source
//! propose the switch to the log (which then reaches every node).

use super::{CONTROL_LOG_RETRY, NodeConn, field, parse_addr, parse_nodes_line};
use coreshard_repl::cluster::{ClusterConfig, ConfigChange, Node, NodeId, Role, SlotRange};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the progress is read.
const POLL_MS: u64 = 50;
/// How long a source on a control-log cluster may take to learn of a
/// target that the log added just before (a voter applies a committed
/// change a heartbeat or more after the leader).
const KNOW_TARGET_WAIT: Duration = Duration::from_secs(10);
/// `--max-lag-bytes`'s default: journal bytes the target may be behind
/// when the switch begins.
pub(crate) const MAX_LAG_BYTES: u64 = 65_536;

/// What to move where.
pub(crate) struct Plan {
    pub from: String,
    pub to: String,
    pub source_addr: Option<String>,
    pub slots: String,
    pub max_pause_ms: u64,
    pub max_lag_bytes: u64,
    pub timeout_s: u64,
    pub json: bool,
}

/// The migration's progress as the source reports it.
#[derive(Debug, Default, serde::Serialize)]
struct Progress {
    state: String,
    keys: u64,
    bytes: u64,
    lag_bytes: u64,
    pause_us: u64,
    reason: String,
}

fn progress(conn: &mut NodeConn) -> Result<Progress, String> {
    let text: String = conn.query(&["CLUSTER", "CORESHARD-MIGRATE", "STATUS"])?;
    let num = |n: &str| field(&text, n).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Progress {
        state: field(&text, "migration_state").unwrap_or_default(),
        keys: num("migration_keys"),
        bytes: num("migration_bytes"),
        lag_bytes: num("migration_lag_bytes"),
        pause_us: num("migration_pause_us"),
        reason: field(&text, "migration_reason").unwrap_or_default(),
    })
}

/// True when the cluster commits its configuration through the control
/// log (some primary that answers is a voter of it): the switch must then
/// be a committed change, proposed by the source, not a pushed epoch.
pub(crate) fn uses_control_log(config: &ClusterConfig) -> Result<bool, String> {
    for node in config.nodes.iter().filter(|n| matches!(n.role, Role::Primary)) {
        let Ok(mut conn) = NodeConn::open(&node.ip, node.port) else { continue };
        let Ok(log) = conn.query::<String>(&["CLUSTER", "CORESHARD-LOG"]) else { continue };
        if !log.starts_with("voter:none") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Wall-clock microseconds since the Unix epoch (0 before it), for the
/// `--json` timestamps that a load client lines its requests up with.
fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Parses `LO-HI` or `SLOT`.
fn parse_slots(text: &str) -> Result<SlotRange, String> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let lo: u16 = lo.trim().parse().map_err(|_| format!("'{text}' is not LO-HI"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("'{text}' is not LO-HI"))?;
    if lo > hi || hi >= 16384 {
        return Err(format!("'{text}' is not a slot range (0..=16383, LO <= HI)"));
    }
    Ok(SlotRange::new(lo, hi))
}

/// The configuration as `node` sees it.
pub(crate) fn read_config(conn: &mut NodeConn) -> Result<ClusterConfig, String> {
    let nodes_text: String = conn.query(&["CLUSTER", "NODES"])?;
    let info: String = conn.query(&["CLUSTER", "INFO"])?;
    let epoch: u64 = field(&info, "cluster_current_epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
    let mut nodes = Vec::new();
    for report in nodes_text.lines().filter_map(parse_nodes_line) {
        let id = NodeId::parse(&report.id).map_err(|e| e.to_string())?;
        let (ip, port) = parse_addr(&report.addr)?;
        let role = match &report.primary {
            Some(p) => Role::Replica { of: NodeId::parse(p).map_err(|e| e.to_string())? },
            None => Role::Primary,
        };
        let mut slots = Vec::new();
        for s in &report.slots {
            slots.push(parse_slots(s)?);
        }
        nodes.push(Node { id, ip, port, role, slots });
    }
    Ok(ClusterConfig { epoch, nodes, migrations: Vec::new() })
}

/// What one finished migration did.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Outcome {
    /// The slots moved, as LO-HI.
    pub slots: String,
    pub from: String,
    pub to: String,
    /// The configuration epoch of the switch.
    pub epoch: u64,
    pub keys: u64,
    pub bytes: u64,
    /// How long the source held writes to the slots at the switch.
    pub pause_us: u64,
    pub seconds: f64,
    /// Wall clock (µs since the Unix epoch): the start, when the accepted
    /// CUTOVER was sent (the hold then lasts `pause_us`), when this tool
    /// saw the switch done (polled every 50 ms) and when every node had the
    /// new configuration, for a load client to line its requests up with.
    pub started_unix_us: u64,
    pub cutover_unix_us: u64,
    pub done_unix_us: u64,
    pub finished_unix_us: u64,
    /// Nodes the new configuration could not be pushed to.
    pub push_errors: Vec<String>,
}

/// `coreshard-admin migrate`: one migration, reported on stdout.
pub(crate) fn run(plan: &Plan) -> Result<(), String> {
    let done = execute(plan)?;
    if plan.json {
        println!("{}", serde_json::to_string(&done).map_err(|e| e.to_string())?);
    } else {
        println!(
            "Migrated slots {} from {} to {}: {} keys, {} bytes in {:.2}s; writes held {} µs; config epoch {}",
            done.slots, done.from, done.to, done.keys, done.bytes, done.seconds, done.pause_us, done.epoch
        );
        for e in &done.push_errors {
            println!("warning: configuration not pushed: {e}");
        }
    }
    Ok(())
}

/// Runs one migration to its end (with a progress line on stderr unless
/// `plan.json`); an error says whether ownership changed.
pub(crate) fn execute(plan: &Plan) -> Result<Outcome, String> {
    let range = parse_slots(&plan.slots)?;
    let (from_host, from_port) = parse_addr(&plan.from)?;
    let (to_host, to_port) = parse_addr(&plan.to)?;
    let mut source = NodeConn::open(&from_host, from_port)?;
    let mut target = NodeConn::open(&to_host, to_port)?;
    let mut config = read_config(&mut source)?;
    let via_log = uses_control_log(&config)?;
    // The migration's id in the control log: whichever of its switch and
    // its cancellation commits first decides it.
    let random = coreshard_net::repl::random_id();
    let migration_id = u64::from_str_radix(random.get(..16).unwrap_or("1"), 16).unwrap_or(1).max(1).to_string();
    let source_id: String = source.query(&["CLUSTER", "MYID"])?;
    let target_id: String = target.query(&["CLUSTER", "MYID"])?;
    let target_id = NodeId::parse(&target_id).map_err(|e| e.to_string())?;
    let target_text = target_id.as_str().to_string();
    if via_log {
        // A target just added through the log (add-node, then rebalance)
        // may not be in the source's configuration yet.
        let deadline = Instant::now() + KNOW_TARGET_WAIT;
        while config.node(&target_id).is_none() && Instant::now() < deadline {
            std::thread::sleep(CONTROL_LOG_RETRY);
            config = read_config(&mut source)?;
        }
    }
    let owners = config.slot_owners();
    for slot in range.start..=range.end {
        let owner = owners.get(slot as usize).copied().flatten().map(|i| config.nodes[i].id.as_str().to_string());
        if owner.as_deref() != Some(source_id.as_str()) {
            return Err(format!("slot {slot} is not served by {} (the source)", plan.from));
        }
    }
    let change = ConfigChange::AssignSlots { node: target_id, ranges: vec![range] };
    let next = config.apply(config.epoch + 1, &change).map_err(|e| format!("the new configuration is invalid: {e}"))?;
    let text = serde_json::to_string(&next).map_err(|e| e.to_string())?;
    let (lo, hi) = (range.start.to_string(), range.end.to_string());
    let started = Instant::now();
    let started_unix_us = unix_us();
    let deadline = started + Duration::from_secs(plan.timeout_s);
    let (pull_host, pull_port) = match &plan.source_addr {
        Some(a) => parse_addr(a)?,
        None => (from_host.clone(), from_port),
    };
    let port = pull_port.to_string();
    let mut pull = vec!["CLUSTER", "CORESHARD-MIGRATE", "PULL", &pull_host, &port, &lo, &hi];
    if via_log {
        // The target keeps or drops what it receives by the log's outcome.
        pull.push(&migration_id);
    }
    let _: String = target.query(&pull)?;
    let fail = |source: &mut NodeConn, target: &mut NodeConn, why: String| -> Result<Outcome, String> {
        // The target drops what it received only once the source says the
        // migration is aborted: a source that switched (or cannot be asked)
        // may have left the only copy of the slots' latest writes there.
        let _: Result<String, String> = source.query(&["CLUSTER", "CORESHARD-MIGRATE", "ABORT"]);
        match progress(source) {
            Ok(p) if p.state == "aborted" => {
                let _: Result<String, String> = target.query(&["CLUSTER", "CORESHARD-MIGRATE", "ABORT"]);
                Err(format!("migration of slots {lo}-{hi} aborted, ownership unchanged: {why}"))
            }
            Ok(p) if p.state == "done" && via_log => Err(format!(
                "migration of slots {lo}-{hi}: the control log switched them to the target, but this tool \
                 stopped ({why})"
            )),
            Ok(p) if p.state == "done" => Err(format!(
                "migration of slots {lo}-{hi}: the source switched to the target (config epoch {}) but this \
                 tool stopped ({why}); push that configuration to every node",
                next.epoch
            )),
            Ok(p) if p.state == "switching" => Err(format!(
                "migration of slots {lo}-{hi} failed ({why}) while the control log decides its switch: the \
                 source holds the slots' writes (TRYAGAIN past the hold) until the log's outcome reaches it; \
                 its INFO cluster then says done or aborted"
            )),
            Ok(p) => Err(format!("migration of slots {lo}-{hi} failed ({why}); the source is in state {}", p.state)),
            Err(e) => Err(format!(
                "migration of slots {lo}-{hi} failed ({why}) and the source cannot say whether it switched ({e}); \
                 the target keeps what it received: check the source's INFO cluster before aborting it"
            )),
        }
    };
    let mut seen_active = false;
    // When the accepted CUTOVER was sent: the hold starts when the source
    // runs it, within this request's round trip.
    let mut cutover_unix_us = 0;
    let last = loop {
        if Instant::now() > deadline {
            return fail(&mut source, &mut target, "timed out".into());
        }
        let p = match progress(&mut source) {
            Ok(p) => p,
            Err(e) => return fail(&mut source, &mut target, e),
        };
        if !plan.json {
            eprint!(
                "\rmigrating slots {}-{}: {} keys, {} bytes sent, lag {} bytes, {:.1}s   ",
                range.start,
                range.end,
                p.keys,
                p.bytes,
                p.lag_bytes,
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
        }
        if matches!(p.state.as_str(), "streaming" | "cutover") {
            seen_active = true;
        }
        if !seen_active {
            // What the source shows is an earlier migration's until the
            // target's flows reach it; the target says if its pull failed.
            let t = progress(&mut target).unwrap_or_default();
            if t.state == "aborted" {
                return fail(&mut source, &mut target, t.reason);
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
            continue;
        }
        match p.state.as_str() {
            "done" => break p,
            "aborted" => return fail(&mut source, &mut target, p.reason),
            "streaming" if p.lag_bytes <= plan.max_lag_bytes => {
                let pause = plan.max_pause_ms.to_string();
                let epoch = next.epoch.to_string();
                // Refused while a snapshot is still on its way; asked again next poll.
                let sent = unix_us();
                let r: Result<String, String> = if via_log {
                    let args = ["CLUSTER", "CORESHARD-MIGRATE", "CUTOVER", "LOG", &migration_id, &target_text, &pause];
                    source.query(&args)
                } else {
                    source.query(&["CLUSTER", "CORESHARD-MIGRATE", "CUTOVER", &epoch, &text, &pause])
                };
                if r.is_ok() {
                    cutover_unix_us = sent;
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    };
    let done_unix_us = unix_us();
    if !plan.json {
        eprintln!();
    }
    // The source switched; the target installs the same configuration from
    // its stream, and every node gets it here (an older epoch is ignored).
    // Through the control log, the log and its leader's push carry it.
    let mut epoch = next.epoch.to_string();
    if via_log {
        let info: String = source.query(&["CLUSTER", "INFO"])?;
        epoch = field(&info, "cluster_current_epoch").unwrap_or_default();
    }
    let push_errors = if via_log { Vec::new() } else { super::push_config(&next, &next.nodes)? };
    Ok(Outcome {
        slots: format!("{}-{}", range.start, range.end),
        from: plan.from.clone(),
        to: plan.to.clone(),
        epoch: epoch.parse::<u64>().unwrap_or(next.epoch),
        keys: last.keys,
        bytes: last.bytes,
        pause_us: last.pause_us,
        seconds: started.elapsed().as_secs_f64(),
        started_unix_us,
        cutover_unix_us,
        done_unix_us,
        finished_unix_us: unix_us(),
        push_errors,
    })
}
