//! Kinds of runs beyond "now": delayed, continuations, unique (idempotency keys), queues with
//! priorities, pause and global limits, and snoozes — all through the HTTP API.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Body, TestRunner, TestTenant, outcomes};

async fn post_run(r: &TestRunner, t: &TestTenant, job: &str, body: Value) -> (StatusCode, Value) {
    r.call(
        Method::POST,
        &format!("/v1/jobs/{job}/runs"),
        Some(&t.key),
        Some(Body::Json(body)),
    )
    .await
}

fn id(run: &Value) -> String {
    run["id"].as_str().expect("run id").to_string()
}

#[tokio::test]
async fn delayed_runs_wait_until_due_then_run() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let run = r.enqueue(&t, "noop", json!({"delay": "300ms"})).await;
    assert_eq!(run["state"], "scheduled", "{run}");
    let run = r.wait_terminal(&t, &id(&run)).await;
    assert_eq!(run["state"], "succeeded");
    let history: Vec<_> = run["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(history, ["scheduled", "enqueued", "running", "succeeded"]);
    // Not started before it was due.
    let created =
        chrono::DateTime::parse_from_rfc3339(run["created_at"].as_str().unwrap()).unwrap();
    let started =
        chrono::DateTime::parse_from_rfc3339(run["attempts"][0]["started_at"].as_str().unwrap())
            .unwrap();
    assert!(
        (started - created).num_milliseconds() >= 300,
        "started early"
    );

    // run_at in the past runs at once; in the future it waits.
    let run = r
        .enqueue(&t, "noop", json!({"run_at": "2001-01-01T00:00:00Z"}))
        .await;
    assert_eq!(run["state"], "enqueued");
    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(200)).to_rfc3339();
    let run = r.enqueue(&t, "noop", json!({"run_at": at})).await;
    assert_eq!(run["state"], "scheduled");
    assert_eq!(r.wait_terminal(&t, &id(&run)).await["state"], "succeeded");

    for (body, field) in [
        (json!({"delay": "soon"}), "delay"),
        (json!({"delay": "5y"}), "delay"),
        (json!({"run_at": "tomorrow"}), "run_at"),
        (
            json!({"delay": "1s", "run_at": "2030-01-01T00:00:00Z"}),
            "delay",
        ),
        (json!({"delay_ms": 99_999_999_999u64}), "delay_ms"),
    ] {
        let (status, err) = post_run(&r, &t, "noop", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{body}: {err}"
        );
    }
    r.shutdown().await;
}

