//! Helpers for the end-to-end suites: raw file scanning as an attacker would do it, and running a
//! test function in a child process that can be killed mid-write.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test tooling: a failed fixture step is a failed run, not a crash in an app"
)]

use std::path::{Path, PathBuf};

/// Every regular file under `root`, recursively, not following links.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The files under `root` that contain `needle` anywhere in their bytes.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    assert!(!needle.is_empty());
    files_under(root)
        .into_iter()
        .filter(|p| std::fs::read(p).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false))
        .collect()
}

/// Copies a directory tree (regular files only), as a backup or a forensic image would.
pub fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let rel = file.strip_prefix(from).expect("file under the root");
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("create folder");
        std::fs::copy(&file, &dest).expect("copy file");
    }
}

/// Random printable canary text: unique per run, so finding it on disk cannot be a coincidence.
pub fn canary(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

pub mod stress;
