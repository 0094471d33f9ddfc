//! The HTTP API: JSON under `/v1`, bearer keys, errors as `{"error": {code, message}}`.
//!
//! One file per resource. Handlers validate everything a client sends before touching the
//! store, so a bad request changes nothing; every tenant route is scoped by the key's tenant.

mod batches;
mod bulk;
mod capabilities;
mod config;
mod control;
mod error;
pub(crate) mod extract;
mod health;
mod jobs;
pub mod limits;
mod policy;
mod queues;
mod quota;
mod runners;
pub(crate) mod runs;
mod schedules;
mod tenants;
pub mod types;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::middleware;
use axum::routing::{delete, get, post, put};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiResult};

use crate::config::Settings;
use crate::sandbox::Sandbox;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sandbox: Sandbox,
    pub settings: Arc<Settings>,
    /// Wakes this runner's promoter when a delayed run is enqueued here.
    pub promoter: Arc<tokio::sync::Notify>,
    /// Single-run enqueues, gathered into one statement and commit when they arrive together.
    pub enqueue: crate::store::GroupCommit,
    /// Per-tenant enqueue token buckets of this runner (`enqueue_per_s`).
    pub enqueue_rate: Arc<quota::EnqueueRate>,
}

/// The whole HTTP surface of a runner.
pub fn app(state: AppState) -> Router {
    let upload_limit = state.settings.max_component_bytes;
    let request_limit = state.settings.max_request_bytes;
    let http = state.settings.http.clone();
    let uploads = Router::new()
        .route("/v1/jobs/{name}", put(jobs::upload).get(jobs::get))
        .layer(DefaultBodyLimit::max(upload_limit));
    let bulk = Router::new()
        .route("/v1/runs", post(bulk::enqueue))
        .route("/v1/batches", post(batches::create))
        .layer(DefaultBodyLimit::max(state.settings.max_bulk_request_bytes));
    let health = health::HealthCache::new();
    let rest = Router::new()
        .route(
            "/healthz",
            get(move |State(state): State<AppState>| health::healthz(state, health.clone())),
        )
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/v1/tenants/{name}/keys",
            post(tenants::create_key).get(tenants::list_keys),
        )
        .route(
            "/v1/tenants/{name}/keys/{prefix}",
            delete(tenants::disable_key),
        )
        .route("/v1/tenants/{name}/disable", post(tenants::disable))
        .route("/v1/tenants/{name}/enable", post(tenants::enable))
        .route("/v1/tenants/{name}/weight", put(tenants::set_weight))
        .route(
            "/v1/tenants/{name}/limits",
            put(tenants::put_limits).get(tenants::get_limits),
        )
        .route(
            "/v1/tenants/{name}/policy",
            put(policy::put).get(policy::get),
        )
        .route(
            "/v1/jobs/{name}/capabilities",
            put(capabilities::put).get(capabilities::get),
        )
        .route("/v1/config", get(config::list))
        .route(
            "/v1/config/{name}",
            put(config::put).get(config::get).delete(config::delete),
        )
        .route("/v1/admin/config/reencrypt", post(config::reencrypt))
        .route("/v1/jobs", get(jobs::list))
        .route(
            "/v1/jobs/{name}/versions/{version}",
            delete(jobs::delete_version),
        )
        .route("/v1/runners", get(runners::list))
        .route("/v1/queues", get(queues::list))
        .route("/v1/queues/{name}", put(queues::put))
        .route("/v1/queues/{name}/pause", post(queues::pause))
        .route("/v1/queues/{name}/resume", post(queues::resume))
        .route("/v1/jobs/{name}/runs", post(runs::enqueue))
        .route("/v1/runs", get(runs::list))
        .route("/v1/runs/{id}", get(runs::get).delete(control::delete))
        .route("/v1/runs/{id}/cancel", post(control::cancel))
        .route("/v1/runs/{id}/retry", post(control::retry))
        .route("/v1/batches/{id}", get(batches::get))
        .route("/v1/batches/{id}/cancel", post(batches::cancel))
        .route("/v1/runs/{id}/logs", get(runs::logs))
        .route("/v1/schedules", get(schedules::list))
        .route(
            "/v1/schedules/{name}",
            put(schedules::put)
                .get(schedules::get)
                .delete(schedules::delete),
        )
        .route("/v1/schedules/{name}/trigger", post(schedules::trigger))
        .route("/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/v1/schedules/{name}/resume", post(schedules::resume))
        .layer(DefaultBodyLimit::max(request_limit));
    let ui = if state.settings.ui.enabled {
        // The dashboard reads through a small pool of its own with a statement timeout.
        let ui_settings = &state.settings.ui;
        let ui_state = AppState {
            store: state
                .store
                .sibling(crate::store::PoolOptions {
                    statement_timeout: Some(ui_settings.statement_timeout),
                    custom_plans: true,
                    ..crate::store::PoolOptions::new(ui_settings.pool_size)
                })
                .unwrap_or_else(|| state.store.clone()),
            ..state.clone()
        };
        crate::ui::router()
            .layer(DefaultBodyLimit::max(request_limit))
            .with_state(ui_state)
    } else {
        Router::new()
    };
    uploads
        .merge(bulk)
        .merge(rest)
        .merge(ui)
        .fallback(|| async {
            ApiError::not_found("no such route: see docs/api.md for the routes of /v1")
        })
        // Outermost last: refuse overload first, then bad paths, then time the body.
        .layer(middleware::from_fn(limits::body_deadline(
            http.body_timeout,
        )))
        .layer(middleware::from_fn(limits::clean_uri))
        .layer(middleware::from_fn(limits::inflight_cap(
            http.max_inflight_requests,
        )))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Job names: letters, digits, `.`, `_`, `-`; at most 128 characters; no leading punctuation.
pub fn valid_job_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Tenant names: lowercase letters, digits, `_`, `-`; at most 63 characters.
pub fn valid_tenant_name(name: &str) -> bool {
    crate::config::valid_queue_name(name)
}
