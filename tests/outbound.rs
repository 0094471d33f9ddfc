//! Jobs that call out: outbound HTTP under grants (`fetch`, `webhook`), config and secrets, and
//! redaction (`leaky`). Every server here is a local one (`support::web`): nothing else is
//! reachable from this machine, so most runners use `--allow-loopback-outbound`, and one test
//! checks that without it loopback is refused like any other local address.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::web::WebServer;
use crate::support::{ADMIN_TOKEN, Body, TestRunner, TestTenant, wait_until};

/// A runner whose jobs may reach loopback (the test flag).
async fn loopback_runner() -> TestRunner {
    TestRunner::start_with(|s| s.sandbox.outbound.allow_loopback = true).await
}

async fn put(r: &TestRunner, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    r.call(Method::PUT, path, Some(key), Some(Body::Json(body)))
        .await
}

/// Sets the tenant's ceiling (admin), uploads `example` as `job` and grants it `hosts` and
/// `config`.
async fn granted(
    r: &TestRunner,
    tenant: &str,
    job: &str,
    example: &str,
    policy: Value,
    hosts: &[String],
    config: &[&str],
) -> TestTenant {
    let t = r.tenant(tenant).await;
    let (status, body) = put(
        r,
        &format!("/v1/tenants/{tenant}/policy"),
        ADMIN_TOKEN,
        policy,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "policy: {body}");
    r.upload(&t, job, example).await;
    let (status, body) = put(
        r,
        &format!("/v1/jobs/{job}/capabilities"),
        &t.key,
        json!({"allowed_outbound_hosts": hosts, "config": config}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "capabilities: {body}");
    t
}

async fn set_config(r: &TestRunner, t: &TestTenant, name: &str, value: &str, secret: bool) {
    let (status, body) = put(
        r,
        &format!("/v1/config/{name}"),
        &t.key,
        json!({"value": value, "secret": secret}),
    )
    .await;
    assert!(status.is_success(), "config {name}: {status} {body}");
}

/// Runs `job` with `input` to the end; returns the run and its log messages.
async fn run_to_end(
    r: &TestRunner,
    t: &TestTenant,
    job: &str,
    input: Value,
) -> (Value, Vec<String>) {
    let run = r
        .enqueue(t, job, json!({ "input": input, "max_attempts": 1 }))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = r.wait_terminal(t, &id).await;
    let logs = r.logs(t, &id).await.iter().map(|l| l.to_string()).collect();
    (run, logs)
}

fn error_of(run: &Value) -> String {
    run["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn local_ceiling() -> Value {
    json!({"allowed_outbound_hosts": ["http://127.0.0.1:*", "https://127.0.0.1:*", "http://169.254.169.254"]})
}

const TOKEN: &str = "tok_live_9f8e7d6c5b4a3210";

#[tokio::test]
async fn fetch_with_a_granted_host_and_secret_reaches_the_server_with_the_header() {
    let web = WebServer::start().await;
    let r = loopback_runner().await;
    let host = format!("http://{}", web.addr);
    let t = granted(
        &r,
        "acme",
        "fetch",
        "fetch",
        local_ceiling(),
        &[host],
        &["api_token"],
    )
    .await;
    set_config(&r, &t, "api_token", TOKEN, true).await;

    let (run, logs) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/ok"), "bearer_config": "api_token"}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"], json!({"status": 200, "body": "ok"}));
    let seen = web.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let outbound = &run["attempts"][0]["outbound"];
    assert_eq!(outbound["requests"], 1, "{run:#}");
    assert_eq!(outbound["denied"], 0);
    assert!(outbound["bytes_in"].as_u64().unwrap() >= 2);
    assert!(!logs.iter().any(|l| l.contains(TOKEN)), "{logs:#?}");
    r.shutdown().await;
}

