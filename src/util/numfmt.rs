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
        return "nan".into();
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

/// Parses a double the way Redis's `string2d`/`getDoubleFromObject` accepts it: the whole
/// string must be consumed, no leading space, NaN refused. `inf`, `-inf`, `+inf`, hex floats
/// are accepted by strtod; we accept the decimal and infinity forms.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let st = std::str::from_utf8(s).ok()?;
    if st.is_empty() || st.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v = if st.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+')) {
        st.parse::<f64>().ok()?
    } else if ["inf", "+inf", "infinity", "+infinity"].iter().any(|w| st.eq_ignore_ascii_case(w)) {
        f64::INFINITY
    } else if ["-inf", "-infinity"].iter().any(|w| st.eq_ignore_ascii_case(w)) {
        f64::NEG_INFINITY
    } else {
        // Rust would also take "nan"; Redis refuses anything else non-numeric.
        return None;
    };
    if v.is_nan() { None } else { Some(v) }
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
    }
}
