//! One attempt from claim to completion: fetch (or reuse) the compiled component, execute it in
//! the sandbox, flush the journal of long attempts while they run, and turn the report into the
//! run's next state (`Completion`). Deciding retry vs. fail lives here, in one place.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::completer::Done;
use super::{Interrupt, WorkerContext};
use crate::model::{Outcome, RunState};
use crate::sandbox::{
    AttemptReport, AttemptSpec, CancelFlag, JobContext, Journal, Limits, LogLine, PrepareError,
};
use crate::store::{ClaimedRun, Completion, NewLogLine, StoreError};

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, plus up to 25% random extra, capped
/// at `cap_ms`. `attempt` is the number of the attempt that just failed (1-based).
pub fn backoff_delay(base_ms: u64, attempt: u32, cap_ms: u64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let jitter = if exp >= 4 {
        rand::rng().random_range(0..=exp / 4)
    } else {
        0
    };
    exp.saturating_add(jitter).min(cap_ms)
}

fn log_rows(run_id: Uuid, attempt: i32, lines: Vec<LogLine>) -> Vec<NewLogLine> {
    lines
        .into_iter()
        .map(|line| NewLogLine {
            run_id,
            attempt,
            at: line.at,
            level: line.level,
            message: line.message,
            fields: Value::Object(
                line.fields
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect::<Map<_, _>>(),
            ),
        })
        .collect()
}

pub(super) async fn execute(ctx: &WorkerContext, run: ClaimedRun) -> Done {
    let flag = CancelFlag::default();
    ctx.in_flight.insert(run.lease_token, run.id, flag.clone());
    let journal = Arc::new(Journal::new());
    let (report, unflushed) = attempt(ctx, &run, flag, journal.clone()).await;
    let interrupted = ctx.in_flight.remove(run.lease_token);
    let progress = journal.progress();
    let completion = decide(ctx, &run, report, interrupted, progress.as_ref());
    // Lines a failed mid-attempt flush could not write come first: they are older.
    let mut lines = unflushed;
    lines.extend(log_rows(run.id, run.attempt, journal.drain_lines()));
    Done { completion, lines }
}

/// Executes the attempt; returns its report and any log lines a mid-attempt flush failed to
/// write.
async fn attempt(
    ctx: &WorkerContext,
    run: &ClaimedRun,
    cancel: CancelFlag,
    journal: Arc<Journal>,
) -> (AttemptReport, Vec<NewLogLine>) {
    let store = ctx.store.clone();
    let (tenant_id, digest) = (run.tenant_id, run.digest.clone());
    let prepared = ctx
        .sandbox
        .prepare(&run.digest, || async move {
            match store.component_bytes(tenant_id, &digest).await {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(anyhow::anyhow!("component {digest} is not in the database")),
                Err(e) => Err(anyhow::Error::new(e)),
            }
        })
        .await;
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            // Not the job's fault (the component was valid at upload): retry the attempt.
            tracing::error!(run = %run.id, error = %e, "could not prepare the component");
            let mut report = AttemptReport::runner_error(
                format!("the runner could not prepare the component: {e}"),
                false,
            );
            // Loading failed (e.g. the database blinked): not an attempt the job used up. A
            // component that no longer compiles fails the run.
            report.runner_fault = matches!(e, PrepareError::Load(_));
            return (report, Vec::new());
        }
    };
    let spec = AttemptSpec {
        context: JobContext {
            tenant: run.tenant.clone(),
            job: run.job.clone(),
            version: run.version as u32,
            run_id: run.id.to_string(),
            attempt: run.attempt as u32,
            max_attempts: run.max_attempts as u32,
            scheduled_at_ms: run.scheduled_at.timestamp_millis(),
        },
        input: serde_json::to_vec(&run.input).unwrap_or_default(),
        limits: Limits {
            fuel: run.fuel as u64,
            memory_bytes: (run.memory_mb as u64) * 1024 * 1024,
            timeout: Duration::from_millis(run.timeout_ms as u64),
        },
        cancel,
        journal: journal.clone(),
    };
    let execution = ctx.sandbox.execute(&prepared, spec);
    tokio::pin!(execution);
    // Short attempts never see the flush timer; long ones get their logs written as they go.
    // A flush runs in its own task so the guest keeps running while the database answers.
    let flush = ctx.settings.journal_flush;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + flush, flush);
    let mut last_progress = None;
    let unflushed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut flushing: Option<tokio::task::JoinHandle<()>> = None;
    let report = loop {
        tokio::select! {
            report = &mut execution => break report,
            _ = ticker.tick() => {
                if flushing.as_ref().is_some_and(|f| !f.is_finished()) {
                    continue;
                }
                let lines = log_rows(run.id, run.attempt, journal.drain_lines());
                let progress = journal.progress().map(|p| (p.percent as i16, p.message));
                let changed = progress.is_some() && progress != last_progress;
                if lines.is_empty() && !changed {
                    continue;
                }
                last_progress = progress.clone();
                let (store, unflushed) = (ctx.store.clone(), unflushed.clone());
                let (run_id, token) = (run.id, run.lease_token);
                let progress = if changed { progress } else { None };
                flushing = Some(tokio::spawn(async move {
                    if let Err(e) = store.attempt_journal(run_id, token, progress, &lines).await {
                        log_flush_failure(run_id, &e, lines.len());
                        let mut kept = unflushed.lock().unwrap_or_else(|e| e.into_inner());
                        kept.extend(lines);
                    }
                }));
            }
        }
    };
    if let Some(f) = flushing {
        let _ = f.await;
    }
    let unflushed = std::mem::take(&mut *unflushed.lock().unwrap_or_else(|e| e.into_inner()));
    (report, unflushed)
}

