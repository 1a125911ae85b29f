//! The client side (onion-client spec §2.5): wrap a request in one encrypted layer per hop, each
//! with a fresh ephemeral X25519 key, and keep the destination layer's key to read the reply.

use rand_core::CryptoRngCore;

use super::cipher::{CipherError, EncType, ResponseKey, X25519Keypair};
use super::framing::FramingError;
use super::padding;
use super::routing::{self, ProxyProtocol, V4_TARGET};
use super::v4::{Bencoded, V4Error, V4Request};
use crate::identity::{Ed25519Pub, X25519Pub};

/// Most hops a path may have; relays reject requests whose hop number exceeds it.
pub const MAX_ONION_HOPS: usize = 15;

/// Why an onion could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The path has no hop or more than [`MAX_ONION_HOPS`].
    #[error("a path needs 1 to {MAX_ONION_HOPS} hops, got {0}")]
    PathLength(usize),
    /// The server host is not a plain host name or address.
    #[error("invalid server host")]
    InvalidHost,
    /// A layer would exceed the size limit.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A key exchange or encryption failed (e.g. a small-order public key).
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The v4 request could not be encoded.
    #[error(transparent)]
    V4(#[from] V4Error),
}

/// A service node's keys: Ed25519 names it in routing JSON, X25519 encrypts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeKeys {
    /// The node's Ed25519 identity key.
    pub ed25519: Ed25519Pub,
    /// The node's X25519 key.
    pub x25519: X25519Pub,
}

/// An HTTP server destination (community server, file server, push server…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDestination {
    /// Host name or address the last hop connects to.
    pub host: String,
    /// Scheme the last hop uses.
    pub protocol: ProxyProtocol,
    /// Port; `None` means the scheme's default.
    pub port: Option<u16>,
    /// The server's X25519 key.
    pub x25519: X25519Pub,
}

/// A built onion: the bytes to POST to the guard and the key that opens the reply.
#[derive(Debug)]
pub struct BuiltOnion {
    /// `LE32 || C1 || {"ephemeral_key", "enc_type"}`, the body of `POST /onion_req/v2`.
    pub body: Vec<u8>,
    /// Decrypts the destination's reply.
    pub response_key: ResponseKey,
    /// The layer key of every hop of the path, guard first: they open the errors those hops
    /// encrypt ([`open_hop_error`](super::open_hop_error)).
    pub hop_keys: Vec<ResponseKey>,
}

/// Length of a frame's length prefix.
const PREFIX_LEN: usize = 4;

/// Builds an onion carrying a storage RPC `request` (UTF-8 JSON `{"method", "params"}`) through
/// `path` to the service node `destination` (which is not itself part of `path`).
pub fn build_to_node<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &NodeKeys,
    request: &[u8],
    enc_type: EncType,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    build_node_onion(path, destination, request, enc_type, None, rng)
}

/// [`build_to_node`], padded (see [`padding`]): the destination's control JSON carries a `"pad"`
/// string sized so that [`BuiltOnion::body`] is exactly one size class long (classes are powers
/// of two from `min_class`, see [`padding::size_class`]), and the `"pad"` field asks the
/// destination to pad its reply too. Session's storage server ignores the field.
pub fn build_to_node_padded<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &NodeKeys,
    request: &[u8],
    enc_type: EncType,
    min_class: usize,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    check_path(path)?;
    let control = serde_json::to_vec(&routing::FinalOut {
        headers: "",
        pad: Some(String::new()),
    })
    .map_err(|e| FramingError::InvalidJson(e.to_string()))?;
    let inner_len = PREFIX_LEN + request.len() + control.len();
    let sizes = LayerSizes::new(path, destination, enc_type)?;
    // Too large for any class: sent unpadded, and the framing limit decides.
    let pad = padding::fit_padding(min_class, |pad| sizes.outer_len(inner_len + pad)).unwrap_or(0);
    build_node_onion(path, destination, request, enc_type, Some(pad), rng)
}

