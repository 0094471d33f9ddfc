//! The sandbox against real components: the examples in `examples-wasm/`, built with
//! `make examples` (or `cargo build --profile wasm --target wasm32-wasip2 -p <name>`), plus a few
//! components handcrafted below for what no example should do.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

const MIB: u64 = 1024 * 1024;

/// The tenant the tests compile for (the cache is keyed by tenant).
const TENANT: TenantId = 1;

/// Fuel for attempts that should be stopped by something else (≈ minutes of CPU).
const PLENTY_OF_FUEL: u64 = 1 << 40;

fn example(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/wasm")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "example component {} is missing ({e}): build it with \
             `cargo build --profile wasm --target wasm32-wasip2 -p {name}` (or `make examples`)",
            path.display()
        )
    })
}

fn config() -> SandboxConfig {
    SandboxConfig {
        // Small slots keep each test's address-space reservation modest.
        max_memory_bytes: 64 * MIB,
        instance_slots: 8,
        ..SandboxConfig::default()
    }
}

async fn prepared(sandbox: &Sandbox, name: &str) -> Arc<Prepared> {
    sandbox
        .validate(TENANT, example(name))
        .await
        .unwrap_or_else(|e| panic!("example {name} should validate: {e}"))
        .prepared
}

fn limits(fuel: u64, timeout: Duration) -> Limits {
    Limits {
        fuel,
        memory_bytes: 32 * MIB,
        timeout,
    }
}

fn spec(input: &str, limits: Limits) -> AttemptSpec {
    AttemptSpec {
        context: JobContext {
            tenant: "acme".to_owned(),
            job: "test-job".to_owned(),
            version: 1,
            run_id: "0190c6f4-0000-7000-8000-000000000000".to_owned(),
            attempt: 1,
            max_attempts: 3,
            scheduled_at_ms: 1_700_000_000_000,
        },
        input: input.as_bytes().to_vec(),
        limits,
        cancel: CancelFlag::new(),
        journal: Arc::new(Journal::new()),
        grants: None,
    }
}

async fn run(
    sandbox: &Sandbox,
    name: &str,
    input: &str,
    limits: Limits,
) -> (AttemptReport, Vec<LogLine>) {
    let prepared = prepared(sandbox, name).await;
    let spec = spec(input, limits);
    let journal = spec.journal.clone();
    let report = sandbox.execute(&prepared, spec).await;
    (report, journal.drain_lines())
}

#[tokio::test]
async fn hello_returns_its_output_and_logs() {
    let sandbox = Sandbox::new(config()).unwrap();
    let validated = sandbox.validate(TENANT, example("hello")).await.unwrap();
    assert_eq!(validated.digest.len(), 64);
    assert!(
        validated
            .imports
            .iter()
            .any(|i| i.starts_with("sandfire:job/host@0.1"))
    );

    let spec = spec(
        r#"{"name": "Ada"}"#,
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    );
    let journal = spec.journal.clone();
    let report = sandbox.execute(&validated.prepared, spec).await;

    assert_eq!(report.outcome, Outcome::Ok, "{report:?}");
    assert_eq!(
        report.output,
        Some(serde_json::json!({"greeting": "Hello, Ada!"}))
    );
    assert_eq!(report.error, None);
    assert!(report.fuel_used > 0);
    assert!(report.peak_memory_bytes > 0);
    let lines = journal.drain_lines();
    let line = lines
        .iter()
        .find(|l| l.message.contains("Ada"))
        .unwrap_or_else(|| panic!("no log line mentions Ada: {lines:?}"));
    assert_eq!(line.level, Level::Info);
    assert!(
        line.fields.contains(&("name".to_owned(), "Ada".to_owned())),
        "{line:?}"
    );
    assert_eq!(journal.dropped_lines(), 0);
}

