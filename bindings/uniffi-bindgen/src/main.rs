//! Runs the UniFFI binding generator (library mode) at the workspace's uniffi version.

fn main() {
    uniffi::uniffi_bindgen_main()
}
