//! `coreshard-admin`: creates, shows, grows and rebalances coreshard clusters.
//!
//! `create` gives each primary an even share of the 16384 slots, makes the
//! replicas follow their primaries, and pushes the configuration (epoch 1)
//! to every node with `CLUSTER CORESHARD-SETCONFIG` (or, with
//! `--control-log`, commits it through the voters' log). `show` reads the
//! map from one node and asks every node for its keys and memory.
//! `migrate` moves a slot range online (migrate.rs). `add-node` brings a
//! fresh node in as an empty primary or a replica (add_node.rs), pushed or
//! committed through the control log as the cluster keeps its map.
//! `voters` lists the control log's voters and adds or removes one
//! (voters.rs).
//! `rebalance` plans moves so that each primary serves slots in proportion
//! to its weight and runs them one migration at a time (rebalance.rs).
//! `del-node` takes a node with no slots and no replicas (and not a control
//! log voter) out of the cluster and then resets it (`CLUSTER RESET SOFT`),
//! so that it ends outside any cluster (del_node.rs). When a configuration
//! could not be pushed to some node, add-node and del-node fail naming
//! them, and `fix` pushes the newest configuration found among the members
//! to every member that has an older one (fix.rs).
//!
//! Growing a cluster, as with `redis-cli --cluster add-node` / `rebalance`:
//!
//! ```text
//! coreshard-admin add-node NEW:PORT ANY:PORT                # empty primary
//! coreshard-admin add-node NEW:PORT ANY:PORT --replica-of PRIMARY
//! coreshard-admin rebalance ANY:PORT --use-empty-primaries [--dry-run]
//! coreshard-admin rebalance ANY:PORT --weight NODE=0        # drain NODE
//! coreshard-admin del-node ANY:PORT NODE                    # then remove it
//! coreshard-admin fix ANY:PORT                              # after a failed push
//! coreshard-admin voters ANY:PORT add NODE                  # replace a control log voter:
//! coreshard-admin voters ANY:PORT remove DEAD               #   add the new one, remove the old
//! ```

mod add_node;
mod del_node;
mod fix;
mod migrate;
mod rebalance;
mod voters;

use clap::{Parser, Subcommand};
use coreshard_repl::cluster::{ClusterConfig, Node, NodeId, Role, SlotRange};
use std::process::ExitCode;
use std::time::Duration;

