//! `/ui`: what is waiting and running now (exact, from the hot table `run_queue`), how the newest
//! runs ended (a bounded window, labelled), a realtime chart (the last 10 minutes in 10-second
//! buckets, refreshed every 5 s) and a history chart (24 h or 7 d by hour, 30 d by day) of
//! attempts stacked by outcome kind, both from the rollup `run_stats` with their data tables,
//! fuel used today, the latest failures and the live runners.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;

use super::{Layout, RunRowView};
use crate::api::AppState;
use crate::model::{Outcome, RunState};
use crate::store::UiRunListParams;
use crate::ui::chart::{self, Buckets, Chart};
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
    realtime: String,
    realtime_href: String,
    history: String,
    ranges: Vec<RangeLink>,
    day_tiles: Vec<Tile>,
    fuel_today: String,
    attempts_today: String,
    usage_href: String,
    failures: Vec<RunRowView>,
    runners: Vec<RunnerView>,
}

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    tenant: Option<String>,
    /// History range: `24h` (default), `7d` or `30d`.
    range: Option<String>,
}

pub struct RangeLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The history chart's ranges: (name, width of a bucket, buckets, label every n-th).
const RANGES: [(&str, i64, usize, usize); 3] = [
    ("24h", 3600, 24, 3),
    ("7d", 3600, 168, 24),
    ("30d", 86400, 30, 5),
];

/// How often the realtime chart refreshes itself (htmx; not in a background tab).
const REALTIME_EVERY: &str = "5s";

fn floor(at: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    at.duration_trunc(Duration::seconds(seconds)).unwrap_or(at)
}

/// The last 10 minutes in 10-second buckets.
async fn realtime_chart(
    state: &AppState,
    scope: Option<i64>,
    now: DateTime<Utc>,
) -> UiResult<Chart> {
    let start = floor(now, 10) - Duration::seconds(590);
    let points = state.store.stats_series(scope, 10, start).await?;
    Ok(chart::stacked(
        "realtime",
        "Attempts that ended in the last 10 minutes, per 10 seconds, by outcome".to_string(),
        &points,
        &Buckets {
            start,
            width: Duration::seconds(10),
            n: 60,
            label_every: 12,
            label: |b| b.format("%H:%M:%S").to_string(),
        },
    ))
}

/// `/ui/charts/realtime`: the realtime chart alone, for its refresh.
pub async fn realtime(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<OverviewQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = scope(&state, &viewer, &q.tenant).await?;
    let now = state.store.clock().await?;
    let chart = realtime_chart(&state, scope, now).await?;
    Ok(Html(realtime_box(&chart, &realtime_href(&tenant_filter))?))
}

fn realtime_href(tenant_filter: &str) -> String {
    format!(
        "/ui/charts/realtime{}",
        view::query(&[("tenant", Some(tenant_filter.to_string()))])
    )
}

/// The realtime chart in the element that refreshes it.
#[derive(Template)]
#[template(path = "ui/realtime.html")]
struct RealtimeBox<'a> {
    href: &'a str,
    every: &'static str,
    /// The chart, rendered (and escaped) by its own template.
    chart: String,
}

fn realtime_box(chart: &Chart, href: &str) -> UiResult<String> {
    Ok(RealtimeBox {
        href,
        every: REALTIME_EVERY,
        chart: chart.render()?,
    }
    .render()?)
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
    let now = store.clock().await?;
    let realtime = realtime_chart(&state, scope, now).await?;
    let range = RANGES
        .iter()
        .find(|r| Some(r.0) == q.range.as_deref())
        .unwrap_or(&RANGES[0]);
    let (range_label, width, n, label_every) = *range;
    let start = floor(now, width) - Duration::seconds(width * (n as i64 - 1));
    let points = store.stats_series(scope, width as i32, start).await?;
    let history = chart::stacked(
        "history",
        format!(
            "Attempts that ended in the last {}, per {}, by outcome",
            match range_label {
                "24h" => "24 hours",
                "7d" => "7 days",
                _ => "30 days",
            },
            if width == 3600 { "hour" } else { "day (UTC)" }
        ),
        &points,
        &Buckets {
            start,
            width: Duration::seconds(width),
            n,
            label_every,
            label: if width == 3600 {
                |b| b.format("%a %H:00").to_string()
            } else {
                |b| b.format("%b %d").to_string()
            },
        },
    );
    // Runs ended by an attempt in the last 24 hours (hourly rows), by how they ended.
    let last_day = store
        .stats_series(scope, 3600, floor(now, 3600) - Duration::hours(23))
        .await?;
    let ended = |keep: fn(Outcome) -> bool| -> i64 {
        last_day
            .iter()
            .filter(|p| keep(p.outcome))
            .map(|p| p.runs_ended)
            .sum()
    };
    let day_tiles = vec![
        Tile {
            label: "succeeded",
            n: view::count(ended(|o| o == Outcome::Ok)),
            href: tq("succeeded"),
        },
        // The attempt's outcome does not say whether its run ended failed or cancelled (a
        // cancelled attempt may return an error; the rescuer cancels with runner_lost): one tile.
        Tile {
            label: "did not succeed",
            n: view::count(ended(|o| o != Outcome::Ok)),
            href: tq("failed"),
        },
        Tile {
            label: "attempts",
            n: view::count(last_day.iter().map(|p| p.attempts).sum()),
            href: format!(
                "/ui/usage{}",
                view::query(&[("tenant", Some(tenant_filter.clone()))])
            ),
        },
    ];
    let today = floor(now, 86400);
    let usage = store.stats_usage(scope, today, 10_000).await?;
    let ranges = RANGES
        .iter()
        .map(|r| RangeLink {
            label: r.0,
            href: format!(
                "/ui{}",
                view::query(&[
                    ("tenant", Some(tenant_filter.clone())),
                    ("range", Some(r.0.to_string()))
                ])
            ),
            current: r.0 == range_label,
        })
        .collect();
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
    let rt_href = realtime_href(&tenant_filter);
    let usage_href = format!(
        "/ui/usage{}",
        view::query(&[("tenant", Some(tenant_filter.clone()))])
    );
    render(&OverviewPage {
        layout: Layout::new(&viewer, "overview"),
        admin: viewer.is_admin(),
        tenant_filter,
        active,
        window,
        window_size: view::count(WINDOW),
        realtime: realtime_box(&realtime, &rt_href)?,
        realtime_href: rt_href,
        history: history.render()?,
        ranges,
        day_tiles,
        fuel_today: view::compact(usage.iter().map(|u| u.fuel_used).sum()),
        attempts_today: view::count(usage.iter().map(|u| u.attempts).sum()),
        usage_href,
        failures,
        runners,
    })
}
