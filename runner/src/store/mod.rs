//! The store: the one narrow seam between Sandfire and its database.
//!
//! Methods are noun-first (`run_claim`, `run_complete_many`, ...) and take one params struct
//! where they need more than an id. Every query is static SQL in `sql/`; nothing is built from
//! user strings. Every read and write that a tenant can cause is scoped by `tenant_id`, so one
//! tenant can never reach another's rows. The database clock is the only clock.

mod batches;
mod capabilities;
mod control;
mod group_commit;
mod history;
mod metrics;
pub mod notifications;
mod postgres;
mod retention;
mod runners;
mod schedules;
mod stats;
mod tenancy;
mod ui;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::config::{ResolvedOptions, RunOptions};
use crate::model::{Level, Outcome, RunState};

pub use batches::{
    Batch, BatchCancel, BatchContinuationParams, BatchCreateParams, BatchCreated, BatchDetail,
    BatchRun, BatchRunParams, BatchStore,
};
pub use capabilities::{
    AttemptGrantRows, CapabilityStore, ConfigEntry, ConfigPut, ConfigPutParams, ConfigReseal,
    ConfigSealedRow, JobGrant, TenantPolicy,
};
pub use control::{RunCancel, RunControlStore, RunDelete, RunRetry, VIA_API};
pub use group_commit::GroupCommit;
pub use metrics::{MetricsStore, QueueFigures};
pub use postgres::{PgStore, pool_options};
pub use retention::{PRUNE_LOCK, RetentionStore, RunPruneParams, RunsPruned};
pub use runners::*;
pub use schedules::*;
pub use stats::*;
pub use tenancy::*;
pub use ui::*;

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
    /// A tenant quota refused the write; nothing was written.
    #[error("quota {limit} ({value}) exceeded")]
    QuotaExceeded { limit: &'static str, value: i64 },
    /// The job changed since the run's parameters were read from it (see
    /// [`RunInsertParams::job_row_version`]); nothing was written: read the job again.
    #[error("the job changed while the run was being enqueued")]
    JobChanged,
    /// Anything else: a bug or a broken database.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub version: i32,
    /// The version of the job's row as read (its `xmin`): any change to the job (a new
    /// version, new defaults, new grants) changes it. An insert given it refuses the run if
    /// the row changed since ([`StoreError::JobChanged`]).
    pub row_version: i64,
    pub digest: String,
    pub size: i32,
    pub defaults: RunOptions,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
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
    /// Quotas: the most jobs the tenant may have, and versions one job may have.
    pub max_jobs: Option<i32>,
    pub max_versions: Option<i32>,
}

/// A compiled artifact to keep (`Store::compiled_component_put`).
#[derive(Clone)]
pub struct CompiledComponentPutParams {
    pub tenant_id: i64,
    /// The component's digest (the component must exist).
    pub digest: String,
    /// `Sandbox::engine_hash` of the engine that produced it.
    pub engine: String,
    /// Produced by the runner's own engine, never by a tenant.
    pub artifact: Vec<u8>,
}

impl std::fmt::Debug for CompiledComponentPutParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledComponentPutParams")
            .field("tenant_id", &self.tenant_id)
            .field("digest", &self.digest)
            .field("engine", &self.engine)
            .field("artifact_bytes", &self.artifact.len())
            .finish()
    }
}

/// What deleting a job version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionDelete {
    /// No such job, or no such version of it.
    NotFound,
    Deleted,
    /// The job's current version is never deleted (upload another first).
    Current,
    /// Runs reference it (they keep their version for retries); retention deletes those runs
    /// in time.
    Referenced,
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
    /// The job's [`Job::row_version`] these parameters were built from: the insert writes
    /// the run only if the job's row is unchanged since, else answers
    /// [`StoreError::JobChanged`]. `None`: not checked (the caller read the job in the same
    /// transaction, or holds it still).
    pub job_row_version: Option<i64>,
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
    /// The same key and request, but the run it named was deleted; the key stays reserved
    /// until it expires.
    Deleted(Uuid, DateTime<Utc>),
}

