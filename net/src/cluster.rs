//! Cluster mode's data-path side: which node serves each of the 16384
//! slots, the redirections a client gets (MOVED, CROSSSLOT, CLUSTERDOWN),
//! READONLY/READWRITE, and the CLUSTER subcommands that read this node's
//! keyspace (KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT).
//!
//! The cluster configuration itself (node ids, roles, slot ranges, the
//! config epoch, its file, how changes arrive) is not kept here: a
//! [`ClusterHook`], filled in by the `repl` crate, owns it and publishes an
//! immutable [`Routing`] each time it changes. Shards read that snapshot
//! without a lock: each caches an `Arc<Routing>` and compares one atomic
//! epoch per loop turn.
//!
//! ```text
//!   CLUSTER <sub> ──▶ ClusterHook (repl) ──publish──▶ Cluster { epoch, Arc<Routing> }
//!                                                        │ one atomic load per loop turn
//!                                  shard 0 .. n: cached Arc<Routing> ──▶ route(keys) per command
//! ```

use crate::conn::Conn;
use crate::shard::Shard;
use coreshard_engine::cmd::{CommandSpec, Ctx, flags};
use coreshard_engine::reply::NOT_INTEGER;
use coreshard_engine::slot::{SLOTS, key_slot};
use coreshard_engine::{Args, Reply, num};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{Arc, Mutex};

/// The owner of a slot no node serves.
pub const UNASSIGNED: u16 = u16::MAX;

/// `-CROSSSLOT`: the keys of one command (or of one transaction) are in
/// different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
/// `-CLUSTERDOWN` for a key of a slot no node serves.
pub const SLOT_NOT_SERVED: &str = "CLUSTERDOWN Hash slot not served";
/// `-CLUSTERDOWN` while the cluster is down (slots uncovered with
/// `cluster-require-full-coverage yes`, or no primary serves any slot).
pub const CLUSTER_DOWN: &str = "CLUSTERDOWN The cluster is down";
/// The error of every cluster command outside cluster mode.
pub const DISABLED: &str = "ERR This instance has cluster support disabled";

/// An immutable snapshot of who serves what, for the shards' hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// The config epoch it was made from.
    pub epoch: u64,
    /// How many times the node's configuration was reset (CLUSTER RESET)
    /// before this routing, since the node started: a reset may take the
    /// epoch back (to 0 for HARD), so routings are ordered by
    /// (generation, epoch), not by epoch alone.
    pub generation: u64,
    /// The owning node's index in `addrs` per slot, or [`UNASSIGNED`].
    slot_owner: Box<[u16]>,
    /// `ip:port` of each node, as MOVED names it.
    addrs: Vec<String>,
    /// This node's index in `addrs` (None: not in the configuration).
    myself: Option<u16>,
    /// The index of the primary this node replicates, when it is a replica.
    my_primary: Option<u16>,
    /// `cluster_state:ok`: keys are served (else CLUSTERDOWN).
    pub state_ok: bool,
    /// Where this node replicates from, as its configuration says.
    pub replica_of: Option<(String, u16)>,
    /// Outcomes of migrations switched through the control log, as the
    /// configuration records them: (id, switched). Published with the
    /// routing they came with, so a source that reads "switched" here
    /// routes the slots to the target already.
    migrations: Vec<(u64, bool)>,
}

/// Where a command's keys must be served, when not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// Another node serves the slot: MOVED.
    Moved {
        /// The keys' slot.
        slot: u16,
        /// The serving node's index.
        node: u16,
    },
    /// Keys in different slots.
    CrossSlot,
    /// The first key's slot has no node.
    Unbound,
    /// The cluster is down.
    Down,
}

