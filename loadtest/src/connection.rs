//! One keep-alive HTTP/1.1 connection on hyper's connection API, for a load generator whose own
//! CPU shares the machine with what it measures (the hot show's 64 clients run beside
//! booking-core and Postgres on two cores). Against reqwest it skips, per request, the pool's
//! checkout and return, the URL's parse, the header map's build and the JSON value in between:
//! BENCHMARKS.md ("The hot show's own client") has what that saved.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: the server's address and the `Host` header for it.
#[derive(Clone)]
pub struct Target {
    addr: String,
    host: HeaderValue,
}

impl Target {
    /// From a base URL such as `http://127.0.0.1:18081` (plain HTTP only).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse()?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "{url}: only plain http is supported"
        );
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Self {
            addr: format!("{}:{port}", authority.host()),
            host: HeaderValue::from_str(authority.as_str())?,
        })
    }
}

/// A connection that reopens itself when the server closed it.
pub struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    async fn open(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&self.target.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("opened above");
        sender.ready().await?;
        Ok(sender)
    }

    /// Send `method path` with `authorization` (if any) and a JSON `body` (if any); the
    /// answer's status and whole body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let has_body = body.is_some();
        let mut request = Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse()?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.target.host.clone());
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
        if has_body {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let result = async {
            let response = self.open().await?.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        if result.is_err() {
            // Whatever failed, the next request starts on a new connection.
            self.sender = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_the_urls_address_and_host() {
        let t = Target::parse("http://127.0.0.1:18081").unwrap();
        assert_eq!(t.addr, "127.0.0.1:18081");
        assert_eq!(t.host, "127.0.0.1:18081");
        let t = Target::parse("http://localhost/").unwrap();
        assert_eq!(t.addr, "localhost:80");
        assert!(Target::parse("https://example.com").is_err());
    }
}
