//! The "v3" reply of a service-node destination (onion-client spec §1.6): the JSON
//! `{"status": N, "body": …}` encrypted with the request layer's key and, by default, base64-encoded.
//! It travels back through the path unchanged inside an HTTP 200.

use rand_core::CryptoRngCore;
use serde_json::{Map, Value};

use super::cipher::{CipherError, HopKey, ResponseKey};
use super::padding::{self, MIN_REPLY_CLASS, PAD_FIELD_OVERHEAD};

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
    /// Pad the reply to a size class (see [`padding`]); set when the request carried a `"pad"`
    /// field (default false, as Session clients never send one).
    pub pad: bool,
}

impl Default for ReplyFormat {
    fn default() -> Self {
        Self {
            json: false,
            base64: true,
            pad: false,
        }
    }
}

impl ReplyFormat {
    /// The format of a hop's encrypted error (see [`encode_hop_error`]): text, base64, padded.
    pub const HOP_ERROR: Self = Self {
        json: false,
        base64: true,
        pad: true,
    };
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
    let mut plaintext = Value::Object(reply).to_string();
    if format.pad {
        let enc_type = key.enc_type();
        let wire = |pad: usize| {
            let ciphertext = enc_type.ciphertext_len(plaintext.len() + PAD_FIELD_OVERHEAD + pad);
            if format.base64 {
                padding::base64_len(ciphertext)
            } else {
                ciphertext
            }
        };
        if let Some(pad) = padding::fit_padding(MIN_REPLY_CLASS, wire) {
            // `{…}` becomes `{…,"pad":"000…"}`: the object is never empty (status, body).
            plaintext.pop();
            plaintext.push_str(",\"pad\":\"");
            plaintext.push_str(&padding::pad_string(pad));
            plaintext.push_str("\"}");
        }
    }
    let ciphertext = key.encrypt(plaintext.as_bytes(), rng)?;
    Ok(if format.base64 {
        crate::b64::encode(ciphertext).into_bytes()
    } else {
        ciphertext
    })
}

/// A hop after the guard encrypts the errors it produces (e.g. `Next node not found: <key>`) to
/// its own layer key, so the hops between it and the client (the guard above all, which knows
/// the client's address) never read a destination: a padded v3 reply `{"status", "body"}` that
/// travels back with the plain HTTP `status`. The client finds the hop with [`open_hop_error`].
pub fn encode_hop_error<R: CryptoRngCore + ?Sized>(
    key: &HopKey,
    status: u16,
    text: &str,
    rng: &mut R,
) -> Result<Vec<u8>, ResponseError> {
    encode_snode_response(
        key,
        status,
        ReplyBody::Text(text),
        ReplyFormat::HOP_ERROR,
        rng,
    )
}

/// Client side: which hop of the path produced an encrypted error body, and what it says.
/// `hop_keys` are the path's layer keys, guard first ([`BuiltOnion::hop_keys`]); the index
/// returned is into them. `None` when no key opens the body (a plain error, or tampered bytes).
///
/// [`BuiltOnion::hop_keys`]: super::BuiltOnion::hop_keys
pub fn open_hop_error(
    hop_keys: &[ResponseKey],
    http_body: &[u8],
) -> Option<(usize, SnodeResponse)> {
    // Cheap rejection of plain texts before trying every key.
    if http_body.len() < 16
        || !http_body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return None;
    }
    hop_keys
        .iter()
        .enumerate()
        .find_map(|(index, key)| Some((index, decode_snode_response(key, http_body).ok()?)))
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
