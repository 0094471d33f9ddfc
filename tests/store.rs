//! The database's own guarantees, checked directly: the run state machine is enforced by
//! PostgreSQL, every change is recorded, and only the lease holder can complete an attempt.

use std::sync::Arc;

use sandfire::config::RunLimits;
use sandfire::model::{Outcome, RunState};
use sandfire::runner::connect;
use sandfire::store::{
    AttemptRecord, ClaimedRun, Completion, JobUploadParams, RunClaimParams, RunInsertParams, Store,
    TenancyStore,
};
use serde_json::json;
use uuid::Uuid;

use crate::support::{example, fresh_database};

async fn store_with_run() -> (Arc<sandfire::store::PgStore>, Uuid) {
    let store = Arc::new(connect(&fresh_database().await, 4).await.unwrap());
    store.migrate().await.unwrap();
    let tenant = store
        .tenant_create(
            "acme",
            sandfire::auth::generate_key().stored_as("acme", sandfire::store::KeyRole::Full),
        )
        .await
        .unwrap();
    let bytes = example("noop");
    let job = store
        .job_upload(JobUploadParams {
            tenant_id: tenant.id,
            name: "noop".into(),
            digest: "0".repeat(64),
            bytes,
            defaults: None,
            max_jobs: None,
            max_versions: None,
        })
        .await
        .unwrap()
        .job;
    let id = enqueue(&store, tenant.id, job.id, job.version).await;
    (store, id)
}

/// Enqueues a run of the job's version for the tenant, with the default options.
async fn enqueue(
    store: &sandfire::store::PgStore,
    tenant_id: i64,
    job_id: i64,
    version: i32,
) -> Uuid {
    let id = Uuid::now_v7();
    store
        .run_insert(RunInsertParams {
            id,
            tenant_id,
            job_id,
            version,
            options: RunLimits::default().default,
            input: json!(null),
            reason: "test".into(),
            due: None,
            after: None,
            job_row_version: None,
        })
        .await
        .unwrap();
    id
}

fn completion(run: &ClaimedRun, lease_token: Uuid) -> Completion {
    let run = ClaimedRun {
        lease_token,
        ..run.clone()
    };
    let record = AttemptRecord {
        outcome: Outcome::Ok,
        error: None,
        fuel_used: 1,
        peak_memory: 1,
        duration_ms: 1,
        outbound: None,
        started_at: chrono::Utc::now(),
        ended_at: chrono::Utc::now(),
    };
    Completion::succeeded(&run, record, json!({"ok": true}))
}

fn claim(runner_id: Uuid) -> RunClaimParams {
    RunClaimParams {
        runner_id,
        queue: "default".into(),
        limit: 10,
        lease_ms: 30_000,
        exclude_tenants: Vec::new(),
        after_tenant: 0,
        default_max_running: None,
    }
}

