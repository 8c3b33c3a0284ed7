//! The job lifecycle and the access policy (G2).
//!
//! Whether a customer field may be shown is decided here and nowhere else: the job must be in a
//! state the field's policy names, and trusted time must lie inside the job's access window. Both
//! rules are pure functions of their inputs so that they can be tested as a matrix, and so that the
//! vault cannot drift from them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job is in its life. The last four are terminal: entering any of them shreds the job.
///
/// Its kebab-case names are stored in SQLite and sent on the wire; serde and strum derive the
/// same ones, and `state_names_are_the_published_ones` holds them to the published list.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", parse_err_ty = crate::Error, parse_err_fn = unknown_state)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    /// Received and waiting; the technician has not set out.
    Assigned,
    /// The technician is on the way.
    EnRoute,
    /// The technician is at the customer's site.
    OnSite,
    /// Closed by the technician with a completion report.
    Completed,
    /// Cancelled by the technician.
    Cancelled,
    /// Withdrawn by dispatch (cancelled upstream, reassigned, or the device wiped).
    Revoked,
    /// The hard expiry passed while the job was still open.
    Expired,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Assigned,
        JobState::EnRoute,
        JobState::OnSite,
        JobState::Completed,
        JobState::Cancelled,
        JobState::Revoked,
        JobState::Expired,
    ];

    /// True for the states in which the job's customer data no longer exists.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Completed | JobState::Cancelled | JobState::Revoked | JobState::Expired)
    }

    /// The kebab-case name used in JSON, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the technician may move a job from `self` to `to` by advancing it. Terminal
    /// states are reached through close, cancel, revoke and expiry, never by advancing.
    pub fn can_advance_to(self, to: JobState) -> bool {
        matches!(
            (self, to),
            (JobState::Assigned, JobState::EnRoute)
                | (JobState::Assigned, JobState::OnSite)
                | (JobState::EnRoute, JobState::OnSite)
        )
    }

    /// Whether a job in this state may be closed with a completion report.
    pub fn can_close(self) -> bool {
        matches!(self, JobState::EnRoute | JobState::OnSite)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a state name that is none of the kebab-case names (`FromStr`, derived).
fn unknown_state(s: &str) -> crate::Error {
    crate::Error::InvalidInput(format!("unknown job state {s:?}"))
}

/// Why a field is not shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Denial {
    /// The access window has not opened yet.
    NotYetOpen {
        /// When it opens.
        opens_at: DateTime<Utc>,
    },
    /// The access window has closed.
    WindowClosed {
        /// When it closed.
        closed_at: DateTime<Utc>,
    },
    /// The job is not in a state this field may be shown in.
    WrongState {
        /// The job's state.
        state: JobState,
        /// The states the field's policy allows.
        allowed: Vec<JobState>,
    },
    /// The job ended and its customer data was destroyed.
    Shredded {
        /// The terminal state.
        state: JobState,
    },
}

impl Denial {
    /// The refusal's stable code, as the JSON `reason` tag spells it and as the audit log records
    /// it: `not-yet-open`, `window-closed`, `wrong-state` or `shredded` (derived by strum, like
    /// serde's tag).
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::NotYetOpen { opens_at } => write!(f, "access window opens at {}", rfc3339(opens_at)),
            Denial::WindowClosed { closed_at } => write!(f, "access window closed at {}", rfc3339(closed_at)),
            Denial::WrongState { state, allowed } => {
                let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                write!(f, "not shown while {state} (shown while {})", allowed.join(", "))
            }
            Denial::Shredded { state } => write!(f, "job is {state}; its customer data was shredded"),
        }
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The times that bound a job's access to its customer data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessWindow {
    /// First instant a field may be shown: the scheduled start less the opening margin.
    pub opens_at: DateTime<Utc>,
    /// First instant no field may be shown: the scheduled end plus the closing margin.
    pub closes_at: DateTime<Utc>,
    /// The job shreds itself at or after this instant, whatever its state.
    pub hard_expiry: DateTime<Utc>,
}

