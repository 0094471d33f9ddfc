//! Retention: the pruner deletes only expired terminal runs (with their attempts, history and
//! logs), batches left without runs and expired idempotency keys, in bounded batches, one
//! runner at a time.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sandfire::config::RetentionSettings;
use sandfire::maintenance::pruner::{PruneReport, prune};
use sandfire::store::PRUNE_LOCK;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{Body, TestRunner, TestTenant, wait_until};

const HOUR: Duration = Duration::from_secs(3600);

fn id(run: &Value) -> String {
    run["id"].as_str().expect("run id").to_string()
}

/// Pretends the run finished `ago` ago.
/// Makes a finished run look `ago` old: it finished then, and its id (a UUIDv7, which starts
/// with its creation time, as retention reads it) says it was created then. Returns the id.
async fn age(r: &TestRunner, run: &str, ago: &str) -> String {
    let aged: Option<uuid::Uuid> = sqlx::query_scalar(
        "WITH moved AS (
             UPDATE runs
             SET finished_at = now() - $2::interval,
                 created_at = now() - $2::interval,
                 id = (left(sandfire_uuid_v7_floor(now() - $2::interval)::text, 13)
                       || substr(id::text, 14))::uuid
             WHERE id = $1::uuid AND finished_at IS NOT NULL
             RETURNING id
         ), a AS (UPDATE attempts SET run_id = (SELECT id FROM moved) WHERE run_id = $1::uuid),
            e AS (UPDATE run_events SET run_id = (SELECT id FROM moved) WHERE run_id = $1::uuid),
            l AS (UPDATE logs SET run_id = (SELECT id FROM moved) WHERE run_id = $1::uuid)
         SELECT id FROM moved",
    )
    .bind(run)
    .bind(ago)
    .fetch_optional(r.store.pool())
    .await
    .unwrap();
    aged.unwrap_or_else(|| panic!("run {run} has not finished"))
        .to_string()
}

async fn exists(r: &TestRunner, run: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1::uuid)")
        .bind(run)
        .fetch_one(r.store.pool())
        .await
        .unwrap()
}

async fn terminal(r: &TestRunner, t: &TestTenant, job: &str, body: Value) -> String {
    let run = r.enqueue(t, job, body).await;
    id(&r.wait_terminal(t, &id(&run)).await)
}