#[derive(Debug, Clone)]
pub struct IdempotencyParams {
    pub key: String,
    /// SHA-256 of the canonical request.
    pub request_hash: Vec<u8>,
    pub window_ms: i64,
}

#[derive(Debug, Clone)]
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
    pub batch_id: Option<Uuid>,
    /// For a continuation: the run or batch it waits for, and on what.
    pub after_run: Option<Uuid>,
    pub after_batch: Option<Uuid>,
    pub after_on: Option<String>,
    /// Times the job snoozed.
    pub snoozes: i32,
    /// Set when a cancel of this run was asked for while it ran.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// For a run fired by a schedule: its name and the fire time.
    pub schedule: Option<String>,
    pub fire_at: Option<DateTime<Utc>>,
    /// In lists only: the input is larger than lists carry, so `input` is `null` here (read the
    /// run for it).
    pub input_truncated: bool,
    /// In lists only: as `input_truncated`, for the output.
    pub output_truncated: bool,
}

#[derive(Debug, Clone)]
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
    /// `{"requests", "bytes_out", "bytes_in", "denied"}`, if the attempt made a request.
    pub outbound: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct RunEvent {
    pub at: DateTime<Utc>,
    pub from: Option<RunState>,
    pub to: RunState,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunDetail {
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
    /// Inputs and outputs larger than this (as JSON text) are left out (`*_truncated`), so the
    /// database never ships them for a list.
    pub value_bytes: i64,
}

#[derive(Debug, Clone)]
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
    /// The page stops once its lines' text (message plus fields) passes this many bytes; at
    /// least one line is returned.
    pub budget_bytes: i64,
}

/// A page of log lines.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// More lines may follow the last one (the page stopped at its limit or byte budget).
    pub more: bool,
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
    /// Tenants left out of this claim (the runner already holds runs of theirs).
    pub exclude_tenants: Vec<i64>,
    /// The round-robin cursor: tenants with a larger id are served first.
    pub after_tenant: i64,
    /// `max_running` of tenants without their own (the runner's quota default).
    pub default_max_running: Option<i32>,
}

/// A run this runner now holds, with everything needed to execute its attempt.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: Uuid,
    pub tenant_id: i64,
    pub job_id: i64,
    pub version: i32,
    /// The input as JSON text, exactly as stored (handed to the job without re-encoding).
    pub input: String,
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
    /// Attempts refunded so far because the runner failed them (bounded by the worker's
    /// `MAX_RUNNER_FAULT_REFUNDS`).
    pub runner_faults: i32,
    pub priority: i16,
    /// The tenant's own `max_log_bytes_per_attempt`, read with the claim (`None`: the
    /// runner's default applies).
    pub log_budget: Option<i64>,
    /// The queue it was claimed from (for the runner's metrics).
    pub queue: String,
}

/// What a job version runs as: its tenant's and job's names and its component. Immutable, so
/// runners cache it by (job id, version).
#[derive(Debug, Clone)]
pub struct JobVersionRef {
    pub tenant: String,
    pub job: String,
    pub digest: String,
}

/// Where an attempt leads the run: the closed set of transitions a completion can make. Each
/// maps to exactly one next state; `Completion`'s constructors are the only way to build one.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The job returned its output: `succeeded`.
    Succeed { output: Value },
    /// The attempt failed and attempts remain: `retrying`, due after the delay.
    Retry { delay_ms: i64 },
    /// No attempts left, or not retryable: `failed`.
    Fail,
    /// The job asked to run again later: `scheduled`, and the attempt does not count.
    Snooze { delay_ms: i64 },
    /// The runner, not the job, failed (e.g. the component could not be loaded): `retrying`,
    /// and the attempt does not count.
    RunnerFault { delay_ms: i64 },
    /// Cancelled while it ran: `cancelled`.
    Cancel,
    /// An attempt that started was interrupted by the runner (shutdown, lease not renewable):
    /// back to `enqueued`, and the attempt does not count.
    HandBack,
    /// A claimed run whose attempt never started (the runner stopped first): back to
    /// `enqueued` with its attempt number given back, and no attempt recorded.
    Release,
}

