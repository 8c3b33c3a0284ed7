//! Instants as milliseconds since the Unix epoch, the form every message and row uses.
//!
//! One conversion in each direction, shared by device and dispatch, so that an instant survives a
//! round trip through JSON or SQLite unchanged and an out-of-range value clamps instead of
//! panicking.

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant `ms` milliseconds after the Unix epoch (clamped to chrono's range).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}
