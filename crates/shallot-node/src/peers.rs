//! The node's outgoing HTTPS connections: to swarm peers and onion hops (authenticated with our
//! node certificate, pooled and kept alive), and to HTTP servers for onion proxying.
//! Wire formats of the node-to-node routes are in [`crate::node_api`].
//!
//! Every reply is read with a deadline and a size cap ([`OnionLimits::max_reply_bytes`]),
//! chunk by chunk: a peer or server that streams more is cut off, never buffered.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shallot_directory::NodeRecord;
use shallot_proto::{Ed25519Pub, Identity};

use crate::node_api;
use crate::onion_limits::{OnionLimits, Work, WorkSlots};
use crate::peer_tls::{peer_client_config, pinned_host, PinnedResolver};
use crate::ssrf;
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

/// What happened to an onion layer relayed to the next hop or proxied to an HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum HopError {
    /// No (complete) answer within the deadline.
    #[error("timed out")]
    Timeout,
    /// Could not connect or the connection broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Too many relays or proxied requests in flight; refused without trying.
    #[error("too many requests in flight")]
    Busy,
    /// The reply was longer than the cap; reading stopped there.
    #[error("reply larger than {0} bytes")]
    TooLarge(usize),
    /// A proxy target that is not a public address (see [`crate::ssrf`]).
    #[error("proxy target is not a public address")]
    Forbidden,
}

/// Why a reply could not be read.
enum ReadError {
    Timeout,
    Unreachable(String),
    TooLarge(usize),
    Forbidden,
}

impl From<ReadError> for HopError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Timeout => Self::Timeout,
            ReadError::Unreachable(text) => Self::Unreachable(text),
            ReadError::TooLarge(cap) => Self::TooLarge(cap),
            ReadError::Forbidden => Self::Forbidden,
        }
    }
}

impl From<ReadError> for PeerError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Timeout => Self::Timeout,
            ReadError::Unreachable(text) => Self::Unreachable(text),
            ReadError::TooLarge(cap) => Self::Unreachable(format!("reply larger than {cap} bytes")),
            ReadError::Forbidden => Self::Unreachable("forbidden address".to_owned()),
        }
    }
}

fn read_error(error: &reqwest::Error) -> ReadError {
    if ssrf::is_forbidden(error) {
        ReadError::Forbidden
    } else if error.is_timeout() {
        ReadError::Timeout
    } else {
        ReadError::Unreachable(error.to_string())
    }
}

/// Sends `request` and reads the reply's status, headers and at most `cap` body bytes, all
/// within `deadline`.
async fn send_capped(
    request: reqwest::RequestBuilder,
    cap: usize,
    deadline: Duration,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Bytes), ReadError> {
    let exchange = async {
        let mut response = request.send().await.map_err(|e| read_error(&e))?;
        if response
            .content_length()
            .is_some_and(|len| len > u64::try_from(cap).unwrap_or(u64::MAX))
        {
            return Err(ReadError::TooLarge(cap));
        }
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        // Chunks are kept as they come and joined once at the end, so an oversized reply is
        // never copied into a growing buffer.
        let mut chunks = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) = response.chunk().await.map_err(|e| read_error(&e))? {
            len = len.saturating_add(chunk.len());
            if len > cap {
                return Err(ReadError::TooLarge(cap));
            }
            chunks.push(chunk);
        }
        let body = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.swap_remove(0),
            _ => {
                let mut body = BytesMut::with_capacity(len);
                for chunk in &chunks {
                    body.extend_from_slice(chunk);
                }
                body.freeze()
            }
        };
        Ok((status, headers, body))
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .unwrap_or(Err(ReadError::Timeout))
}

/// A peer's answer: HTTP status and body.
#[derive(Debug, Clone)]
pub struct PeerReply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// Pooled HTTPS clients for node-to-node traffic and onion proxying, with the onion limits.
#[derive(Clone, Debug)]
pub struct PeerClient {
    nodes: reqwest::Client,
    proxy: reqwest::Client,
    limits: OnionLimits,
    slots: WorkSlots,
    urls: Arc<PeerUrls>,
}

/// Most peers whose parsed base URL is kept: above any network's node count; when full, the
/// cache starts over.
const MAX_CACHED_URLS: usize = 8192;

/// Parsed `https://<pinned host>:<port>/` base URLs of peers. A pinned host name is about 90
/// characters, and parsing it (IDNA mapping included) on every relayed layer was a measurable
/// share of a relay's CPU time; a cached URL costs a clone and a path.
#[derive(Debug, Default)]
struct PeerUrls {
    bases: std::sync::Mutex<HashMap<(Ipv4Addr, u16, Ed25519Pub), reqwest::Url>>,
}

impl PeerUrls {
    /// `path` on `node`, by its pinned host name.
    fn url(&self, node: &NodeRecord, path: &str) -> Result<reqwest::Url, String> {
        let key = (node.ip, node.https_port, node.ed25519);
        let cached = self
            .bases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let mut url = if let Some(url) = cached {
            url
        } else {
            let host = pinned_host(node.ip, &node.ed25519);
            let url = reqwest::Url::parse(&format!("https://{host}:{}/", node.https_port))
                .map_err(|e| format!("invalid peer address: {e}"))?;
            let mut bases = self
                .bases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if bases.len() >= MAX_CACHED_URLS {
                bases.clear();
            }
            bases.insert(key, url.clone());
            url
        };
        url.set_path(path);
        Ok(url)
    }
}

