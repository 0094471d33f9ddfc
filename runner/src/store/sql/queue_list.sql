-- A tenant's queues: those with settings and those that hold runs waiting or running, with
-- those runs counted per state, exactly, from the hot table (which holds only runs scheduled,
-- retrying, enqueued or running: never a scan of the tenant's ended runs, so the cost follows
-- the active runs, not the stored ones).
-- Waiting and running runs are read through their own indexes (run_queue_waiting,
-- run_queue_leased): no index of run_queue holds both.
WITH active AS (
    SELECT q.queue, q.state FROM run_queue q WHERE q.tenant_id = $1 AND q.state <> 'running'
    UNION ALL
    SELECT q.queue, q.state FROM run_queue q WHERE q.tenant_id = $1 AND q.state = 'running'
), counts AS (
    SELECT a.queue, a.state::text AS state, count(*) AS n
    FROM active a
    GROUP BY a.queue, a.state
), names AS (
    SELECT name FROM queues WHERE tenant_id = $1
    UNION
    SELECT DISTINCT queue FROM counts
)
SELECT n.name, coalesce(q.paused, false) AS paused, q.concurrency_limit,
       coalesce((SELECT jsonb_object_agg(c.state, c.n) FROM counts c WHERE c.queue = n.name),
                '{}'::jsonb) AS counts
FROM names n
LEFT JOIN queues q ON q.tenant_id = $1 AND q.name = n.name
ORDER BY n.name
