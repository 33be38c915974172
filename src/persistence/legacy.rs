//! The encodings Redis 7.0 still reads from old RDB files and DUMP payloads but no longer
//! writes: ziplists (Redis 6's small lists, hashes and sorted sets), zipmaps (Redis 2.x
//! hashes) and intsets. Each decoder refuses exactly what Redis's deep integrity check
//! (`sanitize-dump-payload yes`) refuses: every length and header field is checked against
//! the buffer, a ziplist's back links and tail offset must agree with its entries, and a
//! count in a header must match what follows. Ember always checks deeply: it builds its
//! own structures from these bytes, so nothing damaged can reach a later command.

/// A ziplist's entries as strings (integers in decimal, as Redis converts them), or None
/// if it is malformed in any way.
pub fn ziplist_decode(b: &[u8]) -> Option<Vec<Vec<u8>>> {
    const HEADER: usize = 10;
    if b.len() < HEADER + 1 {
        return None;
    }
    let u32_at = |p: usize| b.get(p..p + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes);
    let total = u32_at(0)? as usize;
    let tail = u32_at(4)? as usize;
    let declared = u16::from_le_bytes([b[8], b[9]]);
    let last = b.len() - 1; // the terminator's index: nothing may reach past it
    if total != b.len() || b[last] != 0xFF || tail > last {
        return None;
    }
    let mut out = Vec::new();
    let mut p = HEADER;
    let mut prev_start = None;
    let mut prev_size = 0usize;
    while b[p] != 0xFF {
        let (prevlen, prevlen_size) = if b[p] < 254 { (b[p] as usize, 1) } else { (u32_at(p + 1)? as usize, 5) };
        // The back link must name the previous entry's size exactly (0 for the first).
        if prevlen != prev_size || p + prevlen_size > last {
            return None;
        }
        let e = p + prevlen_size;
        let enc = if b[e] < 0xC0 { b[e] & 0xC0 } else { b[e] };
        let lensize = match enc {
            0x00 | 0xC0 | 0xD0 | 0xE0 | 0xF0 | 0xFE | 0xF1..=0xFD => 1,
            0x40 => 2,
            0x80 => 5,
            _ => return None,
        };
        if e + lensize > last {
            return None;
        }
        let data = e + lensize;
        let len = match enc {
            0x00 => (b[e] & 0x3f) as usize,
            0x40 => (((b[e] & 0x3f) as usize) << 8) | b[e + 1] as usize,
            0x80 => u32::from_be_bytes(b[e + 1..e + 5].try_into().ok()?) as usize,
            0xC0 => 2,
            0xD0 => 4,
            0xE0 => 8,
            0xF0 => 3,
            0xFE => 1,
            _ => 0, // 0xF1..=0xFD: the value is in the encoding byte
        };
        let end = data.checked_add(len)?;
        if end > last {
            return None;
        }
        let s = &b[data..end];
        out.push(match enc {
            0x00 | 0x40 | 0x80 => s.to_vec(),
            _ => {
                let n: i64 = match enc {
                    0xC0 => i16::from_le_bytes(s.try_into().ok()?) as i64,
                    0xD0 => i32::from_le_bytes(s.try_into().ok()?) as i64,
                    0xE0 => i64::from_le_bytes(s.try_into().ok()?),
                    0xF0 => ((i32::from(s[0]) | (i32::from(s[1]) << 8) | (i32::from(s[2]) << 16)) << 8 >> 8) as i64,
                    0xFE => s[0] as i8 as i64,
                    _ => (enc & 0x0f) as i64 - 1,
                };
                n.to_string().into_bytes()
            }
        });
        prev_start = Some(p);
        prev_size = end - p;
        p = end;
    }
    // The loop stopped at a 0xFF: it must be the terminator, the tail offset must point at
    // the last entry, and a header count (0xFFFF: too many to count) must be the entries'.
    if p != last || prev_start.is_some_and(|s| s != tail) {
        return None;
    }
    if declared != u16::MAX && declared as usize != out.len() {
        return None;
    }
    Some(out)
}

/// A zipmap's pairs: a count byte (254: too many to count), then per pair a length, the
/// field, a length, a free-space byte, the value and its padding, then 0xFF. Refused when
/// malformed or empty (Redis's check), not when it holds a field twice (the caller's check).
pub fn zipmap_decode(b: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if b.len() < 2 || *b.last()? != 0xFF {
        return None;
    }
    let last = b.len() - 1;
    // A length: one byte below 254, else the 4 bytes after it.
    let len = |p: &mut usize| -> Option<usize> {
        let first = *b.get(*p)?;
        let (n, size) = if first < 254 {
            (first as usize, 1)
        } else {
            (u32::from_le_bytes(b.get(*p + 1..*p + 5)?.try_into().ok()?) as usize, 5)
        };
        if *p + size > last {
            return None;
        }
        *p += size;
        Some(n)
    };
    let mut p = 1;
    let mut out = Vec::new();
    while b[p] != 0xFF {
        let flen = len(&mut p)?;
        let field = b.get(p..p.checked_add(flen)?)?.to_vec();
        p += flen;
        if p > last {
            return None;
        }
        let vlen = len(&mut p)?;
        let free = *b.get(p)? as usize;
        p += 1;
        let value = b.get(p..p.checked_add(vlen)?)?.to_vec();
        p = p.checked_add(vlen + free)?;
        if p > last {
            return None;
        }
        out.push((field, value));
    }
    if out.is_empty() || (b[0] != 254 && b[0] as usize != out.len()) {
        return None;
    }
    Some(out)
}

