//! Connection-level defences of the HTTPS listener: caps on open connections (in total and per
//! client address), the timeouts that close idle and slow connections, and the open-files limit.
//!
//! Without them one host that opens thousands of connections and sends nothing exhausts the
//! node's file descriptors, and the node stops answering clients, peers and the directory.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// File descriptors kept free for everything but client connections: the database, peer and
/// directory connections, logs.
const RESERVED_FDS: u64 = 256;

/// Limits of the HTTPS listener (`[connections]` in `node.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Open connections at most, from everyone together; further connections are closed at once.
    /// Lowered at start to fit the open-files limit.
    pub max_connections: usize,
    /// Open connections at most from one IPv4 address or one IPv6 /64.
    pub max_connections_per_ip: usize,
    /// Seconds to complete the TLS handshake.
    pub tls_handshake_secs: u64,
    /// Seconds to send a request's headers (HTTP/1), counted from the first byte awaited.
    pub header_read_secs: u64,
    /// Seconds to send a whole request body.
    pub body_read_secs: u64,
    /// Seconds a connection may stay silent, with no request in progress, before it is closed.
    pub idle_secs: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 128,
            tls_handshake_secs: 10,
            header_read_secs: 10,
            body_read_secs: 60,
            idle_secs: 20,
        }
    }
}

impl ConnectionConfig {
    /// TLS handshake deadline.
    pub fn tls_handshake(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_secs.max(1))
    }
    /// HTTP/1 header deadline.
    pub fn header_read(&self) -> Duration {
        Duration::from_secs(self.header_read_secs.max(1))
    }
    /// Request body deadline.
    pub fn body_read(&self) -> Duration {
        Duration::from_secs(self.body_read_secs.max(1))
    }
    /// Silence allowed between requests.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_secs.max(1))
    }
}

/// Raises the soft open-files limit to the hard limit and returns the resulting soft limit
/// (`None` where it cannot be read).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "could not raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The listener's limiter: the open-files limit raised as far as allowed, and the total cap
/// lowered to fit under it (with a warning saying how to raise it).
pub fn limiter_for(config: &ConnectionConfig) -> Arc<ConnectionLimiter> {
    let open_files = raise_open_files_limit();
    let max = fit_to_open_files(config.max_connections, open_files);
    if max < config.max_connections {
        tracing::warn!(
            max_connections = max,
            open_files,
            "the open-files limit lowers the connection cap; raise it (e.g. LimitNOFILE=)"
        );
    }
    ConnectionLimiter::new(max, config.max_connections_per_ip)
}

/// The connection cap that fits under an open-files limit.
pub fn fit_to_open_files(configured: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        None => configured,
    }
}

/// The key one client's connections are counted under: its IPv4 address, or its IPv6 /64
/// (one subscriber usually holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(
            || {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            },
            IpAddr::V4,
        ),
    }
}

/// Counts open connections in total and per client; a [`ConnectionSlot`] is one of them.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refused_total: AtomicU64,
    refused_per_ip: AtomicU64,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The node holds its maximum number of connections.
    Total,
    /// This client holds its maximum number of connections.
    PerIp,
}

impl ConnectionLimiter {
    /// A limiter with the given caps (each at least 1).
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refused_total: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
        })
    }

    /// Takes a slot for a new connection from `ip`, released when the slot is dropped.
    /// `is_node(ip)` is asked only once the total cap is reached: listed service nodes still get
    /// in (each within the per-address cap), so a flood from many addresses cannot cut a node off
    /// from its peers' reachability tests and replication, which would get it decommissioned.
    /// The per-client map holds no more entries than open connections.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        is_node: impl FnOnce(IpAddr) -> bool,
    ) -> Result<ConnectionSlot, Refusal> {
        let key = client_key(ip);
        let mut per_ip = self
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.total.load(Ordering::Relaxed) >= self.max_total && !is_node(ip) {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Total);
        }
        let count = per_ip.entry(key).or_insert(0);
        if *count >= self.max_per_ip {
            self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerIp);
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionSlot {
            limiter: self.clone(),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Gauges for the admin `/metrics` page (name, help, value).
    pub fn gauges(&self) -> [(&'static str, &'static str, u64); 3] {
        [
            (
                "shallot_connections_open",
                "Open connections of the HTTPS listener.",
                u64::try_from(self.open()).unwrap_or(u64::MAX),
            ),
            (
                "shallot_connections_refused_full",
                "Connections closed at once since start: the listener was full.",
                self.refused_total.load(Ordering::Relaxed),
            ),
            (
                "shallot_connections_refused_per_ip",
                "Connections closed at once since start: their address held its maximum.",
                self.refused_per_ip.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// A connection's slot shared with the requests it carries (a request extension), so that a
/// connection upgraded to a WebSocket, which leaves hyper, keeps counting until it closes.
#[derive(Clone, Debug)]
pub struct HeldSlot(pub Arc<ConnectionSlot>);

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    key: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_ip = self
            .limiter
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.key);
            }
        }
        self.limiter.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the idle watchdog of one connection needs: when bytes last moved and how many requests
/// are being answered.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    /// A connection that is active now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Marks a request as in progress until the guard is dropped: a request waiting on a slow
    /// peer moves no bytes but is not idle.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// How long the connection has been silent with no request in progress (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Completes once the connection has been idle for `limit`.
    pub async fn idle_timeout(&self, limit: Duration) {
        loop {
            // Sleep until the earliest moment the limit could be reached.
            match limit.checked_sub(self.idle_for()) {
                Some(left) if !left.is_zero() => tokio::time::sleep(left).await,
                _ => return,
            }
        }
    }
}

