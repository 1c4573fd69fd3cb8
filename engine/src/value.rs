//! The value types a key can hold.

use crate::hash::Hash;
use crate::zset::ZSet;

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (also integers and floats, stored as their text).
    Str(Vec<u8>),
    /// A hash of fields to values (boxed, so a value is 32 bytes and an entry one cache line).
    Hash(Box<Hash>),
    /// A sorted set (boxed for the same reason).
    ZSet(Box<ZSet>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_stays_small() {
        assert!(std::mem::size_of::<Value>() <= 32);
    }
}
