//! The sorted set value type: a compact sorted vector of (score, member)
//! while small (as Redis's listpack encoding), and past the size thresholds a
//! member -> score table plus an order-statistic tree over (score, member).
//!
//! The tree is a treap kept in one arena `Vec` (indices instead of pointers,
//! so no `unsafe`), each node carrying its subtree size. That gives O(log n)
//! insert, delete, rank, n-th element and "how many elements come before this
//! bound", which is all ZRANGE, ZRANK, ZCOUNT and friends need.
//!
//! ```text
//!   Small: [(1,"a"), (2,"b"), (2,"c")]      sorted by (score, member)
//!   Big:   members: {"a":1, "b":2, ...}     score by member, O(1)
//!          tree:          (2,"b") size 3    order and rank, O(log n)
//!                        /        \
//!                 (1,"a") 1     (2,"c") 1
//! ```

use hashbrown::HashMap;
use std::cmp::Ordering;

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

/// The large encoding: scores by member, and the order in a tree.
#[derive(Debug, Clone, Default)]
pub struct Big {
    members: HashMap<Box<[u8]>, f64>,
    tree: Tree,
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
            ZSet::Big(b) => b.members.len(),
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
            ZSet::Big(b) => b.members.get(member).copied(),
        }
    }

    /// Sets the score of `member` (adding it when new); returns its previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        if let ZSet::Small(v) = self {
            let old = v.iter().position(|(_, m)| **m == *member);
            if let Some(i) = old {
                let was = v[i].0;
                // The same position stays sorted when the score does not change.
                if was != score || was.is_sign_negative() != score.is_sign_negative() {
                    let (_, m) = v.remove(i);
                    let at = v.partition_point(|(s, e)| cmp((*s, e), (score, member)) == Ordering::Less);
                    v.insert(at, (score, m));
                }
                return Some(was);
            }
            if v.len() < SMALL_ENTRIES_MAX && member.len() <= SMALL_VALUE_BYTES_MAX {
                let at = v.partition_point(|(s, e)| cmp((*s, e), (score, member)) == Ordering::Less);
                v.insert(at, (score, member.into()));
                return None;
            }
            self.convert_to_big();
        }
        let ZSet::Big(b) = self else { unreachable!("converted above") };
        match b.members.get_mut(member) {
            Some(s) => {
                let was = *s;
                *s = score;
                b.tree.remove(was, member);
                b.tree.insert(score, member.into());
                Some(was)
            }
            None => {
                b.members.insert(member.into(), score);
                b.tree.insert(score, member.into());
                None
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
            ZSet::Big(b) => {
                let score = b.members.remove(member)?;
                b.tree.remove(score, member);
                Some(score)
            }
        }
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Small(v) => v.iter().position(|(_, m)| **m == *member),
            ZSet::Big(b) => {
                let score = *b.members.get(member)?;
                Some(b.tree.count_before(|s, m| cmp((s, m), (score, member)) == Ordering::Less))
            }
        }
    }

    /// The element at ascending rank `i`.
    pub fn nth(&self, i: usize) -> Option<(f64, &[u8])> {
        match self {
            ZSet::Small(v) => v.get(i).map(|(s, m)| (*s, &**m)),
            ZSet::Big(b) => b.tree.nth(i),
        }
    }

    /// How many elements come first in ascending order, given `before`, which
    /// must hold for a prefix of the elements and for none after it.
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSet::Small(v) => v.partition_point(|(s, m)| before(*s, m)),
            ZSet::Big(b) => b.tree.count_before(before),
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
            ZSet::Big(b) => Iter::Tree(b.tree.iter_from(start, rev)),
        }
    }

    /// The member -> score table of the large encoding (for ZSCAN's cursor).
    pub fn table(&self) -> Option<&HashMap<Box<[u8]>, f64>> {
        match self {
            ZSet::Small(_) => None,
            ZSet::Big(b) => Some(&b.members),
        }
    }

    fn convert_to_big(&mut self) {
        if let ZSet::Small(v) = self {
            let mut b = Big::default();
            for (s, m) in std::mem::take(v) {
                b.members.insert(m.clone(), s);
                b.tree.insert(s, m);
            }
            *self = ZSet::Big(b);
        }
    }

    /// Bytes held on the heap (an estimate for MEMORY USAGE: the members,
    /// the map's buckets, and a tree node per member).
    pub fn heap_bytes(&self) -> usize {
        /// A tree node's size, roughly: score, member handle, links, subtree size.
        const NODE_BYTES: usize = 48;
        match self {
            ZSet::Small(v) => v.capacity() * 24 + v.iter().map(|(_, m)| m.len()).sum::<usize>(),
            ZSet::Big(b) => {
                b.members.capacity() * 25
                    + b.members.keys().map(|m| m.len()).sum::<usize>()
                    + b.members.len() * NODE_BYTES
            }
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

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next().map(|(s, m)| (*s, &**m)),
            Iter::SmallRev(i) => i.next().map(|(s, m)| (*s, &**m)),
            Iter::Tree(i) => i.next(),
        }
    }
}

