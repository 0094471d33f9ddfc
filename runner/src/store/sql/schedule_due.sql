-- The most overdue schedule no other runner is firing right now, locked until commit, with its
-- job's current version and defaults, and the database's now. A disabled tenant's schedules
-- wait (their misfire policy applies when the tenant is enabled again).
SELECT s.id, s.tenant_id, s.name, s.job_id, s.cron, s.timezone, s.input, s.misfire,
       s.misfire_max, s.misfire_grace_ms, s.overlap, s.max_attempts, s.timeout_ms, s.fuel,
       s.memory_mb, s.backoff_base_ms, s.queue, s.priority, s.next_fire_at,
       j.current_version, j.max_attempts AS job_max_attempts, j.timeout_ms AS job_timeout_ms,
       j.fuel AS job_fuel, j.memory_mb AS job_memory_mb,
       j.backoff_base_ms AS job_backoff_base_ms, j.queue AS job_queue,
       j.priority AS job_priority, now() AS now
FROM schedules s
JOIN jobs j ON j.id = s.job_id
JOIN tenants t ON t.id = s.tenant_id
WHERE s.next_fire_at <= now()
  AND t.disabled_at IS NULL
ORDER BY s.next_fire_at
LIMIT 1
FOR UPDATE OF s SKIP LOCKED
