//! The kinds of client socket Ember serves, TCP, TLS over TCP (`tls-port`) and Unix
//! (`unixsocket`), behind one type each for listeners and connections, so the event loop
//! treats them alike.

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::tls::TlsStream;

/// What a TCP listener's connections are: RESP clients, RESP clients over TLS (`tls-port`,
/// wrapped in a TLS session by the caller), or scrapers of the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    Resp,
    Tls,
    Metrics,
    /// Other nodes of the cluster, on the cluster bus port.
    Bus,
}

pub enum Listener {
    Tcp(TcpListener, Serves),
    /// With the path it is bound to (clients are named `<path>:0`, as in Redis).
    Unix(UnixListener, String),
}

pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Unix(UnixStream),
}

/// Who connected: a TCP peer, or a client of the Unix socket at a path.
pub enum Peer {
    Tcp(std::net::SocketAddr),
    Unix(String),
}

impl Peer {
    /// As CLIENT LIST shows it.
    pub fn name(&self) -> String {
        match self {
            Peer::Tcp(a) => a.to_string(),
            Peer::Unix(path) => format!("{path}:0"),
        }
    }
}

impl Listener {
    pub fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l, _) => {
                let (s, a) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), Peer::Tcp(a)))
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), Peer::Unix(path.clone())))
            }
        }
    }

    /// What its connections are (the Unix socket serves RESP).
    pub fn serves(&self) -> Serves {
        match self {
            Listener::Tcp(_, s) => *s,
            Listener::Unix(..) => Serves::Resp,
        }
    }

    /// The TCP port it listens on, if TCP.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l, _) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }

    /// Binds the Unix socket at `path` (replacing a stale file) with permissions `perm`
    /// (octal, 0: the umask's).
    pub fn unix(path: &str, perm: u32) -> io::Result<Listener> {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path)?;
        if perm != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
        }
        Ok(Listener::Unix(l, path.to_string()))
    }
}

impl Stream {
    /// The local address as CLIENT LIST's `laddr` shows it.
    pub fn local_name(&self, peer: &Peer) -> String {
        match (self, peer) {
            (Stream::Tcp(s), _) => s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            (Stream::Tls(s), _) => s.tcp().local_addr().map(|a| a.to_string()).unwrap_or_default(),
            (Stream::Unix(_), p) => p.name(),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.tcp().as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// TLS records are waiting for room in the socket (the replies were taken already).
    pub fn tls_pending(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.wants_write())
    }

    /// The remote address of a TCP or TLS connection.
    pub fn peer_addr(&self) -> Option<String> {
        let a = match self {
            Stream::Tcp(s) => s.peer_addr(),
            Stream::Tls(s) => s.tcp().peer_addr(),
            Stream::Unix(_) => return None,
        };
        a.ok().map(|a| a.to_string())
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Tls(s) => s.tcp_mut().register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Tls(s) => s.tcp_mut().reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Tls(s) => s.tcp_mut().deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l, _) => l.register(r, t, i),
            Listener::Unix(l, _) => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l, _) => l.reregister(r, t, i),
            Listener::Unix(l, _) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l, _) => l.deregister(r),
            Listener::Unix(l, _) => l.deregister(r),
        }
    }
}

/// Writes `buf` to a non-blocking socket until it is empty or the socket is full, removing
/// what was written. `Ok(true)`: all out; `Ok(false)`: the socket is full; `Err`: the peer
/// is gone (or the write failed).
pub fn write_pending(w: &mut impl Write, buf: &mut Vec<u8>) -> io::Result<bool> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// An outgoing TCP connection (a replica to its master, MIGRATE), from `bind-source-addr`
/// when it is set, as Redis binds its outgoing sockets.
pub fn connect(
    to: &std::net::SocketAddr,
    timeout: std::time::Duration,
    source: &str,
) -> io::Result<std::net::TcpStream> {
    if source.is_empty() {
        return std::net::TcpStream::connect_timeout(to, timeout);
    }
    let ip: std::net::IpAddr =
        source.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad bind-source-addr"))?;
    let sock =
        socket2::Socket::new(socket2::Domain::for_address(*to), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sock.bind(&std::net::SocketAddr::new(ip, 0).into())?;
    sock.connect_timeout(&(*to).into(), timeout)?;
    Ok(sock.into())
}
