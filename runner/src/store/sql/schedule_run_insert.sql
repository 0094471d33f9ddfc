-- One run of schedule $1, `enqueued` at once. For a fire time ($2) the run is created only if
-- this statement recorded that fire time first: a fire time fired before (by any runner, before
-- any restart) creates nothing and returns no row. A manual trigger ($2 NULL) records no fire.
WITH fire AS (
    INSERT INTO schedule_fires (schedule_id, fire_at, run_id)
    SELECT $1, $2, $3
    WHERE $2::timestamptz IS NOT NULL
    ON CONFLICT (schedule_id, fire_at) DO NOTHING
    RETURNING fire_at
)
INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, scheduled_at, state_reason,
                  origin, schedule_id, fire_at)
SELECT $3, $4, $5, $6, 'enqueued', $7, $8, $9, $10, $11, $12, $13, $14, coalesce($2, now()), $15,
       $15, $1, $2
WHERE $2::timestamptz IS NULL OR EXISTS (SELECT 1 FROM fire)
RETURNING id