#[tokio::test]
async fn ungranted_hosts_and_the_metadata_address_are_denied_and_say_so() {
    let web = WebServer::start().await;
    let other = WebServer::start().await;
    let r = loopback_runner().await;
    let t = granted(
        &r,
        "acme",
        "fetch",
        "fetch",
        local_ceiling(),
        &[
            format!("http://{}", web.addr),
            "http://169.254.169.254".to_owned(),
        ],
        &[],
    )
    .await;

    // A host the job was not granted.
    let (run, logs) = run_to_end(&r, &t, "fetch", json!({"url": other.url("/ok")})).await;
    assert_eq!(run["state"], "failed");
    assert!(error_of(&run).contains("HttpRequestDenied"), "{run:#}");
    let denied = format!("outbound request denied: http://{}", other.addr);
    assert!(
        logs.iter()
            .any(|l| l.contains(&denied) && l.contains("allowed_outbound_hosts")),
        "{logs:#?}"
    );
    assert!(other.seen().is_empty());
    assert_eq!(run["attempts"][0]["outbound"]["denied"], 1);

    // Granted by pattern, refused by address: the cloud metadata service.
    let (run, logs) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
    )
    .await;
    assert_eq!(run["state"], "failed");
    assert!(
        error_of(&run).contains("DestinationIpProhibited"),
        "{run:#}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("http://169.254.169.254:80") && l.contains("metadata")),
        "{logs:#?}"
    );

    // A redirect is surfaced to the job, not followed by the runner...
    let (run, _) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/redirect-metadata")}),
    )
    .await;
    assert_eq!(run["state"], "succeeded");
    assert_eq!(run["output"]["status"], 302);
    // ...and following it is checked again.
    let (run, _) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/redirect-metadata"), "follow_redirects": 1}),
    )
    .await;
    assert_eq!(run["state"], "failed");
    assert!(
        error_of(&run).contains("DestinationIpProhibited"),
        "{run:#}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn without_the_test_flag_loopback_is_refused_like_any_local_address() {
    let web = WebServer::start().await;
    let r = TestRunner::start().await;
    let host = format!("http://{}", web.addr);
    let t = granted(&r, "acme", "fetch", "fetch", local_ceiling(), &[host], &[]).await;
    let (run, logs) = run_to_end(&r, &t, "fetch", json!({"url": web.url("/ok")})).await;
    assert_eq!(run["state"], "failed");
    assert!(
        error_of(&run).contains("DestinationIpProhibited"),
        "{run:#}"
    );
    assert!(logs.iter().any(|l| l.contains("loopback")), "{logs:#?}");
    assert!(web.seen().is_empty(), "the server must not be reached");
    r.shutdown().await;

    // With the test flag, an operator's blocked network still wins.
    let r = TestRunner::start_with(|s| {
        s.sandbox.outbound.allow_loopback = true;
        s.sandbox.outbound.blocked_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let host = format!("http://{}", web.addr);
    let t = granted(&r, "acme", "fetch", "fetch", local_ceiling(), &[host], &[]).await;
    let (run, logs) = run_to_end(&r, &t, "fetch", json!({"url": web.url("/ok")})).await;
    assert!(
        error_of(&run).contains("DestinationIpProhibited"),
        "{run:#}"
    );
    assert!(
        logs.iter().any(|l| l.contains("operator blocked")),
        "{logs:#?}"
    );
    assert!(web.seen().is_empty(), "the server must not be reached");
    r.shutdown().await;
}

#[tokio::test]
async fn body_caps_hold_both_ways() {
    let web = WebServer::start().await;
    let r = TestRunner::start_with(|s| {
        s.sandbox.outbound.allow_loopback = true;
        s.sandbox.outbound.max_request_body_bytes = 16 * 1024;
    })
    .await;
    let host = format!("http://{}", web.addr);
    let mut policy = local_ceiling();
    policy["max_response_bytes"] = json!(64 * 1024);
    let t = granted(&r, "acme", "fetch", "fetch", policy, &[host], &[]).await;

    // Under the cap: fine.
    let (run, _) = run_to_end(&r, &t, "fetch", json!({"url": web.url("/big?n=1000")})).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    // Over the tenant's response cap, announced by Content-Length...
    let (run, _) = run_to_end(&r, &t, "fetch", json!({"url": web.url("/big?n=200000")})).await;
    assert!(error_of(&run).contains("HttpResponseBodySize"), "{run:#}");
    // ...and streamed without a length: cut off mid-stream.
    let (run, _) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/big-chunked?n=200000")}),
    )
    .await;
    // Mid-stream, wasi:http 0.2 reports a stream error, not an error code: the job sees the
    // runner's message.
    assert!(
        error_of(&run).contains("response body size exceeds limit"),
        "{run:#}"
    );
    assert!(
        run["attempts"][0]["outbound"]["bytes_in"].as_u64().unwrap() <= 64 * 1024 + 16 * 1024,
        "{run:#}"
    );
    // A request body over the runner's cap.
    let big = "z".repeat(40 * 1024);
    let (run, _) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/ok"), "method": "POST", "body": big}),
    )
    .await;
    assert!(error_of(&run).contains("HttpRequestBodySize"), "{run:#}");
    assert!(web.seen().iter().all(|s| s.body.len() < 40 * 1024));
    r.shutdown().await;
}

