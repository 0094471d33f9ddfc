//! Manual control of one run: cancel, retry, delete.
//!
//! Each operation locks the run (scoped by `tenant_id`), decides from its current state, and
//! writes with a guarded statement (`AND state IN (...)`) in the same transaction, so a
//! concurrent change (a claim, a completion) can never slip between the check and the write.
//! A running run is never ended here: the cancel only records the request and notifies
//! `sandfire_cancel`; the runner holding the attempt interrupts it and completes the run as
//! `cancelled` through its lease-guarded write.

use uuid::Uuid;

use super::postgres::classify;
use super::{PgStore, StoreResult};
use crate::model::RunState;

/// What `run_cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCancel {
    /// No such run for this tenant.
    NotFound,
    /// The run was not running: it is `cancelled` now.
    Cancelled,
    /// The run is running: its runner was asked to interrupt the attempt.
    CancelRequested,
    /// The run had already ended in this state.
    Ended(RunState),
}

/// What `run_retry` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRetry {
    NotFound,
    /// The run is `enqueued` again for a new attempt.
    Retried,
    /// Only `failed` and `cancelled` runs can be retried; the run is in this state.
    NotRetryable(RunState),
}

/// What `run_delete` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunDelete {
    NotFound,
    /// The run, its attempts, history and logs are gone.
    Deleted,
    /// Only terminal runs can be deleted; the run is in this state.
    NotEnded(RunState),
}

/// Who the API's own cancels and retries name in the run's history.
pub const VIA_API: &str = "via API";

/// Cancel, retry and delete. Implemented for PostgreSQL below.
#[async_trait::async_trait]
pub trait RunControlStore {
    /// Cancels a run that has not ended: at once unless running, else by request.
    async fn run_cancel(&self, tenant_id: i64, id: Uuid) -> StoreResult<RunCancel> {
        self.run_cancel_by(tenant_id, id, VIA_API).await
    }
    /// Re-enqueues a `failed` or `cancelled` run for a new attempt.
    async fn run_retry(&self, tenant_id: i64, id: Uuid) -> StoreResult<RunRetry> {
        self.run_retry_by(tenant_id, id, VIA_API).await
    }
    /// [`RunControlStore::run_cancel`], naming who asked (`actor`, e.g. "via dashboard (key
    /// sfk_1234abcd)") in the history's reason ("cancelled {actor}").
    async fn run_cancel_by(&self, tenant_id: i64, id: Uuid, actor: &str) -> StoreResult<RunCancel>;
    /// [`RunControlStore::run_retry`], naming who asked ("retried {actor}").
    async fn run_retry_by(&self, tenant_id: i64, id: Uuid, actor: &str) -> StoreResult<RunRetry>;
    /// Deletes a terminal run with its attempts, history and logs.
    async fn run_delete(&self, tenant_id: i64, id: Uuid) -> StoreResult<RunDelete>;
}

impl PgStore {
    /// Locks the run and returns its state (`None`: no such run for this tenant).
    async fn run_lock_state(
        tx: &mut sqlx::PgConnection,
        tenant_id: i64,
        id: Uuid,
    ) -> Result<Option<RunState>, sqlx::Error> {
        // run_queue first: the order claims, completions and rescues lock them in.
        sqlx::query("SELECT 1 FROM run_queue WHERE run_id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query_scalar("SELECT state FROM runs WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(tx)
            .await
    }
}

#[async_trait::async_trait]
impl RunControlStore for PgStore {
    async fn run_cancel_by(&self, tenant_id: i64, id: Uuid, actor: &str) -> StoreResult<RunCancel> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let Some(state) = PgStore::run_lock_state(&mut tx, tenant_id, id)
            .await
            .map_err(classify)?
        else {
            return Ok(RunCancel::NotFound);
        };
        let (sql, done) = match state {
            RunState::Scheduled | RunState::Awaiting | RunState::Enqueued | RunState::Retrying => {
                (include_str!("sql/control_cancel.sql"), RunCancel::Cancelled)
            }
            RunState::Running => (
                include_str!("sql/control_cancel_request.sql"),
                RunCancel::CancelRequested,
            ),
            ended => return Ok(RunCancel::Ended(ended)),
        };
        let mut query = sqlx::query(sql).bind(tenant_id).bind(id);
        if done == RunCancel::Cancelled {
            query = query.bind(actor);
        }
        let changed = query
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected();
        if changed != 1 {
            // Unreachable while the row lock holds; refuse rather than report a cancel.
            return Err(super::StoreError::Conflict(format!(
                "run {id} changed while it was being cancelled; try again"
            )));
        }
        tx.commit().await.map_err(classify)?;
        Ok(done)
    }

    async fn run_retry_by(&self, tenant_id: i64, id: Uuid, actor: &str) -> StoreResult<RunRetry> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let Some(state) = PgStore::run_lock_state(&mut tx, tenant_id, id)
            .await
            .map_err(classify)?
        else {
            return Ok(RunRetry::NotFound);
        };
        if !matches!(state, RunState::Failed | RunState::Cancelled) {
            return Ok(RunRetry::NotRetryable(state));
        }
        let retried: Option<Uuid> = sqlx::query_scalar(include_str!("sql/control_retry.sql"))
            .bind(tenant_id)
            .bind(id)
            .bind(actor)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        if retried.is_none() {
            return Err(super::StoreError::Conflict(format!(
                "run {id} changed while it was being retried; try again"
            )));
        }
        tx.commit().await.map_err(classify)?;
        Ok(RunRetry::Retried)
    }

    async fn run_delete(&self, tenant_id: i64, id: Uuid) -> StoreResult<RunDelete> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let Some(state) = PgStore::run_lock_state(&mut tx, tenant_id, id)
            .await
            .map_err(classify)?
        else {
            return Ok(RunDelete::NotFound);
        };
        if !state.is_terminal() {
            return Ok(RunDelete::NotEnded(state));
        }
        let deleted: i64 = sqlx::query_scalar(include_str!("sql/control_delete.sql"))
            .bind(tenant_id)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        if deleted != 1 {
            return Err(super::StoreError::Conflict(format!(
                "run {id} still has continuations waiting for it; try again"
            )));
        }
        tx.commit().await.map_err(classify)?;
        Ok(RunDelete::Deleted)
    }
}
