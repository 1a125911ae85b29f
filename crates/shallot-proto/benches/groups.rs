//! Groups: rekeying a 100-member group (issue #13 target: under 50 ms) and a member finding its
//! copy among 150 entries.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use shallot_proto::group::keys::KeyMessage;
use shallot_proto::group::{rekey, GroupAdmin};
use shallot_proto::{Identity, SessionId};

fn members(n: u8) -> Vec<Identity> {
    (0..n).map(|i| Identity::from_seed([i; 32])).collect()
}

fn bench_rekey(c: &mut Criterion) {
    let admin = GroupAdmin::from_seed([0xee; 32]);
    let people = members(100);
    let ids: Vec<SessionId> = people.iter().map(Identity::session_id).collect();
    c.bench_function("group/rekey_100_members", |b| {
        b.iter(|| black_box(rekey(&admin, black_box(&ids), 7)));
    });
    let message = rekey(&admin, &ids, 7).message;
    let last = &people[99];
    c.bench_function("group/member_opens_key_of_100", |b| {
        b.iter(|| {
            let KeyMessage::Full(full) =
                KeyMessage::parse(black_box(&message), &admin.id()).unwrap()
            else {
                unreachable!()
            };
            black_box(full.open_member(last, &admin.id()))
        });
    });
}

criterion_group!(benches, bench_rekey);
criterion_main!(benches);
