//! Bulk enqueue: `POST /v1/runs` with a JSON array of runs, each naming its job. No batch
//! bookkeeping (no batch row, no continuations): the fastest way to enqueue many independent
//! runs. Every entry is validated before anything is written, and the runs are inserted in one
//! transaction: either all of them are accepted, or none.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{JsonArray, TenantGrant};
use super::types::BulkEnqueuedBody;
use crate::config::{ResolvedOptions, RunOptions};
use crate::store::{Job, RunInsertParams};

/// Most runs one request may carry.
pub const MAX_BULK_RUNS: usize = 100_000;

/// One run of a bulk enqueue: the fields of `POST /v1/jobs/{name}/runs` plus `job`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkEntry {
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
    delay: Option<String>,
    delay_ms: Option<u64>,
    run_at: Option<String>,
    /// Refused with a message: continuations need the single-run route.
    #[schema(value_type = Value)]
    after: Option<Value>,
    /// Refused with a message: unique runs need the single-run route.
    #[schema(value_type = Value)]
    idempotency_key: Option<Value>,
}

fn invalid(index: usize, field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidOption,
        format!("runs[{index}].{field}: {reason}"),
    )
}

/// A job as resolved once per request, with its options when an entry sets none.
struct Resolved {
    job: Job,
    defaults: ResolvedOptions,
}

#[utoipa::path(
    post,
    path = "/v1/runs",
    tag = "runs",
    operation_id = "bulk_enqueue",
    summary = "Enqueue many runs in one request",
    request_body = Vec<BulkEntry>,
    responses(
        (status = 201, description = "created", body = BulkEnqueuedBody),
    ),
)]
pub async fn enqueue(
    State(state): State<AppState>,
    grant: TenantGrant,
    JsonArray(entries): JsonArray<BulkEntry>,
) -> ApiResult<(StatusCode, axum::Json<BulkEnqueuedBody>)> {
    if entries.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidOption,
            "runs: send a JSON array with at least one run",
        ));
    }
    if entries.len() > MAX_BULK_RUNS {
        return Err(ApiError::too_large(format!(
            "{} runs in one request; send at most {MAX_BULK_RUNS} per request",
            entries.len()
        )));
    }
    let tenant = &grant.tenant;
    let limits = &state.settings.limits;
    let mut jobs: HashMap<String, Resolved> = HashMap::new();
    let mut params = Vec::with_capacity(entries.len());
    let mut delayed = false;
    for (i, entry) in entries.into_iter().enumerate() {
        if entry.after.is_some() {
            return Err(invalid(
                i,
                "after",
                "continuations cannot be bulk-enqueued; use POST /v1/jobs/{name}/runs",
            ));
        }
        if entry.idempotency_key.is_some() {
            return Err(invalid(
                i,
                "idempotency_key",
                "unique runs cannot be bulk-enqueued; use POST /v1/jobs/{name}/runs",
            ));
        }
        super::limits::reject_nul(&format!("runs[{i}].input"), &entry.input)?;
        if !jobs.contains_key(&entry.job) {
            let job = if super::valid_job_name(&entry.job) {
                state.store.job_get(tenant.id, &entry.job).await?
            } else {
                None
            };
            let job = job.ok_or_else(|| {
                invalid(
                    i,
                    "job",
                    format!(
                        "no job named {:?}: upload it first with PUT /v1/jobs/{}",
                        entry.job, entry.job
                    ),
                )
            })?;
            job.defaults.validate(limits).map_err(|e| {
                invalid(
                    i,
                    e.field,
                    format!(
                        "{} (from job {:?}'s defaults; re-upload the job with new defaults)",
                        e.reason, job.name
                    ),
                )
            })?;
            let defaults = job.defaults.resolve(limits);
            jobs.insert(entry.job.clone(), Resolved { job, defaults });
        }
        let resolved = &jobs[&entry.job];
        let options = RunOptions {
            max_attempts: entry.max_attempts,
            timeout_ms: entry.timeout_ms,
            fuel: entry.fuel,
            memory_mb: entry.memory_mb,
            backoff_base_ms: entry.backoff_base_ms,
            queue: entry.queue,
            priority: entry.priority,
        };
        let options = if options == RunOptions::default() {
            resolved.defaults.clone()
        } else {
            options
                .validate(limits)
                .map_err(|e| invalid(i, e.field, e.reason))?;
            let merged = options.or(&resolved.job.defaults);
            merged
                .validate(limits)
                .map_err(|e| invalid(i, e.field, e.reason))?;
            merged.resolve(limits)
        };
        let timing = super::runs::Timing {
            delay: entry.delay,
            delay_ms: entry.delay_ms,
            run_at: entry.run_at,
        };
        let due = super::runs::due(&timing, limits)
            .map_err(|e| e.map_message(|m| format!("runs[{i}].{m}")))?;
        delayed |= due.is_some();
        params.push(RunInsertParams {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            job_id: resolved.job.id,
            version: resolved.job.version,
            options,
            input: entry.input,
            reason: "enqueued via API (bulk)".to_string(),
            due,
            after: None,
            // Read for this request; the bulk insert does not check it again.
            job_row_version: None,
        });
    }
    let ids: Vec<Uuid> = params.iter().map(|p| p.id).collect();
    super::quota::admit_runs(&state, &grant, params.len() as u64).await?;
    let queues: Vec<String> = params.iter().map(|p| p.options.queue.clone()).collect();
    state.store.run_insert_bulk(params).await?;
    let queues = queues.iter().map(String::as_str);
    state.metrics.runs_enqueued_in(&grant.tenant.name, queues);
    if delayed {
        state.promoter.notify_one();
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(BulkEnqueuedBody {
            count: ids.len(),
            ids,
        }),
    ))
}
