//! Push notifications (storage RPC spec §6) over a WebSocket at `GET /monitor/v1`, in place of
//! the reference's OxenMQ `monitor.messages`.
//!
//! Frames are JSON text. A client sends a subscription object (or a list of them) with the
//! reference's keys — `p` (66-hex account) or `P` (64-hex Ed25519 key of a Session ID), optional
//! `S`/`T` (subaccount signature, base64, and token, base64 or hex), `d` (1/true: include data),
//! `n` (ascending namespaces), `s` (base64 signature), `t` (seconds) — and gets `{"success": 1}`
//! or `{"errcode": n, "error": text}` back (a list for a list). Each new message stored for a
//! subscribed account and namespace is then pushed as
//! `{"@": account, "h": hash, "n": ns, "t": ms, "z": expiry ms, "~": base64 data if wanted}`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use bytes::Bytes;

use serde_json::Value;
use shallot_proto::rpc::{MonitorFrame, MonitorReply, Notification};
use shallot_proto::signing::{RequestAuth, SignedRequest, SignedSubaccount};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{b64, AccountId, AccountKind, Ed25519Pub, Namespace, Signature};
use shallot_store::StoredMessage;
use tokio::sync::mpsc;

use crate::account_limits::AccountLimits;
use crate::observe::{Role, Seen};
use crate::server::ConnInfo;
use crate::state::Node;

/// How long a subscription lasts without being renewed (spec §13).
pub const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(65 * 60);
/// Notifications queued per connection before further ones are dropped (the client polls anyway).
pub const QUEUE_DEPTH: usize = 1024;
const MAX_PAST_S: u64 = 14 * 24 * 3600;
const MAX_FUTURE_S: u64 = 24 * 3600;

/// A validated subscription request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The account whose messages are pushed.
    pub account: AccountId,
    /// Namespaces subscribed to.
    pub namespaces: BTreeSet<i16>,
    /// Whether notifications include message data.
    pub want_data: bool,
}

/// A refused subscription: the reference's error code and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeError {
    /// 1 bad arguments, 2 bad pubkey, 3 bad namespaces, 4 bad timestamp, 5 bad signature.
    pub code: u8,
    /// Human-readable reason.
    pub text: String,
}

fn fail(code: u8, text: impl Into<String>) -> SubscribeError {
    SubscribeError {
        code,
        text: text.into(),
    }
}

fn decode_signature(text: Option<&Value>, what: &str) -> Result<Option<Signature>, SubscribeError> {
    let Some(value) = text else { return Ok(None) };
    let bytes = value
        .as_str()
        .and_then(|s| b64::decode(s).ok())
        .ok_or_else(|| {
            fail(
                1,
                format!("Invalid arguments: {what} must be a base64 string"),
            )
        })?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| {
        fail(
            if what == "s" { 5 } else { 2 },
            format!("Provided {what} signature must be 64 bytes"),
        )
    })?;
    Ok(Some(Signature::from_bytes(&bytes)))
}

/// The accounts a subscription frame names (`p`, or the Session ID of `P`), signed or not:
/// what the node reads of it (for the observation log).
pub fn frame_accounts(frame: &str) -> Vec<AccountId> {
    let items = match serde_json::from_str::<Value>(frame) {
        Ok(Value::Array(items)) => items,
        Ok(value) => vec![value],
        Err(_) => return Vec::new(),
    };
    let account = |item: &Value| -> Option<AccountId> {
        if let Some(p) = item.get("p") {
            return p.as_str()?.parse().ok();
        }
        let ed: Ed25519Pub = item.get("P")?.as_str()?.parse().ok()?;
        let x = ed.to_x25519().ok()?;
        Some(AccountId::new(AccountKind::Session, *x.as_bytes()))
    };
    items.iter().filter_map(account).collect()
}

