//! The SQLCipher baselines (SQLCipher 4 defaults, raw 256-bit key, so no key derivation), and
//! the same SQLCipher build without a key, to separate SQLCipher's cost from its SQLite version.
//! Same workload as the plain baseline in jobseal-bench (../common/workload.rs).

#[path = "../../common/workload.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::cell::RefCell;
use std::time::Duration;
use workload::*;

const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c";

fn variants() -> [(&'static str, Cipher<'static>); 2] {
    [("sqlcipher", Cipher::RawKey(KEY)), ("sqlcipher_nokey", Cipher::None)]
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest_1000");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    for (name, cipher) in variants() {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = scratch_dir();
                    let conn = open_baseline(&dir.path().join("db"), cipher);
                    (dir, conn, sheets(INGEST_SHEETS))
                },
                |(dir, mut conn, sheets)| {
                    for (_, json) in &sheets {
                        ingest_baseline(&mut conn, json);
                    }
                    (dir, conn)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn reveal(c: &mut Criterion) {
    let mut g = c.benchmark_group("reveal");
    for (name, cipher) in variants() {
        let dir = scratch_dir();
        let mut conn = open_baseline(&dir.path().join("db"), cipher);
        let jobs = sheets(LIVE_JOBS);
        for (_, json) in &jobs {
            ingest_baseline(&mut conn, json);
        }
        let id = jobs[LIVE_JOBS / 2].0.to_string();
        g.bench_function(name, |b| b.iter(|| read_baseline(&conn, &id)));
        g.bench_function(format!("{name}_logged"), |b| b.iter(|| read_logged_baseline(&mut conn, &id)));
    }
    g.finish();
}

fn close(c: &mut Criterion) {
    let mut g = c.benchmark_group("close");
    for (name, cipher) in variants() {
        let dir = scratch_dir();
        let conn = RefCell::new(open_baseline(&dir.path().join("db"), cipher));
        for (_, json) in &sheets(LIVE_JOBS) {
            ingest_baseline(&mut conn.borrow_mut(), json);
        }
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let (id, json) = sheets(1).pop().unwrap();
                    ingest_baseline(&mut conn.borrow_mut(), &json);
                    id.to_string()
                },
                |id| close_baseline(&mut conn.borrow_mut(), &id),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, ingest, reveal, close);
criterion_main!(benches);
