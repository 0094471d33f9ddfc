//! One attempt from claim to completion: fetch (or reuse) the compiled component, execute it in
//! the sandbox, flush the journal of long attempts while they run, and turn the report into the
//! run's next state (`Completion`). Deciding retry vs. fail lives here, in one place.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::completer::Done;
use super::{Interrupt, WorkerContext};
use crate::backoff::backoff_delay;
use crate::config::RunLimits;
use crate::model::Outcome;
use crate::sandbox::{
    AttemptGrants, AttemptReport, AttemptSpec, CancelFlag, ComponentSource, GrantLoader,
    GrantedValue, JobContext, Journal, Limits, LogLine, PrepareError,
};
use crate::store::{
    AttemptRecord, ClaimedRun, CompiledComponentPutParams, Completion, NewLogLine, Store,
    StoreError,
};

/// Attempts of one run refunded for the runner's own faults (pool full, component could not be
/// loaded) before further ones count against `max_attempts` like any failure: a run can never
/// be retried for free forever, whatever causes the faults.
pub(crate) const MAX_RUNNER_FAULT_REFUNDS: i32 = 10;

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

/// Executes one claimed run (already registered in `in_flight` by the claim loop, so its
/// lease was kept alive while it waited for a slot) and decides its completion.
pub(super) async fn execute(ctx: &WorkerContext, mut run: ClaimedRun, flag: CancelFlag) -> Done {
    // The tenant's own log budget came with the claim; else the runner's default.
    let budget = run
        .log_budget
        .or(ctx.settings.tenant_max_log_bytes)
        .map(|b| usize::try_from(b.max(0)).unwrap_or(usize::MAX));
    let journal = Arc::new(Journal::with_byte_budget(budget));
    let input = std::mem::take(&mut run.input).into_bytes();
    let started = ctx.clock.now();
    ctx.metrics
        .attempt_started(&run.queue, started - run.scheduled_at);
    let (report, unflushed) = attempt(ctx, &run, input, flag, journal.clone()).await;
    let ended = ctx.clock.now();
    // The lease stays renewed until the completer has written the outcome.
    let interrupted = ctx.in_flight.finish(run.lease_token);
    let progress = journal
        .progress()
        .map(|p| (p.percent as i16, p.message.clone()));
    let completion =
        decide(&ctx.limits, &run, report, interrupted, started, ended).with_progress(progress);
    // Lines a failed mid-attempt flush could not write come first: they are older.
    let mut lines = unflushed;
    lines.extend(log_rows(run.id, run.attempt, journal.drain_lines()));
    Done { completion, lines }
}

/// Reads what the run's job was granted, when the attempt first needs it (a `config.get` or
/// an outbound request): an attempt that uses neither costs no read.
fn grant_loader(ctx: &WorkerContext, run: &ClaimedRun) -> GrantLoader {
    let store = ctx.store.clone();
    let keyring = ctx.keyring.clone();
    let (tenant_id, job_id) = (run.tenant_id, run.job_id);
    Box::new(move || {
        Box::pin(async move {
            let grants =
                crate::capabilities::grants::load(&*store, keyring.as_deref(), tenant_id, job_id)
                    .await?;
            Ok(attempt_grants(grants))
        })
    })
}

/// The sandbox's view of a job's grants: one host check (the job's grant, then its tenant's
/// ceiling as it is now), the caps, and the granted values.
fn attempt_grants(grants: crate::capabilities::grants::Grants) -> AttemptGrants {
    let crate::capabilities::grants::Grants {
        job_hosts,
        tenant_hosts,
        max_requests_per_attempt,
        max_response_bytes,
        config,
    } = grants;
    // `ConfigValue` wipes itself on drop, so its value is copied, not moved.
    let config = config
        .iter()
        .map(|(name, value)| {
            let value = value.as_ref().map(|v| GrantedValue {
                value: v.value.clone(),
                secret: v.secret,
            });
            (name.clone(), value)
        })
        .collect();
    AttemptGrants {
        hosts: Box::new(move |scheme, host, port| {
            let Some(pattern) = job_hosts.allows(scheme, host, port) else {
                return Err("not in the job's allowed_outbound_hosts".to_owned());
            };
            if tenant_hosts.allows(scheme, host, port).is_none() {
                return Err(format!(
                    "the job's {pattern} is outside its tenant's policy (allowed_outbound_hosts)"
                ));
            }
            Ok(pattern.to_owned())
        }),
        max_requests: max_requests_per_attempt,
        max_response_bytes,
        config,
    }
}

