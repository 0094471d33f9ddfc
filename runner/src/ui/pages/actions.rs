//! The dashboard's actions: retry, cancel and delete one run (`POST /ui/runs/{id}/...`, answered
//! with a 303 back to the run page, so they work without JavaScript; htmx swaps the page's run
//! in place), and the same on up to 500 selected runs with a result per run.
//!
//! Only an [`Actor`] (a full key or the admin) reaches these; a read-only session gets 403. They
//! call the same store operations as the JSON API, with the dashboard and the key named as the
//! actor in the run's history.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::Layout;
use crate::api::AppState;
use crate::store::{RunCancel, RunDelete, RunRetry};
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::{Actor, Viewer};

/// Most runs one bulk action takes.
pub const MAX_BULK: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Retry,
    Cancel,
    Delete,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "retry" => Some(Action::Retry),
            "cancel" => Some(Action::Cancel),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Cancel => "cancel",
            Action::Delete => "delete",
        }
    }
}

/// What one action did to one run, in words; `Err` when the viewer may not see the run.
async fn apply(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    action: Action,
) -> UiResult<(bool, String)> {
    let Some((tenant_id, _)) = super::run::tenant_of(state, viewer, id).await? else {
        return Err(super::run::no_run(id));
    };
    let actor = viewer.actor();
    let store = &state.store;
    Ok(match action {
        Action::Retry => match store.run_retry_by(tenant_id, id, &actor).await? {
            RunRetry::NotFound => return Err(super::run::no_run(id)),
            RunRetry::Retried => (true, "retried: enqueued for a new attempt".to_string()),
            RunRetry::NotRetryable(s) => (
                false,
                format!(
                    "skipped: it is {}; only failed or cancelled runs can be retried",
                    s.as_str()
                ),
            ),
        },
        Action::Cancel => match store.run_cancel_by(tenant_id, id, &actor).await? {
            RunCancel::NotFound => return Err(super::run::no_run(id)),
            RunCancel::Cancelled => (true, "cancelled".to_string()),
            RunCancel::CancelRequested => (
                true,
                "cancel requested: its runner is interrupting the attempt".to_string(),
            ),
            RunCancel::Ended(s) => (false, format!("skipped: it already ended ({})", s.as_str())),
        },
        Action::Delete => match store.run_delete(tenant_id, id).await? {
            RunDelete::NotFound => return Err(super::run::no_run(id)),
            RunDelete::Deleted => (true, "deleted".to_string()),
            RunDelete::NotEnded(s) => (
                false,
                format!(
                    "skipped: it is {}; cancel it before deleting it",
                    s.as_str()
                ),
            ),
        },
    })
}

async fn one(state: AppState, actor: Actor, id: String, action: Action) -> UiResult<Response> {
    let id = super::run::parse_id(&id)?;
    let (done, message) = apply(&state, &actor.0, id, action).await?;
    tracing::info!(run = %id, action = action.as_str(), done, "dashboard action");
    if !done {
        return Err(UiError {
            status: axum::http::StatusCode::CONFLICT,
            title: "Not done",
            message: format!("Run {id}: {message}."),
        });
    }
    let to = if action == Action::Delete {
        "/ui/runs".to_string()
    } else {
        format!("/ui/runs/{id}")
    };
    Ok(Redirect::to(&to).into_response())
}

pub async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> UiResult<Response> {
    one(state, actor, id, Action::Retry).await
}

pub async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> UiResult<Response> {
    one(state, actor, id, Action::Cancel).await
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> UiResult<Response> {
    one(state, actor, id, Action::Delete).await
}

pub struct RowResult {
    pub id: String,
    pub href: Option<String>,
    pub done: bool,
    pub message: String,
}

#[derive(Template)]
#[template(path = "ui/bulk.html")]
struct BulkPage {
    layout: Layout,
    action: &'static str,
    done: usize,
    skipped: usize,
    rows: Vec<RowResult>,
    back: String,
}

pub async fn bulk(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    body: Bytes,
) -> UiResult<Html<String>> {
    let mut ids = Vec::new();
    let mut action = None;
    let mut back = "/ui/runs".to_string();
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "id" => ids.push(v.into_owned()),
            "action" => action = Action::parse(&v),
            "back" if v.starts_with("/ui/runs") && !v.starts_with("//") => back = v.into_owned(),
            _ => {}
        }
    }
    let action = action.ok_or_else(|| UiError::bad_request("choose retry, cancel or delete"))?;
    if ids.is_empty() {
        return Err(UiError::bad_request(
            "select at least one run, then choose the action",
        ));
    }
    if ids.len() > MAX_BULK {
        return Err(UiError::bad_request(format!(
            "{} runs selected; one action takes at most {MAX_BULK}",
            ids.len()
        )));
    }
    let mut rows = Vec::with_capacity(ids.len());
    for raw in ids {
        let row = match Uuid::parse_str(&raw) {
            Err(_) => RowResult {
                id: raw,
                href: None,
                done: false,
                message: "not a run id".to_string(),
            },
            Ok(id) => match apply(&state, &viewer, id, action).await {
                Ok((done, message)) => RowResult {
                    href: (action != Action::Delete || !done).then(|| format!("/ui/runs/{id}")),
                    id: id.to_string(),
                    done,
                    message,
                },
                Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => RowResult {
                    id: id.to_string(),
                    href: None,
                    done: false,
                    message: "no such run".to_string(),
                },
                Err(e) => return Err(e),
            },
        };
        rows.push(row);
    }
    let done = rows.iter().filter(|r| r.done).count();
    tracing::info!(
        action = action.as_str(),
        done,
        total = rows.len(),
        "dashboard bulk action"
    );
    render(&BulkPage {
        layout: Layout::new(&viewer, "runs"),
        action: action.as_str(),
        done,
        skipped: rows.len() - done,
        rows,
        back,
    })
}
