//! The prefetch buffer: runs this runner claimed and holds (their leases are renewed by the
//! heartbeat) until a slot frees. Hands them out round-robin by tenant, so one tenant's
//! backlog never queues ahead of another tenant's run; a tenant new to the buffer goes first.

use std::collections::{HashMap, VecDeque};

use crate::sandbox::CancelFlag;
use crate::store::ClaimedRun;

#[derive(Default)]
pub(super) struct Prefetch {
    runs: HashMap<i64, VecDeque<(ClaimedRun, CancelFlag)>>,
    /// Tenants with buffered runs, the next to be served first.
    order: VecDeque<i64>,
    len: usize,
}

impl Prefetch {
    pub fn push(&mut self, run: ClaimedRun, flag: CancelFlag) {
        let tenant = run.tenant_id;
        let runs = self.runs.entry(tenant).or_default();
        if runs.is_empty() {
            // Not served recently (or ever): next in line.
            self.order.push_front(tenant);
        }
        runs.push_back((run, flag));
        self.len += 1;
    }

    /// The next run: from the tenant whose turn it is.
    pub fn pop(&mut self) -> Option<(ClaimedRun, CancelFlag)> {
        let tenant = self.order.pop_front()?;
        let runs = self.runs.get_mut(&tenant)?;
        let next = runs.pop_front();
        if runs.is_empty() {
            self.runs.remove(&tenant);
        } else {
            self.order.push_back(tenant);
        }
        if next.is_some() {
            self.len -= 1;
        }
        next
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tenants with buffered runs.
    pub fn tenants(&self) -> Vec<i64> {
        self.order.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn run(tenant_id: i64) -> ClaimedRun {
        ClaimedRun {
            id: Uuid::now_v7(),
            tenant_id,
            job_id: 1,
            version: 1,
            input: String::new(),
            attempt: 1,
            max_attempts: 1,
            timeout_ms: 1,
            fuel: 1,
            memory_mb: 1,
            backoff_base_ms: 0,
            scheduled_at: chrono::Utc::now(),
            lease_token: Uuid::new_v4(),
            snoozes: 0,
            runner_faults: 0,
            priority: 0,
            log_budget: None,
            queue: "default".into(),
        }
    }

    #[test]
    fn tenants_take_turns_and_a_newcomer_goes_next() {
        let mut p = Prefetch::default();
        for _ in 0..3 {
            p.push(run(1), CancelFlag::default());
        }
        assert_eq!(p.pop().map(|(r, _)| r.tenant_id), Some(1));
        // Tenant 2 arrives behind tenant 1's backlog and is served next.
        p.push(run(2), CancelFlag::default());
        p.push(run(2), CancelFlag::default());
        let order: Vec<_> = std::iter::from_fn(|| p.pop().map(|(r, _)| r.tenant_id)).collect();
        assert_eq!(order, [2, 1, 2, 1]);
        assert!(p.is_empty());
        assert_eq!(p.len(), 0);
    }
}
