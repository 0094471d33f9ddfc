//! What `/metrics` reads from the database at scrape time (see `crate::metrics`): one bounded
//! statement over the hot table `run_queue`. Everything else the runner counts in memory.

use super::postgres::classify;
use super::{PgStore, StoreResult};

/// Runs of one queue (of one tenant, when asked per tenant) by state, now.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueFigures {
    pub queue: String,
    /// The tenant's name when read per tenant, else empty.
    pub tenant: String,
    pub enqueued: i64,
    pub running: i64,
    pub scheduled: i64,
    pub retrying: i64,
    /// Seconds since the oldest enqueued run became due (0 when none waits).
    pub oldest_enqueued_age_s: f64,
}

#[async_trait::async_trait]
pub trait MetricsStore {
    /// Queue figures per queue (and per tenant when `per_tenant`), at most `limit` groups,
    /// the largest first.
    async fn metrics_queues(&self, per_tenant: bool, limit: i64) -> StoreResult<Vec<QueueFigures>>;
}

#[async_trait::async_trait]
impl MetricsStore for PgStore {
    async fn metrics_queues(&self, per_tenant: bool, limit: i64) -> StoreResult<Vec<QueueFigures>> {
        sqlx::query_as(include_str!("sql/metrics_queues.sql"))
            .bind(per_tenant)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }
}
