-- Claim up to $2 ready runs of queue $1 for runner $3 with a lease of $4 ms, shared fairly
-- among the tenants with ready work: each gets a share of $2 in proportion to its weight, and
-- within a tenant the highest priority goes first, then the earliest due. Tenants in $5 are
-- left out (the runner already holds runs of theirs); tenant ids after $6 come first (the
-- round-robin cursor). Runs of a tenant's paused or concurrency-limited queue, of a tenant
-- held to `max_running` ($7 is the runner's default) and of a disabled tenant are left out
-- (the limited path, claim_tenant.sql, serves the limited ones), so they cost this statement
-- nothing. SKIP LOCKED lets many runners claim
-- at once without waiting for each other.
-- The tenants with ready work are found by skipping through run_queue_ready one tenant at a
-- time (one index probe per tenant, however many runs each has).
WITH RECURSIVE ready (tenant_id) AS (
    (SELECT q.tenant_id FROM run_queue q
     WHERE q.state = 'enqueued' AND q.queue = $1
     ORDER BY q.tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT q.tenant_id FROM run_queue q
            WHERE q.state = 'enqueued' AND q.queue = $1 AND q.tenant_id > r.tenant_id
            ORDER BY q.tenant_id LIMIT 1)
    FROM ready r
    WHERE r.tenant_id IS NOT NULL
), open AS (
    SELECT r.tenant_id, t.weight
    FROM ready r
    JOIN tenants t ON t.id = r.tenant_id
    LEFT JOIN tenant_limits l ON l.tenant_id = r.tenant_id
    WHERE r.tenant_id <> ALL ($5::int8[])
      AND t.disabled_at IS NULL
      AND coalesce(l.max_running, $7::int4) IS NULL
      AND NOT EXISTS (SELECT 1 FROM queues s
                      WHERE s.tenant_id = r.tenant_id AND s.name = $1
                        AND (s.paused OR s.concurrency_limit IS NOT NULL))
    ORDER BY r.tenant_id <= $6::int8, r.tenant_id
    LIMIT $2
), share AS (
    SELECT tenant_id,
           greatest(1, ceil($2::float8 * weight / sum(weight) OVER ()))::int8 AS n
    FROM open
), picked AS (
    SELECT p.row_tid
    FROM share s
    CROSS JOIN LATERAL (
        SELECT q.ctid AS row_tid
        FROM run_queue q
        WHERE q.state = 'enqueued' AND q.queue = $1 AND q.tenant_id = s.tenant_id
        ORDER BY q.priority DESC, q.due_at, q.run_id
        LIMIT s.n
        FOR UPDATE SKIP LOCKED
    ) p
), leased AS (
    -- By the locked rows' addresses (ctid), through an array: a join with `picked` would be
    -- planned for a guessed number of picked rows, and a generic plan that guessed many hashed
    -- every row of run_queue (and, below, of runs) on each claim once the tables had
    -- statistics. The address needs no index lookup: the primary key holds an entry for every
    -- version of a claimed row until vacuum, and walking them was a fifth of this update. The
    -- rows are locked above, so their addresses cannot change before this update.
    UPDATE run_queue q
    SET state = 'running',
        runner_id = $3,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => $4::float8 / 1000)
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
