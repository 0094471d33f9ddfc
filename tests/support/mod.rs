//! Test harness: a fresh database and a runner per test, HTTP helpers, example components, and
//! condition waits with short poll intervals (never fixed sleeps).

pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sandfire::config::Settings;
use sandfire::runner::{Runner, connect};
use sandfire::store::{PgStore, Store};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";

/// The config encryption key of test runners (key id 1): fixed, so a second runner on the same
/// database reads what the first wrote.
pub const TEST_SECRETS_KEY: [u8; 32] = *b"sandfire-test-secrets-key-32byte";

/// The keyring test runners start with: [`TEST_SECRETS_KEY`] as key 1.
pub fn test_keyring() -> Arc<sandfire::capabilities::Keyring> {
    Arc::new(
        sandfire::capabilities::Keyring::new(vec![(1, TEST_SECRETS_KEY)], 1)
            .expect("the test key is valid"),
    )
}

/// Path of a built example component.
pub fn example_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/wasm")
        .join(format!("{name}.wasm"))
}

/// Bytes of a built example component; panics with what to run when it is missing.
pub fn example(name: &str) -> Vec<u8> {
    let path = example_path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "example component {} is missing ({e}): run `make examples` (or `make test`)",
            path.display()
        )
    })
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run the tests with `make test`, which starts a throwaway \
         PostgreSQL, or point DATABASE_URL at a server where databases may be created",
    )
}

/// Creates an empty database of its own for one test and returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = database_url();
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .expect("connecting to DATABASE_URL");
    let name = format!("sandfire_test_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("creating a test database");
    let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// Settings for tests: short intervals, small limits.
pub fn test_settings() -> Settings {
    let mut s = Settings {
        admin_token: Some(ADMIN_TOKEN.to_string()),
        keyring: Some(test_keyring()),
        ..Settings::default()
    };
    s.worker.slots = 8;
    s.worker.poll_interval = Duration::from_millis(200);
    s.worker.heartbeat = Duration::from_millis(200);
    s.worker.journal_flush = Duration::from_millis(100);
    s.worker.stats_flush = Duration::from_millis(100);
    s.limits.default.backoff_base_ms = 10;
    s.limits.default.timeout_ms = 10_000;
    // Uploads are compiled in a probe process first, as `sandfire serve` does.
    s.sandbox.compile_probe = Some(sandfire::sandbox::probe::ProbeConfig {
        program: PathBuf::from(env!("CARGO_BIN_EXE_sandfire")),
        memory_bytes: 2048 * 1024 * 1024,
    });
    s
}

/// A runner on its own database, reachable over HTTP on loopback.
pub struct TestRunner {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<PgStore>,
    runner: Option<Runner>,
}

/// A tenant created through the admin API, with its key.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub key: String,
}

