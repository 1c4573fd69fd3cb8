//! The sorted set value type: a compact sorted vector of (score, member)
//! while small (as Redis's listpack encoding), and past the size thresholds a
//! member index plus an order-statistic B+tree over (score, member).
//!
//! In the large encoding each member is stored once, in an [`Entries`] slot
//! with its score (members of up to [`MEMBER_INLINE_BYTES`] bytes inline, so
//! most need no allocation of their own). The index is a hash table of slot
//! numbers, hashed by member bytes; the tree orders slot numbers by (score,
//! member) and carries element counts per child, which gives O(log n)
//! insert, delete, rank, n-th element and "how many elements come before this
//! bound" (all ZRANGE, ZRANK, ZCOUNT and friends need). Its nodes hold dozens
//! of keys each, with the scores side by side, so a lookup in 100,000
//! members touches three nodes and reads a member's bytes only to break a tie
//! between equal scores; a binary tree or a skiplist would touch some
//! twenty nodes, each a likely cache miss.
//!
//! ```text
//!   Small: [(1,"a"), (2,"b"), (2,"c")]          sorted by (score, member)
//!
//!   Big:   index: {hash("a") -> 0, hash("b") -> 1, hash("c") -> 2}
//!          entries: 0:(1,"a")  1:(2,"b")  2:(2,"c")     slot -> score, member
//!          tree:   branch [ (1,#0) count 2 | (2,#2) count 1 ]
//!                          /                      \
//!               leaf [(1,#0) (2,#1)]  <->  leaf [(2,#2)]    (score, slot), linked
//! ```

use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Ordering;
use std::hash::BuildHasher;

/// Past this many members a small sorted set becomes a tree (zset-max-listpack-entries).
pub const SMALL_ENTRIES_MAX: usize = 128;
/// Past this member length a small sorted set becomes a tree (zset-max-listpack-value).
pub const SMALL_VALUE_BYTES_MAX: usize = 64;

/// The order of a sorted set: by score, then by member bytes. Scores are
/// never NaN (commands reject NaN before it reaches a set).
#[inline]
fn cmp(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    match a.0.partial_cmp(&b.0) {
        Some(Ordering::Equal) | None => a.1.cmp(b.1),
        Some(o) => o,
    }
}

/// A sorted set of unique members, each with a score.
#[derive(Debug, Clone)]
pub enum ZSet {
    /// Few, short members: (score, member) sorted, searched linearly by member.
    Small(Vec<(f64, Box<[u8]>)>),
    /// Many or long members.
    Big(Big),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Small(Vec::new())
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter_from(0, false).zip(other.iter_from(0, false)).all(|(a, b)| a == b)
    }
}

impl ZSet {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            ZSet::Small(v) => v.len(),
            ZSet::Big(b) => b.index.len(),
        }
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Small(v) => v.iter().find(|(_, m)| **m == *member).map(|(s, _)| *s),
            ZSet::Big(b) => b.find(b.hash(member), member).map(|slot| b.entries.get(slot).score),
        }
    }

    /// Sets the score of `member` (adding it when new); returns its previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        self.upsert(member, |was| (Some(score), was))
    }

    /// Looks `member` up once and gives it the score `decide` picks from its
    /// current one (`None`: not a member): `decide` returns the new score
    /// (`None`: leave the set as it is) and a result passed back to the caller.
    /// This is ZADD's one lookup per element, whatever its flags.
    pub fn upsert<R>(&mut self, member: &[u8], decide: impl FnOnce(Option<f64>) -> (Option<f64>, R)) -> R {
        if let ZSet::Small(v) = self {
            let old = v.iter().position(|(_, m)| **m == *member);
            let (new, result) = decide(old.map(|i| v[i].0));
            let Some(score) = new else { return result };
            debug_assert!(!score.is_nan());
            if let Some(i) = old {
                let was = v[i].0;
                // The same position stays sorted when the score does not change.
                if was.to_bits() != score.to_bits() {
                    let (_, m) = v.remove(i);
                    let at = v.partition_point(|(s, e)| cmp((*s, e), (score, member)) == Ordering::Less);
                    v.insert(at, (score, m));
                }
                return result;
            }
            if v.len() < SMALL_ENTRIES_MAX && member.len() <= SMALL_VALUE_BYTES_MAX {
                let at = v.partition_point(|(s, e)| cmp((*s, e), (score, member)) == Ordering::Less);
                v.insert(at, (score, member.into()));
                return result;
            }
            self.convert_to_big();
            let ZSet::Big(b) = self else { unreachable!("converted above") };
            b.add(b.hash(member), member, score);
            return result;
        }
        let ZSet::Big(b) = self else { unreachable!("small handled above") };
        let hash = b.hash(member);
        match b.find(hash, member) {
            Some(slot) => {
                let (new, result) = decide(Some(b.entries.get(slot).score));
                if let Some(score) = new {
                    debug_assert!(!score.is_nan());
                    b.rescore(slot, score);
                }
                result
            }
            None => {
                let (new, result) = decide(None);
                if let Some(score) = new {
                    debug_assert!(!score.is_nan());
                    b.add(hash, member, score);
                }
                result
            }
        }
    }

    /// Removes `member`; returns its score when it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Small(v) => {
                let i = v.iter().position(|(_, m)| **m == *member)?;
                Some(v.remove(i).0)
            }
            ZSet::Big(b) => b.remove(member),
        }
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Small(v) => v.iter().position(|(_, m)| **m == *member),
            ZSet::Big(b) => {
                let slot = b.find(b.hash(member), member)?;
                Some(b.tree.rank(&b.entries, b.entries.get(slot).score, slot))
            }
        }
    }

    /// The element at ascending rank `i`.
    pub fn nth(&self, i: usize) -> Option<(f64, &[u8])> {
        match self {
            ZSet::Small(v) => v.get(i).map(|(s, m)| (*s, &**m)),
            ZSet::Big(b) => b.tree.locate(i).map(|(leaf, at)| b.tree.element(leaf, at, &b.entries)),
        }
    }

    /// How many elements come first in ascending order, given `before`, which
    /// must hold for a prefix of the elements and for none after it.
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Small(v) => v.partition_point(|(s, m)| before(*s, m)),
            ZSet::Big(b) => b.tree.count_before(|s, slot| before(s, b.entries.member(slot))),
        }
    }

    /// [`ZSet::count_before`] for a bound on scores alone, which the large
    /// encoding answers without reading members.
    pub fn count_before_score(&self, before: impl Fn(f64) -> bool) -> usize {
        match self {
            ZSet::Small(v) => v.partition_point(|(s, _)| before(*s)),
            ZSet::Big(b) => b.tree.count_before(|s, _| before(s)),
        }
    }

    /// The elements from ascending rank `start` on: upwards, or when `rev`
    /// downwards (rank `start`, `start - 1`, ..., 0).
    pub fn iter_from(&self, start: usize, rev: bool) -> Iter<'_> {
        match self {
            ZSet::Small(v) => {
                if rev {
                    let end = if start < v.len() { start + 1 } else { 0 };
                    Iter::SmallRev(v[..end].iter().rev())
                } else {
                    Iter::Small(v[start.min(v.len())..].iter())
                }
            }
            ZSet::Big(b) => {
                let (leaf, at) = b.tree.locate(start).unwrap_or((NIL, 0));
                Iter::Tree(TreeIter { tree: &b.tree, entries: &b.entries, leaf, at, rev })
            }
        }
    }

    /// The large encoding's (member hash, (member, score)) pairs in table
    /// order, for ZSCAN's cursor; `None` for the small encoding.
    pub fn hashed_members(&self) -> Option<impl Iterator<Item = (u64, (&[u8], f64))>> {
        match self {
            ZSet::Small(_) => None,
            ZSet::Big(b) => Some(b.index.iter().map(|&slot| {
                let e = b.entries.get(slot);
                (b.hash(e.member.bytes()), (e.member.bytes(), e.score))
            })),
        }
    }

    fn convert_to_big(&mut self) {
        if let ZSet::Small(v) = self {
            let mut b = Big::default();
            for (s, m) in std::mem::take(v) {
                b.add(b.hash(&m), &m, s);
            }
            *self = ZSet::Big(b);
        }
    }

    /// Bytes held on the heap (an estimate for MEMORY USAGE: the members,
    /// the index's buckets, the entries and the tree's nodes).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ZSet::Small(v) => v.capacity() * 24 + v.iter().map(|(_, m)| m.len()).sum::<usize>(),
            ZSet::Big(b) => b.heap_bytes(),
        }
    }

    /// The encoding name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Small(_) => "listpack",
            ZSet::Big(_) => "skiplist",
        }
    }
}

