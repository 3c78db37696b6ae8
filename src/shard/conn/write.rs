//! The writer task of a connection: take the connection's outbound bytes, write them whole,
//! repeat until the connection is closed and flushed, then shut the socket down.

use super::Shared;
use super::transport::Transport;
use crate::shard::state::{ConnId, WriterStep};
use bytes::BytesMut;
use monoio::buf::IoBuf;
use monoio::io::{AsyncWriteRent, CancelHandle, CancelableAsyncWriteRent, OwnedWriteHalf};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

/// A writer's spare buffer shrinks back after a burst larger than this.
const MAX_IDLE_WRITE_BUF: usize = 1024 * 1024;

/// Swaps the connection's outbound buffer out and writes it whole; repeats until the
/// connection is closed and flushed. With a `transport` the bytes go through it first, and
/// what it has to say itself (a TLS alert) is written too; closing ends it cleanly.
pub(super) async fn write_loop(
    state: Shared,
    conn: ConnId,
    mut writer: OwnedWriteHalf<TcpStream>,
    cancel: CancelHandle,
    transport: Option<Rc<RefCell<Transport>>>,
) {
    // Both grow with the first write; an idle connection holds no write buffer.
    let mut spare = BytesMut::new();
    let mut wire = BytesMut::new();
    let has_output = || transport.as_ref().is_some_and(|t| t.borrow().has_output());
    loop {
        let step = poll_fn(|cx| {
            let step = state
                .borrow_mut()
                .writer_step(conn, &mut spare, cx.waker(), Instant::now());
            match step {
                // The waker is registered: `wake_writer` calls it when the transport has more.
                WriterStep::Wait if has_output() => Poll::Ready(WriterStep::Write),
                WriterStep::Wait => Poll::Pending,
                step => Poll::Ready(step),
            }
        })
        .await;
        if step == WriterStep::Finish {
            break;
        }
        let out = match &transport {
            None => std::mem::take(&mut spare),
            Some(t) => {
                let mut t = t.borrow_mut();
                let encoded = t.encode(&spare);
                spare.clear();
                if encoded.is_err() {
                    drop(t);
                    state.borrow_mut().on_write_error(conn, Instant::now());
                    break;
                }
                t.swap_output(&mut wire);
                std::mem::take(&mut wire)
            }
        };
        let (res, mut written) = write_all(&mut writer, out, &cancel).await;
        written.clear();
        if written.capacity() > MAX_IDLE_WRITE_BUF {
            written = BytesMut::new();
        }
        match &transport {
            None => spare = written,
            Some(_) => wire = written,
        }
        if res.is_err() {
            state.borrow_mut().on_write_error(conn, Instant::now());
            break;
        }
    }
    if !state.borrow().is_aborted(conn) {
        // Boxed: inline, the goodbye's futures would be in every writer's future.
        Box::pin(say_goodbye(&mut writer, transport.as_ref(), wire, &cancel)).await;
    }
    state.borrow_mut().remove_conn(conn, Instant::now());
}

/// Ends the transport cleanly (a TLS close_notify, a WebSocket Close) and shuts the socket's
/// write side down.
async fn say_goodbye(
    writer: &mut OwnedWriteHalf<TcpStream>,
    transport: Option<&Rc<RefCell<Transport>>>,
    mut wire: BytesMut,
    cancel: &CancelHandle,
) {
    if let Some(t) = transport {
        let goodbye = {
            let mut t = t.borrow_mut();
            t.close();
            t.swap_output(&mut wire);
            std::mem::take(&mut wire)
        };
        if !goodbye.is_empty() {
            let _ = write_all(writer, goodbye, cancel).await;
        }
    }
    let _ = writer.shutdown().await;
}

/// Writes all of `buf` (cancelled by `cancel`), handing the buffer back for reuse. Also the
/// bridge's writer towards its remote (`shard::bridge::link`).
pub(in crate::shard) async fn write_all(
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
