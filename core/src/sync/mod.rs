//! Offline-first sync with dispatch (G5, G6, G7).
//!
//! Sans-IO: the engine builds HTTP requests and applies responses; a [`Transport`] moves the
//! bytes (OkHttp or URLSession on the phone, [`http::HttpTransport`] in the CLI and tests).
pub mod wire;
