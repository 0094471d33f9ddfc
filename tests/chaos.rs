//! Chaos: real `sandfire serve` processes on a real PostgreSQL, killed while they work.
//!
//! The test starts its own throwaway PostgreSQL (it crashes it, so never the shared cluster of
//! `DATABASE_URL`) and three runner processes from the built binary, each on its own loopback
//! port with short heartbeats and leases. It enqueues a mix of short runs and a few long ones,
//! spread over the three runners' APIs (a refused request is retried on another runner with the
//! same idempotency key; only a 2xx counts as accepted), plus a schedule firing every second.
//! Meanwhile it SIGKILLs a random runner every few seconds (the leader first) and restarts it
//! on the same port, once stops PostgreSQL with an immediate shutdown and starts it again, and
//! once freezes the leader (SIGSTOP) for longer than its lease, then lets it continue (SIGCONT)
//! — a hung runner whose late completions must be rejected.
//!
//! Then it checks, with SQL against its database: every accepted run, and every run in the
//! table, is terminal (0 lost) within 30 s of the chaos ending; no run has two `ok` attempts;
//! no fire time of the schedule produced two runs, and the schedule kept firing; a short run
//! that did not succeed lost a runner along the way; no attempt is left open on an ended run;
//! no runner exited by itself; work resumed within 5 s of the database coming back. The
//! figures are printed as a table (`make chaos` shows them).
//!
//! Knobs (environment): CHAOS_SECONDS (10), CHAOS_RUNS (600), CHAOS_KILL_EVERY_MS (2000),
//! CHAOS_DB_DOWN_MS (1500), CHAOS_FREEZE_MS (4000). `make chaos` runs 60 s and 5,000 runs.
//! Logs of every runner
//! process and of PostgreSQL are kept under `target/chaos/` when the test fails (or when
//! CHAOS_KEEP is set).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::support::{ADMIN_TOKEN, example};

const RUNNERS: usize = 3;
const SLOTS: usize = 8;
const LEASE_MS: u64 = 1_500;
const HEARTBEAT_MS: u64 = 200;
const POLL_MS: u64 = 200;
const GRACE_MS: u64 = 300;
/// How long after the chaos ends every run must have ended.
const SETTLE: Duration = Duration::from_secs(30);
/// Jobs whose runs end in well under a second.
const SHORT_JOBS: [&str; 4] = ["noop", "hello", "flaky", "report"];
const SCHEDULE: &str = "chaos-tick";

