//! `make bench`: queue throughput as a user gets it, next to a raw-SQL floor on the same cluster.
//!
//! Every Sandfire figure goes through the user's path: the release binary `sandfire serve` as
//! its own process (8 slots), a tenant and the `noop` job made through the admin and tenant
//! APIs, and every run enqueued over HTTP while only an API runner (`--no-worker`) is up. Then
//! that runner is stopped (SIGTERM), a runner with the worker on is spawned, and the clock runs
//! from its spawn until every run is finished (watched with a cheap `NOT EXISTS` every
//! 100-200 ms); the database-clock span (first claim to last finish) is shown too. Every run
//! must have succeeded (counted once at the end), or the bench fails.
//!
//! For each size (BENCH_RUNS_SMALL = 20,000 and BENCH_RUNS_LARGE = 200,000; BENCH_QUICK=1 runs
//! only the small one):
//! - runs enqueued one request each (`POST /v1/jobs/noop/runs`) from 8 concurrent clients;
//! - runs enqueued through the bulk route (`POST /v1/runs`, chunks of 10,000), when it exists;
//! - the floor: a plain queue table, N rows, 8 connections each looping "claim 100 with
//!   `FOR UPDATE SKIP LOCKED`" then "delete them", each its own durable transaction;
//! - the floor with records kept: the same claim, then one statement that deletes the queue
//!   rows, updates each job's row in a runs table and inserts an attempt row. It is the least
//!   any queue that keeps runs and attempts must do, with no sandbox: an upper bound for
//!   Sandfire on the same cluster, and its ratio to the floor says how much of the floor's
//!   speed keeping records alone costs.
//!
//! Also: enqueue rates over HTTP (1 sequential client, 8 concurrent clients, the bulk route,
//! `POST /v1/batches`) next to a baseline of raw single-row INSERTs (1 and 8 connections,
//! durable commits) on the same cluster, and the bulk route next to the same runs inserted into
//! Sandfire's own tables by one SQL statement (what the schema costs without HTTP), pickup latency of single runs into an idle runner (run creation →
//! attempt start, both on the database clock), CPU per run of the runner process and of the
//! PostgreSQL cluster, and the commit mode. Figures are printed, never asserted.
//!
//! Knobs (environment): BENCH_RUNS_SMALL (20000), BENCH_RUNS_LARGE (200000), BENCH_QUICK,
//! BENCH_SLOTS (8), BENCH_CLIENTS (8), BENCH_PICKUPS (200), BENCH_ENQUEUE_SEQ (2000),
//! BENCH_DRAIN_TIMEOUT_S (900).

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, PgConnection};

#[path = "support/mod.rs"]
mod support;
use support::drain::{Database, DrainReport, commit_mode, drain};
use support::server::{
    Api, Pickups, Server, ServerConfig, batch_size_for, enqueue_batches, enqueue_bulk,
    enqueue_concurrently, example_component, pickup_latencies,
};
use support::*;

/// How the runs of a case enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `POST /v1/jobs/noop/runs`, one run a request, from concurrent clients.
    Single,
    /// `POST /v1/runs` with arrays of 10,000.
    Bulk,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Single => "single",
            Path::Bulk => "bulk",
        }
    }
}

struct Knobs {
    slots: usize,
    clients: usize,
    pickups: usize,
    timeout: Duration,
}

/// One Sandfire case: how fast the runs went in, and how the drain went.
struct Case {
    /// `None`: the path is not available on this runner (why).
    enqueue_secs: Result<f64, String>,
    drain: Option<DrainReport>,
    /// Pickup latencies (ms, sorted), when asked for.
    pickups: Pickups,
}

