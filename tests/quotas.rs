//! Tenant safety over the API: key roles and revocation, tenant disable, the admin token's
//! length, operator quotas (each refusal a 429 that names the limit and creates nothing), and
//! that one tenant's key never reaches another tenant's resources.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Body, TestRunner, TestTenant, wait_until};

async fn admin(
    r: &TestRunner,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    r.call(method, path, Some(ADMIN_TOKEN), body.map(Body::Json))
        .await
}

async fn set_limits(r: &TestRunner, tenant: &str, limits: Value) -> Value {
    let (status, body) = admin(
        r,
        Method::PUT,
        &format!("/v1/tenants/{tenant}/limits"),
        Some(limits),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "setting limits: {body}");
    body
}

async fn try_enqueue(
    r: &TestRunner,
    t: &TestTenant,
    job: &str,
    body: Value,
) -> (StatusCode, Value) {
    r.call(
        Method::POST,
        &format!("/v1/jobs/{job}/runs"),
        Some(&t.key),
        Some(Body::Json(body)),
    )
    .await
}

fn assert_quota(status: StatusCode, body: &Value, limit: &str) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(limit),
        "the message names {limit}: {message}"
    );
}

#[tokio::test]
async fn a_read_key_reads_everything_and_changes_nothing() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let run = r
        .enqueue(&t, "hello", json!({"input": {"name": "Ada"}}))
        .await;
    let id = run["id"].as_str().unwrap();
    r.wait_terminal(&t, id).await;

    let (status, body) = admin(
        &r,
        Method::POST,
        "/v1/tenants/acme/keys",
        Some(json!({"role": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"]["role"], "read");
    let read = body["api_key"].as_str().unwrap().to_string();

    for path in [
        "/v1/jobs".to_string(),
        "/v1/jobs/hello".to_string(),
        "/v1/runs".to_string(),
        format!("/v1/runs/{id}"),
        format!("/v1/runs/{id}/logs"),
        "/v1/queues".to_string(),
        "/v1/schedules".to_string(),
    ] {
        let (status, body) = r.call(Method::GET, &path, Some(&read), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path} with a read key: {body}");
    }
    let runs_before = r.count("SELECT count(*) FROM runs").await;
    let changes = [
        (
            Method::POST,
            "/v1/jobs/hello/runs".to_string(),
            Some(Body::Json(json!({"input": {}}))),
        ),
        (
            Method::PUT,
            "/v1/jobs/other".to_string(),
            Some(Body::Raw(crate::support::example("hello"), None)),
        ),
        (Method::POST, format!("/v1/runs/{id}/retry"), None),
        (Method::POST, format!("/v1/runs/{id}/cancel"), None),
        (Method::DELETE, format!("/v1/runs/{id}"), None),
        (
            Method::POST,
            "/v1/runs".to_string(),
            Some(Body::Json(json!([{"job": "hello"}]))),
        ),
        (
            Method::POST,
            "/v1/batches".to_string(),
            Some(Body::Json(json!({"runs": [{"job": "hello"}]}))),
        ),
        (Method::POST, "/v1/queues/default/pause".to_string(), None),
        (
            Method::PUT,
            "/v1/schedules/s".to_string(),
            Some(Body::Json(json!({"job": "hello", "cron": "0 * * * * *"}))),
        ),
    ];
    for (method, path, body) in changes {
        let (status, answer) = r.call(method.clone(), &path, Some(&read), body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path} with a read key: {answer}"
        );
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    assert_eq!(
        r.count("SELECT count(*) FROM runs").await,
        runs_before,
        "nothing was created"
    );
    assert_eq!(r.count("SELECT count(*) FROM schedules").await, 0);
    assert_eq!(r.count("SELECT count(*) FROM jobs").await, 1);
    // The run was neither retried nor deleted.
    assert_eq!(r.run(&t, id).await["state"], "succeeded");
    r.shutdown().await;
}

/// Runners remember a checked key for a moment; a change made through one runner, or by SQL
/// by hand, makes every runner forget it as the database's notification arrives, long before
/// the entry would expire.
#[tokio::test]
async fn a_tenant_disabled_through_one_runner_stops_on_the_others_at_once() {
    let a = TestRunner::start().await;
    let b = a.second_runner(|_| {}).await;
    let t = a.tenant("acme").await;
    // Runner b answers 401 within half the TTL of the change.
    let refused_soon = |since: std::time::Instant| {
        let (b, key) = (&b, t.key.clone());
        async move {
            let bound = sandfire::api::key_cache::KEY_CACHE_TTL / 2;
            loop {
                let (status, _) = b.call(Method::GET, "/v1/jobs", Some(&key), None).await;
                if status == StatusCode::UNAUTHORIZED {
                    break;
                }
                assert_eq!(status, StatusCode::OK);
                assert!(
                    since.elapsed() < bound,
                    "runner b still accepted the disabled tenant's key after {:?}",
                    since.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // Runner b has checked the key and remembers it.
    let (status, _) = b.call(Method::GET, "/v1/jobs", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(&a, Method::POST, "/v1/tenants/acme/disable", None).await;
    let disabled = std::time::Instant::now();
    assert_eq!(status, StatusCode::OK);
    refused_soon(disabled).await;

    // Enabled again, checked (and remembered) by b, then disabled by hand in the database.
    let (status, _) = admin(&a, Method::POST, "/v1/tenants/acme/enable", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = b.call(Method::GET, "/v1/jobs", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK);
    sqlx::query("UPDATE tenants SET disabled_at = now() WHERE name = 'acme'")
        .execute(a.store.pool())
        .await
        .unwrap();
    refused_soon(std::time::Instant::now()).await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn keys_are_listed_and_a_disabled_key_or_tenant_stops_at_once() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let (status, body) = admin(&r, Method::POST, "/v1/tenants/acme/keys", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["key"]["role"], "full", "the default role is full");
    let second = body["api_key"].as_str().unwrap().to_string();
    let second_prefix = body["key"]["prefix"].as_str().unwrap().to_string();

    let (status, body) = admin(&r, Method::GET, "/v1/tenants/acme/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{body}");
    assert!(
        keys.iter()
            .all(|k| k["prefix"].as_str().unwrap().starts_with("sfk_")
                && k["created_at"].is_string()
                && k["disabled_at"].is_null()
                && k.get("hash").is_none())
    );
    let (status, _) = r
        .call(Method::GET, "/v1/tenants/acme/keys", Some(&t.key), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "tenant keys cannot list keys"
    );

    // Disabling one key: that key gets 401 on the next request, the other keeps working.
    let (status, body) = admin(
        &r,
        Method::DELETE,
        &format!("/v1/tenants/acme/keys/{second_prefix}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = r.call(Method::GET, "/v1/jobs", Some(&second), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = r.call(Method::GET, "/v1/jobs", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(
        &r,
        Method::DELETE,
        &format!("/v1/tenants/acme/keys/{second_prefix}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an already disabled key");
    let (status, _) = admin(&r, Method::DELETE, "/v1/tenants/nobody/keys/sfk_0000", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = admin(&r, Method::GET, "/v1/tenants/acme/keys", None).await;
    let disabled: Vec<_> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["disabled_at"].is_null())
        .collect();
    assert_eq!(disabled.len(), 1);

    // Disabling the tenant: every key stops, its queued runs are not claimed; enabling undoes it.
    r.upload(&t, "hello", "hello").await;
    let (status, _) = admin(&r, Method::POST, "/v1/queues/default/pause", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin token is not a tenant key"
    );
    let (status, _) = admin(&r, Method::POST, "/v1/tenants/acme/disable", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = r.call(Method::GET, "/v1/jobs", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = admin(&r, Method::POST, "/v1/tenants/acme/enable", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = r.call(Method::GET, "/v1/jobs", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = r.call(Method::GET, "/v1/jobs", Some(&second), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled key stays disabled"
    );

    // A run enqueued, then the tenant disabled before any claim... is held until enabled.
    let (status, _) = r
        .call(Method::POST, "/v1/queues/default/pause", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let run = r
        .enqueue(&t, "hello", json!({"input": {"name": "Ada"}}))
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    admin(&r, Method::POST, "/v1/tenants/acme/disable", None).await;
    sqlx::query("UPDATE queues SET paused = false")
        .execute(r.store.pool())
        .await
        .unwrap();
    r.call(Method::GET, "/healthz", None, None).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // three claim polls of the test runner
    let state: String = sqlx::query_scalar("SELECT state::text FROM runs WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(r.store.pool())
        .await
        .unwrap();
    assert_eq!(
        state, "enqueued",
        "a disabled tenant's runs are not claimed"
    );
    admin(&r, Method::POST, "/v1/tenants/acme/enable", None).await;
    let run = r.wait_terminal(&t, &id).await;
    assert_eq!(run["state"], "succeeded");
    r.shutdown().await;
}

#[tokio::test]
async fn a_short_admin_token_is_refused_at_start() {
    let url = crate::support::fresh_database().await;
    let store = std::sync::Arc::new(sandfire::runner::connect(&url, 2).await.unwrap());
    let mut settings = crate::support::test_settings();
    settings.admin_token = Some("a".to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = sandfire::runner::Runner::start(
        settings,
        store as std::sync::Arc<dyn sandfire::store::Store>,
        listener,
        Duration::from_millis(100),
    )
    .await;
    let err = started.err().expect("a 1-byte admin token is refused");
    assert!(err.to_string().contains("at least 32"), "{err}");
}

#[tokio::test]
async fn limits_are_set_read_and_enforced_on_enqueue() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let other = r.tenant("other").await;
    r.upload(&t, "hello", "hello").await;
    r.upload(&other, "hello", "hello").await;
    // Pause so nothing ends while we count.
    r.call(Method::POST, "/v1/queues/default/pause", Some(&t.key), None)
        .await;

    let (status, body) = admin(&r, Method::GET, "/v1/tenants/acme/limits", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["limits"]["max_schedules"], 1000,
        "runner default: {body}"
    );
    assert!(body["own"]["max_active_runs"].is_null());
    let (status, body) = admin(
        &r,
        Method::PUT,
        "/v1/tenants/acme/limits",
        Some(json!({"max_active_runs": -1})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = admin(
        &r,
        Method::PUT,
        "/v1/tenants/acme/limits",
        Some(json!({"max_actve_runs": 1})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a misspelt limit is named: {body}"
    );
    let (status, _) = admin(
        &r,
        Method::PUT,
        "/v1/tenants/nobody/limits",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let body = set_limits(&r, "acme", json!({"max_active_runs": 3})).await;
    assert_eq!(body["limits"]["max_active_runs"], 3);
    for _ in 0..3 {
        r.enqueue(&t, "hello", json!({"input": {}})).await;
    }
    let (status, body) = try_enqueue(&r, &t, "hello", json!({"input": {}})).await;
    assert_quota(status, &body, "max_active_runs");
    assert!(body["error"]["message"].as_str().unwrap().contains('3'));
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/runs",
            Some(&t.key),
            Some(Body::Json(json!([{"job": "hello"}]))),
        )
        .await;
    assert_quota(status, &body, "max_active_runs");
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/batches",
            Some(&t.key),
            Some(Body::Json(json!({"runs": [{"job": "hello"}]}))),
        )
        .await;
    assert_quota(status, &body, "max_active_runs");
    assert_eq!(
        r.count("SELECT count(*) FROM runs").await,
        3,
        "nothing created by refusals"
    );
    // Another tenant is not held to acme's limit.
    r.enqueue(&other, "hello", json!({"input": {}})).await;

    // The token bucket: 5 a second. A bulk request of 10 is admitted into debt (about 1 s),
    // then the next request is refused with Retry-After.
    set_limits(&r, "acme", json!({"enqueue_per_s": 5})).await;
    let ten: Vec<Value> = (0..10).map(|_| json!({"job": "hello"})).collect();
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/runs",
            Some(&t.key),
            Some(Body::Json(json!(ten))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let resp = r
        .http
        .post(format!("{}/v1/jobs/hello/runs", r.base))
        .bearer_auth(&t.key)
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After is sent")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_quota(StatusCode::TOO_MANY_REQUESTS, &body, "enqueue_per_s");

    // Refusals are counted per limit for the operator.
    let usage = wait_until("limit hits recorded", Duration::from_secs(5), || async {
        let (_, body) = admin(&r, Method::GET, "/v1/tenants/acme/limits", None).await;
        let hits = body["limit_hits"].as_array().cloned().unwrap_or_default();
        let names: Vec<_> = hits
            .iter()
            .filter_map(|h| h["limit"].as_str().map(str::to_string))
            .collect();
        (names.contains(&"max_active_runs".to_string())
            && names.contains(&"enqueue_per_s".to_string()))
        .then_some(body)
    })
    .await;
    assert!(
        usage["usage"]["active_runs"].as_i64().unwrap() >= 3,
        "{usage}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn jobs_versions_and_schedules_are_limited() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    set_limits(
        &r,
        "acme",
        json!({"max_jobs": 1, "max_versions_per_job": 1, "max_schedules": 1, "min_schedule_interval_ms": 60000}),
    )
    .await;
    r.upload(&t, "hello", "hello").await;
    // The same bytes again are no new version: fine.
    r.upload(&t, "hello", "hello").await;
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/jobs/hello",
            Some(&t.key),
            Some(Body::Raw(crate::support::example("noop"), None)),
        )
        .await;
    assert_quota(status, &body, "max_versions_per_job");
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/jobs/second",
            Some(&t.key),
            Some(Body::Raw(crate::support::example("noop"), None)),
        )
        .await;
    assert_quota(status, &body, "max_jobs");
    assert_eq!(r.count("SELECT count(*) FROM jobs").await, 1);
    assert_eq!(r.count("SELECT count(*) FROM job_versions").await, 1);

    let put = |name: &'static str, cron: &'static str| {
        let r = &r;
        let t = &t;
        async move {
            r.call(
                Method::PUT,
                &format!("/v1/schedules/{name}"),
                Some(&t.key),
                Some(Body::Json(json!({"job": "hello", "cron": cron}))),
            )
            .await
        }
    };
    let (status, body) = put("fast", "* * * * * *").await;
    assert_quota(status, &body, "min_schedule_interval_ms");
    let (status, body) = put("twice", "0,1 0 3 * * *").await;
    assert_quota(status, &body, "min_schedule_interval_ms");
    let (status, body) = put("hourly", "0 0 * * * *").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Replacing an existing schedule is not a new one.
    let (status, body) = put("hourly", "0 30 * * * *").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = put("daily", "0 0 0 * * *").await;
    assert_quota(status, &body, "max_schedules");
    assert_eq!(r.count("SELECT count(*) FROM schedules").await, 1);
    r.shutdown().await;
}

#[tokio::test]
async fn max_running_holds_across_every_runner() {
    let r = TestRunner::start().await;
    let second = r.second_runner(|_| {}).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "sleep", "sleep").await;
    set_limits(&r, "acme", json!({"max_running": 1})).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let run = r
            .enqueue(
                &t,
                "sleep",
                json!({"input": null, "timeout_ms": 300, "max_attempts": 1}),
            )
            .await;
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let run = r.wait_terminal(&t, id).await;
        assert_eq!(run["state"], "failed", "the sleep job times out: {run}");
    }
    // No two attempts overlapped in time, though two runners with 8 slots each were free.
    let overlapping = r
        .count(
            "SELECT count(*) FROM attempts a JOIN attempts b
             ON a.run_id < b.run_id AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
        )
        .await;
    assert_eq!(
        overlapping, 0,
        "attempts of a tenant with max_running 1 overlapped"
    );
    assert_eq!(r.count("SELECT count(*) FROM attempts").await, 4);
    second.shutdown().await;
    r.shutdown().await;
}

/// Tenant A's key on tenant B's ids: every route answers 404 and changes nothing.
#[tokio::test]
async fn one_tenants_key_never_reaches_another_tenants_resources() {
    let r = TestRunner::start().await;
    let a = r.tenant("alpha").await;
    let b = r.tenant("beta").await;
    r.upload(&b, "hello", "hello").await;
    r.call(Method::POST, "/v1/queues/default/pause", Some(&b.key), None)
        .await;
    let run = r.enqueue(&b, "hello", json!({"input": {}})).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    let (status, batch) = r
        .call(
            Method::POST,
            "/v1/batches",
            Some(&b.key),
            Some(Body::Json(json!({"runs": [{"job": "hello"}]}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let batch_id = batch["id"].as_str().unwrap().to_string();
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/schedules/nightly",
            Some(&b.key),
            Some(Body::Json(json!({"job": "hello", "cron": "0 0 0 * * *"}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let attempts = [
        (Method::GET, format!("/v1/runs/{run_id}")),
        (Method::GET, format!("/v1/runs/{run_id}/logs")),
        (Method::POST, format!("/v1/runs/{run_id}/cancel")),
        (Method::POST, format!("/v1/runs/{run_id}/retry")),
        (Method::DELETE, format!("/v1/runs/{run_id}")),
        (Method::GET, format!("/v1/batches/{batch_id}")),
        (Method::POST, format!("/v1/batches/{batch_id}/cancel")),
        (Method::GET, "/v1/schedules/nightly".to_string()),
        (Method::POST, "/v1/schedules/nightly/trigger".to_string()),
        (Method::POST, "/v1/schedules/nightly/pause".to_string()),
        (Method::DELETE, "/v1/schedules/nightly".to_string()),
        (Method::GET, "/v1/jobs/hello".to_string()),
    ];
    for (method, path) in attempts {
        let (status, body) = r.call(method.clone(), &path, Some(&a.key), None).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} with another tenant's key: {body}"
        );
    }
    // Nothing of beta's changed.
    assert_eq!(r.run(&b, &run_id).await["state"], "enqueued");
    let (_, body) = r
        .call(Method::GET, "/v1/schedules/nightly", Some(&b.key), None)
        .await;
    assert_eq!(body["paused"], false, "{body}");
    let (_, body) = r
        .call(
            Method::GET,
            &format!("/v1/batches/{batch_id}"),
            Some(&b.key),
            None,
        )
        .await;
    assert!(
        body["cancelled_at"].is_null() || body["state"] != "cancelled",
        "{body}"
    );
    let (_, runs) = r.call(Method::GET, "/v1/runs", Some(&a.key), None).await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs}");
    r.shutdown().await;
}

/// `max_log_bytes_per_attempt`: lines past the tenant's budget are dropped and the log says so;
/// another tenant's log is whole.
#[tokio::test]
async fn an_attempts_log_stops_at_its_tenants_byte_budget() {
    let r = TestRunner::start().await;
    let small = r.tenant("small").await;
    let other = r.tenant("other").await;
    set_limits(&r, "small", json!({"max_log_bytes_per_attempt": 20})).await;
    for t in [&small, &other] {
        r.upload(t, "report", "report").await;
    }
    let mut messages = Vec::new();
    for t in [&small, &other] {
        let run = r.enqueue(t, "report", json!({"input": {"n": 1000}})).await;
        let id = run["id"].as_str().unwrap();
        let run = r.wait_terminal(t, id).await;
        assert_eq!(run["state"], "succeeded", "{run}");
        let lines: Vec<String> = r
            .logs(t, id)
            .await
            .iter()
            .map(|l| l["message"].as_str().unwrap_or_default().to_string())
            .collect();
        messages.push(lines);
    }
    let (small, other) = (&messages[0], &messages[1]);
    // "counting the primes below 1000" with its field is over 20 bytes; "done" fits.
    assert!(
        !small.iter().any(|m| m.starts_with("counting")),
        "{small:?}"
    );
    assert!(small.iter().any(|m| m == "done"), "{small:?}");
    assert!(
        small
            .iter()
            .any(|m| m.contains("dropped") && m.contains("max_log_bytes_per_attempt")),
        "the log says lines were dropped: {small:?}"
    );
    assert!(other.iter().any(|m| m.starts_with("counting")), "{other:?}");
    assert!(!other.iter().any(|m| m.contains("dropped")), "{other:?}");
    r.shutdown().await;
}
