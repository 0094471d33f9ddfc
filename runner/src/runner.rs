//! A runner: one `sandfire serve` process put together — database, sandbox, HTTP API, worker
//! pool and maintenance services — with graceful shutdown. Tests and benchmarks start runners
//! in-process through [`Runner::start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::{AppState, app};
use crate::config::Settings;
use crate::maintenance::leader::{self, while_leader};
use crate::maintenance::{cron, promoter, pruner, rescuer, vacuumer};
use crate::sandbox::Sandbox;
use crate::store::{PgStore, RunnerRegistration, Store, StoreError};
use crate::worker::{PoolParts, run_pool};

/// A started runner. Dropping it does not stop it: call [`Runner::shutdown`].
pub struct Runner {
    pub id: Uuid,
    pub addr: SocketAddr,
    /// Where `/metrics` is served without auth (`Settings::metrics.listen`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    pub store: Arc<dyn Store>,
    pub sandbox: Sandbox,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Connects to PostgreSQL with a pool of `max_connections`: the API's pool when handed to
/// [`Runner::start`] (which gives the worker a pool of its own, `worker_pool_size`).
pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    let options: PgConnectOptions = database_url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    let pool = crate::store::pool_options()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("could not connect to PostgreSQL (is DATABASE_URL right and the server up?)")?;
    Ok(PgStore::new(pool))
}

/// Warns at start when stored config values are under keys this runner does not hold (a key
/// missing after a rotation, or no key at all): jobs granted them would fail to load them.
async fn warn_unreadable_config(store: &dyn Store, keyring: Option<&crate::capabilities::Keyring>) {
    let counts = match store.config_key_counts().await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::warn!(error = %e, "could not check which keys seal the stored config");
            return;
        }
    };
    let held = keyring.map(|k| k.key_ids()).unwrap_or_default();
    for (key_id, entries) in counts {
        if !held.contains(&key_id) {
            tracing::warn!(
                key_id,
                entries,
                "{entries} config entries are encrypted under key id {key_id}, which this runner \
                 does not hold (SANDFIRE_SECRETS_KEY / SANDFIRE_SECRETS_KEYS): jobs granted them \
                 cannot load them"
            );
        }
    }
}