/// How long a node gets to answer.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Administers coreshard clusters.
#[derive(Parser, Debug)]
#[command(name = "coreshard-admin", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a cluster of fresh nodes (started with `cluster-enabled yes`):
    /// the first nodes become primaries with even slot ranges, the rest their replicas.
    Create {
        /// The nodes, as HOST:PORT.
        #[arg(required = true, value_name = "HOST:PORT")]
        nodes: Vec<String>,
        /// Replicas per primary.
        #[arg(long, default_value_t = 0)]
        replicas: usize,
        /// Keep the configuration in a control log replicated by the first
        /// 3 (or 5) primaries, instead of pushing it to every node.
        #[arg(long, value_name = "VOTERS", value_parser = clap::builder::PossibleValuesParser::new(["3", "5"]))]
        control_log: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a cluster: slots, nodes, keys and memory per node.
    Show {
        /// Any node of the cluster, as HOST:PORT.
        #[arg(value_name = "HOST:PORT")]
        node: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a fresh node (cluster-enabled, empty, in no cluster) to a running
    /// cluster: a primary with no slots, or a replica of a primary.
    AddNode {
        /// The new node, as HOST:PORT.
        #[arg(value_name = "NEW_HOST:PORT")]
        new: String,
        /// Any node of the cluster, as HOST:PORT.
        #[arg(value_name = "EXISTING_HOST:PORT")]
        existing: String,
        /// Make it a replica of this primary (a node id, a unique prefix of
        /// one, or HOST:PORT) instead of a primary.
        #[arg(long, value_name = "NODE")]
        replica_of: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a node that serves no slots and has no replicas from a running
    /// cluster, then reset it (CLUSTER RESET SOFT): it forgets the cluster
    /// and, a replica, stops replicating and is emptied.
    DelNode {
        /// Any node of the cluster, as HOST:PORT.
        #[arg(value_name = "EXISTING_HOST:PORT")]
        existing: String,
        /// The node to remove: a node id, a unique prefix of one, or HOST:PORT.
        #[arg(value_name = "NODE")]
        node: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Push the newest configuration found among a cluster's members to every
    /// member that has an older one (after a push that did not reach some
    /// node); for clusters whose configuration is pushed, not a control log's.
    Fix {
        /// Any node of the cluster, as HOST:PORT.
        #[arg(value_name = "HOST:PORT")]
        node: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the voters of a cluster's control log, or add or remove one (one
    /// change at a time; a node is added as a learner, then promoted once
    /// it holds the log).
    Voters {
        /// Any node of the cluster, as HOST:PORT.
        #[arg(value_name = "HOST:PORT")]
        node: String,
        #[command(subcommand)]
        change: Option<VotersChange>,
        /// Print the result as JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Move slots between primaries, online, so that each serves a share in
    /// proportion to its weight.
    Rebalance {
        /// Any node of the cluster, as HOST:PORT.
        #[arg(value_name = "HOST:PORT")]
        node: String,
        /// A primary's weight (default 1; 0 moves all its slots away), as
        /// NODE=WEIGHT with NODE a node id, a unique prefix of one, or
        /// HOST:PORT. Repeat for several primaries.
        #[arg(long = "weight", value_name = "NODE=WEIGHT")]
        weights: Vec<String>,
        /// Move slots only if some primary is off its share by more than
        /// this percentage.
        #[arg(long, default_value_t = 2.0, value_name = "PCT")]
        threshold: f64,
        /// Give slots to primaries that have none (new ones) too.
        #[arg(long)]
        use_empty_primaries: bool,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        /// Longest a source may hold writes to the slots at each switch.
        #[arg(long, default_value_t = 100)]
        max_pause_ms: u64,
        /// Give up a move (and abort it) after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
        /// Print the plan and the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a slot range from one primary to another, online: the target
    /// pulls a snapshot of the slots and the source's journal for them, then
    /// the source holds writes to them for a few milliseconds and switches.
    Migrate {
        /// The node serving the slots now, as HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        from: String,
        /// The node to serve them, as HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        to: String,
        /// The slots, as LO-HI (both included) or one slot.
        #[arg(long, value_name = "LO-HI")]
        slots: String,
        /// The address the target pulls from, when it reaches the source by
        /// another route than this tool does (default: --from).
        #[arg(long, value_name = "HOST:PORT")]
        source_addr: Option<String>,
        /// Longest the source may hold writes to the slots at the switch.
        #[arg(long, default_value_t = 100)]
        max_pause_ms: u64,
        /// Journal bytes the target may be behind when the switch begins.
        #[arg(long, default_value_t = migrate::MAX_LAG_BYTES)]
        max_lag_bytes: u64,
        /// Give up (and abort) after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A change of the control log's voters.
#[derive(Subcommand, Debug)]
enum VotersChange {
    /// Make a member of the cluster a voter.
    Add {
        /// The node: a node id, a unique prefix of one, or HOST:PORT.
        #[arg(value_name = "NODE")]
        node: String,
    },
    /// Remove a voter (dead or alive, the leader too) or a learner.
    Remove {
        /// The node: a node id, a unique prefix of one, or HOST:PORT.
        #[arg(value_name = "NODE")]
        node: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Create { nodes, replicas, control_log, json } => {
            let voters = control_log.and_then(|v| v.parse().ok()).unwrap_or(0);
            create(&nodes, replicas, voters, json)
        }
        Command::Show { node, json } => show(&node, json),
        Command::AddNode { new, existing, replica_of, json } => {
            add_node::run(&new, &existing, replica_of.as_deref(), json)
        }
        Command::DelNode { existing, node, json } => del_node::run(&existing, &node, json),
        Command::Fix { node, json } => fix::run(&node, json),
        Command::Voters { node, change, json } => {
            let change = match &change {
                None => None,
                Some(VotersChange::Add { node }) => Some(("add", node.as_str())),
                Some(VotersChange::Remove { node }) => Some(("remove", node.as_str())),
            };
            voters::run(&node, change, json)
        }
        Command::Rebalance {
            node,
            weights,
            threshold,
            use_empty_primaries,
            dry_run,
            max_pause_ms,
            timeout_s,
            json,
        } => rebalance::run(&rebalance::Request {
            node,
            weights,
            threshold_pct: threshold,
            use_empty_primaries,
            dry_run,
            max_pause_ms,
            timeout_s,
            json,
        }),
        Command::Migrate { from, to, source_addr, slots, max_pause_ms, max_lag_bytes, timeout_s, json } => {
            let plan = migrate::Plan { from, to, source_addr, slots, max_pause_ms, max_lag_bytes, timeout_s, json };
            migrate::run(&plan)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coreshard-admin: {e}");
            ExitCode::from(1)
        }
    }
}

/// Splits `HOST:PORT` (`[v6]:PORT` too).
fn parse_addr(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("'{text}' is not HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| format!("'{text}' has no valid port"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("'{text}' is not HOST:PORT"));
    }
    Ok((host.to_string(), port))
}

/// A connection to one node.
struct NodeConn {
    addr: String,
    con: redis::Connection,
}

impl NodeConn {
    fn open(host: &str, port: u16) -> Result<NodeConn, String> {
        Self::open_within(host, port, NODE_TIMEOUT)
    }

    /// [`Self::open`] waiting at most `timeout` to connect and for each answer.
    fn open_within(host: &str, port: u16, timeout: Duration) -> Result<NodeConn, String> {
        let addr = format!("{host}:{port}");
        let url = if host.contains(':') { format!("redis://[{host}]:{port}/") } else { format!("redis://{addr}/") };
        let client = redis::Client::open(url).map_err(|e| format!("{addr}: {e}"))?;
        let con = client.get_connection_with_timeout(timeout).map_err(|e| format!("can't connect to {addr}: {e}"))?;
        con.set_read_timeout(Some(timeout)).map_err(|e| format!("{addr}: {e}"))?;
        con.set_write_timeout(Some(timeout)).map_err(|e| format!("{addr}: {e}"))?;
        Ok(NodeConn { addr, con })
    }

    /// Runs a command; a server error becomes this tool's error, naming the node.
    fn query<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> Result<T, String> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut self.con).map_err(|e| format!("{} ({}): {e}", self.addr, args[..args.len().min(2)].join(" ")))
    }

    /// `INFO <section>` field `name`.
    fn info_field(&mut self, section: &str, name: &str) -> Result<Option<String>, String> {
        let text: String = self.query(&["INFO", section])?;
        Ok(field(&text, name))
    }

    /// Waits up to `timeout` for each answer from now on.
    fn set_timeout(&mut self, timeout: Duration) -> Result<(), String> {
        self.con.set_read_timeout(Some(timeout)).map_err(|e| format!("{}: {e}", self.addr))
    }

    /// `CONFIG GET name`'s value.
    fn config_get(&mut self, name: &str) -> Result<String, String> {
        let pairs: Vec<String> = self.query(&["CONFIG", "GET", name])?;
        Ok(pairs.get(1).cloned().unwrap_or_default())
    }
}

/// The value of `name:` in INFO-style text.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

/// What `create` learns about a node before it builds the configuration.
struct Fresh {
    conn: NodeConn,
    id: NodeId,
    ip: String,
    port: u16,
}

/// The nodes' roles: the first `primaries` are primaries; each other node
/// replicates primary `i % primaries`.
fn plan(count: usize, replicas: usize) -> Result<Vec<Option<usize>>, String> {
    let primaries = count / (replicas + 1);
    if primaries == 0 {
        return Err(format!("{count} nodes are too few for {replicas} replicas per primary"));
    }
    Ok((0..count).map(|i| if i < primaries { None } else { Some((i - primaries) % primaries) }).collect())
}

/// Connects to a node that must be fresh: cluster-enabled, in no cluster
/// (knowing only itself, serving no slot, at a config epoch below the one it is to
/// take, `epoch_below`: 0 for a node never in a cluster, or that of a node
/// CLUSTER RESET SOFT left alone) and empty. Learns its id and the address it announces.
fn fresh(text: &str, epoch_below: u64) -> Result<Fresh, String> {
    let (host, port) = parse_addr(text)?;
    let mut conn = NodeConn::open(&host, port)?;
    let id: String = conn.query(&["CLUSTER", "MYID"]).map_err(|e| {
        if e.contains("cluster support disabled") {
            format!("{} is not a cluster node: start it with --cluster-enabled yes", conn.addr)
        } else {
            e
        }
    })?;
    let id = NodeId::parse(&id).map_err(|e| format!("{}: {e}", conn.addr))?;
    let info: String = conn.query(&["CLUSTER", "INFO"])?;
    let epoch = field(&info, "cluster_current_epoch").unwrap_or_default();
    let known = field(&info, "cluster_known_nodes").unwrap_or_default();
    let assigned = field(&info, "cluster_slots_assigned").unwrap_or_default();
    if known != "1" || assigned != "0" {
        return Err(format!("{} is already part of a cluster (config epoch {epoch}, {known} nodes)", conn.addr));
    }
    if epoch.parse::<u64>().ok().is_none_or(|e| e >= epoch_below) {
        return Err(format!(
            "{} is alone but at config epoch {epoch}, not below the {epoch_below} it would take: \
             run CLUSTER RESET HARD on it first",
            conn.addr
        ));
    }
    let keys: i64 = conn.query(&["DBSIZE"])?;
    if keys != 0 {
        return Err(format!("{} is not empty ({keys} keys): a node joins a cluster empty", conn.addr));
    }
    // A node may announce another address than the one used here.
    let announced_ip = conn.config_get("cluster-announce-ip")?;
    let announced_port = conn.config_get("cluster-announce-port")?.parse::<u16>().unwrap_or(0);
    let ip = if announced_ip.is_empty() { host } else { announced_ip };
    let port = if announced_port == 0 { port } else { announced_port };
    Ok(Fresh { conn, id, ip, port })
}

fn create(addrs: &[String], replicas: usize, voters: usize, json: bool) -> Result<(), String> {
    let roles = plan(addrs.len(), replicas)?;
    let mut nodes: Vec<Fresh> = Vec::new();
    for text in addrs {
        let n = fresh(text, 1)?;
        if nodes.iter().any(|m| m.id == n.id) {
            return Err(format!("{} is listed twice (node {})", n.conn.addr, n.id));
        }
        nodes.push(n);
    }
    let primaries = roles.iter().filter(|r| r.is_none()).count();
    let ranges = SlotRange::split_even(primaries, coreshard_repl::cluster::config::SLOTS);
    let config = ClusterConfig {
        epoch: 1,
        nodes: nodes
            .iter()
            .zip(&roles)
            .enumerate()
            .map(|(i, (n, role))| Node {
                id: n.id.clone(),
                ip: n.ip.clone(),
                port: n.port,
                role: match role {
                    None => Role::Primary,
                    Some(p) => Role::Replica { of: nodes[*p].id.clone() },
                },
                slots: if role.is_none() { vec![ranges[i]] } else { Vec::new() },
            })
            .collect(),
        migrations: Vec::new(),
    };
    config.validate().map_err(|e| format!("the planned configuration is invalid: {e}"))?;
    // Replicas start following first, so they sync while the map goes out.
    for (n, role) in nodes.iter_mut().zip(&roles) {
        if let Some(p) = role {
            let primary = &config.nodes[*p];
            let reply: String = n.conn.query(&["REPLICAOF", &primary.ip, &primary.port.to_string()])?;
            if !reply.starts_with("OK") {
                return Err(format!("{}: REPLICAOF answered {reply}", n.conn.addr));
            }
        }
    }
    let text = serde_json::to_string(&config).map_err(|e| e.to_string())?;
    let epoch = config.epoch.to_string();
    let in_log = if voters > 0 { Some(start_control_log(&mut nodes, &roles, voters, &config)?) } else { None };
    for (i, n) in nodes.iter_mut().enumerate() {
        // Voters have the configuration from the log; the others get it pushed.
        if in_log.as_ref().is_some_and(|v| v.contains(&i)) {
            continue;
        }
        match n.conn.query::<String>(&["CLUSTER", "CORESHARD-SETCONFIG", &epoch, &text]) {
            Ok(_) => {}
            // The log's leader pushes to the nodes outside it too, and may be first.
            Err(e) if in_log.is_some() && e.contains("not newer") => {}
            Err(e) => return Err(e),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!(
        "Cluster created: config epoch {}, {} primaries, {} replicas",
        config.epoch,
        primaries,
        nodes.len() - primaries
    );
    for n in &config.nodes {
        match &n.role {
            Role::Primary => {
                let slots: Vec<String> = n.slots.iter().map(|r| r.to_string()).collect();
                println!("  M {} {}:{} slots {} ({} slots)", n.id, n.ip, n.port, slots.join(","), n.slot_count());
            }
            Role::Replica { of } => println!("  S {} {}:{} replicates {of}", n.id, n.ip, n.port),
        }
    }
    Ok(())
}

/// How long `create` waits for the control log to elect a leader and
/// commit the first configuration.
const CONTROL_LOG_START: Duration = Duration::from_secs(20);
/// The pause between `create`'s tries while the log elects its leader.
const CONTROL_LOG_RETRY: Duration = Duration::from_millis(200);
/// How often `create` reads whether a voter has installed the first
/// configuration (a voter learns it within a tick of the control log).
const INSTALL_POLL: Duration = Duration::from_millis(10);

/// Makes the first `voters` primaries the control log's voters and commits
/// `config` (as epoch 1, the log's first change) through the first one,
/// then waits until every voter has installed it: the commit is answered
/// once the leader knows it, and a voter learns it with the leader's next
/// message; until then it serves no slot (`CLUSTERDOWN Hash slot not
/// served`), which a load started right after `create` would get, as
/// redis-cli's create waits for the nodes to agree. (A voter that has
/// installed it and is still writing its config file holds its clients'
/// commands until it is in force.) Returns the voters' indexes in `nodes`.
fn start_control_log(
    nodes: &mut [Fresh],
    roles: &[Option<usize>],
    voters: usize,
    config: &ClusterConfig,
) -> Result<Vec<usize>, String> {
    let chosen: Vec<usize> = (0..nodes.len()).filter(|&i| roles[i].is_none()).take(voters).collect();
    if chosen.len() < voters {
        return Err(format!("a control log of {voters} voters needs {voters} primaries, there are {}", chosen.len()));
    }
    let mut list = Vec::new();
    for (v, &i) in chosen.iter().enumerate() {
        let n = &mut nodes[i];
        let port = n.conn.config_get("cluster-port")?.parse::<u16>().unwrap_or(0);
        let port = if port == 0 { n.port.wrapping_add(10000) } else { port };
        list.push(format!("{},{},{}:{port}", v + 1, n.id, n.ip));
    }
    for (v, &i) in chosen.iter().enumerate() {
        let id = (v + 1).to_string();
        let mut args = vec!["CLUSTER", "CORESHARD-LOG-JOIN", id.as_str()];
        args.extend(list.iter().map(String::as_str));
        let _: String = nodes[i].conn.query(&args)?;
    }
    let change = coreshard_repl::cluster::ConfigChange::Replace(config.clone());
    // A repeated Replace commits the same map one epoch further.
    let epoch = propose(&mut nodes[chosen[0]].conn, &change, CONTROL_LOG_START)?;
    let deadline = std::time::Instant::now() + CONTROL_LOG_START;
    for &i in &chosen {
        let n = &mut nodes[i];
        loop {
            let info: String = n.conn.query(&["CLUSTER", "INFO"])?;
            if field(&info, "cluster_current_epoch").and_then(|e| e.parse::<u64>().ok()).is_some_and(|e| e >= epoch) {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "the configuration was committed (epoch {epoch}) but voter {} did not install it within {}s",
                    n.conn.addr,
                    CONTROL_LOG_START.as_secs()
                ));
            }
            std::thread::sleep(INSTALL_POLL);
        }
    }
    Ok(chosen)
}

/// Proposes `change` through `conn` (any node; a non-voter forwards it)
/// and waits for its commit; the epoch it was committed at. Retries while
/// the log has no leader or loses the proposal in an election, for at most
/// `patience`. A change retried after a lost answer may have committed
/// the first time: the caller checks the outcome where a repeat is refused.
fn propose(
    conn: &mut NodeConn,
    change: &coreshard_repl::cluster::ConfigChange,
    patience: Duration,
) -> Result<u64, String> {
    let text = serde_json::to_string(change).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + patience;
    loop {
        match conn.query::<i64>(&["CLUSTER", "CORESHARD-PROPOSE", &text]) {
            Ok(epoch) => return u64::try_from(epoch).map_err(|_| format!("{}: epoch {epoch} answered", conn.addr)),
            Err(e)
                if std::time::Instant::now() < deadline && (e.contains("leader") || e.contains("did not commit")) =>
            {
                std::thread::sleep(CONTROL_LOG_RETRY)
            }
            Err(e) => return Err(e),
        }
    }
}

/// Pushes `config` (`CLUSTER CORESHARD-SETCONFIG`) to each of `nodes`
/// (nodes of it), one connection each; returns what could not be pushed,
/// one line per node, naming it. A node that already has this epoch or a
/// newer one (the source's stream or the log's leader came first) is not
/// an error.
fn push_config<'a>(config: &ClusterConfig, nodes: impl IntoIterator<Item = &'a Node>) -> Result<Vec<String>, String> {
    let text = serde_json::to_string(config).map_err(|e| e.to_string())?;
    let epoch = config.epoch.to_string();
    let mut errors = Vec::new();
    for n in nodes {
        let pushed = NodeConn::open(&n.ip, n.port)
            .and_then(|mut c| c.query::<String>(&["CLUSTER", "CORESHARD-SETCONFIG", &epoch, &text]));
        match pushed {
            Err(e) if !e.contains("not newer") => errors.push(format!("node {} ({}:{}): {e}", n.id, n.ip, n.port)),
            _ => {}
        }
    }
    Ok(errors)
}

/// The error of a command whose configuration (`epoch`) did not reach
/// every node: which ones (`push_errors`, from [`push_config`]) and how
/// to repair it.
fn not_pushed(epoch: u64, push_errors: &[String], any: &str) -> String {
    format!(
        "the configuration (epoch {epoch}) did not reach {} node(s):\n  {}\n\
         They serve the old map until they get it: once they answer, run `coreshard-admin fix {any}`",
        push_errors.len(),
        push_errors.join("\n  ")
    )
}

/// One node as `show` reports it.
#[derive(serde::Serialize)]
struct NodeReport {
    id: String,
    addr: String,
    role: String,
    primary: Option<String>,
    slots: Vec<String>,
    slot_count: usize,
    keys: Option<u64>,
    used_memory: Option<u64>,
    used_memory_human: Option<String>,
    error: Option<String>,
}

#[derive(serde::Serialize)]
struct ClusterReport {
    state: String,
    epoch: u64,
    slots_assigned: usize,
    /// The control log's leader and term as the node asked sees them
    /// (absent when it is not a voter).
    control_log: Option<ControlLogReport>,
    nodes: Vec<NodeReport>,
}

#[derive(serde::Serialize)]
struct ControlLogReport {
    voters: u64,
    term: u64,
    leader: Option<String>,
}

/// Reads one CLUSTER NODES line: id, address, role, primary, slot ranges.
fn parse_nodes_line(line: &str) -> Option<NodeReport> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    if parts.len() < 8 {
        return None;
    }
    let addr = parts[1].split('@').next().unwrap_or(parts[1]).to_string();
    let role = if parts[2].split(',').any(|f| f == "slave") { "replica" } else { "primary" };
    let slots: Vec<String> = parts[8..].iter().filter(|s| !s.starts_with('[')).map(|s| s.to_string()).collect();
    let slot_count = slots
        .iter()
        .map(|s| match s.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0),
            None => 1,
        })
        .sum();
    Some(NodeReport {
        id: parts[0].to_string(),
        addr,
        role: role.to_string(),
        primary: (parts[3] != "-").then(|| parts[3].to_string()),
        slots,
        slot_count,
        keys: None,
        used_memory: None,
        used_memory_human: None,
        error: None,
    })
}

fn show(addr: &str, json: bool) -> Result<(), String> {
    let (host, port) = parse_addr(addr)?;
    let mut entry = NodeConn::open(&host, port)?;
    let nodes_text: String = entry.query(&["CLUSTER", "NODES"])?;
    let info: String = entry.query(&["CLUSTER", "INFO"])?;
    // Nodes without a control log (older ones) answer with an error.
    let log: String = entry.query(&["CLUSTER", "CORESHARD-LOG"]).unwrap_or_default();
    let control_log = field(&log, "term").map(|term| ControlLogReport {
        voters: field(&log, "voters").and_then(|v| v.parse().ok()).unwrap_or(0),
        term: term.parse().unwrap_or(0),
        leader: field(&log, "leader-node").filter(|l| !l.is_empty()),
    });
    let mut nodes: Vec<NodeReport> = nodes_text.lines().filter_map(parse_nodes_line).collect();
    for n in &mut nodes {
        let probe = || -> Result<(u64, u64, String), String> {
            let (h, p) = parse_addr(&n.addr)?;
            let mut c = NodeConn::open(&h, p)?;
            let keys: u64 = c.query(&["DBSIZE"])?;
            let memory = c.info_field("memory", "used_memory")?.and_then(|m| m.parse().ok()).unwrap_or(0);
            let human = c.info_field("memory", "used_memory_human")?.unwrap_or_default();
            Ok((keys, memory, human))
        };
        match probe() {
            Ok((keys, memory, human)) => {
                n.keys = Some(keys);
                n.used_memory = Some(memory);
                n.used_memory_human = Some(human);
            }
            Err(e) => n.error = Some(e),
        }
    }
    let report = ClusterReport {
        state: field(&info, "cluster_state").unwrap_or_default(),
        epoch: field(&info, "cluster_current_epoch").and_then(|e| e.parse().ok()).unwrap_or(0),
        slots_assigned: field(&info, "cluster_slots_assigned").and_then(|e| e.parse().ok()).unwrap_or(0),
        control_log,
        nodes,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!(
        "cluster_state:{} config epoch {} slots assigned {}/16384 nodes {}",
        report.state,
        report.epoch,
        report.slots_assigned,
        report.nodes.len()
    );
    if let Some(log) = &report.control_log {
        let leader = log.leader.as_deref().unwrap_or("none known");
        println!("control log: {} voters, term {}, leader {leader}", log.voters, log.term);
    }
    println!(
        "{:<40} {:<21} {:<8} {:>6} {:>10} {:>10}  SLOTS / PRIMARY",
        "ID", "ADDRESS", "ROLE", "SLOTS", "KEYS", "MEMORY"
    );
    for n in &report.nodes {
        let keys = n.keys.map_or("?".to_string(), |k| k.to_string());
        let memory = n.used_memory_human.clone().unwrap_or_else(|| "?".to_string());
        let what = match &n.primary {
            Some(p) => format!("replicates {p}"),
            None => n.slots.join(","),
        };
        println!("{:<40} {:<21} {:<8} {:>6} {:>10} {:>10}  {what}", n.id, n.addr, n.role, n.slot_count, keys, memory);
        if let Some(e) = &n.error {
            println!("    unreachable: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_put_primaries_first_and_spread_replicas() {
        assert_eq!(plan(3, 0).unwrap(), vec![None, None, None]);
        assert_eq!(plan(6, 1).unwrap(), vec![None, None, None, Some(0), Some(1), Some(2)]);
        // Leftover nodes become extra replicas.
        assert_eq!(plan(4, 1).unwrap(), vec![None, None, Some(0), Some(1)]);
        assert_eq!(plan(5, 1).unwrap(), vec![None, None, Some(0), Some(1), Some(0)]);
        assert!(plan(1, 1).is_err());
    }

    #[test]
    fn addresses_and_nodes_lines_parse() {
        assert_eq!(parse_addr("127.0.0.1:7000").unwrap(), ("127.0.0.1".into(), 7000));
        assert_eq!(parse_addr("[::1]:7000").unwrap(), ("::1".into(), 7000));
        assert!(parse_addr("host").is_err());
        assert!(parse_addr("host:0").is_err());
        let line = format!("{} 127.0.0.1:7000@0 myself,master - 0 0 1 connected 0-5460 6000", "a".repeat(40));
        let n = parse_nodes_line(&line).unwrap();
        assert_eq!((n.addr.as_str(), n.role.as_str(), n.slot_count), ("127.0.0.1:7000", "primary", 5462));
        let line = format!("{} 127.0.0.1:7001@0 slave {} 0 0 1 connected", "b".repeat(40), "a".repeat(40));
        let n = parse_nodes_line(&line).unwrap();
        assert_eq!(
            (n.role.as_str(), n.primary.as_deref(), n.slot_count),
            ("replica", Some("a".repeat(40).as_str()), 0)
        );
    }
}
