//! The tokio side of the loopback tests: corebgp-core's driver over tokio
//! TCP, with a tokio clock. (corebgp-std's server is written concurrently;
//! these tests use the shared driver directly, as corebgp-std will.)

use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use corebgp_core::driver::{Clock, Connector};
use corebgp_core::session::Instant;
use embedded_io_adapters::tokio_1::FromTokio;
use tokio::net::{TcpListener, TcpStream};

/// Milliseconds since the clock was made, on tokio's timer.
pub struct TokioClock(pub tokio::time::Instant);

impl TokioClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + StdDuration::from_millis(deadline.as_millis())).await
    }
}

/// Dials `dial` and/or accepts on `listen`.
pub struct TokioConnector {
    /// Where to connect.
    pub dial: Option<SocketAddr>,
    /// Where connections come in.
    pub listen: Option<TcpListener>,
}

impl Connector for TokioConnector {
    type Transport = FromTokio<TcpStream>;

    async fn connect(&self) -> Option<Self::Transport> {
        let s = TcpStream::connect(self.dial?).await.ok()?;
        s.set_nodelay(true).ok()?;
        Some(FromTokio::new(s))
    }

    async fn accept(&self) -> Self::Transport {
        let Some(l) = &self.listen else {
            return std::future::pending().await;
        };
        loop {
            if let Ok((s, _)) = l.accept().await {
                let _ = s.set_nodelay(true);
                return FromTokio::new(s);
            }
        }
    }
}
