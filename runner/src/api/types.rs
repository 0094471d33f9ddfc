//! The documents of the API: every response body (and the shared parts of request bodies) as
//! a Rust type, converted from the store's rows. The OpenAPI document is derived from these
//! same types, so what the runner sends and what it says it sends cannot drift apart.
//!
//! The JSON is kept field for field as clients (the CLI, the dashboard's scripts, users'
//! code) have read it since v1; where it is odd, the oddity is noted on the field and kept.
//! These types must never reach into the database: they only convert rows.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::{RunOptions, TenantLimits};
use crate::model::{Level, Outcome, RunState};
use crate::store;

/// Any JSON value (a run's input or output, a log line's fields).
pub type AnyJson = Value;

/// Run options as given at upload (a job's defaults) or enqueue; absent fields fall back to
/// the job's defaults, then the runner's.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RunOptionsBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i16>,
}

impl From<&RunOptions> for RunOptionsBody {
    fn from(o: &RunOptions) -> Self {
        RunOptionsBody {
            max_attempts: o.max_attempts,
            timeout_ms: o.timeout_ms,
            fuel: o.fuel,
            memory_mb: o.memory_mb,
            backoff_base_ms: o.backoff_base_ms,
            queue: o.queue.clone(),
            priority: o.priority,
        }
    }
}

/// A job: its current version and its defaults.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobBody {
    pub name: String,
    pub version: i32,
    /// SHA-256 of the component bytes, hex.
    pub digest: String,
    /// Size of the component in bytes.
    pub size: i32,
    pub defaults: RunOptionsBody,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&store::Job> for JobBody {
    fn from(j: &store::Job) -> Self {
        JobBody {
            name: j.name.clone(),
            version: j.version,
            digest: j.digest.clone(),
            size: j.size,
            defaults: (&j.defaults).into(),
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// `PUT /v1/jobs/{name}`: the job, and whether the upload made a new version.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobUploadedBody {
    #[serde(flatten)]
    pub job: JobBody,
    pub new_version: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobVersionBody {
    pub version: i32,
    pub digest: String,
    pub size: i32,
    pub created_at: DateTime<Utc>,
}

impl From<&store::JobVersion> for JobVersionBody {
    fn from(v: &store::JobVersion) -> Self {
        JobVersionBody {
            version: v.version,
            digest: v.digest.clone(),
            size: v.size,
            created_at: v.created_at,
        }
    }
}

/// `GET /v1/jobs/{name}`: the job with its versions and capabilities.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDetailBody {
    #[serde(flatten)]
    pub job: JobBody,
    pub versions: Vec<JobVersionBody>,
    /// The job's grant (see `GET /v1/jobs/{name}/capabilities`).
    pub capabilities: GrantBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobListBody {
    pub jobs: Vec<JobBody>,
}

/// `DELETE /v1/jobs/{name}/versions/{version}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDeletedBody {
    pub job: String,
    pub version: i32,
    /// Always `true`.
    pub deleted: bool,
}

/// A run, as lists and `GET /v1/runs/{id}` show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunBody {
    pub id: Uuid,
    /// The job's name.
    pub job: String,
    /// The job version the run executes.
    pub version: i32,
    pub state: RunState,
    pub queue: String,
    pub priority: i16,
    /// Any JSON; `null` in lists when `input_truncated` is set.
    pub input: AnyJson,
    /// Any JSON, or `null` (none yet, or truncated in lists).
    #[schema(value_type = Value)]
    pub output: Option<AnyJson>,
    pub error: Option<String>,
    /// Attempts started so far.
    pub attempt: i32,
    pub max_attempts: i32,
    pub timeout_ms: i64,
    pub fuel: i64,
    pub memory_mb: i32,
    pub backoff_base_ms: i64,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub progress: Option<i16>,
    pub progress_message: Option<String>,
    /// The batch this run belongs to (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// For a continuation: the run or batch it waits for, and on what (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_run: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_batch: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_on: Option<String>,
    /// Times the job snoozed.
    pub snoozes: i32,
    /// Set when a cancel was asked for while the run ran (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// For a run fired by a schedule: its name and fire time (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire_at: Option<DateTime<Utc>>,
    /// In lists only, and only when set: the input is larger than lists carry, so `input` is
    /// `null` (read the run for it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub input_truncated: bool,
    /// In lists only, and only when set: as `input_truncated`, for the output.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub output_truncated: bool,
}

impl From<&store::Run> for RunBody {
    fn from(r: &store::Run) -> Self {
        RunBody {
            id: r.id,
            job: r.job.clone(),
            version: r.version,
            state: r.state,
            queue: r.queue.clone(),
            priority: r.priority,
            input: r.input.clone(),
            output: r.output.clone(),
            error: r.error.clone(),
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            timeout_ms: r.timeout_ms,
            fuel: r.fuel,
            memory_mb: r.memory_mb,
            backoff_base_ms: r.backoff_base_ms,
            scheduled_at: r.scheduled_at,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            progress: r.progress,
            progress_message: r.progress_message.clone(),
            batch_id: r.batch_id,
            after_run: r.after_run,
            after_batch: r.after_batch,
            after_on: r.after_on.clone(),
            snoozes: r.snoozes,
            cancel_requested_at: r.cancel_requested_at,
            schedule: r.schedule.clone(),
            fire_at: r.fire_at,
            input_truncated: r.input_truncated,
            output_truncated: r.output_truncated,
        }
    }
}

/// One attempt of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptBody {
    pub number: i32,
    pub runner_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `null` while the attempt runs.
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub fuel_used: Option<i64>,
    /// Bytes.
    pub peak_memory: Option<i64>,
    pub duration_ms: Option<i64>,
    /// `{"requests", "bytes_out", "bytes_in", "denied"}`; absent if the attempt made no
    /// outbound request.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outbound: Option<Value>,
}