#[tokio::test]
async fn the_database_rejects_illegal_transitions() {
    let (store, id) = store_with_run().await;
    // enqueued -> succeeded skips running: refused by the trigger.
    let err = sqlx::query("UPDATE runs SET state = 'succeeded', finished_at = now() WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot move from enqueued to succeeded"),
        "{err}"
    );
    // running without a lease: refused by a check constraint.
    let err = sqlx::query("UPDATE runs SET state = 'running', attempt = 1 WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lease_iff_running"), "{err}");
    // Single-column rules are the columns' domains (migration 0016): each refuses its value
    // and the row keeps its old one.
    for (sql, domain) in [
        ("UPDATE runs SET progress = 101 WHERE id = $1", "percent"),
        ("UPDATE runs SET fuel = 0 WHERE id = $1", "positive_bigint"),
        (
            "UPDATE runs SET memory_mb = 0 WHERE id = $1",
            "positive_int",
        ),
        (
            "UPDATE runs SET attempt = -1 WHERE id = $1",
            "nonnegative_int",
        ),
        (
            "UPDATE runs SET backoff_base_ms = -1 WHERE id = $1",
            "nonnegative_bigint",
        ),
        (
            "UPDATE runs SET after_on = 'sometimes' WHERE id = $1",
            "continuation_condition",
        ),
    ] {
        let err = sqlx::query(sql)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(domain), "{sql}: {err}");
    }
    let (progress, fuel): (Option<i16>, i64) =
        sqlx::query_as("SELECT progress, fuel FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(progress, None);
    assert!(fuel > 0);
    // A run cannot be born running.
    let err = sqlx::query("UPDATE runs SET state = 'enqueued' WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await;
    assert!(err.is_ok(), "a no-op state write is allowed");
}

#[tokio::test]
async fn only_the_lease_holder_completes_and_every_change_is_recorded() {
    let (store, id) = store_with_run().await;
    let runner = Uuid::now_v7();
    let claimed = store.run_claim(claim(runner)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
    // A second claim finds nothing: the run is held.
    let again = store.run_claim(claim(Uuid::now_v7())).await.unwrap();
    assert!(again.is_empty());

    let accepted = store
        .run_complete_many(&[completion(&claimed[0], Uuid::new_v4())], &[])
        .await
        .unwrap();
    assert!(
        accepted.is_empty(),
        "a stranger's lease token completed the run"
    );
    let accepted = store
        .run_complete_many(&[completion(&claimed[0], claimed[0].lease_token)], &[])
        .await
        .unwrap();
    assert_eq!(accepted, [id]);
    // The same completion twice changes nothing the second time.
    let accepted = store
        .run_complete_many(&[completion(&claimed[0], claimed[0].lease_token)], &[])
        .await
        .unwrap();
    assert!(accepted.is_empty());

    let tenant_id: i64 = sqlx::query_scalar("SELECT tenant_id FROM runs WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let detail = store.run_get(tenant_id, id).await.unwrap().unwrap();
    assert_eq!(detail.run.state, RunState::Succeeded);
    let path: Vec<_> = detail.history.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        path,
        [
            (None, RunState::Enqueued),
            (Some(RunState::Enqueued), RunState::Running),
            (Some(RunState::Running), RunState::Succeeded),
        ]
    );
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].outcome, Some(Outcome::Ok));
    assert_eq!(detail.attempts[0].runner_id, runner);
}

