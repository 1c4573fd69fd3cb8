//! Content digests of values and of the whole dataset, for DEBUG DIGEST and
//! DEBUG DIGEST-VALUE: two nodes holding the same data give the same digest,
//! whatever their shard counts, insertion orders or internal encodings.
//!
//! ```text
//!   value digest  = H(type, element count, contents, expire)   DIGEST-VALUE
//!     string        the bytes
//!     list, zset    every element in order (zset: score bits, member)
//!     hash, set     the sum of H(field, value) / H(member): order-free
//!   key digest    = H(db, key, value digest)
//!   dataset       = sum of the key digests of every live key     DIGEST
//!                   (per shard, then over shards: the same sum)
//! ```
//!
//! `H` is 160 bits: XXH3-128 and the low 32 bits of XXH3-64 under another
//! seed, over the same length-prefixed bytes. Both are frozen, specified
//! algorithms, so builds and machines agree. Sums are lane-wise wrapping
//! additions, which unlike XOR never cancel two equal digests. The values
//! differ from Redis's own (SHA-1 over its internal representation); an
//! empty dataset or a missing key is 40 zeros, as in Redis.

use crate::db::UnixMs;
use crate::value::ValueRef;
use xxhash_rust::xxh3::{Xxh3, xxh3_64_with_seed, xxh3_128_with_seed};

/// Seed of the 128-bit lane.
const SEED_WIDE: u64 = 0x636f_7265_7368_6172; // "coreshar"
/// Seed of the 32-bit lane.
const SEED_NARROW: u64 = 0x6469_6765_7374_3136; // "digest16"

/// Hex digits of a digest as DEBUG DIGEST prints it.
pub const HEX_DIGITS: usize = 40;

/// A 160-bit digest; [`Digest::ZERO`] stands for nothing (an empty dataset,
/// a missing key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest {
    wide: u128,
    narrow: u32,
}

impl Digest {
    /// The digest of nothing.
    pub const ZERO: Digest = Digest { wide: 0, narrow: 0 };

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest { wide: xxh3_128_with_seed(bytes, SEED_WIDE), narrow: xxh3_64_with_seed(bytes, SEED_NARROW) as u32 }
    }

    /// The order-independent combination of two digests: lane-wise
    /// wrapping addition.
    #[inline]
    pub fn combine(self, other: Digest) -> Digest {
        Digest { wide: self.wide.wrapping_add(other.wide), narrow: self.narrow.wrapping_add(other.narrow) }
    }

    /// The 40 lower-case hex digits.
    pub fn hex(self) -> String {
        format!("{:032x}{:08x}", self.wide, self.narrow)
    }

    /// Reads 40 hex digits back; `None` for anything else.
    pub fn parse_hex(text: &[u8]) -> Option<Digest> {
        if text.len() != HEX_DIGITS || !text.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let wide = u128::from_str_radix(&text[..32], 16).ok()?;
        let narrow = u32::from_str_radix(&text[32..], 16).ok()?;
        Some(Digest { wide, narrow })
    }

    fn to_bytes(self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..16].copy_from_slice(&self.wide.to_le_bytes());
        b[16..].copy_from_slice(&self.narrow.to_le_bytes());
        b
    }
}

/// A digest computed over a stream of length-prefixed pieces.
struct Stream {
    wide: Xxh3,
    narrow: Xxh3,
}

impl Stream {
    fn new() -> Stream {
        Stream { wide: Xxh3::with_seed(SEED_WIDE), narrow: Xxh3::with_seed(SEED_NARROW) }
    }

    fn raw(&mut self, b: &[u8]) {
        self.wide.update(b);
        self.narrow.update(b);
    }

    fn u64(&mut self, n: u64) {
        self.raw(&n.to_le_bytes());
    }

    /// A byte string, prefixed with its length so that pieces cannot run
    /// into each other ("ab","c" differs from "a","bc").
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.raw(b);
    }

    fn digest(&mut self, d: Digest) {
        self.raw(&d.to_bytes());
    }

    fn finish(&self) -> Digest {
        Digest { wide: self.wide.digest128(), narrow: self.narrow.digest() as u32 }
    }
}

