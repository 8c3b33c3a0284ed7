//! The HTTP layer: routes, body limits, and the hand-off from async handlers to the blocking
//! store (G6, G8).
//!
//! Handlers stay thin: check the operator or device token where one is needed (before reading a
//! byte of the body, and for a device token before taking the write lock: an unauthenticated
//! caller gets its 401 without the server taking its upload or making anyone wait), read the
//! body under the size limit, and run the endpoint's logic on the blocking pool (SQLite calls
//! block). Every failure
//! becomes a `wire::ErrorBody`, including unknown paths, wrong methods and oversized bodies, so a
//! client only ever parses one error shape. Bodies are parsed by hand rather than with axum's
//! `Json` extractor, whose rejection messages quote the input.

use crate::error::ApiError;
use crate::service::Service;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use jobseal_protocol::wire::{
    DispatchKeyResponse, EnrolRequest, EnrolResponse, PrekeysRequest, SyncRequest, MAX_BODY_BYTES,
};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use uuid::Uuid;

use crate::operator::{
    CreateJobResponse, DeviceView, EnrolmentCodeView, EnrolmentCodesView, IssuedCode, JobView, WipeResponse,
};

/// Past the limit, the rest of an oversized body is still read (and discarded) up to this many
/// bytes, so that the client is not cut off mid-upload and does see the 413; beyond it the
/// connection is simply closed.
const DRAIN_LIMIT: usize = 8 * MAX_BODY_BYTES;

type Shared = Arc<Service>;
type ApiResult<T> = Result<Json<T>, ApiError>;
/// A path's id segment, or why axum could not decode it (see [`path_text`]).
pub(crate) type PathId = Result<Path<String>, PathRejection>;

/// The router of every endpoint.
pub(crate) fn router(service: Shared) -> Router {
    Router::new()
        .route("/v1/dispatch-key", get(dispatch_key))
        .route("/v1/enrol", post(enrol))
        .route("/v1/prekeys", post(prekeys))
        .route("/v1/sync", post(sync))
        .route("/v1/operator/jobs", post(create_job))
        .route("/v1/operator/jobs/{id}", get(job_view))
        .route("/v1/operator/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/operator/jobs/{id}/reassign", post(reassign_job))
        .route("/v1/operator/devices/{id}", get(device_view))
        .route("/v1/operator/devices/{id}/wipe", post(wipe_device))
        .route("/v1/operator/enrolment-codes", post(issue_code).get(list_codes))
        .route("/v1/operator/enrolment-codes/{id}/revoke", post(revoke_code))
        .route("/metrics", get(crate::telemetry::metrics))
        .route(crate::openapi::PATH, get(crate::openapi::serve))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(service.clone())
        // The privacy officer's console, under /console (behind its own login).
        .merge(crate::console::router(service.clone()))
        // Counted and logged like every other request (`telemetry`).
        .layer(axum::middleware::from_fn_with_state(service, crate::telemetry::observe))
}

/// Runs `f` on the blocking pool: SQLite calls block, and the async workers must stay free to
/// accept connections.
async fn blocking<T: Send + 'static>(
    service: &Shared,
    f: impl FnOnce(&Service) -> Result<T, ApiError> + Send + 'static,
) -> ApiResult<T> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || f(&service)).await.map_err(|e| ApiError::internal(&e))?.map(Json)
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]; 413 beyond, 408 if it has not all arrived
/// within the body-read timeout (`server::Timeouts::body_read`), so a client that stalls
/// mid-body holds its connection for that long at most.
pub(crate) async fn read_body(service: &Service, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    tokio::time::timeout(service.body_read_timeout, read_body_untimed(headers, body))
        .await
        .map_err(|_| ApiError::request_timeout())?
}

async fn read_body_untimed(headers: &HeaderMap, mut body: Body) -> Result<Bytes, ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(ApiError::too_large());
    }
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|_| ApiError::bad_request("the request body could not be read"))?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > MAX_BODY_BYTES {
            buf = Vec::new();
            if seen > DRAIN_LIMIT {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    Ok(Bytes::from(buf))
}

/// 415 unless a request to an endpoint that takes a JSON body declares one:
/// `Content-Type: application/json`, in any case, with or without parameters (`; charset=utf-8`).
/// A request that declares no body at all (no Content-Type, and no length or a length of 0)
/// passes, and the endpoint decides whether an empty body will do (`POST
/// /v1/operator/enrolment-codes` takes one). Checked after the credentials and before the body
/// is read, so a body of the wrong kind is never taken in.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        let declared_empty = !headers.contains_key(TRANSFER_ENCODING)
            && headers.get(CONTENT_LENGTH).is_none_or(|v| v.to_str().is_ok_and(|n| n.trim() == "0"));
        return if declared_empty { Ok(()) } else { Err(ApiError::unsupported_media_type()) };
    };
    let media_type = value.to_str().ok().and_then(|v| v.split(';').next()).map(str::trim);
    if media_type.is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type())
    }
}

