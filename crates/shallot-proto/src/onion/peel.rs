//! The node side of an onion request (onion-client spec §1.3–§1.5, §1.9): parse the outer request,
//! decrypt one layer, and decide whether to relay it, proxy it to an HTTP server, or execute it.
//!
//! ```text
//! parse_onion_request(body) ─▶ OnionRequest ─decrypt─▶ DecryptedLayer ─classify─▶ Layer
//!                                 decrypt_layer(...) ─▶ DecryptedLayer   (request from a relay)
//! ```
//!
//! A failure maps to the exact reply the storage server sends, see [`PeelError::reply`].

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::cipher::{EncType, HopKey, Role, X25519Keypair};
use super::framing::{parse_frame, FramingError};
use super::response::ReplyFormat;
use super::routing::{self, ProxyProtocol};
use crate::identity::{Ed25519Pub, X25519Pub};

/// HTTP status of every error reply a hop produces while peeling.
const BAD_REQUEST: u16 = 400;

/// Why the outer request (what the client POSTs to the guard) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The `LE32 || CT || JSON` framing is broken.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A JSON field is missing or malformed (`ephemeral_key`, `enc_type`, `hop_no`).
    #[error("{0}")]
    Json(String),
}

/// Why a node could not peel its layer. `Display` is the exact reply text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeelError {
    /// The outer request does not parse: plain 400 `Error parsing onion request: …`.
    #[error("Error parsing onion request: {0}")]
    Request(#[from] RequestError),
    /// The layer does not decrypt: plain 400 `Invalid ciphertext`.
    #[error("Invalid ciphertext")]
    InvalidCiphertext,
    /// The decrypted layer's framing or JSON is malformed: encrypted 400 `Invalid json`.
    #[error("Invalid json")]
    InvalidJson {
        /// What was wrong, for logs (not sent).
        reason: String,
    },
    /// A proxy layer names a forbidden protocol, host or target: encrypted 400 `Invalid url`.
    #[error("Invalid url")]
    InvalidUrl,
}

/// The reply a node sends for a [`PeelError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// HTTP status (always 400 for peel errors).
    pub status: u16,
    /// The reply text.
    pub text: String,
    /// Whether the reply must be sent as an encrypted v3 reply (see
    /// [`encode_snode_response`](super::response::encode_snode_response) with the layer's reply key and
    /// the default [`ReplyFormat`]) inside an HTTP 200, rather than as a plain HTTP error.
    pub encrypted: bool,
}

impl PeelError {
    /// The status, text and encryption the storage server uses for this error (spec §1.5, §1.9).
    pub fn reply(&self) -> ErrorReply {
        ErrorReply {
            status: BAD_REQUEST,
            text: self.to_string(),
            encrypted: matches!(self, Self::InvalidJson { .. } | Self::InvalidUrl),
        }
    }
}

/// The parsed outer request a client POSTs to its guard (spec §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionRequest<'a> {
    /// The guard's encrypted layer.
    pub ciphertext: &'a [u8],
    /// The client's ephemeral key for this layer.
    pub ephemeral_key: X25519Pub,
    /// The cipher of this layer.
    pub enc_type: EncType,
    /// Claimed hop number (negative values clamped to 0; default 0).
    pub hop_no: u32,
}

impl OnionRequest<'_> {
    /// Decrypts the guard's layer with the node's key.
    pub fn decrypt(&self, node: &X25519Keypair) -> Result<DecryptedLayer, PeelError> {
        decrypt_layer(node, self.ciphertext, &self.ephemeral_key, self.enc_type)
    }
}

/// Parses `LE32(N) || CT || {"ephemeral_key", "enc_type"?, "hop_no"?}`.
///
/// An HTTP server uses the same function on the layer a node proxies to it.
pub fn parse_onion_request(body: &[u8]) -> Result<OnionRequest<'_>, PeelError> {
    let frame = parse_frame(body).map_err(RequestError::from)?;
    let json: routing::OuterIn = from_map(frame.json).map_err(RequestError::Json)?;
    let hop_no = json
        .hop_no
        .map_or(0, |n| u32::try_from(n.max(0)).unwrap_or(u32::MAX));
    Ok(OnionRequest {
        ciphertext: frame.payload,
        ephemeral_key: json.ephemeral_key,
        enc_type: json.enc_type,
        hop_no,
    })
}

/// A decrypted layer together with the key that must encrypt any reply to it.
#[derive(Debug)]
pub struct DecryptedLayer {
    reply_key: HopKey,
    plaintext: Vec<u8>,
}

impl DecryptedLayer {
    /// The layer key; a destination encrypts its reply (and a hop its encrypted errors) with it.
    pub const fn reply_key(&self) -> &HopKey {
        &self.reply_key
    }

