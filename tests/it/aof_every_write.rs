//! Every write command of the table reaches the AOF: each is run through the real server
//! with `appendonly yes`, then the log is replayed (DEBUG LOADAOF) and the data set must be
//! what it was. A write whose change the keyspace did not count would be missing from the
//! log, and from every replica. A write command added to the table without an example here
//! fails the test, so the list cannot fall behind.

use crate::util::{Conn, Frame, ember};

/// One example per write command, run in this order on one server; `$DUMP key` stands for
/// the DUMP of `key` and `$FDUMP` for FUNCTION DUMP, taken just before.
const EXAMPLES: &[&[&str]] = &[
    &["APPEND a:s x", "APPEND a:s yz"],
    &["BITFIELD bf SET i8 0 5 INCRBY u4 8 3"],
    &["SET b1 abc", "SET b2 xyz", "BITOP OR bo b1 b2"],
    &["RPUSH bl a b", "BLMOVE bl bl2 LEFT RIGHT 0"],
    &["RPUSH bm a b", "BLMPOP 0 1 bm LEFT COUNT 1"],
    &["RPUSH bp a b", "BLPOP bp 0"],
    &["RPUSH brp a b", "BRPOP brp 0"],
    &["RPUSH brl a b", "BRPOPLPUSH brl brl2 0"],
    &["ZADD bz 1 a 2 b", "BZMPOP 0 1 bz MIN"],
    &["ZADD bzx 1 a 2 b", "BZPOPMAX bzx 0"],
    &["ZADD bzn 1 a 2 b", "BZPOPMIN bzn 0"],
    &["SET cp v", "COPY cp cp2", "COPY cp cp3 DB 2"],
    &["SET ctr 10", "DECR ctr", "DECRBY ctr 3", "INCR ctr", "INCRBY ctr 7", "INCRBYFLOAT fl 1.25"],
    &["SET d1 v", "SET d2 v", "DEL d1 d2 d3"],
    &["SET e v", "EXPIRE e 1000", "SET ea v", "EXPIREAT ea 4000000000"],
    &["SET pe v", "PEXPIRE pe 1000000", "SET pea v", "PEXPIREAT pea 4000000000000"],
    &["SET ps v EX 100", "PERSIST ps"],
    &["FUNCTION LOAD #!lua name=lib1\nredis.register_function('f1', function() return 1 end)"],
    &["FUNCTION LOAD #!lua name=lib2\nredis.register_function('f2', function() return 2 end)", "FUNCTION DELETE lib2"],
    &["$FDUMP", "FUNCTION FLUSH", "FUNCTION RESTORE $FDUMP"],
    &["GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"],
    &["GEORADIUS g 15 37 200 km STORE gr"],
    &["GEORADIUSBYMEMBER g Palermo 200 km STOREDIST grd"],
    &["GEOSEARCHSTORE gs g FROMMEMBER Palermo BYRADIUS 200 km"],
    &["SET gd v", "GETDEL gd"],
    &["SET ge v", "GETEX ge EX 1000", "GETEX ge PERSIST"],
    &["GETSET gset v", "GETSET gset w"],
    // A lease token is random: this one is stale and fills nothing (tests/it/leases.rs logs
    // real fills).
    &["GETLEASE gl 10000", "SETLEASE gl 1 v"],
    &["HSET hd a 1 b 2 c 3", "HDEL hd a b"],
    &["HINCRBY hi n 5", "HINCRBYFLOAT hi f 1.5", "HMSET hm a 1 b 2", "HSET hs a 1", "HSETNX hs b 2"],
    &[
        "HSET hx a 1 b 2 c 3 d 4 e 5",
        "HEXPIRE hx 1000 FIELDS 1 a",
        "HPEXPIRE hx 1000000 FIELDS 1 b",
        "HEXPIREAT hx 4000000000 FIELDS 1 c",
        "HPEXPIREAT hx 4000000000000 NX FIELDS 1 d",
        "HPERSIST hx FIELDS 1 a",
        "HEXPIREAT hx 1 FIELDS 1 e",
        "HINCRBYFLOAT hx b 1.5",
    ],
    &["HSETEX hse EX 1000 FIELDS 2 a 1 b 2", "HGETEX hse PX 500000 FIELDS 1 a", "HGETDEL hse FIELDS 1 b"],
    &["RPUSH li a c", "LINSERT li BEFORE c b", "LSET li 0 z", "LREM li 1 b", "LTRIM li 0 0"],
    &["RPUSH lm a b", "LMOVE lm lm2 LEFT LEFT"],
    &["RPUSH lmp a b c", "LMPOP 1 lmp RIGHT COUNT 2"],
    &["LPUSH lp a b c", "LPOP lp", "LPUSHX lp d", "RPUSHX lp e", "RPOP lp 2", "RPOPLPUSH lp lp2"],
    &["SET mv v", "MOVE mv 1"],
    // Moving keys out needs a second server (tests/it/acl.rs): here, nothing to move.
    &["MIGRATE 127.0.0.1 1 nosuchkey 0 100"],
    &["MSET m1 a m2 b", "MSETNX m3 c m4 d"],
    &["PFADD hll a b c", "PFADD hll2 d", "PFDEBUG TODENSE hll2", "PFMERGE hll3 hll hll2"],
    &["PSETEX pse 100000 v", "SETEX sex 1000 v", "SETNX snx v", "SET st2 v KEEPTTL"],
    &["SET rn v", "RENAME rn rn2", "SET rnx v", "RENAMENX rnx rnx2"],
    &["SET rs v", "$DUMP rs", "RESTORE rs2 0 $DUMP", "RESTORE rs3 100000 $DUMP", "RESTORE-ASKING rs4 0 $DUMP"],
    &["SADD s1 a b c", "SADD s2 b c d", "SDIFFSTORE sd s1 s2", "SINTERSTORE si s1 s2", "SUNIONSTORE su s1 s2"],
    &["SADD sm a b", "SMOVE sm sm2 a", "SREM sm b", "SADD sp 1 2 3 4", "SPOP sp", "SPOP sp 2"],
    &["SETBIT sb 7 1", "SETRANGE sr 5 abc"],
    &["RPUSH so 3 1 2", "SORT so STORE so2"],
    &["SET sw v", "SWAPDB 0 3", "SWAPDB 0 3"],
    &["SET ul v", "UNLINK ul"],
    &["XADD st 1-1 f v", "XADD st 2-1 f w", "XADD st MAXLEN ~ 100 * f x", "XGROUP CREATE st g 0"],
    &["XREADGROUP GROUP g c1 COUNT 2 STREAMS st >", "XACK st g 1-1"],
    &["XCLAIM st g c2 0 2-1", "XAUTOCLAIM st g c3 0 0"],
    &["XGROUP CREATECONSUMER st g c4", "XGROUP DELCONSUMER st g c4", "XGROUP SETID st g 1-1"],
    &["XGROUP CREATE st g2 $", "XGROUP DESTROY st g2"],
    &["XADD xs2 1-1 f v", "XADD xs2 2-1 f v", "XDEL xs2 1-1", "XSETID xs2 5-5", "XTRIM xs2 MAXLEN 0"],
    &["ZADD z1 1 a 2 b 3 c", "ZADD z2 1 b", "ZDIFFSTORE zd 2 z1 z2", "ZINTERSTORE zi 2 z1 z2"],
    &["ZUNIONSTORE zu 2 z1 z2", "ZRANGESTORE zr z1 0 1", "ZINCRBY z1 5 a", "ZMPOP 1 z1 MIN"],
    &["ZADD zp 1 a 2 b 3 c 4 d", "ZPOPMAX zp", "ZPOPMIN zp", "ZREM zp b"],
    &["ZADD zl 0 a 0 b 0 c", "ZREMRANGEBYLEX zl [a [a", "ZREMRANGEBYRANK zl 0 0"],
    &["ZADD zs 1 a 2 b", "ZREMRANGEBYSCORE zs 1 1"],
    // Commands that are no writes themselves but run writes.
    &["EVAL \"redis.call('set', KEYS[1], 'x'); return redis.call('incr', KEYS[2])\" 2 ev1 ev2"],
    &["FCALL f1 0", "MULTI", "SET mx 1", "INCR mx", "EXEC"],
    &["FLUSHDB"],
    &["SET fa v", "FLUSHALL"],
];

