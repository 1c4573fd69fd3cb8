//! The keyspace of one shard: its databases over its owned slots, and the
//! bookkeeping shared by every command (clock, randomness, counters), and
//! its journal.
//!
//! Every change to the keyspace reaches the journal through one of three
//! doors, so that a replica executing the journal in order ends with the
//! same data whatever its clock and its random draws:
//!
//! ```text
//!   command ran ──▶ Keyspace::log_command(db, args, dirty_before)
//!                     1. DEL for each key that expired lazily meanwhile
//!                     2. the entries the command asked for (Ctx::propagate),
//!                        else its own arguments, if it changed anything
//!   active expiry, eviction ──▶ DEL key (logged where they remove it)
//!   anything else that reclaims an expired key ──▶ log_pending_deletions
//! ```

use crate::args::Args;
use crate::db::{Db, ExpiryMode, UnixMs};
use crate::journal::{Journal, encode_command};
use crate::slot::ShardSlots;
use std::ops::Range;

/// The journal's backlog unless configured otherwise (Redis's
/// `repl-backlog-size` default).
pub const BACKLOG_BYTES_DEFAULT: usize = 1024 * 1024;

/// Counters a shard keeps about command effects (INFO stats).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    /// Successful key lookups by read commands.
    pub hits: u64,
    /// Failed key lookups by read commands.
    pub misses: u64,
    /// Writes that changed the keyspace (Redis's `dirty`).
    pub dirty: u64,
    /// Keys removed by maxmemory eviction.
    pub evicted: u64,
}

/// Which keys maxmemory eviction may remove, and how it chooses among a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Any key, the least recently used of the sample.
    AllKeysLru,
    /// Any key, the least frequently used of the sample.
    AllKeysLfu,
    /// Any key, at random.
    AllKeysRandom,
    /// Keys with a TTL, the least recently used of the sample.
    VolatileLru,
    /// Keys with a TTL, the least frequently used of the sample.
    VolatileLfu,
    /// Keys with a TTL, at random.
    VolatileRandom,
    /// Keys with a TTL, the one that expires soonest in the sample.
    VolatileTtl,
}

impl Eviction {
    fn volatile_only(self) -> bool {
        matches!(self, Eviction::VolatileLru | Eviction::VolatileLfu | Eviction::VolatileRandom | Eviction::VolatileTtl)
    }
}

/// Random picks tried per sampled key before a volatile policy gives up on a database.
const VOLATILE_PICK_TRIES: usize = 16;

/// Bounds on the work one active-expiry pass does.
pub const ACTIVE_EXPIRE_ENTRIES_MAX: usize = 20_000;

/// One shard's data.
pub struct Keyspace {
    dbs: Vec<Db>,
    owned: ShardSlots,
    /// Shard-local randomness (RANDOMKEY, HRANDFIELD).
    pub rng: fastrand::Rng,
    /// Counters for INFO.
    pub stats: KeyspaceStats,
    /// Where active expiry goes on: a database and a local slot index.
    expire_cursor: (usize, usize),
    /// True under an LFU maxmemory-policy (OBJECT FREQ answers only then, as
    /// in Redis); set with [`Keyspace::set_lfu_policy`].
    lfu_policy: bool,
    /// The shard's writes as its replicas apply them. Switch it on and off
    /// with [`Keyspace::set_journal_enabled`], which also starts recording
    /// expired keys (a journal switched directly is followed at the next
    /// logged command).
    pub journal: Journal,
    /// The entries the running command asked to log instead of its own
    /// arguments ([`crate::Ctx::propagate`]), RESP-encoded; filled only
    /// while the journal is on, emptied by [`Keyspace::log_command`].
    rewrites: Vec<u8>,
    /// Whether the databases record the keys they remove because they
    /// expired (true while the journal is on).
    expired_logged: bool,
    /// How expired keys are treated (primary or replica).
    expiry: ExpiryMode,
}

impl Keyspace {
    /// `databases` empty databases over the slots `owned`.
    pub fn new(databases: usize, owned: ShardSlots) -> Self {
        Keyspace {
            dbs: (0..databases).map(|_| Db::new(owned)).collect(),
            owned,
            rng: fastrand::Rng::new(),
            stats: KeyspaceStats::default(),
            expire_cursor: (0, 0),
            lfu_policy: false,
            journal: Journal::new(BACKLOG_BYTES_DEFAULT),
            rewrites: Vec::new(),
            expired_logged: false,
            expiry: ExpiryMode::Delete,
        }
    }

