//! Property tests: onions built by the client peel correctly at every hop, replies come back,
//! and every parser turns garbage into an error rather than a panic.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::json;
use shallot_proto::onion::{
    build_to_node, build_to_server, classify_layer, decode_snode_response, decrypt_layer,
    encode_snode_response, parse_frame, parse_onion_request, BuiltOnion, DecryptedLayer, EncType,
    Headers, HttpMethod, Layer, NodeKeys, PeelError, ProxyProtocol, ReplyBody, ResponseKey,
    ServerDestination, SnodeBody, V4Request, V4Response, X25519Keypair, MAX_ONION_HOPS,
};
use shallot_proto::{b64, Ed25519Pub};

/// A simulated service node: its secret key and what clients know about it.
struct Node {
    pair: X25519Keypair,
    keys: NodeKeys,
}

fn make_node(rng: &mut StdRng) -> Node {
    let pair = X25519Keypair::generate(rng);
    let mut ed = [0u8; 32];
    rng.fill_bytes(&mut ed);
    let keys = NodeKeys {
        ed25519: Ed25519Pub::from_bytes(ed),
        x25519: *pair.public(),
    };
    Node { pair, keys }
}

fn enc_type() -> impl Strategy<Value = EncType> {
    prop_oneof![Just(EncType::AesGcm), Just(EncType::XChaCha20)]
}

/// Classifies `layer`, which must tell its node to relay to `next`, and decrypts the next layer
/// as `next` would.
fn relay_to(
    layer: &DecryptedLayer,
    next: &Node,
    enc: EncType,
) -> Result<DecryptedLayer, TestCaseError> {
    match layer.classify().map_err(fail)? {
        Layer::Relay(relay) => {
            prop_assert_eq!(relay.destination, next.keys.ed25519);
            prop_assert_eq!(relay.enc_type, enc);
            decrypt_layer(
                &next.pair,
                relay.ciphertext,
                &relay.ephemeral_key,
                relay.enc_type,
            )
            .map_err(fail)
        }
        other => Err(TestCaseError::fail(format!(
            "expected a relay, got {other:?}"
        ))),
    }
}

