//! Execution end to end: each example job through the API, a real runner and a real sandbox,
//! with its outcome classified and every attempt recorded.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{TestRunner, outcomes};

#[tokio::test]
async fn hello_succeeds_with_its_output_and_log_lines() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let run = r
        .enqueue(&t, "hello", json!({"input": {"name": "Ada"}}))
        .await;
    assert_eq!(run["state"], "enqueued");
    let id = run["id"].as_str().unwrap();

    let run = r.wait_terminal(&t, id).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert!(
        run["output"].to_string().contains("Hello, Ada"),
        "output: {}",
        run["output"]
    );
    assert_eq!(outcomes(&run), ["ok"]);
    let attempt = &run["attempts"][0];
    assert!(attempt["fuel_used"].as_i64().unwrap() > 0);
    assert!(attempt["peak_memory"].as_i64().unwrap() > 0);
    assert!(attempt["duration_ms"].as_i64().is_some());
    let states: Vec<_> = run["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["enqueued", "running", "succeeded"]);

    let lines = r.logs(&t, id).await;
    let greeting = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap_or("").contains("Ada"))
        .unwrap_or_else(|| panic!("no greeting in the logs: {lines:?}"));
    assert_eq!(greeting["attempt"], 1);
    assert_eq!(greeting["level"], "info");
    assert!(greeting["at"].as_str().is_some());
    r.shutdown().await;
}

#[tokio::test]
async fn flaky_succeeds_on_attempt_n_with_every_attempt_recorded() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "flaky", "flaky").await;
    let run = r
        .enqueue(
            &t,
            "flaky",
            json!({"input": {"succeed_on_attempt": 3}, "max_attempts": 5, "backoff_base_ms": 5}),
        )
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(outcomes(&run), ["error", "error", "ok"]);
    assert_eq!(run["attempt"], 3);
    let numbers: Vec<_> = run["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(
        run["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("attempt")
    );
    let retries = run["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "retrying")
        .count();
    assert_eq!(retries, 2, "history: {:#}", run["history"]);
    r.shutdown().await;
}

#[tokio::test]
async fn spin_runs_out_of_fuel_on_every_attempt_then_fails() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "spin", "spin").await;
    let fuel = 20_000_000u64;
    let run = r
        .enqueue(
            &t,
            "spin",
            json!({"fuel": fuel, "max_attempts": 3, "backoff_base_ms": 1}),
        )
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["out_of_fuel"; 3]);
    for attempt in run["attempts"].as_array().unwrap() {
        assert_eq!(attempt["fuel_used"].as_u64().unwrap(), fuel, "{attempt}");
    }
    r.shutdown().await;
}

#[tokio::test]
async fn hog_is_stopped_at_its_memory_limit_and_classified_as_such() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hog", "hog").await;
    let run = r
        .enqueue(&t, "hog", json!({"memory_mb": 16, "max_attempts": 1}))
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["memory_limit"]);
    let peak = run["attempts"][0]["peak_memory"].as_u64().unwrap();
    assert!(peak <= 16 * 1024 * 1024, "peak {peak} over the cap");
    assert!(
        peak > 8 * 1024 * 1024,
        "peak {peak}: the hog should get close to the cap"
    );
    r.shutdown().await;
}

/// Pooled memory is reused between runs: a run in the slot another run just dirtied must find
/// nothing of it, in its static data or in memory it grows. With one worker slot the pool
/// has one instance slot, and wasmtime's allocator gives a module the memory slot it used
/// last, so the runs follow each other in the same memory.
#[tokio::test]
async fn a_run_finds_nothing_of_the_run_before_it_in_the_same_slot() {
    let r = TestRunner::start_with(|s| s.worker.slots = 1).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hog", "hog").await;
    for i in 0..3 {
        let run = r
            .enqueue(
                &t,
                "hog",
                json!({"input": {"residue": true}, "max_attempts": 1}),
            )
            .await;
        let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "succeeded", "run {i}: {run:#}");
        assert_eq!(
            run["output"],
            json!({"dirty_static": 0, "dirty_grown": 0}),
            "run {i} saw bytes an earlier run wrote"
        );
    }
    r.shutdown().await;
}

#[tokio::test]
async fn panic_is_classified_as_a_panic_with_its_message() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "panic", "panic").await;
    let run = r.enqueue(&t, "panic", json!({"max_attempts": 1})).await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed");
    assert_eq!(outcomes(&run), ["panic"]);
    let error = run["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("on purpose"),
        "panic message missing: {error}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn sleep_ends_on_the_timeout() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "sleep", "sleep").await;
    let run = r
        .enqueue(&t, "sleep", json!({"timeout_ms": 200, "max_attempts": 1}))
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed");
    assert_eq!(outcomes(&run), ["timeout"]);
    let took = run["attempts"][0]["duration_ms"].as_i64().unwrap();
    assert!(took >= 200, "ended before its timeout: {took} ms");
    r.shutdown().await;
}