impl Runner {
    /// Migrates the database, then serves the API on `listener` and (if enabled) executes runs.
    pub async fn start(
        settings: Settings,
        store: Arc<dyn Store>,
        listener: TcpListener,
        grace: Duration,
    ) -> anyhow::Result<Runner> {
        settings.check().map_err(anyhow::Error::msg)?;
        let mut settings = settings;
        settings.worker.tenant_max_running = settings.quotas.max_running;
        settings.worker.tenant_max_log_bytes = settings.quotas.max_log_bytes_per_attempt;
        // The database may drop (restart, failover) while a runner starts: wait, never exit.
        loop {
            match store.migrate().await {
                Ok(()) => break,
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "database unavailable while migrating; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("applying migrations")),
            }
        }
        warn_unreadable_config(store.as_ref(), settings.keyring.as_deref()).await;
        let sandbox = Sandbox::new(settings.sandbox_config()).context("configuring the sandbox")?;
        let id = Uuid::now_v7();
        let settings = Arc::new(settings);
        let shutdown = CancellationToken::new();
        let addr = listener.local_addr()?;
        let mut tasks = Vec::new();

        let promoter_wake = Arc::new(Notify::new());
        let metrics = Arc::new(crate::metrics::Metrics::new(
            settings.metrics.tenant_labels,
            if settings.worker.enabled {
                settings.worker.slots
            } else {
                0
            },
        ));
        // The group commit's own pool, planned once (see PlanCache): its writer holds one
        // connection; the second lets a replacement connect while a broken one is closed.
        let enqueue_store = store
            .sibling(crate::store::PoolOptions {
                plans: crate::store::PlanCache::Generic,
                ..crate::store::PoolOptions::new(2)
            })
            .unwrap_or_else(|| store.clone());
        if let Some(pool) = enqueue_store.pg_pool() {
            metrics.watch_pool("enqueue", pool);
        }
        let state = AppState {
            store: store.clone(),
            sandbox: sandbox.clone(),
            settings: settings.clone(),
            promoter: promoter_wake.clone(),
            enqueue: crate::store::GroupCommit::start(enqueue_store),
            enqueue_rate: Default::default(),
            metrics: metrics.clone(),
            keys: Default::default(),
            jobs: Default::default(),
        };
        tasks.push(tokio::spawn(crate::api::key_cache::listen(
            store.clone(),
            state.keys.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::server::serve(
            listener,
            app(state),
            settings.http.clone(),
            shutdown.clone(),
        )));
        // Everything but the API (claims, lease heartbeats, completions, presence, maintenance)
        // uses a pool of its own: no flood of requests can cost a running attempt its lease.
        let api_store = store;
        let store = api_store
            .sibling(crate::store::PoolOptions::new(settings.worker_pool_size))
            .unwrap_or_else(|| api_store.clone());
        let metrics_addr = match &settings.metrics.listen {
            None => None,
            Some(listen) => {
                let listener = TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("could not listen for metrics on {listen}"))?;
                let addr = listener.local_addr()?;
                tasks.push(tokio::spawn(crate::metrics::serve_separately(
                    listener,
                    metrics.clone(),
                    api_store.clone(),
                    sandbox.clone(),
                    settings.http.clone(),
                    shutdown.clone(),
                )));
                Some(addr)
            }
        };
        for (name, s) in [("api", &api_store), ("worker", &store)] {
            if let Some(pool) = s.pg_pool() {
                metrics.watch_pool(name, pool);
            }
        }

        // Presence in the registry and the election of the maintenance leader.
        let registration = RunnerRegistration {
            id,
            host: hostname(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            queues: settings.worker.queues.clone(),
            slots: if settings.worker.enabled {
                settings.worker.slots as i32
            } else {
                0
            },
        };
        let (leadership, presence) = leader::start(
            store.clone(),
            registration,
            settings.worker.heartbeat,
            settings.worker.lease,
            shutdown.clone(),
        );
        tasks.push(presence);
        // Maintenance services: only on the leader.
        let (s, wake, poll) = (
            store.clone(),
            promoter_wake.clone(),
            settings.worker.poll_interval,
        );
        tasks.push(tokio::spawn(while_leader(
            leadership.clone(),
            shutdown.clone(),
            move |stop| promoter::run(s.clone(), wake.clone(), poll, stop),
        )));
        let (s, limits, poll, m) = (
            store.clone(),
            settings.limits.clone(),
            settings.worker.poll_interval,
            metrics.clone(),
        );
        tasks.push(tokio::spawn(while_leader(
            leadership.clone(),
            shutdown.clone(),
            move |stop| cron::run(s.clone(), limits.clone(), poll, m.clone(), stop),
        )));
        let (s, retention) = (store.clone(), settings.retention.clone());
        tasks.push(tokio::spawn(while_leader(
            leadership.clone(),
            shutdown.clone(),
            move |stop| pruner::run(s.clone(), retention.clone(), stop),
        )));
        let (s, every, threshold) = (
            store.clone(),
            settings.retention.vacuum_interval,
            settings.retention.vacuum_dead_rows,
        );
        tasks.push(tokio::spawn(while_leader(
            leadership.clone(),
            shutdown.clone(),
            move |stop| vacuumer::run(s.clone(), every, threshold, stop),
        )));
        let (s, every, runner_ttl, max_backoff, m) = (
            store.clone(),
            settings.worker.heartbeat,
            settings.worker.lease * 2,
            settings.limits.max_backoff_ms,
            metrics.clone(),
        );
        tasks.push(tokio::spawn(while_leader(
            leadership.clone(),
            shutdown.clone(),
            move |stop| rescuer::run(s.clone(), every, runner_ttl, max_backoff, m.clone(), stop),
        )));

        if settings.worker.enabled {
            let parts = PoolParts {
                store: store.clone(),
                sandbox: sandbox.clone(),
                settings: settings.worker.clone(),
                limits: settings.limits.clone(),
                runner_id: id,
                promoter: promoter_wake,
                keyring: settings.keyring.clone(),
                metrics: metrics.clone(),
            };
            tasks.push(tokio::spawn(run_pool(parts, shutdown.clone(), grace)));
        }
        tracing::info!(runner = %id, %addr, queues = ?settings.worker.queues,
            slots = settings.worker.slots, "runner started");
        Ok(Runner {
            id,
            addr,
            metrics_addr,
            store: api_store,
            sandbox,
            shutdown,
            tasks,
        })
    }

    /// Stops every task at once, the way a crash would: nothing is handed back, no lease is
    /// released, the registry row stays until it expires. For failure tests.
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
        tracing::warn!(runner = %self.id, "runner aborted");
    }

    /// Stops claiming and serving, lets running attempts finish (within the grace period) and
    /// waits until every outcome is written.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        // Every attempt is finished or handed back: leave the registry.
        if let Err(e) = self.store.runner_deregister(self.id).await {
            tracing::warn!(error = %e, "deregistering the runner failed");
        }
        tracing::info!(runner = %self.id, "runner stopped");
    }
}
