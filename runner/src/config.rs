//! Settings of a runner and the limits every run's options must stay within.
//!
//! `Settings` is plain data with production defaults; `main.rs` fills it from flags and the
//! environment, tests fill it in code (with short intervals). Nothing here reads the
//! environment itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sandbox::SandboxConfig;

/// Everything one `sandfire serve` process needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Token that authorises the admin routes (`/v1/tenants`). `None` disables them.
    pub admin_token: Option<String>,
    pub worker: WorkerSettings,
    pub limits: RunLimits,
    /// How long ended runs are kept, and how the pruner deletes them.
    pub retention: RetentionSettings,
    pub sandbox: SandboxConfig,
    /// Largest accepted component upload (HTTP 413 beyond).
    pub max_component_bytes: usize,
    /// Largest accepted JSON request body, e.g. a run's input (HTTP 413 beyond).
    pub max_request_bytes: usize,
    /// Largest body of a bulk enqueue (`POST /v1/runs`).
    pub max_bulk_request_bytes: usize,
    /// Limits of the HTTP server (timeouts, connection and request caps, response budget).
    pub http: HttpSettings,
    /// Database connections of the API. The store handed to `Runner::start` is the API's; this
    /// is what `sandfire serve` sizes it with.
    pub api_pool_size: u32,
    /// Database connections of the worker, its heartbeats and the maintenance services: a
    /// pool of their own, so API traffic can never starve a lease renewal.
    pub worker_pool_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            admin_token: None,
            worker: WorkerSettings::default(),
            limits: RunLimits::default(),
            retention: RetentionSettings::default(),
            sandbox: SandboxConfig::default(),
            max_component_bytes: 16 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_bulk_request_bytes: 64 * 1024 * 1024,
            http: HttpSettings::default(),
            api_pool_size: 16,
            worker_pool_size: 16,
        }
    }
}

/// What bounds the HTTP server: every limit guards the runner (and so every tenant's attempts)
/// against clients that are slow, many or greedy. See `docs/operations.md`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A connection must deliver a request's complete headers within this (slowloris).
    pub header_timeout: Duration,
    /// A request must deliver its complete body within this, from when its handler starts
    /// reading it (slow bodies); answered with 408.
    pub body_timeout: Duration,
    /// Largest request head (request line plus headers); answered with 431.
    pub max_header_bytes: usize,
    /// Most open client connections; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Most requests handled at once; beyond, `503 overloaded` with `Retry-After`.
    pub max_inflight_requests: usize,
    /// Largest list response (runs, log lines): a page stops at this budget and says where to
    /// continue.
    pub response_budget_bytes: usize,
    /// Input or output larger than this is left out of run lists (`input_truncated`).
    pub list_value_bytes: usize,
    /// How long `/healthz` reuses its last database check.
    pub health_cache: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_inflight_requests: 512,
            response_budget_bytes: 4 * 1024 * 1024,
            list_value_bytes: 4 * 1024,
            health_cache: Duration::from_secs(1),
        }
    }
}

/// How the worker pool claims and executes runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Attempts executed concurrently by this runner.
    pub slots: usize,
    /// Queues this runner serves.
    pub queues: Vec<String>,
    /// Most runs held ahead of free slots (claimed, leases renewed, waiting for a slot). The
    /// runner holds fewer when runs are long: each claim asks for about twice what was
    /// dispatched during the previous one, at least `slots`.
    pub prefetch: usize,
    /// Fallback poll when no NOTIFY arrives (NOTIFY is the normal wake-up).
    pub poll_interval: Duration,
    /// How long a claimed run is held without a heartbeat before it may be rescued.
    pub lease: Duration,
    /// How often a runner extends the leases of the attempts it is executing.
    pub heartbeat: Duration,
    /// Most completions written in one statement.
    pub complete_batch: usize,
    /// While busy, how long the completer waits for more completions before writing.
    pub complete_linger: Duration,
    /// How often logs and progress of long attempts are flushed while they run.
    pub journal_flush: Duration,
    /// Start executing runs at all (a runner may serve only the API).
    pub enabled: bool,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            slots: 16,
            queues: vec!["default".to_string()],
            prefetch: 512,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            complete_batch: 512,
            complete_linger: Duration::from_millis(2),
            journal_flush: Duration::from_millis(500),
            enabled: true,
        }
    }
}

/// Retention: how long ended runs are kept, and how the pruner deletes them (see
/// `docs/retention.md`).
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// `succeeded` and `cancelled` runs are deleted this long after they finished.
    pub retention_succeeded: Duration,
    /// `failed` runs are deleted this long after they finished.
    pub retention_failed: Duration,
    /// How often the pruner looks for expired rows.
    pub prune_interval: Duration,
    /// Most rows deleted by one statement (each its own short transaction).
    pub prune_batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            retention_succeeded: Duration::from_secs(7 * 24 * 3600),
            retention_failed: Duration::from_secs(30 * 24 * 3600),
            prune_interval: Duration::from_secs(60),
            prune_batch: 1000,
        }
    }
}

