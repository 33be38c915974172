//! Number parsing and printing exactly as Redis does it: `%.17g` doubles, strict integers,
//! strtod-style floats that refuse NaN and surrounding spaces.

/// Parses a strict decimal integer the way Redis's string2ll does (no spaces, no `+`, no leading zeros).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Formats like C's `printf("%.17g")`, which is how Redis 7.0 prints doubles (scores, RESP3 `,`).
pub fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        // glibc's printf shows the sign bit (0/0 in Lua is -nan on x86).
        return if d.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if let Some(n) = integral_double(d) {
        return n.to_string();
    }
    fmt_g(d, 17)
}

/// Integral values below 1e17 print as plain integers under %.17g (all their digits fit in 17
/// significant ones): the common case for scores, without the scientific round trip.
pub fn integral_double(d: f64) -> Option<i64> {
    (d.fract() == 0.0 && d.abs() < 1e17 && d != 0.0).then_some(d as i64)
}

/// `%.{prec}g` for a finite double.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{d:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// Redis's `d2string`/`addReplyDouble` for integral doubles in the safe range prints them as
/// integers; elsewhere `%.17g`.
pub fn fmt_double_human(d: f64) -> String {
    if d.is_finite() && d.fract() == 0.0 && d.abs() < 4503599627370496.0 && d != 0.0 {
        return format!("{}", d as i64);
    }
    fmt_double(d)
}

/// C's `isspace` in the C locale (Rust's `is_ascii_whitespace` leaves out `\v`).
pub fn c_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's `strtod` makes of a string: the value, how many bytes it converted (0 when
/// nothing converts: strtod's `endptr == nptr`), and whether it set `errno` to ERANGE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Strtod {
    pub value: f64,
    pub end: usize,
    pub range_error: bool,
}

impl Strtod {
    /// True when the conversion stopped where C sees the string end: its last byte or a NUL.
    pub fn reached_nul(&self, s: &[u8]) -> bool {
        s.get(self.end).is_none_or(|&c| c == 0)
    }
}

/// C's `strtod` (C locale): leading white space skipped, decimal and hexadecimal forms,
/// `inf`/`infinity`, `nan(...)`. Redis parses every double argument with it, so its
/// leniencies (hex floats, `1e400` as an overflow) decide Redis's replies.
pub fn strtod(s: &[u8]) -> Strtod {
    // Plain decimals (the common case) by Rust's correctly rounded parser, which agrees with
    // glibc's; anything else by the C library itself.
    let decimal =
        !s.is_empty() && s.iter().all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'));
    if decimal && let Some(v) = std::str::from_utf8(s).ok().and_then(|t| t.parse::<f64>().ok()) {
        let mantissa = s.split(|&c| c == b'e' || c == b'E').next().unwrap_or(s);
        let underflow = (v == 0.0 && mantissa.iter().any(|&c| (b'1'..=b'9').contains(&c))) || v.is_subnormal();
        return Strtod { value: v, end: s.len(), range_error: v.is_infinite() || underflow };
    }
    libc_strtod(s)
}

/// The longest argument handed to the C library (it needs a NUL-terminated copy): past this,
/// a string that is not a plain decimal is not a number. Redis would still read, say, a
/// 100 KB hexadecimal float; nobody sends one, and the copy stays small.
const MAX_C_STRTOD: usize = 64 * 1024;

fn libc_strtod(s: &[u8]) -> Strtod {
    if s.len() > MAX_C_STRTOD {
        return Strtod { value: 0.0, end: 0, range_error: false };
    }
    let mut buf = Vec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    let start = buf.as_ptr().cast::<libc::c_char>();
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; strtod reads up to that NUL and
    // points `end` into `buf` (at `start` when nothing converts). errno is per thread.
    unsafe {
        *libc::__errno_location() = 0;
        let value = libc::strtod(start, &mut end);
        let range_error = *libc::__errno_location() == libc::ERANGE;
        let end = usize::try_from(end.offset_from(start)).unwrap_or(0).min(s.len());
        Strtod { value, end, range_error }
    }
}

/// Parses a double the way Redis's `string2d`/`getDoubleFromObject` accepts it: strtod over
/// the whole string, none of it left, no leading space, NaN refused, and no overflow to
/// ±HUGE_VAL or underflow to zero (`inf` itself is fine; `1e400` is not).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.first().is_none_or(|&c| c_isspace(c)) {
        return None;
    }
    let r = strtod(s);
    let bad_range = r.range_error && (r.value.is_infinite() || r.value == 0.0);
    (r.end == s.len() && !bad_range && !r.value.is_nan()).then_some(r.value)
}

/// A score range bound's number as `zslParseRange` reads it: bare strtod whose end must be
/// the string's end (or a NUL), NaN refused; leading space, overflow and an empty string
/// (zero) are accepted.
pub fn parse_range_f64(s: &[u8]) -> Option<f64> {
    let r = strtod(s);
    (r.reached_nul(s) && !r.value.is_nan()).then_some(r.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_fast_path_matches_g17() {
        for d in [
            1.0,
            -1.0,
            500000.0,
            123456789012345.0,
            99999999999999999.0,
            -99999999999999984.0,
            1e16,
            4503599627370496.0,
        ] {
            assert_eq!(fmt_double(d), fmt_g(d, 17), "{d}");
        }
        assert_eq!(fmt_double(1e17), "1e+17");
        assert_eq!(fmt_double(-0.0), "-0");
        assert_eq!(fmt_double(0.0), "0");
    }

    #[test]
    fn g17_matches_printf() {
        assert_eq!(fmt_double(1.1), "1.1000000000000001");
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(100.0), "100");
        assert_eq!(fmt_double(1e17), "1e+17");
        assert_eq!(fmt_double(1e16), "10000000000000000");
        assert_eq!(fmt_double(0.0001), "0.0001");
        assert_eq!(fmt_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(fmt_double(-2.5e-300), "-2.5e-300");
        assert_eq!(fmt_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt_double(-0.0), "-0");
    }

    #[test]
    fn parse_float() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(parse_f64(b""), None);
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"0X1.8P1"), Some(3.0));
        assert_eq!(parse_f64(b"1e400"), None);
        assert_eq!(parse_f64(b"-1e400"), None);
        assert_eq!(parse_f64(b"1e-400"), None);
        assert_eq!(parse_f64(b"0x1p-2000"), None);
        assert_eq!(parse_f64(b"4e-320"), Some(4e-320));
        assert_eq!(parse_f64(b"INFINITY"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-0"), Some(-0.0));
        assert_eq!(parse_f64(b"\x0b1"), None);
        assert_eq!(parse_f64(b"1 "), None);
        assert_eq!(parse_f64(b"1\x002"), None);
        assert_eq!(parse_f64(b"0x"), None);
        assert_eq!(parse_f64(b"1e"), None);
        assert_eq!(parse_f64(b"nan(1)"), None);
        assert_eq!(parse_range_f64(b""), Some(0.0));
        assert_eq!(parse_range_f64(b" 1"), Some(1.0));
        assert_eq!(parse_range_f64(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_f64(b"1e-400"), Some(0.0));
        assert_eq!(parse_range_f64(b"1\x002"), Some(1.0));
        assert_eq!(parse_range_f64(b" "), None);
        assert_eq!(parse_range_f64(b"1 "), None);
        assert_eq!(parse_range_f64(b"nan"), None);
    }
}