    /// The decrypted bytes (for an HTTP server: the v4 request).
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// Decides what to do with this layer (see [`classify_layer`]).
    ///
    /// A legacy AES-CBC layer is not authenticated, so telling "bad padding" apart from "bad
    /// JSON" would be a padding oracle: for CBC every error here is [`PeelError::InvalidCiphertext`],
    /// the same plain reply as a padding failure.
    pub fn classify(&self) -> Result<Layer<'_>, PeelError> {
        classify_peeled(&self.reply_key, &self.plaintext)
    }

    /// Splits into the reply key and the plaintext.
    pub fn into_parts(self) -> (HopKey, Vec<u8>) {
        (self.reply_key, self.plaintext)
    }
}

/// [`DecryptedLayer::classify`] of a layer split with [`DecryptedLayer::into_parts`] (a node
/// that relays a part of its plaintext without copying it).
pub fn classify_peeled<'a>(
    reply_key: &HopKey,
    plaintext: &'a [u8],
) -> Result<Layer<'a>, PeelError> {
    let classified = classify_layer(plaintext);
    if reply_key.enc_type() == EncType::AesCbc {
        classified.map_err(|_| PeelError::InvalidCiphertext)
    } else {
        classified
    }
}

/// Decrypts one layer with the node's X25519 key and the `ephemeral_key`/`enc_type` it came with.
pub fn decrypt_layer(
    node: &X25519Keypair,
    ciphertext: &[u8],
    ephemeral_key: &X25519Pub,
    enc_type: EncType,
) -> Result<DecryptedLayer, PeelError> {
    let reply_key = HopKey::derive(enc_type, node, ephemeral_key, Role::Responder)
        .map_err(|_| PeelError::InvalidCiphertext)?;
    let plaintext = reply_key
        .decrypt(ciphertext)
        .map_err(|_| PeelError::InvalidCiphertext)?;
    Ok(DecryptedLayer {
        reply_key,
        plaintext,
    })
}

/// What a node must do with a decrypted layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer<'a> {
    /// This node is the destination: execute the storage RPC request.
    Final(FinalRequest<'a>),
    /// POST the whole layer to an HTTP server.
    Proxy(ProxyRequest<'a>),
    /// Forward the inner ciphertext to the next node.
    Relay(RelayRequest<'a>),
}

/// A request for this node (the JSON had a `headers` key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalRequest<'a> {
    /// The storage RPC request, UTF-8 JSON `{"method", "params"}`.
    pub request: &'a [u8],
    /// How to format the reply.
    pub format: ReplyFormat,
}

/// A request to proxy to an HTTP server (the JSON had a `host` key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest<'a> {
    /// Server host name or address.
    pub host: String,
    /// Server port (default 443).
    pub port: u16,
    /// Scheme (default https).
    pub protocol: ProxyProtocol,
    /// Request path as given; check it with [`ProxyRequest::url`] before connecting.
    pub target: String,
    /// The entire decrypted layer, which is what gets POSTed to the server.
    pub payload: &'a [u8],
}

impl ProxyRequest<'_> {
    /// The URL to POST to, `protocol://host[:port]target` (port omitted when it is the default),
    /// or [`PeelError::InvalidUrl`] if the host or target is not allowed (including any `..`,
    /// `#`, `%` or `?` in either).
    pub fn url(&self) -> Result<String, PeelError> {
        if !is_proxy_target_allowed(&self.target) || !routing::is_valid_host(&self.host) {
            return Err(PeelError::InvalidUrl);
        }
        Ok(if self.port == self.protocol.default_port() {
            format!("{}://{}{}", self.protocol, self.host, self.target)
        } else {
            format!(
                "{}://{}:{}{}",
                self.protocol, self.host, self.port, self.target
            )
        })
    }
}

/// Whether a node may proxy to `target`: it starts with `/loki/` or `/oxen/`, ends with `/lsrpc`
/// and has no query string, fragment, percent-encoding or `..` (which a URL parser would
/// resolve into another path).
pub fn is_proxy_target_allowed(target: &str) -> bool {
    (target.starts_with("/loki/") || target.starts_with("/oxen/"))
        && target.ends_with("/lsrpc")
        && !has_url_tricks(target)
}

/// `..`, `#`, `%` or `?`: characters that change what a URL means once parsed.
fn has_url_tricks(text: &str) -> bool {
    text.contains("..") || text.contains(['#', '%', '?'])
}

/// A layer to forward to the next node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRequest<'a> {
    /// Ed25519 key of the next node (look up its address and X25519 key).
    pub destination: Ed25519Pub,
    /// The key the next node decrypts with.
    pub ephemeral_key: X25519Pub,
    /// The cipher of the next layer.
    pub enc_type: EncType,
    /// The next layer.
    pub ciphertext: &'a [u8],
}

