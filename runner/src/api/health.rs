//! `GET /healthz`: is this runner up, and can it reach its database?
//!
//! The answer is cached for `http.health_cache` (about a second) and one check runs at a time,
//! so a flood of health probes costs the database one query per interval, never one per call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;

use super::AppState;
use super::types::HealthBody;

/// The last database check and when it ran.
#[derive(Debug, Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl HealthCache {
    pub fn new() -> Arc<HealthCache> {
        Arc::new(HealthCache::default())
    }

    /// Whether the database answered, at most `fresh` ago. Concurrent callers wait for the
    /// one check in progress instead of starting their own.
    async fn database_ok(&self, state: &AppState, fresh: Duration) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < fresh
        {
            return ok;
        }
        let ok = match state.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "health check: database unreachable");
                false
            }
        };
        *last = Some((Instant::now(), ok));
        ok
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    summary = "Is this runner up, and can it reach its database? (no auth)",
    responses(
        (status = 200, description = "up", body = HealthBody),
        (status = 503, description = "the database is unreachable", body = HealthBody),
    ),
)]
pub async fn healthz(state: AppState, cache: Arc<HealthCache>) -> (StatusCode, Json<HealthBody>) {
    if cache
        .database_ok(&state, state.settings.http.health_cache)
        .await
    {
        (
            StatusCode::OK,
            Json(HealthBody {
                status: "ok".into(),
                database: "ok".into(),
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthBody {
                status: "degraded".into(),
                database: "unreachable".into(),
            }),
        )
    }
}
