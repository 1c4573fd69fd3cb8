//! Glob-style pattern matching with the exact semantics of Redis 7's
//! `stringmatchlen`, the matcher behind `KEYS`, `SCAN ... MATCH`,
//! `CONFIG GET` and pattern subscriptions.
//!
//! The syntax is the familiar one (`*`, `?`, `[abc]`, `[^abc]`, `[a-z]`,
//! `\x`), but Redis's matcher has a number of quirks that clients can
//! observe, and all of them are reproduced here:
//!
//! * An empty subject matches only the empty pattern: `*` does not match
//!   `""`. Redis's `KEYS *` and unfiltered `SCAN` never call the matcher for
//!   the pattern `*` (see [`matches_everything`]), which is how they still
//!   return an empty key.
//! * Ranges may be reversed (`[z-a]` equals `[a-z]`), and their bounds are
//!   compared as C `char`s, which are signed on x86-64, the reference
//!   platform reproduced here: bytes from 0x80 up sort before 0x00, so
//!   `[a-\xff]` is the reversed range from `\xff` (-1) up to `a`. (Redis
//!   built where `char` is unsigned, such as AArch64 Linux, differs only for
//!   ranges with such bytes.)
//! * Under `nocase`, range bounds and the subject byte are lower-cased
//!   (ASCII only) after any swap, so `[A-z]` loses the bytes between `Z` and
//!   `a`, and `[Z-a]` matches nothing. An escaped byte inside brackets is
//!   always compared case-sensitively.
//! * `[]` and `[]...]` contain nothing (a `]` right after `[` closes it), and
//!   `[^]` matches any one byte.
//! * An unterminated `[` class runs to the end of the pattern and then
//!   matches one byte; `[` alone never matches and `[^` matches any one
//!   byte. A `-` that would form a range with the closing `]` does so
//!   (`[a-]` is the unterminated range `]..=a`).
//! * A trailing backslash, inside or outside brackets, stands for a literal
//!   backslash.
//!
//! Matching backtracks over `*`, but never exponentially: like Redis (since
//! the fix for CVE-2022-36021) the search stops as soon as the pattern after
//! some `*` has been tried at every remaining position and failed, because
//! giving an earlier `*` more bytes can only present a later, shorter
//! subject to that same sub-pattern. Each `*` therefore scans the subject at
//! most once, so the cost is bounded by pattern length × subject length.
//! Like Redis 7.2.6 and later (CVE-2024-31228), the recursion through `*` is
//! also capped at 1000 levels, beyond which that branch simply fails to
//! match.

/// How deep the recursion through `*` may go before a branch is given up, as
/// in Redis's `stringmatchlen_impl` ("protection against abusive patterns").
const MAX_NESTING: u32 = 1000;

/// Reports whether `string` matches the glob `pattern`, exactly as Redis 7's
/// `stringmatchlen(pattern, string, nocase)` does.
///
/// `*` matches any run of bytes, `?` any single byte, `[...]` one byte from a
/// set (with `^` negating it and `x-y` ranges), and `\` makes the next byte
/// literal. When `nocase` is set, ASCII letters compare case-insensitively.
/// The matching works on raw bytes; see the module documentation for the
/// edge cases Redis defines, all of which are reproduced.
#[must_use]
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut matcher = Matcher { nocase, skip_longer_matches: false };
    matcher.matches(pattern, string, 0)
}

/// Reports whether `pattern` is the one pattern that Redis's `KEYS` and
/// `SCAN` treat as "every key" without consulting [`glob_match`]: a single
/// `*`.
///
/// Redis checks this before matching (`allkeys` in `keysCommand`,
/// `use_pattern` in `scanGenericCommand`), which is why those commands
/// return an empty key for `*` even though `glob_match(b"*", b"", _)` is
/// false.
#[must_use]
pub fn matches_everything(pattern: &[u8]) -> bool {
    pattern == b"*"
}

