//! Runs parsed client RPC requests (storage RPC spec §3, §4): swarm checks, clock windows,
//! signature checks, swarm replication and the store, answering with the typed responses and
//! refusals of `shallot_proto::rpc`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use shallot_directory::NetworkView;
use shallot_proto::message_hash::{MessageHash, RequestedHash};
use shallot_proto::namespace::NamespaceSelector;
use shallot_proto::rpc::{
    self, BatchResults, Deleted, Expired, Expiries, ExpiryValue, HashList, IfElse, IfElseResult,
    Info, MemberFailure, MemberResult, Method, OxendResult, Refusal, Request, RetrievePage,
    RetrievedMessage, Revoked, Stored, SubResult, SwarmResults, Unchanged, Unrevoked, Updated,
};
use shallot_proto::signing::{ExpireMode, RequestAuth, SignedResponse};
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, Namespace, Signature};
use shallot_store::{StoreError, StoredMessage};

use crate::peers::PeerError;
use crate::state::{Node, MULTI_EXPIRY_HARDFORK, STORAGE_SERVER_VERSION};
use crate::waiters::Want;

/// Whether a retrieve's signature was checked already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checked {
    /// No: check it, looking up its token's revocation.
    No,
    /// No: check it; its token's revocation was looked up for the whole batch.
    Revocation {
        /// Its token (of a revocable namespace) is revoked now.
        revoked: bool,
    },
    /// Yes, when its waiting request came ([`Node::reread`]); only a revocation of its token
    /// since counts, looked up for the whole batch.
    Yes {
        /// Its token (of a revocable namespace) is revoked now.
        revoked: bool,
    },
}

