//! Onion requests at this node (storage RPC spec §1.4, onion-client spec §1.5): peel our layer,
//! then run the request as its destination, proxy it to an HTTP server, or relay the next layer.
//!
//! A hop learns only its predecessor (the connection) and its successor (the next hop or the
//! server); nothing here logs the address of one together with the other.
//!
//! Errors travel back through every earlier hop, the guard included, which knows the client's
//! address. So a hop after the guard never answers a plain text that names its successor (a
//! node key, a host, a URL): it encrypts such errors to its own layer key
//! ([`encode_hop_error`]), which only the client can open, and answers plain text only for
//! fixed, generic errors (`Invalid ciphertext`, `Request time out`, `Server busy…`). The guard
//! keeps the reference's plain texts: they name only its own next hop, which it knows anyway.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use shallot_proto::onion::{
    classify_peeled, decrypt_layer, encode_hop_error, encode_snode_response, parse_onion_request,
    EncType, HopKey, Layer, PeelError, ReplyBody, ReplyFormat, MAX_ONION_HOPS,
};
use shallot_proto::rpc::{Envelope, Request};
use shallot_proto::X25519Pub;

use crate::exec::{Body, Origin};
use crate::metrics::OnionKind;
use crate::node_api::OnionHop;
use crate::observe::{NextHop, Role, Seen};
use crate::onion_limits::Work;
use crate::peers::HopError;
use crate::state::Node;

fn plain(status: u16, text: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "text/plain")], text.into()).into_response()
}

/// An encrypted v3 reply `{"status", "body"}` in an HTTP 200.
fn encrypted(key: &HopKey, status: u16, body: ReplyBody<'_>, format: ReplyFormat) -> Response {
    match encode_snode_response(key, status, body, format, &mut rand_core::OsRng) {
        Ok(bytes) => (StatusCode::OK, [("content-type", "text/plain")], bytes).into_response(),
        Err(error) => plain(500, format!("could not encrypt reply: {error}")),
    }
}

/// An error about this hop's successor: plain at the guard (the reference's text, naming only
/// what the guard knows), encrypted to the layer key at any later hop.
fn hop_error(at: Position, key: &HopKey, status: u16, text: String) -> Response {
    if at == Position::Guard {
        return plain(status, text);
    }
    match encode_hop_error(key, status, &text, &mut rand_core::OsRng) {
        Ok(bytes) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, [("content-type", "text/plain")], bytes).into_response()
        }
        Err(_) => plain(status, "Onion hop error"),
    }
}

/// Where this node is on the path: the guard (it received the client's request) or a later hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Guard,
    Later,
}

/// Handles `POST /onion_req/v2`: the outer request from a client to its guard.
pub async fn entry(node: Arc<Node>, body: Bytes, seen: &mut Seen) -> Response {
    seen.request_bytes(body.len());
    if node.readiness().is_err() {
        return plain(
            503,
            format!("Snode not ready: {}", node.identity.ed25519_public()),
        );
    }
    let request = match parse_onion_request(&body) {
        Ok(request) => request,
        Err(error) => return plain(400, error.to_string()),
    };
    let ciphertext = body.slice_ref(request.ciphertext);
    let hop = OnionHop {
        ephemeral_key: request.ephemeral_key,
        enc_type: request.enc_type,
        hop_no: request.hop_no,
    };
    // Only the ciphertext is kept, so that it is freed once decrypted.
    drop(body);
    process(node, hop, ciphertext, Position::Guard, seen).await
}

/// Handles a layer relayed by the previous hop (`/snode/v1/onion`).
pub async fn relayed(
    node: Arc<Node>,
    hop: OnionHop,
    ciphertext: Bytes,
    seen: &mut Seen,
) -> Response {
    seen.request_bytes(ciphertext.len());
    if hop.hop_no > u32::try_from(MAX_ONION_HOPS).unwrap_or(u32::MAX) {
        return plain(400, "onion request max path length exceeded");
    }
    process(node, hop, ciphertext, Position::Later, seen).await
}

/// Runs the storage RPC request of a final layer (`body`: its JSON envelope).
async fn run_final(node: &Arc<Node>, body: &[u8], seen: &mut Seen) -> crate::exec::Reply {
    match Envelope::parse(body).and_then(|e| e.request()) {
        Ok(rpc) => {
            seen.role(if waits(&rpc) {
                Role::OnionWait
            } else {
                Role::OnionExit
            });
            seen.request(&rpc);
            // Replication forwards the request as the client wrote it.
            let body = rpc.is_recursive().then(|| Bytes::copy_from_slice(body));
            node.execute_envelope(rpc, Origin::Client, body).await
        }
        Err(error) => crate::exec::Reply::text(error.status(), error.to_string()),
    }
}

