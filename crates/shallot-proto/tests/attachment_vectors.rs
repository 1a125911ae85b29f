//! `attachments.json`: every vector — L-A blobs, padding sizes, L-P blob, S sizes (reference),
//! S blobs and key derivations (self-generated), file server ids, v4 plaintexts, URL cases and
//! the negative cases. The byte-level vectors were computed from the spec, not by a reference
//! client (see the file's `_note`).
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use serde_json::Value;
use sha2::{Digest, Sha256};
use shallot_proto::attachment::legacy::{decrypt_legacy, LegacyEncryptor, LegacyPadding};
use shallot_proto::attachment::padding::{
    legacy_padded_len, stream_encrypted_len, stream_padding_len,
};
use shallot_proto::attachment::stream::{
    decrypt_stream, derive_stream_key, derive_stream_key_older, encrypt_stream, StreamDomain,
};
use shallot_proto::attachment::{content_id, DecryptError, FileUrl, LegacyKey, ProfileKey};
use shallot_proto::onion::{Headers, HttpMethod, V4Request};
use shallot_proto::{Ed25519Pub, X25519Pub};

const VECTORS: &str = include_str!("vectors/attachments.json");

fn all() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn make_data(n: usize) -> Vec<u8> {
    #[allow(clippy::cast_possible_truncation)]
    (0..n).map(|i| (7 * i % 256) as u8).collect()
}

#[test]
fn legacy_attachment_blobs() {
    for v in all()["legacy_attachment"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let plaintext = bytes(&v["plaintext_hex"]);
        let key = LegacyKey::from_slice(&bytes(&v["keys64_hex(aes32||mac32)"])).unwrap();
        let iv: [u8; 16] = bytes(&v["iv_hex"]).try_into().unwrap();
        let padding = if num(&v["padded_plaintext_len"]) == plaintext.len() as u64 {
            LegacyPadding::Unpadded
        } else {
            LegacyPadding::Padded
        };
        // Fed in uneven pieces: the blob must not depend on how the file is read.
        let mut encryptor = LegacyEncryptor::with_iv(&key, iv, padding);
        let mut blob = Vec::new();
        for piece in plaintext.chunks(7) {
            encryptor.update(piece, &mut blob);
        }
        let sealed = encryptor.finish(&mut blob);
        assert_eq!(blob, bytes(&v["blob_hex"]), "{name}");
        assert_eq!(blob.len() as u64, num(&v["blob_len"]), "{name}");
        assert_eq!(
            sealed.digest.to_vec(),
            bytes(&v["digest_sha256_hex"]),
            "{name}"
        );
        assert_eq!(blob[blob.len() - 32..], bytes(&v["mac_hex"]), "{name}");
        assert_eq!(sealed.size, num(&v["size_field"]), "{name}");
        let opened = decrypt_legacy(&blob, key.as_bytes(), Some(&sealed.digest), sealed.size);
        assert_eq!(opened.unwrap(), plaintext, "{name}");
    }
}

#[test]
fn legacy_padding_sizes() {
    for v in all()["legacy_padding_sizes"].as_array().unwrap() {
        let n = usize::try_from(num(&v["n"])).unwrap();
        assert_eq!(legacy_padded_len(n) as u64, num(&v["padded"]), "n = {n}");
    }
}

#[test]
fn legacy_profile_picture() {
    for v in all()["legacy_profile_picture"].as_array().unwrap() {
        let key = ProfileKey::from_slice(&bytes(&v["profile_key_hex"])).unwrap();
        let iv: [u8; 12] = bytes(&v["iv_hex"]).try_into().unwrap();
        let image = bytes(&v["plaintext_hex"]);
        let blob = key.encrypt_with_iv(&image, iv);
        assert_eq!(blob, bytes(&v["blob_hex"]));
        assert_eq!(blob.len() as u64, num(&v["blob_len"]));
        assert_eq!(key.decrypt(&blob).unwrap(), image);
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(key.decrypt(&tampered), Err(DecryptError::BadTag));
        assert_eq!(key.decrypt(&blob[..28]), Err(DecryptError::TooShort(28)));
    }
}

#[test]
fn deterministic_sizes_reference() {
    for v in all()["deterministic_sizes_reference"].as_array().unwrap() {
        let n = num(&v["plaintext_len"]);
        assert_eq!(stream_encrypted_len(n), num(&v["encrypted_len"]), "n = {n}");
        assert_eq!(stream_padding_len(n), num(&v["padding"]), "n = {n}");
    }
}

