//! The guest's stdout and stderr: bounded captures that turn complete lines into journal lines
//! as they are written (stdout as `info`, stderr as `warn`), and keep the raw text so a panic
//! message can be read back from stderr.
//!
//! A full capture silently discards further bytes: it must never report an error or trap to
//! the guest, because Rust's `println!` panics when stdout fails and a chatty job would then
//! fail for the runner's own bookkeeping. (wasmtime-wasi's `MemoryOutputPipe` traps past its
//! capacity, which is why this module exists.)

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::journal::{Journal, LogBounds};
use crate::model::Level;

/// How much a guest may write in one `write` call: a buffer size, not a budget (the budget is
/// the capture's capacity; bytes past it are dropped).
const WRITE_PERMIT: usize = 64 * 1024;

/// One captured output stream of one attempt.
#[derive(Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<CaptureInner>>,
}

struct CaptureInner {
    journal: Arc<Journal>,
    bounds: LogBounds,
    level: Level,
    capacity: usize,
    /// Everything accepted so far (at most `capacity` bytes).
    text: Vec<u8>,
    /// Where the line not yet sent to the journal starts in `text`.
    line_start: usize,
    /// How far `text` has been searched for newlines: each byte is looked at once, so a
    /// guest writing one byte at a time costs linear host time, full capture or not.
    scanned: usize,
    /// Bytes discarded because the capture was full.
    discarded: usize,
}

/// What a capture saw, read once the attempt is over.
pub(crate) struct Captured {
    pub text: String,
    pub discarded: usize,
}

impl Capture {
    pub fn new(journal: Arc<Journal>, bounds: LogBounds, level: Level, capacity: usize) -> Self {
        Capture {
            inner: Arc::new(Mutex::new(CaptureInner {
                journal,
                bounds,
                level,
                capacity,
                text: Vec::new(),
                line_start: 0,
                scanned: 0,
                discarded: 0,
            })),
        }
    }

    fn accept(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        let room = inner.capacity.saturating_sub(inner.text.len());
        let take = room.min(bytes.len());
        inner.discarded += bytes.len() - take;
        if take == 0 {
            return;
        }
        inner.text.extend_from_slice(&bytes[..take]);
        inner.emit_complete_lines();
    }

    /// Sends the last unterminated line to the journal and returns everything captured.
    pub fn finish(&self) -> Captured {
        let mut inner = self.lock();
        let start = inner.line_start;
        let end = inner.text.len();
        inner.emit_line(start, end);
        inner.line_start = end;
        Captured {
            text: String::from_utf8_lossy(&inner.text).into_owned(),
            discarded: inner.discarded,
        }
    }

    fn lock(&self) -> MutexGuard<'_, CaptureInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CaptureInner {
    fn emit_complete_lines(&mut self) {
        while let Some(newline) = self.text[self.scanned..].iter().position(|&b| b == b'\n') {
            let start = self.line_start;
            let end = self.scanned + newline;
            self.emit_line(start, end);
            self.line_start = end + 1;
            self.scanned = end + 1;
        }
        self.scanned = self.text.len();
    }

    fn emit_line(&self, start: usize, end: usize) {
        let line = String::from_utf8_lossy(&self.text[start..end]);
        let line = line.trim_end_matches('\r');
        // Blank lines (Rust's panic output starts with one) carry nothing worth a log row.
        if line.trim().is_empty() {
            return;
        }
        self.journal
            .push(&self.bounds, self.level, line, Vec::new());
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CaptureStream(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(CaptureStream(self.clone()))
    }
}

/// A handle the guest writes through; all handles of one stream share one `Capture`.
struct CaptureStream(Capture);

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    // Always writable: a full capture discards, it never makes the guest wait.
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(capacity: usize) -> (Arc<Journal>, Capture) {
        let journal = Arc::new(Journal::new());
        let bounds = LogBounds {
            max_lines: 100,
            max_line_bytes: 8,
            max_fields: 0,
        };
        let capture = Capture::new(journal.clone(), bounds, Level::Info, capacity);
        (journal, capture)
    }

    #[test]
    fn complete_lines_reach_the_journal_as_they_are_written() {
        let (journal, capture) = capture(1024);
        let mut stream = CaptureStream(capture.clone());
        stream.write(Bytes::from_static(b"one\r\ntw")).unwrap();
        let lines: Vec<_> = journal
            .drain_lines()
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(lines, ["one"]);
        stream
            .write(Bytes::from_static(b"o\n\nthree is long"))
            .unwrap();
        let captured = capture.finish();
        let lines: Vec<_> = journal
            .drain_lines()
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(lines, ["two", "three is"]);
        assert_eq!(captured.text, "one\r\ntwo\n\nthree is long");
        assert_eq!(captured.discarded, 0);
    }

    #[test]
    fn byte_at_a_time_writes_cost_linear_time() {
        let (journal, capture) = capture(64 * 1024);
        let mut stream = CaptureStream(capture.clone());
        let started = std::time::Instant::now();
        // Far past the capacity, one byte per write, no newline: each write must be O(1).
        for _ in 0..2_000_000 {
            stream.write(Bytes::from_static(b"x")).unwrap();
        }
        stream.write(Bytes::from_static(b"\nend")).unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let captured = capture.finish();
        assert_eq!(captured.text.len(), 64 * 1024);
        assert_eq!(captured.discarded, 2_000_000 + 4 - 64 * 1024);
        assert_eq!(journal.drain_lines().len(), 1);
    }

    #[test]
    fn a_full_capture_discards_without_failing() {
        let (_journal, capture) = capture(4);
        let mut stream = CaptureStream(capture.clone());
        stream.write(Bytes::from_static(b"abcdef")).unwrap();
        assert!(stream.check_write().unwrap() > 0);
        stream.write(Bytes::from_static(b"gh")).unwrap();
        let captured = capture.finish();
        assert_eq!(captured.text, "abcd");
        assert_eq!(captured.discarded, 4);
    }
}
