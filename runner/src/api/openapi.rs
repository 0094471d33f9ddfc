//! The OpenAPI 3.1 document of the API, served at `GET /v1/openapi.json` without auth.
//!
//! It is derived from the handlers' `#[utoipa::path]` attributes and the types of
//! `api/types.rs` and the request bodies, then completed from the route table
//! ([`super::ROUTES`]): each operation's security (tenant key, admin token, either) and its
//! error responses, grouped by status, with the codes of [`ErrorCode`] it can answer. Tests
//! check that every route of the table is in the document and nothing else is, so a route
//! added without its documentation fails the build's tests. This module must never describe
//! anything the router does not serve.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi};

use super::error::{ErrorBody, ErrorCode, ErrorDetail};
use super::{Auth, BodyLimit, ROUTES, Route};

/// Security scheme of tenant API keys (`Authorization: Bearer sk_...`).
pub const TENANT_KEY: &str = "tenant_key";
/// Security scheme of the runner's admin token (`SANDFIRE_ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sandfire API",
        description = "Background jobs as sandboxed WebAssembly components. Every error is \
            `{\"error\": {\"code\", \"message\"}}`; the codes are the `ErrorCode` schema. \
            See docs/api.md.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::health::healthz,
        crate::metrics::http::api_metrics,
        serve,
        super::jobs::upload,
        super::jobs::get,
        super::jobs::list,
        super::jobs::delete_version,
        super::capabilities::get,
        super::capabilities::put,
        super::runs::enqueue,
        super::runs::get,
        super::runs::list,
        super::runs::logs,
        super::bulk::enqueue,
        super::control::cancel,
        super::control::retry,
        super::control::delete,
        super::batches::create,
        super::batches::get,
        super::batches::cancel,
        super::queues::list,
        super::queues::put,
        super::queues::pause,
        super::queues::resume,
        super::schedules::list,
        super::schedules::put,
        super::schedules::get,
        super::schedules::delete,
        super::schedules::trigger,
        super::schedules::pause,
        super::schedules::resume,
        super::config::list,
        super::config::put,
        super::config::get,
        super::config::delete,
        super::config::reencrypt,
        super::runners::list,
        super::tenants::create,
        super::tenants::list,
        super::tenants::create_key,
        super::tenants::list_keys,
        super::tenants::disable_key,
        super::tenants::disable,
        super::tenants::enable,
        super::tenants::set_weight,
        super::tenants::get_limits,
        super::tenants::put_limits,
        super::policy::get,
        super::policy::put,
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode)),
    modifiers(&FromRouteTable),
    tags(
        (name = "jobs", description = "Components uploaded under a name, and their grants"),
        (name = "runs", description = "Enqueue, read, list, cancel, retry and delete runs"),
        (name = "batches", description = "Runs created together, with continuations"),
        (name = "queues", description = "A tenant's queues: pause, resume, concurrency"),
        (name = "schedules", description = "Recurring runs by cron"),
        (name = "config", description = "A tenant's config entries and secrets"),
        (name = "admin", description = "Tenants, keys, quotas and policies (admin token)"),
        (name = "operations", description = "Health, runners and this document"),
    )
)]
struct ApiDoc;

/// The options a job upload takes as query parameters: its defaults for every run (the same
/// fields as `RunOptionsBody`; `config::RunOptions` parses them).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct JobDefaultsQuery {
    max_attempts: Option<u32>,
    timeout_ms: Option<u64>,
    fuel: Option<u64>,
    memory_mb: Option<u32>,
    backoff_base_ms: Option<u64>,
    queue: Option<String>,
    priority: Option<i16>,
}

/// Completes the derived document from the route table: security and error responses.
struct FromRouteTable;

impl Modify for FromRouteTable {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                TENANT_KEY,
                "a tenant's API key (`sk_...`); a `read` key on GET routes only",
            ),
            (
                ADMIN_TOKEN,
                "the runner's admin token (SANDFIRE_ADMIN_TOKEN)",
            ),
        ] {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_owned());
            components.add_security_scheme(name, SecurityScheme::Http(http));
        }
        for route in ROUTES {
            let Some(op) = operation_mut(doc, route.path, route.method) else {
                // Left for the tests to report: the route is missing from the document.
                continue;
            };
            op.security = match route.auth {
                Auth::Public => None,
                Auth::Tenant => Some(vec![requirement(TENANT_KEY)]),
                Auth::Admin => Some(vec![requirement(ADMIN_TOKEN)]),
                Auth::Either => Some(vec![requirement(TENANT_KEY), requirement(ADMIN_TOKEN)]),
            };
            let has_body = op.request_body.is_some();
            let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
            for code in error_codes(route, has_body) {
                let codes = by_status.entry(code.status().as_u16()).or_default();
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
            for (status, codes) in by_status {
                let names: Vec<String> =
                    codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
                let mut description = format!("error: {}", names.join(", "));
                if matches!(status, 429 | 503) {
                    description.push_str(" (may carry `Retry-After`, in seconds)");
                }
                let response = ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build();
                op.responses
                    .responses
                    .insert(status.to_string(), response.into());
            }
        }
        let health = operation_mut(doc, "/healthz", "get");
        if let Some(op) = health {
            op.security = None;
        }
    }
}

fn requirement(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::new(scheme, Vec::<String>::new())
}