/// Elements in order, from [`ZSet::iter_from`].
pub enum Iter<'a> {
    /// Over the small encoding, upwards.
    Small(std::slice::Iter<'a, (f64, Box<[u8]>)>),
    /// Over the small encoding, downwards.
    SmallRev(std::iter::Rev<std::slice::Iter<'a, (f64, Box<[u8]>)>>),
    /// Over the tree.
    Tree(TreeIter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next().map(|(s, m)| (*s, &**m)),
            Iter::SmallRev(i) => i.next().map(|(s, m)| (*s, &**m)),
            Iter::Tree(i) => i.next(),
        }
    }
}

// ---------------------------------------------------------------------------
// The large encoding
// ---------------------------------------------------------------------------

/// The large encoding: members and scores in slots, found by member through
/// the index and by order through the tree.
#[derive(Clone, Default)]
pub struct Big {
    /// Slot numbers, hashed by their member's bytes.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    entries: Entries,
    tree: Tree,
}

impl std::fmt::Debug for Big {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Big").field("len", &self.index.len()).field("tree_height", &self.tree.height).finish()
    }
}

impl Big {
    #[inline]
    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    /// The slot of `member`, whose hash is `hash`.
    #[inline]
    fn find(&self, hash: u64, member: &[u8]) -> Option<u32> {
        let entries = &self.entries;
        self.index.find(hash, |&slot| entries.member(slot) == member).copied()
    }

    /// Adds `member`, which is not in the set and hashes to `hash`.
    fn add(&mut self, hash: u64, member: &[u8], score: f64) {
        let slot = self.entries.add(Entry { score, member: Member::new(member) });
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hash, slot, |&s| hasher.hash_one(entries.member(s)));
        self.tree.insert(&self.entries, score, slot);
    }

    /// Gives the member in `slot` a new score.
    fn rescore(&mut self, slot: u32, score: f64) {
        let was = self.entries.get(slot).score;
        // Equal scores of different signs (0 and -0) order alike, but the
        // stored score must still change.
        if was.to_bits() == score.to_bits() {
            return;
        }
        let found = self.tree.remove(&self.entries, was, slot);
        debug_assert!(found, "every member is in the tree");
        self.entries.get_mut(slot).score = score;
        self.tree.insert(&self.entries, score, slot);
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let hash = self.hash(member);
        let entries = &self.entries;
        let slot = match self.index.find_entry(hash, |&slot| entries.member(slot) == member) {
            Ok(found) => found.remove().0,
            Err(_) => return None,
        };
        let score = self.entries.get(slot).score;
        // The tree compares member bytes, so the slot is released after it.
        let found = self.tree.remove(&self.entries, score, slot);
        debug_assert!(found, "every member is in the tree");
        self.entries.release(slot);
        Some(score)
    }

    fn heap_bytes(&self) -> usize {
        // hashbrown keeps a control byte per bucket, at most 7/8 of the
        // buckets in use, and one group of control bytes extra.
        let buckets = (self.index.capacity() * 8).div_ceil(7).next_power_of_two();
        let index = buckets * (std::mem::size_of::<u32>() + 1) + 16;
        index + self.entries.heap_bytes() + self.tree.heap_bytes()
    }
}

/// Bytes a member keeps inside its entry; a longer one gets an allocation.
const MEMBER_INLINE_BYTES: usize = 22;

/// A member's bytes: inline when short (so the entry is one 32-byte block).
#[derive(Clone)]
enum Member {
    Inline { len: u8, bytes: [u8; MEMBER_INLINE_BYTES] },
    Heap(Box<[u8]>),
}

impl Member {
    const EMPTY: Member = Member::Inline { len: 0, bytes: [0; MEMBER_INLINE_BYTES] };

    fn new(member: &[u8]) -> Member {
        if member.len() <= MEMBER_INLINE_BYTES {
            let mut bytes = [0; MEMBER_INLINE_BYTES];
            bytes[..member.len()].copy_from_slice(member);
            Member::Inline { len: member.len() as u8, bytes }
        } else {
            Member::Heap(member.into())
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Member::Inline { len, bytes } => &bytes[..*len as usize],
            Member::Heap(b) => b,
        }
    }

    /// Bytes allocated outside the entry.
    fn heap_bytes(&self) -> usize {
        match self {
            Member::Inline { .. } => 0,
            Member::Heap(b) => b.len(),
        }
    }
}

/// A member and its score.
#[derive(Clone)]
struct Entry {
    score: f64,
    member: Member,
}

/// Entries per chunk of [`Entries`], as a power of two.
const ENTRY_CHUNK_BITS: u32 = 10;
const ENTRY_CHUNK: usize = 1 << ENTRY_CHUNK_BITS;

/// The entries of a large sorted set, each at a slot number that stays
/// put while the member is in the set. Chunks of [`ENTRY_CHUNK`] entries, so
/// that growing copies at most one chunk, never the whole set (a set of
/// millions of members in one buffer would stall its shard each time the
/// buffer doubles). Slot numbers are `u32`: four billion members would need
/// hundreds of GiB first.
#[derive(Clone, Default)]
struct Entries {
    chunks: Vec<Vec<Entry>>,
    /// Slots of removed members, reused first.
    free: Vec<u32>,
    /// Sum of the members' bytes kept outside their entries.
    member_heap_bytes: usize,
}

