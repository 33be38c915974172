//! Values created in one server, moved with GET/SET into the other, behave identically:
//! HyperLogLogs and bitmaps are plain strings in the same format on both sides.

use crate::util::{Frame, ember, redis};

fn bulk_bytes(f: &Frame) -> Vec<u8> {
    let b = f.bytes();
    let start = b.iter().position(|&c| c == b'\n').map_or(0, |p| p + 1);
    b[start..b.len() - 2].to_vec()
}

#[test]
fn hll_and_bitmap_values_move_between_redis_and_ember() {
    let e = ember(&[]);
    let r = redis();
    let mut conns = [r.connect(), e.connect()];
    for from_redis in [true, false] {
        let [a, b] = &mut conns;
        let (src, dst) = if from_redis { (a, b) } else { (b, a) };
        src.cmd(&["FLUSHALL"]);
        dst.cmd(&["FLUSHALL"]);
        let elems: Vec<String> = (0..5000).map(|i| format!("user:{i}")).collect();
        for chunk in elems.chunks(500) {
            let mut args = vec!["PFADD", "visitors"];
            args.extend(chunk.iter().map(|s| s.as_str()));
            src.cmd(&args);
        }
        for bit in [1, 7, 100, 99_999] {
            src.cmd(&["SETBIT", "bm", &bit.to_string(), "1"]);
        }
        let count = src.cmd(&["PFCOUNT", "visitors"]).text();
        let bits = src.cmd(&["BITCOUNT", "bm"]).text();
        for key in ["visitors", "bm"] {
            let raw = bulk_bytes(&src.cmd(&["GET", key]));
            dst.cmd_bytes(&[b"SET".to_vec(), key.as_bytes().to_vec(), raw]);
        }
        assert_eq!(dst.cmd(&["PFCOUNT", "visitors"]).text(), count);
        assert_eq!(dst.cmd(&["BITCOUNT", "bm"]).text(), bits);
        // Both keep adding identically after the move.
        src.cmd(&["PFADD", "visitors", "late-arrival"]);
        dst.cmd(&["PFADD", "visitors", "late-arrival"]);
        assert_eq!(bulk_bytes(&src.cmd(&["GET", "visitors"])), bulk_bytes(&dst.cmd(&["GET", "visitors"])));
    }
}