fn build_node_onion<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &NodeKeys,
    request: &[u8],
    enc_type: EncType,
    pad: Option<usize>,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    check_path(path)?;
    let control = frame_json(&routing::FinalOut {
        headers: "",
        pad: pad.map(padding::pad_string),
    })?;
    let inner_len = frame_len(request.len(), control.len())?;
    build_in_place(
        path,
        inner_len,
        |out| {
            let (prefix, rest) = out.split_at_mut(PREFIX_LEN);
            prefix.copy_from_slice(&u32_len(request.len()).to_le_bytes());
            let (payload, json) = rest.split_at_mut(request.len());
            payload.copy_from_slice(request);
            json.copy_from_slice(&control);
        },
        &destination.x25519,
        &|ephemeral_key| {
            frame_json(&routing::Relay {
                destination: destination.ed25519,
                ephemeral_key,
                enc_type,
            })
        },
        enc_type,
        rng,
    )
}

/// The sizes every layer of a node onion adds around the destination's plaintext: fixed for a
/// path and cipher (keys are fixed-length hex), so the outer length is known in advance.
struct LayerSizes {
    enc_type: EncType,
    /// JSON length after each ciphertext, innermost (the last hop's relay JSON) first, the outer
    /// request's JSON last.
    json_lens: Vec<usize>,
}

impl LayerSizes {
    fn new(
        path: &[NodeKeys],
        destination: &NodeKeys,
        enc_type: EncType,
    ) -> Result<Self, BuildError> {
        let any_key = X25519Pub::from_bytes([0; 32]);
        let mut json_lens = vec![json_len(&routing::Relay {
            destination: destination.ed25519,
            ephemeral_key: any_key,
            enc_type,
        })?];
        for (index, hop) in path.iter().enumerate().rev() {
            json_lens.push(if index == 0 {
                json_len(&routing::OuterOut {
                    ephemeral_key: any_key,
                    enc_type,
                })?
            } else {
                json_len(&routing::Relay {
                    destination: hop.ed25519,
                    ephemeral_key: any_key,
                    enc_type,
                })?
            });
        }
        Ok(Self {
            enc_type,
            json_lens,
        })
    }

    /// Length of the outer request when the destination's plaintext is `inner_len` bytes.
    fn outer_len(&self, inner_len: usize) -> usize {
        self.json_lens.iter().fold(inner_len, |len, json| {
            PREFIX_LEN + self.enc_type.ciphertext_len(len) + json
        })
    }
}

/// Serialized length of a routing JSON object.
fn json_len<T: serde::Serialize>(value: &T) -> Result<usize, BuildError> {
    serde_json::to_vec(value)
        .map(|v| v.len())
        .map_err(|e| BuildError::Framing(FramingError::InvalidJson(e.to_string())))
}
/// Builds an onion carrying a v4 `request` through `path` to an HTTP server; the last hop of the
/// path proxies it to `destination` at [`V4_TARGET`].
pub fn build_to_server<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &ServerDestination,
    request: &V4Request,
    enc_type: EncType,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    server_onion(
        path,
        destination,
        &request.encoding()?,
        |_| {},
        enc_type,
        rng,
    )
}

/// [`build_to_server`] for a request whose body is not held apart: `request` gives the method,
/// endpoint and headers (any body of its own is ignored), and `write_body` writes the
/// `body_len` bytes of the body into their place in the onion, so a large upload is held once,
/// as part of the onion itself.
pub fn build_to_server_writing_body<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &ServerDestination,
    (request, body_len): (&V4Request, usize),
    write_body: impl FnOnce(&mut [u8]),
    enc_type: EncType,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    let plaintext = request.encoding_written(body_len)?;
    server_onion(path, destination, &plaintext, write_body, enc_type, rng)
}

/// A server onion around the v4 `plaintext`; `write_body` writes its body where it lies if the
/// encoding leaves that to the caller.
fn server_onion<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &ServerDestination,
    plaintext: &Bencoded<'_>,
    write_body: impl FnOnce(&mut [u8]),
    enc_type: EncType,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    check_path(path)?;
    if !routing::is_valid_host(&destination.host) {
        return Err(BuildError::InvalidHost);
    }
    build_in_place(
        path,
        plaintext.len(),
        |out| {
            let body = plaintext.write(out);
            write_body(&mut out[body]);
        },
        &destination.x25519,
        &|ephemeral_key| {
            frame_json(&routing::ProxyOut {
                host: &destination.host,
                target: V4_TARGET,
                method: "POST",
                protocol: destination.protocol,
                port: destination
                    .port
                    .unwrap_or(destination.protocol.default_port()),
                ephemeral_key,
                enc_type,
            })
        },
        enc_type,
        rng,
    )
}

