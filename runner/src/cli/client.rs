//! The CLI's HTTP client: one request helper that adds the right credential, turns the API's
//! error body into a [`CliError`] carrying the API's own message, and explains an unreachable
//! runner. It must never print a Rust error chain for something the user can fix.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::ClientArgs;

/// An error the CLI shows as `error: <message>` and exits with `code`.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
    /// The API's error body as it came, for `--json`.
    pub body: Option<Value>,
}

/// Exit codes: 1 an API error or a failed run, 2 a usage or local problem, 3 no runner.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: EXIT_USAGE,
            body: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: EXIT_FAILED,
            body: None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

/// Which credential a route needs.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    Admin,
    Tenant,
}

/// A request body.
pub enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

/// Talks to one runner's API.
pub struct Client {
    base: String,
    api_key: Option<String>,
    admin_token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Client {
        // `SANDFIRE_KEY` is accepted as a shorter spelling of `SANDFIRE_API_KEY`.
        let api_key = args
            .api_key
            .clone()
            .or_else(|| std::env::var("SANDFIRE_KEY").ok())
            .filter(|k| !k.is_empty());
        Client {
            base: args.url.trim_end_matches('/').to_string(),
            api_key,
            admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
            http: reqwest::Client::new(),
        }
    }

    fn credential(&self, auth: Auth) -> CliResult<String> {
        match auth {
            Auth::Admin => self.admin_token.clone().ok_or_else(|| {
                CliError::usage(
                    "this is an admin command: set SANDFIRE_ADMIN_TOKEN (or pass --admin-token) \
                     to the runner's admin token",
                )
            }),
            Auth::Tenant => self.api_key.clone().ok_or_else(|| {
                CliError::usage(
                    "no tenant key: set SANDFIRE_API_KEY (or pass --api-key) to a key from \
                     `sandfire tenant create NAME` (`make run` prints one)",
                )
            }),
        }
    }

    /// Sends a request; a 2xx answer's JSON body (`Null` when empty), or the API's error.
    pub async fn send(
        &self,
        auth: Auth,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> CliResult<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(self.credential(auth)?);
        match body {
            Some(Body::Json(v)) => {
                req = req
                    .header("Content-Type", "application/json")
                    .body(v.to_string())
            }
            Some(Body::Bytes(b)) => req = req.body(b),
            None => {}
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(&e))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(api_error(status, value))
        }
    }

    pub async fn get(&self, auth: Auth, path: &str) -> CliResult<Value> {
        self.send(auth, Method::GET, path, None).await
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        let why = if e.is_connect() {
            "connection refused or host not found"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "the connection failed"
        };
        CliError {
            message: format!(
                "could not reach a runner at {} ({why}).\n  Start one with `make run` in the \
                 Sandfire source tree, or `sandfire serve --database-url postgres://...`;\n  \
                 or point the CLI at yours with --url or SANDFIRE_URL.",
                self.base
            ),
            code: EXIT_UNREACHABLE,
            body: None,
        }
    }
}

/// The API's `{"error": {"code", "message"}}` as a CLI error with the API's message.
fn api_error(status: StatusCode, body: Value) -> CliError {
    let message = match body["error"]["message"].as_str() {
        Some(m) => m.to_string(),
        None if status == StatusCode::METHOD_NOT_ALLOWED => {
            "the runner does not offer this operation (405): is it an older version?".into()
        }
        None => format!("the runner answered {status} without an error message"),
    };
    CliError {
        message,
        code: EXIT_FAILED,
        body: Some(body),
    }
}

/// Percent-encodes one path segment or query value.
pub fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
