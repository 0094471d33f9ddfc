//! The runner's Prometheus metrics (`GET /metrics`, see `docs/metrics.md`).
//!
//! What happens is counted in memory where it happens — the API's enqueue paths after their
//! insert committed, the completer after an outcome's guarded write was accepted, the executor
//! when an attempt starts, the rescuer and the cron service after their statements — so the hot
//! path gains no database statement. What *is* (queue depths and ages, pools, the sandbox) is
//! read at scrape time: the queue figures by one bounded statement over `run_queue`, cached
//! for [`QUEUE_CACHE`] and shared by concurrent scrapes, so a scrape storm costs the database
//! at most one statement per interval.
//!
//! A small registry of our own (`registry`) rather than the `prometheus-client` crate: the
//! figures are a fixed, short list; the scrape-time gauges are written straight from the
//! values read (no stale series to clear when a queue empties); label sets change with
//! `--metrics-tenant-labels` at start, which fixed label types would make awkward; and the
//! text format is a few dozen lines we test ourselves, against one dependency less.
//!
//! Without `tenant_labels` no metric carries a tenant (a runner may serve thousands: the
//! series would be unbounded). This module must never query the database outside a scrape.

pub mod http;
pub mod registry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use http::{router, serve_separately};
use registry::{CounterVec, HistogramVec, counter, gauge};

use crate::sandbox::Sandbox;
use crate::store::{Completion, QueueFigures, Store};

/// How long the queue figures of one scrape are reused by the next ones.
pub const QUEUE_CACHE: Duration = Duration::from_secs(5);

/// Most queue groups (queues, or queue and tenant pairs) one scrape reports.
const MAX_QUEUE_GROUPS: i64 = 1000;

/// Attempt wall time, from 5 ms to an hour (the longest timeout a runner allows by default).
const DURATION_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Fuel, in decades: about 10^10 units are one CPU-second; the default budget is 2·10^10.
const FUEL_BOUNDS: &[f64] = &[1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13];
/// Peak memory, 1 MiB to 1 GiB in powers of two.
const MEMORY_BOUNDS: &[f64] = &[
    1048576.0,
    2097152.0,
    4194304.0,
    8388608.0,
    16777216.0,
    33554432.0,
    67108864.0,
    134217728.0,
    268435456.0,
    536870912.0,
    1073741824.0,
];
/// Due → attempt start, from 1 ms (an idle runner woken by NOTIFY) to 15 minutes (a backlog).
const PICKUP_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0,
];

