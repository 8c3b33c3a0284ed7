//! Failures of the command line and the exit codes they map to.
//!
//! The `jobseal` command is driven by scripts (provisioning, CI forensic checks) as much as by
//! people, so every class of failure has an exit code of its own and, under `--json`, a stable
//! machine-readable kind. A core error's exit code follows from its [`jobseal::ErrorKind`], the
//! classification the bindings and sync use too, and its `--json` kind is its
//! [`jobseal::Error::code`]. Messages are either the core's, which never carry a customer value
//! (G8), or written here from names, ids and paths only; keep it that way.

use std::fmt;
use std::io;

/// Exit codes, documented in `jobseal --help` and kept stable for scripts.
pub mod code {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// `scan` only: at least one needle was found.
    pub const FOUND: u8 = 1;
    /// Bad usage or bad input: unknown option, malformed sheet, bad UUID, state or time.
    pub const USAGE: u8 = 2;
    /// `audit --verify` only: the audit chain is broken.
    pub const AUDIT_INVALID: u8 = 3;
    /// No job with this id.
    pub const NOT_FOUND: u8 = 4;
    /// The policy refused access (a closed job, or no field visible on `job reveal`).
    pub const DENIED: u8 = 5;
    /// The state of the job or device forbids it: job closed, stale sheet version, illegal
    /// transition, a sealed sheet to a prekey this device no longer holds (and enrolment done
    /// twice or not yet).
    pub const CONFLICT: u8 = 6;
    /// Ciphertext or a sealed sheet was rejected: tampered, or addressed to another device.
    pub const TAMPERED: u8 = 7;
    /// The vault could not work: keystore, lock held by another process, storage, I/O, integrity,
    /// the system's random number generator (and, in `demo`, dispatch unreachable or refusing).
    pub const INTERNAL: u8 = 8;
}

/// Everything a command can fail with.
#[derive(Debug)]
pub enum CliError {
    /// The command line itself is wrong (missing data directory, no vault there yet, ...).
    Usage(String),
    /// An argument or input file is malformed or unreadable.
    Input(String),
    /// The vault refused or failed.
    Core(jobseal::Error),
    /// Writing the output failed.
    Output(io::Error),
    /// `jobseal demo` could not run its day (the dispatch server or an operator call failed).
    Demo(String),
}

impl CliError {
    /// The exit code for this failure (see [`code`]).
    pub fn exit_code(&self) -> u8 {
        self.classify().1
    }

    /// The machine-readable kind shown under `--json`.
    pub fn kind(&self) -> &'static str {
        self.classify().0
    }

    fn classify(&self) -> (&'static str, u8) {
        match self {
            CliError::Usage(_) => ("usage", code::USAGE),
            CliError::Input(_) => ("invalid-input", code::USAGE),
            CliError::Output(_) => ("io", code::INTERNAL),
            CliError::Demo(_) => ("demo", code::INTERNAL),
            CliError::Core(e) => (e.code(), exit_code_of(e.kind())),
        }
    }
}

