//! The PostgreSQL store. SQL lives in `sql/*.sql`; this file binds parameters and maps rows.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Row, error::ErrorKind};
use uuid::Uuid;

use super::*;

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub fn new(pool: PgPool) -> PgStore {
        PgStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A connection idle for less than this is handed out without a check.
pub(super) const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// How every pool of the runner is built. sqlx pings a connection (one round trip) each time
/// it leaves the pool by default: on the enqueue path that was three extra round trips per
/// request. Here a connection is checked only after it sat idle for a second, when a restart
/// of the server or a dropped link may have gone unnoticed; a busy connection proves itself
/// by its last statement, and one that broke since fails its next statement, which is
/// answered as "database unavailable" and closes it.
pub fn pool_options() -> sqlx::postgres::PgPoolOptions {
    sqlx::postgres::PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

pub(super) fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        // The database's own words name tables and constraints: they are logged, never
        // handed on (they may reach a client).
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            tracing::debug!(error = %db, "unique violation");
            StoreError::Conflict("a record with the same name or key already exists".into())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
        // Raised by the continuation trigger: the parent can never satisfy the condition.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("SF001") => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("SF002") => {
            StoreError::Invalid(db.message().to_string())
        }
        // Data exceptions (class 22, e.g. a NUL character in text) are bad values, not bugs.
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            tracing::info!(error = %db, code = ?db.code(), "the database refused a value");
            StoreError::Invalid(data_exception(db.code().as_deref().unwrap_or_default()).into())
        }
        // Administrator shutdown, crash recovery, too many connections...: transient.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("57P") || c.starts_with("08") || c == "53300") =>
        {
            StoreError::Unavailable(err)
        }
        _ => StoreError::Other(err),
    }
}

/// Our words for a PostgreSQL data exception (SQLSTATE class 22), by code.
fn data_exception(code: &str) -> &'static str {
    match code {
        // untranslatable_character (e.g. `\u0000` in jsonb), character_not_in_repertoire
        "22P05" | "22021" => "text or JSON containing a NUL character (\\u0000) cannot be stored",
        "22001" => "a text value is longer than allowed",
        "22003" => "a number is out of range",
        "22007" | "22008" => "a date or time is out of range",
        _ => "a value cannot be stored (it is malformed or out of range)",
    }
}

/// PostgreSQL cannot store NUL in `text` or `\u0000` in `jsonb`. Guests can produce both (logs,
/// errors, output), so everything a guest wrote is cleaned on the way in; NUL becomes U+FFFD.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn clean_json(v: &Value) -> std::borrow::Cow<'_, Value> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    fn strip(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(clean(s).into_owned()),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (clean(k).into_owned(), strip(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    if has_nul(v) {
        std::borrow::Cow::Owned(strip(v))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

fn run_from_row(row: &PgRow) -> Result<Run, sqlx::Error> {
    Ok(Run {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        version: row.try_get("version")?,
        state: row.try_get("state")?,
        queue: row.try_get("queue")?,
        priority: row.try_get("priority")?,
        // NULL only in lists, where a large input is left out (`input_truncated`).
        input: row
            .try_get::<Option<Value>, _>("input")?
            .unwrap_or(Value::Null),
        output: row.try_get("output")?,
        error: row.try_get("error")?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        timeout_ms: row.try_get("timeout_ms")?,
        fuel: row.try_get("fuel")?,
        memory_mb: row.try_get("memory_mb")?,
        backoff_base_ms: row.try_get("backoff_base_ms")?,
        scheduled_at: row.try_get("scheduled_at")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        progress: row.try_get("progress")?,
        progress_message: row.try_get("progress_message")?,
        batch_id: row.try_get("batch_id")?,
        after_run: row.try_get("after_run")?,
        after_batch: row.try_get("after_batch")?,
        after_on: row.try_get("after_on")?,
        snoozes: row.try_get("snoozes")?,
        cancel_requested_at: row.try_get("cancel_requested_at")?,
        schedule: row.try_get("schedule")?,
        fire_at: row.try_get("fire_at")?,
        // Only the list query has these columns.
        input_truncated: row.try_get("input_truncated").unwrap_or(false),
        output_truncated: row.try_get("output_truncated").unwrap_or(false),
    })
}

