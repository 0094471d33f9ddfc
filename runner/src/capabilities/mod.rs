//! Capabilities: what a job may reach beyond its sandbox, and who decides.
//!
//! Deny by default, in two layers. The admin sets a tenant's ceiling (its policy: the outbound
//! hosts any of its jobs may ever reach, and request limits); the tenant grants each job a part
//! of it (hosts inside the ceiling, and names of its config entries). A request at run time must
//! match both the job's grant and the ceiling *as it is then*, so narrowing a ceiling takes
//! effect at once without rewriting grants.
//!
//! - [`allowed_hosts`]: the `scheme://host:port` pattern grammar, matching and containment;
//! - [`secrets`]: the keyring that encrypts config values at rest;
//! - [`grants`]: what one attempt may use, loaded by the sandbox in one store round trip.
//!
//! This module decides and decrypts; it never sends a request (the sandbox does) and must never
//! log or `Debug`-print a config value or a key.

pub mod allowed_hosts;
pub mod grants;
pub mod secrets;

pub use allowed_hosts::{AllowedHosts, PatternError};
pub use grants::{ConfigValue, Grants};
pub use secrets::Keyring;

/// Longest config name.
pub const MAX_CONFIG_NAME_BYTES: usize = 64;
/// Largest config value (bytes of UTF-8): guards the database and each attempt's memory.
pub const MAX_CONFIG_VALUE_BYTES: usize = 64 * 1024;
/// Most config entries one tenant may hold (rows of `tenant_config`).
pub const MAX_CONFIG_ENTRIES: i64 = 1_000;
/// Most host patterns in one policy or grant.
pub const MAX_HOST_PATTERNS: usize = 100;

/// Config names: lowercase ASCII letters, digits and `_`, starting with a letter, at most 64
/// characters, no `__` (Spin's variable names, so the same names work there). `Err` says why.
pub fn check_config_name(name: &str) -> Result<(), String> {
    let rule = "config names are 1-64 lowercase letters, digits and '_', starting with a letter, \
                without '__'";
    let ok = name.len() <= MAX_CONFIG_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__");
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a config name: {rule}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names() {
        for good in [
            "a",
            "api_key",
            "sendgrid_api_key",
            "x1",
            "a_b_c",
            &"a".repeat(64),
        ] {
            assert_eq!(check_config_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "_abc",
            "Api_key",
            "api-key",
            "api.key",
            "api__key",
            "api key",
            "ключ",
            &"a".repeat(65),
        ] {
            let err = check_config_name(bad).unwrap_err();
            assert!(err.contains("lowercase"), "{bad}: {err}");
        }
    }
}
