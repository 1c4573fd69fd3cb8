//! A replica's side of multi-shard transactions: each primary shard's share
//! arrives in that shard's flow; none is applied until every share is in,
//! then all of them run as one transaction under the replica's own key
//! locks, so no read and no promotion ever sees half of one.
//!
//! ```text
//!   flow k: ... tx-cmd T ... x ... tx-end T ...   ──┐ shares kept aside (Registry)
//!   flow j: ... y ... tx-cmd T ... tx-end T ...   ──┴─▶ the last end completes T:
//!                                                      that flow runs EXEC of every share
//! ```
//!
//! A flow does not stop at a share to wait for the others: two transactions
//! that share no key may be journaled in opposite orders on two primary
//! shards, and flows that stopped would wait for each other forever. Each
//! flow keeps a window of its shares not yet applied; a later entry of the
//! flow (a later transaction's share too) runs at once unless it touches a
//! key of one of them, and then the flow waits until that transaction is
//! applied. Entries the primary ordered (they share a key) keep their
//! order; the others commute.
//!
//! Acks stop before the oldest share of a flow not yet applied, so WAIT
//! counts a replica only once the transaction is applied. A flow that
//! reconnects continues after what it consumed: the shares it holds are
//! still here. A full sync of a flow drops its shares (the snapshot holds
//! them) and its ends; the primary starts the journal after the snapshot
//! with a fence (`tx-fence <seq> <open txids>`) that says which
//! transactions' shares the snapshot holds: those that took all their locks
//! before `seq` and do not hold locks on that shard now. A promoted replica
//! drops the transactions it could not complete and tells the replicas that
//! follow it with `tx-abort`.

use super::replica::MasterIn;
use crate::conn::Conn;
use crate::shard::Shard;
use crate::shared::Shared;
use crate::tx::Footprint;
use coreshard_engine::{Args, OwnedArgs};
use hashbrown::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// Multi-shard transactions a replica remembers having applied, most
/// recent last: a `tx-abort` naming one of them means this replica holds a
/// write its (new) primary dropped.
const APPLIED_TXIDS_KEPT: usize = 16 * 1024;

/// Bytes of shares a replica keeps aside at most. A flow whose share would
/// pass it (another flow is far behind, or gone) is dropped and full-syncs,
/// which frees its shares: the snapshot holds them.
pub(crate) const TX_SHARES_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The shares of multi-shard transactions a replica holds, not yet applied.
#[derive(Default)]
pub(crate) struct Registry {
    txs: HashMap<u64, Pending>,
    /// Per primary shard: its flow's shares not yet applied.
    windows: Vec<Window>,
    /// Per primary shard: the fence of its last full sync.
    fences: Vec<Option<Fence>>,
    /// The transactions dropped by the last promotion, with its link epoch.
    dropped: (u64, Vec<u64>),
    /// Bytes of entries in `txs` (bounded by [`TX_SHARES_BYTES_MAX`]).
    bytes: usize,
    /// The last [`APPLIED_TXIDS_KEPT`] transactions applied.
    applied: std::collections::VecDeque<u64>,
}

/// One transaction's shares received so far.
#[derive(Default)]
struct Pending {
    /// (primary shard, database, entries) in arrival order.
    shares: Vec<(usize, u16, Vec<u8>)>,
    /// Primary shards whose share ended.
    ended: Vec<u16>,
    /// From its ends: its seq and the shards that log a share.
    end: Option<(u64, Vec<u16>)>,
}

#[derive(Default)]
struct Window {
    parts: Vec<Part>,
    /// The flow's connection waiting for a part to be applied: (shard, slot, id).
    paused: Option<(usize, u32, u64)>,
}

/// A flow's share of a transaction not yet applied.
struct Part {
    txid: u64,
    /// The flow's position before the share's first entry (acks stop here).
    start: u64,
    /// The keys it writes.
    footprint: Footprint,
}

struct Fence {
    seq: u64,
    open: Vec<u64>,
}

impl Registry {
    fn window(&mut self, flow: usize) -> &mut Window {
        if self.windows.len() <= flow {
            self.windows.resize_with(flow + 1, Window::default);
        }
        &mut self.windows[flow]
    }

    /// True when every writer of `txid` ended its share, or a fence says
    /// the snapshot holds it.
    fn complete(&self, txid: u64) -> bool {
        let Some(p) = self.txs.get(&txid) else { return false };
        let Some((seq, writers)) = &p.end else { return false };
        writers.iter().all(|w| {
            p.ended.contains(w)
                || self
                    .fences
                    .get(*w as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|f| *seq < f.seq && !f.open.contains(&txid))
        })
    }

