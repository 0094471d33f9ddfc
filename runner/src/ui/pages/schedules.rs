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
            let s = &r.schedule;
            let q = if viewer.is_admin() {
                view::query(&[("tenant", Some(r.tenant.clone()))])
            } else {
                String::new()
            };
            ScheduleView {
                tenant: r.tenant.clone(),
                base: format!("/ui/schedules/{}", view::url_encode(&s.name)),
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
                last_run: last.iter().find(|l| l.0 == s.id).map(|(_, id, st, at)| {
                    (
                        format!("/ui/runs/{id}"),
                        format!("…{}", &id.to_string()[24..]),
                        st.as_str(),
                        view::time(*at),
                    )
                }),
            }
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

#[derive(Debug, Deserialize)]
pub struct ActionQuery {
    tenant: Option<String>,
}

fn no_schedule(name: &str) -> UiError {
    UiError::not_found(format!("No schedule named {name:?}."))
}

/// Where an action returns to: the list (filtered to the tenant for the admin).
fn back(viewer: &Viewer, tenant: &str) -> String {
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
    tenant: Option<String>,
    paused: bool,
) -> UiResult<Response> {
    let tenant = tenant_for(&state, &viewer, tenant).await?;
    state
        .store
        .schedule_set_paused(tenant.id, &name, paused)
        .await?
        .ok_or_else(|| no_schedule(&name))?;
    tracing::info!(schedule = %name, paused, "dashboard: schedule paused or resumed");
    Ok(Redirect::to(&back(&viewer, &tenant.name)).into_response())
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
    Ok(Redirect::to(&back(&viewer, &tenant.name)).into_response())
}
