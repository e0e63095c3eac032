//! The Prometheus exporter-toolkit web configuration file (`--web.config.file`), as node_exporter
//! and the rest of the Prometheus ecosystem read it: TLS (certificate, key, client CA and client
//! authentication type, TLS versions), bcrypt basic-auth users and extra response headers. The
//! file is read again when it changes (checked at each new connection); a changed file that
//! does not load is logged and the previous configuration stays in force.
//!
//! Paths in the file are relative to the file's own directory, as in exporter-toolkit.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Why a web configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("cannot read the web configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The file is not a valid web configuration.
    #[error("web configuration file {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// The file's layout (exporter-toolkit's names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsServerConfig>,
    http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    /// rustls offers only suites and curves it considers safe, in its own order.
    cipher_suites: Option<serde_yaml_ng::Value>,
    curve_preferences: Option<serde_yaml_ng::Value>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A loaded configuration.
pub struct WebConfig {
    /// TLS, when `tls_server_config` is present.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// HTTP/2 allowed (default true).
    pub http2: bool,
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `tls_server_config.client_auth_type`, for the start-up line.
    client_auth: Option<String>,
    /// (user, password) pairs already verified against this configuration: bcrypt costs tens
    /// of milliseconds on purpose, and Prometheus presents the same pair every scrape.
    verified: Mutex<Vec<(String, String)>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Pairs remembered as verified at most.
const VERIFIED_KEPT: usize = 32;

impl WebConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| WebConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the content of `path` (relative paths in it are relative to its directory).
    pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
        let invalid = |message: String| WebConfigError::Invalid { path: path.to_path_buf(), message };
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let client_auth = file.tls_server_config.as_ref().and_then(|t| t.client_auth_type.clone());
        let tls = file.tls_server_config.map(|t| tls_acceptor(t, dir, &invalid)).transpose()?;
        for (user, hash) in &file.basic_auth_users {
            // Checked now, so that a typo is a start-up error and not a locked-out Prometheus.
            if bcrypt::HashParts::from_str(hash).is_err() {
                return Err(invalid(format!(
                    "basic_auth_users.{user}: not a bcrypt hash ($2y$…, as htpasswd -B writes)"
                )));
            }
        }
        let http = file.http_server_config;
        let mut headers = Vec::new();
        for (k, v) in http.as_ref().map(|h| &h.headers).into_iter().flatten() {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| invalid(format!("http_server_config.headers.{k}: {e}")))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| invalid(format!("http_server_config.headers.{k}: {e}")))?;
            headers.push((name, value));
        }
        Ok(WebConfig {
            tls,
            http2: http.and_then(|h| h.http2).unwrap_or(true),
            users: file.basic_auth_users,
            headers,
            client_auth,
            verified: Mutex::new(Vec::new()),
        })
    }

    /// Whether requests need a user and password.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether an `Authorization` header value names a configured user with the right password.
    /// Call it off the async runtime: a bcrypt check blocks for tens of milliseconds.
    pub fn admits(&self, header: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = header.and_then(basic_credentials) else { return false };
        let Some(hash) = self.users.get(&user) else { return false };
        let known = |v: &Vec<(String, String)>| v.iter().any(|(u, p)| *u == user && *p == password);
        if known(&self.verified.lock().unwrap_or_else(|e| e.into_inner())) {
            return true;
        }
        if !bcrypt::verify(&password, hash).unwrap_or(false) {
            return false;
        }
        let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= VERIFIED_KEPT {
            v.remove(0);
        }
        v.push((user, password));
        true
    }

    /// Adds the configured headers to `resp`.
    pub fn decorate<B>(&self, resp: &mut Response<B>) {
        for (k, v) in &self.headers {
            resp.headers_mut().insert(k.clone(), v.clone());
        }
    }

    /// What a request without valid credentials gets.
    pub fn unauthorized() -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from_static(b"Unauthorized\n")));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        r
    }

    /// The header a request carries its credentials in.
    pub fn credentials<B>(req: &hyper::Request<B>) -> Option<String> {
        req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// One line for the start-up log: what the configuration protects.
    pub fn describe(&self) -> String {
        let clients = match self.client_auth.as_deref() {
            Some("RequireAndVerifyClientCert") => " (client certificates required)",
            Some("VerifyClientCertIfGiven") => " (client certificates verified when given)",
            _ => "",
        };
        format!(
            "TLS {}{clients}, basic authentication {}",
            if self.tls.is_some() { "on" } else { "off" },
            if self.users.is_empty() { "off".to_string() } else { format!("on ({} users)", self.users.len()) }
        )
    }
}

/// `Basic base64(user:password)` → (user, password).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn tls_version(v: &str, key: &str, invalid: &dyn Fn(String) -> WebConfigError) -> Result<u8, WebConfigError> {
    match v {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => {
            Err(invalid(format!("tls_server_config.{key}: {v} is not offered (TLS 1.2 and 1.3 only)")))
        }
        _ => Err(invalid(format!("tls_server_config.{key}: {v:?} is not one of TLS12, TLS13"))),
    }
}

