//! Admission of new runs against a tenant's quotas: the enqueue rate (a token bucket per
//! tenant in this runner) and the number of active runs (counted in the database, at most
//! limit + 1 entries). A refusal is a `429 quota_exceeded` naming the limit, with `Retry-After`
//! where waiting helps, and is counted per tenant and day for the operator.
//!
//! Both checks run before anything is written, so a refused request creates nothing. They are
//! admission checks, not locks: requests admitted at the same instant may together overshoot
//! `max_active_runs` by their own sizes (documented in `docs/security.md`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::TenantGrant;

/// Per-tenant token buckets of this runner. Each holds one second's worth of its tenant's
/// `enqueue_per_s`; a request that finds a whole token left is admitted whole and may leave the
/// bucket in debt (so a bulk request larger than one second's worth still gets in, and later requests
/// wait until the debt is paid).
#[derive(Debug, Default)]
pub struct EnqueueRate {
    buckets: Mutex<HashMap<i64, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl EnqueueRate {
    /// Takes `n` tokens at `rate` per second; `Err(seconds to wait)` when none are left.
    pub fn take(&self, tenant_id: i64, rate: i32, n: u64) -> Result<(), u64> {
        let rate = f64::from(rate.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(tenant_id).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            // Time until the bucket is out of debt and holds at least one token.
            return Err(((1.0 - bucket.tokens) / rate).ceil() as u64);
        }
        bucket.tokens -= n as f64;
        Ok(())
    }
}

/// Counts a refusal for the operator, without delaying the answer.
pub fn record_hit(state: &AppState, tenant_id: i64, limit: &'static str) {
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.tenant_limit_hit(tenant_id, limit).await {
            tracing::warn!(error = %e, tenant_id, limit, "recording a quota refusal failed");
        }
    });
}

/// Admits `n` new runs of the tenant, or refuses them all.
pub async fn admit_runs(state: &AppState, grant: &TenantGrant, n: u64) -> ApiResult<()> {
    let tenant_id = grant.tenant.id;
    if let Some(rate) = grant.limits.enqueue_per_s
        && let Err(wait) = state.enqueue_rate.take(tenant_id, rate, n)
    {
        record_hit(state, tenant_id, "enqueue_per_s");
        return Err(ApiError::quota(
            "enqueue_per_s",
            i64::from(rate),
            "slow down and retry after the time in Retry-After",
            Some(wait),
        ));
    }
    if let Some(max) = grant.limits.max_active_runs {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let active = state
            .store
            .tenant_active_runs(tenant_id, max.saturating_add(1))
            .await?;
        if active.saturating_add(n) > max {
            record_hit(state, tenant_id, "max_active_runs");
            return Err(ApiError::quota(
                "max_active_runs",
                max,
                &format!(
                    "{active} runs are waiting or running and this request adds {n}; \
                     retry when some have ended"
                ),
                Some(1),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_one_seconds_worth_then_refuses_until_refilled() {
        let rate = EnqueueRate::default();
        for _ in 0..10 {
            assert!(rate.take(1, 10, 1).is_ok());
        }
        let wait = rate.take(1, 10, 1).expect_err("the bucket is empty");
        assert!(wait >= 1, "Retry-After is at least a second, got {wait}");
        // Another tenant has its own bucket.
        assert!(rate.take(2, 10, 1).is_ok());
    }

    #[test]
    fn a_large_request_is_admitted_into_debt_and_later_ones_wait_it_out() {
        let rate = EnqueueRate::default();
        assert!(
            rate.take(1, 100, 1000).is_ok(),
            "a full bucket admits a bulk request"
        );
        let wait = rate.take(1, 100, 1).expect_err("the bucket is in debt");
        assert!(
            (9..=11).contains(&wait),
            "about 900/100 s of debt, got {wait}"
        );
    }
}
