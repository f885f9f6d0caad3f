//! Key checks (`api::auth`): the time to authenticate must not depend on how much of the secret matched.
//! `auth/wrong_first_byte`, `auth/wrong_last_byte`, `auth/right`, `auth/wrong_length` and `auth/unknown_key`
//! should measure the same within noise (every configured key is examined on every request).
//!
//! Run: `cargo bench --bench api_auth -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, criterion_group, criterion_main};
use fsdialer::api::auth::{ApiKey, Keys, Role};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let secret = "s3cr3t-0123456789abcdef0123456789abcdef0123456789abcdef";
    let keys = Keys::new(vec![
        ApiKey {
            id: "admin".into(),
            secret: secret.into(),
            role: Role::Admin,
            agent: None,
        },
        ApiKey {
            id: "crm".into(),
            secret: "another-0123456789abcdef0123456789abcdef0123456789abcd".into(),
            role: Role::MembersWriter,
            agent: None,
        },
    ])
    .unwrap();
    let mut first = secret.as_bytes().to_vec();
    first[0] ^= 1;
    let first = String::from_utf8(first).unwrap();
    let mut last = secret.as_bytes().to_vec();
    let n = last.len();
    last[n - 1] ^= 1;
    let last = String::from_utf8(last).unwrap();
    let short = &secret[..10];
    let mut g = c.benchmark_group("auth");
    for (name, id, offered) in [
        ("wrong_first_byte", "admin", first.as_str()),
        ("wrong_last_byte", "admin", last.as_str()),
        ("right", "admin", secret),
        ("wrong_length", "admin", short),
        ("unknown_key", "nobody", secret),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| keys.authenticate(black_box(id), black_box(offered)))
        });
    }
    g.finish();
}

criterion_group!(auth_benches, benches);
criterion_main!(auth_benches);
