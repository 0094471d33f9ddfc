//! Prometheus metrics (`/metrics`): after runs of known outcomes, the counters and histogram
//! counts equal what happened; the route takes the admin token; tenant labels only behind the
//! flag; the separate listener answers without auth.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, TestRunner, TestTenant, wait_until};

/// The samples of an exposition: series (name and labels, as written) → value.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample is `series value`");
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")),
            };
            (series.to_owned(), value)
        })
        .collect()
}

async fn scrape_text(r: &TestRunner, token: Option<&str>) -> (StatusCode, String) {
    let mut req = r.http.get(format!("{}/metrics", r.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("the runner answers");
    let status = resp.status();
    if status == StatusCode::OK {
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    }
    (status, resp.text().await.unwrap())
}

async fn scrape(r: &TestRunner) -> HashMap<String, f64> {
    let (status, text) = scrape_text(r, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    parse(&text)
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

async fn run_to_end(r: &TestRunner, t: &TestTenant, job: &str, body: serde_json::Value) -> String {
    let run = r.enqueue(t, job, body).await;
    let run = r.wait_terminal(t, run["id"].as_str().unwrap()).await;
    run["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn counters_and_histograms_equal_what_happened() {
    let r = TestRunner::start_with(|s| {
        s.worker.queues = vec!["default".into(), "cpu".into()];
    })
    .await;
    let t = r.tenant("acme").await;
    for job in ["hello", "panic", "spin"] {
        r.upload(&t, job, job).await;
    }
    // Waiting runs for the queue figures: one due in an hour, one in a queue nobody serves.
    r.enqueue(&t, "hello", json!({"delay_ms": 3_600_000})).await;
    r.enqueue(&t, "hello", json!({"queue": "idle"})).await;

    assert_eq!(
        run_to_end(&r, &t, "hello", json!({"input": {"name": "Ada"}})).await,
        "succeeded"
    );
    assert_eq!(
        run_to_end(&r, &t, "hello", json!({"input": {"name": "Ada"}})).await,
        "succeeded"
    );
    let panic = json!({"max_attempts": 1});
    assert_eq!(run_to_end(&r, &t, "panic", panic).await, "failed");
    let spin =
        json!({"queue": "cpu", "fuel": 20_000_000u64, "max_attempts": 2, "backoff_base_ms": 1});
    assert_eq!(run_to_end(&r, &t, "spin", spin).await, "failed");

    // The completer counts right after its write commits: wait for the last one.
    let m = wait_until(
        "the finished runs counted",
        Duration::from_secs(10),
        || async {
            let m = scrape(&r).await;
            let finished = r#"sandfire_runs_finished_total{queue="cpu",outcome="out_of_fuel"}"#;
            (get(&m, finished) == 1.0).then_some(m)
        },
    )
    .await;

    let enqueued = |q: &str| {
        get(
            &m,
            &format!(r#"sandfire_runs_enqueued_total{{queue="{q}"}}"#),
        )
    };
    assert_eq!(enqueued("default"), 4.0, "{m:#?}");
    assert_eq!(enqueued("idle"), 1.0);
    assert_eq!(enqueued("cpu"), 1.0);
    let finished = |q: &str, o: &str| {
        get(
            &m,
            &format!(r#"sandfire_runs_finished_total{{queue="{q}",outcome="{o}"}}"#),
        )
    };
    assert_eq!(finished("default", "ok"), 2.0);
    assert_eq!(finished("default", "panic"), 1.0);
    assert_eq!(finished("cpu", "out_of_fuel"), 1.0);
    let attempts = |q: &str, o: &str| {
        get(
            &m,
            &format!(r#"sandfire_attempts_total{{queue="{q}",outcome="{o}"}}"#),
        )
    };
    assert_eq!(attempts("default", "ok"), 2.0);
    assert_eq!(attempts("default", "panic"), 1.0);
    assert_eq!(
        attempts("cpu", "out_of_fuel"),
        2.0,
        "two attempts ran out of fuel"
    );
    for (outcome, n) in [("ok", 2.0), ("panic", 1.0), ("out_of_fuel", 2.0)] {
        for h in [
            "sandfire_attempt_duration_seconds",
            "sandfire_attempt_fuel_units",
            "sandfire_attempt_peak_memory_bytes",
        ] {
            let count = get(&m, &format!(r#"{h}_count{{outcome="{outcome}"}}"#));
            assert_eq!(count, n, "{h} {outcome}");
            let inf = get(
                &m,
                &format!(r#"{h}_bucket{{outcome="{outcome}",le="+Inf"}}"#),
            );
            assert_eq!(inf, n, "{h} {outcome} +Inf bucket");
        }
    }
    // Spinning until out of fuel uses (about) the whole budget.
    let fuel_sum = get(
        &m,
        r#"sandfire_attempt_fuel_units_sum{outcome="out_of_fuel"}"#,
    );
    assert!(fuel_sum >= 2.0 * 19_000_000.0, "{fuel_sum}");
    let pickups = |q: &str| {
        get(
            &m,
            &format!(r#"sandfire_pickup_latency_seconds_count{{queue="{q}"}}"#),
        )
    };
    assert_eq!(pickups("default"), 3.0);
    assert_eq!(pickups("cpu"), 2.0);

    // What is, read at scrape time.
    let runs = |q: &str, s: &str| {
        get(
            &m,
            &format!(r#"sandfire_queue_runs{{queue="{q}",state="{s}"}}"#),
        )
    };
    assert_eq!(runs("default", "scheduled"), 1.0, "the delayed run");
    assert_eq!(runs("idle", "enqueued"), 1.0, "the run nobody claims");
    assert!(m.contains_key(r#"sandfire_queue_oldest_enqueued_age_seconds{queue="idle"}"#));
    assert_eq!(get(&m, "sandfire_queue_figures_up"), 1.0);
    assert_eq!(
        get(&m, r#"sandfire_db_pool_max_connections{pool="worker"}"#),
        16.0
    );
    assert_eq!(
        get(&m, r#"sandfire_db_pool_max_connections{pool="claims"}"#),
        2.0
    );
    assert!(get(&m, r#"sandfire_db_pool_connections{pool="api"}"#) >= 1.0);
    assert_eq!(get(&m, "sandfire_worker_slots"), 8.0);
    assert_eq!(get(&m, "sandfire_sandbox_instances_in_use"), 0.0);
    assert!(
        get(&m, "sandfire_compile_cache_hits_total") >= 1.0,
        "uploads fill the cache"
    );
    assert!(get(&m, "sandfire_compiles_total") >= 3.0);
    assert_eq!(get(&m, "sandfire_leases_rescued_total"), 0.0);
    assert_eq!(get(&m, "sandfire_cron_fires_total"), 0.0);
    let version = format!(
        r#"sandfire_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(get(&m, &version), 1.0);
    assert!(
        !m.keys().any(|k| k.contains("tenant=")),
        "no tenant label without the flag"
    );

    // The admin token is required: none, a wrong one, a tenant's key.
    for token in [None, Some("not-the-admin-token"), Some(t.key.as_str())] {
        let (status, _) = scrape_text(&r, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    r.shutdown().await;
}

#[tokio::test]
async fn tenant_labels_appear_only_with_the_flag() {
    let r = TestRunner::start_with(|s| s.metrics.tenant_labels = true).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    assert_eq!(
        run_to_end(&r, &t, "hello", json!({"input": {"name": "Ada"}})).await,
        "succeeded"
    );
    let m = wait_until("the run counted", Duration::from_secs(10), || async {
        let m = scrape(&r).await;
        let finished =
            r#"sandfire_runs_finished_total{queue="default",outcome="ok",tenant="acme"}"#;
        (get(&m, finished) == 1.0).then_some(m)
    })
    .await;
    let enqueued = r#"sandfire_runs_enqueued_total{queue="default",tenant="acme"}"#;
    assert_eq!(get(&m, enqueued), 1.0, "{m:#?}");
    let attempts = r#"sandfire_attempts_total{queue="default",outcome="ok",tenant="acme"}"#;
    assert_eq!(get(&m, attempts), 1.0);
    // Histograms never carry a tenant (buckets times tenants would be too many series).
    assert_eq!(
        get(
            &m,
            r#"sandfire_attempt_duration_seconds_count{outcome="ok"}"#
        ),
        1.0
    );
    r.shutdown().await;
}

#[tokio::test]
async fn the_separate_listener_answers_without_auth() {
    let r = TestRunner::start_with(|s| {
        s.metrics.listen = Some("127.0.0.1:0".into());
        s.admin_token = None;
    })
    .await;
    let addr = r.metrics_addr().expect("a metrics listener");
    let resp = r
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let m = parse(&resp.text().await.unwrap());
    assert_eq!(get(&m, "sandfire_queue_figures_up"), 1.0);
    assert!(m.keys().any(|k| k.starts_with("sandfire_build_info{")));
    // Only /metrics is served there.
    let other = r
        .http
        .request(Method::GET, format!("http://{addr}/v1/runs"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // On the API, /metrics stays an admin route: without an admin token configured, it is off.
    let (status, _) = scrape_text(&r, Some("anything")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    r.shutdown().await;
}
