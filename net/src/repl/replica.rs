//! The replica's side of a flow: a connection to one primary shard whose
//! stream this shard executes as its primary's client.
//!
//! The stream is RESP commands: with a full sync, the snapshot's RESTOREs up
//! to `REPLCONF snapshot-end`, then the journal. Journal bytes count towards
//! the flow's position; after each batch applied the replica answers
//! `REPLCONF ACK <position>` (a batch's commands have all run by then: the
//! ack goes out only once no reply of them is outstanding).

use super::LinkEvent;
use crate::conn::{Closing, Conn};
use crate::shard::Shard;
use coreshard_engine::journal::encode_command;
use std::sync::atomic::Ordering::Relaxed;

/// Longest a replica goes without acking while its link is up.
const ACK_PERIOD_NS: u64 = 1_000_000_000;

/// What a connection to a primary shard is doing.
pub(crate) struct MasterIn {
    /// The primary shard whose journal this is.
    pub primary_shard: usize,
    /// The link it belongs to (older ones are dropped).
    pub epoch: u64,
    /// Receiving the snapshot: bytes do not count until `snapshot-end`.
    pub snapshot: bool,
    /// Journal position applied (once past the snapshot).
    pub lsn: u64,
    /// Position of the snapshot's end (from +FULLRESYNC).
    pub snapshot_lsn: u64,
    /// The position last acked.
    pub acked: u64,
    /// Monotonic ns of the last ack sent.
    pub last_ack_ns: u64,
    /// An ack was asked for (REPLCONF GETACK).
    pub ack_now: bool,
    /// The stream is copied into this shard's journal (same shard count as
    /// the primary: this shard has exactly that primary shard's slots).
    pub mirror: bool,
    /// The position before the command being run.
    pub before: u64,
    /// Inside the primary's MULTI ... EXEC: the position before its MULTI.
    /// Nothing of it is applied until EXEC, so acks and a resync start there.
    pub multi_start: Option<u64>,
    /// The connection is closing and the link thread was told.
    pub closed: bool,
    /// The primary's multi-shard transactions this connection is applying
    /// (repl/txapply.rs).
    pub applying: Vec<u64>,
    /// A slot migration's stream from the source (repl/migrate.rs), not a
    /// primary's: it touches none of the replication link's state.
    pub migration: bool,
    /// Which migration (repl/migrate.rs `target_id`).
    pub migration_id: u64,
    /// The loop turn this stream last ran in (shard.rs `run_stream`).
    pub turn: u64,
    /// Monotonic ns at which its share of that turn ends.
    pub turn_deadline_ns: u64,
}

impl MasterIn {
    /// The position up to which the stream is consumed: applied, or kept
    /// aside as a share of a transaction (a resync continues from here).
    pub(crate) fn applied(&self) -> u64 {
        self.multi_start.unwrap_or(self.lsn)
    }
}

