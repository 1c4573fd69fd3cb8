//! The hash value type: a compact vector of pairs while small (as Redis's
//! listpack encoding), a hash table once it passes the size thresholds.

use hashbrown::HashMap;
use std::ops::Range;

/// Past this many fields a small hash becomes a table (hash-max-listpack-entries).
pub const SMALL_ENTRIES_MAX: usize = 128;
/// Past this field or value length a small hash becomes a table (hash-max-listpack-value).
pub const SMALL_VALUE_BYTES_MAX: usize = 64;

/// The largest packed buffer: SMALL_ENTRIES_MAX pairs of the longest field and value.
const SMALL_BYTES_MAX: usize = SMALL_ENTRIES_MAX * 2 * (1 + SMALL_VALUE_BYTES_MAX);

/// The table encoding: fields to values.
pub type Table = HashMap<Box<[u8]>, Box<[u8]>>;

/// A hash of fields to values, owned (as built by RESTORE or moved out of
/// an entry; an entry keeps a small hash's buffer in its own block).
#[derive(Debug, Clone)]
pub enum Hash {
    /// Few, short fields, packed as Redis's listpack is: one exact-size
    /// buffer of length-prefixed items, field then value, in insertion order.
    /// One allocation for the whole hash, searched linearly.
    Small(Box<[u8]>),
    /// Many or long fields (boxed, so a hash is two words and fits in a value).
    Table(Box<Table>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Small(Box::default())
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

/// The (field, value, byte range of the pair) items of a packed buffer.
fn packed_pairs(buf: &[u8]) -> impl Iterator<Item = (&[u8], &[u8], std::ops::Range<usize>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= buf.len() {
            return None;
        }
        let start = at;
        let mut item = || {
            let len = *buf.get(at)? as usize;
            let bytes = buf.get(at + 1..at + 1 + len)?;
            at += 1 + len;
            Some(bytes)
        };
        let (f, v) = (item()?, item()?);
        Some((f, v, start..at))
    })
}

/// Where a small hash's packed buffer lives: an owned `Box<[u8]>`, or the
/// body of an entry. The edits below serve both.
pub(crate) trait Packed {
    /// The packed bytes.
    fn bytes(&self) -> &[u8];
    /// Replaces `range` of the bytes with the concatenation of `parts`.
    fn splice(&mut self, range: Range<usize>, parts: &[&[u8]]);
}

impl Packed for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn splice(&mut self, range: Range<usize>, parts: &[&[u8]]) {
        let add: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(self.len() - range.len() + add);
        out.extend_from_slice(&self[..range.start]);
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&self[range.end..]);
        *self = out.into_boxed_slice();
    }
}

impl Packed for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn splice(&mut self, range: Range<usize>, parts: &[&[u8]]) {
        if range.is_empty() && range.start == self.len() {
            parts.iter().for_each(|p| self.extend_from_slice(p));
        } else {
            drop(Vec::splice(self, range, parts.iter().flat_map(|p| p.iter().copied())));
        }
    }
}

/// Sets `field` to `value` in a packed hash: `Some(true)` when the field is
/// new, `Some(false)` when its value was replaced (in place of the old pair,
/// keeping the order), `None` when the pair would break the small encoding's
/// bounds and the hash must become a table first.
pub(crate) fn packed_insert(p: &mut impl Packed, field: &[u8], value: &[u8]) -> Option<bool> {
    if field.len() > SMALL_VALUE_BYTES_MAX || value.len() > SMALL_VALUE_BYTES_MAX {
        return None;
    }
    let (field_len, value_len) = ([field.len() as u8], [value.len() as u8]);
    let pair: [&[u8]; 4] = [&field_len, field, &value_len, value];
    let existing = packed_pairs(p.bytes()).find(|(f, _, _)| *f == field).map(|(_, _, r)| r);
    match existing {
        Some(r) => {
            p.splice(r, &pair);
            Some(false)
        }
        None if packed_pairs(p.bytes()).count() >= SMALL_ENTRIES_MAX => None,
        None => {
            let end = p.bytes().len();
            p.splice(end..end, &pair);
            Some(true)
        }
    }
}

