//! The testkit itself: every suite trusts its sheet builder to produce what it was asked for and
//! its dispatch server to keep its state across a restart and to go away when dropped, so those
//! promises are checked here once rather than assumed everywhere.

use jobseal::{FieldKind, JobState};
use jobseal_testkit::child::rerun_test;
use jobseal_testkit::device::vault_at;
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::{
    at, default_fields, Sheet, CLOSES, EXPIRY, OPENS, SHEET_FORMAT, SLOT_END, SLOT_START, VALUES,
};
use uuid::Uuid;

fn states(s: &[JobState]) -> Vec<&'static str> {
    s.iter().map(|s| s.as_str()).collect()
}

#[test]
fn the_default_sheet_is_the_documented_fixture() {
    let job = Uuid::new_v4();
    let sheet = Sheet::new(job).build();
    assert_eq!((sheet.format.as_str(), sheet.job_id, sheet.version), (SHEET_FORMAT, job, 1));
    assert_eq!((sheet.window.start, sheet.window.end), (at(SLOT_START), at(SLOT_END)));
    let window = sheet.access_window();
    assert_eq!((window.opens_at, window.closes_at), (at(OPENS), at(CLOSES)));
    assert_eq!(sheet.access.hard_expiry, at(EXPIRY));
    assert_eq!(sheet.customer.len(), 5);
    for ((got, want), value) in sheet.customer.iter().zip(default_fields()).zip(VALUES) {
        assert_eq!(got.name, want.name);
        assert_eq!(got.kind.as_str(), want.kind);
        assert_eq!(got.value.expose(), value);
        assert_eq!(states(&got.reveal_in), want.reveal_in);
    }
}

#[test]
fn every_setter_reaches_the_parsed_sheet() {
    let (first, job) = (Uuid::new_v4(), Uuid::new_v4());
    let sheet = Sheet::new(first)
        .job_id(job)
        .version(7)
        .work_order("WO-KIT-0007")
        .window(at(0), at(60))
        .access(10, 20)
        .expiry(at(600))
        .site_area("Testville")
        .work("Check the kit", &["one", "two"], &[])
        .only(&["phone", "door_code"])
        .value("phone", "+44 7700 900999")
        .kind("phone", "phone")
        .reveal_in("door_code", &["en-route", "on-site"]);
    assert_eq!(sheet.id(), job);
    let parsed = sheet.build();
    assert_eq!((parsed.job_id, parsed.version, parsed.work_order.as_str()), (job, 7, "WO-KIT-0007"));
    assert_eq!((parsed.window.start, parsed.window.end), (at(0), at(60)));
    assert_eq!((parsed.access.open_before_minutes, parsed.access.close_after_minutes), (10, 20));
    assert_eq!(parsed.access.hard_expiry, at(600));
    assert_eq!(parsed.site_area, "Testville");
    assert_eq!(
        (parsed.work.summary.as_str(), parsed.work.tasks.len(), parsed.work.equipment.len()),
        ("Check the kit", 2, 0)
    );
    let names: Vec<&str> = parsed.customer.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["phone", "door_code"]);
    assert_eq!((parsed.customer[0].kind, parsed.customer[0].value.expose()), (FieldKind::Phone, "+44 7700 900999"));
    assert_eq!(states(&parsed.customer[1].reveal_in), ["en-route", "on-site"]);

    let values = Sheet::new(job).values(["a", "b", "c", "d", "e"]).build();
    let got: Vec<&str> = values.customer.iter().map(|f| f.value.expose()).collect();
    assert_eq!(got, ["a", "b", "c", "d", "e"]);
}

#[test]
#[should_panic(expected = "has no field")]
fn a_field_the_sheet_does_not_have_is_a_test_bug() {
    let _ = Sheet::new(Uuid::new_v4()).value("door-code", "0000");
}

#[test]
fn a_child_test_is_named_with_its_module() {
    let cmd = rerun_test(module_path!(), "some_child");
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    assert_eq!(args[..2], ["--exact", "testkit::some_child"]);
    assert!(args.iter().any(|a| a == "--ignored"));
}

#[test]
fn dispatch_keeps_its_state_across_a_restart_and_is_gone_once_dropped() {
    let mut dispatch = TestDispatch::start();
    let device = vault_at(200);
    let bundle = dispatch.enrol(&device.vault, 3);
    let job = Uuid::new_v4();
    dispatch.operator().create_job(bundle.device_id, &Sheet::new(job).json());
    let (key, before) = (dispatch.key(), dispatch.operator().job(job));

    dispatch.restart();
    assert_eq!(dispatch.key(), key, "a restart keeps dispatch's key");
    assert_eq!(dispatch.operator().job(job), before, "a restart keeps the jobs");
    assert_eq!(device.vault.sync(&dispatch.transport()).unwrap().received, [job]);

    let folder = dispatch.dir().to_path_buf();
    assert!(dispatch.db_path().starts_with(&folder) && dispatch.db_path().exists());
    // Dropping joins the server's thread, then removes the folder of its database.
    drop(dispatch);
    assert!(!folder.exists(), "the dispatch folder outlived the server");
}
