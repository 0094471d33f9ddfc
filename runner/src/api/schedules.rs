//! Schedules: create or replace by name (`PUT /v1/schedules/{name}`), list, read with the next
//! fire times and the latest runs, delete, trigger now, pause and resume.
//!
//! Everything a client sends is validated here, before the store is touched, and a bad value is
//! a 422 naming the field; the cron expression and time zone are checked by `crate::schedule`,
//! the same code that later computes the fire times.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Json, Query, TenantAuth, TenantGrant};
use super::types::{FireTimeBody, MisfireBody, RunDetailBody, ScheduleBody, ScheduleListBody};
use super::{AppState, valid_job_name};
use crate::config::RunOptions;
use crate::schedule::{MAX_FIRES_PER_PASS, MAX_GRACE_MS, Misfire, MisfirePolicy, Timetable};
use crate::store::{
    OverlapPolicy, Schedule, SchedulePutParams, ScheduleRun, ScheduleTrigger,
    ScheduleTriggerParams, SkippedFire, StoreError,
};

/// Fire times shown by `GET`.
const NEXT_FIRE_TIMES: usize = 5;
/// Runs shown per schedule by the list and by one schedule.
const LIST_RUNS: i64 = 5;
const DETAIL_RUNS: i64 = 10;

/// The body of `PUT /v1/schedules/{name}`. A PUT replaces the whole schedule: an absent field
/// takes its default.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRequest {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    job: String,
    cron: String,
    /// IANA name; default `UTC`.
    timezone: Option<String>,
    #[serde(default)]
    input: Value,
    /// `"skip"`, `"fire_once"`, `"fire_all"` or `{"policy", "max", "grace_ms"}`.
    #[schema(value_type = Value)]
    misfire: Option<Value>,
    /// `"allow"` (default) or `"skip"`.
    overlap: Option<String>,
    #[serde(default)]
    paused: bool,
    max_attempts: Option<u32>,
    timeout_ms: Option<u64>,
    fuel: Option<u64>,
    memory_mb: Option<u32>,
    backoff_base_ms: Option<u64>,
    queue: Option<String>,
    priority: Option<i16>,
}

fn check_name(name: &str) -> ApiResult<()> {
    if valid_job_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidName,
            format!(
                "{name:?} is not a schedule name: use 1-128 letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

fn misfire_error(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidMisfire, format!("misfire: {message}"))
}

fn parse_policy(value: &Value) -> ApiResult<MisfirePolicy> {
    value
        .as_str()
        .and_then(MisfirePolicy::parse)
        .ok_or_else(|| {
            misfire_error(format!(
                "{value} is not a policy: use \"skip\", \"fire_once\" or \"fire_all\""
            ))
        })
}

fn bounded(value: &Value, field: &str, min: u64, max: u64) -> ApiResult<u64> {
    value
        .as_u64()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            misfire_error(format!(
                "{field} {value} must be a whole number {min}..={max}"
            ))
        })
}

/// `"fire_all"` or `{"policy": "fire_all", "max": 10, "grace_ms": 5000}`.
fn parse_misfire(value: Option<&Value>) -> ApiResult<Misfire> {
    let mut misfire = Misfire::default();
    match value {
        None | Some(Value::Null) => {}
        Some(v @ Value::String(_)) => misfire.policy = parse_policy(v)?,
        Some(Value::Object(o)) => {
            if let Some(key) = o
                .keys()
                .find(|k| !matches!(k.as_str(), "policy" | "max" | "grace_ms"))
            {
                return Err(misfire_error(format!(
                    "unknown key {key:?}: use \"policy\", \"max\" and \"grace_ms\""
                )));
            }
            misfire.policy = parse_policy(
                o.get("policy")
                    .ok_or_else(|| misfire_error("\"policy\" is required"))?,
            )?;
            if let Some(max) = o.get("max") {
                if misfire.policy != MisfirePolicy::FireAll {
                    return Err(misfire_error(
                        "\"max\" bounds \"fire_all\" only; remove it or use fire_all",
                    ));
                }
                misfire.max = bounded(max, "max", 1, MAX_FIRES_PER_PASS as u64)? as u32;
            }
            if let Some(grace) = o.get("grace_ms") {
                misfire.grace_ms = bounded(grace, "grace_ms", 0, MAX_GRACE_MS)?;
            }
        }
        Some(other) => {
            return Err(misfire_error(format!(
                "{other} is not a misfire policy: use \"skip\", \"fire_once\", \"fire_all\" or \
                 an object like {{\"policy\": \"fire_all\", \"max\": 10}}"
            )));
        }
    }
    Ok(misfire)
}

fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The next fire times (UTC and the schedule's local time); none while paused.
fn next_fire_times(s: &Schedule) -> Vec<FireTimeBody> {
    let (Some(first), Ok(timetable)) = (s.next_fire_at, Timetable::parse(&s.cron, &s.timezone))
    else {
        return Vec::new();
    };
    let tz = timetable.timezone();
    std::iter::once(first)
        .chain(timetable.upcoming(first, NEXT_FIRE_TIMES - 1))
        .map(|t| FireTimeBody {
            utc: utc_text(t),
            local: t
                .with_timezone(&tz)
                .to_rfc3339_opts(SecondsFormat::Secs, false),
        })
        .collect()
}

fn misfire_json(m: &Misfire) -> MisfireBody {
    MisfireBody {
        policy: m.policy.as_str().to_owned(),
        grace_ms: m.grace_ms,
        max: (m.policy == MisfirePolicy::FireAll).then_some(m.max),
    }
}

fn schedule_json(
    s: &Schedule,
    runs: Vec<&ScheduleRun>,
    skipped: Option<&[SkippedFire]>,
) -> ScheduleBody {
    ScheduleBody {
        name: s.name.clone(),
        job: s.job.clone(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone(),
        input: s.input.clone(),
        misfire: misfire_json(&s.misfire),
        overlap: s.overlap.as_str().to_owned(),
        paused: s.paused,
        options: (&s.options).into(),
        next_fire_at: s.next_fire_at.map(utc_text),
        next_fire_times: next_fire_times(s),
        last_runs: runs.into_iter().map(Into::into).collect(),
        skipped_fires: skipped.map(|s| s.iter().map(Into::into).collect()),
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no schedule named {name:?}: create it with PUT /v1/schedules/{name}"
    ))
}

/// One schedule with its latest runs and skipped fire times, as `GET` shows it.
async fn detail(state: &AppState, tenant_id: i64, s: &Schedule) -> ApiResult<ScheduleBody> {
    let runs = state
        .store
        .schedule_runs(tenant_id, &[s.id], DETAIL_RUNS)
        .await?;
    let skipped = state
        .store
        .schedule_skipped(tenant_id, s.id, DETAIL_RUNS)
        .await?;
    Ok(schedule_json(
        s,
        runs.iter().map(|(_, r)| r).collect(),
        Some(&skipped),
    ))
}

/// Fires of a timetable looked at for its shortest interval (`min_schedule_interval_ms`).
const GAP_SAMPLE: usize = 256;

/// Creates (201) or replaces (200) a schedule. Validates everything first: nothing is written
/// when any field is wrong. Replacing with an unchanged timetable keeps the pending fire time.
#[utoipa::path(
    put,
    path = "/v1/schedules/{name}",
    tag = "schedules",
    operation_id = "schedules_put",
    summary = "Create or replace a schedule",
    params(
        ("name" = String, Path, description = "schedule name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    request_body = PutRequest,
    responses(
        (status = 201, description = "created", body = ScheduleBody),
        (status = 200, description = "replaced", body = ScheduleBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    grant: TenantGrant,
    Path(name): Path<String>,
    Json(body): Json<PutRequest>,
) -> ApiResult<(StatusCode, axum::Json<ScheduleBody>)> {
    let tenant = &grant.tenant;
    check_name(&name)?;
    let timezone = body.timezone.as_deref().unwrap_or("UTC");
    let timetable = Timetable::parse(&body.cron, timezone).map_err(|e| {
        let code = if e.field == "cron" {
            ErrorCode::InvalidCron
        } else {
            ErrorCode::InvalidTimezone
        };
        ApiError::new(code, e.to_string())
    })?;
    if timetable.next_after(Utc::now()).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidCron,
            format!(
                "cron: '{}' never fires: no date matches it (before 2100)",
                timetable.cron().source()
            ),
        ));
    }
    if let Some(min) = grant.limits.min_schedule_interval_ms
        && let Some(gap) = timetable.shortest_gap(Utc::now(), GAP_SAMPLE)
        && gap.num_milliseconds() < min
    {
        super::quota::record_hit(&state, tenant.id, "min_schedule_interval_ms");
        return Err(ApiError::quota(
            "min_schedule_interval_ms",
            min,
            &format!(
                "cron '{}' fires {} ms apart; use a schedule that fires less often",
                timetable.cron().source(),
                gap.num_milliseconds()
            ),
            None,
        ));
    }
    let misfire = parse_misfire(body.misfire.as_ref())?;
    let overlap = match body.overlap.as_deref() {
        None => OverlapPolicy::Allow,
        Some(o) => OverlapPolicy::parse(o).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidOverlap,
                format!("overlap: {o:?} is not a policy: use \"allow\" or \"skip\""),
            )
        })?,
    };
    let options = RunOptions {
        max_attempts: body.max_attempts,
        timeout_ms: body.timeout_ms,
        fuel: body.fuel,
        memory_mb: body.memory_mb,
        backoff_base_ms: body.backoff_base_ms,
        queue: body.queue,
        priority: body.priority,
    };
    super::limits::reject_nul("input", &body.input)?;
    let limits = &state.settings.limits;
    options
        .validate(limits)
        .map_err(|e| ApiError::new(ErrorCode::InvalidOption, e.to_string()))?;
    let job = match valid_job_name(&body.job) {
        true => state.store.job_get(tenant.id, &body.job).await?,
        false => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownJob,
            format!(
                "job: no job named {:?}: upload it first with PUT /v1/jobs/{{name}}",
                body.job
            ),
        )
    })?;
    options.or(&job.defaults).validate(limits).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidOption,
            format!("{e} (from the job's defaults; set it on the schedule or re-upload the job)"),
        )
    })?;
    let put = state
        .store
        .schedule_put(SchedulePutParams {
            tenant_id: tenant.id,
            name,
            job_id: job.id,
            timetable,
            input: body.input,
            misfire,
            overlap,
            paused: body.paused,
            options,
            max_schedules: grant.limits.max_schedules,
        })
        .await
        .inspect_err(|e| {
            if let StoreError::QuotaExceeded { limit, .. } = e {
                super::quota::record_hit(&state, tenant.id, limit);
            }
        })?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = detail(&state, tenant.id, &put.schedule).await?;
    Ok((status, axum::Json(body)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The tenant's schedules by name, each with its next fire times and latest runs.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "schedules",
    operation_id = "schedules_list",
    summary = "The tenant's schedules by name",
    params(
        ListQuery,
    ),
    responses(
        (status = 200, description = "a page of schedules", body = ScheduleListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<ScheduleListBody>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit: use a number from 1 to 500"));
    }
    let schedules = state
        .store
        .schedule_list(tenant.id, q.cursor.as_deref(), limit)
        .await?;
    let ids: Vec<i64> = schedules.iter().map(|s| s.id).collect();
    let runs = state
        .store
        .schedule_runs(tenant.id, &ids, LIST_RUNS)
        .await?;
    let items: Vec<ScheduleBody> = schedules
        .iter()
        .map(|s| {
            let own = runs
                .iter()
                .filter(|(id, _)| *id == s.id)
                .map(|(_, r)| r)
                .collect();
            schedule_json(s, own, None)
        })
        .collect();
    let next_cursor = (schedules.len() as i64 == limit)
        .then(|| schedules.last().map(|s| s.name.clone()))
        .flatten();
    Ok(axum::Json(ScheduleListBody {
        schedules: items,
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/schedules/{name}",
    tag = "schedules",
    operation_id = "schedules_get",
    summary = "A schedule with its next fire times, latest runs and skipped fires",
    params(
        ("name" = String, Path, description = "schedule name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 200, description = "the schedule", body = ScheduleBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScheduleBody>> {
    let schedule = state
        .store
        .schedule_get(tenant.id, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(axum::Json(detail(&state, tenant.id, &schedule).await?))
}

/// Deletes the schedule. Its runs stay (no longer linked to it); active ones keep running.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{name}",
    tag = "schedules",
    operation_id = "schedules_delete",
    summary = "Delete a schedule (its runs stay)",
    params(
        ("name" = String, Path, description = "schedule name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 204, description = "deleted"),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.schedule_delete(tenant.id, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&name))
    }
}

/// Enqueues a run now, not tied to a fire time (paused or not). Under overlap `skip` a run
/// of the schedule that is still active makes it a 409.
#[utoipa::path(
    post,
    path = "/v1/schedules/{name}/trigger",
    tag = "schedules",
    operation_id = "schedules_trigger",
    summary = "Enqueue a run of the schedule now",
    params(
        ("name" = String, Path, description = "schedule name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 201, description = "the run", body = RunDetailBody),
    ),
)]
pub async fn trigger(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<RunDetailBody>)> {
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
    let id = match triggered {
        ScheduleTrigger::Created(id) => id,
        ScheduleTrigger::NotFound => return Err(not_found(&name)),
        ScheduleTrigger::Busy { run, state } => {
            return Err(ApiError::conflict(format!(
                "run {run} of schedule {name:?} is still {} and its overlap policy is \"skip\": \
                 wait for it to end, cancel it, or set \"overlap\": \"allow\"",
                state.as_str()
            )));
        }
        ScheduleTrigger::InvalidOptions(e) => {
            return Err(ApiError::new(
                ErrorCode::InvalidOption,
                format!("{e} (from the schedule and the job's defaults)"),
            ));
        }
    };
    let run = state
        .store
        .run_get(tenant.id, id)
        .await?
        .ok_or_else(ApiError::internal)?;
    state.metrics.runs_enqueued(&tenant.name, &run.run.queue, 1);
    Ok((StatusCode::CREATED, axum::Json((&run).into())))
}

async fn set_paused(
    state: AppState,
    tenant_id: i64,
    name: String,
    paused: bool,
) -> ApiResult<axum::Json<ScheduleBody>> {
    let schedule = state
        .store
        .schedule_set_paused(tenant_id, &name, paused)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(axum::Json(detail(&state, tenant_id, &schedule).await?))
}

/// Stops firing until resumed. Runs already created are not touched.
#[utoipa::path(
    post,
    path = "/v1/schedules/{name}/pause",
    tag = "schedules",
    operation_id = "schedules_pause",
    summary = "Stop firing until resumed",
    params(
        ("name" = String, Path, description = "schedule name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 200, description = "the schedule", body = ScheduleBody),
    ),
)]
pub async fn pause(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScheduleBody>> {
    set_paused(state, tenant.id, name, true).await
}

/// Fires again from now on; fire times that passed while paused are not fired.
#[utoipa::path(
    post,
    path = "/v1/schedules/{name}/resume",
    tag = "schedules",
    operation_id = "schedules_resume",
    summary = "Fire again from now on",
    params(
        ("name" = String, Path, description = "schedule name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 200, description = "the schedule", body = ScheduleBody),
    ),
)]
pub async fn resume(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScheduleBody>> {
    set_paused(state, tenant.id, name, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{DEFAULT_FIRE_ALL_MAX, DEFAULT_GRACE_MS};
    use serde_json::json;

    #[test]
    fn misfire_accepts_a_name_or_an_object() {
        assert_eq!(parse_misfire(None).unwrap(), Misfire::default());
        let m = parse_misfire(Some(&json!("skip"))).unwrap();
        assert_eq!(m.policy, MisfirePolicy::Skip);
        assert_eq!(m.grace_ms, DEFAULT_GRACE_MS);
        let m = parse_misfire(Some(
            &json!({"policy": "fire_all", "max": 7, "grace_ms": 0}),
        ))
        .unwrap();
        assert_eq!(
            (m.policy, m.max, m.grace_ms),
            (MisfirePolicy::FireAll, 7, 0)
        );
        let m = parse_misfire(Some(&json!({"policy": "fire_all"}))).unwrap();
        assert_eq!(m.max, DEFAULT_FIRE_ALL_MAX);
    }

    #[test]
    fn misfire_errors_name_the_field() {
        for (bad, says) in [
            (json!("sometimes"), "is not a policy"),
            (
                json!({"policy": "skip", "max": 3}),
                "\"max\" bounds \"fire_all\" only",
            ),
            (json!({"policy": "fire_all", "max": 0}), "max 0 must be"),
            (
                json!({"policy": "fire_all", "max": 5000}),
                "max 5000 must be",
            ),
            (json!({"max": 3}), "\"policy\" is required"),
            (
                json!({"policy": "skip", "grace": 3}),
                "unknown key \"grace\"",
            ),
            (json!(3), "is not a misfire policy"),
        ] {
            let e = parse_misfire(Some(&bad)).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidMisfire);
            assert!(e.message().starts_with("misfire: "), "{}", e.message());
            assert!(e.message().contains(says), "{bad}: {}", e.message());
        }
    }
}
