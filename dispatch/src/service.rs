//! The dispatch service: the database, dispatch's key pair and the credentials checks that
//! every endpoint shares (G4, G7).
//!
//! Endpoints are split by who calls them (`devices`, `ingest`, `jobs`), but they meet here: one
//! [`Service`] owns the only database connection and the only copy of dispatch's secret key,
//! and every rule about who may call what (device bearer tokens, the operator token) is checked
//! by the helpers of this module, so no endpoint grows its own variant.

use crate::db::{params, OptionalExtension, Tx};
use crate::error::{ApiError, DispatchError};
use crate::operator::DeliveryStatus;
use crate::store::{now_ms, Store};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use jobseal_protocol::answer::{AnswerKey, AnsweredCall, NONCE_LEN};
use jobseal_protocol::bundle::{seal_job_sheet, DeviceBundle, Prekey, BUNDLE_FORMAT};
use jobseal_protocol::envelope::{PublicKey, RecipientKeyId, SecretKey};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Everything a request handler needs. Shared behind an `Arc` by the HTTP layer.
pub(crate) struct Service {
    pub(crate) store: Store,
    /// Dispatch's secret key: seals sheets (HPKE Auth sender key) and derives receipt MAC keys.
    /// Only this struct holds it; it is never logged or serialized.
    secret: SecretKey,
    /// Dispatch's public key, the one devices pin.
    pub(crate) public: PublicKey,
    /// SHA-256 of the operator token; the token itself is not kept.
    operator_token_hash: [u8; 32],
    /// How long a request body may take to arrive (`server::Timeouts::body_read`).
    pub(crate) body_read_timeout: std::time::Duration,
    /// SHA-256 of the scrape token of `/metrics`, when one is configured; without one, `/metrics`
    /// takes the operator token.
    pub(crate) metrics_token_hash: Option<[u8; 32]>,
    /// The server's counters (`telemetry`).
    pub(crate) metrics: crate::telemetry::Metrics,
    /// The per-source enrolment limit; `None` in-process ([`crate::router`]), where requests
    /// have no peer address.
    pub(crate) enrol_limiter: Option<crate::ratelimit::SourceLimiter>,
}

/// An enrolled device as the handlers need it.
pub(crate) struct DeviceRow {
    pub(crate) device_id: Uuid,
    pub(crate) identity_key: PublicKey,
    pub(crate) wiped: bool,
}

impl Service {
    /// Opens the database (creating it and dispatch's key pair on first start).
    pub(crate) fn open(database: &crate::store::Database, operator_token: &str) -> Result<Service, DispatchError> {
        if operator_token.trim().is_empty() {
            return Err(DispatchError::Config("the operator token must not be empty".into()));
        }
        let store = Store::open(database)?;
        let (secret, public) = store.server_key()?;
        Ok(Service {
            store,
            secret,
            public,
            operator_token_hash: token_hash(operator_token),
            body_read_timeout: crate::server::Timeouts::default().body_read,
            metrics_token_hash: None,
            metrics: crate::telemetry::Metrics::new(),
            enrol_limiter: None,
        })
    }

    /// Closes the database cleanly.
    pub(crate) fn close(self) {
        self.store.close();
    }

