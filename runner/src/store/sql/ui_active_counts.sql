-- Runs waiting or running, by state, exactly: from the hot table, which holds only those
-- (scheduled, retrying, enqueued, running). Tenant $1, or every tenant when NULL.
-- One tenant's waiting and running runs through their own indexes (run_queue_waiting,
-- run_queue_leased); every tenant's in one pass.
SELECT a.state, count(*) AS n
FROM (
    SELECT q.state FROM run_queue q WHERE $1::int8 IS NULL
    UNION ALL
    SELECT q.state FROM run_queue q WHERE q.tenant_id = $1 AND q.state <> 'running'
    UNION ALL
    SELECT q.state FROM run_queue q WHERE q.tenant_id = $1 AND q.state = 'running'
) a
GROUP BY a.state
