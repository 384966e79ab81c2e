//! The baseline: the least an HTTP server on this machine can do per request.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

pub async fn serve(listen: std::net::SocketAddr, body_bytes: usize) -> anyhow::Result<()> {
    let body = Bytes::from(format!(
        "{{\"pad\":\"{}\"}}",
        "x".repeat(body_bytes.saturating_sub(10))
    ));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("bare hyper on {listen}, {} byte bodies", body.len());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req| {
                let body = body.clone();
                async move {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(body))
                            .expect("response"),
                    )
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