async fn sandfire_case(
    admin_url: &str,
    noop: &[u8],
    runs: usize,
    path: Path,
    knobs: &Knobs,
    pickups: usize,
) -> anyhow::Result<Case> {
    let db = Database::fresh(admin_url).await?;
    let label = format!("queue-{}-{runs}", path.name());
    let api_server =
        Server::start(&db.url, &ServerConfig::api_only(&format!("{label}-api"))).await?;
    let api = Api::create_tenant(&api_server.base, "bench").await?;
    api.upload_job("noop", noop).await?;
    let since = db.now().await?;
    let enqueue_secs = match path {
        Path::Single => {
            let (ids, secs) =
                enqueue_concurrently(&api, "noop", &json!({"input": {}}), runs, knobs.clients)
                    .await?;
            anyhow::ensure!(ids.len() == runs, "{} of {runs} runs enqueued", ids.len());
            Ok(secs)
        }
        Path::Bulk => enqueue_bulk(&api, &json!({"job": "noop", "input": {}}), runs, 10_000)
            .await?
            .map_err(|status| format!("unavailable (HTTP {status})")),
    };
    api_server.stop().await?;
    if enqueue_secs.is_err() {
        db.drop_with(admin_url).await?;
        return Ok(Case {
            enqueue_secs,
            drain: None,
            pickups: Pickups::default(),
        });
    }
    let worker = ServerConfig::worker(&format!("{label}-worker"), knobs.slots);
    let (server, report) = drain(&db, &worker, since, knobs.timeout).await?;
    report.ensure_all_succeeded(
        runs,
        &format!("{runs} runs enqueued via the {} path", path.name()),
    )?;
    let latencies = if pickups > 0 {
        pickup_latencies(
            &api.at(&server.base),
            "noop",
            &json!({"input": {}}),
            pickups,
        )
        .await?
    } else {
        Pickups::default()
    };
    server.stop().await?;
    db.drop_with(admin_url).await?;
    Ok(Case {
        enqueue_secs,
        drain: Some(report),
        pickups: latencies,
    })
}

/// Pickup latencies into an idle runner on a fresh database (the steady state of a runner
/// whose queue autovacuum keeps clean), next to the figure taken right after a drain.
async fn idle_pickups(admin_url: &str, noop: &[u8], knobs: &Knobs) -> anyhow::Result<Pickups> {
    let db = Database::fresh(admin_url).await?;
    let server = Server::start(
        &db.url,
        &ServerConfig::worker("queue-idle-pickups", knobs.slots),
    )
    .await?;
    let api = Api::create_tenant(&server.base, "bench").await?;
    api.upload_job("noop", noop).await?;
    let pickups = pickup_latencies(&api, "noop", &json!({"input": {}}), knobs.pickups).await?;
    server.stop().await?;
    db.drop_with(admin_url).await?;
    Ok(pickups)
}

/// One raw-SQL drain: jobs/s, and CPU per job of the cluster and of this process (the
/// client's side, which Sandfire's runner also does: claiming and completing over sqlx).
#[derive(Debug, Clone, Copy)]
struct RawDrain {
    rate: f64,
    pg_us: Option<f64>,
    client_us: Option<f64>,
}

/// CPU seconds of the cluster and of this process now.
async fn cpu_now(db: &Database) -> (Option<f64>, Option<f64>) {
    let pg = db
        .postmaster()
        .await
        .and_then(support::procfs::cluster_cpu_seconds);
    (pg, support::procfs::process_cpu_seconds(std::process::id()))
}

fn per_job_us(before: Option<f64>, after: Option<f64>, jobs: usize) -> Option<f64> {
    Some((after? - before?) / jobs as f64 * 1e6)
}

