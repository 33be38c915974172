//! TLS with rustls: the contexts built from the `tls-*` directives (rebuilt on CONFIG SET, so
//! certificates reload without a restart), and [`TlsStream`], a non-blocking TCP socket whose
//! bytes pass through a rustls session. The event loop stays single-threaded: a TLS client
//! is an ordinary client whose reads and writes go through the session.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs as provider_impl};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, InconsistentKeys, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use tracing::{debug, warn};

use crate::config::Config;

/// The message CONFIG SET gives when a TLS directive leaves no usable context (the reason is
/// in the log, as in Redis).
pub const UPDATE_FAILED: &str = "Unable to update TLS configuration. Check server logs.";

/// What TLS connections are made with: the server side for `tls-port`, the client side for
/// replication to a TLS master (`tls-replication`).
pub struct TlsContext {
    pub server: Arc<ServerConfig>,
    /// None without CAs to check a master's certificate against.
    pub client: Option<Arc<ClientConfig>>,
}

/// Whether the configuration asks for TLS anywhere (Redis configures TLS only then).
pub fn wanted(cfg: &Config) -> bool {
    cfg.int("tls-port") != 0 || cfg.bool("tls-replication") || cfg.bool("tls-cluster")
}

/// The names OpenSSL gives the suites rustls offers: `tls-ciphersuites` (TLS 1.3) and
/// `tls-ciphers` (TLS 1.2) are written in OpenSSL's words.
const SUITE_NAMES: &[(&str, &str)] = &[
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

fn suite_named(openssl: &str) -> Option<SupportedCipherSuite> {
    let (_, ours) = SUITE_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(openssl))?;
    provider_impl::ALL_CIPHER_SUITES.iter().copied().find(|s| format!("{:?}", s.suite()) == *ours)
}

fn is_tls13(s: &SupportedCipherSuite) -> bool {
    matches!(s, SupportedCipherSuite::Tls13(_))
}

/// An OpenSSL cipher list (`tls-ciphers`, TLS 1.2): named suites are taken, `!`/`-` names
/// removed; group words (DEFAULT, HIGH, ECDHE...) stand for every TLS 1.2 suite rustls has.
/// As with OpenSSL, a list that selects nothing is an error.
fn tls12_suites(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let all: Vec<SupportedCipherSuite> =
        provider_impl::ALL_CIPHER_SUITES.iter().copied().filter(|s| !is_tls13(s)).collect();
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    let mut removed: Vec<SupportedCipherSuite> = Vec::new();
    for word in list.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
        if let Some(name) = word.strip_prefix(['!', '-']) {
            removed.extend(suite_named(name));
        } else if word.starts_with('+') || word.starts_with('@') {
            continue;
        } else if let Some(s) = suite_named(word) {
            if !out.iter().any(|o| o.suite() == s.suite()) {
                out.push(s);
            }
        } else if word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            for s in &all {
                if !out.iter().any(|o| o.suite() == s.suite()) {
                    out.push(*s);
                }
            }
        }
    }
    out.retain(|s| !removed.iter().any(|r| r.suite() == s.suite()));
    if out.is_empty() {
        return Err(format!("Failed to configure ciphers: {list}"));
    }
    Ok(out)
}

/// `tls-ciphersuites` (TLS 1.3): names OpenSSL knows and rustls has; unknown ones are passed
/// over as OpenSSL does, but a list with none at all is an error.
fn tls13_suites(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let out: Vec<SupportedCipherSuite> =
        list.split(':').filter_map(|w| suite_named(w.trim())).filter(is_tls13).collect();
    if out.is_empty() {
        return Err(format!("Failed to configure ciphersuites: {list}"));
    }
    Ok(out)
}

/// `tls-protocols`: "TLSv1.2 TLSv1.3" by default. rustls has no TLS 1.0 or 1.1, so those are
/// accepted in the list but never negotiated (a warning says so).
fn protocols(list: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if list.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut out = Vec::new();
    for word in list.split(' ').filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1" | "tlsv1.1" => warn!("{word} in tls-protocols is not offered: rustls supports TLSv1.2 and TLSv1.3"),
            _ => {
                return Err("Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.".into());
            }
        }
    }
    if out.is_empty() {
        return Err("tls-protocols names no protocol rustls supports (TLSv1.2, TLSv1.3)".into());
    }
    Ok(out)
}

