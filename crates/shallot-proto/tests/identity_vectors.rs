//! `identity.json`: keys, Session IDs, signatures, BLAKE2b and the recovery phrase, byte for byte.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

use blake2::digest::consts::U32;
use blake2::digest::{FixedOutput, Mac};
use blake2::{Blake2b, Blake2bMac, Digest};
use serde_json::Value;
use shallot_proto::identity::ed25519_seed_to_x25519_secret;
use shallot_proto::mnemonic::{self, MnemonicError};
use shallot_proto::{AccountId, AccountKind, Ed25519Pub, Identity, SessionId};

const VECTORS: &str = include_str!("vectors/identity.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn seeds_derive_exact_keys_and_session_ids() {
    let v = vectors();
    let cases = v["identities"]["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let id = Identity::from_seed(hex32(&case["seed"]));
        assert_eq!(
            id.ed25519_public().to_hex(),
            case["ed25519_pk"].as_str().unwrap()
        );
        assert_eq!(
            id.x25519_public().to_hex(),
            case["x25519_pk"].as_str().unwrap()
        );
        assert_eq!(
            id.session_id().to_string(),
            case["session_id"].as_str().unwrap()
        );
        // The public conversion agrees with the secret-side derivation.
        assert_eq!(id.ed25519_public().to_x25519().unwrap(), id.x25519_public());
        // And the Session ID text parses back to the same value.
        let parsed: SessionId = case["session_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(parsed, id.session_id());
    }
}

#[test]
fn ed25519_secret_converts_to_exact_x25519_secret() {
    let v = vectors();
    for pair in v["ed_to_x_secret"].as_array().unwrap() {
        let sk64 = hex::decode(pair[0].as_str().unwrap()).unwrap();
        let seed: [u8; 32] = sk64[..32].try_into().unwrap();
        let x = ed25519_seed_to_x25519_secret(&seed);
        assert_eq!(hex::encode(*x), pair[1].as_str().unwrap());
        // The 64-byte secret key is seed || public key.
        assert_eq!(
            Identity::from_seed(seed).ed25519_public().as_bytes(),
            &sk64[32..]
        );
    }
}

#[test]
fn ed25519_signature_is_exact_and_verifies() {
    let v = vectors();
    let case = &v["ed25519_sign"];
    let id = Identity::from_seed(hex32(&case["seed"]));
    assert_eq!(id.ed25519_public().to_hex(), case["pk"].as_str().unwrap());
    let message = case["message_ascii"].as_str().unwrap().as_bytes();
    let sig = id.sign(message);
    assert_eq!(
        hex::encode(sig.to_bytes()),
        case["signature"].as_str().unwrap()
    );
    assert!(id.ed25519_public().verify(message, &sig));
    assert!(!id.ed25519_public().verify(b"hellO", &sig));
}

#[test]
fn blake2b_keyed_and_unkeyed() {
    let v = vectors();
    for case in v["blake2b"].as_array().unwrap() {
        assert_eq!(case["out_len"], 32);
        let input = case["input_ascii"].as_str().unwrap().as_bytes();
        let key = case["key_ascii"].as_str().unwrap().as_bytes();
        let out = if key.is_empty() {
            Blake2b::<U32>::digest(input).to_vec()
        } else {
            let mut mac = Blake2bMac::<U32>::new_from_slice(key).unwrap();
            mac.update(input);
            mac.finalize_fixed().to_vec()
        };
        assert_eq!(hex::encode(out), case["out"].as_str().unwrap());
    }
}

#[test]
fn mnemonic_encodes_exact_words() {
    let v = vectors();
    for case in v["mnemonic"]["encode"].as_array().unwrap() {
        let seed: [u8; 16] = hex::decode(case["seed"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let words = case["words"].as_str().unwrap();
        assert_eq!(mnemonic::encode(&seed).as_str(), words);
        assert_eq!(*mnemonic::decode(words).unwrap(), seed);
        if let Some(sid) = case.get("session_id") {
            let id = Identity::from_recovery_seed(&seed);
            assert_eq!(id.session_id().to_string(), sid.as_str().unwrap());
            assert_eq!(*id.recovery_seed().unwrap(), seed);
        }
    }
}

#[test]
fn mnemonic_decodes_by_prefix() {
    let v = vectors();
    for case in v["mnemonic"]["decode_ok"].as_array().unwrap() {
        let seed = mnemonic::decode(case["words"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(*seed), case["seed"].as_str().unwrap());
    }
    // Case and spacing do not matter.
    let seed = mnemonic::decode(
        "  AMAZE buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed\tFaxed\n",
    )
    .unwrap();
    assert_eq!(hex::encode(*seed), "000102030405060708090a0b0c0d0e0f");
}

#[test]
fn mnemonic_rejects_bad_phrases_with_the_right_error() {
    let v = vectors();
    let cases = v["mnemonic"]["decode_must_fail"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let words = case["words"].as_str().unwrap();
        let err = mnemonic::decode(words).unwrap_err();
        let why = case["why"].as_str().unwrap();
        match why {
            "checksum" => assert_eq!(err, MnemonicError::BadChecksum, "{words}"),
            "unknown word" => {
                assert!(
                    matches!(err, MnemonicError::UnknownWord { position: 13, .. }),
                    "{err:?}"
                );
            }
            _ => {
                assert!(why.starts_with("chunk overflow"));
                assert_eq!(err, MnemonicError::InvalidGroup { first: 1 });
            }
        }
    }
    assert_eq!(
        mnemonic::decode(
            "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed"
        ),
        Err(MnemonicError::WrongLength(12))
    );
}

#[test]
fn account_ids_keep_their_kind() {
    let key = "d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72";
    for (prefix, kind) in [
        ("05", AccountKind::Session),
        ("03", AccountKind::Group),
        ("15", AccountKind::Blinded15),
        ("25", AccountKind::Blinded25),
        ("00", AccountKind::Unblinded),
        ("ab", AccountKind::Other(0xab)),
    ] {
        let id: AccountId = format!("{prefix}{key}").parse().unwrap();
        assert_eq!(id.kind(), kind);
        assert_eq!(id.to_string(), format!("{prefix}{key}"));
        let as_session: Result<SessionId, _> = format!("{prefix}{key}").parse();
        assert_eq!(as_session.is_ok(), prefix == "05");
    }
    // Upper-case hex is accepted and printed lower-case.
    let upper: AccountId = format!("05{}", key.to_uppercase()).parse().unwrap();
    assert_eq!(upper.to_string(), format!("05{key}"));
    // Wrong lengths and non-hex are errors, not panics.
    assert!("05".parse::<AccountId>().is_err());
    assert!(format!("05{key}00").parse::<AccountId>().is_err());
    assert!(format!("0g{}", &key).parse::<AccountId>().is_err());
    assert!("é".repeat(33).parse::<AccountId>().is_err());
    assert!(key.parse::<Ed25519Pub>().is_ok());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let id = Identity::from_seed([0x42; 32]);
    let shown = format!("{id:?}");
    assert!(!shown.contains(&hex::encode([0x42; 32])));
    assert!(shown.contains(&id.ed25519_public().to_hex()));
}
