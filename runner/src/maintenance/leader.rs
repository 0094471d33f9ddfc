//! Presence and leadership: this runner's row in the registry, kept alive by a heartbeat, and
//! the election (through the database) of the one runner that runs the maintenance services.
//!
//! A leader holds the `maintenance` role for `ttl` and renews it every `heartbeat`; when it
//! dies, another runner takes the role once the ttl has passed (by the database clock). A leader
//! that cannot renew steps down before its ttl could have run out, so two leaders never act at
//! once by design — and the services stay safe even if they did (row locks, unique fire times).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::{MAINTENANCE_ROLE, RunnerRegistration, Store};

/// Whether this runner currently leads the maintenance services.
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A leadership that is always held (a single runner, or tests of one service).
    pub fn always() -> Leadership {
        let (tx, rx) = watch::channel(true);
        // Keep the sender alive for the life of the process: the value never changes.
        std::mem::forget(tx);
        Leadership { rx }
    }

    async fn wait_for(&mut self, leading: bool) -> bool {
        self.rx.wait_for(|l| *l == leading).await.is_ok()
    }
}

/// Registers the runner, heart-beats, and campaigns for leadership until `stop`; then resigns.
pub fn start(
    store: Arc<dyn Store>,
    registration: RunnerRegistration,
    heartbeat: Duration,
    ttl: Duration,
    stop: CancellationToken,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let id = registration.id;
        let ttl_ms = ttl.as_millis() as i64;
        let mut registered = false;
        let mut last_renewal: Option<Instant> = None;
        loop {
            if !registered {
                match store.runner_register(registration.clone()).await {
                    Ok(()) => registered = true,
                    Err(e) => tracing::warn!(error = %e, "registering the runner failed"),
                }
            } else {
                match store.runner_heartbeat(id).await {
                    Ok(true) => {}
                    // Expired while we could not reach the database: register again.
                    Ok(false) => registered = false,
                    Err(e) => tracing::warn!(error = %e, "runner heartbeat failed"),
                }
            }
            match store.leader_elect(MAINTENANCE_ROLE, id, ttl_ms).await {
                Ok(leading) => {
                    if leading != *tx.borrow() {
                        tracing::info!(runner = %id, leading, "maintenance leadership changed");
                    }
                    last_renewal = leading.then(Instant::now);
                    let _ = tx.send(leading);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election failed");
                    // Step down before the role could have passed to someone else.
                    let stale = last_renewal.is_none_or(|t| t.elapsed() >= ttl / 2);
                    if *tx.borrow() && stale {
                        tracing::warn!(runner = %id, "stepping down: cannot renew leadership");
                        let _ = tx.send(false);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(heartbeat) => {},
                _ = stop.cancelled() => break,
            }
        }
        let _ = tx.send(false);
        if let Err(e) = store.leader_resign(MAINTENANCE_ROLE, id).await {
            tracing::warn!(error = %e, "resigning leadership failed");
        }
    });
    (Leadership { rx }, task)
}

/// Runs a maintenance service only while this runner leads: started when leadership is won,
/// stopped (through its own stop token) when it is lost, started again when won again.
pub async fn while_leader<F, Fut>(mut leadership: Leadership, stop: CancellationToken, service: F)
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            won = leadership.wait_for(true) => if !won { return },
            _ = stop.cancelled() => return,
        }
        let service_stop = stop.child_token();
        let running = tokio::spawn(service(service_stop.clone()));
        tokio::select! {
            _ = leadership.wait_for(false) => {},
            _ = stop.cancelled() => {},
        }
        service_stop.cancel();
        let _ = running.await;
    }
}
