//! Online migration of a slot range between cluster nodes
//! (docs/decisions/0005-migration.md).
//!
//! ```text
//!   source A                                         target B
//!   shard k: Snapshot::of_slots ─┐                   migration link thread: PSYNC ... SLOTS lo hi
//!            Journal ──filter──▶ flow conn k ══TCP══▶ master conn (migration) on shard k mod M
//!                                ◀── REPLCONF ACK ──┘  commands run as a privileged client
//!   CUTOVER: hold writes to lo..hi, barrier, final tail, acks reach the end,
//!            install epoch+1 here, then `CLUSTER CORESHARD-SETCONFIG` down each flow
//!   CUTOVER LOG (control-log cluster): the same up to the acks, then propose
//!            SwitchMigration(id) to the log; release once its outcome is installed here
//! ```
//!
//! The target pulls: `CLUSTER CORESHARD-MIGRATE PULL host port lo hi` on B
//! opens one connection per source shard owning slots of the range and
//! sends `PSYNC ? -1 <shard> <id> SLOTS <lo> <hi>`. The source answers as a
//! full sync whose snapshot covers only those slots and whose journal is
//! filtered to entries with keys in them. The source decides the switch,
//! under one lock: commit (publish the new routing, then release the held
//! writes, which now get MOVED) or abort (release them; they run here).

use super::primary::FlowOut;
use crate::conn::{Closing, Conn};
use crate::shard::Shard;
use coreshard_engine::journal::encode_command;
use coreshard_engine::{Args, OwnedArgs};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

/// Longest a cutover may hold writes to the migrating slots, whatever the
/// admin asks: past it the migration aborts and the writes run here.
pub const PAUSE_MS_MAX: u64 = 5_000;
/// Journal bytes a migration flow filters per loop turn.
const FILTER_SLICE_BYTES: usize = 256 * 1024;
/// Shortest delay between two batches of a switch's deletion of the moved
/// keys, when nothing else wakes the shard.
const CLEANUP_TURN_NS: u64 = 100_000;
/// Keys of moved slots deleted per loop turn after a switch (the default
/// of `debug-migration-cleanup-keys-per-turn`).
pub(crate) const CLEANUP_KEYS_PER_TURN: usize = 256;
/// How soon a deletion held by `debug-migration-cleanup-keys-per-turn 0`
/// looks again.
const CLEANUP_HELD_NS: u64 = 10_000_000;
/// The longest one batch of that deletion runs (the clock is read every
/// [`CLEANUP_CHUNK_KEYS`] keys): what a client of the slots the shard keeps
/// may wait behind it. A key's value goes with it, so a batch of big values
/// takes longer than one of small ones for the same count.
const CLEANUP_BATCH_NS: u64 = 25_000;
/// Keys deleted between two looks at the clock within a batch.
const CLEANUP_CHUNK_KEYS: usize = 16;
/// The share of a shard's time (percent) the deletion of moved keys may
/// take: after a batch that took `d`, the next waits `d * (100 - p) / p`.
/// As Redis's active expiry (25% in its slow cycle), the deletion is
/// background work: the keys are served elsewhere already and only hold
/// memory, while a deletion at full speed takes the whole core (and, where
/// cores are shared, its neighbours' time) from the clients of the slots
/// this shard keeps.
const CLEANUP_DUTY_PERCENT: u64 = 25;
/// Changes to the deletion of moved keys kept for shards that have not
/// applied them yet ([`Migration::change_cleanup`]): each comes with a
/// migration, and a shard applies them at its next loop turn, so a shard
/// misses more only if it stalled through that many migrations.
const CLEANUP_CHANGES_MAX: usize = 64;
/// How soon a flow waiting for the cutover's barrier or acks looks again.
const CUTOVER_POLL_NS: u64 = 200_000;
/// How soon a shard looks again for the control log's outcome of a switch.
const SWITCH_POLL_NS: u64 = 1_000_000;
/// Connections held by a cutover, per shard; past it a write is refused
/// with TRYAGAIN instead of held (a bound, not an expected case).
const HELD_CONNS_MAX: usize = 65_536;
/// The answer to a write refused because too many are held.
pub(crate) const TRYAGAIN: &str = "TRYAGAIN the slot is switching to another node; try again";

/// What a cutover does with a client's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Runs now.
    Run,
    /// Waits (not consumed) until the hold ends.
    Wait,
    /// Refused with [`TRYAGAIN`]: more connections wait than `HELD_CONNS_MAX`.
    Refuse,
}

/// What this node is doing in a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationRole {
    /// None since start.
    #[default]
    None,
    /// Sending slots.
    Source,
    /// Receiving slots.
    Target,
}

/// Node-wide migration state (one migration at a time per node).
pub struct Migration {
    /// What changes rarely, under one lock; the switch is decided under it.
    pub status: Mutex<MigrationStatus>,
    /// Writes to `pause_range` are held (set by the cutover, cleared only
    /// under `status` by the commit, after publishing the routing, or the abort).
    pub paused: AtomicBool,
    /// The held range (first slot, end slot exclusive), valid while `paused`.
    pub pause_lo: AtomicU64,
    /// See `pause_lo`.
    pub pause_hi: AtomicU64,
    /// Bumped by each cutover; each shard stores it in `seen` at the start of
    /// a loop turn, after which it dispatches no write to the range.
    pub pause_gen: AtomicU64,
    /// Per shard: the last `pause_gen` it saw, published once every
    /// message it sent to another shard before seeing it is on that
    /// shard's ring.
    pub seen: Vec<AtomicU64>,
    /// Per shard: the version of the routing it routes with (the count of
    /// routings published, `Cluster::version`), published once every
    /// message it routed with an older one is on its destination's ring.
    /// A shard deletes slots moved away only once every shard is past the
    /// switch's routing: a read routed here before the switch, still on its
    /// way to the shard that owns the key, must not find it deleted.
    pub routed: Vec<AtomicU64>,
    /// Keys the snapshots sent (source; 0 on the target).
    pub keys: AtomicU64,
    /// Bytes sent, snapshot and journal (source; 0 on the target).
    pub bytes: AtomicU64,
    /// Per source shard: journal bytes not yet acked by the target.
    pub lag: Vec<AtomicU64>,
    /// How many changes to the deletion of moved keys were made
    /// ([`Migration::change_cleanup`]); a shard that saw fewer reads the
    /// rest from `cleanup_changes`.
    pub cleanup_gen: AtomicU64,
    /// The last [`CLEANUP_CHANGES_MAX`] changes, oldest first (the count in
    /// `cleanup_gen` is raised under this lock).
    cleanup_changes: Mutex<VecDeque<CleanupChange>>,
    /// Target: the migration whose stream may still be applied; a flow of
    /// another one drops what it receives and closes (after an abort).
    pub target_id: AtomicU64,
    /// Source, switching through the control log (or installing the
    /// switch's configuration) past the hold's bound: held writes to the
    /// range are answered TRYAGAIN until the outcome is known (never run
    /// here meanwhile).
    pub refusing: AtomicBool,
    /// Source: the switch's configuration was installed (written and
    /// published) or refused, for migration `.0`.
    pub installed: Mutex<Option<(u64, Result<(), String>)>>,
    /// Target, on a control-log cluster: the migration's id in the log,
    /// whose outcome this node waits for (0: none): switched, it keeps
    /// what it received; cancelled, it drops it.
    pub target_log_id: AtomicU64,
}

/// See [`Migration::status`].
#[derive(Debug, Default)]
pub struct MigrationStatus {
    /// This node's part.
    pub role: MigrationRole,
    /// The slots moving (end exclusive).
    pub range: Range<usize>,
    /// The other node.
    pub peer: String,
    /// `streaming`, `cutover`, `committing` (the switch's configuration is
    /// being written), `switching` (the switch is proposed to the control
    /// log, whose outcome decides), `done` or `aborted`.
    pub state: &'static str,
    /// Why it aborted.
    pub reason: String,
    /// Counts migrations: a flow of an older one changes nothing.
    pub id: u64,
    /// Source: per shard of this node, whether it has a flow for the range,
    /// whether the target applied its snapshot, whether it is caught up in
    /// the cutover.
    pub flows: Vec<(bool, bool, bool)>,
    /// Source: shards whose slots meet the range (flows expected).
    pub expected: Vec<bool>,
    /// Source, in the cutover: the configuration to install, and when the
    /// hold ends (monotonic ns).
    pub cutover: Option<(u64, String, u64)>,
    /// Source, when the cluster's configuration lives in the control log:
    /// the migration's id and the target's node id; the switch is then
    /// proposed to the log instead of installed (the configuration in
    /// `cutover` is unused).
    pub via_log: Option<(u64, String)>,
    /// Monotonic ns when the pause began.
    pub pause_start_ns: u64,
    /// How long the last cutover held writes, in µs.
    pub pause_us: u64,
}

