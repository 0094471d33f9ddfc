//! PostgreSQL LISTEN/NOTIFY for the worker: `sandfire_enqueued` (a run became ready: wake the
//! claim loop), `sandfire_scheduled` (a delayed run or retry appeared: wake the promoter so it
//! can sleep until the new due time) and `sandfire_cancel` (a running run was cancelled:
//! interrupt its attempt if this runner executes it). Reconnects on its own; the claim loop's
//! slow poll and the heartbeat's cancel check cover anything missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::WorkerContext;

pub const ENQUEUED: &str = "sandfire_enqueued";
pub const SCHEDULED: &str = "sandfire_scheduled";
pub const CANCEL: &str = "sandfire_cancel";

pub(super) async fn run(ctx: Arc<WorkerContext>, wake: Arc<Notify>, stop: CancellationToken) {
    let Some(pool) = ctx.store.pg_pool() else {
        return;
    };
    let mut failures = 0u32;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen_all([ENQUEUED, SCHEDULED, CANCEL]).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            r = connected => match r {
                Ok(l) => l,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "LISTEN failed; polling until it reconnects");
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(4)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            },
            _ = stop.cancelled() => return,
        };
        failures = 0;
        // Anything enqueued or scheduled while we were not listening is picked up now.
        wake.notify_one();
        ctx.promoter.notify_one();
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => match n.channel() {
                        ENQUEUED if ctx.settings.queues.iter().any(|q| q == n.payload()) => {
                            wake.notify_one();
                        }
                        SCHEDULED => ctx.promoter.notify_one(),
                        CANCEL => {
                            if let Ok(run_id) = n.payload().parse() {
                                ctx.in_flight.cancel_run(run_id);
                            }
                        }
                        _ => {}
                    },
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
