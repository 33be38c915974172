//! TLS (`tls-port`): real clients (redis-cli --tls, redis-py ssl=True) against Ember with
//! certificates made at test time by the openssl CLI, certificate reload on CONFIG SET,
//! hostile handshakes, and replication over TLS with redis-server 7.0 both ways.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// A CA and the server and client certificates it signed.
struct Certs {
    ca: String,
    server_crt: String,
    server_key: String,
    client_crt: String,
    client_key: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI is required for the TLS tests: apt-get install -y openssl (see .ci/run)");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Makes `<tag>-ca.crt`, `<tag>-server.{crt,key}` (for localhost / 127.0.0.1) and
/// `<tag>-client.{crt,key}` in `dir`.
fn make_certs(dir: &Path, tag: &str) -> Certs {
    let f = |name: &str| format!("{tag}-{name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-sha256",
            "-days",
            "30",
            "-subj",
            &format!("/O=Ember Test/CN={tag} CA"),
            "-keyout",
            &f("ca.key"),
            "-out",
            &f("ca.crt"),
        ],
    );
    std::fs::write(
        dir.join(f("server.ext")),
        "keyUsage = digitalSignature, keyEncipherment\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(f("client.ext")),
        "keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    for who in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "rsa:2048",
                "-subj",
                &format!("/O=Ember Test/CN={tag} {who}"),
                "-keyout",
                &f(&format!("{who}.key")),
                "-out",
                &f(&format!("{who}.csr")),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &f(&format!("{who}.csr")),
                "-CA",
                &f("ca.crt"),
                "-CAkey",
                &f("ca.key"),
                "-CAcreateserial",
                "-days",
                "30",
                "-sha256",
                "-extfile",
                &f(&format!("{who}.ext")),
                "-out",
                &f(&format!("{who}.crt")),
            ],
        );
    }
    let p = |name: &str| dir.join(f(name)).to_string_lossy().into_owned();
    Certs {
        ca: p("ca.crt"),
        server_crt: p("server.crt"),
        server_key: p("server.key"),
        client_crt: p("client.crt"),
        client_key: p("client.key"),
    }
}

fn cert_dir() -> PathBuf {
    temp_dir("certs")
}