impl Migration {
    /// State for a node of `shards` shards.
    pub fn new(shards: usize) -> Self {
        Migration {
            status: Mutex::new(MigrationStatus::default()),
            paused: AtomicBool::new(false),
            pause_lo: AtomicU64::new(0),
            pause_hi: AtomicU64::new(0),
            pause_gen: AtomicU64::new(0),
            seen: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            routed: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            keys: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            lag: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            cleanup_gen: AtomicU64::new(0),
            cleanup_changes: Mutex::new(VecDeque::new()),
            target_id: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            installed: Mutex::new(None),
            target_log_id: AtomicU64::new(0),
        }
    }

    /// The status, even after a panic elsewhere (it keeps no invariant a
    /// panic could break halfway).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, MigrationStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every shard to delete, or to stop deleting, the keys of some
    /// slots this node does not serve; each shard applies the changes in
    /// the order they were made, at the start of its next loop turn.
    pub(crate) fn change_cleanup(&self, change: CleanupChange) {
        let mut changes = self.cleanup_changes.lock().unwrap_or_else(|e| e.into_inner());
        if changes.len() == CLEANUP_CHANGES_MAX {
            changes.pop_front();
        }
        changes.push_back(change);
        self.cleanup_gen.fetch_add(1, Release);
    }

    /// The changes made after the first `seen`, and how many were made in
    /// all; `None` in place of the changes when some of them are no longer
    /// kept (a shard that missed more than [`CLEANUP_CHANGES_MAX`]).
    fn cleanup_changes_since(&self, seen: u64) -> (u64, Option<Vec<CleanupChange>>) {
        let changes = self.cleanup_changes.lock().unwrap_or_else(|e| e.into_inner());
        let made = self.cleanup_gen.load(Acquire);
        let missed = usize::try_from(made.saturating_sub(seen)).unwrap_or(usize::MAX);
        let kept = (missed <= changes.len()).then(|| changes.range(changes.len() - missed..).cloned().collect());
        (made, kept)
    }
}

/// A change to the deletion of the keys of slots this node does not serve
/// ([`Migration::change_cleanup`]). Ranges are of slots, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CleanupChange {
    /// Delete them: a switch gave them away, or a pull of them into this
    /// node was aborted.
    Delete(Range<usize>),
    /// Stop deleting them: a pull brings them back, and its own flush drops
    /// what is left of them before their keys arrive. The deletion of every
    /// other slot goes on.
    Keep(Range<usize>),
}

/// A source flow's migration part (on [`FlowOut`]).
pub(crate) struct MigrationFlow {
    /// The migration it belongs to.
    pub id: u64,
    /// The slots it carries.
    pub range: Range<usize>,
    /// Journal bytes copied but not yet filtered (an entry cut by a slice).
    pub carry: Vec<u8>,
    /// The database the unfiltered stream has selected.
    pub db: Vec<u8>,
    /// Position of the filtered stream the target counts in its acks.
    pub sent: u64,
    /// The target's last ack.
    pub acked: u64,
    /// The target acked at all: it sends its first ack only once it has
    /// applied the whole snapshot (`REPLCONF snapshot-end`).
    pub snapshot_applied: bool,
    /// Bytes sent, for the throttle.
    pub bytes: u64,
    /// Monotonic ns when the flow began (the throttle's start).
    pub start_ns: u64,
    /// The loop turn at which this shard saw every shard past the
    /// cutover's barrier (0: not yet).
    pub barrier_turn: u64,
    /// The new configuration went down the flow; it closes once sent.
    pub finishing: bool,
}

// ---------------------------------------------------------------------------
// Source
// ---------------------------------------------------------------------------

/// Parses `PSYNC ? -1 <shard> <id> SLOTS <lo> <hi>`'s range (end inclusive,
/// as the admin CLI writes it); the range as first..end.
pub(crate) fn parse_range(args: &Args) -> Option<Range<usize>> {
    if args.len() != 8 || !args.get(5).eq_ignore_ascii_case(b"SLOTS") {
        return None;
    }
    let num = |i: usize| std::str::from_utf8(args.get(i)).ok().and_then(|s| s.parse::<usize>().ok());
    let (lo, hi) = (num(6)?, num(7)?);
    (lo <= hi && hi < coreshard_engine::slot::SLOTS).then_some(lo..hi + 1)
}

/// A migration flow starts on this shard: registers it; the error text when
/// it must be refused.
pub(crate) fn start_source(shard: &mut Shard, range: &Range<usize>, peer: &str) -> Result<MigrationFlow, String> {
    if shard.cluster.is_none() {
        return Err("ERR slot migration needs cluster mode".into());
    }
    let mig = &shard.shared.migration;
    let mut st = mig.lock();
    let active = matches!(st.state, "streaming" | "cutover" | "committing" | "switching");
    if active && (st.role != MigrationRole::Source || st.range != *range) {
        return Err("ERR another migration is in progress on this node".into());
    }
    if matches!(st.state, "cutover" | "committing" | "switching") {
        return Err("ERR the migration is switching over".into());
    }
    if !active {
        let shards = shard.map.shards();
        st.role = MigrationRole::Source;
        st.range = range.clone();
        st.peer = peer.to_string();
        st.state = "streaming";
        st.reason.clear();
        st.id += 1;
        st.flows = vec![(false, false, false); shards];
        st.expected = (0..shards).map(|s| shard.map.slots(s).meets(range.clone())).collect();
        st.cutover = None;
        st.via_log = None;
        mig.keys.store(0, Relaxed);
        mig.bytes.store(0, Relaxed);
    }
    if st.flows.get(shard.id).is_some_and(|f| f.0) {
        return Err("ERR this shard already streams the range".into());
    }
    if let Some(f) = st.flows.get_mut(shard.id) {
        *f = (true, false, false);
    }
    tracing::info!(shard = shard.id, "migration of slots {}..={} to {peer}: streaming", range.start, range.end - 1);
    Ok(MigrationFlow {
        id: st.id,
        range: range.clone(),
        carry: Vec::new(),
        db: b"0".to_vec(),
        sent: 0,
        acked: 0,
        snapshot_applied: false,
        bytes: 0,
        start_ns: crate::runtime::monotonic_ns(),
        barrier_turn: 0,
        finishing: false,
    })
}

/// Aborts the source side (under the lock): the held writes run here.
/// Not once the switch is proposed to the control log: only the log's
/// outcome ends that ([`decided_locked`]).
fn abort_locked(mig: &Migration, st: &mut MigrationStatus, why: &str) {
    if !matches!(st.state, "streaming" | "cutover") {
        return;
    }
    tracing::warn!("migration of slots {}..={} aborted: {why}", st.range.start, st.range.end.saturating_sub(1));
    st.state = "aborted";
    st.reason = why.to_string();
    st.cutover = None;
    if mig.paused.load(Relaxed) {
        st.pause_us = crate::runtime::monotonic_ns().saturating_sub(st.pause_start_ns) / 1000;
    }
    mig.paused.store(false, Release);
}

/// The snapshot of a migration flow went out (the target has it once it
/// acks).
pub(crate) fn snapshot_sent(shard: &Shard, keys: u64) {
    shard.shared.migration.keys.fetch_add(keys, Relaxed);
}

/// Copies what the journal gained to a migration flow, filtered to the
/// range; `Err` when the flow fell out of the backlog.
pub(crate) fn pump_journal(shard: &mut Shard, flow: &mut FlowOut, out: &mut Vec<u8>) -> Result<(), ()> {
    let Some(m) = flow.migration.as_mut() else { return Ok(()) };
    let journal = &shard.ks.journal;
    let mut raw = std::mem::take(&mut m.carry);
    match journal.copy_from(flow.lsn, FILTER_SLICE_BYTES, &mut raw) {
        Ok(n) => flow.lsn += n as u64,
        Err(_) => return Err(()),
    }
    let before = out.len();
    let used = filter(shard.table, &m.range, shard.ks.owned(), &mut m.db, &raw, out);
    m.carry = raw[used..].to_vec();
    let added = (out.len() - before) as u64;
    m.sent += added;
    m.bytes += added;
    shard.shared.migration.bytes.fetch_add(added, Relaxed);
    Ok(())
}