fn check_path(path: &[NodeKeys]) -> Result<(), BuildError> {
    if (1..=MAX_ONION_HOPS).contains(&path.len()) {
        Ok(())
    } else {
        Err(BuildError::PathLength(path.len()))
    }
}

/// One layer of an onion, planned before any byte is written: the key and nonce its plaintext
/// is encrypted with and the routing JSON framed after the ciphertext.
struct Planned {
    key: ResponseKey,
    nonce: [u8; MAX_NONCE_LEN],
    json: Vec<u8>,
    /// Length of the plaintext this layer encrypts.
    plaintext_len: usize,
}

/// Longest IV or nonce of any [`EncType`].
const MAX_NONCE_LEN: usize = 24;

/// Builds an onion in one buffer of the outer request's size, so that a large body is copied
/// once, into its place, whatever the number of hops (a 10 MB attachment used to be copied
/// and re-allocated for every layer).
///
/// The destination's plaintext (`inner_len` bytes, written by `write_inner`) is encrypted to
/// `destination` and framed with `destination_json(ephemeral key)`; then, innermost first,
/// hop `i - 1` is told to relay `Enc(hop i, layer i)` to hop `i`, and the guard's ciphertext
/// goes into the outer request. Each layer is encrypted where it lies, its length prefix and
/// nonce written in front (room left for them) and its tag and JSON after. Keys and nonces are
/// drawn from `rng` in the order of the layers, so a seeded `rng` gives the same bytes as
/// encrypting layer by layer.
fn build_in_place<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    inner_len: usize,
    write_inner: impl FnOnce(&mut [u8]),
    destination: &X25519Pub,
    destination_json: &dyn Fn(X25519Pub) -> Result<Vec<u8>, BuildError>,
    enc_type: EncType,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    let nonce_len = enc_type.nonce_len();
    let mut layers: Vec<Planned> = Vec::with_capacity(path.len() + 1);
    let mut len = inner_len;
    // Keys, nonces and sizes, innermost layer first: the outer length is known before the
    // buffer is allocated.
    let mut plan = |to: &X25519Pub,
                    json: &dyn Fn(X25519Pub) -> Result<Vec<u8>, BuildError>,
                    rng: &mut R|
     -> Result<(), BuildError> {
        let ephemeral = X25519Keypair::generate(rng);
        let key = ResponseKey::derive(enc_type, &ephemeral, to)?;
        let mut nonce = [0u8; MAX_NONCE_LEN];
        rng.fill_bytes(&mut nonce[..nonce_len]);
        let json = json(*ephemeral.public())?;
        let plaintext_len = len;
        len = frame_len(enc_type.ciphertext_len(plaintext_len), json.len())?;
        layers.push(Planned {
            key,
            nonce,
            json,
            plaintext_len,
        });
        Ok(())
    };
    plan(destination, destination_json, rng)?;
    for (index, hop) in path.iter().enumerate().rev() {
        plan(
            &hop.x25519,
            &|ephemeral_key| hop_json(index, hop, ephemeral_key, enc_type),
            rng,
        )?;
    }

    let mut body = vec![0u8; len];
    // The innermost plaintext starts after every layer's prefix and nonce.
    let mut start = layers.len() * (PREFIX_LEN + nonce_len);
    write_inner(&mut body[start..start + inner_len]);
    for layer in &layers {
        let ciphertext_len = enc_type.ciphertext_len(layer.plaintext_len);
        let sealed = start - nonce_len;
        layer.key.key().seal_in_place(
            &layer.nonce[..nonce_len],
            &mut body[sealed..sealed + ciphertext_len],
            layer.plaintext_len,
        )?;
        let prefix = sealed - PREFIX_LEN;
        body[prefix..sealed].copy_from_slice(&u32_len(ciphertext_len).to_le_bytes());
        let json = sealed + ciphertext_len;
        body[json..json + layer.json.len()].copy_from_slice(&layer.json);
        start = prefix;
    }
    let mut keys = layers.into_iter().map(|layer| layer.key);
    let response_key = keys.next().ok_or(BuildError::PathLength(path.len()))?;
    let mut hop_keys: Vec<ResponseKey> = keys.collect();
    hop_keys.reverse();
    Ok(BuiltOnion {
        body,
        response_key,
        hop_keys,
    })
}

