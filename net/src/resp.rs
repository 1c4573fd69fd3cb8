//! The incremental RESP request parser: multibulk (`*2\r\n$3\r\nGET\r\n...`)
//! and inline (`GET key\r\n`) commands, with Redis's limits and error texts.
//!
//! The parser never copies a bulk: it records each argument's span in the
//! connection's read buffer. It is resumable: when a frame is incomplete it
//! remembers how far it got, so a large frame arriving in many reads is not
//! re-scanned from its start, and it reports how many bytes the frame needs
//! so the caller can size the buffer once and receive the bulk in place.

use coreshard_engine::Span;

/// Longest inline command, and longest `*`/`$` header line (PROTO_INLINE_MAX_SIZE).
pub const INLINE_BYTES_MAX: usize = 64 * 1024;
/// Arguments allowed before AUTH in one multibulk.
pub const UNAUTH_MULTIBULK_MAX: i64 = 10;
/// Bulk length allowed before AUTH.
pub const UNAUTH_BULK_BYTES_MAX: i64 = 16 * 1024;

/// Limits the parser enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// proto-max-bulk-len.
    pub bulk_bytes_max: usize,
    /// False until the connection authenticated, when a password is set.
    pub authenticated: bool,
}

/// A protocol error: Redis replies `-ERR Protocol error: ...` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(msg: impl Into<String>) -> Self {
        ProtocolError(msg.into())
    }
}

/// What the parser found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A command of `len` bytes; its arguments are in [`RequestParser::spans`].
    /// An empty command (a blank line, `*0`) has no spans and is skipped.
    Command {
        /// Bytes the frame took.
        len: usize,
    },
    /// More bytes are needed; at least `need` in all, counted from the frame start.
    Incomplete {
        /// Total bytes the frame needs, as far as is known.
        need: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing parsed of this frame yet.
    Start,
    /// A multibulk header was read; `left` arguments remain, parsing resumes at `pos`.
    Multibulk { left: usize, pos: usize },
}

/// A resumable parser for one connection.
#[derive(Debug)]
pub struct RequestParser {
    spans: Vec<Span>,
    state: State,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

/// Finds `\r` in `buf[from..]`, returning its index.
#[inline]
fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..].iter().position(|&b| b == b'\r').map(|i| from + i)
}

/// Parses a header number the way Redis's string2ll does.
#[inline]
fn header_number(bytes: &[u8]) -> Option<i64> {
    coreshard_engine::num::parse_i64(bytes)
}

impl RequestParser {
    /// A parser at the start of a frame.
    pub fn new() -> Self {
        RequestParser { spans: Vec::with_capacity(8), state: State::Start }
    }

    /// The arguments of the last command returned, as spans of the buffer
    /// passed to [`parse`](Self::parse).
    #[inline]
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// True when part of a frame has been parsed.
    pub fn in_frame(&self) -> bool {
        self.state != State::Start
    }

