//! Manual control through the HTTP API: cancel in every state that has not ended (a spinning
//! job within 1 s), retry as a new attempt, delete of ended runs, and how continuations follow
//! cancels and failures down a chain.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestRunner, TestTenant, outcomes};

async fn act(r: &TestRunner, t: &TestTenant, method: Method, path: &str) -> (StatusCode, Value) {
    r.call(method, path, Some(&t.key), None).await
}

async fn cancel(r: &TestRunner, t: &TestTenant, id: &str) -> (StatusCode, Value) {
    act(r, t, Method::POST, &format!("/v1/runs/{id}/cancel")).await
}

async fn retry(r: &TestRunner, t: &TestTenant, id: &str) -> (StatusCode, Value) {
    act(r, t, Method::POST, &format!("/v1/runs/{id}/retry")).await
}

async fn delete(r: &TestRunner, t: &TestTenant, id: &str) -> (StatusCode, Value) {
    act(r, t, Method::DELETE, &format!("/v1/runs/{id}")).await
}

fn id(run: &Value) -> String {
    run["id"].as_str().expect("run id").to_string()
}

fn message(err: &Value) -> &str {
    err["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn cancel_works_in_every_state_that_has_not_ended() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    let other = r.tenant("other").await;
    r.upload(&t, "noop", "noop").await;

    let enqueued = r.enqueue(&t, "noop", json!({})).await;
    let scheduled = r.enqueue(&t, "noop", json!({"delay": "1h"})).await;
    assert_eq!(scheduled["state"], "scheduled");
    let awaiting = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&enqueued), "on": "succeeded"}}),
        )
        .await;
    assert_eq!(awaiting["state"], "awaiting");
    // A retrying run, made so directly (no worker runs here).
    let retrying = r.enqueue(&t, "noop", json!({})).await;
    // As a claim does it: lease the run_queue row and start the attempt in one statement.
    sqlx::query(
        "WITH leased AS (
             UPDATE run_queue SET state = 'running', runner_id = gen_random_uuid(),
                    lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour'
             WHERE run_id = $1::uuid RETURNING run_id, lease_token)
         UPDATE runs SET state = 'running', attempt = 1, lease_token = leased.lease_token
         FROM leased WHERE id = leased.run_id",
    )
    .bind(id(&retrying))
    .execute(r.store.pool())
    .await
    .unwrap();
    sqlx::query(
        "UPDATE runs SET state = 'retrying', lease_token = NULL,
                scheduled_at = now() + interval '1 hour'
         WHERE id = $1::uuid",
    )
    .bind(id(&retrying))
    .execute(r.store.pool())
    .await
    .unwrap();

    // Another tenant's key does not reach the run.
    let (status, _) = cancel(&r, &other, &id(&scheduled)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(r.run(&t, &id(&scheduled)).await["state"], "scheduled");

    for (run, from) in [
        (&scheduled, "scheduled"),
        (&awaiting, "awaiting"),
        (&retrying, "retrying"),
    ] {
        let (status, body) = cancel(&r, &t, &id(run)).await;
        assert_eq!(status, StatusCode::OK, "{from}: {body}");
        assert_eq!(body["state"], "cancelled", "{from}: {body:#}");
        assert_eq!(body["cancel_requested"], false);
        assert_eq!(body["error"], "cancelled via API");
        assert!(body["finished_at"].is_string());
        let last = body["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["from"], from);
        assert_eq!(last["to"], "cancelled");
        assert_eq!(last["reason"], "cancelled via API");
    }

    // Cancelling the parent of an `on: finished` continuation starts it.
    let finished = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&enqueued), "on": "finished"}}),
        )
        .await;
    let (status, body) = cancel(&r, &t, &id(&enqueued)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    assert_eq!(r.run(&t, &id(&finished)).await["state"], "enqueued");

    // Ended: 409 naming the state.
    let (status, err) = cancel(&r, &t, &id(&enqueued)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(message(&err).contains("cancelled"), "{err}");

    let (status, _) = cancel(&r, &t, "nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = cancel(&r, &t, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test]
async fn cancel_interrupts_a_spinning_job_within_a_second() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "spin", "spin").await;
    let run = r
        .enqueue(
            &t,
            "spin",
            json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 3}),
        )
        .await;
    let run_id = id(&run);
    r.wait_for(&t, &run_id, Duration::from_secs(30), |run| {
        run["state"] == "running"
    })
    .await;
    let asked = Instant::now();
    let (status, body) = cancel(&r, &t, &run_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["cancel_requested"], true);
    let run = r
        .wait_for(&t, &run_id, Duration::from_secs(1), |run| {
            run["state"] == "cancelled"
        })
        .await;
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(outcomes(&run), ["cancelled"], "{run:#}");
    assert!(run["finished_at"].is_string());
    r.shutdown().await;
}

