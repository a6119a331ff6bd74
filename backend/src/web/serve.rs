//! The server's accept loop: HTTP/1.1 over hyper, with the limits a public listener needs.
//!
//! `axum::serve` has no header-read timeout (hyper's needs a timer, which it does not set), no
//! idle timeout and no bound on open connections: a thousand clients that send half a request
//! line hold a descriptor each, forever, until `accept` fails with "Too many open files" and
//! even `/healthz` goes unanswered. Here:
//!
//! - a request head must arrive within [`HEADER_READ_TIMEOUT`] of the connection opening, or of
//!   the previous answer on a kept-alive connection (hyper starts the timer whenever it waits
//!   for a head), so the same bound closes idle keep-alive connections;
//! - at most `max_connections` are open; one more is answered `503` with `Retry-After` and
//!   closed, so a client learns why instead of hanging in the backlog;
//! - [`raise_nofile_limit`] lifts the soft descriptor limit to the hard one at start-up, and the
//!   cap stays below it with room for the database and files ([`FD_RESERVE`]).
//!
//! - a write to the client that makes no progress for [`WRITE_STALL_TIMEOUT`] ends the
//!   connection (a client that asks and never reads would hold it, and its share of the cap,
//!   for ever).
//!
//! Shutdown is graceful: the listener closes (new connections are refused at connect), idle
//! connections close, in-flight requests finish, for at most [`DRAIN_TIMEOUT`] (15 s).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a client has to send a request head, counted from the connection's start or from
/// the previous answer on a kept-alive connection (so it is also the idle keep-alive timeout).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write to a client may make no progress (the client reads nothing: a closed
/// receive window) before the connection is ended. Without it, a client that asks and never
/// reads holds its connection, and its share of the cap, for ever.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections to finish before it goes on without them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Descriptors kept back from the connection cap: database connections (three files each on
/// SQLite: the database, its log and its shared memory), the mail worker, logs.
pub const FD_RESERVE: u64 = 256;

/// Connections over the cap being refused at once, at most (each holds a descriptor for up to a
/// second while its 503 is written); beyond that they are closed without an answer.
const MAX_REFUSING: usize = 256;

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 1\r\n\
Connection: close\r\n\
Content-Length: 45\r\n\
\r\n\
too many open connections; retry in a second\n";

/// Raise this process's soft limit on open files to its hard limit. Returns (before, after)
/// soft limits; `None` where the platform has no such limit or it cannot be read.
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let lim = getrlimit(Resource::Nofile);
        // `None` is "unlimited".
        let before = lim.current.unwrap_or(u64::MAX);
        let hard = lim.maximum.unwrap_or(u64::MAX);
        if before >= hard {
            return Some((before, before));
        }
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        ) {
            Ok(()) => Some((before, hard)),
            Err(e) => {
                tracing::warn!(error = %e, soft = before, hard, "cannot raise the open-file limit");
                Some((before, before))
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap in force: the configured one, kept below the descriptor limit.
pub fn connection_cap(configured: usize, nofile_soft: Option<u64>) -> usize {
    match nofile_soft {
        Some(soft) => {
            let room = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            configured.min(room).max(1)
        }
        None => configured.max(1),
    }
}

/// Serve `app` on `listener` until `shutdown` completes, then finish in-flight requests, for
/// at most [`DRAIN_TIMEOUT`]. Returns whether every connection finished.
///
/// # Errors
/// None today (accept errors are logged and retried); the signature leaves room.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<bool> {
    let max_connections = max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    let mut warn_once_a_second = |what: &str, error: Option<&std::io::Error>| {
        if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_warning = Some(Instant::now());
            match error {
                Some(e) => tracing::warn!(error = %e, max_connections, "{what}"),
                None => tracing::warn!(max_connections, "{what}"),
            }
        }
    };
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // A connection reset before it was accepted concerns that client only.
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                    ) {
                        warn_once_a_second("accept failed; retrying", Some(&e));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn_once_a_second(
                "connection limit reached; refusing new connections with 503",
                None,
            );
            if let Ok(slot) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(slot);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, addr, app, &mut closing).await;
            drop(permit);
        });
    }
    // New connections are refused at connect from here on.
    drop(listener);
    let _ = closing_tx.send(true);
    // Every open connection holds a permit: having them all back means all have finished. A
    // connection still open after the drain time is left behind (an answered verification was
    // committed before its answer was written: nothing of it is lost).
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, permits.acquire_many(all))
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            open = max_connections.saturating_sub(permits.available_permits()),
            "connections still open after the drain time; shutting down without them"
        );
    }
    Ok(drained)
}

/// A connection whose writes must make progress: a write (or flush) that stays pending for
/// [`WRITE_STALL_TIMEOUT`] fails with `TimedOut`, and hyper ends the connection.
struct WriteDeadline<S> {
    inner: S,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S) -> Self {
        WriteDeadline {
            inner,
            stalled: None,
        }
    }

    /// After the inner write answered `poll`: a pending write starts (or keeps) the clock; one
    /// pending past the limit fails.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        poll: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match poll {
            Poll::Pending => {
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client read nothing of the answer",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn serve_connection(
    stream: TcpStream,
    addr: SocketAddr,
    app: Router,
    closing: &mut tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        // Only a request with a body can leave one unread (a GET has none: nothing to watch).
        let read = (!hyper::body::Body::is_end_stream(req.body()))
            .then(|| Arc::new(AtomicBool::new(false)));
        let mut req = req.map(|body| match &read {
            Some(read) => Body::new(Watched {
                body,
                read: read.clone(),
            }),
            None => Body::new(body),
        });
        req.extensions_mut().insert(ConnectInfo(addr));
        let answer = app.clone().oneshot(req);
        async move {
            let mut res = answer.await?;
            if read.is_some_and(|read| !read.load(Ordering::Acquire)) {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(WriteDeadline::new(stream)), service);
    let mut conn = std::pin::pin!(conn);
    if *closing.borrow() {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = closing.changed() => {}
    }
    // Shutting down: an idle connection closes now, a busy one after its answer.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A request's body that notes when it has been read to its end.
///
/// An answer given before its request's body was read to the end (a body too large, of a type
/// not taken, refused before it was needed) ends the connection: hyper will not look for the
/// next request behind unread bytes (RFC 9112 §9.3). It closes the connection after the answer
/// but does not say so, and a client that reuses its connections then sends its next request
/// into one being closed ("connection closed before message completed"). Such an answer carries
/// `Connection: close` ([`serve_connection`]), so the client opens a new one.
struct Watched {
    body: Incoming,
    read: Arc<AtomicBool>,
}

impl hyper::body::Body for Watched {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let frame = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if matches!(frame, std::task::Poll::Ready(None)) || self.body.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Answer a connection over the cap with a 503 and close it. The request is drained briefly
/// first: closing a socket with unread data sends a reset, which can destroy the answer before
/// the client reads it.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(REFUSAL).await;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(connection_cap(4096, Some(1_048_576)), 4096);
        assert_eq!(
            connection_cap(4096, Some(1024)),
            768,
            "room is kept for the database"
        );
        assert_eq!(connection_cap(4096, Some(10)), 1, "never zero");
        assert_eq!(connection_cap(50, None), 50);
    }

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains("Content-Length: 45"));
        assert_eq!(body.len(), 45, "Content-Length matches the body");
    }
}
