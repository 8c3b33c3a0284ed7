//! Sealed delivery from outside (G4, G5): enrolment, envelopes that are forged, altered,
//! misaddressed or replayed, prekey exhaustion and top-up, weak keys.

use jobseal::envelope::{self, EnvelopeHeader};
use jobseal::{seal_job_sheet, DeviceBundle, Error, JobState, PublicKey, RecipientKeyId, SecretKey};
use jobseal_testkit::device::{open_vault, vault_at, TestVault};
use jobseal_testkit::sheet::{sheet_value, NAME, PHONE, VALUES};
use uuid::Uuid;

struct Enrolled {
    tv: TestVault,
    dispatch: SecretKey,
    bundle: DeviceBundle,
}

fn enrolled(prekeys: u32) -> Enrolled {
    let tv = vault_at(200);
    let (dispatch, dispatch_pub) = envelope::generate_keypair().unwrap();
    let bundle = tv.vault.enrol(dispatch_pub, prekeys).unwrap();
    Enrolled { tv, dispatch, bundle }
}

fn sheet_bytes(job: Uuid, version: u64) -> Vec<u8> {
    sheet_value(job, version).to_string().into_bytes()
}

fn state_of(tv: &TestVault) -> (usize, usize, usize) {
    let bundle = tv.vault.device_bundle().unwrap();
    (tv.vault.list_jobs().unwrap().len(), bundle.prekeys.len(), tv.vault.audit_log(None).unwrap().len())
}

#[test]
fn a_sealed_sheet_is_received_and_its_prekey_destroyed() {
    let e = enrolled(3);
    assert_eq!(e.bundle.prekeys.len(), 3);
    let job = Uuid::new_v4();
    let first = e.bundle.prekeys[0].id;
    let env = seal_job_sheet(&e.dispatch, &e.bundle, Some(first), &sheet_bytes(job, 1)).unwrap();
    let info = e.tv.vault.receive(&env).unwrap();
    assert_eq!((info.job_id, info.version, info.state), (job, 1, JobState::Assigned));
    assert_eq!(info.delivered_via, Some(RecipientKeyId::Prekey(first)));
    let left = e.tv.vault.device_bundle().unwrap();
    assert!(left.prekeys.iter().all(|p| p.id != first), "the used prekey is still published");
    assert_eq!(left.prekeys.len(), 2);
    // The same envelope again: the version is held, so it is stale.
    assert!(matches!(e.tv.vault.receive(&env), Err(Error::StaleVersion { .. })));
    e.tv.vault.advance(job, JobState::OnSite).unwrap();
    let r = e.tv.vault.reveal(job).unwrap();
    assert!(r.fields.iter().all(|f| matches!(f.access, jobseal::FieldAccess::Visible { .. })));
}

#[test]
fn every_single_byte_change_is_tampered_and_stores_nothing() {
    let e = enrolled(1);
    let env =
        seal_job_sheet(&e.dispatch, &e.bundle, Some(e.bundle.prekeys[0].id), &sheet_bytes(Uuid::new_v4(), 1)).unwrap();
    let before = state_of(&e.tv);
    for i in 0..env.len() {
        let mut bad = env.clone();
        bad[i] ^= 0x01;
        match e.tv.vault.receive(&bad) {
            Err(Error::Tampered(_)) => {}
            // The device id is checked before anything is opened; an edit there is a
            // misaddressed envelope, which is refused all the same.
            Err(Error::Misaddressed) if (5..21).contains(&i) => {}
            // A changed prekey id names a key the device never had.
            Err(Error::PrekeyUnavailable(_)) if (46..50).contains(&i) => {}
            Err(other) => panic!("byte {i}: expected Tampered, got {other}"),
            Ok(_) => panic!("byte {i}: an altered envelope was accepted"),
        }
    }
    for cut in [0, 3, 50, 97, env.len() - 1] {
        assert!(matches!(e.tv.vault.receive(&env[..cut]), Err(Error::Tampered(_))), "truncated to {cut}");
    }
    let mut longer = env.clone();
    longer.push(0);
    assert!(matches!(e.tv.vault.receive(&longer), Err(Error::Tampered(_))));
    assert_eq!(state_of(&e.tv), before, "a refused envelope changed the vault");
    e.tv.vault.receive(&env).expect("the original still opens");
}

#[test]
fn only_the_pinned_dispatch_key_can_seal() {
    let e = enrolled(1);
    let (forger, _) = envelope::generate_keypair().unwrap();
    let env =
        seal_job_sheet(&forger, &e.bundle, Some(e.bundle.prekeys[0].id), &sheet_bytes(Uuid::new_v4(), 1)).unwrap();
    let before = state_of(&e.tv);
    assert!(matches!(e.tv.vault.receive(&env), Err(Error::Tampered(_))));
    assert_eq!(state_of(&e.tv), before);
}

