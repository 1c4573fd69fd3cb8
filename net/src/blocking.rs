//! Blocking commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX
//! BZMPOP, and CLIENT UNBLOCK.
//!
//! A blocking command whose keys share a shard runs on the shard that owns
//! them. (One whose keys live on several shards runs each try as a
//! transaction that gathers the keys on the client's shard, `tx.rs`; when it
//! must wait, every shard holding some of its keys keeps a notify-only
//! waiter and the first that sees one ready wakes the client to try again:
//! see [`Across`].) When a key has something to give it is served at once, like its
//! non-blocking form. Otherwise the client is *parked* on that owner shard,
//! in the owner's [`Registry`] of waiters, keyed by (database, key), in
//! arrival order. Its connection stays on its own shard (the origin), marked
//! [`Blocked`]: it runs nothing more of its pipeline until it is answered.
//!
//! ```text
//!   origin shard (the connection)                 owner shard (the keys)
//!   ─────────────────────────────                 ──────────────────────
//!   BLPOP k 0 ── Op::Block in a batch ──────────▶ attempt: served? reply
//!             ◀── batch reply: empty = parked ─── else park (db, k) -> waiter
//!                                                       │
//!                             LPUSH k x (any shard) ────┤ Db::set signals k ready
//!                                                       ▼ after the turn's commands:
//!             ◀── Event::Reply(bytes) ──────────────── retry waiters of k, FIFO
//!   close / CLIENT UNBLOCK ── Event::Cancel ──────▶ forget (or answer) the waiter
//! ```
//!
//! When the connection lives on the owner shard no message travels: the
//! waiter is parked inline and its reply is appended to the connection's
//! output. The reply of a parked command is always appended at the end of
//! the output, which is its place: the connection ran nothing after it.
//!
//! The engine tells which keys became ready (a watched key came to hold a
//! list or sorted set: [`coreshard_engine::Db::take_ready`], Redis's
//! `signalKeyAsReady`); once the turn's commands ran, the owner retries the
//! waiters of each ready key in arrival order, re-executing the command as
//! Redis 7.2 does (`handleClientsBlockedOnKeys`), and stops when the key is
//! gone. A served BLMOVE's push can make its destination ready, which is
//! served in the same pass. Timeouts are checked each turn and by a timer
//! armed while a waiter has a deadline.
//!
//! Only the owner decides whether a waiter was served, timed out or
//! cancelled, so a client is answered exactly once. A cancel crossing a
//! reply on the rings finds no waiter and does nothing; the reply then
//! reaches a connection that closed (its element is gone with it, as in
//! Redis when a client disconnects right after being served) or, for
//! CLIENT UNBLOCK, answers the client with what it was served.

use crate::batch::Msg;
use crate::conn::Conn;
use crate::shard::{Shard, UD_BLOCK_TIMER};
use coreshard_engine::cmd::{Attempt, Blocking, CROSS_SHARD, CommandSpec};
use coreshard_engine::{Args, Ctx, OwnedArgs, Proto, Reply};
use hashbrown::HashMap;
use io_uring::{opcode, types};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;

/// Clients that may wait on one key at once; a blocking command past it is
/// refused with [`TOO_MANY_WAITERS`] (each connection waits at most once, so
/// maxclients bounds the total).
pub const WAITERS_PER_KEY_MAX: usize = 65_536;
/// Rounds of serving ready keys per loop turn. A round can make more keys
/// ready (a BLMOVE's destination, the pushes of a woken client's pipeline);
/// what remains is served on the next turn.
pub const READY_ROUNDS_PER_TURN_MAX: usize = 64;
/// Longest the timeout timer sleeps while a waiter has a deadline, so a
/// deadline earlier than the one it was armed for is late by at most this.
pub const BLOCK_TIMER_MS_MAX: u64 = 50;
/// Shortest timer, so a deadline due now does not spin the loop.
const BLOCK_TIMER_MS_MIN: u64 = 1;