impl TestRunner {
    pub async fn start() -> TestRunner {
        TestRunner::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestRunner {
        let url = fresh_database().await;
        let store = Arc::new(
            connect(&url, 10)
                .await
                .expect("connecting to test database"),
        );
        let mut settings = test_settings();
        configure(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runner = Runner::start(
            settings,
            store.clone() as Arc<dyn Store>,
            listener,
            Duration::from_millis(100),
        )
        .await
        .expect("starting a runner");
        TestRunner {
            base: format!("http://{}", runner.addr),
            http: reqwest::Client::new(),
            store,
            runner: Some(runner),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(runner) = self.runner.take() {
            runner.shutdown().await;
        }
    }

    /// Sends a request; returns status and JSON body (`Null` if the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Body>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        match body {
            Some(Body::Json(v)) => req = req.json(&v),
            Some(Body::Raw(bytes, content_type)) => {
                req = req.body(bytes);
                if let Some(ct) = content_type {
                    req = req.header("Content-Type", ct);
                }
            }
            None => {}
        }
        let resp = req.send().await.expect("request reaches the runner");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn tenant(&self, name: &str) -> TestTenant {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN_TOKEN),
                Some(Body::Json(json!({ "name": name }))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating tenant: {body}");
        TestTenant {
            key: body["api_key"].as_str().expect("api_key").to_string(),
        }
    }

    /// Uploads an example component under `job` (with optional query string); asserts success.
    pub async fn upload(&self, tenant: &TestTenant, job: &str, example_name: &str) -> Value {
        self.upload_with(tenant, job, example_name, "").await
    }

    pub async fn upload_with(
        &self,
        tenant: &TestTenant,
        job: &str,
        example_name: &str,
        query: &str,
    ) -> Value {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/v1/jobs/{job}{query}"),
                Some(&tenant.key),
                Some(Body::Raw(example(example_name), None)),
            )
            .await;
        assert!(
            status.is_success(),
            "uploading {example_name}: {status} {body}"
        );
        body
    }

    /// Enqueues a run; asserts 201 and returns the run.
    pub async fn enqueue(&self, tenant: &TestTenant, job: &str, body: Value) -> Value {
        let (status, run) = self
            .call(
                Method::POST,
                &format!("/v1/jobs/{job}/runs"),
                Some(&tenant.key),
                Some(Body::Json(body)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "enqueueing {job}: {run}");
        run
    }

    pub async fn run(&self, tenant: &TestTenant, id: &str) -> Value {
        let (status, run) = self
            .call(
                Method::GET,
                &format!("/v1/runs/{id}"),
                Some(&tenant.key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "reading run {id}: {run}");
        run
    }

    pub async fn logs(&self, tenant: &TestTenant, id: &str) -> Vec<Value> {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/v1/runs/{id}/logs"),
                Some(&tenant.key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "reading logs of {id}: {body}");
        body["lines"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the run until `done(run)` holds; panics with the last state after `within`.
    pub async fn wait_for(
        &self,
        tenant: &TestTenant,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let run = self.run(tenant, id).await;
            if done(&run) {
                return run;
            }
            assert!(
                start.elapsed() < within,
                "run {id} did not reach the expected condition within {within:?}: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the run is succeeded, failed or cancelled.
    pub async fn wait_terminal(&self, tenant: &TestTenant, id: &str) -> Value {
        self.wait_for(tenant, id, Duration::from_secs(60), |r| {
            matches!(
                r["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await
    }
}

pub enum Body {
    Json(Value),
    /// Bytes with an optional Content-Type.
    Raw(Vec<u8>, Option<&'static str>),
}

/// The outcomes of a run's attempts, in order.
pub fn outcomes(run: &Value) -> Vec<String> {
    run["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or("none").to_string())
        .collect()
}

impl TestRunner {
    /// Another runner on the same database as this one (e.g. to test limits across runners).
    pub async fn second_runner(&self, configure: impl FnOnce(&mut Settings)) -> TestRunner {
        let pool = self.store.pool().clone();
        let store = Arc::new(PgStore::new(pool));
        let mut settings = test_settings();
        configure(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runner = Runner::start(
            settings,
            store.clone() as Arc<dyn Store>,
            listener,
            Duration::from_millis(100),
        )
        .await
        .expect("starting a second runner");
        TestRunner {
            base: format!("http://{}", runner.addr),
            http: reqwest::Client::new(),
            store,
            runner: Some(runner),
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`; panics naming `what` after `within`.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestRunner {
    /// Counts rows with a static SQL query returning one bigint (e.g. `SELECT count(*) ...`).
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `count` for a query built at run time.
    pub async fn count_sql(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl TestRunner {
    /// Kills the runner the way a crash would (no hand-back, no lease release).
    pub fn crash(mut self) {
        if let Some(runner) = self.runner.take() {
            runner.abort();
        }
    }

    /// The id of the runner behind this handle.
    pub fn runner_id(&self) -> uuid::Uuid {
        self.runner.as_ref().expect("running").id
    }
}

impl TestRunner {
    /// The runner's sandbox (its compiled-component cache and compile counter).
    pub fn sandbox(&self) -> &sandfire::sandbox::Sandbox {
        &self.runner.as_ref().expect("running").sandbox
    }
}

impl TestRunner {
    /// Where the runner serves `/metrics` without auth (`Settings::metrics.listen`), if anywhere.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.runner.as_ref().expect("running").metrics_addr
    }
}
