//! Where `/metrics` is served: on the API listener behind the admin token, and optionally on
//! a listener of its own without auth (`--metrics-listen`, for a scraper on a private network).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::api::AppState;
use crate::api::extract::AdminAuth;
use crate::config::HttpSettings;
use crate::sandbox::Sandbox;
use crate::store::Store;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` on the API: admin token required (the figures describe every tenant).
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(api_metrics))
}

/// `GET /metrics`, for the OpenAPI document (the route is outside the API's route table: it
/// answers text, and `--metrics-listen` serves it on a listener of its own too).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    summary = "Prometheus metrics in the text format (admin token; see docs/metrics.md)",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "the figures, Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "no or wrong admin token"),
        (status = 403, description = "the runner has no admin token"),
    ),
)]
pub async fn api_metrics(_: AdminAuth, State(state): State<AppState>) -> Response {
    exposition(&state.metrics, state.store.as_ref(), &state.sandbox).await
}

async fn exposition(metrics: &Metrics, store: &dyn Store, sandbox: &Sandbox) -> Response {
    let body = metrics.render(store, sandbox).await;
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], body).into_response()
}

#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    sandbox: Sandbox,
}

/// Serves `GET /metrics` without auth on `listener` until `stop` (every other path is 404).
/// Anyone who reaches the address reads the figures: bind it to a private interface.
pub async fn serve_separately(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    http: HttpSettings,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Scrape>| async move {
                exposition(&s.metrics, s.store.as_ref(), &s.sandbox).await
            }),
        )
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                "only GET /metrics is served here\n",
            )
        })
        .with_state(Scrape {
            metrics,
            store,
            sandbox,
        });
    let http = HttpSettings {
        // A scraper or two: no need for the API's connection budget.
        max_connections: http.max_connections.min(64),
        ..http
    };
    crate::server::serve(listener, app, http, stop).await;
}