/// The id segment of the path as text. axum refuses a segment that is not UTF-8 once
/// percent-decoded (`/v1/operator/jobs/%FF`) with a plain-text 400 of its own; it gets the one
/// error shape instead, and only after the credentials were checked (found while extending the
/// `dispatch_api` fuzz target to path ids that are not UTF-8).
fn path_text(path: PathId, what: &str) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::bad_request(format!("the {what} id in the path is not UTF-8")))
}

pub(crate) fn parse_id(raw: PathId, what: &str) -> Result<Uuid, ApiError> {
    let raw = path_text(raw, what)?;
    Uuid::parse_str(&raw).map_err(|_| ApiError::bad_request(format!("the {what} id in the path must be a UUID")))
}

#[utoipa::path(get, path = "/v1/dispatch-key", tag = "device", operation_id = "dispatch_key",
    responses((status = 200, description = "Dispatch's public key, which devices pin.", body = DispatchKeyResponse)))]
async fn dispatch_key(State(service): State<Shared>) -> Json<DispatchKeyResponse> {
    Json(DispatchKeyResponse { dispatch_key: service.public })
}

#[utoipa::path(post, path = "/v1/enrol", tag = "device", operation_id = "enrol",
    request_body(content = EnrolRequest, description = "A device bundle with a code proof and an identity proof (docs/sync.md 4.2)."),
    responses((status = 200, description = "Enrolled, or enrolled again: a new sealed device token.", body = EnrolResponse)))]
/// `POST /v1/enrol`. The per-source limit is counted first, before the body is read: a refused
/// caller costs a map lookup (`crate::ratelimit`).
async fn enrol(
    State(service): State<Shared>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<EnrolResponse> {
    if let (Some(limiter), Some(Extension(ConnectInfo(peer)))) = (&service.enrol_limiter, peer) {
        limiter.check(peer.ip())?;
    }
    require_json(&headers)?;
    let body = read_body(&service, &headers, body).await?;
    blocking(&service, move |s| s.enrol(&body)).await
}

#[utoipa::path(post, path = "/v1/prekeys", tag = "device", operation_id = "prekeys",
    security(("device_token" = [])), request_body = PrekeysRequest,
    responses((status = 200, description = "Stored; the answer is MAC-ed over the request's nonce (docs/sync.md 4.5).",
        body = crate::openapi::AuthenticatedPrekeysResponse)))]
async fn prekeys(State(service): State<Shared>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let headers = authenticate_device(&service, headers).await?;
    require_json(&headers)?;
    let body = read_body(&service, &headers, body).await?;
    authenticated(blocking(&service, move |s| s.add_prekeys(&headers, &body)).await?)
}

#[utoipa::path(post, path = "/v1/sync", tag = "device", operation_id = "sync",
    security(("device_token" = [])), request_body = SyncRequest,
    responses((status = 200, description = "Applied; the answer is MAC-ed over the request's nonce (docs/sync.md 4.5).",
        body = crate::openapi::AuthenticatedSyncResponse)))]
async fn sync(State(service): State<Shared>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let headers = authenticate_device(&service, headers).await?;
    require_json(&headers)?;
    let body = read_body(&service, &headers, body).await?;
    authenticated(blocking(&service, move |s| s.sync(&headers, &body)).await?)
}

/// The device-token check that comes first on a device endpoint: before a byte of the body is
/// read, and without the write lock or a transaction (`Service::authenticate_device`), so an
/// unauthenticated caller neither uploads into the server nor queues behind the devices that
/// hold the lock. Returns the headers for the rest of the request.
async fn authenticate_device(service: &Shared, headers: HeaderMap) -> Result<HeaderMap, ApiError> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || service.authenticate_device(&headers).map(|_| headers))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// An authenticated answer's body (`jobseal_protocol::answer`), sent as the bytes it was MAC-ed
/// as: re-encoding it would break the MAC.
fn authenticated(Json(body): Json<Vec<u8>>) -> Result<Response, ApiError> {
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(post, path = "/v1/operator/jobs", tag = "operator", operation_id = "create_job",
    security(("operator_token" = [])), request_body = crate::operator::CreateJobRequest,
    responses((status = 200, description = "Sealed and queued (or waiting for the device's prekeys).", body = CreateJobResponse)))]
async fn create_job(State(service): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult<CreateJobResponse> {
    service.check_operator(&headers)?;
    require_json(&headers)?;
    let body = read_body(&service, &headers, body).await?;
    blocking(&service, move |s| s.create_job(&body)).await
}

#[utoipa::path(get, path = "/v1/operator/jobs/{id}", tag = "operator", operation_id = "job_view",
    security(("operator_token" = [])), params(("id" = Uuid, Path, description = "The job id.")),
    responses((status = 200, description = "Everything dispatch knows happened to the job.", body = JobView)))]
async fn job_view(State(service): State<Shared>, headers: HeaderMap, id: PathId) -> ApiResult<JobView> {
    service.check_operator(&headers)?;
    let id = parse_id(id, "job")?;
    blocking(&service, move |s| s.job_view(id)).await
}