impl Routing {
    /// A routing table: `slot_owner` holds one node index (into `addrs`) or
    /// [`UNASSIGNED`] per slot; shorter tables leave the rest unassigned.
    pub fn new(
        epoch: u64,
        addrs: Vec<String>,
        mut slot_owner: Vec<u16>,
        myself: Option<u16>,
        my_primary: Option<u16>,
        state_ok: bool,
        replica_of: Option<(String, u16)>,
    ) -> Self {
        slot_owner.resize(SLOTS, UNASSIGNED);
        for o in &mut slot_owner {
            if *o as usize >= addrs.len() {
                *o = UNASSIGNED;
            }
        }
        Routing {
            epoch,
            generation: 0,
            slot_owner: slot_owner.into(),
            addrs,
            myself,
            my_primary,
            state_ok,
            replica_of,
            migrations: Vec::new(),
        }
    }

    /// The same routing, made in reset generation `generation`.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The order of routings: (generation, epoch).
    pub fn version(&self) -> (u64, u64) {
        (self.generation, self.epoch)
    }

    /// True when this node replicates a primary, as its configuration says.
    pub fn is_replica(&self) -> bool {
        self.my_primary.is_some()
    }

    /// The same routing with the configuration's migration outcomes.
    pub fn with_migrations(mut self, migrations: Vec<(u64, bool)>) -> Self {
        self.migrations = migrations;
        self
    }

    /// Migration `id`'s outcome in the control log, when decided: true
    /// when its slots switched to the target.
    pub fn migration(&self, id: u64) -> Option<bool> {
        self.migrations.iter().rev().find(|m| m.0 == id).map(|m| m.1)
    }

    /// A node that knows only itself and serves nothing (a fresh node).
    pub fn empty() -> Self {
        Routing::new(0, Vec::new(), Vec::new(), None, None, false, None)
    }

    /// True when this node serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.myself.is_some() && self.owner(slot) == self.myself
    }

    /// The node serving `slot`, as an index, or None.
    pub fn owner(&self, slot: u16) -> Option<u16> {
        self.slot_owner.get(slot as usize).copied().filter(|&o| o != UNASSIGNED)
    }

    /// Decides where a command whose keys have these slots runs, as Redis's
    /// `getNodeByQuery` does: an unassigned first slot is CLUSTERDOWN, a
    /// second slot CROSSSLOT, a down cluster CLUSTERDOWN, a slot of another
    /// node MOVED, except that a replica serves reads of its primary's slots
    /// to a READONLY connection. Keyless commands always run here.
    #[inline]
    pub fn route(
        &self,
        mut slots: impl Iterator<Item = u16>,
        write: bool,
        readonly_conn: bool,
    ) -> Result<(), Redirect> {
        let Some(slot) = slots.next() else { return Ok(()) };
        let Some(owner) = self.owner(slot) else { return Err(Redirect::Unbound) };
        if slots.any(|s| s != slot) {
            return Err(Redirect::CrossSlot);
        }
        if !self.state_ok {
            return Err(Redirect::Down);
        }
        if Some(owner) == self.myself {
            return Ok(());
        }
        if readonly_conn && !write && self.my_primary == Some(owner) {
            return Ok(());
        }
        Err(Redirect::Moved { slot, node: owner })
    }

    /// The error text of a redirection.
    pub fn error_text(&self, r: Redirect) -> String {
        match r {
            Redirect::Moved { slot, node } => {
                format!("MOVED {slot} {}", self.addrs.get(node as usize).map(String::as_str).unwrap_or("?:0"))
            }
            Redirect::CrossSlot => CROSSSLOT.to_string(),
            Redirect::Unbound => SLOT_NOT_SERVED.to_string(),
            Redirect::Down => CLUSTER_DOWN.to_string(),
        }
    }
}

/// The cluster configuration's owner (the `repl` crate's cluster control).
pub trait ClusterHook: Send + Sync {
    /// The routing of the configuration as it is now.
    fn routing(&self) -> Routing;

    /// Runs `CLUSTER <sub> ...` for every subcommand this module does not
    /// run itself (everything but KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT
    /// and HELP), writing its whole reply. Returns the new routing when the
    /// command changed the configuration, which is then published to every
    /// shard.
    fn command(&self, args: &Args, reply: &mut Reply) -> Option<Routing>;

