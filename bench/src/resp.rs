//! The RESP side of the load generator: commands encoded into a caller's
//! buffer, and an incremental reply parser that returns the reply and the
//! bytes it used, or `Incomplete` when the buffer ends inside a reply.
//!
//! Replies come from the server under test, so nothing here trusts them:
//! lengths are bounded, nesting is bounded, and malformed bytes are an error,
//! never a panic.

/// Most nesting of aggregate replies (arrays of arrays ...) the parser follows.
const DEPTH_MAX: usize = 32;
/// Largest bulk reply accepted.
pub const BULK_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Longest header line (type byte, number, CRLF) or simple string accepted.
const LINE_BYTES_MAX: usize = 64 * 1024;

/// One reply, borrowing from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`, RESP3 `,`/`#`/`(` scalars.
    Simple(&'a [u8]),
    /// `-ERR ...` or RESP3 `!` blob errors.
    Error(&'a [u8]),
    Integer(i64),
    /// `$n` bulk or RESP3 `=` verbatim strings.
    Bulk(&'a [u8]),
    /// `$-1`, `*-1` or RESP3 `_`.
    Nil,
    /// An array, set, map, push or attribute-prefixed reply, skipped whole.
    Aggregate,
}

/// The outcome of [`parse_reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A reply and the number of bytes it took.
    Complete(Reply<'a>, usize),
    /// The buffer ends inside a reply: read more and parse again from the start.
    Incomplete,
}

/// Bytes that are not a RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

/// Parses the first reply in `buf`.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed<'_>, ProtocolError> {
    match value(buf, 0, 0)? {
        Some((reply, end)) => Ok(Parsed::Complete(reply, end)),
        None => Ok(Parsed::Incomplete),
    }
}

/// The line starting at `at` (without CRLF) and the index after its CRLF.
fn line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[at..];
    let window = &rest[..rest.len().min(LINE_BYTES_MAX)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) if nl >= 1 && rest[nl - 1] == b'\r' => Ok(Some((&rest[..nl - 1], at + nl + 1))),
        Some(_) => Err(ProtocolError("line not ended by CRLF".into())),
        None if rest.len() >= LINE_BYTES_MAX => Err(ProtocolError("line too long".into())),
        None => Ok(None),
    }
}

fn number(digits: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ProtocolError(format!("bad number {:?}", String::from_utf8_lossy(digits))))
}

type Step<'a> = Result<Option<(Reply<'a>, usize)>, ProtocolError>;

fn value(buf: &[u8], at: usize, depth: usize) -> Step<'_> {
    if at >= buf.len() {
        return Ok(None);
    }
    if depth > DEPTH_MAX {
        return Err(ProtocolError("replies nested too deep".into()));
    }
    let Some((header, end)) = line(buf, at)? else {
        return Ok(None);
    };
    let body = &header[1..];
    match header[0] {
        b'+' | b',' | b'#' | b'(' => Ok(Some((Reply::Simple(body), end))),
        b'-' => Ok(Some((Reply::Error(body), end))),
        b':' => Ok(Some((Reply::Integer(number(body)?), end))),
        b'_' => Ok(Some((Reply::Nil, end))),
        kind @ (b'$' | b'=' | b'!') => {
            let n = number(body)?;
            if n == -1 && kind == b'$' {
                return Ok(Some((Reply::Nil, end)));
            }
            if n < 0 || n as u64 > BULK_BYTES_MAX as u64 {
                return Err(ProtocolError(format!("bad bulk length {n}")));
            }
            let total = end + n as usize + 2;
            if buf.len() < total {
                return Ok(None);
            }
            if &buf[total - 2..total] != b"\r\n" {
                return Err(ProtocolError("bulk not followed by CRLF".into()));
            }
            let data = &buf[end..total - 2];
            Ok(Some((if kind == b'!' { Reply::Error(data) } else { Reply::Bulk(data) }, total)))
        }
        kind @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let n = number(body)?;
            if n == -1 && kind == b'*' {
                return Ok(Some((Reply::Nil, end)));
            }
            // Each element takes at least 3 bytes, so a count beyond what a
            // bulk could hold is a lie, not a big reply.
            if n < 0 || n as u64 > BULK_BYTES_MAX as u64 {
                return Err(ProtocolError(format!("bad aggregate length {n}")));
            }
            let count = if matches!(kind, b'%' | b'|') { 2 * n as usize } else { n as usize };
            let mut pos = end;
            for _ in 0..count {
                match value(buf, pos, depth + 1)? {
                    Some((_, next)) => pos = next,
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // Attributes precede the reply they describe.
                return value(buf, pos, depth + 1);
            }
            Ok(Some((Reply::Aggregate, pos)))
        }
        other => Err(ProtocolError(format!("bad reply type byte {:?}", other as char))),
    }
}

