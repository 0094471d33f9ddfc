//! Admin routes: tenants, their API keys and roles, their claim weight and their quotas.
//! Authorised by the runner's admin token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{AdminAuth, Json};
use super::types::{
    KeyCreatedBody, KeyDisabledBody, KeyListBody, KeyRoleBody, TenantCreatedBody, TenantLimitsBody,
    TenantLimitsViewBody, TenantListBody, TenantOneBody, TenantWeightBody,
};
use super::{AppState, valid_tenant_name};
use crate::auth;
use crate::config::TenantLimits;
use crate::store::{KeyRole, Tenant};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1-63 lowercase letters, digits, `-` or `_`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: String,
}

fn no_tenant(name: &str) -> ApiError {
    ApiError::not_found(format!("no tenant named {name:?}"))
}

/// `POST /v1/tenants`: the tenant and its first (full) key, in one transaction.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "admin",
    operation_id = "tenants_create",
    summary = "Create a tenant and its first key (shown once)",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "created", body = TenantCreatedBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    Json(body): Json<CreateTenant>,
) -> ApiResult<(StatusCode, axum::Json<TenantCreatedBody>)> {
    if !valid_tenant_name(&body.name) {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            format!(
                "name: {:?} is not a tenant name: use 1-63 lowercase letters, digits, '-' or '_'",
                body.name
            ),
        ));
    }
    let key = auth::generate_key();
    let tenant = state
        .store
        .tenant_create(&body.name, key.stored_as(&body.name, KeyRole::Full))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantCreatedBody {
            tenant: (&tenant).into(),
            api_key: key.secret,
            api_key_prefix: key.prefix,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "admin",
    operation_id = "tenants_list",
    summary = "Every tenant",
    responses(
        (status = 200, description = "the tenants", body = TenantListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _: AdminAuth,
) -> ApiResult<axum::Json<TenantListBody>> {
    let tenants = state.store.tenant_list().await?;
    Ok(axum::Json(TenantListBody {
        tenants: tenants.iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    role: Option<KeyRoleBody>,
}

/// `POST /v1/tenants/{name}/keys` with an optional body `{"role": "full" | "read"}`.
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/keys",
    tag = "admin",
    operation_id = "tenants_create_key",
    summary = "Create an API key (its secret is shown once)",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    request_body(content = Option<CreateKey>, description = "optional; an empty body makes a `full` key"),
    responses(
        (status = 201, description = "created", body = KeyCreatedBody),
    ),
)]
pub async fn create_key(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<KeyCreatedBody>)> {
    let body: CreateKey = if body.iter().all(u8::is_ascii_whitespace) {
        CreateKey::default()
    } else if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid JSON body: the body must be an object, e.g. {\"role\": \"read\"}",
        ));
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid JSON body: {e} (expected {{\"role\": \"full\" | \"read\"}})"
            ))
        })?
    };
    let key = auth::generate_key();
    let created = state
        .store
        .api_key_create(key.stored_as(&name, body.role.map_or(KeyRole::Full, Into::into)))
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(KeyCreatedBody {
            api_key: key.secret,
            key: (&created).into(),
        }),
    ))
}

/// `GET /v1/tenants/{name}/keys`: prefix, role, created, disabled. Never the secrets (they are
/// not stored).
#[utoipa::path(
    get,
    path = "/v1/tenants/{name}/keys",
    tag = "admin",
    operation_id = "tenants_list_keys",
    summary = "A tenant's keys (never their secrets)",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the keys", body = KeyListBody),
    ),
)]
pub async fn list_keys(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<KeyListBody>> {
    let keys = state
        .store
        .api_key_list(&name)
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    Ok(axum::Json(KeyListBody {
        keys: keys.iter().map(Into::into).collect(),
    }))
}

/// `DELETE /v1/tenants/{name}/keys/{prefix}`: disables the key at once, on every runner (each
/// request looks its key up).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{name}/keys/{prefix}",
    tag = "admin",
    operation_id = "tenants_disable_key",
    summary = "Disable a key at once, on every runner",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
        ("prefix" = String, Path, description = "the key's prefix"),
    ),
    responses(
        (status = 200, description = "disabled", body = KeyDisabledBody),
    ),
)]
pub async fn disable_key(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((name, prefix)): Path<(String, String)>,
) -> ApiResult<axum::Json<KeyDisabledBody>> {
    let disabled = state
        .store
        .api_key_disable(&name, &prefix)
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    if disabled == 0 {
        return Err(ApiError::not_found(format!(
            "tenant {name:?} has no enabled key with prefix {prefix:?} (see GET /v1/tenants/{name}/keys)"
        )));
    }
    Ok(axum::Json(KeyDisabledBody { prefix, disabled }))
}

