//! Onion hop-encryption and layer-classification vectors (`vectors/onion-hop.json`).

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use shallot_proto::onion::{
    classify_layer, is_proxy_target_allowed, parse_onion_request, shared_secret, CipherError,
    EncType, HopKey, Layer, PeelError, ReplyFormat, ResponseKey, Role, X25519Keypair,
};
use x25519_dalek::StaticSecret;

const VECTORS: &str = include_str!("vectors/onion-hop.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("vector file is JSON")
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key}"))
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(v, key)).expect("hex")
}

fn keypair(v: &Value, secret: &str, public: &str) -> X25519Keypair {
    let secret: [u8; 32] = bytes(v, secret).try_into().expect("32 bytes");
    let pair = X25519Keypair::from_secret(StaticSecret::from(secret));
    assert_eq!(pair.public().to_hex(), text(v, public), "{public}");
    pair
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

#[test]
fn decrypt_vectors() {
    let all = vectors();
    let v = &all["decrypt"];
    let client = keypair(v, "a_client_priv", "A_client_pub");
    let server = keypair(v, "b_server_priv", "B_server_pub");

    let shared = shared_secret(server.secret(), client.public()).unwrap();
    assert_eq!(hex::encode(*shared), text(v, "shared_secret"));
    let shared = shared_secret(client.secret(), server.public()).unwrap();
    assert_eq!(hex::encode(*shared), text(v, "shared_secret"));

    for (enc_type, key_name, ct_name) in [
        (EncType::AesGcm, "aes_gcm_key", "aes_gcm"),
        (EncType::XChaCha20, "xchacha20_key", "xchacha20"),
    ] {
        let at_server =
            HopKey::derive(enc_type, &server, client.public(), Role::Responder).unwrap();
        let at_client =
            HopKey::derive(enc_type, &client, server.public(), Role::Requester).unwrap();
        assert_eq!(hex::encode(at_server.expose_secret()), text(v, key_name));
        assert_eq!(hex::encode(at_client.expose_secret()), text(v, key_name));

        let plaintext = at_server.decrypt(&bytes(v, ct_name)).unwrap();
        assert_eq!(plaintext, text(v, "plaintext_ascii").as_bytes());

        let must_fail = v[format!("{ct_name}_must_fail")]
            .as_array()
            .expect("must_fail list");
        assert_eq!(must_fail.len(), 2);
        for bad in must_fail {
            let bad = hex::decode(bad.as_str().expect("hex string")).expect("hex");
            assert_eq!(at_server.decrypt(&bad), Err(CipherError::Decrypt));
        }
    }
}

#[test]
fn parse_request_vectors() {
    let all = vectors();
    let v = &all["parse_request"];
    let client = keypair(v, "a", "A");
    let server = keypair(v, "b", "B");
    let mut rng = rng();

    for (enc_type, name, reply_len) in [
        (EncType::AesGcm, "aes_gcm_request", 41),
        (EncType::XChaCha20, "xchacha20_request", 53),
    ] {
        let body = bytes(v, name);
        let request = parse_onion_request(&body).unwrap();
        assert_eq!(request.enc_type, enc_type);
        assert_eq!(&request.ephemeral_key, client.public());
        assert_eq!(request.hop_no, 0);

        let layer = request.decrypt(&server).unwrap();
        assert_eq!(layer.plaintext(), b"Hello world");
        assert!(matches!(
            layer.classify(),
            Err(PeelError::InvalidJson { .. })
        ));

        let reply = layer
            .reply_key()
            .encrypt(b"Goodbye world", &mut rng)
            .unwrap();
        assert_eq!(reply.len(), reply_len, "{name}");

        let at_client =
            HopKey::derive(enc_type, &client, server.public(), Role::Requester).unwrap();
        assert_eq!(at_client.decrypt(&reply).unwrap(), b"Goodbye world");
        let response_key = ResponseKey::derive(enc_type, &client, server.public()).unwrap();
        assert_eq!(response_key.decrypt(&reply).unwrap(), b"Goodbye world");

        // Any other node cannot read the layer: plain "Invalid ciphertext".
        let stranger = X25519Keypair::from_secret(StaticSecret::from([3u8; 32]));
        let err = request.decrypt(&stranger).unwrap_err();
        assert_eq!(err, PeelError::InvalidCiphertext);
        let reply = err.reply();
        assert_eq!(
            (reply.status, reply.text.as_str(), reply.encrypted),
            (400, "Invalid ciphertext", false)
        );
    }
}

#[test]
fn asymmetry_vectors() {
    let all = vectors();
    let v = &all["asymmetry"];
    let alice = keypair(v, "alice_x25519_priv", "alice_x25519_pub");
    let bob = keypair(v, "bob_x25519_priv", "bob_x25519_pub");
    let mut rng = rng();
    let msg = b"Grumpy cat says no!";
    assert_eq!(msg.len(), 19);

    let key = |enc_type, ours: &X25519Keypair, theirs: &X25519Keypair, role| {
        HopKey::derive(enc_type, ours, theirs.public(), role).unwrap()
    };

    for (enc_type, size) in [
        (EncType::AesCbc, 48),
        (EncType::AesGcm, 47),
        (EncType::XChaCha20, 59),
    ] {
        let client = key(enc_type, &alice, &bob, Role::Requester);
        let server = key(enc_type, &bob, &alice, Role::Responder);

        let to_server = client.encrypt(msg, &mut rng).unwrap();
        assert_eq!(to_server.len(), size, "{enc_type}");
        assert_eq!(server.decrypt(&to_server).unwrap(), msg);

        let to_client = server.encrypt(msg, &mut rng).unwrap();
        assert_eq!(to_client.len(), size, "{enc_type}");
        assert_eq!(client.decrypt(&to_client).unwrap(), msg);
    }

    // Only xchacha20 binds the key order: two "clients" or two "servers" disagree.
    let alice_client = key(EncType::XChaCha20, &alice, &bob, Role::Requester);
    let bob_client = key(EncType::XChaCha20, &bob, &alice, Role::Requester);
    let ct = alice_client.encrypt(msg, &mut rng).unwrap();
    assert_eq!(bob_client.decrypt(&ct), Err(CipherError::Decrypt));

    let alice_server = key(EncType::XChaCha20, &alice, &bob, Role::Responder);
    let bob_server = key(EncType::XChaCha20, &bob, &alice, Role::Responder);
    let ct = alice_server.encrypt(msg, &mut rng).unwrap();
    assert_eq!(bob_server.decrypt(&ct), Err(CipherError::Decrypt));
}

#[test]
fn classify_layer_vectors() {
    let all = vectors();
    let v = &all["classify_layer"];
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    for case in cases {
        let mut layer = hex::decode("0a000000").expect("hex");
        layer.extend_from_slice(b"ciphertext");
        layer.extend_from_slice(text(case, "json").as_bytes());

        let parsed = classify_layer(&layer).unwrap();
        match (text(case, "expect"), parsed) {
            ("final", Layer::Final(request)) => {
                assert_eq!(request.request, text(case, "body").as_bytes());
                assert_eq!(request.format, ReplyFormat::default());
                assert!(!request.format.json && request.format.base64);
            }
            ("proxy", Layer::Proxy(proxy)) => {
                let json: Value = serde_json::from_str(text(case, "json")).expect("json");
                assert_eq!(proxy.host, text(&json, "host"));
                assert_eq!(proxy.target, text(&json, "target"));
                if let Some(host) = case.get("host") {
                    assert_eq!(Some(proxy.host.as_str()), host.as_str());
                }
                if let Some(target) = case.get("target") {
                    assert_eq!(Some(proxy.target.as_str()), target.as_str());
                }
                assert_eq!(Some(u64::from(proxy.port)), case["port"].as_u64());
                assert_eq!(Some(proxy.protocol.as_str()), case["protocol"].as_str());
                // "payload": the entire decrypted layer.
                assert_eq!(proxy.payload, layer.as_slice());
                // "target" is not an allowed proxy target: the node answers "Invalid url".
                assert_eq!(proxy.url(), Err(PeelError::InvalidUrl));
            }
            ("relay", Layer::Relay(relay)) => {
                let json: Value = serde_json::from_str(text(case, "json")).expect("json");
                assert_eq!(relay.destination.to_hex(), text(&json, "destination"));
                assert_eq!(relay.ephemeral_key.to_hex(), text(&json, "ephemeral_key"));
                assert_eq!(relay.enc_type.as_str(), text(case, "enc_type"));
                assert_eq!(relay.ciphertext, b"ciphertext");
            }
            (expect, other) => panic!("expected {expect}, got {other:?}"),
        }
    }
}

#[test]
fn proxy_target_vectors() {
    let all = vectors();
    let v = &all["classify_layer"];
    for target in v["proxy_targets_allowed"].as_array().expect("list") {
        let target = target.as_str().expect("string");
        assert!(is_proxy_target_allowed(target), "{target}");
    }
    for target in v["proxy_targets_rejected"].as_array().expect("list") {
        let target = target.as_str().expect("string");
        assert!(!is_proxy_target_allowed(target), "{target}");
    }
}
