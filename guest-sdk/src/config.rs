//! The tenant's variables and secrets granted to this job.
//!
//! The tenant stores values with `PUT /v1/config/{name}` and grants a job the names it may read
//! with `PUT /v1/jobs/{name}/capabilities`. A secret's value is replaced by `[REDACTED:name]`
//! wherever it would leave the sandbox (logs, stdout/stderr, errors, outputs), so logging it by
//! mistake does not leak it.
//!
//! Outside WebAssembly (a job's unit tests) values come from environment variables named
//! `SANDFIRE_CONFIG_<NAME>` (upper case), and every name counts as granted.

use std::fmt;

use crate::JobError;

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The name is not among the job's granted config names.
    NotGranted(String),
    /// The runner could not read the store; another attempt may succeed.
    Unavailable(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotGranted(m) | ConfigError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for JobError {
    /// Not granted is a permanent failure (retrying cannot grant it); unavailable is retried.
    fn from(e: ConfigError) -> JobError {
        match e {
            ConfigError::NotGranted(m) => JobError::fail(m),
            ConfigError::Unavailable(m) => JobError::retry(m),
        }
    }
}

/// The value of a granted name; `Ok(None)` if the tenant has not set it.
///
/// ```
/// # fn main() -> Result<(), sandfire_guest::JobError> {
/// let from = sandfire_guest::config::get("from_address")?.unwrap_or_default();
/// # Ok(()) }
/// ```
pub fn get(name: &str) -> Result<Option<String>, ConfigError> {
    imp::get(name)
}

/// The value of a granted name that must be set: a clear, permanent failure otherwise.
pub fn require(name: &str) -> Result<String, JobError> {
    get(name)?.ok_or_else(|| {
        JobError::fail(format!(
            "config {name:?} is granted but not set (PUT /v1/config/{name})"
        ))
    })
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::ConfigError;
    use crate::__private::bindings::sandfire::job::config;

    pub(super) fn get(name: &str) -> Result<Option<String>, ConfigError> {
        config::get(name).map_err(|e| match e {
            config::Error::NotGranted(m) => ConfigError::NotGranted(m),
            config::Error::Unavailable(m) => ConfigError::Unavailable(m),
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::ConfigError;

    pub(super) fn get(name: &str) -> Result<Option<String>, ConfigError> {
        Ok(std::env::var(format!("SANDFIRE_CONFIG_{}", name.to_ascii_uppercase())).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_granted_fails_and_unavailable_retries() {
        let fail: JobError = ConfigError::NotGranted("no".into()).into();
        assert!(!fail.is_retryable());
        let retry: JobError = ConfigError::Unavailable("later".into()).into();
        assert!(retry.is_retryable());
    }

    #[test]
    fn outside_wasm_values_come_from_the_environment() {
        // SAFETY of the test: no other test reads this variable.
        assert_eq!(get("sdk_test_unset_name").unwrap(), None);
        assert!(require("sdk_test_unset_name").is_err());
    }
}