/// The error for a blocking command past [`WAITERS_PER_KEY_MAX`].
pub const TOO_MANY_WAITERS: &str = "ERR too many clients blocked on this key";
/// CLIENT UNBLOCK ... ERROR's reply to the unblocked client.
const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// A blocking command sent to the shard owning its keys ([`crate::batch::Op::Block`]).
#[derive(Clone, Copy)]
pub struct BlockRequest {
    /// The command.
    pub spec: &'static CommandSpec,
    /// The client's id, so replies and cancels find it and no other.
    pub client: u64,
    /// Inside EXEC: never wait, answer as a timeout at once (as Redis runs
    /// blocking commands in a transaction).
    pub no_wait: bool,
}

/// The state of a connection whose blocking command has not been answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The shard running the command.
    pub owner: usize,
    /// True once the owner parked it; false while the command travels there
    /// and its first answer travels back.
    pub parked: bool,
    /// A CLIENT UNBLOCK was sent for it.
    pub unblocking: bool,
}

/// How CLIENT UNBLOCK answers a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if it timed out: a null array.
    Timeout,
    /// With `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// A blocking message between shards ([`Msg::Blocking`]).
pub enum Event {
    /// Owner to origin: the reply of a parked command (served, timed out or
    /// unblocked), for connection slot `conn` if it still holds `client`.
    Reply {
        /// The connection's slot on the origin.
        conn: u32,
        /// Its client id.
        client: u64,
        /// The reply bytes.
        reply: Vec<u8>,
    },
    /// Origin to owner: tell the origin when one of this shard's keys of
    /// `args` can serve `client` (a command whose keys span shards).
    Notify {
        /// The connection's slot on the origin.
        conn: u32,
        /// Its client id.
        client: u64,
        /// The database.
        db: usize,
        /// The command.
        spec: &'static CommandSpec,
        /// Its arguments.
        args: OwnedArgs,
    },
    /// Owner to origin: a key `client` waits on can serve it now.
    Ready {
        /// The client id.
        client: u64,
    },
    /// Origin to owner: forget `client`'s waiter (it closed), or answer it
    /// as `unblock` says.
    Cancel {
        /// The client id.
        client: u64,
        /// CLIENT UNBLOCK's answer; None when the client closed.
        unblock: Option<Unblock>,
    },
}

/// A parked client.
struct Waiter {
    client: u64,
    /// The connection's shard and slot there.
    origin: usize,
    conn: u32,
    db: usize,
    proto: Proto,
    spec: &'static CommandSpec,
    blocking: Blocking,
    args: OwnedArgs,
    /// Monotonic ns; 0: none.
    deadline_ns: u64,
    /// For a command whose keys span shards: this shard's keys of it. The
    /// waiter is then only told about (`Event::Ready`), not served here.
    notify: Option<Vec<Box<[u8]>>>,
}

impl Waiter {
    /// The keys the waiter waits on.
    fn keys(&self) -> Vec<Box<[u8]>> {
        if let Some(keys) = &self.notify {
            return keys.clone();
        }
        let args = self.args.view();
        let keys = self.spec.keys(&args).map(|i| Box::<[u8]>::from(args.get(i)));
        if self.blocking.first_key_only { keys.take(1).collect() } else { keys.collect() }
    }
}

/// One shard's parked clients, and the blocking events it owes other shards.
pub struct Registry {
    waiters: HashMap<u64, Waiter>,
    /// Per database: the waiters of each key, in arrival order.
    by_key: Vec<HashMap<Box<[u8]>, VecDeque<u64>>>,
    by_client: HashMap<u64, u64>,
    /// (deadline ns, waiter) of the waiters with a timeout.
    deadlines: BTreeSet<(u64, u64)>,
    next_id: u64,
    /// Events for each shard, sent at the end of the turn.
    outbox: Vec<Vec<Event>>,
    /// Local connections answered this turn, to resume their pipelines.
    woken: Vec<u32>,
    /// The timeout timer's duration; the kernel reads it when the timer is submitted.
    timer: Box<types::Timespec>,
    timer_armed: bool,
    /// This shard's clients blocked on keys of several shards, by client id.
    across: HashMap<u64, Across>,
    /// (deadline ns, client) of those with a timeout.
    across_deadlines: BTreeSet<(u64, u64)>,
    /// Waiters here that only notify another shard's client (not counted as blocked here).
    notifying: usize,
    /// This shard's clients blocked across shards whose key became ready.
    ready_here: Vec<u64>,
}