/// A request in progress on a connection (see [`Activity::request`]).
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A stream that records in [`Activity`] when bytes move in either direction.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn client(_: IpAddr) -> bool {
        false
    }

    #[test]
    fn caps_per_client_and_in_total_and_frees_slots() {
        let limiter = ConnectionLimiter::new(5, 2);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let a1 = limiter.admit(a, client).unwrap();
        let _a2 = limiter.admit(a, client).unwrap();
        assert_eq!(limiter.admit(a, client).unwrap_err(), Refusal::PerIp);
        let _b1 = limiter.admit(b, client).unwrap();
        drop(a1);
        let _a3 = limiter.admit(a, client).unwrap();
        assert_eq!(limiter.open(), 3);
        let _b2 = limiter.admit(b, client).unwrap();
        let c = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));
        let _c1 = limiter.admit(c, client).unwrap();
        assert_eq!(limiter.admit(c, client).unwrap_err(), Refusal::Total);
        // A listed service node still gets in over the total cap, within its own cap.
        let node = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let _n1 = limiter.admit(node, |_| true).unwrap();
        let _n2 = limiter.admit(node, |_| true).unwrap();
        assert_eq!(limiter.admit(node, |_| true).unwrap_err(), Refusal::PerIp);
        assert_eq!(limiter.open(), 7);
        let gauges = limiter.gauges();
        assert_eq!(gauges[0].2, 7, "open");
        assert_eq!(gauges[1].2, 1, "refused: full");
        assert_eq!(gauges[2].2, 2, "refused: per address");
    }

    #[test]
    fn the_map_forgets_clients_without_connections() {
        let limiter = ConnectionLimiter::new(10, 10);
        for i in 0..5u8 {
            drop(
                limiter
                    .admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), client)
                    .unwrap(),
            );
        }
        assert_eq!(limiter.open(), 0);
        assert!(limiter.per_ip.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_v4_as_v4() {
        let limiter = ConnectionLimiter::new(10, 1);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _s = limiter.admit(one, client).unwrap();
        assert_eq!(limiter.admit(same_64, client).unwrap_err(), Refusal::PerIp);
        let _t = limiter.admit(other_64, client).unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _u = limiter.admit(v4, client).unwrap();
        assert_eq!(limiter.admit(mapped, client).unwrap_err(), Refusal::PerIp);
    }

    #[test]
    fn the_connection_cap_fits_the_open_files_limit() {
        assert_eq!(fit_to_open_files(10_000, Some(1024)), 768);
        assert_eq!(fit_to_open_files(10_000, Some(1_048_576)), 10_000);
        assert_eq!(fit_to_open_files(10_000, Some(10)), 1);
        assert_eq!(fit_to_open_files(500, None), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_is_not_idle() {
        let activity = Activity::new();
        let guard = activity.request();
        let limit = Duration::from_secs(20);
        let waited = tokio::time::timeout(Duration::from_secs(60), activity.idle_timeout(limit));
        assert!(
            waited.await.is_err(),
            "idle while a request was in progress"
        );
        drop(guard);
        let started = tokio::time::Instant::now();
        activity.idle_timeout(limit).await;
        assert!(started.elapsed() >= limit);
    }
}
