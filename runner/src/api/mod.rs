//! The HTTP API: JSON under `/v1`, bearer keys, errors as `{"error": {code, message}}`.
//!
//! One file per resource. Handlers validate everything a client sends before touching the
//! store, so a bad request changes nothing; every tenant route is scoped by the key's tenant.
//! Bodies are the types of `types.rs` (responses) and of each resource's file (requests);
//! errors are `error::ApiError`. Every `/v1` route is one line of the route table below, which
//! builds the router and is what the OpenAPI document (`openapi.rs`) is checked against.

mod batches;
mod bulk;
mod capabilities;
mod config;
mod control;
mod error;
pub(crate) mod extract;
mod health;
pub mod job_cache;
mod jobs;
pub mod key_cache;
pub mod limits;
pub mod openapi;
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
use axum::routing::get;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiResult, ErrorCode};

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
    /// This runner's Prometheus figures (`GET /metrics`; enqueues are counted here).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// API keys checked in the last second.
    pub keys: Arc<key_cache::KeyCache>,
    /// Jobs read recently by single-run enqueues (the insert checks they are still current).
    pub jobs: Arc<job_cache::JobCache>,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone (the OpenAPI document).
    Public,
    /// A tenant's API key; a `read` key only on `GET`.
    Tenant,
    /// The runner's admin token.
    Admin,
    /// The admin token or a tenant key (which sees less).
    Either,
}

/// The request-body limit a route applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// JSON bodies (`--max-request-bytes`).
    Request,
    /// Bulk enqueues and batches (`--max-bulk-request-bytes`).
    Bulk,
    /// Component uploads (`--max-component-bytes`).
    Upload,
}

/// One route of `/v1`: what the router serves and what the OpenAPI document must describe.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Lowercase HTTP method (`get`, `put`, `post`, `delete`).
    pub method: &'static str,
    pub path: &'static str,
    pub auth: Auth,
    pub limit: BodyLimit,
    /// The errors particular to this route (the document adds those every route of its kind
    /// can answer: authentication, malformed requests, overload, the database).
    pub errors: &'static [ErrorCode],
}

/// The one table of `/v1` routes: it builds the router ([`v1_routes`]) and lists [`ROUTES`],
/// which the OpenAPI document is checked against, so a route cannot be served undocumented.
macro_rules! route_table {
    ($( $method:ident $path:literal => $handler:path, $auth:ident, $limit:ident, [$($err:ident),* $(,)?]; )*) => {
        /// Every `/v1` route, in the order of the table.
        pub const ROUTES: &[Route] = &[$(
            Route {
                method: stringify!($method),
                path: $path,
                auth: Auth::$auth,
                limit: BodyLimit::$limit,
                errors: &[$(ErrorCode::$err),*],
            },
        )*];

        /// The router of every `/v1` route, each with its body limit.
        fn v1_routes(limit: impl Fn(BodyLimit) -> usize) -> Router<AppState> {
            Router::new()
            $(
                .route(
                    $path,
                    axum::routing::$method($handler)
                        .layer(DefaultBodyLimit::max(limit(BodyLimit::$limit))),
                )
            )*
        }
    };
}

