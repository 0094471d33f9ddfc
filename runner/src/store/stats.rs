//! The rollup of ended attempts (`run_stats`): runners add their sums (see `crate::stats`); the
//! dashboard's charts and usage pages read it. Every read is a range of one bucket width, so
//! its cost depends on the time range and the number of jobs, never on the number of runs.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::postgres::classify;
use super::{PgStore, StoreResult};
use crate::model::Outcome;

/// One row of the rollup: the sums of one runner for one bucket, tenant, job and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub width_s: i32,
    pub bucket: DateTime<Utc>,
    pub tenant_id: i64,
    pub job_id: i64,
    pub outcome: Outcome,
    pub attempts: i64,
    pub runs_ended: i64,
    pub fuel_used: i64,
    pub duration_ms: i64,
    pub peak_memory_max: i64,
}

/// Attempts of one outcome in one bucket (every runner and job added up).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatsPoint {
    pub bucket: DateTime<Utc>,
    pub outcome: Outcome,
    pub attempts: i64,
    /// Of them, attempts that ended their run.
    pub runs_ended: i64,
}

/// One tenant's use of the runner on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageDay {
    pub tenant: String,
    pub day: NaiveDate,
    pub attempts: i64,
    pub attempts_ok: i64,
    pub runs_ended: i64,
    pub fuel_used: i64,
    pub duration_ms: i64,
    pub peak_memory_max: i64,
    /// Requests refused by the tenant's quotas, and which (`enqueue_per_s 3, …`).
    pub limit_hits: i64,
    pub limit_detail: String,
}

/// A job's share of the use since a day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobUsage {
    pub tenant: String,
    pub job: String,
    pub fuel_used: i64,
    pub attempts: i64,
    pub duration_ms: i64,
}

#[async_trait::async_trait]
pub trait StatsStore {
    /// Adds `rows` (sums of runner `runner_id`) to the rollup.
    async fn stats_add(&self, runner_id: Uuid, rows: &[StatsRow]) -> StoreResult<()>;
    /// Attempts per bucket and outcome of width `width_s` since `since`; `tenant_id` `None`:
    /// every tenant.
    async fn stats_series(
        &self,
        tenant_id: Option<i64>,
        width_s: i32,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<StatsPoint>>;
    /// Usage per tenant per day since `since`, newest day first, at most `limit` rows.
    async fn stats_usage(
        &self,
        tenant_id: Option<i64>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<UsageDay>>;
    /// The `limit` jobs that used the most fuel since `since`.
    async fn stats_top_jobs(
        &self,
        tenant_id: Option<i64>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<JobUsage>>;
    /// Deletes up to `limit` rows past retention (10-second rows after `fine_ms`, the others
    /// after `coarse_ms`), under the pruning lock; `None` when another runner holds it.
    async fn stats_prune(
        &self,
        fine_ms: i64,
        coarse_ms: i64,
        limit: i64,
    ) -> StoreResult<Option<u64>>;
}

#[async_trait::async_trait]
impl StatsStore for PgStore {
    async fn stats_add(&self, runner_id: Uuid, rows: &[StatsRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&StatsRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        sqlx::query(include_str!("sql/stats_add.sql"))
            .bind(runner_id)
            .bind(rows.iter().map(|r| r.width_s).collect::<Vec<i32>>())
            .bind(rows.iter().map(|r| r.bucket).collect::<Vec<_>>())
            .bind(col(|r| r.tenant_id))
            .bind(col(|r| r.job_id))
            .bind(rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
            .bind(col(|r| r.attempts))
            .bind(col(|r| r.runs_ended))
            .bind(col(|r| r.fuel_used))
            .bind(col(|r| r.duration_ms))
            .bind(col(|r| r.peak_memory_max))
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn stats_series(
        &self,
        tenant_id: Option<i64>,
        width_s: i32,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<StatsPoint>> {
        sqlx::query_as::<_, StatsPoint>(include_str!("sql/stats_series.sql"))
            .bind(width_s)
            .bind(since)
            .bind(tenant_id)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn stats_usage(
        &self,
        tenant_id: Option<i64>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<UsageDay>> {
        sqlx::query_as::<_, UsageDay>(include_str!("sql/stats_usage.sql"))
            .bind(since)
            .bind(tenant_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn stats_top_jobs(
        &self,
        tenant_id: Option<i64>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<JobUsage>> {
        sqlx::query_as::<_, JobUsage>(include_str!("sql/stats_top_jobs.sql"))
            .bind(since)
            .bind(tenant_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn stats_prune(
        &self,
        fine_ms: i64,
        coarse_ms: i64,
        limit: i64,
    ) -> StoreResult<Option<u64>> {
        self.prune_locked(include_str!("sql/prune_stats.sql"), |q| {
            q.bind(fine_ms).bind(coarse_ms).bind(limit)
        })
        .await
    }
}