/// One runner's figures. Shared (`Arc`) by the API, the worker pool and maintenance.
#[derive(Debug)]
pub struct Metrics {
    tenant_labels: bool,
    started: std::time::SystemTime,
    runs_enqueued: CounterVec,
    runs_finished: CounterVec,
    attempts: CounterVec,
    attempt_duration: HistogramVec,
    attempt_fuel: HistogramVec,
    attempt_memory: HistogramVec,
    pickup_latency: HistogramVec,
    leases_rescued: CounterVec,
    cron_fires: CounterVec,
    cron_skips: CounterVec,
    outbound_requests: CounterVec,
    outbound_denied: CounterVec,
    outbound_bytes: CounterVec,
    /// Tenant names by id, noted by the worker (only with `tenant_labels`).
    tenant_names: Mutex<HashMap<i64, Arc<str>>>,
    /// The database pools of this runner, by role.
    pools: Mutex<Vec<(&'static str, sqlx::PgPool)>>,
    /// Worker slots (attempts this runner executes at once).
    slots: usize,
    queues: tokio::sync::Mutex<Option<(Instant, Option<Vec<QueueFigures>>)>>,
}

impl Metrics {
    /// Empty figures; `tenant_labels` adds a `tenant` label to the per-run counters.
    pub fn new(tenant_labels: bool, slots: usize) -> Metrics {
        let with_tenant = |labels: &[&'static str]| {
            let mut labels = labels.to_vec();
            if tenant_labels {
                labels.push("tenant");
            }
            labels
        };
        Metrics {
            tenant_labels,
            started: std::time::SystemTime::now(),
            runs_enqueued: CounterVec::new(
                "sandfire_runs_enqueued_total",
                "Runs created through this runner's API (single, bulk, batch, schedule trigger), counted after their insert committed.",
                &with_tenant(&["queue"]),
            ),
            runs_finished: CounterVec::new(
                "sandfire_runs_finished_total",
                "Runs that ended (succeeded, failed or cancelled) with an attempt executed by this runner, by the outcome of that last attempt.",
                &with_tenant(&["queue", "outcome"]),
            ),
            attempts: CounterVec::new(
                "sandfire_attempts_total",
                "Attempts this runner executed whose outcome was written, by outcome.",
                &with_tenant(&["queue", "outcome"]),
            ),
            attempt_duration: HistogramVec::new(
                "sandfire_attempt_duration_seconds",
                "Wall time of attempts this runner executed, by outcome.",
                &["outcome"],
                DURATION_BOUNDS,
            ),
            attempt_fuel: HistogramVec::new(
                "sandfire_attempt_fuel_units",
                "Fuel (about one unit per wasm instruction) used by attempts, by outcome.",
                &["outcome"],
                FUEL_BOUNDS,
            ),
            attempt_memory: HistogramVec::new(
                "sandfire_attempt_peak_memory_bytes",
                "Peak linear memory of attempts, by outcome.",
                &["outcome"],
                MEMORY_BOUNDS,
            ),
            pickup_latency: HistogramVec::new(
                "sandfire_pickup_latency_seconds",
                "From when a run became due (enqueued, or its delay or backoff over) to the start of its attempt on this runner.",
                &["queue"],
                PICKUP_BOUNDS,
            ),
            leases_rescued: CounterVec::new(
                "sandfire_leases_rescued_total",
                "Attempts whose lease expired (their runner died or was cut off) and that this runner rescued as runner_lost.",
                &[],
            ),
            cron_fires: CounterVec::new(
                "sandfire_cron_fires_total",
                "Schedule fire times for which this runner created a run.",
                &[],
            ),
            cron_skips: CounterVec::new(
                "sandfire_cron_skips_total",
                "Schedule fire times recorded without a run (overlap policy, quota, invalid options).",
                &[],
            ),
            outbound_requests: CounterVec::new(
                "sandfire_outbound_requests_total",
                "Outbound HTTP requests jobs made (allowed and sent).",
                &with_tenant(&["queue"]),
            ),
            outbound_denied: CounterVec::new(
                "sandfire_outbound_denied_total",
                "Outbound HTTP requests jobs tried that were refused (host not granted, address not allowed, caps).",
                &with_tenant(&["queue"]),
            ),
            outbound_bytes: CounterVec::new(
                "sandfire_outbound_bytes_total",
                "Bytes of outbound HTTP bodies: direction=\"out\" sent, \"in\" received.",
                &["direction"],
            ),
            tenant_names: Mutex::default(),
            pools: Mutex::default(),
            slots,
            queues: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether the per-run counters carry a `tenant` label (`--metrics-tenant-labels`).
    pub fn tenant_labels(&self) -> bool {
        self.tenant_labels
    }

    /// Reports `pool`'s size and idle connections as pool `name` (`api`, `worker`, ...).
    pub fn watch_pool(&self, name: &'static str, pool: sqlx::PgPool) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.retain(|(n, _)| *n != name);
        pools.push((name, pool));
    }

    /// `n` runs of `tenant` were created in `queue` (call after the insert committed).
    pub fn runs_enqueued(&self, tenant: &str, queue: &str, n: u64) {
        if self.tenant_labels {
            self.runs_enqueued.inc_by(&[queue, tenant], n);
        } else {
            self.runs_enqueued.inc_by(&[queue], n);
        }
    }

    /// Runs of `tenant` were created, one per queue name given (call after the insert
    /// committed).
    pub fn runs_enqueued_in<'a>(&self, tenant: &str, queues: impl IntoIterator<Item = &'a str>) {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for queue in queues {
            *counts.entry(queue).or_default() += 1;
        }
        for (queue, n) in counts {
            self.runs_enqueued(tenant, queue, n);
        }
    }

    /// Remembers a tenant's name for the `tenant` label of the worker's counters (a map
    /// update, and only with tenant labels on).
    pub fn note_tenant(&self, tenant_id: i64, name: &str) {
        if !self.tenant_labels {
            return;
        }
        let mut names = self.tenant_names.lock().unwrap_or_else(|e| e.into_inner());
        names.entry(tenant_id).or_insert_with(|| Arc::from(name));
    }

    fn tenant_label(&self, tenant_id: i64) -> Arc<str> {
        let names = self.tenant_names.lock().unwrap_or_else(|e| e.into_inner());
        names
            .get(&tenant_id)
            .cloned()
            .unwrap_or_else(|| Arc::from(format!("id:{tenant_id}")))
    }

    /// An attempt of a run of `queue` starts `latency` after the run became due.
    pub fn attempt_started(&self, queue: &str, latency: chrono::TimeDelta) {
        let seconds = latency.num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
        self.pickup_latency.observe(&[queue], seconds);
    }

    /// An outcome was written (its guarded write accepted): count the attempt, and the run
    /// when it ended.
    pub fn outcome_written(&self, c: &Completion) {
        let tenant = self.tenant_labels.then(|| self.tenant_label(c.tenant_id));
        let outcome = c.record.outcome.as_str();
        let queue = c.queue.as_str();
        if c.transition.records_attempt() {
            self.attempts
                .inc_by(&with_tenant(&[queue, outcome], tenant.as_deref()), 1);
            self.attempt_duration
                .observe(&[outcome], c.record.duration_ms.max(0) as f64 / 1000.0);
            self.attempt_fuel
                .observe(&[outcome], c.record.fuel_used.max(0) as f64);
            self.attempt_memory
                .observe(&[outcome], c.record.peak_memory.max(0) as f64);
            if let Some(o) = &c.record.outbound {
                let labels = with_tenant(&[queue], tenant.as_deref());
                self.outbound_requests.inc_by(&labels, o.requests);
                self.outbound_denied.inc_by(&labels, o.denied);
                self.outbound_bytes.inc_by(&["out"], o.bytes_out);
                self.outbound_bytes.inc_by(&["in"], o.bytes_in);
            }
        }
        if c.transition.state().is_terminal() {
            self.runs_finished
                .inc_by(&with_tenant(&[queue, outcome], tenant.as_deref()), 1);
        }
    }

    /// The rescuer ended `n` attempts whose lease had expired.
    pub fn leases_rescued(&self, n: u64) {
        self.leases_rescued.inc_by(&[], n);
    }

    /// The cron service fired `fires` fire times with a run and skipped `skips`.
    pub fn cron_fired(&self, fires: u64, skips: u64) {
        self.cron_fires.inc_by(&[], fires);
        self.cron_skips.inc_by(&[], skips);
    }

    /// The whole exposition: the counters, then what is read now (queues, pools, sandbox).
    pub async fn render(&self, store: &dyn Store, sandbox: &Sandbox) -> String {
        let mut out = String::with_capacity(16 * 1024);
        gauge(
            &mut out,
            "sandfire_build_info",
            "The runner's version (always 1).",
            &["version"],
            [(vec![env!("CARGO_PKG_VERSION")], 1.0)],
        );
        let started = self
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64().floor());
        gauge(
            &mut out,
            "sandfire_start_time_seconds",
            "When this runner started, in Unix seconds.",
            &[],
            [(vec![], started)],
        );
        self.runs_enqueued.encode(&mut out);
        self.runs_finished.encode(&mut out);
        self.attempts.encode(&mut out);
        self.attempt_duration.encode(&mut out);
        self.attempt_fuel.encode(&mut out);
        self.attempt_memory.encode(&mut out);
        self.pickup_latency.encode(&mut out);
        self.leases_rescued.encode(&mut out);
        self.cron_fires.encode(&mut out);
        self.cron_skips.encode(&mut out);
        self.outbound_requests.encode(&mut out);
        self.outbound_denied.encode(&mut out);
        self.outbound_bytes.encode(&mut out);
        self.render_queues(&mut out, store).await;
        self.render_pools(&mut out);
        self.render_sandbox(&mut out, sandbox);
        out
    }

