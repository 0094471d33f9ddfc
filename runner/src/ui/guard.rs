//! What every dashboard response and request passes through: security headers on the way out,
//! and on the way in a refusal (403) of every state-changing request that did not come from a
//! page of this same origin (cross-site request forgery).
//!
//! The origin check follows the browser's own word: `Sec-Fetch-Site: same-origin`, or, from a
//! browser that does not send it, an `Origin` equal to this request's scheme and `Host`. A
//! request with neither is refused too: every browser sends one of them on a POST, so only
//! scripts would lack both, and they have the JSON API.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// No inline script or style anywhere, so neither `unsafe-inline` nor `unsafe-eval` is needed;
/// htmx is configured (`htmx-config` meta) to add no inline styles and never evaluate code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Static files set their own caching; pages show live data and session state.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Whether a state-changing request comes from a page of this origin.
pub fn same_origin(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o == host)
}

pub async fn same_origin_posts(req: Request, next: Next) -> Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads && !same_origin(&req) {
        tracing::info!(path = %req.uri().path(), "dashboard: refused a cross-origin request");
        return (
            StatusCode::FORBIDDEN,
            super::error::plain_page(
                "Refused",
                "This request did not come from a page of this dashboard (cross-origin), so it \
                 was refused. Use the dashboard's own buttons.",
            ),
        )
            .into_response();
    }
    next.run(req).await
}
