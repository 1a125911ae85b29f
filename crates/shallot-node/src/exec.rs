//! Runs parsed client RPC requests (storage RPC spec §3, §4): swarm checks, clock windows,
//! signature checks, swarm replication, the store, and the exact response shapes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use shallot_directory::NetworkView;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::NamespaceSelector;
use shallot_proto::rpc::{self, IfElse, Request};
use shallot_proto::signing::{ExpireMode, RequestAuth, SignedResponse};
use shallot_proto::subaccount::SubaccountFlags;
use shallot_proto::{b64, AccountId, Namespace};
use shallot_store::{StoreError, StoredMessage};

use crate::peers::PeerError;
use crate::state::{Node, MULTI_EXPIRY_HARDFORK, STORAGE_SERVER_VERSION};

/// Where a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client, directly or through an onion: this node is the entry node and replicates.
    Client,
    /// A swarm peer forwarding a client's recursive request: no further replication, and the
    /// wider 70 s clock window for `delete_all`/`expire_all`.
    Peer,
}

/// A response body: JSON or plain text.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// A JSON value.
    Json(Value),
    /// Plain text (errors).
    Text(String),
}

impl Body {
    /// The body as a JSON value (text becomes a JSON string), for `batch` results.
    pub fn into_json(self) -> Value {
        match self {
            Self::Json(v) => v,
            Self::Text(t) => Value::String(t),
        }
    }
}

/// An RPC result: HTTP status and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Body,
}

impl Reply {
    fn json(status: u16, value: Value) -> Self {
        Self {
            status,
            body: Body::Json(value),
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            body: Body::Text(text.into()),
        }
    }
}

const SIGNATURE_WINDOW: u64 = rpc::SIGNATURE_TOLERANCE_MS;
const FORWARDED_WINDOW: u64 = rpc::FORWARDED_SIGNATURE_TOLERANCE_MS;
const STORE_TOLERANCE: u64 = rpc::STORE_CLOCK_TOLERANCE_MS;
const EXPIRE_CAP: u64 = rpc::TTL_MAX_PRIVATE_MS;

fn within(now: u64, t: u64, window: u64) -> bool {
    now.abs_diff(t) <= window
}

/// An `expire` expiry more than the signature window in the past (no overflow at `u64::MAX`).
fn too_old(expiry: u64, now: u64) -> bool {
    expiry.saturating_add(SIGNATURE_WINDOW) < now
}

/// Whether a replicated store was refused for the inbox quota here and stored nowhere else:
/// one clear refusal then, rather than a 500 of failures.
fn refused_for_quota((_, swarm, local): &(u16, Map<String, Value>, Value)) -> bool {
    local.get("quota_exceeded").is_some() && swarm.values().all(|e| e.get("failed").is_some())
}

fn sig_b64(node: &Node, message: &[u8]) -> String {
    b64::encode(node.identity.sign(message).to_bytes())
}

fn sorted_texts<'a>(hashes: impl IntoIterator<Item = &'a MessageHash>) -> Vec<String> {
    let mut texts: Vec<String> = hashes.into_iter().map(ToString::to_string).collect();
    texts.sort_unstable();
    texts
}

/// Text of the 429 a store gets when the account's inbox holds its quota on every member.
pub const QUOTA_REFUSAL: &str =
    "store: the recipient's inbox is full (per-account quota of unsigned messages); try later";

/// `{"failed": true, "query_failure": true}` for a local database failure;
/// `{"failed": true, "quota_exceeded": true}` for an account over its inbox quota.
fn query_failure(error: &StoreError) -> Value {
    if error.is_quota() {
        json!({"failed": true, "quota_exceeded": true, "reason": error.to_string()})
    } else if error.is_full() {
        json!({"failed": true, "query_failure": true})
    } else {
        json!({"failed": true, "query_failure": true, "reason": error.to_string()})
    }
}

/// Groups `(namespace, hash)` pairs per namespace for `"all"` answers: `{"-42": [...], "0": [...]}`.
fn per_namespace(pairs: &[(Namespace, MessageHash)]) -> Value {
    let mut map: Map<String, Value> = Map::new();
    let mut grouped: std::collections::BTreeMap<i16, Vec<&MessageHash>> =
        std::collections::BTreeMap::new();
    for (ns, hash) in pairs {
        grouped.entry(ns.0).or_default().push(hash);
    }
    for (ns, hashes) in grouped {
        map.insert(ns.to_string(), sorted_texts(hashes).into());
    }
    Value::Object(map)
}