    /// Starts or stops the journal (see [`Journal::set_enabled`]), and with
    /// it the recording of expired keys as deletions.
    pub fn set_journal_enabled(&mut self, on: bool) {
        self.journal.set_enabled(on);
        self.follow_journal();
        self.rewrites.clear();
    }

    /// Makes the journal a copy of a primary's stream, or the shard's own
    /// again (see [`Journal::set_mirroring`]), and the recording of expired
    /// keys follow.
    pub fn set_journal_mirroring(&mut self, on: bool) {
        self.journal.set_mirroring(on);
        self.follow_journal();
    }

    /// Makes the recording of expired keys follow the journal's state: on
    /// while it records the shard's own entries. A mirror records only its
    /// primary's bytes, so a deletion logged there would be dropped; not
    /// recording them also spares every command of the primary's stream a
    /// look at each database's log (on a replica applying a full sync those
    /// were cache misses, a twentieth of its time).
    fn follow_journal(&mut self) {
        let on = self.journal.enabled() && !self.journal.mirroring();
        if self.expired_logged != on {
            self.expired_logged = on;
            for db in &mut self.dbs {
                db.set_log_expired(on);
            }
        }
    }

    /// How expired keys are treated.
    pub fn expiry_mode(&self) -> ExpiryMode {
        self.expiry
    }

    /// Sets how expired keys are treated: [`ExpiryMode::Delete`] on a
    /// primary, [`ExpiryMode::Hide`] on a replica while it serves its
    /// clients, [`ExpiryMode::Ignore`] while it applies its primary's stream.
    /// Cheap: a replica switches around each batch it applies.
    pub fn set_expiry_mode(&mut self, mode: ExpiryMode) {
        if self.expiry == mode {
            return;
        }
        self.expiry = mode;
        for db in &mut self.dbs {
            db.set_expiry_mode(mode);
        }
    }

    /// Queues `args` to be logged for the running command instead of its
    /// own arguments (called through [`crate::Ctx::propagate`]).
    pub(crate) fn propagate(&mut self, args: &[&[u8]]) {
        if self.journal.enabled() {
            encode_command(&mut self.rewrites, args.iter().copied());
        }
    }

    /// Logs what the command `args`, just run against database `db`, did:
    /// first a `DEL` for each key that expired lazily while it ran (in the
    /// database it was in), then, when it changed the keyspace (`stats.dirty`
    /// moved past `dirty_before`), the entries it asked for with
    /// [`crate::Ctx::propagate`], or else `args` themselves. A command that
    /// changed nothing (refused, or an error) logs only those deletions.
    /// The network layer calls this after every command it runs here, read
    /// or write, through [`crate::Ctx::log`]; while the journal is off it
    /// costs one branch.
    #[inline]
    pub fn log_command(&mut self, db: usize, args: &Args, dirty_before: u64) {
        if self.journal.enabled() {
            self.log_command_now(db, args, dirty_before);
        }
    }

    // Out of line, so the branch above is all a caller inlines (inlined, the
    // logging made every command's frame larger: ~20 instructions a call).
    #[inline(never)]
    fn log_command_now(&mut self, db: usize, args: &Args, dirty_before: u64) {
        self.log_pending_deletions();
        if self.stats.dirty != dirty_before {
            if self.rewrites.is_empty() {
                self.journal.append(db, args.iter_from(0));
            } else {
                self.journal.append_encoded(db, &self.rewrites);
            }
        }
        self.rewrites.clear();
    }

    /// Logs a `DEL` for each key removed because it expired since the last
    /// log, outside any command (a WATCH's or a transaction's reads, say).
    /// Active expiry and eviction call it themselves.
    pub fn log_pending_deletions(&mut self) {
        self.follow_journal();
        if !self.expired_logged {
            return;
        }
        for (i, db) in self.dbs.iter_mut().enumerate() {
            if db.has_expired_log() {
                for key in db.take_expired_log() {
                    self.journal.append(i, [&b"DEL"[..], &key]);
                }
            }
        }
    }

