//! Job sheets for tests: one builder for the `jobseal.sheet.v1` document instead of a JSON literal
//! in every suite.
//!
//! The core, the CLI, the dispatch server, the end-to-end suites and the benchmarks all need
//! sheets, and each used to write its own copy of the format; a change to the format meant finding
//! them all. [`Sheet`] holds the one copy. Its defaults are the fixture most suites share: a slot
//! from 08:00 to 10:00 on 2030-03-04, access from 30 minutes before to an hour after (07:30 to
//! 11:00), a hard expiry at 14:00, and five customer fields. Times are given in minutes from
//! [`t0`] (06:00 that day) through [`at`]. Every customer value is obviously fake, and each is
//! distinctive enough that a byte scan finding it cannot be a coincidence.
//!
//! Nothing here depends on the core, so that the SQLCipher benchmark (which must not link the
//! product's SQLite) can share the workload; `Sheet::build` needs the `vault` feature.

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// The format tag every sheet carries.
pub const SHEET_FORMAT: &str = "jobseal.sheet.v1";

/// The fixture's reference instant, 2030-03-04T06:00:00Z: the slot starts two hours later.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, 4, 6, 0, 0).unwrap()
}

/// `minutes` after [`t0`] (before it when negative).
pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// The slot's start, 08:00, in minutes from [`t0`].
pub const SLOT_START: i64 = 120;
/// The slot's end, 10:00, in minutes from [`t0`].
pub const SLOT_END: i64 = 240;
/// How long before the slot the access window opens.
pub const OPEN_BEFORE_MINUTES: i64 = 30;
/// How long after the slot the access window closes.
pub const CLOSE_AFTER_MINUTES: i64 = 60;
/// The access window opens at 07:30, in minutes from [`t0`].
pub const OPENS: i64 = SLOT_START - OPEN_BEFORE_MINUTES;
/// The access window closes at 11:00, in minutes from [`t0`].
pub const CLOSES: i64 = SLOT_END + CLOSE_AFTER_MINUTES;
/// The hard expiry, 14:00, in minutes from [`t0`].
pub const EXPIRY: i64 = 480;

/// The default customer's name.
pub const NAME: &str = "Test Customer Zqxj";
/// The default customer's phone: in Ofcom's range reserved for drama (07700 900000-900999), so
/// that it can never ring anyone.
pub const PHONE: &str = "+44 7700 900123";
/// The default customer's address.
pub const ADDRESS: &str = "1 rue de l'Exemple, 69003 Lyon";
/// The default door code.
pub const DOOR: &str = "0000A-FAKE";
/// The default note to the technician.
pub const NOTE: &str = "Fake note: dog in the garden";
/// The five default values, in the order of [`default_fields`].
pub const VALUES: [&str; 5] = [NAME, PHONE, ADDRESS, DOOR, NOTE];

/// One customer field of a sheet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name, such as `door_code`.
    pub name: String,
    /// Its kind, in the sheet's kebab-case spelling (`relay-phone`, `door-code`, ...).
    pub kind: String,
    /// The (fake) customer value.
    pub value: String,
    /// The job states in which it may be revealed, kebab-case.
    pub reveal_in: Vec<String>,
}