impl From<&store::Attempt> for AttemptBody {
    fn from(a: &store::Attempt) -> Self {
        AttemptBody {
            number: a.number,
            runner_id: a.runner_id,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome,
            error: a.error.clone(),
            fuel_used: a.fuel_used,
            peak_memory: a.peak_memory,
            duration_ms: a.duration_ms,
            outbound: a.outbound.clone(),
        }
    }
}

/// One transition of a run's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunEventBody {
    pub at: DateTime<Utc>,
    /// `null` for the run's creation.
    pub from: Option<RunState>,
    pub to: RunState,
    pub reason: Option<String>,
}

impl From<&store::RunEvent> for RunEventBody {
    fn from(e: &store::RunEvent) -> Self {
        RunEventBody {
            at: e.at,
            from: e.from,
            to: e.to,
            reason: e.reason.clone(),
        }
    }
}

/// `GET /v1/runs/{id}`: the run with its attempts and history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetailBody {
    #[serde(flatten)]
    pub run: RunBody,
    pub attempts: Vec<AttemptBody>,
    pub history: Vec<RunEventBody>,
}

impl From<&store::RunDetail> for RunDetailBody {
    fn from(d: &store::RunDetail) -> Self {
        RunDetailBody {
            run: (&d.run).into(),
            attempts: d.attempts.iter().map(Into::into).collect(),
            history: d.history.iter().map(Into::into).collect(),
        }
    }
}

/// `POST /v1/runs/{id}/cancel`: the run after the cancel.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunCancelledBody {
    #[serde(flatten)]
    pub run: RunDetailBody,
    /// True (with status 202) when the run was running and its runner was asked to stop it.
    pub cancel_requested: bool,
}

/// `GET /v1/runs`: a page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunListBody {
    pub runs: Vec<RunBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<Uuid>,
    /// The page stopped at the response's byte budget before `limit`.
    pub truncated: bool,
}

/// `POST /v1/runs`: the ids of the runs created, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkEnqueuedBody {
    pub count: usize,
    pub ids: Vec<Uuid>,
}

/// One log line of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogLineBody {
    /// Pass the last one as `after` for the next page.
    pub id: i64,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub level: Level,
    pub message: String,
    pub fields: AnyJson,
}

impl From<&store::LogLine> for LogLineBody {
    fn from(l: &store::LogLine) -> Self {
        LogLineBody {
            id: l.id,
            attempt: l.attempt,
            at: l.at,
            level: l.level,
            message: l.message.clone(),
            fields: l.fields.clone(),
        }
    }
}

/// `GET /v1/runs/{id}/logs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPageBody {
    pub lines: Vec<LogLineBody>,
    /// Pass as `after` for the next page; `null` when no more lines are known.
    pub next_after: Option<i64>,
    pub truncated: bool,
}

/// A tenant's queue: its settings and its runs by state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueBody {
    pub name: String,
    pub paused: bool,
    /// `null`: no limit.
    pub concurrency_limit: Option<i32>,
    /// Runs in the queue by state (states with none may be absent).
    pub counts: BTreeMap<String, i64>,
}