/// A client of this shard blocked by a command whose keys live on several
/// shards. Every shard holding some of its keys keeps a notify-only waiter;
/// the first to see one of them ready wakes it, and the command runs again
/// as a transaction (it may find nothing and wait again).
pub(crate) struct Across {
    conn: u32,
    args: OwnedArgs,
    proto: Proto,
    /// Shards holding a notify-only waiter for it.
    owners: Vec<usize>,
    /// Monotonic ns; 0: none.
    deadline_ns: u64,
}

impl Registry {
    /// An empty registry for a server of `shards` shards and `databases` databases.
    pub fn new(shards: usize, databases: usize) -> Self {
        Registry {
            waiters: HashMap::new(),
            by_key: (0..databases).map(|_| HashMap::new()).collect(),
            by_client: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_id: 0,
            outbox: (0..shards).map(|_| Vec::new()).collect(),
            woken: Vec::new(),
            timer: Box::new(types::Timespec::new()),
            timer_armed: false,
            across: HashMap::new(),
            across_deadlines: BTreeSet::new(),
            notifying: 0,
            ready_here: Vec::new(),
        }
    }

    /// True when there is nothing to do at the end of a turn.
    fn idle(&self) -> bool {
        self.waiters.is_empty()
            && self.woken.is_empty()
            && self.across.is_empty()
            && self.outbox.iter().all(Vec::is_empty)
    }
}

/// The reply a waiter gets when it times out (Redis 7 answers every blocking
/// command, BLMOVE included, with a null array) or is unblocked.
fn unblock_reply(proto: Proto, how: Unblock) -> Vec<u8> {
    let mut out = Vec::new();
    let mut r = Reply::new(&mut out, proto);
    match how {
        Unblock::Timeout => r.null_array(),
        Unblock::Error => r.error(UNBLOCKED),
    }
    out
}

/// Runs blocking command `spec` for `conn` (connection slot `idx` of this
/// shard): served here, sent to the shard owning its keys, or parked.
pub(crate) fn dispatch(
    shard: &mut Shard,
    idx: u32,
    conn: &mut Conn,
    spec: &'static CommandSpec,
    blocking: Blocking,
    args: Args,
) {
    let owner = match args.try_get(spec.first_key.max(0) as usize) {
        Some(key) if spec.first_key > 0 => shard.map.key_owner(key),
        _ => shard.id,
    };
    if shard.map.shards() > 1 && spec.keys(&args).any(|i| shard.map.key_owner(args.get(i)) != owner) {
        // Keys on several shards: each try runs as a transaction that
        // gathers the keys here (tx.rs); a client that must wait is woken
        // by any of the keys' shards and tries again (see `Across`).
        if conn.txid != 0 {
            let keys = spec.keys(&args).collect();
            return shard.start_gather(idx, conn, crate::tx::Run::Attempt(spec, blocking), keys, args);
        }
        if shard.atomic_multi_shard() {
            return shard.start_tx(idx, conn, vec![owned(&args)], false);
        }
        shard.counters.errors += 1;
        return conn.reply().error(CROSS_SHARD);
    }
    // Inside EXEC a blocking command does not block: no data is a timeout.
    let no_wait = conn.in_exec;
    if owner != shard.id {
        // The pipeline stops here until the owner answers, whether it serves
        // the command at once or parks it.
        let hole = conn.open_hole(1, crate::conn::Acc::Single(Vec::new()));
        if !no_wait {
            conn.blocked = Some(Blocked { owner, parked: false, unblocking: false });
        }
        let op = crate::batch::Op::Block(BlockRequest { spec, client: conn.id, no_wait });
        return shard.queue_request(owner, idx, conn, hole, 0, args, op);
    }
    let (db, proto, client) = (conn.db, conn.proto, conn.id);
    crate::repl::primary::before_command(shard, &args);
    let dirty = shard.ks.stats.dirty;
    let mut ctx = Ctx { ks: &mut shard.ks, db, now: shard.now_ms, args };
    let start = conn.out.len();
    let attempt = (blocking.attempt)(&mut ctx, &mut Reply::new(&mut conn.out, proto));
    ctx.log(dirty);
    let Attempt::Block { timeout_ms } = attempt else {
        return;
    };
    debug_assert_eq!(conn.out.len(), start, "a blocking attempt that waits writes nothing");
    if no_wait {
        return conn.reply().null_array();
    }
    let waiter = Waiter {
        client,
        origin: shard.id,
        conn: idx,
        db,
        proto,
        spec,
        blocking,
        args: owned(&args),
        deadline_ns: 0,
        notify: None,
    };
    match park(shard, waiter, timeout_ms) {
        Ok(()) => conn.blocked = Some(Blocked { owner, parked: true, unblocking: false }),
        Err(e) => {
            shard.counters.errors += 1;
            conn.reply().error(e);
        }
    }
}

