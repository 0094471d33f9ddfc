//! Batches through the HTTP API: atomic creation (one bad entry creates nothing), completion
//! starting or cancelling continuations by their condition, progress counts, cancel as a
//! whole, tenant scoping.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Body, TestRunner, TestTenant, outcomes, wait_until};

async fn post_batch(r: &TestRunner, t: &TestTenant, body: Value) -> (StatusCode, Value) {
    r.call(
        Method::POST,
        "/v1/batches",
        Some(&t.key),
        Some(Body::Json(body)),
    )
    .await
}

async fn get_batch(r: &TestRunner, t: &TestTenant, path: &str) -> (StatusCode, Value) {
    r.call(
        Method::GET,
        &format!("/v1/batches/{path}"),
        Some(&t.key),
        None,
    )
    .await
}

async fn batch(r: &TestRunner, t: &TestTenant, id: &str) -> Value {
    let (status, body) = get_batch(r, t, id).await;
    assert_eq!(status, StatusCode::OK, "reading batch {id}: {body}");
    body
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array of ids")
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn one_invalid_entry_creates_nothing() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let ok = json!({"job": "noop"});
    let cases = [
        (
            json!({"runs": [ok, ok, ok, {"job": "noop", "max_attempts": 0}]}),
            422,
            "runs[3].max_attempts",
        ),
        (
            json!({"runs": [ok, {"job": "noop", "queue": "Not A Queue"}]}),
            422,
            "runs[1].queue",
        ),
        (
            json!({"runs": [ok, {"job": "missing"}]}),
            422,
            "runs[1].job",
        ),
        (
            json!({"runs": [ok], "then": [{"job": "noop", "on": "succeeded"}, {"job": "missing", "on": "finished"}]}),
            422,
            "then[1].job",
        ),
        (
            json!({"runs": [ok], "then": [{"job": "noop", "on": "whenever"}]}),
            422,
            "then[0].on",
        ),
        (
            json!({"runs": [ok], "then": [{"job": "noop"}]}),
            422,
            "then[0].on",
        ),
        (
            json!({"runs": [ok, {"job": "noop", "on": "succeeded"}]}),
            422,
            "runs[1].on",
        ),
        (
            json!({"runs": [ok], "then": [{"job": "noop", "on": "finished", "fuel": 0}]}),
            422,
            "then[0].fuel",
        ),
        (json!({"runs": []}), 422, "runs"),
        (json!({"runs": [ok], "extra": 1}), 400, "invalid JSON body"),
        (
            json!({"runs": [{"job": "noop", "delay": "1s"}]}),
            400,
            "invalid JSON body",
        ),
        (json!({"then": [ok]}), 400, "invalid JSON body"),
    ];
    for (body, status, names) in cases {
        let (got, err) = post_batch(&r, &t, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(names), "{body}: {message}");
    }
    assert_eq!(r.count("SELECT count(*) FROM runs").await, 0);
    assert_eq!(r.count("SELECT count(*) FROM batches").await, 0);
    r.shutdown().await;
}

