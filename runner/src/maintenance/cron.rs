//! The cron service: fires schedules' due fire times (see `store::schedules` for the one
//! transaction per schedule that does it, `crate::schedule` for what a fire time is).
//!
//! It sleeps until the earliest `next_fire_at` of any schedule, timed with the database's clock
//! (so a runner's clock skew does not matter), and wakes early on a `sandfire_schedules` NOTIFY
//! (a schedule created, changed or resumed on any runner, this one included). It re-checks at
//! least every `max_sleep`, so a missed notification costs at most that. It never decides
//! anything from its own clock and never holds a lock while sleeping.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::RunLimits;
use crate::metrics::Metrics;
use crate::store::{SCHEDULES_CHANNEL, ScheduleFired, Store, StoreError, notifications};

/// Most schedules fired in one pass before the next due time is re-read.
const PASS: usize = 1000;
/// When the earliest due schedule is locked by another runner firing it, look again this soon.
const LOCKED_RETRY: Duration = Duration::from_millis(2);

pub async fn run(
    store: Arc<dyn Store>,
    limits: RunLimits,
    max_sleep: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(store.clone(), wake.clone(), stop.clone()));
    let mut failures = 0u32;
    loop {
        let deadline = match fire_due(store.as_ref(), &limits, &metrics, &stop).await {
            Ok(next) => {
                failures = 0;
                next.map_or(Instant::now() + max_sleep, |at| {
                    at.min(Instant::now() + max_sleep)
                })
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "firing due schedules failed; backing off");
                Instant::now() + Duration::from_millis(100 * 2u64.pow(failures.min(4)))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {},
            _ = wake.notified() => {},
            _ = stop.cancelled() => break,
        }
    }
    let _ = listener.await;
}

/// Fires every due schedule; returns when the earliest schedule is due next (on this
/// process's monotonic clock), `None` when no schedule has a next fire time.
async fn fire_due(
    store: &dyn Store,
    limits: &RunLimits,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Option<Instant>, StoreError> {
    for _ in 0..PASS {
        if stop.is_cancelled() {
            break;
        }
        match store.schedule_fire_due(limits).await? {
            Some(fired) => {
                metrics.cron_fired(fired.runs.len() as u64, fired.skipped.len() as u64);
                report(&fired)
            }
            None => break,
        }
    }
    // Timed from before the query: the database's now is at least this late, so the wake-up is
    // never after the due time (a little early at worst, and then the next pass sleeps again).
    let asked = Instant::now();
    let (next, now) = store.schedule_next_due().await?;
    Ok(next.map(|next| match (next - now).to_std() {
        Ok(wait) if !wait.is_zero() => asked + wait,
        // Due but not fired by us: another runner holds it right now.
        _ => Instant::now() + LOCKED_RETRY,
    }))
}

fn report(fired: &ScheduleFired) {
    for (fire_at, run) in &fired.runs {
        tracing::debug!(schedule = %fired.name, tenant = fired.tenant_id, %fire_at, %run,
            "schedule fired");
    }
    for (fire_at, reason) in &fired.skipped {
        tracing::info!(schedule = %fired.name, tenant = fired.tenant_id, %fire_at, %reason,
            "fire time skipped");
    }
    if let Some(since) = fired.missed_since {
        tracing::info!(schedule = %fired.name, tenant = fired.tenant_id, %since,
            fired = fired.runs.len(), "missed fire times handled by the misfire policy");
    }
    if fired.already_fired > 0 {
        tracing::debug!(schedule = %fired.name, tenant = fired.tenant_id,
            count = fired.already_fired, "fire times were fired before; nothing duplicated");
    }
}

/// Turns `sandfire_schedules` notifications into wake-ups; reconnects on its own.
async fn listen(store: Arc<dyn Store>, wake: Arc<Notify>, stop: CancellationToken) {
    let Some(pool) = store.pg_pool() else {
        return;
    };
    // Changes made while not listening are seen on (re)connect.
    let on_connect = || wake.notify_one();
    let on_notification = |_: &sqlx::postgres::PgNotification| wake.notify_one();
    notifications::listen(
        pool,
        &[SCHEDULES_CHANNEL],
        on_connect,
        on_notification,
        stop,
    )
    .await;
}
