//! `make bench`: how Sandfire holds up at scale, each figure through the user's path (the
//! release binary `sandfire serve` as its own process, 8 slots, work entering over HTTP).
//! Figures and ratios are printed, never asserted.
//!
//! - batch linearity: drain N runs enqueued as batches (as large as `POST /v1/batches` allows,
//!   read from its error answer) vs N unbatched runs (the bulk route, or 8 concurrent
//!   single-run clients where it does not exist); per-run cost ratio batched / unbatched;
//! - fairness: tenant A fills all 8 slots with `sleep` runs (2 s timeout each, priority 10) and
//!   queues N more; tenant B enqueues one `noop` run: how long B's run waits (created →
//!   started) against A's attempt duration;
//! - paused queues: pickup latency p50/p99 of single runs into an idle runner with an empty
//!   queue, then with N runs of another tenant in a paused queue of the same name;
//! - big tables: drain throughput and pickup latency of N runs on an empty database vs with
//!   ~1M finished runs already stored (seeded with SQL that mirrors what the API and a worker
//!   write; see `seed_finished_runs`);
//! - continuation chains: time to resolve a chain of N continuations when it runs, and the
//!   time for cancelling the head of a second chain to cancel every link;
//! - dashboard: the time of each dashboard page (`/ui`) with ~1M stored runs, as a signed-in
//!   browser waits for it (median, p95) and as the database spends it per view
//!   (pg_stat_statements when the cluster preloads it, else EXPLAIN ANALYZE of the page's SQL
//!   files), its size, and whether the run list's 1st and 20th page plan a `Seq Scan on runs`.
//!   The issue's goal, ≤ 50 ms of database time a page, is reported against, never asserted.
//!
//! Knobs (environment): BENCH_LINEAR_RUNS (100000), BENCH_FAIR_QUEUED (100000),
//! BENCH_FAIR_SLEEP_MS (2000), BENCH_FAIR_WAIT_S (20), BENCH_PAUSED_RUNS (300000),
//! BENCH_PAUSED_PICKUPS (100), BENCH_BIG_STORED (1000000), BENCH_BIG_RUNS (20000),
//! BENCH_BIG_PICKUPS (100), BENCH_CHAIN_LINKS (10000), BENCH_SCALE_DRAIN_TIMEOUT_S (600),
//! BENCH_DASH_STORED (1000000 succeeded runs), BENCH_DASH_FAILED (10000 failed runs, spread
//! among them; 0 for a tenant without failures), BENCH_DASH_SMALL (1000 runs of the second
//! tenant), BENCH_DASH_REPEAT (20 timed views a page, not scaled by BENCH_QUICK),
//! BENCH_DASH_DB=explain (EXPLAIN ANALYZE even when pg_stat_statements is there),
//! BENCH_DASH_KEEP=1 (keep the dashboard's database and print its URL, to EXPLAIN by hand),
//! BENCH_SCALE_ONLY (comma-separated subset of linearity,fairness,paused,big,chains,dashboard),
//! BENCH_QUICK=1 (every size ÷ 10).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row as _;
use uuid::Uuid;

#[path = "support/mod.rs"]
mod support;
use support::drain::{Database, DrainReport, commit_mode, drain, wait_until};
use support::server::{
    ADMIN_TOKEN, Api, Browser, Bulk, Pickups, Server, ServerConfig, batch_size_for,
    enqueue_batches, enqueue_bulk, enqueue_concurrently, example_component, failure_status,
    ms_between, pickup_latencies,
};
use support::*;

const SLOTS: usize = 8;
const CLIENTS: usize = 8;

/// One printed figure: a label and its value (text, so it can say "n/a" or "> 20 s").
struct Figure(String, String);

struct Section {
    title: String,
    setup: String,
    figures: Vec<Figure>,
}

impl Section {
    fn new(title: &str, setup: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            setup: setup.into(),
            figures: Vec::new(),
        }
    }

    fn add(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.figures.push(Figure(label.into(), value.into()));
    }

    fn print(&self) {
        println!();
        println!("{}", self.title);
        for line in wrap(&self.setup, 100) {
            println!("  {line}");
        }
        println!("  {:-<98}", "");
        for Figure(label, value) in &self.figures {
            let width = 97usize.saturating_sub(value.chars().count());
            println!("  {label:<width$} {value}");
        }
    }
}

struct Env {
    admin_url: String,
    noop: Vec<u8>,
    sleep: Vec<u8>,
    quick: bool,
    drain_timeout: Duration,
}

impl Env {
    /// A size knob, ÷ 10 under BENCH_QUICK.
    fn size(&self, name: &str, default: usize) -> usize {
        let n = env_usize(name, default);
        if self.quick { (n / 10).max(1) } else { n }
    }
}

fn noop_entry() -> Value {
    json!({"job": "noop", "input": {}})
}

/// A fresh database with an API-only runner, tenant `bench` and the `noop` job.
async fn api_setup(env: &Env, label: &str) -> anyhow::Result<(Database, Server, Api)> {
    let db = Database::fresh(&env.admin_url).await?;
    let server = Server::start(&db.url, &ServerConfig::api_only(label)).await?;
    let api = Api::create_tenant(&server.base, "bench").await?;
    api.upload_job("noop", &env.noop).await?;
    Ok((db, server, api))
}

/// Enqueues `n` copies of `entry` without batches: the bulk route, or `CLIENTS` concurrent
/// single-run clients when it does not exist. Returns how, and the seconds.
async fn enqueue_unbatched(api: &Api, entry: &Value, n: usize) -> anyhow::Result<(String, f64)> {
    if let Ok(secs) = enqueue_bulk(api, entry, n, 10_000).await? {
        return Ok(("bulk POST /v1/runs".into(), secs));
    }
    let job = entry["job"].as_str().unwrap_or("noop").to_string();
    let mut body = entry.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("job");
    }
    let (_, secs) = enqueue_concurrently(api, &job, &body, n, CLIENTS).await?;
    Ok((format!("{CLIENTS} concurrent single-run clients"), secs))
}

/// Enqueues `n` copies of `entry` the fastest way the runner offers, when how they are
/// grouped does not matter (runs that will never execute): the bulk route, else batches.
async fn enqueue_fast(api: &Api, entry: &Value, n: usize) -> anyhow::Result<String> {
    let probe = api.bulk(std::slice::from_ref(entry)).await?;
    if let Bulk::Created(_) = probe {
        if let Err(status) = enqueue_bulk(api, entry, n - 1, 10_000).await? {
            anyhow::bail!("the bulk route answered {status} after creating a run");
        }
        return Ok("bulk POST /v1/runs".into());
    }
    let per = batch_size_for(api, 10_000).await?;
    enqueue_batches(api, entry, n, per).await?;
    Ok(format!("POST /v1/batches, {per} a batch (no bulk route)"))
}

/// p50 / p99 of both pickup measures (see `Pickups`).
fn pickup_figures(section: &mut Section, label: &str, p: &Pickups) {
    if p.is_empty() {
        section.add(format!("{label}: pickup"), "n/a");
        return;
    }
    for (what, values) in [
        ("enqueue answered → attempt started_at", &p.after_commit),
        ("created → attempt started_at", &p.started),
        ("created → history `running`", &p.claimed),
    ] {
        section.add(
            format!("{label}: {what}, p50 / p99"),
            format!(
                "{:.2} / {:.2} ms",
                percentile(values, 0.5),
                percentile(values, 0.99)
            ),
        );
    }
}

/// Ratios `a / b` of the pickup p50 and p99, both measures.
fn pickup_ratios(section: &mut Section, label: &str, a: &Pickups, b: &Pickups) {
    for (what, x, y) in [
        ("attempt started_at", &a.started, &b.started),
        ("history `running`", &a.claimed, &b.claimed),
    ] {
        section.add(
            format!("{label}, created → {what}: p50 / p99 ratio"),
            format!(
                "{:.2}x / {:.2}x",
                percentile(x, 0.5) / percentile(y, 0.5),
                percentile(x, 0.99) / percentile(y, 0.99)
            ),
        );
    }
}

fn secs(d: f64) -> String {
    format!("{d:.1} s")
}

