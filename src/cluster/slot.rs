//! Hash slots: CRC16 (XMODEM, as Redis Cluster) of the key, or of its hash tag, mod 16384.

/// Number of hash slots.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM) of each byte value: polynomial 0x1021, no reflection.
const TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// CRC16-CCITT (XMODEM), initial value 0, a table lookup per byte (as Redis's crc16.c).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| (crc << 8) ^ TABLE[((crc >> 8) as u8 ^ b) as usize])
}

/// The slot of `key`: when it has a non-empty `{...}` tag (the first `{` and the first `}`
/// after it), only the tag is hashed, so related keys can share a slot.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) & (SLOTS as u16 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_reference_and_slots() {
        // The XMODEM check value, and slots redis-server 7.0 reports.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user}a"), 5474);
        assert_eq!(key_slot(b"{user}b"), key_slot(b"user"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(key_slot(b"{}a"), crc16(b"{}a") & 16383);
        assert_eq!(key_slot(b"a{b}{c}"), key_slot(b"b"));
        assert_eq!(key_slot(b"a{b"), crc16(b"a{b") & 16383);
        assert_eq!(key_slot(b""), 0);
    }
}
