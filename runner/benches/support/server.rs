//! A runner as its own process (the release binary, `sandfire serve`) and a small client of its
//! public HTTP API: what a user's setup looks like, as opposed to a runner started in-process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// The admin token every bench runner is started with (40+ bytes, as in production).
pub const ADMIN_TOKEN: &str = "sandfire-bench-admin-token-0123456789abcdef0123456789";

/// Where cargo puts build output: `CARGO_TARGET_DIR` if set (relative to the workspace root,
/// where `make bench` runs), else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("target"),
    }
}

/// The release binary `make bench` builds first.
pub fn sandfire_binary() -> anyhow::Result<PathBuf> {
    let path = target_dir().join("release").join("sandfire");
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run `make bench` (it builds the release binary first) or \
         `cargo build --release -p sandfire`",
        path.display()
    );
    Ok(path)
}

/// The bytes of an example component built by `make examples`.
pub fn example_component(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = target_dir()
        .join("wasm32-wasip2")
        .join("wasm")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).with_context(|| format!("{} missing: run `make examples`", path.display()))
}

/// Directory for the runners' logs.
pub fn log_dir() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("bench-logs");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.canonicalize().unwrap_or(dir))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How to start a runner.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub slots: usize,
    /// `false`: `--no-worker` (API only).
    pub worker: bool,
    /// `--queues`.
    pub queues: Vec<String>,
    /// More flags, e.g. `--grace-ms 2000`.
    pub extra: Vec<String>,
    /// Log file name under `target/bench-logs/`.
    pub log_name: String,
}

impl ServerConfig {
    pub fn api_only(log_name: &str) -> ServerConfig {
        ServerConfig {
            slots: 8,
            worker: false,
            queues: vec!["default".into()],
            extra: Vec::new(),
            log_name: log_name.into(),
        }
    }

    pub fn worker(log_name: &str, slots: usize) -> ServerConfig {
        ServerConfig {
            slots,
            worker: true,
            ..ServerConfig::api_only(log_name)
        }
    }
}

/// A `sandfire serve` process. Dropping it kills the process (on an early return); `stop`
/// stops it cleanly.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub log: PathBuf,
    /// When the process was spawned.
    pub spawned: Instant,
}

impl Server {
    /// Spawns the release binary on a free port and waits until `GET /healthz` answers.
    pub async fn start(database_url: &str, config: &ServerConfig) -> anyhow::Result<Server> {
        let binary = sandfire_binary()?;
        let port = free_port()?;
        let log = log_dir()?.join(format!("{}.log", config.log_name));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--slots", &config.slots.to_string()])
            .args(["--queues", &config.queues.join(",")])
            .args(&config.extra)
            .env("DATABASE_URL", database_url)
            .env("SANDFIRE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .env_remove("SANDFIRE_SLOTS")
            .env_remove("SANDFIRE_QUEUES")
            .env_remove("SANDFIRE_LISTEN")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        if !config.worker {
            command.arg("--no-worker");
        }
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
            spawned,
        };
        let http = reqwest::Client::new();
        loop {
            let healthy = http
                .get(format!("{}/healthz", server.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(server);
            }
            server.check_alive()?;
            anyhow::ensure!(
                spawned.elapsed() < Duration::from_secs(120),
                "the runner did not answer /healthz within 120 s; see {}",
                server.log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!("the runner exited ({status}); see {}", self.log.display());
        }
        Ok(())
    }

    /// The message of the last ERROR line in the runner's log (escape codes removed), e.g.
    /// the database error behind an HTTP 500.
    pub fn last_error(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let line = text
            .lines()
            .rev()
            .map(strip_escapes)
            .find(|l| l.contains("ERROR") && l.contains("error="))?;
        let message = line.split_once("error=").map_or(line.as_str(), |(_, m)| m);
        Some(message.trim().to_string())
    }

    /// CPU time (user + system) the process has used so far, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        super::procfs::process_cpu_seconds(self.pid()?)
    }

    /// SIGTERM, then waits for the process to exit (it finishes or hands back running
    /// attempts within its grace period); SIGKILL after `patience`.
    pub async fn stop_within(mut self, patience: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            let _ = child.kill();
        }
        let asked = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "the runner exited with {status} after SIGTERM; see {}",
                    self.log.display()
                );
                return Ok(());
            }
            if asked.elapsed() > patience {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the runner did not stop within {patience:?} of SIGTERM (killed); see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_within(Duration::from_secs(60)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A log line without its terminal colour codes (ESC [ ... letter).
fn strip_escapes(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// An HTTP error answer of the runner.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub body: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(300).collect();
        write!(f, "HTTP {}: {body}", self.status)
    }
}

impl std::error::Error for ApiFailure {}

/// The answer of the bulk route.
#[derive(Debug)]
pub enum Bulk {
    Created(Vec<String>),
    /// The route does not exist on this runner (HTTP 404 or 405).
    Unavailable(u16),
}

/// A tenant's client of the public API. Each clone made with `new_connection` has its own
/// connection pool, so concurrent clients each keep one keep-alive connection.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    key: String,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(600))
        .build()
        .expect("a plain HTTP client")
}

async fn answer(resp: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    if !(200..300).contains(&status) {
        return Err(ApiFailure {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
        .into());
    }
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).context("the runner answered invalid JSON")?
    };
    Ok((status, value))
}