impl From<&store::QueueInfo> for QueueBody {
    fn from(q: &store::QueueInfo) -> Self {
        QueueBody {
            name: q.name.clone(),
            paused: q.paused,
            concurrency_limit: q.concurrency_limit,
            counts: q.counts.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueListBody {
    pub queues: Vec<QueueBody>,
}

/// A tenant, as admin routes show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantBody {
    pub name: String,
    /// Its share of claims relative to other tenants with ready work (1-100).
    pub weight: i32,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<&store::Tenant> for TenantBody {
    fn from(t: &store::Tenant) -> Self {
        TenantBody {
            name: t.name.clone(),
            weight: t.weight,
            created_at: t.created_at,
            disabled_at: t.disabled_at,
        }
    }
}

/// `POST /v1/tenants`: the tenant and its first key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreatedBody {
    pub tenant: TenantBody,
    pub api_key: String,
    pub api_key_prefix: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantListBody {
    pub tenants: Vec<TenantBody>,
}

/// `POST /v1/tenants/{name}/disable` and `/enable`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOneBody {
    pub tenant: TenantBody,
}

/// `PUT /v1/tenants/{name}/weight`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantWeightBody {
    pub tenant: TenantBody,
    pub weight: i32,
}

/// What a key may do: `full` (read and change) or `read` (read only).
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyRoleBody {
    Full,
    Read,
}

impl From<store::KeyRole> for KeyRoleBody {
    fn from(r: store::KeyRole) -> Self {
        match r {
            store::KeyRole::Full => KeyRoleBody::Full,
            store::KeyRole::Read => KeyRoleBody::Read,
        }
    }
}

impl From<KeyRoleBody> for store::KeyRole {
    fn from(r: KeyRoleBody) -> Self {
        match r {
            KeyRoleBody::Full => store::KeyRole::Full,
            KeyRoleBody::Read => store::KeyRole::Read,
        }
    }
}

/// An API key: never its secret (it is not stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyBody {
    pub prefix: String,
    pub role: KeyRoleBody,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<&store::ApiKeyInfo> for ApiKeyBody {
    fn from(k: &store::ApiKeyInfo) -> Self {
        ApiKeyBody {
            prefix: k.prefix.clone(),
            role: k.role.into(),
            created_at: k.created_at,
            disabled_at: k.disabled_at,
        }
    }
}

/// `POST /v1/tenants/{name}/keys`: the new key's secret, shown this once, and its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreatedBody {
    pub api_key: String,
    pub key: ApiKeyBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyListBody {
    pub keys: Vec<ApiKeyBody>,
}

/// `DELETE /v1/tenants/{name}/keys/{prefix}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyDisabledBody {
    pub prefix: String,
    /// How many keys were disabled (1 or more: prefixes are short).
    pub disabled: u64,
}

/// A tenant's quotas; `null` is "no limit" in effective limits and "the runner's default" in a
/// tenant's own.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct TenantLimitsBody {
    pub max_active_runs: Option<i64>,
    pub max_running: Option<i32>,
    pub max_schedules: Option<i32>,
    pub min_schedule_interval_ms: Option<i64>,
    pub enqueue_per_s: Option<i32>,
    pub max_jobs: Option<i32>,
    pub max_versions_per_job: Option<i32>,
    pub max_log_bytes_per_attempt: Option<i64>,
}

impl From<&TenantLimits> for TenantLimitsBody {
    fn from(l: &TenantLimits) -> Self {
        TenantLimitsBody {
            max_active_runs: l.max_active_runs,
            max_running: l.max_running,
            max_schedules: l.max_schedules,
            min_schedule_interval_ms: l.min_schedule_interval_ms,
            enqueue_per_s: l.enqueue_per_s,
            max_jobs: l.max_jobs,
            max_versions_per_job: l.max_versions_per_job,
            max_log_bytes_per_attempt: l.max_log_bytes_per_attempt,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantUsageBody {
    pub active_runs: i64,
    pub running: i64,
    pub schedules: i64,
    pub jobs: i64,
    /// Most versions any one of its jobs has.
    pub max_versions_of_a_job: i64,
}

impl From<&store::TenantUsage> for TenantUsageBody {
    fn from(u: &store::TenantUsage) -> Self {
        TenantUsageBody {
            active_runs: u.active_runs,
            running: u.running,
            schedules: u.schedules,
            jobs: u.jobs,
            max_versions_of_a_job: u.max_versions_of_a_job,
        }
    }
}

/// How often one limit refused the tenant on one day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitHitsBody {
    pub day: NaiveDate,
    pub limit: String,
    pub hits: i64,
}

impl From<&store::LimitHits> for LimitHitsBody {
    fn from(h: &store::LimitHits) -> Self {
        LimitHitsBody {
            day: h.day,
            limit: h.limit.clone(),
            hits: h.hits,
        }
    }
}

/// `GET` and `PUT /v1/tenants/{name}/limits`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantLimitsViewBody {
    /// The tenant's name. (Odd but kept: a name here, an object in the other tenant routes.)
    pub tenant: String,
    /// What applies: the tenant's own values, else the runner's defaults.
    pub limits: TenantLimitsBody,
    pub own: TenantLimitsBody,
    pub runner_defaults: TenantLimitsBody,
    pub usage: TenantUsageBody,
    /// The last seven days, by day and limit.
    pub limit_hits: Vec<LimitHitsBody>,
}

/// A batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchBody {
    pub id: Uuid,
    /// Members created with the batch (deleted members still count).
    pub total: i32,
    pub created_at: DateTime<Utc>,
    /// When every member had reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<&store::Batch> for BatchBody {
    fn from(b: &store::Batch) -> Self {
        BatchBody {
            id: b.id,
            total: b.total,
            created_at: b.created_at,
            finished_at: b.finished_at,
            cancelled_at: b.cancelled_at,
        }
    }
}

