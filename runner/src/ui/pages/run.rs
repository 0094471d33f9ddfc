//! `/ui/runs/{id}`: one run — its options, input and output (escaped), progress, every attempt's
//! measurements against the run's limits with what to change after its outcome, the state
//! history with who acted, its relations, the logs of one attempt (level filter, the last 200
//! lines, "load earlier", a live tail while the run has not ended) and the actions.
//!
//! Another tenant's run answers exactly like a run that does not exist (404).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use uuid::Uuid;

use super::Layout;
use super::logs::{LineView, Tail};
use crate::api::AppState;
use crate::model::{Level, RunState};
use crate::store::{RunDetail, UiLogParams};
use crate::ui::error::{UiError, UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

/// Log lines shown at first, and per "load earlier".
pub const LOG_PAGE: i64 = 200;

pub struct AttemptView {
    pub number: i32,
    pub runner: String,
    pub started: String,
    pub started_dt: String,
    pub duration: String,
    pub duration_pct: i64,
    pub fuel: String,
    pub fuel_pct: i64,
    pub memory: String,
    pub memory_pct: i64,
    pub outcome: Option<&'static str>,
    pub hint: &'static str,
    pub error: String,
    /// Outbound requests of the attempt, in words; empty if it made none.
    pub network: String,
}

pub struct EventView {
    pub at: String,
    pub at_dt: String,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
}

pub struct Relation {
    pub label: &'static str,
    pub value: String,
    pub href: Option<String>,
}

pub struct AttemptTab {
    pub label: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "ui/run.html")]
struct RunPage {
    layout: Layout,
    admin: bool,
    can_act: bool,
    tenant: String,
    id: String,
    job: String,
    version: i32,
    state: &'static str,
    options: Vec<(&'static str, String)>,
    input: String,
    output: Option<String>,
    error: Option<String>,
    progress: Option<i16>,
    progress_message: String,
    relations: Vec<Relation>,
    attempts: Vec<AttemptView>,
    history: Vec<EventView>,
    can_retry: bool,
    can_cancel: bool,
    can_delete: bool,
    cancel_requested: bool,
    attempt_tabs: Vec<AttemptTab>,
    log_attempt: String,
    levels: Vec<&'static str>,
    level: String,
    lines: Vec<LineView>,
    earlier: Option<String>,
    tail: Option<Tail>,
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    attempt: Option<String>,
    level: Option<String>,
    before: Option<String>,
}

pub fn parse_id(id: &str) -> UiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| UiError::not_found(format!("No run with id {id:?}.")))
}

pub fn no_run(id: Uuid) -> UiError {
    UiError::not_found(format!("No run with id {id}."))
}

/// The run's owning tenant as the viewer may see it: the session's tenant, or for the admin the
/// run's own; `None` when the viewer may not see the run (or it does not exist).
pub async fn tenant_of(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
) -> UiResult<Option<(i64, String)>> {
    match &viewer.tenant {
        Some(t) => Ok(Some((t.id, t.name.clone()))),
        None => Ok(state.store.ui_run_tenant(id).await?),
    }
}

/// The run, read through its tenant's scope.
pub async fn load(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
) -> UiResult<(RunDetail, i64, String)> {
    let Some((tenant_id, tenant)) = tenant_of(state, viewer, id).await? else {
        return Err(no_run(id));
    };
    let run = state
        .store
        .run_get(tenant_id, id)
        .await?
        .ok_or_else(|| no_run(id))?;
    Ok((run, tenant_id, tenant))
}

pub fn parse_level(level: &Option<String>) -> UiResult<Option<Level>> {
    match view::given(level).as_deref() {
        None | Some("all") => Ok(None),
        Some("trace") => Ok(Some(Level::Trace)),
        Some("debug") => Ok(Some(Level::Debug)),
        Some("info") => Ok(Some(Level::Info)),
        Some("warn") => Ok(Some(Level::Warn)),
        Some("error") => Ok(Some(Level::Error)),
        Some(other) => Err(UiError::bad_request(format!(
            "{other:?} is not a log level"
        ))),
    }
}