impl PeerClient {
    /// Clients that present `identity`'s node certificate to peers and accept a peer only if
    /// its certificate proves the Ed25519 key the directory lists for it (see
    /// [`crate::peer_tls`]); bounded by `limits`; connecting from `local` when given (the node's
    /// own listening address, so peers see the address the directory lists for it: a full
    /// listener still admits listed nodes).
    pub fn new(
        identity: &Identity,
        limits: OnionLimits,
        local: Option<std::net::IpAddr>,
    ) -> Result<Self, TlsError> {
        crate::tls::install_crypto_provider();
        let tls_error = |e: reqwest::Error| TlsError::Io {
            action: "configure peer client",
            path: e.to_string(),
            source: std::io::Error::other("reqwest"),
        };
        let nodes = reqwest::Client::builder()
            .use_preconfigured_tls(peer_client_config(identity)?)
            .dns_resolver(std::sync::Arc::new(PinnedResolver))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // Below the peers' idle limit (connections.rs, 20 s by default), so a pooled
            // connection is never reused just as the peer closes it.
            .pool_idle_timeout(Duration::from_secs(10))
            .local_address(local)
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .connect_timeout(timeouts::PEER_FORWARD)
            .build()
            .map_err(tls_error)?;
        let mut proxy = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            // An HTTP proxy from the environment would resolve names itself, past our checks.
            .no_proxy()
            .timeout(timeouts::ONION_PROXY)
            .user_agent(concat!(
                "Oxen Storage Server/2.6.2 (Shallot ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ));
        if !limits.allow_private_targets {
            proxy = proxy.dns_resolver(Arc::new(ssrf::PublicResolver));
        }
        let proxy = proxy.build().map_err(tls_error)?;
        Ok(Self {
            nodes,
            proxy,
            limits,
            slots: WorkSlots::new(&limits),
            urls: Arc::new(PeerUrls::default()),
        })
    }

    async fn post(
        &self,
        node: &NodeRecord,
        path: &str,
        body: Bytes,
        headers: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<PeerReply, ReadError> {
        let url = self.urls.url(node, path).map_err(ReadError::Unreachable)?;
        // `send_capped` bounds the whole exchange: no second (reqwest) timer per request.
        let mut request = self.nodes.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let (status, _, body) = send_capped(request, self.limits.max_reply_bytes, timeout).await?;
        Ok(PeerReply {
            status: status.as_u16(),
            body,
        })
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
        .map_err(PeerError::from)
    }

    /// Relays an onion layer to the next hop, after the random [`OnionLimits::relay_delay`];
    /// [`HopError::Busy`] at once when [`OnionLimits::max_concurrent_relays`] relays are in
    /// flight.
    pub async fn relay_onion(
        &self,
        node: &NodeRecord,
        hop: &node_api::OnionHop,
        ciphertext: Bytes,
    ) -> Result<PeerReply, HopError> {
        let _slot = self.slots.try_acquire(Work::Relay).ok_or(HopError::Busy)?;
        // The timing defence waits with the slot held: delayed layers count against the cap.
        let delay = self.limits.relay_delay(&mut rand::thread_rng());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.post(
            node,
            node_api::ONION_PATH,
            ciphertext,
            &hop.headers(),
            timeouts::ONION_RELAY,
        )
        .await
        .map_err(HopError::from)
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
        .map_err(PeerError::from)
    }

    /// POSTs an onion layer to an HTTP server (`/oxen/v4/lsrpc`, …) and returns its answer.
    ///
    /// Unless [`OnionLimits::allow_private_targets`] is set, the server must be at a public
    /// address ([`HopError::Forbidden`], checked before any connection is made). At most
    /// [`OnionLimits::max_concurrent_proxies`] run at once ([`HopError::Busy`]).
    pub async fn proxy(
        &self,
        url: &str,
        body: Bytes,
    ) -> Result<(u16, Vec<(String, String)>, Bytes), HopError> {
        let url = reqwest::Url::parse(url).map_err(|_| HopError::Forbidden)?;
        if !self.limits.allow_private_targets {
            ssrf::check_url(&url).map_err(|_| HopError::Forbidden)?;
        }
        let _slot = self.slots.try_acquire(Work::Proxy).ok_or(HopError::Busy)?;
        let request = self
            .proxy
            .post(url)
            .header("Content-Type", "application/octet-stream")
            .body(body);
        let (status, headers, body) =
            send_capped(request, self.limits.max_reply_bytes, timeouts::ONION_PROXY).await?;
        let headers = headers
            .iter()
            .filter(|(name, _)| *name != "content-length" && *name != "transfer-encoding")
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        Ok((status.as_u16(), headers, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shallot_proto::swarm::SwarmId;

    #[test]
    fn cached_peer_urls_match_a_fresh_parse_for_every_path() {
        let identity = Identity::generate(&mut rand_core::OsRng);
        let node = NodeRecord {
            pubkey_legacy: *identity.ed25519_public().as_bytes(),
            ed25519: identity.ed25519_public(),
            x25519: identity.x25519_public(),
            ip: Ipv4Addr::new(127, 0, 5, 9),
            https_port: 4433,
            omq_port: 0,
            swarm_id: SwarmId(7),
        };
        let urls = PeerUrls::default();
        for path in [
            node_api::ONION_PATH,
            node_api::FORWARD_PATH,
            node_api::ONION_PATH,
        ] {
            let host = pinned_host(node.ip, &node.ed25519);
            let fresh = reqwest::Url::parse(&format!("https://{host}:4433{path}")).unwrap();
            assert_eq!(urls.url(&node, path).unwrap(), fresh);
        }
        assert_eq!(urls.bases.lock().unwrap().len(), 1);
    }
}
