//! Errors of the dispatch server: what the Rust caller sees, and what an HTTP client sees.
//!
//! Two types because they serve two audiences. [`DispatchError`] is for the operator of the
//! process (starting the server, opening the database) and may be detailed. [`ApiError`] is what
//! a device or an operator console receives over HTTP: a stable code and a short message built
//! only from fixed text and identifiers (device ids, job ids, versions), never from request
//! content, because a request may carry customer data (G1: nothing of it may reach an error or a
//! log). An internal failure is logged on the server and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jobseal_protocol::wire::{ErrorBody, ErrorDetail};

/// Why the dispatch server could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The database failed, or PostgreSQL could not be reached.
    #[error("storage: {0}")]
    Storage(#[from] crate::db::DbError),
    /// The file system or the network socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The protocol refused an operation (sealing, key agreement).
    #[error("protocol: {0}")]
    Protocol(#[from] jobseal_protocol::Error),
    /// The database holds something this server cannot use (an unreadable key, a newer schema).
    #[error("database integrity: {0}")]
    Integrity(String),
    /// The configuration is unusable (for example an empty operator token).
    #[error("configuration: {0}")]
    Config(String),
}

// What the store's start-up code (opening, migrating) meets, classified once by `DbError`.
impl From<rusqlite::Error> for DispatchError {
    fn from(e: rusqlite::Error) -> Self {
        DispatchError::Storage(e.into())
    }
}

impl From<postgres::Error> for DispatchError {
    fn from(e: postgres::Error) -> Self {
        DispatchError::Storage(e.into())
    }
}

impl From<r2d2::Error> for DispatchError {
    fn from(e: r2d2::Error) -> Self {
        DispatchError::Storage(e.into())
    }
}

impl From<jobseal_protocol::envelope::EnvelopeError> for DispatchError {
    fn from(e: jobseal_protocol::envelope::EnvelopeError) -> Self {
        DispatchError::Protocol(e.into())
    }
}

/// The stable code of an error answer, attached to the response's extensions so that the
/// request's log line and the refusal counter can name it without parsing the body
/// (`telemetry::observe`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorCode(pub(crate) &'static str);

/// An HTTP error answer: status, stable code, value-free message. Every 4xx/5xx the server sends
/// is one of these, rendered as [`ErrorBody`]; a request that fails with one changes nothing,
/// because it is returned before the request's transaction commits.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds after which a 429 or 503 may be retried, sent as `Retry-After`.
    retry_after: Option<u64>,
    /// A PostgreSQL conflict with a concurrent transaction: `crate::store::Store::write` runs the
    /// transaction again instead of answering (never set on an answer that leaves the server).
    retryable: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None, retryable: false }
    }

    /// 503 `storage_unavailable`: the database cannot be reached (or stayed too busy with
    /// conflicting writes); nothing was changed, retry after a second.
    pub(crate) fn storage_unavailable() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database is unavailable; nothing was changed, retry later",
            )
        }
    }

    /// Whether this is a storage conflict the transaction should be run again for.
    pub(crate) fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// 429 `quota_exceeded`: the device brought more than its quota allows in the current
    /// window (`crate::ingest::DeviceQuota`); the whole request was refused and may be sent again
    /// after `retry_after_secs`.
    pub(crate) fn quota_exceeded(message: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", message)
        }
    }

    /// 429 `rate_limited`: too many requests of this kind from the caller's address; retry after
    /// `retry_after_secs`.
    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many enrolment requests from this address; retry later",
            )
        }
    }

    /// 400: the request is malformed or breaks a limit.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `outdated_client`: a device request of sync protocol 1 (no nonce), whose answer could
    /// not be authenticated; the app must be updated.
    pub(crate) fn outdated_client() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "outdated_client",
            format!(
                "the request has no nonce: this client speaks sync protocol 1, dispatch speaks protocol {} \
                 (authenticated answers); update the app",
                jobseal_protocol::answer::SYNC_PROTOCOL_VERSION
            ),
        )
    }

    /// 401: no credentials, or credentials nobody holds.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: valid credentials for someone else.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such job, device or endpoint.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405: the endpoint exists but not with this method.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
    }

    /// 408: the request body did not arrive within the server's body-read timeout.
    pub(crate) fn request_timeout() -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the request body did not arrive in time")
    }

    /// 409: the request is well formed but contradicts what dispatch already holds.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413: the body is larger than [`jobseal_protocol::wire::MAX_BODY_BYTES`].
    pub(crate) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body exceeds {} bytes", jobseal_protocol::wire::MAX_BODY_BYTES),
        )
    }

    /// 415: the endpoint takes a JSON body and the request declares another type, or none.
    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be sent with Content-Type: application/json",
        )
    }

    /// 500: something failed inside the server. The cause goes to the server's log (it holds no
    /// request content: storage and core errors name tables, fields and ids only); the client
    /// learns only that it may retry.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(target: "jobseal_dispatch", "internal error: {cause}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; nothing was changed, retry later")
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_retryable() {
            // Not an answer: Store::write runs the transaction again (and answers 503 if it
            // keeps conflicting).
            ApiError { retryable: true, ..ApiError::storage_unavailable() }
        } else if e.is_unavailable() {
            tracing::warn!(target: "jobseal_dispatch", "storage unavailable: {e}");
            ApiError::storage_unavailable()
        } else {
            ApiError::internal(&e)
        }
    }
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Storage(e) => e.into(),
            e => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}
