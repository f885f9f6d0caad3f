//! A TCP proxy between the engine and a simulated switch that the test can cut: every proxied connection is
//! dropped at once (both sides see the socket close) and new connections are refused until it is restored. This
//! is what a network failure between a dialer and FreeSWITCH looks like, while the switch itself keeps its calls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

struct Inner {
    target: SocketAddr,
    up: AtomicBool,
    conns: Mutex<Vec<AbortHandle>>,
    /// Connections proxied so far (refused ones not counted).
    proxied: AtomicUsize,
}

/// A running proxy; dropping it stops it.
pub struct CutProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free local port, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy address");
        let inner = Arc::new(Inner {
            target,
            up: AtomicBool::new(true),
            conns: Mutex::new(Vec::new()),
            proxied: AtomicUsize::new(0),
        });
        let i = inner.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !i.up.load(Ordering::SeqCst) {
                    // Down: the connection is closed at once (like a reset).
                    drop(client);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(i.target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                i.proxied.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    let (mut a, mut b) = (client, upstream);
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                });
                let mut conns = i.conns.lock().unwrap_or_else(|p| p.into_inner());
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        });
        CutProxy {
            addr,
            inner,
            accept,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every proxied connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.inner.up.store(false, Ordering::SeqCst);
        let conns =
            std::mem::take(&mut *self.inner.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for c in conns {
            c.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.inner.up.store(true, Ordering::SeqCst);
    }

    /// Connections proxied so far.
    pub fn proxied(&self) -> usize {
        self.inner.proxied.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
