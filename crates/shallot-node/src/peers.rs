//! The node's outgoing HTTPS connections: to swarm peers and onion hops (authenticated with our
//! node certificate, pooled and kept alive), and to HTTP servers for onion proxying.
//! Wire formats of the node-to-node routes are in [`crate::node_api`].

use std::time::Duration;

use bytes::Bytes;
use shallot_directory::NodeRecord;
use shallot_proto::Identity;

use crate::node_api;
use crate::peer_tls::client_identity_pem;
use crate::timeouts;
use crate::tls::TlsError;

/// What happened to a request to a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No answer within the timeout.
    #[error("peer timed out")]
    Timeout,
    /// Could not connect or the connection broke.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
}

/// A peer's answer: HTTP status and body.
#[derive(Debug, Clone)]
pub struct PeerReply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// Pooled HTTPS clients for node-to-node traffic and onion proxying.
#[derive(Clone, Debug)]
pub struct PeerClient {
    nodes: reqwest::Client,
    proxy: reqwest::Client,
}

fn classify(error: &reqwest::Error) -> PeerError {
    if error.is_timeout() {
        PeerError::Timeout
    } else {
        PeerError::Unreachable(error.to_string())
    }
}

impl PeerClient {
    /// Clients that present `identity`'s node certificate to peers, connecting from `local`
    /// when given (the node's own listening address, so peers see the address the directory
    /// lists for it: a full listener still admits listed nodes).
    pub fn new(identity: &Identity, local: Option<std::net::IpAddr>) -> Result<Self, TlsError> {
        crate::tls::install_crypto_provider();
        let pem = client_identity_pem(identity)?;
        let tls_error = |e: reqwest::Error| TlsError::Io {
            action: "configure peer client",
            path: e.to_string(),
            source: std::io::Error::other("reqwest"),
        };
        let node_identity = reqwest::Identity::from_pem(&pem).map_err(tls_error)?;
        let nodes = reqwest::Client::builder()
            .use_rustls_tls()
            .identity(node_identity)
            // Peers' certificates are self-signed; a peer's identity matters only for what it
            // signs (swarm results) and onion layers are encrypted to its X25519 key.
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            // Below the peers' idle limit (connections.rs, 20 s by default), so a pooled
            // connection is never reused just as the peer closes it.
            .pool_idle_timeout(Duration::from_secs(10))
            .local_address(local)
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .connect_timeout(timeouts::PEER_FORWARD)
            .build()
            .map_err(tls_error)?;
        let proxy = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeouts::ONION_PROXY)
            .user_agent(concat!(
                "Oxen Storage Server/2.6.2 (Shallot ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .build()
            .map_err(tls_error)?;
        Ok(Self { nodes, proxy })
    }

    async fn post(
        &self,
        node: &NodeRecord,
        path: &str,
        body: Bytes,
        headers: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<PeerReply, PeerError> {
        let url = format!("https://{}{path}", node.https_addr());
        let mut request = self.nodes.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| classify(&e))?;
        Ok(PeerReply { status, body })
    }

    /// Forwards a recursive client request (its JSON envelope) to a swarm peer.
    pub async fn forward(
        &self,
        node: &NodeRecord,
        envelope: Bytes,
    ) -> Result<PeerReply, PeerError> {
        self.post(
            node,
            node_api::FORWARD_PATH,
            envelope,
            &[],
            timeouts::PEER_FORWARD,
        )
        .await
    }

    /// Relays an onion layer to the next hop.
    pub async fn relay_onion(
        &self,
        node: &NodeRecord,
        hop: &node_api::OnionHop,
        ciphertext: Bytes,
    ) -> Result<PeerReply, PeerError> {
        self.post(
            node,
            node_api::ONION_PATH,
            ciphertext,
            &hop.headers(),
            timeouts::ONION_RELAY,
        )
        .await
    }

    /// Pushes stored messages to a new swarm member.
    pub async fn push_messages(
        &self,
        node: &NodeRecord,
        batch: Bytes,
    ) -> Result<PeerReply, PeerError> {
        self.post(
            node,
            node_api::HANDOFF_PATH,
            batch,
            &[],
            timeouts::ONION_RELAY,
        )
        .await
    }

    /// POSTs an onion layer to an HTTP server (`/oxen/v4/lsrpc`, …) and returns its answer.
    pub async fn proxy(
        &self,
        url: &str,
        body: Bytes,
    ) -> Result<(u16, Vec<(String, String)>, Bytes), PeerError> {
        let response = self
            .proxy
            .post(url)
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != "content-length" && *name != "transfer-encoding")
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        let body = response.bytes().await.map_err(|e| classify(&e))?;
        Ok((status, headers, body))
    }
}