/// The raw-SQL floor: `runs` rows in a plain queue table, drained by `clients` connections,
/// each looping claim 100 / delete them (each statement its own transaction). Jobs/s.
async fn floor(admin_url: &str, runs: usize, clients: usize) -> anyhow::Result<RawDrain> {
    let db = Database::fresh(admin_url).await?;
    for sql in [
        "CREATE TABLE floor_jobs (
             id bigserial PRIMARY KEY,
             queue text NOT NULL,
             payload jsonb NOT NULL,
             run_at timestamptz NOT NULL DEFAULT now(),
             locked_at timestamptz
         )",
        // What a queue would use: the available jobs of a queue in order, due time included.
        "CREATE INDEX floor_jobs_ready ON floor_jobs (queue, id) INCLUDE (run_at)
             WHERE locked_at IS NULL",
    ] {
        sqlx::query(sql).execute(&db.pool).await?;
    }
    sqlx::query(
        "INSERT INTO floor_jobs (queue, payload)
         SELECT 'default', '{}'::jsonb FROM generate_series(1, $1)",
    )
    .bind(runs as i64)
    .execute(&db.pool)
    .await?;
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(PgConnection::connect(&db.url).await?);
    }
    let (pg_before, client_before) = cpu_now(&db).await;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in connections {
        tasks.spawn(async move {
            let mut done = 0usize;
            loop {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "WITH c AS (
                         SELECT id FROM floor_jobs
                         WHERE queue = 'default' AND locked_at IS NULL AND run_at <= now()
                         ORDER BY id
                         LIMIT 100
                         FOR UPDATE SKIP LOCKED
                     )
                     UPDATE floor_jobs t SET locked_at = now()
                     FROM c WHERE t.id = c.id
                     RETURNING t.id",
                )
                .fetch_all(&mut conn)
                .await?;
                if ids.is_empty() {
                    break;
                }
                sqlx::query("DELETE FROM floor_jobs WHERE id = ANY($1)")
                    .bind(&ids)
                    .execute(&mut conn)
                    .await?;
                done += ids.len();
            }
            conn.close().await?;
            anyhow::Ok(done)
        });
    }
    let mut done = 0;
    while let Some(n) = tasks.join_next().await {
        done += n??;
    }
    let secs = start.elapsed().as_secs_f64();
    let (pg_after, client_after) = cpu_now(&db).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM floor_jobs")
        .fetch_one(&db.pool)
        .await?;
    anyhow::ensure!(
        done == runs && left == 0,
        "floor: {done} of {runs} jobs done, {left} left"
    );
    db.drop_with(admin_url).await?;
    Ok(RawDrain {
        rate: runs as f64 / secs,
        pg_us: per_job_us(pg_before, pg_after, runs),
        client_us: per_job_us(client_before, client_after, runs),
    })
}

