//! The rescuer: attempts whose lease expired — their runner was killed, hung, partitioned or
//! lost the database for longer than the lease — end as `runner_lost`, and their runs are
//! retried (or failed) per policy. Also expires runners that stopped heart-beating.
//! Leader-only; the statements are safe with several runners anyway (SKIP LOCKED).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Most runs rescued in one statement.
const BATCH: i64 = 1000;

pub async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    runner_ttl: Duration,
    max_backoff_ms: u64,
    stop: CancellationToken,
) {
    loop {
        loop {
            match store.run_rescue(BATCH, max_backoff_ms as i64).await {
                Ok(rescued) => {
                    if !rescued.is_empty() {
                        tracing::warn!(runs = rescued.len(), "rescued runs of lost runners");
                    }
                    if (rescued.len() as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rescuing runs failed");
                    break;
                }
            }
        }
        match store.runner_expire(runner_ttl.as_millis() as i64).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(runners = n, "expired runners that stopped heart-beating"),
            Err(e) => tracing::warn!(error = %e, "expiring runners failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {},
            _ = stop.cancelled() => return,
        }
    }
}
