//! HTTP routes of the node's HTTPS listener and its admin listener.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body as HttpBody;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use shallot_proto::rpc::{Envelope, Refusal};

use crate::connections::HeldSlot;
use crate::exec::{Body, Origin, Reply};
use crate::node_api::{self, OnionHop};
use crate::observe::{self, Recorder, Role, Seen};
use crate::peer_inbound;
use crate::server::ConnInfo;
use crate::state::Node;

/// Largest request body accepted (spec §1.1).
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// `Server` header on every response.
pub const SERVER_HEADER: &str = concat!(
    "Shallot/",
    env!("CARGO_PKG_VERSION"),
    " (Oxen Storage Server/2.6.2 compatible)"
);

type Shared = State<Arc<Node>>;

fn text(status: u16, body: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "text/plain")], body.into()).into_response()
}

fn refused(refusal: &Refusal) -> Response {
    text(refusal.status(), refusal.to_string())
}

fn reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.body {
        Body::Json(value) => (
            status,
            [("content-type", "application/json")],
            value.to_string(),
        )
            .into_response(),
        Body::Text(body) => (status, [("content-type", "text/plain")], body).into_response(),
    }
}

/// Reads a whole body, refusing more than [`MAX_BODY`] bytes with 413 and a body that misses
/// the listener's deadline with 408.
async fn read_body(body: HttpBody) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|error| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if cause.is::<crate::server::BodyTimeout>() {
                return text(408, "Request body not received in time");
            }
            source = cause.source();
        }
        text(413, "Request body too large")
    })
}

/// The client-facing and node-to-node routes.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/storage_rpc/v1", post(storage_rpc))
        .route("/onion_req/v2", post(onion_entry))
        .route("/ping_test/v1", post(ping_test))
        .route(
            "/get_stats/v1",
            get(|| async { axum::Json(serde_json::json!({"version": "2.6.2"})) }),
        )
        .route("/monitor/v1", get(monitor))
        .route(node_api::FORWARD_PATH, post(peer_forward))
        .route(node_api::ONION_PATH, post(peer_onion))
        .route(node_api::HANDOFF_PATH, post(peer_handoff))
        .fallback(not_found)
        // A known path with another method is "anything else" too: 404, not 405.
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response.headers_mut().insert(
                    "server",
                    axum::http::HeaderValue::from_static(SERVER_HEADER),
                );
                response
            },
        ))
        .with_state(node)
}

async fn not_found(method: Method, uri: Uri) -> Response {
    // The request path only, as the reference's `getUrl()`: an HTTP/2 request's URI also
    // carries scheme and authority, and the query is not part of it.
    text(404, format!("{method} {} Not Found", uri.path()))
}

async fn storage_rpc(
    State(node): Shared,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let started = Instant::now();
    let mut seen = Recorder::new(&node, conn, Role::StorageRpc);
    let response = storage_rpc_inner(&node, conn, &headers, request.into_body(), seen.seen()).await;
    node.metrics
        .observe_http("storage_rpc", response.status().as_u16(), started.elapsed());
    seen.finish(&response);
    response
}

async fn storage_rpc_inner(
    node: &Arc<Node>,
    conn: ConnInfo,
    headers: &HeaderMap,
    body: HttpBody,
    seen: &mut Seen,
) -> Response {
    if let Err(reasons) = node.readiness() {
        return refused(&Refusal::NotReady(reasons));
    }
    if let Some(refusal) = rate_limited(node, &conn) {
        return refusal;
    }
    if headers.contains_key("x-loki-long-poll") {
        return refused(&Refusal::LongPolling);
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    seen.request_bytes(body.len());
    match Envelope::parse(&body).and_then(|envelope| envelope.request()) {
        Ok(request) => {
            seen.request(&request);
            reply(
                node.execute_envelope(request, Origin::Client, Some(body))
                    .await,
            )
        }
        Err(error) => text(error.status(), error.to_string()),
    }
}

/// Takes a token from the client address's bucket (storage RPC spec §12); `Some(429)` when it
/// is empty. Clients and onion entries share one bucket per address.
fn rate_limited(node: &Node, conn: &ConnInfo) -> Option<Response> {
    let ip = conn.remote.ip();
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    if node.rate.allow(ip, Instant::now()) {
        None
    } else {
        node.metrics.count_rate_limited();
        Some(refused(&Refusal::RateLimited))
    }
}

/// `/onion_req/v2`: rate-limited per client address like `/storage_rpc/v1` (the reference does
/// not limit onion requests). Relayed hops (`/snode/v1/onion`) are not: they come from staked
/// nodes that carry many clients' traffic, and are bounded by the relay semaphore instead.
async fn onion_entry(
    State(node): Shared,
    Extension(conn): Extension<ConnInfo>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let mut seen = Recorder::new(&node, conn, Role::OnionGuard);
    let response = if let Some(refusal) = rate_limited(&node, &conn) {
        refusal
    } else {
        match read_body(request.into_body()).await {
            Ok(body) => crate::onion::entry(node.clone(), body, seen.seen()).await,
            Err(response) => response,
        }
    };
    node.metrics
        .observe_http("onion", response.status().as_u16(), started.elapsed());
    seen.finish(&response);
    response
}

async fn ping_test(State(node): Shared) -> Response {
    let key = shallot_proto::b64::encode(node.identity.ed25519_public().as_bytes());
    (StatusCode::OK, [("x-oxen-snode-pubkey", key)], "").into_response()
}

async fn monitor(
    State(node): Shared,
    Extension(conn): Extension<ConnInfo>,
    Extension(slot): Extension<HeldSlot>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Registered before the upgrade, so the per-address and total caps refuse with a status.
    let connected = match node.monitor.connect_from(conn.remote.ip()) {
        Ok(connected) => connected,
        Err(refusal) => return text(429, refusal.text),
    };
    upgrade
        .max_message_size(64 * 1024)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| async move {
            // The listener's connection slot stays taken while the WebSocket lives.
            let _slot = slot;
            crate::monitor::serve(node, socket, connected, conn).await;
        })
}

