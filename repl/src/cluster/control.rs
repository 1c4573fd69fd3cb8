//! The node's cluster control: owns the configuration in force and its
//! file, installs newer configurations, and answers the CLUSTER
//! subcommands that describe the cluster (MYID NODES SLOTS SHARDS INFO).
//! It fills `coreshard_net`'s [`ClusterHook`]; the shards see only the
//! [`Routing`] it publishes.
//!
//! Changes arrive as `CLUSTER CORESHARD-SETCONFIG <epoch> <json>`, pushed
//! by `coreshard-admin` (no control log) or by the control log's leader
//! (nodes outside it), or, on a voter of the control log, as the log's
//! commits through [`ClusterControl::install_committed`]; a voter refuses
//! SETCONFIG (docs/decisions/0006-control-log.md).
//!
//! `CLUSTER RESET` replaces the configuration with this node's alone (a
//! new id and epoch 0 for HARD), written and acted on like any other; it
//! starts a new reset generation, which orders it after everything before
//! it although its epoch may be lower (store.rs). A control log voter
//! refuses it (docs/decisions/0004-cluster.md). `CLUSTER CORESHARD-LEFT
//! <epoch>`, which del-node sends before its reset, makes the node refuse
//! every configuration up to the epoch that removed it.

use super::config::{ClusterConfig, ConfigChange, Node, NodeId, SLOTS, SlotRange};
use super::member::Answer;
use super::store::{NodesFile, Writer};
use coreshard_engine::cmd::printable;
use coreshard_engine::{Args, Reply, num};
use coreshard_net::Config;
use coreshard_net::cluster::{ClusterHook, ReplyLater, Routing, UNASSIGNED};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

/// Proposals a node outside the control log passes on at once (each holds
/// a thread for up to `PROPOSE_WAIT_MS` and a second).
pub const FORWARDS_MAX: usize = 16;

/// How long a node outside the control log waits for a node of its map to
/// answer `CLUSTER CORESHARD-LOG` (served by its shard, not its control
/// thread) before it counts it as not answering and asks the next: a
/// stopped or hung node then costs a request's wait only if no node that
/// answers takes the request.
const PROBE_WAIT_MS: u64 = 500;

/// A RESP error reply of `text` (kept on one line).
fn error_reply(text: &str) -> Vec<u8> {
    format!("-{}\r\n", text.replace(['\r', '\n'], " ")).into_bytes()
}

/// The node's cluster configuration and its file.
pub struct ClusterControl {
    path: PathBuf,
    /// Writes the file off the shards; a change is acted on once written.
    writer: Arc<Writer>,
    /// `cluster-require-full-coverage`, as set at start.
    require_full_coverage: bool,
    state: Mutex<NodesFile>,
    /// CLUSTER RESETs since the node started (changed under `state`'s lock):
    /// the generation of the configuration in `state`.
    generation: AtomicU64,
    /// `cluster-port`, or the client port + 10000.
    control_port: u16,
    /// The shards' cluster state, to publish configurations the control
    /// log commits (set once the hook is registered).
    published: OnceLock<Weak<coreshard_net::cluster::Cluster>>,
    /// This node's control log member, while it is one.
    member: RwLock<Option<Arc<super::member::Member>>>,
    /// Proposals being passed on to a voter now.
    forwarding: AtomicUsize,
    /// When this node's control log, if it is a voter, is compacted.
    compaction: super::log::Compaction,
}

