//! `/ui/batches/{id}`: a batch's progress (members by state, ended share as a meter), its
//! continuations and, for batches of at most [`MEMBERS_SHOWN`] runs, its members. Another
//! tenant's batch answers 404 like one that does not exist.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Html;
use uuid::Uuid;

use super::Layout;
use crate::api::AppState;
use crate::store::BatchRun;
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

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
    let tenant_id = match viewer.scope() {
        Some(t) => t,
        None => state
            .store
            .ui_batch_tenant(batch_id)
            .await?
            .ok_or_else(missing)?,
    };
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
    let status = if b.cancelled_at.is_some() {
        "cancelled"
    } else if b.finished_at.is_some() {
        "finished"
    } else {
        "running"
    };
    render(&BatchPage {
        layout: Layout::new(&viewer, "runs"),
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
