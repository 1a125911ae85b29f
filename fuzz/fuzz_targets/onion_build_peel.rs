//! Structured round trip: build a valid onion from an arbitrary request, path length (1–15),
//! cipher and destination, then peel it hop by hop exactly as the nodes would. Every hop must
//! see a relay to the next hop, the destination must get the request back byte for byte, the
//! reply must open with the client's response key, and a flipped ciphertext byte must be
//! rejected by the AEAD ciphers.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use shallot_proto::onion::{
    build_to_node, build_to_server, decrypt_layer, parse_onion_request, BuildError, BuiltOnion,
    DecryptedLayer, EncType, Headers, HttpMethod, Layer, NodeKeys, PeelError, ProxyProtocol,
    ReplyFormat, ServerDestination, V4Request, V4Response, X25519Keypair, MAX_ONION_HOPS,
    V4_TARGET,
};
use shallot_proto::Ed25519Pub;

/// A fixed pool of nodes (path hops and destinations), so that each run only pays for the
/// ephemeral keys the builder itself generates.
static NODES: LazyLock<Vec<(X25519Keypair, NodeKeys)>> = LazyLock::new(|| {
    let mut rng = StdRng::seed_from_u64(0x0710);
    (0..=MAX_ONION_HOPS)
        .map(|_| {
            let pair = X25519Keypair::generate(&mut rng);
            let mut ed = [0u8; 32];
            rng.fill_bytes(&mut ed);
            let keys = NodeKeys {
                ed25519: Ed25519Pub::from_bytes(ed),
                x25519: *pair.public(),
            };
            (pair, keys)
        })
        .collect()
});

#[derive(Debug, Arbitrary)]
enum Cipher {
    AesGcm,
    XChaCha20,
    AesCbc,
}

#[derive(Debug, Arbitrary)]
enum Destination {
    /// A storage RPC request for a service node.
    Node { request: Vec<u8> },
    /// A v4 request proxied by the last hop to an HTTP server.
    Server {
        host: Host,
        https: bool,
        port: Option<u16>,
        method: u8,
        endpoint: String,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    },
}

