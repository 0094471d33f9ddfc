//! `GET /v1/runners`: the live runners sharing this database, which one leads maintenance, and
//! their in-flight attempts — every tenant's with the admin token, only your own with a tenant
//! key (runners are shared; attempts are not).

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

pub async fn list(
    State(state): State<AppState>,
    Viewer(tenant): Viewer,
) -> ApiResult<axum::Json<Value>> {
    let runners = state.store.runner_list(tenant).await?;
    Ok(axum::Json(json!({ "runners": runners })))
}
