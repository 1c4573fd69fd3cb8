//! The hash value type: a compact vector of pairs while small (as Redis's
//! listpack encoding), a hash table once it passes the size thresholds.

use hashbrown::HashMap;

/// Past this many fields a small hash becomes a table (hash-max-listpack-entries).
pub const SMALL_ENTRIES_MAX: usize = 128;
/// Past this field or value length a small hash becomes a table (hash-max-listpack-value).
pub const SMALL_VALUE_BYTES_MAX: usize = 64;

/// The table encoding: fields to values.
pub type Table = HashMap<Box<[u8]>, Box<[u8]>>;

/// A hash of fields to values.
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

/// Appends one length-prefixed item (at most SMALL_VALUE_BYTES_MAX bytes).
fn pack(out: &mut Vec<u8>, item: &[u8]) {
    debug_assert!(item.len() <= SMALL_VALUE_BYTES_MAX);
    out.push(item.len() as u8);
    out.extend_from_slice(item);
}

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Small(b) => packed_pairs(b).count(),
            Hash::Table(m) => m.len(),
        }
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        match self {
            Hash::Small(b) => b.is_empty(),
            Hash::Table(m) => m.is_empty(),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Small(b) => packed_pairs(b).find(|(f, _, _)| *f == field).map(|(_, v, _)| v),
            Hash::Table(m) => m.get(field).map(|v| &**v),
        }
    }

    /// Sets `field` to `value`; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Hash::Small(b) = self {
            let fits = field.len() <= SMALL_VALUE_BYTES_MAX && value.len() <= SMALL_VALUE_BYTES_MAX;
            let existing = packed_pairs(b).find(|(f, _, _)| *f == field).map(|(_, _, r)| r);
            let count = if existing.is_some() { 0 } else { packed_pairs(b).count() };
            if fits && (existing.is_some() || count < SMALL_ENTRIES_MAX) {
                let mut out = Vec::with_capacity(b.len() + 2 + field.len() + value.len());
                match &existing {
                    Some(r) => {
                        // Replace in place of the old pair, keeping the order.
                        out.extend_from_slice(&b[..r.start]);
                        pack(&mut out, field);
                        pack(&mut out, value);
                        out.extend_from_slice(&b[r.end..]);
                    }
                    None => {
                        out.extend_from_slice(b);
                        pack(&mut out, field);
                        pack(&mut out, value);
                    }
                }
                *b = out.into_boxed_slice();
                return existing.is_none();
            }
            self.convert_to_table();
        }
        match self {
            Hash::Table(m) => m.insert(field.into(), value.into()).is_none(),
            Hash::Small(_) => unreachable!("converted above"),
        }
    }

    /// Removes `field`; true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Small(b) => {
                let found = packed_pairs(b).find(|(f, _, _)| *f == field).map(|(_, _, r)| r);
                match found {
                    Some(r) => {
                        let mut out = Vec::with_capacity(b.len() - r.len());
                        out.extend_from_slice(&b[..r.start]);
                        out.extend_from_slice(&b[r.end..]);
                        *b = out.into_boxed_slice();
                        true
                    }
                    None => false,
                }
            }
            Hash::Table(m) => m.remove(field).is_some(),
        }
    }

    fn convert_to_table(&mut self) {
        if let Hash::Small(b) = self {
            let m: Table = packed_pairs(b).map(|(f, v, _)| (f.into(), v.into())).collect();
            *self = Hash::Table(Box::new(m));
        }
    }

    /// The fields and values, in storage order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Small(b) => Box::new(packed_pairs(b).map(|(f, v, _)| (f, v))),
            Hash::Table(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// The field at position `i` of the storage order (for random picks).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.iter().nth(i)
    }

    /// Bytes held on the heap by the fields and values and their container.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Hash::Small(b) => b.len(),
            Hash::Table(m) => {
                let pairs: usize = m.iter().map(|(f, v)| f.len() + v.len()).sum();
                std::mem::size_of::<Table>() + m.capacity() * (32 + 1) + pairs
            }
        }
    }

    /// The encoding name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Small(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
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
