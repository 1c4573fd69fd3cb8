//! Replication: a primary keeps replicas in step by shipping each shard's
//! journal; a replica applies what it receives as its primary's client.
//!
//! ```text
//!   primary                                        replica
//!   shard k: Journal ──▶ flow conn k ══ TCP ══▶ master conn k (on shard k mod M)
//!            Snapshot ─┘  (lives on shard k)        │ commands routed to the owning shard
//!                         ◀── REPLCONF ACK lsn ─────┘
//!                                                   link thread: connects, authenticates,
//!                                                   PSYNCs each flow, hands its socket to a shard
//! ```
//!
//! One flow per primary shard. A flow starts with `PSYNC <replid> <lsn>
//! <shard> <replica-id>` on a connection to the primary; the shard that
//! accepted it hands the socket to shard `<shard>` (`HandOff`), which answers
//! `+CONTINUE` and streams its journal from `lsn` when that is still in its
//! backlog, or `+FULLRESYNC <replid> <lsn>` and a point-in-time snapshot of
//! its keys (engine `Snapshot`) followed by the journal from `lsn`. The
//! replica's link thread reads that first line, then gives the socket to one
//! of its shards, which executes the stream like a client's commands (keys
//! go to the replica's owning shard whatever the primary's shard count) and
//! answers `REPLCONF ACK <lsn>` after each batch it applied.
//!
//! The offset Redis shows is the sum over shards of the journal positions;
//! WAIT counts a replica once its acked position is at or past the current
//! end of every shard's journal.

pub(crate) mod flush;
pub(crate) mod link;
pub mod migrate;
pub(crate) mod primary;
pub(crate) mod replica;
pub(crate) mod txapply;

use crate::conn::Conn;
use crate::shard::Shard;
use coreshard_engine::Args;
use crossbeam_channel::{Receiver, Sender};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

pub(crate) use link::LinkEvent;

/// The replication id of a node that has never had one: Redis's all zeros.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Node-wide replication state, shared by the shards and the link thread.
pub struct Repl {
    /// Everything that changes rarely, under one lock.
    pub state: Mutex<ReplState>,
    /// This node follows a primary (READONLY checks read this, not the lock).
    pub is_replica: AtomicBool,
    /// Each shard's journal end, published before the shard sends replies to
    /// other shards, so a WAIT anywhere sees at least its client's writes.
    pub journal_end: Vec<AtomicU64>,
    /// Each shard's oldest backlog position (INFO repl_backlog_first_byte_offset).
    pub journal_start: Vec<AtomicU64>,
    /// Clients waiting in WAIT on each shard: acks wake those shards.
    pub waiters: Vec<AtomicU32>,
    /// Replicas whose every flow acked within min-replicas-max-lag seconds
    /// (updated on the housekeeping tick).
    pub good_replicas: AtomicU64,
    /// Events for the link thread.
    pub(crate) events: Sender<LinkEvent>,
    events_rx: Mutex<Option<Receiver<LinkEvent>>>,
    /// Some shard's journal records (INFO repl_backlog_active).
    pub backlog_active: AtomicBool,
    /// Per shard: where the previous history (`replid2`) ends, or `u64::MAX`
    /// when there is none (PSYNC2 after a promotion).
    pub second_offset: Vec<AtomicU64>,
    /// Transactions that took all their locks so far (their `seq`, tx.rs),
    /// read by a full sync's fence.
    pub tx_seq: AtomicU64,
    /// As a replica: the shares of multi-shard transactions not yet applied.
    pub(crate) txs: Mutex<txapply::Registry>,
    /// Entries kept aside in `txs` (0: no flow needs to check its commands).
    pub(crate) tx_open: AtomicU32,
    /// INFO stats: full syncs served, partial resyncs accepted and refused (per flow).
    pub sync_full: AtomicU64,
    /// See `sync_full`.
    pub sync_partial_ok: AtomicU64,
    /// See `sync_full`.
    pub sync_partial_err: AtomicU64,
}

