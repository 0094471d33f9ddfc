//! The worker pool: claims enqueued runs in batches, executes each attempt in the sandbox up to
//! the runner's slot count, extends leases by heartbeat, and hands outcomes to the completer.
//!
//! It is woken by LISTEN/NOTIFY (`listener`), with a slow poll as a fallback, and never waits on
//! the database while holding a sandbox. It must never lose a claimed run: an outcome that
//! cannot be written is retried until it is (`completer`), and a run whose runner dies is
//! rescued after its lease expires.

mod completer;
mod executor;
mod listener;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{RunLimits, WorkerSettings};
use crate::sandbox::{CancelFlag, Sandbox};
use crate::store::{RunClaimParams, Store};

pub use executor::backoff_delay;

/// Why a running attempt is being interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The runner is shutting down: hand the run back without using up an attempt.
    Shutdown,
    /// The run was cancelled (API): end it `cancelled`.
    Cancel,
    /// This runner no longer holds the run's lease (it was rescued): stop; the outcome will
    /// be rejected by the guarded write anyway.
    LeaseLost,
}

/// One attempt this runner is executing.
struct Running {
    run_id: Uuid,
    flag: CancelFlag,
    why: Option<Interrupt>,
    /// When this runner last renewed the lease (its own clock, used only to measure elapsed
    /// time: expiry itself is judged by the database).
    renewed: std::time::Instant,
}

/// The attempts this runner is executing, by lease token: their leases are extended by the
/// heartbeat, and they can be interrupted.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: Mutex<HashMap<Uuid, Running>>,
}

impl InFlight {
    fn insert(&self, lease_token: Uuid, run_id: Uuid, flag: CancelFlag) {
        let running = Running {
            run_id,
            flag,
            why: None,
            renewed: std::time::Instant::now(),
        };
        self.lock().insert(lease_token, running);
    }

    fn remove(&self, lease_token: Uuid) -> Option<Interrupt> {
        self.lock().remove(&lease_token).and_then(|r| r.why)
    }

