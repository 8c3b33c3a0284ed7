//! Power loss (G3, G6): a technician's day with the power cut at every sync point and at random
//! writes, under the storage model of `jobseal_testkit::powerloss` (unsynced sectors kept, lost or
//! torn; unsynced names undone), for the vault's SQLite files and the software keystore's files.
//!
//! A process kill (`crash.rs`) loses nothing the OS accepted; a power cut also loses what was not
//! synced, in any order. The day starts from nothing (the vault's creation and its enrolment are
//! under the model too) and includes an app restart. After each cut (and, for random cuts, a
//! second cut while the reopened vault recovers) the vault is reopened with the power back and
//! must: open; keep every call that returned before the cut; keep its audit chain valid; after a
//! committed shred hold no customer value, data key or stored secret of the job anywhere, and
//! leave no copy of its files taken before the shred that today's keystore opens; and, once the
//! technician's app finishes the day, have delivered the completion report and every event to
//! dispatch exactly once.
//!
//! Its own test binary: the power-loss VFS becomes the process's default SQLite VFS. The bounded
//! run (every sync point three ways, plus random cuts) is part of `cargo test`; the long run is
//! `JOBSEAL_POWERLOSS_SEEDS=5 JOBSEAL_POWERLOSS_RANDOM=500 cargo test -p jobseal-e2e --test
//! power_loss -- --nocapture` (figures in docs/security.md).

use jobseal::{
    AuditKind, DeviceBundle, ErrorKind, FieldAccess, FileKeyStore, HttpTransport, JobState, KeyStore, PublicKey, Vault,
};
use jobseal_testkit::device::{clock_at, open_vault_at};
use jobseal_testkit::files::{canary, copy_tree, files_containing, files_under};
use jobseal_testkit::powerloss::{self, Counts, Cut, Keep, SimKeyFiles};
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::Sheet;
use std::collections::BTreeMap;
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
    dispatch_key: PublicKey,
    /// The one-time enrolment code the operator issued for this device.
    code: String,
    /// The device's id once enrolled, and whether dispatch has been given A and B for it.
    device: Option<Uuid>,
    jobs_created: bool,
    /// A: received sealed, worked, revealed, closed. B: received, updated to v2, revealed. C:
    /// ingested as plaintext, cancelled.
    a: Uuid,
    b: Uuid,
    c: Uuid,
    /// Each job's customer values (canaries, unique to this run).
    values: BTreeMap<Uuid, Vec<String>>,
    /// The attacker's copy of the whole folder, taken while A was open.
    image: Option<tempfile::TempDir>,
    /// Per job, read while it was open: its data key, its wrapped data key and sealed fields.
    secrets: BTreeMap<Uuid, Vec<Vec<u8>>>,
    /// Steps that returned Ok before the cut.
    done: Vec<&'static str>,
}

impl Day {
    fn v(&self) -> &Vault {
        self.vault.as_ref().expect("the vault is open")
    }

    fn sheet(&self, job: Uuid, version: u64) -> Sheet {
        Sheet::new(job).version(version).values(self.values[&job].iter().map(String::as_str))
    }
}