/// A connected, handshaken socket to primary shard `primary_shard`, handed
/// over by the link thread: start applying its stream here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adopt(
    shard: &mut Shard,
    fd: i32,
    addr: String,
    primary_shard: usize,
    primary_shards: usize,
    epoch: u64,
    full: bool,
    lsn: u64,
) {
    let current = shard.shared.repl.lock().link_epoch;
    if epoch != current {
        // REPLICAOF changed while the link thread connected.
        // SAFETY: the link thread gave this fd to us; nobody else closes it.
        unsafe { libc::close(fd) };
        return;
    }
    let id = shard.shared.next_client_id.fetch_add(1, Relaxed);
    // With the primary's shard count this shard holds exactly that primary
    // shard's slots, and keeps a byte-exact copy of its journal, so that if
    // this node is promoted its siblings can continue from it.
    let mirror = primary_shards == shard.map.shards() && primary_shard == shard.id;
    if mirror {
        let backlog = shard.config.repl_backlog_size as usize;
        shard.ks.set_journal_mirroring(true);
        let j = &mut shard.ks.journal;
        j.set_backlog_bytes(backlog);
        // A copy that ran past `lsn` (into a MULTI cut short) drops that tail.
        if j.enabled() && j.mirroring() && j.end_lsn() > lsn && j.start_lsn() <= lsn {
            j.truncate_to(lsn);
        }
        let continues = j.enabled() && j.end_lsn() == lsn;
        if !full && !continues {
            j.restart_at(lsn);
        }
        shard.ks.set_journal_enabled(true);
        shard.shared.repl.backlog_active.store(true, Relaxed);
    }
    let mut conn = Conn::new(fd, id, addr, String::new(), false, true, crate::runtime::monotonic_ns());
    conn.master = Some(Box::new(MasterIn {
        primary_shard,
        epoch,
        snapshot: full,
        lsn: if full { 0 } else { lsn },
        snapshot_lsn: lsn,
        acked: if full { 0 } else { lsn },
        last_ack_ns: 0,
        ack_now: false,
        mirror,
        before: lsn,
        multi_start: None,
        closed: false,
        applying: Vec::new(),
        migration: false,
        migration_id: 0,
        turn: 0,
        turn_deadline_ns: 0,
    }));
    if full {
        super::txapply::reset_flow(&shard.shared, primary_shard);
        // The snapshot replaces whatever this node holds in that shard's
        // slots; the flush runs first, through the same path as the stream.
        let (lo, hi) = ("0", coreshard_engine::slot::SLOTS.to_string());
        let (k, m) = (primary_shard.to_string(), primary_shards.to_string());
        let flush = [&b"REPLCONF"[..], b"flush-slots", lo.as_bytes(), hi.as_bytes(), k.as_bytes(), m.as_bytes()];
        encode_command(&mut conn.rbuf, flush);
    }
    let idx = shard.insert_conn(conn);
    shard.process_input(idx, None);
    shard.arm_recv_pub(idx);
}

/// The migration link connected the flow of source shard `source` for the
/// slots of `range` it owns: drop what this node held there (an earlier
/// attempt's, or keys of slots it gave away and had not finished
/// deleting), then apply the snapshot and the filtered journal as the
/// source's client. Each shard journals what it dropped (repl/flush.rs),
/// so this node's replicas drop it too, before what the flow brings. The
/// epoch `u64::MAX` matches no replication link.
pub(crate) fn adopt_migration(
    shard: &mut Shard,
    fd: i32,
    addr: String,
    source: coreshard_engine::slot::ShardSlots,
    lsn: u64,
    range: std::ops::Range<usize>,
    migration_id: u64,
) {
    let source_shard = source.shard();
    if super::migrate::stale_target_flow(&shard.shared, migration_id) {
        // SAFETY: the link thread gave this fd to us; nobody else closes it.
        unsafe { libc::close(fd) };
        return;
    }
    let id = shard.shared.next_client_id.fetch_add(1, Relaxed);
    let mut conn = Conn::new(fd, id, addr, String::new(), false, true, crate::runtime::monotonic_ns());
    conn.master = Some(Box::new(MasterIn {
        primary_shard: source_shard,
        epoch: u64::MAX,
        snapshot: true,
        lsn: 0,
        snapshot_lsn: lsn,
        acked: 0,
        last_ack_ns: 0,
        ack_now: false,
        mirror: false,
        before: lsn,
        multi_start: None,
        closed: false,
        applying: Vec::new(),
        migration: true,
        migration_id,
        turn: 0,
        turn_deadline_ns: 0,
    }));
    let (lo, hi) = (range.start.to_string(), range.end.to_string());
    let (k, m) = (source.shard().to_string(), source.shards().to_string());
    let flush = [&b"REPLCONF"[..], b"flush-slots", lo.as_bytes(), hi.as_bytes(), k.as_bytes(), m.as_bytes()];
    encode_command(&mut conn.rbuf, flush);
    let idx = shard.insert_conn(conn);
    shard.process_input(idx, None);
    shard.arm_recv_pub(idx);
}