    async fn render_queues(&self, out: &mut String, store: &dyn Store) {
        let figures = self.queue_figures(store).await;
        let ok = figures.is_some();
        gauge(
            out,
            "sandfire_queue_figures_up",
            "1 if the queue figures below could be read from the database at the last refresh, else 0.",
            &[],
            [(vec![], if ok { 1.0 } else { 0.0 })],
        );
        let Some(figures) = figures else { return };
        let mut labels = vec!["queue"];
        if self.tenant_labels {
            labels.push("tenant");
        }
        let tenant_labels = self.tenant_labels;
        let mut state_labels = labels.clone();
        state_labels.push("state");
        gauge(
            out,
            "sandfire_queue_runs",
            "Runs in the queue now, by state (enqueued = ready and waiting: the queue's depth), all runners together.",
            &state_labels,
            figures.iter().flat_map(|f| {
                [
                    ("enqueued", f.enqueued),
                    ("running", f.running),
                    ("scheduled", f.scheduled),
                    ("retrying", f.retrying),
                ]
                .map(|(state, n)| {
                    let mut l = queue_key(f, tenant_labels);
                    l.push(state);
                    (l, n as f64)
                })
            }),
        );
        gauge(
            out,
            "sandfire_queue_oldest_enqueued_age_seconds",
            "How long the oldest enqueued run of the queue has been due (0 when none waits).",
            &labels,
            figures
                .iter()
                .map(|f| (queue_key(f, tenant_labels), f.oldest_enqueued_age_s)),
        );
    }

