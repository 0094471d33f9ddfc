//! A careless job, for the redaction tests: it reads the secret named in its input and writes
//! it everywhere a value can leave the sandbox: a log line and its fields, stdout, stderr, its
//! progress message, and its output, or (with `"fail": true`) its error, or (with
//! `"snooze": true`) its snooze reason, which lands in the run's history. The runner must show
//! `[REDACTED:<name>]` in every one of those places.

use sandfire_guest::{Context, JobError, config, info, job, progress};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    name: String,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    snooze: bool,
}

#[derive(Serialize)]
struct Output {
    leaked: String,
}

#[job]
fn leaky(_ctx: Context, input: Input) -> Result<Output, JobError> {
    let value = config::require(&input.name)?;
    info!(token = value; "the token is {value}");
    println!("stdout: {value}");
    eprintln!("stderr: {value}");
    progress(50, format!("using {value}"));
    if input.snooze {
        return Err(JobError::snooze(
            std::time::Duration::from_secs(3600),
            format!("waiting for {value}"),
        ));
    }
    if input.fail {
        return Err(JobError::fail(format!("could not use {value}")));
    }
    Ok(Output {
        leaked: format!("token={value}"),
    })
}
