//! A listener's TLS settings into a rustls `ServerConfig`: the PEM files read and checked
//! (a chain with a certificate, a key that matches it, CA certificates that parse), errors
//! naming the config key and the file. Used at start and on SIGHUP.

use crate::config::{ListenerConfig, Protocol, TlsConfig};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS sessions a shard remembers for resumption (each shard has its own cache: nothing is
/// shared between shards, so a client resumes when it lands on the same shard again).
const SESSION_CACHE: usize = 1024;

/// Why a listener's TLS could not be set up: the key (`listeners[1].tls.cert`), its file,
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub key: String,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {:?}: {}",
            self.key,
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for TlsError {}

/// The rustls configuration of a TLS listener, built from its files. TLS 1.3 and 1.2 with
/// rustls' default (safe) cipher suites and key exchanges; ALPN `mqtt` (or `http/1.1` for
/// WebSockets) is chosen when the client offers it, and a client that offers none is served
/// too. Clone it per shard with `for_shard`.
pub fn server_config(listener: &ListenerConfig, tls: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let name = &listener.name;
    let err = |key: &str, path: &Path, reason: String| TlsError {
        key: format!("{name}.tls.{key}"),
        path: path.to_path_buf(),
        reason,
    };
    let chain = certificates(&tls.cert).map_err(|reason| err("cert", &tls.cert, reason))?;
    let key = private_key(&tls.key).map_err(|reason| err("key", &tls.key, reason))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err("cert", &tls.cert, e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let fail = |reason: String| err("client_ca", ca, reason);
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca).map_err(fail)? {
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if tls.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier.build().map_err(|e| fail(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => err(
            "key",
            &tls.key,
            format!("does not match the certificate in {:?}", tls.cert.display()),
        ),
        rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_) => {
            err("cert", &tls.cert, e.to_string())
        }
        other => err("key", &tls.key, other.to_string()),
    })?;
    config.alpn_protocols = match listener.protocol {
        Protocol::Mqtt => vec![b"mqtt".to_vec()],
        // Browsers offer h2 and http/1.1; the upgrade is HTTP/1.1.
        Protocol::WebSockets => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// A shard's own copy of `config`: the same certificates and settings, its own session cache.
pub fn for_shard(config: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = config.clone();
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    Arc::new(config)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}

/// Every CERTIFICATE block of a PEM file, in order; at least one.
pub(super) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if chain.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(chain)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => "holds no PEM private key".into(),
        other => format!("not a PEM private key file: {other}"),
    })
}
