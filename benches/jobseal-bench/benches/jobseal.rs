//! jobseal against plain SQLite (the very SQLite the product links: rusqlite 0.37, `bundled`) on
//! the workload of ../common/workload.rs. The SQLCipher side of the same workload is in
//! sqlcipher-bench, a separate build graph. Run everything with `bash benches/run.sh`.

#[path = "../../common/workload.rs"]
mod workload;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use jobseal::crypto::{Aad, Key32};
use jobseal::{JobSheet, JobState, KeyStore, KeyStoreError, ManualClock, Vault};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;
use workload::*;
use zeroize::Zeroizing;

#[path = "../../common/mem_keystore.rs"]
mod mem_keystore;
use mem_keystore::MemKeyStore;

fn now() -> DateTime<Utc> {
    NOW_RFC3339.parse().unwrap()
}

fn clock_at(t: DateTime<Utc>) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t))
}

fn mem_vault(dir: &Path) -> Vault {
    Vault::open(dir, Arc::new(MemKeyStore::default()), clock_at(now())).unwrap()
}

fn file_vault(dir: &Path, t: DateTime<Utc>) -> Vault {
    jobseal_testkit::open_vault(dir, clock_at(t)).unwrap()
}

fn ingest_json(vault: &Vault, json: &str) {
    vault.ingest(&JobSheet::from_json(json.as_bytes()).unwrap()).unwrap();
}

/// A vault as a technician's phone holds it mid-day: enrolled with `PREKEYS` unused prekeys and
/// `LIVE_JOBS` live jobs. A shred's rotation re-wraps all of these secrets.
const PREKEYS: u32 = 100;

fn working_vault(vault: &Vault) -> Vec<Uuid> {
    let (_, dispatch_pub) = jobseal::envelope::generate_keypair().unwrap();
    vault.enrol(dispatch_pub, PREKEYS).unwrap();
    sheets(LIVE_JOBS)
        .into_iter()
        .map(|(id, json)| {
            ingest_json(vault, &json);
            id
        })
        .collect()
}

