//! The primary's side of a flow: PSYNC, the hand-off of the socket to the
//! shard it names, and streaming that shard's snapshot and journal.

use super::{ReplicaFlow, ReplicaInfo, arm_timer};
use crate::conn::{Closing, Conn};
use crate::shard::Shard;
use crate::shared::Control;
use coreshard_engine::Args;
use coreshard_engine::journal::encode_command;
use coreshard_engine::snapshot::Snapshot;
use std::sync::atomic::Ordering::Relaxed;

/// Journal bytes that go to a replica at once, however recent the last send.
const FLUSH_BYTES: u64 = 16 * 1024;
/// A flow sends at most once per this delay unless `FLUSH_BYTES` are
/// waiting: entries that come faster travel in batches, and an entry after
/// a quiet spell goes at once. The longest an entry waits.
const FLUSH_DELAY_NS: u64 = 100_000;
/// Output a flow may have unsent before it takes more from the journal or snapshot.
const FLOW_UNSENT_BYTES_MAX: usize = 1024 * 1024;
/// Snapshot bytes serialized per flow per loop turn, at most (the shard
/// serves its clients between slices).
const SNAPSHOT_SLICE_BYTES: usize = 256 * 1024;
/// The shard's time a flow's snapshot takes per loop turn, at most (give
/// or take one `SNAPSHOT_PIECE_BYTES` piece, and the start of a big slot,
/// which lists its key names): small keys serialize at about 0.5 µs each,
/// so `SNAPSHOT_SLICE_BYTES` of them took 1.5-2 ms, which every client of
/// the shard waited for.
const SNAPSHOT_TURN_NS: u64 = 250_000;
/// Snapshot bytes serialized between two reads of the clock within a turn
/// (about 50 µs of small keys).
const SNAPSHOT_PIECE_BYTES: usize = 8 * 1024;
/// Journal bytes copied per flow per loop turn.
const JOURNAL_SLICE_BYTES: usize = 1024 * 1024;

