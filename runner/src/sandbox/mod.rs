//! The sandbox: the one place that wraps wasmtime. It validates and compiles tenant components,
//! keeps them prepared in a bounded cache, and runs attempts, each in a fresh instance with a
//! fuel budget, a memory cap, a wall-clock deadline, deny-by-default WASI and bounded logs and
//! output.
//!
//! - `engine`: the wasmtime `Engine` (fuel, epochs, pooling allocator) and the epoch ticker.
//! - `host`: bindings of `wit/job.wit`, per-attempt store state, the `host` imports, the linker.
//! - `component`: header checks, compile, import allow-list, world check; `Prepared`; loading
//!   a compiled artifact this runner (or another with the same engine) produced.
//! - `cache`: (tenant, digest) → prepared component, bounded by bytes per tenant and in all,
//!   admitted only after a successful compile, compile-once.
//!
//! Compile once: an upload's compiled code is handed out as an artifact
//! (`ValidatedComponent::artifact`) for the store to keep, keyed by tenant, digest and
//! `Sandbox::engine_hash`; a cache miss asks its `ComponentSource` for that artifact first and
//! compiles only when there is none or it does not fit this engine.
//! - `limits`: the per-attempt memory `ResourceLimiter`.
//! - `grants`: what an attempt may use (hosts, caps, config values), loaded on first use.
//! - `outbound`: the `wasi:http` hooks: every outbound request checked and bounded.
//! - `redact`: secret values replaced in everything that leaves the attempt.
//! - `capture`: bounded stdout/stderr that feed the journal.
//! - `journal`: log lines and progress shared with the worker.
//! - `classify`: how an attempt ended → outcome, error, retry decision.
//!
//! Nothing a guest does may crash or stall the runner: `execute` never panics and never returns
//! an error (every failure is an outcome), a spinning guest yields to the executor every epoch
//! tick, and every buffer a guest can fill is bounded. This module never talks to the database
//! or decides run state transitions: that is the worker's job, from the `AttemptReport`.

mod cache;
mod capture;
mod classify;
mod component;
mod engine;
mod grants;
mod host;
mod journal;
mod limits;
mod outbound;
pub mod probe;
mod redact;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::{Notify, Semaphore};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use self::cache::{Cache, Key};
use self::capture::Capture;
use self::classify::{CancelRequested, DeadlineExceeded, Ending, Facts, Verdict, classify};
use self::grants::GrantCell;
use self::host::{AttemptParts, HostState, WitContext};
use self::journal::LogBounds;
use self::limits::MemoryLimiter;
use self::outbound::{AttemptHttp, Outbound, UsageCounters};
use crate::model::{Level, Outcome};

pub use self::cache::{CacheStats, TenantId};
pub use self::component::{CompileCaps, ComponentError, PrepareError, Prepared};
pub use self::grants::{AttemptGrants, GrantLoader, GrantedValue, HostCheck};

