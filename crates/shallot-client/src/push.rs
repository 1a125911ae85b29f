//! Opt-in push notifications: a WebSocket to one member of our swarm (`wss://…/monitor/v1`,
//! storage RPC spec §6) that announces each message stored for us as it arrives, instead of
//! waiting for the next poll.
//!
//! # Privacy trade-off
//!
//! Polling goes through onion paths: the swarm member that answers sees our account but not our
//! IP address, and the guard sees our IP but not our account. A push subscription is a *direct*
//! connection, so the swarm member it goes to learns our IP address **together with** our
//! account (and when we are online). Session's own push does the same, only through a push
//! server that then holds that pairing. That is why this is opt-in: only call [`subscribe`] if
//! the user chose faster delivery over that exposure.
//!
//! # Falling back to polling
//!
//! A subscription reconnects on its own (to another swarm member, with backoff) and renews itself
//! before the node's 65-minute lifetime runs out, but notifications can still be missed: while it
//! reconnects, or when the node's queue overflows. Keep polling with
//! [`crate::Messenger::receive`] — more often while [`PushSubscription::is_connected`] is false,
//! rarely while it is true — and feed notifications to [`crate::Messenger::accept_pushed`], which
//! shares the poller's deduplication, so each message is shown once whichever way it came.
//!
//! Nothing here logs message data or keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shallot_directory::NodeRecord;
use shallot_proto::signing::SignedRequest;
use shallot_proto::{b64, AccountId, Ed25519Pub, Identity, Namespace};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::onion_client::OnionClient;

/// Renew the subscription this often (the node keeps it for 65 minutes).
pub const RENEW_EVERY: Duration = Duration::from_secs(60 * 60);
/// First reconnect delay; doubles per failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long to wait for the node to accept a subscription.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications buffered before the reader waits for the consumer.
const CHANNEL_DEPTH: usize = 1024;

