//! Redis's listpack, as RDB files carry it (quicklist nodes, small hashes and sorted sets,
//! stream nodes): a 6-byte header (total bytes, element count), entries made of an encoding
//! byte, the data and a backward length, and a 0xFF terminator. The writer stores canonical
//! integers in the integer encodings as Redis does; the reader accepts every encoding and
//! checks every length against the buffer.

/// One decoded element.
#[derive(Debug, Clone, PartialEq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(n) => n.to_string().into_bytes(),
        }
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn put_backlen(out: &mut Vec<u8>, l: usize) {
    let n = backlen_size(l);
    // Most significant group first; every byte but the first carries the 128 flag.
    for i in (0..n).rev() {
        let b = ((l >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { b } else { b | 128 });
    }
}

/// The back length whose last byte is at `at`: 7 bits a byte, most significant first, every
/// byte but the first flagged with 128; None past 5 bytes (Redis's lpDecodeBacklen).
fn backlen_at(lp: &[u8], mut at: usize) -> Option<usize> {
    let mut v = 0usize;
    for shift in (0..=28).step_by(7) {
        let b = *lp.get(at)?;
        v |= ((b & 127) as usize) << shift;
        if b & 128 == 0 {
            return Some(v);
        }
        at = at.checked_sub(1)?;
    }
    None
}

/// Parses a canonical decimal integer the way Redis's lpStringToInt64 does.
fn as_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == s).then_some(n)
}

/// Builds a listpack.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: vec![0; 6], count: 0 }
    }

    pub fn push(&mut self, v: &[u8]) {
        let start = self.buf.len();
        match as_int(v) {
            Some(n) => self.push_int_encoding(n),
            None => {
                let l = v.len();
                if l < 64 {
                    self.buf.push(0x80 | l as u8);
                } else if l < 4096 {
                    self.buf.push(0xE0 | (l >> 8) as u8);
                    self.buf.push((l & 0xff) as u8);
                } else {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(l as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(v);
            }
        }
        let entry = self.buf.len() - start;
        put_backlen(&mut self.buf, entry);
        self.count += 1;
    }

    pub fn push_int(&mut self, n: i64) {
        let start = self.buf.len();
        self.push_int_encoding(n);
        let entry = self.buf.len() - start;
        put_backlen(&mut self.buf, entry);
        self.count += 1;
    }

    fn push_int_encoding(&mut self, n: i64) {
        if (0..=127).contains(&n) {
            self.buf.push(n as u8);
        } else if (-4096..=4095).contains(&n) {
            let u = (n as u64) & 0x1fff;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push((u & 0xff) as u8);
        } else if (i16::MIN as i64..=i16::MAX as i64).contains(&n) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(n as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&n) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&n) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(n as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&n.to_le_bytes());
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = if self.count < 65535 { self.count as u16 } else { 65535 };
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Decodes every element; None if the listpack is malformed in any way.
pub fn decode(lp: &[u8]) -> Option<Vec<Elem<'_>>> {
    if lp.len() < 7 {
        return None;
    }
    let total = u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize;
    if total != lp.len() || *lp.last()? != 0xFF {
        return None;
    }
    let declared = u16::from_le_bytes(lp[4..6].try_into().ok()?) as usize;
    let mut out = Vec::new();
    let mut p = 6;
    let end = lp.len() - 1;
    while p < end {
        let b = lp[p];
        let (elem, size) = if b & 0x80 == 0 {
            (Elem::Int(b as i64), 1)
        } else if b & 0xC0 == 0x80 {
            let l = (b & 0x3f) as usize;
            (Elem::Str(lp.get(p + 1..p + 1 + l)?), 1 + l)
        } else if b & 0xE0 == 0xC0 {
            let u = (((b & 0x1f) as u16) << 8) | *lp.get(p + 1)? as u16;
            let v = if u & 0x1000 != 0 { u as i64 - 0x2000 } else { u as i64 };
            (Elem::Int(v), 2)
        } else if b & 0xF0 == 0xE0 {
            let l = (((b & 0x0f) as usize) << 8) | *lp.get(p + 1)? as usize;
            (Elem::Str(lp.get(p + 2..p + 2 + l)?), 2 + l)
        } else {
            match b {
                0xF0 => {
                    let l = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                    (Elem::Str(lp.get(p + 5..p.checked_add(5 + l)?)?), 5 + l)
                }
                0xF1 => (Elem::Int(i16::from_le_bytes(lp.get(p + 1..p + 3)?.try_into().ok()?) as i64), 3),
                0xF2 => {
                    let s = lp.get(p + 1..p + 4)?;
                    let v = ((s[0] as i32) | ((s[1] as i32) << 8) | ((s[2] as i32) << 16)) << 8 >> 8;
                    (Elem::Int(v as i64), 4)
                }
                0xF3 => (Elem::Int(i32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as i64), 5),
                0xF4 => (Elem::Int(i64::from_le_bytes(lp.get(p + 1..p + 9)?.try_into().ok()?)), 9),
                _ => return None,
            }
        };
        p += size + backlen_size(size);
        // The back length (read backwards from the entry's end, as Redis walks a listpack
        // from its tail) must give the entry's size.
        if p > end || backlen_at(lp, p - 1) != Some(size) {
            return None;
        }
        out.push(elem);
    }
    if p != end || (declared != 65535 && declared != out.len()) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_encoding() {
        let long = "x".repeat(5000);
        let mid = "y".repeat(300);
        let values: Vec<String> = [
            "0",
            "127",
            "128",
            "-1",
            "4095",
            "-4096",
            "4096",
            "32767",
            "-32768",
            "40000",
            "8388607",
            "-8388608",
            "8388608",
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "007",
            "1.5",
            "",
            "hello",
            &mid,
            &long,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut w = Writer::new();
        for v in &values {
            w.push(v.as_bytes());
        }
        let lp = w.finish();
        let got: Vec<Vec<u8>> = decode(&lp).unwrap().iter().map(|e| e.to_vec()).collect();
        let want: Vec<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
        assert_eq!(got, want);
        // Every truncation or single corrupted length is refused, never a panic.
        for cut in 0..lp.len() {
            assert!(decode(&lp[..cut]).is_none());
        }
        for i in 0..lp.len() {
            let mut bad = lp.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad);
        }
        // A back length that does not match its entry ("hello": 6 bytes, back length 6).
        let mut w = Writer::new();
        w.push(b"hello");
        let mut bad = w.finish();
        assert_eq!(bad[12], 6);
        assert!(decode(&bad).is_some());
        bad[12] = 7;
        assert!(decode(&bad).is_none());
    }
}
