//! MIGRATE: keys move (or, with COPY, are copied) to another Redis or Ember as RESTORE
//! commands carrying their DUMP payloads, as Redis 7.0's migrateCommand does: synchronously,
//! with `timeout` bounding each connect, write and read, over a connection kept per target
//! for 10 seconds (`migrate_cached_sockets` in INFO).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::{OK, Reply, encode_command};
use crate::server::state::MigrateSocket;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("migrate", -6, migrate)
    .flags(WRITE | MOVABLEKEYS)
    .doc("generic", "Atomically transfer a key from a Redis instance to another one.", "2.6.0", "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.")];

/// The longest reply line read from the target.
const MAX_LINE: usize = 1024;

fn migrate(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (mut copy, mut replace) = (false, false);
    let (mut user, mut pass): (Option<Bytes>, Option<Bytes>) = (None, None);
    let (mut first, mut count) = (3, 1);
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = &argv[j];
        if is(a, "copy") {
            copy = true;
        } else if is(a, "replace") {
            replace = true;
        } else if is(a, "auth") {
            if more == 0 {
                return Err(CmdError::Syntax);
            }
            j += 1;
            pass = Some(Bytes::copy_from_slice(argv[j]));
        } else if is(a, "auth2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            user = Some(Bytes::copy_from_slice(argv[j + 1]));
            pass = Some(Bytes::copy_from_slice(argv[j + 2]));
            j += 2;
        } else if is(a, "keys") {
            if !argv[3].is_empty() {
                return Err(CmdError::msg(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            first = j + 1;
            count = argv.len() - j - 1;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = crate::util::numfmt::parse_i64(argv[5]).ok_or(CmdError::NotInteger)?;
    let dbid = crate::util::numfmt::parse_i64(argv[4]).ok_or(CmdError::NotInteger)?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout.min(i64::from(u32::MAX)) as u64 });
    let keys: Vec<&[u8]> = argv[first..first + count].iter().copied().filter(|k| ctx.db().contains(k)).collect();
    if keys.is_empty() {
        return Ok(Reply::Status("NOKEY"));
    }
    let target = format!("{}:{}", String::from_utf8_lossy(argv[1]), String::from_utf8_lossy(argv[2]));
    let mut may_retry = true;
    loop {
        match attempt(ctx, &target, timeout, dbid, &keys, copy, replace, user.as_deref(), pass.as_deref()) {
            Ok(reply) => return Ok(reply),
            Err(Failure::Connect) => {
                return Err(CmdError::Raw("IOERR error or timeout connecting to the client".into()));
            }
            Err(Failure::Io { writing, timed_out, retry }) => {
                ctx.srv.migrate_sockets.remove(&target);
                if may_retry && retry && !timed_out {
                    may_retry = false;
                    continue;
                }
                let what = if writing { "writing" } else { "reading" };
                return Err(CmdError::Raw(format!("IOERR error or timeout {what} to target instance")));
            }
        }
    }
}

enum Failure {
    Connect,
    /// `retry`: nothing reached the target's data (the first reply was not read).
    Io {
        writing: bool,
        timed_out: bool,
        retry: bool,
    },
}

fn io_failure(e: &std::io::Error, writing: bool, retry: bool) -> Failure {
    let timed_out = matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock);
    Failure::Io { writing, timed_out, retry }
}

/// The cached connection to `target`, or a new one.
fn socket<'a>(ctx: &'a mut Ctx, target: &str, timeout: Duration) -> Result<&'a mut MigrateSocket, Failure> {
    let now = ctx.srv.now_ms;
    if !ctx.srv.migrate_sockets.contains_key(target) {
        if ctx.srv.migrate_sockets.len() >= 64 {
            // Too many cached: one goes, as Redis drops a random one.
            if let Some(k) = ctx.srv.migrate_sockets.keys().next().cloned() {
                ctx.srv.migrate_sockets.remove(&k);
            }
        }
        let addr = target.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or(Failure::Connect)?;
        let source = ctx.srv.config.str("bind-source-addr");
        let stream = crate::server::socket::connect(&addr, timeout, source).map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        ctx.srv.migrate_sockets.insert(target.to_string(), MigrateSocket { stream, last_dbid: -1, last_use_ms: now });
    }
    let s = ctx.srv.migrate_sockets.get_mut(target).ok_or(Failure::Connect)?;
    s.last_use_ms = now;
    Ok(s)
}

