//! `/ui/batches`: the batches, newest first, with their progress (from the batch's own
//! counters), 50 a page. `/ui/batches/{id}`: a batch's progress (members by state, ended share
//! as a meter), its continuations and, for batches of at most [`MEMBERS_SHOWN`] runs, its
//! members; a full key or the admin can cancel it. Another tenant's batch answers 404 like one
//! that does not exist.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::Layout;
use crate::api::AppState;
use crate::store::{BatchCancel, BatchRun};
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::{Actor, Viewer};
use crate::ui::view;

/// Batches per page of the list.
pub const PAGE: i64 = 50;

pub struct BatchRowView {
    pub href: String,
    pub short_id: String,
    pub tenant: String,
    pub created: String,
    pub created_dt: String,
    pub total: String,
    pub ended_pct: i64,
    pub ended: String,
    pub unsuccessful: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "ui/batches.html")]
struct BatchesPage {
    layout: Layout,
    admin: bool,
    tenant_filter: String,
    rows: Vec<BatchRowView>,
    older: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BatchesQuery {
    tenant: Option<String>,
    before: Option<String>,
}

fn status(finished: bool, cancelled: bool) -> &'static str {
    if cancelled {
        "cancelled"
    } else if finished {
        "finished"
    } else {
        "running"
    }
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<BatchesQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = super::overview::scope(&state, &viewer, &q.tenant).await?;
    let before = view::given(&q.before)
        .map(|b| {
            Uuid::parse_str(&b)
                .map_err(|_| UiError::bad_request("before: not a batch id; use the page's links"))
        })
        .transpose()?;
    let mut batches = state.store.ui_batch_list(scope, before, PAGE + 1).await?;
    let more = batches.len() as i64 > PAGE;
    batches.truncate(PAGE as usize);
    let older = match (more, batches.last()) {
        (true, Some(last)) => Some(format!(
            "/ui/batches{}",
            view::query(&[
                ("tenant", Some(tenant_filter.clone())),
                ("before", Some(last.id.to_string())),
            ])
        )),
        _ => None,
    };
    let rows = batches
        .iter()
        .map(|b| {
            let ended = i64::from(b.total - b.pending);
            BatchRowView {
                href: format!("/ui/batches/{}", b.id),
                short_id: format!("…{}", &b.id.to_string()[24..]),
                tenant: b.tenant.clone(),
                created: view::time(b.created_at),
                created_dt: view::datetime(b.created_at),
                total: view::count(i64::from(b.total)),
                ended_pct: view::percent(ended, i64::from(b.total)),
                ended: view::count(ended),
                unsuccessful: view::count(i64::from(b.unsuccessful)),
                status: status(b.finished_at.is_some(), b.cancelled_at.is_some()),
            }
        })
        .collect();
    render(&BatchesPage {
        layout: Layout::new(&viewer, "batches"),
        admin: viewer.is_admin(),
        tenant_filter,
        rows,
        older,
    })
}

/// `POST /ui/batches/{id}/cancel`: cancels every member not yet ended (as `POST
/// /v1/batches/{id}/cancel`), then back to the batch's page.
pub async fn cancel(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let missing = || UiError::not_found(format!("No batch with id {id}."));
    let batch_id = Uuid::parse_str(&id).map_err(|_| missing())?;
    let tenant_id = batch_tenant(&state, &viewer, batch_id)
        .await?
        .ok_or_else(missing)?;
    match state.store.batch_cancel(tenant_id, batch_id).await? {
        BatchCancel::NotFound => Err(missing()),
        BatchCancel::Finished | BatchCancel::Cancelled { .. } => {
            Ok(Redirect::to(&format!("/ui/batches/{batch_id}")).into_response())
        }
    }
}

/// The tenant whose batch this is, as the viewer may see it.
async fn batch_tenant(state: &AppState, viewer: &Viewer, id: Uuid) -> UiResult<Option<i64>> {
    Ok(match viewer.scope() {
        Some(t) => Some(t),
        None => state.store.ui_batch_tenant(id).await?,
    })
}

/// Batches up to this size list their members; larger ones show counts only.
pub const MEMBERS_SHOWN: i32 = 200;

pub struct MemberView {
    pub href: String,
    pub short_id: String,
    pub job: String,
    pub state: &'static str,
    pub on: String,
}

#[derive(Template)]
#[template(path = "ui/batch.html")]
struct BatchPage {
    layout: Layout,
    can_act: bool,
    id: String,
    total: i32,
    progress: i64,
    status: &'static str,
    created: String,
    created_dt: String,
    finished: String,
    counts: Vec<(&'static str, String)>,
    deleted: i64,
    continuations: Vec<MemberView>,
    members: Option<Vec<MemberView>>,
    members_shown: i32,
}

fn member(r: &BatchRun) -> MemberView {
    MemberView {
        href: format!("/ui/runs/{}", r.id),
        short_id: format!("…{}", &r.id.to_string()[24..]),
        job: r.job.clone(),
        state: r.state.as_str(),
        on: r.on.clone().unwrap_or_default(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> UiResult<Html<String>> {
    let missing = || UiError::not_found(format!("No batch with id {id}."));
    let batch_id = Uuid::parse_str(&id).map_err(|_| missing())?;
    let tenant_id = batch_tenant(&state, &viewer, batch_id)
        .await?
        .ok_or_else(missing)?;
    let store = &state.store;
    let mut detail = store
        .batch_get(tenant_id, batch_id, false)
        .await?
        .ok_or_else(missing)?;
    if detail.batch.total <= MEMBERS_SHOWN {
        detail = store
            .batch_get(tenant_id, batch_id, true)
            .await?
            .ok_or_else(missing)?;
    }
    let b = &detail.batch;
    let status = status(b.finished_at.is_some(), b.cancelled_at.is_some());
    render(&BatchPage {
        layout: Layout::new(&viewer, "batches"),
        can_act: viewer.can_act() && status == "running",
        id: b.id.to_string(),
        total: b.total,
        progress: detail.progress,
        status,
        created: view::time(b.created_at),
        created_dt: view::datetime(b.created_at),
        finished: b.finished_at.map(view::time).unwrap_or_default(),
        counts: detail
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (*s, view::count(*n)))
            .collect(),
        deleted: detail.deleted,
        continuations: detail.continuations.iter().map(member).collect(),
        members: detail.runs.as_ref().map(|r| r.iter().map(member).collect()),
        members_shown: MEMBERS_SHOWN,
    })
}
