//! Strict number parsing and formatting that reproduce what Redis 7 accepts
//! and prints.
//!
//! Redis is deliberately strict about the text it accepts as a number: an
//! integer argument or value must round-trip byte for byte (`string2ll`), and
//! a float must be consumed completely by `strtod`/`strtold` with no leading
//! whitespace (`string2d`, `string2ld`). Its output has two distinct shapes:
//! the "human friendly" text that `INCRBYFLOAT` and `HINCRBYFLOAT` store
//! (`ld2string` in `LD_STR_HUMAN` mode) and the text of a double reply
//! (`addReplyDouble`, which goes through `d2string`). Each function in this
//! module names the Redis function it mirrors and states where an `f64`
//! cannot reproduce a `long double` result exactly.

use std::fmt::{self, Write as _};

/// Redis's `LONG_STR_SIZE`: `string2ll` rejects any input of this many bytes
/// or more before looking at it, because the longest valid 64-bit integer
/// ("-9223372036854775808") has 20 bytes.
const LONG_STR_SIZE: usize = 21;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` rejects any input of this many
/// bytes or more, because it copies the text into a buffer of this size.
pub(crate) const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Every integer of at most this magnitude is exactly representable as an
/// `f64` (2^53).
const F64_EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// The magnitude limit of Redis's `double2ll`, `(double)(LLONG_MAX / 2)`,
/// which rounds to exactly 2^62.
const DOUBLE2LL_LIMIT: f64 = 4_611_686_018_427_387_904.0;

/// Parses a signed 64-bit integer with exactly the rules of Redis's
/// `string2ll`.
///
/// The text must be the canonical decimal form of the number: an optional
/// `-` followed by digits, with no `+` sign, no whitespace anywhere, and no
/// leading zero unless the whole text is `"0"`. As in Redis, `"-0"` is
/// rejected (its first digit after the sign is not 1-9), the empty string and
/// texts of 21 bytes or more are rejected, and values outside the `i64` range
/// are rejected rather than saturated. Because of these rules a value that
/// parses always prints back as the same bytes, which is what lets Redis store
/// such strings as integers.
#[must_use]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    match s.split_first() {
        Some((b'-', digits)) => 0_i64.checked_sub_unsigned(parse_nonzero_magnitude(digits)?),
        _ => i64::try_from(parse_nonzero_magnitude(s)?).ok(),
    }
}

/// Parses an unsigned 64-bit integer with the same strictness as Redis's
/// `string2ll`.
///
/// The text must be plain decimal digits with no sign at all, no whitespace,
/// and no leading zero unless the whole text is `"0"`; the empty string,
/// texts of 21 bytes or more, and values above `u64::MAX` are rejected. This
/// is the natural rule for counts and lengths, where Redis parses with
/// `string2ll` and then rejects negative values.
#[must_use]
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    parse_nonzero_magnitude(s)
}

/// Parses a SCAN, HSCAN, SSCAN or ZSCAN cursor as Redis's
/// `parseScanCursorOrReply` does: with `strtoul` in base 10, refusing a
/// leading space, any byte after the digits, and overflow.
///
/// So an optional `+` or `-` sign and leading zeros are accepted, a minus
/// negates modulo 2^64 (`-1` is `u64::MAX`), and the empty text is cursor 0;
/// a sign with no digits is refused.
#[must_use]
pub fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return if s.is_empty() { Some(0) } else { None };
    }
    let mut value = 0u64;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    Some(if negative { value.wrapping_neg() } else { value })
}

/// Parses the digits of a nonzero magnitude as `string2ll` does after the
/// sign: the first digit must be 1-9, every byte must be a digit, and the
/// value must fit in a `u64`.
fn parse_nonzero_magnitude(digits: &[u8]) -> Option<u64> {
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = u64::from(first - b'0');
    for &byte in rest {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    Some(value)
}

/// Parses a floating-point increment the way Redis's `string2ld` does for
/// `INCRBYFLOAT` and `HINCRBYFLOAT` (through `getLongDoubleFromObject`).
///
/// The whole text must be consumed by the C library's `strtold`, so this
/// accepts an optional `+` or `-` sign, decimal forms such as `"1"`, `"1.5"`,
/// `".5"`, `"5."` and `"1e3"`, hexadecimal forms such as `"0x1.8p1"`, and the
/// words `"inf"` and `"infinity"` in any case. It rejects the empty string,
/// texts of 5 KiB or more (Redis's `MAX_LONG_DOUBLE_CHARS` buffer), leading
/// or trailing whitespace, any other trailing bytes (including an embedded
/// NUL), NaN in every spelling, and values whose conversion overflows to
/// infinity or underflows to zero (C reports both as `ERANGE`). Infinity
/// itself is accepted, exactly as in Redis; the caller must reject an
/// infinite or NaN *result* ("increment would produce NaN or Infinity").
///
/// Redis parses into an 80-bit `long double`; this returns the nearest `f64`.
/// The only difference in which texts are accepted is therefore the range:
/// Redis accepts magnitudes up to about 1.2e4932 and down to about 3.6e-4951,
/// whereas here anything that overflows or underflows an `f64` is rejected.
#[must_use]
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.len() >= MAX_LONG_DOUBLE_CHARS {
        return None;
    }
    parse_c_double(s)
}

/// Parses a sorted-set score the way Redis's `string2d` does (through
/// `getDoubleFromObject`, used by `ZADD`, `ZINCRBY` and friends).
///
/// The rules are those of the C library's `strtod` on the whole text:
/// `"inf"`, `"+inf"`, `"-inf"` (and `"infinity"`, in any case) are accepted,
/// as are decimal and hexadecimal floats with an optional sign. The empty
/// string, leading or trailing whitespace, trailing garbage, NaN, and values
/// that overflow to infinity or underflow to zero are rejected. Unlike
/// [`parse_f64`] there is no length limit, because `string2d` works on the
/// string in place.
#[must_use]
pub fn parse_score(s: &[u8]) -> Option<f64> {
    parse_c_double(s)
}

/// The shared acceptance rules of Redis's `string2d` and `string2ld`: the
/// whole text must be a number as C's `strtod` reads it, not NaN, and not
/// out of range.
fn parse_c_double(s: &[u8]) -> Option<f64> {
    let (negative, body) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let magnitude = if body.len() >= 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex_magnitude(&body[2..])?
    } else {
        parse_decimal_magnitude(body)?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Parses an unsigned decimal float, `"inf"` or `"infinity"` (in any case)
/// with C `strtod` acceptance rules, rejecting NaN, overflow and underflow.
fn parse_decimal_magnitude(body: &[u8]) -> Option<f64> {
    // A second sign would be accepted by Rust's parser but not by strtod.
    if matches!(body.first(), None | Some(b'+' | b'-')) {
        return None;
    }
    // Plain digits (most scores are integers) need no float parser: up to
    // 19 digits fit a u64, and its conversion rounds to nearest as strtod does.
    if body.len() <= 19 && body.iter().all(u8::is_ascii_digit) {
        return Some(body.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')) as f64);
    }
    // Non-UTF-8 text cannot be a number in either grammar. Rust's float
    // grammar is otherwise the same as C's decimal grammar: digits with an
    // optional '.', at least one digit, an optional exponent with at least
    // one digit, or the words inf/infinity/nan.
    let value: f64 = std::str::from_utf8(body).ok()?.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    if value.is_infinite() {
        // Only the literal words may produce infinity; a numeral that does
        // is an overflow, which strtod reports as ERANGE and Redis rejects.
        return (body[0] | 0x20 == b'i').then_some(value);
    }
    if value == 0.0 {
        // A zero from a mantissa with a nonzero digit is an underflow
        // (ERANGE with a zero result), which Redis rejects.
        let mantissa = body.split(|&b| b | 0x20 == b'e').next().unwrap_or(body);
        if mantissa.iter().any(|b| (b'1'..=b'9').contains(b)) {
            return None;
        }
    }
    Some(value)
}

/// Parses the part of a C99 hexadecimal float after `0x` (hex digits with an
/// optional `.`, then an optional `p` exponent), rounding to nearest-even as
/// glibc does. Returns `None` for anything `strtod` would not consume
/// completely and for results that overflow to infinity or underflow to
/// zero.
fn parse_hex_magnitude(text: &[u8]) -> Option<f64> {
    // The first 16 significant hex digits are kept exactly; later ones only
    // matter through whether any of them is nonzero ("sticky" bit).
    let mut mantissa: u64 = 0;
    let mut sticky = false;
    let mut exp2: i64 = 0;
    let mut any_digit = false;
    let mut seen_point = false;
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        if byte == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(digit) = char::from(byte).to_digit(16) else {
            break;
        };
        any_digit = true;
        if mantissa >> 60 == 0 {
            mantissa = (mantissa << 4) | u64::from(digit);
            if seen_point {
                exp2 -= 4;
            }
        } else {
            sticky |= digit != 0;
            if !seen_point {
                exp2 += 4;
            }
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    if text.get(i).is_some_and(|&marker| marker | 0x20 == b'p') {
        i += 1;
        let negative = match text.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut exponent: i64 = 0;
        while let Some(&byte) = text.get(i).filter(|b| b.is_ascii_digit()) {
            // Anything beyond this bound overflows or underflows anyway.
            exponent = (exponent * 10 + i64::from(byte - b'0')).min(1 << 20);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp2 += if negative { -exponent } else { exponent };
    }
    if i != text.len() {
        return None;
    }
    if mantissa == 0 {
        return Some(0.0);
    }
    round_binary(mantissa, sticky, exp2)
}

/// Rounds `mantissa * 2^exp2` (plus a nonzero tail below the last kept bit
/// when `sticky` is set) to the nearest `f64`, ties to even. Returns `None` on
/// overflow to infinity or underflow to zero.
fn round_binary(mantissa: u64, sticky: bool, exp2: i64) -> Option<f64> {
    const FRACTION_MASK: u64 = (1 << 52) - 1;
    let zeros = mantissa.leading_zeros();
    let normalized = mantissa << zeros;
    // The value is normalized / 2^63 * 2^exponent, with normalized in [2^63, 2^64).
    let mut exponent = exp2 - i64::from(zeros) + 63;
    if exponent > 1023 {
        return None;
    }
    let subnormal = exponent < -1022;
    let shift = if subnormal {
        let extra = -1022 - exponent;
        if extra > 53 {
            // Below half of the smallest subnormal: rounds to zero.
            return None;
        }
        11 + u32::try_from(extra).ok()?
    } else {
        11
    };
    let wide = u128::from(normalized);
    let mut kept = u64::try_from(wide >> shift).ok()?;
    let rest = wide & ((1_u128 << shift) - 1);
    let half = 1_u128 << (shift - 1);
    if rest > half || (rest == half && (sticky || kept & 1 == 1)) {
        kept += 1;
    }
    let bits = if subnormal {
        if kept == 0 {
            return None;
        }
        // A carry into bit 52 yields the encoding of the smallest normal.
        kept
    } else {
        if kept == 1 << 53 {
            kept >>= 1;
            exponent += 1;
            if exponent > 1023 {
                return None;
            }
        }
        (u64::try_from(exponent + 1023).ok()? << 52) | (kept & FRACTION_MASK)
    };
    Some(f64::from_bits(bits))
}

/// Appends the text that Redis stores and replies for the result of
/// `INCRBYFLOAT` and `HINCRBYFLOAT`, emulating `ld2string` in `LD_STR_HUMAN`
/// mode.
///
/// Redis computes in an 80-bit `long double`, prints it with `"%.17Lf"`
/// (fixed notation, never an exponent, 17 fractional digits), removes
/// trailing zeros and then a trailing `.`, and turns `"-0"` into `"0"`. The
/// extra precision of `long double` hides the binary rounding noise of
/// decimal inputs, so `10.1 + 0.2` shows as `10.3`. With only an `f64`,
/// this function reproduces the visible result as follows:
///
/// * NaN and infinities print as `nan`, `inf` and `-inf`, as in `ld2string`
///   (callers reject such results before formatting).
/// * An integral value below 2^53 in magnitude prints as that exact integer:
///   every such integer is exact in both `f64` and `long double`, so the
///   result Redis prints is the same integer (this keeps 16-digit integers
///   such as 9007199254740991 intact, which 15-digit rounding would not).
/// * Any other value is rounded to 15 significant digits (`DBL_DIG`, the
///   precision an `f64` is guaranteed to carry) and written in fixed
///   notation, but never with more than the 17 fractional digits of
///   `"%.17Lf"`; a value too small for those 17 digits prints as `0`.
/// * Trailing zeros and a trailing `.` are removed and `-0` becomes `0`.
///
/// Examples: `10.5` → `10.5`, `3.0` → `3`, `5.0e3` → `5000`, `1.5e-5` →
/// `0.000015`, `1e20` → `100000000000000000000`, `1.0 / 3.0` →
/// `0.333333333333333`.
///
/// This is an approximation, and it cannot be exact: a `long double` carries
/// about 19 significant digits, so Redis itself shows binary noise once a
/// value's integer digits plus 17 fractional digits exceed that (for example
/// Redis stores `27263.03999999999999915` after adding `-27263.04` to `0`,
/// and `182.71340000000000001` for some sums near 182.7134), which no `f64`
/// computation reproduces. In the other direction, a cancellation such as
/// `-9.040728 + 9` leaves `f64` noise in the 15th significant digit that the
/// `long double` does not have (`-0.0407279999999997` here against Redis's
/// `-0.040728`). Integers, dyadic fractions, and short decimals below about
/// 100 without such cancellation come out identical to Redis.
pub fn format_f64_human(v: f64, out: &mut Vec<u8>) {
    if let Some(special) = special_text(v) {
        out.extend_from_slice(special);
        return;
    }
    if v.fract() == 0.0 && v.abs() < F64_EXACT_INT_LIMIT {
        // In range, so the conversion is exact; -0.0 becomes 0.
        write_i64(v as i64, out);
        return;
    }
    let start = out.len();
    if v.is_sign_negative() {
        out.push(b'-');
    }
    let magnitude = v.abs();
    // 15 significant digits, correctly rounded from the exact binary value.
    let rounded = Decimal::new(magnitude, 14);
    if rounded.first_exp >= -3 {
        // The 15th significant digit is at most the 17th fractional digit.
        push_fixed(rounded.digits(), rounded.first_exp, out);
    } else {
        // "%.17Lf" shows fewer than 15 significant digits here.
        let mut fixed = StackText::new();
        // Fits: below 1e-3 the text is "0." and 17 digits.
        let _ = write!(fixed, "{magnitude:.17}");
        out.extend_from_slice(fixed.as_bytes());
    }
    trim_fraction(out, start);
    if &out[start..] == b"-0" {
        out.truncate(start);
        out.push(b'0');
    }
}

/// Appends a double reply's text exactly as Redis 7.2's `addReplyDouble`
/// produces it (through `d2string`), for both RESP2 bulk strings and RESP3
/// doubles.
///
/// The rules of `d2string` are:
///
/// * NaN prints as `nan`, infinities as `inf` and `-inf`, and zero as `0` or,
///   for negative zero, `-0`.
/// * An integral value whose magnitude is at most 2^62 (the range of
///   `double2ll`) prints as a plain integer, e.g. `1000000000000000000`.
/// * Anything else goes through `fpconv_dtoa`: Grisu2 picks a digit string
///   that reads back as the same double (the shortest one for about 99.9%
///   of doubles) and lays it out with its own thresholds, which
///   differ from `"%.17g"`. With `K` the decimal exponent of the last digit
///   and `E` that of the first:
///   - `K >= 0` and `E` below digits + 7: plain integer digits padded with
///     zeros, e.g. `9223372036854776000` for 2^63;
///   - `K < 0` and (`K > -7` or `|E| < 4`): fixed notation, e.g. `1.1`,
///     `0.00001`, `0.000015`, `0.1234567`;
///   - otherwise scientific notation with an unpadded, always-signed
///     exponent, e.g. `1e+20`, `1.5e-7`, `1.234567e-4`, `5e-324`,
///     `1.7976931348623157e+308`.
///
/// Redis 7.0 printed `"%.17g"` instead (`1.1000000000000001`,
/// `1.0000000000000001e-05`); the 7.2 behaviour is deliberately chosen here,
/// down to Grisu2's occasional non-shortest output such as
/// `0.6611900000000001` for `0.66119`.
pub fn format_f64_resp(v: f64, out: &mut Vec<u8>) {
    if let Some(special) = special_text(v) {
        out.extend_from_slice(special);
        return;
    }
    if let Some(n) = resp_integer(v) {
        write_i64(n, out);
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(b"-0");
        return;
    }
    let negative = v.is_sign_negative();
    if negative {
        out.push(b'-');
    }
    let digits = Grisu2::new(v.abs());
    push_fpconv_layout(digits.digits(), digits.last_exp, negative, out);
}

/// The integer [`format_f64_resp`] writes for `v`, when it writes one: a
/// whole number within `double2ll`'s exact range, except -0 (written `-0`).
#[inline]
pub fn resp_integer(v: f64) -> Option<i64> {
    // NaN and the infinities have no zero fraction.
    // In range, so the conversion is exact.
    (v.fract() == 0.0 && v.abs() <= DOUBLE2LL_LIMIT && !(v == 0.0 && v.is_sign_negative())).then_some(v as i64)
}

/// Appends the decimal text of `v`, as Redis's `ll2string` writes it.
pub fn write_i64(v: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// The spellings `ld2string` and `d2string` use for values that are not
/// finite.
fn special_text(v: f64) -> Option<&'static [u8]> {
    if v.is_nan() {
        Some(b"nan")
    } else if v.is_infinite() {
        Some(if v > 0.0 { b"inf" } else { b"-inf" })
    } else {
        None
    }
}

/// Lays out significant `digits` whose last digit has decimal exponent
/// `last_exp` following the rules of Redis's `fpconv_dtoa` (`emit_digits`).
fn push_fpconv_layout(digits: &[u8], last_exp: i32, negative: bool, out: &mut Vec<u8>) {
    let count = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let first_exp = last_exp + count - 1;
    let abs_exp = first_exp.abs();
    if last_exp >= 0 && abs_exp < count + 7 {
        out.extend_from_slice(digits);
        push_zeros(out, last_exp);
    } else if last_exp < 0 && (last_exp > -7 || abs_exp < 4) {
        let int_len = count + last_exp;
        if int_len <= 0 {
            out.extend_from_slice(b"0.");
            push_zeros(out, -int_len);
            out.extend_from_slice(digits);
        } else {
            let (int_part, frac_part) = digits.split_at(usize::try_from(int_len).unwrap_or(0));
            out.extend_from_slice(int_part);
            out.push(b'.');
            out.extend_from_slice(frac_part);
        }
    } else {
        // fpconv keeps at most 18 digits here, one fewer for a negative
        // value, and takes the exponent's sign from the kept digits.
        let kept = &digits[..digits.len().min(if negative { 17 } else { 18 })];
        let (first, rest) = kept.split_at(1);
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        let kept_count = i32::try_from(kept.len()).unwrap_or(i32::MAX);
        out.extend_from_slice(if last_exp + kept_count - 1 < 0 { b"e-" } else { b"e+" });
        write_i64(i64::from(abs_exp), out);
    }
}

/// Normalized 64-bit significands of the powers of ten 10^k for
/// k = -348, -340, ..., 340, each rounded to nearest: 10^k ≈ f × 2^e. These
/// are the cached powers Grisu needs (the same values Redis's fpconv uses);
/// a unit test re-derives every entry with exact integer arithmetic.
const CACHED_POWERS: [(u64, i32); 87] = [
    (0xfa8fd5a0081c0288, -1220),
    (0xbaaee17fa23ebf76, -1193),
    (0x8b16fb203055ac76, -1166),
    (0xcf42894a5dce35ea, -1140),
    (0x9a6bb0aa55653b2d, -1113),
    (0xe61acf033d1a45df, -1087),
    (0xab70fe17c79ac6ca, -1060),
    (0xff77b1fcbebcdc4f, -1034),
    (0xbe5691ef416bd60c, -1007),
    (0x8dd01fad907ffc3c, -980),
    (0xd3515c2831559a83, -954),
    (0x9d71ac8fada6c9b5, -927),
    (0xea9c227723ee8bcb, -901),
    (0xaecc49914078536d, -874),
    (0x823c12795db6ce57, -847),
    (0xc21094364dfb5637, -821),
    (0x9096ea6f3848984f, -794),
    (0xd77485cb25823ac7, -768),
    (0xa086cfcd97bf97f4, -741),
    (0xef340a98172aace5, -715),
    (0xb23867fb2a35b28e, -688),
    (0x84c8d4dfd2c63f3b, -661),
    (0xc5dd44271ad3cdba, -635),
    (0x936b9fcebb25c996, -608),
    (0xdbac6c247d62a584, -582),
    (0xa3ab66580d5fdaf6, -555),
    (0xf3e2f893dec3f126, -529),
    (0xb5b5ada8aaff80b8, -502),
    (0x87625f056c7c4a8b, -475),
    (0xc9bcff6034c13053, -449),
    (0x964e858c91ba2655, -422),
    (0xdff9772470297ebd, -396),
    (0xa6dfbd9fb8e5b88f, -369),
    (0xf8a95fcf88747d94, -343),
    (0xb94470938fa89bcf, -316),
    (0x8a08f0f8bf0f156b, -289),
    (0xcdb02555653131b6, -263),
    (0x993fe2c6d07b7fac, -236),
    (0xe45c10c42a2b3b06, -210),
    (0xaa242499697392d3, -183),
    (0xfd87b5f28300ca0e, -157),
    (0xbce5086492111aeb, -130),
    (0x8cbccc096f5088cc, -103),
    (0xd1b71758e219652c, -77),
    (0x9c40000000000000, -50),
    (0xe8d4a51000000000, -24),
    (0xad78ebc5ac620000, 3),
    (0x813f3978f8940984, 30),
    (0xc097ce7bc90715b3, 56),
    (0x8f7e32ce7bea5c70, 83),
    (0xd5d238a4abe98068, 109),
    (0x9f4f2726179a2245, 136),
    (0xed63a231d4c4fb27, 162),
    (0xb0de65388cc8ada8, 189),
    (0x83c7088e1aab65db, 216),
    (0xc45d1df942711d9a, 242),
    (0x924d692ca61be758, 269),
    (0xda01ee641a708dea, 295),
    (0xa26da3999aef774a, 322),
    (0xf209787bb47d6b85, 348),
    (0xb454e4a179dd1877, 375),
    (0x865b86925b9bc5c2, 402),
    (0xc83553c5c8965d3d, 428),
    (0x952ab45cfa97a0b3, 455),
    (0xde469fbd99a05fe3, 481),
    (0xa59bc234db398c25, 508),
    (0xf6c69a72a3989f5c, 534),
    (0xb7dcbf5354e9bece, 561),
    (0x88fcf317f22241e2, 588),
    (0xcc20ce9bd35c78a5, 614),
    (0x98165af37b2153df, 641),
    (0xe2a0b5dc971f303a, 667),
    (0xa8d9d1535ce3b396, 694),
    (0xfb9b7cd9a4a7443c, 720),
    (0xbb764c4ca7a44410, 747),
    (0x8bab8eefb6409c1a, 774),
    (0xd01fef10a657842c, 800),
    (0x9b10a4e5e9913129, 827),
    (0xe7109bfba19c0c9d, 853),
    (0xac2820d9623bf429, 880),
    (0x80444b5e7aa7cf85, 907),
    (0xbf21e44003acdd2d, 933),
    (0x8e679c2f5e44ff8f, 960),
    (0xd433179d9c8cb841, 986),
    (0x9e19db92b4e31ba9, 1013),
    (0xeb96bf6ebadf77d9, 1039),
    (0xaf87023b9bf0ee6b, 1066),
];

/// The exponent k of `CACHED_POWERS[0]`.
const CACHED_POWERS_FIRST_K: i32 = -348;

/// The step in k between consecutive entries of `CACHED_POWERS`.
const CACHED_POWERS_STEP: i32 = 8;

/// Powers of ten from 10^19 down to 10^0, as Grisu's digit loop uses them.
const POWERS_OF_TEN_DESC: [u64; 20] = {
    let mut table = [1_u64; 20];
    let mut i = 19;
    while i > 0 {
        table[i - 1] = table[i] * 10;
        i -= 1;
    }
    table
};

/// The hidden bit of an `f64` significand.
const HIDDEN_BIT: u64 = 1 << 52;

/// A "do-it-yourself" floating-point number `f × 2^e` with a 64-bit
/// significand, as used by Grisu.
#[derive(Clone, Copy)]
struct DiyFp {
    f: u64,
    e: i32,
}

impl DiyFp {
    /// The product with the upper 64 bits of the 128-bit significand
    /// product, rounded half up.
    fn mul(self, other: Self) -> Self {
        let product = u128::from(self.f) * u128::from(other.f) + (1 << 63);
        Self { f: (product >> 64) as u64, e: self.e + other.e + 64 }
    }
}

/// The digits Redis's `fpconv_dtoa` produces for a positive finite double,
/// computed with Florian Loitsch's Grisu2 algorithm exactly as fpconv runs
/// it.
///
/// Grisu2 narrows the interval of decimals that read back as the double by
/// one unit of its 64-bit arithmetic on each side, generates the shortest
/// digit string inside that narrowed interval, and then nudges the last
/// digit towards the exact value. The result always reads back as the same
/// double; it is the shortest such string for about 99.9% of doubles, and
/// otherwise one digit longer (`0.6611900000000001` for `0.66119`) or, rarely,
/// not the closest shortest string.
struct Grisu2 {
    digits: [u8; 20],
    len: usize,
    /// The decimal exponent of the last digit (`K` in fpconv).
    last_exp: i32,
}

impl Grisu2 {
    fn new(v: f64) -> Self {
        let bits = v.to_bits();
        let fraction = bits & (HIDDEN_BIT - 1);
        let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
        let w = if biased == 0 {
            DiyFp { f: fraction, e: -1074 }
        } else {
            DiyFp { f: fraction | HIDDEN_BIT, e: biased - 1075 }
        };

        // The boundaries halfway to the neighbouring doubles, with the upper
        // one normalized so its top bit is set and the lower one scaled to
        // the same exponent.
        let mut upper = DiyFp { f: (w.f << 1) + 1, e: w.e - 1 };
        while upper.f & (HIDDEN_BIT << 1) == 0 {
            upper.f <<= 1;
            upper.e -= 1;
        }
        upper.f <<= 10;
        upper.e -= 10;
        let lower_shift = if w.f == HIDDEN_BIT { 2 } else { 1 };
        let lower = DiyFp { f: ((w.f << lower_shift) - 1) << (w.e - lower_shift - upper.e), e: upper.e };

        let mut normalized = w;
        while normalized.f & HIDDEN_BIT == 0 {
            normalized.f <<= 1;
            normalized.e -= 1;
        }
        normalized.f <<= 11;
        normalized.e -= 11;

        let (power, k) = cached_power(upper.e);
        let scaled = normalized.mul(power);
        let mut upper = upper.mul(power);
        let mut lower = lower.mul(power);
        lower.f = lower.f.wrapping_add(1);
        upper.f = upper.f.wrapping_sub(1);
        Self::generate(scaled, upper, lower, -k)
    }

    /// Generates digits of `upper` until the rest falls within the interval
    /// width, then rounds the last digit towards `scaled`.
    fn generate(scaled: DiyFp, upper: DiyFp, lower: DiyFp, last_exp: i32) -> Self {
        let mut out = Self { digits: [0; 20], len: 0, last_exp: 0 };
        let distance = upper.f.wrapping_sub(scaled.f);
        let mut delta = upper.f.wrapping_sub(lower.f);
        let shift = u32::try_from(-upper.e).unwrap_or(0);
        let one = 1_u64 << shift;
        let mut integral = upper.f >> shift;
        let mut fractional = upper.f & (one - 1);
        let mut kappa = 10;
        for &divisor in &POWERS_OF_TEN_DESC[10..] {
            let digit = integral / divisor;
            out.push_digit(digit);
            integral -= digit * divisor;
            kappa -= 1;
            let rest = (integral << shift) + fractional;
            if rest <= delta {
                out.last_exp = last_exp + kappa;
                out.round_last(delta, rest, divisor << shift, distance);
                return out;
            }
        }
        let mut unit_index = 18;
        loop {
            fractional = fractional.wrapping_mul(10);
            delta = delta.wrapping_mul(10);
            kappa -= 1;
            out.push_digit(fractional >> shift);
            fractional &= one - 1;
            if fractional < delta {
                out.last_exp = last_exp + kappa;
                let unit = POWERS_OF_TEN_DESC.get(unit_index).copied().unwrap_or(1);
                out.round_last(delta, fractional, one, distance.wrapping_mul(unit));
                return out;
            }
            unit_index = unit_index.saturating_sub(1);
        }
    }

    /// Appends a digit, skipping leading zeros.
    fn push_digit(&mut self, digit: u64) {
        if (digit != 0 || self.len != 0) && self.len < self.digits.len() {
            // A single decimal digit.
            self.digits[self.len] = b'0' + digit as u8;
            self.len += 1;
        }
    }

    /// Grisu's "weeding" step: lowers the last digit while that keeps the
    /// string inside the interval and brings it closer to the exact value.
    fn round_last(&mut self, delta: u64, mut rest: u64, ten_kappa: u64, distance: u64) {
        let Some(last) = self.len.checked_sub(1) else {
            return;
        };
        while rest < distance
            && delta.wrapping_sub(rest) >= ten_kappa
            && (rest.wrapping_add(ten_kappa) < distance
                || distance.wrapping_sub(rest) > rest.wrapping_add(ten_kappa).wrapping_sub(distance))
        {
            self.digits[last] -= 1;
            rest = rest.wrapping_add(ten_kappa);
        }
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
}

/// Picks the cached power of ten that brings a number with binary exponent
/// `exp` into Grisu's working range, returning it with its decimal exponent.
fn cached_power(exp: i32) -> (DiyFp, i32) {
    const ONE_LOG_TEN: f64 = 0.301_029_995_663_981_14;
    // Truncating conversions, as in C.
    let approx = (f64::from(-(exp + 87)) * ONE_LOG_TEN) as i32;
    let mut index = (approx - CACHED_POWERS_FIRST_K) / CACHED_POWERS_STEP;
    loop {
        let (f, e) = CACHED_POWERS[usize::try_from(index).unwrap_or(0).min(86)];
        let scaled_exp = exp + e + 64;
        if scaled_exp < -60 {
            index += 1;
        } else if scaled_exp > -32 {
            index -= 1;
        } else {
            return (DiyFp { f, e }, CACHED_POWERS_FIRST_K + index * CACHED_POWERS_STEP);
        }
    }
}

/// Writes significant `digits` whose first digit has decimal exponent
/// `first_exp` in plain fixed notation (no trimming).
fn push_fixed(digits: &[u8], first_exp: i32, out: &mut Vec<u8>) {
    match usize::try_from(first_exp) {
        Ok(int_len) if int_len >= digits.len() => {
            out.extend_from_slice(digits);
            push_zeros(out, i32::try_from(int_len + 1 - digits.len()).unwrap_or(0));
        }
        Ok(int_len) => {
            let (int_part, frac_part) = digits.split_at(int_len + 1);
            out.extend_from_slice(int_part);
            out.push(b'.');
            out.extend_from_slice(frac_part);
        }
        Err(_) => {
            out.extend_from_slice(b"0.");
            push_zeros(out, -first_exp - 1);
            out.extend_from_slice(digits);
        }
    }
}

/// Removes trailing zeros of a fractional part, then a trailing `.`, from the
/// text at `out[start..]`, as `ld2string` does in `LD_STR_HUMAN` mode.
fn trim_fraction(out: &mut Vec<u8>, start: usize) {
    if !out[start..].contains(&b'.') {
        return;
    }
    while out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
}

fn push_zeros(out: &mut Vec<u8>, count: i32) {
    let count = usize::try_from(count).unwrap_or(0);
    out.resize(out.len() + count, b'0');
}

/// Significant decimal digits and the decimal exponent of the first one,
/// taken from Rust's `{:.N e}` output for a finite non-negative value (for
/// example `1.2345e-7` gives digits `12345` and exponent `-7`).
struct Decimal {
    digits: [u8; 40],
    len: usize,
    first_exp: i32,
}

impl Decimal {
    /// Formats `magnitude` in scientific notation with `precision` digits
    /// after the point, correctly rounded from its exact binary value.
    fn new(magnitude: f64, precision: usize) -> Self {
        let mut text = StackText::new();
        // The buffer fits this format for any finite f64; a failure could
        // only truncate the text, never panic.
        let _ = write!(text, "{magnitude:.precision$e}");
        let text = text.as_bytes();
        let e_pos = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
        let (mantissa, exponent) = text.split_at(e_pos);
        let first_exp =
            exponent.get(1..).and_then(|e| std::str::from_utf8(e).ok()).and_then(|e| e.parse().ok()).unwrap_or(0);
        let mut digits = [0; 40];
        let mut len = 0;
        for &byte in mantissa.iter().filter(|b| b.is_ascii_digit()) {
            if let Some(slot) = digits.get_mut(len) {
                *slot = byte;
                len += 1;
            }
        }
        Self { digits, len, first_exp }
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
}

/// A fixed-capacity text buffer used as a formatting target, so that number
/// formatting never allocates.
struct StackText {
    bytes: [u8; 48],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        Self { bytes: [0; 48], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let target = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        target.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human(v: f64) -> String {
        let mut out = Vec::new();
        format_f64_human(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn resp(v: f64) -> String {
        let mut out = Vec::new();
        format_f64_resp(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Mimics one `INCRBYFLOAT`: parse the stored text and the increment,
    /// add, and store the human-friendly text.
    fn incrbyfloat(stored: &str, incr: &str) -> String {
        let value = parse_f64(stored.as_bytes()).unwrap() + parse_f64(incr.as_bytes()).unwrap();
        human(value)
    }

    #[test]
    fn parse_cursor_follows_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"00"), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-0"), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"-18446744073709551616"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"+"), None);
        assert_eq!(parse_cursor(b" 0"), None);
        assert_eq!(parse_cursor(b"0 "), None);
        assert_eq!(parse_cursor(b"0x10"), None);
        assert_eq!(parse_cursor(b"--1"), None);
    }

    #[test]
    fn parse_i64_matches_redis_string2ll_unit_tests() {
        // The cases of test_string2ll in Redis's util.c.
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"1 "), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"1"), Some(1));
        assert_eq!(parse_i64(b"99"), Some(99));
        assert_eq!(parse_i64(b"-99"), Some(-99));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }

    #[test]
    fn parse_i64_rejects_non_canonical_text() {
        for text in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"-01",
            b"1a",
            b"a1",
            b"1.0",
            b"1e3",
            b"0x10",
            b"--1",
            b"\t1",
            b"1\0",
            b"\xff",
            b"18446744073709551615",
            b"99999999999999999999",
            b"-99999999999999999999",
        ] {
            assert_eq!(parse_i64(text), None, "{:?}", text.escape_ascii().to_string());
        }
    }

    #[test]
    fn parse_i64_rejects_texts_of_long_str_size_or_more() {
        // 21 bytes can never be a valid i64 anyway; the early exit must not
        // reject the 20-byte minimum.
        assert_eq!(parse_i64(&[b'1'; 21]), None);
        assert_eq!(parse_i64(&[b'0'; 1000]), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn parse_i64_round_trips_through_write_i64() {
        for v in [0, 1, -1, 42, -42, 1_000_000, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut out = Vec::new();
            write_i64(v, &mut out);
            assert_eq!(parse_i64(&out), Some(v));
        }
    }

    #[test]
    fn parse_u64_is_as_strict_as_string2ll() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"7"), Some(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        for text in [&b""[..], b"-1", b"-0", b"+1", b"01", b"00", b" 1", b"1 ", b"1.0", b"0x1", &[b'1'; 21]] {
            assert_eq!(parse_u64(text), None, "{:?}", text.escape_ascii().to_string());
        }
    }

    #[test]
    fn parse_f64_accepts_what_strtold_reads_completely() {
        let cases: [(&[u8], f64); 18] = [
            (b"1", 1.0),
            (b"0", 0.0),
            (b"1.5", 1.5),
            (b"-1.5", -1.5),
            (b"+1.5", 1.5),
            (b".5", 0.5),
            (b"5.", 5.0),
            (b"-.5", -0.5),
            (b"1e3", 1000.0),
            (b"1E+3", 1000.0),
            (b"2.5e-3", 0.0025),
            (b"5.0e3", 5000.0),
            (b"00012", 12.0),
            (b"10.50", 10.5),
            (b"17179869184", 17_179_869_184.0),
            (b"0.000", 0.0),
            (b"0e-400", 0.0),
            (b"4.9e-324", 4.9e-324),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_f64(text), Some(expected), "{:?}", text.escape_ascii().to_string());
        }
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
    }

    #[test]
    fn parse_f64_accepts_infinity_words_but_not_nan() {
        for text in [&b"inf"[..], b"+inf", b"INF", b"Infinity", b"+infinity", b"iNfInItY"] {
            assert_eq!(parse_f64(text), Some(f64::INFINITY));
            assert_eq!(parse_score(text), Some(f64::INFINITY));
        }
        for text in [&b"-inf"[..], b"-INF", b"-Infinity"] {
            assert_eq!(parse_f64(text), Some(f64::NEG_INFINITY));
            assert_eq!(parse_score(text), Some(f64::NEG_INFINITY));
        }
        for text in [&b"nan"[..], b"NaN", b"-nan", b"+nan", b"nan(1)", b"infinit", b"infx", b"in"] {
            assert_eq!(parse_f64(text), None);
            assert_eq!(parse_score(text), None);
        }
    }

    #[test]
    fn parse_f64_rejects_whitespace_garbage_and_range_errors() {
        for text in [
            &b""[..],
            b" ",
            b"  ",
            b" 1",
            b"\t1",
            b"\n1",
            b"1 ",
            b" 11 ",
            b"    11",
            b"11    ",
            b"1\0",
            b"1\x002",
            b"1.5x",
            b"1e",
            b"1e+",
            b"1e-",
            b"e3",
            b".",
            b"-.",
            b".e1",
            b"+",
            b"-",
            b"++1",
            b"+-1",
            b"-+1",
            b"--1",
            b"1,5",
            b"1_000",
            b"1..2",
            b"0x",
            b"0x.",
            b"0xg",
            b"0x1p",
            b"0x1p+",
            b"0x1.8p1x",
            b"x1",
            b"\xff",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"-2e-324",
            b"1.8e308",
        ] {
            assert_eq!(parse_f64(text), None, "{:?}", text.escape_ascii().to_string());
            assert_eq!(parse_score(text), None, "{:?}", text.escape_ascii().to_string());
        }
    }

    #[test]
    fn parse_f64_reads_hexadecimal_floats_like_strtod() {
        let cases: [(&[u8], f64); 14] = [
            (b"0x10", 16.0),
            (b"0X1P4", 16.0),
            (b"0x1.8p1", 3.0),
            (b"-0x1p-2", -0.25),
            (b"+0x.8", 0.5),
            (b"0x8.", 8.0),
            (b"0x0", 0.0),
            (b"0x0p99999999999", 0.0),
            (b"0x1p-1074", 5e-324),
            (b"0x1.8p-1075", 5e-324),
            (b"0x0.0000000000001p-1022", 5e-324),
            (b"0x1.fffffffffffffp1023", f64::MAX),
            (b"0x1p-1022", f64::MIN_POSITIVE),
            (b"0x1000000000000000000000000000000", 1_329_227_995_784_915_872_903_807_060_280_344_576.0),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_f64(text), Some(expected), "{:?}", text.escape_ascii().to_string());
        }
        // Ties round to even; anything past the tie rounds up.
        assert_eq!(parse_f64(b"0x1.00000000000008p0"), Some(1.0));
        assert_eq!(parse_f64(b"0x1.000000000000080000000001p0"), Some(1.0 + f64::EPSILON));
        assert_eq!(parse_f64(b"0x1.00000000000018p0"), Some(1.0 + 2.0 * f64::EPSILON));
        assert_eq!(parse_f64(b"0x1.fffffffffffff8p0"), Some(2.0));
        // Overflow and underflow to zero are range errors.
        assert_eq!(parse_f64(b"0x1.fffffffffffff8p1023"), None);
        assert_eq!(parse_f64(b"0x1p1024"), None);
        assert_eq!(parse_f64(b"0x1p-1075"), None);
        assert_eq!(parse_f64(b"0x1p-99999999999"), None);
    }

    #[test]
    fn parse_f64_has_the_string2ld_length_limit_but_parse_score_does_not() {
        let mut long = b"1.".to_vec();
        long.resize(MAX_LONG_DOUBLE_CHARS - 1, b'0');
        assert_eq!(parse_f64(&long), Some(1.0));
        long.push(b'0');
        assert_eq!(parse_f64(&long), None);
        assert_eq!(parse_score(&long), Some(1.0));
    }

    #[test]
    fn parse_score_follows_string2d() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-3"), Some(-3.0));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e308"), Some(1e308));
        assert_eq!(parse_score(b"1e309"), None);
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b""), None);
        assert_eq!(parse_score(b"abc"), None);
    }

    #[test]
    fn integer_scores_parse_as_the_float_parser_reads_them() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut texts: Vec<String> =
            ["0", "000000031927", "9007199254740993", "18446744073709551615", "9999999999999999999"]
                .map(String::from)
                .into();
        texts.extend((0..2000).map(|_| {
            let digits = rng.usize(1..=19);
            (0..digits).map(|_| char::from(b'0' + rng.u8(..10))).collect()
        }));
        for t in &texts {
            let want: f64 = t.parse().expect("digits");
            assert_eq!(parse_score(t.as_bytes()).map(f64::to_bits), Some(want.to_bits()), "{t}");
            let negative = parse_score(format!("-{t}").as_bytes()).expect("digits");
            assert_eq!(negative.to_bits(), (-want).to_bits(), "-{t}");
        }
        assert!(parse_score(b"-0").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
        assert_eq!(parse_score(b"+12"), Some(12.0));
        assert_eq!(parse_score(b"12345678901234567890123"), Some(12345678901234567890123.0));
    }

    #[test]
    fn format_f64_human_matches_incrbyfloat_results() {
        assert_eq!(human(10.5), "10.5");
        assert_eq!(human(3.0), "3");
        assert_eq!(human(5.0e3), "5000");
        assert_eq!(human(-1.5), "-1.5");
        assert_eq!(human(1.0 / 3.0), "0.333333333333333");
        assert_eq!(human(10.1 + 0.2), "10.3");
        assert_eq!(human(1.5e-5), "0.000015");
        assert_eq!(human(1e20), "100000000000000000000");
        assert_eq!(human(0.1 + 0.2), "0.3");
        assert_eq!(human(1.0 - 1.1), "-0.1");
        assert_eq!(human(17_179_869_184.0 + 1.5), "17179869185.5");
        assert_eq!(human(17_179_869_184.0 * 2.0), "34359738368");
        // 17 significant digits: an f64 cannot tell these from noise.
        assert_eq!(human(1e15 + 0.5), "1000000000000000");
        assert_eq!(human(123_456.789e3), "123456789");
        assert_eq!(human(-2.5e-10), "-0.00000000025");
    }

    #[test]
    fn format_f64_human_sums_of_a_tenth_show_as_one() {
        let mut sum = 0.0;
        for _ in 0..10 {
            sum += 0.1;
        }
        assert_ne!(sum, 1.0);
        assert_eq!(human(sum), "1");

        // The same through stored strings, as ten INCRBYFLOAT calls do.
        let mut stored = String::from("0");
        let mut seen = Vec::new();
        for _ in 0..10 {
            stored = incrbyfloat(&stored, "0.1");
            seen.push(stored.clone());
        }
        assert_eq!(seen, ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]);
    }

    #[test]
    fn format_f64_human_follows_the_incrbyfloat_documentation_example() {
        // SET mykey 10.50; INCRBYFLOAT mykey 0.1; INCRBYFLOAT mykey -5;
        // SET mykey 5.0e3; INCRBYFLOAT mykey 2.0e2.
        let stored = incrbyfloat("10.50", "0.1");
        assert_eq!(stored, "10.6");
        assert_eq!(incrbyfloat(&stored, "-5"), "5.6");
        assert_eq!(incrbyfloat("5.0e3", "2.0e2"), "5200");
    }

    #[test]
    fn format_f64_human_never_shows_negative_zero() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(-0.0), "0");
        // Redis's "No negative zero" test: x + -x.
        let x = 1.0 / 41.0;
        assert_eq!(human(x + -x), "0");
        // Too small for 17 fractional digits.
        assert_eq!(human(1e-20), "0");
        assert_eq!(human(-1e-20), "0");
        assert_eq!(human(4e-18), "0");
        assert_eq!(human(6e-18), "0.00000000000000001");
    }

    #[test]
    fn format_f64_human_keeps_integers_exact_below_2_pow_53() {
        assert_eq!(human(9_007_199_254_740_991.0), "9007199254740991");
        assert_eq!(human(-9_007_199_254_740_991.0), "-9007199254740991");
        assert_eq!(human(1_234_567_890_123_456.0), "1234567890123456");
        // Beyond 2^53 the value is rounded to 15 significant digits.
        assert_eq!(human(9_007_199_254_740_992.0), "9007199254740990");
        assert_eq!(human(1e300).len(), 301);
    }

    #[test]
    fn format_f64_human_caps_fraction_at_17_digits() {
        assert_eq!(human(1.0 / 3.0 * 1e-3), "0.00033333333333333");
        assert_eq!(human(1.0 / 3.0 * 1e-2), "0.00333333333333333");
        assert_eq!(human(2.0 / 3.0 * 1e-10), "0.00000000006666667");
        assert_eq!(human(0.001), "0.001");
        assert_eq!(human(0.000_999_999_999_999_999_9), "0.001");
    }

    #[test]
    fn format_f64_human_output_parses_back() {
        for v in [0.1, 2.5, -7.25, 1e-7, 123.456, 1e18, -3.0e-17] {
            let text = human(v);
            assert!(!text.contains('e'), "{text}");
            assert!(parse_f64(text.as_bytes()).is_some(), "{text}");
        }
    }

    #[test]
    fn format_f64_human_spells_non_finite_values_like_ld2string() {
        assert_eq!(human(f64::INFINITY), "inf");
        assert_eq!(human(f64::NEG_INFINITY), "-inf");
        assert_eq!(human(f64::NAN), "nan");
    }

    #[test]
    fn format_f64_resp_uses_d2string_special_cases() {
        assert_eq!(resp(f64::INFINITY), "inf");
        assert_eq!(resp(f64::NEG_INFINITY), "-inf");
        assert_eq!(resp(f64::NAN), "nan");
        assert_eq!(resp(0.0), "0");
        assert_eq!(resp(-0.0), "-0");
    }

    #[test]
    fn format_f64_resp_prints_integral_values_as_integers_up_to_2_pow_62() {
        assert_eq!(resp(3.0), "3");
        assert_eq!(resp(-42.0), "-42");
        assert_eq!(resp(1e15), "1000000000000000");
        assert_eq!(resp(1e18), "1000000000000000000");
        assert_eq!(resp(4_611_686_018_427_387_904.0), "4611686018427387904");
        assert_eq!(resp(-4_611_686_018_427_387_904.0), "-4611686018427387904");
        // Past 2^62 fpconv takes over: shortest digits, zero padded.
        assert_eq!(resp(6_917_529_027_641_081_856.0), "6917529027641082000");
        assert_eq!(resp(9_223_372_036_854_775_808.0), "9223372036854776000");
        assert_eq!(resp(1e19), "1e+19");
        assert_eq!(resp(1e20), "1e+20");
        assert_eq!(resp(1.5e20), "1.5e+20");
        assert_eq!(resp(1e22), "1e+22");
        assert_eq!(resp(-1e22), "-1e+22");
        assert_eq!(resp(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(resp(1.5e300), "1.5e+300");
    }

    #[test]
    fn format_f64_resp_uses_shortest_digits_with_fpconv_layout() {
        assert_eq!(resp(1.1), "1.1");
        assert_eq!(resp(1.5), "1.5");
        assert_eq!(resp(-1.5), "-1.5");
        assert_eq!(resp(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(resp(123_456.789), "123456.789");
        assert_eq!(resp(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(resp(2.0 / 3.0), "0.6666666666666666");
        assert_eq!(resp(1e-5), "0.00001");
        assert_eq!(resp(1.5e-5), "0.000015");
        assert_eq!(resp(0.123_456_7), "0.1234567");
        assert_eq!(resp(0.001_234_567), "0.001234567");
        assert_eq!(resp(0.000_123_456_7), "1.234567e-4");
        assert_eq!(resp(1e-6), "0.000001");
        assert_eq!(resp(1.23e-6), "1.23e-6");
        assert_eq!(resp(1e-7), "1e-7");
        assert_eq!(resp(1.5e-7), "1.5e-7");
        assert_eq!(resp(-1.5e-7), "-1.5e-7");
        assert_eq!(resp(1e-100), "1e-100");
        assert_eq!(resp(5e-324), "5e-324");
        assert_eq!(resp(f64::MIN_POSITIVE), "2.2250738585072014e-308");
    }

    #[test]
    fn format_f64_resp_output_parses_back_exactly() {
        // Every binary exponent, with the smallest and largest significands.
        for biased in 0..2047_u64 {
            for fraction in [0, 1, (1 << 52) - 1] {
                let v = f64::from_bits((biased << 52) | fraction);
                let text = resp(v);
                assert_eq!(parse_score(text.as_bytes()), Some(v), "{text}");
            }
        }
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = f64::from_bits(state);
            if !v.is_finite() {
                continue;
            }
            let text = resp(v);
            let back = parse_score(text.as_bytes()).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
        }
    }

    #[test]
    fn format_f64_resp_reproduces_grisu2_quirks() {
        // Grisu2 is not always shortest or closest; Redis 7.2 shows these.
        assert_eq!(resp(0.66119), "0.6611900000000001");
        assert_eq!(resp(0.02133), "0.021329999999999998");
        assert_eq!(resp(5_145.650_000_000_001), "5145.6500000000005");
        assert_eq!(resp(632_795_108_929_042.8), "632795108929042.7");
        assert_eq!(resp(1.289_949_670_882_212e235), "1.2899496708822121e+235");
        assert_eq!(resp(9.888_552_851_300_72e-308), "9.888552851300719e-308");
        assert_eq!(resp(1e23), "99999999999999990000000");
        // ...while most values come out shortest.
        assert_eq!(resp(7091.15), "7091.15");
        assert_eq!(resp(123_456_789_012.345), "123456789012.345");
    }

    /// A minimal unsigned big integer (little-endian 64-bit limbs), enough
    /// to check the cached powers of ten exactly.
    #[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
    struct Big(Vec<u64>);

    impl Big {
        fn one() -> Self {
            Big(vec![1])
        }

        fn mul_small(mut self, factor: u64) -> Self {
            let mut carry = 0_u128;
            for limb in &mut self.0 {
                let product = u128::from(*limb) * u128::from(factor) + carry;
                *limb = product as u64;
                carry = product >> 64;
            }
            if carry != 0 {
                self.0.push(carry as u64);
            }
            self
        }

        fn pow10(n: i32) -> Self {
            (0..n).fold(Self::one(), |big, _| big.mul_small(10))
        }

        fn pow2(n: i32) -> Self {
            (0..n).fold(Self::one(), |big, _| big.mul_small(2))
        }

        fn mul(&self, other: &Self) -> Self {
            let mut result = vec![0_u64; self.0.len() + other.0.len()];
            for (i, &a) in self.0.iter().enumerate() {
                let mut carry = 0_u128;
                for (j, &b) in other.0.iter().enumerate() {
                    let sum = u128::from(a) * u128::from(b) + u128::from(result[i + j]) + carry;
                    result[i + j] = sum as u64;
                    carry = sum >> 64;
                }
                result[i + other.0.len()] = carry as u64;
            }
            Big(result).trimmed()
        }

        fn trimmed(mut self) -> Self {
            while self.0.len() > 1 && self.0.last() == Some(&0) {
                self.0.pop();
            }
            self
        }

        fn cmp_value(&self, other: &Self) -> std::cmp::Ordering {
            let (a, b) = (self.clone().trimmed(), other.clone().trimmed());
            a.0.len().cmp(&b.0.len()).then_with(|| a.0.iter().rev().cmp(b.0.iter().rev()))
        }

        /// `self - other`, for `self >= other`.
        fn sub(&self, other: &Self) -> Self {
            let mut result = self.0.clone();
            let mut borrow = false;
            for (i, limb) in result.iter_mut().enumerate() {
                let (d1, b1) = limb.overflowing_sub(other.0.get(i).copied().unwrap_or(0));
                let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
                *limb = d2;
                borrow = b1 || b2;
            }
            Big(result).trimmed()
        }
    }

    #[test]
    fn cached_powers_are_nearest_normalized_powers_of_ten() {
        for (i, &(f, e)) in CACHED_POWERS.iter().enumerate() {
            let k = CACHED_POWERS_FIRST_K + CACHED_POWERS_STEP * i32::try_from(i).unwrap();
            assert!(f >> 63 == 1, "entry {i} is not normalized");
            // f is nearest to 10^k / 2^e  <=>  |2 f Den - 2 Num| <= Den,
            // with 10^k / 2^e = Num / Den.
            let num = Big::pow10(k.max(0)).mul(&Big::pow2((-e).max(0)));
            let den = Big::pow10((-k).max(0)).mul(&Big::pow2(e.max(0)));
            let twice_f_den = den.clone().mul_small(f).mul_small(2);
            let twice_num = num.mul_small(2);
            let diff = if twice_f_den.cmp_value(&twice_num).is_ge() {
                twice_f_den.sub(&twice_num)
            } else {
                twice_num.sub(&twice_f_den)
            };
            assert!(diff.cmp_value(&den).is_le(), "entry {i} (10^{k}) is not nearest");
        }
    }

    #[test]
    fn write_i64_writes_ll2string_text() {
        let mut out = Vec::new();
        write_i64(0, &mut out);
        out.push(b' ');
        write_i64(-1, &mut out);
        out.push(b' ');
        write_i64(i64::MIN, &mut out);
        out.push(b' ');
        write_i64(i64::MAX, &mut out);
        assert_eq!(out, b"0 -1 -9223372036854775808 9223372036854775807");
    }
}