/// Decrypts and acts on one layer, noting in `seen` what the layer showed this node.
async fn process(
    node: Arc<Node>,
    hop: OnionHop,
    ciphertext: Bytes,
    at: Position,
    seen: &mut Seen,
) -> Response {
    let layer = match decrypt_layer(
        &node.onion_keys,
        &ciphertext,
        &hop.ephemeral_key,
        hop.enc_type,
    ) {
        Ok(layer) => layer,
        Err(error) => return plain(400, error.to_string()),
    };
    // The received layer is no longer needed, and what goes on (the next layer, or the whole
    // plaintext to a server) is a part of ours, not a copy: a 10 MB onion is held twice only
    // while it is decrypted.
    drop(ciphertext);
    let (reply_key, plaintext) = layer.into_parts();
    let plaintext = Bytes::from(plaintext);
    let classified = match classify_peeled(&reply_key, &plaintext) {
        Ok(classified) => classified,
        Err(error) => return peel_error(&reply_key, &error),
    };
    match classified {
        Layer::Final(request) => {
            node.metrics.count_onion(OnionKind::Final);
            let format = request.format;
            if node.readiness().is_err() {
                // Encrypted: in plain text the guard would read which node the client wanted.
                let text = format!("Snode not ready: {}", node.identity.ed25519_public());
                return encrypted(&reply_key, 503, ReplyBody::Text(&text), format);
            }
            let reply = run_final(&node, request.request, seen).await;
            let key = &reply_key;
            match &reply.body {
                Body::Json(value) => encrypted(key, reply.status, ReplyBody::Json(value), format),
                Body::Text(text) => encrypted(key, reply.status, ReplyBody::Text(text), format),
            }
        }
        Layer::Proxy(proxy) => {
            node.metrics.count_onion(OnionKind::Proxy);
            seen.role(Role::OnionProxy);
            let url = match proxy.url() {
                Ok(url) => url,
                Err(error) => return peel_error(&reply_key, &error),
            };
            if let Some(host) = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                seen.next(NextHop::Server(host));
            }
            let payload = plaintext.slice_ref(proxy.payload);
            match node.peers.proxy(&url, payload).await {
                Ok((status, headers, body)) => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut response = (status, body).into_response();
                    // After the guard, the server's own headers (its software, cookies…)
                    // would tell the guard which server this is: only its content type is kept.
                    let headers = headers.into_iter().filter(|(name, _)| {
                        at == Position::Guard || name.eq_ignore_ascii_case("content-type")
                    });
                    for (name, value) in headers {
                        if let (Ok(name), Ok(value)) =
                            (HeaderName::try_from(name), HeaderValue::try_from(value))
                        {
                            response.headers_mut().insert(name, value);
                        }
                    }
                    response
                }
                Err(HopError::Timeout) => plain(504, "Request time out"),
                // The error text names the URL: only the client may read it.
                Err(HopError::Unreachable(error)) => hop_error(at, &reply_key, 502, error),
                Err(HopError::Forbidden) => peel_error(&reply_key, &PeelError::InvalidUrl),
                Err(HopError::Busy) => busy(&node, Work::Proxy),
                Err(HopError::TooLarge(cap)) => hop_error(
                    at,
                    &reply_key,
                    502,
                    format!("Server reply larger than {cap} bytes"),
                ),
            }
        }
        Layer::Relay(relay) => {
            node.metrics.count_onion(OnionKind::Relay);
            seen.next(NextHop::Node(relay.destination));
            relay_to(
                &node,
                (at, &reply_key, seen),
                relay.destination,
                relay.ephemeral_key,
                relay.enc_type,
                hop.hop_no,
                plaintext.slice_ref(relay.ciphertext),
            )
            .await
        }
    }
}

async fn relay_to(
    node: &Node,
    (at, key, seen): (Position, &HopKey, &mut Seen),
    destination: shallot_proto::Ed25519Pub,
    ephemeral_key: X25519Pub,
    enc_type: EncType,
    hop_no: u32,
    ciphertext: Bytes,
) -> Response {
    let view = node.view();
    let Some(next) = view.node(&destination) else {
        return hop_error(at, key, 502, format!("Next node not found: {destination}"));
    };
    let hop = OnionHop {
        ephemeral_key,
        enc_type,
        hop_no: hop_no.saturating_add(1).max(1),
    };
    match node.peers.relay_onion(next, &hop, ciphertext).await {
        Ok(reply) => {
            seen.reply(&reply.body);
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, reply.body).into_response()
        }
        Err(HopError::Timeout) => plain(504, "Request time out"),
        Err(HopError::Unreachable(_) | HopError::Forbidden) => hop_error(
            at,
            key,
            502,
            format!("Next node not reachable: {destination}"),
        ),
        Err(HopError::Busy) => busy(node, Work::Relay),
        Err(HopError::TooLarge(cap)) => hop_error(
            at,
            key,
            502,
            format!("Next node reply larger than {cap} bytes: {destination}"),
        ),
    }
}

/// Whether a storage RPC waits for messages (a waiting retrieve, alone or in a batch).
fn waits(request: &Request) -> bool {
    match request {
        Request::Retrieve(r) => r.wait_ms.is_some(),
        Request::Batch(subs) => subs.iter().any(waits),
        _ => false,
    }
}

/// The reference's answer when it cannot take more work (onion-client spec §1.9).
fn busy(node: &Node, work: Work) -> Response {
    node.metrics.count_busy(work);
    plain(503, "Server busy, try again later")
}

fn peel_error(key: &HopKey, error: &PeelError) -> Response {
    let reply = error.reply();
    if reply.encrypted {
        encrypted(
            key,
            reply.status,
            ReplyBody::Text(&reply.text),
            ReplyFormat::default(),
        )
    } else {
        plain(reply.status, reply.text)
    }
}
