//! What one attempt may use beyond compute: the hosts it may call, its request and response
//! caps, and the config values granted to its job. The worker supplies a loader; the sandbox
//! calls it at most once per attempt, on the first `config.get` or outbound request, so an
//! attempt that uses neither costs no read. Loading also arms the attempt's redactor with the
//! granted secret values, before the guest can hold any of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::journal::Journal;
use super::redact::Redactor;

/// Checks `(scheme, host, port)`: `Ok(pattern that allowed it)` or `Err(why it is denied)`.
pub type HostCheck = Box<dyn Fn(&str, &str, u16) -> Result<String, String> + Send + Sync>;

/// Loads the grants of one attempt.
pub type GrantLoader =
    Box<dyn FnOnce() -> BoxFuture<'static, anyhow::Result<AttemptGrants>> + Send>;

/// A config value granted to the job (wiped from memory when dropped).
pub struct GrantedValue {
    pub value: String,
    pub secret: bool,
}

impl Drop for GrantedValue {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.value.zeroize();
    }
}

/// What an attempt may use.
pub struct AttemptGrants {
    pub hosts: HostCheck,
    /// The tenant's cap; the runner's own cap applies too.
    pub max_requests: Option<u32>,
    /// The tenant's cap; the runner's own cap applies too.
    pub max_response_bytes: Option<u64>,
    /// Granted names; `None` where the tenant has not set the name.
    pub config: BTreeMap<String, Option<GrantedValue>>,
}

impl AttemptGrants {
    /// Nothing granted: no host, no config.
    pub fn none() -> AttemptGrants {
        AttemptGrants {
            hosts: Box::new(|_, _, _| {
                Err(
                    "the job has no allowed_outbound_hosts (PUT /v1/jobs/{name}/capabilities)"
                        .to_owned(),
                )
            }),
            max_requests: None,
            max_response_bytes: None,
            config: BTreeMap::new(),
        }
    }
}

/// The grants of one attempt, loaded on first use.
pub(crate) struct GrantCell {
    loader: Mutex<Option<GrantLoader>>,
    loaded: tokio::sync::OnceCell<Result<Arc<AttemptGrants>, String>>,
    journal: Arc<Journal>,
}

impl GrantCell {
    pub fn new(loader: Option<GrantLoader>, journal: Arc<Journal>) -> GrantCell {
        GrantCell {
            loader: Mutex::new(loader),
            loaded: tokio::sync::OnceCell::new(),
            journal,
        }
    }

    /// The grants; an error (the store could not be read) is kept for the whole attempt.
    pub async fn get(&self) -> Result<Arc<AttemptGrants>, String> {
        self.loaded
            .get_or_init(|| async {
                let loader = self.loader.lock().unwrap_or_else(|e| e.into_inner()).take();
                let grants = match loader {
                    None => AttemptGrants::none(),
                    Some(load) => load().await.map_err(|e| format!("{e:#}"))?,
                };
                let secrets = grants.config.iter().filter_map(|(name, value)| {
                    value
                        .as_ref()
                        .filter(|v| v.secret)
                        .map(|v| (name.as_str(), v.value.as_str()))
                });
                // Fails closed: without a redactor, no value is handed out.
                if let Some(redactor) = Redactor::new(secrets)? {
                    self.journal.set_redactor(Arc::new(redactor));
                }
                Ok(Arc::new(grants))
            })
            .await
            .clone()
    }
}
