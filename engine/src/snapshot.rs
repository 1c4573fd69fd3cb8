//! A point-in-time snapshot of one shard's keyspace (or of a range of its
//! slots), taken without fork and without stopping the shard, serialized as
//! the RESP commands a replica applies with its normal command path. Full
//! sync sends it before the journal; slot migration and persistence are
//! meant to reuse it.
//!
//! ```text
//!   slots  s0 s1 s2 s3 s4 s5 ...          done: serialized as at creation
//!          ██ ██ ░░ ██ ░░ ░░              cursor: next slot `fill` serializes
//!                ▲  ▲
//!           cursor  a write to a key of s3 came first: `before_write`
//!                   serialized s3 (or, s3 being big, that key alone, noted
//!                   in s3's early set) into `pending`, which the next `fill`
//!                   hands out first; a big slot at the cursor is walked
//!                   over several calls from the list of its key names
//!
//!   stream:  SELECT <db>                         when the database changes
//!            RESTORE <key> <abs-expire-ms|0> <DUMP payload> REPLACE ABSTTL
//! ```
//!
//! # Copy-on-write per slot, or per key in a big slot
//!
//! The snapshot stands for every key of its slots, in every database, as
//! they were when [`Snapshot::new`] ran. Nothing is copied then. [`fill`]
//! serializes slots in order as the network layer asks for more (all
//! databases of a slot together), and marks each one done: a slot of at
//! most [`WHOLE_SLOT_KEYS`] keys at once, a bigger one a key at a time over
//! as many calls as it takes (see "A big slot, a slice at a time" below).
//! Before a write command changes a key, the caller calls [`before_write`]
//! with the key and its slot. If the slot is not done yet, what the write
//! may change is serialized right then, as it still is (into a buffer the
//! next [`fill`] hands out ahead of the rest), and the write then goes
//! ahead:
//!
//! - a slot of at most [`WHOLE_SLOT_KEYS`] keys (all databases together) is
//!   serialized whole and marked done: a few keys' work, no bookkeeping.
//!   This is Dragonfly's versioned snapshot with the slot as its bucket.
//! - in a bigger slot, only the key name is serialized, in every database
//!   where it is live (MOVE and COPY ... DB reach another database under the
//!   same name), and the name goes into the slot's *early set*, even when
//!   it exists nowhere (a key the write creates must not be serialized
//!   later with its new value: the journal creates it, and LPUSH, INCR or
//!   APPEND applied twice differ from once). When the slot is serialized,
//!   by [`fill`] or otherwise, the names in its early set are left out and
//!   the set is dropped. Without this, a migration or a full sync of a
//!   keyspace with thousands of keys per slot serialized a whole slot (and,
//!   with writes spread out, most of the range) on the shard before the
//!   first writes could run.
//!
//! Commands that touch every slot (FLUSHDB, FLUSHALL, SWAPDB) call
//! [`before_write_all`], which serializes every slot not done yet;
//! [`pending_bytes`] then shows what that costs. A write that removes a
//! whole slot (migration's cleanup of a slot that moved away) calls
//! [`before_write_slot`].
//!
//! The caller calls [`before_write`] for every key a write command may
//! change, before it runs: the command table's key positions (all of them:
//! RENAME's source loses its key), the keys a handler writes beyond them
//! (the `EXTRA_KEYS` flag: SORT's STORE destination), every command of a
//! MULTI/EXEC, and the keys a blocked client's pop changes when it is
//! served. MOVE changes another database under the same key name, which the
//! slot, or the name, already covers.
//!
//! # A big slot, a slice at a time
//!
//! When [`fill`] reaches a slot of more than [`WHOLE_SLOT_KEYS`] keys, it
//! takes the list of its key names, every database's, in the order its
//! tables hold them (copying names costs a small part of serializing the
//! values), less the names of its early set, which it drops; it serializes
//! from that list, looking each key up again, a key at a time, until its
//! output reaches `max_bytes`; the next call goes on from there. The slot
//! is done when the list is. While the slot is in progress,
//! [`before_write`] of one of its keys looks the name up in the list (an
//! index sorted by hash and name, built on the slot's first such write:
//! most walks meet none) and finds its entries that are:
//!
//! - still to come (in some databases): those are serialized now, into
//!   `pending`, and marked so that the walk skips them;
//! - already serialized by the walk (or serialized early and skipped), or
//!   missing from the list (created after the snapshot point, or saved
//!   early before the walk began): nothing to do; the journal carries the
//!   write.
//!
//! A key deleted (evicted, expired) before the walk reaches it is found
//! missing then and left out. [`before_write_slot`] and [`before_write_all`]
//! serialize the rest of the list at once, as they do a slot not started.
//! The list (names and 24 bytes per key, 16 more with the index) counts in
//! [`early_bytes`] until the slot is done.
//!
//! Deletions need no [`before_write`]: a lazy expiry or an eviction that
//! removes a key from a slot not yet serialized leaves the snapshot without
//! that key, and the journal carries the `DEL` the replica then applies,
//! which changes nothing there. Deleting twice is deleting once. So does a
//! key in an early set deleted after it was serialized: the replica gets
//! it from the snapshot, then the `DEL`.
//!
//! # Consistency with the journal
//!
//! In the same step that creates the snapshot, with no write in between, the
//! caller takes the journal's [`end_lsn`] and calls its [`force_select`]. A
//! replica that applies the whole snapshot stream and then the journal from
//! that LSN ends with exactly the primary's data: the snapshot holds every
//! slot as it was at that LSN, and the journal holds every write after it,
//! starting with a `SELECT` of its own. Several snapshots may be active on
//! one shard (two replicas syncing at once): each is an independent value
//! with its own LSN, and the caller calls [`before_write`] on each.
//!
//! # Bounds
//!
//! A call to [`fill`] stops after the small slot, key (of a big slot) or
//! pending piece that took its output past `max_bytes`, and its output
//! always ends at a command boundary. One key is the unit of
//! serialization: a big value is written whole, so a piece can exceed
//! `max_bytes` by a key's size, or by a small slot's. Starting a big slot
//! costs the copy of its key names, once (and the first write that meets
//! it during the walk, their sort). [`before_write`] does
//! one small slot's work, or one key's; [`before_write_slot`] one slot's,
//! however big; [`before_write_all`] does all the remaining work at once.
//! What they serialize stays in memory until it is handed out, which the
//! caller watches with [`pending_bytes`], and the early sets' key names
//! with [`early_bytes`]: both grow only with the writes made while the
//! snapshot streams (the caller may end it by dropping the snapshot: the
//! replica then resyncs, as DESIGN.md's bounded-memory rule asks).
//!
//! Keys already expired when their slot is serialized are left out. TTLs
//! travel as absolute Unix milliseconds (`ABSTTL`), so a key expires on the
//! replica at the same instant as on the primary.
//!
//! [`fill`]: Snapshot::fill
//! [`before_write`]: Snapshot::before_write
//! [`before_write_slot`]: Snapshot::before_write_slot
//! [`before_write_all`]: Snapshot::before_write_all
//! [`pending_bytes`]: Snapshot::pending_bytes
//! [`early_bytes`]: Snapshot::early_bytes
//! [`end_lsn`]: crate::journal::Journal::end_lsn
//! [`force_select`]: crate::journal::Journal::force_select

use crate::db::{Entry, UnixMs};
use crate::journal::encode_command;
use crate::keyspace::Keyspace;
use crate::slot::{SLOTS, ShardSlots};
use hashbrown::{DefaultHashBuilder, HashMap, HashSet};
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::ops::Range;

/// Slots serialized by [`Snapshot::before_write_all`] (or by successive
/// [`Snapshot::before_write`] calls) are gathered into pieces of about this
/// size, so that [`Snapshot::fill`] can still hand them out near its bound.
pub const PENDING_PIECE_BYTES: usize = 64 * 1024;

/// A slot holding at most this many keys (all databases together) when a
/// write first reaches it is serialized whole, as one unit: the work is
/// bounded by these few keys, and it needs no bookkeeping. A bigger slot is
/// copied on write per key name (see the module comment). At about 0.2 µs
/// per small key (the `snapshot_cow` bench: 0.6-0.7 ms for a slot of 3,333
/// keys), a whole slot of 64 costs a write about 13 µs once, the order of a
/// request's own cost, while a per-key copy costs 0.3-0.5 µs on each first
/// write of a name, and a set entry until the slot is sent. A node's keys
/// spread evenly over 16,384 slots stay under 64 per slot up to about a
/// million keys, so only hash tags and bigger keyspaces pay for the sets.
pub const WHOLE_SLOT_KEYS: usize = 64;

/// The bytes an early set holds per slot of its table, beyond the key
/// names: the boxed name and hashbrown's control byte.
const EARLY_SLOT_BYTES: usize = std::mem::size_of::<Box<[u8]>>() + 1;

const WORD_BITS: usize = u64::BITS as usize;

/// One bit per slot.
struct SlotSet {
    words: Box<[u64; SLOTS / WORD_BITS]>,
}

