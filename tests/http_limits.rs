//! The HTTP server's limits hold against hostile clients: slow headers and slow bodies are cut
//! off, oversized heads get 431, list responses stay within their byte budget and say where to
//! continue, NUL characters and huge names get a clean 4xx without database text, overload
//! gets `503 overloaded`, and — the point of it all — no flood of requests can cost a running
//! attempt its lease (the worker has a database pool of its own).
//!
//! Every limit is set short in these tests (hundreds of milliseconds), so nothing sleeps long.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ADMIN_TOKEN, Body, TestRunner, outcomes, wait_until};

/// Words of PostgreSQL's own error texts: none may reach a client.
const DATABASE_WORDS: [&str; 7] = [
    "jsonb",
    "Unicode escape",
    "SQLSTATE",
    "violates",
    "constraint",
    "relation",
    "invalid byte sequence",
];

fn assert_no_database_text(body: &Value) {
    let text = body.to_string();
    for word in DATABASE_WORDS {
        assert!(!text.contains(word), "database text {word:?} in {text}");
    }
}

async fn connect(r: &TestRunner) -> TcpStream {
    TcpStream::connect(r.base.trim_start_matches("http://"))
        .await
        .expect("connecting to the runner")
}

/// Writes `first`, then `trickle` every 50 ms, until the server closes the connection. Returns
/// how long that took and what the server sent; panics if it stays open for `within`.
async fn trickle_until_closed(
    stream: TcpStream,
    first: &[u8],
    trickle: &[u8],
    within: Duration,
) -> (Duration, String) {
    let start = Instant::now();
    let (mut read, mut write) = stream.into_split();
    write.write_all(first).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    loop {
        assert!(
            start.elapsed() < within,
            "the server kept a trickling client for {within:?}"
        );
        tokio::select! {
            n = read.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            },
            _ = ticker.tick() => {
                // A write error means the server is gone too; the read then ends.
                let _ = write.write_all(trickle).await;
            }
        }
    }
    (
        start.elapsed(),
        String::from_utf8_lossy(&received).into_owned(),
    )
}

/// Sends one raw request and reads until the server closes; returns what it sent.
async fn raw_request(r: &TestRunner, request: &[u8]) -> String {
    let mut stream = connect(r).await;
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn slow_headers_are_cut_off_at_the_header_timeout() {
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.header_timeout = Duration::from_millis(300);
    })
    .await;
    let stream = connect(&r).await;
    let (took, _) = trickle_until_closed(
        stream,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"X-Slow: 1\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        took >= Duration::from_millis(250),
        "closed before the timeout ({took:?}): the test proves nothing"
    );
    assert!(
        took < Duration::from_secs(2),
        "closed {took:?} after connecting"
    );
    // A prompt client on the same server is served.
    let (status, body) = r.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_slow_body_is_answered_408_at_the_body_timeout() {
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.body_timeout = Duration::from_millis(300);
    })
    .await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let head = format!(
        "POST /v1/jobs/hello/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"input\": ",
        t.key
    );
    let (took, response) = trickle_until_closed(
        connect(&r).await,
        head.as_bytes(),
        b" ",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 408"),
        "expected 408, got {response:?}"
    );
    assert!(response.contains("request_timeout"), "{response}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "closed {took:?} after connecting"
    );
    // Nothing was enqueued.
    let (_, list) = r.call(Method::GET, "/v1/runs", Some(&t.key), None).await;
    assert_eq!(list["runs"].as_array().map(Vec::len), Some(0), "{list}");
    r.shutdown().await;
}

#[tokio::test]
async fn headers_over_16_kib_get_431_and_smaller_ones_are_served() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let request = |value_len: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(value_len)
        )
    };
    let response = raw_request(&r, request(17 * 1024).as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "a 17 KiB header: expected 431, got {:?}",
        response.lines().next()
    );
    let response = raw_request(&r, request(15 * 1024).as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "a 15 KiB header: expected 200, got {:?}",
        response.lines().next()
    );
    r.shutdown().await;
}