fn drain_note(d: &DrainReport) -> String {
    if d.finished {
        format!("{:.0} runs/s", d.rate())
    } else {
        format!(
            "timed out: {} of {} succeeded in {:.0} s",
            d.succeeded, d.runs, d.wall_secs
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Batch linearity

async fn linearity(env: &Env) -> anyhow::Result<Section> {
    let n = env.size("BENCH_LINEAR_RUNS", 100_000);
    let mut section = Section::new(
        "Batch linearity",
        format!(
            "{n} no-op runs enqueued as batches vs {n} unbatched, each on a fresh database, \
             then drained by one runner ({SLOTS} slots) from its spawn; per-run cost = drain \
             wall time ÷ runs (timeout {} s)",
            env.drain_timeout.as_secs()
        ),
    );
    // Batched.
    let (db, server, api) = api_setup(env, "scale-linear-batched-api").await?;
    let per = batch_size_for(&api, n).await?;
    let since = db.now().await?;
    let enqueue = enqueue_batches(&api, &noop_entry(), n, per).await?;
    server.stop().await?;
    let (worker, batched) = drain(
        &db,
        &ServerConfig::worker("scale-linear-batched", SLOTS),
        since,
        env.drain_timeout,
    )
    .await?;
    worker.stop().await?;
    db.drop_with(&env.admin_url).await?;
    section.add(
        format!("batched: {} batches of {per}, enqueue", n.div_ceil(per)),
        format!("{:.0} runs/s", n as f64 / enqueue),
    );
    section.add("batched: drain", drain_note(&batched));
    // Unbatched.
    let (db, server, api) = api_setup(env, "scale-linear-unbatched-api").await?;
    let since = db.now().await?;
    let (how, enqueue) = enqueue_unbatched(&api, &noop_entry(), n).await?;
    server.stop().await?;
    let (worker, unbatched) = drain(
        &db,
        &ServerConfig::worker("scale-linear-unbatched", SLOTS),
        since,
        env.drain_timeout,
    )
    .await?;
    worker.stop().await?;
    db.drop_with(&env.admin_url).await?;
    section.add(
        format!("unbatched ({how}): enqueue"),
        format!("{:.0} runs/s", n as f64 / enqueue),
    );
    section.add("unbatched: drain", drain_note(&unbatched));
    let cost = |d: &DrainReport| d.wall_secs * 1e6 / d.succeeded.max(1) as f64;
    section.add(
        "per-run cost batched / unbatched",
        format!(
            "{}{:.2}x",
            if batched.finished { "" } else { "≥ " },
            cost(&batched) / cost(&unbatched)
        ),
    );
    Ok(section)
}

// ---------------------------------------------------------------------------------------------
// Fairness

async fn fairness(env: &Env) -> anyhow::Result<Section> {
    let queued = env.size("BENCH_FAIR_QUEUED", 100_000);
    let sleep_ms = env_usize("BENCH_FAIR_SLEEP_MS", 2_000);
    let patience = Duration::from_secs(env_usize("BENCH_FAIR_WAIT_S", 20) as u64);
    let mut section = Section::new(
        "Fairness between tenants",
        format!(
            "tenant A: {SLOTS} + {queued} `sleep` runs (priority 10, timeout {sleep_ms} ms, one \
             attempt) enqueued before the runner ({SLOTS} slots) starts; once A holds every \
             slot, tenant B enqueues one `noop` run (default priority); B's wait = its run's \
             creation → attempt start (database clock), given up after {} s",
            patience.as_secs()
        ),
    );
    let db = Database::fresh(&env.admin_url).await?;
    let server = Server::start(&db.url, &ServerConfig::api_only("scale-fair-api")).await?;
    let a = Api::create_tenant(&server.base, "tenant-a").await?;
    let b = Api::create_tenant(&server.base, "tenant-b").await?;
    a.upload_job("sleep", &env.sleep).await?;
    b.upload_job("noop", &env.noop).await?;
    let entry = json!({
        "job": "sleep", "input": null, "priority": 10, "timeout_ms": sleep_ms, "max_attempts": 1
    });
    let how = enqueue_fast(&a, &entry, SLOTS + queued).await?;
    server.stop().await?;
    section.add("A's runs enqueued by", how);
    let mut worker = Server::start(&db.url, &ServerConfig::worker("scale-fair", SLOTS)).await?;
    let pool = &db.pool;
    let full = wait_until(
        Duration::from_millis(20),
        Duration::from_secs(60),
        || async move {
            let running: i64 =
                sqlx::query_scalar("SELECT count(*) FROM runs WHERE state = 'running'")
                    .fetch_one(pool)
                    .await?;
            Ok(running >= SLOTS as i64)
        },
    )
    .await?;
    anyhow::ensure!(full.is_some(), "tenant A never held every slot");
    let b = b.at(&worker.base);
    let run = b.enqueue("noop", &json!({"input": {}})).await?;
    let id = run["id"].as_str().unwrap_or_default().to_string();
    let asked = Instant::now();
    let started = loop {
        let run = b.run(&id).await?;
        if run["attempts"][0]["started_at"].is_string() {
            break ms_between(&run["created_at"], &run["attempts"][0]["started_at"]);
        }
        if asked.elapsed() > patience {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    worker.check_alive()?;
    let a_attempt: Option<f64> = sqlx::query_scalar(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)::float8
         FROM attempts WHERE outcome IS NOT NULL AND run_id IN (
             SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.name = 'sleep')",
    )
    .fetch_one(&db.pool)
    .await?;
    let a_done: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id
         JOIN jobs j ON j.id = r.job_id WHERE j.name = 'sleep' AND a.outcome IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await?;
    worker.stop_within(Duration::from_secs(120)).await?;
    db.drop_with(&env.admin_url).await?;
    section.add(
        format!("A's attempt duration, median ({a_done} ended meanwhile)"),
        fmt_opt(a_attempt, 0, " ms"),
    );
    match started {
        Some(ms) => {
            section.add("B's run waited", format!("{ms:.0} ms"));
            section.add(
                "B's wait / A's attempt duration",
                fmt_opt(a_attempt.map(|a| ms / a), 2, "x"),
            );
        }
        None => {
            section.add(
                "B's run waited",
                format!("> {} s (never started)", patience.as_secs()),
            );
            section.add(
                "B's wait / A's attempt duration",
                format!(
                    "> {}",
                    fmt_opt(
                        a_attempt.map(|a| patience.as_secs_f64() * 1000.0 / a),
                        1,
                        "x"
                    )
                ),
            );
        }
    }
    Ok(section)
}

// ---------------------------------------------------------------------------------------------
// Paused queues

async fn paused(env: &Env) -> anyhow::Result<Section> {
    let n = env.size("BENCH_PAUSED_RUNS", 300_000);
    let pickups = env_usize("BENCH_PAUSED_PICKUPS", 100);
    let queue = "shared";
    let mut section = Section::new(
        "Paused queues",
        format!(
            "pickup latency of {pickups} single `noop` runs of tenant B, one at a time, into an \
             idle runner ({SLOTS} slots) serving queue {queue:?}: first with nothing else \
             stored, then with {n} runs of tenant A waiting in A's paused queue {queue:?} \
             (queue settings are per tenant; B's queue is not paused)"
        ),
    );
    let db = Database::fresh(&env.admin_url).await?;
    let mut config = ServerConfig::worker("scale-paused-empty", SLOTS);
    config.queues = vec![queue.into()];
    let worker = Server::start(&db.url, &config).await?;
    let a = Api::create_tenant(&worker.base, "tenant-a").await?;
    let b = Api::create_tenant(&worker.base, "tenant-b").await?;
    a.upload_job("noop", &env.noop).await?;
    b.upload_job("noop", &env.noop).await?;
    let body = json!({"input": {}, "queue": queue});
    let empty = pickup_latencies(&b, "noop", &body, pickups).await?;
    worker.stop().await?;

    let mut api_config = ServerConfig::api_only("scale-paused-api");
    api_config.queues = vec![queue.into()];
    let server = Server::start(&db.url, &api_config).await?;
    let a = a.at(&server.base);
    a.pause_queue(queue).await?;
    let how = enqueue_fast(&a, &json!({"job": "noop", "input": {}, "queue": queue}), n).await?;
    server.stop().await?;
    section.add("A's runs enqueued by", how);

    config.log_name = "scale-paused-full".into();
    let worker = Server::start(&db.url, &config).await?;
    let b = b.at(&worker.base);
    let full = pickup_latencies(&b, "noop", &body, pickups).await?;
    let a_started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runs r JOIN tenants t ON t.id = r.tenant_id
         WHERE t.name = 'tenant-a' AND r.attempt > 0",
    )
    .fetch_one(&db.pool)
    .await?;
    worker.stop().await?;
    db.drop_with(&env.admin_url).await?;
    pickup_figures(&mut section, "empty queue", &empty);
    pickup_figures(&mut section, "paused runs stored", &full);
    pickup_ratios(&mut section, "paused runs / empty", &full, &empty);
    section.add(
        "A's paused runs started anyway (must be 0)",
        a_started.to_string(),
    );
    Ok(section)
}

// ---------------------------------------------------------------------------------------------
// Big tables

/// What a noop attempt records, taken from a real one.
#[derive(Debug, Clone, Copy)]
struct AttemptFigures {
    fuel_used: Option<i64>,
    peak_memory: Option<i64>,
    duration_ms: Option<i64>,
}

/// How seeded runs end, written as complete.sql writes it: the run's state, output, error and
/// reason, and the attempt's outcome.
#[derive(Debug, Clone, Copy)]
struct Ending {
    state: &'static str,
    output: Option<&'static str>,
    error: Option<&'static str>,
    reason: &'static str,
    outcome: &'static str,
}

impl Ending {
    /// Attempt 1 succeeded.
    const SUCCEEDED: Ending = Ending {
        state: "succeeded",
        output: Some("{}"),
        error: None,
        reason: "attempt 1 succeeded",
        outcome: "ok",
    };
    /// Attempt 1, the only one allowed, ended with an error.
    const FAILED: Ending = Ending {
        state: "failed",
        output: None,
        error: Some("seeded failure: the bench's stand-in for a job's error"),
        reason: "attempt 1 ended with error; no attempts left (1 allowed)",
        outcome: "error",
    };
}

/// Writes `n` finished runs of the template's tenant and job, the way the API and a worker
/// would: each run is inserted `enqueued` with the options of a run enqueued through the API
/// (`template`, still enqueued: the caller may cancel it afterwards), claimed (`running`,
/// attempt 1, lease, an attempts row) and completed as `ending` says (`succeeded` with output
/// `{}` and the attempt `ok`, or `failed` with an error and the attempt `error`; the attempt
/// with a real noop attempt's figures), each step an UPDATE that goes through the
/// state-machine, history and dependents triggers, so the transitions are checked and
/// `run_events` gets the same rows. Times are spread over the hour before; ids are UUIDv7 of
/// their creation time, like the API's. Chunks of 25,000 runs, each in one transaction, on two
/// connections.
async fn seed_finished_runs(
    db: &Database,
    template: Uuid,
    n: usize,
    attempt: AttemptFigures,
    ending: Ending,
) -> anyhow::Result<()> {
    const CHUNK: usize = 25_000;
    let runner = Uuid::new_v4();
    // Creation times: the hour before now, evenly.
    let base: DateTime<Utc> = sqlx::query_scalar("SELECT now() - interval '1 hour'")
        .fetch_one(&db.pool)
        .await?;
    let step_us = (3_600_000_000f64 / n.max(1) as f64).max(1.0);
    let chunks: Vec<(usize, usize)> = (0..n)
        .step_by(CHUNK)
        .map(|first| (first, (first + CHUNK).min(n)))
        .collect();
    // Two connections (this machine's core count), each taking every other chunk.
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..2 {
        let pool = db.pool.clone();
        let mine: Vec<(usize, usize)> = chunks.iter().copied().skip(lane).step_by(2).collect();
        tasks.spawn(async move {
            for (first, last) in mine {
                seed_chunk(
                    &pool, template, runner, first, last, base, step_us, attempt, ending,
                )
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    // The seeding mirrors today's schema. A schema with a table of unfinished runs must not
    // list the seeded (finished) runs there; only the template run may be in it.
    let narrow: bool = sqlx::query_scalar("SELECT to_regclass('run_queue') IS NOT NULL")
        .fetch_one(&db.pool)
        .await?;
    if narrow {
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM run_queue")
            .fetch_one(&db.pool)
            .await?;
        anyhow::ensure!(
            queued <= 1,
            "the SQL seeding does not match this schema: run_queue holds {queued} rows after \
             seeding finished runs; update seed_finished_runs in runner/benches/scale.rs"
        );
    }
    // As autovacuum would have left a table filled over time.
    for table in ["runs", "attempts", "run_events", "run_queue"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

/// One transaction: runs `first..last` inserted, claimed and completed (see
/// `seed_finished_runs`).
#[allow(clippy::too_many_arguments)]
async fn seed_chunk(
    pool: &sqlx::PgPool,
    template: Uuid,
    runner: Uuid,
    first: usize,
    last: usize,
    base: DateTime<Utc>,
    step_us: f64,
    attempt: AttemptFigures,
    ending: Ending,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input,
                           max_attempts, timeout_ms, fuel, memory_mb, backoff_base_ms,
                           state_reason, origin, scheduled_at, created_at)
         SELECT (lpad(to_hex((extract(epoch FROM c.at) * 1000)::int8), 12, '0')
                 || '7' || substr(md5(random()::text), 1, 3)
                 || substr('89ab', 1 + floor(random() * 4)::int, 1)
                 || substr(md5(random()::text), 1, 15))::uuid,
                t.tenant_id, t.job_id, t.version, 'enqueued', t.queue, t.priority, t.input,
                t.max_attempts, t.timeout_ms, t.fuel, t.memory_mb, t.backoff_base_ms,
                t.state_reason, t.origin, c.at, c.at
         FROM runs t,
              generate_series($2::int8, $3::int8 - 1) g,
              LATERAL (SELECT $4::timestamptz + make_interval(secs => g * $5::float8 / 1e6)
                           AS at) c
         WHERE t.id = $1
         RETURNING id",
    )
    .bind(template)
    .bind(first as i64)
    .bind(last as i64)
    .bind(base)
    .bind(step_us)
    .fetch_all(&mut *tx)
    .await?;
    anyhow::ensure!(
        ids.len() == last - first,
        "seeding: the template run is gone"
    );
    // Claimed, as claim.sql does it (times relative to creation).
    sqlx::query(
        "WITH leased AS (
             UPDATE run_queue q
             SET state = 'running',
                 runner_id = $2,
                 lease_token = gen_random_uuid(),
                 lease_expires_at = now() + interval '30 seconds'
             WHERE q.run_id = ANY($1) AND q.state = 'enqueued'
             RETURNING q.run_id, q.lease_token
         )
         UPDATE runs r
         SET state = 'running',
             lease_token = l.lease_token,
             attempt = r.attempt + 1,
             started_at = r.created_at + interval '3 milliseconds',
             progress = NULL,
             progress_message = NULL
         FROM leased l
         WHERE r.id = l.run_id",
    )
    .bind(&ids)
    .bind(runner)
    .execute(&mut *tx)
    .await?;
    // Completed, as complete.sql does it for the attempt's outcome.
    sqlx::query(
        "WITH released AS (
             DELETE FROM run_queue q
             WHERE q.run_id = ANY($1)
             RETURNING q.run_id, q.runner_id
         ), done AS (
             UPDATE runs r
             SET state = $6::run_state,
                 output = $7::jsonb,
                 error = $8,
                 finished_at = r.started_at + make_interval(secs => $5::float8 / 1000 + 0.001),
                 lease_token = NULL,
                 state_reason = $9
             FROM released x
             WHERE r.id = x.run_id AND r.state = 'running'
             RETURNING r.id, r.attempt, r.started_at, r.finished_at, x.runner_id
         )
         INSERT INTO attempts (run_id, number, runner_id, started_at, finished_at, outcome,
                               error, fuel_used, peak_memory, duration_ms)
         SELECT id, attempt, runner_id, started_at, finished_at, $10::attempt_outcome, $8, $2,
                $3, $4
         FROM done",
    )
    .bind(&ids)
    .bind(attempt.fuel_used)
    .bind(attempt.peak_memory)
    .bind(attempt.duration_ms)
    .bind(attempt.duration_ms.unwrap_or(0) as f64)
    .bind(ending.state)
    .bind(ending.output)
    .bind(ending.error)
    .bind(ending.reason)
    .bind(ending.outcome)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

struct BigCase {
    enqueued_by: String,
    drain: DrainReport,
    pickups: Pickups,
    attempt: AttemptFigures,
    seed_secs: f64,
}

async fn big_case(
    env: &Env,
    stored: usize,
    runs: usize,
    pickups: usize,
    attempt: Option<AttemptFigures>,
) -> anyhow::Result<BigCase> {
    let label = if stored == 0 { "empty" } else { "stored" };
    let (db, server, api) = api_setup(env, &format!("scale-big-{label}-api")).await?;
    let mut seed_secs = 0.0;
    if stored > 0 {
        let template = api.enqueue("noop", &json!({"input": {}})).await?;
        let template = Uuid::parse_str(template["id"].as_str().unwrap_or_default())?;
        let start = Instant::now();
        seed_finished_runs(
            &db,
            template,
            stored,
            attempt.unwrap_or(AttemptFigures {
                fuel_used: None,
                peak_memory: None,
                duration_ms: None,
            }),
            Ending::SUCCEEDED,
        )
        .await?;
        seed_secs = start.elapsed().as_secs_f64();
    }
    let since = db.now().await?;
    let (enqueued_by, _) = enqueue_unbatched(&api, &noop_entry(), runs).await?;
    server.stop().await?;
    let (worker, report) = drain(
        &db,
        &ServerConfig::worker(&format!("scale-big-{label}"), SLOTS),
        since,
        env.drain_timeout,
    )
    .await?;
    let latencies = if report.finished {
        pickup_latencies(
            &api.at(&worker.base),
            "noop",
            &json!({"input": {}}),
            pickups,
        )
        .await?
    } else {
        Pickups::default()
    };
    let attempt = sqlx::query_as::<_, (Option<i64>, Option<i64>, Option<i64>)>(
        "SELECT fuel_used, peak_memory, duration_ms FROM attempts
         WHERE outcome = 'ok' ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?
    .map(|(fuel_used, peak_memory, duration_ms)| AttemptFigures {
        fuel_used,
        peak_memory,
        duration_ms,
    })
    .or(attempt)
    .unwrap_or(AttemptFigures {
        fuel_used: None,
        peak_memory: None,
        duration_ms: None,
    });
    worker.stop().await?;
    db.drop_with(&env.admin_url).await?;
    Ok(BigCase {
        enqueued_by,
        drain: report,
        pickups: latencies,
        attempt,
        seed_secs,
    })
}

async fn big_tables(env: &Env) -> anyhow::Result<Section> {
    let stored = env.size("BENCH_BIG_STORED", 1_000_000);
    let runs = env.size("BENCH_BIG_RUNS", 20_000);
    let pickups = env_usize("BENCH_BIG_PICKUPS", 100);
    let mut section = Section::new(
        "Big tables",
        format!(
            "{runs} no-op runs enqueued before the runner ({SLOTS} slots) starts, drained, \
             then {pickups} single-run pickups; on an empty database vs one holding {stored} \
             finished runs. The stored runs are seeded with SQL, not through the API: each is \
             inserted enqueued with the options of an API-made run, then claimed and completed \
             by UPDATEs that pass the schema's state-machine, history and dependents triggers \
             (attempt rows, 3 history rows per run, UUIDv7 ids, times spread over the past \
             hour), then VACUUM ANALYZE"
        ),
    );
    let empty = big_case(env, 0, runs, pickups, None).await?;
    let full = big_case(env, stored, runs, pickups, Some(empty.attempt)).await?;
    section.add("runs enqueued by", empty.enqueued_by.clone());
    section.add(
        format!("seeding {stored} finished runs took"),
        secs(full.seed_secs),
    );
    for (label, case) in [("empty", &empty), ("1M stored", &full)] {
        let label = if label == "1M stored" {
            format!("{stored} stored")
        } else {
            label.to_string()
        };
        section.add(format!("{label}: drain"), drain_note(&case.drain));
        pickup_figures(&mut section, &label, &case.pickups);
    }
    section.add(
        "drain throughput stored / empty",
        format!("{:.2}x", full.drain.rate() / empty.drain.rate()),
    );
    pickup_ratios(
        &mut section,
        "stored / empty",
        &full.pickups,
        &empty.pickups,
    );
    Ok(section)
}

// ---------------------------------------------------------------------------------------------
// Continuation chains

/// Enqueues a head run and `links` continuations in `queue`, each after the previous one (on
/// succeeded), one request at a time. Returns every id, head first.
async fn build_chain(api: Api, queue: &str, links: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(links + 1);
    let head = api
        .enqueue("noop", &json!({"input": {}, "queue": queue}))
        .await?;
    ids.push(head["id"].as_str().unwrap_or_default().to_string());
    for _ in 0..links {
        let prev = ids.last().cloned().unwrap_or_default();
        let run = api
            .enqueue(
                "noop",
                &json!({"input": {}, "queue": queue, "after": {"run": prev, "on": "succeeded"}}),
            )
            .await?;
        ids.push(run["id"].as_str().unwrap_or_default().to_string());
    }
    Ok(ids)
}

async fn chains(env: &Env) -> anyhow::Result<Section> {
    let links = env.size("BENCH_CHAIN_LINKS", 10_000);
    let mut section = Section::new(
        "Continuation chains",
        format!(
            "two chains of a head run and {links} continuations (each `after` the previous \
             one, on succeeded), built one request at a time (the two chains concurrently) \
             before the worker starts; the second chain (in a queue no runner serves) has its \
             head cancelled through the API; then a runner ({SLOTS} slots) runs the first chain"
        ),
    );
    let (db, server, api) = api_setup(env, "scale-chain-api").await?;
    let start = Instant::now();
    let (first, second) = tokio::try_join!(
        build_chain(api.new_connection(), "default", links),
        build_chain(api.new_connection(), "parked", links),
    )?;
    section.add(
        "building both chains (one request a link, 2 clients)",
        format!(
            "{:.0} links/s",
            (2 * (links + 1)) as f64 / start.elapsed().as_secs_f64()
        ),
    );
    // Cancel the head of the second chain: every link should end cancelled.
    let asked = Instant::now();
    let cancel = api.cancel(&second[0]).await;
    let cancel_ms = asked.elapsed().as_secs_f64() * 1000.0;
    let second_ids: Vec<Uuid> = second
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let cancelled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE id = ANY($1) AND state = 'cancelled'")
            .bind(&second_ids)
            .fetch_one(&db.pool)
            .await?;
    let label = format!("cancel the head of a {links}-link chain");
    match &cancel {
        Ok(_) => section.add(label, format!("{cancel_ms:.0} ms")),
        Err(e) => {
            let status = failure_status(e).map_or_else(|| format!("{e}"), |s| format!("HTTP {s}"));
            section.add(label, format!("failed: {status} after {cancel_ms:.0} ms"));
            if let Some(why) = server.last_error() {
                section.add("  the runner's log says", why);
            }
        }
    }
    section.add(
        "  runs of that chain cancelled (head included)",
        format!("{cancelled} of {}", links + 1),
    );
    server.stop().await?;
    // Run the first chain (the second one's queue is not served).
    let last = Uuid::parse_str(first.last().map(String::as_str).unwrap_or_default())?;
    let worker = Server::start(&db.url, &ServerConfig::worker("scale-chain", SLOTS)).await?;
    let pool = &db.pool;
    let resolved = wait_until(
        Duration::from_millis(100),
        env.drain_timeout,
        || async move {
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1 AND finished_at IS NOT NULL)",
            )
            .bind(last)
            .fetch_one(pool)
            .await?;
            Ok(done)
        },
    )
    .await?;
    let wall = worker.spawned.elapsed().as_secs_f64();
    let first_ids: Vec<Uuid> = first
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let (succeeded, db_secs): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'succeeded'),
                extract(epoch FROM max(finished_at) - min(started_at))::float8
         FROM runs WHERE id = ANY($1)",
    )
    .bind(&first_ids)
    .fetch_one(&db.pool)
    .await?;
    worker.stop().await?;
    db.drop_with(&env.admin_url).await?;
    match resolved {
        Some(_) => {
            section.add(
                format!("resolve a {links}-link chain (runner spawn → last link ended)"),
                format!("{wall:.1} s"),
            );
            section.add(
                "  database clock (head start → last link end)",
                fmt_opt(db_secs, 1, " s"),
            );
            section.add(
                "  per link",
                fmt_opt(db_secs.map(|s| s * 1000.0 / (links + 1) as f64), 2, " ms"),
            );
        }
        None => section.add(
            format!("resolve a {links}-link chain"),
            format!("timed out after {wall:.0} s"),
        ),
    }
    section.add(
        "  links succeeded (head included)",
        format!("{succeeded} of {}", links + 1),
    );
    Ok(section)
}

// ---------------------------------------------------------------------------------------------
// Dashboard

/// The dashboard issue's goal: database time per page view, at 1M stored runs.
const DASH_DB_GOAL_MS: f64 = 50.0;
/// The issue's goal for the run list's 1st and 20th page, as a browser waits for them.
const DASH_LIST_GOAL_MS: f64 = 200.0;
/// The jobs of the big tenant: most runs are `noop`'s, a tenth `report`'s, the failed ones
/// `flaky`'s; `digest` and `sync` only have schedules and rollup rows. All are the noop
/// component: only names show on the pages.
const DASH_JOBS: [&str; 5] = ["noop", "report", "flaky", "digest", "sync"];

/// A SQL file of the store, with its name (the runner's own text, for EXPLAIN).
macro_rules! store_sql {
    ($file:literal) => {
        ($file, include_str!(concat!("../src/store/sql/", $file)))
    };
}

/// One statement a page runs: its SQL file (plus what the store appends, e.g. the run list's
/// ORDER BY) and the page's parameters as SQL expressions, for `PREPARE` and `EXPLAIN EXECUTE`.
#[derive(Debug, Clone)]
struct Probe {
    file: &'static str,
    sql: String,
    args: Vec<String>,
}

impl Probe {
    fn new((file, sql): (&'static str, &str), args: &[&str]) -> Probe {
        Probe {
            file,
            sql: sql.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The run list as `ui_run_list` sends it for an "Older" page (newest first): tenant
    /// `scope`, state, job, rows older than `before`, `limit` rows (each an SQL expression).
    /// The statement is the store's own (`ui_run_list_sql`: which rows it walks depends on the
    /// state).
    fn run_list(scope: &str, state: &str, job: &str, before: &str, limit: i64) -> Probe {
        let limit = limit.to_string();
        let run_state = sandfire::model::RunState::parse(state.trim_matches('\''));
        Probe {
            file: "ui_run_select.sql",
            sql: sandfire::store::ui_run_list_sql(run_state, false),
            // $10 and $11: no created-time bounds.
            args: [
                scope, state, job, "NULL", "NULL", "NULL", before, "NULL", &limit, "NULL", "NULL",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        }
    }

    /// The session lookup every page starts with (an unknown session: the same index probe).
    fn session() -> Probe {
        Probe::new(store_sql!("ui_session_get.sql"), &[r"'\x00'::bytea"])
    }
}

/// An SQL literal: `'text'`, or NULL.
fn sql_text(v: Option<&str>) -> String {
    v.map_or_else(
        || "NULL".to_string(),
        |v| format!("'{}'", v.replace('\'', "''")),
    )
}

/// The start of the newest `n` buckets of `width` seconds (as the overview and usage pages
/// floor the database clock), as an SQL expression.
fn buckets_since(width: i64, n: i64) -> String {
    format!(
        "date_bin('{width} seconds', now(), timestamptz 'epoch') - interval '{} seconds'",
        width * (n - 1)
    )
}

/// The statements of the overview (`/ui`, `range` as (bucket width, buckets)) for `scope`.
fn overview_probes(scope: &str, (width, n): (i64, i64)) -> Vec<Probe> {
    // Constants as in runner/src/ui/pages/overview.rs (WINDOW, the realtime chart's 60
    // buckets of 10 s, the failures box's 5 rows).
    vec![
        Probe::session(),
        Probe::new(store_sql!("ui_active_counts.sql"), &[scope]),
        Probe::new(store_sql!("ui_window_counts.sql"), &[scope, "10000"]),
        Probe::new(
            store_sql!("stats_series.sql"),
            &["10", &buckets_since(10, 60), scope],
        ),
        Probe::new(
            store_sql!("stats_series.sql"),
            &[&width.to_string(), &buckets_since(width, n), scope],
        ),
        Probe::new(
            store_sql!("stats_usage.sql"),
            &[&buckets_since(86_400, 1), scope, "10000"],
        ),
        Probe::run_list(scope, "'failed'", "NULL", "NULL", 5),
        Probe::new(store_sql!("runner_list.sql"), &[scope]),
    ]
}

/// The statements of `/ui/usage` for `scope` (DAYS and MAX_ROWS of pages/usage.rs).
fn usage_probes(scope: &str) -> Vec<Probe> {
    let since = buckets_since(86_400, 30);
    vec![
        Probe::session(),
        Probe::new(store_sql!("stats_usage.sql"), &[&since, scope, "1001"]),
        Probe::new(store_sql!("stats_top_jobs.sql"), &[&since, scope, "10"]),
    ]
}

/// One page to time.
struct DashPage {
    label: String,
    path: String,
    admin: bool,
    /// Its main statements, EXPLAINed when pg_stat_statements is not available.
    probes: Vec<Probe>,
}

/// What the seeded database holds, as the pages' parameters need it.
struct DashData {
    bench: Api,
    tenant_id: i64,
    noop_job_id: i64,
    /// A run to open (`/ui/runs/{id}`), and its state.
    one_run: Uuid,
    one_state: String,
    schedule_ids: Vec<i64>,
    rollup_rows: u64,
    seed_secs: f64,
}

/// How a page's database time is measured.
enum DbClock {
    /// pg_stat_statements, tracking this database only (execution and planning).
    Statements,
    /// EXPLAIN ANALYZE of the page's main statements, and why.
    Explain(String),
}

impl DbClock {
    /// pg_stat_statements when the cluster preloads it, set to track this database's top-level
    /// statements with their planning (before the runner connects); else EXPLAIN ANALYZE.
    async fn choose(db: &Database) -> DbClock {
        if std::env::var("BENCH_DASH_DB").is_ok_and(|v| v == "explain") {
            return DbClock::Explain("BENCH_DASH_DB=explain".into());
        }
        let loaded: bool = sqlx::query_scalar(
            "SELECT current_setting('shared_preload_libraries') ~ 'pg_stat_statements'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap_or(false);
        if !loaded {
            return DbClock::Explain(
                "pg_stat_statements is not preloaded (scripts/pg.sh preloads it when \
                 PostgreSQL ships it)"
                    .into(),
            );
        }
        let name = db.url.rsplit('/').next().unwrap_or_default();
        for sql in [
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements".to_string(),
            format!("ALTER DATABASE {name} SET pg_stat_statements.track = 'top'"),
            format!("ALTER DATABASE {name} SET pg_stat_statements.track_planning = on"),
        ] {
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
            {
                return DbClock::Explain(format!("pg_stat_statements: {e}"));
            }
        }
        DbClock::Statements
    }

    fn name(&self) -> &'static str {
        match self {
            DbClock::Statements => "pg_stat_statements",
            DbClock::Explain(_) => "EXPLAIN ANALYZE",
        }
    }

    fn describe(&self) -> String {
        match self {
            DbClock::Statements => "pg_stat_statements: execution + planning time of the \
                                    statements run at least once per view (so not the \
                                    runner's own background statements), ÷ views"
                .into(),
            DbClock::Explain(why) => format!(
                "EXPLAIN (ANALYZE) of the page's main SQL files with its parameters, custom \
                 plans, planning + execution, summed (smaller statements not counted; {why})"
            ),
        }
    }

    async fn reset(&self, db: &Database) -> anyhow::Result<()> {
        if let DbClock::Statements = self {
            sqlx::query(
                "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database
                                                     WHERE datname = current_database()), 0)",
            )
            .execute(&db.pool)
            .await?;
        }
        Ok(())
    }
}

/// The statements pg_stat_statements saw in this database since the reset, run at least
/// `calls` times: (text, ms), slowest first.
async fn statement_times(db: &Database, calls: usize) -> anyhow::Result<Vec<(String, f64)>> {
    Ok(sqlx::query_as(
        "SELECT query, (total_exec_time + total_plan_time)::float8
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND calls >= $1 AND query !~ 'pg_stat_statements'
         ORDER BY 2 DESC",
    )
    .bind(calls as i64)
    .fetch_all(&db.pool)
    .await?)
}

/// A statement's text in a few words: the SQL file it came from when its text starts like one
/// the bench knows, else its first words.
fn statement_name(query: &str, probes: &[Probe]) -> String {
    let words = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .flat_map(str::split_whitespace)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = words(query);
    let head: String = text.chars().take(60).collect();
    probes
        .iter()
        .find(|p| words(&p.sql).starts_with(&head))
        .map_or_else(
            || format!("{head}…"),
            |p| format!("runner/src/store/sql/{}", p.file),
        )
}

/// A plan as EXPLAIN (ANALYZE, BUFFERS) printed it.
struct Explained {
    text: String,
    ms: f64,
}

impl Explained {
    /// Does the plan read the whole `runs` table?
    fn seq_scan_on_runs(&self) -> bool {
        self.text.lines().any(|l| {
            l.split("Seq Scan on ")
                .nth(1)
                .is_some_and(|rest| rest.split_whitespace().next() == Some("runs"))
        })
    }
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of a probe as a prepared statement, the plan cache forced to a
/// custom plan (the parameters' values known to the planner) or a generic one (what PostgreSQL
/// may switch to after five executions of one of the runner's prepared statements).
async fn explain(
    conn: &mut sqlx::PgConnection,
    probe: &Probe,
    generic: bool,
) -> anyhow::Result<Explained> {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET plan_cache_mode = {mode}; PREPARE bench_probe AS {}",
        probe.sql
    )))
    .execute(&mut *conn)
    .await
    .with_context(|| format!("PREPARE {}", probe.file))?;
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_probe({})",
        probe.args.join(", ")
    )))
    .fetch_all(&mut *conn)
    .await
    .with_context(|| format!("EXPLAIN {}", probe.file));
    sqlx::raw_sql("DEALLOCATE bench_probe; RESET plan_cache_mode")
        .execute(&mut *conn)
        .await?;
    let lines = rows?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let time = |what: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(what))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("ms")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    Ok(Explained {
        ms: time("Planning Time:") + time("Execution Time:"),
        text: lines.join("\n"),
    })
}

