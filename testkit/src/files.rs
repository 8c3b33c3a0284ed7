//! Files as an attacker or a backup sees them: every regular file under a folder, which of them
//! hold some bytes, a copy of the tree, and canary values to look for.
//!
//! The forensic suites prove that a closed job leaves no customer value, key or ciphertext in any
//! file; the crash suites count key files; the benchmarks copy a prepared vault onto the disk they
//! measure. They all walk directories the same way, so the walk is written once, here, without
//! following links (a link could lead the scan out of the folder under test).

use std::path::{Path, PathBuf};

/// Every regular file under `root`, recursively, sorted, not following links. A folder that
/// cannot be read is skipped.
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

/// The files under `root` that contain `needle` anywhere in their bytes. Panics on an empty
/// needle, which every file would contain.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    assert!(!needle.is_empty());
    files_under(root)
        .into_iter()
        .filter(|p| std::fs::read(p).map(|b| memchr::memmem::find(&b, needle).is_some()).unwrap_or(false))
        .collect()
}

/// Copies the regular files under `from` to the same places under `to`, creating folders as
/// needed: what a backup or a forensic image of the tree holds.
pub fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let rel = file.strip_prefix(from).expect("file under the root");
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("create folder");
        std::fs::copy(&file, &dest).expect("copy file");
    }
}

/// Random printable canary text starting with `label`: unique per call, so finding it on disk
/// cannot be a coincidence.
pub fn canary(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}
