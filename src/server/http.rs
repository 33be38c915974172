//! The metrics endpoint (`metrics-port`): `GET /metrics` over HTTP/1.x, served by the event
//! loop itself (no thread). A scrape renders the page once and closes the connection after
//! the reply (`Connection: close`), so a connection's whole state is one request in and one
//! reply out. Requests are parsed by httparse and bounded: 8 KiB of request, 64 connections,
//! 10 seconds to send a request; anything that is not HTTP gets a 400 and is closed, without
//! touching the RESP clients.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use mio::net::TcpStream;
use mio::{Interest, Token};
use tracing::debug;

use super::ServerState;

/// Tokens of metrics connections: far above client ids, below the listeners' and the master
/// link's.
pub const TOKEN_BASE: usize = 1 << 62;
const MAX_REQUEST: usize = 8 * 1024;
const MAX_CONNS: usize = 64;
const IDLE_MS: u64 = 10_000;

#[derive(Default)]
pub struct HttpConns {
    conns: HashMap<usize, HttpConn>,
    next: usize,
}

struct HttpConn {
    stream: TcpStream,
    request: Vec<u8>,
    reply: Vec<u8>,
    since_ms: u64,
    /// The reply is made: only writing is left.
    answered: bool,
}

impl HttpConns {
    pub fn owns(token: Token) -> bool {
        token.0 >= TOKEN_BASE && token.0 < TOKEN_BASE * 2
    }
}

/// A new scraper from the metrics listener.
pub fn adopt(st: &mut ServerState, mut stream: TcpStream) {
    let now = st.now_ms;
    let Some(net) = st.net.as_deref_mut() else { return };
    let http = &mut net.http;
    if http.conns.len() >= MAX_CONNS {
        let _ = stream.write(&response(503, "Service Unavailable", "text/plain", b"too many connections\n", false));
        return;
    }
    let token = TOKEN_BASE + http.next % TOKEN_BASE;
    http.next = http.next.wrapping_add(1);
    if net.poll.registry().register(&mut stream, Token(token), Interest::READABLE).is_err() {
        return;
    }
    http.conns
        .insert(token, HttpConn { stream, request: Vec::new(), reply: Vec::new(), since_ms: now, answered: false });
}

/// Readiness on a metrics connection: read the request, answer it, write the answer.
pub fn on_event(st: &mut ServerState, token: Token) {
    // The metrics page is rendered with the connection released (rendering reads the state).
    let mut render = None;
    let mut done = false;
    {
        let Some(net) = st.net.as_deref_mut() else { return };
        let Some(conn) = net.http.conns.get_mut(&token.0) else { return };
        if !conn.answered {
            done = read_request(conn);
            if !done {
                match parse(&conn.request) {
                    Parsed::Incomplete if conn.request.len() <= MAX_REQUEST => {}
                    Parsed::Incomplete => {
                        conn.reply = response(
                            431,
                            "Request Header Fields Too Large",
                            "text/plain",
                            b"request too large\n",
                            false,
                        );
                        conn.answered = true;
                    }
                    Parsed::Bad => {
                        conn.reply = response(400, "Bad Request", "text/plain", b"not an HTTP request\n", false);
                        conn.answered = true;
                    }
                    Parsed::OtherMethod => {
                        conn.reply = response(405, "Method Not Allowed", "text/plain", b"GET only\n", false);
                        conn.answered = true;
                    }
                    Parsed::Get { path, head } => {
                        conn.answered = true;
                        match path.as_str() {
                            "/metrics" => render = Some(head),
                            "/" => conn.reply = response(200, "OK", "text/html; charset=utf-8", INDEX, head),
                            _ => conn.reply = response(404, "Not Found", "text/plain", b"not found\n", head),
                        }
                    }
                }
            }
        }
    }
    if let Some(head) = render {
        let executor = st.executor;
        let body = executor.metrics(st);
        if let Some(conn) = st.net.as_deref_mut().and_then(|n| n.http.conns.get_mut(&token.0)) {
            conn.reply = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.as_bytes(), head);
        }
    }
    let Some(net) = st.net.as_deref_mut() else { return };
    let Some(conn) = net.http.conns.get_mut(&token.0) else { return };
    if conn.answered && !done {
        done = write_reply(conn);
        if !done {
            let _ = net.poll.registry().reregister(&mut conn.stream, token, Interest::WRITABLE);
        }
    }
    if done && let Some(mut conn) = net.http.conns.remove(&token.0) {
        let _ = net.poll.registry().deregister(&mut conn.stream);
    }
}

/// Reads what arrived (up to a little past the limit); true when the peer is gone.
fn read_request(conn: &mut HttpConn) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                conn.request.extend_from_slice(&buf[..n]);
                if conn.request.len() > MAX_REQUEST {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Writes what the socket takes; true once the reply is out (or the peer is gone).
fn write_reply(conn: &mut HttpConn) -> bool {
    super::socket::write_pending(&mut conn.stream, &mut conn.reply).unwrap_or(true)
}

/// Closes scrapers that have not sent a request (or taken the reply) within 10 seconds.
pub fn close_idle(st: &mut ServerState) {
    let now = st.now_ms;
    let Some(net) = st.net.as_deref_mut() else { return };
    let stale: Vec<usize> =
        net.http.conns.iter().filter(|(_, c)| now.saturating_sub(c.since_ms) > IDLE_MS).map(|(t, _)| *t).collect();
    for t in stale {
        if let Some(mut conn) = net.http.conns.remove(&t) {
            debug!("metrics connection closed: idle");
            let _ = net.poll.registry().deregister(&mut conn.stream);
        }
    }
}

/// Metrics connections open now (INFO-style reporting and tests).
pub fn open(st: &ServerState) -> usize {
    st.net.as_deref().map_or(0, |n| n.http.conns.len())
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Incomplete,
    Bad,
    OtherMethod,
    /// GET (or HEAD: the same headers, no body) of a path, its query string dropped.
    Get {
        path: String,
        head: bool,
    },
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Incomplete,
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("/");
            let path = path.split('?').next().unwrap_or("/").to_string();
            match req.method {
                Some("GET") => Parsed::Get { path, head: false },
                Some("HEAD") => Parsed::Get { path, head: true },
                _ => Parsed::OtherMethod,
            }
        }
        Err(_) => Parsed::Bad,
    }
}

const INDEX: &[u8] = b"<html><head><title>Ember</title></head><body><a href=\"/metrics\">Metrics</a></body></html>\n";

fn response(code: u16, reason: &str, content_type: &str, body: &[u8], head: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_garbage_is_refused() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Get { path: "/metrics".into(), head: false }
        );
        assert_eq!(parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), Parsed::Get { path: "/metrics".into(), head: true });
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), Parsed::Incomplete);
        assert_eq!(parse(b"POST / HTTP/1.1\r\n\r\n"), Parsed::OtherMethod);
        assert_eq!(parse(b"*1\r\n$4\r\nPING\r\n"), Parsed::Bad);
        assert_eq!(parse(b"\x16\x03\x01\x00\x05hello"), Parsed::Bad);
        // Every prefix of a request is incomplete, never an error or a panic.
        let req = b"GET /metrics HTTP/1.1\r\nHost: localhost:9121\r\nAccept: */*\r\n\r\n";
        for i in 0..req.len() {
            assert_eq!(parse(&req[..i]), Parsed::Incomplete, "prefix {i}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let len = rng.random_range(0..200);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) {
                let mut v = b"GET /".to_vec();
                v.extend_from_slice(&buf);
                buf = v;
            }
            let _ = parse(&buf);
        }
    }
}