#[tokio::test]
async fn report_reports_progress_and_a_result() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "report", "report").await;
    let run = r
        .enqueue(&t, "report", json!({"input": {"n": 100000}}))
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    // There are 9592 primes below 100,000.
    assert_eq!(run["output"]["primes"], 9592, "{}", run["output"]);
    assert_eq!(run["progress"], 100);
    r.shutdown().await;
}

#[tokio::test]
async fn hello_runs_complete_while_spin_hog_and_sleep_occupy_slots() {
    let r = TestRunner::start_with(|s| s.worker.slots = 6).await;
    let t = r.tenant("acme").await;
    for job in ["spin", "hog", "sleep", "hello"] {
        r.upload(&t, job, job).await;
    }
    let long = json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 1});
    let spin = r.enqueue(&t, "spin", long.clone()).await;
    let sleep = r.enqueue(&t, "sleep", long.clone()).await;
    let hog = r
        .enqueue(
            &t,
            "hog",
            json!({"memory_mb": 512, "timeout_ms": 300_000, "max_attempts": 1}),
        )
        .await;
    for id in [&spin, &sleep] {
        r.wait_for(
            &t,
            id["id"].as_str().unwrap(),
            Duration::from_secs(10),
            |run| run["state"] == "running",
        )
        .await;
    }
    let mut hellos = Vec::new();
    for i in 0..3 {
        hellos.push(
            r.enqueue(&t, "hello", json!({"input": {"name": format!("n{i}")}}))
                .await,
        );
    }
    for hello in &hellos {
        let run = r.wait_terminal(&t, hello["id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "succeeded", "{run:#}");
    }
    // The API answered throughout, and the long runs were still going when hello finished.
    for id in [&spin, &sleep] {
        let run = r.run(&t, id["id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "running", "{run:#}");
    }
    let (status, _) = r.call(Method::GET, "/healthz", None, None).await;
    assert!(status.is_success());
    let _ = hog;
    r.shutdown().await;
}

#[tokio::test]
async fn a_non_retryable_error_fails_the_run_at_once() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    // hello's input type needs a name: the SDK fails such a run without retrying.
    let run = r
        .enqueue(
            &t,
            "hello",
            json!({"input": {"nom": "Ada"}, "max_attempts": 5}),
        )
        .await;
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["error"]);
    assert!(
        run["error"].as_str().unwrap().contains("input"),
        "the error should say the input did not match: {run:#}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn shutdown_hands_running_attempts_back_without_using_an_attempt() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "spin", "spin").await;
    let run = r
        .enqueue(
            &t,
            "spin",
            json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 1}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    r.wait_for(&t, &id, Duration::from_secs(10), |run| {
        run["state"] == "running"
    })
    .await;
    // Claimed is not yet started (the component may still be loading): wait for the guest to
    // run, or shutdown rightly releases the run without an attempt.
    crate::support::wait_until("the guest runs", Duration::from_secs(30), || async {
        (r.sandbox().instances_in_use() == 1).then_some(())
    })
    .await;
    let store = r.store.clone();
    let tenant_id: i64 = sqlx::query_scalar("SELECT tenant_id FROM runs WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    r.shutdown().await;

    use sandfire::store::Store;
    let detail = store
        .run_get(tenant_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.run.state, sandfire::model::RunState::Enqueued);
    assert_eq!(
        detail.run.max_attempts, 2,
        "the interrupted attempt is refunded"
    );
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(
        detail.attempts[0].outcome,
        Some(sandfire::model::Outcome::Cancelled)
    );
}

/// `tests/fixtures/hello-job-0.1.0.wasm` is `examples-wasm/hello` as built before the WIT
/// package went to 0.1.1 (commit 96fa6b8): it imports `sandfire:job/host@0.1.0`. A runner
/// serving 0.1.1 keeps accepting and running it (the component linker matches semver-
/// compatible versions).
#[tokio::test]
async fn a_component_built_against_the_0_1_0_contract_still_uploads_and_runs() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hello-job-0.1.0.wasm");
    let bytes = std::fs::read(&fixture).expect("the 0.1.0 fixture");
    assert!(
        bytes
            .windows(b"sandfire:job/host@0.1.0".len())
            .any(|w| w == b"sandfire:job/host@0.1.0"),
        "the fixture must import the 0.1.0 host interface"
    );
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let (status, body) = r
        .call(
            reqwest::Method::PUT,
            "/v1/jobs/old-hello",
            Some(&t.key),
            Some(crate::support::Body::Raw(bytes, None)),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let run = r
        .enqueue(&t, "old-hello", json!({"input": {"name": "Ada"}}))
        .await;
    let id = run["id"].as_str().unwrap();
    let run = r.wait_terminal(&t, id).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"]["greeting"], "Hello, Ada!");
    let lines = r.logs(&t, id).await;
    assert!(
        lines.iter().any(|l| l["message"] == "greeting Ada"),
        "{lines:#?}"
    );
    r.shutdown().await;
}
