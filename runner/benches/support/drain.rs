//! Draining enqueued runs with a runner process, watched cheaply from the database, and the
//! figures of one drain: wall time from the process's spawn, the database clock's span from
//! the first attempt's start to the last run's end, and CPU of the runner and of PostgreSQL.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::procfs;
use super::server::{Server, ServerConfig};

/// A fresh database of its own, with a small pool for watching it.
pub struct Database {
    pub url: String,
    pub pool: PgPool,
}

impl Database {
    pub async fn fresh(admin_url: &str) -> anyhow::Result<Database> {
        let url = super::fresh_database(admin_url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await?;
        // Write out what earlier cases left dirty, so their debt is not paid during this one
        // (needs superuser or pg_checkpoint; skipped otherwise).
        let _ = sqlx::query("CHECKPOINT").execute(&pool).await;
        Ok(Database { url, pool })
    }

    /// The database clock now: runs created from here on belong to what follows.
    pub async fn now(&self) -> anyhow::Result<DateTime<Utc>> {
        Ok(sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The postmaster of this cluster, when it runs on this machine.
    pub async fn postmaster(&self) -> Option<u32> {
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&self.pool)
            .await
            .ok()?;
        procfs::postmaster_of(u32::try_from(backend).ok()?)
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// `synchronous_commit` and `fsync` of the cluster.
pub async fn commit_mode(pool: &PgPool) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar(
        "SELECT 'synchronous_commit=' || current_setting('synchronous_commit')
                || ', fsync=' || current_setting('fsync')",
    )
    .fetch_one(pool)
    .await?)
}

/// Is every run finished? Uses the narrow table of unfinished runs when the schema has one,
/// else one `NOT EXISTS` per unfinished state (each can use that state's partial index).
pub struct FinishedProbe {
    narrow: bool,
}

impl FinishedProbe {
    pub async fn new(pool: &PgPool) -> anyhow::Result<FinishedProbe> {
        let narrow: bool = sqlx::query_scalar("SELECT to_regclass('run_queue') IS NOT NULL")
            .fetch_one(pool)
            .await?;
        Ok(FinishedProbe { narrow })
    }

    /// How often to ask: the narrow table is cheap to ask often.
    pub fn interval(&self) -> Duration {
        if self.narrow {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(200)
        }
    }

    pub fn describe(&self) -> &'static str {
        if self.narrow {
            "NOT EXISTS over run_queue every 100 ms"
        } else {
            "NOT EXISTS per unfinished state of runs every 200 ms"
        }
    }

    pub async fn all_finished(&self, pool: &PgPool) -> anyhow::Result<bool> {
        let sql = if self.narrow {
            "SELECT NOT EXISTS (SELECT 1 FROM run_queue)"
        } else {
            "SELECT NOT EXISTS (SELECT 1 FROM runs WHERE state = 'enqueued')
                AND NOT EXISTS (SELECT 1 FROM runs WHERE state = 'running')
                AND NOT EXISTS (SELECT 1 FROM runs WHERE state IN ('scheduled', 'retrying'))
                AND NOT EXISTS (SELECT 1 FROM runs WHERE state = 'awaiting')"
        };
        Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
    }
}

/// The figures of one drain.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// Runs created since the drain's `since`, and how many of them succeeded.
    pub runs: i64,
    pub succeeded: i64,
    /// Every run finished before the timeout.
    pub finished: bool,
    /// From the runner's spawn until every run was seen finished.
    pub wall_secs: f64,
    /// Database clock: the first attempt's start to the last run's end.
    pub db_secs: Option<f64>,
    /// CPU seconds of the runner process and of the PostgreSQL cluster during the drain.
    pub runner_cpu: Option<f64>,
    pub pg_cpu: Option<f64>,
}

impl DrainReport {
    /// Runs per second on the wall clock (over the runs that finished).
    pub fn rate(&self) -> f64 {
        self.done() as f64 / self.wall_secs
    }