/// No node.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    member: Box<[u8]>,
    left: u32,
    right: u32,
    /// Number of nodes in the subtree rooted here.
    size: u32,
    /// Heap priority: a parent's is never lower than its children's.
    priority: u64,
}

/// An order-statistic treap over (score, member), its nodes in an arena.
#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    /// Arena slots of removed nodes, reused by later inserts.
    free: Vec<u32>,
    root: u32,
    /// Source of priorities: hashed insert counter, so the shape is random
    /// but reproducible.
    inserts: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Tree { nodes: Vec::new(), free: Vec::new(), root: NIL, inserts: 0 }
    }
}

/// SplitMix64's finalizer: a well-mixed priority from a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Tree {
    #[inline]
    fn size(&self, t: u32) -> usize {
        if t == NIL { 0 } else { self.nodes[t as usize].size as usize }
    }

    #[inline]
    fn update(&mut self, t: u32) {
        let n = &self.nodes[t as usize];
        let size = 1 + self.size(n.left) + self.size(n.right);
        self.nodes[t as usize].size = size as u32;
    }

    /// Joins `a` and `b`, every element of `a` ordered before every one of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].priority >= self.nodes[b as usize].priority {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.update(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.update(b);
            b
        }
    }

    /// Splits `t` into the elements ordered before (score, member) and the rest.
    fn split_before(&mut self, t: u32, score: f64, member: &[u8]) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let n = &self.nodes[t as usize];
        if cmp((n.score, &n.member), (score, member)) == Ordering::Less {
            let (l, r) = self.split_before(n.right, score, member);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let (l, r) = self.split_before(n.left, score, member);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    fn insert(&mut self, score: f64, member: Box<[u8]>) {
        self.inserts += 1;
        let (l, r) = self.split_before(self.root, score, &member);
        let node = Node { score, member, left: NIL, right: NIL, size: 1, priority: mix(self.inserts) };
        let n = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let l = self.merge(l, n);
        self.root = self.merge(l, r);
    }

    /// Removes (score, member), which must be present.
    fn remove(&mut self, score: f64, member: &[u8]) {
        let (l, r) = self.split_before(self.root, score, member);
        // The first element of `r` is the one to remove: cut it off its leftmost path.
        let (found, r) = self.pop_first(r);
        debug_assert!(found != NIL && *self.nodes[found as usize].member == *member);
        if found != NIL {
            let n = &mut self.nodes[found as usize];
            n.member = Box::default();
            n.left = NIL;
            n.right = NIL;
            self.free.push(found);
        }
        self.root = self.merge(l, r);
    }

    /// Detaches the first element of `t`: (that node, the rest).
    fn pop_first(&mut self, t: u32) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let left = self.nodes[t as usize].left;
        if left == NIL {
            return (t, self.nodes[t as usize].right);
        }
        let (first, rest) = self.pop_first(left);
        self.nodes[t as usize].left = rest;
        self.update(t);
        (first, t)
    }

    fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let (mut t, mut count) = (self.root, 0);
        while t != NIL {
            let n = &self.nodes[t as usize];
            if before(n.score, &n.member) {
                count += self.size(n.left) + 1;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        count
    }

    fn nth(&self, mut i: usize) -> Option<(f64, &[u8])> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            let left = self.size(n.left);
            match i.cmp(&left) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return Some((n.score, &n.member)),
                Ordering::Greater => {
                    i -= left + 1;
                    t = n.right;
                }
            }
        }
        None
    }

    fn iter_from(&self, mut i: usize, rev: bool) -> TreeIter<'_> {
        // The stack holds the nodes still to visit whose other side is unvisited.
        let mut stack = Vec::new();
        let mut t = if i < self.size(self.root) { self.root } else { NIL };
        while t != NIL {
            let n = &self.nodes[t as usize];
            let left = self.size(n.left);
            match (i.cmp(&left), rev) {
                (Ordering::Less, false) => {
                    stack.push(t);
                    t = n.left;
                }
                (Ordering::Less, true) => t = n.left,
                (Ordering::Equal, _) => {
                    stack.push(t);
                    break;
                }
                (Ordering::Greater, false) => {
                    i -= left + 1;
                    t = n.right;
                }
                (Ordering::Greater, true) => {
                    stack.push(t);
                    i -= left + 1;
                    t = n.right;
                }
            }
        }
        TreeIter { tree: self, stack, rev }
    }
}

