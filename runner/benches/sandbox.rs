//! `make bench` (sandbox part): what one fresh sandbox costs the runner — instantiate the
//! pre-linked no-op component in a pooled slot, call it, tear it down — with the pooling
//! allocator's memory handed back to the kernel after each run (the default) and with part of
//! it kept resident (zeroed) instead. Medians of many sequential runs on one thread; no
//! database. Knobs: BENCH_SANDBOX_CALLS (5000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandfire::sandbox::{
    AttemptSpec, CancelFlag, JobContext, Journal, Limits, Sandbox, SandboxConfig,
};

#[path = "support/mod.rs"]
mod support;
use support::*;

async fn median_us(keep_resident_bytes: usize, noop: &[u8], calls: usize) -> anyhow::Result<f64> {
    let sandbox = Sandbox::new(SandboxConfig {
        keep_resident_bytes,
        ..SandboxConfig::default()
    })?;
    let validated = sandbox.validate(0, noop.to_vec()).await?;
    let bytes = noop.to_vec();
    let prepared = sandbox
        .prepare(0, &validated.digest, || async move { Ok(bytes) })
        .await?;
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let spec = AttemptSpec {
            context: JobContext {
                tenant: "bench".into(),
                job: "noop".into(),
                version: 1,
                run_id: format!("bench-{i}"),
                attempt: 1,
                max_attempts: 1,
                scheduled_at_ms: 0,
            },
            input: b"{}".to_vec(),
            limits: Limits {
                fuel: 1_000_000_000,
                memory_bytes: 64 << 20,
                timeout: Duration::from_secs(10),
            },
            cancel: CancelFlag::default(),
            journal: Arc::new(Journal::new()),
            grants: None,
        };
        let start = Instant::now();
        let report = sandbox.execute(&prepared, spec).await;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(report.output.is_some(), "noop failed: {:?}", report.error);
    }
    times.sort_by(f64::total_cmp);
    Ok(percentile(&times, 0.5))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let calls = env_usize("BENCH_SANDBOX_CALLS", 5_000);
    let noop = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/wasm32-wasip2/wasm/noop.wasm"
    ))
    .map_err(|e| anyhow::anyhow!("noop.wasm missing ({e}): run `make examples`"))?;
    println!();
    println!("Sandbox cost per run (no-op component, {calls} sequential runs, one thread)");
    println!("{:-<64}", "");
    for keep in [0usize, 64 << 10, 256 << 10, 1 << 20] {
        let us = median_us(keep, &noop, calls).await?;
        println!(
            "{:<40} {:>17.1} µs",
            format!("median, {} KiB kept resident", keep >> 10),
            us
        );
    }
    println!("{:-<64}", "");
    Ok(())
}
