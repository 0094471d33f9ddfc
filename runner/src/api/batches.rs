//! Batches: create runs atomically with continuations (`POST /v1/batches`), watch their
//! progress (`GET /v1/batches/{id}`), cancel them as a whole (`POST /v1/batches/{id}/cancel`).
//!
//! Every entry is validated (job exists for the tenant, options within the runner's limits)
//! before anything is written, and the store writes the whole batch in one transaction: one bad
//! entry answers 422 naming it, and nothing is created.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Json, Query, TenantAuth, TenantGrant};
use super::types::{BatchCancelledBody, BatchCreatedBody, BatchDetailBody};
use crate::config::RunOptions;
use crate::store::{
    BatchCancel, BatchContinuationParams, BatchCreateParams, BatchRunParams, Job, Tenant,
};

/// Most members in one batch (guards one request against tying up the database).
pub const MAX_BATCH_RUNS: usize = 100_000;
/// Most continuations of one batch.
pub const MAX_BATCH_CONTINUATIONS: usize = 100;

/// The body of `POST /v1/batches`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    runs: Vec<BatchEntry>,
    #[serde(default)]
    then: Vec<BatchEntry>,
}

/// One run of a batch: a member (in `runs`) or a continuation (in `then`, with `on`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    job: String,
    #[serde(default)]
    input: Value,
    max_attempts: Option<u32>,
    timeout_ms: Option<u64>,
    fuel: Option<u64>,
    memory_mb: Option<u32>,
    backoff_base_ms: Option<u64>,
    queue: Option<String>,
    priority: Option<i16>,
    /// Continuations only: `succeeded`, `failed` or `finished`.
    on: Option<String>,
}

fn invalid(entry: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidBatch, format!("{entry}: {reason}"))
}

/// Validates one entry against its job and the runner's limits; resolves its options.
async fn resolve_entry(
    state: &AppState,
    tenant: &Tenant,
    jobs: &mut HashMap<String, Option<Job>>,
    name: &str,
    entry: BatchEntry,
) -> ApiResult<BatchRunParams> {
    let options = RunOptions {
        max_attempts: entry.max_attempts,
        timeout_ms: entry.timeout_ms,
        fuel: entry.fuel,
        memory_mb: entry.memory_mb,
        backoff_base_ms: entry.backoff_base_ms,
        queue: entry.queue,
        priority: entry.priority,
    };
    super::limits::reject_nul(&format!("{name}.input"), &entry.input)?;
    let limits = &state.settings.limits;
    options.validate(limits).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidOption,
            format!("{name}.{}: {}", e.field, e.reason),
        )
    })?;
    let job = match jobs.get(&entry.job) {
        Some(job) => job.clone(),
        None => {
            let job = if super::valid_job_name(&entry.job) {
                state.store.job_get(tenant.id, &entry.job).await?
            } else {
                None
            };
            jobs.insert(entry.job.clone(), job.clone());
            job
        }
    };
    let job = job.ok_or_else(|| {
        invalid(
            &format!("{name}.job"),
            format!(
                "no job named {:?}: upload it first with PUT /v1/jobs/{}",
                entry.job, entry.job
            ),
        )
    })?;
    let merged = options.or(&job.defaults);
    merged.validate(limits).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidOption,
            format!(
                "{name}.{}: {} (from job {:?}'s defaults; re-upload the job with new defaults)",
                e.field, e.reason, job.name
            ),
        )
    })?;
    Ok(BatchRunParams {
        id: Uuid::now_v7(),
        job_id: job.id,
        version: job.version,
        options: merged.resolve(limits),
        input: entry.input,
    })
}

