//! The list value type: a double-ended queue of byte strings, so pushes and
//! pops at either end are O(1) and indexing is O(1) too (LINDEX, LSET and
//! LRANGE need no walk, unlike Redis's quicklist).

use std::collections::VecDeque;

/// Which end of a list an operation works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LEFT, index 0).
    Left,
    /// The tail (RIGHT, index -1).
    Right,
}

impl End {
    /// Parses `LEFT` or `RIGHT` in any letter case.
    pub fn parse(word: &[u8]) -> Option<End> {
        if word.eq_ignore_ascii_case(b"LEFT") {
            Some(End::Left)
        } else if word.eq_ignore_ascii_case(b"RIGHT") {
            Some(End::Right)
        } else {
            None
        }
    }
}

/// A list of byte strings.
/// Elements per chunk. Chunks make growth copy at most one chunk, never the
/// whole list (a list of millions of elements in one buffer stalls its
/// shard for milliseconds each time the buffer doubles), as Redis's
/// quicklist of nodes does.
const CHUNK_ITEMS: usize = 128;

type Chunk = VecDeque<Box<[u8]>>;

#[derive(Debug, Clone, Default)]
pub struct List {
    /// Non-empty chunks of at most 2 * CHUNK_ITEMS elements, in order.
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held on the heap by the items and their containers.
    pub fn heap_bytes(&self) -> usize {
        let containers = self.chunks.capacity() * std::mem::size_of::<Chunk>();
        let slots: usize = self.chunks.iter().map(|c| c.capacity() * std::mem::size_of::<Box<[u8]>>()).sum();
        containers + slots + self.iter().map(<[u8]>::len).sum::<usize>()
    }