    /// A migration's switch through the control log: proposes that slots
    /// `lo..=hi` move from this node to node `target` as migration `id`,
    /// and, until the log has an outcome for `id` (see
    /// [`Routing::migration`]), proposes its cancellation, retrying while
    /// no majority answers. Works in the background; an error means it
    /// did not start, so nothing was proposed.
    fn switch_migration(&self, id: u64, target: &str, lo: u16, hi: u16) -> Result<(), String> {
        let _ = (id, target, lo, hi);
        Err("this node has no control log to switch through".into())
    }

    /// `CLUSTER RESET [HARD|SOFT]` (`hard` true for HARD), once the shard
    /// checked what needs the keyspace (a primary holding keys is refused
    /// before): the node forgets every other node and serves no slots,
    /// with a new node id and epoch 0 for HARD. Like
    /// [`Self::command_async`], `done` gets the whole reply once the reset
    /// configuration is written and published.
    ///
    /// Returns the refusal at once (nothing changed then); Ok means the
    /// reset is accepted and `done` will get the reply.
    fn reset(&self, hard: bool, done: ReplyLater) -> Result<(), String> {
        let _ = (hard, done);
        Err("ERR CLUSTER RESET is not supported by this node".into())
    }

    /// The configuration this node has accepted, as `CORESHARD-SETCONFIG`
    /// takes it (epoch, JSON); None when it cannot say.
    fn config_json(&self) -> Option<(u64, String)> {
        None
    }

    /// Runs `CLUSTER <sub> ...` when it waits for something outside the
    /// node (CORESHARD-PROPOSE waits for the control log): the work goes on
    /// off the shard and `done` gets the whole reply (RESP bytes) later,
    /// from another thread; the connection waits, its shard does not.
    /// Gives `done` back when `args` is no such command.
    fn command_async(&self, args: &Args, done: ReplyLater) -> Result<(), ReplyLater> {
        let _ = args;
        Err(done)
    }
}

/// Where [`ClusterHook::command_async`] delivers its reply, with the
/// routing it made in force when it changed the configuration (already
/// published: the connection's shard then follows its primary, if any).
pub type ReplyLater = Box<dyn FnOnce(Vec<u8>, Option<Routing>) + Send>;

/// Cluster state every shard can read.
pub struct Cluster {
    /// Bumped each time `current` changes; shards compare it once per loop turn.
    version: AtomicU64,
    /// The newest configuration accepted and being written to the config
    /// file (it comes in force once written), as its reset generation and
    /// epoch: while it is newer than the routing in force, a command this
    /// node would redirect waits for it instead. Written under `current`'s lock.
    pending_generation: AtomicU64,
    pending: AtomicU64,
    /// The routing now in force; swapped whole, read by cloning the Arc.
    current: Mutex<Arc<Routing>>,
    hook: Box<dyn ClusterHook>,
}

