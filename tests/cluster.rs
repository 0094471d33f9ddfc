//! Many runners on one database: the registry, leader election and failover, lease rescue of a
//! crashed runner's attempts, and long attempts that are never rescued while their runner lives.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, TestRunner, outcomes};

/// Short leases so failover happens within seconds, with enough margin (20 heartbeats) that a
/// loaded test machine does not lose a healthy runner's lease.
fn fast_leases(s: &mut sandfire::config::Settings) {
    s.worker.heartbeat = std::time::Duration::from_millis(100);
    s.worker.lease = std::time::Duration::from_millis(2_000);
}

async fn runners(r: &TestRunner, key: &str) -> Vec<Value> {
    let (status, body) = r.call(Method::GET, "/v1/runners", Some(key), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["runners"].as_array().unwrap().clone()
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn runners_register_elect_one_leader_and_fail_over() {
    let a = TestRunner::start_with(fast_leases).await;
    let b = a.second_runner(fast_leases).await;
    let (a_id, b_id) = (a.runner_id().to_string(), b.runner_id().to_string());
    // Both registered, and one of them won the election (on a loaded machine the first
    // election round may still be under way when both have registered).
    wait_until(
        "both runners registered and one leading",
        Duration::from_secs(5),
        || async {
            let listed = runners(&a, ADMIN_TOKEN).await;
            listed.len() == 2 && listed.iter().any(|r| r["leader"] == true)
        },
    )
    .await;
    let listed = runners(&a, ADMIN_TOKEN).await;
    let leaders: Vec<_> = listed.iter().filter(|r| r["leader"] == true).collect();
    assert_eq!(leaders.len(), 1, "{listed:#?}");
    assert!(
        listed
            .iter()
            .all(|r| r["host"].as_str().is_some() && r["slots"] == 8)
    );
    let (status, _) = a.call(Method::GET, "/v1/runners", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The leader crashes: the other takes over once the lease time has passed, and the dead
    // runner is expired from the registry.
    let (survivor, survivor_id) = if leaders[0]["id"] == a_id.as_str() {
        a.crash();
        (b, b_id)
    } else {
        b.crash();
        (a, a_id)
    };
    let b = survivor;
    let b_id = survivor_id;
    wait_until("failover", Duration::from_secs(15), || async {
        runners(&b, ADMIN_TOKEN)
            .await
            .iter()
            .any(|r| r["id"] == b_id.as_str() && r["leader"] == true)
    })
    .await;
    wait_until(
        "the dead runner expires",
        Duration::from_secs(15),
        || async { runners(&b, ADMIN_TOKEN).await.len() == 1 },
    )
    .await;
    // A graceful stop deregisters at once.
    let c = b.second_runner(fast_leases).await;
    wait_until("c registered", Duration::from_secs(5), || async {
        runners(&b, ADMIN_TOKEN).await.len() == 2
    })
    .await;
    c.shutdown().await;
    assert_eq!(runners(&b, ADMIN_TOKEN).await.len(), 1);
    b.shutdown().await;
}

#[tokio::test]
async fn a_crashed_runners_attempts_are_rescued_and_retried() {
    // Runner a executes; runner b serves another queue only, but leads after a dies.
    let a = TestRunner::start_with(fast_leases).await;
    let t = a.tenant("acme").await;
    a.upload(&t, "spin", "spin").await;
    a.upload(&t, "flaky", "flaky").await;
    let run = a
        .enqueue(
            &t,
            "spin",
            json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 2}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    a.wait_for(&t, &id, Duration::from_secs(10), |r| {
        r["state"] == "running"
    })
    .await;
    // The tenant sees its in-flight attempt on the runner.
    let listed = runners(&a, &t.key).await;
    assert_eq!(
        listed[0]["in_flight"][0]["run_id"],
        id.as_str(),
        "{listed:#?}"
    );
    let b = a
        .second_runner(|s| {
            fast_leases(s);
            s.worker.queues = vec!["other".into()];
        })
        .await;
    a.crash();
    let run = b
        .wait_for(&t, &id, Duration::from_secs(10), |r| {
            r["attempts"][0]["outcome"] == "runner_lost"
        })
        .await;
    assert_eq!(run["attempts"][0]["outcome"], "runner_lost", "{run:#}");
    assert!(
        matches!(run["state"].as_str(), Some("retrying" | "enqueued")),
        "{run:#}"
    );
    // The rescue counted the lost attempt in the dashboard's rollup, once per bucket width,
    // under the lost runner; the run was not ended by it.
    let counted: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT width_s, attempts, runs_ended FROM run_stats
         WHERE outcome = 'runner_lost' ORDER BY width_s",
    )
    .fetch_all(b.store.pool())
    .await
    .unwrap();
    assert_eq!(counted, [(10, 1, 0), (3600, 1, 0), (86400, 1, 0)]);
    assert!(
        run["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"].as_str().unwrap_or("").contains("rescued")),
        "{run:#}"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn a_long_attempt_is_never_rescued_while_its_runner_lives() {
    let r = TestRunner::start_with(fast_leases).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "sleep", "sleep").await;
    // Runs for 2 s, over three times the 600 ms lease.
    let run = r
        .enqueue(&t, "sleep", json!({"timeout_ms": 2_000, "max_attempts": 1}))
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(outcomes(&run), ["timeout"], "{run:#}");
    r.shutdown().await;
}

/// A leader started without a worker still promotes delayed runs enqueued through another
/// runner as soon as they are due, not at its next slow poll.
#[tokio::test]
async fn a_leader_without_a_worker_wakes_for_delayed_runs() {
    let slow_poll = |s: &mut sandfire::config::Settings| {
        s.worker.poll_interval = Duration::from_secs(60);
    };
    let a = TestRunner::start_with(|s| {
        slow_poll(s);
        s.worker.enabled = false;
    })
    .await;
    let a_id = a.runner_id().to_string();
    wait_until(
        "the API-only runner leads",
        Duration::from_secs(5),
        || async {
            runners(&a, ADMIN_TOKEN)
                .await
                .iter()
                .any(|r| r["id"] == a_id.as_str() && r["leader"] == true)
        },
    )
    .await;
    let b = a.second_runner(slow_poll).await;
    let t = b.tenant("acme").await;
    b.upload(&t, "hello", "hello").await;
    let run = b
        .enqueue(
            &t,
            "hello",
            json!({"input": {"name": "later"}, "delay_ms": 300}),
        )
        .await;
    assert_eq!(run["state"], "scheduled");
    let started = Instant::now();
    let done = b
        .wait_for(
            &t,
            run["id"].as_str().unwrap(),
            Duration::from_secs(20),
            |r| r["state"] == "succeeded",
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "promoted long before the 60 s poll: {done}"
    );
    b.shutdown().await;
    a.shutdown().await;
}
