//! The worked examples of docs/sync.md, recomputed from the written description alone (HMAC and
//! HKDF built here from SHA-256, encodings built by hand) and checked against the core. If one of
//! these fails, either the core changed the wire format or the document is wrong.

use chrono::{DateTime, Utc};
use jobseal::envelope::SecretKey;
use jobseal::receipt::{ReceiptKey, ShredReceipt};
use jobseal::sync::wire::AuditRecord;
use jobseal::{AuditKind, JobState};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn hex(b: &[u8]) -> String {
    jobseal::hex::encode(b)
}

/// A length-prefixed part: u32 big-endian length, then the bytes.
fn part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// HMAC-SHA256 (RFC 2104), written out so the document's recipe is tested, not the hmac crate.
fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(msg.iter().copied()).collect();
    let inner = Sha256::digest(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner.iter().copied()).collect();
    Sha256::digest(&outer).into()
}

/// HKDF-SHA256 (RFC 5869) with a 32-byte output: one block.
fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hmac(salt, ikm);
    let mut t = info.to_vec();
    t.push(1);
    hmac(&prk, &t)
}

fn key(label: &str) -> SecretKey {
    let bytes: [u8; 32] = Sha256::digest(label.as_bytes()).into();
    SecretKey::from_bytes(&bytes).unwrap()
}

const DEVICE: &str = "d3c1ce00-0000-4000-8000-000000000001";
const JOB: &str = "10b00000-0000-4000-8000-000000000042";

#[test]
fn receipt_mac_example() {
    let device_key = key("jobseal/example/device-identity");
    let dispatch_key = key("jobseal/example/dispatch");
    assert_eq!(device_key.public_key().to_string(), "eb9fa7e4a1ee16e0c487bf91f62e768eb5481da07512d75280181bb6e8508b7f");
    assert_eq!(
        dispatch_key.public_key().to_string(),
        "e65c66fc5b4ac9b8dc481dfb30b124c2343f5d8b8b8792a60db9f92975980d2a"
    );
    let device_id = Uuid::parse_str(DEVICE).unwrap();
    let job_id = Uuid::parse_str(JOB).unwrap();

    let shared = dispatch_key.diffie_hellman(&device_key.public_key()).unwrap();
    assert_eq!(hex(shared.as_ref()), "376d046efd6fc73ef73325fdef4ed9decff296a1409af00f1d4bacf46e03930c");
    let mac_key = hkdf32(b"jobseal/v1/receipt-key", shared.as_ref(), device_id.as_bytes());
    assert_eq!(hex(&mac_key), "71c685e0b2c26778c97165bbfe27b985f1886c58439a9899ddbd1358f61bfb4c");

    let shredded_at: DateTime<Utc> = "2030-03-04T10:15:30.123Z".parse().unwrap();
    let mut m = Vec::new();
    part(&mut m, b"jobseal/v1/shred-receipt");
    part(&mut m, device_id.as_bytes());
    part(&mut m, job_id.as_bytes());
    part(&mut m, &7u64.to_be_bytes());
    part(&mut m, b"completed");
    part(&mut m, &shredded_at.timestamp_millis().to_be_bytes());
    part(&mut m, &12u64.to_be_bytes());
    part(&mut m, &5u64.to_be_bytes());
    assert_eq!(
        hex(&m),
        "000000186a6f627365616c2f76312f73687265642d72656365697074\
         00000010d3c1ce00000040008000000000000001\
         0000001010b00000000040008000000000000042\
         000000080000000000000007\
         00000009636f6d706c65746564\
         00000008000001ba1c437e4b\
         00000008000000000000000c\
         000000080000000000000005"
    );
    let mac = hmac(&mac_key, &m);
    assert_eq!(hex(&mac), "5abdce015c71844b76ea9035534afb4aac435ba5ee9dcad297787e8b60344e6f");

    let receipt: ShredReceipt = serde_json::from_value(serde_json::json!({
        "device_id": DEVICE, "job_id": JOB, "version": 7, "state": "completed",
        "shredded_at": "2030-03-04T10:15:30.123Z", "epoch": 12, "fields_destroyed": 5,
        "mac": hex(&mac),
    }))
    .unwrap();
    assert!(ReceiptKey::derive(&dispatch_key, &device_key.public_key(), device_id).unwrap().verify(&receipt));
}