impl Field {
    /// A field named `name` of kind `kind`, holding `value`, revealed in `reveal_in`.
    pub fn new(name: &str, kind: &str, value: &str, reveal_in: &[&str]) -> Field {
        Field {
            name: name.to_owned(),
            kind: kind.to_owned(),
            value: value.to_owned(),
            reveal_in: reveal_in.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether the field may be revealed in `state` (kebab-case, as `JobState::as_str` gives it).
    pub fn revealed_in(&self, state: &str) -> bool {
        self.reveal_in.iter().any(|s| s == state)
    }

    fn json(&self) -> Value {
        json!({"name": self.name, "kind": self.kind, "value": self.value, "reveal_in": self.reveal_in})
    }
}

/// The five fields of the default sheet: the name, the phone and the address are shown en route
/// and on site, the door code on site only, the note from assignment on.
pub fn default_fields() -> Vec<Field> {
    vec![
        Field::new("customer_name", "name", NAME, &["en-route", "on-site"]),
        Field::new("phone", "relay-phone", PHONE, &["en-route", "on-site"]),
        Field::new("address", "address", ADDRESS, &["en-route", "on-site"]),
        Field::new("door_code", "door-code", DOOR, &["on-site"]),
        Field::new("note", "note", NOTE, &["assigned", "en-route", "on-site"]),
    ]
}

/// A job sheet under construction: the defaults described in the module documentation, changed
/// by chained setters, then turned into JSON ([`Sheet::json`], [`Sheet::json_string`]) or, with
/// the `vault` feature, into the core's `JobSheet` (`Sheet::build`).
///
/// The builder does not validate: a test may build a sheet the core must refuse.
#[derive(Clone, Debug)]
pub struct Sheet {
    job_id: Uuid,
    version: u64,
    work_order: String,
    window: (DateTime<Utc>, DateTime<Utc>),
    open_before_minutes: i64,
    close_after_minutes: i64,
    hard_expiry: DateTime<Utc>,
    summary: String,
    tasks: Vec<String>,
    equipment: Vec<String>,
    site_area: String,
    fields: Vec<Field>,
}

impl Sheet {
    /// The default sheet, version 1, for `job_id`.
    pub fn new(job_id: Uuid) -> Sheet {
        Sheet {
            job_id,
            version: 1,
            work_order: "WO-TEST-0001".into(),
            window: (at(SLOT_START), at(SLOT_END)),
            open_before_minutes: OPEN_BEFORE_MINUTES,
            close_after_minutes: CLOSE_AFTER_MINUTES,
            hard_expiry: at(EXPIRY),
            summary: "Install fibre terminal".into(),
            tasks: vec!["Splice drop cable".into()],
            equipment: vec!["ONT".into()],
            site_area: "Lyon 3e".into(),
            fields: default_fields(),
        }
    }

    /// The job id the sheet carries.
    pub fn id(&self) -> Uuid {
        self.job_id
    }

    /// Sets the job id.
    pub fn job_id(mut self, job_id: Uuid) -> Sheet {
        self.job_id = job_id;
        self
    }

    /// Sets the version.
    pub fn version(mut self, version: u64) -> Sheet {
        self.version = version;
        self
    }

    /// Sets the work order reference.
    pub fn work_order(mut self, work_order: impl Into<String>) -> Sheet {
        self.work_order = work_order.into();
        self
    }

    /// Sets the scheduled slot.
    pub fn window(mut self, start: DateTime<Utc>, end: DateTime<Utc>) -> Sheet {
        self.window = (start, end);
        self
    }

    /// Sets the access margins: the window opens `open_before_minutes` before the slot and closes
    /// `close_after_minutes` after it.
    pub fn access(mut self, open_before_minutes: i64, close_after_minutes: i64) -> Sheet {
        self.open_before_minutes = open_before_minutes;
        self.close_after_minutes = close_after_minutes;
        self
    }

    /// Sets the hard expiry, when the device shreds the job whatever its state.
    pub fn expiry(mut self, hard_expiry: DateTime<Utc>) -> Sheet {
        self.hard_expiry = hard_expiry;
        self
    }

    /// Sets the coarse site area shown before the window opens.
    pub fn site_area(mut self, site_area: impl Into<String>) -> Sheet {
        self.site_area = site_area.into();
        self
    }

    /// Sets the work details: a summary, the tasks and the equipment.
    pub fn work(mut self, summary: &str, tasks: &[&str], equipment: &[&str]) -> Sheet {
        self.summary = summary.to_owned();
        self.tasks = tasks.iter().map(|s| (*s).to_owned()).collect();
        self.equipment = equipment.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Replaces the customer fields.
    pub fn fields(mut self, fields: Vec<Field>) -> Sheet {
        self.fields = fields;
        self
    }

    /// Keeps only the fields named in `names`, in the sheet's order. Panics on a name the sheet
    /// does not have, so that a typo cannot silently drop a field.
    pub fn only(mut self, names: &[&str]) -> Sheet {
        for name in names {
            self.field_mut(name);
        }
        self.fields.retain(|f| names.contains(&f.name.as_str()));
        self
    }

    /// Sets the value of the field `name` (panics if there is none).
    pub fn value(mut self, name: &str, value: impl Into<String>) -> Sheet {
        self.field_mut(name).value = value.into();
        self
    }

    /// Sets every field's value, in order; panics unless there is exactly one value per field.
    pub fn values<S: Into<String>>(mut self, values: impl IntoIterator<Item = S>) -> Sheet {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        assert_eq!(values.len(), self.fields.len(), "one value per customer field");
        for (field, value) in self.fields.iter_mut().zip(values) {
            field.value = value;
        }
        self
    }

    /// Sets the kind of the field `name` (panics if there is none).
    pub fn kind(mut self, name: &str, kind: &str) -> Sheet {
        self.field_mut(name).kind = kind.to_owned();
        self
    }

    /// Sets the states in which the field `name` may be revealed (panics if there is none).
    pub fn reveal_in(mut self, name: &str, states: &[&str]) -> Sheet {
        self.field_mut(name).reveal_in = states.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn field_mut(&mut self, name: &str) -> &mut Field {
        let known: Vec<String> = self.fields.iter().map(|f| f.name.clone()).collect();
        self.fields
            .iter_mut()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("the sheet has no field {name:?} (it has {known:?})"))
    }

    /// The sheet as a JSON document, to edit further or to send to dispatch.
    pub fn json(&self) -> Value {
        json!({
            "format": SHEET_FORMAT,
            "job_id": self.job_id,
            "version": self.version,
            "work_order": self.work_order,
            "window": {"start": timestamp(self.window.0), "end": timestamp(self.window.1)},
            "access": {
                "open_before_minutes": self.open_before_minutes,
                "close_after_minutes": self.close_after_minutes,
                "hard_expiry": timestamp(self.hard_expiry),
            },
            "work": {"summary": self.summary, "tasks": self.tasks, "equipment": self.equipment},
            "site_area": self.site_area,
            "customer": self.fields.iter().map(Field::json).collect::<Vec<_>>(),
        })
    }

    /// The sheet as compact JSON text, as a file or a request body holds it.
    pub fn json_string(&self) -> String {
        self.json().to_string()
    }

    /// The sheet parsed by the core; panics if the core refuses it.
    #[cfg(feature = "vault")]
    pub fn build(&self) -> jobseal::JobSheet {
        parse(&self.json())
    }
}

/// RFC 3339 in UTC with a `Z`, whole seconds unless the instant has a fraction: the spelling of
/// docs/examples/job-sheet.json.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The default sheet of `job_id` at `version`, as JSON.
pub fn sheet_value(job_id: Uuid, version: u64) -> Value {
    Sheet::new(job_id).version(version).json()
}

/// The default sheet of `job_id` at `version`, parsed by the core.
#[cfg(feature = "vault")]
pub fn sheet(job_id: Uuid, version: u64) -> jobseal::JobSheet {
    Sheet::new(job_id).version(version).build()
}

/// Parses a sheet document that the test expects to be valid; panics if the core refuses it.
#[cfg(feature = "vault")]
pub fn parse(sheet: &Value) -> jobseal::JobSheet {
    jobseal::JobSheet::from_json(sheet.to_string().as_bytes()).expect("the test's sheet is valid")
}
