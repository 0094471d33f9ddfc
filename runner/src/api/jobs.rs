//! Jobs: upload a component under a name (`PUT /v1/jobs/{name}`), list and read them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Query, TenantAuth, bytes_rejection};
use super::{AppState, valid_job_name};
use crate::config::RunOptions;
use crate::sandbox::ComponentError;
use crate::store::{Job, JobUploadParams};

fn check_name(name: &str) -> ApiResult<()> {
    if valid_job_name(name) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_name",
            format!(
                "{name:?} is not a job name: use 1-128 letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

fn component_error(err: ComponentError) -> ApiError {
    let code = match &err {
        ComponentError::NotWasm => "not_wasm",
        ComponentError::CoreModule => "core_module",
        ComponentError::Invalid(_) => "invalid_component",
        ComponentError::DisallowedImports(_) => "disallowed_imports",
        ComponentError::WrongWorld(_) => "wrong_world",
        ComponentError::UnsupportedProposal(_) => "unsupported_proposal",
        ComponentError::TooComplex(_) => "component_too_complex",
        ComponentError::CompileTimeout(_) => "compile_timeout",
        ComponentError::CompilerBusy(_) => "compiler_busy",
    };
    ApiError::unprocessable(code, err.to_string())
}

/// An upload refused because every compile slot stayed busy: 503 with `Retry-After`.
fn compiler_busy(err: ComponentError, retry_after_secs: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "compiler_busy",
        err.to_string(),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn job_json(job: &Job) -> Value {
    serde_json::to_value(job).unwrap_or(Value::Null)
}

/// Uploads a component as the job's current version. Identical bytes change nothing; changed
/// bytes make a new version. Query parameters, when any are given, replace the job's defaults.
pub async fn upload(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
    Query(defaults): Query<RunOptions>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), Response> {
    upload_job(state, tenant, name, defaults, body)
        .await
        .map_err(|e| match e {
            UploadError::Api(e) => e.into_response(),
            UploadError::Busy(e, secs) => compiler_busy(e, secs),
        })
}

enum UploadError {
    Api(ApiError),
    Busy(ComponentError, u64),
}

impl From<ApiError> for UploadError {
    fn from(e: ApiError) -> Self {
        UploadError::Api(e)
    }
}

impl From<crate::store::StoreError> for UploadError {
    fn from(e: crate::store::StoreError) -> Self {
        UploadError::Api(e.into())
    }
}

async fn upload_job(
    state: AppState,
    tenant: crate::store::Tenant,
    name: String,
    defaults: RunOptions,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>), UploadError> {
    check_name(&name)?;
    let bytes = body.map_err(bytes_rejection)?;
    defaults
        .validate(&state.settings.limits)
        .map_err(|e| ApiError::unprocessable("invalid_option", e.to_string()))?;
    let validated = state
        .sandbox
        .validate(tenant.id, bytes.to_vec())
        .await
        .map_err(|e| match e {
            ComponentError::CompilerBusy(secs) => UploadError::Busy(e, secs),
            e => UploadError::Api(component_error(e)),
        })?;
    let uploaded = state
        .store
        .job_upload(JobUploadParams {
            tenant_id: tenant.id,
            name,
            digest: validated.digest,
            bytes: bytes.to_vec(),
            defaults: (defaults != RunOptions::default()).then_some(defaults),
        })
        .await?;
    let status = if uploaded.new_version {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut body = job_json(&uploaded.job);
    body["new_version"] = json!(uploaded.new_version);
    Ok((status, axum::Json(body)))
}

pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let job = state
        .store
        .job_get(tenant.id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job named {name:?}")))?;
    let versions = state.store.job_versions(job.id).await?;
    let mut body = job_json(&job);
    body["versions"] = json!(versions);
    Ok(axum::Json(body))
}

pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
) -> ApiResult<axum::Json<Value>> {
    let jobs = state.store.job_list(tenant.id).await?;
    Ok(axum::Json(json!({ "jobs": jobs })))
}
