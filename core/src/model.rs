//! What the vault hands out: jobs without their values, reveals, shred outcomes.
//!
//! These are plain data types shared by the storage layer (which builds them from rows) and the
//! public API (which returns them). None of them carries a customer value except
//! [`FieldAccess::Visible`], whose value is a [`SecretString`] that zeroizes on drop and redacts
//! itself in Debug output (G8).

use crate::crypto::SecretString;
use crate::envelope::RecipientKeyId;
use crate::policy::{AccessWindow, Denial, JobState};
use crate::sheet::{FieldKind, ScheduledWindow, WorkDetails};
pub use jobseal_protocol::receipt::ShredOutcome;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest completion report, in characters.
pub const MAX_REPORT_CHARS: usize = 4000;

/// What a job looks like without its customer data: safe to list, log and keep after the close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's identity.
    pub job_id: Uuid,
    /// Sheet version held.
    pub version: u64,
    /// Dispatch's work-order reference.
    pub work_order: String,
    /// Current state.
    pub state: JobState,
    /// The appointment slot.
    pub window: ScheduledWindow,
    /// The access window and hard expiry.
    pub access: AccessWindow,
    /// What is to be done (absent once the job is shredded).
    pub work: Option<WorkDetails>,
    /// Coarse site area (absent once the job is shredded).
    pub site_area: Option<String>,
    /// The customer fields' names, kinds and policies (empty once the job is shredded).
    pub fields: Vec<FieldInfo>,
    /// When the sheet was first stored.
    pub received_at: DateTime<Utc>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
    /// The technician's completion report, kept after the close.
    pub report: Option<String>,
    /// When the customer data was destroyed.
    pub shredded_at: Option<DateTime<Utc>>,
    /// Which device key the sealed sheet came to: a one-time prekey, or the identity key when
    /// dispatch had no prekey left (no forward secrecy for that sheet). `None` for a sheet
    /// stored in plaintext through [`crate::Vault::ingest`].
    pub delivered_via: Option<RecipientKeyId>,
}

/// A customer field described without its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// The field's name.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// States in which it may be shown.
    pub reveal_in: Vec<JobState>,
}

/// The result of one reveal: every customer field of the job, shown or refused.
#[derive(Debug)]
pub struct Reveal {
    /// The job.
    pub job_id: Uuid,
    /// Its state at the reveal.
    pub state: JobState,
    /// Trusted time of the reveal.
    pub at: DateTime<Utc>,
    /// One entry per customer field, in sheet order.
    pub fields: Vec<RevealedField>,
}

/// One field of a [`Reveal`].
#[derive(Debug)]
pub struct RevealedField {
    /// The field's name.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// The value and how long it stays visible, or why it is hidden.
    pub access: FieldAccess,
}

/// Whether a field is shown.
#[derive(Debug)]
pub enum FieldAccess {
    /// Shown: the value, and the instant it stops being visible.
    Visible {
        /// The customer value.
        value: SecretString,
        /// When it stops being visible.
        until: DateTime<Utc>,
    },
    /// Not shown, and why.
    Hidden(Denial),
}


