//! Atomicity across shards: key locks, requests that wait for them, and the
//! coordinator of a transaction (a multi-key command spanning shards, or
//! EXEC).
//!
//! ```text
//!   coordinator (the client's shard)          participant shards
//!   ─────────────────────────────────         ──────────────────────────────
//!   lock set per shard ── TxLock ───────────▶ grant (or refuse) every lock at once
//!          ◀──────────────────── granted ──── (a refusing shard takes nothing)
//!   all granted: run the commands ─ Whole/Part (txid) ─▶ run past the locks
//!                     ── TxUnlock ──────────▶ release; run what waited
//! ```
//!
//! The ideas are VLL's (Dragonfly's transactions): a transaction takes intent
//! locks on its keys (shared to read, exclusive to write, or the whole shard
//! for commands over every key) on each shard it touches before any of them
//! runs a part of it, and releases each shard's locks after that shard ran its
//! part. A command that touches a locked key waits on its shard, behind
//! every earlier waiter on the same keys and from the same client, so a reader
//! sees a transaction whole or not at all, on every shard, and the order of one
//! client's commands on one shard is kept.
//!
//! Deadlock freedom: the first attempt asks every shard at once and no shard
//! waits (a conflict refuses). A refused transaction releases what it got and
//! then takes its shards one at a time in ascending shard order, waiting on
//! each; since every waiting transaction holds locks only on shards below the
//! one it waits on, no cycle of waits can form. Unrefused first attempts
//! never wait, so they are not part of any cycle either. Requests of a
//! transaction that holds its locks never wait.
//!
//! Lock messages travel the same SPSC rings as the commands, so on each shard
//! a transaction's unlock arrives after its commands.
//!
//! Journal: a transaction that writes on several shards, or on a shard
//! other than its coordinator's, reaches replicas as one share per writing
//! shard. Its lock requests carry the writing shards (`writers`); each of
//! them logs what it runs for the transaction as `REPLCONF tx-cmd <txid>
//! <db> <entries>` (`Journal::set_tx_tag`, around the requests that carry
//! the txid), and when the coordinator commits (its unlock carries the
//! transaction's `seq`, the order in which transactions took all their
//! locks), `REPLCONF tx-end <txid> <seq> <writers>`. A replica keeps the
//! shares aside and applies the transaction whole once every writer's end
//! arrived (repl/txapply.rs). Entries of other clients on other keys may
//! fall between a share's entries: the locks make them commute. An EXEC on
//! the coordinator's shard alone keeps Redis's `MULTI` ... `EXEC`.

use crate::batch::{Batch, Op, Request};
use crate::conn::PartResult;
use crate::conn::{Acc, Conn};
use crate::shard::Shard;
use coreshard_engine::cmd::{Attempt, Blocking, CommandSpec, Ctx, Handler, Kind, Merge, PartFn, flags};
use coreshard_engine::db::Db;
use coreshard_engine::{Args, Keyspace, OwnedArgs, Reply, Span, UnixMs};
use hashbrown::HashMap;
use std::collections::VecDeque;

/// Requests that may wait for locks on one shard at once; past it, a new
/// transaction that would have to wait is refused with an error instead.
pub(crate) const PARKED_REQUESTS_MAX: usize = 64 * 1024;

/// The error for a transaction refused past [`PARKED_REQUESTS_MAX`].
const TOO_MANY_WAITING: &str = "ERR too many commands wait for locked keys; try again";

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Readers share it.
    Shared,
    /// One writer.
    Exclusive,
}

impl Mode {
    fn of(spec: &CommandSpec) -> Mode {
        if spec.has(flags::WRITE) { Mode::Exclusive } else { Mode::Shared }
    }

    fn byte(self) -> u8 {
        match self {
            Mode::Shared => b'r',
            Mode::Exclusive => b'w',
        }
    }

    fn from_byte(b: u8) -> Option<Mode> {
        match b {
            b'r' => Some(Mode::Shared),
            b'w' => Some(Mode::Exclusive),
            _ => None,
        }
    }

    fn conflicts(self, other: Mode) -> bool {
        self == Mode::Exclusive || other == Mode::Exclusive
    }
}

/// What a request or a transaction touches on one shard.
#[derive(Default, Debug, Clone)]
pub(crate) struct Footprint {
    /// Every key of the shard (commands over the whole keyspace).
    pub whole: Option<Mode>,
    /// Keys: (database, key, mode).
    pub keys: Vec<(u16, Box<[u8]>, Mode)>,
    /// For a transaction's lock set: the shards that log a share of it
    /// (empty: it reaches the journal as plain entries, or not at all).
    pub writers: Vec<u16>,
}

impl Footprint {
    /// Adds what `other` touches.
    pub(crate) fn merge(&mut self, other: Footprint) {
        if let Some(m) = other.whole {
            self.add_whole(m);
        }
        for (db, key, mode) in other.keys {
            self.add(db, &key, mode);
        }
    }

    /// True when it writes (holds something exclusively).
    pub(crate) fn writes(&self) -> bool {
        self.whole == Some(Mode::Exclusive) || self.keys.iter().any(|k| k.2 == Mode::Exclusive)
    }

    pub(crate) fn overlaps(&self, other: &Footprint) -> bool {
        if let Some(w) = self.whole {
            return other.whole.is_some_and(|o| w.conflicts(o)) || other.keys.iter().any(|k| w.conflicts(k.2));
        }
        if let Some(o) = other.whole {
            return self.keys.iter().any(|k| o.conflicts(k.2));
        }
        self.keys
            .iter()
            .any(|(db, key, m)| other.keys.iter().any(|(d2, k2, m2)| db == d2 && key == k2 && m.conflicts(*m2)))
    }

    fn add(&mut self, db: u16, key: &[u8], mode: Mode) {
        match self.keys.iter_mut().find(|(d, k, _)| *d == db && &**k == key) {
            Some(entry) => {
                if mode == Mode::Exclusive {
                    entry.2 = Mode::Exclusive;
                }
            }
            None => self.keys.push((db, key.into(), mode)),
        }
    }

    fn add_whole(&mut self, mode: Mode) {
        if self.whole != Some(Mode::Exclusive) {
            self.whole = Some(mode);
        }
    }

    fn is_empty(&self) -> bool {
        self.whole.is_none() && self.keys.is_empty()
    }

    /// The arguments of a TxLock request: a header (whole-shard mode or `-`,
    /// `1` to wait or `0` not to, `1` and 8 bytes of watcher or `0`, then
    /// the writing shards, 2 bytes each), then `mode db-lo db-hi key` per
    /// key. With `watcher`, the shard also checks that client's WATCHed
    /// keys (and locks them, shared).
    fn encode(&self, wait: bool, watcher: Option<u64>, writers: &[u16]) -> OwnedArgs {
        let mut a = OwnedArgs::default();
        let mut header = vec![self.whole.map_or(b'-', Mode::byte), if wait { b'1' } else { b'0' }];
        match watcher {
            Some(client) => {
                header.push(b'1');
                header.extend_from_slice(&client.to_le_bytes());
            }
            None => header.push(b'0'),
        }
        for w in writers {
            header.extend_from_slice(&w.to_le_bytes());
        }
        a.push(&header);
        let mut arg = Vec::new();
        for (db, key, mode) in &self.keys {
            arg.clear();
            arg.push(mode.byte());
            arg.extend_from_slice(&db.to_le_bytes());
            arg.extend_from_slice(key);
            a.push(&arg);
        }
        a
    }

