//! Test rig: start the real `ember-server` binary (and a real `redis-server` for differential
//! tests) on free ports in temporary directories, and talk raw RESP to them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("ember-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// A running server process, killed (and its directory removed) on drop.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Proc {
    /// Kills the process (like a crash) but keeps its data directory for another server.
    pub fn kill_keep_dir(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir = temp_dir("discarded");
    }

    pub fn connect(&self) -> Conn {
        Conn::new(self.port)
    }

    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        c.get_connection().expect("connect")
    }

    /// Waits for the process to exit by itself (e.g. after SHUTDOWN); true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// Starts ember-server with `--port 0` and extra arguments; reads the bound port from its log.
pub fn ember(args: &[&str]) -> Proc {
    ember_in(&temp_dir("ember"), args)
}

/// [`ember`] with a given data directory (restarts, files written by another server).
pub fn ember_in(dir: &std::path::Path, args: &[&str]) -> Proc {
    let dir = dir.to_path_buf();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember-server"));
    // A config file, if any, must come first, as with redis-server.
    let (file, args) = match args.first() {
        Some(f) if !f.starts_with("--") => (Some(*f), &args[1..]),
        _ => (None, args),
    };
    cmd.args(file);
    // DEBUG (off by default, as in Redis) is how tests compare datasets; a test that wants
    // the default passes `--enable-debug-command no`.
    cmd.args(["--port", "0", "--bind", "127.0.0.1", "--enable-debug-command", "yes", "--dir"])
        .arg(&dir)
        .args(["--save", ""])
        .args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("spawn ember-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        // EMBER_TEST_LOG=1 shows the servers' logs (a failing test's story).
        let show = std::env::var_os("EMBER_TEST_LOG").is_some();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if show {
                eprintln!("[ember] {line}");
            }
            // The plain TCP port, or the TLS port of a server without one (`--port 0 --tls-port N`).
            let reported = line
                .split("accept connections tcp port ")
                .nth(1)
                .or_else(|| line.split("accept connections tls port ").nth(1));
            if let Some(port) = reported.and_then(|p| p.trim().parse::<u16>().ok())
                && !sent
            {
                let _ = tx.send(port);
                sent = true;
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(20)).expect("ember-server did not report its port");
    Proc { child, port, dir }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts a real redis-server 7.0. Fails loudly when it is not installed: the differential
/// suite is the backbone of the tests and must not be skipped silently.
pub fn redis() -> Proc {
    redis_with(&["--enable-debug-command", "yes"])
}

/// [`redis`] with its defaults changed by `args`.
pub fn redis_with(args: &[&str]) -> Proc {
    redis_in(&temp_dir("redis"), args)
}

/// redis-server on a free port with data in `dir` (later `args` override the defaults). The
/// port is checked to be this child's: between [`free_port`] and the bind another test's
/// server may take it, and a test would then talk to (and flush) somebody else's server.
pub fn redis_in(dir: &std::path::Path, args: &[&str]) -> Proc {
    let dir = dir.to_path_buf();
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server is required for the differential tests: apt-get install -y redis-server (see .ci/run)",
            );
        let mut p = Proc { child, port, dir: dir.clone() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // Ours only if the server on the port is this child (another test's server may
            // have taken the port between free_port and the bind).
            if serves_pid(port, p.child.id()) {
                // A server loading its data answers INFO but refuses (or half answers) the
                // rest: wait until the dataset is in.
                let mut c = p.connect();
                let loaded = eventually(Duration::from_secs(30), || {
                    c.cmd(&["INFO", "persistence"]).as_str().contains("loading:0")
                });
                assert!(loaded, "redis-server did not finish loading its data");
                return p;
            }
            if let Ok(Some(_)) = p.child.try_wait() {
                break; // port taken: try another
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        p.port = 0;
    }
    panic!("could not start redis-server");
}

/// Whether the server listening on `port` reports `pid` in INFO server.
fn serves_pid(port: u16, pid: u32) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let mut buf = vec![0u8; 16384];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("process_id:") || !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).contains(&format!("process_id:{pid}\r\n"))
}

/// Encodes argv as a RESP multibulk request.
pub fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One reply frame, kept as a tree so tests can normalise order where Redis's order is arbitrary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Frame {
    Leaf(Vec<u8>),
    Agg(Vec<u8>, Vec<Frame>),
}

