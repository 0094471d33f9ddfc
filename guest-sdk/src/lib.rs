//! Write Sandfire jobs in Rust.
//!
//! A Sandfire job is a WebAssembly component (`wasm32-wasip2`) that exports one `run` function.
//! With this crate a job is one ordinary function marked `#[job]`: it takes typed input
//! (deserialized from the run's JSON input with serde) and returns typed output (serialized back
//! to JSON) or a [`JobError`] that tells the runner to retry, fail or snooze the run. The
//! WebAssembly bindings stay hidden behind the attribute.
//!
//! # Example
//!
//! `Cargo.toml`: a job is a library built as a `cdylib`, which `wasm32-wasip2` turns into a
//! component that exports `run` and nothing else.
//!
//! ```toml
//! [package]
//! name = "greet"            # the component is target/wasm32-wasip2/release/greet.wasm
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! sandfire-guest = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use sandfire_guest::{Context, JobError, info, job};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     greeting: String,
//! }
//!
//! #[job]
//! fn greet(ctx: Context, input: Input) -> Result<Output, JobError> {
//!     if input.name.is_empty() {
//!         // Retrying cannot fix bad input: fail the run now.
//!         return Err(JobError::fail("name must not be empty"));
//!     }
//!     info!(name = input.name, attempt = ctx.attempt; "greeting {}", input.name);
//!     Ok(Output { greeting: format!("Hello, {}!", input.name) })
//! }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (after
//! `rustup target add wasm32-wasip2`) and upload the `.wasm` file to a runner.
//!
//! # The `#[job]` function
//!
//! - Signature: `fn name(ctx: Context, input: I) -> Result<O, E>` or, without the context,
//!   `fn name(input: I) -> Result<O, E>`, where `I: serde::de::DeserializeOwned`,
//!   `O: serde::Serialize` and `E: Into<JobError>` (`JobError`, `String` and `&str` work).
//! - Input that does not deserialize into `I` fails the run at once (no retry) with serde's
//!   message. An empty input is read as JSON `null`, so `Option<I>` makes the input optional.
//!   Use `serde_json::Value` to accept any JSON, or `()` for a job that takes no input (whatever
//!   input the run has is then ignored without being parsed).
//! - Exactly one `#[job]` per component. The function must be synchronous, non-generic and not a
//!   method; anything else is a compile error pointing at the offending code (a second `#[job]`
//!   in another module is reported when building for `wasm32-wasip2`, as a duplicate `run`
//!   symbol).
//! - A panic ends the attempt (the runner records it as a `panic`, with the panic message).
//!   Prefer returning a [`JobError`].
//!
//! # Errors and `?`
//!
//! [`JobError::retry`] (retry with the run's backoff while attempts remain),
//! [`JobError::retry_after`], [`JobError::fail`] (no more attempts) and [`JobError::snooze`]
//! (run again later without using an attempt). `String` and `&str` convert into a retryable
//! error, so `Err("upstream busy")?` works. A foreign error needs to be classified first:
//! `fetch().map_err(JobError::retry)?` or, with [`ResultExt`], `fetch().retryable()?` /
//! `parse().fatal()?`.
//!
//! # Logging, progress and cancellation
//!
//! [`trace!`], [`debug!`], [`info!`], [`warn!`] and [`error!`] take `format!` arguments,
//! optionally preceded by structured fields and a semicolon:
//! `info!(user = id, count = 3; "sent {} mails", n)`. Field values are formatted with
//! `Display`. [`progress`] reports how far the job is and [`cancelled`] says whether the run was
//! cancelled (the runner interrupts a job that does not check, so checking is only needed to stop
//! cleanly).
//!
//! # Testing natively
//!
//! The crate also compiles for the host, so a job function can be unit-tested with `cargo test`:
//! outside WebAssembly, log lines and progress are printed to stderr and [`cancelled`] is
//! always `false`. Build a [`Context`] with `Context { attempt: 2, ..Context::default() }`.
#![deny(missing_docs)]

pub mod config;
mod context;
mod error;
mod host;
#[cfg(feature = "http")]
pub mod http;

