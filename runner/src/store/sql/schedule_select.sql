-- Tenant $1's schedules: the one named $2, or (with $2 NULL) those named after $3, by name.
SELECT s.id, s.name, s.job_id, j.name AS job, s.cron, s.timezone, s.input, s.misfire,
       s.misfire_max, s.misfire_grace_ms, s.overlap, s.paused, s.max_attempts, s.timeout_ms,
       s.fuel, s.memory_mb, s.backoff_base_ms, s.queue, s.priority, s.next_fire_at, s.created_at,
       s.updated_at, now() AS read_at
FROM schedules s
JOIN jobs j ON j.id = s.job_id
WHERE s.tenant_id = $1
  AND ($2::text IS NULL OR s.name = $2)
  AND ($3::text IS NULL OR s.name > $3)
ORDER BY s.name
LIMIT $4