/// Counts a command of the stream (its bytes `raw`) towards the position,
/// and copies it into a mirroring journal.
#[inline]
pub(crate) fn count(journal: &mut coreshard_engine::journal::Journal, conn: &mut Conn, raw: &[u8]) {
    if let Some(m) = conn.master.as_mut()
        && !m.snapshot
    {
        m.before = m.lsn;
        m.lsn += raw.len() as u64;
        if m.mirror {
            journal.append_raw(raw);
            debug_assert_eq!(journal.end_lsn(), m.lsn, "a mirror holds the primary's positions");
        }
    }
}

/// After a command of the stream ran: note whether a MULTI is open.
#[inline]
pub(crate) fn after_command(conn: &mut Conn) {
    let open = conn.multi.is_some();
    if let Some(m) = conn.master.as_mut() {
        match (open, m.multi_start) {
            (true, None) => m.multi_start = Some(m.before),
            (false, Some(_)) => m.multi_start = None,
            _ => {}
        }
    }
}

/// `REPLCONF snapshot-end` from the primary: the journal starts here.
pub(crate) fn on_snapshot_end(shard: &mut Shard, conn: &mut Conn) {
    let Some(m) = conn.master.as_mut() else { return };
    if !m.snapshot {
        return;
    }
    m.snapshot = false;
    m.lsn = m.snapshot_lsn;
    m.ack_now = true;
    if m.mirror {
        shard.ks.journal.restart_at(m.lsn);
    }
    if m.migration {
        tracing::info!(shard = shard.id, "migration: snapshot of source shard {} loaded", m.primary_shard);
        return;
    }
    tracing::info!(shard = shard.id, "MASTER <-> REPLICA sync: snapshot of primary shard {} loaded", m.primary_shard);
    let mut st = shard.shared.repl.lock();
    if let Some(f) = st.flows.get_mut(m.primary_shard) {
        f.syncing = false;
        f.synced = true;
        f.lsn = m.lsn;
    }
}

/// `REPLCONF GETACK`: ack with the next batch.
pub(crate) fn on_getack(conn: &mut Conn) {
    if let Some(m) = conn.master.as_mut() {
        m.ack_now = true;
    }
}

/// Before a master connection's output is sent: the replies of the applied
/// commands are dropped (the primary wants none), and an ack goes instead
/// when the position moved. Called only when no reply is outstanding.
pub(crate) fn take_output(shared: &crate::shared::Shared, conn: &mut Conn) {
    conn.out.clear();
    let Some(m) = conn.master.as_mut() else { return };
    let now = crate::runtime::monotonic_ns();
    let consumed = m.applied();
    // Not past a share of a transaction still to be applied.
    let applied = m.ack_position_in(shared);
    // A transaction still taking its locks has not run yet.
    if m.snapshot || conn.tx_wait || !(applied > m.acked || m.ack_now || now - m.last_ack_ns >= ACK_PERIOD_NS) {
        return;
    }
    m.acked = m.acked.max(applied);
    m.ack_now = false;
    m.last_ack_ns = now;
    let lsn = m.acked.to_string();
    encode_command(&mut conn.out, [&b"REPLCONF"[..], b"ACK", lsn.as_bytes()]);
    let mut st = shared.repl.lock();
    if st.link_epoch == m.epoch
        && let Some(f) = st.flows.get_mut(m.primary_shard)
    {
        f.lsn = consumed;
        f.last_io_ms = coreshard_engine::unix_ms();
    }
}

/// The tick: ack at least every second (the primary times out silent
/// replicas), and give up on a primary silent for repl-timeout.
pub(crate) fn on_tick(shard: &mut Shard) {
    let now = crate::runtime::monotonic_ns();
    let timeout = shard.config.repl_timeout.max(1) * 1_000_000_000;
    for idx in 0..shard.conns.len() as u32 {
        let Some(c) = shard.conns[idx as usize].as_mut() else { continue };
        if c.master.is_none() || c.closing != Closing::No {
            continue;
        }
        if now.saturating_sub(c.last_ns) > timeout {
            tracing::warn!(shard = shard.id, "MASTER timeout: no data nor PING received from {}", c.addr);
            c.closing = Closing::Now;
            shard.begin_close(idx);
            continue;
        }
        shard.send_output(idx);
    }
}

