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

/// Serve `service` (a router, or a router behind a service of the caller's) on `listener`
/// until `shutdown` fires, then give in-flight requests `drain` to finish. Each request carries
/// its peer's address (`ConnectInfo<SocketAddr>`).
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: Shutdown,
    drain: Duration,
) -> std::io::Result<()>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let stop = shutdown.clone();
    use axum::ServiceExt;
    use axum::serve::ListenerExt;
    // Answers go out as soon as they are written (no Nagle delay on small responses).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let server = axum::serve(
        listener,
        service.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.wait().await });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        res = &mut server => res,
        () = async { shutdown.wait().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(?drain, "drain deadline passed; closing remaining connections");
            Ok(())
        }
    }
}
