//! The journal of one attempt: the log lines and the latest progress a running job reported.
//!
//! The sandbox writes to it (host `log`/`progress` calls, captured stdout/stderr) while the
//! worker reads from it, possibly while the attempt is still running (`drain_lines`), so long
//! attempts' logs reach the database before they end. Every bound is applied here, on the way
//! in: a guest must never be able to make the runner hold more than `max_log_lines` lines of at
//! most `max_log_line_bytes` bytes for one attempt. This module never decides an outcome and
//! never touches wasmtime.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use super::redact::Redactor;
use crate::model::Level;

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub level: Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// The latest progress a job reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// 0..=100 (the host clamps larger values).
    pub percent: u8,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// The bounds applied to every line written to a journal (from `SandboxConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogBounds {
    pub max_lines: usize,
    /// Bytes of one line: the message and its fields' keys and values together.
    pub max_line_bytes: usize,
    /// Fields of one line.
    pub max_fields: usize,
}

/// Log lines and progress of one attempt, shared by the sandbox (writer) and the worker
/// (reader). Create one per attempt: the line limit counts every line accepted since `new`.
#[derive(Debug, Default)]
pub struct Journal {
    inner: Mutex<JournalInner>,
}

#[derive(Debug, Default)]
struct JournalInner {
    /// Lines written and not yet drained.
    lines: Vec<LogLine>,
    /// Lines accepted since the journal was created, drained or not: the per-attempt bound.
    accepted: usize,
    /// Lines refused because a bound was reached.
    dropped: u64,
    /// Bytes of lines (message plus field names and values) accepted since creation.
    accepted_bytes: usize,
    /// The tenant's `max_log_bytes_per_attempt`, if any.
    byte_budget: Option<usize>,
    progress: Option<Progress>,
    /// Set once the attempt's secrets are loaded: every later line and progress message is
    /// redacted on the way in.
    redactor: Option<Arc<Redactor>>,
}

impl Journal {
    pub fn new() -> Journal {
        Journal::default()
    }

    /// A journal that also refuses lines once the attempt has written `budget` bytes of log
    /// (messages plus field names and values, after truncation).
    pub fn with_byte_budget(budget: Option<usize>) -> Journal {
        let journal = Journal::default();
        journal.lock().byte_budget = budget;
        journal
    }

    /// The byte budget this journal was created with.
    pub fn byte_budget(&self) -> Option<usize> {
        self.lock().byte_budget
    }

    /// Takes the lines written so far (oldest first); later calls return only newer lines.
    pub fn drain_lines(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.lock().lines)
    }

    /// The most recent progress report, if the job made one.
    pub fn progress(&self) -> Option<Progress> {
        self.lock().progress.clone()
    }

    /// Redacts every line and progress message written from now on.
    pub(crate) fn set_redactor(&self, redactor: Arc<Redactor>) {
        self.lock().redactor = Some(redactor);
    }

    /// The redactor, once the attempt's secrets are loaded.
    pub(crate) fn redactor(&self) -> Option<Arc<Redactor>> {
        self.lock().redactor.clone()
    }

    /// How many lines were refused because the attempt reached its line limit.
    pub fn dropped_lines(&self) -> u64 {
        self.lock().dropped
    }

    /// Appends a line, truncating the message and then the fields to the line's byte bound
    /// (one budget for all of them) and dropping fields past `max_fields`, or counts it as
    /// dropped once the attempt has written `max_lines` lines.
    pub(crate) fn push(
        &self,
        bounds: &LogBounds,
        level: Level,
        message: &str,
        fields: Vec<(String, String)>,
    ) {
        let mut inner = self.lock();
        if inner.accepted >= bounds.max_lines {
            inner.dropped += 1;
            return;
        }
        // Redacted before truncation, so a cut cannot leave half a secret behind.
        let (message, fields) = match &inner.redactor {
            None => (std::borrow::Cow::Borrowed(message), fields),
            // `redact_cut`: a captured stdout line may end where the capture's bound cut it.
            Some(r) => (
                std::borrow::Cow::Owned(r.redact_cut(message)),
                fields
                    .into_iter()
                    .map(|(k, v)| (r.redact(&k).into_owned(), r.redact(&v).into_owned()))
                    .collect(),
            ),
        };
        let message = truncate(&message, bounds.max_line_bytes).to_owned();
        let fields = bound_fields(
            fields,
            bounds.max_line_bytes - message.len(),
            bounds.max_fields,
        );
        let bytes = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if inner
            .byte_budget
            .is_some_and(|budget| inner.accepted_bytes + bytes > budget)
        {
            inner.dropped += 1;
            return;
        }
        inner.accepted += 1;
        inner.accepted_bytes += bytes;
        inner.lines.push(LogLine {
            at: Utc::now(),
            level,
            message,
            fields,
        });
    }

    /// Appends a line written by the runner itself (not the guest), past the line bound: used
    /// once per attempt for the "N lines dropped" note, so a reader knows lines are missing.
    pub(crate) fn push_note(&self, level: Level, message: String) {
        let mut inner = self.lock();
        let message = match &inner.redactor {
            Some(r) => r.redact(&message).into_owned(),
            None => message,
        };
        inner.lines.push(LogLine {
            at: Utc::now(),
            level,
            message,
            fields: Vec::new(),
        });
    }

    pub(crate) fn set_progress(&self, bounds: &LogBounds, percent: u8, message: &str) {
        let mut inner = self.lock();
        let message = match &inner.redactor {
            Some(r) => r.redact(message).into_owned(),
            None => message.to_owned(),
        };
        inner.progress = Some(Progress {
            percent: percent.min(100),
            message: truncate(&message, bounds.max_line_bytes).to_owned(),
            at: Utc::now(),
        });
    }

    fn lock(&self) -> MutexGuard<'_, JournalInner> {
        // A panic while holding this lock leaves plain data behind, still worth reading.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a char boundary.
