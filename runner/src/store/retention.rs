//! Retention: deleting what is old enough to forget (ended runs, batches without runs, expired
//! idempotency keys, old records of fired schedule times), in bounded batches.
//!
//! Every statement deletes at most `limit` rows in its own short transaction, so pruning never
//! holds locks for long and never bloats one transaction, and it runs only while holding the
//! transaction-level advisory lock [`PRUNE_LOCK`], so one runner prunes at a time (another
//! runner's attempt returns `None` and skips the pass). Nothing here touches a run that has not
//! ended.

use super::postgres::classify;
use super::{PgStore, StoreResult};

/// The advisory lock key held by whoever is pruning ("SFPRUNE" in ASCII). Other advisory lock
/// users in Sandfire must pick a different key.
pub const PRUNE_LOCK: i64 = 0x0053_4650_5255_4e45;

#[derive(Debug, Clone, Copy)]
pub struct RunPruneParams {
    /// `succeeded` and `cancelled` runs finished longer ago than this are deleted.
    pub succeeded_ms: i64,
    /// `failed` runs finished longer ago than this are deleted.
    pub failed_ms: i64,
    /// Most runs deleted by one call.
    pub limit: i64,
    /// Only runs with an id at least this (the last id the previous call of the same pass
    /// deleted; nil to start a pass): each pass reads the kept runs once, not once per call.
    pub from: uuid::Uuid,
}

/// What one call of [`RetentionStore::run_prune`] deleted.
#[derive(Debug, Clone, Copy)]
pub struct RunsPruned {
    pub deleted: u64,
    /// The largest id deleted (the next call's `from`).
    pub last: Option<uuid::Uuid>,
}

/// Pruning. Each method returns how many rows it deleted, or `None` when another runner holds
/// [`PRUNE_LOCK`] right now.
#[async_trait::async_trait]
pub trait RetentionStore {
    /// Deletes expired terminal runs (with attempts, history, logs), oldest first. Keeps members
    /// of batches still in progress and any run a continuation still waits for.
    async fn run_prune(&self, params: RunPruneParams) -> StoreResult<Option<RunsPruned>>;
    /// Deletes batches none of whose runs (members or continuations) exist any more.
    async fn batch_prune(&self, limit: i64) -> StoreResult<Option<u64>>;
    /// Deletes expired idempotency keys.
    async fn idempotency_key_prune(&self, limit: i64) -> StoreResult<Option<u64>>;
    /// Deletes records of fired schedule times recorded more than `older_than_ms` ago that can
    /// never be fired again (before their schedule's next fire time; never a schedule's latest).
    async fn schedule_fire_prune(&self, older_than_ms: i64, limit: i64)
    -> StoreResult<Option<u64>>;
    /// Deletes job versions that are not current, older than `older_than_ms` and referenced by
    /// no run, with the component bytes no other version uses.
    async fn job_version_prune(&self, older_than_ms: i64, limit: i64) -> StoreResult<Option<u64>>;
}

impl PgStore {
    /// Runs one bounded delete under the pruning lock, in its own transaction.
    pub(super) async fn prune_locked(
        &self,
        sql: &'static str,
        bind: impl FnOnce(
            sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
        )
            -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Option<u64>> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        if !locked {
            return Ok(None);
        }
        let deleted = bind(sqlx::query(sql))
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected();
        tx.commit().await.map_err(classify)?;
        Ok(Some(deleted))
    }
}

#[async_trait::async_trait]
impl RetentionStore for PgStore {
    async fn run_prune(&self, p: RunPruneParams) -> StoreResult<Option<RunsPruned>> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        if !locked {
            return Ok(None);
        }
        let (deleted, last): (i64, Option<uuid::Uuid>) =
            sqlx::query_as(include_str!("sql/prune_runs.sql"))
                .bind(p.succeeded_ms)
                .bind(p.failed_ms)
                .bind(p.limit)
                .bind(p.from)
                .fetch_one(&mut *tx)
                .await
                .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(RunsPruned {
            deleted: deleted as u64,
            last,
        }))
    }

    async fn batch_prune(&self, limit: i64) -> StoreResult<Option<u64>> {
        self.prune_locked(include_str!("sql/prune_batches.sql"), |q| q.bind(limit))
            .await
    }

    async fn idempotency_key_prune(&self, limit: i64) -> StoreResult<Option<u64>> {
        self.prune_locked(include_str!("sql/prune_idempotency_keys.sql"), |q| {
            q.bind(limit)
        })
        .await
    }

    async fn schedule_fire_prune(
        &self,
        older_than_ms: i64,
        limit: i64,
    ) -> StoreResult<Option<u64>> {
        self.prune_locked(include_str!("sql/prune_schedule_fires.sql"), |q| {
            q.bind(older_than_ms).bind(limit)
        })
        .await
    }

    async fn job_version_prune(&self, older_than_ms: i64, limit: i64) -> StoreResult<Option<u64>> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        if !locked {
            return Ok(None);
        }
        let deleted: i64 = sqlx::query_scalar(include_str!("sql/prune_job_versions.sql"))
            .bind(older_than_ms)
            .bind(limit)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(deleted as u64))
    }
}