#[tokio::test]
async fn retry_runs_a_failed_run_again_as_a_new_attempt() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "flaky", "flaky").await;
    r.upload(&t, "panic", "panic").await;

    // Fails on attempt 1 (its only one), succeeds on the retried attempt 2.
    let run = r
        .enqueue(
            &t,
            "flaky",
            json!({"input": {"succeed_on_attempt": 2}, "max_attempts": 1}),
        )
        .await;
    let run = r.wait_terminal(&t, &id(&run)).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    let (status, body) = retry(&r, &t, &id(&run)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["error"].is_null());
    assert!(body["finished_at"].is_null() || body["state"] == "succeeded");
    assert_eq!(body["max_attempts"], 2);
    let run = r.wait_terminal(&t, &id(&run)).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(outcomes(&run), ["error", "ok"]);
    assert_eq!(run["attempt"], 2);
    assert!(
        run["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "failed"
                && e["to"] == "enqueued"
                && e["reason"] == "retried via API"),
        "{:#}",
        run["history"]
    );

    // A succeeded run is not retried.
    let (status, err) = retry(&r, &t, &id(&run)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(message(&err).contains("succeeded"), "{err}");

    // Fails again on the retry: attempt 2 recorded, failed again.
    let run = r.enqueue(&t, "panic", json!({"max_attempts": 1})).await;
    r.wait_terminal(&t, &id(&run)).await;
    let (status, _) = retry(&r, &t, &id(&run)).await;
    assert_eq!(status, StatusCode::OK);
    let run = r
        .wait_for(&t, &id(&run), Duration::from_secs(30), |run| {
            run["state"] == "failed" && run["attempt"] == 2
        })
        .await;
    assert_eq!(outcomes(&run), ["panic", "panic"]);
    r.shutdown().await;
}