/// Filters whole journal entries of `raw` into `out`: entries with a key in
/// `range`, SELECTs and PINGs pass; a multi-shard transaction's share is
/// unwrapped (the target serves nothing of the range before the switch, so
/// it needs the effect, not the atomicity); FLUSHALL/FLUSHDB become a flush
/// of the range's slots that this shard (`owned`) sends, so the other
/// source shards' flows keep theirs; MULTI/EXEC marks and the other marks
/// are dropped. Returns the bytes of `raw` consumed (an entry cut at the end
/// waits for the rest).
pub(crate) fn filter(
    table: &coreshard_engine::CommandTable,
    range: &Range<usize>,
    owned: coreshard_engine::slot::ShardSlots,
    db: &mut Vec<u8>,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    let mut pos = 0;
    let mut spans = Vec::new();
    while let Some(len) = parse_entry(&raw[pos..], &mut spans) {
        let entry = &raw[pos..pos + len];
        let args = Args::new(entry, &spans);
        let name = args.get(0).to_ascii_uppercase();
        match name.as_slice() {
            b"SELECT" => {
                *db = args.get(1).to_vec();
                out.extend_from_slice(entry);
            }
            b"PING" => out.extend_from_slice(entry),
            b"MULTI" | b"EXEC" => {}
            b"REPLCONF" if args.len() == 5 && args.get(1).eq_ignore_ascii_case(b"tx-cmd") => {
                let mut inner = Vec::new();
                let mut tx_db = args.get(3).to_vec();
                filter(table, range, owned, &mut tx_db, args.get(4), &mut inner);
                if !inner.is_empty() {
                    encode_command(out, [&b"SELECT"[..], args.get(3)]);
                    out.extend_from_slice(&inner);
                    encode_command(out, [&b"SELECT"[..], db.as_slice()]);
                }
            }
            b"REPLCONF" => {}
            b"FLUSHALL" | b"FLUSHDB" => {
                let (lo, hi) = (range.start.to_string(), range.end.to_string());
                let (k, m) = (owned.shard().to_string(), owned.shards().to_string());
                let flush =
                    [&b"REPLCONF"[..], b"flush-slots", lo.as_bytes(), hi.as_bytes(), k.as_bytes(), m.as_bytes()];
                encode_command(out, flush);
            }
            _ => {
                if let Some(spec) = table.lookup(args.get(0)) {
                    let keys = crate::tx::command_keys(spec, &args).unwrap_or_else(|| spec.keys(&args).collect());
                    let inside = keys
                        .first()
                        .and_then(|&i| args.try_get(i))
                        .is_some_and(|k| range.contains(&(coreshard_engine::slot::key_slot(k) as usize)));
                    if inside {
                        out.extend_from_slice(entry);
                    }
                }
            }
        }
        pos += len;
    }
    pos
}

/// One RESP array of bulk strings at the start of `buf`: its length, with
/// the spans of its parts in `spans`; None when it is cut short (or not
/// such an array, which a journal never holds).
fn parse_entry(buf: &[u8], spans: &mut Vec<std::ops::Range<usize>>) -> Option<usize> {
    fn line(buf: &[u8], at: usize, tag: u8) -> Option<(usize, usize)> {
        if *buf.get(at)? != tag {
            return None;
        }
        let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse::<usize>().ok()?;
        Some((n, end + 2))
    }
    spans.clear();
    let (count, mut at) = line(buf, 0, b'*')?;
    for _ in 0..count {
        let (len, start) = line(buf, at, b'$')?;
        let end = start.checked_add(len)?;
        if buf.len() < end + 2 {
            return None;
        }
        spans.push(start..end);
        at = end + 2;
    }
    Some(at)
}

/// `REPLCONF ACK` on a migration flow.
pub(crate) fn on_ack(shard: &Shard, flow: &mut FlowOut, lsn: u64) {
    let Some(m) = flow.migration.as_mut() else { return };
    m.acked = m.acked.max(lsn);
    if !m.snapshot_applied {
        m.snapshot_applied = true;
        let mut st = shard.shared.migration.lock();
        if st.id == m.id
            && let Some(f) = st.flows.get_mut(shard.id)
        {
            f.1 = true;
        }
    }
    let behind = shard.ks.journal.end_lsn().saturating_sub(flow.lsn) + m.sent.saturating_sub(m.acked);
    shard.shared.migration.lag[shard.id].store(behind, Relaxed);
}

/// The cutover part of a migration flow's turn; true when the flow is
/// done with (finished or aborted) and should close once its output is sent.
/// `poll` gets the time the flow wants to look again.
pub(crate) fn pump_cutover(shard: &mut Shard, flow: &mut FlowOut, out: &mut Vec<u8>, poll: &mut Option<u64>) -> bool {
    let end = shard.ks.journal.end_lsn();
    let Some(m) = flow.migration.as_mut() else { return false };
    if m.finishing {
        return true;
    }
    let shared = shard.shared.clone();
    let mig = &shared.migration;
    let behind = end.saturating_sub(flow.lsn) + m.sent.saturating_sub(m.acked);
    mig.lag[shard.id].store(behind, Relaxed);
    let mut st = mig.lock();
    if st.id != m.id || st.state == "aborted" {
        return true;
    }
    if st.state == "done" {
        // The switch happened: the target installs the same configuration
        // from its stream, right after the last entry of the range. Through
        // the control log, the committed configuration this node has: a
        // target outside the log takes it as it takes the leader's push
        // (often sooner), a voter target ignores it.
        let config = match st.cutover_done_config() {
            Some(c) => Some(c),
            None => shared.cluster.as_ref().and_then(|c| c.hook().config_json()).map(|(e, j)| (e.to_string(), j)),
        };
        if let Some((epoch, json)) = config {
            encode_command(out, [&b"CLUSTER"[..], b"CORESHARD-SETCONFIG", epoch.as_bytes(), json.as_bytes()]);
        }
        m.finishing = true;
        return true;
    }
    if st.state != "cutover" {
        // "committing", "switching": the flow stays open, idle, until the
        // switch is installed or the log decides.
        return false;
    }
    let now = crate::runtime::monotonic_ns();
    *poll = Some(now + CUTOVER_POLL_NS);
    let generation = mig.pause_gen.load(Acquire);
    if m.barrier_turn == 0 {
        // Every shard has taken a loop turn since the hold began, so no
        // write to the range can still be on its way here but on a ring
        // this shard drains from its next turn on.
        if mig.seen.iter().all(|s| s.load(Acquire) >= generation) {
            m.barrier_turn = shard.repl.turn;
        }
        return false;
    }
    // No transaction holds locks or waits here: a write queued behind one
    // before the hold would otherwise run (and be acknowledged) after the
    // switch.
    let caught_up = shard.repl.turn > m.barrier_turn
        && shard.tx.idle()
        && m.snapshot_applied
        && flow.lsn == end
        && m.carry.is_empty()
        && m.acked >= m.sent;
    if !caught_up {
        return false;
    }
    if let Some(f) = st.flows.get_mut(shard.id) {
        f.2 = true;
    }
    let all = st.expected.iter().zip(&st.flows).all(|(e, f)| !e || f.2);
    if all {
        if st.via_log.is_some() {
            propose_switch_locked(shard, &mut st);
        } else {
            commit_locked(shard, &mut st);
        }
    }
    false
}

/// Every flow is caught up under the hold, on a cluster whose
/// configuration is the control log's: the switch is proposed there (in
/// the background) and the writes stay held until the log's outcome
/// reaches this node ([`decided_locked`], from [`on_turn`]). A proposal
/// that timed out may still commit, so nothing here decides by itself.
fn propose_switch_locked(shard: &mut Shard, st: &mut MigrationStatus) {
    let Some((id, target)) = st.via_log.clone() else { return };
    let Some(cluster) = shard.shared.cluster.clone() else { return };
    let (lo, hi) = (st.range.start as u16, (st.range.end - 1) as u16);
    match cluster.hook().switch_migration(id, &target, lo, hi) {
        Ok(()) => {
            st.state = "switching";
            tracing::info!("migration {id} of slots {lo}..={hi}: switch proposed to the control log");
            // Every shard looks for the outcome from its next turn on.
            shard.shared.wake_all();
        }
        Err(e) => {
            abort_locked(&shard.shared.migration, st, &format!("the switch could not be proposed: {e}"));
            shard.shared.wake_all();
        }
    }
}