/// One reply line from the target (without CRLF).
fn read_line(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if byte[0] == b'\n' {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if line.len() < MAX_LINE {
            line.push(byte[0]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    ctx: &mut Ctx,
    target: &str,
    timeout: Duration,
    dbid: i64,
    keys: &[&[u8]],
    copy: bool,
    replace: bool,
    user: Option<&[u8]>,
    pass: Option<&[u8]>,
) -> Result<Reply, Failure> {
    let opts = ctx.srv.save_options();
    let now = crate::util::unix_ms();
    // The RESTOREs, with each key's remaining time to live (keys expired meanwhile are left).
    let mut cmd = Vec::new();
    let mut sent = Vec::new();
    // In a cluster the target may be importing the slot: RESTORE-ASKING is served there.
    let restore: &[u8] = if ctx.srv.cluster.is_some() { b"RESTORE-ASKING" } else { b"RESTORE" };
    for k in keys {
        let ttl = match ctx.db().expire_at_of(k) {
            Some(at) if (at as i64) - (now as i64) < 0 => continue,
            Some(at) => (at as i64 - now as i64).max(1),
            None => 0,
        };
        let Some(v) = ctx.db().get(k) else { continue };
        let payload = crate::persistence::rdb::dump(v, opts);
        let ttl = ttl.to_string();
        let mut args: Vec<&[u8]> = vec![restore, k, ttl.as_bytes(), &payload];
        if replace {
            args.push(b"REPLACE");
        }
        encode_command(&mut cmd, &args);
        sent.push(*k);
    }
    let s = socket(ctx, target, timeout)?;
    let select = s.last_dbid != dbid;
    let mut head = Vec::new();
    if let Some(p) = pass {
        match user {
            Some(u) => encode_command(&mut head, &[b"AUTH", u, p]),
            None => encode_command(&mut head, &[b"AUTH", p]),
        }
    }
    if select {
        encode_command(&mut head, &[b"SELECT", dbid.to_string().as_bytes()]);
    }
    head.extend_from_slice(&cmd);
    let _ = s.stream.set_write_timeout(Some(timeout));
    let _ = s.stream.set_read_timeout(Some(timeout));
    for piece in head.chunks(64 * 1024) {
        s.stream.write_all(piece).map_err(|e| io_failure(&e, true, true))?;
    }
    let auth_reply = match pass {
        Some(_) => Some(read_line(&mut s.stream).map_err(|e| io_failure(&e, false, true))?),
        None => None,
    };
    let select_reply = match select {
        true => Some(read_line(&mut s.stream).map_err(|e| io_failure(&e, false, true))?),
        false => None,
    };
    let mut target_error: Option<Vec<u8>> = None;
    let mut moved = Vec::new();
    let mut socket_error = None;
    for (i, k) in sent.iter().enumerate() {
        let line = match read_line(&mut s.stream) {
            Ok(l) => l,
            Err(e) => {
                socket_error = Some((e, i == 0));
                break;
            }
        };
        let err = [&auth_reply, &select_reply].into_iter().flatten().find(|r| r.first() == Some(&b'-')).cloned();
        match err.or_else(|| (line.first() == Some(&b'-')).then(|| line.clone())) {
            Some(e) => {
                if target_error.is_none() {
                    s.last_dbid = -1;
                    target_error = Some(e);
                }
            }
            None => moved.push(*k),
        }
    }
    if target_error.is_none() && socket_error.is_none() {
        s.last_dbid = dbid;
    }
    // Keys the target acknowledged leave this server, propagated as one DEL.
    if !copy && !moved.is_empty() {
        for k in &moved {
            ctx.db().remove(k);
            ctx.notify(crate::keyspace::notify::GENERIC, "del", k);
        }
        let mut del = vec![Bytes::from_static(b"DEL")];
        del.extend(moved.iter().map(|k| Bytes::copy_from_slice(k)));
        ctx.log_as(del);
    }
    if let Some(e) = target_error {
        return Ok(Reply::Error(format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&e[1..])
        )));
    }
    if let Some((e, first)) = socket_error {
        return Err(io_failure(&e, false, first && moved.is_empty()));
    }
    Ok(OK)
}