/// Executes the attempt; returns its report and any log lines a mid-attempt flush failed to
/// write.
async fn attempt(
    ctx: &WorkerContext,
    run: &ClaimedRun,
    input: Vec<u8>,
    cancel: CancelFlag,
    journal: Arc<Journal>,
) -> (AttemptReport, Vec<NewLogLine>) {
    let job = match ctx.job_version(run.job_id, run.version).await {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(run = %run.id, error = %e, "could not read the run's job version");
            return (
                AttemptReport::runner_error(
                    format!("the runner could not read the run's job version: {e}"),
                    false,
                ),
                Vec::new(),
            );
        }
    };
    ctx.metrics.note_tenant(run.tenant_id, &job.tenant);
    let source = StoredComponent {
        store: ctx.store.clone(),
        tenant_id: run.tenant_id,
        digest: job.digest.clone(),
    };
    let prepared = ctx
        .sandbox
        .prepare_from(run.tenant_id, &job.digest, &source)
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
            tenant: job.tenant.clone(),
            job: job.job.clone(),
            version: run.version as u32,
            run_id: run.id.to_string(),
            attempt: run.attempt as u32,
            max_attempts: run.max_attempts as u32,
            scheduled_at_ms: run.scheduled_at.timestamp_millis(),
        },
        input,
        limits: Limits {
            fuel: run.fuel as u64,
            memory_bytes: (run.memory_mb as u64) * 1024 * 1024,
            timeout: Duration::from_millis(run.timeout_ms as u64),
        },
        cancel,
        journal: journal.clone(),
        grants: Some(grant_loader(ctx, run)),
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

