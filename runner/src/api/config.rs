//! A tenant's config entries (variables and secrets): `PUT`, `GET` and `DELETE
//! /v1/config/{name}`, `GET /v1/config`; and the admin's re-encryption after a key rotation,
//! `POST /v1/admin/config/reencrypt`.
//!
//! Values are sealed before they reach the store and opened only to show a non-secret value: a
//! secret's value never leaves the runner through this API (jobs read it through their grant).
//! Without a keyring every route here answers 503 naming `SANDFIRE_SECRETS_KEY`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use zeroize::Zeroize;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{AdminAuth, Json, TenantAuth};
use super::types::{ConfigEntryBody, ConfigListBody, ReencryptedBody};
use crate::capabilities::secrets::ENV_KEY;
use crate::capabilities::{Keyring, MAX_CONFIG_ENTRIES, MAX_CONFIG_VALUE_BYTES, check_config_name};
use crate::store::{ConfigEntry, ConfigPutParams, ConfigReseal, StoreError};

/// The body of `PUT /v1/config/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutConfig {
    value: String,
    /// Secret unless said otherwise: a secret's value is never shown again.
    #[serde(default = "secret_by_default")]
    secret: bool,
}

fn secret_by_default() -> bool {
    true
}

impl Drop for PutConfig {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

fn keyring(state: &AppState) -> ApiResult<&Keyring> {
    state.settings.keyring.as_deref().ok_or_else(|| {
        ApiError::new(ErrorCode::SecretsKeyMissing,
            format!(
                "config is unavailable: this runner has no encryption key; the operator must \
                 start it with {ENV_KEY} (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"
            ),
        )
    })
}

fn check_name(name: &str) -> ApiResult<()> {
    check_config_name(name).map_err(|e| ApiError::new(ErrorCode::InvalidName, e))
}

/// An entry as the API shows it: `value` only for a non-secret entry.
fn entry_json(keyring: &Keyring, tenant_id: i64, entry: &ConfigEntry) -> ConfigEntryBody {
    let mut body = ConfigEntryBody {
        name: entry.name.clone(),
        secret: entry.secret,
        key_id: entry.sealed.key_id,
        created_at: entry.created_at,
        updated_at: entry.updated_at,
        value: None,
        value_error: None,
    };
    if !entry.secret {
        match keyring.open_string(tenant_id, &entry.name, &entry.sealed) {
            Ok(value) => body.value = Some(Some(value)),
            Err(e) => {
                tracing::warn!(tenant_id, name = %entry.name, error = %e, "a config value does not decrypt");
                body.value = Some(None);
                body.value_error = Some(e.to_string());
            }
        }
    }
    body
}

fn no_entry(name: &str) -> ApiError {
    ApiError::not_found(format!("no config entry named {name:?}"))
}

/// `PUT /v1/config/{name}`: 201 when created, 200 when replaced.
#[utoipa::path(
    put,
    path = "/v1/config/{name}",
    tag = "config",
    operation_id = "config_put",
    summary = "Set a config entry (secret unless `secret: false`)",
    params(
        ("name" = String, Path, description = "config entry name", pattern = "^[a-z][a-z0-9_]{0,63}$"),
    ),
    request_body = PutConfig,
    responses(
        (status = 201, description = "created", body = ConfigEntryBody),
        (status = 200, description = "replaced", body = ConfigEntryBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
    Json(body): Json<PutConfig>,
) -> ApiResult<(StatusCode, axum::Json<ConfigEntryBody>)> {
    let keyring = keyring(&state)?;
    check_name(&name)?;
    if body.value.len() > MAX_CONFIG_VALUE_BYTES {
        return Err(ApiError::new(
            ErrorCode::ValueTooLarge,
            format!(
                "value: {} bytes; a config value is at most {MAX_CONFIG_VALUE_BYTES} bytes",
                body.value.len()
            ),
        ));
    }
    let sealed = keyring
        .seal(tenant.id, &name, body.value.as_bytes())
        .map_err(|e| {
            tracing::error!(error = %e, "sealing a config value failed");
            ApiError::internal()
        })?;
    let put = state
        .store
        .config_put(ConfigPutParams {
            tenant_id: tenant.id,
            name,
            secret: body.secret,
            sealed,
            max_entries: MAX_CONFIG_ENTRIES,
        })
        .await
        .map_err(|e| match e {
            StoreError::QuotaExceeded { limit, value } => {
                super::quota::record_hit(&state, tenant.id, limit);
                ApiError::quota(
                    limit,
                    value,
                    "nothing was stored; delete entries you no longer need (DELETE /v1/config/{name})",
                    None,
                )
            }
            other => other.into(),
        })?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(entry_json(keyring, tenant.id, &put.entry)),
    ))
}