/// Appends a loop turn's part of `snapshot` to `out`: pieces of
/// [`Snapshot::fill`] until `max_bytes` went out or `SNAPSHOT_TURN_NS`
/// passed. Returns true when the snapshot is finished.
fn fill_turn(
    snapshot: &mut Snapshot,
    ks: &coreshard_engine::Keyspace,
    now_ms: coreshard_engine::UnixMs,
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> bool {
    let start_ns = crate::runtime::monotonic_ns();
    let start = out.len();
    loop {
        let left = max_bytes.saturating_sub(out.len() - start);
        // Each call hands out something unless the snapshot is finished.
        if snapshot.fill(ks, now_ms, left.min(SNAPSHOT_PIECE_BYTES), out) {
            return true;
        }
        if out.len() - start >= max_bytes || crate::runtime::monotonic_ns() - start_ns >= SNAPSHOT_TURN_NS {
            return false;
        }
    }
}

/// What a connection streaming to a replica is doing.
pub(crate) struct FlowOut {
    /// The replica's id.
    replica: String,
    /// Streaming the snapshot (then the journal from `lsn`).
    snapshot: bool,
    /// The next journal position to send.
    pub(crate) lsn: u64,
    /// Monotonic ns when unsent journal bytes first waited.
    pending_since_ns: u64,
    /// Monotonic ns of the last journal bytes handed to the socket.
    last_sent_ns: u64,
    /// Monotonic ns of the last ack.
    last_ack_ns: u64,
    /// Monotonic ns since when it has been over the soft output limit (0: not over).
    over_soft_since_ns: u64,
    /// A slot migration's flow: a snapshot of its slots only, the journal
    /// filtered to them, no replica registered (repl/migrate.rs).
    pub(crate) migration: Option<Box<super::migrate::MigrationFlow>>,
}

/// A connection moving to another shard (PSYNC for that shard's flow).
pub(crate) struct HandOff {
    /// The shard it goes to.
    pub to: usize,
    /// The PSYNC that shard will run.
    pub args: Vec<Vec<u8>>,
}

/// `PSYNC <replid> <lsn> <shard> <replica-id>`: starts the flow of `shard`'s
/// journal to a coreshard replica.
pub(crate) fn psync(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    let migration = args.len() == 8 && super::migrate::parse_range(&args).is_some();
    if args.len() != 5 && !migration {
        return conn.reply().error("ERR coreshard replicates only to coreshard replicas (PSYNC with flow arguments)");
    }
    if shard.shared.repl.is_replica.load(Relaxed) {
        return conn.reply().error("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    let target = std::str::from_utf8(args.get(3)).ok().and_then(|s| s.parse::<usize>().ok());
    let Some(target) = target.filter(|&t| t < shard.map.shards()) else {
        return conn.reply().error("ERR PSYNC shard out of range");
    };
    if conn.multi.is_some() || conn.subs.is_some() {
        return conn.reply().error("ERR PSYNC is not allowed here");
    }
    if target != shard.id {
        // The flow belongs to the shard whose journal it streams: move the socket there.
        conn.handoff = Some(Box::new(HandOff { to: target, args: args.iter_from(0).map(|a| a.to_vec()).collect() }));
        return;
    }
    start_flow(shard, idx, conn, &args);
}

fn start_flow(shard: &mut Shard, idx: u32, conn: &mut Conn, args: &Args) {
    if let Some(range) = super::migrate::parse_range(args) {
        return start_migration_flow(shard, idx, conn, range);
    }
    let replid = String::from_utf8_lossy(args.get(1)).into_owned();
    let lsn = std::str::from_utf8(args.get(2)).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(-1);
    let replica = String::from_utf8_lossy(args.get(4)).into_owned();
    let shared = shard.shared.clone();
    let (our_id, old_id) = {
        let st = shared.repl.lock();
        (st.replid.clone(), st.replid2.clone())
    };
    let second_end = shared.repl.second_offset[shard.id].load(Relaxed);
    if !shard.ks.journal.enabled() {
        shard.ks.journal.set_backlog_bytes(shard.config.repl_backlog_size as usize);
        shard.ks.set_journal_enabled(true);
        shared.repl.backlog_active.store(true, Relaxed);
    }
    let limit = flow_limit(shard).hard_bytes;
    let journal = &mut shard.ks.journal;
    // Our own history, or the one we continued after a promotion up to
    // where we left it (PSYNC2).
    let known = replid == our_id || (replid == old_id && lsn >= 0 && lsn as u64 <= second_end);
    // A tail larger than the replica output limit would get the flow
    // dropped again at once, and again after each retry: a full sync instead.
    let too_far = limit > 0 && lsn >= 0 && journal.end_lsn().saturating_sub(lsn as u64) > limit;
    let partial = known && lsn >= 0 && journal.contains(lsn as u64) && !too_far;
    let now_ns = crate::runtime::monotonic_ns();
    let mut flow = FlowOut {
        replica: replica.clone(),
        snapshot: !partial,
        lsn: 0,
        pending_since_ns: 0,
        last_sent_ns: 0,
        last_ack_ns: now_ns,
        over_soft_since_ns: 0,
        migration: None,
    };
    if partial {
        flow.lsn = lsn as u64;
        shared.repl.sync_partial_ok.fetch_add(1, Relaxed);
        tracing::info!(
            shard = shard.id,
            "replica {} asks for partial resynchronization from {lsn}: accepted, {} bytes of backlog to send",
            conn.addr,
            journal.end_lsn() - lsn as u64
        );
        conn.reply().simple(&format!("CONTINUE {our_id}"));
    } else {
        if replid != "?" {
            shared.repl.sync_partial_err.fetch_add(1, Relaxed);
            let why = if !known {
                format!("replication id mismatch (replica asked for '{replid}', my id is '{our_id}')")
            } else if too_far && journal.contains(lsn as u64) {
                format!(
                    "position {lsn} is {} bytes behind, over client-output-buffer-limit replica {limit}",
                    journal.end_lsn() - lsn as u64
                )
            } else {
                format!("position {lsn} is outside my backlog ({}..={})", journal.start_lsn(), journal.end_lsn())
            };
            tracing::info!(shard = shard.id, "partial resynchronization not accepted for {}: {why}", conn.addr);
        }
        shared.repl.sync_full.fetch_add(1, Relaxed);
        // The snapshot holds every write up to here; the journal has every
        // one after, starting with a SELECT so the replica knows the database.
        journal.force_select();
        flow.lsn = journal.end_lsn();
        // The journal from here starts with a fence that tells the replica
        // which transactions' shares on this shard the snapshot holds.
        let open = shard.tx.open_writers();
        let seq = shared.repl.tx_seq.load(std::sync::atomic::Ordering::SeqCst);
        shard.ks.journal.append_tx_fence(seq + 1, &open);
        let snap = Snapshot::new(&shard.ks);
        shard.repl.snapshots.push((idx, snap));
        tracing::info!(
            shard = shard.id,
            "full resync requested by replica {}: streaming a snapshot from {}",
            conn.addr,
            flow.lsn
        );
        conn.reply().simple(&format!("FULLRESYNC {our_id} {}", flow.lsn));
    }
    let ip = conn.addr.rsplit_once(':').map(|(ip, _)| ip.to_string()).unwrap_or_default();
    {
        let mut st = shared.repl.lock();
        let shards = shard.map.shards();
        let pos = match st.replicas.iter().position(|r| r.id == replica) {
            Some(p) => p,
            None => {
                st.replicas.push(ReplicaInfo {
                    id: replica,
                    ip,
                    port: conn.replica_port,
                    flows: vec![ReplicaFlow::default(); shards],
                });
                st.replicas.len() - 1
            }
        };
        let r = &mut st.replicas[pos];
        if conn.replica_port != 0 {
            r.port = conn.replica_port;
        }
        r.flows[shard.id] =
            ReplicaFlow { connected: true, online: partial, acked: flow.lsn, last_ack_ms: coreshard_engine::unix_ms() };
    }
    conn.flow = Some(Box::new(flow));
    shard.repl.flows.push(idx);
}

/// A migration flow (`PSYNC ? -1 <shard> <id> SLOTS <lo> <hi>`): a full
/// sync of the range's slots on this shard, then the filtered journal.
fn start_migration_flow(shard: &mut Shard, idx: u32, conn: &mut Conn, range: std::ops::Range<usize>) {
    let mut m = match super::migrate::start_source(shard, &range, &conn.addr) {
        Ok(m) => m,
        Err(e) => return conn.reply().error(&e),
    };
    if !shard.ks.journal.enabled() {
        shard.ks.journal.set_backlog_bytes(shard.config.repl_backlog_size as usize);
        shard.ks.set_journal_enabled(true);
        shard.shared.repl.backlog_active.store(true, Relaxed);
    }
    let journal = &mut shard.ks.journal;
    journal.force_select();
    let lsn = journal.end_lsn();
    m.sent = lsn;
    m.acked = lsn;
    let snap = Snapshot::of_slots(&shard.ks, range);
    shard.repl.snapshots.push((idx, snap));
    let our_id = shard.shared.repl.lock().replid.clone();
    conn.reply().simple(&format!("FULLRESYNC {our_id} {lsn}"));
    let now_ns = crate::runtime::monotonic_ns();
    conn.flow = Some(Box::new(FlowOut {
        replica: String::new(),
        snapshot: true,
        lsn,
        pending_since_ns: 0,
        last_sent_ns: 0,
        last_ack_ns: now_ns,
        over_soft_since_ns: 0,
        migration: Some(Box::new(m)),
    }));
    shard.repl.flows.push(idx);
}

/// Finishes moving connection `idx` to another shard once nothing of it is
/// in flight here; returns true when it moved.
pub(crate) fn try_hand_off(shard: &mut Shard, idx: u32) -> bool {
    let Some(conn) = shard.conns[idx as usize].as_ref() else { return false };
    if conn.handoff.is_none() || conn.closing != Closing::No {
        return false;
    }
    if conn.recv_inflight || conn.send_inflight || conn.holes_open > 0 || !conn.out.is_empty() {
        return false;
    }
    let Some(conn) = shard.release_conn(idx) else { return false };
    let Some(h) = conn.handoff else { return false };
    // What the replica sent after its PSYNC (it waits for the answer, so
    // normally nothing) goes along and runs there first.
    let input = conn.rbuf[conn.rpos..].to_vec();
    let msg = Control::Adopt {
        fd: conn.fd,
        id: conn.id,
        addr: conn.addr,
        laddr: conn.laddr,
        replica_port: conn.replica_port,
        args: h.args,
        input,
    };
    if shard.shared.control[h.to].send(msg).is_err() {
        // The shard is gone (shutdown): nobody owns the socket now but us.
        tracing::debug!("could not hand a replica flow to shard {}", h.to);
    }
    shard.shared.wake(h.to);
    true
}

/// A socket handed to this shard by another one: run its PSYNC here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adopt(
    shard: &mut Shard,
    fd: i32,
    id: u64,
    addr: String,
    laddr: String,
    port: u16,
    args: Vec<Vec<u8>>,
    input: Vec<u8>,
) {
    let mut conn = Conn::new(fd, id, addr, laddr, false, true, crate::runtime::monotonic_ns());
    conn.replica_port = port;
    conn.rbuf = input;
    let idx = shard.insert_conn(conn);
    let Some(mut conn) = shard.conns[idx as usize].take() else { return };
    let owned = coreshard_engine::OwnedArgs::from_parts(args.iter().map(|a| a.as_slice()));
    start_flow(shard, idx, &mut conn, &owned.view());
    shard.conns[idx as usize] = Some(conn);
    shard.process_input(idx, None);
}

/// `REPLCONF ACK <lsn>` on a flow connection.
pub(crate) fn on_ack(shard: &mut Shard, _idx: u32, conn: &mut Conn, lsn: &[u8]) {
    let Some(flow) = conn.flow.as_mut() else { return };
    let Some(lsn) = std::str::from_utf8(lsn).ok().and_then(|s| s.parse::<u64>().ok()) else { return };
    flow.last_ack_ns = crate::runtime::monotonic_ns();
    if flow.migration.is_some() {
        return super::migrate::on_ack(shard, flow, lsn);
    }
    let online = !flow.snapshot;
    {
        let mut st = shard.shared.repl.lock();
        if let Some(r) = st.replicas.iter_mut().find(|r| r.id == flow.replica)
            && let Some(f) = r.flows.get_mut(shard.id)
        {
            f.acked = f.acked.max(lsn);
            f.last_ack_ms = coreshard_engine::unix_ms();
            f.online = online;
        }
    }
    // WAITs on any shard may be satisfied now.
    for s in 0..shard.map.shards() {
        if shard.shared.repl.waiters[s].load(Relaxed) > 0 {
            // This shard checks its own at the end of the turn.
            if s != shard.id {
                shard.shared.wake(s);
            }
        }
    }
}

/// Streams to every flow of this shard what it may send now.
pub(crate) fn pump(shard: &mut Shard) {
    let now_ns = crate::runtime::monotonic_ns();
    let mut next_flush: Option<u64> = None;
    let flows = shard.repl.flows.clone();
    for idx in flows {
        let Some(mut conn) = shard.conns[idx as usize].take() else { continue };
        let drop_reason = pump_one(shard, idx, &mut conn, now_ns, &mut next_flush);
        shard.conns[idx as usize] = Some(conn);
        if let Some(why) = drop_reason {
            tracing::warn!(shard = shard.id, "dropping replica flow: {why}");
            if let Some(c) = shard.conns[idx as usize].as_mut() {
                c.closing = Closing::Now;
            }
            shard.begin_close(idx);
            continue;
        }
        shard.send_output(idx);
    }
    if let Some(due) = next_flush {
        arm_timer(shard, due.saturating_sub(now_ns));
    }
    update_floor(shard);
}

/// The output limit of one flow: `client-output-buffer-limit replica`
/// bounds a replica's whole stream in Redis, and here a replica (or a
/// migration target) takes one flow from each shard, so each flow gets
/// its shard's share of it.
fn flow_limit(shard: &Shard) -> crate::config::ObufLimit {
    let l = shard.config.obuf_replica;
    let shards = shard.map.shards() as u64;
    crate::config::ObufLimit {
        hard_bytes: l.hard_bytes.div_ceil(shards),
        soft_bytes: l.soft_bytes.div_ceil(shards),
        soft_secs: l.soft_secs,
    }
}

/// Why a flow must be dropped for falling behind, if it must: what it has
/// not sent (the journal since its position, and its socket's unsent
/// output once past the snapshot) is over the hard limit, or over the soft
/// one for its seconds. The journal keeps everything a flow has still to
/// send ([`update_floor`]), so these limits, not `repl-backlog-size`,
/// bound how far a flow may fall behind, in its snapshot or after: a
/// replica that does not read, or one whose full sync takes long under
/// writes, as Redis 7's replication buffer.
fn over_limit(shard: &Shard, flow: &mut FlowOut, unsent: usize, now_ns: u64, addr: &str) -> Option<String> {
    let journal = &shard.ks.journal;
    let who = if flow.migration.is_some() { "migration target" } else { "replica" };
    if flow.lsn < journal.start_lsn() {
        return Some(format!(
            "{who} {addr} fell out of the backlog (at {}, backlog from {})",
            flow.lsn,
            journal.start_lsn()
        ));
    }
    let output = if flow.snapshot { 0 } else { unsent as u64 };
    let behind = journal.end_lsn() - flow.lsn + output;
    let limit = flow_limit(shard);
    if limit.hard_bytes > 0 && behind > limit.hard_bytes {
        return Some(format!(
            "{who} {addr} is {behind} bytes behind, over client-output-buffer-limit replica {} ({} per shard)",
            shard.config.obuf_replica.hard_bytes, limit.hard_bytes
        ));
    }
    if limit.soft_bytes > 0 && behind > limit.soft_bytes {
        if flow.over_soft_since_ns == 0 {
            flow.over_soft_since_ns = now_ns;
        } else if now_ns - flow.over_soft_since_ns > limit.soft_secs.saturating_mul(1_000_000_000) {
            return Some(format!(
                "{who} {addr} has been {behind} bytes behind for over {} s, over client-output-buffer-limit replica soft {} ({} per shard)",
                limit.soft_secs, shard.config.obuf_replica.soft_bytes, limit.soft_bytes
            ));
        }
    } else {
        flow.over_soft_since_ns = 0;
    }
    None
}

/// Keeps in the journal what this shard's flows have still to send, past
/// the backlog if need be (journal.rs), and no more.
pub(crate) fn update_floor(shard: &mut Shard) {
    let floor =
        shard.repl.flows.iter().filter_map(|&i| shard.conns[i as usize].as_ref()?.flow.as_ref().map(|f| f.lsn)).min();
    shard.ks.journal.set_floor(floor);
}

fn pump_one(shard: &mut Shard, idx: u32, conn: &mut Conn, now_ns: u64, next_flush: &mut Option<u64>) -> Option<String> {
    if conn.closing != Closing::No {
        return None;
    }
    let unsent = conn.out.len() + conn.sending.len() - conn.send_off;
    let flow = conn.flow.as_mut()?;
    // A migration that switched only sends its last bytes (and stays out
    // of the aborts below).
    let finishing = flow.migration.as_ref().is_some_and(|m| m.finishing);
    if !finishing && let Some(why) = over_limit(shard, flow, unsent, now_ns, &conn.addr) {
        if let Some(m) = flow.migration.as_ref() {
            super::migrate::abort_source(shard, m, &why);
        }
        return Some(why);
    }
    if flow.migration.is_some() {
        return pump_migration(shard, idx, conn, unsent, now_ns, next_flush);
    }
    if unsent >= FLOW_UNSENT_BYTES_MAX {
        return None;
    }
    if flow.snapshot {
        let Some(pos) = shard.repl.snapshots.iter().position(|(i, _)| *i == idx) else {
            return Some("snapshot lost".into());
        };
        let done =
            fill_turn(&mut shard.repl.snapshots[pos].1, &shard.ks, shard.now_ms, SNAPSHOT_SLICE_BYTES, &mut conn.out);
        if !done {
            return None;
        }
        shard.repl.snapshots.swap_remove(pos);
        encode_command(&mut conn.out, [&b"REPLCONF"[..], b"snapshot-end"]);
        flow.snapshot = false;
        tracing::info!(
            shard = shard.id,
            "snapshot sent to replica {}; streaming the journal from {}",
            conn.addr,
            flow.lsn
        );
    }
    let journal = &shard.ks.journal;
    let pending = journal.end_lsn() - flow.lsn;
    if pending == 0 {
        flow.pending_since_ns = 0;
        return None;
    }
    if flow.pending_since_ns == 0 {
        flow.pending_since_ns = now_ns;
    }
    let delay_ns = shard.config.debug_repl_flow_delay_ms * 1_000_000;
    if delay_ns > 0 && shard.id % 2 == 1 && now_ns < flow.pending_since_ns + delay_ns {
        // Test-only: this shard's flow lags the even shards' (config.rs).
        let due = flow.pending_since_ns + delay_ns;
        *next_flush = Some(next_flush.map_or(due, |n| n.min(due)));
        return None;
    }
    let due = (flow.last_sent_ns + FLUSH_DELAY_NS).min(flow.pending_since_ns + FLUSH_DELAY_NS);
    if pending < FLUSH_BYTES && now_ns < due {
        *next_flush = Some(next_flush.map_or(due, |n| n.min(due)));
        return None;
    }
    match journal.copy_from(flow.lsn, JOURNAL_SLICE_BYTES, &mut conn.out) {
        Ok(n) => flow.lsn += n as u64,
        Err(_) => return Some(format!("replica {} fell out of the backlog", conn.addr)),
    }
    flow.last_sent_ns = now_ns;
    flow.pending_since_ns = if journal.end_lsn() > flow.lsn { now_ns } else { 0 };
    None
}

/// A migration flow's turn: the range's snapshot, then the filtered
/// journal, within the throttle; then its part in the cutover.
fn pump_migration(
    shard: &mut Shard,
    idx: u32,
    conn: &mut Conn,
    unsent: usize,
    now_ns: u64,
    next_flush: &mut Option<u64>,
) -> Option<String> {
    let mut out = std::mem::take(&mut conn.out);
    let why = pump_migration_into(shard, idx, conn, &mut out, unsent, now_ns, next_flush);
    conn.out = out;
    why
}

#[allow(clippy::too_many_arguments)]
fn pump_migration_into(
    shard: &mut Shard,
    idx: u32,
    conn: &mut Conn,
    out: &mut Vec<u8>,
    unsent: usize,
    now_ns: u64,
    next_flush: &mut Option<u64>,
) -> Option<String> {
    let flow = conn.flow.as_mut()?;
    let m = flow.migration.as_ref()?;
    if m.finishing {
        if unsent == 0 {
            return Some("migration finished".into());
        }
        return None;
    }
    // The throttle: bytes per second over the whole node, shared by its
    // flows. Not while the cutover holds the range's writes: what is left
    // then is what the admin let through (its lag bound), and a flow that
    // spent its budget would otherwise wait up to a slice's worth of
    // seconds for the next one, past the hold's bound, though every other
    // flow had caught up.
    let held = shard.shared.migration.paused.load(Relaxed);
    let rate = if held { 0 } else { shard.config.cluster_migration_bytes_per_sec };
    if rate > 0 && unsent < FLOW_UNSENT_BYTES_MAX {
        let flows = shard.map.shards() as u64;
        let per_flow = (rate / flows).max(1);
        let allowed = per_flow.saturating_mul(now_ns.saturating_sub(m.start_ns)) / 1_000_000_000 + 16 * 1024;
        if m.bytes >= allowed {
            let due = now_ns + 1_000_000;
            *next_flush = Some(next_flush.map_or(due, |n| n.min(due)));
            let mut poll = None;
            let done = super::migrate::pump_cutover(shard, flow, out, &mut poll);
            // Closed once its last bytes (the new configuration) went out.
            return (done && unsent == 0 && out.is_empty()).then(|| "migration ended".to_string());
        }
    }
    if unsent < FLOW_UNSENT_BYTES_MAX {
        if flow.snapshot {
            let Some(pos) = shard.repl.snapshots.iter().position(|(i, _)| *i == idx) else {
                return Some("snapshot lost".into());
            };
            let before = out.len();
            let slice =
                if rate > 0 { SNAPSHOT_SLICE_BYTES.min(rate as usize / 100 + 1024) } else { SNAPSHOT_SLICE_BYTES };
            let done = fill_turn(&mut shard.repl.snapshots[pos].1, &shard.ks, shard.now_ms, slice, out);
            let added = (out.len() - before) as u64;
            if let Some(m) = flow.migration.as_mut() {
                m.bytes += added;
            }
            shard.shared.migration.bytes.fetch_add(added, Relaxed);
            if done {
                let (_, snap) = shard.repl.snapshots.swap_remove(pos);
                encode_command(out, [&b"REPLCONF"[..], b"snapshot-end"]);
                flow.snapshot = false;
                super::migrate::snapshot_sent(shard, snap.keys_sent());
            } else {
                *next_flush = Some(next_flush.map_or(now_ns, |n| n.min(now_ns)));
            }
        }
        let delay_ns = shard.config.debug_repl_flow_delay_ms * 1_000_000;
        let held_back = delay_ns > 0 && shard.id % 2 == 1 && now_ns < flow.last_sent_ns + delay_ns;
        if held_back {
            // Test-only: this shard's journal reaches the target in batches
            // this far apart, as for replicas (config.rs).
            let due = flow.last_sent_ns + delay_ns;
            *next_flush = Some(next_flush.map_or(due, |n| n.min(due)));
        } else if !flow.snapshot {
            loop {
                if super::migrate::pump_journal(shard, flow, out).is_err() {
                    let why = "the target fell out of the journal".to_string();
                    if let Some(m) = flow.migration.as_ref() {
                        super::migrate::abort_source(shard, m, &why);
                    }
                    return Some(why);
                }
                // Test-only: a flow held back sends all it has once its
                // delay is up, so a steady writer cannot outrun it.
                if delay_ns == 0
                    || flow.lsn >= shard.ks.journal.end_lsn()
                    || unsent + out.len() >= FLOW_UNSENT_BYTES_MAX
                {
                    break;
                }
            }
            flow.last_sent_ns = now_ns;
        }
    }
    let mut poll = None;
    let done = super::migrate::pump_cutover(shard, flow, out, &mut poll);
    if let Some(due) = poll {
        *next_flush = Some(next_flush.map_or(due, |n| n.min(due)));
    }
    if done && unsent == 0 && out.is_empty() {
        return Some("migration ended".into());
    }
    None
}

/// A connection closes: if it was a flow, forget it.
pub(crate) fn on_close(shard: &mut Shard, idx: u32) {
    let Some(conn) = shard.conns[idx as usize].as_mut() else { return };
    let Some(flow) = conn.flow.take() else { return };
    shard.repl.flows.retain(|&i| i != idx);
    shard.repl.snapshots.retain(|(i, _)| *i != idx);
    update_floor(shard);
    let Some(conn) = shard.conns[idx as usize].as_mut() else { return };
    if let Some(m) = flow.migration.as_ref() {
        tracing::info!(shard = shard.id, "migration flow to {} closed", conn.addr);
        return super::migrate::on_source_close(shard, m);
    }
    tracing::info!(shard = shard.id, "connection with replica {} lost", conn.addr);
    let mut st = shard.shared.repl.lock();
    if let Some(pos) = st.replicas.iter().position(|r| r.id == flow.replica) {
        if let Some(f) = st.replicas[pos].flows.get_mut(shard.id) {
            f.connected = false;
            f.online = false;
        }
        if st.replicas[pos].flows.iter().all(|f| !f.connected) {
            st.replicas.remove(pos);
        }
    }
}

/// The tick: PING into the journal every repl-ping-replica-period while
/// replicas follow (so they see the link alive), drop flows whose replica
/// stopped acking for repl-timeout.
pub(crate) fn on_tick(shard: &mut Shard) {
    if shard.repl.flows.is_empty() {
        return;
    }
    let now = crate::runtime::monotonic_ns();
    let period = shard.config.repl_ping_replica_period.max(1) * 1_000_000_000;
    if now - shard.repl.last_ping_ns >= period {
        shard.repl.last_ping_ns = now;
        shard.ks.journal.append_ping();
    }
    let timeout = shard.config.repl_timeout.max(1) * 1_000_000_000;
    let stale: Vec<u32> = shard
        .repl
        .flows
        .iter()
        .copied()
        .filter(|&i| {
            shard.conns[i as usize]
                .as_ref()
                .and_then(|c| c.flow.as_ref())
                .is_some_and(|f| !f.snapshot && now.saturating_sub(f.last_ack_ns) > timeout)
        })
        .collect();
    for idx in stale {
        if let Some(c) = shard.conns[idx as usize].as_mut() {
            tracing::warn!(shard = shard.id, "disconnecting timedout replica (streaming sync): {}", c.addr);
            c.closing = Closing::Now;
        }
        shard.begin_close(idx);
    }
}

/// Before a command runs on this shard's keyspace while snapshots stream:
/// the slots a write may change are saved first, as they were when each
/// snapshot began (a write over every key saves them all). `args` is the
/// command or its share for this shard (name first).
pub(crate) fn before_command(shard: &mut Shard, args: &coreshard_engine::Args) {
    use coreshard_engine::cmd::{Kind, flags};
    if shard.repl.snapshots.is_empty() {
        return;
    }
    let Some(spec) = shard.table.lookup(args.get(0)) else { return };
    if !spec.has(flags::WRITE) {
        return;
    }
    if matches!(spec.kind, Kind::AllShards { .. }) {
        return before_write_all(shard);
    }
    match crate::tx::command_keys(spec, args) {
        Some(keys) => {
            for i in keys {
                if let Some(key) = args.try_get(i) {
                    before_write(shard, key);
                }
            }
        }
        None => before_write_all(shard),
    }
}

/// Before a write changes `key` on this shard: snapshots still to send its
/// slot save it first (the key alone, or its whole slot when that is small).
pub(crate) fn before_write(shard: &mut Shard, key: &[u8]) {
    if shard.repl.snapshots.is_empty() {
        return;
    }
    let slot = coreshard_engine::slot::key_slot(key) as usize;
    let (ks, now) = (&shard.ks, shard.now_ms);
    for (_, s) in shard.repl.snapshots.iter_mut() {
        s.before_write(ks, slot, key, now);
    }
}

/// Before a write over every key (FLUSHDB, SWAPDB).
pub(crate) fn before_write_all(shard: &mut Shard) {
    let (ks, now) = (&shard.ks, shard.now_ms);
    for (_, s) in shard.repl.snapshots.iter_mut() {
        s.before_write_all(ks, now);
    }
}