    /// Dispatch's secret key, for the modules that seal and verify.
    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// Checks the operator's bearer token. Compared as SHA-256 digests in constant time, so
    /// neither the token's length nor its prefix leaks through timing.
    pub(crate) fn check_operator(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = bearer(headers)?;
        if self.is_operator_token(token) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid operator token"))
        }
    }

    /// Checks the bearer token of a `/metrics` scrape: the scrape token when one is configured
    /// (the operator token is then refused, so that a leaked operator token is not also a way in
    /// for monitoring and the other way round), else the operator token. Constant time as above.
    pub(crate) fn check_metrics(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = self.metrics_token_hash else { return self.check_operator(headers) };
        let token = bearer(headers)?;
        if bool::from(token_hash(token).ct_eq(&expected)) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid metrics token"))
        }
    }

    /// Sets the scrape token of `/metrics` (see [`Service::check_metrics`]).
    pub(crate) fn set_metrics_token(&mut self, token: &str) {
        self.metrics_token_hash = Some(token_hash(token));
    }

    /// Whether `token` is the operator token, compared as SHA-256 digests in constant time (the
    /// operator API's check, and the console's login).
    pub(crate) fn is_operator_token(&self, token: &str) -> bool {
        bool::from(token_hash(token).ct_eq(&self.operator_token_hash))
    }

    /// Seals `sheet` (already validated) for `device`: to its lowest unused prekey, which is marked
    /// used in the same transaction, or, when none is left, to its identity key if
    /// [`identity_sealing_allowed`]. Queues the envelope as a pending delivery and returns the
    /// key it was sealed to; `None` when it waits for the device's prekeys (nothing is queued: the
    /// device's next sync seals it, `Service::seal_waiting`).
    pub(crate) fn seal_for(
        &self,
        tx: &Tx<'_>,
        device: &DeviceRow,
        job_id: Uuid,
        version: u64,
        sheet: &[u8],
        now: i64,
    ) -> Result<Option<RecipientKeyId>, ApiError> {
        let key = device.device_id.to_string();
        let prekey: Option<(u32, Vec<u8>)> = tx
            .query_row(
                "SELECT prekey_id, public_key FROM prekeys WHERE device_id = ?1 AND used_ms IS NULL
                 ORDER BY prekey_id LIMIT 1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut bundle = DeviceBundle {
            format: BUNDLE_FORMAT.to_owned(),
            device_id: device.device_id,
            identity_key: device.identity_key,
            prekeys: Vec::new(),
        };
        let chosen = match prekey {
            Some((id, public)) => {
                let public_key =
                    PublicKey::from_bytes(&public).map_err(|_| ApiError::internal(&"a stored prekey is unreadable"))?;
                bundle.prekeys.push(Prekey { id, public_key });
                tx.execute(
                    "UPDATE prekeys SET used_ms = ?1 WHERE device_id = ?2 AND prekey_id = ?3",
                    params![now, key, id],
                )?;
                Some(id)
            }
            None if identity_sealing_allowed(tx, device.device_id)? => None,
            None => return Ok(None),
        };
        let envelope = seal_job_sheet(&self.secret, &bundle, chosen, sheet).map_err(|e| match e {
            // The sheet was validated before; a refusal here is still the caller's input.
            jobseal_protocol::Error::InvalidSheet(m) => ApiError::bad_request(m),
            other => ApiError::internal(&other),
        })?;
        let sealed_to = chosen.map_or(RecipientKeyId::Identity, RecipientKeyId::Prekey);
        tx.execute(
            "INSERT INTO deliveries (job_id, device_id, version, sealed_to, envelope, status, queued_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
            params![job_id.to_string(), key, sql_u64(version)?, recipient_text(sealed_to), envelope, now],
        )?;
        Ok(Some(sealed_to))
    }

    /// Seals, during `device`'s sync, the sheets that waited for its prekeys: every open job
    /// assigned to it with no envelope for its current version. Before the answer is written, so
    /// they go out in it.
    pub(crate) fn seal_waiting(&self, tx: &Tx<'_>, device: &DeviceRow, now: i64) -> Result<(), ApiError> {
        if device.wiped {
            return Ok(());
        }
        let waiting: Vec<(String, i64, Vec<u8>)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT job_id, version, sheet FROM jobs j
                 WHERE j.device_id = ?1 AND j.cancelled_ms IS NULL
                   AND (j.state IS NULL OR j.state NOT IN ('completed', 'cancelled', 'revoked', 'expired'))
                   AND NOT EXISTS (SELECT 1 FROM deliveries d
                                   WHERE d.job_id = j.job_id AND d.device_id = j.device_id AND d.version = j.version)
                 ORDER BY j.created_ms, j.job_id",
            )?;
            let rows = stmt.query_map([device.device_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<crate::db::Result<_>>()?
        };
        for (job, version, sheet) in waiting {
            if self.seal_for(tx, device, parse_uuid_column(&job)?, col_u64(version), &sheet, now)?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

/// Whether a sheet may be sealed to `device`'s identity key (no forward secrecy) now that it has
/// no prekey left: only once dispatch has asked it for prekeys and a later sync brought none.
pub(crate) fn identity_sealing_allowed(tx: &Tx<'_>, device: Uuid) -> Result<bool, ApiError> {
    Ok(tx
        .query_row(
            "SELECT prekeys_asked_ms IS NOT NULL AND last_sync_ms > prekeys_asked_ms FROM devices WHERE device_id = ?1",
            [device.to_string()],
            |r| r.get::<_, Option<bool>>(0),
        )?
        .unwrap_or(false))
}

/// Finds the device a bearer token belongs to; 401 for anything else. Inside the request's write
/// transaction, so the device the request acts for is the token's holder at commit time (a
/// re-enrolment between [`Service::authenticate_device`] and here replaces the token).
pub(crate) fn device_by_token(tx: &Tx<'_>, headers: &HeaderMap) -> Result<DeviceRow, ApiError> {
    let id = device_id_by_token(tx, headers)?;
    device_by_id(tx, id)?.ok_or_else(|| ApiError::unauthorized("invalid device token"))
}

/// The id of the device a bearer token belongs to; 401 for anything else.
fn device_id_by_token(conn: &Tx<'_>, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let token = bearer(headers)?;
    // Device tokens are 32 random bytes in hex; anything else cannot match, so skip the lookup.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::unauthorized("invalid device token"));
    }
    let hash = token_hash(token);
    let row: Option<String> = conn
        .query_row("SELECT device_id FROM devices WHERE token_hash = ?1", [hash.as_slice()], |r| r.get(0))
        .optional()?;
    let id = row.ok_or_else(|| ApiError::unauthorized("invalid device token"))?;
    parse_uuid_column(&id)
}

impl Service {
    /// Checks a device's bearer token before anything else of its request: on the read-only
    /// credentials connection ([`Store::authenticate`]), so without the write lock or a
    /// transaction, and before the body is read. The request's own transaction checks the token
    /// again ([`device_by_token`]).
    pub(crate) fn authenticate_device(&self, headers: &HeaderMap) -> Result<Uuid, ApiError> {
        self.store.authenticate(|conn| device_id_by_token(conn, headers))
    }
}

/// Loads an enrolled device.
pub(crate) fn device_by_id(tx: &Tx<'_>, device_id: Uuid) -> Result<Option<DeviceRow>, ApiError> {
    let row: Option<(Vec<u8>, Option<i64>)> = tx
        .query_row("SELECT identity_key, wiped_ms FROM devices WHERE device_id = ?1", [device_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((identity, wiped)) = row else { return Ok(None) };
    let identity_key =
        PublicKey::from_bytes(&identity).map_err(|_| ApiError::internal(&"a stored identity key is unreadable"))?;
    Ok(Some(DeviceRow { device_id, identity_key, wiped: wiped.is_some() }))
}

/// The bearer token of a request, or 401. The token is never logged or echoed.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value =
        headers.get(AUTHORIZATION).ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("malformed Authorization header"));
    }
    Ok(token.trim())
}

/// A fresh device token: 32 random bytes, hex. Only its SHA-256 is stored. Fails only when the
/// operating system's random number generator does.
pub(crate) fn new_device_token() -> Result<String, DispatchError> {
    Ok(jobseal_protocol::hex::encode(&jobseal_protocol::crypto::random_bytes::<32>()?))
}

/// The key that serializes one device's write transactions across instances
/// (`Store::write_serialized`): the first 8 bytes of its token's SHA-256. `None` without a
/// bearer token (the request fails its credentials check anyway).
pub(crate) fn device_lock_key(headers: &HeaderMap) -> Option<i64> {
    let hash = token_hash(bearer(headers).ok()?);
    Some(i64::from_be_bytes(hash[..8].try_into().ok()?))
}

/// SHA-256 of a token, the form in which tokens are stored and compared.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Parses a JSON request body. serde's own messages can quote the input (an unknown field's
/// name, an invalid value), and input may be customer data, so the answer says only what kind
/// of problem it was and where.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Io => "could not be read",
            Category::Syntax => "is not valid JSON",
            Category::Eof => "is truncated",
            Category::Data => {
                "does not match the message format (unknown or missing field, wrong type, or invalid value)"
            }
        };
        ApiError::bad_request(format!("request body {what} (line {}, column {})", e.line(), e.column()))
    })
}

