//! MULTI, EXEC, DISCARD, WATCH and UNWATCH.
//!
//! Commands after MULTI are checked (unknown commands, arity, ...) and
//! queued; EXEC runs them as one transaction (`tx`), atomic across shards.
//! WATCH registers the client on each key's owner shard; a write that
//! changes a watched key there breaks the watch, and EXEC, which locks the
//! watched keys with the others, finds that out from the lock replies and
//! answers a null array instead of running anything.

use crate::batch::Op;
use crate::conn::{Acc, Conn, PartResult};
use crate::shard::Shard;
use coreshard_engine::cmd::{CommandSpec, Kind, Merge};
use coreshard_engine::{Args, ConnCmd, OwnedArgs};
use hashbrown::{HashMap, HashSet};

/// Commands queued since MULTI.
#[derive(Default)]
pub(crate) struct Queued {
    cmds: Vec<OwnedArgs>,
    bytes: usize,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    aborted: bool,
}

impl Queued {
    /// Commands queued.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// The queued commands.
    pub fn cmds(&self) -> &[OwnedArgs] {
        &self.cmds
    }

    /// True when a command was refused while queueing.
    pub fn aborted(&self) -> bool {
        self.aborted
    }
}

/// Marks the open transaction of `conn`, if any, as failed (a command was
/// refused while queueing), as Redis's flagTransaction does.
pub(crate) fn flag(conn: &mut Conn) {
    if let Some(m) = conn.multi.as_mut() {
        m.aborted = true;
    }
}

/// Queues a command after MULTI. Returns false for the commands that run
/// at once even then (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
pub(crate) fn queue(shard: &Shard, conn: &mut Conn, spec: &CommandSpec, args: &Args) -> bool {
    use ConnCmd::*;
    if matches!(spec.kind, Kind::Conn(Exec | Discard | Multi | Watch | Quit | Reset)) {
        return false;
    }
    let limit = shard.config.client_query_buffer_limit as usize;
    let Some(m) = conn.multi.as_mut() else { return false };
    let size: usize = args.iter_from(0).map(|a| a.len() + 16).sum();
    if m.bytes + size > limit {
        m.aborted = true;
        conn.reply().error("ERR transaction is too large: queued commands exceed client-query-buffer-limit");
        return true;
    }
    m.bytes += size;
    m.cmds.push(OwnedArgs::from_parts(args.iter_from(0)));
    conn.reply().simple("QUEUED");
    true
}

/// Runs MULTI, EXEC, DISCARD, WATCH or UNWATCH.
pub(crate) fn run(shard: &mut Shard, idx: u32, conn: &mut Conn, cmd: ConnCmd, args: Args) {
    match cmd {
        ConnCmd::Multi => {
            if conn.multi.is_some() {
                return conn.reply().error("ERR MULTI calls can not be nested");
            }
            conn.multi = Some(Box::default());
            conn.reply().ok();
        }
        ConnCmd::Discard => {
            if conn.multi.take().is_none() {
                return conn.reply().error("ERR DISCARD without MULTI");
            }
            unwatch_all(shard, idx, conn);
            conn.reply().ok();
        }
        ConnCmd::Exec => {
            let Some(m) = conn.multi.take() else {
                return conn.reply().error("ERR EXEC without MULTI");
            };
            if m.aborted {
                unwatch_all(shard, idx, conn);
                return conn.reply().error("EXECABORT Transaction discarded because of previous errors.");
            }
            shard.start_tx(idx, conn, m.cmds, true);
        }
        ConnCmd::Watch => {
            if conn.multi.is_some() {
                return conn.reply().error("ERR WATCH inside MULTI is not allowed");
            }
            watch(shard, idx, conn, args);
        }
        ConnCmd::Unwatch => {
            unwatch_all(shard, idx, conn);
            conn.reply().ok();
        }
        _ => debug_assert!(false, "not a transaction command"),
    }
}

/// WATCH key [key ...]: registers the keys with their shards; +OK once all did.
fn watch(shard: &mut Shard, idx: u32, conn: &mut Conn, args: Args) {
    let id = conn.id.to_string();
    let mut per_shard: Vec<Vec<&[u8]>> = vec![Vec::new(); shard.map.shards()];
    for key in args.iter_from(1) {
        per_shard[shard.map.key_owner(key)].push(key);
    }
    let targets: Vec<usize> = (0..per_shard.len()).filter(|&s| !per_shard[s].is_empty()).collect();
    let parts = (0..targets.len()).map(|_| PartResult::default()).collect();
    let hole = conn
        .open_hole(targets.len() as u32, Acc::Parts { merge: Merge::Ok, proto: conn.proto, order: Vec::new(), parts });
    for (p, &s) in targets.iter().enumerate() {
        if !conn.watching.contains(&(s as u16)) {
            conn.watching.push(s as u16);
        }
        let mut part = OwnedArgs::from_parts([id.as_bytes()]);
        for key in &per_shard[s] {
            part.push(key);
        }
        shard.run_part(s, idx, conn, hole, p as u16, part.view(), Op::Watch);
    }
}

