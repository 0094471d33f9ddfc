-- Runs by state among the newest $2 runs of tenant $1 (every tenant when NULL): a bounded
-- window on the (tenant_id, id DESC) index, never a scan of all runs.
SELECT w.state, count(*) AS n
FROM (
    SELECT r.state FROM runs r
    WHERE ($1::int8 IS NULL OR r.tenant_id = $1)
    ORDER BY r.id DESC
    LIMIT $2
) w
GROUP BY w.state
