//! `make bench`: end-to-end figures of one runner on a local PostgreSQL.
//!
//! - throughput: 20,000 no-op runs enqueued up front, then one runner drains them; runs/s from
//!   the runner's start until every run succeeded;
//! - pickup latency: single runs into an idle runner, from the run's creation to its attempt's
//!   start (both on the database clock), p50/p95;
//! - sandbox overhead: instantiate + call + teardown of the no-op component, median.
//!
//! Figures are printed, never asserted. Knobs (environment): BENCH_RUNS (20000),
//! BENCH_SLOTS (64), BENCH_PICKUPS (200), BENCH_SANDBOX_CALLS (2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandfire::config::{RunLimits, Settings};
use sandfire::runner::{Runner, connect};
use sandfire::sandbox::{AttemptSpec, CancelFlag, JobContext, Journal, Limits};
use sandfire::store::{JobUploadParams, RunInsertParams, Store};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

#[path = "support/mod.rs"]
mod support;
use support::*;

async fn start_runner(
    url: &str,
    slots: usize,
    worker: bool,
) -> anyhow::Result<(Runner, Arc<sandfire::store::PgStore>)> {
    let store = Arc::new(connect(url, 20).await?);
    let mut settings = Settings::default();
    settings.worker.slots = slots;
    settings.worker.enabled = worker;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runner = Runner::start(
        settings,
        store.clone() as Arc<dyn Store>,
        listener,
        Duration::from_secs(5),
    )
    .await?;
    Ok((runner, store))
}

async fn count_succeeded(store: &sandfire::store::PgStore) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE state = 'succeeded'")
            .fetch_one(store.pool())
            .await?,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set: run `make bench`"))?;
    let runs = env_usize("BENCH_RUNS", 20_000);
    let slots = env_usize("BENCH_SLOTS", 64);
    let pickups = env_usize("BENCH_PICKUPS", 200);
    let sandbox_calls = env_usize("BENCH_SANDBOX_CALLS", 2_000);
    let noop = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/wasm32-wasip2/wasm/noop.wasm"
    ))
    .map_err(|e| anyhow::anyhow!("noop.wasm missing ({e}): run `make examples`"))?;
    let url = fresh_database(&admin_url).await?;
    let commit_mode: String = {
        let mut conn = PgConnection::connect(&url).await?;
        sqlx::query_scalar("SELECT current_setting('synchronous_commit') || ' commit, fsync ' || current_setting('fsync')")
            .fetch_one(&mut conn)
            .await?
    };

    // Set-up through an API-only runner: tenant, job, and every run enqueued before workers start.
    let (setup, store) = start_runner(&url, slots, false).await?;
    let tenant = store.tenant_create("bench").await?;
    let validated = setup.sandbox.validate(noop.clone()).await?;
    let job = store
        .job_upload(JobUploadParams {
            tenant_id: tenant.id,
            name: "noop".into(),
            digest: validated.digest.clone(),
            bytes: noop.clone(),
            defaults: None,
        })
        .await?
        .job;
    let options = RunLimits::default().default;
    let new_run = || RunInsertParams {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        job_id: job.id,
        version: job.version,
        options: options.clone(),
        input: json!({}),
        reason: "bench".into(),
        due: None,
        after: None,
    };
    let enqueue_start = Instant::now();
    let mut left = runs;
    while left > 0 {
        let n = left.min(1_000);
        store
            .run_insert_many((0..n).map(|_| new_run()).collect())
            .await?;
        left -= n;
    }
    let enqueue_secs = enqueue_start.elapsed().as_secs_f64();

    // Sandbox overhead, measured before the worker competes for the CPU.
    let prepared = setup
        .sandbox
        .prepare(&validated.digest, || async { Ok(noop.clone()) })
        .await?;
    let mut overhead = Vec::with_capacity(sandbox_calls);
    for i in 0..sandbox_calls {
        let spec = AttemptSpec {
            context: JobContext {
                tenant: "bench".into(),
                job: "noop".into(),
                version: 1,
                run_id: format!("bench-{i}"),
                attempt: 1,
                max_attempts: 1,
                scheduled_at_ms: 0,
            },
            input: b"{}".to_vec(),
            limits: Limits {
                fuel: 1_000_000_000,
                memory_bytes: 64 << 20,
                timeout: Duration::from_secs(10),
            },
            cancel: CancelFlag::default(),
            journal: Arc::new(Journal::new()),
        };
        let start = Instant::now();
        let report = setup.sandbox.execute(&prepared, spec).await;
        overhead.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(report.output.is_some(), "noop failed: {:?}", report.error);
    }
    overhead.sort_by(f64::total_cmp);
    setup.shutdown().await;

    // Throughput: one runner drains the queue.
    let drain_start = Instant::now();
    let (runner, store) = start_runner(&url, slots, true).await?;
    loop {
        if count_succeeded(&store).await? >= runs as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();

    // Pickup latency: one run at a time into the now idle runner.
    let mut latencies = Vec::with_capacity(pickups);
    for _ in 0..pickups {
        let run = new_run();
        let id = run.id;
        store.run_insert(run).await?;
        let started = Instant::now();
        loop {
            let row: Option<f64> = sqlx::query_scalar(
                "SELECT extract(epoch FROM (a.started_at - r.created_at))::float8 * 1000
                 FROM runs r JOIN attempts a ON a.run_id = r.id
                 WHERE r.id = $1 AND r.state = 'succeeded'",
            )
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
            if let Some(ms) = row {
                latencies.push(ms);
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "run {id} stuck"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    latencies.sort_by(f64::total_cmp);
    runner.shutdown().await;

    println!();
    println!("Sandfire benchmark — one runner, {slots} slots, PostgreSQL {commit_mode}");
    println!("{:-<64}", "");
    println!("{:<40} {:>20}", "figure", "value");
    println!("{:-<64}", "");
    println!(
        "{:<40} {:>16.0} /s",
        format!("enqueue ({runs} runs, batches of 1000)"),
        runs as f64 / enqueue_secs
    );
    println!(
        "{:<40} {:>16.0} /s",
        format!("end-to-end throughput ({runs} no-op runs)"),
        runs as f64 / drain_secs
    );
    println!(
        "{:<40} {:>17.2} ms",
        format!("pickup latency p50 ({pickups} runs)"),
        percentile(&latencies, 0.5)
    );
    println!(
        "{:<40} {:>17.2} ms",
        "pickup latency p95",
        percentile(&latencies, 0.95)
    );
    println!(
        "{:<40} {:>17.1} µs",
        format!("sandbox overhead median ({sandbox_calls} calls)"),
        percentile(&overhead, 0.5)
    );
    println!(
        "{:<40} {:>17.1} µs",
        "sandbox overhead p95",
        percentile(&overhead, 0.95)
    );
    println!("{:-<64}", "");
    Ok(())
}
