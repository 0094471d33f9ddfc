//! Capabilities: the admin's policy (ceiling), a job's grant inside it, a tenant's config and
//! secrets (isolated per tenant, never shown, encrypted at rest), what an attempt is given
//! (`capabilities::grants::load`), and re-encryption after a key rotation.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use sandfire::capabilities::{Keyring, grants};
use sandfire::store::{ConfigReseal, Store};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Body, TEST_SECRETS_KEY, TestRunner, TestTenant};

async fn put_policy(r: &TestRunner, tenant: &str, body: Value) -> (StatusCode, Value) {
    r.call(
        Method::PUT,
        &format!("/v1/tenants/{tenant}/policy"),
        Some(ADMIN_TOKEN),
        Some(Body::Json(body)),
    )
    .await
}

async fn put_grant(r: &TestRunner, t: &TestTenant, job: &str, body: Value) -> (StatusCode, Value) {
    r.call(
        Method::PUT,
        &format!("/v1/jobs/{job}/capabilities"),
        Some(&t.key),
        Some(Body::Json(body)),
    )
    .await
}

async fn put_config(
    r: &TestRunner,
    t: &TestTenant,
    name: &str,
    value: &str,
    secret: bool,
) -> (StatusCode, Value) {
    r.call(
        Method::PUT,
        &format!("/v1/config/{name}"),
        Some(&t.key),
        Some(Body::Json(json!({"value": value, "secret": secret}))),
    )
    .await
}

