-- A page of schedules of tenant $1 (every tenant when NULL), by tenant and name, after the
-- keyset ($2 tenant, $3 schedule); the columns of schedule_select.sql plus the tenant.
SELECT s.id, s.name, s.job_id, j.name AS job, s.cron, s.timezone, s.input, s.misfire,
       s.misfire_max, s.misfire_grace_ms, s.overlap, s.paused, s.max_attempts, s.timeout_ms,
       s.fuel, s.memory_mb, s.backoff_base_ms, s.queue, s.priority, s.next_fire_at, s.created_at,
       s.updated_at, now() AS read_at, t.name AS tenant
FROM schedules s
JOIN jobs j ON j.id = s.job_id
JOIN tenants t ON t.id = s.tenant_id
WHERE ($1::int8 IS NULL OR s.tenant_id = $1)
  AND ($2::text IS NULL OR (t.name, s.name) > ($2::text, $3::text))
ORDER BY t.name, s.name
LIMIT $4
