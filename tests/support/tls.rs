//! TLS for the suites: certificates made in the test with rcgen ([`Pki`]: a CA, server and
//! client certificates in a private directory), a raw TLS client on rustls over a blocking
//! socket ([`tls_connect`], a [`Wire`] for [`RawClient`]), and rumqttc over TLS
//! ([`rumqtt_tls`]).

use super::{PROMPT, RawClient, Wire};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use ringmq::protocol::ProtocolVersion;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate with its key, as PEM, and the certificate's DER (to compare with what a
/// server presents).
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// A test CA and the directory its files are written to (removed on drop).
pub struct Pki {
    pub dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("dir", &self.dir).finish()
    }
}

impl Pki {
    /// A fresh CA ("ringmq test CA") with `ca.pem`, a server certificate for `localhost` and
    /// 127.0.0.1 in `server.pem` / `server.key` (CN "ringmq test server", serial 1).
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ringmq-pki-{}-{}",
            std::process::id(),
            super::broker::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(fail);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "ringmq test CA");
        let key = KeyPair::generate().unwrap_or_else(fail);
        let ca = CertifiedIssuer::self_signed(params, key).unwrap_or_else(fail);
        let pki = Self { dir, ca };
        pki.write("ca.pem", &pki.ca_pem());
        let server = pki.server("ringmq test server", 1);
        pki.write("server.pem", &server.cert_pem);
        pki.write("server.key", &server.key_pem);
        pki
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1, signed by the CA.
    pub fn server(&self, cn: &str, serial: u64) -> Issued {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        self.issue(names, cn, serial)
    }

    /// A client certificate with subject CN `cn`, signed by the CA.
    pub fn client(&self, cn: &str) -> Issued {
        self.issue(Vec::new(), cn, 100)
    }

    fn issue(&self, names: Vec<String>, cn: &str, serial: u64) -> Issued {
        let mut params = CertificateParams::new(names).unwrap_or_else(fail);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        let key = KeyPair::generate().unwrap_or_else(fail);
        let cert = params.signed_by(&key, &self.ca).unwrap_or_else(fail);
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A `[[listeners]]` entry on 127.0.0.1:0 speaking `protocol` over TLS with
    /// `server.pem` / `server.key`, and `tls_extra` lines in its `[listeners.tls]` table.
    pub fn listener_toml(&self, protocol: &str, tls_extra: &str) -> String {
        format!(
            "[[listeners]]\nbind = \"127.0.0.1:0\"\nprotocol = \"{protocol}\"\n\
             [listeners.tls]\ncert = {:?}\nkey = {:?}\n{tls_extra}\n",
            path_str(&self.path("server.pem")),
            path_str(&self.path("server.key")),
        )
    }

    /// `client_ca = ".../ca.pem"`, for `listener_toml`'s extra lines.
    pub fn client_ca_line(&self) -> String {
        format!("client_ca = {:?}", path_str(&self.path("ca.pem")))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn fail<E: std::fmt::Display, T>(e: E) -> T {
    panic!("rcgen: {e}")
}

pub fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// A rustls client configuration trusting `ca_pem`, presenting `client` if given.
pub fn client_config(ca_pem: &str, client: Option<&Issued>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.unwrap_or_else(|e| panic!("CA PEM: {e}"));
        roots.add(cert).unwrap_or_else(|e| panic!("CA: {e}"));
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| panic!("client PEM: {e}"));
            let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
                .unwrap_or_else(|e| panic!("client key: {e}"));
            builder
                .with_client_auth_cert(chain, key)
                .unwrap_or_else(|e| panic!("client auth: {e}"))
        }
    };
    Arc::new(config)
}

/// A blocking TLS stream (rustls) over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

impl Wire for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Connects to `addr` over TLS with `config` (server name 127.0.0.1) and completes the
/// handshake; the error says why it failed (e.g. the server refused the certificate).
pub fn tls_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<TlsStream> {
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, PROMPT)?;
    sock.set_read_timeout(Some(PROMPT))?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

impl RawClient {
    /// A TLS connection (handshake done), no MQTT yet.
    pub fn tls(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        version: ProtocolVersion,
        name: &str,
    ) -> Self {
        let stream =
            tls_connect(addr, config).unwrap_or_else(|e| panic!("{name}: TLS to {addr}: {e}"));
        Self::from_wire(Box::new(stream), version, name)
    }
}

/// rumqttc 3.1.1 options for `client_id` on the TLS listener at `addr`, trusting `ca_pem`
/// and presenting `client` if given.
pub fn rumqtt_tls(
    addr: SocketAddr,
    client_id: &str,
    ca_pem: &str,
    client: Option<&Issued>,
) -> rumqttc::MqttOptions {
    let mut options = super::Rumqtt4::options(addr, client_id);
    options.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca: ca_pem.as_bytes().to_vec(),
            alpn: Some(vec![b"mqtt".to_vec()]),
            client_auth: client.map(|c| {
                (
                    c.cert_pem.clone().into_bytes(),
                    c.key_pem.clone().into_bytes(),
                )
            }),
        },
    ));
    options
}
