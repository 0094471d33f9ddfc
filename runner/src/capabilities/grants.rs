//! What one attempt may use: the job's grant, its tenant's ceiling as it is now, and the
//! decrypted values of the granted config names. Loaded by the sandbox on first use, in one
//! store round trip ([`crate::store::CapabilityStore::attempt_grants`]).
//!
//! Values live in [`ConfigValue`], whose `Debug` never shows them and which wipes its memory
//! when dropped. Errors name the job, tenant and config name, never a value.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Context as _;
use zeroize::Zeroize;

use super::allowed_hosts::AllowedHosts;
use super::secrets::{ENV_KEY, Keyring};
use crate::store::Store;

/// Everything one attempt may reach and read.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// A request must match both: the job's grant and the tenant's ceiling as it is now.
    pub job_hosts: AllowedHosts,
    pub tenant_hosts: AllowedHosts,
    /// The tenant's; `None` = the runner's default.
    pub max_requests_per_attempt: Option<u32>,
    /// The tenant's; `None` = the runner's default.
    pub max_response_bytes: Option<u64>,
    /// Granted config names → value; `None` when granted but not set by the tenant. A name
    /// that is not a key here is not granted.
    pub config: BTreeMap<String, Option<ConfigValue>>,
}

impl Grants {
    /// The first pattern of the job's grant allowing `scheme://host:port`, if the tenant's
    /// ceiling allows it too (both must; the job's pattern is what an audit line names).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> Option<&str> {
        self.tenant_hosts.allows(scheme, host, port)?;
        self.job_hosts.allows(scheme, host, port)
    }
}

/// A config value granted to an attempt. Its `Debug` hides the value; its memory is wiped on
/// drop (so take a clone, not the field, to keep a value).
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigValue {
    pub value: String,
    pub secret: bool,
}

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigValue")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("secret", &self.secret)
            .finish()
    }
}

impl Drop for ConfigValue {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// Loads job `job_id`'s grants for tenant `tenant_id`. Fails when the job does not exist, when
/// a granted value cannot be decrypted (the error names the config name), and when values are
/// stored but this runner has no keyring (the error names `SANDFIRE_SECRETS_KEY`).
pub async fn load(
    store: &dyn Store,
    keyring: Option<&Keyring>,
    tenant_id: i64,
    job_id: i64,
) -> anyhow::Result<Grants> {
    let rows = store
        .attempt_grants(tenant_id, job_id)
        .await
        .with_context(|| format!("reading the grants of job {job_id} (tenant {tenant_id})"))?
        .with_context(|| format!("tenant {tenant_id} has no job {job_id}"))?;
    let job_hosts = AllowedHosts::parse(&rows.grant.allowed_outbound_hosts)
        .with_context(|| format!("job {job_id}: a stored allowed_outbound_hosts pattern"))?;
    let tenant_hosts =
        AllowedHosts::parse(&rows.policy.allowed_outbound_hosts).with_context(|| {
            format!("tenant {tenant_id}: a stored policy allowed_outbound_hosts pattern")
        })?;
    let mut config: BTreeMap<String, Option<ConfigValue>> = rows
        .grant
        .config
        .iter()
        .map(|name| (name.clone(), None))
        .collect();
    if !rows.config.is_empty() {
        let Some(keyring) = keyring else {
            anyhow::bail!(
                "job {job_id} is granted config values, but {ENV_KEY} is not set on this runner: \
                 it cannot decrypt them"
            );
        };
        for row in rows.config {
            let value = keyring
                .open_string(tenant_id, &row.name, &row.sealed)
                .with_context(|| {
                    format!(
                        "config {:?} of tenant {tenant_id} cannot be decrypted (key id {})",
                        row.name, row.sealed.key_id
                    )
                })?;
            config.insert(
                row.name,
                Some(ConfigValue {
                    value,
                    secret: row.secret,
                }),
            );
        }
    }
    Ok(Grants {
        job_hosts,
        tenant_hosts,
        max_requests_per_attempt: rows
            .policy
            .max_requests_per_attempt
            .and_then(|v| u32::try_from(v).ok()),
        max_response_bytes: rows
            .policy
            .max_response_bytes
            .and_then(|v| u64::try_from(v).ok()),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_never_in_debug_output() {
        let value = ConfigValue {
            value: "s3cr3t-value-123".into(),
            secret: true,
        };
        let shown = format!("{value:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("16 bytes"), "{shown}");
        let mut grants = Grants::default();
        grants.config.insert("token".into(), Some(value));
        assert!(!format!("{grants:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_request_needs_the_job_grant_and_the_tenant_ceiling() {
        let hosts = |p: &[&str]| {
            AllowedHosts::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let grants = Grants {
            job_hosts: hosts(&["https://api.example.com", "https://old.example.com"]),
            // The ceiling was narrowed after the grant was written.
            tenant_hosts: hosts(&["https://api.example.com"]),
            ..Grants::default()
        };
        assert_eq!(
            grants.allows("https", "api.example.com", 443),
            Some("https://api.example.com")
        );
        assert_eq!(grants.allows("https", "old.example.com", 443), None);
        assert_eq!(grants.allows("https", "other.example.com", 443), None);
    }
}
