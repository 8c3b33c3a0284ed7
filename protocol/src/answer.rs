//! Dispatch's answers to a device's sync and prekey calls, authenticated end to end (G5, G6, G7).
//!
//! A sync answer decides what the device deletes and when: its acknowledgements drop events from
//! the outbox (audit records, shred receipts), its revocations shred jobs, and its server time
//! anchors trusted time. TLS alone is not enough to trust it: a TLS-terminating proxy, a
//! misissued certificate or a compromised middlebox could forge it (issue 12). So every answer to
//! `POST /v1/sync` and `POST /v1/prekeys` carries an HMAC-SHA256 under a key only the enrolled
//! device and dispatch can derive ([`crate::pairing::shared_key`] with
//! [`SYNC_ANSWER_KEY_SALT`]), computed over a domain label, the endpoint, the device id, the
//! fresh random nonce of the request it answers, and the exact bytes of the answer. An answer to
//! another request (a replay), to another device, to another endpoint, or altered or cut short
//! in any byte fails, and the device applies nothing of it.
//!
//! The body is `{"answer": <the answer's JSON>, "mac": "<hex>"}`. The answer stays readable JSON,
//! and the MAC covers its bytes exactly as they travel: the device takes them out of the body
//! without parsing them (serde_json's `RawValue`), checks the MAC, and only then parses. Nothing
//! is ever re-serialised to be checked, so no two JSON encoders have to agree on a canonical form.

use crate::crypto::{PublicKey, SecretKey};
use crate::{Error, Result};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// HKDF salt of the answer MAC key.
pub const SYNC_ANSWER_KEY_SALT: &[u8] = b"jobseal/v2/sync-answer-key";
/// Domain label, the first part of every answer MAC's input.
pub const ANSWER_MAC_LABEL: &str = "jobseal/v2/sync-answer";
/// Length of a request nonce in bytes (64 hex digits on the wire).
pub const NONCE_LEN: usize = 32;
/// The version of the sync protocol that authenticates answers. Version 1 requests carry no
/// nonce; dispatch refuses them with a 400 (`outdated_client`).
pub const SYNC_PROTOCOL_VERSION: u32 = 2;

/// A device call whose answer is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnsweredCall {
    /// `POST /v1/sync`.
    Sync,
    /// `POST /v1/prekeys`.
    Prekeys,
}

impl AnsweredCall {
    /// The endpoint's path, as it is bound into the MAC.
    pub fn path(self) -> &'static str {
        match self {
            AnsweredCall::Sync => "/v1/sync",
            AnsweredCall::Prekeys => "/v1/prekeys",
        }
    }
}

/// The body of a 2xx answer to an [`AnsweredCall`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticatedAnswer<'a> {
    /// The answer (a `wire::SyncResponse` or `wire::PrekeysResponse`), its bytes as sent.
    #[serde(borrow)]
    pub answer: &'a RawValue,
    /// HMAC-SHA256 over the answer, see [`AnswerKey::mac`]. Hex.
    #[serde(with = "crate::hex::serde_bytes")]
    pub mac: Vec<u8>,
}

/// The answer MAC key of one device, derived by either side of the identity/dispatch key pair.
pub struct AnswerKey {
    key: Zeroizing<[u8; 32]>,
    device_id: Uuid,
}