/// A connection closes: if it came from the primary, the link thread
/// reconnects that flow.
pub(crate) fn on_close(shard: &mut Shard, idx: u32) {
    let Some(conn) = shard.conns[idx as usize].as_mut() else { return };
    // The connection stays the primary's client until it is released: a
    // transaction of the stream still waiting for its locks runs its
    // commands as the primary's (a plain client would get READONLY).
    let Some(m) = conn.master.as_mut() else { return };
    if m.closed {
        return;
    }
    m.closed = true;
    if m.migration {
        tracing::info!(shard = shard.id, "migration flow from source shard {} closed ({})", m.primary_shard, conn.addr);
        return super::migrate::on_target_close(shard);
    }
    tracing::info!(shard = shard.id, "connection with primary shard {} lost ({})", m.primary_shard, conn.addr);
    {
        let mut st = shard.shared.repl.lock();
        if st.link_epoch == m.epoch {
            if st.flows.iter().all(|f| f.connected) {
                st.link_down_since_ms = coreshard_engine::unix_ms();
            }
            if let Some(f) = st.flows.get_mut(m.primary_shard) {
                f.connected = false;
                f.syncing = false;
                // A snapshot cut short leaves the slots half loaded: the next
                // attempt must be a full sync again.
                if m.snapshot {
                    f.synced = false;
                } else {
                    f.lsn = m.applied();
                }
            }
        }
    }
    let _ = shard.shared.repl.events.send(LinkEvent::FlowDown);
}

/// Closes every connection from the primary (this replica diverged; its
/// flows were marked to sync in full).
pub(crate) fn close_masters(shard: &mut Shard) {
    for idx in 0..shard.conns.len() as u32 {
        if let Some(c) = shard.conns[idx as usize].as_mut()
            && c.master.is_some()
        {
            c.closing = Closing::Now;
            shard.begin_close(idx);
        }
    }
}

/// Closes the master connections of links older than `epoch` (REPLICAOF changed).
pub(crate) fn drop_older(shard: &mut Shard, epoch: u64, promoted: bool) {
    for idx in 0..shard.conns.len() as u32 {
        let old = shard.conns[idx as usize].as_ref().and_then(|c| c.master.as_ref()).is_some_and(|m| m.epoch < epoch);
        if old {
            if let Some(c) = shard.conns[idx as usize].as_mut() {
                c.closing = Closing::Now;
            }
            shard.begin_close(idx);
        }
    }
    use coreshard_engine::db::ExpiryMode;
    if promoted {
        // The mirror of the old primary's journal becomes this shard's own;
        // that history is valid up to here for the other replicas (PSYNC2).
        let j = &mut shard.ks.journal;
        let end = if j.enabled() && j.mirroring() { j.end_lsn() } else { u64::MAX };
        shard.shared.repl.second_offset[shard.id].store(end, Relaxed);
        shard.ks.set_journal_mirroring(false);
        // Transactions whose shares had not all arrived are dropped here,
        // and by the replicas that continue from this history.
        let dropped = super::txapply::drop_incomplete(&shard.shared, epoch);
        shard.ks.journal.append_tx_abort(&dropped);
        shard.ks.set_expiry_mode(ExpiryMode::Delete);
        return;
    }
    // Flows of this shard to its own replicas end: they resync from the new primary's data.
    for idx in shard.repl.flows.clone() {
        if let Some(c) = shard.conns[idx as usize].as_mut() {
            c.closing = Closing::Now;
        }
        shard.begin_close(idx);
    }
    shard.ks.set_expiry_mode(ExpiryMode::Hide);
    shard.shared.repl.second_offset[shard.id].store(u64::MAX, Relaxed);
}
