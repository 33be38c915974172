//! A diskless full sync's image parsed as it arrives (Redis's `repl-diskless-load` other
//! than `disabled`): the RDB parser reads the master's socket itself, waiting up to
//! `repl-timeout` for each read as Redis's blocking read does. The image is never held
//! whole, and the master's transfer advances only as fast as the replica loads: a slow
//! replica holds its master's pipe, and a replica that stops reading is one the master can
//! time out, as with Redis.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tracing::info;

use super::ServerState;
use super::incoming_image::MARK_LEN;
use super::replica::{LinkState, MAX_IMAGE};
use super::socket::Stream;

/// The master's socket as the parser's input.
pub struct LinkReader {
    /// Bytes that came with the image's header line: read before the socket.
    pre: BytesMut,
    stream: Stream,
    /// Bytes of the image still to come (`$<len>` transfers; nothing past them is read);
    /// None for an EOF-marked image.
    left: Option<usize>,
    /// A poller of the socket alone, to wait for its bytes (the event loop's poller is not
    /// ours to wait on while the parser runs).
    poll: Poll,
    events: Events,
    timeout: Duration,
    /// When a newline last told the master this replica is alive.
    newline: Instant,
    /// Set by SIGTERM/SIGINT: the wait ends (the server shuts down without the image).
    signal: Option<Arc<AtomicBool>>,
    signalled: bool,
}

impl LinkReader {
    fn new(
        stream: Stream,
        pre: BytesMut,
        left: Option<usize>,
        timeout: Duration,
        signal: Option<Arc<AtomicBool>>,
    ) -> io::Result<LinkReader> {
        let poll = Poll::new()?;
        poll.registry().register(&mut SourceFd(&stream.raw_fd()), Token(0), Interest::READABLE)?;
        let events = Events::with_capacity(4);
        Ok(LinkReader { pre, stream, left, poll, events, timeout, newline: Instant::now(), signal, signalled: false })
    }

    /// A newline to the master once a second while loading: no ACK can come before the
    /// load ends, and the master counts the newline as life (Redis's
    /// replicationSendNewlineToMaster). A failure shows on the next read.
    fn keepalive(&mut self) {
        if self.newline.elapsed() >= Duration::from_secs(1) {
            self.newline = Instant::now();
            let _ = self.stream.write(b"\n").and_then(|_| self.stream.flush());
        }
    }

    fn consumed(&mut self, n: usize) -> usize {
        if let Some(l) = self.left.as_mut() {
            *l -= n;
        }
        n
    }
}

impl Read for LinkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = self.left.map_or(buf.len(), |l| l.min(buf.len()));
        if max == 0 {
            return Ok(0);
        }
        if !self.pre.is_empty() {
            let n = max.min(self.pre.len());
            buf[..n].copy_from_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Ok(self.consumed(n));
        }
        let since = Instant::now();
        loop {
            self.keepalive();
            match self.stream.read(&mut buf[..max]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection lost")),
                Ok(n) => return Ok(self.consumed(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.signal.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                self.signalled = true;
                return Err(io::Error::other("shutting down"));
            }
            let waited = since.elapsed();
            if waited >= self.timeout {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout reading from the master"));
            }
            // Short waits: a signal is noticed soon.
            let wait = (self.timeout - waited).min(Duration::from_millis(100));
            if let Err(e) = self.poll.poll(&mut self.events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
        }
    }
}

/// Loads the image the master announced (`len` bytes, or EOF-marked with `mark`) from the
/// link's socket, then hands the socket back to the link for the stream of writes. Ok(false):
/// the link changed while the image loaded (a client pointed this server elsewhere). Err:
/// why the link fails (the half-loaded data is gone, as Redis empties it).
pub fn load_from_master(st: &mut ServerState, len: Option<usize>, mark: &[u8]) -> Result<bool, String> {
    let timeout = Duration::from_secs(st.config.int("repl-timeout").max(1) as u64);
    let signal = super::shutdown::signal_flag(st);
    let replacing = st.config.str("repl-diskless-load") != "swapdb";
    let Some(link) = st.master.as_deref_mut() else { return Ok(false) };
    let Some((stream, pre)) = link.take_socket() else { return Err("no connection to the master".into()) };
    link.state = LinkState::Transfer;
    link.replacing_data = replacing;
    let mut reader =
        LinkReader::new(stream, pre, len, timeout, signal).map_err(|e| format!("watching the master's socket: {e}"))?;
    if replacing {
        super::replica::attach_to_new_master(st);
        info!("MASTER <-> REPLICA sync: Flushing old data");
    }
    info!("MASTER <-> REPLICA sync: Loading DB in memory");
    let loaded = st.load_rdb_stream(&mut reader, len, MAX_IMAGE);
    if reader.signalled {
        super::shutdown::shutdown_on_signal(st);
    }
    // The bytes read past the image: the EOF mark first, when there is one.
    let result = loaded.map_err(|e| format!("Failed trying to load the MASTER synchronization DB from socket: {e}"));
    let result = result.and_then(|mut rest| {
        if len.is_none() {
            if rest.len() < MARK_LEN {
                let mut more = vec![0; MARK_LEN - rest.len()];
                reader.read_exact(&mut more).map_err(|e| format!("reading the EOF mark: {e}"))?;
                rest.extend_from_slice(&more);
            }
            if &rest[..MARK_LEN] != mark {
                return Err("Replication stream EOF marker is broken".to_string());
            }
            rest.drain(..MARK_LEN);
        }
        Ok(rest)
    });
    // Still the link that asked for the image (clients were served while it loaded, and
    // one may have pointed this server elsewhere): it gets its socket back.
    let Some(link) = st.master.as_deref_mut().filter(|l| l.state == LinkState::Transfer) else {
        return Ok(false);
    };
    match result {
        Ok(rest) => {
            let mut inbuf = BytesMut::from(&rest[..]);
            inbuf.extend_from_slice(&reader.pre);
            link.give_socket(reader.stream, inbuf);
            Ok(true)
        }
        Err(why) => Err(why),
    }
}
