//! Recently checked API keys, so a client's stream of requests costs one key lookup a second
//! instead of one per request (a round trip to the database on every enqueue was a fifth of
//! its time).
//!
//! Any change to what a key grants (the key, its tenant, the tenant's limits) makes the
//! database send `sandfire_keys` (migration 0014), whoever made it; every runner forgets its
//! keys as the notification arrives, and on every reconnect of its listener. The runner that
//! served an admin's change also forgets them before answering it, so there a disabled key or
//! tenant stops at once, without waiting for the notification. Should a runner's listener be
//! down, an entry still lives at most [`KEY_CACHE_TTL`]. Unknown and disabled keys are never
//! cached: each attempt with one asks the database, and a new key works at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::store::notifications::{self, KEYS};
use crate::store::{KeyGrant, PoolOptions, Store};

/// How long a checked key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most keys remembered; past it the cache starts again empty (a flood of distinct valid keys
/// costs lookups, never memory).
const MAX_KEYS: usize = 10_000;

/// The grants of API keys checked recently, by key hash.
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
    pub fn put(&self, hash: Vec<u8>, grant: &KeyGrant, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.grants.len() >= MAX_KEYS {
            inner.grants.clear();
        }
        inner.grants.insert(hash, (Instant::now(), grant.clone()));
    }

    /// Forgets every key.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.grants.clear();
    }
}

/// Middleware: once a change under `/v1/tenants` (admin routes: keys, disable, limits, ...)
/// has succeeded, forget every cached key before the answer leaves, so this runner never
/// serves the old grant after the admin saw the change; the other runners hear the
/// database's notification.
pub async fn forget_after_tenant_changes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let changes_tenants = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && request
        .uri()
        .path()
        .strip_prefix("/v1/tenants")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let response = next.run(request).await;
    if changes_tenants && response.status().is_success() {
        state.keys.forget_all();
    }
    response
}

/// Forgets every cached key when the database says a key, tenant or limit changed, and on
/// every (re)connect, since notifications sent meanwhile are lost.
pub async fn listen(store: Arc<dyn Store>, keys: Arc<KeyCache>, stop: CancellationToken) {
    // A pool of its own: LISTEN holds its connection for good, which would take one from
    // the requests' pool.
    let Some(pool) = store.sibling(PoolOptions::new(1)).and_then(|s| s.pg_pool()) else {
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
        cache.put(b"k".to_vec(), &grant(), generation);
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
        cache.put(b"k".to_vec(), &grant(), generation);
        assert!(cache.get(b"k").is_err(), "a stale answer was stored");
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = KeyCache::default();
        for i in 0..MAX_KEYS + 10 {
            let key = i.to_le_bytes().to_vec();
            let generation = cache.get(&key).unwrap_err();
            cache.put(key, &grant(), generation);
        }
        assert!(cache.lock().grants.len() <= MAX_KEYS);
    }
}
