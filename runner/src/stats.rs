//! The rollup of ended attempts (`run_stats`, migration 0009): what the dashboard's charts and
//! usage pages read, so that they never scan `runs` or `attempts`.
//!
//! The completer adds every attempt it commits to an in-memory sum per 10-second bucket, tenant,
//! job and outcome ([`Rollup::add`]: a hash-map update, nothing on the database's hot path). A
//! flusher writes the sums every `flush` interval, in one statement, as rows of three widths
//! (10 s, one hour, one UTC day) keyed by this runner's id, so runners never contend for a row.
//! A flush that fails keeps its sums for the next one. If the process dies, the sums of its
//! last interval are lost (the runs and attempts are not): the rollup is for charts and usage,
//! and says so in the docs. The rescuer counts `runner_lost` attempts in its own statement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::model::Outcome;
use crate::store::{StatsRow, Store};

/// The bucket widths written, in seconds: the realtime chart, the history, the daily usage.
pub const WIDTHS: [i32; 3] = [10, 3600, 86400];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// Start of the 10-second bucket, in Unix seconds.
    bucket: i64,
    tenant_id: i64,
    job_id: i64,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sum {
    attempts: i64,
    runs_ended: i64,
    fuel_used: i64,
    duration_ms: i64,
    peak_memory_max: i64,
}

impl Sum {
    fn merge(&mut self, other: &Sum) {
        self.attempts += other.attempts;
        self.runs_ended += other.runs_ended;
        self.fuel_used = self.fuel_used.saturating_add(other.fuel_used);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
        self.peak_memory_max = self.peak_memory_max.max(other.peak_memory_max);
    }
}

/// One ended attempt, as the rollup counts it.
#[derive(Debug, Clone, Copy)]
pub struct EndedAttempt {
    pub tenant_id: i64,
    pub job_id: i64,
    pub outcome: Outcome,
    pub ended_at: DateTime<Utc>,
    /// The attempt ended its run (succeeded, failed or cancelled).
    pub run_ended: bool,
    pub fuel_used: i64,
    pub duration_ms: i64,
    pub peak_memory: i64,
}

/// This runner's sums not yet written.
#[derive(Debug)]
pub struct Rollup {
    runner_id: Uuid,
    sums: Mutex<HashMap<Key, Sum>>,
}

impl Rollup {
    pub fn new(runner_id: Uuid) -> Rollup {
        Rollup {
            runner_id,
            sums: Mutex::new(HashMap::new()),
        }
    }

    pub fn add(&self, a: EndedAttempt) {
        let key = Key {
            bucket: a.ended_at.timestamp().div_euclid(10) * 10,
            tenant_id: a.tenant_id,
            job_id: a.job_id,
            outcome: a.outcome,
        };
        let sum = Sum {
            attempts: 1,
            runs_ended: i64::from(a.run_ended),
            fuel_used: a.fuel_used.max(0),
            duration_ms: a.duration_ms.max(0),
            peak_memory_max: a.peak_memory.max(0),
        };
        self.lock().entry(key).or_default().merge(&sum);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Sum>> {
        self.sums.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> HashMap<Key, Sum> {
        std::mem::take(&mut *self.lock())
    }

    fn put_back(&self, sums: HashMap<Key, Sum>) {
        let mut current = self.lock();
        for (key, sum) in sums {
            current.entry(key).or_default().merge(&sum);
        }
    }

    /// Writes the sums gathered so far; on failure keeps them for the next flush.
    pub async fn flush(&self, store: &dyn Store) -> bool {
        let sums = self.take();
        if sums.is_empty() {
            return true;
        }
        match store.stats_add(self.runner_id, &rows(&sums)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "writing the run statistics failed; keeping them for the next flush");
                self.put_back(sums);
                false
            }
        }
    }
}

