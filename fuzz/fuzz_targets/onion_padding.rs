//! Padded onions and encrypted hop errors: (a) arbitrary bytes as the body a client gets back
//! from its guard never panic `open_hop_error` and never open (only a hop's AEAD key can make
//! one); (b) an onion built padded from an arbitrary request is exactly one size class long and
//! its destination sees the request and the `pad` flag; (c) a padded reply with an arbitrary
//! text body fills its class and decodes to the same status and body.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shallot_proto::onion::padding::{size_class, MIN_REPLY_CLASS, MIN_REQUEST_CLASS};
use shallot_proto::onion::{
    build_to_node, build_to_node_padded, classify_layer, decode_snode_response, decrypt_layer,
    encode_snode_response, open_hop_error, parse_onion_request, EncType, Layer, NodeKeys,
    ReplyBody, ReplyFormat, ResponseKey, SnodeBody, X25519Keypair,
};
use shallot_proto::Ed25519Pub;

/// Three hops and a destination with fixed keys.
static NODES: LazyLock<Vec<(X25519Keypair, NodeKeys)>> = LazyLock::new(|| {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9ad);
    (0u8..4)
        .map(|i| {
            let pair = X25519Keypair::generate(&mut rng);
            let keys = NodeKeys {
                ed25519: Ed25519Pub::from_bytes([i + 1; 32]),
                x25519: *pair.public(),
            };
            (pair, keys)
        })
        .collect()
});

/// Hop keys of one fixed onion, as a client holds them.
static HOP_KEYS: LazyLock<Vec<ResponseKey>> = LazyLock::new(|| {
    let path: Vec<NodeKeys> = NODES[..3].iter().map(|n| n.1).collect();
    build_to_node(&path, &NODES[3].1, b"{}", EncType::XChaCha20, &mut rand::rngs::OsRng)
        .expect("a valid onion")
        .hop_keys
});

fuzz_target!(|data: &[u8]| {
    // (a) Never opens, never panics.
    assert!(open_hop_error(&HOP_KEYS, data).is_none());

    let Some((&selector, request)) = data.split_first() else {
        return;
    };
    let enc = if selector & 1 == 0 {
        EncType::XChaCha20
    } else {
        EncType::AesGcm
    };
    let hops = usize::from(selector >> 1) % 3 + 1;
    let path: Vec<NodeKeys> = NODES[..hops].iter().map(|n| n.1).collect();
    let destination = &NODES[3];

    // (b) Exactly one class long; the destination gets the request and the pad flag.
    let built = build_to_node_padded(
        &path,
        &destination.1,
        request,
        enc,
        MIN_REQUEST_CLASS,
        &mut rand::rngs::OsRng,
    )
    .expect("a request of fuzzer size fits");
    let class = size_class(built.body.len(), MIN_REQUEST_CLASS).unwrap();
    assert_eq!(built.body.len(), class);
    assert_eq!(built.hop_keys.len(), hops);
    let mut layer = parse_onion_request(&built.body)
        .unwrap()
        .decrypt(&NODES[0].0)
        .unwrap();
    for (pair, _) in NODES[1..hops].iter().chain(std::iter::once(destination)) {
        let next = match classify_layer(layer.plaintext()).unwrap() {
            Layer::Relay(r) => {
                decrypt_layer(pair, r.ciphertext, &r.ephemeral_key, r.enc_type).unwrap()
            }
            _ => panic!("relay expected"),
        };
        layer = next;
    }
    let format = match layer.classify().unwrap() {
        Layer::Final(fin) => {
            assert_eq!(fin.request, request);
            assert!(fin.format.pad);
            fin.format
        }
        _ => panic!("final expected"),
    };

    // (c) A padded reply fills its class and decodes to what was sent.
    let text = String::from_utf8_lossy(request);
    for format in [format, ReplyFormat { base64: false, ..format }] {
        let reply = encode_snode_response(
            layer.reply_key(),
            200,
            ReplyBody::Text(&text),
            format,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        assert_eq!(Some(reply.len()), size_class(reply.len(), MIN_REPLY_CLASS));
        assert!(reply.len() >= MIN_REPLY_CLASS);
        if format.base64 {
            let decoded = decode_snode_response(&built.response_key, &reply).unwrap();
            assert_eq!(decoded.status, 200);
            assert_eq!(decoded.body, SnodeBody::Text(text.clone().into_owned()));
        }
    }
});
