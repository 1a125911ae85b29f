//! Onion-request costs: building a 3-hop onion on the client, and peeling one layer at a node
//! (parse the outer request, X25519 + key derivation, decrypt, classify).
//!
//! Randomness comes from a seeded `StdRng`, so the figures measure computation, not `getrandom`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use shallot_proto::onion::{
    build_to_node, parse_onion_request, EncType, Layer, NodeKeys, X25519Keypair,
};
use shallot_proto::Ed25519Pub;

const CIPHERS: [EncType; 2] = [EncType::AesGcm, EncType::XChaCha20];
const KIB: usize = 1024;

/// A simulated service node: its X25519 keypair and the keys a client knows it by.
struct Node {
    pair: X25519Keypair,
    keys: NodeKeys,
}

fn node(rng: &mut StdRng) -> Node {
    let pair = X25519Keypair::generate(rng);
    let mut ed = [0u8; 32];
    rng.fill_bytes(&mut ed);
    let keys = NodeKeys {
        ed25519: Ed25519Pub::from_bytes(ed),
        x25519: *pair.public(),
    };
    Node { pair, keys }
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

/// Client side: a 1 KiB storage request through guard → relay → relay → destination node
/// (4 layers, each with its own ephemeral key, X25519 exchange and AEAD encryption).
fn build_3hop(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let path: Vec<NodeKeys> = (0..3).map(|_| node(&mut rng).keys).collect();
    let destination = node(&mut rng).keys;
    let request = random_bytes(&mut rng, KIB);

    let mut group = c.benchmark_group("onion_build_3hop");
    group.throughput(Throughput::Bytes(KIB as u64));
    for enc_type in CIPHERS {
        group.bench_with_input(
            BenchmarkId::new(enc_type.as_str(), "1KiB"),
            &enc_type,
            |b, &enc_type| {
                b.iter(|| {
                    build_to_node(
                        black_box(&path),
                        black_box(&destination),
                        black_box(&request),
                        enc_type,
                        &mut rng,
                    )
                    .unwrap()
                });
            },
        );
    }
    group.finish();
}

/// Node side: the guard receives the outer request and peels its layer down to the relay
/// instruction for the next hop.
fn peel_one_layer(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let guard = node(&mut rng);
    let destination = node(&mut rng).keys;

    let mut group = c.benchmark_group("onion_peel_layer");
    for (label, size) in [("1KiB", KIB), ("64KiB", 64 * KIB)] {
        let request = random_bytes(&mut rng, size);
        group.throughput(Throughput::Bytes(size as u64));
        for enc_type in CIPHERS {
            let body = build_to_node(&[guard.keys], &destination, &request, enc_type, &mut rng)
                .unwrap()
                .body;
            group.bench_with_input(
                BenchmarkId::new(enc_type.as_str(), label),
                &body,
                |b, body| {
                    b.iter(|| {
                        let outer = parse_onion_request(black_box(body)).unwrap();
                        let layer = outer.decrypt(&guard.pair).unwrap();
                        match layer.classify().unwrap() {
                            Layer::Relay(relay) => black_box(relay.ciphertext.len()),
                            other => panic!("expected a relay layer, got {other:?}"),
                        };
                        layer
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, build_3hop, peel_one_layer);
criterion_main!(benches);
