//! Jobs in other languages: `hello-py` (componentize-py) and `hello-js` (componentize-js), built
//! by `make examples-langs` from `examples-langs/`, uploaded, run and checked like the Rust
//! `hello`: output, a log line with fields, progress, the captured stdout line. Also: the
//! files and sockets their runtimes import are linked deny-only, and an upload's compiled
//! artifact is kept so that another runner loads it instead of compiling (tens of seconds).
//! `fetch-js` calls `fetch()` (wasi:http) under the outbound grants: denied without a grant,
//! reaching a local server with one.
//!
//! Compiling one of these components takes 15-30 s of a core: the test uploads each one once,
//! without the compile probe, and does everything with it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::web::WebServer;
use crate::support::{ADMIN_TOKEN, Body, TestRunner, TestTenant};

/// Compiling an 18 MB Python component takes 10-40 s on a loaded 2-core machine, twice per
/// upload (probe and runner).
const SLOW: Duration = Duration::from_secs(300);

/// The whole suite runs in parallel on few cores: give these compiles room (the runner's
/// default `compile_timeout` is 120 s).
fn slow_compiles(s: &mut sandfire::config::Settings) {
    s.sandbox.compile_timeout = SLOW;
}

/// A runner for these tests: room for slow compiles and, to halve each upload's compile time,
/// no compile probe (tested with small components in `hostile_guests`).
async fn start(configure: impl FnOnce(&mut sandfire::config::Settings)) -> TestRunner {
    TestRunner::start_with(|s| {
        slow_compiles(s);
        s.sandbox.compile_probe = None;
        configure(s);
    })
    .await
}

/// Runs `job` with `input` to a terminal state; returns the run and how long it took from
/// enqueue to terminal.
async fn run_job(r: &TestRunner, t: &TestTenant, job: &str, input: Value) -> (Value, Duration) {
    run_in(r, t, job, input, "default").await
}

