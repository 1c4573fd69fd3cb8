//! The serialized form of a value, for DUMP and RESTORE: a type byte, the
//! value's contents, a format version and a CRC-64 (Redis's variant, as
//! Redis's own DUMP trailer), so a corrupted or foreign payload is refused
//! rather than misread. Replication snapshots are meant to reuse it.
//!
//! ```text
//!   type:u8 | contents | version:u16 LE | crc64:u64 LE (of everything before)
//!   string:  len bytes                  (len: LEB128 varint)
//!   hash:    count (field value)*       list: count item*    set: count member*
//!   zset:    count (member score:f64 LE)*
//! ```

use crate::hash::Hash;
use crate::list::{End, List};
use crate::set::Set;
use crate::value::{Value, ValueRef};
use crate::zset::ZSet;

/// The payload format this build writes and reads.
pub const DUMP_VERSION: u16 = 1;

/// Slice-by-16 tables (32 KiB): a snapshot checksums every key's payload,
/// and this is several times faster than one table on short payloads.
static CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

const TYPE_STRING: u8 = 0;
const TYPE_HASH: u8 = 1;
const TYPE_LIST: u8 = 2;
const TYPE_SET: u8 = 3;
const TYPE_ZSET: u8 = 4;

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// The DUMP payload of `value`.
pub fn dump(value: ValueRef) -> Vec<u8> {
    let mut out = Vec::new();
    dump_into(value, &mut out);
    out
}

/// Appends the DUMP payload of `value` to `out` (snapshots build one per
/// key into a reused buffer).
pub fn dump_into(value: ValueRef, out: &mut Vec<u8>) {
    let start = out.len();
    match value {
        ValueRef::Str(s) => {
            out.push(TYPE_STRING);
            put_bytes(out, s);
        }
        ValueRef::Hash(h) => {
            out.push(TYPE_HASH);
            put_len(out, h.len());
            for (f, v) in h.iter() {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        ValueRef::List(l) => {
            out.push(TYPE_LIST);
            put_len(out, l.len());
            for item in l.iter() {
                put_bytes(out, item);
            }
        }
        ValueRef::Set(s) => {
            out.push(TYPE_SET);
            put_len(out, s.len());
            for m in s.iter() {
                m.with_bytes(|b| put_bytes(out, b));
            }
        }
        ValueRef::ZSet(z) => {
            out.push(TYPE_ZSET);
            put_len(out, z.len());
            for (score, member) in z.iter_from(0, false) {
                put_bytes(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Reads a payload front to back; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn len(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= ((b & 0x7f) as usize).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        let b = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }

    fn f64(&mut self) -> Option<f64> {
        let b = self.buf.get(self.at..self.at + 8)?;
        self.at += 8;
        Some(f64::from_le_bytes(b.try_into().ok()?))
    }
}

/// What a DUMP payload holds, with a string's bytes borrowed from the
/// payload rather than copied (RESTORE stores them straight into the entry).
#[derive(Debug, PartialEq)]
pub enum Restored<'a> {
    /// A string's bytes.
    Str(&'a [u8]),
    /// Any other value.
    Value(Value),
}

/// The value a DUMP payload holds; `None` when the version, the checksum or
/// the contents are wrong (RESTORE then answers "DUMP payload version or
/// checksum are wrong", as Redis does).
pub fn restore(payload: &[u8]) -> Option<Value> {
    Some(match restore_ref(payload)? {
        Restored::Str(b) => Value::Str(b.to_vec()),
        Restored::Value(v) => v,
    })
}

/// As [`restore`], with a string left in the payload: a replica's full sync
/// restores a million of them, and the copy into a `Vec` cost an allocation
/// and a free each. The checks are the same.
pub fn restore_ref(payload: &[u8]) -> Option<Restored<'_>> {
    let body_len = payload.len().checked_sub(10)?;
    let (body, trailer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([trailer[0], trailer[1]]);
    let crc = u64::from_le_bytes(trailer[2..10].try_into().ok()?);
    if version != DUMP_VERSION || CRC64.checksum(&payload[..body_len + 2]) != crc {
        return None;
    }
    let mut r = Reader { buf: body, at: 0 };
    let value = match r.byte()? {
        TYPE_STRING => {
            let b = r.bytes()?;
            // Trailing bytes mean a payload this reader does not understand.
            return (r.at == body.len()).then_some(Restored::Str(b));
        }
        TYPE_HASH => {
            let mut h = Hash::default();
            for _ in 0..r.len()? {
                let (f, v) = (r.bytes()?, r.bytes()?);
                h.insert(f, v);
            }
            Value::Hash(h)
        }
        TYPE_LIST => {
            let mut l = List::default();
            for _ in 0..r.len()? {
                l.push(End::Right, r.bytes()?);
            }
            Value::List(Box::new(l))
        }
        TYPE_SET => {
            let mut s = Set::default();
            for _ in 0..r.len()? {
                s.insert(r.bytes()?);
            }
            Value::Set(Box::new(s))
        }
        TYPE_ZSET => {
            let mut z = ZSet::default();
            for _ in 0..r.len()? {
                let member = r.bytes()?;
                let score = r.f64()?;
                if score.is_nan() {
                    return None;
                }
                z.insert(member, score);
            }
            Value::ZSet(Box::new(z))
        }
        _ => return None,
    };
    (r.at == body.len()).then_some(Restored::Value(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Value> {
        let mut h = Hash::default();
        h.insert(b"f", b"v");
        h.insert(b"", b"empty field");
        let mut l = List::default();
        for i in 0..300u32 {
            l.push(End::Right, &i.to_le_bytes());
        }
        let mut s = Set::default();
        s.insert(b"12");
        s.insert(b"member");
        let mut z = ZSet::default();
        z.insert(b"a", 1.5);
        z.insert(b"b", f64::NEG_INFINITY);
        vec![
            Value::Str(Vec::new()),
            Value::Str(vec![0xff; 1000]),
            Value::Hash(h),
            Value::List(Box::new(l)),
            Value::Set(Box::new(s)),
            Value::ZSet(Box::new(z)),
        ]
    }

    #[test]
    fn every_type_round_trips() {
        for v in samples() {
            let payload = dump(v.view());
            assert_eq!(restore(&payload).as_ref(), Some(&v), "{v:?}");
        }
    }

    #[test]
    fn a_string_is_read_in_place() {
        let payload = dump(ValueRef::Str(b"value"));
        assert_eq!(restore_ref(&payload), Some(Restored::Str(&b"value"[..])));
        let mut bad = payload.clone();
        bad[2] ^= 0x01;
        assert_eq!(restore_ref(&bad), None);
    }

    #[test]
    fn any_corruption_is_refused() {
        for v in samples() {
            let payload = dump(v.view());
            for i in 0..payload.len() {
                let mut bad = payload.clone();
                bad[i] ^= 0x01;
                assert!(restore(&bad).is_none(), "flipped byte {i} of {v:?} accepted");
            }
            for cut in 0..payload.len() {
                assert!(restore(&payload[..cut]).is_none());
            }
        }
        assert!(restore(b"").is_none());
        assert!(restore(b"\x00\x03bar\x0a\x00garbage!").is_none());
    }
}
