//! [`Backlog`]: the last `repl-backlog-size` bytes of the replication stream, from which a
//! replica that lost its link (or a new master's former fellow replicas) continue with
//! `+CONTINUE` instead of a full resynchronisation.
//!
//! Offsets are Redis's: the stream's bytes are numbered from 1, `master_repl_offset` is the
//! number of the last byte produced, and a replica asks `PSYNC <replid> <next byte it needs>`.

/// A ring of the stream's most recent bytes.
pub struct Backlog {
    /// Grows with the stream up to `size` (a large repl-backlog-size costs only what the
    /// stream fills), then wraps.
    ring: Vec<u8>,
    size: usize,
    /// Where the next byte goes in `ring`.
    head: usize,
    /// Bytes held (at most `ring.len()`).
    histlen: usize,
    /// The number of the next byte the stream will produce.
    next: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte is number `next`.
    pub fn new(size: usize, next: u64) -> Backlog {
        Backlog { ring: Vec::new(), size: size.max(1), head: 0, histlen: 0, next }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn histlen(&self) -> usize {
        self.histlen
    }

    /// The number of the oldest byte held (Redis's `repl_backlog_first_byte_offset`).
    pub fn first_byte(&self) -> u64 {
        self.next - self.histlen as u64
    }

    pub fn append(&mut self, mut data: &[u8]) {
        self.next += data.len() as u64;
        let size = self.size;
        if data.len() >= size {
            self.ring.clear();
            self.ring.extend_from_slice(&data[data.len() - size..]);
            (self.head, self.histlen) = (0, size);
            return;
        }
        if self.ring.len() < size {
            let n = (size - self.ring.len()).min(data.len());
            self.ring.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.head = self.ring.len() % size;
            self.histlen = self.ring.len();
        }
        let first = data.len().min(size - self.head);
        self.ring[self.head..self.head + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        self.head = (self.head + data.len()) % size;
        self.histlen = (self.histlen + data.len()).min(size);
    }

    /// The bytes from number `from` to the end, if the backlog still holds them all (`from`
    /// may be one past the end: nothing is missing).
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        if from < self.first_byte() || from > self.next {
            return None;
        }
        let n = (self.next - from) as usize;
        let size = self.size;
        let start = (self.head + size - n) % size;
        let mut out = Vec::with_capacity(n);
        let first = n.min(size - start);
        out.extend_from_slice(&self.ring[start..start + first]);
        out.extend_from_slice(&self.ring[..n - first]);
        Some(out)
    }

    /// CONFIG SET repl-backlog-size: keeps the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        if size.max(1) == self.size {
            return;
        }
        let kept = self.since(self.first_byte()).unwrap_or_default();
        let mut b = Backlog::new(size, self.next - kept.len() as u64);
        b.append(&kept);
        *self = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the wrap-around, `since` gives back exactly the stream's tail it still holds.
    #[test]
    fn keeps_the_stream_tail() {
        let stream: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = Backlog::new(1000, 1);
        let mut at = 0;
        for step in [1, 999, 3, 1000, 1500, 17, 2000, 480] {
            b.append(&stream[at..at + step]);
            at += step;
            let held = at.min(1000);
            assert_eq!(b.histlen(), held);
            assert_eq!(b.first_byte(), (at - held) as u64 + 1);
            assert_eq!(b.since(b.first_byte()).as_deref(), Some(&stream[at - held..at]));
            assert_eq!(b.since(at as u64 + 1), Some(Vec::new()));
            assert_eq!(b.since(at as u64 + 2), None);
            assert_eq!(b.since(b.first_byte() - 1), None);
            if at >= 6 {
                assert_eq!(b.since(at as u64 - 5).as_deref(), Some(&stream[at - 6..at]));
            }
        }
        // A huge size allocates only what the stream filled.
        let mut big = Backlog::new(1 << 40, 1);
        big.append(b"abc");
        assert_eq!(big.since(1).as_deref(), Some(&b"abc"[..]));
        assert!(big.ring.capacity() < 1 << 20);
        b.resize(100);
        assert_eq!(b.since(at as u64 - 99).as_deref(), Some(&stream[at - 100..at]));
        assert_eq!(b.first_byte(), at as u64 - 99);
    }
}
