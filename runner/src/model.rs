//! The vocabulary of DESIGN.md as Rust types: run states, attempt outcomes, log levels.
//!
//! The same words are used by the API, the database enums (`migrations/`), the dashboard and the
//! docs; `as_str` and `parse` are the one mapping between them.

use serde::{Deserialize, Serialize};

/// The state of a run. The database enforces the allowed transitions (see
/// `docs/job-lifecycle.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "run_state", rename_all = "snake_case")]
pub enum RunState {
    /// Due later (delayed or snoozed); promoted to `enqueued` when due.
    Scheduled,
    /// Waits for a parent run or batch.
    Awaiting,
    /// Ready to be claimed by a runner.
    Enqueued,
    /// An attempt is executing.
    Running,
    /// An attempt failed; the next one is scheduled.
    Retrying,
    /// Finished with an output.
    Succeeded,
    /// Attempts exhausted or a fatal error.
    Failed,
    /// Cancelled by a user or because a parent can never satisfy its condition.
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 8] = [
        RunState::Scheduled,
        RunState::Awaiting,
        RunState::Enqueued,
        RunState::Running,
        RunState::Retrying,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Scheduled => "scheduled",
            RunState::Awaiting => "awaiting",
            RunState::Enqueued => "enqueued",
            RunState::Running => "running",
            RunState::Retrying => "retrying",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Terminal states never change again (except by an explicit manual retry).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

/// How one attempt ended. Classified from the type of what happened, never from message text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "attempt_outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The job returned an output.
    Ok,
    /// The job returned an error (retryable or not).
    Error,
    /// The attempt used up its fuel (CPU budget).
    OutOfFuel,
    /// The attempt tried to grow memory past its cap.
    MemoryLimit,
    /// The attempt ran past its wall-clock deadline.
    Timeout,
    /// The guest panicked, hit `unreachable`, overflowed its stack or trapped otherwise.
    Panic,
    /// The attempt was interrupted because the run was cancelled.
    Cancelled,
    /// The runner executing the attempt stopped heart-beating.
    RunnerLost,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::OutOfFuel => "out_of_fuel",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::Timeout => "timeout",
            Outcome::Panic => "panic",
            Outcome::Cancelled => "cancelled",
            Outcome::RunnerLost => "runner_lost",
        }
    }
}

/// Severity of a log line written by a job.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "log_level", rename_all = "snake_case")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}
