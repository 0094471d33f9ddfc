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
//!   time for cancelling the head of a second chain to cancel every link.
//!
//! Knobs (environment): BENCH_LINEAR_RUNS (100000), BENCH_FAIR_QUEUED (100000),
//! BENCH_FAIR_SLEEP_MS (2000), BENCH_FAIR_WAIT_S (20), BENCH_PAUSED_RUNS (300000),
//! BENCH_PAUSED_PICKUPS (100), BENCH_BIG_STORED (1000000), BENCH_BIG_RUNS (20000),
//! BENCH_BIG_PICKUPS (100), BENCH_CHAIN_LINKS (10000), BENCH_SCALE_DRAIN_TIMEOUT_S (600),
//! BENCH_SCALE_ONLY (comma-separated subset of linearity,fairness,paused,big,chains),
//! BENCH_QUICK=1 (every size ÷ 10).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

#[path = "support/mod.rs"]
mod support;
use support::drain::{Database, DrainReport, commit_mode, drain, wait_until};
use support::server::{
    Api, Bulk, Pickups, Server, ServerConfig, batch_size_for, enqueue_batches, enqueue_bulk,
    enqueue_concurrently, example_component, failure_status, ms_between, pickup_latencies,
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

/// Writes `n` finished (succeeded) runs of tenant `bench`'s `noop` job, the way the API and a
/// worker would: each run is inserted `enqueued` with the options of a run enqueued through the
/// API (`template`), claimed (`running`, attempt 1, lease, an attempts row) and completed
/// (`succeeded`, output `{}`, attempt closed `ok` with a real noop attempt's figures), each
/// step an UPDATE that goes through the state-machine, history and dependents triggers, so the
/// transitions are checked and `run_events` gets the same rows. Times are spread over the hour
/// before; ids are UUIDv7 of their creation time, like the API's. Chunks of 25,000 runs, each
/// in one transaction, on two connections.
async fn seed_finished_runs(
    db: &Database,
    template: Uuid,
    n: usize,
    attempt: AttemptFigures,
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
                seed_chunk(&pool, template, runner, first, last, base, step_us, attempt).await?;
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
    // Completed, as complete.sql does it for a successful attempt.
    sqlx::query(
        "WITH released AS (
             DELETE FROM run_queue q
             WHERE q.run_id = ANY($1)
             RETURNING q.run_id, q.runner_id
         ), done AS (
             UPDATE runs r
             SET state = 'succeeded',
                 output = '{}'::jsonb,
                 error = NULL,
                 finished_at = r.started_at + make_interval(secs => $5::float8 / 1000 + 0.001),
                 lease_token = NULL,
                 state_reason = 'attempt 1 succeeded'
             FROM released x
             WHERE r.id = x.run_id AND r.state = 'running'
             RETURNING r.id, r.attempt, r.started_at, r.finished_at, x.runner_id
         )
         INSERT INTO attempts (run_id, number, runner_id, started_at, finished_at, outcome,
                               fuel_used, peak_memory, duration_ms)
         SELECT id, attempt, runner_id, started_at, finished_at, 'ok', $2, $3, $4 FROM done",
    )
    .bind(&ids)
    .bind(attempt.fuel_used)
    .bind(attempt.peak_memory)
    .bind(attempt.duration_ms)
    .bind(attempt.duration_ms.unwrap_or(0) as f64)
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
            _ => chains(&env).await,
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