impl SlotSet {
    fn new() -> Self {
        SlotSet { words: Box::new([0; SLOTS / WORD_BITS]) }
    }

    #[inline]
    fn contains(&self, slot: usize) -> bool {
        self.words[slot / WORD_BITS] & (1 << (slot % WORD_BITS)) != 0
    }

    #[inline]
    fn insert(&mut self, slot: usize) {
        self.words[slot / WORD_BITS] |= 1 << (slot % WORD_BITS);
    }
}

/// Serialized slots not handed out yet: their commands and how many keys.
struct Piece {
    bytes: Vec<u8>,
    keys: u64,
}

/// A key of a [`SlotWalk`]: where its name lies in the walk's names, and
/// its database.
#[derive(Clone, Copy)]
struct WalkKey {
    start: usize,
    end: usize,
    db: u32,
    /// Serialized by [`Snapshot::before_write`] ahead of the walk, which
    /// leaves it out.
    skip: bool,
}

/// A big slot [`Snapshot::fill`] serializes over several calls: the
/// names of its keys (per database) when its serialization started, less
/// those serialized early, and how far the walk got.
struct SlotWalk {
    slot: usize,
    /// The key names, one after another.
    names: Vec<u8>,
    /// In the order the slot's tables listed them, database by database.
    keys: Vec<WalkKey>,
    /// The hash of each name and its index in `keys`, sorted by hash, then
    /// name, then database: built on the first write to the slot during
    /// the walk, to find its key's entries. Most walks meet no write, and
    /// the sort costs about a third of serializing the slot (a sort by
    /// name alone, comparing names, cost all of it).
    index: Option<Vec<(u64, usize)>>,
    hasher: DefaultHashBuilder,
    /// The next key to serialize: those below were serialized (or skipped).
    next: usize,
}

impl SlotWalk {
    /// Takes the names of the keys of `slot` live at `now`, in every
    /// database, less those of `early`.
    fn new(ks: &Keyspace, slot: usize, now: UnixMs, early: Option<&HashSet<Box<[u8]>>>) -> Self {
        let count = ks.dbs().iter().map(|db| db.slot_len(slot)).sum();
        let mut names = Vec::new();
        let mut keys = Vec::with_capacity(count);
        for (i, db) in ks.dbs().iter().enumerate() {
            db.for_each_in_slot(slot, |e| {
                if e.is_expired(now) || early.is_some_and(|set| set.contains(e.key())) {
                    return;
                }
                let start = names.len();
                names.extend_from_slice(e.key());
                keys.push(WalkKey { start, end: names.len(), db: i as u32, skip: false });
            });
        }
        SlotWalk { slot, names, keys, index: None, hasher: DefaultHashBuilder::default(), next: 0 }
    }

    fn name(&self, k: &WalkKey) -> &[u8] {
        &self.names[k.start..k.end]
    }

    /// The indices in `keys` of the entries named `key` still to come (one
    /// per database where it was live and not serialized yet), none when
    /// the walk is past them or never had them.
    fn still_to_come(&mut self, key: &[u8]) -> Vec<usize> {
        let index = match self.index.take() {
            Some(index) => index,
            None => {
                let mut index: Vec<(u64, usize)> =
                    self.keys.iter().enumerate().map(|(i, k)| (self.hasher.hash_one(self.name(k)), i)).collect();
                let name = |i: usize| self.name(&self.keys[i]);
                index.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| name(a.1).cmp(name(b.1))).then(a.1.cmp(&b.1)));
                index
            }
        };
        let hash = self.hasher.hash_one(key);
        let lo = index.partition_point(|&(h, i)| (h, self.name(&self.keys[i])) < (hash, key));
        let same = index[lo..].iter().take_while(|&&(h, i)| h == hash && self.name(&self.keys[i]) == key);
        let to_come = same.map(|&(_, i)| i).filter(|&i| i >= self.next && !self.keys[i].skip).collect();
        self.index = Some(index);
        to_come
    }

    /// What the walk holds, for memory accounting.
    fn bytes(&self) -> usize {
        self.names.capacity()
            + self.keys.capacity() * std::mem::size_of::<WalkKey>()
            + self.index.as_ref().map_or(0, |index| index.capacity() * std::mem::size_of::<(u64, usize)>())
    }
}

/// A point-in-time snapshot of a shard's slots; see the module comment.
pub struct Snapshot {
    /// The shard's slots.
    owned: ShardSlots,
    /// The local indices ([`ShardSlots::local`]) of the slots it covers:
    /// those asked for that the shard owns.
    locals: Range<usize>,
    /// The local index of the next slot [`Snapshot::fill`] serializes (or
    /// is serializing: `walk`); every slot below it is done.
    cursor: usize,
    /// The big slot at `cursor` that [`Snapshot::fill`] is serializing,
    /// over several calls.
    walk: Option<SlotWalk>,
    /// Slots at or past `cursor` that [`Snapshot::before_write`] serialized.
    done: SlotSet,
    /// Serialized by `before_write`, oldest first; handed out before any
    /// further slot, so the stream keeps the order things were serialized in.
    pending: VecDeque<Piece>,
    pending_bytes: usize,
    /// Per slot not done yet, the key names [`Snapshot::before_write`]
    /// serialized alone (or found missing) ahead of their slot; the slot's
    /// serialization skips them, then drops the set.
    early: HashMap<u16, HashSet<Box<[u8]>>>,
    /// What the early sets hold, for memory accounting.
    early_bytes: usize,
    /// Slots with at most this many keys are serialized whole on a write.
    whole_slot_keys: usize,
    /// Serializes slots without leaving out their early keys (the bug the
    /// early sets prevent), to show the tests catch it.
    #[cfg(test)]
    ignore_early: bool,
    /// Lets writes to keys of the slot being walked go ahead without
    /// serializing them first (the bug the walk's rule prevents), to show
    /// the tests catch it.
    #[cfg(test)]
    ignore_walk: bool,
    /// The database of the stream's last `SELECT` (`None`: none yet).
    selected: Option<usize>,
    keys_sent: u64,
    bytes_sent: u64,
    /// A DUMP payload being built, kept for its allocation.
    payload: Vec<u8>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("owned", &self.owned)
            .field("locals", &self.locals)
            .field("cursor", &self.cursor)
            .field("pending_bytes", &self.pending_bytes)
            .field("keys_sent", &self.keys_sent)
            .field("bytes_sent", &self.bytes_sent)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot of every slot `ks` owns, as it is now.
    pub fn new(ks: &Keyspace) -> Self {
        Self::of_slots(ks, 0..SLOTS)
    }

    /// A snapshot of the slots of `slots` that `ks` owns, as they are now
    /// (migration sends a range of slots). An empty intersection gives a
    /// snapshot that is finished at once.
    pub fn of_slots(ks: &Keyspace, slots: Range<usize>) -> Self {
        let owned = ks.owned();
        let locals = owned.locals(slots);
        Snapshot {
            owned,
            cursor: locals.start,
            walk: None,
            locals,
            done: SlotSet::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            early: HashMap::new(),
            early_bytes: 0,
            whole_slot_keys: WHOLE_SLOT_KEYS,
            #[cfg(test)]
            ignore_early: false,
            #[cfg(test)]
            ignore_walk: false,
            selected: None,
            keys_sent: 0,
            bytes_sent: 0,
            payload: Vec::new(),
        }
    }

    /// The slots the snapshot covers, in order.
    pub fn slots(&self) -> impl DoubleEndedIterator<Item = usize> + Clone + use<> {
        let owned = self.owned;
        self.locals.clone().map(move |l| owned.slot(l))
    }

    /// True when the snapshot covers `slot`.
    pub fn covers(&self, slot: usize) -> bool {
        self.owned.contains(slot) && self.locals.contains(&self.owned.local(slot))
    }

    /// True when every slot was serialized and handed out.
    pub fn is_finished(&self) -> bool {
        self.cursor == self.locals.end && self.pending.is_empty()
    }

    /// Bytes serialized but not handed out yet (by [`Snapshot::before_write`]
    /// and [`Snapshot::before_write_all`]), for memory accounting.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes held by the sets of key names copied on write ahead of their
    /// slot (about, from the sets' capacities), and by the list of key
    /// names of the big slot [`Snapshot::fill`] is serializing, for memory
    /// accounting beside [`Snapshot::pending_bytes`]. Each set goes when
    /// its slot's serialization starts, the list when it ends.
    pub fn early_bytes(&self) -> usize {
        self.early_bytes + self.walk.as_ref().map_or(0, SlotWalk::bytes)
    }

    /// Sets the most keys a slot may hold to be serialized whole on a
    /// write ([`WHOLE_SLOT_KEYS`] by default); 0 copies every slot per key.
    #[cfg(test)]
    fn set_whole_slot_keys(&mut self, keys: usize) {
        self.whole_slot_keys = keys;
    }

    /// Keys handed out so far.
    pub fn keys_sent(&self) -> u64 {
        self.keys_sent
    }

    /// Bytes handed out so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// True when `slot` is in the snapshot and already serialized: a write
    /// to it no longer concerns the snapshot.
    fn is_done(&self, slot: usize) -> bool {
        self.owned.local(slot) < self.cursor || self.done.contains(slot)
    }