impl Cluster {
    /// How many routings were published so far (it only grows, whatever
    /// the epochs do across a reset).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Acquire)
    }

    /// Cluster state owned by `hook`, starting with its current routing.
    pub fn new(hook: Box<dyn ClusterHook>) -> Self {
        let routing = Arc::new(hook.routing());
        Cluster {
            version: AtomicU64::new(0),
            pending_generation: AtomicU64::new(routing.generation),
            pending: AtomicU64::new(0),
            current: Mutex::new(routing),
            hook,
        }
    }

    /// The routing now in force.
    pub fn snapshot(&self) -> Arc<Routing> {
        self.current().clone()
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Arc<Routing>> {
        match self.current.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Makes `routing` the one in force, unless a newer one (by reset
    /// generation, then epoch) is already; shards pick it up on their next turn.
    pub fn publish(&self, routing: Routing) {
        let mut current = self.current();
        if routing.version() < current.version() {
            return;
        }
        self.raise_pending(routing.version());
        *current = Arc::new(routing);
        self.version.fetch_add(1, Release);
    }

    /// A configuration of `epoch` (in reset generation `generation`) was
    /// accepted and comes in force once written (then [`Self::publish`]).
    pub fn note_pending(&self, generation: u64, epoch: u64) {
        let _current = self.current();
        self.raise_pending((generation, epoch));
    }

    /// Raises the pending (generation, epoch) to `to`; under `current`'s lock.
    fn raise_pending(&self, to: (u64, u64)) {
        if to > (self.pending_generation.load(Acquire), self.pending.load(Acquire)) {
            // The epoch first: a reader seeing the new generation sees it.
            self.pending.store(to.1, Release);
            self.pending_generation.store(to.0, Release);
        }
    }

    /// True while an accepted configuration newer than `routing`'s is
    /// being written.
    #[inline]
    pub fn newer_pending(&self, routing: &Routing) -> bool {
        let generation = self.pending_generation.load(Acquire);
        if generation != routing.generation {
            return generation > routing.generation;
        }
        self.pending.load(Acquire) > routing.epoch
    }

    /// The hook that owns the configuration.
    pub fn hook(&self) -> &dyn ClusterHook {
        &*self.hook
    }
}

/// A shard's cached view of the routing.
pub(crate) struct ShardCluster {
    pub shared: Arc<Cluster>,
    pub routing: Arc<Routing>,
    /// The shared version `routing` was read at.
    pub version: u64,
}

impl ShardCluster {
    pub fn new(shared: Arc<Cluster>) -> Self {
        let version = shared.version.load(Acquire);
        let routing = shared.snapshot();
        ShardCluster { shared, routing, version }
    }

    /// Picks up a newly published routing: one atomic load when none was.
    #[inline]
    pub fn refresh(&mut self) {
        let version = self.shared.version.load(Acquire);
        if version != self.version {
            self.version = version;
            self.routing = self.shared.snapshot();
        }
    }

    /// Checks a command's keys against the routing; the error text when it
    /// must be served elsewhere.
    #[inline]
    pub fn check(&self, spec: &CommandSpec, args: &Args, readonly_conn: bool) -> Result<(), String> {
        let write = spec.has(flags::WRITE);
        let routed = if spec.has(flags::EXTRA_KEYS) {
            // ZUNIONSTORE's sources, SORT's STORE: keys beyond the key positions.
            let keys = crate::tx::command_keys(spec, args).unwrap_or_else(|| spec.keys(args).collect());
            self.routing.route(keys.iter().map(|&i| key_slot(args.get(i))), write, readonly_conn)
        } else {
            self.routing.route(spec.keys(args).map(|i| key_slot(args.get(i))), write, readonly_conn)
        };
        routed.map_err(|r| self.routing.error_text(r))
    }

    /// Checks the commands a transaction queued, all together, as EXEC does.
    pub fn check_exec(
        &self,
        table: &coreshard_engine::CommandTable,
        cmds: &[coreshard_engine::OwnedArgs],
        readonly_conn: bool,
    ) -> Result<(), String> {
        let mut slots = Vec::new();
        let mut write = false;
        for cmd in cmds {
            let args = cmd.view();
            let Some(spec) = table.lookup(args.get(0)) else { continue };
            write |= spec.has(flags::WRITE);
            let keys = crate::tx::command_keys(spec, &args).unwrap_or_else(|| spec.keys(&args).collect());
            slots.extend(keys.iter().map(|&i| key_slot(args.get(i))));
        }
        self.routing.route(slots.into_iter(), write, readonly_conn).map_err(|r| self.routing.error_text(r))
    }
}

/// The subcommands of CLUSTER with their arities, as Redis 7 registers them
/// (those coreshard answers).
const SUBCOMMANDS: &[(&str, i32)] = &[
    ("COUNTKEYSINSLOT", 3),
    ("GETKEYSINSLOT", 4),
    ("INFO", 2),
    ("KEYSLOT", 3),
    ("MYID", 2),
    ("NODES", 2),
    ("SHARDS", 2),
    ("SLOTS", 2),
    ("HELP", 2),
    ("RESET", -2),
    ("CORESHARD-SETCONFIG", 4),
    ("CORESHARD-LEFT", 3),
    ("CORESHARD-LOG-JOIN", -6),
    ("CORESHARD-PROPOSE", -3),
    ("CORESHARD-LOG", 2),
    ("CORESHARD-LOG-LEARN", -5),
    ("CORESHARD-LOG-ADD", -4),
    ("CORESHARD-LOG-REMOVE", -3),
    ("CORESHARD-LOG-REMOVED", 3),
    ("CORESHARD-LOG-VOTERS", 2),
    ("CORESHARD-MIGRATE", -3),
];

/// CLUSTER HELP's lines (before HELP itself), for the subcommands coreshard has.
const HELP: &[&str] = &[
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "CORESHARD-SETCONFIG <epoch> <config>",
    "    Install a newer cluster configuration (internal: sent by coreshard-admin).",
    "CORESHARD-LEFT <epoch>",
    "    Take no configuration up to <epoch>, at which the cluster removed this node (internal: del-node).",
    "CORESHARD-LOG-JOIN <voter-id> <voter-id>,<node-id>,<ip:port> ...",
    "    Make this node a voter of the control log (internal: sent by coreshard-admin).",
    "CORESHARD-PROPOSE <change> [FORWARDED]",
    "    Commit a configuration change through the control log; returns its epoch.",
    "CORESHARD-LOG",
    "    Return the control log's voter id, term, leader and epoch on this node.",
    "CORESHARD-LOG-VOTERS",
    "    Return the control log's members: id, node id, address, voter or learner, leader.",
    "CORESHARD-LOG-ADD <node-id> <ip:cluster-port>",
    "    Make a node of the cluster a voter of the control log (a learner first; sent by coreshard-admin).",
    "CORESHARD-LOG-REMOVE <node-id>",
    "    Remove a voter or learner from the control log (sent by coreshard-admin).",
    "CORESHARD-LOG-LEARN <id> <id>,<node-id>,<ip:port>[,learner] ...",
    "    Start this node as a learner of the control log (internal: sent by its leader).",
    "CORESHARD-LOG-REMOVED <id>",
    "    Tell a member that it was removed from the control log (internal: sent by its leader).",
    "CORESHARD-MIGRATE PULL <host> <port> <lo> <hi> [<id>] | CUTOVER <epoch> <config> <pause-ms> |",
    "    CUTOVER LOG <id> <target-id> <pause-ms> | ABORT | STATUS",
    "    Slot migration steps (internal: sent by coreshard-admin migrate).",
];

/// Parses a slot argument: Redis's `getSlotOrReply`.
fn parse_slot(arg: &[u8]) -> Result<u16, &'static str> {
    match num::parse_i64(arg) {
        None => Err(NOT_INTEGER),
        Some(s) if !(0..SLOTS as i64).contains(&s) => Err("ERR Invalid slot"),
        Some(s) => Ok(s as u16),
    }
}

/// `CLUSTER <subcommand> ...`.
pub(crate) fn run(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    let Some(cluster) = shard.shared.cluster.clone() else {
        return conn.reply().error(DISABLED);
    };
    if !crate::commands::check_subcommand(conn, "cluster", SUBCOMMANDS, &args) {
        return;
    }
    match args.get(1).to_ascii_uppercase().as_slice() {
        b"KEYSLOT" => conn.reply().int(key_slot(args.get(2)) as i64),
        b"COUNTKEYSINSLOT" => match parse_slot(args.get(2)) {
            Err(e) => conn.reply().error(e),
            Ok(slot) => shard.run_whole(shard.map.owner(slot), idx, conn, args, count_keys_in_slot),
        },
        b"GETKEYSINSLOT" => {
            // Both are parsed as integers before either is checked.
            let (Some(slot), Some(count)) = (num::parse_i64(args.get(2)), num::parse_i64(args.get(3))) else {
                return conn.reply().error(NOT_INTEGER);
            };
            if !(0..SLOTS as i64).contains(&slot) || count < 0 {
                return conn.reply().error("ERR Invalid slot or number of keys");
            }
            shard.run_whole(shard.map.owner(slot as u16), idx, conn, args, get_keys_in_slot);
        }
        b"HELP" => crate::commands::help(conn, "CLUSTER", HELP),
        b"CORESHARD-MIGRATE" => crate::repl::migrate::command(shard, idx, conn, args),
        b"RESET" => reset(shard, idx, conn, &cluster, &args),
        _ if !conn.in_exec => {
            // A command that waits (CORESHARD-PROPOSE) parks the connection
            // and answers through this shard's control channel.
            let later = reply_later(shard, idx, conn);
            match cluster.hook().command_async(&args, later) {
                Ok(()) => conn.cluster_wait = true,
                Err(_) => run_hook(shard, conn, &cluster, &args),
            }
        }
        _ => run_hook(shard, conn, &cluster, &args),
    }
}

/// Where a CLUSTER command that waits answers: this shard's control
/// channel, to connection `idx` if it is still `conn`.
fn reply_later(shard: &Shard, idx: u32, conn: &Conn) -> ReplyLater {
    let (shared, id, at) = (shard.shared.clone(), conn.id, shard.id);
    Box::new(move |bytes, routing| {
        let routing = routing.map(Box::new);
        if shared.control[at].send(crate::shared::Control::ClusterReply { idx, id, bytes, routing }).is_ok() {
            shared.wake(at);
        }
    })
}

/// `CLUSTER RESET [HARD|SOFT]`, as Redis's `clusterReset`: a primary must
/// hold no keys; a replica stops replicating, becomes a primary and is
/// flushed; the node then forgets every other node and serves no slots
/// (the hook's part, acted on once the config file holds it), and a HARD
/// reset also takes a new node id and epoch 0.
///
/// The keys are counted from each shard's published figures (this shard's
/// own, live): a write of this connection still in flight on another
/// shard (pipelined right before) is not seen, and one that reaches a
/// primary between the count and the reset stays, unserved (no slots).
fn reset(shard: &mut Shard, idx: u32, conn: &mut Conn, cluster: &Arc<Cluster>, args: &Args) {
    let hard = match args.len() {
        2 => false,
        3 if args.is(2, "HARD") => true,
        3 if args.is(2, "SOFT") => false,
        3 => return conn.reply().error(coreshard_engine::reply::SYNTAX),
        _ => {
            return conn.reply().error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
                coreshard_engine::cmd::printable(args.get(1), 128)
            ));
        }
    };
    if conn.in_exec || conn.multi.is_some() {
        return conn.reply().error("ERR CLUSTER RESET is not allowed in a transaction");
    }
    let replica = cluster.snapshot().is_replica() || shard.shared.repl.lock().master.is_some();
    if !replica {
        let own: usize = shard.ks.dbs().iter().map(|db| db.len()).sum();
        let others: u64 = (shard.shared.stats.iter().enumerate())
            .filter(|&(s, _)| s != shard.id)
            .flat_map(|(_, st)| st.keys.iter())
            .map(|k| k.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        if own as u64 + others > 0 {
            return conn.reply().error("ERR CLUSTER RESET can't be called with master nodes containing keys");
        }
    }
    let later = reply_later(shard, idx, conn);
    if let Err(e) = cluster.hook().reset(hard, later) {
        return conn.reply().error(&e);
    }
    // Accepted: the node is a primary of its own from now on, as Redis's
    // reset turns a replica into a primary before it forgets the others.
    crate::repl::stop_replicating(shard);
    conn.cluster_wait = true;
    conn.reset_flush = replica;
}