/// `prekey:<id>` or `identity`: how a recipient key id is stored.
pub(crate) fn recipient_text(r: RecipientKeyId) -> String {
    match r {
        RecipientKeyId::Prekey(id) => format!("prekey:{id}"),
        RecipientKeyId::Identity => "identity".to_owned(),
    }
}

/// The inverse of [`recipient_text`].
pub(crate) fn recipient_parse(s: &str) -> Result<RecipientKeyId, ApiError> {
    if s == "identity" {
        return Ok(RecipientKeyId::Identity);
    }
    s.strip_prefix("prekey:")
        .and_then(|id| id.parse().ok())
        .map(RecipientKeyId::Prekey)
        .ok_or_else(|| ApiError::internal(&"a stored recipient key id is unreadable"))
}

/// The text form of a serde unit enum (the same as in JSON), for storing it.
pub(crate) fn enum_text<T: Serialize>(v: &T) -> Result<String, ApiError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(ApiError::internal(&"an enum did not serialize to a string")),
    }
}

/// The inverse of [`enum_text`].
pub(crate) fn enum_parse<T: DeserializeOwned>(s: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| ApiError::internal(&"a stored enum value is unreadable"))
}

/// A stored delivery status.
pub(crate) fn delivery_status(s: &str) -> Result<DeliveryStatus, ApiError> {
    enum_parse(s)
}