/// The raw-SQL floor with records kept: what any queue that keeps a run row and an attempt row
/// per job must do at least, with no sandbox and no runner. The same claim as `floor` (claim
/// 100, `FOR UPDATE SKIP LOCKED`, on a narrow queue table); the completion deletes the queue
/// rows, updates each run's row in place (HOT: no index names the columns it changes) and
/// inserts one attempt row per run, in one statement. Nothing else: no lease token, no state
/// machine, no history, no wake-ups. Jobs/s. Sandfire's throughput cannot exceed this on the
/// same cluster, since it does all of it and runs a sandbox on the same cores.
async fn floor_with_records(
    admin_url: &str,
    runs: usize,
    clients: usize,
) -> anyhow::Result<RawDrain> {
    let db = Database::fresh(admin_url).await?;
    for sql in [
        "CREATE TABLE rec_queue (
             id bigint PRIMARY KEY,
             queue text NOT NULL,
             run_at timestamptz NOT NULL DEFAULT now(),
             locked_at timestamptz
         )",
        "CREATE INDEX rec_queue_ready ON rec_queue (queue, id) INCLUDE (run_at)
             WHERE locked_at IS NULL",
        "CREATE TABLE rec_runs (
             id bigint PRIMARY KEY,
             tenant_id bigint NOT NULL,
             job_id bigint NOT NULL,
             state text NOT NULL,
             queue text NOT NULL,
             input jsonb NOT NULL,
             output jsonb,
             attempt integer NOT NULL DEFAULT 0,
             created_at timestamptz NOT NULL DEFAULT now(),
             started_at timestamptz,
             finished_at timestamptz
         ) WITH (fillfactor = 50)",
        // What listing a tenant's or a job's runs needs; neither names a column that changes.
        "CREATE INDEX rec_runs_tenant ON rec_runs (tenant_id, id DESC)",
        "CREATE INDEX rec_runs_job ON rec_runs (job_id, id DESC)",
        "CREATE TABLE rec_attempts (
             run_id bigint NOT NULL,
             attempt integer NOT NULL,
             started_at timestamptz NOT NULL,
             ended_at timestamptz NOT NULL,
             outcome text NOT NULL,
             fuel_used bigint NOT NULL,
             peak_memory bigint NOT NULL,
             PRIMARY KEY (run_id, attempt)
         )",
    ] {
        sqlx::query(sql).execute(&db.pool).await?;
    }
    for sql in [
        "INSERT INTO rec_runs (id, tenant_id, job_id, state, queue, input)
         SELECT g, 1, 1, 'enqueued', 'default', '{}'::jsonb FROM generate_series(1, $1) g",
        "INSERT INTO rec_queue (id, queue) SELECT g, 'default' FROM generate_series(1, $1) g",
    ] {
        sqlx::query(sql).bind(runs as i64).execute(&db.pool).await?;
    }
    sqlx::query("VACUUM ANALYZE").execute(&db.pool).await?;
    let _ = sqlx::query("CHECKPOINT").execute(&db.pool).await;
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(PgConnection::connect(&db.url).await?);
    }
    let (pg_before, client_before) = cpu_now(&db).await;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in connections {
        tasks.spawn(async move {
            let mut done = 0usize;
            loop {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "WITH c AS (
                         SELECT id FROM rec_queue
                         WHERE queue = 'default' AND locked_at IS NULL AND run_at <= now()
                         ORDER BY id
                         LIMIT 100
                         FOR UPDATE SKIP LOCKED
                     )
                     UPDATE rec_queue t SET locked_at = now()
                     FROM c WHERE t.id = c.id
                     RETURNING t.id",
                )
                .fetch_all(&mut conn)
                .await?;
                if ids.is_empty() {
                    break;
                }
                sqlx::query(
                    "WITH d AS (
                         DELETE FROM rec_queue WHERE id = ANY($1) RETURNING id, locked_at
                     ), r AS (
                         UPDATE rec_runs SET state = 'succeeded', attempt = attempt + 1,
                                started_at = d.locked_at, finished_at = now(), output = 'null'
                         FROM d WHERE rec_runs.id = d.id
                         RETURNING rec_runs.id, rec_runs.attempt, rec_runs.started_at
                     )
                     INSERT INTO rec_attempts
                     SELECT id, attempt, started_at, now(), 'ok', 1000, 65536 FROM r",
                )
                .bind(&ids)
                .execute(&mut conn)
                .await?;
                done += ids.len();
            }
            conn.close().await?;
            anyhow::Ok(done)
        });
    }
    let mut done = 0;
    while let Some(n) = tasks.join_next().await {
        done += n??;
    }
    let secs = start.elapsed().as_secs_f64();
    let (pg_after, client_after) = cpu_now(&db).await;
    let (left, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rec_queue), (SELECT count(*) FROM rec_attempts)",
    )
    .fetch_one(&db.pool)
    .await?;
    anyhow::ensure!(
        done == runs && left == 0 && attempts == runs as i64,
        "floor with records: {done} of {runs} jobs done, {left} left, {attempts} attempts"
    );
    db.drop_with(admin_url).await?;
    Ok(RawDrain {
        rate: runs as f64 / secs,
        pg_us: per_job_us(pg_before, pg_after, runs),
        client_us: per_job_us(client_before, client_after, runs),
    })
}

