//! The hot path at the sizes users reach: continuation chains of 10,000 links (no trigger
//! recursion), batches of tens of thousands of members (linear, continuations exactly once),
//! bulk enqueue (all or nothing), fair claims across tenants, the history of a run whose
//! routine transitions are derived rather than stored, and single enqueues whose clients give
//! up mid-request.
//!
//! Sizes have knobs (`SANDFIRE_TEST_CHAIN`, `SANDFIRE_TEST_BATCH`) so a slow machine can shrink
//! them; the defaults are the sizes the issue names or close to them.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sandfire::config::RunLimits;
use sandfire::store::{After, RunInsertParams, Store};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Body, TestRunner, TestTenant, wait_until};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

async fn job_id(r: &TestRunner, t: &TestTenant, job: &str) -> (i64, i64, i32) {
    let tenant_id: i64 = sqlx::query_scalar(
        "SELECT tenant_id FROM api_keys WHERE hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&t.key)
    .fetch_one(r.store.pool())
    .await
    .unwrap();
    let (job_id, version): (i64, i32) =
        sqlx::query_as("SELECT id, current_version FROM jobs WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(job)
            .fetch_one(r.store.pool())
            .await
            .unwrap();
    (tenant_id, job_id, version)
}

/// Appends `links` continuations (each on its predecessor's success) after `head`; returns the
/// last link's id. Inserted through the store (one statement each, as the API would).
async fn chain(r: &TestRunner, t: &TestTenant, head: Uuid, links: usize) -> Uuid {
    let (tenant_id, job_id, version) = job_id(r, t, "noop").await;
    let mut parent = head;
    for _ in 0..links {
        let run = RunInsertParams {
            id: Uuid::now_v7(),
            tenant_id,
            job_id,
            version,
            options: RunLimits::default().default,
            input: json!({}),
            reason: "test chain".into(),
            due: None,
            after: Some(After {
                run: parent,
                on: "succeeded".into(),
                input_from_parent: false,
            }),
            job_row_version: None,
        };
        parent = r.store.run_insert(run).await.unwrap().id;
    }
    parent
}

#[tokio::test]
async fn cancelling_the_head_of_a_10000_link_chain_cancels_every_link_in_one_call() {
    let links = knob("SANDFIRE_TEST_CHAIN", 10_000);
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    // The head waits in a queue no runner serves.
    let head = r.enqueue(&t, "noop", json!({"queue": "nobody"})).await;
    let head_id: Uuid = id(&head).parse().unwrap();
    let last = chain(&r, &t, head_id, links).await;
    assert_eq!(r.run(&t, &last.to_string()).await["state"], "awaiting");

    let (status, body) = r
        .call(
            Method::POST,
            &format!("/v1/runs/{head_id}/cancel"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let awaiting = r
        .count("SELECT count(*) FROM runs WHERE state = 'awaiting'")
        .await;
    assert_eq!(
        awaiting, 0,
        "every link decided in the cancel's transaction"
    );
    let cancelled = r
        .count("SELECT count(*) FROM runs WHERE state = 'cancelled'")
        .await;
    assert_eq!(cancelled as usize, links + 1);
    let last = r.run(&t, &last.to_string()).await;
    assert_eq!(last["state"], "cancelled");
    assert!(
        last["error"].as_str().unwrap().contains("ended cancelled"),
        "{last:#}"
    );
    // The maintenance services keep working for everyone afterwards.
    let other = r.enqueue(&t, "noop", json!({})).await;
    assert_eq!(r.wait_terminal(&t, &id(&other)).await["state"], "succeeded");
    r.shutdown().await;
}

#[tokio::test]
async fn a_chain_runs_link_by_link_to_the_end() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    r.call(Method::POST, "/v1/queues/default/pause", Some(&t.key), None)
        .await;
    let head = r.enqueue(&t, "noop", json!({})).await;
    let last = chain(&r, &t, id(&head).parse().unwrap(), 300).await;
    r.call(
        Method::POST,
        "/v1/queues/default/resume",
        Some(&t.key),
        None,
    )
    .await;
    let last = r.wait_terminal(&t, &last.to_string()).await;
    assert_eq!(last["state"], "succeeded", "{last:#}");
    let succeeded = r
        .count("SELECT count(*) FROM runs WHERE state = 'succeeded'")
        .await;
    assert_eq!(succeeded, 301);
    r.shutdown().await;
}

#[tokio::test]
async fn a_big_batch_finishes_once_and_starts_its_continuations_once() {
    let members = knob("SANDFIRE_TEST_BATCH", 20_000);
    let r = TestRunner::start_with(|s| s.worker.slots = 8).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let runs: Vec<Value> = (0..members).map(|_| json!({"job": "noop"})).collect();
    let (status, batch) = r
        .call(
            Method::POST,
            "/v1/batches",
            Some(&t.key),
            Some(Body::Json(json!({
                "runs": runs,
                "then": [{"job": "noop", "on": "succeeded"},
                         {"job": "noop", "on": "failed"}],
            }))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let then: Vec<String> = batch["then"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let on_succeeded = r.wait_terminal(&t, &then[0]).await;
    assert_eq!(on_succeeded["state"], "succeeded");
    assert_eq!(on_succeeded["attempts"].as_array().unwrap().len(), 1);
    let on_failed = r.run(&t, &then[1]).await;
    assert_eq!(on_failed["state"], "cancelled");
    let (status, b) = r
        .call(
            Method::GET,
            &format!("/v1/batches/{}", batch["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b["counts"]["succeeded"], members, "{b:#}");
    assert_eq!(b["progress"], 100);
    assert!(b["finished_at"].is_string(), "{b:#}");
    let (pending, unsuccessful): (i32, i32) =
        sqlx::query_as("SELECT pending, unsuccessful FROM batches")
            .fetch_one(r.store.pool())
            .await
            .unwrap();
    assert_eq!((pending, unsuccessful), (0, 0));
    // Exactly one history entry says the continuation was started by the batch.
    let starts = r
        .count(
            "SELECT count(*) FROM run_events
             WHERE reason LIKE 'batch % finished' AND to_state = 'enqueued'",
        )
        .await;
    assert_eq!(starts, 1);
    r.shutdown().await;
}

#[tokio::test]
async fn bulk_enqueue_is_all_or_nothing_and_every_run_executes() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let bulk = |body: Value| {
        let r = &r;
        let key = t.key.clone();
        async move {
            r.call(Method::POST, "/v1/runs", Some(&key), Some(Body::Json(body)))
                .await
        }
    };
    let bad_cases = [
        (json!([]), "at least one run"),
        (json!([{"job": "noop"}, {"job": "nope"}]), "runs[1].job"),
        (
            json!([{"job": "noop"}, {"job": "noop", "max_attempts": 0}]),
            "runs[1].max_attempts",
        ),
        (
            json!([{"job": "noop", "after": {"run": Uuid::nil(), "on": "succeeded"}}]),
            "runs[0].after",
        ),
        (json!([{"job": "noop", "delay": "soon"}]), "runs[0].delay"),
        (json!({"job": "noop"}), "must be an array"),
    ];
    for (body, expected) in bad_cases {
        let (status, err) = bulk(body.clone()).await;
        assert!(status.is_client_error(), "{body}: {status} {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(r.count("SELECT count(*) FROM runs").await, 0);

    let runs: Vec<Value> = (0..2_000)
        .map(|i| json!({"job": "noop", "input": {"i": i}, "priority": (i % 3) as i16}))
        .collect();
    let (status, created) = bulk(Value::Array(runs)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["count"], 2_000);
    assert_eq!(created["ids"].as_array().unwrap().len(), 2_000);
    wait_until(
        "every bulk run succeeded",
        Duration::from_secs(60),
        || async {
            let left = r.count("SELECT count(*) FROM run_queue").await;
            (left == 0).then_some(())
        },
    )
    .await;
    assert_eq!(
        r.count("SELECT count(*) FROM runs WHERE state = 'succeeded'")
            .await,
        2_000
    );
    r.shutdown().await;
}

#[tokio::test]
async fn a_quiet_tenant_runs_at_the_next_freed_slot_despite_a_busy_tenants_backlog() {
    let r = TestRunner::start_with(|s| s.worker.slots = 2).await;
    let busy = r.tenant("busy").await;
    let quiet = r.tenant("quiet").await;
    r.upload(&busy, "sleep", "sleep").await;
    r.upload(&quiet, "noop", "noop").await;
    // The busy tenant fills both slots with long runs at the highest priority, 50 more queued.
    // The first slot frees after 1 s, the second after 3 s: the quiet tenant's run must take
    // the first one.
    let long =
        |ms: u64| json!({"job": "sleep", "timeout_ms": ms, "max_attempts": 1, "priority": 100});
    let mut runs = vec![long(1000)];
    runs.extend((0..51).map(|_| long(3000)));
    let (status, _) = r
        .call(
            Method::POST,
            "/v1/runs",
            Some(&busy.key),
            Some(Body::Json(Value::Array(runs))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mine = r.enqueue(&quiet, "noop", json!({})).await;
    let mine = r.wait_terminal(&quiet, &id(&mine)).await;
    assert_eq!(mine["state"], "succeeded");
    let started_mine = mine["attempts"][0]["started_at"]
        .as_str()
        .unwrap()
        .to_string();
    // Attempts are recorded when they end: wait for the busy runs that came after it.
    wait_until(
        "four busy attempts ended",
        Duration::from_secs(20),
        || async {
            let ended = r.count("SELECT count(*) FROM attempts").await;
            (ended >= 5).then_some(())
        },
    )
    .await;
    // Only the two runs that held the slots started before it.
    let busy_before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id
         JOIN tenants t ON t.id = r.tenant_id
         WHERE t.name = 'busy' AND a.started_at < $1::timestamptz",
    )
    .bind(&started_mine)
    .fetch_one(r.store.pool())
    .await
    .unwrap();
    let held_slots = 2;
    let timeline: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT t.name, a.started_at::text, a.finished_at::text, r.created_at::text
         FROM attempts a JOIN runs r ON r.id = a.run_id JOIN tenants t ON t.id = r.tenant_id
         ORDER BY a.started_at",
    )
    .fetch_all(r.store.pool())
    .await
    .unwrap();
    assert!(
        busy_before <= held_slots,
        "{busy_before} busy runs started before the quiet tenant's run (started {started_mine}): \
         {timeline:#?}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn derived_and_stored_history_read_as_one() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "flaky", "flaky").await;
    r.upload(&t, "noop", "noop").await;
    let plain = r.enqueue(&t, "noop", json!({})).await;
    let plain = r.wait_terminal(&t, &id(&plain)).await;
    let path: Vec<(Value, Value)> = plain["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect();
    assert_eq!(
        path,
        [
            (Value::Null, json!("enqueued")),
            (json!("enqueued"), json!("running")),
            (json!("running"), json!("succeeded")),
        ]
    );
    assert_eq!(plain["history"][0]["reason"], "enqueued via API");
    // Nothing of that plain success was stored: all three entries are derived.
    let stored = r.count("SELECT count(*) FROM run_events").await;
    assert_eq!(stored, 0);
    // Every attempt of a run shows up, and starts before it ends.
    let a = &plain["attempts"][0];
    assert!(a["started_at"].as_str() <= a["finished_at"].as_str(), "{a}");
    r.shutdown().await;
}

#[tokio::test]
async fn claims_share_among_tenants_by_weight() {
    let r = TestRunner::start().await;
    let a = r.tenant("heavy").await;
    let b = r.tenant("light").await;
    for t in [&a, &b] {
        r.upload(t, "noop", "noop").await;
        let runs: Vec<Value> = (0..50)
            .map(|_| json!({"job": "noop", "queue": "nobody"}))
            .collect();
        let (status, _) = r
            .call(
                Method::POST,
                "/v1/runs",
                Some(&t.key),
                Some(Body::Json(Value::Array(runs))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let admin = crate::support::ADMIN_TOKEN;
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/tenants/heavy/weight",
            Some(admin),
            Some(Body::Json(json!({"weight": 3}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = r
        .call(
            Method::PUT,
            "/v1/tenants/heavy/weight",
            Some(admin),
            Some(Body::Json(json!({"weight": 0}))),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let claimed = r
        .store
        .run_claim(sandfire::store::RunClaimParams {
            runner_id: Uuid::now_v7(),
            queue: "nobody".into(),
            limit: 8,
            lease_ms: 30_000,
            exclude_tenants: Vec::new(),
            after_tenant: 0,
            default_max_running: None,
        })
        .await
        .unwrap();
    let heavy_id: i64 = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'heavy'")
        .fetch_one(r.store.pool())
        .await
        .unwrap();
    let heavy = claimed.iter().filter(|c| c.tenant_id == heavy_id).count();
    assert_eq!((heavy, claimed.len() - heavy), (6, 2), "3:1 of 8");
    // A tenant the runner already holds runs of can be left out (the top-up claim).
    let only_light = r
        .store
        .run_claim(sandfire::store::RunClaimParams {
            runner_id: Uuid::now_v7(),
            queue: "nobody".into(),
            limit: 8,
            lease_ms: 30_000,
            exclude_tenants: vec![heavy_id],
            after_tenant: 0,
            default_max_running: None,
        })
        .await
        .unwrap();
    assert_eq!(only_light.len(), 8);
    assert!(only_light.iter().all(|c| c.tenant_id != heavy_id));
    r.shutdown().await;
}

/// Hostile test 1 of the security review: a tenant hangs a 1,000-link chain under a run, and
/// the runner executing it (and another tenant's run) dies. The rescue fails the head, cancels
/// every link in one statement, and still rescues the other tenant's run: no deep chain can
/// stall rescue for everyone.
#[tokio::test]
async fn a_deep_chain_under_a_lost_run_never_stalls_another_tenants_rescue() {
    let fast = |s: &mut sandfire::config::Settings| {
        s.worker.heartbeat = Duration::from_millis(100);
        s.worker.lease = Duration::from_millis(2_000);
    };
    let links = knob("SANDFIRE_TEST_CHAIN_RESCUE", 1000);
    let r = TestRunner::start_with(fast).await;
    let a = r.tenant("alpha").await;
    let b = r.tenant("beta").await;
    for t in [&a, &b] {
        r.upload(t, "spin", "spin").await;
        r.upload(t, "noop", "noop").await;
    }
    let long = json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 1});
    let head = r.enqueue(&a, "spin", long.clone()).await;
    let head_id = Uuid::parse_str(&id(&head)).unwrap();
    let last = chain(&r, &a, head_id, links).await;
    let theirs = r
        .enqueue(
            &b,
            "spin",
            json!({"timeout_ms": 300_000, "fuel": 10_000_000_000_000u64, "max_attempts": 2}),
        )
        .await;
    for (t, run) in [(&a, id(&head)), (&b, id(&theirs))] {
        r.wait_for(t, &run, Duration::from_secs(20), |r| {
            r["state"] == "running"
        })
        .await;
    }
    let rescuer = r
        .second_runner(|s| {
            fast(s);
            s.worker.queues = vec!["other".into()];
        })
        .await;
    r.crash();
    let head = rescuer
        .wait_for(&a, &id(&head), Duration::from_secs(20), |r| {
            r["state"] == "failed"
        })
        .await;
    assert_eq!(head["attempts"][0]["outcome"], "runner_lost", "{head:#}");
    let last = rescuer.run(&a, &last.to_string()).await;
    assert_eq!(
        last["state"], "cancelled",
        "the chain's last link: {last:#}"
    );
    let cancelled = rescuer
        .count("SELECT count(*) FROM runs WHERE state = 'cancelled'")
        .await;
    assert_eq!(cancelled, links as i64, "every link cancelled");
    let theirs = rescuer
        .wait_for(&b, &id(&theirs), Duration::from_secs(20), |r| {
            r["attempts"][0]["outcome"] == "runner_lost"
        })
        .await;
    assert!(
        matches!(theirs["state"].as_str(), Some("retrying" | "enqueued")),
        "the other tenant's run was rescued for another attempt: {theirs:#}"
    );
    rescuer.shutdown().await;
}

/// After a burst, the leader vacuums the hot table `run_queue` itself (autovacuum may wait a
/// minute), so claims stop stepping over the dead entries of the runs that went through it.
#[tokio::test]
async fn the_leader_vacuums_the_hot_table_after_a_burst() {
    let r = TestRunner::start_with(|s| {
        s.retention.vacuum_interval = Duration::from_millis(100);
        s.retention.vacuum_dead_rows = 500;
    })
    .await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let vacuums = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'run_queue'::regclass",
        )
        .fetch_one(r.store.pool())
        .await
        .unwrap();
        n
    };
    let before = vacuums().await;
    let body = json!(
        (0..2_000)
            .map(|_| json!({"job": "noop"}))
            .collect::<Vec<_>>()
    );
    let (status, created) = r
        .call(
            Method::POST,
            "/v1/runs",
            Some(&t.key),
            Some(Body::Json(body)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let last = created["ids"][1_999].as_str().unwrap().to_string();
    r.wait_terminal(&t, &last).await;
    // The burst left thousands of dead rows; the leader brings them under its threshold.
    let dead = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'run_queue'::regclass",
        )
        .fetch_one(r.store.pool())
        .await
        .unwrap();
        n
    };
    let start = std::time::Instant::now();
    while vacuums().await <= before || dead().await > 500 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "run_queue still holds {} dead rows after 2,000 runs went through it ({} vacuums)",
            dead().await,
            vacuums().await - before
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.shutdown().await;
}

/// Single enqueues whose clients give up mid-request (a lone request writes its insert from
/// its own task, on the group commit's held connection) never mix up the answers of the
/// others: each waiting client gets its own run back, alone or in a group, and reads it back
/// the same; the group commit keeps working afterwards.
#[tokio::test]
async fn enqueues_abandoned_mid_request_never_cross_answers() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let impatient = reqwest::Client::new();
    let url = format!("{}/v1/jobs/hello/runs", r.base);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..4 {
        let (key, impatient, url) = (t.key.clone(), impatient.clone(), url.clone());
        let patient = reqwest::Client::new();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for i in 0..60 {
                let n = client * 1000 + i;
                // Gives up after 0.1-0.8 ms: before, while and after its insert is on the wire.
                let _ = impatient
                    .post(&url)
                    .timeout(Duration::from_micros(100 + (i as u64 % 8) * 100))
                    .bearer_auth(&key)
                    .json(&json!({"input": {"n": -n}}))
                    .send()
                    .await;
                let run: Value = patient
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"input": {"n": n}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(run["input"]["n"], n, "{run}");
                mine.push((id(&run), n));
            }
            mine
        });
    }
    let mut answered = Vec::new();
    while let Some(mine) = tasks.join_next().await {
        answered.extend(mine.unwrap());
    }
    assert_eq!(answered.len(), 4 * 60);
    for (run_id, n) in &answered {
        let run = r.run(&t, run_id).await;
        assert_eq!(run["input"]["n"], *n, "{run}");
    }
    let after = r.enqueue(&t, "hello", json!({"input": {"n": 1}})).await;
    assert_eq!(after["input"]["n"], 1);
}