/// Runs a blocking command another shard sent (`from`, its connection slot
/// `conn`): the reply goes to `out`, or nothing when the client was parked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_for_peer(
    shard: &mut Shard,
    from: usize,
    conn: u32,
    db: usize,
    proto: Proto,
    args: Args,
    out: &mut Vec<u8>,
    req: BlockRequest,
) {
    let coreshard_engine::Kind::Blocking(blocking) = req.spec.kind else {
        debug_assert!(false, "Op::Block for a command that does not block");
        return;
    };
    crate::repl::primary::before_command(shard, &args);
    let dirty = shard.ks.stats.dirty;
    let mut ctx = Ctx { ks: &mut shard.ks, db, now: shard.now_ms, args };
    let start = out.len();
    let attempt = (blocking.attempt)(&mut ctx, &mut Reply::new(out, proto));
    ctx.log(dirty);
    let Attempt::Block { timeout_ms } = attempt else {
        return;
    };
    debug_assert_eq!(out.len(), start, "a blocking attempt that waits writes nothing");
    if req.no_wait {
        return Reply::new(out, proto).null_array();
    }
    let waiter = Waiter {
        client: req.client,
        origin: from,
        conn,
        db,
        proto,
        spec: req.spec,
        blocking,
        args: owned(&args),
        deadline_ns: 0,
        notify: None,
    };
    if let Err(e) = park(shard, waiter, timeout_ms) {
        shard.counters.errors += 1;
        Reply::new(out, proto).error(e);
    }
}

fn owned(args: &Args) -> OwnedArgs {
    OwnedArgs::from_parts(args.iter_from(0))
}

/// Parks `w` on every key it waits on, with a deadline `timeout_ms` from now (0: none).
fn park(shard: &mut Shard, mut w: Waiter, timeout_ms: u64) -> Result<(), &'static str> {
    let keys = w.keys();
    debug_assert!(!keys.is_empty(), "a blocking command that waits on no key");
    let reg = &mut shard.blocking;
    let Some(queues) = reg.by_key.get_mut(w.db) else {
        debug_assert!(false, "a waiter in a database that does not exist");
        return Err(TOO_MANY_WAITERS);
    };
    if keys.iter().any(|k| queues.get(k).is_some_and(|q| q.len() >= WAITERS_PER_KEY_MAX)) {
        tracing::warn!(
            shard = shard.id,
            client = w.client,
            "refused a blocking command: {WAITERS_PER_KEY_MAX} clients wait on its key"
        );
        return Err(TOO_MANY_WAITERS);
    }
    let id = reg.next_id;
    reg.next_id += 1;
    for key in keys {
        let queue = queues.entry(key).or_insert_with_key(|key| {
            shard.ks.db(w.db).watch(key);
            VecDeque::new()
        });
        // A key named twice (BLPOP k k 0) is waited on once.
        if queue.back() != Some(&id) {
            queue.push_back(id);
        }
    }
    if timeout_ms > 0 {
        let now = crate::runtime::monotonic_ns();
        w.deadline_ns = now.saturating_add(timeout_ms.saturating_mul(1_000_000));
        reg.deadlines.insert((w.deadline_ns, id));
    }
    let stale = reg.by_client.insert(w.client, id);
    debug_assert!(stale.is_none(), "a client parked twice");
    reg.notifying += w.notify.is_some() as usize;
    reg.waiters.insert(id, w);
    publish(shard);
    Ok(())
}