/// A UUID read back from a text column.
pub(crate) fn parse_uuid_column(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::internal(&"a stored id is unreadable"))
}

/// A u64 from the wire as an SQLite integer. Versions and seqs above 2^63-1 cannot be stored;
/// sheets cannot have them (the core refuses them) and a device never reaches them.
pub(crate) fn sql_u64(v: u64) -> Result<i64, ApiError> {
    i64::try_from(v).map_err(|_| ApiError::bad_request("a version or sequence number exceeds 2^63-1"))
}

/// The inverse of [`sql_u64`] for values read back.
pub(crate) fn col_u64(v: i64) -> u64 {
    // Every stored value went through `sql_u64`, so it is not negative.
    u64::try_from(v).unwrap_or(0)
}

/// Milliseconds since the epoch, now (re-exported for the endpoint modules).
pub(crate) fn now() -> i64 {
    now_ms()
}

/// Parses a device's request to an endpoint whose answer is authenticated (`POST /v1/sync`,
/// `POST /v1/prekeys`) and checks its nonce. A request without a nonce comes from a client of
/// sync protocol 1, which would take answers on TLS alone: it gets 400 `outdated_client`, which
/// says so, rather than a generic "missing field".
pub(crate) fn parse_device_call<T: DeserializeOwned>(bytes: &[u8], nonce: impl Fn(&T) -> &[u8]) -> Result<T, ApiError> {
    /// Only whether a `nonce` is there; every other field is ignored.
    #[derive(serde::Deserialize)]
    struct NonceProbe {
        nonce: Option<serde::de::IgnoredAny>,
    }
    let parsed: T = parse_json(bytes).map_err(|e| match serde_json::from_slice::<NonceProbe>(bytes) {
        Ok(NonceProbe { nonce: None }) => ApiError::outdated_client(),
        _ => e,
    })?;
    if nonce(&parsed).len() != NONCE_LEN {
        return Err(ApiError::bad_request(format!("nonce must be {NONCE_LEN} bytes ({} hex digits)", 2 * NONCE_LEN)));
    }
    Ok(parsed)
}

impl Service {
    /// The body of dispatch's answer to `device`'s `call` request that carried `nonce`: the
    /// answer with its MAC under the device's answer key (`jobseal_protocol::answer`).
    pub(crate) fn seal_answer<T: Serialize>(
        &self,
        device: &DeviceRow,
        call: AnsweredCall,
        nonce: &[u8],
        answer: &T,
    ) -> Result<Vec<u8>, ApiError> {
        AnswerKey::derive(self.secret(), &device.identity_key, device.device_id)
            .and_then(|key| key.seal(call, nonce, answer))
            .map_err(|e| ApiError::internal(&e))
    }
}
