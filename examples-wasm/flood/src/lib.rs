//! Writes to stderr one byte per call, forever: the runner must keep the capture bounded, spend
//! constant host time per write however full it is, and stop the job at its timeout.

use std::io::Write as _;

use sandfire_guest::{JobError, job};

#[job]
fn flood(_input: ()) -> Result<(), JobError> {
    // Rust's stderr is unbuffered: every `write_all` is one host call of one byte.
    let mut stderr = std::io::stderr();
    loop {
        let _ = stderr.write_all(b"x");
    }
}