/// Forgets every key the connection watches (UNWATCH, EXEC, DISCARD,
/// RESET, disconnection).
pub(crate) fn unwatch_all(shard: &mut Shard, idx: u32, conn: &mut Conn) {
    unwatch_shards(shard, idx, conn.id, std::mem::take(&mut conn.watching));
}

/// Forgets client `client`'s watches on `shards`.
pub(crate) fn unwatch_shards(shard: &mut Shard, idx: u32, client: u64, shards: Vec<u16>) {
    let args = OwnedArgs::from_parts([client.to_string()]);
    for s in shards {
        let s = s as usize;
        if s == shard.id {
            shard.watches.unwatch(client);
        } else {
            shard.queue_raw(s, idx, 0, 0, 0, coreshard_engine::Proto::Resp2, Op::Unwatch, 0, &args.view());
        }
    }
}

/// A key of one database: (database, key).
type DbKey = (u16, Box<[u8]>);

/// One watched key's registration.
struct Watcher {
    client: u64,
    /// The key existed when watched: it expiring (or being evicted) since
    /// then also breaks the watch, as in Redis.
    existed: bool,
}

/// The watched keys of one shard and the clients whose watch broke.
#[derive(Default)]
pub(crate) struct Watches {
    by_key: HashMap<DbKey, Vec<Watcher>>,
    by_client: HashMap<u64, Vec<DbKey>>,
    broken: HashSet<u64>,
}

impl Watches {
    /// True when no key is watched here.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Registers `client`'s watch of `key` in database `db`.
    pub fn watch(&mut self, client: u64, db: u16, key: &[u8], existed: bool) {
        let k = (db, Box::<[u8]>::from(key));
        let list = self.by_key.entry(k.clone()).or_default();
        if list.iter().any(|w| w.client == client) {
            return;
        }
        list.push(Watcher { client, existed });
        self.by_client.entry(client).or_default().push(k);
    }

    /// Forgets `client`'s watches here.
    pub fn unwatch(&mut self, client: u64) {
        self.broken.remove(&client);
        for k in self.by_client.remove(&client).unwrap_or_default() {
            if let Some(list) = self.by_key.get_mut(&k) {
                list.retain(|w| w.client != client);
                if list.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    /// The keys `client` watches here.
    pub fn keys_of(&self, client: u64) -> Vec<DbKey> {
        self.by_client.get(&client).cloned().unwrap_or_default()
    }

    /// A write changed `key`: breaks the watches on it.
    pub fn touch(&mut self, db: u16, key: &[u8]) {
        if let Some(list) = self.by_key.get(&(db, Box::<[u8]>::from(key))) {
            self.broken.extend(list.iter().map(|w| w.client));
        }
    }

    /// A write over whole databases (FLUSHDB, FLUSHALL, SWAPDB): breaks every watch.
    pub fn touch_all(&mut self) {
        self.broken.extend(self.by_client.keys().copied());
    }

    /// True when `client`'s watch here broke: a watched key was written,
    /// or a key that existed when watched is gone (`exists` tells).
    pub fn is_broken(&self, client: u64, mut exists: impl FnMut(u16, &[u8]) -> bool) -> bool {
        if self.broken.contains(&client) {
            return true;
        }
        let Some(keys) = self.by_client.get(&client) else { return false };
        keys.iter().any(|k| {
            self.by_key
                .get(k)
                .is_some_and(|list| list.iter().any(|w| w.client == client && w.existed && !exists(k.0, &k.1)))
        })
    }
}

impl Shard {
    /// Runs a WATCH part here: registers client `args[0]`'s keys `args[1..]`.
    pub(crate) fn watch_part(&mut self, db: usize, args: &Args) {
        let Some(client) = args.try_get(0).and_then(coreshard_engine::num::parse_u64) else {
            debug_assert!(false, "watch part without a client id");
            return;
        };
        let now = self.now_ms;
        for key in args.iter_from(1) {
            let existed = self.ks.db(db).contains(key, now);
            self.watches.watch(client, db as u16, key, existed);
        }
    }

    /// Runs an UNWATCH message here.
    pub(crate) fn unwatch_part(&mut self, args: &Args) {
        if let Some(client) = args.try_get(0).and_then(coreshard_engine::num::parse_u64) {
            self.watches.unwatch(client);
        }
    }

    /// After a write that changed the keyspace: breaks watches on its keys.
    pub(crate) fn touch_watched(&mut self, db: usize, args: &Args) {
        let Some(spec) = args.try_get(0).and_then(|n| self.table.lookup(n)) else { return };
        match spec.kind {
            Kind::AllShards { .. } => self.watches.touch_all(),
            Kind::MultiKey { .. } => {
                for i in spec.key_positions(args.len()) {
                    self.watches.touch(db as u16, args.get(i));
                }
            }
            _ => {
                for i in spec.keys(args) {
                    self.watches.touch(db as u16, args.get(i));
                }
            }
        }
    }

    /// Whether `client`'s watch on this shard broke.
    pub(crate) fn watch_broken(&mut self, client: u64) -> bool {
        let now = self.now_ms;
        let Shard { watches, ks, .. } = self;
        watches.is_broken(client, |db, key| ks.db(db as usize).contains(key, now))
    }
}