    /// The encoding name Redis would report for a list of this shape
    /// (a listpack while small, a quicklist past list-max-listpack-size).
    pub fn encoding(&self) -> &'static str {
        const LISTPACK_BYTES_MAX: usize = 8 * 1024;
        let bytes: usize = self.iter().map(|i| i.len() + 2).sum();
        if bytes <= LISTPACK_BYTES_MAX { "listpack" } else { "quicklist" }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.chunks.iter().flat_map(|c| c.iter().map(|v| &**v))
    }

    /// Chunk and offset of element `i` (< len), walking from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        debug_assert!(i < self.len);
        if i < self.len / 2 {
            let mut rest = i;
            for (c, chunk) in self.chunks.iter().enumerate() {
                if rest < chunk.len() {
                    return (c, rest);
                }
                rest -= chunk.len();
            }
        } else {
            let mut rest = self.len - 1 - i;
            for (c, chunk) in self.chunks.iter().enumerate().rev() {
                if rest < chunk.len() {
                    return (c, chunk.len() - 1 - rest);
                }
                rest -= chunk.len();
            }
        }
        unreachable!("index within len")
    }

    /// Pushes at the head or the tail.
    pub fn push(&mut self, end: End, item: &[u8]) {
        match end {
            End::Left => {
                if self.chunks.front().is_none_or(|c| c.len() >= CHUNK_ITEMS) {
                    self.chunks.push_front(Chunk::new());
                }
                if let Some(c) = self.chunks.front_mut() {
                    c.push_front(item.into());
                }
            }
            End::Right => {
                if self.chunks.back().is_none_or(|c| c.len() >= CHUNK_ITEMS) {
                    self.chunks.push_back(Chunk::new());
                }
                if let Some(c) = self.chunks.back_mut() {
                    c.push_back(item.into());
                }
            }
        }
        self.len += 1;
    }

    /// Pops from the head or the tail.
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        let item = match end {
            End::Left => {
                let item = self.chunks.front_mut()?.pop_front();
                if self.chunks.front().is_some_and(VecDeque::is_empty) {
                    self.chunks.pop_front();
                }
                item
            }
            End::Right => {
                let item = self.chunks.back_mut()?.pop_back();
                if self.chunks.back().is_some_and(VecDeque::is_empty) {
                    self.chunks.pop_back();
                }
                item
            }
        };
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    /// Element `i` from the head.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (c, o) = self.locate(i);
        Some(&self.chunks[c][o])
    }

    /// Replaces element `i`; false when out of range.
    pub fn set(&mut self, i: usize, item: &[u8]) -> bool {
        if i >= self.len {
            return false;
        }
        let (c, o) = self.locate(i);
        self.chunks[c][o] = item.into();
        true
    }

    /// Inserts before element `i` (`i == len` appends).
    pub fn insert(&mut self, i: usize, item: &[u8]) {
        debug_assert!(i <= self.len);
        if i >= self.len {
            return self.push(End::Right, item);
        }
        let (c, o) = self.locate(i);
        self.chunks[c].insert(o, item.into());
        self.len += 1;
        if self.chunks[c].len() > 2 * CHUNK_ITEMS {
            let half = self.chunks[c].len() / 2;
            let tail = self.chunks[c].split_off(half);
            self.chunks.insert(c + 1, tail);
        }
    }

    /// Index of the first element equal to `item`.
    pub fn position(&self, item: &[u8]) -> Option<usize> {
        self.iter().position(|v| v == item)
    }

    /// Removes up to `limit` (0: all) elements equal to `item`, scanning from `from`.
    pub fn remove_matching(&mut self, item: &[u8], limit: usize, from: End) -> usize {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut removed = 0;
        match from {
            End::Left => {
                for chunk in self.chunks.iter_mut() {
                    chunk.retain(|v| {
                        if removed < limit && **v == *item {
                            removed += 1;
                            false
                        } else {
                            true
                        }
                    });
                    if removed >= limit {
                        break;
                    }
                }
            }
            End::Right => {
                'chunks: for chunk in self.chunks.iter_mut().rev() {
                    let mut i = chunk.len();
                    while i > 0 {
                        if removed >= limit {
                            break 'chunks;
                        }
                        i -= 1;
                        if *chunk[i] == *item {
                            chunk.remove(i);
                            removed += 1;
                        }
                    }
                }
            }
        }
        self.chunks.retain(|c| !c.is_empty());
        self.len -= removed;
        removed
    }

    /// Keeps elements `start..=stop` only (clearing the list when empty).
    pub fn keep_range(&mut self, start: usize, stop: usize) {
        if start > stop || start >= self.len {
            self.chunks.clear();
            self.len = 0;
            return;
        }
        let mut drop_back = self.len - (stop + 1).min(self.len);
        while drop_back > 0 {
            let Some(last) = self.chunks.back_mut() else { break };
            if last.len() <= drop_back {
                drop_back -= last.len();
                self.chunks.pop_back();
            } else {
                last.truncate(last.len() - drop_back);
                drop_back = 0;
            }
        }
        let mut drop_front = start;
        while drop_front > 0 {
            let Some(first) = self.chunks.front_mut() else { break };
            if first.len() <= drop_front {
                drop_front -= first.len();
                self.chunks.pop_front();
            } else {
                first.drain(..drop_front);
                drop_front = 0;
            }
        }
        self.len = stop.min(self.len - 1) + 1 - start;
        debug_assert_eq!(self.len, self.chunks.iter().map(VecDeque::len).sum::<usize>());
    }

    /// Elements `start..=stop` (both within the list).
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> {
        let (c, o) = if start < self.len { self.locate(start) } else { (self.chunks.len(), 0) };
        self.chunks
            .range(c..)
            .enumerate()
            .flat_map(move |(k, chunk)| chunk.range(if k == 0 { o } else { 0 }..).map(|v| &**v))
            .take((stop + 1).saturating_sub(start))
    }

    /// (index, element) pairs from the head or from the tail.
    pub fn iter_from(&self, end: End) -> Box<dyn Iterator<Item = (usize, &[u8])> + '_> {
        match end {
            End::Left => Box::new(self.iter().enumerate()),
            End::Right => {
                let last = self.len;
                Box::new(self.iter().rev().enumerate().map(move |(k, v)| (last - 1 - k, v)))
            }
        }
    }
}