#[test]
fn audit_chain_example() {
    let job_id = Uuid::parse_str(JOB).unwrap();
    let event =
        |seq: u64, at_ms: i64, job: Option<Uuid>, kind: &str, field: Option<&str>, state: Option<&str>, prev: &[u8]| {
            let mut m = Vec::new();
            part(&mut m, b"jobseal/audit/v1");
            part(&mut m, &seq.to_be_bytes());
            part(&mut m, &at_ms.to_be_bytes());
            part(&mut m, job.map(|j| *j.as_bytes()).as_ref().unwrap_or(&[0u8; 16]));
            part(&mut m, kind.as_bytes());
            part(&mut m, field.unwrap_or("\0").as_bytes());
            part(&mut m, state.unwrap_or("\0").as_bytes());
            part(&mut m, b"\0"); // no detail
            part(&mut m, prev);
            (m.clone(), Sha256::digest(&m).to_vec())
        };
    let (_, h1) = event(1, 1_900_000_000_000, None, "vault-created", None, None, &[0u8; 32]);
    assert_eq!(hex(&h1), "587302f7f548a260d250a898e7fd89ec181fa71db13fd1c7dc3afd6d3ac62a7e");
    let (m2, h2) = event(2, 1_900_000_060_000, Some(job_id), "reveal", Some("phone"), Some("on-site"), &h1);
    assert_eq!(
        hex(&m2),
        "000000106a6f627365616c2f61756469742f7631\
         000000080000000000000002\
         00000008000001ba60d42260\
         0000001010b00000000040008000000000000042\
         0000000672657665616c\
         0000000570686f6e65\
         000000076f6e2d73697465\
         0000000100\
         00000020587302f7f548a260d250a898e7fd89ec181fa71db13fd1c7dc3afd6d3ac62a7e"
    );
    assert_eq!(hex(&h2), "f03a889f4e5ba68a98fe5aa431c080e45f52fb06049a98da56d3fc18e816451b");

    let r1 = AuditRecord {
        seq: 1,
        at_ms: 1_900_000_000_000,
        kind: AuditKind::VaultCreated,
        field: None,
        state: None,
        detail: None,
        prev_hash: vec![0; 32],
        hash: h1.clone(),
    };
    let r2 = AuditRecord {
        seq: 2,
        at_ms: 1_900_000_060_000,
        kind: AuditKind::Reveal,
        field: Some("phone".into()),
        state: Some(JobState::OnSite),
        detail: None,
        prev_hash: h1,
        hash: h2,
    };
    assert_eq!(jobseal::audit::verify_records(None, None, &[(None, r1.clone()), (Some(job_id), r2.clone())]), Ok(()));
    // The job id is part of the hash although the record does not carry it: it is the job_id of
    // the outbox event around the record. Another job id breaks the chain at that record.
    assert_eq!(jobseal::audit::verify_records(None, None, &[(None, r1), (None, r2)]), Err(2));
}