#[tokio::test]
async fn all_succeeded_starts_succeeded_and_finished_continuations() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    r.upload(&t, "hello", "hello").await;
    let (status, created) = post_batch(
        &r,
        &t,
        json!({
            "runs": [
                {"job": "noop"},
                {"job": "noop", "priority": 5},
                {"job": "hello", "input": {"name": "Ada"}, "max_attempts": 2},
            ],
            "then": [
                {"job": "hello", "input": {"name": "Batch"}, "on": "succeeded"},
                {"job": "noop", "on": "finished"},
                {"job": "noop", "on": "failed"},
            ],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let batch_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["total"], 3);
    let members = ids(&created["runs"]);
    let then = ids(&created["then"]);
    assert_eq!((members.len(), then.len()), (3, 3));

    // Members carry their resolved options.
    let member = r.run(&t, &members[1]).await;
    assert_eq!(member["priority"], 5);
    assert_eq!(r.run(&t, &members[2]).await["max_attempts"], 2);

    for id in &members {
        assert_eq!(r.wait_terminal(&t, id).await["state"], "succeeded");
    }
    let on_succeeded = r.wait_terminal(&t, &then[0]).await;
    assert_eq!(on_succeeded["state"], "succeeded", "{on_succeeded:#}");
    assert!(on_succeeded["output"].to_string().contains("Hello, Batch"));
    let history: Vec<_> = on_succeeded["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(history, ["awaiting", "enqueued", "running", "succeeded"]);
    assert_eq!(r.wait_terminal(&t, &then[1]).await["state"], "succeeded");
    let on_failed = r.wait_terminal(&t, &then[2]).await;
    assert_eq!(on_failed["state"], "cancelled");
    assert!(
        on_failed["error"].as_str().unwrap().contains(&batch_id),
        "{on_failed:#}"
    );

    let b = batch(&r, &t, &batch_id).await;
    assert_eq!(b["progress"], 100, "{b:#}");
    assert_eq!(b["counts"]["succeeded"], 3);
    assert_eq!(b["counts"]["enqueued"], 0);
    assert!(b["finished_at"].is_string());
    assert!(b["cancelled_at"].is_null());
    let conts = b["continuations"].as_array().unwrap();
    assert_eq!(conts.len(), 3);
    assert_eq!(conts[0]["id"], then[0].as_str());
    assert_eq!(conts[0]["on"], "succeeded");
    assert_eq!(conts[0]["state"], "succeeded");
    assert_eq!(conts[2]["state"], "cancelled");
    r.shutdown().await;
}

#[tokio::test]
async fn one_failure_cancels_on_succeeded_and_starts_on_finished_and_on_failed() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    r.upload(&t, "panic", "panic").await;
    let (status, created) = post_batch(
        &r,
        &t,
        json!({
            "runs": [{"job": "noop"}, {"job": "panic", "max_attempts": 1}, {"job": "noop"}],
            "then": [
                {"job": "noop", "on": "succeeded"},
                {"job": "noop", "on": "finished"},
                {"job": "noop", "on": "failed"},
            ],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let batch_id = created["id"].as_str().unwrap().to_string();
    let members = ids(&created["runs"]);
    let then = ids(&created["then"]);
    let failed = r.wait_terminal(&t, &members[1]).await;
    assert_eq!(failed["state"], "failed");
    assert_eq!(outcomes(&failed), ["panic"]);

    let on_succeeded = r.wait_terminal(&t, &then[0]).await;
    assert_eq!(on_succeeded["state"], "cancelled", "{on_succeeded:#}");
    let error = on_succeeded["error"].as_str().unwrap();
    assert!(
        error.contains(&batch_id) && error.contains("succeeded"),
        "{error}"
    );
    assert!(on_succeeded["attempts"].as_array().unwrap().is_empty());
    assert_eq!(r.wait_terminal(&t, &then[1]).await["state"], "succeeded");
    assert_eq!(r.wait_terminal(&t, &then[2]).await["state"], "succeeded");

    let b = batch(&r, &t, &batch_id).await;
    assert_eq!(b["counts"]["succeeded"], 2, "{b:#}");
    assert_eq!(b["counts"]["failed"], 1);
    assert_eq!(b["progress"], 100);
    r.shutdown().await;
}

#[tokio::test]
async fn progress_counts_members_by_state() {
    // No worker: members stay where the API puts them.
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let (status, created) = post_batch(
        &r,
        &t,
        json!({"runs": [{"job": "noop"}, {"job": "noop"}, {"job": "noop"}, {"job": "noop"}],
               "then": [{"job": "noop", "on": "finished"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let members = ids(&created["runs"]);
    let b = batch(&r, &t, &id).await;
    assert_eq!(b["total"], 4);
    assert_eq!(b["counts"]["enqueued"], 4, "{b:#}");
    assert_eq!(b["counts"]["running"], 0);
    assert_eq!(b["progress"], 0);
    assert_eq!(b["deleted"], 0);
    assert!(b["finished_at"].is_null());
    assert!(b.get("runs").is_none(), "members only on ?runs=true");
    assert_eq!(b["continuations"][0]["state"], "awaiting");

    let (status, _) = r
        .call(
            Method::POST,
            &format!("/v1/runs/{}/cancel", members[0]),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let b = batch(&r, &t, &id).await;
    assert_eq!(b["counts"]["enqueued"], 3, "{b:#}");
    assert_eq!(b["counts"]["cancelled"], 1);
    assert_eq!(b["progress"], 25);

    // A deleted member counts as ended; it is reported as deleted.
    let (status, _) = r
        .call(
            Method::DELETE,
            &format!("/v1/runs/{}", members[0]),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, b) = get_batch(&r, &t, &format!("{id}?runs=true")).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["deleted"], 1, "{b:#}");
    assert_eq!(b["counts"]["cancelled"], 0);
    assert_eq!(b["progress"], 25);
    let listed: Vec<_> = b["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, members[1..]);
    assert_eq!(b["runs"][0]["job"], "noop");
    assert_eq!(b["runs"][0]["state"], "enqueued");

    // The rest cancelled one by one: the last one finishes the batch and starts `finished`.
    for m in &members[1..] {
        r.call(
            Method::POST,
            &format!("/v1/runs/{m}/cancel"),
            Some(&t.key),
            None,
        )
        .await;
    }
    let b = batch(&r, &t, &id).await;
    assert_eq!(b["progress"], 100, "{b:#}");
    assert!(b["finished_at"].is_string());
    assert!(b["cancelled_at"].is_null());
    assert_eq!(b["continuations"][0]["state"], "enqueued");
    r.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_batch_cancels_members_and_continuations() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    let other = r.tenant("other").await;
    r.upload(&t, "noop", "noop").await;
    let (_, created) = post_batch(
        &r,
        &t,
        json!({"runs": [{"job": "noop"}, {"job": "noop"}, {"job": "noop"}],
               "then": [{"job": "noop", "on": "finished"}, {"job": "noop", "on": "failed"}]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let members = ids(&created["runs"]);
    let then = ids(&created["then"]);
    let cancel = format!("/v1/batches/{id}/cancel");

    // Another tenant can neither see nor cancel it.
    let (status, _) = get_batch(&r, &other, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = r.call(Method::POST, &cancel, Some(&other.key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.run(&t, &members[0]).await["state"],
        "enqueued",
        "untouched"
    );

    let (status, b) = r.call(Method::POST, &cancel, Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["cancelled"], 3);
    assert_eq!(b["cancel_requested"], 0);
    assert!(b["cancelled_at"].is_string());
    assert!(b["finished_at"].is_string());
    assert_eq!(b["counts"]["cancelled"], 3);
    assert_eq!(b["progress"], 100);
    for m in &members {
        let run = r.run(&t, m).await;
        assert_eq!(run["state"], "cancelled");
        assert!(run["error"].as_str().unwrap().contains(&id), "{run:#}");
    }
    // Even the `finished` continuation: a cancelled batch starts nothing.
    for c in &then {
        let run = r.run(&t, c).await;
        assert_eq!(run["state"], "cancelled", "{run:#}");
        assert!(
            run["error"].as_str().unwrap().contains("was cancelled"),
            "{run:#}"
        );
    }
    // Cancelling again is harmless.
    let (status, b) = r.call(Method::POST, &cancel, Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["cancelled"], 0);

    // A batch that finished on its own cannot be cancelled any more.
    let (_, done) = post_batch(&r, &t, json!({"runs": [{"job": "noop"}]})).await;
    let member = ids(&done["runs"])[0].clone();
    r.call(
        Method::POST,
        &format!("/v1/runs/{member}/cancel"),
        Some(&t.key),
        None,
    )
    .await;
    let (status, err) = r
        .call(
            Method::POST,
            &format!("/v1/batches/{}/cancel", done["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already finished")
    );

    let (status, _) = get_batch(&r, &t, "not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get_batch(&r, &t, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_batch_interrupts_its_running_members() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "spin", "spin").await;
    r.upload(&t, "noop", "noop").await;
    let long = json!({"job": "spin", "timeout_ms": 300_000, "fuel": 10_000_000_000_000u64,
                      "max_attempts": 1});
    let (_, created) = post_batch(
        &r,
        &t,
        json!({"runs": [long, long], "then": [{"job": "noop", "on": "finished"}]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let members = ids(&created["runs"]);
    for m in &members {
        r.wait_for(&t, m, Duration::from_secs(30), |run| {
            run["state"] == "running"
        })
        .await;
    }
    let (status, b) = r
        .call(
            Method::POST,
            &format!("/v1/batches/{id}/cancel"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["cancel_requested"], 2);
    for m in &members {
        let run = r
            .wait_for(&t, m, Duration::from_secs(2), |run| {
                run["state"] == "cancelled"
            })
            .await;
        assert_eq!(outcomes(&run), ["cancelled"]);
    }
    let then = ids(&created["then"]);
    let cont = r.wait_terminal(&t, &then[0]).await;
    assert_eq!(cont["state"], "cancelled", "{cont:#}");
    let b = wait_until("batch finished", Duration::from_secs(5), || async {
        let b = batch(&r, &t, &id).await;
        b["finished_at"].is_string().then_some(b)
    })
    .await;
    assert!(b["cancelled_at"].is_string());
    r.shutdown().await;
}