/// The run's next state after an attempt, per its policy: one transition, built by the
/// constructor for it.
fn decide(
    limits: &RunLimits,
    run: &ClaimedRun,
    mut report: AttemptReport,
    interrupted: Option<Interrupt>,
    started: chrono::DateTime<chrono::Utc>,
    ended: chrono::DateTime<chrono::Utc>,
) -> Completion {
    if report.runner_fault && run.runner_faults >= MAX_RUNNER_FAULT_REFUNDS {
        // Refunds used up: from now on the attempt counts, and may be retried like a crash.
        report.runner_fault = false;
        report.retryable = true;
        report.error = Some(format!(
            "{} (the runner failed this run's attempts {} times; they now count against \
             max_attempts)",
            report
                .error
                .as_deref()
                .unwrap_or("the runner failed the attempt"),
            run.runner_faults
        ));
    }
    let record = AttemptRecord {
        outcome: report.outcome,
        error: report.error.clone(),
        fuel_used: report.fuel_used.min(i64::MAX as u64) as i64,
        peak_memory: report.peak_memory_bytes.min(i64::MAX as u64) as i64,
        duration_ms: report.duration.as_millis().min(i64::MAX as u128) as i64,
        outbound: report.outbound,
        started_at: started,
        ended_at: ended,
    };
    let attempt = run.attempt as u32;
    let cap = limits.max_backoff_ms;
    // Shutdown, or a lease this runner could not renew: hand the run back without using up an
    // attempt. (After a lost lease the guarded write normally rejects this; if the lease was in
    // fact still held, handing back is right.)
    if matches!(
        interrupted,
        Some(Interrupt::Shutdown | Interrupt::LeaseLost)
    ) && report.outcome == Outcome::Cancelled
    {
        let why = if interrupted == Some(Interrupt::Shutdown) {
            "runner shutting down"
        } else {
            "its lease could not be renewed"
        };
        return Completion::handed_back(
            run,
            record,
            format!("attempt {attempt} interrupted: {why}"),
        );
    }
    if report.runner_fault {
        let delay = backoff_delay(run.backoff_base_ms.max(100) as u64, attempt, cap) as i64;
        let reason =
            format!("the runner could not start attempt {attempt}; trying again in {delay} ms");
        return Completion::runner_fault(run, record, delay, reason);
    }
    // Interrupted by a cancel, or the job saw `cancelled()` and returned early: either way the
    // run was cancelled, unless it managed to succeed first.
    if report.outcome == Outcome::Cancelled
        || (interrupted == Some(Interrupt::Cancel) && report.outcome != Outcome::Ok)
    {
        let record = AttemptRecord {
            error: Some("cancelled while running".to_string()),
            ..record
        };
        return Completion::cancelled(run, record, format!("cancelled during attempt {attempt}"));
    }
    if report.outcome == Outcome::Ok {
        return Completion::succeeded(run, record, report.output.unwrap_or(Value::Null));
    }
    if let Some((delay, why)) = report.snooze {
        if run.snoozes as u32 >= limits.max_snoozes {
            let record = AttemptRecord {
                error: Some(format!(
                    "the job snoozed {} times, the most this runner allows",
                    run.snoozes
                )),
                ..record
            };
            return Completion::failed(
                run,
                record,
                format!("attempt {attempt} snoozed once too often"),
            );
        }
        let delay_ms = delay.as_millis().min(u128::from(cap)) as i64;
        let reason = format!("snoozed for {} ms: {why}", delay.as_millis());
        return Completion::snoozed(run, record, delay_ms, reason);
    }
    let outcome = report.outcome.as_str();
    if report.retryable && run.attempt < run.max_attempts {
        let delay = match report.retry_delay {
            Some(d) => (d.as_millis() as u64).min(cap),
            None => backoff_delay(run.backoff_base_ms as u64, attempt, cap),
        } as i64;
        let reason = format!(
            "attempt {attempt} of {} ended with {outcome}; retrying in {delay} ms",
            run.max_attempts
        );
        return Completion::retry(run, record, delay, reason);
    }
    let reason = if report.retryable {
        format!(
            "attempt {attempt} ended with {outcome}; no attempts left ({} allowed)",
            run.max_attempts
        )
    } else {
        format!("attempt {attempt} ended with {outcome} (not retryable)")
    };
    Completion::failed(run, record, reason)
}

/// A tenant's component as the store holds it: the artifact a runner kept for this engine, or
/// the uploaded bytes.
struct StoredComponent {
    store: Arc<dyn Store>,
    tenant_id: i64,
    digest: String,
}