    /// Takes transaction `txid` out, with the bytes it held.
    fn remove(&mut self, txid: u64) -> Option<Pending> {
        let p = self.txs.remove(&txid)?;
        self.bytes -= p.shares.iter().map(|s| s.2.len()).sum::<usize>();
        Some(p)
    }

    /// Parts kept aside in all windows.
    fn open_parts(&self) -> u32 {
        self.windows.iter().map(|w| w.parts.len() as u32).sum()
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    shared.repl.txs.lock().unwrap_or_else(|e| e.into_inner())
}

fn registry(shard: &Shard) -> std::sync::MutexGuard<'_, Registry> {
    lock(&shard.shared)
}

fn publish_open(shared: &Shared, reg: &Registry) {
    shared.repl.tx_open.store(reg.open_parts(), Relaxed);
}

/// `REPLCONF tx-cmd|tx-end|tx-fence|tx-abort ...` from the primary's stream.
pub(crate) fn on_mark(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    let Some(m) = conn.master.as_ref() else { return };
    let (flow, before) = (m.primary_shard, m.before);
    let num = |i: usize| args.try_get(i).and_then(coreshard_engine::num::parse_u64);
    match args.get(1).to_ascii_lowercase().as_slice() {
        b"tx-cmd" => {
            let Some((txid, db, footprint)) = share_footprint(shard, &args) else { return malformed(conn, "tx-cmd") };
            let entries = args.get(4);
            let mut reg = registry(shard);
            if reg.bytes + entries.len() > TX_SHARES_BYTES_MAX {
                drop(reg);
                return overflow(shard, conn, flow);
            }
            reg.bytes += entries.len();
            reg.txs.entry(txid).or_default().shares.push((flow, db, entries.to_vec()));
            let w = reg.window(flow);
            match w.parts.iter_mut().find(|p| p.txid == txid) {
                Some(p) => p.footprint.merge(footprint),
                None => w.parts.push(Part { txid, start: before, footprint }),
            }
            publish_open(&shard.shared, &reg);
        }
        b"tx-end" => {
            let (Some(txid), Some(seq)) = (num(2), num(3)) else { return malformed(conn, "tx-end") };
            let writers: Option<Vec<u16>> =
                (4..args.len()).map(|i| num(i).and_then(|w| u16::try_from(w).ok())).collect();
            let Some(writers) = writers else { return malformed(conn, "tx-end") };
            let ready = {
                let mut reg = registry(shard);
                let p = reg.txs.entry(txid).or_default();
                if !p.ended.contains(&(flow as u16)) {
                    p.ended.push(flow as u16);
                }
                p.end = Some((seq, writers));
                if !shard.config.debug_replica_tx_atomic {
                    // Test-only: this share runs now, the others when theirs end.
                    let share = take_flow_share(&mut reg, txid, flow);
                    publish_open(&shard.shared, &reg);
                    drop(reg);
                    return apply(shard, idx, conn, vec![txid], share);
                }
                if reg.complete(txid) { vec![txid] } else { Vec::new() }
            };
            apply_ready(shard, idx, conn, ready);
        }
        b"tx-fence" => {
            let Some(seq) = num(2) else { return malformed(conn, "tx-fence") };
            let open: Option<Vec<u64>> = (3..args.len()).map(num).collect();
            let Some(open) = open else { return malformed(conn, "tx-fence") };
            let ready = {
                let mut reg = registry(shard);
                if reg.fences.len() <= flow {
                    reg.fences.resize_with(flow + 1, || None);
                }
                reg.fences[flow] = Some(Fence { seq, open });
                let mut ready: Vec<u64> = reg.txs.keys().copied().filter(|t| reg.complete(*t)).collect();
                ready.sort_unstable();
                ready
            };
            apply_ready(shard, idx, conn, ready);
        }
        b"tx-abort" => {
            let txids: Option<Vec<u64>> = (2..args.len()).map(num).collect();
            let Some(txids) = txids else { return malformed(conn, "tx-abort") };
            let mut reg = registry(shard);
            for txid in &txids {
                reg.remove(*txid);
            }
            let woken = forget_parts(&mut reg, &txids);
            publish_open(&shard.shared, &reg);
            let diverged = txids.iter().find(|t| reg.applied.contains(t)).copied();
            drop(reg);
            wake(shard, woken);
            if let Some(txid) = diverged {
                resync_all(shard, conn, txid);
            }
        }
        _ => {}
    }
}