    /// The queue figures, read at most once per `QUEUE_CACHE`; concurrent scrapes wait for
    /// the one read in progress. `None` when the last read failed.
    async fn queue_figures(&self, store: &dyn Store) -> Option<Vec<QueueFigures>> {
        let mut cached = self.queues.lock().await;
        if let Some((at, figures)) = cached.as_ref()
            && at.elapsed() < QUEUE_CACHE
        {
            return figures.clone();
        }
        let figures = match store
            .metrics_queues(self.tenant_labels, MAX_QUEUE_GROUPS)
            .await
        {
            Ok(figures) => Some(figures),
            Err(e) => {
                tracing::warn!(error = %e, "reading the queue figures for /metrics failed");
                None
            }
        };
        *cached = Some((Instant::now(), figures.clone()));
        figures
    }

    fn render_pools(&self, out: &mut String) {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let labelled = |f: fn(&sqlx::PgPool) -> f64| {
            pools
                .iter()
                .map(move |(name, pool)| (vec![*name], f(pool)))
                .collect::<Vec<_>>()
        };
        gauge(
            out,
            "sandfire_db_pool_connections",
            "Open connections of each of this runner's database pools.",
            &["pool"],
            labelled(|p| f64::from(p.size())),
        );
        gauge(
            out,
            "sandfire_db_pool_idle_connections",
            "Idle connections of each pool (open minus in use).",
            &["pool"],
            labelled(|p| p.num_idle() as f64),
        );
        gauge(
            out,
            "sandfire_db_pool_max_connections",
            "The most connections each pool may open.",
            &["pool"],
            labelled(|p| f64::from(p.options().get_max_connections())),
        );
    }

    fn render_sandbox(&self, out: &mut String, sandbox: &Sandbox) {
        gauge(
            out,
            "sandfire_worker_slots",
            "Attempts this runner executes at once at most (0: it executes none).",
            &[],
            [(vec![], self.slots as f64)],
        );
        gauge(
            out,
            "sandfire_sandbox_instances_in_use",
            "Attempts executing in a sandbox instance now.",
            &[],
            [(vec![], sandbox.instances_in_use() as f64)],
        );
        let cache = sandbox.cache_stats();
        gauge(
            out,
            "sandfire_compile_cache_entries",
            "Compiled components held in memory.",
            &[],
            [(vec![], cache.entries as f64)],
        );
        gauge(
            out,
            "sandfire_compile_cache_bytes",
            "Estimated memory of the compiled components held.",
            &[],
            [(vec![], cache.bytes as f64)],
        );
        let (hits, misses) = sandbox.cache_lookups();
        counter(
            out,
            "sandfire_compile_cache_hits_total",
            "Component lookups (attempts and uploads) served from the compiled-component cache.",
            hits,
        );
        counter(
            out,
            "sandfire_compile_cache_misses_total",
            "Component lookups that missed the cache (then loaded from a kept artifact or compiled).",
            misses,
        );
        counter(
            out,
            "sandfire_compiles_total",
            "Components compiled by this runner (uploads and cache misses without a kept artifact).",
            sandbox.compiles(),
        );
        counter(
            out,
            "sandfire_compiled_artifacts_loaded_total",
            "Kept compiled artifacts loaded instead of compiling.",
            sandbox.artifacts_loaded(),
        );
    }
}

/// `labels`, plus the tenant's when there is one.
fn with_tenant<'a>(labels: &[&'a str], tenant: Option<&'a str>) -> Vec<&'a str> {
    let mut labels = labels.to_vec();
    labels.extend(tenant);
    labels
}

/// The label values of one queue group: its queue, and its tenant when labelled by tenant.
fn queue_key(f: &QueueFigures, tenant_labels: bool) -> Vec<&str> {
    let mut v = vec![f.queue.as_str()];
    if tenant_labels {
        v.push(f.tenant.as_str());
    }
    v
}
