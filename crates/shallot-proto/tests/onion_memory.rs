//! A large body costs one more copy of itself to send through an onion, and none to receive:
//! peak heap measured with a counting allocator (this binary's own, so no other test is
//! affected). Before onions were built in place a 10 MB body cost about four more copies.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use peak_alloc::PeakAlloc;
use rand::SeedableRng;
use shallot_proto::onion::{
    build_to_server, classify_layer, decrypt_layer, parse_onion_request, EncType, Headers,
    HttpMethod, Layer, NodeKeys, ProxyProtocol, ServerDestination, V4Request, V4Response,
    X25519Keypair,
};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Heap bytes above the live bytes at the start, at the peak while `work` runs; and its result.
fn peak_during<T>(work: impl FnOnce() -> T) -> (usize, T) {
    ALLOCATOR.reset_peak_usage();
    let baseline = ALLOCATOR.current_usage();
    let result = work();
    (ALLOCATOR.peak_usage().saturating_sub(baseline), result)
}

/// A node's X25519 keypair and the keys a client routes to it by.
fn node(rng: &mut rand::rngs::StdRng) -> (X25519Keypair, NodeKeys) {
    let onion = X25519Keypair::generate(rng);
    let identity = shallot_proto::Identity::generate(rng);
    let keys = NodeKeys {
        ed25519: identity.ed25519_public(),
        x25519: *onion.public(),
    };
    (onion, keys)
}

/// Just under 10 MB, as an encrypted 10 MB attachment is (and within the 10 MiB onion limit).
const BODY: usize = 10_000_000;

#[test]
fn a_ten_megabyte_body_is_copied_once_into_a_three_hop_onion_and_not_at_all_out_of_a_reply() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let hops: Vec<_> = (0..3).map(|_| node(&mut rng)).collect();
    let path: Vec<NodeKeys> = hops.iter().map(|(_, keys)| *keys).collect();
    let (server_pair, server_keys) = node(&mut rng);
    let server = ServerDestination {
        host: "files.example".to_owned(),
        protocol: ProxyProtocol::Http,
        port: None,
        x25519: server_keys.x25519,
    };
    let request = V4Request::new(
        HttpMethod::Post,
        "/file",
        Headers::new(),
        Some(vec![0x5a; BODY]),
    )
    .unwrap();

    for enc in [EncType::AesGcm, EncType::XChaCha20, EncType::AesCbc] {
        let (extra, built) =
            peak_during(|| build_to_server(&path, &server, &request, enc, &mut rng).unwrap());
        assert!(
            extra < BODY * 12 / 10,
            "{enc}: building took {extra} bytes beyond the {BODY}-byte body"
        );

        // The onion reaches the server intact (the guard's layer, then each relay's).
        let mut layer = parse_onion_request(&built.body)
            .unwrap()
            .decrypt(&hops[0].0)
            .unwrap();
        let mut next = 1;
        let plaintext = loop {
            match classify_layer(layer.plaintext()).unwrap() {
                Layer::Relay(relay) => {
                    layer = decrypt_layer(
                        &hops[next].0,
                        relay.ciphertext,
                        &relay.ephemeral_key,
                        relay.enc_type,
                    )
                    .unwrap();
                    next += 1;
                }
                Layer::Proxy(proxy) => {
                    break parse_onion_request(proxy.payload)
                        .unwrap()
                        .decrypt(&server_pair)
                        .unwrap()
                }
                Layer::Final(_) => panic!("{enc}: the server onion ended at a node"),
            }
        };
        assert_eq!(next, 3, "{enc}: every hop peeled one layer");
        let at_server = V4Request::parse(plaintext.plaintext()).unwrap();
        assert!(at_server.body() == request.body(), "{enc}: body changed");

        // A 10 MB reply: decrypted and its body handed out in the buffer it arrived in.
        let reply = V4Response {
            code: 200,
            headers: Headers::new(),
            body: vec![0xa5; BODY],
        }
        .seal(plaintext.reply_key(), &mut rng)
        .unwrap();
        drop((layer, plaintext, at_server, built.body));
        let (extra, opened) =
            peak_during(|| V4Response::open_owned(&built.response_key, reply).unwrap());
        assert!(
            extra < BODY / 10,
            "{enc}: opening took {extra} bytes beyond the reply"
        );
        assert_eq!(opened.code, 200);
        assert!(opened.body == vec![0xa5; BODY], "{enc}: reply body changed");
    }
}
