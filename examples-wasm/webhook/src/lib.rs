//! Posts its input to a configured URL, signed: the job behind "call that webhook".
//!
//! Config (granted to the job): `webhook_url` (a variable) and `webhook_secret` (a secret).
//! The request carries `X-Sandfire-Signature: sha256=<hex HMAC-SHA256 of the body>` and
//! `X-Sandfire-Run: <run id>` (stable across attempts: receivers deduplicate on it).
//! A 5xx or 429 answer retries the run; another non-2xx fails it.
//! Output: `{"status": 204}`.

use hmac::{Hmac, Mac};
use sandfire_guest::{Context, JobError, config, http, info, job};
use serde::Serialize;
use sha2::Sha256;

#[derive(Serialize)]
struct Output {
    status: u16,
}

#[job]
fn webhook(ctx: Context, input: serde_json::Value) -> Result<Output, JobError> {
    let url = config::require("webhook_url")?;
    let secret = config::require("webhook_secret")?;
    let body = serde_json::to_vec(&input).map_err(JobError::fail)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(JobError::fail)?;
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let request = http::request(
        "POST",
        &url,
        &[
            ("content-type", "application/json"),
            ("x-sandfire-signature", &signature),
            ("x-sandfire-run", &ctx.run_id),
        ],
        body,
    )?;
    let reply = http::send(request)?;
    info!(status = reply.status; "webhook answered");
    match reply.status {
        200..=299 => Ok(Output {
            status: reply.status,
        }),
        429 | 500..=599 => Err(JobError::retry(format!(
            "the webhook answered {}",
            reply.status
        ))),
        status => Err(JobError::fail(format!("the webhook answered {status}"))),
    }
}
