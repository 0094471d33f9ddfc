//! Recurring runs: schedules through the HTTP API against a real PostgreSQL and real runners —
//! cron with seconds, validation, idempotent PUT, per-tenant names, misfire and overlap
//! policies, fire times fired once with several firing services on one database, trigger,
//! pause/resume and delete. The DST rules are unit-tested in `runner/src/schedule.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, Timelike, Utc};
use reqwest::{Method, StatusCode};
use sandfire::schedule::Timetable;
use sandfire::store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{Body, TestRunner, TestTenant, wait_until};

async fn put(r: &TestRunner, t: &TestTenant, name: &str, body: Value) -> (StatusCode, Value) {
    r.call(
        Method::PUT,
        &format!("/v1/schedules/{name}"),
        Some(&t.key),
        Some(Body::Json(body)),
    )
    .await
}

async fn put_ok(r: &TestRunner, t: &TestTenant, name: &str, body: Value) -> Value {
    let (status, schedule) = put(r, t, name, body).await;
    assert!(status.is_success(), "PUT {name}: {status} {schedule}");
    schedule
}

async fn get(r: &TestRunner, t: &TestTenant, name: &str) -> (StatusCode, Value) {
    r.call(
        Method::GET,
        &format!("/v1/schedules/{name}"),
        Some(&t.key),
        None,
    )
    .await
}

async fn post(r: &TestRunner, t: &TestTenant, path: &str) -> (StatusCode, Value) {
    r.call(Method::POST, path, Some(&t.key), None).await
}

