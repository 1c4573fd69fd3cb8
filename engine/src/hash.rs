//! The hash value type: a compact vector of pairs while small (as Redis's
//! listpack encoding), a hash table once it passes the size thresholds.

use hashbrown::HashMap;

/// Past this many fields a small hash becomes a table (hash-max-listpack-entries).
pub const SMALL_ENTRIES_MAX: usize = 128;
/// Past this field or value length a small hash becomes a table (hash-max-listpack-value).
pub const SMALL_VALUE_BYTES_MAX: usize = 64;

/// One field and its value.
pub type Pair = (Box<[u8]>, Box<[u8]>);

/// A hash of fields to values.
#[derive(Debug, Clone)]
pub enum Hash {
    /// Few, short fields: pairs in insertion order, searched linearly.
    Small(Vec<Pair>),
    /// Many or long fields.
    Table(HashMap<Box<[u8]>, Box<[u8]>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Small(Vec::new())
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Small(v) => v.len(),
            Hash::Table(m) => m.len(),
        }
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Small(v) => v.iter().find(|(f, _)| **f == *field).map(|(_, v)| &**v),
            Hash::Table(m) => m.get(field).map(|v| &**v),
        }
    }

    /// Sets `field` to `value`; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Hash::Small(v) = self {
            if let Some(slot) = v.iter_mut().find(|(f, _)| **f == *field) {
                slot.1 = value.into();
                return false;
            }
            if v.len() < SMALL_ENTRIES_MAX
                && field.len() <= SMALL_VALUE_BYTES_MAX
                && value.len() <= SMALL_VALUE_BYTES_MAX
            {
                v.push((field.into(), value.into()));
                return true;
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
            Hash::Small(v) => match v.iter().position(|(f, _)| **f == *field) {
                Some(i) => {
                    // Keep insertion order, as a listpack does.
                    v.remove(i);
                    true
                }
                None => false,
            },
            Hash::Table(m) => m.remove(field).is_some(),
        }
    }

    fn convert_to_table(&mut self) {
        if let Hash::Small(v) = self {
            let m: HashMap<_, _> = std::mem::take(v).into_iter().collect();
            *self = Hash::Table(m);
        }
    }

    /// The fields and values, in storage order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Small(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            Hash::Table(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// The field at position `i` of the storage order (for random picks).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.iter().nth(i)
    }

    /// Bytes held on the heap by the fields and values and their container.
    pub fn heap_bytes(&self) -> usize {
        let pairs: usize = self.iter().map(|(f, v)| f.len() + v.len()).sum();
        match self {
            Hash::Small(v) => v.capacity() * std::mem::size_of::<Pair>() + pairs,
            Hash::Table(m) => m.capacity() * (std::mem::size_of::<Pair>() + 1) + pairs,
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
