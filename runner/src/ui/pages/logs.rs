//! `/ui/runs/{id}/logs`: the live tail of the run page. htmx polls it with the id of the last
//! line shown; it answers the new lines (oldest first, escaped) followed by the next poller, and
//! once the run has ended by a closing line without a trigger, which stops the polling. The
//! run's state badge and progress are refreshed alongside (out-of-band swaps).

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::AppState;
use crate::model::Level;
use crate::store::{LogLine, UiLogParams};
use crate::ui::error::{UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

/// Most lines one poll returns (the next poll continues after them).
const TAIL_PAGE: i64 = 500;

pub struct LineView {
    pub id: i64,
    pub at: String,
    pub at_dt: String,
    pub level: &'static str,
    pub message: String,
    pub fields: String,
}

impl LineView {
    pub fn new(l: &LogLine) -> LineView {
        let fields = match &l.fields {
            serde_json::Value::Object(m) if m.is_empty() => String::new(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        LineView {
            id: l.id,
            at: l.at.format("%H:%M:%S%.3f").to_string(),
            at_dt: view::datetime(l.at),
            level: l.level.as_str(),
            message: l.message.clone(),
            fields,
        }
    }
}

/// The element that polls for the next lines.
pub struct Tail {
    pub href: String,
    pub every: String,
}

impl Tail {
    pub fn new(
        run: Uuid,
        attempt: Option<i32>,
        level: Option<Level>,
        after: Option<i64>,
        every: Duration,
    ) -> Tail {
        Tail {
            href: format!(
                "/ui/runs/{run}/logs{}",
                view::query(&[
                    ("attempt", attempt.map(|a| a.to_string())),
                    ("level", level.map(|l| l.as_str().to_string())),
                    ("after", Some(after.unwrap_or(0).to_string())),
                ])
            ),
            every: format!("{}ms", every.as_millis().max(100)),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/log_tail.html")]
struct TailFragment {
    lines: Vec<LineView>,
    tail: Option<Tail>,
    state: &'static str,
    progress: Option<i16>,
    progress_message: String,
}

#[derive(Debug, Deserialize)]
pub struct TailQuery {
    attempt: Option<String>,
    level: Option<String>,
    after: Option<String>,
}

pub async fn lines(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<TailQuery>,
) -> UiResult<Html<String>> {
    let id = super::run::parse_id(&id)?;
    let (detail, tenant_id, _) = super::run::load(&state, &viewer, id).await?;
    let run = &detail.run;
    let attempt: Option<i32> = super::run::parse_number(&q.attempt, "attempt")?;
    let level = super::run::parse_level(&q.level)?;
    let after: i64 = super::run::parse_number(&q.after, "after")?.unwrap_or(0);
    let lines = state
        .store
        .ui_log_list(UiLogParams {
            tenant_id,
            run_id: id,
            attempt: attempt.filter(|a| *a > 0),
            min_level: level,
            before: None,
            after: Some(after),
            limit: TAIL_PAGE,
        })
        .await?;
    let last = lines.last().map_or(after, |l| l.id);
    // Lines written by the attempt's last journal flush arrive with its end: poll once more
    // after the run ended only if this poll still found lines.
    let tail = (!run.state.is_terminal() || !lines.is_empty())
        .then(|| Tail::new(id, attempt, level, Some(last), state.settings.ui.log_poll));
    render(&TailFragment {
        lines: lines.iter().map(LineView::new).collect(),
        tail,
        state: run.state.as_str(),
        progress: run.progress,
        progress_message: run.progress_message.clone().unwrap_or_default(),
    })
}