    /// Reads TxLock arguments; None when malformed (a bug, never client input).
    fn decode(args: &Args) -> Option<(Footprint, bool, Option<u64>)> {
        let header = args.try_get(0)?;
        let whole = match *header.first()? {
            b'-' => None,
            b => Some(Mode::from_byte(b)?),
        };
        let wait = *header.get(1)? == b'1';
        let (watcher, rest) = match *header.get(2)? {
            b'1' => (Some(u64::from_le_bytes(header.get(3..11)?.try_into().ok()?)), header.get(11..)?),
            _ => (None, header.get(3..)?),
        };
        let writers = rest.chunks_exact(2).map(|w| u16::from_le_bytes([w[0], w[1]])).collect();
        let mut f = Footprint { whole, keys: Vec::with_capacity(args.len() - 1), writers };
        for arg in args.iter_from(1) {
            if arg.len() < 3 {
                return None;
            }
            let db = u16::from_le_bytes([arg[1], arg[2]]);
            f.keys.push((db, arg[3..].into(), Mode::from_byte(arg[0])?));
        }
        Some((f, wait, watcher))
    }
}

#[derive(Default)]
struct KeyLock {
    shared: u32,
    exclusive: bool,
}

/// The locks transactions hold on one shard.
#[derive(Default)]
pub(crate) struct LockTable {
    keys: HashMap<(u16, Box<[u8]>), KeyLock>,
    whole_shared: u32,
    whole_exclusive: bool,
    /// Key locks held in exclusive mode (they conflict with a shared whole-shard lock).
    exclusive_keys: u32,
    held: HashMap<u64, Footprint>,
}

impl LockTable {
    fn conflicts(&self, f: &Footprint) -> bool {
        if self.held.is_empty() {
            return false;
        }
        if self.whole_exclusive {
            return true;
        }
        match f.whole {
            Some(Mode::Exclusive) => return true,
            Some(Mode::Shared) => return self.exclusive_keys > 0,
            None => {}
        }
        f.keys.iter().any(|(db, key, mode)| {
            (*mode == Mode::Exclusive && self.whole_shared > 0)
                || self
                    .keys
                    .get(&(*db, key.clone()))
                    .is_some_and(|l| l.exclusive || (*mode == Mode::Exclusive && l.shared > 0))
        })
    }

    fn acquire(&mut self, txid: u64, f: Footprint) {
        debug_assert!(!self.held.contains_key(&txid), "a transaction locks a shard once");
        match f.whole {
            Some(Mode::Exclusive) => self.whole_exclusive = true,
            Some(Mode::Shared) => self.whole_shared += 1,
            None => {}
        }
        for (db, key, mode) in &f.keys {
            let l = self.keys.entry((*db, key.clone())).or_default();
            match mode {
                Mode::Exclusive => {
                    l.exclusive = true;
                    self.exclusive_keys += 1;
                }
                Mode::Shared => l.shared += 1,
            }
        }
        self.held.insert(txid, f);
    }

    /// Releases `txid`'s locks; false when it held none here.
    fn release(&mut self, txid: u64) -> bool {
        let Some(f) = self.held.remove(&txid) else { return false };
        match f.whole {
            Some(Mode::Exclusive) => self.whole_exclusive = false,
            Some(Mode::Shared) => self.whole_shared -= 1,
            None => {}
        }
        for (db, key, mode) in f.keys {
            let k = (db, key);
            if let Some(l) = self.keys.get_mut(&k) {
                match mode {
                    Mode::Exclusive => {
                        l.exclusive = false;
                        self.exclusive_keys -= 1;
                    }
                    Mode::Shared => l.shared -= 1,
                }
                if !l.exclusive && l.shared == 0 {
                    self.keys.remove(&k);
                }
            }
        }
        true
    }
}

/// Where the reply of a waiting request goes.
#[derive(Clone, Copy, Debug)]
enum Origin {
    /// A connection of this shard: its hole and part.
    Local { conn: u32, hole: u32, part: u16 },
    /// A request from another shard, answered in a batch of its own.
    Remote { shard: usize, conn: u32, hole: u32, part: u16 },
    /// A transaction this shard coordinates, waiting for its own locks here.
    LocalTx { slot: u32, part: u16 },
}

impl Origin {
    fn client(&self, here: usize) -> Option<(usize, u32)> {
        match *self {
            Origin::Local { conn, .. } => Some((here, conn)),
            Origin::Remote { shard, conn, .. } => Some((shard, conn)),
            Origin::LocalTx { .. } => None,
        }
    }
}

/// A request waiting for locks.
struct Parked {
    origin: Origin,
    db: u16,
    proto: coreshard_engine::Proto,
    op: Op,
    txid: u64,
    data: Vec<u8>,
    spans: Vec<Span>,
    footprint: Footprint,
    /// For a lock request: the client whose watches to check.
    watcher: Option<u64>,
}

/// A shard's answer to a lock request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Not granted (the first attempt, which does not wait).
    Refused,
    /// Every lock is held.
    Granted,
    /// Every lock is held, and the client's WATCH on this shard broke.
    WatchBroken,
}

impl Grant {
    fn code(self) -> i64 {
        match self {
            Grant::Refused => 0,
            Grant::Granted => 1,
            Grant::WatchBroken => 2,
        }
    }
}

/// The state of transactions on one shard: the locks held here, the requests
/// waiting for them, and the transactions this shard coordinates.
#[derive(Default)]
pub(crate) struct Transactions {
    locks: LockTable,
    parked: VecDeque<Parked>,
    coordinated: Vec<Option<TxState>>,
    free: Vec<u32>,
    next: u64,
    /// The transaction whose command is being dispatched.
    current: Option<u32>,
    /// `run_parked` is running; a nested call asks it for another pass.
    running_parked: bool,
    rerun_parked: bool,
    /// A keyspace over every slot that gathered commands run on, kept empty between uses.
    scratch: Option<Keyspace>,
}

impl Transactions {
    /// True when transaction `txid` holds locks here.
    pub fn holds(&self, txid: u64) -> bool {
        self.locks.held.contains_key(&txid)
    }

    /// Transactions holding locks here that will log a share on this shard
    /// (a full sync's fence names them: their ends are still to come).
    pub(crate) fn open_writers(&self) -> Vec<u64> {
        self.locks.held.iter().filter(|(_, f)| f.writes() && !f.writers.is_empty()).map(|(t, _)| *t).collect()
    }

    /// True when nothing is locked and nothing waits: requests need no check.
    #[inline]
    pub fn idle(&self) -> bool {
        self.locks.held.is_empty() && self.parked.is_empty()
    }

    /// Whether a request of client `client` with footprint `f` must wait:
    /// it touches a locked key, or keys an earlier waiter touches, or an
    /// earlier request of the same client waits.
    fn must_wait(&self, f: &Footprint, client: Option<(usize, u32)>, here: usize) -> bool {
        self.locks.conflicts(f)
            || self
                .parked
                .iter()
                .any(|p| p.footprint.overlaps(f) || (client.is_some() && p.origin.client(here) == client))
    }
}

/// A transaction this shard coordinates.
pub(crate) struct TxState {
    txid: u64,
    /// The client's connection on this shard.
    conn: u32,
    /// The commands, in order.
    cmds: Vec<OwnedArgs>,
    /// EXEC (the reply is an array of the commands' replies) rather than one command.
    exec: bool,
    /// Shards taking part, ascending, with the lock set of each.
    participants: Vec<(usize, Footprint)>,
    /// The participants that log a share of it (see the module comment).
    writers: Vec<u16>,
    /// Its place among the transactions that took all their locks
    /// (`Repl::tx_seq`), once it did; 0 before, or when it logs no shares.
    seq: u64,
    /// Lock replies still to come.
    pending: u32,
    /// Participants that granted.
    granted: Vec<bool>,
    /// A participant refused (first attempt).
    refused: bool,
    /// Taking the shards one by one, waiting: the index being taken.
    ordered: Option<usize>,
    /// EXEC of a client with WATCHed keys: its id, checked by the shards.
    watcher: Option<u64>,
    /// A shard found the client's watch broken: EXEC runs nothing.
    watch_broken: bool,
    /// The commands started running (the EXEC header is written).
    started: bool,
    /// The next command to run.
    next: usize,
    /// A command waiting for the values of keys on other shards.
    gather: Option<Gather>,
    /// A read-only multi-key command whose first attempt reads with its locks.
    read: Option<ReadAttempt>,
}