struct Config {
    window: Duration,
    runs: usize,
    kill_every: Duration,
    db_down: Duration,
    freeze: Duration,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Config {
    fn from_env() -> Config {
        Config {
            window: Duration::from_secs(env_u64("CHAOS_SECONDS", 10).max(4)),
            runs: env_u64("CHAOS_RUNS", 600).max(10) as usize,
            kill_every: Duration::from_millis(env_u64("CHAOS_KILL_EVERY_MS", 2_000).max(200)),
            db_down: Duration::from_millis(env_u64("CHAOS_DB_DOWN_MS", 1_500)),
            freeze: Duration::from_millis(env_u64("CHAOS_FREEZE_MS", 4_000)),
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One start of a runner process: its log, and whether the test killed it.
struct Incarnation {
    log: PathBuf,
    killed: bool,
}

struct Proc {
    port: u16,
    child: Option<Child>,
    /// Index of the current incarnation.
    current: usize,
}

#[derive(Default)]
struct Procs {
    procs: Vec<Proc>,
    incarnations: Vec<Incarnation>,
    /// Runner processes that exited without being killed: what, and the end of their log.
    unexpected_exits: Vec<String>,
}

/// The chaos cluster: a PostgreSQL of its own and the runner processes. Dropping it (also when
/// an assertion fails) kills every process and stops PostgreSQL.
struct Cluster {
    dir: PathBuf,
    pg_dir: PathBuf,
    pg_port: u16,
    url: String,
    procs: Mutex<Procs>,
}

impl Cluster {
    async fn start() -> Cluster {
        let unique = format!(
            "{}-{}",
            std::process::id(),
            Uuid::now_v7().simple().to_string().split_at(20).1
        );
        let dir = repo_root().join("target/chaos").join(unique);
        std::fs::create_dir_all(&dir).expect("creating the chaos directory");
        let pg_port = free_port();
        let cluster = Cluster {
            pg_dir: dir.join("pg"),
            dir,
            pg_port,
            url: format!("postgres://postgres@127.0.0.1:{pg_port}/postgres"),
            procs: Mutex::new(Procs::default()),
        };
        cluster.pg_start().await;
        cluster
    }

    async fn pg(&self, args: &[&str]) {
        let status = tokio::process::Command::new(repo_root().join("scripts/pg.sh"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .await
            .expect("running scripts/pg.sh");
        assert!(status.success(), "scripts/pg.sh {args:?} failed: {status}");
    }

    async fn pg_start(&self) {
        let dir = self.pg_dir.to_string_lossy().into_owned();
        self.pg(&["start", &dir, &self.pg_port.to_string(), "crashsafe"])
            .await;
    }

    async fn pg_crash(&self) {
        self.pg(&["crash", &self.pg_dir.to_string_lossy()]).await;
    }

    fn procs(&self) -> std::sync::MutexGuard<'_, Procs> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base(&self, runner: usize) -> String {
        format!("http://127.0.0.1:{}", self.procs().procs[runner].port)
    }

    /// Starts runner `runner` (a new one, or again on its port).
    fn spawn_runner(&self, runner: usize) {
        let mut procs = self.procs();
        if procs.procs.len() <= runner {
            procs.procs.push(Proc {
                port: free_port(),
                child: None,
                current: 0,
            });
        }
        let n = procs.incarnations.len();
        let log = self.dir.join(format!("runner-{runner}-{n}.log"));
        let file = std::fs::File::create(&log).expect("creating a runner log");
        let port = procs.procs[runner].port;
        let child = Command::new(env!("CARGO_BIN_EXE_sandfire"))
            .arg("serve")
            .args(["--slots", &SLOTS.to_string(), "--queues", "default"])
            .args(["--poll-interval-ms", &POLL_MS.to_string()])
            .args(["--lease-ms", &LEASE_MS.to_string()])
            .args(["--heartbeat-ms", &HEARTBEAT_MS.to_string()])
            .args(["--grace-ms", &GRACE_MS.to_string()])
            .args(["--db-connections", "8", "--log-json"])
            .env("DATABASE_URL", &self.url)
            .env("SANDFIRE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SANDFIRE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "RUST_LOG",
                "info,sqlx=warn,cranelift=warn,wasmtime=warn,tower_http=warn",
            )
            .env_remove("SANDFIRE_SLOTS")
            .env_remove("SANDFIRE_QUEUES")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .expect("starting a sandfire process");
        procs.incarnations.push(Incarnation { log, killed: false });
        let proc = &mut procs.procs[runner];
        proc.child = Some(child);
        proc.current = n;
    }

    /// SIGKILLs runner `runner`; returns the id it ran under (if it got that far).
    fn kill_runner(&self, runner: usize) -> Option<Uuid> {
        let mut procs = self.procs();
        let current = procs.procs[runner].current;
        if let Some(mut child) = procs.procs[runner].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        procs.incarnations[current].killed = true;
        runner_id_in_log(&procs.incarnations[current].log)
    }

    /// The runner id of runner `runner`'s current incarnation, once it has started.
    fn runner_id(&self, runner: usize) -> Option<Uuid> {
        let procs = self.procs();
        runner_id_in_log(&procs.incarnations[procs.procs[runner].current].log)
    }

    /// Sends a signal (`STOP`, `CONT`) to runner `runner`'s process.
    fn signal(&self, runner: usize, signal: &str) {
        let pid = self.procs().procs[runner].child.as_ref().map(Child::id);
        if let Some(pid) = pid {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "kill -{signal} {pid} failed"
            );
        }
    }

    /// Lines of every runner log that contain `needle`.
    fn log_lines_with(&self, needle: &str) -> usize {
        let procs = self.procs();
        procs
            .incarnations
            .iter()
            .map(|inc| {
                std::fs::read_to_string(&inc.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(needle))
                    .count()
            })
            .sum()
    }

    /// Restarts runners that exited on their own, and records them: a runner must never exit
    /// because its database went away.
    fn restart_exited(&self) {
        let mut exited = Vec::new();
        {
            let mut procs = self.procs();
            let Procs {
                procs: list,
                incarnations,
                unexpected_exits,
            } = &mut *procs;
            for (i, proc) in list.iter_mut().enumerate() {
                let Some(child) = proc.child.as_mut() else {
                    continue;
                };
                if let Ok(Some(status)) = child.try_wait() {
                    proc.child = None;
                    let log = &incarnations[proc.current].log;
                    unexpected_exits.push(format!(
                        "runner {i} exited by itself ({status}); end of {}:\n{}",
                        log.display(),
                        tail(log, 15)
                    ));
                    exited.push(i);
                }
            }
        }
        for i in exited {
            self.spawn_runner(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut procs = self.procs();
        for proc in &mut procs.procs {
            if let Some(mut child) = proc.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        drop(procs);
        let _ = Command::new(repo_root().join("scripts/pg.sh"))
            .arg("stop")
            .arg(&self.pg_dir)
            .stdout(Stdio::null())
            .status();
        if std::thread::panicking() || std::env::var_os("CHAOS_KEEP").is_some() {
            eprintln!(
                "chaos: runner and PostgreSQL logs kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The runner id a `--log-json` runner logged at start.
fn runner_id_in_log(log: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let v: Value = serde_json::from_str(line).ok()?;
        if v["fields"]["message"] != "runner started" {
            return None;
        }
        v["fields"]["runner"].as_str()?.parse().ok()
    })
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the clients saw while enqueueing.
#[derive(Default)]
struct ClientStats {
    accepted: Mutex<Vec<Uuid>>,
    /// Enqueues that got no 2xx from any runner within their deadline.
    refused: AtomicUsize,
    /// 503 answers (the database was unreachable), and one of their bodies.
    unavailable: AtomicUsize,
    unavailable_body: Mutex<Option<Value>>,
    /// Other 5xx answers, and connections refused or cut (a runner was down).
    other_5xx: AtomicUsize,
    unreachable: AtomicUsize,
}

/// The job and request body of the `i`-th run.
fn run_spec(i: usize, runs: usize) -> (&'static str, Value) {
    let long = (runs / 200).clamp(3, 30);
    let stride = runs / long;
    if i % stride == stride / 2 {
        // Sleeps until its 3 s timeout: longer than the lease, so it lives on heartbeats.
        return (
            "sleep",
            json!({"timeout_ms": 3_000, "max_attempts": 1, "idempotency_key": format!("chaos-{i}")}),
        );
    }
    let (job, input) = match i % 20 {
        0..=7 => ("noop", json!({})),
        8..=12 => ("hello", json!({"name": format!("chaos {i}")})),
        13..=16 => ("flaky", json!({"succeed_on_attempt": 2})),
        _ => ("report", json!({"n": 20_000})),
    };
    (
        job,
        json!({"input": input, "backoff_base_ms": 100, "idempotency_key": format!("chaos-{i}")}),
    )
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: reqwest::Body,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let resp = http
        .request(method, url)
        .bearer_auth(key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Sends one request to the runners in turn until one answers 2xx (or `within` passes).
/// Returns the answer, or `None`. A 4xx is a mistake of the test: it panics.
async fn send_anywhere(
    cluster: &Cluster,
    http: &reqwest::Client,
    stats: &ClientStats,
    first: usize,
    (method, path, key, body): (reqwest::Method, &str, &str, &Value),
    within: Duration,
) -> Option<Value> {
    let deadline = Instant::now() + within;
    let mut runner = first;
    loop {
        let url = format!("{}{path}", cluster.base(runner));
        let bytes = serde_json::to_vec(body).expect("JSON body");
        match send(http, method.clone(), &url, key, bytes.into()).await {
            Ok((status, answer)) if status.is_success() => return Some(answer),
            Ok((StatusCode::SERVICE_UNAVAILABLE, answer)) => {
                stats.unavailable.fetch_add(1, Ordering::Relaxed);
                let mut sample = stats.unavailable_body.lock().unwrap();
                sample.get_or_insert(answer);
            }
            Ok((status, answer)) if status.is_server_error() => {
                stats.other_5xx.fetch_add(1, Ordering::Relaxed);
                eprintln!("chaos: {method} {path} on runner {runner}: {status} {answer}");
            }
            Ok((status, answer)) => panic!("{method} {path}: {status} {answer}"),
            Err(_) => {
                stats.unreachable.fetch_add(1, Ordering::Relaxed);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        runner = (runner + 1) % RUNNERS;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Enqueues `cfg.runs` runs evenly over the chaos window, spread across the runners.
async fn enqueue_all(
    cluster: &Cluster,
    http: &reqwest::Client,
    key: &str,
    cfg: &Config,
    stats: &ClientStats,
) {
    let start = tokio::time::Instant::now();
    let pace = cfg.window.mul_f64(0.9) / cfg.runs as u32;
    futures::stream::iter(0..cfg.runs)
        .map(|i| async move {
            tokio::time::sleep_until(start + pace * i as u32).await;
            let (job, body) = run_spec(i, cfg.runs);
            let path = format!("/v1/jobs/{job}/runs");
            let request = (reqwest::Method::POST, path.as_str(), key, &body);
            let answer = send_anywhere(
                cluster,
                http,
                stats,
                i % RUNNERS,
                request,
                Duration::from_secs(20),
            )
            .await;
            match answer {
                Some(run) => {
                    let id = run["id"].as_str().and_then(|s| s.parse().ok());
                    let id: Uuid = id.unwrap_or_else(|| panic!("enqueue answer without id: {run}"));
                    stats.accepted.lock().unwrap().push(id);
                }
                None => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// What the chaos did, and when (database clock, epoch seconds).
#[derive(Default)]
struct ChaosLog {
    start_db: Option<f64>,
    kills: usize,
    leader_kills: usize,
    killed_ids: HashSet<Uuid>,
    /// The runner that was frozen (SIGSTOP) and whether it led at the time.
    frozen_ids: HashSet<Uuid>,
    freeze_leader: bool,
    db_down_at: Option<f64>,
    db_up_at: Option<f64>,
}

async fn db_now(pool: &PgPool) -> Option<f64> {
    sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
        .fetch_one(pool)
        .await
        .ok()
}

async fn leader(pool: &PgPool) -> Option<Uuid> {
    sqlx::query_scalar(
        "SELECT runner_id FROM leaders WHERE role = 'maintenance' AND expires_at > now()",
    )
    .fetch_optional(pool)
    .await
    .ok()
    .flatten()
}

/// Kills a random runner every `kill_every` (±50%) and restarts it, and crashes PostgreSQL once.
async fn chaos(cluster: &Cluster, pool: &PgPool, cfg: &Config) -> ChaosLog {
    let mut log = ChaosLog {
        start_db: db_now(pool).await,
        ..ChaosLog::default()
    };
    let start = Instant::now();
    let end = start + cfg.window;
    let crash_at = start + cfg.window.mul_f64(0.4);
    let freeze_at = start + cfg.window.mul_f64(0.7);
    let (mut crashed, mut frozen) = (false, false);
    loop {
        let jitter = rand::rng().random_range(0.5..1.5);
        let next = Instant::now() + cfg.kill_every.mul_f64(jitter);
        if crashed && !frozen && freeze_at <= next {
            // The leader hangs (SIGSTOP) for longer than its lease, then resumes: another
            // runner takes over and rescues its attempts; its late completions must be
            // rejected, and for a moment it still believes it leads.
            tokio::time::sleep_until(freeze_at.into()).await;
            // Right after a failover or the database's restart there may be no leader yet.
            let mut found = None;
            for _ in 0..50 {
                let leading = leader(pool).await;
                found = (0..RUNNERS)
                    .find(|&i| leading.is_some() && cluster.runner_id(i) == leading)
                    .map(|i| (i, leading));
                if found.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (victim, leading) =
                found.unwrap_or_else(|| (rand::rng().random_range(0..RUNNERS), None));
            if let Some(id) = cluster.runner_id(victim) {
                log.frozen_ids.insert(id);
            }
            log.freeze_leader = leading.is_some() && cluster.runner_id(victim) == leading;
            cluster.signal(victim, "STOP");
            tokio::time::sleep(cfg.freeze).await;
            cluster.signal(victim, "CONT");
            frozen = true;
            continue;
        }
        if !crashed && crash_at <= next {
            tokio::time::sleep_until(crash_at.into()).await;
            log.db_down_at = db_now(pool).await;
            cluster.pg_crash().await;
            tokio::time::sleep(cfg.db_down).await;
            cluster.pg_start().await;
            log.db_up_at = loop {
                if let Some(now) = db_now(pool).await {
                    break Some(now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            crashed = true;
            continue;
        }
        if next >= end {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        cluster.restart_exited();
        // The first victim is the maintenance leader (failover is part of the test); the
        // others are random.
        let leading = leader(pool).await;
        let victim = (0..RUNNERS)
            .find(|&i| log.kills == 0 && leading.is_some() && cluster.runner_id(i) == leading)
            .unwrap_or_else(|| rand::rng().random_range(0..RUNNERS));
        if let Some(id) = cluster.kill_runner(victim) {
            log.killed_ids.insert(id);
            if leading == Some(id) {
                log.leader_kills += 1;
            }
        }
        log.kills += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        cluster.spawn_runner(victim);
    }
    tokio::time::sleep_until(end.into()).await;
    cluster.restart_exited();
    log
}

async fn wait_healthy(cluster: &Cluster, http: &reqwest::Client, runner: usize) {
    let url = format!("{}/healthz", cluster.base(runner));
    let start = Instant::now();
    loop {
        if let Ok(resp) = http.get(&url).send().await
            && resp.status().is_success()
        {
            return;
        }
        cluster.restart_exited();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "runner {runner} not healthy within 60 s; log:\n{}",
            {
                let procs = cluster.procs();
                tail(&procs.incarnations[procs.procs[runner].current].log, 20)
            }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The longest stretch (seconds) during which short runs were pending and none ended, and when
/// it began (epoch seconds). Long runs are left out: they legitimately take seconds.
async fn longest_recovery(pool: &PgPool) -> (f64, f64) {
    let rows: Vec<(f64, Option<f64>)> = sqlx::query_as(
        "SELECT extract(epoch FROM r.created_at)::float8, extract(epoch FROM r.finished_at)::float8
         FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.name <> 'sleep'",
    )
    .fetch_all(pool)
    .await
    .expect("reading run times");
    // (time, 0 = created, 1 = ended): creations sort before endings at the same instant.
    let mut events: Vec<(f64, u8)> = Vec::with_capacity(rows.len() * 2);
    for (created, finished) in rows {
        events.push((created, 0));
        if let Some(f) = finished {
            events.push((f, 1));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut pending, mut since, mut longest) = (0i64, None::<f64>, (0.0f64, 0.0f64));
    for (t, kind) in events {
        if kind == 0 {
            if pending == 0 {
                since = Some(t);
            }
            pending += 1;
        } else {
            if let Some(s) = since
                && t - s > longest.0
            {
                longest = (t - s, s);
            }
            pending -= 1;
            since = (pending > 0).then_some(t);
        }
    }
    longest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_survive_killed_runners_and_a_database_crash() {
    let cfg = Config::from_env();
    let cluster = Cluster::start().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&cluster.url)
        .await
        .expect("connecting to the chaos database");

    // Three runners; the first migrates the database before the others start.
    cluster.spawn_runner(0);
    wait_healthy(&cluster, &http, 0).await;
    for i in 1..RUNNERS {
        cluster.spawn_runner(i);
    }
    for i in 1..RUNNERS {
        wait_healthy(&cluster, &http, i).await;
    }
    let base = cluster.base(0);
    let (status, body) = send(
        &http,
        reqwest::Method::POST,
        &format!("{base}/v1/tenants"),
        ADMIN_TOKEN,
        serde_json::to_vec(&json!({"name": "chaos"}))
            .unwrap()
            .into(),
    )
    .await
    .expect("creating the tenant");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["api_key"].as_str().expect("api_key").to_string();
    for job in SHORT_JOBS.iter().chain(&["sleep"]) {
        let resp = http
            .put(format!("{base}/v1/jobs/{job}"))
            .bearer_auth(&key)
            .body(example(job))
            .send()
            .await
            .expect("uploading");
        assert!(resp.status().is_success(), "uploading {job}: {resp:?}");
    }
    // A schedule firing every second, where this build has schedules.
    let schedule_path = format!("/v1/schedules/{SCHEDULE}");
    let schedule = json!({"job": "noop", "cron": "* * * * * *", "timezone": "UTC",
                          "backoff_base_ms": 100});
    let (status, body) = send(
        &http,
        reqwest::Method::PUT,
        &format!("{base}{schedule_path}"),
        &key,
        serde_json::to_vec(&schedule).unwrap().into(),
    )
    .await
    .expect("creating the schedule");
    let cron = status != StatusCode::NOT_FOUND;
    assert!(
        !cron || status.is_success(),
        "creating the schedule: {status} {body}"
    );
    if !cron {
        eprintln!("chaos: this build has no schedules API ({body}); cron is left out");
    }

    // The chaos window: enqueue all runs while runners are killed and the database crashes.
    let stats = ClientStats::default();
    let chaos_start = Instant::now();
    let (_, log) = tokio::join!(
        enqueue_all(&cluster, &http, &key, &cfg, &stats),
        chaos(&cluster, &pool, &cfg)
    );
    let enqueue_secs = chaos_start.elapsed().as_secs_f64();
    let chaos_end = Instant::now();
    if cron {
        let paused = json!({"job": "noop", "cron": "* * * * * *", "timezone": "UTC",
                            "backoff_base_ms": 100, "paused": true});
        let request = (
            reqwest::Method::PUT,
            schedule_path.as_str(),
            key.as_str(),
            &paused,
        );
        let done = send_anywhere(&cluster, &http, &stats, 0, request, SETTLE).await;
        assert!(done.is_some(), "pausing the schedule failed");
    }

    // Everything ends within SETTLE of the chaos ending (checked a little beyond, to report).
    let mut settled = None;
    while chaos_end.elapsed() < SETTLE + Duration::from_secs(15) {
        cluster.restart_exited();
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')",
        )
        .fetch_one(&pool)
        .await
        .ok();
        if open == Some(0) {
            settled = Some(chaos_end.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The figures.
    let accepted = stats.accepted.lock().unwrap().clone();
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runs WHERE id = ANY($1)
           AND state IN ('succeeded', 'failed', 'cancelled')",
    )
    .bind(&accepted)
    .fetch_one(&pool)
    .await
    .expect("counting accepted runs");
    let lost = accepted.len() as i64 - ended;
    let in_table = count(&pool, "SELECT count(*) FROM runs").await;
    let open = count(
        &pool,
        "SELECT count(*) FROM runs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')",
    )
    .await;
    let double_ok = count(
        &pool,
        "SELECT count(*) FROM (SELECT run_id FROM attempts WHERE outcome = 'ok'
                               GROUP BY run_id HAVING count(*) > 1) d",
    )
    .await;
    let reexecuted = count(
        &pool,
        "SELECT count(DISTINCT a.run_id) FROM attempts a
         WHERE a.outcome = 'runner_lost'
           AND EXISTS (SELECT 1 FROM attempts b WHERE b.run_id = a.run_id AND b.number > a.number)",
    )
    .await;
    let open_attempts = count(
        &pool,
        "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id
         WHERE a.finished_at IS NULL AND r.state IN ('succeeded', 'failed', 'cancelled')",
    )
    .await;
    let unexplained_failures: Vec<(Uuid, String, String, Option<String>)> = sqlx::query_as(
        "SELECT r.id, j.name, r.state::text, r.error FROM runs r JOIN jobs j ON j.id = r.job_id
         WHERE j.name IN ('noop', 'hello', 'flaky', 'report')
           AND r.state IN ('failed', 'cancelled')
           AND NOT EXISTS (SELECT 1 FROM attempts a
                           WHERE a.run_id = r.id AND a.outcome = 'runner_lost')",
    )
    .fetch_all(&pool)
    .await
    .expect("reading failed short runs");
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state::text, count(*) FROM runs GROUP BY 1 ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("reading states");
    let lost_attempts: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT runner_id, count(*) FROM attempts WHERE outcome = 'runner_lost' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("reading lost attempts");
    let lost_of = |ids: &HashSet<Uuid>| -> i64 {
        lost_attempts
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(_, n)| n)
            .sum()
    };
    let struck: HashSet<Uuid> = log.killed_ids.union(&log.frozen_ids).copied().collect();
    let lost_of_struck = lost_of(&struck);
    let rejected = cluster.log_lines_with("outcome rejected: this runner no longer holds");
    let stopped = cluster.log_lines_with("lease lost: stopping the attempt");
    let lost_total: i64 = lost_attempts.iter().map(|(_, n)| n).sum();
    let (cron_runs, cron_dups, cron_skipped) = if cron {
        let runs = count(
            &pool,
            "SELECT count(*) FROM runs WHERE schedule_id IS NOT NULL",
        )
        .await;
        let dups = count(
            &pool,
            "SELECT count(*) FROM (SELECT schedule_id, fire_at FROM runs
                                   WHERE schedule_id IS NOT NULL AND fire_at IS NOT NULL
                                   GROUP BY 1, 2 HAVING count(*) > 1) d",
        )
        .await;
        let skipped = count(
            &pool,
            "SELECT coalesce((extract(epoch FROM max(fire_at) - min(fire_at)))::int8 + 1
                             - count(DISTINCT fire_at), 0)
             FROM runs WHERE schedule_id IS NOT NULL AND fire_at IS NOT NULL",
        )
        .await;
        (runs, dups, skipped)
    } else {
        (0, 0, 0)
    };
    let resume: Option<f64> = match log.db_up_at {
        Some(up) => sqlx::query_scalar(
            "SELECT extract(epoch FROM min(started_at))::float8 - $1 FROM attempts
             WHERE extract(epoch FROM started_at) > $1",
        )
        .bind(up)
        .fetch_one(&pool)
        .await
        .expect("reading the first attempt after the restart"),
        None => None,
    };
    let (recovery, recovery_at) = longest_recovery(&pool).await;
    let unexpected_exits = std::mem::take(&mut cluster.procs().unexpected_exits);
    let outage = match (log.db_down_at, log.db_up_at) {
        (Some(down), Some(up)) => format!("{:.1} s", up - down),
        _ => "-".into(),
    };

    let rows: Vec<(&str, String)> = vec![
        ("chaos window", format!("{:.0} s", cfg.window.as_secs_f64())),
        ("enqueueing took", format!("{enqueue_secs:.1} s")),
        ("runs accepted (2xx)", accepted.len().to_string()),
        (
            "runs in the database (with cron runs)",
            in_table.to_string(),
        ),
        (
            "enqueues refused by every runner",
            stats.refused.load(Ordering::Relaxed).to_string(),
        ),
        (
            "API answers 503 (database down)",
            stats.unavailable.load(Ordering::Relaxed).to_string(),
        ),
        (
            "API other 5xx",
            stats.other_5xx.load(Ordering::Relaxed).to_string(),
        ),
        (
            "requests to a dead runner",
            stats.unreachable.load(Ordering::Relaxed).to_string(),
        ),
        (
            "runner kills (SIGKILL)",
            format!("{} (leader: {})", log.kills, log.leader_kills),
        ),
        (
            "database crashes (immediate stop)",
            format!("1 (down {outage})"),
        ),
        (
            "runner frozen (SIGSTOP) past its lease",
            format!(
                "{} ({:.1} s{})",
                log.frozen_ids.len(),
                cfg.freeze.as_secs_f64(),
                if log.freeze_leader {
                    ", the leader"
                } else {
                    ""
                }
            ),
        ),
        ("lost (accepted, not ended)", lost.to_string()),
        ("runs not ended (whole table)", open.to_string()),
        ("runs with two ok attempts", double_ok.to_string()),
        (
            "runner_lost attempts",
            format!(
                "{lost_total} ({lost_of_struck} killed/frozen, {} others)",
                lost_total - lost_of_struck
            ),
        ),
        (
            "duplicate executions (re-run after lost)",
            reexecuted.to_string(),
        ),
        (
            "late completions rejected / stopped",
            format!("{rejected} / {stopped}"),
        ),
        (
            "cron runs",
            if cron {
                cron_runs.to_string()
            } else {
                "n/a".into()
            },
        ),
        (
            "cron duplicates",
            if cron {
                cron_dups.to_string()
            } else {
                "n/a".into()
            },
        ),
        (
            "cron fire times skipped (misfire)",
            if cron {
                cron_skipped.to_string()
            } else {
                "n/a".into()
            },
        ),
        (
            "unexpected runner exits",
            unexpected_exits.len().to_string(),
        ),
        (
            "first attempt after database restart",
            resume.map_or("-".into(), |s| format!("{s:.2} s")),
        ),
        (
            "longest recovery time",
            format!(
                "{recovery:.2} s (at {:+.1} s)",
                log.start_db.map_or(0.0, |s| recovery_at - s)
            ),
        ),
        (
            "all ended after chaos",
            settled.map_or("not yet".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        ),
        (
            "states",
            states
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    println!();
    println!(
        "Chaos: {RUNNERS} runner processes ({SLOTS} slots, lease {LEASE_MS} ms, heartbeat \
         {HEARTBEAT_MS} ms), PostgreSQL with fsync off and synchronous commit on"
    );
    println!("{:-<78}", "");
    for (name, value) in &rows {
        println!("{name:<42} {value:>35}");
    }
    println!("{:-<78}", "");
    if let Some(body) = stats.unavailable_body.lock().unwrap().as_ref() {
        println!("a 503 answer: {body}");
    }

    assert!(
        unexpected_exits.is_empty(),
        "{}",
        unexpected_exits.join("\n\n")
    );
    assert!(!accepted.is_empty(), "no run was accepted");
    assert_eq!(lost, 0, "accepted runs not ended (lost)");
    assert_eq!(open, 0, "runs not ended");
    assert!(
        settled.is_some_and(|d| d <= SETTLE),
        "not every run ended within {SETTLE:?} of the chaos ending ({settled:?})"
    );
    assert_eq!(double_ok, 0, "runs with two ok attempts");
    assert!(
        resume.is_some_and(|s| s <= 5.0),
        "work did not resume within 5 s of the database's restart ({resume:?} s)"
    );
    assert_eq!(cron_dups, 0, "fire times that produced two runs");
    assert_eq!(open_attempts, 0, "attempts left open on ended runs");
    assert!(
        unexplained_failures.is_empty(),
        "short runs that failed without losing a runner: {unexplained_failures:#?}"
    );
    if cron {
        // Fire times missed while no leader could reach the database, or while the frozen
        // leader held its term, collapse into one (misfire policy fire_once); the rest fire.
        let down = match (log.db_down_at, log.db_up_at) {
            (Some(down), Some(up)) => up - down,
            _ => 0.0,
        };
        let expected = (cfg.window.as_secs_f64() - down - cfg.freeze.as_secs_f64()) / 2.0;
        assert!(
            cron_runs as f64 >= expected,
            "the schedule fired only {cron_runs} times in {:?} (database down {down:.1} s)",
            cfg.window
        );
    }
}
