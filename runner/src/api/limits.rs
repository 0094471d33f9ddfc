//! Per-request limits of the API: a cap on requests in flight (`503 overloaded` beyond it,
//! never a queue), a deadline for the request body (`408`), clean refusals of NUL characters
//! and oversized names in paths and queries, and the byte budget of list responses.
//!
//! These guard the runner against clients that are many, slow or hostile; they must never
//! queue work without bound or let a bad value reach the database (which answers NUL with an
//! error text no client should see).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::error::{ApiError, ErrorCode};

/// Longest name a path segment may carry (job, schedule, queue, tenant names and run ids are
/// all far shorter); a longer one is refused before any lookup.
pub const MAX_PATH_SEGMENT_BYTES: usize = 255;

/// Refuses a request beyond `max` in flight at once with `503 overloaded` and `Retry-After`.
pub fn inflight_cap(
    max: usize,
) -> impl Fn(Request, Next) -> Pin<Box<dyn Future<Output = Response> + Send>> + Clone {
    let permits = Arc::new(Semaphore::new(max.max(1)));
    move |req: Request, next: Next| {
        let permits = permits.clone();
        Box::pin(async move {
            let Ok(_permit) = permits.try_acquire_owned() else {
                let mut resp = ApiError::new(
                    ErrorCode::Overloaded,
                    "the runner is handling as many requests as it allows; retry after the \
                     Retry-After delay",
                )
                .into_response();
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            };
            next.run(req).await
        })
    }
}

/// Gives the request body `timeout` from now to arrive in full. A body still arriving after
/// it fails its reader, and the request is answered `408` with the connection closed.
pub fn body_deadline(
    timeout: Duration,
) -> impl Fn(Request, Next) -> Pin<Box<dyn Future<Output = Response> + Send>> + Clone {
    move |req: Request, next: Next| {
        Box::pin(async move {
            let expired = Arc::new(AtomicBool::new(false));
            let flag = expired.clone();
            let req = req.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(timeout)),
                    expired: flag,
                })
            });
            let resp = next.run(req).await;
            if !expired.load(Ordering::Acquire) {
                return resp;
            }
            let mut resp = ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms; send it faster or in \
                     smaller requests",
                    timeout.as_millis()
                ),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Refuses a NUL character (`%00`) anywhere in the path or query, and path segments longer
/// than [`MAX_PATH_SEGMENT_BYTES`], before any handler looks a name up.
pub async fn clean_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| s.contains("%00");
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::bad_request(
            "the path or query contains a NUL character (%00): names and values may not \
             contain NUL",
        )
        .into_response();
    }
    if let Some(segment) = uri
        .path()
        .split('/')
        .find(|s| decoded_len(s) > MAX_PATH_SEGMENT_BYTES)
    {
        return ApiError::new(
            ErrorCode::NameTooLong,
            format!(
                "a name in the path is {} bytes long; names are at most {MAX_PATH_SEGMENT_BYTES} \
                 bytes",
                decoded_len(segment)
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Length of a path segment once its `%XX` escapes are decoded.
fn decoded_len(segment: &str) -> usize {
    segment.len() - 2 * segment.matches('%').count()
}

/// Refuses JSON text containing NUL (`\u0000`) in any string or key: PostgreSQL cannot store
/// it in `jsonb`, and the client should hear which field is wrong, not the database's words.
pub fn reject_nul(field: &str, value: &Value) -> Result<(), ApiError> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(value) {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!(
                "{field}: JSON text may not contain NUL characters (\\u0000); encode binary \
                 data, e.g. as base64"
            ),
        ));
    }
    Ok(())
}

/// Refuses text containing NUL (e.g. an idempotency key) with the field's name.
pub fn reject_nul_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{field}: text may not contain NUL characters (\\u0000)"),
        ));
    }
    Ok(())
}

/// A JSON list response built item by item within a byte budget: items are serialised once,
/// and the list stops before the item that would carry it over the budget (the first item is
/// always kept, so a page is never empty while items remain).
#[derive(Debug)]
pub struct BudgetedList {
    body: Vec<u8>,
    budget: usize,
    items: usize,
    /// The list stopped before its last item because of the budget.
    pub truncated: bool,
}

impl BudgetedList {
    /// Starts `{"<key>":[`.
    pub fn new(key: &str, budget: usize) -> BudgetedList {
        let mut body = Vec::with_capacity(4096.min(budget));
        body.extend_from_slice(b"{");
        serde_json::to_writer(&mut body, key).expect("a key serialises");
        body.extend_from_slice(b":[");
        BudgetedList {
            body,
            budget,
            items: 0,
            truncated: false,
        }
    }

    /// Adds an item; false (and nothing added) when it does not fit the budget.
    pub fn push(&mut self, item: &impl serde::Serialize) -> Result<bool, ApiError> {
        if self.truncated {
            return Ok(false);
        }
        let encoded = serde_json::to_vec(item).map_err(|e| {
            tracing::error!(error = %e, "serialising a list item");
            ApiError::internal()
        })?;
        // Room for the separator and the closing fields.
        if self.items > 0 && self.body.len() + encoded.len() + 256 > self.budget {
            self.truncated = true;
            return Ok(false);
        }
        if self.items > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(&encoded);
        self.items += 1;
        Ok(true)
    }

    /// Closes the list, adds the given fields and `"truncated"`, and answers it.
    pub fn finish(mut self, fields: &[(&str, Value)]) -> Response {
        self.body.extend_from_slice(b"]");
        for (key, value) in fields {
            self.body.push(b',');
            let _ = serde_json::to_writer(&mut self.body, key);
            self.body.push(b':');
            let _ = serde_json::to_writer(&mut self.body, value);
        }
        self.body.extend_from_slice(b",\"truncated\":");
        self.body
            .extend_from_slice(if self.truncated { b"true" } else { b"false" });
        self.body.push(b'}');
        (
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(self.body),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn budgeted_list_stops_at_the_budget_but_keeps_one_item() {
        let big = "x".repeat(1000);
        let mut list = BudgetedList::new("lines", 2500);
        assert!(list.push(&json!({ "m": big })).unwrap());
        assert!(list.push(&json!({ "m": big })).unwrap());
        assert!(!list.push(&json!({ "m": big })).unwrap());
        assert!(list.truncated);
        let resp = list.finish(&[("next_after", json!(7))]);
        assert_eq!(resp.status(), axum::http::StatusCode::OK);

        let mut one = BudgetedList::new("lines", 10);
        assert!(
            one.push(&json!({ "m": big })).unwrap(),
            "the first item always fits"
        );
    }

    #[test]
    fn nul_is_found_in_nested_strings_and_keys() {
        assert!(reject_nul("input", &json!({"a": ["ok", {"b": "x\u{0}"}]})).is_err());
        assert!(reject_nul("input", &json!({"a\u{0}": 1})).is_err());
        assert!(reject_nul("input", &json!({"a": "\\u0000 is text here"})).is_ok());
    }

    #[test]
    fn decoded_segment_length_counts_escapes_once() {
        assert_eq!(decoded_len("abc"), 3);
        assert_eq!(decoded_len("a%20b"), 3);
    }
}
