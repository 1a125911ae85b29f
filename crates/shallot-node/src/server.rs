//! The HTTPS listener: TCP accept, TLS (with optional node client certificates), HTTP/1.1 and
//! HTTP/2 via hyper, the connection limits and timeouts of [`crate::connections`], and graceful
//! shutdown that lets in-flight requests finish.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use shallot_proto::Ed25519Pub;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::connections::{Activity, ConnectionConfig, ConnectionLimiter, HeldSlot, Tracked};
use crate::peer_tls::certificate_ed25519;
use crate::timeouts;

/// Who is on the other end of a connection; inserted into every request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The remote socket address.
    pub remote: SocketAddr,
    /// The node key proven in the TLS handshake, when the peer presented a node certificate.
    pub node: Option<Ed25519Pub>,
}

/// Completes once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// What the listener asks of the directory view.
pub trait Membership: Send + Sync + 'static {
    /// Whether `ip` is the address of a listed service node (admitted over the total cap).
    fn is_listed_ip(&self, ip: IpAddr) -> bool;
    /// Whether `key` (proven in the TLS handshake) is an active service node: a peer, whose
    /// connection carries many clients' relays and gets more HTTP/2 streams.
    fn is_active_node(&self, key: &Ed25519Pub) -> bool;
}

/// The HTTP/1 and HTTP/2 settings of one kind of connection.
fn http_builder(limits: &ConnectionConfig, h2_streams: u32) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Also bounds the wait for the next request on a kept-alive connection.
        .header_read_timeout(limits.header_read())
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2_streams)
        .max_header_list_size(MAX_H2_HEADER_LIST)
        .keep_alive_interval(Some(limits.idle()))
        .keep_alive_timeout(limits.tls_handshake());
    builder
}

/// Serves `app` on `listener` until `shutdown` becomes true, then waits up to
/// [`timeouts::SHUTDOWN_GRACE`] for open requests to finish. Every connection takes a slot of
/// `limiter` first and is closed when it stalls or idles past `limits`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: ConnectionConfig,
    limiter: Arc<ConnectionLimiter>,
    membership: Arc<dyn Membership>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let clients = Arc::new(http_builder(&limits, MAX_H2_STREAMS_CLIENT));
    let peers = Arc::new(http_builder(&limits, MAX_H2_STREAMS_PEER));
    let mut backoff = AcceptBackoff::default();
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: wait, longer each time, rather
                    // than spin; other tasks keep running meanwhile.
                    backoff.failed(&error).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        backoff.reset();
        let slot = match limiter.admit(remote.ip(), |ip| membership.is_listed_ip(ip)) {
            Ok(slot) => slot,
            Err(refusal) => {
                // Dropping the socket closes it before any TLS work is spent on it.
                tracing::debug!(?refusal, "connection refused: too many open connections");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let (clients, peers, membership) = (clients.clone(), peers.clone(), membership.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let slot = HeldSlot(Arc::new(slot));
            let activity = Activity::new();
            let tcp = Tracked::new(tcp, activity.clone());
            let Ok(Ok(stream)) =
                tokio::time::timeout(limits.tls_handshake(), acceptor.accept(tcp)).await
            else {
                return;
            };
            let node = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[_]>::first)
                .and_then(certificate_ed25519);
            let info = ConnInfo { remote, node };
            let builder = if node.is_some_and(|key| membership.is_active_node(&key)) {
                peers
            } else {
                clients
            };
            let body_deadline = limits.body_read();
            let requests = activity.clone();
            let service = tower::service_fn(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(info);
                    request.extensions_mut().insert(slot.clone());
                    let request = request
                        .map(|body| axum::body::Body::new(DeadlineBody::new(body, body_deadline)));
                    let in_flight = requests.request();
                    let app = app.clone();
                    async move {
                        let response = app.oneshot(request).await;
                        drop(in_flight);
                        response
                    }
                },
            );
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            // An upgraded (WebSocket) connection leaves hyper and with it this watchdog (the push
            // monitor keeps its own idle rules); it holds a clone of the slot until it closes.
            tokio::select! {
                _ = watcher.watch(connection) => {}
                () = activity.idle_timeout(limits.idle()) => {}
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(timeouts::SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the shutdown grace period");
    }
}

/// Concurrent streams (requests in progress) of a client's HTTP/2 connection: a client has
/// little reason for more, and one address holds at most `max_connections_per_ip` connections.
const MAX_H2_STREAMS_CLIENT: u32 = 128;
/// The same for an active service node's connection. A peer multiplexes every relay it sends us
/// over one connection, and hyper's client waits for a free stream rather than opening a second
/// connection, so this must exceed the relay cap (`[onion] max_concurrent_relays`): at 64,
/// relays through a busy pair of nodes waited on each other's streams until they timed out
/// (`shallot bench node`, onion scenarios). Work per stream stays bounded by the relay and proxy
/// caps.
const MAX_H2_STREAMS_PEER: u32 = 8192;
/// Largest HTTP/2 header block accepted.
const MAX_H2_HEADER_LIST: u32 = 64 * 1024;

/// Exponential back-off of a failing `accept` (typically EMFILE: out of file descriptors),
/// logging once per streak instead of once per failure.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    async fn failed(&mut self, error: &std::io::Error) {
        if self.failures == 0 {
            tracing::warn!(%error, "accept failed; backing off");
        }
        self.failures = self.failures.saturating_add(1);
        let ms = 10u64 << self.failures.min(7); // 20 ms … 1.28 s
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    fn reset(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
    }
}

/// A request body that fails once `limit` has passed since the request began, however slowly
/// its bytes trickle in (a per-read timeout would let one byte a second through forever). The
/// timer is armed only when the body first has to wait: most bodies arrive with their headers.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: hyper::body::Incoming, limit: Duration) -> Self {
        Self {
            inner,
            deadline: tokio::time::Instant::now() + limit,
            timer: None,
        }
    }
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
pub struct BodyTimeout;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
