//! Body wrappers of an outbound request: they count bytes for the attempt's usage, enforce the
//! body caps both ways and the between-bytes timeout, and drain a request body that hyper
//! dropped unfinished.
//!
//! Why the drain: hyper's HTTP/1 client drops the request body of a request it no longer needs
//! to send (a GET whose body has no length, or one answered early). The guest is still writing
//! that body through `wasi:http`; when it sees the stream closed, wstd reports "connection
//! reset" instead of the response. Draining the rest in a detached, bounded task keeps the
//! guest's writes succeeding (measured: 4-8 of 12 loopback requests failed without it, none
//! with it; see ../shared/CAPABILITIES.md §1).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error, WasiBody};

/// How long a detached drain may take before the body is dropped anyway.
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// The guest's request body: counted into `sent`, refused past `cap`, drained when dropped
/// unfinished.
pub(super) struct RequestBody {
    inner: Option<WasiBody>,
    cap: u64,
    written: u64,
    sent: Arc<AtomicU64>,
}

impl RequestBody {
    pub fn new(inner: WasiBody, cap: u64, sent: Arc<AtomicU64>) -> RequestBody {
        RequestBody {
            inner: Some(inner),
            cap,
            written: 0,
            sent,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let written = this.written + data.len() as u64;
                    if written > this.cap {
                        // Nothing of this chunk goes out.
                        return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(written)))));
                    }
                    this.written = written;
                    this.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => {
                // Finished: nothing left to drain.
                this.inner = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        // Outside a runtime (unit tests dropping a body) there is nothing to drain into.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cap = self.cap.saturating_sub(self.written);
            // Detached on purpose: wasmtime's spawn aborts on drop, and this must outlive us.
            runtime.spawn(tokio::time::timeout(DRAIN_FOR, drain(body, cap)));
        }
    }
}

/// Reads and discards up to `cap` bytes of `body`.
async fn drain(mut body: WasiBody, cap: u64) {
    use http_body_util::BodyExt as _;
    let mut read = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            read += data.len() as u64;
            if read > cap {
                return;
            }
        }
    }
}

/// The server's response body: counted into `received`, cut off past `cap`, and failed when
/// no byte arrives within `between_bytes`.
pub(super) struct ResponseBody {
    inner: hyper::body::Incoming,
    cap: u64,
    read: u64,
    received: Arc<AtomicU64>,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl ResponseBody {
    pub fn new(
        inner: hyper::body::Incoming,
        cap: u64,
        received: Arc<AtomicU64>,
        between_bytes: Duration,
    ) -> ResponseBody {
        ResponseBody {
            inner,
            cap,
            read: 0,
            received,
            between_bytes,
            idle: Box::pin(tokio::time::sleep(between_bytes)),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    this.received
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    if this.read > this.cap {
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                            this.read,
                        )))));
                    }
                }
                let next = tokio::time::Instant::now() + this.between_bytes;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(this.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
