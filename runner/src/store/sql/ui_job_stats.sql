-- Per version of job $1 (of tenant $2): outcome mix and percentiles of the attempts that ended,
-- among the job's newest $3 runs (the runs_job (job_id, id DESC) index: bounded work).
WITH w AS (
    SELECT r.id, r.version FROM runs r
    WHERE r.job_id = $1 AND r.tenant_id = $2
    ORDER BY r.id DESC
    LIMIT $3
)
SELECT w.version,
       count(*) AS attempts,
       count(*) FILTER (WHERE a.outcome = 'ok') AS ok,
       count(*) FILTER (WHERE a.outcome = 'error') AS error,
       count(*) FILTER (WHERE a.outcome = 'out_of_fuel') AS out_of_fuel,
       count(*) FILTER (WHERE a.outcome = 'memory_limit') AS memory_limit,
       count(*) FILTER (WHERE a.outcome = 'timeout') AS timeout,
       count(*) FILTER (WHERE a.outcome = 'panic') AS panic,
       count(*) FILTER (WHERE a.outcome = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE a.outcome = 'runner_lost') AS runner_lost,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS duration_p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS duration_p95,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY a.fuel_used) AS fuel_p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY a.fuel_used) AS fuel_p95,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY a.peak_memory) AS memory_p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY a.peak_memory) AS memory_p95
FROM w
JOIN attempts a ON a.run_id = w.id AND a.outcome IS NOT NULL
GROUP BY w.version