/// Removes `field` from a packed hash; true when it existed.
pub(crate) fn packed_remove(p: &mut impl Packed, field: &[u8]) -> bool {
    let existing = packed_pairs(p.bytes()).find(|(f, _, _)| *f == field).map(|(_, _, r)| r);
    match existing {
        Some(r) => {
            p.splice(r, &[]);
            true
        }
        None => false,
    }
}

/// The table holding a packed buffer's pairs.
pub(crate) fn packed_to_table(buf: &[u8]) -> Table {
    packed_pairs(buf).map(|(f, v, _)| (f.into(), v.into())).collect()
}

/// A hash, borrowed: a packed buffer or a table.
#[derive(Debug, Clone, Copy)]
pub enum HashRef<'a> {
    /// The small encoding's packed buffer.
    Small(&'a [u8]),
    /// The table encoding.
    Table(&'a Table),
}

impl<'a> HashRef<'a> {
    /// Number of fields.
    pub fn len(self) -> usize {
        match self {
            HashRef::Small(b) => packed_pairs(b).count(),
            HashRef::Table(m) => m.len(),
        }
    }

    /// True when there are no fields.
    pub fn is_empty(self) -> bool {
        match self {
            HashRef::Small(b) => b.is_empty(),
            HashRef::Table(m) => m.is_empty(),
        }
    }

    /// The value of `field`.
    pub fn get(self, field: &[u8]) -> Option<&'a [u8]> {
        match self {
            HashRef::Small(b) => packed_pairs(b).find(|(f, _, _)| *f == field).map(|(_, v, _)| v),
            HashRef::Table(m) => m.get(field).map(|v| &**v),
        }
    }

    /// The fields and values, in storage order.
    pub fn iter(self) -> Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a> {
        match self {
            HashRef::Small(b) => Box::new(packed_pairs(b).map(|(f, v, _)| (f, v))),
            HashRef::Table(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// The field at position `i` of the storage order (for random picks).
    pub fn nth(self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        self.iter().nth(i)
    }

    /// Bytes held on the heap by the fields and values and their container.
    pub fn heap_bytes(self) -> usize {
        match self {
            HashRef::Small(b) => b.len(),
            HashRef::Table(m) => {
                let pairs: usize = m.iter().map(|(f, v)| f.len() + v.len()).sum();
                std::mem::size_of::<Table>() + m.capacity() * (32 + 1) + pairs
            }
        }
    }

    /// The encoding name OBJECT ENCODING reports.
    pub fn encoding(self) -> &'static str {
        match self {
            HashRef::Small(_) => "listpack",
            HashRef::Table(_) => "hashtable",
        }
    }

    /// An owned copy.
    pub fn to_hash(self) -> Hash {
        match self {
            HashRef::Small(b) => Hash::Small(b.into()),
            HashRef::Table(m) => Hash::Table(Box::new(m.clone())),
        }
    }
}

impl Hash {
    /// The hash, borrowed.
    pub fn view(&self) -> HashRef<'_> {
        match self {
            Hash::Small(b) => HashRef::Small(b),
            Hash::Table(m) => HashRef::Table(m),
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.view().len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.view().get(field)
    }

    /// Sets `field` to `value`; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Hash::Small(b) = self {
            if let Some(added) = packed_insert(b, field, value) {
                return added;
            }
            *self = Hash::Table(Box::new(packed_to_table(b)));
        }
        match self {
            Hash::Table(m) => m.insert(field.into(), value.into()).is_none(),
            Hash::Small(_) => unreachable!("converted above"),
        }
    }

    /// Sets every (field, value) pair in order, as repeated [`Hash::insert`]
    /// calls would, and returns how many fields were new. A small hash's
    /// buffer is sized for all the pairs once (they are walked twice), not
    /// reallocated pair by pair.
    pub fn extend<'a, I>(&mut self, pairs: I) -> usize
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
        I::IntoIter: Clone,
    {
        let mut pairs = pairs.into_iter();
        let mut added = 0;
        if let Hash::Small(b) = self {
            // Each item takes a length byte. Bounded by what a small hash can
            // hold: a larger HSET becomes a table and needs no such buffer.
            let wanted: usize = pairs.clone().map(|(f, v)| 2 + f.len() + v.len()).sum();
            let mut buf = Vec::with_capacity((b.len() + wanted).min(SMALL_BYTES_MAX));
            buf.extend_from_slice(b);
            let mut spill = None;
            for (f, v) in pairs.by_ref() {
                match packed_insert(&mut buf, f, v) {
                    Some(new) => added += new as usize,
                    None => {
                        spill = Some((f, v));
                        break;
                    }
                }
            }
            *self = match spill {
                None => Hash::Small(buf.into_boxed_slice()),
                Some((f, v)) => {
                    let mut m = packed_to_table(&buf);
                    added += m.insert(f.into(), v.into()).is_none() as usize;
                    Hash::Table(Box::new(m))
                }
            };
        }
        for (f, v) in pairs {
            added += self.insert(f, v) as usize;
        }
        added
    }

    /// Removes `field`; true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Small(b) => packed_remove(b, field),
            Hash::Table(m) => m.remove(field).is_some(),
        }
    }

    /// The fields and values, in storage order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        self.view().iter()
    }

    /// The field at position `i` of the storage order (for random picks).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.view().nth(i)
    }

    /// Bytes held on the heap by the fields and values and their container.
    pub fn heap_bytes(&self) -> usize {
        self.view().heap_bytes()
    }

    /// The encoding name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        self.view().encoding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hash_converts_past_thresholds_and_keeps_fields() {
        let mut h = Hash::default();
        for i in 0..SMALL_ENTRIES_MAX {
            assert!(h.insert(format!("f{i}").as_bytes(), b"v"));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(h.insert(b"one-more", b"v"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), SMALL_ENTRIES_MAX + 1);
        assert_eq!(h.get(b"f5"), Some(&b"v"[..]));

        let mut long = Hash::default();
        long.insert(b"f", &[b'x'; SMALL_VALUE_BYTES_MAX + 1]);
        assert_eq!(long.encoding(), "hashtable");
    }

    #[test]
    fn small_hash_keeps_insertion_order_through_updates_and_removals() {
        let mut h = Hash::default();
        for (f, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
            assert!(h.insert(f.as_bytes(), v.as_bytes()));
        }
        assert!(!h.insert(b"b", b"two"));
        assert!(h.remove(b"a"));
        let got: Vec<(Vec<u8>, Vec<u8>)> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(got, vec![(b"b".to_vec(), b"two".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        assert_eq!(h.len(), 2);
        assert_eq!(h.heap_bytes(), 1 + 1 + 1 + 3 + 1 + 1 + 1 + 1);
        // Empty fields and values are items too.
        assert!(h.insert(b"", b""));
        assert_eq!(h.get(b""), Some(&b""[..]));
        assert!(std::mem::size_of::<Hash>() <= 24);
    }

    #[test]
    fn extend_matches_one_insert_at_a_time() {
        let fields: Vec<Vec<u8>> = (0..200).map(|i| format!("f{}", i % 150).into_bytes()).collect();
        for n in [0, 1, 10, 128, 129, 200] {
            let pairs: Vec<(&[u8], &[u8])> = fields[..n].iter().map(|f| (&f[..], &f[1..])).collect();
            let (mut one, mut all) = (Hash::default(), Hash::default());
            let added: usize = pairs.iter().map(|(f, v)| one.insert(f, v) as usize).sum();
            assert_eq!(all.extend(pairs.iter().copied()), added);
            assert_eq!((all.encoding(), all.len()), (one.encoding(), one.len()));
            let order = |h: &Hash| h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect::<Vec<_>>();
            if one.encoding() == "listpack" {
                assert_eq!(order(&all), order(&one), "same fields in the same order");
            }
            assert_eq!(all, one);
        }
        let mut h = Hash::default();
        assert_eq!(h.extend([(&b"a"[..], &b"1"[..]), (b"a", b"2"), (b"long", &[b'x'; SMALL_VALUE_BYTES_MAX + 1])]), 2);
        assert_eq!((h.encoding(), h.get(b"a")), ("hashtable", Some(&b"2"[..])));
    }

    #[test]
    fn insert_update_remove() {
        let mut h = Hash::default();
        assert!(h.insert(b"a", b"1"));
        assert!(!h.insert(b"a", b"2"));
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert!(h.is_empty());
    }
}