/// Classifies a decrypted layer, in the storage server's order: `headers` → final, else `host` →
/// proxy, else relay. Malformed framing or fields give [`PeelError::InvalidJson`]; a proxy
/// `protocol` other than http/https gives [`PeelError::InvalidUrl`].
pub fn classify_layer(plaintext: &[u8]) -> Result<Layer<'_>, PeelError> {
    let frame = parse_frame(plaintext).map_err(|e| invalid_json(e.to_string()))?;
    let json = frame.json;
    if json.contains_key("headers") {
        let control: routing::FinalIn = from_map(json).map_err(invalid_json)?;
        let defaults = ReplyFormat::default();
        return Ok(Layer::Final(FinalRequest {
            request: frame.payload,
            format: ReplyFormat {
                json: control.json.unwrap_or(defaults.json),
                base64: control.base64.unwrap_or(defaults.base64),
                pad: control.pad.is_some(),
            },
        }));
    }
    if json.contains_key("host") {
        let proxy: routing::ProxyIn = from_map(json).map_err(invalid_json)?;
        let protocol = match proxy.protocol {
            None => ProxyProtocol::default(),
            Some(text) => text.parse().map_err(|_| PeelError::InvalidUrl)?,
        };
        return Ok(Layer::Proxy(ProxyRequest {
            host: proxy.host,
            port: proxy.port.unwrap_or(routing::DEFAULT_PROXY_PORT),
            protocol,
            target: proxy.target,
            payload: plaintext,
        }));
    }
    let relay: routing::Relay = from_map(json).map_err(invalid_json)?;
    Ok(Layer::Relay(RelayRequest {
        destination: relay.destination,
        ephemeral_key: relay.ephemeral_key,
        enc_type: relay.enc_type,
        ciphertext: frame.payload,
    }))
}

fn invalid_json(reason: String) -> PeelError {
    PeelError::InvalidJson { reason }
}