/// Validates one subscription object at time `now_s` (seconds).
#[allow(clippy::too_many_lines)] // One linear list of checks, in the reference's order.
pub fn parse_subscription(value: &Value, now_s: u64) -> Result<Subscription, SubscribeError> {
    let obj = value.as_object().ok_or_else(|| {
        fail(
            1,
            "Invalid arguments: Failed to parse monitor.messages data value",
        )
    })?;
    let namespaces = obj
        .get("n")
        .ok_or_else(|| fail(1, "Invalid arguments: missing required n= namespace list"))?
        .as_array()
        .ok_or_else(|| fail(1, "Invalid arguments: n= must be a list"))?
        .iter()
        .map(|v| v.as_i64().and_then(|n| i16::try_from(n).ok()))
        .collect::<Option<Vec<i16>>>()
        .ok_or_else(|| fail(1, "Invalid arguments: namespaces must be 16-bit integers"))?;
    if namespaces.windows(2).any(|w| w[0] >= w[1]) {
        return Err(fail(
            3,
            "Invalid n= namespace list: namespaces must be ascending",
        ));
    }
    let signature = decode_signature(obj.get("s"), "s")?
        .ok_or_else(|| fail(1, "Invalid arguments: missing required s= signature"))?;
    let t = obj
        .get("t")
        .ok_or_else(|| {
            fail(
                1,
                "Invalid arguments: required signature timestamp is missing",
            )
        })?
        .as_u64()
        .ok_or_else(|| fail(1, "Invalid arguments: t= must be an integer"))?;
    let want_data = match obj.get("d") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => v.as_i64().is_some_and(|n| n != 0),
    };
    let (account, ed25519) = match (obj.get("p"), obj.get("P")) {
        (Some(_), Some(_)) => {
            return Err(fail(
                1,
                "Invalid arguments: Cannot provide both p= and P= pubkey values",
            ))
        }
        (None, None) => return Err(fail(1, "Invalid arguments: Either p= or P= must be given")),
        (Some(p), None) => {
            let account: AccountId = p
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| fail(2, "Provided p= pubkey must be 33 bytes"))?;
            (account, None)
        }
        (None, Some(big_p)) => {
            let ed: Ed25519Pub = big_p
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| fail(2, "Provided P= Session Ed25519 pubkey must be 32 bytes"))?;
            let x = ed
                .to_x25519()
                .map_err(|_| fail(2, "Invalid P= ed25519 public key"))?;
            (
                AccountId::new(AccountKind::Session, *x.as_bytes()),
                Some(ed),
            )
        }
    };
    // `t` is attacker-chosen (up to u64::MAX): no arithmetic on it may overflow.
    if t.saturating_add(MAX_PAST_S) < now_s {
        return Err(fail(
            4,
            "Invalid t= signature timestamp: timestamp is too old",
        ));
    }
    if t > now_s.saturating_add(MAX_FUTURE_S) {
        return Err(fail(
            4,
            "Invalid t= signature timestamp: timestamp is in the future",
        ));
    }
    let token = match obj.get("T") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| SubaccountToken::from_text(s).ok())
                .ok_or_else(|| fail(2, "Provided T subaccount token must be 36 bytes"))?,
        ),
    };
    let token_sig = decode_signature(obj.get("S"), "S")?;
    let subaccount = match (&token, &token_sig) {
        (Some(token), Some(signature)) => Some(SignedSubaccount { token, signature }),
        (None, None) => None,
        _ => {
            return Err(fail(
                1,
                "Invalid arguments: S= and T= must be given together",
            ))
        }
    };
    let namespace_list: Vec<Namespace> = namespaces.iter().map(|&n| Namespace(n)).collect();
    let message = SignedRequest::Monitor {
        account: &account,
        timestamp_s: t,
        want_data,
        namespaces: &namespace_list,
    }
    .message();
    let auth = RequestAuth {
        account: &account,
        pubkey_ed25519: ed25519.as_ref(),
        subaccount,
        signature: &signature,
    };
    // Subaccounts need Read; revocation is not checked for monitoring (reference behaviour).
    auth.verify(&message, SubaccountFlags::READ, |_| false)
        .map_err(|e| match e {
            shallot_proto::signing::AuthError::BadSignature => {
                fail(5, "Signature verification failed")
            }
            other => fail(5, format!("Subaccount verification failed: {other}")),
        })?;
    Ok(Subscription {
        account,
        namespaces: namespaces.into_iter().collect(),
        want_data,
    })
}

