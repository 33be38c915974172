//! Glob-style matching with the exact semantics of Redis's `stringmatchlen` (KEYS, SCAN MATCH,
//! CONFIG GET, PSUBSCRIBE): `*`, `?`, `[...]` with `^`, ranges (reversed ranges swapped) and `\`
//! escapes, an unterminated `[` treated as a set ending at the pattern's end.
//!
//! Why not naive recursion: a pattern like `*a*a*a*a*b` against a long string of `a`s is
//! exponential. Like Redis 7.0 we stop trying longer matches for an earlier `*` once a later one
//! has exhausted the string (no longer suffix can then match), and cap recursion depth.

const MAX_NESTING: usize = 1000;

pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    // Redis's loop runs only while both have characters left: an empty string matches only
    // an empty pattern, not even `*` (KEYS * and SCAN's * skip matching altogether).
    if string.is_empty() {
        return pattern.is_empty();
    }
    let mut skip_longer = false;
    matches(pattern, string, nocase, &mut skip_longer, 0)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase { a.eq_ignore_ascii_case(&b) } else { a == b }
}

fn matches(mut p: &[u8], mut s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: usize) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if matches(&p[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                // The string is exhausted: no later `*` retry can succeed either.
                *skip_longer = true;
                return false;
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
            }
            b'[' => {
                let Some(&c) = s.first() else { return false };
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    match p {
                        [] => break, // unterminated set: ends with the pattern
                        [b'\\', rest @ ..] if !rest.is_empty() => {
                            if rest[0] == c {
                                matched = true;
                            }
                            p = &p[2..];
                        }
                        [b'\\'] => {
                            p = &p[1..];
                        }
                        [b']', ..] => break,
                        [a, b'-', b, ..] => {
                            let (mut lo, mut hi, mut ch) = (*a, *b, c);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            if nocase {
                                lo = lo.to_ascii_lowercase();
                                hi = hi.to_ascii_lowercase();
                                ch = ch.to_ascii_lowercase();
                            }
                            if ch >= lo && ch <= hi {
                                matched = true;
                            }
                            p = &p[3..];
                        }
                        [a, ..] => {
                            if eq(*a, c, nocase) {
                                matched = true;
                            }
                            p = &p[1..];
                        }
                    }
                }
                if matched == not {
                    return false;
                }
                s = &s[1..];
                // `p` is at the closing `]` (or empty); the common advance below skips it.
                if p.is_empty() {
                    return s.is_empty();
                }
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if s.is_empty() || !eq(p[0], s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if s.is_empty() || !eq(c, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn basics() {
        assert!(!m(b"*", b"", false));
        assert!(m(b"", b"", false));
        assert!(m(b"h?llo", b"hello", false));
        assert!(m(b"h*llo", b"heeeello", false));
        assert!(m(b"h[ae]llo", b"hallo", false));
        assert!(!m(b"h[^e]llo", b"hello", false));
        assert!(m(b"h[a-b]llo", b"hbllo", false));
        assert!(m(b"h[b-a]llo", b"hbllo", false));
        assert!(m(b"h\\*llo", b"h*llo", false));
        assert!(!m(b"h\\*llo", b"hello", false));
        assert!(m(b"HELLO", b"hello", true));
        assert!(m(b"a[bc", b"ab", false));
        assert!(!m(b"", b"a", false));
        assert!(m(b"a*", b"a", false));
        assert!(!m(b"?", b"", false));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let s = vec![b'a'; 5000];
        let p = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let t = std::time::Instant::now();
        assert!(!m(p, &s, false));
        assert!(t.elapsed().as_secs() < 2);
    }
}
