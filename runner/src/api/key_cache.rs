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

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use tokio_util::sync::CancellationToken;

use super::AppState;
use super::recent::Recent;
use crate::store::KeyGrant;
use crate::store::notifications::{self, KEYS};

/// How long a checked key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = super::recent::TTL;

/// The grants of API keys checked recently, by key hash.
pub type KeyCache = Recent<Vec<u8>, KeyGrant>;

/// Middleware: once an admin's change to tenants, keys, limits or policies has succeeded,
/// forget every cached key here and tell the other runners. Only successful changes count: every route under `/v1/tenants` takes the admin token, so
/// a request without it (or a failed one) never makes the runner write a notification.
pub async fn forget_after_tenant_changes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path();
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let changes_tenants = changes && under("/v1/tenants");
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
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
    // A pool of its own: LISTEN holds its connection for good, which would take one from
    // the requests' pool.
    let Some(pool) = store
        .sibling(crate::store::PoolOptions::new(1))
        .and_then(|s| s.pg_pool())
    else {
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
        let k = b"k".to_vec();
        let generation = cache.get(&k).expect_err("nothing cached yet");
        cache.put(k.clone(), &grant(), generation);
        assert_eq!(cache.get(&k).expect("cached").tenant.name, "acme");
        cache.forget_all();
        assert!(cache.get(&k).is_err(), "forgotten after a change");
    }

    #[test]
    fn a_lookup_that_began_before_a_change_is_not_stored() {
        let cache = KeyCache::default();
        let k = b"k".to_vec();
        let generation = cache.get(&k).unwrap_err();
        // An admin disables the key while the lookup is on its way.
        cache.forget_all();
        cache.put(k.clone(), &grant(), generation);
        assert!(cache.get(&k).is_err(), "a stale answer was stored");
    }
}
