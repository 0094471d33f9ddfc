//! Tenants, their API keys (with roles) and the operator's quotas on them.
//!
//! A key authorises one tenant with one role; disabling a key or its tenant takes effect on the
//! next request on every runner, because every request looks its key up here (by hash). Quota
//! overrides live in `tenant_limits`; a missing value means "the runner's default".

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::postgres::classify;
use super::{PgStore, StoreError, StoreResult};
use crate::config::TenantLimits;

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    /// Its share of claims relative to other tenants with ready work (1-100).
    pub weight: i32,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// What a key may do with its tenant's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Read and change everything the tenant owns.
    Full,
    /// Read everything the tenant owns, change nothing.
    Read,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Full => "full",
            KeyRole::Read => "read",
        }
    }

    fn parse(text: &str) -> Result<KeyRole, sqlx::Error> {
        match text {
            "full" => Ok(KeyRole::Full),
            "read" => Ok(KeyRole::Read),
            other => Err(sqlx::Error::Decode(
                format!("unknown key role {other:?}").into(),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyInfo {
    pub prefix: String,
    pub role: KeyRole,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A new key as stored: the secret itself is never stored.
#[derive(Debug, Clone)]
pub struct ApiKeyCreateParams {
    pub tenant: String,
    pub prefix: String,
    pub hash: Vec<u8>,
    pub role: KeyRole,
}

/// What an enabled key of an enabled tenant grants: the tenant, the key's role and the
/// tenant's own quota overrides (resolve them against the runner's defaults with
/// [`TenantLimits::or`]).
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub tenant: Tenant,
    pub role: KeyRole,
    pub limits: TenantLimits,
}

/// What a tenant uses now, for the quotas that count something stored.
#[derive(Debug, Clone, Default)]
pub struct TenantUsage {
    pub active_runs: i64,
    pub running: i64,
    pub schedules: i64,
    pub jobs: i64,
    /// Most versions any one of its jobs has.
    pub max_versions_of_a_job: i64,
}

/// How often one limit refused a tenant on one day.
#[derive(Debug, Clone)]
pub struct LimitHits {
    pub day: NaiveDate,
    pub limit: String,
    pub hits: i64,
}

#[async_trait::async_trait]
pub trait TenancyStore {
    /// Creates a tenant and its first key in one transaction.
    async fn tenant_create(&self, name: &str, key: ApiKeyCreateParams) -> StoreResult<Tenant>;
    async fn tenant_list(&self) -> StoreResult<Vec<Tenant>>;
    async fn tenant_get(&self, name: &str) -> StoreResult<Option<Tenant>>;
    /// Sets a tenant's claim weight; `None` when the tenant does not exist.
    async fn tenant_weight_set(&self, name: &str, weight: i32) -> StoreResult<Option<Tenant>>;
    /// Disables (every key stops working, its runs are not claimed) or enables a tenant.
    async fn tenant_disabled_set(&self, name: &str, disabled: bool) -> StoreResult<Option<Tenant>>;
    /// The grant of an enabled key of an enabled tenant with this hash.
    async fn key_grant_by_hash(&self, hash: &[u8]) -> StoreResult<Option<KeyGrant>>;
    /// Returns `None` when the tenant does not exist.
    async fn api_key_create(&self, params: ApiKeyCreateParams) -> StoreResult<Option<ApiKeyInfo>>;
    /// A tenant's keys, newest first; `None` when the tenant does not exist.
    async fn api_key_list(&self, tenant: &str) -> StoreResult<Option<Vec<ApiKeyInfo>>>;
    /// Disables the tenant's enabled keys with this prefix; `None` when the tenant does not
    /// exist, else how many keys were disabled.
    async fn api_key_disable(&self, tenant: &str, prefix: &str) -> StoreResult<Option<u64>>;
    /// The tenant's own quota overrides; `None` when the tenant does not exist.
    async fn tenant_limits_get(&self, name: &str) -> StoreResult<Option<(Tenant, TenantLimits)>>;
    /// The tenant's own quota overrides by id (all `None` for an unknown tenant).
    async fn tenant_limits_of(&self, tenant_id: i64) -> StoreResult<TenantLimits>;
    /// Replaces the tenant's quota overrides; `None` when the tenant does not exist.
    async fn tenant_limits_put(
        &self,
        name: &str,
        limits: &TenantLimits,
    ) -> StoreResult<Option<Tenant>>;
    async fn tenant_usage(&self, tenant_id: i64) -> StoreResult<TenantUsage>;
    /// Runs of the tenant waiting or running, counting at most `cap` of them.
    async fn tenant_active_runs(&self, tenant_id: i64, cap: i64) -> StoreResult<i64>;
    /// Records that `limit` refused one of the tenant's requests today.
    async fn tenant_limit_hit(&self, tenant_id: i64, limit: &str) -> StoreResult<()>;
    /// Refusals per limit and day since `since`, newest day first.
    async fn tenant_limit_hits(
        &self,
        tenant_id: i64,
        since: NaiveDate,
    ) -> StoreResult<Vec<LimitHits>>;
}

const TENANT_COLUMNS: &str = "t.id, t.name, t.weight, t.created_at, t.disabled_at";

pub(super) fn tenant_from_row(row: &PgRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        weight: row.try_get("weight")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

fn key_from_row(row: &PgRow) -> Result<ApiKeyInfo, sqlx::Error> {
    Ok(ApiKeyInfo {
        prefix: row.try_get("prefix")?,
        role: KeyRole::parse(row.try_get("role")?)?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

/// Reads the `tenant_limits` columns of a row (all NULL when the tenant has no row).
fn limits_from_row(row: &PgRow) -> Result<TenantLimits, sqlx::Error> {
    Ok(TenantLimits {
        max_active_runs: row.try_get("max_active_runs")?,
        max_running: row.try_get("max_running")?,
        max_schedules: row.try_get("max_schedules")?,
        min_schedule_interval_ms: row.try_get("min_schedule_interval_ms")?,
        enqueue_per_s: row.try_get("enqueue_per_s")?,
        max_jobs: row.try_get("max_jobs")?,
        max_versions_per_job: row.try_get("max_versions_per_job")?,
        max_log_bytes_per_attempt: row.try_get("max_log_bytes_per_attempt")?,
    })
}

const LIMIT_COLUMNS: &str = "l.max_active_runs, l.max_running, l.max_schedules, \
     l.min_schedule_interval_ms, l.enqueue_per_s, l.max_jobs, l.max_versions_per_job, \
     l.max_log_bytes_per_attempt";

#[async_trait::async_trait]
impl TenancyStore for PgStore {
    async fn tenant_create(&self, name: &str, key: ApiKeyCreateParams) -> StoreResult<Tenant> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        let row = sqlx::query(
            "INSERT INTO tenants AS t (name) VALUES ($1)
             RETURNING t.id, t.name, t.weight, t.created_at, t.disabled_at",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match classify(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("tenant {name} exists")),
            other => other,
        })?;
        let tenant = tenant_from_row(&row).map_err(classify)?;
        sqlx::query("INSERT INTO api_keys (tenant_id, prefix, hash, role) VALUES ($1, $2, $3, $4)")
            .bind(tenant.id)
            .bind(&key.prefix)
            .bind(&key.hash)
            .bind(key.role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(tenant)
    }

    async fn tenant_list(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t ORDER BY t.name"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(classify)?;
        rows.iter()
            .map(tenant_from_row)
            .collect::<Result<_, _>>()
            .map_err(classify)
    }

    async fn tenant_get(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.name = $1"
        )))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.as_ref()
            .map(tenant_from_row)
            .transpose()
            .map_err(classify)
    }

    async fn tenant_weight_set(&self, name: &str, weight: i32) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tenants t SET weight = $2 WHERE t.name = $1 RETURNING {TENANT_COLUMNS}"
        )))
        .bind(name)
        .bind(weight)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.as_ref()
            .map(tenant_from_row)
            .transpose()
            .map_err(classify)
    }

    async fn tenant_disabled_set(&self, name: &str, disabled: bool) -> StoreResult<Option<Tenant>> {
        // Disabling keeps the first time it was disabled; enabling clears it.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tenants t
             SET disabled_at = CASE WHEN $2 THEN coalesce(t.disabled_at, now()) END
             WHERE t.name = $1 RETURNING {TENANT_COLUMNS}"
        )))
        .bind(name)
        .bind(disabled)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        if row.is_some() {
            // Its schedules wait or fire again: the cron service re-reads the next fire time.
            let _ = sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::SCHEDULES_CHANNEL)
                .execute(self.pool())
                .await;
        }
        row.as_ref()
            .map(tenant_from_row)
            .transpose()
            .map_err(classify)
    }

    async fn key_grant_by_hash(&self, hash: &[u8]) -> StoreResult<Option<KeyGrant>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS}, k.role, {LIMIT_COLUMNS}
             FROM api_keys k
             JOIN tenants t ON t.id = k.tenant_id
             LEFT JOIN tenant_limits l ON l.tenant_id = t.id
             WHERE k.hash = $1 AND k.disabled_at IS NULL AND t.disabled_at IS NULL"
        )))
        .bind(hash)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.map(|row| {
            Ok(KeyGrant {
                tenant: tenant_from_row(&row)?,
                role: KeyRole::parse(row.try_get("role")?)?,
                limits: limits_from_row(&row)?,
            })
        })
        .transpose()
        .map_err(classify)
    }

    async fn api_key_create(&self, params: ApiKeyCreateParams) -> StoreResult<Option<ApiKeyInfo>> {
        let row = sqlx::query(
            "INSERT INTO api_keys (tenant_id, prefix, hash, role)
             SELECT id, $2, $3, $4 FROM tenants WHERE name = $1
             RETURNING prefix, role, created_at, disabled_at",
        )
        .bind(&params.tenant)
        .bind(&params.prefix)
        .bind(&params.hash)
        .bind(params.role.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.as_ref().map(key_from_row).transpose().map_err(classify)
    }

    async fn api_key_list(&self, tenant: &str) -> StoreResult<Option<Vec<ApiKeyInfo>>> {
        let Some(tenant) = self.tenant_get(tenant).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT prefix, role, created_at, disabled_at FROM api_keys
             WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(tenant.id)
        .fetch_all(self.pool())
        .await
        .map_err(classify)?;
        rows.iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(classify)
    }

    async fn api_key_disable(&self, tenant: &str, prefix: &str) -> StoreResult<Option<u64>> {
        let Some(tenant) = self.tenant_get(tenant).await? else {
            return Ok(None);
        };
        let done = sqlx::query(
            "UPDATE api_keys SET disabled_at = now()
             WHERE tenant_id = $1 AND prefix = $2 AND disabled_at IS NULL",
        )
        .bind(tenant.id)
        .bind(prefix)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(Some(done.rows_affected()))
    }

    async fn tenant_limits_get(&self, name: &str) -> StoreResult<Option<(Tenant, TenantLimits)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS}, {LIMIT_COLUMNS}
             FROM tenants t LEFT JOIN tenant_limits l ON l.tenant_id = t.id
             WHERE t.name = $1"
        )))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.map(|row| Ok((tenant_from_row(&row)?, limits_from_row(&row)?)))
            .transpose()
            .map_err(classify)
    }

    async fn tenant_limits_of(&self, tenant_id: i64) -> StoreResult<TenantLimits> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIMIT_COLUMNS} FROM tenant_limits l WHERE l.tenant_id = $1"
        )))
        .bind(tenant_id)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.as_ref()
            .map(limits_from_row)
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(classify)
    }

    async fn tenant_limits_put(
        &self,
        name: &str,
        limits: &TenantLimits,
    ) -> StoreResult<Option<Tenant>> {
        let Some(tenant) = self.tenant_get(name).await? else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO tenant_limits AS l (tenant_id, max_active_runs, max_running,
                 max_schedules, min_schedule_interval_ms, enqueue_per_s, max_jobs,
                 max_versions_per_job, max_log_bytes_per_attempt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id) DO UPDATE SET
                 max_active_runs = EXCLUDED.max_active_runs,
                 max_running = EXCLUDED.max_running,
                 max_schedules = EXCLUDED.max_schedules,
                 min_schedule_interval_ms = EXCLUDED.min_schedule_interval_ms,
                 enqueue_per_s = EXCLUDED.enqueue_per_s,
                 max_jobs = EXCLUDED.max_jobs,
                 max_versions_per_job = EXCLUDED.max_versions_per_job,
                 max_log_bytes_per_attempt = EXCLUDED.max_log_bytes_per_attempt,
                 updated_at = now()",
        )
        .bind(tenant.id)
        .bind(limits.max_active_runs)
        .bind(limits.max_running)
        .bind(limits.max_schedules)
        .bind(limits.min_schedule_interval_ms)
        .bind(limits.enqueue_per_s)
        .bind(limits.max_jobs)
        .bind(limits.max_versions_per_job)
        .bind(limits.max_log_bytes_per_attempt)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        // A raised max_running may make runs claimable: wake the runners of the queues
        // where the tenant has runs waiting (`run_queue_waiting`).
        let _ = sqlx::query(
            "SELECT pg_notify('sandfire_enqueued', q.queue)
             FROM (SELECT DISTINCT queue FROM run_queue
                   WHERE tenant_id = $1 AND state <> 'running') q",
        )
        .bind(tenant.id)
        .execute(self.pool())
        .await;
        Ok(Some(tenant))
    }

    async fn tenant_usage(&self, tenant_id: i64) -> StoreResult<TenantUsage> {
        let row = sqlx::query(
            "SELECT w.n + r.n AS active_runs, r.n AS running,
                    (SELECT count(*) FROM schedules WHERE tenant_id = $1) AS schedules,
                    (SELECT count(*) FROM jobs WHERE tenant_id = $1) AS jobs,
                    (SELECT coalesce(max(n), 0) FROM (
                        SELECT count(*) AS n FROM job_versions v JOIN jobs j ON j.id = v.job_id
                        WHERE j.tenant_id = $1 GROUP BY v.job_id) c) AS max_versions
             -- Waiting and running runs through their own indexes (run_queue_waiting,
             -- run_queue_leased): no index holds both.
             FROM (SELECT count(*) AS n FROM run_queue
                   WHERE tenant_id = $1 AND state <> 'running') w,
                  (SELECT count(*) AS n FROM run_queue
                   WHERE tenant_id = $1 AND state = 'running') r",
        )
        .bind(tenant_id)
        .fetch_one(self.pool())
        .await
        .map_err(classify)?;
        Ok(TenantUsage {
            active_runs: row.try_get("active_runs").map_err(classify)?,
            running: row.try_get("running").map_err(classify)?,
            schedules: row.try_get("schedules").map_err(classify)?,
            jobs: row.try_get("jobs").map_err(classify)?,
            max_versions_of_a_job: row.try_get("max_versions").map_err(classify)?,
        })
    }

    async fn tenant_active_runs(&self, tenant_id: i64, cap: i64) -> StoreResult<i64> {
        // Waiting runs, then running ones, each through its index (run_queue_waiting,
        // run_queue_leased), reading at most `cap` entries in all.
        sqlx::query_scalar(
            "SELECT count(*) FROM (
                 (SELECT 1 FROM run_queue WHERE tenant_id = $1 AND state <> 'running' LIMIT $2)
                 UNION ALL
                 (SELECT 1 FROM run_queue WHERE tenant_id = $1 AND state = 'running' LIMIT $2)
                 LIMIT $2) c",
        )
        .bind(tenant_id)
        .bind(cap.max(0))
        .fetch_one(self.pool())
        .await
        .map_err(classify)
    }

    async fn tenant_limit_hit(&self, tenant_id: i64, limit: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tenant_limit_hits AS h (tenant_id, day, limit_name, hits)
             VALUES ($1, (now() AT TIME ZONE 'UTC')::date, $2, 1)
             ON CONFLICT (tenant_id, day, limit_name) DO UPDATE SET hits = h.hits + 1",
        )
        .bind(tenant_id)
        .bind(limit)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn tenant_limit_hits(
        &self,
        tenant_id: i64,
        since: NaiveDate,
    ) -> StoreResult<Vec<LimitHits>> {
        let rows = sqlx::query(
            "SELECT day, limit_name, hits FROM tenant_limit_hits
             WHERE tenant_id = $1 AND day >= $2 ORDER BY day DESC, limit_name",
        )
        .bind(tenant_id)
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(LimitHits {
                    day: row.try_get("day")?,
                    limit: row.try_get("limit_name")?,
                    hits: row.try_get("hits")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(classify)
    }
}