#[test]
fn deterministic_blobs_and_keys() {
    for v in all()["deterministic"].as_array().unwrap() {
        let n = usize::try_from(num(&v["plaintext_len"])).unwrap();
        let domain = match v["domain"].as_str().unwrap() {
            "attachment" => StreamDomain::Attachment,
            "profile_pic" => StreamDomain::ProfilePicture,
            other => panic!("domain {other}"),
        };
        let label = format!("{domain:?} n = {n}");
        let seed: [u8; 32] = bytes(&v["seed_hex"]).try_into().unwrap();
        let data = make_data(n);
        let (key, nonce) = derive_stream_key(&seed, domain, &data);
        assert_eq!(key.as_bytes().to_vec(), bytes(&v["key_hex"]), "{label}");
        assert_eq!(nonce.to_vec(), bytes(&v["nonce_hex"]), "{label}");
        let (older_key, older_nonce) = derive_stream_key_older(&seed, domain, &data);
        assert_eq!(
            older_key.as_bytes().to_vec(),
            bytes(&v["older_kdf_key_hex"]),
            "{label}"
        );
        assert_eq!(
            older_nonce.to_vec(),
            bytes(&v["older_kdf_nonce_hex"]),
            "{label}"
        );
        assert_eq!(
            stream_padding_len(n as u64),
            num(&v["padding_len"]),
            "{label}"
        );

        let (blob, blob_key) = encrypt_stream(&seed, domain, &data).unwrap();
        assert_eq!(blob_key, key);
        assert_eq!(blob.len() as u64, num(&v["encrypted_len"]), "{label}");
        assert_eq!(
            Sha256::digest(&blob).to_vec(),
            bytes(&v["encrypted_sha256_hex"]),
            "{label}"
        );
        assert_eq!(blob[..64], bytes(&v["encrypted_first64_hex"]), "{label}");
        assert_eq!(
            blob[blob.len() - 32..],
            bytes(&v["encrypted_last32_hex"]),
            "{label}"
        );
        if let Some(full) = v.get("encrypted_hex") {
            assert_eq!(blob, bytes(full), "{label}");
        }
        let size = Some(n as u64);
        assert_eq!(
            decrypt_stream(&blob, key.as_bytes(), size).unwrap(),
            data,
            "{label}"
        );
        // Domain separation: the other domain's key does not open the blob.
        let other = match domain {
            StreamDomain::Attachment => StreamDomain::ProfilePicture,
            StreamDomain::ProfilePicture => StreamDomain::Attachment,
        };
        let (other_key, _) = derive_stream_key(&seed, other, &data);
        assert_eq!(
            decrypt_stream(&blob, other_key.as_bytes(), size),
            Err(DecryptError::BadChunk(0)),
            "{label}"
        );
    }
}

#[test]
fn file_server_values() {
    let all = all();
    let v = &all["file_server"];
    let hello = &all["legacy_attachment"][0];
    assert_eq!(hello["name"], "hello_padded");
    let blob = bytes(&hello["blob_hex"]);
    let id = content_id(&blob);
    assert_eq!(
        id.as_str(),
        v["content_id_of_legacy_attachment_hello_padded"]
            .as_str()
            .unwrap()
    );

    let headers = Headers::from([(
        "Content-Type".to_owned(),
        "application/octet-stream".to_owned(),
    )]);
    let upload = V4Request::new(HttpMethod::Post, "/file", headers, Some(blob))
        .unwrap()
        .encode()
        .unwrap();
    let prefix = v["v4_upload_plaintext_prefix"].as_str().unwrap().as_bytes();
    assert_eq!(&upload[..prefix.len()], prefix);
    assert_eq!(upload.len() as u64, num(&v["v4_upload_plaintext_len"]));
    assert_eq!(
        Sha256::digest(&upload).to_vec(),
        bytes(&v["v4_upload_plaintext_sha256"])
    );
    let download = V4Request::new(HttpMethod::Get, format!("/file/{id}"), Headers::new(), None)
        .unwrap()
        .encode()
        .unwrap();
    assert_eq!(
        download,
        v["v4_download_plaintext"].as_str().unwrap().as_bytes()
    );

    for (ed, x) in [
        ("mainnet_ed25519", "mainnet_x25519_from_ed"),
        ("mainnet_ed25519", "mainnet_x25519_pinned_by_desktop"),
        ("testnet_ed25519", "testnet_x25519_from_ed"),
        ("testnet_ed25519", "testnet_x25519_in_libsession"),
    ] {
        let ed: Ed25519Pub = v[ed].as_str().unwrap().parse().unwrap();
        let x: X25519Pub = v[x].as_str().unwrap().parse().unwrap();
        assert_eq!(ed.to_x25519().unwrap(), x);
    }
    let _legacy: X25519Pub = v["legacy_x25519_only"].as_str().unwrap().parse().unwrap();
    let reference = &all["reference_constants"]["default_fs_ed25519_to_x25519"];
    let ed: Ed25519Pub = reference["ed25519"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        ed.to_x25519().unwrap().to_hex(),
        reference["x25519"].as_str().unwrap()
    );
}