/// The raw text of a GET (to assert on what is really sent, not on parsed JSON).
async fn raw_get(r: &TestRunner, path: &str, key: &str) -> (StatusCode, String) {
    let resp = r
        .http
        .get(format!("{}{path}", r.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("request reaches the runner");
    (resp.status(), resp.text().await.unwrap_or_default())
}

async fn ids(r: &TestRunner, tenant: &str, job: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT t.id, j.id FROM tenants t JOIN jobs j ON j.tenant_id = t.id
         WHERE t.name = $1 AND j.name = $2",
    )
    .bind(tenant)
    .bind(job)
    .fetch_one(r.store.pool())
    .await
    .expect("tenant and job ids")
}

#[tokio::test]
async fn the_admin_sets_a_tenants_policy_and_bad_patterns_are_422() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;

    // The default: no network, the runner's limits.
    let (status, body) = r
        .call(
            Method::GET,
            "/v1/tenants/acme/policy",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["allowed_outbound_hosts"], json!([]));
    assert_eq!(body["max_requests_per_attempt"], Value::Null);

    // Admin only.
    let (status, _) = r
        .call(
            Method::PUT,
            "/v1/tenants/acme/policy",
            Some(&t.key),
            Some(Body::Json(json!({"allowed_outbound_hosts": ["*://*:*"]}))),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = put_policy(
        &r,
        "acme",
        json!({
            "allowed_outbound_hosts": ["HTTPS://*.Example.com", "http://127.0.0.1:8000..8100",
                                       "https://*.example.com"],
            "max_requests_per_attempt": 10,
            "max_response_bytes": 1048576
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = json!(["https://*.example.com", "http://127.0.0.1:8000..8100"]);
    assert_eq!(
        body["allowed_outbound_hosts"], expected,
        "canonical, deduplicated"
    );
    let (_, got) = r
        .call(
            Method::GET,
            "/v1/tenants/acme/policy",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(got["allowed_outbound_hosts"], expected);
    assert_eq!(got["max_requests_per_attempt"], 10);
    assert_eq!(got["max_response_bytes"], 1048576);

    // Every bad input is a clear 4xx and changes nothing.
    for (bad, status, code, says) in [
        (
            json!({"allowed_outbound_hosts": ["https://example.com/api"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pattern",
            "\\\"https://example.com/api\\\": a path is not allowed",
        ),
        (
            json!({"allowed_outbound_hosts": ["https://{{ host }}"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pattern",
            "templates",
        ),
        (
            json!({"allowed_outbound_hosts": ["https://example.com:0"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pattern",
            "out of range",
        ),
        (
            json!({"allowed_outbound_hosts": [], "max_requests_per_attempt": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_option",
            "max_requests_per_attempt",
        ),
        (
            json!({"allowed_outbound_hosts": [], "allowed_hosts": []}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unknown field",
        ),
    ] {
        let (got, body) = put_policy(&r, "acme", bad.clone()).await;
        assert_eq!(got, status, "{bad}: {body}");
        assert_eq!(body["error"]["code"], code, "{bad}: {body}");
        let message = body["error"]["message"].to_string();
        assert!(message.contains(says), "{bad}: {message}");
    }
    let (_, after) = r
        .call(
            Method::GET,
            "/v1/tenants/acme/policy",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(after, got, "refused writes changed nothing");

    let (status, _) = put_policy(&r, "nobody", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test]
async fn a_job_grant_must_lie_inside_the_tenants_policy() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;

    // No policy: no network, and the 422 says so.
    let (status, body) = put_grant(
        &r,
        &t,
        "hello",
        json!({"allowed_outbound_hosts": ["https://api.example.com"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "outside_policy");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("https://api.example.com") && message.contains("no outbound network"),
        "{message}"
    );

    let (status, _) = put_policy(
        &r,
        "acme",
        json!({"allowed_outbound_hosts": ["https://*.example.com", "http://127.0.0.1:8000..8100"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = put_grant(
        &r,
        &t,
        "hello",
        json!({
            "allowed_outbound_hosts": ["https://api.example.com", "http://127.0.0.1:8080"],
            "config": ["api_token", "region", "api_token"]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let granted = json!({
        "allowed_outbound_hosts": ["https://api.example.com", "http://127.0.0.1:8080"],
        "config": ["api_token", "region"]
    });
    assert_eq!(
        body["allowed_outbound_hosts"],
        granted["allowed_outbound_hosts"]
    );
    assert_eq!(body["config"], granted["config"]);

    for (bad, status, code, names) in [
        (
            json!({"allowed_outbound_hosts": ["https://example.com"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside_policy",
            "https://example.com is outside",
        ),
        (
            json!({"allowed_outbound_hosts": ["https://a.example.com", "http://api.example.com"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside_policy",
            "http://api.example.com is outside",
        ),
        (
            json!({"allowed_outbound_hosts": ["http://127.0.0.1:8000..8200"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside_policy",
            "http://127.0.0.1:8000..8200",
        ),
        (
            json!({"allowed_outbound_hosts": ["https://a.example.com/path"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pattern",
            "path",
        ),
        (
            json!({"config": ["API_TOKEN"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config_name",
            "API_TOKEN",
        ),
        (
            json!({"config": ["a__b"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config_name",
            "a__b",
        ),
        (
            json!({"config": [], "secrets": []}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unknown field",
        ),
    ] {
        let (got, body) = put_grant(&r, &t, "hello", bad.clone()).await;
        assert_eq!(got, status, "{bad}: {body}");
        assert_eq!(body["error"]["code"], code, "{bad}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{bad}: {message}");
    }

    // Nothing changed, and the job shows its grant.
    let (status, body) = r
        .call(
            Method::GET,
            "/v1/jobs/hello/capabilities",
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["config"], granted["config"]);
    assert_eq!(
        body["allowed_outbound_hosts"],
        granted["allowed_outbound_hosts"]
    );
    let (_, job) = r
        .call(Method::GET, "/v1/jobs/hello", Some(&t.key), None)
        .await;
    assert_eq!(job["capabilities"], granted, "{job}");

    // Unknown job; a read-only key may read but not grant; another tenant cannot reach it.
    let (status, _) = put_grant(&r, &t, "nope", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, key) = r
        .call(
            Method::POST,
            "/v1/tenants/acme/keys",
            Some(ADMIN_TOKEN),
            Some(Body::Json(json!({"role": "read"}))),
        )
        .await;
    let reader = TestTenant {
        key: key["api_key"].as_str().unwrap().to_string(),
    };
    let (status, _) = put_grant(&r, &reader, "hello", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = r.tenant("other").await;
    let (status, _) = r
        .call(
            Method::GET,
            "/v1/jobs/hello/capabilities",
            Some(&other.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test]
async fn config_is_per_tenant() {
    let r = TestRunner::start().await;
    let a = r.tenant("tenant-a").await;
    let b = r.tenant("tenant-b").await;
    let (status, body) = put_config(&r, &a, "region", "eu-west-1-for-a", false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["value"], "eu-west-1-for-a");
    let (status, _) = put_config(&r, &a, "only_a", "a-only-value", false).await;
    assert_eq!(status, StatusCode::CREATED);

    // B sees none of A's entries, cannot read or delete them.
    let (_, list) = r.call(Method::GET, "/v1/config", Some(&b.key), None).await;
    assert_eq!(list["config"], json!([]), "{list}");
    let (status, _) = r
        .call(Method::GET, "/v1/config/only_a", Some(&b.key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = r
        .call(Method::DELETE, "/v1/config/only_a", Some(&b.key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // B's entry of the same name is its own: A's value is untouched.
    let (status, _) = put_config(&r, &b, "region", "us-east-1-for-b", false).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a new entry for B, not a replacement of A's"
    );
    let (_, got_a) = r
        .call(Method::GET, "/v1/config/region", Some(&a.key), None)
        .await;
    let (_, got_b) = r
        .call(Method::GET, "/v1/config/region", Some(&b.key), None)
        .await;
    assert_eq!(got_a["value"], "eu-west-1-for-a");
    assert_eq!(got_b["value"], "us-east-1-for-b");
    let (status, _) = r
        .call(Method::DELETE, "/v1/config/region", Some(&b.key), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got_a) = r
        .call(Method::GET, "/v1/config/region", Some(&a.key), None)
        .await;
    assert_eq!(
        got_a["value"], "eu-west-1-for-a",
        "B's delete left A's entry"
    );
    let (_, list) = r.call(Method::GET, "/v1/config", Some(&a.key), None).await;
    let names: Vec<&str> = list["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["only_a", "region"]);

    // A ciphertext copied to the other tenant's row does not decrypt: it is reported, never
    // shown as B's value.
    sqlx::query(
        "INSERT INTO tenant_config (tenant_id, name, secret, ciphertext, nonce, key_id)
         SELECT (SELECT id FROM tenants WHERE name = 'tenant-b'), c.name, c.secret, c.ciphertext,
                c.nonce, c.key_id
         FROM tenant_config c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.name = 'tenant-a' AND c.name = 'only_a'",
    )
    .execute(r.store.pool())
    .await
    .unwrap();
    let (status, copied) = r
        .call(Method::GET, "/v1/config/only_a", Some(&b.key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(copied["value"], Value::Null, "{copied}");
    assert!(
        copied["value_error"]
            .as_str()
            .unwrap()
            .contains("does not decrypt")
    );
    r.shutdown().await;
}

#[tokio::test]
async fn secret_values_never_leave_through_the_api_and_are_encrypted_at_rest() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let secret = "sk_live_0123456789abcdefSECRET";
    let (status, body) = put_config(&r, &t, "api_token", secret, true).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!body.to_string().contains(secret), "{body}");
    assert_eq!(body["secret"], true);
    assert_eq!(body["key_id"], 1);
    let (status, body) = put_config(&r, &t, "api_token", secret, true).await;
    assert_eq!(status, StatusCode::OK, "a replacement: {body}");
    // Secret unless said otherwise.
    let (status, _) = r
        .call(
            Method::PUT,
            "/v1/config/default_secret",
            Some(&t.key),
            Some(Body::Json(json!({"value": "defaulted-secret-value"}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    put_config(&r, &t, "from_address", "jobs@example.com", false).await;

    for path in [
        "/v1/config",
        "/v1/config/api_token",
        "/v1/config/default_secret",
    ] {
        let (status, text) = raw_get(&r, path, &t.key).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert!(!text.contains(secret), "{path} shows the secret: {text}");
        assert!(!text.contains("defaulted-secret-value"), "{path}: {text}");
        assert!(text.contains("\"secret\":true"), "{path}: {text}");
    }
    let (_, text) = raw_get(&r, "/v1/config", &t.key).await;
    assert!(
        text.contains("jobs@example.com"),
        "a plain value is shown: {text}"
    );

    // At rest: no plaintext in the table.
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT name, ciphertext, nonce FROM tenant_config ORDER BY name")
            .fetch_all(r.store.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    for (name, ciphertext, nonce) in &rows {
        assert_eq!(nonce.len(), 12);
        for plain in [secret, "defaulted-secret-value", "jobs@example.com"] {
            assert!(
                !ciphertext
                    .windows(plain.len())
                    .any(|w| w == plain.as_bytes()),
                "{name}'s ciphertext holds a plaintext"
            );
        }
    }

    // Bad input: clear 4xx, nothing changed.
    let big = "x".repeat(64 * 1024 + 1);
    for (name, body, status, code) in [
        (
            "Bad-Name",
            json!({"value": "v"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        ),
        (
            "a__b",
            json!({"value": "v"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        ),
        (
            "big",
            json!({"value": big}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "value_too_large",
        ),
        (
            "x",
            json!({"value": "v", "ttl": 1}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "x",
            json!({"secret": true}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let (got, resp) = r
            .call(
                Method::PUT,
                &format!("/v1/config/{name}"),
                Some(&t.key),
                Some(Body::Json(body)),
            )
            .await;
        assert_eq!(got, status, "{name}: {resp}");
        assert_eq!(resp["error"]["code"], code, "{name}: {resp}");
    }
    assert_eq!(r.count("SELECT count(*) FROM tenant_config").await, 3);

    let (status, _) = r
        .call(Method::DELETE, "/v1/config/api_token", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = r
        .call(Method::DELETE, "/v1/config/api_token", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

#[tokio::test]
async fn a_tenant_holds_at_most_1000_config_entries() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    put_config(&r, &t, "kept", "value", false).await;
    // Fill up to the limit directly (the quota only counts rows).
    sqlx::query(
        "INSERT INTO tenant_config (tenant_id, name, secret, ciphertext, nonce, key_id)
         SELECT (SELECT id FROM tenants WHERE name = 'acme'), 'filler_' || i, true,
                decode(repeat('00', 16), 'hex'), decode(repeat('00', 12), 'hex'), 1
         FROM generate_series(1, 999) i",
    )
    .execute(r.store.pool())
    .await
    .unwrap();
    let (status, body) = put_config(&r, &t, "one_more", "value", false).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_config_entries is 1000"),
        "{body}"
    );
    // Replacing an entry is not a new one.
    let (status, _) = put_config(&r, &t, "kept", "new value", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r.count("SELECT count(*) FROM tenant_config").await, 1000);
    r.shutdown().await;
}

#[tokio::test]
async fn config_without_a_key_is_503_naming_the_setting() {
    let r = TestRunner::start_with(|s| s.keyring = None).await;
    let t = r.tenant("acme").await;
    for (method, path, body) in [
        (Method::GET, "/v1/config", None),
        (Method::GET, "/v1/config/api_token", None),
        (Method::DELETE, "/v1/config/api_token", None),
        (
            Method::PUT,
            "/v1/config/api_token",
            Some(Body::Json(json!({"value": "v", "secret": true}))),
        ),
    ] {
        let (status, body) = r.call(method.clone(), path, Some(&t.key), body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
        assert_eq!(body["error"]["code"], "secrets_key_missing");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SANDFIRE_SECRETS_KEY")
        );
    }
    assert_eq!(r.count("SELECT count(*) FROM tenant_config").await, 0);
    r.shutdown().await;
}

#[tokio::test]
async fn an_attempt_gets_its_granted_values_and_nothing_else() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let other = r.tenant("other").await;
    r.upload(&t, "hello", "hello").await;
    put_policy(
        &r,
        "acme",
        json!({"allowed_outbound_hosts": ["https://*.example.com"], "max_requests_per_attempt": 7}),
    )
    .await;
    put_config(&r, &t, "api_token", "token-value-granted", true).await;
    put_config(&r, &t, "region", "eu-west-1", false).await;
    put_config(&r, &t, "not_granted", "must-not-be-loaded", true).await;
    // Another tenant's entry of a granted name is never the job's.
    put_config(&r, &other, "unset_name", "other-tenants-value", true).await;
    let (status, body) = put_grant(
        &r,
        &t,
        "hello",
        json!({
            "allowed_outbound_hosts": ["https://api.example.com"],
            "config": ["api_token", "region", "unset_name"]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (tenant_id, job_id) = ids(&r, "acme", "hello").await;
    let keyring = crate::support::test_keyring();
    let g = grants::load(r.store.as_ref(), Some(keyring.as_ref()), tenant_id, job_id)
        .await
        .unwrap();
    assert_eq!(
        g.config.keys().collect::<Vec<_>>(),
        ["api_token", "region", "unset_name"]
    );
    let token = g.config["api_token"].as_ref().unwrap();
    assert_eq!(
        (token.value.as_str(), token.secret),
        ("token-value-granted", true)
    );
    let region = g.config["region"].as_ref().unwrap();
    assert_eq!((region.value.as_str(), region.secret), ("eu-west-1", false));
    assert!(g.config["unset_name"].is_none(), "granted but not set");
    assert!(!g.config.contains_key("not_granted"));
    assert_eq!(g.max_requests_per_attempt, Some(7));
    assert_eq!(g.max_response_bytes, None);
    assert_eq!(
        g.allows("https", "api.example.com", 443),
        Some("https://api.example.com")
    );
    assert_eq!(g.allows("https", "www.example.com", 443), None);

    // The ceiling as it is now: narrowing it takes effect without rewriting the grant.
    put_policy(&r, "acme", json!({"allowed_outbound_hosts": []})).await;
    let g = grants::load(r.store.as_ref(), Some(keyring.as_ref()), tenant_id, job_id)
        .await
        .unwrap();
    assert_eq!(g.allows("https", "api.example.com", 443), None);
    assert!(!g.job_hosts.is_empty() && g.tenant_hosts.is_empty());

    // No keyring, or a wrong one: an error naming the setting or the entry, never a value.
    let err = grants::load(r.store.as_ref(), None, tenant_id, job_id)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("SANDFIRE_SECRETS_KEY"),
        "{err:#}"
    );
    let wrong = Keyring::new(vec![(1, [9; 32])], 1).unwrap();
    let err = grants::load(r.store.as_ref(), Some(&wrong), tenant_id, job_id)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("\"api_token\"") || text.contains("\"region\""),
        "{text}"
    );
    assert!(
        !text.contains("token-value-granted") && !text.contains("eu-west-1"),
        "{text}"
    );

    // A job of another tenant is not found through this tenant.
    assert!(
        grants::load(
            r.store.as_ref(),
            Some(keyring.as_ref()),
            tenant_id + 1,
            job_id
        )
        .await
        .is_err()
    );
    r.shutdown().await;
}

#[tokio::test]
async fn rotation_reencrypts_every_entry_under_the_new_key() {
    let r = TestRunner::start().await;
    let a = r.tenant("tenant-a").await;
    let b = r.tenant("tenant-b").await;
    put_config(&r, &a, "region", "eu-west-1", false).await;
    put_config(&r, &a, "api_token", "a-secret-token", true).await;
    put_config(&r, &b, "region", "us-east-1", false).await;

    // Key 2 becomes active; key 1 still decrypts the old rows.
    let new_key = [42u8; 32];
    let rotated = Arc::new(Keyring::new(vec![(1, TEST_SECRETS_KEY), (2, new_key)], 2).unwrap());
    let r2 = r
        .second_runner({
            let rotated = rotated.clone();
            move |s| s.keyring = Some(rotated)
        })
        .await;
    let (_, got) = r2
        .call(Method::GET, "/v1/config/region", Some(&a.key), None)
        .await;
    assert_eq!(
        (got["value"].as_str(), got["key_id"].as_i64()),
        (Some("eu-west-1"), Some(1))
    );
    // A new write uses the active key.
    let (_, put) = put_config(&r2, &b, "new_entry", "sealed-under-two", false).await;
    assert_eq!(put["key_id"], 2);

    let (status, _) = r2
        .call(
            Method::POST,
            "/v1/admin/config/reencrypt",
            Some(&a.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "admin only");
    let (status, report) = r2
        .call(
            Method::POST,
            "/v1/admin/config/reencrypt",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["active_key_id"], 2);
    assert_eq!(report["reencrypted"], 3);
    assert_eq!(report["failed"], 0);
    assert_eq!(
        r.count("SELECT count(*) FROM tenant_config WHERE key_id <> 2")
            .await,
        0
    );

    // Key 1 can now be dropped: a ring of key 2 alone reads everything.
    let only_two = Keyring::new(vec![(2, new_key)], 2).unwrap();
    r.upload(&a, "hello", "hello").await;
    put_grant(&r, &a, "hello", json!({"config": ["region", "api_token"]})).await;
    let (tenant_id, job_id) = ids(&r, "tenant-a", "hello").await;
    let g = grants::load(r.store.as_ref(), Some(&only_two), tenant_id, job_id)
        .await
        .unwrap();
    assert_eq!(g.config["region"].as_ref().unwrap().value, "eu-west-1");
    assert_eq!(
        g.config["api_token"].as_ref().unwrap().value,
        "a-secret-token"
    );

    // Again: nothing left to do.
    let (_, report) = r2
        .call(
            Method::POST,
            "/v1/admin/config/reencrypt",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(report["reencrypted"], 0);
    // A runner without key 2 reports what it cannot read instead of failing.
    let (_, report) = r
        .call(
            Method::POST,
            "/v1/admin/config/reencrypt",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(report["active_key_id"], 1);
    assert_eq!(
        (report["reencrypted"].as_i64(), report["failed"].as_i64()),
        (Some(0), Some(4))
    );
    assert_eq!(report["failed_key_ids"], json!([2]));
    r2.shutdown().await;
    r.shutdown().await;
}

#[tokio::test]
async fn a_reseal_pages_through_stale_entries_and_never_overwrites_a_newer_value() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    for name in ["a_entry", "b_entry", "c_entry"] {
        put_config(&r, &t, name, &format!("old-{name}"), false).await;
    }
    let store: &dyn Store = r.store.as_ref();
    // Under active key 2, every row (key 1) is stale; pages follow (tenant, name).
    let first = store.config_stale(2, None, 2).await.unwrap();
    let names: Vec<&str> = first.iter().map(|row| row.name.as_str()).collect();
    assert_eq!(names, ["a_entry", "b_entry"]);
    let last = first.last().unwrap();
    let rest = store
        .config_stale(2, Some((last.tenant_id, last.name.clone())), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].name, "c_entry");
    assert!(store.config_stale(1, None, 10).await.unwrap().is_empty());

    // The tenant replaces a value after it was read for re-sealing: the re-seal of the old
    // value is refused, the new value stays.
    put_config(&r, &t, "a_entry", "newer-value", false).await;
    let rotated = Keyring::new(vec![(1, TEST_SECRETS_KEY), (2, [42; 32])], 2).unwrap();
    let reseal = |row: &sandfire::store::ConfigSealedRow, plain: &str| ConfigReseal {
        tenant_id: row.tenant_id,
        name: row.name.clone(),
        old: row.sealed.clone(),
        new: rotated
            .seal(row.tenant_id, &row.name, plain.as_bytes())
            .unwrap(),
    };
    let written = store
        .config_reseal(&[
            reseal(&first[0], "old-a_entry"),
            reseal(&first[1], "old-b_entry"),
        ])
        .await
        .unwrap();
    assert_eq!(written, 1, "only b_entry was unchanged since it was read");
    let (_, a) = r
        .call(Method::GET, "/v1/config/a_entry", Some(&t.key), None)
        .await;
    assert_eq!(
        (a["value"].as_str(), a["key_id"].as_i64()),
        (Some("newer-value"), Some(1))
    );
    let key_of_b: i32 =
        sqlx::query_scalar("SELECT key_id FROM tenant_config WHERE name = 'b_entry'")
            .fetch_one(r.store.pool())
            .await
            .unwrap();
    assert_eq!(key_of_b, 2);
    r.shutdown().await;
}
