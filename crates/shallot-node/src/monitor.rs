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

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_proto::signing::{RequestAuth, SignedRequest, SignedSubaccount};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{b64, AccountId, AccountKind, Ed25519Pub, Namespace, Signature};
use shallot_store::StoredMessage;
use tokio::sync::mpsc;

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
    if t + MAX_PAST_S < now_s {
        return Err(fail(
            4,
            "Invalid t= signature timestamp: timestamp is too old",
        ));
    }
    if t > now_s + MAX_FUTURE_S {
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

/// All live subscriptions of this node.
#[derive(Default)]
pub struct MonitorHub {
    by_account: Mutex<HashMap<AccountId, Vec<Subscriber>>>,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for MonitorHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHub").finish_non_exhaustive()
    }
}

impl MonitorHub {
    /// A new connection id and its notification queue.
    pub fn connect(&self) -> (u64, mpsc::Sender<String>, mpsc::Receiver<String>) {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        (id, tx, rx)
    }

    /// Adds or renews a subscription; on the same connection, namespaces are merged and
    /// `want_data` is OR-ed, as in the reference.
    pub fn subscribe(&self, connection: u64, tx: &mpsc::Sender<String>, sub: Subscription) {
        let expires = Instant::now() + SUBSCRIPTION_LIFETIME;
        let mut map = self
            .by_account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let subs = map.entry(sub.account).or_default();
        if let Some(existing) = subs.iter_mut().find(|s| s.connection == connection) {
            existing.namespaces.extend(sub.namespaces);
            existing.want_data |= sub.want_data;
            existing.expires = expires;
        } else {
            subs.push(Subscriber {
                connection,
                namespaces: sub.namespaces,
                want_data: sub.want_data,
                expires,
                tx: tx.clone(),
            });
        }
    }

    /// Forgets every subscription of a closed connection.
    pub fn disconnect(&self, connection: u64) {
        let mut map = self
            .by_account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, subs| {
            subs.retain(|s| s.connection != connection);
            !subs.is_empty()
        });
    }

    /// Pushes a newly stored message to its account's live subscribers.
    pub fn notify(&self, message: &StoredMessage) {
        let now = Instant::now();
        let mut map = self
            .by_account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(subs) = map.get_mut(&message.account) else {
            return;
        };
        subs.retain(|s| s.expires > now && !s.tx.is_closed());
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
                let mut note = json!({
                    "@": message.account.to_hex(),
                    "h": message.hash.to_string(),
                    "n": message.namespace.0,
                    "t": message.timestamp,
                    "z": message.expiry,
                });
                if sub.want_data {
                    note["~"] = b64::encode(&message.data).into();
                }
                note.to_string()
            });
            // A full queue means the client is not reading; it will find the message by polling.
            let _ = sub.tx.try_send(text.clone());
        }
        if subs.is_empty() {
            map.remove(&message.account);
        }
    }

    /// Handles one text frame from a client: one subscription object or a list of them.
    pub fn handle_frame(
        &self,
        connection: u64,
        tx: &mpsc::Sender<String>,
        frame: &str,
        now_s: u64,
    ) -> Value {
        let answer = |value: &Value| match parse_subscription(value, now_s) {
            Ok(sub) => {
                self.subscribe(connection, tx, sub);
                json!({"success": 1})
            }
            Err(e) => json!({"errcode": e.code, "error": e.text}),
        };
        match serde_json::from_str::<Value>(frame) {
            Ok(Value::Array(items)) => Value::Array(items.iter().map(answer).collect()),
            Ok(value @ Value::Object(_)) => answer(&value),
            _ => {
                json!({"errcode": 1, "error": "Invalid arguments: monitor request takes a single JSON object or list parameter"})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shallot_proto::message_hash::MessageHash;
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
        json!({"P": id.ed25519_public().to_hex(), "n": namespaces, "d": u8::from(data), "t": t,
               "s": b64::encode(id.sign(&msg).to_bytes())})
    }

    #[tokio::test]
    async fn subscribe_then_receive_only_matching_namespaces() {
        let hub = MonitorHub::default();
        let id = Identity::from_seed([8; 32]);
        let now = 1_700_000_000;
        let (conn, tx, mut rx) = hub.connect();
        let reply = hub.handle_frame(
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
            data: b"x".to_vec(),
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
        let (conn, tx, _rx) = hub.connect();
        let code = |v: Value| hub.handle_frame(conn, &tx, &v.to_string(), now)["errcode"].clone();
        assert_eq!(code(request(&id, now - 15 * 86_400, &[0], false)), 4);
        assert_eq!(code(request(&id, now + 2 * 86_400, &[0], false)), 4);
        assert_eq!(code(request(&id, now, &[5, 0], false)), 3);
        let mut forged = request(&id, now, &[0], false);
        forged["t"] = json!(now + 1);
        assert_eq!(code(forged), 5);
        assert_eq!(code(json!({"n": [0]})), 1);
        let list = hub.handle_frame(
            conn,
            &tx,
            &json!([request(&id, now, &[0], false), {"n": [0]}]).to_string(),
            now,
        );
        assert_eq!(list[0], json!({"success": 1}));
        assert_eq!(list[1]["errcode"], 1);
        assert_eq!(hub.handle_frame(conn, &tx, "not json", now)["errcode"], 1);
    }
}
