//! The value types a key can hold: [`Value`] owned (what a command builds
//! and stores, what DUMP and RESTORE carry), [`ValueRef`] borrowed from the
//! entry that stores it (see [`crate::entry`] for how).

use crate::hash::{Hash, HashRef};
use crate::list::List;
use crate::set::Set;
use crate::zset::ZSet;

/// A key's value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (also integers and floats, stored as their text).
    Str(Vec<u8>),
    /// A hash of fields to values.
    Hash(Hash),
    /// A list of elements (boxed, so an entry's body holds one pointer).
    List(Box<List>),
    /// A set of members (boxed for the same reason).
    Set(Box<Set>),
    /// A sorted set (boxed for the same reason).
    ZSet(Box<ZSet>),
}

/// A key's value, borrowed from its entry (or from an owned [`Value`]).
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// A string.
    Str(&'a [u8]),
    /// A hash.
    Hash(HashRef<'a>),
    /// A list.
    List(&'a List),
    /// A set.
    Set(&'a Set),
    /// A sorted set.
    ZSet(&'a ZSet),
}

impl ValueRef<'_> {
    /// The encoding OBJECT ENCODING reports, named as Redis names its own.
    pub fn encoding(self) -> &'static str {
        match self {
            ValueRef::Str(s) if s.len() <= 20 && crate::num::parse_i64(s).is_some() => "int",
            ValueRef::Str(s) if s.len() <= 44 => "embstr",
            ValueRef::Str(_) => "raw",
            ValueRef::Hash(h) => h.encoding(),
            ValueRef::List(l) => l.encoding(),
            ValueRef::Set(s) => s.encoding(),
            ValueRef::ZSet(z) => z.encoding(),
        }
    }

    /// Bytes the value's contents and containers take (an estimate for MEMORY USAGE).
    pub fn heap_bytes(self) -> usize {
        match self {
            ValueRef::Str(s) => s.len(),
            ValueRef::Hash(h) => h.heap_bytes(),
            ValueRef::List(l) => std::mem::size_of::<List>() + l.heap_bytes(),
            ValueRef::Set(s) => std::mem::size_of::<Set>() + s.heap_bytes(),
            ValueRef::ZSet(z) => std::mem::size_of::<ZSet>() + z.heap_bytes(),
        }
    }

    /// The name TYPE reports.
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Str(_) => "string",
            ValueRef::Hash(_) => "hash",
            ValueRef::List(_) => "list",
            ValueRef::Set(_) => "set",
            ValueRef::ZSet(_) => "zset",
        }
    }

    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_vec()),
            ValueRef::Hash(h) => Value::Hash(h.to_hash()),
            ValueRef::List(l) => Value::List(Box::new(l.clone())),
            ValueRef::Set(s) => Value::Set(Box::new(s.clone())),
            ValueRef::ZSet(z) => Value::ZSet(Box::new(z.clone())),
        }
    }
}

impl Value {
    /// The value, borrowed.
    pub fn view(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Hash(h) => ValueRef::Hash(h.view()),
            Value::List(l) => ValueRef::List(l),
            Value::Set(s) => ValueRef::Set(s),
            Value::ZSet(z) => ValueRef::ZSet(z),
        }
    }

    /// The encoding OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        self.view().encoding()
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        self.view().type_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encodings_and_copies() {
        let cases: [(&[u8], &str); 4] =
            [(b"12345", "int"), (b"-1", "int"), (&[b'x'; 44], "embstr"), (&[b'x'; 45], "raw")];
        for (s, encoding) in cases {
            let v = Value::Str(s.to_vec());
            assert_eq!((v.encoding(), v.type_name()), (encoding, "string"));
            assert_eq!(v.view().to_value(), v);
        }
    }
}