    pub fn db_rate(&self) -> Option<f64> {
        self.db_secs.map(|s| self.done() as f64 / s)
    }

    fn done(&self) -> i64 {
        if self.finished {
            self.runs
        } else {
            self.succeeded
        }
    }

    /// µs of runner CPU per run.
    pub fn runner_us(&self) -> Option<f64> {
        self.runner_cpu.map(|s| s * 1e6 / self.done().max(1) as f64)
    }

    pub fn pg_us(&self) -> Option<f64> {
        self.pg_cpu.map(|s| s * 1e6 / self.done().max(1) as f64)
    }

    /// Fails unless every run finished and succeeded, and there were `expected`.
    pub fn ensure_all_succeeded(&self, expected: usize, what: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.finished && self.runs == expected as i64 && self.succeeded == self.runs,
            "{what}: {} of {expected} runs created, {} succeeded, finished: {}",
            self.runs,
            self.succeeded,
            self.finished
        );
        Ok(())
    }
}

/// Starts a runner with `config` (the worker on) and waits until every run is finished, at
/// most `timeout`. Returns the runner (still running, e.g. for pickup latencies) and the
/// figures about the runs created since `since`.
pub async fn drain(
    db: &Database,
    config: &ServerConfig,
    since: DateTime<Utc>,
    timeout: Duration,
) -> anyhow::Result<(Server, DrainReport)> {
    let probe = FinishedProbe::new(&db.pool).await?;
    let postmaster = db.postmaster().await;
    let pg_before = postmaster.and_then(procfs::cluster_cpu_seconds);
    let mut server = Server::start(&db.url, config).await?;
    let mut finished = false;
    loop {
        if probe.all_finished(&db.pool).await? {
            finished = true;
            break;
        }
        server.check_alive()?;
        if server.spawned.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(probe.interval()).await;
    }
    let wall_secs = server.spawned.elapsed().as_secs_f64();
    let runner_cpu = server.cpu_seconds();
    let pg_after = postmaster.and_then(procfs::cluster_cpu_seconds);
    let report = drain_figures(db, since).await?;
    Ok((
        server,
        DrainReport {
            finished,
            wall_secs,
            runner_cpu,
            pg_cpu: pg_before.zip(pg_after).map(|(b, a)| a - b),
            ..report
        },
    ))
}

/// Counts and database-clock span of the runs created since `since` (one count at the end).
pub async fn drain_figures(db: &Database, since: DateTime<Utc>) -> anyhow::Result<DrainReport> {
    let (runs, succeeded, db_secs): (i64, i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'),
                extract(epoch FROM max(finished_at) - min(started_at))::float8
         FROM runs WHERE created_at >= $1",
    )
    .bind(since)
    .fetch_one(&db.pool)
    .await?;
    Ok(DrainReport {
        runs,
        succeeded,
        db_secs,
        ..DrainReport::default()
    })
}

/// Waits until `check` is true, polling every `every`, at most `timeout`; returns the time it
/// took, or `None` on timeout.
pub async fn wait_until<F, Fut>(
    every: Duration,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<Option<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(Some(start.elapsed()));
        }
        if start.elapsed() > timeout {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

impl Database {
    /// Drops this database (from the admin connection), so repeated benches do not fill the
    /// disk of the throwaway cluster; BENCH_KEEP_DB=1 keeps it (to look at afterwards).
    pub async fn drop_with(self, admin_url: &str) -> anyhow::Result<()> {
        if super::env_flag("BENCH_KEEP_DB") {
            eprintln!("BENCH_KEEP_DB: keeping {}", self.url);
            self.pool.close().await;
            return Ok(());
        }
        let name = self
            .url
            .rsplit_once('/')
            .map(|(_, n)| n.to_string())
            .unwrap_or_default();
        self.pool.close().await;
        anyhow::ensure!(
            name.starts_with("sandfire_bench_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "refusing to drop {name:?}"
        );
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await?;
        pool.close().await;
        Ok(())
    }
}
