//! Recently checked API keys, so a client's stream of requests costs one key lookup a second
//! instead of one per request (a round trip to the database on every enqueue was a fifth of
//! its time).
//!
//! Every change an admin makes to tenants, keys, limits or policies forgets every entry on this
//! runner before the change is answered, and tells the other runners of the cluster
//! (`sandfire_keys` notification), which forget theirs as it arrives: a disabled key or tenant
//! stops at once. Should a runner's notification connection be down, an entry still lives at
//! most [`KEY_CACHE_TTL`] (and reconnecting forgets everything). Unknown and disabled keys are
//! never cached: each attempt with one asks the database, and a new key works at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::store::KeyGrant;
use crate::store::notifications::{self, KEYS};

/// How long a checked key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most keys remembered; past it the cache starts again empty (a flood of distinct valid keys
/// costs lookups, never memory).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct KeyCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every forget: a lookup that began before it must not store its answer.
    generation: u64,
    grants: HashMap<Vec<u8>, (Instant, KeyGrant)>,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain inserts and removals: a panic elsewhere cannot leave the map inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The grant of the key with this hash, if it was checked less than the TTL ago; else the
    /// generation to hand to [`KeyCache::put`] with the database's answer.
    pub fn get(&self, hash: &[u8]) -> Result<KeyGrant, u64> {
        let inner = self.lock();
        match inner.grants.get(hash) {
            Some((at, grant)) if at.elapsed() < KEY_CACHE_TTL => Ok(grant.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Remembers a grant read from the database, unless something was forgotten since the
    /// read began (`generation` from [`KeyCache::get`]).
    pub fn put(&self, hash: &[u8], grant: &KeyGrant, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.grants.len() >= MAX_KEYS {
            inner.grants.clear();
        }
        inner
            .grants
            .insert(hash.to_vec(), (Instant::now(), grant.clone()));
    }

    /// Forgets every key.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.grants.clear();
    }
}

/// Middleware: once a request that may change tenants, keys, limits or policies is answered,
/// forget every cached key (whatever the answer: a failed change costs only lookups).
pub async fn forget_after_tenant_changes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let changes_tenants = !matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().path().starts_with("/v1/tenants");
    let response = next.run(request).await;
    if changes_tenants {
        state.keys.forget_all();
        if let Some(pool) = state.store.pg_pool()
            && let Err(e) = notifications::notify(&pool, KEYS).await
        {
            tracing::warn!(error = %e, "telling other runners to forget cached API keys failed; theirs expire within a second");
        }
    }
    response
}

/// Forgets every cached key when another runner (or this one) says an admin changed
/// something, and on every (re)connect, since notifications sent meanwhile are lost.
pub async fn listen(
    store: std::sync::Arc<dyn crate::store::Store>,
    keys: std::sync::Arc<KeyCache>,
    stop: CancellationToken,
) {
    let Some(pool) = store.pg_pool() else {
        return;
    };
    notifications::listen(
        pool,
        &[KEYS],
        || keys.forget_all(),
        |_| keys.forget_all(),
        stop,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TenantLimits;
    use crate::store::{KeyRole, Tenant};

    fn grant() -> KeyGrant {
        KeyGrant {
            tenant: Tenant {
                id: 1,
                name: "acme".into(),
                weight: 1,
                created_at: chrono::Utc::now(),
                disabled_at: None,
            },
            role: KeyRole::Full,
            limits: TenantLimits::default(),
        }
    }

    #[test]
    fn a_checked_key_is_remembered_and_forgotten_on_change() {
        let cache = KeyCache::default();
        let generation = cache.get(b"k").expect_err("nothing cached yet");
        cache.put(b"k", &grant(), generation);
        assert_eq!(cache.get(b"k").expect("cached").tenant.name, "acme");
        cache.forget_all();
        assert!(cache.get(b"k").is_err(), "forgotten after a change");
    }

    #[test]
    fn a_lookup_that_began_before_a_change_is_not_stored() {
        let cache = KeyCache::default();
        let generation = cache.get(b"k").unwrap_err();
        // An admin disables the key while the lookup is on its way.
        cache.forget_all();
        cache.put(b"k", &grant(), generation);
        assert!(cache.get(b"k").is_err(), "a stale answer was stored");
    }
}
