//! Operator actions on jobs: assign (seal and queue), cancel, reassign, wipe a device, and the job
//! view (G4, G5, G7).
//!
//! Dispatch is the system of record: it keeps the plaintext sheet of each job's current version
//! and seals it afresh for whichever device should hold it. The rules here mirror what the
//! device enforces, so that dispatch never queues something the device must refuse: versions only
//! move forward, a finished job never comes back, and a device that gave a job up (revoked,
//! hence shredded and tombstoned) is never given it again.

use crate::devices::chain_status;
use crate::error::ApiError;
use crate::operator::{
    AuditEntryView, ChainMark, CreateJobRequest, CreateJobResponse, DeliveryView, JobStatus, JobView, ReceiptView,
    ReportView, RevocationStatus, RevocationView, StateChangeView, WipeResponse,
};
use crate::service::{
    col_u64, delivery_status, device_by_id, enum_parse, enum_text, now, parse_json, parse_uuid_column, recipient_parse,
    sql_u64, DeviceRow, Service,
};
use crate::store::{found, time};
use jobseal_protocol::audit::AuditKind;
use jobseal_protocol::policy::JobState;
use jobseal_protocol::receipt::ShredReceipt;
use jobseal_protocol::sheet::JobSheet;
use jobseal_protocol::wire::RevocationReason;
use crate::db::{params, OptionalExtension, Tx};
use uuid::Uuid;

/// A job row.
pub(crate) struct JobRow {
    pub(crate) job_id: Uuid,
    pub(crate) device_id: Uuid,
    pub(crate) version: u64,
    sheet: Vec<u8>,
    created_ms: i64,
    updated_ms: i64,
    cancelled_ms: Option<i64>,
    state: Option<JobState>,
}

/// Loads a job.
pub(crate) fn job_row(tx: &Tx<'_>, job_id: Uuid) -> Result<Option<JobRow>, ApiError> {
    // Ids and states are read as text and parsed after, where a bad value can be an ApiError.
    let row = tx
        .query_row(
            "SELECT device_id, version, sheet, created_ms, updated_ms, cancelled_ms, state FROM jobs WHERE job_id = ?1",
            [job_id.to_string()],
            |r| {
                let raw = JobRow {
                    job_id,
                    device_id: Uuid::nil(),
                    version: col_u64(r.get(1)?),
                    sheet: r.get(2)?,
                    created_ms: r.get(3)?,
                    updated_ms: r.get(4)?,
                    cancelled_ms: r.get(5)?,
                    state: None,
                };
                Ok((raw, r.get::<_, String>(0)?, r.get::<_, Option<String>>(6)?))
            },
        )
        .optional()?;
    let Some((mut job, device, state)) = row else { return Ok(None) };
    job.device_id = parse_uuid_column(&device)?;
    job.state = state.map(|s| enum_parse(&s)).transpose()?;
    Ok(Some(job))
}

/// Dispatch's view of a job: cancelled by the operator, closed on the device (a terminal state
/// reported, or a verified receipt from the assigned device), or open.
fn job_status(tx: &Tx<'_>, job: &JobRow) -> Result<JobStatus, ApiError> {
    if job.cancelled_ms.is_some() {
        return Ok(JobStatus::Cancelled);
    }
    if job.state.is_some_and(JobState::is_terminal) {
        return Ok(JobStatus::Closed);
    }
    let receipt: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM receipts WHERE job_id = ?1 AND device_id = ?2 AND verified = 1)",
        params![job.job_id.to_string(), job.device_id.to_string()],
        |r| r.get(0),
    )?;
    Ok(if receipt { JobStatus::Closed } else { JobStatus::Open })
}

fn require_open(tx: &Tx<'_>, job: &JobRow) -> Result<(), ApiError> {
    match job_status(tx, job)? {
        JobStatus::Open => Ok(()),
        JobStatus::Cancelled => Err(ApiError::conflict(format!("job {} was cancelled", job.job_id))),
        JobStatus::Closed => Err(ApiError::conflict(format!("job {} is closed on its device", job.job_id))),
    }
}

