//! A check that no test file is left out of the build.
//!
//! Each crate compiles its integration tests into one binary (`tests/main.rs` declaring every
//! suite as a module), because linking a binary per file took most of the test time on a small
//! machine. That needs `autotests = false` in the crate's manifest, and with it a file added to
//! `tests/` and not declared anywhere would silently never run. Each `main.rs` therefore calls
//! [`assert_every_test_file_is_compiled`] from a test of its own.

use std::path::Path;

/// Panics unless every `.rs` file directly in `<manifest_dir>/tests/` is `main.rs`, a module that
/// `tests/main.rs` declares (`mod name;`), or the `path` of a `[[test]]` target in
/// `<manifest_dir>/Cargo.toml`. Pass `env!("CARGO_MANIFEST_DIR")`.
pub fn assert_every_test_file_is_compiled(manifest_dir: &str) {
    let root = Path::new(manifest_dir);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let main = read(&root.join("tests/main.rs"));
    let manifest = read(&root.join("Cargo.toml"));
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("tests")).expect("the tests folder").flatten() {
        let path = entry.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if path.extension().is_none_or(|e| e != "rs") || stem == "main" {
            continue;
        }
        let declared = main.lines().any(|l| l.trim() == format!("mod {stem};"));
        let own_target = manifest.contains(&format!("\"tests/{stem}.rs\""));
        if !declared && !own_target {
            missing.push(format!("tests/{stem}.rs"));
        }
    }
    assert!(
        missing.is_empty(),
        "{missing:?} would never run: declare each as `mod name;` in tests/main.rs, or as a [[test]] in Cargo.toml"
    );
}