/// The account and subaccount token that sign `r`, when its namespace is revocable.
fn revocable_token(r: &rpc::Retrieve) -> Option<(AccountId, SubaccountToken)> {
    r.auth
        .and_then(|a| a.auth.subaccount)
        .filter(|_| !r.namespace.is_unrevocable())
        .map(|signed| (r.account, signed.token))
}

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
    /// The bytes sent on the wire.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Json(v) => Bytes::from(v.to_string()),
            Self::Text(t) => Bytes::from(t),
        }
    }

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
    /// A JSON reply. Written through a `Value`, so object keys come out in ascending order as
    /// the reference writes them.
    pub(crate) fn json(status: u16, body: &impl Serialize) -> Self {
        Self {
            status,
            body: Body::Json(serde_json::to_value(body).unwrap_or_default()),
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

impl From<Refusal> for Reply {
    fn from(refusal: Refusal) -> Self {
        Self::text(refusal.status(), refusal.to_string())
    }
}

/// What a recursive request came to: the status, every member's result (this node's
/// included), and this node's own result.
struct Replicated<T> {
    status: u16,
    swarm: BTreeMap<String, MemberResult<T>>,
    local: MemberResult<T>,
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
fn refused_for_quota<T>(replicated: &Replicated<T>) -> bool {
    matches!(&replicated.local, MemberResult::Failed(f) if f.quota_exceeded)
        && replicated.swarm.values().all(MemberResult::is_failed)
}

/// This node's entry for a local database failure: `query_failure` (with the reason unless the
/// database is full), or `quota_exceeded` for an account over its inbox quota.
fn query_failure<T>(error: &StoreError) -> MemberResult<T> {
    MemberResult::Failed(if error.is_quota() {
        MemberFailure::quota_exceeded(error.to_string())
    } else if error.is_full() {
        MemberFailure::query_failure(None)
    } else {
        MemberFailure::query_failure(Some(error.to_string()))
    })
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
    fn misdirected(view: &NetworkView, account: &AccountId, now: u64) -> Reply {
        Reply::json(421, &view.swarm_members(account, now))
    }

    /// This node's signature over a response (spec §2.8).
    fn sign(&self, message: &[u8]) -> Signature {
        self.identity.sign(message)
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
        self.verify_known(auth, message, required, revoked)
    }

    /// [`Self::verify`] with the token's revocation already looked up (`revoked`).
    fn verify_known(
        &self,
        auth: RequestAuth<'_>,
        message: &[u8],
        required: SubaccountFlags,
        revoked: bool,
    ) -> bool {
        auth.verify_with(
            message,
            required,
            |_| revoked,
            |owner, token, signature| self.tokens.valid(owner, token, signature),
        )
        .is_ok()
    }

    /// Runs a request. Boxed because `batch` and `ifelse` recurse.
    pub fn execute(
        self: &Arc<Self>,
        request: Request,
        origin: Origin,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        self.run(request, origin, None)
    }

    /// Runs a request parsed from the JSON envelope `body` (when at hand): replication forwards
    /// those bytes as they came instead of writing the request out again.
    pub fn execute_envelope(
        self: &Arc<Self>,
        request: Request,
        origin: Origin,
        body: Option<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        self.run(request, origin, body)
    }

    fn run(
        self: &Arc<Self>,
        request: Request,
        origin: Origin,
        body: Option<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            // What replication forwards: only a client's recursive request is forwarded.
            let envelope = (origin == Origin::Client && request.is_recursive()).then(|| {
                body.unwrap_or_else(|| {
                    Bytes::from(serde_json::to_vec(&request.to_envelope()).unwrap_or_default())
                })
            });
            let view = self.view();
            let now = self.clock.now_ms();
            if request.method().checks_swarm() {
                if let Some(account) = request.account() {
                    if !self.serves(&view, account) {
                        return Self::misdirected(&view, account, now);
                    }
                }
            }
            self.metrics.count_request(request.method_name());
            match request {
                Request::Store(r) => self.store(&view, r, origin, envelope, now).await,
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
                Request::Retrieve(r) => self.retrieve(&view, r, now, Checked::No).await,
                Request::Delete(r) => self.delete(&view, r, origin, envelope, now).await,
                Request::DeleteAll(r) => {
                    let op = NamespaceOp::DeleteAll(r);
                    self.by_namespace(&view, op, origin, envelope, now).await
                }
                Request::DeleteBefore(r) => {
                    let op = NamespaceOp::DeleteBefore(r);
                    self.by_namespace(&view, op, origin, envelope, now).await
                }
                Request::ExpireAll(r) => {
                    let op = NamespaceOp::ExpireAll(r);
                    self.by_namespace(&view, op, origin, envelope, now).await
                }
                Request::Expire(r) => self.expire(&view, r, origin, envelope, now).await,
                Request::GetExpiries(r) => self.get_expiries(r, now).await,
                Request::RevokeSubaccount(r) => {
                    self.revocation(&view, r, true, origin, envelope, now).await
                }
                Request::UnrevokeSubaccount(r) => {
                    self.revocation(&view, r, false, origin, envelope, now)
                        .await
                }
                Request::GetSwarm { account } => {
                    Reply::json(200, &view.swarm_members(&account, now))
                }
                Request::Info => Reply::json(
                    200,
                    &Info {
                        hf: view.hf(),
                        t: now,
                        timestamp: now,
                        version: STORAGE_SERVER_VERSION,
                    },
                ),
                Request::OxendRequest { endpoint, params } => {
                    Self::oxend_request(&view, endpoint, params.as_ref(), now)
                }
                Request::Batch(requests) => {
                    let runs = requests
                        .into_iter()
                        .map(|r| self.execute(without_wait(r), origin));
                    let replies = futures_util::future::join_all(runs).await;
                    batch_reply(replies)
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
                    Reply::json(200, &BatchResults { results })
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
        let wants: Vec<_> = retrieves
            .iter()
            .map(|r| Want {
                account: r.account,
                namespace: r.namespace,
                member: r
                    .auth
                    .and_then(|a| a.auth.subaccount)
                    .map(|signed| signed.token),
            })
            .collect();
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
                replies = self.reread(&retrieves).await;
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
            batch_reply(replies)
        } else {
            replies
                .pop()
                .unwrap_or_else(|| Reply::text(400, "empty request"))
        }
    }

    /// Reads waiting retrieves again after their wait, as [`Self::plain_retrieves`] does but
    /// without checking their signatures again: each was checked when the request came (a
    /// wait starts only when every read succeeded), and a group member's batch is five
    /// subaccount signatures, ten Ed25519 verifications, on the path of delivery. A token
    /// revoked meanwhile is still refused (each token looked up once for the batch).
    async fn reread(self: &Arc<Self>, retrieves: &[rpc::Retrieve]) -> Vec<Reply> {
        self.read_retrieves(retrieves, true).await
    }

    /// Of the tokens that sign `retrieves` of revocable namespaces, the ones revoked now, each
    /// looked up once in one read (a group member's batch carries one token four times). A
    /// failed lookup counts them all as revoked: refusing is the safe side.
    async fn revoked_tokens(
        self: &Arc<Self>,
        retrieves: &[rpc::Retrieve],
    ) -> Vec<(AccountId, SubaccountToken)> {
        let mut tokens: Vec<(AccountId, SubaccountToken)> = Vec::new();
        for token in retrieves.iter().filter_map(revocable_token) {
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
        if tokens.is_empty() {
            return tokens;
        }
        let all = tokens.clone();
        self.blocking(move |s| {
            let mut revoked = Vec::new();
            for (account, token) in tokens {
                if s.is_revoked(&account, &token)? {
                    revoked.push((account, token));
                }
            }
            Ok(revoked)
        })
        .await
        .unwrap_or(all)
    }

    /// Runs retrieves concurrently as a client's, without waiting; each token's revocation is
    /// looked up once for all of them.
    async fn plain_retrieves(self: &Arc<Self>, retrieves: &[rpc::Retrieve]) -> Vec<Reply> {
        self.read_retrieves(retrieves, false).await
    }

    /// Runs `retrieves` concurrently, looking up each token's revocation once for all of them;
    /// their signatures are checked unless `checked` (they were when their wait began).
    async fn read_retrieves(
        self: &Arc<Self>,
        retrieves: &[rpc::Retrieve],
        checked: bool,
    ) -> Vec<Reply> {
        let view = self.view();
        let now = self.clock.now_ms();
        let revoked = self.revoked_tokens(retrieves).await;
        let runs = retrieves.iter().map(|r| {
            let (view, revoked) = (&view, &revoked);
            async move {
                if !self.serves(view, &r.account) {
                    return Self::misdirected(view, &r.account, now);
                }
                self.metrics.count_request("retrieve");
                let revoked = revocable_token(r).is_some_and(|t| revoked.contains(&t));
                let checked = if checked {
                    Checked::Yes { revoked }
                } else {
                    Checked::Revocation { revoked }
                };
                let r = rpc::Retrieve {
                    wait_ms: None,
                    ..r.clone()
                };
                self.retrieve(view, r, now, checked).await
            }
        });
        futures_util::future::join_all(runs).await
    }

    /// Forwards a recursive request (its JSON `envelope`) to the rest of the swarm while running
    /// it locally, and gathers every member's result for the `{"swarm": {...}}` answer (spec
    /// §3.2). Without an envelope (a forwarded request) it runs locally only.
    async fn replicate<T: DeserializeOwned + Clone>(
        self: &Arc<Self>,
        view: &NetworkView,
        envelope: Option<Bytes>,
        local: impl Future<Output = MemberResult<T>> + Send,
    ) -> Replicated<T> {
        let Some(envelope) = envelope else {
            let local = local.await;
            return Replicated {
                status: 200,
                swarm: BTreeMap::new(),
                local,
            };
        };
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
        let forwards = peers.iter().map(|peer| {
            let envelope = envelope.clone();
            async move {
                let result = self.link.forward(peer, envelope).await;
                (peer.ed25519, result)
            }
        });
        let (local, results) =
            futures_util::future::join(local, futures_util::future::join_all(forwards)).await;
        let mut swarm = BTreeMap::new();
        swarm.insert(me.to_hex(), local.clone());
        for (key, result) in results {
            let entry = match result {
                // An object of neither shape is relayed as the peer wrote it.
                Ok(reply) if reply.status == 200 => {
                    match serde_json::from_slice::<MemberResult<T>>(&reply.body) {
                        Ok(MemberResult::Unrecognised(value)) if !value.is_object() => {
                            MemberResult::Failed(MemberFailure::bad_peer_response())
                        }
                        Ok(entry) => entry,
                        Err(_) => MemberResult::Failed(MemberFailure::bad_peer_response()),
                    }
                }
                Ok(reply) => MemberResult::Failed(MemberFailure::status(
                    reply.status,
                    String::from_utf8_lossy(&reply.body),
                )),
                Err(PeerError::Timeout | PeerError::Unreachable(_)) => {
                    self.metrics.count_peer_failure();
                    MemberResult::Failed(MemberFailure::timeout())
                }
            };
            swarm.insert(key.to_hex(), entry);
        }
        let any_ok = swarm.values().any(|entry| !entry.is_failed());
        Replicated {
            status: if any_ok { 200 } else { 500 },
            swarm,
            local,
        }
    }

    /// Finishes a recursive answer: this node's own entry for a peer, every member's for a
    /// client (with `hash` for a store this node stored).
    fn recursive_reply<T: Serialize>(
        view: &NetworkView,
        origin: Origin,
        now: u64,
        replicated: Replicated<T>,
        hash: Option<MessageHash>,
    ) -> Reply {
        if origin == Origin::Peer {
            return Reply::json(200, &replicated.local);
        }
        Reply::json(
            replicated.status,
            &SwarmResults {
                hash,
                hf: view.hf(),
                swarm: replicated.swarm,
                t: now,
            },
        )
    }

    async fn store(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Store,
        origin: Origin,
        envelope: Option<Bytes>,
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
            return Refusal::InvalidTtl.into();
        }
        let (Ok(timestamp), Ok(expiry)) = (u64::try_from(r.timestamp), u64::try_from(r.expiry))
        else {
            return Refusal::StoreClock.into();
        };
        if timestamp > now + STORE_TOLERANCE || expiry + STORE_TOLERANCE < now {
            return Refusal::StoreClock.into();
        }
        if !r.namespace.is_public_inbox() {
            let Some(auth) = &r.auth else {
                return Refusal::StoreUnsigned(r.namespace).into();
            };
            let sig_ok =
                u64::try_from(auth.sig_timestamp).is_ok_and(|t| within(now, t, SIGNATURE_WINDOW));
            if !sig_ok {
                return Refusal::StaleTimestamp(Method::Store).into();
            }
            let required = if r.namespace.is_public_outbox() {
                SubaccountFlags::WRITE | SubaccountFlags::DELETE
            } else {
                SubaccountFlags::WRITE
            };
            let message = r.signed_message().unwrap_or_default();
            let Some(request_auth) = r.request_auth() else {
                return Refusal::BadSignature(Method::Store).into();
            };
            if !self.verify(request_auth, &message, required, true).await {
                return Refusal::BadSignature(Method::Store).into();
            }
        }
        let hash = r.hash();
        // The payload is decoded once from the request and shared from here on: the store, push
        // and waiters read the same bytes.
        let message = StoredMessage {
            account: r.account,
            namespace: r.namespace,
            hash,
            timestamp,
            expiry,
            data: Bytes::from(r.data),
        };
        let local = async {
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
                    MemberResult::Ok(Stored {
                        already: outcome.already(),
                        expiry: stored_expiry,
                        hash,
                        signature: self.sign(&SignedResponse::Store { hash: &hash }.message()),
                        // The entry node's own entry says its time too.
                        t: (origin == Origin::Client).then_some(now),
                    })
                }
                Err(error) if error.is_quota() => query_failure(&error),
                Err(error) => {
                    tracing::warn!(%error, "store failed");
                    query_failure(&error)
                }
            }
        };
        let replicated = self.replicate(view, envelope, local).await;
        if origin == Origin::Client && refused_for_quota(&replicated) {
            return Refusal::InboxFull.into();
        }
        let stored = (!replicated.local.is_failed()).then_some(hash);
        Self::recursive_reply(view, origin, now, replicated, stored)
    }

    /// A retrieve, its signature checked unless `checked` says it was.
    async fn retrieve(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Retrieve,
        now: u64,
        checked: Checked,
    ) -> Reply {
        let no_auth_ns = r.namespace.is_public_retrieve();
        if checked == (Checked::Yes { revoked: true }) {
            return Refusal::BadSignature(Method::Retrieve).into();
        }
        match (&r.auth, no_auth_ns) {
            _ if matches!(checked, Checked::Yes { .. }) => {}
            (None, false) => return Refusal::RetrieveUnsigned.into(),
            (Some(auth), _) => {
                if !within(now, auth.timestamp, SIGNATURE_WINDOW) {
                    return Refusal::StaleTimestamp(Method::Retrieve).into();
                }
                let message = r.signed_message().unwrap_or_default();
                let ok = match (r.request_auth(), checked) {
                    (Some(request_auth), Checked::Revocation { revoked }) => {
                        self.verify_known(request_auth, &message, SubaccountFlags::READ, revoked)
                    }
                    (Some(request_auth), _) => {
                        self.verify(
                            request_auth,
                            &message,
                            SubaccountFlags::READ,
                            !r.namespace.is_unrevocable(),
                        )
                        .await
                    }
                    (None, _) => false,
                };
                if !ok {
                    return Refusal::BadSignature(Method::Retrieve).into();
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
                let messages = page
                    .messages
                    .into_iter()
                    .map(|m| RetrievedMessage {
                        data: m.data.into(),
                        expiration: m.expiry,
                        hash: m.hash,
                        timestamp: m.timestamp,
                    })
                    .collect();
                Reply::json(
                    200,
                    &RetrievePage {
                        hf: view.hf(),
                        messages,
                        more: page.more,
                        t: now,
                        wait_ms: None,
                    },
                )
            }
            Err(error) => {
                tracing::warn!(%error, "retrieve failed");
                Refusal::RetrieveFailed(r.account).into()
            }
        }
    }

    async fn delete(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Delete,
        origin: Origin,
        envelope: Option<Bytes>,
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
            return Refusal::BadSignature(Method::Delete).into();
        }
        let local = async {
            // A non-canonical spelling names no message (the reference compares hash text).
            let hashes: Vec<MessageHash> = r
                .messages
                .iter()
                .filter_map(RequestedHash::hash)
                .copied()
                .collect();
            let account = r.account;
            match self.blocking(move |s| s.delete(&account, &hashes)).await {
                Ok(deleted) => {
                    let signed = SignedResponse::Delete {
                        account: &r.account,
                        requested: &r.messages,
                        deleted: &deleted,
                    };
                    let signature = self.sign(&signed.message());
                    MemberResult::Ok(Deleted {
                        deleted: HashList::sorted(deleted),
                        signature,
                    })
                }
                Err(error) => query_failure(&error),
            }
        };
        let mut replicated = self.replicate(view, envelope, local).await;
        if r.required && origin == Origin::Client && replicated.status == 200 {
            let none_deleted = replicated
                .swarm
                .values()
                .all(|entry| entry.ok().is_none_or(|d| d.deleted.is_empty()));
            if none_deleted {
                replicated.status = 404;
            }
        }
        Self::recursive_reply(view, origin, now, replicated, None)
    }

    /// `delete_all`, `delete_before` and `expire_all`: a clock check, a Delete-permission
    /// signature, one store operation over a namespace selector, and the affected hashes (per
    /// namespace for `"all"`) with this node's signature over them.
    async fn by_namespace(
        self: &Arc<Self>,
        view: &NetworkView,
        op: NamespaceOp,
        origin: Origin,
        envelope: Option<Bytes>,
        now: u64,
    ) -> Reply {
        if let Some(refusal) = op.clock_refusal(now, origin) {
            return refusal.into();
        }
        let (auth, message) = op.auth();
        if !self
            .verify(auth, &message, SubaccountFlags::DELETE, true)
            .await
        {
            return Refusal::BadSignature(op.method()).into();
        }
        match op {
            NamespaceOp::ExpireAll(_) => {
                self.run_by_namespace(view, &op, origin, envelope, now, |updated, signature| {
                    Updated { signature, updated }
                })
                .await
            }
            NamespaceOp::DeleteAll(_) | NamespaceOp::DeleteBefore(_) => {
                self.run_by_namespace(view, &op, origin, envelope, now, |deleted, signature| {
                    Deleted { deleted, signature }
                })
                .await
            }
        }
    }

    /// Runs a checked [`NamespaceOp`] here and on the swarm; `entry` shapes this node's result
    /// from the affected hashes and its signature over them.
    async fn run_by_namespace<T: Serialize + DeserializeOwned + Clone>(
        self: &Arc<Self>,
        view: &NetworkView,
        op: &NamespaceOp,
        origin: Origin,
        envelope: Option<Bytes>,
        now: u64,
        entry: impl FnOnce(HashList, Signature) -> T + Send,
    ) -> Reply {
        let local = async {
            let run = op.clone();
            match self.blocking(move |s| run.apply(s)).await {
                Ok(pairs) => {
                    let hashes: Vec<MessageHash> = pairs.iter().map(|(_, h)| *h).collect();
                    let signature = self.sign(&op.signed_response(&hashes));
                    MemberResult::Ok(entry(
                        HashList::for_selector(op.selector(), &pairs),
                        signature,
                    ))
                }
                Err(error) => query_failure(&error),
            }
        };
        let replicated = self.replicate(view, envelope, local).await;
        Self::recursive_reply(view, origin, now, replicated, None)
    }

    async fn expire(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Expire,
        origin: Origin,
        envelope: Option<Bytes>,
        now: u64,
    ) -> Reply {
        if r.expiries.iter().any(|&e| too_old(e, now)) {
            return Refusal::ExpiryInPast.into();
        }
        if r.single_expiry().is_none() && view.hardfork < MULTI_EXPIRY_HARDFORK {
            return Refusal::MultiExpiryInactive.into();
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
            return Refusal::BadSignature(Method::Expire).into();
        }
        let mut mode = r.mode;
        if let Some(sub) = &r.auth.subaccount {
            if !sub.token.flags().contains(SubaccountFlags::DELETE) {
                if mode == ExpireMode::Shorten {
                    return Refusal::ShortenWithoutDelete.into();
                }
                mode = ExpireMode::Extend;
            }
        }
        let cap = now + EXPIRE_CAP;
        let single = r.single_expiry().map(|e| e.min(cap));
        let updates: Vec<(MessageHash, u64)> = match single {
            // A non-canonical spelling names no message (the reference compares hash text).
            Some(expiry) => r
                .messages
                .iter()
                .filter_map(|h| Some((*h.hash()?, expiry)))
                .collect(),
            None => r
                .messages
                .iter()
                .zip(&r.expiries)
                .filter_map(|(h, e)| Some((*h.hash()?, (*e).min(cap))))
                .collect(),
        };
        let store_mode = match mode {
            ExpireMode::Shorten => shallot_store::ExpireMode::Shorten,
            ExpireMode::Extend => shallot_store::ExpireMode::Extend,
            ExpireMode::Set => shallot_store::ExpireMode::Set,
        };
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
                    let signature = self.sign(&signed.message());
                    MemberResult::Ok(Expired {
                        expiry: match single {
                            Some(expiry) => ExpiryValue::Single(expiry),
                            None => {
                                ExpiryValue::Each(result.updated.iter().map(|(_, e)| *e).collect())
                            }
                        },
                        signature,
                        unchanged: (r.mode != ExpireMode::Set)
                            .then(|| Unchanged(unchanged.to_vec())),
                        updated: result.updated.iter().map(|(h, _)| *h).collect(),
                    })
                }
                Err(error) => query_failure(&error),
            }
        };
        let replicated = self.replicate(view, envelope, local).await;
        Self::recursive_reply(view, origin, now, replicated, None)
    }

    async fn get_expiries(self: &Arc<Self>, r: rpc::GetExpiries, now: u64) -> Reply {
        if !within(now, r.timestamp, SIGNATURE_WINDOW) {
            return Refusal::StaleTimestamp(Method::GetExpiries).into();
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
            return Refusal::BadSignature(Method::GetExpiries).into();
        }
        let (account, hashes) = (r.account, r.messages.clone());
        match self
            .blocking(move |s| s.get_expiries(&account, &hashes))
            .await
        {
            Ok(found) => Reply::json(
                200,
                &Expiries {
                    expiries: found.into_iter().collect(),
                },
            ),
            Err(error) => Refusal::RequestFailed(error.to_string()).into(),
        }
    }

    async fn revocation(
        self: &Arc<Self>,
        view: &NetworkView,
        r: rpc::Revocation,
        revoke: bool,
        origin: Origin,
        envelope: Option<Bytes>,
        now: u64,
    ) -> Reply {
        let method = if revoke {
            Method::RevokeSubaccount
        } else {
            Method::UnrevokeSubaccount
        };
        if !within(now, r.timestamp, SIGNATURE_WINDOW) {
            return Refusal::StaleTimestamp(method).into();
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
            return Refusal::BadSignature(method).into();
        }
        let (account, tokens) = (r.account, r.tokens.clone());
        if revoke {
            let signed = SignedResponse::RevokeSubaccount {
                account: &r.account,
                timestamp: r.timestamp,
                tokens: &r.tokens,
            };
            let signature = self.sign(&signed.message());
            let local = async {
                match self
                    .blocking(move |s| s.revoke(&account, &tokens, now))
                    .await
                {
                    Ok(()) => MemberResult::Ok(Revoked { signature }),
                    Err(error) => query_failure(&error),
                }
            };
            let replicated = self.replicate(view, envelope, local).await;
            Self::recursive_reply(view, origin, now, replicated, None)
        } else {
            let signed = SignedResponse::UnrevokeSubaccount {
                account: &r.account,
                timestamp: r.timestamp,
                tokens: &r.tokens,
            };
            let signature = self.sign(&signed.message());
            let local = async {
                match self.blocking(move |s| s.unrevoke(&account, &tokens)).await {
                    Ok(count) => MemberResult::Ok(Unrevoked {
                        count: u64::try_from(count).unwrap_or(u64::MAX),
                        signature,
                    }),
                    Err(error) => query_failure(&error),
                }
            };
            let replicated = self.replicate(view, envelope, local).await;
            Self::recursive_reply(view, origin, now, replicated, None)
        }
    }

    fn oxend_request(
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
                    &OxendResult {
                        hf: view.hf(),
                        result,
                        t: now,
                    },
                )
            }
            rpc::OxendEndpoint::OnsResolve => Refusal::OnsUnsupported.into(),
        }
    }

    async fn if_else(self: &Arc<Self>, view: &NetworkView, r: IfElse, origin: Origin) -> Reply {
        let hf = [i64::from(view.hardfork.0), i64::from(view.hardfork.1)];
        let version = STORAGE_SERVER_VERSION.map(i64::from);
        let height = i64::try_from(view.height).unwrap_or(i64::MAX);
        let condition = r.condition.evaluate(hf, version, height);
        let branch = if condition { r.then } else { r.otherwise };
        let result = match branch {
            Some(request) => Some(result_entry(
                self.execute(without_wait(request), origin).await,
            )),
            None => None,
        };
        Reply::json(
            200,
            &IfElseResult {
                condition,
                height: view.height,
                hf: view.hf(),
                result,
                v: STORAGE_SERVER_VERSION,
            },
        )
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
    fn method(&self) -> Method {
        match self {
            Self::DeleteAll(_) => Method::DeleteAll,
            Self::DeleteBefore(_) => Method::DeleteBefore,
            Self::ExpireAll(_) => Method::ExpireAll,
        }
    }

    /// The method's own clock rule (spec §4.4–§4.6); forwarded requests get the wider window.
    fn clock_refusal(&self, now: u64, origin: Origin) -> Option<Refusal> {
        let window = if origin == Origin::Peer {
            FORWARDED_WINDOW
        } else {
            SIGNATURE_WINDOW
        };
        match self {
            Self::DeleteAll(r) if !within(now, r.timestamp, window) => {
                Some(Refusal::StaleTimestamp(Method::DeleteAll))
            }
            // The reference applies the same 60 s to forwarded requests here, and answers 401.
            Self::DeleteBefore(r) if r.before > now + SIGNATURE_WINDOW => {
                Some(Refusal::BeforeInFuture)
            }
            Self::ExpireAll(r) if r.expiry.saturating_add(window) < now => {
                Some(Refusal::ExpireAllInPast)
            }
            _ => None,
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
fn result_entry(reply: Reply) -> SubResult {
    SubResult {
        body: reply.body.into_json(),
        code: reply.status,
    }
}

/// A `batch` answer: every subrequest's result, in order.
fn batch_reply(replies: Vec<Reply>) -> Reply {
    let results = replies.into_iter().map(result_entry).collect();
    Reply::json(200, &BatchResults { results })
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
