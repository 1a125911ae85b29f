//! Property tests for the `session` module: round trips, wrong-recipient rejection, and no panics
//! on arbitrary input (onion-client spec §4.2, §4.5).

use proptest::prelude::*;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shallot_proto::session::protos::{
    DataMessage, MessageRequestResponse, Profile, ReceiptMessage, TypingMessage, UnsendRequest,
};
use shallot_proto::session::{
    decrypt_config, decrypt_incoming, encrypt_config, encrypt_for_recipient,
    encrypt_for_recipient_deterministic, pad, padded_len, unpad, unpad_lenient, unwrap_incoming,
    wrap_for_recipient, ConfigDomain, Content, DecryptError, EncryptError, Envelope, PaddingError,
    UnwrapError, WebSocketMessage, WrapError, ENCRYPTION_OVERHEAD,
};
use shallot_proto::{Identity, X25519Pub};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    }
}

fn identity() -> impl Strategy<Value = Identity> {
    any::<[u8; 32]>().prop_map(Identity::from_seed)
}

fn content() -> impl Strategy<Value = Content> {
    (
        proptest::option::of(".{0,300}"),
        proptest::option::of(any::<u32>()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of("[a-zA-Z ]{0,20}"),
        proptest::option::of(any::<u64>()),
        proptest::option::of(0i32..3),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
    )
        .prop_map(
            |(body, flags, profile_key, name, unsend_ts, expiration_type, timer, extras)| Content {
                data_message: Some(DataMessage {
                    body,
                    flags,
                    profile_key,
                    profile: name.map(|display_name| Profile {
                        display_name: Some(display_name),
                        ..Profile::default()
                    }),
                    ..DataMessage::default()
                }),
                receipt_message: extras.then(|| ReceiptMessage {
                    kind: Some(1),
                    timestamps: vec![1, 2, u64::MAX],
                }),
                typing_message: extras.then_some(TypingMessage {
                    timestamp: Some(3),
                    action: Some(1),
                }),
                unsend_request: unsend_ts.map(|timestamp| UnsendRequest {
                    timestamp: Some(timestamp),
                    author: Some("05ab".to_owned()),
                }),
                message_request_response: extras.then(|| MessageRequestResponse {
                    is_approved: Some(true),
                    ..MessageRequestResponse::default()
                }),
                expiration_type,
                expiration_timer: timer,
                ..Content::default()
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn encrypt_decrypt_round_trip(
        sender in identity(),
        recipient in identity(),
        message in proptest::collection::vec(any::<u8>(), 0..4096),
        rng_seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let ct = encrypt_for_recipient(&sender, &recipient.x25519_public(), &message, &mut rng)
            .expect("encrypts");
        prop_assert_eq!(ct.len(), message.len() + ENCRYPTION_OVERHEAD);
        let opened = decrypt_incoming(&recipient, &ct).expect("decrypts");
        prop_assert_eq!(opened.plaintext, message);
        prop_assert_eq!(opened.sender_ed25519, sender.ed25519_public());
        prop_assert_eq!(opened.sender, sender.session_id());
    }

    #[test]
    fn deterministic_encrypt_round_trip_and_is_deterministic(
        sender in identity(),
        recipient in identity(),
        message in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let y = recipient.x25519_public();
        let ct = encrypt_for_recipient_deterministic(&sender, &y, &message).expect("encrypts");
        prop_assert_eq!(
            &ct,
            &encrypt_for_recipient_deterministic(&sender, &y, &message).expect("encrypts")
        );
        let opened = decrypt_incoming(&recipient, &ct).expect("decrypts");
        prop_assert_eq!(opened.plaintext, message);
        prop_assert_eq!(opened.sender, sender.session_id());
    }

    #[test]
    fn third_party_cannot_decrypt(
        sender in identity(),
        recipient in identity(),
        eve in identity(),
        message in proptest::collection::vec(any::<u8>(), 0..512),
        rng_seed in any::<u64>(),
    ) {
        prop_assume!(eve.seed() != recipient.seed());
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let ct = encrypt_for_recipient(&sender, &recipient.x25519_public(), &message, &mut rng)
            .expect("encrypts");
        prop_assert_eq!(decrypt_incoming(&eve, &ct), Err(DecryptError::Decryption));
    }

    #[test]
    fn pad_unpad_round_trip(message in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let padded = pad(&message);
        prop_assert_eq!(padded.len() % 160, 159);
        prop_assert_eq!(padded.len(), padded_len(message.len()));
        prop_assert!(padded.len() > message.len());
        // Smallest such length: one block less would not fit data plus marker.
        prop_assert!(padded.len() < message.len() + 1 + 160);
        prop_assert_eq!(unpad(&padded), Ok(message.as_slice()));
        prop_assert_eq!(unpad_lenient(&padded), Ok(message.as_slice()));
    }

    #[test]
    fn unpad_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        match unpad(&data) {
            Ok(stripped) => {
                prop_assert_eq!(data[stripped.len()], 0x80);
                prop_assert!(data[stripped.len() + 1..].iter().all(|&b| b == 0));
            }
            Err(PaddingError::MissingMarker) => prop_assert!(data.iter().all(|&b| b == 0)),
            Err(PaddingError::BadMarker { found }) => {
                prop_assert_ne!(found, 0x80);
                prop_assert_eq!(unpad_lenient(&data), Ok(data.as_slice()));
            }
        }
    }

    #[test]
    fn wrap_unwrap_round_trip(
        sender in identity(),
        recipient in identity(),
        content in content(),
        timestamp in any::<u64>(),
        rng_seed in any::<u64>(),
    ) {
        let content = Content { sig_timestamp: Some(timestamp), ..content };
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let data = wrap_for_recipient(&sender, &recipient.session_id(), &content, timestamp, &mut rng)
            .expect("wraps");

        let ws = WebSocketMessage::decode(data.as_slice()).expect("websocket message");
        let request = ws.request.expect("request");
        prop_assert_eq!(ws.kind, Some(1));
        prop_assert_eq!(request.verb.as_deref(), Some("PUT"));
        prop_assert_eq!(request.path.as_deref(), Some("/api/v1/message"));
        let envelope = Envelope::decode(request.body.expect("body").as_slice()).expect("envelope");
        prop_assert_eq!(envelope.kind, Some(6));
        prop_assert_eq!(envelope.timestamp, Some(timestamp));
        prop_assert_eq!(envelope.source, None);
        let ct_len = envelope.content.expect("content").len();
        prop_assert_eq!((ct_len - ENCRYPTION_OVERHEAD) % 160, 159);

        let incoming = unwrap_incoming(&recipient, &data).expect("unwraps");
        prop_assert_eq!(incoming.sender, sender.session_id());
        prop_assert_eq!(incoming.sender_ed25519, sender.ed25519_public());
        prop_assert_eq!(incoming.envelope_timestamp, timestamp);
        prop_assert_eq!(&incoming.content, &content);

        let eve = Identity::from_seed([0xee; 32]);
        prop_assume!(eve.seed() != recipient.seed());
        prop_assert_eq!(
            unwrap_incoming(&eve, &data),
            Err(UnwrapError::Decrypt(DecryptError::Decryption))
        );
    }

    #[test]
    fn wrap_refuses_mismatched_sig_timestamp(
        timestamp in any::<u64>(),
        other in any::<u64>(),
    ) {
        prop_assume!(timestamp != other);
        let sender = Identity::from_seed([1; 32]);
        let recipient = Identity::from_seed([2; 32]);
        let mut rng = StdRng::seed_from_u64(0);
        prop_assert_eq!(
            wrap_for_recipient(
                &sender,
                &recipient.session_id(),
                &Content::text("hi", other),
                timestamp,
                &mut rng
            ),
            Err(WrapError::SigTimestampMismatch { envelope: timestamp, signed: other })
        );
    }

    #[test]
    fn unwrap_drops_rewritten_envelope_timestamp(
        signed in any::<u64>(),
        envelope_ts in any::<u64>(),
    ) {
        prop_assume!(signed != envelope_ts);
        let sender = Identity::from_seed([1; 32]);
        let recipient = Identity::from_seed([2; 32]);
        let mut rng = StdRng::seed_from_u64(0);
        let data = wrap_for_recipient(
            &sender,
            &recipient.session_id(),
            &Content::text("hi", signed),
            signed,
            &mut rng,
        )
        .expect("wraps");
        // An attacker replays the sealed content under a different envelope timestamp.
        let mut ws = WebSocketMessage::decode(data.as_slice()).expect("decodes");
        let request = ws.request.as_mut().expect("request");
        let mut envelope =
            Envelope::decode(request.body.as_deref().expect("body")).expect("envelope");
        envelope.timestamp = Some(envelope_ts);
        request.body = Some(envelope.encode_to_vec());
        prop_assert_eq!(
            unwrap_incoming(&recipient, &ws.encode_to_vec()),
            Err(UnwrapError::SigTimestampMismatch { envelope: envelope_ts, signed })
        );
    }

    #[test]
    fn decrypt_incoming_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let recipient = Identity::from_seed([3; 32]);
        let result = decrypt_incoming(&recipient, &data);
        if data.len() < ENCRYPTION_OVERHEAD {
            prop_assert_eq!(result, Err(DecryptError::TooShort { len: data.len() }));
        } else {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn truncated_ciphertexts_are_rejected(
        message in proptest::collection::vec(any::<u8>(), 0..300),
        cut in any::<prop::sample::Index>(),
    ) {
        let sender = Identity::from_seed([4; 32]);
        let recipient = Identity::from_seed([5; 32]);
        let ct = encrypt_for_recipient_deterministic(&sender, &recipient.x25519_public(), &message)
            .expect("encrypts");
        let cut = cut.index(ct.len());
        prop_assert!(decrypt_incoming(&recipient, &ct[..cut]).is_err());
    }

    #[test]
    fn unwrap_incoming_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let recipient = Identity::from_seed([6; 32]);
        prop_assert!(unwrap_incoming(&recipient, &data).is_err());
    }

    #[test]
    fn truncated_wrapped_messages_are_rejected(
        content in content(),
        cut in any::<prop::sample::Index>(),
    ) {
        let sender = Identity::from_seed([7; 32]);
        let recipient = Identity::from_seed([8; 32]);
        let content = Content { sig_timestamp: Some(9), ..content };
        let mut rng = StdRng::seed_from_u64(1);
        let data = wrap_for_recipient(&sender, &recipient.session_id(), &content, 9, &mut rng)
            .expect("wraps");
        let cut = cut.index(data.len());
        prop_assert!(unwrap_incoming(&recipient, &data[..cut]).is_err());
    }

    #[test]
    fn protobuf_decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        // Errors are fine; panics are not.
        let _ = WebSocketMessage::decode(data.as_slice());
        let _ = Envelope::decode(data.as_slice());
        let _ = Content::decode(data.as_slice());
    }

    #[test]
    fn config_round_trip(
        message in proptest::collection::vec(any::<u8>(), 0..2048),
        key in any::<[u8; 32]>(),
        domain in "[a-zA-Z:]{1,24}",
    ) {
        let domain = ConfigDomain::new(&domain).expect("valid domain");
        let ct = encrypt_config(&message, &key, domain).expect("encrypts");
        prop_assert_eq!(ct.len(), message.len() + 40);
        prop_assert_eq!(decrypt_config(&ct, &key, domain).expect("decrypts"), message);
    }

    #[test]
    fn decrypt_config_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        key in any::<[u8; 32]>(),
    ) {
        prop_assert!(decrypt_config(&data, &key, ConfigDomain::CONTACTS).is_err());
    }
}

