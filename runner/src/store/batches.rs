//! Batches: runs created atomically together, plus continuations that wait for all of them.
//!
//! A batch is written in one transaction (the batch row, every member `enqueued`, every
//! continuation `awaiting` on the batch), so a client never sees half a batch. Completion is not
//! decided here: the `runs_resolve_dependents` trigger (migrations/0002) finishes the batch and
//! starts or cancels its continuations in the same transaction as the last member's final state
//! change. Cancelling a batch marks it first, so that trigger cancels the continuations too.
//! Every query is scoped by `tenant_id`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::postgres::classify;
use super::{PgStore, StoreResult};
use crate::config::ResolvedOptions;
use crate::model::RunState;

/// One run to create in a batch: a member, or (with `on`) a continuation of the batch.
#[derive(Debug, Clone)]
pub struct BatchRunParams {
    pub id: Uuid,
    pub job_id: i64,
    pub version: i32,
    pub options: ResolvedOptions,
    pub input: Value,
}

/// A continuation of a batch: starts when the batch finishes under `on` (`succeeded`,
/// `failed` or `finished`), else is cancelled.
#[derive(Debug, Clone)]
pub struct BatchContinuationParams {
    pub run: BatchRunParams,
    pub on: String,
}

#[derive(Debug, Clone)]
pub struct BatchCreateParams {
    pub id: Uuid,
    pub tenant_id: i64,
    /// The members; at least one.
    pub runs: Vec<BatchRunParams>,
    pub then: Vec<BatchContinuationParams>,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: Uuid,
    /// Members created with the batch (deleted members still count).
    pub total: i32,
    pub created_at: DateTime<Utc>,
    /// When every member had reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A created batch with the ids of its runs, in request order.
#[derive(Debug, Clone)]
pub struct BatchCreated {
    pub batch: Batch,
    pub runs: Vec<Uuid>,
    pub then: Vec<Uuid>,
}

/// A run of a batch, as the batch view lists it.
#[derive(Debug, Clone)]
pub struct BatchRun {
    pub id: Uuid,
    pub job: String,
    pub state: RunState,
    /// For continuations: the condition they wait for.
    pub on: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BatchDetail {
    pub batch: Batch,
    /// Members by state; every state is present (zero when none).
    pub counts: BTreeMap<&'static str, i64>,
    /// Members deleted since (by the API or retention); they were terminal.
    pub deleted: i64,
    /// Terminal (or deleted) members as a percentage of `total`, rounded down.
    pub progress: i64,
    pub continuations: Vec<BatchRun>,
    /// The members, when asked for.
    pub runs: Option<Vec<BatchRun>>,
}

/// What cancelling a batch did.
#[derive(Debug, Clone)]
pub enum BatchCancel {
    /// No such batch for this tenant.
    NotFound,
    /// Every member had already ended (and the batch was not cancelled): nothing to cancel.
    Finished,
    /// The batch is marked cancelled; `cancelled` members were cancelled at once and
    /// `cancel_requested` running members were asked to stop.
    Cancelled {
        cancelled: u64,
        cancel_requested: u64,
    },
}

/// Batches in the store. Implemented for PostgreSQL below.
#[async_trait::async_trait]
pub trait BatchStore {
    /// Creates the batch, its members and its continuations in one transaction.
    async fn batch_create(&self, params: BatchCreateParams) -> StoreResult<BatchCreated>;
    /// The batch with counts per state and its continuations (and members if `with_runs`).
    async fn batch_get(
        &self,
        tenant_id: i64,
        id: Uuid,
        with_runs: bool,
    ) -> StoreResult<Option<BatchDetail>>;
    /// Marks the batch cancelled and cancels every member not yet ended (running ones are
    /// asked to stop, like `run_cancel`); its continuations are then cancelled by the database.
    async fn batch_cancel(&self, tenant_id: i64, id: Uuid) -> StoreResult<BatchCancel>;
}

fn batch_from_row(row: &sqlx::postgres::PgRow) -> Result<Batch, sqlx::Error> {
    Ok(Batch {
        id: row.try_get("id")?,
        total: row.try_get("total")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
    })
}

fn batch_run_from_row(row: &sqlx::postgres::PgRow) -> Result<BatchRun, sqlx::Error> {
    Ok(BatchRun {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        state: row.try_get("state")?,
        on: row.try_get("after_on")?,
    })
}

/// Options are u64/u32 in Rust and bigint/integer in SQL; limits keep them far below the max.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A batch's `finished_at` and `cancelled_at`.
type BatchEnds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Most attempts at a transaction that lost a deadlock against concurrent completions.
const CONFLICT_RETRIES: u32 = 3;

/// Most runs one insert statement of a batch carries.
const INSERT_CHUNK: usize = 5_000;

impl PgStore {
    async fn batch_cancel_once(
        &self,
        tenant_id: i64,
        id: Uuid,
    ) -> Result<BatchCancel, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let batch: Option<BatchEnds> = sqlx::query_as(
            "SELECT finished_at, cancelled_at FROM batches WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        match batch {
            None => return Ok(BatchCancel::NotFound),
            Some((Some(_), None)) => return Ok(BatchCancel::Finished),
            Some(_) => {}
        }
        // Members first, in id order, then the batch row: a completing member takes its run
        // and then the batch, so taking the batch first could deadlock with it.
        sqlx::query(include_str!("sql/batch_lock_members.sql"))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let marked: Option<Uuid> = sqlx::query_scalar(include_str!("sql/batch_mark_cancelled.sql"))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if marked.is_none() {
            // The last member ended between the first read and the locks.
            return Ok(BatchCancel::Finished);
        }
        let reason = format!("batch {id} cancelled via API");
        let (cancelled, cancel_requested): (i64, i64) =
            sqlx::query_as(include_str!("sql/batch_cancel_members.sql"))
                .bind(tenant_id)
                .bind(id)
                .bind(&reason)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(BatchCancel::Cancelled {
            cancelled: cancelled as u64,
            cancel_requested: cancel_requested as u64,
        })
    }
}

#[async_trait::async_trait]
impl BatchStore for PgStore {
    async fn batch_create(&self, p: BatchCreateParams) -> StoreResult<BatchCreated> {
        let n = p.runs.len() + p.then.len();
        let mut ids = Vec::with_capacity(n);
        let mut jobs = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut priorities = Vec::with_capacity(n);
        let mut inputs = Vec::with_capacity(n);
        let mut max_attempts = Vec::with_capacity(n);
        let mut timeouts = Vec::with_capacity(n);
        let mut fuels = Vec::with_capacity(n);
        let mut memories = Vec::with_capacity(n);
        let mut backoffs = Vec::with_capacity(n);
        let mut ons: Vec<Option<String>> = Vec::with_capacity(n);
        let members = p.runs.iter().map(|r| (r, None));
        let continuations = p.then.iter().map(|c| (&c.run, Some(c.on.clone())));
        for (run, on) in members.chain(continuations) {
            ids.push(run.id);
            jobs.push(run.job_id);
            versions.push(run.version);
            queues.push(run.options.queue.clone());
            priorities.push(run.options.priority);
            inputs.push(run.input.clone());
            max_attempts.push(to_i32(run.options.max_attempts));
            timeouts.push(to_i64(run.options.timeout_ms));
            fuels.push(to_i64(run.options.fuel));
            memories.push(to_i32(run.options.memory_mb));
            backoffs.push(to_i64(run.options.backoff_base_ms));
            ons.push(on);
        }
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let row = sqlx::query(
            "INSERT INTO batches (id, tenant_id, total, pending) VALUES ($1, $2, $3, $3)
             RETURNING id, total, created_at, finished_at, cancelled_at",
        )
        .bind(p.id)
        .bind(p.tenant_id)
        .bind(i32::try_from(p.runs.len()).unwrap_or(i32::MAX))
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        let batch = batch_from_row(&row).map_err(classify)?;
        // In chunks, so one statement never carries a whole 100k-run batch.
        for start in (0..n).step_by(INSERT_CHUNK) {
            let end = (start + INSERT_CHUNK).min(n);
            sqlx::query(include_str!("sql/batch_insert_runs.sql"))
                .bind(p.id)
                .bind(p.tenant_id)
                .bind(&ids[start..end])
                .bind(&jobs[start..end])
                .bind(&versions[start..end])
                .bind(&queues[start..end])
                .bind(&priorities[start..end])
                .bind(&inputs[start..end])
                .bind(&max_attempts[start..end])
                .bind(&timeouts[start..end])
                .bind(&fuels[start..end])
                .bind(&memories[start..end])
                .bind(&backoffs[start..end])
                .bind(&ons[start..end])
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        let then = ids.split_off(p.runs.len());
        Ok(BatchCreated {
            batch,
            runs: ids,
            then,
        })
    }

    async fn batch_get(
        &self,
        tenant_id: i64,
        id: Uuid,
        with_runs: bool,
    ) -> StoreResult<Option<BatchDetail>> {
        // One snapshot for the batch row, the counts and the lists, so they agree.
        let mut tx = self.pool().begin().await.map_err(classify)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(row) = sqlx::query(
            "SELECT id, total, created_at, finished_at, cancelled_at
             FROM batches WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?
        else {
            return Ok(None);
        };
        let batch = batch_from_row(&row).map_err(classify)?;
        let counted: Vec<(RunState, i64)> = sqlx::query_as(
            "SELECT state, count(*) FROM runs
             WHERE tenant_id = $1 AND batch_id = $2 GROUP BY state",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        let mut counts: BTreeMap<&'static str, i64> =
            RunState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut present = 0;
        let mut unfinished = 0;
        for (state, count) in counted {
            counts.insert(state.as_str(), count);
            present += count;
            if !state.is_terminal() {
                unfinished += count;
            }
        }
        let total = i64::from(batch.total);
        // Only terminal runs can be deleted, so a missing member counts as ended.
        let progress = if total == 0 {
            100
        } else {
            (total - unfinished).max(0) * 100 / total
        };
        let continuations = sqlx::query(include_str!("sql/batch_continuations.sql"))
            .bind(tenant_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?
            .iter()
            .map(batch_run_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(classify)?;
        let runs = if with_runs {
            Some(
                sqlx::query(include_str!("sql/batch_members.sql"))
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(classify)?
                    .iter()
                    .map(batch_run_from_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(classify)?,
            )
        } else {
            None
        };
        tx.commit().await.map_err(classify)?;
        Ok(Some(BatchDetail {
            batch,
            counts,
            deleted: (total - present).max(0),
            progress,
            continuations,
            runs,
        }))
    }

    async fn batch_cancel(&self, tenant_id: i64, id: Uuid) -> StoreResult<BatchCancel> {
        let mut tries = 0;
        loop {
            match self.batch_cancel_once(tenant_id, id).await {
                Err(e) if is_retryable_conflict(&e) && tries < CONFLICT_RETRIES => tries += 1,
                Err(e) => return Err(classify(e)),
                Ok(done) => return Ok(done),
            }
        }
    }
}

/// A deadlock or serialization failure: the transaction was rolled back and may be retried.
fn is_retryable_conflict(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}