fn tls_acceptor(
    t: TlsServerConfig,
    dir: &Path,
    invalid: &dyn Fn(String) -> WebConfigError,
) -> Result<tokio_rustls::TlsAcceptor, WebConfigError> {
    if t.cipher_suites.is_some() || t.curve_preferences.is_some() || t.prefer_server_cipher_suites.is_some() {
        tracing::info!(
            "web configuration: cipher_suites, curve_preferences and prefer_server_cipher_suites are ignored: rustls offers only suites it considers safe"
        );
    }
    let at = |p: &Path| dir.join(p);
    let (Some(cert), Some(key)) = (t.cert_file.as_deref(), t.key_file.as_deref()) else {
        return Err(invalid("tls_server_config needs cert_file and key_file".into()));
    };
    let read = |key_name: &str, p: &Path| {
        std::fs::read(at(p)).map_err(|e| invalid(format!("tls_server_config.{key_name}: {}: {e}", at(p).display())))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read("cert_file", cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("tls_server_config.cert_file: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", key)?)
        .map_err(|e| invalid(format!("tls_server_config.key_file: {e}")))?;
    let min = t.min_version.as_deref().map(|v| tls_version(v, "min_version", invalid)).transpose()?.unwrap_or(12);
    let max = t.max_version.as_deref().map(|v| tls_version(v, "max_version", invalid)).transpose()?.unwrap_or(13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    if versions.is_empty() {
        return Err(invalid("tls_server_config: min_version is above max_version".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(format!("tls_server_config: {e}")))?;
    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let roots = || -> Result<Arc<rustls::RootCertStore>, WebConfigError> {
        let Some(ca) = t.client_ca_file.as_deref() else {
            return Err(invalid(format!("tls_server_config.client_auth_type {auth_type} needs client_ca_file")));
        };
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&read("client_ca_file", ca)?) {
            let c = c.map_err(|e| invalid(format!("tls_server_config.client_ca_file: {e}")))?;
            roots.add(c).map_err(|e| invalid(format!("tls_server_config.client_ca_file: {e}")))?;
        }
        Ok(Arc::new(roots))
    };
    let verifier = |optional: bool| -> Result<_, WebConfigError> {
        let b = rustls::server::WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone());
        let b = if optional { b.allow_unauthenticated() } else { b };
        b.build().map_err(|e| invalid(format!("tls_server_config.client_ca_file: {e}")))
    };
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" => builder.with_client_cert_verifier(verifier(false)?),
        "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(verifier(true)?),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(invalid(format!(
                "tls_server_config.client_auth_type {auth_type}: a certificate that is not verified proves nothing; use RequireAndVerifyClientCert"
            )));
        }
        other => {
            return Err(invalid(format!(
                "tls_server_config.client_auth_type {other:?} is not one of NoClientCert, RequireAndVerifyClientCert, VerifyClientCertIfGiven"
            )));
        }
    };
    if t.client_allowed_sans.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            "tls_server_config.client_allowed_sans is not supported: trust a client CA of its own instead".into(),
        ));
    }
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| invalid(format!("tls_server_config: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// The configuration in force for a file that may change: read again when its modification time
/// or size changes.
pub struct Watched {
    path: PathBuf,
    current: Mutex<(Option<Stamp>, Arc<WebConfig>)>,
}

/// A file's modification time and size: when either changes, it is read again.
type Stamp = (SystemTime, u64);

impl Watched {
    /// Loads `path` (an error here stops the start).
    pub fn new(path: PathBuf) -> Result<Watched, WebConfigError> {
        let stamp = stamp(&path);
        let cfg = WebConfig::load(&path)?;
        Ok(Watched { path, current: Mutex::new((stamp, Arc::new(cfg))) })
    }

    /// The configuration now, reloading the file first when it changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let now = stamp(&self.path);
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != cur.0 {
            cur.0 = now;
            match WebConfig::load(&self.path) {
                Ok(cfg) => {
                    tracing::info!("web configuration {} reloaded: {}", self.path.display(), cfg.describe());
                    cur.1 = Arc::new(cfg);
                }
                Err(e) => tracing::error!("{e}; the previous web configuration stays in force"),
            }
        }
        cur.1.clone()
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(text, Path::new("/nonexistent/web.yml"))
    }

    #[test]
    fn basic_auth_checks_bcrypt_hashes_and_remembers_good_pairs() {
        let hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
        let cfg = parse(&format!("basic_auth_users:\n  prom: {hash}\n")).unwrap();
        let basic = |s: &str| format!("Basic {}", encode(s));
        assert!(cfg.admits(Some(&basic("prom:s3cret"))));
        assert!(cfg.admits(Some(&basic("prom:s3cret"))), "from the verified pairs");
        assert!(!cfg.admits(Some(&basic("prom:wrong"))));
        assert!(!cfg.admits(Some(&basic("other:s3cret"))));
        assert!(!cfg.admits(Some("Bearer s3cret")));
        assert!(!cfg.admits(None));
        assert!(parse("").unwrap().admits(None), "no users: open");
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = parse("basic_auth_users:\n  prom: plain\n").err().unwrap().to_string();
        assert!(e.contains("basic_auth_users.prom: not a bcrypt hash"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: c.pem\n").err().unwrap().to_string();
        assert!(e.contains("needs cert_file and key_file"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n").err().unwrap().to_string();
        assert!(e.contains("tls_server_config.cert_file: /nonexistent/c.pem"), "{e}");
        let e = parse("unknown: 1\n").err().unwrap().to_string();
        assert!(e.contains("unknown field `unknown`"), "{e}");
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "prom:s3cret", "ünïcode:pässword"] {
            assert_eq!(base64_decode(&encode(s)).unwrap(), s.as_bytes(), "{s}");
        }
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("!!!!").is_none());
    }

    fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        while !out.len().is_multiple_of(4) {
            out.push('=');
        }
        out
    }
}
