//! The "v3" reply of a service-node destination (onion-client spec §1.6): the JSON
//! `{"status": N, "body": …}` encrypted with the request layer's key and, by default, base64-encoded.
//! It travels back through the path unchanged inside an HTTP 200.

use rand_core::CryptoRngCore;
use serde_json::{Map, Value};

use super::cipher::{CipherError, HopKey, ResponseKey};

/// Why a v3 reply could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The HTTP body is not base64.
    #[error("response is not base64")]
    NotBase64,
    /// Decryption failed (wrong key or tampered data).
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The decrypted reply is not a JSON object.
    #[error("response is not a JSON object: {0}")]
    InvalidJson(String),
    /// The status field is not an HTTP status code.
    #[error("response status is not a valid status code")]
    InvalidStatus,
}

/// How the destination must format its reply (the `json` and `base64` flags of the final layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFormat {
    /// Embed a JSON body as a JSON value instead of a string (default false).
    pub json: bool,
    /// Base64-encode the encrypted reply (default true).
    pub base64: bool,
}

impl Default for ReplyFormat {
    fn default() -> Self {
        Self {
            json: false,
            base64: true,
        }
    }
}

/// The body a destination node answers with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplyBody<'a> {
    /// Plain text, e.g. an error message; always sent as a JSON string.
    Text(&'a str),
    /// The RPC's JSON result; sent as a string holding JSON unless [`ReplyFormat::json`] is set.
    Json(&'a Value),
}

/// Node side: encrypts `{"status": status, "body": body}` with the layer key and applies `format`.
pub fn encode_snode_response<R: CryptoRngCore + ?Sized>(
    key: &HopKey,
    status: u16,
    body: ReplyBody<'_>,
    format: ReplyFormat,
    rng: &mut R,
) -> Result<Vec<u8>, ResponseError> {
    let body = match body {
        ReplyBody::Text(text) => Value::from(text),
        ReplyBody::Json(value) if format.json => value.clone(),
        ReplyBody::Json(value) => Value::from(value.to_string()),
    };
    let mut reply = Map::new();
    reply.insert("status".to_owned(), Value::from(status));
    reply.insert("body".to_owned(), body);
    let plaintext = Value::Object(reply).to_string();
    let ciphertext = key.encrypt(plaintext.as_bytes(), rng)?;
    Ok(if format.base64 {
        crate::b64::encode(ciphertext).into_bytes()
    } else {
        ciphertext
    })
}

/// A decoded v3 reply.
#[derive(Debug, Clone, PartialEq)]
pub struct SnodeResponse {
    /// The real status of the request (the transport status is always 200).
    pub status: u16,
    /// The body.
    pub body: SnodeBody,
}

/// The body of a decoded v3 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum SnodeBody {
    /// A string body: usually the RPC's JSON result encoded as a string, or an error text.
    Text(String),
    /// A JSON body: the `body` value when it is not a string, else the whole reply object.
    Json(Value),
}

impl SnodeBody {
    /// The body as JSON, decoding a string body that holds JSON; `None` for plain text.
    pub fn to_json(&self) -> Option<Value> {
        match self {
            Self::Text(text) => serde_json::from_str(text).ok(),
            Self::Json(value) => Some(value.clone()),
        }
    }
}

/// Client side: decodes the HTTP body of a snode reply (spec §1.6, "client decoding").
///
/// Accepts a legacy `{"result": "<base64>"}` wrapper, base64-decodes, decrypts and parses the
/// JSON. The status is `status_code` if present, else `status`, else 200 (v3 *server* replies carry
/// no status on success).
pub fn decode_snode_response(
    key: &ResponseKey,
    http_body: &[u8],
) -> Result<SnodeResponse, ResponseError> {
    let wrapped = serde_json::from_slice::<Value>(http_body).ok();
    let text = match wrapped.as_ref().and_then(|v| v.get("result")) {
        Some(Value::String(result)) => result.as_bytes(),
        _ => http_body,
    };
    let ciphertext = crate::b64::decode(text.trim_ascii()).map_err(|_| ResponseError::NotBase64)?;
    let plaintext = key.decrypt(&ciphertext)?;
    let mut reply = match serde_json::from_slice::<Value>(&plaintext) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(ResponseError::InvalidJson("not an object".to_owned())),
        Err(e) => return Err(ResponseError::InvalidJson(e.to_string())),
    };
    let status = match reply.get("status_code").or_else(|| reply.get("status")) {
        None => 200,
        Some(value) => value
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .ok_or(ResponseError::InvalidStatus)?,
    };
    let body = match reply.remove("body") {
        Some(Value::String(text)) => SnodeBody::Text(text),
        Some(value) => SnodeBody::Json(value),
        None => SnodeBody::Json(Value::Object(reply)),
    };
    Ok(SnodeResponse { status, body })
}