    /// Removes every key of every database in the slots of `range` that
    /// are among each of `of` too (a replica's full sync of the shard that
    /// sent them starts so); see [`Db::clear_slots`].
    pub fn clear_slots(&mut self, range: Range<usize>, of: &[ShardSlots]) {
        for db in &mut self.dbs {
            db.clear_slots(range.clone(), of);
        }
    }

    /// Removes up to `max` keys of `slot`, database after database, and
    /// returns how many; fewer than `max` means no database holds a key of
    /// it any more. A big slot's deletion then takes several calls, each of
    /// bounded work.
    pub fn remove_from_slot(&mut self, slot: usize, max: usize) -> usize {
        let mut removed = 0;
        for db in &mut self.dbs {
            if removed == max {
                break;
            }
            removed += db.remove_from_slot(slot, max - removed);
        }
        removed
    }

    /// The slots this shard owns.
    pub fn owned(&self) -> ShardSlots {
        self.owned
    }

    /// True under an LFU maxmemory-policy.
    pub fn lfu_policy(&self) -> bool {
        self.lfu_policy
    }

    /// Switches access-frequency tracking on (LFU policies) or off.
    pub fn set_lfu_policy(&mut self, on: bool) {
        self.lfu_policy = on;
        for db in &mut self.dbs {
            db.track_lfu = on;
        }
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    /// Database `i`; callers validate `i` against `databases()`.
    #[inline]
    pub fn db(&mut self, i: usize) -> &mut Db {
        &mut self.dbs[i]
    }

    /// Database `i`, read-only.
    pub fn db_ref(&self, i: usize) -> &Db {
        &self.dbs[i]
    }

    /// All databases.
    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Swaps the contents of two databases (SWAPDB).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        // Deletions not yet logged name the database they happened in.
        self.log_pending_deletions();
        self.dbs.swap(a, b);
        let (low, high) = self.dbs.split_at_mut(a.max(b));
        low[a.min(b)].swap_watched(&mut high[0]);
    }

    /// A random key of database `db` and whether it has expired at `now`.
    pub fn random_key(&mut self, db: usize, now: UnixMs) -> Option<(Vec<u8>, bool)> {
        let d = &self.dbs[db];
        d.random_entry(&mut self.rng).map(|e| (e.key().to_vec(), d.is_expired(e, now)))
    }

    /// Evicts one key chosen by `policy` among `samples` random candidates
    /// (Redis's approximated LRU/LFU/TTL). Expired keys met on the way are
    /// reclaimed first. The removal is logged as `DEL key`. Returns false
    /// when no key may be evicted.
    pub fn evict_one(&mut self, policy: Eviction, samples: usize, now: UnixMs) -> bool {
        let volatile = policy.volatile_only();
        let candidates: Vec<usize> = (0..self.dbs.len())
            .filter(|&d| if volatile { self.dbs[d].counts().volatile > 0 } else { !self.dbs[d].is_empty() })
            .collect();
        if candidates.is_empty() {
            return false;
        }
        // (score: higher evicts first, db, key)
        let mut best: Option<(u64, usize, Vec<u8>)> = None;
        for _ in 0..samples.max(1) {
            let d = candidates[self.rng.usize(..candidates.len())];
            let tries = if volatile { VOLATILE_PICK_TRIES } else { 1 };
            for _ in 0..tries {
                let Some(e) = self.dbs[d].random_entry(&mut self.rng) else { break };
                if volatile && e.expire_at() == crate::db::NO_EXPIRE {
                    continue;
                }
                let score = match policy {
                    Eviction::AllKeysLru | Eviction::VolatileLru => e.idle_ms(now),
                    Eviction::AllKeysLfu | Eviction::VolatileLfu => 255 - e.frequency(now) as u64,
                    Eviction::VolatileTtl => u64::MAX - e.expire_at(),
                    Eviction::AllKeysRandom | Eviction::VolatileRandom => 0,
                };
                if best.as_ref().is_none_or(|b| score > b.0) {
                    best = Some((score, d, e.key().to_vec()));
                }
                break;
            }
        }
        if best.is_none() && volatile {
            // Sampling can miss the few keys with a TTL in a sparse database:
            // walk the slots from a random point to the first one.
            best = candidates.iter().find_map(|&d| {
                let db = &self.dbs[d];
                let owned = db.owned();
                let start = self.rng.usize(..owned.len());
                (start..owned.len()).chain(0..start).map(|l| owned.slot(l)).find_map(|slot| {
                    let mut found = None;
                    db.for_each_in_slot(slot, |e| {
                        if found.is_none() && e.expire_at() != crate::db::NO_EXPIRE {
                            found = Some((0, d, e.key().to_vec()));
                        }
                    });
                    found
                })
            });
        }
        let Some((_, d, key)) = best else { return false };
        // remove() reports an expired key as missing and counts it as expired
        // (and records it, so the log below gives its DEL).
        let evicted = self.dbs[d].remove(&key, now).is_some();
        self.log_pending_deletions();
        if evicted {
            self.stats.evicted += 1;
            self.journal.append(d, [&b"DEL"[..], &key]);
        }
        self.stats.dirty += 1;
        true
    }