struct Subscriber {
    connection: u64,
    namespaces: BTreeSet<i16>,
    want_data: bool,
    expires: Instant,
    tx: mpsc::Sender<String>,
}

/// A registered push connection: its id, and its notification queue's two ends.
pub type Connected = (u64, mpsc::Sender<String>, mpsc::Receiver<String>);

/// Error code of a subscription refused because a cap is reached (not in the reference, whose
/// codes stop at 6).
pub const ERRCODE_LIMIT: u8 = 7;
/// How often stale subscriptions are swept (on the next subscribe after this long).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A live push connection: where it comes from and what it subscribes to.
struct Connection {
    ip: IpAddr,
    accounts: HashSet<AccountId>,
    tx: mpsc::Sender<String>,
}

#[derive(Default)]
struct Subscriptions {
    by_account: HashMap<AccountId, Vec<Subscriber>>,
    /// Each connection's accounts: disconnects touch only those.
    by_connection: HashMap<u64, Connection>,
    /// Subscriptions held per client address.
    per_ip: HashMap<IpAddr, usize>,
    /// Open push connections per client address.
    connections_per_ip: HashMap<IpAddr, usize>,
    total: usize,
    last_sweep: Option<Instant>,
}

impl Subscriptions {
    /// Drops the subscribers of `account` for which `stale` holds, keeping the indexes in step.
    fn prune(&mut self, account: &AccountId, stale: impl Fn(&Subscriber) -> bool) {
        let Some(subs) = self.by_account.get_mut(account) else {
            return;
        };
        let (by_connection, per_ip) = (&mut self.by_connection, &mut self.per_ip);
        let mut removed = 0;
        subs.retain(|s| {
            if !stale(s) {
                return true;
            }
            removed += 1;
            if let Some(conn) = by_connection.get_mut(&s.connection) {
                conn.accounts.remove(account);
                if let Some(n) = per_ip.get_mut(&conn.ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        per_ip.remove(&conn.ip);
                    }
                }
            }
            false
        });
        self.total -= removed;
        if subs.is_empty() {
            self.by_account.remove(account);
        }
    }

    /// Drops every expired subscription and every connection that is gone.
    fn sweep(&mut self, now: Instant) {
        let accounts: Vec<AccountId> = self.by_account.keys().copied().collect();
        for account in accounts {
            self.prune(&account, |s| s.expires <= now || s.tx.is_closed());
        }
        let closed: Vec<u64> = self
            .by_connection
            .iter()
            .filter(|(_, conn)| conn.tx.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in closed {
            self.forget_connection(id);
        }
        self.last_sweep = Some(now);
    }

    /// Forgets a connection entry (its subscriptions must already be pruned).
    fn forget_connection(&mut self, connection: u64) {
        if let Some(conn) = self.by_connection.remove(&connection) {
            if let Some(n) = self.connections_per_ip.get_mut(&conn.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.connections_per_ip.remove(&conn.ip);
                }
            }
        }
    }

    fn sweep_due(&self, now: Instant) -> bool {
        self.last_sweep
            .is_none_or(|last| now.duration_since(last) >= SWEEP_INTERVAL)
    }
}

/// All live subscriptions of this node, with caps per connection and in total.
pub struct MonitorHub {
    subs: Mutex<Subscriptions>,
    next_connection: AtomicU64,
    max_per_connection: usize,
    max_per_ip: usize,
    max_total: usize,
    max_connections: usize,
    max_connections_per_ip: usize,
}

impl Default for MonitorHub {
    fn default() -> Self {
        Self::new(&AccountLimits::default())
    }
}