/// Converts a Redis index (negative counts from the tail) to a position, when
/// it falls inside a list of `len` elements.
pub fn position_of(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { index.checked_add(len)? } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Clamps a Redis range `start..=stop` (negative indexes count from the tail)
/// to the positions of a list of `len` elements; `None` when it selects none.
pub fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start.saturating_add(len).max(0) } else { start };
    let stop = if stop < 0 { stop.saturating_add(len) } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        let mut l = List::default();
        for i in items {
            l.push(End::Right, i.as_bytes());
        }
        l
    }

    fn texts(l: &List) -> Vec<String> {
        l.iter_from(End::Left).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
    }

    #[test]
    fn chunked_list_matches_a_flat_model() {
        // Seeded random operations against a VecDeque model, across many chunks.
        let mut rng = fastrand::Rng::with_seed(7);
        let mut list = List::default();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..20_000u32 {
            let item = (step % 97).to_le_bytes().to_vec();
            match rng.u8(0..10) {
                0..=2 => {
                    list.push(End::Left, &item);
                    model.push_front(item);
                }
                3..=5 => {
                    list.push(End::Right, &item);
                    model.push_back(item);
                }
                6 => assert_eq!(list.pop(End::Left).map(|b| b.to_vec()), model.pop_front()),
                7 => {
                    let i = rng.usize(..=model.len());
                    list.insert(i, &item);
                    model.insert(i, item);
                }
                8 if !model.is_empty() => {
                    let i = rng.usize(..model.len());
                    assert!(list.set(i, &item));
                    model[i] = item;
                }
                _ if model.len() > 10 && step % 500 == 0 => {
                    let removed = list.remove_matching(&item, 3, End::Right);
                    let mut left = 3;
                    let mut i = model.len();
                    while i > 0 && left > 0 {
                        i -= 1;
                        if model[i] == item {
                            model.remove(i);
                            left -= 1;
                        }
                    }
                    assert_eq!(removed, 3 - left);
                }
                _ => assert_eq!(list.pop(End::Right).map(|b| b.to_vec()), model.pop_back()),
            }
            assert_eq!(list.len(), model.len());
        }
        let all: Vec<Vec<u8>> = list.range(0, list.len().saturating_sub(1)).map(<[u8]>::to_vec).collect();
        assert_eq!(all, model.iter().cloned().collect::<Vec<_>>());
        if list.len() > 300 {
            let (s, e) = (17, list.len() - 40);
            let got: Vec<Vec<u8>> = list.range(s, e).map(<[u8]>::to_vec).collect();
            assert_eq!(got, model.range(s..=e).cloned().collect::<Vec<_>>());
            list.keep_range(s, e);
            assert_eq!(list.len(), e - s + 1);
            assert_eq!(list.get(0).map(<[u8]>::to_vec), model.get(s).cloned());
        }
        let last = list.iter_from(End::Right).next();
        assert_eq!(last.map(|(i, _)| i), list.len().checked_sub(1));
    }

    #[test]
    fn push_and_pop_at_both_ends() {
        let mut l = List::default();
        l.push(End::Left, b"b");
        l.push(End::Left, b"a");
        l.push(End::Right, b"c");
        assert_eq!(texts(&l), ["a", "b", "c"]);
        assert_eq!(l.pop(End::Right).as_deref(), Some(&b"c"[..]));
        assert_eq!(l.pop(End::Left).as_deref(), Some(&b"a"[..]));
        assert_eq!(l.pop(End::Left).as_deref(), Some(&b"b"[..]));
        assert!(l.pop(End::Left).is_none());
        assert!(l.is_empty());
    }

    #[test]
    fn indexes_and_ranges_follow_redis() {
        assert_eq!(position_of(0, 3), Some(0));
        assert_eq!(position_of(-1, 3), Some(2));
        assert_eq!(position_of(-3, 3), Some(0));
        assert_eq!(position_of(-4, 3), None);
        assert_eq!(position_of(3, 3), None);
        assert_eq!(position_of(i64::MIN, 3), None);
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(3, 10, 3), None);
        assert_eq!(clamp_range(0, -4, 3), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(clamp_range(0, 0, 0), None);
    }

    #[test]
    fn remove_matching_from_either_end() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove_matching(b"a", 2, End::Right), 2);
        assert_eq!(texts(&l), ["a", "b", "c"]);
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove_matching(b"a", 1, End::Left), 1);
        assert_eq!(texts(&l), ["b", "a", "c", "a"]);
        assert_eq!(l.remove_matching(b"a", 0, End::Left), 2);
        assert_eq!(texts(&l), ["b", "c"]);
        assert_eq!(l.remove_matching(b"zz", 0, End::Left), 0);
    }

    #[test]
    fn keep_range_set_insert() {
        let mut l = list(&["a", "b", "c", "d"]);
        l.keep_range(1, 2);
        assert_eq!(texts(&l), ["b", "c"]);
        assert!(l.set(1, b"x"));
        assert!(!l.set(2, b"y"));
        l.insert(1, b"m");
        l.insert(3, b"z");
        assert_eq!(texts(&l), ["b", "m", "x", "z"]);
        assert_eq!(l.position(b"x"), Some(2));
        assert_eq!(l.range(1, 2).collect::<Vec<_>>(), [&b"m"[..], &b"x"[..]]);
        assert_eq!(l.iter_from(End::Right).next(), Some((3, &b"z"[..])));
        l.keep_range(2, 1);
        assert!(l.is_empty());
    }
}
