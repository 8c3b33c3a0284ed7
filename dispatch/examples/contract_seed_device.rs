//! Test helper of the contract test (`dispatch/contract/run-schemathesis.sh`), not a tool: it
//! enrols one fake device with a running dispatch server the way a real device does (an
//! operator-issued code, the core's own enrolment over HTTP), gives it a job with an obviously
//! fake sheet so that its syncs carry an envelope, and prints on stdout, one a line, the device's
//! token (so that schemathesis reaches the device endpoints past their 401), the device id and
//! the job id, and the id of a further unused enrolment code (so that it reaches the operator
//! views past their 404).
//!
//! Usage: `JOBSEAL_OPERATOR_TOKEN=... contract_seed_device http://127.0.0.1:PORT DIR` (the
//! operator token from the environment, never the command line; the vault lives in `DIR`).

use jobseal::HttpTransport;
use jobseal_testkit::device::open_vault_at;
use jobseal_testkit::operator::Operator;
use jobseal_testkit::sheet::Sheet;
use uuid::Uuid;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(base_url), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: contract_seed_device BASE_URL VAULT_DIR (operator token in JOBSEAL_OPERATOR_TOKEN)");
        std::process::exit(2);
    };
    let token = std::env::var("JOBSEAL_OPERATOR_TOKEN").expect("JOBSEAL_OPERATOR_TOKEN is set");
    let operator = Operator::new(&base_url, &token);
    let vault = open_vault_at(std::path::Path::new(&dir), 0).expect("a new vault opens");
    let code = operator.issue_code().code;
    let bundle =
        vault.enrol_with_dispatch(&HttpTransport::new(&base_url), None, 3, Some(&code)).expect("the device enrols");
    let job = operator.create_job(bundle.device_id, &Sheet::new(Uuid::new_v4()).json()).job_id;
    let device_token = vault.device_token_insecure_for_testing().expect("the vault reads").expect("enrolled");
    let spare_code = operator.issue_code().code_id;
    println!("{device_token}\n{}\n{job}\n{spare_code}", bundle.device_id);
}
