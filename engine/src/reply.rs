//! RESP2/RESP3 reply encoding into a caller's buffer.
//!
//! Commands write their replies through [`Reply`], which knows the
//! connection's protocol version, so one handler serves both: a map is a
//! `%` map in RESP3 and a flat array in RESP2, a null is `_` or `$-1`.

use crate::num;

/// The protocol a connection speaks (HELLO 2 / HELLO 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3, chosen with HELLO 3.
    Resp3,
}

/// The error every type check gives.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// The error for a syntax error in options.
pub const SYNTAX: &str = "ERR syntax error";
/// The error for an argument that must be an integer.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// The error for an argument that must be a float.
pub const NOT_FLOAT: &str = "ERR value is not a valid float";

/// A reply writer over a caller's buffer.
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    proto: Proto,
}

impl<'a> Reply<'a> {
    /// A writer that appends to `out` in `proto`.
    pub fn new(out: &'a mut Vec<u8>, proto: Proto) -> Self {
        Reply { out, proto }
    }

    /// The protocol being written.
    #[inline]
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The bytes written so far (the whole buffer, including earlier replies).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    #[inline]
    fn line(&mut self, prefix: u8, n: i64) {
        self.out.push(prefix);
        num::write_i64(n, self.out);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `+OK`.
    #[inline]
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string, `+text`. `text` must not contain CR or LF.
    #[inline]
    pub fn simple(&mut self, text: &str) {
        debug_assert!(!text.contains(['\r', '\n']));
        self.out.push(b'+');
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error, `-text`. The text starts with its code (`ERR`, `WRONGTYPE`, ...).
    /// Newlines in it are replaced by spaces, as Redis does, so a reply stays one line.
    pub fn error(&mut self, text: &str) {
        self.out.push(b'-');
        self.out.extend(text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error from raw bytes (which may not be UTF-8, as Redis echoes client bytes).
    pub fn error_bytes(&mut self, text: &[u8]) {
        self.out.push(b'-');
        self.out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        self.out.extend_from_slice(b"\r\n");
    }

    /// `ERR wrong number of arguments for '<name>' command`.
    pub fn arity_error(&mut self, name: &str) {
        self.error(&format!("ERR wrong number of arguments for '{name}' command"));
    }

    /// An integer, `:n`.
    #[inline]
    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    /// A bulk string, `$len\r\nbytes\r\n`.
    #[inline]
    pub fn bulk(&mut self, bytes: &[u8]) {
        self.line(b'$', bytes.len() as i64);
        self.out.extend_from_slice(bytes);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string, as Redis replies to INCRBYFLOAT-style reads.
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// A missing value: `_` in RESP3, `$-1` in RESP2.
    #[inline]
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp3 => self.out.extend_from_slice(b"_\r\n"),
            Proto::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
        }
    }

    /// A missing array: `_` in RESP3, `*-1` in RESP2.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp3 => self.out.extend_from_slice(b"_\r\n"),
            Proto::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
        }
    }

    /// An optional bulk string.
    #[inline]
    pub fn bulk_or_null(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    /// The header of an array of `n` elements.
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }

    /// The header of a map of `n` pairs: `%n` in RESP3, `*2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp3 => self.line(b'%', n as i64),
            Proto::Resp2 => self.line(b'*', 2 * n as i64),
        }
    }

    /// The header of a push message of `n` elements: `>n` in RESP3, `*n` in RESP2.
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp3 => self.line(b'>', n as i64),
            Proto::Resp2 => self.line(b'*', n as i64),
        }
    }

    /// The header of a set of `n` elements: `~n` in RESP3, `*n` in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp3 => self.line(b'~', n as i64),
            Proto::Resp2 => self.line(b'*', n as i64),
        }
    }

    /// A double: `,x` in RESP3, a bulk string in RESP2, printed as Redis does.
    pub fn double(&mut self, v: f64) {
        // Whole scores are the common case; they are written as integers.
        if let Some(n) = num::resp_integer(v) {
            let mut text = itoa::Buffer::new();
            let text = text.format(n).as_bytes();
            return match self.proto {
                Proto::Resp3 => {
                    self.out.push(b',');
                    self.out.extend_from_slice(text);
                    self.out.extend_from_slice(b"\r\n");
                }
                Proto::Resp2 => self.bulk(text),
            };
        }
        match self.proto {
            Proto::Resp3 => {
                self.out.push(b',');
                num::format_f64_resp(v, self.out);
            }
            Proto::Resp2 => {
                // The text goes straight into the buffer (no allocation per
                // score, which ZRANGE WITHSCORES writes by the thousand), and
                // its `$len` header is moved in front of it afterwards.
                let start = self.out.len();
                num::format_f64_resp(v, self.out);
                let len = self.out.len() - start;
                self.line(b'$', len as i64);
                let header = self.out.len() - start - len;
                self.out[start..].rotate_right(header);
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, v: bool) {
        match self.proto {
            Proto::Resp3 => self.out.extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" }),
            Proto::Resp2 => self.int(v as i64),
        }
    }

    /// A verbatim string (`=len\r\ntxt:...` in RESP3, a bulk in RESP2), as INFO and CLIENT LIST reply.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Proto::Resp3 => {
                self.line(b'=', text.len() as i64 + 4);
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
            Proto::Resp2 => self.bulk(text),
        }
    }

    /// Bytes that are already a complete RESP reply.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut Reply)) -> (String, String) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        f(&mut Reply::new(&mut a, Proto::Resp2));
        f(&mut Reply::new(&mut b, Proto::Resp3));
        (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
    }

    #[test]
    fn encodes_each_type_in_both_protocols() {
        assert_eq!(both(|r| r.ok()), ("+OK\r\n".into(), "+OK\r\n".into()));
        assert_eq!(both(|r| r.int(-42)).0, ":-42\r\n");
        assert_eq!(both(|r| r.bulk(b"hi")).0, "$2\r\nhi\r\n");
        assert_eq!(both(|r| r.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|r| r.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(both(|r| r.double(1.5)), ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into()));
        assert_eq!(both(|r| r.boolean(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(|r| r.verbatim(b"a")), ("$1\r\na\r\n".into(), "=5\r\ntxt:a\r\n".into()));
        assert_eq!(both(|r| r.error("ERR a\r\nb")).0, "-ERR a  b\r\n");
    }

    #[test]
    fn doubles_follow_earlier_replies_in_the_buffer() {
        let whole = [0.0, 3.0, -7.0, 4_611_686_018_427_387_904.0, 4_611_686_018_427_387_904.0 * 2.0, 1e20];
        let other = [-0.0, -1.5e-7, 1.0 / 3.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300, 123_456_789_012.25];
        for v in whole.into_iter().chain(other) {
            let mut text = Vec::new();
            num::format_f64_resp(v, &mut text);
            let text = String::from_utf8(text).unwrap();
            let (resp2, resp3) = both(|r| {
                r.int(1);
                r.double(v);
                r.bulk(b"x");
            });
            assert_eq!(resp2, format!(":1\r\n${}\r\n{text}\r\n$1\r\nx\r\n", text.len()));
            assert_eq!(resp3, format!(":1\r\n,{text}\r\n$1\r\nx\r\n"));
        }
    }
}