fn job_from_row(row: &PgRow) -> Result<Job, sqlx::Error> {
    let unsigned = |name: &str| -> Result<Option<u64>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(|v| v as u64))
    };
    Ok(Job {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        row_version: row.try_get("row_version")?,
        digest: row.try_get("digest")?,
        size: row.try_get("size")?,
        defaults: RunOptions {
            max_attempts: row
                .try_get::<Option<i32>, _>("max_attempts")?
                .map(|v| v as u32),
            timeout_ms: unsigned("timeout_ms")?,
            fuel: unsigned("fuel")?,
            memory_mb: row
                .try_get::<Option<i32>, _>("memory_mb")?
                .map(|v| v as u32),
            backoff_base_ms: unsigned("backoff_base_ms")?,
            queue: row.try_get("queue")?,
            priority: row.try_get("priority")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Options are u64/u32 in Rust and bigint/integer in SQL; limits keep them far below i64::MAX.
fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_i32(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

async fn insert_lines(
    tx: &mut sqlx::PgConnection,
    lines: &[NewLogLine],
) -> Result<(), sqlx::Error> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut run_ids = Vec::with_capacity(lines.len());
    let mut attempts = Vec::with_capacity(lines.len());
    let mut ats = Vec::with_capacity(lines.len());
    let mut levels = Vec::with_capacity(lines.len());
    let mut messages = Vec::with_capacity(lines.len());
    let mut fields = Vec::with_capacity(lines.len());
    for line in lines {
        run_ids.push(line.run_id);
        attempts.push(line.attempt);
        ats.push(line.at);
        levels.push(line.level.as_str());
        messages.push(clean(&line.message).into_owned());
        fields.push(clean_json(&line.fields).into_owned());
    }
    sqlx::query(include_str!("sql/logs_insert.sql"))
        .bind(run_ids)
        .bind(attempts)
        .bind(ats)
        .bind(levels)
        .bind(messages)
        .bind(fields)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Runs to insert as parallel arrays (the shape of `run_insert.sql` and `run_insert_bulk.sql`).
#[derive(Default)]
struct RunColumns {
    ids: Vec<Uuid>,
    tenants: Vec<i64>,
    jobs: Vec<i64>,
    versions: Vec<i32>,
    queues: Vec<String>,
    priorities: Vec<i16>,
    inputs: Vec<Value>,
    max_attempts: Vec<Option<i32>>,
    timeouts: Vec<Option<i64>>,
    fuels: Vec<Option<i64>>,
    memories: Vec<Option<i32>>,
    backoffs: Vec<Option<i64>>,
    reasons: Vec<String>,
    delays: Vec<Option<i64>>,
    run_ats: Vec<Option<DateTime<Utc>>>,
    after_runs: Vec<Option<Uuid>>,
    after_ons: Vec<Option<String>>,
    from_parent: Vec<bool>,
    job_row_versions: Vec<Option<i64>>,
}

impl RunColumns {
    fn new(params: Vec<RunInsertParams>) -> RunColumns {
        let mut c = RunColumns::default();
        for p in params {
            c.ids.push(p.id);
            c.tenants.push(p.tenant_id);
            c.jobs.push(p.job_id);
            c.versions.push(p.version);
            c.delays.push(match p.due {
                Some(Due::In(ms)) => Some(ms),
                _ => None,
            });
            c.run_ats.push(match p.due {
                Some(Due::At(at)) => Some(at),
                _ => None,
            });
            c.after_runs.push(p.after.as_ref().map(|a| a.run));
            c.after_ons.push(p.after.as_ref().map(|a| a.on.clone()));
            c.from_parent
                .push(p.after.as_ref().is_some_and(|a| a.input_from_parent));
            c.queues.push(p.options.queue);
            c.priorities.push(p.options.priority);
            c.inputs.push(p.input);
            c.max_attempts.push(opt_i32(Some(p.options.max_attempts)));
            c.timeouts.push(opt_i64(Some(p.options.timeout_ms)));
            c.fuels.push(opt_i64(Some(p.options.fuel)));
            c.memories.push(opt_i32(Some(p.options.memory_mb)));
            c.backoffs.push(opt_i64(Some(p.options.backoff_base_ms)));
            c.reasons.push(p.reason);
            c.job_row_versions.push(p.job_row_version);
        }
        c
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl RunColumns {
    /// Binds $1-$15, the columns every run insert shares (`run_insert.sql` adds the
    /// continuation's after it).
    fn bind_plain(self, q: PgQuery<'static>) -> PgQuery<'static> {
        q.bind(self.ids)
            .bind(self.tenants)
            .bind(self.jobs)
            .bind(self.versions)
            .bind(self.queues)
            .bind(self.priorities)
            .bind(self.inputs)
            .bind(self.max_attempts)
            .bind(self.timeouts)
            .bind(self.fuels)
            .bind(self.memories)
            .bind(self.backoffs)
            .bind(self.reasons)
            .bind(self.delays)
            .bind(self.run_ats)
    }
}

impl RunColumns {
    /// Binds the one run these columns hold as the scalar parameters of
    /// `run_insert_one.sql` (in the order of `run_insert.sql`'s arrays).
    fn bind_one(mut self, q: PgQuery<'static>) -> PgQuery<'static> {
        fn one<T>(v: &mut Vec<T>) -> T {
            v.pop().expect("bind_one holds exactly one run")
        }
        q.bind(one(&mut self.ids))
            .bind(one(&mut self.tenants))
            .bind(one(&mut self.jobs))
            .bind(one(&mut self.versions))
            .bind(one(&mut self.queues))
            .bind(one(&mut self.priorities))
            .bind(one(&mut self.inputs))
            .bind(one(&mut self.max_attempts))
            .bind(one(&mut self.timeouts))
            .bind(one(&mut self.fuels))
            .bind(one(&mut self.memories))
            .bind(one(&mut self.backoffs))
            .bind(one(&mut self.reasons))
            .bind(one(&mut self.delays))
            .bind(one(&mut self.run_ats))
            .bind(one(&mut self.after_runs))
            .bind(one(&mut self.after_ons))
            .bind(one(&mut self.from_parent))
            .bind(one(&mut self.job_row_versions))
    }
}

/// The one run a single-run insert wrote; none back means the insert left it out because
/// its job changed since the caller read it.
pub(super) fn inserted_one(mut runs: Vec<Run>) -> StoreResult<Run> {
    runs.pop().ok_or(StoreError::JobChanged)
}

/// Inserts runs in one statement on a connection or inside a transaction (`run_insert_one.sql`
/// for a single run, `run_insert.sql` for more).
pub(super) async fn insert_runs(
    conn: &mut sqlx::PgConnection,
    params: Vec<RunInsertParams>,
) -> StoreResult<Vec<Run>> {
    let single = params.len() == 1;
    let mut c = RunColumns::new(params);
    if single {
        let row = c
            .bind_one(sqlx::query(include_str!("sql/run_insert_one.sql")))
            .fetch_optional(&mut *conn)
            .await
            .map_err(classify)?;
        return row
            .iter()
            .map(run_from_row)
            .collect::<Result<_, _>>()
            .map_err(classify);
    }
    let after_runs = std::mem::take(&mut c.after_runs);
    let after_ons = std::mem::take(&mut c.after_ons);
    let from_parent = std::mem::take(&mut c.from_parent);
    let job_row_versions = std::mem::take(&mut c.job_row_versions);
    let rows = c
        .bind_plain(sqlx::query(include_str!("sql/run_insert.sql")))
        .bind(after_runs)
        .bind(after_ons)
        .bind(from_parent)
        .bind(job_row_versions)
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    rows.iter()
        .map(run_from_row)
        .collect::<Result<_, _>>()
        .map_err(classify)
}

/// Most runs one bulk insert statement carries (bounds the statement's size and memory).
const BULK_CHUNK: usize = 5_000;

/// A stored log line, as both the API's and the dashboard's log pages read it.
pub(super) fn log_line_from_row(row: &PgRow) -> Result<LogLine, sqlx::Error> {
    Ok(LogLine {
        id: row.try_get("id")?,
        attempt: row.try_get("attempt")?,
        at: row.try_get("at")?,
        level: row.try_get("level")?,
        message: row.try_get("message")?,
        fields: row.try_get("fields")?,
    })
}

fn claimed_from_row(row: &PgRow) -> Result<ClaimedRun, sqlx::Error> {
    Ok(ClaimedRun {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        job_id: row.try_get("job_id")?,
        version: row.try_get("version")?,
        input: row.try_get("input")?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        timeout_ms: row.try_get("timeout_ms")?,
        fuel: row.try_get("fuel")?,
        memory_mb: row.try_get("memory_mb")?,
        backoff_base_ms: row.try_get("backoff_base_ms")?,
        scheduled_at: row.try_get("scheduled_at")?,
        lease_token: row.try_get("lease_token")?,
        snoozes: row.try_get("snoozes")?,
        runner_faults: row.try_get("runner_faults")?,
        priority: row.try_get("priority")?,
        log_budget: row.try_get("log_budget")?,
        queue: String::new(),
    })
}

/// Claimed runs in the order they should start: highest priority, then earliest due, then id
/// (an UPDATE's RETURNING order is not the order rows were picked in).
fn in_claim_order(mut runs: Vec<ClaimedRun>) -> Vec<ClaimedRun> {
    runs.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.scheduled_at.cmp(&b.scheduled_at))
            .then(a.id.cmp(&b.id))
    });
    runs
}

/// How many runs of a limited tenant's queue may start now (at most `room`), after locking the
/// tenant row (if it is held to `max_running`) and then the queue row, in that order on every
/// runner. 0 when the tenant is disabled or the queue paused.
async fn limited_room(
    tx: &mut sqlx::PgConnection,
    p: &RunClaimParams,
    tenant_id: i64,
    room: i64,
) -> StoreResult<i64> {
    let tenant: Option<(Option<bool>, Option<i32>)> = sqlx::query_as(
        "SELECT t.disabled_at IS NULL, coalesce(l.max_running, $2::int4)
         FROM tenants t LEFT JOIN tenant_limits l ON l.tenant_id = t.id
         WHERE t.id = $1
         FOR NO KEY UPDATE OF t",
    )
    .bind(tenant_id)
    .bind(p.default_max_running)
    .fetch_optional(&mut *tx)
    .await
    .map_err(classify)?;
    let Some((Some(true), max_running)) = tenant else {
        return Ok(0);
    };
    let mut n = room;
    if let Some(max) = max_running {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM run_queue WHERE tenant_id = $1 AND state = 'running'",
        )
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        n = n.min(i64::from(max) - running);
    }
    let queue: Option<(bool, Option<i32>)> = sqlx::query_as(
        "SELECT paused, concurrency_limit FROM queues
         WHERE tenant_id = $1 AND name = $2
         FOR UPDATE",
    )
    .bind(tenant_id)
    .bind(&p.queue)
    .fetch_optional(&mut *tx)
    .await
    .map_err(classify)?;
    match queue {
        Some((true, _)) => return Ok(0),
        Some((false, Some(limit))) if n > 0 => {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM run_queue
                 WHERE tenant_id = $1 AND queue = $2 AND state = 'running'",
            )
            .bind(tenant_id)
            .bind(&p.queue)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
            n = n.min(i64::from(limit) - running);
        }
        _ => {}
    }
    Ok(n.max(0))
}

/// Claims the runs of one limited tenant's queue (claim_tenant.sql).
async fn claim_tenant_rows(
    conn: &mut sqlx::PgConnection,
    p: &RunClaimParams,
    tenant_id: i64,
    limit: i64,
) -> StoreResult<Vec<ClaimedRun>> {
    let rows = sqlx::query(include_str!("sql/claim_tenant.sql"))
        .bind(&p.queue)
        .bind(limit)
        .bind(p.runner_id)
        .bind(p.lease_ms)
        .bind(tenant_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    rows.iter()
        .map(claimed_from_row)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(classify)
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn pg_pool(&self) -> Option<PgPool> {
        Some(self.pool.clone())
    }

    fn sibling(&self, p: super::PoolOptions) -> Option<std::sync::Arc<dyn Store>> {
        // Session settings, sent once in the startup message (one list: one call).
        let mut settings: Vec<(&str, String)> = Vec::new();
        if let Some(timeout) = p.statement_timeout {
            settings.push(("statement_timeout", timeout.as_millis().max(1).to_string()));
        }
        if !p.synchronous_commit {
            settings.push(("synchronous_commit", "off".to_string()));
        }
        match p.plans {
            super::PlanCache::Auto => {}
            super::PlanCache::Custom => {
                settings.push(("plan_cache_mode", "force_custom_plan".to_string()));
                settings.push(("jit", "off".to_string()));
            }
            super::PlanCache::Generic => {
                settings.push(("plan_cache_mode", "force_generic_plan".to_string()));
            }
        }
        let mut options = self.pool.connect_options().as_ref().clone();
        if !settings.is_empty() {
            options = options.options(settings);
        }
        let pool = pool_options()
            .max_connections(p.max_connections.max(1))
            .acquire_timeout(self.pool.options().get_acquire_timeout())
            .connect_lazy_with(options);
        Some(std::sync::Arc::new(PgStore::new(pool)))
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("../migrations")
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => classify(e),
                other => StoreError::Other(sqlx::Error::Migrate(Box::new(other))),
            })
    }

    async fn run_queue_vacuum(&self, threshold: i64) -> StoreResult<Option<i64>> {
        let dead: Option<i64> = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables
             WHERE relid = 'run_queue'::regclass",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        match dead {
            Some(dead) if dead > threshold => {
                // Not in a transaction (VACUUM refuses one): a plain simple-protocol statement.
                sqlx::raw_sql("VACUUM run_queue")
                    .execute(&self.pool)
                    .await
                    .map_err(classify)?;
                Ok(Some(dead))
            }
            _ => Ok(None),
        }
    }

    async fn clock(&self) -> StoreResult<DateTime<Utc>> {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn job_version_delete(
        &self,
        tenant_id: i64,
        job: &str,
        version: i32,
    ) -> StoreResult<VersionDelete> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // The job row's lock orders this against uploads (which may make a version current).
        let found: Option<(i64, i32)> = sqlx::query_as(
            "SELECT id, current_version FROM jobs WHERE tenant_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(tenant_id)
        .bind(job)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some((job_id, current)) = found else {
            return Ok(VersionDelete::NotFound);
        };
        if version == current {
            return Ok(VersionDelete::Current);
        }
        let referenced: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = $1 AND version = $2)",
        )
        .bind(job_id)
        .bind(version)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        if referenced {
            return Ok(VersionDelete::Referenced);
        }
        let digest: Option<String> = sqlx::query_scalar(
            "DELETE FROM job_versions WHERE job_id = $1 AND version = $2 RETURNING digest",
        )
        .bind(job_id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some(digest) = digest else {
            return Ok(VersionDelete::NotFound);
        };
        sqlx::query(
            "DELETE FROM components c WHERE c.tenant_id = $1 AND c.digest = $2
             AND NOT EXISTS (SELECT 1 FROM job_versions v
                             WHERE v.tenant_id = $1 AND v.digest = $2)",
        )
        .bind(tenant_id)
        .bind(&digest)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(VersionDelete::Deleted)
    }

    async fn job_upload(&self, p: JobUploadParams) -> StoreResult<JobUploaded> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query(
            "INSERT INTO components (tenant_id, digest, bytes, size) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, digest) DO NOTHING",
        )
        .bind(p.tenant_id)
        .bind(&p.digest)
        .bind(&p.bytes)
        .bind(p.bytes.len() as i32)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        // Lock the job row (if any) so concurrent uploads of one name serialise.
        let existing: Option<(i64, i32, String)> = sqlx::query_as(
            "SELECT j.id, j.current_version, v.digest
             FROM jobs j JOIN job_versions v ON v.job_id = j.id AND v.version = j.current_version
             WHERE j.tenant_id = $1 AND j.name = $2
             FOR UPDATE OF j",
        )
        .bind(p.tenant_id)
        .bind(&p.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let d = p.defaults.clone().unwrap_or_default();
        let keep = p.defaults.is_none();
        let (job_id, new_version) = match existing {
            Some((id, _, digest)) if digest == p.digest => (id, false),
            Some((id, _, _)) => {
                // A changed component: a new version, or back to an earlier version's bytes.
                let previous: Option<i32> = sqlx::query_scalar(
                    "SELECT version FROM job_versions WHERE job_id = $1 AND digest = $2",
                )
                .bind(id)
                .bind(&p.digest)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
                if previous.is_none()
                    && let Some(max) = p.max_versions
                {
                    let versions: i64 =
                        sqlx::query_scalar("SELECT count(*) FROM job_versions WHERE job_id = $1")
                            .bind(id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(classify)?;
                    if versions >= i64::from(max) {
                        return Err(StoreError::QuotaExceeded {
                            limit: "max_versions_per_job",
                            value: i64::from(max),
                        });
                    }
                }
                let version = match previous {
                    Some(v) => v,
                    None => sqlx::query_scalar(
                        "INSERT INTO job_versions (job_id, version, tenant_id, digest)
                         SELECT $1, coalesce(max(version), 0) + 1, $2, $3
                         FROM job_versions WHERE job_id = $1
                         RETURNING version",
                    )
                    .bind(id)
                    .bind(p.tenant_id)
                    .bind(&p.digest)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?,
                };
                sqlx::query(
                    "UPDATE jobs SET current_version = $2, updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                (id, true)
            }
            None => {
                if let Some(max) = p.max_jobs {
                    let jobs: i64 =
                        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1")
                            .bind(p.tenant_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(classify)?;
                    if jobs >= i64::from(max) {
                        return Err(StoreError::QuotaExceeded {
                            limit: "max_jobs",
                            value: i64::from(max),
                        });
                    }
                }
                // Two first uploads of one name race here: the loser waits for the winner's
                // commit, inserts nothing, and starts over, now finding the job (a new version
                // or the same bytes, never a unique-violation error).
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO jobs (tenant_id, name, current_version) VALUES ($1, $2, 1)
                     ON CONFLICT (tenant_id, name) DO NOTHING
                     RETURNING id",
                )
                .bind(p.tenant_id)
                .bind(&p.name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
                let Some(id) = id else {
                    tx.rollback().await.map_err(classify)?;
                    return self.job_upload(p).await;
                };
                sqlx::query(
                    "INSERT INTO job_versions (job_id, version, tenant_id, digest)
                     VALUES ($1, 1, $2, $3)",
                )
                .bind(id)
                .bind(p.tenant_id)
                .bind(&p.digest)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                (id, true)
            }
        };
        if !keep {
            sqlx::query(
                "UPDATE jobs SET max_attempts = $2, timeout_ms = $3, fuel = $4, memory_mb = $5,
                        backoff_base_ms = $6, queue = $7, priority = $8, updated_at = now()
                 WHERE id = $1",
            )
            .bind(job_id)
            .bind(opt_i32(d.max_attempts))
            .bind(opt_i64(d.timeout_ms))
            .bind(opt_i64(d.fuel))
            .bind(opt_i32(d.memory_mb))
            .bind(opt_i64(d.backoff_base_ms))
            .bind(&d.queue)
            .bind(d.priority)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        let row = sqlx::query(include_str!("sql/job_select.sql"))
            .bind(p.tenant_id)
            .bind(&p.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        let job = job_from_row(&row).map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(JobUploaded { job, new_version })
    }

    async fn job_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<Job>> {
        let row = sqlx::query(include_str!("sql/job_select.sql"))
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.as_ref().map(job_from_row).transpose().map_err(classify)
    }

    async fn job_list(&self, tenant_id: i64) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(include_str!("sql/job_select.sql"))
            .bind(tenant_id)
            .bind(None::<String>)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter()
            .map(job_from_row)
            .collect::<Result<_, _>>()
            .map_err(classify)
    }

    async fn job_versions(&self, job_id: i64) -> StoreResult<Vec<JobVersion>> {
        let rows = sqlx::query(
            "SELECT v.version, v.digest, c.size, v.created_at
             FROM job_versions v
             JOIN components c ON c.tenant_id = v.tenant_id AND c.digest = v.digest
             WHERE v.job_id = $1 ORDER BY v.version DESC",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(JobVersion {
                    version: row.try_get("version")?,
                    digest: row.try_get("digest")?,
                    size: row.try_get("size")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(classify)
    }

    async fn component_bytes(&self, tenant_id: i64, digest: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT bytes FROM components WHERE tenant_id = $1 AND digest = $2")
            .bind(tenant_id)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }

    async fn compiled_component_get(
        &self,
        tenant_id: i64,
        digest: &str,
        engine: &str,
    ) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar(
            "SELECT artifact FROM compiled_components
             WHERE tenant_id = $1 AND digest = $2 AND engine = $3",
        )
        .bind(tenant_id)
        .bind(digest)
        .bind(engine)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)
    }

    async fn compiled_component_put(&self, params: CompiledComponentPutParams) -> StoreResult<()> {
        // Through a SELECT on `components`, so a component deleted meanwhile keeps nothing
        // (instead of a foreign-key error).
        sqlx::query(
            "INSERT INTO compiled_components (tenant_id, digest, engine, artifact, size)
             SELECT c.tenant_id, c.digest, $3, $4, $5 FROM components c
             WHERE c.tenant_id = $1 AND c.digest = $2
             ON CONFLICT (tenant_id, digest, engine) DO NOTHING",
        )
        .bind(params.tenant_id)
        .bind(&params.digest)
        .bind(&params.engine)
        .bind(&params.artifact)
        .bind(i32::try_from(params.artifact.len()).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn run_insert(&self, params: RunInsertParams) -> StoreResult<Run> {
        inserted_one(self.run_insert_many(vec![params]).await?)
    }

    async fn run_insert_many(&self, params: Vec<RunInsertParams>) -> StoreResult<Vec<Run>> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        insert_runs(&mut conn, params).await
    }

    async fn run_insert_bulk(&self, params: Vec<RunInsertParams>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let mut inserted = 0;
        let mut params = params.into_iter().peekable();
        while params.peek().is_some() {
            let c = RunColumns::new(params.by_ref().take(BULK_CHUNK).collect());
            inserted += c
                .bind_plain(sqlx::query(include_str!("sql/run_insert_bulk.sql")))
                .execute(&mut *tx)
                .await
                .map_err(classify)?
                .rows_affected();
        }
        tx.commit().await.map_err(classify)?;
        Ok(inserted)
    }

    async fn run_get(&self, tenant_id: i64, id: Uuid) -> StoreResult<Option<RunDetail>> {
        // One snapshot for the run, its attempts and its history, so they always agree.
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(row) = sqlx::query(include_str!("sql/run_select.sql"))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        let run = run_from_row(&row).map_err(classify)?;
        let origin: String = row.try_get("origin").map_err(classify)?;
        let mut attempts = sqlx::query(
            "SELECT number, runner_id, started_at, finished_at, outcome, error, fuel_used,
                    peak_memory, duration_ms, outbound
             FROM attempts WHERE run_id = $1 ORDER BY number",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?
        .iter()
        .map(|row| {
            Ok(Attempt {
                number: row.try_get("number")?,
                runner_id: row.try_get("runner_id")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
                outcome: row.try_get("outcome")?,
                error: row.try_get("error")?,
                fuel_used: row.try_get("fuel_used")?,
                peak_memory: row.try_get("peak_memory")?,
                duration_ms: row.try_get("duration_ms")?,
                outbound: row.try_get("outbound")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(classify)?;
        if run.state == RunState::Running {
            // The attempt in progress is recorded when it ends; until then it is the run's.
            let runner: Option<Uuid> = sqlx::query_scalar(
                "SELECT runner_id FROM run_queue WHERE run_id = $1 AND state = 'running'",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?
            .flatten();
            if let (Some(runner_id), Some(started_at)) = (runner, run.started_at) {
                attempts.push(Attempt {
                    number: run.attempt,
                    runner_id,
                    started_at,
                    finished_at: None,
                    outcome: None,
                    error: None,
                    fuel_used: None,
                    peak_memory: None,
                    duration_ms: None,
                    outbound: None,
                });
            }
        }
        let stored = sqlx::query(
            "SELECT at, from_state, to_state, reason FROM run_events
             WHERE run_id = $1 ORDER BY at",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?
        .iter()
        .map(|row| {
            Ok(RunEvent {
                at: row.try_get("at")?,
                from: row.try_get("from_state")?,
                to: row.try_get("to_state")?,
                reason: row.try_get("reason")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        let history = super::history::assemble(run.created_at, &origin, stored, &attempts);
        Ok(Some(RunDetail {
            run,
            attempts,
            history,
        }))
    }

    async fn run_list(&self, p: RunListParams) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(include_str!("sql/run_list.sql"))
            .bind(p.tenant_id)
            .bind(p.state)
            .bind(p.job)
            .bind(p.before)
            .bind(p.limit)
            .bind(p.value_bytes)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter()
            .map(run_from_row)
            .collect::<Result<_, _>>()
            .map_err(classify)
    }

    async fn log_list(&self, p: LogListParams) -> StoreResult<Option<LogPage>> {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM runs WHERE tenant_id = $1 AND id = $2")
                .bind(p.tenant_id)
                .bind(p.run_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(include_str!("sql/log_list.sql"))
            .bind(p.run_id)
            .bind(p.attempt)
            .bind(p.after)
            .bind(p.limit)
            .bind(p.budget_bytes)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        let more = rows.len() as i64 >= p.limit
            || rows
                .last()
                .map(|row| row.try_get::<i64, _>("upto_bytes"))
                .transpose()
                .map_err(classify)?
                .is_some_and(|upto| upto >= p.budget_bytes);
        let lines = rows
            .iter()
            .map(log_line_from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)?;
        Ok(Some(LogPage { lines, more }))
    }

    async fn run_claim(&self, p: RunClaimParams) -> StoreResult<Vec<ClaimedRun>> {
        let rows = sqlx::query(include_str!("sql/claim.sql"))
            .bind(&p.queue)
            .bind(p.limit)
            .bind(p.runner_id)
            .bind(p.lease_ms)
            .bind(&p.exclude_tenants)
            .bind(p.after_tenant)
            .bind(p.default_max_running)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        let mut claimed = in_claim_order(
            rows.iter()
                .map(claimed_from_row)
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(classify)?,
        );
        // The limited path: tenants with a concurrency-limited queue of this name, or held to
        // `max_running`. Each is claimed under the lock of its tenant row (for `max_running`)
        // and of its queue row (for the queue's limit), counting what runs now in a fresh
        // snapshot after the locks, so both limits hold across every runner.
        // They get what the fair claim left, and never less than a quarter of a claim, so a
        // busy runner whose claims other tenants fill still serves them.
        let mut room = (p.limit - claimed.len() as i64)
            .max((p.limit + 3) / 4)
            .max(1);
        let limited: Vec<i64> = sqlx::query_scalar(include_str!("sql/claim_limited_tenants.sql"))
            .bind(&p.queue)
            .bind(&p.exclude_tenants)
            .bind(p.default_max_running)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        for tenant_id in limited {
            if room <= 0 {
                break;
            }
            let mut tx = self.pool.begin().await.map_err(classify)?;
            let n = limited_room(&mut tx, &p, tenant_id, room).await?;
            if n > 0 {
                let rows = in_claim_order(claim_tenant_rows(&mut tx, &p, tenant_id, n).await?);
                room -= rows.len() as i64;
                claimed.extend(rows);
            }
            tx.commit().await.map_err(classify)?;
        }
        for run in &mut claimed {
            run.queue.clone_from(&p.queue);
        }
        Ok(claimed)
    }

    async fn run_complete_many(
        &self,
        completions: &[Completion],
        lines: &[NewLogLine],
    ) -> StoreResult<Vec<Uuid>> {
        let n = completions.len();
        let mut run_ids = Vec::with_capacity(n);
        let mut tokens = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        let mut outputs: Vec<Option<String>> = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut delays = Vec::with_capacity(n);
        let mut refunds = Vec::with_capacity(n);
        let mut snoozed = Vec::with_capacity(n);
        let mut reasons = Vec::with_capacity(n);
        let mut outcomes = Vec::with_capacity(n);
        let mut fuel = Vec::with_capacity(n);
        let mut memory = Vec::with_capacity(n);
        let mut durations = Vec::with_capacity(n);
        let mut progress = Vec::with_capacity(n);
        let mut progress_messages = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n);
        let mut outbound: Vec<Option<String>> = Vec::with_capacity(n);
        for c in completions {
            let t = &c.transition;
            run_ids.push(c.run_id);
            tokens.push(c.lease_token);
            states.push(t.state().as_str());
            outputs.push(match t {
                Transition::Succeed { output } => Some(clean_json(output).to_string()),
                _ => None,
            });
            errors.push(c.run_error().map(|e| clean(e).into_owned()));
            delays.push(t.delay_ms());
            refunds.push(t.refunds_attempt());
            snoozed.push(matches!(t, Transition::Snooze { .. }));
            reasons.push(clean(&c.reason).into_owned());
            outcomes.push(c.record.outcome.as_str());
            fuel.push(c.record.fuel_used);
            memory.push(c.record.peak_memory);
            durations.push(c.record.duration_ms);
            progress.push(c.progress);
            progress_messages.push(c.progress_message.as_deref().map(|m| clean(m).into_owned()));
            records.push(t.records_attempt());
            outbound.push(
                c.record
                    .outbound
                    .map(|u| serde_json::to_string(&u).unwrap_or_default()),
            );
        }
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // Planned for this batch's real size: a generic plan assumes 10 rows per array and
        // joins the batch with itself row by row (quadratic in the batch size).
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        insert_lines(&mut tx, lines).await.map_err(classify)?;
        let started_at: Vec<DateTime<Utc>> =
            completions.iter().map(|c| c.record.started_at).collect();
        let ended_at: Vec<DateTime<Utc>> = completions.iter().map(|c| c.record.ended_at).collect();
        let accepted: Vec<Uuid> = sqlx::query_scalar(include_str!("sql/complete.sql"))
            .bind(run_ids)
            .bind(tokens)
            .bind(states)
            .bind(outputs)
            .bind(errors)
            .bind(delays)
            .bind(refunds)
            .bind(snoozed)
            .bind(reasons)
            .bind(outcomes)
            .bind(fuel)
            .bind(memory)
            .bind(durations)
            .bind(progress)
            .bind(progress_messages)
            .bind(records)
            .bind(started_at)
            .bind(ended_at)
            .bind(outbound)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(accepted)
    }

    async fn attempt_journal(
        &self,
        run_id: Uuid,
        lease_token: Uuid,
        progress: Option<(i16, String)>,
        lines: &[NewLogLine],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        insert_lines(&mut tx, lines).await.map_err(classify)?;
        if let Some((percent, message)) = progress {
            sqlx::query(
                "UPDATE runs SET progress = $3, progress_message = $4
                 WHERE id = $1 AND state = 'running'
                   AND EXISTS (SELECT 1 FROM run_queue
                               WHERE run_id = $1 AND lease_token = $2)",
            )
            .bind(run_id)
            .bind(lease_token)
            .bind(percent)
            .bind(clean(&message).into_owned())
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn lease_extend(
        &self,
        leases: &[(Uuid, Uuid)],
        lease_ms: i64,
    ) -> StoreResult<Vec<(Uuid, bool)>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (runs, tokens): (Vec<Uuid>, Vec<Uuid>) = leases.iter().copied().unzip();
        sqlx::query_as(include_str!("sql/lease_extend.sql"))
            .bind(runs)
            .bind(tokens)
            .bind(lease_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)
    }

    async fn job_version_ref(
        &self,
        job_id: i64,
        version: i32,
    ) -> StoreResult<Option<JobVersionRef>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT t.name, j.name, v.digest
             FROM job_versions v
             JOIN jobs j ON j.id = v.job_id
             JOIN tenants t ON t.id = j.tenant_id
             WHERE v.job_id = $1 AND v.version = $2",
        )
        .bind(job_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        Ok(row.map(|(tenant, job, digest)| JobVersionRef {
            tenant,
            job,
            digest,
        }))
    }

    async fn run_insert_idempotent(
        &self,
        params: RunInsertParams,
        key: IdempotencyParams,
    ) -> StoreResult<Idempotent> {
        let tenant_id = params.tenant_id;
        // Two tries: a concurrent request with the same key may win the insert race once.
        for _ in 0..2 {
            let mut tx = self.pool.begin().await.map_err(classify)?;
            let existing: Option<(Vec<u8>, Uuid, DateTime<Utc>)> = sqlx::query_as(
                "SELECT request_hash, run_id, expires_at FROM idempotency_keys
                 WHERE tenant_id = $1 AND key = $2 AND expires_at > now()
                 FOR UPDATE",
            )
            .bind(tenant_id)
            .bind(&key.key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
            if let Some((hash, run_id, expires_at)) = existing {
                tx.commit().await.map_err(classify)?;
                if hash != key.request_hash {
                    return Ok(Idempotent::Mismatch(run_id));
                }
                let row = sqlx::query(include_str!("sql/run_select.sql"))
                    .bind(tenant_id)
                    .bind(run_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                return match row {
                    Some(row) => Ok(Idempotent::Existing(run_from_row(&row).map_err(classify)?)),
                    // The run was deleted while its key lives: the key still names it.
                    None => Ok(Idempotent::Deleted(run_id, expires_at)),
                };
            }
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, run_id, expires_at)
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8 / 1000))
                 ON CONFLICT (tenant_id, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, run_id = EXCLUDED.run_id,
                     created_at = now(), expires_at = EXCLUDED.expires_at
                 WHERE idempotency_keys.expires_at <= now()",
            )
            .bind(tenant_id)
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(params.id)
            .bind(key.window_ms)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            if inserted.rows_affected() == 0 {
                // A live key appeared since our look-up: read it again.
                tx.rollback().await.map_err(classify)?;
                continue;
            }
            // Planned once, as on the group commit's pool (see PlanCache::Generic): left to
            // choose, PostgreSQL plans this insert anew on every execution.
            sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            // No run back (its job changed since it was read): the key is rolled back too.
            let run = inserted_one(insert_runs(&mut tx, vec![params.clone()]).await?)?;
            tx.commit().await.map_err(classify)?;
            return Ok(Idempotent::Created(run));
        }
        Err(StoreError::Conflict(format!(
            "idempotency key {:?} is being used by a concurrent request; retry",
            key.key
        )))
    }

    async fn queue_list(&self, tenant_id: i64) -> StoreResult<Vec<QueueInfo>> {
        let rows = sqlx::query(include_str!("sql/queue_list.sql"))
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let counts: Value = row.try_get("counts")?;
                Ok(QueueInfo {
                    name: row.try_get("name")?,
                    paused: row.try_get("paused")?,
                    concurrency_limit: row.try_get("concurrency_limit")?,
                    counts: counts
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(classify)
    }

    async fn queue_put(&self, p: QueuePutParams) -> StoreResult<QueueInfo> {
        sqlx::query(include_str!("sql/queue_put.sql"))
            .bind(p.tenant_id)
            .bind(&p.name)
            .bind(p.paused)
            .bind(p.concurrency_limit.is_some())
            .bind(p.concurrency_limit.flatten())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        // Resuming or raising a limit may make runs claimable: wake the runners.
        sqlx::query("SELECT pg_notify('sandfire_enqueued', $1)")
            .bind(&p.name)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        let queues = self.queue_list(p.tenant_id).await?;
        queues
            .into_iter()
            .find(|q| q.name == p.name)
            .ok_or_else(|| StoreError::Other(sqlx::Error::RowNotFound))
    }

    async fn run_promote_due(&self, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(include_str!("sql/promote_due.sql"))
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn run_next_due(&self) -> StoreResult<(Option<DateTime<Utc>>, DateTime<Utc>)> {
        let row = sqlx::query(
            "SELECT (SELECT min(due_at) FROM run_queue
                     WHERE state IN ('scheduled', 'retrying')) AS next, now() AS now",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok((
            row.try_get("next").map_err(classify)?,
            row.try_get("now").map_err(classify)?,
        ))
    }
}
