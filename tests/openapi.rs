//! The OpenAPI document as a client fetches it from a live runner, and the typed documents'
//! wire format where clients depend on it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Body, TestRunner};

#[tokio::test]
async fn the_document_is_served_without_auth_and_describes_every_route() {
    let r = TestRunner::start().await;
    let (status, doc) = r.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc,
        serde_json::to_value(sandfire::api::openapi::document()).unwrap(),
        "the runner serves the document the code derives"
    );
    let paths = doc["paths"].as_object().unwrap();
    for route in sandfire::api::ROUTES {
        assert!(
            paths
                .get(route.path)
                .is_some_and(|item| item.get(route.method).is_some()),
            "{} {} is not in the served document",
            route.method,
            route.path
        );
    }
    r.shutdown().await;
}

#[tokio::test]
async fn bodies_keep_their_wire_format() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    // A JSON body must be an object: serde would read a struct from an array of its fields.
    let (status, err) = r
        .call(
            Method::PUT,
            "/v1/queues/default",
            Some(&t.key),
            Some(Body::Json(json!([true, null]))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "bad_request", "{err}");
    // A run: fields absent when unset stay absent, the ones always sent are there.
    r.upload(&t, "noop", "noop").await;
    let (status, run) = r
        .call(
            Method::POST,
            "/v1/jobs/noop/runs",
            Some(&t.key),
            Some(Body::Json(json!({"input": {"n": 1}}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    for field in [
        "id", "job", "version", "state", "input", "output", "error", "progress",
    ] {
        assert!(run.get(field).is_some(), "{field} missing: {run}");
    }
    for absent in [
        "batch_id",
        "after_run",
        "schedule",
        "input_truncated",
        "cancel_requested_at",
    ] {
        assert!(run.get(absent).is_none(), "{absent} sent: {run}");
    }
    let (status, body) = r
        .call(Method::GET, "/v1/runs/not-a-uuid", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["error"],
        "{body}"
    );
    r.shutdown().await;
}
