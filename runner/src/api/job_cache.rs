//! Jobs read recently by single-run enqueues, so a client's stream of enqueues costs one job
//! read per job every few seconds instead of one per request (that read was a round trip to
//! the database and two wake-ups of a backend on every enqueue: without it a sequential
//! client enqueues about a third faster and eight concurrent clients about half faster).
//!
//! Correctness never rests on the cache. A cached job carries its row's version (`xmin` of its
//! `jobs` row, [`Job::row_version`]); the insert (`store/sql/run_insert*.sql`) refuses a run
//! whose job row changed since it was read (a new version, new defaults, new grants) and the
//! store says [`StoreError::JobChanged`](crate::store::StoreError::JobChanged); the enqueue
//! then reads the job again and retries. So an upload through any runner, or a change by SQL
//! by hand, takes effect for the very next enqueue everywhere, as without the cache. The
//! runner that served an upload also forgets the job at once, which saves that one refused
//! insert.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::Job;

/// How long a read job is used without asking the database again (the insert still checks
/// that it is current).
pub const JOB_CACHE_TTL: Duration = Duration::from_secs(10);

/// Most jobs remembered; past it the cache starts again empty (a flood of distinct jobs
/// costs reads, never memory).
const MAX_JOBS: usize = 10_000;

/// Jobs by tenant and name, with when they were read.
#[derive(Debug, Default)]
pub struct JobCache {
    jobs: Mutex<HashMap<(i64, String), (Instant, Job)>>,
}

impl JobCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), (Instant, Job)>> {
        // Plain inserts and removals: a panic elsewhere cannot leave the map inconsistent.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant's job of this name, if it was read less than the TTL ago.
    pub fn get(&self, tenant_id: i64, name: &str) -> Option<Job> {
        let jobs = self.lock();
        match jobs.get(&(tenant_id, name.to_string())) {
            Some((at, job)) if at.elapsed() < JOB_CACHE_TTL => Some(job.clone()),
            _ => None,
        }
    }

    /// Remembers a job just read from the database.
    pub fn put(&self, tenant_id: i64, job: &Job) {
        let mut jobs = self.lock();
        if jobs.len() >= MAX_JOBS {
            jobs.clear();
        }
        jobs.insert((tenant_id, job.name.clone()), (Instant::now(), job.clone()));
    }

    /// Forgets the tenant's job of this name (it changed, or the insert found it changed).
    pub fn forget(&self, tenant_id: i64, name: &str) {
        self.lock().remove(&(tenant_id, name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunOptions;

    fn job(name: &str, version: i32) -> Job {
        Job {
            id: 7,
            name: name.into(),
            version,
            row_version: 100 + i64::from(version),
            digest: "d".into(),
            size: 1,
            defaults: RunOptions::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn jobs_are_kept_per_tenant_and_forgotten_on_request() {
        let cache = JobCache::default();
        assert!(cache.get(1, "a").is_none());
        cache.put(1, &job("a", 2));
        assert_eq!(cache.get(1, "a").map(|j| j.version), Some(2));
        assert!(
            cache.get(2, "a").is_none(),
            "another tenant's job of the same name"
        );
        assert!(cache.get(1, "b").is_none());
        cache.forget(1, "a");
        assert!(cache.get(1, "a").is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = JobCache::default();
        for i in 0..MAX_JOBS + 5 {
            cache.put(i as i64, &job("a", 1));
        }
        assert!(cache.lock().len() <= MAX_JOBS);
        assert!(cache.get((MAX_JOBS + 4) as i64, "a").is_some());
    }
}
