//! The documented job sheet format (docs/job-sheet.md) against the model in `jobseal::sheet`.
//!
//! The example and the JSON Schema in docs/ are what dispatch teams build against, so these tests
//! hold them to the Rust model: the example parses and validates, the schema (compiled by the
//! `jsonschema` validator, not read by hand) names exactly the keys, kinds and states the model
//! knows and puts its bounds where the model does, the fuzzer's seed sheets are what they are
//! meant to be, and every malformed sheet is refused with a typed `InvalidSheet` error that
//! carries no customer value.

use chrono::{DateTime, Duration, Utc};
use jobseal::sheet::{MAX_FIELDS, MAX_FIELD_BYTES, MAX_MARGIN_MINUTES, MAX_SPAN_DAYS, SHEET_FORMAT};
use jobseal::{FieldKind, JobSheet, JobState, ProtocolError as Error};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;

const EXAMPLE: &str = include_str!("../../docs/examples/job-sheet.json");
const SCHEMA: &str = include_str!("../../docs/job-sheet.schema.json");

/// Every field kind. `kind_is_listed` stops compiling when a variant is added, so that this list,
/// the schema and the docs are updated with it.
const ALL_KINDS: [FieldKind; 9] = [
    FieldKind::Name,
    FieldKind::Phone,
    FieldKind::RelayPhone,
    FieldKind::Email,
    FieldKind::Address,
    FieldKind::Floor,
    FieldKind::DoorCode,
    FieldKind::Note,
    FieldKind::Text,
];

#[allow(dead_code)]
fn kind_is_listed(kind: FieldKind) {
    match kind {
        FieldKind::Name
        | FieldKind::Phone
        | FieldKind::RelayPhone
        | FieldKind::Email
        | FieldKind::Address
        | FieldKind::Floor
        | FieldKind::DoorCode
        | FieldKind::Note
        | FieldKind::Text => {}
    }
}

/// Pieces of the example's customer values that must never show up in an error or in Debug
/// output, beyond the whole values themselves (see `secrets`).
const FRAGMENTS: [&str; 6] = ["Test Customer", "+33 6", "00 00 00", "0000A", "Exemple", "door on the left"];

fn example() -> Value {
    serde_json::from_str(EXAMPLE).expect("docs/examples/job-sheet.json is not valid JSON")
}

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("docs/job-sheet.schema.json is not valid JSON")
}

/// The example's customer values and the fixed fragments.
fn secrets() -> Vec<String> {
    let ex = example();
    let mut out: Vec<String> = ex["customer"]
        .as_array()
        .expect("customer is an array")
        .iter()
        .map(|f| f["value"].as_str().expect("value is a string").to_owned())
        .collect();
    out.extend(FRAGMENTS.iter().map(|s| s.to_string()));
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{what} contains the customer value or fragment {s:?}");
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialize")
}

fn parse(v: &Value) -> Result<JobSheet, Error> {
    JobSheet::from_json(&to_bytes(v))
}

/// The example with one change applied.
fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut v = example();
    change(&mut v);
    v
}

/// Asserts that `bytes` are refused with `InvalidSheet` and that the error carries no customer
/// value; returns the error's Display string.
fn assert_rejected(case: &str, bytes: &[u8]) -> String {
    match JobSheet::from_json(bytes) {
        Err(e @ Error::InvalidSheet(_)) => {
            let shown = e.to_string();
            assert_no_secret(&format!("error of case {case:?}"), &shown);
            assert_no_secret(&format!("Debug of the error of case {case:?}"), &format!("{e:?}"));
            shown
        }
        Err(other) => panic!("case {case:?}: expected InvalidSheet, got {other}"),
        Ok(_) => panic!("case {case:?}: the sheet was accepted"),
    }
}

