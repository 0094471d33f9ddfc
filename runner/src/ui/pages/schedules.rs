//! `/ui/schedules`: every schedule with its cron expression (in words where it has a common
//! shape), time zone, next 5 fire times, latest run and whether it is paused; with a full key or
//! the admin token, Trigger now, Pause, Resume and Delete (`POST /ui/schedules/{name}/...`, the
//! same store calls as the JSON API, answered with a 303; htmx swaps the list in place).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{Layout, tenant_for};
use crate::api::AppState;
use crate::model::RunState;
use crate::schedule::Timetable;
use crate::store::{Schedule, ScheduleTrigger, ScheduleTriggerParams};
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::{Actor, Viewer};
use crate::ui::view;

/// Schedules per page.
pub const PAGE: i64 = 50;
/// Fire times shown per schedule.
const NEXT_FIRE_TIMES: usize = 5;

pub struct FireTime {
    pub utc: String,
    pub dt: String,
}

pub struct ScheduleView {
    pub tenant: String,
    pub name: String,
    /// The action URLs' prefix (`/ui/schedules/{name}`) and query (`?tenant=` for the admin).
    pub base: String,
    pub q: String,
    /// The schedule's own page.
    pub href: String,
    pub job: String,
    pub job_href: String,
    pub cron: String,
    pub cron_words: String,
    pub timezone: String,
    pub overlap: &'static str,
    pub paused: bool,
    pub next: Vec<FireTime>,
    pub last_run: Option<(String, String, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "ui/schedules.html")]
