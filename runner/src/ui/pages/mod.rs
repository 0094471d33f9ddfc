//! One file per page (and one for the actions). Handlers read through the store with the
//! session's scope and hand plain view structs (strings already formatted) to the templates.

pub mod actions;
pub mod batches;
pub mod jobs;
pub mod login;
pub mod logs;
pub mod overview;
pub mod queues;
pub mod run;
pub mod runners;
pub mod runs;
pub mod schedules;
pub mod usage;

use super::error::{UiError, UiResult};
use super::session::Viewer;
use super::view;
use crate::api::AppState;
use crate::store::{Tenant, UiRunRow};

/// What the layout (`base.html`) shows around every page.
pub struct Layout {
    pub label: String,
    /// Which navigation entry is the current page.
    pub current: &'static str,
}

impl Layout {
    pub fn new(viewer: &Viewer, current: &'static str) -> Layout {
        Layout {
            label: viewer.label(),
            current,
        }
    }
}

/// A run as a row of a table.
pub struct RunRowView {
    pub id: String,
    pub short_id: String,
    pub href: String,
    pub tenant: String,
    pub job: String,
    pub version: i32,
    pub state: &'static str,
    pub queue: String,
    pub priority: i16,
    pub attempts: String,
    pub outcome: Option<&'static str>,
    pub error: String,
    pub progress: Option<i16>,
    pub created: String,
    pub created_dt: String,
    pub duration: String,
}

impl RunRowView {
    pub fn new(r: &UiRunRow) -> RunRowView {
        let id = r.id.to_string();
        RunRowView {
            // UUIDv7 ids start with their time: the random tail tells runs apart.
            short_id: format!("…{}", &id[24..]),
            href: format!("/ui/runs/{id}"),
            id,
            tenant: r.tenant.clone(),
            job: r.job.clone(),
            version: r.version,
            state: r.state.as_str(),
            queue: r.queue.clone(),
            priority: r.priority,
            attempts: format!("{}/{}", r.attempt, r.max_attempts),
            outcome: r.last_outcome.map(|o| o.as_str()),
            error: r.error.clone().unwrap_or_default(),
            progress: r.progress,
            created: view::time(r.created_at),
            created_dt: view::datetime(r.created_at),
            duration: r
                .last_duration_ms
                .map(view::duration_ms)
                .unwrap_or_default(),
        }
    }
}

/// The tenant a page about one named thing (job, schedule, queue) is about: the session's, or
/// for the admin the `tenant` parameter (the admin's lists link with it).
pub async fn tenant_for(
    state: &AppState,
    viewer: &Viewer,
    tenant: Option<String>,
) -> UiResult<Tenant> {
    if let Some(t) = &viewer.tenant {
        return Ok(t.clone());
    }
    let name = view::given(&tenant).ok_or_else(|| {
        UiError::not_found("Open it from its list: as the admin, the link names the tenant.")
    })?;
    state
        .store
        .tenant_get(&name)
        .await?
        .ok_or_else(|| UiError::not_found(format!("No tenant named {name:?}.")))
}