fn log_flush_failure(run: Uuid, e: &StoreError, lines: usize) {
    tracing::warn!(%run, error = %e, lines, "could not write log lines of a running attempt");
}

/// The run's next state after an attempt, per its policy.
fn decide(
    ctx: &WorkerContext,
    run: &ClaimedRun,
    report: AttemptReport,
    interrupted: Option<Interrupt>,
    progress: Option<&crate::sandbox::Progress>,
) -> Completion {
    let mut c = Completion {
        run_id: run.id,
        lease_token: run.lease_token,
        state: RunState::Failed,
        output: None,
        error: report.error.clone(),
        delay_ms: None,
        refund_attempt: false,
        snoozed: false,
        reason: String::new(),
        outcome: report.outcome,
        fuel_used: report.fuel_used.min(i64::MAX as u64) as i64,
        peak_memory: report.peak_memory_bytes.min(i64::MAX as u64) as i64,
        duration_ms: report.duration.as_millis().min(i64::MAX as u128) as i64,
        progress: progress.map(|p| p.percent as i16),
        progress_message: progress.map(|p| p.message.clone()),
    };
    let attempt = run.attempt as u32;
    // Shutdown, or a lease this runner could not renew: hand the run back without using up an
    // attempt. (After a lost lease the guarded write normally rejects this; if the lease was in
    // fact still held, handing back is right.)
    if matches!(
        interrupted,
        Some(Interrupt::Shutdown | Interrupt::LeaseLost)
    ) && report.outcome == Outcome::Cancelled
    {
        c.state = RunState::Enqueued;
        c.refund_attempt = true;
        c.reason = if interrupted == Some(Interrupt::Shutdown) {
            format!("attempt {attempt} interrupted: runner shutting down")
        } else {
            format!("attempt {attempt} interrupted: its lease could not be renewed")
        };
        return c;
    }
    if report.runner_fault {
        let delay = backoff_delay(
            run.backoff_base_ms.max(100) as u64,
            attempt,
            ctx.limits.max_backoff_ms,
        );
        c.state = RunState::Retrying;
        c.delay_ms = Some(delay as i64);
        c.refund_attempt = true;
        c.reason =
            format!("the runner could not start attempt {attempt}; trying again in {delay} ms");
        return c;
    }
    // Interrupted by a cancel, or the job saw `cancelled()` and returned early: either way the
    // run was cancelled, unless it managed to succeed first.
    if report.outcome == Outcome::Cancelled
        || (interrupted == Some(Interrupt::Cancel) && report.outcome != Outcome::Ok)
    {
        c.state = RunState::Cancelled;
        c.reason = format!("cancelled during attempt {attempt}");
        c.error = Some("cancelled while running".to_string());
        return c;
    }
    match report.outcome {
        Outcome::Ok => {
            c.state = RunState::Succeeded;
            c.output = report.output;
            c.error = None;
            c.reason = format!("attempt {attempt} succeeded");
        }
        _ if report.snooze.is_some() && run.snoozes as u32 >= ctx.limits.max_snoozes => {
            c.state = RunState::Failed;
            c.error = Some(format!(
                "the job snoozed {} times, the most this runner allows",
                run.snoozes
            ));
            c.reason = format!("attempt {attempt} snoozed once too often");
        }
        _ if report.snooze.is_some() => {
            let (delay, why) = report.snooze.unwrap_or_default();
            c.snoozed = true;
            c.state = RunState::Scheduled;
            c.delay_ms = Some(delay.as_millis().min(ctx.limits.max_backoff_ms as u128) as i64);
            c.refund_attempt = true;
            c.error = None;
            c.reason = format!("snoozed for {} ms: {why}", delay.as_millis());
        }
        outcome if report.retryable && run.attempt < run.max_attempts => {
            let delay = match report.retry_delay {
                Some(d) => (d.as_millis() as u64).min(ctx.limits.max_backoff_ms),
                None => backoff_delay(
                    run.backoff_base_ms as u64,
                    attempt,
                    ctx.limits.max_backoff_ms,
                ),
            };
            c.state = RunState::Retrying;
            c.delay_ms = Some(delay as i64);
            c.reason = format!(
                "attempt {attempt} of {} ended with {}; retrying in {delay} ms",
                run.max_attempts,
                outcome.as_str()
            );
        }
        outcome => {
            c.state = RunState::Failed;
            c.reason = if report.retryable {
                format!(
                    "attempt {attempt} ended with {}; no attempts left ({} allowed)",
                    outcome.as_str(),
                    run.max_attempts
                )
            } else {
                format!(
                    "attempt {attempt} ended with {} (not retryable)",
                    outcome.as_str()
                )
            };
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter_and_cap() {
        for attempt in 1..=5u32 {
            let exp = 100u64 << (attempt - 1);
            for _ in 0..50 {
                let d = backoff_delay(100, attempt, u64::MAX);
                assert!(d >= exp && d <= exp + exp / 4, "attempt {attempt}: {d}");
            }
        }
        assert_eq!(backoff_delay(1000, 30, 5000), 5000);
        assert_eq!(backoff_delay(0, 3, 5000), 0);
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(backoff_delay(u64::MAX, 99, 7), 7);
    }
}
