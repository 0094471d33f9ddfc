//! The smallest useful job: greets someone by name.
//!
//! Input `{"name": "Ada"}` → output `{"greeting": "Hello, Ada!"}`.

use sandfire_guest::{Context, JobError, info, job};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

#[job]
fn hello(ctx: Context, input: Input) -> Result<Output, JobError> {
    info!(name = input.name, attempt = ctx.attempt; "greeting {}", input.name);
    Ok(Output {
        greeting: format!("Hello, {}!", input.name),
    })
}