impl Transition {
    /// The run's next state.
    pub fn state(&self) -> RunState {
        match self {
            Transition::Succeed { .. } => RunState::Succeeded,
            Transition::Retry { .. } | Transition::RunnerFault { .. } => RunState::Retrying,
            Transition::Fail => RunState::Failed,
            Transition::Snooze { .. } => RunState::Scheduled,
            Transition::Cancel => RunState::Cancelled,
            Transition::HandBack | Transition::Release => RunState::Enqueued,
        }
    }

    /// When the run is due again, from the database's now.
    pub fn delay_ms(&self) -> Option<i64> {
        match self {
            Transition::Retry { delay_ms }
            | Transition::Snooze { delay_ms }
            | Transition::RunnerFault { delay_ms } => Some(*delay_ms),
            _ => None,
        }
    }

    /// The attempt does not count against `max_attempts`.
    pub fn refunds_attempt(&self) -> bool {
        matches!(
            self,
            Transition::Snooze { .. } | Transition::RunnerFault { .. } | Transition::HandBack
        )
    }

    /// The attempt is recorded (everything but a release).
    pub fn records_attempt(&self) -> bool {
        !matches!(self, Transition::Release)
    }
}

/// The record of one ended attempt: how it ended and what it cost.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub outcome: Outcome,
    pub error: Option<String>,
    pub fuel_used: i64,
    pub peak_memory: i64,
    pub duration_ms: i64,
    /// Outbound requests, bytes and denials (`None`: the attempt made no request).
    pub outbound: Option<crate::sandbox::OutboundUsage>,
    /// When the attempt started and ended, on the database clock (the runner's clock plus its
    /// measured offset to the database's).
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

/// The end of one attempt: the run's transition and the attempt's record. Written only if
/// `lease_token` still holds the run (the guarded write).
#[derive(Debug, Clone)]
pub struct Completion {
    pub run_id: Uuid,
    pub lease_token: Uuid,
    /// The run's tenant and job (for the rollup of ended attempts, `run_stats`).
    pub tenant_id: i64,
    pub job_id: i64,
    /// The run's queue (for the runner's metrics).
    pub queue: String,
    pub transition: Transition,
    /// Why, in words (the run's history).
    pub reason: String,
    pub record: AttemptRecord,
    pub progress: Option<i16>,
    pub progress_message: Option<String>,
}

impl Completion {
    fn new(
        run: &ClaimedRun,
        transition: Transition,
        reason: String,
        record: AttemptRecord,
    ) -> Self {
        Completion {
            run_id: run.id,
            lease_token: run.lease_token,
            tenant_id: run.tenant_id,
            job_id: run.job_id,
            queue: run.queue.clone(),
            transition,
            reason,
            record,
            progress: None,
            progress_message: None,
        }
    }

    pub fn succeeded(run: &ClaimedRun, record: AttemptRecord, output: Value) -> Self {
        let reason = format!("attempt {} succeeded", run.attempt);
        Completion::new(run, Transition::Succeed { output }, reason, record)
    }

    pub fn retry(run: &ClaimedRun, record: AttemptRecord, delay_ms: i64, reason: String) -> Self {
        Completion::new(run, Transition::Retry { delay_ms }, reason, record)
    }

    pub fn failed(run: &ClaimedRun, record: AttemptRecord, reason: String) -> Self {
        Completion::new(run, Transition::Fail, reason, record)
    }

    pub fn snoozed(run: &ClaimedRun, record: AttemptRecord, delay_ms: i64, reason: String) -> Self {
        Completion::new(run, Transition::Snooze { delay_ms }, reason, record)
    }

    pub fn runner_fault(
        run: &ClaimedRun,
        record: AttemptRecord,
        delay_ms: i64,
        reason: String,
    ) -> Self {
        Completion::new(run, Transition::RunnerFault { delay_ms }, reason, record)
    }

