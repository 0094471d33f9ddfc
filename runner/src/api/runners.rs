//! `GET /v1/runners`: the live runners sharing this database, which one leads maintenance, and
//! their in-flight attempts — the full record and every tenant's attempts with the admin token;
//! with a tenant key only ids, queues, slots, heartbeat and your own attempts (runners are
//! shared; their hosts, versions and other tenants' attempts are not).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiResult;
use super::extract::{AdminAuth, TenantAuth};
use super::types::{RunnerBody, RunnerListBody};

/// Either credential; decides whose attempts are shown.
pub struct Viewer(Option<i64>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = super::error::ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if AdminAuth::from_request_parts(parts, state).await.is_ok() {
            return Ok(Viewer(None));
        }
        let TenantAuth(tenant) = TenantAuth::from_request_parts(parts, state).await?;
        Ok(Viewer(Some(tenant.id)))
    }
}

#[utoipa::path(
    get,
    path = "/v1/runners",
    tag = "operations",
    operation_id = "runners_list",
    summary = "The live runners and their attempts in flight",
    responses(
        (status = 200, description = "the runners", body = RunnerListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Viewer(tenant): Viewer,
) -> ApiResult<axum::Json<RunnerListBody>> {
    let runners = state.store.runner_list(tenant).await?;
    // A tenant sees enough to know where its runs can execute, nothing about the operator's
    // machines (host names, versions) or other tenants.
    let view = if tenant.is_none() {
        RunnerBody::full
    } else {
        RunnerBody::shared
    };
    Ok(axum::Json(RunnerListBody {
        runners: runners.iter().map(view).collect(),
    }))
}