#[tokio::test]
async fn spin_runs_out_of_fuel() {
    let sandbox = Sandbox::new(config()).unwrap();
    let fuel = 20_000_000;
    let (report, _) = run(
        &sandbox,
        "spin",
        "null",
        limits(fuel, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(report.outcome, Outcome::OutOfFuel, "{report:?}");
    assert!(report.retryable);
    assert_eq!(report.fuel_used, fuel);
}

#[tokio::test]
async fn spin_with_plenty_of_fuel_times_out() {
    let sandbox = Sandbox::new(config()).unwrap();
    let timeout = Duration::from_millis(50);
    let (report, lines) = run(&sandbox, "spin", "null", limits(PLENTY_OF_FUEL, timeout)).await;
    assert_eq!(report.outcome, Outcome::Timeout, "{report:?}");
    assert!(report.retryable);
    assert!(report.duration >= timeout, "{:?}", report.duration);
    assert!(report.duration < timeout * 4, "took {:?}", report.duration);
    // Lines logged before the interruption are kept.
    assert!(
        lines.iter().any(|l| l.message.contains("spinning")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn hog_hits_the_memory_limit() {
    let sandbox = Sandbox::new(config()).unwrap();
    let (report, _) = run(
        &sandbox,
        "hog",
        "null",
        limits(PLENTY_OF_FUEL, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(report.outcome, Outcome::MemoryLimit, "{report:?}");
    assert!(report.retryable);
    assert!(report.peak_memory_bytes <= 32 * MIB);
    assert!(
        report.peak_memory_bytes > 16 * MIB,
        "{}",
        report.peak_memory_bytes
    );
    assert!(report.error.unwrap().contains("32 MiB"));
}

#[tokio::test]
async fn panic_reports_the_panic_message() {
    let sandbox = Sandbox::new(config()).unwrap();
    let (report, lines) = run(
        &sandbox,
        "panic",
        "null",
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Panic, "{report:?}");
    assert!(report.retryable);
    let error = report.error.unwrap();
    assert!(error.starts_with("panicked at "), "{error}");
    assert!(
        error.ends_with(": the panic example job panicked on purpose"),
        "{error}"
    );
    // stderr also reaches the log, as warnings.
    assert!(
        lines
            .iter()
            .any(|l| l.level == Level::Warn && l.message.contains("panicked on purpose")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn sleep_blocked_in_a_host_call_times_out() {
    let sandbox = Sandbox::new(config()).unwrap();
    let timeout = Duration::from_millis(50);
    let (report, _) = run(&sandbox, "sleep", "null", limits(PLENTY_OF_FUEL, timeout)).await;
    assert_eq!(report.outcome, Outcome::Timeout, "{report:?}");
    assert!(report.duration < timeout * 4, "took {:?}", report.duration);
}

/// Cancels `name` once it has been running for a while; returns the report and how long after
/// the cancel it arrived.
async fn cancel_while_running(name: &str) -> (AttemptReport, Duration) {
    let sandbox = Sandbox::new(config()).unwrap();
    let prepared = prepared(&sandbox, name).await;
    let spec = spec("null", limits(PLENTY_OF_FUEL, Duration::from_secs(30)));
    let cancel = spec.cancel.clone();
    let attempt = tokio::spawn(async move { sandbox.execute(&prepared, spec).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let report = attempt.await.unwrap();
    (report, cancelled_at.elapsed())
}

#[tokio::test]
async fn cancel_interrupts_a_spinning_guest() {
    let (report, latency) = cancel_while_running("spin").await;
    assert_eq!(report.outcome, Outcome::Cancelled, "{report:?}");
    assert!(!report.retryable);
    assert!(latency < Duration::from_millis(50), "took {latency:?}");
}

#[tokio::test]
async fn cancel_interrupts_a_guest_blocked_in_a_host_call() {
    let (report, latency) = cancel_while_running("sleep").await;
    assert_eq!(report.outcome, Outcome::Cancelled, "{report:?}");
    assert!(latency < Duration::from_millis(50), "took {latency:?}");
}

/// One thread only: the spinning guest must yield, so another task on the same thread keeps
/// running while it spins (a guest that never yields would leave it at zero).
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_starve_its_thread() {
    let sandbox = Sandbox::new(config()).unwrap();
    let prepared = prepared(&sandbox, "spin").await;
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let spec = spec("null", limits(PLENTY_OF_FUEL, Duration::from_millis(300)));
    let report = sandbox.execute(&prepared, spec).await;
    let ticks = ticks.load(Ordering::Relaxed);
    ticker.abort();
    assert_eq!(report.outcome, Outcome::Timeout);
    // Unloaded this is ≈ 50; on a busy 2-core machine running the other tests, ≈ 7.
    assert!(
        ticks >= 3,
        "the other task ran only {ticks} times in 300 ms"
    );
}

#[tokio::test]
async fn retry_requests_are_retryable_errors() {
    let sandbox = Sandbox::new(config()).unwrap();
    let (report, lines) = run(
        &sandbox,
        "flaky",
        r#"{"succeed_on_attempt": 2}"#,
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Error, "{report:?}");
    assert!(report.retryable);
    assert_eq!(report.snooze, None);
    assert!(report.error.unwrap().contains("not yet"));
    assert!(lines.iter().any(|l| l.level == Level::Warn), "{lines:?}");
}

#[tokio::test]
async fn report_records_progress() {
    let sandbox = Sandbox::new(config()).unwrap();
    let prepared = prepared(&sandbox, "report").await;
    let spec = spec(
        r#"{"n": 1000}"#,
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    );
    let journal = spec.journal.clone();
    let report = sandbox.execute(&prepared, spec).await;
    assert_eq!(report.outcome, Outcome::Ok, "{report:?}");
    assert_eq!(
        report.output,
        Some(serde_json::json!({"primes": 168, "largest": 997}))
    );
    let progress = journal.progress().expect("progress was reported");
    assert_eq!(progress.percent, 100);
    assert!(!progress.message.is_empty());
}

#[tokio::test]
async fn log_lines_past_the_limit_are_counted_and_noted() {
    let sandbox = Sandbox::new(SandboxConfig {
        max_log_lines: 0,
        ..config()
    })
    .unwrap();
    let prepared = prepared(&sandbox, "hello").await;
    let spec = spec(
        r#"{"name": "Ada"}"#,
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    );
    let journal = spec.journal.clone();
    let report = sandbox.execute(&prepared, spec).await;
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(journal.dropped_lines(), 1);
    let lines = journal.drain_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].message.starts_with("1 log lines dropped"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn oversized_output_is_a_final_error() {
    let sandbox = Sandbox::new(SandboxConfig {
        max_output_bytes: 10,
        ..config()
    })
    .unwrap();
    let (report, _) = run(
        &sandbox,
        "hello",
        r#"{"name": "Ada"}"#,
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Error);
    assert!(!report.retryable);
    assert_eq!(report.output, None);
    assert!(report.error.unwrap().contains("limit of 10 bytes"));
}

#[tokio::test]
async fn a_full_instance_pool_is_the_runners_fault() {
    let sandbox = Sandbox::new(SandboxConfig {
        instance_slots: 1,
        ..config()
    })
    .unwrap();
    let sleep = prepared(&sandbox, "sleep").await;
    let hello = prepared(&sandbox, "hello").await;
    let first = spec("null", limits(PLENTY_OF_FUEL, Duration::from_secs(30)));
    let cancel = first.cancel.clone();
    let running = tokio::spawn({
        let sandbox = sandbox.clone();
        async move { sandbox.execute(&sleep, first).await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;

    let second = spec(
        r#"{"name": "Ada"}"#,
        limits(PLENTY_OF_FUEL, Duration::from_secs(5)),
    );
    let report = sandbox.execute(&hello, second).await;
    assert_eq!(report.outcome, Outcome::Error, "{report:?}");
    assert!(report.retryable);
    assert!(
        report
            .error
            .unwrap()
            .starts_with("runner could not instantiate")
    );

    cancel.cancel();
    assert_eq!(running.await.unwrap().outcome, Outcome::Cancelled);
}

#[tokio::test]
async fn validate_rejects_what_is_not_a_job_component() {
    let sandbox = Sandbox::new(config()).unwrap();
    let reject = |bytes: &[u8]| sandbox.validate(TENANT, bytes.to_vec());

    assert_eq!(
        reject(b"not wasm at all").await.unwrap_err(),
        ComponentError::NotWasm
    );
    // The smallest valid core module: just the preamble.
    assert_eq!(
        reject(b"\0asm\x01\0\0\0").await.unwrap_err(),
        ComponentError::CoreModule
    );
    assert!(matches!(
        reject(b"\0asm\x0d\0\x01\0\xff\xff").await.unwrap_err(),
        ComponentError::Invalid(_)
    ));

    match reject(&component_importing("wasi:keyvalue/store@0.2.0-draft")).await {
        Err(ComponentError::DisallowedImports(names)) => {
            assert_eq!(names, ["wasi:keyvalue/store@0.2.0-draft"]);
        }
        other => panic!("expected DisallowedImports, got {other:?}"),
    }
    // A real program that reads a file: the filesystem is linked (deny-only), but a command
    // is not a job.
    assert!(matches!(
        reject(&example("files")).await.unwrap_err(),
        ComponentError::WrongWorld(_)
    ));
    // Granted imports but no `run` export.
    match reject(&component_importing("wasi:cli/stdout@0.2.0")).await {
        Err(ComponentError::WrongWorld(message)) => assert!(!message.is_empty()),
        other => panic!("expected WrongWorld, got {other:?}"),
    }
    assert!(matches!(
        reject(COMPONENT_PREAMBLE).await.unwrap_err(),
        ComponentError::WrongWorld(_)
    ));
}

const COMPONENT_PREAMBLE: &[u8] = b"\0asm\x0d\0\x01\0";

/// A component with no code that imports one instance (with no exports) named `name`.
fn component_importing(name: &str) -> Vec<u8> {
    let mut bytes = COMPONENT_PREAMBLE.to_vec();
    // Type section: one type, an instance type with no declarations.
    bytes.extend_from_slice(&[0x07, 0x03, 0x01, 0x42, 0x00]);
    // Import section: one import, a plain name, of an instance of type 0.
    let name_len = u8::try_from(name.len()).unwrap();
    let mut import = vec![0x01, 0x00, name_len];
    import.extend_from_slice(name.as_bytes());
    import.extend_from_slice(&[0x05, 0x00]);
    bytes.push(0x0a);
    bytes.push(u8::try_from(import.len()).unwrap());
    bytes.extend_from_slice(&import);
    bytes
}

#[tokio::test]
async fn prepare_compiles_a_digest_once_and_caches_it() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = example("noop");
    let digest = component::digest(&bytes);
    let loads = Arc::new(AtomicUsize::new(0));
    let prepare = || {
        let (sandbox, bytes, loads, digest) = (
            sandbox.clone(),
            bytes.clone(),
            loads.clone(),
            digest.clone(),
        );
        async move {
            sandbox
                .prepare(TENANT, &digest, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(bytes)
                })
                .await
                .unwrap()
        }
    };
    let all = futures::future::join_all((0..4).map(|_| tokio::spawn(prepare()))).await;
    let all: Vec<Arc<Prepared>> = all.into_iter().map(Result::unwrap).collect();
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert!(all.iter().all(|p| Arc::ptr_eq(p, &all[0])));
    assert_eq!(all[0].digest(), digest);

    // Validating the same bytes again reuses the cached compile.
    let validated = sandbox.validate(TENANT, bytes.clone()).await.unwrap();
    assert!(Arc::ptr_eq(&validated.prepared, &all[0]));

    // Cached now: `load` is not called again.
    let again = sandbox
        .prepare(TENANT, &digest, || async {
            anyhow::bail!("must not be loaded again")
        })
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&again, &all[0]));
}

#[tokio::test]
async fn prepare_refuses_bytes_that_do_not_match_the_digest() {
    let sandbox = Sandbox::new(config()).unwrap();
    let wrong = "0".repeat(64);
    let error = sandbox
        .prepare(TENANT, &wrong, || async { Ok(example("noop")) })
        .await
        .unwrap_err();
    assert!(matches!(error, PrepareError::Load(_)), "{error:?}");
    let error = sandbox
        .prepare(TENANT, &wrong, || async {
            anyhow::bail!("database is down")
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("database is down"), "{error}");
}

#[tokio::test]
async fn the_cache_is_per_tenant_and_admits_only_successful_compiles() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = example("noop");
    let digest = component::digest(&bytes);
    sandbox.validate(TENANT, bytes.clone()).await.unwrap();
    assert_eq!(sandbox.compiles(), 1);
    assert!(sandbox.is_cached(TENANT, &digest));
    // Another tenant's identical bytes are compiled for it: no shared artifact, no timing
    // signal about what other tenants uploaded.
    assert!(!sandbox.is_cached(TENANT + 1, &digest));
    sandbox.validate(TENANT + 1, bytes.clone()).await.unwrap();
    assert_eq!(sandbox.compiles(), 2);
    sandbox.validate(TENANT + 1, bytes).await.unwrap();
    assert_eq!(sandbox.compiles(), 2, "cached for that tenant now");
    // A component that fails after compiling (wrong world) takes no room.
    let before = sandbox.cache_stats();
    assert!(
        sandbox
            .validate(TENANT, COMPONENT_PREAMBLE.to_vec())
            .await
            .is_err()
    );
    assert_eq!(sandbox.cache_stats(), before);
}

#[tokio::test]
async fn a_tenant_over_its_share_evicts_only_its_own_entries() {
    let hello = example("hello");
    let noop = example("noop");
    let probe = Sandbox::new(config()).unwrap();
    let size = |b: Vec<u8>| {
        let probe = probe.clone();
        async move { probe.validate(TENANT, b).await.unwrap().prepared.size() }
    };
    let share = size(hello.clone()).await.max(size(noop.clone()).await) + 1;
    let sandbox = Sandbox::new(SandboxConfig {
        cache_tenant_bytes: share,
        cache_bytes: 2 * share,
        ..config()
    })
    .unwrap();
    sandbox.validate(TENANT, hello.clone()).await.unwrap();
    // Tenant 2 uploads two components, more than its share: its first one goes.
    sandbox.validate(TENANT + 1, noop.clone()).await.unwrap();
    sandbox.validate(TENANT + 1, hello.clone()).await.unwrap();
    assert!(sandbox.is_cached(TENANT, &component::digest(&hello)));
    assert!(sandbox.is_cached(TENANT + 1, &component::digest(&hello)));
    assert!(!sandbox.is_cached(TENANT + 1, &component::digest(&noop)));
    assert!(sandbox.cache_stats().bytes <= 2 * share);
}

/// A `ComponentSource` in memory: what a store would hold, and what it was asked to keep.
#[derive(Default)]
struct MemorySource {
    artifact: Option<Vec<u8>>,
    bytes: Vec<u8>,
    kept: std::sync::Mutex<Vec<(String, usize)>>,
}

#[async_trait::async_trait]
impl ComponentSource for MemorySource {
    async fn artifact(&self, _engine: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.artifact.clone())
    }
    async fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        Ok(self.bytes.clone())
    }
    async fn keep_artifact(&self, engine: &str, artifact: Vec<u8>) {
        self.kept
            .lock()
            .unwrap()
            .push((engine.to_owned(), artifact.len()));
    }
}

#[tokio::test]
async fn an_uploads_artifact_loads_in_another_sandbox_without_compiling() {
    let uploader = Sandbox::new(config()).unwrap();
    let validated = uploader.validate(TENANT, example("hello")).await.unwrap();
    let artifact = validated.artifact.expect("an upload yields its artifact");

    let runner = Sandbox::new(config()).unwrap();
    assert_eq!(runner.engine_hash(), uploader.engine_hash());
    assert_eq!(runner.engine_hash().len(), 64);
    let source = MemorySource {
        artifact: Some(artifact),
        ..MemorySource::default()
    };
    let prepared = runner
        .prepare_from(TENANT, &validated.digest, &source)
        .await
        .unwrap();
    assert_eq!((runner.compiles(), runner.artifacts_loaded()), (0, 1));
    assert!(source.kept.lock().unwrap().is_empty());
    assert_eq!(prepared.imports(), validated.imports.as_slice());
    let report = runner
        .execute(
            &prepared,
            spec(
                r#"{"name":"Ada"}"#,
                limits(PLENTY_OF_FUEL, Duration::from_secs(10)),
            ),
        )
        .await;
    assert_eq!(report.outcome, Outcome::Ok, "{report:?}");
    // Cached now: neither loaded nor compiled again.
    runner
        .prepare_from(TENANT, &validated.digest, &source)
        .await
        .unwrap();
    assert_eq!((runner.compiles(), runner.artifacts_loaded()), (0, 1));
}

#[tokio::test]
async fn an_unusable_artifact_is_compiled_over_and_the_new_one_kept() {
    let sandbox = Sandbox::new(config()).unwrap();
    let bytes = example("hello");
    let digest = component::digest(&bytes);
    // Not an artifact of this engine (e.g. another wasmtime version's).
    let source = MemorySource {
        artifact: Some(b"\x7fELF not ours".to_vec()),
        bytes,
        ..MemorySource::default()
    };
    sandbox
        .prepare_from(TENANT, &digest, &source)
        .await
        .unwrap();
    assert_eq!((sandbox.compiles(), sandbox.artifacts_loaded()), (1, 0));
    let kept = source.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, sandbox.engine_hash());
    assert!(kept[0].1 > 0);
}
