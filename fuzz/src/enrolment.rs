//! The bundle and enrolment messages, as the device and dispatch parse them (G4, G8).
//!
//! Enrolment is where an unauthenticated party first talks to either side: a device bundle
//! arrives through the FFI and inside enrolment requests, a person types an enrolment code (a
//! credential until used: no error may quote it), and the enrolment request and answer carry
//! proofs and a sealed token. This target parses each of them with the functions the device and
//! dispatch call, and checks what must hold of a message that parses: a bundle re-encodes to
//! itself and can be sealed to, a code normalises to a fixed point and its `Debug` hides it,
//! proofs and sealed tokens made by no one do not verify. Dispatch's handling of a whole
//! enrolment request over HTTP is the `dispatch_api` target's.

use crate::targets::{check_error, EXAMPLE_SHEET};
use jobseal::enrolment::{self, EnrolmentCode};
use jobseal::envelope::{self, PublicKey, SecretKey};
use jobseal::sync::wire::{EnrolRequest, EnrolResponse};
use jobseal::DeviceBundle;
use std::sync::OnceLock;
use uuid::Uuid;

/// Fixed keys of the target: a device identity and dispatch.
struct Keys {
    identity: SecretKey,
    identity_pk: PublicKey,
    dispatch: SecretKey,
    dispatch_pk: PublicKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (identity, identity_pk) = envelope::generate_keypair().expect("keypair");
        let (dispatch, dispatch_pk) = envelope::generate_keypair().expect("keypair");
        Keys { identity, identity_pk, dispatch, dispatch_pk }
    })
}

fn protocol_error(stage: &str, e: jobseal::ProtocolError) {
    check_error(stage, &jobseal::Error::from(e));
}

/// One enrolment message. Input: a selector byte, then the message. Selector mod 5: 0, a device
/// bundle (`DeviceBundle::from_json`); 1, a typed enrolment code (`EnrolmentCode::parse`); 2,
/// an enrolment request as dispatch parses it, its code and identity proofs checked; 3, an
/// enrolment answer as the device parses it, its token opened; 4, a sealed device token alone.
pub fn fuzz_enrolment(data: &[u8]) {
    let Some((&sel, payload)) = data.split_first() else { return };
    let k = keys();
    match sel % 5 {
        0 => bundle(payload),
        1 => code(payload),
        2 => {
            let Ok(req) = serde_json::from_slice::<EnrolRequest>(payload) else { return };
            // Nobody holds these keys' secrets in the input: no proof may verify.
            let proof_key = [7u8; 32];
            let _ = enrolment::verify_code_proof(&proof_key, &req);
            match enrolment::verify_identity_proof(&k.dispatch, &req.bundle.identity_key, &req) {
                Ok(ok) => {
                    // The request names its own identity key; its proof may verify only if the
                    // input carries the HMAC under a key derived from dispatch's fixed secret.
                    let _ = ok;
                }
                Err(e) => protocol_error("identity-proof", e),
            }
            // Dispatch answers a well-formed request: sealing a token for it must work.
            if req.nonce.len() == enrolment::NONCE_LEN {
                if let Err(e) = enrolment::seal_answer_token(
                    &k.dispatch,
                    &req.bundle.identity_key,
                    req.bundle.device_id,
                    &req.nonce,
                    0,
                    "token",
                ) {
                    protocol_error("seal-token", e);
                }
            }
        }
        3 => {
            let Ok(answer) = serde_json::from_slice::<EnrolResponse>(payload) else { return };
            let nonce = [1u8; enrolment::NONCE_LEN];
            let opened = enrolment::open_answer_token(
                &k.identity,
                &answer.dispatch_key,
                answer.device_id,
                &nonce,
                answer.server_time.timestamp_millis(),
                &answer.sealed_device_token,
            );
            if let Err(e) = opened {
                protocol_error("open-token", e);
            }
        }
        _ => {
            // A token sealed by dispatch for this identity opens; fuzzed bytes must fail cleanly
            // (the first byte picks whether the right keys are used).
            let device = Uuid::from_u128(0x1d);
            let nonce = [2u8; enrolment::NONCE_LEN];
            let dispatch_pk = if payload.first().is_some_and(|b| b & 1 == 1) { k.identity_pk } else { k.dispatch_pk };
            match enrolment::open_answer_token(&k.identity, &dispatch_pk, device, &nonce, 0, payload) {
                Ok(_) => {}
                Err(e) => protocol_error("open-sealed", e),
            }
            let sealed = enrolment::seal_answer_token(
                &k.dispatch,
                &k.identity_pk,
                device,
                &nonce,
                0,
                &String::from_utf8_lossy(payload),
            )
            .expect("sealing a token works");
            let opened = enrolment::open_answer_token(&k.identity, &k.dispatch_pk, device, &nonce, 0, &sealed)
                .expect("a sealed token opens");
            assert_eq!(opened.as_str(), String::from_utf8_lossy(payload), "a token did not round-trip");
        }
    }
}

fn bundle(payload: &[u8]) {
    match DeviceBundle::from_json(payload) {
        Ok(b) => {
            let json = serde_json::to_vec(&b).expect("a bundle serializes");
            let again = DeviceBundle::from_json(&json).expect("a bundle re-parses");
            assert_eq!(again, b, "a bundle did not round-trip");
            let prekey = b.prekeys.first().map(|p| p.id);
            if let Err(e) = jobseal::seal_job_sheet(&keys().dispatch, &b, prekey, EXAMPLE_SHEET.as_bytes()) {
                protocol_error("seal-to-bundle", e);
            }
        }
        Err(e) => protocol_error("bundle", e),
    }
}

fn code(payload: &[u8]) {
    let typed = String::from_utf8_lossy(payload);
    match EnrolmentCode::parse(&typed) {
        Ok(code) => {
            let shown = code.display();
            let again = EnrolmentCode::parse(&shown).expect("a displayed code parses");
            assert!(again == code, "a displayed code parsed to another code");
            assert!(EnrolmentCode::is_code_id(code.id()), "a code's id is not a code id");
            let dbg = format!("{code:?}");
            assert!(!dbg.contains(code.id()) || dbg.contains("redacted"), "Debug shows an enrolment code");
            assert!(!dbg.contains(shown.as_str()), "Debug shows an enrolment code");
            if let Err(e) = code.proof_key() {
                protocol_error("code-key", e);
            }
        }
        Err(e) => {
            // A mistyped code is still most of a credential: the message must not depend on
            // it, so it is one of the two fixed messages (a character outside the alphabet, or
            // the wrong length).
            let msg = e.to_string();
            let fixed = |typed: &str| EnrolmentCode::parse(typed).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg == fixed("#") || msg == fixed("A"), "an enrolment code error depends on the typed code");
            protocol_error("code", e);
        }
    }
}