/// Splits an example line into arguments: words, or a double-quoted run (for EVAL's script);
/// FUNCTION LOAD takes the rest of the line as its code.
fn words(line: &str) -> Vec<String> {
    if let Some(code) = line.strip_prefix("FUNCTION LOAD ") {
        return vec!["FUNCTION".into(), "LOAD".into(), code.into()];
    }
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').expect("closing quote");
            out.push(r[..end].to_string());
            rest = r[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// The data set, consumer-group state and function libraries (DEBUG DIGEST leaves the last
/// two out).
fn state(c: &mut Conn) -> String {
    let mut d = String::new();
    for db in 0..4 {
        c.cmd(&["SELECT", &db.to_string()]);
        d += &c.cmd(&["DEBUG", "DIGEST"]).text();
    }
    c.cmd(&["SELECT", "0"]);
    for key in ["st", "xs2"] {
        if c.cmd(&["TYPE", key]).as_str() == "stream" {
            d += &c.cmd(&["XINFO", "STREAM", key]).text();
            d += &c.cmd(&["XINFO", "GROUPS", key]).text();
            d += &c.cmd(&["XPENDING", key, "g"]).text();
        }
    }
    d += &c.cmd(&["FUNCTION", "LIST", "WITHCODE"]).text();
    d
}

/// Full names (`xgroup|create`) of the commands COMMAND flags `write`.
fn write_commands(c: &mut Conn) -> Vec<String> {
    fn is_write(entry: &Frame) -> bool {
        entry.children().get(2).is_some_and(|f| f.children().iter().any(|x| x.as_str() == "write"))
    }
    let mut out = Vec::new();
    for entry in c.cmd(&["COMMAND"]).children() {
        if is_write(entry) {
            out.push(entry.children()[0].as_str());
        }
        for sub in entry.children().get(9).map(Frame::children).unwrap_or(&[]) {
            if is_write(sub) {
                out.push(sub.children()[0].as_str());
            }
        }
    }
    out
}

#[test]
fn every_write_command_is_replayed_from_the_aof() {
    let p = ember(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = p.connect();
    // Every write command has an example.
    let mut covered = std::collections::HashSet::new();
    for ex in EXAMPLES {
        for line in *ex {
            let w = words(line);
            covered.insert(w[0].to_lowercase());
            if let Some(sub) = w.get(1) {
                covered.insert(format!("{}|{}", w[0], sub).to_lowercase());
            }
        }
    }
    let writes = write_commands(&mut c);
    assert!(writes.len() > 90, "COMMAND lists {} write commands", writes.len());
    let missing: Vec<_> = writes.iter().filter(|w| !covered.contains(*w)).collect();
    assert!(missing.is_empty(), "write commands without an example here: {missing:?}");

    let mut dump = Vec::new();
    let mut fdump = Vec::new();
    for ex in EXAMPLES {
        for line in *ex {
            let w = words(line);
            if w[0] == "$DUMP" {
                dump = bulk_payload(&c.cmd(&["DUMP", &w[1]]));
                continue;
            }
            if w[0] == "$FDUMP" {
                fdump = bulk_payload(&c.cmd(&["FUNCTION", "DUMP"]));
                continue;
            }
            let args: Vec<Vec<u8>> = w
                .iter()
                .map(|a| match a.as_str() {
                    "$DUMP" => dump.clone(),
                    "$FDUMP" => fdump.clone(),
                    a => a.as_bytes().to_vec(),
                })
                .collect();
            let reply = c.cmd_bytes(&args);
            assert!(!reply.text().starts_with('-'), "{line}: {}", reply.text());
        }
        let before = state(&mut c);
        let r = c.cmd(&["DEBUG", "LOADAOF"]);
        assert_eq!(r.as_str(), "OK", "DEBUG LOADAOF after {ex:?}");
        let after = state(&mut c);
        assert_eq!(before, after, "replaying the AOF after {ex:?} does not give the same data set");
    }
}

/// The payload of a bulk reply, as bytes.
fn bulk_payload(f: &Frame) -> Vec<u8> {
    let b = f.bytes();
    let start = b.iter().position(|&x| x == b'\n').map_or(0, |i| i + 1);
    b[start..b.len().saturating_sub(2)].to_vec()
}