/// What one page measured.
struct PageFigures {
    sorted_ms: Vec<f64>,
    db_ms: Option<f64>,
    bytes: usize,
    /// Statuses other than 200, with how many times each came.
    bad: Vec<(u16, usize)>,
    /// The statement that took most of the database time, and its ms per view.
    top: Option<(String, f64)>,
}

impl PageFigures {
    fn median(&self) -> f64 {
        percentile(&self.sorted_ms, 0.5)
    }
}

/// Two warm-up views, then `repeat` timed ones; the database time of those (see `DbClock`).
async fn measure_page(
    browser: &Browser,
    page: &DashPage,
    repeat: usize,
    clock: &DbClock,
    db: &Database,
) -> anyhow::Result<PageFigures> {
    for _ in 0..2 {
        browser.get(&page.path).await?;
    }
    clock.reset(db).await?;
    let mut ms = Vec::with_capacity(repeat);
    let mut bad: Vec<(u16, usize)> = Vec::new();
    let mut bytes = 0;
    for _ in 0..repeat {
        let view = browser.get(&page.path).await?;
        if view.status != 200 {
            match bad.iter_mut().find(|(s, _)| *s == view.status) {
                Some((_, n)) => *n += 1,
                None => bad.push((view.status, 1)),
            }
        }
        bytes = view.body.len();
        ms.push(view.ms);
    }
    ms.sort_by(f64::total_cmp);
    let (db_ms, top) = match clock {
        DbClock::Statements => {
            let times = statement_times(db, repeat).await?;
            let total: f64 = times.iter().map(|(_, t)| t).sum();
            let top = times
                .first()
                .map(|(q, t)| (statement_name(q, &page.probes), t / repeat as f64));
            (Some(total / repeat as f64), top)
        }
        DbClock::Explain(_) => {
            let mut conn = db.pool.acquire().await?;
            let mut total = 0.0;
            let mut top: Option<(String, f64)> = None;
            for probe in &page.probes {
                // Once to warm the cache as the page views did, then measured.
                explain(&mut conn, probe, false).await?;
                let ms = explain(&mut conn, probe, false).await?.ms;
                total += ms;
                if top.as_ref().is_none_or(|(_, t)| ms > *t) {
                    top = Some((format!("runner/src/store/sql/{}", probe.file), ms));
                }
            }
            (Some(total), top)
        }
    };
    Ok(PageFigures {
        sorted_ms: ms,
        db_ms,
        bytes,
        bad,
        top,
    })
}