/// The crypto provider with the suites the directives allow.
fn provider(cfg: &Config) -> Result<Arc<CryptoProvider>, String> {
    let mut p = provider_impl::default_provider();
    let ciphers = cfg.str("tls-ciphers");
    let suites13 = cfg.str("tls-ciphersuites");
    if !ciphers.is_empty() || !suites13.is_empty() {
        let mut suites: Vec<SupportedCipherSuite> = p.cipher_suites.iter().copied().filter(is_tls13).collect();
        if !suites13.is_empty() {
            suites = tls13_suites(suites13)?;
        }
        if ciphers.is_empty() {
            suites.extend(p.cipher_suites.iter().copied().filter(|s| !is_tls13(s)));
        } else {
            suites.extend(tls12_suites(ciphers)?);
        }
        p.cipher_suites = suites;
    }
    Ok(Arc::new(p))
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("Failed to load certificate: {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("Failed to load certificate: {path}: no certificate in the file"));
    }
    Ok(certs)
}

/// A private key in PEM: PKCS#8, PKCS#1 or SEC1, or an encrypted PKCS#8 key (PBES2, what
/// `openssl pkey/rsa -aes256` writes) opened with `pass` (tls-key-file-pass).
fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("Failed to load private key: {path}: {e}");
    let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        if pass.is_empty() {
            return Err(fail(&"the key is encrypted and no password is set"));
        }
        let (_, doc) = pkcs8::der::Document::from_pem(&text).map_err(|e| fail(&e))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| fail(&e))?;
        let plain = info.decrypt(pass).map_err(|_| fail(&"bad decrypt (wrong password?)"))?;
        return Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(fail(&"legacy encrypted PEM is not supported: convert it with openssl pkcs8 -topk8"));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| fail(&e))
}

/// The trusted CAs: `tls-ca-cert-file` and every certificate file in `tls-ca-cert-dir`.
fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let fail = |e: String| format!("Failed to configure CA certificate(s) file/directory: {e}");
    let mut roots = RootCertStore::empty();
    if !file.is_empty() {
        for c in load_certs(file).map_err(fail)? {
            roots.add(c).map_err(|e| fail(format!("{file}: {e}")))?;
        }
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("{dir}: {e}")))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            // Hashed links and other files: whatever holds PEM certificates is taken.
            if let Ok(it) = CertificateDer::pem_file_iter(&path) {
                for c in it.flatten() {
                    let _ = roots.add(c);
                }
            }
        }
    }
    if roots.is_empty() {
        return Err(fail("no CA certificate found".into()));
    }
    Ok(roots)
}

/// Builds the TLS contexts from the `tls-*` directives. Errors are Redis's log lines.
pub fn configure(cfg: &Config) -> Result<TlsContext, String> {
    let cert_file = cfg.str("tls-cert-file");
    let key_file = cfg.str("tls-key-file");
    if cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let auth_clients = cfg.str("tls-auth-clients");
    let (ca_file, ca_dir) = (cfg.str("tls-ca-cert-file"), cfg.str("tls-ca-cert-dir"));
    let needs_ca = auth_clients != "no" || cfg.bool("tls-replication") || cfg.bool("tls-cluster");
    if needs_ca && ca_file.is_empty() && ca_dir.is_empty() {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!".into());
    }
    let versions = protocols(cfg.str("tls-protocols"))?;
    let provider = provider(cfg)?;
    let certs = load_certs(cert_file)?;
    let key = load_key(key_file, cfg.str("tls-key-file-pass"))?;
    let roots =
        if ca_file.is_empty() && ca_dir.is_empty() { None } else { Some(Arc::new(load_roots(ca_file, ca_dir)?)) };

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS: {e}"))?;
    let builder = match (&roots, auth_clients) {
        (Some(roots), "yes" | "optional") => {
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(&provider));
            if auth_clients == "optional" {
                v = v.allow_unauthenticated();
            }
            let v = v.build().map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
            builder.with_client_cert_verifier(v)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(certified(certs.clone(), key.clone_key(), &provider, key_file)?);
    server.ignore_client_order = cfg.bool("tls-prefer-server-ciphers");
    server.session_storage = if cfg.bool("tls-session-caching") {
        ServerSessionMemoryCache::new(cfg.int("tls-session-cache-size").max(1) as usize)
    } else {
        Arc::new(NoServerSessionStorage {})
    };

    // The client side (replication): its own certificate when tls-client-cert-file is set.
    let client_cert = match (cfg.str("tls-client-cert-file"), cfg.str("tls-client-key-file")) {
        ("", _) | (_, "") => certified(certs, key, &provider, key_file)?,
        (c, k) => certified(load_certs(c)?, load_key(k, cfg.str("tls-client-key-file-pass"))?, &provider, k)?,
    };
    let client_builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS: {e}"))?;
    // Without CAs (tls-auth-clients no, no tls-replication) no master can be trusted: no
    // client side.
    let client = match roots {
        Some(roots) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
            let config = client_builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
                .with_client_cert_resolver(client_cert);
            Some(Arc::new(config))
        }
        None => None,
    };
    Ok(TlsContext { server: Arc::new(server), client })
}

