//! The pruner: deletes ended runs past their retention period (with their attempts, history and
//! logs), batches left without runs, expired idempotency keys, old records of fired schedule
//! times, unused old job versions and rollup rows (`run_stats`) past their retention.
//!
//! Every `prune_interval` it deletes in bounded batches of `prune_batch` rows, each batch its own
//! short transaction, until nothing expired is left. Only one runner prunes at a time: it runs on
//! the elected maintenance leader, and each statement also needs the database's pruning lock
//! (`store::PRUNE_LOCK`), so even two leaders could not prune at once (one skips its pass). It
//! never touches a run that has not ended.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::RetentionSettings;
use crate::store::{RunPruneParams, Store, StoreResult};

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub runs: u64,
    pub batches: u64,
    pub idempotency_keys: u64,
    pub schedule_fires: u64,
    pub job_versions: u64,
    pub stats_rows: u64,
    /// Another runner held the pruning lock, so this pass stopped early.
    pub skipped: bool,
}

impl PruneReport {
    fn with_skip(self) -> PruneReport {
        PruneReport {
            skipped: true,
            ..self
        }
    }

    fn deleted(&self) -> u64 {
        self.runs
            + self.batches
            + self.idempotency_keys
            + self.schedule_fires
            + self.job_versions
            + self.stats_rows
    }
}

/// Prunes every `prune_interval` until `stop`. The first pass comes one interval after start, so
/// a runner that just started (or just became leader) does not begin with a burst of deletes.
pub async fn run(store: Arc<dyn Store>, settings: RetentionSettings, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.prune_interval) => {},
            _ = stop.cancelled() => return,
        }
        match prune(store.as_ref(), &settings, &stop).await {
            Ok(report) if report.deleted() > 0 => {
                tracing::info!(
                    runs = report.runs,
                    batches = report.batches,
                    idempotency_keys = report.idempotency_keys,
                    schedule_fires = report.schedule_fires,
                    job_versions = report.job_versions,
                    stats_rows = report.stats_rows,
                    "pruned expired rows"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; trying again next interval"),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Repeats one bounded delete until it deletes fewer than `limit` rows (or `stop`). `None`: the
/// pruning lock was held elsewhere.
async fn drain<F, Fut>(
    limit: i64,
    stop: &CancellationToken,
    mut step: F,
) -> StoreResult<Option<u64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<Option<u64>>>,
{
    let mut total = 0;
    loop {
        let Some(n) = step().await? else {
            return Ok(None);
        };
        total += n;
        if n < limit as u64 || stop.is_cancelled() {
            return Ok(Some(total));
        }
    }
}

/// One pass: deletes everything expired, a bounded batch per statement.
pub async fn prune(
    store: &dyn Store,
    settings: &RetentionSettings,
    stop: &CancellationToken,
) -> StoreResult<PruneReport> {
    let limit = i64::try_from(settings.prune_batch.max(1)).unwrap_or(i64::MAX);
    let mut runs = RunPruneParams {
        succeeded_ms: millis(settings.retention_succeeded),
        failed_ms: millis(settings.retention_failed),
        limit,
        from: uuid::Uuid::nil(),
    };
    // Fire records outlive the runs they made: kept as long as the longest run retention.
    let fires_ms = runs.succeeded_ms.max(runs.failed_ms);
    let mut report = PruneReport::default();
    // Runs first: batches become prunable once their runs are gone.
    loop {
        let Some(pruned) = store.run_prune(runs).await? else {
            return Ok(report.with_skip());
        };
        report.runs += pruned.deleted;
        match pruned.last {
            Some(last) if pruned.deleted >= limit as u64 && !stop.is_cancelled() => {
                runs.from = last;
            }
            _ => break,
        }
    }
    let Some(n) = drain(limit, stop, || store.batch_prune(limit)).await? else {
        return Ok(report.with_skip());
    };
    report.batches = n;
    let Some(n) = drain(limit, stop, || store.idempotency_key_prune(limit)).await? else {
        return Ok(report.with_skip());
    };
    report.idempotency_keys = n;
    let Some(n) = drain(limit, stop, || store.schedule_fire_prune(fires_ms, limit)).await? else {
        return Ok(report.with_skip());
    };
    report.schedule_fires = n;
    // Versions last: runs pruned above may have been the last to reference one.
    let versions_ms = millis(settings.retention_versions);
    let Some(n) = drain(limit, stop, || store.job_version_prune(versions_ms, limit)).await? else {
        return Ok(report.with_skip());
    };
    report.job_versions = n;
    let (fine_ms, coarse_ms) = (
        millis(settings.retention_stats_fine),
        millis(settings.retention_stats),
    );
    let Some(n) = drain(limit, stop, || store.stats_prune(fine_ms, coarse_ms, limit)).await? else {
        return Ok(report.with_skip());
    };
    report.stats_rows = n;
    Ok(report)
}