/// Defaults for a run's options, and the most any job or run may ask for.
#[derive(Debug, Clone, Serialize)]
pub struct RunLimits {
    pub default: ResolvedOptions,
    pub max_attempts: u32,
    pub max_timeout_ms: u64,
    pub max_fuel: u64,
    pub max_memory_mb: u32,
    pub max_backoff_base_ms: u64,
    /// Cap on one computed backoff delay, however many attempts came before.
    pub max_backoff_ms: u64,
    /// Snoozes one run may take before its next snooze fails it (a job cannot snooze forever).
    pub max_snoozes: u32,
    /// How long an idempotency key names its run.
    pub idempotency_window_ms: u64,
    /// Furthest ahead a run may be delayed.
    pub max_delay_ms: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            default: ResolvedOptions {
                max_attempts: 5,
                timeout_ms: 60_000,
                fuel: 20_000_000_000,
                memory_mb: 64,
                backoff_base_ms: 1_000,
                queue: "default".to_string(),
                priority: 0,
            },
            max_attempts: 100,
            max_timeout_ms: 3_600_000,
            max_fuel: 10_000_000_000_000,
            max_memory_mb: 512,
            max_backoff_base_ms: 86_400_000,
            max_backoff_ms: 6 * 3_600_000,
            max_snoozes: 100,
            idempotency_window_ms: 24 * 3_600_000,
            max_delay_ms: 366 * 24 * 3_600_000,
        }
    }
}

/// The options a run executes with, after per-run → per-job → runner defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedOptions {
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub fuel: u64,
    pub memory_mb: u32,
    pub backoff_base_ms: u64,
    pub queue: String,
    pub priority: i16,
}

/// Options as a client may give them: per job at upload, or per run at enqueue. Every field is
/// optional; an absent one falls back to the job's default, then the runner's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i16>,
}

/// An option outside what the runner allows: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct OptionError {
    pub field: &'static str,
    pub reason: String,
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), OptionError> {
    if value < min || value > max {
        return Err(OptionError {
            field,
            reason: format!("{value} is outside the allowed range {min}..={max} on this runner"),
        });
    }
    Ok(())
}

/// A queue name: lowercase letters, digits, `-` and `_`, at most 63 characters.
pub fn valid_queue_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl RunOptions {
    /// Checks every given option against the runner's limits.
    pub fn validate(&self, limits: &RunLimits) -> Result<(), OptionError> {
        if let Some(v) = self.max_attempts {
            check_range("max_attempts", v.into(), 1, limits.max_attempts.into())?;
        }
        if let Some(v) = self.timeout_ms {
            check_range("timeout_ms", v, 1, limits.max_timeout_ms)?;
        }
        if let Some(v) = self.fuel {
            check_range("fuel", v, 1, limits.max_fuel)?;
        }
        if let Some(v) = self.memory_mb {
            check_range("memory_mb", v.into(), 1, limits.max_memory_mb.into())?;
        }
        if let Some(v) = self.backoff_base_ms {
            check_range("backoff_base_ms", v, 0, limits.max_backoff_base_ms)?;
        }
        if let Some(queue) = &self.queue
            && !valid_queue_name(queue)
        {
            return Err(OptionError {
                field: "queue",
                reason: format!(
                    "{queue:?} is not a queue name: use 1-63 lowercase letters, digits, '-' or '_'"
                ),
            });
        }
        Ok(())
    }

    /// Fills absent options from `fallback` (the job's defaults).
    pub fn or(&self, fallback: &RunOptions) -> RunOptions {
        RunOptions {
            max_attempts: self.max_attempts.or(fallback.max_attempts),
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
            fuel: self.fuel.or(fallback.fuel),
            memory_mb: self.memory_mb.or(fallback.memory_mb),
            backoff_base_ms: self.backoff_base_ms.or(fallback.backoff_base_ms),
            queue: self.queue.clone().or_else(|| fallback.queue.clone()),
            priority: self.priority.or(fallback.priority),
        }
    }

    /// The effective options: given ones, else the runner's defaults.
    pub fn resolve(&self, limits: &RunLimits) -> ResolvedOptions {
        let d = &limits.default;
        ResolvedOptions {
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            timeout_ms: self.timeout_ms.unwrap_or(d.timeout_ms),
            fuel: self.fuel.unwrap_or(d.fuel),
            memory_mb: self.memory_mb.unwrap_or(d.memory_mb),
            backoff_base_ms: self.backoff_base_ms.unwrap_or(d.backoff_base_ms),
            queue: self.queue.clone().unwrap_or_else(|| d.queue.clone()),
            priority: self.priority.unwrap_or(d.priority),
        }
    }
}

/// Parses a duration like `90s`, `5m`, `1h30m`, `250ms` or `2d` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: use e.g. \"30s\", \"5m\", \"1h30m\" or \"250ms\"".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration: use e.g. \"30s\", \"5m\", \"1h30m\""
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?}; use ms, s, m, h or d"
                ));
            }
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: duration too large"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("2d"), Ok(172_800_000));
        assert!(parse_duration_ms("").is_err());
        assert!(
            parse_duration_ms("10")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration_ms("ten seconds").is_err());
        assert!(parse_duration_ms("5y").is_err());
        assert!(parse_duration_ms("99999999999999999999s").is_err());
    }

    #[test]
    fn options_resolve_run_then_job_then_runner() {
        let limits = RunLimits::default();
        let job = RunOptions {
            fuel: Some(7),
            queue: Some("mail".into()),
            ..RunOptions::default()
        };
        let run = RunOptions {
            fuel: Some(9),
            ..RunOptions::default()
        };
        let resolved = run.or(&job).resolve(&limits);
        assert_eq!(resolved.fuel, 9);
        assert_eq!(resolved.queue, "mail");
        assert_eq!(resolved.max_attempts, limits.default.max_attempts);
    }

    #[test]
    fn out_of_range_option_names_the_field() {
        let limits = RunLimits::default();
        let err = RunOptions {
            memory_mb: Some(limits.max_memory_mb + 1),
            ..RunOptions::default()
        }
        .validate(&limits)
        .unwrap_err();
        assert_eq!(err.field, "memory_mb");
        let err = RunOptions {
            queue: Some("Bad Queue".into()),
            ..RunOptions::default()
        }
        .validate(&limits)
        .unwrap_err();
        assert_eq!(err.field, "queue");
    }
}
