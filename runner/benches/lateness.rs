//! `make bench`: how late timed work starts on an otherwise idle runner.
//!
//! - delayed runs: runs written `scheduled` with due times 100-1000 ms ahead (by the database
//!   clock), a few at a time; lateness = their attempt's start − their due time;
//! - cron fires: `* * * * * *` schedules for a while; lateness = run creation (the firing
//!   transaction's start) − fire time, and attempt start − fire time (end to end).
//!
//! Every time is the database's clock. Figures are printed, never asserted. Knobs
//! (environment): BENCH_DELAYED (200 runs), BENCH_DELAYED_ROUND (10 at a time), BENCH_CRON_SECS
//! (15), BENCH_CRON_SCHEDULES (2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use sandfire::config::{RunOptions, Settings};
use sandfire::runner::{Runner, connect};
use sandfire::schedule::{Misfire, Timetable};
use sandfire::store::{
    JobUploadParams, OverlapPolicy, PgStore, SchedulePutParams, ScheduleStore, Store, TenancyStore,
};
use serde_json::json;
use uuid::Uuid;

#[path = "support/mod.rs"]
mod support;
use support::*;

/// Waits until every run in `ids` succeeded; returns their lateness in ms (attempt 1's start
/// minus `due`, the due time recorded per run).
async fn lateness_of(
    store: &PgStore,
    due: &[(Uuid, DateTime<Utc>)],
    within: Duration,
) -> anyhow::Result<Vec<f64>> {
    let ids: Vec<Uuid> = due.iter().map(|(id, _)| *id).collect();
    let started = Instant::now();
    loop {
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT r.id, a.started_at FROM runs r JOIN attempts a ON a.run_id = r.id
             WHERE r.id = ANY($1) AND a.number = 1 AND r.state = 'succeeded'",
        )
        .bind(&ids)
        .fetch_all(store.pool())
        .await?;
        if rows.len() == ids.len() {
            return Ok(rows
                .iter()
                .map(|(id, start)| {
                    let (_, due) = due.iter().find(|(d, _)| d == id).expect("a known run");
                    (*start - *due).num_microseconds().unwrap_or(0) as f64 / 1000.0
                })
                .collect());
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "runs did not finish in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn row(label: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    println!(
        "{label:<44} {:>8.2} {:>8.2} {:>8.2}",
        percentile(values, 0.5),
        percentile(values, 0.99),
        values.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set: run `make bench`"))?;
    let delayed = env_usize("BENCH_DELAYED", 200);
    let round = env_usize("BENCH_DELAYED_ROUND", 10).max(1);
    let cron_secs = env_usize("BENCH_CRON_SECS", 15) as u64;
    let cron_schedules = env_usize("BENCH_CRON_SCHEDULES", 2);
    let noop = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/wasm32-wasip2/wasm/noop.wasm"
    ))
    .map_err(|e| anyhow::anyhow!("noop.wasm missing ({e}): run `make examples`"))?;
    let url = fresh_database(&admin_url).await?;
    let store = Arc::new(connect(&url, 20).await?);
    let commit_mode: String = sqlx::query_scalar(
        "SELECT current_setting('synchronous_commit') || ' commit, fsync ' \
         || current_setting('fsync')",
    )
    .fetch_one(store.pool())
    .await?;

    let mut settings = Settings::default();
    settings.worker.slots = 8;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let runner = Runner::start(
        settings.clone(),
        store.clone() as Arc<dyn Store>,
        listener,
        Duration::from_secs(5),
    )
    .await?;
    let tenant = store
        .tenant_create(
            "bench",
            sandfire::auth::generate_key().stored_as("bench", sandfire::store::KeyRole::Full),
        )
        .await?;
    let validated = runner.sandbox.validate(tenant.id, noop.clone()).await?;
    let job = store
        .job_upload(JobUploadParams {
            tenant_id: tenant.id,
            name: "noop".into(),
            digest: validated.digest,
            bytes: noop,
            defaults: None,
            max_jobs: None,
            max_versions: None,
        })
        .await?
        .job;
    let options = settings.limits.default.clone();

    // Delayed runs, written as a client's `delay` would write them.
    let insert = |ids: Vec<Uuid>, delays_ms: Vec<f64>| {
        let (store, options, job_id, version) =
            (store.clone(), options.clone(), job.id, job.version);
        async move {
            sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
                "INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input,
                                   max_attempts, timeout_ms, fuel, memory_mb, backoff_base_ms,
                                   scheduled_at, state_reason, origin)
                 SELECT x.id, $3, $4, $5, 'scheduled', $6, 0, '{}'::jsonb, 1, $7, $8, $9, 0,
                        now() + make_interval(secs => x.delay_ms / 1000), 'bench: delayed',
                        'bench: delayed'
                 FROM unnest($1::uuid[], $2::float8[]) AS x(id, delay_ms)
                 RETURNING id, scheduled_at",
            )
            .bind(ids)
            .bind(delays_ms)
            .bind(tenant.id)
            .bind(job_id)
            .bind(version)
            .bind(&options.queue)
            .bind(options.timeout_ms as i64)
            .bind(options.fuel as i64)
            .bind(options.memory_mb as i32)
            .fetch_all(store.pool())
            .await
        }
    };
    // Warm-up: the runner has become the maintenance leader and compiled the component.
    let warm = insert(vec![Uuid::now_v7()], vec![100.0]).await?;
    lateness_of(&store, &warm, Duration::from_secs(60)).await?;

    let mut delayed_ms = Vec::with_capacity(delayed);
    let mut left = delayed;
    while left > 0 {
        let n = left.min(round);
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let delays: Vec<f64> = (0..n)
            .map(|_| rand::rng().random_range(100.0..1000.0))
            .collect();
        let due = insert(ids, delays).await?;
        delayed_ms.extend(lateness_of(&store, &due, Duration::from_secs(30)).await?);
        left -= n;
    }

    // Cron fires: every second, for a while.
    let timetable = Timetable::parse("* * * * * *", "UTC")?;
    for i in 0..cron_schedules {
        store
            .schedule_put(SchedulePutParams {
                tenant_id: tenant.id,
                name: format!("tick-{i}"),
                job_id: job.id,
                timetable: timetable.clone(),
                input: json!({}),
                misfire: Misfire::default(),
                overlap: OverlapPolicy::Allow,
                paused: false,
                options: RunOptions::default(),
                max_schedules: None,
            })
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(cron_secs)).await;
    for i in 0..cron_schedules {
        store
            .schedule_set_paused(tenant.id, &format!("tick-{i}"), true)
            .await?;
    }
    let fires: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, fire_at, created_at FROM runs WHERE fire_at IS NOT NULL")
            .fetch_all(store.pool())
            .await?;
    let mut fired_ms: Vec<f64> = fires
        .iter()
        .map(|(_, fire_at, created)| {
            (*created - *fire_at).num_microseconds().unwrap_or(0) as f64 / 1000.0
        })
        .collect();
    let due: Vec<(Uuid, DateTime<Utc>)> = fires.iter().map(|(id, f, _)| (*id, *f)).collect();
    let mut cron_started_ms = lateness_of(&store, &due, Duration::from_secs(60)).await?;
    runner.shutdown().await;

    println!();
    println!("Sandfire lateness — one idle runner, 8 slots, PostgreSQL {commit_mode}");
    println!("{:-<72}", "");
    println!(
        "{:<44} {:>8} {:>8} {:>8}",
        "figure (ms)", "p50", "p99", "max"
    );
    println!("{:-<72}", "");
    row(
        &format!(
            "delayed run: due → attempt start ({} runs)",
            delayed_ms.len()
        ),
        &mut delayed_ms,
    );
    row(
        &format!("cron: fire time → run created ({} fires)", fired_ms.len()),
        &mut fired_ms,
    );
    row("cron: fire time → attempt start", &mut cron_started_ms);
    println!("{:-<72}", "");
    Ok(())
}
