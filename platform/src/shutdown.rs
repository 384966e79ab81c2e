//! Graceful shutdown: a future that resolves on SIGTERM or Ctrl-C, and a drain deadline.

use std::time::Duration;

use tokio::sync::watch;

/// Resolves when the process is asked to stop.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; draining");
}

/// A stop switch that background tasks watch and tests flip.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once `trigger` has been called (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Flip the switch when the process receives SIGTERM/Ctrl-C.
    pub fn on_signal(self) -> Self {
        let me = self.clone();
        tokio::spawn(async move {
            signal().await;
            me.trigger();
        });
        self
    }
}

/// What `serve` takes: a service answering every request (it never fails; errors are
/// responses), cheap to clone for each connection.
pub trait HttpService:
    tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
    > + Clone
    + Send
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static
{
}

/// How long a client may take to send a request's headers before its connection is closed,
/// for services that do not say (`serve`); the public gateway's is `[gateway]
/// header_read_timeout_ms`.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a connection buffers either way (hyper's own default is ~400 KiB): a request's
/// head must fit in it, so a client sending endless headers is answered 431 after 64 KiB
/// rather than holding 400 KiB of a service's memory until the header timeout; and an answer
/// is queued in at most this much before it goes to the kernel's socket buffer.
pub const CONNECTION_BUFFER: usize = 64 * 1024;

/// Serve `service` (a router, or a router behind a service of the caller's) on `listener`
/// until `shutdown` fires, then give in-flight requests `drain` to finish. Each request carries
/// its peer's address (`ConnectInfo<SocketAddr>`). A client gets `HEADER_READ_TIMEOUT` to send
/// its headers (`serve_with`).
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: Shutdown,
    drain: Duration,
) -> std::io::Result<()>
where
    S: HttpService,
    S::Future: Send,
{
    serve_with(listener, service, shutdown, drain, HEADER_READ_TIMEOUT).await
}

/// `serve`, closing any connection whose request headers take longer than
/// `header_read_timeout` to arrive (a slowloris client holds a connection no longer than
/// that; a slow body is the request timeout's business, since it comes after the headers).
pub async fn serve_with<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: Shutdown,
    drain: Duration,
    header_read_timeout: Duration,
) -> std::io::Result<()>
where
    S: HttpService,
    S::Future: Send,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(CONNECTION_BUFFER);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        // Answers go out as soon as they are written (no Nagle delay on small responses).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let svc = service
            .clone()
            .map_request(move |req: http::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            });
        let conn = builder
            .serve_connection_with_upgrades(
                TokioIo::new(tcp),
                hyper_util::service::TowerToHyperService::new(svc),
            )
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(?drain, "drain deadline passed; closing remaining connections");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A service answering `/`, served as the services serve.
    async fn serving() -> (SocketAddr, Shutdown) {
        let app = Router::new().route("/", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        tokio::spawn(serve(
            listener,
            app,
            shutdown.clone(),
            Duration::from_secs(1),
        ));
        (addr, shutdown)
    }

    /// The status line of the answer to `request`.
    async fn status_line(addr: SocketAddr, request: &[u8]) -> String {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        text.lines().next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_request_head_larger_than_the_connection_buffer_is_refused_with_431() {
        let (addr, shutdown) = serving().await;
        let head = |header_bytes: usize| {
            format!(
                "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
                "a".repeat(header_bytes)
            )
        };
        let fits = status_line(addr, head(CONNECTION_BUFFER / 2).as_bytes()).await;
        assert!(fits.starts_with("HTTP/1.1 200"), "{fits}");
        let too_large = status_line(addr, head(CONNECTION_BUFFER + 1024).as_bytes()).await;
        assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");
        shutdown.trigger();
    }
}