    /// Appends the next part of the stream to `out`: first what
    /// [`Snapshot::before_write`] serialized, then further slots in order,
    /// stopping after the piece, small slot or key that took the output
    /// past `max_bytes` (nothing when it is 0). A slot of more than
    /// [`WHOLE_SLOT_KEYS`] keys is serialized a key at a time, from the
    /// list of its key names taken when its turn comes, over as many calls
    /// as it takes. The output ends at a command boundary. Keys expired at
    /// `now` are left out. Returns true when the snapshot is finished: this
    /// call handed out its last bytes (or there were none left).
    pub fn fill(&mut self, ks: &Keyspace, now: UnixMs, max_bytes: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        while out.len() - start < max_bytes {
            if let Some(piece) = self.pending.pop_front() {
                self.pending_bytes -= piece.bytes.len();
                self.keys_sent += piece.keys;
                out.extend_from_slice(&piece.bytes);
                continue;
            }
            if let Some(walk) = self.walk.take() {
                let (keys, walk) = self.walk_on(ks, walk, now, start + max_bytes, out);
                self.keys_sent += keys;
                if walk.is_none() {
                    self.cursor += 1;
                }
                self.walk = walk;
                continue;
            }
            if self.cursor == self.locals.end {
                break;
            }
            let slot = self.owned.slot(self.cursor);
            if self.done.contains(slot) {
                self.cursor += 1;
                continue;
            }
            if ks.dbs().iter().map(|db| db.slot_len(slot)).sum::<usize>() > self.whole_slot_keys {
                // The names of the keys the snapshot still owes, sorted:
                // far cheaper than serializing them all at once.
                let early = self.take_early(slot);
                self.walk = Some(SlotWalk::new(ks, slot, now, early.as_ref()));
                continue;
            }
            self.cursor += 1;
            // The entries are scattered allocations, each a cache miss: the
            // next slot's start loading while this one is written.
            if self.cursor < self.locals.end {
                let next = self.owned.slot(self.cursor);
                for db in ks.dbs() {
                    db.prefetch_slot(next);
                }
            }
            self.keys_sent += self.serialize_slot(ks, slot, now, out);
        }
        self.bytes_sent += (out.len() - start) as u64;
        self.is_finished()
    }

    /// Call before a write changes `key` (on every snapshot active on the
    /// shard, for every key the write may change), with `slot` its slot.
    /// When the slot is in the snapshot and not serialized yet, saves what
    /// the write may change as it still is, for the next [`Snapshot::fill`]
    /// to hand out first: the whole slot when it holds few keys
    /// ([`WHOLE_SLOT_KEYS`]), else `key` alone, in every database (nothing
    /// where it is missing), remembered so that the slot's serialization
    /// leaves it out. In the big slot [`Snapshot::fill`] is serializing,
    /// saves `key` in the databases where the walk still has it to come,
    /// and the walk leaves it out. Otherwise, and for a key already saved,
    /// does nothing.
    pub fn before_write(&mut self, ks: &Keyspace, slot: usize, key: &[u8], now: UnixMs) {
        debug_assert_eq!(slot, crate::slot::key_slot(key) as usize);
        if !self.covers(slot) || self.is_done(slot) {
            return;
        }
        if let Some(mut walk) = self.walk.take_if(|w| w.slot == slot) {
            // Keys the walk passed went out as they were at the snapshot
            // point; keys missing from its list were created after it (or
            // saved early before it started): the journal carries them.
            #[cfg(test)]
            let ignore = self.ignore_walk;
            #[cfg(not(test))]
            let ignore = false;
            let to_come = walk.still_to_come(key);
            if !to_come.is_empty() && !ignore {
                self.push_pending(|this, out| {
                    let mut keys = 0;
                    for i in to_come {
                        let k = &mut walk.keys[i];
                        let db = &ks.dbs()[k.db as usize];
                        if let Some(e) = db.peek_in_slot(slot, &walk.names[k.start..k.end], now) {
                            this.write_entry(k.db as usize, e, out);
                            keys += 1;
                        }
                        k.skip = true;
                    }
                    keys
                });
            }
            self.walk = Some(walk);
            return;
        }
        let slot_id = slot as u16;
        if let Some(set) = self.early.get(&slot_id) {
            if set.contains(key) {
                return;
            }
        } else if ks.dbs().iter().map(|db| db.slot_len(slot)).sum::<usize>() <= self.whole_slot_keys {
            return self.before_write_slot(ks, slot, now);
        }
        let set = self.early.entry(slot_id).or_default();
        let capacity = set.capacity();
        set.insert(key.into());
        self.early_bytes += key.len() + (set.capacity() - capacity) * EARLY_SLOT_BYTES;
        self.push_pending(|this, out| this.serialize_key(ks, key, now, out));
    }

    /// Call before a write changes every key of `slot` (migration's cleanup
    /// deletes it): when the slot is in the snapshot and not serialized
    /// yet, serializes it now, as it still is (less the keys saved alone
    /// before), for the next [`Snapshot::fill`] to hand out first.
    /// Otherwise does nothing.
    pub fn before_write_slot(&mut self, ks: &Keyspace, slot: usize, now: UnixMs) {
        if !self.covers(slot) || self.is_done(slot) {
            return;
        }
        self.done.insert(slot);
        if let Some(walk) = self.walk.take_if(|w| w.slot == slot) {
            // What the walk has still to come, at once.
            self.push_pending(|this, out| {
                let (keys, rest) = this.walk_on(ks, walk, now, usize::MAX, out);
                debug_assert!(rest.is_none());
                keys
            });
            return;
        }
        self.push_pending(|this, out| this.serialize_slot(ks, slot, now, out));
    }

    /// Runs `serialize` into the last pending piece, or a new one: small
    /// slots and single keys share a piece, so a burst of writes over many
    /// slots does not leave one allocation per slot.
    fn push_pending(&mut self, serialize: impl FnOnce(&mut Self, &mut Vec<u8>) -> u64) {
        let mut piece = match self.pending.back() {
            Some(last) if last.bytes.len() < PENDING_PIECE_BYTES => self.pending.pop_back(),
            _ => None,
        }
        .unwrap_or(Piece { bytes: Vec::new(), keys: 0 });
        let before = piece.bytes.len();
        piece.keys += serialize(self, &mut piece.bytes);
        self.pending_bytes += piece.bytes.len() - before;
        if !piece.bytes.is_empty() {
            self.pending.push_back(piece);
        }
    }

    /// Call before a write that changes every slot (FLUSHDB, FLUSHALL,
    /// SWAPDB): serializes every slot not serialized yet. The work is the
    /// whole remaining snapshot, at once, and its bytes stay pending until
    /// handed out.
    pub fn before_write_all(&mut self, ks: &Keyspace, now: UnixMs) {
        for local in self.cursor..self.locals.end {
            self.before_write_slot(ks, self.owned.slot(local), now);
        }
        // Every slot is done now: `fill` need not walk them again.
        self.cursor = self.locals.end;
    }

    /// Removes the early set of `slot`, whose serialization starts, and
    /// returns it (`None` when the test switch `ignore_early` is on).
    fn take_early(&mut self, slot: usize) -> Option<HashSet<Box<[u8]>>> {
        let early = self.early.remove(&(slot as u16));
        if let Some(set) = &early {
            self.early_bytes -= set.iter().map(|k| k.len()).sum::<usize>() + set.capacity() * EARLY_SLOT_BYTES;
        }
        #[cfg(test)]
        let early = early.filter(|_| !self.ignore_early);
        early
    }

    /// Serializes the keys `walk` has still to come, in order, into `out`
    /// until `out` reaches `end` bytes. Returns how many keys it wrote,
    /// and the walk, or `None` when it is over (the slot is done).
    fn walk_on(
        &mut self,
        ks: &Keyspace,
        mut walk: SlotWalk,
        now: UnixMs,
        end: usize,
        out: &mut Vec<u8>,
    ) -> (u64, Option<SlotWalk>) {
        let mut keys = 0;
        while out.len() < end {
            let Some(&k) = walk.keys.get(walk.next) else {
                return (keys, None);
            };
            walk.next += 1;
            if k.skip {
                continue;
            }
            if let Some(e) = ks.dbs()[k.db as usize].peek_in_slot(walk.slot, walk.name(&k), now) {
                self.write_entry(k.db as usize, e, out);
                keys += 1;
            }
        }
        (keys, (walk.next < walk.keys.len()).then_some(walk))
    }

    /// Appends the live keys of `slot`, every database in turn, as RESTORE
    /// commands (with a SELECT where the database changes) to `out`, and
    /// returns how many keys it wrote. Key names saved alone before are
    /// left out, and their set is dropped: the slot is done after this.
    fn serialize_slot(&mut self, ks: &Keyspace, slot: usize, now: UnixMs, out: &mut Vec<u8>) -> u64 {
        debug_assert!(self.covers(slot), "a snapshot serializes only its own slots");
        let early = self.take_early(slot);
        let mut keys = 0;
        for (i, db) in ks.dbs().iter().enumerate() {
            if db.slot_len(slot) == 0 {
                continue;
            }
            db.for_each_in_slot(slot, |e| {
                if e.is_expired(now) || early.as_ref().is_some_and(|set| set.contains(e.key())) {
                    return;
                }
                self.write_entry(i, e, out);
                keys += 1;
            });
        }
        keys
    }