#[tokio::test]
async fn a_log_page_of_control_characters_stays_within_the_budget_and_continues() {
    const BUDGET: usize = 512 * 1024;
    const LINES: i64 = 300;
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.response_budget_bytes = BUDGET;
    })
    .await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let run = r
        .enqueue(&t, "hello", json!({"input": {"name": "x"}}))
        .await;
    let id: uuid::Uuid = run["id"].as_str().unwrap().parse().unwrap();
    // 300 lines of 8000 × \x01: each escapes to 48 KB of JSON, 14 MB for the lot.
    sqlx::query(
        "INSERT INTO logs (run_id, attempt, at, level, message, fields)
         SELECT $1, 1, now(), 'info', repeat(chr(1), 8000), '{}'::jsonb
         FROM generate_series(1, $2)",
    )
    .bind(id)
    .bind(LINES)
    .execute(r.store.pool())
    .await
    .unwrap();

    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    let mut pages = 0;
    loop {
        let path = match after {
            None => format!("/v1/runs/{id}/logs?limit=10000"),
            Some(a) => format!("/v1/runs/{id}/logs?limit=10000&after={a}"),
        };
        let resp = r
            .http
            .get(format!("{}{path}", r.base))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.bytes().await.unwrap();
        assert!(
            bytes.len() <= BUDGET,
            "page {pages} is {} bytes, over the {BUDGET} budget",
            bytes.len()
        );
        let page: Value = serde_json::from_slice(&bytes).unwrap();
        let lines = page["lines"].as_array().unwrap();
        assert!(!lines.is_empty() || page["next_after"].is_null(), "{page}");
        for line in lines {
            assert_eq!(line["message"].as_str().unwrap().len(), 8000);
            seen.push(line["id"].as_i64().unwrap());
        }
        pages += 1;
        if pages == 1 {
            assert_eq!(page["truncated"], true, "the first page hit the budget");
        }
        match page["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 200, "pagination does not end");
    }
    assert!(
        pages > 1,
        "one page held everything: the budget did nothing"
    );
    assert_eq!(seen.len() as i64, LINES, "every line exactly once");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "lines in order");
    r.shutdown().await;
}

/// A JSON-safe string of `len` characters that compresses poorly (so the database stores it
/// large, not as a few compressed bytes).
fn noisy(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[tokio::test]
async fn run_lists_leave_big_inputs_out_and_stop_at_the_budget() {
    const BUDGET: usize = 16 * 1024;
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.response_budget_bytes = BUDGET;
    })
    .await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    // 20 runs with ~1 MiB inputs (half compressible, half not) and 30 small ones.
    let mut entries = Vec::new();
    for i in 0..20u64 {
        let blob = if i % 2 == 0 {
            "x".repeat(1024 * 1024)
        } else {
            noisy(1024 * 1024, i)
        };
        entries.push(json!({"job": "hello", "input": {"name": blob}}));
    }
    for i in 0..30 {
        entries.push(json!({"job": "hello", "input": {"name": format!("small-{i}")}}));
    }
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/runs",
            Some(&t.key),
            Some(Body::Json(Value::Array(entries))),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");

    let mut ids = Vec::new();
    let mut truncated_inputs = 0;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/v1/runs?limit=500".to_string(),
            Some(c) => format!("/v1/runs?limit=500&cursor={c}"),
        };
        let resp = r
            .http
            .get(format!("{}{path}", r.base))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.bytes().await.unwrap();
        assert!(
            bytes.len() <= BUDGET,
            "a page of {} bytes, over the budget",
            bytes.len()
        );
        let page: Value = serde_json::from_slice(&bytes).unwrap();
        for run in page["runs"].as_array().unwrap() {
            ids.push(run["id"].as_str().unwrap().to_string());
            if run["input_truncated"] == true {
                assert!(run["input"].is_null(), "{run}");
                truncated_inputs += 1;
            } else {
                assert!(
                    run["input"]["name"].as_str().unwrap().starts_with("small-"),
                    "a big input in a list"
                );
            }
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    assert!(pages > 1, "the budget never cut a page");
    assert_eq!(ids.len(), 50, "every run exactly once");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 50);
    assert_eq!(truncated_inputs, 20);
    // The run itself still carries its full input.
    let big = r.run(&t, &ids[ids.len() - 1]).await;
    assert_eq!(big["input"]["name"].as_str().unwrap().len(), 1024 * 1024);
    r.shutdown().await;
}

