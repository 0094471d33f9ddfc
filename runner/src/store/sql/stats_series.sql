-- Attempts by bucket and outcome, for one width since $2, of tenant $3 (every tenant when
-- NULL): a range of the primary key or of run_stats_tenant, never `runs`.
SELECT s.bucket, s.outcome, sum(s.attempts)::int8 AS attempts,
       sum(s.runs_ended)::int8 AS runs_ended
FROM run_stats s
WHERE s.width_s = $1 AND s.bucket >= $2 AND ($3::int8 IS NULL OR s.tenant_id = $3)
GROUP BY s.bucket, s.outcome
ORDER BY s.bucket