/// The first attempt of a read-only multi-key command (MGET, EXISTS): each
/// participant runs its part right after granting its locks, in the same
/// hop; when every lock was granted the parts are the reply.
struct ReadAttempt {
    merge: Merge,
    proto: coreshard_engine::Proto,
    /// The participant serving each key, in key order.
    order: Vec<u16>,
    /// Each participant's part result.
    parts: Vec<PartResult>,
}

/// What a gathered command runs.
#[derive(Clone, Copy)]
pub(crate) enum Run {
    /// A command.
    Handler(Handler),
    /// One try of a blocking command: when it finds nothing, the client
    /// waits for one of the keys (`blocking::block_across`).
    Attempt(&'static CommandSpec, Blocking),
}

/// A command over keys of several shards being run here (see `start_gather`).
struct Gather {
    /// The connection's hole for its reply.
    hole: u32,
    db: usize,
    proto: coreshard_engine::Proto,
    run: Run,
    /// Inside EXEC: a blocking command answers a timeout at once.
    no_wait: bool,
    cmd: OwnedArgs,
    /// Its distinct keys with their owner shards.
    keys: Vec<(Vec<u8>, usize)>,
    /// Their values as fetched (`encode_entry`), None when missing.
    values: Vec<Option<Vec<u8>>>,
    /// Shards whose values are still to come.
    pending: u32,
}

impl Shard {
    /// True when multi-shard commands run as transactions (the default;
    /// `debug-multi-shard-atomic no` turns it off, so that tests can show
    /// what they catch without it).
    pub(crate) fn atomic_multi_shard(&self) -> bool {
        self.map.shards() > 1 && self.config.debug_multi_shard_atomic
    }

    /// The footprint of one request on this shard.
    fn footprint_of(&self, op: Op, db: u16, args: &Args) -> Option<Footprint> {
        if !matches!(op, Op::Whole(_) | Op::Part(_)) {
            return None;
        }
        self.command_footprint(db, args)
    }

    /// What command `args` touches, in database `db` (None: not a command).
    pub(crate) fn command_footprint(&self, db: u16, args: &Args) -> Option<Footprint> {
        let spec = self.table.lookup(args.try_get(0)?)?;
        let mode = Mode::of(spec);
        let mut f = Footprint::default();
        match spec.kind {
            Kind::AllShards { .. } => f.add_whole(mode),
            Kind::MultiKey { .. } => {
                for i in spec.key_positions(args.len()) {
                    f.add(db, args.get(i), mode);
                }
            }
            _ => {
                for i in command_keys(spec, args).unwrap_or_else(|| spec.keys(args).collect()) {
                    f.add(db, args.get(i), mode);
                }
                if spec.has(flags::MOVABLEKEYS) && f.keys.is_empty() {
                    // Unreadable key count: the command only answers an error, but
                    // keep it in order behind anything of this client.
                    f.add_whole(Mode::Shared);
                }
            }
        }
        Some(f)
    }

    /// Called before running a request of a connection of this shard inline:
    /// when it must wait for locks, parks it and returns true. Its reply
    /// fills `hole` (part `part`) later; with no hole given, one is opened.
    pub(crate) fn wait_local(
        &mut self,
        idx: u32,
        conn: &mut Conn,
        hole: Option<(u32, u16)>,
        op: Op,
        args: &Args,
    ) -> bool {
        if conn.txid != 0 {
            debug_assert!(
                self.tx.holds(conn.txid) || self.footprint_of(op, conn.db as u16, args).is_none_or(|f| f.is_empty()),
                "a transaction's command runs on a shard it did not lock"
            );
            return false;
        }
        if self.tx.idle() {
            return false;
        }
        let Some(f) = self.footprint_of(op, conn.db as u16, args) else { return false };
        if !self.tx.must_wait(&f, Some((self.id, idx)), self.id) {
            return false;
        }
        let (hole, part) = hole.unwrap_or_else(|| (conn.open_hole(1, Acc::Single(Vec::new())), 0));
        self.park(Origin::Local { conn: idx, hole, part }, conn.db as u16, conn.proto, op, 0, args, f);
        true
    }

