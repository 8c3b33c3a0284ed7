//! The dispatch server's machine-readable contract: an OpenAPI 3.1 document generated from the
//! code, served at `GET /v1/openapi.json` and committed as `docs/openapi.json` (issue 14).
//!
//! `docs/sync.md` is the prose; this is what a backend team generates clients from and what
//! schemathesis (`dispatch/contract/run-schemathesis.sh`) holds the running server to. It is
//! assembled here from three sources, so that it cannot say something the code does not do:
//! the schemas are derived from the very types serde reads and writes (`jobseal_protocol::wire`
//! behind the protocol crate's `openapi` feature, and `crate::operator`); each endpoint's
//! method, path, body, success answer and credentials sit on its handler in `api.rs`
//! (`#[utoipa::path]`); and the error answers, which all share one body (`wire::ErrorBody`), are
//! added from [`ERROR_STATUSES`], one list per endpoint of every status its handler can return.
//! The drift test (`dispatch/tests/openapi.rs`) compares the document with the committed file
//! byte for byte and checks that every route of the router is in it. The document holds no data
//! (no token, no id), so it is served without credentials.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use jobseal_protocol::wire::{ErrorBody, PrekeysResponse, SyncResponse};
use std::sync::OnceLock;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi, ToSchema};

/// Where the document is served.
pub const PATH: &str = "/v1/openapi.json";

/// Every `code` an error body can carry (`error.rs`); the document lists them as the values
/// of `ErrorDetail.code`.
pub const ERROR_CODES: &[&str] = &[
    "bad_request",
    "outdated_client",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "timeout",
    "conflict",
    "too_large",
    "unsupported_media_type",
    "quota_exceeded",
    "rate_limited",
    "internal",
    "storage_unavailable",
];

/// For each endpoint (method, path as in the document), every error status its handler can
/// return. Common to all: 405 for another method, which is not an operation of the path and so
/// is not listed per operation (it has the same error body).
pub const ERROR_STATUSES: &[(&str, &str, &[u16])] = &[
    ("get", "/v1/dispatch-key", &[]),
    ("post", "/v1/enrol", &[400, 401, 403, 408, 409, 413, 415, 429, 500, 503]),
    ("post", "/v1/prekeys", &[400, 401, 408, 413, 415, 500, 503]),
    ("post", "/v1/sync", &[400, 401, 403, 408, 413, 415, 429, 500, 503]),
    ("post", "/v1/operator/jobs", &[400, 401, 404, 408, 409, 413, 415, 500, 503]),
    ("get", "/v1/operator/jobs/{id}", &[400, 401, 404, 500, 503]),
    ("post", "/v1/operator/jobs/{id}/cancel", &[400, 401, 404, 408, 409, 413, 500, 503]),
    ("post", "/v1/operator/jobs/{id}/reassign", &[400, 401, 404, 408, 409, 413, 415, 500, 503]),
    ("get", "/v1/operator/devices/{id}", &[400, 401, 404, 500, 503]),
    ("post", "/v1/operator/devices/{id}/wipe", &[400, 401, 404, 408, 413, 500, 503]),
    ("post", "/v1/operator/enrolment-codes", &[400, 401, 408, 413, 415, 500, 503]),
    ("get", "/v1/operator/enrolment-codes", &[401, 500, 503]),
    ("post", "/v1/operator/enrolment-codes/{id}/revoke", &[400, 401, 404, 408, 413, 500, 503]),
    ("get", PATH, &[]),
    ("get", "/metrics", &[401, 500]),
];

/// What an error status means, and the `code`s it comes with (docs/sync.md, section 1).
fn error_description(status: u16) -> &'static str {
    match status {
        400 => {
            "`bad_request`: malformed JSON, an unknown or missing field, an invalid value, a malformed id in \
             the path, or a limit exceeded; `outdated_client`: a device request without `nonce` (sync \
             protocol 1). Nothing was changed."
        }
        401 => "`unauthorized`: no bearer token, a malformed `Authorization` header, or a token nobody holds (for enrolment: a code or identity proof that does not verify).",
        403 => "`forbidden`: valid credentials for something else (a device token used for another `device_id`; an enrolment code already used, revoked, expired or bound to another device).",
        404 => "`not_found`: no such job, device or enrolment code.",
        408 => "`timeout`: the request body did not arrive within the body-read timeout.",
        409 => "`conflict`: well formed, but contradicts what dispatch holds (see docs/sync.md for each endpoint).",
        413 => "`too_large`: the request body is over 1 MiB.",
        415 => "`unsupported_media_type`: a body not declared as `Content-Type: application/json`.",
        429 => {
            "`quota_exceeded`: the device is over one of its per-day quotas (sync; nothing of the request \
             was applied); `rate_limited`: too many enrolment requests from this source address. The \
             `Retry-After` header gives the seconds to wait."
        }
        500 => "`internal`: a failure inside the server; nothing was changed, retry later.",
        503 => {
            "`storage_unavailable`: the database (PostgreSQL) cannot be reached, or stayed busy with \
             conflicting writes; nothing was changed. The `Retry-After` header gives the seconds to wait."
        }
        _ => "An error.",
    }
}

