-- Claim up to $2 ready runs of tenant $5's queue $1 for runner $3 with a lease of $4 ms: the
-- concurrency-limited path, run under the lock of the tenant's queue row after counting what
-- runs now, so the limit holds across every runner.
WITH picked AS (
    SELECT q.ctid AS row_tid
    FROM run_queue q
    WHERE q.state = 'enqueued' AND q.queue = $1 AND q.tenant_id = $5
    ORDER BY q.priority DESC, q.due_at, q.run_id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE run_queue q
    SET state = 'running',
        runner_id = $3,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => $4::float8 / 1000)
    -- By the locked rows' addresses, through an array, as in claim.sql: never a hash of the
    -- whole table, no walk through the primary key's versions.
    WHERE q.ctid = ANY (ARRAY(SELECT row_tid FROM picked))
    RETURNING q.run_id, q.lease_token
)
UPDATE runs r
SET state = 'running',
    lease_token = l.lease_token,
    attempt = r.attempt + 1,
    started_at = now(),
    progress = NULL,
    progress_message = NULL
FROM leased l
WHERE r.id = ANY (ARRAY(SELECT run_id FROM leased)) AND r.id = l.run_id
RETURNING r.id, r.tenant_id, r.job_id, r.version, r.input::text AS input, r.attempt,
          r.max_attempts, r.timeout_ms, r.fuel, r.memory_mb, r.backoff_base_ms, r.scheduled_at,
          r.snoozes, r.runner_faults, r.priority, l.lease_token,
          (SELECT t.max_log_bytes_per_attempt FROM tenant_limits t
           WHERE t.tenant_id = r.tenant_id) AS log_budget
