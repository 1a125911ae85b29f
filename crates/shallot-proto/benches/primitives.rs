//! The raw primitives the onion and Session operations are built from, measured in the same run
//! so that the composite benchmarks can be compared with their lower bounds.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::Aes256Gcm;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use chacha20poly1305::XChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::Sha256;
use shallot_proto::onion::X25519Keypair;
use shallot_proto::X25519Pub;
use x25519_dalek::{PublicKey, StaticSecret};

const KIB: usize = 1024;
const SIZES: [(&str, usize); 2] = [("1KiB", KIB), ("64KiB", 64 * KIB)];

fn random_bytes<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

fn random_vec(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

/// One variable-base scalar multiplication (a key exchange), one fixed-base one (deriving a
/// public key, as every fresh ephemeral key does), and the Montgomery-ladder multiplication by 8
/// the Session code uses to reject low-order keys. The onion code exchanges and derives keys
/// with aws-lc (`X25519Keypair`): those two are the bound for onion layers; the portable dalek
/// figures are the Session code's (and show what aws-lc saves).
fn x25519(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(10);
    let ours = StaticSecret::from(random_bytes::<32>(&mut rng));
    let theirs = PublicKey::from(&StaticSecret::from(random_bytes::<32>(&mut rng)));
    let ours_fast = X25519Keypair::from_secret(ours.clone());
    let theirs_key = X25519Pub::from_bytes(*theirs.as_bytes());

    let mut group = c.benchmark_group("x25519");
    group.bench_function("exchange_aws_lc", |b| {
        b.iter(|| black_box(&ours_fast).exchange(black_box(&theirs_key)));
    });
    group.bench_function("keypair_aws_lc", |b| {
        b.iter(|| X25519Keypair::from_secret(black_box(ours.clone())));
    });
    group.bench_function("diffie_hellman", |b| {
        b.iter(|| black_box(&ours).diffie_hellman(black_box(&theirs)));
    });
    group.bench_function("public_from_secret", |b| {
        b.iter(|| PublicKey::from(black_box(&ours)));
    });
    let point = MontgomeryPoint(*theirs.as_bytes());
    let eight = Scalar::from(8u8);
    group.bench_function("montgomery_mul_by_8", |b| {
        b.iter(|| black_box(point) * black_box(eight));
    });
    group.finish();
}

/// The per-layer key derivations: HMAC-SHA256 for aes-gcm, BLAKE2b-256 for xchacha20.
fn kdf(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(11);
    let shared = random_bytes::<32>(&mut rng);
    let keys = random_bytes::<64>(&mut rng);

    let mut group = c.benchmark_group("kdf");
    group.bench_function("hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"LOKI").unwrap();
            mac.update(black_box(&shared));
            mac.finalize().into_bytes()
        });
    });
    group.bench_function("blake2b_256", |b| {
        b.iter(|| {
            let mut hash = Blake2b::<U32>::new();
            hash.update(black_box(&shared));
            hash.update(black_box(&keys));
            hash.finalize()
        });
    });
    group.finish();
}

/// AEAD decryption including the key schedule, as a node does once per layer.
fn aead_decrypt(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(12);
    let key = random_bytes::<32>(&mut rng);

    let mut group = c.benchmark_group("aead_decrypt");
    for (label, size) in SIZES {
        let plaintext = random_vec(&mut rng, size);
        group.throughput(Throughput::Bytes(size as u64));

        let iv = random_bytes::<12>(&mut rng);
        let ct = Aes256Gcm::new(&key.into())
            .encrypt(&iv.into(), plaintext.as_slice())
            .unwrap();
        group.bench_with_input(BenchmarkId::new("aes-256-gcm", label), &ct, |b, ct| {
            b.iter(|| {
                Aes256Gcm::new(black_box(&key).into())
                    .decrypt(&iv.into(), black_box(ct.as_slice()))
                    .unwrap()
            });
        });

        let nonce = random_bytes::<24>(&mut rng);
        let ct = XChaCha20Poly1305::new(&key.into())
            .encrypt(&nonce.into(), plaintext.as_slice())
            .unwrap();
        group.bench_with_input(
            BenchmarkId::new("xchacha20-poly1305", label),
            &ct,
            |b, ct| {
                b.iter(|| {
                    XChaCha20Poly1305::new(black_box(&key).into())
                        .decrypt(&nonce.into(), black_box(ct.as_slice()))
                        .unwrap()
                });
            },
        );
    }
    group.finish();
}

/// Ed25519 over a 1 KiB message; `verify_strict` is the check the crate uses. Decompressing the
/// public key is listed separately because the Session code does it on every incoming message.
fn ed25519(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(13);
    let signing = SigningKey::from_bytes(&random_bytes::<32>(&mut rng));
    let verifying = signing.verifying_key();
    let verifying_bytes = verifying.to_bytes();
    let message = random_vec(&mut rng, KIB);
    let signature = signing.sign(&message);

    let mut group = c.benchmark_group("ed25519");
    group.throughput(Throughput::Bytes(KIB as u64));
    group.bench_function("sign/1KiB", |b| {
        b.iter(|| black_box(&signing).sign(black_box(&message)));
    });
    group.bench_function("verify_strict/1KiB", |b| {
        b.iter(|| {
            black_box(&verifying)
                .verify_strict(black_box(&message), black_box(&signature))
                .unwrap();
        });
    });
    group.bench_function("decompress_key", |b| {
        b.iter(|| VerifyingKey::from_bytes(black_box(&verifying_bytes)).unwrap());
    });
    group.finish();
}

/// libsodium-style sealed box (X25519 + XSalsa20-Poly1305) of 1 KiB: sealing generates an
/// ephemeral key and does one exchange, opening does one exchange.
fn sealed_box(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(14);
    let secret = crypto_box::SecretKey::from_bytes(random_bytes::<32>(&mut rng));
    let public = secret.public_key();
    let message = random_vec(&mut rng, KIB);
    let sealed = public.seal(&mut rng, &message).unwrap();

    let mut group = c.benchmark_group("crypto_box");
    group.throughput(Throughput::Bytes(KIB as u64));
    group.bench_function("seal/1KiB", |b| {
        b.iter(|| {
            black_box(&public)
                .seal(&mut rng, black_box(&message))
                .unwrap()
        });
    });
    group.bench_function("open/1KiB", |b| {
        b.iter(|| black_box(&secret).unseal(black_box(&sealed)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, x25519, kdf, aead_decrypt, ed25519, sealed_box);
criterion_main!(benches);
