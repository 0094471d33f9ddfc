//! `/ui/runners`: the live runners sharing this database: queues, slots in use, heartbeat age
//! and the attempts they hold now. What a tenant sees matches `GET /v1/runners` with a tenant
//! key: runner ids, queues, slots, heartbeat and its own attempts only, never the operator's
//! hosts, versions, start times or which runner leads; the admin sees all of it.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use super::Layout;
use crate::api::AppState;
use crate::ui::error::{UiResult, render};
use crate::ui::session::Viewer;
use crate::ui::view;

pub struct RunnerRow {
    pub id: String,
    pub short_id: String,
    pub host: String,
    pub version: String,
    pub started: String,
    pub leader: bool,
    pub queues: String,
    pub slots: String,
    pub heartbeat: String,
}

pub struct AttemptRow {
    pub runner: String,
    pub href: String,
    pub run: String,
    pub job: String,
    pub attempt: i32,
    pub running_for: String,
    pub lease: String,
}

#[derive(Template)]
#[template(path = "ui/runners.html")]
struct RunnersPage {
    layout: Layout,
    admin: bool,
    runners: Vec<RunnerRow>,
    attempts: Vec<AttemptRow>,
}

fn short(id: &uuid::Uuid) -> String {
    format!("…{}", &id.to_string()[24..])
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> UiResult<Html<String>> {
    let admin = viewer.is_admin();
    let now = state.store.clock().await?;
    let list = state.store.runner_list(viewer.scope()).await?;
    let ago = |t: chrono::DateTime<chrono::Utc>| {
        format!(
            "{} ago",
            view::duration_ms((now - t).num_milliseconds().max(0))
        )
    };
    let mut attempts = Vec::new();
    let runners = list
        .iter()
        .map(|r| {
            for a in &r.in_flight {
                attempts.push(AttemptRow {
                    runner: short(&r.id),
                    href: format!("/ui/runs/{}", a.run_id),
                    run: short(&a.run_id),
                    job: a.job.clone(),
                    attempt: a.attempt,
                    running_for: a.started_at.map_or(String::new(), |t| {
                        view::duration_ms((now - t).num_milliseconds().max(0))
                    }),
                    lease: a.lease_expires_at.map_or(String::new(), |t| {
                        format!(
                            "in {}",
                            view::duration_ms((t - now).num_milliseconds().max(0))
                        )
                    }),
                });
            }
            RunnerRow {
                id: r.id.to_string(),
                short_id: short(&r.id),
                host: if admin { r.host.clone() } else { String::new() },
                version: if admin {
                    r.version.clone()
                } else {
                    String::new()
                },
                started: if admin {
                    ago(r.started_at)
                } else {
                    String::new()
                },
                leader: admin && r.leader,
                queues: r.queues.join(", "),
                slots: if admin {
                    format!("{} of {} busy", r.in_flight.len(), r.slots)
                } else {
                    format!("{} yours of {}", r.in_flight.len(), r.slots)
                },
                heartbeat: ago(r.heartbeat_at),
            }
        })
        .collect();
    render(&RunnersPage {
        layout: Layout::new(&viewer, "runners"),
        admin,
        runners,
        attempts,
    })
}