#[tokio::test]
async fn the_pruner_deletes_only_expired_terminal_runs() {
    let r = TestRunner::start_with(|s| {
        s.retention = RetentionSettings {
            retention_succeeded: HOUR,
            retention_failed: 3 * HOUR,
            retention_versions: HOUR,
            prune_interval: Duration::from_millis(50),
            prune_batch: 2,
            ..Default::default()
        };
    })
    .await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    r.upload(&t, "panic", "panic").await;
    r.upload(&t, "noop", "noop").await;
    let hello = json!({"input": {"name": "Ada"}});
    let old_succeeded = terminal(&r, &t, "hello", hello.clone()).await;
    let new_succeeded = terminal(&r, &t, "hello", hello.clone()).await;
    let old_failed = terminal(&r, &t, "panic", json!({"max_attempts": 1})).await;
    let young_failed = terminal(&r, &t, "panic", json!({"max_attempts": 1})).await;
    // Never claimed: this runner does not serve the queue.
    let waiting = r.enqueue(&t, "noop", json!({"queue": "nobody"})).await;
    let cancelled = r.enqueue(&t, "noop", json!({"queue": "nobody"})).await;
    let (status, _) = r
        .call(
            Method::POST,
            &format!("/v1/runs/{}/cancel", id(&cancelled)),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut more_old = Vec::new();
    for _ in 0..3 {
        more_old.push(terminal(&r, &t, "noop", json!({})).await);
    }

    let old_succeeded = age(&r, &old_succeeded, "2 hours").await;
    let new_succeeded = age(&r, &new_succeeded, "30 minutes").await;
    let old_failed = age(&r, &old_failed, "4 hours").await;
    let young_failed = age(&r, &young_failed, "2 hours").await; // failed runs are kept longer
    let cancelled = age(&r, &id(&cancelled), "2 hours").await;
    for run in more_old.iter_mut() {
        *run = age(&r, run, "1 day").await;
    }

    let mut gone = vec![old_succeeded.clone(), old_failed, cancelled];
    gone.extend(more_old);
    for run in &gone {
        wait_until(
            &format!("run {run} pruned"),
            Duration::from_secs(10),
            || async { (!exists(&r, run).await).then_some(()) },
        )
        .await;
    }
    for run in [&new_succeeded, &young_failed, &id(&waiting)] {
        assert!(exists(&r, run).await, "run {run} was pruned too early");
    }
    // Attempts, history and logs went with them.
    for table in ["attempts", "run_events", "logs"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE run_id = $1::uuid"
        )))
        .bind(&old_succeeded)
        .fetch_one(r.store.pool())
        .await
        .unwrap();
        assert_eq!(left, 0, "{table} of a pruned run left behind");
    }
    let (status, _) = r
        .call(
            Method::GET,
            &format!("/v1/runs/{old_succeeded}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(r.run(&t, &id(&waiting)).await["state"], "enqueued");
    r.shutdown().await;
}

/// A runner whose own pruner stays out of the way (its first pass is a day away), so the test
/// drives passes itself.
async fn quiet_runner() -> TestRunner {
    TestRunner::start_with(|s| {
        s.retention.prune_interval = 24 * HOUR;
    })
    .await
}

fn short(batch: usize) -> RetentionSettings {
    RetentionSettings {
        retention_succeeded: HOUR,
        retention_failed: HOUR,
        retention_versions: HOUR,
        prune_interval: HOUR,
        prune_batch: batch,
        retention_stats_fine: HOUR,
        retention_stats: 48 * HOUR,
        ..Default::default()
    }
}

async fn pass(r: &TestRunner, settings: &RetentionSettings) -> PruneReport {
    prune(r.store.as_ref(), settings, &CancellationToken::new())
        .await
        .expect("a pruning pass")
}

#[tokio::test]
async fn batches_are_pruned_after_their_runs_and_kept_while_in_progress() {
    let r = quiet_runner().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let post = |body: Value| {
        let r = &r;
        let t = &t;
        async move {
            let (status, b) = r
                .call(
                    Method::POST,
                    "/v1/batches",
                    Some(&t.key),
                    Some(Body::Json(body)),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{b}");
            b
        }
    };
    let done = post(json!({"runs": [{"job": "noop"}, {"job": "noop"}],
                           "then": [{"job": "noop", "on": "succeeded"}]}))
    .await;
    // One member waits in a queue nobody serves, so this batch stays in progress.
    let open = post(json!({"runs": [{"job": "noop"}, {"job": "noop", "queue": "nobody"}]})).await;
    let done_runs: Vec<String> = done["runs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(done["then"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for run in &done_runs {
        assert_eq!(r.wait_terminal(&t, run).await["state"], "succeeded");
    }
    let open_done = open["runs"][0].as_str().unwrap().to_string();
    assert_eq!(r.wait_terminal(&t, &open_done).await["state"], "succeeded");
    for run in done_runs.iter() {
        age(&r, run, "2 hours").await;
    }
    let open_done = age(&r, &open_done, "2 hours").await;

    let report = pass(&r, &short(1)).await;
    assert_eq!(report.runs, 3, "{report:?}");
    assert_eq!(report.batches, 1, "{report:?}");
    assert!(!report.skipped);
    let (status, _) = r
        .call(
            Method::GET,
            &format!("/v1/batches/{}", done["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The open batch keeps its ended member (its completion rule still counts it).
    assert!(exists(&r, &open_done).await);
    let (status, b) = r
        .call(
            Method::GET,
            &format!("/v1/batches/{}", open["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b["counts"]["succeeded"], 1, "{b:#}");
    r.shutdown().await;
}

#[tokio::test]
async fn expired_idempotency_keys_are_pruned() {
    let r = quiet_runner().await;
    r.tenant("acme").await;
    for (key, expires) in [
        ("old-1", "-1 hour"),
        ("old-2", "-1 second"),
        ("live", "1 hour"),
    ] {
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, run_id, expires_at)
             SELECT id, $1, '\\x00', gen_random_uuid(), now() + $2::interval FROM tenants",
        )
        .bind(key)
        .bind(expires)
        .execute(r.store.pool())
        .await
        .unwrap();
    }
    let report = pass(&r, &short(1)).await;
    assert_eq!(report.idempotency_keys, 2, "{report:?}");
    let left: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(r.store.pool())
        .await
        .unwrap();
    assert_eq!(left, ["live"]);
    r.shutdown().await;
}

#[tokio::test]
async fn only_one_runner_prunes_at_a_time() {
    let r = quiet_runner().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let run = terminal(&r, &t, "noop", json!({})).await;
    let run = age(&r, &run, "2 hours").await;

    // Someone else (another runner) holds the pruning lock: this pass skips.
    let mut other = r.store.pool().acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PRUNE_LOCK)
        .execute(&mut *other)
        .await
        .unwrap();
    let report = pass(&r, &short(100)).await;
    assert!(report.skipped, "{report:?}");
    assert_eq!(report.runs, 0);
    assert!(exists(&r, &run).await);

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PRUNE_LOCK)
        .execute(&mut *other)
        .await
        .unwrap();
    let report = pass(&r, &short(100)).await;
    assert_eq!(report.runs, 1, "{report:?}");
    assert!(!exists(&r, &run).await);
    r.shutdown().await;
}

#[tokio::test]
async fn old_schedule_fire_records_are_pruned_but_never_a_live_one() {
    let r = quiet_runner().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    // Three schedules written directly: active with history, active with one old fire, paused.
    let schedule = |name: &'static str, next: Option<&'static str>| {
        let r = &r;
        async move {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO schedules (tenant_id, name, job_id, cron, timezone, paused,
                                        next_fire_at)
                 SELECT j.tenant_id, $1, j.id, '0 * * * *', 'UTC', $2::interval IS NULL,
                        now() + $2::interval
                 FROM jobs j WHERE j.name = 'noop'
                 RETURNING id",
            )
            .bind(name)
            .bind(next)
            .fetch_one(r.store.pool())
            .await
            .unwrap();
            id
        }
    };
    let active = schedule("active", Some("1 hour")).await;
    let lonely = schedule("lonely", Some("1 hour")).await;
    let paused = schedule("paused", None).await;
    for (schedule, ago) in [
        (active, "5 hours"),
        (active, "4 hours"),
        (active, "3 hours"),
        (active, "10 minutes"),
        (lonely, "5 hours"),
        (paused, "5 hours"),
        (paused, "4 hours"),
    ] {
        sqlx::query(
            "INSERT INTO schedule_fires (schedule_id, fire_at, skipped, recorded_at)
             VALUES ($1, now() - $2::interval, 'test', now() - $2::interval)",
        )
        .bind(schedule)
        .bind(ago)
        .execute(r.store.pool())
        .await
        .unwrap();
    }
    let report = pass(&r, &short(2)).await;
    assert_eq!(report.schedule_fires, 3, "{report:?}");
    let left: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT schedule_id, count(*) FROM schedule_fires GROUP BY schedule_id ORDER BY 1",
    )
    .fetch_all(r.store.pool())
    .await
    .unwrap();
    assert_eq!(left, [(active, 1), (lonely, 1), (paused, 2)]);
    r.shutdown().await;
}

/// Versions that are not current and that no run references are pruned after their
/// retention, with the bytes no other version uses; referenced and current ones are kept.
#[tokio::test]
async fn unused_old_job_versions_are_pruned() {
    let r = quiet_runner().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "a", "hello").await; // a v1
    let run = terminal(&r, &t, "a", json!({"input": {"name": "x"}})).await;
    r.upload(&t, "a", "noop").await; // a v2, current; v1 referenced by the run
    r.upload(&t, "b", "noop").await; // b v1 shares noop's bytes
    r.upload(&t, "b", "panic").await; // b v2, current; b v1 unreferenced
    sqlx::query("UPDATE job_versions SET created_at = now() - interval '2 hours'")
        .execute(r.store.pool())
        .await
        .unwrap();
    let report = pass(&r, &short(10)).await;
    assert_eq!(report.job_versions, 1, "only b v1: {report:?}");
    let versions: Vec<(String, i32)> = sqlx::query_as(
        "SELECT j.name, v.version FROM job_versions v JOIN jobs j ON j.id = v.job_id
         ORDER BY 1, 2",
    )
    .fetch_all(r.store.pool())
    .await
    .unwrap();
    assert_eq!(
        versions,
        vec![("a".into(), 1), ("a".into(), 2), ("b".into(), 2)]
    );
    // noop's bytes are still a v2's: kept; three components remain (hello, noop, panic).
    assert_eq!(r.count("SELECT count(*) FROM components").await, 3);
    // Once the run is gone, a v1 goes too, with hello's bytes.
    sqlx::query("DELETE FROM runs WHERE id = $1::uuid")
        .bind(&run)
        .execute(r.store.pool())
        .await
        .unwrap();
    let report = pass(&r, &short(10)).await;
    assert_eq!(report.job_versions, 1, "{report:?}");
    assert_eq!(r.count("SELECT count(*) FROM components").await, 2);
    r.shutdown().await;
}

/// The rollup `run_stats`: 10-second rows go after the fine retention, hourly and daily rows
/// after the long one, and a pass deletes nothing newer.
#[tokio::test]
async fn old_statistics_are_pruned_by_width() {
    let r = quiet_runner().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    for (width, ago) in [
        (10, "3 hours"),
        (10, "2 hours"),
        (10, "10 minutes"),
        (3600, "3 hours"),
        (3600, "3 days"),
        (86400, "1 day"),
        (86400, "4 days"),
    ] {
        sqlx::query(
            "INSERT INTO run_stats (width_s, bucket, tenant_id, job_id, runner_id, outcome,
                                    attempts, runs_ended, fuel_used, duration_ms,
                                    peak_memory_max)
             SELECT $1, now() - $2::interval, j.tenant_id, j.id, gen_random_uuid(), 'ok',
                    1, 1, 1, 1, 1
             FROM jobs j WHERE j.name = 'noop'",
        )
        .bind(width)
        .bind(ago)
        .execute(r.store.pool())
        .await
        .unwrap();
    }
    // Batches of 2: the drain goes on until a batch comes back short.
    let report = pass(&r, &short(2)).await;
    assert_eq!(report.stats_rows, 4, "{report:?}");
    let left: Vec<(i32, i64)> =
        sqlx::query_as("SELECT width_s, count(*) FROM run_stats GROUP BY 1 ORDER BY 1")
            .fetch_all(r.store.pool())
            .await
            .unwrap();
    assert_eq!(left, [(10, 1), (3600, 1), (86400, 1)]);
    assert_eq!(pass(&r, &short(2)).await.stats_rows, 0);
    r.shutdown().await;
}