impl std::fmt::Debug for MonitorHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHub").finish_non_exhaustive()
    }
}

impl MonitorHub {
    /// A hub with the subscription caps of `limits`.
    pub fn new(limits: &AccountLimits) -> Self {
        Self {
            subs: Mutex::new(Subscriptions::default()),
            next_connection: AtomicU64::new(0),
            max_per_connection: limits.monitor_max_per_connection,
            max_per_ip: limits.monitor_max_per_ip,
            max_total: limits.monitor_max_total,
            max_connections: limits.monitor_max_connections,
            max_connections_per_ip: limits.monitor_max_connections_per_ip,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        self.subs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new connection id and its notification queue, for a client at an unknown address.
    pub fn connect(&self) -> Result<Connected, SubscribeError> {
        self.connect_from(IpAddr::from([0, 0, 0, 0]))
    }

    /// A new connection id and its notification queue, for a client at `ip`; refused (code
    /// [`ERRCODE_LIMIT`]) when the node or that address holds its most push connections.
    /// Subscriptions are also capped per address.
    pub fn connect_from(&self, ip: IpAddr) -> Result<Connected, SubscribeError> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let mut state = self.lock();
        let full = |state: &Subscriptions| {
            state.by_connection.len() >= self.max_connections
                || state.connections_per_ip.get(&ip).copied().unwrap_or(0)
                    >= self.max_connections_per_ip
        };
        if full(&state) {
            let now = Instant::now();
            if state
                .last_sweep
                .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
            {
                state.sweep(now);
            }
            if full(&state) {
                return Err(fail(
                    ERRCODE_LIMIT,
                    "Too many push connections from this address or to this node",
                ));
            }
        }
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        state.by_connection.insert(
            id,
            Connection {
                ip,
                accounts: HashSet::new(),
                tx: tx.clone(),
            },
        );
        *state.connections_per_ip.entry(ip).or_default() += 1;
        Ok((id, tx, rx))
    }

    /// Live subscriptions (account × connection), including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.lock().total
    }

