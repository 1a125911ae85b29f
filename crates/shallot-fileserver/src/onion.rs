//! Onion v4 requests (attachments spec §3.3, onion-client spec §1.7): a service node POSTs the
//! last layer (`LE32 ‖ ciphertext ‖ {"ephemeral_key", "enc_type", …}`) to `/oxen/v4/lsrpc`; the
//! server decrypts it with its X25519 key, runs the inner request through [`Service`], and
//! answers with the v4 reply encrypted under the same layer key.
//!
//! What cannot be decrypted gets a plain HTTP 400 (the server cannot encrypt to an unknown
//! key); a decrypted but malformed request gets an encrypted `code 400`.

use std::sync::Arc;

use bytes::Bytes;
use rand_core::OsRng;
use shallot_proto::attachment::server_api::{Route, TTL_HEADER};
use shallot_proto::onion::{parse_onion_request, Headers, V4Request, V4Response};

use crate::dispatch::{Reply, Service};
use crate::keys::ServerKeys;

/// Paths a node proxies v4 requests to (it allows `/oxen/…/lsrpc` and `/loki/…/lsrpc`).
pub const ONION_PATHS: [&str; 2] = ["/oxen/v4/lsrpc", "/loki/v4/lsrpc"];

/// The HTTP answer to an onion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnionReply {
    /// Not decryptable: a plain HTTP error with a text body.
    Plain {
        /// HTTP status.
        status: u16,
        /// Text body.
        text: String,
    },
    /// The encrypted v4 reply, sent as HTTP 200.
    Sealed(Vec<u8>),
}

/// Decrypts, handles and seals one onion request.
pub async fn handle_onion(service: &Arc<Service>, keys: &ServerKeys, body: &[u8]) -> OnionReply {
    let plain = |text: String| OnionReply::Plain { status: 400, text };
    let request = match parse_onion_request(body) {
        Ok(request) => request,
        Err(error) => return plain(error.to_string()),
    };
    let layer = match request.decrypt(keys.keypair()) {
        Ok(layer) => layer,
        Err(error) => return plain(error.to_string()),
    };
    let (key, plaintext) = layer.into_parts();
    // The body is cut out of the decrypted layer, not copied.
    let reply = match V4Request::parse_owned(plaintext) {
        Ok(request) => {
            let route = Route::parse(request.method(), request.endpoint());
            let ttl = request
                .headers()
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(TTL_HEADER))
                .map(|(_, value)| value.clone());
            let body = request.into_body().map_or_else(Bytes::new, Bytes::from);
            service.handle(route, ttl.as_deref(), body).await
        }
        Err(_) => Reply {
            status: 400,
            headers: vec![("content-type", "text/plain".to_owned())],
            body: Bytes::from_static(b"Invalid v4 onion request"),
        },
    };
    let headers: Headers = reply
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let response = V4Response {
        code: reply.status,
        headers,
        body: reply.body.into(),
    };
    match response.seal(&key, &mut OsRng) {
        Ok(sealed) => OnionReply::Sealed(sealed),
        Err(error) => OnionReply::Plain {
            status: 500,
            text: error.to_string(),
        },
    }
}