#[utoipa::path(
    post,
    path = "/v1/batches",
    tag = "batches",
    operation_id = "batches_create",
    summary = "Create runs atomically, with continuations",
    request_body = BatchRequest,
    responses(
        (status = 201, description = "created", body = BatchCreatedBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    grant: TenantGrant,
    Json(body): Json<BatchRequest>,
) -> ApiResult<(StatusCode, axum::Json<BatchCreatedBody>)> {
    let tenant = &grant.tenant;
    if body.runs.is_empty() {
        return Err(invalid("runs", "a batch needs at least one run"));
    }
    if body.runs.len() > MAX_BATCH_RUNS {
        return Err(invalid(
            "runs",
            format!(
                "{} runs is more than a batch may hold ({MAX_BATCH_RUNS}); split it",
                body.runs.len()
            ),
        ));
    }
    if body.then.len() > MAX_BATCH_CONTINUATIONS {
        return Err(invalid(
            "then",
            format!(
                "{} continuations is more than a batch may have ({MAX_BATCH_CONTINUATIONS})",
                body.then.len()
            ),
        ));
    }
    let mut jobs = HashMap::new();
    let mut runs = Vec::with_capacity(body.runs.len());
    for (i, entry) in body.runs.into_iter().enumerate() {
        let name = format!("runs[{i}]");
        if entry.on.is_some() {
            return Err(invalid(
                &format!("{name}.on"),
                "only continuations (in \"then\") take \"on\"",
            ));
        }
        runs.push(resolve_entry(&state, tenant, &mut jobs, &name, entry).await?);
    }
    let mut then = Vec::with_capacity(body.then.len());
    for (i, mut entry) in body.then.into_iter().enumerate() {
        let name = format!("then[{i}]");
        let on = match entry.on.take().as_deref() {
            Some(on @ ("succeeded" | "failed" | "finished")) => on.to_string(),
            Some(other) => {
                return Err(invalid(
                    &format!("{name}.on"),
                    format!("{other:?}: use \"succeeded\", \"failed\" or \"finished\""),
                ));
            }
            None => {
                return Err(invalid(
                    &format!("{name}.on"),
                    "missing: say when it starts: \"succeeded\" (every run succeeded), \
                     \"failed\" (some run did not succeed) or \"finished\" (all ended)",
                ));
            }
        };
        let run = resolve_entry(&state, tenant, &mut jobs, &name, entry).await?;
        then.push(BatchContinuationParams { run, on });
    }
    // Continuations count too: they become active runs when the batch ends.
    super::quota::admit_runs(&state, &grant, (runs.len() + then.len()) as u64).await?;
    let queues: Vec<String> = (runs.iter().chain(then.iter().map(|c| &c.run)))
        .map(|r| r.options.queue.clone())
        .collect();
    let created = state
        .store
        .batch_create(BatchCreateParams {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            runs,
            then,
        })
        .await?;
    let queues = queues.iter().map(String::as_str);
    state.metrics.runs_enqueued_in(&tenant.name, queues);
    Ok((
        StatusCode::CREATED,
        axum::Json(BatchCreatedBody {
            batch: (&created.batch).into(),
            runs: created.runs,
            then: created.then,
        }),
    ))
}

fn parse_batch_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request(format!("{id:?} is not a batch id: batch ids are UUIDs"))
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// List the members too.
    #[serde(default)]
    runs: bool,
}

async fn detail(
    state: &AppState,
    tenant: &Tenant,
    id: Uuid,
    with_runs: bool,
) -> ApiResult<BatchDetailBody> {
    let batch = state
        .store
        .batch_get(tenant.id, id, with_runs)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no batch with id {id}")))?;
    Ok((&batch).into())
}

#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    tag = "batches",
    operation_id = "batches_get",
    summary = "A batch with its progress",
    params(
        ("id" = uuid::Uuid, Path, description = "batch id"),
        GetQuery,
    ),
    responses(
        (status = 200, description = "the batch", body = BatchDetailBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> ApiResult<axum::Json<BatchDetailBody>> {
    let id = parse_batch_id(&id)?;
    Ok(axum::Json(detail(&state, &tenant, id, q.runs).await?))
}

#[utoipa::path(
    post,
    path = "/v1/batches/{id}/cancel",
    tag = "batches",
    operation_id = "batches_cancel",
    summary = "Cancel every run of a batch that has not ended",
    params(
        ("id" = uuid::Uuid, Path, description = "batch id"),
    ),
    responses(
        (status = 200, description = "cancelled", body = BatchCancelledBody),
        (status = 202, description = "running members were asked to stop", body = BatchCancelledBody),
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<BatchCancelledBody>)> {
    let id = parse_batch_id(&id)?;
    let (cancelled, cancel_requested) = match state.store.batch_cancel(tenant.id, id).await? {
        BatchCancel::NotFound => {
            return Err(ApiError::not_found(format!("no batch with id {id}")));
        }
        BatchCancel::Finished => {
            return Err(ApiError::conflict(format!(
                "batch {id} already finished (every run ended) and its continuations were \
                 decided; cancel a continuation with POST /v1/runs/{{id}}/cancel"
            )));
        }
        BatchCancel::Cancelled {
            cancelled,
            cancel_requested,
        } => (cancelled, cancel_requested),
    };
    let batch = detail(&state, &tenant, id, false).await?;
    // 202: running members were only asked to stop; they end `cancelled` shortly.
    let status = if cancel_requested > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(BatchCancelledBody {
            batch,
            cancelled,
            cancel_requested,
        }),
    ))
}
