//! The promoter: `scheduled` and `retrying` runs become `enqueued` when due.
//!
//! It sleeps until the earliest due time (read with the database clock, so runner clock skew
//! does not matter), is woken early when this runner schedules something (`wake`) or any runner
//! does (`sandfire_scheduled`, which it listens for itself, so a leader started with
//! `--no-worker` wakes too), and re-checks at least every `max_sleep` in case a notification
//! was lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::store::notifications::{SCHEDULED, listen};

/// Most runs promoted in one statement.
const BATCH: i64 = 1000;

pub async fn run(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    max_sleep: Duration,
    stop: CancellationToken,
) {
    // The listener stops with the promoter, however the promoter ends.
    let listen_stop = stop.child_token();
    let _stop_listening = listen_stop.clone().drop_guard();
    if let Some(pool) = store.pg_pool() {
        let (wake, stop) = (wake.clone(), listen_stop);
        tokio::spawn(async move {
            // Scheduled while not listening: look again on (re)connect.
            let on_connect = || wake.notify_one();
            let on_notification = |_: &sqlx::postgres::PgNotification| wake.notify_one();
            listen(pool, &[SCHEDULED], on_connect, on_notification, stop).await;
        });
    }
    let mut failures = 0u32;
    loop {
        let sleep = match promote(store.as_ref()).await {
            Ok(next) => {
                failures = 0;
                next.map_or(max_sleep, |d| d.min(max_sleep))
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "promoting due runs failed; backing off");
                Duration::from_millis(100 * 2u64.pow(failures.min(4)))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {},
            _ = wake.notified() => {},
            _ = stop.cancelled() => return,
        }
    }
}

/// Promotes everything due; returns how long until the next run is due.
async fn promote(store: &dyn Store) -> Result<Option<Duration>, crate::store::StoreError> {
    while store.run_promote_due(BATCH).await? == BATCH as u64 {}
    let (next, now) = store.run_next_due().await?;
    // A due run we could not lock is being promoted by another runner: look again shortly.
    Ok(next.map(|next| {
        (next - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(2))
    }))
}
