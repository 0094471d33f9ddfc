//! `GET /v1/runners`: the live runners sharing this database, which one leads maintenance, and
//! their in-flight attempts — the full record and every tenant's attempts with the admin token;
//! with a tenant key only ids, queues, slots, heartbeat and your own attempts (runners are
//! shared; their hosts, versions and other tenants' attempts are not).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract::{AdminAuth, TenantAuth};

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

/// What a tenant sees of a runner: enough to know where its runs can execute, nothing about
/// the operator's machines (host names, versions) or other tenants.
#[derive(Debug, serde::Serialize)]
struct TenantView<'a> {
    id: uuid::Uuid,
    queues: &'a [String],
    slots: i32,
    heartbeat_at: chrono::DateTime<chrono::Utc>,
    in_flight: &'a [crate::store::InFlightAttempt],
}

pub async fn list(
    State(state): State<AppState>,
    Viewer(tenant): Viewer,
) -> ApiResult<axum::Json<Value>> {
    let runners = state.store.runner_list(tenant).await?;
    if tenant.is_none() {
        return Ok(axum::Json(json!({ "runners": runners })));
    }
    let views: Vec<TenantView<'_>> = runners
        .iter()
        .map(|r| TenantView {
            id: r.id,
            queues: &r.queues,
            slots: r.slots,
            heartbeat_at: r.heartbeat_at,
            in_flight: &r.in_flight,
        })
        .collect();
    Ok(axum::Json(json!({ "runners": views })))
}
