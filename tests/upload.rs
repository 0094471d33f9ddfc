//! Uploading components: validation (each rejection with a 4xx that names the problem and
//! changes nothing), versions by digest, and per-job defaults within the runner's limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Body, TestRunner, TestTenant, example};

async fn put(r: &TestRunner, t: &TestTenant, job: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    r.call(
        Method::PUT,
        &format!("/v1/jobs/{job}"),
        Some(&t.key),
        Some(Body::Raw(bytes, None)),
    )
    .await
}

async fn job_count(r: &TestRunner, t: &TestTenant) -> usize {
    let (_, body) = r.call(Method::GET, "/v1/jobs", Some(&t.key), None).await;
    body["jobs"].as_array().unwrap().len()
}

#[tokio::test]
async fn uploads_that_are_not_job_components_are_rejected_with_the_reason() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;

    let (status, body) = put(&r, &t, "junk", b"definitely not wasm".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "not_wasm", "{body}");

    let (status, body) = put(&r, &t, "empty", Vec::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "not_wasm", "{body}");

    // The smallest valid core module: magic and version 1.
    let core = b"\0asm\x01\0\0\0".to_vec();
    let (status, body) = put(&r, &t, "core", core).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "core_module", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wasm32-wasip2")
    );

    // The smallest valid component: it exports nothing, so not the job world.
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let (status, body) = put(&r, &t, "hollow", empty_component).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "wrong_world", "{body}");

    // A component header followed by garbage.
    let mut broken = b"\0asm\x0d\0\x01\0".to_vec();
    broken.extend_from_slice(&[0xff; 16]);
    let (status, body) = put(&r, &t, "broken", broken).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_component", "{body}");

    // A real program that reads a file: the filesystem is linked deny-only (for Python and
    // JavaScript runtimes), so what is wrong with it is that it is a command, not a job.
    let (status, body) = put(&r, &t, "files", example("files")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "wrong_world", "{body}");

    // A component importing an interface outside the grant: the import is named.
    let keyvalue =
        wat::parse_str(r#"(component (import "wasi:keyvalue/store@0.2.0-draft" (instance)))"#)
            .unwrap();
    let (status, body) = put(&r, &t, "kv", keyvalue).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "disallowed_imports", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wasi:keyvalue/store@0.2.0-draft"),
        "{body}"
    );

    assert_eq!(
        job_count(&r, &t).await,
        0,
        "a rejected upload created a job"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn uploads_over_the_size_limit_get_413() {
    let r = TestRunner::start_with(|s| s.max_component_bytes = 4096).await;
    let t = r.tenant("acme").await;
    let (status, body) = put(&r, &t, "hello", example("hello")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(job_count(&r, &t).await, 0);
    r.shutdown().await;
}

#[tokio::test]
async fn identical_bytes_are_idempotent_and_changed_bytes_make_a_new_version() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let (status, first) = put(&r, &t, "greeter", example("hello")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["version"], 1);
    assert_eq!(first["digest"].as_str().unwrap().len(), 64);

    let (status, again) = put(&r, &t, "greeter", example("hello")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["version"], 1);
    assert_eq!(again["new_version"], false);
    assert_eq!(again["digest"], first["digest"]);

    // A run enqueued now keeps version 1 even after version 2 is uploaded.
    let run = r
        .enqueue(&t, "greeter", json!({"input": {"name": "v1"}}))
        .await;
    let (status, second) = put(&r, &t, "greeter", example("noop")).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["version"], 2);
    assert_ne!(second["digest"], first["digest"]);
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["version"], 1);
    assert!(run["output"].to_string().contains("Hello, v1"), "{run:#}");

    let (status, job) = r
        .call(Method::GET, "/v1/jobs/greeter", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["version"], 2);
    assert_eq!(job["versions"].as_array().unwrap().len(), 2);

    // Deleting versions: never the current one, never one a run references.
    let delete = |path: &'static str| r.call(Method::DELETE, path, Some(&t.key), None);
    let (status, body) = delete("/v1/jobs/greeter/versions/2").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("current")
    );
    let (status, body) = delete("/v1/jobs/greeter/versions/1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("runs"));
    let (status, _) = delete("/v1/jobs/greeter/versions/9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = delete("/v1/jobs/greeter/versions/x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = delete("/v1/jobs/nobody/versions/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = r
        .call(
            Method::DELETE,
            &format!("/v1/runs/{}", run["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert!(status.is_success());
    assert_eq!(r.count("SELECT count(*) FROM components").await, 2);
    let (status, body) = delete("/v1/jobs/greeter/versions/1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, job) = r
        .call(Method::GET, "/v1/jobs/greeter", Some(&t.key), None)
        .await;
    assert_eq!(job["versions"].as_array().unwrap().len(), 1, "{job}");
    assert_eq!(
        r.count("SELECT count(*) FROM components").await,
        1,
        "the bytes no version uses are gone"
    );
    r.shutdown().await;
}

/// A runner keeps the jobs its enqueues read (api/job_cache.rs); the insert refuses a run built
/// from a job that changed since, so a new version or new defaults apply to the very next
/// enqueue on every runner, whoever made the change and however.
#[tokio::test]
async fn a_changed_job_applies_to_the_next_enqueue_on_every_runner() {
    let a = TestRunner::start().await;
    let b = a.second_runner(|_| {}).await;
    let t = a.tenant("acme").await;
    a.upload_with(&t, "greeter", "hello", "?max_attempts=2")
        .await;
    // Runner b reads the job (version 1) and keeps it.
    let run = b.enqueue(&t, "greeter", json!({})).await;
    assert_eq!(
        (run["version"].as_i64(), run["max_attempts"].as_i64()),
        (Some(1), Some(2))
    );
    let run = b.enqueue(&t, "greeter", json!({})).await;
    assert_eq!(run["version"], 1);

    // A new version through runner a: b's next run has it.
    let (status, body) = a
        .call(
            Method::PUT,
            "/v1/jobs/greeter?max_attempts=3",
            Some(&t.key),
            Some(Body::Raw(example("noop"), None)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run = b.enqueue(&t, "greeter", json!({})).await;
    assert_eq!(
        (run["version"].as_i64(), run["max_attempts"].as_i64()),
        (Some(2), Some(3))
    );

    // New defaults by SQL by hand: the same.
    sqlx::query("UPDATE jobs SET max_attempts = 5 WHERE name = 'greeter'")
        .execute(a.store.pool())
        .await
        .unwrap();
    let run = b.enqueue(&t, "greeter", json!({})).await;
    assert_eq!(run["max_attempts"], 5, "{run}");

    // And on the idempotent path (its own transaction), with a third version.
    a.upload(&t, "greeter", "spin").await;
    let (status, run) = b
        .call(
            Method::POST,
            "/v1/jobs/greeter/runs",
            Some(&t.key),
            Some(Body::Json(json!({"idempotency_key": "k1"}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["version"], 3, "{run}");
    assert_eq!(
        a.count("SELECT count(*) FROM idempotency_keys").await,
        1,
        "the refused first try left no key behind"
    );
    assert_eq!(a.count("SELECT count(*) FROM runs").await, 5);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn job_defaults_apply_to_runs_and_stay_within_the_runner_limits() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let job = r
        .upload_with(
            &t,
            "spin",
            "spin",
            "?fuel=1000000&max_attempts=2&backoff_base_ms=1",
        )
        .await;
    assert_eq!(job["defaults"]["fuel"], 1_000_000);

    let run = r.enqueue(&t, "spin", json!({})).await;
    assert_eq!(run["fuel"], 1_000_000);
    assert_eq!(run["max_attempts"], 2);
    // A per-run option overrides the job's default.
    let run = r.enqueue(&t, "spin", json!({"max_attempts": 1})).await;
    assert_eq!(run["max_attempts"], 1);
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed");

    // Over the runner's limits: 422 naming the field, nothing changed.
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/jobs/spin?memory_mb=100000",
            Some(&t.key),
            Some(Body::Raw(example("spin"), None)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("memory_mb")
    );
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/jobs/spin?no_such_option=1",
            Some(&t.key),
            Some(Body::Raw(example("spin"), None)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_option")
    );
    let (_, job) = r
        .call(Method::GET, "/v1/jobs/spin", Some(&t.key), None)
        .await;
    assert_eq!(job["defaults"]["fuel"], 1_000_000, "{job}");
    assert!(job["defaults"].get("memory_mb").is_none(), "{job}");
    r.shutdown().await;
}

#[tokio::test]
async fn bad_run_requests_get_a_clear_4xx_and_create_nothing() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let post = |body: Body| {
        r.call(
            Method::POST,
            "/v1/jobs/hello/runs",
            Some(&t.key),
            Some(body),
        )
    };

    let (status, body) = post(Body::Raw(
        b"{\"input\": ".to_vec(),
        Some("application/json"),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("JSON"),
        "{body}"
    );

    let (status, body) = post(Body::Json(json!({"inptu": {}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("inptu"),
        "{body}"
    );

    let (status, body) = post(Body::Json(json!({"max_attempts": "three"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_attempts"),
        "{body}"
    );

    let (status, body) = post(Body::Json(json!({"max_attempts": 0}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("max_attempts")
    );

    let (status, body) = post(Body::Json(json!({"queue": "Not A Queue"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // PostgreSQL cannot store NUL: a clear 4xx, not a 500.
    let (status, body) = post(Body::Json(json!({"input": {"name": "a\u{0}b"}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_value", "{body}");

    let (status, body) = post(Body::Raw(b"{}".to_vec(), Some("text/plain"))).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");

    let (status, body) = r
        .call(
            Method::POST,
            "/v1/jobs/nope/runs",
            Some(&t.key),
            Some(Body::Json(json!({}))),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = r
        .call(Method::GET, "/v1/runs/not-a-uuid", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = r
        .call(Method::GET, "/v1/runs?state=sleepy", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("succeeded")
    );

    let (_, list) = r.call(Method::GET, "/v1/runs", Some(&t.key), None).await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 0, "{list}");
    r.shutdown().await;
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_cursor_pagination() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    r.upload(&t, "noop", "noop").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let run = r
            .enqueue(&t, "hello", json!({"input": {"name": i.to_string()}}))
            .await;
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    r.enqueue(&t, "noop", json!({})).await;

    let (_, page1) = r
        .call(
            Method::GET,
            "/v1/runs?job=hello&limit=3",
            Some(&t.key),
            None,
        )
        .await;
    let got: Vec<_> = page1["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, [ids[4].clone(), ids[3].clone(), ids[2].clone()]);
    let cursor = page1["next_cursor"].as_str().expect("a next page");
    let (_, page2) = r
        .call(
            Method::GET,
            &format!("/v1/runs?job=hello&limit=3&cursor={cursor}"),
            Some(&t.key),
            None,
        )
        .await;
    let got: Vec<_> = page2["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, [ids[1].clone(), ids[0].clone()]);
    assert!(page2["next_cursor"].is_null());

    let (_, enqueued) = r
        .call(Method::GET, "/v1/runs?state=enqueued", Some(&t.key), None)
        .await;
    assert_eq!(enqueued["runs"].as_array().unwrap().len(), 6);
    let (_, none) = r
        .call(Method::GET, "/v1/runs?state=succeeded", Some(&t.key), None)
        .await;
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);
    r.shutdown().await;
}
