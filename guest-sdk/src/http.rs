//! Outbound HTTP (feature `http`), over `wasi:http`: a blocking [`send`] for jobs, which are
//! synchronous functions, plus [`wstd::http`]'s types to build requests.
//!
//! The runner lets a request through only to hosts granted to the job
//! (`PUT /v1/jobs/{name}/capabilities`, within the tenant's policy), to public addresses, within
//! its timeouts and size caps. A refused request fails with an [`HttpError`] whose
//! [`code`](HttpError::code) says why (e.g. `HttpRequestDenied`, `DestinationIpProhibited`), and
//! the run's log names the refused `scheme://host:port` and the rule.
//!
//! ```no_run
//! use sandfire_guest::http;
//! # fn main() -> Result<(), sandfire_guest::JobError> {
//! let reply = http::post_json("https://api.example.com/v1/notify", &serde_json::json!({"id": 7}), &[])?;
//! if !reply.is_success() {
//!     return Err(sandfire_guest::JobError::retry(format!("API answered {}", reply.status)));
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

pub use wstd::http::{Body, Client, HeaderValue, Method, Request, StatusCode};

use crate::JobError;

/// A response, its body read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code (a redirect is returned as it is, never followed).
    pub status: u16,
    /// Response headers, lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError {
            code: None,
            message: format!("the response body is not the expected JSON: {e}"),
        })
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that did not produce a response.
#[derive(Debug, Clone)]
pub struct HttpError {
    code: Option<String>,
    message: String,
}

impl HttpError {
    /// The `wasi:http` error code's name, e.g. `HttpRequestDenied`, `DestinationIpProhibited`,
    /// `ConnectionTimeout`; `None` for errors that have no code (a bad URL, bad JSON).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether trying again later may help (timeouts, refused or reset connections), as
    /// opposed to a request the runner or the job's grant will always refuse.
    pub fn is_transient(&self) -> bool {
        match self.code.as_deref() {
            None => false,
            Some(code) => !matches!(
                code,
                "HttpRequestDenied"
                    | "DestinationIpProhibited"
                    | "HttpRequestUriInvalid"
                    | "HttpRequestMethodInvalid"
                    | "HttpRequestBodySize"
                    | "HttpResponseBodySize"
                    | "TlsCertificateError"
            ),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) if *code == self.message => write!(f, "HTTP request failed: {code}"),
            Some(code) => write!(f, "HTTP request failed: {code}: {}", self.message),
            None => write!(f, "HTTP request failed: {}", self.message),
        }?;
        // What to do about the refusals the runner makes (its log line names the rule).
        match self.code.as_deref() {
            Some("HttpRequestDenied") => f.write_str(
                " (refused by the runner: the run's log names the rule; hosts are granted with \
                 PUT /v1/jobs/{name}/capabilities, within the tenant's policy)",
            ),
            Some("DestinationIpProhibited") => f.write_str(
                " (the host resolves only to local, private or blocked addresses, which jobs may \
                 never reach)",
            ),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for JobError {
    /// Transient errors retry the run; refusals fail it.
    fn from(e: HttpError) -> JobError {
        if e.is_transient() {
            JobError::retry(e)
        } else {
            JobError::fail(e)
        }
    }
}

fn from_wstd(error: wstd::http::Error) -> HttpError {
    match error.downcast_ref::<wstd::http::ErrorCode>() {
        Some(code) => {
            let debug = format!("{code:?}");
            // `ErrorCode::HttpResponseBodySize(Some(1048577))` → `HttpResponseBodySize`.
            let full = debug
                .strip_prefix("ErrorCode::")
                .unwrap_or(&debug)
                .to_owned();
            let short = full.split('(').next().unwrap_or(&full).to_owned();
            HttpError {
                code: Some(short),
                message: full,
            }
        }
        None => HttpError {
            code: None,
            message: format!("{error:#}"),
        },
    }
}

/// Timeouts a request asks for; the runner clamps them to its own caps and to the time the
/// attempt has left.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// Connect (DNS, TCP, TLS).
    pub connect: Option<Duration>,
    /// Until the response head.
    pub first_byte: Option<Duration>,
    /// Between two chunks of the body.
    pub between_bytes: Option<Duration>,
}

/// Sends `request` and reads the whole response; blocks the job until done.
pub fn send<B: Into<Body>>(request: Request<B>) -> Result<Reply, HttpError> {
    send_with(request, Timeouts::default())
}

/// [`send`] with timeouts.
pub fn send_with<B: Into<Body>>(
    request: Request<B>,
    timeouts: Timeouts,
) -> Result<Reply, HttpError> {
    wstd::runtime::block_on(async move {
        let mut client = Client::new();
        if let Some(t) = timeouts.connect {
            client.set_connect_timeout(t);
        }
        if let Some(t) = timeouts.first_byte {
            client.set_first_byte_timeout(t);
        }
        if let Some(t) = timeouts.between_bytes {
            client.set_between_bytes_timeout(t);
        }
        let response = client.send(request).await.map_err(from_wstd)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = response.into_body();
        let body = body.contents().await.map_err(from_wstd)?.to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    })
}

/// Builds a request from a method, URL, headers and body.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Result<Request<Body>, HttpError> {
    let bad = |what: String| HttpError {
        code: None,
        message: what,
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| bad(format!("{method:?} is not an HTTP method")))?;
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(body.into())
        .map_err(|e| bad(format!("bad request ({url}): {e}")))
}

/// `GET url`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Reply, HttpError> {
    send(request("GET", url, headers, Body::empty())?)
}

/// `POST url` with a JSON body (and `Content-Type: application/json`).
pub fn post_json(
    url: &str,
    body: &impl serde::Serialize,
    headers: &[(&str, &str)],
) -> Result<Reply, HttpError> {
    let json = serde_json::to_vec(body).map_err(|e| HttpError {
        code: None,
        message: format!("the body could not be serialised: {e}"),
    })?;
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(request("POST", url, &all, json)?)
}
