//! Tenants and keys: admin-only tenant creation, 401 without a valid key, and isolation (one
//! tenant never sees, reads or triggers another's jobs, runs or logs).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Body, TestRunner};

#[tokio::test]
async fn tenants_are_created_by_the_admin_only() {
    let r = TestRunner::start().await;
    let body = Some(Body::Json(json!({"name": "acme"})));
    let (status, _) = r.call(Method::POST, "/v1/tenants", None, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = Some(Body::Json(json!({"name": "acme"})));
    let (status, _) = r
        .call(Method::POST, "/v1/tenants", Some("wrong"), body)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let t = r.tenant("acme").await;
    assert!(t.key.starts_with("sfk_"));
    let body = Some(Body::Json(json!({"name": "acme"})));
    let (status, body) = r
        .call(Method::POST, "/v1/tenants", Some(ADMIN_TOKEN), body)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let body = Some(Body::Json(json!({"name": "Bad Name!"})));
    let (status, _) = r
        .call(Method::POST, "/v1/tenants", Some(ADMIN_TOKEN), body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A tenant key is not an admin token, and a second key works like the first.
    let (status, _) = r.call(Method::GET, "/v1/tenants", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/tenants/acme/keys",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = body["api_key"].as_str().unwrap();
    let (status, _) = r.call(Method::GET, "/v1/jobs", Some(second), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = r
        .call(
            Method::POST,
            "/v1/tenants/nobody/keys",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Keys are stored only as hashes.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM api_keys")
        .fetch_all(r.store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 32 && h != t.key.as_bytes())
    );
    r.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_unknown_key_gets_401() {
    let r = TestRunner::start().await;
    for path in ["/v1/jobs", "/v1/runs"] {
        let (status, body) = r.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = r.call(Method::GET, path, Some("sfk_0000"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = r.call(Method::GET, path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    r.shutdown().await;
}

#[tokio::test]
async fn tenants_never_see_each_others_jobs_runs_or_logs() {
    let r = TestRunner::start().await;
    let a = r.tenant("alpha").await;
    let b = r.tenant("beta").await;
    r.upload(&a, "daily-report", "hello").await;
    let run = r
        .enqueue(&a, "daily-report", json!({"input": {"name": "A"}}))
        .await;
    let id = run["id"].as_str().unwrap();
    r.wait_terminal(&a, id).await;

    let (_, jobs) = r.call(Method::GET, "/v1/jobs", Some(&b.key), None).await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0);
    let (_, runs) = r.call(Method::GET, "/v1/runs", Some(&b.key), None).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0);
    for path in [
        "/v1/jobs/daily-report".to_string(),
        format!("/v1/runs/{id}"),
        format!("/v1/runs/{id}/logs"),
    ] {
        let (status, body) = r.call(Method::GET, &path, Some(&b.key), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = r
        .call(
            Method::POST,
            "/v1/jobs/daily-report/runs",
            Some(&b.key),
            Some(Body::Json(json!({}))),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Both may have a job of the same name; each runs its own.
    r.upload(&b, "daily-report", "noop").await;
    let b_run = r.enqueue(&b, "daily-report", json!({})).await;
    let b_run = r.wait_terminal(&b, b_run["id"].as_str().unwrap()).await;
    assert_eq!(b_run["output"], json!({}));
    let a_run = r.run(&a, id).await;
    assert!(a_run["output"].to_string().contains("Hello, A"));
    let (_, runs) = r.call(Method::GET, "/v1/runs", Some(&a.key), None).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    r.shutdown().await;
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let r = TestRunner::start().await;
    let (status, body) = r.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"], "ok");
    let (status, body) = r.call(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    r.shutdown().await;
}
