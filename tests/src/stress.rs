//! Shared machinery of the crash-at-scale and concurrency stress suites (G3, G6, G7).
//!
//! Both suites drive a real device vault against a real dispatch server on loopback and then ask
//! the same question: did every event the device made durable reach dispatch exactly once? The
//! answer is a comparison of two independent records: the device's own hash-chained audit log
//! (each reveal, transition and shred, with its chain position) and what dispatch's operator view
//! says it received. This module holds that comparison, a seeded PRNG, the
//! append-only journal a killed child leaves for its parent, and the value-free name of an error
//! both suites report. The operator client is `jobseal_testkit::Operator`.

use jobseal::{AuditKind, Error, JobState, Vault};
use jobseal_testkit::Operator;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

/// A seeded PRNG (fastrand's wyrand), shared so both suites reproduce a run from its seed the
/// same way.
#[derive(Clone, Debug)]
pub struct Rng(fastrand::Rng);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(fastrand::Rng::with_seed(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.0.usize(..n)
        }
    }
}

/// The error's variant name only (`Network`, `AccessDenied`, ...): messages are value-free, but
/// a variant name is all a failure report needs, and it can never carry a customer value.
pub fn error_class(e: &Error) -> String {
    format!("{e:?}").chars().take_while(|c| c.is_alphanumeric()).collect()
}

/// The append-only record a child keeps of what it started and what returned, one line per fact:
/// `<op> <job or -> <start|done>`. Each line is one `write` on an `O_APPEND` file, so a SIGKILL
/// leaves whole lines (a torn last line is ignored by [`read_journal`]).
pub struct Journal(std::fs::File);

impl Journal {
    /// Opens (creating) the journal at `path`.
    pub fn open(path: &Path) -> Journal {
        Journal(std::fs::OpenOptions::new().create(true).append(true).open(path).expect("journal opens"))
    }

    /// Appends one fact.
    pub fn record(&mut self, op: &str, job: Option<Uuid>, phase: &str) {
        let job = job.map_or_else(|| "-".to_owned(), |j| j.to_string());
        self.0.write_all(format!("{op} {job} {phase}\n").as_bytes()).expect("journal write");
    }
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The operation.
    pub op: String,
    /// The job, if any.
    pub job: Option<Uuid>,
    /// `start` or `done`.
    pub phase: String,
}

/// Every whole line of a journal.
pub fn read_journal(path: &Path) -> Vec<Fact> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let (op, job, phase) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Fact { op: op.to_owned(), job: job.parse().ok(), phase: phase.to_owned() })
        })
        .collect()
}

/// What [`check_exactly_once`] compared.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    /// Jobs compared.
    pub jobs: usize,
    /// Audit events found at dispatch exactly once.
    pub audit_events: usize,
    /// State changes found at dispatch exactly once.
    pub state_changes: usize,
    /// Completion reports found at dispatch.
    pub reports: usize,
    /// Verified shred receipts found at dispatch.
    pub receipts: usize,
}

/// After a final sync that emptied the outbox: for each job, the device's audit events are at
/// dispatch exactly once (same chain positions, no more, no fewer), the state history at dispatch
/// is exactly the device's transitions in order, a closed job's report is there with the text the
/// device stored, each shredded job has exactly one verified receipt from this device, and the
/// device's chain is intact at dispatch. Returns the counts, or what differed (no values).
pub fn check_exactly_once(vault: &Vault, op: &Operator, device: Uuid, jobs: &[Uuid]) -> Result<Delivery, String> {
    let mut d = Delivery::default();
    for &job in jobs {
        let local = vault.audit_log(Some(job)).map_err(|e| format!("audit log: {e}"))?;
        let view = op.job(job);
        let mut ours: Vec<u64> = local.iter().map(|e| e.seq).collect();
        ours.sort_unstable();
        let mut theirs: Vec<u64> = view.audit_events.iter().filter(|e| e.device_id == device).map(|e| e.seq).collect();
        theirs.sort_unstable();
        if ours != theirs {
            return Err(format!(
                "job {job}: audit events at dispatch differ: device {} vs dispatch {}",
                ours.len(),
                theirs.len()
            ));
        }
        d.audit_events += ours.len();
        let held = local.iter().any(|e| matches!(e.kind, AuditKind::Ingested | AuditKind::Updated));
        let expected: Vec<JobState> = local
            .iter()
            .filter(|e| e.kind == AuditKind::Transition || (held && e.kind == AuditKind::Shredded))
            .filter_map(|e| e.state)
            .collect();
        let history: Vec<JobState> = view.history.iter().filter(|h| h.device_id == device).map(|h| h.to).collect();
        if history != expected {
            return Err(format!("job {job}: state history at dispatch {history:?}, device made {expected:?}"));
        }
        d.state_changes += history.len();
        let info = vault.job(job).map_err(|e| format!("job {job}: {e}"))?;
        if let Some(text) = &info.report {
            match &view.report {
                Some(r) if &r.text == text => d.reports += 1,
                Some(_) => return Err(format!("job {job}: the report at dispatch differs")),
                None => return Err(format!("job {job}: the report never reached dispatch")),
            }
        }
        if info.shredded_at.is_some() {
            let ours: Vec<_> = view.receipts.iter().filter(|r| r.receipt.device_id == device).collect();
            if ours.len() != 1 || !ours[0].verified {
                return Err(format!("job {job}: {} receipts from the device, want exactly one verified", ours.len()));
            }
            d.receipts += 1;
        }
        if !view.audit_chain.intact {
            return Err(format!("job {job}: the device's audit chain is broken at dispatch"));
        }
        d.jobs += 1;
    }
    Ok(d)
}