/// Removes waiter `id` from every key and table.
fn unpark(shard: &mut Shard, id: u64) -> Option<Waiter> {
    let reg = &mut shard.blocking;
    let w = reg.waiters.remove(&id)?;
    reg.by_client.remove(&w.client);
    reg.notifying -= w.notify.is_some() as usize;
    if w.deadline_ns > 0 {
        reg.deadlines.remove(&(w.deadline_ns, id));
    }
    if let Some(queues) = reg.by_key.get_mut(w.db) {
        for key in w.keys() {
            let Some(queue) = queues.get_mut(&key) else { continue };
            queue.retain(|&q| q != id);
            if queue.is_empty() {
                queues.remove(&key);
                shard.ks.db(w.db).unwatch(&key);
            }
        }
    }
    publish(shard);
    Some(w)
}

/// Publishes this shard's waiter counts (INFO blocked_clients, clients_in_timeout_table).
fn publish(shard: &Shard) {
    let s = &shard.shared.stats[shard.id];
    let reg = &shard.blocking;
    s.blocked_clients.store((reg.waiters.len() - reg.notifying + reg.across.len()) as u64, Relaxed);
    s.clients_in_timeout_table.store((reg.deadlines.len() + reg.across_deadlines.len()) as u64, Relaxed);
}

/// Sends waiter `w`'s reply to its connection: appended here when it is
/// local, else in an event to its shard.
fn deliver(shard: &mut Shard, w: &Waiter, reply: Vec<u8>) {
    if w.origin == shard.id {
        reply_local(shard, w.conn, w.client, &reply);
    } else {
        shard.blocking.outbox[w.origin].push(Event::Reply { conn: w.conn, client: w.client, reply });
    }
}

/// Appends the reply of a blocked command to connection slot `idx` if it
/// still holds `client`, and queues it to resume its pipeline.
fn reply_local(shard: &mut Shard, idx: u32, client: u64, reply: &[u8]) {
    match shard.conns.get_mut(idx as usize).and_then(Option::as_mut) {
        Some(c) if c.id == client && c.blocked.is_some() => {
            c.out.extend_from_slice(reply);
            c.blocked = None;
            c.blocked_since_ns = None;
            shard.blocking.woken.push(idx);
        }
        _ => tracing::debug!(shard = shard.id, client, "a blocked client left before its reply"),
    }
}

/// The end-of-turn step: serves the waiters whose keys became ready (and the
/// pipelines of the clients that were answered), answers those whose
/// timeout passed, arms the timer, and sends the turn's blocking events.
pub(crate) fn after_commands(shard: &mut Shard) {
    if shard.blocking.idle() {
        return;
    }
    let mut rounds = 0;
    loop {
        for client in std::mem::take(&mut shard.blocking.ready_here) {
            on_ready(shard, client);
        }
        let served_keys = serve_ready(shard);
        let woken = std::mem::take(&mut shard.blocking.woken);
        let resumed = !woken.is_empty();
        for idx in woken {
            shard.process_input(idx, None);
        }
        if !served_keys && !resumed {
            break;
        }
        rounds += 1;
        if rounds == READY_ROUNDS_PER_TURN_MAX {
            // Keys are still ready: make sure another turn comes soon.
            tracing::debug!(shard = shard.id, "blocked clients left to serve on the next turn");
            shard.shared.wake(shard.id);
            break;
        }
    }
    expire(shard);
    for idx in std::mem::take(&mut shard.blocking.woken) {
        shard.process_input(idx, None);
    }
    arm_timer(shard);
    flush(shard);
}

/// One round over the keys that became ready; false when there were none.
fn serve_ready(shard: &mut Shard) -> bool {
    let mut ready: Vec<(usize, Box<[u8]>)> = Vec::new();
    let mut keys = Vec::new();
    for db in 0..shard.ks.databases() {
        if shard.ks.db_ref(db).has_ready() {
            shard.ks.db(db).take_ready(&mut keys);
            ready.extend(keys.drain(..).map(|k| (db, k)));
        }
    }
    if ready.is_empty() {
        return false;
    }
    for (db, key) in ready {
        // Only the waiters there now: a retried client that waits again is
        // not retried twice for one signal.
        let queue = shard.blocking.by_key.get(db).and_then(|keys| keys.get(&key));
        let Some(ids) = queue.map(|q| q.iter().copied().collect::<Vec<u64>>()) else {
            continue;
        };
        for id in ids {
            match shard.ks.db_ref(db).peek(&key, shard.now_ms) {
                None => break,
                Some(entry) => {
                    // A client blocked for a list ignores a sorted set, and the reverse.
                    let accepts = shard.blocking.waiters.get(&id).is_some_and(|w| w.blocking.on.accepts(entry.value()));
                    if !accepts {
                        continue;
                    }
                }
            }
            retry(shard, id);
        }
    }
    true
}

