//! CSV import benchmarks (SPEC §9): `fsdialer import`'s code path, end to end.
//! - `import/csv_to_redis_1m`: 1,000,000 rows (name, priority, timezone, two numbers, two variables) from a CSV
//!   file into a private local redis-server (started by the bench, killed at the end); target ≤ 10 s. The campaign
//!   is dropped between iterations (not timed).
//! - `import/parse_only_1m`: the same file read and validated without a store (the client side's share).
//!
//! - `dnc_import/csv_to_redis_1m`: 1,000,000 national numbers (`0501234567` form, normalised with a country code)
//!   streamed in 64 KiB chunks through `dnc::load::import_stream` into a do-not-call list on a private
//!   redis-server; target ≥ 200,000 numbers/s. The list is emptied between iterations (not timed).
//!
//! Run: `cargo bench --bench import -- --warm-up-time 1 --measurement-time 3` (only the do-not-call import:
//! `cargo bench --bench import -- dnc_import`)
//! (criterion's minimum of 10 samples makes the Redis bench take a few minutes).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::api::import::{self, ImportOptions, rows::Rows};
use fsdialer::store::Store;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROWS: u64 = 1_000_000;

fn write_csv(path: &Path) {
    let f = std::fs::File::create(path).expect("create the csv");
    let mut w = std::io::BufWriter::new(f);
    let tz = ["Europe/Kyiv", "Europe/Warsaw", "America/New_York", ""];
    writeln!(
        w,
        "name,priority,timezone,number_1,priority_1,number_2,var_debt,var_language"
    )
    .unwrap();
    for i in 0..ROWS {
        writeln!(
            w,
            "Member {i},{},{},+38093{i:07},1,+38044{i:07},{},uk",
            i % 5,
            tz[(i % 4) as usize],
            (i * 7919) % 100_000
        )
        .unwrap();
    }
    w.flush().unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    csv: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("members.csv");
    write_csv(&csv);
    Setup { _dir: dir, csv }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let redis = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let store = rt.block_on(Store::open(&redis.url())).expect("connect");
    rt.block_on(store.put_campaign_doc("bench", "{}")).unwrap();

    let mut g = c.benchmark_group("import");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROWS));
    g.bench_function("parse_only_1m", |b| {
        b.iter(|| {
            let f = std::fs::File::open(&s.csv).unwrap();
            let mut rows = Rows::new(f, Default::default()).unwrap();
            let mut n = 0u64;
            while let Some(r) = rows.next_row() {
                let (_, m) = r.unwrap();
                assert!(m.is_ok());
                n += 1;
            }
            assert_eq!(n, ROWS);
        })
    });
    g.bench_function("csv_to_redis_1m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(store.drop_campaign("bench")).unwrap();
                let started = Instant::now();
                let report = rt
                    .block_on(import::import_file(
                        &store,
                        "bench",
                        &s.csv,
                        ImportOptions::default(),
                        chrono::Utc::now(),
                        None,
                    ))
                    .unwrap();
                total += started.elapsed();
                assert_eq!(report.added, ROWS);
            }
            total
        })
    });
    g.finish();
    drop(redis);
}

/// The do-not-call CSV, 1,000,000 lines, in 64 KiB chunks.
fn dnc_chunks() -> Vec<bytes::Bytes> {
    let mut chunks = Vec::new();
    let mut chunk = String::with_capacity(64 * 1024 + 32);
    for i in 0..ROWS {
        chunk.push_str(&format!("0{:09}\n", 500_000_000 + i));
        if chunk.len() >= 64 * 1024 {
            chunks.push(bytes::Bytes::from(std::mem::take(&mut chunk)));
        }
    }
    chunks.push(bytes::Bytes::from(chunk));
    chunks
}

fn dnc_benches(c: &mut Criterion) {
    use fsdialer::dnc::{DncList, E164Rule, load::import_stream};
    let chunks = dnc_chunks();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let redis = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let store = rt.block_on(Store::open(&redis.url())).expect("connect");
    let list = DncList::Campaign("bench".into());
    let rule = E164Rule {
        country_code: Some("380".into()),
        ..E164Rule::default()
    };
    let mut g = c.benchmark_group("dnc_import");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROWS));
    g.bench_function("csv_to_redis_1m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(store.dnc_clear(&list)).unwrap();
                let body =
                    futures::stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
                let started = Instant::now();
                let report = rt
                    .block_on(import_stream(&store, &list, rule.clone(), body, u64::MAX))
                    .unwrap();
                total += started.elapsed();
                assert_eq!(report.added, ROWS);
            }
            total
        })
    });
    g.finish();
    drop(redis);
}

criterion_group!(import_benches, benches, dnc_benches);
criterion_main!(import_benches);