    /// Appends `key` as it is in every database where it is live, as
    /// RESTORE commands (with a SELECT where the database changes), to
    /// `out`, and returns how many it wrote.
    fn serialize_key(&mut self, ks: &Keyspace, key: &[u8], now: UnixMs, out: &mut Vec<u8>) -> u64 {
        let mut keys = 0;
        for (i, db) in ks.dbs().iter().enumerate() {
            if let Some(e) = db.peek(key, now).filter(|e| !e.is_expired(now)) {
                self.write_entry(i, e, out);
                keys += 1;
            }
        }
        keys
    }

    /// Appends the RESTORE of `e`, of database `db`, to `out`, after a
    /// SELECT when the stream's database is another.
    fn write_entry(&mut self, db: usize, e: &Entry, out: &mut Vec<u8>) {
        if self.selected != Some(db) {
            let mut n = itoa::Buffer::new();
            encode_command(out, [&b"SELECT"[..], n.format(db).as_bytes()]);
            self.selected = Some(db);
        }
        self.payload.clear();
        crate::dump::dump_into(e.value(), &mut self.payload);
        let mut ttl = itoa::Buffer::new();
        let expire = ttl.format(e.expire_at()).as_bytes();
        encode_command(out, [&b"RESTORE"[..], e.key(), expire, &self.payload, b"REPLACE", b"ABSTTL"]);
    }
}

#[cfg(test)]
mod tests {
    //! A primary keyspace A runs writes while snapshots of it are filled in
    //! small pieces; a replica B applies a snapshot's stream and then the
    //! writes run after its creation (what the journal would carry), and
    //! must end with A's digest.

    use super::*;
    use crate::args::OwnedArgs;
    use crate::cmd::{CommandTable, ConnCmd, Ctx, Items, Kind, flags};
    use crate::digest::{Digest, key_digest, value_digest};
    use crate::reply::{Proto, Reply};
    use crate::slot::{SlotMap, key_slot};

    const DATABASES: usize = 4;
    /// The clock when each test starts.
    const T0: UnixMs = 1_700_000_000_000;

    type Command = Vec<Vec<u8>>;

