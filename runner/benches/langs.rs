//! `make bench-langs`: what a job in each language costs, for docs/guest-languages.md. For
//! `hello` (Rust), `hello-py` and `hello-js`: the upload (validate, compile in the probe and
//! in the runner, keep the artifact), the kept artifact's size, the first run on a fresh
//! runner with the kept artifact and without it (compiling), and a warm run. Real runners on
//! a throwaway database (`DATABASE_URL`), as in the integration tests; takes minutes.

#[allow(dead_code)]
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use support::{Body, TestRunner, TestTenant, example};

const SLOW: Duration = Duration::from_secs(300);

fn slow_compiles(s: &mut sandfire::config::Settings) {
    s.sandbox.compile_timeout = SLOW;
}

async fn upload_timed(r: &TestRunner, t: &TestTenant, job: &str) -> Duration {
    let started = Instant::now();
    let (status, body) = r
        .call(
            Method::PUT,
            &format!("/v1/jobs/{job}"),
            Some(&t.key),
            Some(Body::Raw(example(job), None)),
        )
        .await;
    assert!(status.is_success(), "uploading {job}: {status} {body}");
    started.elapsed()
}

async fn run_job(r: &TestRunner, t: &TestTenant, job: &str) -> (Value, Duration) {
    let started = Instant::now();
    let run = r.enqueue(t, job, json!({ "input": {"name": "Ada"} })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = r
        .wait_for(t, &id, SLOW, |r| {
            matches!(
                r["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    (run, started.elapsed())
}

#[tokio::main]
async fn main() {
    println!(
        "| job | component | kept artifact | upload | first run (artifact) | first run (compiling) | warm run | attempt | fuel | peak memory |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for job in ["hello", "hello-py", "hello-js"] {
        // With the compile probe, as `sandfire serve` runs; no worker here.
        let a = TestRunner::start_with(|s| {
            slow_compiles(s);
            s.worker.queues = vec!["other".into()];
        })
        .await;
        let t = a.tenant("acme").await;
        let upload = upload_timed(&a, &t, job).await;
        let artifact: i32 = sqlx::query_scalar("SELECT size FROM compiled_components")
            .fetch_one(a.store.pool())
            .await
            .unwrap();
        let b = a.second_runner(slow_compiles).await;
        let (_, from_artifact) = run_job(&b, &t, job).await;
        assert_eq!(b.sandbox().compiles(), 0, "the kept artifact was not used");
        let (run, warm) = run_job(&b, &t, job).await;
        let attempt = run["attempts"][0].clone();
        b.shutdown().await;
        sqlx::query("DELETE FROM compiled_components")
            .execute(a.store.pool())
            .await
            .unwrap();
        let c = a.second_runner(slow_compiles).await;
        let (_, compiling) = run_job(&c, &t, job).await;
        assert_eq!(c.sandbox().compiles(), 1);
        c.shutdown().await;
        a.shutdown().await;
        println!(
            "| {job} | {:.1} MB | {:.1} MB | {:.1} s | {:.2} s | {:.1} s | {:.0} ms | {} ms | {} | {:.1} MiB |",
            example(job).len() as f64 / 1e6,
            f64::from(artifact) / 1e6,
            upload.as_secs_f64(),
            from_artifact.as_secs_f64(),
            compiling.as_secs_f64(),
            warm.as_secs_f64() * 1e3,
            attempt["duration_ms"],
            attempt["fuel_used"],
            attempt["peak_memory"].as_f64().unwrap_or(0.0) / 1048576.0,
        );
    }
}