#[async_trait::async_trait]
impl ComponentSource for StoredComponent {
    async fn artifact(&self, engine: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .store
            .compiled_component_get(self.tenant_id, &self.digest, engine)
            .await?)
    }

    async fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        match self
            .store
            .component_bytes(self.tenant_id, &self.digest)
            .await
        {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(anyhow::anyhow!(
                "component {} is not in the database",
                self.digest
            )),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    }

    async fn keep_artifact(&self, engine: &str, artifact: Vec<u8>) {
        let params = CompiledComponentPutParams {
            tenant_id: self.tenant_id,
            digest: self.digest.clone(),
            engine: engine.to_owned(),
            artifact,
        };
        if let Err(error) = self.store.compiled_component_put(params).await {
            tracing::warn!(digest = %self.digest, %error, "could not keep a compiled artifact");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunState;
    use crate::store::Transition;

    fn run(attempt: i32, max_attempts: i32) -> ClaimedRun {
        ClaimedRun {
            id: Uuid::now_v7(),
            tenant_id: 1,
            job_id: 1,
            version: 1,
            input: String::new(),
            attempt,
            max_attempts,
            timeout_ms: 1000,
            fuel: 1000,
            memory_mb: 64,
            backoff_base_ms: 100,
            scheduled_at: chrono::Utc::now(),
            lease_token: Uuid::new_v4(),
            snoozes: 0,
            runner_faults: 0,
            priority: 0,
            log_budget: None,
            queue: "default".into(),
        }
    }

    fn report(outcome: Outcome, retryable: bool) -> AttemptReport {
        AttemptReport {
            outcome,
            output: (outcome == Outcome::Ok).then(|| serde_json::json!({"n": 1})),
            error: (outcome != Outcome::Ok).then(|| "boom".to_string()),
            retryable,
            retry_delay: None,
            snooze: None,
            fuel_used: 10,
            peak_memory_bytes: 20,
            duration: Duration::from_millis(3),
            runner_fault: false,
            outbound: None,
        }
    }

    #[test]
    fn each_report_maps_to_one_transition() {
        let limits = RunLimits::default();
        let now = chrono::Utc::now();
        let ok = decide(
            &limits,
            &run(1, 3),
            report(Outcome::Ok, false),
            None,
            now,
            now,
        );
        assert_eq!(ok.transition.state(), RunState::Succeeded);
        assert_eq!(ok.run_error(), None);
        assert_eq!(ok.record.fuel_used, 10);

        let retry = decide(
            &limits,
            &run(1, 3),
            report(Outcome::Panic, true),
            None,
            now,
            now,
        );
        assert!(matches!(retry.transition, Transition::Retry { delay_ms } if delay_ms >= 100));
        assert!(!retry.transition.refunds_attempt());

        let last = decide(
            &limits,
            &run(3, 3),
            report(Outcome::Panic, true),
            None,
            now,
            now,
        );
        assert_eq!(last.transition, Transition::Fail);
        assert!(last.reason.contains("no attempts left"), "{}", last.reason);

        let fatal = decide(
            &limits,
            &run(1, 3),
            report(Outcome::Error, false),
            None,
            now,
            now,
        );
        assert_eq!(fatal.transition, Transition::Fail);

        let mut snooze = report(Outcome::Error, false);
        snooze.snooze = Some((Duration::from_millis(250), "later".into()));
        let snoozed = decide(&limits, &run(1, 3), snooze, None, now, now);
        assert_eq!(snoozed.transition, Transition::Snooze { delay_ms: 250 });
        assert!(snoozed.transition.refunds_attempt());

        let mut fault = report(Outcome::Error, false);
        fault.runner_fault = true;
        let refunded = decide(&limits, &run(1, 1), fault.clone(), None, now, now);
        assert!(matches!(
            refunded.transition,
            Transition::RunnerFault { .. }
        ));
        assert!(refunded.transition.refunds_attempt());
        // Refunds are capped: past the cap the attempt counts like any crash.
        let mut faulty = run(1, 2);
        faulty.runner_faults = MAX_RUNNER_FAULT_REFUNDS;
        let counted = decide(&limits, &faulty, fault.clone(), None, now, now);
        assert!(matches!(counted.transition, Transition::Retry { .. }));
        assert!(!counted.transition.refunds_attempt());
        let mut faulty = run(2, 2);
        faulty.runner_faults = MAX_RUNNER_FAULT_REFUNDS;
        let last = decide(&limits, &faulty, fault, None, now, now);
        assert_eq!(last.transition, Transition::Fail);

        let cancelled = decide(
            &limits,
            &run(1, 3),
            report(Outcome::Panic, true),
            Some(Interrupt::Cancel),
            now,
            now,
        );
        assert_eq!(cancelled.transition, Transition::Cancel);

        let shutdown = decide(
            &limits,
            &run(1, 3),
            report(Outcome::Cancelled, false),
            Some(Interrupt::Shutdown),
            now,
            now,
        );
        assert_eq!(shutdown.transition, Transition::HandBack);
        assert!(shutdown.transition.records_attempt());
    }

    #[test]
    fn a_released_run_records_no_attempt_and_keeps_no_error() {
        let released = Completion::released(&run(2, 3), "runner stopping".into());
        assert_eq!(released.transition.state(), RunState::Enqueued);
        assert!(!released.transition.records_attempt());
        assert!(!released.transition.refunds_attempt());
        assert_eq!(released.run_error(), None);
    }
}