    /// Keys removed by expiry, over all databases.
    pub fn expired_keys(&self) -> u64 {
        self.dbs.iter().map(|d| d.expired).sum()
    }

    /// One bounded pass of active expiry: walks slots from where the last pass
    /// stopped, over every database with keys that carry a TTL, removing
    /// expired keys, until `entries_max` entries were examined or every slot
    /// was visited once. Returns the number of keys removed, each logged as
    /// `DEL key`. A replica ([`ExpiryMode::Hide`], [`ExpiryMode::Ignore`])
    /// removes nothing: its primary's DELs do.
    pub fn active_expire(&mut self, now: UnixMs, entries_max: usize) -> usize {
        if self.expiry != ExpiryMode::Delete || self.dbs.iter().all(|d| d.counts().volatile == 0) {
            return 0;
        }
        // `local` walks the local indices of the owned slots.
        let (mut db, mut local) = self.expire_cursor;
        let span = self.owned.len();
        let (mut visited, mut examined, mut removed) = (0, 0, 0);
        // At most one pass over every database; a database without TTL keys
        // is skipped whole and counts as visited.
        while visited < span * self.dbs.len() && examined < entries_max {
            if self.dbs[db].counts().volatile > 0 {
                let (e, r) = self.dbs[db].expire_slot(self.owned.slot(local), now);
                examined += e;
                removed += r;
                local += 1;
                visited += 1;
            } else {
                visited += span - local;
                local = span;
            }
            if local >= span {
                local = 0;
                db = (db + 1) % self.dbs.len();
            }
        }
        self.expire_cursor = (db, local);
        self.log_pending_deletions();
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NO_EXPIRE;
    use crate::value::Value;

    fn filled(n: u32, ttl_every: u32) -> Keyspace {
        let mut ks = Keyspace::new(2, ShardSlots::all());
        ks.rng = fastrand::Rng::with_seed(11);
        for i in 0..n {
            let ttl = if ttl_every > 0 && i % ttl_every == 0 { 1_000_000 + i as u64 } else { NO_EXPIRE };
            ks.db((i % 2) as usize).set(format!("k{i}").as_bytes(), Value::Str(vec![b'x'; 10]), ttl, 0);
        }
        ks
    }

    #[test]
    fn lru_eviction_prefers_keys_idle_longest() {
        let mut ks = filled(1000, 0);
        // Keys 0..100 are read later, so they are the most recently used.
        for i in 0..100u32 {
            assert!(ks.db((i % 2) as usize).get(format!("k{i}").as_bytes(), 5_000).is_some());
        }
        for _ in 0..500 {
            assert!(ks.evict_one(Eviction::AllKeysLru, 5, 6_000));
        }
        let hot_alive =
            (0..100u32).filter(|i| ks.db((i % 2) as usize).contains(format!("k{i}").as_bytes(), 6_000)).count();
        assert!(hot_alive >= 95, "only {hot_alive} of 100 recently used keys survived");
        assert_eq!(ks.stats.evicted, 500);
    }

    #[test]
    fn volatile_policies_only_evict_keys_with_a_ttl() {
        let mut ks = filled(300, 3);
        for policy in [Eviction::VolatileLru, Eviction::VolatileTtl, Eviction::VolatileRandom, Eviction::VolatileLfu] {
            while ks.evict_one(policy, 5, 10) {}
            assert_eq!(ks.db_ref(0).counts().volatile + ks.db_ref(1).counts().volatile, 0);
            assert_eq!(ks.db_ref(0).len() + ks.db_ref(1).len(), 200, "{policy:?}");
            ks = filled(300, 3);
        }
        let mut ks = filled(10, 0);
        assert!(!ks.evict_one(Eviction::VolatileLru, 5, 10), "no TTL keys: nothing to evict");
        for _ in 0..10 {
            assert!(ks.evict_one(Eviction::AllKeysRandom, 5, 10));
        }
        assert!(!ks.evict_one(Eviction::AllKeysLfu, 5, 10));
    }

    #[test]
    fn a_mirroring_journal_leaves_expired_keys_unrecorded_until_it_is_the_shards_own() {
        let mut ks = Keyspace::new(2, ShardSlots::all());
        ks.set_journal_enabled(true);
        ks.set_journal_mirroring(true);
        ks.db(1).set(b"a", Value::Str(vec![]), 500, 0);
        assert!(ks.db(1).get(b"a", 1_000).is_none(), "expired and removed");
        assert!(!ks.db_ref(1).has_expired_log(), "a mirror records none of its own deletions");
        ks.log_pending_deletions();
        let end = ks.journal.end_lsn();
        // Promoted: the journal is the shard's own, and logs expiries as DEL.
        ks.set_journal_mirroring(false);
        ks.db(1).set(b"b", Value::Str(vec![]), 500, 0);
        assert!(ks.db(1).get(b"b", 1_000).is_none());
        assert!(ks.db_ref(1).has_expired_log());
        ks.log_pending_deletions();
        let mut logged = Vec::new();
        ks.journal.copy_from(end, usize::MAX, &mut logged).expect("in the backlog");
        assert!(logged.ends_with(b"*2\r\n$3\r\nDEL\r\n$1\r\nb\r\n"), "{}", String::from_utf8_lossy(&logged));
    }

    #[test]
    fn active_expire_reclaims_across_databases_within_bounds() {
        let mut ks = Keyspace::new(4, ShardSlots::all());
        assert_eq!(ks.active_expire(1_000, 100), 0, "nothing to do without TTL keys");
        for i in 0..300u32 {
            let key = format!("k{i}");
            ks.db((i % 4) as usize).set(key.as_bytes(), Value::Str(vec![]), 500, 0);
            ks.db(0).set(format!("p{i}").as_bytes(), Value::Str(vec![]), NO_EXPIRE, 0);
        }
        // Bounded work: a small budget removes some, repeated passes remove all.
        let first = ks.active_expire(1_000, 10);
        assert!(first > 0 && first < 300, "{first}");
        let mut total = first;
        for _ in 0..100 {
            total += ks.active_expire(1_000, 10);
        }
        assert_eq!(total, 300);
        assert_eq!(ks.expired_keys(), 300);
        assert_eq!(ks.db_ref(0).len(), 300, "keys without TTL stay");
    }

    #[test]
    fn active_expiry_and_eviction_walk_the_slots_of_one_shard_of_several() {
        let owned = crate::slot::SlotMap::new(5).slots(3);
        let mut ks = Keyspace::new(2, owned);
        let keys: Vec<String> = (0..)
            .map(|i| format!("k{i}"))
            .filter(|k| owned.contains(crate::slot::key_slot(k.as_bytes()) as usize))
            .take(200)
            .collect();
        for (i, k) in keys.iter().enumerate() {
            ks.db(i % 2).set(k.as_bytes(), Value::Str(vec![]), if i % 4 < 2 { 500 } else { NO_EXPIRE }, 0);
        }
        let mut removed = 0;
        for _ in 0..50 {
            removed += ks.active_expire(1_000, 10);
        }
        assert_eq!(removed, 100);
        assert_eq!(ks.db_ref(0).len() + ks.db_ref(1).len(), 100);
        for (i, k) in keys.iter().enumerate() {
            ks.db(i % 2).set_expire(k.as_bytes(), 5_000, 1_000);
        }
        while ks.evict_one(Eviction::VolatileTtl, 3, 1_000) {}
        assert_eq!(ks.db_ref(0).len() + ks.db_ref(1).len(), 0, "the sparse walk finds every TTL key");
    }
}
