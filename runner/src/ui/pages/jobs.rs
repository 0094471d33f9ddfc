//! `/ui/jobs`: the jobs with their current version; `/ui/jobs/{name}`: a job's versions (digest,
//! size, upload date) with, per version, the outcome mix and p50/p95 of duration, fuel and peak
//! memory over the attempts of the job's newest runs (bounded), and a form that enqueues a run
//! with a JSON input through the same path as `POST /v1/jobs/{name}/runs` (quotas included).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Layout, tenant_for};
use crate::api::AppState;
use crate::api::extract::TenantGrant;
use crate::store::Tenant;
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::{Actor, Viewer};
use crate::ui::view;

/// Jobs per page of the list.
pub const PAGE: i64 = 50;
/// How many of a job's newest runs the per-version statistics look at.
pub const STATS_WINDOW: i64 = 1_000;
/// Largest JSON input the form takes (the API's body limit applies there as well).
const MAX_INPUT: usize = 256 * 1024;

pub struct JobRowView {
    pub href: String,
    pub tenant: String,
    pub name: String,
    pub version: i32,
    pub digest: String,
    pub size: String,
    pub uploaded: String,
    pub uploaded_dt: String,
    pub versions: i64,
}

#[derive(Template)]
#[template(path = "ui/jobs.html")]
struct JobsPage {
    layout: Layout,
    admin: bool,
    tenant_filter: String,
    jobs: Vec<JobRowView>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    tenant: Option<String>,
    after_tenant: Option<String>,
    after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<JobsQuery>,
) -> UiResult<Html<String>> {
    let (scope, tenant_filter) = super::overview::scope(&state, &viewer, &q.tenant).await?;
    let after = view::given(&q.after).map(|job| {
        let tenant = view::given(&q.after_tenant)
            .or_else(|| viewer.tenant.as_ref().map(|t| t.name.clone()))
            .unwrap_or_default();
        (tenant, job)
    });
    let rows = state.store.ui_job_list(scope, after, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    let jobs: Vec<JobRowView> = rows
        .iter()
        .take(PAGE as usize)
        .map(|j| JobRowView {
            href: job_href(&viewer, &j.tenant, &j.name),
            tenant: j.tenant.clone(),
            name: j.name.clone(),
            version: j.version,
            digest: short_digest(&j.digest),
            size: view::bytes(i64::from(j.size)),
            uploaded: view::time(j.uploaded_at),
            uploaded_dt: view::datetime(j.uploaded_at),
            versions: j.versions,
        })
        .collect();
    let next = more.then(|| {
        let last = jobs.last().expect("more than a page");
        format!(
            "/ui/jobs{}",
            view::query(&[
                ("tenant", Some(tenant_filter.clone())),
                ("after_tenant", Some(last.tenant.clone())),
                ("after", Some(last.name.clone())),
            ])
        )
    });
    render(&JobsPage {
        layout: Layout::new(&viewer, "jobs"),
        admin: viewer.is_admin(),
        tenant_filter,
        jobs,
        next,
    })
}

fn short_digest(d: &str) -> String {
    format!("sha256:{}…", &d[..d.len().min(12)])
}

fn job_href(viewer: &Viewer, tenant: &str, name: &str) -> String {
    let q = if viewer.is_admin() {
        view::query(&[("tenant", Some(tenant.to_string()))])
    } else {
        String::new()
    };
    format!("/ui/jobs/{}{q}", view::url_encode(name))
}

pub struct VersionView {
    pub version: i32,
    pub current: bool,
    pub digest: String,
    pub size: String,
    pub uploaded: String,
    pub uploaded_dt: String,
    pub runs_href: String,
    pub attempts: i64,
    /// (outcome, count) for the outcomes that occurred.
    pub mix: Vec<(&'static str, String)>,
    pub duration: String,
    pub fuel: String,
    pub memory: String,
}

#[derive(Template)]
#[template(path = "ui/job.html")]
struct JobPage {
    layout: Layout,
    admin: bool,
    can_act: bool,
    tenant: String,
    name: String,
    action: String,
    current: i32,
    versions: Vec<VersionView>,
    window: String,
    input: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct JobQuery {
    tenant: Option<String>,
}

fn no_job(name: &str) -> UiError {
    UiError::not_found(format!("No job named {name:?}."))
}

async fn job_page(
    state: &AppState,
    viewer: &Viewer,
    tenant: &Tenant,
    name: &str,
    input: String,
    error: Option<String>,
) -> UiResult<Html<String>> {
    let store = &state.store;
    let job = store
        .job_get(tenant.id, name)
        .await?
        .ok_or_else(|| no_job(name))?;
    let versions = store.job_versions(job.id).await?;
    let stats = store.ui_job_stats(tenant.id, job.id, STATS_WINDOW).await?;
    let pair = |p: (Option<i64>, Option<i64>), f: fn(i64) -> String| match p {
        (Some(a), Some(b)) => format!("{} / {}", f(a), f(b)),
        _ => "–".to_string(),
    };
    let tenant_q = if viewer.is_admin() {
        Some(tenant.name.clone())
    } else {
        None
    };
    let versions = versions
        .iter()
        .rev()
        .map(|v| {
            let s = stats.iter().find(|s| s.version == v.version);
            VersionView {
                version: v.version,
                current: v.version == job.version,
                digest: short_digest(&v.digest),
                size: view::bytes(i64::from(v.size)),
                uploaded: view::time(v.created_at),
                uploaded_dt: view::datetime(v.created_at),
                runs_href: format!(
                    "/ui/runs{}",
                    view::query(&[
                        ("job", Some(job.name.clone())),
                        ("version", Some(v.version.to_string())),
                        ("tenant", tenant_q.clone()),
                    ])
                ),
                attempts: s.map_or(0, |s| s.attempts),
                mix: s
                    .map(|s| {
                        view::OUTCOMES
                            .iter()
                            .zip(s.outcomes)
                            .filter(|(_, n)| *n > 0)
                            .map(|(o, n)| (o.as_str(), view::count(n)))
                            .collect()
                    })
                    .unwrap_or_default(),
                duration: s.map_or("–".into(), |s| pair(s.duration_ms, view::duration_ms)),
                fuel: s.map_or("–".into(), |s| pair(s.fuel, view::count)),
                memory: s.map_or("–".into(), |s| pair(s.memory, view::bytes)),
            }
        })
        .collect();
    render(&JobPage {
        layout: Layout::new(viewer, "jobs"),
        admin: viewer.is_admin(),
        can_act: viewer.can_act(),
        tenant: tenant.name.clone(),
        action: format!(
            "/ui/jobs/{}/runs{}",
            view::url_encode(&job.name),
            view::query(&[("tenant", tenant_q)])
        ),
        name: job.name,
        current: job.version,
        versions,
        window: view::count(STATS_WINDOW),
        input,
        error,
    })
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<JobQuery>,
) -> UiResult<Html<String>> {
    let tenant = tenant_for(&state, &viewer, q.tenant).await?;
    job_page(&state, &viewer, &tenant, &name, "{}".to_string(), None).await
}

/// `POST /ui/jobs/{name}/runs` (form field `input`, JSON): enqueues a run like the API and
/// redirects (303) to it; a bad input or a refusal (quota, options) shows the form again with
/// the reason and the text as typed.
pub async fn enqueue(
    State(state): State<AppState>,
    Actor(viewer): Actor,
    Path(name): Path<String>,
    Query(q): Query<JobQuery>,
    body: Bytes,
) -> UiResult<Response> {
    let tenant = tenant_for(&state, &viewer, q.tenant).await?;
    if tenant.disabled_at.is_some() {
        return Err(UiError::forbidden(format!(
            "Tenant {} is disabled: it cannot enqueue runs.",
            tenant.name
        )));
    }
    let text = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "input")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let again = |status: StatusCode, message: String| {
        let state = state.clone();
        let viewer = viewer.clone();
        let tenant = tenant.clone();
        let name = name.clone();
        let text = text.clone();
        async move {
            let page = job_page(&state, &viewer, &tenant, &name, text, Some(message)).await?;
            Ok::<Response, UiError>((status, page).into_response())
        }
    };
    if text.len() > MAX_INPUT {
        return again(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The input is larger than {} bytes.", MAX_INPUT),
        )
        .await;
    }
    let input: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                return again(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("The input is not JSON: {e}."),
                )
                .await;
            }
        }
    };
    let request = serde_json::from_value(json!({ "input": input }))
        .map_err(|_| UiError::bad_request("the input could not be read"))?;
    let limits = state.store.tenant_limits_of(tenant.id).await?;
    let grant = TenantGrant {
        limits: limits.or(&state.settings.quotas),
        tenant: tenant.clone(),
    };
    let reason = format!("enqueued {}", viewer.actor());
    match crate::api::runs::enqueue_run(&state, &grant, &name, request, reason).await {
        Ok((_, run)) => {
            tracing::info!(run = %run.id, job = %name, "dashboard enqueue");
            Ok(Redirect::to(&format!("/ui/runs/{}", run.id)).into_response())
        }
        Err(e) if e.status() == StatusCode::NOT_FOUND => Err(no_job(&name)),
        Err(e) if e.status().is_client_error() => again(e.status(), e.message().to_owned()).await,
        Err(_) => Err(UiError::internal()),
    }
}