struct SchedulesPage {
    layout: Layout,
    admin: bool,
    can_act: bool,
    tenant_filter: String,
    schedules: Vec<ScheduleView>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SchedulesQuery {
    tenant: Option<String>,
    after_tenant: Option<String>,
    after: Option<String>,
}

fn next_fire_times(s: &Schedule) -> Vec<DateTime<Utc>> {
    let (Some(first), Ok(timetable)) = (s.next_fire_at, Timetable::parse(&s.cron, &s.timezone))
    else {
        return Vec::new();
    };
    std::iter::once(first)
        .chain(timetable.upcoming(first, NEXT_FIRE_TIMES - 1))
        .collect()
}

/// A schedule as the list and its page show it.
fn schedule_view(
    admin: bool,
    tenant: &str,
    s: &Schedule,
    last_run: Option<(Uuid, RunState, DateTime<Utc>)>,
) -> ScheduleView {
    let q = if admin {
        view::query(&[("tenant", Some(tenant.to_string()))])
    } else {
        String::new()
    };
    let base = format!("/ui/schedules/{}", view::url_encode(&s.name));
    ScheduleView {
        tenant: tenant.to_string(),
        href: format!("{base}{q}"),
        base,
        job_href: format!("/ui/jobs/{}{q}", view::url_encode(&s.job)),
        q,
        name: s.name.clone(),
        job: s.job.clone(),
        cron: s.cron.clone(),
        cron_words: view::cron_words(&s.cron),
        timezone: s.timezone.clone(),
        overlap: s.overlap.as_str(),
        paused: s.paused,
        next: next_fire_times(s)
            .into_iter()
            .map(|t| FireTime {
                utc: view::time(t),
                dt: view::datetime(t),
            })
            .collect(),
        last_run: last_run.map(|(id, st, at)| {
            (
                format!("/ui/runs/{id}"),
                format!("…{}", &id.to_string()[24..]),
                st.as_str(),
                view::time(at),
            )
        }),
    }
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<SchedulesQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = super::overview::scope(&state, &viewer, &q.tenant).await?;
    let after = view::given(&q.after).map(|name| {
        let tenant = view::given(&q.after_tenant)
            .or_else(|| viewer.tenant.as_ref().map(|t| t.name.clone()))
            .unwrap_or_default();
        (tenant, name)
    });
    let mut rows = state.store.ui_schedule_list(scope, after, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let ids: Vec<i64> = rows.iter().map(|r| r.schedule.id).collect();
    let last = state.store.ui_schedule_last_runs(scope, &ids).await?;
    let schedules: Vec<ScheduleView> = rows
        .iter()
        .map(|r| {
            let last_run = last
                .iter()
                .find(|l| l.0 == r.schedule.id)
                .map(|(_, id, st, at)| (*id, *st, *at));
            schedule_view(viewer.is_admin(), &r.tenant, &r.schedule, last_run)
        })
        .collect();
    let next = more.then(|| {
        let last = schedules.last().expect("more than a page");
        format!(
            "/ui/schedules{}",
            view::query(&[
                ("tenant", Some(tenant_filter.clone())),
                ("after_tenant", Some(last.tenant.clone())),
                ("after", Some(last.name.clone())),
            ])
        )
    });
    render(&SchedulesPage {
        layout: Layout::new(&viewer, "schedules"),
        admin: viewer.is_admin(),
        can_act: viewer.can_act(),
        tenant_filter,
        schedules,
        next,
    })
}

/// Runs and skipped fire times shown on a schedule's page.
const DETAIL_ROWS: i64 = 20;

pub struct ScheduleRunView {
    pub href: String,
    pub short_id: String,
    pub state: &'static str,
    pub fire: String,
    pub created: String,
    pub created_dt: String,
    pub finished: String,
}

pub struct SkippedView {
    pub fire: String,
    pub fire_dt: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "ui/schedule.html")]
struct SchedulePage {
    layout: Layout,
    can_act: bool,
    s: ScheduleView,
    /// The query of the actions that come back to this page.
    detail_q: String,
    misfire: String,
    input: String,
    runs: Vec<ScheduleRunView>,
    skipped: Vec<SkippedView>,
}

/// `/ui/schedules/{name}`: one schedule with its latest runs and the fire times it skipped
/// (and why).
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Html<String>> {
    let tenant = tenant_for(&state, &viewer, q.tenant).await?;
    let store = &state.store;
    let s = store
        .schedule_get(tenant.id, &name)
        .await?
        .ok_or_else(|| no_schedule(&name))?;
    let runs = store.schedule_runs(tenant.id, &[s.id], DETAIL_ROWS).await?;
    let skipped = store.schedule_skipped(tenant.id, s.id, DETAIL_ROWS).await?;
    let last = runs.first().map(|(_, r)| (r.id, r.state, r.created_at));
    render(&SchedulePage {
        layout: Layout::new(&viewer, "schedules"),
        can_act: viewer.can_act(),
        detail_q: view::query(&[
            ("tenant", viewer.is_admin().then(|| tenant.name.clone())),
            ("from", Some("schedule".to_string())),
        ]),
        misfire: match s.misfire.policy {
            crate::schedule::MisfirePolicy::FireAll => format!(
                "fire_all (at most {}), grace {}",
                s.misfire.max,
                view::duration_ms(s.misfire.grace_ms as i64)
            ),
            policy => format!(
                "{}, grace {}",
                policy.as_str(),
                view::duration_ms(s.misfire.grace_ms as i64)
            ),
        },
        input: serde_json::to_string_pretty(&s.input).unwrap_or_default(),
        runs: runs
            .iter()
            .map(|(_, r)| ScheduleRunView {
                href: format!("/ui/runs/{}", r.id),
                short_id: format!("…{}", &r.id.to_string()[24..]),
                state: r.state.as_str(),
                fire: r
                    .fire_at
                    .map(view::time)
                    .unwrap_or_else(|| "triggered".to_string()),
                created: view::time(r.created_at),
                created_dt: view::datetime(r.created_at),
                finished: r.finished_at.map(view::time).unwrap_or_default(),
            })
            .collect(),
        skipped: skipped
            .iter()
            .map(|f| SkippedView {
                fire: view::time(f.fire_at),
                fire_dt: view::datetime(f.fire_at),
                reason: f.reason.clone(),
            })
            .collect(),
        s: schedule_view(viewer.is_admin(), &tenant.name, &s, last),
    })
}

#[derive(Debug, Deserialize)]
pub struct ActionQuery {
    tenant: Option<String>,
    /// `schedule`: return to the schedule's page instead of the list.
    from: Option<String>,
}

fn no_schedule(name: &str) -> UiError {
    UiError::not_found(format!("No schedule named {name:?}."))
}

/// Where an action returns to: the schedule's page when it came from there, else the list
/// (filtered to the tenant for the admin).
fn back(viewer: &Viewer, tenant: &str, name: &str, from: &Option<String>) -> String {
    if from.as_deref() == Some("schedule") {
        let q = if viewer.is_admin() {
            view::query(&[("tenant", Some(tenant.to_string()))])
        } else {
            String::new()
        };
        return format!("/ui/schedules/{}{q}", view::url_encode(name));
    }
    if viewer.is_admin() {
        format!(
            "/ui/schedules{}",
            view::query(&[("tenant", Some(tenant.to_string()))])
        )
    } else {
        "/ui/schedules".to_string()
    }
}

/// `POST /ui/schedules/{name}/trigger`: a run now, then its page.
pub async fn trigger(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Response> {
    let tenant = tenant_for(&state, &viewer, q.tenant).await?;
    let triggered = state
        .store
        .schedule_trigger(
            ScheduleTriggerParams {
                tenant_id: tenant.id,
                name: name.clone(),
                run_id: Uuid::now_v7(),
            },
            &state.settings.limits,
        )
        .await?;
    match triggered {
        ScheduleTrigger::Created(id) => {
            tracing::info!(schedule = %name, run = %id, "dashboard: schedule triggered");
            Ok(Redirect::to(&format!("/ui/runs/{id}")).into_response())
        }
        ScheduleTrigger::NotFound => Err(no_schedule(&name)),
        ScheduleTrigger::Busy { run, state } => Err(UiError {
            status: StatusCode::CONFLICT,
            title: "Not done",
            message: format!(
                "Run {run} of schedule {name:?} is still {} and its overlap policy is \"skip\": \
                 wait for it to end or cancel it.",
                state.as_str()
            ),
        }),
        ScheduleTrigger::InvalidOptions(e) => Err(UiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: "Not done",
            message: format!("{e} (from the schedule and the job's defaults)."),
        }),
    }
}

async fn set_paused(
    state: AppState,
    viewer: Viewer,
    name: String,
    q: ActionQuery,
    paused: bool,
) -> UiResult<Response> {
    let tenant = tenant_for(&state, &viewer, q.tenant).await?;
    state
        .store
        .schedule_set_paused(tenant.id, &name, paused)
        .await?
        .ok_or_else(|| no_schedule(&name))?;
    tracing::info!(schedule = %name, paused, "dashboard: schedule paused or resumed");
    Ok(Redirect::to(&back(&viewer, &tenant.name, &name, &q.from)).into_response())
}

pub async fn pause(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Response> {
    set_paused(state, viewer, name, q, true).await
}

pub async fn resume(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Response> {
    set_paused(state, viewer, name, q, false).await
}

/// Deletes the schedule; its runs stay.
pub async fn delete(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> UiResult<Response> {
    let tenant = tenant_for(&state, &viewer, q.tenant).await?;
    if !state.store.schedule_delete(tenant.id, &name).await? {
        return Err(no_schedule(&name));
    }
    tracing::info!(schedule = %name, "dashboard: schedule deleted");
    // The schedule's page is gone: back to the list.
    Ok(Redirect::to(&back(&viewer, &tenant.name, &name, &None)).into_response())
}
