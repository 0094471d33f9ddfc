//! Queues of a tenant: list with counts per state, pause and resume, and a concurrency limit
//! that holds across every runner. Settings are per tenant: pausing your `default` queue never
//! touches another tenant's.

use axum::extract::{Path, State};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Json, TenantAuth};
use super::types::{QueueBody, QueueListBody};
use crate::config::valid_queue_name;
use crate::store::QueuePutParams;

fn check_name(name: &str) -> ApiResult<()> {
    if valid_queue_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidName,
            format!("{name:?} is not a queue name: use 1-63 lowercase letters, digits, '-' or '_'"),
        ))
    }
}

#[utoipa::path(
    get,
    path = "/v1/queues",
    tag = "queues",
    operation_id = "queues_list",
    summary = "The tenant's queues with their runs by state",
    responses(
        (status = 200, description = "every queue", body = QueueListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
) -> ApiResult<axum::Json<QueueListBody>> {
    let queues = state.store.queue_list(tenant.id).await?;
    Ok(axum::Json(QueueListBody {
        queues: queues.iter().map(Into::into).collect(),
    }))
}

/// The body of `PUT /v1/queues/{name}`: absent fields keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRequest {
    paused: Option<bool>,
    /// A number, or `null` to remove the limit.
    #[serde(default, with = "serde_with_null")]
    concurrency_limit: Option<Option<i64>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        Option::<i64>::deserialize(d).map(Some)
    }
}

async fn apply(
    state: &AppState,
    tenant_id: i64,
    name: String,
    paused: Option<bool>,
    concurrency_limit: Option<Option<i64>>,
) -> ApiResult<axum::Json<QueueBody>> {
    check_name(&name)?;
    let concurrency_limit = match concurrency_limit {
        Some(Some(n)) if !(1..=100_000).contains(&n) => {
            return Err(ApiError::new(
                ErrorCode::InvalidOption,
                format!("concurrency_limit: {n} is outside 1..=100000 (null removes the limit)"),
            ));
        }
        Some(v) => Some(v.map(|n| n as i32)),
        None => None,
    };
    let queue = state
        .store
        .queue_put(QueuePutParams {
            tenant_id,
            name,
            paused,
            concurrency_limit,
        })
        .await?;
    Ok(axum::Json((&queue).into()))
}

#[utoipa::path(
    put,
    path = "/v1/queues/{name}",
    tag = "queues",
    operation_id = "queues_put",
    summary = "Pause, resume or limit a queue (absent fields keep their value)",
    params(
        ("name" = String, Path, description = "queue name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    request_body = QueueRequest,
    responses(
        (status = 200, description = "the queue", body = QueueBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
    Json(body): Json<QueueRequest>,
) -> ApiResult<axum::Json<QueueBody>> {
    apply(&state, tenant.id, name, body.paused, body.concurrency_limit).await
}

#[utoipa::path(
    post,
    path = "/v1/queues/{name}/pause",
    tag = "queues",
    operation_id = "queues_pause",
    summary = "Pause a queue",
    params(
        ("name" = String, Path, description = "queue name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the queue", body = QueueBody),
    ),
)]
pub async fn pause(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<QueueBody>> {
    apply(&state, tenant.id, name, Some(true), None).await
}

#[utoipa::path(
    post,
    path = "/v1/queues/{name}/resume",
    tag = "queues",
    operation_id = "queues_resume",
    summary = "Resume a queue",
    params(
        ("name" = String, Path, description = "queue name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the queue", body = QueueBody),
    ),
)]
pub async fn resume(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<QueueBody>> {
    apply(&state, tenant.id, name, Some(false), None).await
}
