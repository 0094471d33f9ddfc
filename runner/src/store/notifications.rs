//! LISTEN/NOTIFY with reconnection: the one loop every listener of the runner uses (the
//! worker's wake-ups and cancels, the cron service's schedule changes).
//!
//! It never gives up: on a lost connection or a failed LISTEN it backs off (at most 1.6 s, so a
//! runner resumes promptly after a database restart) and reconnects. After every (re)connect
//! it calls `on_connect`, because notifications sent while not listening are lost: callers use
//! it to look for missed work.

use std::time::Duration;

/// A run became ready in the queue named by the payload.
pub const ENQUEUED: &str = "sandfire_enqueued";
/// A delayed run or a retry was scheduled: the promoter may need to wake earlier.
pub const SCHEDULED: &str = "sandfire_scheduled";
/// A running run was cancelled (payload: its id).
pub const CANCEL: &str = "sandfire_cancel";
/// A key, tenant or tenant limit changed (sent by the database, migration 0014): forget the
/// API keys checked recently.
pub const KEYS: &str = "sandfire_keys";

use sqlx::postgres::{PgListener, PgNotification, PgPool};
use tokio_util::sync::CancellationToken;

/// Listens on `channels` until `stop`, calling `on_notification` for each notification.
pub async fn listen(
    pool: PgPool,
    channels: &[&str],
    on_connect: impl Fn(),
    on_notification: impl Fn(&PgNotification),
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen_all(channels.iter().copied()).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            r = connected => match r {
                Ok(l) => l,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, ?channels, "LISTEN failed; polling until it reconnects");
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
        on_connect();
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => on_notification(&n),
                    Ok(None) => {
                        tracing::warn!(?channels, "LISTEN connection lost; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ?channels, "LISTEN failed; reconnecting");
                        break;
                    }
                },
                _ = stop.cancelled() => return,
            }
        }
    }
}
