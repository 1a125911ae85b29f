//! Property tests for `attachment`: encrypt → decrypt round trips of all three schemes for sizes
//! from 0 B to 600 kB, fed in arbitrary pieces; any changed byte, wrong size or wrong key is a
//! clear error; pointers and URLs survive encoding; arbitrary input never panics.
//! One 10 MB case per scheme runs as a plain test.

use proptest::prelude::*;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use shallot_proto::attachment::legacy::{
    decrypt_legacy, encrypt_legacy, legacy_blob_len, LegacyDecryptor, LegacyEncryptor,
    LegacyPadding,
};
use shallot_proto::attachment::padding::{legacy_padded_len, stream_encrypted_len};
use shallot_proto::attachment::pointer::{resolve_profile_picture, ProfileDecryption};
use shallot_proto::attachment::stream::{
    decrypt_stream, encrypt_stream, StreamDecryptor, StreamDomain, StreamEncryptor,
    MAX_REGULAR_SIZE,
};
use shallot_proto::attachment::{
    AttachmentPointer, DecryptError, Decryption, FileUrl, LegacyKey, ProfileKey, MAX_BLOB_SIZE,
};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Mostly small sizes, some up to 600 kB (many chunks; the 10 MB cases are plain tests below,
/// kept out of the proptests so the default run stays fast), and the edges of blocks and chunks.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..70_000,
        1 => 0usize..600_000,
        1 => prop::sample::select(vec![0, 1, 15, 16, 17, 541, 542, 32_767, 32_768, 32_769, 65_536]),
    ]
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// Splits `len` bytes into random piece lengths (1..=70,000 each).
fn pieces(len: usize, seed: u64) -> Vec<std::ops::Range<usize>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut at = 0;
    let mut out = Vec::new();
    while at < len {
        let step = rng.gen_range(1..=70_000).min(len - at);
        out.push(at..at + step);
        at += step;
    }
    out
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn legacy_round_trip(len in size(), seed: u64, padded: bool) {
        let plain = data(len, seed);
        let padding = if padded { LegacyPadding::Padded } else { LegacyPadding::Unpadded };
        let mut rng = StdRng::seed_from_u64(seed);
        let key = LegacyKey::generate(&mut rng);
        let mut encryptor = LegacyEncryptor::new(&key, padding, &mut rng);
        let mut blob = Vec::new();
        for piece in pieces(len, seed) {
            encryptor.update(&plain[piece], &mut blob);
        }
        let sealed = encryptor.finish(&mut blob);
        let padded_len = if padded { legacy_padded_len(len) } else { len };
        prop_assert_eq!(blob.len(), 16 + (padded_len / 16 + 1) * 16 + 32);
        prop_assert_eq!(blob.len(), legacy_blob_len(len, padding));
        prop_assert_eq!(sealed.size, len as u64);

        let mut decryptor = LegacyDecryptor::new(key.as_bytes(), Some(&sealed.digest), sealed.size).unwrap();
        let mut out = Vec::new();
        for piece in pieces(blob.len(), seed.rotate_left(7)) {
            decryptor.update(&blob[piece], &mut out);
        }
        decryptor.finish(&mut out).unwrap();
        prop_assert_eq!(&out, &plain);

        // Any changed byte is a bad MAC; a size beyond the padded data is refused.
        let at = usize::try_from(seed % blob.len() as u64).unwrap();
        let mut tampered = blob.clone();
        tampered[at] ^= 0x80;
        prop_assert_eq!(
            decrypt_legacy(&tampered, key.as_bytes(), Some(&sealed.digest), sealed.size),
            Err(DecryptError::BadMac)
        );
        prop_assert_eq!(
            decrypt_legacy(&blob, key.as_bytes(), Some(&sealed.digest), padded_len as u64 + 1),
            Err(DecryptError::SizeMismatch { expected: padded_len as u64 + 1, got: padded_len as u64 })
        );
        prop_assert_eq!(
            decrypt_legacy(&blob[..blob.len() - 1], key.as_bytes(), Some(&sealed.digest), sealed.size),
            Err(DecryptError::BadMac)
        );
    }

    #[test]
    fn stream_round_trip(len in size(), seed: u64, profile: bool) {
        let plain = data(len, seed);
        let domain = if profile { StreamDomain::ProfilePicture } else { StreamDomain::Attachment };
        let account = data(32, !seed).try_into().unwrap();
        let (whole, key) = encrypt_stream(&account, domain, &plain).unwrap();
        prop_assert_eq!(whole.len() as u64, stream_encrypted_len(len as u64));

        // The same bytes in pieces give the same blob (the scheme is deterministic).
        let (_, nonce) = shallot_proto::attachment::stream::derive_stream_key(&account, domain, &plain);
        let mut encryptor = StreamEncryptor::new(&key, &nonce, len as u64).unwrap();
        let mut blob = Vec::new();
        for piece in pieces(len, seed) {
            encryptor.update(&plain[piece], &mut blob).unwrap();
        }
        encryptor.finish(&mut blob).unwrap();
        prop_assert_eq!(&blob, &whole);

        let mut decryptor = StreamDecryptor::new(key.as_bytes(), Some(len as u64)).unwrap();
        let mut out = Vec::new();
        for piece in pieces(blob.len(), seed.rotate_left(9)) {
            decryptor.update(&blob[piece], &mut out).unwrap();
        }
        decryptor.finish(&mut out).unwrap();
        prop_assert_eq!(&out, &plain);

        let at = 1 + usize::try_from(seed % (blob.len() as u64 - 1)).unwrap();
        let mut tampered = blob.clone();
        tampered[at] ^= 0x01;
        let refused = decrypt_stream(&tampered, key.as_bytes(), Some(len as u64));
        prop_assert!(matches!(refused, Err(DecryptError::BadChunk(_))), "{:?}", refused);
        prop_assert_eq!(
            decrypt_stream(&blob, key.as_bytes(), Some(len as u64 + 1)),
            Err(DecryptError::SizeMismatch { expected: len as u64 + 1, got: len as u64 })
        );
    }

    #[test]
    fn profile_round_trip(len in 0usize..600_000, seed: u64) {
        let image = data(len, seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let key = ProfileKey::generate(&mut rng);
        let blob = key.encrypt(&image, &mut rng);
        prop_assert_eq!(blob.len(), len + 28);
        if len == 0 {
            prop_assert_eq!(key.decrypt(&blob), Err(DecryptError::TooShort(28)));
        } else {
            prop_assert_eq!(key.decrypt(&blob).unwrap(), image);
            let other = ProfileKey::generate(&mut rng);
            prop_assert_eq!(other.decrypt(&blob), Err(DecryptError::BadTag));
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_blobs_never_panic(blob in prop::collection::vec(any::<u8>(), 0..2000), key: [u8; 64], size in 0u64..3000, cut in 1usize..100) {
        let mut legacy = LegacyDecryptor::new(&key, Some(&key[..32]), size).unwrap();
        let mut stream = StreamDecryptor::new(&key[..32], Some(size)).unwrap();
        let mut out = Vec::new();
        let mut stream_ok = true;
        for piece in blob.chunks(cut) {
            legacy.update(piece, &mut out);
            stream_ok = stream_ok && stream.update(piece, &mut out).is_ok();
        }
        prop_assert!(legacy.finish(&mut out).is_err());
        if stream_ok {
            prop_assert!(stream.finish(&mut out).is_err());
        }
        let _ = ProfileKey::from_bytes(key[..32].try_into().unwrap()).decrypt(&blob);
    }

    #[test]
    fn pointers_and_urls(id in "[A-Za-z0-9_-]{1,60}", port: Option<u16>, key: Option<[u8; 32]>, stream: bool, https: bool) {
        let scheme = if https { "https" } else { "http" };
        let port = port.filter(|&p| p != 0).map_or(String::new(), |p| format!(":{p}"));
        let mut text = format!("{scheme}://files.example{port}/file/{id}");
        let mut fragment = Vec::new();
        if let Some(key) = key {
            fragment.push(format!("p={}", hex::encode(key)));
        }
        if stream {
            fragment.push("d".to_owned());
        }
        if !fragment.is_empty() {
            text = format!("{text}#{}", fragment.join("&"));
        }
        let url: FileUrl = text.parse().unwrap();
        prop_assert_eq!(url.to_string().parse::<FileUrl>().unwrap(), url.clone());
        let mut rng = StdRng::seed_from_u64(7);
        let pointer = if stream {
            let (_, key) = encrypt_stream(&[1; 32], StreamDomain::Attachment, b"x").unwrap();
            AttachmentPointer::stream(&url, &key, 1).unwrap()
        } else {
            let (_, key, sealed) = encrypt_legacy(b"x", LegacyPadding::Padded, &mut rng);
            AttachmentPointer::legacy(&url, &key, &sealed).unwrap()
        };
        let decoded = AttachmentPointer::decode(pointer.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(&decoded, &pointer);
        let resolved = decoded.resolve().unwrap();
        prop_assert_eq!(resolved.url, url);
        prop_assert_eq!(matches!(resolved.decryption, Decryption::Stream { .. }), stream);
    }

    #[test]
    fn arbitrary_urls_never_panic(url in "\\PC{0,80}", key in prop::collection::vec(any::<u8>(), 0..70)) {
        if let Ok(parsed) = url.parse::<FileUrl>() {
            prop_assert_eq!(parsed.to_string().parse::<FileUrl>().unwrap(), parsed);
        }
        let _ = resolve_profile_picture(&url, &key);
    }
}

#[test]
fn pointer_always_encodes_the_numeric_id() {
    let url: FileUrl = "http://filev2.getsession.org/file/abc".parse().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let (_, key, sealed) = encrypt_legacy(b"x", LegacyPadding::Padded, &mut rng);
    let pointer = AttachmentPointer::legacy(&url, &key, &sealed).unwrap();
    assert_eq!(pointer.deprecated_id, Some(0));
    assert_eq!(
        &pointer.encode_to_vec()[..9],
        &[0x09, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let url: FileUrl = "http://filev2.getsession.org/files/2478430809375318"
        .parse()
        .unwrap();
    let pointer = AttachmentPointer::legacy(&url, &key, &sealed).unwrap();
    assert_eq!(pointer.deprecated_id, Some(2_478_430_809_375_318));
    // A pointer without a digest cannot be downloaded ("ask the sender to update").
    let without = AttachmentPointer {
        digest: None,
        ..pointer
    };
    assert_eq!(
        without.resolve().unwrap_err().to_string(),
        DecryptError::MissingDigest.to_string()
    );
}

#[test]
fn profile_picture_references() {
    let mut rng = StdRng::seed_from_u64(3);
    let key = ProfileKey::generate(&mut rng);
    let blob = key.encrypt(b"png", &mut rng);
    let (_, decryption) =
        resolve_profile_picture("http://filev2.getsession.org/file/abc", key.as_bytes()).unwrap();
    assert_eq!(decryption, ProfileDecryption::Legacy(key.clone()));
    assert_eq!(decryption.decrypt(blob).unwrap(), b"png");
    let (blob, stream_key) =
        encrypt_stream(&[2; 32], StreamDomain::ProfilePicture, b"png").unwrap();
    let (_, decryption) =
        resolve_profile_picture("http://h/file/abc#d", stream_key.as_bytes()).unwrap();
    assert_eq!(decryption.decrypt(blob).unwrap(), b"png");
}

/// A full-size attachment in each scheme: 10,000,000 bytes (L-A), 10,218,286 (S, the largest
/// that fits the onion size cap), and the 10 MB blobs stay within what a file server accepts.
#[test]
fn ten_megabytes_each_way() {
    let plain = data(10_000_000, 10);
    let mut rng = StdRng::seed_from_u64(10);
    let (blob, key, sealed) = encrypt_legacy(&plain, LegacyPadding::Padded, &mut rng);
    assert_eq!(blob.len(), 10_000_064);
    assert!(blob.len() <= MAX_BLOB_SIZE);
    let opened = decrypt_legacy(&blob, key.as_bytes(), Some(&sealed.digest), sealed.size).unwrap();
    assert!(opened == plain);

    let plain = data(usize::try_from(MAX_REGULAR_SIZE).unwrap(), 11);
    let (blob, key) = encrypt_stream(&[3; 32], StreamDomain::Attachment, &plain).unwrap();
    assert_eq!(blob.len(), MAX_BLOB_SIZE);
    let opened = decrypt_stream(&blob, key.as_bytes(), Some(MAX_REGULAR_SIZE)).unwrap();
    assert!(opened == plain);
    let too_big = vec![0; usize::try_from(MAX_REGULAR_SIZE).unwrap() + 1];
    assert!(encrypt_stream(&[3; 32], StreamDomain::Attachment, &too_big).is_err());

    let key = ProfileKey::generate(&mut rng);
    let blob = key.encrypt(&plain[..10_000_000], &mut rng);
    assert!(key.decrypt_owned(blob).unwrap() == plain[..10_000_000]);
}
