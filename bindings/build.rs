//! Why this file: Android 15 devices may run with 16 KB memory pages, and Google Play requires
//! native libraries whose LOAD segments are aligned for them. NDK r27 and older link with 4 KB
//! alignment by default; passing the flag from here reaches every way the library is built for
//! Android (the Gradle module's cargo-ndk task, bindings/scripts/build-android.sh, a plain
//! `cargo build --target aarch64-linux-android`), whatever RUSTFLAGS the caller or cargo-ndk sets.
//! bindings/android/check-page-size.sh checks the result.
//!
//! JOBSEAL_MAX_PAGE_SIZE overrides the value on any target (bindings/android/test-page-size.sh
//! uses it to prove, with a Linux aarch64 build, that the check fails at 4096 and passes at 16384).
fn main() {
    println!("cargo:rerun-if-env-changed=JOBSEAL_MAX_PAGE_SIZE");
    let android = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "android");
    let page = match std::env::var("JOBSEAL_MAX_PAGE_SIZE") {
        Ok(value) if !value.is_empty() => Some(value),
        _ if android => Some("16384".to_owned()),
        _ => None,
    };
    if let Some(page) = page {
        assert!(page.bytes().all(|b| b.is_ascii_digit()), "JOBSEAL_MAX_PAGE_SIZE must be a number of bytes");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,max-page-size={page}");
    }
}
