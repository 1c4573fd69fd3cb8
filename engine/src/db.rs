//! One logical database (SELECT index) of one shard: a small hash table per
//! owned slot.
//!
//! Per-slot tables keep every pause short: a table grows in one step, but a
//! slot's table holds 1/16384 of the data. SCAN walks whole slots, so its
//! guarantee (every key present for the whole scan is returned) survives
//! resizes, and snapshots and migration later work a slot at a time. The table
//! holds one pointer per key; the entry (header, expiry, key and a small
//! value in one block, see [`crate::entry`]) lives behind it.

pub use crate::entry::{Entry, LFU_INIT};
use crate::slot::{self, ShardSlots};
use crate::value::{Value, ValueRef};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::hash::BuildHasher;
use std::ops::Range;

/// Milliseconds since the Unix epoch.
pub type UnixMs = u64;

/// Expiry value meaning "no TTL".
pub const NO_EXPIRE: UnixMs = 0;

/// A key's share of its table, for MEMORY USAGE: a pointer per bucket and
/// one control byte, at a typical load (hashbrown grows at 7/8 and halves
/// the load when it does, so a table sits between 7/16 and 7/8 full).
const TABLE_BYTES_PER_KEY: usize = 14;

#[derive(Default)]
struct SlotTable {
    table: HashTable<Entry>,
}

/// How a database treats a key whose TTL has passed (Redis's
/// `expireIfNeeded` on a primary and on a replica).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiryMode {
    /// A primary: an expired key is missing, and the access that finds it
    /// removes it (lazy expiry); active expiry removes the rest.
    #[default]
    Delete,
    /// A replica serving its own clients: an expired key is missing to
    /// every access but stays stored, since only the primary's DEL removes
    /// it; active expiry does nothing.
    Hide,
    /// A replica applying its primary's stream: nothing counts as expired,
    /// so each command acts on the keys the primary still saw live, however
    /// far ahead the replica's clock runs.
    Ignore,
}

/// Counters a database keeps about itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbCounts {
    /// Keys stored (including logically expired ones not yet reclaimed).
    pub keys: usize,
    /// Keys with a TTL.
    pub volatile: usize,
}

/// One database of one shard.
pub struct Db {
    /// Tables of the owned slots, indexed by their local index
    /// ([`ShardSlots::local`]); empty until the first write, so unused
    /// databases cost nothing.
    slots: Vec<SlotTable>,
    owned: ShardSlots,
    counts: DbCounts,
    hasher: DefaultHashBuilder,
    /// Keys removed because they expired (lazily or actively).
    pub expired: u64,
    /// State of the LFU counter's coin.
    lfu_rng: u64,
    /// Whether accesses update the LFU counter (only under an LFU policy, as
    /// in Redis: it costs a random draw per access).
    pub track_lfu: bool,
    /// Keys clients are blocked on (BLPOP, BZPOPMIN, ...), each with whether
    /// it is queued in `ready` already. Empty unless a client blocks, so a
    /// write pays one branch for it.
    watched: HashMap<Box<[u8]>, bool>,
    /// Watched keys that came to hold a list or sorted set since the last
    /// [`Db::take_ready`], in that order (Redis's `signalKeyAsReady`).
    ready: Vec<Box<[u8]>>,
    /// How expired keys are treated.
    expiry: ExpiryMode,
    /// Whether keys removed because they expired are recorded in `expired_log`
    /// (while the shard's journal is on, so it can log them as DEL).
    log_expired: bool,
    /// Keys removed because they expired since the last
    /// [`Db::take_expired_log`], in the order they went; stays empty while
    /// `log_expired` is off.
    expired_log: Vec<Box<[u8]>>,
}

impl Db {
    /// An empty database over the slots `owned`.
    pub fn new(owned: ShardSlots) -> Self {
        Db {
            slots: Vec::new(),
            owned,
            counts: DbCounts::default(),
            hasher: DefaultHashBuilder::default(),
            expired: 0,
            lfu_rng: 0x9E37_79B9_7F4A_7C15,
            track_lfu: false,
            watched: HashMap::new(),
            ready: Vec::new(),
            expiry: ExpiryMode::Delete,
            log_expired: false,
            expired_log: Vec::new(),
        }
    }

    /// How expired keys are treated here.
    pub fn expiry_mode(&self) -> ExpiryMode {
        self.expiry
    }

    /// Sets how expired keys are treated (see [`ExpiryMode`]).
    pub fn set_expiry_mode(&mut self, mode: ExpiryMode) {
        self.expiry = mode;
    }