/// Appends `*N\r\n` then each argument as a bulk string.
pub fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_bulk(out, arg);
    }
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends one bulk string.
pub fn push_bulk(out: &mut Vec<u8>, data: &[u8]) {
    push_header(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the bulk header for `len` bytes that the caller writes next,
/// followed by CRLF (for values generated in place).
pub fn push_bulk_header(out: &mut Vec<u8>, len: usize) {
    push_header(out, b'$', len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reply the generator can meet, with what it parses to.
    fn samples() -> Vec<(&'static [u8], Reply<'static>)> {
        vec![
            (b"+OK\r\n", Reply::Simple(b"OK")),
            (b"-ERR unknown command\r\n", Reply::Error(b"ERR unknown command")),
            (b":-42\r\n", Reply::Integer(-42)),
            (b"$5\r\nhello\r\n", Reply::Bulk(b"hello")),
            (b"$0\r\n\r\n", Reply::Bulk(b"")),
            (b"$6\r\na\r\nb\r\n\r\n", Reply::Bulk(b"a\r\nb\r\n")),
            (b"$-1\r\n", Reply::Nil),
            (b"*-1\r\n", Reply::Nil),
            (b"_\r\n", Reply::Nil),
            (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", Reply::Aggregate),
            (b"*0\r\n", Reply::Aggregate),
            (b"%1\r\n+k\r\n$1\r\nv\r\n", Reply::Aggregate),
            (b"|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n", Reply::Bulk(b"hi")),
            (b"=8\r\ntxt:abcd\r\n", Reply::Bulk(b"txt:abcd")),
            (b"!3\r\nERR\r\n", Reply::Error(b"ERR")),
            (b",1.5\r\n", Reply::Simple(b"1.5")),
        ]
    }

    #[test]
    fn parses_every_reply_kind() {
        for (bytes, want) in samples() {
            assert_eq!(
                parse_reply(bytes),
                Ok(Parsed::Complete(want, bytes.len())),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn incomplete_at_every_split() {
        // A stream of all samples, fed one byte more at a time: every prefix
        // that ends inside a reply is Incomplete, and the replies come out in
        // order with their exact lengths.
        let stream: Vec<u8> = samples().iter().flat_map(|(b, _)| b.iter().copied()).collect();
        let mut want = samples().into_iter();
        let mut start = 0;
        for end in 0..=stream.len() {
            loop {
                match parse_reply(&stream[start..end]).unwrap() {
                    Parsed::Incomplete => break,
                    Parsed::Complete(reply, used) => {
                        let (bytes, expected) = want.next().unwrap();
                        assert_eq!((reply, used), (expected, bytes.len()));
                        start += used;
                    }
                }
            }
        }
        assert_eq!(start, stream.len());
        assert!(want.next().is_none());
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b"?\r\n"[..],
            b"$x\r\n",
            b"$-2\r\n",
            b"$3\r\nabcde\r\n",
            b":12a\r\n",
            b"+OK\n",
            b"*-5\r\n",
            b"$99999999999999\r\n",
        ] {
            assert!(parse_reply(bad).is_err(), "{:?} should be refused", String::from_utf8_lossy(bad));
        }
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(b"*1\r\n");
        }
        deep.extend_from_slice(b":1\r\n");
        assert!(parse_reply(&deep).is_err());
        let long = vec![b'+'; LINE_BYTES_MAX + 1];
        assert!(parse_reply(&long).is_err());
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        push_command(&mut out, &[b"SET", b"key:1", b"abc"]);
        push_command(&mut out, &[b"GET", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nabc\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    }
}