    /// Whether there is no subscription at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or renews a subscription; on the same connection, namespaces are merged and
    /// `want_data` is OR-ed, as in the reference. A new one is refused (code
    /// [`ERRCODE_LIMIT`]) when the connection or the node holds its cap; renewals always pass.
    pub fn subscribe(
        &self,
        connection: u64,
        tx: &mpsc::Sender<String>,
        sub: Subscription,
    ) -> Result<(), SubscribeError> {
        let now = Instant::now();
        let expires = now + SUBSCRIPTION_LIFETIME;
        let mut state = self.lock();
        if state.sweep_due(now) {
            state.sweep(now);
        }
        if let Some(existing) = state
            .by_account
            .get_mut(&sub.account)
            .and_then(|subs| subs.iter_mut().find(|s| s.connection == connection))
        {
            existing.namespaces.extend(sub.namespaces);
            existing.want_data |= sub.want_data;
            existing.expires = expires;
            return Ok(());
        }
        let Some(conn) = state.by_connection.get(&connection) else {
            return Err(fail(ERRCODE_LIMIT, "Connection is closed"));
        };
        let (held, ip) = (conn.accounts.len(), conn.ip);
        if held >= self.max_per_connection {
            return Err(fail(
                ERRCODE_LIMIT,
                format!(
                    "Subscription limit reached: at most {} accounts per connection",
                    self.max_per_connection
                ),
            ));
        }
        if state.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(fail(
                ERRCODE_LIMIT,
                format!(
                    "Subscription limit reached: at most {} accounts per client address",
                    self.max_per_ip
                ),
            ));
        }
        if state.total >= self.max_total {
            // Stale entries must not hold the node at its cap; sweeping is rate-limited to one
            // full pass per second so refusals stay cheap.
            if state
                .last_sweep
                .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
            {
                state.sweep(now);
            }
            if state.total >= self.max_total {
                return Err(fail(
                    ERRCODE_LIMIT,
                    "Subscription limit reached: this node holds its maximum of subscriptions; \
                     try another swarm member",
                ));
            }
        }
        if let Some(conn) = state.by_connection.get_mut(&connection) {
            conn.accounts.insert(sub.account);
        }
        *state.per_ip.entry(ip).or_default() += 1;
        state.total += 1;
        state
            .by_account
            .entry(sub.account)
            .or_default()
            .push(Subscriber {
                connection,
                namespaces: sub.namespaces,
                want_data: sub.want_data,
                expires,
                tx: tx.clone(),
            });
        Ok(())
    }

    /// Forgets every subscription of a closed connection (touching only its own accounts).
    pub fn disconnect(&self, connection: u64) {
        let mut state = self.lock();
        let Some(accounts) = state
            .by_connection
            .get(&connection)
            .map(|conn| conn.accounts.iter().copied().collect::<Vec<_>>())
        else {
            return;
        };
        for account in accounts {
            state.prune(&account, |s| s.connection == connection);
        }
        state.forget_connection(connection);
    }

    /// Pushes a newly stored message to its account's live subscribers.
    pub fn notify(&self, message: &StoredMessage) {
        let now = Instant::now();
        let mut state = self.lock();
        state.prune(&message.account, |s| s.expires <= now || s.tx.is_closed());
        let Some(subs) = state.by_account.get(&message.account) else {
            return;
        };
        let mut plain: Option<String> = None;
        let mut with_data: Option<String> = None;
        for sub in subs
            .iter()
            .filter(|s| s.namespaces.contains(&message.namespace.0))
        {
            let slot = if sub.want_data {
                &mut with_data
            } else {
                &mut plain
            };
            let text = slot.get_or_insert_with(|| {
                let note = Notification {
                    account: message.account,
                    hash: message.hash,
                    namespace: message.namespace,
                    timestamp_ms: message.timestamp,
                    expiry_ms: message.expiry,
                    data: sub.want_data.then(|| message.data.to_vec()),
                };
                serde_json::to_string(&note).unwrap_or_default()
            });
            // A full queue means the client is not reading; it will find the message by polling.
            let _ = sub.tx.try_send(text.clone());
        }
    }

    /// Handles one text frame from a client: one subscription object or a list of them.
    pub fn handle_frame(
        &self,
        connection: u64,
        tx: &mpsc::Sender<String>,
        frame: &str,
        now_s: u64,
    ) -> MonitorFrame {
        let answer = |value: &Value| match parse_subscription(value, now_s)
            .and_then(|sub| self.subscribe(connection, tx, sub))
        {
            Ok(()) => MonitorReply::SUCCESS,
            Err(e) => MonitorReply::Refused {
                errcode: e.code,
                error: e.text,
            },
        };
        match serde_json::from_str::<Value>(frame) {
            Ok(Value::Array(items)) => MonitorFrame::Replies(items.iter().map(answer).collect()),
            Ok(value @ Value::Object(_)) => MonitorFrame::Reply(answer(&value)),
            _ => MonitorFrame::Reply(MonitorReply::Refused {
                errcode: 1,
                error: "Invalid arguments: monitor request takes a single JSON object or list \
                        parameter"
                    .into(),
            }),
        }
    }
}

