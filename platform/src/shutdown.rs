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
        .header_read_timeout(header_read_timeout);
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
