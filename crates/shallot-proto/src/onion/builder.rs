//! The client side (onion-client spec §2.5): wrap a request in one encrypted layer per hop, each
//! with a fresh ephemeral X25519 key, and keep the destination layer's key to read the reply.

use rand_core::CryptoRngCore;

use super::cipher::{CipherError, EncType, HopKey, ResponseKey, Role, X25519Keypair};
use super::framing::{encode_frame, FramingError};
use super::routing::{self, ProxyProtocol, V4_TARGET};
use super::v4::{V4Error, V4Request};
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
}

/// Builds an onion carrying a storage RPC `request` (UTF-8 JSON `{"method", "params"}`) through
/// `path` to the service node `destination` (which is not itself part of `path`).
pub fn build_to_node<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    destination: &NodeKeys,
    request: &[u8],
    enc_type: EncType,
    rng: &mut R,
) -> Result<BuiltOnion, BuildError> {
    check_path(path)?;
    let inner = encode_frame(request, &routing::FinalOut { headers: "" })?;
    let (blob, ephemeral, response_key) = seal_for(&destination.x25519, &inner, enc_type, rng)?;
    let last = encode_frame(
        &blob,
        &routing::Relay {
            destination: destination.ed25519,
            ephemeral_key: ephemeral,
            enc_type,
        },
    )?;
    let body = wrap_path(path, last, enc_type, rng)?;
    Ok(BuiltOnion { body, response_key })
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
    check_path(path)?;
    if !routing::is_valid_host(&destination.host) {
        return Err(BuildError::InvalidHost);
    }
    let (blob, ephemeral, response_key) =
        seal_for(&destination.x25519, &request.encode()?, enc_type, rng)?;
    let last = encode_frame(
        &blob,
        &routing::ProxyOut {
            host: &destination.host,
            target: V4_TARGET,
            method: "POST",
            protocol: destination.protocol,
            port: destination
                .port
                .unwrap_or(destination.protocol.default_port()),
            ephemeral_key: ephemeral,
            enc_type,
        },
    )?;
    let body = wrap_path(path, last, enc_type, rng)?;
    Ok(BuiltOnion { body, response_key })
}

fn check_path(path: &[NodeKeys]) -> Result<(), BuildError> {
    if (1..=MAX_ONION_HOPS).contains(&path.len()) {
        Ok(())
    } else {
        Err(BuildError::PathLength(path.len()))
    }
}

/// Encrypts the destination layer with a fresh ephemeral key; returns the ciphertext, the
/// ephemeral public key and the reply key.
fn seal_for<R: CryptoRngCore + ?Sized>(
    destination: &X25519Pub,
    plaintext: &[u8],
    enc_type: EncType,
    rng: &mut R,
) -> Result<(Vec<u8>, X25519Pub, ResponseKey), BuildError> {
    let ephemeral = X25519Keypair::generate(rng);
    let response_key = ResponseKey::derive(enc_type, &ephemeral, destination)?;
    let blob = response_key.key().encrypt(plaintext, rng)?;
    Ok((blob, *ephemeral.public(), response_key))
}

/// Wraps the last hop's plaintext `layer` in one encrypted layer per hop, innermost first: hop
/// `i - 1` is told to relay `Enc(hop i, layer i)` to hop `i`, and the guard's ciphertext goes into
/// the outer request.
fn wrap_path<R: CryptoRngCore + ?Sized>(
    path: &[NodeKeys],
    mut layer: Vec<u8>,
    enc_type: EncType,
    rng: &mut R,
) -> Result<Vec<u8>, BuildError> {
    for (index, hop) in path.iter().enumerate().rev() {
        let ephemeral = X25519Keypair::generate(rng);
        let key = HopKey::derive(enc_type, &ephemeral, &hop.x25519, Role::Requester)?;
        let blob = key.encrypt(&layer, rng)?;
        let ephemeral_key = *ephemeral.public();
        layer = if index == 0 {
            encode_frame(
                &blob,
                &routing::OuterOut {
                    ephemeral_key,
                    enc_type,
                },
            )?
        } else {
            encode_frame(
                &blob,
                &routing::Relay {
                    destination: hop.ed25519,
                    ephemeral_key,
                    enc_type,
                },
            )?
        };
    }
    Ok(layer)
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
