-- Runs waiting or running, by state, exactly: from the hot table, which holds only those
-- (scheduled, retrying, enqueued, running). Tenant $1, or every tenant when NULL.
SELECT q.state, count(*) AS n
FROM run_queue q
WHERE ($1::int8 IS NULL OR q.tenant_id = $1)
GROUP BY q.state