/// `POST /v1/batches`: the batch and the ids of its runs, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchCreatedBody {
    #[serde(flatten)]
    pub batch: BatchBody,
    pub runs: Vec<Uuid>,
    pub then: Vec<Uuid>,
}

/// A run of a batch, as the batch view lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchRunBody {
    pub id: Uuid,
    pub job: String,
    pub state: RunState,
    /// For continuations: the condition they wait for (absent for members).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

impl From<&store::BatchRun> for BatchRunBody {
    fn from(r: &store::BatchRun) -> Self {
        BatchRunBody {
            id: r.id,
            job: r.job.clone(),
            state: r.state,
            on: r.on.clone(),
        }
    }
}

/// `GET /v1/batches/{id}`: the batch with its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchDetailBody {
    #[serde(flatten)]
    pub batch: BatchBody,
    /// Members by state; every state is present (zero when none).
    pub counts: BTreeMap<String, i64>,
    /// Members deleted since (by the API or retention); they were terminal.
    pub deleted: i64,
    /// Terminal (or deleted) members as a percentage of `total`, rounded down.
    pub progress: i64,
    pub continuations: Vec<BatchRunBody>,
    /// The members, with `?runs=true` only (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<BatchRunBody>>,
}

impl From<&store::BatchDetail> for BatchDetailBody {
    fn from(d: &store::BatchDetail) -> Self {
        BatchDetailBody {
            batch: (&d.batch).into(),
            counts: d
                .counts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            deleted: d.deleted,
            progress: d.progress,
            continuations: d.continuations.iter().map(Into::into).collect(),
            runs: d.runs.as_ref().map(|r| r.iter().map(Into::into).collect()),
        }
    }
}

/// An attempt a runner is executing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InFlightAttemptBody {
    pub run_id: Uuid,
    pub job: String,
    pub attempt: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl From<&store::InFlightAttempt> for InFlightAttemptBody {
    fn from(a: &store::InFlightAttempt) -> Self {
        InFlightAttemptBody {
            run_id: a.run_id,
            job: a.job.clone(),
            attempt: a.attempt,
            started_at: a.started_at,
            lease_expires_at: a.lease_expires_at,
        }
    }
}

/// A live runner. With the admin token every field and every tenant's attempts; with a tenant
/// key only `id`, `queues`, `slots`, `heartbeat_at` and the tenant's own attempts (the other
/// fields are absent).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunnerBody {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub queues: Vec<String>,
    pub slots: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    pub heartbeat_at: DateTime<Utc>,
    /// Whether this runner leads the maintenance services (admin only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
    pub in_flight: Vec<InFlightAttemptBody>,
}

impl RunnerBody {
    /// The full record (admin).
    pub fn full(r: &store::RunnerInfo) -> Self {
        RunnerBody {
            host: Some(r.host.clone()),
            version: Some(r.version.clone()),
            started_at: Some(r.started_at),
            leader: Some(r.leader),
            ..RunnerBody::shared(r)
        }
    }