/// The HTTP status of a failed API call, if it was one.
pub fn failure_status(e: &anyhow::Error) -> Option<u16> {
    e.downcast_ref::<ApiFailure>().map(|f| f.status)
}

impl Api {
    /// Creates a tenant with the admin token and returns a client holding its API key.
    pub async fn create_tenant(base: &str, name: &str) -> anyhow::Result<Api> {
        let http = http_client();
        let resp = http
            .post(format!("{base}/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        let (_, body) = answer(resp).await.context("POST /v1/tenants")?;
        let key = body["api_key"]
            .as_str()
            .context("POST /v1/tenants answered without api_key")?
            .to_string();
        Ok(Api {
            http,
            base: base.to_string(),
            key,
        })
    }

    /// The same tenant against another runner (same database).
    pub fn at(&self, base: &str) -> Api {
        Api {
            http: http_client(),
            base: base.to_string(),
            key: self.key.clone(),
        }
    }

    /// A client of its own (one keep-alive connection).
    pub fn new_connection(&self) -> Api {
        self.at(&self.base.clone())
    }

    /// The tenant's API key (what a person signs in to the dashboard with).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `PUT /v1/schedules/{name}`; returns the schedule as stored.
    pub async fn put_schedule(&self, name: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .put(format!("{}/v1/schedules/{name}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        Ok(answer(resp)
            .await
            .with_context(|| format!("PUT /v1/schedules/{name}"))?
            .1)
    }

    /// `POST /v1/schedules/{name}/trigger`: one run now.
    pub async fn trigger_schedule(&self, name: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/v1/schedules/{name}/trigger", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        Ok(answer(resp)
            .await
            .with_context(|| format!("POST /v1/schedules/{name}/trigger"))?
            .1)
    }

    /// `PUT /v1/jobs/{name}` with the component's bytes.
    pub async fn upload_job(&self, name: &str, component: &[u8]) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/v1/jobs/{name}", self.base))
            .bearer_auth(&self.key)
            .body(component.to_vec())
            .send()
            .await?;
        answer(resp)
            .await
            .with_context(|| format!("PUT /v1/jobs/{name}"))?;
        Ok(())
    }

    /// `POST /v1/jobs/{job}/runs`: one run; returns it as the API shows it.
    pub async fn enqueue(&self, job: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/v1/jobs/{job}/runs", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        Ok(answer(resp).await?.1)
    }

    /// `POST /v1/runs` with a JSON array of `{"job", "input", ...}`: many runs in one request.
    pub async fn bulk(&self, runs: &[Value]) -> anyhow::Result<Bulk> {
        let resp = self
            .http
            .post(format!("{}/v1/runs", self.base))
            .bearer_auth(&self.key)
            .json(runs)
            .send()
            .await?;
        let status = resp.status().as_u16();
        if status == 404 || status == 405 {
            return Ok(Bulk::Unavailable(status));
        }
        let (_, body) = answer(resp).await.context("POST /v1/runs")?;
        let ids = body["ids"]
            .as_array()
            .context("POST /v1/runs answered without ids")?
            .iter()
            .map(|id| id.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>();
        anyhow::ensure!(
            ids.len() == runs.len(),
            "POST /v1/runs created {} runs of {}",
            ids.len(),
            runs.len()
        );
        Ok(Bulk::Created(ids))
    }

    /// `POST /v1/batches {"runs": [...]}`; returns the batch as created.
    pub async fn batch(&self, runs: &[Value]) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/v1/batches", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "runs": runs }))
            .send()
            .await?;
        Ok(answer(resp).await?.1)
    }

    /// `GET /v1/runs/{id}`: the run with its attempts and history.
    pub async fn run(&self, id: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/runs/{id}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        Ok(answer(resp).await?.1)
    }

    /// `POST /v1/runs/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/v1/runs/{id}/cancel", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        Ok(answer(resp).await?.1)
    }

