//! The keyspace of one shard: its databases over its owned slots, and the
//! bookkeeping shared by every command (clock, randomness, counters).

use crate::db::{Db, UnixMs};
use std::ops::Range;

/// Counters a shard keeps about command effects (INFO stats).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    /// Successful key lookups by read commands.
    pub hits: u64,
    /// Failed key lookups by read commands.
    pub misses: u64,
    /// Writes that changed the keyspace (Redis's `dirty`).
    pub dirty: u64,
}

/// Bounds on the work one active-expiry pass does.
pub const ACTIVE_EXPIRE_ENTRIES_MAX: usize = 20_000;

/// One shard's data.
pub struct Keyspace {
    dbs: Vec<Db>,
    owned: Range<usize>,
    /// Shard-local randomness (RANDOMKEY, HRANDFIELD).
    pub rng: fastrand::Rng,
    /// Counters for INFO.
    pub stats: KeyspaceStats,
    expire_cursor: (usize, usize),
}

impl Keyspace {
    /// `databases` empty databases over the slots `owned`.
    pub fn new(databases: usize, owned: Range<usize>) -> Self {
        Keyspace {
            dbs: (0..databases).map(|_| Db::new(owned.clone())).collect(),
            owned: owned.clone(),
            rng: fastrand::Rng::new(),
            stats: KeyspaceStats::default(),
            expire_cursor: (0, owned.start),
        }
    }

    /// The slots this shard owns.
    pub fn owned(&self) -> Range<usize> {
        self.owned.clone()
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
        self.dbs.swap(a, b);
    }

    /// A random key of database `db` and whether it has expired at `now`.
    pub fn random_key(&mut self, db: usize, now: UnixMs) -> Option<(Vec<u8>, bool)> {
        self.dbs[db].random_entry(&mut self.rng).map(|e| (e.key().to_vec(), e.is_expired(now)))
    }

    /// Keys removed by expiry, over all databases.
    pub fn expired_keys(&self) -> u64 {
        self.dbs.iter().map(|d| d.expired).sum()
    }

    /// One bounded pass of active expiry: walks slots from where the last pass
    /// stopped, over every database with keys that carry a TTL, removing
    /// expired keys, until `entries_max` entries were examined or every slot
    /// was visited once. Returns the number of keys removed.
    pub fn active_expire(&mut self, now: UnixMs, entries_max: usize) -> usize {
        if self.dbs.iter().all(|d| d.counts().volatile == 0) {
            return 0;
        }
        let (mut db, mut slot) = self.expire_cursor;
        let span = self.owned.len();
        let (mut visited, mut examined, mut removed) = (0, 0, 0);
        // At most one pass over every database; a database without TTL keys
        // is skipped whole and counts as visited.
        while visited < span * self.dbs.len() && examined < entries_max {
            if self.dbs[db].counts().volatile > 0 {
                let (e, r) = self.dbs[db].expire_slot(slot, now);
                examined += e;
                removed += r;
                slot += 1;
                visited += 1;
            } else {
                visited += self.owned.end - slot;
                slot = self.owned.end;
            }
            if slot >= self.owned.end {
                slot = self.owned.start;
                db = (db + 1) % self.dbs.len();
            }
        }
        self.expire_cursor = (db, slot);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NO_EXPIRE;
    use crate::value::Value;

    #[test]
    fn active_expire_reclaims_across_databases_within_bounds() {
        let mut ks = Keyspace::new(4, 0..crate::slot::SLOTS);
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
}
