//! Capabilities in the database: a tenant's policy (the admin's ceiling), a job's grant, and a
//! tenant's config entries, which are stored sealed (this file never sees a plaintext).
//!
//! Every tenant-side read and write is scoped by `tenant_id`. Patterns and names are validated
//! by the caller (`crate::capabilities`) before they reach here; the tables only bound them.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::postgres::classify;
use super::tenancy::tenant_from_row;
use super::{PgStore, StoreError, StoreResult, Tenant};
use crate::capabilities::secrets::Sealed;

/// A tenant's ceiling. A tenant without a stored policy has the default: no hosts, and the
/// runner's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantPolicy {
    /// Canonical patterns (empty: no network).
    pub allowed_outbound_hosts: Vec<String>,
    /// `None`: the runner's default.
    pub max_requests_per_attempt: Option<i32>,
    /// `None`: the runner's default.
    pub max_response_bytes: Option<i64>,
    /// When it was last set; `None` when never.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a tenant granted one job (every version of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobGrant {
    /// Canonical patterns, each inside the tenant's ceiling when written.
    pub allowed_outbound_hosts: Vec<String>,
    /// Config names the job may read (set or not).
    pub config: Vec<String>,
}

/// One config entry as stored: its metadata and its sealed value.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub secret: bool,
    pub sealed: Sealed,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ConfigPutParams {
    pub tenant_id: i64,
    pub name: String,
    pub secret: bool,
    pub sealed: Sealed,
    /// Most entries the tenant may hold; a new name beyond it is refused
    /// (`QuotaExceeded { limit: "max_config_entries" }`).
    pub max_entries: i64,
}

/// What a config write did.
#[derive(Debug, Clone)]
pub struct ConfigPut {
    pub entry: ConfigEntry,
    /// False when an entry of that name was replaced.
    pub created: bool,
}

/// A sealed entry of some tenant, for re-encryption.
#[derive(Debug, Clone)]
pub struct ConfigSealedRow {
    pub tenant_id: i64,
    pub name: String,
    pub secret: bool,
    pub sealed: Sealed,
}

/// A re-sealed entry: written only if the row still holds `old` (a value replaced meanwhile is
/// left alone: it is already under the active key).
#[derive(Debug, Clone)]
pub struct ConfigReseal {
    pub tenant_id: i64,
    pub name: String,
    pub old: Sealed,
    pub new: Sealed,
}

/// Everything an attempt's capabilities come from, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct AttemptGrantRows {
    pub grant: JobGrant,
    pub policy: TenantPolicy,
    /// The sealed values of the granted names the tenant has set.
    pub config: Vec<ConfigSealedRow>,
}