    /// True when `e` counts as expired at `now` under this database's
    /// [`ExpiryMode`] (never under `Ignore`).
    #[inline]
    pub fn is_expired(&self, e: &Entry, now: UnixMs) -> bool {
        e.is_expired(now) && self.expiry != ExpiryMode::Ignore
    }

    /// Starts or stops recording the keys removed because they expired.
    /// Stopping drops what was recorded.
    pub(crate) fn set_log_expired(&mut self, on: bool) {
        self.log_expired = on;
        if !on {
            self.expired_log = Vec::new();
        }
    }

    /// True when expired keys were removed since the last [`Db::take_expired_log`].
    #[inline]
    pub(crate) fn has_expired_log(&self) -> bool {
        !self.expired_log.is_empty()
    }

    /// The keys removed because they expired, in order, since the last call.
    pub(crate) fn take_expired_log(&mut self) -> Vec<Box<[u8]>> {
        std::mem::take(&mut self.expired_log)
    }

    /// Counts a key removed because it expired, and records it while asked to.
    #[inline]
    fn note_expired(&mut self, key: &[u8]) {
        self.expired += 1;
        if self.log_expired {
            self.expired_log.push(key.into());
        }
    }

    /// Starts watching `key` for blocked clients: once a write makes it hold
    /// a list or a sorted set, it is reported by [`Db::take_ready`].
    pub fn watch(&mut self, key: &[u8]) {
        if !self.watched.contains_key(key) {
            self.watched.insert(key.into(), false);
        }
    }

    /// Stops watching `key` (its last blocked client left).
    pub fn unwatch(&mut self, key: &[u8]) {
        self.watched.remove(key);
    }

    /// Number of watched keys.
    pub fn watched_len(&self) -> usize {
        self.watched.len()
    }

    /// Queues watched `key` as ready, once until the next [`Db::take_ready`].
    fn signal_ready(&mut self, key: &[u8]) {
        if let Some(queued) = self.watched.get_mut(key)
            && !*queued
        {
            *queued = true;
            self.ready.push(key.into());
        }
    }

    /// True when a watched key became ready since the last [`Db::take_ready`].
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Moves the keys that became ready, in the order they did, into `into`.
    pub fn take_ready(&mut self, into: &mut Vec<Box<[u8]>>) {
        for key in self.ready.drain(..) {
            if let Some(queued) = self.watched.get_mut(&key) {
                *queued = false;
            }
            into.push(key);
        }
    }

