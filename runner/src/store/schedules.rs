//! Schedules in the database: create-or-replace by name, read with their latest runs, pause,
//! resume, delete, trigger, and the firing of due fire times.
//!
//! Firing is one transaction per schedule: lock the most overdue schedule (`SKIP LOCKED`, so
//! runners never wait for each other), plan with the database's now (`crate::schedule`), record
//! each fire time in `schedule_fires` and create its run in the same statement — a fire time
//! recorded before creates nothing — then advance `next_fire_at`. Every tenant-facing query is
//! scoped by `tenant_id`. Nothing here decides what a fire time is; `crate::schedule` does.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Acquire, PgConnection, Row};
use uuid::Uuid;

use super::postgres::classify;
use super::{PgStore, StoreError, StoreResult};
use crate::config::{OptionError, ResolvedOptions, RunLimits, RunOptions};
use crate::model::RunState;
use crate::schedule::{FirePlan, Misfire, MisfirePolicy, Timetable};

/// NOTIFY channel: a schedule was created, changed or resumed; firing services re-read their
/// next due time.
pub const SCHEDULES_CHANNEL: &str = "sandfire_schedules";

/// What to do when a fire time comes while an earlier run of the schedule is still active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// Fire anyway: runs of one schedule may run at the same time.
    Allow,
    /// Record the fire time as skipped while a run of the schedule is active.
    Skip,
}

impl OverlapPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            OverlapPolicy::Allow => "allow",
            OverlapPolicy::Skip => "skip",
        }
    }

    pub fn parse(s: &str) -> Option<OverlapPolicy> {
        [OverlapPolicy::Allow, OverlapPolicy::Skip]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A tenant's schedule as stored.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    pub job_id: i64,
    pub job: String,
    pub cron: String,
    pub timezone: String,
    pub input: Value,
    pub misfire: Misfire,
    pub overlap: OverlapPolicy,
    pub paused: bool,
    /// The schedule's own run options (absent ones come from the job, then the runner).
    pub options: RunOptions,
    /// The first fire time not yet fired; `None` while paused or when it never fires again.
    pub next_fire_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The database's clock when this was read.
    pub read_at: DateTime<Utc>,
}

