//! Runs: enqueue (`POST /v1/jobs/{name}/runs`), read one with its attempts and history, list
//! with filters and cursor pagination, read logs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Query, TenantAuth};
use crate::config::RunOptions;
use crate::model::RunState;
use crate::store::{LogListParams, RunInsertParams, RunListParams};

/// The body of `POST /v1/jobs/{name}/runs`.
#[derive(Debug, Deserialize)]
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
}

pub async fn enqueue(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
    Json(body): Json<EnqueueRequest>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let options = RunOptions {
        max_attempts: body.max_attempts,
        timeout_ms: body.timeout_ms,
        fuel: body.fuel,
        memory_mb: body.memory_mb,
        backoff_base_ms: body.backoff_base_ms,
        queue: body.queue,
        priority: body.priority,
    };
    let limits = &state.settings.limits;
    options
        .validate(limits)
        .map_err(|e| ApiError::unprocessable("invalid_option", e.to_string()))?;
    let job = state
        .store
        .job_get(tenant.id, &name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no job named {name:?}: upload it first with PUT /v1/jobs/{name}"
            ))
        })?;
    let merged = options.or(&job.defaults);
    // The job's defaults were valid when uploaded; the runner's limits may have shrunk since.
    merged.validate(limits).map_err(|e| {
        ApiError::unprocessable(
            "invalid_option",
            format!("{e} (from the job's defaults; re-upload the job with new defaults)"),
        )
    })?;
    let run = state
        .store
        .run_insert(RunInsertParams {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            job_id: job.id,
            version: job.version,
            options: merged.resolve(limits),
            input: body.input,
            reason: "enqueued via API".to_string(),
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json!(run))))
}

fn parse_run_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a run id: run ids are UUIDs")))
}

pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let id = parse_run_id(&id)?;
    let run = state
        .store
        .run_get(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run with id {id}")))?;
    Ok(axum::Json(json!(run)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    job: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Value>> {
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
    let runs = state
        .store
        .run_list(RunListParams {
            tenant_id: tenant.id,
            state: run_state,
            job: q.job,
            before,
            limit,
        })
        .await?;
    let next_cursor = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(axum::Json(
        json!({ "runs": runs, "next_cursor": next_cursor }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    attempt: Option<i32>,
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn logs(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<axum::Json<Value>> {
    let id = parse_run_id(&id)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("limit: use a number from 1 to 10000"));
    }
    let lines = state
        .store
        .log_list(LogListParams {
            tenant_id: tenant.id,
            run_id: id,
            attempt: q.attempt,
            after: q.after,
            limit,
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run with id {id}")))?;
    let next_after = (lines.len() as i64 == limit)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    Ok(axum::Json(
        json!({ "lines": lines, "next_after": next_after }),
    ))
}