/// Text with the HTML escapes askama writes (`&amp;`, `&#x27;`, ...) decoded.
fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The run list's "Older" link (`rel="next"`, built by runner/src/ui/pages/runs.rs), as a path.
fn older_link(html: &str) -> Option<String> {
    let end = html.find(r#"rel="next""#)?;
    let tag = &html[html[..end].rfind('<')?..end];
    let href = tag.split(r#"href=""#).nth(1)?.split('"').next()?;
    Some(unescape_html(href))
}

/// Rollup rows as the runners write them (run_stats, migrations/0009_run_stats.sql) for every
/// job of the tenant, each of `runners` and three outcomes: 10-second buckets over the last
/// hour, hourly and daily ones over 35 days, about `per_10s` `ok` attempts per 10 seconds
/// (3 % `error`, 1 % `timeout`). Returns the rows written.
async fn seed_run_stats(
    db: &Database,
    tenant_id: i64,
    runners: &[Uuid],
    per_10s: f64,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO run_stats (width_s, bucket, tenant_id, job_id, runner_id, outcome, attempts,
                                runs_ended, fuel_used, duration_ms, peak_memory_max)
         SELECT w.width_s,
                to_timestamp(floor(extract(epoch FROM now()) / w.width_s) * w.width_s)
                    - make_interval(secs => g * w.width_s),
                $1, j.id, r.id, o.outcome::attempt_outcome, a.n,
                CASE WHEN o.outcome = 'ok' THEN a.n ELSE a.n / 2 END,
                a.n * 50000, a.n * 2, 1179648
         FROM (VALUES (10, 360), (3600, 840), (86400, 35)) AS w(width_s, buckets)
         CROSS JOIN LATERAL generate_series(0, w.buckets - 1) AS g
         CROSS JOIN (SELECT id FROM jobs WHERE tenant_id = $1) AS j
         CROSS JOIN unnest($2::uuid[]) AS r(id)
         CROSS JOIN (VALUES ('ok', 1.0), ('error', 0.03), ('timeout', 0.01)) AS o(outcome, share)
         CROSS JOIN LATERAL (
             SELECT ceil($3 * o.share * w.width_s / 10 * (0.5 + random()))::int8 AS n
         ) AS a",
    )
    .bind(tenant_id)
    .bind(runners)
    .bind(per_10s)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// Tenant `bench` with `stored` succeeded runs (a tenth of them `report`'s, the rest `noop`'s)
/// and `failed` failed ones (`flaky`, one attempt allowed), all spread over the last hour, three
/// schedules each triggered once; tenant `small` with `small_runs` succeeded runs; rollup rows
/// for both.
async fn dash_seed(
    env: &Env,
    db: &Database,
    server: &Server,
    stored: usize,
    failed: usize,
    small_runs: usize,
) -> anyhow::Result<DashData> {
    let bench = Api::create_tenant(&server.base, "bench").await?;
    let small = Api::create_tenant(&server.base, "small").await?;
    for job in DASH_JOBS {
        bench.upload_job(job, &env.noop).await?;
    }
    small.upload_job("noop", &env.noop).await?;
    // Of the order of a real noop attempt's figures.
    let attempt = AttemptFigures {
        fuel_used: Some(50_000),
        peak_memory: Some(1_179_648),
        duration_ms: Some(2),
    };
    let start = Instant::now();
    let report = stored / 10;
    let plain = json!({"input": {}});
    let once = json!({"input": {}, "max_attempts": 1});
    // Smallest first: each seeding ends with VACUUM ANALYZE of the whole tables.
    for (api, job, n, ending, body) in [
        (&small, "noop", small_runs, Ending::SUCCEEDED, &plain),
        (&bench, "flaky", failed, Ending::FAILED, &once),
        (&bench, "report", report, Ending::SUCCEEDED, &plain),
        (&bench, "noop", stored - report, Ending::SUCCEEDED, &plain),
    ] {
        if n == 0 {
            continue;
        }
        let template = api.enqueue(job, body).await?;
        let id = template["id"].as_str().unwrap_or_default().to_string();
        seed_finished_runs(db, Uuid::parse_str(&id)?, n, attempt, ending).await?;
        // The template leaves the queue (it shows as one cancelled run).
        api.cancel(&id).await?;
    }
    for (name, job) in [
        ("nightly-digest", "digest"),
        ("hourly-sync", "sync"),
        ("weekly-report", "report"),
    ] {
        // Due once a year: the schedules never fire during the bench; one run each by hand.
        bench
            .put_schedule(name, &json!({"job": job, "cron": "0 3 1 1 *"}))
            .await?;
        bench.trigger_schedule(name).await?;
    }
    let tenant_id: i64 = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'bench'")
        .fetch_one(&db.pool)
        .await?;
    let small_id: i64 = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'small'")
        .fetch_one(&db.pool)
        .await?;
    let runners = [Uuid::new_v4(), Uuid::new_v4()];
    let rollup_rows = seed_run_stats(db, tenant_id, &runners, 100.0).await?
        + seed_run_stats(db, small_id, &runners, 2.0).await?;
    for table in ["run_stats", "schedules", "runs", "run_queue"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&db.pool)
            .await?;
    }
    let seed_secs = start.elapsed().as_secs_f64();
    let noop_job_id: i64 =
        sqlx::query_scalar("SELECT id FROM jobs WHERE tenant_id = $1 AND name = 'noop'")
            .bind(tenant_id)
            .fetch_one(&db.pool)
            .await?;
    // A failed run from the middle of the table (its page shows an error and its history),
    // or with BENCH_DASH_FAILED=0 a succeeded one.
    let (one_run, one_state): (Uuid, String) = sqlx::query_as(
        "SELECT r.id, r.state::text FROM runs r JOIN jobs j ON j.id = r.job_id
         WHERE j.tenant_id = $1 AND j.name = $2 AND r.state = $4::run_state
         ORDER BY r.id DESC OFFSET $3 LIMIT 1",
    )
    .bind(tenant_id)
    .bind(if failed > 0 { "flaky" } else { "noop" })
    .bind((if failed > 0 { failed } else { stored / 2 } / 2) as i64)
    .bind(if failed > 0 { "failed" } else { "succeeded" })
    .fetch_one(&db.pool)
    .await
    .context("no run was seeded")?;
    let schedule_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM schedules WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(DashData {
        bench,
        tenant_id,
        noop_job_id,
        one_run,
        one_state,
        schedule_ids,
        rollup_rows,
        seed_secs,
    })
}

/// The pages to time; `page20` is the run list's 20th page as its links reach it.
fn dash_pages(d: &DashData, page20: &str) -> Vec<DashPage> {
    let t = d.tenant_id.to_string();
    let t = t.as_str();
    let before20 = sql_text(
        page20
            .split("before=")
            .nth(1)
            .map(|c| &c[..c.len().min(36)]),
    );
    let run = d.one_run.to_string();
    let ids = d
        .schedule_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let page = |label: &str, path: &str, admin: bool, mut probes: Vec<Probe>| {
        if !probes.iter().any(|p| p.file == "ui_session_get.sql") {
            probes.insert(0, Probe::session());
        }
        DashPage {
            label: label.to_string(),
            path: path.to_string(),
            admin,
            probes,
        }
    };
    let list =
        |state: &str, job: &str, before: &str| vec![Probe::run_list(t, state, job, before, 51)];
    vec![
        page("/ui", "/ui", false, overview_probes(t, (3600, 24))),
        page(
            "/ui?range=30d",
            "/ui?range=30d",
            false,
            overview_probes(t, (86_400, 30)),
        ),
        page("/ui/runs", "/ui/runs", false, list("NULL", "NULL", "NULL")),
        page(
            "/ui/runs, 20th page (Older ×19)",
            page20,
            false,
            list("NULL", "NULL", &before20),
        ),
        page(
            "/ui/runs?state=failed",
            "/ui/runs?state=failed",
            false,
            list("'failed'", "NULL", "NULL"),
        ),
        page(
            "/ui/runs?state=succeeded",
            "/ui/runs?state=succeeded",
            false,
            list("'succeeded'", "NULL", "NULL"),
        ),
        // Tabs of states few stored runs are in: the overview's `enqueued` tile links here.
        page(
            "/ui/runs?state=enqueued (overview tile)",
            "/ui/runs?state=enqueued",
            false,
            list("'enqueued'", "NULL", "NULL"),
        ),
        page(
            "/ui/runs?state=cancelled",
            "/ui/runs?state=cancelled",
            false,
            list("'cancelled'", "NULL", "NULL"),
        ),
        page(
            "/ui/runs?job=report",
            "/ui/runs?job=report",
            false,
            list("NULL", "'report'", "NULL"),
        ),
        page(
            &format!("/ui/runs/{{id}} (a {} run)", d.one_state),
            &format!("/ui/runs/{run}"),
            false,
            vec![
                Probe::new(store_sql!("run_select.sql"), &[t, &sql_text(Some(&run))]),
                {
                    let mut p = Probe::new(
                        store_sql!("ui_log_select.sql"),
                        &[t, &sql_text(Some(&run)), "1", "NULL", "NULL", "NULL", "200"],
                    );
                    p.sql.push_str("ORDER BY l.id DESC LIMIT $7");
                    p
                },
            ],
        ),
        page(
            "/ui/jobs",
            "/ui/jobs",
            false,
            vec![Probe::new(
                store_sql!("ui_job_list.sql"),
                &[t, "NULL", "NULL", "51"],
            )],
        ),
        page(
            "/ui/jobs/noop",
            "/ui/jobs/noop",
            false,
            vec![
                Probe::new(store_sql!("job_select.sql"), &[t, "'noop'"]),
                Probe::new(
                    store_sql!("ui_job_stats.sql"),
                    &[&d.noop_job_id.to_string(), t, "1000"],
                ),
            ],
        ),
        page(
            "/ui/schedules",
            "/ui/schedules",
            false,
            vec![
                Probe::new(
                    store_sql!("ui_schedule_list.sql"),
                    &[t, "NULL", "NULL", "51"],
                ),
                Probe::new(
                    store_sql!("ui_schedule_last_runs.sql"),
                    &[t, &format!("'{{{ids}}}'")],
                ),
            ],
        ),
        page(
            "/ui/queues",
            "/ui/queues",
            false,
            vec![Probe::new(store_sql!("ui_queue_list.sql"), &[t, "501"])],
        ),
        page(
            "/ui/runners",
            "/ui/runners",
            false,
            vec![Probe::new(store_sql!("runner_list.sql"), &[t])],
        ),
        page("/ui/usage", "/ui/usage", false, usage_probes(t)),
        page(
            "admin: /ui",
            "/ui",
            true,
            overview_probes("NULL", (3600, 24)),
        ),
        page(
            "admin: /ui/runs",
            "/ui/runs",
            true,
            vec![Probe::run_list("NULL", "NULL", "NULL", "NULL", 51)],
        ),
        page("admin: /ui/usage", "/ui/usage", true, usage_probes("NULL")),
        // The first run list page again: the dashboard's pool keeps its prepared statements, so
        // what the pages above made PostgreSQL plan may change the plan this one gets.
        page(
            "/ui/runs again, after the pages above",
            "/ui/runs",
            false,
            list("NULL", "NULL", "NULL"),
        ),
    ]
}

async fn dashboard(env: &Env) -> anyhow::Result<Section> {
    let stored = env.size("BENCH_DASH_STORED", 1_000_000);
    // 0 stays 0 under BENCH_QUICK: a tenant without failures.
    let failed = match env_usize("BENCH_DASH_FAILED", 10_000) {
        0 => 0,
        _ => env.size("BENCH_DASH_FAILED", 10_000),
    };
    let small_runs = env.size("BENCH_DASH_SMALL", 1_000);
    let repeat = env_usize("BENCH_DASH_REPEAT", 20).max(1);
    let keep = env_flag("BENCH_DASH_KEEP");
    let db = Database::fresh(&env.admin_url).await?;
    let clock = DbClock::choose(&db).await;
    let server = Server::start(&db.url, &ServerConfig::api_only("scale-dashboard")).await?;
    let data = dash_seed(env, &db, &server, stored, failed, small_runs).await?;
    let mut section = Section::new(
        "Dashboard pages",
        format!(
            "`sandfire serve --no-worker` (dashboard pool and statement timeout at their \
             defaults) on a database holding tenant `bench`'s {stored} succeeded runs (a tenth \
             of them job `report`'s) and {failed} failed ones (job `flaky`), spread over the \
             last hour and seeded like the big-tables part, 3 schedules, 5 jobs, and tenant \
             `small`'s {small_runs} runs; {} run_stats rollup rows (10 s buckets over the last \
             hour, hourly and daily over 35 days). Each page GET {repeat} times after 2 \
             warm-ups, signed in as `bench` (or as the admin), one request at a time, pages in \
             the order listed (the dashboard's pool keeps its prepared statements, so earlier \
             pages can change the plans later ones get: the last row repeats the run list's \
             first page): client wall time (median, p95), database time per view ({}), HTML \
             bytes. Goal: ≤ \
             {DASH_DB_GOAL_MS} ms of database time per page; the run list's 1st and 20th \
             page < {DASH_LIST_GOAL_MS} ms with no `Seq Scan on runs`",
            data.rollup_rows,
            clock.describe()
        ),
    );
    section.add("seeding took", secs(data.seed_secs));
    section.add("database time measured by", clock.name());
    let user = Browser::sign_in(&server.base, data.bench.key()).await?;
    let admin = Browser::sign_in(&server.base, ADMIN_TOKEN).await?;
    // The 20th page of the run list, reached as a person would: "Older" 19 times.
    let mut page20 = "/ui/runs".to_string();
    for n in 1..20 {
        let view = user.get(&page20).await?;
        anyhow::ensure!(
            view.status == 200,
            "GET {page20} answered HTTP {} on the way to page 20",
            view.status
        );
        page20 = older_link(&view.body)
            .with_context(|| format!("page {n} of /ui/runs has no Older link"))?;
    }
    let pages = dash_pages(&data, &page20);
    section.add(
        "page",
        format!(
            "{:>9} {:>9} {:>9} {:>9}",
            "median ms", "p95 ms", "db ms", "bytes"
        ),
    );
    let mut over = 0;
    let mut notes = Vec::new();
    let mut medians = Vec::new();
    for page in &pages {
        let browser = if page.admin { &admin } else { &user };
        let f = measure_page(browser, page, repeat, &clock, &db).await?;
        let bad = f
            .bad
            .iter()
            .map(|(s, n)| format!("  HTTP {s} ×{n}"))
            .collect::<String>();
        section.add(
            page.label.clone(),
            format!(
                "{:>9.1} {:>9.1} {:>9} {:>9}{bad}",
                f.median(),
                percentile(&f.sorted_ms, 0.95),
                fmt_opt(f.db_ms, 1, ""),
                f.bytes
            ),
        );
        if let Some((name, ms)) = &f.top {
            eprintln!(
                "{}: most database time: {ms:.1} ms/view: {name}",
                page.label
            );
        }
        if f.db_ms.is_some_and(|ms| ms > DASH_DB_GOAL_MS) {
            over += 1;
            if let Some((name, ms)) = &f.top {
                notes.push((page.label.clone(), format!("{ms:.1} ms/view: {name}")));
            }
        }
        medians.push(f.median());
    }
    section.add(
        format!("pages over {DASH_DB_GOAL_MS} ms of database time"),
        format!("{over} of {}", pages.len()),
    );
    for (label, note) in notes {
        section.add(format!("  {label}: most of it"), note);
    }
    // The run list's 1st and 20th page (the 3rd and 4th entries of `dash_pages`).
    section.add(
        format!("run list 1st / 20th page, median client time (goal < {DASH_LIST_GOAL_MS} ms)"),
        format!("{:.1} / {:.1} ms", medians[2], medians[3]),
    );
    // Their plans: with the parameters known (custom) and as a generic plan.
    let mut conn = db.pool.acquire().await?;
    for (label, page) in [("1st", &pages[2]), ("20th", &pages[3])] {
        let probe = page
            .probes
            .iter()
            .find(|p| p.file == "ui_run_select.sql")
            .context("the run list page has no run list statement")?;
        for generic in [false, true] {
            let kind = if generic { "generic" } else { "custom" };
            let plan = explain(&mut conn, probe, generic).await?;
            eprintln!(
                "EXPLAIN run list {label} page, {kind} plan:\n{}\n",
                plan.text
            );
            section.add(
                format!("run list {label} page, {kind} plan: Seq Scan on runs?"),
                format!(
                    "{} ({:.1} ms)",
                    if plan.seq_scan_on_runs() { "YES" } else { "no" },
                    plan.ms
                ),
            );
        }
    }
    drop(conn);
    server.stop().await?;
    if keep {
        section.add("database kept (BENCH_DASH_KEEP)", db.url.clone());
        db.close().await;
    } else {
        db.drop_with(&env.admin_url).await?;
    }
    Ok(section)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env {
        admin_url: admin_url()?,
        noop: example_component("noop")?,
        sleep: example_component("sleep")?,
        quick: env_flag("BENCH_QUICK"),
        drain_timeout: Duration::from_secs(env_usize("BENCH_SCALE_DRAIN_TIMEOUT_S", 600) as u64),
    };
    let only = std::env::var("BENCH_SCALE_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|n| n.trim() == name);
    let mode = {
        let db = Database::fresh(&env.admin_url).await?;
        let mode = commit_mode(&db.pool).await?;
        db.drop_with(&env.admin_url).await?;
        mode
    };
    let started = Instant::now();
    let mut sections = Vec::new();
    let parts = [
        ("linearity", "Batch linearity"),
        ("fairness", "Fairness between tenants"),
        ("paused", "Paused queues"),
        ("big", "Big tables"),
        ("chains", "Continuation chains"),
        ("dashboard", "Dashboard pages"),
    ];
    for (name, title) in parts {
        if !wanted(name) {
            continue;
        }
        eprintln!(
            "scale bench: {title} ({:.0} s in)",
            started.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let result = match name {
            "linearity" => linearity(&env).await,
            "fairness" => fairness(&env).await,
            "paused" => paused(&env).await,
            "big" => big_tables(&env).await,
            "chains" => chains(&env).await,
            _ => dashboard(&env).await,
        };
        let mut section = match result {
            Ok(section) => section,
            Err(e) => {
                // A failed part is a figure too; the other parts still run.
                let mut section = Section::new(title, "");
                section.add(
                    "failed",
                    format!("{e:#}").chars().take(200).collect::<String>(),
                );
                section
            }
        };
        section.add("(part took)", secs(t.elapsed().as_secs_f64()));
        sections.push(section);
    }
    println!();
    println!(
        "Sandfire scale benchmark — `sandfire serve --slots {SLOTS}` as its own process, work \
         over HTTP; PostgreSQL {mode}; {} CPU cores{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if env.quick {
            "; BENCH_QUICK: sizes ÷ 10"
        } else {
            ""
        }
    );
    for section in &sections {
        section.print();
    }
    println!();
    println!(
        "scale bench took {:.0} s; runner logs in {}",
        started.elapsed().as_secs_f64(),
        support::server::log_dir()?.display()
    );
    Ok(())
}
