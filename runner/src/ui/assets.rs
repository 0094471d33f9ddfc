//! The dashboard's static files, compiled into the binary: the vendored htmx (pinned 2.0.11,
//! unmodified), our small `app.js`, the stylesheet and the favicon. No CDN, no build step.
//! Their names carry the version, so they may be cached for a long time.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx-2.0.11.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/htmx-2.0.11.min.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

fn file(name: &str, cache: &'static str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, cache),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

pub async fn serve(Path(name): Path<String>) -> Response {
    // htmx is immutable under its versioned name; our own files change with the runner.
    let cache = if name.starts_with("htmx-") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    file(&name, cache)
}

pub async fn favicon() -> Response {
    file("favicon.svg", "public, max-age=86400")
}

pub async fn robots() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User-agent: *\nDisallow: /\n",
    )
        .into_response()
}