/// The control log decided migration `st.via_log` (under the lock): on a
/// switch the routing that came with the outcome is already published
/// (the slots route to the target), so the held writes are released and
/// get MOVED; on a cancellation they run here.
fn decided_locked(shard: &mut Shard, st: &mut MigrationStatus, switched: bool) {
    let mig = &shard.shared.migration;
    st.pause_us = crate::runtime::monotonic_ns().saturating_sub(st.pause_start_ns) / 1000;
    let (lo, hi) = (st.range.start, st.range.end - 1);
    if switched {
        st.state = "done";
        tracing::info!("migration of slots {lo}..={hi}: switched by the control log, writes held {} µs", st.pause_us);
        mig.change_cleanup(CleanupChange::Delete(st.range.clone()));
    } else {
        st.state = "aborted";
        st.reason = "the control log cancelled the switch".into();
        tracing::warn!("migration of slots {lo}..={hi}: the control log cancelled the switch");
    }
    st.cutover = None;
    mig.refusing.store(false, Relaxed);
    mig.paused.store(false, Release);
    shard.shared.wake_all();
}

impl MigrationStatus {
    /// After the switch: the installed configuration to pass on (none
    /// through the control log: the node's committed one goes instead).
    fn cutover_done_config(&self) -> Option<(String, String)> {
        if self.via_log.is_some() {
            return None;
        }
        self.cutover.as_ref().map(|(e, j, _)| (e.to_string(), j.clone()))
    }
}

/// Every flow of the range is caught up under the hold: install the new
/// configuration here. The install answers off the shard, once the
/// cluster config file holds it and its routing is published
/// ([`on_turn`] then releases the held writes, which see it: MOVED); the
/// migration is `committing` meanwhile, and no longer aborts on its own.
fn commit_locked(shard: &mut Shard, st: &mut MigrationStatus) {
    let shared = shard.shared.clone();
    let mig = &shared.migration;
    let Some((epoch, json, _)) = st.cutover.clone() else { return };
    let Some(cluster) = shard.shared.cluster.clone() else { return };
    let owned =
        OwnedArgs::from_parts([&b"CLUSTER"[..], b"CORESHARD-SETCONFIG", epoch.to_string().as_bytes(), json.as_bytes()]);
    let (id, to) = (st.id, shared.clone());
    let later: crate::cluster::ReplyLater = Box::new(move |bytes, routing| {
        let result = match routing {
            Some(_) => Ok(()),
            None => Err(String::from_utf8_lossy(&bytes).trim().to_string()),
        };
        // Written and published (on the writer thread): release the held
        // writes right here, without waiting for a shard's turn. Not when
        // the lock is busy (a refusal is answered at once, under it): a
        // shard's next turn does it then.
        if result.is_ok()
            && let Ok(mut st) = to.migration.status.try_lock()
            && st.id == id
            && st.state == "committing"
        {
            switched_locked(&to, &mut st);
            return;
        }
        *to.migration.installed.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, result));
        to.wake_all();
    });
    st.state = "committing";
    if cluster.hook().command_async(&owned.view(), later).is_err() {
        st.state = "cutover";
        abort_locked(mig, st, "the new configuration cannot be installed on this node");
        shard.shared.wake_all();
    }
}

/// The switch's configuration is installed and published (or was refused):
/// release the held writes.
fn committed_locked(shard: &mut Shard, st: &mut MigrationStatus, result: Result<(), String>) {
    let mig = &shard.shared.migration;
    match result {
        Ok(()) => {
            if let Some(c) = shard.cluster.as_mut() {
                c.refresh();
            }
            switched_locked(&shard.shared, st);
        }
        Err(text) => {
            // Refused before anything changed: the source keeps the slots.
            st.state = "cutover";
            mig.refusing.store(false, Relaxed);
            abort_locked(mig, st, &format!("the new configuration was refused: {text}"));
            shard.shared.wake_all();
        }
    }
}

/// The switch is in force here (written, routing published): the held
/// writes are released (they get MOVED) and the moved keys go.
fn switched_locked(shared: &crate::shared::Shared, st: &mut MigrationStatus) {
    let mig = &shared.migration;
    st.state = "done";
    st.pause_us = crate::runtime::monotonic_ns().saturating_sub(st.pause_start_ns) / 1000;
    tracing::info!(
        "migration of slots {}..={}: switched at config epoch {}, writes held {} µs",
        st.range.start,
        st.range.end - 1,
        st.cutover.as_ref().map_or(0, |c| c.0),
        st.pause_us
    );
    // Released only after the routing is published: a shard that sees
    // `paused` false sees the new routing too.
    mig.refusing.store(false, Relaxed);
    mig.paused.store(false, Release);
    // The moved keys go in the background, a paced batch per loop turn.
    mig.change_cleanup(CleanupChange::Delete(st.range.clone()));
    shared.wake_all();
}

/// A source flow gives up (the reason shows in INFO).
pub(crate) fn abort_source(shard: &Shard, m: &MigrationFlow, why: &str) {
    let mig = &shard.shared.migration;
    let mut st = mig.lock();
    if st.id == m.id {
        abort_locked(mig, &mut st, why);
        drop(st);
        shard.shared.wake_all();
    }
}

/// A migration flow's connection closes on the source.
pub(crate) fn on_source_close(shard: &Shard, m: &MigrationFlow) {
    let mig = &shard.shared.migration;
    let mut st = mig.lock();
    if st.id != m.id {
        return;
    }
    if let Some(f) = st.flows.get_mut(shard.id) {
        f.0 = false;
    }
    if !m.finishing {
        abort_locked(mig, &mut st, "the link to the target was lost");
        drop(st);
        shard.shared.wake_all();
    }
}

/// The start of each loop turn, in cluster mode: note the cutover's
/// generation (the barrier), end a hold that ran out, run held clients
/// again once the hold is over.
pub(crate) fn on_turn(shard: &mut Shard) {
    shard.repl.turn += 1;
    let shared = shard.shared.clone();
    let mig = &shared.migration;
    // The generation this shard saw at the start of its previous turn is
    // published once every write it let through before seeing it is on
    // its shard's ring: what it sent by the end of that turn (marks below
    // this one), which flush_batches pushed unless a ring was full
    // (overflow) or the test-only hop delay keeps it; then later. Messages
    // sent since do not hold it back.
    let mark = shard.send_mark();
    if shard.repl.publishing_gen.0 != shard.repl.observed_gen {
        shard.repl.publishing_gen = (shard.repl.observed_gen, mark);
    }
    let (generation, gen_mark) = shard.repl.publishing_gen;
    if mig.seen[shard.id].load(Relaxed) != generation && shard.sent_before(gen_mark) {
        mig.seen[shard.id].store(generation, Release);
    }
    shard.repl.observed_gen = mig.pause_gen.load(Acquire);
    // The same for the routing, refreshed at the start of this turn: what
    // was routed with an older one was sent by the end of the previous turn.
    if shard.repl.publishing_routing.0 != shard.repl.routing_version {
        shard.repl.publishing_routing = (shard.repl.routing_version, mark);
    }
    let (version, version_mark) = shard.repl.publishing_routing;
    if mig.routed[shard.id].load(Relaxed) != version && shard.sent_before(version_mark) {
        mig.routed[shard.id].store(version, Release);
    }
    shard.repl.routing_version = shard.cluster.as_ref().map_or(0, |c| c.version);
    if mig.seen[shard.id].load(Relaxed) != shard.repl.observed_gen
        || mig.routed[shard.id].load(Relaxed) != shard.repl.routing_version
    {
        // Another turn soon publishes them, even if nothing else wakes this shard.
        super::arm_timer(shard, CUTOVER_POLL_NS);
    }
    cleanup_step(shard, mig);
    target_outcome(shard);
    if mig.paused.load(Acquire) {
        let now = crate::runtime::monotonic_ns();
        let mut st = mig.lock();
        if !matches!(st.state, "switching" | "committing") {
            if let Some((_, _, until)) = st.cutover
                && now >= until
            {
                abort_locked(mig, &mut st, "the target did not catch up within the write pause");
                drop(st);
                shard.shared.wake_all();
            }
            return;
        }
        // The switch is the control log's to decide, or the file writer's
        // to install: the outcome arrives off the shards (with a
        // configuration, or in `installed`), so every shard looks each
        // millisecond.
        super::arm_timer(shard, SWITCH_POLL_NS);
        let outcome = if st.state == "committing" {
            let mut installed = mig.installed.lock().unwrap_or_else(|e| e.into_inner());
            match installed.take() {
                Some((id, result)) if id == st.id => Some(Err(result)),
                _ => None,
            }
        } else {
            let id = st.via_log.as_ref().map_or(0, |v| v.0);
            shard.cluster.as_mut().and_then(|c| {
                c.refresh();
                c.routing.migration(id).map(Ok)
            })
        };
        match outcome {
            Some(Ok(switched)) => decided_locked(shard, &mut st, switched),
            Some(Err(result)) => committed_locked(shard, &mut st, result),
            None => {
                if st.cutover.as_ref().is_some_and(|c| now >= c.2) && !mig.refusing.load(Relaxed) {
                    // Past the bound the held writes are refused, not run:
                    // the switch may still commit.
                    mig.refusing.store(true, Relaxed);
                    shard.shared.wake_all();
                }
                if !mig.refusing.load(Relaxed) {
                    return;
                }
            }
        }
        drop(st);
    }
    if shard.repl.held.is_empty() {
        return;
    }
    if let Some(c) = shard.cluster.as_mut() {
        c.refresh();
    }
    for (idx, id) in std::mem::take(&mut shard.repl.held) {
        if shard.conns[idx as usize].as_ref().is_some_and(|c| c.id == id) {
            shard.process_input(idx, None);
        }
    }
}