async fn set_disabled(state: &AppState, name: &str, disabled: bool) -> ApiResult<Tenant> {
    state
        .store
        .tenant_disabled_set(name, disabled)
        .await?
        .ok_or_else(|| no_tenant(name))
}

/// `POST /v1/tenants/{name}/disable`: every key of the tenant stops working at once and none
/// of its runs is claimed; nothing is deleted.
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/disable",
    tag = "admin",
    operation_id = "tenants_disable",
    summary = "Disable a tenant: its keys stop working, its runs are not claimed",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the tenant", body = TenantOneBody),
    ),
)]
pub async fn disable(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<TenantOneBody>> {
    let tenant = set_disabled(&state, &name, true).await?;
    Ok(axum::Json(TenantOneBody {
        tenant: (&tenant).into(),
    }))
}

/// `POST /v1/tenants/{name}/enable`: undoes `disable` (keys disabled one by one stay disabled).
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/enable",
    tag = "admin",
    operation_id = "tenants_enable",
    summary = "Enable a disabled tenant",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the tenant", body = TenantOneBody),
    ),
)]
pub async fn enable(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<TenantOneBody>> {
    let tenant = set_disabled(&state, &name, false).await?;
    Ok(axum::Json(TenantOneBody {
        tenant: (&tenant).into(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWeight {
    weight: i32,
}

/// `PUT /v1/tenants/{name}/weight`: the tenant's share of claims relative to other tenants with
/// ready work (1-100, default 1).
#[utoipa::path(
    put,
    path = "/v1/tenants/{name}/weight",
    tag = "admin",
    operation_id = "tenants_set_weight",
    summary = "Set a tenant's share of claims (1-100)",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    request_body = SetWeight,
    responses(
        (status = 200, description = "the tenant", body = TenantWeightBody),
    ),
)]
pub async fn set_weight(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
    Json(body): Json<SetWeight>,
) -> ApiResult<axum::Json<TenantWeightBody>> {
    if !(1..=100).contains(&body.weight) {
        return Err(ApiError::new(
            ErrorCode::InvalidOption,
            format!("weight: {} is outside 1..=100", body.weight),
        ));
    }
    let tenant = state
        .store
        .tenant_weight_set(&name, body.weight)
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    Ok(axum::Json(TenantWeightBody {
        tenant: (&tenant).into(),
        weight: body.weight,
    }))
}

/// The answer of both limits routes: the tenant's own values, the effective ones, what it uses
/// now and how often each limit refused it over the last week.
async fn limits_view(state: &AppState, name: &str) -> ApiResult<TenantLimitsViewBody> {
    let (tenant, own) = state
        .store
        .tenant_limits_get(name)
        .await?
        .ok_or_else(|| no_tenant(name))?;
    let usage = state.store.tenant_usage(tenant.id).await?;
    let since = (chrono::Utc::now() - chrono::Duration::days(7)).date_naive();
    let hits = state.store.tenant_limit_hits(tenant.id, since).await?;
    Ok(TenantLimitsViewBody {
        tenant: tenant.name,
        limits: (&own.or(&state.settings.quotas)).into(),
        own: (&own).into(),
        runner_defaults: (&state.settings.quotas).into(),
        usage: (&usage).into(),
        limit_hits: hits.iter().map(Into::into).collect(),
    })
}

/// `GET /v1/tenants/{name}/limits`.
#[utoipa::path(
    get,
    path = "/v1/tenants/{name}/limits",
    tag = "admin",
    operation_id = "tenants_get_limits",
    summary = "A tenant's quotas, usage and refusals",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the limits", body = TenantLimitsViewBody),
    ),
)]
pub async fn get_limits(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<TenantLimitsViewBody>> {
    Ok(axum::Json(limits_view(&state, &name).await?))
}

/// `PUT /v1/tenants/{name}/limits`: replaces the tenant's own limits. A field left out or
/// `null` falls back to the runner's default (its flag).
#[utoipa::path(
    put,
    path = "/v1/tenants/{name}/limits",
    tag = "admin",
    operation_id = "tenants_put_limits",
    summary = "Replace a tenant's own quotas (null: the runner's default)",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    request_body = TenantLimitsBody,
    responses(
        (status = 200, description = "the limits", body = TenantLimitsViewBody),
    ),
)]
pub async fn put_limits(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
    Json(body): Json<TenantLimits>,
) -> ApiResult<axum::Json<TenantLimitsViewBody>> {
    body.validate()
        .map_err(|e| ApiError::new(ErrorCode::InvalidOption, e))?;
    state
        .store
        .tenant_limits_put(&name, &body)
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    Ok(axum::Json(limits_view(&state, &name).await?))
}
