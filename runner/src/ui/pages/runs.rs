//! `/ui/runs`: runs newest first, a tab per state, filters (job, version, queue, the latest
//! attempt's outcome, created from/to in UTC; the admin also by tenant), a run-id jump, keyset paging (Newer/Older,
//! never an offset) and bulk retry/cancel/delete of the selected rows.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{Layout, RunRowView};
use crate::api::AppState;
use crate::model::RunState;
use crate::store::UiRunListParams;
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

/// Rows per page.
pub const PAGE: i64 = 50;

pub struct Tab {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "ui/runs.html")]
struct RunsPage {
    layout: Layout,
    admin: bool,
    can_act: bool,
    tabs: Vec<Tab>,
    state: String,
    job: String,
    queue: String,
    outcome: String,
    version: String,
    tenant: String,
    from: String,
    to: String,
    /// Quick ranges: (label, link).
    ranges: Vec<(&'static str, String)>,
    outcomes: Vec<&'static str>,
    rows: Vec<RunRowView>,
    newer: Option<String>,
    older: Option<String>,
    back: String,
}

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    state: Option<String>,
    job: Option<String>,
    queue: Option<String>,
    outcome: Option<String>,
    version: Option<String>,
    tenant: Option<String>,
    /// Created at or after (UTC): `2026-05-01T09:30`, with seconds, or a date.
    from: Option<String>,
    /// Created before (UTC), the same forms.
    to: Option<String>,
    before: Option<String>,
    after: Option<String>,
    /// Run-id jump.
    id: Option<String>,
}

impl RunsQuery {
    /// A link to the run list with this page's filters, `set` replacing (or, with `None`,
    /// dropping) the parameters it names.
    fn link(&self, set: &[(&'static str, Option<String>)]) -> String {
        let mut pairs: Vec<(&str, Option<String>)> = [
            ("state", &self.state),
            ("job", &self.job),
            ("queue", &self.queue),
            ("outcome", &self.outcome),
            ("version", &self.version),
            ("tenant", &self.tenant),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
        .map(|(k, v)| (k, view::given(v)))
        .collect();
        pairs.extend(set.iter().cloned());
        format!("/ui/runs{}", view::query(&pairs))
    }
}

fn cursor(v: &Option<String>, name: &str) -> UiResult<Option<Uuid>> {
    view::given(v)
        .map(|c| {
            Uuid::parse_str(&c).map_err(|_| {
                UiError::bad_request(format!("{name}: not a run id; use the page's links"))
            })
        })
        .transpose()
}

/// A time typed into the filter (the browser's `datetime-local` value, read as UTC), or a
/// date alone (its midnight).
fn time_filter(v: &Option<String>, name: &str) -> UiResult<Option<DateTime<Utc>>> {
    let Some(text) = view::given(v) else {
        return Ok(None);
    };
    let text = text.trim().trim_end_matches('Z');
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    Err(UiError::bad_request(format!(
        "{name}: {text:?} is not a time; use 2026-05-01T09:30 (UTC) or a date"
    )))
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<RunsQuery>,
) -> UiResult<Response> {
    if let Some(id) = view::given(&q.id) {
        let id = Uuid::parse_str(&id).map_err(|_| {
            UiError::bad_request(format!("{id:?} is not a run id: run ids are UUIDs"))
        })?;
        return Ok(Redirect::to(&format!("/ui/runs/{id}")).into_response());
    }
    let (scope, tenant) = super::overview::scope(&state, &viewer, &q.tenant).await?;
    let run_state = match view::given(&q.state) {
        None => None,
        Some(s) => Some(
            RunState::parse(&s)
                .ok_or_else(|| UiError::bad_request(format!("{s:?} is not a run state")))?,
        ),
    };
    let outcome = match view::given(&q.outcome) {
        None => None,
        Some(o) => Some(
            view::parse_outcome(&o)
                .ok_or_else(|| UiError::bad_request(format!("{o:?} is not an outcome")))?,
        ),
    };
    let version = match view::given(&q.version) {
        None => None,
        Some(v) => Some(
            v.trim_start_matches('v')
                .parse::<i32>()
                .map_err(|_| UiError::bad_request(format!("version {v:?} is not a number")))?,
        ),
    };
    let created_from = time_filter(&q.from, "from")?;
    let created_before = time_filter(&q.to, "to")?;
    let before = cursor(&q.before, "before")?;
    let after = cursor(&q.after, "after")?;
    // One row more than shown says whether the next page in this direction exists.
    let mut runs = state
        .store
        .ui_run_list(UiRunListParams {
            tenant_id: scope,
            state: run_state,
            job: view::given(&q.job),
            queue: view::given(&q.queue),
            outcome,
            version,
            before,
            after,
            created_from,
            created_before,
            limit: PAGE + 1,
        })
        .await?;
    let more = runs.len() as i64 > PAGE;
    if more {
        if after.is_some() {
            runs.remove(0);
        } else {
            runs.pop();
        }
    }
    let filters = |extra: (&'static str, Option<String>)| q.link(&[extra]);
    let (first, last) = (runs.first().map(|r| r.id), runs.last().map(|r| r.id));
    // Older exists when this page came from above with a full page, or from below at all.
    let older = match (after.is_some(), more) {
        (false, true) | (true, _) => last.map(|id| filters(("before", Some(id.to_string())))),
        _ => None,
    };
    let newer = match (after.is_some(), more, before.is_some()) {
        (true, true, _) | (false, _, true) => {
            first.map(|id| filters(("after", Some(id.to_string()))))
        }
        _ => None,
    };
    let tab = |label: &'static str, s: Option<&str>| Tab {
        label,
        current: view::given(&q.state).as_deref() == s,
        // A tab keeps the filters but the outcome (which may not fit another state).
        href: q.link(&[("state", s.map(str::to_string)), ("outcome", None)]),
    };
    let now = state.store.clock().await?;
    let ranges = [
        ("last hour", Duration::hours(1)),
        ("24 h", Duration::hours(24)),
        ("7 days", Duration::days(7)),
    ]
    .into_iter()
    .map(|(label, span)| {
        let from = (now - span).format("%Y-%m-%dT%H:%M").to_string();
        (label, q.link(&[("from", Some(from)), ("to", None)]))
    })
    .collect();
    let mut tabs = vec![tab("All", None)];
    tabs.extend(
        RunState::ALL
            .iter()
            .map(|s| tab(s.as_str(), Some(s.as_str()))),
    );
    let back = filters(("before", before.map(|b| b.to_string())));
    Ok(render(&RunsPage {
        layout: Layout::new(&viewer, "runs"),
        admin: viewer.is_admin(),
        can_act: viewer.can_act(),
        tabs,
        state: view::given(&q.state).unwrap_or_default(),
        job: view::given(&q.job).unwrap_or_default(),
        queue: view::given(&q.queue).unwrap_or_default(),
        outcome: view::given(&q.outcome).unwrap_or_default(),
        version: view::given(&q.version).unwrap_or_default(),
        tenant,
        from: view::given(&q.from).unwrap_or_default(),
        to: view::given(&q.to).unwrap_or_default(),
        ranges,
        outcomes: view::OUTCOMES.iter().map(|o| o.as_str()).collect(),
        rows: runs.iter().map(RunRowView::new).collect(),
        newer,
        older,
        back,
    })?
    .into_response())
}