/// Where a component the sandbox has not cached comes from: a compiled artifact kept by a
/// runner (fast) or the tenant's bytes (compiled). Implemented by the worker over the store.
#[async_trait::async_trait]
pub trait ComponentSource: Send + Sync {
    /// The artifact kept for this component on an engine whose `Sandbox::engine_hash` is
    /// `engine`, if any. Only artifacts a runner produced (`ValidatedComponent::artifact`,
    /// `keep_artifact`) may ever be returned: they are loaded as machine code.
    async fn artifact(&self, engine: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// The component's bytes as uploaded (they must hash to its digest).
    async fn bytes(&self) -> anyhow::Result<Vec<u8>>;
    /// Keeps the artifact of a compile done because `artifact` had none (best effort: errors
    /// are the implementation's to log).
    async fn keep_artifact(&self, engine: &str, artifact: Vec<u8>);
}
pub use self::journal::{Journal, LogLine, Progress};
pub use self::outbound::addresses::BlockedNetwork;
pub use self::outbound::{OutboundConfig, OutboundUsage, read_pem_certificates};

/// Tunables of the sandbox. Per-run limits (`Limits`) are clamped to these.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The largest memory any attempt may get (bytes): sizes the pooling allocator's slots.
    /// `Limits::memory_bytes` above it is clamped to it.
    pub max_memory_bytes: u64,
    /// How many instances may be live at once: worker slots plus headroom. An attempt that
    /// finds the pool full ends `Error`, retryable (see `execute`).
    pub instance_slots: u32,
    /// How often the epoch advances: the granularity of deadlines, cancellation and of a
    /// spinning guest yielding to the executor.
    pub epoch_tick: Duration,
    /// Log lines one attempt may write (host `log` plus stdout/stderr lines); later lines are
    /// dropped and counted, and one final note says how many.
    pub max_log_lines: usize,
    /// Longest log line (bytes); longer messages are truncated on a char boundary.
    pub max_log_line_bytes: usize,
    /// Largest output (bytes) a job may return.
    pub max_output_bytes: usize,
    /// Bytes of stdout, and separately of stderr, captured per attempt; the rest is discarded.
    pub max_stdio_bytes: usize,
    /// Fields one log line may carry; later ones are dropped. Keys and values share the
    /// line's `max_log_line_bytes` budget with the message.
    pub max_log_fields: usize,
    /// Bytes of compiled components kept in memory, all tenants together.
    pub cache_bytes: usize,
    /// Bytes of compiled components kept in memory for one tenant.
    pub cache_tenant_bytes: usize,
    /// Compiles that may run at once (uploads and cache misses of runs): each takes a
    /// blocking thread and a core for up to `compile_timeout`.
    pub compile_concurrency: usize,
    /// How long an upload waits for a compile slot before it is answered 503 with
    /// `Retry-After`.
    pub compile_queue_wait: Duration,
    /// Longest compile of an upload (422 `compile_timeout` beyond). Cranelift cannot be
    /// interrupted: the compile thread runs on to the end and keeps its slot meanwhile, so
    /// timed-out compiles cannot pile up.
    pub compile_timeout: Duration,
    /// What one upload may ask the compiler to do (checked before compiling).
    pub compile_caps: CompileCaps,
    /// Compile each upload first in a child process under an address-space limit (and kill
    /// it at `compile_timeout`); `None` compiles uploads in-process only.
    pub compile_probe: Option<probe::ProbeConfig>,
    /// Bytes at the start of each pooled linear memory kept resident between runs and zeroed
    /// instead of handed back to the kernel (0: hand everything back). Zeroing costs per byte
    /// kept; handing back costs a page fault per page the next run touches.
    pub keep_resident_bytes: usize,
    /// Outbound HTTP: timeouts, caps, the connection cap, extra trusted roots.
    pub outbound: OutboundConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            max_memory_bytes: 256 * 1024 * 1024,
            instance_slots: 64,
            epoch_tick: Duration::from_millis(10),
            max_log_lines: 1000,
            max_log_line_bytes: 8 * 1024,
            max_output_bytes: 1024 * 1024,
            max_stdio_bytes: 64 * 1024,
            max_log_fields: 64,
            cache_bytes: 256 * 1024 * 1024,
            cache_tenant_bytes: 64 * 1024 * 1024,
            compile_concurrency: 1,
            compile_queue_wait: Duration::from_secs(5),
            // A Python or JavaScript component takes 15-30 s on an idle core, more on a busy one.
            compile_timeout: Duration::from_secs(120),
            compile_caps: CompileCaps::default(),
            compile_probe: None,
            keep_resident_bytes: 0,
            outbound: OutboundConfig::default(),
        }
    }
}

/// Runs jobs' components. Cheap to clone; all clones share one engine, linker and cache.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    engine: Engine,
    linker: Linker<HostState>,
    outbound: Arc<Outbound>,
    cache: Cache,
    /// Compile slots (`compile_concurrency`); a permit lives as long as its compile thread.
    compiles: Arc<Semaphore>,
    /// Compiles started since the sandbox was built (for metrics and tests).
    compiled: AtomicU64,
    /// Stored artifacts loaded instead of compiling (for metrics and tests).
    artifacts_loaded: AtomicU64,
    /// Lookups of the compiled-component cache that found / missed their entry (metrics).
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Attempts executing in an instance right now (metrics).
    instances_in_use: AtomicU64,
    /// `engine::compatibility_hash` of `engine`: the key artifacts are kept under.
    engine_hash: String,
}