/// Serves one `/monitor/v1` WebSocket: subscription frames in, notifications out, a ping every
/// [`AccountLimits::ping_interval`], and a close once the client has been silent (no frame, no
/// pong) for [`AccountLimits::idle_timeout`].
pub async fn serve(node: Arc<Node>, mut socket: WebSocket, connected: Connected, conn: ConnInfo) {
    let limits = node.account_limits;
    let (connection, tx, mut rx) = connected;
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + limits.ping_interval(),
        limits.ping_interval(),
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                last_heard = tokio::time::Instant::now();
                match incoming {
                    Some(Ok(Message::Text(frame))) => {
                        let at_ms = node.clock.now_ms();
                        let answer = node.monitor.handle_frame(connection, &tx, frame.as_str(), at_ms / 1000);
                        let reply = serde_json::to_string(&answer).unwrap_or_default();
                        observe_frame(&node, &conn, at_ms, frame.as_str(), reply.len());
                        let reply = Message::Text(reply.into());
                        if !send(&mut socket, reply, limits.idle_timeout()).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                }
            }
            Some(note) = rx.recv() => {
                if !send(&mut socket, Message::Text(note.into()), limits.idle_timeout()).await {
                    break;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= limits.idle_timeout() {
                    let close = Message::Close(Some(CloseFrame {
                        code: close_code::AWAY,
                        reason: "idle timeout".into(),
                    }));
                    let _ = send(&mut socket, close, Duration::from_secs(1)).await;
                    break;
                }
                if !send(&mut socket, Message::Ping(Bytes::new()), limits.idle_timeout()).await {
                    break;
                }
            }
        }
    }
    node.monitor.disconnect(connection);
}

/// Records a subscription frame in the observation log (if the node keeps one).
fn observe_frame(node: &Node, conn: &ConnInfo, at_ms: u64, frame: &str, reply_bytes: usize) {
    let mut seen = Seen::new(node, Role::Push);
    if !seen.is_on() {
        return;
    }
    seen.request_bytes(frame.len());
    for account in frame_accounts(frame) {
        seen.account(account);
    }
    crate::observe::record(node, conn, at_ms, seen, 200, reply_bytes as u64);
}