/// `GET /v1/config`: every entry's name and metadata; values of non-secret entries only.
#[utoipa::path(
    get,
    path = "/v1/config",
    tag = "config",
    operation_id = "config_list",
    summary = "The tenant's config entries (values of non-secret entries only)",
    responses(
        (status = 200, description = "the entries", body = ConfigListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
) -> ApiResult<axum::Json<ConfigListBody>> {
    let keyring = keyring(&state)?;
    let entries = state.store.config_list(tenant.id).await?;
    let config = entries
        .iter()
        .map(|e| entry_json(keyring, tenant.id, e))
        .collect();
    Ok(axum::Json(ConfigListBody { config }))
}

/// `GET /v1/config/{name}`: as one entry of the list.
#[utoipa::path(
    get,
    path = "/v1/config/{name}",
    tag = "config",
    operation_id = "config_get",
    summary = "A config entry",
    params(
        ("name" = String, Path, description = "config entry name", pattern = "^[a-z][a-z0-9_]{0,63}$"),
    ),
    responses(
        (status = 200, description = "the entry", body = ConfigEntryBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ConfigEntryBody>> {
    let keyring = keyring(&state)?;
    check_name(&name)?;
    let entry = state
        .store
        .config_get(tenant.id, &name)
        .await?
        .ok_or_else(|| no_entry(&name))?;
    Ok(axum::Json(entry_json(keyring, tenant.id, &entry)))
}

/// `DELETE /v1/config/{name}`: 204, or 404 when there is no such entry. Jobs granted the name
/// read "not set" from their next attempt on.
#[utoipa::path(
    delete,
    path = "/v1/config/{name}",
    tag = "config",
    operation_id = "config_delete",
    summary = "Delete a config entry",
    params(
        ("name" = String, Path, description = "config entry name", pattern = "^[a-z][a-z0-9_]{0,63}$"),
    ),
    responses(
        (status = 204, description = "deleted"),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    keyring(&state)?;
    check_name(&name)?;
    if state.store.config_delete(tenant.id, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_entry(&name))
    }
}

/// Rows re-encrypted per statement.
const RESEAL_BATCH: i64 = 100;

/// `POST /v1/admin/config/reencrypt`: re-seals every entry (of every tenant) that is not under
/// the active key. Entries under a key id this runner does not hold are counted as `failed`
/// and left as they are; run it again with that key in `SANDFIRE_SECRETS_KEYS`.
#[utoipa::path(
    post,
    path = "/v1/admin/config/reencrypt",
    tag = "admin",
    operation_id = "config_reencrypt",
    summary = "Re-seal every config entry under the active key",
    responses(
        (status = 200, description = "done", body = ReencryptedBody),
    ),
)]
pub async fn reencrypt(
    State(state): State<AppState>,
    _: AdminAuth,
) -> ApiResult<axum::Json<ReencryptedBody>> {
    let keyring = keyring(&state)?;
    let active = keyring.active_key_id();
    let mut after = None;
    let (mut done, mut failed) = (0u64, 0u64);
    let mut failed_key_ids = std::collections::BTreeSet::new();
    loop {
        let rows = state
            .store
            .config_stale(active, after.clone(), RESEAL_BATCH)
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.tenant_id, last.name.clone()));
        let mut reseals = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut plain = match keyring.open(row.tenant_id, &row.name, &row.sealed) {
                Ok(plain) => plain,
                Err(e) => {
                    tracing::warn!(tenant_id = row.tenant_id, name = %row.name,
                        key_id = row.sealed.key_id, error = %e, "config entry not re-encrypted");
                    failed += 1;
                    failed_key_ids.insert(row.sealed.key_id);
                    continue;
                }
            };
            let sealed = keyring.seal(row.tenant_id, &row.name, &plain);
            plain.zeroize();
            let sealed = sealed.map_err(|e| {
                tracing::error!(error = %e, "sealing a config value failed");
                ApiError::internal()
            })?;
            reseals.push(ConfigReseal {
                tenant_id: row.tenant_id,
                name: row.name.clone(),
                old: row.sealed.clone(),
                new: sealed,
            });
        }
        done += state.store.config_reseal(&reseals).await?;
        if (rows.len() as i64) < RESEAL_BATCH {
            break;
        }
    }
    tracing::info!(
        active_key_id = active,
        reencrypted = done,
        failed,
        "config re-encrypted"
    );
    Ok(axum::Json(ReencryptedBody {
        active_key_id: active,
        reencrypted: done,
        failed,
        failed_key_ids: failed_key_ids.into_iter().collect(),
    }))
}
