-- The jobs that used the most fuel since $1 (daily rows), of tenant $2 (every tenant when NULL).
SELECT t.name AS tenant, j.name AS job, sum(s.fuel_used)::int8 AS fuel_used,
       sum(s.attempts)::int8 AS attempts, sum(s.duration_ms)::int8 AS duration_ms
FROM run_stats s
JOIN jobs j ON j.id = s.job_id
JOIN tenants t ON t.id = s.tenant_id
WHERE s.width_s = 86400 AND s.bucket >= $1 AND ($2::int8 IS NULL OR s.tenant_id = $2)
GROUP BY t.name, j.name
ORDER BY 3 DESC, 1, 2
LIMIT $3