/// Runs of the named schedule (any tenant): (fire time, state), by fire time.
async fn fired(r: &TestRunner, name: &str) -> Vec<(Option<DateTime<Utc>>, String)> {
    sqlx::query_as(
        "SELECT r.fire_at, r.state::text FROM runs r JOIN schedules s ON s.id = r.schedule_id
         WHERE s.name = $1 ORDER BY r.fire_at NULLS LAST, r.id",
    )
    .bind(name)
    .fetch_all(r.store.pool())
    .await
    .expect("reading fired runs")
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn cron_with_seconds_fires_every_second() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let (status, schedule) = put(
        &r,
        &t,
        "every-second",
        json!({"job": "hello", "cron": "* * * * * *", "input": {"name": "cron"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let next: Vec<_> = schedule["next_fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| time(&t["utc"]))
        .collect();
    assert_eq!(next.len(), 5, "{schedule}");
    for pair in next.windows(2) {
        assert_eq!(pair[1] - pair[0], Span::seconds(1));
    }

    let runs = wait_until("three fires", Duration::from_secs(15), || async {
        let runs = fired(&r, "every-second").await;
        (runs.len() >= 3).then_some(runs)
    })
    .await;
    // Whole seconds, each fired once. (Normally consecutive; a test machine slower than the
    // 1 s grace could make fire_once coalesce two, so gaps are checked under fire_all below.)
    let times: Vec<_> = runs.iter().map(|(f, _)| f.expect("a fire time")).collect();
    for pair in times.windows(2) {
        assert!(pair[1] > pair[0], "{times:?}");
    }
    assert!(times.iter().all(|t| t.nanosecond() == 0), "{times:?}");

    // The run is an ordinary run: it executes, and says where it came from.
    let (_, schedule) = get(&r, &t, "every-second").await;
    let first = schedule["last_runs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(time(&first["scheduled_at"]), time(&first["fire_at"]));
    let run = r.wait_terminal(&t, first["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert!(run["output"].to_string().contains("Hello, cron"), "{run:#}");
    let reason = run["history"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("fired by schedule every-second for 20"),
        "{reason}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn bad_fields_are_rejected_naming_the_field_and_nothing_is_created() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let ok = json!({"job": "hello", "cron": "0 3 * * *"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let cases = [
        (
            with("cron", json!("0 25 * * *")),
            "invalid_cron",
            "cron: field 2 (hour) '25': value 25 is out of range 0-23",
        ),
        (
            with("cron", json!("* * *")),
            "invalid_cron",
            "cron: 3 fields",
        ),
        (
            with("cron", json!("@fortnightly")),
            "invalid_cron",
            "cron: '@fortnightly' is not a known macro",
        ),
        (
            with("cron", json!("0 0 30 2 *")),
            "invalid_cron",
            "never fires",
        ),
        (
            with("timezone", json!("Mars/Olympus")),
            "invalid_timezone",
            "timezone: 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            with("job", json!("nope")),
            "unknown_job",
            "job: no job named \"nope\"",
        ),
        (
            with("misfire", json!("sometimes")),
            "invalid_misfire",
            "misfire: \"sometimes\" is not a policy",
        ),
        (
            with("misfire", json!({"policy": "skip", "max": 3})),
            "invalid_misfire",
            "misfire: \"max\" bounds \"fire_all\" only",
        ),
        (
            with("overlap", json!("never")),
            "invalid_overlap",
            "overlap: \"never\" is not a policy",
        ),
        (
            with("max_attempts", json!(0)),
            "invalid_option",
            "max_attempts:",
        ),
        (
            with("queue", json!("Bad Queue")),
            "invalid_option",
            "queue:",
        ),
    ];
    for (body, code, says) in cases {
        let (status, error) = put(&r, &t, "nightly", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // A bad hour in a six-field expression is field 3.
    let (_, error) = put(&r, &t, "nightly", with("cron", json!("0 0 24 * * *"))).await;
    assert_eq!(
        error["error"]["message"],
        "cron: field 3 (hour) '24': value 24 is out of range 0-23"
    );
    let (status, error) = put(&r, &t, "-nightly", ok.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["code"], "invalid_name");
    let (status, error) = put(&r, &t, "nightly", with("crom", json!("0 3 * * *"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("crom"));

    let (_, list) = r
        .call(Method::GET, "/v1/schedules", Some(&t.key), None)
        .await;
    assert_eq!(list["schedules"], json!([]));
    assert_eq!(r.count("SELECT count(*) FROM schedules").await, 0);
    r.shutdown().await;
}

#[tokio::test]
async fn put_is_idempotent_and_shows_local_fire_times() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    let body = json!({
        "job": "hello", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
        "input": {"name": "Ada"}, "misfire": {"policy": "fire_all", "max": 3},
        "overlap": "skip", "queue": "reports", "priority": 5
    });
    let (status, first) = put(&r, &t, "daily-report", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = put(&r, &t, "daily-report", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    for key in [
        "next_fire_at",
        "created_at",
        "updated_at",
        "misfire",
        "queue",
    ] {
        assert_eq!(first[key], again[key], "{key}");
    }
    assert_eq!(
        first["misfire"],
        json!({"policy": "fire_all", "max": 3, "grace_ms": 1000})
    );
    assert_eq!(first["overlap"], "skip");
    assert_eq!(first["priority"], 5);

    // The next five fire times: 02:30 Berlin time each day (03:30 on a spring-forward day).
    let times = first["next_fire_times"].as_array().unwrap();
    assert_eq!(times.len(), 5);
    for t in times {
        let local = t["local"].as_str().unwrap();
        assert!(
            local.contains("T02:30:00+0") || local.ends_with("T03:30:00+02:00"),
            "{local}"
        );
        assert_eq!(time(&t["utc"]), time(&t["local"]));
    }
    assert_eq!(time(&times[0]["utc"]), time(&first["next_fire_at"]));

    // Replacing keeps the pending fire time while the timetable is the same...
    let mut changed = body.clone();
    changed["input"] = json!({"name": "Grace"});
    let (status, replaced) = put(&r, &t, "daily-report", changed.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["input"], json!({"name": "Grace"}));
    assert_eq!(replaced["next_fire_at"], first["next_fire_at"]);
    assert_eq!(replaced["created_at"], first["created_at"]);
    // ...and a PUT replaces everything: absent fields take their defaults.
    changed["cron"] = json!("45 6 * * *");
    changed.as_object_mut().unwrap().remove("timezone");
    changed.as_object_mut().unwrap().remove("misfire");
    let replaced = put_ok(&r, &t, "daily-report", changed).await;
    assert_eq!(replaced["timezone"], "UTC");
    assert_eq!(replaced["misfire"]["policy"], "fire_once");
    let next = time(&replaced["next_fire_at"]);
    assert_eq!((next.hour(), next.minute()), (6, 45));
    assert_eq!(r.count("SELECT count(*) FROM schedules").await, 1);
    r.shutdown().await;
}

#[tokio::test]
async fn schedule_names_are_per_tenant() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    let globex = r.tenant("globex").await;
    for t in [&acme, &globex] {
        r.upload(t, "report", "hello").await;
    }
    put_ok(
        &r,
        &acme,
        "daily-report",
        json!({"job": "report", "cron": "0 6 * * *"}),
    )
    .await;
    put_ok(
        &r,
        &globex,
        "daily-report",
        json!({"job": "report", "cron": "0 7 * * *"}),
    )
    .await;
    let (_, a) = get(&r, &acme, "daily-report").await;
    let (_, g) = get(&r, &globex, "daily-report").await;
    assert_eq!(a["cron"], "0 6 * * *");
    assert_eq!(g["cron"], "0 7 * * *");
    for t in [&acme, &globex] {
        let (_, list) = r
            .call(Method::GET, "/v1/schedules", Some(&t.key), None)
            .await;
        assert_eq!(list["schedules"].as_array().unwrap().len(), 1, "{list}");
    }
    // A job of another tenant cannot be scheduled.
    r.upload(&globex, "secret", "hello").await;
    let (status, _) = put(&r, &acme, "x", json!({"job": "secret", "cron": "@daily"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, _) = r
        .call(
            Method::DELETE,
            "/v1/schedules/daily-report",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&r, &acme, "daily-report").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&r, &globex, "daily-report").await.0, StatusCode::OK);
    let (status, _) = post(&r, &acme, "/v1/schedules/daily-report/trigger").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.shutdown().await;
}

/// Downtime is simulated by moving a schedule's `next_fire_at` back to a fire time four days
/// ago: exactly the state a schedule is in when no runner was up to fire it since then.
#[tokio::test]
async fn misfire_policies_decide_after_downtime() {
    let r = TestRunner::start_with(|s| s.worker.enabled = false).await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    // A daily time about six hours ago, so no fire time is near the present.
    let at = Utc::now() - Span::hours(6);
    let cron = format!("{} {} * * *", at.minute(), at.hour());
    let timetable = Timetable::parse(&cron, "UTC").unwrap();
    let latest = timetable.latest(Utc::now() - Span::days(2), Utc::now(), 1)[0];
    let pending = latest - Span::days(4); // five fire times are due: pending ..= latest
    let policies = [
        ("skip", json!("skip")),
        ("once", json!("fire_once")),
        ("all3", json!({"policy": "fire_all", "max": 3})),
        ("all10", json!({"policy": "fire_all", "max": 10})),
    ];
    for (name, misfire) in &policies {
        put_ok(
            &r,
            &t,
            name,
            json!({"job": "hello", "cron": cron, "misfire": misfire}),
        )
        .await;
    }
    sqlx::query("UPDATE schedules SET next_fire_at = $1")
        .bind(pending)
        .execute(r.store.pool())
        .await
        .unwrap();
    wait_until(
        "every schedule caught up",
        Duration::from_secs(10),
        || async {
            (r.count("SELECT count(*) FROM schedules WHERE next_fire_at > now()")
                .await
                == 4)
                .then_some(())
        },
    )
    .await;

    let fire_times = |name: &'static str| {
        let r = &r;
        async move {
            fired(r, name)
                .await
                .into_iter()
                .map(|(f, state)| {
                    assert_eq!(state, "enqueued");
                    f.unwrap()
                })
                .collect::<Vec<_>>()
        }
    };
    let day = |n: i64| latest - Span::days(n);
    assert_eq!(fire_times("skip").await, Vec::<DateTime<Utc>>::new());
    assert_eq!(fire_times("once").await, [latest]);
    assert_eq!(fire_times("all3").await, [day(2), day(1), latest]);
    assert_eq!(
        fire_times("all10").await,
        [day(4), day(3), day(2), day(1), latest]
    );
    // The schedules continue with their next fire time after now.
    let (_, skip) = get(&r, &t, "skip").await;
    assert_eq!(time(&skip["next_fire_at"]), latest + Span::days(1));
    r.shutdown().await;
}

#[tokio::test]
async fn overlap_skip_fires_nothing_while_the_previous_run_is_active() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "sleep", "sleep").await;
    let long = json!({"timeout_ms": 60_000, "max_attempts": 1});
    let mut body = json!({"job": "sleep", "cron": "* * * * * *", "overlap": "skip"});
    body.as_object_mut()
        .unwrap()
        .extend(long.as_object().unwrap().clone());
    put_ok(&r, &t, "single", body.clone()).await;
    body["overlap"] = json!("allow");
    put_ok(&r, &t, "many", body).await;

    let skipped = wait_until(
        "two fire times skipped",
        Duration::from_secs(15),
        || async {
            let (_, s) = get(&r, &t, "single").await;
            let skipped = s["skipped_fires"].as_array().unwrap().clone();
            (skipped.len() >= 2).then_some(skipped)
        },
    )
    .await;
    for s in &skipped {
        let reason = s["reason"].as_str().unwrap();
        assert!(reason.starts_with("overlap: run "), "{reason}");
        assert!(reason.contains("is still"), "{reason}");
    }
    let runs = fired(&r, "single").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        matches!(runs[0].1.as_str(), "enqueued" | "running"),
        "{runs:?}"
    );
    // A manual trigger honours the overlap policy too.
    let (status, error) = post(&r, &t, "/v1/schedules/single/trigger").await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overlap")
    );

    // Under `allow`, runs of one schedule run side by side.
    wait_until(
        "two runs of 'many' at once",
        Duration::from_secs(15),
        || async {
            let runs = fired(&r, "many").await;
            (runs.iter().filter(|(_, s)| s == "running").count() >= 2).then_some(())
        },
    )
    .await;
    for name in ["single", "many"] {
        post(&r, &t, &format!("/v1/schedules/{name}/pause")).await;
    }
    r.shutdown().await;
}

/// Two runners on one database, plus a second cron service running beside the leader's (as if
/// two leaders overlapped), then every fired fire time made due again: each fire time still
/// has exactly one run, and none is missing.
#[tokio::test]
async fn fire_times_fire_once_with_several_firing_services() {
    let a = TestRunner::start().await;
    let b = a.second_runner(|_| {}).await;
    let stop = CancellationToken::new();
    let rogue = tokio::spawn(sandfire::maintenance::cron::run(
        b.store.clone() as Arc<dyn Store>,
        sandfire::config::RunLimits::default(),
        Duration::from_millis(200),
        Arc::new(sandfire::metrics::Metrics::new(false, 0)),
        stop.clone(),
    ));
    let t = a.tenant("acme").await;
    a.upload(&t, "noop", "noop").await;
    put_ok(
        &a,
        &t,
        "tick",
        json!({"job": "noop", "cron": "* * * * * *", "misfire": {"policy": "fire_all", "max": 100}}),
    )
    .await;
    wait_until("four fires", Duration::from_secs(15), || async {
        (fired(&a, "tick").await.len() >= 4).then_some(())
    })
    .await;
    // As if the schedule's progress were lost: everything fired so far is due again.
    sqlx::query(
        "UPDATE schedules s SET next_fire_at = (SELECT min(fire_at) FROM runs r
                                                WHERE r.schedule_id = s.id)",
    )
    .execute(a.store.pool())
    .await
    .unwrap();
    wait_until("caught up again", Duration::from_secs(10), || async {
        (a.count("SELECT count(*) FROM schedules WHERE next_fire_at > now()")
            .await
            == 1)
            .then_some(())
    })
    .await;
    stop.cancel();
    rogue.await.unwrap();
    b.shutdown().await;
    post(&a, &t, "/v1/schedules/tick/pause").await;

    let times: Vec<_> = fired(&a, "tick")
        .await
        .into_iter()
        .map(|(f, _)| f.unwrap())
        .collect();
    let mut unique = times.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        times.len(),
        "a fire time fired twice: {times:?}"
    );
    let span = (*times.last().unwrap() - times[0]).num_seconds();
    assert_eq!(
        span + 1,
        times.len() as i64,
        "a fire time is missing: {times:?}"
    );
    assert_eq!(
        a.count("SELECT count(*) FROM schedule_fires WHERE run_id IS NOT NULL")
            .await,
        times.len() as i64
    );
    a.shutdown().await;
}

#[tokio::test]
async fn trigger_runs_now_even_while_paused() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    put_ok(
        &r,
        &t,
        "yearly",
        json!({"job": "hello", "cron": "@yearly", "input": {"name": "now"}, "paused": true}),
    )
    .await;
    let (status, run) = post(&r, &t, "/v1/schedules/yearly/trigger").await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["job"], "hello");
    let run = r.wait_terminal(&t, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert!(run["output"].to_string().contains("Hello, now"));
    let (_, schedule) = get(&r, &t, "yearly").await;
    let last = &schedule["last_runs"][0];
    assert_eq!(last["id"], run["id"]);
    assert_eq!(last["fire_at"], Value::Null);
    assert_eq!(last["state"], "succeeded");
    assert_eq!(
        post(&r, &t, "/v1/schedules/nope/trigger").await.0,
        StatusCode::NOT_FOUND
    );
    r.shutdown().await;
}

#[tokio::test]
async fn paused_schedules_do_not_fire_and_resume_from_now() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    let body = json!({"job": "noop", "cron": "* * * * * *", "paused": true});
    let created = put_ok(&r, &t, "tick", body).await;
    assert_eq!(created["paused"], true);
    assert_eq!(created["next_fire_at"], Value::Null);
    assert_eq!(created["next_fire_times"], json!([]));

    let (status, resumed) = post(&r, &t, "/v1/schedules/tick/resume").await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["paused"], false);
    assert!(time(&resumed["next_fire_at"]) > time(&resumed["updated_at"]));
    wait_until("a fire after resume", Duration::from_secs(10), || async {
        (!fired(&r, "tick").await.is_empty()).then_some(())
    })
    .await;

    let (_, paused) = post(&r, &t, "/v1/schedules/tick/pause").await;
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["next_fire_at"], Value::Null);
    let paused_at = time(&paused["updated_at"]);
    let before = fired(&r, "tick").await.len();
    // A negative check needs a little time: a paused every-second schedule stays silent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fired(&r, "tick").await.len(), before);
    // Pause and resume are idempotent: repeating changes nothing.
    let (_, again) = post(&r, &t, "/v1/schedules/tick/pause").await;
    assert_eq!(again["updated_at"], paused["updated_at"]);
    let (_, first) = post(&r, &t, "/v1/schedules/tick/resume").await;
    let (_, second) = post(&r, &t, "/v1/schedules/tick/resume").await;
    assert_eq!(first["updated_at"], second["updated_at"]);
    assert_eq!(first["next_fire_at"], second["next_fire_at"]);
    let resumed_at = time(&first["updated_at"]);
    wait_until(
        "a fire after the second resume",
        Duration::from_secs(10),
        || async { (fired(&r, "tick").await.len() > before).then_some(()) },
    )
    .await;
    post(&r, &t, "/v1/schedules/tick/pause").await;
    // Fire times that passed while paused were not fired.
    let runs = fired(&r, "tick").await;
    assert!(
        runs.iter()
            .all(|(f, _)| f.unwrap() <= paused_at || f.unwrap() > resumed_at),
        "paused {paused_at}..{resumed_at}: {runs:?}"
    );
    assert_eq!(
        post(&r, &t, "/v1/schedules/nope/pause").await.0,
        StatusCode::NOT_FOUND
    );
    r.shutdown().await;
}

#[tokio::test]
async fn delete_removes_the_schedule_and_keeps_its_runs() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "noop", "noop").await;
    put_ok(
        &r,
        &t,
        "tick",
        json!({"job": "noop", "cron": "* * * * * *"}),
    )
    .await;
    let (_, schedule) = wait_until("a fire", Duration::from_secs(10), || async {
        let (status, s) = get(&r, &t, "tick").await;
        (!s["last_runs"].as_array().unwrap().is_empty()).then_some((status, s))
    })
    .await;
    let run_id = schedule["last_runs"][0]["id"].as_str().unwrap().to_string();
    let path = "/v1/schedules/tick";
    let (status, _) = r.call(Method::DELETE, path, Some(&t.key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get(&r, &t, "tick").await.0, StatusCode::NOT_FOUND);
    let (status, _) = r.call(Method::DELETE, path, Some(&t.key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    r.wait_terminal(&t, &run_id).await;
    assert_eq!(r.count("SELECT count(*) FROM schedule_fires").await, 0);
    assert_eq!(
        r.count("SELECT count(*) FROM runs WHERE schedule_id IS NOT NULL")
            .await,
        0
    );
    r.shutdown().await;
}
