//! What the dashboard (`/ui`) reads and writes beyond what the JSON API does: its sessions, the
//! overview's counts, the run list with the latest outcome and a tenant column, and log pages
//! read from the end.
//!
//! Every query is scoped: `tenant_id: Some(id)` reads one tenant's rows only, `None` (the admin's
//! sessions, and nothing else) reads every tenant's. Every list is keyset-paged and every count
//! is either exact over the hot table (`run_queue`) or bounded by a window of the newest runs:
//! nothing here may scan all of `runs`.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::postgres::classify;
use super::{LogLine, PgStore, StoreResult, Tenant};
use crate::model::{Level, Outcome, RunState};
use crate::store::KeyRole;

/// A new session as stored.
#[derive(Debug, Clone)]
pub struct UiSessionCreateParams {
    /// SHA-256 of the session id (the cookie's value); the id itself is never stored.
    pub id_hash: Vec<u8>,
    pub admin: bool,
    /// The API key's hash, or a SHA-256 of the admin token.
    pub key_hash: Vec<u8>,
    pub role: KeyRole,
    /// `None` for the admin.
    pub tenant_id: Option<i64>,
    pub ttl_ms: i64,
}

/// A live session with its credential as it is now.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub admin: bool,
    pub key_hash: Vec<u8>,
    /// For a tenant session: the key's prefix, its current role and its tenant. `None` when the
    /// key or the tenant was disabled (the session is over).
    pub key: Option<(String, KeyRole, Tenant)>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The dashboard's run list: filters, scope and a keyset cursor.