/// Re-executes waiter `id`'s command; answers and removes it when served.
fn retry(shard: &mut Shard, id: u64) {
    let Some(w) = shard.blocking.waiters.get(&id) else { return };
    if w.notify.is_some() {
        if let Some(w) = unpark(shard, id) {
            notify_ready(shard, w.origin, w.client);
        }
        return;
    }
    if !shard.repl.snapshots.is_empty() {
        let args = w.args.clone();
        crate::repl::primary::before_command(shard, &args.view());
    }
    let Some(w) = shard.blocking.waiters.get(&id) else { return };
    let mut out = Vec::new();
    let dirty = shard.ks.stats.dirty;
    let mut ctx = Ctx { ks: &mut shard.ks, db: w.db, now: shard.now_ms, args: w.args.view() };
    let attempt = (w.blocking.attempt)(&mut ctx, &mut Reply::new(&mut out, w.proto));
    ctx.log(dirty);
    if let Attempt::Block { .. } = attempt {
        debug_assert!(out.is_empty(), "a blocking attempt that waits writes nothing");
        return;
    }
    if let Some(w) = unpark(shard, id) {
        deliver(shard, &w, out);
    }
}

/// Answers the waiters whose deadline passed with the timeout reply.
fn expire(shard: &mut Shard) {
    let now = crate::runtime::monotonic_ns();
    while let Some(&(deadline, client)) = shard.blocking.across_deadlines.first() {
        if deadline > now {
            break;
        }
        shard.blocking.across_deadlines.pop_first();
        if let Some(a) = end_across(shard, client) {
            let reply = unblock_reply(a.proto, Unblock::Timeout);
            reply_local(shard, a.conn, client, &reply);
        }
    }
    while let Some(&(deadline, id)) = shard.blocking.deadlines.first() {
        if deadline > now {
            break;
        }
        match unpark(shard, id) {
            Some(w) => {
                let reply = unblock_reply(w.proto, Unblock::Timeout);
                deliver(shard, &w, reply);
            }
            None => {
                shard.blocking.deadlines.pop_first();
            }
        }
    }
}

/// Arms the timeout timer for the earliest deadline (at most
/// [`BLOCK_TIMER_MS_MAX`] away) when a waiter has one and no timer is armed.
fn arm_timer(shard: &mut Shard) {
    let reg = &mut shard.blocking;
    let first = reg.deadlines.first().map(|d| d.0);
    let first_across = reg.across_deadlines.first().map(|d| d.0);
    let Some(deadline) = first.into_iter().chain(first_across).min() else { return };
    if reg.timer_armed {
        return;
    }
    let now = crate::runtime::monotonic_ns();
    let ms = (deadline.saturating_sub(now).div_ceil(1_000_000)).clamp(BLOCK_TIMER_MS_MIN, BLOCK_TIMER_MS_MAX);
    // Rewritten only while no timer is armed; the box lives as long as the
    // shard, as push_sqe's safety argument requires.
    *reg.timer = types::Timespec::new().nsec((ms * 1_000_000) as u32);
    reg.timer_armed = true;
    let sqe = opcode::Timeout::new(&*reg.timer as *const types::Timespec).build().user_data(UD_BLOCK_TIMER);
    shard.push_sqe(&sqe);
}

/// The timeout timer fired.
pub(crate) fn on_timer(shard: &mut Shard) {
    shard.blocking.timer_armed = false;
    expire(shard);
}

/// Sends the turn's events, each after the requests already queued for the
/// same shard (a cancel must not overtake the command it cancels).
fn flush(shard: &mut Shard) {
    for dest in 0..shard.blocking.outbox.len() {
        if shard.blocking.outbox[dest].is_empty() {
            continue;
        }
        let events = std::mem::take(&mut shard.blocking.outbox[dest]);
        if !shard.outgoing[dest].is_empty() {
            shard.send_batch(dest);
        }
        shard.send_msg(dest, Msg::Blocking(events));
    }
}

