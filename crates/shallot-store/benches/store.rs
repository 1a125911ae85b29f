//! Store throughput: single-thread and 8-thread stores (group commit) and retrieve.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::namespace::Namespace;
use shallot_proto::{AccountId, AccountKind};
use shallot_store::{NewMessage, Store, StoreConfig};

const NOW: u64 = 1_700_000_000_000;
const DATA_LEN: usize = 1024;
const THREADS: u64 = 8;
const STORES_PER_THREAD: u64 = 32;

/// A unique message for account `acct`, made distinct by `n`.
fn message(acct: u8, n: u64) -> NewMessage {
    let account = AccountId::new(AccountKind::Session, [acct; 32]);
    let mut data = vec![0xab; DATA_LEN];
    data[..8].copy_from_slice(&n.to_be_bytes());
    NewMessage {
        account,
        namespace: Namespace::DEFAULT,
        hash: MessageHash::compute(&account, Namespace::DEFAULT, &data),
        timestamp: NOW,
        expiry: NOW + 86_400_000,
        data: data.into(),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let store = Store::open(dir.path().join("storage.db"), StoreConfig::default()).expect("open");
    (dir, store)
}

fn bench_store(c: &mut Criterion) {
    let (_dir, store) = open();
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_thread", |b| {
        b.iter_batched(
            || message(1, counter.fetch_add(1, Ordering::Relaxed)),
            |msg| store.store(&msg).expect("store"),
            BatchSize::SmallInput,
        );
    });

    group.throughput(Throughput::Elements(THREADS * STORES_PER_THREAD));
    group.bench_function("8_threads", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let base = counter.fetch_add(THREADS * STORES_PER_THREAD, Ordering::Relaxed);
                let msgs: Vec<Vec<NewMessage>> = (0..THREADS)
                    .map(|t| {
                        (0..STORES_PER_THREAD)
                            .map(|i| message(2, base + t * STORES_PER_THREAD + i))
                            .collect()
                    })
                    .collect();
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for batch in &msgs {
                        let store = &store;
                        scope.spawn(move || {
                            for msg in batch {
                                store.store(msg).expect("store");
                            }
                        });
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

fn bench_retrieve(c: &mut Criterion) {
    let (_dir, store) = open();
    let msgs: Vec<_> = (0..2000).map(|n| message(3, n)).collect();
    store.bulk_store(&msgs).expect("bulk");
    let account = msgs[0].account;
    let mut group = c.benchmark_group("retrieve");
    // Default max_size (−5 → 1 560 000 bytes): about 1100 one-KiB messages.
    group.bench_function("default_size_from_start", |b| {
        b.iter(|| {
            store
                .retrieve(&account, Namespace::DEFAULT, None, None, 1_560_000)
                .expect("retrieve")
        });
    });
    let last = msgs[1990].hash;
    group.bench_function("tail_after_last_hash", |b| {
        b.iter(|| {
            store
                .retrieve(&account, Namespace::DEFAULT, Some(&last), None, 1_560_000)
                .expect("retrieve")
        });
    });
    group.finish();
}

criterion_group!(benches, bench_store, bench_retrieve);
criterion_main!(benches);
