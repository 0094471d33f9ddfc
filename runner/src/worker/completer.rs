//! Writes attempt outcomes in batches: one transaction for up to `complete_batch` completions
//! and their log lines. A write that fails is retried with backoff until it succeeds; an
//! outcome is never dropped (if the process dies first, the lease expires and the run is
//! rescued).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::WorkerContext;
use crate::model::RunState;
use crate::stats::EndedAttempt;
use crate::store::{Completion, NewLogLine, StoreError};

/// A finished attempt waiting to be written.
#[derive(Debug)]
pub(crate) struct Done {
    pub completion: Completion,
    pub lines: Vec<NewLogLine>,
}

/// Most log lines written in one transaction (bounds the statement size).
const MAX_BATCH_LINES: usize = 20_000;

/// A write of more completions than this means the runner is busy: the next write lingers
/// (`complete_linger`) to gather a larger batch. A quiet runner writes each one at once.
const BUSY_BATCH: usize = 8;

pub(super) async fn run(ctx: Arc<WorkerContext>, mut rx: mpsc::Receiver<Done>) {
    let max = ctx.settings.complete_batch.max(1);
    let mut completions = Vec::with_capacity(max);
    let mut lines = Vec::new();
    let mut busy = false;
    while let Some(first) = rx.recv().await {
        completions.push(first.completion);
        lines.extend(first.lines);
        let deadline = tokio::time::Instant::now() + ctx.settings.complete_linger;
        while completions.len() < max && lines.len() < MAX_BATCH_LINES {
            let next = match rx.try_recv() {
                Ok(done) => Some(done),
                Err(mpsc::error::TryRecvError::Empty) if busy => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
                Err(_) => None,
            };
            let Some(done) = next else { break };
            completions.push(done.completion);
            lines.extend(done.lines);
        }
        busy = completions.len() > BUSY_BATCH;
        write(&ctx, &completions, &lines).await;
        completions.clear();
        lines.clear();
    }
}

/// Writes the batch, then lets go of its leases: until then the heartbeat keeps renewing them
/// (an outcome is not durable before its write commits).
async fn write(ctx: &WorkerContext, completions: &[Completion], lines: &[NewLogLine]) {
    write_batch(ctx, completions, lines).await;
    for c in completions {
        ctx.in_flight.remove(c.lease_token);
    }
}

async fn write_batch(ctx: &WorkerContext, completions: &[Completion], lines: &[NewLogLine]) {
    if write_retrying(ctx, completions, lines).await {
        return;
    }
    // The database refused something in this batch (not an outage): find it by writing the
    // completions one by one, so one bad row never holds back the others.
    for c in completions {
        let own: Vec<NewLogLine> = lines
            .iter()
            .filter(|l| l.run_id == c.run_id)
            .cloned()
            .collect();
        if write_retrying(ctx, std::slice::from_ref(c), &own).await {
            continue;
        }
        tracing::error!(run = %c.run_id, "outcome refused by the database; writing it without its log lines");
        if !write_retrying(ctx, std::slice::from_ref(c), &[]).await {
            tracing::error!(
                run = %c.run_id,
                "outcome refused by the database; the run stays running until its lease expires"
            );
        }
    }
}

/// Writes until success or a refusal that retrying cannot fix (returns false then).
async fn write_retrying(
    ctx: &WorkerContext,
    completions: &[Completion],
    lines: &[NewLogLine],
) -> bool {
    let mut failures = 0u32;
    loop {
        match ctx.store.run_complete_many(completions, lines).await {
            Ok(accepted) => {
                // Usually every completion is accepted; otherwise look the ids up by hash.
                let all = accepted.len() == completions.len();
                let accepted_set: std::collections::HashSet<_> = if all {
                    Default::default()
                } else {
                    accepted.iter().collect()
                };
                for c in completions
                    .iter()
                    .filter(|c| all || accepted_set.contains(&c.run_id))
                {
                    ctx.metrics.outcome_written(c);
                    if c.transition.records_attempt() {
                        ctx.stats.add(EndedAttempt {
                            tenant_id: c.tenant_id,
                            job_id: c.job_id,
                            outcome: c.record.outcome,
                            ended_at: c.record.ended_at,
                            run_ended: c.transition.state().is_terminal(),
                            fuel_used: c.record.fuel_used,
                            duration_ms: c.record.duration_ms,
                            peak_memory: c.record.peak_memory,
                        });
                    }
                }
                if completions.iter().any(|c| {
                    matches!(
                        c.transition.state(),
                        RunState::Retrying | RunState::Scheduled
                    )
                }) {
                    ctx.promoter.notify_one();
                }
                if accepted.len() < completions.len() {
                    for c in completions.iter().filter(|c| !accepted.contains(&c.run_id)) {
                        tracing::warn!(
                            run = %c.run_id,
                            "outcome rejected: this runner no longer holds the run's lease"
                        );
                    }
                }
                return true;
            }
            Err(StoreError::Unavailable(e)) => {
                failures += 1;
                let backoff = Duration::from_millis(50 * 2u64.pow(failures.min(5)));
                tracing::warn!(
                    error = %e,
                    completions = completions.len(),
                    retry_in_ms = backoff.as_millis() as u64,
                    "writing outcomes failed; retrying"
                );
                tokio::time::sleep(backoff).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, completions = completions.len(), "outcomes refused");
                return false;
            }
        }
    }
}
