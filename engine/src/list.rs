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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    items: VecDeque<Box<[u8]>>,
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Bytes held on the heap by the items and their container.
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Box<[u8]>>() + self.items.iter().map(|i| i.len()).sum::<usize>()
    }

    /// The encoding name Redis would report for a list of this shape
    /// (a listpack while small, a quicklist past list-max-listpack-size).
    pub fn encoding(&self) -> &'static str {
        const LISTPACK_BYTES_MAX: usize = 8 * 1024;
        let bytes: usize = self.items.iter().map(|i| i.len() + 2).sum();
        if bytes <= LISTPACK_BYTES_MAX { "listpack" } else { "quicklist" }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `item` at `end`.
    pub fn push(&mut self, end: End, item: &[u8]) {
        match end {
            End::Left => self.items.push_front(item.into()),
            End::Right => self.items.push_back(item.into()),
        }
    }

    /// Removes and returns the element at `end`.
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }
    }

    /// The element at position `i` from the head.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|v| &**v)
    }

    /// Replaces the element at position `i`; false when out of range.
    pub fn set(&mut self, i: usize, item: &[u8]) -> bool {
        match self.items.get_mut(i) {
            Some(slot) => {
                *slot = item.into();
                true
            }
            None => false,
        }
    }

    /// Inserts `item` so it lands at position `i` (`i <= len`).
    pub fn insert(&mut self, i: usize, item: &[u8]) {
        debug_assert!(i <= self.items.len());
        self.items.insert(i, item.into());
    }

    /// Position of the first element equal to `item`.
    pub fn position(&self, item: &[u8]) -> Option<usize> {
        self.items.iter().position(|v| **v == *item)
    }

    /// Removes up to `limit` elements equal to `item` (0: all), searching from
    /// `from`; returns how many were removed.
    pub fn remove_matching(&mut self, item: &[u8], limit: usize, from: End) -> usize {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut removed = 0;
        match from {
            End::Left => self.items.retain(|v| {
                if removed < limit && **v == *item {
                    removed += 1;
                    false
                } else {
                    true
                }
            }),
            End::Right => {
                let mut i = self.items.len();
                while i > 0 && removed < limit {
                    i -= 1;
                    if *self.items[i] == *item {
                        self.items.remove(i);
                        removed += 1;
                    }
                }
            }
        }
        removed
    }

    /// Keeps only positions `start..=stop` (both within the list); an empty
    /// range (`start > stop`) clears it.
    pub fn keep_range(&mut self, start: usize, stop: usize) {
        if start > stop || start >= self.items.len() {
            self.items.clear();
            return;
        }
        self.items.truncate(stop + 1);
        self.items.drain(..start);
    }

    /// Elements at positions `start..=stop` (both within the list), head first.
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> {
        self.items.range(start..=stop).map(|v| &**v)
    }

    /// The elements from `end` inwards, with their positions from the head.
    pub fn iter_from(&self, end: End) -> Box<dyn Iterator<Item = (usize, &[u8])> + '_> {
        let indexed = self.items.iter().enumerate().map(|(i, v)| (i, &**v));
        match end {
            End::Left => Box::new(indexed),
            End::Right => Box::new(indexed.rev()),
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
