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
    /// Quotas for tenants that have no limit of their own (`PUT /v1/tenants/{name}/limits`).
    pub quotas: TenantLimits,
    /// Limits of the HTTP server (timeouts, connection and request caps, response budget).
    pub http: HttpSettings,
    /// Database connections of the API. The store handed to `Runner::start` is the API's; this
    /// is what `sandfire serve` sizes it with.
    pub api_pool_size: u32,
    /// Database connections of the worker, its heartbeats and the maintenance services: a
    /// pool of their own, so API traffic can never starve a lease renewal.
    pub worker_pool_size: u32,
    /// The dashboard (`/ui`).
    pub ui: UiSettings,
    /// Keys that encrypt tenants' config values at rest (`SANDFIRE_SECRETS_KEY`); `None`: the
    /// config routes answer 503 and jobs granted config cannot start.
    pub keyring: Option<std::sync::Arc<crate::capabilities::Keyring>>,
    /// Prometheus metrics (`/metrics`, see `docs/metrics.md`).
    pub metrics: MetricsSettings,
}

/// How the runner serves its Prometheus metrics.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Also serve `GET /metrics` without auth on this address (`--metrics-listen`), for a
    /// scraper on a private network; `None`: only on the API, behind the admin token.
    pub listen: Option<String>,
    /// Label the per-run counters with the tenant's name (`--metrics-tenant-labels`): one
    /// series per tenant, so only for runners with few tenants.
    pub tenant_labels: bool,
}

/// The dashboard served under `/ui` (see `docs/dashboard.md`).
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// Serve `/ui` at all (`sandfire serve --no-ui` turns it off).
    pub enabled: bool,
    /// Mark the session cookie `Secure` (behind https; `--ui-secure-cookie`).
    pub secure_cookie: bool,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// How often the run page's live log tail asks for new lines.
    pub log_poll: Duration,
    /// Database connections of the dashboard: a pool of its own, so an open dashboard never
    /// takes connections from the API or from claims.
    pub pool_size: u32,
    /// The database cancels a dashboard statement running longer than this (the page then
    /// says so), so no page can load the database for long.
    pub statement_timeout: Duration,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            enabled: true,
            secure_cookie: false,
            session_ttl: Duration::from_secs(12 * 3600),
            log_poll: Duration::from_secs(1),
            pool_size: 4,
            statement_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            admin_token: None,
            worker: WorkerSettings::default(),
            limits: RunLimits::default(),
            retention: RetentionSettings::default(),
            sandbox: SandboxConfig::default(),
            // A Python component (componentize-py) is about 18 MB, a JavaScript one 12 MB.
            max_component_bytes: 32 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_bulk_request_bytes: 64 * 1024 * 1024,
            quotas: TenantLimits::runner_defaults(),
            http: HttpSettings::default(),
            api_pool_size: 16,
            worker_pool_size: 16,
            ui: UiSettings::default(),
            keyring: None,
            metrics: MetricsSettings::default(),
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

impl Settings {
    /// The sandbox as this runner uses it: every attempt's memory cap is at most
    /// `limits.max_memory_mb` (summed over the attempt's memories), the pool's slots hold
    /// exactly that much, and there is one instance slot per worker slot (validation compiles
    /// but never instantiates, so it needs none).
    pub fn sandbox_config(&self) -> SandboxConfig {
        let mut sandbox = self.sandbox.clone();
        let max_memory = u64::from(self.limits.max_memory_mb.max(1)) * 1024 * 1024;
        sandbox.max_memory_bytes = max_memory;
        sandbox.compile_caps.max_memory_bytes = max_memory;
        sandbox.instance_slots = u32::try_from(self.worker.slots.max(1)).unwrap_or(u32::MAX);
        sandbox
    }

    /// Refuses settings a runner must not start with, naming the setting and why.
    pub fn check(&self) -> Result<(), String> {
        if let Some(token) = &self.admin_token
            && token.len() < crate::auth::MIN_ADMIN_TOKEN_BYTES
        {
            return Err(format!(
                "SANDFIRE_ADMIN_TOKEN is {} bytes long: use at least {} (e.g. `openssl rand -hex 32`)",
                token.len(),
                crate::auth::MIN_ADMIN_TOKEN_BYTES
            ));
        }
        self.quotas
            .validate()
            .map_err(|e| format!("tenant quota defaults: {e}"))
    }
}

