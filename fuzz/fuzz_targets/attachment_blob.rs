//! The three attachment decryptors fed untrusted blobs.
//!
//! Raw mode (first byte not [`TAMPER_MODE`]): the bytes, cut into pieces of a size taken from the
//! input, go to the L-A and S decryptors and to AES-GCM profile decryption under fixed keys.
//! Nothing may panic, and nothing may decrypt: no one without the key can make a blob.
//!
//! Tamper mode: the rest of the input is a plaintext, encrypted in every scheme; then one byte
//! chosen by the input is flipped (or the blob is cut short). Untouched, each blob decrypts, in
//! pieces, to exactly the plaintext; touched, each one is refused.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shallot_proto::attachment::legacy::{encrypt_legacy, LegacyDecryptor, LegacyPadding};
use shallot_proto::attachment::stream::{encrypt_stream, StreamDecryptor, StreamDomain};
use shallot_proto::attachment::ProfileKey;

/// First byte that switches to tamper mode.
const TAMPER_MODE: u8 = 0xA5;

#[derive(Debug, Arbitrary)]
enum Damage {
    None,
    Flip { at: usize, bit: u8 },
    Truncate { keep: usize },
}

fn legacy_open(blob: &[u8], key: &[u8], digest: Option<&[u8]>, size: u64, piece: usize) -> Result<Vec<u8>, ()> {
    let mut decryptor = LegacyDecryptor::new(key, digest, size).map_err(|_| ())?;
    let mut out = Vec::new();
    for chunk in blob.chunks(piece) {
        decryptor.update(chunk, &mut out);
    }
    decryptor.finish(&mut out).map(|()| out).map_err(|_| ())
}

fn stream_open(blob: &[u8], key: &[u8], size: Option<u64>, piece: usize) -> Result<Vec<u8>, ()> {
    let mut decryptor = StreamDecryptor::new(key, size).map_err(|_| ())?;
    let mut out = Vec::new();
    for chunk in blob.chunks(piece) {
        decryptor.update(chunk, &mut out).map_err(|_| ())?;
    }
    decryptor.finish(&mut out).map(|()| out).map_err(|_| ())
}

fn damage(blob: &[u8], how: &Damage) -> Option<Vec<u8>> {
    let mut blob = blob.to_vec();
    match *how {
        Damage::None => return None,
        Damage::Flip { at, bit } => {
            let at = at % blob.len();
            blob[at] ^= 1 << (bit % 8);
        }
        Damage::Truncate { keep } => blob.truncate(keep % blob.len()),
    }
    Some(blob)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 64) + 1;
    if first != TAMPER_MODE {
        let key = [first; 64];
        assert!(legacy_open(rest, &key, Some(&key[..32]), rest.len() as u64, piece).is_err());
        assert!(stream_open(rest, &key[..32], None, piece).is_err());
        assert!(ProfileKey::from_bytes([first; 32]).decrypt(rest).is_err());
        return;
    }
    let mut input = Unstructured::new(rest);
    let (Ok(how), Ok(plain)) = (Damage::arbitrary(&mut input), Vec::<u8>::arbitrary(&mut input)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(plain.len() as u64);

    let (blob, key, sealed) = encrypt_legacy(&plain, LegacyPadding::Padded, &mut rng);
    let opened = |b: &[u8]| legacy_open(b, key.as_bytes(), Some(&sealed.digest), sealed.size, piece);
    match damage(&blob, &how) {
        None => assert_eq!(opened(&blob).as_deref(), Ok(plain.as_slice())),
        Some(bad) => assert!(opened(&bad).is_err()),
    }

    let (blob, key) = encrypt_stream(&[7; 32], StreamDomain::Attachment, &plain).unwrap();
    let opened = |b: &[u8]| stream_open(b, key.as_bytes(), Some(plain.len() as u64), piece);
    match damage(&blob, &how) {
        None => assert_eq!(opened(&blob).as_deref(), Ok(plain.as_slice())),
        Some(bad) => assert!(opened(&bad).is_err()),
    }

    let key = ProfileKey::from_bytes([9; 32]);
    let blob = key.encrypt(&plain, &mut rng);
    match damage(&blob, &how) {
        None if plain.is_empty() => assert!(key.decrypt(&blob).is_err()),
        None => assert_eq!(key.decrypt(&blob).as_deref(), Ok(plain.as_slice())),
        Some(bad) => assert!(key.decrypt(&bad).is_err()),
    }
});