impl Entries {
    #[inline]
    fn get(&self, slot: u32) -> &Entry {
        &self.chunks[(slot >> ENTRY_CHUNK_BITS) as usize][slot as usize & (ENTRY_CHUNK - 1)]
    }

    #[inline]
    fn get_mut(&mut self, slot: u32) -> &mut Entry {
        &mut self.chunks[(slot >> ENTRY_CHUNK_BITS) as usize][slot as usize & (ENTRY_CHUNK - 1)]
    }

    #[inline]
    fn member(&self, slot: u32) -> &[u8] {
        self.get(slot).member.bytes()
    }

    fn add(&mut self, entry: Entry) -> u32 {
        self.member_heap_bytes += entry.member.heap_bytes();
        if let Some(slot) = self.free.pop() {
            *self.get_mut(slot) = entry;
            return slot;
        }
        if self.chunks.last().is_none_or(|c| c.len() == ENTRY_CHUNK) {
            self.chunks.push(Vec::new());
        }
        let c = self.chunks.len() - 1;
        let chunk = &mut self.chunks[c];
        chunk.push(entry);
        ((c << ENTRY_CHUNK_BITS) | (chunk.len() - 1)) as u32
    }

    /// Frees `slot` for reuse.
    fn release(&mut self, slot: u32) {
        let e = std::mem::replace(self.get_mut(slot), Entry { score: 0.0, member: Member::EMPTY });
        self.member_heap_bytes -= e.member.heap_bytes();
        self.free.push(slot);
    }

    fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<Entry>>()
            + self.chunks.iter().map(|c| c.capacity() * std::mem::size_of::<Entry>()).sum::<usize>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.member_heap_bytes
    }
}

/// An element being looked for in the tree: its score, its member's bytes
/// and its slot (which identifies it among equal keys without reading bytes).
struct Probe<'a> {
    score: f64,
    member: &'a [u8],
    slot: u32,
}

/// The number of leading indexes of `0..len` for which `before` holds (it
/// must hold for a prefix of them): a binary search in the shape of the
/// standard library's (no early exit, one select per step), which the
/// compiler can turn into conditional moves: on keys in random order a
/// mispredicted branch per step costs more than the step.
#[inline]
fn partition(len: usize, before: impl Fn(usize) -> bool) -> usize {
    if len == 0 {
        return 0;
    }
    // The boundary lies in base..=base + size.
    let (mut base, mut size) = (0, len);
    while size > 1 {
        let half = size / 2;
        base = if before(base + half) { base + half } else { base };
        size -= half;
    }
    base + usize::from(before(base))
}

/// How many of the ordered keys (`scores[i]`, `slots[i]`) come before
/// `probe` (with `or_equal`, are not after it). A binary search on the
/// scores alone decides, unless some score equals the probe's: only then are
/// members read, for the keys with that score.
#[inline]
fn keys_before(scores: &[f64], slots: &[u32], probe: &Probe<'_>, entries: &Entries, or_equal: bool) -> usize {
    let lo = scores.partition_point(|&s| s < probe.score);
    if scores.get(lo).is_none_or(|&s| s != probe.score) {
        return lo;
    }
    let ties = scores[lo..].partition_point(|&s| s == probe.score);
    lo + partition(ties, |k| {
        let slot = slots[lo + k];
        if slot == probe.slot { or_equal } else { entries.member(slot) < probe.member }
    })
}

// ---------------------------------------------------------------------------
// The order-statistic B+tree
// ---------------------------------------------------------------------------

/// No node.
const NIL: u32 = u32::MAX;

/// Keys per leaf: 63 makes a leaf 768 bytes, one of mimalloc's size classes.
const LEAF_KEYS: usize = 63;
/// Children per branch: 51 makes a branch 1024 bytes, another size class.
const BRANCH_KEYS: usize = 51;

/// The fewest keys a node other than the root keeps before it borrows from
/// or merges with a neighbour. A third of its capacity rather than a half,
/// so that inserts and deletes around one node do not split and merge it
/// in turn. (A leaf split at the very end of the order can leave fewer;
/// the next delete there merges it.)
const fn min_keys(cap: usize) -> usize {
    if cap / 3 > 2 { cap / 3 } else { 2 }
}

/// A leaf: keys (score, slot) in order, linked to its neighbours for walks.
#[derive(Clone)]
struct Leaf<const L: usize> {
    len: u32,
    prev: u32,
    next: u32,
    scores: [f64; L],
    slots: [u32; L],
}

/// A branch: for each child, the key of its first element and the number
/// of elements under it.
#[derive(Clone)]
struct Branch<const B: usize> {
    len: u32,
    scores: [f64; B],
    slots: [u32; B],
    children: [u32; B],
    counts: [u32; B],
}

impl<const L: usize> Leaf<L> {
    const EMPTY: Self = Leaf { len: 0, prev: NIL, next: NIL, scores: [0.0; L], slots: [0; L] };

    #[inline]
    fn len(&self) -> usize {
        self.len as usize
    }

    /// The position of the first key not ordered before `probe`.
    #[inline]
    fn lower_bound(&self, probe: &Probe<'_>, entries: &Entries) -> usize {
        keys_before(&self.scores[..self.len()], &self.slots[..self.len()], probe, entries, false)
    }

    fn insert_at(&mut self, at: usize, score: f64, slot: u32) {
        let len = self.len();
        debug_assert!(len < L && at <= len);
        self.scores.copy_within(at..len, at + 1);
        self.slots.copy_within(at..len, at + 1);
        self.scores[at] = score;
        self.slots[at] = slot;
        self.len += 1;
    }

    fn remove_at(&mut self, at: usize) {
        let len = self.len();
        self.scores.copy_within(at + 1..len, at);
        self.slots.copy_within(at + 1..len, at);
        self.len -= 1;
    }
}

impl<const B: usize> Branch<B> {
    const EMPTY: Self = Branch { len: 0, scores: [0.0; B], slots: [0; B], children: [NIL; B], counts: [0; B] };

    #[inline]
    fn len(&self) -> usize {
        self.len as usize
    }

    /// How many children's first keys are not ordered after `probe`.
    #[inline]
    fn children_not_after(&self, probe: &Probe<'_>, entries: &Entries) -> usize {
        keys_before(&self.scores[..self.len()], &self.slots[..self.len()], probe, entries, true)
    }

    fn insert_at(&mut self, at: usize, split: &Split) {
        let len = self.len();
        debug_assert!(len < B && at <= len);
        self.scores.copy_within(at..len, at + 1);
        self.slots.copy_within(at..len, at + 1);
        self.children.copy_within(at..len, at + 1);
        self.counts.copy_within(at..len, at + 1);
        self.scores[at] = split.score;
        self.slots[at] = split.slot;
        self.children[at] = split.node;
        self.counts[at] = split.right;
        self.len += 1;
    }