fn hash_list(selector: NamespaceSelector, pairs: &[(Namespace, MessageHash)]) -> Value {
    match selector {
        NamespaceSelector::All => per_namespace(pairs),
        NamespaceSelector::One(_) => sorted_texts(pairs.iter().map(|(_, h)| h)).into(),
    }
}

impl Node {
    /// Runs a store call off the async runtime (the store blocks until its write is committed).
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&shallot_store::Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or(Err(StoreError::WriterStopped))
    }

    /// Whether this node's swarm is responsible for `account`.
    pub fn serves(&self, view: &NetworkView, account: &AccountId) -> bool {
        match self.own_swarm(view) {
            Some(ours) => view.swarm_for(account) == Some(ours),
            None => self.readiness().is_ok(),
        }
    }

    /// The 421 answer: the right swarm for the account.
    fn misdirected(&self, view: &NetworkView, account: &AccountId, now: u64) -> Reply {
        let mut body = view.swarm_json(account);
        body["t"] = now.into();
        body["hf"] = json!(self.hf(view));
        Reply::json(421, body)
    }

    /// Checks a request signature (spec §2.5), looking up revocations in the store.
    async fn verify(
        self: &Arc<Self>,
        auth: RequestAuth<'_>,
        message: &[u8],
        required: SubaccountFlags,
        check_revocation: bool,
    ) -> bool {
        let revoked = match auth.subaccount {
            Some(sub) if check_revocation => {
                let (account, token) = (*auth.account, *sub.token);
                // A failed lookup counts as revoked: refusing is the safe side.
                self.blocking(move |s| s.is_revoked(&account, &token))
                    .await
                    .unwrap_or(true)
            }
            _ => false,
        };
        auth.verify(message, required, |_| revoked).is_ok()
    }

    /// Runs a request. Boxed because `batch` and `ifelse` recurse.
    pub fn execute(
        self: &Arc<Self>,
        request: Request,
        origin: Origin,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            let view = self.view();
            let now = self.clock.now_ms();
            if request.method().checks_swarm() {
                if let Some(account) = request.account() {
                    if !self.serves(&view, account) {
                        return self.misdirected(&view, account, now);
                    }
                }
            }
            self.metrics.count_request(request.method_name());
            match request {
                Request::Store(r) => self.store(&view, r, origin, now).await,
                Request::Retrieve(r) if origin == Origin::Client && r.wait_ms.is_some() => {
                    self.waiting_retrieves(vec![r], false).await
                }
                Request::Batch(requests)
                    if origin == Origin::Client && waiting_batch(&requests) =>
                {
                    let retrieves = requests
                        .into_iter()
                        .filter_map(|r| match r {
                            Request::Retrieve(r) => Some(r),
                            _ => None,
                        })
                        .collect();
                    self.waiting_retrieves(retrieves, true).await
                }
                Request::Retrieve(r) => self.retrieve(&view, r, now).await,
                Request::Delete(r) => self.delete(&view, r, origin, now).await,
                Request::DeleteAll(r) => {
                    self.by_namespace(&view, NamespaceOp::DeleteAll(r), origin, now)
                        .await
                }
                Request::DeleteBefore(r) => {
                    self.by_namespace(&view, NamespaceOp::DeleteBefore(r), origin, now)
                        .await
                }
                Request::ExpireAll(r) => {
                    self.by_namespace(&view, NamespaceOp::ExpireAll(r), origin, now)
                        .await
                }
                Request::Expire(r) => self.expire(&view, r, origin, now).await,
                Request::GetExpiries(r) => self.get_expiries(r, now).await,
                Request::RevokeSubaccount(r) => self.revocation(&view, r, true, origin, now).await,
                Request::UnrevokeSubaccount(r) => {
                    self.revocation(&view, r, false, origin, now).await
                }
                Request::GetSwarm { account } => {
                    let mut body = view.swarm_json(&account);
                    body["t"] = now.into();
                    body["hf"] = json!(self.hf(&view));
                    Reply::json(200, body)
                }
                Request::Info => Reply::json(
                    200,
                    json!({"version": STORAGE_SERVER_VERSION, "timestamp": now, "t": now, "hf": self.hf(&view)}),
                ),
                Request::OxendRequest { endpoint, params } => {
                    self.oxend_request(&view, endpoint, params.as_ref(), now)
                }
                Request::Batch(requests) => {
                    let runs = requests
                        .into_iter()
                        .map(|r| self.execute(without_wait(r), origin));
                    let replies = futures_util::future::join_all(runs).await;
                    Reply::json(
                        200,
                        json!({"results": replies.into_iter().map(result_entry).collect::<Vec<_>>()}),
                    )
                }
                Request::Sequence(requests) => {
                    let mut results = Vec::with_capacity(requests.len());
                    for request in requests {
                        let reply = self.execute(without_wait(request), origin).await;
                        let failed = !(200..300).contains(&reply.status);
                        results.push(result_entry(reply));
                        if failed {
                            break;
                        }
                    }
                    Reply::json(200, json!({"results": results}))
                }
                Request::IfElse(r) => self.if_else(&view, *r, origin).await,
            }
        })
    }

    /// Runs retrieves that may wait (see [`crate::waiters`]): registers the wait first, reads;
    /// when every read succeeded and found nothing, sleeps until a message for one of their
    /// accounts and namespaces is stored here or the granted wait passes, then reads again. Each
    /// retrieve's body says `"wait_ms"`: the wait granted (0: over a cap, answered at once).
    async fn waiting_retrieves(
        self: &Arc<Self>,
        retrieves: Vec<rpc::Retrieve>,
        batch: bool,
    ) -> Reply {
        let requested = retrieves
            .iter()
            .filter_map(|r| r.wait_ms)
            .max()
            .unwrap_or(0);
        let wants: Vec<_> = retrieves.iter().map(|r| (r.account, r.namespace)).collect();
        let ticket = self.waiters.register(&wants);
        let granted = if ticket.is_some() {
            self.waiters.granted(requested)
        } else {
            std::time::Duration::ZERO
        };
        let mut replies = self.plain_retrieves(&retrieves).await;
        if let Some(ticket) = &ticket {
            if replies.iter().all(found_nothing) {
                ticket.wait(granted).await;
                replies = self.plain_retrieves(&retrieves).await;
            }
        }
        drop(ticket);
        let granted_ms = u64::try_from(granted.as_millis()).unwrap_or(u64::MAX);
        for reply in &mut replies {
            if let Body::Json(Value::Object(body)) = &mut reply.body {
                body.insert("wait_ms".into(), granted_ms.into());
            }
        }
        if batch {
            Reply::json(
                200,
                json!({"results": replies.into_iter().map(result_entry).collect::<Vec<_>>()}),
            )
        } else {
            replies
                .pop()
                .unwrap_or_else(|| Reply::text(400, "empty request"))
        }
    }

    /// Runs retrieves concurrently as a client's, without waiting.
    async fn plain_retrieves(self: &Arc<Self>, retrieves: &[rpc::Retrieve]) -> Vec<Reply> {
        let runs = retrieves.iter().map(|r| {
            let request = Request::Retrieve(rpc::Retrieve {
                wait_ms: None,
                ..r.clone()
            });
            self.execute(request, Origin::Client)
        });
        futures_util::future::join_all(runs).await
    }

    /// Replicates a recursive request to the rest of the swarm while running it locally, and
    /// assembles the `{"swarm": {...}}` answer (spec §3.2). Forwarded requests answer with
    /// the local entry only.
    async fn replicate(
        self: &Arc<Self>,
        view: &NetworkView,
        request: &Request,
        origin: Origin,
        now: u64,
        local: impl Future<Output = Value> + Send,
    ) -> (u16, Map<String, Value>, Value) {
        if origin == Origin::Peer {
            let entry = local.await;
            return (200, Map::new(), entry);
        }
        let me = self.identity.ed25519_public();
        let peers: Vec<_> = self
            .own_swarm(view)
            .map(|swarm| {
                view.members(swarm)
                    .filter(|n| n.ed25519 != me)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let envelope = Bytes::from(serde_json::to_vec(&request.to_envelope()).unwrap_or_default());
        let forwards = peers.iter().map(|peer| {
            let envelope = envelope.clone();
            async move {
                let result = self.peers.forward(peer, envelope).await;
                (peer.ed25519, result)
            }
        });
        let (mut entry, results) =
            futures_util::future::join(local, futures_util::future::join_all(forwards)).await;
        let mut swarm = Map::new();
        if let Some(obj) = entry.as_object_mut() {
            if request.method() == rpc::Method::Store && !obj.contains_key("failed") {
                obj.insert("t".into(), now.into());
            }
        }
        swarm.insert(me.to_hex(), entry.clone());
        for (key, result) in results {
            let value = match result {
                Ok(reply) if reply.status == 200 => serde_json::from_slice::<Value>(&reply.body)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({"failed": true, "bad_peer_response": true})),
                Ok(reply) => json!({
                    "failed": true,
                    "code": reply.status.to_string(),
                    "reason": String::from_utf8_lossy(&reply.body),
                }),
                Err(PeerError::Timeout | PeerError::Unreachable(_)) => {
                    self.metrics.count_peer_failure();
                    json!({"failed": true, "timeout": true})
                }
            };
            swarm.insert(key.to_hex(), value);
        }
        let any_ok = swarm.values().any(|v| v.get("failed").is_none());
        (if any_ok { 200 } else { 500 }, swarm, entry)
    }

    /// Finishes a recursive answer: per-node entry for peers, swarm dict plus extras for clients.
    fn recursive_reply(
        &self,
        view: &NetworkView,
        origin: Origin,
        now: u64,
        (status, swarm, entry): (u16, Map<String, Value>, Value),
        extras: impl FnOnce(&mut Map<String, Value>),
    ) -> Reply {
        if origin == Origin::Peer {
            return Reply::json(200, entry);
        }
        let mut body = Map::new();
        body.insert("swarm".into(), Value::Object(swarm));
        extras(&mut body);
        body.insert("t".into(), now.into());
        body.insert("hf".into(), json!(self.hf(view)));
        Reply::json(status, Value::Object(body))
    }

    async fn store(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Store,
        origin: Origin,
        now: u64,
    ) -> Reply {
        let ttl = r.expiry.saturating_sub(r.timestamp);
        let max_ttl = if r.namespace.is_public_inbox() {
            rpc::TTL_MAX_PUBLIC_MS
        } else {
            rpc::TTL_MAX_PRIVATE_MS
        };
        let ttl_ok = u64::try_from(ttl).is_ok_and(|ttl| (rpc::TTL_MIN_MS..=max_ttl).contains(&ttl));
        if !ttl_ok {
            return Reply::text(403, "Provided expiry/TTL is not valid.");
        }
        let (Ok(timestamp), Ok(expiry)) = (u64::try_from(r.timestamp), u64::try_from(r.expiry))
        else {
            return Reply::text(406, "Timestamp error: check your clock");
        };
        if timestamp > now + STORE_TOLERANCE || expiry + STORE_TOLERANCE < now {
            return Reply::text(406, "Timestamp error: check your clock");
        }
        if !r.namespace.is_public_inbox() {
            let Some(auth) = &r.auth else {
                return Reply::text(
                    401,
                    format!(
                        "store: signature required to store to namespace {}",
                        r.namespace
                    ),
                );
            };
            let sig_ok =
                u64::try_from(auth.sig_timestamp).is_ok_and(|t| within(now, t, SIGNATURE_WINDOW));
            if !sig_ok {
                return Reply::text(406, "store signature timestamp too far from current time");
            }
            let required = if r.namespace.is_public_outbox() {
                SubaccountFlags::WRITE | SubaccountFlags::DELETE
            } else {
                SubaccountFlags::WRITE
            };
            let message = r.signed_message().unwrap_or_default();
            let Some(request_auth) = r.request_auth() else {
                return Reply::text(401, "store signature verification failed");
            };
            if !self.verify(request_auth, &message, required, true).await {
                return Reply::text(401, "store signature verification failed");
            }
        }
        let hash = r.hash();
        let request = Request::Store(r.clone());
        let local = async {
            let message = StoredMessage {
                account: r.account,
                namespace: r.namespace,
                hash,
                timestamp,
                expiry,
                data: r.data.clone(),
            };
            let notify = message.clone();
            match self.store.store_async(message).await {
                Ok(outcome) => {
                    self.metrics.count_store(notify.data.len());
                    let stored_expiry = match outcome {
                        shallot_store::StoreOutcome::New => {
                            self.monitor.notify(&notify);
                            self.waiters.notify(&notify.account, notify.namespace);
                            expiry
                        }
                        shallot_store::StoreOutcome::Extended { expiry }
                        | shallot_store::StoreOutcome::Exists { expiry } => expiry,
                    };
                    let mut entry = json!({
                        "hash": hash.to_string(),
                        "signature": sig_b64(self, &SignedResponse::Store { hash: &hash }.message()),
                        "expiry": stored_expiry,
                    });
                    if outcome.already() {
                        entry["already"] = true.into();
                    }
                    entry
                }
                Err(error) if error.is_quota() => query_failure(&error),
                Err(error) => {
                    tracing::warn!(%error, "store failed");
                    query_failure(&error)
                }
            }
        };
        let result = self.replicate(view, &request, origin, now, local).await;
        if origin == Origin::Client && refused_for_quota(&result) {
            return Reply::text(429, QUOTA_REFUSAL);
        }
        let stored = result.2.get("failed").is_none();
        self.recursive_reply(view, origin, now, result, |body| {
            if stored {
                body.insert("hash".into(), hash.to_string().into());
            }
        })
    }

    async fn retrieve(self: &Arc<Self>, view: &NetworkView, r: rpc::Retrieve, now: u64) -> Reply {
        let no_auth_ns = r.namespace.is_public_retrieve();
        match (&r.auth, no_auth_ns) {
            (None, false) => return Reply::text(401, "retrieve: request signature required"),
            (Some(auth), _) => {
                if !within(now, auth.timestamp, SIGNATURE_WINDOW) {
                    return Reply::text(406, "retrieve timestamp too far from current time");
                }
                let message = r.signed_message().unwrap_or_default();
                let ok = match r.request_auth() {
                    Some(request_auth) => {
                        self.verify(
                            request_auth,
                            &message,
                            SubaccountFlags::READ,
                            !r.namespace.is_unrevocable(),
                        )
                        .await
                    }
                    None => false,
                };
                if !ok {
                    return Reply::text(401, "retrieve signature verification failed");
                }
            }
            (None, true) => {}
        }
        let (max_count, max_size) = r.limits();
        let (account, namespace, last_hash) = (r.account, r.namespace, r.last_hash);
        let result = self
            .blocking(move |s| {
                s.retrieve(&account, namespace, last_hash.as_ref(), max_count, max_size)
            })
            .await;
        match result {
            Ok(page) => {
                self.metrics.count_retrieve(page.messages.len());
                let messages: Vec<Value> = page
                    .messages
                    .iter()
                    .map(|m| {
                        json!({
                            "hash": m.hash.to_string(),
                            "timestamp": m.timestamp,
                            "expiration": m.expiry,
                            "data": b64::encode(&m.data),
                        })
                    })
                    .collect();
                Reply::json(
                    200,
                    json!({"messages": messages, "more": page.more, "t": now, "hf": self.hf(view)}),
                )
            }
            Err(error) => {
                tracing::warn!(%error, "retrieve failed");
                let key = r.account.to_bytes();
                Reply::text(
                    500,
                    format!(
                        "Internal Server Error. Could not retrieve messages for {}…{}",
                        hex::encode(&key[..2]),
                        hex::encode(&key[32..])
                    ),
                )
            }
        }
    }

    async fn delete(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Delete,
        origin: Origin,
        now: u64,
    ) -> Reply {
        if !self
            .verify(
                r.request_auth(),
                &r.signed_message(),
                SubaccountFlags::DELETE,
                true,
            )
            .await
        {
            return Reply::text(401, "delete_msgs signature verification failed");
        }
        let request = Request::Delete(r.clone());
        let local = async {
            let (account, hashes) = (r.account, r.messages.clone());
            match self.blocking(move |s| s.delete(&account, &hashes)).await {
                Ok(deleted) => {
                    let signed = SignedResponse::Delete {
                        account: &r.account,
                        requested: &r.messages,
                        deleted: &deleted,
                    };
                    json!({"deleted": sorted_texts(&deleted), "signature": sig_b64(self, &signed.message())})
                }
                Err(error) => query_failure(&error),
            }
        };
        let mut result = self.replicate(view, &request, origin, now, local).await;
        if r.required && origin == Origin::Client && result.0 == 200 {
            let none_deleted = result.1.values().all(|entry| {
                entry
                    .get("deleted")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            });
            if none_deleted {
                result.0 = 404;
            }
        }
        self.recursive_reply(view, origin, now, result, |_| {})
    }

    /// `delete_all`, `delete_before` and `expire_all`: a clock check, a Delete-permission
    /// signature, one store operation over a namespace selector, and the affected hashes (per
    /// namespace for `"all"`) with this node's signature over them.
    async fn by_namespace(
        self: &Arc<Self>,
        view: &NetworkView,
        op: NamespaceOp,
        origin: Origin,
        now: u64,
    ) -> Reply {
        if let Some(refusal) = op.clock_refusal(now, origin) {
            return refusal;
        }
        let (auth, message) = op.auth();
        if !self
            .verify(auth, &message, SubaccountFlags::DELETE, true)
            .await
        {
            return Reply::text(401, format!("{} signature verification failed", op.name()));
        }
        let request = op.request();
        let local = async {
            let run = op.clone();
            match self.blocking(move |s| run.apply(s)).await {
                Ok(pairs) => {
                    let hashes: Vec<MessageHash> = pairs.iter().map(|(_, h)| *h).collect();
                    json!({
                        op.result_key(): hash_list(op.selector(), &pairs),
                        "signature": sig_b64(self, &op.signed_response(&hashes)),
                    })
                }
                Err(error) => query_failure(&error),
            }
        };
        let result = self.replicate(view, &request, origin, now, local).await;
        self.recursive_reply(view, origin, now, result, |_| {})
    }

    async fn expire(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Expire,
        origin: Origin,
        now: u64,
    ) -> Reply {
        if r.expiries.iter().any(|&e| too_old(e, now)) {
            return Reply::text(401, "expire: timestamp should be >= current time");
        }
        if r.single_expiry().is_none() && view.hardfork < MULTI_EXPIRY_HARDFORK {
            return Reply::text(
                403,
                "expire: multi-expiry requests are not yet active on the network",
            );
        }
        if !self
            .verify(
                r.request_auth(),
                &r.signed_message(),
                SubaccountFlags::WRITE,
                true,
            )
            .await
        {
            return Reply::text(401, "expire: signature verification failed");
        }
        let mut mode = r.mode;
        if let Some(sub) = &r.auth.subaccount {
            if !sub.token.flags().contains(SubaccountFlags::DELETE) {
                if mode == ExpireMode::Shorten {
                    return Reply::text(
                        400,
                        "expire: shorten parameter cannot be used with this subaccount token (missing delete access)",
                    );
                }
                mode = ExpireMode::Extend;
            }
        }
        let cap = now + EXPIRE_CAP;
        let single = r.single_expiry().map(|e| e.min(cap));
        let updates: Vec<(MessageHash, u64)> = match single {
            Some(expiry) => r.messages.iter().map(|h| (*h, expiry)).collect(),
            None => r
                .messages
                .iter()
                .zip(&r.expiries)
                .map(|(h, e)| (*h, (*e).min(cap)))
                .collect(),
        };
        let store_mode = match mode {
            ExpireMode::Shorten => shallot_store::ExpireMode::Shorten,
            ExpireMode::Extend => shallot_store::ExpireMode::Extend,
            ExpireMode::Set => shallot_store::ExpireMode::Set,
        };
        let request = Request::Expire(r.clone());
        let local = async {
            let account = r.account;
            match self
                .blocking(move |s| s.expire(&account, &updates, store_mode))
                .await
            {
                Ok(mut result) => {
                    result.updated.sort_by_key(|(h, _)| h.to_string());
                    // `unchanged` follows the request's own flags, not the extend-only mode a
                    // subaccount without delete access is forced into (spec §4.8).
                    let unchanged: &[(MessageHash, u64)] = if r.mode == ExpireMode::Set {
                        &[]
                    } else {
                        &result.unchanged
                    };
                    let signed = SignedResponse::Expire {
                        account: &r.account,
                        single_expiry: single,
                        requested: &r.messages,
                        updated: &result.updated,
                        unchanged,
                    };
                    let mut entry = json!({
                        "updated": result.updated.iter().map(|(h, _)| h.to_string()).collect::<Vec<_>>(),
                        "signature": sig_b64(self, &signed.message()),
                    });
                    entry["expiry"] = match single {
                        Some(expiry) => expiry.into(),
                        None => result
                            .updated
                            .iter()
                            .map(|(_, e)| *e)
                            .collect::<Vec<_>>()
                            .into(),
                    };
                    if r.mode != ExpireMode::Set {
                        let map: Map<String, Value> = unchanged
                            .iter()
                            .map(|(h, e)| (h.to_string(), Value::from(*e)))
                            .collect();
                        entry["unchanged"] = Value::Object(map);
                    }
                    entry
                }
                Err(error) => query_failure(&error),
            }
        };
        let result = self.replicate(view, &request, origin, now, local).await;
        self.recursive_reply(view, origin, now, result, |_| {})
    }

    async fn get_expiries(self: &Arc<Self>, r: rpc::GetExpiries, now: u64) -> Reply {
        if !within(now, r.timestamp, SIGNATURE_WINDOW) {
            return Reply::text(406, "get_expiries timestamp too far from current time");
        }
        if !self
            .verify(
                r.request_auth(),
                &r.signed_message(),
                SubaccountFlags::READ,
                true,
            )
            .await
        {
            return Reply::text(401, "get_expiries signature verification failed");
        }
        let (account, hashes) = (r.account, r.messages.clone());
        match self
            .blocking(move |s| s.get_expiries(&account, &hashes))
            .await
        {
            Ok(found) => {
                let map: Map<String, Value> =
                    found.into_iter().map(|(h, e)| (h, e.into())).collect();
                Reply::json(200, json!({"expiries": map}))
            }
            Err(error) => Reply::text(500, format!("request failed: {error}")),
        }
    }

    async fn revocation(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Revocation,
        revoke: bool,
        origin: Origin,
        now: u64,
    ) -> Reply {
        let name = if revoke {
            "revoke_subaccount"
        } else {
            "unrevoke_subaccount"
        };
        if !within(now, r.timestamp, SIGNATURE_WINDOW) {
            return Reply::text(406, format!("{name} timestamp too far from current time"));
        }
        let message = if revoke {
            r.revoke_message()
        } else {
            r.unrevoke_message()
        };
        // Main key only: the request carries no subaccount.
        if !self
            .verify(
                r.request_auth(),
                &message,
                SubaccountFlags::default(),
                false,
            )
            .await
        {
            return Reply::text(401, format!("{name} signature verification failed"));
        }
        let request = if revoke {
            Request::RevokeSubaccount(r.clone())
        } else {
            Request::UnrevokeSubaccount(r.clone())
        };
        let local = async {
            let (account, tokens) = (r.account, r.tokens.clone());
            let signed = if revoke {
                SignedResponse::RevokeSubaccount {
                    account: &r.account,
                    timestamp: r.timestamp,
                    tokens: &r.tokens,
                }
            } else {
                SignedResponse::UnrevokeSubaccount {
                    account: &r.account,
                    timestamp: r.timestamp,
                    tokens: &r.tokens,
                }
            };
            let signature = sig_b64(self, &signed.message());
            if revoke {
                match self
                    .blocking(move |s| s.revoke(&account, &tokens, now))
                    .await
                {
                    Ok(()) => json!({"signature": signature}),
                    Err(error) => query_failure(&error),
                }
            } else {
                match self.blocking(move |s| s.unrevoke(&account, &tokens)).await {
                    Ok(count) => json!({"count": count, "signature": signature}),
                    Err(error) => query_failure(&error),
                }
            }
        };
        let result = self.replicate(view, &request, origin, now, local).await;
        self.recursive_reply(view, origin, now, result, |_| {})
    }

    fn oxend_request(
        &self,
        view: &NetworkView,
        endpoint: rpc::OxendEndpoint,
        params: Option<&Value>,
        now: u64,
    ) -> Reply {
        match endpoint {
            rpc::OxendEndpoint::GetServiceNodes => {
                let result = view.to_get_service_nodes(params);
                Reply::json(
                    200,
                    json!({"result": result, "t": now, "hf": self.hf(view)}),
                )
            }
            rpc::OxendEndpoint::OnsResolve => {
                Reply::text(400, "ons_resolve is not supported on this network")
            }
        }
    }

    async fn if_else(self: &Arc<Self>, view: &NetworkView, r: IfElse, origin: Origin) -> Reply {
        let hf = [i64::from(view.hardfork.0), i64::from(view.hardfork.1)];
        let version = STORAGE_SERVER_VERSION.map(i64::from);
        let height = i64::try_from(view.height).unwrap_or(i64::MAX);
        let condition = r.condition.evaluate(hf, version, height);
        let branch = if condition { r.then } else { r.otherwise };
        let mut body = json!({"hf": self.hf(view), "v": STORAGE_SERVER_VERSION, "height": view.height, "condition": condition});
        if let Some(request) = branch {
            body["result"] = result_entry(self.execute(without_wait(request), origin).await);
        }
        Reply::json(200, body)
    }
}