    /// Called for each request another shard sent: when it must wait, parks
    /// it and returns true (its reply is sent later).
    pub(crate) fn park_remote(&mut self, from: usize, req: &Request, args: &Args) -> bool {
        if let Op::TxLock = req.op {
            return false;
        }
        if req.txid != 0 {
            debug_assert!(self.tx.holds(req.txid), "a transaction's request arrived on a shard it did not lock");
            return false;
        }
        if self.tx.idle() {
            return false;
        }
        let Some(f) = self.footprint_of(req.op, req.db, args) else { return false };
        if !self.tx.must_wait(&f, Some((from, req.conn)), self.id) {
            return false;
        }
        let origin = Origin::Remote { shard: from, conn: req.conn, hole: req.hole, part: req.part };
        self.park(origin, req.db, req.proto, req.op, req.txid, args, f);
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn park(
        &mut self,
        origin: Origin,
        db: u16,
        proto: coreshard_engine::Proto,
        op: Op,
        txid: u64,
        args: &Args,
        footprint: Footprint,
    ) {
        let mut data = Vec::new();
        let mut spans = Vec::with_capacity(args.len());
        for a in args.iter_from(0) {
            let start = data.len();
            data.extend_from_slice(a);
            spans.push(start..data.len());
        }
        self.tx.parked.push_back(Parked { origin, db, proto, op, txid, data, spans, footprint, watcher: None });
    }

    /// Runs a TxLock request for transaction `txid` here: grants it now
    /// (true), refuses it (false), or, when it may wait, parks it and
    /// returns None (the grant comes later).
    fn lock_request(&mut self, origin: Origin, txid: u64, args: &Args) -> Option<Grant> {
        let Some((mut f, wait, watcher)) = Footprint::decode(args) else {
            debug_assert!(false, "malformed lock request");
            return Some(Grant::Refused);
        };
        if let Some(client) = watcher {
            for (db, key) in self.watches.keys_of(client) {
                f.add(db, &key, Mode::Shared);
            }
        }
        let blocked = self.tx.locks.conflicts(&f) || self.tx.parked.iter().any(|p| p.footprint.overlaps(&f));
        if !blocked {
            self.tx.locks.acquire(txid, f);
            return Some(self.grant(watcher));
        }
        if !wait || self.tx.parked.len() >= PARKED_REQUESTS_MAX {
            return Some(Grant::Refused);
        }
        let proto = coreshard_engine::Proto::Resp2;
        self.tx.parked.push_back(Parked {
            origin,
            db: 0,
            proto,
            op: Op::TxLock,
            txid,
            data: Vec::new(),
            spans: Vec::new(),
            footprint: f,
            watcher,
        });
        None
    }

    /// The answer for a granted lock request: whether the client's watch here broke.
    fn grant(&mut self, watcher: Option<u64>) -> Grant {
        match watcher {
            Some(client) if self.watch_broken(client) => Grant::WatchBroken,
            _ => Grant::Granted,
        }
    }

    /// Runs a TxLock or TxUnlock request from another shard; returns true
    /// when its reply is deferred.
    pub(crate) fn tx_request(&mut self, from: usize, req: &Request, args: &Args, out: &mut Vec<u8>) -> bool {
        match req.op {
            Op::TxLock => {
                let origin = Origin::Remote { shard: from, conn: req.conn, hole: req.hole, part: req.part };
                match self.lock_request(origin, req.txid, args) {
                    Some(grant) => {
                        coreshard_engine::Reply::new(out, req.proto).int(grant.code());
                        false
                    }
                    None => true,
                }
            }
            Op::TxUnlock => {
                if let Some(seq) = args.try_get(1).and_then(coreshard_engine::num::parse_u64) {
                    self.end_tx_share(req.txid, seq);
                }
                self.unlock(req.txid, None);
                self.unwatch_part(args);
                false
            }
            _ => false,
        }
    }

    /// Makes the journal log what runs next as this shard's share of
    /// transaction `txid`, when it logs shares; true when it does (the
    /// caller clears the tag after).
    pub(crate) fn tag_tx(&mut self, txid: u64) -> bool {
        if txid == 0 || !self.ks.journal.enabled() {
            return false;
        }
        if self.tx.locks.held.get(&txid).is_some_and(|f| !f.writers.is_empty()) {
            self.ks.journal.set_tx_tag(txid);
            return true;
        }
        false
    }

    /// Transaction `txid`, the `seq`-th to take all its locks, commits:
    /// a writer logs the end of its share (before its locks go, so a full
    /// sync's fence sees it either open or ended).
    fn end_tx_share(&mut self, txid: u64, seq: u64) {
        if seq == 0 {
            return;
        }
        if let Some(f) = self.tx.locks.held.get(&txid)
            && f.writes()
            && !f.writers.is_empty()
        {
            self.ks.journal.append_tx_end(txid, seq, &f.writers);
        }
    }

    /// Releases `txid`'s locks here and runs what can run now. `cur` is the
    /// connection being executed, which is not in `self.conns` meanwhile.
    pub(crate) fn unlock(&mut self, txid: u64, mut cur: Option<(u32, &mut Conn)>) {
        if !self.tx.locks.release(txid) {
            return;
        }
        self.run_parked(&mut cur);
    }

    /// Runs the waiting requests that no longer have to wait, in order; a
    /// waiter that stays keeps later ones on its keys or of its client
    /// waiting. Not reentrant: running a waiter can finish a transaction
    /// whose unlock asks for another pass, which the running one then makes.
    fn run_parked(&mut self, cur: &mut Option<(u32, &mut Conn)>) {
        if self.tx.parked.is_empty() {
            return;
        }
        if self.tx.running_parked {
            self.tx.rerun_parked = true;
            return;
        }
        self.tx.running_parked = true;
        let mut late: Vec<Option<Batch>> = (0..self.map.shards()).map(|_| None).collect();
        loop {
            self.tx.rerun_parked = false;
            let mut queue = std::mem::take(&mut self.tx.parked);
            let mut staying: VecDeque<Parked> = VecDeque::new();
            while let Some(p) = queue.pop_front() {
                let client = p.origin.client(self.id);
                let blocked = self.tx.locks.conflicts(&p.footprint)
                    || staying.iter().any(|s| {
                        s.footprint.overlaps(&p.footprint) || (client.is_some() && s.origin.client(self.id) == client)
                    });
                if blocked {
                    staying.push_back(p);
                    continue;
                }
                self.run_one_parked(p, cur, &mut late);
            }
            // Requests parked meanwhile wait behind the ones that stayed.
            staying.append(&mut self.tx.parked);
            self.tx.parked = staying;
            if !self.tx.rerun_parked {
                break;
            }
        }
        self.tx.running_parked = false;
        for (dest, batch) in late.into_iter().enumerate() {
            if let Some(batch) = batch {
                self.send_reply_batch(dest, batch);
            }
        }
    }

    fn run_one_parked(&mut self, p: Parked, cur: &mut Option<(u32, &mut Conn)>, late: &mut [Option<Batch>]) {
        if let Op::TxLock = p.op {
            self.tx.locks.acquire(p.txid, p.footprint);
            let grant = self.grant(p.watcher);
            match p.origin {
                Origin::LocalTx { slot, part } => self.on_lock_reply(slot, part, grant, cur),
                Origin::Remote { shard, conn, hole, part } => {
                    let batch = late[shard].get_or_insert_with(Batch::default);
                    let start = batch.out.len();
                    coreshard_engine::Reply::new(&mut batch.out, p.proto).int(grant.code());
                    batch.reqs.push(reply_request(conn, hole, part, Op::TxLock, p.txid, start..batch.out.len(), 0..0));
                }
                Origin::Local { .. } => debug_assert!(false, "a lock request from a connection"),
            }
            return;
        }
        let args = Args::new(&p.data, &p.spans);
        match p.origin {
            Origin::Local { conn, hole, part } => {
                let (mut bytes, mut ends) = (Vec::new(), Vec::new());
                if let Some((i, c)) = cur.as_mut()
                    && *i == conn
                {
                    // The connection being executed: its caller sends what it completes.
                    self.run_op(p.op, p.db as usize, p.proto, args, &mut bytes, &mut ends, None);
                    c.fill(hole, part, &bytes, &ends, &mut self.rng);
                    return;
                }
                let Some(mut c) = self.conns[conn as usize].take() else { return };
                self.run_op(p.op, p.db as usize, p.proto, args, &mut bytes, &mut ends, Some((conn, &mut c)));
                let done = c.fill(hole, part, &bytes, &ends, &mut self.rng);
                self.conns[conn as usize] = Some(c);
                if done {
                    self.continue_conn(conn);
                }
            }
            Origin::Remote { shard, conn, hole, part } => {
                let batch = late[shard].get_or_insert_with(Batch::default);
                let (out_start, ends_start) = (batch.out.len(), batch.ends.len());
                self.run_op(p.op, p.db as usize, p.proto, args, &mut batch.out, &mut batch.ends, None);
                let (out_end, ends_end) = (batch.out.len(), batch.ends.len());
                batch.reqs.push(reply_request(
                    conn,
                    hole,
                    part,
                    p.op,
                    p.txid,
                    out_start..out_end,
                    ends_start..ends_end,
                ));
            }
            Origin::LocalTx { .. } => debug_assert!(false, "a command parked for a transaction"),
        }
    }

    /// Starts transaction of `cmds` for connection `idx` (EXEC when `exec`),
    /// or runs it at once when it needs no locks.
    pub(crate) fn start_tx(&mut self, idx: u32, conn: &mut Conn, cmds: Vec<OwnedArgs>, exec: bool) {
        let watcher = (exec && !conn.watching.is_empty()).then_some(conn.id);
        let mut participants =
            if self.config.debug_multi_shard_atomic { self.lock_sets(conn.db, &cmds) } else { Vec::new() };
        if exec {
            // Shards holding watched keys take part, to check them.
            for &s in &std::mem::take(&mut conn.watching) {
                if !participants.iter().any(|(p, _)| *p == s as usize) {
                    participants.push((s as usize, Footprint::default()));
                }
            }
            participants.sort_by_key(|(s, _)| *s);
        }
        let n = participants.len();
        // An EXEC on this shard alone is logged as MULTI ... EXEC (run_steps);
        // any other transaction as a share per shard that writes.
        let local = exec && participants.iter().all(|(s, _)| *s == self.id);
        let writers: Vec<u16> = if local {
            Vec::new()
        } else {
            participants.iter().filter(|(_, f)| f.writes()).map(|(s, _)| *s as u16).collect()
        };
        let slot = self.new_tx(idx, cmds, exec, participants, watcher);
        if let Some(tx) = self.tx.coordinated[slot as usize].as_mut() {
            tx.writers = writers;
        }
        conn.tx_wait = true;
        if n == 0 {
            return self.dispatch_tx(slot, Some((idx, conn)));
        }
        for part in 0..n {
            self.send_lock(slot, part, false, Some((idx, &mut *conn)));
        }
    }

    /// Registers a new coordinated transaction and returns its slot.
    fn new_tx(
        &mut self,
        idx: u32,
        cmds: Vec<OwnedArgs>,
        exec: bool,
        participants: Vec<(usize, Footprint)>,
        watcher: Option<u64>,
    ) -> u32 {
        // Ids are unique per shard and never 0, which means "no transaction".
        self.tx.next = (self.tx.next % ((1 << 48) - 1)) + 1;
        let txid = ((self.id as u64) << 48) | self.tx.next;
        let n = participants.len();
        let state = TxState {
            txid,
            conn: idx,
            cmds,
            exec,
            writers: Vec::new(),
            seq: 0,
            participants,
            pending: n as u32,
            granted: vec![false; n],
            refused: false,
            ordered: None,
            watcher,
            watch_broken: false,
            started: false,
            next: 0,
            gather: None,
            read: None,
        };
        match self.tx.free.pop() {
            Some(s) => {
                self.tx.coordinated[s as usize] = Some(state);
                s
            }
            None => {
                self.tx.coordinated.push(Some(state));
                (self.tx.coordinated.len() - 1) as u32
            }
        }
    }

    /// Starts a read-only multi-key command over several shards (MGET,
    /// EXISTS): every shard grants shared locks and runs its part in one hop.
    pub(crate) fn start_read_tx(
        &mut self,
        idx: u32,
        conn: &mut Conn,
        part: PartFn,
        merge: Merge,
        args: Args,
        step: usize,
    ) {
        let (shards, spans, order) = self.split_parts(&args, step);
        // Participants ascending by shard (the ordered retry needs it).
        let mut by_shard: Vec<usize> = (0..shards.len()).collect();
        by_shard.sort_by_key(|&p| shards[p]);
        let mut rank = vec![0u16; shards.len()];
        for (r, &p) in by_shard.iter().enumerate() {
            rank[p] = r as u16;
        }
        let db = conn.db as u16;
        let participants: Vec<(usize, Footprint)> = by_shard
            .iter()
            .map(|&p| {
                let mut f = Footprint::default();
                for (i, s) in spans[p].iter().enumerate().skip(1) {
                    if (i - 1) % step == 0 {
                        f.add(db, &args.buf()[s.clone()], Mode::Shared);
                    }
                }
                (shards[p], f)
            })
            .collect();
        let n = participants.len();
        let read = ReadAttempt {
            merge,
            proto: conn.proto,
            order: order.iter().map(|&p| rank[p as usize]).collect(),
            parts: (0..n).map(|_| PartResult::default()).collect(),
        };
        let slot = self.new_tx(idx, vec![OwnedArgs::from_parts(args.iter_from(0))], false, participants, None);
        let (txid, proto) = (self.tx.coordinated[slot as usize].as_ref().map_or(0, |t| t.txid), conn.proto);
        if let Some(tx) = self.tx.coordinated[slot as usize].as_mut() {
            tx.read = Some(read);
            // Each remote participant answers twice: its lock, then its read.
            tx.pending += by_shard.iter().filter(|&&p| shards[p] != self.id).count() as u32;
        }
        conn.tx_wait = true;
        for (r, &p) in by_shard.iter().enumerate() {
            let shard = shards[p];
            let sub = Args::new(args.buf(), &spans[p]);
            if shard == self.id {
                let lock_args =
                    self.tx.coordinated[slot as usize].as_ref().map(|t| t.participants[r].1.encode(false, None, &[]));
                let Some(lock_args) = lock_args else { return };
                let origin = Origin::LocalTx { slot, part: r as u16 };
                let grant = self.lock_request(origin, txid, &lock_args.view()).unwrap_or(Grant::Refused);
                if grant != Grant::Refused {
                    let (mut bytes, mut ends) = (Vec::new(), Vec::new());
                    self.run_op(Op::Part(part), db as usize, proto, sub, &mut bytes, &mut ends, None);
                    if let Some(read) = self.tx.coordinated[slot as usize].as_mut().and_then(|t| t.read.as_mut()) {
                        read.parts[r] = PartResult { bytes, ends };
                    }
                }
                self.on_lock_reply(slot, r as u16, grant, &mut Some((idx, &mut *conn)));
            } else {
                self.send_lock(slot, r, false, Some((idx, &mut *conn)));
                self.queue_raw(shard, idx, slot, r as u16, db, proto, Op::TxRead(part), txid, &sub);
            }
        }
    }

    /// The read of a read-only transaction's first attempt arrived.
    pub(crate) fn on_read_reply(&mut self, slot: u32, part: u16, bytes: &[u8], ends: &[usize]) {
        let Some(tx) = self.tx.coordinated.get_mut(slot as usize).and_then(|t| t.as_mut()) else { return };
        if let Some(read) = tx.read.as_mut() {
            read.parts[part as usize] = PartResult { bytes: bytes.to_vec(), ends: ends.to_vec() };
        }
        tx.pending -= 1;
        if tx.pending == 0 {
            self.first_attempt_done(slot, &mut None);
        }
    }

    /// Every lock of a read-only first attempt was granted: its parts are the
    /// reply; the locks go (no one waits for that).
    fn finish_read(&mut self, slot: u32, cur: Option<(u32, &mut Conn)>) {
        let Some(mut tx) = self.tx.coordinated[slot as usize].take() else { return };
        self.tx.free.push(slot);
        let Some(read) = tx.read.take() else { return };
        let idx = tx.conn;
        self.with_conn(idx, cur, |shard, conn| {
            conn.tx_wait = false;
            let mut reply = Reply::new(&mut conn.out, read.proto);
            crate::conn::merge_parts(read.merge, &read.order, &read.parts, &mut reply, &mut shard.rng);
            for (s, _) in &tx.participants {
                if *s == shard.id {
                    shard.unlock(tx.txid, Some((idx, &mut *conn)));
                } else {
                    shard.queue_tx_message(*s, idx, slot, 0, Op::TxUnlock, tx.txid, &OwnedArgs::default().view());
                }
            }
        });
    }

    /// Asks participant `part` of transaction `slot` for its locks.
    fn send_lock(&mut self, slot: u32, part: usize, wait: bool, cur: Option<(u32, &mut Conn)>) {
        let Some(tx) = self.tx.coordinated[slot as usize].as_ref() else { return };
        let (shard, ref f) = tx.participants[part];
        let (txid, conn) = (tx.txid, tx.conn);
        let lock_args = f.encode(wait, tx.watcher, &tx.writers);
        if shard == self.id {
            let origin = Origin::LocalTx { slot, part: part as u16 };
            if let Some(grant) = self.lock_request(origin, txid, &lock_args.view()) {
                self.on_lock_reply(slot, part as u16, grant, &mut { cur });
            }
            return;
        }
        self.queue_tx_message(shard, conn, slot, part as u16, Op::TxLock, txid, &lock_args.view());
    }

    /// A participant's answer to a lock request.
    pub(crate) fn on_lock_reply(&mut self, slot: u32, part: u16, grant: Grant, cur: &mut Option<(u32, &mut Conn)>) {
        let Some(tx) = self.tx.coordinated.get_mut(slot as usize).and_then(|t| t.as_mut()) else {
            debug_assert!(false, "lock reply for no transaction");
            return;
        };
        let granted = grant != Grant::Refused;
        tx.watch_broken |= grant == Grant::WatchBroken;
        tx.granted[part as usize] = granted;
        if !granted {
            tx.refused = true;
        }
        if let Some(next) = tx.ordered {
            if !granted {
                // Only when PARKED_REQUESTS_MAX requests already wait there.
                return self.abort_tx(slot, next, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
            }
            if next + 1 < tx.participants.len() {
                tx.ordered = Some(next + 1);
                return self.send_lock(slot, next + 1, true, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
            }
            return self.dispatch_tx(slot, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
        }
        tx.pending -= 1;
        if tx.pending == 0 {
            self.first_attempt_done(slot, cur);
        }
    }

    /// Every participant answered the first attempt: run the transaction, or
    /// (a read-only one) reply with what was read, or retry in order.
    fn first_attempt_done(&mut self, slot: u32, cur: &mut Option<(u32, &mut Conn)>) {
        let Some(tx) = self.tx.coordinated.get_mut(slot as usize).and_then(|t| t.as_mut()) else { return };
        if !tx.refused {
            if tx.read.is_some() {
                return self.finish_read(slot, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
            }
            return self.dispatch_tx(slot, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
        }
        // Release what was granted and take the shards in order, waiting;
        // a read-only transaction then runs as any other (its reads are dropped).
        tx.read = None;
        let (txid, conn) = (tx.txid, tx.conn);
        tx.watch_broken = false;
        let granted: Vec<usize> =
            tx.participants.iter().zip(&tx.granted).filter(|(_, g)| **g).map(|((s, _), _)| *s).collect();
        tx.granted.iter_mut().for_each(|g| *g = false);
        tx.ordered = Some(0);
        for shard in granted {
            if shard == self.id {
                self.unlock(txid, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
            } else {
                self.queue_tx_message(shard, conn, slot, 0, Op::TxUnlock, txid, &OwnedArgs::default().view());
            }
        }
        self.send_lock(slot, 0, true, cur.as_mut().map(|(i, c)| (*i, &mut **c)));
    }

    /// Gives up a transaction taking its shards in order when shard number
    /// `failed` refused to queue it: releases the shards taken before and
    /// answers the client with an error.
    fn abort_tx(&mut self, slot: u32, failed: usize, cur: Option<(u32, &mut Conn)>) {
        let Some(tx) = self.tx.coordinated[slot as usize].take() else { return };
        self.tx.free.push(slot);
        tracing::warn!(shard = self.id, "a transaction was refused: {PARKED_REQUESTS_MAX} requests wait on a shard");
        let idx = tx.conn;
        self.with_conn(idx, cur, |shard, conn| {
            conn.tx_wait = false;
            for (s, _) in &tx.participants[..failed] {
                if *s == shard.id {
                    shard.unlock(tx.txid, Some((idx, &mut *conn)));
                } else {
                    shard.queue_tx_message(*s, idx, slot, 0, Op::TxUnlock, tx.txid, &OwnedArgs::default().view());
                }
            }
            shard.counters.errors += 1;
            conn.reply().error(TOO_MANY_WAITING);
            if conn.master.is_some() {
                tracing::warn!(shard = shard.id, "a transaction of the primary's stream could not be applied");
                crate::repl::txapply::on_applied(shard, conn);
            }
        });
    }

    /// Every lock is held: runs the transaction's commands (their requests
    /// carry the transaction id, so they run past its locks), then releases
    /// the locks, each shard's after its commands.
    fn dispatch_tx(&mut self, slot: u32, cur: Option<(u32, &mut Conn)>) {
        let Some(idx) = self.tx.coordinated[slot as usize].as_ref().map(|t| t.conn) else { return };
        self.with_conn(idx, cur, |shard, conn| shard.run_steps(slot, idx, conn));
    }

    /// Runs `f` on connection `idx`: `cur` when that is it (the caller then
    /// continues it), else taken from `self.conns`, put back and continued.
    fn with_conn(&mut self, idx: u32, cur: Option<(u32, &mut Conn)>, f: impl FnOnce(&mut Self, &mut Conn)) {
        if let Some((i, c)) = cur
            && i == idx
        {
            return f(self, c);
        }
        let Some(mut c) = self.conns[idx as usize].take() else {
            debug_assert!(false, "transaction of a released connection");
            return;
        };
        f(self, &mut c);
        self.conns[idx as usize] = Some(c);
        self.continue_conn(idx);
    }

    /// Runs the transaction's commands from where it stopped, until one
    /// gathers keys from other shards (it resumes when they arrive) or all
    /// ran; then releases its locks.
    fn run_steps(&mut self, slot: u32, idx: u32, conn: &mut Conn) {
        let Some(tx) = self.tx.coordinated[slot as usize].as_mut() else { return };
        conn.tx_wait = false;
        if !tx.started {
            tx.started = true;
            if !tx.writers.is_empty() && !tx.watch_broken {
                tx.seq = self.shared.repl.tx_seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            }
            if tx.watch_broken {
                conn.reply().null_array();
                tx.next = tx.cmds.len();
            } else if tx.exec {
                conn.reply().array(tx.cmds.len());
            }
        }
        // Without locks (none needed, or atomicity off for a test) the
        // commands run as plain ones.
        let txid = if tx.participants.is_empty() { 0 } else { tx.txid };
        let exec = tx.exec;
        // An EXEC on this shard alone reaches the journal as MULTI ... EXEC
        // (one over several shards is logged per shard: see
        // docs/decisions/0003-replication.md).
        let wrap = exec && tx.participants.iter().all(|(s, _)| *s == self.id);
        let cmds = std::mem::take(&mut tx.cmds);
        let mut next = tx.next;
        // A transaction of a primary's stream acts on keys as the primary
        // saw them, also when it runs later, after waiting for its locks
        // (the stream's own commands set this in run_commands).
        let mode = self.ks.expiry_mode();
        if conn.master.is_some() {
            self.ks.set_expiry_mode(coreshard_engine::db::ExpiryMode::Ignore);
        }
        if wrap && next == 0 {
            self.ks.journal.begin_multi();
        }
        while next < cmds.len() {
            let args = cmds[next].view();
            next += 1;
            conn.txid = txid;
            conn.in_exec = exec;
            self.tx.current = Some(slot);
            let tagged = self.tag_tx(txid);
            if exec {
                self.execute(idx, conn, args);
            } else if let Some(spec) = self.table.lookup(args.get(0)) {
                self.dispatch(idx, conn, spec, args);
            }
            if tagged {
                self.ks.journal.set_tx_tag(0);
            }
            self.tx.current = None;
            conn.txid = 0;
            conn.in_exec = false;
            let Some(tx) = self.tx.coordinated[slot as usize].as_mut() else {
                self.ks.set_expiry_mode(mode);
                return;
            };
            if tx.gather.is_some() {
                tx.cmds = cmds;
                tx.next = next;
                conn.tx_wait = true;
                self.ks.set_expiry_mode(mode);
                return;
            }
        }
        self.ks.set_expiry_mode(mode);
        if wrap {
            self.ks.journal.end_multi();
        }
        let Some(tx) = self.tx.coordinated[slot as usize].take() else { return };
        self.tx.free.push(slot);
        // Unlocking also forgets the client's watches there (EXEC unwatches),
        // and commits: each writer logs the end of its share.
        let mut unlock_args = match tx.watcher {
            Some(client) => OwnedArgs::from_parts([client.to_string()]),
            None => OwnedArgs::default(),
        };
        if tx.seq != 0 {
            if tx.watcher.is_none() {
                unlock_args.push(b"");
            }
            unlock_args.push(tx.seq.to_string().as_bytes());
        }
        for (shard, _) in &tx.participants {
            if *shard == self.id {
                self.end_tx_share(tx.txid, tx.seq);
                self.unlock(tx.txid, Some((idx, &mut *conn)));
                self.unwatch_part(&unlock_args.view());
            } else {
                self.queue_tx_message(*shard, idx, slot, 0, Op::TxUnlock, tx.txid, &unlock_args.view());
            }
        }
        // A primary's transaction applied on this replica.
        crate::repl::txapply::on_applied(self, conn);
    }

    /// Runs a command whose keys live on several shards in one place (RENAME,
    /// SMOVE, LMOVE, the STORE commands, ...), under its transaction's
    /// locks: fetches the keys' values from their shards, runs the command
    /// on a scratch keyspace here, and writes back the keys it changed.
    /// Called from the dispatch of a transaction's command.
    pub(crate) fn start_gather(&mut self, idx: u32, conn: &mut Conn, run: Run, positions: Vec<usize>, args: Args) {
        let Some(slot) = self.tx.current else {
            debug_assert!(false, "a gather outside a transaction");
            return conn.reply().error(coreshard_engine::cmd::CROSS_SHARD);
        };
        let db = conn.db;
        let mut keys: Vec<(Vec<u8>, usize)> = Vec::with_capacity(positions.len());
        for i in positions {
            let key = args.get(i);
            if !keys.iter().any(|(k, _)| k == key) {
                keys.push((key.to_vec(), self.map.key_owner(key)));
            }
        }
        let mut values = vec![None; keys.len()];
        let mut owners: Vec<usize> = Vec::new();
        for (i, (key, owner)) in keys.iter().enumerate() {
            if *owner == self.id {
                values[i] = encode_entry(self.ks.db(db), key, self.now_ms);
            } else if !owners.contains(owner) {
                owners.push(*owner);
            }
        }
        let hole = conn.open_hole(1, Acc::Single(Vec::new()));
        let txid = conn.txid;
        for &owner in &owners {
            let fetch = OwnedArgs::from_parts(keys.iter().filter(|(_, o)| *o == owner).map(|(k, _)| k));
            self.queue_raw(owner, idx, slot, owner as u16, db as u16, conn.proto, Op::TxFetch, txid, &fetch.view());
        }
        let gather = Gather {
            hole,
            db,
            proto: conn.proto,
            run,
            no_wait: conn.in_exec,
            cmd: OwnedArgs::from_parts(args.iter_from(0)),
            keys,
            values,
            pending: owners.len() as u32,
        };
        if let Some(tx) = self.tx.coordinated[slot as usize].as_mut() {
            tx.gather = Some(gather);
        }
    }

    /// Values of a gather arrived from shard `from`.
    fn on_fetch_reply(&mut self, slot: u32, from: usize, items: &[&[u8]]) {
        let Some(tx) = self.tx.coordinated.get_mut(slot as usize).and_then(|t| t.as_mut()) else { return };
        let Some(g) = tx.gather.as_mut() else { return };
        let mut items = items.iter();
        for (i, (_, owner)) in g.keys.iter().enumerate() {
            if *owner == from {
                g.values[i] = items.next().and_then(|item| bulk_payload(item)).map(<[u8]>::to_vec);
            }
        }
        g.pending -= 1;
        if g.pending > 0 {
            return;
        }
        let idx = tx.conn;
        self.with_conn(idx, None, |shard, conn| {
            shard.finish_gather(slot, idx, conn);
            shard.run_steps(slot, idx, conn);
        });
    }

    /// Runs a gathered command on the scratch keyspace and writes back what changed.
    fn finish_gather(&mut self, slot: u32, idx: u32, conn: &mut Conn) {
        let Some(g) = self.tx.coordinated[slot as usize].as_mut().and_then(|t| t.gather.take()) else { return };
        let txid = self.tx.coordinated[slot as usize].as_ref().map_or(0, |t| t.txid);
        let now = self.now_ms;
        let databases = self.ks.databases();
        let mut scratch = self
            .tx
            .scratch
            .take()
            .unwrap_or_else(|| Keyspace::new(databases, coreshard_engine::slot::ShardSlots::all()));
        for ((key, _), value) in g.keys.iter().zip(&g.values) {
            if let Some(v) = value {
                decode_into(scratch.db(g.db), key, v, now);
            }
        }
        let dirty = scratch.stats.dirty;
        let mut reply = Vec::new();
        let mut ctx = Ctx { ks: &mut scratch, db: g.db, now, args: g.cmd.view() };
        let mut waits = None;
        match g.run {
            Run::Handler(handler) => handler(&mut ctx, &mut Reply::new(&mut reply, g.proto)),
            Run::Attempt(spec, blocking) => {
                if let Attempt::Block { timeout_ms } =
                    (blocking.attempt)(&mut ctx, &mut Reply::new(&mut reply, g.proto))
                {
                    if g.no_wait {
                        Reply::new(&mut reply, g.proto).null_array();
                    } else {
                        waits = Some((spec, timeout_ms));
                    }
                } else {
                    conn.blocked_since_ns = None;
                }
            }
        }
        self.ks.stats.dirty += scratch.stats.dirty - dirty;
        for ((key, owner), before) in g.keys.iter().zip(&g.values) {
            let after = encode_entry(scratch.db(g.db), key, now);
            scratch.db(g.db).remove(key, now);
            if after == *before {
                continue;
            }
            if *owner == self.id {
                crate::repl::primary::before_write(self, key);
                store_entry(self.ks.db(g.db), key, after.as_deref(), now);
                let tagged = self.tag_tx(txid);
                log_store(&mut self.ks, g.db, key, after.as_deref());
                if tagged {
                    self.ks.journal.set_tx_tag(0);
                }
                if !self.watches.is_empty() {
                    self.watches.touch(g.db as u16, key);
                }
            } else {
                let mut store = OwnedArgs::from_parts([key.as_slice()]);
                store.push(after.as_deref().unwrap_or(&[]));
                self.queue_raw(*owner, idx, slot, 0, g.db as u16, g.proto, Op::TxStore, txid, &store.view());
            }
        }
        self.tx.scratch = Some(scratch);
        conn.fill(g.hole, 0, &reply, &[], &mut self.rng);
        if let Some((spec, timeout_ms)) = waits {
            crate::blocking::block_across(self, idx, conn, spec, &g.cmd.view(), timeout_ms);
        }
    }

    /// The lock set of `cmds` per shard, ascending by shard. Database
    /// changes by SELECT inside a transaction are followed.
    fn lock_sets(&self, db: usize, cmds: &[OwnedArgs]) -> Vec<(usize, Footprint)> {
        let mut per_shard: Vec<Footprint> = (0..self.map.shards()).map(|_| Footprint::default()).collect();
        let mut db = db;
        for cmd in cmds {
            let args = cmd.view();
            let Some(spec) = self.table.lookup(args.get(0)) else { continue };
            let mode = Mode::of(spec);
            match spec.kind {
                Kind::AllShards { .. } => per_shard.iter_mut().for_each(|f| f.add_whole(mode)),
                Kind::Conn(coreshard_engine::ConnCmd::Select) => {
                    if let Some(n) = coreshard_engine::num::parse_i64(args.get(1))
                        && n >= 0
                        && (n as usize) < self.ks.databases()
                    {
                        db = n as usize;
                    }
                }
                Kind::Conn(_) => {}
                Kind::MultiKey { .. } | Kind::Keyed(_) | Kind::Blocking(_) => {
                    for i in command_keys(spec, &args).unwrap_or_else(|| spec.keys(&args).collect()) {
                        let key = args.get(i);
                        per_shard[self.map.key_owner(key)].add(db as u16, key, mode);
                    }
                }
            }
        }
        per_shard.into_iter().enumerate().filter(|(_, f)| !f.is_empty()).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_tx_message(&mut self, dest: usize, conn: u32, slot: u32, part: u16, op: Op, txid: u64, args: &Args) {
        self.queue_raw(dest, conn, slot, part, 0, coreshard_engine::Proto::Resp2, op, txid, args);
    }

    /// A reply batch from another shard carried an answer to one of this
    /// shard's transaction messages.
    pub(crate) fn on_tx_reply(&mut self, req: &Request, item: &[u8], items: &[&[u8]]) {
        if let Op::TxFetch = req.op {
            return self.on_fetch_reply(req.hole, req.part as usize, items);
        }
        if let Op::TxLock = req.op {
            let grant = match item.get(1) {
                Some(b'1') => Grant::Granted,
                Some(b'2') => Grant::WatchBroken,
                _ => Grant::Refused,
            };
            self.on_lock_reply(req.hole, req.part, grant, &mut None);
        }
    }
}

fn reply_request(
    conn: u32,
    hole: u32,
    part: u16,
    op: Op,
    txid: u64,
    out: std::ops::Range<usize>,
    ends: std::ops::Range<usize>,
) -> Request {
    Request {
        conn,
        hole,
        part,
        db: 0,
        proto: coreshard_engine::Proto::Resp2,
        op,
        args: 0..0,
        out,
        ends,
        txid,
        deferred: false,
    }
}

/// A key's value and TTL as a gather carries them: the expiry time (8 bytes,
/// little-endian), then the DUMP payload. None when the key is missing.
pub(crate) fn encode_entry(db: &mut Db, key: &[u8], now: UnixMs) -> Option<Vec<u8>> {
    let e = db.get(key, now)?;
    let mut out = e.expire_at().to_le_bytes().to_vec();
    out.extend_from_slice(&coreshard_engine::dump::dump(e.value()));
    Some(out)
}

/// Stores an `encode_entry` value at `key` (None: deletes the key).
pub(crate) fn store_entry(db: &mut Db, key: &[u8], value: Option<&[u8]>, now: UnixMs) {
    match value {
        Some(v) => decode_into(db, key, v, now),
        None => {
            db.remove(key, now);
        }
    }
}

/// Logs a key written back with [`store_entry`] as the value it now holds:
/// `RESTORE key <expire-at> <payload> REPLACE ABSTTL` (expire-at 0: no TTL),
/// or `DEL key` when it is gone. A write-back always changed the key.
pub(crate) fn log_store(ks: &mut Keyspace, db: usize, key: &[u8], value: Option<&[u8]>) {
    if !ks.journal.enabled() {
        return;
    }
    ks.log_pending_deletions();
    match value.map(|v| v.split_first_chunk::<8>()) {
        Some(Some((expire, payload))) => {
            let mut n = itoa::Buffer::new();
            let expire = n.format(UnixMs::from_le_bytes(*expire)).as_bytes();
            ks.journal.append(db, [&b"RESTORE"[..], key, expire, payload, b"REPLACE", b"ABSTTL"]);
        }
        // A value too short to hold its expiry was not stored either.
        Some(None) => debug_assert!(false, "a written-back value without its expiry"),
        None => ks.journal.append(db, [&b"DEL"[..], key]),
    }
}

fn decode_into(db: &mut Db, key: &[u8], v: &[u8], now: UnixMs) {
    let Some((expire, payload)) = v.split_first_chunk::<8>() else { return };
    match coreshard_engine::dump::restore(payload) {
        Some(value) => {
            db.set(key, value, UnixMs::from_le_bytes(*expire), now);
        }
        None => debug_assert!(false, "a gathered value does not decode"),
    }
}

/// The payload of a RESP bulk item (`$n\r\n...\r\n`); None for a null.
fn bulk_payload(item: &[u8]) -> Option<&[u8]> {
    if item.first() != Some(&b'$') || item.starts_with(b"$-1") {
        return None;
    }
    let nl = item.iter().position(|&b| b == b'\n')?;
    item.get(nl + 1..item.len().checked_sub(2)?)
}

/// Every key position of a command in `args`, including the keys that some
/// handlers find themselves (ZUNIONSTORE's and ZINTERSTORE's sources,
/// SORT's STORE destination). None when the keys cannot be known from the
/// arguments (SORT BY or GET patterns that read other keys).
pub(crate) fn command_keys(spec: &CommandSpec, args: &Args) -> Option<Vec<usize>> {
    let mut keys: Vec<usize> = spec.keys(args).collect();
    match spec.name {
        "zunionstore" | "zinterstore" => {
            let n = args.try_get(2).and_then(coreshard_engine::num::parse_i64)?;
            let n = usize::try_from(n).ok().filter(|n| 3usize.checked_add(*n).is_some_and(|e| e <= args.len()))?;
            keys.extend(3..3 + n);
        }
        "sort" | "sort_ro" => {
            let mut i = 2;
            while i + 1 < args.len() {
                if args.is(i, "STORE") {
                    keys.push(i + 1);
                } else if (args.is(i, "BY") || args.is(i, "GET")) && args.get(i + 1).contains(&b'*') {
                    return None;
                }
                i += 1;
            }
        }
        _ => {}
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coreshard_engine::value::Value;
    use coreshard_engine::{CommandTable, Proto};

    const NOW: UnixMs = 1_700_000_000_000;

    /// Reads one RESP header line (`*n` or `$n`) and returns n.
    fn header(rest: &mut &[u8]) -> usize {
        let end = rest.windows(2).position(|w| w == b"\r\n").expect("a line");
        let n = std::str::from_utf8(&rest[1..end]).expect("ascii").parse().expect("a length");
        *rest = &rest[end + 2..];
        n
    }

    /// Runs the journal's entries from `from` on `replica`, as its primary's
    /// stream, with the replica's clock an hour ahead.
    fn apply(journal: &coreshard_engine::journal::Journal, from: u64, replica: &mut Keyspace) {
        let mut bytes = Vec::new();
        journal.copy_from(from, usize::MAX, &mut bytes).expect("in the backlog");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let mut args = OwnedArgs::default();
            for _ in 0..header(&mut rest) {
                let len = header(&mut rest);
                args.push(&rest[..len]);
                rest = &rest[len + 2..];
            }
            if args.view().is(0, "SELECT") {
                continue;
            }
            let spec = CommandTable::get().lookup(args.view().get(0)).expect("a command");
            let (Kind::Keyed(h) | Kind::MultiKey { whole: h, .. }) = spec.kind else { panic!("{}", spec.name) };
            let mut out = Vec::new();
            let mut ctx = Ctx { ks: replica, db: 0, now: NOW + 3_600_000, args: args.view() };
            h(&mut ctx, &mut Reply::new(&mut out, Proto::Resp2));
            assert!(!out.starts_with(b"-"), "{}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn a_written_back_key_is_logged_as_restore_or_del_and_replays_to_itself() {
        let mut primary = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
        primary.set_journal_enabled(true);
        let mut replica = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
        replica.set_expiry_mode(coreshard_engine::ExpiryMode::Ignore);
        let mut gathered = Keyspace::new(1, coreshard_engine::slot::ShardSlots::all());
        gathered.db(0).set(b"l", Value::Str(b"v".to_vec()), NOW + 500, NOW);
        gathered.db(0).set(b"p", Value::Str(b"w".to_vec()), coreshard_engine::db::NO_EXPIRE, NOW);
        for key in [&b"l"[..], b"p"] {
            let value = encode_entry(gathered.db(0), key, NOW).expect("present");
            store_entry(primary.db(0), key, Some(&value), NOW);
            log_store(&mut primary, 0, key, Some(&value));
        }
        apply(&primary.journal, 0, &mut replica);
        for key in [&b"l"[..], b"p"] {
            assert_eq!(encode_entry(replica.db(0), key, NOW), encode_entry(primary.db(0), key, NOW));
        }
        assert_eq!(replica.db(0).get(b"l", NOW).map(|e| e.expire_at()), Some(NOW + 500));
        let from = primary.journal.end_lsn();
        store_entry(primary.db(0), b"l", None, NOW);
        log_store(&mut primary, 0, b"l", None);
        apply(&primary.journal, from, &mut replica);
        assert!(replica.db(0).get(b"l", NOW).is_none());
        assert_eq!(replica.db(0).len(), 1);
    }
}
