//! Forensics as an attacker would do them (G1, G3): scan every file of the data directory for
//! customer values, data keys, wrapped data keys and ciphertext after the close, and try to use a
//! copy of the database taken before the close with the keystore as it is after it.

use jobseal::{FieldAccess, FileKeyStore, JobState, KeyStore, Vault};
use jobseal_testkit::device::{clock_at, open_vault, open_vault_at};
use jobseal_testkit::files::{canary, copy_tree, files_containing, files_under};
use jobseal_testkit::sheet::Sheet;
use std::path::Path;
use uuid::Uuid;

struct Planted {
    job: Uuid,
    canaries: Vec<String>,
}

fn plant(vault: &Vault) -> Planted {
    let job = Uuid::new_v4();
    let canaries: Vec<String> = ["name", "phone", "addr", "door", "note"].iter().map(|l| canary(l)).collect();
    vault.ingest(&Sheet::new(job).values(canaries.iter().map(String::as_str)).build()).unwrap();
    vault.advance(job, JobState::EnRoute).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    Planted { job, canaries }
}

/// Secret bytes of a job as they sit in the database: its wrapped data key and every sealed field.
fn stored_secrets(dir: &Path, job: Uuid) -> Vec<Vec<u8>> {
    let db = rusqlite::Connection::open(dir.join("vault.db")).unwrap();
    let mut out: Vec<Vec<u8>> =
        vec![db.query_row("SELECT wrapped FROM secrets WHERE id = ?1", [format!("dek:{job}")], |r| r.get(0)).unwrap()];
    let mut stmt = db.prepare("SELECT sealed FROM fields WHERE job_id = ?1").unwrap();
    out.extend(stmt.query_map([job.to_string()], |r| r.get(0)).unwrap().map(|r| r.unwrap()));
    out
}

fn assert_absent(dir: &Path, what: &str, needle: &[u8]) {
    let found = files_containing(dir, needle);
    assert!(found.is_empty(), "{what} found on disk in {found:?}");
}

#[test]
fn after_the_close_no_file_holds_a_value_a_key_or_a_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(200);
    let vault = open_vault(dir.path(), clock.clone()).unwrap();
    let closed: Vec<Planted> = (0..3).map(|_| plant(&vault)).collect();
    let survivor = plant(&vault);
    let mut secrets = Vec::new();
    let mut deks = Vec::new();
    for p in &closed {
        let r = vault.reveal(p.job).unwrap();
        assert!(r.fields.iter().all(|f| matches!(f.access, FieldAccess::Visible { .. })));
        secrets.extend(stored_secrets(dir.path(), p.job));
        deks.push(vault.data_key_insecure_for_testing(p.job).unwrap());
    }
    // G1 before the close: values exist only as ciphertext.
    for c in closed.iter().chain([&survivor]).flat_map(|p| &p.canaries) {
        assert_absent(dir.path(), "a customer value (while live)", c.as_bytes());
    }

    vault.close(closed[0].job, "Installed and tested.").unwrap();
    vault.cancel(closed[1].job).unwrap();
    vault.revoke(closed[2].job).unwrap();
    drop(vault);

    // The survivor went through three rotations and still opens, after a reopen too.
    let vault = open_vault(dir.path(), clock).unwrap();
    let r = vault.reveal(survivor.job).unwrap();
    assert!(r.fields.iter().all(|f| matches!(f.access, FieldAccess::Visible { .. })), "the survivor was lost");
    drop(vault);

    let files = files_under(dir.path());
    assert!(files.iter().any(|f| f.ends_with("vault.db")), "scan sees the database");
    for p in &closed {
        for c in &p.canaries {
            assert_absent(dir.path(), "a customer value", c.as_bytes());
        }
    }
    for (i, dek) in deks.iter().enumerate() {
        assert_absent(dir.path(), &format!("data key #{i}"), dek);
    }
    for (i, blob) in secrets.iter().enumerate() {
        assert_absent(dir.path(), &format!("stored secret #{i} (whole)"), blob);
        // Any 16-byte run of it (the tag, a nonce fragment) would do to prove a leftover page.
        for chunk in blob.chunks_exact(16) {
            assert_absent(dir.path(), &format!("stored secret #{i} (fragment)"), chunk);
        }
    }
    let wal = dir.path().join("vault.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "the WAL was not truncated");
}