/// The server directives for `c`.
fn server_args(c: &Certs, tls_port: u16) -> Vec<String> {
    [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &c.server_crt,
        "--tls-key-file",
        &c.server_key,
        "--tls-ca-cert-file",
        &c.ca,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Ember with a plain port beside the TLS one (`--port 0` alone would mean no plain port, as
/// in Redis, once tls-port is set).
fn ember_tls(args: &[String]) -> Proc {
    let mut all = vec!["--port".to_string(), free_port().to_string()];
    all.extend_from_slice(args);
    ember(&refs(&all))
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// redis-cli over TLS, trusting `ca`, presenting the client certificate when `cert` is set.
/// Returns its output (stdout and stderr).
fn cli(port: u16, ca: &str, cert: Option<(&str, &str)>, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-p", &port.to_string(), "--tls", "--cacert", ca]);
    if let Some((crt, key)) = cert {
        cmd.args(["--cert", crt, "--key", key]);
    }
    let out = cmd
        .args(args)
        .output()
        .expect("redis-cli (with --tls) is required: apt-get install -y redis-tools (see .ci/run)");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn redis_cli_over_tls_needs_a_client_certificate_unless_optional() {
    let dir = cert_dir();
    let c = make_certs(&dir, "a");
    let tls_port = free_port();
    let ember = ember_tls(&server_args(&c, tls_port));
    let client = Some((c.client_crt.as_str(), c.client_key.as_str()));

    assert_eq!(cli(tls_port, &c.ca, client, &["SET", "k", "over tls"]).trim(), "OK");
    assert_eq!(cli(tls_port, &c.ca, client, &["GET", "k"]).trim(), "over tls");
    // The plain port serves the same data.
    let mut plain = ember.connect();
    assert_eq!(plain.cmd(&["GET", "k"]).as_str(), "over tls");

    // tls-auth-clients yes (the default): no certificate, no service.
    let refused = cli(tls_port, &c.ca, None, &["GET", "k"]);
    assert!(!refused.contains("over tls"), "a client without a certificate was served: {refused}");
    // A certificate from another CA is refused too.
    let other = make_certs(&dir, "b");
    let refused = cli(tls_port, &c.ca, Some((&other.client_crt, &other.client_key)), &["GET", "k"]);
    assert!(!refused.contains("over tls"), "a certificate of an unknown CA was accepted: {refused}");
    // The server carries on for everybody else.
    assert_eq!(plain.cmd(&["PING"]).as_str(), "PONG");

    // optional: a certificate is checked when given, not required.
    assert_eq!(plain.cmd(&["CONFIG", "SET", "tls-auth-clients", "optional"]).as_str(), "OK");
    assert_eq!(cli(tls_port, &c.ca, None, &["GET", "k"]).trim(), "over tls");
    assert_eq!(cli(tls_port, &c.ca, client, &["GET", "k"]).trim(), "over tls");
    let refused = cli(tls_port, &c.ca, Some((&other.client_crt, &other.client_key)), &["GET", "k"]);
    assert!(!refused.contains("over tls"), "optional still checks a certificate that is given: {refused}");
    assert_eq!(plain.cmd(&["CONFIG", "GET", "tls-auth-clients"]).children()[1].as_str(), "optional");
}

#[test]
fn redis_py_with_ssl_pipelines_large_values_and_resp3() {
    let dir = cert_dir();
    let c = make_certs(&dir, "py");
    let tls_port = free_port();
    let _ember = ember_tls(&server_args(&c, tls_port));
    let script = r#"
import sys, redis
port, ca, crt, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
for proto in (2, 3):
    r = redis.Redis(host='127.0.0.1', port=port, ssl=True, ssl_ca_certs=ca, ssl_certfile=crt, ssl_keyfile=key, protocol=proto)
    big = b'x' * (3 * 1024 * 1024 + 17)
    assert r.set('big', big)
    assert r.get('big') == big, 'large value changed on the way'
    p = r.pipeline(transaction=False)
    for i in range(5000):
        p.set(f'k{i}', i)
    for i in range(5000):
        p.get(f'k{i}')
    out = p.execute()
    assert out[5000:] == [str(i).encode() for i in range(5000)], 'pipelined replies out of order'
    h = r.execute_command('HELLO')
    h = dict(zip(h[::2], h[1::2])) if isinstance(h, list) else h
    assert h.get(b'proto', h.get('proto')) == proto, h
print('ok')
"#;
    let out = Command::new("python3")
        .args(["-c", script, &tls_port.to_string(), &c.ca, &c.client_crt, &c.client_key])
        .output()
        .expect("python3 is required for the TLS client test (see .ci/run)");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "redis-py over TLS failed (redis-py is required: pip install redis):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn certificates_reload_on_config_set_and_bad_files_change_nothing() {
    let dir = cert_dir();
    let a = make_certs(&dir, "one");
    let b = make_certs(&dir, "two");
    let tls_port = free_port();
    let ember = ember_tls(&server_args(&a, tls_port));
    let mut plain = ember.connect();
    assert_eq!(plain.cmd(&["SET", "k", "v"]).as_str(), "OK");
    let with_a = Some((a.client_crt.as_str(), a.client_key.as_str()));
    let with_b = Some((b.client_crt.as_str(), b.client_key.as_str()));
    assert_eq!(cli(tls_port, &a.ca, with_a, &["GET", "k"]).trim(), "v");

    // A file that does not load: Redis's error, and the old certificates stay.
    let redis = redis_with(&refs(&server_args(&a, free_port())));
    let mut r = redis.connect();
    let bad = ["CONFIG", "SET", "tls-cert-file", "/nonexistent/cert.pem"];
    let ours = plain.cmd(&bad).as_str();
    assert_eq!(ours, r.cmd(&bad).as_str());
    assert_eq!(
        ours,
        "ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs."
    );
    assert_eq!(plain.cmd(&["CONFIG", "GET", "tls-cert-file"]).children()[1].as_str(), a.server_crt);
    assert_eq!(cli(tls_port, &a.ca, with_a, &["GET", "k"]).trim(), "v");

    // The other CA's certificates, all at once: new connections use them.
    let set =
        ["CONFIG", "SET", "tls-cert-file", &b.server_crt, "tls-key-file", &b.server_key, "tls-ca-cert-file", &b.ca];
    assert_eq!(plain.cmd(&set).as_str(), "OK");
    assert_eq!(cli(tls_port, &b.ca, with_b, &["GET", "k"]).trim(), "v");
    let stale = cli(tls_port, &a.ca, with_a, &["GET", "k"]);
    assert!(stale.contains("certificate verify failed"), "the old certificate is still served: {stale}");

    // An encrypted key (PKCS#8, what `openssl rsa -aes256` writes) needs tls-key-file-pass.
    let encrypted = format!("{}.encrypted", b.server_key);
    openssl(&dir, &["rsa", "-in", &b.server_key, "-out", &encrypted, "-aes256", "-passout", "pass:1234"]);
    let no_pass = plain.cmd(&["CONFIG", "SET", "tls-key-file", &encrypted]).as_str();
    assert!(no_pass.contains("Unable to update TLS configuration"), "{no_pass}");
    assert_eq!(plain.cmd(&["CONFIG", "SET", "tls-key-file-pass", "1234", "tls-key-file", &encrypted]).as_str(), "OK");
    assert_eq!(cli(tls_port, &b.ca, with_b, &["GET", "k"]).trim(), "v");
    let wrong = plain.cmd(&["CONFIG", "SET", "tls-key-file-pass", "4321"]).as_str();
    assert!(wrong.contains("Unable to update TLS configuration"), "a wrong password was taken: {wrong}");

    // tls-port moves at run time.
    let moved = free_port();
    assert_eq!(plain.cmd(&["CONFIG", "SET", "tls-port", &moved.to_string()]).as_str(), "OK");
    assert_eq!(cli(moved, &b.ca, with_b, &["GET", "k"]).trim(), "v");
    assert!(TcpStream::connect(("127.0.0.1", tls_port)).is_err(), "the old tls-port still listens");
}

#[test]
fn without_a_certificate_tls_does_not_start_as_in_redis() {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .args(["--port", &port.to_string(), "--tls-port", &free_port().to_string(), "--save", ""])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "ember-server started with tls-port and no certificate");
    assert!(log.contains("No tls-cert-file configured!"), "{log}");
    assert!(log.contains("Failed to configure TLS. Check logs for more info."), "{log}");
}

#[test]
fn tls_only_server_has_no_plain_port() {
    let dir = cert_dir();
    let c = make_certs(&dir, "only");
    let tls_port = free_port();
    let mut args = server_args(&c, tls_port);
    args.extend(["--tls-auth-clients".to_string(), "no".to_string()]);
    let ember = ember(&refs(&args));
    assert_eq!(ember.port, tls_port, "the log reports the TLS port when there is no plain one");
    assert_eq!(cli(tls_port, &c.ca, None, &["CONFIG", "GET", "port"]).trim(), "port\n0");
    assert_eq!(cli(tls_port, &c.ca, None, &["PING"]).trim(), "PONG");
    // A plain port opened and closed again at run time, as Redis's "switch between tcp and
    // tls ports".
    let plain_port = free_port();
    assert_eq!(cli(tls_port, &c.ca, None, &["CONFIG", "SET", "port", &plain_port.to_string()]).trim(), "OK");
    assert_eq!(Conn::new(plain_port).cmd(&["PING"]).as_str(), "PONG");
    assert_eq!(cli(tls_port, &c.ca, None, &["CONFIG", "SET", "port", "0"]).trim(), "OK");
    assert!(TcpStream::connect(("127.0.0.1", plain_port)).is_err(), "port 0 leaves the plain port open");
}

/// Whether the server closed the connection (read gives end of stream or an error) in time.
fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    s.set_read_timeout(Some(d)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an alert
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn garbage_and_oversized_handshakes_close_only_that_connection() {
    let dir = cert_dir();
    let c = make_certs(&dir, "hostile");
    let tls_port = free_port();
    let ember = ember_tls(&server_args(&c, tls_port));
    let client = Some((c.client_crt.as_str(), c.client_key.as_str()));
    let mut plain = ember.connect();
    assert_eq!(plain.cmd(&["SET", "k", "v"]).as_str(), "OK");

    // RESP where a ClientHello should be.
    let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)), "plaintext on the TLS port was not refused");
    // A handshake record that claims 16 MB, then keeps sending.
    let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff]).unwrap();
    let _ = s.write_all(&vec![0x41; 200_000]);
    assert!(closed_within(&mut s, Duration::from_secs(5)), "an oversized handshake was not refused");
    // Random bytes.
    let mut s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let _ = s.write_all(&noise);
    assert!(closed_within(&mut s, Duration::from_secs(5)), "garbage was not refused");
    // A client that connects and says nothing holds only its own connection.
    let _silent = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();

    assert_eq!(cli(tls_port, &c.ca, client, &["GET", "k"]).trim(), "v");
    assert_eq!(plain.cmd(&["GET", "k"]).as_str(), "v");
    // No key is readable before AUTH over TLS either.
    assert_eq!(plain.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]).as_str(), "OK");
    let denied = cli(tls_port, &c.ca, client, &["GET", "k"]);
    assert!(denied.contains("NOAUTH"), "{denied}");
    assert_eq!(cli(tls_port, &c.ca, client, &["-a", "s3cret", "--no-auth-warning", "GET", "k"]).trim(), "v");
}

