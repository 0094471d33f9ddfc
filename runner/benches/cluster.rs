//! `make bench`: end-to-end throughput of real `sandfire serve` processes sharing one database.
//!
//! For 1 and then 2 runner processes (default runtime: a thread per core), then one process per
//! core with `--threads 1` each: a fresh database, 20,000 no-op runs enqueued up front
//! (through the store, before any worker starts), then the processes (the release binary built
//! with this benchmark) drain the queue. Two figures per case:
//! The queue stays paused until every process serves and is registered, then is resumed.
//! - runs/s on the database clock: runs ÷ (last run's end − first attempt's start);
//! - runs/s wall clock: runs ÷ (from the resume until every run succeeded, as polled).
//!
//! Figures are printed, never asserted. Knobs (environment): BENCH_RUNS (20000), BENCH_SLOTS
//! (64 per process), BENCH_PROCESSES (the largest process count, 2).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandfire::config::{RunLimits, Settings};
use sandfire::runner::{Runner, connect};
use sandfire::store::{JobUploadParams, QueuePutParams, RunInsertParams, Store, TenancyStore};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

#[path = "support/mod.rs"]
mod support;
use support::*;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runner processes that are killed when dropped (also on an early return).
struct Processes(Vec<(Child, PathBuf)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh database with the no-op job and `runs` enqueued runs of it in a paused queue,
/// written through an API-only runner (which also applies the migrations).
async fn prepared_database(admin_url: &str, noop: &[u8], runs: usize) -> anyhow::Result<String> {
    let url = fresh_database(admin_url).await?;
    let store = Arc::new(connect(&url, 10).await?);
    let mut settings = Settings::default();
    settings.worker.enabled = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let setup = Runner::start(
        settings,
        store.clone() as Arc<dyn Store>,
        listener,
        Duration::from_secs(1),
    )
    .await?;
    let tenant = store
        .tenant_create(
            "bench",
            sandfire::auth::generate_key().stored_as("bench", sandfire::store::KeyRole::Full),
        )
        .await?;
    let validated = setup.sandbox.validate(tenant.id, noop.to_vec()).await?;
    let job = store
        .job_upload(JobUploadParams {
            tenant_id: tenant.id,
            name: "noop".into(),
            digest: validated.digest.clone(),
            bytes: noop.to_vec(),
            defaults: None,
            max_jobs: None,
            max_versions: None,
        })
        .await?
        .job;
    // Paused until every process is up, so all of them start draining together.
    store
        .queue_put(QueuePutParams {
            tenant_id: tenant.id,
            name: "default".into(),
            paused: Some(true),
            concurrency_limit: None,
        })
        .await?;
    let options = RunLimits::default().default;
    let mut left = runs;
    while left > 0 {
        let n = left.min(1_000);
        let batch = (0..n)
            .map(|_| RunInsertParams {
                id: Uuid::now_v7(),
                tenant_id: tenant.id,
                job_id: job.id,
                version: job.version,
                options: options.clone(),
                input: json!({}),
                reason: "bench".into(),
                due: None,
                after: None,
                job_row_version: None,
            })
            .collect();
        store.run_insert_many(batch).await?;
        left -= n;
    }
    setup.shutdown().await;
    store.pool().close().await;
    Ok(url)
}

/// One case's figures.
struct Drained {
    db_secs: f64,
    wall_secs: f64,
    /// Runs executed by each runner process, most first.
    per_runner: Vec<i64>,
}

async fn drain(
    url: &str,
    processes: usize,
    threads: Option<u16>,
    slots: usize,
    runs: usize,
    logs: &std::path::Path,
) -> anyhow::Result<Drained> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await?;
    let mut children = Processes(Vec::new());
    let mut ports = Vec::new();
    for i in 0..processes {
        let log = logs.join(format!(
            "runner-{processes}-{}-{i}.log",
            threads.map_or("all".to_string(), |t| t.to_string())
        ));
        let file = std::fs::File::create(&log)?;
        let port = free_port()?;
        ports.push(port);
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandfire"));
        command
            .arg("serve")
            .args(["--slots", &slots.to_string(), "--queues", "default"]);
        if let Some(threads) = threads {
            command.args(["--threads", &threads.to_string()]);
        }
        let child = command
            .env("DATABASE_URL", url)
            .env("SANDFIRE_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .env_remove("SANDFIRE_SLOTS")
            .env_remove("SANDFIRE_QUEUES")
            .env_remove("SANDFIRE_THREADS")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        children.0.push((child, log));
    }
    // Every process serves HTTP and is registered; then the queue is resumed (which notifies
    // the runners) and the clock starts.
    let http = reqwest::Client::new();
    let up = Instant::now();
    loop {
        let mut healthy = 0;
        for port in &ports {
            let url = format!("http://127.0.0.1:{port}/healthz");
            if http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                healthy += 1;
            }
        }
        let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM runners WHERE slots > 0")
            .fetch_one(&pool)
            .await?;
        if healthy == processes && registered == processes as i64 {
            break;
        }
        for (child, log) in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("a runner process exited ({status}); see {}", log.display());
            }
        }
        anyhow::ensure!(
            up.elapsed() < Duration::from_secs(60),
            "runner processes did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let each process's LISTEN connection settle before the notification.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    sqlx::query("UPDATE queues SET paused = false WHERE name = 'default'")
        .execute(&pool)
        .await?;
    sqlx::query("SELECT pg_notify('sandfire_enqueued', 'default')")
        .execute(&pool)
        .await?;
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE state = 'succeeded'")
            .fetch_one(&pool)
            .await?;
        if done >= runs as i64 {
            break;
        }
        for (child, log) in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("a runner process exited ({status}); see {}", log.display());
            }
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "the runs were not drained within 10 minutes ({done} of {runs}); logs in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall_secs = start.elapsed().as_secs_f64();
    drop(children);
    let db_secs: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM (SELECT max(finished_at) FROM runs)
                                  - (SELECT min(started_at) FROM attempts))::float8",
    )
    .fetch_one(&pool)
    .await?;
    let per_runner: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM attempts WHERE outcome = 'ok' GROUP BY runner_id ORDER BY 1 DESC",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(Drained {
        db_secs,
        wall_secs,
        per_runner,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set: run `make bench`"))?;
    let runs = env_usize("BENCH_RUNS", 20_000);
    let slots = env_usize("BENCH_SLOTS", 64);
    let most = env_usize("BENCH_PROCESSES", 2).max(1);
    let noop = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/wasm32-wasip2/wasm/noop.wasm"
    ))
    .map_err(|e| anyhow::anyhow!("noop.wasm missing ({e}): run `make examples`"))?;
    let logs = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/bench-cluster"
    ));
    std::fs::create_dir_all(&logs)?;
    let commit_mode: String = {
        let mut conn = PgConnection::connect(&admin_url).await?;
        sqlx::query_scalar(
            "SELECT current_setting('synchronous_commit') || ' commit, fsync '
                    || current_setting('fsync')",
        )
        .fetch_one(&mut conn)
        .await?
    };

    // Each process count with the default runtime (a thread per core), then as many
    // processes as cores with one thread each.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cases: Vec<(usize, Option<u16>)> = (1..=most).map(|p| (p, None)).collect();
    cases.push((cores.max(2), Some(1)));
    let mut results = Vec::new();
    for (processes, threads) in cases {
        let url = prepared_database(&admin_url, &noop, runs).await?;
        let drained = drain(&url, processes, threads, slots, runs, &logs).await?;
        results.push((processes, threads, drained));
    }

    println!();
    println!(
        "Sandfire cluster benchmark — {runs} no-op runs enqueued up front, runner processes \
         with {slots} slots each, one PostgreSQL ({commit_mode}), {} CPU cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:-<100}", "");
    println!(
        "{:<10} {:>7} {:>16} {:>16} {:>10} {:>34}",
        "processes", "threads", "runs/s (db)", "runs/s (wall)", "vs 1", "runs per process"
    );
    println!("{:-<100}", "");
    let base = results.first().map(|(_, _, d)| runs as f64 / d.db_secs);
    for (processes, threads, d) in &results {
        let rate = runs as f64 / d.db_secs;
        println!(
            "{:<10} {:>7} {:>16.0} {:>16.0} {:>9.2}x {:>34}",
            processes,
            threads.map_or(format!("{cores}"), |t| t.to_string()),
            rate,
            runs as f64 / d.wall_secs,
            base.map_or(f64::NAN, |b| rate / b),
            d.per_runner
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    println!("{:-<100}", "");
    println!(
        "runs/s (db): runs ÷ (last run's end − first attempt's start), database clock; \
         runs/s (wall): from resuming the queue until every run succeeded (polled); threads: \
         the runtime's worker threads per process (`--threads`; default one per core)"
    );
    Ok(())
}
