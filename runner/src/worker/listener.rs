//! Wakes the claim loop when runs become ready, via PostgreSQL LISTEN/NOTIFY on the
//! `sandfire_enqueued` channel (sent by the run-state trigger). Reconnects on its own; the claim
//! loop's slow poll covers any notification missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::WorkerContext;

pub const CHANNEL: &str = "sandfire_enqueued";

pub(super) async fn run(ctx: Arc<WorkerContext>, wake: Arc<Notify>, stop: CancellationToken) {
    let Some(pool) = ctx.store.pg_pool() else {
        return;
    };
    let mut failures = 0u32;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            r = connected => match r {
                Ok(l) => l,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "LISTEN failed; polling until it reconnects");
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            },
            _ = stop.cancelled() => return,
        };
        failures = 0;
        // Anything enqueued while we were not listening is picked up now.
        wake.notify_one();
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => {
                        if ctx.settings.queues.iter().any(|q| q == n.payload()) {
                            wake.notify_one();
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("LISTEN connection lost; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN failed; reconnecting");
                        break;
                    }
                },
                _ = stop.cancelled() => return,
            }
        }
    }
}