/// A CLUSTER subcommand the hook runs at once.
fn run_hook(shard: &Shard, conn: &mut Conn, cluster: &Cluster, args: &Args) {
    let changed = cluster.hook().command(args, &mut conn.reply());
    if let Some(routing) = changed {
        follow_configured_primary(shard, &routing);
        cluster.publish(routing);
    }
}

/// The reply of a CLUSTER command that waited ([`ClusterHook::command_async`])
/// reaches its connection, if it is still the same one. A replica's CLUSTER
/// RESET flushes the node here, also when its client has gone: the closed
/// connection is kept until this reply (`Shard::begin_close`).
pub(crate) fn on_reply(shard: &mut Shard, idx: u32, id: u64, bytes: Vec<u8>, routing: Option<Box<Routing>>) {
    if let Some(routing) = routing {
        follow_configured_primary(shard, &routing);
    }
    let Some(conn) = shard.conns[idx as usize].as_mut() else { return };
    if conn.id != id || !conn.cluster_wait {
        return;
    }
    conn.cluster_wait = false;
    let flush = std::mem::take(&mut conn.reset_flush) && bytes.starts_with(b"+");
    if !flush {
        conn.out.extend_from_slice(&bytes);
    } else if let Some(mut conn) = shard.conns[idx as usize].take() {
        // A replica's CLUSTER RESET: its data goes too; FLUSHALL's reply
        // (once every shard is flushed) is the reset's.
        let spans = [std::ops::Range { start: 0, end: 8 }];
        shard.execute(idx, &mut conn, Args::new(b"FLUSHALL", &spans));
        shard.conns[idx as usize] = Some(conn);
    }
    shard.continue_conn(idx);
}