/// docs/sync.md section 4.5: the MAC of an answer to a prekey top-up.
#[test]
fn answer_mac_example() {
    use jobseal::answer::{AnswerKey, AnsweredCall};
    let device_key = key("jobseal/example/device-identity");
    let dispatch_key = key("jobseal/example/dispatch");
    let device_id = Uuid::parse_str(DEVICE).unwrap();
    let shared = dispatch_key.diffie_hellman(&device_key.public_key()).unwrap();
    let mac_key = hkdf32(b"jobseal/v2/sync-answer-key", shared.as_ref(), device_id.as_bytes());
    let nonce: Vec<u8> = (0u8..32).collect();
    let answer = br#"{"accepted":2,"available":21}"#;
    let mut m = Vec::new();
    for p in [&b"jobseal/v2/sync-answer"[..], b"/v1/prekeys", device_id.as_bytes(), &nonce, answer] {
        m.extend_from_slice(&(p.len() as u64).to_be_bytes());
        m.extend_from_slice(p);
    }
    let mac = hmac(&mac_key, &m);
    assert_eq!(hex(&mac_key), "8581e87e78859e961aa740be4961008bad8e7599aaab2adc8f53b9b6c523bf36");
    assert_eq!(hex(&mac), "c6c5b2301f80e72908682722017c2f44d0d841f3c532d907d043e000a2d31051");
    // The core computes the same, on both sides, and the body it seals carries the answer's bytes.
    let on_device = AnswerKey::derive(&device_key, &dispatch_key.public_key(), device_id).unwrap();
    assert_eq!(on_device.mac(AnsweredCall::Prekeys, &nonce, answer), mac);
    let body = format!(r#"{{"answer":{},"mac":"{}"}}"#, std::str::from_utf8(answer).unwrap(), hex(&mac));
    assert_eq!(on_device.open(AnsweredCall::Prekeys, &nonce, body.as_bytes()).unwrap().as_bytes(), answer);
    let at_dispatch = AnswerKey::derive(&dispatch_key, &device_key.public_key(), device_id).unwrap();
    let value: serde_json::Value = serde_json::from_slice(answer).unwrap();
    let sealed = at_dispatch.seal(AnsweredCall::Prekeys, &nonce, &value).unwrap();
    assert_eq!(String::from_utf8(sealed).unwrap(), body);
}

/// docs/sync.md section 11: the keyed chain of an enrolled device. The key comes from the same
/// agreement as the receipt key (section 10), with its own salt; a link is HMAC-SHA256 under it
/// over the section 11 parts with the label "jobseal/audit/v2".
#[test]
fn keyed_audit_chain_example() {
    let device_key = key("jobseal/example/device-identity");
    let dispatch_key = key("jobseal/example/dispatch");
    let device_id = Uuid::parse_str(DEVICE).unwrap();
    let shared = dispatch_key.diffie_hellman(&device_key.public_key()).unwrap();
    let audit_key = hkdf32(b"jobseal/v1/audit-chain-key", shared.as_ref(), device_id.as_bytes());
    assert_eq!(hex(&audit_key), "36e79736684b36d4306ee55539dc9a7398e31d6e9e2e7e01669d7c74ebe3eb52");
    let mut m = Vec::new();
    part(&mut m, b"jobseal/audit/v2");
    part(&mut m, &1u64.to_be_bytes());
    part(&mut m, &1_900_000_000_000i64.to_be_bytes());
    part(&mut m, &[0u8; 16]);
    part(&mut m, b"vault-created");
    part(&mut m, b"\0");
    part(&mut m, b"\0");
    part(&mut m, b"\0");
    part(&mut m, &[0u8; 32]);
    let link = hmac(&audit_key, &m);
    assert_eq!(hex(&link), "ebe2adf82ab29b04b127dac3d95e30a2829c5294144fdad1306eceefe6f831eb");
    // The library computes the same, on both sides of the key pair.
    let event = jobseal::audit::NewEvent {
        at_ms: 1_900_000_000_000,
        job_id: None,
        kind: AuditKind::VaultCreated,
        field: None,
        state: None,
        detail: None,
    };
    for k in [
        jobseal::audit::AuditKey::derive(&dispatch_key, &device_key.public_key(), device_id).unwrap(),
        jobseal::audit::AuditKey::derive(&device_key, &dispatch_key.public_key(), device_id).unwrap(),
    ] {
        assert_eq!(jobseal::audit::chain_hash(Some(&k), 1, &event, &[0u8; 32]).to_vec(), link);
    }
}
