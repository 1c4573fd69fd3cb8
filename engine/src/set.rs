//! The set value type, with Redis 7.2's three encodings: a sorted vector of
//! integers while every member is one (intset), a small vector of members
//! while there are few and short ones (listpack), a hash set past that.
//!
//! Conversions only go towards the hash set, as in Redis: an intset that gets
//! a non-integer member becomes a small vector if it would still fit one,
//! otherwise a table; anything that grows past its thresholds becomes a table.

use crate::num;
use hashbrown::HashSet;

/// Past this many members an integer set becomes a table (set-max-intset-entries).
pub const INTS_ENTRIES_MAX: usize = 512;
/// Past this many members a small set becomes a table (set-max-listpack-entries).
pub const SMALL_ENTRIES_MAX: usize = 128;
/// A member longer than this makes a small set a table (set-max-listpack-value).
pub const SMALL_VALUE_BYTES_MAX: usize = 64;

/// A set of byte strings.
#[derive(Debug, Clone)]
pub enum Set {
    /// Only integers (in their canonical text form), sorted, binary searched.
    Ints(Vec<i64>),
    /// Few, short members in insertion order, searched linearly.
    Small(Vec<Box<[u8]>>),
    /// Many or long members.
    Table(HashSet<Box<[u8]>>),
}

/// A member as stored: an integer of an intset, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// A member stored as an integer; its text is the decimal form.
    Int(i64),
    /// A member stored as bytes.
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// The member's bytes, appended to a new vector.
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Member::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Member::Bytes(b) => b.to_vec(),
        }
    }

    /// Calls `f` with the member's bytes, formatting an integer on the stack.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Member::Bytes(b) => f(b),
        }
    }
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(Vec::new())
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| m.with_bytes(|b| other.contains(b)))
    }
}

