//! Power loss (G3, G6): a technician's day with the power cut at every sync point and at random
//! writes, under the storage model of `jobseal_testkit::powerloss` (unsynced sectors kept, lost or
//! torn; unsynced names undone), for the vault's SQLite files and the software keystore's files.
//!
//! A process kill (`crash.rs`) loses nothing the OS accepted; a power cut also loses what was not
//! synced, in any order. After each cut the vault is reopened with the power back and must:
//! open; keep every call that returned before the cut; keep its audit chain valid; after a
//! committed shred hold no customer value or data key anywhere, and leave no copy of its files
//! taken before the shred that today's keystore opens; and, once the technician's app finishes
//! the day, have delivered the completion report and every event to dispatch exactly once.
//!
//! Its own test binary: the power-loss VFS becomes the process's default SQLite VFS. The bounded
//! run (every sync point once, plus random cuts) is part of `cargo test`; the long run is
//! `JOBSEAL_POWERLOSS_SEEDS=20 JOBSEAL_POWERLOSS_RANDOM=500 cargo test -p jobseal-e2e --test
//! power_loss -- --nocapture` (figures in docs/security.md).

use jobseal::{AuditKind, FieldAccess, FileKeyStore, HttpTransport, JobState, KeyStore, Vault};
use jobseal_testkit::device::{clock_at, open_vault_at};
use jobseal_testkit::files::{canary, copy_tree, files_containing};
use jobseal_testkit::powerloss::{self, Counts, Cut, Keep, SimKeyFiles};
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::{sheet_value, Sheet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

const REPORT: &str = "Power-loss test report: router swapped.";

/// The model's state is process-wide: its tests take turns.
static MODEL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One run's device and what the day has done so far.
struct Day {
    vault: Option<Vault>,
    dir: PathBuf,
    net: HttpTransport,
    device: Uuid,
    /// A: received sealed, worked, revealed, closed. B: received, updated to v2, revealed. C:
    /// ingested as plaintext, cancelled.
    a: Uuid,
    b: Uuid,
    c: Uuid,
    c_values: Vec<String>,
    /// The attacker's copy of the whole folder, taken while A and C were open.
    image: Option<tempfile::TempDir>,
    /// The data keys of A and C, read while they were open.
    deks: Vec<Vec<u8>>,
    /// A's and C's secrets as stored while they were open: wrapped data key and sealed fields.
    stored: Vec<(Uuid, Vec<u8>)>,
    /// Steps that returned Ok before the cut.
    done: Vec<&'static str>,
}

impl Day {
    fn v(&self) -> &Vault {
        self.vault.as_ref().expect("the vault is open")
    }
}

type Step = (&'static str, fn(&mut Day, &TestDispatch) -> jobseal::Result<()>);

/// The day, in order. Each step is one call of the app (the image step only reads).
const STEPS: &[Step] = &[
    ("sync-receive", |d, _| d.v().sync(&d.net).map(drop)),
    ("ingest-c", |d, _| {
        let sheet = Sheet::new(d.c).values(d.c_values.iter().map(String::as_str)).build();
        d.v().ingest(&sheet).map(drop)
    }),
    ("advance-a-en-route", |d, _| d.v().advance(d.a, JobState::EnRoute).map(drop)),
    ("reveal-a", |d, _| d.v().reveal(d.a).map(drop)),
    ("advance-a-on-site", |d, _| d.v().advance(d.a, JobState::OnSite).map(drop)),
    ("advance-c-en-route", |d, _| d.v().advance(d.c, JobState::EnRoute).map(drop)),
    ("image", |d, _| {
        d.deks = vec![d.v().data_key_insecure_for_testing(d.a)?, d.v().data_key_insecure_for_testing(d.c)?];
        let image = tempfile::tempdir().expect("a temporary folder");
        copy_tree(&d.dir, image.path());
        let _ = std::fs::remove_file(image.path().join("vault.lock"));
        d.stored = stored_secrets(image.path(), &[d.a, d.c]);
        // The forensic checks below look for these bytes: they must be findable while live.
        for (_, blob) in &d.stored {
            assert!(!files_containing(&d.dir, &blob[..16]).is_empty(), "a live job's stored secret is not on disk");
        }
        d.image = Some(image);
        Ok(())
    }),
    ("close-a", |d, _| d.v().close(d.a, REPORT).map(drop)),
    ("sync-push", |d, _| d.v().sync(&d.net).map(drop)),
    ("sync-update-b", |d, dispatch| {
        dispatch.operator().create_job(d.device, &sheet_value(d.b, 2));
        d.v().sync(&d.net).map(drop)
    }),
    ("cancel-c", |d, _| d.v().cancel(d.c).map(drop)),
    ("advance-b-en-route", |d, _| d.v().advance(d.b, JobState::EnRoute).map(drop)),
    ("reveal-b", |d, _| d.v().reveal(d.b).map(drop)),
    ("sync-final", |d, _| d.v().sync(&d.net).map(drop)),
];

/// The secret bytes of `jobs` as they sit in a copy of a vault's database (read from a scratch
/// copy, so that the image itself stays as taken).
fn stored_secrets(image: &Path, jobs: &[Uuid]) -> Vec<(Uuid, Vec<u8>)> {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(image, scratch.path());
    let db = rusqlite::Connection::open(scratch.path().join("vault.db")).unwrap();
    let mut out = Vec::new();
    for job in jobs {
        let dek: Vec<u8> =
            db.query_row("SELECT wrapped FROM secrets WHERE id = ?1", [format!("dek:{job}")], |r| r.get(0)).unwrap();
        out.push((*job, dek));
        let mut stmt = db.prepare("SELECT sealed FROM fields WHERE job_id = ?1").unwrap();
        out.extend(stmt.query_map([job.to_string()], |r| r.get(0)).unwrap().map(|r| (*job, r.unwrap())));
    }
    out
}

fn open(dir: &Path) -> jobseal::Result<Vault> {
    let ks = FileKeyStore::open_with(dir.join(jobseal::KEYSTORE_DIR), Arc::new(SimKeyFiles))?;
    Vault::open(dir, Arc::new(ks), clock_at(200))
}

/// A fresh enrolled device holding nothing yet, with A and B waiting at dispatch.
fn new_day(dispatch: &TestDispatch, root: &Path) -> Day {
    let dir = root.join("device");
    let vault = open(&dir).expect("a new vault");
    let bundle = dispatch.enrol(&vault, 8);
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let op = dispatch.operator();
    op.create_job(bundle.device_id, &sheet_value(a, 1));
    op.create_job(bundle.device_id, &sheet_value(b, 1));
    Day {
        vault: Some(vault),
        dir,
        net: dispatch.transport(),
        device: bundle.device_id,
        a,
        b,
        c,
        c_values: ["name", "phone", "addr", "door", "note"].iter().map(|l| canary(l)).collect(),
        image: None,
        deks: Vec::new(),
        stored: Vec::new(),
        done: Vec::new(),
    }
}

/// Runs the day with `cut` armed. Returns the day (its vault dropped) and the counts reached.
fn run_until_cut(dispatch: &TestDispatch, root: &Path, cut: Cut) -> (Day, Counts) {
    let mut day = new_day(dispatch, root);
    powerloss::track(&day.dir, cut);
    for (name, step) in STEPS {
        match step(&mut day, dispatch) {
            Ok(()) => day.done.push(name),
            Err(e) => {
                assert!(powerloss::is_cut(), "step {name} failed with the power on: {e}");
                break;
            }
        }
        if powerloss::is_cut() {
            // A step may swallow a failed write (a best-effort persist) and still return Ok;
            // the power is off all the same.
            break;
        }
    }
    let counts = powerloss::counts();
    day.vault = None;
    (day, counts)
}

fn done(day: &Day, step: &str) -> bool {
    day.done.contains(&step)
}

fn shredded(v: &Vault, job: Uuid) -> bool {
    match v.job(job) {
        Ok(info) => info.state.is_terminal(),
        Err(e) if e.kind() == jobseal::ErrorKind::NotFound => false,
        Err(e) => panic!("reading a job after the cut: {e}"),
    }
}

fn state(v: &Vault, job: Uuid) -> Option<JobState> {
    v.job(job).ok().map(|i| i.state)
}

/// The attacker's copy taken before the shred, with the keystore as it is now: must not open A.
fn old_image_is_useless(day: &Day, ctx: &str) {
    let Some(image) = &day.image else { return };
    let attack = tempfile::tempdir().unwrap();
    copy_tree(image.path(), attack.path());
    std::fs::remove_dir_all(attack.path().join(jobseal::KEYSTORE_DIR)).unwrap();
    copy_tree(&day.dir.join(jobseal::KEYSTORE_DIR), &attack.path().join(jobseal::KEYSTORE_DIR));
    if let Ok(v) = open_vault_at(attack.path(), 200) {
        if let Ok(r) = v.reveal(day.a) {
            assert!(
                !r.fields.iter().any(|f| matches!(f.access, FieldAccess::Visible { .. })),
                "{ctx}: a copy taken before the close showed A's fields with today's keystore"
            );
        }
    }
}

/// The old image with today's keystore, checked by hand and without opening today's vault: no
/// key file now on disk unwraps the image's epoch master key.
fn old_image_is_useless_before_reopening(day: &Day, ctx: &str) {
    let Some(image) = &day.image else { return };
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(image.path(), scratch.path());
    let db = rusqlite::Connection::open(scratch.path().join("vault.db")).unwrap();
    let wrapped: Vec<Vec<u8>> = db
        .prepare("SELECT wrapped_emk FROM epochs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let ks_dir = day.dir.join(jobseal::KEYSTORE_DIR);
    let ks = FileKeyStore::open(&ks_dir).unwrap();
    for f in jobseal_testkit::files::files_under(&ks_dir) {
        let alias = f.file_stem().unwrap().to_string_lossy().into_owned();
        for w in &wrapped {
            assert!(
                ks.unwrap(&alias, w).is_err(),
                "{ctx}, before reopening: a key file on disk unwraps the old image's epoch key"
            );
        }
    }
}

fn nothing_of_a_shredded_job_on_disk(day: &Day, job: Uuid, ctx: &str) {
    let (values, dek): (&[String], Option<&Vec<u8>>) =
        if job == day.c { (&day.c_values, day.deks.get(1)) } else { (&[], day.deks.first()) };
    for (i, v) in values.iter().enumerate() {
        assert!(files_containing(&day.dir, v.as_bytes()).is_empty(), "{ctx}: customer value #{i} found on disk");
    }
    if let Some(dek) = dek {
        assert!(files_containing(&day.dir, dek).is_empty(), "{ctx}: a shredded job's data key found on disk");
    }
    for (i, (_, blob)) in day.stored.iter().filter(|(j, _)| *j == job).enumerate() {
        for chunk in blob.chunks_exact(16) {
            assert!(
                files_containing(&day.dir, chunk).is_empty(),
                "{ctx}: stored secret #{i} of a shredded job (wrapped key or sealed field) found on disk"
            );
        }
    }
}

/// Reopens after the cut and checks everything the day promised; then finishes the day as the
/// app would and checks dispatch.
fn check_after_cut(dispatch: &TestDispatch, day: &mut Day, ctx: &str) {
    // The files as the power cut left them, before any code runs on them: what a rooted
    // technician copies at the next boot. A shred that returned must hold here already.
    if done(day, "close-a") {
        nothing_of_a_shredded_job_on_disk(day, day.a, &format!("{ctx}, before reopening"));
        old_image_is_useless_before_reopening(day, ctx);
    }
    if done(day, "cancel-c") {
        nothing_of_a_shredded_job_on_disk(day, day.c, &format!("{ctx}, before reopening"));
    }
    let v = open(&day.dir).unwrap_or_else(|e| panic!("{ctx}: the vault does not open after the cut: {e}"));
    let audit = v.verify_audit().unwrap_or_else(|e| panic!("{ctx}: audit unreadable: {e}"));
    assert!(audit.valid, "{ctx}: the audit chain does not verify after the cut");

    // Every call that returned before the cut survived it.
    let a = state(&v, day.a);
    if done(day, "sync-receive") {
        assert!(a.is_some() && state(&v, day.b).is_some(), "{ctx}: a received sheet was lost");
    }
    if done(day, "ingest-c") {
        assert!(state(&v, day.c).is_some(), "{ctx}: an ingested sheet was lost");
    }
    if done(day, "advance-a-on-site") {
        assert!(matches!(a, Some(JobState::OnSite | JobState::Completed)), "{ctx}: A's advance was lost: {a:?}");
    }
    if done(day, "reveal-a") {
        let reveals = v.audit_log(Some(day.a)).unwrap().iter().filter(|e| e.kind == AuditKind::Reveal).count();
        assert!(reveals >= 1, "{ctx}: a reveal's audit record was lost");
    }
    if done(day, "close-a") {
        assert_eq!(a, Some(JobState::Completed), "{ctx}: a committed close was undone");
        assert_eq!(v.job(day.a).unwrap().report.as_deref(), Some(REPORT), "{ctx}: the completion report was lost");
    }
    if done(day, "cancel-c") {
        assert!(shredded(&v, day.c), "{ctx}: a committed cancel was undone");
    }
    if done(day, "sync-update-b") {
        assert_eq!(v.job(day.b).unwrap().version, 2, "{ctx}: a received update was lost");
    }
    // After a shred that is on disk (returned or not), nothing of the job remains and no earlier
    // copy opens with today's keystore.
    for job in [day.a, day.c] {
        if shredded(&v, job) {
            assert!(v.reveal(job).is_err() || no_visible(&v, job), "{ctx}: a shredded job still reveals");
            nothing_of_a_shredded_job_on_disk(day, job, ctx);
        }
    }
    if shredded(&v, day.a) {
        old_image_is_useless(day, ctx);
    }

    // The app finishes the day from whatever survived.
    day.vault = Some(v);
    finish_day(dispatch, day, ctx);
    let v = day.v();
    nothing_of_a_shredded_job_on_disk(day, day.a, ctx);
    nothing_of_a_shredded_job_on_disk(day, day.c, ctx);
    old_image_is_useless(day, ctx);
    assert!(v.verify_audit().unwrap().valid, "{ctx}: the audit chain does not verify after the day");

    // Dispatch got everything exactly once.
    let op = dispatch.operator();
    let ja = op.job(day.a);
    assert_eq!(ja.report.as_ref().map(|r| r.text.as_str()), Some(REPORT), "{ctx}: dispatch lacks A's report");
    let states: Vec<JobState> = ja.history.iter().map(|h| h.to).collect();
    assert_eq!(states, [JobState::EnRoute, JobState::OnSite, JobState::Completed], "{ctx}: A's history at dispatch");
    assert!(ja.receipt.as_ref().is_some_and(|r| r.verified), "{ctx}: no verified receipt for A");
    let jb = op.job(day.b);
    assert_eq!(jb.state, Some(JobState::EnRoute), "{ctx}: B's state at dispatch");
    for (job, view) in [(day.a, &ja), (day.b, &jb)] {
        let mine: Vec<u64> = v.audit_log(Some(job)).unwrap().iter().map(|e| e.seq).collect();
        let theirs: Vec<u64> = view.audit_events.iter().map(|e| e.seq).collect();
        assert_eq!(theirs, mine, "{ctx}: dispatch's audit records of a job differ from the device's");
    }
    let dv = op.device(day.device);
    let all = v.audit_log(None).unwrap();
    assert!(dv.audit_chain.intact, "{ctx}: dispatch finds the device's chain broken");
    assert_eq!(dv.audit_chain.events_received, all.len() as u64, "{ctx}: dispatch holds a record twice or lacks one");
    assert_eq!(v.sync_status().unwrap().pending_events, 0);
}

fn no_visible(v: &Vault, job: Uuid) -> bool {
    v.reveal(job).map(|r| !r.fields.iter().any(|f| matches!(f.access, FieldAccess::Visible { .. }))).unwrap_or(true)
}

/// What the app does after the power returns: sync, then bring each job to where the day ends.
fn finish_day(dispatch: &TestDispatch, day: &mut Day, ctx: &str) {
    let sync = |d: &Day| d.v().sync(&d.net).unwrap_or_else(|e| panic!("{ctx}: sync after the cut: {e}"));
    sync(day);
    let v = day.v();
    match state(v, day.a) {
        Some(JobState::Assigned) => {
            v.advance(day.a, JobState::EnRoute).unwrap();
            v.advance(day.a, JobState::OnSite).unwrap();
        }
        Some(JobState::EnRoute) => {
            v.advance(day.a, JobState::OnSite).unwrap();
        }
        Some(JobState::OnSite) | Some(JobState::Completed) => {}
        other => panic!("{ctx}: A is {other:?} after a sync"),
    }
    if !shredded(v, day.a) {
        v.close(day.a, REPORT).unwrap_or_else(|e| panic!("{ctx}: closing A after the cut: {e}"));
    }
    match state(v, day.c) {
        None => {
            let sheet = Sheet::new(day.c).values(day.c_values.iter().map(String::as_str)).build();
            v.ingest(&sheet).unwrap();
            v.cancel(day.c).unwrap();
        }
        Some(s) if !s.is_terminal() => {
            v.cancel(day.c).unwrap();
        }
        Some(_) => {}
    }
    if v.job(day.b).unwrap().version < 2 {
        dispatch.operator().create_job(day.device, &sheet_value(day.b, 2));
        sync(day);
    }
    let v = day.v();
    if state(v, day.b) == Some(JobState::Assigned) {
        v.advance(day.b, JobState::EnRoute).unwrap();
    }
    for _ in 0..4 {
        if sync(day).pending == 0 {
            break;
        }
    }
}

/// How many cuts the run makes: every sync point once, plus this many at random writes.
fn random_cuts() -> u64 {
    std::env::var("JOBSEAL_POWERLOSS_RANDOM").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

/// Crash images per sync point (different seeds).
fn seeds_per_point() -> u64 {
    std::env::var("JOBSEAL_POWERLOSS_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

#[test]
fn a_power_cut_at_every_sync_point_and_at_random_writes_loses_nothing_committed() {
    let _serial = MODEL.lock().unwrap_or_else(|p| p.into_inner());
    powerloss::install();
    let dispatch = TestDispatch::start();
    // Calibration: the whole day with the power on, to count its sync points and writes.
    let tmp = tempfile::tempdir().unwrap();
    let (mut day, total) = run_until_cut(&dispatch, tmp.path(), Cut::Never);
    assert_eq!(day.done.len(), STEPS.len(), "the day must complete with the power on");
    powerloss::untrack();
    check_after_cut(&dispatch, &mut day, "no cut");
    assert!(total.syncs > 20, "the day made only {} syncs: the VFS is not in the path", total.syncs);
    drop(day);

    // Every sync point with nothing unsynced kept, with everything kept, and with mixtures; then
    // random writes with mixtures.
    let mut cuts = Vec::new();
    for n in 1..=total.syncs {
        cuts.push((Cut::AtSync(n), Keep::Nothing));
        cuts.push((Cut::AtSync(n), Keep::All));
        for s in 0..seeds_per_point() {
            cuts.push((Cut::AtSync(n), Keep::Mixed(n * 1000 + s)));
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed_90e4);
    for i in 0..random_cuts() {
        cuts.push((Cut::AtOp(rng.u64(1..=total.ops)), Keep::Mixed(0xabc0_0000 + i)));
    }
    // `JOBSEAL_POWERLOSS_ONLY=op:N:SEED` (or `sync:N:SEED`) replays one cut of a failure message.
    if let Ok(only) = std::env::var("JOBSEAL_POWERLOSS_ONLY") {
        let parts: Vec<&str> = only.split(':').collect();
        let (n, seed): (u64, u64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
        let cut = if parts[0] == "op" { Cut::AtOp(n) } else { Cut::AtSync(n) };
        cuts = vec![(cut, Keep::Mixed(seed))];
    }
    let started = std::time::Instant::now();
    let mut sectors = (0, 0, 0, 0);
    for (cut, keep) in &cuts {
        let tmp = tempfile::tempdir().unwrap();
        let (mut day, _) = run_until_cut(&dispatch, tmp.path(), *cut);
        let last = day.done.last().copied().unwrap_or("start");
        let ctx = format!("cut {cut:?} after step {last}, keeping {keep:?}");
        assert!(powerloss::is_cut(), "{ctx}: the cut never happened");
        let r = powerloss::power_cut(*keep).unwrap();
        sectors.0 += r.sectors_kept;
        sectors.1 += r.sectors_lost;
        sectors.2 += r.sectors_torn;
        sectors.3 += r.names_undone;
        check_after_cut(&dispatch, &mut day, &ctx);
    }
    eprintln!(
        "power loss: {} cuts ({} sync points x (2 + {} mixtures) + {} random) of a day of {} writes and {} syncs in {:.1} s; \
         sectors kept {}, lost {}, torn {}; names undone {}",
        cuts.len(),
        total.syncs,
        seeds_per_point(),
        random_cuts(),
        total.ops,
        total.syncs,
        started.elapsed().as_secs_f64(),
        sectors.0,
        sectors.1,
        sectors.2,
        sectors.3
    );
}

/// The model itself, on the keystore's file calls: synced bytes always stay, an unsynced write is
/// kept, lost or torn only inside the bytes it wrote, and a name its folder never synced can vanish.
#[test]
fn the_model_keeps_synced_bytes_and_tears_only_what_was_written() {
    use jobseal::KeyFiles;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let (f, g) = (dir.join("f"), dir.join("g"));
    let fs = SimKeyFiles;
    let prepare = |cut: Cut| {
        let _ = std::fs::remove_file(&f);
        let _ = std::fs::remove_file(&g);
        powerloss::track(&dir, cut);
        fs.create_new(&f, &[1u8; 1024]).unwrap();
        fs.sync_file(&f).unwrap();
        fs.sync_dir(&dir).unwrap();
        fs.overwrite(&f, &[2u8; 100]).unwrap();
        fs.create_new(&g, b"never synced").unwrap();
    };
    let _serial = MODEL.lock().unwrap();

    prepare(Cut::Never);
    powerloss::power_cut(Keep::Nothing).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), vec![1u8; 1024], "nothing unsynced kept: the synced bytes");
    assert!(!g.exists(), "a name whose folder was never synced must be able to vanish");

    prepare(Cut::Never);
    powerloss::power_cut(Keep::All).unwrap();
    let all = std::fs::read(&f).unwrap();
    assert!(all[..100].iter().all(|b| *b == 2) && all[100..].iter().all(|b| *b == 1));
    assert_eq!(std::fs::read(&g).unwrap(), b"never synced");

    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..200 {
        prepare(Cut::Never);
        powerloss::power_cut(Keep::Mixed(seed)).unwrap();
        let got = std::fs::read(&f).unwrap();
        assert_eq!(got.len(), 1024);
        assert!(got[100..].iter().all(|b| *b == 1), "seed {seed}: bytes outside the write changed");
        let head = &got[..100];
        outcomes.insert(if head.iter().all(|b| *b == 2) {
            "kept"
        } else if head.iter().all(|b| *b == 1) {
            "lost"
        } else {
            "torn"
        });
    }
    assert_eq!(outcomes.len(), 3, "mixtures must keep, lose and tear: {outcomes:?}");

    // Once cut, nothing more is written.
    std::fs::remove_file(&g).unwrap();
    powerloss::track(&dir, Cut::AtOp(2));
    assert!(fs.overwrite(&f, &[3u8; 10]).is_ok());
    assert!(fs.sync_file(&f).is_err(), "the second write is where the power goes");
    assert!(powerloss::is_cut());
    assert!(fs.create_new(&g, b"x").is_err() && !g.exists(), "a write after the cut must fail");
    powerloss::untrack();
}