/// `REPLCONF tx-cmd <txid> <db> <entries>`: its transaction, database and the keys
/// its entries touch; None for any other mark, or a malformed one.
fn share_footprint(shard: &Shard, args: &Args) -> Option<(u64, u16, Footprint)> {
    if args.len() != 5 || !args.get(1).eq_ignore_ascii_case(b"tx-cmd") {
        return None;
    }
    let num = |i: usize| args.try_get(i).and_then(coreshard_engine::num::parse_u64);
    let (txid, db) = (num(2)?, num(3)?);
    if db as usize >= shard.ks.databases() {
        return None;
    }
    let mut footprint = Footprint::default();
    for cmd in &split_entries(args.get(4))? {
        if let Some(f) = shard.command_footprint(db as u16, &cmd.view()) {
            footprint.merge(f);
        }
    }
    Some((txid, db as u16, footprint))
}

/// The shares kept aside reached their bound: this flow is dropped and
/// full-syncs (its shares go; the snapshot holds them).
fn overflow(shard: &mut Shard, conn: &mut Conn, flow: usize) {
    tracing::warn!(
        shard = shard.id,
        "multi-shard transaction shares kept aside passed {TX_SHARES_BYTES_MAX} bytes (a flow of the primary is far behind); primary shard {flow}'s flow resyncs in full"
    );
    if let Some(f) = shard.shared.repl.lock().flows.get_mut(flow) {
        f.synced = false;
    }
    conn.closing = crate::conn::Closing::Now;
}

/// The primary dropped transaction `txid` (a promoted replica that never
/// got all of it), which this replica applied: it holds a write its primary
/// does not, on every flow the transaction touched. Every flow syncs in full.
fn resync_all(shard: &mut Shard, conn: &mut Conn, txid: u64) {
    tracing::warn!(
        shard = shard.id,
        "the primary dropped transaction {txid}, which this replica applied; every replication flow resyncs in full"
    );
    registry(shard).applied.clear();
    {
        let mut st = shard.shared.repl.lock();
        for f in &mut st.flows {
            f.synced = false;
        }
    }
    conn.closing = crate::conn::Closing::Now;
    for s in 0..shard.shared.control.len() {
        if shard.shared.control[s].send(crate::shared::Control::CloseMasterLinks).is_ok() {
            shard.shared.wake(s);
        }
    }
}

fn malformed(conn: &mut Conn, what: &str) {
    tracing::warn!(client = conn.id, "malformed REPLCONF {what} in the primary's stream; ignored");
}

/// Takes the transactions `ready` out of the registry and runs them.
fn apply_ready(shard: &mut Shard, idx: u32, conn: &mut Conn, ready: Vec<u64>) {
    if ready.is_empty() {
        return;
    }
    let mut shares = Vec::new();
    {
        let mut reg = registry(shard);
        for txid in &ready {
            if let Some(p) = reg.remove(*txid) {
                shares.extend(p.shares);
            }
        }
    }
    apply(shard, idx, conn, ready, shares);
}

/// Takes flow `flow`'s share of `txid` out of the registry (test-only apart mode).
fn take_flow_share(reg: &mut Registry, txid: u64, flow: usize) -> Vec<(usize, u16, Vec<u8>)> {
    let Some(p) = reg.txs.get_mut(&txid) else { return Vec::new() };
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut p.shares).into_iter().partition(|s| s.0 == flow);
    p.shares = rest;
    reg.bytes -= mine.iter().map(|s| s.2.len()).sum::<usize>();
    if p.shares.is_empty() && p.end.as_ref().is_some_and(|(_, w)| w.iter().all(|w| p.ended.contains(w))) {
        reg.txs.remove(&txid);
    }
    reg.window(flow).parts.retain(|part| part.txid != txid);
    mine
}

