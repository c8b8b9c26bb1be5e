//! TLS settings of a Redis connection (`rediss://`): which CA the server's
//! certificate must chain to, and the client's own certificate (mutual
//! TLS). This crate's README.md, section "Security", says how the pieces
//! fit.

use std::path::{Path, PathBuf};

/// How a `rediss://` connection checks the server, and how it shows
/// itself to a server that asks for a client certificate.
///
/// The default (`RedisTls::new()`) trusts the system's CA store (read by
/// `rustls-native-certs`: `/etc/ssl/certs`, or the files the environment
/// variables `SSL_CERT_FILE` / `SSL_CERT_DIR` name) and sends no client
/// certificate. [`ca_file`](RedisTls::ca_file) trusts only the CA
/// certificates of that PEM file instead (a private CA);
/// [`client_cert`](RedisTls::client_cert) sends a certificate (PEM chain)
/// and its private key (PEM, PKCS#8, PKCS#1 or SEC1) when the server asks
/// (`tls-auth-clients yes` or `optional`).
///
/// The server's name is checked against its certificate (its DNS name or
/// IP address as written in the URL). `rediss://HOST:PORT/#insecure` (the
/// `redis` crate's URL fragment) checks nothing — not the CA, not the
/// name — and is taken only when the URL says so.
///
/// Settings other than the default on a URL without TLS (`redis://`,
/// `unix://`) are refused ([`BrokerError::Tls`](crate::BrokerError::Tls)),
/// rather than ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    ca: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

impl RedisTls {
    /// The system's CA store, no client certificate.
    pub fn new() -> RedisTls {
        RedisTls::default()
    }

    /// Trusts the CA certificates of this PEM file (one or more), and only
    /// them (`--tls-ca PATH`).
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> RedisTls {
        self.ca = Some(path.into());
        self
    }

    /// Sends this certificate chain (PEM) with its private key (PEM) when
    /// the server asks for a client certificate (`--tls-cert`,
    /// `--tls-key`).
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> RedisTls {
        self.client = Some((cert.into(), key.into()));
        self
    }

    /// The CA file, if one is set.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The client certificate and key files, if set.
    pub fn client(&self) -> Option<(&Path, &Path)> {
        self.client
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
    }

    /// Whether these are the defaults (the system's CAs, no client
    /// certificate).
    pub fn is_default(&self) -> bool {
        self.ca.is_none() && self.client.is_none()
    }

    /// From the command-line flags `--tls-ca`, `--tls-cert`, `--tls-key`
    /// (each optional; a certificate needs its key and a key its
    /// certificate).
    ///
    /// # Errors
    ///
    /// A message naming the missing flag.
    pub fn from_flags(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<RedisTls, String> {
        let client = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => return Err("--tls-cert needs --tls-key".into()),
            (None, Some(_)) => return Err("--tls-key needs --tls-cert".into()),
        };
        Ok(RedisTls { ca, client })
    }
}

/// Whether `url` asks for TLS (`rediss://`, `valkeys://`).
pub(crate) fn is_tls_url(url: &str) -> bool {
    url.starts_with("rediss://") || url.starts_with("valkeys://")
}

/// The client of `url` with `tls`.
#[cfg(feature = "redis")]
pub(crate) fn client(url: &str, tls: &RedisTls) -> Result<redis::Client, crate::BrokerError> {
    use crate::BrokerError;
    if !is_tls_url(url) {
        if !tls.is_default() {
            return Err(BrokerError::Tls(format!(
                "TLS settings (a CA or client certificate) given for {url:?}, a URL \
                 without TLS: use rediss://HOST:PORT"
            )));
        }
        return redis::Client::open(url)
            .map_err(|e| BrokerError::Refused(format!("redis URL {url:?}: {e}")));
    }
    tls_client(url, tls)
}

#[cfg(all(feature = "redis", not(feature = "tls")))]
fn tls_client(url: &str, _tls: &RedisTls) -> Result<redis::Client, crate::BrokerError> {
    Err(crate::BrokerError::Tls(format!(
        "{url:?}: this build of spindle-cluster has no TLS (its cargo feature `tls`)"
    )))
}

