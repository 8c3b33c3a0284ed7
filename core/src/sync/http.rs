//! The built-in blocking transport: plain HTTP through ureq.
//!
//! For the CLI, desktop tools and tests against a dispatch server on the same machine or a
//! trusted network. It speaks no TLS on purpose, to keep the core's dependencies lean: phone apps
//! implement [`Transport`] on their platform's HTTPS stack (OkHttp, URLSession) instead.

use super::{HttpRequest, HttpResponse, Transport, TransportError};
use std::io::Read;
use std::time::Duration;

/// A [`Transport`] to one dispatch base URL such as `http://127.0.0.1:8787`.
pub struct HttpTransport {
    base: String,
    agent: ureq::Agent,
}

impl HttpTransport {
    /// A transport to `base_url` with 5 s to connect and 30 s per request.
    pub fn new(base_url: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        HttpTransport { base: base_url.trim_end_matches('/').to_owned(), agent: config.into() }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = format!("{}{}", self.base, request.path);
        let fail = |e: ureq::Error| TransportError { message: format!("{} {}: {e}", request.method, request.path) };
        let response = match request.method.as_str() {
            "GET" => {
                let mut b = self.agent.get(&url);
                for (k, v) in &request.headers {
                    b = b.header(k, v);
                }
                b.call().map_err(fail)?
            }
            "POST" => {
                let mut b = self.agent.post(&url);
                for (k, v) in &request.headers {
                    b = b.header(k, v);
                }
                b.send(&request.body[..]).map_err(fail)?
            }
            other => return Err(TransportError { message: format!("unsupported method {other}") }),
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(super::wire::MAX_BODY_BYTES as u64 * 16)
            .read_to_end(&mut body)
            .map_err(|e| TransportError { message: format!("reading the answer: {e}") })?;
        Ok(HttpResponse { status, body })
    }
}