fn require_device(tx: &Tx<'_>, device_id: Uuid) -> Result<DeviceRow, ApiError> {
    found(device_by_id(tx, device_id)?, || format!("device {device_id} is not enrolled"))
}

/// Stops offering every pending envelope of the job to `device` (or to every device), and drops
/// its bytes: it will never be sent.
pub(crate) fn withdraw_pending(
    tx: &Tx<'_>,
    job_id: Uuid,
    device: Option<Uuid>,
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE deliveries SET status = 'withdrawn', envelope = x'', updated_ms = ?1
         WHERE job_id = ?2 AND (CAST(?3 AS TEXT) IS NULL OR device_id = ?3) AND status = 'pending'",
        params![now, job_id.to_string(), device.map(|d| d.to_string())],
    )?;
    Ok(())
}

/// Queues a revocation of the job on the device, unless one exists already. Returns true if it
/// was queued now. A revocation that a verified receipt already answers is born confirmed.
pub(crate) fn revoke(
    tx: &Tx<'_>,
    job_id: Uuid,
    device_id: Uuid,
    reason: RevocationReason,
    now: i64,
) -> Result<bool, ApiError> {
    let (job, device) = (job_id.to_string(), device_id.to_string());
    let receipt: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM receipts WHERE job_id = ?1 AND device_id = ?2 AND verified = 1)",
        params![job, device],
        |r| r.get(0),
    )?;
    let n = tx.execute(
        "INSERT INTO revocations (job_id, device_id, reason, queued_ms, confirmed_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
        params![job, device, enum_text(&reason)?, now, receipt.then_some(now)],
    )?;
    Ok(n == 1)
}

/// The earliest time a sheet may name, 2020-01-01T00:00:00Z in ms: anything earlier is a wrong
/// clock or a typing error in the dispatcher's system, not a job.
const EARLIEST_SHEET_TIME_MS: i64 = 1_577_836_800_000;
/// How far past dispatch's clock a sheet's times may reach: ten years (in ms).
const SHEET_HORIZON_MS: i64 = 10 * 366 * 24 * 3600 * 1000;

/// Refuses a sheet whose window or hard expiry lies outside [2020-01-01, now + 10 years]: such a
/// time would be shown to the technician and the privacy officer, and would decide when the
/// customer's data may be read. The error names the field, never a value.
fn check_sheet_times(sheet: &JobSheet, now_ms: i64) -> Result<(), ApiError> {
    let latest = now_ms.saturating_add(SHEET_HORIZON_MS);
    for (name, at) in
        [("window.start", sheet.window.start), ("window.end", sheet.window.end), ("access.hard_expiry", sheet.access.hard_expiry)]
    {
        let ms = at.timestamp_millis();
        if !(EARLIEST_SHEET_TIME_MS..=latest).contains(&ms) {
            return Err(ApiError::bad_request(format!(
                "sheet {name} must lie between 2020-01-01 and ten years after dispatch's clock"
            )));
        }
    }
    Ok(())
}

