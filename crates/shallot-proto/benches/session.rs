//! Session-protocol message crypto: sign-then-seal encryption of a 1 KiB message to a recipient,
//! and opening plus signature verification on the recipient's side.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use shallot_proto::session::{decrypt_incoming, encrypt_for_recipient};
use shallot_proto::Identity;

const KIB: usize = 1024;

fn session_crypto(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(3);
    let sender = Identity::generate(&mut rng);
    let recipient = Identity::generate(&mut rng);
    let recipient_key = recipient.x25519_public();
    let mut message = vec![0u8; KIB];
    rng.fill_bytes(&mut message);
    let ciphertext = encrypt_for_recipient(&sender, &recipient_key, &message, &mut rng).unwrap();

    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Bytes(KIB as u64));
    group.bench_function("encrypt_for_recipient/1KiB", |b| {
        b.iter(|| {
            encrypt_for_recipient(
                &sender,
                black_box(&recipient_key),
                black_box(&message),
                &mut rng,
            )
            .unwrap()
        });
    });
    group.bench_function("decrypt_incoming/1KiB", |b| {
        b.iter(|| {
            let opened = decrypt_incoming(&recipient, black_box(&ciphertext)).unwrap();
            assert_eq!(opened.plaintext.len(), KIB);
            opened
        });
    });
    group.finish();
}

criterion_group!(benches, session_crypto);
criterion_main!(benches);
