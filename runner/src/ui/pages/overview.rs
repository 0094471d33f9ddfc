//! `/ui`: what is waiting and running now (exact, from the hot table `run_queue`), how the newest
//! runs ended (a bounded window, labelled), attempt outcomes of the last 24 hours as an SVG chart
//! with a data table, the latest failures and the live runners.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::{Layout, RunRowView};
use crate::api::AppState;
use crate::model::RunState;
use crate::store::UiRunListParams;
use crate::ui::error::{UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

/// How many of the newest runs the finished-state counts and the 24-hour outcomes look at:
/// bounded work per page view, whatever the number of stored runs.
pub const WINDOW: i64 = 10_000;

pub struct Tile {
    pub label: &'static str,
    pub n: String,
    pub href: String,
}

pub struct OutcomeBar {
    pub name: &'static str,
    pub n: String,
    pub y: i64,
    pub text_y: i64,
    pub width: i64,
    pub count_x: i64,
}

pub struct RunnerView {
    pub id: String,
    pub host: String,
    pub queues: String,
    pub slots: String,
    pub heartbeat: String,
    pub leader: bool,
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage {
    layout: Layout,
    admin: bool,
    tenant_filter: String,
    active: Vec<Tile>,
    window: Vec<Tile>,
    window_size: String,
    outcomes: Vec<OutcomeBar>,
    outcomes_total: String,
    chart_height: i64,
    failures: Vec<RunRowView>,
    runners: Vec<RunnerView>,
}

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    tenant: Option<String>,
}

/// The scope of a page: the session's tenant, or for the admin every tenant or the one named by
/// the `tenant` filter (an unknown name shows nothing rather than everything).
pub async fn scope(
    state: &AppState,
    viewer: &Viewer,
    tenant: &Option<String>,
) -> UiResult<(Option<i64>, String)> {
    if !viewer.is_admin() {
        return Ok((viewer.scope(), String::new()));
    }
    match view::given(tenant) {
        None => Ok((None, String::new())),
        Some(name) => {
            let id = state.store.tenant_get(&name).await?.map(|t| t.id);
            Ok((Some(id.unwrap_or(-1)), name))
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<OverviewQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = scope(&state, &viewer, &q.tenant).await?;
    let store = &state.store;
    let tq = |s: &str| {
        format!(
            "/ui/runs{}",
            view::query(&[
                ("state", Some(s.to_string())),
                ("tenant", Some(tenant_filter.clone()))
            ])
        )
    };
    let active_counts = store.ui_active_counts(scope).await?;
    let window_counts = store.ui_window_counts(scope, WINDOW).await?;
    let of = |counts: &[(RunState, i64)], s: RunState| {
        counts
            .iter()
            .find(|(state, _)| *state == s)
            .map_or(0, |(_, n)| *n)
    };
    let active = [
        RunState::Enqueued,
        RunState::Running,
        RunState::Scheduled,
        RunState::Retrying,
    ]
    .into_iter()
    .map(|s| Tile {
        label: s.as_str(),
        n: view::count(of(&active_counts, s)),
        href: tq(s.as_str()),
    })
    .collect();
    let window = [
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
        RunState::Awaiting,
    ]
    .into_iter()
    .map(|s| Tile {
        label: s.as_str(),
        n: view::count(of(&window_counts, s)),
        href: tq(s.as_str()),
    })
    .collect();
    let outcome_counts = store.ui_outcomes_24h(scope, WINDOW).await?;
    let max = outcome_counts
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
        .max(1);
    let outcomes: Vec<OutcomeBar> = view::OUTCOMES
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let n = outcome_counts
                .iter()
                .find(|(x, _)| x == o)
                .map_or(0, |(_, n)| *n);
            let width = n * 380 / max;
            OutcomeBar {
                name: o.as_str(),
                n: view::count(n),
                y: i as i64 * 26 + 4,
                text_y: i as i64 * 26 + 19,
                width,
                count_x: 120 + width + 8,
            }
        })
        .collect();
    let total: i64 = outcome_counts.iter().map(|(_, n)| n).sum();
    let failures = store
        .ui_run_list(UiRunListParams {
            tenant_id: scope,
            state: Some(RunState::Failed),
            limit: 5,
            ..Default::default()
        })
        .await?
        .iter()
        .map(RunRowView::new)
        .collect();
    let now = store.clock().await?;
    let runners = store
        .runner_list(viewer.scope())
        .await?
        .into_iter()
        .map(|r| RunnerView {
            id: format!("…{}", &r.id.to_string()[24..]),
            host: if viewer.is_admin() {
                format!("{} (v{})", r.host, r.version)
            } else {
                "shared".to_string()
            },
            queues: r.queues.join(", "),
            slots: if viewer.is_admin() {
                format!("{} of {} busy", r.in_flight.len(), r.slots)
            } else {
                format!("{} yours of {}", r.in_flight.len(), r.slots)
            },
            heartbeat: format!(
                "{} ago",
                view::duration_ms((now - r.heartbeat_at).num_milliseconds().max(0))
            ),
            leader: r.leader,
        })
        .collect();
    render(&OverviewPage {
        layout: Layout::new(&viewer, "overview"),
        admin: viewer.is_admin(),
        tenant_filter,
        active,
        window,
        window_size: view::count(WINDOW),
        outcomes,
        outcomes_total: view::count(total),
        chart_height: view::OUTCOMES.len() as i64 * 26 + 4,
        failures,
        runners,
    })
}