/// Refuses connections that did not prove the key of an active node of the current view.
fn refuse_non_peer(node: &Node, conn: &ConnInfo) -> Option<Response> {
    peer_inbound::active_sender(node, conn.node)
        .err()
        .map(reply)
}

async fn peer_forward(
    State(node): Shared,
    Extension(conn): Extension<ConnInfo>,
    request: Request,
) -> Response {
    if let Err(refusal) = peer_inbound::check_forwarder(&node, conn.node) {
        return reply(refusal);
    }
    let at_ms = node.clock.now_ms();
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut seen = Seen::new(&node, Role::Replica);
    let response = reply(peer_inbound::forwarded(&node, &body, &mut seen).await);
    observe::record_response(&node, &conn, at_ms, seen, &response);
    response
}

async fn peer_onion(
    State(node): Shared,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let started = Instant::now();
    if let Some(refusal) = refuse_non_peer(&node, &conn) {
        return refusal;
    }
    let hop = match OnionHop::from_headers(&headers) {
        Ok(hop) => hop,
        Err(error) => return text(400, error.to_string()),
    };
    let mut seen = Recorder::new(&node, conn, Role::OnionRelay);
    let response = match read_body(request.into_body()).await {
        Ok(body) => crate::onion::relayed(node.clone(), hop, body, seen.seen()).await,
        Err(response) => response,
    };
    node.metrics
        .observe_http("onion", response.status().as_u16(), started.elapsed());
    seen.finish(&response);
    response
}

async fn peer_handoff(
    State(node): Shared,
    Extension(conn): Extension<ConnInfo>,
    request: Request,
) -> Response {
    let sender = match peer_inbound::active_sender(&node, conn.node) {
        Ok(sender) => sender,
        Err(refusal) => return reply(refusal),
    };
    let at_ms = node.clock.now_ms();
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut seen = Seen::new(&node, Role::Handoff);
    let response = reply(peer_inbound::handoff(&node, sender, &body, &mut seen).await);
    observe::record_response(&node, &conn, at_ms, seen, &response);
    response
}

/// The admin listener: Prometheus metrics at `GET /metrics` (plain HTTP, keep it private).
pub fn admin_router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(node)
}

async fn metrics(State(node): Shared) -> Response {
    let store = node.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats())
        .await
        .ok()
        .and_then(Result::ok);
    let mut gauges = vec![
        (
            "shallot_ready",
            "1 when the node serves clients.",
            u64::from(node.readiness().is_ok()),
        ),
        (
            "shallot_known_nodes",
            "Service nodes in the current directory view.",
            node.view().nodes().len() as u64,
        ),
        (
            "shallot_rate_limited_clients",
            "Client addresses tracked by the rate limiter.",
            node.rate.tracked() as u64,
        ),
    ];
    gauges.extend(crate::account_limits::gauges(&node));
    gauges.extend(node.connections.gauges());
    gauges.push((
        "shallot_waiting_retrieves",
        "Retrieves held open until a message arrives (private push).",
        node.waiters.len() as u64,
    ));
    if let Some(stats) = stats {
        gauges.push((
            "shallot_db_bytes",
            "Database size in bytes.",
            stats.db_bytes,
        ));
        gauges.push((
            "shallot_db_max_bytes",
            "Database size cap in bytes.",
            stats.max_db_bytes,
        ));
        gauges.push(("shallot_messages", "Messages stored.", stats.messages));
        gauges.push((
            "shallot_accounts",
            "Accounts with stored messages.",
            stats.accounts,
        ));
    }
    (
        [("content-type", crate::metrics::CONTENT_TYPE)],
        node.metrics.render(&gauges),
    )
        .into_response()
}
