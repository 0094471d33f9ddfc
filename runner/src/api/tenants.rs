//! Admin routes: tenants and their API keys. Authorised by the runner's admin token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{AdminAuth, Json};
use super::{AppState, valid_tenant_name};
use crate::auth;
use crate::store::ApiKeyCreateParams;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    Json(body): Json<CreateTenant>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    if !valid_tenant_name(&body.name) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!(
                "name: {:?} is not a tenant name: use 1-63 lowercase letters, digits, '-' or '_'",
                body.name
            ),
        ));
    }
    let tenant = state.store.tenant_create(&body.name).await?;
    let key = auth::generate_key();
    state
        .store
        .api_key_create(ApiKeyCreateParams {
            tenant: tenant.name.clone(),
            prefix: key.prefix.clone(),
            hash: key.hash,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"tenant": tenant, "api_key": key.secret, "api_key_prefix": key.prefix})),
    ))
}

pub async fn list(State(state): State<AppState>, _: AdminAuth) -> ApiResult<axum::Json<Value>> {
    let tenants = state.store.tenant_list().await?;
    Ok(axum::Json(json!({ "tenants": tenants })))
}

pub async fn create_key(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let key = auth::generate_key();
    let created = state
        .store
        .api_key_create(ApiKeyCreateParams {
            tenant: name.clone(),
            prefix: key.prefix.clone(),
            hash: key.hash,
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant named {name:?}")))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"api_key": key.secret, "key": created})),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWeight {
    weight: i32,
}

/// `PUT /v1/tenants/{name}/weight`: the tenant's share of claims relative to other tenants with
/// ready work (1-100, default 1).
pub async fn set_weight(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
    Json(body): Json<SetWeight>,
) -> ApiResult<axum::Json<Value>> {
    if !(1..=100).contains(&body.weight) {
        return Err(ApiError::unprocessable(
            "invalid_option",
            format!("weight: {} is outside 1..=100", body.weight),
        ));
    }
    let tenant = state
        .store
        .tenant_weight_set(&name, body.weight)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant named {name:?}")))?;
    Ok(axum::Json(
        json!({ "tenant": tenant, "weight": body.weight }),
    ))
}
