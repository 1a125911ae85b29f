//! The HTTPS listener: TCP accept, TLS (with optional node client certificates), HTTP/1.1 and
//! HTTP/2 via hyper, and graceful shutdown that lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use shallot_proto::Ed25519Pub;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

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

/// Serves `app` on `listener` until `shutdown` becomes true, then waits up to
/// [`timeouts::SHUTDOWN_GRACE`] for open requests to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(timeouts::REQUEST_READ, acceptor.accept(tcp)).await
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
            let service = app.map_request(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(info);
                    request
                },
            );
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            let _ = watcher.watch(connection).await;
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
