//! A command's arguments: byte ranges into one buffer, so a parsed request is
//! executed where it was received, with no copy of its bulks.

use std::ops::Range;

/// One argument's position in its buffer.
pub type Span = Range<usize>;

/// A borrowed view of a command's arguments. Argument 0 is the command name.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    /// Arguments found at `spans` in `buf`.
    pub fn new(buf: &'a [u8], spans: &'a [Span]) -> Self {
        debug_assert!(spans.iter().all(|s| s.end <= buf.len()));
        Args { buf, spans }
    }

    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no arguments at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`. Callers check `len()` first; the command table's arity
    /// check guarantees the fixed positions.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.buf[self.spans[i].clone()]
    }

    /// Argument `i`, or `None` past the end.
    #[inline]
    pub fn try_get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|s| &self.buf[s.clone()])
    }

    /// Arguments from `start` on.
    pub fn iter_from(&self, start: usize) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.spans[start.min(self.spans.len())..].iter().map(move |s| &buf[s.clone()])
    }

    /// The spans themselves, for building sub-commands over the same buffer.
    pub fn spans(&self) -> &'a [Span] {
        self.spans
    }

    /// The underlying buffer.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// True when argument `i` equals `word`, ignoring ASCII case.
    #[inline]
    pub fn is(&self, i: usize, word: &str) -> bool {
        self.try_get(i).is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// Owned arguments, for commands that are built rather than received
/// (tests, benches and internal sub-commands).
#[derive(Default, Clone, Debug)]
pub struct OwnedArgs {
    buf: Vec<u8>,
    spans: Vec<Span>,
}

impl OwnedArgs {
    /// Builds arguments from byte strings.
    pub fn from_parts<I, T>(parts: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut a = OwnedArgs::default();
        for p in parts {
            a.push(p.as_ref());
        }
        a
    }

    /// Appends one argument.
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(arg);
        self.spans.push(start..self.buf.len());
    }

    /// Removes every argument, keeping the allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }

    /// A borrowed view.
    pub fn view(&self) -> Args<'_> {
        Args::new(&self.buf, &self.spans)
    }
}