/// Runs `shares` (of transactions `txids`) as one EXEC on the flow's
/// connection; the parts leave the windows once it ran ([`on_applied`]).
fn apply(shard: &mut Shard, idx: u32, conn: &mut Conn, txids: Vec<u64>, shares: Vec<(usize, u16, Vec<u8>)>) {
    if shares.is_empty() {
        // Only ends arrived (the writes were in a snapshot, or wrote nothing).
        let woken = {
            let mut reg = registry(shard);
            let woken = forget_parts(&mut reg, &txids);
            publish_open(&shard.shared, &reg);
            woken
        };
        return wake(shard, woken);
    }
    let db = conn.db;
    let mut cmds: Vec<OwnedArgs> = Vec::new();
    for (_, share_db, entries) in &shares {
        cmds.push(OwnedArgs::from_parts([&b"SELECT"[..], share_db.to_string().as_bytes()]));
        cmds.extend(split_entries(entries).unwrap_or_default());
    }
    // The stream's own database stays what it was.
    cmds.push(OwnedArgs::from_parts([&b"SELECT"[..], db.to_string().as_bytes()]));
    if let Some(m) = conn.master.as_mut() {
        m.applying.extend(txids);
    }
    shard.start_tx(idx, conn, cmds, true);
}

/// A transaction the flow's connection started ([`apply`]) ran: its parts
/// leave the windows, and flows that waited for them continue.
pub(crate) fn on_applied(shard: &mut Shard, conn: &mut Conn) {
    let Some(m) = conn.master.as_mut() else { return };
    if m.applying.is_empty() {
        return;
    }
    let txids = std::mem::take(&mut m.applying);
    let woken = {
        let mut reg = registry(shard);
        reg.applied.extend(txids.iter().copied());
        let excess = reg.applied.len().saturating_sub(APPLIED_TXIDS_KEPT);
        reg.applied.drain(..excess);
        let woken = forget_parts(&mut reg, &txids);
        publish_open(&shard.shared, &reg);
        woken
    };
    wake(shard, woken);
}

/// Removes the parts of `txids` from every window; returns the paused
/// flows to wake.
fn forget_parts(reg: &mut Registry, txids: &[u64]) -> Vec<(usize, u32, u64)> {
    let mut woken = Vec::new();
    for w in &mut reg.windows {
        let before = w.parts.len();
        w.parts.retain(|p| !txids.contains(&p.txid));
        if w.parts.len() != before
            && let Some(p) = w.paused.take()
        {
            woken.push(p);
        }
    }
    woken
}

fn wake(shard: &mut Shard, woken: Vec<(usize, u32, u64)>) {
    for (s, idx, id) in woken {
        if s == shard.id {
            resume(shard, idx, id);
        } else if shard.shared.control[s].send(crate::shared::Control::ResumeStream { idx, id }).is_ok() {
            shard.shared.wake(s);
        }
    }
}

/// A paused stream continues (it checks its next entry again).
pub(crate) fn resume(shard: &mut Shard, idx: u32, id: u64) {
    if let Some(c) = shard.conns.get_mut(idx as usize).and_then(|c| c.as_mut())
        && c.id == id
        && c.stream_paused
    {
        c.stream_paused = false;
        shard.continue_conn(idx);
    }
}

/// Whether the next entry of a primary's stream may run now: not when it
/// touches a key of one of its flow's shares not yet applied (the flow then
/// pauses until that is applied).
///
/// A share (`tx-cmd`) is an entry like the others: a later transaction's
/// share that touches a key of an earlier one waits until that one is
/// applied, or it could complete first (its other flows ahead) and be
/// overwritten by the earlier one.
pub(crate) fn may_run(shard: &mut Shard, idx: u32, conn: &mut Conn, args: &Args) -> bool {
    let Some(m) = conn.master.as_ref() else { return true };
    let Some(name) = args.try_get(0) else { return true };
    if m.snapshot {
        return true;
    }
    let flow = m.primary_shard;
    // Only this flow adds to its window: empty now, it stays so until this
    // entry ran, and the entry's footprint (a share's is parsed again when
    // it runs) need not be computed.
    if registry(shard).windows.get(flow).is_none_or(|w| w.parts.is_empty()) {
        return true;
    }
    let (f, own) = if name.eq_ignore_ascii_case(b"REPLCONF") {
        match share_footprint(shard, args) {
            Some((txid, _, f)) => (f, Some(txid)),
            None => return true,
        }
    } else {
        match shard.command_footprint(conn.db as u16, args) {
            Some(f) => (f, None),
            None => return true,
        }
    };
    if f.whole.is_none() && f.keys.is_empty() {
        return true;
    }
    let mut reg = registry(shard);
    let w = reg.window(flow);
    if !w.parts.iter().any(|p| Some(p.txid) != own && p.footprint.overlaps(&f)) {
        return true;
    }
    w.paused = Some((shard.id, idx, conn.id));
    conn.stream_paused = true;
    false
}