/// Target on a control-log cluster: once the routing carries the log's
/// outcome of the migration, keep what arrived (switched: `done`) or drop
/// it as ABORT does (cancelled: the source keeps the slots), whatever the
/// admin tool does. One shard acts; the others see the id cleared.
fn target_outcome(shard: &mut Shard) {
    let mig = &shard.shared.migration;
    let id = mig.target_log_id.load(Acquire);
    if id == 0 {
        return;
    }
    let Some(switched) = shard.cluster.as_ref().and_then(|c| c.routing.migration(id)) else { return };
    if mig.target_log_id.compare_exchange(id, 0, AcqRel, Relaxed).is_err() {
        return;
    }
    let mut st = mig.lock();
    if st.role != MigrationRole::Target {
        return;
    }
    if switched {
        st.state = "done";
        st.reason.clear();
        return;
    }
    tracing::warn!("migration {id}: the control log cancelled the switch; dropping the slots received");
    st.state = "aborted";
    st.reason = "the control log cancelled the switch".into();
    st.id += 1;
    // Bytes still arriving on the old flows are dropped unapplied, and
    // what reached the shards goes slot by slot in the background.
    mig.target_id.store(st.id, Release);
    mig.change_cleanup(CleanupChange::Delete(st.range.clone()));
    drop(st);
    shard.shared.wake_all();
}

/// Deletes the keys of the slots this node gave away, a batch per loop
/// turn of at most [`CLEANUP_KEYS_PER_TURN`] keys (or
/// `debug-migration-cleanup-keys-per-turn`) and about [`CLEANUP_BATCH_NS`],
/// resting after each so that it takes at most [`CLEANUP_DUTY_PERCENT`] of
/// the shard's time, and journals each emptied slot as a flush of that
/// slot so that this node's replicas drop it too.
fn cleanup_step(shard: &mut Shard, mig: &Migration) {
    if mig.cleanup_gen.load(Acquire) != shard.repl.cleanup_gen {
        let (made, changes) = mig.cleanup_changes_since(shard.repl.cleanup_gen);
        shard.repl.cleanup_gen = made;
        let Some(changes) = changes else {
            // Not expected (see CLEANUP_CHANGES_MAX): the slots of the
            // changes missed keep their keys until they come back here.
            tracing::warn!("shard {}: changes to the deletion of moved keys were missed", shard.id);
            return;
        };
        for change in changes {
            apply_cleanup_change(shard, change);
        }
        let repl = &shard.repl;
        if repl.cleanup_slot.is_some() || !repl.cleanup.is_empty() || !repl.cleanup_queued.is_empty() {
            super::arm_timer(shard, CLEANUP_TURN_NS);
        }
        return;
    }
    if shard.repl.cleanup.is_empty() && shard.repl.cleanup_slot.is_none() {
        if shard.repl.cleanup_queued.is_empty() {
            return;
        }
        shard.repl.cleanup = shard.repl.cleanup_queued.remove(0);
    }
    if let Some((version, turn)) = shard.repl.cleanup_after {
        if turn == 0 {
            if mig.routed.iter().all(|r| r.load(Acquire) >= version) {
                shard.repl.cleanup_after = Some((version, shard.repl.turn));
            }
            return super::arm_timer(shard, CUTOVER_POLL_NS);
        }
        // A turn later this shard drained those messages from its rings;
        // one still waiting for a lock here runs first.
        if shard.repl.turn <= turn || !shard.tx.idle() {
            return super::arm_timer(shard, CUTOVER_POLL_NS);
        }
        shard.repl.cleanup_after = None;
    }
    let per_turn = shard.config.debug_migration_cleanup_keys_per_turn as usize;
    if per_turn == 0 {
        // Held (test-only): nothing moves until the setting is raised.
        return super::arm_timer(shard, CLEANUP_HELD_NS);
    }
    let started = crate::runtime::monotonic_ns();
    if started < shard.repl.cleanup_next_ns {
        return super::arm_timer(shard, shard.repl.cleanup_next_ns - started);
    }
    let slot = match shard.repl.cleanup_slot {
        Some(slot) => {
            // Served here again (a configuration pushed meanwhile): its
            // keys are this node's again, what is left of them stays.
            if serves_again(shard, slot) {
                shard.repl.cleanup_slot = None;
                return super::arm_timer(shard, CLEANUP_TURN_NS);
            }
            slot
        }
        None => {
            let slot = shard.ks.owned().slot(shard.repl.cleanup.start);
            shard.repl.cleanup.start += 1;
            if serves_again(shard, slot) {
                return super::arm_timer(shard, CLEANUP_TURN_NS);
            }
            // Snapshots still streaming (a replica's full sync) save the
            // slot first.
            let (ks, now) = (&shard.ks, shard.now_ms);
            for (_, s) in shard.repl.snapshots.iter_mut() {
                s.before_write_slot(ks, slot, now);
            }
            slot
        }
    };
    // Its keys go a bounded batch per turn: the slot is served elsewhere,
    // and the clients of the slots this shard keeps wait behind at most
    // one batch (`per_turn` keys, and no longer than CLEANUP_BATCH_NS give
    // or take a chunk). Once it is empty, this node's replicas drop it too
    // (a full sync that began meanwhile may hold part of it: the flush
    // comes after its snapshot).
    let (mut left, mut done) = (per_turn, false);
    let mut now = started;
    while left > 0 && now - started < CLEANUP_BATCH_NS {
        let chunk = left.min(CLEANUP_CHUNK_KEYS);
        let removed = shard.ks.remove_from_slot(slot, chunk);
        left -= removed;
        now = crate::runtime::monotonic_ns();
        if removed < chunk {
            done = true;
            break;
        }
    }
    shard.repl.cleanup_next_ns = now.saturating_add(cleanup_gap_ns(now.saturating_sub(started)));
    shard.repl.cleanup_slot = (!done).then_some(slot);
    if done {
        let (a, b) = (slot.to_string(), (slot + 1).to_string());
        shard.ks.journal.append(0, [&b"REPLCONF"[..], b"flush-slots", a.as_bytes(), b.as_bytes()]);
    }
    if shard.repl.cleanup_slot.is_some() || !shard.repl.cleanup.is_empty() || !shard.repl.cleanup_queued.is_empty() {
        // The next batch after its rest, even when nothing else wakes this shard.
        super::arm_timer(shard, (shard.repl.cleanup_next_ns - now).max(CLEANUP_TURN_NS));
    }
}

/// Whether this node serves `slot` (in the routing it has now): a slot
/// it gave away and serves again is not deleted.
fn serves_again(shard: &mut Shard, slot: usize) -> bool {
    shard.cluster.as_mut().is_some_and(|c| {
        c.refresh();
        c.routing.serves(slot as u16)
    })
}