/// Counts one attempt in `instances_in_use` while it lives (also when the attempt panics or
/// its future is dropped).
struct InUse<'a>(&'a AtomicU64);

impl<'a> InUse<'a> {
    fn enter(counter: &'a AtomicU64) -> InUse<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        InUse(counter)
    }
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Bytes a guest may pass to the host in one call beyond its largest output (the error
/// variant, a log line with its fields): `Store::set_hostcall_fuel` is `max_output_bytes`
/// plus this. Guest-controlled host allocation.
const HOSTCALL_SLACK_BYTES: usize = 64 * 1024;

/// Largest `get-random-bytes` / `get-insecure-random-bytes` request; larger ones trap.
/// Guest-controlled host allocation.
pub const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// Component-model handles (resources) live at once in one attempt's store: host memory the
/// guest controls.
const MAX_COMPONENT_HANDLES: usize = 10_000;

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A component accepted at upload.
#[derive(Debug, Clone)]
pub struct ValidatedComponent {
    /// Lowercase hex SHA-256 of the bytes.
    pub digest: String,
    pub size: usize,
    /// The interfaces it imports (all granted).
    pub imports: Vec<String>,
    pub prepared: Arc<Prepared>,
    /// The compiled code, for the store to keep under `Sandbox::engine_hash` so that no
    /// runner compiles these bytes again (`None` if it could not be serialized; runs then
    /// compile on their first cache miss and keep it).
    pub artifact: Option<Vec<u8>>,
}

/// What the job is told about the attempt (the WIT `context`).
#[derive(Debug, Clone)]
pub struct JobContext {
    pub tenant: String,
    pub job: String,
    pub version: u32,
    pub run_id: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub scheduled_at_ms: i64,
}

/// The budget of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel units (roughly one per wasm instruction; ≈ 10^10 per CPU-second).
    pub fuel: u64,
    /// Memory cap, summed over the instance's memories; clamped to `max_memory_bytes`.
    pub memory_bytes: u64,
    /// Wall-clock limit, from the start of `Sandbox::execute`.
    pub timeout: Duration,
}

/// One attempt to execute.
pub struct AttemptSpec {
    pub context: JobContext,
    /// The run's input (UTF-8 JSON).
    pub input: Vec<u8>,
    pub limits: Limits,
    pub cancel: CancelFlag,
    /// Where log lines and progress go; one journal per attempt.
    pub journal: Arc<Journal>,
    /// Loads what the job was granted (hosts, config) on first use; `None`: nothing granted.
    pub grants: Option<GrantLoader>,
}

impl std::fmt::Debug for AttemptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptSpec")
            .field("context", &self.context)
            .field("limits", &self.limits)
            .field("grants", &self.grants.is_some())
            .finish_non_exhaustive()
    }
}

/// Set by the worker to cancel a running attempt. The guest's `cancelled()` import reads it,
/// and the attempt is interrupted within about one epoch tick, even if it never asks.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// Wakes an attempt whose guest is blocked in a host call, where epochs do not fire.
    notify: Notify,
}

