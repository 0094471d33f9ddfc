//! Runs: enqueue (`POST /v1/jobs/{name}/runs`), read one with its attempts and history, list
//! with filters and cursor pagination, read logs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Json, Query, TenantAuth, TenantGrant};
use super::limits::{BudgetedList, reject_nul, reject_nul_text};
use super::types::{LogLineBody, LogPageBody, RunBody, RunDetailBody, RunListBody};
use crate::config::RunOptions;
use crate::model::RunState;
use crate::store::{
    After, Due, IdempotencyParams, Idempotent, LogListParams, RunInsertParams, RunListParams,
    StoreError,
};

/// The body of `POST /v1/jobs/{name}/runs`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// Any JSON; handed to the job as its input.
    #[serde(default)]
    input: Value,
    max_attempts: Option<u32>,
    timeout_ms: Option<u64>,
    fuel: Option<u64>,
    memory_mb: Option<u32>,
    backoff_base_ms: Option<u64>,
    queue: Option<String>,
    priority: Option<i16>,
    /// Run later: a duration such as "90s" or "1h30m".
    delay: Option<String>,
    /// Run later: milliseconds.
    delay_ms: Option<u64>,
    /// Run at this RFC 3339 time.
    run_at: Option<String>,
    /// Run after another run of this tenant ends.
    after: Option<AfterRequest>,
    /// Unique runs: the same key and request return the same run.
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterRequest {
    run: String,
    on: String,
    #[serde(default)]
    input_from_parent: bool,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidOption, format!("{field}: {reason}"))
}

/// The timing fields of an enqueue request.
pub(super) struct Timing {
    pub delay: Option<String>,
    pub delay_ms: Option<u64>,
    pub run_at: Option<String>,
}

/// When the run becomes due, from `delay`, `delay_ms` or `run_at` (at most one).
pub(super) fn due(body: &Timing, limits: &crate::config::RunLimits) -> ApiResult<Option<Due>> {
    let given = [
        body.delay.is_some(),
        body.delay_ms.is_some(),
        body.run_at.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(invalid(
            "delay",
            "give at most one of delay, delay_ms and run_at",
        ));
    }
    let check = |field: &str, ms: u64| {
        if ms > limits.max_delay_ms {
            Err(invalid(
                field,
                format!(
                    "{ms} ms is further ahead than this runner allows ({} ms)",
                    limits.max_delay_ms
                ),
            ))
        } else {
            Ok(Some(Due::In(ms as i64)))
        }
    };
    if let Some(text) = &body.delay {
        let ms = crate::config::parse_duration_ms(text).map_err(|e| invalid("delay", e))?;
        return check("delay", ms);
    }
    if let Some(ms) = body.delay_ms {
        return check("delay_ms", ms);
    }
    if let Some(text) = &body.run_at {
        let at = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
            invalid(
                "run_at",
                format!("{text:?} is not an RFC 3339 time ({e}), e.g. \"2026-01-31T09:00:00Z\""),
            )
        })?;
        let at = at.with_timezone(&Utc);
        if (at - Utc::now()).num_milliseconds() > limits.max_delay_ms as i64 {
            return Err(invalid("run_at", "further ahead than this runner allows"));
        }
        return Ok(Some(Due::At(at)));
    }
    Ok(None)
}

#[utoipa::path(
    post,
    path = "/v1/jobs/{name}/runs",
    tag = "runs",
    operation_id = "runs_enqueue",
    summary = "Enqueue a run of a job",
    params(
        ("name" = String, Path, description = "job name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    request_body = EnqueueRequest,
    responses(
        (status = 201, description = "created", body = RunBody),
        (status = 200, description = "the run an earlier request with the same idempotency_key created", body = RunBody),
    ),
)]
pub async fn enqueue(
    State(state): State<AppState>,
    grant: TenantGrant,
    Path(name): Path<String>,
    Json(body): Json<EnqueueRequest>,
) -> ApiResult<(StatusCode, axum::Json<RunBody>)> {
    let (status, run) =
        enqueue_run(&state, &grant, &name, body, "enqueued via API".to_string()).await?;
    Ok((status, axum::Json((&run).into())))
}