    /// Gives `other` this database's watched keys and takes its own: the
    /// data moved (SWAPDB) but blocked clients stay in the database they
    /// selected. Watched keys that hold a list or sorted set after the move
    /// are ready (Redis's `scanDatabaseForReadyKeys`).
    pub(crate) fn swap_watched(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.watched, &mut other.watched);
        std::mem::swap(&mut self.ready, &mut other.ready);
        for db in [self, other] {
            let present: Vec<Box<[u8]>> = db
                .watched
                .keys()
                .filter(|k| db.find(k).is_some_and(|e| matches!(e.value(), ValueRef::List(_) | ValueRef::ZSet(_))))
                .cloned()
                .collect();
            for key in present {
                db.signal_ready(&key);
            }
        }
    }

    /// The entry for `key`, expired or not.
    fn find(&self, key: &[u8]) -> Option<&Entry> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.index(key)].table.find(self.hash(key), |e| e.key() == key)
    }

    /// The slots this database holds.
    pub fn owned(&self) -> ShardSlots {
        self.owned
    }

    /// Key and TTL counts.
    pub fn counts(&self) -> DbCounts {
        self.counts
    }

    /// Number of keys, including expired ones not reclaimed yet (as DBSIZE reports).
    pub fn len(&self) -> usize {
        self.counts.keys
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.counts.keys == 0
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn index(&self, key: &[u8]) -> usize {
        let slot = slot::key_slot(key) as usize;
        debug_assert!(self.owned.contains(slot), "shard touched a key it does not own");
        self.owned.local(slot)
    }

    /// The live entry for `key`. An expired entry is reported missing and,
    /// under [`ExpiryMode::Delete`], removed (lazy expiry).
    #[inline]
    pub fn get(&mut self, key: &[u8], now: UnixMs) -> Option<&mut Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let idx = self.index(key);
        let hash = self.hash(key);
        let table = &mut self.slots[idx].table;
        match table.find_entry(hash, |e| e.key() == key) {
            Ok(found) if found.get().is_expired(now) && self.expiry != ExpiryMode::Ignore => {
                if self.expiry == ExpiryMode::Hide {
                    return None;
                }
                found.remove();
                self.counts.keys -= 1;
                self.counts.volatile -= 1;
                // Fields, not `note_expired`: `table` still borrows `self.slots`.
                self.expired += 1;
                if self.log_expired {
                    self.expired_log.push(key.into());
                }
                None
            }
            Ok(found) => {
                let e = found.into_mut();
                e.touch(now, self.track_lfu.then_some(&mut self.lfu_rng));
                Some(e)
            }
            Err(_) => None,
        }
    }

    /// The live entry for `key`, read-only: an expired entry is reported
    /// missing but left for [`Db::get`] or active expiry to reclaim. Lets a
    /// command hold several values at once (SINTER).
    pub fn peek(&self, key: &[u8], now: UnixMs) -> Option<&Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let table = &self.slots[self.index(key)].table;
        table.find(self.hash(key), |e| e.key() == key).filter(|e| !self.is_expired(e, now))
    }

    /// [`Db::peek`] of a key whose slot the caller knows already (a
    /// snapshot walking a list of one slot's key names), which saves
    /// computing it again.
    pub fn peek_in_slot(&self, slot: usize, key: &[u8], now: UnixMs) -> Option<&Entry> {
        debug_assert_eq!(slot, slot::key_slot(key) as usize);
        if self.slots.is_empty() || !self.owned.contains(slot) {
            return None;
        }
        let table = &self.slots[self.owned.local(slot)].table;
        table.find(self.hash(key), |e| e.key() == key).filter(|e| !self.is_expired(e, now))
    }

    fn reborrow<'t>(table: &'t mut HashTable<Entry>, hash: u64, key: &[u8]) -> &'t mut Entry {
        match table.find_mut(hash, |e| e.key() == key) {
            Some(e) => e,
            None => unreachable!("entry found a moment ago"),
        }
    }

    /// True when `key` exists and is live at `now` (expired keys are reclaimed).
    pub fn contains(&mut self, key: &[u8], now: UnixMs) -> bool {
        self.get(key, now).is_some()
    }

    /// Stores `value` at `key` with expiry `expire_at` (`NO_EXPIRE` for none),
    /// replacing any previous entry; true when a live key was replaced.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: UnixMs, now: UnixMs) -> bool {
        // Every write that makes a key a list or a sorted set comes through
        // here (creation, RENAME, RESTORE, SORT STORE, MOVE, ...), so this is
        // where a blocked client's key becomes ready. It is served after the
        // command, once the value is complete. (`set_str` stores strings only.)
        if !self.watched.is_empty() && matches!(value, Value::List(_) | Value::ZSet(_)) {
            self.signal_ready(key);
        }
        match self.prepare_store(key, expire_at, now) {
            Ok((e, was_live)) => {
                e.set_value(value, expire_at);
                was_live
            }
            Err((idx, hash)) => {
                self.insert_new(idx, hash, Entry::new(key, value, expire_at, now), expire_at);
                false
            }
        }
    }

    /// Stores the string `value` at `key`, as [`Db::set`] does, without
    /// building a [`Value`] first (SET's path: the bytes go straight into
    /// the entry, in place when they fit its block).
    pub fn set_str(&mut self, key: &[u8], value: &[u8], expire_at: UnixMs, now: UnixMs) -> bool {
        match self.prepare_store(key, expire_at, now) {
            Ok((e, was_live)) => {
                e.set_str(value, expire_at);
                was_live
            }
            Err((idx, hash)) => {
                self.insert_new(idx, hash, Entry::new_str(key, value, expire_at, now), expire_at);
                false
            }
        }
    }

    /// The entry a store at `key` with expiry `expire_at` replaces, touched
    /// and counted, and whether it was live; else the slot index and hash
    /// to insert a new one with [`Db::insert_new`].
    #[inline]
    fn prepare_store(
        &mut self,
        key: &[u8],
        expire_at: UnixMs,
        now: UnixMs,
    ) -> Result<(&mut Entry, bool), (usize, u64)> {
        let idx = self.index(key);
        let hash = self.hash(key);
        if self.slots.is_empty() {
            self.slots.resize_with(self.owned.len(), SlotTable::default);
        }
        let Some(e) = self.slots[idx].table.find_mut(hash, |e| e.key() == key) else {
            return Err((idx, hash));
        };
        let was_volatile = e.expire_at() != NO_EXPIRE;
        let was_live = !e.is_expired(now) || self.expiry == ExpiryMode::Ignore;
        e.touch(now, self.track_lfu.then_some(&mut self.lfu_rng));
        self.counts.volatile = self.counts.volatile + (expire_at != NO_EXPIRE) as usize - was_volatile as usize;
        Ok((e, was_live))
    }

    #[inline]
    fn insert_new(&mut self, idx: usize, hash: u64, entry: Entry, expire_at: UnixMs) {
        let hasher = &self.hasher;
        self.slots[idx].table.insert_unique(hash, entry, |e| hasher.hash_one(e.key()));
        self.counts.keys += 1;
        self.counts.volatile += (expire_at != NO_EXPIRE) as usize;
    }

    /// The live entry for `key`, inserting `make()` (without TTL) when missing.
    pub fn get_or_insert_with(&mut self, key: &[u8], now: UnixMs, make: impl FnOnce() -> Value) -> &mut Entry {
        if self.get(key, now).is_none() {
            self.set(key, make(), NO_EXPIRE, now);
        }
        let idx = self.index(key);
        let hash = self.hash(key);
        Self::reborrow(&mut self.slots[idx].table, hash, key)
    }

    /// Removes `key`; returns its entry if it was live at `now`. An expired
    /// entry counts as expired (and stays stored under [`ExpiryMode::Hide`]).
    pub fn remove(&mut self, key: &[u8], now: UnixMs) -> Option<Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let idx = self.index(key);
        let hash = self.hash(key);
        let table = &mut self.slots[idx].table;
        let found = table.find_entry(hash, |e| e.key() == key).ok()?;
        let expired = found.get().is_expired(now) && self.expiry != ExpiryMode::Ignore;
        if expired && self.expiry == ExpiryMode::Hide {
            return None;
        }
        let (entry, _) = found.remove();
        self.counts.keys -= 1;
        if entry.expire_at() != NO_EXPIRE {
            self.counts.volatile -= 1;
        }
        if expired {
            self.note_expired(key);
            return None;
        }
        Some(entry)
    }

    /// Sets or clears (`NO_EXPIRE`) the TTL of a live key; false when the key is missing.
    pub fn set_expire(&mut self, key: &[u8], expire_at: UnixMs, now: UnixMs) -> bool {
        let Some(e) = self.get(key, now) else {
            return false;
        };
        let was = e.expire_at() != NO_EXPIRE;
        e.set_expire_at(expire_at);
        self.counts.volatile = self.counts.volatile + (expire_at != NO_EXPIRE) as usize - was as usize;
        true
    }

    /// Removes every key in the owned slots of `range` that are also among
    /// each of `of` (none: the whole range): a replica's full sync of one
    /// primary shard replaces only that shard's slots, whatever the
    /// primary's shard count, and a migration's flush on one of the
    /// target's shards is journaled as its source shard's slots and that
    /// shard's own, which a replica of another shard count applies as both.
    pub fn clear_slots(&mut self, range: Range<usize>, of: &[ShardSlots]) {
        if self.slots.is_empty() {
            return;
        }
        for local in self.owned.locals(range) {
            let slot = self.owned.slot(local);
            if !of.iter().all(|o| o.contains(slot)) {
                continue;
            }
            let table = std::mem::take(&mut self.slots[local].table);
            for e in table.iter() {
                self.counts.keys -= 1;
                self.counts.volatile -= (e.expire_at() != NO_EXPIRE) as usize;
            }
        }
    }

    /// Removes up to `max` keys of `slot` (in no particular order) and
    /// returns how many; fewer than `max` means the slot is empty now (its
    /// table's memory is given back then). Lets a caller spread the
    /// deletion of a big slot over several loop turns.
    pub fn remove_from_slot(&mut self, slot: usize, max: usize) -> usize {
        if self.slots.is_empty() || !self.owned.contains(slot) {
            return 0;
        }
        let table = &mut self.slots[self.owned.local(slot)].table;
        let (mut removed, mut volatile) = (0, 0);
        for e in table.extract_if(|_| true).take(max) {
            removed += 1;
            volatile += (e.expire_at() != NO_EXPIRE) as usize;
        }
        if table.is_empty() {
            *table = HashTable::new();
        }
        self.counts.keys -= removed;
        self.counts.volatile -= volatile;
        removed
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.slots = Vec::new();
        self.counts = DbCounts::default();
    }

    /// Calls `f` with every entry of `slot` (expired ones included: callers
    /// filter with [`Entry::is_expired`]). Slots this database does not own
    /// have no entries.
    pub fn for_each_in_slot<'s>(&'s self, slot: usize, mut f: impl FnMut(&'s Entry)) {
        if self.slots.is_empty() || !self.owned.contains(slot) {
            return;
        }
        for e in self.slots[self.owned.local(slot)].table.iter() {
            f(e);
        }
    }

    /// Starts loading the entries of `slot` into the CPU's cache (see
    /// [`Entry::prefetch`]), for a walk that reaches them next.
    pub fn prefetch_slot(&self, slot: usize) {
        if self.slots.is_empty() || !self.owned.contains(slot) {
            return;
        }
        for e in self.slots[self.owned.local(slot)].table.iter() {
            e.prefetch();
        }
    }

    /// Number of entries stored in `slot`.
    pub fn slot_len(&self, slot: usize) -> usize {
        if self.slots.is_empty() || !self.owned.contains(slot) {
            return 0;
        }
        self.slots[self.owned.local(slot)].table.len()
    }

    /// A uniformly chosen slot among the non-empty ones is too costly to find
    /// exactly; this picks random slots until one has keys (bounded tries),
    /// then a random entry in it. Returns `None` when the database is empty.
    pub fn random_entry(&self, rng: &mut fastrand::Rng) -> Option<&Entry> {
        if self.counts.keys == 0 || self.slots.is_empty() {
            return None;
        }
        let n = self.slots.len();
        // Random probes first; a linear walk from a random start guarantees an answer.
        let start = rng.usize(..n);
        let probe = (0..64).map(|_| rng.usize(..n)).find(|&i| !self.slots[i].table.is_empty());
        let idx = probe.or_else(|| (0..n).map(|k| (start + k) % n).find(|&i| !self.slots[i].table.is_empty()))?;
        let table = &self.slots[idx].table;
        let pick = rng.usize(..table.len());
        table.iter().nth(pick)
    }

    /// Bytes an entry takes, as MEMORY USAGE reports it: its block, its
    /// share of the table, and the allocations of a value kept outside the block.
    pub fn entry_bytes(e: &Entry) -> usize {
        e.block_bytes() + TABLE_BYTES_PER_KEY + e.boxed_bytes()
    }

    /// Active expiry of one slot: removes the entries of `slot` that expired by
    /// `now` and returns how many entries were examined and removed. Only
    /// under [`ExpiryMode::Delete`]; a replica removes nothing itself.
    pub fn expire_slot(&mut self, slot: usize, now: UnixMs) -> (usize, usize) {
        if self.slots.is_empty() || !self.owned.contains(slot) || self.expiry != ExpiryMode::Delete {
            return (0, 0);
        }
        let table = &mut self.slots[self.owned.local(slot)].table;
        let before = table.len();
        if self.log_expired {
            let log = &mut self.expired_log;
            table.retain(|e| {
                let keep = !e.is_expired(now);
                if !keep {
                    log.push(e.key().into());
                }
                keep
            });
        } else {
            table.retain(|e| !e.is_expired(now));
        }
        let removed = before - table.len();
        self.counts.keys -= removed;
        self.counts.volatile -= removed;
        self.expired += removed as u64;
        (before, removed)
    }

    /// Moves every key out into a new database over the same slots; the
    /// watched keys stay here.
    pub fn take(&mut self) -> Db {
        let mut fresh = Db::new(self.owned);
        fresh.expiry = self.expiry;
        fresh.track_lfu = self.track_lfu;
        fresh.log_expired = self.log_expired;
        std::mem::swap(&mut fresh.expired_log, &mut self.expired_log);
        std::mem::swap(&mut fresh.watched, &mut self.watched);
        std::mem::swap(&mut fresh.ready, &mut self.ready);
        std::mem::replace(self, fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Db {
        Db::new(ShardSlots::all())
    }

    #[test]
    fn set_get_remove_keep_counts() {
        let mut d = db();
        assert!(!d.set(b"a", Value::Str(b"1".to_vec()), NO_EXPIRE, 0));
        assert!(!d.set_str(b"b", b"2", 100, 0));
        assert_eq!(d.counts(), DbCounts { keys: 2, volatile: 1 });
        assert_eq!(d.get(b"a", 0).map(|e| e.to_value()), Some(Value::Str(b"1".to_vec())));
        assert!(d.set(b"b", Value::Str(b"3".to_vec()), NO_EXPIRE, 0));
        assert_eq!(d.get(b"b", 0).map(|e| e.to_value()), Some(Value::Str(b"3".to_vec())));
        assert_eq!(d.counts(), DbCounts { keys: 2, volatile: 0 });
        assert!(d.remove(b"a", 0).is_some());
        assert!(d.remove(b"a", 0).is_none());
        assert_eq!(d.counts(), DbCounts { keys: 1, volatile: 0 });
    }

    #[test]
    fn peek_hides_expired_keys_without_removing_them() {
        let mut d = db();
        assert!(d.peek(b"x", 0).is_none());
        d.set(b"x", Value::Str(b"1".to_vec()), 50, 0);
        assert_eq!(d.peek(b"x", 49).map(|e| e.key()), Some(&b"x"[..]));
        assert!(d.peek(b"x", 50).is_none());
        assert_eq!(d.counts(), DbCounts { keys: 1, volatile: 1 });
        assert!(d.get(b"x", 50).is_none());
        assert_eq!(d.counts(), DbCounts { keys: 0, volatile: 0 });
    }

    #[test]
    fn expired_keys_vanish_lazily_and_actively() {
        let mut d = db();
        d.set(b"x", Value::Str(b"1".to_vec()), 50, 0);
        d.set(b"y", Value::Str(b"1".to_vec()), 50, 0);
        assert!(d.get(b"x", 49).is_some());
        assert!(d.get(b"x", 50).is_none(), "lazy expiry at the deadline");
        assert_eq!(d.counts(), DbCounts { keys: 1, volatile: 1 });
        let slot = slot::key_slot(b"y") as usize;
        assert_eq!(d.expire_slot(slot, 50), (1, 1));
        assert_eq!(d.counts(), DbCounts { keys: 0, volatile: 0 });
        assert_eq!(d.expired, 2);
    }

    #[test]
    fn hide_mode_hides_expired_keys_and_never_removes_them() {
        let mut d = db();
        d.set_expiry_mode(ExpiryMode::Hide);
        d.set(b"x", Value::Str(b"1".to_vec()), 50, 0);
        d.set(b"y", Value::Str(b"1".to_vec()), 50, 0);
        assert!(d.get(b"x", 49).is_some());
        assert!(d.get(b"x", 50).is_none() && d.peek(b"x", 50).is_none() && !d.contains(b"x", 50));
        assert!(d.remove(b"x", 50).is_none());
        assert_eq!(d.expire_slot(slot::key_slot(b"x") as usize, 50), (0, 0), "active expiry does nothing");
        assert!(!d.set_expire(b"x", 100, 50), "a hidden key has no TTL to change");
        assert_eq!((d.counts(), d.expired), (DbCounts { keys: 2, volatile: 2 }, 0), "both still stored");
        // A write replaces it as a missing key.
        assert!(!d.set_str(b"x", b"2", NO_EXPIRE, 50));
        assert_eq!(d.get(b"x", 50).map(|e| e.to_value()), Some(Value::Str(b"2".to_vec())));
        // The primary's DEL arrives with the stream, applied in Ignore mode.
        d.set_expiry_mode(ExpiryMode::Ignore);
        assert!(d.remove(b"y", 60).is_some());
        assert_eq!(d.counts(), DbCounts { keys: 1, volatile: 0 });
    }

    #[test]
    fn ignore_mode_sees_expired_keys_as_live() {
        let mut d = db();
        d.set(b"x", Value::Str(b"1".to_vec()), 50, 0);
        d.set_expiry_mode(ExpiryMode::Ignore);
        let e = d.get(b"x", 1_000).map(|e| (e.to_value(), e.expire_at()));
        assert_eq!(e, Some((Value::Str(b"1".to_vec()), 50)));
        assert!(d.peek(b"x", 1_000).is_some());
        assert!(d.set_expire(b"x", 70, 1_000), "its TTL can be changed");
        assert_eq!(d.expire_slot(slot::key_slot(b"x") as usize, 1_000), (0, 0));
        assert!(d.set_str(b"x", b"2", 80, 1_000), "a store replaces a live key");
        assert_eq!(d.expired, 0);
        // Back as a primary, the key expires.
        d.set_expiry_mode(ExpiryMode::Delete);
        assert!(d.get(b"x", 1_000).is_none());
        assert_eq!((d.len(), d.expired), (0, 1));
    }

    #[test]
    fn expired_keys_are_recorded_only_while_asked() {
        let mut d = db();
        for (k, at) in [(&b"a"[..], 10), (b"b", 10), (b"c", 10), (b"d", 0)] {
            d.set(k, Value::Str(vec![]), at, 0);
        }
        assert!(d.get(b"a", 10).is_none());
        assert!(!d.has_expired_log(), "not recording");
        d.set_log_expired(true);
        assert!(d.remove(b"b", 10).is_none());
        assert_eq!(d.expire_slot(slot::key_slot(b"c") as usize, 10).1, 1);
        assert!(d.remove(b"d", 10).is_some(), "a live key removed is no expiry");
        assert_eq!(d.take_expired_log(), vec![Box::from(&b"b"[..]), Box::from(&b"c"[..])]);
        assert!(!d.has_expired_log());
        d.set(b"e", Value::Str(vec![]), 10, 0);
        assert!(d.get(b"e", 10).is_none());
        d.set_log_expired(false);
        assert!(!d.has_expired_log(), "stopping drops what was recorded");
    }

    #[test]
    fn set_expire_tracks_volatile_count() {
        let mut d = db();
        d.set(b"k", Value::Str(vec![]), NO_EXPIRE, 0);
        assert!(d.set_expire(b"k", 10, 0));
        assert_eq!(d.counts().volatile, 1);
        assert!(d.set_expire(b"k", NO_EXPIRE, 0));
        assert_eq!(d.counts().volatile, 0);
        assert!(!d.set_expire(b"missing", 10, 0));
    }

    #[test]
    fn tables_hold_a_pointer_per_key_and_long_keys_work() {
        assert_eq!(std::mem::size_of::<Entry>(), std::mem::size_of::<usize>());
        let mut d = db();
        let long = vec![b'k'; 1000];
        for key in [&b""[..], b"a", &[b'x'; 255], &[b'y'; 256], &long] {
            d.set(key, Value::Str(key.to_vec()), NO_EXPIRE, 0);
            assert_eq!(d.get(key, 0).map(|e| e.key().to_vec()), Some(key.to_vec()));
        }
        assert_eq!(d.len(), 5);
    }

    #[test]
    fn watched_keys_become_ready_when_they_hold_a_list_or_zset() {
        let mut d = db();
        d.set(b"k", Value::List(Box::default()), NO_EXPIRE, 0);
        let mut ready = Vec::new();
        d.take_ready(&mut ready);
        assert!(ready.is_empty(), "an unwatched key is never ready");
        d.watch(b"k");
        d.watch(b"z");
        d.watch(b"s");
        d.set(b"s", Value::Str(b"x".to_vec()), NO_EXPIRE, 0);
        assert!(!d.has_ready(), "a string never serves a blocked client");
        d.set(b"z", Value::ZSet(Box::default()), NO_EXPIRE, 0);
        d.set(b"k", Value::List(Box::default()), NO_EXPIRE, 0);
        d.set(b"z", Value::ZSet(Box::default()), NO_EXPIRE, 0);
        d.take_ready(&mut ready);
        assert_eq!(ready, vec![Box::from(&b"z"[..]), Box::from(&b"k"[..])], "once each, in order");
        ready.clear();
        d.set(b"k", Value::List(Box::default()), NO_EXPIRE, 0);
        d.unwatch(b"z");
        d.set(b"z", Value::ZSet(Box::default()), NO_EXPIRE, 0);
        d.take_ready(&mut ready);
        assert_eq!(ready, vec![Box::from(&b"k"[..])]);
    }

    #[test]
    fn swapped_data_leaves_watches_in_place_and_signals_what_arrived() {
        let (mut a, mut b) = (db(), db());
        a.watch(b"q");
        b.set(b"q", Value::List(Box::default()), NO_EXPIRE, 0);
        std::mem::swap(&mut a, &mut b);
        a.swap_watched(&mut b);
        assert_eq!(b.watched_len(), 0);
        let mut ready = Vec::new();
        a.take_ready(&mut ready);
        assert_eq!(ready, vec![Box::from(&b"q"[..])]);
    }

    #[test]
    fn set_str_replaces_any_type_and_tracks_ttls() {
        let mut d = db();
        d.set(b"k", Value::List(Box::default()), 50, 0);
        assert!(d.set_str(b"k", b"v", NO_EXPIRE, 0), "a live key was replaced");
        assert_eq!(d.counts(), DbCounts { keys: 1, volatile: 0 });
        assert_eq!(d.get(b"k", 0).map(|e| (e.type_name(), e.to_value())), Some(("string", Value::Str(b"v".to_vec()))));
        assert!(d.set_str(b"k", &[b'x'; 300], 70, 0));
        assert_eq!(d.counts(), DbCounts { keys: 1, volatile: 1 });
        assert!(!d.set_str(b"k", b"w", NO_EXPIRE, 80), "an expired key counts as absent");
        assert_eq!(d.get(b"k", 80).map(|e| e.expire_at()), Some(NO_EXPIRE));
        // MEMORY USAGE: the 64-byte block of a 16-byte key and 32-byte value, and the table's share.
        d.set_str(&[b'k'; 16], &[b'v'; 32], NO_EXPIRE, 0);
        assert_eq!(d.peek(&[b'k'; 16], 0).map(Db::entry_bytes), Some(64 + TABLE_BYTES_PER_KEY));
    }

    #[test]
    fn a_shard_keeps_a_table_per_owned_slot_and_clears_what_a_sender_names() {
        let owned = slot::SlotMap::new(3).slots(1);
        let mut d = Db::new(owned);
        let keys: Vec<String> = (0..)
            .map(|i| format!("k{i}"))
            .filter(|k| owned.contains(slot::key_slot(k.as_bytes()) as usize))
            .take(300)
            .collect();
        for k in &keys {
            d.set(k.as_bytes(), Value::Str(k.as_bytes().to_vec()), NO_EXPIRE, 0);
        }
        assert_eq!(d.slots.len(), owned.len(), "one table per owned slot, 16384 / 3 of them");
        assert!(keys.iter().all(|k| d.get(k.as_bytes(), 0).is_some()));
        assert_eq!(owned.iter().map(|s| d.slot_len(s)).sum::<usize>(), 300);
        // A full sync from shard 0 of a 2-shard primary replaces the even slots only.
        let even = slot::SlotMap::new(2).slots(0);
        d.clear_slots(0..slot::SLOTS, &[even]);
        let odd = |k: &String| slot::key_slot(k.as_bytes()) % 2 == 1;
        assert_eq!(d.len(), keys.iter().filter(|k| odd(k)).count());
        assert!(keys.iter().all(|k| d.get(k.as_bytes(), 0).is_some() == odd(k)));
        // A range, every sender: the keys of that range go.
        let cut = 8000;
        d.clear_slots(0..cut, &[]);
        let left = |k: &&String| odd(k) && slot::key_slot(k.as_bytes()) as usize >= cut;
        assert_eq!(d.len(), keys.iter().filter(left).count());
        assert!(keys.iter().filter(left).all(|k| d.get(k.as_bytes(), 0).is_some()));
        // Two restrictions: only the slots among both go (a migration's
        // flush from shard 1 of a 4-shard source, journaled by shard 1 of
        // a 5-shard target, applied on this replica shard of 3).
        let (source, target) = (slot::SlotMap::new(4).slots(1), slot::SlotMap::new(5).slots(1));
        let before: Vec<&String> = keys.iter().filter(|k| d.get(k.as_bytes(), 0).is_some()).collect();
        d.clear_slots(cut..slot::SLOTS, &[source, target]);
        let both = |k: &String| {
            let s = slot::key_slot(k.as_bytes()) as usize;
            s >= cut && source.contains(s) && target.contains(s)
        };
        assert!(before.iter().any(|k| both(k)) && before.iter().any(|k| !both(k)));
        for k in &before {
            assert_eq!(d.get(k.as_bytes(), 0).is_some(), !both(k), "{k}");
        }
        assert_eq!(d.len(), before.iter().filter(|k| !both(k)).count());
    }

    #[test]
    fn a_slot_empties_a_bounded_batch_at_a_time() {
        let mut d = db();
        // 1,000 keys of one hash-tag slot, every third with a TTL, and one elsewhere.
        for i in 0..1_000 {
            let expire = if i % 3 == 0 { 1_000 } else { NO_EXPIRE };
            d.set(format!("{{t}}{i}").as_bytes(), Value::Str(b"v".to_vec()), expire, 0);
        }
        d.set(b"other", Value::Str(b"v".to_vec()), 1_000, 0);
        let s = slot::key_slot(b"{t}") as usize;
        let mut batches = 0;
        loop {
            let removed = d.remove_from_slot(s, 256);
            batches += 1;
            assert_eq!(d.len(), 1 + d.slot_len(s));
            if removed < 256 {
                break;
            }
        }
        assert_eq!(batches, 4, "256 + 256 + 256 + 232");
        assert_eq!((d.len(), d.counts.volatile), (1, 1), "only the other key, with its TTL, is left");
        assert_eq!(d.slots[s].table.capacity(), 0, "the emptied table's memory went back");
        assert_eq!(d.remove_from_slot(s, 256), 0);
        assert!(d.get(b"other", 0).is_some());
    }

    #[test]
    fn many_keys_survive_table_growth() {
        let mut d = db();
        for i in 0..20_000u32 {
            d.set(&i.to_be_bytes(), Value::Str(i.to_le_bytes().to_vec()), NO_EXPIRE, 0);
        }
        for i in 0..20_000u32 {
            assert_eq!(d.get(&i.to_be_bytes(), 0).map(|e| e.to_value()), Some(Value::Str(i.to_le_bytes().to_vec())));
        }
        let total: usize = (0..slot::SLOTS).map(|s| d.slot_len(s)).sum();
        assert_eq!(total, 20_000);
        let mut rng = fastrand::Rng::with_seed(7);
        assert!(d.random_entry(&mut rng).is_some());
    }
}