/// Makes this node replicate what its new configuration says (a primary
/// that became a replica, or a replica of another primary). A replica the
/// configuration makes a primary keeps following until told otherwise
/// (REPLICAOF NO ONE): promotion comes with failover, in a later step.
pub(crate) fn follow_configured_primary(shard: &Shard, routing: &Routing) {
    let Some((host, port)) = routing.replica_of.clone() else { return };
    // A routing already replaced (by a CLUSTER RESET, say) is not followed.
    if shard.shared.cluster.as_ref().is_some_and(|c| c.snapshot().version() > routing.version()) {
        return;
    }
    let mut st = shard.shared.repl.lock();
    if st.master.as_ref().is_some_and(|(h, p)| h.eq_ignore_ascii_case(&host) && *p == port) {
        return;
    }
    tracing::info!("cluster config epoch {}: replicating {host}:{port}", routing.epoch);
    crate::repl::follow(&shard.shared, &mut st, host, port);
}

/// CLUSTER COUNTKEYSINSLOT, on the shard owning the slot.
fn count_keys_in_slot(ctx: &mut Ctx, r: &mut Reply) {
    let slot = parse_slot(ctx.arg(2)).unwrap_or(0) as usize;
    let n = ctx.db().slot_len(slot);
    r.int(n as i64);
}

