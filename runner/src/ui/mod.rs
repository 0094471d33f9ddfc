//! The dashboard: HTML pages under `/ui`, rendered on the server from templates compiled into the
//! binary (`runner/templates/ui/`), with a vendored, pinned htmx for live updates. Every page and
//! every action also works with JavaScript off (links, GET forms, POST forms and 303 redirects).
//!
//! Sessions, not API keys, authenticate it (`session.rs`); the session's tenant is the only scope
//! (the admin's session sees every tenant). This module must never answer a request without a
//! session except the login page and the static files, never change anything on a GET, and never
//! accept a POST from another origin (`guard.rs`).

mod assets;
mod chart;
mod error;
mod guard;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::api::AppState;

pub use session::SESSION_COOKIE;

/// The dashboard's routes (merged into the runner's router when `settings.ui.enabled`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::overview::page))
        .route("/ui/charts/realtime", get(pages::overview::realtime))
        .route("/ui/usage", get(pages::usage::page))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route(
            "/ui/login",
            get(pages::login::form).post(pages::login::submit),
        )
        .route("/ui/logout", post(pages::login::logout))
        .route("/ui/runs", get(pages::runs::page))
        .route("/ui/runs/bulk", post(pages::actions::bulk))
        .route("/ui/runs/{id}", get(pages::run::page))
        .route("/ui/runs/{id}/logs", get(pages::logs::lines))
        .route("/ui/runs/{id}/retry", post(pages::actions::retry))
        .route("/ui/runs/{id}/cancel", post(pages::actions::cancel))
        .route("/ui/runs/{id}/delete", post(pages::actions::delete))
        .route("/ui/jobs", get(pages::jobs::list))
        .route("/ui/jobs/{name}", get(pages::jobs::page))
        .route("/ui/jobs/{name}/runs", post(pages::jobs::enqueue))
        .route("/ui/schedules", get(pages::schedules::list))
        .route("/ui/schedules/{name}", get(pages::schedules::page))
        .route(
            "/ui/schedules/{name}/trigger",
            post(pages::schedules::trigger),
        )
        .route("/ui/schedules/{name}/pause", post(pages::schedules::pause))
        .route(
            "/ui/schedules/{name}/resume",
            post(pages::schedules::resume),
        )
        .route(
            "/ui/schedules/{name}/delete",
            post(pages::schedules::delete),
        )
        .route("/ui/queues", get(pages::queues::list))
        .route("/ui/queues/{name}/pause", post(pages::queues::pause))
        .route("/ui/queues/{name}/resume", post(pages::queues::resume))
        .route("/ui/runners", get(pages::runners::page))
        .route("/ui/batches", get(pages::batches::list))
        .route("/ui/batches/{id}", get(pages::batches::page))
        .route("/ui/batches/{id}/cancel", post(pages::batches::cancel))
        .route("/ui/static/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/robots.txt", get(assets::robots))
        .layer(middleware::from_fn(guard::same_origin_posts))
        .layer(middleware::from_fn(guard::security_headers))
}