type Step = (&'static str, fn(&mut Day, &TestDispatch) -> jobseal::Result<()>);

/// The day, in order. Each step is one call of the app (the image step only reads; enrol also
/// has dispatch assign A and B, which is not under the model).
const STEPS: &[Step] = &[
    ("open", |d, _| {
        d.vault = Some(open(&d.dir)?);
        Ok(())
    }),
    ("enrol", |d, dispatch| {
        let bundle = d.v().enrol_with_dispatch(&d.net, Some(d.dispatch_key), 8, Some(&d.code))?;
        assign(d, dispatch, &bundle);
        Ok(())
    }),
    ("sync-receive", |d, _| d.v().sync(&d.net).map(drop)),
    ("ingest-c", |d, _| d.v().ingest(&d.sheet(d.c, 1).build()).map(drop)),
    ("advance-a-en-route", |d, _| d.v().advance(d.a, JobState::EnRoute).map(drop)),
    ("reveal-a", |d, _| d.v().reveal(d.a).map(drop)),
    ("advance-a-on-site", |d, _| d.v().advance(d.a, JobState::OnSite).map(drop)),
    ("advance-c-en-route", |d, _| d.v().advance(d.c, JobState::EnRoute).map(drop)),
    ("image", |d, _| {
        take_image(d);
        Ok(())
    }),
    ("close-a", |d, _| d.v().close(d.a, REPORT).map(drop)),
    ("sync-push", |d, _| d.v().sync(&d.net).map(drop)),
    ("restart", |d, _| {
        d.vault = None;
        d.vault = Some(open(&d.dir)?);
        Ok(())
    }),
    ("sync-update-b", |d, dispatch| {
        dispatch.operator().create_job(d.device.expect("enrolled"), &d.sheet(d.b, 2).json());
        d.v().sync(&d.net).map(drop)
    }),
    ("cancel-c", |d, _| d.v().cancel(d.c).map(drop)),
    ("advance-b-en-route", |d, _| d.v().advance(d.b, JobState::EnRoute).map(drop)),
    ("reveal-b", |d, _| d.v().reveal(d.b).map(drop)),
    ("sync-final", |d, _| d.v().sync(&d.net).map(drop)),
];

/// Dispatch assigns A and B to the newly enrolled device (once).
fn assign(d: &mut Day, dispatch: &TestDispatch, bundle: &DeviceBundle) {
    d.device = Some(bundle.device_id);
    if !d.jobs_created {
        let op = dispatch.operator();
        op.create_job(bundle.device_id, &d.sheet(d.a, 1).json());
        op.create_job(bundle.device_id, &d.sheet(d.b, 1).json());
        d.jobs_created = true;
    }
}

/// The attacker's copy of the whole folder (database, WAL, keystore) while A is open, and what
/// the forensic checks will look for: each open job's data key and stored secrets.
fn take_image(d: &mut Day) {
    let image = tempfile::tempdir().expect("a temporary folder");
    copy_tree(&d.dir, image.path());
    let _ = std::fs::remove_file(image.path().join("vault.lock"));
    d.image = Some(image);
    for job in [d.a, d.c] {
        note_secrets(d, job);
    }
}

/// Records `job`'s data key and stored secrets while it is open (once per job).
fn note_secrets(d: &mut Day, job: Uuid) {
    if d.secrets.contains_key(&job) || state(d.v(), job).is_none_or(JobState::is_terminal) {
        return;
    }
    let mut found = vec![d.v().data_key_insecure_for_testing(job).expect("an open job's data key")];
    found.extend(stored_secrets(&d.dir, job));
    // The forensic checks look for these bytes: they must be findable while the job is open.
    for blob in &found[1..] {
        assert!(!files_containing(&d.dir, &blob[..16]).is_empty(), "an open job's stored secret is not on disk");
    }
    d.secrets.insert(job, found);
}

/// The secret bytes of `job` as they sit in a vault's database (read from a scratch copy of the
/// folder, so that the folder itself is not touched): its wrapped data key and sealed fields.
fn stored_secrets(dir: &Path, job: Uuid) -> Vec<Vec<u8>> {
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(dir, scratch.path());
    let db = rusqlite::Connection::open(scratch.path().join("vault.db")).unwrap();
    let mut out: Vec<Vec<u8>> =
        vec![db.query_row("SELECT wrapped FROM secrets WHERE id = ?1", [format!("dek:{job}")], |r| r.get(0)).unwrap()];
    let mut stmt = db.prepare("SELECT sealed FROM fields WHERE job_id = ?1").unwrap();
    out.extend(stmt.query_map([job.to_string()], |r| r.get(0)).unwrap().map(|r| r.unwrap()));
    out
}

fn open(dir: &Path) -> jobseal::Result<Vault> {
    let ks = FileKeyStore::open_with(dir.join(jobseal::KEYSTORE_DIR), Arc::new(SimKeyFiles))?;
    Vault::open(dir, Arc::new(ks), clock_at(200))
}

/// A day that has not begun: no vault yet, a code issued, three jobs with fake customers.
fn new_day(dispatch: &TestDispatch, root: &Path) -> Day {
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let values = [a, b, c]
        .into_iter()
        .map(|j| (j, ["name", "phone", "addr", "door", "note"].iter().map(|l| canary(l)).collect()))
        .collect();
    Day {
        vault: None,
        dir: root.join("device"),
        net: dispatch.transport(),
        dispatch_key: dispatch.key(),
        code: dispatch.operator().issue_code().code,
        device: None,
        jobs_created: false,
        a,
        b,
        c,
        values,
        image: None,
        secrets: BTreeMap::new(),
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

fn state(v: &Vault, job: Uuid) -> Option<JobState> {
    match v.job(job) {
        Ok(info) => Some(info.state),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("reading a job after the cut: {e}"),
    }
}

fn shredded(v: &Vault, job: Uuid) -> bool {
    state(v, job).is_some_and(JobState::is_terminal)
}

/// Enrolled all the way: dispatch's answer (the device token) is stored, not just the keys.
fn enrolled(v: &Vault) -> bool {
    v.device_token_insecure_for_testing().unwrap().is_some()
}

fn reveals(v: &Vault, job: Uuid) -> usize {
    v.audit_log(Some(job)).unwrap().iter().filter(|e| e.kind == AuditKind::Reveal).count()
}

/// The attacker's copy taken while A was open, with the keystore as it is now, after A's shred:
/// it must not open at all (its epoch's KEK is gone), and no key file now on disk may unwrap the
/// copy's epoch master key. Checked on the files alone, without opening today's vault.
fn old_image_is_useless(day: &Day, ctx: &str) {
    let Some(image) = &day.image else { return };
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(image.path(), scratch.path());
    let wrapped: Vec<Vec<u8>> = {
        let db = rusqlite::Connection::open(scratch.path().join("vault.db")).unwrap();
        let mut stmt = db.prepare("SELECT wrapped_emk FROM epochs").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
    };
    assert!(!wrapped.is_empty(), "{ctx}: the copy holds no epoch key to try");
    let ks_dir = day.dir.join(jobseal::KEYSTORE_DIR);
    let ks = FileKeyStore::open(&ks_dir).unwrap();
    for f in files_under(&ks_dir) {
        let alias = f.file_stem().unwrap().to_string_lossy().into_owned();
        for w in &wrapped {
            assert!(ks.unwrap(&alias, w).is_err(), "{ctx}: a key file on disk unwraps the old copy's epoch key");
        }
    }
    // And through the product: the copy with today's keystore does not open.
    let attack = tempfile::tempdir().unwrap();
    copy_tree(image.path(), attack.path());
    std::fs::remove_dir_all(attack.path().join(jobseal::KEYSTORE_DIR)).unwrap();
    copy_tree(&ks_dir, &attack.path().join(jobseal::KEYSTORE_DIR));
    match open_vault_at(attack.path(), 200) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::KeyStore, "{ctx}: the old copy failed to open for another reason"),
        Ok(_) => panic!("{ctx}: a copy taken before the close opens with today's keystore"),
    }
}

/// Nothing of a shredded job in any file: no customer value, no data key, and no 16-byte piece of
/// its wrapped data key or sealed fields.
fn nothing_of_a_shredded_job_on_disk(day: &Day, job: Uuid, ctx: &str) {
    for (i, v) in day.values[&job].iter().enumerate() {
        assert!(files_containing(&day.dir, v.as_bytes()).is_empty(), "{ctx}: customer value #{i} found on disk");
    }
    for (i, blob) in day.secrets.get(&job).into_iter().flatten().enumerate() {
        let pieces: Vec<&[u8]> = if i == 0 { vec![blob.as_slice()] } else { blob.chunks_exact(16).collect() };
        for piece in pieces {
            assert!(
                files_containing(&day.dir, piece).is_empty(),
                "{ctx}: secret #{i} of a shredded job (0: data key; then wrapped key, sealed fields) found on disk"
            );
        }
    }
}

/// Every call that returned before the cut survived it.
fn returned_calls_survived(day: &Day, v: &Vault, ctx: &str) {
    let (a, b, c) = (state(v, day.a), state(v, day.b), state(v, day.c));
    let is = |s: Option<JobState>, allowed: &[JobState]| s.is_some_and(|s| allowed.contains(&s));
    use JobState::*;
    let checks: &[(&str, bool)] = &[
        ("enrol", enrolled(v)),
        ("sync-receive", a.is_some() && b.is_some()),
        ("ingest-c", c.is_some()),
        ("advance-a-en-route", is(a, &[EnRoute, OnSite, Completed])),
        ("reveal-a", reveals(v, day.a) >= 1),
        ("advance-a-on-site", is(a, &[OnSite, Completed])),
        ("advance-c-en-route", is(c, &[EnRoute, Cancelled])),
        ("close-a", a == Some(Completed) && v.job(day.a).unwrap().report.as_deref() == Some(REPORT)),
        ("sync-update-b", v.job(day.b).is_ok_and(|j| j.version == 2)),
        ("cancel-c", c == Some(Cancelled)),
        ("advance-b-en-route", b == Some(EnRoute)),
        ("reveal-b", reveals(v, day.b) >= 1),
    ];
    for (step, held) in checks {
        assert!(!done(day, step) || *held, "{ctx}: the returned call {step} did not survive the cut");
    }
}

/// A second power cut while the reopened vault recovers (after `ops` writes), then the storage
/// as that cut leaves it.
fn cut_again_while_recovering(day: &Day, ops: u64, keep: Keep) {
    powerloss::track(&day.dir, Cut::AtOp(ops));
    let reopened = open(&day.dir);
    let cut = powerloss::is_cut();
    drop(reopened);
    if cut {
        powerloss::power_cut(keep).unwrap();
    } else {
        powerloss::untrack();
    }
}

/// Looks at the storage the cut left, reopens, checks everything the day promised; then finishes
/// the day as the app would and checks dispatch.
fn check_after_cut(dispatch: &TestDispatch, day: &mut Day, ctx: &str) {
    // The files as the power cut left them, before any code runs on them: what a rooted
    // technician copies at the next boot. A shred that returned must hold here already.
    if done(day, "close-a") {
        nothing_of_a_shredded_job_on_disk(day, day.a, &format!("{ctx}, before reopening"));
        old_image_is_useless(day, &format!("{ctx}, before reopening"));
    }
    if done(day, "cancel-c") {
        nothing_of_a_shredded_job_on_disk(day, day.c, &format!("{ctx}, before reopening"));
    }
    // (A cut during the vault's creation may leave no vault at all: then this creates it.)
    day.vault = Some(open(&day.dir).unwrap_or_else(|e| panic!("{ctx}: the vault does not open after the cut: {e}")));
    let v = day.v();
    let audit = v.verify_audit().unwrap_or_else(|e| panic!("{ctx}: audit unreadable: {e}"));
    assert!(audit.valid, "{ctx}: the audit chain does not verify after the cut");
    returned_calls_survived(day, v, ctx);
    // After a shred that is on disk (returned or not), nothing of the job remains and no earlier
    // copy opens with today's keystore.
    for job in [day.a, day.c] {
        if shredded(v, job) {
            let r = v.reveal(job);
            assert!(
                r.map_or(true, |r| !r.fields.iter().any(|f| matches!(f.access, FieldAccess::Visible { .. }))),
                "{ctx}: a shredded job still reveals"
            );
            nothing_of_a_shredded_job_on_disk(day, job, ctx);
        }
    }
    if shredded(v, day.a) {
        old_image_is_useless(day, ctx);
    }

    finish_day(dispatch, day, ctx);
    nothing_of_a_shredded_job_on_disk(day, day.a, ctx);
    nothing_of_a_shredded_job_on_disk(day, day.c, ctx);
    old_image_is_useless(day, ctx);
    let v = day.v();
    assert!(v.verify_audit().unwrap().valid, "{ctx}: the audit chain does not verify after the day");

    // Dispatch got everything exactly once.
    let op = dispatch.operator();
    let ja = op.job(day.a);
    assert_eq!(ja.report.as_ref().map(|r| r.text.as_str()), Some(REPORT), "{ctx}: dispatch lacks A's report");
    let states: Vec<JobState> = ja.history.iter().map(|h| h.to).collect();
    assert_eq!(states, [JobState::EnRoute, JobState::OnSite, JobState::Completed], "{ctx}: A's history at dispatch");
    assert_eq!(ja.receipts.len(), 1, "{ctx}: dispatch holds {} receipts for A", ja.receipts.len());
    assert!(ja.receipts[0].verified, "{ctx}: A's receipt does not verify");
    let jb = op.job(day.b);
    let states: Vec<JobState> = jb.history.iter().map(|h| h.to).collect();
    assert_eq!(states, [JobState::EnRoute], "{ctx}: B's history at dispatch");
    assert_eq!(jb.version, 2, "{ctx}: B's version at dispatch");
    for (job, view) in [(day.a, &ja), (day.b, &jb)] {
        let mine: Vec<u64> = v.audit_log(Some(job)).unwrap().iter().map(|e| e.seq).collect();
        let theirs: Vec<u64> = view.audit_events.iter().map(|e| e.seq).collect();
        assert_eq!(theirs, mine, "{ctx}: dispatch's audit records of a job differ from the device's");
    }
    let dv = op.device(day.device.expect("enrolled"));
    let all = v.audit_log(None).unwrap();
    assert!(dv.audit_chain.intact, "{ctx}: dispatch finds the device's chain broken");
    assert_eq!(dv.audit_chain.events_received, all.len() as u64, "{ctx}: dispatch holds a record twice or lacks one");
    assert_eq!(v.sync_status().unwrap().pending_events, 0, "{ctx}: events left unsent");
}

/// What the app does after the power returns: enrol if that never finished, sync, then bring
/// each job to where the day ends, noting each open job's secrets before it is shredded.
fn finish_day(dispatch: &TestDispatch, day: &mut Day, ctx: &str) {
    if !enrolled(day.v()) {
        let bundle = day
            .v()
            .enrol_with_dispatch(&day.net, Some(day.dispatch_key), 8, Some(&day.code))
            .unwrap_or_else(|e| panic!("{ctx}: enrolling again after the cut: {e}"));
        assign(day, dispatch, &bundle);
    } else if !day.jobs_created {
        // Enrolled, but the enrol call did not return (the cut came after the token was stored).
        let bundle = day.v().device_bundle().unwrap();
        assign(day, dispatch, &bundle);
    }
    let sync = |d: &Day| d.v().sync(&d.net).unwrap_or_else(|e| panic!("{ctx}: sync after the cut: {e}"));
    sync(day);
    if day.image.is_none() && !shredded(day.v(), day.a) {
        take_image(day);
    }
    let v = day.v();
    if state(v, day.c).is_none() {
        v.ingest(&day.sheet(day.c, 1).build()).unwrap();
    }
    note_secrets(day, day.a);
    note_secrets(day, day.c);
    let v = day.v();
    match state(v, day.a) {
        Some(JobState::Assigned) => {
            v.advance(day.a, JobState::EnRoute).unwrap();
            v.advance(day.a, JobState::OnSite).unwrap();
        }
        Some(JobState::EnRoute) => {
            v.advance(day.a, JobState::OnSite).unwrap();
        }
        Some(JobState::OnSite | JobState::Completed) => {}
        other => panic!("{ctx}: A is {other:?} after a sync"),
    }
    if !shredded(v, day.a) {
        v.close(day.a, REPORT).unwrap_or_else(|e| panic!("{ctx}: closing A after the cut: {e}"));
    }
    if !shredded(v, day.c) {
        v.cancel(day.c).unwrap();
    }
    if v.job(day.b).unwrap().version < 2 {
        dispatch.operator().create_job(day.device.expect("enrolled"), &day.sheet(day.b, 2).json());
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

/// How many cuts the run makes at random writes (besides every sync point three ways).
fn random_cuts() -> u64 {
    std::env::var("JOBSEAL_POWERLOSS_RANDOM").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

/// Mixtures per sync point (different seeds), besides keeping nothing and keeping everything.
fn seeds_per_point() -> u64 {
    std::env::var("JOBSEAL_POWERLOSS_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// `JOBSEAL_POWERLOSS_ONLY=KIND:N:KEEP` replays one cut of a failure message: KIND `sync` or
/// `op`, KEEP `nothing`, `all` or a mixture's seed.
fn only_cut() -> Option<(Cut, Keep)> {
    let only = std::env::var("JOBSEAL_POWERLOSS_ONLY").ok()?;
    let parts: Vec<&str> = only.split(':').collect();
    let n: u64 = parts.get(1)?.parse().ok()?;
    let cut = if parts[0] == "op" { Cut::AtOp(n) } else { Cut::AtSync(n) };
    let keep = match *parts.get(2)? {
        "nothing" => Keep::Nothing,
        "all" => Keep::All,
        seed => Keep::Mixed(seed.parse().ok()?),
    };
    Some((cut, keep))
}

#[test]
fn a_power_cut_at_every_sync_point_and_at_random_writes_loses_nothing_committed() {
    let _serial = MODEL.lock().unwrap_or_else(|p| p.into_inner());
    powerloss::install();
    let dispatch = TestDispatch::start();
    // Calibration: the whole day with the power on, to count its sync points and writes.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (mut day, total) = run_until_cut(&dispatch, &root, Cut::Never);
    assert_eq!(day.done.len(), STEPS.len(), "the day must complete with the power on");
    powerloss::untrack();
    check_after_cut(&dispatch, &mut day, "no cut");
    assert!(total.syncs > 20, "the day made only {} syncs: the VFS is not in the path", total.syncs);
    drop(day);

    // Every sync point with nothing unsynced kept, with everything kept, and with mixtures; then
    // random writes with mixtures, half of them cut again while the vault recovers.
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
    if let Some(one) = only_cut() {
        cuts = vec![one];
    }
    let started = std::time::Instant::now();
    let (mut sectors, mut second_cuts) = ((0, 0, 0, 0), 0);
    for (cut, keep) in &cuts {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (mut day, _) = run_until_cut(&dispatch, &root, *cut);
        let last = day.done.last().copied().unwrap_or("nothing");
        let ctx = format!("cut {cut:?} after step {last}, keeping {keep:?}");
        assert!(powerloss::is_cut(), "{ctx}: the cut never happened");
        let r = powerloss::power_cut(*keep).unwrap();
        sectors.0 += r.sectors_kept;
        sectors.1 += r.sectors_lost;
        sectors.2 += r.sectors_torn;
        sectors.3 += r.names_undone;
        if let (Cut::AtOp(_), Keep::Mixed(seed)) = (cut, keep) {
            if seed % 2 == 0 {
                cut_again_while_recovering(&day, 1 + seed % 40, Keep::Mixed(seed + 1));
                second_cuts += 1;
            }
        }
        check_after_cut(&dispatch, &mut day, &ctx);
    }
    eprintln!(
        "power loss: {} cuts ({} sync points x (2 + {} mixtures) + {} random, {} of them cut again while \
         recovering) of a day of {} writes and {} syncs in {:.1} s; sectors kept {}, lost {}, torn {}; names undone {}",
        cuts.len(),
        total.syncs,
        seeds_per_point(),
        random_cuts(),
        second_cuts,
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
    let _serial = MODEL.lock().unwrap_or_else(|p| p.into_inner());

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