/// The position before flow `flow`'s oldest share not yet applied.
pub(crate) fn window_start(shared: &Shared, flow: usize) -> Option<u64> {
    let reg = lock(shared);
    reg.windows.get(flow).and_then(|w| w.parts.iter().map(|p| p.start).min())
}

/// A flow starts a full sync: the snapshot holds what its shares and ends
/// held (the primary's fence comes next in its stream).
pub(crate) fn reset_flow(shared: &Shared, flow: usize) {
    let mut reg = lock(shared);
    let mut freed = 0;
    reg.txs.retain(|_, p| {
        p.shares.retain(|s| {
            let keep = s.0 != flow;
            if !keep {
                freed += s.2.len();
            }
            keep
        });
        p.ended.retain(|&e| e as usize != flow);
        !(p.shares.is_empty() && p.ended.is_empty())
    });
    reg.bytes -= freed;
    if let Some(f) = reg.fences.get_mut(flow) {
        *f = None;
    }
    let w = reg.window(flow);
    w.parts.clear();
    w.paused = None;
    publish_open(shared, &reg);
}

/// REPLICAOF NO ONE: transactions not complete never will be; they are
/// dropped (the first shard to ask drops them, for link `epoch`) and
/// returned, so that each shard tells its own replicas.
pub(crate) fn drop_incomplete(shared: &Shared, epoch: u64) -> Vec<u64> {
    let mut reg = lock(shared);
    if reg.dropped.0 != epoch {
        let mut txids: Vec<u64> = reg.txs.keys().copied().collect();
        txids.sort_unstable();
        reg.txs.clear();
        reg.bytes = 0;
        reg.windows.clear();
        reg.fences.clear();
        reg.dropped = (epoch, txids);
        publish_open(shared, &reg);
        if !reg.dropped.1.is_empty() {
            tracing::warn!(
                "promoted with {} multi-shard transactions whose shares had not all arrived; they are dropped",
                reg.dropped.1.len()
            );
        }
    }
    reg.dropped.1.clone()
}

/// Splits a share's entries (RESP arrays of bulk strings, as the journal
/// encodes them) into commands; None when they are malformed.
fn split_entries(mut buf: &[u8]) -> Option<Vec<OwnedArgs>> {
    fn line(buf: &[u8], prefix: u8) -> Option<(usize, &[u8])> {
        if buf.first() != Some(&prefix) {
            return None;
        }
        let end = buf.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&buf[1..end]).ok()?.parse::<usize>().ok()?;
        Some((n, &buf[end + 2..]))
    }
    let mut cmds = Vec::new();
    while !buf.is_empty() {
        let (n, mut rest) = line(buf, b'*')?;
        let mut cmd = OwnedArgs::default();
        for _ in 0..n {
            let (len, tail) = line(rest, b'$')?;
            if tail.len() < len + 2 || &tail[len..len + 2] != b"\r\n" {
                return None;
            }
            cmd.push(&tail[..len]);
            rest = &tail[len + 2..];
        }
        if n == 0 {
            return None;
        }
        cmds.push(cmd);
        buf = rest;
    }
    Some(cmds)
}

impl MasterIn {
    /// The position a replica acks: before its flow's oldest share not yet
    /// applied, else what it applied.
    pub(crate) fn ack_position_in(&self, shared: &Shared) -> u64 {
        let applied = self.applied();
        if shared.repl.tx_open.load(Relaxed) == 0 {
            return applied;
        }
        window_start(shared, self.primary_shard).map_or(applied, |s| s.min(applied))
    }
}

#[cfg(test)]
mod tests {
    use super::split_entries;
    use coreshard_engine::journal::encode_command;

    #[test]
    fn entries_split_into_commands_and_malformed_ones_are_refused() {
        let mut buf = Vec::new();
        encode_command(&mut buf, [&b"SET"[..], b"k", b"v\r\nx"]);
        encode_command(&mut buf, [&b"DEL"[..], b""]);
        let cmds = split_entries(&buf).expect("well formed");
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].view().get(2), b"v\r\nx");
        assert_eq!(cmds[1].view().get(1), b"");
        for cut in 0..buf.len() {
            assert!(split_entries(&buf[..cut]).is_none_or(|c| c.len() < 2), "a cut at {cut} loses a command");
        }
        assert!(split_entries(b"*1\r\n$3\r\nGETX\r\n").is_none());
        assert!(split_entries(b"*0\r\n").is_none());
        assert!(split_entries(b"+OK\r\n").is_none());
    }
}
