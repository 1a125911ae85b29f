//! Arbitrary bytes as (a) the outer onion request a guard receives and (b) a decrypted layer a
//! node classifies. Neither parser may panic, and whatever they accept must agree with the raw
//! frame: the borrowed slices point into the input, the JSON fields were really there, and the
//! error kinds map to the replies the storage server sends.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use shallot_proto::onion::{
    classify_layer, encode_frame, is_proxy_target_allowed, parse_frame, parse_onion_request,
    EncType, Layer, PeelError, ReplyFormat, X25519Keypair,
};

/// The node that receives the fuzzed requests (a fixed key, so decryption is reproducible).
static NODE: LazyLock<X25519Keypair> = LazyLock::new(|| {
    use rand::SeedableRng;
    X25519Keypair::generate(&mut rand::rngs::StdRng::seed_from_u64(0x5eed))
});

fuzz_target!(|data: &[u8]| {
    check_frame_round_trip(data);
    check_outer_request(data);
    check_classify(data);
});

/// `parse_frame` then `encode_frame` gives back the same payload and JSON object.
fn check_frame_round_trip(data: &[u8]) {
    let Ok(frame) = parse_frame(data) else {
        return;
    };
    assert_eq!(frame.payload.as_ptr(), data[4..].as_ptr());
    let declared = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    assert_eq!(frame.payload.len(), declared);

    let json = Value::Object(frame.json.clone());
    let encoded = encode_frame(frame.payload, &json).expect("a parsed frame re-encodes");
    let again = parse_frame(&encoded).expect("an encoded frame parses");
    assert_eq!(again.payload, frame.payload);
    // serde_json's default float parser is not always correctly rounded, so a float may move by
    // one ulp on a second trip; everything else must be identical.
    if !has_float(&json) {
        assert_eq!(again.json, frame.json);
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

/// The guard's parser: accepted requests match the frame's fields; rejected ones get the plain
/// (unencrypted) 400 reply; a parsed request either decrypts or fails with `InvalidCiphertext`.
fn check_outer_request(data: &[u8]) {
    let request = match parse_onion_request(data) {
        Ok(request) => request,
        Err(err) => {
            assert!(matches!(err, PeelError::Request(_)), "{err:?}");
            let reply = err.reply();
            assert_eq!(reply.status, 400);
            assert!(!reply.encrypted);
            assert!(reply.text.starts_with("Error parsing onion request: "));
            return;
        }
    };
    let frame = parse_frame(data).expect("an accepted request has a valid frame");
    assert!(std::ptr::eq(request.ciphertext, frame.payload));

    let key = frame.json["ephemeral_key"].as_str().expect("a hex string");
    assert!(key.eq_ignore_ascii_case(&request.ephemeral_key.to_hex()));
    let enc_type = frame
        .json
        .get("enc_type")
        .map_or(EncType::AesGcm, |v| v.as_str().unwrap().parse().unwrap());
    assert_eq!(request.enc_type, enc_type);
    let hop_no = match frame.json.get("hop_no") {
        None | Some(Value::Null) => 0,
        Some(n) => {
            let n = n.as_i64().expect("hop_no is an i64");
            u32::try_from(n.max(0)).unwrap_or(u32::MAX)
        }
    };
    assert_eq!(request.hop_no, hop_no);

    match request.decrypt(&NODE) {
        Err(err) => {
            assert_eq!(err, PeelError::InvalidCiphertext);
            assert!(!err.reply().encrypted);
        }
        Ok(layer) => {
            // Forging an AEAD tag for a key the input cannot know is out of reach; only the
            // unauthenticated legacy CBC layout can decrypt by chance (valid padding).
            assert_eq!(request.enc_type, EncType::AesCbc, "forged AEAD layer");
            assert_eq!(layer.reply_key().enc_type(), EncType::AesCbc);
            check_classify(layer.plaintext());
        }
    }
}

/// A node's classification agrees with the frame's JSON and borrows from the input.
fn check_classify(data: &[u8]) {
    let result = classify_layer(data);
    let frame = parse_frame(data);
    let json: Option<&Map<String, Value>> = frame.as_ref().ok().map(|f| &f.json);
    let has = |key: &str| json.is_some_and(|j| j.contains_key(key));

    match result {
        Ok(Layer::Final(fin)) => {
            let frame = frame.as_ref().expect("accepted layers have a valid frame");
            assert!(has("headers"));
            assert!(std::ptr::eq(fin.request, frame.payload));
            let flag = |key: &str, default: bool| match frame.json.get(key) {
                None | Some(Value::Null) => default,
                Some(v) => v.as_bool().expect("flags are booleans"),
            };
            let defaults = ReplyFormat::default();
            assert_eq!(fin.format.json, flag("json", defaults.json));
            assert_eq!(fin.format.base64, flag("base64", defaults.base64));
            // Any non-null `pad` asks for a padded reply.
            assert_eq!(
                fin.format.pad,
                !matches!(frame.json.get("pad"), None | Some(Value::Null))
            );
        }
        Ok(Layer::Proxy(proxy)) => {
            assert!(frame.is_ok() && has("host") && !has("headers"));
            assert!(std::ptr::eq(proxy.payload, data));
            assert_eq!(json.unwrap()["host"].as_str(), Some(proxy.host.as_str()));
            assert_eq!(
                json.unwrap()["target"].as_str(),
                Some(proxy.target.as_str())
            );
            if let Ok(url) = proxy.url() {
                assert!(is_proxy_target_allowed(&proxy.target));
                let prefix = format!("{}://{}", proxy.protocol, proxy.host);
                assert!(url.starts_with(&prefix), "{url}");
                assert!(url.ends_with(&proxy.target), "{url}");
                let authority =
                    &url[proxy.protocol.as_str().len() + 3..url.len() - proxy.target.len()];
                assert!(!authority.contains(['/', '?', '#', '@']), "{url}");
            }
        }
        Ok(Layer::Relay(relay)) => {
            let frame = frame.as_ref().expect("accepted layers have a valid frame");
            assert!(!has("headers") && !has("host"));
            assert!(std::ptr::eq(relay.ciphertext, frame.payload));
            let destination = frame.json["destination"].as_str().unwrap();
            assert!(destination.eq_ignore_ascii_case(&relay.destination.to_hex()));
        }
        Err(err) => {
            let reply = err.reply();
            assert_eq!(reply.status, 400);
            match err {
                PeelError::InvalidJson { .. } => assert!(reply.encrypted),
                PeelError::InvalidUrl => {
                    assert!(reply.encrypted);
                    assert!(frame.is_ok() && has("host") && !has("headers"));
                }
                other => panic!("classify_layer returned {other:?}"),
            }
        }
    }
}
