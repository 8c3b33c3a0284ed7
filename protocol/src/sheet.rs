//! The job sheet: what dispatch sends for one job (G1, G8).
//!
//! A sheet mixes work details that may be kept (work order, tasks, coarse site area) with customer
//! fields that must be sealed and shredded. Keeping the two apart in the type is what lets the
//! vault store the first in the clear and the second only as ciphertext. Validation happens here,
//! before anything touches storage, and its errors name fields, never values.

use crate::crypto::SecretString;
use crate::policy::{AccessWindow, JobState};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use uuid::Uuid;

/// The format tag every sheet carries, so that later formats can be told apart.
pub const SHEET_FORMAT: &str = "jobseal.sheet.v1";

/// Largest accepted customer field value, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Largest number of customer fields on one sheet.
pub const MAX_FIELDS: usize = 32;
/// Largest accepted margin before or after the scheduled window, in minutes (one day).
pub const MAX_MARGIN_MINUTES: u32 = 24 * 60;
/// Longest accepted access window from opening to hard expiry (14 days).
pub const MAX_SPAN_DAYS: i64 = 14;

/// A job sheet as dispatch sends it. Customer values never appear in its Debug output.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSheet {
    /// Always [`SHEET_FORMAT`].
    pub format: String,
    /// The job's identity, chosen by dispatch.
    pub job_id: Uuid,
    /// Sheet version; a newer version of a live job replaces its fields.
    pub version: u64,
    /// Dispatch's work-order reference (not personal data).
    pub work_order: String,
    /// The appointment slot agreed with the customer.
    pub window: ScheduledWindow,
    /// How far the access window reaches beyond the slot, and when the job destroys itself.
    pub access: AccessRules,
    /// What is to be done; must not contain personal data.
    pub work: WorkDetails,
    /// A coarse area (district, town) for planning the day; never a street address.
    pub site_area: String,
    /// The customer's data, sealed at rest and shown only under each field's policy.
    pub customer: Vec<CustomerField>,
}

/// The appointment slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledWindow {
    /// Start of the slot.
    pub start: DateTime<Utc>,
    /// End of the slot.
    pub end: DateTime<Utc>,
}

/// Margins around the slot and the hard expiry, set by dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRules {
    /// Minutes before the slot's start from which fields may be shown.
    pub open_before_minutes: u32,
    /// Minutes after the slot's end until which fields may be shown.
    pub close_after_minutes: u32,
    /// The instant the job shreds itself, network or not; not before the access window closes.
    pub hard_expiry: DateTime<Utc>,
}

/// The non-personal description of the work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkDetails {
    /// One line saying what the job is.
    pub summary: String,
    /// Steps to carry out.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Parts and tools to bring.
    #[serde(default)]
    pub equipment: Vec<String>,
}

/// What a customer field holds; lets the app choose how to present it.
///
/// Its kebab-case names are stored in SQLite and sent on the wire; serde and strum derive the
/// same ones.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", parse_err_ty = Error, parse_err_fn = unknown_kind)]
pub enum FieldKind {
    /// A person's name.
    Name,
    /// A direct phone number; prefer a relay number.
    Phone,
    /// A masked relay number that dispatch can turn off after the job.
    RelayPhone,
    /// An email address.
    Email,
    /// A postal address.
    Address,
    /// Floor, staircase, flat.
    Floor,
    /// A door or gate code.
    DoorCode,
    /// Free-text note about the customer or the site.
    Note,
    /// Any other text.
    Text,
}

impl FieldKind {
    /// The kebab-case name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kind named `s` (as stored and on the wire).
    pub fn parse(s: &str) -> Result<Self> {
        s.parse().map_err(|_| Error::integrity("unknown field kind in store"))
    }
}

/// The error of parsing a kind name that is none of the kebab-case names (`FromStr`, derived). It
/// does not quote the input, which may be anything.
fn unknown_kind(_: &str) -> Error {
    Error::InvalidInput("unknown customer field kind".into())
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of customer data with its reveal policy.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerField {
    /// Stable machine name, `[a-z][a-z0-9_]*`, unique on the sheet (e.g. `door_code`).
    pub name: String,
    /// What the value is.
    pub kind: FieldKind,
    /// The personal data itself.
    pub value: SecretString,
    /// The non-terminal states in which the value may be shown.
    pub reveal_in: Vec<JobState>,
}

impl fmt::Debug for CustomerField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerField")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .field("reveal_in", &self.reveal_in)
            .finish()
    }
}