    /// Parses the frame at the start of `buf`. After `Incomplete`, call again
    /// with a buffer that starts at the same frame and holds more bytes. After
    /// `Command`, the next call starts a new frame (pass the bytes after it).
    /// Inline commands are unescaped in place, hence `&mut`.
    pub fn parse(&mut self, buf: &mut [u8], limits: &Limits) -> Result<Step, ProtocolError> {
        if self.state == State::Start {
            self.spans.clear();
            match buf.first() {
                None => return Ok(Step::Incomplete { need: 1 }),
                Some(b'*') => {}
                Some(_) => return self.parse_inline(buf),
            }
            let Some(cr) = find_cr(buf, 1) else {
                if buf.len() > INLINE_BYTES_MAX {
                    return Err(ProtocolError::new("too big mbulk count string"));
                }
                return Ok(Step::Incomplete { need: buf.len() + 1 });
            };
            if cr > INLINE_BYTES_MAX {
                return Err(ProtocolError::new("too big mbulk count string"));
            }
            if cr + 1 >= buf.len() {
                return Ok(Step::Incomplete { need: cr + 2 });
            }
            let count = match header_number(&buf[1..cr]) {
                Some(n) if n <= i32::MAX as i64 => n,
                _ => return Err(ProtocolError::new("invalid multibulk length")),
            };
            if count > UNAUTH_MULTIBULK_MAX && !limits.authenticated {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            if count <= 0 {
                return Ok(Step::Command { len: cr + 2 });
            }
            // Reserve for a plausible number of spans only: the count is the client's word.
            self.spans.reserve((count as usize).min(1024));
            self.state = State::Multibulk { left: count as usize, pos: cr + 2 };
        }
        let State::Multibulk { mut left, mut pos } = self.state else { unreachable!("set above") };
        while left > 0 {
            let Some(&first) = buf.get(pos) else {
                self.state = State::Multibulk { left, pos };
                return Ok(Step::Incomplete { need: pos + 1 });
            };
            if first != b'$' {
                self.reset();
                return Err(ProtocolError::new(format!("expected '$', got '{}'", first as char)));
            }
            let Some(cr) = find_cr(buf, pos + 1) else {
                if buf.len() - pos > INLINE_BYTES_MAX {
                    self.reset();
                    return Err(ProtocolError::new("too big bulk count string"));
                }
                self.state = State::Multibulk { left, pos };
                return Ok(Step::Incomplete { need: buf.len() + 1 });
            };
            if cr - pos > INLINE_BYTES_MAX {
                self.reset();
                return Err(ProtocolError::new("too big bulk count string"));
            }
            let len = match header_number(&buf[pos + 1..cr]) {
                Some(n) if n >= 0 && n as u64 <= limits.bulk_bytes_max as u64 => n,
                _ => {
                    self.reset();
                    return Err(ProtocolError::new("invalid bulk length"));
                }
            };
            if len > UNAUTH_BULK_BYTES_MAX && !limits.authenticated {
                self.reset();
                return Err(ProtocolError::new("unauthenticated bulk length"));
            }
            let start = cr + 2;
            let end = start + len as usize;
            // As Redis, the two bytes after the bulk are skipped unchecked.
            if end + 2 > buf.len() {
                self.state = State::Multibulk { left, pos };
                return Ok(Step::Incomplete { need: end + 2 });
            }
            self.spans.push(start..end);
            pos = end + 2;
            left -= 1;
        }
        self.state = State::Start;
        Ok(Step::Command { len: pos })
    }

    fn reset(&mut self) {
        self.state = State::Start;
        self.spans.clear();
    }

    /// An inline command: one line split into arguments as Redis's
    /// sdssplitargs does (quotes, escapes), unescaped in place.
    fn parse_inline(&mut self, buf: &mut [u8]) -> Result<Step, ProtocolError> {
        let Some(nl) = buf.iter().take(INLINE_BYTES_MAX + 1).position(|&b| b == b'\n') else {
            if buf.len() > INLINE_BYTES_MAX {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(Step::Incomplete { need: buf.len() + 1 });
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
        split_args_in_place(&mut buf[..line_end], &mut self.spans)
            .map_err(|()| ProtocolError::new("unbalanced quotes in request"))?;
        Ok(Step::Command { len: nl + 1 })
    }
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits `line` into arguments as sdssplitargs does, writing each unescaped
/// argument back into `line` (output never overtakes input) and pushing its span.
fn split_args_in_place(line: &mut [u8], spans: &mut Vec<Span>) -> Result<(), ()> {
    let (mut r, mut w) = (0usize, 0usize);
    let n = line.len();
    loop {
        while r < n && line[r].is_ascii_whitespace() {
            r += 1;
        }
        if r >= n {
            return Ok(());
        }
        let start = w;
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                if r >= n {
                    return Err(());
                }
                if line[r] == b'\\'
                    && r + 3 < n
                    && line[r + 1] == b'x'
                    && let (Some(h), Some(l)) = (hex_value(line[r + 2]), hex_value(line[r + 3]))
                {
                    line[w] = h * 16 + l;
                    w += 1;
                    r += 4;
                    continue;
                }
                if line[r] == b'\\' && r + 1 < n {
                    line[w] = match line[r + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    };
                    w += 1;
                    r += 2;
                    continue;
                }
                if line[r] == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if r + 1 < n && !line[r + 1].is_ascii_whitespace() {
                        return Err(());
                    }
                    in_dq = false;
                    r += 1;
                    break;
                }
                line[w] = line[r];
                w += 1;
                r += 1;
            } else if in_sq {
                if r >= n {
                    return Err(());
                }
                if line[r] == b'\\' && r + 1 < n && line[r + 1] == b'\'' {
                    line[w] = b'\'';
                    w += 1;
                    r += 2;
                    continue;
                }
                if line[r] == b'\'' {
                    if r + 1 < n && !line[r + 1].is_ascii_whitespace() {
                        return Err(());
                    }
                    in_sq = false;
                    r += 1;
                    break;
                }
                line[w] = line[r];
                w += 1;
                r += 1;
            } else {
                if r >= n || line[r].is_ascii_whitespace() {
                    break;
                }
                match line[r] {
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => {
                        line[w] = c;
                        w += 1;
                    }
                }
                r += 1;
            }
        }
        debug_assert!(!in_dq && !in_sq);
        spans.push(start..w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { bulk_bytes_max: 512 * 1024 * 1024, authenticated: true };

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = input.to_vec();
        let mut p = RequestParser::new();
        let mut out = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            match p.parse(&mut buf[at..], &LIMITS)? {
                Step::Command { len } => {
                    let args: Vec<Vec<u8>> = p.spans().iter().map(|s| buf[at + s.start..at + s.end].to_vec()).collect();
                    if !args.is_empty() {
                        out.push(args);
                    }
                    at += len;
                }
                Step::Incomplete { .. } => break,
            }
        }
        Ok(out)
    }

    /// Feeds `input` split at every byte boundary, one growing buffer as a
    /// connection would see it, and checks the commands are the same.
    fn check_every_split(input: &[u8], expected: &[&[&str]]) {
        let expected: Vec<Vec<Vec<u8>>> =
            expected.iter().map(|c| c.iter().map(|a| a.as_bytes().to_vec()).collect()).collect();
        assert_eq!(parse_all(input).unwrap(), expected, "whole input");
        for split in 0..=input.len() {
            let mut p = RequestParser::new();
            let mut buf = input[..split].to_vec();
            let mut at = 0;
            let mut got = Vec::new();
            let mut fed_all = split == input.len();
            loop {
                match p.parse(&mut buf[at..], &LIMITS).unwrap() {
                    Step::Command { len } => {
                        let args: Vec<Vec<u8>> =
                            p.spans().iter().map(|s| buf[at + s.start..at + s.end].to_vec()).collect();
                        if !args.is_empty() {
                            got.push(args);
                        }
                        at += len;
                        if at == buf.len() && fed_all {
                            break;
                        }
                    }
                    Step::Incomplete { need } => {
                        assert!(need > buf.len() - at, "need must exceed what is there");
                        if fed_all {
                            break;
                        }
                        buf.extend_from_slice(&input[split..]);
                        fed_all = true;
                    }
                }
            }
            assert_eq!(got, expected, "split at {split}");
        }
    }

    #[test]
    fn multibulk_pipeline_at_every_split() {
        check_every_split(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$0\r\n\r\n",
            &[&["SET", "k", "hello"], &["GET", "k"], &[""]],
        );
    }

    #[test]
    fn inline_commands_at_every_split() {
        check_every_split(
            b"PING\r\nSET a \"x\\ny\" 'q\\'s'\r\n\r\nGET  a\n",
            &[&["PING"], &["SET", "a", "x\ny", "q's"], &["GET", "a"]],
        );
        check_every_split(b"SET k \"\\x41\\x7a\"\r\n", &[&["SET", "k", "Az"]]);
    }

    #[test]
    fn binary_bulks_keep_their_bytes() {
        let out = parse_all(b"*2\r\n$4\r\n\r\n\0\xff\r\n$0\r\n\r\n").unwrap();
        assert_eq!(out, vec![vec![b"\r\n\0\xff".to_vec(), Vec::new()]]);
    }

    #[test]
    fn empty_multibulks_are_skipped() {
        assert_eq!(parse_all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").unwrap(), vec![vec![b"PING".to_vec()]]);
    }

    #[test]
    fn protocol_errors_use_redis_text() {
        let err = |input: &[u8]| parse_all(input).unwrap_err().0;
        assert_eq!(err(b"*1\r\n+foo\r\n"), "expected '$', got '+'");
        assert_eq!(err(b"*1\r\n$600000000\r\n"), "invalid bulk length");
        assert_eq!(err(b"*1\r\n$-1\r\n"), "invalid bulk length");
        assert_eq!(err(b"*abc\r\n"), "invalid multibulk length");
        assert_eq!(err(b"*3000000000\r\n"), "invalid multibulk length");
        assert_eq!(err(b"SET a \"unterminated\r\n"), "unbalanced quotes in request");
        assert_eq!(err(b"SET a \"x\"y\r\n"), "unbalanced quotes in request");
        assert_eq!(err(&vec![b'a'; INLINE_BYTES_MAX + 10]), "too big inline request");
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; INLINE_BYTES_MAX + 10]);
        assert_eq!(err(&big), "too big mbulk count string");
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = Limits { authenticated: false, ..LIMITS };
        let mut p = RequestParser::new();
        let mut many = b"*11\r\n".to_vec();
        assert_eq!(p.parse(&mut many, &limits).unwrap_err().0, "unauthenticated multibulk length");
        let mut big = b"*1\r\n$16385\r\n".to_vec();
        assert_eq!(p.parse(&mut big, &limits).unwrap_err().0, "unauthenticated bulk length");
    }

    #[test]
    fn incomplete_reports_the_whole_frame_size() {
        let mut p = RequestParser::new();
        let mut head = b"*2\r\n$3\r\nSET\r\n$100000\r\nab".to_vec();
        match p.parse(&mut head, &LIMITS).unwrap() {
            Step::Incomplete { need } => assert_eq!(need, head.len() - 2 + 100_000 + 2),
            other => panic!("{other:?}"),
        }
    }
}