/// One change to what `shard` deletes of the slots it does not serve.
fn apply_cleanup_change(shard: &mut Shard, change: CleanupChange) {
    let owned = shard.ks.owned();
    match change {
        CleanupChange::Delete(range) => {
            // Local slot indices of this shard (its slots interleave with the others').
            let locals = owned.locals(range);
            if shard.repl.cleanup.is_empty() {
                shard.repl.cleanup = locals;
            } else if !locals.is_empty() {
                // The one under way goes on; this one follows.
                shard.repl.cleanup_queued.push(locals);
            }
            // Not before every shard routes with the configuration that
            // moved the slots away (published before the change), and has
            // sent here what it routed with an older one.
            let version = shard.cluster.as_ref().map_or(0, |c| c.shared.version());
            shard.repl.cleanup_after = Some((version, 0));
        }
        CleanupChange::Keep(range) => {
            let repl = &mut shard.repl;
            keep_slots(owned, range, &mut repl.cleanup, &mut repl.cleanup_queued, &mut repl.cleanup_slot);
            if repl.cleanup.is_empty() && repl.cleanup_queued.is_empty() && repl.cleanup_slot.is_none() {
                repl.cleanup_after = None;
            }
        }
    }
}

/// Takes the slots of `range` out of a shard's pending deletion: the
/// ranges of local indices `cleanup` (under way) and `queued` (next), and
/// the slot `slot` half deleted. What is left keeps its order; a range cut
/// in two by `range` leaves its two ends.
fn keep_slots(
    owned: coreshard_engine::slot::ShardSlots,
    range: Range<usize>,
    cleanup: &mut Range<usize>,
    queued: &mut Vec<Range<usize>>,
    slot: &mut Option<usize>,
) {
    if slot.is_some_and(|s| range.contains(&s)) {
        *slot = None;
    }
    let kept = owned.locals(range);
    if kept.is_empty() {
        return;
    }
    let mut left = Vec::with_capacity(queued.len() + 2);
    for r in std::iter::once(cleanup.clone()).chain(queued.drain(..)) {
        left.push(r.start..r.end.min(kept.start));
        left.push(r.start.max(kept.end)..r.end);
    }
    left.retain(|r| !r.is_empty());
    let mut left = left.into_iter();
    *cleanup = left.next().unwrap_or(0..0);
    queued.extend(left);
}

/// How long the deletion of moved keys rests after a batch that took
/// `took_ns`, so that it takes at most [`CLEANUP_DUTY_PERCENT`] of the
/// shard's time.
fn cleanup_gap_ns(took_ns: u64) -> u64 {
    took_ns.saturating_mul(100 - CLEANUP_DUTY_PERCENT) / CLEANUP_DUTY_PERCENT
}

/// In cluster mode, before a client's command runs: whether it writes to
/// slots whose writes a cutover holds; a held connection is noted to run
/// again when the hold ends.
#[inline]
pub(crate) fn hold(shard: &mut Shard, idx: u32, conn: &Conn, args: &Args) -> Hold {
    let mig = &shard.shared.migration;
    if !mig.paused.load(Acquire) {
        return Hold::Run;
    }
    let Some(spec) = shard.table.lookup(args.get(0)) else { return Hold::Run };
    let refusing = mig.refusing.load(Relaxed);
    let range = mig.pause_lo.load(Relaxed) as usize..mig.pause_hi.load(Relaxed) as usize;
    let inside = |a: &Args| -> bool {
        let Some(spec) = shard.table.lookup(a.get(0)) else { return false };
        if !spec.has(coreshard_engine::cmd::flags::WRITE) {
            return false;
        }
        let keys = crate::tx::command_keys(spec, a).unwrap_or_else(|| spec.keys(a).collect());
        if keys.is_empty() {
            // A write over every key (FLUSHALL) waits too.
            return true;
        }
        keys.iter()
            .any(|&i| a.try_get(i).is_some_and(|k| range.contains(&(coreshard_engine::slot::key_slot(k) as usize))))
    };
    let held = if matches!(spec.kind, coreshard_engine::cmd::Kind::Conn(coreshard_engine::ConnCmd::Exec)) {
        conn.multi.as_deref().is_some_and(|m| m.cmds().iter().any(|c| inside(&c.view())))
    } else {
        conn.multi.is_none() && inside(args)
    };
    if !held {
        return Hold::Run;
    }
    if refusing {
        return Hold::Refuse;
    }
    if shard.repl.held.iter().any(|&(i, _)| i == idx) {
        return Hold::Wait;
    }
    if shard.repl.held.len() >= HELD_CONNS_MAX {
        return Hold::Refuse;
    }
    shard.repl.held.push((idx, conn.id));
    Hold::Wait
}

/// In cluster mode, while a newer configuration is being written here:
/// whether a client's command this node would redirect or refuse waits for
/// it (a switch's target answers MOVED back to the source until its new
/// epoch is in force; waiting avoids sending the client round), MOVED and
/// CLUSTERDOWN alike: a node that has accepted its first configuration
/// (CLUSTER INFO shows its epoch, so tools and tests go on) still has the
/// empty one in force until the file is written, and would answer
/// `CLUSTERDOWN Hash slot not served` meanwhile. CROSSSLOT does not depend
/// on the configuration. The connection runs again from [`on_turn`] once
/// the configuration is in force.
pub(crate) fn awaits_config(shard: &mut Shard, idx: u32, conn: &Conn, args: &Args) -> bool {
    let Some(c) = shard.cluster.as_mut() else { return false };
    c.refresh();
    if !c.shared.newer_pending(&c.routing) || conn.multi.is_some() {
        return false;
    }
    let Some(spec) = shard.table.lookup(args.get(0)) else { return false };
    let redirected =
        c.check(spec, args, conn.readonly).is_err_and(|e| e.starts_with("MOVED") || e.starts_with("CLUSTERDOWN"));
    if !redirected {
        return false;
    }
    if !shard.repl.held.iter().any(|&(i, _)| i == idx) {
        if shard.repl.held.len() >= HELD_CONNS_MAX {
            return false;
        }
        shard.repl.held.push((idx, conn.id));
    }
    super::arm_timer(shard, SWITCH_POLL_NS);
    true
}

/// `CLUSTER CORESHARD-MIGRATE CUTOVER <epoch> <config> <pause-ms>` on the
/// source: hold writes to the range, and switch once the target confirmed
/// everything (or abort after `pause-ms`). With `CUTOVER LOG <id>
/// <target-node-id> <pause-ms>` (a cluster configured through the control
/// log) the switch is proposed to the log as migration `id` instead, and
/// the log's outcome decides; past `pause-ms` the held writes get TRYAGAIN
/// until it is known.
fn cutover(shard: &mut Shard, conn: &mut Conn, args: &Args) {
    let num = |i: usize| std::str::from_utf8(args.get(i)).ok().and_then(|s| s.parse::<u64>().ok());
    let via_log = args.len() == 7;
    let (epoch, pause_ms) = if via_log { (num(4), num(6)) } else { (num(3), num(5)) };
    let (Some(epoch), Some(pause_ms)) = (epoch, pause_ms) else {
        return conn.reply().error(coreshard_engine::reply::NOT_INTEGER);
    };
    let Ok(text) = std::str::from_utf8(args.get(if via_log { 5 } else { 4 })) else {
        return conn.reply().error("ERR invalid configuration");
    };
    let (json, via_log) = if via_log { ("", Some((epoch, text.to_string()))) } else { (text, None) };
    let mig = &shard.shared.migration;
    let mut st = mig.lock();
    if st.role != MigrationRole::Source || st.state != "streaming" {
        return conn.reply().error("ERR no migration is streaming from this node");
    }
    let ready = st.expected.iter().zip(&st.flows).all(|(e, f)| !e || (f.0 && f.1));
    if !ready {
        return conn.reply().error("ERR the target has not applied every snapshot yet");
    }
    let now = crate::runtime::monotonic_ns();
    let until = now + pause_ms.clamp(1, PAUSE_MS_MAX) * 1_000_000;
    st.cutover = Some((epoch, json.to_string(), until));
    st.via_log = via_log;
    mig.refusing.store(false, Relaxed);
    st.state = "cutover";
    st.pause_start_ns = now;
    mig.pause_lo.store(st.range.start as u64, Relaxed);
    mig.pause_hi.store(st.range.end as u64, Relaxed);
    // `paused` before the generation: a shard that sees the new generation
    // sees the hold too, and checks every later write against it.
    mig.paused.store(true, Release);
    mig.pause_gen.fetch_add(1, Release);
    drop(st);
    shard.shared.wake_all();
    conn.reply().ok();
}

