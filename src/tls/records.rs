//! Driving a rustls connection over `BytesMut`s, the same for both sides (`TlsSession`, the
//! listeners', and `TlsClient`, a bridge's): ciphertext in, plaintext out, plaintext in,
//! records out. No socket, no clock.

use bytes::{Buf, BufMut, BytesMut};
use rustls::{ConnectionCommon, Error};
use std::io::{self, BufRead, Write};

/// Takes every byte of `wire` (ciphertext off the socket; a partial record is kept inside
/// rustls), appends the plaintext to `plain` and what the peer must be sent (handshake
/// messages, session tickets, alerts) to `out`. `Ok(true)`: the peer has closed
/// (close_notify). On an error the fatal alert that says why is in `out`: send it, then close.
pub(super) fn read<D>(
    conn: &mut ConnectionCommon<D>,
    wire: &mut BytesMut,
    plain: &mut BytesMut,
    out: &mut BytesMut,
) -> Result<bool, Error> {
    let result = read_records(conn, wire, plain);
    flush(conn, out);
    result
}

fn read_records<D>(
    conn: &mut ConnectionCommon<D>,
    wire: &mut BytesMut,
    plain: &mut BytesMut,
) -> Result<bool, Error> {
    while !wire.is_empty() {
        let mut unread: &[u8] = wire;
        let n = conn.read_tls(&mut unread).map_err(io_error)?;
        wire.advance(n);
        let state = conn.process_new_packets()?;
        take_plaintext(conn, plain)?;
        if state.peer_has_closed() {
            // Nothing after close_notify counts (RFC 8446 section 6.1).
            wire.clear();
            return Ok(true);
        }
        if n == 0 {
            break;
        }
    }
    Ok(false)
}

/// Moves the decrypted bytes rustls holds into `plain`.
fn take_plaintext<D>(conn: &mut ConnectionCommon<D>, plain: &mut BytesMut) -> Result<(), Error> {
    let mut reader = conn.reader();
    loop {
        let n = match reader.fill_buf() {
            Ok([]) => return Ok(()),
            Ok(chunk) => {
                plain.extend_from_slice(chunk);
                chunk.len()
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(io_error(e)),
        };
        reader.consume(n);
    }
}

/// Encrypts `plain` into records appended to `out`.
pub(super) fn write<D>(
    conn: &mut ConnectionCommon<D>,
    mut plain: &[u8],
    out: &mut BytesMut,
) -> Result<(), Error> {
    while !plain.is_empty() {
        // rustls takes up to its buffer limit (64 KiB) at a time; `flush` empties it.
        let n = conn.writer().write(plain).map_err(io_error)?;
        flush(conn, out);
        if n == 0 {
            return Err(Error::General(
                "the TLS connection takes no more data".into(),
            ));
        }
        plain = plain.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Queues close_notify into `out`.
pub(super) fn close<D>(conn: &mut ConnectionCommon<D>, out: &mut BytesMut) {
    conn.send_close_notify();
    flush(conn, out);
}

/// Moves every record rustls has ready into `out`.
pub(super) fn flush<D>(conn: &mut ConnectionCommon<D>, out: &mut BytesMut) {
    let mut writer = out.writer();
    while conn.wants_write() {
        // Writing into a `BytesMut` cannot fail; it only grows.
        match conn.write_tls(&mut writer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn io_error(e: io::Error) -> Error {
    Error::General(e.to_string())
}