impl Set {
    /// An empty set in the encoding Redis would pick for its first member.
    pub fn for_member(first: &[u8]) -> Self {
        if num::parse_i64(first).is_some() { Set::Ints(Vec::new()) } else { Set::Small(Vec::new()) }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(v) => v.len(),
            Set::Small(v) => v.len(),
            Set::Table(t) => t.len(),
        }
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            // Only a canonical integer text can be an intset member.
            Set::Ints(v) => num::parse_i64(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            Set::Small(v) => v.iter().any(|m| **m == *member),
            Set::Table(t) => t.contains(member),
        }
    }

    /// Adds `member`; true when it was not there.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => match num::parse_i64(member) {
                Some(n) => {
                    let Err(at) = v.binary_search(&n) else { return false };
                    v.insert(at, n);
                    if v.len() > INTS_ENTRIES_MAX {
                        self.convert_to_table();
                    }
                    return true;
                }
                None => {
                    if v.len() < SMALL_ENTRIES_MAX && member.len() <= SMALL_VALUE_BYTES_MAX {
                        self.convert_to_small();
                    } else {
                        self.convert_to_table();
                    }
                }
            },
            Set::Small(v) => {
                if v.iter().any(|m| **m == *member) {
                    return false;
                }
                if v.len() < SMALL_ENTRIES_MAX && member.len() <= SMALL_VALUE_BYTES_MAX {
                    v.push(member.into());
                    return true;
                }
                self.convert_to_table();
            }
            Set::Table(_) => {}
        }
        match self {
            Set::Small(v) => {
                // Reached only from an intset, which cannot hold `member`.
                v.push(member.into());
                true
            }
            Set::Table(t) => t.insert(member.into()),
            Set::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Removes `member`; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => match num::parse_i64(member).map(|n| v.binary_search(&n)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    true
                }
                _ => false,
            },
            Set::Small(v) => match v.iter().position(|m| **m == *member) {
                Some(at) => {
                    v.remove(at);
                    true
                }
                None => false,
            },
            Set::Table(t) => t.remove(member),
        }
    }

    fn convert_to_small(&mut self) {
        if let Set::Ints(v) = self {
            let members = v.iter().map(|n| Member::Int(*n).to_vec().into_boxed_slice()).collect();
            *self = Set::Small(members);
        }
    }

    fn convert_to_table(&mut self) {
        let table: HashSet<Box<[u8]>> = match self {
            Set::Ints(v) => v.iter().map(|n| Member::Int(*n).to_vec().into_boxed_slice()).collect(),
            Set::Small(v) => std::mem::take(v).into_iter().collect(),
            Set::Table(_) => return,
        };
        *self = Set::Table(table);
    }

    /// The members, in storage order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Member<'_>> + '_> {
        match self {
            Set::Ints(v) => Box::new(v.iter().map(|n| Member::Int(*n))),
            Set::Small(v) => Box::new(v.iter().map(|m| Member::Bytes(m))),
            Set::Table(t) => Box::new(t.iter().map(|m| Member::Bytes(m))),
        }
    }

    /// The member at position `i` of the storage order (for random picks).
    /// Constant time for the vector encodings, linear for a table.
    pub fn nth(&self, i: usize) -> Option<Member<'_>> {
        match self {
            Set::Ints(v) => v.get(i).map(|n| Member::Int(*n)),
            Set::Small(v) => v.get(i).map(|m| Member::Bytes(m)),
            Set::Table(t) => t.iter().nth(i).map(|m| Member::Bytes(m)),
        }
    }

    /// Bytes held on the heap by the members and their container.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Set::Ints(v) => v.capacity() * 8,
            Set::Small(v) => v.capacity() * 16 + v.iter().map(|m| m.len()).sum::<usize>(),
            Set::Table(t) => t.capacity() * 17 + t.iter().map(|m| m.len()).sum::<usize>(),
        }
    }

    /// The encoding name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Small(_) => "listpack",
            Set::Table(_) => "hashtable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = s.iter().map(Member::to_vec).collect();
        v.sort();
        v
    }

    #[test]
    fn integers_stay_sorted_and_only_canonical_text_counts() {
        let mut s = Set::default();
        for m in ["5", "-3", "100", "5", "0"] {
            s.insert(m.as_bytes());
        }
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.len(), 4);
        let order: Vec<Vec<u8>> = s.iter().map(Member::to_vec).collect();
        assert_eq!(order, [&b"-3"[..], b"0", b"5", b"100"]);
        assert!(s.contains(b"100"));
        // "05" and "+5" are other strings than "5", not the integer 5.
        assert!(!s.contains(b"05"));
        assert!(!s.contains(b"+5"));
        assert!(!s.remove(b"05"));
        assert!(s.remove(b"5"));
        assert!(!s.contains(b"5"));
        assert!(s.insert(b"05"));
        assert_eq!(s.encoding(), "listpack");
        assert!(s.contains(b"05") && s.contains(b"100") && !s.contains(b"5"));
        assert_eq!(members(&s), [&b"-3"[..], b"0", b"05", b"100"]);
    }

    #[test]
    fn intset_converts_past_its_limit_and_on_long_members() {
        let mut s = Set::default();
        for i in 0..INTS_ENTRIES_MAX as i64 {
            assert!(s.insert(i.to_string().as_bytes()));
        }
        assert_eq!(s.encoding(), "intset");
        assert!(s.insert(b"-1"));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), INTS_ENTRIES_MAX + 1);
        assert!(s.contains(b"511") && s.contains(b"-1"));

        // A non-integer into an intset too big for a small set: a table.
        let mut s = Set::default();
        for i in 0..SMALL_ENTRIES_MAX as i64 {
            s.insert(i.to_string().as_bytes());
        }
        s.insert(b"a");
        assert_eq!(s.encoding(), "hashtable");
        // A long non-integer into a small intset: a table.
        let mut s = Set::default();
        s.insert(b"1");
        s.insert(&[b'x'; SMALL_VALUE_BYTES_MAX + 1]);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(members(&s).len(), 2);
    }

    #[test]
    fn small_set_converts_past_thresholds_and_never_back() {
        let mut s = Set::for_member(b"m0");
        for i in 0..SMALL_ENTRIES_MAX {
            assert!(s.insert(format!("m{i}").as_bytes()));
        }
        assert_eq!(s.encoding(), "listpack");
        assert!(!s.insert(b"m7"));
        assert!(s.insert(b"one-more"));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), SMALL_ENTRIES_MAX + 1);
        for i in 0..SMALL_ENTRIES_MAX {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(members(&s), [b"one-more".to_vec()]);

        let mut long = Set::for_member(b"x");
        long.insert(b"x");
        long.insert(&[b'y'; SMALL_VALUE_BYTES_MAX + 1]);
        assert_eq!(long.encoding(), "hashtable");
    }

    #[test]
    fn nth_reaches_every_member_once() {
        for s in [
            ["1", "2", "3"].iter().fold(Set::default(), |mut s, m| {
                s.insert(m.as_bytes());
                s
            }),
            ["a", "b", "c"].iter().fold(Set::for_member(b"a"), |mut s, m| {
                s.insert(m.as_bytes());
                s
            }),
        ] {
            let mut picked: Vec<Vec<u8>> = (0..s.len()).filter_map(|i| s.nth(i)).map(Member::to_vec).collect();
            picked.sort();
            assert_eq!(picked, members(&s));
            assert_eq!(s.nth(s.len()), None);
        }
    }

    #[test]
    fn equality_ignores_encoding() {
        let mut a = Set::default();
        let mut b = Set::for_member(b"x");
        b.insert(b"x");
        b.remove(b"x");
        for m in ["1", "2"] {
            a.insert(m.as_bytes());
            b.insert(m.as_bytes());
        }
        assert_eq!(a.encoding(), "intset");
        assert_eq!(b.encoding(), "listpack");
        assert_eq!(a, b);
    }
}