pub fn parse_number<T: std::str::FromStr>(v: &Option<String>, name: &str) -> UiResult<Option<T>> {
    view::given(v)
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| UiError::bad_request(format!("{name}: {s:?} is not a number")))
        })
        .transpose()
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> UiResult<Html<String>> {
    let id = parse_id(&id)?;
    let (detail, tenant_id, tenant) = load(&state, &viewer, id).await?;
    let run = &detail.run;
    let level = parse_level(&q.level)?;
    let before: Option<i64> = parse_number(&q.before, "before")?;
    let log_attempt: Option<i32> =
        parse_number(&q.attempt, "attempt")?.or((run.attempt > 0).then_some(run.attempt));
    let lines = state
        .store
        .ui_log_list(UiLogParams {
            tenant_id,
            run_id: id,
            attempt: log_attempt.filter(|a| *a > 0),
            min_level: level,
            before,
            after: None,
            limit: LOG_PAGE,
        })
        .await?;
    let level_s = level.map(|l| l.as_str().to_string()).unwrap_or_default();
    let attempt_s = log_attempt.map(|a| a.to_string()).unwrap_or_default();
    let here = format!("/ui/runs/{id}");
    let earlier = (lines.len() as i64 == LOG_PAGE)
        .then(|| lines.first().map(|l| l.id))
        .flatten()
        .map(|first| {
            format!(
                "{here}{}#logs",
                view::query(&[
                    ("attempt", Some(attempt_s.clone())),
                    ("level", Some(level_s.clone())),
                    ("before", Some(first.to_string())),
                ])
            )
        });
    // Live only on the newest lines of the attempt that runs now (or will run next).
    let live = !run.state.is_terminal()
        && before.is_none()
        && log_attempt.is_none_or(|a| a == 0 || a >= run.attempt);
    let tail = live.then(|| {
        Tail::new(
            id,
            log_attempt,
            level,
            lines.last().map(|l| l.id),
            state.settings.ui.log_poll,
        )
    });
    let attempts = detail
        .attempts
        .iter()
        .map(|a| {
            let duration = a.duration_ms.unwrap_or(0);
            let fuel = a.fuel_used.unwrap_or(0);
            let memory = a.peak_memory.unwrap_or(0);
            let memory_limit = run.memory_mb as i64 * 1024 * 1024;
            AttemptView {
                number: a.number,
                runner: format!("…{}", &a.runner_id.to_string()[24..]),
                started: view::time(a.started_at),
                started_dt: view::datetime(a.started_at),
                duration: match a.duration_ms {
                    Some(d) => format!(
                        "{} of {} ({} %)",
                        view::duration_ms(d),
                        view::duration_ms(run.timeout_ms),
                        view::percent(d, run.timeout_ms)
                    ),
                    None => "running".to_string(),
                },
                duration_pct: view::percent(duration, run.timeout_ms),
                fuel: if a.outcome.is_none() {
                    format!("running; budget {}", view::count(run.fuel))
                } else {
                    format!(
                        "{} of {} ({} %)",
                        view::count(fuel),
                        view::count(run.fuel),
                        view::percent(fuel, run.fuel)
                    )
                },
                fuel_pct: view::percent(fuel, run.fuel),
                memory: if a.outcome.is_none() {
                    format!("running; limit {} MiB", run.memory_mb)
                } else {
                    format!(
                        "{} of {} MiB ({} %)",
                        view::bytes(memory),
                        run.memory_mb,
                        view::percent(memory, memory_limit)
                    )
                },
                memory_pct: view::percent(memory, memory_limit),
                outcome: a.outcome.map(|o| o.as_str()),
                hint: a.outcome.map(view::outcome_hint).unwrap_or(""),
                error: a.error.clone().unwrap_or_default(),
                network: a.outbound.as_ref().map(network).unwrap_or_default(),
            }
        })
        .collect();
    let history = detail
        .history
        .iter()
        .map(|e| EventView {
            at: view::time(e.at),
            at_dt: view::datetime(e.at),
            from: e.from.map(|s| s.as_str()).unwrap_or("(new)"),
            to: e.to.as_str(),
            reason: e.reason.clone().unwrap_or_default(),
        })
        .collect();
    let mut relations = Vec::new();
    if let Some(parent) = run.after_run {
        relations.push(Relation {
            label: "Continues after run",
            value: format!(
                "{parent} (on {})",
                run.after_on.as_deref().unwrap_or("finished")
            ),
            href: Some(format!("/ui/runs/{parent}")),
        });
    }
    if let Some(batch) = run.after_batch {
        relations.push(Relation {
            label: "Continues after batch",
            value: batch.to_string(),
            href: Some(format!("/ui/batches/{batch}")),
        });
    }
    if let Some(batch) = run.batch_id {
        relations.push(Relation {
            label: "Batch",
            value: batch.to_string(),
            href: Some(format!("/ui/batches/{batch}")),
        });
    }
    if let Some(schedule) = &run.schedule {
        relations.push(Relation {
            label: "Schedule",
            value: match run.fire_at {
                Some(at) => format!("{schedule} (fired for {})", view::time(at)),
                None => schedule.clone(),
            },
            href: None,
        });
    }
    let mut options = vec![
        ("queue", run.queue.clone()),
        ("priority", run.priority.to_string()),
        (
            "attempt",
            format!("{} of {}", run.attempt, run.max_attempts),
        ),
        ("timeout", view::duration_ms(run.timeout_ms)),
        ("fuel", view::count(run.fuel)),
        ("memory", format!("{} MiB", run.memory_mb)),
        ("backoff base", view::duration_ms(run.backoff_base_ms)),
        ("created", view::time(run.created_at)),
        ("due", view::time(run.scheduled_at)),
    ];
    if let Some(at) = run.started_at {
        options.push(("started", view::time(at)));
    }
    if let Some(at) = run.finished_at {
        options.push(("finished", view::time(at)));
    }
    if run.snoozes > 0 {
        options.push(("snoozes", run.snoozes.to_string()));
    }
    let mut attempt_tabs: Vec<AttemptTab> = (1..=run.attempt)
        .rev()
        .map(|n| AttemptTab {
            label: format!("Attempt {n}"),
            href: format!(
                "{here}{}#logs",
                view::query(&[
                    ("attempt", Some(n.to_string())),
                    ("level", Some(level_s.clone()))
                ])
            ),
            current: log_attempt == Some(n),
        })
        .collect();
    attempt_tabs.push(AttemptTab {
        label: "All attempts".to_string(),
        href: format!(
            "{here}{}#logs",
            view::query(&[
                ("attempt", Some("0".into())),
                ("level", Some(level_s.clone()))
            ])
        ),
        current: log_attempt == Some(0),
    });
    render(&RunPage {
        layout: Layout::new(&viewer, "runs"),
        admin: viewer.is_admin(),
        can_act: viewer.can_act(),
        tenant,
        id: id.to_string(),
        job: run.job.clone(),
        version: run.version,
        state: run.state.as_str(),
        options,
        input: pretty(&run.input),
        output: run.output.as_ref().map(pretty),
        error: run.error.clone(),
        progress: run.progress,
        progress_message: run.progress_message.clone().unwrap_or_default(),
        relations,
        attempts,
        history,
        can_retry: matches!(run.state, RunState::Failed | RunState::Cancelled),
        can_cancel: !run.state.is_terminal() && run.cancel_requested_at.is_none(),
        can_delete: run.state.is_terminal(),
        cancel_requested: run.cancel_requested_at.is_some() && !run.state.is_terminal(),
        attempt_tabs,
        log_attempt: attempt_s,
        levels: vec!["trace", "debug", "info", "warn", "error"],
        level: level_s,
        lines: lines.iter().map(LineView::new).collect(),
        earlier,
        tail,
    })
}

/// `3 requests (1 denied), 5.0 KiB in, 120 B out` from an attempt's `outbound` record.
fn network(outbound: &serde_json::Value) -> String {
    let n = |k: &str| outbound[k].as_i64().unwrap_or(0);
    let requests = n("requests");
    let denied = match n("denied") {
        0 => String::new(),
        d => format!(" ({d} denied)"),
    };
    format!(
        "network: {requests} request{}{denied}, {} in, {} out",
        if requests == 1 { "" } else { "s" },
        view::bytes(n("bytes_in")),
        view::bytes(n("bytes_out"))
    )
}