#[tokio::test]
async fn timeouts_are_clamped_to_the_runner_caps_and_requests_to_the_tenant_cap() {
    let web = WebServer::start().await;
    let r = TestRunner::start_with(|s| {
        s.sandbox.outbound.allow_loopback = true;
        s.sandbox.outbound.first_byte_timeout = Duration::from_millis(300);
    })
    .await;
    let host = format!("http://{}", web.addr);
    let mut policy = local_ceiling();
    policy["max_requests_per_attempt"] = json!(3);
    let t = granted(&r, "acme", "fetch", "fetch", policy, &[host], &[]).await;

    // The job asks for an hour; the runner's 300 ms cap applies (the server never answers).
    let (run, _) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/slow-head"), "first_byte_timeout_ms": 3_600_000}),
    )
    .await;
    assert!(error_of(&run).contains("ConnectionReadTimeout"), "{run:#}");
    // Ended by the clamped request timeout, not by the attempt's own (10 s in tests).
    assert_eq!(run["attempts"][0]["outcome"], "error", "{run:#}");

    // The tenant allows 3 requests per attempt.
    let before = web.seen().len();
    let (run, logs) =
        run_to_end(&r, &t, "fetch", json!({"url": web.url("/ok"), "repeat": 5})).await;
    assert!(error_of(&run).contains("HttpRequestDenied"), "{run:#}");
    assert_eq!(web.seen().len() - before, 3);
    assert!(
        logs.iter().any(|l| l.contains("at most 3 requests")),
        "{logs:#?}"
    );

    // A job that loops on refused requests cannot flood its log: 20 warnings, then one count.
    let (run, logs) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/ok"), "repeat": 40, "keep_going": true}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"]["errors"], 37, "{run:#}");
    assert_eq!(run["attempts"][0]["outbound"]["denied"], 37);
    let warnings = logs
        .iter()
        .filter(|l| l.contains("outbound request denied"))
        .count();
    assert_eq!(warnings, 20, "{logs:#?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("17 more outbound refusals not logged")),
        "{logs:#?}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn two_hundred_sequential_requests_see_no_connection_reset() {
    let web = WebServer::start().await;
    let r = TestRunner::start_with(|s| {
        s.sandbox.outbound.allow_loopback = true;
        s.sandbox.outbound.max_requests_per_attempt = 500;
    })
    .await;
    let host = format!("http://{}", web.addr);
    let mut policy = local_ceiling();
    policy["max_requests_per_attempt"] = json!(500);
    let t = granted(&r, "acme", "fetch", "fetch", policy, &[host], &[]).await;
    let (run, _) = run_to_end(
        &r,
        &t,
        "fetch",
        json!({"url": web.url("/ok"), "repeat": 200}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(web.seen().len(), 200);
    assert_eq!(run["attempts"][0]["outbound"]["requests"], 200);
    r.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_run_aborts_its_request() {
    let web = WebServer::start().await;
    let r = loopback_runner().await;
    let host = format!("http://{}", web.addr);
    let t = granted(&r, "acme", "fetch", "fetch", local_ceiling(), &[host], &[]).await;
    let run = r
        .enqueue(
            &t,
            "fetch",
            json!({"input": {"url": web.url("/hold")}, "max_attempts": 1}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_until(
        "the request reaches the server",
        Duration::from_secs(30),
        || async { (web.holds_started() == 1).then_some(()) },
    )
    .await;
    let (status, body) = r
        .call(
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            Some(&t.key),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    wait_until(
        "the server sees the connection dropped",
        Duration::from_secs(30),
        || async { (web.holds_aborted() == 1).then_some(()) },
    )
    .await;
    let run = r.wait_terminal(&t, &id).await;
    assert_eq!(run["state"], "cancelled", "{run:#}");
    r.shutdown().await;
}

#[tokio::test]
async fn https_works_with_a_trusted_certificate_and_fails_with_an_untrusted_one() {
    let (web, cert) = WebServer::start_tls().await;
    let url = format!("https://127.0.0.1:{}/ok", web.addr.port());
    let host = format!("https://127.0.0.1:{}", web.addr.port());

    let trusting = TestRunner::start_with(|s| {
        s.sandbox.outbound.allow_loopback = true;
        s.sandbox.outbound.extra_roots = vec![cert.clone()];
    })
    .await;
    let t = granted(
        &trusting,
        "acme",
        "fetch",
        "fetch",
        local_ceiling(),
        std::slice::from_ref(&host),
        &[],
    )
    .await;
    let (run, _) = run_to_end(&trusting, &t, "fetch", json!({"url": url})).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"]["body"], "ok");
    trusting.shutdown().await;

    let r = loopback_runner().await;
    let t = granted(&r, "acme", "fetch", "fetch", local_ceiling(), &[host], &[]).await;
    let (run, _) = run_to_end(&r, &t, "fetch", json!({"url": url})).await;
    assert_eq!(run["state"], "failed");
    assert!(error_of(&run).contains("TlsCertificateError"), "{run:#}");
    r.shutdown().await;
}

#[tokio::test]
async fn config_is_granted_by_name_and_each_tenant_reads_only_its_own() {
    let web = WebServer::start().await;
    let r = loopback_runner().await;
    let host = format!("http://{}", web.addr);
    let a = granted(
        &r,
        "acme",
        "fetch",
        "fetch",
        local_ceiling(),
        std::slice::from_ref(&host),
        &["api_token"],
    )
    .await;
    let b = granted(
        &r,
        "globex",
        "fetch",
        "fetch",
        local_ceiling(),
        &[host],
        &["api_token"],
    )
    .await;
    set_config(&r, &a, "api_token", "acme-token-0123456789", true).await;
    set_config(&r, &b, "api_token", "globex-token-0123456789", true).await;
    set_config(&r, &a, "other_token", "acme-other-0123456789", true).await;

    let (run, _) = run_to_end(
        &r,
        &a,
        "fetch",
        json!({"url": web.url("/ok"), "bearer_config": "api_token"}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let (run, _) = run_to_end(
        &r,
        &b,
        "fetch",
        json!({"url": web.url("/ok"), "bearer_config": "api_token"}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let auth: Vec<String> = web
        .seen()
        .iter()
        .map(|s| s.header("authorization").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        auth,
        [
            "Bearer acme-token-0123456789",
            "Bearer globex-token-0123456789"
        ]
    );

    // Set but not granted: refused by name, and the run fails (retrying cannot grant it).
    let (run, _) = run_to_end(
        &r,
        &a,
        "fetch",
        json!({"url": web.url("/ok"), "bearer_config": "other_token"}),
    )
    .await;
    assert_eq!(run["state"], "failed");
    assert!(error_of(&run).contains("not granted"), "{run:#}");
    assert_eq!(web.seen().len(), 2);
    r.shutdown().await;
}

#[tokio::test]
async fn a_secret_never_leaves_the_sandbox() {
    let r = TestRunner::start().await;
    let t = granted(
        &r,
        "acme",
        "leaky",
        "leaky",
        json!({"allowed_outbound_hosts": []}),
        &[],
        &["api_token"],
    )
    .await;
    set_config(&r, &t, "api_token", TOKEN, true).await;

    for fail in [false, true] {
        let (run, logs) =
            run_to_end(&r, &t, "leaky", json!({"name": "api_token", "fail": fail})).await;
        let everything = format!("{run} {logs:?}");
        assert!(
            !everything.contains(TOKEN),
            "the secret leaked: {everything}"
        );
        assert!(everything.contains("[REDACTED:api_token]"), "{everything}");
        let joined = logs.join("\n");
        for place in [
            "the token is [REDACTED:api_token]",
            "stdout: [REDACTED:api_token]",
            "stderr: [REDACTED:api_token]",
        ] {
            assert!(joined.contains(place), "{place} missing in {joined}");
        }
        if fail {
            assert_eq!(run["state"], "failed");
            assert!(
                error_of(&run).contains("could not use [REDACTED:api_token]"),
                "{run:#}"
            );
        } else {
            assert_eq!(run["output"]["leaked"], "token=[REDACTED:api_token]");
            assert_eq!(
                run["progress_message"], "using [REDACTED:api_token]",
                "{run:#}"
            );
        }
    }
    // A snooze reason goes to the run's history: redacted too.
    let (status, run) = r
        .call(
            Method::POST,
            "/v1/jobs/leaky/runs",
            Some(&t.key),
            Some(Body::Json(
                json!({"input": {"name": "api_token", "snooze": true}}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = r
        .wait_for(&t, &id, Duration::from_secs(30), |run| {
            run["state"] == "scheduled"
        })
        .await;
    assert!(!run.to_string().contains(TOKEN), "{run:#}");
    assert!(
        run["history"]
            .to_string()
            .contains("waiting for [REDACTED:api_token]"),
        "{run:#}"
    );

    // A multi-line secret (a PEM key) printed to stdout is logged a line at a time: each line
    // of it is redacted.
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7VJTU\n-----END PRIVATE KEY-----";
    set_config(&r, &t, "pem_key", pem, true).await;
    let (status, body) = put(
        &r,
        "/v1/jobs/leaky/capabilities",
        &t.key,
        json!({"allowed_outbound_hosts": [], "config": ["api_token", "pem_key"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (run, logs) = run_to_end(&r, &t, "leaky", json!({"name": "pem_key"})).await;
    let everything = format!("{run} {logs:?}");
    for line in pem.lines() {
        assert!(!everything.contains(line), "{line} leaked: {everything}");
    }

    // Nothing in the database holds it in clear either.
    let leaked = r
        .count_sql(&format!(
            "select (select count(*) from logs where message like '%{TOKEN}%' or fields::text like '%{TOKEN}%')
                  + (select count(*) from attempts where coalesce(error, '') like '%{TOKEN}%')
                  + (select count(*) from runs where coalesce(output::text, '') like '%{TOKEN}%')
                  + (select count(*) from tenant_config where encode(ciphertext, 'escape') like '%{TOKEN}%')"
        ))
        .await;
    assert_eq!(leaked, 0);
    r.shutdown().await;
}

/// HMAC-SHA256, written out (RFC 2104) so the test checks the job's signature independently.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

#[tokio::test]
async fn webhook_posts_its_input_signed_with_the_secret() {
    let web = WebServer::start().await;
    let r = loopback_runner().await;
    let host = format!("http://{}", web.addr);
    let t = granted(
        &r,
        "acme",
        "webhook",
        "webhook",
        local_ceiling(),
        &[host],
        &["webhook_url", "webhook_secret"],
    )
    .await;
    set_config(&r, &t, "webhook_url", &web.url("/ok"), false).await;
    set_config(&r, &t, "webhook_secret", "whsec_0123456789abcdef", true).await;

    let run = r
        .enqueue(
            &t,
            "webhook",
            json!({"input": {"order": 7, "total": "12.50"}}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = r.wait_terminal(&t, &id).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["output"], json!({"status": 200}));
    let seen = web.seen();
    assert_eq!(seen.len(), 1);
    let hit = &seen[0];
    assert_eq!(hit.method, "POST");
    assert_eq!(
        serde_json::from_slice::<Value>(&hit.body).unwrap(),
        json!({"order": 7, "total": "12.50"})
    );
    let expected = format!(
        "sha256={}",
        hmac_sha256(b"whsec_0123456789abcdef", &hit.body)
    );
    assert_eq!(hit.header("x-sandfire-signature"), Some(expected.as_str()));
    assert_eq!(hit.header("x-sandfire-run"), Some(id.as_str()));
    r.shutdown().await;
}