/// Validates and admits (quotas) one enqueue request of the grant's tenant and inserts the run:
/// the API's `POST /v1/jobs/{name}/runs` and the dashboard's enqueue form both come here.
pub(crate) async fn enqueue_run(
    state: &AppState,
    grant: &TenantGrant,
    name: &str,
    body: EnqueueRequest,
    reason: String,
) -> ApiResult<(StatusCode, crate::store::Run)> {
    let name = name.to_string();
    let options = RunOptions {
        max_attempts: body.max_attempts,
        timeout_ms: body.timeout_ms,
        fuel: body.fuel,
        memory_mb: body.memory_mb,
        backoff_base_ms: body.backoff_base_ms,
        queue: body.queue.clone(),
        priority: body.priority,
    };
    let tenant = &grant.tenant;
    reject_nul("input", &body.input)?;
    if let Some(key) = &body.idempotency_key {
        reject_nul_text("idempotency_key", key)?;
    }
    let limits = &state.settings.limits;
    options
        .validate(limits)
        .map_err(|e| ApiError::new(ErrorCode::InvalidOption, e.to_string()))?;
    let timing = Timing {
        delay: body.delay.clone(),
        delay_ms: body.delay_ms,
        run_at: body.run_at.clone(),
    };
    let due = due(&timing, limits)?;
    let after = match &body.after {
        None => None,
        Some(a) => {
            if due.is_some() {
                return Err(invalid("after", "a continuation cannot also be delayed"));
            }
            let run = Uuid::parse_str(&a.run)
                .map_err(|_| invalid("after.run", format!("{:?} is not a run id", a.run)))?;
            if !matches!(a.on.as_str(), "succeeded" | "failed" | "finished") {
                return Err(invalid(
                    "after.on",
                    format!("{:?}: use \"succeeded\", \"failed\" or \"finished\"", a.on),
                ));
            }
            if state.store.run_get(tenant.id, run).await?.is_none() {
                return Err(ApiError::new(
                    ErrorCode::InvalidOption,
                    format!("after.run: no run with id {run}"),
                ));
            }
            Some(After {
                run,
                on: a.on.clone(),
                input_from_parent: a.input_from_parent,
            })
        }
    };
    if let Some(key) = &body.idempotency_key
        && (key.is_empty() || key.len() > 255)
    {
        return Err(invalid("idempotency_key", "use 1 to 255 characters"));
    }
    // The job as cached by this runner first; the insert refuses it if the job changed since
    // (`StoreError::JobChanged`), and then it is read again. Read fresh and changed again
    // before the insert means it is being uploaded right now: the client retries (409).
    let mut fresh = false;
    let (status, run) = loop {
        let job = enqueue_job(state, tenant.id, &name, fresh).await?;
        let merged = options.or(&job.defaults);
        // The job's defaults were valid when uploaded; the runner's limits may have shrunk since.
        merged.validate(limits).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidOption,
                format!("{e} (from the job's defaults; re-upload the job with new defaults)"),
            )
        })?;
        if !fresh {
            super::quota::admit_runs(state, grant, 1).await?;
        }
        let params = RunInsertParams {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            job_id: job.id,
            version: job.version,
            options: merged.resolve(limits),
            input: body.input.clone(),
            reason: reason.clone(),
            due,
            after: after.clone(),
            job_row_version: Some(job.row_version),
        };
        match insert_run(state, &name, &body, params).await? {
            Some(done) => break done,
            None if !fresh => {
                state.jobs.forget(tenant.id, &name);
                fresh = true;
            }
            None => return Err(StoreError::JobChanged.into()),
        }
    };
    if run.state == RunState::Scheduled {
        state.promoter.notify_one();
    }
    if status == StatusCode::CREATED {
        state.metrics.runs_enqueued(&tenant.name, &run.queue, 1);
    }
    Ok((status, run))
}

/// The tenant's job for an enqueue: from this runner's cache unless `fresh`, else read (and
/// cached for the next enqueue).
async fn enqueue_job(
    state: &AppState,
    tenant_id: i64,
    name: &str,
    fresh: bool,
) -> ApiResult<crate::store::Job> {
    if !fresh && let Some(job) = state.jobs.get(tenant_id, name) {
        return Ok(job);
    }
    let job = state.store.job_get(tenant_id, name).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no job named {name:?}: upload it first with PUT /v1/jobs/{name}"
        ))
    })?;
    state.jobs.put(tenant_id, &job);
    Ok(job)
}

