//! Manual control of a run: `POST /v1/runs/{id}/cancel`, `POST /v1/runs/{id}/retry`,
//! `DELETE /v1/runs/{id}`.
//!
//! The store decides from the run's state under a row lock, so these answers are never based on
//! a stale read: 404 when the tenant has no such run, 409 (naming the state) when the run is in
//! a state the operation does not apply to.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::TenantAuth;
use super::types::{RunCancelledBody, RunDetailBody};
use crate::store::{RunCancel, RunDelete, RunRetry};

fn parse_run_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a run id: run ids are UUIDs")))
}

fn no_run(id: Uuid) -> ApiError {
    ApiError::not_found(format!("no run with id {id}"))
}

/// The run as `GET /v1/runs/{id}` shows it (after the change).
async fn current(state: &AppState, tenant_id: i64, id: Uuid) -> ApiResult<RunDetailBody> {
    let run = state
        .store
        .run_get(tenant_id, id)
        .await?
        .ok_or_else(|| no_run(id))?;
    Ok((&run).into())
}

/// Cancels a run in any state that has not ended: at once (200 with the run), or for a
/// running run by asking its runner to interrupt the attempt (202; it ends `cancelled` shortly).
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/cancel",
    tag = "runs",
    operation_id = "control_cancel",
    summary = "Cancel a run that has not ended",
    params(
        ("id" = uuid::Uuid, Path, description = "run id"),
    ),
    responses(
        (status = 200, description = "cancelled", body = RunCancelledBody),
        (status = 202, description = "running: its runner was asked to stop it; it ends `cancelled` shortly", body = RunCancelledBody),
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<RunCancelledBody>)> {
    let id = parse_run_id(&id)?;
    let status = match state.store.run_cancel(tenant.id, id).await? {
        RunCancel::NotFound => return Err(no_run(id)),
        RunCancel::Ended(ended) => {
            return Err(ApiError::conflict(format!(
                "run {id} already ended ({}); only runs that have not ended can be cancelled",
                ended.as_str()
            )));
        }
        RunCancel::Cancelled => StatusCode::OK,
        RunCancel::CancelRequested => StatusCode::ACCEPTED,
    };
    let run = current(&state, tenant.id, id).await?;
    Ok((
        status,
        axum::Json(RunCancelledBody {
            run,
            cancel_requested: status == StatusCode::ACCEPTED,
        }),
    ))
}

/// Re-enqueues a failed or cancelled run for a new attempt (200 with the run).
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/retry",
    tag = "runs",
    operation_id = "control_retry",
    summary = "Enqueue a failed or cancelled run again",
    params(
        ("id" = uuid::Uuid, Path, description = "run id"),
    ),
    responses(
        (status = 200, description = "re-enqueued", body = RunDetailBody),
    ),
)]
pub async fn retry(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunDetailBody>> {
    let id = parse_run_id(&id)?;
    match state.store.run_retry(tenant.id, id).await? {
        RunRetry::NotFound => return Err(no_run(id)),
        RunRetry::NotRetryable(s) => {
            return Err(ApiError::conflict(format!(
                "run {id} is {}; only failed or cancelled runs can be retried",
                s.as_str()
            )));
        }
        RunRetry::Retried => {}
    }
    Ok(axum::Json(current(&state, tenant.id, id).await?))
}

/// Deletes a terminal run with its attempts, history and logs (204).
#[utoipa::path(
    delete,
    path = "/v1/runs/{id}",
    tag = "runs",
    operation_id = "control_delete",
    summary = "Delete an ended run with its attempts, history and logs",
    params(
        ("id" = uuid::Uuid, Path, description = "run id"),
    ),
    responses(
        (status = 204, description = "deleted"),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_run_id(&id)?;
    match state.store.run_delete(tenant.id, id).await? {
        RunDelete::NotFound => Err(no_run(id)),
        RunDelete::Deleted => Ok(StatusCode::NO_CONTENT),
        RunDelete::NotEnded(s) => Err(ApiError::conflict(format!(
            "run {id} is {}; only ended runs can be deleted: cancel it first with \
             POST /v1/runs/{id}/cancel",
            s.as_str()
        ))),
    }
}
