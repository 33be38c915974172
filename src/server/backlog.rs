//! [`Backlog`]: the replication stream's recent bytes, shared by the backlog and every
//! replica, as Redis 7.0's replication buffer is.
//!
//! The stream is kept in blocks. The backlog proper is the newest `repl-backlog-size` bytes,
//! from which a replica that lost its link (or a new master's former fellow replicas)
//! continues with `+CONTINUE` instead of a full resynchronisation. A replica is not given a
//! copy of the stream: it holds a cursor (the number of the next byte it is owed) and its
//! socket is written from the blocks. The oldest block goes once the backlog is bigger than
//! its size without it and no replica's cursor is still in it, so a slow replica makes the
//! backlog outgrow its size (and a replica that comes back may continue from that much
//! further back), and N replicas cost one stream, not N.
//!
//! Offsets are Redis's: the stream's bytes are numbered from 1, `master_repl_offset` is the
//! number of the last byte produced, and a replica asks `PSYNC <replid> <next byte it needs>`.

use std::collections::VecDeque;

/// The smallest block (Redis's PROTO_REPLY_CHUNK_BYTES).
const MIN_BLOCK: usize = 16 * 1024;
/// What a block costs besides its bytes: its slot in the block list.
pub const BLOCK_OVERHEAD: usize = std::mem::size_of::<Block>();
/// Blocks let go per trim call (Redis's REPL_BACKLOG_TRIM_BLOCKS_PER_CALL): freeing is spread
/// over the loop's turns.
pub const TRIM_PER_CALL: usize = 64;

struct Block {
    /// The number of its first byte.
    start: u64,
    /// Its bytes; the capacity is the block's size, fixed when it is made.
    data: Vec<u8>,
    /// The memory of every block made before this one, since the buffer was made: a
    /// replica's share is a difference of two of these.
    made_before: u64,
}

impl Block {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    fn mem(&self) -> usize {
        self.data.capacity() + BLOCK_OVERHEAD
    }

    fn data_mem(&self) -> usize {
        self.data.capacity()
    }
}

