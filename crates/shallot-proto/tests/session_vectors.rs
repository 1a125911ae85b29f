//! Known-answer tests for the `session` module (onion-client spec §4.2, §4.4, §4.5), from
//! `tests/vectors/session-protocol.json` and `tests/vectors/identity.json`.

use prost::Message as _;
use serde_json::Value;
use shallot_proto::session::protos::DataMessage;
use shallot_proto::session::{
    decrypt_config, decrypt_incoming, encrypt_config, encrypt_for_recipient_deterministic, pad,
    unpad, unwrap_incoming, ConfigCryptoError, ConfigDomain, Content, DecryptError, UnwrapError,
};
use shallot_proto::{Ed25519Pub, Identity, SessionId};

const SESSION_VECTORS: &str = include_str!("vectors/session-protocol.json");
const IDENTITY_VECTORS: &str = include_str!("vectors/identity.json");

fn vectors() -> Value {
    serde_json::from_str(SESSION_VECTORS).expect("session-protocol.json parses")
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} is a string"))
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(v, key)).expect("vector field is hex")
}

fn seed(v: &Value, key: &str) -> [u8; 32] {
    bytes(v, key).try_into().expect("seed is 32 bytes")
}

#[test]
fn deterministic_encrypt_matches_vector() {
    let v = &vectors()["deterministic_encrypt"];
    let sender = Identity::from_seed(seed(v, "sender_seed"));
    assert_eq!(
        sender.ed25519_public().to_hex(),
        text(v, "sender_ed25519_pk")
    );
    let recipient_id: SessionId = text(v, "recipient_session_id").parse().expect("session id");
    let plaintext = text(v, "plaintext_ascii").as_bytes();

    let ct = encrypt_for_recipient_deterministic(&sender, recipient_id.x25519(), plaintext)
        .expect("encrypts");
    assert_eq!(hex::encode(&ct), text(v, "ciphertext"));
    assert_eq!(ct.len(), plaintext.len() + 144);
}

#[test]
fn deterministic_ciphertext_decrypts_for_recipient() {
    let v = &vectors()["deterministic_encrypt"];
    let recipient = Identity::from_seed(seed(v, "recipient_seed"));
    assert_eq!(
        recipient.session_id().to_string(),
        text(v, "recipient_session_id")
    );

    let opened = decrypt_incoming(&recipient, &bytes(v, "ciphertext")).expect("decrypts");
    assert_eq!(opened.plaintext, b"hello");
    let sender_pk: Ed25519Pub = text(v, "sender_ed25519_pk").parse().expect("pk");
    assert_eq!(opened.sender_ed25519, sender_pk);
    let sender = Identity::from_seed(seed(v, "sender_seed"));
    assert_eq!(opened.sender, sender.session_id());
}

#[test]
fn deterministic_ciphertext_tampering_fails() {
    let v = &vectors()["deterministic_encrypt"];
    let recipient = Identity::from_seed(seed(v, "recipient_seed"));
    let ct = bytes(v, "ciphertext");
    let offsets = v["tamper_must_fail_byte_offsets"]
        .as_array()
        .expect("offsets");
    assert!(!offsets.is_empty());
    for offset in offsets {
        let offset = usize::try_from(offset.as_u64().expect("offset")).expect("fits");
        let mut bad = ct.clone();
        bad[offset] ^= 0x01;
        assert_eq!(
            decrypt_incoming(&recipient, &bad),
            Err(DecryptError::Decryption),
            "flipping byte {offset} must fail"
        );
    }
    // Every other single-byte flip fails too: the box is authenticated end to end.
    for offset in 0..ct.len() {
        let mut bad = ct.clone();
        bad[offset] ^= 0x80;
        assert!(
            decrypt_incoming(&recipient, &bad).is_err(),
            "offset {offset}"
        );
    }
}

#[test]
fn deterministic_ciphertext_is_not_for_the_sender() {
    let v = &vectors()["deterministic_encrypt"];
    let sender = Identity::from_seed(seed(v, "sender_seed"));
    assert_eq!(
        decrypt_incoming(&sender, &bytes(v, "ciphertext")),
        Err(DecryptError::Decryption)
    );
}

#[test]
fn vector_identities_agree_with_identity_json() {
    let session = vectors();
    let identity: Value = serde_json::from_str(IDENTITY_VECTORS).expect("identity.json parses");
    let cases = identity["identities"]["cases"].as_array().expect("cases");
    let det = &session["deterministic_encrypt"];
    let find = |seed_hex: &str| {
        cases
            .iter()
            .find(|c| c["seed"] == seed_hex)
            .expect("seed listed in identity.json")
    };
    assert_eq!(
        find(text(det, "sender_seed"))["ed25519_pk"],
        det["sender_ed25519_pk"]
    );
    assert_eq!(
        find(text(det, "recipient_seed"))["session_id"],
        det["recipient_session_id"]
    );
}

#[test]
fn config_encrypt_matches_vector() {
    let v = &vectors()["config_encrypt"];
    let key: [u8; 32] = bytes(v, "key").try_into().expect("32-byte key");
    let domain = ConfigDomain::new(text(v, "domain")).expect("domain");
    let message = text(v, "message_ascii").as_bytes();

    let ct = encrypt_config(message, &key, domain).expect("encrypts");
    assert_eq!(hex::encode(&ct), text(v, "ciphertext"));
    assert_eq!(ct.len(), message.len() + 40);

    let plain = decrypt_config(&bytes(v, "ciphertext"), &key, domain).expect("decrypts");
    assert_eq!(plain, message);
}

