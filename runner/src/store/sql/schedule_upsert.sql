-- Create or replace tenant $1's schedule named $2. A replace that changes nothing writes
-- nothing and returns no row. The pending fire time is kept while the timetable (cron, time
-- zone) is unchanged and the schedule stays unpaused, so a repeated PUT can never skip or
-- repeat a fire time; otherwise $19 (computed from the database's now, NULL when paused)
-- applies.
INSERT INTO schedules AS s (tenant_id, name, job_id, cron, timezone, input, misfire, misfire_max,
                            misfire_grace_ms, overlap, paused, max_attempts, timeout_ms, fuel,
                            memory_mb, backoff_base_ms, queue, priority, next_fire_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (tenant_id, name) DO UPDATE
SET job_id = EXCLUDED.job_id,
    cron = EXCLUDED.cron,
    timezone = EXCLUDED.timezone,
    input = EXCLUDED.input,
    misfire = EXCLUDED.misfire,
    misfire_max = EXCLUDED.misfire_max,
    misfire_grace_ms = EXCLUDED.misfire_grace_ms,
    overlap = EXCLUDED.overlap,
    paused = EXCLUDED.paused,
    max_attempts = EXCLUDED.max_attempts,
    timeout_ms = EXCLUDED.timeout_ms,
    fuel = EXCLUDED.fuel,
    memory_mb = EXCLUDED.memory_mb,
    backoff_base_ms = EXCLUDED.backoff_base_ms,
    queue = EXCLUDED.queue,
    priority = EXCLUDED.priority,
    next_fire_at = CASE WHEN s.cron = EXCLUDED.cron AND s.timezone = EXCLUDED.timezone
                             AND NOT s.paused AND NOT EXCLUDED.paused
                        THEN s.next_fire_at
                        ELSE EXCLUDED.next_fire_at END,
    updated_at = now()
WHERE (s.job_id, s.cron, s.timezone, s.input, s.misfire, s.misfire_max, s.misfire_grace_ms,
       s.overlap, s.paused, s.max_attempts, s.timeout_ms, s.fuel, s.memory_mb, s.backoff_base_ms,
       s.queue, s.priority)
      IS DISTINCT FROM
      (EXCLUDED.job_id, EXCLUDED.cron, EXCLUDED.timezone, EXCLUDED.input, EXCLUDED.misfire,
       EXCLUDED.misfire_max, EXCLUDED.misfire_grace_ms, EXCLUDED.overlap, EXCLUDED.paused,
       EXCLUDED.max_attempts, EXCLUDED.timeout_ms, EXCLUDED.fuel, EXCLUDED.memory_mb,
       EXCLUDED.backoff_base_ms, EXCLUDED.queue, EXCLUDED.priority)
RETURNING s.id, (s.xmax = 0) AS created