/// The 200 body of `POST /v1/prekeys`: the answer with its MAC (docs/sync.md, section 4.5). The
/// MAC covers the bytes of `answer` exactly as sent (`jobseal_protocol::answer`).
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only: the server writes this body as bytes (`answer::AnswerKey::seal`).
pub struct AuthenticatedPrekeysResponse {
    /// The answer.
    answer: PrekeysResponse,
    /// HMAC-SHA256 over the answer's bytes, bound to the endpoint, the device and the request's
    /// nonce; hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    mac: String,
}

/// The 200 body of `POST /v1/sync`: the answer with its MAC (docs/sync.md, section 4.5).
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only, as above.
pub struct AuthenticatedSyncResponse {
    /// The answer.
    answer: SyncResponse,
    /// HMAC-SHA256 over the answer's bytes, bound to the endpoint, the device and the request's
    /// nonce; hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    mac: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jobseal dispatch",
        description = "The reference dispatch server of jobseal: device enrolment, prekeys and sync \
                       (the protocol a backend implements), and the reference server's operator API. \
                       Prose specification: docs/sync.md.",
    ),
    paths(
        crate::api::dispatch_key,
        crate::api::enrol,
        crate::api::prekeys,
        crate::api::sync,
        crate::api::create_job,
        crate::api::job_view,
        crate::api::cancel_job,
        crate::api::reassign_job,
        crate::api::device_view,
        crate::api::wipe_device,
        crate::api::issue_code,
        crate::api::list_codes,
        crate::api::revoke_code,
        serve,
        crate::telemetry::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Contract),
    tags(
        (name = "device", description = "What a device calls; the protocol a dispatch backend implements."),
        (name = "operator", description = "The reference server's operator API (bearer operator token)."),
        (name = "meta", description = "This document."),
        (name = "operations", description = "What the people running the server read (docs/operations.md)."),
    )
)]
struct ApiDoc;

/// Adds what the derive cannot say: the security schemes, the error answers of every endpoint,
/// and the closed list of error codes.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The device token from enrolment (`POST /v1/enrol`), 64 hex characters."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator token the server was started with (never on its command line)."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The scrape token of `/metrics`, when the server has one (docs/operations.md); without \
                         one, `/metrics` takes the operator token.",
                    ))
                    .build(),
            ),
        );
        if let Some(RefOr::T(Schema::Object(detail))) = components.schemas.get_mut("ErrorDetail") {
            if let Some(RefOr::T(Schema::Object(code))) = detail.properties.get_mut("code") {
                code.enum_values = Some(ERROR_CODES.iter().map(|c| (*c).into()).collect());
            }
        }
        close_tagged_unions(components);
        for (method, path, statuses) in ERROR_STATUSES {
            let Some(operation) = operation(doc, method, path) else { continue };
            for status in *statuses {
                let response = ResponseBuilder::new()
                    .description(error_description(*status))
                    .content("application/json", ContentBuilder::new().schema(Some(ErrorBody::schema_ref())).build())
                    .build();
                operation.responses.responses.insert(status.to_string(), RefOr::T(response));
            }
        }
    }
}

/// serde refuses unknown fields in every variant of an outbox event's `body` and of a recipient
/// key id (`{"prekey": 7}`), but the derive leaves those variants open; and it writes the
/// newtype variants of the internally tagged `EventBody` (`audit`, `receipt`) as `allOf` the
/// record's closed schema and the `type` tag, which no value can satisfy (the record's schema
/// forbids `type`). Each such variant becomes one closed object: the record's properties plus
/// the tag, as serde reads it (checked by the contract tests against serde's own output).
fn close_tagged_unions(components: &mut utoipa::openapi::Components) {
    let closed = || Some(Box::new(AdditionalProperties::FreeForm(false)));
    let snapshot = components.schemas.clone();
    for name in ["EventBody", "RecipientKeyId"] {
        let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) else { continue };
        for item in one_of.items.iter_mut() {
            match item {
                RefOr::T(Schema::Object(object)) if !object.properties.is_empty() => {
                    object.additional_properties = closed();
                }
                RefOr::T(Schema::AllOf(all)) => {
                    let (Some(RefOr::Ref(record)), Some(RefOr::T(Schema::Object(tag)))) =
                        (all.items.first(), all.items.get(1))
                    else {
                        continue;
                    };
                    let record_name = record.ref_location.rsplit('/').next().unwrap_or_default();
                    let Some(RefOr::T(Schema::Object(record))) = snapshot.get(record_name) else { continue };
                    let mut merged = record.clone();
                    merged.properties.extend(tag.properties.clone());
                    merged.required.extend(tag.required.iter().cloned());
                    merged.description.clone_from(&all.description);
                    merged.additional_properties = closed();
                    *item = RefOr::T(Schema::Object(merged));
                }
                _ => {}
            }
        }
    }
}

/// The operation `method path` of the document, if it has one.
fn operation<'a>(doc: &'a mut utoipa::openapi::OpenApi, method: &str, path: &str) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        _ => None,
    }
}

/// A reference to a named schema of the components.
trait SchemaRef {
    fn schema_ref() -> RefOr<Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

/// The document, as served and committed: pretty-printed JSON with a final newline. Maps are
/// sorted (utoipa keeps paths, schemas and properties in ordered maps), so the text only
/// changes when the contract does.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        text
    })
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
pub(crate) async fn serve() -> axum::response::Response {
    ([(CONTENT_TYPE, "application/json")], document_json()).into_response()
}