/// Type tags, so that a set {a} and a list [a] differ.
const TAG_STRING: u64 = 1;
const TAG_LIST: u64 = 2;
const TAG_SET: u64 = 3;
const TAG_ZSET: u64 = 4;
const TAG_HASH: u64 = 5;

/// The digest of one hash field and its value.
fn field_digest(field: &[u8], value: &[u8]) -> Digest {
    let mut s = Stream::new();
    s.bytes(field);
    s.bytes(value);
    s.finish()
}

/// The digest of a value with its expiry (`NO_EXPIRE` when it has none):
/// what DEBUG DIGEST-VALUE reports. The key's name is not part of it, as in
/// Redis, so a COPY has the digest of its source.
///
/// The exact expire time is included, not only whether there is one: a
/// replica receives absolute expire times, so equal datasets agree on them.
pub fn value_digest(value: ValueRef, expire_at: UnixMs) -> Digest {
    let mut s = Stream::new();
    match value {
        ValueRef::Str(b) => {
            s.u64(TAG_STRING);
            s.bytes(b);
        }
        ValueRef::List(l) => {
            s.u64(TAG_LIST);
            s.u64(l.len() as u64);
            for item in l.iter() {
                s.bytes(item);
            }
        }
        ValueRef::ZSet(z) => {
            // Rank order is defined by the contents (score, then member).
            s.u64(TAG_ZSET);
            s.u64(z.len() as u64);
            for (score, member) in z.iter_from(0, false) {
                s.u64(score.to_bits());
                s.bytes(member);
            }
        }
        ValueRef::Hash(h) => {
            s.u64(TAG_HASH);
            s.u64(h.len() as u64);
            s.digest(h.iter().fold(Digest::ZERO, |sum, (f, v)| sum.combine(field_digest(f, v))));
        }
        ValueRef::Set(set) => {
            // An intset member is hashed as its decimal text, as it reads.
            s.u64(TAG_SET);
            s.u64(set.len() as u64);
            s.digest(set.iter().fold(Digest::ZERO, |sum, m| sum.combine(m.with_bytes(Digest::of))));
        }
    }
    s.u64(expire_at);
    s.finish()
}

