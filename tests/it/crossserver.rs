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

/// COMMAND describes every command as redis-server 7.0 does: arity, flags, key positions,
/// ACL categories, tips, key specs and subcommands (in any order). Clients route and check
/// commands by this table (cluster clients by the key specs, scripts by the flags).
#[test]
fn the_command_table_matches_redis() {
    fn canonical(entry: &Frame) -> String {
        let parts = entry.children();
        let mut out: Vec<String> = parts.iter().take(9).map(|p| p.text()).collect();
        // Flags and subcommands as sets.
        if let Some(flags) = parts.get(2) {
            let mut f: Vec<String> = flags.children().iter().map(|x| x.text()).collect();
            f.sort();
            out[2] = f.join(",");
        }
        if let Some(subs) = parts.get(9) {
            let mut s: Vec<String> = subs.children().iter().map(canonical).collect();
            s.sort();
            out.push(s.join("\n  "));
        }
        out.join(" ")
    }
    let table = |port: u16| -> std::collections::BTreeMap<String, String> {
        let mut c = crate::util::Conn::new(port);
        c.cmd(&["COMMAND"]).children().iter().map(|e| (e.children()[0].text(), canonical(e))).collect()
    };
    let (e, r) = (ember(&[]), redis());
    let (ours, theirs) = (table(e.port), table(r.port));
    assert!(theirs.len() > 200, "redis-server listed {} commands", theirs.len());
    let mut differ = Vec::new();
    for (name, want) in &theirs {
        match ours.get(name) {
            Some(got) if got == want => {}
            Some(got) => differ.push(format!("{name}:\n ember {got}\n redis {want}")),
            None => differ.push(format!("{name}: missing")),
        }
    }
    assert!(differ.is_empty(), "{} commands differ:\n{}", differ.len(), differ.join("\n"));
}