/// The shared replication buffer.
pub struct Backlog {
    blocks: VecDeque<Block>,
    /// repl-backlog-size.
    size: usize,
    /// The number of the next byte the stream will produce.
    next: u64,
    /// Memory of the blocks' bytes held (with the block list's own, Redis's
    /// repl_buffer_mem, INFO mem_total_replication_buffers).
    data_mem: usize,
    /// Memory of every block made so far.
    made: u64,
    /// Blocks made since the last trim: a trim may let go of as many more than its budget, so
    /// a loop turn's writes never outpace it.
    made_since_trim: usize,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte is number `next`.
    pub fn new(size: usize, next: u64) -> Backlog {
        Backlog { blocks: VecDeque::new(), size: size.max(1), next, data_mem: 0, made: 0, made_since_trim: 0 }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// CONFIG SET repl-backlog-size: the next trim keeps the newest bytes that fit (and
    /// whatever replicas still need).
    pub fn set_size(&mut self, size: usize) {
        self.size = size.max(1);
    }

    /// Bytes held (INFO repl_backlog_histlen).
    pub fn histlen(&self) -> usize {
        (self.next - self.first_byte()) as usize
    }

    /// The number of the oldest byte held (Redis's `repl_backlog_first_byte_offset`).
    pub fn first_byte(&self) -> u64 {
        self.blocks.front().map_or(self.next, |b| b.start)
    }

    /// The number of the next byte the stream will produce.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Memory held: the blocks' bytes and the block list (all of it counts: eviction leaves
    /// out what exceeds the backlog's size, so none of it may go uncounted).
    pub fn mem(&self) -> usize {
        self.data_mem + self.blocks.capacity() * BLOCK_OVERHEAD
    }

    pub fn append(&mut self, mut data: &[u8]) {
        if let Some(tail) = self.blocks.back_mut() {
            let n = (tail.data.capacity() - tail.data.len()).min(data.len());
            tail.data.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.next += n as u64;
        }
        // New blocks: at least MIN_BLOCK, so later small writes fill them; at most a
        // sixteenth of the backlog, so a big write does not make a block that can't go while
        // a replica still needs a little of it.
        let limit = (self.size / 16).max(MIN_BLOCK);
        while !data.is_empty() {
            let cap = data.len().clamp(MIN_BLOCK, limit);
            let n = cap.min(data.len());
            let mut bytes = Vec::with_capacity(cap);
            bytes.extend_from_slice(&data[..n]);
            let block = Block { start: self.next, data: bytes, made_before: self.made };
            self.data_mem += block.data_mem();
            self.made += block.mem() as u64;
            self.blocks.push_back(block);
            self.made_since_trim += 1;
            data = &data[n..];
            self.next += n as u64;
        }
    }

    /// Whether a replica owed the bytes from number `from` on can be served from here (`from`
    /// may be one past the end: nothing is missing).
    pub fn holds(&self, from: u64) -> bool {
        from >= self.first_byte() && from <= self.next
    }

    /// The index of the block holding byte `pos` (the last block for one past the end).
    fn block_of(&self, pos: u64) -> Option<usize> {
        if !self.holds(pos) {
            return None;
        }
        self.blocks.partition_point(|b| b.start <= pos).checked_sub(1)
    }

    /// The bytes from number `pos` to the end of the block holding it: what a replica at
    /// `pos` is sent next. Empty when it has everything (or `pos` is not held).
    pub fn chunk_at(&self, pos: u64) -> &[u8] {
        match self.block_of(pos).and_then(|i| self.blocks.get(i)) {
            Some(b) if pos < b.end() => &b.data[(pos - b.start) as usize..],
            _ => &[],
        }
    }

    /// The memory a replica at `pos` keeps: its block and every later one (Redis's
    /// getClientOutputBufferMemoryUsage for a replica).
    pub fn share_from(&self, pos: u64) -> usize {
        match self.block_of(pos).and_then(|i| self.blocks.get(i)) {
            Some(b) => (self.made - b.made_before) as usize,
            None => 0,
        }
    }

    /// Lets go of up to `max_blocks` of the oldest blocks (plus as many as were made since
    /// the last trim) while the backlog stays at least its size without them and no
    /// replica's cursor is in them (`pinned`: the lowest cursor, u64::MAX for none). The
    /// newest block always stays.
    pub fn trim(&mut self, pinned: u64, max_blocks: usize) {
        let budget = max_blocks.saturating_add(std::mem::take(&mut self.made_since_trim));
        for _ in 0..budget {
            let Some(first) = self.blocks.front() else { return };
            if self.blocks.len() <= 1 || pinned < first.end() || self.histlen() - first.data.len() <= self.size {
                return;
            }
            self.data_mem -= first.data_mem();
            self.blocks.pop_front();
            // A list that held a slow replica's backlog shrinks with it.
            if self.blocks.capacity() > 64 && self.blocks.len() * 4 < self.blocks.capacity() {
                self.blocks.shrink_to(self.blocks.len() * 2);
            }
        }
    }

    /// The bytes from number `from` to the end (tests, and a replica that can't be given a
    /// cursor).
    #[cfg(test)]
    fn since(&self, from: u64) -> Option<Vec<u8>> {
        let mut at = from;
        let mut out = Vec::new();
        if !self.holds(from) {
            return None;
        }
        while at < self.next {
            let c = self.chunk_at(at);
            out.extend_from_slice(c);
            at += c.len() as u64;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the writes' sizes, the backlog gives back exactly the stream's tail it holds,
    /// at least its size once that much was written, and never more than one block over it
    /// when nobody pins it.
    #[test]
    fn keeps_the_stream_tail() {
        let stream: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = Backlog::new(50_000, 1);
        let mut at = 0;
        for step in [1, 999, 3, 16_384, 1500, 17, 70_000, 480, 100_000, 5, 33_333, 2] {
            b.append(&stream[at..at + step]);
            at += step;
            b.trim(u64::MAX, usize::MAX);
            let held = b.histlen();
            assert!(held >= at.min(50_000) && held <= at.min(50_000 + MIN_BLOCK.max(50_000 / 16)), "{held} at {at}");
            assert_eq!(b.first_byte(), (at - held) as u64 + 1);
            assert_eq!(b.since(b.first_byte()).as_deref(), Some(&stream[at - held..at]));
            assert_eq!(b.since(at as u64 + 1), Some(Vec::new()));
            assert_eq!(b.since(at as u64 + 2), None);
            assert_eq!(b.since(b.first_byte() - 1), None);
            if at >= 6 {
                assert_eq!(b.since(at as u64 - 5).as_deref(), Some(&stream[at - 6..at]));
            }
            let mem: usize = b.blocks.iter().map(Block::mem).sum();
            assert_eq!(b.share_from(b.first_byte()), mem);
            assert!(b.mem() >= mem && b.mem() <= mem + b.blocks.capacity() * BLOCK_OVERHEAD);
        }
    }

    /// A replica's cursor keeps what it is owed; once it moves on, trimming catches up.
    #[test]
    fn a_cursor_pins_the_stream() {
        let mut b = Backlog::new(16_384, 1);
        let piece = vec![b'x'; 10_000];
        for _ in 0..100 {
            b.append(&piece);
            b.trim(1, TRIM_PER_CALL);
        }
        assert_eq!(b.histlen(), 1_000_000);
        assert_eq!(b.first_byte(), 1);
        let all = b.share_from(1);
        assert!(all <= b.mem());
        // The replica at the end keeps only the newest block.
        assert!(b.share_from(b.next()) <= MIN_BLOCK + BLOCK_OVERHEAD);
        assert!(b.chunk_at(b.next()).is_empty());
        assert_eq!(b.chunk_at(1).len(), MIN_BLOCK);
        b.trim(500_001, usize::MAX);
        assert!(b.first_byte() <= 500_001 && b.first_byte() > 500_001 - MIN_BLOCK as u64);
        b.trim(u64::MAX, usize::MAX);
        assert!(b.histlen() > 16_384 && b.histlen() <= 2 * MIN_BLOCK);
        assert!(b.mem() < all / 20);
    }

    /// A huge size costs only what the stream filled; a big write is cut into blocks of at
    /// most a sixteenth of the size.
    #[test]
    fn blocks_are_sized_by_the_writes() {
        let mut big = Backlog::new(1 << 40, 1);
        big.append(b"abc");
        assert_eq!(big.since(1).as_deref(), Some(&b"abc"[..]));
        assert!(big.mem() < 1 << 20);
        let mut b = Backlog::new(1 << 20, 1);
        b.append(&vec![0u8; 300_000]);
        assert_eq!(b.blocks.len(), 5);
        assert!(b.blocks.iter().all(|x| x.data.capacity() <= 65_536));
    }
}