/// An intset's members: a width (2, 4 or 8), a count, then the members little-endian in
/// strictly increasing order. Empty, unsorted or repeated members are refused, as Redis's
/// check refuses them.
pub fn intset_members(b: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let n = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || n == 0 || b.len() != 8 + width.checked_mul(n)? {
        return None;
    }
    let mut out: Vec<i64> = Vec::with_capacity(n.min(4096));
    for c in b[8..].chunks(width) {
        let v = match width {
            2 => i16::from_le_bytes(c.try_into().ok()?) as i64,
            4 => i32::from_le_bytes(c.try_into().ok()?) as i64,
            _ => i64::from_le_bytes(c.try_into().ok()?),
        };
        if out.last().is_some_and(|&prev| v <= prev) {
            return None;
        }
        out.push(v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ziplist built as Redis lays it out: strings and small integers.
    fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = 10;
        for e in entries {
            tail = 10 + body.len();
            let start = body.len();
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(254);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match std::str::from_utf8(e).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(n) if (0..=12).contains(&n) => body.push(0xF1 + n as u8),
                Some(n) if i16::try_from(n).is_ok() => {
                    body.push(0xC0);
                    body.extend_from_slice(&(n as i16).to_le_bytes());
                }
                _ if e.len() < 64 => {
                    body.push(e.len() as u8);
                    body.extend_from_slice(e);
                }
                _ => {
                    body.extend_from_slice(&[0x40 | (e.len() >> 8) as u8, e.len() as u8]);
                    body.extend_from_slice(e);
                }
            }
            prev = body.len() - start;
        }
        let mut zl = Vec::new();
        zl.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xFF);
        zl
    }

    #[test]
    fn a_well_formed_ziplist_decodes_and_every_damage_is_refused() {
        let big = vec![b'x'; 300];
        let items: Vec<&[u8]> = vec![b"a", b"5", b"-1000", b"hello", &big, b"12"];
        let zl = ziplist(&items);
        let got = ziplist_decode(&zl).unwrap();
        assert_eq!(got, items.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
        for cut in 0..zl.len() {
            assert!(ziplist_decode(&zl[..cut]).is_none());
        }
        // A wrong count, tail offset or back link: each is refused.
        for (at, v) in [(8, 7u8), (4, 11), (10 + 3, 9)] {
            let mut bad = zl.clone();
            bad[at] = v;
            assert!(ziplist_decode(&bad).is_none(), "byte {at} = {v} accepted");
        }
        for i in 0..zl.len() {
            let mut bad = zl.clone();
            bad[i] ^= 0x5a;
            let _ = ziplist_decode(&bad);
        }
        // 0xFFFF: the count is unknown, not checked.
        let mut unknown = zl.clone();
        unknown[8..10].copy_from_slice(&[0xFF, 0xFF]);
        assert!(ziplist_decode(&unknown).is_some());
    }

    #[test]
    fn zipmaps_and_intsets_are_checked_as_redis_checks_them() {
        // {"a": "1", "name": "zz"}: count, then length/field, length/free/value/padding.
        let fixed = b"\x02\x01a\x01\x011\x00\x04name\x02\x00zz\xff".to_vec();
        let pairs = zipmap_decode(&fixed).unwrap();
        assert_eq!(pairs, vec![(b"a".to_vec(), b"1".to_vec()), (b"name".to_vec(), b"zz".to_vec())]);
        for cut in 0..fixed.len() {
            assert!(zipmap_decode(&fixed[..cut]).is_none());
        }
        assert!(zipmap_decode(b"\x00\xff").is_none(), "an empty zipmap");
        assert!(zipmap_decode(b"\x03\x01a\x01\x011\x00\xff").is_none(), "a wrong count");
        assert!(zipmap_decode(b"\xfe\x01a\x01\x011\x00\xff").is_some(), "an uncounted zipmap");

        let set = |width: u32, v: &[i64]| {
            let mut b = width.to_le_bytes().to_vec();
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
            for n in v {
                b.extend_from_slice(&n.to_le_bytes()[..width as usize]);
            }
            b
        };
        assert_eq!(intset_members(&set(2, &[-3, 1, 7])), Some(vec![-3, 1, 7]));
        assert!(intset_members(&set(2, &[1, 1])).is_none(), "a repeated member");
        assert!(intset_members(&set(4, &[5, 2])).is_none(), "out of order");
        assert!(intset_members(&set(8, &[])).is_none(), "empty");
        assert!(intset_members(&set(3, &[1])).is_none(), "a bad width");
    }
}