/// The state shared by the recursive calls of one match, mirroring the
/// arguments of Redis's `stringmatchlen_impl`.
struct Matcher {
    nocase: bool,
    /// Set once the rest of the pattern after some `*` has failed at every
    /// remaining subject position; every pending `*` then gives up, because
    /// trying a longer match for it could only retry that failure on a
    /// shorter subject.
    skip_longer_matches: bool,
}

impl Matcher {
    /// Matches `pattern` against `string` with the cursor logic of Redis's
    /// `stringmatchlen_impl`.
    fn matches(&mut self, pattern: &[u8], string: &[u8], nesting: u32) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        let mut p = 0;
        let mut s = 0;
        while p < pattern.len() && s < string.len() {
            match pattern[p] {
                b'*' => {
                    while pattern.get(p + 1) == Some(&b'*') {
                        p += 1;
                    }
                    if p + 1 == pattern.len() {
                        return true;
                    }
                    let rest = &pattern[p + 1..];
                    while s < string.len() {
                        if self.matches(rest, &string[s..], nesting + 1) {
                            return true;
                        }
                        if self.skip_longer_matches {
                            return false;
                        }
                        s += 1;
                    }
                    self.skip_longer_matches = true;
                    return false;
                }
                b'?' => s += 1,
                b'[' => {
                    let (matched, last) = self.match_class(pattern, p + 1, string[s]);
                    if !matched {
                        return false;
                    }
                    p = last;
                    s += 1;
                }
                b'\\' => {
                    if pattern.len() - p >= 2 {
                        p += 1;
                    }
                    if !self.same_byte(pattern[p], string[s]) {
                        return false;
                    }
                    s += 1;
                }
                literal => {
                    if !self.same_byte(literal, string[s]) {
                        return false;
                    }
                    s += 1;
                }
            }
            p += 1;
            if s == string.len() {
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                break;
            }
        }
        p == pattern.len() && s == string.len()
    }

    /// Evaluates the bracket class that starts at `pattern[p]` (just after
    /// the `[`) against byte `c`. Returns whether the class accepts `c` and
    /// the index of the last pattern byte the class consumed: its `]`, or
    /// the final pattern byte when the class is unterminated.
    fn match_class(&self, pattern: &[u8], mut p: usize, c: u8) -> (bool, usize) {
        let negate = pattern.get(p) == Some(&b'^');
        if negate {
            p += 1;
        }
        let mut matched = false;
        loop {
            let remaining = pattern.len() - p;
            if remaining >= 2 && pattern[p] == b'\\' {
                p += 1;
                // Escaped bytes compare exactly, even under nocase.
                matched |= pattern[p] == c;
            } else if remaining >= 1 && pattern[p] == b']' {
                break;
            } else if remaining == 0 {
                // Unterminated: step back onto the last byte, which the
                // caller then steps over, ending the pattern.
                p -= 1;
                break;
            } else if remaining >= 3 && pattern[p + 1] == b'-' {
                matched |= self.in_range(pattern[p], pattern[p + 2], c);
                p += 2;
            } else {
                matched |= self.same_byte(pattern[p], c);
            }
            p += 1;
        }
        (matched != negate, p)
    }

    /// Compares two bytes, ignoring ASCII case under `nocase` (C `tolower`
    /// in the "C" locale, which Redis keeps for character classification).
    fn same_byte(&self, a: u8, b: u8) -> bool {
        if self.nocase { a.eq_ignore_ascii_case(&b) } else { a == b }
    }

    /// Tests `c` against the range `start-end` the way Redis does: bytes are
    /// read as signed C `char`s, the bounds are swapped when reversed, and
    /// then, under `nocase`, bounds and byte are lower-cased.
    fn in_range(&self, start: u8, end: u8, c: u8) -> bool {
        let mut start = signed_char(start);
        let mut end = signed_char(end);
        let mut c = signed_char(c);
        if start > end {
            std::mem::swap(&mut start, &mut end);
        }
        if self.nocase {
            start = c_tolower(start);
            end = c_tolower(end);
            c = c_tolower(c);
        }
        (start..=end).contains(&c)
    }
}