/// Sends one frame, giving up after `limit` (a client that does not read must not pin the
/// connection task in a blocked write).
async fn send(socket: &mut WebSocket, message: Message, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, socket.send(message)).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shallot_proto::message_hash::MessageHash;
    use shallot_proto::rpc::MonitorSubscription;
    use shallot_proto::Identity;

    fn request(id: &Identity, t: u64, namespaces: &[i16], data: bool) -> Value {
        let account: AccountId = id.session_id().into();
        let ns: Vec<Namespace> = namespaces.iter().map(|&n| Namespace(n)).collect();
        let msg = SignedRequest::Monitor {
            account: &account,
            timestamp_s: t,
            want_data: data,
            namespaces: &ns,
        }
        .message();
        serde_json::to_value(MonitorSubscription {
            session_ed25519: Some(id.ed25519_public()),
            want_data: data,
            namespaces: ns,
            account: None,
            signature: id.sign(&msg),
            timestamp_s: t,
        })
        .unwrap()
    }

    /// The hub's answer to a frame, as the JSON the client reads.
    fn answer(
        hub: &MonitorHub,
        conn: u64,
        tx: &mpsc::Sender<String>,
        frame: &str,
        now: u64,
    ) -> Value {
        serde_json::to_value(hub.handle_frame(conn, tx, frame, now)).unwrap()
    }

    #[tokio::test]
    async fn subscribe_then_receive_only_matching_namespaces() {
        let hub = MonitorHub::default();
        let id = Identity::from_seed([8; 32]);
        let now = 1_700_000_000;
        let (conn, tx, mut rx) = hub.connect().unwrap();
        let reply = answer(
            &hub,
            conn,
            &tx,
            &request(&id, now, &[0, 5], true).to_string(),
            now,
        );
        assert_eq!(reply, json!({"success": 1}));

        let account: AccountId = id.session_id().into();
        let msg = |ns: i16| StoredMessage {
            account,
            namespace: Namespace(ns),
            hash: MessageHash::compute(&account, Namespace(ns), b"x"),
            timestamp: 1,
            expiry: 2,
            data: Bytes::from_static(b"x"),
        };
        hub.notify(&msg(3));
        hub.notify(&msg(5));
        let note: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        assert_eq!(note["n"], 5);
        assert_eq!(note["~"], "eA==");
        assert!(rx.try_recv().is_err());

        hub.disconnect(conn);
        hub.notify(&msg(5));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn refusals_carry_the_reference_codes() {
        let hub = MonitorHub::default();
        let id = Identity::from_seed([8; 32]);
        let now = 1_700_000_000;
        let (conn, tx, _rx) = hub.connect().unwrap();
        let code = |v: Value| answer(&hub, conn, &tx, &v.to_string(), now)["errcode"].clone();
        assert_eq!(code(request(&id, now - 15 * 86_400, &[0], false)), 4);
        assert_eq!(code(request(&id, now + 2 * 86_400, &[0], false)), 4);
        assert_eq!(code(request(&id, now, &[5, 0], false)), 3);
        let mut forged = request(&id, now, &[0], false);
        forged["t"] = json!(now + 1);
        assert_eq!(code(forged), 5);
        assert_eq!(code(json!({"n": [0]})), 1);
        let list = answer(
            &hub,
            conn,
            &tx,
            &json!([request(&id, now, &[0], false), {"n": [0]}]).to_string(),
            now,
        );
        assert_eq!(list[0], json!({"success": 1}));
        assert_eq!(list[1]["errcode"], 1);
        assert_eq!(answer(&hub, conn, &tx, "not json", now)["errcode"], 1);
    }

    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        let hub = MonitorHub::default();
        let id = Identity::from_seed([8; 32]);
        let (conn, tx, _rx) = hub.connect().unwrap();
        for t in [u64::MAX, u64::MAX - 1, i64::MAX as u64] {
            let reply = answer(
                &hub,
                conn,
                &tx,
                &request(&id, t, &[0], false).to_string(),
                1_700_000_000,
            );
            assert_eq!(reply["errcode"], 4, "t = {t}: {reply}");
            // A clock at the end of time must not overflow either.
            let reply = answer(
                &hub,
                conn,
                &tx,
                &request(&id, t, &[0], false).to_string(),
                u64::MAX,
            );
            assert_ne!(reply["errcode"], 1, "t = {t}: {reply}");
        }
        let reply = answer(
            &hub,
            conn,
            &tx,
            &request(&id, 0, &[0], false).to_string(),
            u64::MAX,
        );
        assert_eq!(reply["errcode"], 4, "{reply}");
    }

    #[test]
    fn caps_per_connection_and_in_total_refuse_new_accounts_only() {
        let limits = AccountLimits {
            monitor_max_per_connection: 2,
            monitor_max_total: 3,
            ..AccountLimits::default()
        };
        let hub = MonitorHub::new(&limits);
        let now = 1_700_000_000;
        let users: Vec<Identity> = (0..5u8).map(|i| Identity::from_seed([i + 1; 32])).collect();
        let frame = |i: usize| request(&users[i], now, &[0], false).to_string();
        let (a, tx_a, _rx_a) = hub.connect().unwrap();
        let (b, tx_b, _rx_b) = hub.connect().unwrap();
        assert_eq!(
            answer(&hub, a, &tx_a, &frame(0), now),
            json!({"success": 1})
        );
        assert_eq!(
            answer(&hub, a, &tx_a, &frame(1), now),
            json!({"success": 1})
        );
        let refused = answer(&hub, a, &tx_a, &frame(2), now);
        assert_eq!(refused["errcode"], ERRCODE_LIMIT, "{refused}");
        // Renewing an existing subscription is not a new one.
        assert_eq!(
            answer(&hub, a, &tx_a, &frame(1), now),
            json!({"success": 1})
        );
        assert_eq!(
            answer(&hub, b, &tx_b, &frame(2), now),
            json!({"success": 1})
        );
        let refused = answer(&hub, b, &tx_b, &frame(3), now);
        assert_eq!(refused["errcode"], ERRCODE_LIMIT, "total cap: {refused}");
        assert_eq!(hub.len(), 3);
        // A disconnect frees exactly that connection's subscriptions.
        hub.disconnect(a);
        assert_eq!(hub.len(), 1);
        assert_eq!(
            answer(&hub, b, &tx_b, &frame(3), now),
            json!({"success": 1})
        );
        assert_eq!(hub.len(), 2);
        hub.disconnect(b);
        assert!(hub.is_empty());
    }

    #[test]
    fn closed_connections_do_not_hold_the_total_cap() {
        let limits = AccountLimits {
            monitor_max_total: 1,
            ..AccountLimits::default()
        };
        let hub = MonitorHub::new(&limits);
        let now = 1_700_000_000;
        let (a, tx_a, rx_a) = hub.connect().unwrap();
        let alice = Identity::from_seed([1; 32]);
        let frame = request(&alice, now, &[0], false).to_string();
        assert_eq!(answer(&hub, a, &tx_a, &frame, now), json!({"success": 1}));
        // The connection's task ended without calling disconnect: its queue is closed.
        drop(rx_a);
        let (b, tx_b, _rx_b) = hub.connect().unwrap();
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(answer(&hub, b, &tx_b, &frame, now), json!({"success": 1}));
        assert_eq!(hub.len(), 1);
    }

    #[test]
    fn one_address_cannot_take_every_subscription() {
        let limits = AccountLimits {
            monitor_max_per_connection: 2,
            monitor_max_per_ip: 3,
            ..AccountLimits::default()
        };
        let hub = MonitorHub::new(&limits);
        let now = 1_700_000_000;
        let users: Vec<Identity> = (0..5u8).map(|i| Identity::from_seed([i + 1; 32])).collect();
        let frame = |i: usize| request(&users[i], now, &[0], false).to_string();
        let attacker = IpAddr::from([10, 0, 0, 1]);
        let (a, tx_a, _rx_a) = hub.connect_from(attacker).unwrap();
        let (b, tx_b, _rx_b) = hub.connect_from(attacker).unwrap();
        assert_eq!(
            answer(&hub, a, &tx_a, &frame(0), now),
            json!({"success": 1})
        );
        assert_eq!(
            answer(&hub, a, &tx_a, &frame(1), now),
            json!({"success": 1})
        );
        assert_eq!(
            answer(&hub, b, &tx_b, &frame(2), now),
            json!({"success": 1})
        );
        let refused = answer(&hub, b, &tx_b, &frame(3), now);
        assert_eq!(refused["errcode"], ERRCODE_LIMIT, "{refused}");
        // IPv4-mapped IPv6 is the same address.
        let (c, tx_c, _rx_c) = hub
            .connect_from("::ffff:10.0.0.1".parse().unwrap())
            .unwrap();
        assert_eq!(
            answer(&hub, c, &tx_c, &frame(3), now)["errcode"],
            ERRCODE_LIMIT
        );
        let (d, tx_d, _rx_d) = hub.connect_from(IpAddr::from([10, 0, 0, 2])).unwrap();
        assert_eq!(
            answer(&hub, d, &tx_d, &frame(3), now),
            json!({"success": 1})
        );
        hub.disconnect(a);
        assert_eq!(
            answer(&hub, c, &tx_c, &frame(4), now),
            json!({"success": 1})
        );
    }

    #[test]
    fn push_connections_are_capped_per_address_and_in_total() {
        let limits = AccountLimits {
            monitor_max_connections: 3,
            monitor_max_connections_per_ip: 2,
            ..AccountLimits::default()
        };
        let hub = MonitorHub::new(&limits);
        let one = IpAddr::from([10, 0, 0, 1]);
        let (a, _tx_a, _rx_a) = hub.connect_from(one).unwrap();
        let _b = hub.connect_from(one).unwrap();
        assert_eq!(hub.connect_from(one).unwrap_err().code, ERRCODE_LIMIT);
        let _c = hub.connect_from(IpAddr::from([10, 0, 0, 2])).unwrap();
        assert!(
            hub.connect_from(IpAddr::from([10, 0, 0, 3])).is_err(),
            "total"
        );
        hub.disconnect(a);
        assert!(hub.connect_from(one).is_ok());
    }
}