/// The enqueue baseline: `n` single-row inserts into a plain table (a bigserial key, a jsonb
/// payload, a queue index), each its own durable transaction, from `clients` connections.
/// Rows/s. What one commit costs on this disk bounds every single-run enqueue.
async fn raw_inserts(admin_url: &str, n: usize, clients: usize) -> anyhow::Result<f64> {
    let db = Database::fresh(admin_url).await?;
    for sql in [
        "CREATE TABLE raw_jobs (
             id bigserial PRIMARY KEY,
             queue text NOT NULL,
             payload jsonb NOT NULL,
             run_at timestamptz NOT NULL DEFAULT now()
         )",
        "CREATE INDEX raw_jobs_ready ON raw_jobs (queue, id)",
    ] {
        sqlx::query(sql).execute(&db.pool).await?;
    }
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(PgConnection::connect(&db.url).await?);
    }
    let per = n.div_ceil(clients);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in connections {
        tasks.spawn(async move {
            for _ in 0..per {
                sqlx::query("INSERT INTO raw_jobs (queue, payload) VALUES ('default', '{}')")
                    .execute(&mut conn)
                    .await?;
            }
            conn.close().await?;
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    db.drop_with(admin_url).await?;
    Ok((per * clients) as f64 / secs)
}

/// The bulk baseline: `n` runs like the last one enqueued (same tenant, job, options and
/// reason) inserted into Sandfire's own `runs` table by one statement, their ids bound as one
/// array, in one durable transaction: what the schema costs (the rows, their index entries,
/// the insert trigger and its `run_queue` rows) without HTTP, JSON or validation. Runs/s.
async fn sql_bulk_insert(db: &Database, n: usize) -> anyhow::Result<f64> {
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::now_v7()).collect();
    let _ = sqlx::query("CHECKPOINT").execute(&db.pool).await;
    let start = Instant::now();
    let inserted = sqlx::query(
        "INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input,
                           max_attempts, timeout_ms, fuel, memory_mb, backoff_base_ms,
                           state_reason, origin)
         SELECT unnest($1::uuid[]), r.tenant_id, r.job_id, r.version, 'enqueued', r.queue,
                r.priority, r.input, r.max_attempts, r.timeout_ms, r.fuel, r.memory_mb,
                r.backoff_base_ms, 'enqueued via API', 'enqueued via API'
         FROM (SELECT * FROM runs ORDER BY id DESC LIMIT 1) r",
    )
    .bind(&ids)
    .execute(&db.pool)
    .await?
    .rows_affected();
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        inserted == n as u64,
        "SQL bulk insert: {inserted} of {n} runs"
    );
    Ok(n as f64 / secs)
}

/// Enqueue rates that need no drain: 1 sequential client, and `POST /v1/batches`; and the
/// raw-insert baselines (1 and 8 connections) on the same cluster.
struct EnqueueRates {
    sequential: (usize, f64),
    batches: Result<(usize, usize, f64), String>,
    /// Runs/s of `sql_bulk_insert`.
    sql_bulk: f64,
    raw_sequential: f64,
    raw_concurrent: f64,
}

async fn enqueue_rates(
    admin_url: &str,
    noop: &[u8],
    sequential: usize,
    batched: usize,
) -> anyhow::Result<EnqueueRates> {
    let db = Database::fresh(admin_url).await?;
    let server = Server::start(&db.url, &ServerConfig::api_only("queue-enqueue-api")).await?;
    let api = Api::create_tenant(&server.base, "bench").await?;
    api.upload_job("noop", noop).await?;
    let (ids, secs) =
        enqueue_concurrently(&api, "noop", &json!({"input": {}}), sequential, 1).await?;
    anyhow::ensure!(ids.len() == sequential, "sequential enqueue lost runs");
    let per_batch = batch_size_for(&api, 10_000).await?;
    let batches = match enqueue_batches(
        &api,
        &json!({"job": "noop", "input": {}}),
        batched,
        per_batch,
    )
    .await
    {
        Ok(secs) => Ok((batched, per_batch, secs)),
        Err(e) => Err(format!("{e:#}")),
    };
    server.stop().await?;
    let sql_bulk = sql_bulk_insert(&db, batched).await?;
    db.drop_with(admin_url).await?;
    let raw_sequential = raw_inserts(admin_url, sequential, 1).await?;
    let raw_concurrent = raw_inserts(admin_url, sequential * 4, 8).await?;
    Ok(EnqueueRates {
        sequential: (sequential, secs),
        batches,
        sql_bulk,
        raw_sequential,
        raw_concurrent,
    })
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:.0}/s", n as f64 / secs)
}