/// A run a schedule created (by a fire time, or by a trigger when `fire_at` is `None`).
#[derive(Debug, Clone)]
pub struct ScheduleRun {
    pub id: Uuid,
    pub state: RunState,
    pub fire_at: Option<DateTime<Utc>>,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A fire time that created no run, and why.
#[derive(Debug, Clone)]
pub struct SkippedFire {
    pub fire_at: DateTime<Utc>,
    pub reason: String,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SchedulePutParams {
    pub tenant_id: i64,
    pub name: String,
    pub job_id: i64,
    pub timetable: Timetable,
    pub input: Value,
    pub misfire: Misfire,
    pub overlap: OverlapPolicy,
    pub paused: bool,
    pub options: RunOptions,
    /// Quota: the most schedules the tenant may have (checked when this creates one).
    pub max_schedules: Option<i32>,
}

/// What a create-or-replace did.
#[derive(Debug, Clone)]
pub struct SchedulePut {
    pub schedule: Schedule,
    /// The name was new.
    pub created: bool,
    /// Something was written (false for a repeated identical PUT).
    pub changed: bool,
}

#[derive(Debug, Clone)]
pub struct ScheduleTriggerParams {
    pub tenant_id: i64,
    pub name: String,
    pub run_id: Uuid,
}

/// What a manual trigger did.
#[derive(Debug, Clone)]
pub enum ScheduleTrigger {
    NotFound,
    /// The run was created, `enqueued`.
    Created(Uuid),
    /// Overlap `skip` and this run of the schedule is still active: nothing was created.
    Busy {
        run: Uuid,
        state: RunState,
    },
    /// The schedule's and job's options are outside this runner's limits.
    InvalidOptions(OptionError),
}

/// What one firing transaction did for one due schedule.
#[derive(Debug, Clone)]
pub struct ScheduleFired {
    pub schedule_id: i64,
    pub tenant_id: i64,
    pub name: String,
    /// Fire times with the run each created.
    pub runs: Vec<(DateTime<Utc>, Uuid)>,
    /// Fire times recorded without a run, with the reason.
    pub skipped: Vec<(DateTime<Utc>, String)>,
    /// Fire times that had been fired already (by another runner or before a restart).
    pub already_fired: usize,
    /// Due fire times dropped or coalesced by the misfire policy, from this one on.
    pub missed_since: Option<DateTime<Utc>>,
    pub next_fire_at: Option<DateTime<Utc>>,
}

/// Schedules. Implemented for PostgreSQL below.
#[async_trait::async_trait]
pub trait ScheduleStore {
    /// Creates or replaces the tenant's schedule of that name.
    async fn schedule_put(&self, params: SchedulePutParams) -> StoreResult<SchedulePut>;
    async fn schedule_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<Schedule>>;
    /// Up to `limit` schedules named after `after`, by name.
    async fn schedule_list(
        &self,
        tenant_id: i64,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Schedule>>;
    /// The latest `limit` runs of each schedule, newest first, in `schedule_ids` order.
    async fn schedule_runs(
        &self,
        tenant_id: i64,
        schedule_ids: &[i64],
        limit: i64,
    ) -> StoreResult<Vec<(i64, ScheduleRun)>>;
    /// The latest fire times of a schedule that created no run.
    async fn schedule_skipped(
        &self,
        tenant_id: i64,
        schedule_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<SkippedFire>>;
    /// Deletes the schedule; its runs stay (their `schedule_id` is cleared). False if none.
    async fn schedule_delete(&self, tenant_id: i64, name: &str) -> StoreResult<bool>;
    /// Pauses (`paused`) or resumes a schedule. A resume continues from the database's now:
    /// fire times that passed while paused are not fired. Repeating either changes nothing.
    async fn schedule_set_paused(
        &self,
        tenant_id: i64,
        name: &str,
        paused: bool,
    ) -> StoreResult<Option<Schedule>>;
    /// Creates a run of the schedule now, not tied to a fire time.
    async fn schedule_trigger(
        &self,
        params: ScheduleTriggerParams,
        limits: &RunLimits,
    ) -> StoreResult<ScheduleTrigger>;
    /// Fires the due fire times of the most overdue schedule no other runner is firing.
    /// `None` when no such schedule is due.
    async fn schedule_fire_due(&self, limits: &RunLimits) -> StoreResult<Option<ScheduleFired>>;
    /// The earliest `next_fire_at` of all schedules, and the database's now.
    async fn schedule_next_due(&self) -> StoreResult<(Option<DateTime<Utc>>, DateTime<Utc>)>;
}

fn unsigned(row: &PgRow, name: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(name)?.map(|v| v as u64))
}

/// Run options from the schedule's columns, or (`job`) from the job's (`job_max_attempts`, ...).
fn options_from_row(row: &PgRow, job: bool) -> Result<RunOptions, sqlx::Error> {
    let col = |name: &'static str, job_name: &'static str| if job { job_name } else { name };
    Ok(RunOptions {
        max_attempts: row
            .try_get::<Option<i32>, _>(col("max_attempts", "job_max_attempts"))?
            .map(|v| v as u32),
        timeout_ms: unsigned(row, col("timeout_ms", "job_timeout_ms"))?,
        fuel: unsigned(row, col("fuel", "job_fuel"))?,
        memory_mb: row
            .try_get::<Option<i32>, _>(col("memory_mb", "job_memory_mb"))?
            .map(|v| v as u32),
        backoff_base_ms: unsigned(row, col("backoff_base_ms", "job_backoff_base_ms"))?,
        queue: row.try_get(col("queue", "job_queue"))?,
        priority: row.try_get(col("priority", "job_priority"))?,
    })
}

fn misfire_from_row(row: &PgRow) -> Result<Misfire, sqlx::Error> {
    let policy: String = row.try_get("misfire")?;
    let decode = |what: &str| sqlx::Error::Decode(what.to_string().into());
    Ok(Misfire {
        policy: MisfirePolicy::parse(&policy).ok_or_else(|| decode("misfire policy"))?,
        max: row
            .try_get::<Option<i32>, _>("misfire_max")?
            .map_or(0, |v| v as u32),
        grace_ms: row.try_get::<i64, _>("misfire_grace_ms")? as u64,
    })
}

fn overlap_from_row(row: &PgRow) -> Result<OverlapPolicy, sqlx::Error> {
    let overlap: String = row.try_get("overlap")?;
    OverlapPolicy::parse(&overlap)
        .ok_or_else(|| sqlx::Error::Decode("overlap policy".to_string().into()))
}

pub(super) fn schedule_from_row(row: &PgRow) -> Result<Schedule, sqlx::Error> {
    Ok(Schedule {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        job_id: row.try_get("job_id")?,
        job: row.try_get("job")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        input: row.try_get("input")?,
        misfire: misfire_from_row(row)?,
        overlap: overlap_from_row(row)?,
        paused: row.try_get("paused")?,
        options: options_from_row(row, false)?,
        next_fire_at: row.try_get("next_fire_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        read_at: row.try_get("read_at")?,
    })
}

/// A schedule locked for firing or triggering, with what its runs need.
struct Locked {
    id: i64,
    tenant_id: i64,
    name: String,
    job_id: i64,
    version: i32,
    cron: String,
    timezone: String,
    input: Value,
    misfire: Misfire,
    overlap: OverlapPolicy,
    /// Schedule options over the job's defaults.
    options: RunOptions,
    next_fire_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

fn locked_from_row(row: &PgRow) -> Result<Locked, sqlx::Error> {
    Ok(Locked {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        job_id: row.try_get("job_id")?,
        version: row.try_get("current_version")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        input: row.try_get("input")?,
        misfire: misfire_from_row(row)?,
        overlap: overlap_from_row(row)?,
        options: options_from_row(row, false)?.or(&options_from_row(row, true)?),
        next_fire_at: row.try_get("next_fire_at")?,
        now: row.try_get("now")?,
    })
}

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_i32(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A run of the schedule that has not ended, if any (the overlap check).
async fn active_run(
    tx: &mut PgConnection,
    schedule_id: i64,
) -> Result<Option<(Uuid, RunState)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT run_id AS id, state FROM run_queue WHERE schedule_id = $1 LIMIT 1")
            .bind(schedule_id)
            .fetch_optional(tx)
            .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("state")?)))
        .transpose()
}

/// Inserts a run of the locked schedule; for a fire time, only if it was never recorded.
async fn run_insert(
    tx: &mut PgConnection,
    s: &Locked,
    fire_at: Option<DateTime<Utc>>,
    id: Uuid,
    options: &ResolvedOptions,
    reason: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(include_str!("sql/schedule_run_insert.sql"))
        .bind(s.id)
        .bind(fire_at)
        .bind(id)
        .bind(s.tenant_id)
        .bind(s.job_id)
        .bind(s.version)
        .bind(&options.queue)
        .bind(options.priority)
        .bind(&s.input)
        .bind(opt_i32(Some(options.max_attempts)))
        .bind(opt_i64(Some(options.timeout_ms)))
        .bind(opt_i64(Some(options.fuel)))
        .bind(opt_i32(Some(options.memory_mb)))
        .bind(opt_i64(Some(options.backoff_base_ms)))
        .bind(reason)
        .fetch_optional(tx)
        .await
}

async fn fire_skip(
    tx: &mut PgConnection,
    schedule_id: i64,
    fire_at: DateTime<Utc>,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO schedule_fires (schedule_id, fire_at, skipped) VALUES ($1, $2, $3)
         ON CONFLICT (schedule_id, fire_at) DO NOTHING",
    )
    .bind(schedule_id)
    .bind(fire_at)
    .bind(reason)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn notify_schedules(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(SCHEDULES_CHANNEL)
        .execute(tx)
        .await?;
    Ok(())
}

impl PgStore {
    async fn schedule_select(
        &self,
        conn: &mut PgConnection,
        tenant_id: i64,
        name: &str,
    ) -> Result<Option<Schedule>, sqlx::Error> {
        let row = sqlx::query(include_str!("sql/schedule_select.sql"))
            .bind(tenant_id)
            .bind(name)
            .bind(None::<String>)
            .bind(1i64)
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    /// Fires the due fire times of one locked schedule, inside the caller's transaction.
    async fn schedule_fire_locked(
        tx: &mut PgConnection,
        s: &Locked,
        limits: &RunLimits,
    ) -> StoreResult<ScheduleFired> {
        let pending = s.next_fire_at.unwrap_or(s.now);
        let plan = match Timetable::parse(&s.cron, &s.timezone) {
            Ok(timetable) => timetable.plan(pending, s.now, &s.misfire),
            Err(e) => {
                // Validated when stored, so only a changed time zone database gets here. Stop
                // the schedule instead of retrying it forever; a PUT with a valid zone revives it.
                tracing::error!(schedule = s.id, error = %e, "stored timetable no longer parses; \
                    the schedule stops firing until it is updated");
                FirePlan {
                    fire: Vec::new(),
                    next_fire_at: None,
                    missed_since: Some(pending),
                }
            }
        };
        let mut fired = ScheduleFired {
            schedule_id: s.id,
            tenant_id: s.tenant_id,
            name: s.name.clone(),
            runs: Vec::new(),
            skipped: Vec::new(),
            already_fired: 0,
            missed_since: plan.missed_since,
            next_fire_at: plan.next_fire_at,
        };
        // The job's defaults were valid when set, but the runner's limits may have shrunk.
        let invalid = s.options.validate(limits).err();
        let options = s.options.resolve(limits);
        for &fire_at in &plan.fire {
            let skip = match &invalid {
                Some(e) => Some(format!(
                    "the run options are outside this runner's limits ({e}): update the schedule \
                     or the job's defaults"
                )),
                None if s.overlap == OverlapPolicy::Skip => active_run(&mut *tx, s.id)
                    .await
                    .map_err(classify)?
                    .map(|(run, state)| {
                        format!(
                            "overlap: run {run} of this schedule is still {}",
                            state.as_str()
                        )
                    }),
                None => None,
            };
            if let Some(reason) = skip {
                if fire_skip(&mut *tx, s.id, fire_at, &reason)
                    .await
                    .map_err(classify)?
                {
                    fired.skipped.push((fire_at, reason));
                } else {
                    fired.already_fired += 1;
                }
                continue;
            }
            let reason = format!("fired by schedule {} for {}", s.name, rfc3339(fire_at));
            // A savepoint: a run the database refuses skips its fire time (recorded, logged)
            // instead of stalling the schedule and every schedule due after it.
            let mut savepoint = Acquire::begin(&mut *tx).await.map_err(classify)?;
            match run_insert(
                &mut savepoint,
                s,
                Some(fire_at),
                Uuid::now_v7(),
                &options,
                &reason,
            )
            .await
            {
                Ok(inserted) => {
                    savepoint.commit().await.map_err(classify)?;
                    match inserted {
                        Some(id) => fired.runs.push((fire_at, id)),
                        None => fired.already_fired += 1,
                    }
                }
                Err(e) => match classify(e) {
                    StoreError::Unavailable(e) => return Err(StoreError::Unavailable(e)),
                    e => {
                        savepoint.rollback().await.map_err(classify)?;
                        tracing::error!(schedule = s.id, fire_at = %fire_at, error = %e,
                            "creating a fired run failed; the fire time is skipped");
                        let reason = "the run could not be created (the runner's log says why)";
                        if fire_skip(&mut *tx, s.id, fire_at, reason)
                            .await
                            .map_err(classify)?
                        {
                            fired.skipped.push((fire_at, reason.to_string()));
                        }
                    }
                },
            }
        }
        sqlx::query("UPDATE schedules SET next_fire_at = $2 WHERE id = $1")
            .bind(s.id)
            .bind(plan.next_fire_at)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        Ok(fired)
    }
}

#[async_trait::async_trait]
impl ScheduleStore for PgStore {
    async fn schedule_put(&self, p: SchedulePutParams) -> StoreResult<SchedulePut> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        let next_fire_at = if p.paused {
            None
        } else {
            p.timetable.next_after(now)
        };
        let o = &p.options;
        let written = sqlx::query(include_str!("sql/schedule_upsert.sql"))
            .bind(p.tenant_id)
            .bind(&p.name)
            .bind(p.job_id)
            .bind(p.timetable.cron().source())
            .bind(p.timetable.timezone().name())
            .bind(&p.input)
            .bind(p.misfire.policy.as_str())
            .bind((p.misfire.policy == MisfirePolicy::FireAll).then_some(p.misfire.max as i32))
            .bind(i64::try_from(p.misfire.grace_ms).unwrap_or(i64::MAX))
            .bind(p.overlap.as_str())
            .bind(p.paused)
            .bind(opt_i32(o.max_attempts))
            .bind(opt_i64(o.timeout_ms))
            .bind(opt_i64(o.fuel))
            .bind(opt_i32(o.memory_mb))
            .bind(opt_i64(o.backoff_base_ms))
            .bind(&o.queue)
            .bind(o.priority)
            .bind(next_fire_at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let created = match &written {
            Some(row) => row.try_get::<bool, _>("created").map_err(classify)?,
            None => false,
        };
        if created && let Some(max) = p.max_schedules {
            let count: i64 =
                sqlx::query_scalar("SELECT count(*) FROM schedules WHERE tenant_id = $1")
                    .bind(p.tenant_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
            if count > i64::from(max) {
                // Dropping the transaction rolls the new schedule back.
                return Err(StoreError::QuotaExceeded {
                    limit: "max_schedules",
                    value: i64::from(max),
                });
            }
        }
        if written.is_some() {
            notify_schedules(&mut tx).await.map_err(classify)?;
        }
        let schedule = self
            .schedule_select(&mut tx, p.tenant_id, &p.name)
            .await
            .map_err(classify)?
            .ok_or(StoreError::Other(sqlx::Error::RowNotFound))?;
        tx.commit().await.map_err(classify)?;
        Ok(SchedulePut {
            schedule,
            created,
            changed: written.is_some(),
        })
    }

    async fn schedule_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<Schedule>> {
        let mut conn = self.pool().acquire().await.map_err(classify)?;
        self.schedule_select(&mut conn, tenant_id, name)
            .await
            .map_err(classify)
    }

    async fn schedule_list(
        &self,
        tenant_id: i64,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Schedule>> {
        let rows = sqlx::query(include_str!("sql/schedule_select.sql"))
            .bind(tenant_id)
            .bind(None::<String>)
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(schedule_from_row)
            .collect::<Result<_, _>>()
            .map_err(classify)
    }

    async fn schedule_runs(
        &self,
        tenant_id: i64,
        schedule_ids: &[i64],
        limit: i64,
    ) -> StoreResult<Vec<(i64, ScheduleRun)>> {
        let rows = sqlx::query(include_str!("sql/schedule_runs.sql"))
            .bind(tenant_id)
            .bind(schedule_ids)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("schedule_id")?,
                    ScheduleRun {
                        id: row.try_get("id")?,
                        state: row.try_get("state")?,
                        fire_at: row.try_get("fire_at")?,
                        scheduled_at: row.try_get("scheduled_at")?,
                        created_at: row.try_get("created_at")?,
                        finished_at: row.try_get("finished_at")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(classify)
    }

    async fn schedule_skipped(
        &self,
        tenant_id: i64,
        schedule_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<SkippedFire>> {
        let rows = sqlx::query(include_str!("sql/schedule_skipped.sql"))
            .bind(tenant_id)
            .bind(schedule_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(SkippedFire {
                    fire_at: row.try_get("fire_at")?,
                    reason: row.try_get("skipped")?,
                    recorded_at: row.try_get("recorded_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(classify)
    }

    async fn schedule_delete(&self, tenant_id: i64, name: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let id: Option<i64> = sqlx::query_scalar(
            "DELETE FROM schedules WHERE tenant_id = $1 AND name = $2 RETURNING id",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some(id) = id else {
            return Ok(false);
        };
        // Its runs stay, without it. A statement of its own: its snapshot also sees the run of
        // a fire that committed while the delete waited for the schedule's lock.
        sqlx::query("UPDATE runs SET schedule_id = NULL WHERE schedule_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn schedule_set_paused(
        &self,
        tenant_id: i64,
        name: &str,
        paused: bool,
    ) -> StoreResult<Option<Schedule>> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let row = sqlx::query(
            "SELECT id, cron, timezone, paused, now() AS now FROM schedules
             WHERE tenant_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id").map_err(classify)?;
        let was_paused: bool = row.try_get("paused").map_err(classify)?;
        if was_paused != paused {
            let next_fire_at = if paused {
                None
            } else {
                let cron: String = row.try_get("cron").map_err(classify)?;
                let timezone: String = row.try_get("timezone").map_err(classify)?;
                let now: DateTime<Utc> = row.try_get("now").map_err(classify)?;
                Timetable::parse(&cron, &timezone)
                    .map_err(|e| StoreError::Invalid(format!("the stored timetable: {e}")))?
                    .next_after(now)
            };
            sqlx::query(
                "UPDATE schedules SET paused = $2, next_fire_at = $3, updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(paused)
            .bind(next_fire_at)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            if !paused {
                notify_schedules(&mut tx).await.map_err(classify)?;
            }
        }
        let schedule = self
            .schedule_select(&mut tx, tenant_id, name)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(schedule)
    }

    async fn schedule_trigger(
        &self,
        p: ScheduleTriggerParams,
        limits: &RunLimits,
    ) -> StoreResult<ScheduleTrigger> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let row = sqlx::query(include_str!("sql/schedule_lock.sql"))
            .bind(p.tenant_id)
            .bind(&p.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(ScheduleTrigger::NotFound);
        };
        let s = locked_from_row(&row).map_err(classify)?;
        if let Err(e) = s.options.validate(limits) {
            return Ok(ScheduleTrigger::InvalidOptions(e));
        }
        if s.overlap == OverlapPolicy::Skip
            && let Some((run, state)) = active_run(&mut tx, s.id).await.map_err(classify)?
        {
            return Ok(ScheduleTrigger::Busy { run, state });
        }
        let reason = format!("triggered manually via schedule {}", s.name);
        let id = run_insert(
            &mut tx,
            &s,
            None,
            p.run_id,
            &s.options.resolve(limits),
            &reason,
        )
        .await
        .map_err(classify)?
        .ok_or(StoreError::Other(sqlx::Error::RowNotFound))?;
        tx.commit().await.map_err(classify)?;
        Ok(ScheduleTrigger::Created(id))
    }

    async fn schedule_fire_due(&self, limits: &RunLimits) -> StoreResult<Option<ScheduleFired>> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let row = sqlx::query(include_str!("sql/schedule_due.sql"))
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let schedule = locked_from_row(&row).map_err(classify)?;
        let fired = PgStore::schedule_fire_locked(&mut tx, &schedule, limits).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(fired))
    }

    async fn schedule_next_due(&self) -> StoreResult<(Option<DateTime<Utc>>, DateTime<Utc>)> {
        let row = sqlx::query(
            "SELECT (SELECT min(s.next_fire_at) FROM schedules s
                     JOIN tenants t ON t.id = s.tenant_id
                     WHERE s.next_fire_at IS NOT NULL AND t.disabled_at IS NULL) AS next,
                    now() AS now",
        )
        .fetch_one(self.pool())
        .await
        .map_err(classify)?;
        Ok((
            row.try_get("next").map_err(classify)?,
            row.try_get("now").map_err(classify)?,
        ))
    }
}