async fn run_in(
    r: &TestRunner,
    t: &TestTenant,
    job: &str,
    input: Value,
    queue: &str,
) -> (Value, Duration) {
    let started = Instant::now();
    let run = r
        .enqueue(t, job, json!({ "input": input, "queue": queue }))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = r
        .wait_for(t, &id, SLOW, |r| {
            matches!(
                r["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await;
    (run, started.elapsed())
}

/// The greeting, the log line with its fields, progress and the stdout line of one run.
async fn assert_hello(r: &TestRunner, t: &TestTenant, run: &Value, job: &str, language: &str) {
    assert_eq!(run["state"], "succeeded", "{job}: {run:#}");
    assert_eq!(run["output"], json!({"greeting": "Hello, Ada!"}), "{job}");
    assert_eq!(run["progress"], 100, "{job}: {run:#}");
    let lines = r.logs(t, run["id"].as_str().unwrap()).await;
    let greeting = lines
        .iter()
        .find(|l| l["message"] == "greeting Ada")
        .unwrap_or_else(|| panic!("{job}: no greeting line in the logs: {lines:#?}"));
    assert_eq!(greeting["level"], "info", "{job}");
    let fields = greeting["fields"].to_string();
    for (key, value) in [("name", "Ada"), ("attempt", "1"), ("language", language)] {
        assert!(
            field(&greeting["fields"], key).as_deref() == Some(value),
            "{job}: field {key}={value} missing from {fields}"
        );
    }
    let said = format!("{job} says hello to Ada");
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str() == Some(said.as_str())),
        "{job}: the stdout line {said:?} is not in the logs: {lines:#?}"
    );
}

/// A log line field's value, whether fields are an object or a list of `{key, value}`.
fn field(fields: &Value, key: &str) -> Option<String> {
    match fields {
        Value::Object(map) => map.get(key).and_then(|v| v.as_str()).map(str::to_owned),
        Value::Array(list) => list.iter().find_map(|f| {
            (f["key"] == key)
                .then(|| f["value"].as_str().map(str::to_owned))
                .flatten()
        }),
        _ => None,
    }
}

#[tokio::test]
async fn hello_py_and_hello_js_end_to_end() {
    let r = start(|_| {}).await;
    let t = r.tenant("acme").await;
    for (job, language) in [("hello-py", "python"), ("hello-js", "javascript")] {
        r.upload(&t, job, job).await;
        let (run, took) = run_job(&r, &t, job, json!({"name": "Ada"})).await;
        eprintln!("{job}: first run (compiled at upload, cached) in {took:?}");
        assert_hello(&r, &t, &run, job, language).await;
        let (_, took) = run_job(&r, &t, job, json!({"name": "Ada"})).await;
        eprintln!("{job}: next run in {took:?}");
    }
    assert_eq!(
        r.count("SELECT count(*) FROM compiled_components").await,
        2,
        "each upload keeps its compiled artifact"
    );

    // Bad input fails the run (the job's `fail`), no retry.
    let (run, _) = run_job(&r, &t, "hello-js", json!({"nom": "Ada"})).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or("")
            .contains("input must be"),
        "{run:#}"
    );

    // CPython's own `open`: the runtime imports wasi:filesystem, which has no preopened
    // directory, so every path is "not found". (componentize-py's CPython has no `socket`
    // module at all: the import fails before wasi:sockets, which is linked with every use
    // denied, could be reached.)
    let (run, _) = run_job(&r, &t, "hello-py", json!({"name": "Ada", "probe": true})).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let probe = &run["output"]["probe"];
    let file = probe["file"].as_str().unwrap_or_default();
    assert!(
        file.starts_with("error: FileNotFoundError"),
        "reading /etc/hostname was not refused: {probe}"
    );
    let socket = probe["socket"].as_str().unwrap_or_default();
    assert!(socket.starts_with("error:"), "a socket connected: {probe}");
    eprintln!("hello-py probe: {probe}");

    // Another runner (serving a queue of its own) loads the artifact kept at upload instead of
    // compiling the component again.
    let b = r
        .second_runner(|s| {
            slow_compiles(s);
            s.worker.queues = vec!["elsewhere".into()];
        })
        .await;
    let (run, took) = run_in(&b, &t, "hello-py", json!({"name": "Ada"}), "elsewhere").await;
    assert_hello(&b, &t, &run, "hello-py", "python").await;
    eprintln!("hello-py: first run on another runner, from the kept artifact, in {took:?}");
    assert_eq!(b.sandbox().compiles(), 0, "runner B compiled the component");
    assert_eq!(b.sandbox().artifacts_loaded(), 1);
    b.shutdown().await;
    r.shutdown().await;
}

#[tokio::test]
async fn fetch_js_is_denied_without_a_grant_and_reaches_a_granted_server() {
    let web = WebServer::start().await;
    let r = start(|s| s.sandbox.outbound.allow_loopback = true).await;
    let t = r.tenant("acme").await;
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/tenants/acme/policy",
            Some(ADMIN_TOKEN),
            Some(Body::Json(
                json!({"allowed_outbound_hosts": ["http://127.0.0.1:*"]}),
            )),
        )
        .await;
    assert_eq!(status, 200, "policy: {body}");
    r.upload(&t, "fetch-js", "fetch-js").await;

    // No grant: fetch() rejects, the job fails the run with the reason; the runner is fine.
    let (run, _) = run_job(&r, &t, "fetch-js", json!({"url": web.url("/ok")})).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("fetch"), "{run:#}");
    assert_eq!(run["attempts"][0]["outbound"]["denied"], 1, "{run:#}");
    assert!(web.seen().is_empty(), "a denied request reached the server");
    eprintln!("fetch-js without a grant: {error}");

    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/jobs/fetch-js/capabilities",
            Some(&t.key),
            Some(Body::Json(
                json!({"allowed_outbound_hosts": [format!("http://{}", web.addr)]}),
            )),
        )
        .await;
    assert_eq!(status, 200, "capabilities: {body}");
    let (run, _) = run_job(&r, &t, "fetch-js", json!({"url": web.url("/ok")})).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"], json!({"status": 200, "body": "ok"}));
    let seen = web.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/ok")
    );
    r.shutdown().await;
}