#[derive(Debug, Clone, Default)]
pub struct UiRunListParams {
    pub tenant_id: Option<i64>,
    pub state: Option<RunState>,
    pub job: Option<String>,
    pub queue: Option<String>,
    pub outcome: Option<Outcome>,
    pub version: Option<i32>,
    /// Runs older than this id (the "Older" link).
    pub before: Option<Uuid>,
    /// Runs newer than this id (the "Newer" link).
    pub after: Option<Uuid>,
    /// Runs created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Runs created before this time.
    pub created_before: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// One row of the dashboard's run list.
#[derive(Debug, Clone)]
pub struct UiRunRow {
    pub id: Uuid,
    pub tenant: String,
    pub job: String,
    pub version: i32,
    pub state: RunState,
    pub queue: String,
    pub priority: i16,
    /// The first 200 characters.
    pub error: Option<String>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub progress: Option<i16>,
    /// The outcome of the run's latest attempt, once it ended.
    pub last_outcome: Option<Outcome>,
    pub last_duration_ms: Option<i64>,
}

/// Log lines of one run, read from either end.
#[derive(Debug, Clone)]
pub struct UiLogParams {
    pub tenant_id: i64,
    pub run_id: Uuid,
    pub attempt: Option<i32>,
    /// Lines at this level or above.
    pub min_level: Option<Level>,
    /// Lines before this id, newest first (the tail and "load earlier").
    pub before: Option<i64>,
    /// Lines after this id, oldest first (the live tail); wins over `before`.
    pub after: Option<i64>,
    pub limit: i64,
}

/// One row of the dashboard's job list: the job with its current version.
#[derive(Debug, Clone)]
pub struct UiJobRow {
    pub id: i64,
    pub tenant: String,
    pub name: String,
    pub version: i32,
    pub digest: String,
    pub size: i32,
    pub uploaded_at: DateTime<Utc>,
    pub versions: i64,
}

/// One version's attempts among the job's newest runs: outcome counts (in the order of
/// `ui::view::OUTCOMES`) and percentiles of what the finished attempts measured.
#[derive(Debug, Clone)]
pub struct UiJobVersionStats {
    pub version: i32,
    pub attempts: i64,
    pub outcomes: [i64; 8],
    pub duration_ms: (Option<i64>, Option<i64>),
    pub fuel: (Option<i64>, Option<i64>),
    pub memory: (Option<i64>, Option<i64>),
}

/// One row of the dashboard's schedule list.
#[derive(Debug, Clone)]
pub struct UiScheduleRow {
    pub tenant: String,
    pub schedule: super::Schedule,
}

/// The latest run of a schedule: (schedule id, run id, state, created).
pub type UiScheduleLastRun = (i64, Uuid, RunState, DateTime<Utc>);

/// One queue of one tenant, with its active runs (exact, from `run_queue`).
#[derive(Debug, Clone)]
pub struct UiQueueRow {
    pub tenant: String,
    pub name: String,
    pub paused: bool,
    pub concurrency_limit: Option<i32>,
    pub enqueued: i64,
    pub running: i64,
    pub scheduled: i64,
    pub retrying: i64,
    /// When the oldest enqueued run became due, and the database's now.
    pub oldest_due: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// One batch in the dashboard's list, with its progress counters.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UiBatchRow {
    pub id: Uuid,
    pub tenant: String,
    pub total: i32,
    /// Members not yet ended.
    pub pending: i32,
    /// Members that ended other than succeeded.
    pub unsuccessful: i32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// The dashboard's reads and its sessions. Implemented for PostgreSQL below.
#[async_trait::async_trait]
pub trait UiStore {
    async fn ui_session_create(&self, params: UiSessionCreateParams) -> StoreResult<()>;
    /// The session with this id hash, unless it expired.
    async fn ui_session_get(&self, id_hash: &[u8]) -> StoreResult<Option<UiSession>>;
    /// Records that the session was used now.
    async fn ui_session_touch(&self, id_hash: &[u8]) -> StoreResult<()>;
    async fn ui_session_delete(&self, id_hash: &[u8]) -> StoreResult<()>;
    /// Deletes up to `limit` expired sessions; returns how many.
    async fn ui_session_prune(&self, limit: i64) -> StoreResult<u64>;
    /// Runs waiting or running, by state (exact).
    async fn ui_active_counts(&self, tenant_id: Option<i64>) -> StoreResult<Vec<(RunState, i64)>>;
    /// Runs by state among the newest `window` runs.
    async fn ui_window_counts(
        &self,
        tenant_id: Option<i64>,
        window: i64,
    ) -> StoreResult<Vec<(RunState, i64)>>;
    /// The tenant owning a run (for the admin, who reads every tenant's runs).
    async fn ui_run_tenant(&self, id: Uuid) -> StoreResult<Option<(i64, String)>>;
    /// A page of runs, newest first.
    async fn ui_run_list(&self, params: UiRunListParams) -> StoreResult<Vec<UiRunRow>>;
    /// A page of log lines in id order; `None` when the tenant has no such run.
    async fn ui_log_list(&self, params: UiLogParams) -> StoreResult<Vec<LogLine>>;
    /// A page of jobs ordered by tenant and name, after `after` (tenant, job).
    async fn ui_job_list(
        &self,
        tenant_id: Option<i64>,
        after: Option<(String, String)>,
        limit: i64,
    ) -> StoreResult<Vec<UiJobRow>>;
    /// A page of schedules ordered by tenant and name, after `after` (tenant, schedule).
    async fn ui_schedule_list(
        &self,
        tenant_id: Option<i64>,
        after: Option<(String, String)>,
        limit: i64,
    ) -> StoreResult<Vec<UiScheduleRow>>;
    /// The latest run of each schedule.
    async fn ui_schedule_last_runs(
        &self,
        tenant_id: Option<i64>,
        schedule_ids: &[i64],
    ) -> StoreResult<Vec<UiScheduleLastRun>>;
    /// Up to `limit` queues (with settings or active runs), by tenant and name.
    async fn ui_queue_list(
        &self,
        tenant_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<UiQueueRow>>;
    /// The tenant owning a batch (for the admin, who reads every tenant's batches).
    async fn ui_batch_tenant(&self, id: Uuid) -> StoreResult<Option<i64>>;
    /// A page of batches, newest first, older than `before`.
    async fn ui_batch_list(
        &self,
        tenant_id: Option<i64>,
        before: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<UiBatchRow>>;
    /// Per version of the job, its attempts among the job's newest `window` runs.
    async fn ui_job_stats(
        &self,
        tenant_id: i64,
        job_id: i64,
        window: i64,
    ) -> StoreResult<Vec<UiJobVersionStats>>;
}

/// The run list's statement (`ui_run_select.sql` completed): what to walk for `state` and the
/// direction (`newer`: oldest first, for a "Newer" page). Static text only: chosen here, never
/// taken from the request. Public for the bench, which plans it at 1M runs.
pub fn ui_run_list_sql(state: Option<RunState>, newer: bool) -> String {
    let (walk, key) = match state {
        Some(RunState::Enqueued | RunState::Running | RunState::Scheduled | RunState::Retrying) => {
            (
                "run_queue w JOIN runs r ON r.id = w.run_id AND w.state = $2 \
             AND ($1::int8 IS NULL OR w.tenant_id = $1) AND {bounds}",
                "w.run_id",
            )
        }
        Some(RunState::Failed) => (
            "attempts w JOIN runs r ON r.id = w.run_id AND w.number = r.attempt \
             AND w.outcome <> 'ok' AND {bounds}",
            "w.run_id",
        ),
        // A run cancelled, retried and cancelled again has two events: one row each.
        Some(RunState::Cancelled | RunState::Awaiting) => (
            "(SELECT DISTINCT w.run_id FROM run_events w \
              WHERE w.to_state = $2 AND w.to_state IN ('cancelled', 'awaiting') \
              AND {bounds}) w JOIN runs r ON r.id = w.run_id",
            "w.run_id",
        ),
        _ => ("runs r", "r.id"),
    };
    // The id bounds again on the walked key, so its index can seek to them.
    let walk = walk.replace(
        "{bounds}",
        "($7::uuid IS NULL OR w.run_id < $7) AND ($8::uuid IS NULL OR w.run_id > $8) \
         AND ($10::uuid IS NULL OR w.run_id >= $10) AND ($11::uuid IS NULL OR w.run_id < $11)",
    );
    let direction = if newer { "ASC" } else { "DESC" };
    format!(
        "{}ORDER BY {key} {direction} LIMIT $9",
        include_str!("sql/ui_run_select.sql").replace("/*walk*/", &walk)
    )
}

/// The smallest UUIDv7 of the millisecond `at` falls in: runs with a smaller id were created
/// before `at` (as `sandfire_uuid_v7_floor` in SQL).
fn uuid_v7_floor(at: DateTime<Utc>) -> Uuid {
    let ms = at.timestamp_millis().clamp(0, (1 << 48) - 1) as u128;
    Uuid::from_u128(ms << 80)
}

fn run_row(row: &sqlx::postgres::PgRow) -> Result<UiRunRow, sqlx::Error> {
    Ok(UiRunRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        job: row.try_get("job")?,
        version: row.try_get("version")?,
        state: row.try_get("state")?,
        queue: row.try_get("queue")?,
        priority: row.try_get("priority")?,
        error: row.try_get("error")?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        progress: row.try_get("progress")?,
        last_outcome: row.try_get("last_outcome")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
    })
}

fn role(text: &str) -> Result<KeyRole, sqlx::Error> {
    match text {
        "full" => Ok(KeyRole::Full),
        "read" => Ok(KeyRole::Read),
        other => Err(sqlx::Error::Decode(
            format!("unknown key role {other:?}").into(),
        )),
    }
}

#[async_trait::async_trait]
impl UiStore for PgStore {
    async fn ui_session_create(&self, p: UiSessionCreateParams) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ui_sessions (id_hash, admin, key_hash, role, tenant_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::float8 / 1000))",
        )
        .bind(&p.id_hash)
        .bind(p.admin)
        .bind(&p.key_hash)
        .bind(p.role.as_str())
        .bind(p.tenant_id)
        .bind(p.ttl_ms as f64)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn ui_session_get(&self, id_hash: &[u8]) -> StoreResult<Option<UiSession>> {
        let row = sqlx::query(include_str!("sql/ui_session_get.sql"))
            .bind(id_hash)
            .fetch_optional(self.pool())
            .await
            .map_err(classify)?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<UiSession, sqlx::Error> {
            let tenant_id: Option<i64> = row.try_get("tenant_id")?;
            let key = match tenant_id {
                None => None,
                Some(id) => Some((
                    row.try_get("key_prefix")?,
                    role(row.try_get("key_role")?)?,
                    Tenant {
                        id,
                        name: row.try_get("tenant_name")?,
                        weight: row.try_get("tenant_weight")?,
                        created_at: row.try_get("tenant_created_at")?,
                        disabled_at: row.try_get("tenant_disabled_at")?,
                    },
                )),
            };
            Ok(UiSession {
                admin: row.try_get("admin")?,
                key_hash: row.try_get("key_hash")?,
                key,
                last_seen_at: row.try_get("last_seen_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        };
        read().map(Some).map_err(classify)
    }

    async fn ui_session_touch(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE ui_sessions SET last_seen_at = now() WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn ui_session_delete(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn ui_session_prune(&self, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ui_sessions WHERE id_hash IN (
                 SELECT id_hash FROM ui_sessions WHERE expires_at <= now()
                 ORDER BY expires_at LIMIT $1)",
        )
        .bind(limit)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn ui_active_counts(&self, tenant_id: Option<i64>) -> StoreResult<Vec<(RunState, i64)>> {
        sqlx::query_as(include_str!("sql/ui_active_counts.sql"))
            .bind(tenant_id)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn ui_window_counts(
        &self,
        tenant_id: Option<i64>,
        window: i64,
    ) -> StoreResult<Vec<(RunState, i64)>> {
        sqlx::query_as(include_str!("sql/ui_window_counts.sql"))
            .bind(tenant_id)
            .bind(window)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn ui_run_tenant(&self, id: Uuid) -> StoreResult<Option<(i64, String)>> {
        sqlx::query_as(include_str!("sql/ui_run_tenant.sql"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(classify)
    }

    async fn ui_run_list(&self, p: UiRunListParams) -> StoreResult<Vec<UiRunRow>> {
        let sql = ui_run_list_sql(p.state, p.after.is_some());
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(p.tenant_id)
            .bind(p.state)
            .bind(p.job)
            .bind(p.queue)
            .bind(p.outcome)
            .bind(p.version)
            .bind(if p.after.is_some() { None } else { p.before })
            .bind(p.after)
            .bind(p.limit)
            .bind(p.created_from.map(uuid_v7_floor))
            .bind(p.created_before.map(uuid_v7_floor))
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        let mut runs = rows
            .iter()
            .map(run_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(classify)?;
        if p.after.is_some() {
            runs.reverse();
        }
        Ok(runs)
    }

    async fn ui_log_list(&self, p: UiLogParams) -> StoreResult<Vec<LogLine>> {
        let order = if p.after.is_some() {
            "ORDER BY l.id ASC LIMIT $7"
        } else {
            "ORDER BY l.id DESC LIMIT $7"
        };
        let sql = format!("{}{order}", include_str!("sql/ui_log_select.sql"));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(p.tenant_id)
            .bind(p.run_id)
            .bind(p.attempt)
            .bind(p.min_level)
            .bind(if p.after.is_some() { None } else { p.before })
            .bind(p.after)
            .bind(p.limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        let mut lines = rows
            .iter()
            .map(super::postgres::log_line_from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)?;
        if p.after.is_none() {
            lines.reverse();
        }
        Ok(lines)
    }

    async fn ui_job_list(
        &self,
        tenant_id: Option<i64>,
        after: Option<(String, String)>,
        limit: i64,
    ) -> StoreResult<Vec<UiJobRow>> {
        let (t, j) = after.unzip();
        let rows = sqlx::query(include_str!("sql/ui_job_list.sql"))
            .bind(tenant_id)
            .bind(t)
            .bind(j)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(UiJobRow {
                    id: row.try_get("id")?,
                    tenant: row.try_get("tenant")?,
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    digest: row.try_get("digest")?,
                    size: row.try_get("size")?,
                    uploaded_at: row.try_get("uploaded_at")?,
                    versions: row.try_get("versions")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)
    }

    async fn ui_job_stats(
        &self,
        tenant_id: i64,
        job_id: i64,
        window: i64,
    ) -> StoreResult<Vec<UiJobVersionStats>> {
        let rows = sqlx::query(include_str!("sql/ui_job_stats.sql"))
            .bind(job_id)
            .bind(tenant_id)
            .bind(window)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let mut outcomes = [0i64; 8];
                for (i, name) in [
                    "ok",
                    "error",
                    "out_of_fuel",
                    "memory_limit",
                    "timeout",
                    "panic",
                    "cancelled",
                    "runner_lost",
                ]
                .into_iter()
                .enumerate()
                {
                    outcomes[i] = row.try_get(name)?;
                }
                Ok(UiJobVersionStats {
                    version: row.try_get("version")?,
                    attempts: row.try_get("attempts")?,
                    outcomes,
                    duration_ms: (row.try_get("duration_p50")?, row.try_get("duration_p95")?),
                    fuel: (row.try_get("fuel_p50")?, row.try_get("fuel_p95")?),
                    memory: (row.try_get("memory_p50")?, row.try_get("memory_p95")?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)
    }

    async fn ui_schedule_list(
        &self,
        tenant_id: Option<i64>,
        after: Option<(String, String)>,
        limit: i64,
    ) -> StoreResult<Vec<UiScheduleRow>> {
        let (t, n) = after.unzip();
        let rows = sqlx::query(include_str!("sql/ui_schedule_list.sql"))
            .bind(tenant_id)
            .bind(t)
            .bind(n)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(UiScheduleRow {
                    tenant: row.try_get("tenant")?,
                    schedule: super::schedules::schedule_from_row(row)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)
    }

    async fn ui_schedule_last_runs(
        &self,
        tenant_id: Option<i64>,
        schedule_ids: &[i64],
    ) -> StoreResult<Vec<UiScheduleLastRun>> {
        sqlx::query_as(include_str!("sql/ui_schedule_last_runs.sql"))
            .bind(tenant_id)
            .bind(schedule_ids)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn ui_queue_list(
        &self,
        tenant_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<UiQueueRow>> {
        let rows = sqlx::query(include_str!("sql/ui_queue_list.sql"))
            .bind(tenant_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(UiQueueRow {
                    tenant: row.try_get("tenant")?,
                    name: row.try_get("name")?,
                    paused: row.try_get("paused")?,
                    concurrency_limit: row.try_get("concurrency_limit")?,
                    enqueued: row.try_get("enqueued")?,
                    running: row.try_get("running")?,
                    scheduled: row.try_get("scheduled")?,
                    retrying: row.try_get("retrying")?,
                    oldest_due: row.try_get("oldest_due")?,
                    now: row.try_get("now")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)
    }

    async fn ui_batch_tenant(&self, id: Uuid) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT tenant_id FROM batches WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(classify)
    }

    async fn ui_batch_list(
        &self,
        tenant_id: Option<i64>,
        before: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<UiBatchRow>> {
        sqlx::query_as::<_, UiBatchRow>(include_str!("sql/ui_batch_list.sql"))
            .bind(tenant_id)
            .bind(before)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }
}