#[cfg(feature = "tls")]
fn tls_client(url: &str, tls: &RedisTls) -> Result<redis::Client, crate::BrokerError> {
    use crate::BrokerError;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    install_provider();
    let read = |what: &str, p: &Path| {
        std::fs::read(p).map_err(|e| {
            BrokerError::Tls(format!("cannot read the TLS {what} {}: {e}", p.display()))
        })
    };
    let certs = |what: &str, p: &Path, pem: &[u8]| {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BrokerError::Tls(format!("TLS {what} {}: {e}", p.display())))?;
        if certs.is_empty() {
            return Err(BrokerError::Tls(format!(
                "TLS {what} {}: no PEM certificate in it",
                p.display()
            )));
        }
        Ok(certs)
    };
    let root_cert = match tls.ca() {
        Some(p) => {
            let pem = read("CA file", p)?;
            let mut store = rustls::RootCertStore::empty();
            for c in certs("CA file", p, &pem)? {
                store
                    .add(c)
                    .map_err(|e| BrokerError::Tls(format!("TLS CA file {}: {e}", p.display())))?;
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match tls.client() {
        Some((cp, kp)) => {
            let cert = read("client certificate", cp)?;
            let key = read("client key", kp)?;
            let chain = certs("client certificate", cp, &cert)?;
            let der = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| BrokerError::Tls(format!("TLS client key {}: {e}", kp.display())))?;
            // The pair is checked now (a key of another certificate), not
            // at every connection.
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_client_auth_cert(chain, der)
                .map_err(|e| {
                    BrokerError::Tls(format!(
                        "TLS client certificate {} with key {}: {e}",
                        cp.display(),
                        kp.display()
                    ))
                })?;
            Some(redis::ClientTlsConfig {
                client_cert: cert,
                client_key: key,
            })
        }
        None => None,
    };
    let r = if root_cert.is_none() && client_tls.is_none() {
        redis::Client::open(url)
    } else {
        redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls,
                root_cert,
            },
        )
    };
    r.map_err(|e| BrokerError::Refused(format!("redis URL {url:?}: {e}")))
}

/// Makes ring rustls's process-wide crypto provider unless the program
/// installed one: the `redis` crate builds its TLS configurations with
/// the default provider, and rustls cannot pick one by itself when a
/// program's dependencies enable two (ring and aws-lc-rs).
#[cfg(feature = "tls")]
fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one first: then that one is used.
        // rustls 0.23.48 deprecates ring's provider for its lack of
        // post-quantum key exchange (X25519MLKEM768, aws-lc-rs only);
        // ring is kept for its build (no aws-lc C library, no cmake):
        // docs/NOTES.md.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Whether `e` is a failure of TLS: the handshake (a certificate not
/// trusted, a name that does not match, a client certificate refused,
/// a peer that does not speak TLS) or its settings.
#[cfg(feature = "redis")]
pub(crate) fn is_tls_error(e: &redis::RedisError) -> bool {
    #[cfg(feature = "tls")]
    {
        use std::error::Error;
        // The `redis` crate keeps the cause as an `Arc<dyn Error>`, a
        // rustls error usually inside an `io::Error` (the stream's).
        fn tls(err: &(dyn Error + 'static)) -> bool {
            if err.is::<rustls::Error>() || err.is::<rustls::pki_types::InvalidDnsNameError>() {
                return true;
            }
            if let Some(a) = err.downcast_ref::<std::sync::Arc<dyn Error + Send + Sync>>() {
                return tls(&**a);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && let Some(inner) = io.get_ref()
            {
                return tls(inner);
            }
            err.source().is_some_and(tls)
        }
        e.source().is_some_and(tls)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = e;
        false
    }
}

/// Whether `e` is a read or write that timed out (`EAGAIN` on a socket
/// with a timeout), however deep the `io::Error` sits in it.
#[cfg(feature = "redis")]
pub(crate) fn timed_out(e: &redis::RedisError) -> bool {
    use std::error::Error;
    use std::io::ErrorKind;
    fn walk(err: &(dyn Error + 'static)) -> bool {
        if let Some(a) = err.downcast_ref::<std::sync::Arc<dyn Error + Send + Sync>>() {
            return walk(&**a);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                || io.get_ref().is_some_and(|i| walk(i));
        }
        err.source().is_some_and(walk)
    }
    e.is_timeout() || e.source().is_some_and(walk)
}
