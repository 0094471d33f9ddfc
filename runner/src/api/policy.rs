//! A tenant's policy, the admin's ceiling on what its jobs may reach:
//! `PUT /v1/tenants/{name}/policy` and `GET` the same. Authorised by the admin token.
//!
//! The ceiling bounds every job grant when the grant is written, and every request at run
//! time (as the ceiling is then): narrowing it takes effect at once.

use axum::extract::{Path, State};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{AdminAuth, Json};
use super::types::PolicyBody;
use crate::capabilities::{AllowedHosts, MAX_HOST_PATTERNS};
use crate::store::TenantPolicy;

/// The body of `PUT /v1/tenants/{name}/policy`: replaces the whole policy (a field left out
/// takes its default: no hosts, the runner's limits).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    max_requests_per_attempt: Option<i64>,
    #[serde(default)]
    max_response_bytes: Option<i64>,
}

/// Parses `allowed_outbound_hosts` of a request body into canonical patterns (duplicates
/// dropped), or the 422 that names the bad pattern.
pub(super) fn hosts_field(patterns: &[String]) -> ApiResult<AllowedHosts> {
    if patterns.len() > MAX_HOST_PATTERNS {
        return Err(ApiError::new(
            ErrorCode::TooManyPatterns,
            format!(
                "allowed_outbound_hosts: {} patterns; at most {MAX_HOST_PATTERNS} are accepted \
                 (use wildcards such as https://*.example.com)",
                patterns.len()
            ),
        ));
    }
    let hosts = AllowedHosts::parse(patterns).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidPattern,
            format!(
                "allowed_outbound_hosts: {e}; see docs/capabilities.md for the pattern grammar"
            ),
        )
    })?;
    let mut canonical = hosts.patterns();
    let mut seen = std::collections::HashSet::new();
    canonical.retain(|p| seen.insert(p.clone()));
    // Re-parse the deduplicated canonical forms (they always parse).
    AllowedHosts::parse(&canonical).map_err(|_| ApiError::internal())
}

fn no_tenant(name: &str) -> ApiError {
    ApiError::not_found(format!("no tenant named {name:?}"))
}

/// `GET /v1/tenants/{name}/policy`.
#[utoipa::path(
    get,
    path = "/v1/tenants/{name}/policy",
    tag = "admin",
    operation_id = "policy_get",
    summary = "What a tenant's jobs may be granted",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    responses(
        (status = 200, description = "the policy", body = PolicyBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<PolicyBody>> {
    let (tenant, policy) = state
        .store
        .tenant_policy_get(&name)
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    Ok(axum::Json(PolicyBody::new(&tenant, &policy)))
}

/// `PUT /v1/tenants/{name}/policy`.
#[utoipa::path(
    put,
    path = "/v1/tenants/{name}/policy",
    tag = "admin",
    operation_id = "policy_put",
    summary = "Replace a tenant's policy",
    params(
        ("name" = String, Path, description = "tenant name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"),
    ),
    request_body = PutPolicy,
    responses(
        (status = 200, description = "the policy", body = PolicyBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(name): Path<String>,
    Json(body): Json<PutPolicy>,
) -> ApiResult<axum::Json<PolicyBody>> {
    let hosts = hosts_field(&body.allowed_outbound_hosts)?;
    let limit = |field: &str, value: Option<i64>, max: i64| -> ApiResult<()> {
        match value {
            Some(v) if !(0..=max).contains(&v) => Err(ApiError::new(
                ErrorCode::InvalidOption,
                format!("{field}: {v} is outside 0..={max} (null for the runner's default)"),
            )),
            _ => Ok(()),
        }
    };
    limit(
        "max_requests_per_attempt",
        body.max_requests_per_attempt,
        i64::from(i32::MAX),
    )?;
    limit("max_response_bytes", body.max_response_bytes, i64::MAX)?;
    let policy = TenantPolicy {
        allowed_outbound_hosts: hosts.patterns(),
        max_requests_per_attempt: body.max_requests_per_attempt.map(|v| v as i32),
        max_response_bytes: body.max_response_bytes,
        updated_at: None,
    };
    let (tenant, stored) = state
        .store
        .tenant_policy_put(&name, &policy)
        .await?
        .ok_or_else(|| no_tenant(&name))?;
    Ok(axum::Json(PolicyBody::new(&tenant, &stored)))
}