#[test]
fn envelopes_for_another_device_job_or_version_are_refused() {
    let e = enrolled(2);
    let other = enrolled(1);
    // Sealed properly, but to another device.
    let env = seal_job_sheet(&e.dispatch, &other.bundle, Some(1), &sheet_bytes(Uuid::new_v4(), 1)).unwrap();
    assert!(matches!(e.tv.vault.receive(&env), Err(Error::Misaddressed)));
    // Sealed by dispatch under a header that names another job or version than the sheet inside.
    let job = Uuid::new_v4();
    let pk = e.bundle.prekeys[0].public_key;
    for (hjob, hver) in [(Uuid::new_v4(), 1), (job, 2)] {
        let header = EnvelopeHeader::new(e.bundle.device_id, hjob, hver, RecipientKeyId::Prekey(1));
        let env = envelope::seal_sheet(&e.dispatch, &pk, &header, &sheet_bytes(job, 1)).unwrap();
        assert!(matches!(e.tv.vault.receive(&env), Err(Error::Tampered(_))), "header {hjob} v{hver}");
    }
    assert!(e.tv.vault.list_jobs().unwrap().is_empty());
    assert_eq!(e.tv.vault.device_bundle().unwrap().prekeys.len(), 2, "a refused envelope used up a prekey");
}

/// Refused envelopes that are authentic (a stale version, a closed job) still use up their
/// prekey, so that a copy kept by anyone who saw them can never be opened; a forged one, which
/// the device cannot authenticate, burns nothing.
#[test]
fn closed_jobs_cannot_come_back_and_versions_only_move_forward() {
    let e = enrolled(5);
    let job = Uuid::new_v4();
    let v1 = seal_job_sheet(&e.dispatch, &e.bundle, Some(1), &sheet_bytes(job, 1)).unwrap();
    let v2 = seal_job_sheet(&e.dispatch, &e.bundle, Some(2), &sheet_bytes(job, 2)).unwrap();
    let v3 = seal_job_sheet(&e.dispatch, &e.bundle, Some(3), &sheet_bytes(job, 3)).unwrap();
    e.tv.vault.receive(&v2).unwrap();
    assert!(matches!(e.tv.vault.receive(&v1), Err(Error::StaleVersion { held: 2, offered: 1, .. })));
    e.tv.vault.advance(job, JobState::OnSite).unwrap();
    e.tv.vault.close(job, "done").unwrap();
    for (name, env) in [("v1", &v1), ("v2", &v2), ("v3", &v3)] {
        assert!(matches!(e.tv.vault.receive(env), Err(Error::JobClosed { .. })), "{name} after close");
    }
    let v9 = seal_job_sheet(&e.dispatch, &e.bundle, Some(4), &sheet_bytes(job, 9)).unwrap();
    assert!(matches!(e.tv.vault.receive(&v9), Err(Error::JobClosed { .. })), "a newer version revived a closed job");
    let ids: Vec<u32> = e.tv.vault.device_bundle().unwrap().prekeys.iter().map(|p| p.id).collect();
    assert_eq!(ids, [5], "refused authentic envelopes must use up their prekeys");
    // A forged envelope naming prekey 5 (sealed by a key that is not the pinned dispatch key).
    let (impostor, _) = envelope::generate_keypair().unwrap();
    let forged = seal_job_sheet(&impostor, &e.bundle, Some(5), &sheet_bytes(job, 10)).unwrap();
    assert!(matches!(e.tv.vault.receive(&forged), Err(Error::JobClosed { .. })));
    let ids: Vec<u32> = e.tv.vault.device_bundle().unwrap().prekeys.iter().map(|p| p.id).collect();
    assert_eq!(ids, [5], "a forged envelope burned a prekey");
}

#[test]
fn exhaustion_falls_back_to_the_identity_key_and_a_top_up_restores_prekeys() {
    let e = enrolled(1);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    e.tv.vault.receive(&seal_job_sheet(&e.dispatch, &e.bundle, Some(1), &sheet_bytes(a, 1)).unwrap()).unwrap();
    assert!(e.tv.vault.device_bundle().unwrap().prekeys.is_empty());
    let env = seal_job_sheet(&e.dispatch, &e.bundle, None, &sheet_bytes(b, 1)).unwrap();
    let info = e.tv.vault.receive(&env).unwrap();
    assert_eq!(info.delivered_via, Some(RecipientKeyId::Identity));
    let ingest = e.tv.vault.audit_log(Some(b)).unwrap().remove(0);
    assert!(ingest.detail.unwrap().contains("identity key"), "the audit log must show the fallback");
    let topped = e.tv.vault.add_prekeys(10).unwrap();
    assert_eq!(topped.prekeys.len(), 10);
    assert_eq!(topped.prekeys.first().map(|p| p.id), Some(2), "prekey ids are never reused");
    assert!(matches!(e.tv.vault.add_prekeys(0), Err(Error::InvalidInput(_))));
    let c = Uuid::new_v4();
    let info = e.tv.vault.receive(&seal_job_sheet(&e.dispatch, &topped, Some(7), &sheet_bytes(c, 1)).unwrap()).unwrap();
    assert_eq!(info.delivered_via, Some(RecipientKeyId::Prekey(7)));
}

