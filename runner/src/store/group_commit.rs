//! Group commit for single-run enqueues: concurrent requests are gathered into one insert
//! statement and one durable commit, so eight clients enqueueing at once cost about one fsync,
//! not eight. A request alone is written at once (no waiting for company), by the request's
//! own task when no group is being written.
//!
//! If the database refuses the gathered statement (one request's value it cannot store, a
//! continuation whose parent can never satisfy it), each request is written on its own, so one
//! bad request never fails the others.
//!
//! The writer holds one connection of its pool (`PlanCache::Generic`: its statement is planned
//! once) instead of taking one per group: sqlx checks a connection with a round trip each time
//! it goes back to a pool, and that cost 8 concurrent clients about a sixth of their rate.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{Run, RunInsertParams, Store, StoreError, StoreResult};

/// Most runs gathered into one statement.
const MAX_GROUP: usize = 512;

type Request = (RunInsertParams, oneshot::Sender<StoreResult<Run>>);

/// A handle to the group-commit task (cheap to clone).
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Request>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the task; it ends when every handle is dropped.
    pub fn start(store: Arc<dyn Store>) -> GroupCommit {
        let (tx, rx) = mpsc::channel(MAX_GROUP * 4);
        let writer = Arc::new(tokio::sync::Mutex::new(Writer {
            pool: store.pg_pool(),
            conn: None,
            store,
        }));
        tokio::spawn(run(writer.clone(), rx));
        GroupCommit { tx, writer }
    }

    /// Inserts one run, committed durably before this returns.
    pub async fn insert(&self, params: RunInsertParams) -> StoreResult<Run> {
        // Alone (no group waiting, none being written): written from here, without the two
        // hand-offs between tasks (5% more single enqueues from one client, `wrk`; handing it
        // to a task spawned here instead gained nothing). A client gone mid-statement drops
        // this future as it drops any request's query: sqlx finishes the interrupted exchange
        // before the connection's next statement, as for the pools' connections.
        if self.tx.capacity() == self.tx.max_capacity()
            && let Ok(mut writer) = self.writer.try_lock()
        {
            return writer
                .insert(vec![params])
                .await
                .and_then(super::postgres::inserted_one);
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((params, reply))
            .await
            .map_err(|_| StoreError::Invalid("the runner is shutting down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Invalid("the runner is shutting down".into()))?
    }
}

async fn run(writer: Arc<tokio::sync::Mutex<Writer>>, mut rx: mpsc::Receiver<Request>) {
    let mut group: Vec<Request> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.recv().await {
        let mut writer = writer.lock().await;
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        write(&mut writer, std::mem::take(&mut group)).await;
    }
}

/// Where groups are written: one connection held for as long as it works (a pooled connection
/// given back after every statement costs a round trip: sqlx checks it on release).
struct Writer {
    store: Arc<dyn Store>,
    pool: Option<sqlx::PgPool>,
    /// The held connection, and when it was last used.
    conn: Option<(sqlx::pool::PoolConnection<sqlx::Postgres>, Instant)>,
}

impl Writer {
    async fn insert(&mut self, params: Vec<RunInsertParams>) -> StoreResult<Vec<Run>> {
        let Some(pool) = &self.pool else {
            return self.store.run_insert_many(params).await;
        };
        // Checked after the same idle time as the pools check theirs (`store::pool_options`):
        // one that died meanwhile (a database restart) is replaced without failing a group.
        if let Some((conn, used)) = &mut self.conn
            && used.elapsed() >= super::postgres::PING_IF_IDLE_FOR
            && sqlx::Connection::ping(&mut **conn).await.is_err()
        {
            self.conn = None;
        }
        let (conn, used) = match &mut self.conn {
            Some(held) => held,
            None => {
                let conn = pool.acquire().await.map_err(super::postgres::classify)?;
                self.conn.insert((conn, Instant::now()))
            }
        };
        let result = super::postgres::insert_runs(conn, params).await;
        *used = Instant::now();
        if matches!(
            result,
            Err(StoreError::Unavailable(_)) | Err(StoreError::Other(_))
        ) {
            // Maybe the connection broke: the next group takes a fresh one.
            self.conn = None;
        }
        result
    }
}

async fn write(writer: &mut Writer, group: Vec<Request>) {
    let params: Vec<RunInsertParams> = group.iter().map(|(p, _)| p.clone()).collect();
    match writer.insert(params).await {
        Ok(runs) => {
            let mut runs: std::collections::HashMap<_, _> =
                runs.into_iter().map(|r| (r.id, r)).collect();
            for (p, reply) in group {
                // Left out by the statement: its job changed since the request read it.
                let answer = runs.remove(&p.id).ok_or(StoreError::JobChanged);
                let _ = reply.send(answer);
            }
        }
        Err(e) if group.len() == 1 || matches!(e, StoreError::Unavailable(_)) => {
            // Alone, or the database is down: every request gets the same answer.
            let e = std::sync::Arc::new(e);
            for (_, reply) in group {
                let _ = reply.send(Err(copy_error(&e)));
            }
        }
        Err(_) => {
            for (p, reply) in group {
                let answer = writer
                    .insert(vec![p])
                    .await
                    .and_then(super::postgres::inserted_one);
                let _ = reply.send(answer);
            }
        }
    }
}

/// The store's errors are not `Clone` (they carry sqlx errors); give each waiter its own.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::QuotaExceeded { limit, value } => StoreError::QuotaExceeded {
            limit,
            value: *value,
        },
        StoreError::JobChanged => StoreError::JobChanged,
        StoreError::Unavailable(e) => StoreError::Unavailable(sqlx::Error::Protocol(e.to_string())),
        StoreError::Other(e) => StoreError::Other(sqlx::Error::Protocol(e.to_string())),
    }
}