impl Service {
    /// `POST /v1/operator/jobs`.
    pub(crate) fn create_job(&self, body: &[u8]) -> Result<CreateJobResponse, ApiError> {
        let req: CreateJobRequest = parse_json(body)?;
        if !req.sheet.is_object() {
            return Err(ApiError::bad_request("sheet must be a JSON object"));
        }
        let sheet_bytes = serde_json::to_vec(&req.sheet).map_err(|e| ApiError::internal(&e))?;
        // The core's validation errors name fields, never values, so they can be returned as is.
        let sheet = JobSheet::from_json(&sheet_bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let now = now();
        check_sheet_times(&sheet, now)?;
        let (job_id, version) = (sheet.job_id, sheet.version);
        drop(sheet);
        self.store.write(|tx| {
            let device = require_device(tx, req.device_id)?;
            if device.wiped {
                return Err(ApiError::conflict(format!("device {} was wiped; it gets no new jobs", device.device_id)));
            }
            match job_row(tx, job_id)? {
                None => {
                    tx.execute(
                        "INSERT INTO jobs (job_id, device_id, version, sheet, created_ms, updated_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![job_id.to_string(), device.device_id.to_string(), sql_u64(version)?, sheet_bytes, now],
                    )?;
                }
                Some(job) => {
                    require_open(tx, &job)?;
                    if job.device_id != device.device_id {
                        return Err(ApiError::conflict(format!(
                            "job {job_id} is assigned to device {}; reassign it instead",
                            job.device_id
                        )));
                    }
                    if version <= job.version {
                        return Err(ApiError::conflict(format!(
                            "job {job_id}: version {version} is not newer than version {}",
                            job.version
                        )));
                    }
                    tx.execute(
                        "UPDATE jobs SET version = ?1, sheet = ?2, updated_ms = ?3 WHERE job_id = ?4",
                        params![sql_u64(version)?, sheet_bytes, now, job_id.to_string()],
                    )?;
                    // The device only needs the newest version; an older one still queued would
                    // be refused as stale once the newer one is in.
                    tx.execute(
                        "UPDATE deliveries SET status = 'superseded', envelope = x'', updated_ms = ?1
                         WHERE job_id = ?2 AND status = 'pending'",
                        params![now, job_id.to_string()],
                    )?;
                }
            }
            let sealed_to = self.seal_for(tx, &device, job_id, version, &sheet_bytes, now)?;
            Ok(CreateJobResponse { job_id, version, device_id: device.device_id, sealed_to })
        })
    }

    /// `POST /v1/operator/jobs/{id}/cancel`.
    pub(crate) fn cancel_job(&self, job_id: Uuid) -> Result<JobView, ApiError> {
        let now = now();
        self.store.write(|tx| {
            let job = found(job_row(tx, job_id)?, || format!("job {job_id} not found"))?;
            require_open(tx, &job)?;
            tx.execute(
                "UPDATE jobs SET cancelled_ms = ?1, updated_ms = ?1 WHERE job_id = ?2",
                params![now, job_id.to_string()],
            )?;
            withdraw_pending(tx, job_id, None, now)?;
            // Revoke even if the envelope was never reported received: the device may hold it
            // and not have said so yet.
            revoke(tx, job_id, job.device_id, RevocationReason::Cancelled, now)?;
            job_view(tx, job_id)
        })
    }

    /// `POST /v1/operator/jobs/{id}/reassign`.
    pub(crate) fn reassign_job(&self, job_id: Uuid, body: &[u8]) -> Result<JobView, ApiError> {
        let req: crate::operator::ReassignRequest = parse_json(body)?;
        let now = now();
        self.store.write(|tx| {
            let job = found(job_row(tx, job_id)?, || format!("job {job_id} not found"))?;
            let device = require_device(tx, req.device_id)?;
            require_open(tx, &job)?;
            if device.device_id == job.device_id {
                return Err(ApiError::conflict(format!(
                    "job {job_id} is already assigned to device {}",
                    device.device_id
                )));
            }
            if device.wiped {
                return Err(ApiError::conflict(format!("device {} was wiped; it gets no new jobs", device.device_id)));
            }
            let held_before: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE job_id = ?1 AND device_id = ?2)",
                params![job_id.to_string(), device.device_id.to_string()],
                |r| r.get(0),
            )?;
            if held_before {
                // It was revoked there, so the device shredded and tombstoned it and would refuse it.
                return Err(ApiError::conflict(format!(
                    "device {} held job {job_id} before; a device never takes back a job it gave up",
                    device.device_id
                )));
            }
            withdraw_pending(tx, job_id, Some(job.device_id), now)?;
            revoke(tx, job_id, job.device_id, RevocationReason::Reassigned, now)?;
            tx.execute(
                "UPDATE jobs SET device_id = ?1, state = NULL, state_seq = NULL, state_ms = NULL, updated_ms = ?2
                 WHERE job_id = ?3",
                params![device.device_id.to_string(), now, job_id.to_string()],
            )?;
            self.seal_for(tx, &device, job_id, job.version, &job.sheet, now)?;
            job_view(tx, job_id)
        })
    }

    /// `POST /v1/operator/devices/{id}/wipe`.
    pub(crate) fn wipe_device(&self, device_id: Uuid) -> Result<WipeResponse, ApiError> {
        let now = now();
        self.store.write(|tx| {
            let device = require_device(tx, device_id)?;
            let id = device.device_id.to_string();
            tx.execute("UPDATE devices SET wiped_ms = coalesce(wiped_ms, ?1) WHERE device_id = ?2", params![now, id])?;
            let jobs: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT job_id FROM deliveries d WHERE device_id = ?1
                       AND NOT EXISTS (SELECT 1 FROM receipts c
                                       WHERE c.job_id = d.job_id AND c.device_id = d.device_id AND c.verified = 1)
                     GROUP BY job_id ORDER BY min(delivery_id)",
                )?;
                let rows = stmt.query_map([&id], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            // A wiped device is sent nothing more, whatever the job.
            tx.execute(
                "UPDATE deliveries SET status = 'withdrawn', envelope = x'', updated_ms = ?1
                 WHERE device_id = ?2 AND status = 'pending'",
                params![now, id],
            )?;
            let mut revoked_jobs = Vec::new();
            for job in jobs {
                let job_id = parse_uuid_column(&job)?;
                if revoke(tx, job_id, device_id, RevocationReason::DeviceWiped, now)? {
                    revoked_jobs.push(job_id);
                }
            }
            Ok(WipeResponse { device_id, revoked_jobs })
        })
    }

    /// `GET /v1/operator/jobs/{id}`.
    pub(crate) fn job_view(&self, job_id: Uuid) -> Result<JobView, ApiError> {
        self.store.read(|tx| job_view(tx, job_id))
    }

    /// The newest `limit` jobs (by creation), newest first, each as [`job_view`] gives it: the
    /// privacy officer's console lists them. One read snapshot, and no query of its own, so the
    /// list cannot disagree with a job's page or with `GET /v1/operator/jobs/{id}`.
    pub(crate) fn job_views(&self, limit: u32) -> Result<Vec<JobView>, ApiError> {
        self.store.read(|tx| {
            let ids: Vec<String> = {
                let mut stmt =
                    tx.prepare_cached("SELECT job_id FROM jobs ORDER BY created_ms DESC, job_id LIMIT ?1")?;
                let rows = stmt.query_map([limit], |r| r.get(0))?;
                rows.collect::<crate::db::Result<_>>()?
            };
            ids.iter().map(|id| job_view(tx, parse_uuid_column(id)?)).collect()
        })
    }
}

