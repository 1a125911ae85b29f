//! Ways a test reaches a node besides plain HTTPS: as a peer node (a TLS client certificate of
//! a node key, see peer_tls.rs), and over the push WebSocket, optionally from a chosen address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shallot_proto::Identity;

/// A push WebSocket to a node.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An HTTPS client presenting `identity`'s node certificate, connecting from `source` if given.
pub fn peer_client(identity: &Identity, source: Option<Ipv4Addr>) -> reqwest::Client {
    shallot_node::tls::install_crypto_provider();
    let pem = shallot_node::peer_tls::client_identity_pem(identity).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .local_address(source.map(IpAddr::V4))
        .build()
        .unwrap()
}

/// Opens the push WebSocket (`/monitor/v1`) of the node at `addr`, from `source` if given.
pub async fn monitor_ws(addr: SocketAddr, source: Option<Ipv4Addr>) -> Ws {
    try_monitor_ws(addr, source).await.unwrap()
}

/// [`monitor_ws`], or the WebSocket handshake's error (e.g. the node's refusal).
pub async fn try_monitor_ws(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(super::attack::AnyCert))
        .with_no_client_auth();
    let tcp = match source {
        Some(from) => super::attack::tcp_from(from, addr).await.unwrap(),
        None => tokio::net::TcpStream::connect(addr).await.unwrap(),
    };
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
        format!("wss://{addr}/monitor/v1"),
        tcp,
        None,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(config))),
    )
    .await?;
    Ok(ws)
}

/// The next JSON text frame of `ws` (pings and pongs skipped), or `None` if nothing arrives
/// within `wait`.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Option<serde_json::Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match frame.unwrap().unwrap() {
            Message::Text(text) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}
