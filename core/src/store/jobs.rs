//! The `jobs` and `fields` tables: job rows, their sealed customer fields, and tombstones (G1-G3).
//!
//! Customer values exist only in `fields.sealed`, encrypted under the job's data key; a shred
//! deletes every field row and blanks the job row to a tombstone in one statement pair here, so the
//! list of what a shred removes is written once.
//!
//! What decides a reveal (the job's version, state, closing mark, access window, hard expiry, and
//! each field's name, kind and `reveal_in`) is covered by the row's integrity tag (`jobs.mac`,
//! see `crate::integrity`). Every function here that writes those columns re-tags the row in the
//! same transaction ([`retag`]); [`load_live`] checks the tag, so a row edited with `sqlite3` is
//! refused as `Tampered`. Shredding never needs a valid tag: destroying data is always allowed.

use crate::clock;
use crate::crypto::Aad;
use crate::envelope::RecipientKeyId;
use crate::integrity::IntegrityKey;
use crate::model::{FieldInfo, JobInfo};
use crate::policy::{AccessWindow, JobState};
use crate::sheet::{FieldKind, ScheduledWindow};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

/// The parts of a job row the policy and the shred need.
pub(crate) struct LiveJob {
    /// Current state.
    pub(crate) state: JobState,
    /// Sheet version held.
    pub(crate) version: u64,
    /// Access window and hard expiry.
    pub(crate) window: AccessWindow,
}

/// A live job whose integrity tag checked, with its sealed fields in sheet order.
pub(crate) struct CheckedJob {
    /// The job row.
    pub(crate) job: LiveJob,
    /// Its fields.
    pub(crate) fields: Vec<FieldRow>,
}

/// A job row to insert or update from a sheet.
pub(crate) struct JobRow<'a> {
    pub(crate) job_id: Uuid,
    pub(crate) version: u64,
    pub(crate) work_order: &'a str,
    pub(crate) state: JobState,
    pub(crate) window: ScheduledWindow,
    pub(crate) access: AccessWindow,
    /// The work details as JSON.
    pub(crate) work: &'a str,
    pub(crate) site_area: &'a str,
    pub(crate) now_ms: i64,
}

/// A sealed field row.
pub(crate) struct FieldRow {
    pub(crate) name: String,
    pub(crate) kind: FieldKind,
    pub(crate) reveal_in: Vec<JobState>,
    /// The value under the job's data key.
    pub(crate) sealed: Vec<u8>,
}

/// A job marked for shredding.
pub(crate) struct Marked {
    pub(crate) job_id: Uuid,
    pub(crate) version: u64,
    pub(crate) state: JobState,
    pub(crate) closing: JobState,
}

fn parse_id(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::integrity("stored job id is not a UUID"))
}

fn state_of(s: &str) -> Result<JobState> {
    s.parse().map_err(|_| Error::integrity("stored job state is unknown"))
}

fn states_text(states: &[JobState]) -> String {
    states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

fn parse_states(s: &str) -> Result<Vec<JobState>> {
    s.split(',').map(state_of).collect()
}

fn delivery_text(via: RecipientKeyId) -> String {
    match via {
        RecipientKeyId::Prekey(id) => format!("prekey:{id}"),
        RecipientKeyId::Identity => "identity".to_owned(),
    }
}

fn parse_delivery(s: &str) -> Result<RecipientKeyId> {
    match s.strip_prefix("prekey:") {
        Some(id) => {
            id.parse().map(RecipientKeyId::Prekey).map_err(|_| Error::integrity("stored delivery is unreadable"))
        }
        None if s == "identity" => Ok(RecipientKeyId::Identity),
        None => Err(Error::integrity("stored delivery is unreadable")),
    }
}

/// One job row's decision columns as stored, with its tag.
struct DecisionRow {
    state: String,
    version: i64,
    opens: i64,
    closes: i64,
    expiry: i64,
    closing: Option<String>,
    shredded: bool,
    mac: Option<Vec<u8>>,
}

fn decision_row(conn: &Connection, job_id: Uuid) -> Result<Option<DecisionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT state, version, opens_ms, closes_ms, hard_expiry_ms, closing, shredded_ms IS NOT NULL, mac
             FROM jobs WHERE id = ?1",
        )?
        .query_row([job_id.to_string()], |r| {
            Ok(DecisionRow {
                state: r.get(0)?,
                version: r.get(1)?,
                opens: r.get(2)?,
                closes: r.get(3)?,
                expiry: r.get(4)?,
                closing: r.get(5)?,
                shredded: r.get(6)?,
                mac: r.get(7)?,
            })
        })
        .optional()?)
}