route_table! {
    get "/v1/openapi.json" => openapi::serve, Public, Request, [];
    put "/v1/jobs/{name}" => jobs::upload, Tenant, Upload, [
        InvalidName, InvalidOption, PayloadTooLarge, NotWasm, CoreModule, InvalidComponent,
        DisallowedImports, WrongWorld, UnsupportedProposal, ComponentTooComplex, CompileTimeout,
        CompileMemory, CompileProbeFailed, CompilerBusy, QuotaExceeded,
    ];
    get "/v1/jobs/{name}" => jobs::get, Tenant, Request, [NotFound];
    get "/v1/jobs" => jobs::list, Tenant, Request, [];
    delete "/v1/jobs/{name}/versions/{version}" => jobs::delete_version, Tenant, Request,
        [InvalidName, NotFound, Conflict];
    get "/v1/jobs/{name}/capabilities" => capabilities::get, Tenant, Request, [NotFound];
    put "/v1/jobs/{name}/capabilities" => capabilities::put, Tenant, Request, [
        InvalidName, TooManyPatterns, InvalidPattern, TooManyConfigNames, InvalidConfigName,
        OutsidePolicy, NotFound,
    ];
    post "/v1/jobs/{name}/runs" => runs::enqueue, Tenant, Request,
        [InvalidOption, InvalidValue, NotFound, Conflict, QuotaExceeded];
    post "/v1/runs" => bulk::enqueue, Tenant, Bulk,
        [InvalidOption, InvalidValue, PayloadTooLarge, QuotaExceeded];
    get "/v1/runs" => runs::list, Tenant, Request, [];
    get "/v1/runs/{id}" => runs::get, Tenant, Request, [NotFound];
    delete "/v1/runs/{id}" => control::delete, Tenant, Request, [NotFound, Conflict];
    post "/v1/runs/{id}/cancel" => control::cancel, Tenant, Request, [NotFound, Conflict];
    post "/v1/runs/{id}/retry" => control::retry, Tenant, Request, [NotFound, Conflict];
    get "/v1/runs/{id}/logs" => runs::logs, Tenant, Request, [NotFound];
    post "/v1/batches" => batches::create, Tenant, Bulk,
        [InvalidBatch, InvalidOption, InvalidValue, QuotaExceeded];
    get "/v1/batches/{id}" => batches::get, Tenant, Request, [NotFound];
    post "/v1/batches/{id}/cancel" => batches::cancel, Tenant, Request, [NotFound, Conflict];
    get "/v1/queues" => queues::list, Tenant, Request, [];
    put "/v1/queues/{name}" => queues::put, Tenant, Request, [InvalidName, InvalidOption];
    post "/v1/queues/{name}/pause" => queues::pause, Tenant, Request, [InvalidName];
    post "/v1/queues/{name}/resume" => queues::resume, Tenant, Request, [InvalidName];
    get "/v1/schedules" => schedules::list, Tenant, Request, [];
    put "/v1/schedules/{name}" => schedules::put, Tenant, Request, [
        InvalidName, InvalidCron, InvalidTimezone, InvalidMisfire, InvalidOverlap, InvalidOption,
        InvalidValue, UnknownJob, QuotaExceeded,
    ];
    get "/v1/schedules/{name}" => schedules::get, Tenant, Request, [NotFound];
    delete "/v1/schedules/{name}" => schedules::delete, Tenant, Request, [NotFound];
    post "/v1/schedules/{name}/trigger" => schedules::trigger, Tenant, Request,
        [NotFound, Conflict, InvalidOption, QuotaExceeded];
    post "/v1/schedules/{name}/pause" => schedules::pause, Tenant, Request, [NotFound];
    post "/v1/schedules/{name}/resume" => schedules::resume, Tenant, Request, [NotFound];
    get "/v1/config" => config::list, Tenant, Request, [SecretsKeyMissing];
    put "/v1/config/{name}" => config::put, Tenant, Request,
        [SecretsKeyMissing, InvalidName, ValueTooLarge, InvalidValue, QuotaExceeded];
    get "/v1/config/{name}" => config::get, Tenant, Request,
        [SecretsKeyMissing, InvalidName, NotFound];
    delete "/v1/config/{name}" => config::delete, Tenant, Request,
        [SecretsKeyMissing, InvalidName, NotFound];
    get "/v1/runners" => runners::list, Either, Request, [];
    post "/v1/tenants" => tenants::create, Admin, Request, [InvalidName, Conflict];
    get "/v1/tenants" => tenants::list, Admin, Request, [];
    post "/v1/tenants/{name}/keys" => tenants::create_key, Admin, Request, [NotFound];
    get "/v1/tenants/{name}/keys" => tenants::list_keys, Admin, Request, [NotFound];
    delete "/v1/tenants/{name}/keys/{prefix}" => tenants::disable_key, Admin, Request, [NotFound];
    post "/v1/tenants/{name}/disable" => tenants::disable, Admin, Request, [NotFound];
    post "/v1/tenants/{name}/enable" => tenants::enable, Admin, Request, [NotFound];
    put "/v1/tenants/{name}/weight" => tenants::set_weight, Admin, Request,
        [InvalidOption, NotFound];
    get "/v1/tenants/{name}/limits" => tenants::get_limits, Admin, Request, [NotFound];
    put "/v1/tenants/{name}/limits" => tenants::put_limits, Admin, Request,
        [InvalidOption, NotFound];
    get "/v1/tenants/{name}/policy" => policy::get, Admin, Request, [NotFound];
    put "/v1/tenants/{name}/policy" => policy::put, Admin, Request,
        [TooManyPatterns, InvalidPattern, InvalidOption, NotFound];
    post "/v1/admin/config/reencrypt" => config::reencrypt, Admin, Request, [SecretsKeyMissing];
}

/// The whole HTTP surface of a runner.
pub fn app(state: AppState) -> Router {
    let settings = state.settings.clone();
    let limit = move |limit: BodyLimit| match limit {
        BodyLimit::Request => settings.max_request_bytes,
        BodyLimit::Bulk => settings.max_bulk_request_bytes,
        BodyLimit::Upload => settings.max_component_bytes,
    };
    let request_limit = state.settings.max_request_bytes;
    let http = state.settings.http.clone();
    let health = health::HealthCache::new();
    let rest = v1_routes(limit).route(
        "/healthz",
        get(move |State(state): State<AppState>| health::healthz(state, health.clone())),
    );
    let ui = if state.settings.ui.enabled {
        // The dashboard reads through a small pool of its own with a statement timeout.
        let ui_settings = &state.settings.ui;
        let ui_state = AppState {
            store: state
                .store
                .sibling(crate::store::PoolOptions {
                    statement_timeout: Some(ui_settings.statement_timeout),
                    plans: crate::store::PlanCache::Custom,
                    ..crate::store::PoolOptions::new(ui_settings.pool_size)
                })
                .unwrap_or_else(|| state.store.clone()),
            ..state.clone()
        };
        if let Some(pool) = ui_state.store.pg_pool() {
            state.metrics.watch_pool("ui", pool);
        }
        crate::ui::router()
            .layer(DefaultBodyLimit::max(request_limit))
            .with_state(ui_state)
    } else {
        Router::new()
    };
    rest.merge(ui)
        .merge(crate::metrics::router())
        .fallback(|| async {
            ApiError::not_found("no such route: see docs/api.md for the routes of /v1")
        })
        // Outermost last: refuse overload first, then bad paths, then time the body.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            key_cache::forget_after_tenant_changes,
        ))
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