impl CancelFlag {
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once `cancel` has been called.
    async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a `cancel` between the check and the await still
            // wakes us.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub outcome: Outcome,
    /// On `Ok`: the job's output, parsed.
    pub output: Option<serde_json::Value>,
    /// What went wrong, for people: the job's message, the trap, the panic message.
    pub error: Option<String>,
    /// Whether another attempt may help: `JobError::retry` and traps (out of fuel, memory
    /// limit, timeout, panic) yes; `fail`, snooze, bad output and cancellation no.
    pub retryable: bool,
    /// The delay the job asked for with `retry` (uncapped; the worker applies its cap).
    pub retry_delay: Option<Duration>,
    /// The job asked to run again later without using up an attempt. There is no outcome for
    /// this: `outcome` is `Error`, `retryable` is false, and the worker must check `snooze`
    /// before anything else (delay uncapped; the worker applies its cap).
    pub snooze: Option<(Duration, String)>,
    pub fuel_used: u64,
    pub peak_memory_bytes: u64,
    pub duration: Duration,
    /// The attempt never ran the job because of the runner (component could not be loaded,
    /// instance pool full): the worker retries it without using up one of the run's attempts.
    pub runner_fault: bool,
    /// Outbound requests, bytes and denials; `None` if the attempt made no request.
    pub outbound: Option<OutboundUsage>,
}

impl AttemptReport {
    /// The report of an attempt that never reached the guest because of the runner (e.g. the
    /// component could not be loaded): outcome `Error`, nothing measured.
    pub fn runner_error(error: String, retryable: bool) -> AttemptReport {
        AttemptReport {
            outcome: Outcome::Error,
            output: None,
            error: Some(error),
            retryable,
            retry_delay: None,
            snooze: None,
            fuel_used: 0,
            peak_memory_bytes: 0,
            duration: Duration::ZERO,
            runner_fault: true,
            outbound: None,
        }
    }
}

impl Sandbox {
    /// Builds the engine (fuel, epoch interruption, pooling allocator sized from `config`,
    /// Cranelift), the linker, and starts the epoch ticker (a thread that stops once the
    /// engine is dropped).
    pub fn new(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let engine = engine::build(&config)?;
        let linker = host::linker(&engine)
            .map_err(|e| anyhow::Error::from(e).context("linking the host interfaces"))?;
        // Detached: the thread ends by itself once the engine is gone.
        let _ticker = engine::start_epoch_ticker(&engine, config.epoch_tick)?;
        let cache = Cache::new(config.cache_bytes, config.cache_tenant_bytes);
        let compiles = Arc::new(Semaphore::new(config.compile_concurrency.max(1)));
        let engine_hash = engine::compatibility_hash(&engine);
        let outbound = Outbound::new(config.outbound.clone())?;
        Ok(Sandbox {
            inner: Arc::new(Inner {
                outbound,
                config,
                engine,
                linker,
                cache,
                compiles,
                compiled: AtomicU64::new(0),
                artifacts_loaded: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                cache_misses: AtomicU64::new(0),
                instances_in_use: AtomicU64::new(0),
                engine_hash,
            }),
        })
    }

    /// Identifies what compiled code this runner's engine can load (wasmtime version and
    /// code-generation settings): the key, with tenant and digest, of kept artifacts.
    pub fn engine_hash(&self) -> &str {
        &self.inner.engine_hash
    }

    /// Stored artifacts loaded instead of compiling since this sandbox was built.
    pub fn artifacts_loaded(&self) -> u64 {
        self.inner.artifacts_loaded.load(Ordering::Relaxed)
    }

    /// What the compiled-component cache holds.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// Lookups of the compiled-component cache since this sandbox was built: (hits, misses).
    pub fn cache_lookups(&self) -> (u64, u64) {
        (
            self.inner.cache_hits.load(Ordering::Relaxed),
            self.inner.cache_misses.load(Ordering::Relaxed),
        )
    }

    /// Attempts executing in a sandbox instance right now.
    pub fn instances_in_use(&self) -> u64 {
        self.inner.instances_in_use.load(Ordering::Relaxed)
    }

    /// Whether `tenant`'s component `digest` is compiled and cached.
    pub fn is_cached(&self, tenant: TenantId, digest: &str) -> bool {
        self.inner.cache.contains(&(tenant, digest.to_owned()))
    }