pub(crate) fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Fields share what the message left of the line's byte budget, so a line with thousands of
/// fields costs no more than one long message; fields past the budget or past `max_fields`
/// are dropped.
fn bound_fields(
    fields: Vec<(String, String)>,
    max_bytes: usize,
    max_fields: usize,
) -> Vec<(String, String)> {
    let mut budget = max_bytes;
    let mut kept = Vec::new();
    for (key, value) in fields.into_iter().take(max_fields) {
        if budget == 0 {
            break;
        }
        let key = truncate(&key, budget).to_owned();
        budget -= key.len();
        let value = truncate(&value, budget).to_owned();
        budget -= value.len();
        kept.push((key, value));
    }
    kept
}

#[cfg(test)]
mod byte_budget_tests {
    use super::*;

    #[test]
    fn lines_past_the_byte_budget_are_dropped_and_counted() {
        let bounds = LogBounds {
            max_lines: 1000,
            max_line_bytes: 8192,
            max_fields: 64,
        };
        let journal = Journal::with_byte_budget(Some(100));
        for _ in 0..5 {
            journal.push(&bounds, Level::Info, &"x".repeat(30), Vec::new());
        }
        // 3 × 30 bytes fit in 100, the fourth would not.
        assert_eq!(journal.drain_lines().len(), 3);
        assert_eq!(journal.dropped_lines(), 2);
        // A short line that still fits is accepted.
        journal.push(&bounds, Level::Info, "0123456789", Vec::new());
        assert_eq!(journal.drain_lines().len(), 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: LogBounds = LogBounds {
        max_lines: 3,
        max_line_bytes: 5,
        max_fields: 2,
    };

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn bounds_lines_per_attempt_even_across_drains() {
        let journal = Journal::new();
        journal.push(&BOUNDS, Level::Info, "one", Vec::new());
        journal.push(&BOUNDS, Level::Info, "two", Vec::new());
        assert_eq!(journal.drain_lines().len(), 2);
        journal.push(&BOUNDS, Level::Info, "three", Vec::new());
        journal.push(&BOUNDS, Level::Info, "four", Vec::new());
        journal.push(&BOUNDS, Level::Info, "five", Vec::new());
        let lines = journal.drain_lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].message, "three");
        assert_eq!(journal.dropped_lines(), 2);
        assert!(journal.drain_lines().is_empty());
    }

    fn fields(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
    }

    #[test]
    fn the_message_and_fields_share_one_line_budget() {
        let journal = Journal::new();
        journal.push(&BOUNDS, Level::Warn, "message too long", fields(3));
        let line = &journal.drain_lines()[0];
        assert_eq!(line.message, "messa");
        assert!(line.fields.is_empty(), "{:?}", line.fields);

        journal.push(&BOUNDS, Level::Warn, "m", fields(3));
        let line = &journal.drain_lines()[0];
        assert_eq!(line.fields, vec![("k0".to_owned(), "v0".to_owned())]);
    }

    #[test]
    fn fields_are_capped_in_number() {
        let journal = Journal::new();
        let bounds = LogBounds {
            max_line_bytes: 1 << 20,
            ..BOUNDS
        };
        journal.push(&bounds, Level::Info, "many", fields(1000));
        assert_eq!(journal.drain_lines()[0].fields.len(), 2);
    }

    #[test]
    fn progress_is_clamped_and_latest_wins() {
        let journal = Journal::new();
        assert!(journal.progress().is_none());
        journal.set_progress(&BOUNDS, 10, "start");
        journal.set_progress(&BOUNDS, 250, "finishing");
        let progress = journal.progress().unwrap();
        assert_eq!(progress.percent, 100);
        assert_eq!(progress.message, "finis");
    }
}