pub use context::Context;
pub use error::{JobError, ResultExt};
pub use host::{Level, cancelled, log, progress};
/// Marks the one function of a crate that is the job (see the [crate documentation](crate)).
///
/// A signature the runner cannot call is a compile error pointing at the offending code:
///
/// ```compile_fail
/// # use sandfire_guest::{job, JobError};
/// #[job]
/// async fn not_sync(input: u32) -> Result<u32, JobError> { Ok(input) }
/// ```
///
/// ```compile_fail
/// # use sandfire_guest::{job, JobError};
/// #[job]
/// fn no_result(input: u32) -> u32 { input }
/// ```
///
/// ```compile_fail
/// # use sandfire_guest::{job, Context, JobError};
/// #[job]
/// fn too_many(ctx: Context, a: u32, b: u32) -> Result<u32, JobError> { Ok(a + b) }
/// ```
///
/// ```compile_fail,E0277
/// # use sandfire_guest::{job, JobError};
/// struct NotDeserialize;
/// #[job]
/// fn untyped(input: NotDeserialize) -> Result<(), JobError> { Ok(()) }
/// ```
///
/// ```compile_fail,E0428
/// # use sandfire_guest::{job, JobError};
/// #[job]
/// fn first(input: u32) -> Result<u32, JobError> { Ok(input) }
/// #[job]
/// fn second(input: u32) -> Result<u32, JobError> { Ok(input) }
/// ```
pub use sandfire_guest_macro::job;

// Lets the generated bindings name this crate by the same path user crates use.
extern crate self as sandfire_guest;

/// Implementation details used by the code `#[job]` generates. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    use crate::{Context, JobError};
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    pub use crate::host::log_args;
    pub use wit_bindgen;

    /// Generated bindings of `wit/job.wit`.
    #[allow(unsafe_code, missing_docs, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "job",
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "::sandfire_guest::__private::bindings",
            runtime_path: "::sandfire_guest::__private::wit_bindgen::rt",
        });
    }

    /// The trait `#[job]` implements for its hidden export type.
    pub use bindings::Guest;
    /// The WIT types in the `run` export's signature.
    pub use bindings::sandfire::job::types::{Context as WitContext, JobError as WitJobError};

    /// The signature of the `run` export.
    pub type RunFn = fn(WitContext, Vec<u8>) -> Result<Vec<u8>, WitJobError>;

    /// Each step below has its own trait bound, so the generated glue can call it with the span
    /// of the user's type it concerns and an unsuitable type is reported there, once.
    ///
    /// The run's context, in the SDK's own type.
    pub fn context(ctx: WitContext) -> Context {
        Context::from(ctx)
    }

    /// Deserializes the run's JSON input; a mismatch fails the run without retry.
    pub fn input<I: DeserializeOwned>(input: &[u8]) -> Result<I, WitJobError> {
        // A run created without input may carry no bytes at all: read that as `null`.
        let input = if input.iter().all(u8::is_ascii_whitespace) {
            b"null".as_slice()
        } else {
            input
        };
        serde_json::from_slice(input).map_err(|e| {
            JobError::fail(format_args!(
                "the input did not match the job's input type: {e}"
            ))
            .into()
        })
    }

    /// Serializes the job's output to JSON.
    pub fn output<O: Serialize>(output: &O) -> Result<Vec<u8>, WitJobError> {
        serde_json::to_vec(output).map_err(|e| {
            JobError::fail(format_args!(
                "the job's output could not be serialized to JSON: {e}"
            ))
            .into()
        })
    }

    /// Converts the job's error.
    pub fn error<E: Into<JobError>>(error: E) -> WitJobError {
        error.into().into()
    }

    /// Converts a return type that is not spelled `Result<O, E>` (an alias such as
    /// `io::Result<O>`).
    pub fn result<R: IntoJobResult>(result: R) -> Result<Vec<u8>, WitJobError> {
        result.into_job_result()
    }

    /// A job function's return value.
    pub trait IntoJobResult {
        /// Serializes the output or converts the error.
        fn into_job_result(self) -> Result<Vec<u8>, WitJobError>;
    }

    impl<O: Serialize, E: Into<JobError>> IntoJobResult for Result<O, E> {
        fn into_job_result(self) -> Result<Vec<u8>, WitJobError> {
            match self {
                Ok(o) => output(&o),
                Err(e) => Err(error(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{self, IntoJobResult};
    use super::*;

    #[test]
    fn empty_input_reads_as_null() {
        let v: serde_json::Value = __private::input(b" \n").ok().unwrap();
        assert!(v.is_null());
    }

    #[test]
    fn mismatched_input_fails_without_retry() {
        let err = JobError::from(__private::input::<u32>(b"{\"n\": 1}").err().unwrap());
        assert!(!err.is_retryable());
        assert!(
            err.message()
                .starts_with("the input did not match the job's input type: "),
            "{err}"
        );
    }

    #[test]
    fn outputs_json_and_converts_string_errors_into_retries() {
        let ok: Result<_, JobError> = Ok(serde_json::json!({"a": 1}));
        assert_eq!(ok.into_job_result().ok(), Some(br#"{"a":1}"#.to_vec()));
        let err: Result<(), &str> = Err("busy");
        let err = JobError::from(err.into_job_result().unwrap_err());
        assert!(err.is_retryable());
        assert_eq!(err.message(), "busy");
    }
}