#[test]
fn url_cases() {
    for case in all()["url_cases"].as_array().unwrap() {
        let url = case["url"].as_str().unwrap();
        if let Some(generate) = case.get("generate") {
            let scheme = generate["scheme"].as_str().unwrap();
            let host = generate["host"].as_str().unwrap();
            let port = generate["port"].as_u64().unwrap();
            let mut text = format!("{scheme}://{host}:{port}/file/abc123");
            let pubkey = generate["pubkey"].as_str().unwrap();
            let mut fragment = Vec::new();
            if pubkey != "<default>" {
                fragment.push(format!("p={pubkey}"));
            }
            if generate["stream"].as_bool().unwrap() {
                fragment.push("d".to_owned());
            }
            if !fragment.is_empty() {
                text = format!("{text}#{}", fragment.join("&"));
            }
            let parsed: FileUrl = text.parse().unwrap();
            assert_eq!(parsed.to_string(), url, "{text}");
            continue;
        }
        if case["parses"] == false {
            assert!(url.parse::<FileUrl>().is_err(), "{url}");
            continue;
        }
        let parsed: FileUrl = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            parsed.id.as_str(),
            case["file_id"].as_str().unwrap(),
            "{url}"
        );
        match case.get("custom_pubkey") {
            Some(Value::String(key)) => {
                assert_eq!(parsed.server_ed25519.unwrap().to_hex(), *key, "{url}");
            }
            Some(Value::Null) => assert_eq!(parsed.server_ed25519, None, "{url}"),
            _ => {}
        }
        // Where libsession and desktop/Android differ (`d=`), we follow desktop/Android.
        let stream = case
            .get("stream_decryption")
            .or_else(|| case.get("stream_decryption_desktop_android"));
        if let Some(stream) = stream {
            assert_eq!(parsed.stream, stream.as_bool().unwrap(), "{url}");
        }
        // What we write reads back the same.
        assert_eq!(
            parsed.to_string().parse::<FileUrl>().unwrap(),
            parsed,
            "{url}"
        );
    }
}

/// The `negative_cases` list, in order.
#[test]
fn negative_cases() {
    let all = all();
    let cases = all["negative_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    let hello = &all["legacy_attachment"][0];
    let blob = bytes(&hello["blob_hex"]);
    let key = bytes(&hello["keys64_hex(aes32||mac32)"]);
    let digest = bytes(&hello["digest_sha256_hex"]);
    let size = num(&hello["size_field"]);

    // Legacy: flip any bit of the blob (IV, CT or MAC) → bad MAC.
    for at in [
        0,
        15,
        16,
        300,
        blob.len() - 33,
        blob.len() - 32,
        blob.len() - 1,
    ] {
        let mut tampered = blob.clone();
        tampered[at] ^= 0x10;
        assert_eq!(
            decrypt_legacy(&tampered, &key, Some(&digest), size),
            Err(DecryptError::BadMac),
            "byte {at}"
        );
    }
    // Legacy: one digest byte changed → bad digest.
    let mut wrong = digest.clone();
    wrong[31] ^= 1;
    assert_eq!(
        decrypt_legacy(&blob, &key, Some(&wrong), size),
        Err(DecryptError::BadDigest)
    );
    // Legacy: digest truncated to 16 bytes → refused (desktop before PR #1955 accepted it).
    assert_eq!(
        decrypt_legacy(&blob, &key, Some(&digest[..16]), size),
        Err(DecryptError::BadDigest)
    );
    // Legacy: no digest.
    assert_eq!(
        decrypt_legacy(&blob, &key, None, size),
        Err(DecryptError::MissingDigest)
    );
    // Legacy: size larger than what decrypts (541 padded bytes).
    assert_eq!(
        decrypt_legacy(&blob, &key, Some(&digest), 542),
        Err(DecryptError::SizeMismatch {
            expected: 542,
            got: 541
        })
    );

    let seed = [0x42; 32];
    let data = make_data(40_000); // two chunks
    let (blob, stream_key) = encrypt_stream(&seed, StreamDomain::Attachment, &data).unwrap();
    let stream_key = stream_key.as_bytes();
    // S: first byte not 'S'.
    let mut tampered = blob.clone();
    tampered[0] = b'T';
    assert_eq!(
        decrypt_stream(&tampered, stream_key, None),
        Err(DecryptError::UnknownScheme(b'T'))
    );
    // S: drop the last byte → the final chunk fails.
    assert_eq!(
        decrypt_stream(&blob[..blob.len() - 1], stream_key, None),
        Err(DecryptError::BadChunk(1))
    );
    // S: remove the final chunk entirely → no FINAL.
    assert_eq!(
        decrypt_stream(&blob[..25 + 32_785], stream_key, None),
        Err(DecryptError::BadFinal)
    );
    // S: key of the other domain → MAC failure (also checked per vector above).
    let (profile_key, _) = derive_stream_key(&seed, StreamDomain::ProfilePicture, &data);
    assert_eq!(
        decrypt_stream(&blob, profile_key.as_bytes(), None),
        Err(DecryptError::BadChunk(0))
    );
}