    /// What a tenant sees: nothing about the operator's machines.
    pub fn shared(r: &store::RunnerInfo) -> Self {
        RunnerBody {
            id: r.id,
            host: None,
            version: None,
            queues: r.queues.clone(),
            slots: r.slots,
            started_at: None,
            heartbeat_at: r.heartbeat_at,
            leader: None,
            in_flight: r.in_flight.iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunnerListBody {
    pub runners: Vec<RunnerBody>,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`, or `degraded` (with status 503) when the database is unreachable.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
}

/// A job's grant of capabilities.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantBody {
    /// Host patterns the job may reach (inside its tenant's policy).
    pub allowed_outbound_hosts: Vec<String>,
    /// Config entries the job may read.
    pub config: Vec<String>,
}

impl From<&store::JobGrant> for GrantBody {
    fn from(g: &store::JobGrant) -> Self {
        GrantBody {
            allowed_outbound_hosts: g.allowed_outbound_hosts.clone(),
            config: g.config.clone(),
        }
    }
}

/// `GET` and `PUT /v1/jobs/{name}/capabilities`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobGrantBody {
    pub job: String,
    #[serde(flatten)]
    pub grant: GrantBody,
}

/// `GET` and `PUT /v1/tenants/{name}/policy`: what the tenant's jobs may be granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyBody {
    pub tenant: String,
    pub allowed_outbound_hosts: Vec<String>,
    /// `null`: the runner's default.
    pub max_requests_per_attempt: Option<i32>,
    /// `null`: the runner's default.
    pub max_response_bytes: Option<i64>,
    /// `null` until the policy is first set.
    pub updated_at: Option<DateTime<Utc>>,
}

impl PolicyBody {
    pub fn new(tenant: &store::Tenant, p: &store::TenantPolicy) -> Self {
        PolicyBody {
            tenant: tenant.name.clone(),
            allowed_outbound_hosts: p.allowed_outbound_hosts.clone(),
            max_requests_per_attempt: p.max_requests_per_attempt,
            max_response_bytes: p.max_response_bytes,
            updated_at: p.updated_at,
        }
    }
}

/// A config entry: `value` only for a non-secret entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigEntryBody {
    pub name: String,
    pub secret: bool,
    /// The id of the key that sealed the value.
    pub key_id: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Non-secret entries only (absent for secrets); `null` when it does not decrypt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Option<String>>,
    /// Why the value does not decrypt (absent when it does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigListBody {
    pub config: Vec<ConfigEntryBody>,
}

/// `POST /v1/admin/config/reencrypt`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReencryptedBody {
    pub active_key_id: i32,
    pub reencrypted: u64,
    /// Entries under a key this runner does not hold (left as they are).
    pub failed: u64,
    pub failed_key_ids: Vec<i32>,
}

/// `POST /v1/batches/{id}/cancel`: the batch after the cancel.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchCancelledBody {
    #[serde(flatten)]
    pub batch: BatchDetailBody,
    /// Runs cancelled at once.
    pub cancelled: u64,
    /// Running runs asked to stop (status 202 when any).
    pub cancel_requested: u64,
}

/// A schedule's misfire policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct MisfireBody {
    /// `skip`, `fire_once` or `fire_all`.
    pub policy: String,
    pub grace_ms: u64,
    /// Only for `fire_all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// A coming fire time, in UTC and in the schedule's time zone (both RFC 3339, seconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct FireTimeBody {
    pub utc: String,
    pub local: String,
}

/// A run a schedule created.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleRunBody {
    pub id: Uuid,
    pub state: RunState,
    /// `null` for a run created by a trigger.
    pub fire_at: Option<DateTime<Utc>>,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&store::ScheduleRun> for ScheduleRunBody {
    fn from(r: &store::ScheduleRun) -> Self {
        ScheduleRunBody {
            id: r.id,
            state: r.state,
            fire_at: r.fire_at,
            scheduled_at: r.scheduled_at,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// A fire time that created no run, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkippedFireBody {
    pub fire_at: DateTime<Utc>,
    pub reason: String,
    pub recorded_at: DateTime<Utc>,
}

impl From<&store::SkippedFire> for SkippedFireBody {
    fn from(s: &store::SkippedFire) -> Self {
        SkippedFireBody {
            fire_at: s.fire_at,
            reason: s.reason.clone(),
            recorded_at: s.recorded_at,
        }
    }
}

/// A schedule with its next fire times and latest runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleBody {
    pub name: String,
    pub job: String,
    pub cron: String,
    pub timezone: String,
    pub input: AnyJson,
    pub misfire: MisfireBody,
    /// `allow` or `skip`.
    pub overlap: String,
    pub paused: bool,
    /// The schedule's own run options, at the top level (only those set).
    #[serde(flatten)]
    pub options: RunOptionsBody,
    /// RFC 3339 in seconds (odd but kept: other times carry fractions); `null` while paused
    /// or when it never fires again.
    pub next_fire_at: Option<String>,
    pub next_fire_times: Vec<FireTimeBody>,
    pub last_runs: Vec<ScheduleRunBody>,
    /// One schedule only (absent in the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_fires: Option<Vec<SkippedFireBody>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleListBody {
    pub schedules: Vec<ScheduleBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