/// Peels the path hop by hop, checking that each relay is told the right next node, and returns
/// the last hop's decrypted layer.
fn peel_path(
    built: &BuiltOnion,
    path: &[Node],
    enc: EncType,
) -> Result<DecryptedLayer, TestCaseError> {
    let outer = parse_onion_request(&built.body).map_err(fail)?;
    prop_assert_eq!(outer.enc_type, enc);
    let mut layer = outer.decrypt(&path[0].pair).map_err(fail)?;
    for next in &path[1..] {
        layer = relay_to(&layer, next, enc)?;
    }
    Ok(layer)
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn build_peel_reply_round_trip(
        hops in 1..=MAX_ONION_HOPS,
        enc in enc_type(),
        len in 0usize..=64 * 1024,
        to_server in any::<bool>(),
        json_reply in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut payload = vec![0u8; len];
        rng.fill_bytes(&mut payload);
        let path: Vec<Node> = (0..hops).map(|_| make_node(&mut rng)).collect();
        let path_keys: Vec<NodeKeys> = path.iter().map(|n| n.keys).collect();
        let dest = make_node(&mut rng);

        if to_server {
            let server = ServerDestination {
                host: "sogs.example".to_owned(),
                protocol: ProxyProtocol::Http,
                port: Some(8080),
                x25519: dest.keys.x25519,
            };
            let request =
                V4Request::new(HttpMethod::Post, "/room/r/message", Headers::new(), Some(payload))
                    .map_err(fail)?;
            let built = build_to_server(&path_keys, &server, &request, enc, &mut rng).map_err(fail)?;
            let last = peel_path(&built, &path, enc)?;
            let Layer::Proxy(proxy) = last.classify().map_err(fail)? else {
                return Err(TestCaseError::fail("last hop should proxy"));
            };
            prop_assert_eq!(proxy.url().map_err(fail)?, "http://sogs.example:8080/oxen/v4/lsrpc");
            prop_assert_eq!(proxy.payload, last.plaintext());

            // The server re-parses the layer the node POSTs to it.
            let at_server = parse_onion_request(proxy.payload)
                .map_err(fail)?
                .decrypt(&dest.pair)
                .map_err(fail)?;
            prop_assert_eq!(&V4Request::parse(at_server.plaintext()).map_err(fail)?, &request);

            let response = V4Response {
                code: 201,
                headers: Headers::from([("content-type".to_owned(), "text/plain".to_owned())]),
                body: request.body().unwrap_or_default().iter().rev().copied().collect(),
            };
            let sealed = response.seal(at_server.reply_key(), &mut rng).map_err(fail)?;
            prop_assert_eq!(&V4Response::open(&built.response_key, &sealed).map_err(fail)?, &response);
        } else {
            let built = build_to_node(&path_keys, &dest.keys, &payload, enc, &mut rng).map_err(fail)?;
            let at_dest = relay_to(&peel_path(&built, &path, enc)?, &dest, enc)?;
            let Layer::Final(request) = at_dest.classify().map_err(fail)? else {
                return Err(TestCaseError::fail("destination should execute"));
            };
            prop_assert_eq!(request.request, payload.as_slice());

            let result = json!({"len": len, "hops": hops});
            let text = format!("{len} bytes");
            let body = if json_reply { ReplyBody::Json(&result) } else { ReplyBody::Text(&text) };
            let reply = encode_snode_response(at_dest.reply_key(), 200, body, request.format, &mut rng)
                .map_err(fail)?;
            let decoded = decode_snode_response(&built.response_key, &reply).map_err(fail)?;
            prop_assert_eq!(decoded.status, 200);
            let expected = if json_reply { result.to_string() } else { text };
            prop_assert_eq!(decoded.body, SnodeBody::Text(expected));
        }
    }

    #[test]
    fn corrupted_onions_fail_at_the_guard(
        enc in enc_type(),
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let guard = make_node(&mut rng);
        let dest = make_node(&mut rng);
        let built = build_to_node(&[guard.keys], &dest.keys, b"{}", enc, &mut rng).map_err(fail)?;
        let body = &built.body;

        let truncated = &body[..cut.index(body.len())];
        prop_assert!(parse_onion_request(truncated).and_then(|r| r.decrypt(&guard.pair)).is_err());

        // Flipping bits anywhere must not panic; inside the ciphertext it must fail to decrypt.
        let pos = flip.index(body.len());
        let mut flipped = body.clone();
        flipped[pos] ^= mask;
        let result = parse_onion_request(&flipped).and_then(|r| r.decrypt(&guard.pair));
        let ct_len = parse_onion_request(body).map_err(fail)?.ciphertext.len();
        if (4..4 + ct_len).contains(&pos) {
            prop_assert_eq!(result.unwrap_err(), PeelError::InvalidCiphertext);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..512), seed in any::<u64>()) {
        let _ = parse_frame(&data);
        let _ = parse_onion_request(&data);
        let _ = classify_layer(&data);
        let _ = V4Request::parse(&data);
        let _ = V4Response::parse(&data);

        let mut rng = StdRng::seed_from_u64(seed);
        let node = make_node(&mut rng);
        let client = X25519Keypair::generate(&mut rng);
        for enc in [EncType::AesGcm, EncType::XChaCha20] {
            prop_assert!(decrypt_layer(&node.pair, &data, client.public(), enc).is_err());
            let key = ResponseKey::derive(enc, &client, &node.keys.x25519).map_err(fail)?;
            prop_assert!(V4Response::open(&key, &data).is_err());
            prop_assert!(decode_snode_response(&key, &data).is_err());
            prop_assert!(decode_snode_response(&key, b64::encode(&data).as_bytes()).is_err());
        }
        // CBC has no authentication: random data has valid padding 1 time in ~256, so only
        // require that it does not panic.
        let _ = decrypt_layer(&node.pair, &data, client.public(), EncType::AesCbc);
    }

    #[test]
    fn framed_prefixes_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
        declared in any::<u32>(),
    ) {
        let mut framed = (u32::try_from(payload.len()).map_err(fail)?).to_le_bytes().to_vec();
        framed.extend_from_slice(&payload);
        framed.extend_from_slice(br#"{"headers":"","json":true}"#);
        prop_assert!(classify_layer(&framed).is_ok());
        let _ = classify_layer(&framed[..cut.index(framed.len())]);
        framed[..4].copy_from_slice(&declared.to_le_bytes());
        let _ = parse_frame(&framed);
        let _ = classify_layer(&framed);
    }
}