    fn remove_at(&mut self, at: usize) {
        let len = self.len();
        self.scores.copy_within(at + 1..len, at);
        self.slots.copy_within(at + 1..len, at);
        self.children.copy_within(at + 1..len, at);
        self.counts.copy_within(at + 1..len, at);
        self.len -= 1;
    }

    /// Copies children `from..from + n` of `src` to `at..at + n` here.
    fn copy_from(&mut self, at: usize, src: &Branch<B>, from: usize, n: usize) {
        self.scores[at..at + n].copy_from_slice(&src.scores[from..from + n]);
        self.slots[at..at + n].copy_from_slice(&src.slots[from..from + n]);
        self.children[at..at + n].copy_from_slice(&src.children[from..from + n]);
        self.counts[at..at + n].copy_from_slice(&src.counts[from..from + n]);
    }

    /// Moves children `from..len` to start at `to` (either way).
    fn shift(&mut self, from: usize, to: usize) {
        let len = self.len();
        self.scores.copy_within(from..len, to);
        self.slots.copy_within(from..len, to);
        self.children.copy_within(from..len, to);
        self.counts.copy_within(from..len, to);
    }

    /// Elements under children `range`.
    fn count(&self, range: std::ops::Range<usize>) -> u32 {
        self.counts[range].iter().sum()
    }
}

/// A node split in two: the new right node, its first key, and the element
/// counts of both halves.
struct Split {
    score: f64,
    slot: u32,
    node: u32,
    left: u32,
    right: u32,
}

/// Two distinct elements of one slice, both mutable.
fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "two different nodes");
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

/// An order-statistic B+tree of slots, ordered by (score, member), its
/// nodes in two arenas (indices instead of pointers, so no `unsafe`).
/// Every leaf is at depth `height`; every node but the root holds at least
/// one key, and branches at least two children.
#[derive(Clone)]
struct Tree<const L: usize = LEAF_KEYS, const B: usize = BRANCH_KEYS> {
    leaves: Vec<Box<Leaf<L>>>,
    branches: Vec<Box<Branch<B>>>,
    /// Arena places of removed nodes, reused by later splits.
    free_leaves: Vec<u32>,
    free_branches: Vec<u32>,
    root: u32,
    /// Branch levels above the leaves (0: the root is a leaf).
    height: u32,
    len: usize,
}

impl<const L: usize, const B: usize> Default for Tree<L, B> {
    fn default() -> Self {
        Tree {
            leaves: Vec::new(),
            branches: Vec::new(),
            free_leaves: Vec::new(),
            free_branches: Vec::new(),
            root: NIL,
            height: 0,
            len: 0,
        }
    }
}

impl<const L: usize, const B: usize> Tree<L, B> {
    fn new_leaf(&mut self, leaf: Leaf<L>) -> u32 {
        match self.free_leaves.pop() {
            Some(i) => {
                *self.leaves[i as usize] = leaf;
                i
            }
            None => {
                self.leaves.push(Box::new(leaf));
                (self.leaves.len() - 1) as u32
            }
        }
    }

    fn new_branch(&mut self, branch: Branch<B>) -> u32 {
        match self.free_branches.pop() {
            Some(i) => {
                *self.branches[i as usize] = branch;
                i
            }
            None => {
                self.branches.push(Box::new(branch));
                (self.branches.len() - 1) as u32
            }
        }
    }

    /// Keys in `node` (at `height`) and its first key (when it has one).
    fn summary(&self, node: u32, height: u32) -> (usize, (f64, u32)) {
        if height == 0 {
            let l = &self.leaves[node as usize];
            (l.len(), (l.scores[0], l.slots[0]))
        } else {
            let b = &self.branches[node as usize];
            (b.len(), (b.scores[0], b.slots[0]))
        }
    }

    /// Adds the element in `slot` with `score`; it must not be in the tree.
    fn insert(&mut self, entries: &Entries, score: f64, slot: u32) {
        let probe = Probe { score, member: entries.member(slot), slot };
        if self.root == NIL {
            self.root = self.new_leaf(Leaf::EMPTY);
            self.height = 0;
        }
        if let Some(split) = self.insert_into(self.root, self.height, &probe, entries, (true, true)) {
            // The root split: a new root above both halves.
            let old = self.root;
            let (_, (score, slot)) = self.summary(old, self.height);
            let mut root = Branch::EMPTY;
            root.len = 1;
            (root.scores[0], root.slots[0], root.children[0], root.counts[0]) = (score, slot, old, split.left);
            root.insert_at(1, &split);
            self.root = self.new_branch(root);
            self.height += 1;
        }
        self.len += 1;
    }

    /// Inserts under `node`; `edges` says whether `node` is on the tree's
    /// first and last root-to-leaf paths.
    fn insert_into(
        &mut self,
        node: u32,
        height: u32,
        probe: &Probe<'_>,
        entries: &Entries,
        edges: (bool, bool),
    ) -> Option<Split> {
        if height == 0 {
            return self.insert_into_leaf(node, probe, entries, edges);
        }
        let b = &mut self.branches[node as usize];
        let at = b.children_not_after(probe, entries);
        let i = at.saturating_sub(1);
        if at == 0 {
            // A new first element for this subtree.
            (b.scores[0], b.slots[0]) = (probe.score, probe.slot);
        }
        b.counts[i] += 1;
        let (child, edges) = (b.children[i], (edges.0 && i == 0, edges.1 && i + 1 == b.len()));
        let split = self.insert_into(child, height - 1, probe, entries, edges)?;
        let b = &mut self.branches[node as usize];
        b.counts[i] = split.left;
        if b.len() < B {
            b.insert_at(i + 1, &split);
            return None;
        }
        // Full: the upper half moves to a new branch, then the new child
        // goes into its half.
        let half = B / 2;
        let mut right = Branch::EMPTY;
        right.copy_from(0, b, half, B - half);
        right.len = (B - half) as u32;
        b.len = half as u32;
        if i < half {
            b.insert_at(i + 1, &split);
        } else {
            right.insert_at(i + 1 - half, &split);
        }
        let (left, right_count) = (b.count(0..b.len()), right.count(0..right.len()));
        let (score, slot) = (right.scores[0], right.slots[0]);
        let node = self.new_branch(right);
        Some(Split { score, slot, node, left, right: right_count })
    }