/// The methods that act on all of an account's messages in one namespace (or all of them).
#[derive(Clone, Debug)]
enum NamespaceOp {
    DeleteAll(rpc::DeleteAll),
    DeleteBefore(rpc::DeleteBefore),
    ExpireAll(rpc::ExpireAll),
}

impl NamespaceOp {
    fn name(&self) -> &'static str {
        match self {
            Self::DeleteAll(_) => "delete_all",
            Self::DeleteBefore(_) => "delete_before",
            Self::ExpireAll(_) => "expire_all",
        }
    }

    /// The method's own clock rule (spec §4.4–§4.6); forwarded requests get the wider window.
    fn clock_refusal(&self, now: u64, origin: Origin) -> Option<Reply> {
        let window = if origin == Origin::Peer {
            FORWARDED_WINDOW
        } else {
            SIGNATURE_WINDOW
        };
        match self {
            Self::DeleteAll(r) if !within(now, r.timestamp, window) => Some(Reply::text(
                406,
                "delete_all timestamp too far from current time",
            )),
            // The reference applies the same 60 s to forwarded requests here, and answers 401.
            Self::DeleteBefore(r) if r.before > now + SIGNATURE_WINDOW => Some(Reply::text(
                401,
                "delete_before timestamp too far in the future",
            )),
            Self::ExpireAll(r) if r.expiry.saturating_add(window) < now => Some(Reply::text(
                406,
                "expire_all timestamp should be >= current time",
            )),
            _ => None,
        }
    }

    /// `deleted` or `updated`: the key of the per-node result.
    fn result_key(&self) -> &'static str {
        match self {
            Self::DeleteAll(_) | Self::DeleteBefore(_) => "deleted",
            Self::ExpireAll(_) => "updated",
        }
    }

    fn selector(&self) -> NamespaceSelector {
        match self {
            Self::DeleteAll(r) => r.namespace,
            Self::DeleteBefore(r) => r.namespace,
            Self::ExpireAll(r) => r.namespace,
        }
    }

    /// What to verify: the request's authentication and the bytes it signs.
    fn auth(&self) -> (RequestAuth<'_>, Vec<u8>) {
        match self {
            Self::DeleteAll(r) => (r.request_auth(), r.signed_message()),
            Self::DeleteBefore(r) => (r.request_auth(), r.signed_message()),
            Self::ExpireAll(r) => (r.request_auth(), r.signed_message()),
        }
    }

    fn request(&self) -> Request {
        match self {
            Self::DeleteAll(r) => Request::DeleteAll(r.clone()),
            Self::DeleteBefore(r) => Request::DeleteBefore(r.clone()),
            Self::ExpireAll(r) => Request::ExpireAll(r.clone()),
        }
    }

    fn apply(
        &self,
        store: &shallot_store::Store,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        match self {
            Self::DeleteAll(r) => store.delete_all(&r.account, r.namespace),
            Self::DeleteBefore(r) => store.delete_before(&r.account, r.namespace, r.before),
            Self::ExpireAll(r) => store.expire_all(&r.account, r.namespace, r.expiry),
        }
    }

    /// The bytes this node signs over the affected hashes (spec §2.8).
    fn signed_response(&self, hashes: &[MessageHash]) -> Vec<u8> {
        match self {
            Self::DeleteAll(r) => SignedResponse::DeleteAll {
                account: &r.account,
                timestamp: r.timestamp,
                deleted: hashes,
            },
            Self::DeleteBefore(r) => SignedResponse::DeleteBefore {
                account: &r.account,
                before: r.before,
                deleted: hashes,
            },
            Self::ExpireAll(r) => SignedResponse::ExpireAll {
                account: &r.account,
                expiry: r.expiry,
                updated: hashes,
            },
        }
        .message()
    }
}