impl JobSheet {
    /// Parses and validates a sheet from JSON. Serde's own messages can quote input, so they are
    /// replaced by a value-free description of where parsing failed.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let sheet: JobSheet = serde_json::from_slice(bytes).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "could not be read",
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "is truncated",
                serde_json::error::Category::Data => "does not match the sheet format",
            };
            Error::InvalidSheet(format!("sheet {what} (line {}, column {})", e.line(), e.column()))
        })?;
        sheet.validate()?;
        Ok(sheet)
    }

    /// The access window this sheet defines. Saturates at the ends of the representable time
    /// range ([`JobSheet::validate`] refuses such sheets), so it never panics on any input.
    pub fn access_window(&self) -> AccessWindow {
        AccessWindow {
            opens_at: self.opens_at().unwrap_or(DateTime::<Utc>::MIN_UTC),
            closes_at: self.closes_at().unwrap_or(DateTime::<Utc>::MAX_UTC),
            hard_expiry: self.access.hard_expiry,
        }
    }

    fn opens_at(&self) -> Option<DateTime<Utc>> {
        self.window.start.checked_sub_signed(Duration::minutes(self.access.open_before_minutes.into()))
    }

    fn closes_at(&self) -> Option<DateTime<Utc>> {
        self.window.end.checked_add_signed(Duration::minutes(self.access.close_after_minutes.into()))
    }

    /// Checks every rule a sheet must meet before the vault accepts it.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidSheet(msg));
        if self.format != SHEET_FORMAT {
            return bad(format!("format must be {SHEET_FORMAT:?}"));
        }
        if self.job_id.is_nil() {
            return bad("job_id must not be the nil UUID".into());
        }
        if self.version == 0 || self.version > i64::MAX as u64 {
            return bad("version must be between 1 and 2^63-1".into());
        }
        check_text("work_order", &self.work_order, 1, 64)?;
        check_text("site_area", &self.site_area, 0, 128)?;
        check_text("work.summary", &self.work.summary, 1, 500)?;
        if self.work.tasks.len() > 50 || self.work.equipment.len() > 50 {
            return bad("work.tasks and work.equipment hold at most 50 entries".into());
        }
        for t in self.work.tasks.iter().chain(&self.work.equipment) {
            check_text("work.tasks/equipment entry", t, 1, 200)?;
        }
        if self.window.end <= self.window.start {
            return bad("window.end must be after window.start".into());
        }
        for (key, minutes) in [
            ("access.open_before_minutes", self.access.open_before_minutes),
            ("access.close_after_minutes", self.access.close_after_minutes),
        ] {
            if minutes > MAX_MARGIN_MINUTES {
                return bad(format!("{key} must be at most {MAX_MARGIN_MINUTES} minutes"));
            }
        }
        if self.opens_at().is_none() || self.closes_at().is_none() {
            return bad("the access window reaches outside the representable time range".into());
        }
        let w = self.access_window();
        if w.hard_expiry < w.closes_at {
            return bad("access.hard_expiry must not be before the access window closes".into());
        }
        if w.hard_expiry - w.opens_at > Duration::days(MAX_SPAN_DAYS) {
            return bad(format!(
                "access.hard_expiry may be at most {MAX_SPAN_DAYS} days after the access window opens"
            ));
        }
        if self.customer.is_empty() || self.customer.len() > MAX_FIELDS {
            return bad(format!("customer must hold 1 to {MAX_FIELDS} fields"));
        }
        let mut names = HashSet::new();
        for (i, field) in self.customer.iter().enumerate() {
            if !is_field_name(&field.name) {
                return bad(format!("customer[{i}].name must match [a-z][a-z0-9_]{{0,63}}"));
            }
            if !names.insert(field.name.as_str()) {
                return bad(format!("customer field {:?} appears twice", field.name));
            }
            let len = field.value.expose().len();
            if len == 0 || len > MAX_FIELD_BYTES {
                return bad(format!("customer field {:?} must hold 1 to {MAX_FIELD_BYTES} bytes", field.name));
            }
            if field.reveal_in.is_empty() {
                return bad(format!("customer field {:?} must name at least one state in reveal_in", field.name));
            }
            if let Some(s) = field.reveal_in.iter().find(|s| s.is_terminal()) {
                return bad(format!("customer field {:?} cannot be revealed in terminal state {s}", field.name));
            }
        }
        Ok(())
    }
}

/// Field names are kept in the clear and in the audit log, so they are restricted to a shape
/// that cannot carry a phone number or a name by accident.
pub(crate) fn is_field_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn check_text(what: &str, s: &str, min: usize, max: usize) -> Result<()> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(Error::InvalidSheet(format!("{what} must be {min} to {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidSheet(format!("{what} must not contain control characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are stored in SQLite and sent on the wire: they must never change, and must be
    /// the ones serde writes in JSON.
    #[test]
    fn field_kind_names_are_the_published_ones() {
        use strum::IntoEnumIterator;
        let names: Vec<&str> = FieldKind::iter().map(FieldKind::as_str).collect();
        assert_eq!(
            names,
            ["name", "phone", "relay-phone", "email", "address", "floor", "door-code", "note", "text"]
        );
        for kind in FieldKind::iter() {
            assert_eq!(FieldKind::parse(kind.as_str()).unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!(matches!(FieldKind::parse("door_code"), Err(Error::Integrity(_))));
        assert!(matches!("DoorCode".parse::<FieldKind>(), Err(Error::InvalidInput(_))));
    }
}
