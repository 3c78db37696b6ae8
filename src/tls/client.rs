//! TLS towards another broker, client side, for bridges: a bridge's `tls` table into a
//! rustls `ClientConfig` (errors naming the key and the file), and `TlsClient`, one
//! connection's TLS as a byte transformer over `BytesMut`s like the server side's
//! `TlsSession`. No socket, no clock.

use super::load::{TlsError, certificates, private_key};
use super::records;
use crate::config::BridgeTls;
use bytes::BytesMut;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Error, RootCertStore};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The rustls configuration of bridge `key` (`bridges[0]`): the remote's certificate must
/// chain to `ca`; with `cert` and `key` the bridge shows a client certificate. ALPN `mqtt`.
pub fn client_config(key: &str, tls: &BridgeTls) -> Result<Arc<ClientConfig>, TlsError> {
    let err = |field: &str, path: &Path, reason: String| TlsError {
        key: format!("{key}.tls.{field}"),
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(&tls.ca).map_err(|r| err("ca", &tls.ca, r))? {
        roots
            .add(cert)
            .map_err(|e| err("ca", &tls.ca, format!("not a usable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err("ca", &tls.ca, e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key_path)) => {
            let chain = certificates(cert).map_err(|r| err("cert", cert, r))?;
            let key = private_key(key_path).map_err(|r| err("key", key_path, r))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| err("key", key_path, e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"mqtt".to_vec()];
    Ok(Arc::new(config))
}

/// The name the remote's certificate must carry: `server_name`, else the address's IP.
pub fn server_name(tls: &BridgeTls, addr: SocketAddr) -> Result<ServerName<'static>, String> {
    match &tls.server_name {
        Some(name) => {
            ServerName::try_from(name.clone()).map_err(|e| format!("server_name {name:?}: {e}"))
        }
        None => Ok(ServerName::IpAddress(addr.ip().into())),
    }
}

/// A client-side TLS connection (rustls `ClientConnection`) driven over `BytesMut`s.
#[derive(Debug)]
pub struct TlsClient {
    conn: ClientConnection,
}

impl TlsClient {
    /// A new connection; its ClientHello is in `out` at once.
    pub fn new(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        out: &mut BytesMut,
    ) -> Result<Self, Error> {
        let mut this = Self {
            conn: ClientConnection::new(config, name)?,
        };
        records::flush(&mut this.conn, out);
        Ok(this)
    }

    /// Takes every byte of `wire`, appends the plaintext to `plain` and what the peer must
    /// be sent to `out`. `Ok(true)`: the peer has closed (close_notify).
    pub fn read(
        &mut self,
        wire: &mut BytesMut,
        plain: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, Error> {
        records::read(&mut self.conn, wire, plain, out)
    }

    /// Encrypts `plain` into records appended to `out`.
    pub fn write(&mut self, plain: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        records::write(&mut self.conn, plain, out)
    }

    /// Queues close_notify into `out`.
    pub fn close(&mut self, out: &mut BytesMut) {
        records::close(&mut self.conn, out);
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}