    fn insert_into_leaf(
        &mut self,
        node: u32,
        probe: &Probe<'_>,
        entries: &Entries,
        edges: (bool, bool),
    ) -> Option<Split> {
        let leaf = &mut self.leaves[node as usize];
        let at = leaf.lower_bound(probe, entries);
        if leaf.len() < L {
            leaf.insert_at(at, probe.score, probe.slot);
            return None;
        }
        // Full: split in halves, except at the very ends of the order, where
        // ascending (or descending) inserts would leave every leaf half
        // empty; there the full leaf stays full and the new key starts a leaf.
        let half = if at == 0 && edges.0 {
            0
        } else if at == L && edges.1 {
            L
        } else {
            L / 2
        };
        let mut right = Leaf::EMPTY;
        right.scores[..L - half].copy_from_slice(&leaf.scores[half..]);
        right.slots[..L - half].copy_from_slice(&leaf.slots[half..]);
        right.len = (L - half) as u32;
        leaf.len = half as u32;
        if half < L && at <= half {
            leaf.insert_at(at, probe.score, probe.slot);
        } else {
            right.insert_at(at - half, probe.score, probe.slot);
        }
        (right.prev, right.next) = (node, leaf.next);
        let split = Split { score: 0.0, slot: 0, node: NIL, left: leaf.len, right: right.len };
        let next = right.next;
        let r = self.new_leaf(right);
        self.leaves[node as usize].next = r;
        if next != NIL {
            self.leaves[next as usize].prev = r;
        }
        let first = &self.leaves[r as usize];
        Some(Split { score: first.scores[0], slot: first.slots[0], node: r, ..split })
    }

    /// Removes the element in `slot` with `score`; false when it is not there.
    fn remove(&mut self, entries: &Entries, score: f64, slot: u32) -> bool {
        if self.root == NIL {
            return false;
        }
        let probe = Probe { score, member: entries.member(slot), slot };
        if !self.remove_from(self.root, self.height, &probe, entries) {
            return false;
        }
        self.len -= 1;
        while self.height > 0 && self.branches[self.root as usize].len == 1 {
            let old = self.root;
            self.root = self.branches[old as usize].children[0];
            self.free_branches.push(old);
            self.height -= 1;
        }
        true
    }

    fn remove_from(&mut self, node: u32, height: u32, probe: &Probe<'_>, entries: &Entries) -> bool {
        if height == 0 {
            let leaf = &mut self.leaves[node as usize];
            let at = leaf.lower_bound(probe, entries);
            if at == leaf.len() || leaf.slots[at] != probe.slot {
                return false;
            }
            leaf.remove_at(at);
            return true;
        }
        let b = &self.branches[node as usize];
        let at = b.children_not_after(probe, entries);
        if at == 0 {
            return false;
        }
        let (i, child) = (at - 1, b.children[at - 1]);
        if !self.remove_from(child, height - 1, probe, entries) {
            return false;
        }
        let (child_len, first) = self.summary(child, height - 1);
        let b = &mut self.branches[node as usize];
        b.counts[i] -= 1;
        if child_len > 0 {
            // The removed element may have been the child's first.
            (b.scores[i], b.slots[i]) = first;
        }
        let cap = if height == 1 { L } else { B };
        if child_len < min_keys(cap) {
            self.rebalance(node, i, height - 1);
        }
        true
    }

    /// Child `i` of branch `node` has too few keys: merges it with a
    /// neighbour when both fit in one node, else evens the two out.
    fn rebalance(&mut self, node: u32, i: usize, height: u32) {
        let b = &self.branches[node as usize];
        debug_assert!(b.len() >= 2, "a branch has two children");
        let l = if i + 1 < b.len() { i } else { i - 1 };
        let (ln, rn) = (b.children[l] as usize, b.children[l + 1] as usize);
        let b = &mut self.branches[node as usize];
        if height == 0 {
            let (left, right) = two_mut(&mut self.leaves, ln, rn);
            let (llen, rlen) = (left.len(), right.len());
            if llen + rlen <= L {
                left.scores[llen..llen + rlen].copy_from_slice(&right.scores[..rlen]);
                left.slots[llen..llen + rlen].copy_from_slice(&right.slots[..rlen]);
                left.len += right.len;
                left.next = right.next;
                let next = right.next;
                b.counts[l] += b.counts[l + 1];
                b.remove_at(l + 1);
                (b.scores[l], b.slots[l]) = (left.scores[0], left.slots[0]);
                if next != NIL {
                    self.leaves[next as usize].prev = ln as u32;
                }
                self.free_leaves.push(rn as u32);
                return;
            }
            let want = (llen + rlen) / 2;
            if llen < want {
                let k = want - llen;
                left.scores[llen..want].copy_from_slice(&right.scores[..k]);
                left.slots[llen..want].copy_from_slice(&right.slots[..k]);
                right.scores.copy_within(k..rlen, 0);
                right.slots.copy_within(k..rlen, 0);
            } else {
                let k = llen - want;
                right.scores.copy_within(0..rlen, k);
                right.slots.copy_within(0..rlen, k);
                right.scores[..k].copy_from_slice(&left.scores[want..llen]);
                right.slots[..k].copy_from_slice(&left.slots[want..llen]);
            }
            left.len = want as u32;
            right.len = (llen + rlen - want) as u32;
            (b.counts[l], b.counts[l + 1]) = (left.len, right.len);
            (b.scores[l], b.slots[l]) = (left.scores[0], left.slots[0]);
            (b.scores[l + 1], b.slots[l + 1]) = (right.scores[0], right.slots[0]);
            return;
        }
        let (left, right) = two_mut(&mut self.branches, ln, rn);
        let (llen, rlen) = (left.len(), right.len());
        if llen + rlen <= B {
            left.copy_from(llen, right, 0, rlen);
            left.len += right.len;
            let b = &mut self.branches[node as usize];
            b.counts[l] += b.counts[l + 1];
            b.remove_at(l + 1);
            self.free_branches.push(rn as u32);
            return;
        }
        let want = (llen + rlen) / 2;
        let moved;
        if llen < want {
            let k = want - llen;
            left.copy_from(llen, right, 0, k);
            right.shift(k, 0);
            moved = left.count(llen..want);
            (left.len, right.len) = (want as u32, (llen + rlen - want) as u32);
        } else {
            let k = llen - want;
            right.shift(0, k);
            right.copy_from(0, left, want, k);
            moved = right.count(0..k);
            (left.len, right.len) = (want as u32, (llen + rlen - want) as u32);
        }
        let first = (right.scores[0], right.slots[0]);
        let b = &mut self.branches[node as usize];
        if llen < want {
            b.counts[l] += moved;
            b.counts[l + 1] -= moved;
        } else {
            b.counts[l] -= moved;
            b.counts[l + 1] += moved;
        }
        (b.scores[l + 1], b.slots[l + 1]) = first;
    }

    /// How many elements come first, given `before`, which must hold for a
    /// prefix of the elements (in order) and for none after it.
    fn count_before(&self, before: impl Fn(f64, u32) -> bool) -> usize {
        if self.root == NIL {
            return 0;
        }
        let (mut node, mut height, mut count) = (self.root, self.height, 0usize);
        while height > 0 {
            let b = &self.branches[node as usize];
            // Children before the last one whose first key is before are
            // wholly before; children after it wholly not.
            let at = partition(b.len(), |i| before(b.scores[i], b.slots[i]));
            if at == 0 {
                return count;
            }
            count += b.count(0..at - 1) as usize;
            node = b.children[at - 1];
            height -= 1;
        }
        let leaf = &self.leaves[node as usize];
        count + partition(leaf.len(), |i| before(leaf.scores[i], leaf.slots[i]))
    }