#[tokio::test]
async fn nul_characters_and_huge_names_get_a_clean_4xx() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let key = Some(t.key.as_str());
    let cases: Vec<(Method, String, Option<Value>, Option<&str>)> = vec![
        (
            Method::POST,
            "/v1/jobs/hello/runs".into(),
            Some(json!({"input": {"name": "a\u{0}b"}})),
            key,
        ),
        (
            Method::POST,
            "/v1/jobs/hello/runs".into(),
            Some(json!({"input": {"na\u{0}me": "x"}})),
            key,
        ),
        (
            Method::POST,
            "/v1/jobs/hello/runs".into(),
            Some(json!({"input": {}, "idempotency_key": "k\u{0}"})),
            key,
        ),
        (
            Method::POST,
            "/v1/runs".into(),
            Some(json!([{"job": "hello", "input": ["\u{0}"]}])),
            key,
        ),
        (
            Method::POST,
            "/v1/batches".into(),
            Some(json!({"runs": [{"job": "hello", "input": "\u{0}"}]})),
            key,
        ),
        (
            Method::PUT,
            "/v1/schedules/nightly".into(),
            Some(json!({"job": "hello", "cron": "@daily", "input": "\u{0}"})),
            key,
        ),
        (
            Method::PUT,
            "/v1/schedules/nightly".into(),
            Some(json!({"job": "hel\u{0}lo", "cron": "@daily"})),
            key,
        ),
        (
            Method::POST,
            "/v1/jobs/hel%00lo/runs".into(),
            Some(json!({"input": {}})),
            key,
        ),
        (Method::GET, "/v1/runs?job=hel%00lo".into(), None, key),
        (Method::GET, "/v1/jobs/hel%00lo".into(), None, key),
        (Method::POST, "/v1/queues/a%00/pause".into(), None, key),
        (
            Method::POST,
            format!("/v1/jobs/{}/runs", "a".repeat(10_000)),
            Some(json!({"input": {}})),
            key,
        ),
        (
            Method::PUT,
            format!("/v1/schedules/{}", "a".repeat(10_000)),
            Some(json!({"job": "hello", "cron": "@daily"})),
            key,
        ),
        (
            Method::PUT,
            "/v1/schedules/nightly".into(),
            Some(json!({"job": "a".repeat(10_000), "cron": "@daily"})),
            key,
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            Some(json!({"name": "a\u{0}"})),
            Some(ADMIN_TOKEN),
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            Some(json!({"name": "a".repeat(10_000)})),
            Some(ADMIN_TOKEN),
        ),
    ];
    for (method, path, body, auth) in cases {
        let shown = format!("{method} {}", &path[..path.len().min(60)]);
        let (status, resp) = r.call(method, &path, auth, body.map(Body::Json)).await;
        assert!(status.is_client_error(), "{shown}: {status} {resp}");
        assert!(
            resp["error"]["message"].as_str().is_some(),
            "{shown}: no error message: {resp}"
        );
        assert_no_database_text(&resp);
    }
    // The NUL input says what is wrong.
    let (_, resp) = r
        .call(
            Method::POST,
            "/v1/jobs/hello/runs",
            key,
            Some(Body::Json(json!({"input": "\u{0}"}))),
        )
        .await;
    assert!(
        resp["error"]["message"].as_str().unwrap().contains("NUL"),
        "{resp}"
    );
    // Nothing was written.
    let (_, list) = r.call(Method::GET, "/v1/runs", key, None).await;
    assert_eq!(list["runs"].as_array().map(Vec::len), Some(0), "{list}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_value_the_database_refuses_is_worded_by_us() {
    use sandfire::store::{RunInsertParams, Store, StoreError};
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    // Straight to the store, past the API's checks: the database's words stay in the log.
    let tenant_id: i64 = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'acme'")
        .fetch_one(r.store.pool())
        .await
        .unwrap();
    let job_id: i64 = sqlx::query_scalar("SELECT id FROM jobs WHERE name = 'hello'")
        .fetch_one(r.store.pool())
        .await
        .unwrap();
    let err = r
        .store
        .run_insert(RunInsertParams {
            id: uuid::Uuid::now_v7(),
            tenant_id,
            job_id,
            version: 1,
            options: sandfire::config::RunLimits::default().default,
            input: json!({"name": "a\u{0}"}),
            reason: "test".into(),
            due: None,
            after: None,
            job_row_version: None,
        })
        .await
        .expect_err("the database refuses NUL in jsonb");
    let StoreError::Invalid(message) = err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(message.contains("NUL"), "{message}");
    assert_no_database_text(&json!(message));
    r.shutdown().await;
}