/// A tenant's quotas. `None` means "no limit" in effective limits; in a tenant's stored
/// overrides it means "the runner's default". See `docs/security.md`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Runs not yet ended that are waiting or running (scheduled, retrying, enqueued, running).
    #[serde(default)]
    pub max_active_runs: Option<i64>,
    /// Attempts executing at once, across every runner.
    #[serde(default)]
    pub max_running: Option<i32>,
    #[serde(default)]
    pub max_schedules: Option<i32>,
    /// Shortest time between two fires of one schedule.
    #[serde(default)]
    pub min_schedule_interval_ms: Option<i64>,
    /// Runs enqueued per second (a token bucket per runner holding one second's worth).
    #[serde(default)]
    pub enqueue_per_s: Option<i32>,
    #[serde(default)]
    pub max_jobs: Option<i32>,
    #[serde(default)]
    pub max_versions_per_job: Option<i32>,
    /// Bytes of log lines (message plus fields) one attempt may write; later lines are dropped
    /// and counted.
    #[serde(default)]
    pub max_log_bytes_per_attempt: Option<i64>,
}

impl TenantLimits {
    /// What a runner applies to tenants without limits of their own unless its flags say
    /// otherwise: generous, but finite where one tenant could otherwise exhaust shared tables.
    pub fn runner_defaults() -> TenantLimits {
        TenantLimits {
            max_active_runs: None,
            max_running: None,
            max_schedules: Some(1000),
            min_schedule_interval_ms: Some(1000),
            enqueue_per_s: None,
            max_jobs: Some(1000),
            max_versions_per_job: Some(1000),
            max_log_bytes_per_attempt: Some(8 * 1024 * 1024),
        }
    }

    /// Each limit of `self` (a tenant's overrides), or the runner's default where it has none.
    pub fn or(&self, defaults: &TenantLimits) -> TenantLimits {
        TenantLimits {
            max_active_runs: self.max_active_runs.or(defaults.max_active_runs),
            max_running: self.max_running.or(defaults.max_running),
            max_schedules: self.max_schedules.or(defaults.max_schedules),
            min_schedule_interval_ms: self
                .min_schedule_interval_ms
                .or(defaults.min_schedule_interval_ms),
            enqueue_per_s: self.enqueue_per_s.or(defaults.enqueue_per_s),
            max_jobs: self.max_jobs.or(defaults.max_jobs),
            max_versions_per_job: self.max_versions_per_job.or(defaults.max_versions_per_job),
            max_log_bytes_per_attempt: self
                .max_log_bytes_per_attempt
                .or(defaults.max_log_bytes_per_attempt),
        }
    }