impl AccessWindow {
    /// Decides whether a field allowed in `allowed` states may be shown now. On success returns
    /// the instant it stops being visible.
    pub fn decide(&self, state: JobState, allowed: &[JobState], now: DateTime<Utc>) -> Result<DateTime<Utc>, Denial> {
        if state.is_terminal() {
            return Err(Denial::Shredded { state });
        }
        if !allowed.contains(&state) {
            return Err(Denial::WrongState { state, allowed: allowed.to_vec() });
        }
        if now < self.opens_at {
            return Err(Denial::NotYetOpen { opens_at: self.opens_at });
        }
        let until = self.closes_at.min(self.hard_expiry);
        if now >= until {
            return Err(Denial::WindowClosed { closed_at: until });
        }
        Ok(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_code_is_its_json_reason_tag() {
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp(1_900_000_000, 0).unwrap_or_default();
        for d in [
            Denial::NotYetOpen { opens_at: t },
            Denial::WindowClosed { closed_at: t },
            Denial::WrongState { state: JobState::Assigned, allowed: vec![JobState::OnSite] },
            Denial::Shredded { state: JobState::Completed },
        ] {
            let json = serde_json::to_value(&d).unwrap();
            assert_eq!(json["reason"], d.code());
        }
    }
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap()
    }

    #[test]
    fn state_names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert!("EnRoute".parse::<JobState>().is_err());
        assert!(matches!("parked".parse::<JobState>(), Err(crate::Error::InvalidInput(_))));
    }

    /// The names are stored in SQLite and sent on the wire: they must never change.
    #[test]
    fn state_names_are_the_published_ones() {
        use strum::IntoEnumIterator;
        assert_eq!(JobState::iter().collect::<Vec<_>>(), JobState::ALL);
        let names: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["assigned", "en-route", "on-site", "completed", "cancelled", "revoked", "expired"]);
    }

    /// The codes are in the audit log and on the wire: they must never change
    /// (`a_denial_code_is_its_json_reason_tag` holds them to serde's tags).
    #[test]
    fn denial_codes_are_the_published_ones() {
        let at = t(8);
        let all = [
            (Denial::NotYetOpen { opens_at: at }, "not-yet-open"),
            (Denial::WindowClosed { closed_at: at }, "window-closed"),
            (Denial::WrongState { state: JobState::Assigned, allowed: vec![JobState::OnSite] }, "wrong-state"),
            (Denial::Shredded { state: JobState::Expired }, "shredded"),
        ];
        for (d, code) in all {
            assert_eq!(d.code(), code);
        }
    }

    #[test]
    fn only_forward_moves_advance() {
        for from in JobState::ALL {
            for to in JobState::ALL {
                let expected = matches!(
                    (from, to),
                    (JobState::Assigned, JobState::EnRoute)
                        | (JobState::Assigned, JobState::OnSite)
                        | (JobState::EnRoute, JobState::OnSite)
                );
                assert_eq!(from.can_advance_to(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn decide_checks_state_then_window() {
        let w = AccessWindow { opens_at: t(8), closes_at: t(12), hard_expiry: t(20) };
        let allowed = [JobState::OnSite];
        assert_eq!(w.decide(JobState::OnSite, &allowed, t(9)), Ok(t(12)));
        assert_eq!(w.decide(JobState::OnSite, &allowed, t(8)), Ok(t(12)));
        assert_eq!(w.decide(JobState::OnSite, &allowed, t(7)), Err(Denial::NotYetOpen { opens_at: t(8) }));
        assert_eq!(w.decide(JobState::OnSite, &allowed, t(12)), Err(Denial::WindowClosed { closed_at: t(12) }));
        assert!(matches!(w.decide(JobState::EnRoute, &allowed, t(9)), Err(Denial::WrongState { .. })));
        assert_eq!(w.decide(JobState::Completed, &allowed, t(9)), Err(Denial::Shredded { state: JobState::Completed }));
    }

    #[test]
    fn hard_expiry_caps_the_window() {
        let w = AccessWindow { opens_at: t(8), closes_at: t(12), hard_expiry: t(10) };
        assert_eq!(w.decide(JobState::OnSite, &[JobState::OnSite], t(9)), Ok(t(10)));
        assert!(w.decide(JobState::OnSite, &[JobState::OnSite], t(11)).is_err());
    }
}