    /// Compiles started since this sandbox was built (cache misses and uploads).
    pub fn compiles(&self) -> u64 {
        self.inner.compiled.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Upload-time validation for `tenant`: header, proposals, compile caps, compile (bounded
    /// in concurrency, queueing time and wall time), import allow-list, world. On success the
    /// prepared component is cached for the tenant (and bytes already cached for it are not
    /// compiled again).
    pub async fn validate(
        &self,
        tenant: TenantId,
        bytes: Vec<u8>,
    ) -> Result<ValidatedComponent, ComponentError> {
        let size = bytes.len();
        // The cheap checks first, so garbage never waits for (or takes) a compile slot.
        component::precheck(&bytes, &self.inner.config.compile_caps)?;
        let digest = component::digest(&bytes);
        let prepared = self
            .cached_or_compile((tenant, digest), true, || async move { Ok(bytes) })
            .await
            .map_err(|e| match e {
                PrepareError::Component(e) => e,
                // `load` cannot fail here.
                PrepareError::Load(e) => ComponentError::Invalid(format!("{e:#}")),
            })?;
        let artifact = serialize(&prepared).await;
        Ok(ValidatedComponent {
            digest: prepared.digest().to_owned(),
            size,
            imports: prepared.imports().to_vec(),
            prepared,
            artifact,
        })
    }

    /// `tenant`'s prepared component for `digest`: from the cache, else from the artifact
    /// `source` kept for this engine (loaded on the blocking pool, no compile slot: it takes
    /// milliseconds), else by compiling `source`'s bytes like `prepare` and handing the
    /// artifact back to `source` to keep. An artifact that cannot be loaded (another wasmtime
    /// version or settings) is logged and compiled over. Concurrent callers for one key
    /// prepare once.
    pub async fn prepare_from(
        &self,
        tenant: TenantId,
        digest: &str,
        source: &dyn ComponentSource,
    ) -> Result<Arc<Prepared>, PrepareError> {
        let key = (tenant, digest.to_owned());
        self.cached_or(key, || async move {
            let engine = self.engine_hash();
            match source.artifact(engine).await {
                Ok(Some(artifact)) => match self.load_artifact(digest, artifact).await {
                    Ok(prepared) => return Ok(Arc::new(prepared)),
                    Err(error) => tracing::warn!(
                        digest,
                        %error,
                        "a kept compiled artifact could not be loaded; compiling the component"
                    ),
                },
                Ok(None) => {}
                // The bytes come from the same store: if it is down, that load says so.
                Err(error) => tracing::warn!(
                    digest,
                    error = format!("{error:#}"),
                    "could not read the kept compiled artifact; compiling the component"
                ),
            }
            let bytes = source.bytes().await.map_err(PrepareError::Load)?;
            let prepared = Arc::new(self.check_and_compile(digest, bytes, false).await?);
            if let Some(artifact) = serialize(&prepared).await {
                source.keep_artifact(engine, artifact).await;
            }
            Ok(prepared)
        })
        .await
    }

    async fn load_artifact(&self, digest: &str, artifact: Vec<u8>) -> Result<Prepared, String> {
        let inner = self.inner.clone();
        let digest = digest.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            component::load_artifact(&inner.engine, &inner.linker, digest, &artifact)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        self.inner.artifacts_loaded.fetch_add(1, Ordering::Relaxed);
        Ok(loaded)
    }

    /// `tenant`'s prepared component for `digest`, from the cache or by calling `load` for its
    /// bytes and compiling them (behind the compile slots, on the blocking pool). Concurrent
    /// callers for one key compile once. The bytes must hash to `digest`.
    pub async fn prepare<F, Fut>(
        &self,
        tenant: TenantId,
        digest: &str,
        load: F,
    ) -> Result<Arc<Prepared>, PrepareError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Vec<u8>>>,
    {
        self.cached_or_compile((tenant, digest.to_owned()), false, load)
            .await
    }

    async fn cached_or_compile<F, Fut>(
        &self,
        key: Key,
        upload: bool,
        load: F,
    ) -> Result<Arc<Prepared>, PrepareError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Vec<u8>>>,
    {
        let digest = key.1.clone();
        self.cached_or(key, || async move {
            let bytes = load().await.map_err(PrepareError::Load)?;
            self.check_and_compile(&digest, bytes, upload)
                .await
                .map(Arc::new)
        })
        .await
    }

    /// The cached entry for `key`, or the one `produce` makes (admitted on success); one
    /// `produce` at a time per key, the other callers wait for its result.
    async fn cached_or<F, Fut>(&self, key: Key, produce: F) -> Result<Arc<Prepared>, PrepareError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<Prepared>, PrepareError>>,
    {
        let cache = &self.inner.cache;
        if let Some(prepared) = cache.get(&key) {
            self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(prepared);
        }
        self.inner.cache_misses.fetch_add(1, Ordering::Relaxed);
        let slot = cache.inflight(&key);
        let result = slot.get_or_try_init(produce).await.cloned();
        cache.finish(&key, &slot, result.as_ref().ok());
        result
    }

    /// Checks that `bytes` hash to `digest`, then `compile_bounded`.
    async fn check_and_compile(
        &self,
        digest: &str,
        bytes: Vec<u8>,
        upload: bool,
    ) -> Result<Prepared, PrepareError> {
        let actual = component::digest(&bytes);
        if actual != digest {
            return Err(PrepareError::Load(anyhow::anyhow!(
                "the bytes loaded for component {digest} hash to {actual}"
            )));
        }
        self.compile_bounded(actual, bytes, upload).await
    }

    /// Compiles behind a compile slot on the blocking pool. An upload waits at most
    /// `compile_queue_wait` for the slot and `compile_timeout` for the compile; the slot is
    /// released only when the compile thread really ends.
    async fn compile_bounded(
        &self,
        digest: String,
        bytes: Vec<u8>,
        upload: bool,
    ) -> Result<Prepared, PrepareError> {
        let config = &self.inner.config;
        let slots = self.inner.compiles.clone();
        let permit = if upload {
            match tokio::time::timeout(config.compile_queue_wait, slots.acquire_owned()).await {
                Ok(permit) => permit,
                Err(_) => {
                    let retry = config.compile_timeout.as_secs().clamp(1, 60);
                    return Err(PrepareError::Component(ComponentError::CompilerBusy(retry)));
                }
            }
        } else {
            slots.acquire_owned().await
        }
        .map_err(|_| PrepareError::Load(anyhow::anyhow!("the sandbox is shutting down")))?;
        // An upload proves in a child process, under the memory limit and a wall clock that
        // really stops it, that it compiles; only then does the runner compile it itself.
        if let Some(probe) = probe::applies(upload, config.compile_probe.as_ref()) {
            probe::probe(probe, config, &bytes)
                .await
                .map_err(PrepareError::Component)?;
        }
        let inner = self.inner.clone();
        let compile = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.compiled.fetch_add(1, Ordering::Relaxed);
            let caps = &inner.config.compile_caps;
            component::compile(&inner.engine, &inner.linker, digest, &bytes, caps)
        });
        let joined = if upload {
            match tokio::time::timeout(config.compile_timeout, compile).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = config.compile_timeout.as_millis() as u64,
                        "an upload's compile timed out; its thread runs on, holding its slot"
                    );
                    return Err(PrepareError::Component(ComponentError::CompileTimeout(
                        config.compile_timeout,
                    )));
                }
            }
        } else {
            compile.await
        };
        joined
            .map_err(|e| PrepareError::Component(compile_crashed(e)))?
            .map_err(PrepareError::Component)
    }

    /// Runs one attempt in a fresh instance. Never panics and never returns an error: every
    /// failure is an outcome. If the runner itself cannot instantiate (e.g. the instance pool
    /// is exhausted), the outcome is `Error`, retryable, with an error starting "runner could
    /// not instantiate the job".
    pub async fn execute(&self, prepared: &Prepared, attempt: AttemptSpec) -> AttemptReport {
        let started = Instant::now();
        let journal = attempt.journal.clone();
        let _in_use = InUse::enter(&self.inner.instances_in_use);
        let run = AssertUnwindSafe(self.run_attempt(prepared, attempt, started));
        match run.catch_unwind().await {
            Ok(report) => report,
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(digest = prepared.digest(), %reason, "sandbox panicked during an attempt");
                journal.push_note(Level::Error, format!("the runner failed: {reason}"));
                report(
                    Verdict::runner_failure(&format!("the runner panicked: {reason}")),
                    0,
                    0,
                    started,
                )
            }
        }
    }

    async fn run_attempt(
        &self,
        prepared: &Prepared,
        attempt: AttemptSpec,
        started: Instant,
    ) -> AttemptReport {
        let config = &self.inner.config;
        let bounds = LogBounds {
            max_lines: config.max_log_lines,
            max_line_bytes: config.max_log_line_bytes,
            max_fields: config.max_log_fields,
        };
        let limits = attempt.limits;
        let memory_bytes = limits.memory_bytes.min(config.max_memory_bytes);
        let journal = attempt.journal;
        let stdout = Capture::new(journal.clone(), bounds, Level::Info, config.max_stdio_bytes);
        let stderr = Capture::new(journal.clone(), bounds, Level::Warn, config.max_stdio_bytes);
        // The builder grants nothing by default: no environment, arguments, preopened
        // directories or network; stdin is empty.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        // Far-future fallback for absurd timeouts, so the arithmetic cannot overflow.
        let deadline = started
            .checked_add(limits.timeout)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600));
        let grants = Arc::new(GrantCell::new(attempt.grants, journal.clone()));
        let usage = Arc::new(UsageCounters::default());
        let state = HostState::new(AttemptParts {
            wasi,
            limiter: MemoryLimiter::new(memory_bytes),
            journal: journal.clone(),
            bounds,
            cancel: attempt.cancel.clone(),
            grants: grants.clone(),
            http_hooks: AttemptHttp::new(
                self.inner.outbound.clone(),
                grants.clone(),
                journal.clone(),
                deadline,
                usage.clone(),
            ),
        });
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Bounds what the host copies out of the guest per call (strings and lists of a host
        // call's arguments, and `run`'s result): a longer output or log message traps instead
        // of being copied first and refused after.
        store.set_hostcall_fuel(config.max_output_bytes.saturating_add(HOSTCALL_SLACK_BYTES));
        store.set_max_component_handles(MAX_COMPONENT_HANDLES);

        let ending = match store.set_fuel(limits.fuel) {
            Err(error) => Ending::RunnerFailed(format!("setting fuel: {error}")),
            Ok(()) => {
                store.set_epoch_deadline(1);
                let cancel = attempt.cancel.clone();
                store.epoch_deadline_callback(move |_| {
                    if cancel.is_cancelled() {
                        return Err(wasmtime::Error::new(CancelRequested));
                    }
                    if Instant::now() >= deadline {
                        return Err(wasmtime::Error::new(DeadlineExceeded));
                    }
                    // Yield every tick, so a spinning guest shares its thread with other
                    // attempts and the API. Tokio's `yield_now` (not wasmtime's plain `Yield`)
                    // defers the wake-up until the runtime has polled its timers and I/O;
                    // otherwise an always-ready task can starve timers for many ticks.
                    Ok(UpdateDeadline::YieldCustom(
                        1,
                        Box::pin(tokio::task::yield_now()),
                    ))
                });
                let context = wit_context(attempt.context);
                let input = attempt.input;
                let store = &mut store;
                let run = async move {
                    let job = match prepared.pre.instantiate_async(&mut *store).await {
                        Ok(job) => job,
                        Err(error) => return Ending::InstantiateFailed(error),
                    };
                    match job.call_run(&mut *store, &context, &input).await {
                        Ok(returned) => Ending::Returned(returned),
                        Err(error) => Ending::Trapped(error),
                    }
                };
                // Epochs only interrupt wasm code; a guest blocked in a host call (sleeping in
                // `wasi:io/poll`) is ended by dropping the call instead.
                tokio::select! {
                    biased;
                    () = attempt.cancel.cancelled() => Ending::Cancelled,
                    ending = run => ending,
                    () = tokio::time::sleep_until(deadline.into()) => Ending::TimedOut,
                }
            }
        };

        let fuel_used = store
            .get_fuel()
            .map(|left| limits.fuel.saturating_sub(left))
            .unwrap_or(0);
        let memory_limit_hit = store.data().limiter.hit();
        let peak_memory_bytes = store.data().limiter.peak_bytes();
        drop(store);

        let out = stdout.finish();
        let err = stderr.finish();
        for (name, discarded) in [("stdout", out.discarded), ("stderr", err.discarded)] {
            if discarded > 0 {
                journal.push_note(
                    Level::Warn,
                    format!(
                        "{discarded} bytes of {name} discarded: an attempt's {name} is captured \
                         up to {} bytes",
                        config.max_stdio_bytes
                    ),
                );
            }
        }
        let dropped = journal.dropped_lines();
        if dropped > 0 {
            let bytes = journal
                .byte_budget()
                .map(|b| format!(" and {b} bytes of log (its tenant's max_log_bytes_per_attempt)"))
                .unwrap_or_default();
            journal.push_note(
                Level::Warn,
                format!(
                    "{dropped} log lines dropped: an attempt may write at most {} lines{bytes}",
                    config.max_log_lines
                ),
            );
        }

        let mut verdict = classify(
            ending,
            &Facts {
                memory_limit_hit,
                fuel: limits.fuel,
                memory_bytes,
                timeout: limits.timeout,
                stderr: &err.text,
                max_output_bytes: config.max_output_bytes,
            },
        );
        // Secret values never leave the attempt: not in the error, the snooze reason nor the
        // output. The error and reason were cut to size already: a secret cut in two there is
        // caught by its prefix at the end.
        if let Some(redactor) = journal.redactor() {
            if let Some(error) = &mut verdict.error {
                *error = redactor.redact_cut(error);
            }
            if let Some((_, reason)) = &mut verdict.snooze {
                *reason = redactor.redact_cut(reason);
            }
            if let Some(output) = &mut verdict.output {
                redactor.redact_json(output);
            }
        }
        usage.finish_notes(&journal);
        tracing::debug!(
            digest = prepared.digest(),
            outcome = verdict.outcome.as_str(),
            fuel_used,
            peak_memory_bytes,
            "attempt finished"
        );
        let mut report = report(verdict, fuel_used, peak_memory_bytes, started);
        report.outbound = usage.usage();
        report
    }
}