/// The rows of every width for a set of 10-second sums (wider buckets merged).
fn rows(sums: &HashMap<Key, Sum>) -> Vec<StatsRow> {
    let mut wide: HashMap<(i32, Key), Sum> = HashMap::with_capacity(sums.len() * WIDTHS.len());
    for (key, sum) in sums {
        for width in WIDTHS {
            let bucket = key.bucket.div_euclid(i64::from(width)) * i64::from(width);
            wide.entry((width, Key { bucket, ..*key }))
                .or_default()
                .merge(sum);
        }
    }
    let mut rows: Vec<StatsRow> = wide
        .into_iter()
        .map(|((width_s, key), sum)| StatsRow {
            width_s,
            bucket: Utc
                .timestamp_opt(key.bucket, 0)
                .single()
                .unwrap_or_default(),
            tenant_id: key.tenant_id,
            job_id: key.job_id,
            outcome: key.outcome,
            attempts: sum.attempts,
            runs_ended: sum.runs_ended,
            fuel_used: sum.fuel_used,
            duration_ms: sum.duration_ms,
            peak_memory_max: sum.peak_memory_max,
        })
        .collect();
    // One order for every writer's statement.
    rows.sort_by_key(|r| {
        (
            r.width_s,
            r.bucket,
            r.tenant_id,
            r.job_id,
            r.outcome.as_str(),
        )
    });
    rows
}

/// Flushes every `interval` until `stop`, then once more.
pub async fn run(
    rollup: Arc<Rollup>,
    store: Arc<dyn Store>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => break,
        }
        rollup.flush(store.as_ref()).await;
    }
    rollup.flush(store.as_ref()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(secs: i64, outcome: Outcome, fuel: i64, peak: i64) -> EndedAttempt {
        EndedAttempt {
            tenant_id: 1,
            job_id: 2,
            outcome,
            ended_at: Utc.timestamp_opt(secs, 0).unwrap(),
            run_ended: outcome == Outcome::Ok,
            fuel_used: fuel,
            duration_ms: 5,
            peak_memory: peak,
        }
    }

    #[test]
    fn attempts_are_summed_per_bucket_of_each_width() {
        let rollup = Rollup::new(Uuid::nil());
        // 86,395 and 86,399 share a 10 s bucket; 86,400 starts the next day.
        rollup.add(attempt(86_395, Outcome::Ok, 10, 100));
        rollup.add(attempt(86_399, Outcome::Ok, 20, 300));
        rollup.add(attempt(86_400, Outcome::Ok, 5, 50));
        rollup.add(attempt(86_400, Outcome::Error, 1, 1));
        let rows = rows(&rollup.take());
        let find = |width: i32, secs: i64, outcome: Outcome| {
            rows.iter()
                .find(|r| {
                    r.width_s == width && r.bucket.timestamp() == secs && r.outcome == outcome
                })
                .unwrap_or_else(|| panic!("no row {width} {secs} {outcome:?}: {rows:?}"))
        };
        let fine = find(10, 86_390, Outcome::Ok);
        assert_eq!(
            (fine.attempts, fine.fuel_used, fine.peak_memory_max),
            (2, 30, 300)
        );
        assert_eq!(find(10, 86_400, Outcome::Ok).attempts, 1);
        assert_eq!(find(3600, 82_800, Outcome::Ok).attempts, 2);
        assert_eq!(find(86400, 0, Outcome::Ok).runs_ended, 2);
        assert_eq!(find(86400, 86_400, Outcome::Ok).attempts, 1);
        assert_eq!(find(86400, 86_400, Outcome::Error).runs_ended, 0);
        assert_eq!(rows.len(), 3 + 3 + 3);
        assert!(rollup.take().is_empty(), "taken sums are gone");
    }

    #[test]
    fn sums_put_back_after_a_failed_flush_merge_with_new_ones() {
        let rollup = Rollup::new(Uuid::nil());
        rollup.add(attempt(100, Outcome::Timeout, 7, 9));
        let taken = rollup.take();
        rollup.add(attempt(101, Outcome::Timeout, 3, 20));
        rollup.put_back(taken);
        let rows = rows(&rollup.take());
        let fine = rows.iter().find(|r| r.width_s == 10).unwrap();
        assert_eq!(
            (fine.attempts, fine.fuel_used, fine.peak_memory_max),
            (2, 10, 20)
        );
    }
}