/// Whether a `batch` may wait: it holds only retrieves, at least one asking to wait. A batch
/// mixing other methods, a `sequence` and an `ifelse` never wait (their retrieves answer at once).
fn waiting_batch(requests: &[Request]) -> bool {
    requests.iter().all(|r| matches!(r, Request::Retrieve(_)))
        && requests
            .iter()
            .any(|r| matches!(r, Request::Retrieve(r) if r.wait_ms.is_some()))
}

/// A sub-request with any `wait_ms` removed: only a top-level retrieve or retrieve batch waits.
fn without_wait(request: Request) -> Request {
    match request {
        Request::Retrieve(r) => Request::Retrieve(rpc::Retrieve { wait_ms: None, ..r }),
        other => other,
    }
}

/// A retrieve answer that succeeded with no message.
fn found_nothing(reply: &Reply) -> bool {
    reply.status == 200
        && matches!(&reply.body, Body::Json(body)
            if body.get("messages").and_then(Value::as_array).is_some_and(Vec::is_empty))
}

/// A `batch`/`sequence`/`ifelse` result entry: `{"code": n, "body": …}`.
fn result_entry(reply: Reply) -> Value {
    json!({"code": reply.status, "body": reply.body.into_json()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_chosen_expiries_do_not_overflow() {
        let now = 1_700_000_000_000;
        assert!(!too_old(u64::MAX, now));
        assert!(!too_old(u64::MAX, u64::MAX));
        assert!(too_old(0, now));
        assert!(!too_old(now - SIGNATURE_WINDOW, now));
    }
}