/// See [`Repl::state`].
pub struct ReplState {
    /// The primary this node follows (REPLICAOF host port), if any.
    pub master: Option<(String, u16)>,
    /// Bumped on every REPLICAOF: flows of an older link are dropped.
    pub link_epoch: u64,
    /// This node's replication id (as a primary: the one its replicas follow).
    pub replid: String,
    /// The previous id (after REPLICAOF NO ONE, the old primary's).
    pub replid2: String,
    /// Replicas attached to this node, by id.
    pub replicas: Vec<ReplicaInfo>,
    /// As a replica: the primary's id and shard count (0: not yet known).
    pub master_replid: String,
    /// See `master_replid`.
    pub master_shards: usize,
    /// As a replica: one entry per primary shard.
    pub flows: Vec<FlowLink>,
    /// Unix ms when the link went down (or the replica started waiting for it).
    pub link_down_since_ms: u64,
}

/// A replica attached to this primary.
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    /// The replica's run id (one per process).
    pub id: String,
    /// Its address as this node sees it.
    pub ip: String,
    /// The port it listens on (REPLCONF listening-port).
    pub port: u16,
    /// Its flows, one per shard of this node.
    pub flows: Vec<ReplicaFlow>,
}

/// One shard's flow to a replica.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicaFlow {
    /// A connection serves the flow.
    pub connected: bool,
    /// It is past its snapshot, streaming the journal.
    pub online: bool,
    /// The position the replica acked.
    pub acked: u64,
    /// Unix ms of its last ack.
    pub last_ack_ms: u64,
}

/// As a replica: the state of the flow from one primary shard.
#[derive(Debug, Clone, Default)]
pub struct FlowLink {
    /// A connection to the primary serves it.
    pub connected: bool,
    /// It has a consistent position: past a snapshot, or resumed.
    pub synced: bool,
    /// It is receiving a snapshot.
    pub syncing: bool,
    /// The journal position applied (valid when `synced`).
    pub lsn: u64,
    /// Unix ms of the last data from the primary.
    pub last_io_ms: u64,
    /// Unix ms before which the link thread does not retry.
    pub retry_at_ms: u64,
    /// Failed attempts in a row (for the backoff).
    pub failures: u32,
}

