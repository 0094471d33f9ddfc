//! Jobs: upload a component under a name (`PUT /v1/jobs/{name}`), list and read them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Query, TenantAuth, TenantGrant, bytes_rejection};
use super::types::{JobDetailBody, JobListBody, JobUploadedBody, VersionDeletedBody};
use super::{AppState, valid_job_name};
use crate::config::RunOptions;
use crate::sandbox::ComponentError;
use crate::store::{CompiledComponentPutParams, JobUploadParams, StoreError, VersionDelete};

fn check_name(name: &str) -> ApiResult<()> {
    if valid_job_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidName,
            format!(
                "{name:?} is not a job name: use 1-128 letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

fn component_error(err: ComponentError) -> ApiError {
    let code = match &err {
        ComponentError::NotWasm => ErrorCode::NotWasm,
        ComponentError::CoreModule => ErrorCode::CoreModule,
        ComponentError::Invalid(_) => ErrorCode::InvalidComponent,
        ComponentError::DisallowedImports(_) => ErrorCode::DisallowedImports,
        ComponentError::WrongWorld(_) => ErrorCode::WrongWorld,
        ComponentError::UnsupportedProposal(_) => ErrorCode::UnsupportedProposal,
        ComponentError::TooComplex(_) => ErrorCode::ComponentTooComplex,
        ComponentError::CompileTimeout(_) => ErrorCode::CompileTimeout,
        ComponentError::CompilerBusy(_) => ErrorCode::CompilerBusy,
        ComponentError::CompileMemory(_) => ErrorCode::CompileMemory,
        ComponentError::ProbeFailed => ErrorCode::CompileProbeFailed,
    };
    ApiError::new(code, err.to_string())
}

/// An upload refused because every compile slot stayed busy: 503 with `Retry-After`.
fn compiler_busy(err: ComponentError, retry_after_secs: u64) -> ApiError {
    ApiError::new(ErrorCode::CompilerBusy, err.to_string()).with_retry_after(Some(retry_after_secs))
}

/// Uploads a component as the job's current version. Identical bytes change nothing; changed
/// bytes make a new version. Query parameters, when any are given, replace the job's defaults.
#[utoipa::path(
    put,
    path = "/v1/jobs/{name}",
    tag = "jobs",
    operation_id = "jobs_upload",
    summary = "Upload a component as the job's current version",
    params(
        ("name" = String, Path, description = "job name: 1-128 letters, digits, `.`, `_`, `-`", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
        crate::api::openapi::JobDefaultsQuery,
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the component bytes (a WASI 0.2 component targeting the `job` world)"),
    responses(
        (status = 201, description = "a new version", body = JobUploadedBody),
        (status = 200, description = "the same bytes as the current version: nothing changed", body = JobUploadedBody),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    grant: TenantGrant,
    Path(name): Path<String>,
    Query(defaults): Query<RunOptions>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, axum::Json<JobUploadedBody>)> {
    let tenant = &grant.tenant;
    check_name(&name)?;
    let bytes = body.map_err(bytes_rejection)?;
    defaults
        .validate(&state.settings.limits)
        .map_err(|e| ApiError::new(ErrorCode::InvalidOption, e.to_string()))?;
    let validated = state
        .sandbox
        .validate(tenant.id, bytes.to_vec())
        .await
        .map_err(|e| match e {
            ComponentError::CompilerBusy(secs) => compiler_busy(e, secs),
            e => component_error(e),
        })?;
    let uploaded = state
        .store
        .job_upload(JobUploadParams {
            tenant_id: tenant.id,
            name,
            digest: validated.digest,
            bytes: bytes.to_vec(),
            defaults: (defaults != RunOptions::default()).then_some(defaults),
            max_jobs: grant.limits.max_jobs,
            max_versions: grant.limits.max_versions_per_job,
        })
        .await
        .inspect_err(|e| {
            if let StoreError::QuotaExceeded { limit, .. } = e {
                super::quota::record_hit(&state, grant.tenant.id, limit);
            }
        })?;
    // The next enqueue here reads the new job at once (elsewhere the insert sees the change).
    state.jobs.forget(tenant.id, &uploaded.job.name);
    // Keep our compiled code, so no runner compiles these bytes again (a Python or JavaScript
    // component takes tens of seconds). Best effort: without it, the first run that misses
    // the in-memory cache compiles and keeps it.
    if let Some(artifact) = validated.artifact {
        let params = CompiledComponentPutParams {
            tenant_id: tenant.id,
            digest: uploaded.job.digest.clone(),
            engine: state.sandbox.engine_hash().to_owned(),
            artifact,
        };
        if let Err(error) = state.store.compiled_component_put(params).await {
            tracing::warn!(%error, "could not keep the compiled artifact of an upload");
        }
    }
    let status = if uploaded.new_version {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(JobUploadedBody {
            job: (&uploaded.job).into(),
            new_version: uploaded.new_version,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{name}",
    tag = "jobs",
    operation_id = "jobs_get",
    summary = "A job with its versions and capabilities",
    params(
        ("name" = String, Path, description = "job name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    ),
    responses(
        (status = 200, description = "the job", body = JobDetailBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<JobDetailBody>> {
    let job = state
        .store
        .job_get(tenant.id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job named {name:?}")))?;
    let versions = state.store.job_versions(job.id).await?;
    let grant = state
        .store
        .job_grant_get(tenant.id, &name)
        .await?
        .unwrap_or_default();
    Ok(axum::Json(JobDetailBody {
        job: (&job).into(),
        versions: versions.iter().map(Into::into).collect(),
        capabilities: (&grant).into(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    operation_id = "jobs_list",
    summary = "The tenant's jobs",
    responses(
        (status = 200, description = "every job of the tenant", body = JobListBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
) -> ApiResult<axum::Json<JobListBody>> {
    let jobs = state.store.job_list(tenant.id).await?;
    Ok(axum::Json(JobListBody {
        jobs: jobs.iter().map(Into::into).collect(),
    }))
}

/// `DELETE /v1/jobs/{name}/versions/{version}`: deletes a version that is not current and that
/// no run references, with its component bytes when no other version uses them.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{name}/versions/{version}",
    tag = "jobs",
    operation_id = "jobs_delete_version",
    summary = "Delete a job version that is not current and no run references",
    params(
        ("name" = String, Path, description = "job name", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
        ("version" = i32, Path, description = "version number (1 or more)", minimum = 1),
    ),
    responses(
        (status = 200, description = "deleted", body = VersionDeletedBody),
    ),
)]
pub async fn delete_version(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionDeletedBody>> {
    check_name(&name)?;
    let number: i32 = version
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{version:?} is not a version number")))?;
    match state
        .store
        .job_version_delete(tenant.id, &name, number)
        .await?
    {
        VersionDelete::Deleted => Ok(axum::Json(VersionDeletedBody {
            job: name,
            version: number,
            deleted: true,
        })),
        VersionDelete::NotFound => Err(ApiError::not_found(format!(
            "job {name:?} has no version {number}"
        ))),
        VersionDelete::Current => Err(ApiError::conflict(format!(
            "version {number} is the current version of {name:?}: upload another version first"
        ))),
        VersionDelete::Referenced => Err(ApiError::conflict(format!(
            "runs of {name:?} still reference version {number} (a retry would need it): delete \
             those runs, or let retention delete them first"
        ))),
    }
}