/// Takes in blocking events from shard `from`.
pub(crate) fn on_events(shard: &mut Shard, from: usize, events: Vec<Event>) {
    for event in events {
        match event {
            Event::Reply { conn, client, reply } => reply_local(shard, conn, client, &reply),
            Event::Notify { conn, client, db, spec, args } => {
                register_notify(shard, from, conn, client, db, spec, args)
            }
            Event::Ready { client } => on_ready(shard, client),
            Event::Cancel { client, unblock } => {
                let Some(&id) = shard.blocking.by_client.get(&client) else {
                    // Served (or timed out) before the cancel arrived: its reply is on the way.
                    continue;
                };
                if let Some(w) = unpark(shard, id) {
                    debug_assert_eq!(w.origin, from);
                    if let Some(how) = unblock {
                        deliver(shard, &w, unblock_reply(w.proto, how));
                    }
                }
            }
        }
    }
}

/// The first answer to a blocking command sent to another shard: empty
/// when the client was parked there. Called before the answer fills its hole.
pub(crate) fn answered(conn: &mut Conn, reply: &[u8]) {
    if let Some(b) = conn.blocked.as_mut()
        && !b.parked
    {
        if reply.is_empty() {
            b.parked = true;
        } else {
            conn.blocked = None;
        }
    }
}

/// Connection slot `idx` is closing: its waiter, if any, is forgotten, here
/// or by a cancel to the shard it waits on.
pub(crate) fn on_close(shard: &mut Shard, idx: u32) {
    let Some(conn) = shard.conns.get_mut(idx as usize).and_then(Option::as_mut) else { return };
    let Some(b) = conn.blocked.take() else { return };
    let client = conn.id;
    if b.owner == shard.id {
        if let Some(&id) = shard.blocking.by_client.get(&client) {
            unpark(shard, id);
        }
        end_across(shard, client);
    } else {
        shard.blocking.outbox[b.owner].push(Event::Cancel { client, unblock: None });
    }
}

/// CLIENT UNBLOCK on this shard's connections (arguments as the client sent
/// them, checked already): 1 when the client is blocked here and was
/// unblocked, else 0.
pub(crate) fn unblock_local(shard: &mut Shard, args: Args) -> i64 {
    let Some(client) = coreshard_engine::num::parse_i64(args.get(2)).and_then(|id| u64::try_from(id).ok()) else {
        return 0;
    };
    let how = if args.is(3, "ERROR") { Unblock::Error } else { Unblock::Timeout };
    let Some(idx) = shard.conns.iter().position(|c| c.as_ref().is_some_and(|c| c.id == client)) else { return 0 };
    let Some(conn) = shard.conns[idx].as_mut() else { return 0 };
    let Some(b) = conn.blocked.as_mut() else { return 0 };
    if b.unblocking {
        return 0;
    }
    if b.owner != shard.id {
        // The owner answers the client, unless it served it meanwhile.
        b.unblocking = true;
        let owner = b.owner;
        shard.blocking.outbox[owner].push(Event::Cancel { client, unblock: Some(how) });
        return 1;
    }
    if let Some(a) = end_across(shard, client) {
        reply_local(shard, a.conn, client, &unblock_reply(a.proto, how));
        return 1;
    }
    let Some(&id) = shard.blocking.by_client.get(&client) else { return 0 };
    match unpark(shard, id) {
        Some(w) => {
            deliver(shard, &w, unblock_reply(w.proto, how));
            1
        }
        None => 0,
    }
}

/// Tells client `client` of shard `origin` that a key it waits on is ready.
fn notify_ready(shard: &mut Shard, origin: usize, client: u64) {
    if origin == shard.id {
        // Tried at the end of the turn, when no connection is being executed.
        shard.blocking.ready_here.push(client);
    } else {
        shard.blocking.outbox[origin].push(Event::Ready { client });
    }
}