    /// `POST /v1/queues/{name}/pause`.
    pub async fn pause_queue(&self, name: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/v1/queues/{name}/pause", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        answer(resp)
            .await
            .with_context(|| format!("POST /v1/queues/{name}/pause"))?;
        Ok(())
    }
}

/// A browser of the dashboard (`/ui`), signed in with a tenant's API key or the admin token: it
/// sends its session cookie and never follows a redirect (a redirect to the login page is an
/// answer like any other).
pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    cookie: String,
}

/// One page as a browser got it: status, HTML and the client's wall time (request sent → last
/// byte of the body read).
pub struct PageView {
    pub status: u16,
    pub body: String,
    pub ms: f64,
}

impl Browser {
    /// `POST /ui/login` with `key=…` from the dashboard's own origin (it refuses cross-origin
    /// POSTs); keeps the `sf_session` cookie it sets.
    pub async fn sign_in(base: &str, key: &str) -> anyhow::Result<Browser> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(600))
            .build()?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("key", key)
            .finish();
        let resp = http
            .post(format!("{base}/ui/login"))
            .header(reqwest::header::ORIGIN, base)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let session = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find_map(|pair| pair.trim().strip_prefix("sf_session="))
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .with_context(|| format!("POST /ui/login answered HTTP {status} without a session"))?;
        Ok(Browser {
            http,
            base: base.to_string(),
            cookie: format!("sf_session={session}"),
        })
    }

    /// `GET {path}` with the session.
    pub async fn get(&self, path: &str) -> anyhow::Result<PageView> {
        let start = Instant::now();
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.with_context(|| format!("GET {path}"))?;
        Ok(PageView {
            status,
            body,
            ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// `n` copies of one run request, as the bulk route and batches take them.
pub fn run_entries(entry: &Value, n: usize) -> Vec<Value> {
    vec![entry.clone(); n]
}

/// Enqueues `n` runs of `job` with `body` from `clients` concurrent clients (one keep-alive
/// connection each), one request per run. Returns the ids and the seconds it took.
pub async fn enqueue_concurrently(
    api: &Api,
    job: &str,
    body: &Value,
    n: usize,
    clients: usize,
) -> anyhow::Result<(Vec<String>, f64)> {
    let clients = clients.max(1);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = n / clients + usize::from(c < n % clients);
        let api = api.new_connection();
        let job = job.to_string();
        let body = body.clone();
        tasks.spawn(async move {
            let mut ids = Vec::with_capacity(share);
            for _ in 0..share {
                let run = api.enqueue(&job, &body).await?;
                ids.push(run["id"].as_str().unwrap_or_default().to_string());
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(result) = tasks.join_next().await {
        ids.extend(result??);
    }
    Ok((ids, start.elapsed().as_secs_f64()))
}

/// Enqueues `n` copies of `entry` through the bulk route in chunks of `chunk`: the seconds it
/// took, or the HTTP status (404/405) when the route is unavailable, after printing so.
pub async fn enqueue_bulk(
    api: &Api,
    entry: &Value,
    n: usize,
    chunk: usize,
) -> anyhow::Result<Result<f64, u16>> {
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk);
        match api.bulk(&run_entries(entry, k)).await? {
            Bulk::Created(_) => {}
            Bulk::Unavailable(status) => {
                println!("bulk route unavailable (HTTP {status})");
                return Ok(Err(status));
            }
        }
        left -= k;
    }
    Ok(Ok(start.elapsed().as_secs_f64()))
}

/// The largest batch to use for `wanted` runs: `wanted`, or the most `POST /v1/batches`
/// accepts when that is less, read from the error answer to an oversized batch. The probes
/// name a job that does not exist, so even an accepted size writes nothing (the whole batch is
/// validated first). Halves the probe when the body itself is too large (HTTP 413).
pub async fn batch_size_for(api: &Api, wanted: usize) -> anyhow::Result<usize> {
    let entry = json!({"job": "no-such-job-batch-size-probe", "input": {}});
    let mut probe = wanted + 1;
    loop {
        let err = match api.batch(&run_entries(&entry, probe)).await {
            Ok(_) => bail!("a batch of a job that does not exist was accepted"),
            Err(e) => e,
        };
        let Some(failure) = err.downcast_ref::<ApiFailure>() else {
            return Err(err);
        };
        if failure.status == 413 && probe > 2 {
            probe = probe / 2 + 1;
            continue;
        }
        if failure.body.contains("more than a batch may hold") {
            // "... more than a batch may hold (10000); split it"
            let limit = failure
                .body
                .split(['(', ')'])
                .find_map(|part| part.trim().parse::<usize>().ok())
                .with_context(|| format!("no limit in {failure}"))?;
            return Ok(limit.min(wanted));
        }
        if failure.status == 422 {
            // The size was accepted; only the job was refused.
            return Ok((probe - 1).min(wanted).max(1));
        }
        return Err(err);
    }
}

/// Enqueues `n` copies of `entry` as batches of at most `per_batch`; returns the seconds.
pub async fn enqueue_batches(
    api: &Api,
    entry: &Value,
    n: usize,
    per_batch: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(per_batch);
        api.batch(&run_entries(entry, k))
            .await
            .context("POST /v1/batches")?;
        left -= k;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Milliseconds from `from` to `to`, two RFC 3339 times as the API writes them.
pub fn ms_between(from: &Value, to: &Value) -> Option<f64> {
    let parse = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok();
    let d = parse(to)? - parse(from)?;
    Some(d.num_microseconds()? as f64 / 1000.0)
}

/// Pickup latencies of single runs, in ms, each list sorted.
#[derive(Debug, Clone, Default)]
pub struct Pickups {
    /// The run's `created_at` → its first attempt's `started_at`. Both are transaction start
    /// times (`now()`), so the time the claim statement itself takes is not in here.
    pub started: Vec<f64>,
    /// The run's `created_at` → the `running` transition in its history, stamped with
    /// `clock_timestamp()` while the claim statement updates the row: includes the claim's own
    /// search for claimable runs.
    pub claimed: Vec<f64>,
    /// The moment the enqueue's answer arrived (its run committed, durably) on this machine's
    /// clock → the first attempt's `started_at` (the database's clock; same machine, same
    /// clock). What a user waits for once the API said "created": `LISTEN/NOTIFY`, the claim
    /// and the sandbox start, without the enqueue's own durable commit, which the two figures
    /// above include.
    pub after_commit: Vec<f64>,
}

impl Pickups {
    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
    }
}

/// Pickup latency of single runs into an idle runner: `n` runs of `job` enqueued one at a
/// time, each waited for until it finished (database clock; see `Pickups`).
pub async fn pickup_latencies(
    api: &Api,
    job: &str,
    body: &Value,
    n: usize,
) -> anyhow::Result<Pickups> {
    let mut pickups = Pickups::default();
    for _ in 0..n {
        let run = api.enqueue(job, body).await?;
        let answered = chrono::Utc::now();
        let id = run["id"]
            .as_str()
            .context("enqueue answered no id")?
            .to_string();
        let asked = Instant::now();
        // Wait until it finished, so the next run meets an idle runner.
        let run = loop {
            let run = api.run(&id).await?;
            if run["finished_at"].is_string() {
                break run;
            }
            anyhow::ensure!(
                asked.elapsed() < Duration::from_secs(60),
                "run {id} did not finish within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let created = &run["created_at"];
        pickups.after_commit.push(
            ms_between(
                &serde_json::json!(answered.to_rfc3339()),
                &run["attempts"][0]["started_at"],
            )
            .with_context(|| format!("run {id}: no attempt start"))?,
        );
        pickups.started.push(
            ms_between(created, &run["attempts"][0]["started_at"])
                .with_context(|| format!("run {id}: no attempt start"))?,
        );
        let running = run["history"]
            .as_array()
            .and_then(|h| h.iter().find(|e| e["to"] == "running"))
            .with_context(|| format!("run {id}: no running transition in its history"))?;
        pickups.claimed.push(
            ms_between(created, &running["at"])
                .with_context(|| format!("run {id}: unreadable history time"))?,
        );
    }
    pickups.started.sort_by(f64::total_cmp);
    pickups.claimed.sort_by(f64::total_cmp);
    pickups.after_commit.sort_by(f64::total_cmp);
    Ok(pickups)
}