impl AnswerKey {
    /// Derives the key from one side's secret key and the other side's public key (the device:
    /// its identity secret and the pinned dispatch key; dispatch: its secret and the device's
    /// identity key).
    pub fn derive(own: &SecretKey, peer: &PublicKey, device_id: Uuid) -> Result<Self> {
        Ok(AnswerKey { key: crate::pairing::shared_key(own, peer, device_id, SYNC_ANSWER_KEY_SALT)?, device_id })
    }

    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length, so this cannot fail")]
    fn hmac(&self, call: AnsweredCall, nonce: &[u8], answer: &[u8]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()).expect("HMAC takes any key length");
        // Each part length-prefixed (u64, big-endian), so no two inputs share an encoding.
        for part in [ANSWER_MAC_LABEL.as_bytes(), call.path().as_bytes(), self.device_id.as_bytes(), nonce, answer] {
            m.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            m.update(part);
        }
        m
    }

    /// The MAC of `answer` (the exact bytes) as the answer to the `call` request that carried
    /// `nonce`.
    pub fn mac(&self, call: AnsweredCall, nonce: &[u8], answer: &[u8]) -> [u8; 32] {
        self.hmac(call, nonce, answer).finalize().into_bytes().into()
    }

    /// Dispatch's side: the body of the answer `answer` to the `call` request that carried
    /// `nonce`.
    pub fn seal<T: Serialize>(&self, call: AnsweredCall, nonce: &[u8], answer: &T) -> Result<Vec<u8>> {
        let raw =
            serde_json::value::to_raw_value(answer).map_err(|_| Error::integrity("an answer does not serialize"))?;
        let mac = self.mac(call, nonce, raw.get().as_bytes()).to_vec();
        serde_json::to_vec(&AuthenticatedAnswer { answer: &raw, mac })
            .map_err(|_| Error::integrity("an answer does not serialize"))
    }

    /// The device's side: checks `body` as the answer to the `call` request that carried
    /// `nonce`, in constant time, and returns the answer's JSON text, which only then may be
    /// parsed. Any failure (not an authenticated answer, cut short, altered, for another
    /// request, endpoint or device) is [`Error::Tampered`].
    pub fn open<'a>(&self, call: AnsweredCall, nonce: &[u8], body: &'a [u8]) -> Result<&'a str> {
        let parsed: AuthenticatedAnswer<'a> = serde_json::from_slice(body).map_err(failed)?;
        let text = parsed.answer.get();
        self.hmac(call, nonce, text.as_bytes()).verify_slice(&parsed.mac).map_err(failed)?;
        Ok(text)
    }
}

/// Why an answer is refused. One message for every cause, so that the error tells an attacker
/// nothing about which check failed; it names the innocent cause a support desk should rule out.
fn failed<E>(_: E) -> Error {
    Error::Tampered(concat!(
        "dispatch's answer failed authentication (forged, altered, cut short or not for this request; ",
        "or dispatch is older than sync protocol 2)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::generate_keypair;

    fn keys() -> (AnswerKey, AnswerKey, Uuid) {
        let (device, device_pub) = generate_keypair().unwrap();
        let (dispatch, dispatch_pub) = generate_keypair().unwrap();
        let id = Uuid::new_v4();
        (
            AnswerKey::derive(&dispatch, &device_pub, id).unwrap(),
            AnswerKey::derive(&device, &dispatch_pub, id).unwrap(),
            id,
        )
    }

    #[test]
    fn the_device_opens_exactly_what_dispatch_sealed_for_its_request() {
        let (dispatch, device, _) = keys();
        let nonce = [7u8; NONCE_LEN];
        let body = dispatch.seal(AnsweredCall::Sync, &nonce, &serde_json::json!({"acked": [], "n": 1})).unwrap();
        let text = device.open(AnsweredCall::Sync, &nonce, &body).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(text).unwrap()["n"], 1);
        // Another nonce (a replay), another endpoint, any byte changed or cut: refused.
        assert!(matches!(device.open(AnsweredCall::Sync, &[8u8; NONCE_LEN], &body), Err(Error::Tampered(_))));
        assert!(matches!(device.open(AnsweredCall::Prekeys, &nonce, &body), Err(Error::Tampered(_))));
        let edited = String::from_utf8(body.clone()).unwrap().replace("\"n\":1", "\"n\":2");
        assert!(matches!(device.open(AnsweredCall::Sync, &nonce, edited.as_bytes()), Err(Error::Tampered(_))));
        for cut in 1..body.len() {
            assert!(device.open(AnsweredCall::Sync, &nonce, &body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn an_answer_sealed_for_another_device_fails() {
        let (dispatch, _, _) = keys();
        let (_, other_device, _) = keys();
        let nonce = [1u8; NONCE_LEN];
        let body = dispatch.seal(AnsweredCall::Sync, &nonce, &serde_json::json!({})).unwrap();
        assert!(matches!(other_device.open(AnsweredCall::Sync, &nonce, &body), Err(Error::Tampered(_))));
    }
}
