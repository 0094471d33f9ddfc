//! The store: the one narrow seam between Sandfire and its database.
//!
//! Methods are noun-first (`run_claim`, `run_complete_many`, ...) and take one params struct
//! where they need more than an id. Every query is static SQL in `sql/`; nothing is built from
//! user strings. Every read and write that a tenant can cause is scoped by `tenant_id`, so one
//! tenant can never reach another's rows. The database clock is the only clock.

mod batches;
mod control;
pub mod notifications;
mod postgres;
mod retention;
mod runners;
mod schedules;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::config::{ResolvedOptions, RunOptions};
use crate::model::{Level, Outcome, RunState};

pub use batches::{
    Batch, BatchCancel, BatchContinuationParams, BatchCreateParams, BatchCreated, BatchDetail,
    BatchRun, BatchRunParams, BatchStore,
};
pub use control::{RunCancel, RunControlStore, RunDelete, RunRetry};
pub use postgres::PgStore;
pub use retention::{PRUNE_LOCK, RetentionStore, RunPruneParams};
pub use runners::*;
pub use schedules::*;

/// What can go wrong talking to the store, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. a tenant name that exists).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached right now; try again later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused a value (e.g. text it cannot store): the caller's input is bad.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// Anything else: a bug or a broken database.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Tenant {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyInfo {
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyCreateParams {
    pub tenant: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Job {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub version: i32,
    pub digest: String,
    pub size: i32,
    pub defaults: RunOptions,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct JobVersion {
    pub version: i32,
    pub digest: String,
    pub size: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct JobUploadParams {
    pub tenant_id: i64,
    pub name: String,
    pub digest: String,
    pub bytes: Vec<u8>,
    /// `Some` replaces the job's defaults; `None` keeps them.
    pub defaults: Option<RunOptions>,
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct JobUploaded {
    pub job: Job,
    /// False when the bytes were already the job's current version.
    pub new_version: bool,
}

#[derive(Debug, Clone)]
pub struct RunInsertParams {
    pub id: Uuid,
    pub tenant_id: i64,
    pub job_id: i64,
    pub version: i32,
    pub options: ResolvedOptions,
    pub input: Value,
    pub reason: String,
    /// When the run becomes due; `None` = now. A due time in the past (by the database clock)
    /// makes the run `enqueued` at once, a future one `scheduled`.
    pub due: Option<Due>,
    /// Wait for this run of the same tenant to end (a continuation).
    pub after: Option<After>,
}

/// When a delayed run becomes due.
#[derive(Debug, Clone, Copy)]
pub enum Due {
    /// This long after the database's now.
    In(i64),
    /// At this time.
    At(DateTime<Utc>),
}

/// What a continuation waits for.
#[derive(Debug, Clone)]
pub struct After {
    pub run: Uuid,
    /// `succeeded`, `failed` or `finished`.
    pub on: String,
    /// Start with the parent's output as input.
    pub input_from_parent: bool,
}

/// What an enqueue with an idempotency key did.
#[derive(Debug, Clone)]
pub enum Idempotent {
    /// No live key: the run was created.
    Created(Run),
    /// The same key and request within the window: the run created then.
    Existing(Run),
    /// The same key with a different request.
    Mismatch(Uuid),
}

#[derive(Debug, Clone)]
pub struct IdempotencyParams {
    pub key: String,
    /// SHA-256 of the canonical request.
    pub request_hash: Vec<u8>,
    pub window_ms: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub id: Uuid,
    pub job: String,
    pub version: i32,
    pub state: RunState,
    pub queue: String,
    pub priority: i16,
    pub input: Value,
    pub output: Option<Value>,
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
    /// The batch this run belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// For a continuation: the run or batch it waits for, and on what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_run: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_batch: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_on: Option<String>,
    /// Times the job snoozed.
    pub snoozes: i32,
    /// Set when a cancel of this run was asked for while it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// For a run fired by a schedule: its name and the fire time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub number: i32,
    pub runner_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub fuel_used: Option<i64>,
    pub peak_memory: Option<i64>,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunEvent {
    pub at: DateTime<Utc>,
    pub from: Option<RunState>,
    pub to: RunState,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub attempts: Vec<Attempt>,
    pub history: Vec<RunEvent>,
}

#[derive(Debug, Clone)]
pub struct RunListParams {
    pub tenant_id: i64,
    pub state: Option<RunState>,
    pub job: Option<String>,
    /// Only runs older than this one (the previous page's last id).
    pub before: Option<Uuid>,
    pub limit: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub id: i64,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub level: Level,
    pub message: String,
    pub fields: Value,
}

#[derive(Debug, Clone)]
pub struct LogListParams {
    pub tenant_id: i64,
    pub run_id: Uuid,
    pub attempt: Option<i32>,
    /// Only lines after this id (the previous page's last id).
    pub after: Option<i64>,
    pub limit: i64,
}

/// A log line to write, as produced by an attempt.
#[derive(Debug, Clone)]
pub struct NewLogLine {
    pub run_id: Uuid,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub level: Level,
    pub message: String,
    pub fields: Value,
}

#[derive(Debug, Clone)]
pub struct RunClaimParams {
    pub runner_id: Uuid,
    pub queue: String,
    pub limit: i64,
    pub lease_ms: i64,
}

/// A run this runner now holds, with everything needed to execute its attempt.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: Uuid,
    pub tenant_id: i64,
    pub tenant: String,
    pub job: String,
    pub version: i32,
    pub digest: String,
    pub input: Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub timeout_ms: i64,
    pub fuel: i64,
    pub memory_mb: i32,
    pub backoff_base_ms: i64,
    pub scheduled_at: DateTime<Utc>,
    pub lease_token: Uuid,
    /// Snoozes so far (bounded by the runner's `max_snoozes`).
    pub snoozes: i32,
}

/// The end of one attempt: the run's next state and the attempt's record. Written only if
/// `lease_token` still holds the run (the guarded write).
#[derive(Debug, Clone)]
pub struct Completion {
    pub run_id: Uuid,
    pub lease_token: Uuid,
    pub state: RunState,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// For `retrying` / `scheduled`: due this long after the database's now.
    pub delay_ms: Option<i64>,
    /// A snooze, a shutdown or a runner fault does not use up an attempt: the run gets one more.
    pub refund_attempt: bool,
    /// The attempt ended with a snooze (counted against `max_snoozes`).
    pub snoozed: bool,
    pub reason: String,
    pub outcome: Outcome,
    pub fuel_used: i64,
    pub peak_memory: i64,
    pub duration_ms: i64,
    pub progress: Option<i16>,
    pub progress_message: Option<String>,
}

/// A tenant's queue: settings and how many runs are in it, by state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueInfo {
    pub name: String,
    pub paused: bool,
    pub concurrency_limit: Option<i32>,
    pub counts: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Clone)]
pub struct QueuePutParams {
    pub tenant_id: i64,
    pub name: String,
    /// `None` keeps the current value.
    pub paused: Option<bool>,
    /// `None` keeps, `Some(None)` removes the limit.
    pub concurrency_limit: Option<Option<i32>>,
}

/// The database's storage seam. See the module docs for the rules every method keeps.
#[async_trait::async_trait]
pub trait Store:
    RunnerStore + BatchStore + RunControlStore + RetentionStore + ScheduleStore + Send + Sync + 'static
{
    async fn queue_list(&self, tenant_id: i64) -> StoreResult<Vec<QueueInfo>>;
    async fn queue_put(&self, params: QueuePutParams) -> StoreResult<QueueInfo>;

    /// The PostgreSQL pool, for LISTEN/NOTIFY (`None` for stores without notifications).
    fn pg_pool(&self) -> Option<sqlx::PgPool> {
        None
    }
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Cheap liveness check of the database.
    async fn ping(&self) -> StoreResult<()>;

    async fn tenant_create(&self, name: &str) -> StoreResult<Tenant>;
    async fn tenant_list(&self) -> StoreResult<Vec<Tenant>>;
    /// The enabled tenant owning an enabled key with this hash.
    async fn tenant_by_key_hash(&self, hash: &[u8]) -> StoreResult<Option<Tenant>>;
    /// Returns `None` when the tenant does not exist.
    async fn api_key_create(&self, params: ApiKeyCreateParams) -> StoreResult<Option<ApiKeyInfo>>;

    async fn job_upload(&self, params: JobUploadParams) -> StoreResult<JobUploaded>;
    async fn job_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<Job>>;
    async fn job_list(&self, tenant_id: i64) -> StoreResult<Vec<Job>>;
    async fn job_versions(&self, job_id: i64) -> StoreResult<Vec<JobVersion>>;
    async fn component_bytes(&self, tenant_id: i64, digest: &str) -> StoreResult<Option<Vec<u8>>>;

    async fn run_insert(&self, params: RunInsertParams) -> StoreResult<Run>;
    /// Inserts a run unless a live idempotency key of the tenant already names one.
    async fn run_insert_idempotent(
        &self,
        params: RunInsertParams,
        key: IdempotencyParams,
    ) -> StoreResult<Idempotent>;
    /// Inserts many runs in one statement (batches, benchmarks); returns them as inserted.
    async fn run_insert_many(&self, params: Vec<RunInsertParams>) -> StoreResult<Vec<Run>>;
    async fn run_get(&self, tenant_id: i64, id: Uuid) -> StoreResult<Option<RunDetail>>;
    async fn run_list(&self, params: RunListParams) -> StoreResult<Vec<Run>>;
    async fn log_list(&self, params: LogListParams) -> StoreResult<Option<Vec<LogLine>>>;

    /// Claims up to `limit` enqueued runs of a queue: highest priority first, then oldest;
    /// skips tenants' paused queues and keeps their concurrency limits across runners.
    async fn run_claim(&self, params: RunClaimParams) -> StoreResult<Vec<ClaimedRun>>;
    /// Writes completions and their log lines in one transaction. Returns the ids whose
    /// completion was accepted (the lease still held).
    async fn run_complete_many(
        &self,
        completions: &[Completion],
        lines: &[NewLogLine],
    ) -> StoreResult<Vec<Uuid>>;
    /// Writes log lines and progress of an attempt still running.
    async fn attempt_journal(
        &self,
        run_id: Uuid,
        lease_token: Uuid,
        progress: Option<(i16, String)>,
        lines: &[NewLogLine],
    ) -> StoreResult<()>;
    /// Extends the leases of the attempts this runner is executing (by their lease tokens);
    /// returns each extended token and whether its run was asked to cancel (a missed NOTIFY is
    /// caught here). A token not returned no longer holds its run (or its row was busy).
    async fn lease_extend(
        &self,
        lease_tokens: &[Uuid],
        lease_ms: i64,
    ) -> StoreResult<Vec<(Uuid, bool)>>;
    /// Moves due `scheduled` and `retrying` runs to `enqueued`; returns how many.
    async fn run_promote_due(&self, limit: i64) -> StoreResult<u64>;
    /// The earliest due time of a `scheduled` or `retrying` run, and the database's now.
    async fn run_next_due(&self) -> StoreResult<(Option<DateTime<Utc>>, DateTime<Utc>)>;
}