    pub fn cancelled(run: &ClaimedRun, record: AttemptRecord, reason: String) -> Self {
        Completion::new(run, Transition::Cancel, reason, record)
    }

    pub fn handed_back(run: &ClaimedRun, record: AttemptRecord, reason: String) -> Self {
        Completion::new(run, Transition::HandBack, reason, record)
    }

    /// A claimed run given back before its attempt started.
    pub fn released(run: &ClaimedRun, reason: String) -> Self {
        let record = AttemptRecord {
            outcome: Outcome::Cancelled,
            error: None,
            fuel_used: 0,
            peak_memory: 0,
            duration_ms: 0,
            outbound: None,
            started_at: Utc::now(),
            ended_at: Utc::now(),
        };
        Completion::new(run, Transition::Release, reason, record)
    }

    /// Progress as the attempt last reported it.
    pub fn with_progress(mut self, progress: Option<(i16, String)>) -> Self {
        if let Some((percent, message)) = progress {
            self.progress = Some(percent);
            self.progress_message = Some(message);
        }
        self
    }

    /// The error the run keeps (none once it succeeded or was given back unstarted).
    pub fn run_error(&self) -> Option<&str> {
        match self.transition {
            Transition::Succeed { .. } | Transition::Release | Transition::Snooze { .. } => None,
            _ => self.record.error.as_deref(),
        }
    }
}

/// A tenant's queue: settings and how many runs are in it, by state.
#[derive(Debug, Clone)]
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

/// How a sibling store's pool connects (see [`Store::sibling`]).
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// The database cancels any statement of the pool running longer than this.
    pub statement_timeout: Option<std::time::Duration>,
    /// `false`: commits return before their WAL reaches the disk (`synchronous_commit = off`).
    /// Only for writes that a crash of PostgreSQL may undo without harm: a claim lost that way
    /// leaves its run enqueued, the attempt's completion is refused by the guarded write, and
    /// the run runs again (at least once, as always).
    pub synchronous_commit: bool,
    /// How the pool's prepared statements are planned.
    pub plans: PlanCache,
}

impl PoolOptions {
    pub fn new(max_connections: u32) -> PoolOptions {
        PoolOptions {
            max_connections,
            statement_timeout: None,
            synchronous_commit: true,
            plans: PlanCache::Auto,
        }
    }
}

/// How a pool's prepared statements are planned (`plan_cache_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanCache {
    /// PostgreSQL's choice: custom plans for five executions, then the generic plan if it
    /// does not look dearer.
    Auto,
    /// Plan every execution for its own parameters (and no JIT): for statements with optional
    /// filters (`$1 IS NULL OR …`), whose generic plan can be a scan of a whole table where
    /// the custom one reads a few index entries. The dashboard's lists are such statements.
    Custom,
    /// Plan once for all parameters: for statements whose every plan is the same whatever
    /// the parameters, but whose generic plan PostgreSQL would judge by a guessed row count.
    /// The group commit's inserts (`run_insert.sql`, `run_insert_one.sql`) are such: left to
    /// choose, PostgreSQL planned each execution anew (0.37 ms of planning against 0.2 ms of
    /// executing).
    Generic,
}

