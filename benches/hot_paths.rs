//! In-process hot paths: request decoding, the key table, reply encoding, glob matching.
//! Measures only; `benches/compare.sh` compares the whole server against redis-server.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use ember::protocol::{Decoder, Limits, Reply, encode};
use ember::util::dict::Dict;
use ember::util::glob::glob_match;
use ember::util::smallbytes::SmallBytes;
use std::hint::black_box;

fn decode(c: &mut Criterion) {
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$10\r\nkey:{i:06}\r\n$5\r\nvalue\r\n").as_bytes());
    }
    let limits = Limits { max_bulk_len: 512 << 20, authenticated: true };
    c.bench_function("decode 100 pipelined SETs", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            let mut buf = BytesMut::from(&pipeline[..]);
            let mut n = 0;
            while d.decode_next(&mut buf, limits).unwrap_or(false) {
                n += d.with_args(&buf, |argv| argv.len());
                d.finish(&mut buf);
            }
            black_box(n)
        })
    });
}

fn dict(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..100_000).map(|i| format!("key:{i:012}").into_bytes()).collect();
    let mut d: Dict<SmallBytes, u64> = Dict::new();
    for (i, k) in keys.iter().enumerate() {
        d.insert(SmallBytes::new(k), i as u64);
    }
    let mut i = 0;
    c.bench_function("dict get (100k keys)", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(d.get(&keys[i][..]))
        })
    });
    c.bench_function("dict insert+remove", |b| {
        b.iter(|| {
            d.insert(SmallBytes::new(b"transient"), 1);
            black_box(d.remove(b"transient"))
        })
    });
}

fn reply(c: &mut Criterion) {
    let r = Reply::Array((0..10).map(|i| Reply::Bulk(Bytes::from(format!("value-{i}")))).collect());
    let mut out = BytesMut::with_capacity(4096);
    c.bench_function("encode array of 10 bulks", |b| {
        b.iter(|| {
            out.clear();
            encode(black_box(&r), 2, &mut out);
            black_box(out.len())
        })
    });
}

fn glob(c: &mut Criterion) {
    c.bench_function("glob user:*:session", |b| {
        b.iter(|| black_box(glob_match(b"user:*:session", black_box(b"user:123456:session"), false)))
    });
}

criterion_group!(benches, decode, dict, reply, glob);
criterion_main!(benches);