/// CLUSTER GETKEYSINSLOT, on the shard owning the slot.
fn get_keys_in_slot(ctx: &mut Ctx, r: &mut Reply) {
    let slot = parse_slot(ctx.arg(2)).unwrap_or(0) as usize;
    let count = num::parse_i64(ctx.arg(3)).unwrap_or(0).max(0) as usize;
    let mut keys: Vec<&[u8]> = Vec::new();
    let db = ctx.ks.db_ref(ctx.db);
    db.for_each_in_slot(slot, |e| {
        if keys.len() < count {
            keys.push(e.key());
        }
    });
    r.array(keys.len());
    for k in keys {
        r.bulk(k);
    }
}

/// READONLY and READWRITE: whether a replica serves this connection's reads
/// of its primary's slots.
pub(crate) fn readonly(shard: &Shard, conn: &mut Conn, on: bool) {
    if shard.shared.cluster.is_none() {
        return conn.reply().error(DISABLED);
    }
    conn.readonly = on;
    conn.reply().ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Routing {
        fn with_epoch(mut self, epoch: u64) -> Self {
            self.epoch = epoch;
            self
        }
    }

    fn routing(myself: Option<u16>, my_primary: Option<u16>) -> Routing {
        // Node 0 serves 0..=8191, node 1 8192..=16382; slot 16383 is unassigned.
        let mut owners = vec![0u16; 8192];
        owners.extend(std::iter::repeat_n(1u16, 8191));
        Routing::new(3, vec!["10.0.0.1:7000".into(), "10.0.0.2:7001".into()], owners, myself, my_primary, true, None)
    }

    #[test]
    fn keys_route_as_redis_decides() {
        let r = routing(Some(0), None);
        assert_eq!(r.route([5u16].into_iter(), true, false), Ok(()));
        assert_eq!(r.route(std::iter::empty(), true, false), Ok(()));
        assert_eq!(r.route([9000u16].into_iter(), false, false), Err(Redirect::Moved { slot: 9000, node: 1 }));
        assert_eq!(r.error_text(Redirect::Moved { slot: 9000, node: 1 }), "MOVED 9000 10.0.0.2:7001");
        assert_eq!(r.route([5u16, 5, 6].into_iter(), false, false), Err(Redirect::CrossSlot));
        // The first key decides unassigned-ness; a later one only CROSSSLOT.
        assert_eq!(r.route([16383u16, 5].into_iter(), false, false), Err(Redirect::Unbound));
        assert_eq!(r.route([5u16, 16383].into_iter(), false, false), Err(Redirect::CrossSlot));
        // Even keys of other nodes get CROSSSLOT first.
        assert_eq!(r.route([9000u16, 9001].into_iter(), false, false), Err(Redirect::CrossSlot));
    }

    #[test]
    fn a_replica_serves_readonly_reads_of_its_primary() {
        let r = routing(Some(1), Some(0));
        assert_eq!(r.route([5u16].into_iter(), false, true), Ok(()));
        assert_eq!(r.route([5u16].into_iter(), true, true), Err(Redirect::Moved { slot: 5, node: 0 }));
        assert_eq!(r.route([5u16].into_iter(), false, false), Err(Redirect::Moved { slot: 5, node: 0 }));
    }

    #[test]
    fn a_down_cluster_refuses_keys_but_not_keyless_commands() {
        let mut r = routing(Some(0), None);
        r.state_ok = false;
        assert_eq!(r.route([5u16].into_iter(), false, false), Err(Redirect::Down));
        assert_eq!(r.route([16383u16].into_iter(), false, false), Err(Redirect::Unbound));
        assert_eq!(r.route(std::iter::empty(), false, false), Ok(()));
    }

    struct Fixed;
    impl ClusterHook for Fixed {
        fn routing(&self) -> Routing {
            Routing::empty()
        }
        fn command(&self, _: &Args, _: &mut Reply) -> Option<Routing> {
            None
        }
    }

    #[test]
    fn a_reset_generation_orders_routings_before_their_epoch() {
        let cluster = Arc::new(Cluster::new(Box::new(Fixed)));
        let mut shard = ShardCluster::new(cluster.clone());
        let at = |generation, epoch| routing(Some(0), None).with_generation(generation).with_epoch(epoch);
        cluster.note_pending(0, 7);
        assert!(cluster.newer_pending(&at(0, 6)));
        cluster.publish(at(0, 7));
        shard.refresh();
        assert_eq!(shard.routing.version(), (0, 7));
        assert!(!cluster.newer_pending(&shard.routing));
        // A reset goes back to epoch 0 in the next generation: pending first,
        // then in force, and the shards see it although the epoch fell.
        cluster.note_pending(1, 0);
        assert!(cluster.newer_pending(&shard.routing));
        cluster.publish(at(1, 0));
        shard.refresh();
        assert_eq!(shard.routing.version(), (1, 0));
        assert!(!cluster.newer_pending(&shard.routing));
        // What the previous generation accepted comes in force no more.
        cluster.note_pending(0, 9);
        cluster.publish(at(0, 9));
        shard.refresh();
        assert_eq!(shard.routing.version(), (1, 0));
        assert!(!cluster.newer_pending(&shard.routing));
        // The same epoch published again is picked up (a SOFT reset keeps it).
        cluster.publish(at(2, 0));
        shard.refresh();
        assert_eq!(shard.routing.version(), (2, 0));
    }

    #[test]
    fn owners_beyond_the_node_list_are_unassigned() {
        let r = Routing::new(1, vec!["a:1".into()], vec![0, 7, UNASSIGNED], Some(0), None, true, None);
        assert_eq!((r.owner(0), r.owner(1), r.owner(2), r.owner(16383)), (Some(0), None, None, None));
    }
}