/// A certificate chain with its private key. The key must match the certificate; a
/// certificate webpki cannot parse for that check (X.509 v1, as `openssl x509 -req` makes
/// without extensions) is used unchecked, as OpenSSL would use it.
fn certified(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    key_file: &str,
) -> Result<Arc<SingleCertAndKey>, String> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("Failed to load private key: {key_file}: {e}"))?;
    let ck = CertifiedKey::new(certs, signing);
    match ck.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(format!("Failed to load private key: {key_file}: the key does not match the certificate"));
        }
        Err(e) => debug!("certificate for {key_file} not checked against its key: {e}"),
    }
    Ok(Arc::new(SingleCertAndKey::from(ck)))
}

/// Redis checks a master's certificate chain against the CAs but not the host name it was
/// reached by (replicas often name masters by IP address): the same here.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // The chain is checked before the name: a name mismatch means the chain was good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A non-blocking TCP socket carrying a TLS session. Reads give plaintext; writes take
/// plaintext; handshake messages are exchanged inside both as the peer's bytes arrive.
pub struct TlsStream {
    tcp: TcpStream,
    tls: rustls::Connection,
    /// The peer does not speak TLS: it gets no alert, only the close (as from OpenSSL).
    mute: bool,
}

impl TlsStream {
    pub fn server(tcp: TcpStream, cfg: &Arc<ServerConfig>) -> io::Result<TlsStream> {
        let conn = rustls::ServerConnection::new(Arc::clone(cfg)).map_err(io::Error::other)?;
        Ok(TlsStream { tcp, tls: rustls::Connection::Server(conn), mute: false })
    }

    /// A client session to `host` (a name or an address; see [`ChainOnly`]).
    pub fn client(tcp: TcpStream, cfg: &Arc<ClientConfig>, host: &str) -> io::Result<TlsStream> {
        let name = ServerName::try_from(host.to_string()).map_err(io::Error::other)?;
        let conn = rustls::ClientConnection::new(Arc::clone(cfg), name).map_err(io::Error::other)?;
        Ok(TlsStream { tcp, tls: rustls::Connection::Client(conn), mute: false })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Encrypted bytes wait for room in the socket.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Sends queued records until done or the socket is full (WouldBlock).
    fn send(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// A close_notify for a peer that is being disconnected, if the socket takes it now.
    pub fn close_notify(&mut self) {
        if self.mute {
            return;
        }
        self.tls.send_close_notify();
        let _ = self.send();
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl Read for TlsStream {
    /// Plaintext the session holds, else more records from the socket. WouldBlock once the
    /// socket is drained, so edge-triggered readiness is never left pending.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if would_block(&e) => {}
                // The peer closed the TCP connection without a close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let got = self.tls.read_tls(&mut self.tcp)?;
            if let Err(e) = self.tls.process_new_packets() {
                // The alert that says why goes out before the connection closes, unless what
                // came was not TLS at all.
                if matches!(e, rustls::Error::InvalidMessage(_)) {
                    self.mute = true;
                } else {
                    let _ = self.send();
                }
                debug!("TLS error: {e}");
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake replies go out now; what does not fit waits for WRITABLE.
            match self.send() {
                Ok(()) => {}
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
            if got == 0 {
                return match self.tls.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(_) => Ok(0),
                };
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.send() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
        // rustls takes plaintext up to its buffer limit (64 KiB of records by default).
        let n = self.tls.writer().write(buf)?;
        match self.send() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