/// A field row as stored: (name, kind, reveal_in, sealed).
type StoredField = (String, String, String, Vec<u8>);

/// The fields as stored, in sheet order.
fn stored_fields(conn: &Connection, job_id: Uuid) -> Result<Vec<StoredField>> {
    let mut stmt =
        conn.prepare_cached("SELECT name, kind, reveal_in, sealed FROM fields WHERE job_id = ?1 ORDER BY ord")?;
    let rows = stmt.query_map([job_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What the integrity tag covers, as stored (text, not parsed, so that any edit changes it).
fn decision_record(job_id: Uuid, row: &DecisionRow, fields: &[StoredField]) -> Aad {
    let mut aad = Aad::new("jobseal/v1/job-row")
        .part(job_id.as_bytes())
        .u64(row.version as u64)
        .part(row.state.as_bytes())
        .u64(u64::from(row.closing.is_some()))
        .part(row.closing.as_deref().unwrap_or("").as_bytes())
        .u64(row.opens as u64)
        .u64(row.closes as u64)
        .u64(row.expiry as u64)
        .u64(u64::from(row.shredded))
        .u64(fields.len() as u64);
    for (name, kind, reveal_in, _) in fields {
        aad = aad.part(name.as_bytes()).part(kind.as_bytes()).part(reveal_in.as_bytes());
    }
    aad
}

/// Re-tags a job row after a write to its decision columns or fields (in the writer's transaction).
pub(crate) fn retag(conn: &Connection, key: &IntegrityKey, job_id: Uuid) -> Result<()> {
    let row = decision_row(conn, job_id)?.ok_or(Error::JobNotFound(job_id))?;
    let fields = stored_fields(conn, job_id)?;
    let tag = key.tag(&decision_record(job_id, &row, &fields))?;
    conn.prepare_cached("UPDATE jobs SET mac = ?2 WHERE id = ?1")?.execute(params![job_id.to_string(), &tag[..]])?;
    Ok(())
}

/// Tags every job row (the upgrade of a vault written before tags existed).
pub(crate) fn retag_all(conn: &Connection, key: &IntegrityKey) -> Result<()> {
    for id in list_ids(conn)? {
        retag(conn, key, id)?;
    }
    Ok(())
}

/// Loads a live job and its fields, checking the row's integrity tag first: an edited state,
/// window, expiry or field policy is `Tampered`, and nothing of the job is used.
pub(crate) fn load_live(conn: &Connection, key: &IntegrityKey, job_id: Uuid) -> Result<CheckedJob> {
    let row = decision_row(conn, job_id)?.ok_or(Error::JobNotFound(job_id))?;
    let stored = stored_fields(conn, job_id)?;
    key.check(&decision_record(job_id, &row, &stored), row.mac.as_deref(), "a job's stored policy was edited")?;
    let job = live_from(job_id, row.state, row.version, [row.opens, row.closes, row.expiry], row.closing)?;
    let mut fields = Vec::with_capacity(stored.len());
    for (name, kind, reveal_in, sealed) in stored {
        fields.push(FieldRow { name, kind: FieldKind::parse(&kind)?, reveal_in: parse_states(&reveal_in)?, sealed });
    }
    Ok(CheckedJob { job, fields })
}

/// Loads a job that still holds customer data, or says why it does not, without checking its
/// tag: only for shredding it, which an edit must never prevent.
pub(crate) fn load_live_for_shred(conn: &Connection, job_id: Uuid) -> Result<LiveJob> {
    let row = decision_row(conn, job_id)?.ok_or(Error::JobNotFound(job_id))?;
    live_from(job_id, row.state, row.version, [row.opens, row.closes, row.expiry], row.closing)
}

fn live_from(job_id: Uuid, state: String, version: i64, t: [i64; 3], closing: Option<String>) -> Result<LiveJob> {
    let [opens, closes, expiry] = t;
    let state = state_of(&state)?;
    if state.is_terminal() {
        return Err(Error::JobClosed { job_id, state });
    }
    if let Some(target) = closing {
        return Err(Error::JobClosed { job_id, state: state_of(&target)? });
    }
    Ok(LiveJob {
        state,
        version: version as u64,
        window: AccessWindow {
            opens_at: clock::from_ms(opens),
            closes_at: clock::from_ms(closes),
            hard_expiry: clock::from_ms(expiry),
        },
    })
}

/// Every job id, most recently received first.
pub(crate) fn list_ids(conn: &Connection) -> Result<Vec<Uuid>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM jobs ORDER BY received_ms DESC, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let ids: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| parse_id(id)).collect()
}

/// One job without its customer values.
pub(crate) fn load_info(conn: &Connection, job_id: Uuid) -> Result<JobInfo> {
    type Row = (
        i64,
        String,
        String,
        [i64; 5],
        (Option<String>, Option<String>),
        (i64, i64),
        (Option<String>, Option<i64>, Option<String>),
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT version, work_order, state, window_start_ms, window_end_ms, opens_ms, closes_ms,
                    hard_expiry_ms, work, site_area, received_ms, updated_ms, report, shredded_ms, delivered_via
             FROM jobs WHERE id = ?1",
        )?
        .query_row([job_id.to_string()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
                (r.get(8)?, r.get(9)?),
                (r.get(10)?, r.get(11)?),
                (r.get(12)?, r.get(13)?, r.get(14)?),
            ))
        })
        .optional()?;
    let (version, work_order, state, t, (work, site_area), (received, updated), (report, shredded, via)) =
        row.ok_or(Error::JobNotFound(job_id))?;
    let delivered_via = via.as_deref().map(parse_delivery).transpose()?;
    let work = work
        .map(|w| serde_json::from_str(&w).map_err(|_| Error::integrity("stored work details are unreadable")))
        .transpose()?;
    let mut fields = Vec::new();
    {
        let mut stmt =
            conn.prepare_cached("SELECT name, kind, reveal_in FROM fields WHERE job_id = ?1 ORDER BY ord")?;
        let mut rows = stmt.query([job_id.to_string()])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(1)?;
            let reveal_in: String = r.get(2)?;
            fields.push(FieldInfo {
                name: r.get(0)?,
                kind: FieldKind::parse(&kind)?,
                reveal_in: parse_states(&reveal_in)?,
            });
        }
    }
    Ok(JobInfo {
        job_id,
        version: version as u64,
        work_order,
        state: state_of(&state)?,
        window: ScheduledWindow { start: clock::from_ms(t[0]), end: clock::from_ms(t[1]) },
        access: AccessWindow {
            opens_at: clock::from_ms(t[2]),
            closes_at: clock::from_ms(t[3]),
            hard_expiry: clock::from_ms(t[4]),
        },
        work,
        site_area,
        fields,
        received_at: clock::from_ms(received),
        updated_at: clock::from_ms(updated),
        report,
        shredded_at: shredded.map(clock::from_ms),
        delivered_via,
    })
}