/// The value of a byte read through a signed C `char`.
fn signed_char(byte: u8) -> i16 {
    i16::from(i8::from_ne_bytes([byte]))
}

/// C `tolower` in the "C" locale: only `A`-`Z` change.
fn c_tolower(c: i16) -> i16 {
    if (i16::from(b'A')..=i16::from(b'Z')).contains(&c) { c + 32 } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &[u8], string: &[u8]) -> bool {
        glob_match(pattern, string, false)
    }

    fn mi(pattern: &[u8], string: &[u8]) -> bool {
        glob_match(pattern, string, true)
    }

    /// The matcher without the skip-longer-matches shortcut or the nesting
    /// cap, written one pattern token at a time: the plain backtracking
    /// meaning of Redis's matcher, used to check that the shortcut never
    /// changes an answer.
    fn reference(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
        if pattern.is_empty() || string.is_empty() {
            return pattern.is_empty() && string.is_empty();
        }
        let mut p = 0;
        let matched_one = match pattern[0] {
            b'*' => {
                while pattern.get(p + 1) == Some(&b'*') {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return true;
                }
                return (0..string.len()).any(|s| reference(&pattern[p + 1..], &string[s..], nocase));
            }
            b'?' => true,
            b'[' => {
                let matcher = Matcher { nocase, skip_longer_matches: false };
                let (matched, last) = matcher.match_class(pattern, 1, string[0]);
                p = last;
                matched
            }
            b'\\' if pattern.len() >= 2 => {
                p = 1;
                if nocase { pattern[1].eq_ignore_ascii_case(&string[0]) } else { pattern[1] == string[0] }
            }
            literal => {
                if nocase {
                    literal.eq_ignore_ascii_case(&string[0])
                } else {
                    literal == string[0]
                }
            }
        };
        if !matched_one {
            return false;
        }
        let mut rest = &pattern[p + 1..];
        if string.len() == 1 {
            while rest.first() == Some(&b'*') {
                rest = &rest[1..];
            }
            return rest.is_empty();
        }
        reference(rest, &string[1..], nocase)
    }

    #[test]
    fn literals_must_match_exactly() {
        assert!(m(b"hello", b"hello"));
        assert!(!m(b"hello", b"hell"));
        assert!(!m(b"hell", b"hello"));
        assert!(!m(b"hello", b"Hello"));
        assert!(m(b"", b""));
        assert!(!m(b"", b"a"));
        assert!(!m(b"a", b""));
        assert!(m(b"a\0b", b"a\0b"));
        assert!(m(b"\xff\xfe", b"\xff\xfe"));
    }

    #[test]
    fn star_matches_any_run_including_empty_inside_a_string() {
        assert!(m(b"*", b"a"));
        assert!(m(b"*", b"anything at all"));
        assert!(m(b"foo*", b"foo"));
        assert!(m(b"foo*", b"foo_a"));
        assert!(m(b"*foo", b"foo"));
        assert!(m(b"*foo", b"xxfoo"));
        assert!(m(b"f*o", b"fo"));
        assert!(m(b"f*o", b"fooooo"));
        assert!(!m(b"f*o", b"foox"));
        assert!(m(b"a*b*c", b"abc"));
        assert!(m(b"a*b*c", b"aXbYc"));
        assert!(m(b"a*b*c", b"abcbc"));
        assert!(!m(b"a*b*c", b"acb"));
        assert!(m(b"**", b"x"));
        assert!(m(b"a***b", b"ab"));
        assert!(m(b"*a*", b"bab"));
        assert!(!m(b"*a*", b"bbb"));
        assert!(m(b"*?", b"x"));
        assert!(!m(b"*??", b"x"));
    }

    #[test]
    fn empty_subject_matches_only_the_empty_pattern() {
        // Redis's loop never runs for an empty subject, so even "*" fails;
        // KEYS and SCAN special-case "*" before calling the matcher.
        assert!(!m(b"*", b""));
        assert!(!m(b"**", b""));
        assert!(!m(b"?", b""));
        assert!(!m(b"[^a]", b""));
        assert!(m(b"", b""));
        assert!(matches_everything(b"*"));
        assert!(!matches_everything(b"**"));
        assert!(!matches_everything(b""));
        assert!(!matches_everything(b"\\*"));
    }

    #[test]
    fn trailing_stars_match_after_the_subject_runs_out() {
        assert!(m(b"abc*", b"abc"));
        assert!(m(b"abc***", b"abc"));
        assert!(m(b"a*b*", b"ab"));
        assert!(!m(b"abc*d", b"abc"));
        assert!(!m(b"abc*?", b"abc"));
    }

    #[test]
    fn question_mark_matches_exactly_one_byte() {
        assert!(m(b"?", b"a"));
        assert!(m(b"?", b"\0"));
        assert!(!m(b"?", b"ab"));
        assert!(m(b"h?llo", b"hello"));
        assert!(m(b"h?llo", b"hallo"));
        assert!(!m(b"h?llo", b"hllo"));
        assert!(m(b"???", b"abc"));
        assert!(!m(b"???", b"ab"));
    }

    #[test]
    fn bracket_sets_match_one_listed_byte() {
        assert!(m(b"h[ae]llo", b"hello"));
        assert!(m(b"h[ae]llo", b"hallo"));
        assert!(!m(b"h[ae]llo", b"hillo"));
        assert!(!m(b"h[ae]llo", b"hllo"));
        assert!(!m(b"h[ae]llo", b"haello"));
        assert!(m(b"[*]", b"*"));
        assert!(!m(b"[*]", b"a"));
        assert!(m(b"[?]", b"?"));
        assert!(m(b"[[]", b"["));
        assert!(m(b"[a^]", b"^"));
    }

    #[test]
    fn caret_negates_a_set() {
        assert!(m(b"h[^e]llo", b"hallo"));
        assert!(m(b"h[^e]llo", b"hbllo"));
        assert!(!m(b"h[^e]llo", b"hello"));
        assert!(!m(b"h[^ae]llo", b"hallo"));
        assert!(!m(b"h[^e]llo", b"hllo"));
        assert!(m(b"[^^]", b"a"));
        assert!(!m(b"[^^]", b"^"));
    }

    #[test]
    fn ranges_match_inclusive_spans() {
        assert!(m(b"h[a-b]llo", b"hallo"));
        assert!(m(b"h[a-b]llo", b"hbllo"));
        assert!(!m(b"h[a-b]llo", b"hcllo"));
        assert!(m(b"[a-z]", b"a"));
        assert!(m(b"[a-z]", b"z"));
        assert!(!m(b"[a-z]", b"A"));
        assert!(m(b"[0-9][0-9]", b"42"));
        assert!(m(b"[a-cx-z]", b"y"));
        assert!(!m(b"[a-cx-z]", b"m"));
        assert!(m(b"[^a-c]", b"d"));
        assert!(!m(b"[^a-c]", b"b"));
        assert!(m(b"[a-a]", b"a"));
        assert!(m(b"[-a]", b"-"));
    }

    #[test]
    fn reversed_ranges_are_swapped() {
        assert!(m(b"[z-a]", b"m"));
        assert!(m(b"[z-a]", b"a"));
        assert!(m(b"[z-a]", b"z"));
        assert!(!m(b"[z-a]", b"A"));
        assert!(m(b"[9-0]", b"5"));
        assert!(!m(b"[^z-a]", b"q"));
    }

    #[test]
    fn range_bounds_compare_as_signed_chars() {
        // 0xff is -1 as a C char, so [a-\xff] is the range -1..='a'.
        assert!(m(b"[a-\xff]", b"A"));
        assert!(m(b"[a-\xff]", b"\0"));
        assert!(m(b"[a-\xff]", b"\xff"));
        assert!(!m(b"[a-\xff]", b"b"));
        assert!(!m(b"[a-\xff]", b"\x80"));
        assert!(m(b"[\x80-\xff]", b"\x90"));
        assert!(!m(b"[\x80-\xff]", b"a"));
        // Reversed in signed terms: 0x01..=0x7f does not include 0x80.
        assert!(!m(b"[\x01-\x80]", b"a"));
        assert!(m(b"[\x01-\x80]", b"\x90"));
    }

    #[test]
    fn nocase_folds_ascii_letters() {
        assert!(mi(b"HELLO", b"hello"));
        assert!(mi(b"hello", b"HeLLo"));
        assert!(mi(b"H?LLO", b"hello"));
        assert!(mi(b"H[A-Z]LLO", b"hello"));
        assert!(mi(b"h[a-z]llo", b"HELLO"));
        assert!(mi(b"[AB]", b"b"));
        assert!(mi(b"[^AB]", b"c"));
        assert!(!mi(b"[^AB]", b"a"));
        assert!(mi(b"*LO", b"hello"));
        assert!(!m(b"HELLO", b"hello"));
        // Only ASCII letters fold.
        assert!(!mi(b"\xc0", b"\xe0"));
        assert!(!mi(b"@", b"`"));
    }

    #[test]
    fn nocase_lowercases_range_bounds_after_swapping() {
        // [A-z] becomes a..=z under nocase, losing '[' (between Z and a).
        assert!(m(b"[A-z]", b"["));
        assert!(!mi(b"[A-z]", b"["));
        assert!(mi(b"[A-z]", b"Q"));
        // [Z-a] becomes z..=a, which is empty.
        assert!(m(b"[Z-a]", b"_"));
        assert!(!mi(b"[Z-a]", b"_"));
        assert!(!mi(b"[Z-a]", b"z"));
        assert!(!mi(b"[Z-a]", b"a"));
        // Reversed [z-A] swaps first to A..=z, then folds to a..=z.
        assert!(mi(b"[z-A]", b"M"));
        assert!(!mi(b"[z-A]", b"^"));
    }

    #[test]
    fn backslash_escapes_the_next_byte() {
        assert!(m(b"\\*", b"*"));
        assert!(!m(b"\\*", b"a"));
        assert!(m(b"\\?", b"?"));
        assert!(!m(b"\\?", b"x"));
        assert!(m(b"\\[a]", b"[a]"));
        assert!(m(b"a\\\\b", b"a\\b"));
        assert!(m(b"\\a", b"a"));
        assert!(m(b"foo\\*bar", b"foo*bar"));
        assert!(!m(b"foo\\*bar", b"fooXbar"));
        // Outside brackets an escaped letter still folds under nocase.
        assert!(mi(b"\\A", b"a"));
    }

    #[test]
    fn trailing_backslash_is_a_literal_backslash() {
        assert!(m(b"\\", b"\\"));
        assert!(!m(b"\\", b"a"));
        assert!(m(b"ab\\", b"ab\\"));
        assert!(!m(b"ab\\", b"ab"));
        assert!(m(b"*\\", b"xyz\\"));
    }

    #[test]
    fn backslash_escapes_inside_brackets() {
        assert!(m(b"[\\]]", b"]"));
        assert!(m(b"[\\^a]", b"^"));
        assert!(m(b"[a\\-z]", b"-"));
        assert!(!m(b"[a\\-z]", b"m"));
        assert!(m(b"[\\\\]", b"\\"));
        assert!(m(b"[^\\]]", b"a"));
        assert!(!m(b"[^\\]]", b"]"));
        // Escaped bytes inside brackets compare exactly, even under nocase.
        assert!(!mi(b"[\\A]", b"a"));
        assert!(mi(b"[\\A]", b"A"));
        assert!(mi(b"[A]", b"a"));
        // A backslash right before the end of an unterminated class is literal.
        assert!(m(b"[\\", b"\\"));
    }

    #[test]
    fn closing_bracket_first_ends_an_empty_set() {
        // No POSIX "]" as first member: "[]" is an empty set.
        assert!(!m(b"[]", b"]"));
        assert!(!m(b"[]a]", b"]"));
        assert!(!m(b"[]a]", b"a"));
        assert!(!m(b"[]a]", b"a]"));
        assert!(!m(b"[]", b"x"));
        // [^] is the negated empty set: any one byte.
        assert!(m(b"[^]", b"x"));
        assert!(m(b"[^]", b"]"));
        assert!(!m(b"[^]", b"xy"));
        assert!(m(b"[^]a", b"xa"));
    }

    #[test]
    fn unterminated_brackets_follow_redis() {
        // "[" alone never matches; "[^" matches any one byte.
        assert!(!m(b"[", b"["));
        assert!(!m(b"[", b"a"));
        assert!(m(b"[^", b"a"));
        assert!(m(b"[^", b"^"));
        assert!(!m(b"[^", b"ab"));
        // An unterminated set runs to the end of the pattern.
        assert!(m(b"[abc", b"a"));
        assert!(m(b"[abc", b"c"));
        assert!(!m(b"[abc", b"d"));
        assert!(!m(b"[abc", b"ab"));
        assert!(m(b"x[abc", b"xb"));
        assert!(m(b"[^abc", b"d"));
        assert!(!m(b"[^abc", b"a"));
        // "[a-]" is the unterminated range from ']' to 'a'.
        assert!(m(b"[a-]", b"a"));
        assert!(m(b"[a-]", b"]"));
        assert!(m(b"[a-]", b"_"));
        assert!(!m(b"[a-]", b"-"));
        assert!(!m(b"[a-]", b"b"));
        // "[a-]x": the 'x' is part of the same unterminated set.
        assert!(m(b"[a-]x", b"x"));
        assert!(!m(b"[a-]x", b"ax"));
        // A trailing "-" right after a member is just a member.
        assert!(m(b"[a-", b"-"));
        assert!(m(b"[a-", b"a"));
        assert!(!m(b"[a-", b"b"));
    }

    #[test]
    fn redis_keyspace_test_patterns() {
        // tests/unit/keyspace.tcl: KEYS with pattern / with hashtag.
        let keys: [&[u8]; 6] = [b"key_x", b"key_y", b"key_z", b"foo_a", b"foo_b", b"foo_c"];
        let foo: Vec<&[u8]> = keys.iter().copied().filter(|k| m(b"foo*", k)).collect();
        assert_eq!(foo, [&b"foo_a"[..], b"foo_b", b"foo_c"]);
        assert!(keys.iter().all(|k| m(b"*", k)));
        let tagged: [&[u8]; 4] = [b"{a}x", b"{a}y", b"{a}z", b"{b}a"];
        let a: Vec<&[u8]> = tagged.iter().copied().filter(|k| m(b"{a}*", k)).collect();
        assert_eq!(a, [&b"{a}x"[..], b"{a}y", b"{a}z"]);
        assert_eq!(tagged.iter().filter(|k| m(b"*{b}*", k)).count(), 1);
        // CONFIG GET style patterns.
        assert!(m(b"*max-*-entries*", b"hash-max-listpack-entries"));
        assert!(!m(b"*max-*-entries*", b"maxmemory"));
        assert!(mi(b"MAXMEMORY*", b"maxmemory-policy"));
    }

    #[test]
    fn redis_long_nested_loops_regression() {
        // keyspace.tcl "Regression for pattern matching long nested loops".
        let pattern = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!m(pattern, &[b'a'; 40]));
    }

    #[test]
    fn abusive_pattern_against_a_long_string_finishes() {
        let pattern = b"a*a*a*a*a*a*a*a*b";
        let mut subject = vec![b'a'; 10_000];
        assert!(!m(pattern, &subject));
        assert!(!mi(pattern, &subject));
        subject.push(b'b');
        assert!(m(pattern, &subject));
        let many_stars = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c".to_vec();
        assert!(!m(&many_stars, &[b'a'; 10_000]));
        assert!(!m(b"*?*?*?*?*?*?*?*?*?*?x", &[b'q'; 10_000]));
        assert!(!m(b"*[ab]*[ab]*[ab]*[ab]*[ab]*c", &[b'a'; 10_000]));
    }

    #[test]
    fn redis_very_long_nested_loops_regression() {
        // keyspace.tcl "Regression for pattern matching very long nested
        // loops": the 1000-level nesting cap makes this fail to match even
        // though, without the cap, each "*" could match nothing.
        let pattern = b"*?".repeat(50_000);
        let subject = vec![b'a'; 50_000];
        assert!(!m(&pattern, &subject));
        // Within the cap the same shape matches.
        assert!(m(&b"*?".repeat(900), &vec![b'a'; 1_000]));
    }

    #[test]
    fn nesting_cap_counts_recursion_through_stars() {
        // Each non-final "*" adds one level; 1000 levels are allowed.
        let within = b"*a".repeat(1000);
        let beyond = b"*a".repeat(1001);
        assert!(m(&within, &vec![b'a'; 1000]));
        assert!(!m(&beyond, &vec![b'a'; 1001]));
        // Collapsed runs of stars count once.
        assert!(m(&b"**a".repeat(1000), &vec![b'a'; 1000]));
    }

    #[test]
    fn skip_longer_matches_never_changes_an_answer() {
        // Exhaustive over short patterns and subjects from a small alphabet.
        let pattern_alphabet = b"a*?[]^-\\";
        let subject_alphabet = b"a]-";
        let mut patterns: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = patterns
                .iter()
                .filter(|p| p.len() == patterns.last().map_or(0, Vec::len))
                .flat_map(|p| {
                    pattern_alphabet.iter().map(move |&c| {
                        let mut q = p.clone();
                        q.push(c);
                        q
                    })
                })
                .collect();
            patterns.extend(longer);
        }
        let mut subjects: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = subjects
                .iter()
                .filter(|s| s.len() == subjects.last().map_or(0, Vec::len))
                .flat_map(|s| {
                    subject_alphabet.iter().map(move |&c| {
                        let mut t = s.clone();
                        t.push(c);
                        t
                    })
                })
                .collect();
            subjects.extend(longer);
        }
        for pattern in &patterns {
            for subject in &subjects {
                assert_eq!(
                    m(pattern, subject),
                    reference(pattern, subject, false),
                    "pattern {:?} subject {:?}",
                    pattern.escape_ascii().to_string(),
                    subject.escape_ascii().to_string()
                );
            }
        }
    }

    #[test]
    fn fuzz_random_bytes_like_stringmatchlen_fuzz_test() {
        // Redis's stringmatchlen_fuzz_test feeds random bytes below 128 and
        // only checks that nothing crashes; this also checks the answer
        // against the reference matcher.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let pattern_len = (next() % 16) as usize;
            let subject_len = (next() % 16) as usize;
            let nocase = next() % 2 == 0;
            let pattern: Vec<u8> = (0..pattern_len).map(|_| (next() % 128) as u8).collect();
            let subject: Vec<u8> = (0..subject_len).map(|_| (next() % 128) as u8).collect();
            assert_eq!(glob_match(&pattern, &subject, nocase), reference(&pattern, &subject, nocase));
        }
    }
}