/// Writes one run: through the group commit, or with its idempotency key. `None`: the run's
/// job changed since `params` were built from it, and nothing was written.
async fn insert_run(
    state: &AppState,
    name: &str,
    body: &EnqueueRequest,
    params: RunInsertParams,
) -> ApiResult<Option<(StatusCode, crate::store::Run)>> {
    let written = match &body.idempotency_key {
        None => state
            .enqueue
            .insert(params)
            .await
            .map(|run| (StatusCode::CREATED, run)),
        Some(key) => {
            // The same request is the same job and body, whatever the key's window.
            let canonical =
                serde_json::to_vec(&json!({"job": name, "request": body})).unwrap_or_default();
            let key = IdempotencyParams {
                key: key.clone(),
                request_hash: Sha256::digest(&canonical).to_vec(),
                window_ms: state.settings.limits.idempotency_window_ms as i64,
            };
            match state.store.run_insert_idempotent(params, key).await {
                Ok(Idempotent::Created(run)) => Ok((StatusCode::CREATED, run)),
                Ok(Idempotent::Existing(run)) => Ok((StatusCode::OK, run)),
                Ok(Idempotent::Deleted(id, until)) => {
                    return Err(ApiError::conflict(format!(
                        "idempotency_key {:?} names run {id}, which was deleted; the key stays \
                         reserved until {} so the run is not created twice: use a new key to \
                         run it again",
                        body.idempotency_key.as_deref().unwrap_or_default(),
                        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )));
                }
                Ok(Idempotent::Mismatch(id)) => {
                    return Err(ApiError::conflict(format!(
                        "idempotency_key {:?} already names run {id}, created by a different \
                         request; use a new key for a different request",
                        body.idempotency_key.as_deref().unwrap_or_default()
                    )));
                }
                Err(e) => Err(e),
            }
        }
    };
    match written {
        Ok(done) => Ok(Some(done)),
        Err(StoreError::JobChanged) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn parse_run_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a run id: run ids are UUIDs")))
}

#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    tag = "runs",
    operation_id = "runs_get",
    summary = "A run with its attempts and history",
    params(
        ("id" = uuid::Uuid, Path, description = "run id"),
    ),
    responses(
        (status = 200, description = "the run", body = RunDetailBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunDetailBody>> {
    let id = parse_run_id(&id)?;
    let run = state
        .store
        .run_get(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run with id {id}")))?;
    Ok(axum::Json((&run).into()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    job: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "runs",
    operation_id = "runs_list",
    summary = "The tenant's runs, newest first, a page at a time",
    params(
        ListQuery,
    ),
    responses(
        (status = 200, description = "a page of runs", body = RunListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::response::Response> {
    let run_state = q
        .state
        .as_deref()
        .map(|s| {
            RunState::parse(s).ok_or_else(|| {
                let valid: Vec<_> = RunState::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!(
                    "state: {s:?} is not a run state; use one of {}",
                    valid.join(", ")
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit: use a number from 1 to 500"));
    }
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| {
                ApiError::bad_request("cursor: pass the next_cursor of the previous page")
            })
        })
        .transpose()?;
    let http = &state.settings.http;
    let runs = state
        .store
        .run_list(RunListParams {
            tenant_id: tenant.id,
            state: run_state,
            job: q.job,
            before,
            limit,
            value_bytes: http.list_value_bytes as i64,
        })
        .await?;
    // A page stops at the response budget as well as at `limit`; the cursor continues it.
    let mut page = BudgetedList::new("runs", http.response_budget_bytes);
    let mut last = None;
    for run in &runs {
        if !page.push(&RunBody::from(run))? {
            break;
        }
        last = Some(run.id);
    }
    let next_cursor = (page.truncated || runs.len() as i64 == limit)
        .then_some(last)
        .flatten();
    Ok(page.finish(&[("next_cursor", json!(next_cursor))]))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    attempt: Option<i32>,
    after: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/runs/{id}/logs",
    tag = "runs",
    operation_id = "runs_logs",
    summary = "A run's log lines, a page at a time",
    params(
        ("id" = uuid::Uuid, Path, description = "run id"),
        LogsQuery,
    ),
    responses(
        (status = 200, description = "a page of lines", body = LogPageBody),
    ),
)]
pub async fn logs(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<axum::response::Response> {
    let id = parse_run_id(&id)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("limit: use a number from 1 to 10000"));
    }
    let budget = state.settings.http.response_budget_bytes;
    let lines = state
        .store
        .log_list(LogListParams {
            tenant_id: tenant.id,
            run_id: id,
            attempt: q.attempt,
            after: q.after,
            limit,
            // The database stops at the raw text's budget; escaping (control characters take
            // six bytes each) is bounded below, line by line.
            budget_bytes: budget as i64,
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run with id {id}")))?;
    let mut page = BudgetedList::new("lines", budget);
    let mut last = None;
    for line in &lines.lines {
        if !page.push(&LogLineBody::from(line))? {
            break;
        }
        last = Some(line.id);
    }
    if lines.more {
        // Cut by the limit or the database's budget: say so, as when cut here.
        page.truncated |= (lines.lines.len() as i64) < limit;
    }
    let next_after = (page.truncated || lines.more).then_some(last).flatten();
    Ok(page.finish(&[("next_after", json!(next_after))]))
}