/// The address this node announces: `cluster-announce-ip`/`-port`, else
/// the first bind address (loopback for a wildcard) and `port`.
pub fn announced_address(config: &Config) -> (String, u16) {
    let ip = match (&config.cluster_announce_ip, config.bind.first()) {
        (Some(ip), _) => ip.clone(),
        (None, Some(b)) if !matches!(b.as_str(), "*" | "::*" | "0.0.0.0" | "::") => b.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = if config.cluster_announce_port != 0 { config.cluster_announce_port } else { config.port };
    (ip, port)
}

impl ClusterControl {
    /// Opens the node's cluster state: reads `cluster-config-file`, or
    /// creates it with a fresh node id and a configuration of this node
    /// alone (epoch 0, no slots).
    pub fn open(config: &Config) -> Result<ClusterControl, String> {
        let path = PathBuf::from(&config.cluster_config_file);
        let (ip, port) = announced_address(config);
        let file = match NodesFile::load(&path)? {
            Some(mut file) => {
                if file.config.position(&file.myself).is_none() {
                    return Err(format!(
                        "the cluster config file {} does not list this node ({})",
                        path.display(),
                        file.myself
                    ));
                }
                // A node not yet part of a cluster announces where it listens now.
                if file.config.epoch == 0 {
                    file.config = ClusterConfig::solo(Node::primary(file.myself.clone(), &ip, port));
                    file.save(&path).map_err(|e| format!("can't write {}: {e}", path.display()))?;
                }
                tracing::info!(
                    "cluster: node {} with config epoch {} from {}",
                    file.myself,
                    file.config.epoch,
                    path.display()
                );
                file
            }
            None => {
                let myself = NodeId::random();
                let file = NodesFile::new(myself.clone(), ClusterConfig::solo(Node::primary(myself, &ip, port)));
                file.save(&path).map_err(|e| format!("can't write the cluster config file {}: {e}", path.display()))?;
                tracing::info!("cluster: no config file found, new node id {} in {}", file.myself, path.display());
                file
            }
        };
        let writer = Writer::start(path.clone(), file.config.epoch)?;
        Ok(ClusterControl {
            path,
            writer,
            require_full_coverage: config.cluster_require_full_coverage,
            state: Mutex::new(file),
            generation: AtomicU64::new(0),
            control_port: if config.cluster_port != 0 { config.cluster_port } else { config.port.wrapping_add(10000) },
            published: OnceLock::new(),
            member: RwLock::new(None),
            forwarding: AtomicUsize::new(0),
            compaction: match config.debug_control_log_compact_entries {
                0 => super::log::Compaction::default(),
                n => super::log::Compaction::every(n),
            },
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NodesFile> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// This node's id.
    pub fn myself(&self) -> NodeId {
        self.state().myself.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> ClusterConfig {
        self.state().config.clone()
    }

    /// Applies `change` at `epoch`: the result must list this node. It is
    /// accepted (later changes apply on top of it, CLUSTER NODES shows it)
    /// and handed to the file's writer; it comes in force only once
    /// written: [`Self::install_then`]. Returns the new routing; on any
    /// error nothing changed.
    fn install(&self, epoch: u64, change: &ConfigChange) -> Result<Routing, String> {
        let mut state = self.state();
        let left_at = state.left_at;
        if epoch <= left_at {
            tracing::info!(
                "cluster: config epoch {epoch} refused: this node was removed from the cluster at {left_at}"
            );
            return Err(format!(
                "this node was removed from the cluster at config epoch {left_at} and takes no configuration \
                 up to it (config epoch {epoch}); CLUSTER RESET HARD gives it a fresh start"
            ));
        }
        let next = state.config.apply(epoch, change).map_err(|e| e.to_string())?;
        if next.position(&state.myself).is_none() {
            return Err(format!("the configuration does not list this node ({})", state.myself));
        }
        let file = NodesFile::new(state.myself.clone(), next).left_at(left_at);
        // Under the state's lock, so the writer gets them in order.
        let generation = self.generation.load(Ordering::Acquire);
        self.writer.submit(generation, file.clone());
        *state = file;
        tracing::info!(
            "cluster: config epoch {} installed ({} nodes, {} slots assigned)",
            epoch,
            state.config.nodes.len(),
            state.config.slots_assigned()
        );
        Ok(routing_of(&state, self.require_full_coverage).with_generation(generation))
    }

    /// `CLUSTER RESET [HARD|SOFT]`'s configuration part (the shard did
    /// the rest: see `coreshard_net::cluster`): this node alone, a primary
    /// with no slots, at the address it announces; HARD with a new node id
    /// and epoch 0, SOFT with its id and epoch. Written as any change and
    /// published once in the file, then `done` gets `+OK`. Refused at once
    /// on a control log voter: the other voters would still count it in
    /// their majority while it forgot the log.
    fn reset(&self, hard: bool, done: ReplyLater) -> Result<(), String> {
        if self.member().is_some() {
            return Err("ERR CLUSTER RESET is refused on a control log voter (or learner): the other voters count it \
                        in their majority; remove it from the voters first (coreshard-admin voters ... remove)"
                .into());
        }
        let routing = {
            let mut state = self.state();
            let me = state.config.node(&state.myself).cloned().ok_or("ERR this node is not in its configuration")?;
            let id = if hard { NodeId::random() } else { state.myself.clone() };
            let mut config = ClusterConfig::solo(Node::primary(id.clone(), &me.ip, me.port));
            config.epoch = if hard { 0 } else { state.config.epoch };
            let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            // HARD starts afresh (a new id, epochs from 0): the mark goes.
            let left_at = if hard { 0 } else { state.left_at };
            let file = NodesFile::new(id, config).left_at(left_at);
            self.writer.submit(generation, file.clone());
            *state = file;
            tracing::info!(
                "cluster: CLUSTER RESET {}: node {} alone at config epoch {}",
                if hard { "HARD" } else { "SOFT" },
                state.myself,
                state.config.epoch
            );
            routing_of(&state, self.require_full_coverage).with_generation(generation)
        };
        self.publish_when_durable(routing, move |routing| done(b"+OK\r\n".to_vec(), Some(routing)));
        Ok(())
    }

    /// Notes `routing` as pending and, once its configuration is in the
    /// file, publishes it to the shards and calls `then` (on the writer
    /// thread, or here when it is in the file already).
    fn publish_when_durable(&self, routing: Routing, then: impl FnOnce(Routing) + Send + 'static) {
        let published = self.published.get().cloned();
        if let Some(cluster) = published.as_ref().and_then(Weak::upgrade) {
            cluster.note_pending(routing.generation, routing.epoch);
        }
        self.writer.when_durable(routing.version(), move || {
            if let Some(cluster) = published.as_ref().and_then(Weak::upgrade) {
                cluster.publish(routing.clone());
            }
            then(routing);
        });
    }
}

/// True when the cluster serves keys: some primary serves slots and, with
/// full coverage required, every slot has a node (Redis's `clusterUpdateState`
/// without failure detection, which comes with failover).
fn state_ok(config: &ClusterConfig, require_full_coverage: bool) -> bool {
    config.size() > 0 && (!require_full_coverage || config.slots_assigned() == SLOTS)
}

/// The shards' routing for the node's state.
fn routing_of(file: &NodesFile, require_full_coverage: bool) -> Routing {
    let c = &file.config;
    let addrs = c.nodes.iter().map(|n| format!("{}:{}", n.ip, n.port)).collect();
    let owners = c.slot_owners().into_iter().map(|o| o.map_or(UNASSIGNED, |i| i as u16)).collect();
    let me = c.position(&file.myself);
    let my_primary = me.and_then(|i| c.nodes[i].primary_id()).and_then(|p| c.position(p));
    let replica_of = my_primary.map(|i| (c.nodes[i].ip.clone(), c.nodes[i].port));
    Routing::new(
        c.epoch,
        addrs,
        owners,
        me.map(|i| i as u16),
        my_primary.map(|i| i as u16),
        state_ok(c, require_full_coverage),
        replica_of,
    )
    .with_migrations(c.migrations.iter().map(|m| (m.id, m.switched)).collect())
}

/// The control log side of [`ClusterControl`] (docs/decisions/0006-control-log.md).
impl ClusterControl {
    /// Registers the shards' cluster state and, when this node is a
    /// control log voter (its `<cluster-config-file>.log` exists), starts
    /// its control thread.
    pub fn attach(control: &Arc<ClusterControl>, cluster: &Arc<coreshard_net::cluster::Cluster>) -> Result<(), String> {
        let _ = control.published.set(Arc::downgrade(cluster));
        if let Some(member) = super::member::Member::resume(&control.path, control.clone())? {
            control.set_member(Some(Arc::new(member)));
        }
        Ok(())
    }

    /// Installs `change` at `epoch` ([`Self::install`]) and, once the
    /// config file holds it, publishes its routing to the shards and calls
    /// `then` with it (on the file's writer thread); `then` gets the error
    /// at once when the change is refused (nothing changed then).
    pub fn install_then(
        &self,
        epoch: u64,
        change: &ConfigChange,
        then: impl FnOnce(Result<Routing, String>) + Send + 'static,
    ) {
        match self.install(epoch, change) {
            Ok(routing) => self.publish_when_durable(routing, move |routing| then(Ok(routing))),
            Err(e) => then(Err(e)),
        }
    }

    /// Installs a configuration the control log committed, if it is newer
    /// than the one in force and lists this node, and publishes it once
    /// written.
    pub fn install_committed(&self, config: ClusterConfig) {
        let epoch = config.epoch;
        self.install_then(epoch, &ConfigChange::Replace(config), move |r| {
            if let Err(e) = r {
                tracing::debug!("cluster: committed epoch {epoch} not installed here: {e}");
            }
        });
    }

    /// `CLUSTER CORESHARD-LOG-JOIN <voter-id> <voter-id>,<node-id>,<ip:port> ...`:
    /// makes this node a voter of a new control log (all voters listed,
    /// 3 or 5) and starts its control thread.
    fn log_join(control: &Arc<ClusterControl>, args: &Args, r: &mut Reply) {
        let parsed = parse_members(args).and_then(|(id, voters)| {
            if !matches!(voters.len(), 3 | 5) || voters.iter().any(|v| v.learner) || !voters.iter().any(|v| v.id == id)
            {
                return Err("a control log has 3 or 5 voters, this node among them".into());
            }
            Ok(super::member::Membership { id, voters })
        });
        let membership = match parsed {
            Ok(m) => m,
            Err(e) => return r.error(&format!("ERR {e}")),
        };
        control.join_log(membership, r)
    }

    /// `CLUSTER CORESHARD-PROPOSE <json change> [FORWARDED]`: proposes a
    /// change to the control log through this voter (forwarded to the
    /// leader) and, without blocking the shard, answers once it commits
    /// (at most `PROPOSE_WAIT_MS`) with the new epoch: `done` gets the
    /// whole reply, from the control thread or a forwarding thread. A node
    /// outside the log passes it on to the first node of its map that
    /// takes it as a voter, the leader first when one answers
    /// ([`Self::forward_order`]), marked FORWARDED, which is never passed
    /// on again.
    fn propose(self: &Arc<Self>, args: &Args, done: ReplyLater) {
        let change: ConfigChange = match serde_json::from_slice(args.get(2)) {
            Ok(c) => c,
            Err(e) => return done(error_reply(&format!("ERR invalid change: {e}")), None),
        };
        if self.member().is_none() && args.len() > 3 {
            return done(error_reply("ERR this node is not a control log voter"), None);
        }
        self.propose_change_then(
            change,
            Answer::new(move |result| {
                let bytes = match result {
                    Ok(epoch) => format!(":{epoch}\r\n").into_bytes(),
                    // A voter's refusal, passed on as it came.
                    Err(e) if e.starts_with("ERR ") => error_reply(&e),
                    Err(e) => error_reply(&format!("ERR {e}")),
                };
                done(bytes, None)
            }),
        );
    }

    /// [`Self::propose_change`] without waiting: `answer` gets the outcome,
    /// from the control thread on a voter, else from a thread that passes
    /// the change on (at most [`FORWARDS_MAX`] at once).
    pub fn propose_change_then(self: &Arc<Self>, change: ConfigChange, answer: Answer) {
        if let Some(member) = self.member() {
            return member.propose_then(change, answer);
        }
        if self.forwarding.fetch_add(1, Ordering::AcqRel) >= FORWARDS_MAX {
            self.forwarding.fetch_sub(1, Ordering::AcqRel);
            return answer.send(Err(format!("{FORWARDS_MAX} proposals are being passed on already")));
        }
        let control = self.clone();
        let spawned = std::thread::Builder::new().name("cs-forward".into()).spawn(move || {
            let result = control.propose_change(&change);
            control.forwarding.fetch_sub(1, Ordering::AcqRel);
            answer.send(result);
        });
        if let Err(e) = spawned {
            self.forwarding.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("cluster: can't start a thread to pass a proposal on: {e}");
        }
    }

    /// Proposes `change` to the control log and waits until it commits:
    /// through this node's control thread when it is a voter, else passed
    /// to the first node of its map that takes it as one (in the order of
    /// [`Self::forward_order`]). Ok(the epoch it
    /// made), or why not (a timeout: it may still commit). Blocks the
    /// caller for up to [`super::member::PROPOSE_WAIT_MS`] (two seconds more
    /// when passed on, and [`PROBE_WAIT_MS`] for each node that does not
    /// answer).
    pub fn propose_change(&self, change: &ConfigChange) -> Result<u64, String> {
        if let Some(member) = self.member() {
            return member.propose(change.clone());
        }
        let text = serde_json::to_string(change).map_err(|e| format!("invalid change: {e}"))?;
        self.forward_proposal(&text)
    }

    /// Passes a proposal to the other nodes of the map, in the order of
    /// [`Self::forward_order`], until a voter answers it. Each is given the
    /// whole wait, and the next is asked only once one refused or failed,
    /// so the change is not passed on twice by a node that was only slow.
    fn forward_proposal(&self, text: &str) -> Result<u64, String> {
        // The voter answers within PROPOSE_WAIT_MS and a tick; the margin
        // covers a busy voter, since a change given up on here and passed
        // to the next voter may then commit twice.
        let wait = std::time::Duration::from_millis(super::member::PROPOSE_WAIT_MS + 2000);
        let mut last = "no node of the map is a control log voter".to_string();
        for n in self.forward_order() {
            let parts = ["CLUSTER", "CORESHARD-PROPOSE", text, "FORWARDED"];
            match super::member::request_line(&n.ip, n.port, &parts, wait) {
                Ok(line) if line.starts_with(':') => match line[1..].parse::<u64>() {
                    Ok(epoch) => return Ok(epoch),
                    Err(_) => last = format!("{}: unexpected reply", n.id),
                },
                Ok(line) if line.contains("not a control log voter") => {}
                // That voter saw no leader for a while (cut off?): another may.
                Ok(line) if line.contains("no control log leader is known") => {
                    last = format!("{}: {}", n.id, line.trim_start_matches('-'));
                }
                Ok(line) => return Err(line.trim_start_matches('-').to_string()),
                Err(e) => last = format!("{}:{}: {e}", n.ip, n.port),
            }
        }
        Err(last)
    }

    /// The other nodes of the map in the order a node outside the log
    /// passes a request to them: each is first asked `CLUSTER
    /// CORESHARD-LOG` (waiting [`PROBE_WAIT_MS`]), in map order, moving
    /// the leader a voter names to the front, until the leader answers as
    /// such. Then come the leader, the other voters that answered, the
    /// nodes not asked (or whose answer said nothing), the nodes that
    /// answered as no voter, and last the nodes that did not answer in
    /// time (a stopped or hung process, or a slow one: it may still take
    /// the request if no other does).
    fn forward_order(&self) -> Vec<Node> {
        let config = self.config();
        let myself = self.myself();
        let wait = Duration::from_millis(PROBE_WAIT_MS);
        let mut queue: std::collections::VecDeque<&Node> = config.nodes.iter().filter(|n| n.id != myself).collect();
        let (mut leader, mut voters, mut unknown, mut outside, mut silent) =
            (None, Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while leader.is_none() {
            let Some(n) = queue.pop_front() else { break };
            let text = match super::member::request_text(&n.ip, n.port, &["CLUSTER", "CORESHARD-LOG"], wait) {
                Ok(text) => text,
                Err(_) => {
                    silent.push(n);
                    continue;
                }
            };
            let field = |name: &str| {
                text.lines().map(|l| l.trim_start_matches("txt:")).find_map(|l| l.strip_prefix(name)).map(str::trim)
            };
            match (field("voter:"), field("leader-node:")) {
                (Some("none"), _) => outside.push(n),
                (Some(_), Some(l)) if l == n.id.as_str() => leader = Some(n),
                (Some(_), named) => {
                    voters.push(n);
                    if let Some(i) = named.and_then(|l| queue.iter().position(|q| q.id.as_str() == l)) {
                        if let Some(l) = queue.remove(i) {
                            queue.push_front(l);
                        }
                    }
                }
                (None, _) => unknown.push(n),
            }
        }
        leader.into_iter().chain(voters).chain(unknown).chain(queue).chain(outside).chain(silent).cloned().collect()
    }

    /// Migration `id`'s switch through the control log (see
    /// [`ClusterHook::switch_migration`]): a helper thread proposes it,
    /// then, as long as this node's configuration records no outcome for
    /// `id`, proposes `CancelMigration(id)` (which changes nothing if the
    /// switch committed first), backing off up to a second between tries.
    /// It ends once the outcome is installed here, which is what the
    /// source's shards wait for.
    pub fn switch_migration(self: &Arc<Self>, id: u64, target: &str, lo: u16, hi: u16) -> Result<(), String> {
        let to = NodeId::parse(target).map_err(|e| e.to_string())?;
        let switch =
            ConfigChange::SwitchMigration { id, from: self.myself(), to, ranges: vec![SlotRange::new(lo, hi)] };
        let control = self.clone();
        std::thread::Builder::new()
            .name("cs-migrate-switch".into())
            .spawn(move || control.decide_migration(id, switch))
            .map(|_| ())
            .map_err(|e| format!("can't start the switch thread: {e}"))
    }

    fn decide_migration(&self, id: u64, switch: ConfigChange) {
        let mut change = switch;
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = self.propose_change(&change);
            if let Err(e) = &result {
                tracing::info!("cluster: migration {id}: {e}");
            }
            // A commit reaches a node outside the log by the leader's push,
            // a moment after the proposer hears of it.
            let settle = Instant::now() + if result.is_ok() { Duration::from_secs(2) } else { backoff };
            loop {
                if let Some(outcome) = self.config().migration(id) {
                    tracing::info!("cluster: migration {id} decided: switched {}", outcome.switched);
                    return;
                }
                if Instant::now() >= settle {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            change = ConfigChange::CancelMigration(id);
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// `CLUSTER CORESHARD-LOG`: the control log as this node sees it, as
    /// `field:value` lines (`voter`, `term`, `leader`, `leader-node`,
    /// `epoch`), or `voter:none`.
    fn log_status(&self, r: &mut Reply) {
        let text = match self.member() {
            None => "voter:none\r\n".to_string(),
            Some(m) => {
                let s = m.status();
                let leader_node = s.leader_node.as_ref().map_or("", NodeId::as_str);
                format!(
                    "voter:{}\r\nvoters:{}\r\nterm:{}\r\nleader:{}\r\nleader-node:{leader_node}\r\nepoch:{}\r\n",
                    s.id,
                    s.peers.iter().filter(|p| !p.learner).count(),
                    s.term,
                    s.leader,
                    s.epoch
                )
            }
        };
        r.verbatim(text.as_bytes());
    }

    /// When this node's control log is compacted
    /// (`debug-control-log-compact-entries`).
    pub fn compaction(&self) -> super::log::Compaction {
        self.compaction
    }

    /// The control port this node listens on when it is a voter.
    pub fn control_port(&self) -> u16 {
        self.control_port
    }
}

/// `<id> <id>,<node-id>,<ip:port>[,learner] ...` from argument 2 on: this
/// node's raft id and the members.
fn parse_members(args: &Args) -> Result<(u64, Vec<super::member::Voter>), String> {
    let id = std::str::from_utf8(args.get(2)).ok().and_then(|s| s.parse::<u64>().ok()).ok_or("bad member id")?;
    let mut voters = Vec::new();
    for i in 3..args.len() {
        let bad = || format!("bad member '{}'", printable(args.get(i), 128));
        let text = std::str::from_utf8(args.get(i)).map_err(|_| bad())?;
        let mut parts = text.splitn(4, ',');
        let (Some(v), Some(node), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let learner = match parts.next() {
            None => false,
            Some("learner") => true,
            Some(_) => return Err(bad()),
        };
        let id = v.parse::<u64>().map_err(|_| "bad member id")?;
        let node = NodeId::parse(node).map_err(|e| e.to_string())?;
        voters.push(super::member::Voter { id, node, addr: addr.to_string(), learner });
    }
    Ok((id, voters))
}

/// How long `CORESHARD-LOG-ADD` waits for the new member to catch up
/// before it gives up (the node then stays a learner).
pub const CATCH_UP_WAIT_MS: u64 = 20_000;
/// How often the leader looks at a learner's progress.
const CATCH_UP_POLL_MS: u64 = 50;
/// The most nodes a membership change is passed through to reach the
/// leader (a node outside the log, a voter, the leader).
const CHANGE_HOPS_MAX: u64 = 2;

/// A membership change asked of this node.
enum MemberOp {
    /// Add this node (with this control address) as a voter.
    Add(NodeId, String),
    /// Remove this node.
    Remove(NodeId),
}

/// Membership changes of the control log (docs/decisions/0006-control-log.md).
impl ClusterControl {
    /// This node's control log member, while it is one.
    pub fn member(&self) -> Option<Arc<super::member::Member>> {
        match self.member.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_member(&self, member: Option<Arc<super::member::Member>>) {
        match self.member.write() {
            Ok(mut m) => *m = member,
            Err(poisoned) => *poisoned.into_inner() = member,
        }
    }

    /// Called by the control thread of member `id` once it left the log:
    /// from now on this node takes configurations by push.
    pub fn left_log(&self, id: u64) {
        let mut slot = match self.member.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.as_ref().is_some_and(|m| m.membership().id == id) {
            *slot = None;
        }
    }

    /// Starts this node's membership `membership` (idempotent for the same one).
    fn join_log(self: &Arc<Self>, membership: super::member::Membership, r: &mut Reply) {
        let mut slot = match self.member.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(existing) = slot.as_ref() {
            // The same membership again, or the same learner told again
            // (the members listed may have moved on since).
            let learner = membership.voters.iter().any(|v| v.id == membership.id && v.learner);
            if existing.membership() == &membership || (learner && existing.membership().id == membership.id) {
                return r.ok();
            }
            return r.error("ERR this node is already a member of another control log");
        }
        match super::member::Member::join(&self.path, membership, self.clone()) {
            Ok(member) => {
                *slot = Some(Arc::new(member));
                r.ok();
            }
            Err(e) => r.error(&format!("ERR {e}")),
        }
    }

    /// `CLUSTER CORESHARD-LOG-LEARN <id> <id>,<node-id>,<ip:port>[,learner] ...`:
    /// makes this node member `<id>` of a running control log, as a
    /// learner (sent by the leader once the log committed its addition);
    /// the members listed are the ones it answers until the leader's
    /// snapshot tells it the members.
    fn log_learn(control: &Arc<ClusterControl>, args: &Args, r: &mut Reply) {
        let parsed = parse_members(args).and_then(|(id, voters)| {
            if !voters.iter().any(|v| v.id == id && v.learner) {
                return Err("this node must be listed as a learner".into());
            }
            if voters.iter().any(|v| v.id == id && v.node != control.myself()) {
                return Err("the learner listed is another node".into());
            }
            Ok(super::member::Membership { id, voters })
        });
        match parsed {
            Ok(membership) => control.join_log(membership, r),
            Err(e) => r.error(&format!("ERR {e}")),
        }
    }

    /// `CLUSTER CORESHARD-LOG-REMOVED <id>`: the leader's pusher says that
    /// member `<id>` (this node, away when its removal committed) is no
    /// longer one; it leaves the log.
    fn log_removed(&self, args: &Args, r: &mut Reply) {
        let Some(id) = std::str::from_utf8(args.get(2)).ok().and_then(|s| s.parse::<u64>().ok()) else {
            return r.error("ERR bad member id");
        };
        match self.member() {
            None => r.error("ERR this node is not a member of the control log"),
            Some(m) if m.membership().id != id => r.error("ERR this node is another member of the control log"),
            Some(m) => {
                m.removed();
                r.ok()
            }
        }
    }

    /// `CLUSTER CORESHARD-LOG-VOTERS`: the members as this member applied
    /// them, one line each: `<id> <node-id> <ip:port> voter|learner [leader]`.
    fn log_voters(&self, r: &mut Reply) {
        let Some(m) = self.member() else {
            return r.error("ERR this node is not a member of the control log");
        };
        let s = m.status();
        let mut text = String::new();
        for p in &s.peers {
            let role = if p.learner { "learner" } else { "voter" };
            let leader = if p.id == s.leader { " leader" } else { "" };
            let _ = writeln!(text, "{} {} {} {role}{leader}", p.id, p.node, p.addr);
        }
        r.verbatim(text.as_bytes());
    }

    /// `CLUSTER CORESHARD-LOG-ADD <node-id> <ip:cluster-port> [<hops>]`:
    /// makes a member of the cluster map a voter of the control log (see
    /// [`Self::add_member`]); answered once it is, or why not.
    fn log_add(self: &Arc<Self>, args: &Args, done: ReplyLater) {
        let node = match node_arg(args, 2) {
            Ok(n) => n,
            Err(e) => return done(error_reply(&e), None),
        };
        let addr = String::from_utf8_lossy(args.get(3)).into_owned();
        if addr.is_empty() || addr.contains([' ', ',']) {
            return done(error_reply("ERR bad control address"), None);
        }
        let Some(hops) = hops_arg(args, 4) else { return done(error_reply("ERR bad hop count"), None) };
        self.member_op_then(MemberOp::Add(node, addr), hops, done);
    }

    /// `CLUSTER CORESHARD-LOG-REMOVE <node-id> [<hops>]`: removes a member
    /// (voter or learner, alive or not) from the control log.
    fn log_remove(self: &Arc<Self>, args: &Args, done: ReplyLater) {
        let node = match node_arg(args, 2) {
            Ok(n) => n,
            Err(e) => return done(error_reply(&e), None),
        };
        let Some(hops) = hops_arg(args, 3) else { return done(error_reply("ERR bad hop count"), None) };
        self.member_op_then(MemberOp::Remove(node), hops, done);
    }

    /// Runs a membership change on a thread of its own (it waits for
    /// commits and, for an addition, the new member's catching up) and
    /// answers `done`.
    fn member_op_then(self: &Arc<Self>, op: MemberOp, hops: u64, done: ReplyLater) {
        if self.forwarding.fetch_add(1, Ordering::AcqRel) >= FORWARDS_MAX {
            self.forwarding.fetch_sub(1, Ordering::AcqRel);
            return done(error_reply(&format!("ERR {FORWARDS_MAX} requests are being passed on already")), None);
        }
        let control = self.clone();
        let spawned = std::thread::Builder::new().name("cs-member-change".into()).spawn(move || {
            let result = control.member_op(&op, hops);
            control.forwarding.fetch_sub(1, Ordering::AcqRel);
            let bytes = match result {
                Ok(text) => format!("+{}\r\n", text.replace(['\r', '\n'], " ")).into_bytes(),
                Err(e) if e.starts_with("ERR ") => error_reply(&e),
                Err(e) => error_reply(&format!("ERR {e}")),
            };
            done(bytes, None);
        });
        if let Err(e) = spawned {
            self.forwarding.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("cluster: can't start a thread for a membership change: {e}");
        }
    }

    /// A membership change: made here on the leader, else passed on to
    /// the leader (a member knows it) or to the nodes of the map in turn
    /// (a node outside the log, in the order of [`Self::forward_order`]),
    /// at most [`CHANGE_HOPS_MAX`] times.
    fn member_op(&self, op: &MemberOp, hops: u64) -> Result<String, String> {
        let parts: Vec<String> = match op {
            MemberOp::Add(node, addr) => {
                vec!["CLUSTER".into(), "CORESHARD-LOG-ADD".into(), node.to_string(), addr.clone()]
            }
            MemberOp::Remove(node) => vec!["CLUSTER".into(), "CORESHARD-LOG-REMOVE".into(), node.to_string()],
        };
        let wait = Duration::from_millis(CATCH_UP_WAIT_MS + 3 * super::member::PROPOSE_WAIT_MS);
        let pass = |ip: &str, port: u16| {
            let mut parts = parts.clone();
            parts.push((hops + 1).to_string());
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            match super::member::request_line(ip, port, &refs, wait) {
                Ok(line) if line.starts_with('+') => Ok(line[1..].to_string()),
                Ok(line) => Err(line.trim_start_matches('-').to_string()),
                Err(e) => Err(format!("unreachable {ip}:{port}: {e}")),
            }
        };
        if let Some(m) = self.member() {
            // During an election (or while the leader this member knows
            // is gone, until it notices), wait for the outcome as
            // proposals do.
            let deadline = Instant::now() + Duration::from_millis(2 * super::member::PROPOSE_WAIT_MS);
            loop {
                let status = m.status();
                let passed = if status.leader == status.id {
                    return match op {
                        MemberOp::Add(node, addr) => self.add_member(&m, node, addr),
                        MemberOp::Remove(node) => Self::remove_member(&m, node),
                    };
                } else if hops >= CHANGE_HOPS_MAX {
                    return Err("ERR this voter is not the control log leader".into());
                } else {
                    let config = self.config();
                    match status.leader_node.as_ref().and_then(|l| config.node(l)) {
                        Some(n) => pass(&n.ip, n.port),
                        None => Err("ERR no control log leader is known".to_string()),
                    }
                };
                match passed {
                    Err(e)
                        if (e.starts_with("unreachable ")
                            || e.contains("no control log leader is known")
                            || e.contains("not the control log leader"))
                            && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(CATCH_UP_POLL_MS * 2));
                    }
                    other => return other,
                }
            }
        }
        // Only a request made here is passed on by a node outside the log.
        if hops > 0 {
            return Err("ERR this node is not a member of the control log".into());
        }
        let mut last = "no node of the map is a control log voter".to_string();
        for n in self.forward_order() {
            match pass(&n.ip, n.port) {
                Ok(text) => return Ok(text),
                Err(e) if e.contains("this node is not a member of the control log") => {}
                Err(e) if e.contains("no control log leader is known") || e.starts_with("unreachable ") => {
                    last = format!("{}: {e}", n.id)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// On the leader: removes `node`. A node that is no member but among
    /// the members removed last was removed already (a request repeated
    /// after its answer was lost): that is success, as a repeated add of a
    /// voter is; a node never a member (or removed too long ago to be
    /// remembered) is refused.
    fn remove_member(m: &super::member::Member, node: &NodeId) -> Result<String, String> {
        let s = m.status();
        if !s.peers.iter().any(|p| &p.node == node) {
            if let Some(r) = s.removed.iter().rev().find(|r| &r.node == node) {
                return Ok(format!("node {node} (member {}) was removed already", r.id));
            }
        }
        let id = m.change(super::log::VoterChange::Remove(node.clone()))?;
        Ok(format!("node {node} (member {id}) removed"))
    }

    /// On the leader: adds `node` as a learner (or resumes a learner
    /// already there), tells it to start its control thread, waits until
    /// it holds the log up to the commit index, then promotes it.
    fn add_member(&self, m: &super::member::Member, node: &NodeId, addr: &str) -> Result<String, String> {
        use super::log::VoterChange;
        let config = self.config();
        let n = config.node(node).ok_or_else(|| format!("node {node} is not in the cluster's map"))?.clone();
        let deadline = Instant::now() + Duration::from_millis(CATCH_UP_WAIT_MS);
        let id = match m.status().peers.iter().find(|p| &p.node == node) {
            Some(p) if !p.learner => return Ok(format!("node {node} is voter {} already", p.id)),
            Some(p) => p.id,
            None => m.change(VoterChange::AddLearner { node: node.clone(), addr: addr.to_string() })?,
        };
        // The learner's control thread, with the members as of its addition.
        let peers = m.status().peers;
        let mut parts = vec!["CLUSTER".to_string(), "CORESHARD-LOG-LEARN".into(), id.to_string()];
        for p in &peers {
            parts.push(format!("{},{},{}{}", p.id, p.node, p.addr, if p.learner { ",learner" } else { "" }));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let timeout = Duration::from_millis(super::member::PROPOSE_WAIT_MS);
        let stays = format!(
            "it stays a learner (member {id}): run `coreshard-admin voters ... add` again once it answers, or \
             `voters ... remove` it"
        );
        loop {
            match super::member::request_line(&n.ip, n.port, &refs, timeout) {
                Ok(line) if line.starts_with("+OK") => break,
                Ok(line) if Instant::now() >= deadline => {
                    return Err(format!("node {node} refused to join: {}; {stays}", line.trim_start_matches('-')));
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("node {node} ({}:{}) did not answer: {e}; {stays}", n.ip, n.port));
                }
                _ => std::thread::sleep(Duration::from_millis(CATCH_UP_POLL_MS * 4)),
            }
        }
        loop {
            let s = m.status();
            if s.leader != s.id {
                return Err(format!("this node stopped leading the control log during the change; {stays}"));
            }
            let matched = s.matched.iter().find(|(p, _)| *p == id).map_or(0, |&(_, i)| i);
            if matched >= s.commit && s.commit > 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "node {node} did not catch up within {CATCH_UP_WAIT_MS} ms (it holds index {matched} of {}); {stays}",
                    s.commit
                ));
            }
            std::thread::sleep(Duration::from_millis(CATCH_UP_POLL_MS));
        }
        m.change(VoterChange::Promote(id))?;
        Ok(format!("node {node} is voter {id}"))
    }
}

/// [`ClusterControl`] shared with its control thread: the hook the shards call.
pub struct SharedControl(pub Arc<ClusterControl>);

impl ClusterHook for SharedControl {
    fn routing(&self) -> Routing {
        self.0.routing()
    }

    fn switch_migration(&self, id: u64, target: &str, lo: u16, hi: u16) -> Result<(), String> {
        self.0.switch_migration(id, target, lo, hi)
    }

    fn config_json(&self) -> Option<(u64, String)> {
        let config = self.0.config();
        serde_json::to_string(&config).ok().map(|json| (config.epoch, json))
    }

    fn reset(&self, hard: bool, done: ReplyLater) -> Result<(), String> {
        self.0.reset(hard, done)
    }

    fn command_async(&self, args: &Args, done: ReplyLater) -> Result<(), ReplyLater> {
        match args.get(1).to_ascii_uppercase().as_slice() {
            b"CORESHARD-PROPOSE" => self.0.propose(args, done),
            b"CORESHARD-SETCONFIG" if self.0.member().is_none() => self.0.set_config(args, done),
            b"CORESHARD-LOG-ADD" => self.0.log_add(args, done),
            b"CORESHARD-LOG-REMOVE" => self.0.log_remove(args, done),
            _ => return Err(done),
        }
        Ok(())
    }

    fn command(&self, args: &Args, r: &mut Reply) -> Option<Routing> {
        match args.get(1).to_ascii_uppercase().as_slice() {
            b"CORESHARD-LOG-JOIN" => ClusterControl::log_join(&self.0, args, r),
            b"CORESHARD-PROPOSE" => {
                // Run through `command_async`; answered here only if a
                // caller does not (a transaction).
                r.error("ERR CORESHARD-PROPOSE is not allowed in a transaction")
            }
            b"CORESHARD-LOG" => self.0.log_status(r),
            // A voter's configuration moves only with the log's commits.
            b"CORESHARD-LOG-LEARN" => ClusterControl::log_learn(&self.0, args, r),
            b"CORESHARD-LOG-REMOVED" => self.0.log_removed(args, r),
            b"CORESHARD-LOG-VOTERS" => self.0.log_voters(r),
            b"CORESHARD-LOG-ADD" | b"CORESHARD-LOG-REMOVE" => {
                r.error("ERR membership changes are not allowed in a transaction")
            }
            b"CORESHARD-SETCONFIG" if self.0.member().is_some() => {
                r.error("ERR this node's configuration comes from the control log: use CLUSTER CORESHARD-PROPOSE")
            }
            // Run through `command_async` (it waits for the file's write).
            b"CORESHARD-SETCONFIG" => r.error("ERR CORESHARD-SETCONFIG is not allowed in a transaction"),
            _ => return self.0.command(args, r),
        }
        None
    }
}

impl ClusterHook for ClusterControl {
    fn routing(&self) -> Routing {
        let state = self.state();
        routing_of(&state, self.require_full_coverage).with_generation(self.generation.load(Ordering::Acquire))
    }

    fn command(&self, args: &Args, r: &mut Reply) -> Option<Routing> {
        match args.get(1).to_ascii_uppercase().as_slice() {
            b"MYID" => r.bulk(self.state().myself.as_str().as_bytes()),
            b"NODES" => r.verbatim(nodes_text(&self.state()).as_bytes()),
            b"INFO" => r.verbatim(info_text(&self.state(), self.require_full_coverage).as_bytes()),
            b"SLOTS" => slots_reply(&self.state().config, r),
            b"SHARDS" => shards_reply(&self.state().config, r),
            b"CORESHARD-LEFT" => self.left(args, r),
            _ => r.error(&format!("ERR unknown subcommand '{}'. Try CLUSTER HELP.", printable(args.get(1), 128))),
        }
        None
    }
}

impl ClusterControl {
    /// `CLUSTER CORESHARD-LEFT <epoch>`: the cluster removed this node at
    /// config `epoch` (del-node sends it before CLUSTER RESET SOFT). From
    /// now on no configuration at that epoch or below is installed: the
    /// control log's leader may still be pushing one that lists this node
    /// (it pushes until a node has the newest epoch it knows, which may lag
    /// the removal), and a SOFT-reset node keeps its id and epoch, so it
    /// would take it and be back in the cluster it left. A later add-node
    /// joins it at a higher epoch. The mark goes into the config file with
    /// the configuration (the reset that follows writes it too, and is
    /// answered once written), so a restart keeps it; a HARD reset clears
    /// it. Refused on a control log voter.
    fn left(&self, args: &Args, r: &mut Reply) {
        let Some(epoch) = num::parse_i64(args.get(2)).and_then(|e| u64::try_from(e).ok()) else {
            return r.error("ERR Invalid config epoch specified");
        };
        if self.member().is_some() {
            return r.error("ERR a control log voter cannot leave the cluster");
        }
        let mut state = self.state();
        if epoch > state.left_at {
            state.left_at = epoch;
            self.writer.submit(self.generation.load(Ordering::Acquire), state.clone());
        }
        r.ok();
    }

    /// `CLUSTER CORESHARD-SETCONFIG <epoch> <json>`: installs a whole
    /// configuration whose epoch is higher than this node's; `done` gets
    /// `+OK` and the routing once it is written and published, or the error.
    fn set_config(&self, args: &Args, done: ReplyLater) {
        let Some(epoch) = num::parse_i64(args.get(2)).and_then(|e| u64::try_from(e).ok()) else {
            return done(error_reply("ERR Invalid config epoch specified"), None);
        };
        let config: ClusterConfig = match serde_json::from_slice(args.get(3)) {
            Ok(c) => c,
            Err(e) => return done(error_reply(&format!("ERR invalid cluster configuration: {e}")), None),
        };
        self.install_then(epoch, &ConfigChange::Replace(config), move |r| match r {
            Ok(routing) => done(b"+OK\r\n".to_vec(), Some(routing)),
            Err(e) => done(error_reply(&format!("ERR {e}")), None),
        });
    }
}

/// A membership request's node id argument at `i`, or the error to answer.
fn node_arg(args: &Args, i: usize) -> Result<NodeId, String> {
    std::str::from_utf8(args.get(i))
        .map_err(|e| e.to_string())
        .and_then(|t| NodeId::parse(t).map_err(|e| e.to_string()))
        .map_err(|e| format!("ERR bad node id: {e}"))
}

/// A membership request's optional hop count at `i` (0 when absent); None
/// when it is not a count.
fn hops_arg(args: &Args, i: usize) -> Option<u64> {
    if args.len() <= i {
        return Some(0);
    }
    num::parse_i64(args.get(i)).and_then(|h| u64::try_from(h).ok())
}

/// CLUSTER NODES: one line per node, Redis's format. coreshard has no
/// cluster bus, so the bus port is 0, pings and pongs 0, and every link
/// `connected`.
fn nodes_text(file: &NodesFile) -> String {
    let c = &file.config;
    let mut out = String::new();
    for n in &c.nodes {
        let role = if n.is_primary() { "master" } else { "slave" };
        let flags = if n.id == file.myself { format!("myself,{role}") } else { role.to_string() };
        let primary = n.primary_id().map_or("-", NodeId::as_str);
        let _ = write!(out, "{} {}:{}@0 {flags} {primary} 0 0 {} connected", n.id, n.ip, n.port, c.epoch);
        for r in &n.slots {
            let _ = write!(out, " {r}");
        }
        out.push('\n');
    }
    out
}

/// CLUSTER INFO, Redis's fields. No failure detection yet: assigned slots
/// are ok slots.
fn info_text(file: &NodesFile, require_full_coverage: bool) -> String {
    let c = &file.config;
    let assigned = c.slots_assigned();
    let state = if state_ok(c, require_full_coverage) { "ok" } else { "fail" };
    format!(
        "cluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\n\
         cluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\n\
         cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        c.nodes.len(),
        c.size(),
        c.epoch,
        c.epoch,
    )
}

/// One node in CLUSTER SLOTS: ip, port, id, and an empty map of further endpoints.
fn slot_node(n: &Node, r: &mut Reply) {
    r.array(4);
    r.bulk(n.ip.as_bytes());
    r.int(n.port as i64);
    r.bulk(n.id.as_str().as_bytes());
    r.map(0);
}

/// CLUSTER SLOTS: each run of consecutive slots served by one primary, with
/// the primary and then its replicas.
fn slots_reply(c: &ClusterConfig, r: &mut Reply) {
    let owners = c.slot_owners();
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (slot, owner) in owners.iter().enumerate() {
        let Some(owner) = *owner else { continue };
        match runs.last_mut() {
            Some((_, end, node)) if *node == owner && *end + 1 == slot => *end = slot,
            _ => runs.push((slot, slot, owner)),
        }
    }
    r.array(runs.len());
    for (start, end, node) in runs {
        let primary = &c.nodes[node];
        let replicas: Vec<&Node> = c.replicas_of(&primary.id).collect();
        r.array(3 + replicas.len());
        r.int(start as i64);
        r.int(end as i64);
        slot_node(primary, r);
        for replica in replicas {
            slot_node(replica, r);
        }
    }
}

/// One node in CLUSTER SHARDS.
fn shard_node(n: &Node, r: &mut Reply) {
    r.map(7);
    r.bulk(b"id");
    r.bulk(n.id.as_str().as_bytes());
    r.bulk(b"port");
    r.int(n.port as i64);
    r.bulk(b"ip");
    r.bulk(n.ip.as_bytes());
    r.bulk(b"endpoint");
    r.bulk(n.ip.as_bytes());
    r.bulk(b"role");
    r.bulk(if n.is_primary() { b"master" } else { b"replica" });
    // Replication offsets are not gathered across nodes yet.
    r.bulk(b"replication-offset");
    r.int(0);
    r.bulk(b"health");
    r.bulk(b"online");
}

/// CLUSTER SHARDS: each primary with its slot ranges, then it and its replicas.
fn shards_reply(c: &ClusterConfig, r: &mut Reply) {
    let primaries: Vec<&Node> = c.primaries().collect();
    r.array(primaries.len());
    for p in primaries {
        r.map(2);
        r.bulk(b"slots");
        r.array(p.slots.len() * 2);
        for range in &p.slots {
            r.int(range.start as i64);
            r.int(range.end as i64);
        }
        r.bulk(b"nodes");
        let replicas: Vec<&Node> = c.replicas_of(&p.id).collect();
        r.array(1 + replicas.len());
        shard_node(p, r);
        for replica in replicas {
            shard_node(replica, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::config::{Role, SlotRange};
    use coreshard_engine::Proto;

    fn id(n: u8) -> NodeId {
        NodeId::parse(&format!("{:040x}", n)).unwrap()
    }

    fn cluster() -> NodesFile {
        let mut a = Node::primary(id(1), "127.0.0.1", 7000);
        a.slots = vec![SlotRange::new(0, 8191)];
        let mut b = Node::primary(id(2), "127.0.0.1", 7001);
        b.slots = vec![SlotRange::new(8192, 16383)];
        let c = Node { role: Role::Replica { of: id(1) }, ..Node::primary(id(3), "127.0.0.1", 7002) };
        NodesFile::new(id(3), ClusterConfig { epoch: 4, nodes: vec![a, b, c], migrations: Vec::new() })
    }

    #[test]
    fn nodes_lines_follow_redis_format() {
        let text = nodes_text(&cluster());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{} 127.0.0.1:7000@0 master - 0 0 4 connected 0-8191", id(1)));
        assert_eq!(lines[2], format!("{} 127.0.0.1:7002@0 myself,slave {} 0 0 4 connected", id(3), id(1)));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn slots_group_runs_with_their_replicas() {
        let mut out = Vec::new();
        slots_reply(&cluster().config, &mut Reply::new(&mut out, Proto::Resp2));
        let text = String::from_utf8(out).unwrap();
        let first = format!(
            "*2\r\n*4\r\n:0\r\n:8191\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$40\r\n{}\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:7002\r\n$40\r\n{}\r\n*0\r\n*3\r\n:8192\r\n",
            id(1),
            id(3)
        );
        assert!(text.starts_with(&first), "{text:?}");
    }

    #[test]
    fn routing_marks_the_replica_and_its_primary() {
        let r = routing_of(&cluster(), true);
        assert!(r.state_ok);
        assert_eq!(r.replica_of, Some(("127.0.0.1".into(), 7000)));
        assert_eq!(r.owner(0), Some(0));
        assert_eq!(r.owner(16383), Some(1));
        let mut partial = cluster();
        partial.config.nodes[1].slots.clear();
        assert!(!routing_of(&partial, true).state_ok);
        assert!(routing_of(&partial, false).state_ok);
        let info = info_text(&partial, true);
        assert!(info.starts_with("cluster_state:fail\r\ncluster_slots_assigned:8192\r\n"), "{info}");
    }
}