// ---------------------------------------------------------------------------
// Target
// ---------------------------------------------------------------------------

/// `CLUSTER CORESHARD-MIGRATE PULL <host> <port> <lo> <hi> [<id>]` on the
/// target; `id`, on a control-log cluster, is the migration's id there.
fn pull(shard: &mut Shard, conn: &mut Conn, args: &Args) {
    let num = |i: usize| std::str::from_utf8(args.get(i)).ok().and_then(|s| s.parse::<usize>().ok());
    let (Some(port), Some(lo), Some(hi)) = (num(4), num(5), num(6)) else {
        return conn.reply().error(coreshard_engine::reply::NOT_INTEGER);
    };
    let log_id = match args.try_get(7) {
        None => 0,
        Some(a) => match std::str::from_utf8(a).ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(id) => id,
            None => return conn.reply().error(coreshard_engine::reply::NOT_INTEGER),
        },
    };
    let (Ok(port), true) = (u16::try_from(port), lo <= hi && hi < coreshard_engine::slot::SLOTS) else {
        return conn.reply().error("ERR invalid port or slot range");
    };
    let host = String::from_utf8_lossy(args.get(3)).into_owned();
    if let Some(c) = shard.cluster.as_ref() {
        if (lo..=hi).any(|s| c.routing.serves(s as u16)) {
            return conn.reply().error("ERR this node already serves slots of the range");
        }
    }
    {
        let mig = &shard.shared.migration;
        let mut st = mig.lock();
        if matches!(st.state, "streaming" | "cutover" | "committing" | "switching") {
            return conn.reply().error("ERR another migration is in progress on this node");
        }
        st.role = MigrationRole::Target;
        st.range = lo..hi + 1;
        st.peer = format!("{host}:{port}");
        st.state = "streaming";
        st.reason.clear();
        st.id += 1;
        mig.target_id.store(st.id, Release);
        mig.target_log_id.store(log_id, Release);
        st.cutover = None;
        mig.keys.store(0, Relaxed);
        mig.bytes.store(0, Relaxed);
        // Slots this node moved away earlier may come back now: their
        // deletion stops (the pull's own flush drops what is left); that
        // of the other slots it gave away goes on.
        mig.change_cleanup(CleanupChange::Keep(st.range.clone()));
    }
    let shared = shard.shared.clone();
    let id = shared.migration.target_id.load(Acquire);
    let spawned = std::thread::Builder::new()
        .name("migrate-link".into())
        .spawn(move || super::link::connect_migration(&shared, &host, port, lo..hi + 1, id));
    match spawned {
        Ok(_) => conn.reply().ok(),
        Err(e) => conn.reply().error(&format!("ERR cannot start the migration link: {e}")),
    }
}

/// The target's link failed before it could hand its flows over.
pub(crate) fn target_failed(shared: &crate::shared::Shared, why: &str) {
    let mut st = shared.migration.lock();
    if st.role == MigrationRole::Target && st.state == "streaming" {
        tracing::warn!("migration pull from {} failed: {why}", st.peer);
        st.state = "aborted";
        st.reason = why.to_string();
    }
}

/// A migration flow's connection closes on the target.
pub(crate) fn on_target_close(shard: &Shard) {
    // The latest routing, not this shard's cached one: the stream's last
    // command may have installed it a moment ago.
    let owned = shard.shared.cluster.as_ref().is_some_and(|c| {
        let st = shard.shared.migration.lock();
        st.range.start < st.range.end && c.snapshot().serves(st.range.start as u16)
    });
    let mut st = shard.shared.migration.lock();
    if st.role != MigrationRole::Target || st.state != "streaming" {
        return;
    }
    if owned {
        st.state = "done";
    } else {
        // What arrived stays invisible (the routing sends clients to the
        // source) until a retry's flush or ABORT drops it: the source may
        // have switched just before the link went, and then the admin
        // installs the new configuration here instead.
        st.state = "aborted";
        st.reason = "the link to the source was lost".into();
    }
}

/// `CLUSTER CORESHARD-MIGRATE ABORT`: on the target, drops what arrived for
/// the range (unless this node serves it now); on the source, ends the
/// migration if it did not switch.
fn abort(shard: &mut Shard, idx: u32, conn: &mut Conn) {
    let mig = &shard.shared.migration;
    let mut st = mig.lock();
    match st.role {
        MigrationRole::Source if st.state == "switching" => {
            conn.reply().error("ERR the switch is proposed to the control log: its outcome decides")
        }
        MigrationRole::Source if st.state == "committing" => {
            conn.reply().error("ERR the switch's configuration is being installed")
        }
        MigrationRole::Source => {
            abort_locked(mig, &mut st, "aborted by the admin");
            drop(st);
            shard.shared.wake_all();
            conn.reply().ok()
        }
        MigrationRole::Target => {
            let range = st.range.clone();
            let serves = shard.cluster.as_ref().is_some_and(|c| c.routing.serves(range.start as u16));
            if serves {
                return conn.reply().error("ERR this node serves the range now");
            }
            if st.state != "done" {
                st.state = "aborted";
                if st.reason.is_empty() {
                    st.reason = "aborted by the admin".into();
                }
            }
            st.id += 1;
            // Bytes still arriving on the old flows are dropped unapplied.
            mig.target_id.store(st.id, Release);
            mig.target_log_id.store(0, Release);
            // What reached the shards is flushed now (each shard journals
            // what it dropped, for this node's replicas), and once more in
            // the background a turn later, after anything that was on its
            // way between the shards when the flows stopped.
            mig.change_cleanup(CleanupChange::Delete(range.clone()));
            drop(st);
            close_target_flows(shard);
            shard.shared.wake_all();
            let (lo, hi) = (range.start.to_string(), range.end.to_string());
            let owned = OwnedArgs::from_parts([&b"REPLCONF"[..], b"flush-slots", lo.as_bytes(), hi.as_bytes()]);
            let op = crate::batch::Op::FlushSlots { journal: true };
            shard.run_on_all(idx, conn, owned.view(), op, coreshard_engine::Merge::Ok);
        }
        MigrationRole::None => conn.reply().ok(),
    }
}

/// True when a migration flow's stream belongs to a migration that ended
/// here (aborted): it is dropped unapplied.
#[inline]
pub(crate) fn stale_target_flow(shared: &crate::shared::Shared, id: u64) -> bool {
    shared.migration.target_id.load(Acquire) != id
}

/// Closes this shard's migration connections from the source.
fn close_target_flows(shard: &mut Shard) {
    for idx in 0..shard.conns.len() as u32 {
        if let Some(c) = shard.conns[idx as usize].as_mut()
            && c.master.as_ref().is_some_and(|m| m.migration)
        {
            c.closing = Closing::Now;
            shard.begin_close(idx);
        }
    }
}

/// `CLUSTER CORESHARD-MIGRATE <PULL|CUTOVER|ABORT|STATUS> ...`.
pub(crate) fn command(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    let sub = args.try_get(2).map(|s| s.to_ascii_uppercase()).unwrap_or_default();
    match (sub.as_slice(), args.len()) {
        (b"PULL", 7 | 8) => pull(shard, conn, &args),
        (b"CUTOVER", 6) => cutover(shard, conn, &args),
        (b"CUTOVER", 7) if args.get(3).eq_ignore_ascii_case(b"LOG") => cutover(shard, conn, &args),
        (b"ABORT", 3) => abort(shard, idx, conn),
        (b"STATUS", 3) => {
            let mut o = String::new();
            info(shard, &mut o);
            conn.reply().bulk(o.as_bytes());
        }
        _ => conn.reply().error("ERR usage: CLUSTER CORESHARD-MIGRATE PULL host port lo hi [id] | CUTOVER epoch config pause-ms | CUTOVER LOG id target-id pause-ms | ABORT | STATUS"),
    }
}