fn wait_link_up(conn: &mut Conn) {
    assert!(
        eventually(Duration::from_secs(20), || info_str(conn, "replication", "master_link_status") == "up"),
        "the replica did not sync over TLS"
    );
}

#[test]
fn replication_over_tls_with_redis_both_ways() {
    let dir = cert_dir();
    let c = make_certs(&dir, "repl");
    let ember_tls_port = free_port();
    let mut ember_args = server_args(&c, ember_tls_port);
    ember_args.extend(["--tls-replication".to_string(), "yes".to_string()]);
    let redis_tls = free_port();
    let mut redis_args = server_args(&c, redis_tls);
    redis_args.extend(["--tls-replication".to_string(), "yes".to_string()]);

    // redis-server master, Ember replica through the master's tls-port.
    let master = redis_with(&refs(&redis_args));
    let mut m = master.connect();
    assert_eq!(m.cmd(&["SET", "before", "1"]).as_str(), "OK");
    let replica = ember_tls(&ember_args);
    let mut e = replica.connect();
    assert_eq!(e.cmd(&["REPLICAOF", "127.0.0.1", &redis_tls.to_string()]).as_str(), "OK");
    wait_link_up(&mut e);
    assert_eq!(m.cmd(&["SET", "after", "2"]).as_str(), "OK");
    assert!(eventually(Duration::from_secs(10), || e.cmd(&["GET", "after"]).as_str() == "2"), "stream over TLS");
    assert_eq!(e.cmd(&["GET", "before"]).as_str(), "1", "full sync over TLS");
    drop(master);

    // Ember master (the same one, promoted), redis-server replica through Ember's tls-port.
    assert_eq!(e.cmd(&["REPLICAOF", "NO", "ONE"]).as_str(), "OK");
    assert_eq!(e.cmd(&["SET", "from-ember", "3"]).as_str(), "OK");
    let theirs = redis_with(&refs(&redis_args));
    let mut r = theirs.connect();
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &ember_tls_port.to_string()]).as_str(), "OK");
    wait_link_up(&mut r);
    assert_eq!(r.cmd(&["GET", "from-ember"]).as_str(), "3");
    assert_eq!(e.cmd(&["SET", "streamed", "4"]).as_str(), "OK");
    assert!(eventually(Duration::from_secs(10), || r.cmd(&["GET", "streamed"]).as_str() == "4"), "stream over TLS");
}