/// Inserts a new job, or updates a live one's sheet-derived columns (its state and history kept).
pub(crate) fn upsert(conn: &Connection, row: &JobRow<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO jobs (id, version, work_order, state, window_start_ms, window_end_ms, opens_ms, closes_ms,
                           hard_expiry_ms, work, site_area, received_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, work_order = excluded.work_order,
             window_start_ms = excluded.window_start_ms, window_end_ms = excluded.window_end_ms,
             opens_ms = excluded.opens_ms, closes_ms = excluded.closes_ms,
             hard_expiry_ms = excluded.hard_expiry_ms, work = excluded.work,
             site_area = excluded.site_area, updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        row.job_id.to_string(),
        row.version as i64,
        row.work_order,
        row.state.as_str(),
        clock::to_ms(row.window.start),
        clock::to_ms(row.window.end),
        clock::to_ms(row.access.opens_at),
        clock::to_ms(row.access.closes_at),
        clock::to_ms(row.access.hard_expiry),
        row.work,
        row.site_area,
        row.now_ms,
    ])?;
    Ok(())
}

/// Replaces a job's sealed fields with `fields`, in order, and re-tags the row (so [`upsert`],
/// which always comes first, is covered too).
pub(crate) fn replace_fields(conn: &Connection, key: &IntegrityKey, job_id: Uuid, fields: &[FieldRow]) -> Result<()> {
    let id = job_id.to_string();
    conn.prepare_cached("DELETE FROM fields WHERE job_id = ?1")?.execute([&id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO fields (job_id, ord, name, kind, reveal_in, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (ord, f) in fields.iter().enumerate() {
        insert.execute(params![id, ord as i64, f.name, f.kind.as_str(), states_text(&f.reveal_in), f.sealed])?;
    }
    retag(conn, key, job_id)
}

/// Records which device key a sealed sheet came to.
pub(crate) fn set_delivered_via(conn: &Connection, job_id: Uuid, via: RecipientKeyId) -> Result<()> {
    conn.prepare_cached("UPDATE jobs SET delivered_via = ?2 WHERE id = ?1")?
        .execute(params![job_id.to_string(), delivery_text(via)])?;
    Ok(())
}

/// Moves a live job to `to`.
pub(crate) fn set_state(conn: &Connection, key: &IntegrityKey, job_id: Uuid, to: JobState, now_ms: i64) -> Result<()> {
    conn.prepare_cached("UPDATE jobs SET state = ?2, updated_ms = ?3 WHERE id = ?1")?.execute(params![
        job_id.to_string(),
        to.as_str(),
        now_ms
    ])?;
    retag(conn, key, job_id)
}

/// Marks a job for shredding into `target`, with the completion report if any.
pub(crate) fn mark_closing(
    conn: &Connection,
    key: &IntegrityKey,
    job_id: Uuid,
    target: JobState,
    report: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET closing = ?2, report = ?3, report_ms = CASE WHEN ?3 IS NULL THEN NULL ELSE ?4 END
         WHERE id = ?1",
    )?
    .execute(params![job_id.to_string(), target.as_str(), report, now_ms])?;
    retag(conn, key, job_id)
}

/// Live, unmarked jobs whose hard expiry is at or before `now_ms`.
pub(crate) fn due_for_expiry(conn: &Connection, now_ms: i64) -> Result<Vec<Uuid>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM jobs WHERE shredded_ms IS NULL AND closing IS NULL AND hard_expiry_ms <= ?1",
    )?;
    let rows = stmt.query_map([now_ms], |r| r.get::<_, String>(0))?;
    let ids: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| parse_id(id)).collect()
}