/// In-order walk of a [`Tree`], either way.
pub struct TreeIter<'a> {
    tree: &'a Tree,
    stack: Vec<u32>,
    rev: bool,
}

impl<'a> Iterator for TreeIter<'a> {
    type Item = (f64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let t = self.stack.pop()?;
        let nodes = &self.tree.nodes;
        let n = &nodes[t as usize];
        let mut c = if self.rev { n.left } else { n.right };
        while c != NIL {
            self.stack.push(c);
            c = if self.rev { nodes[c as usize].right } else { nodes[c as usize].left };
        }
        Some((n.score, &n.member))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the tree's invariants: subtree sizes add up, priorities form a
    /// heap, the in-order walk is sorted, and the table agrees with the tree.
    fn check(z: &ZSet) {
        let ZSet::Big(b) = z else { return };
        fn walk(t: &Tree, n: u32, out: &mut Vec<(f64, Vec<u8>)>) -> usize {
            if n == NIL {
                return 0;
            }
            let node = &t.nodes[n as usize];
            for c in [node.left, node.right] {
                if c != NIL {
                    assert!(t.nodes[c as usize].priority <= node.priority, "heap order");
                }
            }
            let left = walk(t, node.left, out);
            out.push((node.score, node.member.to_vec()));
            let right = walk(t, node.right, out);
            assert_eq!(node.size as usize, left + right + 1, "subtree size");
            left + right + 1
        }
        let mut order = Vec::new();
        assert_eq!(walk(&b.tree, b.tree.root, &mut order), b.members.len());
        assert!(order.windows(2).all(|w| cmp((w[0].0, &w[0].1), (w[1].0, &w[1].1)) == Ordering::Less));
        assert!(order.iter().all(|(s, m)| b.members.get(&m[..]) == Some(s)));
    }

    fn elements(z: &ZSet) -> Vec<(f64, Vec<u8>)> {
        z.iter_from(0, false).map(|(s, m)| (s, m.to_vec())).collect()
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

        let mut long = ZSet::default();
        long.insert(&[b'x'; SMALL_VALUE_BYTES_MAX + 1], 1.0);
        assert_eq!(long.encoding(), "skiplist");
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
            // Member space straddles the small threshold so both encodings are hit.
            let space = if seed % 2 == 0 { 100 } else { 600 };
            for step in 0..4000 {
                let m = format!("m{}", rng.usize(..space)).into_bytes();
                let s = rng.i32(-20..20) as f64 / 2.0;
                match rng.u8(..10) {
                    0..=5 => assert_eq!(z.insert(&m, s), model_insert(&mut model, &m, s), "step {step}"),
                    6..=7 => {
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
                    let up: Vec<_> = z.iter_from(i, false).take(5).map(|(s, m)| (s, m.to_vec())).collect();
                    assert_eq!(up, model[i..(i + 5).min(model.len())].to_vec());
                    let down: Vec<_> = z.iter_from(i, true).take(5).map(|(s, m)| (s, m.to_vec())).collect();
                    let want: Vec<_> = model[i.saturating_sub(4)..=i].iter().rev().cloned().collect();
                    assert_eq!(down, want);
                    let bound = rng.i32(-22..22) as f64 / 2.0;
                    assert_eq!(z.count_before(|s, _| s < bound), model.iter().filter(|(s, _)| *s < bound).count());
                }
                assert_eq!(z.nth(model.len()), None);
            }
            check(&z);
            assert_eq!(elements(&z), model);
            if space == 600 {
                assert_eq!(z.encoding(), "skiplist");
            }
        }
    }

    #[test]
    fn removed_nodes_are_reused() {
        let mut z = ZSet::default();
        z.convert_to_big();
        for round in 0..3 {
            for i in 0..500 {
                z.insert(format!("{i}").as_bytes(), (i + round) as f64);
            }
            for i in 0..500 {
                assert!(z.remove(format!("{i}").as_bytes()).is_some());
            }
        }
        let ZSet::Big(b) = &z else { panic!("big") };
        assert!(b.tree.nodes.len() <= 500);
        assert_eq!(b.tree.root, NIL);
    }
}