    /// The rank of the element in `slot` with `score`, which is in the tree.
    fn rank(&self, entries: &Entries, score: f64, slot: u32) -> usize {
        let probe = Probe { score, member: entries.member(slot), slot };
        let (mut node, mut height, mut rank) = (self.root, self.height, 0);
        while height > 0 {
            let b = &self.branches[node as usize];
            let i = b.children_not_after(&probe, entries).saturating_sub(1);
            rank += b.count(0..i) as usize;
            node = b.children[i];
            height -= 1;
        }
        rank + self.leaves[node as usize].lower_bound(&probe, entries)
    }

    /// The leaf and position of the element of rank `i`.
    fn locate(&self, mut i: usize) -> Option<(u32, usize)> {
        if i >= self.len {
            return None;
        }
        let (mut node, mut height) = (self.root, self.height);
        while height > 0 {
            let b = &self.branches[node as usize];
            let mut c = 0;
            while i >= b.counts[c] as usize {
                i -= b.counts[c] as usize;
                c += 1;
            }
            node = b.children[c];
            height -= 1;
        }
        Some((node, i))
    }

    #[inline]
    fn element<'e>(&self, leaf: u32, at: usize, entries: &'e Entries) -> (f64, &'e [u8]) {
        let leaf = &self.leaves[leaf as usize];
        (leaf.scores[at], entries.member(leaf.slots[at]))
    }

    fn heap_bytes(&self) -> usize {
        let pointers = (self.leaves.capacity() + self.branches.capacity()) * std::mem::size_of::<Box<Leaf<L>>>();
        let free = (self.free_leaves.capacity() + self.free_branches.capacity()) * std::mem::size_of::<u32>();
        pointers
            + free
            + self.leaves.len() * std::mem::size_of::<Leaf<L>>()
            + self.branches.len() * std::mem::size_of::<Branch<B>>()
    }
}

/// In-order walk of a [`Tree`] along its leaf links, either way.
pub struct TreeIter<'a, const L: usize = LEAF_KEYS, const B: usize = BRANCH_KEYS> {
    tree: &'a Tree<L, B>,
    entries: &'a Entries,
    /// The leaf and position of the next element; `NIL` when done.
    leaf: u32,
    at: usize,
    rev: bool,
}

impl<'a, const L: usize, const B: usize> Iterator for TreeIter<'a, L, B> {
    type Item = (f64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.leaf == NIL {
            return None;
        }
        let leaf = &self.tree.leaves[self.leaf as usize];
        let item = (leaf.scores[self.at], self.entries.member(leaf.slots[self.at]));
        if !self.rev {
            self.at += 1;
            if self.at == leaf.len() {
                (self.leaf, self.at) = (leaf.next, 0);
            }
        } else if self.at > 0 {
            self.at -= 1;
        } else {
            self.leaf = leaf.prev;
            if self.leaf != NIL {
                self.at = self.tree.leaves[self.leaf as usize].len() - 1;
            }
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a tree's invariants and returns its keys in order: every
    /// leaf at one depth, counts and first keys of children right, keys
    /// strictly ascending, leaf links in order, node fill kept (all leaves
    /// but the first and the last, all branches but the root), no free node
    /// in use.
    fn check_tree<const L: usize, const B: usize>(t: &Tree<L, B>, entries: &Entries) -> Vec<(f64, u32)> {
        struct Walk {
            keys: Vec<(f64, u32)>,
            leaves: Vec<u32>,
            branches: Vec<u32>,
        }
        fn walk<const L: usize, const B: usize>(t: &Tree<L, B>, node: u32, height: u32, w: &mut Walk) -> usize {
            if height == 0 {
                let l = &t.leaves[node as usize];
                assert!(l.len() <= L);
                w.keys.extend((0..l.len()).map(|i| (l.scores[i], l.slots[i])));
                w.leaves.push(node);
                return l.len();
            }
            let b = &t.branches[node as usize];
            assert!((2..=B).contains(&b.len()), "branch of {} children", b.len());
            w.branches.push(node);
            let mut total = 0;
            for i in 0..b.len() {
                let start = w.keys.len();
                let n = walk(t, b.children[i], height - 1, w);
                assert!(n > 0, "empty child");
                assert_eq!(b.counts[i] as usize, n, "count of child {i}");
                let first = w.keys[start];
                assert_eq!((b.scores[i].to_bits(), b.slots[i]), (first.0.to_bits(), first.1), "first key of child {i}");
                total += n;
            }
            total
        }
        let mut w = Walk { keys: Vec::new(), leaves: Vec::new(), branches: Vec::new() };
        if t.root == NIL {
            assert_eq!(t.len, 0);
            return w.keys;
        }
        assert_eq!(walk(t, t.root, t.height, &mut w), t.len);
        for pair in w.keys.windows(2) {
            let (a, b) = ((pair[0].0, entries.member(pair[0].1)), (pair[1].0, entries.member(pair[1].1)));
            assert_eq!(cmp(a, b), Ordering::Less, "keys in order");
        }
        for (k, &leaf) in w.leaves.iter().enumerate() {
            let l = &t.leaves[leaf as usize];
            assert_eq!(l.prev, if k == 0 { NIL } else { w.leaves[k - 1] }, "prev link");
            assert_eq!(l.next, w.leaves.get(k + 1).copied().unwrap_or(NIL), "next link");
            if k > 0 && k + 1 < w.leaves.len() {
                assert!(l.len() >= min_keys(L), "leaf {k} of {} holds {}", w.leaves.len(), l.len());
            }
        }
        for &b in &w.branches {
            if b != t.root {
                assert!(t.branches[b as usize].len() >= min_keys(B), "branch fill");
            }
        }
        assert!(t.free_leaves.iter().all(|f| !w.leaves.contains(f)), "a free leaf in use");
        assert!(t.free_branches.iter().all(|f| !w.branches.contains(f)), "a free branch in use");
        w.keys
    }

    /// Checks the large encoding: the tree's invariants, and that index,
    /// entries and tree agree on every member and score.
    fn check(z: &ZSet) {
        let ZSet::Big(b) = z else { return };
        let keys = check_tree(&b.tree, &b.entries);
        assert_eq!(keys.len(), b.index.len());
        for &(score, slot) in &keys {
            let e = b.entries.get(slot);
            assert_eq!(e.score.to_bits(), score.to_bits(), "tree and entry agree on the score");
            assert_eq!(b.find(b.hash(e.member.bytes()), e.member.bytes()), Some(slot), "the index finds the member");
            assert!(!b.entries.free.contains(&slot), "a free slot in use");
        }
        let heap: usize = keys.iter().map(|&(_, slot)| b.entries.get(slot).member.heap_bytes()).sum();
        assert_eq!(b.entries.member_heap_bytes, heap);
    }

    fn elements(z: &ZSet) -> Vec<(f64, Vec<u8>)> {
        z.iter_from(0, false).map(|(s, m)| (s, m.to_vec())).collect()
    }

    #[test]
    fn partition_finds_the_end_of_a_prefix() {
        for len in 0..40 {
            for boundary in 0..=len {
                assert_eq!(partition(len, |i| i < boundary), boundary, "len {len}");
            }
        }
    }

    #[test]
    fn an_entry_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<Leaf<LEAF_KEYS>>(), 768);
        assert_eq!(std::mem::size_of::<Branch<BRANCH_KEYS>>(), 1024);
        let long = [b'x'; MEMBER_INLINE_BYTES + 1];
        for m in [&b""[..], b"element:000000012345", &long[..MEMBER_INLINE_BYTES], &long] {
            assert_eq!(Member::new(m).bytes(), m);
        }
        assert_eq!(Member::new(&long).heap_bytes(), long.len());
    }