/// Everything known about a job, read inside a transaction.
pub(crate) fn job_view(tx: &Tx<'_>, job_id: Uuid) -> Result<JobView, ApiError> {
    let job = found(job_row(tx, job_id)?, || format!("job {job_id} not found"))?;
    let key = job_id.to_string();

    let mut history = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT device_id, from_state, to_state, at_ms, seq FROM state_changes WHERE job_id = ?1
             ORDER BY at_ms, seq, change_id",
        )?;
        let mut rows = stmt.query([&key])?;
        while let Some(r) = rows.next()? {
            history.push(StateChangeView {
                device_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                from: enum_parse(&r.get::<_, String>(1)?)?,
                to: enum_parse(&r.get::<_, String>(2)?)?,
                at: time(r.get(3)?),
                seq: col_u64(r.get(4)?),
            });
        }
    }

    let report = tx
        .query_row(
            "SELECT text, at_ms FROM reports WHERE job_id = ?1 AND device_id = ?2",
            params![key, job.device_id.to_string()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()?
        .map(|(text, at)| ReportView { device_id: job.device_id, text, at: time(at) });

    let mut deliveries = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT device_id, version, sealed_to, status, via, reason, queued_ms, updated_ms FROM deliveries
             WHERE job_id = ?1 ORDER BY delivery_id",
        )?;
        let mut rows = stmt.query([&key])?;
        while let Some(r) = rows.next()? {
            deliveries.push(DeliveryView {
                device_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                version: col_u64(r.get(1)?),
                sealed_to: recipient_parse(&r.get::<_, String>(2)?)?,
                status: delivery_status(&r.get::<_, String>(3)?)?,
                via: r.get::<_, Option<String>>(4)?.map(|v| recipient_parse(&v)).transpose()?,
                reason: r.get(5)?,
                queued_at: time(r.get(6)?),
                updated_at: time(r.get(7)?),
            });
        }
    }
    let delivery = deliveries.iter().rev().find(|d| d.device_id == job.device_id).cloned();

    let mut audit_events = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            // Only devices that received the job speak about it, and only with what their chain
            // recorded after they received it: another device's chain may name the job (it stays
            // in that device's chain, which dispatch verifies), but it is not shown as part of
            // this job's history, not even after the job is reassigned to that device.
            "SELECT device_id, seq, kind, field, state, detail, at_ms, chain FROM audit_records a
             WHERE job_id = ?1 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.job_id = ?1
                 AND d.device_id = a.device_id AND d.received_after_seq IS NOT NULL
                 AND a.seq > d.received_after_seq)
             ORDER BY device_id, seq, record_id",
        )?;
        let mut rows = stmt.query([&key])?;
        while let Some(r) = rows.next()? {
            let kind: AuditKind = enum_parse(&r.get::<_, String>(2)?)?;
            let detail: Option<String> = r.get(5)?;
            let field: Option<String> = r.get(3)?;
            let reveal = jobseal_protocol::audit::reveal_summary(kind, field.as_deref(), detail.as_deref());
            audit_events.push(AuditEntryView {
                device_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                seq: col_u64(r.get(1)?),
                kind,
                field,
                state: r.get::<_, Option<String>>(4)?.map(|s| enum_parse(&s)).transpose()?,
                detail,
                reveal,
                at: time(r.get(6)?),
                chain: enum_parse::<ChainMark>(&r.get::<_, String>(7)?)?,
            });
        }
    }

    let mut revocations = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT device_id, reason, queued_ms, confirmed_ms FROM revocations WHERE job_id = ?1
             ORDER BY queued_ms, device_id",
        )?;
        let mut rows = stmt.query([&key])?;
        while let Some(r) = rows.next()? {
            let confirmed: Option<i64> = r.get(3)?;
            revocations.push(RevocationView {
                device_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                reason: enum_parse(&r.get::<_, String>(1)?)?,
                status: if confirmed.is_some() { RevocationStatus::Confirmed } else { RevocationStatus::Pending },
                queued_at: time(r.get(2)?),
                confirmed_at: confirmed.map(time),
            });
        }
    }

    let mut receipts = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT device_id, receipt, verified, received_ms FROM receipts WHERE job_id = ?1 ORDER BY receipt_id",
        )?;
        let mut rows = stmt.query([&key])?;
        while let Some(r) = rows.next()? {
            let receipt: ShredReceipt = serde_json::from_str(&r.get::<_, String>(1)?)
                .map_err(|_| ApiError::internal(&"a stored receipt is unreadable"))?;
            receipts.push(ReceiptView {
                device_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                receipt,
                verified: r.get(2)?,
                received_at: time(r.get(3)?),
            });
        }
    }

    let revocation = revocations.last().cloned();
    let receipt =
        receipts.iter().rev().find(|r| r.verified && r.device_id == job.device_id).or_else(|| receipts.last()).cloned();

    Ok(JobView {
        job_id,
        version: job.version,
        device_id: job.device_id,
        status: job_status(tx, &job)?,
        state: job.state,
        history,
        report,
        delivery,
        deliveries,
        audit_events,
        audit_chain: chain_status(tx, job.device_id)?,
        revocation,
        revocations,
        receipt,
        receipts,
        created_at: time(job.created_ms),
        updated_at: time(job.updated_ms),
    })
}
