//! `/ui/queues`: each queue with settings or active runs: paused, concurrency limit, runs
//! waiting and running now (exact, from the hot table `run_queue`), and how long the oldest
//! enqueued run has waited; with a full key or the admin token, Pause and Resume (the API's
//! `queue_put`, answered with a 303; htmx swaps the list in place).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Layout, tenant_for};
use crate::api::AppState;
use crate::config::valid_queue_name;
use crate::store::QueuePutParams;
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::{Actor, Viewer};
use crate::ui::view;

/// Most queues one page lists (a tenant's queues are few; the admin's list is capped).
pub const LIMIT: i64 = 500;

pub struct QueueView {
    pub tenant: String,
    pub name: String,
    pub base: String,
    pub q: String,
    pub runs_href: String,
    pub paused: bool,
    pub limit: String,
    pub enqueued: String,
    pub running: String,
    pub later: String,
    pub oldest: String,
}

#[derive(Template)]
#[template(path = "ui/queues.html")]
struct QueuesPage {
    layout: Layout,
    admin: bool,
    can_act: bool,
    tenant_filter: String,
    queues: Vec<QueueView>,
    capped: bool,
    cap: i64,
}

#[derive(Debug, Deserialize)]
pub struct QueuesQuery {
    tenant: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<QueuesQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = super::overview::scope(&state, &viewer, &q.tenant).await?;
    let rows = state.store.ui_queue_list(scope, LIMIT + 1).await?;
    let capped = rows.len() as i64 > LIMIT;
    let queues = rows
        .iter()
        .take(LIMIT as usize)
        .map(|r| {
            let tenant_q = viewer.is_admin().then(|| r.tenant.clone());
            QueueView {
                tenant: r.tenant.clone(),
                base: format!("/ui/queues/{}", view::url_encode(&r.name)),
                q: view::query(&[("tenant", tenant_q.clone())]),
                runs_href: format!(
                    "/ui/runs{}",
                    view::query(&[("queue", Some(r.name.clone())), ("tenant", tenant_q)])
                ),
                name: r.name.clone(),
                paused: r.paused,
                limit: r
                    .concurrency_limit
                    .map_or("none".to_string(), |n| view::count(i64::from(n))),
                enqueued: view::count(r.enqueued),
                running: view::count(r.running),
                later: view::count(r.scheduled + r.retrying),
                oldest: r.oldest_due.map_or("–".to_string(), |due| {
                    view::duration_ms((r.now - due).num_milliseconds().max(0))
                }),
            }
        })
        .collect();
    render(&QueuesPage {
        layout: Layout::new(&viewer, "queues"),
        admin: viewer.is_admin(),
        can_act: viewer.can_act(),
        tenant_filter,
        queues,
        capped,
        cap: LIMIT,
    })
}

#[derive(Debug, Deserialize)]
pub struct ActionQuery {
    tenant: Option<String>,
}

async fn set_paused(
    state: AppState,
    viewer: Viewer,
    name: String,
    tenant: Option<String>,
    paused: bool,
) -> UiResult<Response> {
    if !valid_queue_name(&name) {
        return Err(UiError::not_found(format!("No queue named {name:?}.")));
    }
    let tenant = tenant_for(&state, &viewer, tenant).await?;
    state
        .store
        .queue_put(QueuePutParams {
            tenant_id: tenant.id,
            name: name.clone(),
            paused: Some(paused),
            concurrency_limit: None,
        })
        .await?;
    tracing::info!(queue = %name, paused, "dashboard: queue paused or resumed");
    let back = if viewer.is_admin() {
        format!(
            "/ui/queues{}",
            view::query(&[("tenant", Some(tenant.name.clone()))])
        )
    } else {
        "/ui/queues".to_string()
    };
    Ok(Redirect::to(&back).into_response())
}

pub async fn pause(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Response> {
    set_paused(state, viewer, name, q.tenant, true).await
}

pub async fn resume(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Response> {
    set_paused(state, viewer, name, q.tenant, false).await
}