#[async_trait::async_trait]
pub trait CapabilityStore {
    /// A tenant's policy by tenant name; `None` when the tenant does not exist.
    async fn tenant_policy_get(&self, tenant: &str) -> StoreResult<Option<(Tenant, TenantPolicy)>>;
    /// Replaces a tenant's policy; `None` when the tenant does not exist.
    async fn tenant_policy_put(
        &self,
        tenant: &str,
        policy: &TenantPolicy,
    ) -> StoreResult<Option<(Tenant, TenantPolicy)>>;
    /// A tenant's policy by id (the default for a tenant without one).
    async fn tenant_policy_of(&self, tenant_id: i64) -> StoreResult<TenantPolicy>;
    /// A job's grant; `None` when the tenant has no such job.
    async fn job_grant_get(&self, tenant_id: i64, job: &str) -> StoreResult<Option<JobGrant>>;
    /// Replaces a job's grant; `None` when the tenant has no such job.
    async fn job_grant_put(
        &self,
        tenant_id: i64,
        job: &str,
        grant: &JobGrant,
    ) -> StoreResult<Option<JobGrant>>;
    /// Creates or replaces a config entry, within the tenant's entry quota.
    async fn config_put(&self, params: ConfigPutParams) -> StoreResult<ConfigPut>;
    /// The tenant's entries by name.
    async fn config_list(&self, tenant_id: i64) -> StoreResult<Vec<ConfigEntry>>;
    async fn config_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<ConfigEntry>>;
    /// Whether an entry was deleted.
    async fn config_delete(&self, tenant_id: i64, name: &str) -> StoreResult<bool>;
    /// Entries of every tenant not sealed under `active_key_id`, in (tenant, name) order after
    /// `after`, at most `limit`.
    async fn config_stale(
        &self,
        active_key_id: i32,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ConfigSealedRow>>;
    /// Writes re-sealed entries (each only if unchanged since read); returns how many were.
    async fn config_reseal(&self, reseals: &[ConfigReseal]) -> StoreResult<u64>;
    /// How many entries (of every tenant) each key id seals, by key id.
    async fn config_key_counts(&self) -> StoreResult<Vec<(i32, i64)>>;
    /// The tenant's policy, the job's grant and the sealed values of its granted names, in one
    /// statement; `None` when the tenant has no job `job_id`.
    async fn attempt_grants(
        &self,
        tenant_id: i64,
        job_id: i64,
    ) -> StoreResult<Option<AttemptGrantRows>>;
}

fn policy_from_row(row: &PgRow) -> Result<TenantPolicy, sqlx::Error> {
    Ok(TenantPolicy {
        allowed_outbound_hosts: row
            .try_get::<Option<Vec<String>>, _>("policy_hosts")?
            .unwrap_or_default(),
        max_requests_per_attempt: row.try_get("max_requests_per_attempt")?,
        max_response_bytes: row.try_get("max_response_bytes")?,
        updated_at: row.try_get("policy_updated_at")?,
    })
}

const POLICY_COLUMNS: &str = "p.allowed_outbound_hosts AS policy_hosts, \
     p.max_requests_per_attempt, p.max_response_bytes, p.updated_at AS policy_updated_at";

fn sealed_from_row(row: &PgRow) -> Result<Sealed, sqlx::Error> {
    Ok(Sealed {
        key_id: row.try_get("key_id")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

fn entry_from_row(row: &PgRow) -> Result<ConfigEntry, sqlx::Error> {
    Ok(ConfigEntry {
        name: row.try_get("name")?,
        secret: row.try_get("secret")?,
        sealed: sealed_from_row(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const ENTRY_COLUMNS: &str = "name, secret, ciphertext, nonce, key_id, created_at, updated_at";

#[async_trait::async_trait]
impl CapabilityStore for PgStore {
    async fn tenant_policy_get(&self, tenant: &str) -> StoreResult<Option<(Tenant, TenantPolicy)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.id, t.name, t.weight, t.created_at, t.disabled_at, {POLICY_COLUMNS}
             FROM tenants t LEFT JOIN tenant_policy p ON p.tenant_id = t.id
             WHERE t.name = $1"
        )))
        .bind(tenant)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.map(|row| Ok((tenant_from_row(&row)?, policy_from_row(&row)?)))
            .transpose()
            .map_err(classify)
    }

    async fn tenant_policy_put(
        &self,
        tenant: &str,
        policy: &TenantPolicy,
    ) -> StoreResult<Option<(Tenant, TenantPolicy)>> {
        let done = sqlx::query(
            "INSERT INTO tenant_policy AS p (tenant_id, allowed_outbound_hosts,
                 max_requests_per_attempt, max_response_bytes)
             SELECT t.id, $2, $3, $4 FROM tenants t WHERE t.name = $1
             ON CONFLICT (tenant_id) DO UPDATE SET
                 allowed_outbound_hosts = EXCLUDED.allowed_outbound_hosts,
                 max_requests_per_attempt = EXCLUDED.max_requests_per_attempt,
                 max_response_bytes = EXCLUDED.max_response_bytes,
                 updated_at = now()",
        )
        .bind(tenant)
        .bind(&policy.allowed_outbound_hosts)
        .bind(policy.max_requests_per_attempt)
        .bind(policy.max_response_bytes)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.tenant_policy_get(tenant).await
    }

    async fn tenant_policy_of(&self, tenant_id: i64) -> StoreResult<TenantPolicy> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {POLICY_COLUMNS} FROM tenant_policy p WHERE p.tenant_id = $1"
        )))
        .bind(tenant_id)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.as_ref()
            .map(policy_from_row)
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(classify)
    }

    async fn job_grant_get(&self, tenant_id: i64, job: &str) -> StoreResult<Option<JobGrant>> {
        let row: Option<(Vec<String>, Vec<String>)> = sqlx::query_as(
            "SELECT allowed_outbound_hosts, config FROM jobs WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(job)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        Ok(row.map(|(allowed_outbound_hosts, config)| JobGrant {
            allowed_outbound_hosts,
            config,
        }))
    }

    async fn job_grant_put(
        &self,
        tenant_id: i64,
        job: &str,
        grant: &JobGrant,
    ) -> StoreResult<Option<JobGrant>> {
        let row: Option<(Vec<String>, Vec<String>)> = sqlx::query_as(
            "UPDATE jobs SET allowed_outbound_hosts = $3, config = $4, updated_at = now()
             WHERE tenant_id = $1 AND name = $2
             RETURNING allowed_outbound_hosts, config",
        )
        .bind(tenant_id)
        .bind(job)
        .bind(&grant.allowed_outbound_hosts)
        .bind(&grant.config)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        Ok(row.map(|(allowed_outbound_hosts, config)| JobGrant {
            allowed_outbound_hosts,
            config,
        }))
    }

    async fn config_put(&self, p: ConfigPutParams) -> StoreResult<ConfigPut> {
        let mut tx = self.pool().begin().await.map_err(classify)?;
        // One writer of a tenant's config at a time, so the entry quota is exact.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('sandfire.tenant_config', $1))")
            .bind(p.tenant_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let (count, exists): (i64, bool) = sqlx::query_as(
            "SELECT count(*), coalesce(bool_or(name = $2), false)
             FROM tenant_config WHERE tenant_id = $1",
        )
        .bind(p.tenant_id)
        .bind(&p.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        if !exists && count >= p.max_entries {
            return Err(StoreError::QuotaExceeded {
                limit: "max_config_entries",
                value: p.max_entries,
            });
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tenant_config AS c (tenant_id, name, secret, ciphertext, nonce, key_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 secret = EXCLUDED.secret,
                 ciphertext = EXCLUDED.ciphertext,
                 nonce = EXCLUDED.nonce,
                 key_id = EXCLUDED.key_id,
                 updated_at = now()
             RETURNING {ENTRY_COLUMNS}"
        )))
        .bind(p.tenant_id)
        .bind(&p.name)
        .bind(p.secret)
        .bind(&p.sealed.ciphertext)
        .bind(&p.sealed.nonce)
        .bind(p.sealed.key_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        let entry = entry_from_row(&row).map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(ConfigPut {
            entry,
            created: !exists,
        })
    }

    async fn config_list(&self, tenant_id: i64) -> StoreResult<Vec<ConfigEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM tenant_config WHERE tenant_id = $1 ORDER BY name"
        )))
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await
        .map_err(classify)?;
        rows.iter()
            .map(entry_from_row)
            .collect::<Result<_, _>>()
            .map_err(classify)
    }

    async fn config_get(&self, tenant_id: i64, name: &str) -> StoreResult<Option<ConfigEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM tenant_config WHERE tenant_id = $1 AND name = $2"
        )))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        row.as_ref()
            .map(entry_from_row)
            .transpose()
            .map_err(classify)
    }

    async fn config_delete(&self, tenant_id: i64, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tenant_config WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }

    async fn config_stale(
        &self,
        active_key_id: i32,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ConfigSealedRow>> {
        let (after_tenant, after_name) = match after {
            Some((t, n)) => (Some(t), Some(n)),
            None => (None, None),
        };
        let rows = sqlx::query(
            "SELECT tenant_id, name, secret, ciphertext, nonce, key_id FROM tenant_config
             WHERE key_id <> $1
               AND ($2::bigint IS NULL OR (tenant_id, name) > ($2, $3::text))
             ORDER BY tenant_id, name
             LIMIT $4",
        )
        .bind(active_key_id)
        .bind(after_tenant)
        .bind(after_name)
        .bind(limit.max(1))
        .fetch_all(self.pool())
        .await
        .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(ConfigSealedRow {
                    tenant_id: row.try_get("tenant_id")?,
                    name: row.try_get("name")?,
                    secret: row.try_get("secret")?,
                    sealed: sealed_from_row(row)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(classify)
    }

    async fn config_reseal(&self, reseals: &[ConfigReseal]) -> StoreResult<u64> {
        if reseals.is_empty() {
            return Ok(0);
        }
        let mut tenants = Vec::with_capacity(reseals.len());
        let mut names = Vec::with_capacity(reseals.len());
        let mut old_keys = Vec::with_capacity(reseals.len());
        let mut old_nonces = Vec::with_capacity(reseals.len());
        let mut ciphertexts = Vec::with_capacity(reseals.len());
        let mut nonces = Vec::with_capacity(reseals.len());
        let mut keys = Vec::with_capacity(reseals.len());
        for r in reseals {
            tenants.push(r.tenant_id);
            names.push(r.name.clone());
            old_keys.push(r.old.key_id);
            old_nonces.push(r.old.nonce.clone());
            ciphertexts.push(r.new.ciphertext.clone());
            nonces.push(r.new.nonce.clone());
            keys.push(r.new.key_id);
        }
        // Guarded by the old key id and nonce: a value replaced since it was read keeps the
        // new value (sealed under the active key already). `updated_at` is left alone: the
        // value did not change.
        let done = sqlx::query(
            "UPDATE tenant_config c SET ciphertext = r.ciphertext, nonce = r.nonce, key_id = r.key_id
             FROM unnest($1::bigint[], $2::text[], $3::int4[], $4::bytea[], $5::bytea[],
                         $6::bytea[], $7::int4[])
                  AS r(tenant_id, name, old_key, old_nonce, ciphertext, nonce, key_id)
             WHERE c.tenant_id = r.tenant_id AND c.name = r.name
               AND c.key_id = r.old_key AND c.nonce = r.old_nonce",
        )
        .bind(tenants)
        .bind(names)
        .bind(old_keys)
        .bind(old_nonces)
        .bind(ciphertexts)
        .bind(nonces)
        .bind(keys)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn config_key_counts(&self) -> StoreResult<Vec<(i32, i64)>> {
        sqlx::query_as("SELECT key_id, count(*) FROM tenant_config GROUP BY key_id ORDER BY key_id")
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }

    async fn attempt_grants(
        &self,
        tenant_id: i64,
        job_id: i64,
    ) -> StoreResult<Option<AttemptGrantRows>> {
        // One row per granted name the tenant has set (or one row with NULL config columns).
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT j.allowed_outbound_hosts AS job_hosts, j.config AS job_config, {POLICY_COLUMNS},
                    c.name, c.secret, c.ciphertext, c.nonce, c.key_id
             FROM jobs j
             LEFT JOIN tenant_policy p ON p.tenant_id = j.tenant_id
             LEFT JOIN tenant_config c ON c.tenant_id = j.tenant_id AND c.name = ANY (j.config)
             WHERE j.id = $2 AND j.tenant_id = $1
             ORDER BY c.name"
        )))
        .bind(tenant_id)
        .bind(job_id)
        .fetch_all(self.pool())
        .await
        .map_err(classify)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let read = || -> Result<AttemptGrantRows, sqlx::Error> {
            let mut out = AttemptGrantRows {
                grant: JobGrant {
                    allowed_outbound_hosts: first.try_get("job_hosts")?,
                    config: first.try_get("job_config")?,
                },
                policy: policy_from_row(first)?,
                config: Vec::new(),
            };
            for row in &rows {
                if let Some(name) = row.try_get::<Option<String>, _>("name")? {
                    out.config.push(ConfigSealedRow {
                        tenant_id,
                        name,
                        secret: row.try_get("secret")?,
                        sealed: sealed_from_row(row)?,
                    });
                }
            }
            Ok(out)
        };
        read().map(Some).map_err(classify)
    }
}