/// One pushed message.
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    /// The account it was stored for (ours).
    pub account: AccountId,
    /// Its hash (the message id on the swarm).
    pub hash: String,
    /// Its namespace.
    pub namespace: Namespace,
    /// When it was stored (ms).
    pub timestamp_ms: u64,
    /// When it expires (ms).
    pub expiry_ms: u64,
    /// The stored (still encrypted) data, if the node sent it.
    pub data: Option<Vec<u8>>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No data: keep it out of logs even though it is encrypted.
        f.debug_struct("Notification")
            .field("hash", &self.hash)
            .field("namespace", &self.namespace.0)
            .field("data_len", &self.data.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// A running subscription; dropping it closes the connection.
#[derive(Debug)]
pub struct PushSubscription {
    rx: mpsc::Receiver<Notification>,
    connected: Arc<AtomicBool>,
    node: Arc<std::sync::Mutex<Option<Ed25519Pub>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PushSubscription {
    /// The next notification; `None` only after the subscription task ended.
    pub async fn next(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    /// Whether a node currently accepts our subscription (if not, poll more often).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The swarm member currently holding the subscription (`None` while reconnecting).
    pub fn node(&self) -> Option<Ed25519Pub> {
        *self
            .node
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until a node accepted the subscription, up to `limit`; returns whether it did.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl Drop for PushSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes to push notifications of namespace 0 (with data) for `identity`'s Session ID, from
/// a member of its swarm (found through `client`). Must be called inside a Tokio runtime.
///
/// **Reveals our IP address together with our account to that swarm member**: see the
/// [module documentation](self) before using it, and keep polling as a fallback.
pub fn subscribe(client: &OnionClient, identity: &Identity) -> PushSubscription {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let connected = Arc::new(AtomicBool::new(false));
    let node = Arc::new(std::sync::Mutex::new(None));
    let task = tokio::spawn(run(
        client.clone(),
        identity.clone(),
        tx,
        Arc::clone(&connected),
        Arc::clone(&node),
    ));
    PushSubscription {
        rx,
        connected,
        node,
        task,
    }
}

/// The signed subscription frame: `P` (Ed25519 key), `n` [0], `d` 1, `t` seconds, `s`.
pub fn subscription_frame(identity: &Identity, now_ms: u64) -> Value {
    let account = identity.session_id().account();
    let t = now_ms / 1000;
    let namespaces = [Namespace::DEFAULT];
    let signature = identity.sign(
        &SignedRequest::Monitor {
            account: &account,
            timestamp_s: t,
            want_data: true,
            namespaces: &namespaces,
        }
        .message(),
    );
    json!({
        "P": identity.ed25519_public().to_hex(),
        "n": [0],
        "d": 1,
        "t": t,
        "s": b64::encode(signature.to_bytes()),
    })
}

/// Parses a notification frame (`{"@", "h", "n", "t", "z", "~"}`); `None` if it is not one.
pub fn parse_notification(value: &Value) -> Option<Notification> {
    Some(Notification {
        account: value.get("@")?.as_str()?.parse().ok()?,
        hash: value.get("h")?.as_str()?.to_owned(),
        namespace: Namespace(i16::try_from(value.get("n")?.as_i64()?).ok()?),
        timestamp_ms: value.get("t").and_then(Value::as_u64).unwrap_or(0),
        expiry_ms: value.get("z").and_then(Value::as_u64).unwrap_or(0),
        data: match value.get("~") {
            Some(Value::String(d)) => Some(b64::decode(d).ok()?),
            _ => None,
        },
    })
}

/// TLS for the monitor WebSocket: the member must prove its listed Ed25519 key when the URL
/// names its pinned host ([`crate::node_tls`]); HTTP/1.1 only (WebSocket upgrade).
fn tls_connector() -> tokio_tungstenite::Connector {
    // Fails only if a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = crate::node_tls::client_config();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_tungstenite::Connector::Rustls(Arc::new(config))
}

/// Why a connection ended.
enum End {
    /// The consumer dropped the subscription.
    Closed,
    /// Reconnect (to another member).
    Retry(String),
}

async fn run(
    client: OnionClient,
    identity: Identity,
    tx: mpsc::Sender<Notification>,
    connected: Arc<AtomicBool>,
    node: Arc<std::sync::Mutex<Option<Ed25519Pub>>>,
) {
    if client.config().proxy.is_some() {
        // A direct WebSocket would bypass the proxy and show our own IP to a swarm member.
        tracing::info!("push is off behind a proxy; polling instead");
        return;
    }
    let account = identity.session_id().account();
    let mut backoff = MIN_BACKOFF;
    let mut turn = 0usize;
    loop {
        let member = match client.swarm(&account).await {
            Ok(members) if !members.is_empty() => members[turn % members.len()].clone(),
            Ok(_) => {
                tracing::debug!("push: no swarm members known");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => {
                tracing::debug!("push: swarm lookup failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        turn += 1;
        let current = Current {
            connected: &connected,
            node: &node,
            member: member.ed25519,
        };
        match connection(&client, &identity, &member, &tx, &current, &mut backoff).await {
            End::Closed => return,
            End::Retry(why) => {
                current.set(false);
                tracing::debug!(node = %member.ed25519, "push connection ended: {why}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Where a subscription's state is published for [`PushSubscription`].
struct Current<'a> {
    connected: &'a AtomicBool,
    node: &'a std::sync::Mutex<Option<Ed25519Pub>>,
    member: Ed25519Pub,
}

impl Current<'_> {
    fn set(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        *self
            .node
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = connected.then_some(self.member);
    }
}

/// One connection to `member`: subscribe, forward notifications, renew, until it fails.
async fn connection(
    client: &OnionClient,
    identity: &Identity,
    member: &NodeRecord,
    tx: &mpsc::Sender<Notification>,
    current: &Current<'_>,
    backoff: &mut Duration,
) -> End {
    let host = if client.config().verify_node_tls {
        crate::node_tls::pinned_host(member.ip, &member.ed25519)
    } else {
        member.ip.to_string()
    };
    let url = format!("wss://{host}:{}/monitor/v1", member.https_port);
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        if let Some(ip) = client.config().source_ip {
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(member.https_addr()).await?;
        // Nagle off: the renewal frames are small and latency matters more than packet count.
        tcp.set_nodelay(true)?;
        tokio_tungstenite::client_async_tls_with_config(url, tcp, None, Some(tls_connector())).await
    };
    let mut ws = match tokio::time::timeout(ANSWER_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return End::Retry(format!("connect: {e}")),
        Err(_) => return End::Retry("connect timed out".into()),
    };
    let mut renew = tokio::time::interval(RENEW_EVERY);
    let mut awaiting_answer = false;
    loop {
        tokio::select! {
            _ = renew.tick() => {
                let frame = subscription_frame(identity, client.clock().now_ms());
                if let Err(e) = ws.send(Message::text(frame.to_string())).await {
                    return End::Retry(format!("send: {e}"));
                }
                awaiting_answer = true;
            }
            () = tx.closed() => {
                let _ = ws.close(None).await;
                return End::Closed;
            }
            frame = tokio::time::timeout(
                if awaiting_answer { ANSWER_TIMEOUT } else { RENEW_EVERY * 2 },
                ws.next(),
            ) => {
                let text = match frame {
                    Err(_) => return End::Retry("no answer".into()),
                    Ok(None | Some(Ok(Message::Close(_)))) => {
                        return End::Retry("closed by the node".into())
                    }
                    Ok(Some(Err(e))) => return End::Retry(format!("read: {e}")),
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(_))) => continue,
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    return End::Retry("unparsable frame".into());
                };
                if let Some(note) = parse_notification(&value) {
                    if tx.send(note).await.is_err() {
                        return End::Closed;
                    }
                } else if value.get("success").is_some() {
                    awaiting_answer = false;
                    current.set(true);
                    *backoff = MIN_BACKOFF;
                } else if let Some(error) = value.get("error") {
                    // A refused subscription (e.g. clock skew): try again later, elsewhere.
                    return End::Retry(format!("subscription refused: {error}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_are_signed_and_notifications_parsed() {
        let id = Identity::from_seed([7; 32]);
        let frame = subscription_frame(&id, 1_700_000_123_456);
        assert_eq!(frame["t"], 1_700_000_123);
        assert_eq!(frame["n"], json!([0]));
        let signature = b64::decode(frame["s"].as_str().unwrap()).unwrap();
        let message = SignedRequest::Monitor {
            account: &id.session_id().account(),
            timestamp_s: 1_700_000_123,
            want_data: true,
            namespaces: &[Namespace::DEFAULT],
        }
        .message();
        let signature = shallot_proto::Signature::from_bytes(&signature.try_into().unwrap());
        assert!(id.ed25519_public().verify(&message, &signature));

        let account = id.session_id().account();
        let note = parse_notification(&json!({"@": account.to_hex(), "h": "abc", "n": 0,
            "t": 5, "z": 6, "~": b64::encode(b"xy")}))
        .unwrap();
        assert_eq!(note.account, account);
        assert_eq!(note.data.as_deref(), Some(&b"xy"[..]));
        assert!(parse_notification(&json!({"success": 1})).is_none());
    }
}