/// Marks a job for shredding as expired.
pub(crate) fn mark_expired(conn: &Connection, key: &IntegrityKey, job_id: Uuid) -> Result<()> {
    conn.prepare_cached("UPDATE jobs SET closing = ?2 WHERE id = ?1")?
        .execute(params![job_id.to_string(), JobState::Expired.as_str()])?;
    retag(conn, key, job_id)
}

/// Jobs marked for shredding and not yet shredded.
pub(crate) fn marked(conn: &Connection) -> Result<Vec<Marked>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, version, state, closing FROM jobs WHERE closing IS NOT NULL AND shredded_ms IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, version, state, closing) = row?;
        out.push(Marked {
            job_id: parse_id(&id)?,
            version: version as u64,
            state: state_of(&state)?,
            closing: state_of(&closing)?,
        });
    }
    Ok(out)
}

/// Deletes a job's sealed fields and blanks its row to a tombstone in state `to`; returns the
/// number of fields deleted.
pub(crate) fn shred(
    conn: &Connection,
    key: &IntegrityKey,
    job_id: Uuid,
    to: JobState,
    now_ms: i64,
    epoch: u64,
) -> Result<u32> {
    let id = job_id.to_string();
    let fields = conn.prepare_cached("DELETE FROM fields WHERE job_id = ?1")?.execute([&id])?;
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, closing = NULL, work = NULL, site_area = NULL,
                shredded_ms = ?3, shred_epoch = ?4, updated_ms = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, to.as_str(), now_ms, epoch as i64])?;
    retag(conn, key, job_id)?;
    Ok(u32::try_from(fields).unwrap_or(u32::MAX))
}

/// Writes a value-free tombstone for a job this device never held, so its sheet is refused later.
pub(crate) fn insert_tombstone(
    conn: &Connection,
    key: &IntegrityKey,
    job_id: Uuid,
    state: JobState,
    now_ms: i64,
    epoch: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO jobs (id, version, work_order, state, window_start_ms, window_end_ms, opens_ms, closes_ms,
                           hard_expiry_ms, received_ms, updated_ms, shredded_ms, shred_epoch)
         VALUES (?1, 0, '-', ?2, ?3, ?3, ?3, ?3, ?3, ?3, ?3, ?3, ?4)",
    )?
    .execute(params![job_id.to_string(), state.as_str(), now_ms, epoch as i64])?;
    retag(conn, key, job_id)
}