#[tokio::test]
async fn retry_re_enqueues_a_cancelled_run_and_refuses_others() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    let other = r.tenant("other").await;
    r.upload(&t, "noop", "noop").await;
    let run = r.enqueue(&t, "noop", json!({"max_attempts": 1})).await;

    let (status, err) = retry(&r, &t, &id(&run)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(message(&err).contains("enqueued"), "{err}");

    cancel(&r, &t, &id(&run)).await;
    let (status, _) = retry(&r, &other, &id(&run)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = retry(&r, &t, &id(&run)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "enqueued");
    assert!(body["error"].is_null() && body["finished_at"].is_null());
    // Never attempted, so one attempt is still enough.
    assert_eq!(body["max_attempts"], 1);
    let (status, _) = retry(&r, &t, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test]
async fn delete_removes_ended_runs_only() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let other = r.tenant("other").await;
    r.upload(&t, "hello", "hello").await;
    r.upload(&t, "spin", "spin").await;
    r.upload(&t, "noop", "noop").await;

    let done = r
        .enqueue(&t, "hello", json!({"input": {"name": "Ada"}}))
        .await;
    let done = r.wait_terminal(&t, &id(&done)).await;
    assert_eq!(done["state"], "succeeded");
    assert!(!r.logs(&t, &id(&done)).await.is_empty());

    let (status, _) = delete(&r, &other, &id(&done)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = delete(&r, &t, &id(&done)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = act(&r, &t, Method::GET, &format!("/v1/runs/{}", id(&done))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for table in ["attempts", "run_events", "logs"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE run_id = $1::uuid"
        )))
        .bind(id(&done))
        .fetch_one(r.store.pool())
        .await
        .unwrap();
        assert_eq!(left, 0, "{table} left behind");
    }
    let (status, _) = delete(&r, &t, &id(&done)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Running: cancel it first.
    let spin = r
        .enqueue(
            &t,
            "spin",
            json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 1}),
        )
        .await;
    r.wait_for(&t, &id(&spin), Duration::from_secs(30), |run| {
        run["state"] == "running"
    })
    .await;
    let (status, err) = delete(&r, &t, &id(&spin)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        message(&err).contains("running") && message(&err).contains("cancel it first"),
        "{err}"
    );
    // Waiting (not running): 409 as well.
    let waiting = r.enqueue(&t, "noop", json!({"delay": "1h"})).await;
    let (status, err) = delete(&r, &t, &id(&waiting)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(message(&err).contains("scheduled"), "{err}");
    assert_eq!(r.run(&t, &id(&waiting)).await["state"], "scheduled");
    r.shutdown().await;
}

#[tokio::test]
async fn failure_propagates_down_a_chain_of_continuations() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "panic", "panic").await;
    r.upload(&t, "noop", "noop").await;
    r.upload(&t, "hello", "hello").await;

    // Hold the parent back until the whole chain exists.
    let parent = r
        .enqueue(&t, "panic", json!({"max_attempts": 1, "delay": "300ms"}))
        .await;
    let child = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&parent), "on": "succeeded"}}),
        )
        .await;
    let grandchild = r
        .enqueue(
            &t,
            "noop",
            json!({"after": {"run": id(&child), "on": "succeeded"}}),
        )
        .await;
    let on_finished = r
        .enqueue(
            &t,
            "hello",
            json!({"input": {"name": "Ada"}, "after": {"run": id(&grandchild), "on": "finished"}}),
        )
        .await;
    assert_eq!(child["state"], "awaiting");
    assert_eq!(grandchild["state"], "awaiting");

    assert_eq!(r.wait_terminal(&t, &id(&parent)).await["state"], "failed");
    let child = r.wait_terminal(&t, &id(&child)).await;
    assert_eq!(child["state"], "cancelled");
    let error = child["error"].as_str().unwrap();
    assert!(error.contains(&id(&parent)), "{error}");
    let grandchild = r.wait_terminal(&t, &id(&grandchild)).await;
    assert_eq!(grandchild["state"], "cancelled");
    assert!(
        grandchild["error"].as_str().unwrap().contains(&id(&child)),
        "{grandchild:#}"
    );
    assert!(grandchild["attempts"].as_array().unwrap().is_empty());
    // `finished` holds for a cancelled parent too.
    let last = r.wait_terminal(&t, &id(&on_finished)).await;
    assert_eq!(last["state"], "succeeded", "{last:#}");

    // Retrying the failed parent does not revive the chain: it was decided.
    retry(&r, &t, &id(&parent)).await;
    r.wait_for(&t, &id(&parent), Duration::from_secs(30), |run| {
        run["state"] == "failed" && run["attempt"] == 2
    })
    .await;
    assert_eq!(r.run(&t, &id(&child)).await["state"], "cancelled");
    r.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_parent_cancels_its_on_succeeded_chain() {
    // Continuation rows written directly (columns after_run / after_on), as any producer may.
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let parent = r.enqueue(&t, "noop", json!({})).await;
    let mut chain = vec![id(&parent)];
    for _ in 0..3 {
        let next = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input,
                               max_attempts, timeout_ms, fuel, memory_mb, backoff_base_ms,
                               after_run, after_on)
             SELECT $1, tenant_id, job_id, version, 'awaiting', queue, priority, 'null',
                    max_attempts, timeout_ms, fuel, memory_mb, backoff_base_ms, $2::uuid,
                    'succeeded'
             FROM runs WHERE id = $2::uuid",
        )
        .bind(next)
        .bind(chain.last().unwrap())
        .execute(r.store.pool())
        .await
        .unwrap();
        chain.push(next.to_string());
    }
    let (status, _) = cancel(&r, &t, &chain[0]).await;
    assert_eq!(status, StatusCode::OK);
    for pair in chain.windows(2) {
        let run = r.run(&t, &pair[1]).await;
        assert_eq!(run["state"], "cancelled", "{run:#}");
        assert!(run["error"].as_str().unwrap().contains(&pair[0]), "{run:#}");
    }
    r.shutdown().await;
}