#[test]
fn a_copy_taken_before_the_close_cannot_be_opened_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(200);
    let vault = open_vault(dir.path(), clock.clone()).unwrap();
    let p = plant(&vault);
    let other = plant(&vault);

    // The attacker's image, taken while the jobs are open (database, WAL, keystore: everything).
    let image = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), image.path());
    std::fs::remove_file(image.path().join("vault.lock")).ok();

    vault.close(p.job, "done").unwrap();
    vault.close(other.job, "done").unwrap();
    drop(vault);

    // Control: with the keystore as it was at the time, the image opens and reveals. This is
    // what a hardware keystore prevents and what the shred must make impossible later.
    {
        let control = tempfile::tempdir().unwrap();
        copy_tree(image.path(), control.path());
        let v = open_vault_at(control.path(), 200).unwrap();
        let r = v.reveal(p.job).unwrap();
        assert!(r.fields.iter().all(|f| matches!(f.access, FieldAccess::Visible { .. })), "control image must open");
    }

    // The real attack: the old database with the keystore as it is after the close.
    let attack = tempfile::tempdir().unwrap();
    copy_tree(image.path(), attack.path());
    std::fs::remove_dir_all(attack.path().join("keystore")).unwrap();
    copy_tree(&dir.path().join("keystore"), &attack.path().join("keystore"));
    let opened = open_vault_at(attack.path(), 200);
    assert!(matches!(opened, Err(jobseal::Error::KeyStore(_))), "the old image opened with today's keystore");

    // And by hand: no key in today's keystore unwraps the image's epoch master key.
    let db = rusqlite::Connection::open(image.path().join("vault.db")).unwrap();
    let (old_epoch, wrapped): (i64, Vec<u8>) =
        db.query_row("SELECT epoch, wrapped_emk FROM epochs", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let ks = FileKeyStore::open(dir.path().join("keystore")).unwrap();
    let aliases: Vec<String> = files_under(&dir.path().join("keystore"))
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(aliases.len(), 1);
    assert_ne!(aliases[0], format!("jobseal-kek-{old_epoch}"));
    for alias in aliases.iter().chain([&format!("jobseal-kek-{old_epoch}")]) {
        assert!(ks.unwrap(alias, &wrapped).is_err(), "{alias} unwrapped the old epoch key");
    }
}

#[test]
fn an_envelope_captured_before_opening_cannot_be_opened_after_the_close() {
    use jobseal::envelope;
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(200);
    let vault = open_vault(dir.path(), clock.clone()).unwrap();
    let (dispatch, dispatch_pub) = envelope::generate_keypair().unwrap();
    let bundle = vault.enrol(dispatch_pub, 2).unwrap();
    let job = Uuid::new_v4();
    let door = canary("door");
    let sheet = Sheet::new(job).value("door_code", &door).json_string();
    let captured = jobseal::seal_job_sheet(&dispatch, &bundle, Some(1), sheet.as_bytes()).unwrap();

    // At capture time the attacker also copies the database files (not the hardware keystore).
    let image = tempfile::tempdir().unwrap();
    for f in ["vault.db", "vault.db-wal", "vault.db-shm"] {
        if dir.path().join(f).exists() {
            std::fs::copy(dir.path().join(f), image.path().join(f)).unwrap();
        }
    }
    vault.receive(&captured).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    vault.close(job, "done").unwrap();

    // The device itself refuses the envelope now (tombstone), and no longer holds its prekey.
    assert!(matches!(vault.receive(&captured), Err(jobseal::Error::JobClosed { .. })));
    drop(vault);
    let db = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
    let held: i64 = db.query_row("SELECT count(*) FROM secrets WHERE id = 'prekey:1'", [], |r| r.get(0)).unwrap();
    assert_eq!(held, 0, "the prekey's private half survived the opening");
    drop(db);

    // The copied database with the keystore as it is now: the epoch it was written under is gone.
    copy_tree(&dir.path().join("keystore"), &image.path().join("keystore"));
    let reopened = open_vault_at(image.path(), 200);
    assert!(matches!(reopened, Err(jobseal::Error::KeyStore(_))), "the capture-time image opened");
    assert!(files_containing(dir.path(), door.as_bytes()).is_empty());
}

#[test]
fn a_copy_taken_before_a_sheet_update_cannot_show_the_old_version_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let vault = open_vault(dir.path(), clock_at(200)).unwrap();
    let p = plant(&vault);
    let old_secrets = stored_secrets(dir.path(), p.job);

    // The attacker's image while version 1 is held.
    let image = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), image.path());
    std::fs::remove_file(image.path().join("vault.lock")).ok();

    // Dispatch updates the sheet: new values, a new data key.
    let fresh: Vec<String> = ["name2", "phone2", "addr2", "door2", "note2"].iter().map(|l| canary(l)).collect();
    vault.ingest(&Sheet::new(p.job).version(2).values(fresh.iter().map(String::as_str)).build()).unwrap();
    let r = vault.reveal(p.job).unwrap();
    assert!(r
        .fields
        .iter()
        .any(|f| matches!(&f.access, FieldAccess::Visible { value, .. } if value.expose() == fresh[0])));
    drop(vault);

    // Nothing of version 1 is left in today's files: no value, no ciphertext, no wrapped key.
    for (i, c) in p.canaries.iter().enumerate() {
        assert_absent(dir.path(), &format!("old value {i}"), c.as_bytes());
    }
    for (i, s) in old_secrets.iter().enumerate() {
        assert_absent(dir.path(), &format!("old secret {i}"), s);
    }
    // And the image, with the keystore as it is after the update, does not open.
    let attack = tempfile::tempdir().unwrap();
    copy_tree(image.path(), attack.path());
    std::fs::remove_dir_all(attack.path().join("keystore")).unwrap();
    copy_tree(&dir.path().join("keystore"), &attack.path().join("keystore"));
    let opened = open_vault_at(attack.path(), 200);
    assert!(matches!(opened, Err(jobseal::Error::KeyStore(_))), "the version-1 image opened with today's keystore");
}