    #[test]
    fn small_converts_past_thresholds_and_keeps_order() {
        let mut z = ZSet::default();
        for i in 0..SMALL_ENTRIES_MAX {
            assert_eq!(z.insert(format!("m{i:03}").as_bytes(), (i % 7) as f64), None);
        }
        assert_eq!(z.encoding(), "listpack");
        let before = elements(&z);
        assert_eq!(z.insert(b"one-more", 100.0), None);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.len(), SMALL_ENTRIES_MAX + 1);
        assert_eq!(&elements(&z)[..SMALL_ENTRIES_MAX], &before[..]);
        check(&z);

        let mut long = ZSet::default();
        long.insert(&[b'x'; SMALL_VALUE_BYTES_MAX + 1], 1.0);
        assert_eq!(long.encoding(), "skiplist");
        assert_eq!(long.score(&[b'x'; SMALL_VALUE_BYTES_MAX + 1]), Some(1.0));
        let mut edge = ZSet::default();
        edge.insert(&[b'x'; SMALL_VALUE_BYTES_MAX], 1.0);
        assert_eq!(edge.encoding(), "listpack");
    }

    #[test]
    fn insert_update_remove_rank() {
        for big in [false, true] {
            let mut z = ZSet::default();
            if big {
                z.convert_to_big();
            }
            assert_eq!(z.insert(b"b", 2.0), None);
            assert_eq!(z.insert(b"a", 2.0), None);
            assert_eq!(z.insert(b"c", 1.0), None);
            assert_eq!(z.rank(b"c"), Some(0));
            assert_eq!(z.rank(b"a"), Some(1));
            assert_eq!(z.rank(b"b"), Some(2));
            assert_eq!(z.insert(b"c", 3.0), Some(1.0));
            assert_eq!(z.rank(b"c"), Some(2));
            assert_eq!(z.nth(0), Some((2.0, &b"a"[..])));
            assert_eq!(z.score(b"c"), Some(3.0));
            assert_eq!(z.remove(b"a"), Some(2.0));
            assert_eq!(z.remove(b"a"), None);
            assert_eq!(z.rank(b"a"), None);
            assert_eq!(z.len(), 2);
            let down: Vec<_> = z.iter_from(1, true).map(|(_, m)| m.to_vec()).collect();
            assert_eq!(down, vec![b"c".to_vec(), b"b".to_vec()]);
            assert_eq!(z.iter_from(5, false).count(), 0);
            assert_eq!(z.iter_from(5, true).count(), 0);
            // A zero's sign is kept even though 0 and -0 order alike.
            assert_eq!(z.insert(b"b", 0.0), Some(2.0));
            assert_eq!(z.insert(b"b", -0.0), Some(0.0));
            assert!(z.score(b"b").is_some_and(|s| s.is_sign_negative()));
            assert!(z.nth(0).is_some_and(|(s, _)| s.is_sign_negative()));
            check(&z);
        }
    }

    #[test]
    fn upsert_looks_up_once_and_may_leave_the_set_alone() {
        for big in [false, true] {
            let mut z = ZSet::default();
            if big {
                z.convert_to_big();
            }
            assert_eq!(z.upsert(b"a", |cur| (None, cur)), None);
            assert!(z.is_empty());
            assert_eq!(z.upsert(b"a", |cur| (Some(1.5), cur)), None);
            assert_eq!(z.upsert(b"a", |cur| (None, cur)), Some(1.5));
            assert_eq!(z.upsert(b"a", |cur| (cur.map(|s| s + 1.0), cur)), Some(1.5));
            assert_eq!(z.score(b"a"), Some(2.5));
            check(&z);
        }
    }

    /// The model: a Vec kept sorted by (score, member).
    fn model_insert(model: &mut Vec<(f64, Vec<u8>)>, m: &[u8], s: f64) -> Option<f64> {
        let old = model.iter().position(|(_, e)| e == m).map(|i| model.remove(i).0);
        let at = model.partition_point(|(ms, me)| cmp((*ms, me), (s, m)) == Ordering::Less);
        model.insert(at, (s, m.to_vec()));
        old
    }

    #[test]
    fn randomized_against_sorted_vec_model() {
        for seed in 0..8u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut z = ZSet::default();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            // Member spaces on both sides of the small threshold, and one
            // large enough for a tree of three levels; some members are
            // longer than an entry keeps inline.
            let space = [100, 600, 5000][seed as usize % 3];
            let steps = if space == 5000 { 20_000 } else { 4000 };
            for step in 0..steps {
                let n = rng.usize(..space);
                let m = if n % 5 == 0 { format!("a-longer-member-name-{n}") } else { format!("m{n}") }.into_bytes();
                let s = rng.i32(-20..20) as f64 / 2.0;
                match rng.u8(..10) {
                    0..=5 => assert_eq!(z.insert(&m, s), model_insert(&mut model, &m, s), "step {step}"),
                    6..=7 if step % 3 != 0 || space != 5000 => {
                        let want = model.iter().position(|(_, e)| *e == m).map(|i| model.remove(i).0);
                        assert_eq!(z.remove(&m), want, "step {step}");
                    }
                    _ => {
                        let want = model.iter().position(|(_, e)| *e == m);
                        assert_eq!(z.rank(&m), want);
                        assert_eq!(z.score(&m), want.map(|i| model[i].0));
                    }
                }
                assert_eq!(z.len(), model.len());
                if step % 97 == 0 {
                    check(&z);
                    assert_eq!(elements(&z), model);
                }
                if !model.is_empty() {
                    let i = rng.usize(..model.len());
                    assert_eq!(z.nth(i).map(|(s, m)| (s, m.to_vec())), Some(model[i].clone()));
                    let up: Vec<_> = z.iter_from(i, false).take(70).map(|(s, m)| (s, m.to_vec())).collect();
                    assert_eq!(up, model[i..(i + 70).min(model.len())].to_vec());
                    let down: Vec<_> = z.iter_from(i, true).take(70).map(|(s, m)| (s, m.to_vec())).collect();
                    let want: Vec<_> = model[i.saturating_sub(69)..=i].iter().rev().cloned().collect();
                    assert_eq!(down, want);
                    let bound = rng.i32(-22..22) as f64 / 2.0;
                    let below = model.iter().filter(|(s, _)| *s < bound).count();
                    assert_eq!(z.count_before(|s, _| s < bound), below);
                    assert_eq!(z.count_before_score(|s| s < bound), below);
                    let (bs, bm) = (&model[i].0, &model[i].1);
                    assert_eq!(z.count_before(|s, m| cmp((s, m), (*bs, bm)) != Ordering::Greater), i + 1);
                }
                assert_eq!(z.nth(model.len()), None);
            }
            check(&z);
            assert_eq!(elements(&z), model);
            if space > SMALL_ENTRIES_MAX * 2 {
                assert_eq!(z.encoding(), "skiplist");
            }
            if space == 5000 {
                let ZSet::Big(b) = &z else { panic!("big") };
                assert!(b.tree.height >= 2, "deep enough to test branches");
            }
        }
    }

    /// Tiny nodes make a deep tree from few elements, so that splits,
    /// merges and moves between branches all happen often.
    #[test]
    fn tiny_node_tree_matches_a_sorted_model() {
        fn run<const L: usize, const B: usize>(seed: u64) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut entries = Entries::default();
            let mut tree: Tree<L, B> = Tree::default();
            let mut slots: hashbrown::HashMap<Vec<u8>, u32> = hashbrown::HashMap::new();
            // (score, member, slot), sorted by (score, member).
            let mut model: Vec<(f64, Vec<u8>, u32)> = Vec::new();
            let position = |model: &Vec<(f64, Vec<u8>, u32)>, m: &[u8]| model.iter().position(|(_, e, _)| e == m);
            for step in 0..6000u32 {
                let n = rng.usize(..400);
                let m = format!("member-{n}").into_bytes();
                // Runs of ascending and descending scores test the edge splits.
                let s = match (step / 500) % 3 {
                    0 => rng.i32(-8..8) as f64,
                    1 => step as f64,
                    _ => -(step as f64),
                };
                if rng.u8(..10) < 6 {
                    let slot = match slots.get(&m) {
                        Some(&slot) => {
                            let was = entries.get(slot).score;
                            assert!(tree.remove(&entries, was, slot), "step {step}");
                            model.remove(position(&model, &m).expect("in model"));
                            entries.get_mut(slot).score = s;
                            slot
                        }
                        None => {
                            let slot = entries.add(Entry { score: s, member: Member::new(&m) });
                            slots.insert(m.clone(), slot);
                            slot
                        }
                    };
                    tree.insert(&entries, s, slot);
                    let at = model.partition_point(|(ms, me, _)| cmp((*ms, me), (s, &m)) == Ordering::Less);
                    model.insert(at, (s, m, slot));
                } else if let Some(slot) = slots.remove(&m) {
                    let was = entries.get(slot).score;
                    assert!(tree.remove(&entries, was, slot), "step {step}");
                    assert!(!tree.remove(&entries, was, slot), "removed twice");
                    entries.release(slot);
                    model.remove(position(&model, &m).expect("in model"));
                }
                assert_eq!(tree.len, model.len());
                if step % 50 == 0 {
                    let keys = check_tree(&tree, &entries);
                    let want: Vec<(f64, u32)> = model.iter().map(|(s, _, slot)| (*s, *slot)).collect();
                    assert_eq!(keys, want, "step {step}");
                }
                if !model.is_empty() {
                    let i = rng.usize(..model.len());
                    let (leaf, at) = tree.locate(i).expect("in range");
                    assert_eq!(tree.element(leaf, at, &entries), (model[i].0, &model[i].1[..]));
                    for rev in [false, true] {
                        let walk = TreeIter { tree: &tree, entries: &entries, leaf, at, rev };
                        let got: Vec<f64> = walk.take(3 * L).map(|(s, _)| s).collect();
                        let want: Vec<f64> = if rev {
                            model[i.saturating_sub(3 * L - 1)..=i].iter().rev().map(|e| e.0).collect()
                        } else {
                            model[i..(i + 3 * L).min(model.len())].iter().map(|e| e.0).collect()
                        };
                        assert_eq!(got, want);
                    }
                    let bound = model[i].0;
                    let below = model.iter().filter(|e| e.0 < bound).count();
                    assert_eq!(tree.count_before(|s, _| s < bound), below);
                }
                assert_eq!(tree.locate(model.len()), None);
            }
            check_tree(&tree, &entries);
        }
        for seed in 0..4 {
            run::<4, 4>(seed);
            run::<5, 6>(seed);
            run::<8, 4>(seed);
        }
    }

    #[test]
    fn ascending_and_descending_inserts_fill_leaves() {
        for sign in [1.0, -1.0] {
            let mut z = ZSet::default();
            let n = 20_000;
            for i in 0..n {
                z.insert(format!("m{i}").as_bytes(), sign * i as f64);
            }
            check(&z);
            let ZSet::Big(b) = &z else { panic!("big") };
            assert!(b.tree.leaves.len() <= n / LEAF_KEYS + 2, "{} leaves", b.tree.leaves.len());
        }
    }

    #[test]
    fn removed_entries_and_nodes_are_reused() {
        let mut z = ZSet::default();
        z.convert_to_big();
        let mut rng = fastrand::Rng::with_seed(5);
        let mut first_round_leaves = 0;
        for round in 0..3 {
            for i in 0..5000 {
                z.insert(format!("{i}").as_bytes(), rng.u32(..1000) as f64 + round as f64);
            }
            let ZSet::Big(b) = &z else { panic!("big") };
            if round == 0 {
                first_round_leaves = b.tree.leaves.len();
            }
            // Most members go: the tree keeps its nodes filled as it shrinks.
            for i in 0..4900 {
                assert!(z.remove(format!("{i}").as_bytes()).is_some());
            }
            check(&z);
            let ZSet::Big(b) = &z else { panic!("big") };
            let in_use = b.tree.leaves.len() - b.tree.free_leaves.len();
            assert!(in_use <= 100 / min_keys(LEAF_KEYS) + 2, "{in_use} leaves for 100 elements");
            for i in 4900..5000 {
                assert!(z.remove(format!("{i}").as_bytes()).is_some());
            }
            check(&z);
        }
        let ZSet::Big(b) = &z else { panic!("big") };
        assert!(b.entries.chunks.iter().map(Vec::len).sum::<usize>() <= 5000);
        assert!(b.tree.leaves.len() <= first_round_leaves * 6 / 5, "later rounds reuse the first round's leaves");
        assert_eq!((b.tree.len, b.tree.height), (0, 0));
    }
}