/// Asserts that the model accepts `v`, and that the schema does too: a dispatch team validating
/// with the schema must never discard a sheet the device would take.
fn assert_accepted(case: &str, v: &Value) -> JobSheet {
    assert!(schema_accepts(v), "case {case:?}: the schema refuses a sheet the model accepts");
    match parse(v) {
        Ok(sheet) => sheet,
        Err(e) => panic!("case {case:?}: expected the sheet to be accepted, got {e}"),
    }
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("timestamp is a string").parse().expect("timestamp parses")
}

fn rfc3339(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The example's access window: (opens, closes).
fn example_window() -> (DateTime<Utc>, DateTime<Utc>) {
    let w = JobSheet::from_json(EXAMPLE.as_bytes()).expect("example").access_window();
    (w.opens_at, w.closes_at)
}

/// A customer field shaped like the example's, named `name`.
fn field(name: &str) -> Value {
    json!({"name": name, "kind": "text", "value": "x", "reveal_in": ["on-site"]})
}

// ---------------------------------------------------------------------------------------------
// The schema, compiled by a JSON Schema validator.

/// The schema compiled once, with `format` checked (uuid, date-time): draft 2020-12 treats
/// formats as annotations unless asked to.
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema())
            .expect("docs/job-sheet.schema.json is not a valid draft 2020-12 schema")
    })
}

/// Whether the schema accepts `v`. Its error messages quote the instance, so none is shown.
fn schema_accepts(v: &Value) -> bool {
    validator().is_valid(v)
}

/// The objects of a sheet: where the example has one (JSON pointer; customer fields by the
/// first), and the schema definition that describes it.
const OBJECTS: [(&str, &str); 5] = [
    ("", ""),
    ("/window", "/$defs/ScheduledWindow"),
    ("/access", "/$defs/AccessRules"),
    ("/work", "/$defs/WorkDetails"),
    ("/customer/0", "/$defs/CustomerField"),
];

/// The JSON pointer of every object in a document, array items counted as their first.
fn object_pointers(v: &Value, pointer: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            out.insert(pointer.to_owned());
            for (k, sub) in map {
                object_pointers(sub, &format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for item in items {
                object_pointers(item, &format!("{pointer}/0"), out);
            }
        }
        _ => {}
    }
}

/// The property names a schema definition lists.
fn schema_properties(definition: &str) -> BTreeSet<String> {
    let s = schema();
    let props = s.pointer(&format!("{definition}/properties")).and_then(Value::as_object);
    props.unwrap_or_else(|| panic!("schema: no properties at {definition:?}")).keys().cloned().collect()
}

