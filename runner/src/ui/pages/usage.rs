//! `/ui/usage`: what a tenant used per UTC day over the last 30 days (runs ended, attempts,
//! fuel, run time, peak memory, refusals by its quotas) from the rollup `run_stats`, the jobs
//! that used the most fuel, and for one tenant its quotas against what it uses now. The admin
//! sees every tenant (a tenant column and filter).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{Duration, DurationRound};
use serde::Deserialize;

use super::Layout;
use super::overview::scope;
use crate::api::AppState;
use crate::config::TenantLimits;
use crate::store::{Tenant, TenantUsage};
use crate::ui::error::{UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

/// Days shown.
const DAYS: i64 = 30;
/// Rows of the per-day table at most (the admin's view of many tenants).
const MAX_ROWS: i64 = 1_000;

pub struct DayRow {
    pub tenant: String,
    pub day: String,
    pub runs_ended: String,
    pub attempts: String,
    pub failed_attempts: String,
    pub fuel: String,
    pub run_time: String,
    pub peak_memory: String,
    pub limit_hits: String,
    pub limit_detail: String,
}

pub struct JobRow {
    pub tenant: String,
    pub job: String,
    pub fuel: String,
    pub attempts: String,
    pub run_time: String,
}

/// One quota: its value for the tenant and, where it caps something countable, the use now.
pub struct QuotaRow {
    pub name: &'static str,
    pub meaning: &'static str,
    pub value: String,
    pub used: String,
    /// Percent of the limit in use (for the meter), when both are known.
    pub percent: Option<i64>,
    pub own: bool,
}

#[derive(Template)]
#[template(path = "ui/usage.html")]
struct UsagePage {
    layout: Layout,
    admin: bool,
    tenant_filter: String,
    days: i64,
    rows: Vec<DayRow>,
    truncated: bool,
    jobs: Vec<JobRow>,
    quotas_for: Option<String>,
    quotas: Vec<QuotaRow>,
}

#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    tenant: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<UsageQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = scope(&state, &viewer, &q.tenant).await?;
    let store = &state.store;
    let now = store.clock().await?;
    let today = now.duration_trunc(Duration::days(1)).unwrap_or(now);
    let since = today - Duration::days(DAYS - 1);
    let usage = store.stats_usage(scope, since, MAX_ROWS + 1).await?;
    let truncated = usage.len() as i64 > MAX_ROWS;
    let rows = usage
        .iter()
        .take(MAX_ROWS as usize)
        .map(|u| DayRow {
            tenant: u.tenant.clone(),
            day: u.day.format("%Y-%m-%d %a").to_string(),
            runs_ended: view::count(u.runs_ended),
            attempts: view::count(u.attempts),
            failed_attempts: view::count(u.attempts - u.attempts_ok),
            fuel: view::count(u.fuel_used),
            run_time: view::duration_ms(u.duration_ms),
            peak_memory: view::bytes(u.peak_memory_max),
            limit_hits: view::count(u.limit_hits),
            limit_detail: u.limit_detail.clone(),
        })
        .collect();
    let jobs = store
        .stats_top_jobs(scope, since, 10)
        .await?
        .into_iter()
        .map(|j| JobRow {
            tenant: j.tenant,
            job: j.job,
            fuel: view::count(j.fuel_used),
            attempts: view::count(j.attempts),
            run_time: view::duration_ms(j.duration_ms),
        })
        .collect();
    // Quotas: for a tenant's own session, or the admin's filter naming one tenant.
    let tenant: Option<Tenant> = match &viewer.tenant {
        Some(t) => Some(t.clone()),
        None if !tenant_filter.is_empty() => store.tenant_get(&tenant_filter).await?,
        None => None,
    };
    let (quotas_for, quotas) = match tenant {
        Some(t) => {
            let own = store.tenant_limits_of(t.id).await?;
            let effective = own.or(&state.settings.quotas);
            let used = store.tenant_usage(t.id).await?;
            (Some(t.name), quota_rows(&own, &effective, &used))
        }
        None => (None, Vec::new()),
    };
    render(&UsagePage {
        layout: Layout::new(&viewer, "usage"),
        admin: viewer.is_admin(),
        tenant_filter,
        days: DAYS,
        rows,
        truncated,
        jobs,
        quotas_for,
        quotas,
    })
}

fn quota_rows(own: &TenantLimits, limits: &TenantLimits, used: &TenantUsage) -> Vec<QuotaRow> {
    let row = |name, meaning, value: Option<i64>, own: bool, used: Option<i64>| QuotaRow {
        name,
        meaning,
        value: value.map_or("no limit".to_string(), view::count),
        used: used.map(view::count).unwrap_or_default(),
        percent: match (value, used) {
            (Some(limit), Some(used)) => Some(view::percent(used, limit)),
            _ => None,
        },
        own,
    };
    let i = |v: Option<i32>| v.map(i64::from);
    vec![
        row(
            "max_active_runs",
            "runs waiting or running",
            limits.max_active_runs,
            own.max_active_runs.is_some(),
            Some(used.active_runs),
        ),
        row(
            "max_running",
            "attempts executing at once, on every runner",
            i(limits.max_running),
            own.max_running.is_some(),
            Some(used.running),
        ),
        row(
            "max_schedules",
            "schedules",
            i(limits.max_schedules),
            own.max_schedules.is_some(),
            Some(used.schedules),
        ),
        row(
            "max_jobs",
            "jobs",
            i(limits.max_jobs),
            own.max_jobs.is_some(),
            Some(used.jobs),
        ),
        row(
            "max_versions_per_job",
            "versions of one job (the most any job has)",
            i(limits.max_versions_per_job),
            own.max_versions_per_job.is_some(),
            Some(used.max_versions_of_a_job),
        ),
        row(
            "enqueue_per_s",
            "runs enqueued per second",
            i(limits.enqueue_per_s),
            own.enqueue_per_s.is_some(),
            None,
        ),
        row(
            "min_schedule_interval_ms",
            "shortest time between two fires of a schedule, ms",
            limits.min_schedule_interval_ms,
            own.min_schedule_interval_ms.is_some(),
            None,
        ),
        row(
            "max_log_bytes_per_attempt",
            "log bytes one attempt may write",
            limits.max_log_bytes_per_attempt,
            own.max_log_bytes_per_attempt.is_some(),
            None,
        ),
    ]
}
