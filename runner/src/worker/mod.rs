//! The worker pool: claims enqueued runs ahead of free slots (a prefetch buffer sized by how
//! fast runs finish), executes each attempt in the sandbox up to the runner's slot count,
//! extends leases by heartbeat, and hands outcomes to the completer.
//!
//! Fair across tenants: claims share among tenants with ready work (the claim statement), the
//! buffer hands runs to slots round-robin by tenant, and a tenant with nothing buffered is
//! claimed for as soon as a notification says it has work, even when the buffer is full — so
//! a new run of a quiet tenant waits at most for the next freed slot.
//!
//! It is woken by LISTEN/NOTIFY (`listener`), with a slow poll as a fallback, and never waits on
//! the database while holding a sandbox. It must never lose a claimed run: an outcome that
//! cannot be written is retried until it is (`completer`), buffered runs keep their leases by
//! heartbeat and are released at shutdown, and a run whose runner dies is rescued after its
//! lease expires.

mod clock;
mod completer;
mod executor;
mod listener;
mod prefetch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{RunLimits, WorkerSettings};
use crate::sandbox::{CancelFlag, Sandbox};
use crate::store::{
    ClaimedRun, Completion, JobVersionRef, PoolOptions, RunClaimParams, Store, StoreResult,
};

pub use crate::backoff::backoff_delay;
use prefetch::Prefetch;

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
    /// The attempt has ended and its outcome waits for the completer: the lease is still
    /// renewed (the outcome is not durable yet), there is nothing left to interrupt.
    finished: bool,
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
            finished: false,
        };
        self.lock().insert(lease_token, running);
    }

    /// Marks the attempt ended and returns why it was interrupted, if it was. The lease stays
    /// in the map, renewed by the heartbeat, until the completer has written the outcome
    /// (`remove`): an outcome waiting for a slow or unreachable database must not let the
    /// lease expire and the run be rescued and executed a second time.
    fn finish(&self, lease_token: Uuid) -> Option<Interrupt> {
        let mut runs = self.lock();
        let running = runs.get_mut(&lease_token)?;
        running.finished = true;
        running.why
    }

    /// Forgets a lease once its outcome is written (or refused for good).
    fn remove(&self, lease_token: Uuid) {
        self.lock().remove(&lease_token);
    }

    /// The leases held: (run id, lease token) each.
    fn leases(&self) -> Vec<(Uuid, Uuid)> {
        self.lock().iter().map(|(t, r)| (r.run_id, *t)).collect()
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
            if running.renewed.elapsed() > max_age && running.why.is_none() && !running.finished {
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
    /// Claims only: a small pool whose commits do not wait for the disk (see
    /// `PoolOptions::synchronous_commit`), so a run enqueued into an idle runner starts one
    /// fsync sooner.
    claims: Arc<dyn Store>,
    pub sandbox: Sandbox,
    pub settings: WorkerSettings,
    pub limits: RunLimits,
    pub runner_id: Uuid,
    pub in_flight: InFlight,
    /// Wakes the promoter when this runner schedules a retry or a snooze.
    pub promoter: Arc<Notify>,
    /// Decrypts the config values granted to an attempt (`capabilities::grants::load`);
    /// `None` when the runner has no key.
    pub keyring: Option<Arc<crate::capabilities::Keyring>>,
    /// Job versions are immutable: their names and component, cached by (job id, version).
    jobs: Mutex<HashMap<(i64, i32), Arc<JobVersionRef>>>,
    /// The database clock, for attempt times.
    clock: clock::DbClock,
    /// Sums of the attempts this runner ended, for `run_stats`.
    pub stats: Arc<crate::stats::Rollup>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl WorkerContext {
    /// The names and component of a job version, from the cache or the store.
    async fn job_version(&self, job_id: i64, version: i32) -> StoreResult<Arc<JobVersionRef>> {
        let key = (job_id, version);
        if let Some(job) = self.jobs_lock().get(&key) {
            return Ok(job.clone());
        }
        let job = self
            .store
            .job_version_ref(job_id, version)
            .await?
            .ok_or_else(|| {
                crate::store::StoreError::Invalid(format!("job {job_id} has no version {version}"))
            })?;
        let job = Arc::new(job);
        self.jobs_lock().insert(key, job.clone());
        Ok(job)
    }

    fn jobs_lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i32), Arc<JobVersionRef>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    /// The runner's keyring (config values), if it has one.
    pub keyring: Option<Arc<crate::capabilities::Keyring>>,
    /// The runner's Prometheus figures (attempts started and written are counted here).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Runs the pool until `shutdown` is cancelled; then stops claiming, lets running attempts
/// finish within `grace`, interrupts the rest (handing their runs back to the queue) and
/// returns once every outcome is written.
pub async fn run_pool(parts: PoolParts, shutdown: CancellationToken, grace: Duration) {
    let wake = Arc::new(Notify::new());
    let claims = parts
        .store
        .sibling(PoolOptions {
            synchronous_commit: false,
            ..PoolOptions::new(2)
        })
        .unwrap_or_else(|| parts.store.clone());
    if let Some(pool) = claims.pg_pool() {
        parts.metrics.watch_pool("claims", pool);
    }
    let ctx = Arc::new(WorkerContext {
        claims,
        store: parts.store,
        sandbox: parts.sandbox,
        settings: parts.settings,
        limits: parts.limits,
        runner_id: parts.runner_id,
        in_flight: InFlight::default(),
        promoter: parts.promoter,
        keyring: parts.keyring,
        jobs: Mutex::new(HashMap::new()),
        clock: clock::DbClock::default(),
        stats: Arc::new(crate::stats::Rollup::new(parts.runner_id)),
        metrics: parts.metrics,
    });
    // Several samples: the first one may pay for opening a connection.
    for _ in 0..5 {
        ctx.clock.sync(ctx.store.as_ref()).await;
    }
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
    let mut stats = AbortOnDrop(tokio::spawn(crate::stats::run(
        ctx.stats.clone(),
        ctx.store.clone(),
        ctx.settings.stats_flush,
        background.clone(),
    )));

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
    let _ = (&mut stats.0).await;
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Claims, buffers and dispatches runs until `shutdown`; returns the attempts still running.
/// One claim is in flight at a time, overlapping execution; its size follows how many runs
/// were dispatched while the previous one was on its way (at least the slot count, at most
/// `prefetch`), so short runs get large claims and long runs are not hoarded.
async fn claim_loop(
    ctx: Arc<WorkerContext>,
    wake: Arc<Notify>,
    done: mpsc::Sender<completer::Done>,
    shutdown: CancellationToken,
) -> JoinSet<()> {
    let slots = Arc::new(Semaphore::new(ctx.settings.slots));
    let mut attempts = JoinSet::new();
    let mut buffer = Prefetch::default();
    let mut claiming: Option<tokio::task::JoinHandle<ClaimResult>> = None;
    // Queues that looked empty at their last claim: not claimed from again until a
    // notification or the poll says there may be work.
    let queues = &ctx.settings.queues;
    let mut exhausted = vec![false; queues.len()];
    // A notification arrived while the buffer was full: claim for the tenants not in it.
    let mut top_up = false;
    let mut failures = 0u32;
    let mut next_queue = 0usize;
    let mut dispatched_since_claim = 0usize;
    let mut want = ctx.settings.slots.max(1);
    let mut after_tenant = 0i64;
    loop {
        // Hand buffered runs to free slots, round-robin by tenant.
        while !buffer.is_empty() {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            let Some((run, flag)) = buffer.pop() else {
                break;
            };
            dispatched_since_claim += 1;
            let (ctx, done) = (ctx.clone(), done.clone());
            attempts.spawn(async move {
                let finished = executor::execute(&ctx, run, flag).await;
                drop(permit);
                if done.send(finished).await.is_err() {
                    tracing::error!("completer stopped before an outcome was written");
                }
            });
        }
        while attempts.try_join_next().is_some() {}

        // Claim when the buffer runs low (or for quiet tenants), one claim at a time.
        if claiming.is_none() && !shutdown.is_cancelled() {
            let open = (0..queues.len())
                .map(|i| (next_queue + i) % queues.len())
                .find(|&q| !exhausted[q]);
            let low = buffer.len() < want.div_ceil(2).max(1) && open.is_some();
            if low || top_up {
                let (limit, exclude) = if low {
                    (want.saturating_sub(buffer.len()).max(1), Vec::new())
                } else {
                    (ctx.settings.slots.max(1), buffer.tenants())
                };
                top_up = false;
                let index = open.unwrap_or(next_queue % queues.len());
                next_queue = index + 1;
                let queue = queues[index].clone();
                let params = RunClaimParams {
                    runner_id: ctx.runner_id,
                    queue,
                    limit: limit as i64,
                    lease_ms: ctx.settings.lease.as_millis() as i64,
                    exclude_tenants: exclude,
                    after_tenant,
                    default_max_running: ctx.settings.tenant_max_running,
                };
                let store = ctx.claims.clone();
                claiming = Some(tokio::spawn(async move {
                    let limit = params.limit as usize;
                    ClaimResult {
                        runs: store.run_claim(params).await,
                        limit,
                        index,
                    }
                }));
            }
        }

        let busy = !buffer.is_empty();
        tokio::select! {
            result = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                claiming = None;
                match result {
                    Ok(ClaimResult { runs: Ok(runs), limit, index }) => {
                        failures = 0;
                        exhausted[index] = runs.len() < limit;
                        // Size the next claim for the runs dispatched during this one.
                        want = (dispatched_since_claim * 2)
                            .clamp(ctx.settings.slots.max(1), ctx.settings.prefetch.max(1));
                        dispatched_since_claim = 0;
                        if let Some(last) = runs.iter().map(|r| r.tenant_id).max() {
                            after_tenant = last;
                        }
                        for run in runs {
                            let flag = CancelFlag::default();
                            ctx.in_flight.insert(run.lease_token, run.id, flag.clone());
                            buffer.push(run, flag);
                        }
                    }
                    Ok(ClaimResult { runs: Err(e), .. }) => {
                        failures += 1;
                        tracing::warn!(error = %e, "claiming runs failed; backing off");
                        let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(4)));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {},
                            _ = shutdown.cancelled() => {},
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claim task failed"),
                }
            }
            permit = slots.clone().acquire_owned(), if busy => {
                // A slot is free: loop round to dispatch into it.
                drop(permit);
            }
            _ = wake.notified() => {
                // A full buffer gets a top-up claim for the tenants not in it. So does a
                // notification that arrives while a claim is on its way: that claim's snapshot
                // may predate the new run, and the buffer it fills might not run low again
                // for a whole attempt.
                if buffer.len() >= want.div_ceil(2).max(1) || claiming.is_some() {
                    top_up = true;
                }
                exhausted.fill(false);
            }
            _ = tokio::time::sleep(ctx.settings.poll_interval), if !busy && claiming.is_none() => {
                exhausted.fill(false);
            }
            _ = shutdown.cancelled() => break,
        }
    }
    // Stopping: the claim in flight and the buffer go back to the queue, unstarted.
    if let Some(claim) = claiming.take()
        && let Ok(ClaimResult { runs: Ok(runs), .. }) = claim.await
    {
        for run in runs {
            buffer.push(run, CancelFlag::default());
        }
    }
    while let Some((run, _)) = buffer.pop() {
        // A run cancelled while it waited ends cancelled; the others go back to the queue.
        let completion = match ctx.in_flight.finish(run.lease_token) {
            Some(Interrupt::Cancel) => {
                let now = ctx.clock.now();
                let record = crate::store::AttemptRecord {
                    outcome: crate::model::Outcome::Cancelled,
                    error: Some("cancelled before the attempt started".into()),
                    fuel_used: 0,
                    peak_memory: 0,
                    duration_ms: 0,
                    outbound: None,
                    started_at: now,
                    ended_at: now,
                };
                Completion::cancelled(&run, record, "cancelled while waiting for a slot".into())
            }
            _ => Completion::released(&run, "runner stopping before the attempt started".into()),
        };
        let finished = completer::Done {
            completion,
            lines: Vec::new(),
        };
        if done.send(finished).await.is_err() {
            tracing::error!("completer stopped before a release was written");
        }
    }
    attempts
}

/// What one claim task brought back.
struct ClaimResult {
    runs: StoreResult<Vec<ClaimedRun>>,
    limit: usize,
    /// The queue it claimed from (index into the runner's queues).
    index: usize,
}

/// Keeps the leases of this runner's attempts alive while it lives.
async fn heartbeat(ctx: Arc<WorkerContext>, stop: CancellationToken) {
    let lease_ms = ctx.settings.lease.as_millis() as i64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ctx.settings.heartbeat) => {},
            _ = stop.cancelled() => return,
        }
        ctx.clock.sync(ctx.store.as_ref()).await;
        let leases = ctx.in_flight.leases();
        match ctx.store.lease_extend(&leases, lease_ms).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_attempt_keeps_its_lease_renewed_until_its_outcome_is_written() {
        let in_flight = InFlight::default();
        let (token, run) = (Uuid::new_v4(), Uuid::now_v7());
        let flag = CancelFlag::new();
        in_flight.insert(token, run, flag.clone());
        in_flight.cancel_run(run);
        // The attempt ends: the interrupt is reported, the lease is still held and renewed.
        assert_eq!(in_flight.finish(token), Some(Interrupt::Cancel));
        assert_eq!(in_flight.leases(), [(run, token)]);
        // A waiting outcome is never "stopped" for an unrenewed lease: nothing runs any more.
        std::thread::sleep(Duration::from_millis(5));
        in_flight.stop_unrenewed(Duration::ZERO);
        assert_eq!(in_flight.finish(token), Some(Interrupt::Cancel));
        // Written: the lease is let go.
        in_flight.remove(token);
        assert!(in_flight.leases().is_empty());
        assert_eq!(in_flight.finish(token), None);
    }
}