/// A try of a command whose keys span shards found nothing: connection
/// `idx` now waits, and every shard holding some of its keys will tell it
/// when one can serve it. `timeout_ms` counts from the first try only.
pub(crate) fn block_across(
    shard: &mut Shard,
    idx: u32,
    conn: &mut Conn,
    spec: &'static CommandSpec,
    args: &Args,
    timeout_ms: u64,
) {
    let client = conn.id;
    let deadline_ns = match conn.blocked_since_ns {
        _ if timeout_ms == 0 => 0,
        Some(since) => since.saturating_add(timeout_ms.saturating_mul(1_000_000)),
        None => crate::runtime::monotonic_ns().saturating_add(timeout_ms.saturating_mul(1_000_000)),
    };
    conn.blocked_since_ns.get_or_insert_with(crate::runtime::monotonic_ns);
    let mut owners: Vec<usize> = spec.keys(args).map(|i| shard.map.key_owner(args.get(i))).collect();
    owners.sort_unstable();
    owners.dedup();
    conn.blocked = Some(Blocked { owner: shard.id, parked: true, unblocking: false });
    let a = Across { conn: idx, args: owned(args), proto: conn.proto, owners: owners.clone(), deadline_ns };
    if deadline_ns > 0 {
        shard.blocking.across_deadlines.insert((deadline_ns, client));
    }
    shard.blocking.across.insert(client, a);
    for owner in owners {
        if owner == shard.id {
            register_notify(shard, owner, idx, client, conn.db, spec, owned(args));
        } else {
            let ev = Event::Notify { conn: idx, client, db: conn.db, spec, args: owned(args) };
            shard.blocking.outbox[owner].push(ev);
        }
    }
    publish(shard);
}

/// Registers a notify-only waiter for this shard's keys of a command whose
/// keys span shards; tells its client at once when one is ready already (a
/// push may have come between its try and this registration).
fn register_notify(
    shard: &mut Shard,
    origin: usize,
    conn: u32,
    client: u64,
    db: usize,
    spec: &'static CommandSpec,
    args: OwnedArgs,
) {
    let coreshard_engine::Kind::Blocking(blocking) = spec.kind else { return };
    let view = args.view();
    let mut keys: Vec<Box<[u8]>> = Vec::new();
    for i in spec.keys(&view) {
        let key = view.get(i);
        if shard.map.key_owner(key) == shard.id && !keys.iter().any(|k| &**k == key) {
            keys.push(key.into());
        }
        if blocking.first_key_only {
            break;
        }
    }
    if keys.is_empty() {
        return;
    }
    let now = shard.now_ms;
    let ready = keys.iter().any(|k| shard.ks.db_ref(db).peek(k, now).is_some_and(|e| blocking.on.accepts(e.value())));
    if ready {
        return notify_ready(shard, origin, client);
    }
    let proto = Proto::Resp2;
    let w = Waiter { client, origin, conn, db, proto, spec, blocking, args, deadline_ns: 0, notify: Some(keys) };
    if park(shard, w, 0).is_err() {
        // Too many waiters on a key: let the client try again now.
        notify_ready(shard, origin, client);
    }
}

/// A key that client `client` (of this shard) waits on became ready: stop
/// waiting everywhere and try the command again.
fn on_ready(shard: &mut Shard, client: u64) {
    let Some(a) = end_across(shard, client) else { return };
    let idx = a.conn;
    let Some(mut conn) = shard.conns.get_mut(idx as usize).and_then(Option::take) else { return };
    if conn.id == client && conn.blocked.take().is_some() {
        shard.start_tx(idx, &mut conn, vec![a.args], false);
    }
    shard.conns[idx as usize] = Some(conn);
    shard.continue_conn(idx);
}

/// Forgets client `client`'s wait on keys of several shards (its
/// notify-only waiters here and on the other shards).
fn end_across(shard: &mut Shard, client: u64) -> Option<Across> {
    let a = shard.blocking.across.remove(&client)?;
    if a.deadline_ns > 0 {
        shard.blocking.across_deadlines.remove(&(a.deadline_ns, client));
    }
    for &owner in &a.owners {
        if owner == shard.id {
            if let Some(&id) = shard.blocking.by_client.get(&client) {
                unpark(shard, id);
            }
        } else {
            shard.blocking.outbox[owner].push(Event::Cancel { client, unblock: None });
        }
    }
    publish(shard);
    Some(a)
}
