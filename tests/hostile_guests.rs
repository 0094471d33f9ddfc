//! Hostile tenants: uploads and guests written to hurt the runner or another tenant. Each test
//! asserts the clean 4xx or the right attempt outcome and, for the execution cases, that a
//! second tenant's runs keep completing meanwhile. The guests are hand-written components (WAT,
//! built with the `wat` crate), so each does exactly one bad thing; `flood` is an example crate.
//! Timeouts are short and configurable: no test sleeps for seconds.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Body, TestRunner, TestTenant, outcomes};

const MIB: u64 = 1024 * 1024;

/// The `sandfire:job` types a hand-written job exports `run` with (see `wit/job.wit`).
const JOB_TYPES: &str = r#"
  (type $context' (record
    (field "tenant" string) (field "job" string) (field "version" u32) (field "run-id" string)
    (field "attempt" u32) (field "max-attempts" u32) (field "scheduled-at-ms" s64)))
  (export $context "context" (type $context'))
  (type $retry' (record (field "message" string) (field "delay-ms" (option u64))))
  (export $retry "retry-request" (type $retry'))
  (type $snooze' (record (field "delay-ms" u64) (field "reason" string)))
  (export $snooze "snooze-request" (type $snooze'))
  (type $job-error' (variant (case "retry" $retry) (case "fail" string) (case "snooze" $snooze)))
  (export $job-error "job-error" (type $job-error'))
"#;

/// A core module owning the memory the canonical ABI uses, with a bump allocator.
const LIBC: &str = r#"
  (core module $Libc
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (block $done
        (loop $grow
          (br_if $done (i32.le_u (global.get $heap)
                                 (i32.mul (memory.size) (i32.const 65536))))
          (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
          (br $grow)))
      (local.get $p)))
  (core instance $libc (instantiate $Libc))
  (alias core export $libc "memory" (core memory $memory))
  (alias core export $libc "realloc" (core func $realloc))
"#;

/// A job component: `imports` (component level, before the ABI memory), `lowers` (core
/// functions lowered from them, after it), and a core module `$Main` that imports the memory
/// as `libc.memory`, whatever `main_imports` declares (satisfied by `withs`), `main` (any
/// fields) and the body of its `run` (which must leave the result's address on the stack: the
/// result is written at 256 by the helpers below).
fn job(
    imports: &str,
    lowers: &str,
    main_imports: &str,
    withs: &str,
    main: &str,
    run: &str,
) -> Vec<u8> {
    let wat = format!(
        r#"(component
  {JOB_TYPES}
  {imports}
  {LIBC}
  {lowers}
  (core module $Main
    (import "libc" "memory" (memory 1))
    {main_imports}
    {main}
    (func (export "run")
      (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
      {run}))
  (core instance $main (instantiate $Main (with "libc" (instance $libc)) {withs}))
  (alias core export $main "run" (core func $run-core))
  (func $run (param "ctx" $context) (param "input" (list u8))
    (result (result (list u8) (error $job-error)))
    (canon lift (core func $run-core) (memory $memory) (realloc (func $realloc))))
  (export "run" (func $run))
)"#
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"))
}

/// `run` body returning `ok(bytes at ptr, len)`.
fn return_ok(ptr: &str, len: &str) -> String {
    format!(
        "(i32.store8 (i32.const 256) (i32.const 0))
         (i32.store (i32.const 264) {ptr})
         (i32.store (i32.const 268) {len})
         (i32.const 256)"
    )
}

/// A job returning `null`; `marker` makes its bytes (and digest) distinct.
fn returns_null(marker: usize) -> Vec<u8> {
    job(
        "",
        "",
        "",
        "",
        &format!(r#"(data (i32.const 512) "null") (data (i32.const 600) "{marker}")"#),
        &return_ok("(i32.const 512)", "(i32.const 4)"),
    )
}

/// A component whose only core module has the fields `module` (no job world: for upload-time
/// checks).
fn component_with(module: &str) -> Vec<u8> {
    wat::parse_str(format!("(component (core module {module}))")).unwrap()
}

/// Bytes the compiled-component cache charges for `bytes` (compiled by a sandbox of its own).
async fn cached_size(bytes: Vec<u8>) -> usize {
    use sandfire::sandbox::{Sandbox, SandboxConfig};
    let sandbox = Sandbox::new(SandboxConfig {
        max_memory_bytes: 16 * MIB,
        instance_slots: 1,
        ..SandboxConfig::default()
    })
    .unwrap();
    sandbox.validate(0, bytes).await.unwrap().prepared.size()
}

async fn put(r: &TestRunner, t: &TestTenant, job: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    r.call(
        Method::PUT,
        &format!("/v1/jobs/{job}"),
        Some(&t.key),
        Some(Body::Raw(bytes, None)),
    )
    .await
}

async fn put_ok(r: &TestRunner, t: &TestTenant, job: &str, bytes: Vec<u8>) {
    let (status, body) = put(r, t, job, bytes).await;
    assert!(status.is_success(), "uploading {job}: {status} {body}");
}

/// A runner with short limits for hostile guests.
async fn runner() -> TestRunner {
    TestRunner::start_with(|s| {
        s.worker.slots = 4;
        s.limits.default.timeout_ms = 2_000;
        s.limits.default.max_attempts = 1;
    })
    .await
}

/// Runs `job` for tenant `t` with `options`, waiting (while tenant `b`'s `hello` runs keep
/// succeeding) until it ends; returns the run.
async fn run_beside(
    r: &TestRunner,
    t: &TestTenant,
    job: &str,
    options: Value,
    b: &TestTenant,
) -> Value {
    let run = r.enqueue(t, job, options).await;
    let id = run["id"].as_str().unwrap().to_owned();
    // While the hostile run is going, the other tenant's runs complete.
    for _ in 0..3 {
        let other = r
            .enqueue(b, "hello", json!({"input": {"name": "Bea"}}))
            .await;
        let other = r.wait_terminal(b, other["id"].as_str().unwrap()).await;
        assert_eq!(other["state"], "succeeded", "tenant B's run: {other:#}");
    }
    r.wait_terminal(t, &id).await
}

async fn two_tenants(r: &TestRunner) -> (TestTenant, TestTenant) {
    let a = r.tenant("mallory").await;
    let b = r.tenant("bea").await;
    r.upload(&b, "hello", "hello").await;
    (a, b)
}

/// Hostile test 4: garbage uploads never take cache room, so they cannot evict another
/// tenant's compiled component; and a tenant over its cache share evicts only its own.
#[tokio::test]
async fn garbage_uploads_leave_another_tenants_compiled_component_cached() {
    let hello = cached_size(crate::support::example("hello")).await;
    let small = cached_size(returns_null(0)).await;
    // A tenant's share holds B's `hello` or four of A's small components; the whole cache two
    // shares, so A's twelve uploads overflow both its share and the cache.
    let share = hello.max(4 * small) + 1;
    let r = TestRunner::start_with(|s| {
        s.sandbox.cache_tenant_bytes = share;
        s.sandbox.cache_bytes = 2 * share;
    })
    .await;
    let (a, b) = two_tenants(&r).await;
    let compiles = r.sandbox().compiles();
    for i in 0..300 {
        let mut garbage = b"\0asm\x0d\0\x01\0".to_vec();
        garbage.extend_from_slice(format!("garbage {i}").as_bytes());
        let (status, body) = put(&r, &a, &format!("junk-{i}"), garbage).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(
        r.sandbox().compiles(),
        compiles,
        "garbage reached the compiler"
    );
    // Valid components too, far more than tenant A's share.
    for i in 1..=12 {
        put_ok(&r, &a, &format!("valid-{i}"), returns_null(i)).await;
    }
    let stats = r.sandbox().cache_stats();
    assert!(stats.bytes <= r.sandbox().config().cache_bytes, "{stats:?}");
    // Tenant B's runs still find its component compiled.
    let compiles = r.sandbox().compiles();
    let run = r
        .enqueue(&b, "hello", json!({"input": {"name": "Bea"}}))
        .await;
    let run = r.wait_terminal(&b, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(
        r.sandbox().compiles(),
        compiles,
        "tenant B's component was evicted and compiled again"
    );
    r.shutdown().await;
}

/// A module of `functions` functions, each `ops` additions long: slow to compile.
fn compile_bomb(functions: usize, ops: usize) -> Vec<u8> {
    let body = "local.get 0 i32.const 7 i32.mul local.set 0 ".repeat(ops);
    let funcs: String = (0..functions)
        .map(|_| format!("(func (param i32) (result i32) {body} local.get 0)"))
        .collect();
    component_with(&funcs)
}

/// Hostile test 5: an oversized function is refused before compiling; a compile that runs past
/// the (small, for the test) compile timeout is refused with `compile_timeout`; the API answers
/// meanwhile and the compile slot is free again once the compile really ends.
#[tokio::test]
async fn compile_bombs_are_refused_and_the_api_stays_responsive() {
    let r = TestRunner::start_with(|s| {
        // The in-process path (no probe): a timed-out compile thread keeps its slot. The probe
        // is tested below.
        s.sandbox.compile_probe = None;
        s.sandbox.compile_timeout = Duration::from_millis(300);
        s.sandbox.compile_queue_wait = Duration::from_millis(50);
        s.sandbox.compile_caps.max_function_bytes = 256 * 1024;
    })
    .await;
    // (No `hello` here: even it may take longer than this test's compile timeout.)
    let a = r.tenant("mallory").await;
    let b = r.tenant("bea").await;

    let started = Instant::now();
    let (status, body) = put(&r, &a, "huge-function", compile_bomb(1, 60_000)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "component_too_complex", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let bomb = compile_bomb(800, 150);
    let upload = {
        let (http, base, key) = (r.http.clone(), r.base.clone(), a.key.clone());
        tokio::spawn(async move {
            let response = http
                .put(format!("{base}/v1/jobs/bomb"))
                .bearer_auth(key)
                .body(bomb)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        })
    };
    // The API answers while the compile runs.
    for _ in 0..5 {
        let asked = Instant::now();
        let (status, _) = r.call(Method::GET, "/v1/jobs", Some(&b.key), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
    }
    let (status, body) = upload.await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "compile_timeout", "{body}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // While the timed-out compile still holds the only slot, uploads get 503 with Retry-After;
    // once it ends they compile again.
    let fresh = returns_null(77);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = r
            .http
            .put(format!("{}/v1/jobs/hello-again", r.base))
            .bearer_auth(&b.key)
            .body(fresh.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status.is_success() {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "compiler_busy", "{body}");
        assert!(
            Instant::now() < deadline,
            "the compile slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.shutdown().await;
}

/// Hostile test 14: a start function asking for 2^40 random bytes fails the run after
/// `max_attempts` (it is the guest's failure, not a runner fault refunded forever).
#[tokio::test]
async fn a_start_function_asking_for_huge_random_bytes_fails_after_max_attempts() {
    let r = runner().await;
    let (a, b) = two_tenants(&r).await;
    let bytes = job(
        r#"(import "wasi:random/random@0.2.0" (instance $random
             (export "get-random-bytes" (func (param "len" u64) (result (list u8))))))
           (alias export $random "get-random-bytes" (func $get-random-bytes))"#,
        r#"(core func $get-random-bytes-core
             (canon lower (func $get-random-bytes) (memory $memory) (realloc (func $realloc))))"#,
        r#"(import "random" "get-random-bytes" (func $get (param i64 i32)))"#,
        r#"(with "random" (instance (export "get-random-bytes" (func $get-random-bytes-core))))"#,
        r#"(func $start (call $get (i64.const 1099511627776) (i32.const 128)))
           (start $start)"#,
        &return_ok("(i32.const 0)", "(i32.const 0)"),
    );
    put_ok(&r, &a, "greedy", bytes).await;
    let run = run_beside(
        &r,
        &a,
        "greedy",
        json!({"max_attempts": 3, "backoff_base_ms": 1}),
        &b,
    )
    .await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["panic"; 3], "{run:#}");
    let error = run["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("instantiated") && error.contains("1048576"),
        "the random request should exceed the 1 MiB limit: {error}"
    );
    r.shutdown().await;
}

/// The `sandfire:job/host` import with `log`, lowered as core function `$log-core`.
const HOST_LOG: &str = r#"
  (import "sandfire:job/host@0.1.0" (instance $host
    (type $level' (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level (eq $level')))
    (type $field' (record (field "key" string) (field "value" string)))
    (export "field" (type $field (eq $field')))
    (export "log" (func (param "level" $level) (param "message" string)
                        (param "fields" (list $field))))))
  (alias export $host "log" (func $log))
"#;
const LOWER_LOG: &str = r#"(core func $log-core (canon lower (func $log) (memory $memory)))"#;
const IMPORT_LOG: &str = r#"(import "host" "log" (func $log (param i32 i32 i32 i32 i32)))"#;
const WITH_LOG: &str = r#"(with "host" (instance (export "log" (func $log-core))))"#;

/// Hostile test 15: `log` with a 12 MiB message, or with half a million fields, traps on the
/// hostcall limit before the host copies anything; a log line's fields are capped.
#[tokio::test]
async fn huge_log_calls_trap_before_the_host_copies_them() {
    let r = runner().await;
    let (a, b) = two_tenants(&r).await;
    let grow = "(drop (memory.grow (i32.const 200)))";
    let huge_message = job(
        HOST_LOG,
        LOWER_LOG,
        IMPORT_LOG,
        WITH_LOG,
        "",
        &format!(
            "{grow} (call $log (i32.const 2) (i32.const 0) (i32.const {}) (i32.const 0) \
             (i32.const 0)) {}",
            12 * MIB,
            return_ok("(i32.const 0)", "(i32.const 0)")
        ),
    );
    let many_fields = job(
        HOST_LOG,
        LOWER_LOG,
        IMPORT_LOG,
        WITH_LOG,
        "",
        &format!(
            "{grow} (call $log (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 0) \
             (i32.const 500000)) {}",
            return_ok("(i32.const 0)", "(i32.const 0)")
        ),
    );
    put_ok(&r, &a, "loud", huge_message).await;
    put_ok(&r, &a, "fields", many_fields).await;
    for job in ["loud", "fields"] {
        let run = run_beside(&r, &a, job, json!({"memory_mb": 16}), &b).await;
        assert_eq!(run["state"], "failed", "{run:#}");
        assert_eq!(outcomes(&run), ["panic"], "{run:#}");
        let error = run["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("hostcall"), "{error}");
        assert!(r.logs(&a, run["id"].as_str().unwrap()).await.len() <= 2);
    }
    r.shutdown().await;
}

/// Hostile test 16: returning a 12 MiB list is refused without the host copying it.
#[tokio::test]
async fn a_huge_output_is_refused_without_copying_it() {
    let r = runner().await;
    let (a, b) = two_tenants(&r).await;
    let bytes = job(
        "",
        "",
        "",
        "",
        "",
        &format!(
            "(drop (memory.grow (i32.const 200))) {}",
            return_ok("(i32.const 0)", &format!("(i32.const {})", 12 * MIB))
        ),
    );
    put_ok(&r, &a, "big-output", bytes).await;
    let run = run_beside(&r, &a, "big-output", json!({"memory_mb": 16}), &b).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(run["output"], Value::Null);
    let error = run["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("hostcall"), "{error}");
    r.shutdown().await;
}

/// Hostile test 17: components needing a disabled proposal are refused at upload with a 422
/// naming it.
#[tokio::test]
async fn components_using_disabled_proposals_are_refused_naming_the_proposal() {
    let r = TestRunner::start().await;
    let t = r.tenant("mallory").await;
    let cases = [
        ("memory64", "(memory i64 1)"),
        (
            "function-references",
            "(type $t (func)) (func $f (type $t)) (elem declare func $f)
             (func (call_ref $t (ref.func $f)))",
        ),
        (
            "relaxed-simd",
            "(func (param v128 v128 v128) (result v128)
               (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))",
        ),
        ("threads", "(memory 1 1 shared)"),
        (
            "gc",
            "(type (struct (field i32))) (func (drop (struct.new_default 0)))",
        ),
        ("exceptions", "(tag $e) (func (throw $e))"),
        ("tail-call", "(func $f (return_call $f))"),
        ("multi-memory", "(memory 1) (memory 1)"),
    ];
    for (proposal, module) in cases {
        let (status, body) = put(&r, &t, proposal, component_with(module)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{proposal}: {body}"
        );
        assert_eq!(
            body["error"]["code"], "unsupported_proposal",
            "{proposal}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(proposal), "{proposal}: {message}");
    }
    r.shutdown().await;
}

/// Hostile test 18: unbounded recursion ends with a stack overflow, reported as such.
#[tokio::test]
async fn unbounded_recursion_ends_with_a_stack_overflow() {
    let r = runner().await;
    let (a, b) = two_tenants(&r).await;
    let bytes = job(
        "",
        "",
        "",
        "",
        "(func $down (param i64) (call $down (i64.add (local.get 0) (i64.const 1))))",
        &format!(
            "(call $down (i64.const 0)) {}",
            return_ok("(i32.const 0)", "(i32.const 0)")
        ),
    );
    put_ok(&r, &a, "deep", bytes).await;
    let run = run_beside(&r, &a, "deep", json!({}), &b).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["panic"], "{run:#}");
    let error = run["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("stack overflow"), "{error}");
    r.shutdown().await;
}

/// Hostile test 19: 20,000 `subscribe-duration` pollables hit the resource cap: the guest's
/// failure (counted against its attempts), not a runner fault.
#[tokio::test]
async fn thousands_of_pollables_hit_the_resource_cap() {
    let r = runner().await;
    let (a, b) = two_tenants(&r).await;
    let bytes = job(
        r#"(import "wasi:io/poll@0.2.0" (instance $poll
             (export "pollable" (type (sub resource)))))
           (alias export $poll "pollable" (type $pollable))
           (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
             (alias outer 1 $pollable (type $p))
             (export "pollable" (type $pollable' (eq $p)))
             (export "subscribe-duration" (func (param "when" u64) (result (own $pollable'))))))
           (alias export $clock "subscribe-duration" (func $subscribe))"#,
        r#"(core func $subscribe-core (canon lower (func $subscribe)))"#,
        r#"(import "clock" "subscribe-duration" (func $subscribe (param i64) (result i32)))"#,
        r#"(with "clock" (instance (export "subscribe-duration" (func $subscribe-core))))"#,
        "",
        &format!(
            "(local $i i32)
             (loop $more
               (drop (call $subscribe (i64.const 1000000000)))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $more (i32.lt_u (local.get $i) (i32.const 20000))))
             {}",
            return_ok("(i32.const 0)", "(i32.const 0)")
        ),
    );
    put_ok(&r, &a, "pollables", bytes).await;
    let run = run_beside(
        &r,
        &a,
        "pollables",
        json!({"max_attempts": 2, "backoff_base_ms": 1}),
        &b,
    )
    .await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["panic"; 2], "{run:#}");
    let error = run["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("resource table"), "{error}");
    r.shutdown().await;
}

/// Hostile test 20: a stderr flood written one byte per call ends at its timeout, truncated.
#[tokio::test]
async fn a_byte_at_a_time_flood_is_truncated_and_ends_at_its_timeout() {
    // A small capture, so that even a loaded machine writes past it within the timeout.
    let r = TestRunner::start_with(|s| {
        s.worker.slots = 4;
        s.limits.default.timeout_ms = 2_000;
        s.limits.default.max_attempts = 1;
        s.sandbox.max_stdio_bytes = 2 * 1024;
    })
    .await;
    let (a, b) = two_tenants(&r).await;
    r.upload(&a, "flood", "flood").await;
    let run = run_beside(
        &r,
        &a,
        "flood",
        json!({"timeout_ms": 1_000, "fuel": 1_000_000_000_000u64}),
        &b,
    )
    .await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["timeout"], "{run:#}");
    let duration = run["attempts"][0]["duration_ms"].as_u64().unwrap();
    assert!(
        duration < 2_000,
        "the attempt ran {duration} ms for a 1000 ms timeout"
    );
    let logs = r.logs(&a, run["id"].as_str().unwrap()).await;
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("bytes of stderr discarded"))),
        "{logs:#?}"
    );
    r.shutdown().await;
}

/// Hostile test 21: four memories (one per core instance) growing together stay within the
/// run's `memory_mb`: the limit is on their sum.
#[tokio::test]
async fn four_growing_memories_share_one_memory_limit() {
    let r = runner().await;
    let (a, b) = two_tenants(&r).await;
    // Three instances of a module with its own memory; each grows by up to 5 MiB.
    let grower = r#"
      (core module $Grower
        (memory 0)
        (func (export "grow")
          (local $i i32)
          (loop $more
            (br_if 1 (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $more (i32.lt_u (local.get $i) (i32.const 5))))))
      (core instance $g1 (instantiate $Grower))
      (core instance $g2 (instantiate $Grower))
      (core instance $g3 (instantiate $Grower))"#;
    let bytes = job(
        "",
        grower,
        r#"(import "g1" "grow" (func $g1)) (import "g2" "grow" (func $g2))
           (import "g3" "grow" (func $g3))"#,
        r#"(with "g1" (instance $g1)) (with "g2" (instance $g2)) (with "g3" (instance $g3))"#,
        "",
        // The fourth memory (the ABI's) grows until refused, then the job gives up.
        "(call $g1) (call $g2) (call $g3)
         (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
         unreachable",
    );
    put_ok(&r, &a, "four-memories", bytes).await;
    let run = run_beside(&r, &a, "four-memories", json!({"memory_mb": 16}), &b).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert_eq!(outcomes(&run), ["memory_limit"], "{run:#}");
    let peak = run["attempts"][0]["peak_memory"].as_u64().unwrap();
    assert!(peak <= 16 * MIB, "peak {peak} over the 16 MiB cap");
    assert!(
        peak > 15 * MIB,
        "peak {peak}: the memories should reach the cap together"
    );
    r.shutdown().await;
}

/// Hostile test 22: memory or table minimums above the caps are refused at upload.
#[tokio::test]
async fn memory_and_table_minimums_above_the_caps_are_refused_at_upload() {
    let r = TestRunner::start_with(|s| s.limits.max_memory_mb = 64).await;
    let t = r.tenant("mallory").await;
    for (what, component) in [
        ("memory", "(component (core module (memory 2000)))"),
        (
            "memories",
            "(component (core module (memory 600)) (core module (memory 600)))",
        ),
        ("table", "(component (core module (table 200000 funcref)))"),
    ] {
        let (status, body) = put(&r, &t, what, wat::parse_str(component).unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(
            body["error"]["code"], "component_too_complex",
            "{what}: {body}"
        );
    }
    r.shutdown().await;
}

/// Hostile test 23: precompiled artifacts (`.cwasm` files are ELF objects) are never loaded.
#[tokio::test]
async fn precompiled_artifacts_are_refused_as_not_wasm() {
    let r = TestRunner::start().await;
    let t = r.tenant("mallory").await;
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(4096, 0);
    let (status, body) = put(&r, &t, "precompiled", elf).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "not_wasm", "{body}");
    r.shutdown().await;
}

/// Two first uploads of one job name at once both get a clean answer (never a 500).
#[tokio::test]
async fn concurrent_first_uploads_of_one_name_both_succeed() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    for round in 0..5 {
        let name = format!("racy-{round}");
        let (one, two) = tokio::join!(
            put(&r, &t, &name, returns_null(1)),
            put(&r, &t, &name, returns_null(2))
        );
        for (status, body) in [&one, &two] {
            assert!(
                status.is_success(),
                "concurrent first upload: {status} {body}"
            );
        }
        let versions: Vec<i64> = [&one.1, &two.1]
            .iter()
            .map(|b| b["version"].as_i64().unwrap())
            .collect();
        assert!(versions.contains(&1), "{versions:?}");
    }
    r.shutdown().await;
}

/// The compile probe: an upload whose compile needs more address space than the runner allows
/// is refused by a child process (422 `compile_memory`) and nothing is stored or compiled in
/// the runner; a probe past the wall clock is killed (422 `compile_timeout`) before the runner
/// compiles anything.
#[tokio::test]
async fn the_compile_probe_bounds_an_uploads_memory_and_time() {
    let r = TestRunner::start_with(|s| {
        // 16 MiB: far below what compiling `hello` takes. (At 64 MiB a compile fitted now
        // and then, depending on how much address space the process's threads had reserved.)
        if let Some(probe) = &mut s.sandbox.compile_probe {
            probe.memory_bytes = 16 * 1024 * 1024;
        }
    })
    .await;
    let t = r.tenant("mallory").await;
    let (status, body) = put(&r, &t, "hello", crate::support::example("hello")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "compile_memory", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16 MiB"),
        "{body}"
    );
    assert_eq!(
        r.sandbox().compiles(),
        0,
        "the runner compiled nothing itself"
    );
    assert_eq!(r.count("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(r.count("SELECT count(*) FROM components").await, 0);
    r.shutdown().await;

    let r = TestRunner::start_with(|s| {
        s.sandbox.compile_timeout = Duration::from_millis(1);
    })
    .await;
    let t = r.tenant("mallory").await;
    let started = Instant::now();
    let (status, body) = put(&r, &t, "bomb", compile_bomb(800, 150)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "compile_timeout", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        r.sandbox().compiles(),
        0,
        "the probe was stopped, not the runner's compile"
    );
    r.shutdown().await;
}