#[tokio::test]
async fn a_runner_fault_refunds_the_attempt_and_is_counted() {
    let (store, id) = store_with_run().await;
    let claimed = store.run_claim(claim(Uuid::now_v7())).await.unwrap();
    assert_eq!(claimed[0].runner_faults, 0);
    let record = AttemptRecord {
        outcome: Outcome::Error,
        error: Some("runner could not instantiate the job".into()),
        fuel_used: 0,
        peak_memory: 0,
        duration_ms: 0,
        outbound: None,
        started_at: chrono::Utc::now(),
        ended_at: chrono::Utc::now(),
    };
    let fault = Completion::runner_fault(&claimed[0], record, 0, "pool full".into());
    let accepted = store.run_complete_many(&[fault], &[]).await.unwrap();
    assert_eq!(accepted, [id]);
    let (faults, max_attempts): (i32, i32) =
        sqlx::query_as("SELECT runner_faults, max_attempts FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(faults, 1);
    assert_eq!(max_attempts, claimed[0].max_attempts + 1);
}

/// A sibling pool carries its own session settings: the dashboard's (statement timeout, custom
/// plans, no JIT), the claims' (commits that do not wait for the disk), the group commit's (one
/// generic plan), and none for a plain one.
#[tokio::test]
async fn sibling_pools_carry_their_session_settings() {
    use sandfire::store::{PoolOptions, Store};
    let store = connect(&fresh_database().await, 2).await.unwrap();
    let show = |s: Arc<dyn Store>| async move {
        let pool = s.pg_pool().expect("a PostgreSQL pool");
        let mut values = Vec::new();
        for name in [
            "statement_timeout",
            "plan_cache_mode",
            "jit",
            "synchronous_commit",
        ] {
            let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {name}")))
                .fetch_one(&pool)
                .await
                .unwrap();
            values.push(v);
        }
        values
    };
    // The cluster's own setting (`make test` turns durability off server-wide).
    let server_sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let dashboard = store
        .sibling(PoolOptions {
            statement_timeout: Some(std::time::Duration::from_millis(1500)),
            plans: sandfire::store::PlanCache::Custom,
            ..PoolOptions::new(1)
        })
        .unwrap();
    assert_eq!(
        show(dashboard).await,
        ["1500ms", "force_custom_plan", "off", server_sync.as_str()]
    );
    let claims = store
        .sibling(PoolOptions {
            synchronous_commit: false,
            ..PoolOptions::new(1)
        })
        .unwrap();
    assert_eq!(show(claims).await[3], "off");
    let enqueue = store
        .sibling(PoolOptions {
            plans: sandfire::store::PlanCache::Generic,
            ..PoolOptions::new(1)
        })
        .unwrap();
    assert_eq!(show(enqueue).await[1], "force_generic_plan");
    let plain = store.sibling(PoolOptions::new(1)).unwrap();
    assert_eq!(show(plain).await, ["0", "auto", "on", server_sync.as_str()]);
}

/// A tenant's active runs are its waiting runs plus its running ones, which live in two
/// different indexes of `run_queue` (migration 0017): every count of them (the quota, the
/// usage figures, the queue lists of the API and the dashboard) must read both, and only the
/// tenant's own.
#[tokio::test]
async fn a_tenants_active_runs_count_its_waiting_and_running_runs() {
    use sandfire::store::UiStore;

    let (store, first) = store_with_run().await;
    let (tenant_id, job_id, version): (i64, i64, i32) =
        sqlx::query_as("SELECT tenant_id, job_id, version FROM runs WHERE id = $1")
            .bind(first)
            .fetch_one(store.pool())
            .await
            .unwrap();
    enqueue(&store, tenant_id, job_id, version).await;
    enqueue(&store, tenant_id, job_id, version).await;
    // Another tenant's waiting run is never counted for acme.
    let other = store
        .tenant_create(
            "other",
            sandfire::auth::generate_key().stored_as("other", sandfire::store::KeyRole::Full),
        )
        .await
        .unwrap();
    enqueue(&store, other.id, job_id, version).await;
    let claimed = store
        .run_claim(RunClaimParams {
            limit: 1,
            ..claim(Uuid::now_v7())
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let running_tenant = claimed[0].tenant_id;
    let (waiting, running) = if running_tenant == tenant_id {
        (2, 1)
    } else {
        (3, 0)
    };

    assert_eq!(store.tenant_active_runs(tenant_id, 100).await.unwrap(), 3);
    // Capped: at most `cap` entries are read, whichever index they are in.
    assert_eq!(store.tenant_active_runs(tenant_id, 2).await.unwrap(), 2);
    let usage = store.tenant_usage(tenant_id).await.unwrap();
    assert_eq!((usage.active_runs, usage.running), (3, running));

    let queues = store.queue_list(tenant_id).await.unwrap();
    assert_eq!(queues.len(), 1);
    let counts = &queues[0].counts;
    assert_eq!(counts.get("enqueued").copied().unwrap_or(0), waiting);
    assert_eq!(counts.get("running").copied().unwrap_or(0), running);

    let by_state = |rows: Vec<(RunState, i64)>, state: RunState| {
        rows.into_iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| n)
    };
    let mine = store.ui_active_counts(Some(tenant_id)).await.unwrap();
    assert_eq!(by_state(mine.clone(), RunState::Enqueued), waiting);
    assert_eq!(by_state(mine, RunState::Running), running);
    let all = store.ui_active_counts(None).await.unwrap();
    assert_eq!(
        by_state(all.clone(), RunState::Enqueued) + by_state(all, RunState::Running),
        4
    );

    let rows = store.ui_queue_list(Some(tenant_id), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].enqueued, rows[0].running), (waiting, running));
    let rows = store.ui_queue_list(None, 10).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.enqueued + r.running).sum::<i64>(), 4);
}