#[tokio::test]
async fn continuations_run_after_their_parent_with_its_output() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    r.upload(&t, "noop", "noop").await;
    r.upload(&t, "panic", "panic").await;
    // A chain: slow parent -> child on succeeded, fed the parent's output -> grandchild.
    let parent = r
        .enqueue(
            &t,
            "hello",
            json!({"input": {"name": "P"}, "delay": "200ms"}),
        )
        .await;
    let child = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&parent), "on": "succeeded", "input_from_parent": true}}),
        )
        .await;
    assert_eq!(child["state"], "awaiting", "{child}");
    assert_eq!(child["after_run"], parent["id"], "{child}");
    assert_eq!(child["after_on"], "succeeded");
    let grandchild = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&child), "on": "finished"}}),
        )
        .await;
    assert_eq!(grandchild["state"], "awaiting");
    let child = r.wait_terminal(&t, &id(&child)).await;
    assert_eq!(child["state"], "succeeded", "{child:#}");
    assert!(child["input"].to_string().contains("Hello, P"), "{child:#}");
    assert_eq!(
        r.wait_terminal(&t, &id(&grandchild)).await["state"],
        "succeeded"
    );

    // Failure propagates: on=succeeded after a failed parent is cancelled, naming the parent,
    // and so is everything waiting on it; on=failed starts.
    let bad = r
        .enqueue(&t, "panic", json!({"max_attempts": 1, "delay": "100ms"}))
        .await;
    let never = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&bad), "on": "succeeded"}}),
        )
        .await;
    let never_child = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&never), "on": "finished"}}),
        )
        .await;
    let cleanup = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&bad), "on": "failed"}}),
        )
        .await;
    let never = r.wait_terminal(&t, &id(&never)).await;
    assert_eq!(never["state"], "cancelled");
    assert!(
        never["error"].as_str().unwrap().contains(&id(&bad)),
        "{never:#}"
    );
    // "finished" includes cancelled: the grandchild of a cancelled run still runs.
    assert_eq!(
        r.wait_terminal(&t, &id(&never_child)).await["state"],
        "succeeded"
    );
    assert_eq!(
        r.wait_terminal(&t, &id(&cleanup)).await["state"],
        "succeeded"
    );

    // A parent that already ended: started at once, or refused when it never can.
    let late = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&bad), "on": "failed"}}),
        )
        .await;
    assert_ne!(late["state"], "awaiting");
    let (status, err) = post_run(
        &r,
        &t,
        "noop",
        json!({"after": {"run": id(&bad), "on": "succeeded"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (status, err) = post_run(
        &r,
        &t,
        "noop",
        json!({"after": {"run": id(&bad), "on": "later"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let other = r.tenant("other").await;
    r.upload(&other, "noop", "noop").await;
    let (status, _) = post_run(
        &r,
        &other,
        "noop",
        json!({"after": {"run": id(&bad), "on": "failed"}}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another tenant's run is no parent"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn idempotency_keys_return_the_same_run_or_409() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let body = json!({"input": {"name": "once"}, "idempotency_key": "order-42"});
    let (status, first) = post_run(&r, &t, "hello", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_run(&r, &t, "hello", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (status, err) = post_run(
        &r,
        &t,
        "hello",
        json!({"input": {"name": "twice"}, "idempotency_key": "order-42"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap())
    );
    // Keys are per tenant.
    let other = r.tenant("other").await;
    r.upload(&other, "hello", "hello").await;
    let (status, theirs) = post_run(&r, &other, "hello", body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(theirs["id"], first["id"]);
    let (_, list) = r.call(Method::GET, "/v1/runs", Some(&t.key), None).await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 1);

    // The run deleted while its key lives: the same request says so, and creates nothing.
    let id = first["id"].as_str().unwrap();
    r.wait_terminal(&t, id).await;
    let (status, _) = r
        .call(
            Method::DELETE,
            &format!("/v1/runs/{id}"),
            Some(&t.key),
            None,
        )
        .await;
    assert!(status.is_success());
    let body = json!({"input": {"name": "once"}, "idempotency_key": "order-42"});
    let (status, err) = post_run(&r, &t, "hello", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("was deleted") && message.contains(id),
        "{message}"
    );
    let (_, list) = r.call(Method::GET, "/v1/runs", Some(&t.key), None).await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn idempotency_keys_expire_after_the_window() {
    let r = TestRunner::start_with(|s| s.limits.idempotency_window_ms = 150).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let body = json!({"idempotency_key": "k"});
    let (_, first) = post_run(&r, &t, "noop", body.clone()).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, second) = post_run(&r, &t, "noop", body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(second["id"], first["id"]);
    r.shutdown().await;
}

#[tokio::test]
async fn higher_priority_runs_first_and_paused_queues_wait() {
    let r = TestRunner::start_with(|s| s.worker.slots = 1).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let (status, q) = r
        .call(Method::POST, "/v1/queues/default/pause", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{q}");
    assert_eq!(q["paused"], true);
    let low = r.enqueue(&t, "noop", json!({"priority": -5})).await;
    let mid = r.enqueue(&t, "noop", json!({})).await;
    let high = r.enqueue(&t, "noop", json!({"priority": 10})).await;
    let mid2 = r.enqueue(&t, "noop", json!({})).await;
    // Paused: nothing runs (the poll interval is 200 ms; give it two).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.run(&t, &id(&high)).await["state"], "enqueued");
    // The queue list counts the waiting runs (active states only).
    let (_, queues) = r.call(Method::GET, "/v1/queues", Some(&t.key), None).await;
    assert_eq!(queues["queues"][0]["name"], "default", "{queues}");
    assert_eq!(queues["queues"][0]["paused"], true, "{queues}");
    assert_eq!(
        queues["queues"][0]["counts"],
        json!({"enqueued": 4}),
        "{queues}"
    );
    // Another tenant's default queue is not paused.
    let other = r.tenant("other").await;
    r.upload(&other, "noop", "noop").await;
    let theirs = r.enqueue(&other, "noop", json!({})).await;
    assert_eq!(
        r.wait_terminal(&other, &id(&theirs)).await["state"],
        "succeeded"
    );

    let (status, _) = r
        .call(
            Method::POST,
            "/v1/queues/default/resume",
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut started = Vec::new();
    for run in [&low, &mid, &high, &mid2] {
        let run = r.wait_terminal(&t, &id(run)).await;
        started.push((
            run["attempts"][0]["started_at"]
                .as_str()
                .unwrap()
                .to_string(),
            id(&run),
        ));
    }
    started.sort();
    let order: Vec<_> = started.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        order,
        [id(&high), id(&mid), id(&mid2), id(&low)],
        "priority, then FIFO"
    );

    // Ended runs are not counted (that would read every stored run): nothing waits now.
    let (_, queues) = r.call(Method::GET, "/v1/queues", Some(&t.key), None).await;
    let default = &queues["queues"][0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["counts"], json!({}), "{queues}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_queue_concurrency_limit_holds_across_runners() {
    // Two runners on one database, plenty of slots each, a limit of 1.
    let both = |s: &mut sandfire::config::Settings| {
        s.worker.queues = vec!["default".into(), "slow".into()]
    };
    let a = TestRunner::start_with(both).await;
    let t = a.tenant("acme").await;
    a.upload(&t, "sleep", "sleep").await;
    let (status, q) = a
        .call(
            Method::PUT,
            "/v1/queues/slow",
            Some(&t.key),
            Some(Body::Json(json!({"concurrency_limit": 1}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{q}");
    let b = a.second_runner(both).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let run = a
            .enqueue(
                &t,
                "sleep",
                json!({"queue": "slow", "timeout_ms": 150, "max_attempts": 1}),
            )
            .await;
        ids.push(id(&run));
    }
    // Sample: never more than one running at once.
    let mut max_running = 0;
    for _ in 0..100 {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE queue = 'slow' AND state = 'running'",
        )
        .fetch_one(a.store.pool())
        .await
        .unwrap();
        max_running = max_running.max(running);
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE queue = 'slow' AND finished_at IS NOT NULL",
        )
        .fetch_one(a.store.pool())
        .await
        .unwrap();
        if done == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for run in &ids {
        assert_eq!(
            a.wait_terminal(&t, run).await["state"],
            "failed",
            "sleep times out"
        );
    }
    assert_eq!(max_running, 1, "the limit of 1 was exceeded");
    let (status, _) = a
        .call(
            Method::PUT,
            "/v1/queues/slow",
            Some(&t.key),
            Some(Body::Json(json!({"concurrency_limit": 0}))),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn snoozes_wait_without_using_attempts_and_are_bounded() {
    let r = TestRunner::start_with(|s| s.limits.max_snoozes = 3).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "snooze", "snooze").await;
    let run = r
        .enqueue(
            &t,
            "snooze",
            json!({"input": {"until_attempt": 3, "delay_ms": 50}, "max_attempts": 1}),
        )
        .await;
    let run = r.wait_terminal(&t, &id(&run)).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"]["woke_on_attempt"], 3);
    let snoozed = run["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "scheduled")
        .count();
    assert_eq!(snoozed, 2);
    assert_eq!(run["snoozes"], 2, "{run:#}");

    let run = r
        .enqueue(
            &t,
            "snooze",
            json!({"input": {"until_attempt": 100, "delay_ms": 10}, "max_attempts": 1}),
        )
        .await;
    let run = r.wait_terminal(&t, &id(&run)).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert!(
        run["error"].as_str().unwrap().contains("snoozed"),
        "{run:#}"
    );
    assert_eq!(outcomes(&run).len(), 4, "3 snoozes, then the 4th fails");
    r.shutdown().await;
}