#[tokio::test]
async fn requests_beyond_the_inflight_cap_get_503_overloaded() {
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.max_inflight_requests = 1;
    })
    .await;
    let t = r.tenant("acme").await;
    // One request in flight, waiting for a body that does not come.
    let mut held = connect(&r).await;
    let head = format!(
        "POST /v1/jobs/hello/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        t.key
    );
    held.write_all(head.as_bytes()).await.unwrap();
    let resp = wait_until(
        "the held request occupies the only slot",
        Duration::from_secs(5),
        || async {
            let resp = r
                .http
                .get(format!("{}/healthz", r.base))
                .send()
                .await
                .unwrap();
            (resp.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(resp)
        },
    )
    .await;
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    // The held request ends: the slot is free again.
    drop(held);
    wait_until("the slot is free", Duration::from_secs(5), || async {
        let (status, _) = r.call(Method::GET, "/healthz", None, None).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    r.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.max_connections = 2;
    })
    .await;
    // Two open connections take both permits (one request each, kept alive).
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&r).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        open.push(c);
    }
    let third = tokio::spawn({
        let (http, base) = (reqwest::Client::new(), r.base.clone());
        async move {
            let start = Instant::now();
            let resp = http.get(format!("{base}/healthz")).send().await.unwrap();
            (resp.status(), start.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection was served");
    drop(open.pop());
    let (status, waited) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(waited >= Duration::from_millis(300));
    r.shutdown().await;
}

#[tokio::test]
async fn healthz_reuses_its_answer_within_the_cache_interval() {
    let r = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.health_cache = Duration::from_secs(3600);
    })
    .await;
    let (status, _) = r.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    // The API's pool is gone: a database check would fail, the cached answer does not.
    r.store.pool().close().await;
    for _ in 0..20 {
        let (status, body) = r.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let fresh = TestRunner::start_with(|s| {
        s.worker.enabled = false;
        s.http.health_cache = Duration::ZERO;
    })
    .await;
    fresh.store.pool().close().await;
    let (status, _) = fresh.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "without the cache the check runs"
    );
    fresh.shutdown().await;
    r.shutdown().await;
}

#[tokio::test]
async fn tenants_see_no_hosts_or_versions_of_runners() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    // The runner registers itself in the background as it starts: wait for its row.
    let body =
        crate::support::wait_until("the runner registers", Duration::from_secs(30), || async {
            let (status, body) = r.call(Method::GET, "/v1/runners", Some(&t.key), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["runners"][0].is_object().then_some(body)
        })
        .await;
    let runner = &body["runners"][0];
    assert!(runner["id"].is_string() && runner["slots"].is_number() && runner["queues"].is_array());
    assert!(runner["heartbeat_at"].is_string(), "{runner}");
    for hidden in ["host", "version", "leader", "started_at"] {
        assert!(
            runner.get(hidden).is_none(),
            "{hidden} shown to a tenant: {runner}"
        );
    }
    let (_, body) = r
        .call(Method::GET, "/v1/runners", Some(ADMIN_TOKEN), None)
        .await;
    assert!(body["runners"][0]["host"].is_string(), "{body}");
    assert!(body["runners"][0]["version"].is_string(), "{body}");
    r.shutdown().await;
}

/// The API's database pool exhausted (every connection held) and a flood of concurrent requests
/// (health checks, bad keys) at once: running attempts keep their leases, because the
/// worker's heartbeats use a pool of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_flood_never_costs_a_running_attempt_its_lease() {
    const RUNS: usize = 4;
    // Clients and the connections they are served on share this process's file descriptors
    // with every test running beside this one: a flood past the limit fails them all (EMFILE)
    // and tests nothing. A quarter of the limit, and a connection cap below it, so the cap
    // still turns clients away.
    let fds = sandfire::server::raise_open_file_limit().unwrap_or(8192);
    let flood_size = (fds / 4).clamp(64, 2000) as usize;
    let r = TestRunner::start_with(|s| {
        s.http.max_connections = flood_size / 2;
        s.worker.heartbeat = Duration::from_millis(100);
        // As in the cluster tests: 20 heartbeats of margin, so a loaded machine does not lose
        // a healthy runner's lease.
        s.worker.lease = Duration::from_millis(2_000);
        // Idle keep-alive connections of the flood free their permits soon after it stops.
        s.http.header_timeout = Duration::from_millis(1_000);
    })
    .await;
    let t = r.tenant("acme").await;
    r.upload(&t, "sleep", "sleep").await;
    // Each attempt sleeps until its 4.5 s timeout: over twice its lease, and the API pool's
    // 5 s acquire timeout would cost the lease were the pool shared.
    let mut ids = Vec::new();
    for _ in 0..RUNS {
        let run = r
            .enqueue(&t, "sleep", json!({"timeout_ms": 4_500, "max_attempts": 1}))
            .await;
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        r.wait_for(&t, id, Duration::from_secs(10), |run| {
            run["state"] == "running"
        })
        .await;
    }
    // A connection of its own to watch the runs while the API cannot read the database.
    use sqlx::Connection as _;
    let mut watch = sqlx::PgConnection::connect_with(r.store.pool().connect_options().as_ref())
        .await
        .unwrap();
    // Exhaust the API's pool: with one shared pool, this alone made lease renewals time out.
    let mut held = Vec::new();
    while let Ok(Ok(conn)) =
        tokio::time::timeout(Duration::from_millis(200), r.store.pool().acquire()).await
    {
        held.push(conn);
    }
    assert!(!held.is_empty());

    let stop = Arc::new(AtomicBool::new(false));
    let (answered, server_errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // No idle connections kept: a kept connection the runner has closed holds its descriptor
    // until the pool notices, and 2,000 looping clients piled up 15,000 of them (EMFILE for
    // every test beside this one). So at most one socket per client, `flood_size` in all.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..flood_size {
        let (client, base, stop) = (client.clone(), r.base.clone(), stop.clone());
        let (answered, server_errors) = (answered.clone(), server_errors.clone());
        flood.spawn(async move {
            // Every client sends at least one request, and keeps going while attempts run.
            loop {
                let req = match i % 3 {
                    0 => client.get(format!("{base}/healthz")),
                    1 => client
                        .get(format!("{base}/v1/runs"))
                        .bearer_auth(format!("sfk_{:048x}", i)),
                    _ => client
                        .post(format!("{base}/v1/jobs/sleep/runs"))
                        .bearer_auth("not-a-key")
                        .json(&json!({"input": null})),
                };
                match req.send().await {
                    Ok(resp) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        let status = resp.status();
                        // Overload and an unreachable database are fine; anything else is not.
                        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                            server_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // A failed connect can return without ever waiting (EMFILE): without a
                    // pause, 2,000 such loops starve the test's own task on its one thread.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        });
    }
    // Wait for the attempts to end, watching the database directly.
    let start = Instant::now();
    let ended_in_time = loop {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE state IN ('enqueued', 'running', 'retrying')",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if active == 0 {
            break true;
        }
        if start.elapsed() > Duration::from_secs(20) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Release everything before asserting, so a failure reports instead of hanging.
    stop.store(true, Ordering::Relaxed);
    drop(held);
    if tokio::time::timeout(Duration::from_secs(30), async {
        while flood.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        flood.abort_all();
    }
    assert!(
        ended_in_time,
        "the runs did not end while the API was flooded"
    );
    assert!(
        answered.load(Ordering::Relaxed) >= flood_size / 2,
        "the flood was not served: {} answers",
        answered.load(Ordering::Relaxed)
    );
    assert_eq!(
        server_errors.load(Ordering::Relaxed),
        0,
        "5xx other than 503"
    );

    for id in &ids {
        let run = r.wait_terminal(&t, id).await;
        // One attempt, ended by its own timeout: never interrupted, rescued or handed back.
        assert_eq!(outcomes(&run), ["timeout"], "{run:#}");
        assert_eq!(run["attempt"], 1, "{run:#}");
    }
    r.shutdown().await;
}
