//! The rescuer: attempts whose lease expired — their runner was killed, hung, partitioned or
//! lost the database for longer than the lease — end as `runner_lost`, and their runs are
//! retried (or failed) per policy. Also expires runners that stopped heart-beating.
//! Leader-only; the statements are safe with several runners anyway (SKIP LOCKED).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backoff::backoff_delay;
use crate::metrics::Metrics;
use crate::store::{Rescue, Store, StoreError, StoreResult};

/// Most runs rescued in one statement.
const BATCH: i64 = 1000;

pub async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    runner_ttl: Duration,
    max_backoff_ms: u64,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        loop {
            match rescue(store.as_ref(), max_backoff_ms).await {
                Ok((rescued, more)) => {
                    metrics.leases_rescued(rescued.len() as u64);
                    if !rescued.is_empty() {
                        tracing::warn!(runs = rescued.len(), "rescued runs of lost runners");
                    }
                    if !more {
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

/// One bounded rescue: reads expired leases, times each retry with the runner's one backoff
/// function, and ends them (a lease renewed meanwhile is left alone).
async fn rescue(store: &dyn Store, max_backoff_ms: u64) -> StoreResult<(Vec<uuid::Uuid>, bool)> {
    let expired = store.lease_expired(BATCH).await?;
    let rescues: Vec<Rescue> = expired
        .iter()
        .map(|e| Rescue {
            run_id: e.run_id,
            lease_token: e.lease_token,
            delay_ms: backoff_delay(
                e.backoff_base_ms.max(0) as u64,
                e.attempt.max(1) as u32,
                max_backoff_ms,
            ) as i64,
        })
        .collect();
    let rescued = match store.run_rescue(&rescues).await {
        Ok(rescued) => rescued,
        Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
        Err(e) => {
            // One row the database refuses must not stall every rescue after it: rescue the
            // others one by one and leave the bad one logged.
            tracing::error!(error = %e, "rescuing a batch failed; rescuing one run at a time");
            let mut rescued = Vec::new();
            for r in &rescues {
                match store.run_rescue(std::slice::from_ref(r)).await {
                    Ok(ids) => rescued.extend(ids),
                    Err(e) => tracing::error!(run = %r.run_id, error = %e, "rescue refused"),
                }
            }
            rescued
        }
    };
    // A full read means more may be waiting.
    Ok((rescued, expired.len() as i64 == BATCH))
}
