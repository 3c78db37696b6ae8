//! The writer task of a connection: take the connection's outbound bytes, write them whole,
//! repeat until the connection is closed and flushed, then shut the socket down.

use super::Shared;
use crate::shard::state::{ConnId, WriterStep};
use bytes::BytesMut;
use monoio::buf::IoBuf;
use monoio::io::{AsyncWriteRent, CancelHandle, CancelableAsyncWriteRent, OwnedWriteHalf};
use monoio::net::TcpStream;
use std::future::poll_fn;
use std::task::Poll;
use std::time::Instant;

/// A writer's spare buffer shrinks back after a burst larger than this.
const MAX_IDLE_WRITE_BUF: usize = 1024 * 1024;

/// Swaps the connection's outbound buffer out and writes it whole; repeats until the
/// connection is closed and flushed.
pub(super) async fn write_loop(
    state: Shared,
    conn: ConnId,
    mut writer: OwnedWriteHalf<TcpStream>,
    cancel: CancelHandle,
) {
    // Grows with the first write; an idle connection holds no write buffer.
    let mut spare = BytesMut::new();
    loop {
        let step = poll_fn(|cx| {
            match state
                .borrow_mut()
                .writer_step(conn, &mut spare, cx.waker(), Instant::now())
            {
                WriterStep::Wait => Poll::Pending,
                step => Poll::Ready(step),
            }
        })
        .await;
        if step == WriterStep::Finish {
            break;
        }
        let (res, written) = write_all(&mut writer, spare, &cancel).await;
        spare = written;
        spare.clear();
        if spare.capacity() > MAX_IDLE_WRITE_BUF {
            spare = BytesMut::new();
        }
        if res.is_err() {
            state.borrow_mut().on_write_error(conn, Instant::now());
            break;
        }
    }
    if !state.borrow().is_aborted(conn) {
        let _ = writer.shutdown().await;
    }
    state.borrow_mut().remove_conn(conn, Instant::now());
}

async fn write_all(
    writer: &mut OwnedWriteHalf<TcpStream>,
    mut buf: BytesMut,
    cancel: &CancelHandle,
) -> (std::io::Result<()>, BytesMut) {
    let total = buf.bytes_init();
    let mut written = 0;
    while written < total {
        let (res, slice) = writer
            .cancelable_write(buf.slice(written..total), cancel.clone())
            .await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => written += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
