-- Usage per tenant per UTC day since $1 (daily rows), of tenant $2 (every tenant when NULL),
-- with the refusals of the tenant's quotas that day (`tenant_limit_hits`).
WITH used AS (
    SELECT s.tenant_id, (s.bucket AT TIME ZONE 'UTC')::date AS day,
           sum(s.attempts)::int8 AS attempts,
           sum(s.attempts) FILTER (WHERE s.outcome = 'ok')::int8 AS attempts_ok,
           sum(s.runs_ended)::int8 AS runs_ended,
           sum(s.fuel_used)::int8 AS fuel_used,
           sum(s.duration_ms)::int8 AS duration_ms,
           max(s.peak_memory_max)::int8 AS peak_memory_max
    FROM run_stats s
    WHERE s.width_s = 86400 AND s.bucket >= $1 AND ($2::int8 IS NULL OR s.tenant_id = $2)
    GROUP BY 1, 2
), hits AS (
    SELECT h.tenant_id, h.day, sum(h.hits)::int8 AS hits,
           string_agg(h.limit_name || ' ' || h.hits, ', ' ORDER BY h.limit_name) AS detail
    FROM tenant_limit_hits h
    WHERE h.day >= ($1 AT TIME ZONE 'UTC')::date AND ($2::int8 IS NULL OR h.tenant_id = $2)
    GROUP BY 1, 2
)
SELECT t.name AS tenant, coalesce(u.day, h.day) AS day,
       coalesce(u.attempts, 0) AS attempts, coalesce(u.attempts_ok, 0) AS attempts_ok,
       coalesce(u.runs_ended, 0) AS runs_ended, coalesce(u.fuel_used, 0) AS fuel_used,
       coalesce(u.duration_ms, 0) AS duration_ms, coalesce(u.peak_memory_max, 0) AS peak_memory_max,
       coalesce(h.hits, 0) AS limit_hits, coalesce(h.detail, '') AS limit_detail
FROM used u
FULL JOIN hits h ON h.tenant_id = u.tenant_id AND h.day = u.day
JOIN tenants t ON t.id = coalesce(u.tenant_id, h.tenant_id)
ORDER BY 2 DESC, 1
LIMIT $3