    fn command(parts: &[&str]) -> Command {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    /// Runs `args` against database `*db` of `ks` at `now`, as a shard owning
    /// all their keys runs it, and returns the reply. SELECT changes `*db`.
    fn exec(ks: &mut Keyspace, db: &mut usize, now: UnixMs, args: &[Vec<u8>]) -> Vec<u8> {
        let spec = CommandTable::get().lookup(&args[0]).expect("a known command");
        assert!(spec.arity_ok(args.len()), "arity of {:?}", String::from_utf8_lossy(&args[0]));
        let owned = OwnedArgs::from_parts(args);
        let view = owned.view();
        let mut out = Vec::new();
        match spec.kind {
            Kind::Keyed(h) | Kind::MultiKey { whole: h, .. } => {
                h(&mut Ctx { ks, db: *db, now, args: view }, &mut Reply::new(&mut out, Proto::Resp2));
            }
            Kind::AllShards { check, part, .. } => match check(&view) {
                Err(e) => Reply::new(&mut out, Proto::Resp2).error(&e),
                Ok(()) => {
                    let mut ends = Vec::new();
                    part(&mut Ctx { ks, db: *db, now, args: view }, &mut Items::new(&mut out, &mut ends, Proto::Resp2));
                }
            },
            Kind::Conn(ConnCmd::Select) => {
                let n: usize = std::str::from_utf8(&args[1]).ok().and_then(|t| t.parse().ok()).expect("a db index");
                assert!(n < ks.databases());
                *db = n;
                out.extend_from_slice(b"+OK\r\n");
            }
            _ => panic!("{} is not run by this test", spec.name),
        }
        out
    }

    /// Reads `*<n>\r\n` (or `$<n>\r\n`) at the start of `buf`.
    fn header(buf: &[u8], tag: u8) -> (usize, &[u8]) {
        assert_eq!(buf.first(), Some(&tag), "expected {:?}", tag as char);
        let cr = buf.iter().position(|&b| b == b'\r').expect("a header line");
        let n = std::str::from_utf8(&buf[1..cr]).ok().and_then(|t| t.parse().ok()).expect("a length");
        assert_eq!(buf.get(cr + 1), Some(&b'\n'));
        (n, &buf[cr + 2..])
    }

    /// The commands of a stream of RESP arrays of bulk strings; panics on
    /// anything else, a command cut short included.
    fn parse_stream(mut buf: &[u8]) -> Vec<Command> {
        let mut commands = Vec::new();
        while !buf.is_empty() {
            let (n, mut rest) = header(buf, b'*');
            let mut args = Vec::with_capacity(n);
            for _ in 0..n {
                let (len, after) = header(rest, b'$');
                assert!(after.len() >= len + 2, "a bulk cut short");
                args.push(after[..len].to_vec());
                assert_eq!(&after[len..len + 2], b"\r\n");
                rest = &after[len + 2..];
            }
            commands.push(args);
            buf = rest;
        }
        commands
    }

    /// The dataset digest of the live keys of `ks` in `slots`, every
    /// database (DEBUG DIGEST restricted to a range of slots).
    fn digest(ks: &Keyspace, now: UnixMs, slots: impl IntoIterator<Item = usize> + Clone) -> Digest {
        let mut sum = Digest::ZERO;
        for (i, db) in ks.dbs().iter().enumerate() {
            for slot in slots.clone() {
                db.for_each_in_slot(slot, |e| {
                    if !e.is_expired(now) {
                        sum = sum.combine(key_digest(i, e.key(), value_digest(e.value(), e.expire_at())));
                    }
                });
            }
        }
        sum
    }

    /// DEBUG DIGEST, run as a command.
    fn debug_digest(ks: &mut Keyspace, now: UnixMs) -> Vec<u8> {
        exec(ks, &mut 0, now, &command(&["DEBUG", "DIGEST"]))
    }

    /// A snapshot being filled, the stream it handed out so far, and where
    /// the primary's log stood when it was created (its LSN).
    struct Sync {
        snapshot: Snapshot,
        stream: Vec<u8>,
        created_at: UnixMs,
        log_at: usize,
        finished: bool,
    }

    impl Sync {
        /// Hands out one piece of at most about `max_bytes`, which must be
        /// whole commands.
        fn fill(&mut self, p: &Primary, max_bytes: usize) {
            let mut out = Vec::new();
            let finished = self.snapshot.fill(&p.ks, p.now, max_bytes, &mut out);
            assert!(!self.finished || out.is_empty(), "a finished snapshot hands out nothing more");
            if finished {
                assert!(self.snapshot.early.is_empty(), "every early set went with its slot");
                assert_eq!(self.snapshot.early_bytes(), 0);
            }
            parse_stream(&out);
            self.stream.extend_from_slice(&out);
            self.finished = finished;
        }

        fn fill_to_end(&mut self, p: &Primary, max_bytes: usize) {
            while !self.finished {
                self.fill(p, max_bytes);
            }
            assert_eq!(self.snapshot.pending_bytes(), 0);
            assert_eq!(self.snapshot.bytes_sent(), self.stream.len() as u64);
        }

        /// The replica: the snapshot applied, then every write the primary
        /// ran after the snapshot was created, each at its database and time.
        fn replica(&self, p: &Primary) -> Keyspace {
            assert!(self.finished);
            let mut ks = Keyspace::new(DATABASES, p.ks.owned());
            let mut db = 0;
            let commands = parse_stream(&self.stream);
            let mut restores = 0;
            for c in &commands {
                let name = String::from_utf8_lossy(&c[0]).into_owned();
                match name.as_str() {
                    "SELECT" => assert_eq!(c.len(), 2),
                    "RESTORE" => {
                        assert_eq!((c.len(), &c[4][..], &c[5][..]), (6, &b"REPLACE"[..], &b"ABSTTL"[..]));
                        assert!(self.snapshot.covers(key_slot(&c[1]) as usize), "a key outside the range");
                        restores += 1;
                    }
                    other => panic!("{other} in a snapshot stream"),
                }
                // Applied as of the snapshot's creation: every key in it was
                // live then (an expired one was left out when serialized).
                assert_eq!(exec(&mut ks, &mut db, self.created_at, c), b"+OK\r\n", "{name}");
            }
            assert_eq!(self.snapshot.keys_sent(), restores);
            for (db, now, c) in &p.log[self.log_at..] {
                exec(&mut ks, &mut db.clone(), *now, c);
            }
            ks
        }
    }

    /// The primary: its keyspace, clock and selected database, and the
    /// writes it ran, in order (the journal's stand-in).
    struct Primary {
        ks: Keyspace,
        now: UnixMs,
        db: usize,
        log: Vec<(usize, UnixMs, Command)>,
        /// The most bytes a snapshot held pending after a `before_write`.
        pending_max: usize,
        /// The snapshots' [`Snapshot::whole_slot_keys`].
        whole_slot_keys: usize,
        /// The snapshots' [`Snapshot::ignore_early`].
        ignore_early: bool,
        /// The snapshots' [`Snapshot::ignore_walk`].
        ignore_walk: bool,
    }

    impl Primary {
        fn new(owned: ShardSlots) -> Self {
            Primary {
                ks: Keyspace::new(DATABASES, owned),
                now: T0,
                db: 0,
                log: Vec::new(),
                pending_max: 0,
                whole_slot_keys: WHOLE_SLOT_KEYS,
                ignore_early: false,
                ignore_walk: false,
            }
        }

        fn snapshot(&self, slots: Range<usize>) -> Sync {
            let mut snapshot = Snapshot::of_slots(&self.ks, slots);
            snapshot.set_whole_slot_keys(self.whole_slot_keys);
            snapshot.ignore_early = self.ignore_early;
            snapshot.ignore_walk = self.ignore_walk;
            Sync { snapshot, stream: Vec::new(), created_at: self.now, log_at: self.log.len(), finished: false }
        }

        /// Runs a write as the network layer will: first `before_write` on
        /// every snapshot for the slot of each of its keys (every slot for a
        /// command run on all shards), unless `guard` is false.
        fn write_with(&mut self, syncs: &mut [Sync], args: Command, guard: bool) -> Vec<u8> {
            let spec = CommandTable::get().lookup(&args[0]).expect("a known command");
            assert!(spec.has(flags::WRITE));
            if guard {
                let owned = OwnedArgs::from_parts(&args);
                let view = owned.view();
                for s in syncs.iter_mut() {
                    if matches!(spec.kind, Kind::AllShards { .. }) {
                        s.snapshot.before_write_all(&self.ks, self.now);
                    } else {
                        for i in spec.keys(&view) {
                            let key = view.get(i);
                            s.snapshot.before_write(&self.ks, key_slot(key) as usize, key, self.now);
                        }
                    }
                    self.pending_max = self.pending_max.max(s.snapshot.pending_bytes());
                }
            }
            let reply = exec(&mut self.ks, &mut self.db.clone(), self.now, &args);
            self.log.push((self.db, self.now, args));
            reply
        }

        fn write(&mut self, syncs: &mut [Sync], parts: &[&str]) -> Vec<u8> {
            self.write_with(syncs, command(parts), true)
        }

        /// A read: no `before_write`, not logged, but it may reclaim an
        /// expired key (lazy expiry).
        fn read(&mut self, parts: &[&str]) -> Vec<u8> {
            let args = command(parts);
            assert!(CommandTable::get().lookup(&args[0]).is_some_and(|c| c.has(flags::READONLY)));
            exec(&mut self.ks, &mut self.db.clone(), self.now, &args)
        }

        /// Removes `key` as an eviction does: no `before_write`, and the
        /// journal gets a DEL.
        fn evict(&mut self, key: &str) {
            if self.ks.db(self.db).remove(key.as_bytes(), self.now).is_some() {
                self.log.push((self.db, self.now, command(&["DEL", key])));
            }
        }

        fn select(&mut self, db: usize) {
            self.db = db;
        }
    }

    /// Every type in databases 0, 1 and 3, over many slots (and a few
    /// hash-tagged keys sharing one), some keys with TTLs: the string
    /// `vol:<i>` keys expire 300 + 40i ms after `T0`, while the test runs.
    fn seed(p: &mut Primary) {
        for db in [0, 1, 3] {
            p.select(db);
            for i in 0..30 {
                let n = (i * 7 + db).to_string();
                let v = |s: &str| format!("{s}:{i}");
                p.write(&mut [], &["SET", &v("cnt"), &n]);
                p.write(&mut [], &["SET", &v("vol"), "soon", "PX", &(300 + 40 * i).to_string()]);
                p.write(&mut [], &["RPUSH", &v("list"), "a", &n, "c"]);
                p.write(&mut [], &["HSET", &v("hash"), "f", &n, "g", "text"]);
                p.write(&mut [], &["SADD", &v("ints"), "1", &n, "3"]);
                p.write(&mut [], &["SADD", &v("set"), "x", &n]);
                p.write(&mut [], &["ZADD", &v("zset"), "1.5", "a", &n, "b"]);
                p.write(&mut [], &["PEXPIREAT", &v("list"), &(T0 + 3_600_000 + i as u64).to_string()]);
                p.write(&mut [], &["SET", &format!("{{tag}}:{i}"), &n]);
            }
        }
        p.select(0);
    }

    /// The key among the seeded ones whose slot comes last.
    fn last_slot_key() -> String {
        (0..30).map(|i| format!("cnt:{i}")).max_by_key(|k| key_slot(k.as_bytes())).expect("keys")
    }

    /// The fixed interleaving: a piece of the snapshot, then a write or two,
    /// until the snapshot and the writes are done. Returns
    /// the primary, the finished snapshot and the key INCRed first, in the
    /// last slot holding keys (so its slot is not serialized yet then).
    fn interleaved(guard: bool, whole_slot_keys: usize) -> (Primary, Sync, String) {
        let mut p = Primary::new(ShardSlots::all());
        p.whole_slot_keys = whole_slot_keys;
        seed(&mut p);
        p.now += 5;
        let mut s = [p.snapshot(0..SLOTS)];
        let last = last_slot_key();
        let last_slot = key_slot(last.as_bytes()) as usize;
        s[0].fill(&p, 200);
        assert!(!s[0].snapshot.is_done(last_slot), "the INCR must hit a slot not serialized yet");
        p.write_with(&mut s, command(&["INCR", &last]), guard);
        let writes: Vec<Vec<&str>> = vec![
            vec!["LPUSH", "list:3", "new"],
            vec!["APPEND", "vol:20", "-more"],
            vec!["HINCRBY", "hash:4", "f", "10"],
            vec!["ZINCRBY", "zset:5", "2.5", "a"],
            vec!["RENAME", "set:6", "set:moved"],
            vec!["DEL", "cnt:7", "list:8", "hash:9"],
            vec!["INCR", "cnt:10"],
            vec!["SELECT", "3"],
            vec!["MOVE", "cnt:11", "0"],
            vec!["PERSIST", "vol:25"],
            vec!["PEXPIREAT", "cnt:12", "1700000000400"],
            vec!["SADD", "ints:13", "99"],
            vec!["SELECT", "0"],
            vec!["INCRBY", "{tag}:4", "100"],
            vec!["RENAME", "{tag}:5", "{tag}:6"],
            vec!["ZINCRBY", "zset:14", "-1", "new"],
            vec!["HINCRBY", "hash:15", "new", "1"],
            vec!["APPEND", "cnt:16", "0"],
            vec!["SET", "vol:29", "longer", "PX", "100000"],
            vec!["SWAPDB", "2", "3"],
            vec!["SELECT", "1"],
            vec!["FLUSHDB"],
            vec!["LPUSH", "list:1", "after-flush"],
            vec!["SELECT", "0"],
            vec!["INCR", "cnt:17"],
            vec!["LPUSH", "list:18", "late"],
        ];
        let mut writes = writes.into_iter().peekable();
        let mut step = 0;
        // Pieces and writes alternate until both are done: some writes come
        // after the snapshot finished (SWAPDB finishes it at once, as
        // before_write_all serializes the rest).
        while !s[0].finished || writes.peek().is_some() {
            if !s[0].finished {
                s[0].fill(&p, 150 + step % 5 * 600);
            }
            for _ in 0..1 + step % 2 {
                p.now += 17;
                let Some(w) = writes.next() else { break };
                match w[0] {
                    "SELECT" => p.select(w[1].parse().expect("a db")),
                    _ => {
                        p.write_with(&mut s, command(&w), guard);
                    }
                }
            }
            if step % 3 == 0 {
                // Reads and evictions touch slots not serialized yet without before_write.
                p.read(&["GET", &format!("vol:{}", step % 30)]);
                p.evict(&format!("set:{}", 20 + step % 10));
            }
            step += 1;
        }
        let [s] = s;
        (p, s, last)
    }

    /// The thresholds the tests run with: every slot copied per key, and
    /// the default (every seeded slot small enough to copy whole).
    const REGIMES: [usize; 2] = [0, WHOLE_SLOT_KEYS];

    #[test]
    fn a_replica_of_snapshot_and_later_writes_equals_the_primary() {
        for whole_slot_keys in REGIMES {
            a_replica_equals_the_primary(whole_slot_keys);
        }
    }

    fn a_replica_equals_the_primary(whole_slot_keys: usize) {
        let (mut p, s, _) = interleaved(true, whole_slot_keys);
        assert!(p.pending_max > 0, "some write came before its slot was serialized");
        let mut b = s.replica(&p);
        let now = p.now;
        assert_ne!(digest(&p.ks, now, 0..SLOTS), Digest::ZERO);
        assert_eq!(digest(&b, now, 0..SLOTS), digest(&p.ks, now, 0..SLOTS));
        assert_eq!(debug_digest(&mut b, now), debug_digest(&mut p.ks, now));
        // Keys expired by the time their slot was serialized were left out.
        let live: usize = (0..DATABASES).map(|d| b.db_ref(d).len()).sum();
        assert!(live > 0 && (s.snapshot.keys_sent() as usize) < 3 * 30 * 8, "{}", s.snapshot.keys_sent());
    }

    #[test]
    fn without_before_write_the_replica_applies_a_write_twice() {
        for whole_slot_keys in REGIMES {
            without_before_write(whole_slot_keys);
        }
    }

    fn without_before_write(whole_slot_keys: usize) {
        let (mut p, s, last) = interleaved(false, whole_slot_keys);
        let mut b = s.replica(&p);
        let now = p.now;
        assert_ne!(digest(&b, now, 0..SLOTS), digest(&p.ks, now, 0..SLOTS));
        // The INCR went into the snapshot as well as the journal: the
        // replica applied it twice.
        let get = |ks: &mut Keyspace| exec(ks, &mut 0, now, &command(&["GET", &last]));
        let seeded: i64 = last.trim_start_matches("cnt:").parse::<i64>().expect("an index") * 7;
        assert_eq!(get(&mut p.ks), format!("${}\r\n{}\r\n", (seeded + 1).to_string().len(), seeded + 1).into_bytes());
        assert_eq!(get(&mut b), format!("${}\r\n{}\r\n", (seeded + 2).to_string().len(), seeded + 2).into_bytes());
    }

    /// Key names of one randomized round: hash tags whose slots the shard
    /// owns (a group shares one slot), each with keys of every type.
    struct Names {
        tags: Vec<String>,
        /// Keys of each type in a group.
        per_group: usize,
    }

    impl Names {
        fn new(rng: &mut fastrand::Rng, owned: &ShardSlots, groups: usize, per_group: usize) -> Self {
            let tags = (0..)
                .map(|n| format!("g{}-{n}", rng.u32(..)))
                .filter(|t| owned.contains(key_slot(t.as_bytes()) as usize))
                .take(groups)
                .collect();
            Names { tags, per_group }
        }

        fn key(&self, group: usize, ty: &str, i: usize) -> String {
            format!("{{{}}}{ty}:{i}", self.tags[group])
        }

        fn any(&self, rng: &mut fastrand::Rng, ty: &str) -> (usize, String) {
            let g = rng.usize(..self.tags.len());
            (g, self.key(g, ty, rng.usize(..self.per_group)))
        }

        /// A second key of type `ty` for a two-key command: in `group` when
        /// `same_slot` (so a range snapshot's keys depend only on keys in
        /// the range), else anywhere.
        fn other(&self, rng: &mut fastrand::Rng, group: usize, ty: &str, same_slot: bool) -> String {
            if same_slot || rng.bool() { self.key(group, ty, rng.usize(..self.per_group)) } else { self.any(rng, ty).1 }
        }
    }

    const TYPES: [&str; 6] = ["cnt", "str", "list", "hash", "set", "zset"];

    /// One random step of the primary: a write (through `before_write` on
    /// every snapshot), a read, an eviction, a SELECT or the clock moving.
    fn random_step(p: &mut Primary, syncs: &mut [Sync], names: &Names, rng: &mut fastrand::Rng, same_slot: bool) {
        let num = rng.i64(-5..50).to_string();
        let member = format!("m{}", rng.u32(..8));
        let (g, cnt) = names.any(rng, "cnt");
        let ty = TYPES[rng.usize(..TYPES.len())];
        let mut key = |ty: &str| names.key(g, ty, rng.usize(..names.per_group));
        let (str_, list, hash, set, zset, a) = (key("str"), key("list"), key("hash"), key("set"), key("zset"), key(ty));
        let b = names.other(rng, g, ty, same_slot);
        let later = (p.now + rng.u64(..4000)).to_string();
        let w: Vec<&str> = match rng.u32(..1000) {
            0..=79 => vec!["INCR", &cnt],
            80..=119 => vec!["INCRBY", &cnt, &num],
            120..=149 => vec!["APPEND", &str_, &num],
            150..=199 => vec!["SET", &str_, &num],
            200..=229 => vec!["SET", &cnt, &num, "PX", &later[later.len() - 4..]],
            230..=289 => vec!["LPUSH", &list, &num, &member],
            290..=319 => vec!["RPOP", &list],
            320..=339 => vec!["LMOVE", &list, &b, "LEFT", "RIGHT"],
            340..=399 => vec!["HINCRBY", &hash, &member, &num],
            400..=429 => vec!["HSET", &hash, &member, &num],
            430..=449 => vec!["HDEL", &hash, &member],
            450..=509 => vec!["ZINCRBY", &zset, &num, &member],
            510..=529 => vec!["ZADD", &zset, &num, &member],
            530..=549 => vec!["ZREM", &zset, &member],
            550..=589 => vec!["SADD", &set, &num, &member],
            590..=609 => vec!["SREM", &set, &num],
            610..=639 => vec!["RENAME", &a, &b],
            640..=649 => vec!["RENAMENX", &a, &b],
            650..=669 => vec!["COPY", &a, &b, "REPLACE"],
            670..=699 => vec!["DEL", &a, &b],
            700..=719 => vec!["PEXPIREAT", &a, &later],
            720..=729 => vec!["EXPIRE", &a, "2"],
            730..=739 => vec!["PERSIST", &a],
            740..=754 => vec!["MOVE", &a, ["0", "1", "2", "3"][rng.usize(..DATABASES)]],
            755..=757 => vec!["FLUSHDB"],
            758..=760 => vec!["SWAPDB", ["0", "1", "2", "3"][rng.usize(..DATABASES)], "1"],
            761 => vec!["FLUSHALL"],
            762..=819 => {
                p.read(&["GET", &cnt]);
                p.read(&["LRANGE", &list, "0", "-1"]);
                return p.read(&["EXISTS", &a]).truncate(0);
            }
            820..=839 => return p.evict(&a),
            840..=889 => return p.select(rng.usize(..DATABASES)),
            _ => {
                p.now += rng.u64(..40);
                if rng.u32(..4) == 0 {
                    // Active expiry deletes without before_write too; the
                    // digests ignore expired keys, so no DEL is logged.
                    p.ks.active_expire(p.now, 20);
                }
                return;
            }
        };
        let w = command(&w);
        p.write_with(syncs, w, true);
    }

    #[test]
    fn randomized_interleavings_of_pieces_and_writes_keep_replicas_equal() {
        for whole_slot_keys in REGIMES {
            randomized_interleavings(whole_slot_keys, false);
        }
    }

    #[test]
    fn randomized_writes_into_big_slots_walked_over_many_pieces_keep_replicas_equal() {
        randomized_interleavings(WHOLE_SLOT_KEYS, true);
    }

    /// Rounds of random writes, reads, evictions and clock steps between
    /// random pieces of two snapshots. With `big`, the keys gather in 3
    /// slots of about 200 keys per database, which [`Snapshot::fill`]
    /// walks over many small pieces; else in 30 slots of a few keys.
    fn randomized_interleavings(whole_slot_keys: usize, big: bool) {
        const ROUNDS: u64 = 60;
        let (groups, per_group, piece_max) = if big { (3, 40, 600) } else { (30, 3, 3000) };
        let mut copied_on_write = 0;
        // Rounds where a piece ended inside a slot.
        let mut walked_rounds = 0;
        for round in 0..ROUNDS {
            let mut rng = fastrand::Rng::with_seed(round);
            // A whole node's slots, or one shard's of a few.
            let owned = if rng.bool() {
                ShardSlots::all()
            } else {
                let map = SlotMap::new(rng.usize(2..5));
                map.slots(rng.usize(..map.shards()))
            };
            let names = Names::new(&mut rng, &owned, groups, per_group);
            let mut p = Primary::new(owned);
            p.whole_slot_keys = whole_slot_keys;
            if big {
                for g in 0..groups {
                    for (i, ty) in TYPES.iter().enumerate().take(2) {
                        for n in 0..per_group {
                            p.select(n % 2);
                            p.write(&mut [], &["SET", &names.key(g, ty, n), &(n + i).to_string()]);
                        }
                    }
                }
                p.select(0);
            }
            for _ in 0..600 {
                random_step(&mut p, &mut [], &names, &mut rng, false);
            }
            // The first snapshot covers the shard, or a range of slots that
            // may reach past it (migration); the second starts later.
            let range = if rng.u32(..3) == 0 {
                let (x, y) = (owned.slot(rng.usize(..owned.len())), owned.slot(rng.usize(..owned.len())));
                x.min(y).saturating_sub(rng.usize(..500))..(x.max(y) + 1 + rng.usize(..500)).min(SLOTS)
            } else {
                0..SLOTS
            };
            let covered: Vec<usize> = owned.within(range.clone()).collect();
            let same_slot = covered.len() != owned.len();
            let mut syncs = vec![p.snapshot(range)];
            let mut walked = 0;
            let second_at = rng.usize(..300);
            let mut step = 0;
            while step < 400 || syncs.iter().any(|s| !s.finished) {
                if step == second_at {
                    syncs.push(p.snapshot(0..SLOTS));
                }
                if rng.u32(..3) == 0 {
                    for s in syncs.iter_mut().filter(|s| !s.finished) {
                        s.fill(&p, rng.usize(1..piece_max));
                        walked += s.snapshot.walk.is_some() as u32;
                    }
                }
                random_step(&mut p, &mut syncs, &names, &mut rng, same_slot);
                step += 1;
            }
            copied_on_write += (p.pending_max > 0) as u32;
            walked_rounds += (walked > 0) as u32;
            let now = p.now;
            let b = syncs[0].replica(&p);
            assert_eq!(syncs[0].snapshot.slots().collect::<Vec<_>>(), covered, "round {round}");
            assert_eq!(
                digest(&b, now, covered.clone()),
                digest(&p.ks, now, covered.clone()),
                "round {round} ({whole_slot_keys})"
            );
            let mut b = syncs[1].replica(&p);
            let context = format!("round {round}, whole_slot_keys {whole_slot_keys}");
            assert_eq!(digest(&b, now, 0..SLOTS), digest(&p.ks, now, 0..SLOTS), "{context}");
            assert_eq!(debug_digest(&mut b, now), debug_digest(&mut p.ks, now), "{context}");
        }
        assert!(copied_on_write > ROUNDS as u32 / 2, "writes met unserialized slots in {copied_on_write} rounds");
        if big {
            assert!(walked_rounds > ROUNDS as u32 / 2, "pieces ended inside a slot in {walked_rounds} rounds");
        }
    }

    /// The slot of the hash tag `{big}`, which `seed_big` fills past
    /// [`WHOLE_SLOT_KEYS`].
    fn big(key: &str) -> String {
        format!("{{big}}:{key}")
    }

    /// The slots the big-slot tests run over: a whole node's, and those of
    /// the shard of a 3-shard map that owns `{big}`'s slot (every third
    /// slot, the interleaved map).
    fn big_slot_owners() -> [ShardSlots; 2] {
        let map = SlotMap::new(3);
        [ShardSlots::all(), map.slots(map.owner(key_slot(b"{big}")))]
    }

    /// 100 strings `{big}:k<i>` in database 0 and 100 in database 1 (50
    /// names in both), one with a TTL, and around them the usual seed (for
    /// a whole node) or 60 strings in the shard's slots below the big one.
    fn seed_big(p: &mut Primary) {
        let owned = p.ks.owned();
        if owned == ShardSlots::all() {
            seed(p);
        } else {
            let below = key_slot(b"{big}") as usize;
            let keys = (0..).map(|n| format!("pre:{n}")).filter(|k| {
                let slot = key_slot(k.as_bytes()) as usize;
                owned.contains(slot) && slot < below
            });
            for (i, k) in keys.take(60).enumerate() {
                p.select(i % 2);
                p.write(&mut [], &["SET", &k, &i.to_string()]);
            }
        }
        for (db, range) in [(0, 0..100), (1, 50..150)] {
            p.select(db);
            for i in range {
                p.write(&mut [], &["SET", &big(&format!("k{i}")), &(i * 10 + db).to_string()]);
            }
        }
        p.select(0);
        p.write(&mut [], &["SET", &big("vol"), "7", "PX", "500"]);
    }

    /// Writes to the big slot while it is not serialized yet: keys created
    /// after the snapshot point by non-idempotent commands, MOVE to another
    /// database, DEL then re-creation, an eviction, and an early key that
    /// expires; then pieces and writes alternate to the end. Returns the
    /// primary and the finished snapshot.
    fn big_slot_writes(owned: ShardSlots, whole_slot_keys: usize, ignore_early: bool) -> (Primary, Sync) {
        let mut p = Primary::new(owned);
        p.whole_slot_keys = whole_slot_keys;
        p.ignore_early = ignore_early;
        seed_big(&mut p);
        let slot = key_slot(b"{big}") as usize;
        let in_slot: usize = p.ks.dbs().iter().map(|db| db.slot_len(slot)).sum();
        assert!(in_slot > WHOLE_SLOT_KEYS, "{in_slot} keys in the big slot");
        let mut s = [p.snapshot(0..SLOTS)];
        s[0].fill(&p, 1);
        assert!(!s[0].snapshot.is_done(slot), "the big slot must not be serialized yet");
        p.now += 3;
        let pending = s[0].snapshot.pending_bytes();
        p.write(&mut s, &["INCR", &big("k1")]);
        let one_key = s[0].snapshot.pending_bytes() - pending;
        assert!(one_key > 0 && one_key < 200, "the key alone was copied: {one_key} bytes");
        assert!(!s[0].snapshot.is_done(slot));
        assert!(s[0].snapshot.early_bytes() > 0);
        let writes: Vec<Vec<String>> = [
            // Created after the snapshot point: the journal creates them.
            &["LPUSH", "{big}:list", "a"][..],
            // An early key that expires later (500 ms after the seed).
            &["INCR", "{big}:vol"],
            &["INCR", "{big}:cnt"],
            &["APPEND", "{big}:str", "x"],
            &["LPUSH", "{big}:list", "b"],
            &["INCRBY", "{big}:cnt", "5"],
            // MOVE: the name in both databases.
            &["MOVE", "{big}:k3", "1"],
            &["MOVE", "{big}:k60", "1"],
            &["SELECT", "1"],
            &["INCR", "{big}:k3"],
            &["APPEND", "{big}:k120", "z"],
            &["MOVE", "{big}:k130", "0"],
            &["SELECT", "0"],
            &["APPEND", "{big}:k130", "!"],
            // DEL, then the name again, as another type.
            &["DEL", "{big}:k4"],
            &["LPUSH", "{big}:k4", "again"],
            &["DEL", "{big}:cnt"],
            &["INCR", "{big}:cnt"],
            &["APPEND", "{big}:k5", "-late"],
        ]
        .iter()
        .map(|w| w.iter().map(|a| a.to_string()).collect())
        .collect();
        let mut writes = writes.into_iter().peekable();
        let mut step = 0;
        while !s[0].finished || writes.peek().is_some() {
            if step % 3 == 2 && !s[0].finished {
                s[0].fill(&p, 300);
            }
            p.now += 40;
            if let Some(w) = writes.next() {
                match w[0].as_str() {
                    "SELECT" => p.select(w[1].parse().expect("a db")),
                    _ => {
                        p.write(&mut s, &w.iter().map(String::as_str).collect::<Vec<_>>());
                    }
                }
            }
            if step == 6 {
                // Evicted after it was copied early, then written again.
                p.evict(&big("k1"));
                p.write(&mut s, &["INCR", &big("k1")]);
            }
            if step == 14 {
                // Expired and reclaimed after it was copied early.
                assert!(p.now > T0 + 500);
                p.read(&["GET", &big("vol")]);
            }
            step += 1;
        }
        assert!(p.ks.db_ref(0).peek(big("vol").as_bytes(), p.now).is_none(), "the early key expired");
        let [s] = s;
        (p, s)
    }

    #[test]
    fn big_slots_are_copied_per_key_and_the_replica_equals_the_primary() {
        for (owned, whole_slot_keys) in big_slot_owners().into_iter().flat_map(|o| REGIMES.map(|w| (o, w))) {
            let (mut p, s) = big_slot_writes(owned, whole_slot_keys, false);
            let mut b = s.replica(&p);
            let now = p.now;
            let context = format!("{owned:?}, whole_slot_keys {whole_slot_keys}");
            assert_eq!(digest(&b, now, 0..SLOTS), digest(&p.ks, now, 0..SLOTS), "{context}");
            assert_eq!(debug_digest(&mut b, now), debug_digest(&mut p.ks, now));
            // Each seeded key once: none sent twice, none left out but
            // the early names missing at the snapshot point (and expired ones).
            let restores = parse_stream(&s.stream).iter().filter(|c| c[0] == b"RESTORE").count();
            assert_eq!(restores as u64, s.snapshot.keys_sent());
        }
    }

    #[test]
    fn a_slot_serialized_without_leaving_out_its_early_keys_applies_writes_twice() {
        for (owned, whole_slot_keys) in big_slot_owners().into_iter().flat_map(|o| REGIMES.map(|w| (o, w))) {
            let (p, s) = big_slot_writes(owned, whole_slot_keys, true);
            let b = s.replica(&p);
            let now = p.now;
            assert_ne!(
                digest(&b, now, 0..SLOTS),
                digest(&p.ks, now, 0..SLOTS),
                "{owned:?}, whole_slot_keys {whole_slot_keys}"
            );
        }
    }

    /// The (database, key) of each RESTORE of a stream, in order.
    fn restored(stream: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut db = 0;
        let mut keys = Vec::new();
        for c in parse_stream(stream) {
            match &c[0][..] {
                b"SELECT" => db = std::str::from_utf8(&c[1]).ok().and_then(|t| t.parse().ok()).expect("a db"),
                _ => keys.push((db, c[1].clone())),
            }
        }
        keys
    }

    /// The big slot of `seed_big` serialized over many small pieces, with
    /// writes between them to the key the walk passed last and to one it
    /// has still to come (taken from the walk's own list), to keys created
    /// after the snapshot point, and an early key from before the walk
    /// started; FLUSHALL in the middle when `flush`. Returns the primary,
    /// the finished snapshot and how many pieces the slot took.
    fn walked_big_slot(owned: ShardSlots, ignore_walk: bool, flush: bool) -> (Primary, Sync, usize) {
        let mut p = Primary::new(owned);
        p.ignore_walk = ignore_walk;
        seed_big(&mut p);
        let slot = key_slot(b"{big}") as usize;
        p.now += 3;
        let mut s = [p.snapshot(0..SLOTS)];
        // Before the walk: an early key, and one created after the snapshot point.
        p.write(&mut s, &["INCR", &big("k7")]);
        p.write(&mut s, &["SET", &big("new"), "x"]);
        let walking = |s: &Sync| s.snapshot.walk.as_ref().is_some_and(|w| w.slot == slot);
        while !walking(&s[0]) {
            s[0].fill(&p, 100);
        }
        let walk = s[0].snapshot.walk.as_ref().expect("walking");
        // 200 seeded, and the TTL one, less the early one.
        assert_eq!(walk.keys.len(), 200);
        assert!(s[0].snapshot.early_bytes() >= walk.names.len() + 200 * std::mem::size_of::<WalkKey>());
        let name = |s: &Sync, at: usize| -> String {
            let walk = s.snapshot.walk.as_ref().expect("walking");
            let at = at.min(walk.keys.len() - 1);
            String::from_utf8(walk.name(&walk.keys[at]).to_vec()).expect("a name")
        };
        let mut pieces = 1;
        while walking(&s[0]) {
            let next = s[0].snapshot.walk.as_ref().map_or(0, |w| w.next);
            let (passed, coming) = (name(&s[0], next.saturating_sub(1)), name(&s[0], next + 2));
            let created = big(&format!("created{pieces}"));
            let n = pieces.to_string();
            match pieces % 8 {
                0 => {
                    p.write(&mut s, &["INCR", &passed]);
                    p.write(&mut s, &["APPEND", &coming, "-late"]);
                }
                1 => {
                    p.write(&mut s, &["DEL", &coming]);
                    p.write(&mut s, &["SET", &passed, &n]);
                }
                2 => {
                    p.write(&mut s, &["RENAME", &passed, &coming]);
                }
                3 => {
                    p.write(&mut s, &["RENAME", &coming, &created]);
                    p.write(&mut s, &["APPEND", &created, "!"]);
                }
                4 => {
                    p.write(&mut s, &["MOVE", &coming, "1"]);
                    p.select(1);
                    p.write(&mut s, &["INCR", &coming]);
                    p.write(&mut s, &["APPEND", &passed, &n]);
                    p.select(0);
                }
                5 => {
                    // Evicted without before_write, then created again.
                    p.evict(&coming);
                    p.write(&mut s, &["LPUSH", &coming, &n]);
                }
                6 => {
                    p.write(&mut s, &["COPY", &passed, &coming, "REPLACE"]);
                    p.write(&mut s, &["INCR", &coming]);
                }
                _ => {
                    p.write(&mut s, &["INCR", &created]);
                    p.write(&mut s, &["INCRBY", &created, &n]);
                    p.write(&mut s, &["INCR", &coming]);
                }
            }
            if flush && pieces == 12 {
                p.write(&mut s, &["FLUSHALL"]);
                p.write(&mut s, &["INCR", &coming]);
            }
            p.now += 7;
            s[0].fill(&p, 60 + pieces % 4 * 80);
            pieces += 1;
        }
        p.write(&mut s, &["INCR", &big("k8")]);
        s[0].fill_to_end(&p, 4096);
        let [s] = s;
        (p, s, pieces)
    }

    #[test]
    fn a_big_slot_walked_over_many_pieces_with_writes_between_equals_the_primary() {
        for (owned, flush) in big_slot_owners().into_iter().flat_map(|o| [(o, false), (o, true)]) {
            let (mut p, s, pieces) = walked_big_slot(owned, false, flush);
            let context = format!("{owned:?}, flush {flush}");
            assert!(pieces >= if flush { 13 } else { 40 }, "{pieces} pieces, {context}");
            let mut b = s.replica(&p);
            let now = p.now;
            assert_eq!(digest(&b, now, 0..SLOTS), digest(&p.ks, now, 0..SLOTS), "{context}");
            assert_eq!(debug_digest(&mut b, now), debug_digest(&mut p.ks, now), "{context}");
            // Each key of the snapshot point once: none sent twice.
            let keys = restored(&s.stream);
            let unique: HashSet<_> = keys.iter().collect();
            assert_eq!(unique.len(), keys.len(), "{context}");
            assert_eq!(keys.len() as u64, s.snapshot.keys_sent());
            assert!(s.snapshot.walk.is_none() && s.snapshot.early_bytes() == 0);
        }
    }

    #[test]
    fn a_walk_that_lets_writes_to_keys_still_to_come_go_ahead_applies_them_twice() {
        for owned in big_slot_owners() {
            let (p, s, _) = walked_big_slot(owned, true, false);
            let b = s.replica(&p);
            let now = p.now;
            assert_ne!(digest(&b, now, 0..SLOTS), digest(&p.ks, now, 0..SLOTS), "{owned:?}");
        }
    }

    #[test]
    fn before_write_serializes_its_slot_once_and_fill_hands_it_out_first() {
        let mut p = Primary::new(ShardSlots::all());
        seed(&mut p);
        let last = last_slot_key();
        let slot = key_slot(last.as_bytes()) as usize;
        let mut s = p.snapshot(0..SLOTS);
        assert_eq!((s.snapshot.pending_bytes(), s.snapshot.keys_sent(), s.snapshot.bytes_sent()), (0, 0, 0));
        s.snapshot.before_write(&p.ks, slot, last.as_bytes(), p.now);
        let pending = s.snapshot.pending_bytes();
        assert!(pending > 0);
        s.snapshot.before_write(&p.ks, slot, last.as_bytes(), p.now);
        assert_eq!(s.snapshot.pending_bytes(), pending, "a slot is serialized once");
        s.fill(&p, 1);
        assert_eq!(s.snapshot.pending_bytes(), 0);
        assert_eq!(s.stream.len(), pending, "the pending piece alone took the piece past its bound");
        let first = parse_stream(&s.stream);
        assert_eq!(first[0], command(&["SELECT", "0"]));
        let in_slot = |c: &&Command| c[0] == b"RESTORE" && key_slot(&c[1]) as usize == slot;
        let first_restores = first.iter().filter(|c| c[0] == b"RESTORE").count();
        assert!(first_restores >= 3, "{last} in three databases");
        assert_eq!(first.iter().filter(in_slot).count(), first_restores, "only the slot written");
        assert_eq!(s.snapshot.keys_sent(), first_restores as u64);
        s.fill_to_end(&p, 4096);
        let all = parse_stream(&s.stream);
        assert_eq!(all.iter().filter(in_slot).count(), first_restores, "the slot is not sent again");
        let restores = all.iter().filter(|c| c[0] == b"RESTORE").count();
        assert_eq!(s.snapshot.keys_sent(), restores as u64);
        assert_eq!(restores, 3 * 30 * 8, "every seeded key, none expired yet");
        let mut b = s.replica(&p);
        assert_eq!(debug_digest(&mut b, p.now), debug_digest(&mut p.ks, p.now));
    }

    #[test]
    fn slots_outside_the_shard_or_the_range_are_no_concern() {
        let mut p = Primary::new(SlotMap::new(4).slots(1));
        let owned = p.ks.owned();
        let first = owned.slot(0);
        let key = (0..)
            .map(|n| format!("k{n}"))
            .find(|k| first < key_slot(k.as_bytes()) as usize && owned.contains(key_slot(k.as_bytes()) as usize))
            .expect("a key of the shard");
        p.write(&mut [], &["SET", &key, "1"]);
        let mut outside = p.snapshot(0..first);
        assert!(outside.snapshot.slots().next().is_none());
        outside.snapshot.before_write_all(&p.ks, p.now);
        outside.fill(&p, 1000);
        assert!(outside.finished && outside.stream.is_empty());
        let slot = key_slot(key.as_bytes()) as usize;
        let mut beside = p.snapshot(first..slot);
        beside.snapshot.before_write(&p.ks, slot, key.as_bytes(), p.now);
        assert_eq!(beside.snapshot.pending_bytes(), 0, "a slot outside the range is not serialized");
        beside.fill_to_end(&p, 1000);
        assert!(beside.stream.is_empty());
        let mut with = p.snapshot(0..SLOTS);
        assert!(with.snapshot.slots().eq(owned.iter()));
        with.fill_to_end(&p, 1000);
        assert_eq!(parse_stream(&with.stream).len(), 2, "SELECT and one RESTORE");
    }
}
