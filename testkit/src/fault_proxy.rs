//! A TCP proxy a test puts between a service and one of its dependencies, with the link's
//! faults switched while everything runs: added latency, a bandwidth limit, connections
//! refused, established connections frozen (nothing forwarded, no RST: packets just stop),
//! and every connection cut with an RST.
//!
//! ```no_run
//! # async fn demo() {
//! use marquee_testkit::fault_proxy::{Fault, FaultProxy};
//! let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap()).await;
//! // point the service at proxy.url("postgres://postgres@", "/db") …
//! proxy.set(Fault::Freeze); // statements now hang
//! proxy.set(Fault::None); // and go on
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the link does now. Switching applies at once to connections already open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes go through as they come.
    None,
    /// Every chunk waits this long before it is passed on, in each direction.
    Latency(Duration),
    /// At most this many bytes a second in each direction.
    Bandwidth(u64),
    /// New connections are refused (the port stops listening); open ones carry on.
    Refuse,
    /// Nothing moves on any connection, and new ones are accepted but never answered; no RST
    /// is sent, so the service sees a link that simply went quiet.
    Freeze,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    /// Bumped by `cut`: every connection open then is closed with an RST.
    cuts: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (fault, fault_rx) = watch::channel(Fault::None);
        let (cuts, cuts_rx) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(
            listener,
            addr,
            upstream,
            fault_rx,
            cuts_rx,
            accepted.clone(),
        ));
        Self {
            addr,
            fault,
            cuts,
            accepted,
            task,
        }
    }

    /// A proxy to the host and port of `url` (`scheme://[user@]host:port/…`).
    pub async fn to_url(url: &str) -> Self {
        let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = after_scheme.split('/').next().unwrap_or(after_scheme);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let upstream = tokio::net::lookup_host(host_port)
            .await
            .unwrap_or_else(|e| panic!("resolve {host_port}: {e}"))
            .next()
            .unwrap_or_else(|| panic!("no address for {host_port}"));
        Self::start(upstream).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's, so a client of `url` goes
    /// through the proxy.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(u, _)| format!("{u}@"));
        let prefix = if scheme.is_empty() {
            String::new()
        } else {
            format!("{scheme}://")
        };
        format!("{prefix}{user}{}{path}", self.addr)
    }

    /// Switch the link's fault.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Close every connection open now with an RST (both sides), as a cut cable or a
    /// firewall's reset would.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut fault: watch::Receiver<Fault>,
    cuts: watch::Receiver<u64>,
    accepted: Arc<AtomicU64>,
) {
    let mut listener = Some(listener);
    let mut links = tokio::task::JoinSet::new();
    loop {
        // Refusing: the port is closed (connect gets ECONNREFUSED) until the fault changes.
        if *fault.borrow() == Fault::Refuse {
            listener = None;
            if fault.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match rebind(addr).await {
                Some(l) => listener.insert(l),
                None => return,
            },
        };
        tokio::select! {
            conn = l.accept() => {
                let Ok((client, _)) = conn else { continue };
                accepted.fetch_add(1, Ordering::Relaxed);
                links.spawn(link(client, upstream, fault.clone(), cuts.clone()));
            }
            changed = fault.changed() => if changed.is_err() { return },
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

/// The same port again (its old connections may linger in TIME_WAIT: the listener reuses
/// the address).
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.set_reuseaddr(true).ok()?;
        if socket.bind(addr).is_ok() {
            return socket.listen(1024).ok();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn link(
    client: TcpStream,
    upstream: SocketAddr,
    mut fault: watch::Receiver<Fault>,
    mut cuts: watch::Receiver<u64>,
) {
    cuts.mark_unchanged();
    // Accepted in the moment the port was closing: refused as well.
    if *fault.borrow() == Fault::Refuse {
        return reset(client, None);
    }
    // A frozen link accepts but never connects onwards until it thaws.
    while *fault.borrow() == Fault::Freeze {
        tokio::select! {
            r = fault.changed() => if r.is_err() { return },
            _ = cuts.changed() => return reset(client, None),
        }
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client, None);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client, server) = (Arc::new(client), Arc::new(server));
    let up = pump(client.clone(), server.clone(), fault.clone(), cuts.clone());
    let down = pump(server.clone(), client.clone(), fault.clone(), cuts.clone());
    let cut = tokio::select! {
        _ = async { tokio::join!(up, down) } => false,
        _ = cuts.changed() => true,
    };
    // Both pumps may have stopped for the cut itself before the select saw it.
    let cut = cut || cuts.has_changed().unwrap_or(false);
    // Both sides done: they close as usual when dropped. Cut: with an RST.
    if let (true, Ok(client), Ok(server)) = (cut, Arc::try_unwrap(client), Arc::try_unwrap(server))
    {
        reset(client, Some(server));
    }
}

fn reset(a: TcpStream, b: Option<TcpStream>) {
    for s in std::iter::once(a).chain(b) {
        // A zero linger makes the close an RST, at once (nothing is left to send).
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    }
}

/// Copy `from` to `to` under the fault of the moment; done at end of stream or an error, or
/// at a cut: nothing read after [`FaultProxy::cut`] returned is passed on, even before the
/// link's task has got round to resetting the sockets.
async fn pump(
    from: Arc<TcpStream>,
    to: Arc<TcpStream>,
    mut fault: watch::Receiver<Fault>,
    cuts: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        wait_while_frozen(&mut fault).await;
        let n = match read(&from, &mut buf).await {
            Ok(0) | Err(_) => {
                let _ = shutdown_write(&to);
                return;
            }
            Ok(n) => n,
        };
        // A chunk read as the link froze is held until it thaws.
        wait_while_frozen(&mut fault).await;
        let now = *fault.borrow();
        match now {
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::Bandwidth(bps) if bps > 0 => {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
            }
            _ => {}
        }
        if cuts.has_changed().unwrap_or(true) {
            return;
        }
        if write_all(&to, &buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_while_frozen(fault: &mut watch::Receiver<Fault>) {
    while *fault.borrow_and_update() == Fault::Freeze {
        if fault.changed().await.is_err() {
            // The proxy is gone: stay frozen until the task is dropped.
            std::future::pending::<()>().await;
        }
    }
}

async fn read(s: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(s: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Half-close: the peer reads end of stream, as it would from the real dependency.
fn shutdown_write(s: &TcpStream) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(s);
    sock.shutdown(std::net::Shutdown::Write)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server; its address.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok(got)
    }

    #[tokio::test]
    async fn each_fault_does_what_it_says_and_the_link_recovers() {
        let proxy = FaultProxy::start(echo().await).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut s, b"hello").await.unwrap(), b"hello");

        // Latency: a round trip takes at least twice the delay (there and back).
        proxy.set(Fault::Latency(Duration::from_millis(100)));
        let t = std::time::Instant::now();
        round_trip(&mut s, b"slow").await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );

        // Bandwidth: 20 KB at 100 KB/s takes at least 0.2 s each way.
        proxy.set(Fault::Bandwidth(100_000));
        let t = std::time::Instant::now();
        round_trip(&mut s, &[7u8; 20_000]).await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );

        // Freeze: nothing comes back, and nothing is lost once it thaws.
        proxy.set(Fault::Freeze);
        s.write_all(b"held").await.unwrap();
        let mut got = [0u8; 4];
        let waited = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut got)).await;
        assert!(waited.is_err(), "a frozen link answered");
        // A new connection is accepted but never answered either.
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        fresh.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(200), fresh.read_exact(&mut one))
                .await
                .is_err()
        );
        proxy.set(Fault::None);
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"held");
        fresh.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"x");

        // Refuse: new connections fail at once; the open one carries on; then back.
        proxy.set(Fault::Refuse);
        crate::wait_for("the port to close", Duration::from_secs(5), || async {
            TcpStream::connect(proxy.addr())
                .await
                .is_err()
                .then_some(())
        })
        .await;
        assert_eq!(round_trip(&mut s, b"still").await.unwrap(), b"still");
        proxy.set(Fault::None);
        let mut again = crate::wait_for("the port to open", Duration::from_secs(5), || async {
            TcpStream::connect(proxy.addr()).await.ok()
        })
        .await;
        assert_eq!(round_trip(&mut again, b"back").await.unwrap(), b"back");

        // Cut: open connections get an RST, and nothing sent after the cut gets through.
        proxy.cut();
        let _ = s.write_all(b"late").await;
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the cut is seen");
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{r:?}"
        );
        // New connections work after a cut.
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut after, b"new").await.unwrap(), b"new");
        assert!(proxy.accepted() >= 4);
    }

    #[test]
    fn url_swaps_host_and_port_only() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let p = FaultProxy::start("127.0.0.1:1".parse().unwrap()).await;
            let a = p.addr();
            assert_eq!(
                p.url("postgres://postgres@127.0.0.1:5432/db_x"),
                format!("postgres://postgres@{a}/db_x")
            );
            assert_eq!(p.url("redis://127.0.0.1:6379/"), format!("redis://{a}/"));
            assert_eq!(p.url("http://127.0.0.1:8080"), format!("http://{a}"));
        });
    }
}
