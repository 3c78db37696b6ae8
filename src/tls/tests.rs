//! `TlsSession` against a rustls client in memory (no sockets): the handshake, data both ways
//! in arbitrary pieces, the client certificate's CN, close_notify and a broken record.

use super::*;
use crate::config::{ListenerConfig, Protocol, TlsConfig};
use bytes::BytesMut;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

struct Files {
    dir: PathBuf,
    ca_pem: String,
    client_pem: String,
    client_key: String,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A CA, a server certificate (in files) and a client certificate with CN "device-7".
fn files(name: &str) -> Files {
    let dir = std::env::temp_dir().join(format!("ringmq-tls-unit-{}-{name}", std::process::id()));
    ok(std::fs::create_dir_all(&dir));
    let mut ca = ok(CertificateParams::new(Vec::<String>::new()));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "unit CA");
    let ca = ok(CertifiedIssuer::self_signed(ca, ok(KeyPair::generate())));
    let issue = |names: Vec<String>, cn: &str| {
        let mut params = ok(CertificateParams::new(names));
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = ok(KeyPair::generate());
        let cert = ok(params.signed_by(&key, &ca));
        (cert.pem(), key.serialize_pem())
    };
    let (server_pem, server_key) = issue(vec!["localhost".into()], "server");
    let (client_pem, client_key) = issue(Vec::new(), "device-7");
    ok(std::fs::write(dir.join("server.pem"), server_pem));
    ok(std::fs::write(dir.join("server.key"), server_key));
    ok(std::fs::write(dir.join("ca.pem"), ca.pem()));
    Files {
        ca_pem: ca.pem(),
        dir,
        client_pem,
        client_key,
    }
}

fn server(files: &Files) -> TlsSession {
    let tls = TlsConfig {
        cert: files.dir.join("server.pem"),
        key: files.dir.join("server.key"),
        client_ca: Some(files.dir.join("ca.pem")),
        require_client_cert: false,
        identity_as_username: true,
    };
    let listener = ListenerConfig {
        name: "listeners[0]".into(),
        bind: ([127, 0, 0, 1], 0).into(),
        protocol: Protocol::Mqtt,
        allow_anonymous: true,
        tls: Some(tls.clone()),
    };
    let config = ok(server_config(&listener, &tls));
    ok(TlsSession::new(Arc::new(config)))
}

fn client(files: &Files, with_cert: bool) -> ClientConnection {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(files.ca_pem.as_bytes()) {
        ok(roots.add(ok(cert)));
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = if with_cert {
        let chain: Vec<_> = CertificateDer::pem_slice_iter(files.client_pem.as_bytes())
            .map(ok)
            .collect();
        let key = ok(PrivateKeyDer::from_pem_slice(files.client_key.as_bytes()));
        ok(builder.with_client_auth_cert(chain, key))
    } else {
        builder.with_no_client_auth()
    };
    let name = ok(ServerName::try_from("localhost"));
    ok(ClientConnection::new(Arc::new(config), name))
}

/// Moves bytes both ways until neither side has anything to send; the server's plaintext
/// lands in `plain`. The client's bytes reach the server `chunk` bytes at a time.
fn pump(c: &mut ClientConnection, s: &mut TlsSession, plain: &mut BytesMut, chunk: usize) {
    for _ in 0..32 {
        let mut to_server = Vec::new();
        while c.wants_write() {
            ok(c.write_tls(&mut to_server));
        }
        let mut to_client = BytesMut::new();
        for piece in to_server.chunks(chunk) {
            let mut wire = BytesMut::from(piece);
            ok(s.read(&mut wire, plain, &mut to_client));
            assert!(wire.is_empty(), "the session takes every byte");
        }
        if to_server.is_empty() && to_client.is_empty() {
            return;
        }
        let mut unread = &to_client[..];
        while !unread.is_empty() {
            ok(c.read_tls(&mut unread));
            ok(c.process_new_packets());
        }
    }
    panic!("the handshake does not settle");
}

#[test]
fn a_handshake_and_data_both_ways_in_any_pieces() {
    let files = files("data");
    for chunk in [1, 7, 4096] {
        let mut c = client(&files, true);
        let mut s = server(&files);
        let mut plain = BytesMut::new();
        pump(&mut c, &mut s, &mut plain, chunk);
        assert!(!s.is_handshaking() && !c.is_handshaking());
        assert_eq!(s.peer_common_name().as_deref(), Some("device-7"));
        // More than one record's worth (16 KiB) each way.
        let up: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        ok(c.writer().write_all(&up));
        pump(&mut c, &mut s, &mut plain, chunk);
        assert_eq!(&plain[..], &up[..]);
        let down: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
        let mut wire = BytesMut::new();
        ok(s.write(&down, &mut wire));
        let mut unread = &wire[..];
        let mut got = Vec::new();
        while !unread.is_empty() {
            ok(c.read_tls(&mut unread));
            ok(c.process_new_packets());
            let _ = c.reader().read_to_end(&mut got);
        }
        assert_eq!(got, down);
    }
}

#[test]
fn without_a_client_certificate_there_is_no_identity() {
    let files = files("anonymous");
    let (mut c, mut s) = (client(&files, false), server(&files));
    pump(&mut c, &mut s, &mut BytesMut::new(), 4096);
    assert!(!s.is_handshaking());
    assert_eq!(s.peer_common_name(), None);
}

#[test]
fn close_notify_is_reported_and_sent() {
    let files = files("close");
    let (mut c, mut s) = (client(&files, false), server(&files));
    let mut plain = BytesMut::new();
    pump(&mut c, &mut s, &mut plain, 4096);
    c.send_close_notify();
    let mut to_server = Vec::new();
    while c.wants_write() {
        ok(c.write_tls(&mut to_server));
    }
    let mut wire = BytesMut::from(&to_server[..]);
    assert!(
        ok(s.read(&mut wire, &mut plain, &mut BytesMut::new())),
        "closed"
    );
    let mut out = BytesMut::new();
    s.close(&mut out);
    assert_eq!(
        out.first(),
        Some(&0x17),
        "close_notify, encrypted in TLS 1.3"
    );
}

#[test]
fn a_broken_record_fails_with_an_alert_to_send() {
    let files = files("broken");
    let mut s = server(&files);
    let mut wire = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
    let mut out = BytesMut::new();
    assert!(s.read(&mut wire, &mut BytesMut::new(), &mut out).is_err());
    assert_eq!(out.first(), Some(&0x15), "an alert record: {out:02X?}");
}