/// The strings of an `enum` in the schema.
fn enum_strings(pointer: &str) -> Vec<String> {
    schema()
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("schema: no enum at {pointer:?}"))
        .iter()
        .map(|s| s.as_str().expect("enum values are strings").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The example.

#[test]
fn example_parses_and_validates() {
    let sheet = JobSheet::from_json(EXAMPLE.as_bytes()).expect("the documented example must be accepted");
    sheet.validate().expect("validate");
    assert_eq!(sheet.format, SHEET_FORMAT);
    assert_eq!(sheet.version, 1);
    assert!(!sheet.job_id.is_nil());
    assert!(sheet.window.start.to_rfc3339().starts_with("2030-"), "the example must not depend on today's date");

    let policy = |name: &str| {
        let f = sheet.customer.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no field {name}"));
        (f.kind, f.reveal_in.clone())
    };
    let travel = vec![JobState::EnRoute, JobState::OnSite];
    assert_eq!(policy("customer_name"), (FieldKind::Name, travel.clone()));
    assert_eq!(policy("address"), (FieldKind::Address, travel.clone()));
    assert_eq!(policy("phone"), (FieldKind::Phone, travel.clone()));
    assert_eq!(policy("relay_phone"), (FieldKind::RelayPhone, travel.clone()));
    assert_eq!(policy("floor"), (FieldKind::Floor, travel));
    assert_eq!(policy("door_code"), (FieldKind::DoorCode, vec![JobState::OnSite]));
    assert_eq!(policy("note"), (FieldKind::Note, vec![JobState::OnSite]));

    let w = sheet.access_window();
    assert_eq!(w.opens_at, sheet.window.start - Duration::minutes(60));
    assert_eq!(w.closes_at, sheet.window.end + Duration::minutes(120));
    assert!(w.hard_expiry >= w.closes_at);
}

#[test]
fn example_round_trips_through_the_model() {
    // Serializing the parsed sheet gives back the example: the model neither drops, renames nor
    // adds a key, and writes timestamps the way the example does.
    let sheet = JobSheet::from_json(EXAMPLE.as_bytes()).expect("example");
    assert_eq!(serde_json::to_value(&sheet).expect("serialize"), example());
}

#[test]
fn debug_output_of_a_sheet_holds_no_customer_value() {
    let sheet = JobSheet::from_json(EXAMPLE.as_bytes()).expect("example");
    for shown in [format!("{sheet:?}"), format!("{sheet:#?}")] {
        assert_no_secret("Debug of the parsed example", &shown);
        assert!(
            shown.contains("door_code") && shown.contains("WO-2026-000123"),
            "Debug should still show non-personal data"
        );
    }
    for f in &sheet.customer {
        assert_no_secret("Debug of a customer field", &format!("{f:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The schema against the model.

#[test]
fn schema_is_draft_2020_12_json() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(s["type"], "object");
    assert!(jsonschema::meta::is_valid(&s), "the schema does not conform to its meta-schema");
    assert!(schema_accepts(&example()), "the example does not conform to the schema");
}

#[test]
fn schema_and_example_name_the_same_keys() {
    let ex = example();
    let mut in_example = BTreeSet::new();
    object_pointers(&ex, "", &mut in_example);
    assert_eq!(in_example, OBJECTS.iter().map(|(p, _)| p.to_string()).collect::<BTreeSet<_>>());
    for (pointer, definition) in OBJECTS {
        let keys: BTreeSet<String> =
            ex.pointer(pointer).and_then(Value::as_object).expect("object in example").keys().cloned().collect();
        assert_eq!(schema_properties(definition), keys, "{pointer:?}: the schema and the example differ");
        // The model denies unknown fields, so the schema must too.
        let extra = with(|v| {
            v.pointer_mut(pointer).and_then(Value::as_object_mut).expect("object").insert("extra".into(), json!(1));
        });
        assert!(!schema_accepts(&extra), "{pointer:?}: the schema allows an unknown key");
        // And it must be an object, like the model's struct.
        let not_an_object = with(|v| *v.pointer_mut(pointer).expect("object") = json!(["not", "an", "object"]));
        assert!(!schema_accepts(&not_an_object), "{pointer:?}: the schema allows a non-object");
    }
}

#[test]
fn schema_required_keys_match_the_model() {
    // For every object: removing a key is refused by the schema exactly when the model refuses
    // it, so the schema's `required` lists are exactly the model's.
    for (pointer, _) in OBJECTS {
        let keys: Vec<String> =
            example().pointer(pointer).and_then(Value::as_object).expect("object").keys().cloned().collect();
        for key in keys {
            let case = format!("{pointer}/{key} missing");
            let v = with(|v| {
                v.pointer_mut(pointer).and_then(Value::as_object_mut).expect("object in example").remove(&key);
            });
            if parse(&v).is_ok() {
                assert_accepted(&case, &v);
            } else {
                assert_rejected(&case, &to_bytes(&v));
                assert!(!schema_accepts(&v), "{case}: the model requires the key, the schema does not");
            }
        }
    }
}

#[test]
fn schema_field_kinds_are_the_models() {
    let in_schema = enum_strings("/$defs/FieldKind/enum");
    let in_model: Vec<String> = ALL_KINDS
        .iter()
        .map(|k| {
            let v = serde_json::to_value(k).expect("serialize kind");
            assert_eq!(v, Value::String(k.as_str().to_owned()), "as_str and serde disagree for {k:?}");
            v.as_str().expect("kind serializes as a string").to_owned()
        })
        .collect();
    assert_eq!(in_schema, in_model);
    for kind in &in_model {
        assert_accepted(&format!("kind {kind}"), &with(|v| v["customer"][0]["kind"] = json!(kind)));
    }
    for kind in ["fax", "relay_phone", "Name"] {
        assert!(!schema_accepts(&with(|v| v["customer"][0]["kind"] = json!(kind))), "kind {kind}");
    }
}

#[test]
fn schema_reveal_states_are_the_models_non_terminal_states() {
    let in_schema = enum_strings("/$defs/RevealState/enum");
    let in_model: Vec<String> = JobState::ALL
        .into_iter()
        .filter(|s| !s.is_terminal())
        .map(|s| serde_json::to_value(s).expect("serialize state").as_str().expect("string").to_owned())
        .collect();
    assert_eq!(in_schema, in_model);
    for state in &in_model {
        assert_accepted(&format!("reveal_in [{state}]"), &with(|v| v["customer"][0]["reveal_in"] = json!([state])));
    }
    for state in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
        let v = with(|v| v["customer"][0]["reveal_in"] = json!(["on-site", state]));
        assert!(!schema_accepts(&v), "reveal_in with terminal state {state}");
    }
}

/// Each bound of the schema is the model's constant: the schema accepts the value at the bound
/// and refuses the one just past it (the model's side is in `documented_limits_are_inclusive`
/// and the rejection cases).
#[test]
fn schema_bounds_are_the_models_constants() {
    let (start, end) = (ts(&example()["window"]["start"]), ts(&example()["window"]["end"]));
    let bounds: Vec<(&str, Value, Value)> = vec![
        ("format", json!(SHEET_FORMAT), json!("jobseal.sheet.v2")),
        ("version", json!(1), json!(0)),
        ("version", json!(i64::MAX), json!(1u64 << 63)),
        ("open_before_minutes", json!(0), json!(-1)),
        ("open_before_minutes", json!(MAX_MARGIN_MINUTES), json!(MAX_MARGIN_MINUTES + 1)),
        ("open_before_minutes", json!(30), json!(30.5)),
        ("close_after_minutes", json!(0), json!(-1)),
        ("close_after_minutes", json!(MAX_MARGIN_MINUTES), json!(MAX_MARGIN_MINUTES + 1)),
        ("close_after_minutes", json!(30), json!("30")),
        ("customer", json!(1), json!(0)),
        ("customer", json!(MAX_FIELDS), json!(MAX_FIELDS + 1)),
        ("value", json!("x"), json!("")),
        ("value", json!("a".repeat(MAX_FIELD_BYTES)), json!("a".repeat(MAX_FIELD_BYTES + 1))),
        ("name", json!("a".repeat(64)), json!("a".repeat(65))),
        ("name", json!("door_code_2"), json!("Door_code")),
        ("name", json!("a"), json!("2door")),
        ("name", json!("a"), json!("door-code")),
        ("name", json!("a"), json!("")),
        ("reveal_in", json!(["on-site"]), json!([])),
        ("job_id", json!("4f1c2b8e-7d3a-4c59-9e21-6a0b5d8f3c17"), json!("WO-2026-000123")),
        ("job_id", json!("4f1c2b8e-7d3a-4c59-9e21-6a0b5d8f3c17"), json!("00000000-0000-0000-0000-000000000000")),
        ("start", json!("2030-06-12T08:00:00+02:00"), json!("tomorrow morning")),
        ("end", rfc3339(end), json!("2030-06-12 10:00")),
        ("hard_expiry", rfc3339(start + Duration::days(1)), json!("2030-06-13")),
    ];
    for (what, at_bound, past_it) in bounds {
        let set = |value: &Value| {
            with(|v| match what {
                "open_before_minutes" | "close_after_minutes" | "hard_expiry" => v["access"][what] = value.clone(),
                "start" | "end" => v["window"][what] = value.clone(),
                "value" | "name" | "reveal_in" => v["customer"][0][what] = value.clone(),
                "customer" => {
                    let n = value.as_u64().expect("a count") as usize;
                    v["customer"] = Value::Array((0..n).map(|i| field(&format!("f{i}"))).collect());
                }
                _ => v[what] = value.clone(),
            })
        };
        assert!(schema_accepts(&set(&at_bound)), "{what} = {at_bound} should be valid");
        assert!(!schema_accepts(&set(&past_it)), "{what} = {past_it} should be invalid");
    }
    let description = schema()["description"].as_str().expect("description").to_owned();
    assert!(description.contains(&format!("{MAX_SPAN_DAYS} days")));
}

/// The documented examples and the fuzzer's seed sheets, against the schema and the model. Each
/// seed is listed with what it is meant to be, so that a new one has to be classified.
#[test]
fn documented_examples_and_fuzz_seeds_validate_as_meant() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // (schema valid, model valid, why)
    let seeds: [(&str, bool, bool, &str); 6] = [
        ("example.json", true, true, "the documented example"),
        ("minimal-v2.json", true, true, "one customer field, version 2"),
        ("other-job-offset-dates.json", true, true, "another job, timestamps with an offset, a 1 s slot"),
        (
            "expiry-before-close.json",
            true,
            false,
            "hard expiry before the window closes: not expressible in the schema",
        ),
        ("regression-window-end-overflow.json", false, false, "fuzzer find: a window end near year 262142"),
        ("regression-window-start-underflow.json", false, false, "fuzzer find: a window start at year -262143"),
    ];
    let files = |dir: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        v
    };
    let examples = files("docs/examples");
    assert!(!examples.is_empty(), "docs/examples holds no example");
    for path in &examples {
        let bytes = std::fs::read(path).expect("read example");
        let v: Value = serde_json::from_slice(&bytes).expect("the example is JSON");
        assert!(schema_accepts(&v), "{}: invalid against the schema", path.display());
        assert!(JobSheet::from_json(&bytes).is_ok(), "{}: refused by the model", path.display());
    }
    let corpus = files("fuzz/corpus/sheet");
    let names: Vec<String> =
        corpus.iter().map(|p| p.file_name().expect("name").to_string_lossy().into_owned()).collect();
    assert_eq!(names, seeds.iter().map(|s| s.0.to_owned()).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>());
    for (name, schema_valid, model_valid, why) in seeds {
        let bytes = std::fs::read(root.join("fuzz/corpus/sheet").join(name)).expect("read seed");
        let v: Value = serde_json::from_slice(&bytes).expect("the seed is JSON");
        assert_eq!(schema_accepts(&v), schema_valid, "{name} ({why}): schema");
        match JobSheet::from_json(&bytes) {
            Ok(_) => assert!(model_valid, "{name} ({why}): accepted by the model"),
            Err(e) => {
                assert!(!model_valid, "{name} ({why}): refused by the model: {e}");
                assert!(matches!(e, Error::InvalidSheet(_)), "{name}: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Limits that are accepted, so that the documented bounds are exact.

#[test]
fn documented_limits_are_inclusive() {
    let (opens, closes) = example_window();
    let start = ts(&example()["window"]["start"]);
    let end = ts(&example()["window"]["end"]);

    assert_accepted("hard expiry exactly at close", &with(|v| v["access"]["hard_expiry"] = rfc3339(closes)));
    assert_accepted(
        "exactly 14 days from opening to hard expiry",
        &with(|v| v["access"]["hard_expiry"] = rfc3339(opens + Duration::days(MAX_SPAN_DAYS))),
    );
    assert_accepted(
        "margins of 0 minutes",
        &with(|v| {
            v["access"]["open_before_minutes"] = json!(0);
            v["access"]["close_after_minutes"] = json!(0);
        }),
    );
    assert_accepted(
        "margins of 1440 minutes",
        &with(|v| {
            v["access"]["open_before_minutes"] = json!(MAX_MARGIN_MINUTES);
            v["access"]["close_after_minutes"] = json!(MAX_MARGIN_MINUTES);
            v["access"]["hard_expiry"] = rfc3339(end + Duration::minutes(MAX_MARGIN_MINUTES.into()));
        }),
    );
    assert_accepted("a one-second slot", &with(|v| v["window"]["end"] = rfc3339(start + Duration::seconds(1))));
    assert_accepted("version 2^63-1", &with(|v| v["version"] = json!(i64::MAX)));
    assert_accepted(
        "32 customer fields",
        &with(|v| v["customer"] = Value::Array((0..MAX_FIELDS).map(|i| field(&format!("f{i}"))).collect())),
    );
    for name in ["a", "a_1", "door_code_2", "a".repeat(64).as_str()] {
        assert_accepted(&format!("field name {name}"), &with(|v| v["customer"][0]["name"] = json!(name)));
    }
    assert_accepted("a 1-byte value", &with(|v| v["customer"][0]["value"] = json!("x")));
    assert_accepted("a 4096-byte value", &with(|v| v["customer"][0]["value"] = json!("a".repeat(MAX_FIELD_BYTES))));
    assert_accepted(
        "a 4096-byte value of 2-byte characters",
        &with(|v| v["customer"][0]["value"] = json!("é".repeat(MAX_FIELD_BYTES / 2))),
    );
    assert_accepted("a value with line breaks", &with(|v| v["customer"][0]["value"] = json!("line 1\nline 2")));
    assert_accepted("an empty site_area", &with(|v| v["site_area"] = json!("")));
    assert_accepted(
        "a state listed twice in reveal_in",
        &with(|v| v["customer"][0]["reveal_in"] = json!(["on-site", "on-site"])),
    );
    assert_accepted("a 64-character work_order", &with(|v| v["work_order"] = json!("W".repeat(64))));
    assert_accepted(
        "50 tasks of 200 characters",
        &with(|v| v["work"]["tasks"] = Value::Array(vec![json!("t".repeat(200)); 50])),
    );
    assert_accepted(
        "an offset timestamp",
        &with(|v| {
            v["window"]["start"] =
                json!(start.with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap()).to_rfc3339())
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed and incomplete sheets.

/// A rejection case: a name, the sheet as JSON, and a word the error must contain (the field it
/// names; underscores and spaces compare equal), if any. Parse-level errors give a position only.
struct Case {
    name: String,
    sheet: Value,
    names: Option<&'static str>,
}

fn case(name: &str, names: Option<&'static str>, change: impl FnOnce(&mut Value)) -> Case {
    Case { name: name.to_owned(), sheet: with(change), names }
}

fn rejection_cases() -> Vec<Case> {
    let (opens, closes) = example_window();
    let start = ts(&example()["window"]["start"]);
    let mut cases = vec![
        case("wrong format tag", Some("format"), |v| v["format"] = json!("jobseal.sheet.v2")),
        case("empty format tag", Some("format"), |v| v["format"] = json!("")),
        case("version 0", Some("version"), |v| v["version"] = json!(0)),
        case("version 2^63", Some("version"), |v| v["version"] = json!(1u64 << 63)),
        case("negative version", None, |v| v["version"] = json!(-1)),
        case("fractional version", None, |v| v["version"] = json!(1.5)),
        case("version 1.0", None, |v| v["version"] = json!(1.0)),
        case("version as a string", None, |v| v["version"] = json!("1")),
        case("nil UUID", Some("job_id"), |v| v["job_id"] = json!("00000000-0000-0000-0000-000000000000")),
        case("job_id not a UUID", None, |v| v["job_id"] = json!("WO-2026-000123")),
        case("end before start", Some("window.end"), |v| v["window"]["end"] = rfc3339(start - Duration::minutes(1))),
        case("end equal to start", Some("window.end"), |v| v["window"]["end"] = v["window"]["start"].clone()),
        case("start not a timestamp", None, |v| v["window"]["start"] = json!("tomorrow morning")),
        case("hard expiry before close", Some("hard_expiry"), |v| {
            v["access"]["hard_expiry"] = rfc3339(closes - Duration::seconds(1))
        }),
        case("span over 14 days", Some("access.hard_expiry"), |v| {
            v["access"]["hard_expiry"] = rfc3339(opens + Duration::days(MAX_SPAN_DAYS) + Duration::seconds(1))
        }),
        case("open_before_minutes over 1440", Some("open_before_minutes"), |v| {
            v["access"]["open_before_minutes"] = json!(MAX_MARGIN_MINUTES + 1)
        }),
        case("close_after_minutes over 1440", Some("close_after_minutes"), |v| {
            v["access"]["close_after_minutes"] = json!(MAX_MARGIN_MINUTES + 1)
        }),
        case("negative margin", None, |v| v["access"]["open_before_minutes"] = json!(-1)),
        case("empty customer list", Some("customer"), |v| v["customer"] = json!([])),
        case("33 customer fields", Some("customer"), |v| {
            v["customer"] = Value::Array((0..=MAX_FIELDS).map(|i| field(&format!("f{i}"))).collect())
        }),
        case("duplicate field name", Some("phone"), |v| v["customer"][1]["name"] = json!("phone")),
        case("empty value", Some("customer_name"), |v| v["customer"][0]["value"] = json!("")),
        case("4097-byte value", Some("customer_name"), |v| {
            v["customer"][0]["value"] = json!("a".repeat(MAX_FIELD_BYTES + 1))
        }),
        case("4098-byte value of 2049 characters", Some("customer_name"), |v| {
            v["customer"][0]["value"] = json!("é".repeat(MAX_FIELD_BYTES / 2 + 1))
        }),
        case("value not a string", None, |v| v["customer"][0]["value"] = json!(33600000000u64)),
        case("empty reveal_in", Some("reveal_in"), |v| v["customer"][0]["reveal_in"] = json!([])),
        case("unknown state in reveal_in", None, |v| v["customer"][0]["reveal_in"] = json!(["parked"])),
        case("reveal_in not a list", None, |v| v["customer"][0]["reveal_in"] = json!("on-site")),
        case("unknown kind", None, |v| v["customer"][0]["kind"] = json!("fax")),
        case("kind in snake case", None, |v| v["customer"][1]["kind"] = json!("relay_phone")),
        case("kind capitalised", None, |v| v["customer"][0]["kind"] = json!("Name")),
        case("control character in work_order", Some("work_order"), |v| v["work_order"] = json!("WO-2026-000123\u{7}")),
        case("line break in work_order", Some("work_order"), |v| v["work_order"] = json!("WO-2026\n000123")),
        case("empty work_order", Some("work_order"), |v| v["work_order"] = json!("")),
        case("65-character work_order", Some("work_order"), |v| v["work_order"] = json!("W".repeat(65))),
        case("control character in site_area", Some("site_area"), |v| v["site_area"] = json!("Lyon\t3e")),
        case("129-character site_area", Some("site_area"), |v| v["site_area"] = json!("L".repeat(129))),
        case("empty summary", Some("summary"), |v| v["work"]["summary"] = json!("")),
        case("501-character summary", Some("summary"), |v| v["work"]["summary"] = json!("s".repeat(501))),
        case("control character in a task", Some("tasks"), |v| v["work"]["tasks"][0] = json!("step\u{1b}[31m")),
        case("empty equipment entry", Some("equipment"), |v| v["work"]["equipment"][0] = json!("")),
        case("201-character task", Some("tasks"), |v| v["work"]["tasks"][0] = json!("t".repeat(201))),
        case("51 tasks", Some("tasks"), |v| v["work"]["tasks"] = Value::Array(vec![json!("t"); 51])),
        case("51 equipment entries", Some("equipment"), |v| {
            v["work"]["equipment"] = Value::Array(vec![json!("e"); 51])
        }),
        // A customer value used as a key: serde would quote it in its own message.
        case("customer value as an unknown key", None, |v| {
            v["customer"][0].as_object_mut().expect("field").insert("+33 6 00 00 00 00".into(), json!("Test Customer"));
        }),
        case("customer value as a kind", None, |v| v["customer"][0]["kind"] = json!("Test Customer")),
        case("customer value as a state", None, |v| v["customer"][0]["reveal_in"] = json!(["0000A"])),
        case("customer value as a job_id", None, |v| v["job_id"] = json!("+33 6 00 00 00 00")),
        case("sheet is an array", None, |v| *v = json!([v.clone()])),
    ];
    for bad in ["Phone", "1phone", "door code", "door-code", "_door", "", "é", "a".repeat(65).as_str()] {
        cases.push(case(&format!("field name {bad:?}"), Some("customer[0].name"), |v| {
            v["customer"][0]["name"] = json!(bad)
        }));
    }
    for state in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
        cases.push(case(&format!("terminal state {state} in reveal_in"), Some("door_code"), |v| {
            v["customer"][5]["reveal_in"] = json!(["on-site", state])
        }));
    }
    // An unknown key in every object of the sheet.
    for pointer in ["", "/window", "/access", "/work", "/customer/0"] {
        cases.push(case(&format!("unknown key in {pointer:?}"), None, |v| {
            v.pointer_mut(pointer).and_then(Value::as_object_mut).expect("object").insert("extra".into(), json!(1));
        }));
    }
    cases
}

#[test]
fn malformed_sheets_are_rejected_without_leaking_values() {
    for c in rejection_cases() {
        let shown = assert_rejected(&c.name, &to_bytes(&c.sheet));
        if let Some(word) = c.names {
            let norm = |s: &str| s.replace('_', " ");
            assert!(norm(&shown).contains(&norm(word)), "case {:?}: the error should name {word}: {shown}", c.name);
        }
    }
}

#[test]
fn non_json_and_truncated_input_is_rejected() {
    for (name, bytes) in [
        ("empty input", &b""[..]),
        ("not JSON at all", &b"not a job sheet"[..]),
        ("binary", &[0xff, 0xfe, 0x00, 0x01][..]),
        ("JSON null", &b"null"[..]),
        ("trailing garbage", format!("{} x", EXAMPLE.trim_end()).as_bytes()),
        ("a key given twice", format!("{{\"version\": 2, {}", &EXAMPLE.trim_start()[1..]).as_bytes()),
    ] {
        assert_rejected(name, bytes);
    }
    // Every proper prefix of the example, cut anywhere (including inside a customer value).
    let doc = EXAMPLE.trim_end().as_bytes();
    for cut in 0..doc.len() {
        assert_rejected(&format!("example truncated to {cut} bytes"), &doc[..cut]);
    }
}

/// Found by the fuzzer (fuzz/corpus/sheet/regression-*): a window at the edge of the time range
/// made the margin arithmetic overflow and panic. It must be a typed refusal.
#[test]
fn a_window_at_the_edge_of_time_is_refused_without_panic() {
    for (start, end) in
        [("-262143-01-01T00:00:00Z", "2030-06-12T10:00:00Z"), ("2030-06-12T08:00:00Z", "+262142-12-31T23:59:59Z")]
    {
        let v = with(|v| {
            v["window"]["start"] = json!(start);
            v["window"]["end"] = json!(end);
        });
        assert_rejected("window at the edge of time", &to_bytes(&v));
    }
}