impl Repl {
    /// State for a node with `shards` shards and replication id `replid`.
    pub fn new(shards: usize, replid: String) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Repl {
            state: Mutex::new(ReplState {
                master: None,
                link_epoch: 0,
                replid,
                replid2: NO_REPLID.to_string(),
                replicas: Vec::new(),
                master_replid: String::new(),
                master_shards: 0,
                flows: Vec::new(),
                link_down_since_ms: 0,
            }),
            is_replica: AtomicBool::new(false),
            journal_end: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            journal_start: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            waiters: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            good_replicas: AtomicU64::new(0),
            backlog_active: AtomicBool::new(false),
            second_offset: (0..shards).map(|_| AtomicU64::new(u64::MAX)).collect(),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            tx_seq: AtomicU64::new(0),
            txs: Mutex::new(txapply::Registry::default()),
            tx_open: AtomicU32::new(0),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
        }
    }

    /// The state, even if a thread panicked while holding it (it holds no
    /// invariant a panic could break halfway).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ReplState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The link thread's end of the event channel (taken once).
    pub(crate) fn take_events(&self) -> Option<Receiver<LinkEvent>> {
        self.events_rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A random 40-hex-digit id: a replication id, or a run id (INFO run_id).
pub fn random_id() -> String {
    let mut rng = fastrand::Rng::new();
    (0..40).map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0')).collect()
}

/// Replication work a shard does at the end of each loop turn: stream to
/// its flows, answer WAITs whose replicas acked.
pub(crate) fn after_commands(shard: &mut Shard) {
    if !shard.repl.flows.is_empty() {
        primary::pump(shard);
    }
    if !shard.repl.waiting.is_empty() {
        check_waits(shard, false);
    }
}

/// Per-shard replication state.
#[derive(Default)]
pub(crate) struct ShardRepl {
    /// Connections of this shard that stream to replicas.
    pub flows: Vec<u32>,
    /// Snapshots being streamed, by flow connection.
    pub snapshots: Vec<(u32, coreshard_engine::snapshot::Snapshot)>,
    /// Connections blocked in WAIT.
    pub waiting: Vec<u32>,
    /// The replication timer (flush delay, WAIT timeouts) is armed.
    pub timer_armed: bool,
    /// Its timespec, rewritten only while it is not armed.
    pub timer: Box<io_uring::types::Timespec>,
    /// Monotonic ns of the last PING put in the journal.
    pub last_ping_ns: u64,
    /// Loop turns so far (cluster mode: a migration's cutover barrier).
    pub turn: u64,
    /// The cutover generation seen at the start of the previous turn.
    pub observed_gen: u64,
    /// The cutover generation to publish in `Migration::seen`, with the
    /// send mark it waits for (everything sent by the end of the turn that
    /// saw it).
    pub publishing_gen: (u64, u64),
    /// The routing version this shard used from the previous turn on.
    pub routing_version: u64,
    /// The routing version to publish in `Migration::routed`, with the send
    /// mark it waits for (what this shard routed with an older one).
    pub publishing_routing: (u64, u64),
    /// Before deleting the slots of `cleanup`: the routing version every
    /// shard must have published, and the turn this one saw that (0: not
    /// yet); None once deleting may begin.
    pub cleanup_after: Option<(u64, u64)>,
    /// Connections whose write a migration's cutover holds: (slot, client id).
    pub held: Vec<(u32, u64)>,
    /// Slots this shard still has to empty after a migration moved them
    /// away, as local indices of its slots ([`coreshard_engine::slot::ShardSlots::locals`]).
    pub cleanup: std::ops::Range<usize>,
    /// Ranges of later migrations, emptied after `cleanup` (a drain moves
    /// slots away in several migrations, one soon after the other).
    pub cleanup_queued: Vec<std::ops::Range<usize>>,
    /// The slot whose keys are being deleted, a batch per turn (already
    /// taken out of `cleanup`).
    pub cleanup_slot: Option<usize>,
    /// Monotonic ns before which the next batch of `cleanup_slot` waits
    /// (the deletion's share of the shard's time, [`migrate`]'s
    /// `CLEANUP_DUTY_PERCENT`).
    pub cleanup_next_ns: u64,
    /// How many of the changes counted by `Migration::cleanup_gen` this
    /// shard applied to `cleanup`.
    pub cleanup_gen: u64,
}

/// The replication timer fired.
pub(crate) fn on_timer(shard: &mut Shard) {
    shard.repl.timer_armed = false;
    after_commands(shard);
}

/// Arms the replication timer to fire in `ns` unless it is armed already.
pub(crate) fn arm_timer(shard: &mut Shard, ns: u64) {
    if shard.repl.timer_armed {
        return;
    }
    let ns = ns.max(1000);
    *shard.repl.timer = io_uring::types::Timespec::new().sec(ns / 1_000_000_000).nsec((ns % 1_000_000_000) as u32);
    shard.repl.timer_armed = true;
    let sqe = io_uring::opcode::Timeout::new(&*shard.repl.timer as *const io_uring::types::Timespec)
        .build()
        .user_data(crate::shard::UD_REPL_TIMER);
    shard.push_sqe(&sqe);
}

// ---------------------------------------------------------------------------
// WAIT
// ---------------------------------------------------------------------------

/// A client blocked in WAIT.
pub(crate) struct WaitFor {
    /// The journal end of every shard when WAIT ran.
    targets: Vec<u64>,
    /// Replicas asked for.
    needed: u64,
    /// Monotonic ns deadline (None: forever).
    deadline_ns: Option<u64>,
}

/// `WAIT numreplicas timeout`: blocks until `numreplicas` replicas acked
/// every write made before it (on any shard), or `timeout` ms passed (0:
/// forever); replies with the number that did.
fn wait(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    use coreshard_engine::num::parse_i64;
    let Some(needed) = parse_i64(args.get(1)) else {
        return conn.reply().error(coreshard_engine::reply::NOT_INTEGER);
    };
    let Some(timeout) = parse_i64(args.get(2)) else {
        return conn.reply().error("ERR timeout is not an integer or out of range");
    };
    if timeout < 0 {
        return conn.reply().error("ERR timeout is negative");
    }
    if shard.shared.repl.is_replica.load(Relaxed) {
        return conn.reply().error(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        );
    }
    let targets = journal_ends(shard);
    let acked = acked_replicas(shard, &targets);
    if needed <= 0 || acked >= needed as u64 || conn.in_exec {
        return conn.reply().int(acked as i64);
    }
    let deadline_ns = (timeout > 0).then(|| crate::runtime::monotonic_ns() + timeout as u64 * 1_000_000);
    conn.wait = Some(Box::new(WaitFor { targets, needed: needed as u64, deadline_ns }));
    shard.repl.waiting.push(idx);
    shard.shared.repl.waiters[shard.id].fetch_add(1, Relaxed);
    if let Some(d) = deadline_ns {
        arm_timer(shard, d.saturating_sub(crate::runtime::monotonic_ns()));
    }
}

/// Every shard's journal end now (this shard's exactly, the others' as published).
fn journal_ends(shard: &Shard) -> Vec<u64> {
    (0..shard.map.shards())
        .map(
            |s| if s == shard.id { shard.ks.journal.end_lsn() } else { shard.shared.repl.journal_end[s].load(Relaxed) },
        )
        .collect()
}

/// Replicas whose acks reach `targets` on every shard.
fn acked_replicas(shard: &Shard, targets: &[u64]) -> u64 {
    let st = shard.shared.repl.lock();
    st.replicas
        .iter()
        .filter(|r| r.flows.len() == targets.len() && r.flows.iter().zip(targets).all(|(f, &t)| f.acked >= t))
        .count() as u64
}

/// Answers the WAITs that are satisfied or timed out (all of them when `all`).
pub(crate) fn check_waits(shard: &mut Shard, all: bool) {
    let now = crate::runtime::monotonic_ns();
    let mut next_deadline: Option<u64> = None;
    let waiting = std::mem::take(&mut shard.repl.waiting);
    let mut still = Vec::with_capacity(waiting.len());
    for idx in waiting {
        let Some(w) = shard.conns[idx as usize].as_ref().and_then(|c| c.wait.as_ref()) else {
            shard.shared.repl.waiters[shard.id].fetch_sub(1, Relaxed);
            continue;
        };
        let acked = acked_replicas(shard, &w.targets);
        let timed_out = w.deadline_ns.is_some_and(|d| d <= now);
        if all || timed_out || acked >= w.needed {
            shard.shared.repl.waiters[shard.id].fetch_sub(1, Relaxed);
            if let Some(c) = shard.conns[idx as usize].as_mut() {
                c.wait = None;
                c.reply().int(acked as i64);
            }
            shard.continue_conn(idx);
        } else {
            if let Some(d) = w.deadline_ns {
                next_deadline = Some(next_deadline.map_or(d, |n: u64| n.min(d)));
            }
            still.push(idx);
        }
    }
    shard.repl.waiting = still;
    if let Some(d) = next_deadline {
        arm_timer(shard, d.saturating_sub(now));
    }
}

/// A WAITing connection closes.
pub(crate) fn on_close(shard: &mut Shard, idx: u32) {
    if let Some(c) = shard.conns[idx as usize].as_mut()
        && c.wait.take().is_some()
    {
        shard.repl.waiting.retain(|&i| i != idx);
        shard.shared.repl.waiters[shard.id].fetch_sub(1, Relaxed);
    }
    primary::on_close(shard, idx);
    replica::on_close(shard, idx);
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// Runs a replication command: REPLICAOF/SLAVEOF, ROLE, WAIT, REPLCONF, PSYNC, SYNC.
pub(crate) fn run(shard: &mut Shard, idx: u32, conn: &mut Conn, cmd: coreshard_engine::ConnCmd, args: Args) {
    use coreshard_engine::ConnCmd::*;
    match cmd {
        Replicaof => replicaof(shard, conn, args),
        Role => role(shard, conn),
        Wait => wait(shard, idx, conn, args),
        Replconf => replconf(shard, idx, conn, args),
        Psync => primary::psync(shard, idx, conn, args),
        Sync => conn.reply().error("ERR coreshard replicates only to coreshard replicas (PSYNC with flow arguments)"),
        _ => debug_assert!(false, "not a replication command"),
    }
}

/// `REPLICAOF host port` / `REPLICAOF NO ONE` (and SLAVEOF).
fn replicaof(shard: &mut Shard, conn: &mut Conn, args: Args) {
    if args.is(1, "NO") && args.is(2, "ONE") {
        promote(shard);
        return conn.reply().ok();
    }
    let host = String::from_utf8_lossy(args.get(1)).into_owned();
    let Some(port) = std::str::from_utf8(args.get(2)).ok().and_then(|p| p.parse::<i64>().ok()) else {
        return conn.reply().error("ERR Invalid master port");
    };
    if !(0..=65535).contains(&port) {
        return conn.reply().error("ERR Invalid master port");
    }
    let port = port as u16;
    {
        let mut st = shard.shared.repl.lock();
        if st.master.as_ref().is_some_and(|(h, p)| h.eq_ignore_ascii_case(&host) && *p == port) {
            drop(st);
            return conn.reply().simple("OK Already connected to specified master");
        }
        follow(&shard.shared, &mut st, host.clone(), port);
    }
    tracing::info!("REPLICAOF {host}:{port} enabled (user request from '{}')", conn.addr);
    conn.reply().ok();
}

/// Makes this node a replica of `host:port` (REPLICAOF, or `replicaof` at start).
///
/// The positions it holds are kept, so the new primary can continue from
/// them when it shares their history (PSYNC2): a replica re-pointed to a
/// promoted sibling keeps its flows' positions under the old primary's id,
/// and a primary turned replica offers its own id and journal ends.
pub(crate) fn follow(shared: &crate::shared::Shared, st: &mut ReplState, host: String, port: u16) {
    if st.master.is_none() {
        // A primary offers its own history: its id and each shard's journal end.
        let ends: Vec<u64> = shared.repl.journal_end.iter().map(|e| e.load(Relaxed)).collect();
        let active = shared.repl.backlog_active.load(Relaxed);
        st.master_replid = if active { st.replid.clone() } else { String::new() };
        st.master_shards = if active { ends.len() } else { 0 };
        st.flows = ends.iter().map(|&lsn| FlowLink { synced: active, lsn, ..FlowLink::default() }).collect();
    } else {
        for f in &mut st.flows {
            f.connected = false;
            f.syncing = false;
            f.retry_at_ms = 0;
        }
    }
    st.master = Some((host, port));
    st.link_epoch += 1;
    st.link_down_since_ms = 0;
    // A replica's own replicas are not served: they resync elsewhere.
    st.replicas.clear();
    shared.repl.is_replica.store(true, Relaxed);
    let epoch = st.link_epoch;
    for s in 0..shared.control.len() {
        let _ = shared.control[s].send(crate::shared::Control::DropReplication { epoch, promoted: false });
    }
    shared.wake_all();
    let _ = shared.repl.events.send(LinkEvent::Reconfigure);
}

/// Stops replicating, if this node does (CLUSTER RESET of a replica), as
/// REPLICAOF NO ONE does.
pub(crate) fn stop_replicating(shard: &mut Shard) {
    promote(shard);
}

/// REPLICAOF NO ONE: keep the data, start a new history, take writes.
fn promote(shard: &mut Shard) {
    let shared = shard.shared.clone();
    let mut st = shared.repl.lock();
    if st.master.is_none() {
        return;
    }
    let (host, port) = st.master.take().unwrap_or_default();
    st.link_epoch += 1;
    // The old primary's history stays valid up to where each shard's
    // mirror of it ends (each shard records that as it leaves the link).
    st.replid2 = if st.master_replid.is_empty() { NO_REPLID.to_string() } else { st.master_replid.clone() };
    st.replid = random_id();
    st.flows.clear();
    st.master_shards = 0;
    st.master_replid.clear();
    shared.repl.is_replica.store(false, Relaxed);
    let epoch = st.link_epoch;
    drop(st);
    for s in 0..shared.control.len() {
        let _ = shared.control[s].send(crate::shared::Control::DropReplication { epoch, promoted: true });
    }
    shared.wake_all();
    let _ = shared.repl.events.send(LinkEvent::Reconfigure);
    tracing::info!("MASTER MODE enabled (was a replica of {host}:{port})");
}

/// ROLE.
fn role(shard: &mut Shard, conn: &mut Conn) {
    let st = shard.shared.repl.lock();
    let mut r = conn.reply();
    match &st.master {
        None => {
            let offset: u64 = journal_ends(shard).iter().sum();
            r.array(3);
            r.bulk(b"master");
            r.int(offset as i64);
            r.array(st.replicas.len());
            for rep in &st.replicas {
                r.array(3);
                r.bulk(rep.ip.as_bytes());
                r.bulk(rep.port.to_string().as_bytes());
                r.bulk(rep.flows.iter().map(|f| f.acked).sum::<u64>().to_string().as_bytes());
            }
        }
        Some((host, port)) => {
            let state = link_state(&st);
            r.array(5);
            r.bulk(b"slave");
            r.bulk(host.as_bytes());
            r.int(*port as i64);
            r.bulk(state.as_bytes());
            let synced = st.flows.iter().any(|f| f.synced);
            r.int(if synced { st.flows.iter().map(|f| f.lsn).sum::<u64>() as i64 } else { -1 });
        }
    }
}

/// The replica's link state as ROLE names it.
fn link_state(st: &ReplState) -> &'static str {
    if st.master_shards == 0 || st.flows.iter().any(|f| !f.connected) {
        if st.flows.iter().any(|f| f.connected) { "connecting" } else { "connect" }
    } else if st.flows.iter().any(|f| f.syncing) {
        "sync"
    } else {
        "connected"
    }
}

/// True when every flow of the replica's link is connected and synced.
fn link_up(st: &ReplState) -> bool {
    st.master_shards > 0 && st.flows.len() == st.master_shards && st.flows.iter().all(|f| f.connected && f.synced)
}

/// `REPLCONF option value ...`: the replica's side of the handshake and its acks.
fn replconf(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    let opt = args.get(1).to_ascii_lowercase();
    // Redis's options come in pairs; coreshard's own flow markers take what they need.
    let own = matches!(
        opt.as_slice(),
        b"coreshard-layout" | b"snapshot-end" | b"flush-slots" | b"tx-cmd" | b"tx-end" | b"tx-fence" | b"tx-abort"
    );
    if !own && args.len() % 2 == 0 {
        return conn.reply().error(coreshard_engine::reply::SYNTAX);
    }
    match opt.as_slice() {
        b"listening-port" => match std::str::from_utf8(args.get(2)).ok().and_then(|p| p.parse::<u16>().ok()) {
            Some(p) => {
                conn.replica_port = p;
                conn.reply().ok();
            }
            None => conn.reply().error(coreshard_engine::reply::NOT_INTEGER),
        },
        b"ip-address" | b"capa" | b"rdb-only" | b"rdb-filter-only" => conn.reply().ok(),
        // coreshard's own: the shard count and replication id a replica's flows follow.
        b"coreshard-layout" => {
            let replid = shard.shared.repl.lock().replid.clone();
            let mut r = conn.reply();
            r.array(2);
            r.int(shard.map.shards() as i64);
            r.bulk(replid.as_bytes());
        }
        // Acks and the primary's markers carry no reply.
        b"ack" => primary::on_ack(shard, idx, conn, args.get(2)),
        b"getack" => replica::on_getack(conn),
        b"snapshot-end" => replica::on_snapshot_end(shard, conn),
        // Put first in a full sync's stream by the replica itself (replica.rs).
        // A multi-shard transaction's marks (txapply.rs).
        b"tx-cmd" | b"tx-end" | b"tx-fence" | b"tx-abort" if conn.master.is_some() => {
            txapply::on_mark(shard, idx, conn, args)
        }
        // A migration target journals what it drops (its replicas must
        // drop it too); a replica applying its primary's stream does not.
        b"flush-slots" if conn.master.is_some() && args.len() >= 4 && args.len() % 2 == 0 => {
            let journal = conn.master.as_ref().is_some_and(|m| m.migration);
            let merge = coreshard_engine::Merge::Ok;
            shard.run_on_all(idx, conn, args, crate::batch::Op::FlushSlots { journal }, merge)
        }
        _ => conn.reply().error(&format!(
            "ERR Unrecognized REPLCONF option: {}",
            coreshard_engine::cmd::printable(args.get(1), 128)
        )),
    }
}

// ---------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------

/// The body of INFO's Replication section.
pub(crate) fn info(shard: &Shard, o: &mut String) {
    let shared = &shard.shared;
    let cfg = &shard.config;
    let st = shared.repl.lock();
    let now_ms = coreshard_engine::unix_ms();
    let ends = journal_ends(shard);
    let starts: Vec<u64> = (0..shard.map.shards())
        .map(|s| if s == shard.id { shard.ks.journal.start_lsn() } else { shared.repl.journal_start[s].load(Relaxed) })
        .collect();
    let active = shard.ks.journal.enabled();
    match &st.master {
        None => {
            let _ = write!(o, "role:master\r\nconnected_slaves:{}\r\n", st.replicas.len());
            if cfg.min_replicas_to_write > 0 {
                let _ = write!(o, "min_slaves_good_slaves:{}\r\n", shared.repl.good_replicas.load(Relaxed));
            }
            for (i, r) in st.replicas.iter().enumerate() {
                let online = r.flows.iter().all(|f| f.connected && f.online);
                let offset: u64 = r.flows.iter().map(|f| f.acked).sum();
                let last = r.flows.iter().map(|f| f.last_ack_ms).min().unwrap_or(0);
                let lag = now_ms.saturating_sub(last) / 1000;
                let _ = write!(
                    o,
                    "slave{i}:ip={},port={},state={},offset={offset},lag={lag}\r\n",
                    r.ip,
                    r.port,
                    if online { "online" } else { "wait_bgsave" },
                );
            }
        }
        Some((host, port)) => {
            let up = link_up(&st);
            let last_io = st.flows.iter().map(|f| f.last_io_ms).min().unwrap_or(0);
            let offset: u64 = st.flows.iter().map(|f| f.lsn).sum();
            let syncing = st.flows.iter().any(|f| f.syncing);
            let _ = write!(
                o,
                "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\n\
                 master_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{offset}\r\n\
                 slave_repl_offset:{offset}\r\n",
                if up { "up" } else { "down" },
                if last_io == 0 { -1 } else { (now_ms.saturating_sub(last_io) / 1000) as i64 },
                syncing as u8,
            );
            if !up {
                // -1 until the link was up once, as Redis prints it.
                let since = if st.link_down_since_ms == 0 {
                    -1
                } else {
                    (now_ms.saturating_sub(st.link_down_since_ms) / 1000) as i64
                };
                let _ = write!(o, "master_link_down_since_seconds:{since}\r\n");
            }
            let _ = write!(
                o,
                "slave_priority:100\r\nslave_read_only:{}\r\nreplica_announced:1\r\nconnected_slaves:0\r\n",
                cfg.replica_read_only as u8,
            );
        }
    }
    let offset: u64 = if st.master.is_some() { st.flows.iter().map(|f| f.lsn).sum() } else { ends.iter().sum() };
    let histlen: u64 = ends.iter().zip(&starts).map(|(e, s)| e - s.min(e)).sum();
    // Where the previous history ends (Redis prints that offset plus one).
    let seconds: Vec<u64> = shared.repl.second_offset.iter().map(|o| o.load(Relaxed)).collect();
    let second = if seconds.iter().all(|&o| o == u64::MAX) {
        -1
    } else {
        seconds.iter().filter(|&&o| o != u64::MAX).sum::<u64>() as i64 + 1
    };
    let _ = write!(
        o,
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\n\
         second_repl_offset:{second}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\n\
         repl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{histlen}\r\n",
        if st.master.is_some() && !st.master_replid.is_empty() { &st.master_replid } else { &st.replid },
        st.replid2,
        active as u8,
        cfg.repl_backlog_size,
        starts.iter().sum::<u64>() + if active { 1 } else { 0 },
    );
}

/// INFO stats lines about syncs.
pub(crate) fn info_stats(shard: &Shard, o: &mut String) {
    let r = &shard.shared.repl;
    let _ = write!(
        o,
        "sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\n",
        r.sync_full.load(Relaxed),
        r.sync_partial_ok.load(Relaxed),
        r.sync_partial_err.load(Relaxed),
    );
}

/// Housekeeping on the tick: journal PINGs, ack timeouts, replica health.
pub(crate) fn on_tick(shard: &mut Shard) {
    primary::on_tick(shard);
    replica::on_tick(shard);
    if shard.id == 0 && shard.config.min_replicas_to_write > 0 {
        let now = coreshard_engine::unix_ms();
        let lag_ms = shard.config.min_replicas_max_lag * 1000;
        let st = shard.shared.repl.lock();
        let good = st
            .replicas
            .iter()
            .filter(|r| r.flows.iter().all(|f| f.connected && f.online && now.saturating_sub(f.last_ack_ms) <= lag_ms))
            .count();
        shard.shared.repl.good_replicas.store(good as u64, Relaxed);
    }
}

/// The error for a write refused by min-replicas-to-write, if it is.
pub(crate) fn refuse_write(shard: &Shard) -> Option<&'static str> {
    let min = shard.config.min_replicas_to_write as u64;
    if min > 0 && shard.shared.repl.good_replicas.load(Relaxed) < min && !shard.shared.repl.is_replica.load(Relaxed) {
        return Some("NOREPLICAS Not enough good replicas to write.");
    }
    None
}