#[test]
fn low_order_recipient_keys_are_refused() {
    let sender = Identity::from_seed([1; 32]);
    let mut rng = StdRng::seed_from_u64(0);
    // u = 0, u = 1 and u = p − 1: all on libsodium's low-order blocklist.
    let mut p_minus_1 = [0xffu8; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut one = [0u8; 32];
    one[0] = 1;
    for key in [[0u8; 32], one, p_minus_1] {
        let key = X25519Pub::from_bytes(key);
        assert_eq!(
            encrypt_for_recipient(&sender, &key, b"x", &mut rng),
            Err(EncryptError::WeakRecipientKey)
        );
        assert_eq!(
            encrypt_for_recipient_deterministic(&sender, &key, b"x"),
            Err(EncryptError::WeakRecipientKey)
        );
    }
}

#[test]
fn low_order_ephemeral_key_is_rejected() {
    // A ciphertext whose ephemeral key is the all-zero point would box under an all-zero shared
    // secret that anyone can compute; it must be refused before opening.
    let recipient = Identity::from_seed([2; 32]);
    let ct = vec![0u8; ENCRYPTION_OVERHEAD + 10];
    assert_eq!(
        decrypt_incoming(&recipient, &ct),
        Err(DecryptError::Decryption)
    );
}

/// Our sealed box is libsodium's: the `crypto_box` crate (a reference implementation of it)
/// opens ours, and ours opens its.
#[test]
fn sealed_boxes_interoperate_with_the_reference_implementation() {
    use crypto_box::{PublicKey, SecretKey};
    let mut rng = StdRng::seed_from_u64(7);
    for len in [0usize, 1, 159, 1000] {
        let sender = Identity::generate(&mut rng);
        let recipient = Identity::generate(&mut rng);
        let message: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let reference_secret = SecretKey::from_bytes(recipient.x25519_secret().to_bytes());

        // Ours → reference: the inner layer is message || sender Ed25519 || signature.
        let ours =
            encrypt_for_recipient(&sender, &recipient.x25519_public(), &message, &mut rng).unwrap();
        let inner = reference_secret.unseal(&ours).unwrap();
        assert_eq!(&inner[..len], message.as_slice());
        assert_eq!(&inner[len..len + 32], sender.ed25519_public().as_bytes());

        // Reference → ours: re-seal that signed inner layer with the reference code.
        let theirs = PublicKey::from_bytes(*recipient.x25519_public().as_bytes())
            .seal(&mut rng, &inner)
            .unwrap();
        let opened = decrypt_incoming(&recipient, &theirs).unwrap();
        assert_eq!(opened.plaintext, message);
        assert_eq!(opened.sender, sender.session_id());
    }
}