/// Deserializes a routing JSON object into its typed form.
fn from_map<T: DeserializeOwned>(json: Map<String, Value>) -> Result<T, String> {
    serde_json::from_value(Value::Object(json)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies() {
        let reply = PeelError::InvalidCiphertext.reply();
        assert_eq!(
            (reply.status, reply.text.as_str(), reply.encrypted),
            (400, "Invalid ciphertext", false)
        );
        let reply = PeelError::InvalidUrl.reply();
        assert_eq!(
            (reply.status, reply.text.as_str(), reply.encrypted),
            (400, "Invalid url", true)
        );
        let reply = PeelError::InvalidJson { reason: "x".into() }.reply();
        assert_eq!(
            (reply.text.as_str(), reply.encrypted),
            ("Invalid json", true)
        );
        let reply = parse_onion_request(b"this is not an onion request")
            .unwrap_err()
            .reply();
        assert!(
            reply.text.starts_with("Error parsing onion request: "),
            "{}",
            reply.text
        );
        assert!(!reply.encrypted);
    }

    #[test]
    fn outer_request_fields() {
        let key = "11".repeat(32);
        let body = format!("\x01\x00\x00\x00X{{\"ephemeral_key\":\"{key}\",\"hop_no\":-3}}");
        let req = parse_onion_request(body.as_bytes()).unwrap();
        assert_eq!(req.ciphertext, b"X");
        assert_eq!(req.enc_type, EncType::AesGcm);
        assert_eq!(req.hop_no, 0);
        assert_eq!(req.ephemeral_key.to_hex(), key);
        for bad in [
            format!(
                "\x00\x00\x00\x00{{\"ephemeral_key\":\"{}\"}}",
                "11".repeat(31)
            ),
            format!("\x00\x00\x00\x00{{\"ephemeral_key\":\"{key}\",\"enc_type\":\"rot13\"}}"),
            format!("\x00\x00\x00\x00{{\"ephemeral_key\":\"{key}\",\"hop_no\":\"1\"}}"),
            "\x00\x00\x00\x00{}".to_owned(),
        ] {
            assert!(
                matches!(
                    parse_onion_request(bad.as_bytes()),
                    Err(PeelError::Request(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_layers() {
        let layer = |json: &str| format!("\x01\x00\x00\x00X{json}");
        for json in [
            r#"{"headers":"","json":1}"#,
            r#"{"host":"h"}"#,
            r#"{"host":"h","target":"/oxen/v4/lsrpc","port":65536}"#,
            r#"{"destination":"00"}"#,
            "{}",
        ] {
            assert!(
                matches!(
                    classify_layer(layer(json).as_bytes()),
                    Err(PeelError::InvalidJson { .. })
                ),
                "{json}"
            );
        }
        assert!(matches!(
            classify_layer(b"\x05\x00\x00\x00X{}"),
            Err(PeelError::InvalidJson { .. })
        ));
        let ftp = layer(r#"{"host":"h","target":"/oxen/v4/lsrpc","protocol":"ftp"}"#);
        assert_eq!(classify_layer(ftp.as_bytes()), Err(PeelError::InvalidUrl));
    }

    #[test]
    fn proxy_urls() {
        let proxy = |host: &str, port, protocol, target: &str| ProxyRequest {
            host: host.to_owned(),
            port,
            protocol,
            target: target.to_owned(),
            payload: b"",
        };
        assert_eq!(
            proxy("h.org", 443, ProxyProtocol::Https, "/oxen/v4/lsrpc").url(),
            Ok("https://h.org/oxen/v4/lsrpc".to_owned())
        );
        assert_eq!(
            proxy("h.org", 443, ProxyProtocol::Http, "/loki/v3/lsrpc").url(),
            Ok("http://h.org:443/loki/v3/lsrpc".to_owned())
        );
        assert_eq!(
            proxy("h.org", 80, ProxyProtocol::Http, "target").url(),
            Err(PeelError::InvalidUrl)
        );
        assert_eq!(
            proxy("h.org/x", 80, ProxyProtocol::Http, "/oxen/v4/lsrpc").url(),
            Err(PeelError::InvalidUrl)
        );
        for target in [
            "/oxen/../admin/lsrpc",
            "/oxen/v4/%2e%2e/lsrpc",
            "/oxen/v4#/lsrpc",
            "/oxen/v4?x=/lsrpc",
            "/loki/v3/x..y/lsrpc",
        ] {
            assert_eq!(
                proxy("h.org", 443, ProxyProtocol::Https, target).url(),
                Err(PeelError::InvalidUrl),
                "{target}"
            );
        }
        for host in ["h..org", "..", "a.."] {
            assert_eq!(
                proxy(host, 443, ProxyProtocol::Https, "/oxen/v4/lsrpc").url(),
                Err(PeelError::InvalidUrl),
                "{host}"
            );
        }
    }

    /// A legacy AES-CBC layer gives byte-identical replies for bad padding and for good padding
    /// around bad JSON, so a client cannot use the node as a padding oracle.
    #[test]
    fn cbc_bad_padding_and_bad_json_reply_alike() {
        use super::super::cipher::shared_secret;
        use aes::cipher::{BlockEncryptMut, KeyIvInit};

        let mut rng = rand::rngs::OsRng;
        let node = X25519Keypair::generate(&mut rng);
        let client = X25519Keypair::generate(&mut rng);
        let secret = shared_secret(client.secret(), node.public()).unwrap();
        let key = HopKey::derive(EncType::AesCbc, &client, node.public(), Role::Requester).unwrap();
        // Valid PKCS#7 padding around a frame whose JSON is broken.
        let bad_json = key
            .encrypt(b"\x01\x00\x00\x00X{not json", &mut rng)
            .unwrap();
        // A valid frame, then a last block whose padding byte is 0 (never valid PKCS#7).
        let iv = [7u8; 16];
        let mut blocks = b"\x01\x00\x00\x00X{\"headers\":\"\"}".to_vec();
        blocks.resize(blocks.len().next_multiple_of(16), 0);
        let mut cipher = cbc::Encryptor::<aes::Aes256>::new(secret.as_ref().into(), &iv.into());
        for block in blocks.chunks_exact_mut(16) {
            cipher.encrypt_block_mut(block.into());
        }
        let bad_padding = [iv.as_slice(), &blocks].concat();

        let reply = |ciphertext: &[u8]| {
            let error = match decrypt_layer(&node, ciphertext, client.public(), EncType::AesCbc) {
                Err(error) => error,
                Ok(layer) => layer.classify().unwrap_err(),
            };
            error.reply()
        };
        let padding_reply = reply(&bad_padding);
        assert_eq!(padding_reply, reply(&bad_json));
        assert_eq!(
            padding_reply,
            ErrorReply {
                status: 400,
                text: "Invalid ciphertext".into(),
                encrypted: false
            }
        );
        // The same bad JSON under AES-GCM still gets the reference's encrypted `Invalid json`.
        let gcm = HopKey::derive(EncType::AesGcm, &client, node.public(), Role::Requester).unwrap();
        let gcm_bad_json = gcm
            .encrypt(b"\x01\x00\x00\x00X{not json", &mut rng)
            .unwrap();
        let layer = decrypt_layer(&node, &gcm_bad_json, client.public(), EncType::AesGcm).unwrap();
        assert!(layer.classify().unwrap_err().reply().encrypted);
    }
}