#[test]
fn device_keys_survive_rotations() {
    let e = enrolled(3);
    let a = Uuid::new_v4();
    e.tv.vault.receive(&seal_job_sheet(&e.dispatch, &e.bundle, Some(1), &sheet_bytes(a, 1)).unwrap()).unwrap();
    e.tv.vault.cancel(a).unwrap();
    let TestVault { vault, clock, dir } = e.tv;
    drop(vault);
    let vault = open_vault(dir.path(), clock).unwrap();
    assert_eq!(vault.epoch(), 2);
    let b = Uuid::new_v4();
    vault.receive(&seal_job_sheet(&e.dispatch, &e.bundle, Some(2), &sheet_bytes(b, 1)).unwrap()).unwrap();
    vault.receive(&seal_job_sheet(&e.dispatch, &e.bundle, None, &sheet_bytes(Uuid::new_v4(), 1)).unwrap()).unwrap();
}

#[test]
fn weak_keys_are_refused_in_bundles_and_at_enrolment() {
    let e = enrolled(1);
    let mut json = serde_json::to_value(&e.bundle).unwrap();
    let low_order = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    for bad in low_order {
        json["identity_key"] = serde_json::json!(bad);
        assert!(matches!(DeviceBundle::from_json(json.to_string().as_bytes()), Err(jobseal::ProtocolError::InvalidInput(_))), "{bad}");
        let mut j2 = serde_json::to_value(&e.bundle).unwrap();
        j2["prekeys"][0]["public_key"] = serde_json::json!(bad);
        assert!(matches!(DeviceBundle::from_json(j2.to_string().as_bytes()), Err(jobseal::ProtocolError::InvalidInput(_))), "{bad}");
        assert!(bad.parse::<PublicKey>().is_err());
    }
    assert!(matches!(e.tv.vault.enrol(e.bundle.identity_key, 1), Err(Error::Enrolment(_))), "enrolled twice");
}

#[test]
fn a_weak_ephemeral_key_in_an_envelope_is_refused() {
    let e = enrolled(1);
    let mut env = seal_job_sheet(&e.dispatch, &e.bundle, Some(1), &sheet_bytes(Uuid::new_v4(), 1)).unwrap();
    // enc sits after the 4-byte magic and the 46-byte header.
    env[50..82].copy_from_slice(&[0u8; 32]);
    assert!(matches!(e.tv.vault.receive(&env), Err(Error::Tampered(_))));
    env[50] = 1;
    assert!(matches!(e.tv.vault.receive(&env), Err(Error::Tampered(_))));
}

#[test]
fn an_unenrolled_device_refuses_envelopes() {
    let e = enrolled(1);
    let env = seal_job_sheet(&e.dispatch, &e.bundle, Some(1), &sheet_bytes(Uuid::new_v4(), 1)).unwrap();
    let fresh = vault_at(200);
    assert!(matches!(fresh.vault.receive(&env), Err(Error::Enrolment(_))));
    assert!(matches!(fresh.vault.device_bundle(), Err(Error::Enrolment(_))));
}

/// Found by the `ffi_inputs` fuzz target: a sheet passed where the bundle belongs (an easy mix-up
/// of `seal_job_sheet`'s two JSON arguments) came back in an error quoting a customer value.
#[test]
fn a_malformed_bundle_error_quotes_nothing_of_the_input() {
    let sheet = sheet_value(Uuid::new_v4(), 1).to_string();
    for bad in
        [sheet.clone(), sheet.replace("\"format\"", &format!("\"{NAME}\"")), format!("{{\"format\": \"{PHONE}\"}}")]
    {
        match DeviceBundle::from_json(bad.as_bytes()) {
            Err(e @ jobseal::ProtocolError::InvalidInput(_)) => {
                let shown = format!("{e} {e:?}");
                for v in VALUES {
                    assert!(!shown.contains(v), "a bundle error quotes a customer value");
                }
            }
            other => panic!("expected InvalidInput, got ok={}", other.is_ok()),
        }
    }
}