fn report(
    verdict: Verdict,
    fuel_used: u64,
    peak_memory_bytes: u64,
    started: Instant,
) -> AttemptReport {
    AttemptReport {
        outcome: verdict.outcome,
        output: verdict.output,
        error: verdict.error,
        retryable: verdict.retryable,
        retry_delay: verdict.retry_delay,
        snooze: verdict.snooze,
        fuel_used,
        peak_memory_bytes,
        duration: started.elapsed(),
        runner_fault: verdict.runner_fault,
        outbound: None,
    }
}

fn wit_context(context: JobContext) -> WitContext {
    WitContext {
        tenant: context.tenant,
        job: context.job,
        version: context.version,
        run_id: context.run_id,
        attempt: context.attempt,
        max_attempts: context.max_attempts,
        scheduled_at_ms: context.scheduled_at_ms,
    }
}

/// `prepared`'s artifact, made on the blocking pool (it copies the compiled code: tens of
/// megabytes for a Python or JavaScript component); `None`, logged, if it fails.
async fn serialize(prepared: &Arc<Prepared>) -> Option<Vec<u8>> {
    let prepared = prepared.clone();
    match tokio::task::spawn_blocking(move || prepared.artifact()).await {
        Ok(Ok(artifact)) => Some(artifact),
        Ok(Err(error)) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not serialize a compiled component"
            );
            None
        }
        Err(error) => {
            tracing::warn!(%error, "serializing a compiled component panicked");
            None
        }
    }
}

fn compile_crashed(error: tokio::task::JoinError) -> ComponentError {
    tracing::error!(%error, "compiling a component panicked");
    ComponentError::Invalid("the runner failed while compiling it".to_owned())
}

#[cfg(test)]
mod tests;