/// The exit code of a core error of this kind.
pub fn exit_code_of(kind: jobseal::ErrorKind) -> u8 {
    use jobseal::ErrorKind as K;
    match kind {
        K::InvalidInput => code::USAGE,
        K::NotFound => code::NOT_FOUND,
        K::AccessDenied => code::DENIED,
        K::Conflict | K::Enrolment => code::CONFLICT,
        K::Tampered => code::TAMPERED,
        K::Network | K::Dispatch | K::KeyStore | K::Locked | K::Storage | K::Integrity | K::Internal => code::INTERNAL,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Input(m) | CliError::Demo(m) => f.write_str(m),
            CliError::Core(e) => write!(f, "{e}"),
            CliError::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

impl From<jobseal::Error> for CliError {
    fn from(e: jobseal::Error) -> Self {
        CliError::Core(e)
    }
}

impl From<jobseal::ProtocolError> for CliError {
    fn from(e: jobseal::ProtocolError) -> Self {
        CliError::Core(e.into())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Output(e)
    }
}

impl From<jobseal::KeyStoreError> for CliError {
    fn from(e: jobseal::KeyStoreError) -> Self {
        CliError::Core(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_documented_codes() {
        let id = uuid::Uuid::nil();
        let cases = [
            (jobseal::Error::InvalidSheet("x".into()), code::USAGE),
            (jobseal::Error::JobNotFound(id), code::NOT_FOUND),
            (
                jobseal::Error::AccessDenied(jobseal::Denial::Shredded { state: jobseal::JobState::Completed }),
                code::DENIED,
            ),
            (jobseal::Error::JobClosed { job_id: id, state: jobseal::JobState::Cancelled }, code::CONFLICT),
            (jobseal::Error::Tampered("x"), code::TAMPERED),
            (jobseal::Error::Locked, code::INTERNAL),
        ];
        for (e, expected) in cases {
            assert_eq!(CliError::Core(e).exit_code(), expected);
        }
    }

    /// Every core error's `--json` kind and exit code, one row per variant. The kinds are the
    /// ones this table held before the core's classification was shared; one exit code changed:
    /// `prekey-unavailable` was 7 (tampered) while the bindings called it a conflict, and a sheet
    /// sealed to a spent prekey is not evidence of tampering, so it is now 6 like the bindings.
    #[test]
    fn every_core_error_has_its_documented_kind_and_exit_code() {
        let got: Vec<(&str, u8)> = jobseal::Error::one_of_each()
            .into_iter()
            .map(|e| {
                let e = CliError::Core(e);
                (e.kind(), e.exit_code())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("invalid-sheet", code::USAGE),
                ("invalid-input", code::USAGE),
                ("job-not-found", code::NOT_FOUND),
                ("access-denied", code::DENIED),
                ("illegal-transition", code::CONFLICT),
                ("job-closed", code::CONFLICT),
                ("stale-version", code::CONFLICT),
                ("tampered", code::TAMPERED),
                ("misaddressed", code::TAMPERED),
                ("prekey-unavailable", code::CONFLICT),
                ("enrolment", code::CONFLICT),
                ("network", code::INTERNAL),
                ("dispatch", code::INTERNAL),
                ("keystore", code::INTERNAL),
                ("locked", code::INTERNAL),
                ("integrity", code::INTERNAL),
                ("storage", code::INTERNAL),
                ("io", code::INTERNAL),
                ("randomness", code::INTERNAL),
            ]
        );
    }

    /// The bindings' error, the exit code and sync's refusal of an offered sheet all follow from
    /// the core's `ErrorKind`: walked over every core error (a new variant joins the walk the day
    /// it is added, see `Error::one_of_each`), the three agree with this one table, and with each
    /// other wherever they overlap.
    #[test]
    fn bindings_exit_codes_and_sync_refusals_agree_on_every_core_error() {
        use jobseal::ErrorKind as K;
        use jobseal_ffi::JobsealError;
        use std::collections::HashMap;

        /// Per kind: the bindings' variant, the exit code, and whether sync refuses the sheet.
        fn expected(kind: K) -> (&'static str, u8, bool) {
            match kind {
                K::InvalidInput => ("InvalidInput", code::USAGE, true),
                K::NotFound => ("NotFound", code::NOT_FOUND, false),
                K::AccessDenied => ("AccessDenied", code::DENIED, false),
                K::Conflict => ("Conflict", code::CONFLICT, true),
                K::Tampered => ("Tampered", code::TAMPERED, true),
                K::Enrolment => ("Enrolment", code::CONFLICT, false),
                K::Network => ("Network", code::INTERNAL, false),
                K::Dispatch => ("Dispatch", code::INTERNAL, false),
                K::KeyStore => ("KeyStore", code::INTERNAL, false),
                K::Locked => ("Storage", code::INTERNAL, false),
                K::Storage => ("Storage", code::INTERNAL, false),
                K::Integrity => ("Storage", code::INTERNAL, false),
                K::Internal => ("Internal", code::INTERNAL, false),
            }
        }

        let mut exit_of_ffi: HashMap<String, u8> = HashMap::new();
        let mut refused_of_ffi: HashMap<String, bool> = HashMap::new();
        let pairs = jobseal::Error::one_of_each().into_iter().zip(jobseal::Error::one_of_each());
        for (for_ffi, for_cli) in pairs {
            let (kind, name, refusal) = (for_cli.kind(), for_cli.code(), for_cli.refusal_code());
            let ffi = format!("{:?}", JobsealError::from(for_ffi));
            let ffi: String = ffi.chars().take_while(char::is_ascii_alphanumeric).collect();
            let cli = CliError::Core(for_cli);
            let got = (ffi.as_str(), cli.exit_code(), refusal.is_some());
            assert_eq!(got, expected(kind), "{name} (kind {kind})");
            // A refusal is reported to dispatch under the same name scripts see under --json.
            if let Some(reason) = refusal {
                assert_eq!(reason, cli.kind(), "{name}");
            }
            // Two errors the bindings put together get the same exit code and the same fate in sync.
            let exit = *exit_of_ffi.entry(ffi.clone()).or_insert(cli.exit_code());
            assert_eq!(exit, cli.exit_code(), "{name}: bindings variant {ffi} has two exit codes");
            let refused = *refused_of_ffi.entry(ffi.clone()).or_insert(refusal.is_some());
            assert_eq!(refused, refusal.is_some(), "{name}: bindings variant {ffi} is refused and not");
        }
    }
}
