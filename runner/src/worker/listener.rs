//! PostgreSQL LISTEN/NOTIFY for the worker: `sandfire_enqueued` (a run became ready: wake the
//! claim loop) and `sandfire_cancel` (a running run was cancelled: interrupt its attempt if this
//! runner executes it). The promoter listens for scheduled runs itself, so a runner without a
//! worker still wakes for them. Reconnects on its own; the claim loop's
//! slow poll and the heartbeat's cancel check cover anything missed meanwhile.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::WorkerContext;
use crate::store::notifications::listen;

pub use crate::store::notifications::{CANCEL, ENQUEUED};

pub(super) async fn run(ctx: Arc<WorkerContext>, wake: Arc<Notify>, stop: CancellationToken) {
    let Some(pool) = ctx.store.pg_pool() else {
        return;
    };
    // Anything enqueued while we were not listening is picked up on (re)connect.
    let on_connect = || wake.notify_one();
    let on_notification = |n: &sqlx::postgres::PgNotification| match n.channel() {
        ENQUEUED if ctx.settings.queues.iter().any(|q| q == n.payload()) => wake.notify_one(),
        CANCEL => {
            if let Ok(run_id) = n.payload().parse() {
                ctx.in_flight.cancel_run(run_id);
            }
        }
        _ => {}
    };
    listen(pool, &[ENQUEUED, CANCEL], on_connect, on_notification, stop).await;
}
