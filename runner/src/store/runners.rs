//! Runner registry, leader election and lease rescue: what many runners on one database need
//! to know about each other. Every liveness judgement uses the database clock.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::postgres::classify;
use super::{PgStore, StoreResult};

/// What a runner says about itself when it registers.
#[derive(Debug, Clone)]
pub struct RunnerRegistration {
    pub id: Uuid,
    pub host: String,
    pub version: String,
    pub queues: Vec<String>,
    pub slots: i32,
}

/// A live runner and the attempts it is executing (those the caller may see).
#[derive(Debug, Clone)]
pub struct RunnerInfo {
    pub id: Uuid,
    pub host: String,
    pub version: String,
    pub queues: Vec<String>,
    pub slots: i32,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Whether this runner currently leads the maintenance services.
    pub leader: bool,
    pub in_flight: Vec<InFlightAttempt>,
}

#[derive(Debug, Clone)]
pub struct InFlightAttempt {
    pub run_id: Uuid,
    pub job: String,
    pub attempt: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// The role the maintenance services are elected for.
pub const MAINTENANCE_ROLE: &str = "maintenance";

/// A held run whose lease expired, with what the backoff needs.
#[derive(Debug, Clone)]
pub struct ExpiredLease {
    pub run_id: Uuid,
    pub lease_token: Uuid,
    pub attempt: i32,
    pub backoff_base_ms: i64,
}

/// One rescue: the expired lease and, if the run is retried, its delay.
#[derive(Debug, Clone)]
pub struct Rescue {
    pub run_id: Uuid,
    pub lease_token: Uuid,
    pub delay_ms: i64,
}

#[async_trait::async_trait]
pub trait RunnerStore {
    /// Registers (or re-registers) a runner and marks it alive now.
    async fn runner_register(&self, runner: RunnerRegistration) -> StoreResult<()>;
    /// Marks a runner alive; false when its row is gone (expired while unreachable).
    async fn runner_heartbeat(&self, runner_id: Uuid) -> StoreResult<bool>;
    async fn runner_deregister(&self, runner_id: Uuid) -> StoreResult<()>;
    /// Live runners; in-flight attempts of every tenant, or only of `tenant_id`.
    async fn runner_list(&self, tenant_id: Option<i64>) -> StoreResult<Vec<RunnerInfo>>;
    /// Removes runners silent for longer than `ttl_ms`; returns how many.
    async fn runner_expire(&self, ttl_ms: i64) -> StoreResult<u64>;
    /// Takes or keeps `role` for `ttl_ms`; true when this runner holds it.
    async fn leader_elect(&self, role: &str, runner_id: Uuid, ttl_ms: i64) -> StoreResult<bool>;
    async fn leader_resign(&self, role: &str, runner_id: Uuid) -> StoreResult<()>;
    /// Up to `limit` held runs whose lease expired, oldest expiry first.
    async fn lease_expired(&self, limit: i64) -> StoreResult<Vec<ExpiredLease>>;
    /// Ends the attempts of these expired leases as `runner_lost` and retries their runs after
    /// the given delay while attempts remain (failed otherwise, cancelled when a cancel was
    /// asked for); a lease renewed meanwhile is left alone. Returns the rescued run ids.
    async fn run_rescue(&self, rescues: &[Rescue]) -> StoreResult<Vec<Uuid>>;
}

#[async_trait::async_trait]
impl RunnerStore for PgStore {
    async fn runner_register(&self, r: RunnerRegistration) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO runners (id, host, version, queues, slots) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
        )
        .bind(r.id)
        .bind(&r.host)
        .bind(&r.version)
        .bind(&r.queues)
        .bind(r.slots)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn runner_heartbeat(&self, runner_id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE runners SET heartbeat_at = now() WHERE id = $1")
            .bind(runner_id)
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn runner_deregister(&self, runner_id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM runners WHERE id = $1")
            .bind(runner_id)
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn runner_list(&self, tenant_id: Option<i64>) -> StoreResult<Vec<RunnerInfo>> {
        let rows = sqlx::query(include_str!("sql/runner_list.sql"))
            .bind(tenant_id)
            .fetch_all(self.pool())
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let in_flight: serde_json::Value = row.try_get("in_flight")?;
                Ok(RunnerInfo {
                    id: row.try_get("id")?,
                    host: row.try_get("host")?,
                    version: row.try_get("version")?,
                    queues: row.try_get("queues")?,
                    slots: row.try_get("slots")?,
                    started_at: row.try_get("started_at")?,
                    heartbeat_at: row.try_get("heartbeat_at")?,
                    leader: row.try_get("leader")?,
                    in_flight: in_flight
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| {
                            Some(InFlightAttempt {
                                run_id: a["run_id"].as_str()?.parse().ok()?,
                                job: a["job"].as_str()?.to_string(),
                                attempt: a["attempt"].as_i64()? as i32,
                                started_at: a["started_at"].as_str().and_then(|t| t.parse().ok()),
                                lease_expires_at: a["lease_expires_at"]
                                    .as_str()
                                    .and_then(|t| t.parse().ok()),
                            })
                        })
                        .collect(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(classify)
    }

    async fn runner_expire(&self, ttl_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM runners
             WHERE heartbeat_at < now() - make_interval(secs => $1::float8 / 1000)",
        )
        .bind(ttl_ms)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn leader_elect(&self, role: &str, runner_id: Uuid, ttl_ms: i64) -> StoreResult<bool> {
        let holder: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO leaders (role, runner_id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
             ON CONFLICT (role) DO UPDATE
             SET runner_id = EXCLUDED.runner_id,
                 expires_at = EXCLUDED.expires_at,
                 elected_at = CASE WHEN leaders.runner_id = EXCLUDED.runner_id
                                   THEN leaders.elected_at ELSE now() END
             WHERE leaders.runner_id = EXCLUDED.runner_id OR leaders.expires_at < now()
             RETURNING runner_id",
        )
        .bind(role)
        .bind(runner_id)
        .bind(ttl_ms)
        .fetch_optional(self.pool())
        .await
        .map_err(classify)?;
        Ok(holder == Some(runner_id))
    }

    async fn leader_resign(&self, role: &str, runner_id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM leaders WHERE role = $1 AND runner_id = $2")
            .bind(role)
            .bind(runner_id)
            .execute(self.pool())
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn lease_expired(&self, limit: i64) -> StoreResult<Vec<ExpiredLease>> {
        let rows: Vec<(Uuid, Uuid, i32, i64)> =
            sqlx::query_as(include_str!("sql/rescue_candidates.sql"))
                .bind(limit)
                .fetch_all(self.pool())
                .await
                .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(
                |(run_id, lease_token, attempt, backoff_base_ms)| ExpiredLease {
                    run_id,
                    lease_token,
                    attempt,
                    backoff_base_ms,
                },
            )
            .collect())
    }

    async fn run_rescue(&self, rescues: &[Rescue]) -> StoreResult<Vec<Uuid>> {
        if rescues.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<Uuid> = rescues.iter().map(|r| r.run_id).collect();
        let tokens: Vec<Uuid> = rescues.iter().map(|r| r.lease_token).collect();
        let delays: Vec<i64> = rescues.iter().map(|r| r.delay_ms).collect();
        sqlx::query_scalar(include_str!("sql/rescue.sql"))
            .bind(runs)
            .bind(tokens)
            .bind(delays)
            .fetch_all(self.pool())
            .await
            .map_err(classify)
    }
}
