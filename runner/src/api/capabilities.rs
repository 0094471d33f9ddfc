//! A job's capabilities, granted by its tenant: `PUT /v1/jobs/{name}/capabilities` and `GET`
//! the same (also shown by `GET /v1/jobs/{name}`).
//!
//! Every host pattern must lie inside the tenant's policy (422 `outside_policy` naming the
//! first that does not); config names must be valid names, set or not yet.

use axum::extract::{Path, State};
use serde::Deserialize;

use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Json, TenantAuth};
use super::policy::hosts_field;
use super::types::JobGrantBody;
use super::{AppState, valid_job_name};
use crate::capabilities::{MAX_CONFIG_ENTRIES, check_config_name};
use crate::store::JobGrant;

/// The body of `PUT /v1/jobs/{name}/capabilities`: replaces the job's whole grant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCapabilities {
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    config: Vec<String>,
}

fn no_job(name: &str) -> ApiError {
    ApiError::not_found(format!("no job named {name:?}"))
}

fn check_job_name(name: &str) -> ApiResult<()> {
    if valid_job_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidName,
            format!("{name:?} is not a job name"),
        ))
    }
}

/// `GET /v1/jobs/{name}/capabilities`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{name}/capabilities",
    tag = "jobs",
    operation_id = "capabilities_get",
    summary = "A job's grant of capabilities",
    params(
        ("name" = String, Path, description = "job name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 200, description = "the grant", body = JobGrantBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<JobGrantBody>> {
    let grant = state
        .store
        .job_grant_get(tenant.id, &name)
        .await?
        .ok_or_else(|| no_job(&name))?;
    Ok(axum::Json(JobGrantBody {
        job: name,
        grant: (&grant).into(),
    }))
}

/// `PUT /v1/jobs/{name}/capabilities` (a key that may change the tenant's jobs).
#[utoipa::path(
    put,
    path = "/v1/jobs/{name}/capabilities",
    tag = "jobs",
    operation_id = "capabilities_put",
    summary = "Replace a job's grant (within the tenant's policy)",
    params(
        ("name" = String, Path, description = "job name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    request_body = PutCapabilities,
    responses(
        (status = 200, description = "the grant as stored", body = JobGrantBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
    Json(body): Json<PutCapabilities>,
) -> ApiResult<axum::Json<JobGrantBody>> {
    check_job_name(&name)?;
    let hosts = hosts_field(&body.allowed_outbound_hosts)?;
    if body.config.len() > MAX_CONFIG_ENTRIES as usize {
        return Err(ApiError::new(
            ErrorCode::TooManyConfigNames,
            format!(
                "config: {} names; a tenant has at most {MAX_CONFIG_ENTRIES} config entries",
                body.config.len()
            ),
        ));
    }
    let mut config = Vec::with_capacity(body.config.len());
    for config_name in &body.config {
        check_config_name(config_name)
            .map_err(|e| ApiError::new(ErrorCode::InvalidConfigName, format!("config: {e}")))?;
        if !config.contains(config_name) {
            config.push(config_name.clone());
        }
    }
    if !hosts.is_empty() {
        let policy = state.store.tenant_policy_of(tenant.id).await?;
        // Stored patterns were checked when written; a pattern that no longer parses allows
        // nothing, so the ceiling is read leniently.
        let ceiling = crate::capabilities::AllowedHosts::parse(&policy.allowed_outbound_hosts)
            .unwrap_or_default();
        if let Err(outside) = ceiling.contains(&hosts) {
            let allows = if ceiling.is_empty() {
                "allows no outbound network".to_string()
            } else {
                format!("allows only {ceiling}")
            };
            return Err(ApiError::new(
                ErrorCode::OutsidePolicy,
                format!(
                    "allowed_outbound_hosts: {outside} is outside the tenant's policy, which \
                     {allows}; each pattern must lie inside one policy pattern (ask the \
                     operator to widen the policy: PUT /v1/tenants/{{name}}/policy)"
                ),
            ));
        }
    }
    let grant = JobGrant {
        allowed_outbound_hosts: hosts.patterns(),
        config,
    };
    let stored = state
        .store
        .job_grant_put(tenant.id, &name, &grant)
        .await?
        .ok_or_else(|| no_job(&name))?;
    Ok(axum::Json(JobGrantBody {
        job: name,
        grant: (&stored).into(),
    }))
}