/// The digest of one key of database `db`: its name, its database and its
/// value digest. DEBUG DIGEST adds these up over every live key.
pub fn key_digest(db: usize, key: &[u8], value: Digest) -> Digest {
    let mut s = Stream::new();
    s.u64(db as u64);
    s.bytes(key);
    s.digest(value);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NO_EXPIRE;
    use crate::hash::Hash;
    use crate::list::{End, List};
    use crate::set::Set;
    use crate::value::Value;
    use crate::zset::ZSet;

    fn digest(v: &Value) -> Digest {
        value_digest(v.view(), NO_EXPIRE)
    }

    #[test]
    fn hex_round_trips_and_zero_is_forty_zeros() {
        assert_eq!(Digest::ZERO.hex(), "0".repeat(40));
        let d = Digest::of(b"x");
        assert_eq!(d.hex().len(), HEX_DIGITS);
        assert_eq!(Digest::parse_hex(d.hex().as_bytes()), Some(d));
        assert_eq!(Digest::parse_hex(b"+0000000000000000000000000000000000000000"), None);
        assert_eq!(Digest::parse_hex(b"zz00000000000000000000000000000000000000"), None);
        assert_eq!(Digest::parse_hex(b"00"), None);
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        assert_eq!(a.combine(b).combine(c), c.combine(a).combine(b));
        assert_ne!(a.combine(a), Digest::ZERO, "equal digests must not cancel");
    }

    #[test]
    fn hash_digest_ignores_encoding_and_field_order() {
        let mut small = Hash::default();
        small.insert(b"f1", b"v1");
        small.insert(b"f2", b"v2");
        let mut reordered = Hash::default();
        reordered.insert(b"f2", b"v2");
        reordered.insert(b"f1", b"v1");
        // A table shrunk back to the same two fields keeps its table encoding.
        let mut table = Hash::default();
        for i in 0..300 {
            table.insert(format!("x{i}").as_bytes(), b"v");
        }
        table.insert(b"f1", b"v1");
        table.insert(b"f2", b"v2");
        for i in 0..300 {
            table.remove(format!("x{i}").as_bytes());
        }
        assert_ne!(small.encoding(), table.encoding());
        let d = digest(&Value::Hash(small));
        assert_eq!(d, digest(&Value::Hash(reordered)));
        assert_eq!(d, digest(&Value::Hash(table)));
        let mut swapped = Hash::default();
        swapped.insert(b"f1", b"v2");
        swapped.insert(b"f2", b"v1");
        assert_ne!(d, digest(&Value::Hash(swapped)), "values belong to their fields");
    }

    #[test]
    fn set_digest_ignores_encoding() {
        let mut ints = Set::default();
        for m in [&b"3"[..], b"1", b"2"] {
            ints.insert(m);
        }
        let mut small = Set::default();
        for m in [&b"1"[..], b"2", b"3", b"x"] {
            small.insert(m);
        }
        small.remove(b"x");
        let mut table = Set::default();
        for i in 0..1000 {
            table.insert(format!("m{i}").as_bytes());
        }
        for m in [&b"2"[..], b"3", b"1"] {
            table.insert(m);
        }
        for i in 0..1000 {
            table.remove(format!("m{i}").as_bytes());
        }
        let encodings = [ints.encoding(), small.encoding(), table.encoding()];
        assert_eq!(encodings, ["intset", "listpack", "hashtable"]);
        let d = digest(&Value::Set(Box::new(ints)));
        assert_eq!(d, digest(&Value::Set(Box::new(small))));
        assert_eq!(d, digest(&Value::Set(Box::new(table))));
    }

    #[test]
    fn zset_digest_ignores_encoding() {
        let mut small = ZSet::default();
        small.insert(b"b", 2.0);
        small.insert(b"a", 1.0);
        let mut big = ZSet::default();
        for i in 0..500 {
            big.insert(format!("m{i}").as_bytes(), i as f64);
        }
        big.insert(b"a", 1.0);
        big.insert(b"b", 2.0);
        for i in 0..500 {
            big.remove(format!("m{i}").as_bytes());
        }
        assert_ne!(small.encoding(), big.encoding());
        let d = digest(&Value::ZSet(Box::new(small)));
        assert_eq!(d, digest(&Value::ZSet(Box::new(big))));
        let mut rescored = ZSet::default();
        rescored.insert(b"a", 2.0);
        rescored.insert(b"b", 1.0);
        assert_ne!(d, digest(&Value::ZSet(Box::new(rescored))));
    }

    #[test]
    fn order_type_expiry_and_place_change_digests() {
        let list = |items: &[&[u8]]| {
            let mut l = List::default();
            for i in items {
                l.push(End::Right, i);
            }
            Value::List(Box::new(l))
        };
        let ab = digest(&list(&[b"a", b"b"]));
        assert_ne!(ab, digest(&list(&[b"b", b"a"])), "lists are ordered");
        assert_ne!(digest(&list(&[b"ab"])), digest(&list(&[b"a", b"b"])));
        let mut set = Set::default();
        set.insert(b"a");
        assert_ne!(digest(&list(&[b"a"])), digest(&Value::Set(Box::new(set))), "types differ");
        let s = Value::Str(b"v".to_vec());
        assert_ne!(digest(&s), value_digest(s.view(), 1_700_000_000_000));
        assert_ne!(value_digest(s.view(), 1_700_000_000_000), value_digest(s.view(), 1_700_000_000_001));
        let v = digest(&s);
        assert_ne!(key_digest(0, b"k", v), key_digest(1, b"k", v));
        assert_ne!(key_digest(0, b"k", v), key_digest(0, b"j", v));
    }
}