/// The JSON framed after hop `index`'s ciphertext: the outer request's for the guard, else
/// the previous hop's instruction to relay it to `hop`.
fn hop_json(
    index: usize,
    hop: &NodeKeys,
    ephemeral_key: X25519Pub,
    enc_type: EncType,
) -> Result<Vec<u8>, BuildError> {
    if index == 0 {
        frame_json(&routing::OuterOut {
            ephemeral_key,
            enc_type,
        })
    } else {
        frame_json(&routing::Relay {
            destination: hop.ed25519,
            ephemeral_key,
            enc_type,
        })
    }
}

/// Length of a frame around a payload of `payload_len` bytes and a JSON of `json_len` bytes,
/// refused beyond [`MAX_ONION_SIZE`](super::MAX_ONION_SIZE) as [`encode_frame`] refuses it.
fn frame_len(payload_len: usize, json_len: usize) -> Result<usize, BuildError> {
    let len = PREFIX_LEN + payload_len + json_len;
    if len > super::MAX_ONION_SIZE {
        return Err(FramingError::TooLarge { len }.into());
    }
    Ok(len)
}

/// A payload length as the frame prefix holds it (below [`MAX_ONION_SIZE`](super::MAX_ONION_SIZE)
/// by [`frame_len`], so it fits).
fn u32_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The JSON object that ends a frame.
fn frame_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, BuildError> {
    Ok(super::framing::frame_json(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onion::peel::{decrypt_layer, parse_onion_request};
    use crate::onion::v4::{Headers, HttpMethod};
    use x25519_dalek::StaticSecret;

    fn node(n: u8) -> (X25519Keypair, NodeKeys) {
        let pair = X25519Keypair::from_secret(StaticSecret::from([n; 32]));
        let keys = NodeKeys {
            ed25519: Ed25519Pub::from_bytes([n ^ 0xee; 32]),
            x25519: *pair.public(),
        };
        (pair, keys)
    }

    /// Splits `LE32 || payload || json` into its parts, checking the prefix.
    fn split(layer: &[u8]) -> (&[u8], &str) {
        let n = u32::from_le_bytes(layer[..4].try_into().unwrap()) as usize;
        (
            &layer[4..4 + n],
            std::str::from_utf8(&layer[4 + n..]).unwrap(),
        )
    }

    #[test]
    fn node_onion_exact_layers() {
        let mut rng = rand_core::OsRng;
        let (guard_pair, guard) = node(1);
        let (dest_pair, dest) = node(2);
        let request = br#"{"method":"info","params":{}}"#;
        let built = build_to_node(&[guard], &dest, request, EncType::XChaCha20, &mut rng).unwrap();

        let outer = parse_onion_request(&built.body).unwrap();
        let (c1, json) = split(&built.body);
        assert_eq!(c1, outer.ciphertext);
        assert_eq!(
            json,
            format!(
                r#"{{"ephemeral_key":"{}","enc_type":"xchacha20"}}"#,
                outer.ephemeral_key
            )
        );

        let hop = outer.decrypt(&guard_pair).unwrap();
        let (cd, json) = split(hop.plaintext());
        let relay: routing::Relay = serde_json::from_str(json).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"destination":"{}","ephemeral_key":"{}","enc_type":"xchacha20"}}"#,
                dest.ed25519, relay.ephemeral_key
            )
        );
        assert_eq!(
            c1.len(),
            EncType::XChaCha20.ciphertext_len(4 + cd.len() + json.len())
        );

        let last = decrypt_layer(&dest_pair, cd, &relay.ephemeral_key, relay.enc_type).unwrap();
        let mut expected = vec![u8::try_from(request.len()).unwrap(), 0, 0, 0];
        expected.extend_from_slice(request);
        expected.extend_from_slice(br#"{"headers":""}"#);
        assert_eq!(last.plaintext(), expected);

        let reply = last.reply_key().encrypt(b"ok", &mut rng).unwrap();
        assert_eq!(built.response_key.decrypt(&reply).unwrap(), b"ok");
    }

    #[test]
    fn server_onion_exact_routing() {
        let mut rng = rand_core::OsRng;
        let (guard_pair, guard) = node(1);
        let server = ServerDestination {
            host: "example.org".to_owned(),
            protocol: ProxyProtocol::Https,
            port: None,
            x25519: node(3).1.x25519,
        };
        let request = V4Request::new(HttpMethod::Get, "/room/x", Headers::new(), None).unwrap();
        let built =
            build_to_server(&[guard], &server, &request, EncType::AesGcm, &mut rng).unwrap();
        let hop = parse_onion_request(&built.body)
            .unwrap()
            .decrypt(&guard_pair)
            .unwrap();
        let (_, json) = split(hop.plaintext());
        let at_server = parse_onion_request(hop.plaintext()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"host":"example.org","target":"/oxen/v4/lsrpc","method":"POST","protocol":"https","port":443,"ephemeral_key":"{}","enc_type":"aes-gcm"}}"#,
                at_server.ephemeral_key
            )
        );
    }

    /// Layer by layer, each a fresh buffer: how onions were built before [`build_in_place`].
    fn reference_onion(
        path: &[NodeKeys],
        destination: &X25519Pub,
        inner: &[u8],
        destination_json: &dyn Fn(X25519Pub) -> Vec<u8>,
        enc_type: EncType,
        rng: &mut rand::rngs::StdRng,
    ) -> Vec<u8> {
        let frame = |payload: &[u8], json: Vec<u8>| encode_frame_for_test(payload, &json);
        let ephemeral = X25519Keypair::generate(rng);
        let key = ResponseKey::derive(enc_type, &ephemeral, destination).unwrap();
        let blob = key.key().encrypt(inner, rng).unwrap();
        let mut layer = frame(&blob, destination_json(*ephemeral.public()));
        for (index, hop) in path.iter().enumerate().rev() {
            let ephemeral = X25519Keypair::generate(rng);
            let key = ResponseKey::derive(enc_type, &ephemeral, &hop.x25519).unwrap();
            let blob = key.key().encrypt(&layer, rng).unwrap();
            let ephemeral_key = *ephemeral.public();
            layer = frame(
                &blob,
                hop_json(index, hop, ephemeral_key, enc_type).unwrap(),
            );
        }
        layer
    }

    /// Built in one buffer, an onion has the very bytes the layer-by-layer construction gives
    /// for the same random draws: every cipher, 1 to 3 hops, node and server destinations.
    #[test]
    fn in_place_onions_equal_layer_by_layer_ones() {
        use crate::onion::v4::{Headers, HttpMethod};
        use rand::SeedableRng;
        let seeded = |seed| rand::rngs::StdRng::seed_from_u64(seed);
        let dest = node(9).1;
        let server = ServerDestination {
            host: "files.example".to_owned(),
            protocol: ProxyProtocol::Http,
            port: Some(8080),
            x25519: node(8).1.x25519,
        };
        let request = V4Request::new(
            HttpMethod::Post,
            "/file",
            Headers::new(),
            Some(vec![7u8; 100_003]),
        )
        .unwrap();
        for enc in [EncType::AesGcm, EncType::XChaCha20, EncType::AesCbc] {
            for hops in 1..=3u8 {
                let path: Vec<_> = (1..=hops).map(|n| node(n).1).collect();
                let payload = br#"{"method":"info","params":{}}"#;
                let built = build_to_node(&path, &dest, payload, enc, &mut seeded(1)).unwrap();
                let inner = encode_frame_for_test(payload, br#"{"headers":""}"#);
                let relay = |ephemeral_key| {
                    frame_json(&routing::Relay {
                        destination: dest.ed25519,
                        ephemeral_key,
                        enc_type: enc,
                    })
                    .unwrap()
                };
                let expected =
                    reference_onion(&path, &dest.x25519, &inner, &relay, enc, &mut seeded(1));
                assert!(built.body == expected, "node onion, {enc}, {hops} hops");

                let built = build_to_server(&path, &server, &request, enc, &mut seeded(2)).unwrap();
                let proxy = |ephemeral_key| {
                    frame_json(&routing::ProxyOut {
                        host: "files.example",
                        target: V4_TARGET,
                        method: "POST",
                        protocol: ProxyProtocol::Http,
                        port: 8080,
                        ephemeral_key,
                        enc_type: enc,
                    })
                    .unwrap()
                };
                let expected = reference_onion(
                    &path,
                    &server.x25519,
                    &request.encode().unwrap(),
                    &proxy,
                    enc,
                    &mut seeded(2),
                );
                assert!(built.body == expected, "server onion, {enc}, {hops} hops");
            }
        }
    }

    fn encode_frame_for_test(payload: &[u8], json: &[u8]) -> Vec<u8> {
        let mut out = u32_len(payload.len()).to_le_bytes().to_vec();
        out.extend_from_slice(payload);
        out.extend_from_slice(json);
        out
    }

    #[test]
    fn deterministic_with_seeded_rng() {
        use rand::SeedableRng;
        let path = [node(1).1, node(2).1];
        let build = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            build_to_node(&path, &node(3).1, b"{}", EncType::AesGcm, &mut rng)
                .unwrap()
                .body
        };
        assert_eq!(build(5), build(5));
        assert_ne!(build(5), build(6));
    }

    /// A body written into place makes the same onion as the same body held in the request,
    /// for the same random draws.
    #[test]
    fn a_body_written_in_place_makes_the_same_onion() {
        use rand::SeedableRng;
        let path = [node(1).1, node(2).1, node(4).1];
        let server = ServerDestination {
            host: "files.example".to_owned(),
            protocol: ProxyProtocol::Http,
            port: Some(8080),
            x25519: node(3).1.x25519,
        };
        let body: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let post = |body| {
            let mut headers = Headers::new();
            headers.insert("Content-Type".into(), "application/octet-stream".into());
            V4Request::new(HttpMethod::Post, "/file", headers, body).unwrap()
        };
        for enc_type in [EncType::AesGcm, EncType::XChaCha20] {
            let held = build_to_server(
                &path,
                &server,
                &post(Some(body.clone())),
                enc_type,
                &mut rand::rngs::StdRng::seed_from_u64(9),
            )
            .unwrap();
            let written = build_to_server_writing_body(
                &path,
                &server,
                (&post(None), body.len()),
                |out| out.copy_from_slice(&body),
                enc_type,
                &mut rand::rngs::StdRng::seed_from_u64(9),
            )
            .unwrap();
            assert!(held.body == written.body, "{enc_type:?}");
        }
    }

    /// A padded onion is exactly one class long for every request size, path length and cipher;
    /// the destination sees the `pad` field and pads its reply to a class.
    #[test]
    fn padded_onions_and_replies_fill_their_class() {
        use crate::onion::padding::{size_class, MIN_REPLY_CLASS, MIN_REQUEST_CLASS};
        use crate::onion::peel::{classify_layer, Layer};
        use crate::onion::response::{decode_snode_response, encode_snode_response, ReplyBody};
        let mut rng = rand_core::OsRng;
        let (dest_pair, dest) = node(9);
        for enc in [EncType::XChaCha20, EncType::AesGcm] {
            for hops in [1, 3] {
                let pairs: Vec<_> = (1..=hops).map(node).collect();
                let path: Vec<NodeKeys> = pairs.iter().map(|p| p.1).collect();
                for request_len in [0, 10, 1500, 3000, 5000, 70_000] {
                    let request = vec![b'x'; request_len];
                    let built = build_to_node_padded(
                        &path,
                        &dest,
                        &request,
                        enc,
                        MIN_REQUEST_CLASS,
                        &mut rng,
                    )
                    .unwrap();
                    let unpadded = build_to_node(&path, &dest, &request, enc, &mut rng).unwrap();
                    assert_eq!(
                        Some(built.body.len()),
                        size_class(unpadded.body.len() + 23 - 14, MIN_REQUEST_CLASS),
                        "{enc} {hops} hops, {request_len} bytes"
                    );
                    assert!(built.body.len().is_power_of_two());
                    assert_eq!(built.hop_keys.len(), hops as usize);
                    // Peel every hop down to the destination.
                    let mut layer = parse_onion_request(&built.body)
                        .unwrap()
                        .decrypt(&pairs[0].0)
                        .unwrap();
                    for pair in &pairs[1..] {
                        let Layer::Relay(relay) = classify_layer(layer.plaintext()).unwrap() else {
                            panic!("relay expected")
                        };
                        layer = decrypt_layer(
                            &pair.0,
                            relay.ciphertext,
                            &relay.ephemeral_key,
                            relay.enc_type,
                        )
                        .unwrap();
                    }
                    let Layer::Relay(relay) = classify_layer(layer.plaintext()).unwrap() else {
                        panic!("relay expected")
                    };
                    let last = decrypt_layer(
                        &dest_pair,
                        relay.ciphertext,
                        &relay.ephemeral_key,
                        relay.enc_type,
                    )
                    .unwrap();
                    let Layer::Final(request_in) = last.classify().unwrap() else {
                        panic!("final expected")
                    };
                    assert_eq!(request_in.request, request.as_slice());
                    assert!(request_in.format.pad);
                    // The padded reply fills its class and still decodes.
                    for body in ["", &"y".repeat(20_000)] {
                        let reply = encode_snode_response(
                            last.reply_key(),
                            200,
                            ReplyBody::Text(body),
                            request_in.format,
                            &mut rng,
                        )
                        .unwrap();
                        assert!(
                            reply.len() >= MIN_REPLY_CLASS && reply.len().is_power_of_two(),
                            "{}",
                            reply.len()
                        );
                        let decoded = decode_snode_response(&built.response_key, &reply).unwrap();
                        assert_eq!(
                            (decoded.status, decoded.body),
                            (200, crate::onion::SnodeBody::Text(body.to_owned()))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn hop_errors_open_with_their_hops_key_only() {
        use crate::onion::peel::{classify_layer, Layer};
        use crate::onion::response::{encode_hop_error, open_hop_error};
        let mut rng = rand_core::OsRng;
        let pairs: Vec<_> = (1..=3).map(node).collect();
        let path: Vec<NodeKeys> = pairs.iter().map(|p| p.1).collect();
        let built =
            build_to_node_padded(&path, &node(9).1, b"{}", EncType::XChaCha20, 4096, &mut rng)
                .unwrap();
        let mut layers = vec![parse_onion_request(&built.body)
            .unwrap()
            .decrypt(&pairs[0].0)
            .unwrap()];
        for pair in &pairs[1..] {
            let next = {
                let Layer::Relay(relay) =
                    classify_layer(layers.last().unwrap().plaintext()).unwrap()
                else {
                    panic!("relay expected")
                };
                decrypt_layer(
                    &pair.0,
                    relay.ciphertext,
                    &relay.ephemeral_key,
                    relay.enc_type,
                )
                .unwrap()
            };
            layers.push(next);
        }
        for (index, layer) in layers.iter().enumerate() {
            let text = format!("Next node not found: hop {index}");
            let body = encode_hop_error(layer.reply_key(), 502, &text, &mut rng).unwrap();
            assert_eq!(body.len(), crate::onion::padding::MIN_REPLY_CLASS);
            assert!(!String::from_utf8_lossy(&body).contains("Next node"));
            let (hop, reply) = open_hop_error(&built.hop_keys, &body).unwrap();
            assert_eq!((hop, reply.status), (index, 502));
            assert_eq!(reply.body, crate::onion::SnodeBody::Text(text));
            // Any changed byte: nobody's error.
            let mut tampered = body.clone();
            tampered[100] = if tampered[100] == b'A' { b'B' } else { b'A' };
            assert!(open_hop_error(&built.hop_keys, &tampered).is_none());
        }
        assert!(open_hop_error(&built.hop_keys, b"Next node not found: 00").is_none());
    }

    #[test]
    fn rejects_bad_input() {
        let mut rng = rand_core::OsRng;
        let (_, hop) = node(1);
        for len in [0, MAX_ONION_HOPS + 1] {
            assert_eq!(
                build_to_node(&vec![hop; len], &hop, b"{}", EncType::AesGcm, &mut rng).unwrap_err(),
                BuildError::PathLength(len)
            );
        }
        assert!(build_to_node(
            &[hop; MAX_ONION_HOPS],
            &hop,
            b"{}",
            EncType::AesGcm,
            &mut rng
        )
        .is_ok());
        let server = ServerDestination {
            host: "evil.org/x?".to_owned(),
            protocol: ProxyProtocol::Http,
            port: Some(8080),
            x25519: hop.x25519,
        };
        let request = V4Request::new(HttpMethod::Get, "/", Headers::new(), None).unwrap();
        assert_eq!(
            build_to_server(&[hop], &server, &request, EncType::AesGcm, &mut rng).unwrap_err(),
            BuildError::InvalidHost
        );
        let weak = NodeKeys {
            ed25519: hop.ed25519,
            x25519: X25519Pub::from_bytes([0; 32]),
        };
        assert_eq!(
            build_to_node(&[hop], &weak, b"{}", EncType::AesGcm, &mut rng).unwrap_err(),
            BuildError::Cipher(CipherError::WeakSharedSecret)
        );
    }
}