fn aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead");
    let key = Key32::random().expect("system RNG");
    let job = Uuid::new_v4();
    let aad = Aad::new("jobseal/v1").part(job.as_bytes()).part(b"customer_name").u64(1);
    for size in [64usize, 256, 1024] {
        let msg = vec![0x42u8; size];
        let sealed = key.seal(&msg, aad.bytes()).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &msg, |b, m| b.iter(|| key.seal(m, aad.bytes()).unwrap()));
        g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| b.iter(|| key.open(s, aad.bytes()).unwrap()));
    }
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest_1000");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    // Sealed sheets: HPKE open, prekey consumed, fields sealed under a fresh data key, stored,
    // audited and queued for dispatch, one durable transaction per sheet.
    g.bench_function("jobseal_sealed", |b| {
        b.iter_batched(
            || {
                let dir = scratch_dir();
                let vault = mem_vault(dir.path());
                let (dispatch_sk, dispatch_pub) = jobseal::envelope::generate_keypair().unwrap();
                vault.enrol(dispatch_pub, 500).unwrap();
                let bundle = vault.add_prekeys(500).unwrap();
                let envelopes: Vec<Vec<u8>> = sheets(INGEST_SHEETS)
                    .iter()
                    .zip(&bundle.prekeys)
                    .map(|((_, json), p)| jobseal::seal_job_sheet(&dispatch_sk, &bundle, Some(p.id), json.as_bytes()).unwrap())
                    .collect();
                (dir, vault, envelopes)
            },
            |(dir, vault, envelopes)| {
                for e in &envelopes {
                    vault.receive(e).unwrap();
                }
                (dir, vault)
            },
            BatchSize::PerIteration,
        )
    });
    // The same sheets in plaintext through Vault::ingest (no HPKE): isolates the delivery cost.
    g.bench_function("jobseal_plaintext", |b| {
        b.iter_batched(
            || {
                let dir = scratch_dir();
                let vault = mem_vault(dir.path());
                (dir, vault, sheets(INGEST_SHEETS))
            },
            |(dir, vault, sheets)| {
                for (_, json) in &sheets {
                    ingest_json(&vault, json);
                }
                (dir, vault)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("plain", |b| {
        b.iter_batched(
            || {
                let dir = scratch_dir();
                let conn = open_baseline(&dir.path().join("db"), Cipher::None);
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
    g.finish();
}

fn reveal(c: &mut Criterion) {
    let mut g = c.benchmark_group("reveal");
    {
        let dir = scratch_dir();
        let vault = mem_vault(dir.path());
        let jobs = working_vault(&vault);
        let id = jobs[LIVE_JOBS / 2];
        vault.advance(id, JobState::EnRoute).unwrap();
        vault.advance(id, JobState::OnSite).unwrap();
        let r = vault.reveal(id).unwrap();
        assert!(r.fields.iter().all(|f| matches!(f.access, jobseal::FieldAccess::Visible { .. })));
        g.bench_function("jobseal", |b| b.iter(|| vault.reveal(id).unwrap()));
    }
    {
        let dir = scratch_dir();
        let mut conn = open_baseline(&dir.path().join("db"), Cipher::None);
        let jobs = sheets(LIVE_JOBS);
        for (_, json) in &jobs {
            ingest_baseline(&mut conn, json);
        }
        let id = jobs[LIVE_JOBS / 2].0.to_string();
        g.bench_function("plain", |b| b.iter(|| read_baseline(&conn, &id)));
        g.bench_function("plain_logged", |b| b.iter(|| read_logged_baseline(&mut conn, &id)));
    }
    g.finish();
}

fn close(c: &mut Criterion) {
    let mut g = c.benchmark_group("close");
    g.sample_size(50);
    // Close with report, then the shred: fields and data key deleted with secure_delete, key
    // rotation re-wrapping every secret, old KEK deleted, WAL checkpointed and truncated.
    for (name, file_ks) in [("jobseal", false), ("jobseal_file_keystore", true)] {
        let dir = scratch_dir();
        let vault = if file_ks { file_vault(dir.path(), now()) } else { mem_vault(dir.path()) };
        working_vault(&vault);
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let (id, json) = sheets(1).pop().unwrap();
                    ingest_json(&vault, &json);
                    vault.advance(id, JobState::EnRoute).unwrap();
                    vault.advance(id, JobState::OnSite).unwrap();
                    id
                },
                |id| vault.close(id, "Installed the terminal; line active.").unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    {
        let dir = scratch_dir();
        let conn = RefCell::new(open_baseline(&dir.path().join("db"), Cipher::None));
        for (_, json) in &sheets(LIVE_JOBS) {
            ingest_baseline(&mut conn.borrow_mut(), json);
        }
        g.bench_function("plain", |b| {
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
        let mut probe = FsyncProbe::new(dir.path());
        g.bench_function("fdatasync_4k", |b| b.iter(|| probe.write_and_fdatasync()));
    }
    g.finish();
}

/// The large-history fixture: 10,000 tombstones and about 100,000 audit events, made through the
/// public API on a tmpfs (fast), then copied to the disk the measurement runs on.
const TOMBSTONES: usize = 10_000;
const AUDIT_TARGET: usize = 100_000;
const DAYS: usize = 10;

fn day(d: usize) -> String {
    format!("2030-03-{:02}", 4 + d)
}

fn build_history(dir: &Path) -> DateTime<Utc> {
    let clock = clock_at(now());
    let vault = jobseal_testkit::open_vault(dir, clock.clone()).unwrap();
    let per_day = TOMBSTONES / DAYS;
    // Per job: ingested, en-route, shredded = 3 events; the rest are reveals, 5 events each.
    let reveals = (AUDIT_TARGET - 3 * TOMBSTONES) / 5 / DAYS;
    for d in 0..DAYS {
        clock.set_wall(format!("{}T08:30:00Z", day(d)).parse().unwrap());
        let ids: Vec<Uuid> = (0..per_day)
            .map(|i| {
                let id = Uuid::new_v4();
                let json = sheet_json(id, d * per_day + i).replace("2030-03-04", &day(d));
                ingest_json(&vault, &json);
                vault.advance(id, JobState::EnRoute).unwrap();
                id
            })
            .collect();
        for r in 0..reveals {
            vault.reveal(ids[r % per_day]).unwrap();
        }
        // Past the day's hard expiry: the sweep shreds all of the day's jobs in one rotation.
        clock.set_wall(format!("{}T15:00:00Z", day(d)).parse().unwrap());
        assert_eq!(vault.sweep().unwrap().len(), per_day);
    }
    let events = vault.audit_log(None).unwrap().len();
    assert!(events >= AUDIT_TARGET, "{events} audit events");
    eprintln!("large history: {} jobs, {events} audit events", vault.list_jobs().unwrap().len());
    format!("{}T15:00:00Z", day(DAYS - 1)).parse().unwrap()
}

struct History {
    _dir: tempfile::TempDir,
    vault_dir: std::path::PathBuf,
    at: DateTime<Utc>,
}

fn history() -> History {
    let shm = tempfile::Builder::new().prefix("jobseal-history-").tempdir_in("/dev/shm").unwrap();
    let at = build_history(shm.path());
    let dir = scratch_dir();
    let vault_dir = dir.path().join("vault");
    jobseal_testkit::files::copy_tree(shm.path(), &vault_dir);
    History { _dir: dir, vault_dir, at }
}

fn open_large(c: &mut Criterion) {
    // Built on first use only, so that a filter that skips these benchmarks skips the fixture.
    let fixture = std::cell::OnceCell::new();
    let mut g = c.benchmark_group("open_large");
    g.sample_size(30);
    g.bench_function("open_and_sweep", |b| {
        let h: &History = fixture.get_or_init(history);
        b.iter(|| {
            let v = file_vault(&h.vault_dir, h.at);
            assert!(v.sweep().unwrap().is_empty());
            v
        })
    });
    g.bench_function("sweep", |b| {
        let h: &History = fixture.get_or_init(history);
        let v = file_vault(&h.vault_dir, h.at);
        b.iter(|| v.sweep().unwrap())
    });
    g.finish();
}

criterion_group!(benches, aead, reveal, close, ingest, open_large);
criterion_main!(benches);
