-- Claim up to $2 enqueued runs of queue $1 for runner $3 with a lease of $4 ms: highest priority
-- first, then the oldest due. SKIP LOCKED lets many runners claim concurrently without waiting.
-- Runs of a tenant's paused or concurrency-limited queue are left to claim_limited.sql. With
-- $5 set, only that tenant's runs are claimed (the limited path, under the queue's row lock).
WITH picked AS (
    SELECT id
    FROM runs
    WHERE state = 'enqueued' AND queue = $1
      AND ($5::int8 IS NULL OR tenant_id = $5)
      AND ($5::int8 IS NOT NULL OR NOT EXISTS (
              SELECT 1 FROM queues q
              WHERE q.tenant_id = runs.tenant_id AND q.name = runs.queue
                AND (q.paused OR q.concurrency_limit IS NOT NULL)))
    ORDER BY priority DESC, scheduled_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE runs r
    SET state = 'running',
        attempt = r.attempt + 1,
        runner_id = $3,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => $4::float8 / 1000),
        started_at = now(),
        progress = NULL,
        progress_message = NULL,
        state_reason = 'claimed by runner ' || $3::text
    FROM picked
    WHERE r.id = picked.id
    RETURNING r.*
), started AS (
    INSERT INTO attempts (run_id, number, runner_id, lease_token, started_at)
    SELECT id, attempt, runner_id, lease_token, started_at FROM claimed
)
SELECT c.id, c.tenant_id, t.name AS tenant, j.name AS job, c.version, v.digest, c.input,
       c.attempt, c.max_attempts, c.timeout_ms, c.fuel, c.memory_mb, c.backoff_base_ms,
       c.scheduled_at, c.lease_token, c.snoozes
FROM claimed c
JOIN tenants t ON t.id = c.tenant_id
JOIN jobs j ON j.id = c.job_id
JOIN job_versions v ON v.job_id = c.job_id AND v.version = c.version