impl Frame {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Frame::Leaf(b) => b.clone(),
            Frame::Agg(h, kids) => {
                let mut v = h.clone();
                for k in kids {
                    v.extend(k.bytes());
                }
                v
            }
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// The payload of a simple/bulk reply as a string.
    pub fn as_str(&self) -> String {
        let t = self.text();
        match t.as_bytes().first() {
            Some(b'$') => t.split_once("\r\n").map(|(_, r)| r.trim_end_matches("\r\n").to_string()).unwrap_or_default(),
            _ => t[1..].trim_end_matches("\r\n").to_string(),
        }
    }

    pub fn children(&self) -> &[Frame] {
        match self {
            Frame::Agg(_, k) => k,
            Frame::Leaf(_) => &[],
        }
    }
}

pub struct Conn {
    pub r: BufReader<TcpStream>,
}

impl Conn {
    pub fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Conn { r: BufReader::new(s) }
    }

    /// How long a read may wait (10 s by default): longer for servers busy loading big data.
    pub fn set_timeout(&mut self, d: Duration) {
        self.r.get_ref().set_read_timeout(Some(d)).expect("timeout");
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        self.r.get_mut().write_all(b).expect("write");
    }

    /// Writes what the server takes: false once it closed the connection.
    pub fn try_send_raw(&mut self, b: &[u8]) -> bool {
        self.r.get_mut().write_all(b).is_ok()
    }

    pub fn send(&mut self, args: &[&str]) {
        let v: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        self.send_raw(&encode(&v));
    }

    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        self.send(args);
        self.read()
    }

    pub fn cmd_bytes(&mut self, args: &[Vec<u8>]) -> Frame {
        self.send_raw(&encode(args));
        self.read()
    }

    fn line(&mut self) -> Vec<u8> {
        let mut l = Vec::new();
        self.r.read_until(b'\n', &mut l).expect("read line");
        assert!(!l.is_empty(), "connection closed while reading a reply");
        l
    }

    /// Reads one complete reply frame.
    pub fn read(&mut self) -> Frame {
        let l = self.line();
        let n = || -> i64 { String::from_utf8_lossy(&l[1..l.len() - 2]).parse().unwrap_or(-1) };
        match l[0] {
            b'$' | b'=' | b'!' => {
                let len = n();
                if len < 0 {
                    return Frame::Leaf(l);
                }
                let mut body = vec![0; len as usize + 2];
                self.r.read_exact(&mut body).expect("read bulk");
                let mut v = l.clone();
                v.extend(body);
                Frame::Leaf(v)
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let mut count = n();
                if count < 0 {
                    return Frame::Leaf(l);
                }
                if l[0] == b'%' || l[0] == b'|' {
                    count *= 2;
                }
                let kids = (0..count).map(|_| self.read()).collect();
                Frame::Agg(l, kids)
            }
            _ => Frame::Leaf(l),
        }
    }

    /// A reply if one starts arriving within `wait`.
    pub fn try_read(&mut self, wait: Duration) -> Option<Frame> {
        self.set_timeout(wait);
        let ready = self.r.fill_buf().is_ok_and(|b| !b.is_empty());
        self.set_timeout(Duration::from_secs(10));
        ready.then(|| self.read())
    }

    /// Reads whatever arrives until the peer closes or `wait` passes without data.
    pub fn read_until_close(&mut self, wait: Duration) -> (Vec<u8>, bool) {
        self.r.get_ref().set_read_timeout(Some(wait)).expect("timeout");
        let mut out = self.r.buffer().to_vec();
        let n = out.len();
        self.r.consume(n);
        let mut buf = [0u8; 65536];
        loop {
            match self.r.get_mut().read(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
                Err(_) => return (out, false),
            }
        }
    }
}

/// Polls `f` until it returns true or the timeout passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A numeric INFO field, panicking with the whole section when it is missing.
pub fn info_field(c: &mut Conn, section: &str, field: &str) -> u64 {
    let info = c.cmd(&["INFO", section]).as_str();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing in {info}"))
}

/// A text INFO field, panicking with the whole section when it is missing.
pub fn info_str(c: &mut Conn, section: &str, field: &str) -> String {
    let info = c.cmd(&["INFO", section]).as_str();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{field} missing in {info}"))
}

/// A seeded xorshift generator for the fuzzers: the same seed replays the same run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}
