//! The HTTP server: our own accept loop over hyper's HTTP/1 connection, so that every client is
//! bounded — a deadline for request headers (slowloris), a cap on header bytes (431), a cap on
//! open connections — and shutdown is graceful (in-flight requests finish, idle connections
//! close). Per-request limits (body deadline, in-flight cap) are layers in `api::limits`.
//!
//! It must never let one client hold unbounded resources of the runner: every connection
//! holds a permit of the connection semaphore for its whole life, and is closed when its
//! headers do not arrive in time (hyper's timer, which `axum::serve` leaves unset).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::HttpSettings;

/// File descriptors kept for everything but client connections: database pools, the
/// compile probe's pipes, wasm files, the listener.
const RESERVED_FDS: u64 = 256;

/// Raises this process's soft open-file limit to its hard limit (as Go's runtime and most
/// servers do: the soft default, often 1,024, is below our connection cap) and returns the
/// soft limit now in force (`None`: unlimited).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    /// The soft limit asked for when the hard one is unlimited: some systems (macOS) refuse an
    /// unlimited soft limit.
    const FINITE: u64 = 65_536;
    let limit = getrlimit(Resource::Nofile);
    let target = Some(limit.maximum.unwrap_or(FINITE));
    if limit.current.is_some() && limit.current < target {
        let raised = Rlimit {
            current: target,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return target,
            Err(e) => tracing::warn!(error = %e, "raising the open-file limit failed"),
        }
    }
    limit.current
}

/// The connection cap that fits in the open-file limit, after raising it. Above the limit,
/// `accept` and every other open (database connections, other tasks' sockets) would fail with
/// EMFILE, so the cap is lowered with a warning instead.
pub fn connection_cap(wanted: usize) -> usize {
    let Some(soft) = raise_open_file_limit() else {
        return wanted;
    };
    let fits = soft.saturating_sub(RESERVED_FDS).max(16) as usize;
    if wanted > fits {
        tracing::warn!(
            wanted,
            open_file_limit = soft,
            cap = fits,
            "the open-file limit is too low for --max-connections; capping connections (raise `ulimit -n`)"
        );
        fits
    } else {
        wanted
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets every open connection finish
/// its in-flight request (for at most `http.body_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: HttpSettings,
    stop: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout)
        .max_header_size(http.max_header_bytes)
        .keep_alive(true);
    let max_connections = connection_cap(http.max_connections);
    let connections = Arc::new(Semaphore::new(max_connections.max(1)));
    // Every connection task holds a sender; when all are dropped, every connection is done.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let drain = http.body_timeout.max(Duration::from_secs(1));
    loop {
        // Take a permit before accepting: beyond the cap, clients wait in the kernel's backlog
        // instead of costing the runner a task and buffers each.
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let (stop, open) = (stop.clone(), open.clone());
        tokio::spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    match tokio::time::timeout(drain, conn.as_mut()).await {
                        Ok(result) => result,
                        Err(_) => {
                            tracing::warn!("closing a connection whose request outlived the shutdown drain");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = result {
                // Timeouts, oversized heads and resets are the client's doing: not our error.
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    drop(open);
    let _ = all_closed.recv().await;
}
