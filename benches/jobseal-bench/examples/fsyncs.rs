//! Counts the durable steps of each vault operation: run under `strace` by `benches/fsyncs.sh`,
//! which counts the `fsync`/`fdatasync` calls between the markers this program writes to stderr.
//!
//! Time varies with the disk and the load; the number of fsyncs does not, and it is what a
//! phone's flash pays for. The vault is the criterion benchmarks' (`benches/jobseal.rs`): enrolled
//! with 100 unused prekeys, 20 live jobs, the in-memory keystore (or the software `FileKeyStore`
//! for `close_file_keystore`), and each operation is repeated so that a step that happens only
//! sometimes shows as a fraction.

#[path = "../../common/workload.rs"]
mod workload;
#[path = "../../common/mem_keystore.rs"]
mod mem_keystore;

use jobseal::{JobSheet, JobState, ManualClock, Vault};
use mem_keystore::MemKeyStore;
use std::sync::Arc;
use uuid::Uuid;
use workload::*;

const ROUNDS: usize = 20;

fn mark(what: &str, op: &str) {
    // One write(2) per marker: strace prints it whole.
    eprint!("{}", format!("@@fsyncs {what} {op}\n"));
}

fn fresh_job(vault: &Vault) -> Uuid {
    let (id, json) = sheets(1).pop().unwrap();
    vault.ingest(&JobSheet::from_json(json.as_bytes()).unwrap()).unwrap();
    id
}

fn main() {
    let scratch = std::env::var_os("JOBSEAL_BENCH_SCRATCH").map(std::path::PathBuf::from).unwrap_or_else(|| "target/scratch".into());
    std::fs::create_dir_all(&scratch).unwrap();
    for file_keystore in [false, true] {
        let dir = tempfile::tempdir_in(&scratch).unwrap();
        let clock = Arc::new(ManualClock::new(NOW_RFC3339.parse().unwrap()));
        let vault = if file_keystore {
            jobseal_testkit::open_vault(dir.path(), clock).unwrap()
        } else {
            Vault::open(dir.path(), Arc::new(MemKeyStore::default()), clock).unwrap()
        };
        let (_, dispatch_pub) = jobseal::envelope::generate_keypair().unwrap();
        vault.enrol(dispatch_pub, 100).unwrap();
        for _ in 0..LIVE_JOBS {
            fresh_job(&vault);
        }
        let suffix = if file_keystore { "_file_keystore" } else { "" };
        for _ in 0..ROUNDS {
            let (id, json) = sheets(1).pop().unwrap();
            let sheet = JobSheet::from_json(json.as_bytes()).unwrap();
            mark("begin", &format!("ingest{suffix}"));
            vault.ingest(&sheet).unwrap();
            mark("end", &format!("ingest{suffix}"));
            mark("begin", &format!("advance{suffix}"));
            vault.advance(id, JobState::EnRoute).unwrap();
            mark("end", &format!("advance{suffix}"));
            vault.advance(id, JobState::OnSite).unwrap();
            mark("begin", &format!("reveal{suffix}"));
            vault.reveal(id).unwrap();
            mark("end", &format!("reveal{suffix}"));
            mark("begin", &format!("close{suffix}"));
            vault.close(id, "Installed the terminal; line active.").unwrap();
            mark("end", &format!("close{suffix}"));
        }
    }
}