/// INFO's Migration section (cluster mode).
pub(crate) fn info(shard: &Shard, o: &mut String) {
    let mig = &shard.shared.migration;
    let st = mig.lock();
    let role = match st.role {
        MigrationRole::None => "none",
        MigrationRole::Source => "source",
        MigrationRole::Target => "target",
    };
    let lag: u64 = if st.role == MigrationRole::Source { mig.lag.iter().map(|l| l.load(Relaxed)).sum() } else { 0 };
    let state = if st.state.is_empty() { "none" } else { st.state };
    let (lo, hi) = (st.range.start, st.range.end.saturating_sub(1));
    let _ = write!(
        o,
        "migration_role:{role}\r\nmigration_state:{state}\r\nmigration_slots:{lo}-{hi}\r\nmigration_peer:{}\r\n\
         migration_keys:{}\r\nmigration_bytes:{}\r\nmigration_lag_bytes:{lag}\r\nmigration_pause_us:{}\r\n\
         migration_reason:{}\r\n",
        st.peer,
        mig.keys.load(Relaxed),
        mig.bytes.load(Relaxed),
        st.pause_us,
        st.reason,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
        out
    }

    /// A key whose slot is in `range`, or outside it.
    fn key(range: &Range<usize>, inside: bool) -> String {
        (0..)
            .map(|i| format!("key:{i}"))
            .find(|k| range.contains(&(coreshard_engine::slot::key_slot(k.as_bytes()) as usize)) == inside)
            .unwrap_or_default()
    }

    #[test]
    fn the_deletion_rests_three_times_as_long_as_a_batch_took() {
        // 25% of the shard's time: a batch, then three times its length of rest.
        assert_eq!(cleanup_gap_ns(40_000), 120_000);
        assert_eq!(cleanup_gap_ns(0), 0);
        let (batch, rest) = (7_919, cleanup_gap_ns(7_919));
        assert!(batch * 100 / (batch + rest) <= CLEANUP_DUTY_PERCENT);
        assert_eq!(cleanup_gap_ns(u64::MAX), u64::MAX / CLEANUP_DUTY_PERCENT);
    }

    #[test]
    fn a_pull_takes_only_its_own_slots_out_of_the_deletion() {
        // Shard 1 of 3: slots 1, 4, 7, ...; local index l is slot 3l + 1.
        let owned = coreshard_engine::slot::SlotMap::new(3).slots(1);
        let gave = |a: usize, b: usize| owned.locals(a..b);
        // Under way: slots 100..400 (local 33..133), slot 97 half deleted;
        // queued: 1000..1100 (local 333..367) and 2000..2100 (667..700).
        let (mut cleanup, mut queued, mut slot) = (gave(100, 400), vec![gave(1000, 1100), gave(2000, 2100)], Some(97));
        // A pull of slots none of which is queued: nothing changes.
        keep_slots(owned, 500..600, &mut cleanup, &mut queued, &mut slot);
        assert_eq!((cleanup.clone(), queued.clone(), slot), (33..133, vec![333..367, 667..700], Some(97)));
        // One of another shard's slots only (3 is shard 0's): nothing either.
        keep_slots(owned, 3..4, &mut cleanup, &mut queued, &mut slot);
        assert_eq!((cleanup.clone(), queued.clone(), slot), (33..133, vec![333..367, 667..700], Some(97)));
        // The middle of the range under way: its two ends stay, in order.
        keep_slots(owned, 200..300, &mut cleanup, &mut queued, &mut slot);
        assert_eq!((cleanup.clone(), queued.clone(), slot), (33..67, vec![100..133, 333..367, 667..700], Some(97)));
        assert_eq!((owned.slot(66), owned.slot(100)), (199, 301));
        // The half-deleted slot and a whole queued range.
        keep_slots(owned, 90..100, &mut cleanup, &mut queued, &mut slot);
        assert_eq!(slot, None);
        keep_slots(owned, 1000..1100, &mut cleanup, &mut queued, &mut slot);
        assert_eq!((cleanup.clone(), queued.clone()), (33..67, vec![100..133, 667..700]));
        // Everything under way: the next range takes its place.
        keep_slots(owned, 0..1000, &mut cleanup, &mut queued, &mut slot);
        assert_eq!((cleanup.clone(), queued.clone()), (667..700, vec![]));
        keep_slots(owned, 0..16384, &mut cleanup, &mut queued, &mut slot);
        assert_eq!((cleanup, queued, slot), (0..0, vec![], None));
    }

    #[test]
    fn a_shard_reads_every_change_to_the_deletion_it_missed() {
        let mig = Migration::new(2);
        assert_eq!(mig.cleanup_changes_since(0), (0, Some(vec![])));
        mig.change_cleanup(CleanupChange::Delete(0..100));
        mig.change_cleanup(CleanupChange::Keep(500..600));
        // A switch and a pull right after it: a shard sees both, in order.
        assert_eq!(
            mig.cleanup_changes_since(0),
            (2, Some(vec![CleanupChange::Delete(0..100), CleanupChange::Keep(500..600)]))
        );
        assert_eq!(mig.cleanup_changes_since(1), (2, Some(vec![CleanupChange::Keep(500..600)])));
        for i in 0..CLEANUP_CHANGES_MAX {
            mig.change_cleanup(CleanupChange::Delete(i..i + 1));
        }
        let made = 2 + CLEANUP_CHANGES_MAX as u64;
        assert_eq!(mig.cleanup_changes_since(0), (made, None), "the oldest are gone");
        let (_, last) = mig.cleanup_changes_since(made - 1);
        assert_eq!(last, Some(vec![CleanupChange::Delete(CLEANUP_CHANGES_MAX - 1..CLEANUP_CHANGES_MAX)]));
        assert_eq!(mig.cleanup_changes_since(2).1.map(|c| c.len()), Some(CLEANUP_CHANGES_MAX));
    }

    #[test]
    fn the_journal_filter_keeps_the_range_and_unwraps_transaction_shares() {
        let table = coreshard_engine::CommandTable::get();
        let range = 100..200;
        let (a, b) = (key(&range, true), key(&range, false));
        let mut raw = Vec::new();
        raw.extend(entry(&["SELECT", "0"]));
        raw.extend(entry(&["SET", &a, "1"]));
        raw.extend(entry(&["SET", &b, "1"]));
        raw.extend(entry(&["PING"]));
        raw.extend(entry(&["MULTI"]));
        raw.extend(entry(&["DEL", &a]));
        raw.extend(entry(&["EXEC"]));
        let mut share = entry(&["SET", &a, "2"]);
        share.extend(entry(&["SET", &b, "2"]));
        let share = String::from_utf8(share).unwrap_or_default();
        raw.extend(entry(&["REPLCONF", "tx-cmd", "7", "0", &share]));
        raw.extend(entry(&["REPLCONF", "tx-end", "7", "1", "0"]));
        raw.extend(entry(&["FLUSHALL"]));
        let cut = entry(&["SET", &a, "3"]);
        raw.extend(&cut[..cut.len() - 3]);
        let (mut db, mut out) = (b"0".to_vec(), Vec::new());
        let used = filter(table, &range, coreshard_engine::slot::SlotMap::new(3).slots(1), &mut db, &raw, &mut out);
        assert_eq!(used, raw.len() - (cut.len() - 3), "an entry cut short waits for its end");
        let mut want = Vec::new();
        want.extend(entry(&["SELECT", "0"]));
        want.extend(entry(&["SET", &a, "1"]));
        want.extend(entry(&["PING"]));
        want.extend(entry(&["DEL", &a]));
        want.extend(entry(&["SELECT", "0"]));
        want.extend(entry(&["SET", &a, "2"]));
        want.extend(entry(&["SELECT", "0"]));
        want.extend(entry(&["REPLCONF", "flush-slots", "100", "200", "1", "3"]));
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
    }

    #[test]
    fn a_range_parses_from_the_migration_psync() {
        let owned = OwnedArgs::from_parts(["PSYNC", "?", "-1", "0", "id", "SLOTS", "5", "9"].map(str::as_bytes));
        assert_eq!(parse_range(&owned.view()), Some(5..10));
        let bad = OwnedArgs::from_parts(["PSYNC", "?", "-1", "0", "id", "SLOTS", "9", "5"].map(str::as_bytes));
        assert_eq!(parse_range(&bad.view()), None);
        let far = OwnedArgs::from_parts(["PSYNC", "?", "-1", "0", "id", "SLOTS", "0", "16384"].map(str::as_bytes));
        assert_eq!(parse_range(&far.view()), None);
    }
}