    /// The first value outside what the database accepts, as a message naming it.
    pub fn validate(&self) -> Result<(), String> {
        let non_negative = [
            ("max_active_runs", self.max_active_runs),
            ("max_running", self.max_running.map(i64::from)),
            ("max_schedules", self.max_schedules.map(i64::from)),
            ("min_schedule_interval_ms", self.min_schedule_interval_ms),
            ("max_jobs", self.max_jobs.map(i64::from)),
            ("max_log_bytes_per_attempt", self.max_log_bytes_per_attempt),
        ];
        for (name, value) in non_negative {
            if let Some(v) = value.filter(|v| *v < 0) {
                return Err(format!("{name}: {v} is negative"));
            }
        }
        let positive = [
            ("enqueue_per_s", self.enqueue_per_s),
            ("max_versions_per_job", self.max_versions_per_job),
        ];
        for (name, value) in positive {
            if let Some(v) = value.filter(|v| *v < 1) {
                return Err(format!("{name}: {v} must be at least 1"));
            }
        }
        Ok(())
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
    /// How often the sums of ended attempts are written to `run_stats` (the dashboard's
    /// charts and usage lag by at most this).
    pub stats_flush: Duration,
    /// Start executing runs at all (a runner may serve only the API).
    pub enabled: bool,
    /// The quota default `max_running` (copied from [`Settings::quotas`] at start): claims
    /// hold a tenant without a limit of its own to it.
    pub tenant_max_running: Option<i32>,
    /// The quota default `max_log_bytes_per_attempt` (copied like `tenant_max_running`).
    pub tenant_max_log_bytes: Option<i64>,
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
            stats_flush: Duration::from_secs(5),
            enabled: true,
            tenant_max_running: None,
            tenant_max_log_bytes: None,
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
    /// Job versions that are not current and that no run references are deleted (with their
    /// component bytes, when no other version uses them) this long after they were uploaded.
    pub retention_versions: Duration,
    /// How often the pruner looks for expired rows.
    pub prune_interval: Duration,
    /// Most rows deleted by one statement (each its own short transaction).
    pub prune_batch: usize,
    /// 10-second rows of the rollup `run_stats` (the realtime chart) are deleted after this.
    pub retention_stats_fine: Duration,
    /// Hourly and daily rows of `run_stats` (history charts, usage) are deleted after this.
    pub retention_stats: Duration,
    /// How often the leader looks at the dead rows of the hot table `run_queue`.
    pub vacuum_interval: Duration,
    /// Past this many dead rows, the leader vacuums `run_queue` (see `maintenance::vacuumer`).
    pub vacuum_dead_rows: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            retention_succeeded: Duration::from_secs(7 * 24 * 3600),
            retention_failed: Duration::from_secs(30 * 24 * 3600),
            retention_versions: Duration::from_secs(30 * 24 * 3600),
            prune_interval: Duration::from_secs(60),
            prune_batch: 1000,
            retention_stats_fine: Duration::from_secs(2 * 3600),
            retention_stats: Duration::from_secs(400 * 24 * 3600),
            vacuum_interval: Duration::from_secs(2),
            vacuum_dead_rows: 2_000,
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

impl RunLimits {
    /// Brings every default within its maximum (a `--max-memory-mb 32` runner must not give
    /// runs 64 MiB by default) and returns one message per default it lowered, for the log.
    pub fn clamp_defaults(&mut self) -> Vec<String> {
        let mut lowered = Vec::new();
        let d = &mut self.default;
        let mut clamp = |name: &str, value: &mut u64, max: u64| {
            if *value > max {
                lowered.push(format!(
                    "the default {name} {value} is above the maximum {max}: runs get {max}"
                ));
                *value = max;
            }
        };
        let mut memory = u64::from(d.memory_mb);
        clamp("memory_mb", &mut memory, self.max_memory_mb.into());
        d.memory_mb = memory as u32;
        let mut attempts = u64::from(d.max_attempts);
        clamp("max_attempts", &mut attempts, self.max_attempts.into());
        d.max_attempts = attempts as u32;
        clamp("timeout_ms", &mut d.timeout_ms, self.max_timeout_ms);
        clamp("fuel", &mut d.fuel, self.max_fuel);
        clamp(
            "backoff_base_ms",
            &mut d.backoff_base_ms,
            self.max_backoff_base_ms,
        );
        lowered
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
    fn defaults_are_clamped_to_the_maxima() {
        let mut limits = RunLimits {
            max_memory_mb: 32,
            max_timeout_ms: 1_000,
            ..RunLimits::default()
        };
        let lowered = limits.clamp_defaults();
        assert_eq!(lowered.len(), 2, "{lowered:?}");
        assert_eq!(limits.default.memory_mb, 32);
        assert_eq!(limits.default.timeout_ms, 1_000);
        assert!(RunLimits::default().clamp_defaults().is_empty());
    }

    #[test]
    fn the_sandbox_is_sized_from_the_runners_limits() {
        let mut settings = Settings::default();
        settings.limits.max_memory_mb = 128;
        settings.worker.slots = 3;
        let sandbox = settings.sandbox_config();
        assert_eq!(sandbox.max_memory_bytes, 128 * 1024 * 1024);
        assert_eq!(sandbox.instance_slots, 3);
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
