//! A run's state history as the API shows it: the transitions stored in `run_events`, plus the
//! routine ones that are derived instead of stored (see `migrations/0005_hot_path.sql`):
//!
//! - the run's creation, when it was created `enqueued` (its `origin` says why);
//! - `enqueued -> running` for every attempt (from the attempt's start and runner);
//! - `running -> succeeded` for the attempt whose outcome is `ok` (from its end).
//!
//! Deriving them keeps three rows per run off the hot path; the history reads the same.

use chrono::{DateTime, Utc};

use super::{Attempt, RunEvent};
use crate::model::{Outcome, RunState};

/// Merges the stored transitions with the derived ones, in time order.
pub fn assemble(
    created_at: DateTime<Utc>,
    origin: &str,
    stored: Vec<RunEvent>,
    attempts: &[Attempt],
) -> Vec<RunEvent> {
    let mut events = Vec::with_capacity(stored.len() + 1 + attempts.len() * 2);
    if !stored.iter().any(|e| e.from.is_none()) {
        events.push(RunEvent {
            at: created_at,
            from: None,
            to: RunState::Enqueued,
            reason: Some(origin.to_string()),
        });
    }
    for a in attempts {
        events.push(RunEvent {
            at: a.started_at,
            from: Some(RunState::Enqueued),
            to: RunState::Running,
            reason: Some(format!(
                "attempt {} claimed by runner {}",
                a.number, a.runner_id
            )),
        });
        if let (Some(Outcome::Ok), Some(at)) = (a.outcome, a.finished_at) {
            events.push(RunEvent {
                at,
                from: Some(RunState::Running),
                to: RunState::Succeeded,
                reason: Some(format!("attempt {} succeeded", a.number)),
            });
        }
    }
    events.extend(stored);
    // Stable: events at the same instant keep the order above (creation, claim, end, stored).
    events.sort_by_key(|e| e.at);
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn attempt(number: i32, start: i64, end: i64, outcome: Outcome) -> Attempt {
        Attempt {
            number,
            runner_id: Uuid::nil(),
            started_at: at(start),
            finished_at: Some(at(end)),
            outcome: Some(outcome),
            error: None,
            fuel_used: None,
            peak_memory: None,
            duration_ms: None,
            outbound: None,
        }
    }

    fn stored(t: i64, from: Option<RunState>, to: RunState) -> RunEvent {
        RunEvent {
            at: at(t),
            from,
            to,
            reason: Some("stored".into()),
        }
    }

    #[test]
    fn a_plain_success_is_derived_entirely() {
        let h = assemble(
            at(0),
            "enqueued via API",
            vec![],
            &[attempt(1, 1, 2, Outcome::Ok)],
        );
        let path: Vec<_> = h.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(
            path,
            [
                (None, RunState::Enqueued),
                (Some(RunState::Enqueued), RunState::Running),
                (Some(RunState::Running), RunState::Succeeded),
            ]
        );
        assert_eq!(h[0].reason.as_deref(), Some("enqueued via API"));
    }

    #[test]
    fn retries_interleave_stored_and_derived_by_time() {
        let stored_events = vec![
            stored(3, Some(RunState::Running), RunState::Retrying),
            stored(4, Some(RunState::Retrying), RunState::Enqueued),
        ];
        let attempts = [
            attempt(1, 1, 2, Outcome::Error),
            attempt(2, 5, 6, Outcome::Ok),
        ];
        let h = assemble(at(0), "x", stored_events, &attempts);
        let to: Vec<_> = h.iter().map(|e| e.to).collect();
        assert_eq!(
            to,
            [
                RunState::Enqueued,
                RunState::Running,
                RunState::Retrying,
                RunState::Enqueued,
                RunState::Running,
                RunState::Succeeded,
            ]
        );
    }

    #[test]
    fn a_stored_creation_replaces_the_derived_one() {
        let h = assemble(at(0), "x", vec![stored(0, None, RunState::Scheduled)], &[]);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].to, RunState::Scheduled);
    }
}