#[utoipa::path(post, path = "/v1/operator/jobs/{id}/cancel", tag = "operator", operation_id = "cancel_job",
    security(("operator_token" = [])), params(("id" = Uuid, Path, description = "The job id.")),
    responses((status = 200, description = "Cancelled; a revocation is queued for the assigned device. Any request body is ignored.", body = JobView)))]
async fn cancel_job(State(service): State<Shared>, headers: HeaderMap, id: PathId, body: Body) -> ApiResult<JobView> {
    // The body is unused but still bounded, so an oversized one gets the same 413 everywhere.
    service.check_operator(&headers)?;
    read_body(&service, &headers, body).await?;
    let id = parse_id(id, "job")?;
    blocking(&service, move |s| s.cancel_job(id)).await
}

#[utoipa::path(post, path = "/v1/operator/jobs/{id}/reassign", tag = "operator", operation_id = "reassign_job",
    security(("operator_token" = [])), params(("id" = Uuid, Path, description = "The job id.")),
    request_body = crate::operator::ReassignRequest,
    responses((status = 200, description = "Revoked on the old device and sealed for the new one.", body = JobView)))]
async fn reassign_job(State(service): State<Shared>, headers: HeaderMap, id: PathId, body: Body) -> ApiResult<JobView> {
    service.check_operator(&headers)?;
    require_json(&headers)?;
    let body = read_body(&service, &headers, body).await?;
    let id = parse_id(id, "job")?;
    blocking(&service, move |s| s.reassign_job(id, &body)).await
}

#[utoipa::path(get, path = "/v1/operator/devices/{id}", tag = "operator", operation_id = "device_view",
    security(("operator_token" = [])), params(("id" = Uuid, Path, description = "The device id.")),
    responses((status = 200, description = "The device's summary.", body = DeviceView)))]
async fn device_view(State(service): State<Shared>, headers: HeaderMap, id: PathId) -> ApiResult<DeviceView> {
    service.check_operator(&headers)?;
    let id = parse_id(id, "device")?;
    blocking(&service, move |s| s.device_view(id)).await
}

#[utoipa::path(post, path = "/v1/operator/devices/{id}/wipe", tag = "operator", operation_id = "wipe_device",
    security(("operator_token" = [])), params(("id" = Uuid, Path, description = "The device id.")),
    responses((status = 200, description = "Wiped; every job without a verified receipt is revoked on it. Any request body is ignored.", body = WipeResponse)))]
async fn wipe_device(
    State(service): State<Shared>,
    headers: HeaderMap,
    id: PathId,
    body: Body,
) -> ApiResult<WipeResponse> {
    service.check_operator(&headers)?;
    read_body(&service, &headers, body).await?;
    let id = parse_id(id, "device")?;
    blocking(&service, move |s| s.wipe_device(id)).await
}

#[utoipa::path(post, path = "/v1/operator/enrolment-codes", tag = "operator", operation_id = "issue_code",
    security(("operator_token" = [])),
    request_body(content = Option<crate::operator::IssueCodeRequest>,
        description = "May be empty, or `{}`: a code for any new device, valid 24 hours."),
    responses((status = 200, description = "A one-time enrolment code, shown this once.", body = IssuedCode)))]
async fn issue_code(State(service): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult<IssuedCode> {
    service.check_operator(&headers)?;
    require_json(&headers)?;
    let body = read_body(&service, &headers, body).await?;
    blocking(&service, move |s| s.issue_code(&body)).await
}

#[utoipa::path(get, path = "/v1/operator/enrolment-codes", tag = "operator", operation_id = "list_codes",
    security(("operator_token" = [])),
    responses((status = 200, description = "Every code issued, newest first, without the codes themselves.", body = EnrolmentCodesView)))]
async fn list_codes(State(service): State<Shared>, headers: HeaderMap) -> ApiResult<EnrolmentCodesView> {
    service.check_operator(&headers)?;
    blocking(&service, move |s| s.list_codes()).await
}

#[utoipa::path(post, path = "/v1/operator/enrolment-codes/{id}/revoke", tag = "operator", operation_id = "revoke_code",
    security(("operator_token" = [])),
    params(("id" = String, Path, pattern = "^[0-9A-HJKMNP-TV-Z]{5}$",
        description = "The code's public id: its first group of 5 characters.")),
    responses((status = 200, description = "The code's view; an unused code is now revoked, a used or revoked one is left as it was. Any request body is ignored.",
        body = EnrolmentCodeView)))]
async fn revoke_code(
    State(service): State<Shared>,
    headers: HeaderMap,
    id: PathId,
    body: Body,
) -> ApiResult<EnrolmentCodeView> {
    service.check_operator(&headers)?;
    read_body(&service, &headers, body).await?;
    let id = path_text(id, "code")?;
    blocking(&service, move |s| s.revoke_code(&id)).await
}