/// The database's storage seam. See the module docs for the rules every method keeps.
#[async_trait::async_trait]
pub trait Store:
    RunnerStore
    + BatchStore
    + CapabilityStore
    + MetricsStore
    + RunControlStore
    + RetentionStore
    + ScheduleStore
    + StatsStore
    + TenancyStore
    + UiStore
    + Send
    + Sync
    + 'static
{
    async fn queue_list(&self, tenant_id: i64) -> StoreResult<Vec<QueueInfo>>;
    async fn queue_put(&self, params: QueuePutParams) -> StoreResult<QueueInfo>;

    /// The PostgreSQL pool, for LISTEN/NOTIFY (`None` for stores without notifications).
    fn pg_pool(&self) -> Option<sqlx::PgPool> {
        None
    }
    /// A store on the same database with a pool of its own (connecting lazily), so one kind of
    /// traffic can never starve another of connections; `None` for stores without a pool
    /// (callers then share this one).
    fn sibling(&self, options: PoolOptions) -> Option<std::sync::Arc<dyn Store>> {
        let _ = options;
        None
    }
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Vacuums the hot table `run_queue` when it holds more than `threshold` dead row versions
    /// (by PostgreSQL's statistics); returns how many it held when it did.
    async fn run_queue_vacuum(&self, threshold: i64) -> StoreResult<Option<i64>>;
    /// The database's clock, now.
    async fn clock(&self) -> StoreResult<DateTime<Utc>>;
    /// Cheap liveness check of the database.
    async fn ping(&self) -> StoreResult<()>;

    async fn job_upload(&self, params: JobUploadParams) -> StoreResult<JobUploaded>;
    async fn job_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<Job>>;
    async fn job_list(&self, tenant_id: i64) -> StoreResult<Vec<Job>>;
    async fn job_versions(&self, job_id: i64) -> StoreResult<Vec<JobVersion>>;
    async fn component_bytes(&self, tenant_id: i64, digest: &str) -> StoreResult<Option<Vec<u8>>>;
    /// The artifact a runner kept for the tenant's component on an engine with compatibility
    /// hash `engine` (`Sandbox::engine_hash`).
    async fn compiled_component_get(
        &self,
        tenant_id: i64,
        digest: &str,
        engine: &str,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Keeps a compiled artifact (an existing one for the same key is left as it is: they are
    /// interchangeable). Nothing is kept if the component is gone meanwhile.
    async fn compiled_component_put(&self, params: CompiledComponentPutParams) -> StoreResult<()>;
    /// Deletes a job version no run references (and its component bytes when no other version
    /// of the tenant uses them).
    async fn job_version_delete(
        &self,
        tenant_id: i64,
        job: &str,
        version: i32,
    ) -> StoreResult<VersionDelete>;

    async fn run_insert(&self, params: RunInsertParams) -> StoreResult<Run>;
    /// Inserts a run unless a live idempotency key of the tenant already names one.
    async fn run_insert_idempotent(
        &self,
        params: RunInsertParams,
        key: IdempotencyParams,
    ) -> StoreResult<Idempotent>;
    /// Inserts many runs in one statement; returns them as inserted.
    async fn run_insert_many(&self, params: Vec<RunInsertParams>) -> StoreResult<Vec<Run>>;
    /// Inserts many runs (no continuations) in one transaction without reading them back: the
    /// bulk enqueue path. Returns how many were inserted.
    async fn run_insert_bulk(&self, params: Vec<RunInsertParams>) -> StoreResult<u64>;
    async fn run_get(&self, tenant_id: i64, id: Uuid) -> StoreResult<Option<RunDetail>>;
    async fn run_list(&self, params: RunListParams) -> StoreResult<Vec<Run>>;
    async fn log_list(&self, params: LogListParams) -> StoreResult<Option<LogPage>>;

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
    /// Extends the leases this runner holds (run id and lease token each); returns each
    /// extended token and whether its run was asked to cancel (a missed NOTIFY is caught here).
    /// A token not returned no longer holds its run (or its row was busy).
    async fn lease_extend(
        &self,
        leases: &[(Uuid, Uuid)],
        lease_ms: i64,
    ) -> StoreResult<Vec<(Uuid, bool)>>;
    /// The names and component of a job version (immutable: callers may cache it).
    async fn job_version_ref(
        &self,
        job_id: i64,
        version: i32,
    ) -> StoreResult<Option<JobVersionRef>>;
    /// Moves due `scheduled` and `retrying` runs to `enqueued`; returns how many.
    async fn run_promote_due(&self, limit: i64) -> StoreResult<u64>;
    /// The earliest due time of a `scheduled` or `retrying` run, and the database's now.
    async fn run_next_due(&self) -> StoreResult<(Option<DateTime<Utc>>, DateTime<Utc>)>;
}
