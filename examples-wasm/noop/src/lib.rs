//! Does nothing and returns `{}` at once, whatever its input: for benchmarks.

use sandfire_guest::{JobError, job};
use serde::Serialize;

#[derive(Serialize)]
struct Empty {}

/// `()` input: the run's input is ignored without being parsed.
#[job]
fn noop(_input: ()) -> Result<Empty, JobError> {
    Ok(Empty {})
}
