//! Sends one HTTP request and returns the answer: the job behind "call that API".
//!
//! Input: `{"url": "https://api.example.com/x", "method": "POST", "body": "...",
//! "bearer_config": "api_token", "follow_redirects": 3, "repeat": 1}`; only `url` is required.
//! With `bearer_config`, the request carries `Authorization: Bearer <value of that config>`.
//! With `follow_redirects: n`, up to n redirects are followed (each hop is checked by the
//! runner again). `repeat` sends the same request that many times (the last answer counts).
//! Output: `{"status": 200, "body": "..."}`. A refused request fails the run with the
//! `wasi:http` error code in its message (e.g. `HttpRequestDenied`).

use sandfire_guest::{Context, JobError, config, http, info, job};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    bearer_config: Option<String>,
    #[serde(default)]
    follow_redirects: u32,
    #[serde(default = "one")]
    repeat: u32,
    /// Timeouts to ask for, in ms (the runner clamps them to its own caps).
    #[serde(default)]
    first_byte_timeout_ms: Option<u64>,
    /// With `repeat`: count failed requests and go on (the output's `errors`) instead of
    /// failing the run at the first.
    #[serde(default)]
    keep_going: bool,
}

fn get() -> String {
    "GET".to_owned()
}

fn one() -> u32 {
    1
}

#[derive(Serialize)]
struct Output {
    status: u16,
    body: String,
    #[serde(skip_serializing_if = "is_zero")]
    errors: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[job]
fn fetch(_ctx: Context, input: Input) -> Result<Output, JobError> {
    let bearer = match &input.bearer_config {
        Some(name) => Some(format!("Bearer {}", config::require(name)?)),
        None => None,
    };
    let mut headers = Vec::new();
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    let timeouts = http::Timeouts {
        first_byte: input
            .first_byte_timeout_ms
            .map(std::time::Duration::from_millis),
        ..http::Timeouts::default()
    };
    let mut reply = None;
    let mut errors = 0;
    for _ in 0..input.repeat.max(1) {
        let mut url = input.url.clone();
        let mut hops = 0;
        loop {
            let body = input.body.clone().unwrap_or_default();
            let request = http::request(&input.method, &url, &headers, body)?;
            let answer = match http::send_with(request, timeouts) {
                Ok(answer) => answer,
                Err(_) if input.keep_going => {
                    errors += 1;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            let location = answer.header("location").map(str::to_owned);
            match location {
                Some(next)
                    if (300..400).contains(&answer.status) && hops < input.follow_redirects =>
                {
                    info!(from = url, to = next; "following a redirect");
                    url = next;
                    hops += 1;
                }
                _ => {
                    reply = Some(answer);
                    break;
                }
            }
        }
    }
    if reply.is_none() && errors > 0 {
        return Ok(Output {
            status: 0,
            body: String::new(),
            errors,
        });
    }
    let reply = reply.ok_or_else(|| JobError::fail("no request was sent"))?;
    info!(status = reply.status, bytes = reply.body.len(); "{} {}", input.method, input.url);
    Ok(Output {
        status: reply.status,
        body: reply.text(),
        errors,
    })
}
