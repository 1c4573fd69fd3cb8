//! The value types a key can hold.

use crate::hash::Hash;
use crate::list::List;
use crate::set::Set;
use crate::zset::ZSet;

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (also integers and floats, stored as their text).
    Str(Vec<u8>),
    /// A hash of fields to values (boxed, so a value is 32 bytes and an entry one cache line).
    Hash(Hash),
    /// A list of elements (boxed for the same reason).
    List(Box<List>),
    /// A set of members (boxed for the same reason).
    Set(Box<Set>),
    /// A sorted set (boxed for the same reason).
    ZSet(Box<ZSet>),
}

impl Value {
    /// The encoding OBJECT ENCODING reports, named as Redis names its own.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) if s.len() <= 20 && crate::num::parse_i64(s).is_some() => "int",
            Value::Str(s) if s.len() <= 44 => "embstr",
            Value::Str(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }

    /// Bytes the value holds on the heap, beyond the entry (an estimate for MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.capacity(),
            Value::Hash(h) => h.heap_bytes(),
            Value::List(l) => std::mem::size_of::<crate::list::List>() + l.heap_bytes(),
            Value::Set(s) => std::mem::size_of::<crate::set::Set>() + s.heap_bytes(),
            Value::ZSet(z) => std::mem::size_of::<crate::zset::ZSet>() + z.heap_bytes(),
        }
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_stays_small() {
        // An entry is sized to one cache line; a value must not grow it.
        assert!(std::mem::size_of::<Value>() <= 32);
    }
}