/// Every error code a route can answer: its own, and those of its kind.
pub fn error_codes(route: &Route, has_body: bool) -> Vec<ErrorCode> {
    use ErrorCode::*;
    // Any request: a NUL or an over-long name in the path (`limits::clean_uri`), overload,
    // a bug.
    let mut codes = vec![BadRequest, NameTooLong, Overloaded, Internal];
    match route.auth {
        Auth::Public => {}
        Auth::Tenant => {
            codes.extend([Unauthorized, DatabaseUnavailable]);
            if route.method != "get" {
                codes.push(Forbidden);
            }
        }
        Auth::Admin => codes.extend([Unauthorized, AdminDisabled, DatabaseUnavailable]),
        Auth::Either => codes.extend([Unauthorized, DatabaseUnavailable]),
    }
    if has_body {
        codes.extend([RequestTimeout, PayloadTooLarge]);
        if route.limit != BodyLimit::Upload {
            codes.push(UnsupportedMediaType);
        }
    }
    codes.extend_from_slice(route.errors);
    codes
}

fn operation_mut<'a>(
    doc: &'a mut utoipa::openapi::OpenApi,
    path: &str,
    method: &str,
) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "put" => item.put.as_mut(),
        "post" => item.post.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

/// The methods of a path item that carry an operation.
pub fn methods_of(item: &utoipa::openapi::PathItem) -> Vec<&'static str> {
    [
        ("get", item.get.is_some()),
        ("put", item.put.is_some()),
        ("post", item.post.is_some()),
        ("delete", item.delete.is_some()),
        ("patch", item.patch.is_some()),
        ("head", item.head.is_some()),
        ("options", item.options.is_some()),
        ("trace", item.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(m, present)| present.then_some(m))
    .collect()
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serialises")
});

/// `GET /v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    operation_id = "openapi_document",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json", body = Object)),
)]
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn json() -> Value {
        serde_json::from_str(&DOCUMENT_JSON).expect("the document parses as JSON")
    }

    #[test]
    fn every_route_of_the_table_is_documented_and_nothing_else() {
        let doc = document();
        let documented: BTreeSet<(String, &str)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| methods_of(item).into_iter().map(|m| (path.clone(), m)))
            .collect();
        let mut served: BTreeSet<(String, &str)> = ROUTES
            .iter()
            .map(|r| (r.path.to_owned(), r.method))
            .collect();
        served.insert(("/healthz".to_owned(), "get"));
        served.insert(("/metrics".to_owned(), "get"));
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the OpenAPI document (add #[utoipa::path] and list them in \
             ApiDoc): {undocumented:?}"
        );
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            unserved.is_empty(),
            "documented but not served: {unserved:?}"
        );
        // The table's routes plus /healthz and /metrics (served outside the table).
        assert_eq!(
            ROUTES.len() + 2,
            documented.len(),
            "a route is listed twice"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_ref_resolves() {
        let doc = json();
        let version = doc["openapi"].as_str().expect("an openapi field");
        assert!(version.starts_with("3.1."), "openapi is {version}");
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(
            refs.len() > 40,
            "only {} $refs: the types are not referenced",
            refs.len()
        );
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r} is not a local $ref"));
            assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
        }
    }

    /// The document's stand-ins for `config` types (the upload's query parameters, a job's
    /// defaults, a tenant's limits) name exactly the fields those types read and write.
    #[test]
    fn mirrors_of_config_types_name_the_same_fields() {
        use crate::api::types::{RunOptionsBody, TenantLimitsBody};
        use crate::config::{RunOptions, TenantLimits};
        fn keys(v: impl serde::Serialize) -> BTreeSet<String> {
            let v = serde_json::to_value(v).unwrap();
            v.as_object().unwrap().keys().cloned().collect()
        }
        let all = RunOptions {
            max_attempts: Some(1),
            timeout_ms: Some(1),
            fuel: Some(1),
            memory_mb: Some(1),
            backoff_base_ms: Some(1),
            queue: Some("q".into()),
            priority: Some(1),
        };
        assert_eq!(keys(&all), keys(RunOptionsBody::from(&all)));
        let params: BTreeSet<String> = JobDefaultsQuery::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(params, keys(&all));
        let limits = TenantLimits::default();
        assert_eq!(keys(&limits), keys(TenantLimitsBody::from(&limits)));
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                o.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn operations_carry_their_auth_and_error_codes() {
        let doc = json();
        let op = &doc["paths"]["/v1/runs/{id}/cancel"]["post"];
        assert_eq!(op["security"], serde_json::json!([{TENANT_KEY: []}]));
        let conflict = op["responses"]["409"]["description"].as_str().unwrap();
        assert!(conflict.contains("`conflict`"), "{conflict}");
        assert!(
            op["responses"]["403"]["description"]
                .as_str()
                .unwrap()
                .contains("`forbidden`")
        );
        let admin = &doc["paths"]["/v1/tenants"]["post"];
        assert_eq!(admin["security"], serde_json::json!([{ADMIN_TOKEN: []}]));
        assert!(
            admin["responses"]["403"]["description"]
                .as_str()
                .unwrap()
                .contains("`admin_disabled`")
        );
        let upload = &doc["paths"]["/v1/jobs/{name}"]["put"];
        assert!(upload["requestBody"]["content"]["application/octet-stream"].is_object());
        assert!(
            upload["responses"]["422"]["description"]
                .as_str()
                .unwrap()
                .contains("`not_wasm`")
        );
        assert!(doc["paths"]["/v1/openapi.json"]["get"]["security"].is_null());
        // Every code of the table is in the schema clients match on.
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
    }
}