fn row(cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            line.push_str(&format!("{cell:<w$}"));
        } else {
            line.push_str(&format!(" {cell:>w$}"));
        }
    }
    println!("{}", line.trim_end());
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = admin_url()?;
    let small = env_usize("BENCH_RUNS_SMALL", 20_000);
    let large = env_usize("BENCH_RUNS_LARGE", 200_000);
    let sizes: Vec<usize> = if env_flag("BENCH_QUICK") {
        vec![small]
    } else {
        vec![small, large]
    };
    let knobs = Knobs {
        slots: env_usize("BENCH_SLOTS", 8),
        clients: env_usize("BENCH_CLIENTS", 8),
        pickups: env_usize("BENCH_PICKUPS", 200),
        timeout: Duration::from_secs(env_usize("BENCH_DRAIN_TIMEOUT_S", 900) as u64),
    };
    let sequential = env_usize("BENCH_ENQUEUE_SEQ", 2_000);
    let noop = example_component("noop")?;
    let (mode, postmaster) = {
        let db = Database::fresh(&admin_url).await?;
        let mode = commit_mode(&db.pool).await?;
        let postmaster = db.postmaster().await;
        db.drop_with(&admin_url).await?;
        (mode, postmaster)
    };
    let started = Instant::now();
    let idle = idle_pickups(&admin_url, &noop, &knobs).await?;

    let mut results: Vec<(usize, Case, Case, RawDrain, RawDrain)> = Vec::new();
    let mut pickups = Pickups::default();
    for (i, &runs) in sizes.iter().enumerate() {
        eprintln!(
            "queue bench: {runs} runs, single-run requests ({:.0} s in)",
            started.elapsed().as_secs_f64()
        );
        let single = sandfire_case(
            &admin_url,
            &noop,
            runs,
            Path::Single,
            &knobs,
            if i == 0 { knobs.pickups } else { 0 },
        )
        .await?;
        if i == 0 {
            pickups = single.pickups.clone();
        }
        eprintln!(
            "queue bench: {runs} runs, bulk route ({:.0} s in)",
            started.elapsed().as_secs_f64()
        );
        let bulk = sandfire_case(&admin_url, &noop, runs, Path::Bulk, &knobs, 0).await?;
        eprintln!(
            "queue bench: {runs} jobs, raw-SQL floor ({:.0} s in)",
            started.elapsed().as_secs_f64()
        );
        let floor = floor(&admin_url, runs, knobs.clients).await?;
        eprintln!(
            "queue bench: {runs} jobs, raw-SQL floor with records kept ({:.0} s in)",
            started.elapsed().as_secs_f64()
        );
        let records = floor_with_records(&admin_url, runs, knobs.clients).await?;
        results.push((runs, single, bulk, floor, records));
    }
    eprintln!(
        "queue bench: enqueue rates ({:.0} s in)",
        started.elapsed().as_secs_f64()
    );
    let rates = enqueue_rates(&admin_url, &noop, sequential, small).await?;

    // The report.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "Sandfire queue benchmark — `sandfire serve --slots {}` as its own process, runs \
         enqueued over HTTP before the worker starts",
        knobs.slots
    );
    println!(
        "PostgreSQL {mode}; {cores} CPU cores; the raw-SQL floor runs on the same cluster in \
         the same invocation"
    );
    println!();
    println!(
        "Throughput (no-op runs; wall clock from the worker runner's spawn until every run was seen finished)"
    );
    let widths = [8, 30, 11, 11, 11, 12, 10, 10];
    let rule = "-".repeat(widths.iter().sum::<usize>() + widths.len() - 1);
    println!("{rule}");
    row(
        &[
            "runs",
            "enqueued by",
            "runs/s",
            "db clock",
            "floor /s",
            "vs floor",
            "runner",
            "postgres",
        ]
        .map(String::from),
        &widths,
    );
    row(
        &[
            "", "", "", "runs/s", "jobs/s", "(ratio)", "µs/run", "µs/run",
        ]
        .map(String::from),
        &widths,
    );
    println!("{rule}");
    for (runs, single, bulk, floor, records) in &results {
        let floor_rate = floor.rate;
        for (label, case) in [
            ("single-run requests, 8 clients", single),
            ("bulk POST /v1/runs", bulk),
        ] {
            let cells = match (&case.enqueue_secs, &case.drain) {
                (Ok(_), Some(d)) => [
                    runs.to_string(),
                    label.to_string(),
                    format!("{:.0}", d.rate()),
                    fmt_opt(d.db_rate(), 0, ""),
                    format!("{floor_rate:.0}"),
                    format!("{:.3}", d.rate() / floor_rate),
                    fmt_opt(d.runner_us(), 0, ""),
                    fmt_opt(d.pg_us(), 0, ""),
                ],
                (Err(_), _) => [
                    runs.to_string(),
                    label.to_string(),
                    "n/a".to_string(),
                    String::new(),
                    format!("{floor_rate:.0}"),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
                (Ok(_), None) => unreachable!("an enqueued case is drained"),
            };
            row(&cells, &widths);
        }
        for (label, raw) in [
            ("raw SQL floor (client CPU)", floor),
            ("raw SQL, records kept", records),
        ] {
            row(
                &[
                    runs.to_string(),
                    label.to_string(),
                    format!("{:.0}", raw.rate),
                    String::new(),
                    format!("{floor_rate:.0}"),
                    format!("{:.3}", raw.rate / floor_rate),
                    fmt_opt(raw.client_us, 0, ""),
                    fmt_opt(raw.pg_us, 0, ""),
                ],
                &widths,
            );
        }
    }
    println!("{rule}");
    if let Some(why) = results
        .iter()
        .find_map(|(_, _, b, _, _)| b.enqueue_secs.as_ref().err())
    {
        println!("bulk route {why}: its rows are n/a");
    }
    let note = format!(
        "runs/s: runs ÷ (worker runner spawn → all finished, polled every 100-200 ms); db \
         clock: runs ÷ (first attempt start → last run end); floor: {} connections each looping \
         claim 100 (SKIP LOCKED) / delete, one durable transaction each; records kept: the same \
         claim, then one statement deleting the queue rows, updating each job's run row and \
         inserting an attempt row (the least any queue keeping runs and attempts does; \
         Sandfire does all of it and runs a sandbox on the same cores; their runner column is the \
         bench's own client CPU); CPU: utime+stime from \
         /proc, runner from its spawn (start-up included), postgres (postmaster and all its \
         children) over the same span{}. One run per case: on this class of machine expect \
         ±20-30% between runs.",
        knobs.clients,
        if postmaster.is_none() {
            " — PostgreSQL CPU unavailable (the cluster is not a local process)"
        } else {
            ""
        }
    );
    for line in wrap(&note, rule.chars().count()) {
        println!("{line}");
    }

    println!();
    println!("Enqueue over HTTP (API-only runner)");
    let ewidths = [58, 14];
    let erule = "-".repeat(73);
    println!("{erule}");
    let (n, secs) = rates.sequential;
    row(
        &[
            format!("single-run requests, 1 sequential client ({n} runs)"),
            rate(n, secs),
        ],
        &ewidths,
    );
    row(
        &[
            "  baseline: raw single-row INSERT, 1 connection".to_string(),
            format!("{:.0}/s", rates.raw_sequential),
        ],
        &ewidths,
    );
    row(
        &[
            "  ratio to the baseline".to_string(),
            format!("{:.2}", n as f64 / secs / rates.raw_sequential),
        ],
        &ewidths,
    );
    row(
        &[
            "raw single-row INSERT, 8 connections (baseline)".to_string(),
            format!("{:.0}/s", rates.raw_concurrent),
        ],
        &ewidths,
    );
    for (runs, single, bulk, _, _) in &results {
        if let Ok(secs) = single.enqueue_secs {
            row(
                &[
                    format!(
                        "single-run requests, {} concurrent clients ({runs} runs)",
                        knobs.clients
                    ),
                    rate(*runs, secs),
                ],
                &ewidths,
            );
            row(
                &[
                    "  ratio to raw INSERT, 8 connections".to_string(),
                    format!("{:.2}", *runs as f64 / secs / rates.raw_concurrent),
                ],
                &ewidths,
            );
        }
        match &bulk.enqueue_secs {
            Ok(secs) => row(
                &[
                    format!("bulk POST /v1/runs, 10,000 a request ({runs} runs)"),
                    rate(*runs, *secs),
                ],
                &ewidths,
            ),
            Err(why) => row(
                &[
                    format!("bulk POST /v1/runs ({runs} runs)"),
                    why.replace("unavailable ", "n/a "),
                ],
                &ewidths,
            ),
        }
    }
    match &rates.batches {
        Ok((n, per, secs)) => row(
            &[
                format!("POST /v1/batches, {} a batch ({n} runs)", per.min(n)),
                rate(*n, *secs),
            ],
            &ewidths,
        ),
        Err(e) => row(
            &["POST /v1/batches".to_string(), format!("failed: {e}")],
            &ewidths,
        ),
    }
    row(
        &[
            format!("  baseline: the same runs by one SQL INSERT ({small} runs)"),
            format!("{:.0}/s", rates.sql_bulk),
        ],
        &ewidths,
    );
    if let Some((runs, _, bulk, _, _)) = results.first()
        && let Ok(secs) = bulk.enqueue_secs
    {
        row(
            &[
                format!("  ratio of bulk POST /v1/runs ({runs} runs) to it"),
                format!("{:.2}", *runs as f64 / secs / rates.sql_bulk),
            ],
            &ewidths,
        );
    }
    println!("{erule}");

    println!();
    println!(
        "Pickup latency into an idle runner ({} single runs, one at a time; database clock)",
        pickups.started.len()
    );
    println!("{erule}");
    for (label, values) in [
        (
            "fresh database: enqueue answered → attempt started_at, p50",
            &idle.after_commit,
        ),
        (
            "fresh database: enqueue answered → attempt started_at, p95",
            &idle.after_commit,
        ),
        (
            "after the drain: enqueue answered → attempt started_at, p50",
            &pickups.after_commit,
        ),
        (
            "after the drain: enqueue answered → attempt started_at, p95",
            &pickups.after_commit,
        ),
        (
            "after the drain: run created → attempt started_at, p50",
            &pickups.started,
        ),
        (
            "after the drain: run created → attempt started_at, p95",
            &pickups.started,
        ),
    ] {
        let p = if label.ends_with("p50") { 0.5 } else { 0.95 };
        row(
            &[
                label.to_string(),
                fmt_opt(Some(percentile(values, p)), 2, " ms"),
            ],
            &ewidths,
        );
    }
    println!("{erule}");
    for line in wrap(
        "started_at: when the attempt started, on the runner's clock corrected to the \
         database's. \"enqueue answered\": this process's clock when the enqueue's answer (its \
         durable commit) arrived; \"run created\": the insert's now(), so it also holds the \
         enqueue's commit. A fresh database's queue holds no dead entries; right after a drain \
         the claim steps over the drained runs' index entries until vacuum removes them.",
        erule.chars().count(),
    ) {
        println!("{line}");
    }
    println!(
        "queue bench took {:.0} s; runner logs in {}",
        started.elapsed().as_secs_f64(),
        support::server::log_dir()?.display()
    );
    Ok(())
}