#[derive(Debug, Arbitrary)]
enum Host {
    Name,
    Ipv4,
    Ipv6,
    Any(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    hops: u8,
    cipher: Cipher,
    destination: Destination,
    reply: Vec<u8>,
    seed: u64,
    /// Byte to flip in the guard's ciphertext (index, non-zero xor mask after `| 1`).
    tamper: Option<(u16, u8)>,
}

fuzz_target!(|input: Input| run(&input));

fn run(input: &Input) {
    let hops = usize::from(input.hops) % MAX_ONION_HOPS + 1;
    let enc_type = match input.cipher {
        Cipher::AesGcm => EncType::AesGcm,
        Cipher::XChaCha20 => EncType::XChaCha20,
        Cipher::AesCbc => EncType::AesCbc,
    };
    let mut rng = StdRng::seed_from_u64(input.seed);
    let path: Vec<NodeKeys> = NODES[..hops].iter().map(|(_, keys)| *keys).collect();
    let (dest_pair, dest_keys) = &NODES[MAX_ONION_HOPS];

    // Build.
    let (built, server_request) = match &input.destination {
        Destination::Node { request } => {
            let built = build_to_node(&path, dest_keys, request, enc_type, &mut rng)
                .expect("a node onion within limits builds");
            (built, None)
        }
        Destination::Server { .. } => {
            let Some((built, destination, request)) =
                build_server(&input.destination, &path, enc_type, &mut rng)
            else {
                return;
            };
            (built, Some((destination, request)))
        }
    };

    // The guard parses the outer request.
    let outer = parse_onion_request(&built.body).expect("the guard parses a built onion");
    assert_eq!(outer.enc_type, enc_type);
    assert_eq!(outer.hop_no, 0);

    if let Some((index, mask)) = input.tamper {
        if enc_type != EncType::AesCbc && !outer.ciphertext.is_empty() {
            let mut tampered = outer.ciphertext.to_vec();
            let at = usize::from(index) % tampered.len();
            tampered[at] ^= mask | 1;
            assert_eq!(
                decrypt_layer(&NODES[0].0, &tampered, &outer.ephemeral_key, enc_type).unwrap_err(),
                PeelError::InvalidCiphertext
            );
        }
    }

    // Peel hop by hop: hop i relays to hop i + 1, the last hop to the destination.
    let mut layer = outer.decrypt(&NODES[0].0).expect("the guard decrypts");
    check_len(outer.ciphertext, &layer, enc_type);
    for i in 0..hops {
        let is_last = i + 1 == hops;
        let next = match layer.classify().expect("every hop classifies its layer") {
            Layer::Relay(relay) if !is_last || server_request.is_none() => {
                let (next_pair, next_keys) = if is_last {
                    (dest_pair, dest_keys)
                } else {
                    (&NODES[i + 1].0, &NODES[i + 1].1)
                };
                assert_eq!(relay.destination, next_keys.ed25519);
                assert_eq!(relay.enc_type, enc_type);
                let next = decrypt_layer(
                    next_pair,
                    relay.ciphertext,
                    &relay.ephemeral_key,
                    relay.enc_type,
                )
                .expect("the next hop decrypts");
                check_len(relay.ciphertext, &next, enc_type);
                next
            }
            Layer::Proxy(proxy) if is_last => {
                let (destination, request) = server_request.as_ref().unwrap();
                assert_eq!(proxy.host, destination.host);
                assert_eq!(proxy.protocol, destination.protocol);
                assert_eq!(
                    proxy.port,
                    destination
                        .port
                        .unwrap_or(destination.protocol.default_port())
                );
                assert_eq!(proxy.target, V4_TARGET);
                assert!(proxy.url().is_ok());
                // The server parses the proxied layer like an outer request.
                let at_server = parse_onion_request(proxy.payload).expect("the server parses");
                assert_eq!(at_server.enc_type, enc_type);
                let opened = at_server.decrypt(dest_pair).expect("the server decrypts");
                check_len(at_server.ciphertext, &opened, enc_type);
                assert_eq!(
                    V4Request::parse(opened.plaintext()).as_ref(),
                    Ok(request),
                    "the v4 request survives the path"
                );
                check_v4_reply(&opened, &built.response_key, &input.reply, &mut rng);
                return;
            }
            other => panic!("hop {i} of {hops}: unexpected layer {other:?}"),
        };
        layer = next;
    }

    // The destination node.
    let Destination::Node { request } = &input.destination else {
        unreachable!("server onions return above");
    };
    match layer.classify().expect("the destination classifies") {
        Layer::Final(fin) => {
            assert_eq!(fin.request, request.as_slice());
            assert_eq!(fin.format, ReplyFormat::default());
        }
        other => panic!("destination got {other:?}"),
    }
    let sealed = layer
        .reply_key()
        .encrypt(&input.reply, &mut rng)
        .expect("the reply encrypts");
    assert_eq!(
        built
            .response_key
            .decrypt(&sealed)
            .expect("the reply opens"),
        input.reply
    );
}

/// Builds an onion to an HTTP server; `None` when the arbitrary host is (rightly) refused.
fn build_server(
    destination: &Destination,
    path: &[NodeKeys],
    enc_type: EncType,
    rng: &mut StdRng,
) -> Option<(BuiltOnion, ServerDestination, V4Request)> {
    let Destination::Server {
        host,
        https,
        port,
        method,
        endpoint,
        headers,
        body,
    } = destination
    else {
        unreachable!("only called for server destinations");
    };
    let dest_keys = &NODES[MAX_ONION_HOPS].1;
    let methods = [
        HttpMethod::Get,
        HttpMethod::Head,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
        HttpMethod::Options,
    ];
    let method = methods[usize::from(*method) % methods.len()];
    let headers: Headers = headers.iter().cloned().collect();
    // Invalid requests are the bencode_v4 target's business: make this one valid.
    let endpoint = if endpoint.starts_with('/') {
        endpoint.clone()
    } else {
        format!("/{endpoint}")
    };
    let body = body.clone().filter(|_| method.allows_body());
    let request = V4Request::new(method, endpoint, headers, body).expect("a valid v4 request");
    let destination = ServerDestination {
        host: match host {
            Host::Name => "open.example.org".to_owned(),
            Host::Ipv4 => "10.1.2.3".to_owned(),
            Host::Ipv6 => "[fe80::1]".to_owned(),
            Host::Any(text) => text.clone(),
        },
        protocol: if *https {
            ProxyProtocol::Https
        } else {
            ProxyProtocol::Http
        },
        port: *port,
        x25519: dest_keys.x25519,
    };
    match build_to_server(path, &destination, &request, enc_type, rng) {
        Ok(built) => Some((built, destination, request)),
        Err(BuildError::InvalidHost) => {
            assert!(matches!(host, Host::Any(_)), "fixed hosts are valid");
            None
        }
        Err(err) => panic!("build_to_server failed: {err:?}"),
    }
}

fn check_v4_reply(
    opened: &DecryptedLayer,
    response_key: &shallot_proto::onion::ResponseKey,
    body: &[u8],
    rng: &mut StdRng,
) {
    let response = V4Response {
        code: 200,
        headers: Headers::from([("content-type".to_owned(), "text/plain".to_owned())]),
        body: body.to_vec(),
    };
    let sealed = response
        .seal(opened.reply_key(), rng)
        .expect("the reply seals");
    assert_eq!(V4Response::open(response_key, &sealed), Ok(response));
}

/// A decrypted layer is exactly as long as its cipher's layout says.
fn check_len(ciphertext: &[u8], layer: &DecryptedLayer, enc_type: EncType) {
    assert_eq!(
        ciphertext.len(),
        enc_type.ciphertext_len(layer.plaintext().len())
    );
}