#[test]
fn config_decrypt_rejects_wrong_key_domain_and_tampering() {
    let v = &vectors()["config_encrypt"];
    let key: [u8; 32] = bytes(v, "key").try_into().expect("32-byte key");
    let domain = ConfigDomain::new(text(v, "domain")).expect("domain");
    let ct = bytes(v, "ciphertext");

    let mut wrong_key = key;
    wrong_key[0] ^= 1;
    assert_eq!(
        decrypt_config(&ct, &wrong_key, domain),
        Err(ConfigCryptoError::Decryption)
    );
    assert_eq!(
        decrypt_config(&ct, &key, ConfigDomain::new("test-suite2").expect("domain")),
        Err(ConfigCryptoError::Decryption)
    );
    for offset in 0..ct.len() {
        let mut bad = ct.clone();
        bad[offset] ^= 0x01;
        assert!(
            decrypt_config(&bad, &key, domain).is_err(),
            "offset {offset}"
        );
    }
    assert_eq!(
        decrypt_config(&ct[..39], &key, domain),
        Err(ConfigCryptoError::TooShort { len: 39 })
    );
}

#[test]
fn config_domain_length_limits() {
    assert!(ConfigDomain::new("").is_err());
    assert!(ConfigDomain::new(&"x".repeat(24)).is_ok());
    assert_eq!(
        ConfigDomain::new(&"x".repeat(25)),
        Err(ConfigCryptoError::InvalidDomain { len: 25 })
    );
    assert_eq!(ConfigDomain::USER_PROFILE.as_str(), "UserProfile");
}

#[test]
fn content_padding_length() {
    let v = &vectors()["content_and_padding"];
    let content = bytes(v, "content");
    let padded = pad(&content);
    let expected_len = usize::try_from(v["padded_length"].as_u64().expect("length")).expect("fits");
    assert_eq!(padded.len(), expected_len);
    assert_eq!(&padded[..content.len()], content.as_slice());
    assert_eq!(padded[content.len()], 0x80);
    assert!(padded[content.len() + 1..].iter().all(|&b| b == 0));
    assert_eq!(unpad(&padded).expect("unpads"), content.as_slice());
}

#[test]
fn content_encoding_matches_vector() {
    let v = &vectors()["content_and_padding"];
    let content = Content {
        data_message: Some(DataMessage {
            body: Some("hello".to_owned()),
            ..DataMessage::default()
        }),
        sig_timestamp: Some(1_700_000_000_000),
        ..Content::default()
    };
    assert_eq!(hex::encode(content.encode_to_vec()), text(v, "content"));
    assert_eq!(Content::text("hello", 1_700_000_000_000), content);
    assert_eq!(
        Content::decode(bytes(v, "content").as_slice()).expect("decodes"),
        content
    );
}

#[test]
fn padding_examples() {
    assert_eq!(pad(&[]), {
        let mut p = vec![0u8; 159];
        p[0] = 0x80;
        p
    });
    assert_eq!(pad(&[7u8; 157]).len(), 159);
    assert_eq!(pad(&[7u8; 158]).len(), 159);
    assert_eq!(pad(&[7u8; 159]).len(), 319);
    assert_eq!(pad(&[7u8; 637]).len(), 639);
    // Receivers accept any zero run after the marker, including none.
    assert_eq!(unpad(&[1, 2, 0x80]).expect("unpads"), &[1, 2]);
    assert_eq!(unpad(&[1, 2, 0x80, 0, 0, 0]).expect("unpads"), &[1, 2]);
    assert_eq!(unpad(&[0x80, 0x80, 0]).expect("unpads"), &[0x80]);
}

#[test]
fn unwrap_reports_each_layer() {
    let recipient = Identity::from_seed([9; 32]);
    let ws = |body: Option<Vec<u8>>, kind: i32| {
        shallot_proto::session::WebSocketMessage {
            kind: Some(kind),
            request: Some(shallot_proto::session::protos::WebSocketRequestMessage {
                body,
                ..Default::default()
            }),
        }
        .encode_to_vec()
    };
    assert_eq!(
        unwrap_incoming(&recipient, &ws(Some(vec![1]), 2)),
        Err(UnwrapError::NotARequest)
    );
    assert_eq!(
        unwrap_incoming(&recipient, &ws(Some(Vec::new()), 1)),
        Err(UnwrapError::EmptyBody)
    );
    assert_eq!(
        unwrap_incoming(&recipient, &ws(None, 1)),
        Err(UnwrapError::EmptyBody)
    );
    let envelope = |kind: i32, content: Vec<u8>| {
        shallot_proto::session::Envelope {
            kind: Some(kind),
            timestamp: Some(5),
            content: Some(content),
            ..Default::default()
        }
        .encode_to_vec()
    };
    assert_eq!(
        unwrap_incoming(&recipient, &ws(Some(envelope(7, vec![1; 200])), 1)),
        Err(UnwrapError::UnsupportedEnvelopeType(7))
    );
    assert_eq!(
        unwrap_incoming(&recipient, &ws(Some(envelope(6, vec![1; 10])), 1)),
        Err(UnwrapError::Decrypt(DecryptError::TooShort { len: 10 }))
    );
    assert_eq!(
        unwrap_incoming(&recipient, &ws(Some(envelope(6, Vec::new())), 1)),
        Err(UnwrapError::MissingContent)
    );
}