    fn lease_tokens(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    fn interrupt(running: &mut Running, why: Interrupt) {
        // A cancel is final: a later shutdown must not turn it into a hand-back.
        if running.why != Some(Interrupt::Cancel) {
            running.why = Some(why);
        }
        running.flag.cancel();
    }

    fn interrupt_all(&self, why: Interrupt) {
        for running in self.lock().values_mut() {
            InFlight::interrupt(running, why);
        }
    }

    /// Interrupts the attempt of a cancelled run, if this runner executes it.
    fn cancel_run(&self, run_id: Uuid) {
        for running in self.lock().values_mut().filter(|r| r.run_id == run_id) {
            InFlight::interrupt(running, Interrupt::Cancel);
        }
    }

    /// Applies a heartbeat's result: renewed leases are noted, and runs asked to cancel are
    /// interrupted (a missed NOTIFY is caught here).
    fn heartbeat_result(&self, extended: &[(Uuid, bool)]) {
        let mut runs = self.lock();
        let now = std::time::Instant::now();
        for (token, cancel) in extended {
            if let Some(running) = runs.get_mut(token) {
                running.renewed = now;
                if *cancel {
                    InFlight::interrupt(running, Interrupt::Cancel);
                }
            }
        }
    }

    /// Stops attempts whose lease this runner could not renew for `max_age` — it was taken
    /// away, or the database has been unreachable long enough that the lease may have expired
    /// and the run been rescued elsewhere. Their late completion would be rejected anyway.
    fn stop_unrenewed(&self, max_age: Duration) {
        for running in self.lock().values_mut() {
            if running.renewed.elapsed() > max_age && running.why.is_none() {
                tracing::warn!(run = %running.run_id, "lease not renewed in time: stopping the attempt");
                InFlight::interrupt(running, Interrupt::LeaseLost);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Running>> {
        // A panic elsewhere cannot leave the map inconsistent (single inserts/removes).
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything an attempt needs, shared by the pool's tasks.
pub(crate) struct WorkerContext {
    pub store: Arc<dyn Store>,
    pub sandbox: Sandbox,
    pub settings: WorkerSettings,
    pub limits: RunLimits,
    pub runner_id: Uuid,
    pub in_flight: InFlight,
    /// Wakes the promoter when this runner schedules a retry or a snooze.
    pub promoter: Arc<Notify>,
}

/// What a worker pool is made of.
pub struct PoolParts {
    pub store: Arc<dyn Store>,
    pub sandbox: Sandbox,
    pub settings: WorkerSettings,
    pub limits: RunLimits,
    pub runner_id: Uuid,
    /// Woken when this runner schedules a retry or a snooze.
    pub promoter: Arc<Notify>,
}

/// Runs the pool until `shutdown` is cancelled; then stops claiming, lets running attempts
/// finish within `grace`, interrupts the rest (handing their runs back to the queue) and
/// returns once every outcome is written.
pub async fn run_pool(parts: PoolParts, shutdown: CancellationToken, grace: Duration) {
    let wake = Arc::new(Notify::new());
    let ctx = Arc::new(WorkerContext {
        store: parts.store,
        sandbox: parts.sandbox,
        settings: parts.settings,
        limits: parts.limits,
        runner_id: parts.runner_id,
        in_flight: InFlight::default(),
        promoter: parts.promoter,
    });
    let (done_tx, done_rx) = mpsc::channel(ctx.settings.complete_batch * 4);
    // If this future is dropped (the runner is aborted), its helpers die with it, as in a crash.
    let mut completer = AbortOnDrop(tokio::spawn(completer::run(ctx.clone(), done_rx)));
    let background = CancellationToken::new();
    let mut listener = AbortOnDrop(tokio::spawn(listener::run(
        ctx.clone(),
        wake.clone(),
        background.clone(),
    )));
    let mut heartbeat = AbortOnDrop(tokio::spawn(heartbeat(ctx.clone(), background.clone())));

    let mut attempts = claim_loop(ctx.clone(), wake, done_tx, shutdown).await;

    // Graceful shutdown: running attempts get `grace` to finish, then are handed back.
    let drained = tokio::time::timeout(grace, async {
        while attempts.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            running = attempts.len(),
            "grace period over: interrupting running attempts and handing their runs back"
        );
        ctx.in_flight.interrupt_all(Interrupt::Shutdown);
        while attempts.join_next().await.is_some() {}
    }
    // Every sender is gone once the attempts are: the completer writes what is left and ends.
    if let Err(e) = (&mut completer.0).await {
        tracing::error!(error = %e, "completer task failed");
    }
    background.cancel();
    let _ = (&mut listener.0).await;
    let _ = (&mut heartbeat.0).await;
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn claim_loop(
    ctx: Arc<WorkerContext>,
    wake: Arc<Notify>,
    done: mpsc::Sender<completer::Done>,
    shutdown: CancellationToken,
) -> JoinSet<()> {
    let slots = Arc::new(Semaphore::new(ctx.settings.slots));
    let mut attempts = JoinSet::new();
    let mut busy = false;
    let mut failures = 0u32;
    let mut next_queue = 0usize;
    loop {
        // Reap finished attempt tasks so the set does not grow without bound.
        while attempts.try_join_next().is_some() {}
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        if busy {
            // The queue had more than we could take: let a few more slots free up so the next
            // claim is a batch, not one run per round trip.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut permits = vec![first];
        while permits.len() < ctx.settings.claim_batch {
            match slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        busy = false;
        let queues = &ctx.settings.queues;
        for i in 0..queues.len() {
            if permits.is_empty() {
                busy = true;
                break;
            }
            let queue = &queues[(next_queue + i) % queues.len()];
            let wanted = permits.len();
            match ctx
                .store
                .run_claim(RunClaimParams {
                    runner_id: ctx.runner_id,
                    queue: queue.clone(),
                    limit: wanted as i64,
                    lease_ms: ctx.settings.lease.as_millis() as i64,
                })
                .await
            {
                Ok(runs) => {
                    failures = 0;
                    busy |= runs.len() == wanted;
                    for run in runs {
                        let Some(permit) = permits.pop() else { break };
                        let ctx = ctx.clone();
                        let done = done.clone();
                        attempts.spawn(async move {
                            let finished = executor::execute(&ctx, run).await;
                            drop(permit);
                            if done.send(finished).await.is_err() {
                                tracing::error!("completer stopped before an outcome was written");
                            }
                        });
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, queue, "claiming runs failed; backing off");
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(4)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {},
                        _ = shutdown.cancelled() => {},
                    }
                }
            }
        }
        next_queue = next_queue.wrapping_add(1);
        drop(permits);
        if !busy {
            tokio::select! {
                _ = wake.notified() => {},
                _ = tokio::time::sleep(ctx.settings.poll_interval) => {},
                _ = shutdown.cancelled() => break,
            }
        }
    }
    attempts
}

/// Keeps the leases of this runner's attempts alive while it lives.
async fn heartbeat(ctx: Arc<WorkerContext>, stop: CancellationToken) {
    let lease_ms = ctx.settings.lease.as_millis() as i64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ctx.settings.heartbeat) => {},
            _ = stop.cancelled() => return,
        }
        let tokens = ctx.in_flight.lease_tokens();
        match ctx.store.lease_extend(&tokens, lease_ms).await {
            Ok(extended) => ctx.in_flight.heartbeat_result(&extended),
            Err(e) => tracing::warn!(error = %e, "extending leases failed"),
        }
        // Checked on every tick, failed or not: a runner cut off from the database stops its
        // attempts before their leases can expire and the runs be retried elsewhere.
        let margin = ctx.settings.heartbeat.min(ctx.settings.lease / 2);
        ctx.in_flight
            .stop_unrenewed(ctx.settings.lease.saturating_sub(margin));
    }
}
